package fastpath_test

import (
	"testing"
	"time"

	"github.com/xdpfwd/xdpfwd/fastpath"
	"github.com/xdpfwd/xdpfwd/fastpath/fastpathtest"
	"github.com/xdpfwd/xdpfwd/xdp"
)

// newStallRig is rig3 with 512 frames and 64-entry rings.
func newStallRig(t *testing.T) *stallRig { return &stallRig{rig3(t, 512, 64, 32)} }

// stallRig is a rig whose kernel sides transmit everything they can after
// every poll.
type stallRig struct{ *fastpathtest.Rig }

// inject puts frames on port in's RX ring and polls once; then every port
// whose kernel side works transmits, and the worker polls again.
func (r stallRig) inject(in fastpath.PortID, frames ...[]byte) {
	r.T.Helper()
	r.Inject(in, frames...)
	r.W.Poll()
	for _, q := range r.Q {
		q.Consume()
	}
	r.W.Poll()
}

// TestWorkerTxStall: port B's kernel side never completes. Its frames stay
// in flight, not counted as transmitted, until TxStallTimeout of worker
// clock passes without a completion; then they are counted as dropped
// ("TX stalled"), the stall is reported once, nothing more is put on B's
// ring, the worker stops kicking it, every frame is still accounted for,
// and A and C keep forwarding to each other. Each frame to B is counted
// once, transmitted or dropped, even if the ring completes after all.
func TestWorkerTxStall(t *testing.T) {
	r := newStallRig(t)
	r.inject(2, arpRequest(t, macB, 1)) // learn B on port 2
	r.inject(3, arpRequest(t, macC, 1)) // learn C on port 3
	r.Conserved("after learning")
	r.Q[2].SetTxStalled(true)

	burst := make([][]byte, 10)
	for i := range burst {
		burst[i] = udp4(t, macB, macA, 60+i)
	}
	r.inject(1, burst...)
	if n := r.Q[2].TxLen(); n != 10 {
		t.Fatalf("B's TX ring holds %d frames, want 10", n)
	}
	if !fastpath.TxInFlight(r.W) {
		t.Fatal("frames on B's ring are not in flight")
	}
	r.Now += fastpath.Time(fastpath.TxStallTimeout) - 1
	for range fastpath.TxStallKicks {
		r.W.Poll() // each kicks B's ring
	}
	if s := r.W.TxStalls(); len(s) != 0 {
		t.Fatalf("stall reported before TxStallTimeout: %+v", s)
	}
	if c := r.W.Counters().Ports[2]; c.Drops[fastpath.DropTxStalled] != 0 || c.TxPackets != 1 {
		t.Fatalf("port 2 before the timeout: %d frames counted as TX stalled, %d as transmitted; want 0 and 1 (C's ARP flood; the 10 are in flight)", c.Drops[fastpath.DropTxStalled], c.TxPackets)
	}

	r.Now += 2
	r.W.Poll()
	stalls := r.W.TxStalls()
	if len(stalls) != 1 || stalls[0].Port != 2 || stalls[0].Queue != 1 || stalls[0].Frames != 10 {
		t.Fatalf("stalls %+v, want one on port 2 (queue 1) with 10 frames", stalls)
	}
	// 11 frames went to B: C's ARP flood, transmitted, and the 10 the
	// stalled ring holds, dropped.
	c := r.W.Counters().Ports[2]
	if c.Drops[fastpath.DropTxStalled] != 10 || c.TxPackets != 1 || c.TxPackets+c.Drops[fastpath.DropTxStalled] != 11 {
		t.Fatalf("port 2: %d dropped as %q, %d transmitted; want 10 and 1, 11 in all", c.Drops[fastpath.DropTxStalled], fastpath.DropTxStalled, c.TxPackets)
	}
	if fastpath.TxInFlight(r.W) {
		t.Fatal("a stalled ring still counts as in flight: Run would wake every millisecond to kick it")
	}
	r.Conserved("at the stall")

	// Later frames to B are dropped and freed, not put on the dead ring.
	r.Now += fastpath.Time(time.Second)
	r.inject(1, burst...)
	if n := r.Q[2].TxLen(); n != 10 {
		t.Fatalf("B's stalled TX ring holds %d frames, want still 10", n)
	}
	if d := r.W.Counters().Ports[1].Drops[fastpath.DropNoEgress]; d != 10 {
		t.Fatalf("port 1: %d frames to B dropped as %q, want 10", d, fastpath.DropNoEgress)
	}
	for range 3 {
		r.Now += fastpath.Time(fastpath.TxStallTimeout)
		r.W.Poll()
	}
	if s := r.W.TxStalls(); len(s) != 0 {
		t.Fatalf("stall reported again: %+v", s)
	}
	r.Conserved("after more frames to the stalled port")

	// A and C still reach each other.
	before := r.W.Counters().Ports[3].TxPackets
	r.inject(1, udp4(t, macC, macA, 80))
	if got := r.W.Counters().Ports[3].TxPackets - before; got != 1 {
		t.Fatalf("A→C after B's stall: %d frames transmitted on C, want 1", got)
	}
	r.Conserved("after A→C")

	// B's ring completes after all: its frames come back, and stay
	// counted as dropped only.
	r.Q[2].SetTxStalled(false)
	r.Q[2].Consume()
	r.W.Poll()
	if c := r.W.Counters().Ports[2]; c.TxPackets != 1 || c.Drops[fastpath.DropTxStalled] != 10 {
		t.Fatalf("port 2 after late completions: %d transmitted, %d dropped as %q; want 1 and 10", c.TxPackets, c.Drops[fastpath.DropTxStalled], fastpath.DropTxStalled)
	}
	r.Conserved("after late completions")
}

