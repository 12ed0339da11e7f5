package fastpathtest

import "github.com/xdpfwd/xdpfwd/fastpath"

// MACSwitch is a stage for tests of the worker, at HookBridgePrerouting:
// it sends a frame to the port its destination MAC names in its last byte
// (02:00:00:00:00:0N goes to port N; see MAC) if that is one of Ports, and
// any other frame to Group.
type MACSwitch struct {
	// Ports are the ports a destination MAC may name.
	Ports []fastpath.PortID
	// Group is where every other frame goes.
	Group fastpath.GroupID
}

// NewMACSwitch returns a switch over ports, adding their group to groups,
// placed at HookBridgePrerouting.
func NewMACSwitch(groups *fastpath.PortGroups, ports ...fastpath.PortID) fastpath.Attached {
	g, err := groups.Add(ports)
	if err != nil {
		panic(err)
	}
	return fastpath.At(fastpath.HookBridgePrerouting, 0, &MACSwitch{Ports: ports, Group: g})
}

// Name returns "macswitch".
func (*MACSwitch) Name() string { return "macswitch" }

// Process sends every packet of b not dropped to its port or group.
func (s *MACSwitch) Process(b *fastpath.Batch, _ fastpath.Time) {
	for i := range b.Packets[:b.Len] {
		p := &b.Packets[i]
		if p.Action != fastpath.ActionContinue {
			continue
		}
		p.ToGroup(s.Group)
		d := p.Data
		if d[0]&1 != 0 || d[0] != 0x02 || d[1]|d[2]|d[3]|d[4] != 0 {
			continue
		}
		for _, port := range s.Ports {
			if port == fastpath.PortID(d[5]) {
				p.ToPort(port)
			}
		}
	}
}
