package fastpath

import (
	"errors"
	"fmt"
	"math/bits"
	"runtime"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xdpfwd/xdpfwd/xdp"
)

// PortQueue is one queue of a port, as a worker polls it.
type PortQueue struct {
	// Port is the port the queue belongs to.
	Port PortID
	// Queue is the queue's rings: an *xdp.Socket or a FakeQueue.
	Queue Queue
	// RxOnly marks a queue whose device has no TX queue of its index
	// (sockets are bound by RX queue): the worker receives on it but never
	// transmits on it, since the kernel would neither send nor complete
	// what its TX ring holds.
	RxOnly bool
}

// WorkerConfig configures a worker.
type WorkerConfig struct {
	// Umem is the frame memory of every queue in Queues. The worker owns
	// it: nothing else may touch it while the worker runs.
	Umem *xdp.Umem
	// Queues are the queues the worker polls. A port may appear several
	// times (several queues of one port on one worker).
	Queues []PortQueue
	// Pipeline decides what happens to each packet. It must belong to this
	// worker alone.
	Pipeline *Pipeline
	// Groups are the port groups the pipeline's stages send packets to
	// (EgressGroup). Nil if they send none.
	Groups *PortGroups
	// Clock is read once per batch. Nil means MonotonicClock.
	Clock Clock
	// FillTarget is how many frames the worker keeps given to each queue
	// for reception (fill and RX rings). 0 means the smaller of the UMEM's
	// fill ring size and FrameCount / (2 × len(Queues)), which leaves half
	// the frames for TX and flood copies.
	FillTarget int
	// IdleTimeout bounds how long Run blocks in poll(2) when idle, and so
	// how long Stop takes. 0 means 50ms.
	IdleTimeout time.Duration
	// Priority, if above 0, is the SCHED_FIFO priority (1 to MaxPriority)
	// Run gives its thread, so that the worker runs as soon as traffic
	// wakes it instead of waiting for the time slice of whatever else
	// holds its core (see CheckPriority). 0 leaves the thread's policy.
	Priority int
	// ThreadName, if set, names Run's thread (at most 15 bytes are kept),
	// for top -H, ps -L and perf.
	ThreadName string
	// CPUs, if not empty, are the CPUs Run's thread may run on
	// (sched_setaffinity), as OVS pins its PMD threads: the worker then
	// never shares a core with what the scheduler would otherwise move
	// onto it, such as a local sender's softirq work.
	CPUs []int
}

// PortCounters are the counters of one port.
type PortCounters struct {
	// RxPackets and RxBytes count frames received.
	RxPackets, RxBytes uint64
	// TxPackets and TxBytes count frames transmitted: put on a TX ring and
	// completed by the kernel (sent, or dropped by a device whose link is
	// down). A frame in flight is not counted yet; one on a ring that
	// stalled is counted as dropped (DropTxStalled) only.
	TxPackets, TxBytes uint64
	// Consumed counts frames a stage used up (ActionConsumed): the
	// router's own traffic.
	Consumed uint64
	// Drops counts dropped frames by Reason (its index; NumReasons
	// long): drops before the copies (and DropNoEgress) on the ingress
	// port; drops in the per-output hooks, and what the output port
	// causes (DropTxRingFull, DropNoFreeFrame, DropTxStalled,
	// DropTooBigForEgress), on the output port.
	Drops []uint64
	// Latency counts the frames put on the port's TX rings by the time
	// they spent in the worker: from the clock reading of the batch that
	// sent them (taken once the batch is off the RX ring) to the one
	// taken before the TX rings are written. A frame a stage held
	// (ActionStolen) counts from the batch that gave it back; a frame the
	// TX ring refused is not counted.
	Latency LatencyHistogram
}

// Counters is a snapshot of port counters, indexed by PortID.
type Counters struct {
	// Ports holds a port's counters at index PortID.
	Ports []PortCounters
}

