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
// new one. word and seen are separate atomics, so a reader can see a new
// word with its previous occupant's (expired) time, or a time stored a
// moment late: the entry then counts as absent for that packet, which only
// floods it — what an unknown destination gets anyway. A MAC learned at
// the same moment by two workers can take two slots; lookups find the first
// one, and the other, never refreshed, ages out.
//
// An FDB refuses to learn (LearnFull) when it holds its maximum number of
// entries, or when every slot a MAC may take is occupied; old entries stay.
// Expired entries keep their slot until a learner reuses it or Sweep clears
// it.
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
func (f *FDB) learn(key uint64, port PortID, now uint32) LearnResult {
	want := keyWord(key, port, false)
	for {
		i := f.home(key)
		var free *fdbSlot // first slot a new entry can take
		var freeWord uint64
		found := false
		for range fdbMaxProbe {
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
				if !s.word.CompareAndSwap(w, want) {
					break // raced with another writer: start over
				}
				s.seen.Store(now)
				if live {
					return LearnMoved
				}
				return LearnNew
			}
			if free == nil && (!wordUsed(w) || !f.live(s, w, now)) {
				free, freeWord = s, w
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
		// Store the time first: a reader that sees the new word then sees
		// a time at least this fresh (or, reusing an expired slot, the old
		// one if the store lands late — absent for one packet).
		s := free
		if !s.word.CompareAndSwap(freeWord, want) {
			continue
		}
		s.seen.Store(now)
		if !wordUsed(freeWord) {
			f.entries.Add(1)
		}
		return LearnNew
	}
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
// tombstones, so their capacity is free again, and returns how many it
// cleared. It is safe to run beside workers: it clears a slot with a CAS
// from the expired word it read, so a slot that a learner took meanwhile
// (a new word) stays. A learner that only refreshed the time of that very
// word in between loses its entry; the next frame from that MAC learns it
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
	return n
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
