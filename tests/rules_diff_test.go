package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/xdpfwd/xdpfwd/fastpath/fastpathtest"
)

// diffRuleset is the differential test's rules: sets (exact, interval,
// concatenated), a verdict map, ranges and negation, jump, goto and
// return, an anonymous chain, non-terminal counters, a named counter, a
// quota, meta mark set then matched, reject of every kind, and chains at
// prerouting, input and forward.
const diffRuleset = `table inet filter {
	counter udpin { }
	set webports {
		type inet_service
		elements = { 80, 443, 8080 }
	}
	set pairs {
		type ipv4_addr . inet_service
		elements = { 10.2.0.2 . 6001, 10.2.0.2 . 6002 }
	}
	set nets {
		type ipv4_addr
		flags interval
		elements = { 10.1.0.0/28, 10.3.0.0-10.3.0.9 }
	}
	map portv {
		type inet_service : verdict
		elements = { 7001 : drop, 7002 : jump sized, 7003 : accept }
	}
	chain sized {
		counter
		meta length > 200 counter drop
		return
	}
	chain fwd_tcp {
		tcp dport @webports counter accept
		tcp dport 22 counter reject with tcp reset
		tcp dport 23 counter reject
		tcp dport 6000-6100 counter reject with icmpx type admin-prohibited
		counter goto tail
	}
	chain tail {
		udp dport 9999 counter drop
		tcp dport 9998 counter drop
	}
	chain pre {
		type filter hook prerouting priority -150; policy accept;
		ip ttl 1 udp dport 6010 counter drop
		ip6 hoplimit 1 udp dport 6010 counter drop
	}
	chain in {
		type filter hook input priority 0; policy accept;
		meta l4proto udp counter name "udpin"
		udp dport 6020 counter reject with icmp type host-prohibited
		tcp dport 6021 counter drop
		ip6 nexthdr udp udp dport 6020 counter reject with icmpv6 type addr-unreachable
	}
	chain forward {
		type filter hook forward priority 0; policy accept;
		meta l4proto tcp counter jump fwd_tcp
		meta l4proto udp udp dport vmap @portv
		udp dport != 5000-5100 ip saddr @nets counter
		udp dport 5050 ip saddr 10.1.0.0/24 counter reject with icmp type net-unreachable
		ip6 daddr fd00:2::/64 udp dport 5050 counter reject with icmpv6 type no-route
		ip daddr . udp dport @pairs counter drop
		udp dport 6003 jump { counter; quota 10 mbytes; }
		udp dport 6003 meta mark set 0x42 counter
		meta mark 0x42 counter drop
		ip6 daddr fd00:2::/64 ip6 saddr != fd00:1::/64 counter drop
	}
}
`

