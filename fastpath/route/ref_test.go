package route

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
)

// ref is the naive reference: every route kept as given; a lookup tries
// every prefix length from the longest down and takes the lowest metric.
type ref struct {
	routes map[netip.Prefix]map[uint32]Route
}

func newRef() *ref { return &ref{routes: make(map[netip.Prefix]map[uint32]Route)} }

func (m *ref) add(r Route) {
	if r.Type == NoRoute {
		r.Type = Unicast
	}
	if m.routes[r.Prefix] == nil {
		m.routes[r.Prefix] = make(map[uint32]Route)
	}
	m.routes[r.Prefix][r.Metric] = r
}

func (m *ref) del(p netip.Prefix, metric uint32) bool {
	if _, ok := m.routes[p][metric]; !ok {
		return false
	}
	delete(m.routes[p], metric)
	if len(m.routes[p]) == 0 {
		delete(m.routes, p)
	}
	return true
}

func (m *ref) has(p netip.Prefix, metric uint32) bool {
	_, ok := m.routes[p][metric]
	return ok
}

// best returns the winning route for addr, if any.
func (m *ref) best(addr netip.Addr) (Route, bool) {
	for l := addr.BitLen(); l >= 0; l-- {
		rs := m.routes[netip.PrefixFrom(addr, l).Masked()]
		if len(rs) == 0 {
			continue
		}
		metrics := make([]uint32, 0, len(rs))
		for k := range rs {
			metrics = append(metrics, k)
		}
		return rs[slices.Min(metrics)], true
	}
	return Route{}, false
}

// expect returns the type and hop the FIB must answer for addr and hash.
func (m *ref) expect(addr netip.Addr, hash uint32) (Type, NextHop) {
	r, ok := m.best(addr)
	if !ok {
		return NoRoute, NextHop{}
	}
	if len(r.NextHops) == 0 {
		return r.Type, NextHop{}
	}
	return r.Type, pickRef(r.NextHops, hash)
}

// pickRef is hash-threshold computed another way: the first next hop
// whose share of [0, 2^31) by cumulative weight, rounded to the nearest
// integer, lies above hash>>1.
func pickRef(hops []NextHop, hash uint32) NextHop {
	var total uint64
	for _, h := range hops {
		total += uint64(h.weight())
	}
	h31 := uint64(hash >> 1)
	var cum uint64
	for _, h := range hops {
		cum += uint64(h.weight())
		limit := (2*(cum<<31) + total) / (2 * total) // round(cum·2^31/total)
		if h31 < limit {
			return h
		}
	}
	return hops[len(hops)-1]
}

// hopOf turns a Hop back into the NextHop it came from (weight aside).
func hopOf(h Hop) NextHop {
	return NextHop{Port: h.Port, Gateway: h.Addr()}
}

// check compares the FIB's answer for addr and hash with the reference.
func check(t testing.TB, v View, m *ref, addr netip.Addr, hash uint32) {
	t.Helper()
	var r Result
	if addr.Is4() {
		r = v.Lookup4(addr.As4(), hash)
	} else {
		r = v.Lookup6(addr.As16(), hash)
	}
	wt, wh := m.expect(addr, hash)
	gh := hopOf(v.Hop(r))
	wh.Weight = 0
	if r.Type != wt || gh != wh {
		best, _ := m.best(addr)
		t.Fatalf("lookup %s hash %#x: got %s %+v, want %s %+v (reference route: %s)", addr, hash, r.Type, gh, wt, wh, best)
	}
}

