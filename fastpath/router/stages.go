package router

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"sync/atomic"
	"time"

	"github.com/xdpfwd/xdpfwd/fastpath"
	"github.com/xdpfwd/xdpfwd/fastpath/header"
	"github.com/xdpfwd/xdpfwd/fastpath/neigh"
	"github.com/xdpfwd/xdpfwd/fastpath/route"
)

// The router's drop reasons.
var (
	// DropNotForRouter: a frame on a port interface to another unicast
	// MAC (the kernel's PACKET_OTHERHOST).
	DropNotForRouter = fastpath.NewReason("router", "not for the router's MAC")
	// DropTagged: an 802.1Q/802.1ad tagged frame to a router interface
	// (the router has no VLAN interfaces).
	DropTagged = fastpath.NewReason("router", "tagged frame to router")
	// DropBadIP: a frame to the router that is not valid IPv4, IPv6 or
	// ARP for IPv4 over Ethernet.
	DropBadIP = fastpath.NewReason("router", "bad IP header")
	// DropNotRouted: a packet the router does not route: an unknown
	// EtherType, a multicast destination, a link-local one not its own.
	DropNotRouted = fastpath.NewReason("router", "not routable")
	// DropNoRoute: no route to the destination (ICMP network
	// unreachable, ICMPv6 no route).
	DropNoRoute = fastpath.NewReason("router", "no route")
	// DropTTL: TTL or hop limit exhausted (ICMP time exceeded).
	DropTTL = fastpath.NewReason("router", "TTL exceeded")
	// DropUnreachable, DropProhibit, DropBlackhole: the route's type.
	DropUnreachable = fastpath.NewReason("router", "unreachable route")
	DropProhibit    = fastpath.NewReason("router", "prohibited route")
	DropBlackhole   = fastpath.NewReason("router", "blackhole route")
	// DropTooBig: longer than the output interface's MTU with DF (ICMP
	// fragmentation needed) or in IPv6 (ICMPv6 packet too big); without
	// DF, a packet with IP options or whose fragments find no room in the
	// batch (it is fragmented otherwise).
	DropTooBig = fastpath.NewReason("router", "longer than the output MTU")
	// DropNeighbour: the next hop's MAC could not be had: its
	// resolution failed (ICMP host unreachable), the neighbour table is
	// full, or the packet's entry went away.
	DropNeighbour = fastpath.NewReason("router", "neighbour unresolved")
	// DropHeldOverflow: a packet waiting for its neighbour pushed out
	// by newer ones (unres_qlen_bytes), or no room to hold it.
	DropHeldOverflow = fastpath.NewReason("router", "neighbour queue full")
	// DropBadChecksum: an IPv4 header whose checksum does not verify
	// (ip_rcv_core drops it).
	DropBadChecksum = fastpath.NewReason("router", "bad IP header checksum")
	// DropMartian: a source or destination no router accepts: a loopback,
	// zero-network, multicast or broadcast source, one of the router's
	// own addresses as source, a loopback or zero-network destination
	// (ip_route_input_slow's martians), an IPv6 loopback, multicast or
	// unspecified source.
	DropMartian = fastpath.NewReason("router", "martian address")
	// DropOtherHost: a frame to a broadcast or multicast MAC whose packet
	// would be forwarded (ip_forward takes only frames to its own MAC).
	DropOtherHost = fastpath.NewReason("router", "forward of a link-layer broadcast")
)

// heldSlot is a packet a worker holds for its neighbour: its frame and
// the metadata to walk on with.
type heldSlot struct {
	addr uint64
	n    uint32
	meta fastpath.Meta
}

// worker is one worker's router state, shared by its stages (which run in
// turn on the worker's thread).
type worker struct {
	r    *Router
	view route.View    // taken once per batch, by the first stage
	now  fastpath.Time // the batch's time
	nw   *neigh.Worker
	// dry is the batch's DryRun (a Simulator's): no neighbour learned or
	// resolved, no ICMP rate limit charged.
	dry     bool
	slots   []heldSlot
	free    []uint32 // free slots
	events  []neigh.Event
	pending []neigh.Event // events a full batch could not take
	sends   []neigh.Event // held packets to send: for the neighbour stage
	dropped []uint64
	ipID    uint16
	// notUnicast4 is r.notUnicast4, bound once: echoing IPv4 timestamp
	// options calls it without allocating.
	notUnicast4 func([4]byte) bool
	// announce are the addresses still to announce (the first worker's).
	announce []announcement

	// answered lists the packets the running stage answered with an
	// ICMP error, for the trace's notes (Explain): reset as each stage
	// that sends errors starts; at most its capacity are kept.
	answered []answer

	// Per batch (reset by the first stage): the last IPv4 routing
	// decision, and the last neighbour resolved.
	last4     last4
	lastNeigh lastNeigh
	lastHop   lastHop
}

