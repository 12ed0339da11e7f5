package fastpath

import (
	"fmt"
	"math"
)

// Hook is a point of the packet walk where stages sit, with netfilter's
// meaning and order, so that nft base chains attach by hook and priority
// as the kernel attaches them. A packet visits the hooks in this order:
//
//	HookIngress            netdev ingress: every frame of a port, parsed
//	HookBridgePrerouting   bridge prerouting: received frames not yet
//	                       handed to the router; its last stage is the
//	                       bridging decision (FDB) for a bridge's ports,
//	                       which hands frames for the bridge's router MAC
//	                       to the router (Meta.Routed)
//	HookPrerouting         IP prerouting: packets for the router (Routed);
//	                       its last stage is the routing decision
//	HookInput              IP input: routed packets for the router itself
//	HookForward            IP forward: routed packets it forwards
//	HookOutput             IP output: packets the router sends (Local)
//	HookPostrouting        IP postrouting: forwarded and sent packets, with
//	                       their output interface; the neighbour and the
//	                       L2 rewrite come last, and out of a bridge the
//	                       bridge's FDB
//	  — copies: one per output port of the chosen egress (Meta.Egress) —
//	HookBridgeForward      bridge forward: each copy, with its output port
//	HookBridgePostrouting  bridge postrouting: each copy
//	HookEgress             netdev egress: each copy, last; the device's own
//	                       work (checksum offload) sits at its end
//
// The hooks from HookBridgeForward on run once per output copy (PerOutput):
// per-output work (VLAN tagging, postrouting rules of the bridge family)
// sees the port the copy leaves on. A stage at an IP hook works on the
// packets that hook is for (Meta.Routed, Meta.Local) and leaves the rest.
type Hook uint8

// The hooks, in walk order.
const (
	HookIngress Hook = iota
	HookBridgePrerouting
	HookPrerouting
	HookInput
	HookForward
	HookOutput
	HookPostrouting
	HookBridgeForward
	HookBridgePostrouting
	HookEgress
	// NumHooks is the number of hooks.
	NumHooks
)

var hookNames = [NumHooks]string{
	HookIngress:           "netdev ingress",
	HookBridgePrerouting:  "bridge prerouting",
	HookPrerouting:        "ip prerouting",
	HookInput:             "ip input",
	HookForward:           "ip forward",
	HookOutput:            "ip output",
	HookPostrouting:       "ip postrouting",
	HookBridgeForward:     "bridge forward",
	HookBridgePostrouting: "bridge postrouting",
	HookEgress:            "netdev egress",
}

// String returns the hook's name, netfilter's family and hook.
func (h Hook) String() string {
	if h < NumHooks {
		return hookNames[h]
	}
	return "hook(" + itoa(int(h)) + ")"
}

// PerOutput reports whether stages at h run once per output copy.
func (h Hook) PerOutput() bool { return h >= HookBridgeForward && h < NumHooks }

// Priorities order the stages of one hook, lowest first, as nft base chain
// priorities do; stages of equal priority run in the order given.
const (
	// PriorityFirst places a stage before every other of its hook (of
	// another priority).
	PriorityFirst = math.MinInt32
	// PriorityLast places a stage after every other of its hook (of
	// another priority): the decision a hook leads to (the bridge's FDB
	// lookup) sits there.
	PriorityLast = math.MaxInt32
)

// Stage is one step of the packet walk. Process works on the packets of
// the batch whose Action is ActionContinue, and writes into their metadata
// what happens (Drop) and where they go (ToPort, ToGroup). No stage sends,
// frees or counts a frame: the Worker does, after the hooks.
//
// A Stage value belongs to one worker's pipeline: Process is never called
// concurrently on one value. Shared state (the FDB) is behind the stage.
type Stage interface {
	// Name names the stage in stage statistics and traces.
	Name() string
	// Process runs the stage over b.Packets[:b.Len] at time now.
	Process(b *Batch, now Time)
}

// Attached is a stage placed at a hook with a priority.
type Attached struct {
	Hook     Hook
	Priority int32
	Stage    Stage
}

// At places stage s at hook h with priority prio.
func At(h Hook, prio int32, s Stage) Attached { return Attached{Hook: h, Priority: prio, Stage: s} }

// Subsystem is the shared part of a family of stages (the bridges; next
// the router, the rules, connection tracking): it gives each worker's
// pipeline its stages, and ages its state on the daemon's clock. The
// daemon wires every subsystem the same way, in a loop.
type Subsystem interface {
	// Stages returns the stages of one worker's pipeline, each at its
	// hook. Stages of one worker never run concurrently.
	Stages() []Attached
	// Expire ages the subsystem's state by now (timers, removal of what
	// aged out; a bounded amount of work per call) and returns how many
	// entries it removed. The daemon calls it from one goroutine about
	// once a second; it is safe while workers run.
	Expire(now Time) int
}

// CoreStages returns the stages of the core that every pipeline has:
// Parse first at HookIngress, and csum, the device's checksum offload,
// last at HookEgress.
func CoreStages(csum *ChecksumFinish) []Attached {
	return []Attached{At(HookIngress, PriorityFirst, Parse{}), At(HookEgress, PriorityLast, csum)}
}

// GroupID names a group of ports in a PortGroups.
type GroupID uint16

// PortGroups are the port groups packets can be sent to (EgressGroup): a
// bridge's ports, or one VLAN's. Stages add groups while the dataplane is
// built; workers only read them.
type PortGroups struct {
	lists [][]PortID
}

// Add adds a group holding ports, each at most once, and returns its ID.
func (g *PortGroups) Add(ports []PortID) (GroupID, error) {
	if len(g.lists) > math.MaxUint16 {
		return 0, fmt.Errorf("port groups: more than %d", math.MaxUint16+1)
	}
	seen := make(map[PortID]bool, len(ports))
	for _, p := range ports {
		if seen[p] {
			return 0, fmt.Errorf("port group: port %d listed twice", p)
		}
		seen[p] = true
	}
	g.lists = append(g.lists, append([]PortID(nil), ports...))
	return GroupID(len(g.lists) - 1), nil
}

// Ports returns the ports of group id, nil for an unknown one. The slice
// must not be modified.
func (g *PortGroups) Ports(id GroupID) []PortID {
	if g == nil || int(id) >= len(g.lists) {
		return nil
	}
	return g.lists[id]
}
