package neigh

import (
	"testing"
	"time"
	"unsafe"
)

// TestNoAllocs checks the per-packet calls allocate nothing: Resolve on a
// hit (REACHABLE) and on a miss (INCOMPLETE: hold), Hold, Poll releasing,
// Confirm, Tick.
func TestNoAllocs(t *testing.T) {
	e := newEnv(t, nil)
	e.reachableAt(ip4, macA)
	e.reachableAt(ip6, macB)
	miss := ip16("10.1.0.77")
	e.resolve(miss)
	now := e.clock()
	dropped := make([]uint64, 0, 8)
	events := make([]Event, 64)
	cases := []struct {
		name string
		f    func()
	}{
		{"Resolve hit IPv4", func() { e.w.Resolve(1, ip4, now) }},
		{"Resolve hit IPv6", func() { e.w.Resolve(1, ip6, now) }},
		{"Resolve miss (hold)", func() { e.w.Resolve(1, miss, now) }},
		{"Resolve multicast", func() { e.w.Resolve(1, ip16("224.0.0.5"), now) }},
		{"Hold, Confirm, Poll release", func() {
			dropped, _ = e.w.Hold(1, miss, 1, 64, dropped[:0])
			e.tab.Confirm(1, miss, macA, ARPReply|Unicast, now)
			e.w.Poll(now, events)
		}},
		{"Confirm", func() { e.tab.Confirm(1, ip4, macA, ARPReply|Unicast, now) }},
		{"Tick", func() { e.tab.Tick(now) }},
		{"Poll idle", func() { e.w.Poll(now, events) }},
	}
	for _, c := range cases {
		if a := testing.AllocsPerRun(200, c.f); a != 0 {
			t.Errorf("%s: %v allocations", c.name, a)
		}
	}
	// A STALE → DELAY write on the path allocates nothing either.
	e.at(40 * time.Second)
	if a := testing.AllocsPerRun(1, func() { e.w.Resolve(1, ip4, e.clock()) }); a != 0 {
		t.Errorf("Resolve STALE: %v allocations", a)
	}
}

func BenchmarkResolveHit(b *testing.B) {
	for _, c := range []struct {
		name string
		ip   [16]byte
	}{{"IPv4", ip4}, {"IPv6", ip6}} {
		b.Run(c.name, func(b *testing.B) {
			e := newEnv(&testing.T{}, nil)
			e.reachableAt(c.ip, macA)
			now := e.clock()
			b.ReportAllocs()
			for b.Loop() {
				e.w.Resolve(1, c.ip, now)
			}
		})
	}
}

// BenchmarkResolveHitTable: a lookup among 1000 REACHABLE neighbours, in
// turn (cache misses included).
func BenchmarkResolveHitTable(b *testing.B) {
	e := newEnv(&testing.T{}, nil)
	ips := make([][16]byte, 1000)
	for i := range ips {
		ips[i] = v4(i)
		e.reachableAt(ips[i], macA)
	}
	now := e.clock()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		e.w.Resolve(1, ips[i], now)
		i++
		if i == len(ips) {
			i = 0
		}
	}
}

func BenchmarkResolveHitParallel(b *testing.B) {
	tab, _ := New(Config{Params: DefaultParams(), Rand: fixedRand})
	w0, _ := tab.NewWorker(16)
	w0.Resolve(1, ip4, 0)
	tab.Confirm(1, ip4, macA, ARPReply|Unicast, 0)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		w, _ := tab.NewWorker(16)
		for pb.Next() {
			w.Resolve(1, ip4, 0)
		}
	})
}

// BenchmarkResolveMiss: a packet for an INCOMPLETE neighbour (held).
func BenchmarkResolveMiss(b *testing.B) {
	e := newEnv(&testing.T{}, nil)
	e.resolve(ip4)
	now := e.clock()
	b.ReportAllocs()
	for b.Loop() {
		e.w.Resolve(1, ip4, now)
	}
}

func BenchmarkConfirm(b *testing.B) {
	e := newEnv(&testing.T{}, nil)
	e.reachableAt(ip4, macA)
	now := e.clock()
	b.ReportAllocs()
	for b.Loop() {
		e.tab.Confirm(1, ip4, macA, ARPReply|Unicast, now)
	}
}

func BenchmarkPollIdle(b *testing.B) {
	e := newEnv(&testing.T{}, nil)
	e.resolve(ip4)
	e.w.Hold(1, ip4, 1, 64, nil)
	ev := make([]Event, 64)
	e.w.Poll(e.clock(), ev)
	now := e.clock()
	b.ReportAllocs()
	for b.Loop() {
		e.w.Poll(now, ev)
	}
}

func TestSlotIsACacheLine(t *testing.T) {
	if n := unsafe.Sizeof(slot{}); n != 64 {
		t.Fatalf("slot is %d bytes, want 64", n)
	}
}
