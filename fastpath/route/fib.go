package route

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// FIB is the forwarding table the fast path reads: IPv4 and IPv6
// longest-prefix match to a route type and next hop, ECMP included. Its
// writer is the Table it belongs to; any number of goroutines read it
// through Views while the Table changes it, without locks.
type FIB struct {
	v4 atomic.Pointer[trie4]
	v6 atomic.Pointer[table6]
}

// View is what a worker reads the FIB through, taken once per batch
// (FIB.View). Every lookup through a View returns, for its address, the
// answer of the route set as it was at some moment during the lookup:
// before or after any change that ran at the same time, never a mixture
// that did not exist. A View taken long ago may go on answering from the
// tables as they were then, so take a new one per batch. The zero View
// answers NoRoute to everything.
//
// A Result is read (View.Hop) with the View that returned it.
type View struct {
	t4 *trie4
	t6 *table6
}

// View returns the FIB's current tables for lookups.
func (f *FIB) View() View {
	return View{t4: f.v4.Load(), t6: f.v6.Load()}
}

// Route entries live in a []uint32 arena beside the lookup structure, so
// a lookup touches only pointer-free words. A leaf's value is the word
// offset of its entry:
//
//	word 0:                type (bits 0-7), number of next hops n (bits 8-15)
//	then n records of pathWords words:
//	  word 0:              hash upper bound (ECMP, see upperBounds)
//	  word 1:              port (bits 0-15), GatewayKind (bits 16-23)
//	  words 2-5:           gateway, big-endian, IPv4 in word 2
//
// Offset 0 is never an entry: a leaf of 0 is "no route". Entries are
// shared by every prefix with the same type and next hops; their words are
// written before any leaf points to them and never change while the arena
// is in use (a freed entry is garbage until the arena is rebuilt).
const (
	pathWords = 6
	// v6Hop marks a Result.NextHop in the IPv6 arena.
	v6Hop = 1 << 31
)

// encodeEntry returns the words of the entry for a route's type and next
// hops.
func encodeEntry(t Type, hops []NextHop) []uint32 {
	w := make([]uint32, 1, 1+len(hops)*pathWords)
	w[0] = uint32(t) | uint32(len(hops))<<8
	bounds := upperBounds(hops)
	for i, h := range hops {
		var kind GatewayKind
		var gw [16]byte
		switch {
		case !h.Gateway.IsValid():
		case h.Gateway.Is4():
			kind = Gateway4
			a := h.Gateway.As4()
			copy(gw[:], a[:])
		default:
			kind = Gateway6
			gw = h.Gateway.As16()
		}
		w = append(w, bounds[i], uint32(h.Port)|uint32(kind)<<16,
			binary.BigEndian.Uint32(gw[0:]), binary.BigEndian.Uint32(gw[4:]),
			binary.BigEndian.Uint32(gw[8:]), binary.BigEndian.Uint32(gw[12:]))
	}
	return w
}

// entryKey is the map key of an entry's words.
func entryKey(w []uint32) string {
	b := make([]byte, 4*len(w))
	for i, x := range w {
		binary.LittleEndian.PutUint32(b[4*i:], x)
	}
	return string(b)
}

// decode turns the leaf e of arena w into a Result, choosing an ECMP
// next hop by hash. fam is 0 for the IPv4 arena, v6Hop for the IPv6 one.
func decode(w []uint32, e, hash, fam uint32) Result {
	if e == 0 {
		return Result{}
	}
	h := w[e]
	n := h >> 8 & 0xff
	if n == 0 {
		return Result{Type: Type(h)}
	}
	p := e + 1
	if n > 1 {
		hash >>= 1
		last := p + (n-1)*pathWords
		for p < last && hash > w[p] {
			p += pathWords
		}
	}
	return Result{Type: Type(h), NextHop: p | fam}
}

// Hop returns the next hop a lookup through v chose: the zero Hop when
// r has none.
func (v View) Hop(r Result) Hop {
	if r.NextHop == 0 {
		return Hop{}
	}
	var w []uint32
	if r.NextHop&v6Hop != 0 {
		w = v.t6.w
	} else {
		w = v.t4.w
	}
	p := r.NextHop &^ v6Hop
	var h Hop
	h.Port = uint16(w[p+1])
	h.Kind = GatewayKind(w[p+1] >> 16)
	binary.BigEndian.PutUint32(h.Gateway[0:], w[p+2])
	binary.BigEndian.PutUint32(h.Gateway[4:], w[p+3])
	binary.BigEndian.PutUint32(h.Gateway[8:], w[p+4])
	binary.BigEndian.PutUint32(h.Gateway[12:], w[p+5])
	return h
}

