package fastpath

import (
	"math/bits"
	"sort"
	"sync/atomic"

	"github.com/xdpfwd/xdpfwd/fastpath/header"
)

// FDB is a bridge's forwarding database: MAC address → port, learned from
// source addresses or configured as static entries. All workers share one
// FDB per bridge and use it from their own OS threads, so it is lock-free
// and allocation-free: a fixed open-addressing table (linear probing, at
// most fdbMaxProbe slots from a MAC's home slot), twice as many slots as
// entries allowed, where each slot is
//
//   - word, an atomic.Uint64: MAC (bits 63..16) | port (15..1) | static (0),
//     0 for an empty slot, fdbTombstone for a swept one;
//   - seen, an atomic.Uint32: when the MAC was last seen, in seconds.
//
// Reads are atomic loads. A new MAC takes a slot with a CAS from empty,
// tombstone or expired; a station move is a CAS from the old word to the
// new one. word and seen are separate atomics; a writer stores seen before
// it publishes word, so whoever loads a new word then loads its new time
// (learn and Sweep explain why that order). A MAC learned at the same
// moment by two workers can take two slots; lookups find the first one,
// and the other, never refreshed, ages out.
//
// An FDB refuses to learn (LearnFull) when it holds its maximum number of
// entries, or when every slot a MAC may take is occupied; old entries stay.
// Expired entries keep their slot until a learner reuses it or Sweep clears
// it; Sweep also empties the tombstones no probe needs any more, so that
// lookups of unknown MACs (every flood) stay short after churn.
type FDB struct {
	slots   []fdbSlot
	mask    uint64
	ageing  uint32 // seconds
	max     int64
	entries atomic.Int64 // occupied slots (static, live or expired)
}

type fdbSlot struct {
	word atomic.Uint64
	seen atomic.Uint32
}

const (
	fdbTombstone = 1 // MAC 0 (never learned), port 0, static: no real entry has it
	fdbMaxProbe  = 32
)

func fdbWord(mac header.MAC, port PortID, static bool) uint64 {
	return keyWord(macKey(mac), port, static)
}

func keyWord(key uint64, port PortID, static bool) uint64 {
	w := key<<16 | uint64(port&(MaxPorts-1))<<1
	if static {
		w |= 1
	}
	return w
}

func macKey(m header.MAC) uint64 {
	return uint64(m[0])<<40 | uint64(m[1])<<32 | uint64(m[2])<<24 | uint64(m[3])<<16 | uint64(m[4])<<8 | uint64(m[5])
}

func wordMAC(w uint64) uint64         { return w >> 16 }
func wordPort(w uint64) PortID        { return PortID(w>>1) & (MaxPorts - 1) }
func wordStatic(w uint64) bool        { return w&1 != 0 }
func wordUsed(w uint64) bool          { return w > fdbTombstone }
func (f *FDB) home(key uint64) uint64 { return (key * 0x9e3779b97f4a7c15) >> 32 & f.mask }

// newFDB returns an FDB for up to max entries that age after ageing
// seconds.
func newFDB(max int, ageing uint32) *FDB {
	n := uint64(1) << bits.Len64(uint64(2*max-1))
	return &FDB{slots: make([]fdbSlot, n), mask: n - 1, ageing: ageing, max: int64(max)}
}

// live reports whether slot s, holding word w, is an entry at now.
func (f *FDB) live(s *fdbSlot, w uint64, now uint32) bool {
	// A signed age: a worker whose clock reading is a moment ahead of the
	// caller's may have stored a time after now; that entry is fresh.
	return wordUsed(w) && (wordStatic(w) || int32(now-s.seen.Load()) < int32(f.ageing))
}

// Lookup returns the port of mac, if mac has a live entry at now (seconds).
func (f *FDB) Lookup(mac header.MAC, now uint32) (PortID, bool) { return f.lookup(macKey(mac), now) }

