package prefetch

import (
	"testing"
	"unsafe"
)

// TestLineAnyAddress: a prefetch of any address, mapped or not, returns
// and changes nothing.
func TestLineAnyAddress(t *testing.T) {
	b := []byte{1, 2, 3}
	Line(unsafe.Pointer(&b[0]))
	Line(nil)
	line(^uintptr(0) &^ 63)
	if b[0] != 1 || b[1] != 2 || b[2] != 3 {
		t.Fatalf("prefetch changed memory: %v", b)
	}
}

// BenchmarkRandomReads is reads of one word from each of 64 random
// lines of a 256 MiB array, each followed by work that depends on it
// (as a lookup's compare and update), without and with a prefetch pass
// over the 64 before the reads. Plain, the work fills the CPU's window
// and the misses come one after another.
func BenchmarkRandomReads(b *testing.B) {
	const size = 256 << 20
	mem := make([]uint64, size/8)
	for i := range mem {
		mem[i] = uint64(i) // every page mapped before the timing
	}
	idx := make([]int, 1<<16)
	x := uint64(88172645463325252)
	for i := range idx {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		idx[i] = int(x % uint64(len(mem)))
	}
	for _, pre := range []bool{false, true} {
		name := "plain"
		if pre {
			name = "prefetched"
		}
		b.Run(name, func(b *testing.B) {
			var sum uint64
			n := 0
			for b.Loop() {
				batch := idx[n%len(idx):][:64]
				if pre {
					for _, i := range batch {
						Line(unsafe.Pointer(&mem[i]))
					}
				}
				for _, i := range batch {
					sum = work(sum ^ mem[i])
				}
				n += 64
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/read")
			_ = sum
		})
	}
}

// work is a few hundred instructions that depend on x.
func work(x uint64) uint64 {
	for range 64 {
		x ^= x >> 29
		x *= 0xbf58476d1ce4e5b9
	}
	return x
}
