package conntrack

import (
	"crypto/rand"
	"encoding/binary"
	"math/bits"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/xdpfwd/xdpfwd/internal/prefetch"
	"github.com/xdpfwd/xdpfwd/internal/siphash"
)

// Table is the flow table every worker shares, the kernel's conntrack
// hash (nf_conntrack_core.c): each entry is found under its original and
// its reply tuple, so the two directions of a flow, which arrive on
// different workers, reach the same entry.
//
// # Layout
//
// Entries live in a slab, a slice of fixed 116-byte records made only of
// atomic 32-bit words (no pointers: the garbage collector never scans
// it). The first 60 bytes hold what a lookup and a UDP packet touch: the
// sequence and identity words, zone and status, expiry, both directions'
// ports, the addresses and the mark; then comes the protocol state. (The
// records are not padded to 128 bytes: measured, padding bought no speed,
// the adjacent-line prefetch covering a record's two lines, and cost 12
// bytes an entry.) A record holds the original tuple's addresses, ports,
// protocol, family and zone; the reply tuple's ports, and its addresses
// where they are not simply the original's swapped (an IPv4 record has
// room for them; an IPv6 record whose reply addresses differ, which only
// NAT66 makes, keeps them in a side slab allocated the first time one is
// needed); status (16 bits: every IPS_* bit the kernel defines), mark,
// expiry in ticks of 2^20 ns (about 1 ms, the kernel's jiffies are 1 to
// 10 ms) on a wrapping 32-bit clock compared as the kernel compares
// jiffies; and the protocol state (TCP's whole ip_ct_tcp, or UDP's
// stream time).
//
// The index is an open-addressing hash of 32-bit words in 64-byte lines
// (one cache line each): a line's first word is its header, the other 15
// are slots. A slot is 0 when empty, else one node, one direction of one
// entry: tag << nodeBits | (record index << 1 | direction) + 1, where
// the tag is hash bits the line number does not use. A tuple's home line
// is its hash scaled to the number of lines (the kernel's
// reciprocal_scale); its node sits in the first line from there on that
// had a free slot when it was inserted, at the first free slot from one
// the hash chooses (firstSlot), so that a lookup mostly finds its node in
// the first slot it reads. The header counts the nodes that passed the
// line because it was full (the overflow count, as folly's F14 keeps it)
// and holds the line's writer lock. A lookup therefore
// reads one line (and the next only where one overflowed), compares tags
// and reads only the records whose tag matches: about one cache miss for
// the index and one for the record. Nodes never move: an insert takes an
// empty slot, a delete empties it; so a reader that takes no lock never
// misses a live entry, and never needs to restart (Stats.SearchRestart
// stays 0). The index has a line for every 32/3 nodes the table can hold
// (2 × Max), its slots 71% full when the table is: 12 bytes per entry.
// The slab and the index ask for transparent huge pages, so that a
// random lookup costs cache misses and not also TLB misses. Memory: 128
// bytes per entry, index included.
//
// Buckets are the kernel's unit of early drop: a tuple's bucket is its
// hash scaled to Config.Buckets, and since both scalings keep the hash's
// order, a bucket's nodes are in the lines its hash range scales to (or
// after them, where those overflowed).
//
// # Concurrency
//
//   - Readers (Lookup) take no lock and write nothing: they scan the
//     home line's slots with atomic loads and compare a candidate's key
//     between two loads of its identity word (generation, live bit,
//     protocol, family); keys are written only while a record is not
//     live, so a match between two equal identity loads is a real one.
//   - Each record has a sequence word, odd while a writer holds it;
//     writers take it with CompareAndSwap (Packet, SetMark, Delete).
//     That serialises the per-packet updates of the two directions of one
//     flow, on two workers, without a mutex. Snapshots (Read, Walk) copy
//     the words and retry if the sequence or the identity changed; so
//     does Packet for a packet that changes nothing (the same expiry
//     tick, no new status bit: most packets of a busy flow), which then
//     writes nothing. A record being initialised is not live, and nothing
//     but a failing snapshot or key comparison reads it: Confirm writes it
//     without the lock. Every store is a locked instruction in Go (some 6
//     ns), so writers store only the words that change.
//   - Index changes (insert, delete) take the locks of the entry's two
//     home lines (in line order to avoid deadlock), the kernel's
//     nf_conntrack_double_lock: two inserts of one tuple are serialised,
//     so the second sees the first (a clash). A node that overflows into
//     a line whose lock it does not hold takes its slot with
//     CompareAndSwap; overflow counts change by atomic adds, before the
//     node is stored and after it is cleared. Lock holders never wait for
//     a record lock they could be holding up (the order is lines, then
//     record, everywhere).
//   - Free records are on a lock-free stack (a Treiber stack with an ABA
//     tag). A generation in the identity word changes each time a record
//     is freed: Conn references carry it, and one to a freed or reused
//     record is refused.
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
	// bysrc is the by-source index of source-NATed connections
	// (bysource.go), made on first use.
	bysrc     atomic.Pointer[[]srcBucket]
	bysrcOnce sync.Once
	index     []atomic.Uint32 // nlines lines of lineWords words
	nlines    uint32
	// nodeBits is the width of a slot's node field; the tag is above it.
	nodeBits uint32
	nbkt     uint32
	sip      siphash.Key

	max       int64
	count     atomic.Int64
	bump      atomic.Uint32 // records never used start here
	free      atomic.Uint64 // Treiber stack: tag<<32 | index+1
	reapPos   atomic.Uint32
	gcDrop    atomic.Bool  // a new flow was refused: Expire evicts (gc_worker's early_drop)
	clock     atomic.Int64 // a recent now, to turn ticks back into times
	earlyScan int

	tm       Timeouts
	tcpCfg   TCPConfig
	checksum bool // nf_conntrack_checksum

	ev events // conntrack -E's events (events.go)
}

