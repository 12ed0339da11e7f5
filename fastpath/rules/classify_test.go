package rules

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/xdpfwd/xdpfwd/fastpath"
	"github.com/xdpfwd/xdpfwd/fastpath/fastpathtest"
)

// rgen draws nft-like rulesets and packets for comparing the classifier
// with the interpreter.
type rgen struct {
	r      *rand.Rand
	v6     bool // an inet table (IPv6 packets too)
	netdev bool // a netdev table at wan0's ingress, frames truncated or damaged
	output bool // the output hook: packets the router sends (no link-layer header)
}

// hook returns the hook the generated rulesets run at.
func (g *rgen) hook() fastpath.Hook {
	switch {
	case g.netdev:
		return fastpath.HookIngress
	case g.output:
		return fastpath.HookOutput
	}
	return fastpath.HookForward
}

func (g *rgen) pick(n int) int { return g.r.IntN(n) }

var (
	genAddrs4 = []string{"10.0.0.1", "10.0.0.2", "10.0.1.1", "10.0.255.255", "10.1.0.1", "192.168.1.1", "192.168.1.200", "1.1.1.1", "0.0.0.0", "255.255.255.255"}
	genAddrs6 = []string{"fd00::1", "fd00::2", "fd00:0:0:1::1", "fd01::1", "2001:db8::1", "::", "ffff::ffff"}
	genPorts  = []uint16{0, 22, 53, 80, 443, 1000, 1001, 1005, 65535}
	genMarks  = []uint32{0, 1, 2, 0x10, 0x11, 0xff00}
)

func ip4(s string) []byte { return net.ParseIP(s).To4() }
func ip6(s string) []byte { return net.ParseIP(s).To16() }

func be16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }

// addrCond is a condition on the address at offset off of the network
// header (n bytes: 4 or 16).
func (g *rgen) addrCond(off uint32, n int, pool []string, conv func(string) []byte, sets []string) []Expr {
	a := conv(pool[g.pick(len(pool))])
	r := Reg1
	if g.pick(3) == 0 {
		r = Reg32(4 + g.pick(8))
	}
	cm := func(op CmpOp, d []byte) *Cmp { return &Cmp{Op: op, SReg: r, Data: d} }
	switch g.pick(8) {
	case 0:
		return ex(ldr(PayloadNetwork, off, uint32(n), r), cm(CmpEq, a))
	case 1:
		return ex(ldr(PayloadNetwork, off, uint32(n), r), cm(CmpNeq, a))
	case 2: // a byte-aligned prefix: a shorter load
		k := 1 + g.pick(n)
		return ex(ldr(PayloadNetwork, off, uint32(k), r), cm(CmpEq, a[:k]))
	case 3: // a prefix through a mask
		bitsN := 1 + g.pick(8*n)
		k := (bitsN + 7) / 8
		mask := make([]byte, k)
		for i := range bitsN {
			mask[i/8] |= 0x80 >> (i % 8)
		}
		v := make([]byte, k)
		for i := range v {
			v[i] = a[i] & mask[i]
		}
		if g.pick(4) == 0 {
			v = a[:k] // host bits set: eq never matches
		}
		var c Expr = cm(CmpOp(g.pick(6)), v)
		if g.pick(4) == 0 {
			c = &Range{Op: RangeOp(g.pick(2)), SReg: r, From: v, To: conv(pool[g.pick(len(pool))])[:k]}
		}
		return ex(ldr(PayloadNetwork, off, uint32(k), r),
			&Bitwise{Op: BitwiseMaskXor, SReg: r, DReg: r, Len: uint32(k), Mask: mask, Xor: make([]byte, k)}, c)
	case 4:
		b := conv(pool[g.pick(len(pool))])
		return ex(ldr(PayloadNetwork, off, uint32(n), r), &Range{Op: RangeOp(g.pick(2)), SReg: r, From: a, To: b})
	case 5:
		return ex(ldr(PayloadNetwork, off, uint32(n), r), cm(CmpOp(2+g.pick(4)), a))
	}
	return ex(ldr(PayloadNetwork, off, uint32(n), r), &Lookup{Set: sets[g.pick(len(sets))], SReg: r, Flags: LookupFlags(g.pick(2))})
}

