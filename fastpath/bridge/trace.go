package bridge

import "github.com/xdpfwd/xdpfwd/fastpath"

// Explain says what the forwarding decision was for a traced frame (the
// egress port or group is in the trace step itself).
func (*Forwarding) Explain(p *fastpath.Packet, n *fastpath.Note) {
	if p.Routed || p.Local {
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
