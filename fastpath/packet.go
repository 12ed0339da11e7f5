package fastpath

import "github.com/xdpfwd/xdpfwd/xdp"

// PortID is the index of a port in the dataplane's port table.
type PortID uint16

// MaxPorts bounds port IDs: the FDB packs a port into 15 bits.
const MaxPorts = 1 << 15

// Action is what happens to a packet next: it walks on, or it is dropped.
// Where it goes is a separate decision (Egress): choosing an egress does
// not end processing, so stages at later hooks still see the packet.
type Action uint8

const (
	// ActionContinue: the packet walks on to the next stage.
	ActionContinue Action = iota
	// ActionDrop: the packet is freed and counted under Meta.Reason, on
	// its ingress port before the per-output hooks and on its output
	// port in them.
	ActionDrop
	// ActionConsumed: a stage used the packet up (the router answered
	// it, or learned from it): the worker frees it and counts it as
	// consumed on its ingress port, not as a drop.
	ActionConsumed
	// ActionStolen: a stage keeps the frame (a packet waiting for its
	// next hop's MAC) and gives it back later with Batch.Reinject, or
	// reinjects it dropped. The worker neither frees nor counts it; it
	// counts it among the frames stages hold (Worker.Stolen).
	ActionStolen
)

// String returns the action's name.
func (a Action) String() string {
	switch a {
	case ActionContinue:
		return "continue"
	case ActionDrop:
		return "drop"
	case ActionConsumed:
		return "consumed"
	case ActionStolen:
		return "stolen"
	case actionDone:
		return "done"
	}
	return "action(" + itoa(int(a)) + ")"
}

// Egress is where a packet goes once the hooks before the per-output ones
// are done (see Hook).
type Egress uint8

const (
	// EgressNone: no stage chose an egress; the packet is dropped
	// ("no verdict").
	EgressNone Egress = iota
	// EgressPort: out of port Meta.OutPort.
	EgressPort
	// EgressGroup: out of every port of group Meta.Group (PortGroups)
	// but the ingress port (unless the router sends it: Routed, Local), a
	// copy per port.
	EgressGroup
)

// String returns the egress kind's name.
func (e Egress) String() string {
	switch e {
	case EgressNone:
		return "none"
	case EgressPort:
		return "port"
	case EgressGroup:
		return "group"
	}
	return "egress(" + itoa(int(e)) + ")"
}

// FlowKey is a packet's IP flow, as connection tracking keys it: the
// addresses (IPv4 ones in the first 4 bytes, the rest zero), the protocol
// and the transport ports — for TCP, UDP, UDP-Lite and SCTP the ports, for
// ICMP and ICMPv6 echo requests and replies the identifier in SrcPort (and
// DstPort 0). It is comparable with ==, pointer-free, and 40 bytes.
type FlowKey struct {
	Src, Dst         [16]byte
	SrcPort, DstPort uint16
	// Proto is the transport protocol number (0 for none).
	Proto uint8
	// Family is 4 or 6; 0 means the packet carries no IP flow.
	Family uint8
	_      [2]byte
}