// cond draws one condition (and, for transport fields, sometimes nft's
// l4proto dependency).
func (g *rgen) cond() []Expr {
	v6 := g.v6 && g.pick(2) == 0
	switch g.pick(11) {
	case 0, 1:
		if v6 {
			return g.addrCond(8+16*uint32(g.pick(2)), 16, genAddrs6, ip6, []string{"s6i", "s6e"})
		}
		return g.addrCond(12+4*uint32(g.pick(2)), 4, genAddrs4, ip4, []string{"s4i", "s4e"})
	case 2:
		switch g.pick(4) {
		case 0:
			return ex(ld(PayloadLL, 6, 6), eq(macA[:]...))
		case 1: // a register loaded twice: the first load is no condition
			return ex(ld(PayloadTransport, 0, 2), ld(PayloadNetwork, 16, 4), eq(ip4(genAddrs4[g.pick(len(genAddrs4))])...))
		}
		return ex(meta(MetaL4Proto), cmpOp(CmpOp(g.pick(6)), []byte{6, 17, 1, 58}[g.pick(4)]))
	case 3, 4:
		var dep []Expr
		if g.pick(3) > 0 {
			dep = l4([]byte{6, 17}[g.pick(2)])
		}
		off := uint32(2 * g.pick(2))
		p := be16(genPorts[g.pick(len(genPorts))])
		var c Expr
		switch g.pick(5) {
		case 0:
			c = cmpOp(CmpOp(g.pick(6)), p...)
		case 1:
			c = &Range{Op: RangeOp(g.pick(2)), SReg: Reg1, From: p, To: be16(genPorts[g.pick(len(genPorts))])}
		case 2:
			c = &Lookup{Set: []string{"pe", "pr", "pc"}[g.pick(3)], SReg: Reg1, Flags: LookupFlags(g.pick(2))}
		default:
			c = eq(p...)
		}
		lp := ld(PayloadTransport, off, 2)
		if g.pick(4) == 0 {
			lp = ld4slow(off)
		}
		return ex(dep, lp, c)
	case 5:
		m := host32(genMarks[g.pick(len(genMarks))])
		switch g.pick(3) {
		case 0:
			return ex(meta(MetaMark), cmpOp(CmpOp(g.pick(6)), m...))
		case 1:
			return ex(meta(MetaMark), &Bitwise{Op: BitwiseMaskXor, SReg: Reg1, DReg: Reg1, Len: 4, Mask: host32(0xf0), Xor: host32(0)},
				eq(host32(genMarks[g.pick(len(genMarks))]&0xf0)...))
		}
		return ex(meta(MetaMark), &Lookup{Set: "me", SReg: Reg1})
	case 6: // tcp flags & (syn|ack) == syn
		return ex(l4(6), ld(PayloadTransport, 13, 1), &Bitwise{Op: BitwiseMaskXor, SReg: Reg1, DReg: Reg1, Len: 1, Mask: []byte{0x12}, Xor: []byte{0}},
			eq([]byte{0x02, 0x12, 0x10}[g.pick(3)]))
	case 7: // ttl / hop limit
		if v6 {
			return ex(ld(PayloadNetwork, 7, 1), cmpOp(CmpOp(g.pick(6)), byte(g.pick(128))))
		}
		return ex(ld(PayloadNetwork, 8, 1), cmpOp(CmpOp(g.pick(6)), byte(g.pick(128))))
	case 8: // iifname, whole or a prefix
		name := []string{"wan0\x00", "lan0\x00", "wan", "p2\x00"}[g.pick(4)]
		return ex(meta(MetaIIFName), cmpOp(CmpOp(g.pick(2)), []byte(name)...))
	case 9: // saddr and daddr loaded together, compared by window
		if v6 {
			return ex(ld(PayloadNetwork, 8, 16), eq(ip6(genAddrs6[g.pick(len(genAddrs6))])...))
		}
		return ex(ld(PayloadNetwork, 12, 8), &Cmp{Op: CmpEq, SReg: Reg32(1), Data: ip4(genAddrs4[g.pick(len(genAddrs4))])})
	}
	// Something the classifier does not hold: it ends the conditions.
	switch g.pick(3) {
	case 0:
		return ex(meta(MetaMark), &Byteorder{Op: ByteorderNtoh, SReg: Reg1, DReg: Reg1, Len: 4, Size: 4},
			&Range{Op: RangeEq, SReg: Reg1, From: be32(0), To: be32(uint32(g.pick(3)))})
	case 1:
		if g.pick(2) == 0 {
			// A condition whose register what follows reads again.
			return ex(ld(PayloadNetwork, 9, 1), cmpOp(CmpNeq, 0), &Lookup{Set: "vm", SReg: Reg1, Map: true, DReg: RegVerdict})
		}
		return ex(ld(PayloadNetwork, 9, 1), &Lookup{Set: "vm", SReg: Reg1, Map: true, DReg: RegVerdict})
	}
	return ex(&Counter{})
}

