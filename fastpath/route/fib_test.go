package route

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
)

// TestFIBMatchesReference builds random route sets (1, 100, 10 000
// routes, overlapping, every prefix length, every type, ECMP), compares
// every lookup with the naive reference at random addresses and at every
// prefix's edges, then deletes, replaces and adds routes at random and
// compares again.
func TestFIBMatchesReference(t *testing.T) {
	type tc struct {
		fam      string
		n        int
		rootBits int
	}
	var cases []tc
	for _, n := range []int{1, 100, 10000} {
		cases = append(cases, tc{"ipv4", n, 16}, tc{"ipv6", n, 16})
	}
	// DIR-24-8 (a 64 MiB root): the same code with another stride.
	cases = append(cases, tc{"ipv4", 1000, 24})
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s/%d/root%d", c.fam, c.n, c.rootBits), func(t *testing.T) {
			if (testing.Short() || raceEnabled) && (c.n > 1000 || c.rootBits == 24) {
				t.Skip("-short or -race: 1000 routes at most, and not the 64 MiB DIR-24-8 root (make unit runs them)")
			}
			is4 := c.fam == "ipv4"
			rng := rand.New(rand.NewPCG(uint64(c.n), uint64(c.rootBits)))
			g := newGen(rng, is4)
			tb := newTable(c.rootBits)
			m := newRef()
			for m.count() < c.n {
				r := g.route()
				err := tb.Add(r)
				if m.has(r.Prefix, r.Metric) {
					if !errors.Is(err, ErrExists) {
						t.Fatalf("Add(%s) over an existing route: %v, want ErrExists", r, err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("Add(%s): %v", r, err)
				}
				m.add(r)
			}
			probes := 20000
			checkAll(t, tb, m, rng, is4, probes)
			if got, want := tb.Len(), m.count(); got != want {
				t.Fatalf("Len = %d, want %d", got, want)
			}
			// Churn: delete, replace, add; check every so often.
			ops := max(c.n, 200)
			for i := range ops {
				switch rng.IntN(3) {
				case 0:
					p, metric, ok := m.pick(rng)
					if !ok {
						continue
					}
					if err := tb.Delete(p, metric); err != nil {
						t.Fatalf("Delete(%s, %d): %v", p, metric, err)
					}
					m.del(p, metric)
				case 1:
					r := g.route()
					if p, metric, ok := m.pick(rng); ok && rng.IntN(2) == 0 {
						r.Prefix, r.Metric = p, metric
					}
					if err := tb.Replace(r); err != nil {
						t.Fatalf("Replace(%s): %v", r, err)
					}
					m.add(r)
				default:
					r := g.route()
					if m.has(r.Prefix, r.Metric) {
						continue
					}
					if err := tb.Add(r); err != nil {
						t.Fatalf("Add(%s): %v", r, err)
					}
					m.add(r)
				}
				if i%(ops/10) == 0 {
					checkAll(t, tb, m, rng, is4, 200)
				}
			}
			checkAll(t, tb, m, rng, is4, probes)
			// Delete everything: every lookup must then miss.
			for p, ms := range m.routes {
				for metric := range ms {
					if err := tb.Delete(p, metric); err != nil {
						t.Fatalf("Delete(%s, %d): %v", p, metric, err)
					}
				}
			}
			m = newRef()
			checkAll(t, tb, m, rng, is4, 1000)
			if s := tb.Stats(); s.Prefixes4+s.Prefixes6 != 0 {
				t.Fatalf("empty table's stats: %+v", s)
			}
		})
	}
}

func (m *ref) count() int {
	n := 0
	for _, rs := range m.routes {
		n += len(rs)
	}
	return n
}

// pick returns a random route of the reference.
func (m *ref) pick(rng *rand.Rand) (netip.Prefix, uint32, bool) {
	if len(m.routes) == 0 {
		return netip.Prefix{}, 0, false
	}
	i := rng.IntN(len(m.routes))
	for p, ms := range m.routes {
		if i > 0 {
			i--
			continue
		}
		for metric := range ms {
			return p, metric, true
		}
	}
	panic("unreachable")
}

