package route

import (
	"encoding/binary"
	"net/netip"
	"sync/atomic"
	"unsafe"

	"github.com/gaissmai/bart"
)

// The IPv6 FIB is a range table over the upper 64 bits of the address
// (DXR, Zec, Rizzo and Mikuc, "DXR: towards a billion routing lookups per
// second in software", 2012, taken to IPv6): the prefixes cut the 64-bit
// space into intervals, each with the entry of its longest matching
// prefix. A root array indexed by the top 16 bits (tables of up to 4096
// prefixes) or 20 bits (larger ones, 8 MiB) holds, per chunk
// of the space, either that entry (one interval covers the chunk) or
// where the chunk's intervals lie in a pointer-free []uint64 of (start,
// value) pairs, sorted, searched by bisection:
//
//	root[hi >> shift]:
//	  bit 63 set:   direct; bits 0-31 are the value
//	  bit 63 clear: bits 0-31 the first pair's index, bits 32-62 the count
//	pairs:          iv[2i] the interval's first address (upper 64 bits),
//	                iv[2i+1] its value
//	value:          an entry offset in the arena (fib.go), bit 31 set when
//	                a prefix longer than /64 lies in the interval
//
// Prefixes longer than /64 (host routes, few in any table) are looked up
// in a bart.Table of their own, changed copy on write, only for addresses
// in an interval that holds one; longer than /64, any of them is a longer
// match than the interval's.
//
// A change rebuilds the intervals of the chunk its prefix falls in (or of
// the chunks a prefix shorter than a chunk covers), writes them to unused
// room in the pair array and switches the chunks' root words with atomic
// stores, so a lookup sees a chunk before or after the change. When the
// arrays are full or mostly garbage, everything is built afresh and
// published as a new table6. Lookups read one to three cache lines where
// a trie walks one node per 8 bits: BenchmarkLookup6 compares it with
// bart's Table and Fast.

const (
	// smallRoot6 and largeRoot6 are the root's widths in bits, for
	// tables up to and above largeFrom6 prefixes.
	smallRoot6, largeRoot6, largeFrom6 = 16, 20, 4096
	// direct6 marks a root word that holds the chunk's value.
	direct6 = 1 << 63
	// deep6 marks a value whose interval holds prefixes longer than /64.
	deep6 = 1 << 31
)

// table6 is what IPv6 lookups read.
type table6 struct {
	// shift turns the upper 64 bits into a root index.
	shift uint8
	root  []atomic.Uint64
	iv    []uint64
	deep  *bart.Table[uint32]
	w     []uint32
}

// Lookup6 returns the route for dst and, for an ECMP route, the next hop
// the flow hash picks (the package documentation says which fields to
// hash).
func (v View) Lookup6(dst [16]byte, hash uint32) Result {
	t := v.t6
	if t == nil {
		return Result{}
	}
	hi := binary.BigEndian.Uint64(dst[:8])
	d := t.root[hi>>t.shift].Load()
	var e uint32
	if d&direct6 != 0 {
		e = uint32(d)
	} else {
		i, n := uint32(d), uint32(d>>32)
		iv := t.iv
		for n > 1 {
			half := n / 2
			if iv[2*(i+half)] <= hi {
				i += half
			}
			n -= half
		}
		e = uint32(iv[2*i+1])
	}
	if e&deep6 != 0 {
		e &^= deep6
		if x, ok := t.deep.Lookup(netip.AddrFrom16(dst)); ok {
			e = x
		}
	}
	return decode(t.w, e, hash, v6Hop)
}

// fib6 is the IPv6 FIB's writer.
type fib6 struct {
	pub *atomic.Pointer[table6]
	// cur is the published table, nil until the first route.
	cur *table6
	// shift is cur's (or, before the first route, the next table's).
	shift uint8
	// ctl holds every prefix with its entry's offset: the writer's own
	// copy, changed in place, that ranges are rebuilt from.
	ctl  *bart.Table[uint32]
	deep *bart.Table[uint32]
	a    arena
	ents entries
	// ivUsed and ivGarbage count the pairs handed out and those no chunk
	// uses any more.
	ivUsed, ivGarbage int
	routes            map[netip.Prefix]string
	rebuilds          int
	// scratch for range rebuilds.
	spans []span
	stack []span
}

// span is an interval of the upper 64 bits: first and last address, and
// value.
type span struct {
	first, last uint64
	val         uint32
}

