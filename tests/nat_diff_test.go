package tests

import (
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/xdpfwd/xdpfwd/internal/traffic"
)

// natRuleset masquerades h1's side behind the router's address toward h2
// (10.2.0.1, fd00:2::1) and forwards two of the router's ports to h1,
// also for h1's side itself (hairpin: h1 reaching its own service through
// the router's public address, masqueraded so the answers come back
// through the router).
const natRuleset = `table ip nat {
	chain pre {
		type nat hook prerouting priority dstnat; policy accept;
		iifname "p2" tcp dport 8080 counter dnat to 10.1.0.2:80
		iifname "p2" udp dport 5353 counter dnat to 10.1.0.2:53
		iifname "p1" ip daddr 10.2.0.1 tcp dport 8080 counter dnat to 10.1.0.2:80
		iifname "p2" tcp dport 8081 counter dnat to 10.1.0.2:81
		ip daddr 10.2.0.1 udp dport 8082 counter dnat to 10.1.0.9:7
	}
	chain post {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "p2" ip saddr 10.1.0.0/24 counter masquerade
		oifname "p1" ct status dnat counter masquerade
	}
}
table ip6 nat {
	chain post {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "p2" ip6 saddr fd00:1::/64 counter masquerade
	}
}
table inet filter {
	chain forward {
		type filter hook forward priority 0; policy accept;
		ct state invalid counter drop
		ct status dnat tcp dport 81 counter reject with tcp reset
		ct status snat counter
		ct status dnat counter
		ct direction reply counter
	}
}
`

