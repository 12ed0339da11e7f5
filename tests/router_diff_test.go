package tests

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/sys/unix"

	"github.com/xdpfwd/xdpfwd/fastpath/fastpathtest"
	"github.com/xdpfwd/xdpfwd/fastpath/header"
	"github.com/xdpfwd/xdpfwd/internal/topo"
)

// routerLab is one router between two routed hosts (routedStar): the
// kernel's, or xdpfwd's, with the same addresses, routes and MTUs, and a
// packet socket on each host's eth0.
type routerLab struct {
	name      string
	h1, h2    *topo.Host
	routerMAC net.HardwareAddr // of the router's interface towards h1
	// routerMAC2 is the MAC of the router's interface towards h2.
	routerMAC2 net.HardwareAddr
	fd1, fd2   int
	sw         *topo.Namespace
	daemon     *daemon // xdpfwd's, nil for the kernel's
}

// wanMTU is the MTU of the router's interface towards h2.
const wanMTU = 1400

// newRouterLab builds the lab: kernel (IP forwarding in the switch
// namespace, the addresses on p1 and p2) or xdpfwd; with a ruleset (the
// path of an nft file), loaded by nft -f into the kernel's namespace or
// named by xdpfwd's configuration.
func newRouterLab(t *testing.T, kernel bool, ruleset string) *routerLab {
	t.Helper()
	s := star(t, topo.VethOptions{}, topo.VethOptions{})
	hosts, routerCfg := routedStar(t, s)
	sw := s.Switch
	run(t, sw, "ip", "link", "set", "p2", "mtu", fmt.Sprint(wanMTU))
	l := &routerLab{name: "xdpfwd", h1: hosts[0], h2: hosts[1], sw: sw}
	if kernel {
		l.name = "kernel"
		run(t, sw, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")
		for i := 1; i <= 2; i++ {
			run(t, sw, "ip", "addr", "add", fmt.Sprintf("10.%d.0.1/24", i), "dev", fmt.Sprintf("p%d", i))
			run(t, sw, "ip", "-6", "addr", "add", fmt.Sprintf("fd00:%d::1/64", i), "dev", fmt.Sprintf("p%d", i), "nodad")
		}
		run(t, sw, "ip", "route", "add", "prohibit", "10.9.0.0/16")
		if ruleset != "" {
			run(t, sw, "nft", "-f", ruleset)
		}
	} else {
		cfg := "ports:\n  - interface: p1\n  - interface: p2\n" + routerCfg + "  routes:\n    - to: 10.9.0.0/16\n      type: prohibit\n"
		if ruleset != "" {
			cfg += "ruleset: " + ruleset + "\n"
		}
		l.daemon = runDaemon(t, sw, cfg)
	}
	var err error
	if l.routerMAC, err = sw.MAC("p1"); err != nil {
		t.Fatal(err)
	}
	if l.routerMAC2, err = sw.MAC("p2"); err != nil {
		t.Fatal(err)
	}
	// Both neighbours known on every side before the probes.
	ping(t, l.h1, l.h2.IP)
	ping(t, l.h1, netip.MustParseAddr("fd00:2::2"))
	l.fd1, l.fd2 = packetSocket(t, l.h1, unix.ETH_P_ALL, 20*time.Millisecond), packetSocket(t, l.h2, unix.ETH_P_ALL, 20*time.Millisecond)
	return l
}

// packetSocket opens a packet socket receiving the frames of protocol
// proto (unix.ETH_P_ALL: every one) on h's eth0, with a read timeout.
func packetSocket(t *testing.T, h *topo.Host, proto uint16, timeout time.Duration) int {
	t.Helper()
	fd := -1
	err := h.Do(func() error {
		var err error
		if fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(proto))); err != nil {
			return fmt.Errorf("open packet socket: %w", err)
		}
		ifi, err := net.InterfaceByName(topo.HostIf)
		if err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(proto), Ifindex: ifi.Index})
	})
	if fd >= 0 {
		t.Cleanup(func() { unix.Close(fd) })
	}
	if err != nil {
		t.Fatalf("packet socket in %s: %v", h.Name(), err)
	}
	tv := unix.NsecToTimeval(int64(timeout))
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	return fd
}

// probe sends frame from h1 and returns what h1 and h2 received in the
// next 400 ms: IP packets only (no ARP, no neighbour discovery, nothing
// h1 sent itself), normalized (see normalize), as hex.
func (l *routerLab) probe(t *testing.T, frame []byte) (atH1, atH2 []string) {
	t.Helper()
	return l.probeFrom(t, 1, frame)
}

