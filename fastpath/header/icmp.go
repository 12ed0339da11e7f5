package header

import "encoding/binary"

// ICMPv4 is an ICMP message for IPv4 (RFC 792): a header and what follows
// it, to the end of the IP payload.
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     Type      |     Code      |          Checksum             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                     Rest of header                            |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     Payload: echo data, or the offending datagram's IP        |
//	|     header and first bytes for an error ...                   |
//
// The rest of the header is, for echo request and reply, the identifier
// (bytes 4-5) and sequence number (6-7); for destination unreachable with
// code "fragmentation needed" an unused word and the next-hop MTU (6-7,
// RFC 1191 section 4); for parameter problem the pointer (byte 4);
// unused (zero) for the other errors. The checksum covers the whole
// message and no pseudo-header.
//
// Setters of a field the checksum covers keep the checksum correct
// (RFC 1624). A view must hold ICMPv4MinSize bytes (IsValid).
type ICMPv4 []byte

const (
	icmpType     = 0
	icmpCode     = 1
	icmpChecksum = 2
	icmpRest     = 4
	icmpIdent    = 4
	icmpSeq      = 6
	icmpMTU      = 6

	// ICMPv4MinSize is the size of an ICMPv4 header: type, code,
	// checksum and the rest-of-header word.
	ICMPv4MinSize = 8
)

// ICMPv4 types (RFC 792, RFC 1812).
const (
	ICMPv4EchoReply        = 0
	ICMPv4DestUnreachable  = 3
	ICMPv4SourceQuench     = 4
	ICMPv4Redirect         = 5
	ICMPv4Echo             = 8
	ICMPv4TimeExceeded     = 11
	ICMPv4ParameterProblem = 12
	ICMPv4Timestamp        = 13
	ICMPv4TimestampReply   = 14
)

// ICMPv4 destination unreachable codes (RFC 792, RFC 1122 section
// 3.2.2.1, RFC 1812 section 5.2.7.1).
const (
	ICMPv4NetUnreachable   = 0
	ICMPv4HostUnreachable  = 1
	ICMPv4ProtoUnreachable = 2
	ICMPv4PortUnreachable  = 3
	// ICMPv4FragmentationNeeded is "fragmentation needed and DF set"; the
	// rest-of-header word carries the next-hop MTU (RFC 1191).
	ICMPv4FragmentationNeeded = 4
	ICMPv4SourceRouteFailed   = 5
	ICMPv4NetUnknown          = 6
	ICMPv4HostUnknown         = 7
	ICMPv4NetProhibited       = 9
	ICMPv4HostProhibited      = 10
	// ICMPv4AdminProhibited is "communication administratively
	// prohibited" (RFC 1812), what Linux sends for an nft
	// "reject with icmp admin-prohibited".
	ICMPv4AdminProhibited = 13
)

// ICMPv4 time exceeded codes (RFC 792).
const (
	ICMPv4TTLExceeded        = 0
	ICMPv4ReassemblyExceeded = 1
)

// icmpv4MaxKnownType is Linux's NR_ICMP_TYPES: types above it are
// treated as errors.
const icmpv4MaxKnownType = 18

// ICMPv4IsError reports whether an ICMPv4 type is an error message, the
// way Linux's icmp_pointers table decides when refusing to send an error
// about an error: destination unreachable, source quench, redirect, time
// exceeded, parameter problem, the unassigned or obsolete types 1, 2, 6,
// 7, 9 and 10, and every type above 18. Echo, timestamp, information and
// address mask requests and replies are not.
func ICMPv4IsError(typ uint8) bool {
	if typ > icmpv4MaxKnownType {
		return true
	}
	switch typ {
	case ICMPv4EchoReply, ICMPv4Echo, ICMPv4Timestamp, ICMPv4TimestampReply, 15, 16, 17, 18:
		return false
	}
	return true
}