// lastHop is the last next hop of a batch read from the FIB.
type lastHop struct {
	ok  bool
	id  uint32 // RouteHop
	hop route.Hop
}

// last4 is the last IPv4 lookup of a batch.
type last4 struct {
	ok, hopOK bool
	dst, src  [4]byte
	res       route.Result
	hop       route.Hop
}

// lastNeigh is the last neighbour a batch's packets were sent to: a
// gateway (the packets of one RouteHop), or a destination on a connected
// route.
type lastNeigh struct {
	ok, gateway bool
	iface       uint16
	hop         uint32 // RouteHop
	ip          [16]byte
	mac         header.MAC
}

// isDst reports whether p's destination is the neighbour's address.
func (l *lastNeigh) isDst(p *fastpath.Packet) bool {
	d := p.Data[p.L3Off:]
	if p.EtherType == header.EtherTypeIPv4 {
		return [4]byte(d[16:20]) == [4]byte(l.ip[12:16]) && l.ip[10] == 0xff
	}
	return [16]byte(d[24:40]) == l.ip
}

// iface returns interface id (index + 1).
func (w *worker) iface(id uint16) *iface { return w.r.iface(id) }

// iface returns router interface id (index + 1).
func (r *Router) iface(id uint16) *iface { return &r.ifaces[id-1] }

// inIface returns the router interface of port p, 0 for none.
func (w *worker) inIface(p fastpath.PortID) uint16 {
	if int(p) < len(w.r.byPort) {
		return w.r.byPort[p]
	}
	return 0
}

// ingress hands a port interface's frames to the router: those to the
// interface's MAC, broadcast or multicast; others (to another host) are
// dropped. Frames of a bridge's ports are the bridge's to hand over.
type ingress worker

func (*ingress) Name() string { return "router ingress" }

func (s *ingress) Process(b *fastpath.Batch, now fastpath.Time) {
	w := (*worker)(s)
	w.view, w.now, w.dry = w.r.table.FIB().View(), now, b.DryRun
	w.last4.ok, w.last4.hopOK, w.lastNeigh.ok, w.lastHop.ok = false, false, false, false
	for i := range b.Packets[:b.Len] {
		p := &b.Packets[i]
		if p.Action != fastpath.ActionContinue || p.Routed || p.Local {
			continue
		}
		id := w.inIface(p.InPort)
		if id == 0 || w.iface(id).Bridge {
			continue
		}
		d := p.Data
		if d[0]&1 == 0 && header.MAC(d[0:6]) != w.iface(id).MAC {
			p.Drop(DropNotForRouter)
			continue
		}
		p.Routed, p.InIface = true, id
	}
}

// decide is the routing decision, last at HookPrerouting: ARP is answered
// and learned from; an IP packet for one of the router's addresses goes to
// the input hook (RouteLocal); one to forward is checked (TTL, MTU), its
// TTL decremented and its next hop recorded; one without a usable route
// gets the kernel's ICMP error.
type decide worker

func (*decide) Name() string { return "route" }

func (s *decide) Process(b *fastpath.Batch, now fastpath.Time) {
	w := (*worker)(s)
	w.answered = w.answered[:0]
	n := b.Len
	for i := range b.Packets[:n] {
		p := &b.Packets[i]
		if p.Action != fastpath.ActionContinue || !p.Routed || p.RouteLocal || p.OutIface != 0 {
			continue
		}
		if p.InIface == 0 {
			if p.InIface = w.inIface(p.InPort); p.InIface == 0 {
				p.Drop(DropNotForRouter)
				continue
			}
		}
		if p.OuterTPID != 0 {
			p.Drop(DropTagged)
			continue
		}
		switch p.EtherType {
		case header.EtherTypeARP:
			w.arp(b, p, now)
		case header.EtherTypeIPv4:
			w.route4(b, p)
		case header.EtherTypeIPv6:
			w.route6(b, p)
		default:
			p.Drop(DropNotRouted)
		}
	}
}

// hash4 and hash6 are the ECMP flow hash of fib_multipath_hash_policy 0
// (addresses only): the same flow takes the same path on every worker.
func hash4(ip header.IPv4) uint32 {
	return mix(binary.BigEndian.Uint32(ip[12:16]), binary.BigEndian.Uint32(ip[16:20]))
}

func hash6(ip header.IPv6) uint32 {
	var h uint32
	for o := 8; o < 40; o += 4 {
		h = mix(h, binary.BigEndian.Uint32(ip[o:]))
	}
	return h
}

func mix(a, b uint32) uint32 {
	h := uint64(a)<<32 | uint64(b)
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	return uint32(h)
}

