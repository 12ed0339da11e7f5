package rules_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/xdpfwd/xdpfwd/fastpath"
	"github.com/xdpfwd/xdpfwd/fastpath/fastpathtest"
	"github.com/xdpfwd/xdpfwd/fastpath/rules"
	"github.com/xdpfwd/xdpfwd/fastpath/rules/nftnl"
)

// These tests load real rulesets with nft into a throwaway namespace
// (nftnl.Load) and run the kernel's compiled form. They need root and
// nft; with both they never skip.

func privileged(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: nftnl.Load creates network namespaces")
	}
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("needs nft (Debian package nftables)")
	}
}

// load loads text with stand-ins for the test topology's devices and
// compiles it.
func load(t *testing.T, text string) *rules.Program {
	t.Helper()
	p, err := loadErr(t, text)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func loadErr(t *testing.T, text string) (*rules.Program, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "rules.nft")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	rs, err := nftnl.Load(path, nftnl.Options{Interfaces: []string{"wan0", "lan0", "p2", "p3", "br0"}})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return rules.Compile(rs, rules.TestEnv)
}

const (
	wan fastpath.PortID = 0
	lan fastpath.PortID = 1
	p2  fastpath.PortID = 2
	p3  fastpath.PortID = 3
)

const filterRuleset = `
table inet filter {
	set blocked { type ipv4_addr; flags interval; elements = { 10.66.0.0/16, 192.168.1.1 }; }
	set svc { type ipv4_addr . inet_service; elements = { 10.1.0.1 . 443 }; }
	set ranges { type ipv4_addr . inet_service; flags interval; elements = { 10.1.0.0/24 . 7000-7100 }; }
	counter named { }
	chain web {
		counter
		ip saddr 1.2.3.4 drop
		return
		counter
	}
	chain other {
		udp dport 7 accept
	}
	chain pre {
		type filter hook prerouting priority -10;
		udp dport 5353 meta mark set 42
	}
	chain fw {
		type filter hook forward priority 0; policy drop;
		meta mark 42 counter drop
		ip saddr @blocked counter drop
		ip saddr 10.0.0.0/8 ip daddr 10.1.0.0/16 tcp dport { 22, 80 } counter accept
		ip daddr . tcp dport @svc accept
		ip daddr . tcp dport @ranges accept
		tcp dport vmap { 8080 : jump web, 8081 : goto other, 8082 : drop }
		tcp dport { 8080, 8081 } accept
		tcp dport != 1000-2000 tcp dport 3000 accept
		tcp dport 1500 accept
		iif "wan0" oif "lan0" udp dport 53 accept
		iifname "lan*" udp dport 54 accept
		udp dport 9 limit rate 2/second burst 2 packets accept
		udp dport 10 quota until 100 bytes accept
		counter name "named"
		ip6 saddr fd00::/16 udp dport 11 accept
		tcp dport 23 reject with tcp reset
		udp dport 12 reject with icmpx type admin-prohibited
	}
	chain fw2 {
		type filter hook forward priority 10; policy accept;
		ip saddr 5.5.5.5 udp dport 53 drop
		counter
	}
}
`

