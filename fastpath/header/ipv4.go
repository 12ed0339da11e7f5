package header

import "net/netip"

// IPv4 is an IPv4 header and what follows it (RFC 791, section 3.1):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Version|  IHL  |Type of Service|          Total Length         |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|         Identification        |Flags|      Fragment Offset    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Time to Live |    Protocol   |         Header Checksum       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                       Source Address                          |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                    Destination Address                        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                    Options                    |    Padding    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
type IPv4 []byte

const (
	ipv4VersIHL  = 0
	ipv4TotalLen = 2
	ipv4FlagsOff = 6
	ipv4TTL      = 8
	ipv4Protocol = 9
	ipv4Checksum = 10
	ipv4Src      = 12
	ipv4Dst      = 16

	// IPv4MinSize is the size of an IPv4 header without options.
	IPv4MinSize = 20

	ipv4MoreFragments = 0x2000
	ipv4OffsetMask    = 0x1fff
)

// IP protocol numbers this package knows (IANA "Assigned Internet Protocol
// Numbers"); IPv6 Next Header uses the same numbers.
const (
	ProtocolICMP   = 1
	ProtocolTCP    = 6
	ProtocolUDP    = 17
	ProtocolICMPv6 = 58
)

// Version returns the IP version field (4 for a valid header).
func (b IPv4) Version() uint8 { return b[ipv4VersIHL] >> 4 }

// HeaderLength returns the header length in bytes (IHL × 4).
func (b IPv4) HeaderLength() int { return int(b[ipv4VersIHL]&0xf) * 4 }

// TotalLength returns the length of the datagram, header included.
func (b IPv4) TotalLength() uint16 { return be16(b[ipv4TotalLen:]) }

// TTL returns the time to live.
func (b IPv4) TTL() uint8 { return b[ipv4TTL] }

// Protocol returns the protocol of the payload.
func (b IPv4) Protocol() uint8 { return b[ipv4Protocol] }

// MoreFragments reports whether the MF flag is set.
func (b IPv4) MoreFragments() bool { return be16(b[ipv4FlagsOff:])&ipv4MoreFragments != 0 }

// FragmentOffset returns the fragment offset in bytes.
func (b IPv4) FragmentOffset() int { return int(be16(b[ipv4FlagsOff:])&ipv4OffsetMask) * 8 }

// IsFragment reports whether the datagram is a fragment: MF set or a
// non-zero offset.
func (b IPv4) IsFragment() bool {
	return be16(b[ipv4FlagsOff:])&(ipv4MoreFragments|ipv4OffsetMask) != 0
}

// Checksum returns the header checksum field.
func (b IPv4) Checksum() uint16 { return be16(b[ipv4Checksum:]) }

// SetChecksum sets the header checksum field.
func (b IPv4) SetChecksum(c uint16) { put16(b[ipv4Checksum:], c) }

// CalculateChecksum returns the checksum the header should carry: the
// complement of the sum of the header with its checksum field as zero.
func (b IPv4) CalculateChecksum() uint16 {
	h := b[:b.HeaderLength()]
	return ^Checksum(h, ^b.Checksum())
}

// Src returns the source address.
func (b IPv4) Src() [4]byte { return [4]byte(b[ipv4Src : ipv4Src+4]) }

// Dst returns the destination address.
func (b IPv4) Dst() [4]byte { return [4]byte(b[ipv4Dst : ipv4Dst+4]) }

// SrcAddr returns the source address as a netip.Addr.
func (b IPv4) SrcAddr() netip.Addr { return netip.AddrFrom4(b.Src()) }

// DstAddr returns the destination address as a netip.Addr.
func (b IPv4) DstAddr() netip.Addr { return netip.AddrFrom4(b.Dst()) }

// Payload returns the bytes from the end of the header to TotalLength.
// Call it only on a header that IsValid.
func (b IPv4) Payload() []byte { return b[b.HeaderLength():b.TotalLength()] }

// IsValid reports whether b holds a well-formed IPv4 header for a packet
// of pktLen bytes (the bytes after the link header, padding included):
// version 4, IHL at least 5, and IHL×4 ≤ total length ≤ pktLen. It does not
// check the header checksum.
func (b IPv4) IsValid(pktLen int) bool {
	if len(b) < IPv4MinSize || pktLen > len(b) {
		return false
	}
	hlen := b.HeaderLength()
	tlen := int(b.TotalLength())
	return b.Version() == 4 && hlen >= IPv4MinSize && hlen <= tlen && tlen <= pktLen
}
