package bridge

import "github.com/xdpfwd/xdpfwd/fastpath"

// Explain says what the forwarding decision was for a traced frame (the
// egress port or group is in the trace step itself): a frame a bridge
// port received for the bridge's own MAC goes up to its router
// interface (no stage before the bridge marks such a frame routed).
func (s *Forwarding) Explain(p *fastpath.Packet, n *fastpath.Note) {
	if p.Local {
		return
	}
	if p.Routed {
		if br := s.bridges.Of(p.InPort); br != nil && p.Action == fastpath.ActionContinue {
			n.Str("for the bridge's own address: up to its router interface")
		}
		return
	}
	switch {
	case p.Action != fastpath.ActionContinue:
	case p.Egress == fastpath.EgressPort:
		n.Str("destination in the FDB")
	case p.Egress == fastpath.EgressGroup:
		if p.Data[0]&1 != 0 {
			n.Str("flooded: broadcast or multicast")
		} else {
			n.Str("flooded: destination not in the FDB")
		}
	}
	if p.VID != 0 {
		n.Str(", VLAN ")
		n.Uint(uint64(p.VID))
	}
}