// Add adds o's counters into c.
func (c *Counters) Add(o Counters) {
	if len(o.Ports) > len(c.Ports) {
		c.Ports = append(c.Ports, make([]PortCounters, len(o.Ports)-len(c.Ports))...)
	}
	for i, p := range o.Ports {
		q := &c.Ports[i]
		q.RxPackets += p.RxPackets
		q.RxBytes += p.RxBytes
		q.TxPackets += p.TxPackets
		q.TxBytes += p.TxBytes
		q.Consumed += p.Consumed
		q.Latency.Add(&p.Latency)
		if len(q.Drops) < len(p.Drops) {
			q.Drops = append(q.Drops, make([]uint64, len(p.Drops)-len(q.Drops))...)
		}
		for r, n := range p.Drops {
			q.Drops[r] += n
		}
	}
}

// SumCounters returns the counters of all workers added up.
func SumCounters(ws ...*Worker) Counters {
	var c Counters
	for _, w := range ws {
		c.Add(w.Counters())
	}
	return c
}

// Worker is the poll loop of one queue index: it owns a UMEM and the queues
// of every port on that index, moves frames from RX rings through its
// pipeline to TX rings, and keeps fill rings topped up. One OS thread runs
// it; only its counters are read from elsewhere.
//
// A frame is always in exactly one place: the UMEM free list, a queue's
// ring, or the worker (Held).
type Worker struct {
	umem     *xdp.Umem
	pipeline *Pipeline
	groups   *PortGroups
	clock    Clock
	queues   []queueState
	byPort   [][]int // PortID → indexes into queues
	idle     time.Duration
	pollFDs  []unix.PollFd // nil unless every queue has an FD
	thread   threadConfig  // what Run does to its thread

	batch Batch                       // one RX batch, through the hooks before the copies
	out   Batch                       // copies, each for one output port, through the per-output hooks
	outQ  [BatchSize + MaxEmitted]int // the queue each packet of the output batch leaves on
	descs [BatchSize]xdp.Desc
	addrs [BatchSize]uint64
	held  int // frames in the batches or staged for TX
	// stolen counts frames stages took (ActionStolen) and have not given
	// back (Batch.Reinject).
	stolen int

	// txLen is, by UMEM frame (address >> frameShift), the length of the
	// frame last handed to Transmit: TxBytes counts it at completion.
	txLen      []uint32
	frameShift int

	local   []portTraffic       // this thread's counters, by PortID
	pub     []atomicPortTraffic // published once per batch
	reasons int                 // NumReasons when the worker was made
	// Drops by port and reason, flat: index port*reasons + reason. A
	// drop marks its counter dirty; publish stores only the dirty ones,
	// so its cost follows the drops of the batch, not the reasons that
	// exist.
	drops    []uint64
	pubDrops []atomic.Uint64
	dirty    []bool
	dirtyIdx []int
	// Latency by egress port (PortCounters.Latency): latDirty has, by
	// port, a bit for each bucket that changed since publish.
	lat         []LatencyHistogram
	pubLat      []atomicLatency
	latDirty    []uint32
	latDirtyIdx []int
	stop        atomic.Bool

	faults faults // port states, RX-only and stalled queues (faults.go)

	// capture is the ring of the capture running on the worker, nil if
	// none (capture.go); capRing is it as process loaded it for the
	// batch, capNow the batch's clock reading.
	capture atomic.Pointer[captureRing]
	capRing *captureRing
	capNow  Time

	// trace is the ring of the trace running on the worker, nil if none;
	// tracing is the batch's (trace.go).
	trace   atomic.Pointer[traceRing]
	tracing tracing
}

type queueState struct {
	port   PortID
	q      Queue
	target int        // fill target
	inFill int        // frames given to Fill and not yet received
	tx     []xdp.Desc // staged for Transmit; never over BatchSize + MaxEmitted
	// inTx counts frames handed to Transmit and not yet completed: while
	// it is above 0 every Poll nudges the TX ring, so frames a busy
	// sendto left there leave even if no new frame comes for this queue.
	inTx int
	// waker is the queue's fill-ring wakeup, nil if it has none.
	waker fillWaker
	// rxEmpty is whether the last Receive found nothing: only then can a
	// driver be waiting for a fill-ring wakeup (as libxdp does it).
	rxEmpty bool
}