// lookup is Lookup by the MAC's 48-bit key.
func (f *FDB) lookup(key uint64, now uint32) (PortID, bool) {
	i := f.home(key)
	for range fdbMaxProbe {
		s := &f.slots[i]
		w := s.word.Load()
		if w == 0 {
			return 0, false
		}
		if wordUsed(w) && wordMAC(w) == key {
			if f.live(s, w, now) {
				return wordPort(w), true
			}
			return 0, false
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
	// LearnFull: the table is full; nothing was learned.
	LearnFull
)

// Learn records that mac was seen on port at now (seconds).
func (f *FDB) Learn(mac header.MAC, port PortID, now uint32) LearnResult {
	return f.learn(macKey(mac), port, now)
}

// learn is Learn by the MAC's 48-bit key.
//
// Whenever it writes a word, it stores the time first and publishes the
// word after it (a CAS from the word it read). A sweeper that loads the
// new word then loads this time, not the previous occupant's expired one,
// so it never clears an entry that is being learned (see Sweep). The price
// is that a reader may, between the two writes, see the previous word with
// the new time: for that moment an expired entry looks live and a frame
// to it is forwarded to where that station was last seen. If the CAS
// fails, the word changed since it was read; whoever changed it stored
// its own time, just as fresh, before publishing.
func (f *FDB) learn(key uint64, port PortID, now uint32) LearnResult {
	want := keyWord(key, port, false)
	for {
		home := f.home(key)
		i := home
		var free *fdbSlot // first slot a new entry can take
		var freeWord, freeDist uint64
		found := false
		for d := range uint64(fdbMaxProbe) {
			s := &f.slots[i]
			w := s.word.Load()
			if wordUsed(w) && wordMAC(w) == key {
				found = true
				switch {
				case wordStatic(w):
					return LearnStatic
				case w == want:
					// The common case: a known station, seen again.
					seen := s.seen.Load()
					if seen == now {
						return LearnRefreshed
					}
					s.seen.Store(now)
					if int32(now-seen) >= int32(f.ageing) {
						return LearnNew // it had expired
					}
					return LearnRefreshed
				}
				live := f.live(s, w, now)
				s.seen.Store(now)
				if !s.word.CompareAndSwap(w, want) {
					break // raced with another writer: start over
				}
				if live {
					return LearnMoved
				}
				return LearnNew
			}
			if free == nil && (!wordUsed(w) || !f.live(s, w, now)) {
				free, freeWord, freeDist = s, w, d
			}
			if w == 0 {
				break
			}
			i = (i + 1) & f.mask
		}
		if found {
			continue
		}
		if free == nil || (!wordUsed(freeWord) && f.entries.Load() >= f.max) {
			return LearnFull
		}
		s := free
		s.seen.Store(now)
		if !s.word.CompareAndSwap(freeWord, want) {
			continue
		}
		if !wordUsed(freeWord) {
			f.entries.Add(1)
		}
		if f.reachable(home, freeDist) {
			return LearnNew
		}
		// Sweep emptied a slot on the way here after this learner had
		// passed it (see Sweep): lookups would stop there. Take the entry
		// back and learn again, which finds that empty slot.
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

// addStatic adds a static entry. It runs before the FDB is shared.
func (f *FDB) addStatic(mac header.MAC, port PortID) bool {
	key := macKey(mac)
	i := f.home(key)
	for range fdbMaxProbe {
		s := &f.slots[i]
		w := s.word.Load()
		if !wordUsed(w) || wordMAC(w) == key {
			if !wordUsed(w) {
				f.entries.Add(1)
			}
			s.word.Store(fdbWord(mac, port, true))
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
// reading that word's time; a learner stores the time before it publishes
// a word (see learn), so a word published meanwhile comes with a fresh
// time, or makes the CAS fail: a slot a learner takes survives. A learner
// that only refreshed the time of that very word between the sweeper's
// two loads loses its entry; the next frame from that MAC learns it
// again, and frames to it flood meanwhile, as for any aged-out entry.
func (f *FDB) Sweep(now uint32) int {
	n := 0
	for i := range f.slots {
		s := &f.slots[i]
		w := s.word.Load()
		if wordUsed(w) && !f.live(s, w, now) && s.word.CompareAndSwap(w, fdbTombstone) {
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
// fdbMaxProbe slots from a MAC's home, and learn places a MAC only within
// that window. So a tombstone at i is needed only by an entry at some j in
// the fdbMaxProbe-1 slots after i whose home is i or before: its probes
// pass i. (Past an empty slot in between nothing needs i: probes stop
// there anyway.) Where no such entry exists, i can be emptied.
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
// empty slot for the same MAC (the duplicate the FDB comment allows).
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
		if wordUsed(w) && (j-f.home(wordMAC(w)))&f.mask >= d {
			return true
		}
	}
	return false
}

// probes returns how many slots a lookup of mac reads; for tests.
func (f *FDB) probes(mac header.MAC) int {
	key := macKey(mac)
	i := f.home(key)
	for n := 1; n < fdbMaxProbe; n++ {
		w := f.slots[i].word.Load()
		if w == 0 || (wordUsed(w) && wordMAC(w) == key) {
			return n
		}
		i = (i + 1) & f.mask
	}
	return fdbMaxProbe
}

// FDBEntry is one live FDB entry as listed by Entries.
type FDBEntry struct {
	// MAC is the station's address.
	MAC header.MAC
	// Port is where the station is.
	Port PortID
	// Age is the seconds since the station was last seen (0 for static).
	Age uint32
	// Static marks a configured entry, which never ages.
	Static bool
}

// Entries returns the live entries at now (seconds), sorted by MAC. It
// allocates: it is for listing, not for the packet path.
func (f *FDB) Entries(now uint32) []FDBEntry {
	var es []FDBEntry
	seen := make(map[uint64]int)
	for i := range f.slots {
		s := &f.slots[i]
		w := s.word.Load()
		if !f.live(s, w, now) {
			continue
		}
		var e FDBEntry
		k := wordMAC(w)
		for j := range e.MAC {
			e.MAC[j] = byte(k >> (40 - 8*j))
		}
		e.Port, e.Static = wordPort(w), wordStatic(w)
		if !e.Static {
			e.Age = uint32(max(int32(now-s.seen.Load()), 0))
		}
		// Keep one entry per MAC (see the FDB comment on duplicates): the
		// freshest.
		if j, dup := seen[k]; dup {
			if e.Static || e.Age < es[j].Age {
				es[j] = e
			}
			continue
		}
		seen[k] = len(es)
		es = append(es, e)
	}
	sort.Slice(es, func(i, j int) bool { return macKey(es[i].MAC) < macKey(es[j].MAC) })
	return es
}

// Len returns the number of occupied slots: live and expired entries not
// yet swept or reused.
func (f *FDB) Len() int { return int(f.entries.Load()) }
