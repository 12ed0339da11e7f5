package bridge

import (
	"encoding/binary"

	"github.com/xdpfwd/xdpfwd/fastpath"
	"github.com/xdpfwd/xdpfwd/fastpath/header"
)

// VLANEgress is the per-output VLAN stage of VLAN-aware bridges, first at
// HookBridgeForward as the Linux bridge's br_handle_vlan runs before its
// forward hook: a copy of a frame on a VLAN (Meta.VID not 0) leaves its
// port untagged if the port's PVID is the frame's VLAN, and with an
// 802.1Q tag (TPID 0x8100, TCI Meta.TCI) otherwise. The frame holds a tag
// in its bytes if it came with an 802.1Q outer tag (Meta.OuterTPID); an
// 802.1ad outer tag stays where it is, inside any tag pushed. The tag sits
// after the 12 bytes of the MAC addresses:
//
//	untagged: | dst (6) | src (6) | EtherType (2) | payload ...
//	tagged:   | dst (6) | src (6) | 0x8100 | TCI  | EtherType (2) | payload ...
//
// so pushing a tag moves the 12 MAC bytes 4 bytes toward the start of the
// UMEM chunk (a received frame has the XDP headroom, 256 bytes, before
// it; the worker puts copies past the start of their chunk too), and
// popping one moves them 4 bytes the other way. Nothing after the tag
// moves; the parsed offsets, counted from the frame's start, move by 4.
// A push that finds no room drops the copy (DropVLANNoRoom, on the output
// port).
type VLANEgress struct {
	set *Set
}

// Name returns "bridge vlan".
func (*VLANEgress) Name() string { return "bridge vlan" }

// Process tags or untags every copy of b on a VLAN for its output port.
func (s *VLANEgress) Process(b *fastpath.Batch, _ fastpath.Time) {
	var (
		in = fastpath.PortID(fastpath.MaxPorts) // no port
		br *Bridge
	)
	for i := range b.Packets[:b.Len] {
		p := &b.Packets[i]
		if p.Action != fastpath.ActionContinue || p.VID == 0 {
			continue
		}
		if p.InPort != in {
			in, br = p.InPort, s.set.Of(p.InPort)
		}
		if !retag(b.Frames, p, !br.vlans[p.VID].untags(p.OutPort)) {
			p.Drop(DropVLANNoRoom)
		}
	}
}

// retag makes the packet's frame leave tagged (want) or untagged: it
// pushes, pops or rewrites the 802.1Q tag in place, moving Addr, Data and
// the parsed offsets with the frame's start. It reports false if a push
// found no room in the chunk.
func retag(frames *fastpath.Frames, p *fastpath.Packet, want bool) bool {
	has := p.OuterTPID == header.EtherTypeVLAN
	d := p.Data
	switch {
	case want && has:
		if p.OuterTCI != p.TCI {
			// A priority tag (VID 0) gets its VLAN's VID.
			binary.BigEndian.PutUint16(d[14:16], p.TCI)
			p.OuterTCI = p.TCI
		}
		return true
	case has:
		copy(d[4:16], d[:12])
		p.Addr += header.VLANTagSize
		p.Data = d[header.VLANTagSize:]
		// An 802.1ad tag inside becomes the outer one.
		p.OuterTPID, p.OuterTCI = 0, 0
		if t := binary.BigEndian.Uint16(p.Data[12:]); header.IsVLANTPID(t) && len(p.Data) >= 16 {
			p.OuterTPID, p.OuterTCI = t, binary.BigEndian.Uint16(p.Data[14:])
		}
		shiftOffsets(p, -header.VLANTagSize)
		return true
	case want:
		n := len(d)
		switch {
		case frames.Headroom(p.Addr) >= header.VLANTagSize:
			d = frames.Frame(p.Addr-header.VLANTagSize, uint32(n+header.VLANTagSize))
			copy(d[:12], d[4:16])
			p.Addr -= header.VLANTagSize
		case cap(d) >= n+header.VLANTagSize:
			// No room before the frame (a UMEM without headroom): move
			// what follows the MACs toward the end instead.
			d = d[:n+header.VLANTagSize]
			copy(d[16:], d[12:n])
		default:
			return false
		}
		binary.BigEndian.PutUint16(d[12:14], header.EtherTypeVLAN)
		binary.BigEndian.PutUint16(d[14:16], p.TCI)
		p.Data = d
		p.OuterTPID, p.OuterTCI = header.EtherTypeVLAN, p.TCI
		shiftOffsets(p, header.VLANTagSize)
	}
	return true
}

// shiftOffsets moves the parsed offsets of p by delta bytes: a tag pushed
// or popped before them.
func shiftOffsets(p *fastpath.Packet, delta int) {
	if p.L3Off == 0 {
		return
	}
	p.L3Off = uint16(int(p.L3Off) + delta)
	p.L3End = uint16(int(p.L3End) + delta)
	if p.L4Off != 0 {
		p.L4Off = uint16(int(p.L4Off) + delta)
	}
}