// Config configures a Table.
type Config struct {
	// Max is the most entries the table holds (nf_conntrack_max);
	// 262144 if 0.
	Max int
	// Buckets is the number of hash buckets (nf_conntrack_buckets, the
	// hashsize), the unit early drop scans; the smallest power of two ≥
	// Max if 0. The index itself is sized by Max.
	Buckets int
	// Timeouts are the per-protocol timeouts; DefaultTimeouts() if
	// zero.
	Timeouts Timeouts
	// TCP is the TCP tracker's configuration; nil: DefaultTCPConfig().
	TCP *TCPConfig
	// Seed keys the hash; 128 random bits if zero.
	Seed [2]uint64
	// EarlyDropScan is how many buckets early drop scans
	// (NF_CT_EVICTION_RANGE); 8 if 0.
	EarlyDropScan int
	// SkipChecksum turns off the check of transport checksums at
	// prerouting (nf_conntrack_checksum 0): with it off, a TCP, UDP or
	// ICMP packet with a wrong checksum is ct state invalid.
	SkipChecksum bool
}

// DefaultMax is the kernel's default nf_conntrack_max on a machine with
// enough memory.
const DefaultMax = 262144

// maxEntries bounds Max: a node (record index and direction, plus one)
// takes at most 30 bits of an index slot, leaving at least 2 for the tag
// (a table of 10^6 entries has 21-bit nodes and 11-bit tags).
const maxEntries = 1 << 28

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
	// under them: always 0 here, where index nodes never move (the
	// kernel's hash chains need it).
	SearchRestart uint64
	// ClashResolve counts insertion races resolved without a drop.
	ClashResolve uint64
	// ChainTooLong counts confirmations refused for a chain too long:
	// more nodes between a tuple's home slot and a free one than the
	// kernel allows in a chain.
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

