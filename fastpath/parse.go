package fastpath

import (
	"encoding/binary"

	"github.com/xdpfwd/xdpfwd/fastpath/header"
)

// Parse is the first stage: it decodes each frame once, so later stages
// read offsets from the Packet instead of parsing again. It steps over up
// to two IEEE 802.1Q / 802.1ad tags (recording the outer one), then an
// IPv4 or IPv6 header (following IPv6 extension headers) to the transport
// header. Only a frame too short for its Ethernet header or for the VLAN
// tags it announces is dropped (DropMalformed): an IP packet with a bad
// header is still a valid frame for a bridge, which forwards it as the
// Linux bridge does; it just gets L3Off 0, so no L3 stage touches it.
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

// maxVLANTags is how many stacked tags Parse steps over (QinQ).
const maxVLANTags = 2

func parse(p *Packet) {
	d := p.Data
	if len(d) < header.EthernetSize {
		p.drop(DropMalformed)
		return
	}
	et, typeOff, ok := skipTags(d, header.EthernetSize-2)
	if !ok {
		p.drop(DropMalformed)
		return
	}
	if typeOff != header.EthernetSize-2 {
		tag := header.VLAN(d[header.EthernetSize-2:])
		p.OuterTPID, p.OuterTCI = tag.TPID(), tag.TCI()
	}
	p.EtherType = et
	l, ok := decodeL3(d, et, typeOff+2)
	if !ok {
		return
	}
	p.L3Off, p.L3End, p.Fragment = uint16(l.l3Off), uint16(l.l3End), l.fragment
	if l.l4Off != 0 {
		p.L4Proto, p.L4Off = l.proto, uint16(l.l4Off)
	}
}

// skipTags reads the EtherType at typeOff of frame d and steps over up to
// maxVLANTags 802.1Q/802.1ad tags. It returns the EtherType after them
// and the offset where that EtherType lives. ok is false if d ends inside
// a tag or the EtherType after it.
func skipTags(d []byte, typeOff int) (et uint16, off int, ok bool) {
	off = typeOff
	et = binary.BigEndian.Uint16(d[off:])
	for tags := 0; tags < maxVLANTags && header.IsVLANTPID(et); tags++ {
		if off+header.VLANViewSize > len(d) {
			return 0, 0, false
		}
		et = header.VLAN(d[off:]).EtherType()
		off += header.VLANTagSize
	}
	return et, off, true
}

// l3Info is one decoded IP packet inside a frame.
type l3Info struct {
	l3Off, l3End int
	// l4Off is the transport header's offset, 0 if there is none: a
	// fragment other than the first, a header chain Parse does not
	// follow, or a TCP/UDP header that does not fit.
	l4Off    int
	proto    uint8
	fragment bool
}

// decodeL3 decodes the IPv4 or IPv6 packet (EtherType et) at off in d; d
// ends where the packet may end at the latest (the frame, or an outer
// packet's end for a tunnelled one). ok is false if there is no valid IP
// header. It does not allocate.
func decodeL3(d []byte, et uint16, off int) (l l3Info, ok bool) {
	if off > len(d) {
		return l, false
	}
	switch et {
	case header.EtherTypeIPv4:
		ip := header.IPv4(d[off:])
		if !ip.IsValid(len(ip)) {
			return l, false
		}
		l.l3Off, l.l3End = off, off+int(ip.TotalLength())
		l.fragment = ip.IsFragment()
		if ip.FragmentOffset() == 0 {
			setL4(&l, d, ip.Protocol(), off+ip.HeaderLength())
		}
		return l, true
	case header.EtherTypeIPv6:
		ip := header.IPv6(d[off:])
		if !ip.IsValid(len(ip)) {
			return l, false
		}
		l.l3Off, l.l3End = off, off+header.IPv6Size+int(ip.PayloadLength())
		nh, o := ip.NextHeader(), off+header.IPv6Size
		for range maxIPv6ExtHeaders {
			switch {
			case nh == header.IPv6NoNext:
				return l, true
			case !header.IsIPv6ExtHeader(nh):
				setL4(&l, d, nh, o)
				return l, true
			case o+8 > l.l3End: // every extension header has 8 bytes or more
				return l, true
			case nh == header.IPv6Fragment:
				l.fragment = true
				if d[o+2]|d[o+3]&0xf8 != 0 { // not the first fragment
					return l, true
				}
			}
			nh, o = d[o], o+header.IPv6ExtLength(nh, d[o:])
		}
		return l, true
	}
	return l, false
}

// setL4 records the transport header of protocol proto at off in l if it
// fits the IP packet (TCP, UDP and SCTP need their whole fixed header).
func setL4(l *l3Info, d []byte, proto uint8, off int) {
	avail := l.l3End - off
	switch {
	case avail < 0,
		proto == header.ProtocolTCP && (avail < header.TCPMinSize || header.TCP(d[off:]).DataOffset() < header.TCPMinSize),
		proto == header.ProtocolUDP && avail < header.UDPSize,
		proto == header.ProtocolSCTP && avail < header.SCTPSize:
		return
	}
	l.proto, l.l4Off = proto, off
}