// checkAll compares the FIB with the reference at n random addresses of
// the family and at the edges of every prefix (first, last, one before,
// one after), with random hashes.
func checkAll(t testing.TB, tb *Table, m *ref, rng *rand.Rand, is4 bool, n int) {
	t.Helper()
	v := tb.FIB().View()
	var dsts [][4]byte
	var hashes []uint32
	for range n {
		a, h := randAddr(rng, is4), rng.Uint32()
		check(t, v, m, a, h)
		if is4 {
			dsts, hashes = append(dsts, a.As4()), append(hashes, h)
		}
	}
	// The batch lookup answers as Lookup4 does, one by one.
	out := make([]Result, len(dsts)+1)
	out[len(dsts)] = Result{NextHop: 12345}
	v.Lookup4Batch(dsts, hashes, out)
	for i, d := range dsts {
		if want := v.Lookup4(d, hashes[i]); out[i] != want {
			t.Fatalf("Lookup4Batch: %v hash %#x: %+v, Lookup4 says %+v", netip.AddrFrom4(d), hashes[i], out[i], want)
		}
	}
	if out[len(dsts)].NextHop != 12345 {
		t.Fatal("Lookup4Batch wrote past len(dsts)")
	}
	for p := range m.routes {
		if p.Addr().Is4() != is4 {
			continue
		}
		first, last := p.Addr(), lastAddr(p)
		for _, a := range []netip.Addr{first, last, first.Prev(), last.Next()} {
			if a.IsValid() {
				check(t, v, m, a, rng.Uint32())
			}
		}
	}
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func randAddr(rng *rand.Rand, is4 bool) netip.Addr {
	if is4 {
		var b [4]byte
		x := rng.Uint32()
		b[0], b[1], b[2], b[3] = byte(x>>24), byte(x>>16), byte(x>>8), byte(x)
		return netip.AddrFrom4(b)
	}
	var b [16]byte
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return netip.AddrFrom16(b)
}

// gen makes random routes that overlap: addresses near a few bases,
// every prefix length, every type, metrics from a small set, ECMP groups
// with weights.
type gen struct {
	rng   *rand.Rand
	is4   bool
	bases []netip.Addr
}

func newGen(rng *rand.Rand, is4 bool) *gen {
	g := &gen{rng: rng, is4: is4}
	for range 6 {
		g.bases = append(g.bases, randAddr(rng, is4))
	}
	return g
}

func (g *gen) prefix() netip.Prefix {
	bits := 32
	if !g.is4 {
		bits = 128
	}
	var a netip.Addr
	if g.rng.IntN(4) == 0 {
		a = randAddr(g.rng, g.is4)
	} else {
		// A base with some of its low bits changed, so prefixes nest.
		b := g.bases[g.rng.IntN(len(g.bases))].AsSlice()
		keep := g.rng.IntN(bits + 1)
		for i := keep; i < bits; i++ {
			if g.rng.IntN(2) == 0 {
				b[i/8] ^= 0x80 >> (i % 8)
			}
		}
		a, _ = netip.AddrFromSlice(b)
	}
	var l int
	switch g.rng.IntN(8) {
	case 0:
		l = 0
	case 1:
		l = bits
	default:
		l = g.rng.IntN(bits + 1)
	}
	return netip.PrefixFrom(a, l).Masked()
}

func (g *gen) hop() NextHop {
	h := NextHop{Port: uint16(g.rng.IntN(8))}
	switch g.rng.IntN(3) {
	case 0:
	case 1:
		h.Gateway = netip.AddrFrom4([4]byte{10, 0, byte(g.rng.IntN(4)), byte(1 + g.rng.IntN(200))})
	default:
		h.Gateway = netip.AddrFrom16([16]byte{0xfe, 0x80, 15: byte(1 + g.rng.IntN(200))})
	}
	return h
}

func (g *gen) route() Route {
	r := Route{Prefix: g.prefix(), Metric: uint32(g.rng.IntN(3) * 10)}
	switch g.rng.IntN(10) {
	case 0:
		r.Type = Local
		if g.rng.IntN(2) == 0 {
			r.NextHops = []NextHop{{Port: uint16(g.rng.IntN(8))}}
		}
	case 1:
		r.Type = Blackhole
	case 2:
		r.Type = Unreachable
	case 3:
		r.Type = Prohibit
	default:
		r.Type = Unicast
		n := 1
		if g.rng.IntN(3) == 0 {
			n = 2 + g.rng.IntN(4)
		}
		for len(r.NextHops) < n {
			h := g.hop()
			if g.rng.IntN(2) == 0 {
				h.Weight = uint16(1 + g.rng.IntN(MaxWeight))
			}
			if !slices.ContainsFunc(r.NextHops, func(o NextHop) bool { return o.Port == h.Port && o.Gateway == h.Gateway }) {
				r.NextHops = append(r.NextHops, h)
			}
		}
	}
	return r
}

func (m *ref) String() string { return fmt.Sprintf("ref(%d prefixes)", len(m.routes)) }
