package rules

import (
	"encoding/binary"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/xdpfwd/xdpfwd/fastpath"
	"github.com/xdpfwd/xdpfwd/fastpath/fastpathtest"
	"github.com/xdpfwd/xdpfwd/fastpath/header"
)

var (
	macA = fastpathtest.MACA
	macB = fastpathtest.MACB
)

// probe is a packet at a hook and what the rules must decide.
type probe struct {
	name   string
	hook   fastpath.Hook
	pk     func(t *testing.T) *fastpath.Packet
	now    fastpath.Time
	accept bool
}

func fwd4(src, dst string, s l4spec) func(t *testing.T) *fastpath.Packet {
	return func(t *testing.T) *fastpath.Packet {
		return routed(frame4(t, macB, macA, src, dst, s), portWAN, fastpath.HookForward, 2)
	}
}

func fwd6(src, dst string, s l4spec) func(t *testing.T) *fastpath.Packet {
	return func(t *testing.T) *fastpath.Packet {
		return routed(frame6(t, macB, macA, src, dst, s), portWAN, fastpath.HookForward, 2)
	}
}

// forward returns a ruleset of one ip forward chain (policy accept).
func forward(f Family, sets []*Set, rs ...[]Expr) *Ruleset {
	var b tb
	t := table(f, "t", b.base("fw", HookForward, 0, VerdictAccept, rs...))
	t.Sets = sets
	return &Ruleset{Tables: []*Table{t}}
}

func runProbes(t *testing.T, p *Program, probes []probe) {
	t.Helper()
	for _, pr := range probes {
		pk := pr.pk(t)
		sel, acc := evalAt(p, pr.hook, pk, pr.now)
		if !sel {
			t.Errorf("%s: hook %s is not for the packet", pr.name, pr.hook)
			continue
		}
		if acc != pr.accept {
			t.Errorf("%s: accepted %v, want %v", pr.name, acc, pr.accept)
		}
	}
}

func ipSet(name string, flags SetFlags, klen uint32, elems ...Element) *Set {
	return &Set{Name: name, Flags: flags, KeyLen: klen, Elements: elems}
}

