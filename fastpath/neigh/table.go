package neigh

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"math/bits"
	randv2 "math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xdpfwd/xdpfwd/fastpath/header"
	"github.com/xdpfwd/xdpfwd/internal/siphash"
)

// Table is the neighbour cache all workers share: entries keyed by
// (interface id, IP), IPv4 in its IPv4-mapped form.
//
// Layout. Slots of 64 bytes (one cache line), pointer-free, in buckets of
// 8. A key has two candidate buckets (two-choice hashing: a new entry goes
// to the emptier one), both picked by a keyed hash (SipHash-1-3 under 128
// random bits drawn when the process starts, as the FDB's: nobody outside
// can choose addresses that crowd one bucket). Each bucket has a directory
// word, one tag byte per slot (8 bits of the key's hash; 0 is a free
// slot), so a lookup reads one word per bucket and only the slots whose
// tag matches.
//
// Concurrency. Every slot is a seqlock: readers load the sequence, the
// words, the sequence again, and retry (a bounded number of times) when it
// was odd or changed; they never write. A writer — a state change by
// Resolve, Confirm, Poll or Tick — computes the new value from the one it
// read and publishes it with a compare-and-swap of the sequence from the
// value it read to odd, the stores, and the next even value; a writer that
// loses the race reads again and recomputes. So the hit path (a REACHABLE,
// DELAY or PERMANENT entry) is loads only, and a state change is one CAS.
// Changing which key a slot holds (a new entry, a removal) also changes
// the directory word with a CAS; new entries of keys whose first bucket
// is the same are serialized by a lock word in that bucket, taken with a
// bounded number of attempts (never waited on without bound), so that two
// workers resolving the same new neighbour make one entry. Each Worker
// also keeps a small direct-mapped cache of the hits it read, each good
// while its slot's sequence has not moved: a repeated hit is one load of
// the table.
type Table struct {
	buckets []bucket
	slots   []slot
	mask    uint32 // buckets - 1
	sip     siphash.Key
	tm      timing
	p       Params

	reach atomic.Uint32 // the randomized reachable time, ms

	// counts are the dynamic entries per family (0: IPv4, 1: IPv6),
	// statics the PERMANENT ones.
	counts    [2]atomic.Int64
	statics   atomic.Int64
	maxStatic int64

	// epoch counts changes of an entry into or out of INCOMPLETE or
	// FAILED: Worker.Poll looks at its held packets again when it moves.
	epoch atomic.Uint64

	noarp []noarp
	rnd   func(n uint64) uint64

	// Tick's own state; Tick runs in one goroutine.
	tickBuckets int
	cursor      uint32
	rerollAt    ms
	rerolled    bool
	gcOn        [2]bool // per family: this sweep collects

	stats tableCounters

	mu      sync.Mutex // guards workers and closed; never taken on the packet path
	workers []*Worker
	closed  counters // of closed workers
}

type noarp struct {
	on  bool
	mac header.MAC
}

type bucket struct {
	dir  atomic.Uint64 // tag byte per slot, 0: free
	lock atomic.Uint32 // held while an entry is created for a key whose first bucket this is
	_    uint32
}

// slot is one entry: a seqlock sequence and the entry's words.
type slot struct {
	seq  atomic.Uint64
	hi   atomic.Uint64
	lo   atomic.Uint64
	meta atomic.Uint64 // iface (63..48) | state (47..40) | probes (39..32) | flags (31..24) | round (23..8)
	mac  atomic.Uint64 // mac (63..16)
	t1   atomic.Uint64 // updated (63..32) | confirmed (31..0)
	t2   atomic.Uint64 // used (63..32) | probeAt (31..0)
	_    uint64
}

const (
	slotsPerBucket = 8
	// spins bounds how often a reader retries a slot a writer holds, and
	// how often a creator tries a bucket's lock.
	spins = 64
	// attempts bounds how often a writer recomputes after losing a CAS.
	attempts   = 16
	flagRouter = 1
)

type tableCounters struct {
	created, removed, resolved, failed, tableFull, contended atomic.Uint64
	ignored, confirmed                                       atomic.Uint64
}

