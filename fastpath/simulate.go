package fastpath

import (
	"errors"
	"fmt"
	"sync"

	"github.com/xdpfwd/xdpfwd/xdp"
)

// A Simulator runs synthetic packets through a pipeline of the running
// subsystems' stages without sending them (OVS's ofproto/trace): the
// batch is a DryRun, so the stages decide as they would on the live path,
// on the same tables, but change none of them; what comes out is a
// TraceRecord, the same walk a live trace records. Its frames live in a
// small UMEM of its own.
type Simulator struct {
	mu     sync.Mutex
	pipe   *Pipeline
	groups *PortGroups
	umem   *xdp.Umem
	frames *Frames
	b, out Batch
	tr     tracing
	closed bool
}

// simFrames is the number of frames of a Simulator's UMEM: the packet,
// its copies to a group's ports, and what stages emit.
const simFrames = 2 * (BatchSize + MaxEmitted)

// NewSimulator returns a Simulator running pipe, which must be a
// pipeline of its own (not a worker's), with groups, the workers' port
// groups.
func NewSimulator(pipe *Pipeline, groups *PortGroups) (*Simulator, error) {
	umem, err := xdp.NewUmem(xdp.UmemConfig{FrameCount: simFrames, FrameSize: 4096})
	if err != nil {
		return nil, fmt.Errorf("simulator: %w", err)
	}
	return &Simulator{pipe: pipe, groups: groups, umem: umem, frames: NewFrames(umem)}, nil
}

// Close releases the simulator's UMEM, once a Run under way ends; Run
// fails after it.
func (s *Simulator) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.umem.Close()
}

// frame copies f into a fresh chunk, at copyOffset, and returns its
// address and bytes.
func (s *Simulator) frame(f []byte) (uint64, []byte, error) {
	var a [1]uint64
	if s.umem.Alloc(a[:]) == 0 {
		return 0, nil, errors.New("simulator: no free frame")
	}
	addr := a[0] + copyOffset
	d := s.umem.Frame(addr, uint32(len(f)))
	copy(d, f)
	return addr, d, nil
}

// Run runs frame f, received on port in, through the pipeline at time
// now, and fills rec with its walk: the steps of every stage and where
// it (or each copy, for a group) would go. Nothing is sent; a packet a
// stage would hold waiting for its neighbour ends as held.
func (s *Simulator) Run(f []byte, in PortID, now Time, rec *TraceRecord) error {
	if len(f) == 0 {
		return errors.New("simulator: an empty frame")
	}
	if room := int(s.umem.Config().FrameSize) - copyOffset; len(f) > room {
		return fmt.Errorf("simulator: a frame of %d bytes: a UMEM frame holds %d (the XDP program drops a longer one as drop_too_big)", len(f), room)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("simulator: closed")
	}
	defer s.freeAll()
	addr, d, err := s.frame(f)
	if err != nil {
		return err
	}
	*rec = TraceRecord{Time: now, Port: in, Queue: -1, Worker: -1, Length: len(f)}
	rec.frameLen = copy(rec.frame[:], f)
	tr := &s.tr
	tr.gen = (tr.gen + 1) & 0xff
	tr.open[0], tr.n = rec, 1
	b := &s.b
	b.Len, b.Frames, b.DryRun, b.canEmit = 1, s.frames, true, true
	b.Packets[0].Reset(addr, d, in)
	b.Packets[0].Trace = tr.gen<<8 | 1
	s.pipe.tr = tr
	defer func() { s.pipe.tr, tr.n = nil, 0 }()
	s.pipe.RunIngress(b, now)
	b.canEmit = false

	o := &s.out
	o.Len, o.Frames, o.DryRun = 0, s.frames, true
	p := &b.Packets[0]
	switch {
	case s.exit(rec, p, in):
	case p.Egress == EgressPort:
		s.copyOut(p, p.OutPort)
	case p.Egress == EgressGroup:
		for _, port := range s.groups.Ports(p.Group) {
			if port != in || p.Routed || p.Local {
				s.copyOut(p, port)
			}
		}
	default:
		rec.addExit(TraceExit{Outcome: TraceDropped, Port: in, Reason: DropNoVerdict})
	}
	if o.Len > 0 {
		s.pipe.RunOutput(o, now)
	}
	for i := range o.Packets[:o.Len] {
		c := &o.Packets[i]
		if !s.exit(rec, c, c.OutPort) {
			rec.addExit(TraceExit{Outcome: TraceSent, Port: c.OutPort, Queue: -1})
		}
	}
	return nil
}

// copyOut puts a copy of p for port into the output batch.
func (s *Simulator) copyOut(p *Packet, port PortID) {
	o := &s.out
	if o.Len == len(o.Packets) {
		return
	}
	addr, d, err := s.frame(p.Data)
	if err != nil {
		return
	}
	c := &o.Packets[o.Len]
	*c = *p
	c.Addr, c.Data, c.OutPort = addr, d, port
	o.Len++
}

// exit adds to rec how p left if it no longer continues (counted on
// port), and reports whether it did.
func (s *Simulator) exit(rec *TraceRecord, p *Packet, port PortID) bool {
	switch p.Action {
	case ActionDrop:
		rec.addExit(TraceExit{Outcome: TraceDropped, Port: port, Reason: p.Reason})
	case ActionConsumed:
		rec.addExit(TraceExit{Outcome: TraceConsumed, Port: port})
	case ActionStolen:
		rec.addExit(TraceExit{Outcome: TraceHeld, Port: port})
	default:
		return false
	}
	return true
}

// freeAll gives every chunk back to the UMEM.
func (s *Simulator) freeAll() {
	seen := map[uint64]bool{}
	for _, bt := range []*Batch{&s.b, &s.out} {
		for i := range bt.Packets[:bt.Len] {
			a := bt.Packets[i].Addr &^ uint64(s.umem.Config().FrameSize-1)
			if !seen[a] {
				seen[a] = true
				s.umem.Free(a)
			}
		}
		bt.Len = 0
	}
}

// addExit adds e to the record's exits, if there is room.
func (r *TraceRecord) addExit(e TraceExit) {
	if r.nexits < maxTraceExits {
		r.exits[r.nexits] = e
		r.nexits++
	}
}