func TestInterpreter(t *testing.T) {
	const fw = fastpath.HookForward
	ipDaddr := ld(PayloadNetwork, 16, 4)
	tcpDport := ld(PayloadTransport, 2, 2)
	for _, tc := range []struct {
		name   string
		rs     *Ruleset
		probes []probe
	}{
		{
			name: "prefix /8",
			rs:   forward(FamilyIP, nil, ex(ld(PayloadNetwork, 12, 1), eq(10), drop)),
			probes: []probe{
				{"10/8", fw, fwd4("10.9.8.7", "10.1.0.1", udp(1, 2)), 0, false},
				{"11/8", fw, fwd4("11.9.8.7", "10.1.0.1", udp(1, 2)), 0, true},
			},
		},
		{
			name: "prefix /23",
			rs: forward(FamilyIP, nil, ex(ipDaddr, &Bitwise{Op: BitwiseMaskXor, SReg: Reg1, DReg: Reg1, Len: 4,
				Mask: []byte{255, 255, 254, 0}, Xor: []byte{0, 0, 0, 0}}, eq(10, 1, 2, 0), drop)),
			probes: []probe{
				{"in", fw, fwd4("1.1.1.1", "10.1.3.9", udp(1, 2)), 0, false},
				{"out", fw, fwd4("1.1.1.1", "10.1.4.1", udp(1, 2)), 0, true},
			},
		},
		{
			name: "port",
			rs:   forward(FamilyIP, nil, ex(l4(6), tcpDport, eq(0, 22), drop)),
			probes: []probe{
				{"tcp 22", fw, fwd4("1.1.1.1", "10.1.0.1", tcp(1, 22, "S")), 0, false},
				{"tcp 23", fw, fwd4("1.1.1.1", "10.1.0.1", tcp(1, 23, "S")), 0, true},
				{"udp 22", fw, fwd4("1.1.1.1", "10.1.0.1", udp(1, 22)), 0, true},
			},
		},
		{
			name: "port range",
			rs: forward(FamilyIP, nil, ex(l4(6), tcpDport, cmpOp(CmpGte, 0x03, 0xe8), cmpOp(CmpLte, 0x07, 0xd0), drop),
				ex(l4(17), ld(PayloadTransport, 2, 2), &Range{Op: RangeNeq, SReg: Reg1, From: []byte{0x03, 0xe8}, To: []byte{0x07, 0xd0}}, drop)),
			probes: []probe{
				{"tcp 1000", fw, fwd4("1.1.1.1", "10.1.0.1", tcp(1, 1000, "S")), 0, false},
				{"tcp 2000", fw, fwd4("1.1.1.1", "10.1.0.1", tcp(1, 2000, "S")), 0, false},
				{"tcp 2001", fw, fwd4("1.1.1.1", "10.1.0.1", tcp(1, 2001, "S")), 0, true},
				{"tcp 999", fw, fwd4("1.1.1.1", "10.1.0.1", tcp(1, 999, "S")), 0, true},
				{"udp 1500 (not != range)", fw, fwd4("1.1.1.1", "10.1.0.1", udp(1, 1500)), 0, true},
				{"udp 999 (!= range)", fw, fwd4("1.1.1.1", "10.1.0.1", udp(1, 999)), 0, false},
			},
		},
		{
			name: "exact set",
			rs: forward(FamilyIP, []*Set{ipSet("__set0", SetAnonymous|SetConstant, 2, Element{Key: []byte{0, 22}}, Element{Key: []byte{0, 80}})},
				ex(l4(6), tcpDport, &Lookup{Set: "__set0", SReg: Reg1}, drop)),
			probes: []probe{
				{"22", fw, fwd4("1.1.1.1", "10.1.0.1", tcp(1, 22, "S")), 0, false},
				{"80", fw, fwd4("1.1.1.1", "10.1.0.1", tcp(1, 80, "S")), 0, false},
				{"81", fw, fwd4("1.1.1.1", "10.1.0.1", tcp(1, 81, "S")), 0, true},
			},
		},
		{
			// As the kernel dumps { 10.0.0.0/8, 192.168.1.1 }.
			name: "interval set",
			rs: forward(FamilyIP, []*Set{ipSet("blocked", SetInterval, 4,
				Element{Key: []byte{0, 0, 0, 0}, Flags: ElemIntervalEnd}, Element{Key: []byte{10, 0, 0, 0}},
				Element{Key: []byte{11, 0, 0, 0}, Flags: ElemIntervalEnd}, Element{Key: []byte{192, 168, 1, 1}},
				Element{Key: []byte{192, 168, 1, 2}, Flags: ElemIntervalEnd})},
				ex(ld(PayloadNetwork, 12, 4), &Lookup{Set: "blocked", SReg: Reg1}, drop)),
			probes: []probe{
				{"10.0.0.0", fw, fwd4("10.0.0.0", "10.1.0.1", udp(1, 2)), 0, false},
				{"10.255.255.255", fw, fwd4("10.255.255.255", "10.1.0.1", udp(1, 2)), 0, false},
				{"11.0.0.0", fw, fwd4("11.0.0.0", "10.1.0.1", udp(1, 2)), 0, true},
				{"9.255.255.255", fw, fwd4("9.255.255.255", "10.1.0.1", udp(1, 2)), 0, true},
				{"192.168.1.1", fw, fwd4("192.168.1.1", "10.1.0.1", udp(1, 2)), 0, false},
				{"192.168.1.2", fw, fwd4("192.168.1.2", "10.1.0.1", udp(1, 2)), 0, true},
				{"1.0.0.0", fw, fwd4("1.0.0.0", "10.1.0.1", udp(1, 2)), 0, true},
			},
		},
		{
			name: "concatenation",
			rs: forward(FamilyIP, []*Set{{Name: "__set0", Flags: SetAnonymous | SetConstant | SetConcat, KeyLen: 8, FieldLen: []uint32{4, 2},
				Elements: []Element{{Key: []byte{1, 2, 3, 4, 0, 80, 0, 0}}}}},
				ex(l4(6), ipDaddr, ldr(PayloadTransport, 2, 2, Reg32(1)), &Lookup{Set: "__set0", SReg: Reg1}, drop)),
			probes: []probe{
				{"1.2.3.4 . 80", fw, fwd4("1.1.1.1", "1.2.3.4", tcp(1, 80, "S")), 0, false},
				{"1.2.3.4 . 81", fw, fwd4("1.1.1.1", "1.2.3.4", tcp(1, 81, "S")), 0, true},
				{"1.2.3.5 . 80", fw, fwd4("1.1.1.1", "1.2.3.5", tcp(1, 80, "S")), 0, true},
			},
		},
		{
			name: "concatenation with intervals",
			rs: forward(FamilyIP, []*Set{{Name: "svc", Flags: SetInterval | SetConcat, KeyLen: 8, FieldLen: []uint32{4, 2},
				Elements: []Element{{Key: []byte{10, 0, 0, 0, 0, 80, 0, 0}, KeyEnd: []byte{10, 255, 255, 255, 0, 90, 0, 0}}}}},
				ex(l4(6), ipDaddr, ldr(PayloadTransport, 2, 2, Reg32(1)), &Lookup{Set: "svc", SReg: Reg1}, drop)),
			probes: []probe{
				{"10.5.5.5 . 85", fw, fwd4("1.1.1.1", "10.5.5.5", tcp(1, 85, "S")), 0, false},
				{"10.255.255.255 . 90", fw, fwd4("1.1.1.1", "10.255.255.255", tcp(1, 90, "S")), 0, false},
				// Within the whole-key bounds, but port outside 80-90:
				// fields compare one by one.
				{"10.5.5.5 . 100", fw, fwd4("1.1.1.1", "10.5.5.5", tcp(1, 100, "S")), 0, true},
				{"11.0.0.0 . 85", fw, fwd4("1.1.1.1", "11.0.0.0", tcp(1, 85, "S")), 0, true},
			},
		},
		{
			name: "verdict map with jump and catch-all",
			rs: func() *Ruleset {
				var b tb
				t := table(FamilyIP, "t",
					b.chain("web", ex(ld(PayloadNetwork, 12, 4), eq(1, 2, 3, 4), drop)),
					b.base("fw", HookForward, 0, VerdictAccept,
						ex(l4(6), tcpDport, &Lookup{Set: "__map0", SReg: Reg1, Map: true, DReg: RegVerdict}),
						ex(drop)))
				t.Sets = []*Set{{Name: "__map0", Flags: SetAnonymous | SetConstant | SetMap, KeyLen: 2, DataType: DataTypeVerdict,
					Elements: []Element{
						{Key: []byte{0, 22}, Verdict: Verdict{Kind: VerdictAccept}},
						{Key: []byte{0, 80}, Verdict: Verdict{Kind: VerdictJump, Chain: "web"}},
						{Flags: ElemCatchall, Verdict: Verdict{Kind: VerdictContinue}},
					}}}
				return &Ruleset{Tables: []*Table{t}}
			}(),
			probes: []probe{
				{"22 accept", fw, fwd4("1.2.3.4", "10.1.0.1", tcp(1, 22, "S")), 0, true},
				{"80 from 1.2.3.4: web drops", fw, fwd4("1.2.3.4", "10.1.0.1", tcp(1, 80, "S")), 0, false},
				// web returns: the rule after the lookup drops.
				{"80 from 1.2.3.5: back, next rule drops", fw, fwd4("1.2.3.5", "10.1.0.1", tcp(1, 80, "S")), 0, false},
				// The catch-all continues, and the next rule drops.
				{"443: catch-all continue", fw, fwd4("1.2.3.5", "10.1.0.1", tcp(1, 443, "S")), 0, false},
				// No tcp: the lookup's rule breaks, the next drops.
				{"udp", fw, fwd4("1.2.3.5", "10.1.0.1", udp(1, 22)), 0, false},
			},
		},
		{
			name: "negation",
			rs: func() *Ruleset {
				var b tb
				t := table(FamilyIP, "t", b.base("fw", HookForward, 0, VerdictDrop,
					ex(ld(PayloadNetwork, 12, 4), &Lookup{Set: "ok", SReg: Reg1, Flags: LookupInvert}, drop),
					ex(l4(6), tcpDport, cmpOp(CmpNeq, 0, 22), accept)))
				t.Sets = []*Set{ipSet("ok", 0, 4, Element{Key: []byte{1, 1, 1, 1}})}
				return &Ruleset{Tables: []*Table{t}}
			}(),
			probes: []probe{
				{"not in set: drop", fw, fwd4("2.2.2.2", "10.1.0.1", tcp(1, 80, "S")), 0, false},
				{"in set, port != 22: accept", fw, fwd4("1.1.1.1", "10.1.0.1", tcp(1, 80, "S")), 0, true},
				{"in set, port 22: policy drop", fw, fwd4("1.1.1.1", "10.1.0.1", tcp(1, 22, "S")), 0, false},
			},
		},
		{
			name: "inverted lookup falls back on the catch-all",
			rs: forward(FamilyIP, []*Set{ipSet("s", 0, 4, Element{Key: []byte{1, 1, 1, 1}}, Element{Flags: ElemCatchall})},
				ex(ld(PayloadNetwork, 12, 4), &Lookup{Set: "s", SReg: Reg1, Flags: LookupInvert}, drop)),
			probes: []probe{
				// Found, inverted: not found, but the catch-all matches.
				{"in set", fw, fwd4("1.1.1.1", "10.1.0.1", udp(1, 2)), 0, false},
				{"not in set", fw, fwd4("2.2.2.2", "10.1.0.1", udp(1, 2)), 0, false},
			},
		},
		{
			name: "jump goto return",
			rs: func() *Ruleset {
				var b tb
				return &Ruleset{Tables: []*Table{table(FamilyIP, "t",
					// a: port 1 returns early; port 2 drops; else falls off
					// the end back to the caller.
					b.chain("a",
						ex(l4(17), ld(PayloadTransport, 2, 2), eq(0, 1), ret),
						ex(l4(17), ld(PayloadTransport, 2, 2), eq(0, 2), drop)),
					// g: reached by goto: its end returns to fw's caller,
					// the base chain's policy.
					b.chain("g", ex(l4(17), ld(PayloadTransport, 2, 2), eq(0, 3), accept)),
					b.base("fw", HookForward, 0, VerdictDrop,
						ex(verdict(VerdictJump, "a")),
						ex(l4(17), ld(PayloadTransport, 2, 2), eq(0, 1), accept),
						ex(l4(17), ld(PayloadTransport, 2, 2), eq(0, 4), verdict(VerdictGoto, "g")),
						ex(l4(17), ld(PayloadTransport, 2, 2), eq(0, 4), accept),
						ex(l4(17), ld(PayloadTransport, 2, 2), eq(0, 5), verdict(VerdictGoto, "g")),
						ex(accept)))}}
			}(),
			probes: []probe{
				{"1: return, accept after", fw, fwd4("1.1.1.1", "10.1.0.1", udp(9, 1)), 0, true},
				{"2: dropped in a", fw, fwd4("1.1.1.1", "10.1.0.1", udp(9, 2)), 0, false},
				{"4: goto g, no match, no return: policy", fw, fwd4("1.1.1.1", "10.1.0.1", udp(9, 4)), 0, false},
				{"6: last rule accepts", fw, fwd4("1.1.1.1", "10.1.0.1", udp(9, 6)), 0, true},
			},
		},
		{
			name: "truncated and missing headers break the rule",
			rs: forward(FamilyIP, nil,
				ex(ld(PayloadTransport, 200, 4), eq(0, 0, 0, 0), drop),
				ex(ld(PayloadNetwork, 100, 2), eq(0, 0), drop),
				ex(ld(PayloadLL, 0, 1), eq(2), accept),
				ex(drop)),
			probes: []probe{
				{"short packet: loads fail, LL matches", fw, fwd4("1.1.1.1", "10.1.0.1", udp(1, 2)), 0, true},
			},
		},
		{
			name: "byteorder and mark range",
			rs: forward(FamilyIP, nil,
				ex(meta(MetaMark), &Byteorder{Op: ByteorderHton, SReg: Reg1, DReg: Reg1, Len: 4, Size: 4},
					cmpOp(CmpGte, 0, 0, 0, 10), cmpOp(CmpLte, 0, 0, 0, 20), drop)),
			probes: []probe{
				{"mark 15", fw, withMark(fwd4("1.1.1.1", "10.1.0.1", udp(1, 2)), 15), 0, false},
				{"mark 21", fw, withMark(fwd4("1.1.1.1", "10.1.0.1", udp(1, 2)), 21), 0, true},
				{"mark 0x0a000000", fw, withMark(fwd4("1.1.1.1", "10.1.0.1", udp(1, 2)), 0x0a000000), 0, true},
			},
		},
		{
			name: "shifts",
			rs: forward(FamilyIP, nil,
				// (mark >> 16) == 0x1234, on the host-order words.
				ex(meta(MetaMark), &Bitwise{Op: BitwiseRShift, SReg: Reg1, DReg: Reg1, Len: 4, Shift: 16}, eq(host32(0x1234)...), drop),
				ex(meta(MetaMark), &Bitwise{Op: BitwiseLShift, SReg: Reg1, DReg: Reg2, Len: 4, Shift: 8},
					&Cmp{Op: CmpEq, SReg: Reg2, Data: host32(0x5600)}, drop)),
			probes: []probe{
				{">> 16", fw, withMark(fwd4("1.1.1.1", "10.1.0.1", udp(1, 2)), 0x12345678), 0, false},
				{"<< 8", fw, withMark(fwd4("1.1.1.1", "10.1.0.1", udp(1, 2)), 0x56), 0, false},
				{"neither", fw, withMark(fwd4("1.1.1.1", "10.1.0.1", udp(1, 2)), 0x57), 0, true},
			},
		},
		{
			name: "inet: both families",
			rs: forward(FamilyInet, nil,
				ex(meta(MetaNFProto), eq(2), ld(PayloadNetwork, 12, 4), eq(1, 1, 1, 1), drop),
				ex(meta(MetaNFProto), eq(10), ld(PayloadNetwork, 8, 16), eq(ip6b("fd00::1")...), drop)),
			probes: []probe{
				{"v4 match", fw, fwd4("1.1.1.1", "10.1.0.1", udp(1, 2)), 0, false},
				{"v4 other", fw, fwd4("1.1.1.2", "10.1.0.1", udp(1, 2)), 0, true},
				{"v6 match", fw, fwd6("fd00::1", "fd01::1", udp(1, 2)), 0, false},
				{"v6 other", fw, fwd6("fd00::2", "fd01::1", udp(1, 2)), 0, true},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runProbes(t, mustCompile(t, tc.rs, testEnv), tc.probes)
		})
	}
}

