package route

import (
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestConcurrentLookups runs lookups on several goroutines while one
// writer applies a stream of adds, replaces and deletes (with arena growth
// and rebuilds). Each lookup is checked against the reference answers of
// the states the table went through while it ran: a seqlock-style counter,
// odd while a change is applied, brackets the states a lookup may see.
// Run it with -race.
func TestConcurrentLookups(t *testing.T) {
	for _, fam := range []string{"ipv4", "ipv6"} {
		t.Run(fam, func(t *testing.T) { testConcurrent(t, fam == "ipv4") })
	}
}

type op struct {
	del   bool
	route Route
}

type answer struct {
	typ Type
	hop NextHop
}

func testConcurrent(t *testing.T, is4 bool) {
	// Rebuild the arenas often, while lookups run.
	defer func(n int) { rebuildMinWords = n }(rebuildMinWords)
	rebuildMinWords = 512
	rng := rand.New(rand.NewPCG(42, 43))
	g := newGen(rng, is4)
	tb := NewTable()
	m := newRef()
	for range 300 {
		r := g.route()
		if m.has(r.Prefix, r.Metric) {
			continue
		}
		if err := tb.Add(r); err != nil {
			t.Fatal(err)
		}
		m.add(r)
	}
	// Probes: edges of prefixes near the bases and random addresses.
	type probe struct {
		addr netip.Addr
		hash uint32
	}
	var probes []probe
	for range 48 {
		p := g.prefix()
		probes = append(probes, probe{p.Addr(), rng.Uint32()}, probe{lastAddr(p), rng.Uint32()})
	}
	for range 16 {
		probes = append(probes, probe{randAddr(rng, is4), rng.Uint32()})
	}
	// The stream of changes, and the answers of every state.
	const states = 1500
	ops := make([]op, 0, states)
	expect := make([][]answer, 0, states+1)
	snap := func() []answer {
		a := make([]answer, len(probes))
		for i, p := range probes {
			typ, hop := m.expect(p.addr, p.hash)
			hop.Weight = 0
			a[i] = answer{typ, hop}
		}
		return a
	}
	expect = append(expect, snap())
	for len(ops) < states {
		if p, metric, ok := m.pick(rng); ok && rng.IntN(2) == 0 {
			ops = append(ops, op{del: true, route: Route{Prefix: p, Metric: metric}})
			m.del(p, metric)
		} else {
			r := g.route()
			ops = append(ops, op{route: r})
			m.add(r)
		}
		expect = append(expect, snap())
	}

	var seq atomic.Uint64 // 2k: state k; 2k+1: applying op k+1
	var done atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan string, 4)
	var lookups atomic.Int64
	for w := range 3 {
		wg.Go(func() {
			f := tb.FIB()
			i := w
			for !done.Load() {
				p := probes[i%len(probes)]
				i++
				s0 := seq.Load()
				v := f.View()
				var r Result
				if is4 {
					r = v.Lookup4(p.addr.As4(), p.hash)
				} else {
					r = v.Lookup6(p.addr.As16(), p.hash)
				}
				got := answer{r.Type, hopOf(v.Hop(r))}
				s1 := seq.Load()
				lo, hi := s0/2, (s1+1)/2
				ok := false
				for k := lo; k <= hi && !ok; k++ {
					ok = expect[k][(i-1)%len(probes)] == got
				}
				lookups.Add(1)
				if !ok {
					select {
					case errs <- p.addr.String() + ": answer of no state during the lookup: " + got.typ.String() + " " + got.hop.String():
					default:
					}
					return
				}
			}
		})
	}
	for _, o := range ops {
		seq.Add(1)
		var err error
		if o.del {
			err = tb.Delete(o.route.Prefix, o.route.Metric)
		} else {
			err = tb.Replace(o.route)
		}
		seq.Add(1)
		if err != nil {
			done.Store(true)
			wg.Wait()
			t.Fatal(err)
		}
	}
	done.Store(true)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	st := tb.Stats()
	t.Logf("%d lookups during %d changes, %d+%d rebuilds", lookups.Load(), len(ops), st.Rebuilds4, st.Rebuilds6)
	if st.Rebuilds4+st.Rebuilds6 == 0 {
		t.Error("no arena was rebuilt while lookups ran")
	}
}
