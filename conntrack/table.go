package conntrack

import (
	"crypto/rand"
	"encoding/binary"
	"math/bits"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xdpfwd/xdpfwd/internal/siphash"
)

// Table is the flow table every worker shares, the kernel's conntrack
// hash (nf_conntrack_core.c): each entry is found under its original and
// its reply tuple, so the two directions of a flow, which arrive on
// different workers, reach the same entry.
//
// # Layout
//
// Entries live in a slab, a slice of fixed 124-byte records made only of
// atomic 32-bit words (no pointers: the garbage collector never scans
// it). A record holds the original tuple's addresses, ports, protocol,
// family and zone; the reply tuple's ports, and its addresses where they
// are not simply the original's swapped (an IPv4 record has room for
// them; an IPv6 record whose reply addresses differ, which only NAT66
// makes, keeps them in a side slab allocated the first time one is
// needed); status (16 bits: every IPS_* bit the kernel defines), mark,
// expiry in ticks of 2^20 ns (about 1 ms, the kernel's jiffies are 1 to
// 10 ms) on a wrapping 32-bit clock compared as the kernel compares
// jiffies; the protocol state (TCP's whole ip_ct_tcp, or UDP's stream
// time); and one chain link per direction.
//
// The index is the kernel's: a bucket array of 32-bit chain heads, and
// chains threaded through the records' links, one node per direction
// (hlist_nulls). A chain ends in a "nulls" marker that names its bucket,
// so a lock-free reader that was carried into another chain by a record
// freed and reused under it notices at the end and restarts (counted as
// search_restart), exactly as the kernel's ____nf_conntrack_find does
// with SLAB_TYPESAFE_BY_RCU records. Memory: 124 bytes of record plus 4
// bytes of bucket head per bucket; with the default Buckets = Max (a
// power of two) 128 bytes per entry, index included.
//
// # Concurrency
//
//   - Readers (Lookup) take no lock and write nothing: they follow chains
//     with atomic loads and compare a candidate's key between two loads of
//     its identity word (generation, live bit, protocol, family); keys are
//     written only while a record is not live, so a match between two
//     equal identity loads is a real one.
//   - Each record has a sequence word, odd while a writer holds it;
//     writers take it with CompareAndSwap (Packet, SetMark, Delete, the
//     record's initialisation). That serialises the per-packet updates of
//     the two directions of one flow, on two workers, without a mutex.
//     Snapshots (Read, Walk) copy the words and retry if the sequence or
//     the identity changed.
//   - Chain changes (insert, unlink) take the spinlocks of the entry's two
//     buckets (1024 lock stripes, in index order to avoid deadlock), the
//     kernel's nf_conntrack_double_lock; lock holders never wait for a
//     record lock they could be holding up (the order is buckets, then
//     record, everywhere).
//   - Free records are on a lock-free stack (a Treiber stack with an ABA
//     tag); a freed record's links stay as they were, so a reader standing
//     on it carries on along its old chain until the record is linked
//     again (hlist_nulls_del_rcu). A generation in the identity word
//     changes each time a record is freed: Conn references carry it, and
//     one to a freed or reused record is refused.
//
// # Bounds and reaping
//
// At most Config.Max entries (nf_conntrack_max). A new flow over the
// limit first tries the kernel's early_drop: from the new tuple's bucket
// on, EarlyDropScan buckets, deleting in the first bucket that has any
// every entry that is not ASSURED; failing that the flow is refused and
// counted (Stats.Drop), and the next Expire slice evicts as the kernel's
// gc worker does when early drop failed. Expired entries are treated as
// gone by Lookup (nf_ct_is_expired), reaped by Expire in bounded slices,
// and by Confirm and early drop when they meet them.
type Table struct {
	slab    []rec
	ext     atomic.Pointer[[]extRec] // reply addresses of NAT66 entries
	extOnce sync.Once
	heads   []atomic.Uint32
	nbkt    uint32
	locks   []atomic.Uint32
	lmask   uint32
	sip     siphash.Key

	max       int64
	count     atomic.Int64
	bump      atomic.Uint32 // records never used start here
	free      atomic.Uint64 // Treiber stack: tag<<32 | index+1
	reapPos   atomic.Uint32
	gcDrop    atomic.Bool  // a new flow was refused: Expire evicts (gc_worker's early_drop)
	clock     atomic.Int64 // a recent now, to turn ticks back into times
	earlyScan int

	tm     Timeouts
	tcpCfg TCPConfig
}

