package router

import (
	"bytes"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"go.uber.org/goleak"

	"github.com/xdpfwd/xdpfwd/fastpath"
	"github.com/xdpfwd/xdpfwd/fastpath/fastpathtest"
	"github.com/xdpfwd/xdpfwd/fastpath/header"
	"github.com/xdpfwd/xdpfwd/fastpath/neigh"
	"github.com/xdpfwd/xdpfwd/fastpath/route"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The test topology: port 1 is lan (10.1.0.1/24, fd00:1::1/64) with host
// H on it (10.1.0.2, fd00:1::2); port 2 is wan (192.0.2.1/24,
// fd00:2::1/64, MTU 1400) with gateway G (192.0.2.254); the default route
// is via G.
var (
	macLAN = header.MAC{0x02, 0xaa, 0, 0, 0, 1}
	macWAN = header.MAC{0x02, 0xaa, 0, 0, 0, 2}
	macH   = header.MAC{0x02, 0xbb, 0, 0, 0, 2}
	macG   = header.MAC{0x02, 0xcc, 0, 0, 0, 0xfe}

	ipLAN, ipH   = net.IP{10, 1, 0, 1}, net.IP{10, 1, 0, 2}
	ipWAN, ipG   = net.IP{192, 0, 2, 1}, net.IP{192, 0, 2, 254}
	ip6LAN, ip6H = net.ParseIP("fd00:1::1"), net.ParseIP("fd00:1::2")
)

const portLAN, portWAN = 1, 2

type routerRig struct {
	*fastpathtest.Rig
	r *Router
}

func newRouterRig(t testing.TB, routes ...StaticRoute) *routerRig {
	t.Helper()
	return newRouterRigChecked(t, true, routes...)
}

// newRouterRigChecked is newRouterRig with the UMEM's double-free checks
// on or (for benchmarks) off.
func newRouterRigChecked(t testing.TB, checked bool, routes ...StaticRoute) *routerRig {
	t.Helper()
	r, err := New(Config{
		Interfaces: []Interface{
			{Name: "lan", Port: portLAN, MAC: macLAN, Addrs: []netip.Prefix{netip.MustParsePrefix("10.1.0.1/24"), netip.MustParsePrefix("fd00:1::1/64")}},
			{Name: "wan", Port: portWAN, MAC: macWAN, MTU: 1400, Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24"), netip.MustParsePrefix("fd00:2::1/64")}},
		},
		Routes:  routes,
		MaxHeld: 64,
	})
	if err != nil {
		t.Fatal(err)
	}
	rig := fastpathtest.NewRig(t, fastpathtest.RigConfig{Ports: []fastpath.PortID{portLAN, portWAN}, Stages: r.Stages(), Checksum: true,
		Frames: 1024, Ring: 256, FillTarget: 192, FrameSize: 4096, UncheckedFrees: !checked})
	// The first poll announced the router's addresses: take them off.
	rig.Drain()
	rig.W.Poll()
	return &routerRig{Rig: rig, r: r}
}

var defaultRoute = StaticRoute{To: netip.MustParsePrefix("0.0.0.0/0"), Via: []netip.Addr{netip.MustParseAddr("192.0.2.254")}}

func ser(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	return fastpathtest.Serialize(t, ls...)
}

func eth(dst, src header.MAC, et layers.EthernetType) *layers.Ethernet {
	return &layers.Ethernet{DstMAC: fastpathtest.HW(dst), SrcMAC: fastpathtest.HW(src), EthernetType: et}
}

func arpFrame(t testing.TB, op uint16, dstMAC, sha header.MAC, spa, tpa net.IP, tha header.MAC) []byte {
	return ser(t, eth(dstMAC, sha, layers.EthernetTypeARP), &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4,
		HwAddressSize: 6, ProtAddressSize: 4, Operation: op, SourceHwAddress: fastpathtest.HW(sha), SourceProtAddress: spa.To4(),
		DstHwAddress: fastpathtest.HW(tha), DstProtAddress: tpa.To4()})
}

func udp4(t testing.TB, dstMAC header.MAC, src, dst net.IP, ttl uint8, df bool, payload int) []byte {
	ip := &layers.IPv4{Version: 4, TTL: ttl, Protocol: layers.IPProtocolUDP, SrcIP: src, DstIP: dst, Id: 7}
	if df {
		ip.Flags = layers.IPv4DontFragment
	}
	u := &layers.UDP{SrcPort: 4000, DstPort: 5000}
	u.SetNetworkLayerForChecksum(ip)
	return ser(t, eth(dstMAC, macH, layers.EthernetTypeIPv4), ip, u, gopacket.Payload(make([]byte, payload)))
}

func ping4(t testing.TB, dstMAC header.MAC, src, dst net.IP, ttl uint8) []byte {
	return ser(t, eth(dstMAC, macH, layers.EthernetTypeIPv4),
		&layers.IPv4{Version: 4, TTL: ttl, Protocol: layers.IPProtocolICMPv4, SrcIP: src, DstIP: dst, Id: 9},
		&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoRequest, 0), Id: 0x77, Seq: 1},
		gopacket.Payload([]byte("ping payload")))
}

