package fastpath_test

import (
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/xdpfwd/xdpfwd/fastpath"
	"github.com/xdpfwd/xdpfwd/fastpath/fastpathtest"
	"github.com/xdpfwd/xdpfwd/xdp"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Ports 1, 2 and 3 of the worker tests, with the MACs MACSwitch sends to
// them.
var macA, macB, macC = fastpathtest.MAC(1), fastpathtest.MAC(2), fastpathtest.MAC(3)

var (
	bcast                = fastpathtest.Broadcast
	rawFrame, udp4, tcp6 = fastpathtest.RawFrame, fastpathtest.UDP4, fastpathtest.TCP6
	arpRequest           = fastpathtest.ARPRequest
)

// rig3 is a rig with fake ports 1, 2 and 3 (A, B and C) behind a
// MACSwitch, and checksum finishing.
func rig3(t testing.TB, frames, ring, fillTarget int, extra ...fastpath.Attached) *fastpathtest.Rig {
	t.Helper()
	groups := &fastpath.PortGroups{}
	return fastpathtest.NewRig(t, fastpathtest.RigConfig{Ports: []fastpath.PortID{1, 2, 3}, Frames: uint32(frames), Ring: ring, FillTarget: fillTarget,
		Stages: append(extra, fastpathtest.NewMACSwitch(groups, 1, 2, 3)), Groups: groups, Checksum: true})
}

func TestWorkerFloodWithoutFreeFrames(t *testing.T) {
	// 8 frames: the fill target takes 2 per queue, leaving 2 free.
	r := rig3(t, 8, 8, 2)
	if r.Umem.FreeCount() != 2 {
		t.Fatalf("free %d, want 2", r.Umem.FreeCount())
	}
	// Drain the free list so a flood has no frame for its copy.
	var grab [2]uint64
	r.Umem.Alloc(grab[:])
	r.Frames -= 2 // held by the test
	out := r.Send(1, arpRequest(t, macA, 2))
	if len(out) != 1 {
		t.Fatalf("sent on %d ports, want 1 (the original)", len(out))
	}
	c := r.W.Counters()
	if c.Ports[2].Drops[fastpath.DropNoFreeFrame]+c.Ports[3].Drops[fastpath.DropNoFreeFrame] != 1 {
		t.Fatalf("no-free-frame drops: port 2 %d, port 3 %d; want 1 in all", c.Ports[2].Drops[fastpath.DropNoFreeFrame], c.Ports[3].Drops[fastpath.DropNoFreeFrame])
	}
}

func TestWorkerTxRingFull(t *testing.T) {
	r := rig3(t, 512, 16, 16)
	frames := make([][]byte, 16)
	for i := range frames {
		frames[i] = udp4(t, macB, macA, i)
	}
	// Two batches without draining port 2: its 16-entry TX ring takes the
	// first 16 and refuses the next 16.
	for range 2 {
		if n := r.Q[1].Inject(frames...); n != len(frames) {
			t.Fatalf("injected %d of %d", n, len(frames))
		}
		r.W.Poll()
		r.W.Poll() // refill port 1
	}
	r.Conserved("accounting")
	c := r.W.Counters()
	if c.Ports[2].TxPackets != 0 || c.Ports[2].Drops[fastpath.DropTxRingFull] != 16 {
		t.Fatalf("port 2: tx %d, TX ring full drops %d; want 0 (16 in flight), 16", c.Ports[2].TxPackets, c.Ports[2].Drops[fastpath.DropTxRingFull])
	}
	if got := len(r.Q[2].Drain()); got != 16 {
		t.Fatalf("drained %d, want 16", got)
	}
	r.W.Poll() // reap the completions
	c = r.W.Counters()
	if c.Ports[2].TxPackets != 16 || c.Ports[2].TxBytes != 16*uint64(len(frames[0])) {
		t.Fatalf("port 2 after the completions: tx %d frames, %d bytes; want 16, %d", c.Ports[2].TxPackets, c.Ports[2].TxBytes, 16*len(frames[0]))
	}
}

func TestWorkerDropsAreFreedAndCounted(t *testing.T) {
	r := rig3(t, 256, 64, 32, fastpath.At(fastpath.HookBridgePrerouting, -1, dropType{0x88b5}))
	out := r.Send(1, make([]byte, 10), rawFrame(macB, macA), udp4(t, macB, macA, 1))
	if len(out) != 1 || len(out[2]) != 1 {
		t.Fatalf("sent %v, want the UDP frame on port 2", out)
	}
	if n := r.Drops(1, fastpath.DropMalformed); n != 1 {
		t.Errorf("port 1: %d malformed, want 1", n)
	}
	if n := r.Drops(1, dropTest); n != 1 {
		t.Errorf("port 1: %d dropped by the test stage, want 1", n)
	}
}

// dropTest is the reason of dropType.
var dropTest = fastpath.NewReason("test", "test drop")

// dropType is a stage that drops the frames of one EtherType.
type dropType struct{ etherType uint16 }

func (dropType) Name() string { return "droptype" }

func (d dropType) Process(b *fastpath.Batch, _ fastpath.Time) {
	for i := range b.Packets[:b.Len] {
		if p := &b.Packets[i]; p.Action == fastpath.ActionContinue && p.EtherType == d.etherType {
			p.Drop(dropTest)
		}
	}
}

func TestWorkerRunStop(t *testing.T) {
	r := rig3(t, 256, 64, 32)
	done := make(chan error)
	go func() { done <- r.W.Run() }()
	time.Sleep(10 * time.Millisecond)
	r.W.Stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	r.Conserved("accounting")
}

func TestPipelineStats(t *testing.T) {
	groups := &fastpath.PortGroups{}
	pl := fastpath.NewPipeline(fastpath.At(fastpath.HookEgress, fastpath.PriorityLast, &fastpath.ChecksumFinish{}),
		fastpath.At(fastpath.HookIngress, fastpath.PriorityFirst, fastpath.Parse{}),
		fastpathtest.NewMACSwitch(groups, 1, 2))
	var b fastpath.Batch
	b.Len = 2
	b.Packets[0].Reset(0, rawFrame(bcast, macA), 1)
	b.Packets[1].Reset(0, []byte{1}, 1)
	pl.RunIngress(&b, 0)
	pl.RunOutput(&b, 0)
	for _, s := range pl.StageStats() {
		if s.Packets != 0 || s.Nanoseconds != 0 {
			t.Fatalf("profiling off: %+v", s)
		}
	}
	pl.SetProfiling(true)
	for i := range b.Packets[:b.Len] {
		p := &b.Packets[i]
		p.Reset(p.Addr, p.Data, p.InPort)
	}
	pl.RunIngress(&b, 0)
	pl.RunOutput(&b, 0)
	st := pl.StageStats()
	if len(st) != 3 || st[0].Name != "parse" || st[0].Hook != fastpath.HookIngress || st[0].Packets != 2 ||
		st[1].Name != "macswitch" || st[1].Packets != 1 || st[2].Name != "checksum" || st[2].Hook != fastpath.HookEgress || st[2].Packets != 1 {
		t.Fatalf("stage stats %+v", st)
	}
	for _, s := range st {
		if s.Nanoseconds == 0 {
			t.Errorf("stage %s: no time counted with profiling on", s.Name)
		}
	}
}

// TestWorkerSeveralQueuesPerPort: with two queues per port, a frame from
// a port's i-th queue leaves on the egress port's i-th queue.
func TestWorkerSeveralQueuesPerPort(t *testing.T) {
	umem, err := xdp.NewUmem(xdp.UmemConfig{FrameCount: 256, FrameSize: 2048})
	if err != nil {
		t.Fatal(err)
	}
	groups := &fastpath.PortGroups{}
	sw := fastpathtest.NewMACSwitch(groups, 1, 2)
	q := [4]*fastpathtest.FakeQueue{}
	var pqs []fastpath.PortQueue
	for i := range q {
		q[i] = fastpathtest.NewFakeQueue(umem, 16)
		pqs = append(pqs, fastpath.PortQueue{Port: fastpath.PortID(1 + i/2), Queue: q[i]}) // 1, 1, 2, 2
	}
	w, err := fastpath.NewWorker(fastpath.WorkerConfig{Umem: umem, Queues: pqs, Pipeline: fastpath.NewPipeline(sw), Groups: groups})
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
	*fastpathtest.FakeQueue
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
	w, err := fastpath.NewWorker(fastpath.WorkerConfig{Umem: umem, Queues: []fastpath.PortQueue{{Port: 1, Queue: pollableQueue{fastpathtest.NewFakeQueue(umem, 16), p[0]}}},
		Pipeline: fastpath.NewPipeline(), IdleTimeout: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if fastpath.PollFDs(w) != 1 {
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
	r := rig3(t, 1024, 256, 128)
	r.W.Poll()
	if n := r.Q[1].FillWakeups(); n != 0 {
		t.Fatalf("%d fill wakeups for a queue that needs none", n)
	}
	r.Q[1].SetFillNeedsWakeup(true)
	r.W.Poll()
	r.W.Poll()
	if n := r.Q[1].FillWakeups(); n != 2 {
		t.Errorf("%d fill wakeups in 2 polls, want 2", n)
	}
	if n := r.Q[2].FillWakeups(); n != 0 {
		t.Errorf("queue 2 woken %d times without needing it", n)
	}
	// While frames arrive the driver is not waiting: no wakeup.
	before := r.Q[1].FillWakeups()
	r.Q[1].Inject(arpRequest(t, macA, 2))
	r.W.Poll()
	r.W.Poll()
	if n := r.Q[1].FillWakeups() - before; n != 1 {
		t.Errorf("%d fill wakeups in 2 polls, the first of which received, want 1", n)
	}
}

// Frames on a TX ring that the kernel has not completed get a kick on every
// poll, even with nothing new to send; once they complete, the kicks stop.
func TestWorkerNudgesPendingTX(t *testing.T) {
	r := rig3(t, 1024, 256, 128)
	if n := r.Q[1].Inject(udp4(t, macB, macA, 10)); n != 1 {
		t.Fatal("inject failed")
	}
	r.W.Poll() // forwards to port 2; the fake kernel does not take it yet
	before := r.Q[2].Nudges()
	r.W.Poll()
	r.W.Poll()
	if got := r.Q[2].Nudges() - before; got != 2 {
		t.Errorf("%d kicks in 2 polls with a frame waiting on the TX ring, want 2", got)
	}
	r.Q[2].Drain()
	r.W.Poll() // reaps the completion
	before = r.Q[2].Nudges()
	r.W.Poll()
	if got := r.Q[2].Nudges() - before; got != 0 {
		t.Errorf("%d kicks after the TX ring drained, want 0", got)
	}
	r.Conserved("accounting")
}