// TestRulesDifferential loads the same nft file into the kernel router's
// namespace and into xdpfwd, sends both the same probes from h1, and
// requires that h1 and h2 receive the same packets, byte for byte (as
// TestRouterDifferential normalizes them), and that every rule's counter
// has the same packets and bytes in both.
func TestRulesDifferential(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "rules.nft")
	if err := os.WriteFile(file, []byte(diffRuleset), 0o644); err != nil {
		t.Fatal(err)
	}
	kernel, xdp := newRouterLab(t, true, file), newRouterLab(t, false, file)
	eth := func(l *routerLab, typ layers.EthernetType) *layers.Ethernet {
		return &layers.Ethernet{SrcMAC: l.h1.HWAddr, DstMAC: l.routerMAC, EthernetType: typ}
	}
	udp4 := func(dst string, ttl uint8, dport uint16, n int) func(l *routerLab) []byte {
		return func(l *routerLab) []byte {
			ip := &layers.IPv4{Version: 4, TTL: ttl, Protocol: layers.IPProtocolUDP, SrcIP: net.ParseIP("10.1.0.2"), DstIP: net.ParseIP(dst), Id: 4242}
			u := &layers.UDP{SrcPort: 40000, DstPort: layers.UDPPort(dport)}
			u.SetNetworkLayerForChecksum(ip)
			return fastpathtest.Serialize(t, eth(l, layers.EthernetTypeIPv4), ip, u, gopacket.Payload(bytes.Repeat([]byte{0x42}, n)))
		}
	}
	udp6 := func(dst string, hop uint8, dport uint16, n int) func(l *routerLab) []byte {
		return func(l *routerLab) []byte {
			ip := &layers.IPv6{Version: 6, HopLimit: hop, NextHeader: layers.IPProtocolUDP, SrcIP: net.ParseIP("fd00:1::2"), DstIP: net.ParseIP(dst)}
			u := &layers.UDP{SrcPort: 40000, DstPort: layers.UDPPort(dport)}
			u.SetNetworkLayerForChecksum(ip)
			return fastpathtest.Serialize(t, eth(l, layers.EthernetTypeIPv6), ip, u, gopacket.Payload(bytes.Repeat([]byte{0x61}, n)))
		}
	}
	tcp4 := func(dst string, dport uint16) func(l *routerLab) []byte {
		return func(l *routerLab) []byte {
			ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: net.ParseIP("10.1.0.2"), DstIP: net.ParseIP(dst), Id: 4444}
			tc := &layers.TCP{SrcPort: 40001, DstPort: layers.TCPPort(dport), SYN: true, Seq: 1000, Window: 1000}
			tc.SetNetworkLayerForChecksum(ip)
			return fastpathtest.Serialize(t, eth(l, layers.EthernetTypeIPv4), ip, tc)
		}
	}
	tcp6 := func(dst string, dport uint16) func(l *routerLab) []byte {
		return func(l *routerLab) []byte {
			ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolTCP, SrcIP: net.ParseIP("fd00:1::2"), DstIP: net.ParseIP(dst)}
			tc := &layers.TCP{SrcPort: 40001, DstPort: layers.TCPPort(dport), SYN: true, Seq: 1000, Window: 1000}
			tc.SetNetworkLayerForChecksum(ip)
			return fastpathtest.Serialize(t, eth(l, layers.EthernetTypeIPv6), ip, tc)
		}
	}
	udp6From := func(src, dst string, dport uint16) func(l *routerLab) []byte {
		return func(l *routerLab) []byte {
			ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolUDP, SrcIP: net.ParseIP(src), DstIP: net.ParseIP(dst)}
			u := &layers.UDP{SrcPort: 40000, DstPort: layers.UDPPort(dport)}
			u.SetNetworkLayerForChecksum(ip)
			return fastpathtest.Serialize(t, eth(l, layers.EthernetTypeIPv6), ip, u, gopacket.Payload("x"))
		}
	}
	probes := []struct {
		name  string
		build func(l *routerLab) []byte
	}{
		{"TCP to a web port: accepted", tcp4("10.2.0.2", 80)},
		{"TCP to 22: reset by the rule", tcp4("10.2.0.2", 22)},
		{"TCP to 23: reject (inet default: port unreachable)", tcp4("10.2.0.2", 23)},
		{"TCP to 6050: icmpx admin prohibited", tcp4("10.2.0.2", 6050)},
		{"TCP6 to 22: reset", tcp6("fd00:2::2", 22)},
		{"TCP6 to 6050: icmpx admin prohibited", tcp6("fd00:2::2", 6050)},
		{"TCP to 9998: goto tail, dropped", tcp4("10.2.0.2", 9998)},
		{"TCP to 9999: udp dport 9999 does not match TCP", tcp4("10.2.0.2", 9999)},
		{"UDP to 7001: vmap drop", udp4("10.2.0.2", 64, 7001, 20)},
		{"UDP to 7002, small: jump, counted, return", udp4("10.2.0.2", 64, 7002, 20)},
		{"UDP to 7002, large: dropped in the jumped-to chain", udp4("10.2.0.2", 64, 7002, 300)},
		{"UDP to 7003: vmap accept", udp4("10.2.0.2", 64, 7003, 20)},
		{"UDP to 4000 from a set's network: counted, delivered", udp4("10.2.0.2", 64, 4000, 20)},
		{"UDP to 5050: reject net unreachable", udp4("10.2.0.2", 64, 5050, 20)},
		{"UDP6 to 5050: reject no route", udp6("fd00:2::2", 64, 5050, 20)},
		{"UDP to 6001: concatenated set, dropped", udp4("10.2.0.2", 64, 6001, 20)},
		{"UDP to 6003: mark set, then dropped by mark", udp4("10.2.0.2", 64, 6003, 20)},
		{"UDP TTL 1 to 6010: dropped at prerouting", udp4("10.2.0.2", 1, 6010, 20)},
		{"UDP TTL 1 to 6012: time exceeded", udp4("10.2.0.2", 1, 6012, 20)},
		{"UDP6 hop limit 1 to 6010: dropped at prerouting", udp6("fd00:2::2", 1, 6010, 20)},
		{"UDP to the router's 6020: input reject host prohibited", udp4("10.1.0.1", 64, 6020, 20)},
		{"TCP to the router's 6021: input drop", tcp4("10.1.0.1", 6021)},
		{"UDP6 to the router's 6020: input reject address unreachable", udp6("fd00:1::1", 64, 6020, 20)},
		{"UDP6 forwarded", udp6("fd00:2::2", 64, 4000, 100)},
		{"UDP6 from outside h1's network: dropped", udp6From("fd00:7::2", "fd00:2::2", 4000)},
	}
	for _, p := range probes {
		k1, k2 := kernel.probe(t, p.build(kernel))
		x1, x2 := xdp.probe(t, p.build(xdp))
		sameAtHosts(t, p.name, k1, k2, x1, x2)
		time.Sleep(200 * time.Millisecond) // within the ICMP rate limits of both
	}

	// Every rule's counter, by chain and handle.
	kc := kernelCounters(t, kernel)
	xc := xdpfwdCounters(t, xdp)
	if len(kc) == 0 {
		t.Fatal("the kernel's listing has no counters")
	}
	for k, v := range kc {
		if x, ok := xc[k]; !ok || x != v {
			t.Errorf("rule %s: kernel counted %v, xdpfwd %v (listed: %v)", k, v, x, ok)
		}
	}
	for k := range xc {
		if _, ok := kc[k]; !ok {
			t.Errorf("rule %s: counted by xdpfwd, not in the kernel's listing", k)
		}
	}
	sameListing(t, kernel, xdp)
}