// decode decodes f, failing the test on a decode error or a bad checksum.
func decode(t *testing.T, f []byte) gopacket.Packet {
	t.Helper()
	p := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
	if err := p.ErrorLayer(); err != nil {
		t.Fatalf("decode %x: %v", f, err.Error())
	}
	return p
}

// one returns the only frame port sent, failing otherwise.
func one(t *testing.T, out map[fastpath.PortID][][]byte, port fastpath.PortID) []byte {
	t.Helper()
	if len(out[port]) != 1 {
		t.Fatalf("port %d sent %d frames, want 1 (all: %d ports)", port, len(out[port]), len(out))
	}
	return out[port][0]
}

func TestRouterARPAndPing(t *testing.T) {
	r := newRouterRig(t)
	out := r.Send(portLAN, arpFrame(t, layers.ARPRequest, header.BroadcastMAC, macH, ipH, ipLAN, header.MAC{}))
	reply := decode(t, one(t, out, portLAN))
	a := reply.Layer(layers.LayerTypeARP).(*layers.ARP)
	e := reply.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	if a.Operation != layers.ARPReply || !net.IP(a.SourceProtAddress).Equal(ipLAN) || header.MAC(a.SourceHwAddress) != macLAN ||
		header.MAC(e.DstMAC) != macH || header.MAC(e.SrcMAC) != macLAN {
		t.Fatalf("ARP reply %+v from %v to %v", a, e.SrcMAC, e.DstMAC)
	}
	// The request taught the router H's MAC: the echo reply goes out at
	// once.
	out = r.Send(portLAN, ping4(t, macLAN, ipH, ipLAN, 64))
	p := decode(t, one(t, out, portLAN))
	ip := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	icmp := p.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
	e = p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	if icmp.TypeCode.Type() != layers.ICMPv4TypeEchoReply || icmp.Id != 0x77 || !ip.SrcIP.Equal(ipLAN) || !ip.DstIP.Equal(ipH) ||
		ip.TTL != 64 || header.MAC(e.DstMAC) != macH || header.MAC(e.SrcMAC) != macLAN || string(icmp.Payload) != "ping payload" {
		t.Fatalf("echo reply %v", p)
	}
	if c := r.r.Counters(); c.ARPReplies != 1 || c.EchoReplies != 1 {
		t.Fatalf("counters %+v", c)
	}
	if n := r.W.Counters().Ports[portLAN].Consumed; n != 1 {
		t.Fatalf("consumed %d (the ARP request), want 1", n)
	}
}

// TestRouterForwardsAfterResolving: the first packet to a gateway not yet
// resolved waits while the router asks for it by ARP; the gateway's answer
// releases it, TTL decremented, MACs rewritten, checksums right.
func TestRouterForwardsAfterResolving(t *testing.T) {
	r := newRouterRig(t, defaultRoute)
	pkt := udp4(t, macLAN, ipH, net.IP{198, 51, 100, 7}, 64, false, 100)
	out := r.Send(portLAN, pkt)
	req := decode(t, one(t, out, portWAN))
	a := req.Layer(layers.LayerTypeARP).(*layers.ARP)
	if a.Operation != layers.ARPRequest || !net.IP(a.DstProtAddress).Equal(ipG) || !net.IP(a.SourceProtAddress).Equal(ipWAN) ||
		header.MAC(req.Layer(layers.LayerTypeEthernet).(*layers.Ethernet).DstMAC) != header.BroadcastMAC {
		t.Fatalf("ARP request %+v", a)
	}
	if r.W.Stolen() != 1 {
		t.Fatalf("%d packets held, want 1", r.W.Stolen())
	}
	out = r.Send(portWAN, arpFrame(t, layers.ARPReply, macWAN, macG, ipG, ipWAN, macWAN))
	if len(out) != 0 {
		// The release may come with the reply's batch or the next poll.
		t.Logf("sent with the reply: %d ports", len(out))
	}
	if len(out[portWAN]) == 0 {
		r.W.Poll()
		out = r.Drain()
		r.W.Poll()
	}
	f := decode(t, one(t, out, portWAN))
	ip := f.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	e := f.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	if ip.TTL != 63 || header.MAC(e.DstMAC) != macG || header.MAC(e.SrcMAC) != macWAN || !ip.SrcIP.Equal(ipH) {
		t.Fatalf("forwarded %v", f)
	}
	r.Conserved("after release")
	if r.W.Stolen() != 0 {
		t.Fatalf("%d still held", r.W.Stolen())
	}
	// Now resolved: the next packet goes straight through.
	out = r.Send(portLAN, pkt)
	if f := one(t, out, portWAN); header.IPv4(f[14:]).TTL() != 63 {
		t.Fatalf("second packet TTL %d", header.IPv4(f[14:]).TTL())
	}
	if c := r.r.Counters(); c.Forwarded != 2 || c.Solicits != 1 {
		t.Fatalf("counters %+v", c)
	}
}

