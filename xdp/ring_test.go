package xdp

import (
	"fmt"
	"strings"
	"testing"
	"unsafe"
)

// addrRingPair and descRingPair return the two sides of one in-memory
// ring of size entries: the producer's and the consumer's views share
// indices and entries, as the process and the kernel share a mapped ring.
func addrRingPair(size uint32) (prod, cons *addrRing) {
	idx := make([]uint32, 3) // producer, consumer, flags
	entries := make([]uint64, size)
	mk := func() *addrRing {
		return &addrRing{ring: ring{producer: &idx[0], consumer: &idx[1], flags: &idx[2], size: size, mask: size - 1}, addrs: entries}
	}
	prod, cons = mk(), mk()
	prod.initProducer()
	cons.initConsumer()
	return prod, cons
}

func descRingPair(size uint32) (prod, cons *descRing) {
	idx := make([]uint32, 3)
	entries := make([]Desc, size)
	mk := func() *descRing {
		return &descRing{ring: ring{producer: &idx[0], consumer: &idx[1], flags: &idx[2], size: size, mask: size - 1}, descs: entries}
	}
	prod, cons = mk(), mk()
	prod.initProducer()
	cons.initConsumer()
	return prod, cons
}

// ringSide is what the wrap test needs of either side of a ring.
type ringSide[T entry] interface {
	produce([]T) int
	consume([]T) int
	occupancy() uint32
}

func TestDescLayout(t *testing.T) {
	if s := unsafe.Sizeof(Desc{}); s != 16 {
		t.Errorf("sizeof(Desc) = %d, want 16 (struct xdp_desc)", s)
	}
}

// TestRingWrapsAndStopsWhenFull pushes batches of odd sizes through a
// small ring of each kind across many wraps of the 32-bit indices' low
// bits and checks order, fullness and emptiness.
func TestRingWrapsAndStopsWhenFull(t *testing.T) {
	t.Run("addr", func(t *testing.T) {
		prod, cons := addrRingPair(8)
		testRingWraps(t, prod, cons, func(v uint64) uint64 { return v })
	})
	t.Run("desc", func(t *testing.T) {
		prod, cons := descRingPair(8)
		testRingWraps(t, prod, cons, func(v uint64) Desc {
			return Desc{Addr: v, Len: uint32(v) ^ 0x5a5a, Options: uint32(v >> 3)}
		})
	})
}

// testRingWraps runs the wrap test on one ring of 8 entries; mk makes the
// entry for sequence number v, so entries are checked whole.
func testRingWraps[T entry](t *testing.T, prod, cons ringSide[T], mk func(uint64) T) {
	in := make([]T, 5)
	out := make([]T, 5)
	var next, want uint64
	for round := range 1000 {
		for i := range in {
			in[i] = mk(next + uint64(i))
		}
		n := prod.produce(in[:1+round%5])
		next += uint64(n)
		if occ := prod.occupancy(); occ != uint32(next-want) {
			t.Fatalf("round %d: occupancy %d, want %d", round, occ, next-want)
		}
		if occ := prod.occupancy(); occ == 8 && prod.produce(in[:1]) != 0 {
			t.Fatalf("round %d: produced into a full ring", round)
		}
		m := cons.consume(out[:1+round%3])
		for _, v := range out[:m] {
			if v != mk(want) {
				t.Fatalf("round %d: consumed %v, want %v", round, v, mk(want))
			}
			want++
		}
	}
	for {
		m := cons.consume(out)
		if m == 0 {
			break
		}
		for _, v := range out[:m] {
			if v != mk(want) {
				t.Fatalf("drain: consumed %v, want %v", v, mk(want))
			}
			want++
		}
	}
	if want != next || prod.occupancy() != 0 {
		t.Errorf("consumed %d of %d, occupancy %d", want, next, prod.occupancy())
	}
	if cons.consume(out) != 0 {
		t.Error("consumed from an empty ring")
	}
}