// Meta is the metadata of one frame on its way through the pipeline. It
// holds no pointers: a worker resets it with one assignment, with no
// write barriers, and a field a stage adds starts at zero for every
// packet.
type Meta struct {
	// Addr is the UMEM address of the frame's first byte.
	Addr uint64
	// InPort is the port the frame came in on.
	InPort PortID
	// OutPort is the egress port of EgressPort; in the per-output hooks,
	// the port this copy leaves on.
	OutPort PortID
	// Group is the port group of EgressGroup.
	Group GroupID
	// Reason says why an ActionDrop dropped the packet.
	Reason Reason
	// Action is what happens to the packet next.
	Action Action
	// Egress is where the packet goes (OutPort or Group).
	Egress Egress
	// Local marks a packet a stage emitted (Batch.Emit), as the kernel
	// marks what the host itself sends: it did not come in on InPort.
	Local bool
	// Routed marks a packet handed to the router (a frame to a router
	// interface's MAC): the IP hooks work on it, the bridge's decision
	// does not.
	Routed bool
	// RouteLocal marks a routed packet for the router itself (the
	// routing decision found one of its addresses): the input hook's.
	RouteLocal bool

	// InIface and OutIface are the router interfaces (their index + 1;
	// 0: none) a routed packet came in on and leaves by.
	InIface, OutIface uint16
	// RouteHop is the routing decision's next hop, for the stages of the
	// same batch (route.Result.NextHop).
	RouteHop uint32
	// FragMTU, if not 0, is the output MTU a routed IPv4 packet without
	// DF is longer than: it is fragmented after the postrouting hook.
	FragMTU uint16
	// Mark is the packet's mark, the kernel's skb->mark: nft rules set it
	// (meta mark set) and match it (meta mark) at the later hooks. Every
	// received or emitted packet starts with 0; copies keep it.
	Mark uint32
	// CtState is the packet's connection-tracking state as `ct state`
	// matches it (the conntrack package's State bits: invalid 1,
	// established 2, related 4, new 8, untracked 64); 0 until connection
	// tracking saw the packet (then `ct state` reads invalid, as the
	// kernel's for a packet without a conntrack).
	CtState uint8
	// TraceSerial and TraceID name, for a packet a trace follows, the
	// trace (Trace.Serial) and the packet's record in it
	// (TraceRecord.ID); 0 for none. Unlike Trace they outlive the
	// batch: a stage that holds the packet keeps them in the Meta it
	// saves, and when it gives the packet back (Batch.Reinject) while
	// the same trace runs, the trace follows it again in a record that
	// continues this one. They sit in what was padding after CtState:
	// Meta stays 120 bytes.
	TraceSerial uint16
	TraceID     uint32
	// CtRef names the packet's connection for the conntrack subsystem,
	// which alone interprets it; 0 for none.
	CtRef uint64
	// DstNATed reports that NAT rewrote the packet's destination before
	// the routing decision (the router sends no redirect for it, as the
	// kernel does not).
	DstNATed bool
	// Trace, if not 0, marks a packet a trace follows (trace.go): the
	// batch's generation (8 bits) and the index + 1 of its record in the
	// batch (8 bits). Copies keep it. It is the batch's only: Reinject
	// clears it, and the trace finds a held packet again by TraceSerial
	// and TraceID.
	Trace uint16

	// EtherType is the EtherType of the frame's payload after any VLAN
	// tags Parse stepped over (set by Parse): the L3 protocol.
	EtherType uint16
	// L3Off is the offset of a valid IPv4 or IPv6 header, 0 if the frame
	// carries none (set by Parse).
	L3Off uint16
	// L3End is the end of the IP packet (Ethernet padding excluded).
	L3End uint16
	// L4Off is the offset of the transport header, 0 if there is none:
	// no IP, a fragment, or an IPv6 header chain Parse does not follow.
	L4Off uint16
	// L4Proto is the IP protocol number of the transport header.
	L4Proto uint8
	// Fragment reports an IPv4 or IPv6 fragment.
	Fragment bool

	// IEEE 802.1Q / 802.1ad tags, set by Parse. Parse steps over at most
	// two tags (QinQ: an 802.1ad S-tag, then an 802.1Q C-tag); a frame
	// with a third is decoded as far as EtherType = the third TPID, with
	// L3Off 0.

	// OuterTPID is the TPID of the outermost tag in the frame bytes
	// (header.EtherTypeVLAN or header.EtherTypeQinQ), 0 if the frame is
	// untagged.
	OuterTPID uint16
	// OuterTCI is the outermost tag's tag control information (PCP, DEI,
	// VID: header.VLANVIDMask selects the VID); 0 if untagged.
	OuterTCI uint16

	// VID is the VLAN a VLAN-aware bridge put the frame in, 0 on a
	// VLAN-unaware one (then frames leave as they came).
	VID uint16
	// TCI is the tag control information (PCP, DEI, VID) of the 802.1Q
	// tag the frame carries out of a port that has VID tagged.
	TCI uint16

	// Flow is the packet's IP flow (set by Parse with FlowKeys; Family 0
	// if none).
	Flow FlowKey
}

// Packet is one frame and its metadata.
type Packet struct {
	// Data is the frame, from the Ethernet header on.
	Data []byte
	Meta
}

// Reset makes p the packet of the frame data at UMEM address addr,
// received on port in, with every other field zero.
func (p *Packet) Reset(addr uint64, data []byte, in PortID) {
	p.Data = data
	p.Meta = Meta{Addr: addr, InPort: in}
}

// CopyMeta gives p the metadata of q but keeps p's own frame (Addr and
// Data): for a packet made from another in a fresh frame, such as a clone
// or a fragment.
func (p *Packet) CopyMeta(q *Packet) {
	addr := p.Addr
	p.Meta = q.Meta
	p.Addr = addr
	if q.Trace == 0 {
		// q is a held packet given back and not yet followed again: the
		// trace follows it, not its copies, else it would count one
		// release twice.
		p.TraceSerial, p.TraceID = 0, 0
	}
}

// Drop drops the packet for reason r.
func (p *Packet) Drop(r Reason) {
	p.Action = ActionDrop
	p.Reason = r
}

// ToPort sends the packet out of port out.
func (p *Packet) ToPort(out PortID) {
	p.Egress, p.OutPort = EgressPort, out
}

// ToGroup sends the packet out of every port of group g but its ingress
// port.
func (p *Packet) ToGroup(g GroupID) {
	p.Egress, p.Group = EgressGroup, g
}

// BatchSize is the number of packets a worker takes off an RX ring at once.
const BatchSize = 64

// MaxEmitted is how many packets stages may emit into one batch: one per
// received packet.
const MaxEmitted = BatchSize