// TestWorkerTxProgressIsNoStall: a ring that completes slowly, but within
// TxStallTimeout each time, is never reported.
func TestWorkerTxProgressIsNoStall(t *testing.T) {
	r := newStallRig(t)
	r.inject(2, arpRequest(t, macB, 1))
	r.Q[2].SetTxStalled(true)
	for i := range 5 {
		r.inject(1, udp4(t, macB, macA, 60+i))
		r.Now += fastpath.Time(fastpath.TxStallTimeout) * 3 / 4
		r.W.Poll()
		r.Q[2].SetTxStalled(false)
		r.Q[2].Consume() // one completion per 750 ms; a new frame stays in flight
		r.Q[2].SetTxStalled(true)
		r.inject(1, udp4(t, macB, macA, 70+i))
	}
	if s := r.W.TxStalls(); len(s) != 0 {
		t.Fatalf("slow but progressing ring reported as stalled: %+v", s)
	}
	r.Conserved("end")
}

// TestWorkerPortDown: frames to a port marked down are dropped as no
// egress and freed, and flow again once it is up.
func TestWorkerPortDown(t *testing.T) {
	r := newStallRig(t)
	r.inject(2, arpRequest(t, macB, 1))
	r.W.SetPortDown(2, true)
	r.inject(1, udp4(t, macB, macA, 60))
	if n := r.Q[2].TxLen(); n != 0 || r.W.Counters().Ports[1].Drops[fastpath.DropNoEgress] != 1 {
		t.Fatalf("to a down port: %d frames on its ring, %d dropped as no egress; want 0 and 1", n, r.W.Counters().Ports[1].Drops[fastpath.DropNoEgress])
	}
	r.W.SetPortDown(2, false)
	before := r.W.Counters().Ports[2].TxPackets
	r.inject(1, udp4(t, macB, macA, 61))
	if got := r.W.Counters().Ports[2].TxPackets - before; got != 1 {
		t.Fatalf("port up again: %d frames transmitted, want 1", got)
	}
	r.Conserved("end")
}

// TestWorkerRxOnlyQueue: a port with two queues on the worker, the second
// without a TX queue on its device: every frame to the port leaves on the
// first.
func TestWorkerRxOnlyQueue(t *testing.T) {
	umem, err := xdp.NewUmem(xdp.UmemConfig{FrameCount: 512, FrameSize: 2048, CheckFrees: true})
	if err != nil {
		t.Fatal(err)
	}
	groups := &fastpath.PortGroups{}
	sw := fastpathtest.NewMACSwitch(groups, 1, 2)
	a0, a1, b0, b1 := fastpathtest.NewFakeQueue(umem, 64), fastpathtest.NewFakeQueue(umem, 64), fastpathtest.NewFakeQueue(umem, 64), fastpathtest.NewFakeQueue(umem, 64)
	w, err := fastpath.NewWorker(fastpath.WorkerConfig{Umem: umem, FillTarget: 32, Pipeline: fastpath.NewPipeline(sw), Groups: groups,
		Queues: []fastpath.PortQueue{{Port: 1, Queue: a0}, {Port: 1, Queue: a1}, {Port: 2, Queue: b0}, {Port: 2, Queue: b1, RxOnly: true}}})
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
	r.Q[2].SetTxStalled(true)
	r.inject(1, udp4(t, macB, macA, 60))
	r.Now += 10 * fastpath.Time(fastpath.TxStallTimeout) // a long pause, no Poll
	r.W.Poll()
	if s := r.W.TxStalls(); len(s) != 0 {
		t.Fatalf("a ring not kicked during a pause was called stalled: %+v", s)
	}
	for range fastpath.TxStallKicks {
		r.W.Poll()
	}
	if s := r.W.TxStalls(); len(s) != 1 {
		t.Fatalf("after %d kicks without a completion: stalls %+v, want one", fastpath.TxStallKicks, s)
	}
	r.Conserved("after the stall")
}
