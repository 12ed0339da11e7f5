package fastpath

import (
	"errors"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/xdpfwd/xdpfwd/fastpath/cbpf"
)

// A trace follows the packets a filter chooses through the pipeline, as
// the kernel's `nft monitor trace` or OVS's ofproto/trace: for each, what
// it was when it came in, then after every stage what the stage decided
// (its action and drop reason, the egress port, the conntrack state, the
// packet's headers as it left them, the stage's own account of what it
// did if it gives one: Explainer) and how long the stage took over the
// batch, and finally where the packet went: the TX queue it was put on,
// the drop and its reason, or the stage that kept it.
//
// A packet a stage holds (ActionStolen: the router waiting for a
// neighbour) keeps its trace's serial and its record's ID in the Meta the
// stage saves (Meta.TraceSerial, TraceID). When the stage gives it back
// (Batch.Reinject) on the same worker while the same trace runs, the
// trace opens a record that Continues the first, with the steps from the
// releasing stage on and the exit; such a record does not count against
// TraceConfig.Count (it is the same packet). Released after the trace
// ended, or under another trace, the packet is not traced. While a trace
// runs and stages hold packets it traced, the worker traces every batch
// (its stages are timed), so that it sees them come back.
//
// With no trace set, a worker pays one atomic pointer load per batch.
// With one, it runs the filter over the batch's received packets; the
// pipeline records steps only in batches that hold a traced packet, and
// only for those packets. Records go into a bounded ring per worker
// (Trace.Drain empties it); a full ring traces no more packets until it
// is drained (counted, Trace.Lost), and never slows the others.

// TraceConfig describes a trace.
type TraceConfig struct {
	// Port is the ingress port of the packets traced, or AnyPort.
	Port PortID
	// Filter, if not nil, chooses the packets: those it returns a
	// length above 0 for.
	Filter *cbpf.Program
	// Count is how many packets the trace takes, over all workers; 0
	// means no bound.
	Count int
	// Ring is the number of records of the ring on each worker, 0
	// meaning DefaultTraceRing. It is rounded up to a power of 2.
	Ring int
}

// DefaultTraceRing is the default number of records of a trace's ring on
// each worker.
const DefaultTraceRing = 64

// Bounds of a trace record.
const (
	// MaxTraceSteps is the most steps a record keeps; a packet that
	// goes through more stages (copies through the per-output hooks
	// each add theirs) has the first ones.
	MaxTraceSteps = 48
	// TraceSnap is the most bytes of the frame as received a record
	// keeps.
	TraceSnap = 128
	// TraceHeader is the most bytes of the packet, from its IP header
	// (from the frame's start without one), a step keeps.
	TraceHeader = 64
	// TraceNote is the most bytes of a stage's account a step keeps.
	TraceNote = 192
)

// Explainer is a stage that can say what it did to a traced packet. The
// pipeline calls Explain, right after the stage's Process and only for
// the traced packets of the batch, to write a line of text into note. It
// runs on the worker's thread.
type Explainer interface {
	Explain(p *Packet, note *Note)
}

// Note is a trace step's line of text being written: what does not fit
// in TraceNote bytes is cut. Its methods do not allocate.
type Note struct {
	b []byte
}

// Len returns how many bytes the note has so far.
func (n *Note) Len() int { return len(n.b) }

// Str appends s.
func (n *Note) Str(s string) {
	n.b = append(n.b, s[:min(len(s), cap(n.b)-len(n.b))]...)
}

// Uint appends v in decimal.
func (n *Note) Uint(v uint64) {
	var d [20]byte
	i := len(d)
	for {
		i--
		d[i] = byte('0' + v%10)
		if v /= 10; v == 0 {
			break
		}
	}
	n.b = append(n.b, d[i:][:min(len(d)-i, cap(n.b)-len(n.b))]...)
}

// MAC appends a MAC address, as 02:00:00:00:00:01.
func (n *Note) MAC(m [6]byte) {
	const hex = "0123456789abcdef"
	var b [17]byte
	for i, x := range m {
		if i > 0 {
			b[3*i-1] = ':'
		}
		b[3*i], b[3*i+1] = hex[x>>4], hex[x&0xf]
	}
	n.b = append(n.b, b[:min(len(b), cap(n.b)-len(n.b))]...)
}

// Addr appends an IP address.
func (n *Note) Addr(a netip.Addr) {
	var buf [64]byte
	b := a.AppendTo(buf[:0])
	n.b = append(n.b, b[:min(len(b), cap(n.b)-len(n.b))]...)
}

