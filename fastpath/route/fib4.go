package route

import (
	"encoding/binary"
	"net/netip"
	"sync/atomic"
)

// The IPv4 FIB is a multibit trie with leaf pushing, as VPP's ip4 mtrie
// (16-8-8) or DPDK's DIR-24-8 (24-8): a root table indexed by the
// address's first rootBits bits, then plies of 256 entries, each indexed by
// the next 8 bits. An entry is either a leaf, the offset of a route entry
// in the same arena (0: no route), or, with plyBit set, the offset of a
// ply. A lookup is one load per level:
//
//	addr:   |<- rootBits ->|<- 8 ->|<- 8 ->|
//	        root[addr>>(32-rootBits)] ─► ply[next byte] ─► ply[last byte]
//
// Root, plies and route entries share one []uint32, so the garbage
// collector never scans it and a reader needs one pointer. The writer
// changes it in place with atomic stores, one entry at a time, so that a
// concurrent lookup sees, for its address, the old answer or the new one:
// a ply is filled before the entry pointing to it is stored, and a ply
// that is no longer pointed to keeps its words (a slow reader still in it
// reads the answer of a moment ago) until the arena is rebuilt. The
// writer keeps, beside each entry, the length of the prefix whose leaf it
// holds (depth), which makes insertion and deletion local, as in DPDK's
// rte_lpm.
//
// rootBits 16 (VPP's choice) was chosen over 24 (DIR-24-8) by measurement
// (BenchmarkLookup4, BenchmarkMemory; numbers in the package
// documentation): DIR-24-8 answers one lookup in one load, ~30 % faster
// for random destinations, but holds twice the memory at 100 000 routes
// (its 64 MiB root, plus a byte of depth per word) and copies that root
// whenever its arena grows; Lookup4Batch on the 16-8-8 trie is as fast as
// DIR-24-8's single lookups.

const plyBit = 1 << 31

// defaultRootBits is the IPv4 root stride.
const defaultRootBits = 16

// trie4 is what IPv4 lookups read.
type trie4 struct {
	w     []uint32
	shift uint32 // 32 - rootBits
}

// lookup returns the leaf for addr.
func (t *trie4) lookup(addr uint32) uint32 {
	w := t.w
	sh := t.shift
	e := atomic.LoadUint32(&w[addr>>sh])
	for e&plyBit != 0 {
		sh -= 8
		e = atomic.LoadUint32(&w[e&^plyBit+addr>>sh&0xff])
	}
	return e
}

// Lookup4 returns the route for dst and, for an ECMP route, the next hop
// the flow hash picks (the package documentation says which fields to
// hash).
func (v View) Lookup4(dst [4]byte, hash uint32) Result {
	t := v.t4
	if t == nil {
		return Result{}
	}
	return decode(t.w, t.lookup(binary.BigEndian.Uint32(dst[:])), hash, 0)
}

// Lookup4Batch looks up dsts[i] with hashes[i] into out[i] for every i
// (the three slices have the same length; out may be longer), one trie
// level for all of them at a time, so that the memory loads of different
// packets overlap: a worker's batch costs less than as many Lookup4
// calls when the trie is out of cache.
func (v View) Lookup4Batch(dsts [][4]byte, hashes []uint32, out []Result) {
	t := v.t4
	if t == nil {
		clear(out[:len(dsts)])
		return
	}
	w := t.w
	hashes = hashes[:len(dsts)]
	out = out[:len(dsts)]
	// Level by level; out[i].NextHop holds the entry meanwhile.
	for i, d := range dsts {
		out[i].NextHop = atomic.LoadUint32(&w[binary.BigEndian.Uint32(d[:])>>t.shift])
	}
	for sh := t.shift; sh > 0; sh -= 8 {
		more := false
		for i, d := range dsts {
			if e := out[i].NextHop; e&plyBit != 0 {
				e = atomic.LoadUint32(&w[e&^plyBit+binary.BigEndian.Uint32(d[:])>>(sh-8)&0xff])
				out[i].NextHop = e
				more = more || e&plyBit != 0
			}
		}
		if !more {
			break
		}
	}
	for i := range out {
		out[i] = decode(w, out[i].NextHop, hashes[i], 0)
	}
}

// fib4 is the IPv4 FIB's writer.
type fib4 struct {
	pub      *atomic.Pointer[trie4]
	rootBits int
	a        arena
	depth    []uint8 // per word of a: prefix length of the leaf it holds
	rebuilds int
	ents     entries
	routes   map[netip.Prefix]string // installed prefix → entry key
}

func newFib4(pub *atomic.Pointer[trie4], rootBits int) *fib4 {
	f := &fib4{pub: pub, rootBits: rootBits, routes: make(map[netip.Prefix]string)}
	n := 1 << rootBits
	f.a.w = makeWords(n + 1024)
	f.a.used = n
	f.depth = make([]uint8, len(f.a.w))
	f.publish()
	return f
}

func (f *fib4) publish() {
	f.pub.Store(&trie4{w: f.a.w, shift: uint32(32 - f.rootBits)})
}

// reserve makes room for n words, publishing a larger arena if needed.
func (f *fib4) reserve(n int) error {
	grown, err := f.a.reserve(n)
	if err != nil {
		return err
	}
	if grown {
		d := make([]uint8, len(f.a.w))
		copy(d, f.depth)
		f.depth = d
		f.publish()
	}
	return nil
}

