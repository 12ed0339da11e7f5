package rules

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/xdpfwd/xdpfwd/fastpath"
	"github.com/xdpfwd/xdpfwd/nat"
)

// TestCompileRefuses: what xdpfwd does not run is an error naming the
// table, chain and rule with its text, never a weakened rule.
func TestCompileRefuses(t *testing.T) {
	rule := func(f Family, h Hook, e ...Expr) *Ruleset {
		var b tb
		return &Ruleset{Tables: []*Table{table(f, "t", b.base("c", h, 0, VerdictAccept, e))}}
	}
	fw := func(e ...Expr) *Ruleset { return rule(FamilyIP, HookForward, e...) }
	for _, tc := range []struct {
		name        string
		rs          *Ruleset
		want        []string
		unsupported bool
	}{
		{"ct id", fw(&Ct{Key: CtID, DReg: Reg1}, eq(2, 0, 0, 0), accept),
			[]string{"table ip t, chain c, rule handle 1 (rule 1)", "ct id", "not a key xdpfwd reads"}, true},
		{"ct zone set", fw(&Immediate{DReg: Reg1, Data: host32(1)}, &CtSet{Key: CtZone, SReg: Reg1}), []string{"only ct mark set"}, true},
		{"ct count", fw(&Connlimit{Count: 1}), []string{"ct count", "connection limits"}, true},
		{"snat", fw(&Nat{Type: NatSNAT, Family: FamilyIP}), []string{"nat statement", "connection tracking"}, true},
		{"masquerade", fw(&Masq{}), []string{"masq statement"}, true},
		{"redirect", fw(&Redir{}), []string{"redir statement"}, true},
		{"connlimit", fw(&Connlimit{Count: 1}), []string{"connection limits"}, true},
		{"nat chain", func() *Ruleset {
			rs := fw()
			rs.Tables[0].Chains[0].Type = ChainNAT
			return rs
		}(), []string{"chain c: type nat chain", "connection tracking"}, true},
		{"queue", fw(&Queue{Num: 1}), []string{"queue expressions"}, true},
		{"queue verdict", fw(verdict(VerdictQueue)), []string{"verdict queue"}, true},
		{"dup", fw(&Dup{}), []string{"dup expressions"}, true},
		{"fwd", fw(&Fwd{}), []string{"fwd expressions"}, true},
		{"numgen", fw(&Numgen{Modulus: 2, DReg: Reg1}), []string{"numgen expressions"}, true},
		{"hash", fw(&Hash{Modulus: 2, DReg: Reg1}), []string{"hash expressions"}, true},
		{"fib", fw(&Fib{Result: FibResultOIF, DReg: Reg1}), []string{"fib lookups"}, true},
		{"socket", fw(&Socket{DReg: Reg1}), []string{"socket expressions"}, true},
		{"tproxy", fw(&Tproxy{}), []string{"tproxy"}, true},
		{"synproxy", fw(&Synproxy{}), []string{"synproxy"}, true},
		{"xfrm", fw(&Xfrm{DReg: Reg1}), []string{"xfrm"}, true},
		{"osf", fw(&Osf{DReg: Reg1}), []string{"osf"}, true},
		{"rt", fw(&Rt{DReg: Reg1}), []string{"rt expressions"}, true},
		{"last", fw(&Last{}), []string{"last expressions"}, true},
		{"exthdr", fw(&Exthdr{DReg: Reg1, Len: 1}), []string{"exthdr"}, true},
		{"dynset", fw(&Dynset{Set: "s", SRegKey: Reg1}), []string{"dynset"}, true},
		{"payload write", fw(&PayloadSet{Base: PayloadNetwork, Len: 1, SReg: Reg1}), []string{"payload writes"}, true},
		{"meta priority set", fw(&MetaSet{Key: MetaPriority, SReg: Reg1}), []string{"meta priority set"}, true},
		{"meta cpu", fw(&Meta{Key: MetaCPU, DReg: Reg1}), []string{"meta cpu"}, true},
		{"ibrname outside bridge", fw(&Meta{Key: MetaBriIIFName, DReg: Reg1}), []string{"bridge family"}, true},
		{"nflog", fw(&Log{Type: LogNflog, Group: 2}), []string{"nflog group"}, true},
		{"object map", fw(&Objref{Set: "m", SReg: Reg1}), []string{"object maps"}, true},
		{"arp family", rule(FamilyARP, HookInput), []string{"table arp t", "arp family"}, true},
		{"inet ingress", rule(FamilyInet, HookIngress), []string{"ingress hook"}, true},
		{"bridge input", rule(FamilyBridge, HookInput), []string{"input hook"}, true},
		{"netdev reject", rule(FamilyNetdev, HookIngress, &Reject{Type: RejectTCPReset}), []string{"netdev family"}, true},
		{"netdev on a bridge", func() *Ruleset {
			rs := rule(FamilyNetdev, HookIngress)
			rs.Tables[0].Chains[0].Devices = []string{"br0"}
			return rs
		}(), []string{"bridge device \"br0\""}, true},
		{"timeout set", func() *Ruleset {
			rs := fw(ld(PayloadNetwork, 12, 4), &Lookup{Set: "s", SReg: Reg1})
			rs.Tables[0].Sets = []*Set{{Name: "s", Flags: SetTimeout, KeyLen: 4}}
			return rs
		}(), []string{"set s", "time out"}, true},
		// Not unsupported: wrong.
		{"register overflow", fw(ldr(PayloadNetwork, 0, 16, Reg4+0), ldr(PayloadNetwork, 0, 8, Reg32(15))), []string{"run past the registers"}, false},
		{"verdict register load", fw(&Payload{Base: PayloadNetwork, Len: 4, DReg: RegVerdict}), []string{"not a data register"}, false},
		{"no set", fw(&Lookup{Set: "nope", SReg: Reg1}), []string{"no set \"nope\""}, false},
		{"jump to nowhere", fw(verdict(VerdictJump, "nope")), []string{"no chain \"nope\""}, false},
		{"jump to a base chain", fw(verdict(VerdictJump, "c")), []string{"base chain"}, false},
		{"shift by 0", fw(meta(MetaMark), &Bitwise{Op: BitwiseLShift, SReg: Reg1, DReg: Reg1, Len: 4}), []string{"shift by 0"}, false},
		{"reject at postrouting", rule(FamilyIP, HookPostrouting, &Reject{Type: RejectTCPReset}), []string{"reject at a hook", "postrouting"}, false},
		{"loop", func() *Ruleset {
			var b tb
			return &Ruleset{Tables: []*Table{table(FamilyIP, "t",
				b.chain("a", ex(verdict(VerdictJump, "b"))), b.chain("b", ex(verdict(VerdictGoto, "a"))),
				b.base("c", HookForward, 0, VerdictAccept, ex(verdict(VerdictJump, "a"))))}}
		}(), []string{"loop"}, false},
		{"16 deep", func() *Ruleset {
			var b tb
			var cs []*Chain
			for i := range jumpStackSize {
				var r []Expr
				if i < jumpStackSize-1 {
					r = ex(verdict(VerdictJump, fmt.Sprint("c", i+1)))
				}
				cs = append(cs, b.chain(fmt.Sprint("c", i), r))
			}
			cs = append(cs, b.base("base", HookForward, 0, VerdictAccept, ex(verdict(VerdictJump, "c0"))))
			return &Ruleset{Tables: []*Table{table(FamilyIP, "t", cs...)}}
		}(), []string{"chain base", "16 chains deep", "limit is 15"}, false},
		{"vmap deep", func() *Ruleset {
			var b tb
			var cs []*Chain
			for i := range jumpStackSize - 1 {
				var r []Expr
				if i < jumpStackSize-2 {
					r = ex(verdict(VerdictJump, fmt.Sprint("c", i+1)))
				}
				cs = append(cs, b.chain(fmt.Sprint("c", i), r))
			}
			cs = append(cs, b.chain("x", ex(verdict(VerdictJump, "c0"))),
				b.base("base", HookForward, 0, VerdictAccept, ex(ld(PayloadNetwork, 9, 1), &Lookup{Set: "m", SReg: Reg1, Map: true})))
			t := table(FamilyIP, "t", cs...)
			t.Sets = []*Set{{Name: "m", Flags: SetMap, KeyLen: 1, DataType: DataTypeVerdict,
				Elements: []Element{{Key: []byte{6}, Verdict: Verdict{Kind: VerdictGoto, Chain: "x"}}}}}
			return &Ruleset{Tables: []*Table{t}}
		}(), []string{"16 chains deep"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compile(tc.rs, testEnv)
			if err == nil {
				t.Fatal("compiled")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if errors.Is(err, ErrUnsupported) != tc.unsupported {
				t.Errorf("error %q: unsupported %v, want %v", err, errors.Is(err, ErrUnsupported), tc.unsupported)
			}
			var ce *Error
			if !errors.As(err, &ce) || ce.Table != "t" {
				t.Errorf("error %q is not an *Error naming the table", err)
			}
		})
	}
}

// TestCompileAccepts: what the interpreter runs compiles, dormant tables
// and notrack included.
func TestCompileAccepts(t *testing.T) {
	var b tb
	rs := &Ruleset{Tables: []*Table{
		table(FamilyIP, "raw", b.base("pre", HookPrerouting, -300, VerdictAccept, ex(&Notrack{}))),
		{Family: FamilyIP, Name: "sleep", Flags: TableDormant, Chains: []*Chain{b.base("c", HookForward, 0, VerdictDrop)}},
		table(FamilyIP6, "r", b.base("in", HookInput, 0, VerdictAccept, ex(&Reject{Type: RejectICMPUnreach, Code: 1}))),
		table(FamilyBridge, "br", b.base("pre", HookPrerouting, 0, VerdictAccept, ex(&Reject{Type: RejectICMPXUnreach, Code: 3}))),
	}}
	p := mustCompile(t, rs, testEnv)
	if len(p.hooks[fastpath.HookForward].v4) != 0 || p.active[fastpath.HookForward] {
		t.Error("a dormant table's chain is hooked")
	}
}

// nopNAT is a NAT that binds and rewrites nothing, for Compile's checks.
type nopNAT struct{}

func (nopNAT) Unbound(*fastpath.Packet, nat.Manip) bool                          { return false }
func (nopNAT) Setup(*fastpath.Packet, *nat.Range, nat.Manip, fastpath.Time) bool { return true }
func (nopNAT) Masquerade(*fastpath.Packet, *nat.Range, fastpath.Time) bool       { return true }
func (nopNAT) Redirect(*fastpath.Packet, *nat.Range, fastpath.Time) bool         { return true }
func (nopNAT) Apply(*fastpath.Packet, nat.Manip, fastpath.Time, bool) bool       { return true }

// TestCompileNATChains: with NAT, nat chains at prerouting, input and
// postrouting compile and make the program track connections; one at
// output is refused, naming why.
func TestCompileNATChains(t *testing.T) {
	for _, tc := range []struct {
		hook Hook
		err  string
	}{
		{HookPrerouting, ""}, {HookInput, ""}, {HookPostrouting, ""},
		{HookOutput, "a type nat chain at the output hook"},
	} {
		var b tb
		ch := b.base("c", tc.hook, 0, VerdictAccept)
		ch.Type = ChainNAT
		rs := &Ruleset{Tables: []*Table{table(FamilyIP, "t", ch)}}
		p, err := Compile(rs, Env{NAT: nopNAT{}})
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", tc.hook, err)
		case tc.err == "" && !p.UsesConntrack():
			t.Errorf("%s: a nat chain does not turn connection tracking on", tc.hook)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, ErrUnsupported)):
			t.Errorf("%s: error %v, want %q (unsupported)", tc.hook, err, tc.err)
		}
	}
}
