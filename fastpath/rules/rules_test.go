package rules

import (
	"strings"
	"testing"
)

func TestRegisterOffset(t *testing.T) {
	for _, tc := range []struct {
		r    Register
		off  int
		name string
	}{
		{RegVerdict, -1, "reg 0"},
		{Reg1, 0, "reg 1"},
		{Reg2, 16, "reg 2"},
		{Reg4, 48, "reg 4"},
		{Reg32(0), 0, "reg 8"},
		{Reg32(1), 4, "reg 9"},
		{Reg32(4), 16, "reg 12"},
		{Reg32(15), 60, "reg 23"},
		{Register(5), -1, "reg 5"},
		{Register(24), -1, "reg 24"},
	} {
		if got := tc.r.Offset(); got != tc.off {
			t.Errorf("%s: offset %d, want %d", tc.r, got, tc.off)
		}
		if tc.r.String() != tc.name {
			t.Errorf("%d: %q", uint32(tc.r), tc.r.String())
		}
		if tc.r.Valid() != (tc.off >= 0 || tc.r == RegVerdict) {
			t.Errorf("%s: Valid %v", tc.r, tc.r.Valid())
		}
	}
}

func TestStrings(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{FamilyIP6.String(), "ip6"},
		{Family(99).String(), "family(99)"},
		{HookPostrouting.String(), "postrouting"},
		{Verdict{Kind: VerdictJump, Chain: "web"}.String(), "jump web"},
		{Verdict{Kind: VerdictAccept}.String(), "accept"},
		{(SetAnonymous | SetConstant | 0x1000).String(), "anonymous,constant,0x1000"},
		{MetaKey(36).String(), "meta(36)"},
		{MetaBriIIFHWAddr.String(), "bri_iifhwaddr"},
		{CtSrcIP6.String(), "src_ip6"},
		{(&Payload{Base: PayloadNetwork, Offset: 12, Len: 4, DReg: Reg1}).String(),
			"payload load 4b @ network header + 12 => reg 1"},
		{(&Cmp{Op: CmpNeq, SReg: Reg1, Data: []byte{0, 22}}).String(), "cmp neq reg 1 0x0016"},
		{(&Lookup{Set: "__map0", SReg: Reg1, Map: true}).String(), "lookup reg 1 set __map0 dreg 0"},
		{(&Immediate{Verdict: Verdict{Kind: VerdictDrop}}).String(), "immediate reg 0 drop"},
		{(&Nat{Type: NatSNAT, Family: FamilyIP, RegAddrMin: Reg1, RegAddrMax: Reg1, Flags: NatMapIPs}).String(),
			"nat snat ip addr_min reg 1 addr_max reg 1 flags map-ips"},
		{Element{Key: []byte{0, 80}, Verdict: Verdict{Kind: VerdictGoto, Chain: "x"}}.String(), "element 0x0050 : goto x"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

func TestRulesetString(t *testing.T) {
	rs := &Ruleset{Tables: []*Table{{
		Family: FamilyInet, Name: "t", Handle: 1,
		Sets: []*Set{{Name: "s", Flags: SetInterval, KeyLen: 4, Elements: []Element{{Key: []byte{10, 0, 0, 0}}}}},
		Chains: []*Chain{{Name: "in", Handle: 2, Flags: ChainBase, Type: ChainFilter, Hook: HookInput, Policy: VerdictDrop,
			Rules: []*Rule{{Handle: 3, Text: "accept", Exprs: []Expr{&Immediate{Verdict: Verdict{Kind: VerdictAccept}}}}}}},
		Objects: []*Object{{Name: "c", Type: ObjectCounter, Value: &Counter{Packets: 1, Bytes: 2}}},
	}}}
	want := `table inet t handle 1
	set s handle 0 id 0 flags interval key type 0x0 len 4
		element 0x0a000000
	counter c handle 0 [ counter pkts 1 bytes 2 ]
	chain in handle 2 type filter hook input priority 0 policy drop
		rule handle 3: accept
			[ immediate reg 0 accept ]
`
	if got := rs.String(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	tb := rs.Table(FamilyInet, "t")
	if tb.Chain("in").Rule(3) == nil || tb.Set("s") == nil || tb.Object(ObjectCounter, "c") == nil ||
		rs.Table(FamilyIP, "t") != nil {
		t.Error("lookups")
	}
	if !strings.Contains(tb.Chain("in").String(), "policy drop") {
		t.Error(tb.Chain("in"))
	}
}