func (w *worker) route4(b *fastpath.Batch, p *fastpath.Packet) {
	if p.L3Off == 0 {
		p.Drop(DropBadIP)
		return
	}
	ip := header.IPv4(p.Data[p.L3Off:p.L3End])
	if header.Checksum(ip[:ip.HeaderLength()], 0) != 0xffff {
		p.Drop(DropBadChecksum)
		return
	}
	dst, src4 := ip.Dst(), ip.Src()
	if martian4(src4) || w.r.local4(src4) || dst[0] == 127 || dst[0] == 0 {
		p.Drop(DropMartian)
		return
	}
	if dst[0]&0xf0 == 0xe0 || dst == [4]byte{255, 255, 255, 255} || w.r.broadcast4(dst) {
		p.RouteLocal = true // multicast, broadcast: to the router itself
		return
	}
	// Packets of a batch mostly share a flow: the last lookup's answer
	// serves the next packet to the same destination (and source: ECMP
	// hashes both).
	src := ip.Src()
	var res route.Result
	if w.last4.ok && w.last4.dst == dst && w.last4.src == src {
		res = w.last4.res
	} else {
		res = w.view.Lookup4(dst, hash4(ip))
		w.last4 = last4{ok: true, dst: dst, src: src, res: res}
	}
	switch res.Type {
	case route.Local:
		p.RouteLocal = true
		w.count(&w.r.c.local)
		return
	case route.Unicast:
		if p.Data[0]&1 != 0 {
			p.Drop(DropOtherHost)
			return
		}
	case route.NoRoute:
		w.icmp4Error(b, p, header.ICMPv4DestUnreachable, header.ICMPv4NetUnreachable, 0)
		p.Drop(DropNoRoute)
		return
	default:
		w.dropByType4(b, p, res.Type)
		return
	}
	if ip.TTL() <= 1 {
		w.icmp4Error(b, p, header.ICMPv4TimeExceeded, header.ICMPv4TTLExceeded, 0)
		p.Drop(DropTTL)
		return
	}
	if !w.last4.hopOK {
		w.last4.hop, w.last4.hopOK = w.view.Hop(res), true
	}
	hop := w.last4.hop
	out := w.iface(hop.Port)
	tooBig := int(ip.TotalLength()) > out.MTU
	if tooBig && ip[6]&0x40 != 0 { // DF
		w.icmp4Error(b, p, header.ICMPv4DestUnreachable, header.ICMPv4FragmentationNeeded, uint32(out.MTU))
		p.Drop(DropTooBig)
		return
	}
	ip.DecTTL()
	p.OutIface, p.RouteHop = hop.Port, res.NextHop
	w.count(&w.r.c.forwarded)
	if hop.Port == p.InIface && !p.DstNATed {
		w.redirect4(b, p, ip, hop)
	}
	if tooBig {
		// Cut after the postrouting hook, as ip_finish_output does.
		p.FragMTU = uint16(out.MTU)
	}
}

// fragment4 cuts IPv4 packet p, longer than mtu and without DF, into
// fragments as the kernel's ip_fragment does (after the postrouting hook,
// from the neighbour stage): each but the last carries
// (mtu - header) rounded down to 8 bytes of the payload; every one gets
// the header (options that are not to be copied left out of all but the
// first: the kernel's ip_options_fragment), its offset, MF and checksum;
// a checksum the sender left to its device is finished first
// (skb_checksum_help). The packet itself becomes the first fragment; the
// others are emitted after it, in order, and walk on with its route. With
// no room to emit one, the packet is dropped (DropTooBig): a datagram
// missing a fragment is lost anyway.
func (w *worker) fragment4(b *fastpath.Batch, p *fastpath.Packet, mtu int) {
	l3 := int(p.L3Off)
	ip := header.IPv4(p.Data[l3:p.L3End])
	hl := ip.HeaderLength()
	if p.L4Off != 0 && !p.Fragment {
		seg := p.Data[p.L4Off:p.L3End]
		header.FinishChecksum(p.L4Proto, ip.PseudoHeaderChecksum(p.L4Proto, uint16(len(seg))), seg)
	}
	if hl != header.IPv4MinSize {
		// Options: the kernel copies to later fragments only those with
		// the copy bit; xdpfwd does not edit them out yet.
		p.Drop(DropTooBig)
		return
	}
	step := (mtu - hl) &^ 7
	payload := ip[hl:]
	baseOff := ip.FragmentOffset() // a fragment fragmented again
	moreAfter := ip.MoreFragments()
	need := (len(payload) + step - 1) / step
	if b.Len+need-1 > len(b.Packets) {
		p.Drop(DropTooBig)
		return
	}
	hdr := [header.IPv4MinSize]byte(ip[:header.IPv4MinSize])
	for off := step; off < len(payload); off += step {
		n := min(step, len(payload)-off)
		e := b.Emit(p.InPort, l3+hl+n)
		if e == nil {
			p.Drop(DropTooBig)
			return
		}
		copy(e.Data[:l3], p.Data[:l3])
		copy(e.Data[l3:], hdr[:])
		copy(e.Data[l3+hl:], payload[off:off+n])
		e.CopyMeta(p)
		e.L3End, e.L4Off, e.Fragment, e.FragMTU = uint16(l3+hl+n), 0, true, 0
		setFragment(header.IPv4(e.Data[l3:]), hl+n, baseOff+off, moreAfter || off+n < len(payload))
	}
	setFragment(ip, hl+step, baseOff, true)
	p.Data = p.Data[:l3+hl+step]
	p.L3End, p.Fragment, p.FragMTU = uint16(l3+hl+step), true, 0
	w.count(&w.r.c.fragmented)
}