func newFib6(pub *atomic.Pointer[table6]) *fib6 {
	f := &fib6{pub: pub, ctl: new(bart.Table[uint32]), deep: new(bart.Table[uint32]), routes: make(map[netip.Prefix]string)}
	f.a.w = make([]uint32, 1024)
	f.a.used = 1 // offset 0 is "no route"
	return f
}

// set installs p (masked, IPv6) with the entry words w.
func (f *fib6) set(p netip.Prefix, w []uint32) error {
	key := entryKey(w)
	old, had := f.routes[p]
	if had && old == key {
		return nil
	}
	grown, err := f.a.reserve(len(w))
	if err != nil {
		return err
	}
	off, key := f.ents.ref(&f.a, key, w)
	f.ctl.Insert(p, off)
	if p.Bits() > 64 {
		f.deep = f.deep.InsertPersist(p, off)
	}
	if had {
		f.ents.unref(&f.a, old)
	}
	f.routes[p] = key
	return f.changed(p, grown)
}

// del removes p.
func (f *fib6) del(p netip.Prefix) error {
	key, had := f.routes[p]
	if !had {
		return nil
	}
	delete(f.routes, p)
	f.ctl.Delete(p)
	if p.Bits() > 64 {
		f.deep = f.deep.DeletePersist(p)
	}
	f.ents.unref(&f.a, key)
	return f.changed(p, false)
}

// changed brings the published table up to date after p changed in ctl
// (and deep): in place when it can; afresh when the arena was
// reallocated (a table must never point beyond its own arena), when the
// pair array has no room, or when either is mostly garbage.
func (f *fib6) changed(p netip.Prefix, grown bool) error {
	if f.a.needsRebuild() {
		if err := f.compactEntries(); err != nil {
			return err
		}
		grown = true
	}
	t := f.cur
	if t == nil || grown {
		f.rebuild()
		return nil
	}
	if t.deep != f.deep {
		// A lookup that sees the new deep table before the interval
		// flags (or the reverse) answers as before or after the change.
		nt := *t
		nt.deep = f.deep
		t = &nt
		f.cur = t
		f.pub.Store(t)
	}
	r := f.rangeOf(p)
	f.plan(r)
	need := f.pairs(r)
	if 2*(f.ivUsed+need) > len(t.iv) || f.ivGarbage > max(1<<16, f.ivUsed-f.ivGarbage) {
		f.rebuild()
		return nil
	}
	f.write(t, r)
	return nil
}

// rangeOf returns the prefix whose chunks a change to p rebuilds: p's
// chunk, or p itself when it covers whole chunks.
func (f *fib6) rangeOf(p netip.Prefix) netip.Prefix {
	if bits := 64 - int(f.shift); p.Bits() >= bits {
		return netip.PrefixFrom(p.Addr(), bits).Masked()
	}
	return p
}

// bounds returns the first and last upper-64-bit address of p.
func bounds(p netip.Prefix) (first, last uint64) {
	a := p.Addr().As16()
	first = binary.BigEndian.Uint64(a[:8])
	if p.Bits() >= 64 {
		return first, first
	}
	return first, first | (1<<(64-p.Bits()) - 1)
}

// plan computes into f.spans the intervals of r, in order, adjacent
// intervals with the same value merged: a sweep over the prefixes inside
// r in CIDR order (by address, shorter first), with a stack of the
// prefixes that cover the current address.
func (f *fib6) plan(r netip.Prefix) {
	first, last := bounds(r)
	base, ok := f.ctl.Get(r)
	if !ok {
		for _, v := range f.ctl.Supernets(r) {
			base = v // the longest first
			break
		}
	}
	f.spans = f.spans[:0]
	f.stack = append(f.stack[:0], span{first, last, base})
	f.emit(first, base)
	for q, v := range f.ctl.Subnets(r) {
		if q.Bits() == r.Bits() {
			continue // r itself, the base
		}
		qf, ql := bounds(q)
		f.closeBefore(qf)
		top := f.stack[len(f.stack)-1]
		if q.Bits() > 64 {
			v = top.val | deep6
			if top.val&deep6 != 0 {
				continue // the same point, already flagged
			}
		}
		f.stack = append(f.stack, span{qf, ql, v})
		f.emit(qf, v)
	}
	f.closeBefore(last)
}

// closeBefore pops the prefixes that end before addr, starting their
// parents' values again after them.
func (f *fib6) closeBefore(addr uint64) {
	for len(f.stack) > 1 {
		top := f.stack[len(f.stack)-1]
		if top.last >= addr {
			return
		}
		f.stack = f.stack[:len(f.stack)-1]
		f.emit(top.last+1, f.stack[len(f.stack)-1].val)
	}
}