// key is an entry's key.
type key struct {
	hi, lo uint64
	iface  uint16
}

func makeKey(iface uint16, ip *[16]byte) key {
	return key{hi: binary.BigEndian.Uint64(ip[:8]), lo: binary.BigEndian.Uint64(ip[8:]), iface: iface}
}

func (k key) ip() (ip [16]byte) {
	binary.BigEndian.PutUint64(ip[:8], k.hi)
	binary.BigEndian.PutUint64(ip[8:], k.lo)
	return ip
}

// v4 reports whether k's IP is IPv4-mapped.
func (k key) v4() bool { return k.hi == 0 && k.lo>>32 == 0xffff }

func (k key) family() int {
	if k.v4() {
		return 0
	}
	return 1
}

func (e *entry) key() key { return key{hi: e.hi, lo: e.lo, iface: e.iface} }

// seed keys the hash of every Table made after it is set.
var seed = func() (s [2]uint64) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("neigh: no random seed for the table hash: " + err.Error())
	}
	return [2]uint64{binary.LittleEndian.Uint64(b[:8]), binary.LittleEndian.Uint64(b[8:])}
}()

// New returns an empty table for cfg.
func New(cfg Config) (*Table, error) {
	if cfg.Params == (Params{}) {
		return nil, errNoParams
	}
	if err := cfg.Params.Validate(); err != nil {
		return nil, err
	}
	maxStatic := cfg.MaxStatic
	if maxStatic == 0 {
		maxStatic = 256
	}
	if maxStatic < 0 || maxStatic > 1<<20 {
		return nil, fmt.Errorf("neigh: MaxStatic %d out of range [0, %d]", cfg.MaxStatic, 1<<20)
	}
	tb := cfg.TickBuckets
	if tb == 0 {
		tb = 64
	}
	if tb < 0 {
		return nil, fmt.Errorf("neigh: TickBuckets %d is negative", cfg.TickBuckets)
	}
	// Capacity: both families full, and the static entries, at most 3/4
	// of the slots.
	capacity := 2*cfg.Params.GCThresh3 + maxStatic
	nb := max(2, 1<<bits.Len(uint((capacity*4/3+slotsPerBucket-1)/slotsPerBucket-1)))
	t := &Table{
		buckets: make([]bucket, nb), slots: make([]slot, nb*slotsPerBucket), mask: uint32(nb - 1),
		tm: newTiming(cfg.Params), p: cfg.Params, maxStatic: int64(maxStatic), tickBuckets: tb, rnd: cfg.Rand,
	}
	if t.rnd == nil {
		t.rnd = randv2.Uint64N
	}
	k0, k1 := seed[0], seed[1]
	t.sip = siphash.NewKey(k0, k1)
	for _, n := range cfg.NoARP {
		if n.MAC.IsZero() {
			return nil, fmt.Errorf("neigh: NOARP interface %d: MAC 00:00:00:00:00:00", n.Iface)
		}
		if int(n.Iface) >= len(t.noarp) {
			t.noarp = append(t.noarp, make([]noarp, int(n.Iface)+1-len(t.noarp))...)
		}
		if t.noarp[n.Iface].on {
			return nil, fmt.Errorf("neigh: NOARP interface %d listed twice", n.Iface)
		}
		t.noarp[n.Iface] = noarp{on: true, mac: n.MAC}
	}
	t.reroll()
	return t, nil
}

// reroll draws the reachable time again: neigh_rand_reach_time, uniform
// in [base/2, 3·base/2).
func (t *Table) reroll() {
	b := uint64(t.tm.base)
	t.reach.Store(ms(t.rnd(b) + b/2))
}

// ReachableTime returns the reachable time in use: base_reachable_time
// times a random factor in [0.5, 1.5), drawn again every 300 s by Tick.
func (t *Table) ReachableTime() time.Duration {
	return time.Duration(t.reach.Load()) * time.Millisecond
}

// hash returns key's hash: SipHash-1-3 keyed by the table's seed over the
// low half of the IP with the interface in its top 16 bits (an IPv4-mapped
// address leaves them 0), then the high half unless it is 0 (IPv4).
func (t *Table) hash(k key) uint64 {
	m := k.lo ^ uint64(k.iface)<<48
	if k.hi != 0 {
		return t.sip.Sum2(m, k.hi)
	}
	return t.sip.Sum1(m)
}

