package router

import (
	"net/netip"

	"github.com/xdpfwd/xdpfwd/fastpath"
	"github.com/xdpfwd/xdpfwd/fastpath/header"
	"github.com/xdpfwd/xdpfwd/fastpath/neigh"
	"github.com/xdpfwd/xdpfwd/fastpath/route"
)

// resolve finds the next hop's MAC of every routed and router-sent IP
// packet with an output interface and rewrites its Ethernet header (just
// before the bridge's Output at HookPostrouting, as the kernel's
// neigh_output follows the postrouting hook). A packet whose neighbour is
// not resolved yet waits, stolen from the batch, while ARP or NDP runs;
// each batch (and, while packets wait, each idle turn of the worker) it
// first acts on what the neighbour cache says about them: send, answer
// with ICMP host unreachable, drop, solicit again.
type resolve worker

func (*resolve) Name() string { return "neighbour" }

func (s *resolve) Process(b *fastpath.Batch, now fastpath.Time) {
	w := (*worker)(s)
	w.answered = w.answered[:0]
	// Held packets whose neighbour resolved leave first, in order.
	kept := w.sends[:0]
	for _, ev := range w.sends {
		if !w.giveBack(b, ev) {
			kept = append(kept, ev)
		}
	}
	w.sends = kept
	for i := range b.Packets[:b.Len] {
		if p := &b.Packets[i]; p.FragMTU != 0 && p.Action == fastpath.ActionContinue {
			w.fragment4(b, p, int(p.FragMTU))
		}
	}
	n := b.Len
	for i := range b.Packets[:n] {
		p := &b.Packets[i]
		if p.Action != fastpath.ActionContinue || !(p.Routed || p.Local) || p.OutIface == 0 || p.Egress != fastpath.EgressNone ||
			(p.EtherType != header.EtherTypeIPv4 && p.EtherType != header.EtherTypeIPv6) || p.L3Off == 0 {
			continue
		}
		if l := &w.lastNeigh; l.ok && l.iface == p.OutIface && l.hop == p.RouteHop && (l.gateway || l.isDst(p)) {
			// The same neighbour as the packet before: the same gateway,
			// or the same destination on a connected route. Resolved.
			w.send(p, p.OutIface, l.mac)
			continue
		}
		ip := w.nextHop(p)
		if w.dry {
			// Whether the neighbour is known, resolving nothing.
			if e, ok := w.r.neigh.Lookup(p.OutIface, netip.AddrFrom16(ip).Unmap(), int64(now)); ok && e.State.Valid() {
				w.send(p, p.OutIface, e.MAC)
			} else {
				p.Action = fastpath.ActionStolen // would wait for it
			}
			continue
		}
		mac, act := w.nw.Resolve(p.OutIface, ip, int64(now))
		if act == neigh.Send {
			gateway := p.RouteHop != 0 && w.lastHop.ok && w.lastHop.id == p.RouteHop && w.lastHop.hop.Kind != route.Connected
			w.lastNeigh = lastNeigh{ok: true, iface: p.OutIface, hop: p.RouteHop, gateway: gateway, ip: ip, mac: mac}
		}
		switch act {
		case neigh.Send:
			w.send(p, p.OutIface, mac)
		case neigh.SendProbe:
			w.send(p, p.OutIface, mac)
			w.solicit(b, p.OutIface, ip, &mac)
		case neigh.HoldSolicit:
			w.solicit(b, p.OutIface, ip, nil)
			w.hold(b, p, ip)
		case neigh.Hold:
			w.hold(b, p, ip)
		default:
			p.Drop(DropNeighbour)
		}
	}
}

// nextHop returns the neighbour a packet goes to: its route's gateway, or
// for a connected route its destination (IPv4 in its IPv4-mapped form).
func (w *worker) nextHop(p *fastpath.Packet) [16]byte {
	if p.RouteHop != 0 {
		// Packets of a batch mostly share their next hop: the last one
		// read from the FIB serves the next packet with the same.
		l := &w.lastHop
		if !l.ok || l.id != p.RouteHop {
			*l = lastHop{ok: true, id: p.RouteHop, hop: w.view.Hop(route.Result{NextHop: p.RouteHop, Type: route.Unicast})}
		}
		switch l.hop.Kind {
		case route.Gateway4:
			return mapped4([4]byte(l.hop.Gateway[:4]))
		case route.Gateway6:
			return l.hop.Gateway
		}
	}
	if p.EtherType == header.EtherTypeIPv4 {
		return mapped4(header.IPv4(p.Data[p.L3Off:]).Dst())
	}
	return header.IPv6(p.Data[p.L3Off:]).Dst()
}

