package fastpath

import "testing"

// BenchmarkLatencyPerBatch is what latency adds to a batch: one clock
// reading, one histogram update for its egress port, and publishing that
// port's histogram (as Poll does after the batch); ns/packet is for a
// full batch of 64 to one port.
func BenchmarkLatencyPerBatch(b *testing.B) {
	var h LatencyHistogram
	var pub atomicLatency
	rx := MonotonicClock()
	for b.Loop() {
		tx := MonotonicClock()
		b := h.Record(uint64(max(tx-rx, 0)), BatchSize)
		pub.store(&h, 1<<b)
		rx = tx
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*BatchSize), "ns/packet")
}