// setFragment writes a fragment's total length, offset (bytes) and MF
// flag into its header, keeping DF clear, and its checksum.
func setFragment(ip header.IPv4, total, off int, more bool) {
	binary.BigEndian.PutUint16(ip[2:4], uint16(total))
	fo := uint16(off / 8)
	if more {
		fo |= 0x2000
	}
	binary.BigEndian.PutUint16(ip[6:8], fo)
	ip.SetChecksum(0)
	ip.SetChecksum(ip.CalculateChecksum())
}

// dropByType4 drops a packet whose route is unreachable, prohibit or
// blackhole, with the ICMP error the kernel's fib_validate_source... the
// kernel's ip_error sends for the type.
func (w *worker) dropByType4(b *fastpath.Batch, p *fastpath.Packet, t route.Type) {
	switch t {
	case route.Unreachable:
		w.icmp4Error(b, p, header.ICMPv4DestUnreachable, header.ICMPv4HostUnreachable, 0)
		p.Drop(DropUnreachable)
	case route.Prohibit:
		w.icmp4Error(b, p, header.ICMPv4DestUnreachable, header.ICMPv4AdminProhibited, 0)
		p.Drop(DropProhibit)
	default:
		p.Drop(DropBlackhole)
	}
}

func (w *worker) route6(b *fastpath.Batch, p *fastpath.Packet) {
	if p.L3Off == 0 {
		p.Drop(DropBadIP)
		return
	}
	ip := header.IPv6(p.Data[p.L3Off:p.L3End])
	dst, src := ip.Dst(), ip.Src()
	if src[0] == 0xff || src == ([16]byte{15: 1}) || src == ([16]byte{}) && !ndp6(p) {
		p.Drop(DropMartian) // multicast, loopback, or unspecified outside DAD
		return
	}
	switch {
	case dst[0] == 0xff: // multicast: NDP to the solicited-node address, all-nodes, ...
		p.RouteLocal = true
		return
	case dst[0] == 0xfe && dst[1]&0xc0 == 0x80: // link-local: ours, or not routed
		if dst == w.iface(p.InIface).linkLocal {
			p.RouteLocal = true
			return
		}
		p.Drop(DropNotRouted)
		return
	}
	res := w.view.Lookup6(dst, hash6(ip))
	switch res.Type {
	case route.Local:
		p.RouteLocal = true
		w.count(&w.r.c.local)
		return
	case route.Unicast:
		switch {
		case p.Data[0]&1 != 0:
			p.Drop(DropOtherHost)
			return
		case src[0] == 0xfe && src[1]&0xc0 == 0x80:
			// A link-local source leaves its link: ip6_forward's
			// "beyond scope of source address".
			w.icmp6Error(b, p, header.ICMPv6DestUnreachable, header.ICMPv6BeyondScope, 0)
			p.Drop(DropMartian)
			return
		}
	case route.NoRoute, route.Unreachable:
		w.icmp6Error(b, p, header.ICMPv6DestUnreachable, header.ICMPv6NoRoute, 0)
		p.Drop(DropNoRoute)
		return
	case route.Prohibit:
		w.icmp6Error(b, p, header.ICMPv6DestUnreachable, header.ICMPv6AdminProhibited, 0)
		p.Drop(DropProhibit)
		return
	default:
		p.Drop(DropBlackhole)
		return
	}
	if ip.HopLimit() <= 1 {
		w.icmp6Error(b, p, header.ICMPv6TimeExceeded, header.ICMPv6HopLimitExceeded, 0)
		p.Drop(DropTTL)
		return
	}
	hop := w.view.Hop(res)
	out := w.iface(hop.Port)
	if len(ip) > out.MTU {
		w.icmp6Error(b, p, header.ICMPv6PacketTooBig, 0, uint32(out.MTU))
		p.Drop(DropTooBig)
		return
	}
	ip.DecHopLimit()
	p.OutIface, p.RouteHop = hop.Port, res.NextHop
	w.count(&w.r.c.forwarded)
}