// Config configures a Table.
type Config struct {
	// Max is the most entries the table holds (nf_conntrack_max);
	// 262144 if 0.
	Max int
	// Buckets is the number of hash buckets (nf_conntrack_buckets, the
	// hashsize); the smallest power of two ≥ Max if 0.
	Buckets int
	// Timeouts are the per-protocol timeouts; DefaultTimeouts() if
	// zero.
	Timeouts Timeouts
	// TCP is the TCP tracker's configuration; DefaultTCPConfig() if
	// zero.
	TCP TCPConfig
	// Seed keys the hash; 128 random bits if zero.
	Seed [2]uint64
	// EarlyDropScan is how many buckets early drop scans
	// (NF_CT_EVICTION_RANGE); 8 if 0.
	EarlyDropScan int
}

// DefaultMax is the kernel's default nf_conntrack_max on a machine with
// enough memory.
const DefaultMax = 262144

// maxEntries bounds Max: a record index takes 30 bits of a chain link.
const maxEntries = 1 << 30

// Conn names one direction of one entry: its record, the record's
// generation when the reference was made, and the direction. It stays
// valid until the entry is deleted; after that every use of it is
// refused, even once the record holds another entry.
type Conn uint64

func makeConn(idx uint32, gen uint32, dir Dir) Conn {
	return Conn(uint64(idx)<<32 | uint64(gen&0xffff)<<1 | uint64(dir&1))
}

func (c Conn) idx() uint32 { return uint32(c >> 32) }
func (c Conn) gen() uint32 { return uint32(c>>1) & 0xffff }

// Dir returns the direction of the packet the reference was made for.
func (c Conn) Dir() Dir { return Dir(c & 1) }

// Stats are the counters `conntrack -S` prints, the kernel's
// ip_conntrack_stat, for one worker: a plain struct its Worker owns and
// only that worker's goroutine may touch (sum them with Add where the
// workers hand theirs over).
type Stats struct {
	// Found counts lookups of a tuple that is taken (the kernel counts
	// it only in nf_conntrack_tuple_taken, for NAT): 0 until NAT.
	Found uint64
	// Invalid counts packets that are not part of a valid connection:
	// untrackable, refused by the protocol tracker.
	Invalid uint64
	// Insert counts entries confirmed into the table.
	Insert uint64
	// InsertFailed counts confirmations that failed: a clash that could
	// not be resolved, or a chain too long.
	InsertFailed uint64
	// Drop counts packets dropped by the tracker: table full, a clash
	// not resolved, a TCP packet the tracker drops.
	Drop uint64
	// EarlyDrop counts entries evicted to make room.
	EarlyDrop uint64
	// Error counts packets whose headers fail the protocol's checks; the
	// caller, which decodes them, counts these.
	Error uint64
	// SearchRestart counts lookups restarted because a chain changed
	// under them.
	SearchRestart uint64
	// ClashResolve counts insertion races resolved without a drop.
	ClashResolve uint64
	// ChainTooLong counts confirmations refused for a chain too long.
	ChainTooLong uint64
}

// Add adds o's counters to s.
func (s *Stats) Add(o *Stats) {
	s.Found += o.Found
	s.Invalid += o.Invalid
	s.Insert += o.Insert
	s.InsertFailed += o.InsertFailed
	s.Drop += o.Drop
	s.EarlyDrop += o.EarlyDrop
	s.Error += o.Error
	s.SearchRestart += o.SearchRestart
	s.ClashResolve += o.ClashResolve
	s.ChainTooLong += o.ChainTooLong
}

