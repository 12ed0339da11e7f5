package fastpath

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// LatencyBuckets is the number of buckets of a LatencyHistogram: bucket i
// holds latencies above LatencyBound(i-1) and up to LatencyBound(i),
// bucket 0 those up to LatencyBound(0) (256 ns), and the last bucket
// those above LatencyBound(LatencyBuckets-2) (about 134 ms), without a
// bound.
const LatencyBuckets = 21

// latencyShift is log2 of the first bucket's bound in nanoseconds.
const latencyShift = 8

// LatencyBound returns the upper bound, inclusive, of latency bucket i:
// 2^(8+i) ns, from 256 ns to 2^27 ns (about 134 ms). The last bucket
// (LatencyBuckets-1) has no bound: LatencyBound returns the largest
// Duration for it.
func LatencyBound(i int) time.Duration {
	if i >= LatencyBuckets-1 {
		return math.MaxInt64
	}
	return time.Duration(1) << (latencyShift + i)
}

// LatencyBucket returns the bucket a latency of ns nanoseconds falls in:
// the first whose bound is at least ns.
func LatencyBucket(ns uint64) int {
	if ns == 0 {
		return 0
	}
	return min(bits.Len64((ns-1)>>latencyShift), LatencyBuckets-1)
}

// LatencyHistogram counts packets by the time they spent in xdpfwd, from
// the RX ring to the TX ring, in log2 buckets (LatencyBound). It is a
// plain value: the worker keeps one per egress port on its thread and
// publishes it with its other counters.
type LatencyHistogram struct {
	// Buckets counts packets by bucket (LatencyBucket).
	Buckets [LatencyBuckets]uint64
	// SumNanos is the sum of the packets' latencies in nanoseconds.
	SumNanos uint64
	// MaxNanos is the largest latency seen, in nanoseconds.
	MaxNanos uint64
}

// Record counts n packets that each spent ns nanoseconds, and returns
// the bucket it counted them in.
func (h *LatencyHistogram) Record(ns, n uint64) int {
	b := LatencyBucket(ns)
	h.Buckets[b] += n
	h.SumNanos += ns * n
	if ns > h.MaxNanos {
		h.MaxNanos = ns
	}
	return b
}

// Add merges o into h: the counts and sums add up, the maximum is the
// larger one.
func (h *LatencyHistogram) Add(o *LatencyHistogram) {
	for i, n := range o.Buckets {
		h.Buckets[i] += n
	}
	h.SumNanos += o.SumNanos
	h.MaxNanos = max(h.MaxNanos, o.MaxNanos)
}

// Count returns the number of packets counted.
func (h *LatencyHistogram) Count() uint64 {
	var n uint64
	for _, c := range h.Buckets {
		n += c
	}
	return n
}

// Quantile returns the latency below which a share q (0 to 1) of the
// packets fall, as Prometheus's histogram_quantile estimates it: linear
// within the bucket the rank falls in, the bucket's lower bound taken as
// its start. The estimate is never above MaxNanos, and q = 1 gives
// MaxNanos. An empty histogram gives 0.
func (h *LatencyHistogram) Quantile(q float64) time.Duration {
	total := h.Count()
	if total == 0 {
		return 0
	}
	if q >= 1 {
		return time.Duration(h.MaxNanos)
	}
	rank := max(q, 0) * float64(total)
	var below uint64
	for i, n := range h.Buckets {
		if n == 0 || float64(below+n) < rank {
			below += n
			continue
		}
		lo := 0.0
		if i > 0 {
			lo = float64(LatencyBound(i - 1))
		}
		hi := float64(h.MaxNanos)
		if i < LatencyBuckets-1 {
			hi = min(float64(LatencyBound(i)), hi)
		}
		v := lo + (hi-lo)*(rank-float64(below))/float64(n)
		return time.Duration(min(max(v, 0), float64(h.MaxNanos)))
	}
	return time.Duration(h.MaxNanos)
}

// atomicLatency is a LatencyHistogram as a worker publishes it.
type atomicLatency struct {
	buckets       [LatencyBuckets]atomic.Uint64
	sumNanos, max atomic.Uint64
}

// store publishes h, of which the buckets in the bit mask changed (bit i
// for bucket i), and the sum.
func (a *atomicLatency) store(h *LatencyHistogram, changed uint32) {
	for ; changed != 0; changed &= changed - 1 {
		i := bits.TrailingZeros32(changed)
		a.buckets[i].Store(h.Buckets[i])
	}
	a.sumNanos.Store(h.SumNanos)
	store(&a.max, h.MaxNanos)
}

// load returns the published histogram.
func (a *atomicLatency) load() LatencyHistogram {
	var h LatencyHistogram
	for i := range h.Buckets {
		h.Buckets[i] = a.buckets[i].Load()
	}
	h.SumNanos, h.MaxNanos = a.sumNanos.Load(), a.max.Load()
	return h
}
