package fastpath

import (
	"testing"
	"time"

	"github.com/xdpfwd/xdpfwd/xdp"
)

// stallRig is a worker with fake ports 1, 2 and 3 (A, B, C) on one bridge
// and a clock the test moves.
type stallRig struct {
	t      *testing.T
	umem   *xdp.Umem
	w      *Worker
	q      map[PortID]*FakeQueue
	now    Time
	frames int
}

func newStallRig(t *testing.T) *stallRig {
	t.Helper()
	const frames, ring = 512, 64
	umem, err := xdp.NewUmem(xdp.UmemConfig{FrameCount: frames, FrameSize: 2048, CheckFrees: true})
	if err != nil {
		t.Fatal(err)
	}
	bs, err := NewBridges(BridgeConfig{Name: "br0", Ports: []PortID{1, 2, 3}})
	if err != nil {
		t.Fatal(err)
	}
	r := &stallRig{t: t, umem: umem, q: map[PortID]*FakeQueue{}, frames: frames}
	var qs []PortQueue
	for _, p := range []PortID{1, 2, 3} {
		r.q[p] = NewFakeQueue(umem, ring)
		qs = append(qs, PortQueue{Port: p, Queue: r.q[p]})
	}
	r.w, err = NewWorker(WorkerConfig{Umem: umem, Queues: qs, FillTarget: 32,
		Pipeline: NewPipeline(Parse{}, bs.Stage()), Clock: func() Time { return r.now }})
	if err != nil {
		t.Fatal(err)
	}
	r.w.Poll()
	return r
}

// conserved fails the test unless every frame is on the free list, in a
// fake ring or held by the worker.
func (r *stallRig) conserved(when string) {
	r.t.Helper()
	n := r.umem.FreeCount() + r.w.Held()
	for _, q := range r.q {
		n += q.Held()
	}
	if n != r.frames {
		r.t.Fatalf("%s: free %d + rings + held %d = %d frames, want %d", when, r.umem.FreeCount(), r.w.Held(), n, r.frames)
	}
}

// inject puts frames on port in's RX ring and polls once; then every port
// whose kernel side works transmits.
func (r *stallRig) inject(in PortID, frames ...[]byte) {
	r.t.Helper()
	if n := r.q[in].Inject(frames...); n != len(frames) {
		r.t.Fatalf("injected %d of %d frames", n, len(frames))
	}
	r.w.Poll()
	for _, q := range r.q {
		q.Consume()
	}
	r.w.Poll()
}

// TestWorkerTxStall: port B's kernel side never completes. Its frames stay
// counted as transmitted and in flight until TxStallTimeout of worker
// clock passes without a completion; then they are counted as dropped
// ("TX stalled"), the stall is reported once, nothing more is put on B's
// ring, the worker stops kicking it, every frame is still accounted for,
// and A and C keep forwarding to each other.
func TestWorkerTxStall(t *testing.T) {
	r := newStallRig(t)
	r.inject(2, arpRequest(t, macB, 1)) // learn B on port 2
	r.inject(3, arpRequest(t, macC, 1)) // learn C on port 3
	r.conserved("after learning")
	r.q[2].SetTxStalled(true)

	burst := make([][]byte, 10)
	for i := range burst {
		burst[i] = udp4(t, macB, macA, 60+i)
	}
	r.inject(1, burst...)
	if n := r.q[2].TxLen(); n != 10 {
		t.Fatalf("B's TX ring holds %d frames, want 10", n)
	}
	if !r.w.txInFlight() {
		t.Fatal("frames on B's ring are not in flight")
	}
	r.now += Time(TxStallTimeout) - 1
	for range txStallKicks {
		r.w.Poll() // each kicks B's ring
	}
	if s := r.w.TxStalls(); len(s) != 0 {
		t.Fatalf("stall reported before TxStallTimeout: %+v", s)
	}
	if d := r.w.Counters().Ports[2].Drops[DropTxStalled]; d != 0 {
		t.Fatalf("%d frames counted as TX stalled before the timeout", d)
	}

	r.now += 2
	r.w.Poll()
	stalls := r.w.TxStalls()
	if len(stalls) != 1 || stalls[0].Port != 2 || stalls[0].Queue != 1 || stalls[0].Frames != 10 {
		t.Fatalf("stalls %+v, want one on port 2 (queue 1) with 10 frames", stalls)
	}
	c := r.w.Counters().Ports[2]
	if c.Drops[DropTxStalled] != 10 || c.TxPackets != 11 {
		t.Fatalf("port 2: %d dropped as %q, %d transmitted; want 10 and 11 (C's ARP flood + 10 accepted by the ring)", c.Drops[DropTxStalled], DropTxStalled, c.TxPackets)
	}
	if r.w.txInFlight() {
		t.Fatal("a stalled ring still counts as in flight: Run would wake every millisecond to kick it")
	}
	r.conserved("at the stall")

	// Later frames to B are dropped and freed, not put on the dead ring.
	r.now += Time(time.Second)
	r.inject(1, burst...)
	if n := r.q[2].TxLen(); n != 10 {
		t.Fatalf("B's stalled TX ring holds %d frames, want still 10", n)
	}
	if d := r.w.Counters().Ports[1].Drops[DropNoEgress]; d != 10 {
		t.Fatalf("port 1: %d frames to B dropped as %q, want 10", d, DropNoEgress)
	}
	for range 3 {
		r.now += Time(TxStallTimeout)
		r.w.Poll()
	}
	if s := r.w.TxStalls(); len(s) != 0 {
		t.Fatalf("stall reported again: %+v", s)
	}
	r.conserved("after more frames to the stalled port")

	// A and C still reach each other.
	before := r.w.Counters().Ports[3].TxPackets
	r.inject(1, udp4(t, macC, macA, 80))
	if got := r.w.Counters().Ports[3].TxPackets - before; got != 1 {
		t.Fatalf("A→C after B's stall: %d frames transmitted on C, want 1", got)
	}
	r.conserved("after A→C")
}