// probeFrom is probe with the frames sent from h1 (from 1) or h2 (2),
// one after the other.
func (l *routerLab) probeFrom(t *testing.T, from int, frames ...[]byte) (atH1, atH2 []string) {
	t.Helper()
	return l.probeFromWithin(t, from, 400*time.Millisecond, frames...)
}

// probeFromWithin is probeFrom, reading what arrives for window.
func (l *routerLab) probeFromWithin(t *testing.T, from int, window time.Duration, frames ...[]byte) (atH1, atH2 []string) {
	t.Helper()
	drain(l.fd1)
	drain(l.fd2)
	h, fd := l.h1, l.fd1
	if from == 2 {
		h, fd = l.h2, l.fd2
	}
	ifi := 0
	if err := h.Do(func() error {
		i, err := net.InterfaceByName(topo.HostIf)
		ifi = i.Index
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for _, frame := range frames {
		if err := unix.Sendto(fd, frame, 0, &unix.SockaddrLinklayer{Ifindex: ifi, Halen: 6, Addr: [8]byte(append(slices.Clone(frame[0:6]), 0, 0))}); err != nil {
			t.Fatalf("%s: send probe: %v", l.name, err)
		}
	}
	deadline := time.Now().Add(window)
	for time.Now().Before(deadline) {
		atH1 = append(atH1, readIP(t, l.fd1)...)
		atH2 = append(atH2, readIP(t, l.fd2)...)
	}
	return atH1, atH2
}

func drain(fd int) {
	buf := make([]byte, 9000)
	for {
		if _, _, err := unix.Recvfrom(fd, buf, unix.MSG_DONTWAIT); err != nil {
			return
		}
	}
}

// readIP reads what fd has within its timeout and returns the IP packets
// it received (not sent), normalized.
func readIP(t *testing.T, fd int) []string {
	buf := make([]byte, 9000)
	var out []string
	for {
		n, from, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return out
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		if p := normalize(buf[:n]); p != "" {
			out = append(out, p)
		}
	}
}

// normalize returns frame's IP packet as hex, with what a sender may
// choose freely zeroed: the IP identification of ICMP messages (Linux
// draws it from a hash; their checksum is recomputed) and IPv6 flow
// labels; and a TCP or UDP checksum a Linux sender left to its veth to
// finish (CHECKSUM_PARTIAL: the field holds the pseudo-header sum)
// finished, as the receiver's stack takes it. Neighbour discovery, multicast and non-IP
// frames give "".
func normalize(frame []byte) string {
	if len(frame) < 14 {
		return ""
	}
	ip := slices.Clone(frame[14:])
	switch binary.BigEndian.Uint16(frame[12:14]) {
	case header.EtherTypeIPv4:
		v := header.IPv4(ip)
		if !v.IsValid(len(v)) {
			return "bad IPv4 " + hex.EncodeToString(ip)
		}
		ip = ip[:v.TotalLength()]
		if seg := ip[v.HeaderLength():]; !v.IsFragment() {
			header.FinishChecksum(v.Protocol(), v.PseudoHeaderChecksum(v.Protocol(), uint16(len(seg))), seg)
		}
		if v.Protocol() == header.ProtocolICMP {
			// An ICMP message's sender (the router, or h2 answering)
			// chooses its identification from a hash.
			ip[4], ip[5] = 0, 0
			v.SetChecksum(0)
			v.SetChecksum(v.CalculateChecksum())
		}
	case header.EtherTypeIPv6:
		v := header.IPv6(ip)
		if !v.IsValid(len(v)) {
			return "bad IPv6 " + hex.EncodeToString(ip)
		}
		ip = ip[:header.IPv6Size+int(v.PayloadLength())]
		if seg := ip[header.IPv6Size:]; v.NextHeader() == header.ProtocolTCP || v.NextHeader() == header.ProtocolUDP {
			header.FinishChecksum(v.NextHeader(), v.PseudoHeaderChecksum(v.NextHeader(), uint32(len(seg))), seg)
		}
		if v.Dst()[0] == 0xff || v.NextHeader() == header.ProtocolICMPv6 && len(ip) > 40 && ip[40] >= 133 && ip[40] <= 137 {
			return ""
		}
		ip[1] &= 0xf0
		ip[2], ip[3] = 0, 0
	default:
		return ""
	}
	return hex.EncodeToString(ip)
}

// describe decodes a normalized packet for a failure message.
func describe(h string) string {
	b, _ := hex.DecodeString(h)
	first := layers.LayerTypeIPv4
	if len(b) > 0 && b[0]>>4 == 6 {
		first = layers.LayerTypeIPv6
	}
	var s []string
	for _, l := range gopacket.NewPacket(b, first, gopacket.Default).Layers() {
		s = append(s, fmt.Sprintf("%v", gopacket.LayerString(l)))
	}
	return strings.Join(s, "\n")
}

// TestRouterDifferential builds the kernel router and xdpfwd's with the
// same topology, sends each the same probe frames from h1, and requires
// that h1 and h2 receive the same IP packets from both, byte for byte
// (TTL and hop limit, checksums, ICMP types, codes and quoted bytes),
// but for the fields a router chooses freely (normalize).
func TestRouterDifferential(t *testing.T) {
	t.Parallel()
	kernel, xdp := newRouterLab(t, true, ""), newRouterLab(t, false, "")
	type probe struct {
		name  string
		build func(l *routerLab) []byte
	}
	mac := func(l *routerLab) net.HardwareAddr { return l.routerMAC }
	udp4 := func(dst string, ttl uint8, df bool, n int) func(l *routerLab) []byte {
		return func(l *routerLab) []byte {
			ip := &layers.IPv4{Version: 4, TTL: ttl, Protocol: layers.IPProtocolUDP, SrcIP: net.ParseIP("10.1.0.2"), DstIP: net.ParseIP(dst), Id: 4242}
			if df {
				ip.Flags = layers.IPv4DontFragment
			}
			u := &layers.UDP{SrcPort: 40000, DstPort: 33434}
			u.SetNetworkLayerForChecksum(ip)
			return fastpathtest.Serialize(t, &layers.Ethernet{SrcMAC: l.h1.HWAddr, DstMAC: mac(l), EthernetType: layers.EthernetTypeIPv4}, ip, u, gopacket.Payload(bytes.Repeat([]byte{0x42}, n)))
		}
	}
	ping4 := func(dst string, ttl uint8) func(l *routerLab) []byte {
		return func(l *routerLab) []byte {
			return fastpathtest.Serialize(t, &layers.Ethernet{SrcMAC: l.h1.HWAddr, DstMAC: mac(l), EthernetType: layers.EthernetTypeIPv4},
				&layers.IPv4{Version: 4, TTL: ttl, Protocol: layers.IPProtocolICMPv4, SrcIP: net.ParseIP("10.1.0.2"), DstIP: net.ParseIP(dst), Id: 4343},
				&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoRequest, 0), Id: 0x3131, Seq: 7}, gopacket.Payload("differential"))
		}
	}
	tcp4 := func(dst string, syn, ack bool, payload int) func(l *routerLab) []byte {
		return func(l *routerLab) []byte {
			ip := &layers.IPv4{Version: 4, TTL: 64, TOS: 0x10, Protocol: layers.IPProtocolTCP, SrcIP: net.ParseIP("10.1.0.2"), DstIP: net.ParseIP(dst), Id: 4444}
			tc := &layers.TCP{SrcPort: 40001, DstPort: 9, SYN: syn, ACK: ack, Seq: 1000, Ack: 77777, Window: 1000}
			tc.SetNetworkLayerForChecksum(ip)
			return fastpathtest.Serialize(t, &layers.Ethernet{SrcMAC: l.h1.HWAddr, DstMAC: mac(l), EthernetType: layers.EthernetTypeIPv4}, ip, tc,
				gopacket.Payload(bytes.Repeat([]byte{1}, payload)))
		}
	}
	tcp6 := func(dst string, syn bool) func(l *routerLab) []byte {
		return func(l *routerLab) []byte {
			ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolTCP, SrcIP: net.ParseIP("fd00:1::2"), DstIP: net.ParseIP(dst)}
			tc := &layers.TCP{SrcPort: 40001, DstPort: 9, SYN: syn, Seq: 1000, Window: 1000}
			tc.SetNetworkLayerForChecksum(ip)
			return fastpathtest.Serialize(t, &layers.Ethernet{SrcMAC: l.h1.HWAddr, DstMAC: mac(l), EthernetType: layers.EthernetTypeIPv6}, ip, tc)
		}
	}
	udp6 := func(dst string, hop uint8, n int) func(l *routerLab) []byte {
		return func(l *routerLab) []byte {
			ip := &layers.IPv6{Version: 6, HopLimit: hop, NextHeader: layers.IPProtocolUDP, SrcIP: net.ParseIP("fd00:1::2"), DstIP: net.ParseIP(dst)}
			u := &layers.UDP{SrcPort: 40000, DstPort: 33434}
			u.SetNetworkLayerForChecksum(ip)
			return fastpathtest.Serialize(t, &layers.Ethernet{SrcMAC: l.h1.HWAddr, DstMAC: mac(l), EthernetType: layers.EthernetTypeIPv6}, ip, u, gopacket.Payload(bytes.Repeat([]byte{0x61}, n)))
		}
	}
	ping6 := func(dst string) func(l *routerLab) []byte {
		return func(l *routerLab) []byte {
			ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolICMPv6, SrcIP: net.ParseIP("fd00:1::2"), DstIP: net.ParseIP(dst)}
			icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeEchoRequest, 0)}
			icmp.SetNetworkLayerForChecksum(ip)
			return fastpathtest.Serialize(t, &layers.Ethernet{SrcMAC: l.h1.HWAddr, DstMAC: mac(l), EthernetType: layers.EthernetTypeIPv6}, ip, icmp,
				&layers.ICMPv6Echo{Identifier: 0x3232, SeqNumber: 9}, gopacket.Payload("differential6"))
		}
	}
	probes := []probe{
		{"UDP forwarded", udp4("10.2.0.2", 64, false, 100)},
		{"UDP TTL 1: time exceeded", udp4("10.2.0.2", 1, false, 100)},
		{"UDP to the router: port unreachable", udp4("10.1.0.1", 64, false, 20)},
		{"echo to the router's other address", ping4("10.2.0.1", 64)},
		{"echo across", ping4("10.2.0.2", 64)},
		{"no route: net unreachable", udp4("10.8.0.1", 64, false, 20)},
		{"prohibit route: admin prohibited", udp4("10.9.0.1", 64, false, 20)},
		{"DF over the egress MTU: fragmentation needed", udp4("10.2.0.2", 64, true, 1450)},
		{"over the egress MTU without DF: fragments", udp4("10.2.0.2", 64, false, 1450)},
		{"TCP SYN across, RST back", tcp4("10.2.0.2", true, false, 0)},
		{"TCP SYN to the router: RST", tcp4("10.1.0.1", true, false, 0)},
		{"TCP data with ACK to the router: RST", tcp4("10.2.0.1", false, true, 10)},
		{"TCP6 SYN to the router: RST", tcp6("fd00:1::1", true)},
		{"back out of the interface it came in on: redirect", udp4("10.1.0.2", 64, false, 30)},
		{"UDP6 forwarded", udp6("fd00:2::2", 64, 100)},
		{"UDP6 hop limit 1: time exceeded", udp6("fd00:2::2", 1, 100)},
		{"UDP6 to the router: port unreachable", udp6("fd00:1::1", 64, 20)},
		{"echo6 to the router's other address", ping6("fd00:2::1")},
		{"UDP6 over the egress MTU: packet too big", udp6("fd00:2::2", 64, 1450)},
	}
	for _, p := range probes {
		k1, k2 := kernel.probe(t, p.build(kernel))
		x1, x2 := xdp.probe(t, p.build(xdp))
		if len(k1)+len(k2) == 0 {
			t.Errorf("%s: the kernel answered nothing: the probe tests nothing", p.name)
		}
		sameAtHosts(t, p.name, k1, k2, x1, x2)
		time.Sleep(200 * time.Millisecond) // within the ICMP rate limits of both
	}
}

// sameAtHosts fails t unless h1 and h2 received the same packets through
// the kernel (k1, k2) and through xdpfwd (x1, x2), in any order: xdpfwd
// sends what it emits (a redirect) after the packet that caused it, the
// kernel before. The message decodes both sides' packets.
func sameAtHosts(t *testing.T, probe string, k1, k2, x1, x2 []string) {
	t.Helper()
	for _, side := range []struct {
		host string
		k, x []string
	}{{"h1", k1, x1}, {"h2", k2, x2}} {
		slices.Sort(side.k)
		slices.Sort(side.x)
		if slices.Equal(side.k, side.x) {
			continue
		}
		var b strings.Builder
		fmt.Fprintf(&b, "%s: %s received %d packets through the kernel, %d through xdpfwd", probe, side.host, len(side.k), len(side.x))
		for _, k := range side.k {
			fmt.Fprintf(&b, "\n-- kernel:\n%s", describe(k))
		}
		for _, x := range side.x {
			fmt.Fprintf(&b, "\n-- xdpfwd:\n%s", describe(x))
		}
		t.Error(b.String())
	}
}