// fillWaker is the optional part of a Queue whose kernel side must be told
// that its fill ring has frames again (xdp.Socket with need_wakeup: a
// zero-copy driver stops receiving when the fill ring runs dry).
type fillWaker interface {
	FillNeedsWakeup() bool
	WakeFill()
}

// portTraffic is a port's traffic counters on the worker's thread.
type portTraffic struct {
	rxPackets, rxBytes, txPackets, txBytes, consumed uint64
}

// atomicPortTraffic is a port's traffic counters as published.
type atomicPortTraffic struct {
	rxPackets, rxBytes, txPackets, txBytes, consumed atomic.Uint64
}

// maxCPU bounds CPU numbers: a CPU set (unix.CPUSet) holds 1024.
const maxCPU = 1024

// NewWorker returns a worker for cfg.
func NewWorker(cfg WorkerConfig) (*Worker, error) {
	if cfg.Umem == nil || cfg.Pipeline == nil {
		return nil, errors.New("worker: Umem and Pipeline are required")
	}
	if len(cfg.Queues) == 0 {
		return nil, errors.New("worker: no queues")
	}
	if cfg.Clock == nil {
		cfg.Clock = MonotonicClock
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = 50 * time.Millisecond
	}
	uc := cfg.Umem.Config()
	if cfg.FillTarget == 0 {
		cfg.FillTarget = min(int(uc.FillSize), int(uc.FrameCount)/(2*len(cfg.Queues)))
	}
	if cfg.FillTarget < 1 {
		return nil, fmt.Errorf("worker: fill target %d: a UMEM of %d frames is too small for %d queues", cfg.FillTarget, uc.FrameCount, len(cfg.Queues))
	}
	if cfg.Priority < 0 || cfg.Priority > MaxPriority {
		return nil, fmt.Errorf("worker: SCHED_FIFO priority %d: want 0 (none) or 1 to %d", cfg.Priority, MaxPriority)
	}
	w := &Worker{umem: cfg.Umem, pipeline: cfg.Pipeline, groups: cfg.Groups, clock: cfg.Clock, idle: cfg.IdleTimeout}
	w.batch.Frames = NewFrames(cfg.Umem)
	w.txLen = make([]uint32, uc.FrameCount)
	w.frameShift = bits.TrailingZeros32(uc.FrameSize)
	w.out.Frames = w.batch.Frames
	for _, c := range cfg.CPUs {
		if c < 0 || c >= maxCPU {
			return nil, fmt.Errorf("worker: CPU %d: out of range", c)
		}
	}
	w.thread = threadConfig{name: cfg.ThreadName, priority: cfg.Priority, cpus: cfg.CPUs}
	maxPort := 0
	for _, pq := range cfg.Queues {
		if pq.Queue == nil {
			return nil, fmt.Errorf("worker: port %d: nil queue", pq.Port)
		}
		maxPort = max(maxPort, int(pq.Port))
	}
	w.byPort = make([][]int, maxPort+1)
	w.local = make([]portTraffic, maxPort+1)
	w.pub = make([]atomicPortTraffic, maxPort+1)
	w.reasons = NumReasons()
	w.drops = make([]uint64, (maxPort+1)*w.reasons)
	w.pubDrops = make([]atomic.Uint64, len(w.drops))
	w.dirty = make([]bool, len(w.drops))
	w.dirtyIdx = make([]int, 0, len(w.drops))
	w.lat = make([]LatencyHistogram, maxPort+1)
	w.pubLat = make([]atomicLatency, maxPort+1)
	w.latDirty = make([]uint32, maxPort+1)
	w.latDirtyIdx = make([]int, 0, maxPort+1)
	pollable := true
	for i, pq := range cfg.Queues {
		qs := queueState{port: pq.Port, q: pq.Queue, target: cfg.FillTarget, tx: make([]xdp.Desc, 0, BatchSize+MaxEmitted)}
		qs.waker, _ = pq.Queue.(fillWaker)
		w.queues = append(w.queues, qs)
		w.byPort[pq.Port] = append(w.byPort[pq.Port], i)
		if f, ok := pq.Queue.(interface{ FD() int }); ok {
			w.pollFDs = append(w.pollFDs, unix.PollFd{Fd: int32(f.FD()), Events: unix.POLLIN})
		} else {
			pollable = false
		}
	}
	if !pollable {
		w.pollFDs = nil
	}
	w.initFaults(cfg.Queues)
	return w, nil
}