// TestWorkerTxProgressIsNoStall: a ring that completes slowly, but within
// TxStallTimeout each time, is never reported.
func TestWorkerTxProgressIsNoStall(t *testing.T) {
	r := newStallRig(t)
	r.inject(2, arpRequest(t, macB, 1))
	r.q[2].SetTxStalled(true)
	for i := range 5 {
		r.inject(1, udp4(t, macB, macA, 60+i))
		r.now += Time(TxStallTimeout) * 3 / 4
		r.w.Poll()
		r.q[2].SetTxStalled(false)
		r.q[2].Consume() // one completion per 750 ms; a new frame stays in flight
		r.q[2].SetTxStalled(true)
		r.inject(1, udp4(t, macB, macA, 70+i))
	}
	if s := r.w.TxStalls(); len(s) != 0 {
		t.Fatalf("slow but progressing ring reported as stalled: %+v", s)
	}
	r.conserved("end")
}

// TestWorkerPortDown: frames to a port marked down are dropped as no
// egress and freed, and flow again once it is up.
func TestWorkerPortDown(t *testing.T) {
	r := newStallRig(t)
	r.inject(2, arpRequest(t, macB, 1))
	r.w.SetPortDown(2, true)
	r.inject(1, udp4(t, macB, macA, 60))
	if n := r.q[2].TxLen(); n != 0 || r.w.Counters().Ports[1].Drops[DropNoEgress] != 1 {
		t.Fatalf("to a down port: %d frames on its ring, %d dropped as no egress; want 0 and 1", n, r.w.Counters().Ports[1].Drops[DropNoEgress])
	}
	r.w.SetPortDown(2, false)
	before := r.w.Counters().Ports[2].TxPackets
	r.inject(1, udp4(t, macB, macA, 61))
	if got := r.w.Counters().Ports[2].TxPackets - before; got != 1 {
		t.Fatalf("port up again: %d frames transmitted, want 1", got)
	}
	r.conserved("end")
}

// TestWorkerRxOnlyQueue: a port with two queues on the worker, the second
// without a TX queue on its device: every frame to the port leaves on the
// first.
func TestWorkerRxOnlyQueue(t *testing.T) {
	umem, err := xdp.NewUmem(xdp.UmemConfig{FrameCount: 512, FrameSize: 2048, CheckFrees: true})
	if err != nil {
		t.Fatal(err)
	}
	bs, err := NewBridges(BridgeConfig{Name: "br0", Ports: []PortID{1, 2}})
	if err != nil {
		t.Fatal(err)
	}
	a0, a1, b0, b1 := NewFakeQueue(umem, 64), NewFakeQueue(umem, 64), NewFakeQueue(umem, 64), NewFakeQueue(umem, 64)
	w, err := NewWorker(WorkerConfig{Umem: umem, FillTarget: 32, Pipeline: NewPipeline(Parse{}, bs.Stage()),
		Queues: []PortQueue{{Port: 1, Queue: a0}, {Port: 1, Queue: a1}, {Port: 2, Queue: b0}, {Port: 2, Queue: b1, RxOnly: true}}})
	if err != nil {
		t.Fatal(err)
	}
	w.Poll()
	b0.Inject(arpRequest(t, macB, 1))
	w.Poll()
	a0.Consume()
	a1.Consume()
	for i := range 8 {
		q := a0
		if i%2 == 1 {
			q = a1 // ingress queue 1: egress would be B's queue 1
		}
		q.Inject(udp4(t, macB, macA, 60+i))
		w.Poll()
	}
	if b0.TxLen() != 8 || b1.TxLen() != 0 {
		t.Fatalf("B's queue 0 has %d frames to send, its RX-only queue 1 %d; want 8 and 0", b0.TxLen(), b1.TxLen())
	}
}

// TestWorkerTxStallNeedsKicks: a ring that nobody kicked while the clock
// ran on (the whole process was paused: SIGSTOP, a frozen cgroup) is not
// stalled at the first look; only one that was kicked and still gave
// nothing back is.
func TestWorkerTxStallNeedsKicks(t *testing.T) {
	r := newStallRig(t)
	r.inject(2, arpRequest(t, macB, 1))
	r.q[2].SetTxStalled(true)
	r.inject(1, udp4(t, macB, macA, 60))
	r.now += 10 * Time(TxStallTimeout) // a long pause, no Poll
	r.w.Poll()
	if s := r.w.TxStalls(); len(s) != 0 {
		t.Fatalf("a ring not kicked during a pause was called stalled: %+v", s)
	}
	for range txStallKicks {
		r.w.Poll()
	}
	if s := r.w.TxStalls(); len(s) != 1 {
		t.Fatalf("after %d kicks without a completion: stalls %+v, want one", txStallKicks, s)
	}
	r.conserved("after the stall")
}
