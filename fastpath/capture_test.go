package fastpath_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/xdpfwd/xdpfwd/fastpath"
	"github.com/xdpfwd/xdpfwd/fastpath/cbpf"
	ft "github.com/xdpfwd/xdpfwd/fastpath/fastpathtest"
)

// udpPortFilter is tcpdump -ddd -y EN10MB 'udp port PORT' for PORT.
func udpPortFilter(tb testing.TB, port string) *cbpf.Program {
	tb.Helper()
	text := strings.ReplaceAll("20;40 0 0 12;21 0 6 34525;48 0 0 20;21 0 15 17;40 0 0 54;21 12 0 P;40 0 0 56;21 10 11 P;21 0 10 2048;48 0 0 23;21 0 8 17;40 0 0 20;69 6 0 8191;177 0 0 14;72 0 0 14;21 2 0 P;72 0 0 16;21 0 1 P;6 0 0 262144;6 0 0 0", "P", port)
	raw, err := cbpf.ParseTcpdump(strings.ReplaceAll(text, ";", "\n"))
	if err != nil {
		tb.Fatal(err)
	}
	p, err := cbpf.Compile(raw)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// ttlDown decrements the IPv4 TTL of every copy leaving at netdev
// egress: the rewrite an egress capture must see. It leaves alone what
// no longer continues (a frame a stage holds is the stage's).
type ttlDown struct{}

func (ttlDown) Name() string { return "ttldown" }

func (ttlDown) Process(b *fastpath.Batch, _ fastpath.Time) {
	for i := range b.Packets[:b.Len] {
		if p := &b.Packets[i]; len(p.Data) > 22 && p.Action == fastpath.ActionContinue {
			p.Data[22]--
		}
	}
}

func captureRig(t testing.TB) *ft.Rig {
	groups := &fastpath.PortGroups{}
	return ft.NewRig(t, ft.RigConfig{Ports: []fastpath.PortID{1, 2}, Groups: groups, Frames: 1024, Ring: 256, FillTarget: 128,
		Stages: []fastpath.Attached{ft.NewMACSwitch(groups, 1, 2), fastpath.At(fastpath.HookEgress, 0, ttlDown{})}})
}

func drain(c *fastpath.Capture) []fastpath.CapturedPacket {
	var out []fastpath.CapturedPacket
	c.Drain(func(p *fastpath.CapturedPacket) {
		q := *p
		q.Data = bytes.Clone(p.Data)
		out = append(out, q)
	})
	return out
}

func startCapture(t testing.TB, r *ft.Rig, cfg fastpath.CaptureConfig) *fastpath.Capture {
	t.Helper()
	c, err := fastpath.NewCapture(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.W.SetCapture(c)
	return c
}

func TestCaptureIngressFilter(t *testing.T) {
	r := captureRig(t)
	c := startCapture(t, r, fastpath.CaptureConfig{Point: fastpath.CaptureIngress, Port: 1, Filter: udpPortFilter(t, "5000")})
	match := ft.UDP4(t, ft.MAC(2), ft.MACA, 10)
	other := ft.ARPRequest(t, ft.MACA, 2)
	r.Send(1, match, other, match)
	r.Send(2, ft.UDP4(t, ft.MAC(1), ft.MACB, 10)) // port 2: not captured
	got := drain(c)
	if len(got) != 2 {
		t.Fatalf("captured %d frames, want 2", len(got))
	}
	for _, p := range got {
		if p.Point != fastpath.CaptureIngress || p.Port != 1 || p.Reason != fastpath.ReasonNone || !bytes.Equal(p.Data, match) || p.Length != len(match) {
			t.Errorf("captured %+v, want the frame as received on port 1", p)
		}
	}
	r.W.SetCapture(nil)
	r.Send(1, match)
	if got := drain(c); len(got) != 0 {
		t.Errorf("%d frames captured after the capture stopped", len(got))
	}
}

func TestCaptureEgressRewritten(t *testing.T) {
	r := captureRig(t)
	c := startCapture(t, r, fastpath.CaptureConfig{Point: fastpath.CaptureEgress, Port: fastpath.AnyPort, Snaplen: 30})
	f := ft.UDP4(t, ft.MAC(2), ft.MACA, 10)
	out := r.Send(1, f)
	got := drain(c)
	if len(got) != 1 || len(out[2]) != 1 {
		t.Fatalf("captured %d, sent %d", len(got), len(out[2]))
	}
	p := got[0]
	if p.Point != fastpath.CaptureEgress || p.Port != 2 || p.Length != len(f) || !bytes.Equal(p.Data, out[2][0][:30]) || p.Data[22] != f[22]-1 {
		t.Errorf("captured %+v, want the first 30 bytes of the frame sent on port 2 (TTL decremented)", p)
	}
}

func TestCaptureDrops(t *testing.T) {
	r := captureRig(t)
	c := startCapture(t, r, fastpath.CaptureConfig{Point: fastpath.CaptureDrop, Port: fastpath.AnyPort})
	short := []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	r.Send(1, short, ft.UDP4(t, ft.MAC(2), ft.MACA, 10))
	got := drain(c)
	if len(got) != 1 {
		t.Fatalf("captured %d drops, want 1", len(got))
	}
	p := got[0]
	if p.Point != fastpath.CaptureDrop || p.Port != 1 || p.Reason != fastpath.DropMalformed || !bytes.Equal(p.Data, short) {
		t.Errorf("captured %+v, want the short frame dropped on port 1 as malformed", p)
	}
	if s := p.Reason.Stage() + ": " + p.Reason.String(); s != "parse: malformed frame" {
		t.Errorf("reason %q", s)
	}
}

func TestCaptureRingFull(t *testing.T) {
	r := captureRig(t)
	c := startCapture(t, r, fastpath.CaptureConfig{Point: fastpath.CaptureIngress, Port: fastpath.AnyPort, Ring: 4})
	f := ft.UDP4(t, ft.MAC(2), ft.MACA, 10)
	out := r.Send(1, f, f, f, f, f, f)
	if len(out[2]) != 6 {
		t.Fatalf("sent %d of 6: a full capture ring must not drop traffic", len(out[2]))
	}
	if got := drain(c); len(got) != 4 {
		t.Errorf("captured %d, want 4 (the ring's size)", len(got))
	}
	if n := c.Lost(); n != 2 {
		t.Errorf("lost %d, want 2", n)
	}
	r.Send(1, f)
	if got := drain(c); len(got) != 1 {
		t.Errorf("after a drain captured %d, want 1", len(got))
	}
}

// TestCapturePollAllocs: with a capture running (and matching), a worker
// iteration allocates nothing.
func TestCapturePollAllocs(t *testing.T) {
	r := captureRig(t)
	c := startCapture(t, r, fastpath.CaptureConfig{Point: fastpath.CaptureIngress, Port: fastpath.AnyPort, Filter: udpPortFilter(t, "5000"), Ring: 1 << 16})
	frames := make([][]byte, fastpath.BatchSize)
	for i := range frames {
		frames[i] = ft.UDP4(t, ft.MAC(2), ft.MACA, 18)
	}
	allocs := testing.AllocsPerRun(100, func() {
		r.Q[1].Inject(frames...)
		r.W.Poll()
		r.Q[2].Consume()
		r.W.Poll()
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per worker iteration with a capture running", allocs)
	}
	if n := c.Drain(func(*fastpath.CapturedPacket) {}); n < 100*fastpath.BatchSize {
		t.Fatalf("captured %d", n)
	}
}

// BenchmarkWorkerObserve is the per-packet cost of a worker (MAC switch,
// batches of 64 UDP frames) with nothing observing, with a capture and
// with a trace whose filter (udp port 9999) matches nothing: what
// capturing or tracing costs the traffic it does not take.
func BenchmarkWorkerObserve(b *testing.B) {
	for _, tc := range []struct {
		name  string
		start func(b *testing.B, r *ft.Rig)
	}{
		{"off", func(*testing.B, *ft.Rig) {}},
		{"capture-nomatch", func(b *testing.B, r *ft.Rig) {
			startCapture(b, r, fastpath.CaptureConfig{Point: fastpath.CaptureIngress, Port: fastpath.AnyPort, Filter: udpPortFilter(b, "9999")})
		}},
		{"trace-nomatch", func(b *testing.B, r *ft.Rig) {
			startTrace(b, r, fastpath.TraceConfig{Port: fastpath.AnyPort, Filter: udpPortFilter(b, "9999")})
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			groups := &fastpath.PortGroups{}
			r := ft.NewRig(b, ft.RigConfig{Ports: []fastpath.PortID{1, 2}, Groups: groups, Frames: 1024, Ring: 256, FillTarget: 256, UncheckedFrees: true,
				Stages: []fastpath.Attached{ft.NewMACSwitch(groups, 1, 2)}})
			tc.start(b, r)
			frames := make([][]byte, fastpath.BatchSize)
			for i := range frames {
				frames[i] = ft.UDP4(b, ft.MAC(2), ft.MACA, 18)
			}
			for b.Loop() {
				r.Q[1].Inject(frames...)
				r.W.Poll()
				r.Q[2].Consume()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*fastpath.BatchSize), "ns/packet")
		})
	}
}

// TestCaptureAfterStage: a capture after a named stage takes the frames
// that stage left to go on, as it left them: after the egress stage that
// decrements the TTL, one less than received; after parse, as received.
// A worker without the stage takes nothing.
func TestCaptureAfterStage(t *testing.T) {
	f := ft.UDP4(t, ft.MAC(2), ft.MACA, 10)
	for _, tc := range []struct {
		stage string
		ttl   byte
		n     int
	}{{"ttldown", f[14+8] - 1, 1}, {"parse", f[14+8], 1}, {"no such stage", 0, 0}} {
		r := captureRig(t)
		c := startCapture(t, r, fastpath.CaptureConfig{Point: fastpath.CaptureStage, Stage: tc.stage, Port: fastpath.AnyPort})
		r.Send(1, f)
		got := drain(c)
		if len(got) != tc.n {
			t.Fatalf("after %q: %d frames, want %d", tc.stage, len(got), tc.n)
		}
		for _, p := range got {
			if p.Point != fastpath.CaptureStage || p.Data[14+8] != tc.ttl || len(p.Data) != len(f) {
				t.Fatalf("after %q: point %v ttl %d", tc.stage, p.Point, p.Data[14+8])
			}
		}
	}
	if _, err := fastpath.NewCapture(fastpath.CaptureConfig{Point: fastpath.CaptureStage}); err == nil {
		t.Fatal("a stage capture without a stage was accepted")
	}
}
