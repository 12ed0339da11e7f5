package fastpath_test

import (
	"bytes"
	"strings"
	"testing"
	"unsafe"

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

// traceRig is a rig of ports 1 and 2 with a MAC switch, explaining at
// the forward hook and ttlDown at egress, and the extra stages given.
func traceRig(t testing.TB, extra ...fastpath.Attached) *ft.Rig {
	groups := &fastpath.PortGroups{}
	stages := []fastpath.Attached{ft.NewMACSwitch(groups, 1, 2), fastpath.At(fastpath.HookForward, 0, explaining{}),
		fastpath.At(fastpath.HookEgress, 0, ttlDown{})}
	return ft.NewRig(t, ft.RigConfig{Ports: []fastpath.PortID{1, 2}, Groups: groups, Frames: 1024, Ring: 256, FillTarget: 128,
		Stages: append(stages, extra...)})
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
		if rec.ID != uint32(i+1) || rec.Continues != 0 {
			t.Fatalf("record %d: ID %d continues %d; want ID %d, continuing none", i, rec.ID, rec.Continues, i+1)
		}
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
// reason and the port it counts on; the stages after the one that
// dropped it leave no step.
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
	if st := got[0].Steps(); len(st) != 1 || st[0].Stage != "parse" || st[0].Action != fastpath.ActionDrop {
		t.Fatalf("steps %+v, want parse's drop alone (no stage after works on it)", st)
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

	// A traced packet held in each batch and given back, followed, in
	// the next.
	hr, h := holdRig(t, 8)
	h.release = true
	tr := startTrace(t, hr, fastpath.TraceConfig{Port: fastpath.AnyPort, Ring: 4096})
	hold := ft.UDP4(t, ft.MAC(2), ft.MACA, 33)
	heldBatch := [][]byte{f, hold, f}
	runHeld := func() {
		hr.Q[1].Inject(heldBatch...)
		hr.W.Poll()
		hr.Q[2].Consume()
		hr.W.Poll()
	}
	runHeld()
	if n := testing.AllocsPerRun(50, runHeld); n != 0 {
		t.Errorf("held and followed: %v allocations per batch", n)
	}
	conts := 0
	tr.Drain(func(r *fastpath.TraceRecord) {
		if r.Continues != 0 {
			conts++
		}
	})
	if conts < 50 {
		t.Errorf("held and followed: %d continuations in 52 batches", conts)
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

// holdLen is the length of the frames holding keeps: UDP4 with a
// payload of 33 bytes.
const holdLen = 14 + 20 + 8 + 33

// holding is a stage that steals every frame of holdLen bytes and, while
// release is set, gives back what it kept in batches before, to be sent
// on. It is a Holder while it keeps frames, and says of a traced packet
// whether it holds it or released it. It allocates nothing while it
// keeps at most the capacity it was made with.
type holding struct {
	kept    []keptFrame
	release bool
}

func newHolding(capacity int) *holding { return &holding{kept: make([]keptFrame, 0, capacity)} }

func (*holding) Name() string { return "holding" }

func (h *holding) Holding() bool { return len(h.kept) > 0 }

func (h *holding) Process(b *fastpath.Batch, _ fastpath.Time) {
	n := b.Len
	if h.release {
		h.giveBack(b)
	}
	for i := range b.Packets[:n] {
		if p := &b.Packets[i]; p.Action == fastpath.ActionContinue && len(p.Data) == holdLen && len(h.kept) < cap(h.kept) {
			h.kept = append(h.kept, keptFrame{p.Addr, len(p.Data), p.Meta})
			p.Action = fastpath.ActionStolen
		}
	}
}

// giveBack reinjects the kept frames, oldest first, as far as b has room.
func (h *holding) giveBack(b *fastpath.Batch) {
	k := 0
	for ; k < len(h.kept); k++ {
		f := &h.kept[k]
		p := b.Reinject(f.addr, f.n, &f.meta)
		if p == nil {
			break
		}
		p.Action = fastpath.ActionContinue
	}
	h.kept = h.kept[:copy(h.kept, h.kept[k:])]
}

func (h *holding) Explain(p *fastpath.Packet, n *fastpath.Note) {
	if p.Action == fastpath.ActionStolen {
		n.Str("holds it")
	}
}

// holdRig is traceRig with holding at the forward hook, before
// explaining.
func holdRig(t testing.TB, capacity int) (*ft.Rig, *holding) {
	h := newHolding(capacity)
	return traceRig(t, fastpath.At(fastpath.HookForward, -1, h)), h
}

// stepNames returns "hook/stage" of each of rec's steps.
func stepNames(rec *fastpath.TraceRecord) []string {
	var names []string
	for _, s := range rec.Steps() {
		names = append(names, s.Hook.String()+"/"+s.Stage)
	}
	return names
}

// TestTraceFollowsHeldPacket: a traced packet a stage holds ends its
// record as held, at the holding stage's step; given back in a later
// batch (here an idle one), it gets a second record that continues the
// first, with the steps from the stage that gave it back on and the
// exit, without taking from the trace's count: another packet is not
// traced, and the trace is done only once the held one came back.
func TestTraceFollowsHeldPacket(t *testing.T) {
	r, h := holdRig(t, 8)
	tr := startTrace(t, r, fastpath.TraceConfig{Port: fastpath.AnyPort, Count: 1})
	held := ft.UDP4(t, ft.MAC(2), ft.MACA, 33)
	if out := r.Send(1, held); len(out[2]) != 0 {
		t.Fatalf("a held packet was sent: %x", out[2])
	}
	got := records(tr)
	if len(got) != 1 {
		t.Fatalf("%d records while held, want 1", len(got))
	}
	first := got[0]
	if ex := first.Exits(); first.ID != 1 || first.Continues != 0 || len(ex) != 1 || ex[0].Outcome != fastpath.TraceHeld || ex[0].Port != 1 {
		t.Fatalf("held record: ID %d continues %d exits %+v", first.ID, first.Continues, ex)
	}
	st := first.Steps()
	if len(st) < 3 || st[2].Stage != "holding" || st[2].Action != fastpath.ActionStolen || st[2].Note() != "holds it" {
		t.Fatalf("held record's steps %q: no holding step that stole it", stepNames(&first))
	}
	if tr.Done() || !tr.Counted() || tr.Held() != 1 {
		t.Fatalf("while held: done %v counted %v held %d; want not done, counted, 1 held", tr.Done(), tr.Counted(), tr.Held())
	}
	r.Send(1, ft.UDP4(t, ft.MAC(2), ft.MACA, 10)) // beyond the count
	if n := len(records(tr)); n != 0 {
		t.Fatalf("%d records of a packet beyond the count", n)
	}

	h.release = true
	r.Now += 5000
	r.W.Poll() // no frame comes in: the idle turn gives it back
	out := r.Drain()
	if len(out[2]) != 1 || out[2][0][22] != held[22]-1 {
		t.Fatalf("released: sent %x on 2, want the held frame, TTL decremented once", out[2])
	}
	got = records(tr)
	if len(got) != 1 {
		t.Fatalf("%d records after the release, want 1", len(got))
	}
	cont := got[0]
	want := []string{"ip forward/holding", "ip forward/explaining", "netdev egress/ttldown"}
	if names := stepNames(&cont); strings.Join(names, " ") != strings.Join(want, " ") {
		t.Fatalf("continuation's steps %q, want %q", names, want)
	}
	if cont.ID != 2 || cont.Continues != first.ID || cont.Time != r.Now || cont.Port != 1 || cont.Queue != -1 || !bytes.Equal(cont.Frame(), held) {
		t.Fatalf("continuation: ID %d continues %d time %d port %d queue %d frame %x", cont.ID, cont.Continues, cont.Time, cont.Port, cont.Queue, cont.Frame())
	}
	if st := cont.Steps(); st[0].Action != fastpath.ActionContinue || st[0].Note() != "" {
		t.Fatalf("releasing step %+v", st[0])
	}
	if ex := cont.Exits(); len(ex) != 1 || ex[0].Outcome != fastpath.TraceSent || ex[0].Port != 2 {
		t.Fatalf("continuation's exits %+v", ex)
	}
	if !tr.Done() || tr.Held() != 0 {
		t.Fatalf("after the release: done %v held %d", tr.Done(), tr.Held())
	}
}

// TestTraceHeldOutlivesTrace: a packet held under a trace and given back
// after it stopped is sent but traced by no one, neither by the stopped
// trace nor by the one running then, which started after it was held.
func TestTraceHeldOutlivesTrace(t *testing.T) {
	r, h := holdRig(t, 8)
	first := startTrace(t, r, fastpath.TraceConfig{Port: fastpath.AnyPort})
	r.Send(1, ft.UDP4(t, ft.MAC(2), ft.MACA, 33), ft.UDP4(t, ft.MAC(2), ft.MACA, 33))
	if n := len(records(first)); n != 2 || first.Held() != 2 {
		t.Fatalf("%d records, %d held; want 2 and 2", n, first.Held())
	}
	r.W.SetTrace(nil)
	h.release = true
	h.kept = h.kept[:1] // one now, the other under the next trace
	kept := h.kept[:2]
	r.W.Poll()
	if out := r.Drain(); len(out[2]) != 1 {
		t.Fatalf("released with no trace: sent %d, want 1", len(out[2]))
	}
	second := startTrace(t, r, fastpath.TraceConfig{Port: fastpath.AnyPort})
	h.kept = append(h.kept, kept[1])
	r.W.Poll()
	if out := r.Drain(); len(out[2]) != 1 {
		t.Fatalf("released under another trace: sent %d, want 1", len(out[2]))
	}
	if n1, n2 := len(records(first)), len(records(second)); n1 != 0 || n2 != 0 {
		t.Fatalf("records of packets held under a trace that ended: %d in it, %d in the next", n1, n2)
	}
	r.Send(1, ft.UDP4(t, ft.MAC(2), ft.MACA, 10))
	if got := records(second); len(got) != 1 || got[0].Continues != 0 || len(got[0].Exits()) != 1 {
		t.Fatalf("the next trace's own packet: %d records", len(got))
	}
	r.W.Poll()
	r.Conserved("after the releases")
}

// TestTraceHeldAcrossGenerations: a packet held for more than 256
// batches, so that Meta.Trace's 8-bit generation wraps, and given back in
// a batch of the generation it was held in, next to a new traced packet
// at the index it had in its own batch, is followed in a record of its
// own that continues its first; the new packet's record holds its own
// walk only.
func TestTraceHeldAcrossGenerations(t *testing.T) {
	r, h := holdRig(t, 1)
	tr := startTrace(t, r, fastpath.TraceConfig{Port: fastpath.AnyPort})
	r.Inject(1, ft.UDP4(t, ft.MAC(2), ft.MACA, 33))
	r.W.Poll()
	gen := r.W.TraceGeneration()
	got := records(tr)
	if len(got) != 1 || got[0].Exits()[0].Outcome != fastpath.TraceHeld {
		t.Fatalf("%d records, want 1, held", len(got))
	}
	held := got[0].ID
	batches := 0
	for ; batches <= 256 || r.W.TraceGeneration() != (gen-1)&0xff; batches++ {
		r.W.Poll() // an idle batch, traced: the stage holds a traced packet
	}
	h.release = true
	r.Inject(1, ft.UDP4(t, ft.MAC(2), ft.MACA, 10))
	r.W.Poll()
	if g := r.W.TraceGeneration(); g != gen {
		t.Fatalf("released in generation %d after %d batches, want %d", g, batches, gen)
	}
	if out := r.Drain(); len(out[2]) != 2 {
		t.Fatalf("sent %d on 2, want the new packet and the released one", len(out[2]))
	}
	got = records(tr)
	if len(got) != 2 {
		t.Fatalf("%d records, want the new packet's and the continuation", len(got))
	}
	for _, rec := range got {
		want := "netdev ingress/parse bridge prerouting/macswitch ip forward/holding ip forward/explaining netdev egress/ttldown"
		if rec.Continues != 0 {
			want = "ip forward/holding ip forward/explaining netdev egress/ttldown"
		}
		if names := strings.Join(stepNames(&rec), " "); names != want || rec.Continues != 0 && rec.Continues != held {
			t.Fatalf("record %d continuing %d (held: %d): steps %s, want %s", rec.ID, rec.Continues, held, names, want)
		}
		if ex := rec.Exits(); len(ex) != 1 || ex[0].Outcome != fastpath.TraceSent || ex[0].Port != 2 {
			t.Fatalf("record %d: exits %+v, want one, sent on 2", rec.ID, ex)
		}
	}
	if got[0].Continues == got[1].Continues || tr.Held() != 0 {
		t.Fatalf("records continue %d and %d, %d held; want one continuation, none held", got[0].Continues, got[1].Continues, tr.Held())
	}
}

// TestMetaSize: Meta, copied per packet, stays 120 bytes; the held
// packet's trace identity (TraceSerial, TraceID) took padding.
func TestMetaSize(t *testing.T) {
	if n := unsafe.Sizeof(fastpath.Meta{}); n != 120 {
		t.Fatalf("Meta is %d bytes, want 120", n)
	}
}

// cloning is a stage that sends a copy of every packet along with it,
// its TTL one lower (as a fragmenting stage makes a second packet).
type cloning struct{}

func (cloning) Name() string { return "cloning" }
func (cloning) Process(b *fastpath.Batch, _ fastpath.Time) {
	for i := range b.Packets[:b.Len] {
		if p := &b.Packets[i]; p.Action == fastpath.ActionContinue && p.Trace != 0 {
			if c := b.Clone(p); c != nil {
				c.Data[22]--
			}
		}
	}
}

// TestTraceCopies: when a stage makes a copy of a traced packet, the
// record's steps from that stage on say which copy each is of (in batch
// order, kept from stage to stage), and each copy has its exit.
func TestTraceCopies(t *testing.T) {
	r := traceRig(t, fastpath.At(fastpath.HookForward, 1, cloning{}))
	tr := startTrace(t, r, fastpath.TraceConfig{Port: 1, Count: 1})
	f := ft.UDP4(t, ft.MAC(2), ft.MACA, 10)
	out := r.Send(1, f)
	if len(out[2]) != 2 {
		t.Fatalf("sent %d frames on port 2, want the packet and its copy", len(out[2]))
	}
	got := records(tr)
	if len(got) != 1 {
		t.Fatalf("%d records, want 1", len(got))
	}
	var steps []string
	for _, s := range got[0].Steps() {
		ttl := byte(0)
		if h := s.Header(); len(h) > 8 {
			ttl = h[8]
		}
		steps = append(steps, s.Stage+"/"+itoa(int(s.Copy))+"/"+itoa(int(ttl)))
	}
	ttl := int(f[22])
	want := []string{"parse/0/" + itoa(ttl), "macswitch/0/" + itoa(ttl), "explaining/0/" + itoa(ttl),
		"cloning/0/" + itoa(ttl), "cloning/1/" + itoa(ttl-1),
		"ttldown/0/" + itoa(ttl-1), "ttldown/1/" + itoa(ttl-2)}
	if strings.Join(steps, " ") != strings.Join(want, " ") {
		t.Fatalf("steps (stage/copy/ttl) %q, want %q", steps, want)
	}
	if ex := got[0].Exits(); len(ex) != 2 || ex[0].Outcome != fastpath.TraceSent || ex[1].Outcome != fastpath.TraceSent {
		t.Fatalf("exits %+v, want two sent", ex)
	}
}

// dropToPort2 is a stage that drops what leaves on port 2.
type dropToPort2 struct{}

var droppedToPort2 = fastpath.NewReason("test", "dropped to port 2")

func (dropToPort2) Name() string { return "dropto2" }
func (dropToPort2) Process(b *fastpath.Batch, _ fastpath.Time) {
	for i := range b.Packets[:b.Len] {
		if p := &b.Packets[i]; p.Action == fastpath.ActionContinue && p.OutPort == 2 {
			p.Drop(droppedToPort2)
		}
	}
}

// TestTraceFloodAcrossFlushes: a flooded traced packet whose per-port
// copies fill the output batch and go out in two flushes keeps one
// number per copy across them: each copy has its own steps at the
// per-output stages, even after another copy was dropped there.
func TestTraceFloodAcrossFlushes(t *testing.T) {
	groups := &fastpath.PortGroups{}
	stages := []fastpath.Attached{ft.NewMACSwitch(groups, 1, 2, 3, 4), fastpath.At(fastpath.HookEgress, 0, ttlDown{}), fastpath.At(fastpath.HookEgress, 1, dropToPort2{})}
	r := ft.NewRig(t, ft.RigConfig{Ports: []fastpath.PortID{1, 2, 3, 4}, Groups: groups, Frames: 2048, Ring: 256, FillTarget: 128, Stages: stages})
	tr := startTrace(t, r, fastpath.TraceConfig{Port: 1, Filter: udpPortFilter(t, "5000"), Count: 1})
	var frames [][]byte
	for range 42 { // 42 floods of 3 copies fill the output batch before the traced one's last
		frames = append(frames, ft.RawFrame(ft.MAC(9), ft.MACA))
	}
	frames = append(frames, ft.UDP4(t, ft.MAC(9), ft.MACA, 10))
	r.Send(1, frames...)
	got := records(tr)
	if len(got) != 1 {
		t.Fatalf("%d records, want 1", len(got))
	}
	copies := map[uint8]fastpath.PortID{}
	for _, s := range got[0].Steps() {
		if s.Stage == "ttldown" {
			if _, dup := copies[s.Copy]; dup {
				t.Fatalf("two ttldown steps of copy %d", s.Copy)
			}
			copies[s.Copy] = s.OutPort
		}
	}
	if len(copies) != 3 {
		t.Fatalf("ttldown steps of copies %v, want 3 copies (ports 2, 3, 4)", copies)
	}
	if ex := got[0].Exits(); len(ex) != 3 {
		t.Fatalf("exits %+v, want 3", ex)
	}
}