// Run polls until Stop is called, on a locked OS thread. When a poll finds
// no work it blocks in poll(2) on the queues' RX sockets for at most
// IdleTimeout, if every queue has an FD (an *xdp.Socket); otherwise (fake
// queues) it yields the processor and polls again.
//
// With a Priority or a ThreadName, Run first names the thread and makes it
// real-time, and fails if it cannot; it then leaves the calling goroutine
// locked to the thread, so that the thread ends with the goroutine rather
// than serving other goroutines with the worker's name and priority.
func (w *Worker) Run() error {
	runtime.LockOSThread()
	if w.thread.changes() && unix.Gettid() == unix.Getpid() {
		// The process's main thread, which the runtime never ends: it
		// would keep the worker's name, priority and CPUs after Run.
		// Run on another thread (this one stays locked to this
		// goroutine meanwhile, so the new goroutine cannot get it).
		errc := make(chan error, 1)
		go func() { errc <- w.Run() }()
		err := <-errc
		runtime.UnlockOSThread()
		return err
	}
	if w.thread.changes() {
		if err := w.thread.apply(); err != nil {
			return err
		}
	} else {
		defer runtime.UnlockOSThread()
	}
	timeout := int(w.idle / time.Millisecond)
	gov := newRTGovernor(w.thread.priority)
	for !w.stop.Load() {
		gov.tick()
		if w.Poll() {
			continue
		}
		if w.pollFDs == nil {
			// Fake queues: nothing to block on. A real-time thread
			// sleeps in the kernel instead of yielding, which would not
			// let an ordinary thread of its core run.
			if w.thread.priority > 0 {
				_ = unix.Nanosleep(&unix.Timespec{Nsec: 50_000}, nil)
			} else {
				runtime.Gosched()
			}
			continue
		}
		wait := timeout
		if w.txInFlight() {
			// Frames still on a TX ring (a sendto said EAGAIN, or the
			// link is down) are kicked again in a millisecond, not after
			// the whole idle timeout.
			wait = min(wait, 1)
		}
		if _, err := unix.Poll(w.pollFDs, wait); err != nil && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("worker: wait for RX: %w", err)
		}
	}
	return nil
}

// txInFlight reports whether any queue has frames handed to Transmit and
// not yet completed.
func (w *Worker) txInFlight() bool {
	for i := range w.queues {
		if w.queues[i].inTx > 0 {
			return true
		}
	}
	return false
}

// Stop makes Run return within IdleTimeout. It is safe to call from any
// goroutine.
func (w *Worker) Stop() { w.stop.Store(true) }

// Poll runs one iteration: reap completions and top up fill rings on every
// queue, then take one batch off each RX ring, run the pipeline over it and
// transmit the result. It reports whether it found any work. It does not
// block.
func (w *Worker) Poll() (busy bool) {
	completed := w.watch()
	for i := range w.queues {
		q := &w.queues[i]
		if w.complete(i) {
			busy = true
		}
		w.refill(q)
		if q.waker != nil && q.rxEmpty && q.waker.FillNeedsWakeup() {
			q.waker.WakeFill()
		}
		if q.inTx > 0 {
			// Frames an earlier sendto left on the TX ring (over its budget,
			// or EAGAIN) get another kick; with the ring drained this makes
			// no syscall.
			q.q.Transmit(nil)
			w.faults.kicks[i]++
		}
	}
	for i := range w.queues {
		if w.receive(i) {
			busy = true
		}
	}
	if !busy && w.runHeld() {
		busy = true
	}
	if busy || completed {
		w.publish()
	}
	return busy
}

