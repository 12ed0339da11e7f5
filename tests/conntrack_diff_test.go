package tests

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/xdpfwd/xdpfwd/fastpath/fastpathtest"
	"github.com/xdpfwd/xdpfwd/internal/traffic"
)

// statefulRuleset is a stateful firewall: h1's side (p1) may open
// connections, h2's side only to UDP 5353; replies and related ICMP
// errors pass, invalid packets are dropped; the router answers new pings.
const statefulRuleset = `table inet filter {
	chain forward {
		type filter hook forward priority 0; policy drop;
		ct status seen-reply counter
		ct status assured counter
		ct status confirmed counter
		ct direction reply counter
		ct mark 7 counter
		ct l3proto ipv6 counter
		ct protocol udp counter
		ct original ip saddr 10.1.0.2 counter
		ct reply ip6 daddr fd00:1::2 counter
		ct state established,related counter accept
		ct state invalid counter drop
		iifname "p1" ct state new counter accept
		iifname "p2" ct state new udp dport 5353 counter accept
		counter
	}
	chain pre {
		type filter hook prerouting priority 0; policy accept;
		udp dport 6100 ct mark set 7 counter
		ct state new ct mark 7 counter
	}
	chain in {
		type filter hook input priority 0; policy accept;
		ct state invalid counter drop
		ct state new icmp type echo-request counter accept
		ct state new meta l4proto ipv6-icmp counter accept
	}
}
`

