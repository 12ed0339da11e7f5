package header

import "encoding/binary"

// Rewrites that keep checksums correct.
//
// Every setter in this file changes a field that a checksum covers and
// updates that checksum incrementally (RFC 1624, section 3, eqn. 3):
//
//	HC' = ~(~HC + ~m + m')
//
// where HC is the checksum field, m the old and m' the new value of a
// 16-bit word, and + is one's complement addition. Unlike RFC 1141's
// HC' = HC + m - m', eqn. 3 never produces -0 (0xffff) where a full
// recompute gives +0: for any data that is not all zeros (an IP header
// never is, nor a pseudo-header) the result equals a recompute from
// scratch, bit for bit, whichever of the two zeros the old field held.
//
// Transport checksums (TCP, UDP, ICMPv6) cover a pseudo-header holding
// the IP addresses, so an address change must also reach them: IPv4 and
// IPv6 SetSrc/SetDst update only what the IP header itself carries, and
// the caller then calls UpdatePseudoHeaderAddr4/6 on the transport header
// (or UpdateL4Addr4/6, which dispatches on the protocol number).
//
// A segment a Linux sender left CHECKSUM_PARTIAL (see finish.go) holds in
// its checksum field the folded, non-complemented pseudo-header sum, and
// whoever finishes it (ChecksumFinish, or a device) sums the segment as it
// is then. The transport setters take partial to say so:
//
//   - an address change adjusts the stored sum by (+new - old), not
//     complemented, so that the field again equals the pseudo-header sum
//     over the new addresses (PseudoHeaderChecksum4/6) and the finisher
//     still recognises and finishes it;
//   - a port change leaves the field alone: the ports are in the segment,
//     which the finisher sums.
//
// Deciding partial by "the field equals the pseudo-header sum", as
// FinishChecksum does, is always safe as long as the segment is finished
// afterwards: a full checksum that happens to equal that sum is adjusted
// as a sum, still equals the pseudo-header sum after the rewrite, and the
// finisher then recomputes it from scratch.

// sumAdjust16 returns the folded one's complement sum s after the 16-bit
// word old it covers is replaced by new: s + ~old + new.
func sumAdjust16(s, old, new uint16) uint16 {
	x := uint32(s) + uint32(^old) + uint32(new) // < 3 × 0xffff
	x = x&0xffff + x>>16                        // ≤ 0x10001
	return uint16(x + x>>16)
}

// sumAdjust4 is sumAdjust16 for the two words of an IPv4 address. A
// 32-bit value folds to the one's complement sum of its halves, so the
// complement of the whole is the sum of the complemented halves.
func sumAdjust4(s uint16, old, new [4]byte) uint16 {
	o := ^binary.BigEndian.Uint32(old[:])
	n := binary.BigEndian.Uint32(new[:])
	x := uint64(s) + uint64(o) + uint64(n) // < 3 × 2^32
	x = x&0xffffffff + x>>32               // < 2^32 + 3
	return foldSmall(x)
}

// foldSmall folds a sum below 2^33 to 16 bits.
func foldSmall(x uint64) uint16 {
	x = x&0xffff + x>>16 // < 2^17 + 2^16
	x = x&0xffff + x>>16 // ≤ 0x10001
	return uint16(x + x>>16)
}

// sumAdjust6 is sumAdjust16 for the eight words of an IPv6 address.
func sumAdjust6(s uint16, old, new [16]byte) uint16 {
	acc := uint64(s)
	for i := 0; i < 16; i += 4 {
		acc += uint64(^binary.BigEndian.Uint32(old[i:])) + uint64(binary.BigEndian.Uint32(new[i:]))
	}
	return fold64(acc)
}

// ChecksumUpdate returns the checksum field c of data in which the 16-bit
// aligned word old was replaced by new (RFC 1624, eqn. 3).
func ChecksumUpdate(c, old, new uint16) uint16 { return ^sumAdjust16(^c, old, new) }

// ChecksumUpdateAddr4 returns the checksum field c of data (or of a
// segment whose pseudo-header holds the address) in which the 16-bit
// aligned IPv4 address old was replaced by new (RFC 1624, eqn. 3).
func ChecksumUpdateAddr4(c uint16, old, new [4]byte) uint16 { return ^sumAdjust4(^c, old, new) }

// ChecksumUpdateAddr6 is ChecksumUpdateAddr4 for an IPv6 address.
func ChecksumUpdateAddr6(c uint16, old, new [16]byte) uint16 { return ^sumAdjust6(^c, old, new) }

// TTL and hop limit.

// SetTTL sets the time to live and updates the header checksum.
func (b IPv4) SetTTL(ttl uint8) {
	old := be16(b[ipv4TTL:])
	b[ipv4TTL] = ttl
	b.SetChecksum(ChecksumUpdate(b.Checksum(), old, be16(b[ipv4TTL:])))
}