// icmpFrom decodes the ICMP error in f and checks it is type/code from src
// to H about the packet (by its IP identification 7).
func icmpFrom(t *testing.T, f []byte, typ, code uint8, src net.IP) *layers.ICMPv4 {
	t.Helper()
	p := decode(t, f)
	ip := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	icmp := p.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
	if icmp == nil || icmp.TypeCode.Type() != typ || icmp.TypeCode.Code() != code || !ip.SrcIP.Equal(src) || !ip.DstIP.Equal(ipH) {
		t.Fatalf("ICMP error %v, want type %d code %d from %v", p, typ, code, src)
	}
	if quoted := header.IPv4(icmp.Payload); len(quoted) < 20 || quoted[4] != 0 || quoted[5] != 7 {
		t.Fatalf("ICMP error quotes %x, not the packet", icmp.Payload)
	}
	return icmp
}

func TestRouterICMPErrors(t *testing.T) {
	r := newRouterRig(t, defaultRoute)
	// H's MAC, so that errors go back at once.
	r.Send(portLAN, arpFrame(t, layers.ARPRequest, header.BroadcastMAC, macH, ipH, ipLAN, header.MAC{}))

	out := r.Send(portLAN, udp4(t, macLAN, ipH, net.IP{198, 51, 100, 7}, 1, false, 10))
	icmpFrom(t, one(t, out, portLAN), layers.ICMPv4TypeTimeExceeded, 0, ipLAN)
	if r.Drops(portLAN, DropTTL) != 1 {
		t.Fatal("TTL drop not counted")
	}

	out = r.Send(portLAN, udp4(t, macLAN, ipH, ipLAN, 64, false, 10))
	icmpFrom(t, one(t, out, portLAN), layers.ICMPv4TypeDestinationUnreachable, layers.ICMPv4CodePort, ipLAN)

	// 1400-byte MTU on wan: DF set → fragmentation needed with the MTU;
	// DF clear → dropped (no fragmentation yet), no error.
	out = r.Send(portLAN, udp4(t, macLAN, ipH, net.IP{198, 51, 100, 7}, 64, true, 1400))
	icmp := icmpFrom(t, one(t, out, portLAN), layers.ICMPv4TypeDestinationUnreachable, layers.ICMPv4CodeFragmentationNeeded, ipLAN)
	if icmp.Seq != 1400 { // gopacket puts the next-hop MTU's 16 bits in Seq
		t.Fatalf("fragmentation needed: MTU %d, want 1400", icmp.Seq)
	}
	if r.Drops(portLAN, DropTooBig) != 1 {
		t.Fatalf("%d too-big drops, want 1", r.Drops(portLAN, DropTooBig))
	}

	// A frame to another MAC on a port interface is not the router's.
	out = r.Send(portLAN, udp4(t, macG, ipH, ipLAN, 64, false, 10))
	if len(out) != 0 || r.Drops(portLAN, DropNotForRouter) != 1 {
		t.Fatalf("frame to another MAC: sent %v", out)
	}
}

func TestRouterNoRoute(t *testing.T) {
	r := newRouterRig(t, StaticRoute{To: netip.MustParsePrefix("203.0.113.0/24"), Type: route.Prohibit})
	r.Send(portLAN, arpFrame(t, layers.ARPRequest, header.BroadcastMAC, macH, ipH, ipLAN, header.MAC{}))
	out := r.Send(portLAN, udp4(t, macLAN, ipH, net.IP{198, 51, 100, 7}, 64, false, 10))
	icmpFrom(t, one(t, out, portLAN), layers.ICMPv4TypeDestinationUnreachable, layers.ICMPv4CodeNet, ipLAN)
	out = r.Send(portLAN, udp4(t, macLAN, ipH, net.IP{203, 0, 113, 9}, 64, false, 10))
	icmpFrom(t, one(t, out, portLAN), layers.ICMPv4TypeDestinationUnreachable, 13, ipLAN)
	if r.Drops(portLAN, DropNoRoute) != 1 || r.Drops(portLAN, DropProhibit) != 1 {
		t.Fatal("drops not counted")
	}
}