func withMark(f func(t *testing.T) *fastpath.Packet, mark uint32) func(t *testing.T) *fastpath.Packet {
	return func(t *testing.T) *fastpath.Packet {
		p := f(t)
		p.Mark = mark
		return p
	}
}

// counters returns the first counter of each rule of p, by handle.
func counters(p *Program) map[uint64]uint64 {
	m := map[uint64]uint64{}
	for _, r := range p.Rules() {
		m[r.Handle] = r.Packets
	}
	return m
}

func TestBaseChainOrder(t *testing.T) {
	var b tb
	// prio 10 drops port 2; prio -5 (created last) accepts everything
	// but port 3; prio 10's twin created after it runs before it.
	rs := &Ruleset{Tables: []*Table{
		table(FamilyIP, "a",
			b.base("late", HookForward, 10, VerdictAccept, ex(&Counter{}, l4(17), ld(PayloadTransport, 2, 2), eq(0, 2), drop)),
			b.base("late2", HookForward, 10, VerdictAccept, ex(&Counter{}))),
		table(FamilyInet, "b",
			b.base("early", HookForward, -5, VerdictAccept, ex(&Counter{}), ex(l4(17), ld(PayloadTransport, 2, 2), eq(0, 3), drop)),
			b.base("policy", HookForward, 20, VerdictDrop, ex(&Counter{}), ex(l4(17), ld(PayloadTransport, 2, 2), eq(0, 4), accept))),
	}}
	p := mustCompile(t, rs, testEnv)
	order := []string{}
	for _, ci := range p.hooks[fastpath.HookForward].v4 {
		order = append(order, p.chains[ci].name)
	}
	if got := strings.Join(order, " "); got != "early late2 late policy" {
		t.Fatalf("order %q", got)
	}
	for _, pr := range []struct {
		port   uint16
		accept bool
		counts map[uint64]uint64 // rule handle → packets, cumulative
	}{
		// late drops: policy's counter does not count.
		{2, false, map[uint64]uint64{1: 1, 2: 1, 3: 1, 5: 0}},
		// early drops: nothing after it counts.
		{3, false, map[uint64]uint64{1: 1, 2: 1, 3: 2, 5: 0}},
		// every chain accepts but policy's, which accepts port 4 by rule.
		{4, true, map[uint64]uint64{1: 2, 2: 2, 3: 3, 5: 1}},
		// policy drops.
		{5, false, map[uint64]uint64{1: 3, 2: 3, 3: 4, 5: 2}},
	} {
		_, acc := evalAt(p, fastpath.HookForward, fwd4("1.1.1.1", "10.1.0.1", udp(1, pr.port))(t), 0)
		if acc != pr.accept {
			t.Errorf("port %d: accepted %v, want %v", pr.port, acc, pr.accept)
		}
		got := counters(p)
		for h, want := range pr.counts {
			if got[h] != want {
				t.Errorf("port %d: rule %d counted %d, want %d", pr.port, h, got[h], want)
			}
		}
	}
}

