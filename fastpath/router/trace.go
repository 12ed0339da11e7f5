package router

import (
	"net/netip"

	"github.com/xdpfwd/xdpfwd/fastpath"
	"github.com/xdpfwd/xdpfwd/fastpath/header"
	"github.com/xdpfwd/xdpfwd/fastpath/route"
)

// What the router's stages say of a traced packet (fastpath.Explainer):
// the routing decision (for the router itself, or out of an interface,
// directly or through a gateway), the neighbour's address, and the ICMP
// error the stage answered the packet with.

// answer is a packet the running stage answered with an ICMP error.
type answer struct {
	p         *fastpath.Packet
	v4        bool
	typ, code uint8
}

// answer notes that the running stage answered p with an ICMP error (or
// ICMPv6 if !v4) of type typ and code.
func (w *worker) answer(p *fastpath.Packet, v4 bool, typ, code uint8) {
	if len(w.answered) < cap(w.answered) {
		w.answered = append(w.answered, answer{p: p, v4: v4, typ: typ, code: code})
	}
}

// explainAnswer writes, if the running stage answered p with an ICMP
// error, which (after a separator if the note has text).
func (w *worker) explainAnswer(p *fastpath.Packet, n *fastpath.Note, sep bool) {
	for _, a := range w.answered {
		if a.p != p {
			continue
		}
		if sep {
			n.Str("; ")
		}
		n.Str("answered with ")
		n.Str(icmpName(a.v4, a.typ, a.code))
		return
	}
}

// icmpName names an ICMP (v4) or ICMPv6 error the router sends.
func icmpName(v4 bool, typ, code uint8) string {
	if v4 {
		switch {
		case typ == header.ICMPv4TimeExceeded:
			return "ICMP time exceeded"
		case typ == header.ICMPv4Redirect:
			return "ICMP redirect"
		case typ == header.ICMPv4DestUnreachable && code == header.ICMPv4HostUnreachable:
			return "ICMP host unreachable"
		case typ == header.ICMPv4DestUnreachable && code == header.ICMPv4PortUnreachable:
			return "ICMP port unreachable"
		case typ == header.ICMPv4DestUnreachable && code == header.ICMPv4FragmentationNeeded:
			return "ICMP fragmentation needed"
		case typ == header.ICMPv4DestUnreachable:
			return "ICMP destination unreachable"
		}
		return "an ICMP error"
	}
	switch typ {
	case header.ICMPv6TimeExceeded:
		return "ICMPv6 time exceeded"
	case header.ICMPv6PacketTooBig:
		return "ICMPv6 packet too big"
	case header.ICMPv6DestUnreachable:
		if code == header.ICMPv6PortUnreachable {
			return "ICMPv6 port unreachable"
		}
		return "ICMPv6 destination unreachable"
	}
	return "an ICMPv6 error"
}

// Explain says where the routing decision sends p.
func (s *decide) Explain(p *fastpath.Packet, n *fastpath.Note) {
	w := (*worker)(s)
	switch {
	case !p.Routed:
	case p.RouteLocal:
		n.Str("for the router itself")
	case p.OutIface != 0 && int(p.OutIface) <= len(w.r.ifaces):
		n.Str("out of ")
		n.Str(w.r.iface(p.OutIface).Name)
		if p.RouteHop != 0 {
			if h := w.r.table.FIB().View().Hop(route.Result{NextHop: p.RouteHop, Type: route.Unicast}); h.Kind != route.Connected {
				n.Str(" via ")
				n.Addr(h.Addr())
			}
		}
		if p.FragMTU != 0 {
			n.Str(", fragmented to MTU ")
			n.Uint(uint64(p.FragMTU))
		}
	}
	w.explainAnswer(p, n, n.Len() > 0)
}

// Explain says which ICMP error the router answered a packet for itself
// with (port unreachable, ...).
func (s *input) Explain(p *fastpath.Packet, n *fastpath.Note) {
	(*worker)(s).explainAnswer(p, n, false)
}

// Explain says which ICMP error the router answered a held packet it gave
// back with (host unreachable, its neighbour having failed).
func (s *neighEvents) Explain(p *fastpath.Packet, n *fastpath.Note) {
	(*worker)(s).explainAnswer(p, n, false)
}

// Explain says the next hop's MAC address the packet leaves to, or, for
// a packet the stage holds, the next hop whose address it waits for.
func (s *resolve) Explain(p *fastpath.Packet, n *fastpath.Note) {
	if !(p.Routed || p.Local) || p.OutIface == 0 || len(p.Data) < header.EthernetSize {
		return
	}
	switch {
	case p.Action == fastpath.ActionContinue:
		n.Str("to ")
		n.MAC([6]byte(p.Data[0:6]))
	case p.Action == fastpath.ActionStolen && p.Egress == fastpath.EgressNone && p.L3Off != 0 && int(p.OutIface) <= len(s.r.ifaces):
		w := (*worker)(s)
		n.Str("waiting for the address of ")
		n.Addr(netip.AddrFrom16(w.nextHop(p)).Unmap())
		n.Str(" on ")
		n.Str(w.r.iface(p.OutIface).Name)
	}
}