func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

// ld4slow loads a transport port with the slow path (3 bytes, a port's
// two and one more), compared on its first two.
func ld4slow(off uint32) *Payload { return ld(PayloadTransport, off, 3) }

// rule draws a rule of chain ci of nchains.
func (g *rgen) rule(ci, nchains int) []Expr {
	var e []Expr
	if g.pick(10) == 0 {
		e = append(e, &Counter{})
	}
	for range g.pick(4) {
		e = append(e, g.cond()...)
	}
	if g.pick(2) == 0 {
		e = append(e, &Counter{})
	}
	if g.pick(6) == 0 {
		e = append(e, &Immediate{DReg: Reg1, Data: host32(genMarks[g.pick(len(genMarks))])}, &MetaSet{Key: MetaMark, SReg: Reg1})
	}
	if g.pick(12) == 0 {
		e = append(e, &Quota{Bytes: uint64(100 + g.pick(200))})
	}
	switch v := g.pick(10); {
	case v < 2:
	case v < 4:
		e = append(e, accept)
	case v < 6:
		e = append(e, drop)
	case v == 6 && ci+1 < nchains:
		e = append(e, verdict(VerdictJump, fmt.Sprint("c", ci+1+g.pick(nchains-ci-1))))
	case v == 7 && ci+1 < nchains:
		e = append(e, verdict(VerdictGoto, fmt.Sprint("c", ci+1+g.pick(nchains-ci-1))))
	case v == 8:
		e = append(e, ret)
	default:
		e = append(e, verdict(VerdictContinue))
	}
	return e
}

// ruleset draws a table (ip or inet) with a forward base chain c0,
// regular chains, and the sets the conditions look up.
func (g *rgen) ruleset(nrules int) *Ruleset {
	f := FamilyIP
	switch {
	case g.netdev:
		f = FamilyNetdev
	case g.v6:
		f = FamilyInet
	}
	nchains := 1 + g.pick(3)
	var b tb
	var chains []*Chain
	for ci := range nchains {
		n := nrules
		if ci > 0 {
			n = g.pick(nrules/2 + 2)
		}
		var rs [][]Expr
		for range n {
			rs = append(rs, g.rule(ci, nchains))
		}
		if ci == 0 {
			h := HookForward
			switch {
			case g.netdev:
				h = HookIngress
			case g.output:
				h = HookOutput
			}
			c := b.base("c0", h, 0, VerdictKind(1+g.pick(2)), rs...)
			c.Devices = []string{"wan0"}
			chains = append(chains, c)
		} else {
			chains = append(chains, b.chain(fmt.Sprint("c", ci), rs...))
		}
	}
	t := table(f, "t", chains...)
	elems := func(pool []string, conv func(string) []byte, interval bool) []Element {
		var out []Element
		for range g.pick(7) {
			a := conv(pool[g.pick(len(pool))])
			out = append(out, Element{Key: a})
			if interval {
				end := slices.Clone(a)
				end[len(end)-1-g.pick(2)]++
				out = append(out, Element{Key: end, Flags: ElemIntervalEnd})
			}
		}
		if g.pick(8) == 0 {
			out = append(out, Element{Flags: ElemCatchall})
		}
		return out
	}
	ports := func(ranges bool) []Element {
		var out []Element
		for range g.pick(4) {
			a := genPorts[g.pick(len(genPorts))]
			e := Element{Key: be16(a)}
			if ranges {
				e.KeyEnd = be16(a + uint16(g.pick(3)))
				if a+2 < a {
					e.KeyEnd = be16(a)
				}
			}
			out = append(out, e)
		}
		return out
	}
	var marks []Element
	for range g.pick(3) {
		marks = append(marks, Element{Key: host32(genMarks[g.pick(len(genMarks))])})
	}
	t.Sets = []*Set{
		ipSet("s4i", SetInterval, 4, elems(genAddrs4, ip4, true)...),
		ipSet("s4e", 0, 4, elems(genAddrs4, ip4, false)...),
		ipSet("s6i", SetInterval, 16, elems(genAddrs6, ip6, true)...),
		ipSet("s6e", 0, 16, elems(genAddrs6, ip6, false)...),
		ipSet("pe", 0, 2, ports(false)...),
		ipSet("pr", SetInterval, 2, ports(true)...),
		ipSet("pc", 0, 2, append(ports(false), Element{Flags: ElemCatchall})...),
		ipSet("me", 0, 4, marks...),
		{Name: "vm", KeyLen: 1, Flags: SetMap, DataType: DataTypeVerdict, Elements: []Element{
			{Key: []byte{6}, Verdict: Verdict{Kind: VerdictAccept}}, {Key: []byte{17}, Verdict: Verdict{Kind: VerdictDrop}}}},
	}
	return &Ruleset{Tables: []*Table{t}}
}