func TestCounters(t *testing.T) {
	var b tb
	rs := &Ruleset{Tables: []*Table{table(FamilyIP, "t", b.base("fw", HookForward, 0, VerdictAccept,
		// A counter alone counts and continues.
		ex(&Counter{}),
		// A counter before a failing match counts; one after does not.
		ex(&Counter{}, l4(6), ld(PayloadTransport, 2, 2), eq(0, 22), &Counter{}, drop),
		ex(&Counter{Packets: 10, Bytes: 100}, accept),
		ex(&Counter{})))}}
	p := mustCompile(t, rs, testEnv)
	pk := fwd4("1.1.1.1", "10.1.0.1", udp(1, 2))(t)
	for range 3 {
		if _, acc := evalAt(p, fastpath.HookForward, pk, 0); !acc {
			t.Fatal("dropped")
		}
	}
	n := uint64(pk.L3End - pk.L3Off)
	want := []RuleStats{
		{Handle: 1, Packets: 3, Bytes: 3 * n},
		{Handle: 2, Packets: 3, Bytes: 3 * n},
		{Handle: 3, Packets: 13, Bytes: 100 + 3*n},
		{Handle: 4},
	}
	got := p.Rules()
	for i, w := range want {
		g := got[i]
		if g.Handle != w.Handle || g.Packets != w.Packets || g.Bytes != w.Bytes || g.Table != "t" || g.Chain != "fw" || g.Family != FamilyIP {
			t.Errorf("rule %d: %+v, want %+v", i, g, w)
		}
	}
	if len(got[1].Counters) != 2 || got[1].Counters[1] != (Counter{}) {
		t.Errorf("rule 2's counters %v", got[1].Counters)
	}
}

