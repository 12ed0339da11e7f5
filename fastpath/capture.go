package fastpath

import (
	"errors"
	"slices"

	"github.com/xdpfwd/xdpfwd/fastpath/cbpf"
	"github.com/xdpfwd/xdpfwd/xdp"
)

// A capture copies the frames that pass one point of the workers (a
// port's ingress, its egress, the drops) and match its filter into a
// bounded ring per worker, for a reader to drain (Capture.Drain). With no
// capture set, a worker pays one atomic pointer load per batch; with one,
// it runs the filter over the packets at the capture's point and port and
// copies the matching ones. A full ring loses the copy (counted, Lost),
// never the packet.

// CapturePoint is where a capture takes packets.
type CapturePoint uint8

// The capture points.
const (
	// CaptureIngress takes the frames a port receives, as received, before
	// any stage works on them.
	CaptureIngress CapturePoint = iota + 1
	// CaptureEgress takes the frames a port transmits, as the TX ring
	// took them: after every rewrite.
	CaptureEgress
	// CaptureDrop takes dropped frames that still hold their bytes, with
	// the drop's reason, on their ingress port (drops at a full TX ring
	// on the egress port: the worker no longer knows the ingress port).
	CaptureDrop
	// CaptureStage takes the frames a named stage (CaptureConfig.Stage)
	// leaves to go on, as it left them, on their ingress port (at a
	// per-output hook, the copy's egress port).
	CaptureStage
)

// String returns the point's name: ingress, egress or drop.
func (p CapturePoint) String() string {
	switch p {
	case CaptureIngress:
		return "ingress"
	case CaptureEgress:
		return "egress"
	case CaptureDrop:
		return "drop"
	case CaptureStage:
		return "stage"
	}
	return "point(" + itoa(int(p)) + ")"
}

// AnyPort, as CaptureConfig.Port, captures on every port.
const AnyPort = PortID(MaxPorts)

// DefaultCaptureRing is the default number of slots of a capture's ring
// on each worker.
const DefaultCaptureRing = 4096

// CaptureConfig describes a capture.
type CaptureConfig struct {
	// Point is where the capture takes packets.
	Point CapturePoint
	// Port is the port it takes them on (the ingress port of a drop), or
	// AnyPort.
	Port PortID
	// Stage is, at CaptureStage, the name of the stage after which the
	// capture takes frames (Pipeline.StageNames); a worker whose pipeline
	// has no such stage takes none.
	Stage string
	// Filter, if not nil, selects the frames: those it returns a length
	// above 0 for (and at most that many bytes of them).
	Filter *cbpf.Program
	// Snaplen bounds the bytes copied of each frame; 0 means the whole
	// frame (at most a UMEM chunk).
	Snaplen int
	// Ring is the number of slots of the ring on each worker, 0 meaning
	// DefaultCaptureRing. It is rounded up to a power of 2.
	Ring int
}

// Capture is a running capture: a ring on each worker it is set on
// (Worker.SetCapture), which Drain empties.
type Capture struct {
	cfg   CaptureConfig
	rings workerRings[*captureRing]
}

// NewCapture returns a capture for cfg, set on no worker yet.
func NewCapture(cfg CaptureConfig) (*Capture, error) {
	switch cfg.Point {
	case CaptureIngress, CaptureEgress, CaptureDrop:
	case CaptureStage:
		if cfg.Stage == "" {
			return nil, errors.New("capture: a stage capture needs the stage's name")
		}
	default:
		return nil, errors.New("capture: point must be ingress, egress, drop or stage")
	}
	if cfg.Snaplen < 0 || cfg.Ring < 0 || cfg.Ring > 1<<20 {
		return nil, errors.New("capture: snaplen and ring must be positive (ring at most 1<<20)")
	}
	cfg.Ring = ringSlots(cfg.Ring, DefaultCaptureRing)
	return &Capture{cfg: cfg}, nil
}

