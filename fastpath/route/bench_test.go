package route

import (
	"math/rand/v2"
	"net/netip"
	"runtime"
	"sync"
	"testing"

	"github.com/gaissmai/bart"
)

// benchRoutes is the benchmarks' route set: n distinct prefixes with the
// spread of an Internet table (mostly /24 and shorter, a few longer), in
// unicast space, each via one of 16 gateways or an ECMP pair.
func benchRoutes(n int, is4 bool) []Route {
	rng := rand.New(rand.NewPCG(100, 200))
	// Prefix lengths and their shares (per mille), roughly as in BGP
	// tables (IPv4: ~60 % /24; IPv6: ~45 % /48).
	type share struct{ bits, permille int }
	dist := []share{{8, 2}, {12, 3}, {14, 5}, {16, 30}, {17, 10}, {18, 20}, {19, 35}, {20, 45}, {21, 45}, {22, 100}, {23, 90}, {24, 590}, {25, 5}, {26, 5}, {27, 5}, {28, 5}, {30, 3}, {32, 3}}
	if !is4 {
		dist = []share{{19, 5}, {20, 10}, {24, 10}, {28, 20}, {29, 60}, {32, 150}, {33, 10}, {34, 10}, {36, 40}, {40, 60}, {44, 70}, {46, 20}, {47, 20}, {48, 450}, {52, 10}, {56, 30}, {64, 20}, {128, 5}}
	}
	hops := make([]NextHop, 16)
	for i := range hops {
		hops[i] = NextHop{Port: uint16(i % 4), Gateway: netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)})}
	}
	seen := make(map[netip.Prefix]bool, n)
	out := make([]Route, 0, n)
	for len(out) < n {
		x := rng.IntN(1000)
		bits := dist[len(dist)-1].bits
		for _, s := range dist {
			if x < s.permille {
				bits = s.bits
				break
			}
			x -= s.permille
		}
		var a netip.Addr
		if is4 {
			v := 0x01000000 + rng.Uint32N(0xdf000000-0x01000000) // 1.0.0.0 to 223.255.255.255
			a = netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
		} else {
			var b [16]byte
			for i := range b {
				b[i] = byte(rng.Uint32())
			}
			b[0] = 0x20 | b[0]&0x1f // 2000::/3
			a = netip.AddrFrom16(b)
		}
		p := netip.PrefixFrom(a, bits).Masked()
		if seen[p] {
			continue
		}
		seen[p] = true
		r := Route{Prefix: p, NextHops: []NextHop{hops[rng.IntN(16)]}}
		if rng.IntN(10) == 0 {
			r.NextHops = append(r.NextHops, hops[(int(r.NextHops[0].Gateway.As4()[3])+rng.IntN(15))%16])
		}
		out = append(out, r)
	}
	return out
}

// benchDsts returns addresses to look up: uniformly random ones (IPv6: in
// 2000::/3) or ones inside random routes of rs.
func benchDsts(rs []Route, is4, matching bool) []netip.Addr {
	rng := rand.New(rand.NewPCG(300, 400))
	out := make([]netip.Addr, 1<<16)
	for i := range out {
		var a netip.Addr
		if matching {
			p := rs[rng.IntN(len(rs))].Prefix
			b := p.Addr().AsSlice()
			for j := p.Bits(); j < len(b)*8; j++ {
				if rng.IntN(2) == 0 {
					b[j/8] |= 0x80 >> (j % 8)
				}
			}
			a, _ = netip.AddrFromSlice(b)
		} else {
			a = randAddr(rng, is4)
			if !is4 {
				b := a.As16()
				b[0] = 0x20 | b[0]&0x1f
				a = netip.AddrFrom16(b)
			}
		}
		out[i] = a
	}
	return out
}

var benchTables = struct {
	sync.Mutex
	m map[string]*Table
}{m: map[string]*Table{}}

// benchTable returns the table of rs built with rootBits (built once per
// benchmark binary).
func benchTable(b *testing.B, name string, rs []Route, rootBits int) *Table {
	benchTables.Lock()
	defer benchTables.Unlock()
	if t := benchTables.m[name]; t != nil {
		return t
	}
	t := newTable(rootBits)
	for _, r := range rs {
		if err := t.Add(r); err != nil {
			b.Fatal(err)
		}
	}
	benchTables.m[name] = t
	return t
}

const benchN = 100000

// BenchmarkLookup4 compares, at 100 000 routes, the IPv4 FIB (16-8-8
// trie), the same trie with a 24-bit root (DIR-24-8), and bart's Table and
// Fast Lookup, for random destinations and for destinations inside the
// routes.
func BenchmarkLookup4(b *testing.B) {
	rs := benchRoutes(benchN, true)
	for _, dstKind := range []string{"random", "matching"} {
		dsts := benchDsts(rs, true, dstKind == "matching")
		d4 := make([][4]byte, len(dsts))
		for i, a := range dsts {
			d4[i] = a.As4()
		}
		for _, rb := range []struct {
			name string
			bits int
		}{{"mtrie16-8-8", 16}, {"dir24-8", 24}} {
			b.Run(rb.name+"/"+dstKind, func(b *testing.B) {
				v := benchTable(b, rb.name, rs, rb.bits).FIB().View()
				b.ResetTimer()
				var sink uint32
				for i := range b.N {
					r := v.Lookup4(d4[i&(1<<16-1)], uint32(i))
					sink += r.NextHop
				}
				benchSink = sink
			})
		}
		b.Run("mtrie16-8-8-batch64/"+dstKind, func(b *testing.B) {
			v := benchTable(b, "mtrie16-8-8", rs, 16).FIB().View()
			hashes := make([]uint32, 64)
			out := make([]Result, 64)
			b.ResetTimer()
			var sink uint32
			for i := 0; i < b.N; i += 64 {
				j := i & (1<<16 - 1)
				v.Lookup4Batch(d4[j:j+64], hashes, out)
				sink += out[0].NextHop
			}
			benchSink = sink
		})
		b.Run("bart.Table/"+dstKind, func(b *testing.B) {
			benchBart(b, &bart.Table[uint32]{}, rs, dsts)
		})
		b.Run("bart.Fast/"+dstKind, func(b *testing.B) {
			benchBart(b, &bart.Fast[uint32]{}, rs, dsts)
		})
	}
}

