package fastpath

import (
	"encoding/binary"

	"github.com/xdpfwd/xdpfwd/fastpath/header"
)

// VLAN egress: a frame a VLAN-aware bridge forwards (Packet.VID not 0)
// leaves a port untagged if the port's PVID is the frame's VLAN, and with
// an 802.1Q tag (TPID 0x8100, TCI Packet.TCI) otherwise. The frame holds a
// tag in its bytes if it came with an 802.1Q outer tag (Packet.OuterTPID);
// an 802.1ad outer tag stays where it is, inside any tag pushed. The tag
// sits after the 12 bytes of the MAC addresses:
//
//	untagged: | dst (6) | src (6) | EtherType (2) | payload ...
//	tagged:   | dst (6) | src (6) | 0x8100 | TCI  | EtherType (2) | payload ...
//
// so pushing a tag moves the 12 MAC bytes 4 bytes toward the start of the
// UMEM chunk (a received frame has the XDP headroom, 256 bytes, before
// it; a TX descriptor may point anywhere in its chunk), and popping one
// moves them 4 bytes the other way. Nothing after the tag moves.

// tagged reports whether the packet leaves port out with an 802.1Q tag,
// and whether its frame holds one now.
func (p *Packet) tagged(out PortID) (want, has bool) {
	return !p.vlan.untags(out), p.OuterTPID == header.EtherTypeVLAN
}

// retag makes the packet's own frame what port out must send: it pushes,
// pops or rewrites the 802.1Q tag in place, moving Addr and Data with the
// frame's start. It reports false if a push found no room in the chunk.
func (w *Worker) retag(p *Packet, out PortID) bool {
	if p.VID == 0 {
		return true
	}
	want, has := p.tagged(out)
	d := p.Data
	switch {
	case want && has:
		if p.OuterTCI != p.TCI {
			// A priority tag (VID 0) gets its VLAN's VID.
			binary.BigEndian.PutUint16(d[14:16], p.TCI)
		}
	case has:
		copy(d[4:16], d[:12])
		p.Addr += 4
		p.Data = d[4:]
	case want:
		n := len(d)
		switch {
		case p.Addr&uint64(w.umem.Config().FrameSize-1) >= header.VLANTagSize:
			d = w.umem.Frame(p.Addr-header.VLANTagSize, uint32(n+header.VLANTagSize))
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
		putTag(d, p.TCI)
		p.Data = d
	}
	return true
}

// copyFrame writes the packet's frame, as port out must send it, into the
// chunk at addr and returns its length. It reports false if the frame
// with a pushed tag does not fit a chunk.
func (w *Worker) copyFrame(p *Packet, addr uint64, out PortID) (int, bool) {
	d := p.Data
	n := len(d)
	if p.VID == 0 {
		copy(w.umem.Frame(addr, uint32(n)), d)
		return n, true
	}
	want, has := p.tagged(out)
	switch {
	case want == has:
		f := w.umem.Frame(addr, uint32(n))
		copy(f, d)
		if has && p.OuterTCI != p.TCI {
			binary.BigEndian.PutUint16(f[14:16], p.TCI)
		}
		return n, true
	case has:
		f := w.umem.Frame(addr, uint32(n-header.VLANTagSize))
		copy(f[:12], d[:12])
		copy(f[12:], d[16:])
		return len(f), true
	default:
		if n+header.VLANTagSize > int(w.umem.Config().FrameSize) {
			return 0, false
		}
		f := w.umem.Frame(addr, uint32(n+header.VLANTagSize))
		copy(f[:12], d[:12])
		putTag(f, p.TCI)
		copy(f[16:], d[12:])
		return len(f), true
	}
}

// putTag writes an 802.1Q tag with tci after the MAC addresses of frame f.
func putTag(f []byte, tci uint16) {
	binary.BigEndian.PutUint16(f[12:14], header.EtherTypeVLAN)
	binary.BigEndian.PutUint16(f[14:16], tci)
}
