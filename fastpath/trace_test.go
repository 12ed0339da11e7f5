package fastpath_test

import (
	"bytes"
	"testing"

	"github.com/xdpfwd/xdpfwd/fastpath"
	ft "github.com/xdpfwd/xdpfwd/fastpath/fastpathtest"
)

// explaining is a stage that says, of each traced packet, its length.
type explaining struct{}

func (explaining) Name() string                               { return "explaining" }
func (explaining) Process(b *fastpath.Batch, _ fastpath.Time) {}
func (explaining) Explain(p *fastpath.Packet, n *fastpath.Note) {
	n.Str("saw ")
	n.Uint(uint64(len(p.Data)))
	n.Str(" bytes")
}

func traceRig(t testing.TB) *ft.Rig {
	groups := &fastpath.PortGroups{}
	return ft.NewRig(t, ft.RigConfig{Ports: []fastpath.PortID{1, 2}, Groups: groups, Frames: 1024, Ring: 256, FillTarget: 128,
		Stages: []fastpath.Attached{ft.NewMACSwitch(groups, 1, 2), fastpath.At(fastpath.HookForward, 0, explaining{}),
			fastpath.At(fastpath.HookEgress, 0, ttlDown{})}})
}

func startTrace(t testing.TB, r *ft.Rig, cfg fastpath.TraceConfig) *fastpath.Trace {
	t.Helper()
	tr, err := fastpath.NewTrace(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.W.SetTrace(tr)
	return tr
}

// records returns copies of the trace's published records.
func records(tr *fastpath.Trace) []fastpath.TraceRecord {
	var out []fastpath.TraceRecord
	tr.Drain(func(r *fastpath.TraceRecord) { out = append(out, *r) })
	return out
}

// TestTraceFollowsPackets: a trace with a filter and a count takes the
// first matching packets only; each record holds the frame as received,
// a step per stage in walk order (with the packet's decision, its headers
// as the stage left them, the stage's own note) and the exit: the port
// and queue it was sent on, or the drop and its reason.
func TestTraceFollowsPackets(t *testing.T) {
	r := traceRig(t)
	tr := startTrace(t, r, fastpath.TraceConfig{Port: 1, Filter: udpPortFilter(t, "5000"), Count: 2})
	match := ft.UDP4(t, ft.MAC(2), ft.MACA, 10)
	r.Send(1, ft.ARPRequest(t, ft.MACA, 2), match)
	r.Send(2, ft.UDP4(t, ft.MAC(1), ft.MACB, 10)) // port 2: not traced
	r.Send(1, match, match)                       // the second is beyond the count
	got := records(tr)
	if len(got) != 2 || !tr.Done() {
		t.Fatalf("%d records, done %v; want 2, done", len(got), tr.Done())
	}
	for i, rec := range got {
		if rec.Port != 1 || rec.Length != len(match) || !bytes.Equal(rec.Frame(), match) {
			t.Fatalf("record %d: port %d length %d frame %x", i, rec.Port, rec.Length, rec.Frame())
		}
		var names []string
		for _, s := range rec.Steps() {
			names = append(names, s.Hook.String()+"/"+s.Stage)
		}
		want := []string{"netdev ingress/parse", "bridge prerouting/macswitch", "ip forward/explaining", "netdev egress/ttldown"}
		if len(names) != len(want) {
			t.Fatalf("record %d: steps %q, want %q", i, names, want)
		}
		for j := range want {
			if names[j] != want[j] {
				t.Fatalf("record %d: steps %q, want %q", i, names, want)
			}
		}
		st := rec.Steps()
		if st[1].Action != fastpath.ActionContinue || st[1].Egress != fastpath.EgressPort || st[1].OutPort != 2 {
			t.Fatalf("macswitch step: %v %v", st[1].Action, st[1].Egress)
		}
		if n := st[2].Note(); n != "saw "+itoa(len(match))+" bytes" {
			t.Fatalf("note %q", n)
		}
		// The TTL at egress: one less than received (IPv4 byte 8 of the
		// header the step keeps).
		if h := st[3].Header(); len(h) < 20 || h[8] != match[14+8]-1 || st[3].OutPort != 2 {
			t.Fatalf("egress step: header %x out %d", h, st[3].OutPort)
		}
		if ex := rec.Exits(); len(ex) != 1 || ex[0].Outcome != fastpath.TraceSent || ex[0].Port != 2 {
			t.Fatalf("exits %+v", ex)
		}
	}
}

// TestTraceDrop: a traced packet that is dropped ends with the drop, its
// reason and the port it counts on.
func TestTraceDrop(t *testing.T) {
	r := traceRig(t)
	tr := startTrace(t, r, fastpath.TraceConfig{Port: fastpath.AnyPort})
	r.Send(1, []byte{1, 2, 3})
	got := records(tr)
	if len(got) != 1 {
		t.Fatalf("%d records", len(got))
	}
	ex := got[0].Exits()
	if len(ex) != 1 || ex[0].Outcome != fastpath.TraceDropped || ex[0].Reason != fastpath.DropMalformed || ex[0].Port != 1 {
		t.Fatalf("exits %+v", ex)
	}
	if st := got[0].Steps(); len(st) == 0 || st[0].Stage != "parse" || st[0].Action != fastpath.ActionDrop {
		t.Fatalf("steps %+v", st)
	}
}

// TestTraceRingFullAndOff: a worker whose ring is full traces no more
// (counted as lost) and forwards as before; a drained ring traces again;
// after SetTrace(nil) nothing is traced.
func TestTraceRingFullAndOff(t *testing.T) {
	r := traceRig(t)
	tr := startTrace(t, r, fastpath.TraceConfig{Port: fastpath.AnyPort, Ring: 2})
	f := ft.UDP4(t, ft.MAC(2), ft.MACA, 10)
	out := r.Send(1, f, f, f)
	if len(out[2]) != 3 {
		t.Fatalf("forwarded %d of 3 while tracing", len(out[2]))
	}
	if n, lost := len(records(tr)), tr.Lost(); n != 2 || lost != 1 {
		t.Fatalf("%d records, %d lost; want 2, 1", n, lost)
	}
	r.Send(1, f)
	if n := len(records(tr)); n != 1 {
		t.Fatalf("after a drain: %d records, want 1", n)
	}
	r.W.SetTrace(nil)
	r.Send(1, f)
	if n := len(records(tr)); n != 0 {
		t.Fatalf("after SetTrace(nil): %d records", n)
	}
}

// TestTraceNoAllocs: tracing allocates nothing per batch, off, on with a
// filter that matches nothing, and on with every packet traced.
func TestTraceNoAllocs(t *testing.T) {
	r := traceRig(t)
	f := ft.UDP4(t, ft.MAC(2), ft.MACA, 10)
	batch := [][]byte{f, f, f, f}
	run := func() {
		r.Q[1].Inject(batch...)
		r.W.Poll()
		r.Q[2].Consume()
		r.W.Poll()
	}
	for _, tc := range []struct {
		name string
		cfg  *fastpath.TraceConfig
	}{
		{"off", nil},
		{"no match", &fastpath.TraceConfig{Port: fastpath.AnyPort, Filter: udpPortFilter(t, "9")}},
		{"all traced", &fastpath.TraceConfig{Port: fastpath.AnyPort, Ring: 256}},
	} {
		var tr *fastpath.Trace
		if tc.cfg != nil {
			tr = startTrace(t, r, *tc.cfg)
		} else {
			r.W.SetTrace(nil)
		}
		run()
		if n := testing.AllocsPerRun(50, run); n != 0 {
			t.Errorf("%s: %v allocations per batch", tc.name, n)
		}
		if tr != nil {
			records(tr)
		}
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// TestSimulator: a frame run through a Simulator gets the walk a live
// trace records (the stages, the TTL the egress stage decrements), ends
// as would-be-sent on the port it would leave by, or as its drop, and
// leaves every frame of the simulator's UMEM free.
func TestSimulator(t *testing.T) {
	groups := &fastpath.PortGroups{}
	pipe := fastpath.NewPipeline(fastpath.At(fastpath.HookIngress, fastpath.PriorityFirst, fastpath.Parse{}),
		ft.NewMACSwitch(groups, 1, 2), fastpath.At(fastpath.HookEgress, 0, ttlDown{}))
	sim, err := fastpath.NewSimulator(pipe, groups)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	f := ft.UDP4(t, ft.MAC(2), ft.MACA, 10)
	var rec fastpath.TraceRecord
	for range 500 { // more runs than the simulator has frames: none leaks
		if err := sim.Run(f, 1, 0, &rec); err != nil {
			t.Fatal(err)
		}
		st := rec.Steps()
		if len(st) != 3 || st[0].Stage != "parse" || st[1].Stage != "macswitch" || st[2].Stage != "ttldown" || st[2].Header()[8] != f[14+8]-1 {
			t.Fatalf("steps %+v", st)
		}
		if ex := rec.Exits(); len(ex) != 1 || ex[0].Outcome != fastpath.TraceSent || ex[0].Port != 2 || ex[0].Queue != -1 {
			t.Fatalf("exits %+v", ex)
		}
	}
	if err := sim.Run([]byte{1, 2, 3}, 1, 0, &rec); err != nil {
		t.Fatal(err)
	}
	if ex := rec.Exits(); len(ex) != 1 || ex[0].Outcome != fastpath.TraceDropped || ex[0].Reason != fastpath.DropMalformed {
		t.Fatalf("a malformed frame: exits %+v", ex)
	}
	if err := sim.Run(nil, 1, 0, &rec); err == nil {
		t.Fatal("an empty frame was run")
	}
	sim.Close()
	if err := sim.Run(f, 1, 0, &rec); err == nil {
		t.Fatal("a closed simulator ran a frame")
	}
}