// TestConntrackDifferential loads a stateful firewall into the kernel
// router and into xdpfwd and sends both the same sequence of probes from
// either side: connections opened from h1 and their replies (from h2
// itself or from h2's stack: port unreachables and resets, which are
// related or established), unsolicited packets from h2 (dropped), a
// service h2 may reach, invalid TCP flags, an echo reply nobody asked for,
// mid-stream TCP, IPv6. What each host receives must be the same, byte for
// byte, and so must every rule's counter.
func TestConntrackDifferential(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "stateful.nft")
	if err := os.WriteFile(file, []byte(statefulRuleset), 0o644); err != nil {
		t.Fatal(err)
	}
	kernel, xdp := newRouterLab(t, true, file), newRouterLab(t, false, file)

	const h1, h2, h1v6, h2v6 = "10.1.0.2", "10.2.0.2", "fd00:1::2", "fd00:2::2"
	payload := gopacket.Payload("conntrack")
	// fragmented sends f's datagram as two fragments.
	fragmented := func(f labFrame) func(l *routerLab) [][]byte {
		return func(l *routerLab) [][]byte {
			a, b := fastpathtest.Fragments4(t, f(l), 64)
			return [][]byte{a, b}
		}
	}
	// corrupt flips the byte at off of a probe's frame: its transport
	// checksum, which conntrack verifies at prerouting.
	corrupt := func(f labFrame, off int) labFrame {
		return func(l *routerLab) []byte {
			b := f(l)
			b[off] ^= 0xff
			return b
		}
	}
	probes := []labProbe{
		{"UDP h1 to a closed port of h2: the port unreachable is related", 1, labBuild(t, 1, labIP4(h1, h2, layers.IPProtocolUDP), labUDP(40000, 33434), payload), nil},
		{"UDP h1 to h2:7, opening a flow", 1, labBuild(t, 1, labIP4(h1, h2, layers.IPProtocolUDP), labUDP(41000, 7), payload), nil},
		{"UDP h2:7 back to h1: established", 2, labBuild(t, 2, labIP4(h2, h1, layers.IPProtocolUDP), labUDP(7, 41000), payload), nil},
		{"UDP h1 to h2:7 again: established (seen reply)", 1, labBuild(t, 1, labIP4(h1, h2, layers.IPProtocolUDP), labUDP(41000, 7), payload), nil},
		{"UDP h2 to h1, unsolicited: dropped", 2, labBuild(t, 2, labIP4(h2, h1, layers.IPProtocolUDP), labUDP(5000, 6000), payload), nil},
		{"UDP h1 to h2:7 with a bad checksum, on an established flow: invalid", 1, corrupt(labBuild(t, 1, labIP4(h1, h2, layers.IPProtocolUDP), labUDP(41000, 7), payload), 14+20+6), nil},
		{"TCP SYN h1 to h2 with a bad checksum: invalid", 1, corrupt(labBuild(t, 1, labIP4(h1, h2, layers.IPProtocolTCP), &layers.TCP{SrcPort: 40009, DstPort: 9, SYN: true, Seq: 1000, Window: 1000}), 14+20+16), nil},
		{"ping h1 to h2 with a bad checksum: invalid", 1, corrupt(labBuild(t, 1, labIP4(h1, h2, layers.IPProtocolICMPv4), &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoRequest, 0), Id: 0x7b, Seq: 1}, payload), 14+20+2), nil},
		{"UDP6 h1 to h2 with a bad checksum: invalid", 1, corrupt(labBuild(t, 1, labIP6(h1v6, h2v6, layers.IPProtocolUDP), labUDP(41001, 7), payload), 14+40+6), nil},
		{"UDP h2 to h1:5353: allowed new, h1's port unreachable related", 2, labBuild(t, 2, labIP4(h2, h1, layers.IPProtocolUDP), labUDP(5001, 5353), payload), nil},
		{"UDP h1 to h2:6100: ct mark set at prerouting", 1, labBuild(t, 1, labIP4(h1, h2, layers.IPProtocolUDP), labUDP(42000, 6100), payload), nil},
		{"UDP h2:6100 back: ct mark 7 seen on the reply", 2, labBuild(t, 2, labIP4(h2, h1, layers.IPProtocolUDP), labUDP(6100, 42000), payload), nil},
		{"TCP SYN h1 to a closed port of h2: the RST comes back", 1, labBuild(t, 1, labIP4(h1, h2, layers.IPProtocolTCP), &layers.TCP{SrcPort: 40001, DstPort: 9, SYN: true, Seq: 1000, Window: 1000}), nil},
		{"TCP SYN+FIN h1 to h2: invalid", 1, labBuild(t, 1, labIP4(h1, h2, layers.IPProtocolTCP), &layers.TCP{SrcPort: 40002, DstPort: 9, SYN: true, FIN: true, Seq: 1000, Window: 1000}), nil},
		{"TCP ACK h1 to h2 mid-stream: picked up, h2 resets", 1, labBuild(t, 1, labIP4(h1, h2, layers.IPProtocolTCP), &layers.TCP{SrcPort: 40003, DstPort: 9, ACK: true, Seq: 5000, Ack: 9000, Window: 1000}), nil},
		{"TCP ACK h2 to h1 mid-stream: new from p2, dropped", 2, labBuild(t, 2, labIP4(h2, h1, layers.IPProtocolTCP), &layers.TCP{SrcPort: 9, DstPort: 40004, ACK: true, Seq: 5000, Ack: 9000, Window: 1000}), nil},
		{"TCP SYN h2 to h1: dropped", 2, labBuild(t, 2, labIP4(h2, h1, layers.IPProtocolTCP), &layers.TCP{SrcPort: 40005, DstPort: 22, SYN: true, Seq: 1000, Window: 1000}), nil},
		{"ping h1 to h2: the reply is established", 1, labBuild(t, 1, labIP4(h1, h2, layers.IPProtocolICMPv4), &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoRequest, 0), Id: 0x77, Seq: 1}, payload), nil},
		{"echo reply h2 to h1 nobody asked for: invalid", 2, labBuild(t, 2, labIP4(h2, h1, layers.IPProtocolICMPv4), &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoReply, 0), Id: 0x78, Seq: 1}, payload), nil},
		{"ping h2 to h1: new from p2, dropped", 2, labBuild(t, 2, labIP4(h2, h1, layers.IPProtocolICMPv4), &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoRequest, 0), Id: 0x79, Seq: 1}, payload), nil},
		{"ping h2 to the router: new, accepted at input", 2, labBuild(t, 2, labIP4(h2, "10.2.0.1", layers.IPProtocolICMPv4), &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoRequest, 0), Id: 0x7a, Seq: 1}, payload), nil},
		{"UDP TTL 1 h1 to h2: time exceeded from the router", 1, labBuild(t, 1, &layers.IPv4{Version: 4, TTL: 1, Protocol: layers.IPProtocolUDP, SrcIP: net.ParseIP(h1), DstIP: net.ParseIP(h2), Id: 4243}, labUDP(43000, 7), payload), nil},
		{"UDP6 h1 to h2: the port unreachable is related", 1, labBuild(t, 1, labIP6(h1v6, h2v6, layers.IPProtocolUDP), labUDP(40000, 33434), payload), nil},
		{"UDP6 h1 to h2:7, opening a flow", 1, labBuild(t, 1, labIP6(h1v6, h2v6, layers.IPProtocolUDP), labUDP(41000, 7), payload), nil},
		{"UDP6 h2:7 back: established", 2, labBuild(t, 2, labIP6(h2v6, h1v6, layers.IPProtocolUDP), labUDP(7, 41000), payload), nil},
		{"UDP6 h2 to h1, unsolicited: dropped", 2, labBuild(t, 2, labIP6(h2v6, h1v6, layers.IPProtocolUDP), labUDP(5000, 6000), payload), nil},
		{"TCP6 SYN h1 to h2: the RST comes back", 1, labBuild(t, 1, labIP6(h1v6, h2v6, layers.IPProtocolTCP), &layers.TCP{SrcPort: 40001, DstPort: 9, SYN: true, Seq: 1000, Window: 1000}), nil},
		{"ping6 h1 to h2: the reply is established", 1, labBuild(t, 1, labIP6(h1v6, h2v6, layers.IPProtocolICMPv6), &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeEchoRequest, 0)}, &layers.ICMPv6Echo{Identifier: 0x55, SeqNumber: 1}, payload), nil},
		{"UDP h1 to h2:7 in two fragments: the port unreachable is related", 1, nil, fragmented(labBuild(t, 1, labIP4(h1, h2, layers.IPProtocolUDP), labUDP(44000, 7), gopacket.Payload(make([]byte, 200))))},
		{"UDP h2:7 back in two fragments: established", 2, nil, fragmented(labBuild(t, 2, labIP4(h2, h1, layers.IPProtocolUDP), labUDP(7, 44000), gopacket.Payload(make([]byte, 200))))},
		{"UDP h2 to h1 in two fragments, unsolicited: dropped", 2, nil, fragmented(labBuild(t, 2, labIP4(h2, h1, layers.IPProtocolUDP), labUDP(5002, 6001), gopacket.Payload(make([]byte, 200))))},
		{"ping6 h2 to h1: dropped", 2, labBuild(t, 2, labIP6(h2v6, h1v6, layers.IPProtocolICMPv6), &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeEchoRequest, 0)}, &layers.ICMPv6Echo{Identifier: 0x56, SeqNumber: 1}, payload), nil},
	}
	compareProbes(t, kernel, xdp, probes)
}

