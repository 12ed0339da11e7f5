package conntrack

import (
	"slices"
	"sync"
	"sync/atomic"
)

// EventType is the kind of a conntrack event, as ctnetlink reports them
// and `conntrack -E` prints them.
type EventType uint8

// The event types. They are bits, so that a set of them is a mask.
const (
	// EventNew: a connection was confirmed into the table
	// (IPCTNL_MSG_CT_NEW with NLM_F_CREATE: IPCT_NEW).
	EventNew EventType = 1 << iota
	// EventUpdate: a confirmed connection changed in a way the kernel
	// reports (IPCT_REPLY, IPCT_ASSURED, IPCT_PROTOINFO, IPCT_MARK).
	EventUpdate
	// EventDestroy: a connection was deleted (timed out, killed by the
	// TCP tracker, flushed, evicted by early drop; IPCT_DESTROY).
	EventDestroy
)

// String returns the name conntrack -E prints between brackets.
func (t EventType) String() string {
	switch t {
	case EventNew:
		return "NEW"
	case EventUpdate:
		return "UPDATE"
	case EventDestroy:
		return "DESTROY"
	}
	return "UNKNOWN"
}

// EventCause is why the kernel cached an event: its IPCT_* bits that
// this tracker produces. What an UPDATE line shows depends on them (the
// TCP state only with EventProtoInfo, the mark also when it is 0 with
// EventMark).
type EventCause uint8

// The causes.
const (
	// CauseReply: the first reply was seen (IPCT_REPLY).
	CauseReply EventCause = 1 << iota
	// CauseAssured: the connection became ASSURED (IPCT_ASSURED).
	CauseAssured
	// CauseProtoInfo: the TCP state changed (IPCT_PROTOINFO).
	CauseProtoInfo
	// CauseMark: the mark changed (IPCT_MARK).
	CauseMark
)

// Event is one conntrack event: what happened, why, when (on the
// table's clock, ns), whose request caused it, and the entry as it was
// then. It holds no pointers: events are copied into rings the garbage
// collector does not scan.
type Event struct {
	// Type is NEW, UPDATE or DESTROY.
	Type EventType
	// Cause is why an UPDATE (or NEW) was reported.
	Cause EventCause
	// Origin is the process id of the user-space request that caused
	// the event (a flush), 0 for the datapath's: conntrack -E prints
	// [USERSPACE] portid=PID for the former.
	Origin uint32
	// Time is when it happened, on the table's clock.
	Time int64
	// Entry is the connection at the event.
	Entry Entry
}

// EventRingSize is the number of events a producer's ring holds until
// the reader drains it; beyond that, events are lost and counted (the
// kernel's ENOBUFS on the netlink socket).
const EventRingSize = 4096

// eventRing is a bounded single-producer, single-consumer ring of
// events. A shared ring (the control verbs') serialises its producers
// with mu.
type eventRing struct {
	head atomic.Uint64 // next slot the producer writes
	_    [56]byte
	tail atomic.Uint64 // next slot the reader reads
	_    [56]byte
	lost atomic.Uint64 // events dropped on a full ring
	mu   sync.Mutex    // producers of a shared ring
	buf  [EventRingSize]Event
}

// slot returns the slot the next event goes in, or nil (counted as
// lost) if the ring is full; commit publishes it.
func (r *eventRing) slot() *Event {
	h := r.head.Load()
	if h-r.tail.Load() >= EventRingSize {
		r.lost.Add(1)
		return nil
	}
	return &r.buf[h%EventRingSize]
}

func (r *eventRing) commit() { r.head.Add(1) }

// evSink is one producer's ring: a worker's, the reaper's (Expire) or
// the control verbs' (shared). The ring is allocated the first time an
// event is produced while someone subscribes.
type evSink struct {
	ring   atomic.Pointer[eventRing]
	shared bool
}

// events is the table's event state: the number of subscribers, which
// every event site loads once, and the producers' rings.
type events struct {
	subs  atomic.Int32
	mu    sync.Mutex                   // registers rings
	rings atomic.Pointer[[]*eventRing] // every ring, for the reader
	reap  evSink
	ctl   evSink
	read  sync.Mutex // one reader at a time
}

