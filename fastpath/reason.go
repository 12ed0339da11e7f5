package fastpath

import (
	"fmt"
	"sync"
	"sync/atomic"
)

// Reason is why a packet was dropped. Each stage registers its own reasons
// with NewReason, once, when its package initializes; the worker counts
// drops per port in an array indexed by Reason, sized when the worker is
// made. ReasonNone (0) is the reason of a packet not dropped.
type Reason uint16

// ReasonNone is the reason of a packet that was not dropped.
const ReasonNone Reason = 0

// The reasons of the core: the worker's own, and Parse's.
var (
	// DropMalformed: the frame is shorter than an Ethernet header, or
	// than the VLAN tags it announces (Linux drops those too).
	DropMalformed = NewReason("parse", "malformed frame")
	// DropNoVerdict: no stage chose where the packet goes.
	DropNoVerdict = NewReason("worker", "no verdict")
	// DropNoEgress: a group held no port but the ingress port, or the
	// egress port has no queue on this worker that can transmit (it is
	// down, or its queue here has no TX queue or stalled).
	DropNoEgress = NewReason("worker", "no egress port")
	// DropTxRingFull: the egress TX ring took fewer frames than offered.
	DropTxRingFull = NewReason("worker", "TX ring full")
	// DropNoFreeFrame: no free UMEM frame for a copy of a frame sent to
	// a group.
	DropNoFreeFrame = NewReason("worker", "no free frame")
	// DropTxStalled: the frame was on a TX ring that stopped completing
	// (TxStallTimeout), counted on the egress port.
	DropTxStalled = NewReason("worker", "TX stalled")
	// DropTooBigForEgress: the frame is longer than the egress device
	// accepts (Worker.SetPortMaxFrame), counted on the egress port.
	DropTooBigForEgress = NewReason("worker", "too big for egress")
	// DropNoEmit: a stage could not emit a packet (Batch.Emit): no room
	// in the batch or no free frame. Counted on the port whose traffic
	// caused it.
	DropNoEmit = NewReason("worker", "no room to emit")
)

// registry holds the names and stages of the reasons, by Reason.
type registry struct {
	sync.Mutex
	names, stages []string
	frozen        atomic.Bool // a worker counts by the registry: no more reasons
}

// reasons is the registry. Its initializer runs before the package-level
// NewReason calls that use it (Go orders package variables by their
// dependencies, through functions too).
var reasons = &registry{names: []string{"none"}, stages: []string{""}}

// NewReason registers a drop reason of stage, named name, and returns it.
// Call it from a package-level var declaration: it panics if the name is
// taken, or if a worker was already made (workers size their counters by
// the reasons that exist).
func NewReason(stage, name string) Reason {
	reasons.Lock()
	defer reasons.Unlock()
	if reasons.frozen.Load() {
		panic(fmt.Sprintf("fastpath.NewReason(%q, %q): called after a worker was made", stage, name))
	}
	for i, n := range reasons.names {
		if n == name {
			panic(fmt.Sprintf("fastpath.NewReason(%q, %q): name taken by stage %q", stage, name, reasons.stages[i]))
		}
	}
	reasons.names = append(reasons.names, name)
	reasons.stages = append(reasons.stages, stage)
	return Reason(len(reasons.names) - 1)
}

// NumReasons returns how many reasons exist, ReasonNone included, and
// closes the registry.
func NumReasons() int {
	reasons.Lock()
	defer reasons.Unlock()
	reasons.frozen.Store(true)
	return len(reasons.names)
}

// String returns the reason's name, as metrics and the stats verb show it.
func (r Reason) String() string {
	reasons.Lock()
	defer reasons.Unlock()
	if int(r) < len(reasons.names) {
		return reasons.names[r]
	}
	return "reason(" + itoa(int(r)) + ")"
}

// Stage returns the name of the stage that registered the reason.
func (r Reason) Stage() string {
	reasons.Lock()
	defer reasons.Unlock()
	if int(r) < len(reasons.stages) {
		return reasons.stages[r]
	}
	return ""
}

// LookupReason returns the reason named name.
func LookupReason(name string) (Reason, bool) {
	reasons.Lock()
	defer reasons.Unlock()
	for i, n := range reasons.names {
		if n == name {
			return Reason(i), true
		}
	}
	return 0, false
}
