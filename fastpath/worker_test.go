package fastpath

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/xdpfwd/xdpfwd/xdp"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// rig is a worker with fake ports 1, 2 and 3 (A, B and C) on one bridge.
type rig struct {
	t      *testing.T
	umem   *xdp.Umem
	w      *Worker
	bs     *Bridges
	q      map[PortID]*FakeQueue
	csum   *ChecksumFinish
	frames int
}

func newRig(t *testing.T, frames, ringSize, fillTarget int) *rig {
	t.Helper()
	// CheckFrees: a double free or a foreign address panics the test.
	umem, err := xdp.NewUmem(xdp.UmemConfig{FrameCount: uint32(frames), FrameSize: 2048, CheckFrees: true})
	if err != nil {
		t.Fatal(err)
	}
	bs, err := NewBridges(BridgeConfig{Name: "br0", Ports: []PortID{1, 2, 3}})
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, umem: umem, bs: bs, q: map[PortID]*FakeQueue{}, csum: &ChecksumFinish{}, frames: frames}
	var qs []PortQueue
	for _, p := range []PortID{1, 2, 3} {
		r.q[p] = NewFakeQueue(umem, ringSize)
		qs = append(qs, PortQueue{Port: p, Queue: r.q[p]})
	}
	now := Time(0)
	r.w, err = NewWorker(WorkerConfig{Umem: umem, Queues: qs, FillTarget: fillTarget,
		Pipeline: NewPipeline(Parse{}, bs.Stage(), r.csum), Clock: func() Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	r.w.Poll() // fill the fill rings
	return r
}

// send injects frames on port in, polls once and returns what each port
// transmitted.
func (r *rig) send(in PortID, frames ...[]byte) map[PortID][][]byte {
	r.t.Helper()
	if n := r.q[in].Inject(frames...); n != len(frames) {
		r.t.Fatalf("injected %d of %d frames", n, len(frames))
	}
	r.w.Poll()
	out := map[PortID][][]byte{}
	for p, q := range r.q {
		if d := q.Drain(); len(d) > 0 {
			out[p] = d
		}
	}
	r.w.Poll() // reap completions
	r.checkAccounting()
	return out
}

// checkAccounting counts every frame back: free list, fake rings, worker.
func (r *rig) checkAccounting() {
	r.t.Helper()
	n := r.umem.FreeCount() + r.w.Held()
	for _, q := range r.q {
		n += q.Held()
	}
	if n != r.frames || r.w.Held() != 0 {
		r.t.Fatalf("frame accounting: free %d + rings + held %d = %d, want %d", r.umem.FreeCount(), r.w.Held(), n, r.frames)
	}
}

func TestWorkerBridgesThreePorts(t *testing.T) {
	r := newRig(t, 256, 64, 32)
	req := arpRequest(t, macA, 2)
	out := r.send(1, req)
	if len(out) != 2 || len(out[2]) != 1 || len(out[3]) != 1 || !bytes.Equal(out[2][0], req) || !bytes.Equal(out[3][0], req) {
		t.Fatalf("ARP broadcast from A: sent %v, want one copy on ports 2 and 3", out)
	}
	reply := arpReply(t, macB, macA)
	out = r.send(2, reply)
	if len(out) != 1 || len(out[1]) != 1 || !bytes.Equal(out[1][0], reply) {
		t.Fatalf("ARP reply B→A: sent %v, want it on port 1 only", out)
	}
	data := udp4(t, macB, macA, 100)
	out = r.send(1, data)
	if len(out) != 1 || len(out[2]) != 1 || !bytes.Equal(out[2][0], data) {
		t.Fatalf("A→B: sent %v, want it on port 2 only", out)
	}
	c := r.w.Counters()
	want := map[PortID]PortCounters{
		1: {RxPackets: 2, RxBytes: uint64(len(req) + len(data)), TxPackets: 1, TxBytes: uint64(len(reply))},
		2: {RxPackets: 1, RxBytes: uint64(len(reply)), TxPackets: 2, TxBytes: uint64(len(req) + len(data))},
		3: {TxPackets: 1, TxBytes: uint64(len(req))},
	}
	for p, w := range want {
		if c.Ports[p] != w {
			t.Errorf("port %d counters %+v, want %+v", p, c.Ports[p], w)
		}
	}
	if got := r.bs.List()[0].Counters(); got != (BridgeCounters{Forwarded: 2, Flooded: 1, Learned: 2}) {
		t.Errorf("bridge counters %+v", got)
	}
}

func TestWorkerFinishesChecksums(t *testing.T) {
	r := newRig(t, 256, 64, 32)
	r.send(2, arpRequest(t, macB, 1)) // learn B
	for _, want := range [][]byte{udp4(t, macB, macA, 0), udp4(t, macB, macA, 1200), tcp6(t, macB, macA, 33)} {
		partial := bytes.Clone(want)
		off := makePartial(t, partial)
		if bytes.Equal(partial, want) {
			t.Fatal("test frame's checksum equals its pseudo-header sum")
		}
		out := r.send(1, partial)
		if len(out[2]) != 1 || !bytes.Equal(out[2][0], want) {
			t.Fatalf("forwarded checksum %#x, want %#x", binary.BigEndian.Uint16(out[2][0][off:]), binary.BigEndian.Uint16(want[off:]))
		}
	}
	// A broadcast-flooded partial frame is finished on every copy.
	want := udp4(t, bcast, macA, 10)
	partial := bytes.Clone(want)
	makePartial(t, partial)
	out := r.send(1, partial)
	if len(out[2]) != 1 || len(out[3]) != 1 || !bytes.Equal(out[2][0], want) || !bytes.Equal(out[3][0], want) {
		t.Fatal("flooded copies not finished")
	}
	if r.csum.Finished() != 4 {
		t.Fatalf("Finished() = %d, want 4", r.csum.Finished())
	}
}

func TestWorkerFloodWithoutFreeFrames(t *testing.T) {
	// 8 frames: the fill target takes 2 per queue, leaving 2 free.
	r := newRig(t, 8, 8, 2)
	if r.umem.FreeCount() != 2 {
		t.Fatalf("free %d, want 2", r.umem.FreeCount())
	}
	// Drain the free list so a flood has no frame for its copy.
	var grab [2]uint64
	r.umem.Alloc(grab[:])
	r.frames -= 2 // held by the test
	out := r.send(1, arpRequest(t, macA, 2))
	if len(out) != 1 {
		t.Fatalf("sent on %d ports, want 1 (the original)", len(out))
	}
	c := r.w.Counters()
	if c.Ports[2].Drops[DropNoFreeFrame]+c.Ports[3].Drops[DropNoFreeFrame] != 1 {
		t.Fatalf("no-free-frame drops: port 2 %d, port 3 %d; want 1 in all", c.Ports[2].Drops[DropNoFreeFrame], c.Ports[3].Drops[DropNoFreeFrame])
	}
}

func TestWorkerTxRingFull(t *testing.T) {
	r := newRig(t, 512, 16, 16)
	r.send(2, arpRequest(t, macB, 1)) // learn B
	frames := make([][]byte, 16)
	for i := range frames {
		frames[i] = udp4(t, macB, macA, i)
	}
	// Two batches without draining port 2: its 16-entry TX ring takes the
	// first 16 and refuses the next 16.
	for range 2 {
		if n := r.q[1].Inject(frames...); n != len(frames) {
			t.Fatalf("injected %d of %d", n, len(frames))
		}
		r.w.Poll()
		r.w.Poll() // refill port 1
	}
	r.checkAccounting()
	c := r.w.Counters()
	if c.Ports[2].TxPackets != 16 || c.Ports[2].Drops[DropTxRingFull] != 16 {
		t.Fatalf("port 2: tx %d, TX ring full drops %d; want 16, 16", c.Ports[2].TxPackets, c.Ports[2].Drops[DropTxRingFull])
	}
	if got := len(r.q[2].Drain()); got != 16 {
		t.Fatalf("drained %d, want 16", got)
	}
}

func TestWorkerDropsAreFreedAndCounted(t *testing.T) {
	r := newRig(t, 256, 64, 32)
	out := r.send(1, make([]byte, 10), rawFrame(macB, mcast))
	if len(out) != 0 {
		t.Fatalf("sent %v", out)
	}
	c := r.w.Counters()
	if c.Ports[1].Drops[DropMalformed] != 1 || c.Ports[1].Drops[DropInvalidSrcMAC] != 1 {
		t.Fatalf("port 1 drops %v", c.Ports[1].Drops)
	}
}

func TestWorkerRunStop(t *testing.T) {
	r := newRig(t, 256, 64, 32)
	done := make(chan error)
	go func() { done <- r.w.Run() }()
	time.Sleep(10 * time.Millisecond)
	r.w.Stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	r.checkAccounting()
}

func TestPipelineTraceAndStats(t *testing.T) {
	bs, _ := NewBridges(BridgeConfig{Name: "br0", Ports: []PortID{1, 2}})
	pl := NewPipeline(Parse{}, bs.Stage(), &ChecksumFinish{})
	pl.SetProfiling(true)
	var trace []string
	pl.SetTrace(func(stage string, p *Packet) { trace = append(trace, stage+":"+p.Verdict.String()) })
	var b Batch
	b.Len = 2
	b.Packets[0] = Packet{Data: rawFrame(bcast, macA), InPort: 1}
	b.Packets[1] = Packet{Data: []byte{1}, InPort: 1}
	pl.Run(&b, 0)
	want := []string{"parse:pending", "parse:drop", "bridge:flood", "bridge:drop", "checksum:flood", "checksum:drop"}
	if len(trace) != len(want) {
		t.Fatalf("trace %v, want %v", trace, want)
	}
	for i := range want {
		if trace[i] != want[i] {
			t.Fatalf("trace %v, want %v", trace, want)
		}
	}
	st := pl.StageStats()
	if len(st) != 3 || st[0].Name != "parse" || st[0].Packets != 2 || st[1].Packets != 1 {
		t.Fatalf("stage stats %+v", st)
	}
	pl.SetTrace(nil)
	pl.Run(&b, 0)
	if len(trace) != len(want) {
		t.Fatal("trace called after SetTrace(nil)")
	}
}

// TestWorkerSeveralQueuesPerPort: with two queues per port, a frame from
// a port's i-th queue leaves on the egress port's i-th queue.
func TestWorkerSeveralQueuesPerPort(t *testing.T) {
	umem, err := xdp.NewUmem(xdp.UmemConfig{FrameCount: 256, FrameSize: 2048})
	if err != nil {
		t.Fatal(err)
	}
	bs, _ := NewBridges(BridgeConfig{Name: "br0", Ports: []PortID{1, 2}, Static: []StaticEntry{{MAC: macB, Port: 2}}})
	q := [4]*FakeQueue{}
	var pqs []PortQueue
	for i := range q {
		q[i] = NewFakeQueue(umem, 16)
		pqs = append(pqs, PortQueue{Port: PortID(1 + i/2), Queue: q[i]}) // 1, 1, 2, 2
	}
	w, err := NewWorker(WorkerConfig{Umem: umem, Queues: pqs, Pipeline: NewPipeline(Parse{}, bs.Stage())})
	if err != nil {
		t.Fatal(err)
	}
	w.Poll()
	q[1].Inject(rawFrame(macB, macA))
	w.Poll()
	if a, b := len(q[2].Drain()), len(q[3].Drain()); a != 0 || b != 1 {
		t.Fatalf("from port 1's queue 1: port 2's queues sent %d and %d, want 0 and 1", a, b)
	}
	q[0].Inject(rawFrame(macB, macA))
	w.Poll()
	if a, b := len(q[2].Drain()), len(q[3].Drain()); a != 1 || b != 0 {
		t.Fatalf("from port 1's queue 0: port 2's queues sent %d and %d, want 1 and 0", a, b)
	}
}

// pollableQueue is a FakeQueue with a file descriptor, so Run blocks in
// poll(2) when idle.
type pollableQueue struct {
	*FakeQueue
	fd int
}

func (q pollableQueue) FD() int { return q.fd }

func TestWorkerRunBlocksAndStops(t *testing.T) {
	umem, err := xdp.NewUmem(xdp.UmemConfig{FrameCount: 64, FrameSize: 2048})
	if err != nil {
		t.Fatal(err)
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(p[0]); unix.Close(p[1]) })
	bs, _ := NewBridges(BridgeConfig{Name: "br0", Ports: []PortID{1}})
	w, err := NewWorker(WorkerConfig{Umem: umem, Queues: []PortQueue{{Port: 1, Queue: pollableQueue{NewFakeQueue(umem, 16), p[0]}}},
		Pipeline: NewPipeline(Parse{}, bs.Stage()), IdleTimeout: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if len(w.pollFDs) != 1 {
		t.Fatal("worker does not poll the queue's FD")
	}
	done := make(chan error)
	go func() { done <- w.Run() }()
	time.Sleep(50 * time.Millisecond) // several idle timeouts
	w.Stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// A queue whose fill ring needs a wakeup (a zero-copy driver that ran dry)
// gets one on every poll while it says so, and none otherwise.
func TestWorkerWakesFill(t *testing.T) {
	r := newRig(t, 1024, 256, 128)
	r.w.Poll()
	if n := r.q[1].FillWakeups(); n != 0 {
		t.Fatalf("%d fill wakeups for a queue that needs none", n)
	}
	r.q[1].SetFillNeedsWakeup(true)
	r.w.Poll()
	r.w.Poll()
	if n := r.q[1].FillWakeups(); n != 2 {
		t.Errorf("%d fill wakeups in 2 polls, want 2", n)
	}
	if n := r.q[2].FillWakeups(); n != 0 {
		t.Errorf("queue 2 woken %d times without needing it", n)
	}
	// While frames arrive the driver is not waiting: no wakeup.
	before := r.q[1].FillWakeups()
	r.q[1].Inject(arpRequest(t, macA, 2))
	r.w.Poll()
	r.w.Poll()
	if n := r.q[1].FillWakeups() - before; n != 1 {
		t.Errorf("%d fill wakeups in 2 polls, the first of which received, want 1", n)
	}
}

// Frames on a TX ring that the kernel has not completed get a kick on every
// poll, even with nothing new to send; once they complete, the kicks stop.
func TestWorkerNudgesPendingTX(t *testing.T) {
	r := newRig(t, 1024, 256, 128)
	r.send(2, arpRequest(t, macB, 1)) // learn B on port 2
	if n := r.q[1].Inject(udp4(t, macB, macA, 10)); n != 1 {
		t.Fatal("inject failed")
	}
	r.w.Poll() // forwards to port 2; the fake kernel does not take it yet
	before := r.q[2].Nudges()
	r.w.Poll()
	r.w.Poll()
	if got := r.q[2].Nudges() - before; got != 2 {
		t.Errorf("%d kicks in 2 polls with a frame waiting on the TX ring, want 2", got)
	}
	r.q[2].Drain()
	r.w.Poll() // reaps the completion
	before = r.q[2].Nudges()
	r.w.Poll()
	if got := r.q[2].Nudges() - before; got != 0 {
		t.Errorf("%d kicks after the TX ring drained, want 0", got)
	}
	r.checkAccounting()
}