// packet draws a forwarded packet, sometimes a fragment or truncated
// after its IP header.
func (g *rgen) packet(t testing.TB) *fastpath.Packet {
	var s l4spec
	switch g.pick(3) {
	case 0:
		s = tcp(genPorts[g.pick(len(genPorts))], genPorts[g.pick(len(genPorts))], []string{"S", "SA", "A", "R"}[g.pick(4)])
	case 1:
		s = udp(genPorts[g.pick(len(genPorts))], genPorts[g.pick(len(genPorts))])
	default:
		s = l4spec{proto: 1, icmpType: 8}
	}
	var f []byte
	if g.v6 && g.pick(2) == 0 {
		f = frame6(t, macB, macA, genAddrs6[g.pick(len(genAddrs6))], genAddrs6[g.pick(len(genAddrs6))], s)
	} else {
		f = frame4(t, macB, macA, genAddrs4[g.pick(len(genAddrs4))], genAddrs4[g.pick(len(genAddrs4))], s)
		ip := f[14:]
		ip[8] = byte(g.pick(130))
		if g.pick(8) == 0 {
			binary.BigEndian.PutUint16(ip[6:], uint16(1+g.pick(100))) // a fragment
		}
	}
	if g.netdev {
		return g.damaged(f)
	}
	pk := routed(f, fastpath.PortID(g.pick(2)), fastpath.HookForward, uint16(1+g.pick(2)))
	if g.output {
		pk.Local, pk.Routed, pk.InIface = true, false, 0
	}
	if g.pick(10) == 0 {
		// Truncated: the transport header cut short.
		pk.L3End = min(pk.L3End, pk.L3Off+uint16(20+g.pick(4)))
	}
	pk.Mark = genMarks[g.pick(len(genMarks))]
	return pk
}

// damaged returns frame f received on wan0, sometimes tagged, cut
// short or with a damaged IP header.
func (g *rgen) damaged(f []byte) *fastpath.Packet {
	if g.pick(4) == 0 {
		f = tag(f, 0x8100, 5)
	}
	nh := 14
	if f[12] == 0x81 {
		nh += 4
	}
	switch g.pick(6) {
	case 0:
		f = f[:14+g.pick(len(f)-13)]
	case 1:
		f[nh] ^= 0x20 // the version
	case 2:
		if f[nh]>>4 == 4 {
			binary.BigEndian.PutUint16(f[nh+2:], uint16(g.pick(80)))
		}
	case 3:
		f[nh] = f[nh]&0xf0 | byte(g.pick(16)) // the IPv4 header length
	}
	pk := fastpathtest.Parsed(f)
	pk.Action = fastpath.ActionContinue
	pk.InPort = portWAN
	pk.Mark = genMarks[g.pick(len(genMarks))]
	return &pk
}

// interpreterOnly returns p without classifiers.
func interpreterOnly(p *Program) {
	for i := range p.chains {
		p.chains[i].runs = nil
	}
}