// TestRingBatchesDoNotAllocate checks that produce and consume of a batch
// that wraps around the end of the ring allocate nothing.
func TestRingBatchesDoNotAllocate(t *testing.T) {
	dp, dc := descRingPair(256)
	ap, ac := addrRingPair(256)
	descs := make([]Desc, 48) // 256 is no multiple of 48: batches wrap
	addrs := make([]uint64, 48)
	allocs := testing.AllocsPerRun(100, func() {
		if dp.produce(descs) != len(descs) || dc.consume(descs) != len(descs) ||
			ap.produce(addrs) != len(addrs) || ac.consume(addrs) != len(addrs) {
			panic("ring lost a batch")
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per batch", allocs)
	}
}

// BenchmarkRingsNoIO measures the ring operations alone, per descriptor:
// a batch of 64 produced on a TX-like ring and consumed on the other side,
// and 64 addresses through a fill/completion-like ring.
func BenchmarkRingsNoIO(b *testing.B) {
	dp, dc := descRingPair(2048)
	ap, ac := addrRingPair(2048)
	descs := make([]Desc, 64)
	addrs := make([]uint64, 64)
	b.ReportAllocs()
	for b.Loop() {
		dp.produce(descs)
		dc.consume(descs)
		ap.produce(addrs)
		ac.consume(addrs)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*64), "ns/desc")
}

func FuzzParseBindMode(f *testing.F) {
	for _, s := range []string{"auto", "zerocopy", "copy", "", "Copy", "zero-copy"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseBindMode(s)
		if err != nil {
			return
		}
		if m.String() != s {
			t.Errorf("ParseBindMode(%q) = %v, which prints as %q", s, m, m.String())
		}
	})
}

// TestUmemCheckFrees checks that with CheckFrees a frame freed twice, or
// an address past the UMEM, makes Free panic, while frames that go round
// through Alloc and Free (by any address inside the chunk) do not.
func TestUmemCheckFrees(t *testing.T) {
	u, err := NewUmem(UmemConfig{FrameCount: 130, FrameSize: 2048, CheckFrees: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { u.Close() })
	addrs := make([]uint64, 130)
	for range 3 {
		if n := u.Alloc(addrs); n != 130 {
			t.Fatalf("Alloc took %d of 130 frames", n)
		}
		for _, a := range addrs {
			u.Free(a + 256) // a received frame's address is past the headroom
		}
	}
	if u.FreeCount() != 130 {
		t.Fatalf("FreeCount %d, want 130", u.FreeCount())
	}
	u.Alloc(addrs[:2])
	u.Free(addrs[1])
	free := uint64(0) // a frame on the free list: not addrs[0]
	if addrs[0] == 0 {
		free = 2048
	}
	for _, c := range []struct {
		name string
		addr uint64
		want string
	}{
		{"double free", addrs[1] + 100, "double free"},
		{"frame never taken", free, "double free"},
		{"past the UMEM", 130 * 2048, "outside the UMEM"},
		{"far past the UMEM", 1 << 40, "outside the UMEM"},
	} {
		got := func() (msg string) {
			defer func() { msg, _ = recover().(string) }()
			u.Free(c.addr)
			return ""
		}()
		if !strings.Contains(got, c.want) {
			t.Errorf("%s: Free(%#x) panicked with %q, want %q", c.name, c.addr, got, c.want)
		}
	}
	if u.FreeCount() != 129 {
		t.Errorf("FreeCount %d after the rejected frees, want 129", u.FreeCount())
	}
	u.Free(addrs[0])
	if u.FreeCount() != 130 {
		t.Errorf("FreeCount %d, want 130", u.FreeCount())
	}
}

// TestUmemAllocFreeDoNotAllocate checks Alloc and Free with and without
// CheckFrees.
func TestUmemAllocFreeDoNotAllocate(t *testing.T) {
	for _, check := range []bool{false, true} {
		u, err := NewUmem(UmemConfig{FrameCount: 256, CheckFrees: check})
		if err != nil {
			t.Fatal(err)
		}
		addrs := make([]uint64, 64)
		allocs := testing.AllocsPerRun(100, func() {
			for _, a := range addrs[:u.Alloc(addrs)] {
				u.Free(a)
			}
		})
		if allocs != 0 {
			t.Errorf("CheckFrees %v: %v allocations per batch", check, allocs)
		}
		u.Close()
	}
}

// BenchmarkUmemAllocFree measures Alloc and Free of a batch of 64 frames,
// per frame, with and without CheckFrees.
func BenchmarkUmemAllocFree(b *testing.B) {
	for _, check := range []bool{false, true} {
		b.Run(fmt.Sprintf("CheckFrees=%v", check), func(b *testing.B) {
			u, err := NewUmem(UmemConfig{FrameCount: 4096, CheckFrees: check})
			if err != nil {
				b.Fatal(err)
			}
			defer u.Close()
			addrs := make([]uint64, 64)
			b.ReportAllocs()
			for b.Loop() {
				for _, a := range addrs[:u.Alloc(addrs)] {
					u.Free(a)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*64), "ns/frame")
		})
	}
}
