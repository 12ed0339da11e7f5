package fastpath

import (
	"errors"
	"net/netip"
	"sync"
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
	// address); its later steps are not in the record.
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
	cfg  TraceConfig
	left atomic.Int64 // packets the count still allows; <0: no bound

	mu    sync.Mutex
	rings []*traceRing
}

// NewTrace returns a trace for cfg, set on no worker yet.
func NewTrace(cfg TraceConfig) (*Trace, error) {
	if cfg.Count < 0 || cfg.Ring < 0 || cfg.Ring > 1<<12 {
		return nil, errors.New("trace: count and ring must be positive (ring at most 4096)")
	}
	if cfg.Ring == 0 {
		cfg.Ring = DefaultTraceRing
	}
	n := 1
	for n < cfg.Ring {
		n <<= 1
	}
	cfg.Ring = n
	t := &Trace{cfg: cfg}
	t.left.Store(-1)
	if cfg.Count > 0 {
		t.left.Store(int64(cfg.Count))
	}
	return t, nil
}

// Config returns the trace's configuration.
func (t *Trace) Config() TraceConfig { return t.cfg }

// take reports whether the count allows one more packet, and takes it.
func (t *Trace) take() bool {
	for {
		n := t.left.Load()
		if n < 0 {
			return true
		}
		if n == 0 {
			return false
		}
		if t.left.CompareAndSwap(n, n-1) {
			return true
		}
	}
}

// Done reports whether the trace took as many packets as its count.
func (t *Trace) Done() bool { return t.left.Load() == 0 }

// Drain calls fn with each record the workers published since the last
// Drain, oldest first per worker, and returns how many. The record is
// valid only during the call. One goroutine drains (each ring has a
// single consumer); fn may call into anything, SetTrace included.
func (t *Trace) Drain(fn func(r *TraceRecord)) int {
	t.mu.Lock()
	rings := t.rings // fn runs without the lock, which SetTrace takes
	t.mu.Unlock()
	n := 0
	for _, r := range rings {
		head := r.head.Load()
		for tail := r.tail.Load(); tail != head; tail++ {
			fn(&r.recs[tail&r.mask])
			n++
			r.tail.Store(tail + 1)
		}
	}
	return n
}

// Lost returns how many packets the filter chose that were not traced
// because a worker's ring was full.
func (t *Trace) Lost() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	var n uint64
	for _, r := range t.rings {
		n += r.lost.Load()
	}
	return n
}

// traceRing is one worker's ring of records: single producer (the
// worker), single consumer (Drain, under the trace's mutex). The worker
// fills records in place from head on and publishes them at the end of
// the batch by moving head.
type traceRing struct {
	t      *Trace
	index  int // in t.rings
	port   PortID
	filter *cbpf.Program
	recs   []TraceRecord
	mask   uint64

	_    [64]byte
	head atomic.Uint64
	_    [56]byte
	tail atomic.Uint64
	_    [56]byte
	lost atomic.Uint64
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
	r := &traceRing{t: t, port: t.cfg.Port, filter: t.cfg.Filter, recs: make([]TraceRecord, t.cfg.Ring), mask: uint64(t.cfg.Ring - 1)}
	t.mu.Lock()
	r.index = len(t.rings)
	t.rings = append(t.rings, r)
	t.mu.Unlock()
	w.trace.Store(r)
}

// tracing is a worker's tracing of one batch: the records it opened, by
// Meta.Trace - 1.
type tracing struct {
	ring *traceRing
	open [BatchSize + MaxEmitted]*TraceRecord
	n    int
	gen  uint16 // the batch's generation, in Meta.Trace's high byte
	// note is what Explain writes to: a Note on the stack would escape
	// to the heap through the interface call.
	note Note
}

// traceIngress chooses the batch's traced packets, received on queue qi,
// opens their records and marks them (Meta.Trace).
func (w *Worker) traceIngress(b *Batch, qi int, now Time) {
	tr := &w.tracing
	r := tr.ring
	tr.gen = (tr.gen + 1) & 0xff
	tail := r.tail.Load()
	for i := range b.Packets[:b.Len] {
		p := &b.Packets[i] // Trace is 0: Reset cleared it
		if r.port != AnyPort && p.InPort != r.port || r.filter != nil && r.filter.Run(p.Data) == 0 {
			continue
		}
		pos := r.head.Load() + uint64(tr.n)
		if pos-tail >= uint64(len(r.recs)) {
			r.lost.Add(1)
			continue
		}
		if !r.t.take() {
			break
		}
		rec := &r.recs[pos&r.mask]
		rec.Time, rec.Worker, rec.Port, rec.Queue, rec.Length = now, r.index, p.InPort, qi, len(p.Data)
		rec.frameLen = copy(rec.frame[:], p.Data)
		rec.nsteps, rec.nexits, rec.MoreSteps = 0, 0, 0
		tr.open[tr.n] = rec
		tr.n++
		p.Trace = tr.gen<<8 | uint16(tr.n)
	}
	if tr.n > 0 {
		w.pipeline.tr = tr
	}
}

// tracePublish publishes the batch's records.
func (w *Worker) tracePublish() {
	tr := &w.tracing
	if tr.n > 0 {
		tr.ring.head.Add(uint64(tr.n))
		tr.n = 0
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

// traceStage records, for each traced packet of b, the step stage a
// (hook h) made of it, which took d over the batch of n packets.
func (tr *tracing) traceStage(b *Batch, a *Attached, d time.Duration, n int) {
	ex, _ := a.Stage.(Explainer)
	for i := range b.Packets[:b.Len] {
		p := &b.Packets[i]
		rec := tr.record(p)
		if rec == nil || p.Action == actionDone {
			continue
		}
		if rec.nsteps == MaxTraceSteps {
			rec.MoreSteps++
			continue
		}
		s := &rec.steps[rec.nsteps]
		rec.nsteps++
		s.Hook, s.Stage = a.Hook, a.Stage.Name()
		s.Nanoseconds, s.BatchPackets = uint32(min(d, time.Duration(^uint32(0)))), uint16(n)
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