// DecTTL decrements the time to live, updates the header checksum and
// returns the new TTL. A TTL of 0 is left as it is (0 is returned): the
// caller checks TTL() ≤ 1 before forwarding, as RFC 1812 section 5.3.1
// asks, and the decrement never wraps.
func (b IPv4) DecTTL() uint8 {
	ttl := b[ipv4TTL]
	if ttl == 0 {
		return 0
	}
	b[ipv4TTL] = ttl - 1
	// Eqn. 3 with m' = m - 0x0100: ~m + m' is -0x0100, 0xfeff in one's
	// complement, whatever the protocol byte.
	x := uint32(^b.Checksum()) + 0xfeff
	b.SetChecksum(^uint16(x + x>>16))
	return ttl - 1
}

// SetSrc sets the source address and updates the header checksum. A TCP
// or UDP checksum after the header covers the address too:
// update it with UpdateL4Addr4 (or the view's UpdatePseudoHeaderAddr4).
func (b IPv4) SetSrc(a [4]byte) {
	old := b.Src()
	copy(b[ipv4Src:ipv4Src+4], a[:])
	b.SetChecksum(ChecksumUpdateAddr4(b.Checksum(), old, a))
}

// SetDst sets the destination address and updates the header checksum;
// see SetSrc for the transport checksum.
func (b IPv4) SetDst(a [4]byte) {
	old := b.Dst()
	copy(b[ipv4Dst:ipv4Dst+4], a[:])
	b.SetChecksum(ChecksumUpdateAddr4(b.Checksum(), old, a))
}

// SetHopLimit sets the hop limit (IPv6 has no header checksum).
func (b IPv6) SetHopLimit(h uint8) { b[ipv6HopLimit] = h }

// DecHopLimit decrements the hop limit and returns the new one. A hop
// limit of 0 is left as it is (0 is returned): the caller checks
// HopLimit() ≤ 1 before forwarding (RFC 4443 section 3.3), and the
// decrement never wraps.
func (b IPv6) DecHopLimit() uint8 {
	h := b[ipv6HopLimit]
	if h == 0 {
		return 0
	}
	b[ipv6HopLimit] = h - 1
	return h - 1
}

// SetSrc sets the source address. IPv6 has no header checksum, but the
// TCP, UDP and ICMPv6 checksums cover the address through their pseudo-
// header: update them with UpdateL4Addr6 (or the view's
// UpdatePseudoHeaderAddr6).
func (b IPv6) SetSrc(a [16]byte) { copy(b[ipv6Src:ipv6Src+16], a[:]) }

// SetDst sets the destination address; see SetSrc for the transport
// checksum.
func (b IPv6) SetDst(a [16]byte) { copy(b[ipv6Dst:ipv6Dst+16], a[:]) }

// TCP.

// SetSrcPort sets the source port and updates the checksum; partial says
// the field holds a CHECKSUM_PARTIAL pseudo-header sum, which a port
// change leaves as it is (the finisher sums the port with the segment).
func (b TCP) SetSrcPort(p uint16, partial bool) {
	setPort(b, tcpSrcPort, TCPChecksumOffset, p, partial, false)
}

// SetDstPort sets the destination port and updates the checksum; see
// SetSrcPort for partial.
func (b TCP) SetDstPort(p uint16, partial bool) {
	setPort(b, tcpDstPort, TCPChecksumOffset, p, partial, false)
}

// UpdatePseudoHeaderAddr4 updates the checksum of a TCP segment over IPv4
// after one address of its pseudo-header changed from old to new; partial
// says the field holds a CHECKSUM_PARTIAL pseudo-header sum, which is
// then adjusted to stay the pseudo-header sum over the new address.
func (b TCP) UpdatePseudoHeaderAddr4(old, new [4]byte, partial bool) {
	b.SetChecksum(l4Addr4(b.Checksum(), old, new, partial))
}

// UpdatePseudoHeaderAddr6 is UpdatePseudoHeaderAddr4 for TCP over IPv6.
func (b TCP) UpdatePseudoHeaderAddr6(old, new [16]byte, partial bool) {
	b.SetChecksum(l4Addr6(b.Checksum(), old, new, partial))
}

// UDP. A checksum field of 0 means "no checksum" over IPv4 (RFC 768) and
// stays 0; over IPv6 a zero checksum is invalid except for tunnels (RFC
// 6935), and stays 0 as well, never turned into a wrong non-zero one. A
// full checksum that computes to 0 is sent as 0xffff (RFC 768). A partial
// field holds a pseudo-header sum, never 0.

// SetSrcPort sets the source port and updates the checksum; partial says
// the field holds a CHECKSUM_PARTIAL pseudo-header sum, which a port
// change leaves as it is.
func (b UDP) SetSrcPort(p uint16, partial bool) {
	setPort(b, udpSrcPort, UDPChecksumOffset, p, partial, true)
}

