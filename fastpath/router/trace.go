package router

import (
	"net/netip"

	"github.com/xdpfwd/xdpfwd/fastpath"
	"github.com/xdpfwd/xdpfwd/fastpath/header"
	"github.com/xdpfwd/xdpfwd/fastpath/route"
)

// What the router's stages say of a traced packet (fastpath.Explainer):
// the routing decision (for the router itself, or out of an interface,
// directly or through a gateway) and the neighbour's address.

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
