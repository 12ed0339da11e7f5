package fastpath

import (
	"sync/atomic"

	"github.com/xdpfwd/xdpfwd/fastpath/header"
)

// Parse is the first stage: it decodes each frame once, so later stages
// read offsets from the Packet instead of parsing again. Only a frame too
// short for an Ethernet header is dropped (DropMalformed): an IP packet
// with a bad header is still a valid frame for a bridge, which forwards it
// as the Linux bridge does; it just gets L3Off 0, so no L3 stage touches it.
type Parse struct{}

// Name returns "parse".
func (Parse) Name() string { return "parse" }

// Process decodes every undecided packet of b.
func (Parse) Process(b *Batch, _ Time) {
	for i := range b.Packets[:b.Len] {
		if p := &b.Packets[i]; p.Verdict == VerdictPending {
			parse(p)
		}
	}
}

// maxIPv6ExtHeaders bounds the IPv6 extension header walk.
const maxIPv6ExtHeaders = 8

func parse(p *Packet) {
	d := p.Data
	if len(d) < header.EthernetSize {
		p.drop(DropMalformed)
		return
	}
	p.EtherType = header.Ethernet(d).EtherType()
	const l3 = header.EthernetSize
	switch p.EtherType {
	case header.EtherTypeIPv4:
		ip := header.IPv4(d[l3:])
		if !ip.IsValid(len(ip)) {
			return
		}
		p.L3Off, p.L3End = l3, l3+ip.TotalLength()
		p.Fragment = ip.IsFragment()
		if ip.FragmentOffset() == 0 {
			setL4(p, ip.Protocol(), l3+ip.HeaderLength())
		}
	case header.EtherTypeIPv6:
		ip := header.IPv6(d[l3:])
		if !ip.IsValid(len(ip)) {
			return
		}
		p.L3Off, p.L3End = l3, l3+header.IPv6Size+ip.PayloadLength()
		end := int(p.L3End)
		nh, off := ip.NextHeader(), l3+header.IPv6Size
		for range maxIPv6ExtHeaders {
			switch nh {
			case header.IPv6HopByHop, header.IPv6DestOptions:
				if off+8 > end {
					return
				}
				nh, off = d[off], off+(int(d[off+1])+1)*8
			case header.IPv6Fragment:
				if off+8 > end {
					return
				}
				p.Fragment = true
				if d[off+2]|d[off+3]&0xf8 != 0 { // not the first fragment
					return
				}
				nh, off = d[off], off+8
			case header.IPv6Routing, header.IPv6NoNext:
				// The pseudo-header of a routed packet uses the final
				// destination; no stage needs that yet.
				return
			default:
				setL4(p, nh, off)
				return
			}
		}
	}
}

// setL4 records the transport header at off if it fits the IP packet
// (TCP and UDP need their whole fixed header).
func setL4(p *Packet, proto uint8, off int) {
	avail := int(p.L3End) - off
	switch {
	case avail < 0,
		proto == header.ProtocolTCP && (avail < header.TCPMinSize || header.TCP(p.Data[off:]).DataOffset() < header.TCPMinSize),
		proto == header.ProtocolUDP && avail < header.UDPSize:
		return
	}
	p.L4Proto, p.L4Off = proto, uint16(off)
}

// ChecksumFinish is an egress stage: it finishes the partial TCP and UDP
// checksums that a veth with TX checksum offload leaves in its frames (see
// header.FinishChecksum) on every packet about to be sent, so receivers do
// not drop them. Fragments are left alone.
type ChecksumFinish struct {
	finished atomic.Uint64
}

// Name returns "checksum".
func (*ChecksumFinish) Name() string { return "checksum" }

// Process finishes the checksums of b's forwarded and flooded packets.
func (c *ChecksumFinish) Process(b *Batch, _ Time) {
	var n uint64
	for i := range b.Packets[:b.Len] {
		p := &b.Packets[i]
		if (p.Verdict != VerdictForward && p.Verdict != VerdictFlood) || p.L4Off == 0 || p.Fragment {
			continue
		}
		if p.L4Proto != header.ProtocolTCP && p.L4Proto != header.ProtocolUDP {
			continue
		}
		seg := p.Data[p.L4Off:p.L3End]
		var pseudo uint16
		if p.EtherType == header.EtherTypeIPv4 {
			pseudo = header.IPv4(p.Data[p.L3Off:]).PseudoHeaderChecksum(p.L4Proto, uint16(len(seg)))
		} else {
			pseudo = header.IPv6(p.Data[p.L3Off:]).PseudoHeaderChecksum(p.L4Proto, uint32(len(seg)))
		}
		if header.FinishChecksum(p.L4Proto, pseudo, seg) {
			n++
		}
	}
	if n != 0 {
		c.finished.Add(n)
	}
}

// Finished returns how many checksums the stage has finished.
func (c *ChecksumFinish) Finished() uint64 { return c.finished.Load() }
