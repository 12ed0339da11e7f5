package nat

import (
	"encoding/binary"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/xdpfwd/xdpfwd/conntrack"
	"github.com/xdpfwd/xdpfwd/fastpath"
	"github.com/xdpfwd/xdpfwd/fastpath/fastpathtest"
)

// benchFlows is how many masqueraded connections the big table holds.
const benchFlows = 1_000_000

// bigTable is a Tracker whose table holds benchFlows established UDP
// connections masqueraded to 10.9.0.1, each from a client of its own
// (benchClient) to one of 4096 servers on port 443 (benchServer), and
// frames of their packets in the original direction.
var bigTable = sync.OnceValue(func() *conntrack.Tracker {
	tr := conntrack.NewTracker(conntrack.New(conntrack.Config{Max: 1 << 20}))
	tr.SetEnabled(true)
	w := tr.Table().NewWorker()
	now := int64(fastpathtest.Sec(1))
	var e conntrack.Entry
	for i := range benchFlows {
		k := benchTuple(i)
		if _, res := w.Prepare(&k, nil, now, &e); res != conntrack.PacketAccept {
			panic(res)
		}
		e.Tuple[1].Dst = a16v4b(10, 9, 0, 1)
		e.Tuple[1].DstPort = benchPort(i)
		e.Status |= conntrack.StatusSrcNAT | conntrack.StatusSrcNATDone | conntrack.StatusDstNATDone | conntrack.StatusSeenReply | conntrack.StatusAssured
		e.Expires = now + int64(time.Hour)
		if _, res := w.Confirm(&e, now); res != conntrack.ConfirmInserted {
			panic(res)
		}
	}
	return tr
})

func a16v4b(a, b, c, d byte) [16]byte { return [16]byte{a, b, c, d} }

// benchTuple is connection i's original tuple: client 10.c.c.c:40000 to
// server 198.18.s.s:443.
func benchTuple(i int) conntrack.Tuple {
	return conntrack.Tuple{
		Src:     a16v4b(10, byte(1+i>>16), byte(i>>8), byte(i)),
		Dst:     a16v4b(198, 18, byte(i>>8&0xf), byte(i)),
		SrcPort: 40000, DstPort: 443, Proto: conntrack.ProtoUDP, Family: 4,
	}
}

// benchPort is connection i's masqueraded port: unique per server.
func benchPort(i int) uint16 { return uint16(1024 + i>>12) }

// benchFrame returns the frame of a packet of tuple k (UDP, 18 bytes of
// payload, checksums right), made from template tmpl.
func benchFrame(tmpl []byte, k *conntrack.Tuple) []byte {
	f := append([]byte(nil), tmpl...)
	ip := f[14:]
	copy(ip[12:16], k.Src[:4])
	copy(ip[16:20], k.Dst[:4])
	binary.BigEndian.PutUint16(ip[10:], 0)
	binary.BigEndian.PutUint16(ip[10:], ^refSum(ip[:20], 0))
	udp := ip[20:]
	binary.BigEndian.PutUint16(udp[0:], k.SrcPort)
	binary.BigEndian.PutUint16(udp[2:], k.DstPort)
	setSum(udp, 6, refPseudo(ip[12:16], ip[16:20], conntrack.ProtoUDP, len(udp)), false, true)
	return f
}

// batchBench is a worker running batches of established packets through
// conntrack and NAT: frames, the packets Parse made of them, and the
// buffers the batch rewrites.
type batchBench struct {
	r      *natRig
	frames [][]byte
	tmpl   []fastpath.Packet
	bufs   [fastpath.BatchSize][]byte
}

func newBatchBench(t testing.TB, tr *conntrack.Tracker, flows []int) *batchBench {
	bb := &batchBench{r: newNATRig(t, tr, NewTranslator(tr, nil, nil))}
	tmpl := udpFrame(t, "10.0.0.1", 1, "10.0.0.2", 2)[:14+20+8]
	tmpl = append(tmpl, make([]byte, 18)...)
	binary.BigEndian.PutUint16(tmpl[14+2:], 20+8+18)
	binary.BigEndian.PutUint16(tmpl[14+20+4:], 8+18)
	for _, i := range flows {
		k := benchTuple(i)
		f := benchFrame(tmpl, &k)
		bb.frames = append(bb.frames, f)
		p := fastpathtest.Parsed(f)
		p.Routed, p.OutIface = true, 1
		bb.tmpl = append(bb.tmpl, p)
	}
	for i := range bb.bufs {
		bb.bufs[i] = make([]byte, len(tmpl))
	}
	return bb
}