// TestRouterNeighbourProbesIdle: after the gateway's entry went STALE, one
// packet to it (DELAY) is enough for the router to probe it on its own,
// as the kernel's neighbour timer does: with no further packet, a unicast
// ARP request to the gateway's MAC delay_first_probe_time later; its
// answer makes the entry REACHABLE, so the next packet goes at once.
func TestRouterNeighbourProbesIdle(t *testing.T) {
	r := newRouterRig(t, defaultRoute)
	r.Send(portLAN, udp4(t, macLAN, ipH, net.IP{198, 51, 100, 7}, 64, false, 10))   // held; the gateway solicited
	r.Send(portWAN, arpFrame(t, layers.ARPReply, macWAN, macG, ipG, ipWAN, macWAN)) // REACHABLE
	r.W.Poll()
	r.Drain()
	r.Now += fastpath.Time(60 * time.Second) // STALE (reachable_time is at most 1.5 × 30 s)
	if out := r.Send(portLAN, udp4(t, macLAN, ipH, net.IP{198, 51, 100, 7}, 64, false, 10)); len(out[portWAN]) != 1 {
		t.Fatalf("to the STALE gateway: %d frames on wan, want the packet", len(out[portWAN]))
	}
	var probe []byte
	at := time.Duration(0)
	for step := 1; step <= 60 && probe == nil; step++ {
		r.Now += fastpath.Time(100 * time.Millisecond)
		r.W.Poll()
		if got := r.Drain()[portWAN]; len(got) > 0 {
			probe, at = got[0], time.Duration(step)*100*time.Millisecond
		}
	}
	if probe == nil {
		t.Fatal("no probe within 6 s of the packet")
	}
	arp, _ := decode(t, probe).Layer(layers.LayerTypeARP).(*layers.ARP)
	if arp == nil || arp.Operation != layers.ARPRequest || header.MAC(decode(t, probe).Layer(layers.LayerTypeEthernet).(*layers.Ethernet).DstMAC) != macG || at < 5*time.Second {
		t.Fatalf("after %v: %v, want a unicast ARP request to %v after 5 s", at, decode(t, probe), macG)
	}
	r.Send(portWAN, arpFrame(t, layers.ARPReply, macWAN, macG, ipG, ipWAN, macWAN))
	for range 20 {
		r.Now += fastpath.Time(100 * time.Millisecond)
		r.W.Poll()
		if got := r.Drain()[portWAN]; len(got) > 0 {
			t.Fatalf("after the answer: %d more frames on wan", len(got))
		}
	}
	if l, ok := r.r.Neighbours().Lookup(2, netip.AddrFrom4([4]byte(ipG.To4())), int64(r.Now)); !ok || l.State != neigh.StateReachable {
		t.Fatalf("gateway %v (found %v), want REACHABLE", l.State, ok)
	}
}

// TestRouterNeighbourFails: nobody answers for a connected address; after
// the kernel's three solicitations a second apart, the held packet is
// dropped and its sender gets ICMP host unreachable.
func TestRouterNeighbourFails(t *testing.T) {
	r := newRouterRig(t)
	r.Send(portLAN, arpFrame(t, layers.ARPRequest, header.BroadcastMAC, macH, ipH, ipLAN, header.MAC{}))
	out := r.Send(portLAN, udp4(t, macLAN, ipH, net.IP{192, 0, 2, 77}, 64, false, 10))
	if len(out[portWAN]) != 1 {
		t.Fatalf("no ARP request: %v", out)
	}
	requests := 1
	var unreachable []byte
	for step := 1; step <= 40 && unreachable == nil; step++ {
		r.Now += fastpath.Time(100 * time.Millisecond)
		r.W.Poll()
		got := r.Drain()
		requests += len(got[portWAN])
		if len(got[portLAN]) > 0 {
			unreachable = got[portLAN][0]
		}
	}
	if unreachable == nil {
		t.Fatal("no ICMP host unreachable within 4 s")
	}
	icmpFrom(t, unreachable, layers.ICMPv4TypeDestinationUnreachable, layers.ICMPv4CodeHost, ipLAN)
	if requests != 3 {
		t.Fatalf("%d ARP requests, want the kernel's 3 (mcast_solicit)", requests)
	}
	r.W.Poll()
	r.Conserved("after the failure")
	if r.Drops(portLAN, DropNeighbour) != 1 || r.W.Stolen() != 0 {
		t.Fatalf("neighbour drops %d, held %d", r.Drops(portLAN, DropNeighbour), r.W.Stolen())
	}
}