// send writes the Ethernet addresses of a packet leaving by interface id
// to mac and sends it there: out of its port, or to its bridge, whose
// Output picks the port.
func (w *worker) send(p *fastpath.Packet, id uint16, mac header.MAC) {
	f := w.iface(id)
	header.Ethernet(p.Data).SetDst(mac)
	header.Ethernet(p.Data).SetSrc(f.MAC)
	w.toIface(p, f)
}

func (w *worker) toIface(p *fastpath.Packet, f *iface) {
	if f.Bridge {
		p.ToGroup(f.Group)
	} else {
		p.ToPort(f.Port)
	}
}

// hold steals a packet from the batch until its neighbour resolves.
func (w *worker) hold(b *fastpath.Batch, p *fastpath.Packet, ip [16]byte) {
	if len(w.free) == 0 {
		p.Drop(DropHeldOverflow)
		return
	}
	slot := w.free[len(w.free)-1]
	w.free = w.free[:len(w.free)-1]
	w.slots[slot] = heldSlot{addr: p.Addr, n: uint32(len(p.Data)), meta: p.Meta}
	dropped, kept := w.nw.Hold(p.OutIface, ip, uint64(slot), uint32(len(p.Data)), w.dropped[:0])
	for _, h := range dropped {
		if ev := (neigh.Event{Kind: neigh.EventDrop, Handle: h}); !w.giveBack(b, ev) {
			w.pending = append(w.pending, ev)
		}
	}
	if !kept {
		w.free = append(w.free, slot)
		p.Drop(DropHeldOverflow)
		return
	}
	p.Action = fastpath.ActionStolen
}

// neighEvents acts, first at HookPrerouting, on what the neighbour cache
// says about the packets the worker holds: solicitations to send again,
// packets whose neighbour failed (dropped, and their senders answered
// with ICMP host unreachable, which walks the output and postrouting
// hooks as the kernel's does), and packets whose neighbour resolved
// (handed to the neighbour stage, which sends them after the postrouting
// hook, as the kernel sends its queued packets). It also announces the
// router's addresses at start. While packets wait or addresses are to be
// announced, it is a Holder: the worker runs it when idle too.
type neighEvents worker

func (*neighEvents) Name() string { return "neighbour events" }

// Holding reports whether packets wait for their neighbour, neighbours
// this worker used for their probes (neigh.Worker.Watching), or addresses
// for their announcement.
func (s *neighEvents) Holding() bool {
	return s.nw.Held() > 0 || s.nw.Watching() || len(s.pending) > 0 || len(s.sends) > 0 || len(s.announce) > 0
}

func (s *neighEvents) Process(b *fastpath.Batch, now fastpath.Time) {
	w := (*worker)(s)
	w.answered = w.answered[:0]
	w.announceAddrs(b)
	kept := w.pending[:0]
	for _, ev := range w.pending {
		if !w.handle(b, ev) {
			kept = append(kept, ev)
		}
	}
	w.pending = kept
	for {
		n := w.nw.Poll(int64(now), w.events)
		for _, ev := range w.events[:n] {
			if !w.handle(b, ev) {
				w.pending = append(w.pending, ev)
			}
		}
		if n < len(w.events) {
			return
		}
	}
}

// handle acts on one event; it reports false if the batch had no room for
// the packet it gives back.
func (w *worker) handle(b *fastpath.Batch, ev neigh.Event) bool {
	switch ev.Kind {
	case neigh.EventSend:
		w.sends = append(w.sends, ev)
		return true
	case neigh.EventSolicit:
		w.solicit(b, ev.Iface, ev.IP, nil)
		return true
	case neigh.EventProbe:
		w.solicit(b, ev.Iface, ev.IP, &ev.MAC)
		return true
	}
	return w.giveBack(b, ev)
}

// giveBack reinjects held packet ev.Handle: sent on (EventSend), or
// dropped, with ICMP host unreachable for EventUnreachable. It reports
// false if the batch had no room.
func (w *worker) giveBack(b *fastpath.Batch, ev neigh.Event) bool {
	slot := uint32(ev.Handle)
	h := &w.slots[slot]
	p := b.Reinject(h.addr, int(h.n), &h.meta)
	if p == nil {
		return false
	}
	w.free = append(w.free, slot)
	p.Action = fastpath.ActionContinue
	switch ev.Kind {
	case neigh.EventSend:
		w.send(p, p.OutIface, ev.MAC)
	case neigh.EventUnreachable:
		if p.EtherType == header.EtherTypeIPv4 {
			w.icmp4Error(b, p, header.ICMPv4DestUnreachable, header.ICMPv4HostUnreachable, 0)
		} else {
			w.icmp6Error(b, p, header.ICMPv6DestUnreachable, header.ICMPv6AddrUnreachable, 0)
		}
		p.Drop(DropNeighbour)
	default:
		p.Drop(DropNeighbour)
	}
	return true
}