// batch runs the batch of the 64 packets from index first on (modulo the
// frames) through the pipeline.
func (bb *batchBench) batch(first int) {
	r := bb.r
	b := &r.b
	b.Len = fastpath.BatchSize
	for j := range fastpath.BatchSize {
		n := (first + j) % len(bb.frames)
		copy(bb.bufs[j], bb.frames[n])
		b.Packets[j] = bb.tmpl[n]
		b.Packets[j].Data = bb.bufs[j]
	}
	r.process()
}

// check fails unless the last batch's packets were tracked established
// and masqueraded.
func (bb *batchBench) check(t testing.TB) {
	for j := range bb.r.b.Len {
		p := &bb.r.b.Packets[j]
		src, _, sport, _ := flowOf(p)
		if p.Action != fastpath.ActionContinue || conntrack.State(p.CtState) != conntrack.StateEstablished || src.String() != "10.9.0.1" || sport < 1024 {
			t.Fatalf("packet %d: %v state %d from %v:%d", j, p.Action, p.CtState, src, sport)
		}
	}
}

// BenchmarkTrackNATEstablished is the per-packet cost of conntrack at
// prerouting, NAT (Apply) at prerouting and postrouting and the
// confirmation stage, for batches of 64 packets of established
// masqueraded UDP connections in a table of 1 000 000 such connections:
// hot, packets of 1 000 of them; random, of any.
func BenchmarkTrackNATEstablished(b *testing.B) {
	tr := bigTable()
	for _, tc := range []struct {
		name  string
		flows func() []int
	}{
		{"hot1000", func() []int {
			out := make([]int, 1000)
			for i := range out {
				out[i] = i * (benchFlows / 1000)
			}
			return out
		}},
		{"random1M", func() []int {
			rng := rand.New(rand.NewPCG(1, 2))
			out := make([]int, 1<<16)
			for i := range out {
				out[i] = rng.IntN(benchFlows)
			}
			return out
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			bb := newBatchBench(b, tr, tc.flows())
			bb.batch(0)
			bb.check(b)
			b.ReportAllocs()
			b.ResetTimer()
			n := 0
			for b.Loop() {
				bb.batch(n)
				n += fastpath.BatchSize
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/pkt")
			bb.check(b)
		})
	}
}

// BenchmarkNATNewFlow is the rate of new masqueraded connections: the
// packet tracked (Prepare, at the conntrack stage), bound by masquerade
// with a port search (every client uses source port 40000 to the same
// server, so only the first keeps it), rewritten and confirmed; batches
// of 64. The table is flushed, untimed, every 16 384 connections.
func BenchmarkNATNewFlow(b *testing.B) {
	tr := newNATTracker(1 << 16)
	masq := func(p *fastpath.Packet, v6 bool) ([16]byte, bool) { return a16v4b(10, 9, 0, 1), true }
	x := NewTranslator(tr, masq, nil)
	r := newNATRig(b, tr, x)
	var none Range
	r.snat = func(p *fastpath.Packet) bool { return x.Masquerade(p, &none, r.now) }
	tmpl := udpFrame(b, "10.0.0.1", 40000, "192.0.2.1", 443)
	base := fastpathtest.Parsed(tmpl)
	base.Routed, base.OutIface = true, 1
	var bufs [fastpath.BatchSize][]byte
	for i := range bufs {
		bufs[i] = make([]byte, len(tmpl))
	}
	flows := 0
	batch := func() {
		b := &r.b
		b.Len = fastpath.BatchSize
		for j := range fastpath.BatchSize {
			k := conntrack.Tuple{Src: a16v4b(172, byte(16+flows>>16), byte(flows>>8), byte(flows)), Dst: a16v4b(192, 0, 2, 1), SrcPort: 40000, DstPort: 443}
			flows++
			copy(bufs[j], tmpl)
			ip := bufs[j][14:]
			copy(ip[12:16], k.Src[:4])
			// Incremental checksum fix-ups are NAT's business; these
			// frames carry a UDP checksum of 0 and an IPv4 header
			// checksum nobody verifies here.
			binary.BigEndian.PutUint16(ip[20+6:], 0)
			b.Packets[j] = base
			b.Packets[j].Data = bufs[j]
		}
		r.process()
	}
	b.ReportAllocs()
	start := time.Now()
	var paused time.Duration
	for b.Loop() {
		if tr.Table().Count() >= 16384 {
			b.StopTimer()
			t0 := time.Now()
			tr.Table().Flush()
			paused += time.Since(t0)
			b.StartTimer()
		}
		batch()
	}
	elapsed := time.Since(start) - paused
	// New connections of one batch are bound before any is confirmed,
	// each blind to the others' ports: two that pick the same one clash
	// at confirmation (insert_failed), where the kernel, one packet at a
	// time, would have seen the first.
	s := ctStats(tr)
	if s.Insert+s.InsertFailed != uint64(flows) {
		b.Fatalf("%d flows, conntrack %+v, nat %+v", flows, s, x.Stats())
	}
	b.ReportMetric(float64(flows)/elapsed.Seconds(), "flows/s")
	b.ReportMetric(float64(s.InsertFailed)/float64(flows), "clashes/flow")
	b.ReportMetric(float64(elapsed.Nanoseconds())/float64(flows), "ns/flow")
}

// TestTrackNATNoAllocs: conntrack and NAT over a batch of established
// masqueraded packets allocate nothing, nor do new masqueraded flows.
func TestTrackNATNoAllocs(t *testing.T) {
	tr := newNATTracker(1 << 12)
	masq := func(p *fastpath.Packet, v6 bool) ([16]byte, bool) { return a16v4b(10, 9, 0, 1), true }
	x := NewTranslator(tr, masq, nil)
	r := newNATRig(t, tr, x)
	var none Range
	r.snat = func(p *fastpath.Packet) bool { return x.Masquerade(p, &none, r.now) }
	// Established: 64 flows, answered.
	var out, back [][]byte
	for i := range fastpath.BatchSize {
		// Source ports of their own: new connections of one batch do
		// not see each other's bindings (see the report on Tracker.Taken).
		c := "10.0.1." + itoa(i+1)
		out = append(out, udpFrame(t, c, uint16(40000+i), "192.0.2.1", 443))
		back = append(back, udpFrame(t, "192.0.2.1", 443, "10.9.0.1", 40000))
	}
	outs := r.forward(out...)
	for i, p := range outs {
		_, _, sport, _ := flowOf(&p)
		back[i] = udpFrame(t, "192.0.2.1", 443, "10.9.0.1", sport)
	}
	r.forward(back...)
	var tmpl []fastpath.Packet
	var bufs [][]byte
	for _, f := range append(out, back...) {
		p := fastpathtest.Parsed(f)
		p.Routed, p.OutIface = true, 1
		tmpl = append(tmpl, p)
		bufs = append(bufs, make([]byte, len(f)))
	}
	frames := append(out, back...)
	run := func(first int) {
		r.b.Len = fastpath.BatchSize
		for j := range fastpath.BatchSize {
			copy(bufs[first+j], frames[first+j])
			r.b.Packets[j] = tmpl[first+j]
			r.b.Packets[j].Data = bufs[first+j]
		}
		r.process()
	}
	for _, first := range []int{0, fastpath.BatchSize} {
		if n := testing.AllocsPerRun(50, func() { run(first) }); n != 0 {
			t.Errorf("established, batch from %d: %v allocations per batch", first, n)
		}
		for j := range r.b.Len {
			if p := &r.b.Packets[j]; p.Action != fastpath.ActionContinue || conntrack.State(p.CtState) != conntrack.StateEstablished {
				t.Fatalf("packet %d: %v state %d", j, p.Action, p.CtState)
			}
		}
	}
	// New flows.
	tmplNew := udpFrame(t, "10.0.0.1", 40000, "192.0.2.1", 443)
	base := fastpathtest.Parsed(tmplNew)
	base.Routed, base.OutIface = true, 1
	buf := make([]byte, len(tmplNew))
	n := 0
	allocs := testing.AllocsPerRun(200, func() {
		copy(buf, tmplNew)
		buf[14+12+1], buf[14+12+2], buf[14+12+3] = 2, byte(n>>8), byte(n)
		buf[14+20+6], buf[14+20+7] = 0, 0 // no UDP checksum: the source changed
		n++
		r.b.Len = 1
		r.b.Packets[0] = base
		r.b.Packets[0].Data = buf
		r.process()
	})
	if allocs != 0 {
		t.Errorf("new flows: %v allocations per flow", allocs)
	}
	if p := &r.b.Packets[0]; p.Action != fastpath.ActionContinue || conntrack.State(p.CtState) != conntrack.StateNew {
		t.Fatalf("new flow: %v state %d", p.Action, p.CtState)
	}
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}
