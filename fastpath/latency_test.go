package fastpath_test

import (
	"math"
	"testing"
	"time"

	"github.com/xdpfwd/xdpfwd/fastpath"
	"github.com/xdpfwd/xdpfwd/fastpath/fastpathtest"
)

// Bucket i holds (2^(7+i), 2^(8+i)] ns, bucket 0 [0, 256], the last one
// everything above 2^27 ns; each bound belongs to the bucket below it, as
// a Prometheus bucket's le does.
func TestLatencyBuckets(t *testing.T) {
	for _, c := range []struct {
		ns     uint64
		bucket int
	}{
		{0, 0}, {1, 0}, {255, 0}, {256, 0}, {257, 1}, {512, 1}, {513, 2}, {1024, 2}, {1025, 3},
		{1 << 20, 12}, {1<<20 + 1, 13}, {1 << 27, 19}, {1<<27 + 1, 20}, {1 << 40, 20}, {math.MaxUint64, 20},
	} {
		if got := fastpath.LatencyBucket(c.ns); got != c.bucket {
			t.Errorf("LatencyBucket(%d) = %d, want %d", c.ns, got, c.bucket)
		}
	}
	for i := range fastpath.LatencyBuckets - 1 {
		b := fastpath.LatencyBound(i)
		if want := time.Duration(256) << i; b != want {
			t.Errorf("LatencyBound(%d) = %v, want %v", i, b, want)
		}
		if got := fastpath.LatencyBucket(uint64(b)); got != i {
			t.Errorf("bound %v of bucket %d falls in bucket %d", b, i, got)
		}
		if got := fastpath.LatencyBucket(uint64(b) + 1); got != i+1 {
			t.Errorf("%v, just above bucket %d's bound, falls in bucket %d", b+1, i, got)
		}
	}
	if b := fastpath.LatencyBound(fastpath.LatencyBuckets - 1); b != math.MaxInt64 {
		t.Errorf("the last bucket's bound is %v, want none (MaxInt64)", b)
	}
}

func TestLatencyRecordAndMerge(t *testing.T) {
	var a, b fastpath.LatencyHistogram
	a.Record(100, 10)  // bucket 0
	a.Record(3000, 5)  // bucket 4: (2048, 4096]
	b.Record(3000, 2)  // bucket 4
	b.Record(70e6, 1)  // bucket 19: (2^26, 2^27]
	b.Record(200e6, 1) // above every bound
	if a.Count() != 15 || a.SumNanos != 100*10+3000*5 || a.MaxNanos != 3000 {
		t.Fatalf("a: count %d sum %d max %d", a.Count(), a.SumNanos, a.MaxNanos)
	}
	a.Add(&b)
	want := [fastpath.LatencyBuckets]uint64{0: 10, 4: 7, 19: 1, 20: 1}
	if a.Buckets != want {
		t.Errorf("merged buckets %v, want %v", a.Buckets, want)
	}
	if a.Count() != 19 || a.SumNanos != 100*10+3000*7+70e6+200e6 || a.MaxNanos != 200e6 {
		t.Errorf("merged: count %d sum %d max %d", a.Count(), a.SumNanos, a.MaxNanos)
	}
}

func TestLatencyQuantile(t *testing.T) {
	var h fastpath.LatencyHistogram
	if q := h.Quantile(0.5); q != 0 {
		t.Errorf("empty histogram: p50 %v, want 0", q)
	}
	h.Record(300, 90)  // bucket 1: (256, 512]
	h.Record(5000, 10) // bucket 5: (4096, 8192], capped by the max
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{
		{0, 256},                // the first bucket with packets, at its start
		{0.5, 256 + 256*50/90},  // linear within (256, 512]
		{0.9, 512},              // the top of that bucket
		{0.99, 4096 + 904*9/10}, // within (4096, 5000]: the max bounds the bucket
		{1, 5000},               // the max
	} {
		if got := h.Quantile(c.q); got != c.want {
			t.Errorf("Quantile(%v) = %v, want %v", c.q, got, c.want)
		}
	}
	// Above every bound: the estimate runs up to the max.
	var far fastpath.LatencyHistogram
	far.Record(1e9, 4)
	if got := far.Quantile(0.5); got <= fastpath.LatencyBound(fastpath.LatencyBuckets-2) || got > time.Second {
		t.Errorf("p50 of 1s latencies = %v, want in (%v, 1s]", got, fastpath.LatencyBound(fastpath.LatencyBuckets-2))
	}
}