// rec is one slab record: 29 atomic words, 116 bytes, no pointers. The
// first 15 words are what a lookup and a UDP packet read and write (with
// proto[0], UDP's stream time).
type rec struct {
	// seq is the per-entry write lock and sequence: odd while a writer
	// holds it.
	seq atomic.Uint32
	// id is gen (31..16) | live (15) | replyOnly (14) | ext (13) | v6
	// (8) | proto (7..0). It changes only while the record is not
	// reachable as live: its key fields are stable while it is live.
	id atomic.Uint32
	// zs is zone (31..16) | status (15..0).
	zs      atomic.Uint32
	expires atomic.Uint32 // ticks
	// ports are each direction's SrcPort<<16 | DstPort.
	ports [2]atomic.Uint32
	// addr: IPv6: original Src (0..3), Dst (4..7). IPv4: original Src
	// (0), Dst (4), reply Src (1), Dst (5).
	addr [8]atomic.Uint32
	mark atomic.Uint32 // the link of the free stack while free
	// proto is the protocol state: TCP's ip_ct_tcp (encodeTCP), or
	// UDP's stream time in ticks (0).
	proto [protoWords]atomic.Uint32
}

// recSize is a record's size in bytes.
const recSize = 116

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

// familyOf returns the address family of a record's id word.
func familyOf(id uint32) uint8 {
	if id&idV6 != 0 {
		return 6
	}
	return 4
}

func idGen(id uint32) uint32 { return id >> idGenShift }

// The index's lines: a header word (lineLock | overflow count <<
// overShift), then lineWords-1 slots.
const (
	lineWords = 16
	lineSlots = lineWords - 1
	lineLock  = 1
	overShift = 1
	overOne   = 1 << overShift
	// The index has a line for every nodesPerLine nodes the table can
	// hold: 32/3, which makes it 12 bytes per entry, each line about
	// 71% full when the table is.
	nodesPerLineNum = 32
	nodesPerLineDen = 3
)

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
	k.set(t)
	return k
}

// set makes k the key of t.
func (k *key) set(t *Tuple) {
	k.ports = uint32(t.SrcPort)<<16 | uint32(t.DstPort)
	k.zone, k.proto, k.v6 = t.Zone, t.Proto, t.Family == 6
	if k.v6 {
		for i := range 4 {
			k.a[i] = binary.LittleEndian.Uint32(t.Src[4*i:])
			k.a[4+i] = binary.LittleEndian.Uint32(t.Dst[4*i:])
		}
	} else {
		k.a = [8]uint32{0: binary.LittleEndian.Uint32(t.Src[:]), 4: binary.LittleEndian.Uint32(t.Dst[:])}
	}
}

func (k *key) idBits() uint32 {
	id := uint32(k.proto)
	if k.v6 {
		id |= idV6
	}
	return id
}

// hash is the keyed hash of k (SipHash-1-3 over the tuple's words: two
// for IPv4, five for IPv6), as the kernel's hash_conntrack_raw over the
// tuple, zone and netns with a random seed. The low 32 bits choose the
// line and the bucket, the high ones the tag.
func (t *Table) hash(k *key) uint64 {
	meta := uint64(k.ports) | uint64(k.proto)<<32 | uint64(k.zone)<<40
	if !k.v6 {
		return t.sip.Sum2(uint64(k.a[0])|uint64(k.a[4])<<32, meta)
	}
	return t.sip.Sum5(uint64(k.a[0])|uint64(k.a[1])<<32, uint64(k.a[2])|uint64(k.a[3])<<32,
		uint64(k.a[4])|uint64(k.a[5])<<32, uint64(k.a[6])|uint64(k.a[7])<<32, meta|1<<56)
}

// bucket maps a hash to a bucket as the kernel's reciprocal_scale.
func (t *Table) bucket(h uint64) uint32 {
	return uint32(uint64(uint32(h)) * uint64(t.nbkt) >> 32)
}

// homeLine maps a hash to its home line, in the same way.
func (t *Table) homeLine(h uint64) uint32 {
	return uint32(uint64(uint32(h)) * uint64(t.nlines) >> 32)
}

// tagWord is the tag bits of a slot holding a node of a tuple whose hash
// is h.
func (t *Table) tagWord(h uint64) uint32 {
	return uint32(h>>32) >> t.nodeBits << t.nodeBits
}

// slotWord is the slot word of node n (record index << 1 | direction)
// of a tuple whose hash is h.
func (t *Table) slotWord(h uint64, n uint32) uint32 { return t.tagWord(h) | (n + 1) }