// rec is one slab record: 31 atomic words, 124 bytes, no pointers.
type rec struct {
	// seq is the per-entry write lock and sequence: odd while a writer
	// holds it.
	seq atomic.Uint32
	// id is gen (31..16) | live (15) | replyOnly (14) | ext (13) | v6
	// (8) | proto (7..0). It changes only while the record is not
	// reachable as live: its key fields are stable while it is live.
	id atomic.Uint32
	// next are the chain links of the original (0) and reply (1) nodes,
	// beside the key words a chain walk reads.
	next [2]atomic.Uint32
	// zs is zone (31..16) | status (15..0).
	zs atomic.Uint32
	// ports are each direction's SrcPort<<16 | DstPort.
	ports [2]atomic.Uint32
	// addr: IPv6: original Src (0..3), Dst (4..7). IPv4: original Src
	// (0), Dst (4), reply Src (1), Dst (5).
	addr    [8]atomic.Uint32
	mark    atomic.Uint32 // the link of the free stack while free
	expires atomic.Uint32 // ticks
	// proto is the protocol state: TCP's ip_ct_tcp (encodeTCP), or
	// UDP's stream time in ticks (0).
	proto [protoWords]atomic.Uint32
}

// extRec holds an IPv6 entry's reply Src (0..3) and Dst (4..7).
type extRec [8]atomic.Uint32

const protoWords = 14

// The id word's bits.
const (
	idLive      = 1 << 15
	idReplyOnly = 1 << 14 // a clash entry: only the reply node is hashed
	idExt       = 1 << 13
	idV6        = 1 << 8
	idGenShift  = 16
)

func idGen(id uint32) uint32 { return id >> idGenShift }

// Chain links: a node is idx<<1 | dir; a nulls marker is 1<<31 | bucket.
const nulls = 1 << 31

func isNulls(n uint32) bool { return n&nulls != 0 }

// Time on the wrapping 32-bit tick clock.
const (
	tickShift = 20
	tickNS    = 1 << tickShift
)

// tickCeil is the first tick at or after ns.
func tickCeil(ns int64) uint32 { return uint32((ns + tickNS - 1) >> tickShift) }

// tickOf is the tick ns is in.
func tickOf(ns int64) uint32 { return uint32(ns >> tickShift) }

// expired reports whether a deadline of exp ticks has passed at tick
// now, as the kernel's nf_ct_is_expired: (s32)(timeout - now) <= 0.
func expired(exp, now uint32) bool { return int32(exp-now) <= 0 }

// untick turns a tick back into a time, near ref.
func untick(t uint32, ref int64) int64 {
	base := ref >> tickShift
	return (base + int64(int32(t-uint32(base)))) << tickShift
}

// key is a tuple in the table's words.
type key struct {
	a     [8]uint32 // IPv4: Src in a[0], Dst in a[4]
	ports uint32
	zone  uint16
	proto uint8
	v6    bool
}

func keyOf(t *Tuple) key {
	var k key
	k.ports = uint32(t.SrcPort)<<16 | uint32(t.DstPort)
	k.zone, k.proto, k.v6 = t.Zone, t.Proto, t.Family == 6
	if k.v6 {
		for i := range 4 {
			k.a[i] = binary.LittleEndian.Uint32(t.Src[4*i:])
			k.a[4+i] = binary.LittleEndian.Uint32(t.Dst[4*i:])
		}
	} else {
		k.a[0] = binary.LittleEndian.Uint32(t.Src[:])
		k.a[4] = binary.LittleEndian.Uint32(t.Dst[:])
	}
	return k
}

func (k *key) idBits() uint32 {
	id := uint32(k.proto)
	if k.v6 {
		id |= idV6
	}
	return id
}

// hash is the keyed hash of k (SipHash-1-3 over the tuple's words,
// chained for IPv6's five), as the kernel's hash_conntrack_raw over the
// tuple, zone and netns with a random seed.
func (t *Table) hash(k *key) uint64 {
	meta := uint64(k.ports) | uint64(k.proto)<<32 | uint64(k.zone)<<40
	if !k.v6 {
		return t.sip.Sum2(uint64(k.a[0])|uint64(k.a[4])<<32, meta)
	}
	meta |= 1 << 56
	h := t.sip.Sum2(uint64(k.a[0])|uint64(k.a[1])<<32, uint64(k.a[2])|uint64(k.a[3])<<32)
	h = t.sip.Sum2(h^(uint64(k.a[4])|uint64(k.a[5])<<32), uint64(k.a[6])|uint64(k.a[7])<<32)
	return t.sip.Sum2(h^meta, 6)
}

