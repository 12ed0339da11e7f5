package bridge

import (
	"crypto/rand"
	"encoding/binary"
	"math/bits"
	"sync/atomic"

	"github.com/xdpfwd/xdpfwd/fastpath"
	"github.com/xdpfwd/xdpfwd/fastpath/header"
	"github.com/xdpfwd/xdpfwd/internal/siphash"
)

// FDB is a bridge's forwarding database: (VLAN, MAC) → port, learned from
// source addresses or configured as static entries. The VLAN is 0 on a
// VLAN-unaware bridge. All workers share one FDB per bridge and use it
// from their own OS threads, so it is lock-free and allocation-free: a
// fixed open-addressing table (linear probing, at most fdbMaxProbe slots
// from an entry's home slot), twice as many slots as entries allowed,
// where each slot is
//
//   - word, an atomic.Uint64: key (63..4) | tombstone (3) | entry (2) |
//     busy (1) | static (0), where the key is VLAN (12 bits) | MAC (48
//     bits). 0 is an empty slot, fdbTombstone (the tombstone bit alone) a
//     swept one; every entry has the entry bit, so neither is ever taken
//     for the key 0 (00:00:00:00:00:00 on VLAN 0);
//   - val, an atomic.Uint64: when the MAC was last seen, in seconds
//     (63..32) | tag (31..16) | port (14..0), where the tag is 16 bits of
//     the key's hash that the home slot does not use (63..48; a table has
//     at most 2^25 slots).
//
// The home slot is a keyed hash of the key (SipHash-1-3, the hash-table
// hash of Rust's standard library, over the one 64-bit word), keyed by 128
// random bits drawn from crypto/rand when the process starts: nobody
// outside can compute which MACs share a home, so nobody can choose 32 of
// them to fill a window (the attack a fixed hash allows: a victim MAC then
// never learned, its traffic flooded to the attacker).
//
// Reads are atomic loads: a lookup loads word, then val, then word again,
// and answers only if word did not change in between and val carries the
// key's tag. The tag catches a slot that went from key A to key B and
// back to A between the two word loads (the same word twice, B's val in
// between): B's val carries B's tag. Only a B whose tag equals A's (a
// chance of 1 in 65536 for two keys) can still slip through, and only in
// that race. Writers change val in two ways:
//
//   - a refresh (the station seen again on the same port) is a CAS of val
//     from the value it read, which carries the key's tag, to the same
//     port and tag and a new time. Should the slot have been given to
//     another entry meanwhile, that entry's val has its own tag and the
//     CAS fails: a refresh never writes into another key's entry (but for
//     a tag collision, and then it writes the port that entry had);
//   - everything else — a new entry, a station move, an eviction, and an
//     entry whose val a learner read without the key's tag (the race
//     above) — claims the slot first: a CAS of word from the value it
//     read to the new key with the busy bit, then a store of val, then a
//     store of the word without the busy bit. Readers skip busy slots (a
//     lookup then floods, a learner leaves the entry to its writer) and
//     probes go on past them; nothing else writes a busy slot.
//
// A MAC learned at the same moment by two workers can take two slots;
// lookups find the first one, listings show only that one, and the other,
// never refreshed, ages out.
//
// A new key's probe window is the slots from its home up to the first
// empty one, at most fdbMaxProbe. The key takes, in this order:
//
//   - the first slot of the window that is free (empty, a tombstone, or an
//     expired entry; LearnNew), but once the FDB holds its maximum number
//     of entries (Len: expired entries count until swept) only an expired
//     entry's slot, which adds none; with none in the window it is not
//     learned (LearnFull);
//   - when the window has no free slot at all, that is fdbMaxProbe slots
//     of live or busy entries, the slot of the dynamic entry seen longest
//     ago among them, which is evicted (LearnEvicted), whether or not the
//     FDB is at its maximum: the count stays the same;
//   - when they are all static or busy, none (LearnFull).
//
// Expired entries keep their slot until a learner reuses it or Sweep
// clears it; Sweep also empties the tombstones no probe needs any more, so
// that lookups of unknown MACs (every flood) stay short after churn.
type FDB struct {
	slots   []fdbSlot
	mask    uint64
	sip     siphash.Key
	ageing  uint32 // seconds
	max     int64
	entries atomic.Int64 // occupied slots (static, live or expired)
}

type fdbSlot struct {
	word atomic.Uint64
	val  atomic.Uint64
}

const (
	fdbStatic    = 1 << 0
	fdbBusy      = 1 << 1
	fdbEntry     = 1 << 2 // set in the word of every entry
	fdbTombstone = 1 << 3 // the word of a swept slot
	fdbMaxProbe  = 32
)

