package header

// A frame sent by a Linux veth with TX checksum offload on (the default)
// carries CHECKSUM_PARTIAL TCP and UDP segments: the checksum field holds
// only the folded, non-complemented pseudo-header sum, and the device is
// expected to finish it. AF_XDP copy mode hands such frames over as they
// are, so a forwarder must finish them or the receiver drops them.
//
// Finishing is a plain recompute over the segment as it is: with the
// pseudo-header sum already in the field, the sum of the segment is the sum
// of pseudo-header and segment, and its complement is the checksum. The
// same recompute on a segment whose correct checksum happens to equal the
// pseudo-header sum yields that checksum again, so the test "field equals
// the pseudo-header sum" never damages a correct segment. A segment whose
// checksum is neither is left as it is: the receiver drops it, as it would
// on the kernel path.

// FinishChecksum finishes the partial checksum of a TCP or UDP segment
// (header and payload, as long as the IP header says) whose pseudo-header
// sum is pseudo (from PseudoHeaderChecksum4 or 6, over len(segment)). If
// the checksum field equals pseudo it writes the full checksum
// (FinishedChecksum) and returns true; otherwise, or for another protocol,
// a segment too short for its header or a UDP datagram whose length field
// is not len(segment), it changes nothing and returns false. A receiver
// checks a UDP datagram over its length field (Linux trims the bytes after
// it, and drops a datagram longer than its IP packet), and a Linux sender
// never leaves partial a datagram whose length field and IP length
// disagree; finishing one over the IP length could break a correct
// checksum.
func FinishChecksum(proto uint8, pseudo uint16, segment []byte) bool {
	off, ok := PartialChecksum(proto, pseudo, segment)
	if !ok {
		return false
	}
	put16(segment[off:], FinishedChecksum(proto, segment))
	return true
}

// PartialChecksum reports whether a TCP or UDP (proto) segment's checksum
// is left for the device to finish (CHECKSUM_PARTIAL: its field holds the
// pseudo-header sum pseudo), under FinishChecksum's conditions, and where
// the field is.
func PartialChecksum(proto uint8, pseudo uint16, segment []byte) (off int, ok bool) {
	switch proto {
	case ProtocolTCP:
		if len(segment) < TCPMinSize {
			return 0, false
		}
		off = TCPChecksumOffset
	case ProtocolUDP:
		if len(segment) < UDPSize || int(UDP(segment).Length()) != len(segment) {
			return 0, false
		}
		off = UDPChecksumOffset
	default:
		return 0, false
	}
	return off, be16(segment[off:]) == pseudo
}

// FinishedChecksum returns the checksum a TCP or UDP (proto) segment must
// carry whose checksum field holds its pseudo-header sum: the complement
// of the segment's sum, which then covers the pseudo-header too. A UDP
// checksum that computes to 0 is 0xffff (RFC 768; 0 means "no checksum").
func FinishedChecksum(proto uint8, segment []byte) uint16 {
	c := ^Checksum(segment, 0)
	if c == 0 && proto == ProtocolUDP {
		c = 0xffff
	}
	return c
}

// FinishIPv4 finishes the partial TCP or UDP checksum of the IPv4 packet
// ip (see FinishChecksum). It does nothing and returns false for an
// invalid header, a fragment or another protocol.
func FinishIPv4(ip IPv4) bool {
	if !ip.IsValid(len(ip)) || ip.IsFragment() {
		return false
	}
	seg := ip.Payload()
	proto := ip.Protocol()
	return FinishChecksum(proto, PseudoHeaderChecksum4(proto, ip.Src(), ip.Dst(), uint16(len(seg))), seg)
}

// FinishIPv6 finishes the partial TCP or UDP checksum of the IPv6 packet
// ip, whose transport header of protocol proto starts at l4Off (after any
// extension headers; see FinishChecksum). It does nothing and returns
// false for an invalid header or an l4Off outside the packet. The pseudo-
// header uses the destination of the fixed header, so a caller must not
// pass a packet with a routing header.
func FinishIPv6(ip IPv6, proto uint8, l4Off int) bool {
	if !ip.IsValid(len(ip)) {
		return false
	}
	end := IPv6Size + int(ip.PayloadLength())
	if l4Off < IPv6Size || l4Off > end {
		return false
	}
	seg := ip[l4Off:end]
	return FinishChecksum(proto, PseudoHeaderChecksum6(proto, ip.Src(), ip.Dst(), uint32(len(seg))), seg)
}

// FinishSCTP finishes the CRC32c of an SCTP packet (common header and
// chunks) that Linux left for the device: an SCTP stack sending through a
// device with NETIF_F_SCTP_CRC (veth has it) leaves the checksum field 0
// (sctp_packet_pack: CHECKSUM_PARTIAL, csum_not_inet). If the field is 0
// it writes the CRC32c and returns true; otherwise, or for a packet
// shorter than the common header, it changes nothing and returns false. A
// packet whose correct CRC is 0 gets 0 again: a correct checksum is never
// changed.
func FinishSCTP(packet []byte) bool {
	if len(packet) < SCTPSize {
		return false
	}
	s := SCTP(packet)
	if s.Checksum() != 0 {
		return false
	}
	s.SetChecksum(s.CalculateChecksum())
	return true
}

// OnesAdd returns the one's complement sum of a and b (RFC 1071), for
// updating a folded sum: replacing a 16-bit word old by new in data whose
// sum is s gives OnesAdd(OnesAdd(s, ^old), new).
func OnesAdd(a, b uint16) uint16 {
	s := uint32(a) + uint32(b)
	return uint16(s&0xffff + s>>16)
}