// complete returns the frames queue qi's kernel side completed to the
// free list, and counts them as transmitted unless the queue stalled: then
// they were counted as dropped (DropTxStalled) when it did.
func (w *Worker) complete(qi int) bool {
	q := &w.queues[qi]
	c := &w.local[q.port]
	stalled := w.faults.stalled[qi]
	got := false
	for {
		n := q.q.Complete(w.addrs[:])
		for _, a := range w.addrs[:n] {
			if !stalled {
				c.txBytes += uint64(w.txLen[a>>w.frameShift])
			}
			w.umem.Free(a)
		}
		if !stalled {
			c.txPackets += uint64(n)
			q.inTx -= n
		}
		got = got || n > 0
		if n < len(w.addrs) {
			return got
		}
	}
}

// refill gives free frames to the queue's fill ring, a batch at a time,
// until the queue holds its target. A fill ring that refuses frames is
// smaller than the target: the target drops to what it holds.
func (w *Worker) refill(q *queueState) {
	for need := q.target - q.inFill; need >= min(BatchSize, q.target); need = q.target - q.inFill {
		n := w.umem.Alloc(w.addrs[:min(need, BatchSize)])
		if n == 0 {
			return
		}
		m := q.q.Fill(w.addrs[:n])
		for _, a := range w.addrs[m:n] {
			w.umem.Free(a)
		}
		q.inFill += m
		if m < n {
			q.target = q.inFill
			return
		}
	}
}

// receive takes one batch off queue qi's RX ring and sends it on its way:
// RX ring → Batch → hooks before the copies → a copy per output port →
// per-output hooks → TX rings.
func (w *Worker) receive(qi int) bool {
	q := &w.queues[qi]
	n := q.q.Receive(w.descs[:])
	q.rxEmpty = n == 0
	if n == 0 {
		return false
	}
	q.inFill = max(q.inFill-n, 0)
	w.held += n
	in := &w.local[q.port]
	b := &w.batch
	b.Len = n
	for i, d := range w.descs[:n] {
		b.Packets[i].Reset(d.Addr, w.umem.Frame(d.Addr, d.Len), q.port)
		in.rxPackets++
		in.rxBytes += uint64(d.Len)
	}
	w.process(qi)
	return true
}

// process runs the worker's batch, received on queue qi (or empty, for the
// stages that hold frames), through the pipeline and sends it on: hooks
// before the copies → a copy per output port → per-output hooks → TX.
func (w *Worker) process(qi int) {
	b := &w.batch
	now := w.clock()
	w.capRing, w.capNow = w.capture.Load(), now // the capture's one load per batch
	if w.capRing != nil {
		w.captureIngress(b, now)
		if w.capRing.point == CaptureStage {
			w.pipeline.capture = w.capRing
		}
	}
	if r := w.trace.Load(); r != nil { // the trace's one load per batch
		w.traceIngress(r, b, qi, now)
	}
	b.canEmit = true
	w.pipeline.RunIngress(b, now)
	b.canEmit = false
	w.held += b.emitted + b.reinjected
	w.stolen -= b.reinjected
	if b.emitFailed > 0 {
		w.countN(b.emitFailedOn, DropNoEmit, uint64(b.emitFailed))
	}
	b.emitted, b.emitFailed, b.reinjected = 0, 0, 0
	if toGroup(b) {
		for i := range b.Packets[:b.Len] {
			w.expand(&b.Packets[i], qi, now)
		}
		w.flush(&w.out, now)
	} else {
		w.outputInPlace(b, qi, now)
	}
	w.transmit(now)
	w.capRing, w.pipeline.capture = nil, nil
	if w.pipeline.tr != nil {
		w.tracePublish()
	}
}

// runHeld runs an empty batch through the pipeline when a stage holds
// stolen frames, so that it can reinject them without a frame coming in.
// It reports whether it sent or dropped anything.
func (w *Worker) runHeld() bool {
	if !w.pipeline.Holding() {
		return false
	}
	w.batch.Len = 0
	stolen := w.stolen
	w.process(0)
	return w.stolen != stolen
}