func TestMarkSetThenMatch(t *testing.T) {
	var b tb
	rs := &Ruleset{Tables: []*Table{table(FamilyIP, "t",
		b.base("pre", HookPrerouting, 0, VerdictAccept,
			ex(l4(17), ld(PayloadTransport, 2, 2), eq(0, 7), &Immediate{DReg: Reg1, Data: host32(7)}, &MetaSet{Key: MetaMark, SReg: Reg1})),
		b.base("fw", HookForward, 0, VerdictAccept,
			ex(meta(MetaMark), eq(host32(7)...), drop)))}}
	p := mustCompile(t, rs, testEnv)
	for _, port := range []uint16{7, 8} {
		f := frame4(t, macB, macA, "1.1.1.1", "10.1.0.1", udp(1, port))
		pk := routed(f, portWAN, fastpath.HookPrerouting, 0)
		if sel, acc := evalAt(p, fastpath.HookPrerouting, pk, 0); !sel || !acc {
			t.Fatalf("prerouting: %v %v", sel, acc)
		}
		pk.InIface, pk.OutIface = 1, 2
		_, acc := evalAt(p, fastpath.HookForward, pk, 0)
		if acc != (port != 7) || (pk.Mark == 7) != (port == 7) {
			t.Errorf("port %d: mark %d, accepted %v", port, pk.Mark, acc)
		}
	}
}

func TestLimit(t *testing.T) {
	var b tb
	rs := &Ruleset{Tables: []*Table{table(FamilyIP, "t", b.base("fw", HookForward, 0, VerdictDrop,
		// 10 packets per second, burst 5.
		ex(l4(17), &Limit{Rate: 10, Unit: 1, Burst: 5}, accept),
		// over 1000 bytes/second, burst 0: the bucket holds one
		// second's bytes.
		ex(l4(6), &Limit{Rate: 1000, Unit: 1, Type: LimitBytes, Flags: LimitInvert}, drop),
		ex(l4(6), accept)))}}
	p := mustCompile(t, rs, testEnv)
	u := fwd4("1.1.1.1", "10.1.0.1", udp(1, 2))(t)
	now := fastpath.Time(time.Hour)
	for i := range 7 {
		_, acc := evalAt(p, fastpath.HookForward, u, now)
		if acc != (i < 5) {
			t.Errorf("packet %d at once: accepted %v", i, acc)
		}
	}
	// 100 ms later: one more token.
	now += fastpath.Time(100 * time.Millisecond)
	for i := range 2 {
		if _, acc := evalAt(p, fastpath.HookForward, u, now); acc != (i == 0) {
			t.Errorf("after 100ms, packet %d: accepted %v", i, acc)
		}
	}
	// After a long pause the bucket holds 5 again, not more.
	now += fastpath.Time(time.Minute)
	n := 0
	for range 10 {
		if _, acc := evalAt(p, fastpath.HookForward, u, now); acc {
			n++
		}
	}
	if n != 5 {
		t.Errorf("after a minute: %d accepted, want 5", n)
	}
	// Bytes, inverted: within 1000 bytes a second passes, then drops.
	tc := fwd4("1.1.1.1", "10.1.0.1", l4spec{proto: 6, sport: 1, dport: 2, flags: "A", payload: 160})(t)
	size := int(tc.L3End - tc.L3Off) // 200 bytes
	if size != 200 {
		t.Fatalf("packet of %d bytes", size)
	}
	got := ""
	for range 7 {
		_, acc := evalAt(p, fastpath.HookForward, tc, now)
		got += map[bool]string{true: "a", false: "d"}[acc]
	}
	if got != "aaaaadd" {
		t.Errorf("bytes over 1000/s: %s, want aaaaadd", got)
	}
}

func TestQuota(t *testing.T) {
	var b tb
	rs := &Ruleset{Tables: []*Table{table(FamilyIP, "t",
		b.base("fw", HookForward, 0, VerdictAccept,
			// until 300 bytes: accept while consumed ≤ 300.
			ex(l4(17), &Quota{Bytes: 300}, &Counter{}),
			// over 250 bytes (100 used already): drop once over.
			ex(l4(17), &Quota{Bytes: 250, Consumed: 100, Flags: QuotaInvert}, drop)))}}
	p := mustCompile(t, rs, testEnv)
	u := fwd4("1.1.1.1", "10.1.0.1", udp(1, 2))(t)
	size := uint64(u.L3End - u.L3Off)
	if size != 38 {
		t.Fatalf("udp packet of %d bytes", size)
	}
	var got string
	for range 10 {
		_, acc := evalAt(p, fastpath.HookForward, u, 0)
		got += map[bool]string{true: "a", false: "d"}[acc]
	}
	// The second quota passes 100 + 38k > 250 from the 4th packet on.
	if got != "aaaddddddd" {
		t.Errorf("got %s", got)
	}
	// The first rule counts while within 300 bytes: 7 packets (266).
	if c := p.Rules()[0].Packets; c != 7 {
		t.Errorf("quota until 300: %d packets counted, want 7", c)
	}
	q := p.ops[p.rules[0].ops[0]].quota
	if !q.depleted.Load() || q.consumed.Load() != 10*size {
		t.Errorf("quota: consumed %d, depleted %v", q.consumed.Load(), q.depleted.Load())
	}
}

