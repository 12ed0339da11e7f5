package neigh

import (
	"fmt"
	"slices"
	"sync/atomic"

	"github.com/xdpfwd/xdpfwd/fastpath/header"
)

// Worker is one fast-path worker's access to a Table: Resolve, the
// packets it holds for unresolved neighbours (frames of its own UMEM, so
// only it may send or free them), and its counters. One goroutine uses a
// Worker; nothing in it allocates after NewWorker.
type Worker struct {
	t *Table

	// Held packets: a pool of nodes, linked per neighbour queue in
	// arrival order, and a free list.
	pkts  []held
	free  int32
	nheld int

	// Queues, one per neighbour with held packets: dense in qs[:nq], found
	// by key through idx, an open-addressing map (linear probing,
	// backward-shift deletion) of dense index + 1.
	qs   []queue
	nq   int
	idx  []int32
	imsk uint32

	// Poll's gate: nothing to look at while the table's epoch is what
	// the last complete scan saw and no retry or deadline is due.
	seenEpoch uint64
	nextDue   ms
	scanned   bool

	// The key and round Resolve last answered Hold or HoldSolicit for.
	lastKey   key
	lastRound uint16
	lastOK    bool

	// Watched neighbours: the entries this worker's packets moved from
	// STALE to DELAY, whose DELAY timer and PROBE probes the kernel runs
	// without packets (neigh_timer_handler); Poll does it for them, until
	// they are REACHABLE, FAILED or gone. watchDue is when the earliest
	// needs a look. Beyond watchMax a neighbour is not watched: it probes
	// only when a packet uses it.
	watch    [watchMax]watched
	nwatch   int
	watchDue ms

	c, seen counters
	pub     publishedCounters

	cache [cacheSize]cached
}

// watchMax bounds the neighbours one worker watches (Worker.watch).
const watchMax = 64

// watched is a neighbour a worker watches: its key and hash.
type watched struct {
	k key
	h uint64
}

// cacheSize is the number of entries of a worker's cache of hits,
// direct-mapped.
const cacheSize = 256

// cacheIndex is k's line in a worker's cache: a multiplicative hash,
// unkeyed (addresses that collide here only fall back to the table).
func cacheIndex(k key) uint32 {
	return uint32((k.lo^k.hi*0xc2b2ae3d27d4eb4f^uint64(k.iface)<<40)*0x9e3779b97f4a7c15>>56) % cacheSize
}

type held struct {
	handle uint64
	length uint32
	round  uint16
	next   int32
}

type queue struct {
	k          key
	h          uint64
	head, tail int32
	count      int32
	bytes      uint32
}

// counters are a worker's own counters: plain words on its path,
// published once per Poll (an atomic store is a locked instruction on
// amd64: too dear per packet) for Stats to read from another goroutine.
type counters struct {
	lookups, misses, solicits, probes, queueDrops, holdRefused uint64
}

func (c *counters) add(o *counters) {
	c.lookups += o.lookups
	c.misses += o.misses
	c.solicits += o.solicits
	c.probes += o.probes
	c.queueDrops += o.queueDrops
	c.holdRefused += o.holdRefused
}

type publishedCounters struct {
	lookups, misses, solicits, probes, queueDrops, holdRefused atomic.Uint64
}

func inc(c *uint64) { *c++ }

// publish makes the counters visible to Stats.
func (w *Worker) publish() {
	if w.c == w.seen {
		return
	}
	w.seen = w.c
	w.pub.lookups.Store(w.c.lookups)
	w.pub.misses.Store(w.c.misses)
	w.pub.solicits.Store(w.c.solicits)
	w.pub.probes.Store(w.c.probes)
	w.pub.queueDrops.Store(w.c.queueDrops)
	w.pub.holdRefused.Store(w.c.holdRefused)
}

// NewWorker returns a Worker that holds at most maxHeld packets at once
// (over all neighbours). maxHeld bounds the frames of the worker's UMEM
// that waiting packets can take.
func (t *Table) NewWorker(maxHeld int) (*Worker, error) {
	if maxHeld < 1 || maxHeld > 1<<20 {
		return nil, fmt.Errorf("neigh: a worker's held packets %d out of range [1, %d]", maxHeld, 1<<20)
	}
	n := 1
	for n < 2*maxHeld {
		n <<= 1
	}
	w := &Worker{t: t, pkts: make([]held, maxHeld), qs: make([]queue, maxHeld), idx: make([]int32, n), imsk: uint32(n - 1)}
	for i := range w.pkts {
		w.pkts[i].next = int32(i + 1)
	}
	w.pkts[maxHeld-1].next = -1
	t.mu.Lock()
	t.workers = append(t.workers, w)
	t.mu.Unlock()
	return w, nil
}