// fdbKey is the 60-bit key of (vid, mac).
func fdbKey(vid uint16, mac header.MAC) uint64 { return vlanKey(vid, macKey(mac)) }

// vlanKey is the key of a MAC's 48-bit key on VLAN vid.
func vlanKey(vid uint16, mac uint64) uint64 { return uint64(vid&0xfff)<<48 | mac }

func macKey(m header.MAC) uint64 {
	return uint64(m[0])<<40 | uint64(m[1])<<32 | uint64(m[2])<<24 | uint64(m[3])<<16 | uint64(m[4])<<8 | uint64(m[5])
}

func wordKey(w uint64) uint64  { return w >> 4 }
func wordStatic(w uint64) bool { return w&fdbStatic != 0 }
func wordBusy(w uint64) bool   { return w&fdbBusy != 0 }
func wordUsed(w uint64) bool   { return w&fdbEntry != 0 }

// entryWord is the word of key's entry, neither static nor busy.
func entryWord(key uint64) uint64 { return key<<4 | fdbEntry }

func valPort(v uint64) fastpath.PortID { return fastpath.PortID(v) & (fastpath.MaxPorts - 1) }
func valSeen(v uint64) uint32          { return uint32(v >> 32) }
func valTag(v uint64) uint64           { return v & fdbTagMask }
func makeVal(port fastpath.PortID, seen uint32, tag uint64) uint64 {
	return uint64(seen)<<32 | tag | uint64(port&(fastpath.MaxPorts-1))
}

// fdbTagMask covers the tag in a val.
const fdbTagMask = 0xffff << 16

// hashTag is the tag of a key whose hash is h, in its place in a val.
func hashTag(h uint64) uint64 { return h >> 48 << 16 }

// fdbSeed keys the FDB hash of every FDB made after it is set: 128 bits
// from crypto/rand when the process starts. Tests set it to a known value
// (before they make the FDB) to compute colliding MACs.
var fdbSeed = func() (s [2]uint64) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		// crypto/rand does not fail on Linux (getrandom); if it ever did,
		// an unkeyed FDB is the attack this seed exists to prevent.
		panic("fastpath: no random seed for the FDB hash: " + err.Error())
	}
	return [2]uint64{binary.LittleEndian.Uint64(b[:8]), binary.LittleEndian.Uint64(b[8:])}
}()

// home returns the home slot of key.
func (f *FDB) home(key uint64) uint64 { return f.hash(key) & f.mask }

// tag returns the tag of key, in its place in a val.
func (f *FDB) tag(key uint64) uint64 { return hashTag(f.hash(key)) }

// hash returns the hash of key: SipHash-1-3 keyed by the FDB's seed, over
// the key as its one 8-byte message block (all messages have that one
// length, so the length block is left out). The home slot is in its low
// bits, the tag in its top 16.
func (f *FDB) hash(key uint64) uint64 { return f.sip.Sum1(key) }

// newFDB returns an FDB for up to max entries that age after ageing
// seconds, its hash keyed by fdbSeed.
func newFDB(max int, ageing uint32) *FDB {
	n := uint64(1) << bits.Len64(uint64(2*max-1))
	k0, k1 := fdbSeed[0], fdbSeed[1]
	return &FDB{
		slots: make([]fdbSlot, n), mask: n - 1, ageing: ageing, max: int64(max),
		sip: siphash.NewKey(k0, k1),
	}
}

// fresh reports whether an entry last seen at seen is live at now. The age
// is signed: a worker whose clock reading is a moment ahead of the
// caller's may have stored a time after now; that entry is fresh.
func (f *FDB) fresh(seen, now uint32) bool { return int32(now-seen) < int32(f.ageing) }

// live reports whether slot s, holding word w, is an entry at now.
func (f *FDB) live(s *fdbSlot, w uint64, now uint32) bool {
	return wordUsed(w) && !wordBusy(w) && (wordStatic(w) || f.fresh(valSeen(s.val.Load()), now))
}

// Lookup returns the port of mac on VLAN vid (0 on a VLAN-unaware bridge),
// if it has a live entry at now (seconds).
func (f *FDB) Lookup(vid uint16, mac header.MAC, now uint32) (fastpath.PortID, bool) {
	return f.lookup(fdbKey(vid, mac), now)
}