// emit starts an interval with value v at addr.
func (f *fib6) emit(addr uint64, v uint32) {
	s := f.spans
	if n := len(s); n > 0 && s[n-1].first == addr {
		s = s[:n-1] // replaced by a prefix starting at the same address
	}
	if n := len(s); n > 0 && s[n-1].val == v {
		f.spans = s
		return
	}
	f.spans = append(s, span{first: addr, val: v})
}

// forChunks calls fn for each chunk of r with the planned intervals that
// overlap it (the first may start before the chunk).
func (f *fib6) forChunks(r netip.Prefix, fn func(c uint64, s []span)) {
	first, last := bounds(r)
	s := f.spans
	for c := first >> f.shift; c <= last>>f.shift; c++ {
		end := c<<f.shift | (1<<f.shift - 1)
		n := 1
		for n < len(s) && s[n].first <= end {
			n++
		}
		fn(c, s[:n])
		s = s[n-1:]
		if len(s) > 1 && s[1].first == end+1 {
			s = s[1:]
		}
	}
}

// pairs returns the pairs writing r's planned intervals takes.
func (f *fib6) pairs(r netip.Prefix) int {
	n := 0
	f.forChunks(r, func(_ uint64, s []span) {
		if len(s) > 1 {
			n += len(s)
		}
	})
	return n
}

// write stores r's planned intervals in t: pairs in unused room first,
// then each chunk's root word, atomically.
func (f *fib6) write(t *table6, r netip.Prefix) {
	f.forChunks(r, func(c uint64, s []span) {
		var d uint64
		if len(s) == 1 {
			d = direct6 | uint64(s[0].val)
		} else {
			i := f.ivUsed
			f.ivUsed += len(s)
			for j, x := range s {
				t.iv[2*(i+j)] = max(x.first, c<<f.shift)
				t.iv[2*(i+j)+1] = uint64(x.val)
			}
			d = uint64(i) | uint64(len(s))<<32
		}
		if old := t.root[c].Swap(d); old&direct6 == 0 {
			f.ivGarbage += int(old >> 32)
		}
	})
}

// compactEntries builds the arena afresh without its garbage, and ctl and
// deep with the new offsets; rebuild then publishes them.
func (f *fib6) compactEntries() error {
	var a arena
	if _, err := a.reserve(f.a.used - f.a.garbage); err != nil {
		return err
	}
	a.used = 1
	var ents entries
	ctl, deep := new(bart.Table[uint32]), new(bart.Table[uint32])
	routes := make(map[netip.Prefix]string, len(f.routes))
	for p, k := range f.routes {
		r := ents.byKey[k]
		if r == nil {
			ents.ref(&a, k, wordsOfKey(k))
			r = ents.byKey[k]
		} else {
			r.refs++
		}
		routes[p] = r.key
		ctl.Insert(p, r.off)
		if p.Bits() > 64 {
			deep.Insert(p, r.off)
		}
	}
	f.a, f.ents, f.routes, f.ctl, f.deep = a, ents, routes, ctl, deep
	return nil
}

// rebuild builds the range table afresh, with a root as wide as the
// number of prefixes calls for and room for as many pairs again, and
// publishes it.
func (f *fib6) rebuild() {
	bits := smallRoot6
	if len(f.routes) > largeFrom6 {
		bits = largeRoot6
	}
	f.shift = uint8(64 - bits)
	all := netip.PrefixFrom(netip.IPv6Unspecified(), 0)
	f.plan(all)
	need := f.pairs(all)
	t := &table6{
		shift: f.shift,
		root:  makeRoot6(bits),
		iv:    make([]uint64, 2*(2*need+4096)),
		deep:  f.deep,
		w:     f.a.w,
	}
	f.ivUsed = 0
	f.write(t, all)
	f.ivGarbage = 0 // the new root had no pairs
	f.cur = t
	f.rebuilds++
	f.pub.Store(t)
}

// makeRoot6 returns a zeroed root on transparent huge pages (makeWords
// says why).
func makeRoot6(bits int) []atomic.Uint64 {
	r := make([]atomic.Uint64, 1<<bits)
	adviseHuge(unsafe.Pointer(&r[0]), 8*len(r))
	return r
}

// bytes returns the memory of the IPv6 FIB: root, pairs, entry arena
// (the deep table's few nodes are not counted).
func (f *fib6) bytes() int {
	if f.cur == nil {
		return 4 * len(f.a.w)
	}
	return 8*len(f.cur.root) + 8*len(f.cur.iv) + 4*len(f.a.w)
}