// buckets2 returns key's two buckets (distinct) and its tag.
func (t *Table) buckets2(h uint64) (b1, b2 uint32, tag uint8) {
	b1 = uint32(h) & t.mask
	b2 = uint32(h>>24) & t.mask
	if b2 == b1 {
		b2 ^= 1
	}
	tag = uint8(h >> 56)
	if tag == 0 {
		tag = 1
	}
	return b1, b2, tag
}

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// matches returns the slots of dir whose tag is tag, as the top bit of
// their byte (possibly with false positives, which the key compare
// rejects; never a false negative).
func matches(dir uint64, tag uint8) uint64 {
	x := dir ^ lsb*uint64(tag)
	return (x - lsb) &^ x & msb
}

// free returns the free slots of dir, as the top bit of their byte.
func free(dir uint64) uint64 {
	var m uint64
	for i := range slotsPerBucket {
		if dir>>(8*i)&0xff == 0 {
			m |= 0x80 << (8 * i)
		}
	}
	return m
}

// read reads slot s consistently; ok is false when a writer held it for
// spins attempts.
func (s *slot) read() (e entry, seq uint64, ok bool) {
	for range spins {
		q := s.seq.Load()
		if q&1 != 0 {
			continue
		}
		hi, lo, meta, mac, t1, t2 := s.hi.Load(), s.lo.Load(), s.meta.Load(), s.mac.Load(), s.t1.Load(), s.t2.Load()
		if s.seq.Load() != q {
			continue
		}
		e = entry{
			hi: hi, lo: lo, iface: uint16(meta >> 48), state: State(meta >> 40), probes: uint8(meta >> 32),
			router: uint8(meta>>24)&flagRouter != 0, round: uint16(meta >> 8),
			updated: uint32(t1 >> 32), confirmed: uint32(t1), used: uint32(t2 >> 32), probeAt: uint32(t2),
		}
		e.mac = header.MAC{byte(mac >> 56), byte(mac >> 48), byte(mac >> 40), byte(mac >> 32), byte(mac >> 24), byte(mac >> 16)}
		return e, q, true
	}
	return entry{}, 0, false
}

// store writes e into s; the caller holds s (odd sequence).
func (s *slot) store(e *entry) {
	var flags uint64
	if e.router {
		flags |= flagRouter
	}
	s.hi.Store(e.hi)
	s.lo.Store(e.lo)
	s.meta.Store(uint64(e.iface)<<48 | uint64(e.state)<<40 | uint64(e.probes)<<32 | flags<<24 | uint64(e.round)<<8)
	s.mac.Store(macWord(e.mac))
	s.t1.Store(uint64(e.updated)<<32 | uint64(e.confirmed))
	s.t2.Store(uint64(e.used)<<32 | uint64(e.probeAt))
}

func macWord(m header.MAC) uint64 {
	return uint64(m[0])<<56 | uint64(m[1])<<48 | uint64(m[2])<<40 | uint64(m[3])<<32 | uint64(m[4])<<24 | uint64(m[5])<<16
}

// cas replaces slot i's value, read at sequence q as old, by e; it fails
// if the slot changed since. It keeps the epoch and the counters.
func (t *Table) cas(i uint32, q uint64, old, e *entry, tr transition) bool {
	s := &t.slots[i]
	if !s.seq.CompareAndSwap(q, q+1) {
		return false
	}
	s.store(e)
	s.seq.Store(q + 2)
	t.changed(old, e, tr)
	return true
}

// changed does the bookkeeping of a change from old to e.
func (t *Table) changed(old, e *entry, tr transition) {
	const pending = StateIncomplete | StateFailed
	if (old.state|e.state)&pending != 0 && (old.state != e.state || old.round != e.round) {
		t.epoch.Add(1)
	}
	if tr&trFailed != 0 {
		t.stats.failed.Add(1)
	}
	if tr&trResolved != 0 {
		t.stats.resolved.Add(1)
	}
}