// bucket maps a hash to a bucket as the kernel's reciprocal_scale.
func (t *Table) bucket(h uint64) uint32 {
	return uint32(uint64(uint32(h)) * uint64(t.nbkt) >> 32)
}

// New returns an empty table.
func New(cfg Config) *Table {
	if cfg.Max <= 0 {
		cfg.Max = DefaultMax
	}
	cfg.Max = min(cfg.Max, maxEntries)
	if cfg.Buckets <= 0 {
		cfg.Buckets = 1 << bits.Len(uint(cfg.Max-1))
	}
	cfg.Buckets = min(cfg.Buckets, maxEntries)
	if cfg.Timeouts == (Timeouts{}) {
		cfg.Timeouts = DefaultTimeouts()
	}
	if cfg.TCP == (TCPConfig{}) {
		cfg.TCP = DefaultTCPConfig()
	}
	if cfg.Seed == ([2]uint64{}) {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			panic("conntrack: no random seed for the hash: " + err.Error())
		}
		cfg.Seed = [2]uint64{binary.LittleEndian.Uint64(b[:]), binary.LittleEndian.Uint64(b[8:])}
	}
	if cfg.EarlyDropScan <= 0 {
		cfg.EarlyDropScan = 8
	}
	nlocks := min(1024, 1<<bits.Len(uint(cfg.Buckets-1)))
	t := &Table{
		slab:      make([]rec, cfg.Max),
		heads:     make([]atomic.Uint32, cfg.Buckets),
		nbkt:      uint32(cfg.Buckets),
		locks:     make([]atomic.Uint32, nlocks),
		lmask:     uint32(nlocks - 1),
		sip:       siphash.NewKey(cfg.Seed[0], cfg.Seed[1]),
		max:       int64(cfg.Max),
		earlyScan: cfg.EarlyDropScan,
		tm:        cfg.Timeouts,
		tcpCfg:    cfg.TCP,
	}
	for i := range t.heads {
		t.heads[i].Store(nulls | uint32(i))
	}
	return t
}

// Max returns the most entries the table holds.
func (t *Table) Max() int { return int(t.max) }

// Count returns the number of entries, expired ones not yet reaped
// included, as the kernel's nf_conntrack_count.
func (t *Table) Count() int { return int(t.count.Load()) }

// Worker is one worker's handle on the table: the per-packet operations,
// and the worker's Stats, which only its goroutine touches.
type Worker struct {
	t *Table
	// Stats are this worker's counters.
	Stats Stats
	// Gone is the last state of the entry Packet deleted while accepting
	// its packet (PacketAcceptGone).
	Gone Entry
}

// NewWorker returns a handle for one worker goroutine.
func (t *Table) NewWorker() *Worker { return &Worker{t: t} }

// Table returns the worker's table.
func (w *Worker) Table() *Table { return w.t }

// see records a recent time for turning ticks back into times; it
// writes the shared word only when the time moved on by a second or so.
func (t *Table) see(now int64) {
	if c := t.clock.Load(); now-c > 1<<30 || c-now > 1<<30 {
		t.clock.Store(now)
	}
}

// lockWord spins until it takes the spinlock w (0 free, 1 held).
func lockWord(w *atomic.Uint32) {
	for i := 0; !w.CompareAndSwap(0, 1); i++ {
		if i >= 32 {
			runtime.Gosched()
		}
	}
}

// lockRec takes r's sequence word (even → odd) and returns the odd
// value; unlockRec(r, s) releases it (odd → next even).
func lockRec(r *rec) uint32 {
	for i := 0; ; i++ {
		if s := r.seq.Load(); s&1 == 0 && r.seq.CompareAndSwap(s, s+1) {
			return s + 1
		}
		if i >= 32 {
			runtime.Gosched()
		}
	}
}