// compareOne compiles rs twice, with and without the classifier, and runs
// packets through both: verdicts, marks and every counter must agree. It
// returns the number of rules the classifier holds.
func compareOne(t *testing.T, g *rgen, rs *Ruleset, npk int) int {
	t.Helper()
	pc, err := Compile(rs, testEnv)
	if err != nil {
		t.Fatalf("Compile: %v\n%s", err, rs)
	}
	pi := mustCompile(t, rs, testEnv)
	interpreterOnly(pi)
	var wc, wi worker
	h := g.hook()
	for k := range npk {
		pk := g.packet(t)
		pk2 := *pk
		sel, ac := wc.evalAt(pc, h, pk, 0)
		_, ai := wi.evalAt(pi, h, &pk2, 0)
		if !sel {
			t.Fatalf("hook %s is not for packet %d", h, k)
		}
		if ac != ai || pk.Mark != pk2.Mark {
			t.Fatalf("packet %d (% x, mark %#x): classifier accept %v mark %#x, interpreter accept %v mark %#x\n%s",
				k, pk.Data[pk.L3Off:pk.L3End], pk2.Mark, ac, pk.Mark, ai, pk2.Mark, rs)
		}
		rc, ri := pc.Rules(), pi.Rules()
		for j := range rc {
			if !slices.Equal(rc[j].Counters, ri[j].Counters) {
				t.Fatalf("packet %d (% x): rule %d (chain %s handle %d) counters %v, interpreter %v\n%s",
					k, pk.Data[pk.L3Off:pk.L3End], j, rc[j].Chain, rc[j].Handle, rc[j].Counters, ri[j].Counters, rs)
			}
		}
	}
	c, _ := pc.Placement()
	return c
}

// TestClassifierMatchesInterpreter compares the classifier with the
// interpreter on random rulesets and packets.
func TestClassifierMatchesInterpreter(t *testing.T) {
	cases := 3000
	if testing.Short() {
		cases = 300
	}
	classified := 0
	for seed := range cases {
		g := &rgen{r: rand.New(rand.NewPCG(uint64(seed), 7)), v6: seed%3 == 0, netdev: seed%4 == 1, output: seed%4 == 2}
		n := []int{5, 10, 20, 70, 150}[seed%5]
		rs := g.ruleset(n)
		if seed%7 == 3 {
			// Small budgets: chains split into runs, some rules left
			// to the interpreter.
			maxEntries, chainEntries, minRun = 10+seed%40, 50+seed%300, 1+seed%4
		}
		if seed%2 == 0 {
			minParted = 0 // rules in parts by shape
		}
		classified += compareOne(t, g, rs, 40)
		maxEntries, chainEntries, minRun, minParted = 1<<20, 1<<23, 64, 512
	}
	if classified == 0 {
		t.Fatal("the classifier held no rule")
	}
	t.Logf("%d cases, %d rules classified", cases, classified)
}

// FuzzClassifier compares the classifier with the interpreter on rulesets
// and packets drawn from the fuzzer's seed.
func FuzzClassifier(f *testing.F) {
	f.Add(uint64(1), uint8(10))
	f.Add(uint64(99), uint8(100))
	f.Fuzz(func(t *testing.T, seed uint64, n uint8) {
		g := &rgen{r: rand.New(rand.NewPCG(seed, 11)), v6: seed%2 == 0, netdev: seed%3 == 1, output: seed%3 == 2}
		defer func() { maxEntries, chainEntries, minRun, minParted = 1<<20, 1<<23, 64, 512 }()
		if seed%4 == 3 {
			maxEntries, chainEntries, minRun = 10+int(seed>>8)%40, 50+int(seed>>16)%300, 1+int(seed>>24)%4
		}
		if seed%8 < 4 {
			minParted = 0
		}
		compareOne(t, g, g.ruleset(int(n)), 20)
	})
}