func TestLoadedFilter(t *testing.T) {
	privileged(t)
	p := load(t, filterRuleset)
	fw := fastpath.HookForward
	out := func(f []byte) *fastpath.Packet { return rules.Routed(f, wan, fw, 2) }
	back := func(f []byte) *fastpath.Packet { return rules.Routed(f, lan, fw, 1) }
	now := fastpath.Time(time.Hour)
	for _, tc := range []struct {
		name   string
		pk     *fastpath.Packet
		accept bool
	}{
		{"blocked", out(rules.Frame4(t, "10.66.1.1", "10.1.0.1", "tcp", 1, 22, "S")), false},
		{"10/8 to 10.1/16 port 22", out(rules.Frame4(t, "10.1.2.3", "10.1.0.1", "tcp", 1, 22, "S")), true},
		{"10/8 to 10.1/16 port 80", out(rules.Frame4(t, "10.1.2.3", "10.1.0.1", "tcp", 1, 80, "S")), true},
		{"11/8 port 22", out(rules.Frame4(t, "11.0.0.1", "10.1.0.1", "tcp", 1, 22, "S")), false},
		{"svc", out(rules.Frame4(t, "1.1.1.1", "10.1.0.1", "tcp", 1, 443, "S")), true},
		{"not svc", out(rules.Frame4(t, "1.1.1.1", "10.1.0.1", "tcp", 1, 444, "S")), false},
		{"ranges", out(rules.Frame4(t, "1.1.1.1", "10.1.0.7", "tcp", 1, 7050, "S")), true},
		{"ranges: address out", out(rules.Frame4(t, "1.1.1.1", "10.1.1.7", "tcp", 1, 7050, "S")), false},
		{"ranges: port out", out(rules.Frame4(t, "1.1.1.1", "10.1.0.7", "tcp", 1, 7101, "S")), false},
		{"vmap jump web, dropped there", out(rules.Frame4(t, "1.2.3.4", "10.1.0.1", "tcp", 1, 8080, "S")), false},
		{"vmap jump web, back", out(rules.Frame4(t, "1.2.3.5", "10.1.0.1", "tcp", 1, 8080, "S")), true},
		{"vmap goto other: no way back", out(rules.Frame4(t, "1.2.3.5", "10.1.0.1", "tcp", 1, 8081, "S")), false},
		{"vmap drop", out(rules.Frame4(t, "1.2.3.5", "10.1.0.1", "tcp", 1, 8082, "S")), false},
		{"!= range, 3000", out(rules.Frame4(t, "1.1.1.1", "10.1.0.1", "tcp", 1, 3000, "S")), true},
		{"1500", out(rules.Frame4(t, "1.1.1.1", "10.1.0.1", "tcp", 1, 1500, "S")), true},
		{"iif wan0 oif lan0", out(rules.Frame4(t, "1.1.1.1", "10.1.0.1", "udp", 1, 53, "")), true},
		{"iif lan0: not", back(rules.Frame4(t, "10.1.0.1", "1.1.1.1", "udp", 1, 53, "")), false},
		{"accepted, then fw2 drops", out(rules.Frame4(t, "5.5.5.5", "10.1.0.1", "udp", 1, 53, "")), false},
		{"iifname lan*", back(rules.Frame4(t, "10.1.0.1", "1.1.1.1", "udp", 1, 54, "")), true},
		{"iifname wan0", out(rules.Frame4(t, "1.1.1.1", "10.1.0.1", "udp", 1, 54, "")), false},
		{"limit 1", out(rules.Frame4(t, "1.1.1.1", "10.1.0.1", "udp", 1, 9, "")), true},
		{"limit 2", out(rules.Frame4(t, "1.1.1.1", "10.1.0.1", "udp", 1, 9, "")), true},
		{"limit 3", out(rules.Frame4(t, "1.1.1.1", "10.1.0.1", "udp", 1, 9, "")), false},
		{"quota 1", out(rules.Frame4(t, "1.1.1.1", "10.1.0.1", "udp", 1, 10, "")), true},
		{"quota 2", out(rules.Frame4(t, "1.1.1.1", "10.1.0.1", "udp", 1, 10, "")), true},
		{"quota 3", out(rules.Frame4(t, "1.1.1.1", "10.1.0.1", "udp", 1, 10, "")), false},
		{"ip6 fd00::/16", out(rules.Frame6(t, "fd00::1", "fd01::1", "udp", 1, 11, "")), true},
		{"ip6 fd02::/16", out(rules.Frame6(t, "fd02::1", "fd01::1", "udp", 1, 11, "")), false},
	} {
		sel, acc := rules.EvalAt(p, fw, tc.pk, now)
		if !sel || acc != tc.accept {
			t.Errorf("%s: selected %v, accepted %v, want %v", tc.name, sel, acc, tc.accept)
		}
	}
	// meta mark set at prerouting, matched at forward.
	pk := rules.Routed(rules.Frame4(t, "1.1.1.1", "10.1.0.1", "udp", 1, 5353, ""), wan, fastpath.HookPrerouting, 0)
	if sel, acc := rules.EvalAt(p, fastpath.HookPrerouting, pk, now); !sel || !acc || pk.Mark != 42 {
		t.Fatalf("prerouting: %v %v, mark %d", sel, acc, pk.Mark)
	}
	pk.InIface, pk.OutIface = 1, 2
	if _, acc := rules.EvalAt(p, fw, pk, now); acc {
		t.Error("mark 42 not dropped at forward")
	}
	// The counters, rule by rule (the kernel's texts).
	counts := map[string]uint64{}
	for _, r := range p.Rules() {
		if _, dup := counts[r.Chain+": "+r.Text]; !dup { // web's first counter
			counts[r.Chain+": "+r.Text] = r.Packets
		}
	}
	for text, want := range map[string]uint64{
		"fw: meta mark 0x0000002a counter packets 0 bytes 0 drop":                                            1,
		"fw: ip saddr @blocked counter packets 0 bytes 0 drop":                                               1,
		"fw: ip saddr 10.0.0.0/8 ip daddr 10.1.0.0/16 tcp dport { 22, 80 } counter packets 0 bytes 0 accept": 2,
		"web: counter packets 0 bytes 0":                                                                     2,
		"fw2: counter packets 0 bytes 0":                                                                     14,
		"fw: counter name \"named\"":                                                                         10,
	} {
		got, ok := counts[text]
		if !ok {
			t.Errorf("no rule %q in %v", text, counts)
			continue
		}
		if got != want {
			t.Errorf("%q: %d packets, want %d", text, got, want)
		}
	}
	if o := p.Objects(); len(o) != 1 || o[0].Name != "named" || o[0].Value.(*rules.Counter).Packets != 10 {
		t.Errorf("objects %+v", o)
	}
}

