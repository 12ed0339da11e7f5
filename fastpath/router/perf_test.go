package router

import (
	"net"
	"strings"
	"testing"

	"github.com/gopacket/gopacket/layers"

	"github.com/xdpfwd/xdpfwd/fastpath"
	"github.com/xdpfwd/xdpfwd/fastpath/cbpf"
)

// resolvedRig is a router rig whose gateway G is resolved, and a batch's
// worth of 64-byte UDP packets from H to a host behind G.
func resolvedRig(tb testing.TB, checked bool) (*routerRig, [][]byte) {
	r := newRouterRigChecked(tb, checked, defaultRoute)
	pkt := udp4(tb, macLAN, ipH, net.IP{198, 51, 100, 7}, 64, false, 18)
	r.Inject(portLAN, pkt)
	r.W.Poll()
	r.Drain()
	r.Inject(portWAN, arpFrame(tb, layers.ARPReply, macWAN, macG, ipG, ipWAN, macWAN))
	r.W.Poll()
	r.W.Poll()
	r.Drain()
	r.W.Poll()
	frames := make([][]byte, fastpath.BatchSize)
	for i := range frames {
		frames[i] = pkt
	}
	return r, frames
}

// TestRoutedPollAllocs: forwarding routed packets (parse, route, TTL,
// neighbour, L2 rewrite, checksum) allocates nothing.
func TestRoutedPollAllocs(t *testing.T) {
	r, frames := resolvedRig(t, true)
	allocs := testing.AllocsPerRun(100, func() {
		r.Q[portLAN].Inject(frames...)
		r.W.Poll()
		r.Q[portWAN].Consume()
		r.W.Poll()
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per batch of routed packets", allocs)
	}
	if c := r.W.Counters().Ports[portWAN]; c.TxPackets < 100*fastpath.BatchSize {
		t.Fatalf("wan sent %d", c.TxPackets)
	}
	for reason, n := range r.W.Counters().Ports[portLAN].Drops {
		if n != 0 {
			t.Fatalf("%d dropped as %q", n, fastpath.Reason(reason))
		}
	}
}

// BenchmarkRoutedWorker forwards 64-byte UDP packets to a resolved
// gateway through a worker with fake queues: the routed pipeline with
// the worker's ring work; plain, and with a trace whose filter (udp port
// 9999, tcpdump -ddd's program) matches none of them.
func BenchmarkRoutedWorker(b *testing.B) {
	for _, traced := range []bool{false, true} {
		name := "plain"
		if traced {
			name = "trace-nomatch"
		}
		b.Run(name, func(b *testing.B) {
			r, frames := resolvedRig(b, false)
			if traced {
				raw, err := cbpf.ParseTcpdump(strings.ReplaceAll("20;40 0 0 12;21 0 6 34525;48 0 0 20;21 0 15 17;40 0 0 54;21 12 0 9999;40 0 0 56;21 10 11 9999;21 0 10 2048;48 0 0 23;21 0 8 17;40 0 0 20;69 6 0 8191;177 0 0 14;72 0 0 14;21 2 0 9999;72 0 0 16;21 0 1 9999;6 0 0 262144;6 0 0 0", ";", "\n"))
				if err != nil {
					b.Fatal(err)
				}
				prog, err := cbpf.Compile(raw)
				if err != nil {
					b.Fatal(err)
				}
				tr, err := fastpath.NewTrace(fastpath.TraceConfig{Port: fastpath.AnyPort, Filter: prog})
				if err != nil {
					b.Fatal(err)
				}
				r.W.SetTrace(tr)
			}
			for b.Loop() {
				r.Q[portLAN].Inject(frames...)
				r.W.Poll()
				r.Q[portWAN].Consume()
			}
			r.W.Poll() // reap the last completions: TX counts a frame when it completes
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*fastpath.BatchSize), "ns/packet")
			if c := r.W.Counters().Ports[portWAN]; c.TxPackets < uint64(b.N*fastpath.BatchSize) {
				b.Fatalf("wan sent %d of %d", c.TxPackets, b.N*fastpath.BatchSize)
			}
		})
	}
}

// BenchmarkRoutedPipeline runs the routed pipeline alone (parse, route
// lookup, TTL, neighbour, L2 rewrite, checksum finishing) over batches of
// 64-byte UDP packets to a resolved gateway, without rings: the frames
// are restored (TTL, MACs) before each run, which the time includes.
func BenchmarkRoutedPipeline(b *testing.B) {
	r, frames := resolvedRig(b, false)
	pl := fastpath.NewPipeline(append(r.r.Stages(), fastpath.CoreStages(&fastpath.ChecksumFinish{})...)...)
	var batch fastpath.Batch
	batch.Len = fastpath.BatchSize
	data := make([][]byte, fastpath.BatchSize)
	for i := range data {
		data[i] = append([]byte(nil), frames[i]...)
	}
	for b.Loop() {
		for i := range batch.Packets[:batch.Len] {
			copy(data[i], frames[i])
			batch.Packets[i].Reset(0, data[i], portLAN)
		}
		pl.RunIngress(&batch, 0)
		pl.RunOutput(&batch, 0)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*fastpath.BatchSize), "ns/packet")
	if p := &batch.Packets[0]; p.Action != fastpath.ActionContinue || p.Egress != fastpath.EgressPort || p.OutPort != portWAN || data[0][14+8] != 63 {
		b.Fatalf("not routed: %v %v to %d, TTL %d", p.Action, p.Egress, p.OutPort, data[0][14+8])
	}
}