// TestFIBRebuild churns enough plies that the IPv4 arena is rebuilt, and
// checks the answers and that the memory came back.
func TestFIBRebuild(t *testing.T) {
	tb := NewTable()
	m := newRef()
	rng := rand.New(rand.NewPCG(7, 7))
	def := Route{Prefix: netip.MustParsePrefix("0.0.0.0/0"), NextHops: []NextHop{{Port: 1, Gateway: netip.MustParseAddr("192.0.2.1")}}}
	if err := tb.Add(def); err != nil {
		t.Fatal(err)
	}
	m.add(def)
	before := tb.Stats().Bytes4
	var added []netip.Prefix
	for i := range 2000 {
		// One /24 per /16, each needing its own ply.
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(i >> 8), byte(i), 7, 0}), 24)
		r := Route{Prefix: p, NextHops: []NextHop{{Port: uint16(i % 4)}}}
		if err := tb.Add(r); err != nil {
			t.Fatal(err)
		}
		m.add(r)
		added = append(added, p)
	}
	grown := tb.Stats().Bytes4
	checkAll(t, tb, m, rng, true, 2000)
	for _, p := range added {
		if err := tb.Delete(p, 0); err != nil {
			t.Fatal(err)
		}
		m.del(p, 0)
	}
	checkAll(t, tb, m, rng, true, 2000)
	after := tb.Stats().Bytes4
	t.Logf("IPv4 FIB bytes: %d with the default route, %d with 2000 /24s, %d after deleting them", before, grown, after)
	if after >= grown/2 {
		t.Fatalf("arena not rebuilt: %d bytes after deleting, %d before", after, grown)
	}
}

// TestECMP checks the spread of a weighted group (each next hop's share
// of random hashes within 2 % of its weight's share) and that a flow
// keeps its next hop across Views and across changes to other routes,
// rebuilds of the arena included.
func TestECMP(t *testing.T) {
	for _, fam := range []string{"ipv4", "ipv6"} {
		t.Run(fam, func(t *testing.T) {
			is4 := fam == "ipv4"
			p := netip.MustParsePrefix("198.51.100.0/24")
			dst := netip.MustParseAddr("198.51.100.9")
			if !is4 {
				p = netip.MustParsePrefix("2001:db8:1::/48")
				dst = netip.MustParseAddr("2001:db8:1::9")
			}
			hops := []NextHop{
				{Port: 1, Gateway: netip.MustParseAddr("10.0.0.1"), Weight: 1},
				{Port: 2, Gateway: netip.MustParseAddr("10.0.0.2"), Weight: 2},
				{Port: 3, Gateway: netip.MustParseAddr("fe80::3"), Weight: 3},
				{Port: 4, Weight: 4},
			}
			tb := NewTable()
			if err := tb.Add(Route{Prefix: p, NextHops: hops}); err != nil {
				t.Fatal(err)
			}
			lookup := func(v View, h uint32) NextHop {
				var r Result
				if is4 {
					r = v.Lookup4(dst.As4(), h)
				} else {
					r = v.Lookup6(dst.As16(), h)
				}
				if r.Type != Unicast {
					t.Fatalf("lookup %s: %s", dst, r.Type)
				}
				return hopOf(v.Hop(r))
			}
			rng := rand.New(rand.NewPCG(1, 2))
			const n = 200000
			hashes := make([]uint32, n)
			first := make([]NextHop, n)
			count := map[uint16]int{}
			v := tb.FIB().View()
			for i := range hashes {
				hashes[i] = rng.Uint32()
				first[i] = lookup(v, hashes[i])
				count[first[i].Port]++
			}
			for _, h := range hops {
				share := float64(count[h.Port]) / n
				want := float64(h.Weight) / 10
				if share < want-0.02 || share > want+0.02 {
					t.Errorf("next hop %s: %.3f of flows, want %.3f", h, share, want)
				}
			}
			// Other routes come and go (enough to rebuild the IPv4 arena).
			g := newGen(rng, is4)
			for range 3000 {
				r := g.route()
				if r.Prefix.Overlaps(p) {
					continue
				}
				if err := tb.Replace(r); err != nil {
					t.Fatal(err)
				}
				if rng.IntN(2) == 0 {
					if err := tb.Delete(r.Prefix, r.Metric); err != nil {
						t.Fatal(err)
					}
				}
			}
			v2 := tb.FIB().View()
			for i, h := range hashes {
				if got := lookup(v2, h); got != first[i] {
					t.Fatalf("hash %#x: next hop %s after other routes changed, was %s", h, got, first[i])
				}
			}
			// The same group installed again (a replace with equal
			// contents, then a metric change) keeps the mapping.
			if err := tb.Add(Route{Prefix: p, Metric: 5, NextHops: hops}); err != nil {
				t.Fatal(err)
			}
			if err := tb.Delete(p, 0); err != nil {
				t.Fatal(err)
			}
			v3 := tb.FIB().View()
			for i, h := range hashes[:1000] {
				if got := lookup(v3, h); got != first[i] {
					t.Fatalf("hash %#x: next hop %s after the route moved to metric 5, was %s", h, got, first[i])
				}
			}
		})
	}
}

