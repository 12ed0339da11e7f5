package rules

import (
	"fmt"
	"slices"
	"testing"

	"github.com/xdpfwd/xdpfwd/fastpath"
	"github.com/xdpfwd/xdpfwd/fastpath/fastpathtest"
)

// gen draws a ruleset's pieces from fuzzer bytes (zeros once they run out).
type gen struct{ b []byte }

func (g *gen) n() int {
	if len(g.b) == 0 {
		return 0
	}
	v := g.b[0]
	g.b = g.b[1:]
	return int(v)
}

func (g *gen) bytes(n int) []byte {
	out := make([]byte, n)
	for i := range out {
		out[i] = byte(g.n())
	}
	return out
}

// reg returns a register: mostly valid data registers, sometimes not.
func (g *gen) reg() Register {
	v := g.n()
	switch {
	case v < 40:
		return Register(1 + v%4)
	case v < 250:
		return Reg32(v % 16)
	}
	return Register(v % 30)
}

func (g *gen) verdict(chains int) Verdict {
	k := VerdictKind(1 + g.n()%8)
	v := Verdict{Kind: k}
	if k == VerdictJump || k == VerdictGoto {
		v.Chain = fmt.Sprint("c", g.n()%chains)
	}
	return v
}

func (g *gen) expr(chains int) Expr {
	switch g.n() % 17 {
	case 0:
		return &Payload{Base: PayloadBase(g.n() % 5), Offset: uint32(g.n()), Len: uint32(1 + g.n()%20), DReg: g.reg()}
	case 1:
		return &Cmp{Op: CmpOp(g.n() % 7), SReg: g.reg(), Data: g.bytes(1 + g.n()%17)}
	case 2:
		n := 1 + g.n()%16
		return &Range{Op: RangeOp(g.n() % 2), SReg: g.reg(), From: g.bytes(n), To: g.bytes(n)}
	case 3:
		n := uint32(1 + g.n()%20)
		return &Bitwise{Op: BitwiseOp(g.n() % 6), SReg: g.reg(), DReg: g.reg(), SReg2: g.reg(), Len: n,
			Mask: g.bytes(int(n)), Xor: g.bytes(int(n)), Shift: uint32(g.n() % 33)}
	case 4:
		return &Byteorder{Op: ByteorderOp(g.n() % 2), SReg: g.reg(), DReg: g.reg(), Len: uint32(g.n() % 20), Size: []uint32{2, 4, 8, 3}[g.n()%4]}
	case 5:
		return &Meta{Key: MetaKey(g.n() % 38), DReg: g.reg()}
	case 6:
		return &MetaSet{Key: MetaMark, SReg: g.reg()}
	case 7:
		return &Lookup{Set: "s", SReg: g.reg(), Flags: LookupFlags(g.n() % 2)}
	case 8:
		return &Lookup{Set: "m", SReg: g.reg(), Map: true, DReg: RegVerdict}
	case 9:
		return &Lookup{Set: "d", SReg: g.reg(), Map: true, DReg: g.reg()}
	case 10:
		return &Immediate{DReg: g.reg(), Data: g.bytes(1 + g.n()%16)}
	case 11, 12:
		return &Immediate{DReg: RegVerdict, Verdict: g.verdict(chains)}
	case 13:
		return &Counter{}
	case 14:
		return &Limit{Rate: uint64(1 + g.n()), Unit: uint64(1 + g.n()%3), Burst: uint32(g.n()), Type: LimitType(g.n() % 2), Flags: LimitFlags(g.n() % 2)}
	case 15:
		return &Quota{Bytes: uint64(g.n() * 40), Flags: QuotaFlags(g.n() % 2)}
	}
	return &Reject{Type: RejectType(g.n() % 3), Code: uint8(g.n() % 4)}
}