// find looks k up. It returns the slot, the entry and the sequence it
// was read at; busy reports that a slot with k's tag could not be read
// (so k may be there).
func (t *Table) find(k key, h uint64) (i uint32, e entry, q uint64, found, busy bool) {
	b1, b2, tag := t.buckets2(h)
	for _, b := range [2]uint32{b1, b2} {
		m := matches(t.buckets[b].dir.Load(), tag)
		for m != 0 {
			i = b*slotsPerBucket + uint32(bits.TrailingZeros64(m)>>3)
			m &= m - 1
			s := &t.slots[i]
			// Compare the key before reading the whole slot: a miss on
			// another key's slot stays cheap.
			if s.lo.Load() != k.lo || s.hi.Load() != k.hi {
				continue
			}
			var ok bool
			e, q, ok = s.read()
			if !ok {
				busy = true
				continue
			}
			if e.state != StateNone && e.lo == k.lo && e.hi == k.hi && e.iface == k.iface {
				return i, e, q, true, false
			}
		}
	}
	return 0, entry{}, 0, false, busy
}

// cached is what the hit path read of an entry: enough to answer again,
// without reading the entry, for as long as its slot's sequence is seq.
type cached struct {
	hi, lo uint64
	iface  uint16
	state  State // PERMANENT, REACHABLE or DELAY; 0: nothing cached
	mac    header.MAC
	slot   uint32
	t      ms // REACHABLE: confirmed; DELAY: updated
	seq    uint64
}

// fresh reports whether an entry in state (PERMANENT, REACHABLE or DELAY)
// with time tt (confirmed or updated) needs no transition at now.
func (t *Table) fresh(state State, tt, now, reach ms) bool {
	switch state {
	case StatePermanent:
		return true
	case StateReachable:
		return before(now, tt+reach)
	case StateDelay:
		return before(now, tt+t.tm.delay)
	}
	return false
}

// hit is the hit path of Resolve: it reads k's entry into c if it is
// PERMANENT, or REACHABLE or DELAY with no transition due at now, without
// building an entry. Anything else (a miss, a writer in the slot) is left
// to the general path.
func (t *Table) hit(k key, h uint64, now, reach ms, c *cached) bool {
	b1, b2, tag := t.buckets2(h)
	if ok, done := t.hitIn(b1, tag, k, now, reach, c); done {
		return ok
	}
	ok, _ := t.hitIn(b2, tag, k, now, reach, c)
	return ok
}

// hitIn is hit in bucket b; done reports that k's slot was found (or a
// writer held a candidate), so the other bucket need not be read.
func (t *Table) hitIn(b uint32, tag uint8, k key, now, reach ms, c *cached) (ok, done bool) {
	m := matches(t.buckets[b].dir.Load(), tag)
	for m != 0 {
		i := b*slotsPerBucket + uint32(bits.TrailingZeros64(m)>>3)
		s := &t.slots[i]
		m &= m - 1
		q := s.seq.Load()
		if s.lo.Load() != k.lo || s.hi.Load() != k.hi {
			continue
		}
		meta, w, t1 := s.meta.Load(), s.mac.Load(), s.t1.Load()
		if q&1 != 0 || s.seq.Load() != q {
			return false, true
		}
		if uint16(meta>>48) != k.iface {
			continue
		}
		st := State(meta >> 40)
		tt := uint32(t1) // confirmed
		if st == StateDelay {
			tt = uint32(t1 >> 32) // updated
		}
		if !t.fresh(st, tt, now, reach) {
			return false, true
		}
		*c = cached{
			hi: k.hi, lo: k.lo, iface: k.iface, state: st, slot: i, t: tt, seq: q,
			mac: header.MAC{byte(w >> 56), byte(w >> 48), byte(w >> 40), byte(w >> 32), byte(w >> 24), byte(w >> 16)},
		}
		return true, true
	}
	return false, false
}

// createResult is what create did.
type createResult uint8

const (
	created   createResult = iota
	exists                 // k has an entry (returned)
	full                   // no room (TableFull)
	contended              // a bucket lock or slot stayed busy
)

