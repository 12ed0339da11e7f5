package nat

import (
	"net"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/xdpfwd/xdpfwd/conntrack"
	"github.com/xdpfwd/xdpfwd/fastpath"
	"github.com/xdpfwd/xdpfwd/fastpath/fastpathtest"
)

// natRig is one worker's pipeline of connection tracking and NAT over a
// Tracker and Translator it may share with other rigs (other workers):
// conntrack at prerouting, NAT's destination hook (the nat chain dnat,
// then Apply), NAT's source hook (the nat chain snat, then Apply), and
// the confirmation at postrouting, as the rules engine's natStage runs
// them for routed packets.
type natRig struct {
	tr        *conntrack.Tracker
	x         *Translator
	pre, post fastpath.Stage
	b         fastpath.Batch
	now       fastpath.Time
	// dnat and snat are the nat chains at prerouting and postrouting,
	// run for a packet whose connection is not bound on their side yet
	// (nil: none); false drops the packet.
	dnat, snat func(p *fastpath.Packet) bool
}

// newNATTracker returns an enabled Tracker over a table of max entries.
func newNATTracker(max int) *conntrack.Tracker {
	tr := conntrack.NewTracker(conntrack.New(conntrack.Config{Max: max}))
	tr.SetEnabled(true)
	return tr
}

// newNATRig returns a new worker of tr and x.
func newNATRig(t testing.TB, tr *conntrack.Tracker, x *Translator) *natRig {
	t.Helper()
	r := &natRig{tr: tr, x: x, now: fastpathtest.Sec(1)}
	for _, a := range tr.Stages() {
		switch a.Hook {
		case fastpath.HookPrerouting:
			r.pre = a.Stage
		case fastpath.HookPostrouting:
			r.post = a.Stage
		}
	}
	if r.pre == nil || r.post == nil {
		t.Fatal("no conntrack stages")
	}
	return r
}

// load puts copies of frames, parsed and routed, in the batch.
func (r *natRig) load(frames ...[]byte) {
	r.b.Len = len(frames)
	for i, f := range frames {
		r.b.Packets[i] = fastpathtest.Parsed(append([]byte(nil), f...))
		r.b.Packets[i].Routed = true
		r.b.Packets[i].OutIface = 1
	}
}

// hook is NAT at one hook over the batch: the nat chain for unbound new
// connections, then Apply.
func (r *natRig) hook(m Manip, chain func(p *fastpath.Packet) bool) {
	for i := range r.b.Packets[:r.b.Len] {
		p := &r.b.Packets[i]
		if p.Action != fastpath.ActionContinue || p.CtRef == 0 || p.L3Off == 0 {
			continue
		}
		if chain != nil && r.x.Unbound(p, m) && !chain(p) {
			p.Drop(DropNAT)
			continue
		}
		r.x.Apply(p, m, r.now, r.b.DryRun)
	}
}

// process runs the loaded batch through the pipeline.
func (r *natRig) process() {
	r.pre.Process(&r.b, r.now)
	r.hook(Dst, r.dnat)
	r.hook(Src, r.snat)
	r.post.Process(&r.b, r.now)
}

// forward runs frames through the pipeline and returns their packets as
// they leave it (Data: the frames as rewritten).
func (r *natRig) forward(frames ...[]byte) []fastpath.Packet {
	r.load(frames...)
	r.process()
	out := make([]fastpath.Packet, len(frames))
	copy(out, r.b.Packets[:len(frames)])
	return out
}

// entries returns the table's live entries.
func entries(tr *conntrack.Tracker, now fastpath.Time) []conntrack.Entry {
	var out []conntrack.Entry
	tr.Table().Walk(int64(now), func(e *conntrack.Entry) bool {
		out = append(out, *e)
		return true
	})
	return out
}

// ctStats sums the workers' conntrack counters.
func ctStats(tr *conntrack.Tracker) conntrack.Stats {
	var s conntrack.Stats
	for _, w := range tr.Stats() {
		s.Add(&w)
	}
	return s
}