// lookup is Lookup by key.
func (f *FDB) lookup(key uint64, now uint32) (fastpath.PortID, bool) {
	want := entryWord(key)
	h := f.hash(key)
	i, tag := h&f.mask, hashTag(h)
	for range fdbMaxProbe {
		s := &f.slots[i]
		w := s.word.Load()
		if w == 0 {
			return 0, false
		}
		if w&^fdbStatic == want { // this key's entry, not busy
			v := s.val.Load()
			if s.word.Load() != w || valTag(v) != tag || !(wordStatic(w) || f.fresh(valSeen(v), now)) {
				// Claimed for another entry since, or given to another
				// and back (flood this frame); or expired.
				return 0, false
			}
			return valPort(v), true
		}
		i = (i + 1) & f.mask
	}
	return 0, false
}

// LearnResult is what Learn did.
type LearnResult uint8

const (
	// LearnRefreshed: the MAC was known on this port; its time is updated.
	LearnRefreshed LearnResult = iota
	// LearnNew: the MAC was absent (or expired) and is now on this port.
	LearnNew
	// LearnMoved: the MAC was live on another port and moved to this one.
	LearnMoved
	// LearnStatic: the MAC has a static entry, which learning never changes.
	LearnStatic
	// LearnFull: nothing was learned: the table holds its maximum number
	// of entries and the MAC's probe window has no expired entry to
	// replace (and a free slot, so nothing to evict either), or every slot
	// the MAC may take holds a static entry or one being written.
	LearnFull
	// LearnEvicted: the MAC is now on this port, in the slot of the live
	// dynamic entry seen longest ago within its probe window, which was
	// full; that entry is gone.
	LearnEvicted
)

// Learn records that mac was seen on VLAN vid (0 on a VLAN-unaware bridge)
// on port at now (seconds).
func (f *FDB) Learn(vid uint16, mac header.MAC, port fastpath.PortID, now uint32) LearnResult {
	return f.learn(fdbKey(vid, mac), port, now)
}

// learn is Learn by key.
//
// A new entry stores its val before it publishes its word, so a sweeper
// that loads the new word then loads this time, not the previous
// occupant's expired one, and never clears an entry being learned (see
// Sweep). When a CAS fails, the slot changed since it was read: learn
// starts over.
func (f *FDB) learn(key uint64, port fastpath.PortID, now uint32) LearnResult {
	want := entryWord(key)
	h := f.hash(key)
	home, tag := h&f.mask, hashTag(h)
	nv := makeVal(port, now, tag)
	for {
		i := home
		// free is the first slot a new entry can take (empty, tombstone
		// or expired), expired the first expired one (it takes no more
		// capacity when the table is full), old the live dynamic entry
		// seen longest ago, for when there is neither.
		var free, expired, old *fdbSlot
		var freeWord, freeDist, expWord, expDist, oldWord, oldDist uint64
		oldAge := int32(-1 << 31)
		retry := false
	probe:
		for d := range uint64(fdbMaxProbe) {
			s := &f.slots[i]
			w := s.word.Load()
			switch {
			case w == 0:
				if free == nil {
					free, freeWord, freeDist = s, w, d
				}
				break probe
			case w&^(fdbStatic|fdbBusy) == want:
				switch {
				case wordBusy(w):
					// Another worker is writing this very key: leave it
					// the entry.
					return LearnRefreshed
				case wordStatic(w):
					return LearnStatic
				}
				v := s.val.Load()
				seen := valSeen(v)
				// A val without the key's tag is another key's: the slot
				// went to another key and back since w was loaded. Claim
				// the slot to write this one's, as for a move.
				own := valTag(v) == tag
				if own && valPort(v) == port {
					// The common case: a known station, seen again.
					if seen == now {
						return LearnRefreshed
					}
					if !s.val.CompareAndSwap(v, nv) {
						retry = true
						break probe
					}
					if !f.fresh(seen, now) {
						return LearnNew // it had expired
					}
					return LearnRefreshed
				}
				// A station move: claim the slot to change the port.
				if !s.word.CompareAndSwap(w, w|fdbBusy) {
					retry = true
					break probe
				}
				s.val.Store(nv)
				s.word.Store(w)
				if own && f.fresh(seen, now) {
					return LearnMoved
				}
				return LearnNew
			case !wordUsed(w):
				if free == nil {
					free, freeWord, freeDist = s, w, d
				}
			case !wordBusy(w) && !wordStatic(w):
				age := int32(now - valSeen(s.val.Load()))
				if age >= int32(f.ageing) {
					if free == nil {
						free, freeWord, freeDist = s, w, d
					}
					if expired == nil {
						expired, expWord, expDist = s, w, d
					}
				} else if age > oldAge {
					old, oldWord, oldDist, oldAge = s, w, d, age
				}
			}
			i = (i + 1) & f.mask
		}
		if retry {
			continue
		}
		s, w, dist, res := free, freeWord, freeDist, LearnNew
		switch {
		case s == nil && old == nil:
			return LearnFull
		case s == nil:
			s, w, dist, res = old, oldWord, oldDist, LearnEvicted
		case !wordUsed(w) && f.entries.Load() >= f.max:
			if expired == nil {
				return LearnFull
			}
			s, w, dist = expired, expWord, expDist
		}
		if !s.word.CompareAndSwap(w, want|fdbBusy) {
			continue
		}
		s.val.Store(nv)
		s.word.Store(want)
		if !wordUsed(w) {
			f.entries.Add(1)
		}
		if f.reachable(home, dist) {
			return res
		}
		// Sweep emptied a slot on the way here after this learner had
		// passed it (see clearTombstones): lookups would stop there. Take
		// the entry back and learn again, which finds that empty slot.
		if s.word.CompareAndSwap(want, fdbTombstone) {
			f.entries.Add(-1)
		}
	}
}