// arp learns from an ARP packet to the router (neigh.Table.Confirm, by the
// kernel's arp_process rules) and answers a request for one of the
// interface's addresses.
func (w *worker) arp(b *fastpath.Batch, p *fastpath.Packet, now fastpath.Time) {
	if len(p.Data) < header.EthernetSize+header.ARPSize {
		p.Drop(DropBadIP)
		return
	}
	a := header.ARP(p.Data[header.EthernetSize:])
	if !a.IsValid() {
		p.Drop(DropBadIP)
		return
	}
	f := w.iface(p.InIface)
	sip, tip := a.SenderIP(), a.TargetIP()
	tipLocal := w.r.local4(tip) // arp_ignore 0: any of the router's addresses
	toUs := header.MAC(p.Data[0:6]) == f.MAC
	sipUnicast := sip[0]&0xf0 != 0xe0 && sip != [4]byte{255, 255, 255, 255} && !w.r.local4(sip)
	if how, ok := neigh.ClassifyARP(a.Op(), sip, tip, a.SenderMAC(), a.TargetMAC(), toUs, tipLocal, sipUnicast); ok {
		if !w.dry {
			w.r.neigh.Confirm(p.InIface, mapped4(sip), a.SenderMAC(), how, int64(now))
		}
	}
	p.Action = fastpath.ActionConsumed
	if a.Op() != header.ARPRequest || !tipLocal {
		return
	}
	e := b.Emit(p.InPort, header.EthernetSize+header.ARPSize)
	if e == nil {
		return
	}
	if _, err := header.BuildARPReply(e.Data[header.EthernetSize:], a, f.MAC); err != nil {
		e.Drop(DropBadIP)
		return
	}
	eth := header.Ethernet(e.Data)
	eth.SetDst(a.SenderMAC())
	eth.SetSrc(f.MAC)
	eth.SetEtherType(header.EtherTypeARP)
	e.EtherType = header.EtherTypeARP
	e.ToPort(p.InPort)
	w.count(&w.r.c.arpReplies)
}

// has4 reports whether a is one of the interface's IPv4 addresses.
func (f *iface) has4(a [4]byte) bool {
	return slices.Contains(f.v4, a)
}

// has6 reports whether a is one of the interface's IPv6 addresses, its
// link-local one included.
func (f *iface) has6(a [16]byte) bool {
	if a == f.linkLocal {
		return true
	}
	for _, x := range f.v6 {
		if x == a {
			return true
		}
	}
	return false
}

// local6 reports whether a is an IPv6 address of the router's.
func (r *Router) local6(a [16]byte) bool {
	for i := range r.ifaces {
		if r.ifaces[i].has6(a) {
			return true
		}
	}
	return false
}

// local4 reports whether a is an address of the router's.
func (r *Router) local4(a [4]byte) bool {
	v := binary.BigEndian.Uint32(a[:])
	for _, x := range r.addrs4 {
		if x == v {
			return true
		}
	}
	return false
}

// mapped4 returns a in its IPv4-mapped IPv6 form, as the neighbour cache
// keys IPv4 addresses.
func mapped4(a [4]byte) [16]byte {
	return [16]byte{10: 0xff, 11: 0xff, 12: a[0], 13: a[1], 14: a[2], 15: a[3]}
}

// input answers what the routing decision found for the router itself,
// last at HookInput: ICMP echo requests (the reply, made in place, walks
// on as the router's own packet), NDP (solicitations for its addresses
// answered, advertisements learned from), UDP (ICMP port unreachable) and
// TCP (a reset) to ports where nothing listens; the rest is consumed, as
// by a host that listens on nothing.
type input worker

func (*input) Name() string { return "router input" }

func (s *input) Process(b *fastpath.Batch, now fastpath.Time) {
	w := (*worker)(s)
	w.answered = w.answered[:0]
	n := b.Len
	for i := range b.Packets[:n] {
		p := &b.Packets[i]
		if p.Action != fastpath.ActionContinue || !p.RouteLocal {
			continue
		}
		switch p.EtherType {
		case header.EtherTypeIPv4:
			w.input4(b, p)
		case header.EtherTypeIPv6:
			w.input6(b, p, now)
		default:
			p.Action = fastpath.ActionConsumed
		}
	}
}