// create makes e (state set, key k) an entry. If k has an entry by the
// time the bucket lock is held, it returns that one instead (exists).
func (t *Table) create(k key, h uint64, e *entry, now ms) (i uint32, got entry, q uint64, res createResult) {
	b1, b2, tag := t.buckets2(h)
	lk := &t.buckets[b1].lock
	locked := false
	for range spins {
		if lk.Load() == 0 && lk.CompareAndSwap(0, 1) {
			locked = true
			break
		}
	}
	if !locked {
		return 0, entry{}, 0, contended
	}
	defer lk.Store(0)
	for n := 0; ; n++ {
		i, got, q, found, busy := t.find(k, h)
		if found {
			return i, got, q, exists
		}
		if !busy {
			break
		}
		if n == spins {
			return 0, entry{}, 0, contended
		}
	}
	fam := k.family()
	static := e.state == StatePermanent
	switch {
	case static && t.statics.Load() >= t.maxStatic:
		return 0, entry{}, 0, full
	case !static && t.counts[fam].Load() >= int64(t.p.GCThresh3):
		// The family is full: take the place of a reclaimable entry.
		if i, ok := t.reclaim(b1, b2, tag, e, now); ok {
			return i, *e, t.slots[i].seq.Load(), created
		}
		return 0, entry{}, 0, full
	}
	for range attempts {
		d1, d2 := t.buckets[b1].dir.Load(), t.buckets[b2].dir.Load()
		f1, f2 := free(d1), free(d2)
		b, d, f := b1, d1, f1
		if f1 == 0 || bits.OnesCount64(f2) > bits.OnesCount64(f1) {
			b, d, f = b2, d2, f2
		}
		if f == 0 {
			// Both buckets full (unlikely below the thresholds).
			if !static {
				if i, ok := t.reclaim(b1, b2, tag, e, now); ok {
					return i, *e, t.slots[i].seq.Load(), created
				}
			}
			return 0, entry{}, 0, full
		}
		j := uint32(bits.TrailingZeros64(f) >> 3)
		if !t.buckets[b].dir.CompareAndSwap(d, d|uint64(tag)<<(8*j)) {
			continue
		}
		i = b*slotsPerBucket + j
		s := &t.slots[i]
		q := s.seq.Load() // even: a free slot has no writer
		s.seq.Store(q + 1)
		s.store(e)
		s.seq.Store(q + 2)
		if static {
			t.statics.Add(1)
		} else {
			t.counts[fam].Add(1)
		}
		t.stats.created.Add(1)
		t.epoch.Add(1)
		return i, *e, q + 2, created
	}
	return 0, entry{}, 0, contended
}

// reclaimable reports whether e may give its place to a new entry: FAILED,
// or STALE and not updated for 5 s — neigh_forced_gc's rule (it also takes
// NOARP entries, which this table does not make, and spares entries with
// a timer, which are the other states).
func reclaimable(e *entry, now ms) bool {
	return e.state == StateFailed || e.state == StateStale && age(now, e.updated) >= 5000
}

// reclaim puts e in the slot of a reclaimable entry of buckets b1 or b2.
func (t *Table) reclaim(b1, b2 uint32, tag uint8, e *entry, now ms) (uint32, bool) {
	reach := t.reach.Load()
	for _, b := range [2]uint32{b1, b2} {
		for j := range uint32(slotsPerBucket) {
			i := b*slotsPerBucket + j
			s := &t.slots[i]
			old, q, ok := s.read()
			if !ok || old.state == StateNone || old.state == StatePermanent {
				continue
			}
			adv := old
			tr := t.tm.advance(&adv, now, reach)
			if !reclaimable(&adv, now) || !s.seq.CompareAndSwap(q, q+1) {
				continue
			}
			s.store(e)
			s.seq.Store(q + 2)
			t.setTag(b, j, tag)
			t.counts[old.key().family()].Add(-1)
			t.counts[e.key().family()].Add(1)
			t.stats.removed.Add(1)
			t.stats.created.Add(1)
			t.changed(&old, &adv, tr)
			t.epoch.Add(1)
			return i, true
		}
	}
	return 0, false
}

