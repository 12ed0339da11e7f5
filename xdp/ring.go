package xdp

import (
	"fmt"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ring is the user side of one AF_XDP ring: the shared producer and
// consumer indices in the kernel's mapping, and cached copies of them so
// that the other side's index is read only when the cache runs out (as
// libbpf's xsk_ring_prod__reserve and xsk_ring_cons__peek do).
//
// On a ring this process produces to (fill, TX), cachedProd is our producer
// index and cachedCons is the last consumer index read plus the ring size,
// so cachedCons-cachedProd is the free space. On a ring this process
// consumes from (RX, completion), cachedCons is our consumer index and
// cachedProd the last producer index read, so cachedProd-cachedCons is
// the number of entries ready.
//
// Our own index is published with atomic.StoreUint32 and the kernel's read
// with atomic.LoadUint32: there is one producer and one consumer, so no
// read-modify-write is ever needed.
type ring struct {
	producer *uint32
	consumer *uint32
	flags    *uint32
	mask     uint32
	size     uint32

	cachedProd uint32
	cachedCons uint32

	mem []byte // the whole mapping, for munmap
}

// prodFree returns the free space on a ring we produce to, reading the
// consumer index only when the cached space is below want.
func (r *ring) prodFree(want uint32) uint32 {
	free := r.cachedCons - r.cachedProd
	if free >= want {
		return free
	}
	r.cachedCons = atomic.LoadUint32(r.consumer) + r.size
	return r.cachedCons - r.cachedProd
}

// consReady returns the entries ready on a ring we consume from, reading
// the producer index only when fewer than want are cached.
func (r *ring) consReady(want uint32) uint32 {
	ready := r.cachedProd - r.cachedCons
	if ready >= want {
		return ready
	}
	r.cachedProd = atomic.LoadUint32(r.producer)
	return r.cachedProd - r.cachedCons
}

// occupancy is the number of entries in the ring as the shared indices
// say, whichever side produced them.
func (r *ring) occupancy() uint32 {
	if r.producer == nil {
		return 0
	}
	cons := atomic.LoadUint32(r.consumer)
	return atomic.LoadUint32(r.producer) - cons
}

// needsWakeup reports whether the kernel asked for a wakeup on this ring.
func (r *ring) needsWakeup() bool {
	return atomic.LoadUint32(r.flags)&unix.XDP_RING_NEED_WAKEUP != 0
}

// entry is what a ring holds: a UMEM address on a fill or completion ring,
// a frame descriptor on an RX or TX ring.
type entry interface{ uint64 | Desc }

// produceEntries puts as many of src as fit on r, whose entries are ents,
// and publishes them with one store of the producer index. A batch that
// runs past the end of ents wraps to its start: two copies, no loop.
func produceEntries[T entry](r *ring, ents, src []T) int {
	n := min(uint32(len(src)), r.prodFree(uint32(len(src))))
	if n == 0 {
		return 0
	}
	i := r.cachedProd & r.mask
	c := copy(ents[i:], src[:n])
	copy(ents, src[c:n])
	r.cachedProd += n
	atomic.StoreUint32(r.producer, r.cachedProd)
	return int(n)
}

// consumeEntries takes up to len(dst) entries off r, whose entries are
// ents, and releases them with one store of the consumer index.
func consumeEntries[T entry](r *ring, ents, dst []T) int {
	n := min(uint32(len(dst)), r.consReady(uint32(len(dst))))
	if n == 0 {
		return 0
	}
	i := r.cachedCons & r.mask
	c := copy(dst[:n], ents[i:])
	copy(dst[c:n], ents)
	r.cachedCons += n
	atomic.StoreUint32(r.consumer, r.cachedCons)
	return int(n)
}

// addrRing is a fill or completion ring: its entries are UMEM addresses.
type addrRing struct {
	ring
	addrs []uint64
}

// produce puts as many of addrs as fit on the ring and publishes them.
func (r *addrRing) produce(addrs []uint64) int { return produceEntries(&r.ring, r.addrs, addrs) }

// consume takes up to len(addrs) entries off the ring and releases them.
func (r *addrRing) consume(addrs []uint64) int { return consumeEntries(&r.ring, r.addrs, addrs) }

// descRing is an RX or TX ring: its entries are frame descriptors.
type descRing struct {
	ring
	descs []Desc
}

// produce puts as many of descs as fit on the ring and publishes them.
func (r *descRing) produce(descs []Desc) int { return produceEntries(&r.ring, r.descs, descs) }

// consume takes up to len(descs) entries off the ring and releases them.
func (r *descRing) consume(descs []Desc) int { return consumeEntries(&r.ring, r.descs, descs) }

// mapRing maps one ring of fd at page offset pgoff, given its offsets and
// its number of entries of entrySize bytes, and points r at the indices.
// It returns the mapping and the address of the first entry.
func mapRing(r *ring, fd int, pgoff int64, off unix.XDPRingOffset, entries, entrySize uint32, name string) (unsafe.Pointer, error) {
	size := int(off.Desc) + int(entries)*int(entrySize)
	mem, err := unix.Mmap(fd, pgoff, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return nil, fmt.Errorf("map %s ring (%d entries): %w", name, entries, err)
	}
	base := unsafe.Pointer(&mem[0])
	r.mem = mem
	r.producer = (*uint32)(unsafe.Add(base, off.Producer))
	r.consumer = (*uint32)(unsafe.Add(base, off.Consumer))
	r.flags = (*uint32)(unsafe.Add(base, off.Flags))
	r.size = entries
	r.mask = entries - 1
	return unsafe.Add(base, off.Desc), nil
}

// initProducer sets the caches of a ring this process produces to.
func (r *ring) initProducer() {
	r.cachedProd = atomic.LoadUint32(r.producer)
	r.cachedCons = atomic.LoadUint32(r.consumer) + r.size
}

// initConsumer sets the caches of a ring this process consumes from.
func (r *ring) initConsumer() {
	r.cachedCons = atomic.LoadUint32(r.consumer)
	r.cachedProd = atomic.LoadUint32(r.producer)
}

// unmap releases the ring's mapping.
func (r *ring) unmap() error {
	if r.mem == nil {
		return nil
	}
	err := unix.Munmap(r.mem)
	*r = ring{}
	return err
}