// Config returns the capture's configuration.
func (c *Capture) Config() CaptureConfig { return c.cfg }

// CapturedPacket is one frame a capture took.
type CapturedPacket struct {
	// Time is the worker's clock reading of the batch.
	Time Time
	// Port is the port: the ingress port at CaptureIngress and
	// CaptureDrop, the egress port at CaptureEgress (and for a drop at a
	// full TX ring).
	Port PortID
	// Point is where the frame was taken.
	Point CapturePoint
	// Reason is a drop's reason (CaptureDrop), else ReasonNone.
	Reason Reason
	// Length is the frame's length; Data holds its first bytes (up to the
	// snaplen and what the filter asked).
	Length int
	// Data is the frame's bytes, valid only during Drain's callback.
	Data []byte
}

// captureSlot is a ring slot's metadata; its bytes are in the ring's data
// at the slot's index × snap.
type captureSlot struct {
	time   Time
	length uint32
	capLen uint32
	port   PortID
	reason Reason
	point  CapturePoint
}

// captureRing is one worker's ring: single producer (the worker), single
// consumer (Drain, under the capture's mutex).
type captureRing struct {
	// What the worker matches, copied from the capture's configuration.
	point  CapturePoint
	port   PortID
	filter *cbpf.Program
	snap   uint32
	stage  int // CaptureStage: the stage's index in the worker's pipeline, -1 if it has none

	slots []captureSlot
	data  []byte

	spsc
	// cachedTail is the worker's copy of tail, read again only when it
	// says the ring is full.
	cachedTail uint64

	filtered filterBatch // the worker's
}

// newRing makes a ring for a worker whose frames are at most frameSize
// bytes, and adds it to the capture.
func (c *Capture) newRing(frameSize uint32) *captureRing {
	snap := frameSize
	if c.cfg.Snaplen > 0 && uint32(c.cfg.Snaplen) < snap {
		snap = uint32(c.cfg.Snaplen)
	}
	r := &captureRing{point: c.cfg.Point, port: c.cfg.Port, filter: c.cfg.Filter, snap: snap,
		slots: make([]captureSlot, c.cfg.Ring), data: make([]byte, c.cfg.Ring*int(snap))}
	r.mask = uint64(c.cfg.Ring - 1)
	c.rings.add(r)
	return r
}

// offer copies frame f into the ring if it is on the ring's port and
// passes its filter. The caller checked the point.
func (r *captureRing) offer(f []byte, port PortID, point CapturePoint, reason Reason, now Time) {
	v := r.snap
	if r.filter != nil {
		v = r.filter.Run(f)
	}
	if n := r.take(port, v); n > 0 {
		r.put(f, n, port, point, reason, now)
	}
}

// take returns how many bytes the ring takes of a frame on port for which
// its filter returned v: 0 if the frame is on another port or failed the
// filter.
func (r *captureRing) take(port PortID, v uint32) uint32 {
	if v == 0 || r.port != AnyPort && r.port != port {
		return 0
	}
	return min(r.snap, v)
}

// put copies the first n bytes of frame f into the next slot, or counts
// it lost if the ring is full.
func (r *captureRing) put(f []byte, n uint32, port PortID, point CapturePoint, reason Reason, now Time) {
	h := r.head.Load()
	if h-r.cachedTail > r.mask {
		r.cachedTail = r.tail.Load()
		if h-r.cachedTail > r.mask {
			r.lost.Add(1)
			return
		}
	}
	i := h & r.mask
	n = min(n, uint32(len(f)))
	off := i * uint64(r.snap)
	copy(r.data[off:off+uint64(n)], f)
	r.slots[i] = captureSlot{time: now, length: uint32(len(f)), capLen: n, port: port, reason: reason, point: point}
	r.head.Store(h + 1)
}