// TraceStep is what one stage did to a traced packet.
type TraceStep struct {
	// Hook and Stage say where: the stage's hook and name.
	Hook  Hook
	Stage string
	// Nanoseconds is the time the stage's Process took over the whole
	// batch, of BatchPackets packets still in flight before it.
	Nanoseconds  uint32
	BatchPackets uint16
	// What the packet's metadata was after the stage.
	Action   Action
	Reason   Reason
	Egress   Egress
	OutPort  PortID
	Group    GroupID
	OutIface uint16
	CtState  uint8
	Mark     uint32
	// HeaderIsIP reports that Header starts at the IP header (else at
	// the frame's start).
	HeaderIsIP bool
	// Copy says which copy of the packet the step is of, where a stage
	// made copies of it (a flood's, one a port; a fragment's): the k-th
	// packet of the record in the stage's batch, from 0, in batch order,
	// which the copies keep from one stage to the next (at the
	// per-output hooks counted on over the output batch's flushes). The
	// per-output copies are counted anew: a copy dropped before them
	// leaves its number to the next.
	Copy uint8

	headerLen uint8
	header    [TraceHeader]byte
	noteLen   uint8
	note      [TraceNote]byte
}

// Header returns the packet's first bytes after the stage, from its IP
// header on if it has one.
func (s *TraceStep) Header() []byte { return s.header[:s.headerLen] }

// Note returns what the stage said it did, or "".
func (s *TraceStep) Note() string { return string(s.note[:s.noteLen]) }

// TraceOutcome is where a traced packet went.
type TraceOutcome uint8

// The outcomes.
const (
	// TraceInFlight: the record was published before the packet left
	// (the worker stopped tracing mid-batch): nothing is known.
	TraceInFlight TraceOutcome = iota
	// TraceSent: put on a TX queue of OutPort (for a group, each copy).
	TraceSent
	// TraceDropped: dropped for Reason, counted on OutPort.
	TraceDropped
	// TraceConsumed: a stage consumed it (answered it, or gave it to
	// the host).
	TraceConsumed
	// TraceHeld: a stage kept it (a packet waiting for its next hop's
	// address); its later steps are in a record that Continues this
	// one, if the stage gives it back while the trace runs.
	TraceHeld
)

// TraceExit is one way a traced packet (or one of its copies) left.
type TraceExit struct {
	Outcome TraceOutcome
	// Port is the egress port (sent), or the port the drop counts on.
	Port PortID
	// Queue is the egress queue (sent).
	Queue int
	// Reason is a drop's reason.
	Reason Reason
}

// maxTraceExits bounds the exits a record keeps (a flood to many ports).
const maxTraceExits = 16

// TraceRecord is one traced packet's walk through the pipeline.
type TraceRecord struct {
	// ID numbers the record in its trace, from 1, over all workers (the
	// packet's Meta.TraceID); a Simulator's records have 0.
	ID uint32
	// Continues, if not 0, is the ID of the record of the same packet
	// before a stage held it: this one follows it from its release on.
	// Its Time is the batch that released it, Port where the packet
	// first came in, Queue -1 (the releasing batch may be an idle
	// turn), Length and Frame the packet as the stage gave it back.
	Continues uint32
	// Time is the worker's clock reading of the batch.
	Time Time
	// Worker is the index of the worker's ring in the trace, in the
	// order SetTrace was called; Port and Queue are where the packet
	// came in: the port and the worker's queue index (WorkerConfig.Queues).
	Worker int
	Port   PortID
	Queue  int
	// Length is the frame's length as received; Frame its first bytes.
	Length   int
	frameLen int
	frame    [TraceSnap]byte
	nsteps   int
	steps    [MaxTraceSteps]TraceStep
	nexits   int
	exits    [maxTraceExits]TraceExit
	// MoreSteps counts steps not kept (beyond MaxTraceSteps).
	MoreSteps int
	// ended has bit k set once copy k stopped going on (dropped,
	// consumed, held): no stage after works on it, so no step follows.
	// The copies are counted anew over the per-output copies (ended[1])
	// than before them (ended[0]); copies beyond 64 share the bits.
	ended [2]uint64
}

// Frame returns the first bytes of the frame as received.
func (r *TraceRecord) Frame() []byte { return r.frame[:r.frameLen] }

// Steps returns the record's steps, in order.
func (r *TraceRecord) Steps() []TraceStep { return r.steps[:r.nsteps] }