// solicit sends an ARP request (IPv4) or a neighbour solicitation (IPv6)
// for ip out of interface id: to everyone, or, with mac, a unicast probe.
func (w *worker) solicit(b *fastpath.Batch, id uint16, ip [16]byte, mac *header.MAC) {
	f := w.iface(id)
	in := f.emitPort()
	a := netip.AddrFrom16(ip)
	if a.Is4In6() {
		target := a.Unmap().As4()
		src, ok := f.source4(target)
		if !ok {
			return
		}
		e := b.Emit(in, header.EthernetSize+header.ARPSize)
		if e == nil {
			return
		}
		if _, err := header.BuildARPRequest(e.Data[header.EthernetSize:], f.MAC, src, target); err != nil {
			e.Drop(DropBadIP)
			return
		}
		dst := header.BroadcastMAC
		if mac != nil {
			dst = *mac
		}
		w.frame(e, f, dst, header.EtherTypeARP)
		w.count(&w.r.c.solicits)
		return
	}
	src := f.source6()
	e := b.Emit(in, header.EthernetSize+header.IPv6Size+header.NDPNeighborSize+8)
	if e == nil {
		return
	}
	n, err := header.BuildNeighborSolicit(e.Data[header.EthernetSize:], src, f.MAC, ip, mac != nil)
	if err != nil {
		e.Drop(DropBadIP)
		return
	}
	e.Data = e.Data[:header.EthernetSize+n]
	dst := header.IPv6MulticastMAC(header.SolicitedNodeAddr(ip))
	if mac != nil {
		dst = *mac
	}
	w.frame(e, f, dst, header.EtherTypeIPv6)
	w.count(&w.r.c.solicits)
}

// frame finishes an emitted frame of interface f: its Ethernet header and
// where it goes.
func (w *worker) frame(e *fastpath.Packet, f *iface, dst header.MAC, etherType uint16) {
	eth := header.Ethernet(e.Data)
	eth.SetDst(dst)
	eth.SetSrc(f.MAC)
	eth.SetEtherType(etherType)
	e.EtherType = etherType
	w.toIface(e, f)
}

// emitPort returns the port that what the router sends of its own out of
// the interface (an ARP request, a neighbour solicitation or
// advertisement) is emitted on, and a failed Emit counted on: its port, a
// bridge's first port.
func (f *iface) emitPort() fastpath.PortID {
	if f.Bridge && len(f.Ports) > 0 {
		return f.Ports[0]
	}
	return f.Port
}

// source4 returns the interface's IPv4 address on target's subnet, else
// its first one, as the kernel's inet_select_addr picks an ARP request's
// sender address.
func (f *iface) source4(target [4]byte) ([4]byte, bool) {
	t := netip.AddrFrom4(target)
	for _, p := range f.Addrs {
		if p.Addr().Is4() && p.Masked().Contains(t) {
			return p.Addr().As4(), true
		}
	}
	if len(f.v4) > 0 {
		return f.v4[0], true
	}
	return [4]byte{}, false
}

// source6 returns the source of the interface's NDP messages: its
// link-local address, as the kernel's ndisc_solicit prefers for
// resolution.
func (f *iface) source6() [16]byte { return f.linkLocal }

// announceAddrs announces the router's addresses once, at start, so that
// neighbours that cached another MAC for them (a router xdpfwd replaces)
// learn its own: a gratuitous ARP request for each IPv4 address (RFC
// 5227's announcement, as Linux sends with arp_notify) and an unsolicited
// neighbour advertisement for each IPv6 one (RFC 4861 7.2.6, as Linux's
// ndisc_notify). What the batch has no room for waits for the next run.
func (w *worker) announceAddrs(b *fastpath.Batch) {
	for len(w.announce) > 0 {
		a := w.announce[0]
		f := w.iface(a.iface)
		in := f.emitPort()
		if a.v4 {
			e := b.Emit(in, header.EthernetSize+header.ARPSize)
			if e == nil {
				return
			}
			ip := [4]byte(a.addr[12:16])
			if _, err := header.BuildARPRequest(e.Data[header.EthernetSize:], f.MAC, ip, ip); err != nil {
				e.Drop(DropBadIP)
			} else {
				w.frame(e, f, header.BroadcastMAC, header.EtherTypeARP)
			}
		} else {
			e := b.Emit(in, header.EthernetSize+header.IPv6Size+header.NDPNeighborSize+8)
			if e == nil {
				return
			}
			n, err := header.BuildUnsolicitedNeighborAdvert(e.Data[header.EthernetSize:], a.addr, f.MAC, true)
			if err != nil {
				e.Drop(DropBadIP)
			} else {
				e.Data = e.Data[:header.EthernetSize+n]
				w.frame(e, f, header.IPv6MulticastMAC(header.IPv6AllNodes), header.EtherTypeIPv6)
			}
		}
		w.count(&w.r.c.announced)
		w.announce = w.announce[1:]
	}
}