// TestBoundsMatchKernel pins upperBounds to fib_rebalance's arithmetic for
// a few groups worked out by hand.
func TestBoundsMatchKernel(t *testing.T) {
	for _, c := range []struct {
		weights []uint16
		want    []uint32
	}{
		{[]uint16{1}, []uint32{1<<31 - 1}},
		{[]uint16{1, 1}, []uint32{1<<30 - 1, 1<<31 - 1}},
		// 2^31/3 = 715827882.67 → 715827883 - 1; 2·2^31/3 = 1431655765.33 → 1431655765 - 1.
		{[]uint16{1, 1, 1}, []uint32{715827882, 1431655764, 1<<31 - 1}},
		{[]uint16{1, 3}, []uint32{1<<29 - 1, 1<<31 - 1}},
	} {
		hops := make([]NextHop, len(c.weights))
		for i, w := range c.weights {
			hops[i] = NextHop{Port: uint16(i), Weight: w}
		}
		got := upperBounds(hops)
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("weights %v: bounds %v, want %v", c.weights, got, c.want)
				break
			}
		}
	}
}

// TestLookupAllocs asserts that lookups and reading the hop allocate
// nothing.
func TestLookupAllocs(t *testing.T) {
	tb := NewTable()
	for _, s := range []string{"10.0.0.0/8", "10.1.2.0/24", "10.1.2.128/25", "2001:db8::/32", "2001:db8:1:2::/64"} {
		err := tb.Add(Route{Prefix: netip.MustParsePrefix(s), NextHops: []NextHop{
			{Port: 1, Gateway: netip.MustParseAddr("192.0.2.1")},
			{Port: 2, Gateway: netip.MustParseAddr("fe80::2")},
		}})
		if err != nil {
			t.Fatal(err)
		}
	}
	f := tb.FIB()
	d4 := netip.MustParseAddr("10.1.2.200").As4()
	d6 := netip.MustParseAddr("2001:db8:1:2::9").As16()
	var sink Hop
	dsts := make([][4]byte, 64)
	hashes := make([]uint32, 64)
	out := make([]Result, 64)
	for i := range dsts {
		dsts[i], hashes[i] = d4, uint32(i)*0x9e3779b9
	}
	allocs := testing.AllocsPerRun(1000, func() {
		v := f.View()
		for h := range uint32(64) {
			sink = v.Hop(v.Lookup4(d4, h*0x9e3779b9))
			sink = v.Hop(v.Lookup6(d6, h*0x9e3779b9))
		}
		v.Lookup4Batch(dsts, hashes, out)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per batch of lookups, want 0", allocs)
	}
	if sink.Port == 0 {
		t.Fatal("lookups found no next hop")
	}
}

// TestZeroView answers NoRoute.
func TestZeroView(t *testing.T) {
	var v View
	if r := v.Lookup4([4]byte{1, 2, 3, 4}, 0); r != (Result{}) {
		t.Fatalf("zero View Lookup4: %+v", r)
	}
	if r := v.Lookup6([16]byte{1}, 0); r != (Result{}) {
		t.Fatalf("zero View Lookup6: %+v", r)
	}
	out := []Result{{NextHop: 9}}
	v.Lookup4Batch([][4]byte{{1, 2, 3, 4}}, []uint32{0}, out)
	if out[0] != (Result{}) {
		t.Fatalf("zero View Lookup4Batch: %+v", out[0])
	}
	if h := v.Hop(Result{}); h != (Hop{}) {
		t.Fatalf("zero View Hop: %+v", h)
	}
}