// clockStep is a stage that moves the rig's clock on by Step on every
// batch: the time the worker then measures for the batch.
type clockStep struct {
	Now  *fastpath.Time
	Step fastpath.Time
}

func (*clockStep) Name() string { return "clockstep" }

func (s *clockStep) Process(*fastpath.Batch, fastpath.Time) {
	if s.Now != nil {
		*s.Now += s.Step
	}
}

// The worker counts each frame it puts on a TX ring, per egress port, by
// the time from its batch's clock reading to the TX ring, without
// allocating; the counts are those of the frames sent, and workers' add
// up.
func TestLatencyWorker(t *testing.T) {
	step := &clockStep{}
	groups := &fastpath.PortGroups{}
	r := fastpathtest.NewRig(t, fastpathtest.RigConfig{Ports: []fastpath.PortID{1, 2, 3}, Frames: 1024, Ring: 256, FillTarget: 128,
		Stages: []fastpath.Attached{fastpath.At(fastpath.HookIngress, 0, step), fastpathtest.NewMACSwitch(groups, 1, 2, 3)}, Groups: groups})
	step.Now = &r.Now

	toB := make([][]byte, 10)
	for i := range toB {
		toB[i] = fastpathtest.UDP4(t, macB, macA, 18)
	}
	step.Step = 100 // bucket 0
	r.Send(1, toB...)
	step.Step = 3000 // bucket 4
	r.Send(1, toB[:4]...)
	step.Step = 1 << 20 // bucket 12
	// A broadcast, flooded: one frame to each of ports 2 and 3.
	r.Send(1, fastpathtest.RawFrame(bcast, macA))

	c := r.W.Counters()
	want2 := [fastpath.LatencyBuckets]uint64{0: 10, 4: 4, 12: 1}
	want3 := [fastpath.LatencyBuckets]uint64{12: 1}
	if l := c.Ports[2].Latency; l.Buckets != want2 || l.SumNanos != 10*100+4*3000+1<<20 || l.MaxNanos != 1<<20 {
		t.Errorf("port 2 latency %+v, want buckets %v", l, want2)
	}
	if l := c.Ports[3].Latency; l.Buckets != want3 || l.MaxNanos != 1<<20 {
		t.Errorf("port 3 latency %+v, want buckets %v", l, want3)
	}
	if l := c.Ports[1].Latency; l.Count() != 0 {
		t.Errorf("port 1 sent nothing but has latency %+v", l)
	}
	for p := fastpath.PortID(1); p <= 3; p++ {
		if n, tx := c.Ports[p].Latency.Count(), c.Ports[p].TxPackets; n != tx {
			t.Errorf("port %d: %d frames in the latency histogram, %d transmitted", p, n, tx)
		}
	}

	// No allocation per batch.
	step.Step = 2000 // bucket 3
	allocs := testing.AllocsPerRun(100, func() {
		r.Q[1].Inject(toB...)
		r.W.Poll()
		r.Q[2].Consume()
		r.W.Poll()
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per batch", allocs)
	}
	c = r.W.Counters()
	if l := c.Ports[2].Latency; l.Buckets[3] != 101*10 || l.Count() != c.Ports[2].TxPackets {
		t.Errorf("after 101 batches of 10 at 2µs: bucket 3 holds %d, want 1010; %d counted, %d sent", l.Buckets[3], l.Count(), c.Ports[2].TxPackets)
	}

	// Two workers' histograms add up.
	sum := fastpath.SumCounters(r.W, r.W)
	if l := sum.Ports[2].Latency; l.Count() != 2*c.Ports[2].Latency.Count() || l.MaxNanos != 1<<20 || l.Buckets[3] != 2*1010 {
		t.Errorf("two workers: %+v", l)
	}
}