// mixedRuleset is n forward rules mixing prefixes, port ranges and sets,
// as nft compiles them: rule i matches
//
//	ip saddr 10.(i/256).(i%256).0/24 tcp dport 1000+i%4000-…+9 ip daddr @dsts counter accept  (i%3 == 0)
//	ip saddr 172.16.0.0/12 ip daddr 192.168.(i/256).(i%256) udp dport { 53, 123 } counter drop  (i%3 == 1)
//	ip daddr 100.(i/256).(i%256).0/22 tcp dport != 22 counter drop      (i%3 == 2)
//
// the last (or, first) one matching the benchmark's packet 1.1.1.1 →
// 10.1.0.1:80 over TCP, in a drop-policy chain.
func mixedRuleset(n int, matchFirst bool) *Ruleset {
	var rs [][]Expr
	for i := range n {
		hi, lo := byte(i>>8), byte(i)
		if i == n-1 && !matchFirst || i == 0 && matchFirst {
			rs = append(rs, ex(ld(PayloadNetwork, 12, 4), eq(1, 1, 1, 1), l4(6), ld(PayloadTransport, 2, 2),
				&Range{Op: RangeEq, SReg: Reg1, From: be16(80), To: be16(88)}, &Counter{}, accept))
			continue
		}
		switch i % 3 {
		case 0:
			p := uint16(1000 + i%4000)
			rs = append(rs, ex(ld(PayloadNetwork, 12, 3), eq(10, hi, lo), l4(6), ld(PayloadTransport, 2, 2),
				&Range{Op: RangeEq, SReg: Reg1, From: be16(p), To: be16(p + 9)},
				ld(PayloadNetwork, 16, 4), &Lookup{Set: "dsts", SReg: Reg1}, &Counter{}, accept))
		case 1:
			rs = append(rs, ex(ld(PayloadNetwork, 12, 2),
				&Bitwise{Op: BitwiseMaskXor, SReg: Reg1, DReg: Reg1, Len: 2, Mask: []byte{0xff, 0xf0}, Xor: []byte{0, 0}}, eq(172, 16),
				ld(PayloadNetwork, 16, 4), eq(192, 168, hi, lo), l4(17), ld(PayloadTransport, 2, 2),
				&Lookup{Set: "dns", SReg: Reg1}, &Counter{}, drop))
		default:
			rs = append(rs, ex(ld(PayloadNetwork, 16, 3),
				&Bitwise{Op: BitwiseMaskXor, SReg: Reg1, DReg: Reg1, Len: 3, Mask: []byte{0xff, 0xff, 0xfc}, Xor: []byte{0, 0, 0}},
				eq(100, hi, lo&0xfc), l4(6), ld(PayloadTransport, 2, 2), cmpOp(CmpNeq, 0, 22), &Counter{}, drop))
		}
	}
	var b tb
	t := table(FamilyIP, "t", b.base("fw", HookForward, 0, VerdictDrop, rs...))
	t.Sets = []*Set{
		ipSet("dsts", SetInterval, 4, Element{Key: ip4("10.2.0.0")}, Element{Key: ip4("10.3.0.0"), Flags: ElemIntervalEnd},
			Element{Key: ip4("172.16.0.0")}, Element{Key: ip4("172.32.0.0"), Flags: ElemIntervalEnd}),
		ipSet("dns", 0, 2, Element{Key: be16(53)}, Element{Key: be16(123)}),
	}
	return &Ruleset{Tables: []*Table{t}}
}

func benchPacket(b testing.TB) *fastpath.Packet {
	return routed(frame4(b, macB, macA, "1.1.1.1", "10.1.0.1", tcp(1234, 80, "S")), portWAN, fastpath.HookForward, 2)
}

// BenchmarkClassifier runs one packet through n rules mixing prefixes,
// port ranges and sets (mixedRuleset), the matching one last or first,
// with the classifier and with the interpreter alone, and reports
// ns/packet.
func BenchmarkClassifier(b *testing.B) {
	for _, where := range []string{"last", "first"} {
		for _, n := range []int{10, 100, 1000, 10000} {
			for _, interp := range []bool{false, true} {
				if interp && n == 10000 && where == "last" && testing.Short() {
					continue
				}
				name := fmt.Sprintf("match=%s/rules=%d/classifier", where, n)
				if interp {
					name = fmt.Sprintf("match=%s/rules=%d/interpreter", where, n)
				}
				b.Run(name, func(b *testing.B) {
					p := mustCompile(b, mixedRuleset(n, where == "first"), testEnv)
					if interp {
						interpreterOnly(p)
					}
					benchForward(b, p, benchPacket(b))
				})
			}
		}
	}
}

// TestClassifierMixed checks the benchmark's ruleset: every rule in the
// classifier, the packet accepted by the last rule, no allocation.
func TestClassifierMixed(t *testing.T) {
	for _, n := range []int{10, 1000} {
		p := mustCompile(t, mixedRuleset(n, false), testEnv)
		if c, i := p.Placement(); c != n || i != 0 {
			t.Fatalf("%d rules: placement %d classified, %d interpreted", n, c, i)
		}
		pk := benchPacket(t)
		var w worker
		if _, acc := w.evalAt(p, fastpath.HookForward, pk, 0); !acc {
			t.Fatal("not accepted")
		}
		if r := p.Rules()[n-1]; r.Packets != 1 {
			t.Fatalf("last rule counted %d packets", r.Packets)
		}
		if a := testing.AllocsPerRun(100, func() { w.evalAt(p, fastpath.HookForward, pk, 0) }); a != 0 {
			t.Fatalf("%v allocations per packet", a)
		}
	}
}

