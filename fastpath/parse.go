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
//
// Parse sits first at HookIngress (PriorityFirst).
type Parse struct {
	// FlowKeys makes Parse fill each IP packet's flow key (Meta.Flow), for
	// the stages that key by flow (connection tracking, per-flow hashes).
	// A dataplane without them leaves it off: it costs 1–2 ns per packet.
	FlowKeys bool
}

// Name returns "parse".
func (Parse) Name() string { return "parse" }

// Process decodes every packet of b not dropped.
func (s Parse) Process(b *Batch, _ Time) {
	for i := range b.Packets[:b.Len] {
		if p := &b.Packets[i]; p.Action == ActionContinue {
			parse(p, s.FlowKeys)
		}
	}
}

// maxIPv6ExtHeaders bounds the IPv6 extension header walk.
const maxIPv6ExtHeaders = 8

// maxVLANTags is how many stacked tags Parse steps over (QinQ).
const maxVLANTags = 2

func parse(p *Packet, flowKeys bool) {
	d := p.Data
	if len(d) < header.EthernetSize {
		p.Drop(DropMalformed)
		return
	}
	et, typeOff, ok := skipTags(d, header.EthernetSize-2)
	if !ok {
		p.Drop(DropMalformed)
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
	if flowKeys {
		fillFlow(&p.Flow, d, et, &l)
	}
}

// Transport protocols whose first 4 bytes are the source and destination
// ports, and ICMP echo types, for the flow key.
const (
	protoUDPLite        = 136
	icmpEchoReply       = 0
	icmpEchoRequest     = 8
	icmpv6EchoRequest   = 128
	icmpv6EchoReply     = 129
	icmpEchoIDOffset    = 4
	icmpEchoHeaderBytes = 8
)

// fillFlow fills f from the IP packet l of frame d (EtherType et). The
// addresses move as whole words: this runs for every IP packet.
func fillFlow(f *FlowKey, d []byte, et uint16, l *l3Info) {
	ip := d[l.l3Off:]
	if et == header.EtherTypeIPv4 {
		_ = ip[19]
		f.Family = 4
		binary.LittleEndian.PutUint32(f.Src[:4], binary.LittleEndian.Uint32(ip[12:]))
		binary.LittleEndian.PutUint32(f.Dst[:4], binary.LittleEndian.Uint32(ip[16:]))
	} else {
		_ = ip[39]
		f.Family = 6
		f.Src, f.Dst = [16]byte(ip[8:24]), [16]byte(ip[24:40])
	}
	if l.l4Off == 0 {
		return
	}
	f.Proto = l.proto
	l4 := d[l.l4Off:l.l3End]
	switch l.proto {
	case header.ProtocolTCP, header.ProtocolUDP, header.ProtocolSCTP, protoUDPLite:
		if len(l4) >= 4 {
			f.SrcPort, f.DstPort = binary.BigEndian.Uint16(l4), binary.BigEndian.Uint16(l4[2:])
		}
	case header.ProtocolICMP:
		if len(l4) >= icmpEchoHeaderBytes && (l4[0] == icmpEchoRequest || l4[0] == icmpEchoReply) {
			f.SrcPort = binary.BigEndian.Uint16(l4[icmpEchoIDOffset:])
		}
	case header.ProtocolICMPv6:
		if len(l4) >= icmpEchoHeaderBytes && (l4[0] == icmpv6EchoRequest || l4[0] == icmpv6EchoReply) {
			f.SrcPort = binary.BigEndian.Uint16(l4[icmpEchoIDOffset:])
		}
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