func (w *worker) input4(b *fastpath.Batch, p *fastpath.Packet) {
	ip := header.IPv4(p.Data[p.L3Off:p.L3End])
	bcast := ip.Dst()[0]&0xf0 == 0xe0 || ip.Dst() == [4]byte{255, 255, 255, 255} || w.r.broadcast4(ip.Dst()) || p.Data[0]&1 != 0
	if ip.HeaderLength() > header.IPv4MinSize && !w.options4(b, p, ip) {
		p.Action = fastpath.ActionConsumed
		return
	}
	switch {
	case p.L4Proto == header.ProtocolICMP && p.L4Off != 0 && p.Data[p.L4Off] == header.ICMPv4Echo && !bcast:
		w.ipID++
		if ip.HeaderLength() > header.IPv4MinSize {
			if w.echo4Options(p, ip) {
				return
			}
		} else if header.ICMPv4EchoReplyInPlace(ip, 0, w.ipID) == nil {
			w.becomeLocal(p)
			w.count(&w.r.c.echoReplies)
			return
		}
	case p.L4Proto == header.ProtocolUDP && !bcast:
		w.icmp4Error(b, p, header.ICMPv4DestUnreachable, header.ICMPv4PortUnreachable, 0)
	case p.L4Proto == header.ProtocolTCP && p.L4Off != 0 && !bcast:
		w.tcpReset(b, p)
	}
	p.Action = fastpath.ActionConsumed
}

// options4 checks the IP options of p (header ip) as the kernel does on
// receipt (ip_rcv_options): it reports whether p may be delivered; if
// not, it has sent the parameter problem the kernel sends for a bad
// option (a source route is dropped silently).
func (w *worker) options4(b *fastpath.Batch, p *fastpath.Packet, ip header.IPv4) bool {
	err := header.CheckIPv4Options(ip)
	if err == nil {
		return true
	}
	if problem, ok := err.(header.IPv4OptionProblem); ok {
		w.icmp4Error(b, p, header.ICMPv4ParameterProblem, 0, uint32(problem.Pointer())<<24)
	}
	return false
}

// echo4Options answers an echo request with IP options in place, with
// the options the kernel echoes (icmp_reply, ip_options_echo), and
// reports whether it did.
func (w *worker) echo4Options(p *fastpath.Packet, ip header.IPv4) bool {
	n, err := header.ICMPv4EchoReplyOptions(ip, 0, w.ipID, timeOfDay(w.r.wallClock()), w.notUnicast4)
	if err != nil {
		return false
	}
	end := int(p.L3Off) + n
	p.Data = p.Data[:end]
	p.L3End, p.L4Off = uint16(end), p.L3Off+uint16(header.IPv4(p.Data[p.L3Off:]).HeaderLength())
	w.becomeLocal(p)
	w.count(&w.r.c.echoReplies)
	return true
}

// timeOfDay returns t as an IPv4 timestamp: milliseconds since midnight
// UT (RFC 791; the kernel's inet_current_timestamp).
func timeOfDay(t time.Time) uint32 {
	const day = 86400
	s := t.Unix() % day
	if s < 0 {
		s += day
	}
	return uint32(s)*1000 + uint32(t.Nanosecond()/1e6)
}

// notUnicast4 reports whether a is not another host's unicast address,
// as the kernel's inet_addr_type says for prespecified IPv4 timestamps:
// one of the router's (or a loopback one), a broadcast, multicast or
// zero-network one.
func (r *Router) notUnicast4(a [4]byte) bool {
	return a[0] == 0 || a[0] == 127 || a[0]&0xf0 == 0xe0 || a == [4]byte{255, 255, 255, 255} || r.local4(a) || r.broadcast4(a)
}

func (w *worker) input6(b *fastpath.Batch, p *fastpath.Packet, now fastpath.Time) {
	ip := header.IPv6(p.Data[p.L3Off:p.L3End])
	mcast := ip.Dst()[0] == 0xff
	if header.IsIPv6ExtHeader(ip.NextHeader()) || ip.NextHeader() == header.IPv6NoNext {
		// The kernel walks the extension headers before the upper
		// layer sees the packet.
		switch d := header.IPv6LocalDelivery(ip); d.Verdict {
		case header.IPv6Drop:
			p.Action = fastpath.ActionConsumed
			return
		case header.IPv6ParamProblem:
			w.icmp6Error(b, p, header.ICMPv6ParameterProblem, d.Code, d.Pointer)
			p.Action = fastpath.ActionConsumed
			return
		case header.IPv6Deliver:
			if d.Proto == header.ProtocolICMPv6 && !mcast && w.echo6After(p, ip, d.Off) {
				return
			}
		}
	}
	if p.L4Proto == header.ProtocolICMPv6 && p.L4Off != 0 {
		msg := p.Data[p.L4Off:p.L3End]
		switch msg[0] {
		case header.ICMPv6EchoRequest:
			if !mcast && header.ICMPv6EchoReplyInPlace(ip, 0, 0) == nil {
				w.becomeLocal(p)
				w.count(&w.r.c.echoReplies)
				return
			}
		case header.ICMPv6NeighborSolicit:
			w.solicited(b, p, ip, msg, now)
		case header.ICMPv6NeighborAdvert:
			w.advertised(p, ip, msg, now)
		}
		p.Action = fastpath.ActionConsumed
		return
	}
	switch {
	case p.L4Proto == header.ProtocolUDP && !mcast:
		w.icmp6Error(b, p, header.ICMPv6DestUnreachable, header.ICMPv6PortUnreachable, 0)
	case p.L4Proto == header.ProtocolTCP && p.L4Off != 0 && !mcast:
		w.tcpReset(b, p)
	}
	p.Action = fastpath.ActionConsumed
}

