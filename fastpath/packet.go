package fastpath

// PortID is the index of a port in the dataplane's port table.
type PortID uint16

// MaxPorts bounds port IDs: the FDB packs a port into 15 bits.
const MaxPorts = 1 << 15

// Verdict is what the pipeline decided for a packet.
type Verdict uint8

const (
	// VerdictPending means no stage has decided yet.
	VerdictPending Verdict = iota
	// VerdictForward sends the packet out of OutPort.
	VerdictForward
	// VerdictFlood sends the packet out of every port in FloodPorts but
	// InPort.
	VerdictFlood
	// VerdictDrop drops the packet and counts it under Reason.
	VerdictDrop
)

// String returns the verdict's name.
func (v Verdict) String() string {
	switch v {
	case VerdictPending:
		return "pending"
	case VerdictForward:
		return "forward"
	case VerdictFlood:
		return "flood"
	case VerdictDrop:
		return "drop"
	}
	return "verdict(" + itoa(int(v)) + ")"
}

// DropReason says why a packet was dropped.
type DropReason uint8

const (
	// DropNone is the reason of a packet that was not dropped.
	DropNone DropReason = iota
	// DropMalformed: the frame is shorter than an Ethernet header, or
	// than the VLAN tags it announces (Linux drops those too).
	DropMalformed
	// DropNoBridge: the ingress port belongs to no bridge.
	DropNoBridge
	// DropHairpin: the FDB places the destination on the ingress port.
	DropHairpin
	// DropInvalidSrcMAC: the source MAC is multicast or all zeros.
	DropInvalidSrcMAC
	// DropLinkLocal: the destination is an IEEE 802.1D reserved group
	// address, which a bridge does not forward.
	DropLinkLocal
	// DropNoEgress: a flood found no port but the ingress port, or the
	// egress port has no queue on this worker that can transmit (it is
	// down, or its queue here has no TX queue or stalled).
	DropNoEgress
	// DropNoVerdict: the pipeline left the packet undecided.
	DropNoVerdict
	// DropTxRingFull: the egress TX ring took fewer frames than offered.
	DropTxRingFull
	// DropNoFreeFrame: no free UMEM frame for a flood copy.
	DropNoFreeFrame
	// DropTxStalled: the frame was on a TX ring that stopped completing
	// (fastpath.TxStallTimeout), counted on the egress port.
	DropTxStalled
	// DropVLANFiltered: on a VLAN-aware bridge, the frame's VLAN is not
	// one of the ingress port's (or it came untagged to a port without a
	// PVID), or the FDB's port for the destination is not in the VLAN.
	DropVLANFiltered
	// DropVLANNoRoom: the UMEM frame had no room for the 802.1Q tag the
	// egress port needs.
	DropVLANNoRoom
	// DropTooBigForEgress: the frame is longer than the egress device
	// accepts (Worker.SetPortMaxFrame), counted on the egress port.
	DropTooBigForEgress

	// NumDropReasons is the number of drop reasons, for arrays indexed by
	// DropReason.
	NumDropReasons
)

var dropReasonNames = [NumDropReasons]string{
	DropNone:            "none",
	DropMalformed:       "malformed frame",
	DropNoBridge:        "no bridge on ingress port",
	DropHairpin:         "hairpin",
	DropInvalidSrcMAC:   "invalid source MAC",
	DropLinkLocal:       "link-local destination",
	DropNoEgress:        "no egress port",
	DropNoVerdict:       "no verdict",
	DropTxRingFull:      "TX ring full",
	DropNoFreeFrame:     "no free frame",
	DropTxStalled:       "TX stalled",
	DropVLANFiltered:    "VLAN filtered",
	DropVLANNoRoom:      "no room for VLAN tag",
	DropTooBigForEgress: "too big for egress",
}

// String returns the reason as metrics and the stats verb show it.
func (r DropReason) String() string {
	if r < NumDropReasons {
		return dropReasonNames[r]
	}
	return "drop reason(" + itoa(int(r)) + ")"
}

// Packet is the metadata of one frame on its way through the pipeline.
// Parse fills the decode-once fields; later stages read them instead of
// parsing again.
type Packet struct {
	// Addr is the UMEM address of Data[0].
	Addr uint64
	// Data is the frame, from the Ethernet header on.
	Data []byte
	// InPort is the port the frame came in on.
	InPort PortID
	// OutPort is the egress port of a VerdictForward.
	OutPort PortID
	// Verdict is the pipeline's decision so far.
	Verdict Verdict
	// Reason says why a VerdictDrop dropped the packet.
	Reason DropReason
	// FloodPorts are the ports of a VerdictFlood (InPort among them is
	// skipped). It aliases the bridge's port list: read only.
	FloodPorts []PortID

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

	// VLAN-aware bridging (bridge.go), set by the bridge stage of a bridge
	// with VLANs for the worker, which tags or untags every copy of the
	// frame for its egress port. VID is 0 otherwise (Reset clears it), and
	// then the frame leaves as it came and the rest is not read.

	// VID is the VLAN the bridge put the frame in.
	VID uint16
	// TCI is the tag control information (PCP, DEI, VID) of the 802.1Q tag
	// the frame carries out of a port that has VID tagged.
	TCI uint16
	// vlan is the bridge's VLAN VID: which ports it leaves untagged.
	vlan *bridgeVLAN
}

// Reset makes p the undecided packet of the frame data at UMEM address
// addr, received on port in. It writes each field rather than assigning a
// whole Packet, which would clear and copy all of it with write barriers:
// this runs once per received packet. FloodPorts is left as it was; it is
// only read under VerdictFlood, which sets it.
func (p *Packet) Reset(addr uint64, data []byte, in PortID) {
	p.Addr, p.Data, p.InPort = addr, data, in
	p.OutPort, p.Verdict, p.Reason = 0, VerdictPending, DropNone
	p.EtherType, p.L3Off, p.L3End, p.L4Off, p.L4Proto, p.Fragment = 0, 0, 0, 0, 0, false
	p.OuterTPID, p.OuterTCI = 0, 0
	p.VID = 0
}

// drop sets the packet's verdict to drop for reason r.
func (p *Packet) drop(r DropReason) {
	p.Verdict = VerdictDrop
	p.Reason = r
}

// BatchSize is the number of packets a worker takes off an RX ring at once.
const BatchSize = 64

// Batch is a batch of packets from one RX queue. The pipeline works on
// Packets[:Len].
type Batch struct {
	// Packets holds the metadata; only the first Len are in use.
	Packets [BatchSize]Packet
	// Len is the number of packets in the batch.
	Len int
}

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