// TestLoadedReject sends through the engine what a real ruleset rejects
// and checks the answers the kernel would send.
func TestLoadedReject(t *testing.T) {
	privileged(t)
	p := load(t, filterRuleset)
	r, _ := rules.NewTestRig(t, p)
	got := r.Send(wan, rules.Frame4(t, "1.1.1.1", "10.1.0.1", "tcp", 999, 23, "S"))
	if len(got[wan]) != 1 || len(got) != 1 {
		t.Fatalf("tcp 23: sent %v", got)
	}
	pk := gopacket.NewPacket(got[wan][0], layers.LayerTypeEthernet, gopacket.Default)
	if tc, ok := pk.Layer(layers.LayerTypeTCP).(*layers.TCP); !ok || !tc.RST || tc.SrcPort != 23 || tc.DstPort != 999 {
		t.Errorf("reset: %v", pk)
	}
	if n := r.Drops(wan, rules.DropReason(fastpath.HookForward)); n != 1 {
		t.Errorf("%d drops", n)
	}
	got = r.Send(wan, rules.Frame4(t, "1.1.1.1", "10.1.0.1", "udp", 999, 12, ""))
	pk = gopacket.NewPacket(got[wan][0], layers.LayerTypeEthernet, gopacket.Default)
	if ic, ok := pk.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4); !ok || ic.TypeCode != layers.CreateICMPv4TypeCode(3, 13) {
		t.Errorf("admin prohibited: %v", pk)
	}
	// (This kernel has no bridge reject, CONFIG_NFT_BRIDGE_REJECT: the
	// bridge family's layer 2 answers are tested on hand-built rules.)
}