// echo6After answers an echo request after extension headers (its
// ICMPv6 message at off in ip) in place, without them, as the kernel's
// icmpv6_echo_reply does, and reports whether it did.
func (w *worker) echo6After(p *fastpath.Packet, ip header.IPv6, off int) bool {
	if off+1 > len(ip) || ip[off] != header.ICMPv6EchoRequest {
		return false
	}
	n, err := header.ICMPv6EchoReplyAfterExt(ip, off, 0, 0)
	if err != nil {
		return false
	}
	end := int(p.L3Off) + n
	p.Data = p.Data[:end]
	p.L3End, p.L4Off, p.L4Proto = uint16(end), p.L3Off+header.IPv6Size, header.ProtocolICMPv6
	w.becomeLocal(p)
	w.count(&w.r.c.echoReplies)
	return true
}

// becomeLocal makes a packet the router answered in place its own: it
// walks on through the output hook, which routes it.
func (w *worker) becomeLocal(p *fastpath.Packet) {
	p.Routed, p.RouteLocal, p.Local = false, false, true
	p.OutIface, p.RouteHop, p.Egress = 0, 0, fastpath.EgressNone
	// A new packet of the router's, as the kernel's reply is a new skb:
	// tracked afresh at the output hook.
	p.CtState, p.CtRef, p.DstNATed = 0, 0, false
}

// solicited answers a neighbour solicitation for one of the interface's
// addresses with an advertisement (ndisc_recv_ns) and learns the
// solicitor's address.
func (w *worker) solicited(b *fastpath.Batch, p *fastpath.Packet, ip header.IPv6, msg []byte, now fastpath.Time) {
	if header.ValidateNDP(ip, msg) != nil {
		return
	}
	ns := header.NDPNeighborSolicit(msg)
	f := w.iface(p.InIface)
	if !f.has6(ns.Target()) {
		return
	}
	mac, hasLL, err := ns.Options().LinkLayerAddr(header.NDPOptSourceLinkLayer)
	if err != nil {
		return
	}
	src := ip.Src()
	if hasLL && src != ([16]byte{}) {
		if !w.dry {
			w.r.neigh.Confirm(p.InIface, src, mac, neigh.NS, int64(now))
		}
	}
	dstMAC := header.MAC(p.Data[6:12])
	if hasLL {
		dstMAC = mac
	}
	if src == ([16]byte{}) {
		dstMAC = header.IPv6MulticastMAC(header.IPv6AllNodes)
	}
	e := b.Emit(p.InPort, header.EthernetSize+header.IPv6Size+header.NDPNeighborSize+8)
	if e == nil {
		return
	}
	n, err := header.BuildNeighborAdvert(e.Data[header.EthernetSize:], ip, ns, f.MAC, true)
	if err != nil {
		e.Drop(DropBadIP)
		return
	}
	e.Data = e.Data[:header.EthernetSize+n]
	eth := header.Ethernet(e.Data)
	eth.SetDst(dstMAC)
	eth.SetSrc(f.MAC)
	eth.SetEtherType(header.EtherTypeIPv6)
	e.EtherType = header.EtherTypeIPv6
	e.ToPort(p.InPort)
	w.count(&w.r.c.naSent)
}

// advertised learns from a neighbour advertisement (RFC 4861 7.2.5).
func (w *worker) advertised(p *fastpath.Packet, ip header.IPv6, msg []byte, now fastpath.Time) {
	if header.ValidateNDP(ip, msg) != nil {
		return
	}
	na := header.NDPNeighborAdvert(msg)
	how := neigh.NA
	if na.Solicited() {
		how |= neigh.Solicited
	}
	if na.Override() {
		how |= neigh.Override
	}
	if na.Router() {
		how |= neigh.IsRouter
	}
	mac, ok, err := na.Options().LinkLayerAddr(header.NDPOptTargetLinkLayer)
	if err != nil {
		return
	}
	if !ok {
		how |= neigh.NoLinkAddr
	}
	if !w.dry {
		w.r.neigh.Confirm(p.InIface, na.Target(), mac, how, int64(now))
	}
}