// Resolve returns the destination MAC for a packet to ip on iface at now
// (nanoseconds on the workers' clock) and what to do with the packet (see
// Action): the kernel's neigh_output / __neigh_event_send. It is the
// per-packet call, after the routing decision (ip is the next hop: the
// gateway, or the destination of a connected route) and before the L2
// rewrite. It allocates nothing and takes no lock; a REACHABLE, DELAY or
// PERMANENT entry is found with loads only, and one this worker found
// before and that has not changed since with one load of the table (the
// slot's sequence) from the worker's small cache of hits.
//
// An IPv4 multicast address, 255.255.255.255, an IPv6 multicast address,
// and any address on a NOARP interface resolve without an entry (Send). A
// new neighbour gets an INCOMPLETE entry (HoldSolicit); when its family
// has GCThresh3 entries it takes the place of a FAILED or old STALE one,
// or the packet is dropped (Drop, TableFull), as the kernel drops it on
// "neighbour table overflow". A FAILED entry starts again (HoldSolicit),
// as in the kernel: the packets held in the failed round got their ICMP
// errors when it failed.
func (w *Worker) Resolve(iface uint16, ip [16]byte, now int64) (header.MAC, Action) {
	inc(&w.c.lookups)
	t := w.t
	k := makeKey(iface, &ip)
	if mac, ok := t.fixed(k); ok {
		return mac, Send
	}
	now32 := toMS(now)
	reach := t.reach.Load()
	// The worker's cache: the entry as this worker last found it, still
	// good while its slot's sequence has not moved.
	c := &w.cache[cacheIndex(k)]
	if c.lo == k.lo && c.hi == k.hi && c.iface == k.iface && c.state != 0 &&
		t.slots[c.slot].seq.Load() == c.seq && t.fresh(c.state, c.t, now32, reach) {
		return c.mac, Send
	}
	h := t.hash(k)
	var hc cached
	if t.hit(k, h, now32, reach, &hc) {
		*c = hc
		return hc.mac, Send
	}
	for range attempts {
		i, e, q, found, busy := t.find(k, h)
		if !found {
			if busy {
				continue
			}
			if t.tm.mcast == 0 {
				inc(&w.c.misses)
				return header.MAC{}, Drop
			}
			ne := entry{hi: k.hi, lo: k.lo, iface: iface}
			t.tm.startIncomplete(&ne, now32)
			var res createResult
			i, e, q, res = t.create(k, h, &ne, now32)
			switch res {
			case created:
				inc(&w.c.misses)
				inc(&w.c.solicits)
				w.lastKey, w.lastRound, w.lastOK = k, ne.round, true
				return header.MAC{}, HoldSolicit
			case full:
				inc(&w.c.misses)
				t.stats.tableFull.Add(1)
				return header.MAC{}, Drop
			case contended:
				inc(&w.c.misses)
				t.stats.contended.Add(1)
				return header.MAC{}, Drop
			}
			// exists: another worker made it meanwhile; take it.
		}
		ne, act, tr := t.tm.onSend(e, now32, reach)
		if ne != e && !t.cas(i, q, &e, &ne, tr) {
			continue
		}
		if ne.state == StateDelay && e.state != StateDelay {
			w.watchNeighbour(k, h, now32)
		}
		switch act {
		case SendProbe:
			inc(&w.c.probes)
		case HoldSolicit:
			inc(&w.c.solicits)
			fallthrough
		case Hold:
			inc(&w.c.misses)
			w.lastKey, w.lastRound, w.lastOK = k, ne.round, true
		case Drop:
			inc(&w.c.misses)
		}
		if act != Send && act != SendProbe {
			return header.MAC{}, act
		}
		return ne.mac, act
	}
	inc(&w.c.misses)
	t.stats.contended.Add(1)
	return header.MAC{}, Drop
}