func unlockRec(r *rec, s uint32) { r.seq.Store(s + 1) }

// lockBuckets takes the locks of buckets b0 and b1 in order, the kernel's
// nf_conntrack_double_lock; unlockBuckets releases them.
func (t *Table) lockBuckets(b0, b1 uint32) {
	l0, l1 := b0&t.lmask, b1&t.lmask
	if l0 > l1 {
		l0, l1 = l1, l0
	}
	lockWord(&t.locks[l0])
	if l1 != l0 {
		lockWord(&t.locks[l1])
	}
}

func (t *Table) unlockBuckets(b0, b1 uint32) {
	l0, l1 := b0&t.lmask, b1&t.lmask
	t.locks[l0].Store(0)
	if l1 != l0 {
		t.locks[l1].Store(0)
	}
}

// matches reports whether node dir of record r (identity id) holds key
// k. The caller checks id again afterwards.
func (t *Table) matches(r *rec, idx uint32, id uint32, dir uint32, k *key) bool {
	if id&(idLive|0xff|idV6) != idLive|k.idBits() ||
		r.ports[dir].Load() != k.ports || uint16(r.zs.Load()>>16) != k.zone {
		return false
	}
	if !k.v6 {
		return r.addr[dir].Load() == k.a[0] && r.addr[4+dir].Load() == k.a[4]
	}
	if dir == 0 {
		for i := range 8 {
			if r.addr[i].Load() != k.a[i] {
				return false
			}
		}
		return true
	}
	if id&idExt != 0 {
		x := &(*t.ext.Load())[idx]
		for i := range 8 {
			if x[i].Load() != k.a[i] {
				return false
			}
		}
		return true
	}
	for i := range 4 {
		if r.addr[4+i].Load() != k.a[i] || r.addr[i].Load() != k.a[4+i] {
			return false
		}
	}
	return true
}

// find looks k up in bucket b without locks, as the kernel's
// ____nf_conntrack_find: it returns the matching live node's record
// index, identity and direction. Expired entries are skipped
// (nf_ct_is_expired). A walk that ends in another bucket's nulls marker
// (it followed a record that was freed and linked elsewhere) restarts.
func (t *Table) find(k *key, b uint32, now uint32, st *Stats) (idx, id uint32, dir uint32, ok bool) {
restart:
	n := t.heads[b].Load()
	for hops := 0; !isNulls(n); hops++ {
		if hops > 1<<16 {
			goto again
		}
		idx, dir = n>>1, n&1
		r := &t.slab[idx]
		id = r.id.Load()
		if t.matches(r, idx, id, dir, k) && r.id.Load() == id {
			if expired(r.expires.Load(), now) {
				return 0, 0, 0, false
			}
			return idx, id, dir, true
		}
		n = r.next[dir].Load()
	}
	if n == nulls|b {
		return 0, 0, 0, false
	}
again:
	if st != nil {
		st.SearchRestart++
	}
	goto restart
}

// Lookup finds the live entry one of whose tuples is k and returns a
// reference to it in that tuple's direction: the kernel's
// __nf_conntrack_find_get. An expired entry is not found. It never
// blocks and never allocates.
func (w *Worker) Lookup(k *Tuple, now int64) (Conn, bool) {
	t := w.t
	kk := keyOf(k)
	idx, id, dir, ok := t.find(&kk, t.bucket(t.hash(&kk)), tickOf(now), &w.Stats)
	if !ok {
		return 0, false
	}
	return makeConn(idx, idGen(id), Dir(dir)), true
}

// rec returns c's record, if c is in range.
func (t *Table) rec(c Conn) *rec {
	if i := c.idx(); i < uint32(len(t.slab)) {
		return &t.slab[i]
	}
	return nil
}

