package conntrack

import (
	"fmt"
	"runtime"
	"testing"
	"time"
)

const benchFlows = 1_000_000

// flow6N is flowN's IPv6 counterpart.
func flow6N(i int) Tuple {
	t := Tuple{Proto: ProtoUDP, Family: 6, SrcPort: uint16(1024 + i%50000), DstPort: 53}
	t.Src = [16]byte{0x20, 0x01, 0x0d, 0xb8, 12: byte(i >> 24), 13: byte(i >> 16), 14: byte(i >> 8), 15: byte(i)}
	t.Dst = [16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 1}
	return t
}

// benchTables caches the 1 000 000-flow tables between benchmarks: they
// take a while to fill.
var benchTables = map[uint8]*Table{}

// benchTable returns a table holding benchFlows UDP flows of the family
// (flowN or flow6N), and a worker on it.
func benchTable(b *testing.B, family uint8) (*Table, *Worker) {
	b.Helper()
	if tb := benchTables[family]; tb != nil {
		return tb, tb.NewWorker()
	}
	clear(benchTables) // one at a time: they are big
	runtime.GC()
	tb := New(Config{Max: benchFlows})
	w := tb.NewWorker()
	for i := range benchFlows {
		add(b, w, benchFlow(family, i), 0)
	}
	benchTables[family] = tb
	return tb, w
}

func benchFlow(family uint8, i int) Tuple {
	if family == 6 {
		return flow6N(i)
	}
	return flowN(i)
}

// BenchmarkLookupPacket: Lookup then Packet of a random flow of a table
// holding 1 000 000 flows: over all of them (random: every lookup a
// cache and TLB miss, the memory-bound case), or over a hot working set
// of 1 000 or 10 000 of them spread over the table (the forwarding case:
// the active flows' records and index lines stay in the caches), for
// IPv4 and IPv6 flows. The clock advances 50 ns a packet, the rate the
// packets come at when the tracker is the bottleneck: a flow of the hot
// sets sees its next packet within the same tick (about 1 ms) and most
// of its packets change nothing in the entry; a random flow's entry is
// refreshed at every packet.
func BenchmarkLookupPacket(b *testing.B) {
	for _, family := range []uint8{4, 6} {
		for _, hot := range []int{benchFlows, 10_000, 1_000} {
			name := fmt.Sprintf("v%d/hot%d", family, hot)
			if hot == benchFlows {
				name = fmt.Sprintf("v%d/random", family)
			}
			b.Run(name, func(b *testing.B) {
				_, w := benchTable(b, family)
				// The hot set: flows at random places in the slab.
				set := make([]int32, hot)
				x := uint32(1)
				for i := range set {
					x = x*1664525 + 1013904223
					set[i] = int32(i)
					if hot < benchFlows {
						set[i] = int32(x % benchFlows)
					}
				}
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					// Each packet's tuple is made afresh, as a parser
					// would, rather than read from a big array that
					// would push the hot set out of the caches.
					x = x*1664525 + 1013904223
					k := benchFlow(family, int(set[uint64(x)*uint64(hot)>>32]))
					i++
					now := sec + int64(i)*50
					c, ok := w.Lookup(&k, now)
					if !ok {
						b.Fatal("miss")
					}
					if _, res := w.Packet(c, nil, now); res != PacketAccept {
						b.Fatal(res)
					}
				}
			})
		}
	}
}

// BenchmarkLookupPacketParallel: the random case from every P at once.
func BenchmarkLookupPacketParallel(b *testing.B) {
	tb, _ := benchTable(b, 4)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		w := tb.NewWorker()
		x := uint32(time.Now().UnixNano())
		for pb.Next() {
			x = x*1664525 + 1013904223
			k := flowN(int(x % benchFlows))
			if c, ok := w.Lookup(&k, sec); ok {
				w.Packet(c, nil, sec)
			}
		}
	})
}

// BenchmarkNewFlow: a new flow on one core: the lookup miss, Prepare and
// Confirm, into a table kept below 1 000 000 entries, for IPv4 and IPv6.
func BenchmarkNewFlow(b *testing.B) {
	for _, family := range []uint8{4, 6} {
		b.Run(fmt.Sprintf("v%d", family), func(b *testing.B) {
			clear(benchTables)
			runtime.GC()
			tb := New(Config{Max: benchFlows})
			w := tb.NewWorker()
			var e Entry
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if i == benchFlows {
					b.StopTimer()
					tb.Flush()
					i = 0
					b.StartTimer()
				}
				k := benchFlow(family, i)
				k.DstPort = uint16(i >> 16) // distinct beyond flowN's port cycle
				i++
				if _, ok := w.Lookup(&k, 0); ok {
					b.Fatal("hit")
				}
				w.Prepare(&k, nil, 0, &e)
				if _, r := w.Confirm(&e, 0); r != ConfirmInserted {
					b.Fatal(r)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "flows/s")
		})
	}
}

// BenchmarkNewFlowBatch: new flows as the tracker's stages make them, a
// batch of 32 packets at a time: each packet's lookup miss and Prepare at
// prerouting, then, once the batch has passed the other hooks, each
// one's Confirm.
func BenchmarkNewFlowBatch(b *testing.B) {
	const batch = 32
	clear(benchTables)
	runtime.GC()
	tb := New(Config{Max: benchFlows})
	w := tb.NewWorker()
	var es [batch]Entry
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i+batch > benchFlows {
			b.StopTimer()
			tb.Flush()
			i = 0
			b.StartTimer()
		}
		for j := range es {
			k := flowN(i + j)
			k.DstPort = uint16((i + j) >> 16)
			if _, ok := w.Lookup(&k, 0); ok {
				b.Fatal("hit")
			}
			w.Prepare(&k, nil, 0, &es[j])
		}
		for j := range es {
			if _, r := w.Confirm(&es[j], 0); r != ConfirmInserted {
				b.Fatal(r)
			}
		}
		i += batch
	}
	b.ReportMetric(float64(b.N)*batch/b.Elapsed().Seconds(), "flows/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/batch, "ns/flow")
}

// BenchmarkBytesPerEntry reports the table's memory per entry (slab and
// index, for Max = 1 000 000 with the default buckets), and with the
// by-source index source NAT adds.
func BenchmarkBytesPerEntry(b *testing.B) {
	clear(benchTables)
	var tb *Table
	var before, after, snat runtime.MemStats
	for b.Loop() {
		tb = nil
		runtime.GC()
		runtime.ReadMemStats(&before)
		tb = New(Config{Max: benchFlows})
		runtime.ReadMemStats(&after)
		tb.bySource()
		runtime.ReadMemStats(&snat)
	}
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/benchFlows, "bytes/entry")
	b.ReportMetric(float64(snat.HeapAlloc-before.HeapAlloc)/benchFlows, "bytes/entry-with-snat")
	runtime.KeepAlive(tb)
}