// TestNATDifferential loads one NAT ruleset (masquerade toward h2, two
// port forwards to h1) into the kernel router and into xdpfwd and sends
// both the same probes from either side: h2 must see the router's
// address, its answers (replies, port unreachables, resets, echo replies)
// must come back to h1 translated, inside and out; what h2 sends to the
// forwarded ports must reach h1 and its answers go back. Both hosts must
// receive the same bytes from both routers, every rule's counter must
// agree probe by probe, and the kernel's conntrack -L must list what
// xdpfwd ct list does.
func TestNATDifferential(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "nat.nft")
	if err := os.WriteFile(file, []byte(natRuleset), 0o644); err != nil {
		t.Fatal(err)
	}
	kernel, xdp := newRouterLab(t, true, file), newRouterLab(t, false, file)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	// The lab's set-up pings are tracked too: start from empty tables.
	if out, err := kernel.sw.Command(ctx, "conntrack", "-F").CombinedOutput(); err != nil {
		t.Fatalf("conntrack -F: %v\n%s", err, out)
	}
	runCLI(t, 10*time.Second, "ct", "flush", "--control", xdp.daemon.control)

	const h1, h2, r2, h1v6, h2v6, r2v6 = "10.1.0.2", "10.2.0.2", "10.2.0.1", "fd00:1::2", "fd00:2::2", "fd00:2::1"
	payload := gopacket.Payload("nat")
	probes := []labProbe{
		{"UDP h1 to a closed port of h2: masqueraded, the port unreachable translated back", 1, labBuild(t, 1, labIP4(h1, h2, layers.IPProtocolUDP), labUDP(40000, 33434), payload), nil},
		{"UDP h1 to h2:7: masqueraded", 1, labBuild(t, 1, labIP4(h1, h2, layers.IPProtocolUDP), labUDP(41000, 7), payload), nil},
		{"UDP h2:7 to the router's address: back to h1", 2, labBuild(t, 2, labIP4(h2, r2, layers.IPProtocolUDP), labUDP(7, 41000), payload), nil},
		{"UDP h2 to the router, no connection: the router's own port unreachable", 2, labBuild(t, 2, labIP4(h2, r2, layers.IPProtocolUDP), labUDP(7, 41001), payload), nil},
		{"TCP SYN h1 to h2:9: masqueraded, the RST translated back", 1, labBuild(t, 1, labIP4(h1, h2, layers.IPProtocolTCP), &layers.TCP{SrcPort: 40001, DstPort: 9, SYN: true, Seq: 1000, Window: 1000}), nil},
		{"ping h1 to h2: masqueraded, the echo reply back", 1, labBuild(t, 1, labIP4(h1, h2, layers.IPProtocolICMPv4), &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoRequest, 0), Id: 0x77, Seq: 1}, payload), nil},
		{"TCP SYN h2 to the router's 8080: forwarded to h1:80, its RST back from 8080", 2, labBuild(t, 2, labIP4(h2, r2, layers.IPProtocolTCP), &layers.TCP{SrcPort: 50000, DstPort: 8080, SYN: true, Seq: 7000, Window: 1000}), nil},
		{"TCP SYN h2 to the router's 8081: forwarded, rejected with a reset that leaves translated, from 8081", 2, labBuild(t, 2, labIP4(h2, r2, layers.IPProtocolTCP), &layers.TCP{SrcPort: 50002, DstPort: 8081, SYN: true, Seq: 7100, Window: 1000}), nil},
		{"UDP h2 to the router's 5353: forwarded to h1:53, the port unreachable translated back", 2, labBuild(t, 2, labIP4(h2, r2, layers.IPProtocolUDP), labUDP(50001, 5353), payload), nil},
		{"TCP SYN h1 to the router's 8080: hairpin to h1:80 from the router's address, the RST back", 1, labBuild(t, 1, labIP4(h1, r2, layers.IPProtocolTCP), &layers.TCP{SrcPort: 40010, DstPort: 8080, SYN: true, Seq: 9000, Window: 1000}), nil},
		{"UDP TTL 1 h1 to h2: the router's time exceeded, no translation", 1, labBuild(t, 1, &layers.IPv4{Version: 4, TTL: 1, Protocol: layers.IPProtocolUDP, SrcIP: net.ParseIP(h1), DstIP: net.ParseIP(h2), Id: 4243}, labUDP(43000, 7), payload), nil},
		{"UDP TTL 2 h1 to h2's far side: masqueraded", 1, labBuild(t, 1, &layers.IPv4{Version: 4, TTL: 2, Protocol: layers.IPProtocolUDP, SrcIP: net.ParseIP(h1), DstIP: net.ParseIP(h2), Id: 4244}, labUDP(43001, 7), payload), nil},
		{"UDP6 h1 to a closed port of h2: masqueraded, the port unreachable translated back", 1, labBuild(t, 1, labIP6(h1v6, h2v6, layers.IPProtocolUDP), labUDP(40000, 33434), payload), nil},
		{"UDP6 h1 to h2:7: masqueraded", 1, labBuild(t, 1, labIP6(h1v6, h2v6, layers.IPProtocolUDP), labUDP(41000, 7), payload), nil},
		{"UDP6 h2:7 back to the router: to h1", 2, labBuild(t, 2, labIP6(h2v6, r2v6, layers.IPProtocolUDP), labUDP(7, 41000), payload), nil},
		{"ping6 h1 to h2: masqueraded, the echo reply back", 1, labBuild(t, 1, labIP6(h1v6, h2v6, layers.IPProtocolICMPv6), &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeEchoRequest, 0)}, &layers.ICMPv6Echo{Identifier: 0x55, SeqNumber: 1}, payload), nil},
	}
	compareProbes(t, kernel, xdp, probes)

	// Packets the router holds after NAT for a neighbour that never
	// answers ARP: after three requests it answers with host
	// unreachable, which NAT turns back the way the packet came (the
	// kernel's at its local output hook, then at postrouting), quoting
	// what the sender sent. Each waits out the kernel's 3 s.
	for _, p := range []struct {
		name string
		from int
		f    labFrame
	}{
		{"UDP h1 to 10.2.0.9, which nobody answers (masqueraded): the host unreachable back to h1", 1,
			labBuild(t, 1, labIP4(h1, "10.2.0.9", layers.IPProtocolUDP), labUDP(44000, 7), payload)},
		{"UDP h2 to the router's 8082, forwarded to 10.1.0.9, which nobody answers: the host unreachable back to h2", 2,
			labBuild(t, 2, labIP4(h2, r2, layers.IPProtocolUDP), labUDP(44001, 8082), payload)},
		{"UDP h1 to the router's 8082, hairpin to 10.1.0.9, which nobody answers: the host unreachable back to h1", 1,
			labBuild(t, 1, labIP4(h1, r2, layers.IPProtocolUDP), labUDP(44002, 8082), payload)},
		{"TCP SYN from 10.2.0.10, nobody, to the router's 8080: h1's reset, held for 10.2.0.10: the host unreachable back to h1", 2,
			labBuild(t, 2, labIP4("10.2.0.10", r2, layers.IPProtocolTCP), &layers.TCP{SrcPort: 50010, DstPort: 8080, SYN: true, Seq: 7200, Window: 1000})},
	} {
		k1, k2 := kernel.probeFromWithin(t, p.from, 4500*time.Millisecond, p.f(kernel))
		x1, x2 := xdp.probeFromWithin(t, p.from, 4500*time.Millisecond, p.f(xdp))
		if len(k1)+len(k2) == 0 {
			t.Errorf("%s: nothing arrived through the kernel, want its host unreachable", p.name)
		}
		sameAtHosts(t, p.name, k1, k2, x1, x2)
	}

	// The connection tables, as conntrack -L lists them (the seconds
	// left masked).
	lctx, lcancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer lcancel()
	out, err := kernel.sw.Command(lctx, "conntrack", "-L").Output()
	if err != nil {
		t.Fatalf("conntrack -L: %v", err)
	}
	secs := regexp.MustCompile(`^(\S+ +\d+) \d+ `)
	norm := func(s string) []string {
		var ls []string
		for _, l := range nonEmptyLines(s) {
			if !strings.Contains(l, "flow entries have been shown") { // the summary, on stderr
				ls = append(ls, secs.ReplaceAllString(l, "$1 T "))
			}
		}
		slices.Sort(ls)
		return ls
	}
	want, got := norm(string(out)), norm(runCLI(t, 10*time.Second, "ct", "list", "--control", xdp.daemon.control))
	if !slices.Equal(want, got) {
		t.Errorf("conntrack -L on the kernel's router:\n%s\nxdpfwd ct list:\n%s", strings.Join(want, "\n"), strings.Join(got, "\n"))
	}
}