// reachable reports whether the dist slots from home are all non-empty,
// so that a probe from home reaches the slot dist further on.
func (f *FDB) reachable(home, dist uint64) bool {
	for d := range dist {
		if f.slots[(home+d)&f.mask].word.Load() == 0 {
			return false
		}
	}
	return true
}

// addStatic adds a static entry for mac on VLAN vid. It runs before the
// FDB is shared.
func (f *FDB) addStatic(vid uint16, mac header.MAC, port fastpath.PortID) bool {
	key := fdbKey(vid, mac)
	h := f.hash(key)
	i := h & f.mask
	for range fdbMaxProbe {
		s := &f.slots[i]
		w := s.word.Load()
		if !wordUsed(w) || wordKey(w) == key {
			if !wordUsed(w) {
				f.entries.Add(1)
			}
			s.val.Store(makeVal(port, 0, hashTag(h)))
			s.word.Store(entryWord(key) | fdbStatic)
			return true
		}
		i = (i + 1) & f.mask
	}
	return false
}

// Sweep turns the slots of entries expired at now (seconds) into
// tombstones, so their capacity is free again, turns the tombstones that
// no probe needs back into empty slots, so that lookups of unknown MACs
// stop early, and returns how many entries it cleared.
//
// It is safe to run beside learners and readers, but not beside another
// Sweep. It clears a slot with a CAS from the expired word it read, after
// reading that word's val; a learner stores val before it publishes a new
// word (see learn), so a word published meanwhile comes with a fresh time,
// or makes the CAS fail: a slot a learner takes survives. A learner that
// only refreshed or moved that very entry between the sweeper's loads
// loses it; the next frame from that MAC learns it again, and frames to it
// flood meanwhile, as for any aged-out entry.
func (f *FDB) Sweep(now uint32) int {
	n := 0
	for i := range f.slots {
		s := &f.slots[i]
		w := s.word.Load()
		if !wordUsed(w) || wordBusy(w) || wordStatic(w) || f.fresh(valSeen(s.val.Load()), now) {
			continue
		}
		if s.word.CompareAndSwap(w, fdbTombstone) {
			f.entries.Add(-1)
			n++
		}
	}
	f.clearTombstones()
	return n
}

// clearTombstones turns tombstones back into empty slots where no probe
// needs them.
//
// Probes (lookups and learners) stop at an empty slot and go at most
// fdbMaxProbe slots from a key's home, and learn places a key only within
// that window. So a tombstone at i is needed only by an entry (busy ones
// included) at some j in the fdbMaxProbe-1 slots after i whose home is i
// or before: its probes pass i. (Past an empty slot in between nothing
// needs i: probes stop there anyway.) Where no such entry exists, i can be
// emptied.
//
// Learners race with this: one may have passed slot i while it still held
// an entry, and be about to take a slot j after it — with its home before
// i, the very entry that needs i. Two writes conflict: the sweeper's
// "i = empty" and the learner's "j = entry". Each side reads the other's
// slot after its own write: the sweeper re-checks the slots after i and
// makes i a tombstone again if it finds such an entry; the learner
// re-checks the slots from its home to j (reachable) and withdraws its
// entry if one is empty. Go's atomics are sequentially consistent, so at
// least one side sees the other's write and undoes its own. In between, a
// lookup may miss the entry (the frame floods) and a learner may take the
// empty slot for the same key (the duplicate the FDB comment allows).
func (f *FDB) clearTombstones() {
	n := uint64(len(f.slots))
	for i := range n {
		s := &f.slots[i]
		if s.word.Load() != fdbTombstone || f.needed(i) {
			continue
		}
		if s.word.CompareAndSwap(fdbTombstone, 0) && f.needed(i) {
			s.word.CompareAndSwap(0, fdbTombstone)
		}
	}
}

