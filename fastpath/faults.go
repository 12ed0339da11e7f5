package fastpath

import (
	"sync"
	"sync/atomic"
	"time"
)

// TxStallTimeout is how long, in worker clock time, a queue may hold frames
// handed to Transmit without a single completion before the worker treats
// its TX ring as stalled. A kernel that sends, or drops because the link
// is down, completes frames within microseconds; one that never takes them
// (a socket whose queue index is at or above the device's real TX queue
// count, a hung driver) never does.
const TxStallTimeout = time.Second

// TxStall is a queue whose TX ring stopped completing, as [Worker.TxStalls]
// reports it.
type TxStall struct {
	// Queue is the queue's index in WorkerConfig.Queues.
	Queue int
	// Port is the queue's port.
	Port PortID
	// Frames is how many frames were on the ring, or in the kernel, and are
	// counted as dropped (reason DropTxStalled).
	Frames int
}

// faults is the worker's view of what went wrong outside it: ports the
// daemon marked down, queues with no TX queue on their device, queues whose
// TX ring stalled. egress reads only txq, which the worker thread rebuilds
// when any of these change, so the per-packet path takes no lock and reads
// no atomic.
type faults struct {
	// txq[port] are the queues frames to port may leave on: the port's
	// queues on this worker that have a TX queue, have not stalled, and
	// whose port is not down.
	txq [][]int

	rxOnly  []bool // by queue: the device has no TX queue of that index
	stalled []bool // by queue: TX ring stalled; never transmitted on again
	since   []Time // by queue: when the queue last had no frames in flight or completed one
	armed   []bool // by queue: since is valid
	kicks   []int  // by queue: kicks Poll gave the TX ring since since

	// down and maxLen are written by SetPortDown and SetPortMaxFrame
	// from any goroutine; downSeen is the version the worker thread last
	// applied.
	mu       sync.Mutex
	down     []bool   // by PortID
	maxLen   []uint32 // by PortID; 0: no limit
	version  atomic.Uint64
	downSeen uint64
	portDown []bool   // the worker thread's copy of down
	portMax  []uint32 // the worker thread's copy of maxLen

	// report holds stalls not yet taken by TxStalls.
	reportMu sync.Mutex
	report   []TxStall
}

// initFaults sets up the fault state for the worker's queues (qs is
// WorkerConfig.Queues).
func (w *Worker) initFaults(qs []PortQueue) {
	f := &w.faults
	n := len(w.queues)
	f.rxOnly = make([]bool, n)
	for i, pq := range qs {
		f.rxOnly[i] = pq.RxOnly
	}
	f.stalled = make([]bool, n)
	f.since = make([]Time, n)
	f.armed = make([]bool, n)
	f.kicks = make([]int, n)
	f.down = make([]bool, len(w.byPort))
	f.portDown = make([]bool, len(w.byPort))
	f.maxLen = make([]uint32, len(w.byPort))
	f.portMax = make([]uint32, len(w.byPort))
	w.retarget()
}

// retarget recomputes which queues each port's frames may leave on. It
// runs on the worker thread, and allocates only the first time (the
// slices keep their capacity).
func (w *Worker) retarget() {
	f := &w.faults
	if f.txq == nil {
		f.txq = make([][]int, len(w.byPort))
	}
	for port, qs := range w.byPort {
		f.txq[port] = f.txq[port][:0]
		if f.portDown[port] {
			continue
		}
		for _, qi := range qs {
			if !f.rxOnly[qi] && !f.stalled[qi] {
				f.txq[port] = append(f.txq[port], qi)
			}
		}
	}
}

// txStallKicks is how many kicks (sendto) a TX ring with frames in flight
// must have had, with no completion, within TxStallTimeout before it is
// stalled.
const txStallKicks = 3