// Hold keeps packet handle (a UMEM address, opaque here) of length bytes
// for ip on iface until Poll releases it, after Resolve answered Hold or
// HoldSolicit for it. It appends to dropped the handles of packets the
// caller must now free, oldest first, and reports whether it kept handle
// (if not, the caller frees handle too):
//
//   - a neighbour's held packets count at most UnresQLenBytes, each at
//     Truesize(length): over it the oldest are dropped (unres_discards,
//     __neigh_event_send); the new packet is always kept, as the kernel
//     keeps it, if it is the only one;
//   - the worker holds at most maxHeld packets: when its pool is empty
//     the oldest packet of the same neighbour makes room, and a packet
//     for a neighbour with none held is refused (HoldRefused).
//
// It allocates nothing when dropped has room for what it drops.
func (w *Worker) Hold(iface uint16, ip [16]byte, handle uint64, length uint32, dropped []uint64) ([]uint64, bool) {
	t := w.t
	k := makeKey(iface, &ip)
	h := t.hash(k)
	var round uint16
	if w.lastOK && w.lastKey == k {
		round = w.lastRound
	} else if _, e, _, found, _ := t.find(k, h); found {
		round = e.round
	}
	qi := w.queueOf(k, h)
	if qi < 0 {
		if w.free < 0 || w.nq == len(w.qs) {
			inc(&w.c.holdRefused)
			return dropped, false
		}
		qi = w.nq
		w.nq++
		w.qs[qi] = queue{k: k, h: h, head: -1, tail: -1}
		w.mapQueue(qi)
	}
	q := &w.qs[qi]
	charge := Truesize(length)
	for q.count > 0 && (uint64(q.bytes)+uint64(charge) > uint64(t.p.UnresQLenBytes) || w.free < 0) {
		dropped = append(dropped, w.pkts[q.head].handle)
		w.pop(q)
		inc(&w.c.queueDrops)
	}
	n := w.free
	w.free = w.pkts[n].next
	w.pkts[n] = held{handle: handle, length: length, round: round, next: -1}
	if q.tail < 0 {
		q.head = n
	} else {
		w.pkts[q.tail].next = n
	}
	q.tail = n
	q.count++
	q.bytes += charge
	w.nheld++
	// Look at it at the next Poll: its entry may have changed since
	// Resolve read it.
	w.scanned = false
	return dropped, true
}

// pop removes q's oldest packet.
func (w *Worker) pop(q *queue) held {
	n := q.head
	p := w.pkts[n]
	q.head = p.next
	if q.head < 0 {
		q.tail = -1
	}
	q.count--
	q.bytes -= Truesize(p.length)
	w.pkts[n].next = w.free
	w.free = n
	w.nheld--
	return p
}

// queueOf returns the dense index of k's queue, or -1.
func (w *Worker) queueOf(k key, h uint64) int {
	for i := uint32(h) & w.imsk; ; i = (i + 1) & w.imsk {
		v := w.idx[i]
		if v == 0 {
			return -1
		}
		if w.qs[v-1].k == k {
			return int(v - 1)
		}
	}
}

// mapQueue enters dense queue qi into the map.
func (w *Worker) mapQueue(qi int) {
	i := uint32(w.qs[qi].h) & w.imsk
	for w.idx[i] != 0 {
		i = (i + 1) & w.imsk
	}
	w.idx[i] = int32(qi + 1)
}

// dropQueue removes empty queue qi: from the map (backward-shift
// deletion), and from the dense array by moving the last queue into qi.
func (w *Worker) dropQueue(qi int) {
	i := uint32(w.qs[qi].h) & w.imsk
	for w.idx[i] != int32(qi+1) {
		i = (i + 1) & w.imsk
	}
	for j := (i + 1) & w.imsk; w.idx[j] != 0; j = (j + 1) & w.imsk {
		home := uint32(w.qs[w.idx[j]-1].h) & w.imsk
		// Move j's entry into the hole at i if its home is not in (i, j].
		if (j-home)&w.imsk >= (j-i)&w.imsk {
			w.idx[i] = w.idx[j]
			i = j
		}
	}
	w.idx[i] = 0
	last := w.nq - 1
	if qi != last {
		w.qs[qi] = w.qs[last]
		j := uint32(w.qs[qi].h) & w.imsk
		for w.idx[j] != int32(last+1) {
			j = (j + 1) & w.imsk
		}
		w.idx[j] = int32(qi + 1)
	}
	w.nq--
}