func TestLoadedBridgeAndNetdev(t *testing.T) {
	privileged(t)
	p := load(t, `
table bridge b {
	chain pre {
		type filter hook prerouting priority -200;
		ether saddr 02:00:00:00:00:0c drop
		vlan id 10 drop
		ip saddr 1.1.1.1 counter drop
	}
	chain fw {
		type filter hook forward priority 0;
		oifname "p3" udp dport 53 drop
	}
}
table netdev n {
	chain in {
		type filter hook ingress device "wan0" priority 0;
		udp dport 99 counter drop
	}
}
`)
	f := func(src string, dport uint16) []byte { return rules.Frame4(t, src, "10.0.0.3", "udp", 1, dport, "") }
	for _, tc := range []struct {
		name   string
		hook   fastpath.Hook
		pk     *fastpath.Packet
		accept bool
	}{
		{"vlan 10", fastpath.HookBridgePrerouting, rules.Bridged(rules.Tag(f("2.2.2.2", 1), 0x8100, 10), p2, 0), false},
		{"vlan 11", fastpath.HookBridgePrerouting, rules.Bridged(rules.Tag(f("2.2.2.2", 1), 0x8100, 11), p2, 0), true},
		{"ip saddr", fastpath.HookBridgePrerouting, rules.Bridged(f("1.1.1.1", 1), p2, 0), false},
		// nft makes ip saddr depend on meta protocol: the kernel sees
		// the protocol inside the tag it took out of the frame.
		{"ip saddr, tagged", fastpath.HookBridgePrerouting, rules.Bridged(rules.Tag(f("1.1.1.1", 1), 0x8100, 11), p2, 0), false},
		{"to p3", fastpath.HookBridgeForward, rules.Bridged(f("2.2.2.2", 53), p2, p3), false},
		{"to p2", fastpath.HookBridgeForward, rules.Bridged(f("2.2.2.2", 53), p3, p2), true},
		{"netdev wan0", fastpath.HookIngress, rules.Bridged(f("2.2.2.2", 99), wan, 0), false},
	} {
		sel, acc := rules.EvalAt(p, tc.hook, tc.pk, 0)
		if !sel || acc != tc.accept {
			t.Errorf("%s: selected %v, accepted %v, want %v", tc.name, sel, acc, tc.accept)
		}
	}
	if sel, _ := rules.EvalAt(p, fastpath.HookIngress, rules.Bridged(f("2.2.2.2", 99), lan, 0), 0); sel {
		t.Error("lan0's ingress ran wan0's chain")
	}
	// ether saddr: from 02:00:00:00:00:0c.
	fc := rules.Frame4(t, "2.2.2.2", "10.0.0.3", "udp", 1, 1, "")
	copy(fc[6:12], []byte{2, 0, 0, 0, 0, 0x0c})
	if _, acc := rules.EvalAt(p, fastpath.HookBridgePrerouting, rules.Bridged(fc, p2, 0), 0); acc {
		t.Error("ether saddr not dropped")
	}
}

// TestLoadedRefused: a real ruleset xdpfwd cannot run is refused naming
// the rule as nft lists it.
func TestLoadedRefused(t *testing.T) {
	privileged(t)
	for _, tc := range []struct{ rule, want string }{
		{"type filter hook forward priority 0; ct id 1234 accept",
			`table ip t, chain c, rule handle 2 (ct id 1234 accept): expression 1 (ct): not supported by xdpfwd: ct id (not a key xdpfwd reads`},
		{"type nat hook postrouting priority 100; masquerade", "chain c: type nat chain"},
		{"type filter hook forward priority 0; tcp option maxseg size 1400 drop", "(tcp option maxseg size 1400 drop)"},
	} {
		_, err := loadErr(t, "table ip t {\n\tchain c {\n\t\t"+strings.ReplaceAll(tc.rule, "; ", "\n\t\t")+"\n\t}\n}\n")
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, rules.ErrUnsupported) {
			t.Errorf("%s: got %v, want %q", tc.rule, err, tc.want)
		}
	}
}

var _ = fastpathtest.MACA