// SetPortDown tells the worker that port is down (its link or carrier is
// off) or up again. While it is down, frames to it are not transmitted:
// they are dropped as DropNoEgress instead of being counted as sent while
// the kernel discards them. The worker applies it at its next Poll. It is
// safe to call from any goroutine.
func (w *Worker) SetPortDown(port PortID, down bool) {
	f := &w.faults
	if int(port) >= len(f.down) {
		return
	}
	f.mu.Lock()
	f.down[port] = down
	f.mu.Unlock()
	f.version.Add(1)
}

// SetPortMaxFrame sets the longest frame, in bytes from the Ethernet
// header on, that port's device accepts for transmission; 0 means no
// limit. A longer frame (a full-size frame that gained a VLAN tag on a
// VLAN-aware bridge, or one with two tags in its bytes where the kernel
// would keep the outer one beside them) is dropped as DropTooBigForEgress
// instead of being handed to a device that discards it uncounted. The
// kernel's own limit for a forwarded frame is the MTU plus the Ethernet
// header plus one VLAN tag (is_skb_forwardable). The worker applies it at
// its next Poll. It is safe to call from any goroutine.
func (w *Worker) SetPortMaxFrame(port PortID, n int) {
	f := &w.faults
	if int(port) >= len(f.maxLen) {
		return
	}
	f.mu.Lock()
	f.maxLen[port] = uint32(max(n, 0))
	f.mu.Unlock()
	f.version.Add(1)
}

// fits reports whether an n-byte frame may leave on port (see
// SetPortMaxFrame).
func (w *Worker) fits(port PortID, n int) bool {
	m := w.faults.portMax[port]
	return m == 0 || uint32(n) <= m
}

// TxStalls returns the TX stalls found since the last call, each once. It
// is safe to call from any goroutine.
func (w *Worker) TxStalls() []TxStall {
	f := &w.faults
	f.reportMu.Lock()
	defer f.reportMu.Unlock()
	r := f.report
	f.report = nil
	return r
}

// watch is the worker's once-per-Poll look at faults: it applies port
// states set by SetPortDown and finds TX rings that stopped completing.
// It reports whether it reaped completions (TX counted, to publish).
//
// A queue with frames in flight (handed to Transmit, not completed) whose
// completion ring gives back nothing for TxStallTimeout of worker clock is
// stalled: its in-flight frames are counted as dropped (DropTxStalled) on
// its port (and never as transmitted: TX counts a frame when it
// completes), the queue is never transmitted on again (so frames stop piling
// up on a ring nobody empties, and Run no longer wakes every millisecond
// to kick it), and the stall is reported once through TxStalls. The frames
// stay where they are (on the ring or in the kernel): they return to the
// UMEM when the owner of the worker replaces the socket, and with it the
// worker's UMEM.
func (w *Worker) watch() (completed bool) {
	f := &w.faults
	if v := f.version.Load(); v != f.downSeen {
		f.mu.Lock()
		copy(f.portDown, f.down)
		copy(f.portMax, f.maxLen)
		f.mu.Unlock()
		f.downSeen = v
		w.retarget()
	}
	var now Time
	clocked := false
	for i := range w.queues {
		q := &w.queues[i]
		if q.inTx <= 0 || f.stalled[i] || f.portDown[q.port] {
			f.armed[i] = false
			continue
		}
		if !clocked {
			now, clocked = w.clock(), true
		}
		got := w.complete(i)
		completed = completed || got
		if got || !f.armed[i] {
			f.since[i], f.armed[i], f.kicks[i] = now, true, 0
			continue
		}
		// A ring is stalled only if it was kicked and still gave nothing
		// back: after a pause of the whole process (SIGSTOP, a frozen
		// cgroup) the first look must not call a ring nobody kicked
		// stalled.
		if now-f.since[i] < Time(TxStallTimeout) || f.kicks[i] < txStallKicks {
			continue
		}
		stall := TxStall{Queue: i, Port: q.port, Frames: q.inTx}
		w.countN(q.port, DropTxStalled, uint64(q.inTx))
		q.inTx = 0
		f.stalled[i], f.armed[i] = true, false
		w.retarget()
		w.publish()
		f.reportMu.Lock()
		f.report = append(f.report, stall)
		f.reportMu.Unlock()
	}
	return completed
}
