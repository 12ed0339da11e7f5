package conntrack

import (
	"fmt"
	"net/netip"
)

// Tuple is one direction of a connection, as the kernel's
// nf_conntrack_tuple: addresses, the transport's identifiers, protocol,
// family and zone. It holds no pointers and is comparable.
//
// For TCP, UDP and other port protocols SrcPort and DstPort are the
// ports. For ICMP and ICMPv6 queries (echo and the other request/reply
// pairs) SrcPort is the identifier and DstPort is type<<8 | code, as the
// kernel keeps src.u.icmp.id and dst.u.icmp.{type,code}. For protocols
// without identifiers both are 0.
type Tuple struct {
	// Src and Dst are the addresses; an IPv4 address fills the first 4
	// bytes and leaves the rest 0.
	Src, Dst [16]byte
	// SrcPort and DstPort: see the type's comment.
	SrcPort, DstPort uint16
	// Proto is the IP protocol number.
	Proto uint8
	// Family is 4 or 6.
	Family uint8
	// Zone is the conntrack zone (0 by default): equal tuples in
	// different zones are different connections.
	Zone uint16
}

// IP protocol numbers the tracker knows by name.
const (
	ProtoICMP   = 1
	ProtoTCP    = 6
	ProtoUDP    = 17
	ProtoICMPv6 = 58
)

// ICMPQueryReply returns the type of the reply to an ICMP (family 4) or
// ICMPv6 (family 6) query or reply of type typ, and whether typ is one
// the kernel tracks as a connection (the invmap of
// nf_conntrack_proto_icmp.c and nf_conntrack_proto_icmpv6.c).
func ICMPQueryReply(family, typ uint8) (uint8, bool) {
	if family == 6 {
		switch typ {
		case 128, 139: // echo request, node information query
			return typ + 1, true
		case 129, 140:
			return typ - 1, true
		}
		return 0, false
	}
	switch typ {
	case 8: // echo request
		return 0, true
	case 0:
		return 8, true
	case 13, 15, 17: // timestamp, info, address mask requests
		return typ + 1, true
	case 14, 16, 18:
		return typ - 1, true
	}
	return 0, false
}

// IsICMPQuery reports whether an ICMP or ICMPv6 message of type typ opens
// a connection: a request (the kernel's "valid_new": echo, timestamp,
// info and address mask requests; ICMPv6 echo request and node
// information query). Replies only match an existing entry.
func IsICMPQuery(family, typ uint8) bool {
	if family == 6 {
		return typ == 128 || typ == 139
	}
	return typ == 8 || typ == 13 || typ == 15 || typ == 17
}

// Reverse returns the tuple of the other direction when nothing is
// translated: addresses and ports swapped, ICMP query types mapped to
// their replies. ok is false for an ICMP type without a reply.
func (t Tuple) Reverse() (r Tuple, ok bool) {
	r = t
	r.Src, r.Dst = t.Dst, t.Src
	if r.SrcPort, r.DstPort, ok = reversePorts(t.Family, t.Proto, t.SrcPort, t.DstPort); !ok {
		return Tuple{}, false
	}
	return r, true
}

// reversePorts returns the port fields of the reply to a packet with
// ports sport and dport: swapped, or for an ICMP query the identifier
// kept and the type its reply's; ok is false for an ICMP type without a
// reply.
func reversePorts(family, proto uint8, sport, dport uint16) (rsport, rdport uint16, ok bool) {
	switch proto {
	case ProtoICMP, ProtoICMPv6:
		rt, ok := ICMPQueryReply(family, uint8(dport>>8))
		if !ok {
			return 0, 0, false
		}
		return sport, uint16(rt)<<8 | dport&0xff, true
	}
	return dport, sport, true
}

// Inverse returns the tuple of the other direction, as
// nf_ct_invert_tuple: Reverse, and for an ICMP type without a reply
// (which Reverse refuses) the addresses swapped with identifier, type and
// code 0, as the kernel leaves them.
func (t *Tuple) Inverse() Tuple {
	r := Tuple{Src: t.Dst, Dst: t.Src, Proto: t.Proto, Family: t.Family, Zone: t.Zone}
	r.SrcPort, r.DstPort, _ = reversePorts(t.Family, t.Proto, t.SrcPort, t.DstPort)
	return r
}

// SrcAddr returns the source address.
func (t *Tuple) SrcAddr() netip.Addr { return t.addr(&t.Src) }

// DstAddr returns the destination address.
func (t *Tuple) DstAddr() netip.Addr { return t.addr(&t.Dst) }

func (t *Tuple) addr(a *[16]byte) netip.Addr {
	if t.Family == 4 {
		return netip.AddrFrom4([4]byte(a[:4]))
	}
	return netip.AddrFrom16(*a)
}

// SetAddrs sets the family and both addresses (both IPv4 or both IPv6).
func (t *Tuple) SetAddrs(src, dst netip.Addr) {
	t.Src, t.Dst = [16]byte{}, [16]byte{}
	if src.Is4() {
		t.Family = 4
		s, d := src.As4(), dst.As4()
		copy(t.Src[:], s[:])
		copy(t.Dst[:], d[:])
		return
	}
	t.Family = 6
	t.Src, t.Dst = src.As16(), dst.As16()
}

// String formats the tuple as the fields of a `conntrack -L` line:
// "src=10.0.0.1 dst=10.0.0.2 sport=1000 dport=80", or for ICMP
// "src=… dst=… type=8 code=0 id=1".
func (t Tuple) String() string {
	s := fmt.Sprintf("src=%s dst=%s", t.SrcAddr(), t.DstAddr())
	switch t.Proto {
	case ProtoICMP, ProtoICMPv6:
		return s + fmt.Sprintf(" type=%d code=%d id=%d", t.DstPort>>8, t.DstPort&0xff, t.SrcPort)
	case ProtoTCP, ProtoUDP, 33, 132, 136: // TCP, UDP, DCCP, SCTP, UDP-Lite
		return s + fmt.Sprintf(" sport=%d dport=%d", t.SrcPort, t.DstPort)
	}
	return s
}