// ruleset draws a ruleset of one family: chain c0 a base chain, the
// others regular, and a set, a verdict map and a data map.
func (g *gen) ruleset() *Ruleset {
	fams := []Family{FamilyIP, FamilyIP6, FamilyInet, FamilyBridge, FamilyNetdev}
	f := fams[g.n()%len(fams)]
	hooks := map[Family][]Hook{
		FamilyIP:     {HookPrerouting, HookInput, HookForward, HookOutput, HookPostrouting},
		FamilyBridge: {HookPrerouting, HookForward, HookPostrouting}, FamilyNetdev: {HookIngress, HookEgress},
	}
	hs := hooks[f]
	if hs == nil {
		hs = hooks[FamilyIP]
	}
	nchains := 1 + g.n()%4
	t := &Table{Family: f, Name: "t"}
	handle := uint64(0)
	for i := range nchains {
		c := &Chain{Name: fmt.Sprint("c", i)}
		if i == 0 {
			c.Flags, c.Type, c.Hook, c.Policy = ChainBase, ChainFilter, hs[g.n()%len(hs)], VerdictKind(1+g.n()%2)
			c.Devices = []string{"wan0", "p2"}
		}
		for range g.n() % 6 {
			r := &Rule{}
			handle++
			r.Handle = handle
			for range g.n() % 6 {
				r.Exprs = append(r.Exprs, g.expr(nchains))
			}
			c.Rules = append(c.Rules, r)
		}
		t.Chains = append(t.Chains, c)
	}
	klen := uint32(1 + g.n()%8)
	s := &Set{Name: "s", KeyLen: klen}
	if g.n()%2 == 1 {
		s.Flags = SetInterval
	}
	for range g.n() % 6 {
		e := Element{Key: g.bytes(int(klen))}
		switch v := g.n() % 4; {
		case v == 1 && s.Flags&SetInterval != 0:
			e.Flags = ElemIntervalEnd
		case v == 2:
			e.KeyEnd = g.bytes(int(klen))
		case v == 3:
			e = Element{Flags: ElemCatchall}
		}
		s.Elements = append(s.Elements, e)
	}
	m := &Set{Name: "m", KeyLen: klen, Flags: SetMap, DataType: DataTypeVerdict}
	for range g.n() % 4 {
		m.Elements = append(m.Elements, Element{Key: g.bytes(int(klen)), Verdict: g.verdict(nchains)})
	}
	d := &Set{Name: "d", KeyLen: klen, Flags: SetMap, DataLen: uint32(1 + g.n()%16)}
	for range g.n() % 4 {
		d.Elements = append(d.Elements, Element{Key: g.bytes(int(klen)), Data: g.bytes(int(d.DataLen))})
	}
	t.Sets = []*Set{s, m, d}
	return &Ruleset{Tables: []*Table{t}, Interfaces: map[uint32]string{2: "wan0"}}
}

// FuzzInterpreter compiles random programs and runs random frames through
// every hook: whatever the program and the frame, nothing panics (and
// Compile refuses what would read past the registers or the frame), and
// the classifier agrees with the interpreter alone: verdict, mark,
// counters.
func FuzzInterpreter(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 0, 0, 2, 1, 16, 4, 40, 1, 2, 1, 22}, fastpathtest.UDP4(f, macB, macA, 10))
	f.Add([]byte{2, 2, 2, 3, 3, 7, 5, 16, 8, 11, 3}, fastpathtest.TCP6(f, macB, macA, 4))
	f.Add([]byte{3, 0, 1, 5, 4, 0, 12, 2, 1, 6, 5, 14, 3}, tag(fastpathtest.UDP4(f, macB, macA, 0), 0x8100, 5))
	f.Add([]byte{4, 0, 0, 5, 5, 0, 3, 4, 0, 11, 1, 0, 9, 8, 200, 16, 1, 2, 3}, fastpathtest.RawFrame(macB, macA))
	f.Fuzz(func(t *testing.T, prog, frame []byte) {
		g, g2 := &gen{b: prog}, &gen{b: prog}
		rs := g.ruleset()
		p, err := Compile(rs, testEnv)
		if err != nil {
			return
		}
		if len(frame) < 14 || len(frame) > 2000 {
			return
		}
		pi, _ := Compile(g2.ruleset(), testEnv)
		interpreterOnly(pi)
		var w, wi worker
		for h := range fastpath.NumHooks {
			for _, flags := range []uint8{0, 1, 3, 5, 9, 16 | 5, 32} {
				pk := fastpathtest.Parsed(append([]byte(nil), frame...))
				if pk.Action != fastpath.ActionContinue {
					return
				}
				pk.InPort, pk.OutPort = fastpath.PortID(flags%4), fastpath.PortID(flags/4%4)
				pk.Routed = flags&1 != 0
				pk.RouteLocal = flags&2 != 0
				if flags&4 != 0 {
					pk.OutIface = 1 + uint16(flags>>3&1)
				}
				pk.Local = flags&16 != 0
				if flags&32 != 0 {
					pk.InIface = 2
				}
				pk2 := pk
				_, acc := w.evalAt(p, h, &pk, fastpath.Time(len(frame))*1e6)
				_, acc2 := wi.evalAt(pi, h, &pk2, fastpath.Time(len(frame))*1e6)
				if acc != acc2 || pk.Mark != pk2.Mark {
					t.Fatalf("hook %s: classifier accept %v mark %#x, interpreter %v %#x", h, acc, pk.Mark, acc2, pk2.Mark)
				}
			}
			rc, ri := p.Rules(), pi.Rules()
			for j := range rc {
				if !slices.Equal(rc[j].Counters, ri[j].Counters) {
					t.Fatalf("hook %s: rule %d counters %v, interpreter %v", h, j, rc[j].Counters, ri[j].Counters)
				}
			}
		}
	})
}