// TestFragments: the kernel's fast payload path loads from the transport
// offset of a fragment but the first (no fragment check), the slow path
// refuses it.
func TestFragments(t *testing.T) {
	f := frame4(t, macB, macA, "1.1.1.1", "10.1.0.1", tcp(0x1111, 0x2222, "A"))
	// Make it a later fragment: offset 8 bytes, protocol still TCP.
	ip := header.IPv4(f[14:])
	binary.BigEndian.PutUint16(ip[6:], 1)
	ip.SetChecksum(0)
	ip.SetChecksum(ip.CalculateChecksum())
	for _, tc := range []struct {
		name   string
		rule   []Expr
		accept bool // accept-policy chain: the rule drops if it matches
	}{
		{"fast: dport reads payload bytes 2-3", ex(l4(6), ld(PayloadTransport, 2, 2), eq(0x22, 0x22), drop), false},
		{"slow: 3 bytes breaks", ex(l4(6), ld(PayloadTransport, 1, 3), eq(0x11, 0x22, 0x22), drop), true},
		{"slow: unaligned breaks", ex(l4(6), ld(PayloadTransport, 1, 2), eq(0x11, 0x22), drop), true},
		{"l4proto is tcp", ex(l4(6), drop), false},
	} {
		p := mustCompile(t, forward(FamilyIP, nil, tc.rule), testEnv)
		pk := routed(f, portWAN, fastpath.HookForward, 2)
		if pk.L4Off != 0 {
			t.Fatal("Parse gave a fragment a transport header")
		}
		if _, acc := evalAt(p, fastpath.HookForward, pk, 0); acc != tc.accept {
			t.Errorf("%s: accepted %v", tc.name, acc)
		}
	}
	// IPv6: a later fragment's transport offset is the network header
	// (ipv6_find_hdr leaves it), its protocol the fragment's next header.
	f6 := frame6(t, macB, macA, "fd00::1", "fd01::1", udp(1, 2))
	frag := append(append(append([]byte(nil), f6[:54]...), 17, 0, 0, 8, 0, 0, 0, 1), f6[54:]...)
	binary.BigEndian.PutUint16(frag[18:], binary.BigEndian.Uint16(frag[18:])+8)
	frag[20] = 44
	for _, tc := range []struct {
		name   string
		rule   []Expr
		accept bool
	}{
		{"l4proto udp", ex(l4(17), drop), false},
		// The IPv6 header's bytes 4-5 (payload length) at "udp dport".
		{"dport from the network header", ex(l4(17), ld(PayloadTransport, 4, 2), eq(frag[18], frag[19]), drop), false},
		{"slow path breaks", ex(l4(17), ld(PayloadTransport, 4, 3), eq(frag[18], frag[19], frag[20]), drop), true},
	} {
		p := mustCompile(t, forward(FamilyIP6, nil, tc.rule), testEnv)
		pk := routed(frag, portWAN, fastpath.HookForward, 2)
		if _, acc := evalAt(p, fastpath.HookForward, pk, 0); acc != tc.accept {
			t.Errorf("v6 %s: accepted %v", tc.name, acc)
		}
	}
}

func TestMeta(t *testing.T) {
	rs := func(rule ...Expr) *Ruleset {
		r := forward(FamilyIP, nil, ex(rule, drop))
		r.Interfaces = map[uint32]string{1: "lo", 5: "wan0", 6: "lan0"}
		return r
	}
	name := func(s string) []byte { return append([]byte(s), make([]byte, 16-len(s))...) }
	pk := fwd4("1.1.1.1", "10.1.0.1", udp(1, 2))
	bcast := func(t *testing.T) *fastpath.Packet {
		p := routed(frame4(t, header.BroadcastMAC, macA, "1.1.1.1", "10.1.0.1", udp(1, 2)), portWAN, fastpath.HookForward, 2)
		return p
	}
	for _, tc := range []struct {
		name  string
		rule  []Expr
		pk    func(t *testing.T) *fastpath.Packet
		match bool
	}{
		{"iif wan0", ex(meta(MetaIIF), eq(host32(5)...)), pk, true},
		{"iif lan0", ex(meta(MetaIIF), eq(host32(6)...)), pk, false},
		{"oif lan0", ex(meta(MetaOIF), eq(host32(6)...)), pk, true},
		{"iifname wan0", ex(meta(MetaIIFName), eq(name("wan0")...)), pk, true},
		{"iifname wan*", ex(meta(MetaIIFName), eq([]byte("wan")...)), pk, true},
		{"oifname lan0", ex(meta(MetaOIFName), eq(name("lan0")...)), pk, true},
		{"iiftype ether", ex(meta(MetaIIFType), eq(1, 0)), pk, true},
		{"nfproto ipv4", ex(meta(MetaNFProto), eq(2)), pk, true},
		{"protocol ip", ex(meta(MetaProtocol), eq(8, 0)), pk, true},
		{"l4proto udp", ex(meta(MetaL4Proto), eq(17)), pk, true},
		{"len 38", ex(meta(MetaLen), eq(host32(38)...)), pk, true},
		{"pkttype host", ex(meta(MetaPktType), eq(0)), pk, true},
		{"pkttype broadcast", ex(meta(MetaPktType), eq(1)), bcast, true},
		{"mark 0", ex(meta(MetaMark), eq(0, 0, 0, 0)), pk, true},
	} {
		p := mustCompile(t, rs(tc.rule...), testEnv)
		if _, acc := evalAt(p, fastpath.HookForward, tc.pk(t), 0); acc == tc.match {
			t.Errorf("%s: matched %v, want %v", tc.name, !acc, tc.match)
		}
	}
	// A device with no stand-in gets an ifindex no rule names.
	p := mustCompile(t, rs(meta(MetaIIF), eq(host32(5)...)), Env{Ports: []string{"eth9"}, Ifaces: []string{"eth9", "lan0"}})
	if _, acc := evalAt(p, fastpath.HookForward, pk(t), 0); !acc {
		t.Error("iif of a device without a stand-in matched ifindex 5")
	}
	if idx := p.devs[p.ifaceDev[0]].ifindex; idx == 0 || idx == 1 || idx == 5 || idx == 6 {
		t.Errorf("eth9's ifindex %d", idx)
	}
}