// set installs p (masked, IPv4) with the entry words w, replacing what p
// had.
func (f *fib4) set(p netip.Prefix, w []uint32) error {
	key := entryKey(w)
	old, had := f.routes[p]
	if had && old == key {
		return nil
	}
	// At most one new ply per level below the root, and the entry.
	if err := f.reserve((32-f.rootBits)/8*plyWords + len(w)); err != nil {
		return err
	}
	off, key := f.ents.ref(&f.a, key, w)
	plen := p.Bits()
	f.walk(0, 0, f.rootBits, addr4(p), plen, off, uint8(plen), false)
	if had {
		f.ents.unref(&f.a, old)
	}
	f.routes[p] = key
	return f.maybeRebuild()
}

// del removes p, which its shorter covering prefix (or nothing) replaces.
func (f *fib4) del(p netip.Prefix) error {
	key, had := f.routes[p]
	if !had {
		return nil
	}
	delete(f.routes, p)
	plen := p.Bits()
	var cover uint32
	var cdepth int
	for l := plen - 1; l >= 0; l-- {
		q := netip.PrefixFrom(p.Addr(), l).Masked()
		if k, ok := f.routes[q]; ok {
			cover, cdepth = f.ents.byKey[k].off, l
			break
		}
	}
	f.walk(0, 0, f.rootBits, addr4(p), plen, cover, uint8(cdepth), true)
	f.ents.unref(&f.a, key)
	return f.maybeRebuild()
}

const plyWords = 256

// walk applies a change of the prefix addr/plen to the node at offset
// node, whose entries cover stride bits after the first pre. Inserting,
// every leaf of depth up to plen becomes (val, d); deleting, every leaf of
// depth plen becomes (val, d), the covering prefix's.
func (f *fib4) walk(node uint32, pre, stride int, addr uint32, plen int, val uint32, d uint8, del bool) {
	end := pre + stride
	mask := uint32(1)<<stride - 1
	if plen <= end {
		first := addr >> (32 - end) & mask &^ (uint32(1)<<(end-plen) - 1)
		n := uint32(1) << (end - plen)
		for i := node + first; i < node+first+n; i++ {
			f.paint(i, end, plen, val, d, del)
		}
		return
	}
	i := node + addr>>(32-end)&mask
	e := f.a.w[i]
	if e&plyBit == 0 {
		if del {
			return
		}
		// Expand the leaf into a ply of copies of it, fill the ply,
		// then make it visible.
		ply := f.a.alloc(plyWords)
		dep := f.depth[i]
		for j := ply; j < ply+plyWords; j++ {
			f.a.w[j] = e
			f.depth[j] = dep
		}
		f.walk(ply, end, 8, addr, plen, val, d, del)
		atomic.StoreUint32(&f.a.w[i], ply|plyBit)
		return
	}
	f.walk(e&^plyBit, end, 8, addr, plen, val, d, del)
	if del {
		f.collapse(i, end)
	}
}

// paint applies a change to entry i, which covers a /end block inside
// the changed prefix, and to every entry of a ply below it.
func (f *fib4) paint(i uint32, end, plen int, val uint32, d uint8, del bool) {
	e := f.a.w[i]
	if e&plyBit != 0 {
		child := e &^ plyBit
		for j := child; j < child+plyWords; j++ {
			f.paint(j, end+8, plen, val, d, del)
		}
		if del {
			f.collapse(i, end)
		}
		return
	}
	dep := int(f.depth[i])
	if del && dep == plen || !del && dep <= plen {
		atomic.StoreUint32(&f.a.w[i], val)
		f.depth[i] = d
	}
}

// collapse replaces the ply below entry i (a /end block) by a leaf when no
// prefix longer than end is left in it: all its leaves are then the same.
func (f *fib4) collapse(i uint32, end int) {
	child := f.a.w[i] &^ plyBit
	for j := child; j < child+plyWords; j++ {
		if f.a.w[j]&plyBit != 0 || int(f.depth[j]) > end {
			return
		}
	}
	f.depth[i] = f.depth[child]
	atomic.StoreUint32(&f.a.w[i], f.a.w[child])
	f.a.garbage += plyWords
}

// maybeRebuild builds the trie afresh in a new arena when garbage
// dominates; readers of the old arena finish undisturbed.
func (f *fib4) maybeRebuild() error {
	if !f.a.needsRebuild() {
		return nil
	}
	return f.rebuild()
}

func (f *fib4) rebuild() error {
	n := newFib4Unpublished(f.rootBits)
	if err := n.reserve(f.a.used - f.a.garbage - 1<<f.rootBits); err != nil {
		return err
	}
	for p, key := range f.routes {
		if err := n.set(p, wordsOfKey(key)); err != nil {
			return err
		}
	}
	f.a, f.depth, f.ents, f.routes = n.a, n.depth, n.ents, n.routes
	f.rebuilds++
	f.publish()
	return nil
}

// newFib4Unpublished is a writer whose changes nobody sees.
func newFib4Unpublished(rootBits int) *fib4 {
	return newFib4(new(atomic.Pointer[trie4]), rootBits)
}

// wordsOfKey inverts entryKey.
func wordsOfKey(key string) []uint32 {
	w := make([]uint32, len(key)/4)
	for i := range w {
		w[i] = binary.LittleEndian.Uint32([]byte(key[4*i:]))
	}
	return w
}

func addr4(p netip.Prefix) uint32 {
	a := p.Addr().As4()
	return binary.BigEndian.Uint32(a[:])
}

// bytes returns the memory the IPv4 FIB holds: the arena and the writer's
// depth array.
func (f *fib4) bytes() int {
	return 4*len(f.a.w) + len(f.depth)
}