var benchSink uint32

type bartLike interface {
	Insert(netip.Prefix, uint32)
	Lookup(netip.Addr) (uint32, bool)
}

func benchBart(b *testing.B, t bartLike, rs []Route, dsts []netip.Addr) {
	for i, r := range rs {
		t.Insert(r.Prefix, uint32(i))
	}
	b.ResetTimer()
	var sink uint32
	for i := range b.N {
		v, _ := t.Lookup(dsts[i&(1<<16-1)])
		sink += v
	}
	benchSink = sink
}

// BenchmarkLookup6 measures the IPv6 FIB (bart.Table inside) at 100 000
// routes, and bart's Fast and Table for comparison.
func BenchmarkLookup6(b *testing.B) {
	rs := benchRoutes(benchN, false)
	for _, dstKind := range []string{"random", "matching"} {
		dsts := benchDsts(rs, false, dstKind == "matching")
		d16 := make([][16]byte, len(dsts))
		for i, a := range dsts {
			d16[i] = a.As16()
		}
		b.Run("fib/"+dstKind, func(b *testing.B) {
			v := benchTable(b, "v6", rs, defaultRootBits).FIB().View()
			b.ResetTimer()
			var sink uint32
			for i := range b.N {
				r := v.Lookup6(d16[i&(1<<16-1)], uint32(i))
				sink += r.NextHop
			}
			benchSink = sink
		})
		b.Run("bart.Fast/"+dstKind, func(b *testing.B) {
			benchBart(b, &bart.Fast[uint32]{}, rs, dsts)
		})
		b.Run("bart.Table/"+dstKind, func(b *testing.B) {
			benchBart(b, &bart.Table[uint32]{}, rs, dsts)
		})
	}
}

// BenchmarkUpdate measures adding and then deleting one route in a table
// of 100 000 (one op is the pair), while nothing reads.
func BenchmarkUpdate(b *testing.B) {
	for _, c := range []struct {
		name string
		is4  bool
		bits int
	}{{"ipv4/mtrie16-8-8", true, 16}, {"ipv4/dir24-8", true, 24}, {"ipv6", false, 16}} {
		b.Run(c.name, func(b *testing.B) {
			rs := benchRoutes(benchN+1024, c.is4)
			t := newTable(c.bits)
			for _, r := range rs[:benchN] {
				if err := t.Add(r); err != nil {
					b.Fatal(err)
				}
			}
			extra := rs[benchN:]
			b.ResetTimer()
			for i := range b.N {
				r := extra[i%len(extra)]
				if err := t.Add(r); err != nil {
					b.Fatal(err)
				}
				if err := t.Delete(r.Prefix, r.Metric); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkMemory reports the bytes each structure holds at 100 000
// routes (one op builds it): the FIB's own count for IPv4 and, from the
// heap, for the whole Table and for bart.
func BenchmarkMemory(b *testing.B) {
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	for _, c := range []struct {
		name string
		is4  bool
		bits int
	}{{"ipv4/mtrie16-8-8", true, 16}, {"ipv4/dir24-8", true, 24}, {"ipv6", false, 16}} {
		rs := benchRoutes(benchN, c.is4)
		b.Run(c.name, func(b *testing.B) {
			for range b.N {
				before := heap()
				t := newTable(c.bits)
				for _, r := range rs {
					if err := t.Add(r); err != nil {
						b.Fatal(err)
					}
				}
				after := heap()
				if c.is4 {
					b.ReportMetric(float64(t.Stats().Bytes4), "fib4-bytes")
				}
				b.ReportMetric(float64(after-before), "table-heap-bytes")
				runtime.KeepAlive(t)
			}
		})
		if c.bits != 16 {
			continue
		}
		b.Run("bart.Fast/"+c.name[:4], func(b *testing.B) {
			for range b.N {
				before := heap()
				t := new(bart.Fast[uint32])
				for i, r := range rs {
					t.Insert(r.Prefix, uint32(i))
				}
				b.ReportMetric(float64(heap()-before), "heap-bytes")
				runtime.KeepAlive(t)
			}
		})
		b.Run("bart.Table/"+c.name[:4], func(b *testing.B) {
			for range b.N {
				before := heap()
				t := new(bart.Table[uint32])
				for i, r := range rs {
					t.Insert(r.Prefix, uint32(i))
				}
				b.ReportMetric(float64(heap()-before), "heap-bytes")
				runtime.KeepAlive(t)
			}
		})
	}
}