// TestConntrackStatefulTCP: TCP bulk transfers through xdpfwd's stateful
// firewall, both ways of opening: from h1 they arrive byte for byte
// (every segment tracked in window: an invalid one would be dropped and
// stall the transfer), from h2 they cannot open.
func TestConntrackStatefulTCP(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "stateful.nft")
	if err := os.WriteFile(file, []byte(statefulRuleset), 0o644); err != nil {
		t.Fatal(err)
	}
	l := newRouterLab(t, false, file)
	for i := range 3 {
		res, err := traffic.TCP(l.h1, l.h2, 32<<20, uint64(70+i))
		if err != nil {
			t.Fatalf("TCP h1 -> h2 through the stateful firewall, round %d: %v", i, err)
		}
		t.Logf("round %d: %d bytes intact, %.2f Gbit/s", i, res.Bytes, res.Gbps())
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if out, err := l.h2.Command(ctx, "bash", "-c", "timeout 3 bash -c 'exec 3<>/dev/tcp/10.1.0.2/22'").CombinedOutput(); err == nil {
		t.Errorf("h2 opened a TCP connection to h1 through the firewall:\n%s", out)
	}
	// No segment of the transfers was invalid; they were established.
	for sub, want := range map[string]func(uint64) bool{
		"forward handle 14: ct state invalid": func(n uint64) bool { return n == 0 },
		"ct state established,related":        func(n uint64) bool { return n > 10000 },
	} {
		m := listedCounter.FindStringSubmatch(l.daemon.ruleLine(sub))
		if m == nil {
			t.Fatalf("no counter on the rule %q", sub)
		}
		if n, _ := strconv.ParseUint(m[3], 10, 64); !want(n) {
			t.Errorf("rule %q counted %d packets", sub, n)
		}
	}
}