// Close unregisters the worker from its table's Stats, keeping its
// counts in the table's totals. Its held packets must have been drained
// (Drain) first: Close fails otherwise.
func (w *Worker) Close() error {
	if w.nheld > 0 {
		return fmt.Errorf("neigh: closing a worker that holds %d packets: Drain them first", w.nheld)
	}
	w.publish()
	t := w.t
	t.mu.Lock()
	defer t.mu.Unlock()
	i := slices.Index(t.workers, w)
	if i < 0 {
		return nil
	}
	t.workers = slices.Delete(t.workers, i, i+1)
	t.closed.add(&w.c)
	return nil
}

// Held returns how many packets the worker holds: frames of its UMEM
// that are neither on a ring nor free.
func (w *Worker) Held() int { return w.nheld }

// Poll is the per-batch call: it writes into events what the worker must
// now do for the neighbours it holds packets for, and returns how many it
// wrote (at most len(events); when it fills events, call it again). For
// each such neighbour, in arrival order per neighbour:
//
//   - the entry has an address (another worker's or the daemon's Confirm
//     made it valid): EventSend for each held packet, with the MAC
//     (the packets count as a use: a STALE entry moves to DELAY), and an
//     EventProbe if the entry is in PROBE with a probe due;
//   - the entry FAILED, or started a new round since a packet was held
//     (that round failed): EventUnreachable for those packets;
//   - the entry is gone (Delete, garbage collection): EventDrop;
//   - still INCOMPLETE: EventSolicit when a retry is due (retrans_time
//     after the last solicitation any worker sent, within
//     mcast_solicit), so that resolution goes on without new packets.
//
// Before those, it runs the timers of the neighbours this worker's
// packets moved to DELAY (Watching): EventProbe for each unicast probe
// due, as the kernel's neighbour timer sends them with no packet waiting.
//
// It also publishes the worker's counters for Stats. When nothing changed
// in the table since its last complete look and no retry or deadline is
// due, it returns 0 after two loads; it costs a
// lookup per neighbour with held packets otherwise. Call it at least
// once per loop iteration, idle ones included: retries and failures are
// only as punctual as Poll.
func (w *Worker) Poll(now int64, events []Event) int {
	w.publish()
	now32 := toMS(now)
	n := 0
	if w.nwatch > 0 && !before(now32, w.watchDue) {
		n = w.pollWatched(now32, events)
	}
	if w.nq == 0 {
		return n
	}
	t := w.t
	ep := t.epoch.Load()
	if w.scanned && ep == w.seenEpoch && before(now32, w.nextDue) {
		return n
	}
	reach := t.reach.Load()
	complete := true
	due := now32 + 1<<30
	for qi := 0; qi < w.nq; {
		if n == len(events) {
			complete = false
			break
		}
		q := &w.qs[qi]
		i, e, seq, found, busy := t.find(q.k, q.h)
		switch {
		case busy:
			due = now32 // look again at the next Poll
			qi++
			continue
		case !found:
			n = w.release(q, events, n, EventDrop, header.MAC{}, 0, false)
		default:
			ne := e
			tr := t.tm.advance(&ne, now32, reach)
			act := Hold
			if ne.state.Valid() {
				ne, act, tr = t.tm.onSend(e, now32, reach)
			} else if ne.state == StateIncomplete && t.tm.probeDue(&ne, now32) {
				act = HoldSolicit
			}
			if ne != e && !t.cas(i, seq, &e, &ne, tr) {
				due = now32
				qi++
				continue
			}
			switch {
			case act == HoldSolicit:
				events[n] = Event{Kind: EventSolicit, Iface: q.k.iface, IP: q.k.ip()}
				n++
				inc(&w.c.solicits)
			case act == SendProbe:
				events[n] = Event{Kind: EventProbe, Iface: q.k.iface, IP: q.k.ip(), MAC: ne.mac}
				n++
				inc(&w.c.probes)
			}
			switch ne.state {
			case StateIncomplete:
				// Packets of an earlier round: that round failed.
				n = w.release(q, events, n, EventUnreachable, header.MAC{}, ne.round, true)
				if q.count > 0 {
					if ne.probes < t.tm.budget(ne.state) && before(ne.probeAt, due) {
						due = ne.probeAt
					}
					if f := ne.updated + ms(t.tm.budget(ne.state))*t.tm.retrans; before(f, due) {
						due = f
					}
				}
			case StateFailed:
				n = w.release(q, events, n, EventUnreachable, header.MAC{}, 0, false)
			default:
				n = w.release(q, events, n, EventUnreachable, header.MAC{}, ne.round, true)
				n = w.release(q, events, n, EventSend, ne.mac, 0, false)
			}
		}
		if q.count == 0 {
			w.dropQueue(qi) // moves the last queue into qi
			continue
		}
		if n == len(events) {
			complete = false
			break
		}
		qi++
	}
	if complete {
		w.seenEpoch, w.nextDue, w.scanned = ep, due, true
	} else {
		w.scanned = false
	}
	return n
}