// mac addresses of the test frames.
var macA, macB = fastpathtest.MAC(1), fastpathtest.MAC(2)

// ipFrame lays out an Ethernet frame with an IPv4 or IPv6 header (by
// src's form) from src to dst, followed by ls (the first one the
// transport header, its checksum computed over the IP header).
func ipFrame(t testing.TB, src, dst string, ls ...gopacket.SerializableLayer) []byte {
	s, d := net.ParseIP(src), net.ParseIP(dst)
	return ipFrameOf(t, s.To4() == nil, s, d, ls...)
}

// ipFrameOf is ipFrame with the family given: IPv6 if v6.
func ipFrameOf(t testing.TB, v6 bool, s, d net.IP, ls ...gopacket.SerializableLayer) []byte {
	var ip gopacket.SerializableLayer
	var nl gopacket.NetworkLayer
	et := layers.EthernetTypeIPv4
	var proto layers.IPProtocol
	switch ls[0].(type) {
	case *layers.UDP:
		proto = layers.IPProtocolUDP
	case *layers.TCP:
		proto = layers.IPProtocolTCP
	case *layers.ICMPv4:
		proto = layers.IPProtocolICMPv4
	case *layers.ICMPv6:
		proto = layers.IPProtocolICMPv6
	}
	if !v6 {
		v4 := &layers.IPv4{Version: 4, TTL: 64, SrcIP: s.To4(), DstIP: d.To4(), Protocol: proto}
		ip, nl = v4, v4
	} else {
		et = layers.EthernetTypeIPv6
		v6 := &layers.IPv6{Version: 6, HopLimit: 64, SrcIP: s, DstIP: d, NextHeader: proto}
		ip, nl = v6, v6
	}
	switch l := ls[0].(type) {
	case *layers.UDP:
		_ = l.SetNetworkLayerForChecksum(nl)
	case *layers.TCP:
		_ = l.SetNetworkLayerForChecksum(nl)
	case *layers.ICMPv6:
		_ = l.SetNetworkLayerForChecksum(nl)
	}
	return fastpathtest.Serialize(t, append([]gopacket.SerializableLayer{
		&layers.Ethernet{SrcMAC: fastpathtest.HW(macA), DstMAC: fastpathtest.HW(macB), EthernetType: et}, ip}, ls...)...)
}

// tcpSYN is a TCP SYN from src:sport to dst:dport.
func tcpSYN(t testing.TB, src string, sport uint16, dst string, dport uint16) []byte {
	return ipFrame(t, src, dst, &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: layers.TCPPort(dport), SYN: true, Seq: 1000, Window: 65535})
}

// udpFrame is a UDP datagram from src:sport to dst:dport.
func udpFrame(t testing.TB, src string, sport uint16, dst string, dport uint16) []byte {
	return ipFrame(t, src, dst, &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}, gopacket.Payload("hello"))
}

// snatTo is the range of `snat to addr:lo-hi` (IPv4).
func snatTo(addr string, lo, hi uint16) *Range {
	a := net.ParseIP(addr).To4()
	var v [16]byte
	copy(v[:], a)
	r := &Range{Flags: MapIPs, MinAddr: v, MaxAddr: v}
	if lo != 0 {
		r.Flags |= ProtoSpecified
		r.MinProto, r.MaxProto = lo, hi
	}
	return r
}

// flowOf reads the IPv4 or IPv6 addresses and TCP/UDP ports of a
// forwarded packet as they are now.
func flowOf(p *fastpath.Packet) (src, dst net.IP, sport, dport uint16) {
	ip := p.Data[p.L3Off:p.L3End]
	if ip[0]>>4 == 4 {
		src, dst = net.IP(ip[12:16]), net.IP(ip[16:20])
	} else {
		src, dst = net.IP(ip[8:24]), net.IP(ip[24:40])
	}
	if p.L4Off != 0 && p.L3End-p.L4Off >= 4 {
		l4 := p.Data[p.L4Off:]
		sport, dport = uint16(l4[0])<<8|uint16(l4[1]), uint16(l4[2])<<8|uint16(l4[3])
	}
	return
}