// Drain calls fn with each frame the capture's rings hold, worker by
// worker, oldest first, and empties them; a packet's Data is valid only
// during its call. It returns how many it passed. It is safe beside the
// workers, not beside another Drain.
func (c *Capture) Drain(fn func(p *CapturedPacket)) int {
	total := 0
	var p CapturedPacket
	for _, r := range c.rings.all() {
		total += r.consume(func(i uint64) {
			s := &r.slots[i]
			off := i * uint64(r.snap)
			p = CapturedPacket{Time: s.time, Port: s.port, Point: s.point, Reason: s.reason, Length: int(s.length),
				Data: r.data[off : off+uint64(s.capLen) : off+uint64(s.capLen)]}
			fn(&p)
		})
	}
	return total
}

// Lost returns how many matching frames the capture lost to a full ring.
func (c *Capture) Lost() uint64 { return c.rings.lost() }

// SetCapture starts capture c on the worker, with a ring of its own (made
// here, not on the worker's thread), or stops the worker's capture if c
// is nil. The worker takes it up at its next batch. It is safe to call
// from any goroutine. After SetCapture(nil) the worker may still finish
// a batch into the old ring; Drain it once more after a batch's time.
func (w *Worker) SetCapture(c *Capture) {
	if c == nil {
		w.capture.Store(nil)
		return
	}
	r := c.newRing(w.umem.Config().FrameSize)
	r.stage = -1
	if c.cfg.Point == CaptureStage {
		r.stage = slices.Index(w.pipeline.StageNames(), c.cfg.Stage)
	}
	w.capture.Store(r)
}

// captureStage copies into capture ring c the packets of b that the stage
// at hook h left to go on.
func captureStage(c *captureRing, b *Batch, h Hook, now Time) {
	pkts := b.Packets[:b.Len]
	for i, v := range c.filtered.packets(c.filter, c.snap, pkts) {
		p := &pkts[i]
		if v == 0 || p.Action != ActionContinue {
			continue
		}
		port := p.InPort
		if h.PerOutput() {
			port = p.OutPort
		}
		if n := c.take(port, v); n > 0 {
			c.put(p.Data, n, port, CaptureStage, ReasonNone, now)
		}
	}
}

// captureIngress copies the batch's received packets into the capture ring
// if it takes ingress.
func (w *Worker) captureIngress(b *Batch, now Time) {
	r := w.capRing
	if r == nil || r.point != CaptureIngress {
		return
	}
	pkts := b.Packets[:b.Len]
	for i, v := range r.filtered.packets(r.filter, r.snap, pkts) {
		if v == 0 {
			continue // the common case, first
		}
		p := &pkts[i]
		if n := r.take(p.InPort, v); n > 0 {
			r.put(p.Data, n, p.InPort, CaptureIngress, ReasonNone, now)
		}
	}
}

// captureTx copies into capture ring c the frames of port's queue that
// its TX ring took (tx[:n], egress) or refused (tx[n:], drops).
func (w *Worker) captureTx(c *captureRing, port PortID, tx []xdp.Desc, n int) {
	if c.point == CaptureEgress {
		w.captureDescs(c, port, tx[:n], CaptureEgress, ReasonNone)
	} else {
		w.captureDescs(c, port, tx[n:], CaptureDrop, DropTxRingFull)
	}
}

// captureDescs offers capture ring c the frames of descs, on port, at
// point, for reason; it runs the filter over up to a batch of them at once.
func (w *Worker) captureDescs(c *captureRing, port PortID, descs []xdp.Desc, point CapturePoint, reason Reason) {
	if c.port != AnyPort && c.port != port {
		return
	}
	for len(descs) > 0 {
		chunk := descs[:min(len(descs), len(c.filtered.frames))]
		descs = descs[len(chunk):]
		for i, v := range c.filtered.descs(c.filter, c.snap, w.umem, chunk) {
			if n := min(c.snap, v); n > 0 {
				c.put(c.filtered.frames[i], n, port, point, reason, w.capNow)
			}
		}
	}
}