func TestRouterIPv6(t *testing.T) {
	r := newRouterRig(t)
	ns := func(target net.IP) []byte {
		dst := net.ParseIP("ff02::1:ff00:1")
		ip := &layers.IPv6{Version: 6, HopLimit: 255, NextHeader: layers.IPProtocolICMPv6, SrcIP: ip6H, DstIP: dst}
		icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeNeighborSolicitation, 0)}
		icmp.SetNetworkLayerForChecksum(ip)
		return ser(t, eth(header.IPv6MulticastMAC([16]byte(dst)), macH, layers.EthernetTypeIPv6), ip, icmp,
			&layers.ICMPv6NeighborSolicitation{TargetAddress: target, Options: layers.ICMPv6Options{{Type: layers.ICMPv6OptSourceAddress, Data: fastpathtest.HW(macH)}}})
	}
	out := r.Send(portLAN, ns(ip6LAN))
	p := decode(t, one(t, out, portLAN))
	na := p.Layer(layers.LayerTypeICMPv6NeighborAdvertisement).(*layers.ICMPv6NeighborAdvertisement)
	e := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	if !na.TargetAddress.Equal(ip6LAN) || !na.Solicited() || !na.Router() || header.MAC(e.DstMAC) != macH {
		t.Fatalf("NA %v", p)
	}
	ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolICMPv6, SrcIP: ip6H, DstIP: ip6LAN}
	icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeEchoRequest, 0)}
	icmp.SetNetworkLayerForChecksum(ip)
	echo := ser(t, eth(macLAN, macH, layers.EthernetTypeIPv6), ip, icmp, &layers.ICMPv6Echo{Identifier: 5, SeqNumber: 1}, gopacket.Payload("six"))
	out = r.Send(portLAN, echo)
	p = decode(t, one(t, out, portLAN))
	rip := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
	if rp := p.Layer(layers.LayerTypeICMPv6); rp == nil || rp.(*layers.ICMPv6).TypeCode.Type() != layers.ICMPv6TypeEchoReply || !rip.SrcIP.Equal(ip6LAN) || !rip.DstIP.Equal(ip6H) {
		t.Fatalf("echo reply %v", p)
	}
	// Hop limit 1 to a connected address on wan: time exceeded.
	ip = &layers.IPv6{Version: 6, HopLimit: 1, NextHeader: layers.IPProtocolUDP, SrcIP: ip6H, DstIP: net.ParseIP("fd00:2::5")}
	u := &layers.UDP{SrcPort: 1, DstPort: 2}
	u.SetNetworkLayerForChecksum(ip)
	out = r.Send(portLAN, ser(t, eth(macLAN, macH, layers.EthernetTypeIPv6), ip, u, gopacket.Payload("x")))
	p = decode(t, one(t, out, portLAN))
	if te := p.Layer(layers.LayerTypeICMPv6); te == nil || te.(*layers.ICMPv6).TypeCode.Type() != layers.ICMPv6TypeTimeExceeded {
		t.Fatalf("time exceeded %v", p)
	}
	// Forwarded to wan: resolved by NDP first.
	ip.HopLimit = 64
	out = r.Send(portLAN, ser(t, eth(macLAN, macH, layers.EthernetTypeIPv6), ip, u, gopacket.Payload("x")))
	sol := decode(t, one(t, out, portWAN))
	if s := sol.Layer(layers.LayerTypeICMPv6NeighborSolicitation); s == nil || !s.(*layers.ICMPv6NeighborSolicitation).TargetAddress.Equal(net.ParseIP("fd00:2::5")) {
		t.Fatalf("neighbour solicitation %v", sol)
	}
}