// toGroup reports whether a packet of b goes to a group of ports.
func toGroup(b *Batch) bool {
	for i := range b.Packets[:b.Len] {
		if p := &b.Packets[i]; p.Action == ActionContinue && p.Egress == EgressGroup {
			return true
		}
	}
	return false
}

// actionDone marks a packet the worker already freed and counted before
// the per-output hooks (outputInPlace): no stage works on it, and flush
// leaves it alone.
const actionDone Action = 255

// outputInPlace is expand and flush for a batch without a packet to a
// group: every packet leaving leaves once, so the batch itself is the
// output batch, and no packet is copied. Order within each egress queue
// is the batch's order, as on the copying path.
func (w *Worker) outputInPlace(b *Batch, qi int, now Time) {
	for i := range b.Packets[:b.Len] {
		p := &b.Packets[i]
		switch {
		case w.settled(p, p.InPort):
		case p.Egress != EgressPort:
			w.drop(p, p.InPort, DropNoVerdict)
		default:
			if w.outQ[i] = w.egress(p.OutPort, qi); w.outQ[i] >= 0 {
				continue
			}
			w.drop(p, p.InPort, DropNoEgress)
		}
		p.Action = actionDone
	}
	w.flush(b, now)
}

// egress returns the queue that port's frames from ingress queue qi leave
// on, or -1 if the port has no queue here that can transmit: none with a
// TX queue on its device, all stalled, or the port is down (see faults.go).
// With several queues of one port, ingress queue i uses the port's queue
// i mod n: every flow keeps its order, and no hash is computed.
func (w *Worker) egress(port PortID, qi int) int {
	if int(port) >= len(w.faults.txq) || len(w.faults.txq[port]) == 0 {
		return -1
	}
	qs := w.faults.txq[port]
	return qs[qi%len(qs)]
}

// expand acts on what the hooks before the copies decided for p: it frees
// and counts a dropped packet, or puts a copy of it per output port into
// the output batch.
func (w *Worker) expand(p *Packet, qi int, now Time) {
	if w.settled(p, p.InPort) {
		return
	}
	switch p.Egress {
	case EgressPort:
		if e := w.egress(p.OutPort, qi); e >= 0 {
			w.output(p, p.OutPort, e, now)
			return
		}
		w.drop(p, p.InPort, DropNoEgress)
	case EgressGroup:
		w.expandGroup(p, qi, now)
	default:
		w.drop(p, p.InPort, DropNoVerdict)
	}
}

// expandGroup puts into the output batch a copy of the frame for every
// port of p's group but the ingress port and the frame itself for the
// last: every copy is made from the frame as it came, before any
// per-output stage changes it. A packet the router sends (Routed, Local)
// goes to every port of the group: it comes from the router, not from
// its ingress port.
func (w *Worker) expandGroup(p *Packet, qi int, now Time) {
	last, lastQ := PortID(0), -1
	skip := PortID(MaxPorts) // no port
	if !p.Routed && !p.Local {
		skip = p.InPort
	}
	missing := uint64(0) // ports without an egress queue: copies not made
	for _, port := range w.groups.Ports(p.Group) {
		if port == skip {
			continue
		}
		e := w.egress(port, qi)
		if e < 0 {
			missing++
			continue
		}
		if lastQ >= 0 {
			w.outputCopy(p, last, lastQ, now)
		}
		last, lastQ = port, e
	}
	if lastQ < 0 {
		// No port to send to at all: the frame is one drop.
		w.drop(p, p.InPort, DropNoEgress)
		return
	}
	if missing > 0 {
		w.countN(p.InPort, DropNoEgress, missing)
	}
	w.output(p, last, lastQ, now)
}

// copyOffset is where a copy starts in its chunk: room before it for a
// stage to push a header (a VLAN tag) in place.
const copyOffset = 64

// outputCopy puts a copy of p's frame, in a new chunk, into the output
// batch for port out, queue qi.
func (w *Worker) outputCopy(p *Packet, out PortID, qi int, now Time) {
	if w.umem.Alloc(w.addrs[:1]) == 0 {
		w.count(out, DropNoFreeFrame)
		return
	}
	n := uint32(len(p.Data))
	addr := w.addrs[0]
	if n+copyOffset <= w.umem.Config().FrameSize {
		addr += copyOffset
	}
	w.held++
	c := w.output(p, out, qi, now)
	c.Addr, c.Data = addr, w.umem.Frame(addr, n)
	copy(c.Data, p.Data)
}