// Watching reports whether the worker watches neighbours (Poll probes
// them while no packet uses them): a caller that polls only while it has
// work keeps polling while this is true.
func (w *Worker) Watching() bool { return w.nwatch > 0 }

// watchNeighbour watches neighbour k (hash h), which this worker's packet
// just moved to DELAY at now, unless it is watched already or the watch
// list is full.
func (w *Worker) watchNeighbour(k key, h uint64, now ms) {
	for _, x := range w.watch[:w.nwatch] {
		if x.k == k {
			return
		}
	}
	if w.nwatch == watchMax {
		return
	}
	if w.nwatch == 0 || before(now+w.t.tm.delay, w.watchDue) {
		w.watchDue = now + w.t.tm.delay
	}
	w.watch[w.nwatch] = watched{k: k, h: h}
	w.nwatch++
}

// pollWatched runs the timers of the watched neighbours at now, as the
// kernel's neigh_timer_handler: DELAY → PROBE after
// delay_first_probe_time, a unicast probe every retrans_time up to
// ucast_solicit (an EventProbe each), FAILED after the last. A neighbour
// confirmed meanwhile (REACHABLE), FAILED or gone is no longer watched.
// It writes at most len(events) events and returns how many.
func (w *Worker) pollWatched(now ms, events []Event) int {
	t := w.t
	reach := t.reach.Load()
	n := 0
	due := now + 1<<30
	for i := 0; i < w.nwatch; {
		x := &w.watch[i]
		idx, e, seq, found, busy := t.find(x.k, x.h)
		if busy || n == len(events) {
			due = now // look again at the next Poll
			i++
			continue
		}
		if !found {
			w.unwatch(i)
			continue
		}
		ne := e
		tr := t.tm.advance(&ne, now, reach)
		probe := ne.state == StateProbe && t.tm.probeDue(&ne, now)
		if ne != e && !t.cas(idx, seq, &e, &ne, tr) {
			due = now
			i++
			continue
		}
		if probe {
			events[n] = Event{Kind: EventProbe, Iface: x.k.iface, IP: x.k.ip(), MAC: ne.mac}
			n++
			inc(&w.c.probes)
		}
		switch ne.state {
		case StateDelay:
			due = earlier(due, ne.updated+t.tm.delay)
		case StateProbe:
			if ne.probes < t.tm.budget(ne.state) {
				due = earlier(due, ne.probeAt)
			}
			due = earlier(due, ne.updated+ms(t.tm.budget(ne.state))*t.tm.retrans)
		default:
			w.unwatch(i)
			continue
		}
		i++
	}
	w.watchDue = due
	return n
}

// unwatch stops watching neighbour i (the last takes its place).
func (w *Worker) unwatch(i int) {
	w.nwatch--
	w.watch[i] = w.watch[w.nwatch]
}

// earlier returns the earlier of a and b.
func earlier(a, b ms) ms {
	if before(b, a) {
		return b
	}
	return a
}

// release writes events of kind for q's packets from its head, as many as
// fit; with onlyOther, only those whose round is not round (they are the
// oldest: rounds only grow along a queue).
func (w *Worker) release(q *queue, events []Event, n int, kind EventKind, mac header.MAC, round uint16, onlyOther bool) int {
	for q.count > 0 && n < len(events) {
		if onlyOther && w.pkts[q.head].round == round {
			break
		}
		p := w.pop(q)
		events[n] = Event{Kind: kind, Iface: q.k.iface, Len: p.length, Handle: p.handle, MAC: mac, IP: q.k.ip()}
		n++
	}
	return n
}

// Drain writes an EventDrop for every held packet, as many as fit in
// events, and returns how many it wrote: at shutdown, so every frame goes
// back to the worker's free list.
func (w *Worker) Drain(events []Event) int {
	w.publish()
	n := 0
	for w.nq > 0 && n < len(events) {
		q := &w.qs[w.nq-1]
		n = w.release(q, events, n, EventDrop, header.MAC{}, 0, false)
		if q.count == 0 {
			w.dropQueue(w.nq - 1)
		}
	}
	return n
}