// snapshot copies record idx into e, consistently: it retries while a
// writer holds the record or when the sequence or identity changed
// under the copy. It returns the identity the copy goes with.
func (t *Table) snapshot(idx uint32, e *Entry, ref int64) uint32 {
	r := &t.slab[idx]
	for i := 0; ; i++ {
		s := r.seq.Load()
		if s&1 != 0 {
			if i >= 32 {
				runtime.Gosched()
			}
			continue
		}
		id := r.id.Load()
		t.decode(r, idx, id, e, ref)
		if r.seq.Load() == s && r.id.Load() == id {
			return id
		}
	}
}

// decode fills e from r's words (not atomically as a whole: see
// snapshot).
func (t *Table) decode(r *rec, idx, id uint32, e *Entry, ref int64) {
	*e = Entry{}
	o := &e.Tuple[0]
	o.Proto = uint8(id)
	zs := r.zs.Load()
	o.Zone = uint16(zs >> 16)
	p := r.ports[0].Load()
	o.SrcPort, o.DstPort = uint16(p>>16), uint16(p)
	var a [8]uint32
	for i := range a {
		a[i] = r.addr[i].Load()
	}
	rp := &e.Tuple[1]
	rp.Proto, rp.Zone = o.Proto, o.Zone
	p = r.ports[1].Load()
	rp.SrcPort, rp.DstPort = uint16(p>>16), uint16(p)
	if id&idV6 != 0 {
		o.Family, rp.Family = 6, 6
		for i := range 4 {
			binary.LittleEndian.PutUint32(o.Src[4*i:], a[i])
			binary.LittleEndian.PutUint32(o.Dst[4*i:], a[4+i])
		}
		if id&idExt != 0 {
			if x := t.ext.Load(); x != nil {
				for i := range 4 {
					binary.LittleEndian.PutUint32(rp.Src[4*i:], (*x)[idx][i].Load())
					binary.LittleEndian.PutUint32(rp.Dst[4*i:], (*x)[idx][4+i].Load())
				}
			}
		} else {
			rp.Src, rp.Dst = o.Dst, o.Src
		}
	} else {
		o.Family, rp.Family = 4, 4
		binary.LittleEndian.PutUint32(o.Src[:], a[0])
		binary.LittleEndian.PutUint32(o.Dst[:], a[4])
		binary.LittleEndian.PutUint32(rp.Src[:], a[1])
		binary.LittleEndian.PutUint32(rp.Dst[:], a[5])
	}
	e.Status = Status(zs & 0xffff)
	e.Mark = r.mark.Load()
	e.Expires = untick(r.expires.Load(), ref)
	var pw [protoWords]uint32
	for i := range pw {
		pw[i] = r.proto[i].Load()
	}
	switch o.Proto {
	case ProtoTCP:
		decodeTCP(&pw, &e.TCP)
	case ProtoUDP:
		e.UDPStreamAt = untick(pw[0], ref)
	}
}

// Read copies the entry c refers to into e; false if it is gone (deleted,
// or its record reused). An expired entry not yet reaped is still read.
func (t *Table) Read(c Conn, e *Entry) bool {
	r := t.rec(c)
	if r == nil {
		return false
	}
	id := t.snapshot(c.idx(), e, t.clock.Load())
	return id&idLive != 0 && idGen(id) == c.gen()
}

// Walk calls fn with a consistent copy of each live entry not expired at
// now, in slab order, until fn returns false; what `conntrack -L` lists
// (ctnetlink skips expired entries, and the clash entries of
// nf_ct_resolve_clash_harder, which are hashed only in the reply
// direction). Entries added or deleted meanwhile may or may not show.
func (t *Table) Walk(now int64, fn func(*Entry) bool) {
	nt := tickOf(now)
	n := min(t.bump.Load(), uint32(len(t.slab)))
	var e Entry
	for i := range n {
		if t.slab[i].id.Load()&idLive == 0 {
			continue
		}
		id := t.snapshot(i, &e, now)
		if id&idLive == 0 || id&idReplyOnly != 0 || expired(tickCeil(e.Expires), nt) {
			continue
		}
		if !fn(&e) {
			return
		}
	}
}