// IsValid reports whether b is long enough for an ICMPv4 header.
func (b ICMPv4) IsValid() bool { return len(b) >= ICMPv4MinSize }

// Type returns the message type.
func (b ICMPv4) Type() uint8 { return b[icmpType] }

// Code returns the message code.
func (b ICMPv4) Code() uint8 { return b[icmpCode] }

// Checksum returns the checksum field.
func (b ICMPv4) Checksum() uint16 { return be16(b[icmpChecksum:]) }

// SetChecksum sets the checksum field.
func (b ICMPv4) SetChecksum(c uint16) { put16(b[icmpChecksum:], c) }

// SetType sets the message type and updates the checksum.
func (b ICMPv4) SetType(t uint8) {
	old := be16(b[icmpType:])
	b[icmpType] = t
	b.updateChecksum(old, be16(b[icmpType:]))
}

// SetCode sets the message code and updates the checksum.
func (b ICMPv4) SetCode(c uint8) {
	old := be16(b[icmpType:])
	b[icmpCode] = c
	b.updateChecksum(old, be16(b[icmpType:]))
}

// updateChecksum updates the checksum for a word changed from old to new
// (RFC 1624, eqn. 3). ICMPv4 has no pseudo-header, so unlike the other
// checksums here its message can be all zeros, the one case where eqn. 3
// gives +0 (0x0000) where only -0 (0xffff) verifies: that case is
// corrected.
func (b ICMPv4) updateChecksum(old, new uint16) {
	c := ChecksumUpdate(b.Checksum(), old, new)
	if c == 0 && isZero(b[icmpRest:]) && be16(b) == 0 {
		c = 0xffff
	}
	b.SetChecksum(c)
}

// isZero reports whether every byte of b is 0.
func isZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

// RestOfHeader returns the 32-bit word after the checksum.
func (b ICMPv4) RestOfHeader() uint32 { return binary.BigEndian.Uint32(b[icmpRest:]) }

// SetRestOfHeader sets the 32-bit word after the checksum and updates
// the checksum.
func (b ICMPv4) SetRestOfHeader(w uint32) {
	old := be16(b[icmpRest:])
	put16(b[icmpRest:], uint16(w>>16))
	b.updateChecksum(old, uint16(w>>16))
	old = be16(b[icmpRest+2:])
	put16(b[icmpRest+2:], uint16(w))
	b.updateChecksum(old, uint16(w))
}

// Ident returns the identifier of an echo request or reply.
func (b ICMPv4) Ident() uint16 { return be16(b[icmpIdent:]) }

// SetIdent sets the identifier of an echo request or reply and updates
// the checksum (what a NAT rewrites in place of a port).
func (b ICMPv4) SetIdent(id uint16) {
	old := be16(b[icmpIdent:])
	put16(b[icmpIdent:], id)
	b.updateChecksum(old, id)
}

// Seq returns the sequence number of an echo request or reply.
func (b ICMPv4) Seq() uint16 { return be16(b[icmpSeq:]) }

// MTU returns the next-hop MTU of a "fragmentation needed" message (RFC
// 1191 section 4); 0 from a router that predates RFC 1191.
func (b ICMPv4) MTU() uint16 { return be16(b[icmpMTU:]) }

// Payload returns what follows the header: the echo data, or the quoted
// datagram of an error.
func (b ICMPv4) Payload() []byte { return b[ICMPv4MinSize:] }

// CalculateChecksum returns the checksum the message should carry: the
// complement of the sum of the whole message with the checksum field as
// zero. An all-zero message (an echo reply with identifier, sequence
// number and data all zero) gets 0xffff, the only value a receiver
// accepts for it.
func (b ICMPv4) CalculateChecksum() uint16 {
	return ^Checksum(b[icmpRest:], Checksum(b[:icmpChecksum], 0))
}

// IsError reports whether the message is an error (ICMPv4IsError).
func (b ICMPv4) IsError() bool { return ICMPv4IsError(b.Type()) }