// SetDstPort sets the destination port and updates the checksum; see
// SetSrcPort for partial.
func (b UDP) SetDstPort(p uint16, partial bool) {
	setPort(b, udpDstPort, UDPChecksumOffset, p, partial, true)
}

// UpdatePseudoHeaderAddr4 updates the checksum of a UDP datagram over
// IPv4 after one address of its pseudo-header changed from old to new;
// partial says the field holds a CHECKSUM_PARTIAL pseudo-header sum. A
// field of 0 (no checksum) stays 0.
func (b UDP) UpdatePseudoHeaderAddr4(old, new [4]byte, partial bool) {
	if c := b.Checksum(); c != 0 {
		b.SetChecksum(udpNonZero(l4Addr4(c, old, new, partial)))
	}
}

// UpdatePseudoHeaderAddr6 is UpdatePseudoHeaderAddr4 for UDP over IPv6.
func (b UDP) UpdatePseudoHeaderAddr6(old, new [16]byte, partial bool) {
	if c := b.Checksum(); c != 0 {
		b.SetChecksum(udpNonZero(l4Addr6(c, old, new, partial)))
	}
}

// udpNonZero returns c, or 0xffff for 0: a full UDP checksum that
// computes to 0 is sent as 0xffff (RFC 768). A partial field is never 0
// (a sum over a non-zero pseudo-header), so this leaves it as it is.
func udpNonZero(c uint16) uint16 {
	if c == 0 {
		return 0xffff
	}
	return c
}

// l4Addr4 returns the transport checksum field c after a pseudo-header
// address changed from old to new: the stored sum adjusted for a partial
// field, through the complement otherwise.
func l4Addr4(c uint16, old, new [4]byte, partial bool) uint16 {
	if partial {
		return sumAdjust4(c, old, new)
	}
	return ^sumAdjust4(^c, old, new)
}

// l4Addr6 is l4Addr4 for an IPv6 address.
func l4Addr6(c uint16, old, new [16]byte, partial bool) uint16 {
	if partial {
		return sumAdjust6(c, old, new)
	}
	return ^sumAdjust6(^c, old, new)
}

// setPort writes port p at off in transport header b, whose checksum
// field is at csum; udp applies UDP's zero rules.
func setPort(b []byte, off, csum int, p uint16, partial, udp bool) {
	old := be16(b[off:])
	put16(b[off:], p)
	if partial {
		return
	}
	c := be16(b[csum:])
	if udp && c == 0 {
		return
	}
	c = ChecksumUpdate(c, old, p)
	if udp {
		c = udpNonZero(c)
	}
	put16(b[csum:], c)
}

// UpdateL4Addr4 updates the checksum of the transport segment seg
// (header and payload) of protocol proto in an IPv4 packet after one of
// the packet's addresses changed from old to new; partial says the field
// holds a CHECKSUM_PARTIAL pseudo-header sum. It reports whether the
// segment's checksum is now right for the new address: true for TCP and
// UDP (updated), and for ICMP, SCTP and GRE, whose checksums cover no
// pseudo-header; false, with nothing changed, for another protocol or a
// segment too short for its header. A fragment other than the first has
// no transport header: do not call it for one.
func UpdateL4Addr4(proto uint8, seg []byte, old, new [4]byte, partial bool) bool {
	switch proto {
	case ProtocolTCP:
		if len(seg) < TCPMinSize {
			return false
		}
		TCP(seg).UpdatePseudoHeaderAddr4(old, new, partial)
	case ProtocolUDP:
		if len(seg) < UDPSize {
			return false
		}
		UDP(seg).UpdatePseudoHeaderAddr4(old, new, partial)
	case ProtocolICMP, ProtocolSCTP, ProtocolGRE:
	default:
		return false
	}
	return true
}

// UpdateL4Addr6 is UpdateL4Addr4 for IPv6: TCP, UDP and ICMPv6 are
// updated; SCTP and GRE need nothing; anything else is refused. proto is
// the protocol after any extension headers.
func UpdateL4Addr6(proto uint8, seg []byte, old, new [16]byte, partial bool) bool {
	switch proto {
	case ProtocolTCP:
		if len(seg) < TCPMinSize {
			return false
		}
		TCP(seg).UpdatePseudoHeaderAddr6(old, new, partial)
	case ProtocolUDP:
		if len(seg) < UDPSize {
			return false
		}
		UDP(seg).UpdatePseudoHeaderAddr6(old, new, partial)
	case ProtocolICMPv6:
		if len(seg) < ICMPv6MinSize {
			return false
		}
		ICMPv6(seg).UpdatePseudoHeaderAddr6(old, new, partial)
	case ProtocolSCTP, ProtocolGRE:
	default:
		return false
	}
	return true
}