// output routes what the router sends itself (Local IP packets without an
// output interface: echo replies, ICMP errors), first at HookOutput.
type output worker

func (*output) Name() string { return "router output" }

func (s *output) Process(b *fastpath.Batch, _ fastpath.Time) {
	w := (*worker)(s)
	for i := range b.Packets[:b.Len] {
		p := &b.Packets[i]
		if p.Action != fastpath.ActionContinue || !p.Local || p.OutIface != 0 || p.Egress != fastpath.EgressNone || p.L3Off == 0 {
			continue
		}
		w.routeOut(p)
	}
}

// routeOut routes a packet the router sends: its output interface and
// next hop, or a drop if it has no unicast route.
func (w *worker) routeOut(p *fastpath.Packet) {
	var res route.Result
	switch p.EtherType {
	case header.EtherTypeIPv4:
		ip := header.IPv4(p.Data[p.L3Off:p.L3End])
		res = w.view.Lookup4(ip.Dst(), hash4(ip))
	case header.EtherTypeIPv6:
		ip := header.IPv6(p.Data[p.L3Off:p.L3End])
		if dst := ip.Dst(); dst[0] == 0xfe && dst[1]&0xc0 == 0x80 && p.InIface != 0 {
			// Link-local: back out of the interface it came from
			// (the kernel's fe80::/64 route per interface).
			p.OutIface, p.RouteHop = p.InIface, 0
			return
		}
		res = w.view.Lookup6(ip.Dst(), hash6(ip))
	default:
		return
	}
	if res.Type != route.Unicast {
		p.Drop(DropNoRoute)
		return
	}
	p.OutIface, p.RouteHop = w.view.Hop(res).Port, res.NextHop
}

// redirect4 tells the sender of a packet the router forwards back out of
// the interface it came in on about the better first hop, as the kernel's
// ip_forward does (send_redirects, on by default): an ICMP host redirect
// to the next hop, when the sender and that next hop are both on one of
// the interface's subnets; sent after the TTL decrement, with the
// kernel's per-sender backoff (ip_rt_send_redirect). The packet is
// forwarded all the same.
func (w *worker) redirect4(b *fastpath.Batch, p *fastpath.Packet, ip header.IPv4, hop route.Hop) {
	f := w.iface(p.InIface)
	src := ip.Src()
	gw := ip.Dst()
	if hop.Kind == route.Gateway4 {
		gw = [4]byte(hop.Gateway[:4])
	} else if hop.Kind != route.Connected {
		return
	}
	if !f.onlink4(src) || !f.onlink4(gw) || !w.dry && !w.r.redirects.allow(src, w.now) {
		return
	}
	w.icmp4Error(b, p, header.ICMPv4Redirect, 1, binary.BigEndian.Uint32(gw[:]))
}

// onlink4 reports whether a is on one of the interface's IPv4 subnets.
func (f *iface) onlink4(a [4]byte) bool {
	addr := netip.AddrFrom4(a)
	for _, p := range f.Addrs {
		if p.Addr().Is4() && p.Masked().Contains(addr) {
			return true
		}
	}
	return false
}

// martian4 reports whether a is a source no router accepts: loopback,
// zero network, multicast, class E and the limited broadcast
// (ip_route_input_slow).
func martian4(a [4]byte) bool {
	return a[0] == 127 || a[0] == 0 || a[0] >= 224
}

// broadcast4 reports whether a is the broadcast address of one of the
// router's IPv4 subnets (the kernel's "broadcast" routes of table local):
// for the router itself, never forwarded.
func (r *Router) broadcast4(a [4]byte) bool {
	v := binary.BigEndian.Uint32(a[:])
	for _, n := range r.nets4 {
		if v&^n.host == n.net && v&n.host == n.host {
			return true
		}
	}
	return false
}

// ndp6 reports whether p is an ICMPv6 neighbour discovery message (the
// one kind a source of :: may send: duplicate address detection).
func ndp6(p *fastpath.Packet) bool {
	return p.L4Proto == header.ProtocolICMPv6 && p.L4Off != 0 && p.Data[p.L4Off] >= header.ICMPv6RouterSolicit && p.Data[p.L4Off] <= header.ICMPv6Redirect
}

// count adds one to router counter c, unless the batch is a dry run: a
// Simulator's packets change no counter.
func (w *worker) count(c *atomic.Uint64) {
	if !w.dry {
		c.Add(1)
	}
}