// setTag sets slot j's tag in bucket b (0 frees it).
func (t *Table) setTag(b, j uint32, tag uint8) {
	d := &t.buckets[b].dir
	for {
		o := d.Load()
		n := o&^(0xff<<(8*j)) | uint64(tag)<<(8*j)
		if d.CompareAndSwap(o, n) {
			return
		}
	}
}

// remove removes the entry read at sequence q from slot i.
func (t *Table) remove(i uint32, q uint64, old *entry) bool {
	s := &t.slots[i]
	if !s.seq.CompareAndSwap(q, q+1) {
		return false
	}
	s.store(&entry{})
	s.seq.Store(q + 2)
	t.setTag(i/slotsPerBucket, i%slotsPerBucket, 0)
	if old.state == StatePermanent {
		t.statics.Add(-1)
	} else {
		t.counts[old.key().family()].Add(-1)
	}
	t.stats.removed.Add(1)
	if old.state&(StateIncomplete|StateFailed) != 0 {
		t.epoch.Add(1)
	}
	return true
}

// fixed returns the MAC of a neighbour that needs no entry: any on a
// NOARP interface, an IPv4 multicast address (01:00:5e and its low 23
// bits, arp_mc_map), 255.255.255.255 (broadcast), an IPv6 multicast
// address (33:33 and its low 32 bits, ndisc_mc_map).
func (t *Table) fixed(k key) (header.MAC, bool) {
	if int(k.iface) < len(t.noarp) && t.noarp[k.iface].on {
		return t.noarp[k.iface].mac, true
	}
	if k.v4() {
		a := uint32(k.lo)
		switch {
		case a>>28 == 0xe:
			return header.MAC{0x01, 0x00, 0x5e, byte(a>>16) & 0x7f, byte(a >> 8), byte(a)}, true
		case a == 0xffffffff:
			return header.BroadcastMAC, true
		}
		return header.MAC{}, false
	}
	if k.hi>>56 == 0xff {
		a := uint32(k.lo)
		return header.MAC{0x33, 0x33, byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)}, true
	}
	return header.MAC{}, false
}

// Confirm takes a received ARP or NDP message that gives ip's link-layer
// address mac on iface (see How for the kinds and flags, ClassifyARP for
// ARP), at now (nanoseconds, the workers' clock), with the kernel's rules:
//
//   - ARP (arp_process, arp_accept 0): a request for one of our addresses
//     creates the entry or updates it, STALE, with the new address; any
//     other request or reply updates an existing entry only: a reply sent
//     to us makes it REACHABLE, other packets STALE (a STALE proposal for
//     the address the entry has leaves its state alone); a different
//     address replaces the entry's only when the entry was not updated
//     within LockTime or the packet is gratuitous. An ARP message revives
//     a FAILED entry.
//   - NS with a source link-layer address (RFC 4861 7.2.3): as the ARP
//     request for us.
//   - NA (RFC 4861 7.2.5, ndisc_recv_na, accept_untracked_na 0): updates
//     an existing entry only, and not a FAILED one. INCOMPLETE: without a
//     target link-layer address ignored; else that address, REACHABLE if
//     S, else STALE. Otherwise, with O clear and a different address: a
//     REACHABLE entry becomes STALE keeping its address, others ignore it.
//     With O set, or the same address, or none: the address is taken,
//     S makes it REACHABLE, no S makes it STALE only if the address
//     changed. The router flag follows R unless the NA was ignored or
//     only made the entry STALE.
//
// PERMANENT entries and NOARP interfaces ignore messages; the unspecified
// address, a multicast IP, and a group or zero MAC are Invalid. An entry that
// leaves INCOMPLETE for a valid state releases every worker's held
// packets at its next Poll.
func (t *Table) Confirm(iface uint16, ip [16]byte, mac header.MAC, how How, now int64) Outcome {
	k := makeKey(iface, &ip)
	v6kind := how.Kind() == NS || how.Kind() == NA
	switch {
	case how.Kind() < ARPRequest || how.Kind() > NA, k.v4() == v6kind:
		return Invalid
	case how&NoLinkAddr == 0 && (mac.IsMulticast() || mac.IsZero()):
		return Invalid
	case k.hi == 0 && (k.lo == 0 || k.lo == 0xffff<<32):
		return Invalid // :: or 0.0.0.0: a duplicate address detection probe's source
	}
	if _, ok := t.fixed(k); ok {
		if int(k.iface) < len(t.noarp) && t.noarp[k.iface].on {
			t.stats.ignored.Add(1)
			return Ignored
		}
		return Invalid
	}
	t.stats.confirmed.Add(1)
	now32 := toMS(now)
	h := t.hash(k)
	for range attempts {
		i, e, q, found, busy := t.find(k, h)
		if !found && busy {
			continue
		}
		// The message meets the entry as the kernel's timers left it.
		ne := e
		tr := t.tm.advance(&ne, now32, t.reach.Load())
		ne, out, tr2 := t.tm.confirm(ne, found, mac, how, now32)
		tr |= tr2
		if !found {
			if out == Ignored {
				t.stats.ignored.Add(1)
				return Ignored
			}
			ne.hi, ne.lo, ne.iface = k.hi, k.lo, k.iface
			_, _, _, res := t.create(k, h, &ne, now32)
			switch res {
			case created:
				return Created
			case exists:
				continue
			case full:
				t.stats.tableFull.Add(1)
			default:
				t.stats.contended.Add(1)
			}
			return Refused
		}
		if out == Ignored {
			t.stats.ignored.Add(1)
		}
		if ne == e || t.cas(i, q, &e, &ne, tr) {
			return out
		}
	}
	t.stats.contended.Add(1)
	return Refused
}