// Exits returns where the packet and its copies went.
func (r *TraceRecord) Exits() []TraceExit { return r.exits[:r.nexits] }

// Trace is a running trace: a ring of records on each worker it is set
// on (Worker.SetTrace), which Drain empties.
type Trace struct {
	cfg    TraceConfig
	serial uint16
	left   atomic.Int64  // packets the count still allows; <0: no bound
	ids    atomic.Uint32 // the last record ID given
	// open counts the records taken from the count and not yet
	// published, held the traced packets stages hold whose release is
	// not traced yet: Done waits for both.
	open atomic.Int64
	held atomic.Int64

	rings workerRings[*traceRing]
}

// NewTrace returns a trace for cfg, set on no worker yet.
func NewTrace(cfg TraceConfig) (*Trace, error) {
	if cfg.Count < 0 || cfg.Ring < 0 || cfg.Ring > 1<<12 {
		return nil, errors.New("trace: count and ring must be positive (ring at most 4096)")
	}
	cfg.Ring = ringSlots(cfg.Ring, DefaultTraceRing)
	t := &Trace{cfg: cfg, serial: nextTraceSerial()}
	t.left.Store(-1)
	if cfg.Count > 0 {
		t.left.Store(int64(cfg.Count))
	}
	return t, nil
}

// traceSerials numbers the traces of the process (Trace.Serial).
var traceSerials atomic.Uint32

// nextTraceSerial returns the next trace's serial, never 0 (a packet's
// Meta.TraceSerial 0 means none). It wraps after 65535 traces: a packet
// held across that many traces would be taken for one of the last.
func nextTraceSerial() uint16 {
	for {
		if s := uint16(traceSerials.Add(1)); s != 0 {
			return s
		}
	}
}

// Config returns the trace's configuration.
func (t *Trace) Config() TraceConfig { return t.cfg }

// Serial returns the number that tells the trace from the others of the
// process in a held packet's Meta.TraceSerial.
func (t *Trace) Serial() uint16 { return t.serial }

// take reports whether the count allows one more packet, and takes it.
// The record it allows is open (not yet published) from before the
// count moves, so that Done never sees the count reached with the record
// unpublished.
func (t *Trace) take() bool {
	t.open.Add(1)
	for {
		n := t.left.Load()
		if n < 0 {
			return true
		}
		if n == 0 {
			t.open.Add(-1)
			return false
		}
		if t.left.CompareAndSwap(n, n-1) {
			return true
		}
	}
}

// nextID returns a new record ID, never 0.
func (t *Trace) nextID() uint32 {
	for {
		if id := t.ids.Add(1); id != 0 {
			return id
		}
	}
}

// Counted reports whether the trace took as many packets as its count
// and published their records; some may still be held (Held).
func (t *Trace) Counted() bool { return t.left.Load() == 0 && t.open.Load() == 0 }

// Held returns how many packets the trace followed that stages hold and
// have not given back to it yet.
func (t *Trace) Held() int { return int(max(t.held.Load(), 0)) }

// Done reports whether the trace took as many packets as its count,
// published their records and followed every one a stage held to its
// release: nothing more will come. A trace whose held packets never come
// back (their worker was rebuilt) is never done; its reader bounds the
// wait (Counted, Held).
func (t *Trace) Done() bool { return t.Counted() && t.held.Load() <= 0 }

// Drain calls fn with each record the workers published since the last
// Drain, oldest first per worker, and returns how many. The record is
// valid only during the call. One goroutine drains (each ring has a
// single consumer); fn may call into anything, SetTrace included.
func (t *Trace) Drain(fn func(r *TraceRecord)) int {
	n := 0
	for _, r := range t.rings.all() { // fn runs without the lock, which SetTrace takes
		n += r.consume(func(i uint64) { fn(&r.recs[i]) })
	}
	return n
}

// Lost returns how many packets the filter chose that were not traced
// because a worker's ring was full.
func (t *Trace) Lost() uint64 { return t.rings.lost() }

// traceRing is one worker's ring of records: single producer (the
// worker), single consumer (Drain, under the trace's mutex). The worker
// fills records in place from head on and publishes them at the end of
// the batch by moving head.
type traceRing struct {
	t      *Trace
	index  int // in t.rings: the worker's number in records
	port   PortID
	filter *cbpf.Program
	recs   []TraceRecord

	spsc
	filtered filterBatch // the worker's
}