// Batch is a batch of packets. The pipeline works on Packets[:Len]: the
// received ones, then those stages emitted.
type Batch struct {
	// Packets holds the packets; only the first Len are in use.
	Packets [BatchSize + MaxEmitted]Packet
	// Len is the number of packets in the batch.
	Len int
	// Frames are the bytes the packets' frames live in (the worker's
	// UMEM), for a stage that grows a frame toward its chunk's start or
	// emits a packet.
	Frames *Frames
	// emitted and emitFailed count Emit's successes and failures since
	// the worker last looked, reinjected Reinject's; emitFailedOn is the
	// port of the last failure.
	emitted, emitFailed, reinjected int
	emitFailedOn                    PortID
	// canEmit is set by the worker while the hooks before the copies run.
	canEmit bool
	// DryRun marks a batch a Simulator runs: a stage must change no
	// shared state for it (no learning, no connection tracked or
	// confirmed, no counter, quota or limit charged, no neighbour
	// resolution started) and hold no packet; it decides as it would.
	DryRun bool
}

// Clone appends to b a copy of p in a fresh frame, for a packet that must
// go two ways (a broadcast a bridge floods and its router interface
// receives too). The copy has p's metadata and bytes; the stages after
// the cloning one see it. It returns nil, counting DropNoEmit on
// p.InPort, as Emit does.
func (b *Batch) Clone(p *Packet) *Packet {
	c := b.Emit(p.InPort, len(p.Data))
	if c == nil {
		return nil
	}
	copy(c.Data, p.Data)
	c.CopyMeta(p)
	return c
}

// Reinject gives back a frame a stage took with ActionStolen: the n bytes
// at UMEM address addr, with the metadata m the stage kept (Meta holds no
// pointers, so a stage keeps it by value). The packet is appended to b,
// and the stages after the reinjecting one see it; the stage sets its
// Action (ActionContinue to send it on, ActionDrop to have it freed and
// counted). It returns nil if b has no room (the stage keeps the frame
// and tries again with a later batch) or b is not a worker's batch
// before the copies. A packet a trace followed when it was held is
// followed again, in a record of its own, if the same trace still runs.
func (b *Batch) Reinject(addr uint64, n int, m *Meta) *Packet {
	if !b.canEmit || b.Len == len(b.Packets) {
		return nil
	}
	p := &b.Packets[b.Len]
	p.Meta = *m
	p.Addr = addr
	p.Data = b.Frames.Frame(addr, uint32(n))
	p.Trace = 0 // the batch's index; TraceSerial and TraceID stay (trace.go: follow)
	b.Len++
	b.reinjected++
	return p
}

// Holder is implemented by a stage that keeps stolen frames (a queue of
// packets waiting for a neighbour): while Holding reports true, the
// worker runs the hooks before the copies at least every IdleTimeout,
// with an empty batch if no frame came, so the stage can reinject them.
type Holder interface {
	Holding() bool
}

// emitOffset is where an emitted packet starts in its chunk: room before
// it for a stage to push a header (a VLAN tag) in place.
const emitOffset = 64

// Emit appends to b a packet of n bytes in a fresh frame, for a stage to
// fill (Data holds n bytes to write) and send on (ToPort, ToGroup). It
// stands for what the router itself sends (ARP requests, ICMP errors,
// echo replies): Local is set, InPort is in, the port whose traffic
// caused it. The stages after the emitting one see it, as the rest of
// the pipeline sees any packet, and the worker sends it and counts it as
// any other. Emit returns nil, and the worker counts a drop (DropNoEmit)
// on in, if the batch has no room, the UMEM no free frame, n does not fit
// a frame, or b is not a worker's batch before the copies (emitting is
// for the hooks before the copies).
func (b *Batch) Emit(in PortID, n int) *Packet {
	if !b.canEmit || b.Len == len(b.Packets) || n < 0 || n+emitOffset > int(b.Frames.umem.Config().FrameSize) {
		b.emitFailed, b.emitFailedOn = b.emitFailed+1, in
		return nil
	}
	var addr [1]uint64
	if b.Frames.umem.Alloc(addr[:]) == 0 {
		b.emitFailed, b.emitFailedOn = b.emitFailed+1, in
		return nil
	}
	a := addr[0] + emitOffset
	p := &b.Packets[b.Len]
	p.Reset(a, b.Frames.Frame(a, uint32(n)), in)
	p.Local = true
	b.Len++
	b.emitted++
	return p
}

// Frames gives stages the bytes around a packet's frame: the worker's
// UMEM.
type Frames struct {
	umem *xdp.Umem
	mask uint64 // chunk size - 1
}

// NewFrames returns the Frames of umem.
func NewFrames(umem *xdp.Umem) *Frames {
	return &Frames{umem: umem, mask: uint64(umem.Config().FrameSize - 1)}
}

// Frame returns the n bytes at address addr.
func (f *Frames) Frame(addr uint64, n uint32) []byte { return f.umem.Frame(addr, n) }

// Headroom returns how many bytes of addr's chunk lie before addr.
func (f *Frames) Headroom(addr uint64) int { return int(addr & f.mask) }

// itoa formats a small non-negative int without fmt, for String methods.
func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for ; n > 0; n /= 10 {
		i--
		b[i] = byte('0' + n%10)
	}
	return string(b[i:])
}