// TestBridge: the bridge family sees frames as the kernel's bridge does:
// the VLAN tag in the link-layer view, the network header after it.
func TestBridge(t *testing.T) {
	var b tb
	rs := &Ruleset{Tables: []*Table{table(FamilyBridge, "b",
		b.base("pre", HookPrerouting, 0, VerdictAccept,
			// ether saddr 02:00:00:00:00:0c drop
			ex(ld(PayloadLL, 6, 6), eq(macC()...), drop),
			// vlan id 10 drop: ether type 8021q, then the TCI's VID.
			ex(ld(PayloadLL, 12, 2), eq(0x81, 0x00), ld(PayloadLL, 14, 2),
				&Bitwise{Op: BitwiseMaskXor, SReg: Reg1, DReg: Reg1, Len: 2, Mask: []byte{0x0f, 0xff}, Xor: []byte{0, 0}}, eq(0, 10), drop),
			// ip saddr 1.1.1.1 drop (with nft's ether type dependency).
			ex(ld(PayloadLL, 12, 2), eq(0x08, 0x00), ld(PayloadNetwork, 12, 4), eq(1, 1, 1, 1), drop),
			// meta ibrname "br0" and a udp port through the tag.
			ex(meta(MetaBriIIFName), eq(append([]byte("br0"), make([]byte, 13)...)...), l4(17),
				ld(PayloadTransport, 2, 2), eq(0, 99), drop)),
		b.base("fw", HookForward, 0, VerdictAccept,
			ex(meta(MetaOIFName), eq(append([]byte("p3"), make([]byte, 14)...)...), l4(17), ld(PayloadTransport, 2, 2), eq(0, 98), drop)))}}
	p := mustCompile(t, rs, testEnv)
	u := func(src string, dport uint16) []byte { return frame4(t, macB, macA, src, "10.0.0.2", udp(1, dport)) }
	for _, tc := range []struct {
		name   string
		hook   fastpath.Hook
		pk     *fastpath.Packet
		accept bool
	}{
		{"ether saddr", fastpath.HookBridgePrerouting, bridged(frame4(t, macB, fastpathtest.MACC, "2.2.2.2", "10.0.0.2", udp(1, 2)), portP2, 0), false},
		{"vlan 10", fastpath.HookBridgePrerouting, bridged(tag(u("2.2.2.2", 2), 0x8100, 10), portP2, 0), false},
		{"vlan 11", fastpath.HookBridgePrerouting, bridged(tag(u("2.2.2.2", 2), 0x8100, 11), portP2, 0), true},
		{"ip saddr untagged", fastpath.HookBridgePrerouting, bridged(u("1.1.1.1", 2), portP2, 0), false},
		{"ip saddr tagged: ether type is 8021q", fastpath.HookBridgePrerouting, bridged(tag(u("1.1.1.1", 2), 0x8100, 11), portP2, 0), true},
		{"udp port through the tag", fastpath.HookBridgePrerouting, bridged(tag(u("2.2.2.2", 99), 0x8100, 11), portP2, 0), false},
		{"forward to p3", fastpath.HookBridgeForward, bridged(u("2.2.2.2", 98), portP2, portP3), false},
		{"forward to p2", fastpath.HookBridgeForward, bridged(u("2.2.2.2", 98), portP3, portP2), true},
	} {
		sel, acc := evalAt(p, tc.hook, tc.pk, 0)
		if !sel || acc != tc.accept {
			t.Errorf("%s: selected %v, accepted %v, want %v", tc.name, sel, acc, tc.accept)
		}
	}
	// A port of no bridge is not the bridge family's.
	if sel, _ := evalAt(p, fastpath.HookBridgePrerouting, bridged(u("1.1.1.1", 2), portWAN, 0), 0); sel {
		t.Error("bridge prerouting ran for a frame of a router port")
	}
}

func ip6b(s string) []byte { return net.ParseIP(s).To16() }

func macC() []byte { m := fastpathtest.MACC; return m[:] }

func TestNetdev(t *testing.T) {
	var b tb
	ch := b.base("in", HookIngress, 0, VerdictAccept, ex(&Counter{}, l4(17), ld(PayloadTransport, 2, 2), eq(0, 53), drop))
	ch.Devices = []string{"lan*"}
	eg := b.base("out", HookEgress, 0, VerdictAccept, ex(meta(MetaLen), &Counter{}))
	eg.Devices = []string{"p3"}
	p := mustCompile(t, &Ruleset{Tables: []*Table{table(FamilyNetdev, "n", ch, eg)}}, testEnv)
	f := frame4(t, macB, macA, "1.1.1.1", "10.0.0.2", udp(1, 53))
	pk := bridged(f, portLAN, 0)
	if sel, acc := evalAt(p, fastpath.HookIngress, pk, 0); !sel || acc {
		t.Errorf("lan0 ingress: %v %v", sel, acc)
	}
	if sel, _ := evalAt(p, fastpath.HookIngress, bridged(f, portWAN, 0), 0); sel {
		t.Error("wan0 ingress ran lan*'s chain")
	}
	if sel, acc := evalAt(p, fastpath.HookEgress, bridged(f, portP2, portP3), 0); !sel || !acc {
		t.Errorf("p3 egress: %v %v", sel, acc)
	}
	// Ingress counts from the network header, egress from the Ethernet
	// header.
	rs := p.Rules()
	if rs[0].Bytes != uint64(len(f)-14) || rs[1].Bytes != uint64(len(f)) {
		t.Errorf("bytes: ingress %d, egress %d (frame %d)", rs[0].Bytes, rs[1].Bytes, len(f))
	}
}

