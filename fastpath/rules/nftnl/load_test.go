package nftnl

import (
	"encoding/binary"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/xdpfwd/xdpfwd/fastpath/rules"
)

// privileged skips a test that needs root and nft.
func privileged(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces")
	}
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("needs nft (Debian package nftables)")
	}
}

func writeFile(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "rules.nft")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func load(t *testing.T, text string, ifaces ...string) *rules.Ruleset {
	t.Helper()
	rs, err := Load(writeFile(t, text), Options{Interfaces: ifaces})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return rs
}

// ruleOf returns rule i of a chain.
func ruleOf(t *testing.T, rs *rules.Ruleset, f rules.Family, table, chain string, i int) *rules.Rule {
	t.Helper()
	tb := rs.Table(f, table)
	if tb == nil {
		t.Fatalf("no table %s %s in\n%s", f, table, rs)
	}
	c := tb.Chain(chain)
	if c == nil || i >= len(c.Rules) {
		t.Fatalf("no rule %d in chain %s in\n%s", i, chain, rs)
	}
	return c.Rules[i]
}

func wantExprs(t *testing.T, r *rules.Rule, want ...rules.Expr) {
	t.Helper()
	if !reflect.DeepEqual(r.Exprs, want) {
		var w rules.Rule
		w.Exprs = want
		t.Errorf("rule %q:\n got %s\nwant %s", r.Text, r, &w)
	}
}

func host32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }

var (
	accept = &rules.Immediate{DReg: rules.RegVerdict, Verdict: rules.Verdict{Kind: rules.VerdictAccept}}
	drop   = &rules.Immediate{DReg: rules.RegVerdict, Verdict: rules.Verdict{Kind: rules.VerdictDrop}}
	// meta l4proto tcp, the dependency nft adds before a tcp match.
	l4tcp = []rules.Expr{
		&rules.Meta{Key: rules.MetaL4Proto, DReg: rules.Reg1},
		&rules.Cmp{Op: rules.CmpEq, SReg: rules.Reg1, Data: []byte{6}},
	}
	tcpDport = &rules.Payload{Base: rules.PayloadTransport, Offset: 2, Len: 2, DReg: rules.Reg1}
	ipSaddr  = &rules.Payload{Base: rules.PayloadNetwork, Offset: 12, Len: 4, DReg: rules.Reg1}
)

func exprs(parts ...any) []rules.Expr {
	var out []rules.Expr
	for _, p := range parts {
		switch p := p.(type) {
		case rules.Expr:
			out = append(out, p)
		case []rules.Expr:
			out = append(out, p...)
		}
	}
	return out
}