// SetMark sets the mark of the entry c refers to (ct mark set); false if
// it is gone.
func (t *Table) SetMark(c Conn, mark uint32) bool {
	r := t.rec(c)
	if r == nil {
		return false
	}
	s := lockRec(r)
	id := r.id.Load()
	ok := id&idLive != 0 && idGen(id) == c.gen()
	if ok {
		r.mark.Store(mark)
	}
	unlockRec(r, s)
	return ok
}

// Delete deletes the entry c refers to (conntrack -D, nf_ct_delete);
// false if it was already gone.
func (t *Table) Delete(c Conn) bool {
	if c.idx() >= uint32(len(t.slab)) {
		return false
	}
	return t.kill(c.idx(), c.gen())
}

// kill deletes record idx if it is live with generation gen: it takes
// the entry's two bucket locks, then its record lock, marks it not live
// (a new generation), unlinks its nodes and frees the record.
func (t *Table) kill(idx, gen uint32) bool {
	r := &t.slab[idx]
	id := r.id.Load()
	if id&idLive == 0 || idGen(id) != gen {
		return false
	}
	var k0, k1 key
	t.keys(r, idx, id, &k0, &k1)
	if r.id.Load() != id {
		return false
	}
	b0, b1 := t.bucket(t.hash(&k0)), t.bucket(t.hash(&k1))
	t.lockBuckets(b0, b1)
	s := lockRec(r)
	if r.id.Load() != id {
		unlockRec(r, s)
		t.unlockBuckets(b0, b1)
		return false
	}
	r.id.Store((gen+1)<<idGenShift | id&0xffff&^(idLive|idReplyOnly|idExt))
	unlockRec(r, s)
	if id&idReplyOnly == 0 {
		t.unlink(b0, idx<<1)
	}
	t.unlink(b1, idx<<1|1)
	t.unlockBuckets(b0, b1)
	t.release(idx)
	return true
}

// keys reads both tuples of record r as keys.
func (t *Table) keys(r *rec, idx, id uint32, k0, k1 *key) {
	*k0 = key{proto: uint8(id), v6: id&idV6 != 0, zone: uint16(r.zs.Load() >> 16)}
	*k1 = *k0
	k0.ports, k1.ports = r.ports[0].Load(), r.ports[1].Load()
	if !k0.v6 {
		k0.a[0], k0.a[4] = r.addr[0].Load(), r.addr[4].Load()
		k1.a[0], k1.a[4] = r.addr[1].Load(), r.addr[5].Load()
		return
	}
	for i := range 8 {
		k0.a[i] = r.addr[i].Load()
	}
	if id&idExt != 0 {
		x := &(*t.ext.Load())[idx]
		for i := range 8 {
			k1.a[i] = x[i].Load()
		}
		return
	}
	copy(k1.a[:4], k0.a[4:])
	copy(k1.a[4:], k0.a[:4])
}

// unlink removes node n from bucket b's chain; the caller holds b's
// lock. n's own link stays, so a reader standing on n goes on along the
// chain (hlist_nulls_del_rcu).
func (t *Table) unlink(b, n uint32) {
	p := &t.heads[b]
	for {
		c := p.Load()
		if isNulls(c) {
			return
		}
		r := &t.slab[c>>1]
		if c == n {
			p.Store(r.next[c&1].Load())
			return
		}
		p = &r.next[c&1]
	}
}

// alloc takes a free record: from the free stack, else one never used.
func (t *Table) alloc() (uint32, bool) {
	for {
		h := t.free.Load()
		top := uint32(h)
		if top == 0 {
			break
		}
		nxt := t.slab[top-1].mark.Load()
		if t.free.CompareAndSwap(h, (h>>32+1)<<32|uint64(nxt)) {
			return top - 1, true
		}
	}
	i := t.bump.Add(1) - 1
	if i >= uint32(len(t.slab)) {
		t.bump.Add(^uint32(0))
		return 0, false
	}
	return i, true
}

// release puts record idx, no longer live, on the free stack and takes
// it off the count.
func (t *Table) release(idx uint32) {
	r := &t.slab[idx]
	for {
		h := t.free.Load()
		r.mark.Store(uint32(h))
		if t.free.CompareAndSwap(h, (h>>32+1)<<32|uint64(idx+1)) {
			break
		}
	}
	t.count.Add(-1)
}

