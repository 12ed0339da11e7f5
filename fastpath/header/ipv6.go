package header

import "net/netip"

// IPv6 is an IPv6 fixed header and what follows it (RFC 8200, section 3):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Version| Traffic Class |           Flow Label                  |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|         Payload Length        |  Next Header  |   Hop Limit   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                                                               |
//	+                                                               +
//	|                         Source Address                        |
//	+                                                               +
//	|                                                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                                                               |
//	+                                                               +
//	|                      Destination Address                      |
//	+                                                               +
//	|                                                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
type IPv6 []byte

const (
	ipv6PayloadLen = 4
	ipv6NextHeader = 6
	ipv6HopLimit   = 7
	ipv6Src        = 8
	ipv6Dst        = 24

	// IPv6Size is the size of the IPv6 fixed header.
	IPv6Size = 40
)

// IPv6 extension header numbers (RFC 8200, section 4).
const (
	IPv6HopByHop    = 0
	IPv6Routing     = 43
	IPv6Fragment    = 44
	IPv6DestOptions = 60
	IPv6NoNext      = 59
	IPv6Auth        = 51
)

// Version returns the IP version field (6 for a valid header).
func (b IPv6) Version() uint8 { return b[0] >> 4 }

// PayloadLength returns the length of what follows the fixed header.
func (b IPv6) PayloadLength() uint16 { return be16(b[ipv6PayloadLen:]) }

// NextHeader returns the type of the header after the fixed header.
func (b IPv6) NextHeader() uint8 { return b[ipv6NextHeader] }

// HopLimit returns the hop limit.
func (b IPv6) HopLimit() uint8 { return b[ipv6HopLimit] }

// Src returns the source address.
func (b IPv6) Src() [16]byte { return [16]byte(b[ipv6Src : ipv6Src+16]) }

// Dst returns the destination address.
func (b IPv6) Dst() [16]byte { return [16]byte(b[ipv6Dst : ipv6Dst+16]) }

// SrcAddr returns the source address as a netip.Addr.
func (b IPv6) SrcAddr() netip.Addr { return netip.AddrFrom16(b.Src()) }

// DstAddr returns the destination address as a netip.Addr.
func (b IPv6) DstAddr() netip.Addr { return netip.AddrFrom16(b.Dst()) }

// IsValid reports whether b holds an IPv6 fixed header for a packet of
// pktLen bytes (padding included): version 6 and 40 + payload length ≤
// pktLen. Jumbograms (payload length 0 with a hop-by-hop option) are not
// valid here.
func (b IPv6) IsValid(pktLen int) bool {
	if len(b) < IPv6Size || pktLen > len(b) {
		return false
	}
	return b.Version() == 6 && IPv6Size+int(b.PayloadLength()) <= pktLen
}

// IPv6RoutingHeader is an IPv6 Routing header (RFC 8200, section 4.4) with its
// type-specific data:
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Next Header  |  Hdr Ext Len  |  Routing Type | Segments Left |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                                                               |
//	.                                                               .
//	.                       type-specific data                      .
//	.                                                               .
//	|                                                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Types 0 (RFC 2460, deprecated) and 2 (RFC 6275) carry, after 4 reserved
// bytes, a list of addresses whose last element is the final destination;
// type 4 (Segment Routing, RFC 8754) carries 4 bytes of fields and then
// the segment list in reverse order, Segment List[0] being the final one.
type IPv6RoutingHeader []byte

const (
	ipv6RoutingType         = 2
	ipv6RoutingSegmentsLeft = 3
	ipv6RoutingAddrs        = 8
)

// Length returns the header's length in bytes ((Hdr Ext Len + 1) × 8).
// The view must hold at least 2 bytes.
func (b IPv6RoutingHeader) Length() int { return (int(b[1]) + 1) * 8 }

// FinalDst returns the final destination of a packet with this routing
// header, as the pseudo-header of its transport checksum uses it (RFC
// 8200, section 8.1): fixed, the destination of the fixed IPv6 header,
// once no segment is left; otherwise the last address of a type 0 or 2
// header or Segment List[0] of a type 4 one. ok is false for a header
// shorter than its length, or of another type with segments left (the
// final destination cannot be known from it).
func (b IPv6RoutingHeader) FinalDst(fixed [16]byte) (dst [16]byte, ok bool) {
	if len(b) < ipv6RoutingAddrs || len(b) < b.Length() {
		return dst, false
	}
	if b[ipv6RoutingSegmentsLeft] == 0 {
		return fixed, true
	}
	n := (b.Length() - ipv6RoutingAddrs) / 16
	if n == 0 {
		return dst, false
	}
	switch b[ipv6RoutingType] {
	case 0, 2:
		last := ipv6RoutingAddrs + (n-1)*16
		return [16]byte(b[last : last+16]), true
	case 4:
		return [16]byte(b[ipv6RoutingAddrs : ipv6RoutingAddrs+16]), true
	}
	return dst, false
}

// IsIPv6ExtHeader reports whether next header nh is an extension header
// whose length IPv6ExtLength knows: hop-by-hop options, routing,
// fragment, destination options or authentication.
func IsIPv6ExtHeader(nh uint8) bool {
	switch nh {
	case IPv6HopByHop, IPv6Routing, IPv6Fragment, IPv6DestOptions, IPv6Auth:
		return true
	}
	return false
}

// IPv6ExtLength returns the length in bytes of the extension header of
// type nh (IsIPv6ExtHeader) whose first bytes are b (at least 2):
// hop-by-hop, routing and destination options are (Hdr Ext Len + 1) × 8
// bytes, a fragment header 8, an authentication header (RFC 4302)
// (Payload Len + 2) × 4. It returns 0 for another nh.
func IPv6ExtLength(nh uint8, b []byte) int {
	switch nh {
	case IPv6HopByHop, IPv6Routing, IPv6DestOptions:
		return (int(b[1]) + 1) * 8
	case IPv6Fragment:
		return 8
	case IPv6Auth:
		return (int(b[1]) + 2) * 4
	}
	return 0
}

// IPv6SkipExthdr is the kernel's ipv6_skip_exthdr over the IPv6 packet b
// (fixed header first, at least IPv6Size bytes): the offset of the
// upper-layer header, its protocol and the fragment offset field of a
// fragment header met on the way (a fragment but the first ends the walk
// at its fragment header, proto IPv6Fragment). ok is false where the
// kernel returns -1: a header that is not there to read, or no next
// header. It reads only the bytes the kernel reads (2 of an option
// header, 4 of a fragment header), so the offset may lie past the end of
// b: a caller that reads the transport header checks it.
func IPv6SkipExthdr(b []byte) (off int, proto uint8, fragOff uint16, ok bool) {
	proto, off = IPv6(b).NextHeader(), IPv6Size
	for {
		switch proto {
		case IPv6HopByHop, IPv6Routing, IPv6Fragment, IPv6Auth, IPv6DestOptions:
		case IPv6NoNext:
			return 0, 0, 0, false
		default:
			return off, proto, fragOff, true
		}
		if off+2 > len(b) {
			return 0, 0, 0, false
		}
		var n int
		switch proto {
		case IPv6Fragment:
			if off+4 > len(b) {
				return 0, 0, 0, false
			}
			fragOff = be16(b[off+2:])
			if fragOff&^7 != 0 {
				return off, proto, fragOff, true
			}
			n = 8
		case IPv6Auth:
			n = (int(b[off+1]) + 2) << 2
		default:
			n = (int(b[off+1]) + 1) << 3
		}
		proto, off = b[off], off+n
	}
}