// TestNATTraffic: TCP bulk transfers through xdpfwd's NAT arrive byte for
// byte — masqueraded from h1 to h2 (h2 sees the router's address), and
// through the port forward from h2 to h1 — and ping and UDP work both
// ways the NAT allows.
func TestNATTraffic(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "nat.nft")
	if err := os.WriteFile(file, []byte(natRuleset), 0o644); err != nil {
		t.Fatal(err)
	}
	l := newRouterLab(t, false, file)
	// h2 sends what the router's side of its link takes (wanMTU): a
	// veth drops a longer frame toward an XDP port before xdpfwd sees it
	// (a kernel router gets h2's GSO packets instead and cuts them).
	if out, err := l.h2.Command(t.Context(), "ip", "link", "set", "eth0", "mtu", strconv.Itoa(wanMTU)).CombinedOutput(); err != nil {
		t.Fatalf("h2 MTU: %v\n%s", err, out)
	}
	for i := range 2 {
		res, err := traffic.TCP(l.h1, l.h2, 32<<20, uint64(80+i))
		if err != nil {
			t.Fatalf("TCP h1 -> h2 through masquerade, round %d: %v", i, err)
		}
		t.Logf("masqueraded: %d bytes intact, %.2f Gbit/s", res.Bytes, res.Gbps())
	}
	res, err := traffic.TCPVia(l.h2, l.h1, 80, netip.MustParseAddrPort("10.2.0.1:8080"), 32<<20, 90)
	if err != nil {
		t.Fatalf("TCP h2 -> 10.2.0.1:8080 -> h1:80 through the port forward: %v", err)
	}
	t.Logf("port forward: %d bytes intact, %.2f Gbit/s", res.Bytes, res.Gbps())
	res, err = traffic.TCPVia(l.h1, l.h1, 80, netip.MustParseAddrPort("10.2.0.1:8080"), 8<<20, 91)
	if err != nil {
		t.Fatalf("TCP h1 -> 10.2.0.1:8080 -> h1:80, hairpin: %v", err)
	}
	t.Logf("hairpin: %d bytes intact", res.Bytes)
	ping(t, l.h1, l.h2.IP)
	ping(t, l.h1, netip.MustParseAddr("fd00:2::2"))
	// What h2 saw: connections from the router's address only.
	out := runCLI(t, 10*time.Second, "ct", "list", "-p", "tcp", "--control", l.daemon.control)
	n := 0
	for _, line := range nonEmptyLines(out) {
		if strings.Contains(line, "flow entries") {
			continue
		}
		n++
		if !strings.Contains(line, "dst=10.2.0.1") && !strings.Contains(line, "dst=10.1.0.1") || !strings.Contains(line, "[ASSURED]") {
			t.Errorf("a TCP connection not translated to or from the router's address, or not assured: %s", line)
		}
	}
	if n != 4 {
		t.Errorf("%d TCP connections listed, want the 4 transfers':\n%s", n, out)
	}
}