// output puts p into the output batch for port out, queue qi, and returns
// the copy there. A full output batch goes through the per-output hooks
// first.
func (w *Worker) output(p *Packet, out PortID, qi int, now Time) *Packet {
	o := &w.out
	if o.Len == len(o.Packets) {
		w.flush(o, now)
	}
	c := &o.Packets[o.Len]
	*c = *p
	c.OutPort = out
	w.outQ[o.Len] = qi
	o.Len++
	return c
}

// flush runs the per-output hooks over o, whose packets each have their
// output port in OutPort and their egress queue in w.outQ, and stages
// what they leave for the TX rings, or frees and counts it on its output
// port.
func (w *Worker) flush(o *Batch, now Time) {
	if o.Len == 0 {
		return
	}
	w.pipeline.RunOutput(o, now)
	if tr := w.pipeline.tr; tr != nil && o == &w.out {
		for k := range tr.n {
			tr.outBase[k] = uint8(min(int(tr.outBase[k])+int(tr.copies[k]), 255))
		}
	}
	if o.emitFailed > 0 {
		// A stage tried to emit in a per-output hook: Emit refuses there.
		w.countN(o.Packets[0].InPort, DropNoEmit, uint64(o.emitFailed))
		o.emitFailed = 0
	}
	for i := range o.Packets[:o.Len] {
		c := &o.Packets[i]
		switch {
		case c.Action == actionDone:
		case w.settled(c, c.OutPort):
		case !w.fits(c.OutPort, len(c.Data)):
			w.drop(c, c.OutPort, DropTooBigForEgress)
		default:
			q := &w.queues[w.outQ[i]]
			q.tx = append(q.tx, xdp.Desc{Addr: c.Addr, Len: uint32(len(c.Data))})
			if c.Trace != 0 {
				w.traceExit(c, TraceExit{Outcome: TraceSent, Port: c.OutPort, Queue: w.outQ[i]})
			}
		}
	}
	o.Len = 0
}

// settled acts on a packet no longer continuing, counting on port: a drop
// is freed and counted under its reason, a consumed packet freed and
// counted as consumed, a stolen one left to its stage. It reports whether
// the packet was one of those.
func (w *Worker) settled(p *Packet, port PortID) bool {
	switch p.Action {
	case ActionDrop:
		w.drop(p, port, p.Reason)
	case ActionConsumed:
		w.umem.Free(p.Addr)
		w.held--
		w.local[port].consumed++
		if p.Trace != 0 {
			w.traceExit(p, TraceExit{Outcome: TraceConsumed, Port: port})
		}
	case ActionStolen:
		w.held--
		w.stolen++
		if p.Trace != 0 {
			w.traceHeld(p, port)
		}
	default:
		return false
	}
	return true
}

// drop frees the packet's frame and counts it on port under reason r.
func (w *Worker) drop(p *Packet, port PortID, r Reason) {
	if c := w.capRing; c != nil && c.point == CaptureDrop {
		c.offer(p.Data, p.InPort, CaptureDrop, r, w.capNow)
	}
	if p.Trace != 0 {
		w.traceExit(p, TraceExit{Outcome: TraceDropped, Port: port, Reason: r})
	}
	w.umem.Free(p.Addr)
	w.held--
	w.count(port, r)
}

// count counts a drop on port under reason r.
func (w *Worker) count(port PortID, r Reason) { w.countN(port, r, 1) }

// countN counts n drops on port under reason r.
func (w *Worker) countN(port PortID, r Reason, n uint64) {
	i := int(port)*w.reasons + int(r)
	w.drops[i] += n
	if !w.dirty[i] {
		w.dirty[i] = true
		w.dirtyIdx = append(w.dirtyIdx, i)
	}
}