// TestRouterAnnounces: at start, with no traffic, the router sends a
// gratuitous ARP request for each IPv4 address and an unsolicited
// neighbour advertisement for each IPv6 one, out of its interface, once.
func TestRouterAnnounces(t *testing.T) {
	r, err := New(Config{Interfaces: []Interface{
		{Name: "lan", Port: portLAN, MAC: macLAN, Addrs: []netip.Prefix{netip.MustParsePrefix("10.1.0.1/24"), netip.MustParsePrefix("fd00:1::1/64")}},
		{Name: "wan", Port: portWAN, MAC: macWAN, Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	rig := fastpathtest.NewRig(t, fastpathtest.RigConfig{Ports: []fastpath.PortID{portLAN, portWAN}, Stages: r.Stages(), Frames: 256, FrameSize: 4096})
	out := rig.Drain()
	if len(out[portLAN]) != 2 || len(out[portWAN]) != 1 {
		t.Fatalf("announced %d on lan, %d on wan; want 2 and 1", len(out[portLAN]), len(out[portWAN]))
	}
	garp := decode(t, out[portWAN][0]).Layer(layers.LayerTypeARP).(*layers.ARP)
	if garp.Operation != layers.ARPRequest || !net.IP(garp.SourceProtAddress).Equal(ipWAN) || !net.IP(garp.DstProtAddress).Equal(ipWAN) {
		t.Fatalf("gratuitous ARP %+v", garp)
	}
	na := decode(t, out[portLAN][1]).Layer(layers.LayerTypeICMPv6NeighborAdvertisement)
	if na == nil || !na.(*layers.ICMPv6NeighborAdvertisement).TargetAddress.Equal(ip6LAN) || na.(*layers.ICMPv6NeighborAdvertisement).Solicited() {
		t.Fatalf("unsolicited NA %v", na)
	}
	rig.W.Poll()
	if len(rig.Drain()) != 0 || r.Counters().Announced != 3 {
		t.Fatalf("announced again, or %d counted", r.Counters().Announced)
	}
	rig.Conserved("after announcing")
}

// TestRouterFragments: a packet over the output MTU without DF is cut
// into fragments, as the kernel cuts it: 1376 bytes (1400 - 20, a
// multiple of 8) then the rest, offsets and MF set, TTL decremented, and
// together they hold the datagram with its checksum finished.
func TestRouterFragments(t *testing.T) {
	r := newRouterRig(t, defaultRoute)
	r.Send(portWAN, arpFrame(t, layers.ARPRequest, header.BroadcastMAC, macG, ipG, ipWAN, header.MAC{}))
	orig := udp4(t, macLAN, ipH, net.IP{198, 51, 100, 7}, 64, false, 1450)
	partial := append([]byte(nil), orig...)
	fastpathtest.MakePartial(t, partial)
	out := r.Send(portLAN, partial)
	if len(out[portWAN]) != 2 {
		t.Fatalf("%d frames on wan, want 2 fragments", len(out[portWAN]))
	}
	var payload []byte
	for i, f := range out[portWAN] {
		ip := decode(t, f).Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		wantLen, wantOff, wantMF := 1396, uint16(0), true
		if i == 1 {
			wantLen, wantOff, wantMF = 20+1458-1376, 1376/8, false
		}
		if int(ip.Length) != wantLen || ip.FragOffset != wantOff || (ip.Flags&layers.IPv4MoreFragments != 0) != wantMF || ip.TTL != 63 || ip.Id != 7 {
			t.Fatalf("fragment %d: %+v", i, ip)
		}
		if header.Checksum(f[14:34], 0) != 0xffff {
			t.Fatalf("fragment %d: header checksum %#x does not verify", i, header.IPv4(f[14:]).Checksum())
		}
		payload = append(payload, f[34:34+wantLen-20]...)
	}
	if want := orig[34:]; !bytes.Equal(payload, want) {
		t.Fatalf("reassembled payload differs from the datagram (checksum finished): %x", payload[:8])
	}
	if r.r.Counters().Fragmented != 1 {
		t.Fatal("not counted")
	}
}

// TestRouterECMP: a route over two gateways spreads flows over both by a
// hash of the addresses, each flow always to the same one.
func TestRouterECMP(t *testing.T) {
	g1, g2 := netip.MustParseAddr("192.0.2.254"), netip.MustParseAddr("192.0.2.253")
	mac1, mac2 := header.MAC{2, 0xcc, 0, 0, 0, 1}, header.MAC{2, 0xcc, 0, 0, 0, 2}
	r, err := New(Config{
		Interfaces: []Interface{
			{Name: "lan", Port: portLAN, MAC: macLAN, Addrs: []netip.Prefix{netip.MustParsePrefix("10.1.0.1/24")}},
			{Name: "wan", Port: portWAN, MAC: macWAN, Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}},
		},
		Routes:     []StaticRoute{{To: netip.MustParsePrefix("0.0.0.0/0"), Via: []netip.Addr{g1, g2}}},
		Neighbours: []StaticNeighbour{{Iface: "wan", IP: g1, MAC: mac1}, {Iface: "wan", IP: g2, MAC: mac2}},
	})
	if err != nil {
		t.Fatal(err)
	}
	rig := fastpathtest.NewRig(t, fastpathtest.RigConfig{Ports: []fastpath.PortID{portLAN, portWAN}, Stages: r.Stages(), Frames: 1024, Ring: 256, FillTarget: 128, FrameSize: 4096})
	rig.Drain()
	rig.W.Poll()
	via := map[byte]header.MAC{}
	count := map[header.MAC]int{}
	for round := range 2 {
		for i := byte(2); i < 66; i++ {
			out := rig.Send(portLAN, udp4(t, macLAN, net.IP{10, 1, 0, i}, net.IP{198, 51, 100, 7}, 64, false, 10))
			f := one(t, out, portWAN)
			mac := header.MAC(f[0:6])
			if round == 1 && via[i] != mac {
				t.Fatalf("flow from 10.1.0.%d went via %v, then %v", i, via[i], mac)
			}
			via[i] = mac
			count[mac]++
		}
	}
	if count[mac1] < 20 || count[mac2] < 20 || count[mac1]+count[mac2] != 128 {
		t.Fatalf("flows per gateway: %v", count)
	}
}

// TestRouterBatchOfNeighbours: one batch to two hosts of one connected
// subnet: each packet gets its own host's MAC.
func TestRouterBatchOfNeighbours(t *testing.T) {
	mac2, mac3 := header.MAC{2, 0xbb, 0, 0, 0, 2}, header.MAC{2, 0xbb, 0, 0, 0, 3}
	r, err := New(Config{
		Interfaces: []Interface{
			{Name: "lan", Port: portLAN, MAC: macLAN, Addrs: []netip.Prefix{netip.MustParsePrefix("10.1.0.1/24")}},
			{Name: "wan", Port: portWAN, MAC: macWAN, Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}},
		},
		Neighbours: []StaticNeighbour{{Iface: "lan", IP: netip.MustParseAddr("10.1.0.2"), MAC: mac2}, {Iface: "lan", IP: netip.MustParseAddr("10.1.0.3"), MAC: mac3}},
	})
	if err != nil {
		t.Fatal(err)
	}
	rig := fastpathtest.NewRig(t, fastpathtest.RigConfig{Ports: []fastpath.PortID{portLAN, portWAN}, Stages: r.Stages(), Frames: 512, FrameSize: 4096})
	rig.Drain()
	rig.W.Poll()
	from := net.IP{192, 0, 2, 9}
	out := rig.Send(portWAN, udp4(t, macWAN, from, net.IP{10, 1, 0, 2}, 64, false, 10), udp4(t, macWAN, from, net.IP{10, 1, 0, 3}, 64, false, 10),
		udp4(t, macWAN, from, net.IP{10, 1, 0, 2}, 64, false, 10))
	if len(out[portLAN]) != 3 {
		t.Fatalf("lan sent %d frames, want 3", len(out[portLAN]))
	}
	for i, want := range []header.MAC{mac2, mac3, mac2} {
		if got := header.MAC(out[portLAN][i][0:6]); got != want {
			t.Errorf("packet %d to %v: destination MAC %v, want %v", i, header.IPv4(out[portLAN][i][14:]).Dst(), got, want)
		}
	}
}

// TestRouterRefuses: what a Linux router drops before routing, silently:
// a bad header checksum; martian sources (loopback, the router's own
// address) and destinations (loopback); a frame to the broadcast MAC it
// would forward; a subnet's broadcast address (not forwarded, no ARP);
// and, with an error, an IPv6 link-local source leaving its link.
func TestRouterRefuses(t *testing.T) {
	r := newRouterRig(t, defaultRoute)
	r.Send(portLAN, arpFrame(t, layers.ARPRequest, header.BroadcastMAC, macH, ipH, ipLAN, header.MAC{}))
	bad := udp4(t, macLAN, ipH, net.IP{198, 51, 100, 7}, 64, false, 10)
	bad[14+10] ^= 0xff
	cases := []struct {
		name   string
		frame  []byte
		reason fastpath.Reason
	}{
		{"bad checksum", bad, DropBadChecksum},
		{"loopback source", udp4(t, macLAN, net.IP{127, 0, 0, 1}, net.IP{198, 51, 100, 7}, 64, false, 10), DropMartian},
		{"the router's address as source", udp4(t, macLAN, ipWAN, net.IP{198, 51, 100, 7}, 64, false, 10), DropMartian},
		{"loopback destination", udp4(t, macLAN, ipH, net.IP{127, 0, 0, 1}, 64, false, 10), DropMartian},
		{"broadcast MAC, unicast IP", udp4(t, header.BroadcastMAC, ipH, net.IP{198, 51, 100, 7}, 64, false, 10), DropOtherHost},
	}
	for _, c := range cases {
		before := r.Drops(portLAN, c.reason)
		if out := r.Send(portLAN, c.frame); len(out) != 0 {
			t.Errorf("%s: sent %v", c.name, out)
		}
		if r.Drops(portLAN, c.reason)-before != 1 {
			t.Errorf("%s: not counted as %q", c.name, c.reason)
		}
	}
	if out := r.Send(portLAN, udp4(t, macLAN, ipH, net.IP{192, 0, 2, 255}, 64, false, 10)); len(out) != 0 || r.W.Stolen() != 0 {
		t.Errorf("to wan's broadcast address: sent %v, %d held (an ARP request for it?)", out, r.W.Stolen())
	}
	ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolUDP, SrcIP: net.ParseIP("fe80::9"), DstIP: net.ParseIP("fd00:2::5")}
	u := &layers.UDP{SrcPort: 1, DstPort: 2}
	u.SetNetworkLayerForChecksum(ip)
	before := r.Drops(portLAN, DropMartian)
	out := r.Send(portLAN, ser(t, eth(macLAN, macH, layers.EthernetTypeIPv6), ip, u, gopacket.Payload("x")))
	if len(out[portWAN]) != 0 || r.Drops(portLAN, DropMartian) != before+1 {
		t.Fatalf("a link-local source was forwarded off its link, or not counted")
	}
	// The beyond-scope error waits for fe80::9's MAC: a solicitation for
	// it went out, and the error is held.
	ns := decode(t, one(t, out, portLAN)).Layer(layers.LayerTypeICMPv6NeighborSolicitation)
	if ns == nil || !ns.(*layers.ICMPv6NeighborSolicitation).TargetAddress.Equal(net.ParseIP("fe80::9")) || r.W.Stolen() != 1 {
		t.Fatalf("no solicitation for fe80::9 with the error held (%d held)", r.W.Stolen())
	}
}

// TestRouterLinkLocalGateway: an IPv6 default route via a link-local
// gateway on an interface (`via fe80::1 dev wan`) forwards to that
// gateway's MAC; without dev, the route is refused.
func TestRouterLinkLocalGateway(t *testing.T) {
	gw := netip.MustParseAddr("fe80::1")
	macGW := header.MAC{2, 0xcc, 0, 0, 0, 0x61}
	ifs := []Interface{
		{Name: "lan", Port: portLAN, MAC: macLAN, Addrs: []netip.Prefix{netip.MustParsePrefix("fd00:1::1/64")}},
		{Name: "wan", Port: portWAN, MAC: macWAN},
	}
	if _, err := New(Config{Interfaces: ifs, Routes: []StaticRoute{{To: netip.MustParsePrefix("::/0"), Via: []netip.Addr{gw}}}}); err == nil || !strings.Contains(err.Error(), "needs its interface (dev)") {
		t.Fatalf("a link-local gateway without dev: %v", err)
	}
	r, err := New(Config{Interfaces: ifs, Routes: []StaticRoute{{To: netip.MustParsePrefix("::/0"), Via: []netip.Addr{gw}, Dev: "wan"}},
		Neighbours: []StaticNeighbour{{Iface: "wan", IP: gw, MAC: macGW}}})
	if err != nil {
		t.Fatal(err)
	}
	rig := fastpathtest.NewRig(t, fastpathtest.RigConfig{Ports: []fastpath.PortID{portLAN, portWAN}, Stages: r.Stages(), Frames: 512, FrameSize: 4096})
	rig.Drain()
	rig.W.Poll()
	ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolUDP, SrcIP: ip6H, DstIP: net.ParseIP("2001:db8::7")}
	u := &layers.UDP{SrcPort: 1, DstPort: 2}
	u.SetNetworkLayerForChecksum(ip)
	out := rig.Send(portLAN, ser(t, eth(macLAN, macH, layers.EthernetTypeIPv6), ip, u, gopacket.Payload("x")))
	if f := one(t, out, portWAN); header.MAC(f[0:6]) != macGW || header.IPv6(f[14:]).HopLimit() != 63 {
		t.Fatalf("forwarded to %v, hop limit %d", header.MAC(f[0:6]), header.IPv6(f[14:]).HopLimit())
	}
}