// line returns line l's words: the header, then the slots.
func (t *Table) line(l uint32) *[lineWords]atomic.Uint32 {
	return (*[lineWords]atomic.Uint32)(t.index[l*lineWords : l*lineWords+lineWords])
}

// nextLine is the line after l, wrapping.
func (t *Table) nextLine(l uint32) uint32 {
	if l++; l == t.nlines {
		return 0
	}
	return l
}

// firstSlot is the slot (0 to lineSlots-1, after the header) where the
// scans of a line for a tuple whose hash is h begin, wrapping round the
// line: its insert takes the first free slot from there on, so that most
// lookups find their node in the first slot they read. The bits are
// the ones the line number depends on least.
func firstSlot(h uint64) uint32 { return uint32(h&0xffff) * lineSlots >> 16 }

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
	tcp := DefaultTCPConfig()
	if cfg.TCP != nil {
		tcp = *cfg.TCP
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
	nlines := (2*cfg.Max*nodesPerLineDen + nodesPerLineNum - 1) / nodesPerLineNum
	t := &Table{
		slab:      makeHuge[rec](cfg.Max),
		index:     makeHuge[atomic.Uint32](nlines * lineWords),
		nlines:    uint32(nlines),
		nodeBits:  uint32(bits.Len(uint(2 * cfg.Max))),
		nbkt:      uint32(cfg.Buckets),
		sip:       siphash.NewKey(cfg.Seed[0], cfg.Seed[1]),
		max:       int64(cfg.Max),
		earlyScan: cfg.EarlyDropScan,
		tm:        cfg.Timeouts,
		tcpCfg:    tcp,
		checksum:  !cfg.SkipChecksum,
	}
	t.ev.ctl.shared = true
	return t
}

// hugePage is the size of a transparent huge page on x86-64 and arm64
// (with 4 KiB base pages).
const hugePage = 2 << 20

// makeHuge returns n zeroed Ts. For a large slice it asks the kernel for
// transparent huge pages (madvise(MADV_HUGEPAGE), honoured when
// /sys/kernel/mm/transparent_hugepage/enabled is "madvise" or "always"),
// as fastpath/route does for its tables: a random lookup in a table of
// hundreds of MiB then costs a cache miss, not also a TLB miss and a
// page walk. The memory is still Go memory (a large allocation is fresh
// from the OS, not yet touched, and page-aligned: the index's lines are
// cache lines), freed by the garbage collector; the advice is a hint,
// and failing to take it changes only speed.
func makeHuge[T any](n int) []T {
	s := make([]T, n)
	size := n * int(unsafe.Sizeof(*new(T)))
	if size < 2*hugePage {
		return s
	}
	start := uintptr(unsafe.Pointer(unsafe.SliceData(s)))
	first := (start + hugePage - 1) &^ (hugePage - 1)
	last := (start + uintptr(size)) &^ (hugePage - 1)
	if last > first {
		b := unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(s)), first-start)), last-first)
		_ = syscall.Madvise(b, syscall.MADV_HUGEPAGE)
	}
	return s
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

	ev    evSink // this worker's events
	evBuf Entry
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

// lockLine spins until it takes line l's lock, the header's low bit
// (overflow counts change under it by atomic adds).
func (t *Table) lockLine(l uint32) {
	h := &t.line(l)[0]
	for i := 0; ; i++ {
		if v := h.Load(); v&lineLock == 0 && h.CompareAndSwap(v, v|lineLock) {
			return
		}
		if i >= 32 {
			runtime.Gosched()
		}
	}
}

func (t *Table) unlockLine(l uint32) { t.line(l)[0].Add(^uint32(0)) } // - lineLock

// lockLines takes the locks of lines l0 and l1 in order, the kernel's
// nf_conntrack_double_lock; unlockLines releases them.
func (t *Table) lockLines(l0, l1 uint32) {
	if l0 > l1 {
		l0, l1 = l1, l0
	}
	t.lockLine(l0)
	if l1 != l0 {
		t.lockLine(l1)
	}
}