// arena is the writer's side of an append-only []uint32: words are handed
// out once, and words that are no longer used count as garbage until the
// arena is rebuilt. Its slice's length is its capacity, so a reader that
// holds an older slice header still reaches every word it can be pointed
// at.
type arena struct {
	w       []uint32
	used    int
	garbage int
}

// maxArenaWords bounds an arena so that every offset fits in 31 bits.
const maxArenaWords = 1 << 31

// reserve makes room for n more words, in a new, larger slice if needed;
// it reports whether the slice changed (then the caller publishes it).
func (a *arena) reserve(n int) (bool, error) {
	if a.used+n <= len(a.w) {
		return false, nil
	}
	want := max(len(a.w)+len(a.w)/2, a.used+n, 1024)
	if want > maxArenaWords {
		want = maxArenaWords
		if a.used+n > want {
			return false, fmt.Errorf("FIB full: %d words in use, %d more needed, at most %d", a.used, n, maxArenaWords)
		}
	}
	w := makeWords(want)
	copy(w, a.w[:a.used])
	a.w = w
	return true, nil
}

// alloc hands out n words that reserve made room for.
func (a *arena) alloc(n int) uint32 {
	off := a.used
	a.used += n
	return uint32(off)
}

// entries interns route entries in an arena, counting references.
type entries struct {
	byKey map[string]*entryRef
}

type entryRef struct {
	key  string
	off  uint32
	refs int
}

// ref returns the offset of the entry with words w, appending it to a if
// it is new, and the key as the table holds it (one string per entry, so
// that the prefixes using an entry share it). The caller reserved room
// for the entry.
func (e *entries) ref(a *arena, key string, w []uint32) (uint32, string) {
	if e.byKey == nil {
		e.byKey = make(map[string]*entryRef)
	}
	r := e.byKey[key]
	if r == nil {
		off := a.alloc(len(w))
		copy(a.w[off:], w)
		r = &entryRef{key: key, off: off}
		e.byKey[key] = r
	}
	r.refs++
	return r.off, r.key
}

// unref drops one reference to the entry key; an entry nobody uses is
// garbage.
func (e *entries) unref(a *arena, key string) {
	r := e.byKey[key]
	r.refs--
	if r.refs == 0 {
		delete(e.byKey, key)
		a.garbage += len(key) / 4
	}
}

// rebuildMinWords is the least garbage worth a rebuild (a variable so
// that tests can rebuild often).
var rebuildMinWords = 1 << 16

// needsRebuild reports whether a's garbage is worth a rebuild: more than
// the words in use and at least rebuildMinWords.
func (a *arena) needsRebuild() bool {
	return a.garbage > rebuildMinWords && a.garbage > a.used-a.garbage
}

// hugePage is the size of a transparent huge page on x86-64 and arm64
// (with 4 KiB base pages).
const hugePage = 2 << 20

// makeWords returns n zeroed words. For a large arena it asks the kernel
// for transparent huge pages (madvise(MADV_HUGEPAGE), honoured when
// /sys/kernel/mm/transparent_hugepage/enabled is "madvise" or "always"),
// as DPDK's LPM tables live in huge pages: a random lookup in tens of MiB
// then costs a cache miss, not also a TLB miss and a page walk. The words
// are still Go memory, freed by the garbage collector; the advice is a
// hint, and failing to take it changes only speed.
func makeWords(n int) []uint32 {
	w := make([]uint32, n)
	if n > 0 {
		adviseHuge(unsafe.Pointer(&w[0]), 4*n)
	}
	return w
}

// adviseHuge asks for transparent huge pages for the whole huge pages
// inside the size bytes at p (see makeWords).
func adviseHuge(p unsafe.Pointer, size int) {
	if size < 2*hugePage {
		return
	}
	start := uintptr(p)
	first := (start + hugePage - 1) &^ (hugePage - 1)
	last := (start + uintptr(size)) &^ (hugePage - 1)
	if last > first {
		b := unsafe.Slice((*byte)(unsafe.Add(p, first-start)), last-first)
		_ = syscall.Madvise(b, syscall.MADV_HUGEPAGE)
	}
}