// on reports whether anyone subscribes to events: the one atomic load an
// event site costs when nobody does.
func (t *Table) evOn() bool { return t.ev.subs.Load() != 0 }

// SubscribeEvents turns event production on (for every subscriber
// counted; UnsubscribeEvents ends one). While nobody subscribes, the
// event sites cost one atomic load and produce nothing.
func (t *Table) SubscribeEvents() { t.ev.subs.Add(1) }

// UnsubscribeEvents ends one SubscribeEvents.
func (t *Table) UnsubscribeEvents() {
	if t.ev.subs.Add(-1) < 0 {
		t.ev.subs.Add(1)
	}
}

// emitter returns the sink's ring, allocating and registering it the
// first time.
func (t *Table) emitter(s *evSink) *eventRing {
	if r := s.ring.Load(); r != nil {
		return r
	}
	t.ev.mu.Lock()
	defer t.ev.mu.Unlock()
	if r := s.ring.Load(); r != nil { // a shared sink's producers race here
		return r
	}
	r := new(eventRing)
	old := t.loadRings()
	rs := append(old[:len(old):len(old)], r)
	t.ev.rings.Store(&rs)
	s.ring.Store(r)
	return r
}

func (t *Table) loadRings() []*eventRing {
	if p := t.ev.rings.Load(); p != nil {
		return *p
	}
	return nil
}

// emit puts a copy of e, with its type, cause, origin and time, in s's
// ring. The caller checked evOn.
func (t *Table) emit(s *evSink, typ EventType, cause EventCause, origin uint32, now int64, e *Entry) {
	r := t.emitter(s)
	if s.shared {
		r.mu.Lock()
		defer r.mu.Unlock()
	}
	ev := r.slot()
	if ev == nil {
		return
	}
	ev.Type, ev.Cause, ev.Origin, ev.Time = typ, cause, origin, now
	ev.Entry = *e
	r.commit()
}

// ReadEvents moves the events the producers have made since the last
// call into dst (appending), oldest first across producers (by time, a
// producer's own order kept), and returns it with how many events were
// lost on full rings since the last call. One reader at a time: calls
// are serialised.
func (t *Table) ReadEvents(dst []Event) ([]Event, uint64) {
	t.ev.read.Lock()
	defer t.ev.read.Unlock()
	start := len(dst)
	var lost uint64
	for _, r := range t.loadRings() {
		lost += r.lost.Swap(0)
		tl, h := r.tail.Load(), r.head.Load()
		for i := tl; i != h; i++ {
			dst = append(dst, r.buf[i%EventRingSize])
		}
		r.tail.Store(h)
	}
	slices.SortStableFunc(dst[start:], func(a, b Event) int {
		switch {
		case a.Time < b.Time:
			return -1
		case a.Time > b.Time:
			return 1
		}
		return 0
	})
	return dst, lost
}

// updateCause returns the events a packet caches on its entry (record
// r, identity id), from the status before (zs0) and after (zs) and the
// TCP state before (st0): IPCT_REPLY for the first reply, IPCT_ASSURED,
// IPCT_PROTOINFO for a TCP state change. The caller holds the record
// lock.
func updateCause(r *rec, id, zs0, zs, st0 uint32) EventCause {
	var c EventCause
	if added := Status(zs &^ zs0); added != 0 {
		if added&StatusSeenReply != 0 {
			c |= CauseReply
		}
		if added&StatusAssured != 0 {
			c |= CauseAssured
		}
	}
	if uint8(id) == ProtoTCP && uint8(r.proto[tcpStateWord].Load()) != uint8(st0) {
		c |= CauseProtoInfo
	}
	return c
}

// emitNew reports e, just confirmed at now, as NEW (IPCT_NEW; a TCP
// connection's state was set too: IPCT_PROTOINFO).
func (w *Worker) emitNew(e *Entry, now int64) {
	w.evBuf = *e
	w.evBuf.Status |= StatusConfirmed
	w.evBuf.Expires = untick(tickCeil(e.Expires), now)
	var c EventCause
	if e.Tuple[0].Proto == ProtoTCP {
		c = CauseProtoInfo
	}
	w.t.emit(&w.ev, EventNew, c, 0, now, &w.evBuf)
}