// transmit makes one Transmit call per queue with staged frames; frames
// the TX ring does not take are freed and counted as dropped, those it
// takes are counted when they complete. Those it takes also count in
// their port's latency histogram, as having spent the time from rxNow,
// the batch's clock reading, to one clock reading taken before the first
// Transmit.
func (w *Worker) transmit(rxNow Time) {
	txNow := Time(-1) // not read yet: a batch that sends nothing reads no clock
	for i := range w.queues {
		q := &w.queues[i]
		if len(q.tx) == 0 {
			continue
		}
		if txNow < 0 {
			txNow = w.clock()
		}
		n := q.q.Transmit(q.tx)
		q.inTx += n
		if n > 0 {
			w.recordLatency(q.port, txNow-rxNow, n)
		}
		for _, d := range q.tx[:n] {
			w.txLen[d.Addr>>w.frameShift] = d.Len
		}
		if c := w.capRing; c != nil && (c.point == CaptureEgress || c.point == CaptureDrop) {
			// The frames stay ours until they complete: reading them
			// after Transmit races with nothing that writes them.
			w.captureTx(c, q.port, q.tx, n)
		}
		for _, d := range q.tx[n:] {
			w.umem.Free(d.Addr)
			w.count(q.port, DropTxRingFull)
		}
		w.held -= len(q.tx)
		q.tx = q.tx[:0]
	}
}

// recordLatency counts n frames sent on port after d in its latency
// histogram.
func (w *Worker) recordLatency(port PortID, d Time, n int) {
	b := w.lat[port].Record(uint64(max(d, 0)), uint64(n))
	if w.latDirty[port] == 0 {
		w.latDirtyIdx = append(w.latDirtyIdx, int(port))
	}
	w.latDirty[port] |= 1 << b
}

// publish copies the thread's counters into the atomic ones that Counters
// reads, storing only the values that changed.
func (w *Worker) publish() {
	for i := range w.local {
		l, p := &w.local[i], &w.pub[i]
		store(&p.rxPackets, l.rxPackets)
		store(&p.rxBytes, l.rxBytes)
		store(&p.txPackets, l.txPackets)
		store(&p.txBytes, l.txBytes)
		store(&p.consumed, l.consumed)
	}
	for _, i := range w.dirtyIdx {
		w.pubDrops[i].Store(w.drops[i])
		w.dirty[i] = false
	}
	w.dirtyIdx = w.dirtyIdx[:0]
	for _, p := range w.latDirtyIdx {
		w.pubLat[p].store(&w.lat[p], w.latDirty[p])
		w.latDirty[p] = 0
	}
	w.latDirtyIdx = w.latDirtyIdx[:0]
}

func store(a *atomic.Uint64, v uint64) {
	if a.Load() != v {
		a.Store(v)
	}
}

// Counters returns a snapshot of the worker's port counters as of its last
// batch. It is safe to call from any goroutine.
func (w *Worker) Counters() Counters {
	c := Counters{Ports: make([]PortCounters, len(w.pub))}
	for i := range w.pub {
		p, o := &w.pub[i], &c.Ports[i]
		o.RxPackets, o.RxBytes = p.rxPackets.Load(), p.rxBytes.Load()
		o.TxPackets, o.TxBytes = p.txPackets.Load(), p.txBytes.Load()
		o.Consumed = p.consumed.Load()
		o.Latency = w.pubLat[i].load()
		o.Drops = make([]uint64, w.reasons)
		for r := range o.Drops {
			o.Drops[r] = w.pubDrops[i*w.reasons+r].Load()
		}
	}
	return c
}

// Held returns how many frames the worker holds: in its batch or staged
// for TX. Between calls to Poll it is 0; with the free list, the rings and
// Stolen it accounts for every frame of the UMEM.
func (w *Worker) Held() int { return w.held }

// Stolen returns how many frames the worker's stages keep (ActionStolen,
// not yet reinjected).
func (w *Worker) Stolen() int { return w.stolen }

// Pipeline returns the worker's pipeline, for its statistics.
func (w *Worker) Pipeline() *Pipeline { return w.pipeline }