// TestLog: the line, and the printk rate limit (10 per 5 s).
func TestLog(t *testing.T) {
	var lines []string
	env := testEnv
	env.Log = func(l string) { lines = append(lines, l) }
	p := mustCompile(t, forward(FamilyIP, nil, ex(&Log{Prefix: "fw: ", Level: 4})), env)
	pk := fwd4("1.1.1.1", "10.1.0.1", tcp(1234, 80, "S"))(t)
	pk.Mark = 0x2a
	for range 12 {
		evalAt(p, fastpath.HookForward, pk, 0)
	}
	if len(lines) != 10 {
		t.Fatalf("%d lines, want 10 (rate limited)", len(lines))
	}
	want := "fw: IN=wan0 OUT=lan0 MAC=02:00:00:00:00:0b:02:00:00:00:00:0a:08:00 SRC=1.1.1.1 DST=10.1.0.1 LEN=40 TOS=0x00 PREC=0x00 TTL=64 ID=4660 " +
		"PROTO=TCP SPT=1234 DPT=80 WINDOW=1000 RES=0x00 SYN URGP=0 MARK=0x2a "
	if lines[0] != want {
		t.Errorf("line\n%q\nwant\n%q", lines[0], want)
	}
	evalAt(p, fastpath.HookForward, pk, fastpath.Time(time.Second))
	if len(lines) != 11 {
		t.Errorf("a second later: %d lines, want 11", len(lines))
	}
}

// TestJumpStack: chains as deep as the kernel's stack allows run; the
// registers of one base chain carry across its jumps.
func TestJumpStack(t *testing.T) {
	var b tb
	var chains []*Chain
	const depth = jumpStackSize - 1
	for i := range depth {
		next := ex(verdict(VerdictJump, fmt.Sprint("c", i+1)))
		if i == depth-1 {
			// The deepest chain compares what the base chain loaded.
			next = ex(&Cmp{Op: CmpEq, SReg: Reg2, Data: []byte{1, 1, 1, 1}}, drop)
		}
		chains = append(chains, b.chain(fmt.Sprint("c", i), next))
	}
	chains = append(chains, b.base("fw", HookForward, 0, VerdictAccept,
		ex(ldr(PayloadNetwork, 12, 4, Reg2)), ex(verdict(VerdictJump, "c0"))))
	p := mustCompile(t, &Ruleset{Tables: []*Table{table(FamilyIP, "t", chains...)}}, testEnv)
	if _, acc := evalAt(p, fastpath.HookForward, fwd4("1.1.1.1", "10.1.0.1", udp(1, 2))(t), 0); acc {
		t.Error("1.1.1.1 not dropped at depth 15")
	}
	if _, acc := evalAt(p, fastpath.HookForward, fwd4("1.1.1.2", "10.1.0.1", udp(1, 2))(t), 0); !acc {
		t.Error("1.1.1.2 dropped")
	}
}

// TestNetdevTagged: a VLAN-tagged frame at netdev ingress, as this
// kernel (6.18) counts it: the tag out of the frame (skb->len 28 for a
// 46-byte frame of a 28-byte IP packet), meta protocol the inner one, the
// network and transport headers after the tag, the tag in the link-layer
// view, a frame to another MAC PACKET_OTHERHOST.
func TestNetdevTagged(t *testing.T) {
	var b tb
	name := func(_ string, rule ...any) []Expr { return ex(append(rule, &Counter{})...) }
	ch := b.base("i", HookIngress, 0, VerdictAccept,
		name("len 28", meta(MetaLen), eq(host32(28)...)),
		name("len 32", meta(MetaLen), eq(host32(32)...)),
		name("protocol ip", meta(MetaProtocol), eq(8, 0)),
		name("ip saddr", meta(MetaProtocol), eq(8, 0), ld(PayloadNetwork, 12, 4), eq(10, 9, 0, 1)),
		name("vlan id 5", ld(PayloadLL, 12, 2), eq(0x81, 0), ld(PayloadLL, 14, 2),
			&Bitwise{Op: BitwiseMaskXor, SReg: Reg1, DReg: Reg1, Len: 2, Mask: []byte{0x0f, 0xff}, Xor: []byte{0, 0}}, eq(0, 5)),
		name("udp dport 2", l4(17), ld(PayloadTransport, 2, 2), eq(0, 2)),
		name("pkttype host", meta(MetaPktType), eq(0)),
		name("pkttype other", meta(MetaPktType), eq(3)))
	ch.Devices = []string{"lan0"}
	p := mustCompile(t, &Ruleset{Tables: []*Table{table(FamilyNetdev, "t", ch)}}, testEnv)
	f := frame4(t, fastpathtest.MAC(2), fastpathtest.MAC(1), "10.9.0.1", "10.9.0.2", l4spec{proto: 17, sport: 1, dport: 2})
	f = tag(f[:14+28], 0x8100, 5)
	if len(f) != 46 {
		t.Fatalf("frame of %d bytes", len(f))
	}
	if sel, acc := evalAt(p, fastpath.HookIngress, bridged(f, portLAN, 0), 0); !sel || !acc {
		t.Fatal("not run")
	}
	for i, want := range []uint64{1, 0, 1, 1, 1, 1, 0, 1} {
		if got := p.Rules()[i].Packets; got != want || got == 1 && p.Rules()[i].Bytes != 28 {
			t.Errorf("rule %d: %d packets %d bytes, want %d", i+1, got, p.Rules()[i].Bytes, want)
		}
	}
}
