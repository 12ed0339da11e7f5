// Package fastpathtest holds what tests of the dataplane share: an
// in-memory port queue (FakeQueue), a worker on fake queues (Rig), a stage
// that forwards by destination MAC (MACSwitch), and frame builders. It is
// imported by tests only.
package fastpathtest

import (
	"slices"
	"testing"

	"github.com/xdpfwd/xdpfwd/fastpath"
	"github.com/xdpfwd/xdpfwd/xdp"
)

// RigConfig describes a Rig. Zero fields take the defaults named.
type RigConfig struct {
	// Ports get one fake queue each, in this order.
	Ports []fastpath.PortID
	// Stages are placed between Parse (first at HookIngress) and, if
	// Checksum is set, checksum finishing (last at HookEgress).
	Stages []fastpath.Attached
	// Checksum adds fastpath.ChecksumFinish, as the daemon does.
	Checksum bool
	// Groups are the port groups the stages send to.
	Groups *fastpath.PortGroups
	// Frames is the UMEM's frame count (default 512); FrameSize its
	// chunk size (default 2048); Headroom the bytes before each received
	// frame (256 models the XDP headroom of copy mode).
	Frames, FrameSize, Headroom uint32
	// Ring is each fake ring's size (default 64); FillTarget the
	// worker's (default 32).
	Ring, FillTarget int
	// UncheckedFrees leaves out the UMEM's double-free checks, which a
	// benchmark should not measure.
	UncheckedFrees bool
}

// Rig is a worker polling fake queues, with a clock the test moves and a
// UMEM that panics on a double free. Every Send counts every frame back.
type Rig struct {
	T      testing.TB
	Umem   *xdp.Umem
	W      *fastpath.Worker
	Q      map[fastpath.PortID]*FakeQueue
	Now    fastpath.Time
	Frames int
	// Checksum is the rig's checksum stage, nil without RigConfig.Checksum.
	Checksum *fastpath.ChecksumFinish
}

// NewRig builds a rig and polls once, which fills the fill rings.
func NewRig(t testing.TB, c RigConfig) *Rig {
	t.Helper()
	c.Frames = cmpOr(c.Frames, 512)
	c.FrameSize = cmpOr(c.FrameSize, 2048)
	c.Ring, c.FillTarget = cmpOr(c.Ring, 64), cmpOr(c.FillTarget, 32)
	umem, err := xdp.NewUmem(xdp.UmemConfig{FrameCount: c.Frames, FrameSize: c.FrameSize, Headroom: c.Headroom, CheckFrees: !c.UncheckedFrees})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = umem.Close() })
	r := &Rig{T: t, Umem: umem, Q: map[fastpath.PortID]*FakeQueue{}, Frames: int(c.Frames)}
	var qs []fastpath.PortQueue
	for _, p := range c.Ports {
		r.Q[p] = NewFakeQueue(umem, c.Ring)
		qs = append(qs, fastpath.PortQueue{Port: p, Queue: r.Q[p]})
	}
	r.W, err = fastpath.NewWorker(fastpath.WorkerConfig{Umem: umem, Queues: qs, FillTarget: c.FillTarget,
		Pipeline: r.pipeline(c), Groups: c.Groups, Clock: func() fastpath.Time { return r.Now }})
	if err != nil {
		t.Fatal(err)
	}
	r.W.Poll()
	return r
}

func (r *Rig) pipeline(c RigConfig) *fastpath.Pipeline {
	st := slices.Concat([]fastpath.Attached{fastpath.At(fastpath.HookIngress, fastpath.PriorityFirst, fastpath.Parse{})}, c.Stages)
	if c.Checksum {
		r.Checksum = &fastpath.ChecksumFinish{}
		st = slices.Concat(c.Stages, fastpath.CoreStages(r.Checksum))
	}
	return fastpath.NewPipeline(st...)
}

func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// Inject puts frames on port in's RX ring and fails the test if the ring
// takes fewer.
func (r *Rig) Inject(in fastpath.PortID, frames ...[]byte) {
	r.T.Helper()
	if n := r.Q[in].Inject(frames...); n != len(frames) {
		r.T.Fatalf("port %d: injected %d of %d frames", in, n, len(frames))
	}
}

// Send injects frames on port in, polls once, and returns what each port
// transmitted; it then polls again to reap completions and checks that
// every frame is accounted for.
func (r *Rig) Send(in fastpath.PortID, frames ...[]byte) map[fastpath.PortID][][]byte {
	r.T.Helper()
	r.Inject(in, frames...)
	r.W.Poll()
	out := r.Drain()
	r.W.Poll()
	r.Conserved("after send")
	if h := r.W.Held(); h != 0 {
		r.T.Fatalf("worker holds %d frames between polls", h)
	}
	return out
}

// Drain takes what every port transmitted off its TX ring.
func (r *Rig) Drain() map[fastpath.PortID][][]byte {
	out := map[fastpath.PortID][][]byte{}
	for p, q := range r.Q {
		if d := q.Drain(); len(d) > 0 {
			out[p] = d
		}
	}
	return out
}

// Conserved fails the test unless every frame is on the free list, in a
// fake ring, held by the worker or kept by a stage.
func (r *Rig) Conserved(when string) {
	r.T.Helper()
	n := r.Umem.FreeCount() + r.W.Held() + r.W.Stolen()
	for _, q := range r.Q {
		n += q.Held()
	}
	if n != r.Frames {
		r.T.Fatalf("%s: free %d + rings + held %d = %d frames, want %d", when, r.Umem.FreeCount(), r.W.Held(), n, r.Frames)
	}
}

// Drops returns how many frames the worker dropped on port for reason.
func (r *Rig) Drops(port fastpath.PortID, reason fastpath.Reason) uint64 {
	c := r.W.Counters()
	if int(port) >= len(c.Ports) {
		return 0
	}
	return c.Ports[port].Drops[reason]
}