// SetTrace starts trace t on the worker, with a ring of its own (made
// here, not on the worker's thread), or stops the worker's trace if t is
// nil. The worker takes it up at its next batch. It is safe to call from
// any goroutine; after SetTrace(nil), Drain once more after a batch's
// time for the records of the last batch.
func (w *Worker) SetTrace(t *Trace) {
	if t == nil {
		w.trace.Store(nil)
		return
	}
	r := &traceRing{t: t, port: t.cfg.Port, filter: t.cfg.Filter, recs: make([]TraceRecord, t.cfg.Ring)}
	r.mask = uint64(t.cfg.Ring - 1)
	r.index = t.rings.add(r) // read by the worker only, after the Store
	w.trace.Store(r)
}

// tracing is a worker's tracing of one batch: the records it opened, by
// Meta.Trace - 1.
type tracing struct {
	ring *traceRing
	open [BatchSize + MaxEmitted]*TraceRecord
	n    int
	// taken counts the batch's records taken from the trace's count,
	// followed the held packets of the trace that came back in it
	// (traced again or lost); held counts, on this worker, the packets
	// of ring's trace that stages hold, as far as the worker knows.
	taken, followed, held int
	gen                   uint16 // the batch's generation, in Meta.Trace's high byte
	// note is what Explain writes to: a Note on the stack would escape
	// to the heap through the interface call.
	note Note
	// copies counts, in one stage's pass over its batch, the packets of
	// each open record seen so far: their TraceStep.Copy.
	copies [BatchSize + MaxEmitted]uint8
	// outBase counts, per open record, its per-output copies earlier
	// flushes of the batch's output batch took.
	outBase [BatchSize + MaxEmitted]uint8
}

// traceIngress chooses the batch's traced packets, received on queue qi,
// opens their records and marks them (Meta.Trace), for the trace of ring
// r. The batch is traced if it holds a traced packet, or stages hold
// packets of the trace that may come back in it.
func (w *Worker) traceIngress(r *traceRing, b *Batch, qi int, now Time) {
	tr := &w.tracing
	if tr.ring != r || w.stolen == 0 {
		tr.held = 0 // a new trace, or nothing held any more
	}
	tr.ring = r
	tr.gen = (tr.gen + 1) & 0xff
	tail := r.tail.Load()
	chosen := r.filtered.packets(r.filter, 1, b.Packets[:b.Len])
	for i, c := range chosen {
		p := &b.Packets[i] // Trace is 0: Reset cleared it
		if c == 0 || r.port != AnyPort && p.InPort != r.port {
			continue
		}
		rec := tr.slot(tail)
		if rec == nil {
			continue
		}
		if !r.t.take() {
			break
		}
		tr.taken++
		tr.begin(rec, p, now, qi)
	}
	if tr.n > 0 || tr.held > 0 {
		w.pipeline.tr = tr
	}
}

// slot returns the ring's record for the batch's next one, or nil if the
// ring is full (counted as lost); tail is the ring's tail.
func (tr *tracing) slot(tail uint64) *TraceRecord {
	r := tr.ring
	pos := r.head.Load() + uint64(tr.n)
	if pos-tail >= uint64(len(r.recs)) {
		r.lost.Add(1)
		return nil
	}
	return &r.recs[pos&r.mask]
}

// begin opens rec, the record of p (which came in on queue qi) in the
// batch of time now, and marks p as its packet.
func (tr *tracing) begin(rec *TraceRecord, p *Packet, now Time, qi int) {
	r := tr.ring
	rec.ID, rec.Continues = r.t.nextID(), 0
	rec.Time, rec.Worker, rec.Port, rec.Queue, rec.Length = now, r.index, p.InPort, qi, len(p.Data)
	rec.frameLen = copy(rec.frame[:], p.Data)
	rec.nsteps, rec.nexits, rec.MoreSteps, rec.ended = 0, 0, 0, [2]uint64{}
	tr.open[tr.n] = rec
	tr.copies[tr.n], tr.outBase[tr.n] = 0, 0
	tr.n++
	p.Trace = tr.gen<<8 | uint16(tr.n)
	p.TraceSerial, p.TraceID = r.t.serial, rec.ID
}

// follow opens the record of p, a packet a stage held and gave back in
// this batch (Meta.Trace 0, TraceID not), that continues its record
// before, if it was held under the batch's trace and the ring has room.
// Either way p is looked at once: its trace identity is cleared unless
// it is traced again.
func (tr *tracing) follow(p *Packet, now Time) *TraceRecord {
	serial, held := p.TraceSerial, p.TraceID
	p.TraceSerial, p.TraceID = 0, 0
	r := tr.ring
	if r == nil || serial != r.t.serial {
		return nil // held before this trace began: not ours
	}
	tr.followed++
	tr.held = max(tr.held-1, 0)
	rec := tr.slot(r.tail.Load())
	if rec == nil {
		return nil
	}
	tr.begin(rec, p, now, -1)
	rec.Continues = held
	return rec
}