// sameListing compares `nft list ruleset` in the kernel lab with `xdpfwd
// rules list` (text, with handles, and JSON): the same text, the same
// counters.
func sameListing(t *testing.T, kernel, xdp *routerLab) {
	t.Helper()
	for _, args := range [][]string{nil, {"-a"}, {"--json"}} {
		var nftArgs []string
		if len(args) > 0 {
			nftArgs = append(nftArgs, map[string]string{"-a": "-a", "--json": "-j"}[args[0]])
		}
		want := nftList(t, kernel, nftArgs...)
		got := runCLI(t, 10*time.Second, append([]string{"rules", "list", "--control", xdp.daemon.control}, args...)...)
		if args != nil && args[0] == "--json" {
			var w, g any
			if err := json.Unmarshal([]byte(want), &w); err != nil {
				t.Fatalf("nft -j: %v", err)
			}
			if err := json.Unmarshal([]byte(got), &g); err != nil {
				t.Fatalf("xdpfwd rules list --json: %v\n%s", err, got)
			}
			if !reflect.DeepEqual(w, g) {
				t.Errorf("rules list --json differs from nft -j list ruleset:\nkernel: %s\nxdpfwd: %s", want, got)
			}
			continue
		}
		if strings.TrimSpace(got) != strings.TrimSpace(want) {
			t.Errorf("rules list %v differs from nft list ruleset:\n%s", args, lineDiff(want, got))
		}
	}
}

// nftList returns `nft ARGS list ruleset` in the lab's router namespace:
// its standard output (nft 1.0.6 warns on stderr that it cannot print an
// anonymous chain as JSON).
func nftList(t *testing.T, l *routerLab, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := l.sw.Command(ctx, "nft", append(args, "list", "ruleset")...).Output()
	if err != nil {
		t.Fatalf("nft %v list ruleset: %v", args, err)
	}
	return string(out)
}

// lineDiff shows the lines of want and got that differ.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := range max(len(w), len(g)) {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			fmt.Fprintf(&b, "line %d:\n  kernel: %q\n  xdpfwd: %q\n", i+1, wl, gl)
		}
	}
	return b.String()
}

// counter is one rule's counter: packets and bytes.
type counter struct{ Packets, Bytes uint64 }

// kernelCounters reads the counters of every rule of the kernel lab's
// ruleset (nft -j list ruleset), keyed "family table chain handle".
func kernelCounters(t *testing.T, l *routerLab) map[string]counter {
	t.Helper()
	var doc struct {
		Nftables []struct {
			Rule *struct {
				Family, Table, Chain string
				Handle               int
				Expr                 []json.RawMessage
			}
		}
	}
	if err := json.Unmarshal([]byte(nftList(t, l, "-j")), &doc); err != nil {
		t.Fatal(err)
	}
	out := make(map[string]counter)
	for _, o := range doc.Nftables {
		r := o.Rule
		if r == nil {
			continue
		}
		for _, raw := range r.Expr {
			var e map[string]json.RawMessage
			if json.Unmarshal(raw, &e) != nil {
				continue // an anonymous chain, as a string (nft 1.0.6)
			}
			if raw, ok := e["counter"]; ok && raw[0] == '{' { // not a named counter
				var c counter
				if err := json.Unmarshal(raw, &c); err != nil {
					t.Fatal(err)
				}
				out[fmt.Sprintf("%s %s %s %d", r.Family, r.Table, r.Chain, r.Handle)] = c
				break
			}
		}
	}
	return out
}

var listedCounter = regexp.MustCompile(`^(\S+ \S+ \S+) handle (\d+): .*?counter packets (\d+) bytes (\d+)`)

// xdpfwdCounters reads the same from xdpfwd's rules listing.
func xdpfwdCounters(t *testing.T, l *routerLab) map[string]counter {
	t.Helper()
	out := make(map[string]counter)
	for _, line := range l.daemon.rulesLines() {
		m := listedCounter.FindStringSubmatch(line)
		if m == nil || strings.Contains(line, "jump {") {
			continue // nft -j lists an anonymous chain in its rule as a string; sameListing compares it
		}
		p, _ := strconv.ParseUint(m[3], 10, 64)
		b, _ := strconv.ParseUint(m[4], 10, 64)
		out[m[1]+" "+m[2]] = counter{p, b}
	}
	return out
}