// TestClassifierCompileTime reports how long 10 000 mixed rules take to
// compile, and the classifier's size.
func TestClassifierCompileTime(t *testing.T) {
	rs := mixedRuleset(10000, false)
	start := time.Now()
	p := mustCompile(t, rs, testEnv)
	d := time.Since(start)
	if len(p.chains[0].runs) != 1 {
		t.Fatalf("%d runs", len(p.chains[0].runs))
	}
	cl := p.chains[0].runs[0]
	start = time.Now()
	p.buildClassifiers()
	dc := time.Since(start)
	// Reported, not asserted: time limits break on busy machines (and
	// under -race).
	t.Logf("10000 rules: compiled in %v (the classifier %v), classifier %d fields, %d KiB", d, dc, len(cl.fields), cl.size()/1024)
}

// BenchmarkHookOverhead is the cost of a packet at a hook whose chain has
// no rules: what BenchmarkClassifier's numbers include besides the rules.
func BenchmarkHookOverhead(b *testing.B) {
	var tbl tb
	p := mustCompile(b, &Ruleset{Tables: []*Table{table(FamilyIP, "t", tbl.base("fw", HookForward, 0, VerdictAccept))}}, testEnv)
	pk := benchPacket(b)
	var w worker
	b.ReportAllocs()
	for b.Loop() {
		w.evalAt(p, fastpath.HookForward, pk, 0)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/packet")
}

// TestClassifierBudget compiles rules whose port ranges overlap so much
// that their bitmaps would be quadratic: the chain is left to the
// interpreter, and compiling stays fast.
func TestClassifierBudget(t *testing.T) {
	var rs [][]Expr
	for i := range 5000 {
		rs = append(rs, ex(l4(6), ld(PayloadTransport, 2, 2),
			&Range{Op: RangeEq, SReg: Reg1, From: be16(uint16(i * 6)), To: be16(uint16(i*6 + 30000))}, &Counter{}, accept))
	}
	var b tb
	start := time.Now()
	p := mustCompile(t, &Ruleset{Tables: []*Table{table(FamilyIP, "t", b.base("fw", HookForward, 0, VerdictDrop, rs...))}}, testEnv)
	d := time.Since(start)
	c, i := p.Placement()
	if c+i != 5000 || len(p.chains[0].runs) < 2 {
		t.Errorf("placement %d classified, %d interpreted, %d runs", c, i, len(p.chains[0].runs))
	}
	pk := benchPacket(t)
	if _, acc := evalAt(p, fastpath.HookForward, pk, 0); !acc {
		t.Error("not accepted")
	}
	if r := p.Rules(); r[0].Packets != 1 || r[1].Packets != 0 {
		t.Errorf("counters %v %v", r[0].Counters, r[1].Counters)
	}
	t.Logf("compiled in %v: %d rules classified in %d runs, %d interpreted", d, c, len(p.chains[0].runs), i)
}

// BenchmarkClassifierVaried runs 1024 different packets (sources across
// the rules' prefixes, ports across their ranges, destinations in and out
// of their set) through n mixed rules: the classifier's cost when its
// tables are not all in the cache, with the interpreter's for comparison.
func BenchmarkClassifierVaried(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	var pks []*fastpath.Packet
	for range 1024 {
		src := fmt.Sprintf("10.%d.%d.1", r.IntN(40), r.IntN(256))
		dst := []string{"10.2.0.1", "10.9.0.1", "192.168.3.4"}[r.IntN(3)]
		pks = append(pks, routed(frame4(b, macB, macA, src, dst, tcp(1234, uint16(1000+r.IntN(4000)), "S")), portWAN, fastpath.HookForward, 2))
	}
	for _, n := range []int{10, 10000} {
		for _, interp := range []bool{false, true} {
			name := fmt.Sprintf("rules=%d/classifier", n)
			if interp {
				name = fmt.Sprintf("rules=%d/interpreter", n)
			}
			b.Run(name, func(b *testing.B) {
				p := mustCompile(b, mixedRuleset(n, false), testEnv)
				if interp {
					interpreterOnly(p)
				}
				var w worker
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					w.evalAt(p, fastpath.HookForward, pks[i&1023], 0)
					i++
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/packet")
			})
		}
	}
}