func (t *Table) unlockLines(l0, l1 uint32) {
	t.unlockLine(l0)
	if l1 != l0 {
		t.unlockLine(l1)
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

// find looks k, whose hash is h, up without locks, as the kernel's
// ____nf_conntrack_find: it returns the matching live node's record
// index, identity and direction. It scans k's home line, and the lines
// after it while nodes overflowed past them, and reads the records of
// the nodes whose tag is k's. Expired entries are skipped
// (nf_ct_is_expired).
func (t *Table) find(k *key, h uint64, now uint32) (idx, id uint32, dir uint32, ok bool) {
	tag, mask := t.tagWord(h), uint32(1)<<t.nodeBits-1
	l, first := t.homeLine(h), firstSlot(h)
	for range t.nlines {
		ln := t.line(l)
		for j := range uint32(lineSlots) {
			s := first + j
			if s >= lineSlots {
				s -= lineSlots
			}
			w := ln[1+s].Load()
			if w&^mask != tag || w == 0 {
				continue
			}
			n := w&mask - 1
			idx, dir = n>>1, n&1
			r := &t.slab[idx]
			id = r.id.Load()
			if t.matches(r, idx, id, dir, k) && r.id.Load() == id {
				if expired(r.expires.Load(), now) {
					return 0, 0, 0, false
				}
				return idx, id, dir, true
			}
		}
		if ln[0].Load()>>overShift == 0 {
			break
		}
		l = t.nextLine(l)
	}
	return 0, 0, 0, false
}

// Hint is what PrefetchLine learned about a tuple, for PrefetchEntry and
// Track: its hash. The zero Hint knows nothing.
type Hint struct {
	hash uint64
	ok   bool
}

// PrefetchLine hashes k and starts fetching its home index line into
// the cache, so that the line is on its way while the caller goes on:
// the first of a batch's three passes (VPP's prefetch pipeline), in
// which the lookups of a batch's packets miss the cache together rather
// than one after another. See PrefetchEntry.
func (w *Worker) PrefetchLine(k *Tuple) Hint {
	t := w.t
	kk := keyOf(k)
	h := t.hash(&kk)
	prefetch.Line(unsafe.Pointer(t.line(t.homeLine(h))))
	return Hint{hash: h, ok: true}
}

// PrefetchEntry starts fetching the records whose nodes in the home line
// of hint's tuple carry the tuple's tag: the records a lookup will
// compare. It is the second pass, after PrefetchLine fetched the line.
func (w *Worker) PrefetchEntry(hint Hint) {
	t := w.t
	tag, mask := t.tagWord(hint.hash), uint32(1)<<t.nodeBits-1
	ln := t.line(t.homeLine(hint.hash))
	for j := 1; j < lineWords; j++ {
		if s := ln[j].Load(); s&^mask == tag && s != 0 {
			r := &t.slab[(s&mask-1)>>1]
			prefetch.Line(unsafe.Pointer(r))
			prefetch.Line(unsafe.Add(unsafe.Pointer(r), recSize-1)) // a record may straddle two lines
		}
	}
}

// Lookup finds the live entry one of whose tuples is k and returns a
// reference to it in that tuple's direction: the kernel's
// __nf_conntrack_find_get. An expired entry is not found. It never
// blocks and never allocates.
func (w *Worker) Lookup(k *Tuple, now int64) (Conn, bool) {
	return w.lookup(k, Hint{}, now)
}

// lookup is Lookup, with k's hash from hint if it has it.
func (w *Worker) lookup(k *Tuple, hint Hint, now int64) (Conn, bool) {
	t := w.t
	var kk key
	kk.set(k)
	h := hint.hash
	if !hint.ok {
		h = t.hash(&kk)
	}
	idx, id, dir, ok := t.find(&kk, h, tickOf(now))
	if !ok {
		return 0, false
	}
	return makeConn(idx, idGen(id), Dir(dir)), true
}

// place stores slot word sw (a node of a tuple whose home line is l and
// first slot first) in the first free slot from there on, counting the overflow in each full line
// it passes before it stores the node, so that a reader which finds it
// not in a line goes on to the next. The caller holds l's lock. It
// reports false if the whole index is full, which the bound on entries
// rules out.
func (t *Table) place(l, first uint32, sw uint32) bool {
	start := l
	for range t.nlines {
		ln := t.line(l)
		for j := range uint32(lineSlots) {
			s := first + j
			if s >= lineSlots {
				s -= lineSlots
			}
			if ln[1+s].Load() == 0 && ln[1+s].CompareAndSwap(0, sw) {
				return true
			}
		}
		ln[0].Add(overOne)
		l = t.nextLine(l)
	}
	// Not reached: undo the counts.
	for range t.nlines {
		t.line(start)[0].Add(^uint32(overOne - 1))
		start = t.nextLine(start)
	}
	return false
}

// remove clears slot word sw (a node of a tuple whose home line is l)
// from the index, then takes it off the overflow counts of the lines
// before its own. The caller holds l's lock.
func (t *Table) remove(l uint32, sw uint32) {
	start := l
	for range t.nlines {
		ln := t.line(l)
		for s := 1; s < lineWords; s++ {
			if ln[s].Load() == sw {
				ln[s].Store(0)
				for ; start != l; start = t.nextLine(start) {
					t.line(start)[0].Add(^uint32(overOne - 1))
				}
				return
			}
		}
		l = t.nextLine(l)
	}
}

// rec returns c's record, if c is in range.
func (t *Table) rec(c Conn) *rec {
	if i := c.idx(); i < uint32(len(t.slab)) {
		return &t.slab[i]
	}
	return nil
}

// stableSeq returns r's sequence word once no writer holds the record
// (it is even), for a reader to compare after its reads; it yields the
// processor while a writer takes long.
func stableSeq(r *rec) uint32 {
	for i := 0; ; i++ {
		if s := r.seq.Load(); s&1 == 0 {
			return s
		}
		if i >= 32 {
			runtime.Gosched()
		}
	}
}

// snapshot copies record idx into e, consistently: it retries while a
// writer holds the record or when the sequence or identity changed
// under the copy. It returns the identity the copy goes with.
func (t *Table) snapshot(idx uint32, e *Entry, ref int64) uint32 {
	r := &t.slab[idx]
	for {
		s := stableSeq(r)
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

// Translated returns the status of the entry c refers to and, if it has
// one of the NAT status bits in want (StatusSrcNAT, StatusDstNAT), fills
// out with the tuple a packet of c's direction carries once translated
// both ways: the other direction's tuple, reversed (nf_nat_packet's
// target). It reads
// only those words, consistently, for the per-packet rewrite (for an
// ICMP type without a reply, which the table never holds, the ports are
// 0 as in Tuple.Inverse); false if
// the entry is gone.
func (t *Table) Translated(c Conn, want Status, out *Tuple) (Status, bool) {
	r := t.rec(c)
	if r == nil {
		return 0, false
	}
	other := 1 - c.Dir()
	for {
		s := stableSeq(r)
		id := r.id.Load()
		zs := r.zs.Load()
		if id&idLive == 0 || idGen(id) != c.gen() {
			return 0, false
		}
		st := Status(zs & 0xffff)
		if st&want == 0 {
			if r.seq.Load() == s {
				return st, true
			}
			continue
		}
		// The other direction's tuple, reversed: its Dst is out's Src.
		var o Tuple
		o.Proto, o.Zone = uint8(id), uint16(zs>>16)
		p := r.ports[other].Load()
		o.SrcPort, o.DstPort, _ = reversePorts(familyOf(id), o.Proto, uint16(p>>16), uint16(p))
		switch {
		case id&idV6 == 0:
			o.Family = 4 // words 0 and 4 hold the original Src and Dst, 1 and 5 the reply's
			binary.LittleEndian.PutUint32(o.Dst[:], r.addr[other].Load())
			binary.LittleEndian.PutUint32(o.Src[:], r.addr[4+other].Load())
		case other == DirOriginal || id&idExt == 0:
			o.Family = 6
			a, b := 0, 4 // the original Src, Dst
			if other == DirReply {
				a, b = 4, 0
			}
			for i := range 4 {
				binary.LittleEndian.PutUint32(o.Dst[4*i:], r.addr[a+i].Load())
				binary.LittleEndian.PutUint32(o.Src[4*i:], r.addr[b+i].Load())
			}
		default:
			o.Family = 6
			if x := t.ext.Load(); x != nil {
				for i := range 4 {
					binary.LittleEndian.PutUint32(o.Dst[4*i:], (*x)[c.idx()][i].Load())
					binary.LittleEndian.PutUint32(o.Src[4*i:], (*x)[c.idx()][4+i].Load())
				}
			}
		}
		if r.seq.Load() != s || r.id.Load() != id {
			continue
		}
		*out = o
		return st, true
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
	n := min(t.bump.Load(), uint32(len(t.slab)))
	var e Entry
	for i := range n {
		if t.listed(i, &e, now) && !fn(&e) {
			return
		}
	}
}

// listed copies record i into e and reports whether a listing shows it:
// a live entry, not a clash entry hashed in the reply direction only,
// not expired at now.
func (t *Table) listed(i uint32, e *Entry, now int64) bool {
	if t.slab[i].id.Load()&idLive == 0 {
		return false
	}
	id := t.snapshot(i, e, now)
	return id&idLive != 0 && id&idReplyOnly == 0 && !expired(tickCeil(e.Expires), tickOf(now))
}

// SetMark sets the mark of the entry c refers to (ct mark set); false if
// it is gone.
func (t *Table) SetMark(c Conn, mark uint32) bool { return t.SetMarkAt(c, mark, t.clock.Load()) }

// SetMarkAt is SetMark at now, the time of the UPDATE event a change of
// the mark makes (IPCT_MARK) when someone subscribes to events.
func (t *Table) SetMarkAt(c Conn, mark uint32, now int64) bool {
	r := t.rec(c)
	if r == nil {
		return false
	}
	s := lockRec(r)
	id := r.id.Load()
	ok := id&idLive != 0 && idGen(id) == c.gen()
	var (
		ev bool
		me Entry
	)
	if ok {
		ev = r.mark.Load() != mark && t.evOn() // IPCT_MARK, when it changes
		r.mark.Store(mark)
		if ev {
			t.decode(r, c.idx(), id, &me, now)
		}
	}
	unlockRec(r, s)
	if ev {
		t.emit(&t.ev.ctl, EventUpdate, CauseMark, 0, now, &me)
	}
	return ok
}

// Delete deletes the entry c refers to (conntrack -D, nf_ct_delete);
// false if it was already gone.
func (t *Table) Delete(c Conn) bool {
	if c.idx() >= uint32(len(t.slab)) {
		return false
	}
	return t.kill(c.idx(), c.gen(), &t.ev.ctl, 0, t.clock.Load())
}

// kill deletes record idx if it is live with generation gen: it takes
// the locks of the entry's two home lines, then its record lock, marks
// it not live (a new generation), clears its nodes and frees the record.
func (t *Table) kill(idx, gen uint32, ev *evSink, origin uint32, now int64) bool {
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
	h0, h1 := t.hash(&k0), t.hash(&k1)
	l0, l1 := t.homeLine(h0), t.homeLine(h1)
	t.lockLines(l0, l1)
	s := lockRec(r)
	if r.id.Load() != id {
		unlockRec(r, s)
		t.unlockLines(l0, l1)
		return false
	}
	var de *Entry
	if ev != nil && t.evOn() {
		de = new(Entry) // with subscribers only
		t.decode(r, idx, id, de, now)
		de.Status |= StatusDying
	}
	r.id.Store((gen+1)<<idGenShift | id&0xffff&^(idLive|idReplyOnly|idExt))
	unlockRec(r, s)
	if id&idReplyOnly == 0 {
		t.remove(l0, t.slotWord(h0, idx<<1))
	}
	t.remove(l1, t.slotWord(h1, idx<<1|1))
	t.unlockLines(l0, l1)
	t.release(idx)
	if de != nil {
		t.emit(ev, EventDestroy, 0, origin, now, de)
	}
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
func (t *Table) Flush() int { return t.FlushFrom(t.clock.Load(), 0) }

// FlushFrom is Flush at now on behalf of process origin (0: nobody's),
// which the DESTROY events of its entries name.
func (t *Table) FlushFrom(now int64, origin uint32) int {
	n := 0
	hi := min(t.bump.Load(), uint32(len(t.slab)))
	for i := range hi {
		id := t.slab[i].id.Load()
		if id&idLive != 0 && t.kill(i, idGen(id), &t.ev.ctl, origin, now) {
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
			if t.kill(i, idGen(id), &t.ev.reap, 0, now) {
				n++
			}
			continue
		}
		if evict && t.count.Load() >= max95 && t.gcCanEarlyDrop(r) && t.kill(i, idGen(id), &t.ev.reap, 0, now) {
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

// bucketLines returns the lines bucket b's hashes scale to: lines lo to
// hi, inclusive (one line unless there are fewer buckets than lines).
func (t *Table) bucketLines(b uint32) (lo, hi uint32) {
	// The hashes h with h*nbkt>>32 == b are those from ceil(b<<32/nbkt)
	// to ceil((b+1)<<32/nbkt)-1.
	first := (uint64(b)<<32 + uint64(t.nbkt) - 1) / uint64(t.nbkt)
	last := ((uint64(b)+1)<<32+uint64(t.nbkt)-1)/uint64(t.nbkt) - 1
	return t.homeLine(first), t.homeLine(last)
}

// earlyDrop is the kernel's early_drop: from bucket b on, up to
// EarlyDropScan buckets, it deletes in each every entry that is neither
// ASSURED nor dying (early_drop_list; expired ones are reaped on the way
// and do not count), and stops after the first bucket where it deleted
// any. It returns how many it deleted. A bucket's nodes are those in the
// lines its hashes scale to, and in the lines after them where those
// overflowed, whose tuple's hash is in the bucket.
func (w *Worker) earlyDrop(b uint32, now uint32) int {
	t := w.t
	mask := uint32(1)<<t.nodeBits - 1
	for i := range t.earlyScan {
		bk := (b + uint32(i)) % t.nbkt
		var cand [16]Conn
		nc := 0
		var gone [16]Conn
		ng := 0
		lo, hi := t.bucketLines(bk)
		l := lo
		for n := uint32(0); n < t.nlines; n++ {
			ln := t.line(l)
			for s := 1; s < lineWords; s++ {
				sw := ln[s].Load()
				if sw == 0 {
					continue
				}
				node := sw&mask - 1
				idx := node >> 1
				r := &t.slab[idx]
				id := r.id.Load()
				if id&idLive == 0 {
					continue
				}
				c := makeConn(idx, idGen(id), 0)
				switch {
				case expired(r.expires.Load(), now):
					if ng < len(gone) {
						gone[ng] = c
						ng++
					}
				case Status(r.zs.Load())&StatusAssured == 0:
					if nc < len(cand) && t.nodeBucket(r, idx, id, node&1) == bk {
						cand[nc] = c
						nc++
					}
				}
			}
			if n >= hi-lo && ln[0].Load()>>overShift == 0 {
				break
			}
			l = t.nextLine(l)
		}
		ns := untick(now, t.clock.Load())
		for _, c := range gone[:ng] {
			t.kill(c.idx(), c.gen(), &w.ev, 0, ns)
		}
		drops := 0
		for _, c := range cand[:nc] {
			if t.kill(c.idx(), c.gen(), &w.ev, 0, ns) {
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

// nodeBucket returns the bucket of node dir of record r (identity id).
func (t *Table) nodeBucket(r *rec, idx, id, dir uint32) uint32 {
	var k [2]key
	t.keys(r, idx, id, &k[0], &k[1])
	return t.bucket(t.hash(&k[dir]))
}

// deadline converts a timeout to the deadline tick of a packet at now.
func deadline(now int64, d time.Duration) uint32 { return tickCeil(now + int64(d)) }