func TestLoadChains(t *testing.T) {
	privileged(t)
	rs := load(t, `
table ip t4 {
	chain pre { type filter hook prerouting priority -300; }
	chain in { type filter hook input priority 0; policy drop; }
	chain fw { type filter hook forward priority 10; }
	chain ou { type route hook output priority -150; }
	chain post { type nat hook postrouting priority 100; }
	chain helper { }
}
table ip6 t6 {
	chain in { type filter hook input priority filter; policy accept; }
}
table inet i {
	chain ing { type filter hook ingress device "lan0" priority -500; }
	chain fw { type filter hook forward priority 0; policy drop; }
}
table bridge b {
	chain pre { type filter hook prerouting priority -200; }
	chain in { type filter hook input priority 0; }
	chain fw { type filter hook forward priority 0; }
	chain ou { type filter hook output priority 0; }
	chain post { type filter hook postrouting priority 300; }
}
table netdev n {
	chain ing { type filter hook ingress device "lan0" priority -500; }
	chain eg { type filter hook egress devices = { "lan0", "wan0" } priority 0; }
}
table arp a {
	chain in { type filter hook input priority 0; }
	chain ou { type filter hook output priority 0; }
}
`, "lan0", "wan0")
	type chain struct {
		f           rules.Family
		table, name string
		typ         rules.ChainType
		hook        rules.Hook
		prio        int32
		policy      rules.VerdictKind
		devices     []string
	}
	for _, w := range []chain{
		{rules.FamilyIP, "t4", "pre", rules.ChainFilter, rules.HookPrerouting, -300, rules.VerdictAccept, nil},
		{rules.FamilyIP, "t4", "in", rules.ChainFilter, rules.HookInput, 0, rules.VerdictDrop, nil},
		{rules.FamilyIP, "t4", "fw", rules.ChainFilter, rules.HookForward, 10, rules.VerdictAccept, nil},
		{rules.FamilyIP, "t4", "ou", rules.ChainRoute, rules.HookOutput, -150, rules.VerdictAccept, nil},
		{rules.FamilyIP, "t4", "post", rules.ChainNAT, rules.HookPostrouting, 100, rules.VerdictAccept, nil},
		{rules.FamilyIP6, "t6", "in", rules.ChainFilter, rules.HookInput, 0, rules.VerdictAccept, nil},
		{rules.FamilyInet, "i", "ing", rules.ChainFilter, rules.HookIngress, -500, rules.VerdictAccept, []string{"lan0"}},
		{rules.FamilyInet, "i", "fw", rules.ChainFilter, rules.HookForward, 0, rules.VerdictDrop, nil},
		{rules.FamilyBridge, "b", "pre", rules.ChainFilter, rules.HookPrerouting, -200, rules.VerdictAccept, nil},
		{rules.FamilyBridge, "b", "in", rules.ChainFilter, rules.HookInput, 0, rules.VerdictAccept, nil},
		{rules.FamilyBridge, "b", "fw", rules.ChainFilter, rules.HookForward, 0, rules.VerdictAccept, nil},
		{rules.FamilyBridge, "b", "ou", rules.ChainFilter, rules.HookOutput, 0, rules.VerdictAccept, nil},
		{rules.FamilyBridge, "b", "post", rules.ChainFilter, rules.HookPostrouting, 300, rules.VerdictAccept, nil},
		{rules.FamilyNetdev, "n", "ing", rules.ChainFilter, rules.HookIngress, -500, rules.VerdictAccept, []string{"lan0"}},
		{rules.FamilyNetdev, "n", "eg", rules.ChainFilter, rules.HookEgress, 0, rules.VerdictAccept, []string{"lan0", "wan0"}},
		{rules.FamilyARP, "a", "in", rules.ChainFilter, rules.HookInput, 0, rules.VerdictAccept, nil},
		{rules.FamilyARP, "a", "ou", rules.ChainFilter, rules.HookOutput, 0, rules.VerdictAccept, nil},
	} {
		tb := rs.Table(w.f, w.table)
		if tb == nil {
			t.Fatalf("no table %s %s", w.f, w.table)
		}
		c := tb.Chain(w.name)
		if c == nil {
			t.Errorf("%s %s: no chain %s", w.f, w.table, w.name)
			continue
		}
		slices.Sort(c.Devices)
		if !c.Base() || c.Type != w.typ || c.Hook != w.hook || c.Priority != w.prio || c.Policy != w.policy ||
			!slices.Equal(c.Devices, w.devices) {
			t.Errorf("%s %s: got %s, want %+v", w.f, w.table, c, w)
		}
	}
	if c := rs.Table(rules.FamilyIP, "t4").Chain("helper"); c == nil || c.Base() || c.Policy != rules.VerdictNone {
		t.Errorf("regular chain: %v", c)
	}
	if len(rs.Tables) != 6 {
		t.Errorf("%d tables, want 6", len(rs.Tables))
	}
}

