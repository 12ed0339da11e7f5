package xdp

import (
	"testing"
	"unsafe"
)

// ringPair returns the two sides of one in-memory ring of size entries:
// the producer's and the consumer's views share indices and entries, as
// the process and the kernel share a mapped ring.
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

func TestDescLayout(t *testing.T) {
	if s := unsafe.Sizeof(Desc{}); s != 16 {
		t.Errorf("sizeof(Desc) = %d, want 16 (struct xdp_desc)", s)
	}
}

// TestRingWrapsAndStopsWhenFull pushes batches of odd sizes through a
// small ring across many wraps of the 32-bit indices' low bits and checks
// order, fullness and emptiness.
func TestRingWrapsAndStopsWhenFull(t *testing.T) {
	prod, cons := addrRingPair(8)
	in := make([]uint64, 5)
	out := make([]uint64, 5)
	var next, want uint64
	for round := range 1000 {
		for i := range in {
			in[i] = next + uint64(i)
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
			if v != want {
				t.Fatalf("round %d: consumed %d, want %d", round, v, want)
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
			if v != want {
				t.Fatalf("drain: consumed %d, want %d", v, want)
			}
			want++
		}
	}
	if want != next || prod.occupancy() != 0 {
		t.Errorf("consumed %d of %d, occupancy %d", want, next, prod.occupancy())
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
