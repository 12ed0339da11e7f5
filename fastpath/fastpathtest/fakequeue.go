package fastpathtest

import (
	"fmt"

	"github.com/xdpfwd/xdpfwd/xdp"
)

// FakeQueue is an in-memory fastpath.Queue over a UMEM: the four rings of an AF_XDP
// socket, and the kernel's side of them played by Inject (reception) and
// Drain (transmission). Rings are bounded, so full rings can be tested.
// Receive, Transmit, Complete and Fill do not allocate. A FakeQueue is not
// safe for concurrent use: inject and drain between worker polls.
type FakeQueue struct {
	umem     *xdp.Umem
	headroom uint64
	fill     ring[uint64]
	rx       ring[xdp.Desc]
	tx       ring[xdp.Desc]
	comp     ring[uint64]
	dropped  int

	// fillNeedsWakeup and fillWakeups model a zero-copy driver that waits
	// for a wakeup once its fill ring ran dry; nudges counts Transmit calls
	// without frames (kicks for frames left on the TX ring).
	fillNeedsWakeup     bool
	fillWakeups, nudges int

	// txStalled models a kernel that never takes frames off the TX ring
	// (a queue index at or above the device's real TX queue count).
	txStalled bool
}

// SetTxStalled makes the queue's kernel side stop transmitting (on) or
// carry on (off): while it is stalled, Drain and Consume take nothing off
// the TX ring and complete nothing, as the kernel does for a socket whose
// queue has no TX queue on its device.
func (q *FakeQueue) SetTxStalled(on bool) { q.txStalled = on }

// TxLen is how many frames the TX ring holds.
func (q *FakeQueue) TxLen() int { return q.tx.len() }

// SetFillNeedsWakeup sets what FillNeedsWakeup answers.
func (q *FakeQueue) SetFillNeedsWakeup(on bool) { q.fillNeedsWakeup = on }

// FillNeedsWakeup reports what SetFillNeedsWakeup set.
func (q *FakeQueue) FillNeedsWakeup() bool { return q.fillNeedsWakeup }

// WakeFill counts a fill-ring wakeup.
func (q *FakeQueue) WakeFill() { q.fillWakeups++ }

// FillWakeups is the number of WakeFill calls.
func (q *FakeQueue) FillWakeups() int { return q.fillWakeups }

// Nudges is the number of Transmit calls that came without frames.
func (q *FakeQueue) Nudges() int { return q.nudges }

// NewFakeQueue returns a FakeQueue on umem whose four rings hold size
// entries each.
func NewFakeQueue(umem *xdp.Umem, size int) *FakeQueue {
	return &FakeQueue{
		umem:     umem,
		headroom: uint64(umem.Config().Headroom),
		fill:     newRing[uint64](size),
		rx:       newRing[xdp.Desc](size),
		tx:       newRing[xdp.Desc](size),
		comp:     newRing[uint64](size),
	}
}

// Inject receives frames as the kernel does: each takes a chunk off the
// fill ring, is copied into it after the headroom and goes on the RX ring.
// It returns how many frames it received; the rest (fill ring empty or RX
// ring full) are dropped and counted in Dropped. It panics on a frame that
// does not fit a chunk.
func (q *FakeQueue) Inject(frames ...[]byte) int {
	size := uint64(q.umem.Config().FrameSize)
	for i, f := range frames {
		if uint64(len(f)) > size-q.headroom {
			panic(fmt.Sprintf("FakeQueue.Inject: frame of %d bytes does not fit a %d-byte chunk with %d bytes of headroom", len(f), size, q.headroom))
		}
		if q.rx.len() == q.rx.cap() || q.fill.len() == 0 {
			q.dropped += len(frames) - i
			return i
		}
		addr, _ := q.fill.pop()
		addr += q.headroom
		copy(q.umem.Frame(addr, uint32(len(f))), f)
		q.rx.push(xdp.Desc{Addr: addr, Len: uint32(len(f))})
	}
	return len(frames)
}

// Drain transmits as the kernel does: it takes the frames off the TX ring,
// returns copies of their bytes, and puts their addresses on the
// completion ring. It stops when the completion ring is full, and moves
// nothing while the queue is stalled (SetTxStalled).
func (q *FakeQueue) Drain() [][]byte {
	var out [][]byte
	for !q.txStalled && q.tx.len() > 0 && q.comp.len() < q.comp.cap() {
		d, _ := q.tx.pop()
		out = append(out, append([]byte(nil), q.umem.Frame(d.Addr, d.Len)...))
		q.comp.push(d.Addr)
	}
	return out
}

// Consume is Drain without the copies: it moves frames from the TX ring to
// the completion ring and returns how many it moved. It does not allocate,
// for benchmarks and allocation tests.
func (q *FakeQueue) Consume() int {
	n := 0
	for !q.txStalled && q.tx.len() > 0 && q.comp.len() < q.comp.cap() {
		d, _ := q.tx.pop()
		q.comp.push(d.Addr)
		n++
	}
	return n
}

// Dropped returns how many injected frames found no fill chunk or no room
// on the RX ring.
func (q *FakeQueue) Dropped() int { return q.dropped }

// Held returns how many frames the queue's rings hold: fill, RX, TX and
// completion together.
func (q *FakeQueue) Held() int { return q.fill.len() + q.rx.len() + q.tx.len() + q.comp.len() }

// Receive implements Queue.
func (q *FakeQueue) Receive(descs []xdp.Desc) int { return q.rx.popN(descs) }

// Transmit implements Queue.
func (q *FakeQueue) Transmit(descs []xdp.Desc) int {
	if len(descs) == 0 {
		q.nudges++
	}
	return q.tx.pushN(descs)
}

// Complete implements Queue.
func (q *FakeQueue) Complete(addrs []uint64) int { return q.comp.popN(addrs) }

// Fill implements Queue.
func (q *FakeQueue) Fill(addrs []uint64) int { return q.fill.pushN(addrs) }

// ring is a bounded FIFO.
type ring[T any] struct {
	buf  []T
	head int // index of the oldest entry
	n    int
}

func newRing[T any](size int) ring[T] { return ring[T]{buf: make([]T, size)} }

func (r *ring[T]) len() int { return r.n }
func (r *ring[T]) cap() int { return len(r.buf) }

func (r *ring[T]) push(v T) bool {
	if r.n == len(r.buf) {
		return false
	}
	r.buf[(r.head+r.n)%len(r.buf)] = v
	r.n++
	return true
}

func (r *ring[T]) pop() (T, bool) {
	var v T
	if r.n == 0 {
		return v, false
	}
	v = r.buf[r.head]
	r.head = (r.head + 1) % len(r.buf)
	r.n--
	return v, true
}

func (r *ring[T]) pushN(vs []T) int {
	for i, v := range vs {
		if !r.push(v) {
			return i
		}
	}
	return len(vs)
}

func (r *ring[T]) popN(vs []T) int {
	for i := range vs {
		v, ok := r.pop()
		if !ok {
			return i
		}
		vs[i] = v
	}
	return len(vs)
}
