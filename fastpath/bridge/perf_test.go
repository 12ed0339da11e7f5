package bridge

import (
	"testing"

	"github.com/xdpfwd/xdpfwd/fastpath"
	"github.com/xdpfwd/xdpfwd/fastpath/fastpathtest"
)

// learnedBatch returns a bridge pipeline that has learned A on port 1 and
// B on port 2, and a full batch of 60-byte (64 on the wire) UDP frames
// from A to B. run runs the pipeline over it, as a worker does when the
// batch's packets all leave on one port: the hooks before the copies,
// then (with checksum) the per-output ones, checksum finishing among
// them.
func learnedBatch(tb testing.TB, checksum bool) (run func(now fastpath.Time), b *fastpath.Batch) {
	bs, err := NewSet(&fastpath.PortGroups{}, Config{Name: "br0", Ports: []fastpath.PortID{1, 2, 3}})
	if err != nil {
		tb.Fatal(err)
	}
	pl := fastpath.NewPipeline(append(bs.Stages(), fastpath.At(fastpath.HookIngress, fastpath.PriorityFirst, fastpath.Parse{}))...)
	if checksum {
		pl = pipeline(bs)
	}
	// Learn B on port 2; then a batch from port 1's queue, A to B.
	b = &fastpath.Batch{Len: 1}
	b.Packets[0].Reset(0, udp4(tb, macA, macB, 18), 2)
	pl.RunIngress(b, 0)
	b.Len = fastpath.BatchSize
	for i := range b.Packets[:b.Len] {
		b.Packets[i].Reset(0, udp4(tb, macB, macA, 18), 1)
	}
	run = func(now fastpath.Time) {
		resetBatch(b)
		pl.RunIngress(b, now)
		pl.RunOutput(b, now)
	}
	return run, b
}

func resetBatch(b *fastpath.Batch) {
	for i := range b.Packets[:b.Len] {
		p := &b.Packets[i]
		p.Reset(p.Addr, p.Data, p.InPort)
	}
}

func TestPipelineAllocs(t *testing.T) {
	run, b := learnedBatch(t, true)
	allocs := testing.AllocsPerRun(100, func() { run(1e9) })
	if allocs != 0 {
		t.Fatalf("%v allocations per 64-packet batch", allocs)
	}
	for i := range b.Packets[:b.Len] {
		if p := &b.Packets[i]; p.Action != fastpath.ActionContinue || p.Egress != fastpath.EgressPort || p.OutPort != 2 {
			t.Fatalf("packet %d: %v %v to %d", i, p.Action, p.Egress, p.OutPort)
		}
	}
}

func TestWorkerPollAllocs(t *testing.T) {
	r, _ := rig3(t, 1024, 256, 128)
	r.Send(2, arpRequest(t, macB, 1))
	frames := make([][]byte, fastpath.BatchSize)
	for i := range frames {
		frames[i] = udp4(t, macB, macA, 18)
	}
	frames[0] = arpRequest(t, macA, 2) // one flood with copies per batch
	allocs := testing.AllocsPerRun(100, func() {
		r.Q[1].Inject(frames...)
		r.W.Poll()
		r.Q[2].Consume()
		r.Q[3].Consume()
		r.W.Poll()
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per worker iteration", allocs)
	}
	r.Conserved("accounting")
	if c := r.W.Counters(); c.Ports[2].TxPackets < 100*fastpath.BatchSize {
		t.Fatalf("port 2 sent %d frames, want at least %d", c.Ports[2].TxPackets, 100*fastpath.BatchSize)
	}
}

// BenchmarkBridgePipeline runs parse and bridge over a batch of 64-byte
// UDP frames between learned MACs; the "+checksum" case adds the
// checksum-finishing stage (on frames whose checksums are complete).
func BenchmarkBridgePipeline(b *testing.B) {
	for _, checksum := range []bool{false, true} {
		name := "parse+bridge"
		if checksum {
			name += "+checksum"
		}
		b.Run(name, func(b *testing.B) {
			run, _ := learnedBatch(b, checksum)
			for b.Loop() {
				run(1e9)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*fastpath.BatchSize), "ns/packet")
		})
	}
}

func BenchmarkWorkerFakeQueues(b *testing.B) {
	r, _ := newRig(b, fastpathtest.RigConfig{Frames: 1024, Ring: 256, FillTarget: 256, UncheckedFrees: true}, Config{Name: "br0", Ports: []fastpath.PortID{1, 2}})
	w, q1, q2 := r.W, r.Q[1], r.Q[2]
	w.Poll()
	q2.Inject(rawFrame(bcast, macB))
	w.Poll()
	q1.Consume()
	frames := make([][]byte, fastpath.BatchSize)
	for i := range frames {
		frames[i] = udp4(b, macB, macA, 18)
	}
	for b.Loop() {
		q1.Inject(frames...)
		w.Poll()
		q2.Consume()
	}
	w.Poll() // reap the last completions: TX counts a frame when it completes
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*fastpath.BatchSize), "ns/packet")
	if c := w.Counters(); c.Ports[2].TxPackets != uint64(b.N*fastpath.BatchSize) {
		b.Fatalf("sent %d of %d", c.Ports[2].TxPackets, b.N*fastpath.BatchSize)
	}
}