// AddStatic adds or replaces the entry of ip on iface by a PERMANENT one
// with mac (`ip neigh replace … nud permanent`). It is safe beside the
// workers; held packets for ip are sent at the workers' next Poll.
func (t *Table) AddStatic(iface uint16, ip netip.Addr, mac header.MAC) error {
	if !ip.IsValid() {
		return fmt.Errorf("neigh: static entry on interface %d: no IP address", iface)
	}
	a := ip.As16()
	k := makeKey(iface, &a)
	if mac.IsMulticast() || mac.IsZero() {
		return fmt.Errorf("neigh: static entry %v on interface %d: %v is not a unicast MAC", ip, iface, mac)
	}
	if _, ok := t.fixed(k); ok {
		return fmt.Errorf("neigh: static entry %v on interface %d: a multicast or broadcast address, or a NOARP interface, needs no entry", ip, iface)
	}
	e := entry{hi: k.hi, lo: k.lo, iface: iface, state: StatePermanent, mac: mac}
	h := t.hash(k)
	for range attempts {
		i, old, q, found, busy := t.find(k, h)
		if found {
			ne := e
			ne.round = old.round
			if !t.cas(i, q, &old, &ne, 0) {
				continue
			}
			if old.state != StatePermanent {
				t.counts[k.family()].Add(-1)
				t.statics.Add(1)
			}
			return nil
		}
		if busy {
			continue
		}
		switch _, _, _, res := t.create(k, h, &e, 0); res {
		case created:
			return nil
		case full:
			return fmt.Errorf("neigh: static entry %v on interface %d: already %d static entries (MaxStatic)", ip, iface, t.maxStatic)
		}
	}
	return fmt.Errorf("neigh: static entry %v on interface %d: the table stayed busy", ip, iface)
}

// Delete removes the entry of ip on iface, whatever its state (`ip neigh
// del`); it reports whether there was one. Packets workers hold for it
// are dropped at their next Poll (EventDrop).
func (t *Table) Delete(iface uint16, ip netip.Addr) bool {
	a := ip.As16()
	k := makeKey(iface, &a)
	h := t.hash(k)
	for range attempts {
		i, e, q, found, busy := t.find(k, h)
		if !found && !busy {
			return false
		}
		if found && t.remove(i, q, &e) {
			return true
		}
	}
	return false
}

// Len returns the number of entries: dynamic ones per family (IPv4,
// IPv6) and PERMANENT ones.
func (t *Table) Len() (v4, v6, static int) {
	return int(t.counts[0].Load()), int(t.counts[1].Load()), int(t.statics.Load())
}
