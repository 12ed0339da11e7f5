package fastpath

import (
	"testing"

	"github.com/xdpfwd/xdpfwd/xdp"
)

// learnedBatch returns a bridge pipeline that has learned A on port 1 and
// B on port 2, and a full batch of 60-byte (64 on the wire) UDP frames
// from A to B.
func learnedBatch(tb testing.TB, checksum bool) (*Pipeline, *Batch) {
	bs, err := NewBridges(BridgeConfig{Name: "br0", Ports: []PortID{1, 2, 3}})
	if err != nil {
		tb.Fatal(err)
	}
	pl := NewPipeline(Parse{}, bs.Stage())
	if checksum {
		pl = NewPipeline(Parse{}, bs.Stage(), &ChecksumFinish{})
	}
	// Learn B on port 2; then a batch from port 1's queue, A to B.
	b := &Batch{Len: 1}
	b.Packets[0] = Packet{Data: udp4(tb, macA, macB, 18), InPort: 2}
	pl.Run(b, 0)
	b.Len = BatchSize
	for i := range b.Packets {
		b.Packets[i] = Packet{Data: udp4(tb, macB, macA, 18), InPort: 1}
	}
	pl.Run(b, 0)
	return pl, b
}

func resetBatch(b *Batch) {
	for i := range b.Packets[:b.Len] {
		p := &b.Packets[i]
		p.Reset(p.Addr, p.Data, p.InPort)
	}
}

func TestPipelineAllocs(t *testing.T) {
	pl, b := learnedBatch(t, true)
	allocs := testing.AllocsPerRun(100, func() {
		resetBatch(b)
		pl.Run(b, 1e9)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per 64-packet batch", allocs)
	}
	for i := range b.Packets {
		if b.Packets[i].Verdict != VerdictForward {
			t.Fatalf("packet %d: %v", i, b.Packets[i].Verdict)
		}
	}
}

func TestWorkerPollAllocs(t *testing.T) {
	r := newRig(t, 1024, 256, 128)
	r.send(2, arpRequest(t, macB, 1))
	frames := make([][]byte, BatchSize)
	for i := range frames {
		frames[i] = udp4(t, macB, macA, 18)
	}
	frames[0] = arpRequest(t, macA, 2) // one flood with copies per batch
	allocs := testing.AllocsPerRun(100, func() {
		r.q[1].Inject(frames...)
		r.w.Poll()
		r.q[2].Consume()
		r.q[3].Consume()
		r.w.Poll()
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per worker iteration", allocs)
	}
	r.checkAccounting()
	if c := r.w.Counters(); c.Ports[2].TxPackets < 100*BatchSize {
		t.Fatalf("port 2 sent %d frames, want at least %d", c.Ports[2].TxPackets, 100*BatchSize)
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
			pl, batch := learnedBatch(b, checksum)
			for b.Loop() {
				resetBatch(batch)
				pl.Run(batch, 1e9)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*BatchSize), "ns/packet")
		})
	}
}

func BenchmarkWorkerFakeQueues(b *testing.B) {
	umem, err := xdp.NewUmem(xdp.UmemConfig{FrameCount: 1024, FrameSize: 2048})
	if err != nil {
		b.Fatal(err)
	}
	bs, _ := NewBridges(BridgeConfig{Name: "br0", Ports: []PortID{1, 2}})
	q1, q2 := NewFakeQueue(umem, 256), NewFakeQueue(umem, 256)
	w, err := NewWorker(WorkerConfig{Umem: umem, Queues: []PortQueue{{Port: 1, Queue: q1}, {Port: 2, Queue: q2}},
		Pipeline: NewPipeline(Parse{}, bs.Stage(), &ChecksumFinish{})})
	if err != nil {
		b.Fatal(err)
	}
	w.Poll()
	q2.Inject(rawFrame(bcast, macB))
	w.Poll()
	q1.Consume()
	frames := make([][]byte, BatchSize)
	for i := range frames {
		frames[i] = udp4(b, macB, macA, 18)
	}
	for b.Loop() {
		q1.Inject(frames...)
		w.Poll()
		q2.Consume()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*BatchSize), "ns/packet")
	if c := w.Counters(); c.Ports[2].TxPackets != uint64(b.N*BatchSize) {
		b.Fatalf("sent %d of %d", c.Ports[2].TxPackets, b.N*BatchSize)
	}
}
