package conntrack

import (
	"encoding/binary"
	"runtime"
	"sync/atomic"
)

// The by-source index is the kernel's nf_nat_bysource: the connections
// that went through source NAT setup (a binding or the null binding),
// found by their original source (address, port, protocol and zone), so
// that a new connection from the same source can reuse the mapping
// (find_appropriate_src): a client keeps its public address and port
// whatever it talks to, as long as the tuple is free.
//
// The kernel chains every such connection into a hash list, newest
// first. Here a bucket holds the references of the srcWays connections
// of its sources confirmed last, newest first; an older one falls out
// of the index (its mapping is not offered again) when srcWays newer
// ones share its bucket, and a reference whose entry is gone is skipped.
// The index is made when the first such connection is confirmed: a table
// without source NAT spends nothing on it.

// srcWays is how many connections a by-source bucket remembers.
const srcWays = 3

// srcBucket is one bucket of the by-source index: a writer's lock and
// the references, newest first (0: none).
type srcBucket struct {
	lock atomic.Uint32
	_    uint32
	refs [srcWays]atomic.Uint64
}

// bySource returns the index, made on first use.
func (t *Table) bySource() []srcBucket {
	if x := t.bysrc.Load(); x != nil {
		return *x
	}
	t.bysrcOnce.Do(func() {
		// A bucket (32 bytes, three ways) for every four records: 8
		// bytes an entry.
		n := 1
		for n < len(t.slab)/4 {
			n <<= 1
		}
		x := make([]srcBucket, n)
		t.bysrc.Store(&x)
	})
	return *t.bysrc.Load()
}

// sourceHash hashes a tuple's source, protocol and zone (hash_by_src).
func (t *Table) sourceHash(k *Tuple) uint64 {
	le := binary.LittleEndian
	meta := uint64(k.SrcPort) | uint64(k.Proto)<<16 | uint64(k.Zone)<<24 | uint64(k.Family)<<40 | 1<<48
	if k.Family == 4 {
		return t.sip.Sum2(uint64(le.Uint32(k.Src[:])), meta)
	}
	return t.sip.Sum5(le.Uint64(k.Src[:]), le.Uint64(k.Src[8:]), 0, 0, meta)
}

// A bucket's reference is the connection's Conn (original direction)
// with a tag of its source's hash in bits 17 to 31, which a Conn leaves
// 0: a lookup compares tags before it reads a record.
const (
	srcTagShift = 17
	srcTagMask  = uint64(0x7fff) << srcTagShift
)

// srcTag is the tag of source hash h in a bucket's reference.
func srcTag(h uint64) uint64 { return h >> 49 << srcTagShift }

// noteSource puts the connection in record idx, of identity id and
// original tuple orig, at the head of its source's bucket.
func (t *Table) noteSource(idx, id uint32, orig *Tuple) {
	bs := t.bySource()
	h := t.sourceHash(orig)
	b := &bs[h&uint64(len(bs)-1)]
	for i := 0; !b.lock.CompareAndSwap(0, 1); i++ {
		if i >= 32 {
			runtime.Gosched()
		}
	}
	for i := srcWays - 1; i > 0; i-- {
		b.refs[i].Store(b.refs[i-1].Load())
	}
	b.refs[0].Store(uint64(makeConn(idx, idGen(id), DirOriginal)) | srcTag(h))
	b.lock.Store(0)
}

// SameSource fills reply with the reply tuple of the n-th newest live
// connection (from 0) whose original tuple has orig's source address and
// port, protocol and zone and that went through source NAT setup, and
// reports whether there is one: the walk of the kernel's
// find_appropriate_src over nf_nat_bysource. It never blocks.
func (t *Table) SameSource(orig *Tuple, n int, reply *Tuple) bool {
	x := t.bysrc.Load()
	if x == nil {
		return false
	}
	bs := *x
	h := t.sourceHash(orig)
	b := &bs[h&uint64(len(bs)-1)]
	var e Entry
	for i := range srcWays {
		ref := b.refs[i].Load()
		if ref == 0 || ref&srcTagMask != srcTag(h) {
			continue
		}
		if c := Conn(ref &^ srcTagMask); !t.mayHaveSource(c, orig) || !t.Read(c, &e) {
			continue
		}
		o := &e.Tuple[0]
		if o.Src != orig.Src || o.SrcPort != orig.SrcPort || o.Proto != orig.Proto || o.Zone != orig.Zone || o.Family != orig.Family {
			continue
		}
		if n == 0 {
			*reply = e.Tuple[1]
			return true
		}
		n--
	}
	return false
}

// mayHaveSource reports whether the entry c refers to may have orig's
// source port and the first word of its source address, from three loads
// and without the entry's lock: false rules it out; true wants the
// consistent read.
func (t *Table) mayHaveSource(c Conn, orig *Tuple) bool {
	r := t.rec(c)
	if r == nil {
		return false
	}
	return uint16(r.ports[0].Load()>>16) == orig.SrcPort &&
		r.addr[0].Load() == binary.LittleEndian.Uint32(orig.Src[:]) &&
		uint8(r.id.Load()) == orig.Proto
}