// tracePublish publishes the batch's records, then tells the trace how
// many it took and how many held packets came back: Done waits for both.
func (w *Worker) tracePublish() {
	tr := &w.tracing
	if tr.n > 0 {
		tr.ring.head.Add(uint64(tr.n))
		tr.n = 0
	}
	if tr.taken > 0 {
		tr.ring.t.open.Add(int64(-tr.taken))
		tr.taken = 0
	}
	if tr.followed > 0 {
		tr.ring.t.held.Add(int64(-tr.followed))
		tr.followed = 0
	}
	w.pipeline.tr = nil
}

// record returns the open record of traced packet p, nil if p is not
// traced in this batch.
func (tr *tracing) record(p *Packet) *TraceRecord {
	i := int(p.Trace & 0xff)
	if i == 0 || tr == nil || i > tr.n || p.Trace>>8 != tr.gen {
		return nil
	}
	return tr.open[i-1]
}

// traceExit records how traced packet p (or a copy) left the worker.
func (w *Worker) traceExit(p *Packet, e TraceExit) {
	if rec := w.tracing.record(p); rec != nil {
		rec.addExit(e)
	}
}

// traceHeld records that a stage holds traced packet p (on port), and
// counts it among the packets of the trace held: the trace follows it
// again when it comes back (follow).
func (w *Worker) traceHeld(p *Packet, port PortID) {
	tr := &w.tracing
	rec := tr.record(p)
	if rec == nil {
		return
	}
	rec.addExit(TraceExit{Outcome: TraceHeld, Port: port})
	tr.held++
	tr.ring.t.held.Add(1)
}

// traceStage records, for each traced packet of b, the step stage a
// (hook h) made of it, which took d over the batch of n packets at time
// now. A held packet of the trace the stage gave back is traced again
// from this step on (follow).
func (tr *tracing) traceStage(b *Batch, a *Attached, now Time, d time.Duration, n int) {
	ex, _ := a.Stage.(Explainer)
	perOutput := a.Hook.PerOutput()
	clear(tr.copies[:tr.n])
	for i := range b.Packets[:b.Len] {
		p := &b.Packets[i]
		if p.Action == actionDone {
			continue
		}
		rec := tr.record(p)
		if rec == nil && p.Trace == 0 && p.TraceID != 0 {
			rec = tr.follow(p, now)
		}
		if rec == nil {
			continue
		}
		k := p.Trace&0xff - 1 // record (or follow) checked the index
		c := &tr.copies[k]
		copyOf := *c
		*c = min(*c+1, 255)
		if perOutput {
			copyOf = uint8(min(int(copyOf)+int(tr.outBase[k]), 255))
		}
		ended, bit := &rec.ended[0], uint64(1)<<(copyOf&63)
		if perOutput {
			ended = &rec.ended[1]
		}
		if *ended&bit != 0 {
			continue // the stage did not work on it: it ended before
		}
		if p.Action != ActionContinue {
			*ended |= bit
		}
		if rec.nsteps == MaxTraceSteps {
			rec.MoreSteps++
			continue
		}
		s := &rec.steps[rec.nsteps]
		rec.nsteps++
		s.Copy = copyOf
		s.Hook, s.Stage = a.Hook, a.Stage.Name()
		s.Nanoseconds, s.BatchPackets = uint32(min(d, time.Duration(^uint32(0)))), uint16(max(n, b.Len)) // b.Len: a batch the stage gave held packets back into
		s.Action, s.Reason, s.Egress, s.OutPort, s.Group = p.Action, p.Reason, p.Egress, p.OutPort, p.Group
		s.OutIface, s.CtState, s.Mark = p.OutIface, p.CtState, p.Mark
		from := 0
		if p.L3Off != 0 && int(p.L3Off) < len(p.Data) {
			from = int(p.L3Off)
		}
		s.HeaderIsIP = from != 0
		s.headerLen = uint8(copy(s.header[:], p.Data[from:]))
		s.noteLen = 0
		if ex != nil {
			tr.note.b = s.note[:0]
			ex.Explain(p, &tr.note)
			s.noteLen = uint8(len(tr.note.b))
			tr.note.b = nil
		}
	}
}