// TestLoadRules checks the kernel's compiled form of the common matches
// and statements, expression by expression.
func TestLoadRules(t *testing.T) {
	privileged(t)
	chain := func(body string) string {
		return "table ip t {\n\tchain web { }\n\tchain c {\n\t\ttype filter hook forward priority 0;\n\t\t" +
			body + "\n\t}\n}\n"
	}
	for _, tc := range []struct {
		name string
		rule string
		want []rules.Expr
		// check inspects more than the expressions (sets, text).
		check func(t *testing.T, rs *rules.Ruleset, r *rules.Rule)
	}{
		{
			name: "prefix", rule: "ip saddr 10.0.0.0/8 accept",
			want: exprs(&rules.Payload{Base: rules.PayloadNetwork, Offset: 12, Len: 1, DReg: rules.Reg1},
				&rules.Cmp{Op: rules.CmpEq, SReg: rules.Reg1, Data: []byte{10}}, accept),
		},
		{
			name: "prefix with mask", rule: "ip daddr 10.1.2.0/23 drop",
			want: exprs(&rules.Payload{Base: rules.PayloadNetwork, Offset: 16, Len: 4, DReg: rules.Reg1},
				&rules.Bitwise{Op: rules.BitwiseMaskXor, SReg: rules.Reg1, DReg: rules.Reg1, Len: 4,
					Mask: []byte{0xff, 0xff, 0xfe, 0}, Xor: []byte{0, 0, 0, 0}},
				&rules.Cmp{Op: rules.CmpEq, SReg: rules.Reg1, Data: []byte{10, 1, 2, 0}}, drop),
		},
		{
			name: "anonymous set", rule: "tcp dport {22, 80} accept",
			want: exprs(l4tcp, tcpDport, &rules.Lookup{Set: "__set0", SReg: rules.Reg1}, accept),
			check: func(t *testing.T, rs *rules.Ruleset, r *rules.Rule) {
				s := rs.Table(rules.FamilyIP, "t").Set("__set0")
				if s == nil || s.Flags != rules.SetAnonymous|rules.SetConstant || s.KeyLen != 2 {
					t.Fatalf("set: %v", s)
				}
				if keys := elemKeys(s); !slices.Equal(keys, []string{"\x00\x16", "\x00\x50"}) {
					t.Errorf("elements %q", keys)
				}
			},
		},
		{
			name: "mark range", rule: "meta mark 10-20 drop",
			want: exprs(&rules.Meta{Key: rules.MetaMark, DReg: rules.Reg1},
				&rules.Byteorder{Op: rules.ByteorderHton, SReg: rules.Reg1, DReg: rules.Reg1, Len: 4, Size: 4},
				&rules.Cmp{Op: rules.CmpGte, SReg: rules.Reg1, Data: []byte{0, 0, 0, 10}},
				&rules.Cmp{Op: rules.CmpLte, SReg: rules.Reg1, Data: []byte{0, 0, 0, 20}}, drop),
		},
		{
			name: "mark not in range", rule: "meta mark != 10-20 drop",
			want: exprs(&rules.Meta{Key: rules.MetaMark, DReg: rules.Reg1},
				&rules.Byteorder{Op: rules.ByteorderHton, SReg: rules.Reg1, DReg: rules.Reg1, Len: 4, Size: 4},
				&rules.Range{Op: rules.RangeNeq, SReg: rules.Reg1, From: []byte{0, 0, 0, 10}, To: []byte{0, 0, 0, 20}}, drop),
		},
		{
			name: "port range", rule: "tcp dport 1000-2000 accept",
			want: exprs(l4tcp, tcpDport, &rules.Cmp{Op: rules.CmpGte, SReg: rules.Reg1, Data: []byte{0x03, 0xe8}},
				&rules.Cmp{Op: rules.CmpLte, SReg: rules.Reg1, Data: []byte{0x07, 0xd0}}, accept),
		},
		{
			name: "port not in range", rule: "tcp dport != 1000-2000 accept",
			want: exprs(l4tcp, tcpDport, &rules.Range{Op: rules.RangeNeq, SReg: rules.Reg1,
				From: []byte{0x03, 0xe8}, To: []byte{0x07, 0xd0}}, accept),
		},
		{
			name: "concatenation", rule: "ip daddr . tcp dport { 1.2.3.4 . 80 } accept",
			want: exprs(l4tcp, &rules.Payload{Base: rules.PayloadNetwork, Offset: 16, Len: 4, DReg: rules.Reg1},
				&rules.Payload{Base: rules.PayloadTransport, Offset: 2, Len: 2, DReg: rules.Reg32(1)},
				&rules.Lookup{Set: "__set0", SReg: rules.Reg1}, accept),
			check: func(t *testing.T, rs *rules.Ruleset, r *rules.Rule) {
				s := rs.Table(rules.FamilyIP, "t").Set("__set0")
				if s.KeyLen != 8 || !slices.Equal(elemKeys(s), []string{"\x01\x02\x03\x04\x00\x50\x00\x00"}) {
					t.Errorf("set %s, elements %q", s, elemKeys(s))
				}
			},
		},
		{
			name: "verdict map", rule: "tcp dport vmap { 22 : accept, 80 : jump web }",
			want: exprs(l4tcp, tcpDport, &rules.Lookup{Set: "__map0", SReg: rules.Reg1, Map: true, DReg: rules.RegVerdict}),
			check: func(t *testing.T, rs *rules.Ruleset, r *rules.Rule) {
				s := rs.Table(rules.FamilyIP, "t").Set("__map0")
				if !s.VerdictMap() || s.KeyLen != 2 {
					t.Fatalf("map: %s", s)
				}
				got := map[string]rules.Verdict{}
				for _, e := range s.Elements {
					got[string(e.Key)] = e.Verdict
				}
				want := map[string]rules.Verdict{
					"\x00\x16": {Kind: rules.VerdictAccept},
					"\x00\x50": {Kind: rules.VerdictJump, Chain: "web"},
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("elements %v, want %v", got, want)
				}
			},
		},
		{
			name: "iif", rule: `iif "lan0" accept`,
			check: func(t *testing.T, rs *rules.Ruleset, r *rules.Rule) {
				var idx uint32
				for i, n := range rs.Interfaces {
					if n == "lan0" {
						idx = i
					}
				}
				if idx == 0 {
					t.Fatalf("no stand-in lan0 in %v", rs.Interfaces)
				}
				wantExprs(t, r, &rules.Meta{Key: rules.MetaIIF, DReg: rules.Reg1},
					&rules.Cmp{Op: rules.CmpEq, SReg: rules.Reg1, Data: host32(idx)}, accept)
			},
		},
		{
			name: "iifname prefix", rule: `iifname "lan*" accept`,
			want: exprs(&rules.Meta{Key: rules.MetaIIFName, DReg: rules.Reg1},
				&rules.Cmp{Op: rules.CmpEq, SReg: rules.Reg1, Data: []byte("lan")}, accept),
		},
		{
			name: "oifname", rule: `oifname "wan0" accept`,
			want: exprs(&rules.Meta{Key: rules.MetaOIFName, DReg: rules.Reg1},
				&rules.Cmp{Op: rules.CmpEq, SReg: rules.Reg1, Data: append([]byte("wan0"), make([]byte, 12)...)}, accept),
		},
		{
			name: "counter", rule: "counter",
			want: exprs(&rules.Counter{}),
		},
		{
			name: "limit", rule: "limit rate 10/second burst 5 packets accept",
			want: exprs(&rules.Limit{Rate: 10, Unit: 1, Burst: 5, Type: rules.LimitPackets}, accept),
		},
		{
			name: "limit over bytes", rule: "limit rate over 2 mbytes/minute drop",
			want: exprs(&rules.Limit{Rate: 2 << 20, Unit: 60, Type: rules.LimitBytes, Flags: rules.LimitInvert}, drop),
		},
		{
			name: "log", rule: `log prefix "x"`,
			want: exprs(&rules.Log{Type: rules.LogSyslog, Prefix: "x", Level: 4}),
		},
		{
			name: "nflog", rule: `log prefix "y" group 3`,
			want: exprs(&rules.Log{Type: rules.LogNflog, Prefix: "y", Group: 3}),
		},
		{
			name: "reject icmp", rule: "reject with icmp type port-unreachable",
			want: exprs(&rules.Reject{Type: rules.RejectICMPUnreach, Code: 3}),
		},
		{
			name: "reject tcp reset", rule: "tcp dport 22 reject with tcp reset",
			want: exprs(l4tcp, tcpDport, &rules.Cmp{Op: rules.CmpEq, SReg: rules.Reg1, Data: []byte{0, 22}},
				&rules.Reject{Type: rules.RejectTCPReset}),
		},
		{
			name: "quota", rule: "quota 1000 bytes drop",
			want: exprs(&rules.Quota{Bytes: 1000}, drop),
		},
		{
			name: "quota over", rule: "quota over 1 mbytes drop",
			want: exprs(&rules.Quota{Bytes: 1 << 20, Flags: rules.QuotaInvert}, drop),
		},
		{
			name: "mark set", rule: "meta mark set 7",
			want: exprs(&rules.Immediate{DReg: rules.Reg1, Data: host32(7)}, &rules.MetaSet{Key: rules.MetaMark, SReg: rules.Reg1}),
		},
		{
			name: "ct state", rule: "ct state established accept",
			want: exprs(&rules.Ct{Key: rules.CtState, DReg: rules.Reg1},
				&rules.Bitwise{Op: rules.BitwiseMaskXor, SReg: rules.Reg1, DReg: rules.Reg1, Len: 4,
					Mask: host32(2), Xor: host32(0)},
				&rules.Cmp{Op: rules.CmpNeq, SReg: rules.Reg1, Data: host32(0)}, accept),
		},
		{
			name: "ct original saddr", rule: "ct original ip saddr 1.2.3.4 accept",
			want: exprs(&rules.Ct{Key: rules.CtSrcIP, Direction: rules.CtDirOriginal, DReg: rules.Reg1},
				&rules.Cmp{Op: rules.CmpEq, SReg: rules.Reg1, Data: []byte{1, 2, 3, 4}}, accept),
		},
		{
			name: "not equal", rule: "tcp dport != 22 drop",
			want: exprs(l4tcp, tcpDport, &rules.Cmp{Op: rules.CmpNeq, SReg: rules.Reg1, Data: []byte{0, 22}}, drop),
		},
		{
			name: "jump goto return", rule: "ip saddr 1.1.1.1 jump web; ip saddr 2.2.2.2 goto web; return",
			check: func(t *testing.T, rs *rules.Ruleset, _ *rules.Rule) {
				c := rs.Table(rules.FamilyIP, "t").Chain("c")
				for i, want := range []rules.Verdict{{Kind: rules.VerdictJump, Chain: "web"},
					{Kind: rules.VerdictGoto, Chain: "web"}, {Kind: rules.VerdictReturn}} {
					r := c.Rules[i]
					if got := r.Exprs[len(r.Exprs)-1].(*rules.Immediate).Verdict; got != want {
						t.Errorf("rule %d: %s, want %s", i, got, want)
					}
				}
				if c.Rules[1].Position != c.Rules[0].Handle || c.Rules[0].Position != 0 {
					t.Errorf("positions %d %d", c.Rules[0].Position, c.Rules[1].Position)
				}
			},
		},
		{
			name: "comment", rule: `counter comment "hello"`,
			check: func(t *testing.T, rs *rules.Ruleset, r *rules.Rule) {
				if r.Text != `counter packets 0 bytes 0 comment "hello"` || !strings.Contains(string(r.UserData), "hello") {
					t.Errorf("text %q, userdata %q", r.Text, r.UserData)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs := load(t, chain(tc.rule), "lan0", "wan0")
			r := ruleOf(t, rs, rules.FamilyIP, "t", "c", 0)
			if tc.want != nil {
				wantExprs(t, r, tc.want...)
			}
			if tc.check != nil {
				tc.check(t, rs, r)
			}
			if r.Text == "" {
				t.Errorf("rule %d has no text", r.Handle)
			}
		})
	}
}

func elemKeys(s *rules.Set) []string {
	var keys []string
	for _, e := range s.Elements {
		keys = append(keys, string(e.Key))
	}
	slices.Sort(keys)
	return keys
}

// TestLoadNAT decodes what the conntrack and NAT issue will run.
func TestLoadNAT(t *testing.T) {
	privileged(t)
	rs := load(t, `
table ip nat {
	chain pre {
		type nat hook prerouting priority dstnat;
		tcp dport 80 dnat to 10.0.0.1:8080
		tcp dport 81 redirect to :8081
	}
	chain post {
		type nat hook postrouting priority srcnat;
		snat to 1.2.3.4
		oifname "wan0" masquerade random
	}
}
`, "wan0")
	wantExprs(t, ruleOf(t, rs, rules.FamilyIP, "nat", "pre", 0), exprs(l4tcp, tcpDport,
		&rules.Cmp{Op: rules.CmpEq, SReg: rules.Reg1, Data: []byte{0, 80}},
		&rules.Immediate{DReg: rules.Reg1, Data: []byte{10, 0, 0, 1}},
		&rules.Immediate{DReg: rules.Reg2, Data: []byte{0x1f, 0x90}},
		&rules.Nat{Type: rules.NatDNAT, Family: rules.FamilyIP, RegAddrMin: rules.Reg1, RegAddrMax: rules.Reg1,
			RegProtoMin: rules.Reg2, RegProtoMax: rules.Reg2, Flags: rules.NatMapIPs | rules.NatProtoSpecified})...)
	wantExprs(t, ruleOf(t, rs, rules.FamilyIP, "nat", "pre", 1), exprs(l4tcp, tcpDport,
		&rules.Cmp{Op: rules.CmpEq, SReg: rules.Reg1, Data: []byte{0, 81}},
		&rules.Immediate{DReg: rules.Reg1, Data: []byte{0x1f, 0x91}},
		&rules.Redir{RegProtoMin: rules.Reg1, RegProtoMax: rules.Reg1, Flags: rules.NatProtoSpecified})...)
	wantExprs(t, ruleOf(t, rs, rules.FamilyIP, "nat", "post", 0),
		&rules.Immediate{DReg: rules.Reg1, Data: []byte{1, 2, 3, 4}},
		&rules.Nat{Type: rules.NatSNAT, Family: rules.FamilyIP, RegAddrMin: rules.Reg1, RegAddrMax: rules.Reg1,
			Flags: rules.NatMapIPs})
	wantExprs(t, ruleOf(t, rs, rules.FamilyIP, "nat", "post", 1),
		&rules.Meta{Key: rules.MetaOIFName, DReg: rules.Reg1},
		&rules.Cmp{Op: rules.CmpEq, SReg: rules.Reg1, Data: append([]byte("wan0"), make([]byte, 12)...)},
		&rules.Masq{Flags: rules.NatRandom})
}

func TestLoadNamedSets(t *testing.T) {
	privileged(t)
	rs := load(t, `
table inet t {
	set blocked { type ipv4_addr; flags interval; elements = { 10.0.0.0/8, 192.168.1.1 }; }
	set svc { type ipv4_addr . inet_service; flags interval; elements = { 10.0.0.0/8 . 80-90 }; }
	map pol { type inet_service : verdict; elements = { 22 : drop, * : accept }; }
	chain c {
		type filter hook input priority 0;
		ip saddr @blocked drop
		ip saddr != @blocked accept
	}
}
`)
	tb := rs.Table(rules.FamilyInet, "t")
	nfIPv4 := []rules.Expr{&rules.Meta{Key: rules.MetaNFProto, DReg: rules.Reg1},
		&rules.Cmp{Op: rules.CmpEq, SReg: rules.Reg1, Data: []byte{byte(rules.FamilyIP)}}}
	wantExprs(t, tb.Chain("c").Rules[0], exprs(nfIPv4, ipSaddr, &rules.Lookup{Set: "blocked", SReg: rules.Reg1}, drop)...)
	wantExprs(t, tb.Chain("c").Rules[1], exprs(nfIPv4, ipSaddr,
		&rules.Lookup{Set: "blocked", SReg: rules.Reg1, Flags: rules.LookupInvert}, accept)...)

	// An interval set holds each range as its start and the end's
	// successor flagged as an interval end.
	s := tb.Set("blocked")
	if s.Flags != rules.SetInterval || s.KeyLen != 4 {
		t.Errorf("set %s", s)
	}
	got := map[string]rules.ElemFlags{}
	for _, e := range s.Elements {
		got[string(e.Key)] = e.Flags
	}
	want := map[string]rules.ElemFlags{
		"\x00\x00\x00\x00": rules.ElemIntervalEnd, "\x0a\x00\x00\x00": 0, "\x0b\x00\x00\x00": rules.ElemIntervalEnd,
		"\xc0\xa8\x01\x01": 0, "\xc0\xa8\x01\x02": rules.ElemIntervalEnd,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("elements %v, want %v", got, want)
	}

	// A concatenation with intervals: one element, its start and end.
	s = tb.Set("svc")
	if s.Flags != rules.SetInterval|rules.SetConcat || s.KeyLen != 8 || !slices.Equal(s.FieldLen, []uint32{4, 2}) ||
		len(s.Elements) != 1 {
		t.Fatalf("set %s", s)
	}
	if e := s.Elements[0]; string(e.Key) != "\x0a\x00\x00\x00\x00\x50\x00\x00" || string(e.KeyEnd) != "\x0a\xff\xff\xff\x00\x5a\x00\x00" {
		t.Errorf("element %s", e)
	}

	m := tb.Set("pol")
	if !m.VerdictMap() || len(m.Elements) != 2 {
		t.Fatalf("map %s", m)
	}
	for _, e := range m.Elements {
		if e.Flags&rules.ElemCatchall != 0 && (e.Key != nil || e.Verdict.Kind != rules.VerdictAccept) {
			t.Errorf("catch-all %s", e)
		}
	}
}

// TestLoadEverything loads a ruleset with every expression this kernel
// and nft emit that the tests above do not cover; nothing may be refused.
func TestLoadEverything(t *testing.T) {
	privileged(t)
	rs := load(t, everything, "lan0", "wan0")
	seen := map[string]bool{}
	var walk func(es []rules.Expr)
	walk = func(es []rules.Expr) {
		for _, e := range es {
			seen[e.Name()] = true
			if d, ok := e.(*rules.Dynset); ok {
				walk(d.Exprs)
			}
		}
	}
	for _, tb := range rs.Tables {
		for _, c := range tb.Chains {
			for _, r := range c.Rules {
				walk(r.Exprs)
			}
		}
		for _, s := range tb.Sets {
			walk(s.Exprs)
		}
	}
	for _, n := range []string{"payload", "cmp", "bitwise", "meta", "lookup", "immediate", "counter",
		"limit", "log", "reject", "ct", "notrack", "nat", "dynset", "objref", "exthdr", "fib",
		"socket", "hash", "numgen", "dup", "fwd", "connlimit", "rt", "xfrm"} {
		if !seen[n] {
			t.Errorf("no %s expression decoded", n)
		}
	}
	tb := rs.Table(rules.FamilyIP, "t4")
	if o := tb.Object(rules.ObjectQuota, "q1"); o == nil || !reflect.DeepEqual(o.Value, &rules.Quota{Bytes: 100 << 20, Consumed: 10, Flags: rules.QuotaInvert}) {
		t.Errorf("quota object %v", o)
	}
	if o := tb.Object(rules.ObjectCounter, "c1"); o == nil || !reflect.DeepEqual(o.Value, &rules.Counter{Packets: 1, Bytes: 2}) {
		t.Errorf("counter object %v", o)
	}
	// ip dscp set cs1: a payload write that fixes the IPv4 checksum.
	r := tb.Chain("in").Rules[len(tb.Chain("in").Rules)-1]
	if ps, ok := r.Exprs[len(r.Exprs)-1].(*rules.PayloadSet); !ok || *ps != (rules.PayloadSet{Base: rules.PayloadNetwork,
		Len: 2, SReg: rules.Reg1, CsumType: rules.CsumInet, CsumOffset: 10}) {
		t.Errorf("%q: %s", r.Text, r)
	}
	// An anonymous chain's rule is one line of text.
	c := rs.Table(rules.FamilyInet, "i").Chain("in")
	if got := c.Rules[0].Text; got != "jump { counter packets 0 bytes 0; return }" {
		t.Errorf("anonymous chain's rule: %q", got)
	}
}

const everything = `
table ip t4 {
	counter c1 { packets 1 bytes 2; }
	quota q1 { over 100 mbytes used 10 bytes; }
	limit l1 { rate 5/minute burst 3 packets; }
	set dyn { type ipv4_addr; flags dynamic, timeout; timeout 10s; size 100; }
	map cm { type ipv4_addr : counter; elements = { 1.2.3.4 : c1 }; }
	map nm { type ipv4_addr : ipv4_addr; flags interval; elements = { 10.0.0.0/24 : 192.168.0.1 }; }
	set cnt { type ipv4_addr; counter; elements = { 9.9.9.9 }; }
	chain pre { type filter hook prerouting priority raw; notrack; }
	chain in {
		type filter hook input priority 0;
		add @dyn { ip saddr }
		update @dyn { ip saddr limit rate 10/second }
		counter name c1
		quota name q1
		limit name l1
		counter name ip saddr map @cm
		tcp option maxseg size 1400 drop
		tcp option maxseg size set 1360
		fib saddr . iif oif missing drop
		socket transparent 1 accept
		tcp flags & (syn|ack) == syn accept
		ct count over 10 drop
		log group 2 snaplen 100 queue-threshold 5
		log level debug flags all
		ct mark set ct mark and 0xff
		meta nftrace set 1
		meta pkttype broadcast drop
		@ih,0,8 1 drop
		ip dscp set cs1
	}
	chain fw {
		type filter hook forward priority 10;
		meta mark set jhash ip saddr mod 2
		meta mark set symhash mod 2
		meta mark set numgen inc mod 2
		meta mark set ct mark >> 16
		dup to 1.2.3.4 device "lan0"
		rt ip nexthop 1.2.3.4 accept
		ipsec in reqid 1 accept
	}
	chain nat {
		type nat hook prerouting priority -100;
		dnat to ip saddr map @nm
		meta l4proto tcp dnat to 1.2.3.4-1.2.3.10:1000-2000 persistent
	}
}
table ip6 t6 {
	chain in {
		type filter hook input priority 0;
		exthdr frag exists drop
		ip6 saddr ::1 reject with icmpv6 type admin-prohibited
	}
}
table bridge b {
	chain pre { type filter hook prerouting priority -200; ether saddr 00:11:22:33:44:55 drop; vlan id 10 accept; }
}
table netdev n {
	chain ing { type filter hook ingress device "lan0" priority -500; ip saddr 1.1.1.1 fwd to "wan0"; }
}
table inet i {
	chain in {
		type filter hook input priority 0;
		jump { counter; return; }
		reject with icmpx type admin-prohibited
	}
}
`

func TestLoadSyntaxError(t *testing.T) {
	privileged(t)
	p := writeFile(t, "table ip t {\n\tchain c {\n\t\tip saddr 1.2.3.4 acept\n\t}\n}\n")
	_, err := Load(p, Options{})
	var ne *NftError
	if !errors.As(err, &ne) || !strings.Contains(err.Error(), p+":3:") || !strings.Contains(err.Error(), "syntax error") {
		t.Fatalf("got %v, want nft's syntax error at %s:3", err, p)
	}
}

func TestLoadMissingInterface(t *testing.T) {
	privileged(t)
	p := writeFile(t, "table ip t {\n\tchain c {\n\t\ttype filter hook input priority 0;\n\t\tiif \"lan0\" accept\n\t}\n}\n")
	_, err := Load(p, Options{Interfaces: []string{"wan0"}})
	var ne *NftError
	if !errors.As(err, &ne) || !strings.Contains(err.Error(), p+":4:") ||
		!strings.Contains(err.Error(), "Interface does not exist") || !strings.Contains(err.Error(), "iifname") {
		t.Fatalf("got %v, want nft's error at %s:4 with a hint", err, p)
	}
}

func TestLoadNoNft(t *testing.T) {
	_, err := Load("rules.nft", Options{Nft: "/nonexistent/nft"})
	if err == nil || !strings.Contains(err.Error(), "nftables") {
		t.Fatalf("got %v, want an error naming the package nftables", err)
	}
}

// TestLoadLeavesNoNamespace: the calling thread stays in its namespace,
// the throwaway one has no thread or process left in it, and the host has
// no stand-in interface, whether the file loads or not.
func TestLoadLeavesNoNamespace(t *testing.T) {
	privileged(t)
	good := writeFile(t, "table ip t {\n\tchain c { type filter hook input priority 0; iif \"xdpfwdtst0\" accept; }\n}\n")
	bad := writeFile(t, "table ip t {\n\tchain c { type filter hook input priority 0; nonsense; }\n}\n")
	for _, p := range []string{good, bad} {
		runtime.LockOSThread()
		before, err := os.Readlink("/proc/thread-self/ns/net")
		if err != nil {
			t.Fatal(err)
		}
		var ino uint64
		testHookNetns = func(i uint64) { ino = i }
		_, err = Load(p, Options{Interfaces: []string{"xdpfwdtst0", "xdpfwdtst1"}})
		testHookNetns = nil
		after, _ := os.Readlink("/proc/thread-self/ns/net")
		runtime.UnlockOSThread()
		if (err == nil) != (p == good) {
			t.Fatalf("%s: Load: %v", p, err)
		}
		if before != after {
			t.Errorf("calling thread moved from %s to %s", before, after)
		}
		if ino == 0 {
			t.Fatal("no namespace seen")
		}
		if n := namespaceUsers(t, ino); n != 0 {
			t.Errorf("%d threads or processes still in the throwaway namespace", n)
		}
		for _, name := range []string{"xdpfwdtst0", "xdpfwdtst1"} {
			if _, err := net.InterfaceByName(name); err == nil {
				t.Errorf("stand-in %s left in the host namespace", name)
			}
		}
	}
}

// namespaceUsers counts the threads of this process and the processes
// whose network namespace has inode ino.
func namespaceUsers(t *testing.T, ino uint64) int {
	t.Helper()
	paths, _ := filepath.Glob("/proc/self/task/*/ns/net")
	procs, _ := filepath.Glob("/proc/[0-9]*/ns/net")
	n := 0
	for _, p := range append(paths, procs...) {
		var st unix.Stat_t
		if unix.Stat(p, &st) == nil && st.Ino == ino {
			n++
		}
	}
	return n
}