// Flush deletes every entry (conntrack -F) and returns how many it
// deleted. It deletes them one by one: the workers go on meanwhile.
func (t *Table) Flush() int {
	n := 0
	hi := min(t.bump.Load(), uint32(len(t.slab)))
	for i := range hi {
		id := t.slab[i].id.Load()
		if id&idLive != 0 && t.kill(i, idGen(id)) {
			n++
		}
	}
	return n
}

// Expire reaps entries expired at now, reading at most budget records
// from where the previous call stopped, and returns how many it
// deleted: the kernel's gc_worker, one bounded slice at a time. After a
// new flow was refused for a full table it also evicts, while the table
// is at least 95% full, the entries early drop may take (not ASSURED, or
// a TCP connection that is closing: gc_worker_can_early_drop), once.
func (t *Table) Expire(now int64, budget int) int {
	t.see(now)
	nt := tickOf(now)
	hi := min(t.bump.Load(), uint32(len(t.slab)))
	if hi == 0 || budget <= 0 {
		return 0
	}
	budget = min(budget, int(hi))
	evict := t.gcDrop.Swap(false)
	max95 := t.max / 100 * 95
	start := t.reapPos.Add(uint32(budget)) - uint32(budget)
	n := 0
	for j := range uint32(budget) {
		i := (start + j) % hi
		r := &t.slab[i]
		id := r.id.Load()
		if id&idLive == 0 {
			continue
		}
		if expired(r.expires.Load(), nt) {
			if t.kill(i, idGen(id)) {
				n++
			}
			continue
		}
		if evict && t.count.Load() >= max95 && t.gcCanEarlyDrop(r) && t.kill(i, idGen(id)) {
			n++
		}
	}
	return n
}

// gcCanEarlyDrop is the kernel's gc_worker_can_early_drop: not ASSURED,
// or a TCP connection past ESTABLISHED (tcp_can_early_drop).
func (t *Table) gcCanEarlyDrop(r *rec) bool {
	if Status(r.zs.Load())&StatusAssured == 0 {
		return true
	}
	if uint8(r.id.Load()) != ProtoTCP {
		return false
	}
	switch TCPConntrack(r.proto[tcpStateWord].Load()) {
	case TCPFinWait, TCPLastAck, TCPTimeWait, TCPClose, TCPCloseWait:
		return true
	}
	return false
}

// earlyDrop is the kernel's early_drop: from bucket b on, up to
// EarlyDropScan buckets, it deletes in each every entry that is neither
// ASSURED nor dying (early_drop_list; expired ones are reaped on the way
// and do not count), and stops after the first bucket where it deleted
// any. It returns how many it deleted.
func (w *Worker) earlyDrop(b uint32, now uint32) int {
	t := w.t
	for i := range t.earlyScan {
		bk := (b + uint32(i)) % t.nbkt
		var cand [16]Conn
		nc := 0
		var gone [16]Conn
		ng := 0
		n := t.heads[bk].Load()
		for hops := 0; !isNulls(n) && hops < 1<<10; hops++ {
			idx := n >> 1
			r := &t.slab[idx]
			id := r.id.Load()
			if id&idLive != 0 {
				c := makeConn(idx, idGen(id), 0)
				switch {
				case expired(r.expires.Load(), now):
					if ng < len(gone) {
						gone[ng] = c
						ng++
					}
				case Status(r.zs.Load())&StatusAssured == 0:
					if nc < len(cand) {
						cand[nc] = c
						nc++
					}
				}
			}
			n = r.next[n&1].Load()
		}
		for _, c := range gone[:ng] {
			t.kill(c.idx(), c.gen())
		}
		drops := 0
		for _, c := range cand[:nc] {
			if t.kill(c.idx(), c.gen()) {
				drops++
			}
		}
		if drops > 0 {
			w.Stats.EarlyDrop += uint64(drops)
			return drops
		}
	}
	return 0
}

// deadline converts a timeout to the deadline tick of a packet at now.
func deadline(now int64, d time.Duration) uint32 { return tickCeil(now + int64(d)) }
