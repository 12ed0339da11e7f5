package fastpath

import (
	"sync"
	"sync/atomic"
)

// A capture and a trace keep, per worker, a bounded ring of preallocated
// slots with one producer, the worker, and one consumer, the reader that
// drains them. The worker fills slots from head on and publishes them by
// moving head; the reader empties them from tail on and gives each back by
// moving tail. What the worker would put in a full ring is lost (counted),
// never waited for. spsc is that bookkeeping, workerRings the set of one
// capture's or trace's rings.

// spsc is the bookkeeping of one worker's ring; head, tail and lost each
// sit on a cache line of their own.
type spsc struct {
	mask uint64 // the number of slots (a power of 2) - 1
	_    [56]byte
	head atomic.Uint64
	_    [56]byte
	tail atomic.Uint64
	_    [56]byte
	lost atomic.Uint64
}

// ringSlots returns the number of slots of a ring asked for n (def if
// 0): a power of 2, so that a position's slot is its low bits.
func ringSlots(n, def int) int {
	if n == 0 {
		n = def
	}
	s := 1
	for s < n {
		s <<= 1
	}
	return s
}

// consume calls fn with the index of each published slot, oldest first,
// and gives the slot back after fn returns; it returns how many. It is
// the consumer's.
func (r *spsc) consume(fn func(slot uint64)) int {
	n := 0
	head := r.head.Load()
	for t := r.tail.Load(); t != head; t++ {
		fn(t & r.mask)
		r.tail.Store(t + 1)
		n++
	}
	return n
}

// ring returns the ring's bookkeeping (for workerRings).
func (r *spsc) ring() *spsc { return r }

// workerRings is a capture's or a trace's rings, one a worker, added as
// workers take it up.
type workerRings[R interface{ ring() *spsc }] struct {
	mu    sync.Mutex
	rings []R
}

// add adds r and returns its index.
func (s *workerRings[R]) add(r R) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rings = append(s.rings, r)
	return len(s.rings) - 1
}

// all returns the rings added so far. The caller uses them without the
// lock, so it may call anything that adds one.
func (s *workerRings[R]) all() []R {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rings
}

// lost returns what the rings lost, in all.
func (s *workerRings[R]) lost() uint64 {
	var n uint64
	for _, r := range s.all() {
		n += r.ring().lost.Load()
	}
	return n
}