// needed reports whether an entry after slot i within probe reach has its
// home at i or before, so that its probes pass slot i.
func (f *FDB) needed(i uint64) bool {
	for d := uint64(1); d < fdbMaxProbe; d++ {
		j := (i + d) & f.mask
		w := f.slots[j].word.Load()
		if w == 0 {
			return false
		}
		if wordUsed(w) && (j-f.home(wordKey(w)))&f.mask >= d {
			return true
		}
	}
	return false
}

// probes returns how many slots a lookup of mac on VLAN vid reads; for
// tests.
func (f *FDB) probes(vid uint16, mac header.MAC) int {
	key := fdbKey(vid, mac)
	i := f.home(key)
	for n := 1; n < fdbMaxProbe; n++ {
		w := f.slots[i].word.Load()
		if w == 0 || (wordUsed(w) && wordKey(w) == key) {
			return n
		}
		i = (i + 1) & f.mask
	}
	return fdbMaxProbe
}

// FDBEntry is one live FDB entry as listed by Page.
type FDBEntry struct {
	// VLAN is the entry's VLAN ID; 0 on a VLAN-unaware bridge.
	VLAN uint16
	// MAC is the station's address.
	MAC header.MAC
	// Port is where the station is.
	Port fastpath.PortID
	// Age is the seconds since the station was last seen (0 for static).
	Age uint32
	// Static marks a configured entry, which never ages.
	Static bool
}

// pageScanPerEntry and pageScanMin bound the slots one Page call reads: at
// most max(pageScanMin, pageScanPerEntry × limit).
const (
	pageScanPerEntry = 16
	pageScanMin      = 4096
)

// Page returns up to limit live entries starting at slot cursor (0 for the first page), and the cursor of the next page (0 when there is none).
//
// Entries come in slot order, not sorted, each (VLAN, MAC) at most once
// (the copy lookups find, see the FDB comment on duplicates). One call
// reads at most max(4096, 16 × limit) slots, so that no call walks a large
// table at once: a page of a sparse table may hold fewer than limit
// entries, even none, while next is not 0; keep asking until next is 0.
// A limit below 1 is taken as 1. Entries learned or removed while the
// pages are read may or may not show. It allocates the page, nothing
// more; it is safe to call beside the workers.
func (f *FDB) Page(now uint32, cursor uint64, limit int) (entries []FDBEntry, next uint64) {
	limit = max(limit, 1)
	n := uint64(len(f.slots))
	if cursor >= n {
		return nil, 0
	}
	end := min(n, cursor+max(pageScanMin, pageScanPerEntry*uint64(limit)))
	entries = make([]FDBEntry, 0, min(limit, 256))
	i := cursor
	for ; i < end && len(entries) < limit; i++ {
		s := &f.slots[i]
		w := s.word.Load()
		if !wordUsed(w) || wordBusy(w) {
			continue
		}
		k := wordKey(w)
		v := s.val.Load()
		if s.word.Load() != w || valTag(v) != f.tag(k) || !(wordStatic(w) || f.fresh(valSeen(v), now)) || f.copyBefore(i, k) {
			continue
		}
		e := FDBEntry{VLAN: uint16(k >> 48), Port: valPort(v), Static: wordStatic(w)}
		for j := range e.MAC {
			e.MAC[j] = byte(k >> (40 - 8*j))
		}
		if !e.Static {
			e.Age = uint32(max(int32(now-valSeen(v)), 0))
		}
		entries = append(entries, e)
	}
	if i >= n {
		return entries, 0
	}
	return entries, i
}

// copyBefore reports whether another entry for key (live or expired, not
// busy) sits on key's probe path before slot i: lookups answer from that
// one, and the entry at i is never found.
func (f *FDB) copyBefore(i, key uint64) bool {
	for j := f.home(key); j != i; j = (j + 1) & f.mask {
		if w := f.slots[j].word.Load(); wordUsed(w) && !wordBusy(w) && wordKey(w) == key {
			return true
		}
	}
	return false
}

// Len returns the number of occupied slots — live entries, and expired
// ones not yet swept or reused — from a counter: it reads no slot.
func (f *FDB) Len() int { return int(f.entries.Load()) }
