package nat

import (
	"github.com/xdpfwd/xdpfwd/conntrack"
	"github.com/xdpfwd/xdpfwd/fastpath/header"
)

// TranslateICMPError translates an ICMP (family 4) or ICMPv6 (family 6)
// error related to a connection, as the kernel's
// nf_nat_icmp_reply_translation and nf_nat_icmpv6_reply_translation do
// at a NAT hook whose manipulation is manip. ip is the error from its IP
// header to the end of the IP packet, icmpOff the offset of its ICMP
// header (after any IPv6 extension headers); tuples, status are the
// connection's tuples and status bits, and dir the error's direction in
// it (the kernel's IP_CT_RELATED for the original direction,
// IP_CT_RELATED_REPLY for the reply).
//
// In the kernel's order it:
//
//   - checks that the message holds its header and the quoted IP header,
//     and its checksum (over the pseudo-header for ICMPv6);
//   - refuses a redirect about a connection that is translated, or
//     whose NAT is not set up in both directions;
//   - does nothing more if the connection is not translated on manip's
//     side in this direction (SRC_NAT or DST_NAT, swapped for the
//     reply);
//   - rewrites the quoted packet, which travelled the other way, to the
//     other direction's tuple with the opposite manipulation
//     (ManipPacket's rewrite: its IP header checksum, its transport
//     checksum if quoted far enough (TCP: 20 bytes, SCTP: 12, where the
//     CRC is recomputed over what is quoted), its ports or identifier);
//   - recomputes the ICMP checksum over the whole message;
//   - rewrites the outer header to the inverse of the other direction's
//     tuple with manip (the address, the IPv4 header checksum, for ICMPv6
//     the checksum's pseudo-header).
//
// It returns nil when the error was translated or needs nothing, and an
// Error where the kernel drops the packet. The quoted packet must be an
// IP packet of the error's family (conntrack relates no other); an IPv4
// quote past its first fragment, or an IPv6 one whose extension headers
// end it or cannot be read, gets only its addresses rewritten. ICMP
// errors are never CHECKSUM_PARTIAL, so there is no partial here. It
// allocates nothing.
func TranslateICMPError(ip []byte, family uint8, icmpOff int, tuples *[2]conntrack.Tuple, status conntrack.Status, dir conntrack.Dir, manip Manip) error {
	var ipMin, redirect uint8
	switch family {
	case 4:
		ipMin, redirect = header.IPv4MinSize, header.ICMPv4Redirect
	case 6:
		ipMin, redirect = header.IPv6Size, header.ICMPv6Redirect
	default:
		return ErrFamily
	}
	if icmpOff < int(ipMin) || len(ip) < int(ipMin) {
		return ErrShortIP
	}
	if icmpOff+header.ICMPv4MinSize+int(ipMin) > len(ip) {
		return ErrShortICMP
	}
	msg := ip[icmpOff:]
	if !icmpChecksumOK(ip, family, msg) {
		return ErrICMPChecksum
	}
	const natMask = conntrack.StatusSrcNAT | conntrack.StatusDstNAT
	if msg[0] == redirect {
		const done = conntrack.StatusSrcNATDone | conntrack.StatusDstNATDone
		if status&done != done || status&natMask != 0 {
			return ErrRedirect
		}
	}
	bit := conntrack.StatusSrcNAT
	if manip == Dst {
		bit = conntrack.StatusDstNAT
	}
	if dir == conntrack.DirReply {
		bit ^= natMask
	}
	if status&bit == 0 {
		return nil
	}
	other := &tuples[dir^1]
	if err := manipQuoted(msg[header.ICMPv4MinSize:], family, other, manip.Opposite()); err != nil {
		return err
	}
	target := other.Inverse()
	if family == 4 {
		m := header.ICMPv4(msg)
		m.SetChecksum(0)
		m.SetChecksum(m.CalculateChecksum())
		target.Proto = conntrack.ProtoICMP
		return manipIPv4(ip, icmpOff, &target, manip, false)
	}
	h, m := header.IPv6(ip), header.ICMPv6(msg)
	m.SetChecksum(0)
	m.SetChecksum(m.CalculateChecksum(h.Src(), h.Dst()))
	target.Proto = conntrack.ProtoICMPv6
	return manipIPv6(ip, icmpOff, &target, manip, false)
}

// icmpChecksumOK is nf_ip_checksum and nf_ip6_checksum for an ICMP
// message msg of the packet ip: the sum over the message (and for ICMPv6
// the pseudo-header, with the fixed header's addresses) is all ones.
func icmpChecksumOK(ip []byte, family uint8, msg []byte) bool {
	if family == 4 {
		return header.Checksum(msg, 0) == 0xffff
	}
	h := header.IPv6(ip)
	return header.Checksum(msg, header.PseudoHeaderChecksum6(header.ProtocolICMPv6, h.Src(), h.Dst(), uint32(len(msg)))) == 0xffff
}

// manipQuoted rewrites the packet q an ICMP error quotes (its IP header
// on, to the end of the error) to target with manip, as the kernel runs
// nf_nat_ipv4_manip_pkt and nf_nat_ipv6_manip_pkt on it: the transport
// header where its IP header says (not for an IPv4 fragment but the
// first; for IPv6 where ipv6_skip_exthdr finds it, if it finds it and it
// is not a later fragment's), then the addresses.
func manipQuoted(q []byte, family uint8, target *conntrack.Tuple, manip Manip) error {
	if family == 4 {
		h := header.IPv4(q)
		hl := h.HeaderLength()
		if h.Version() != 4 || hl < header.IPv4MinSize {
			return ErrQuoted
		}
		l4off := hl
		if h.FragmentOffset() != 0 {
			l4off = 0
		}
		return manipIPv4(q, l4off, target, manip, false)
	}
	if header.IPv6(q).Version() != 6 {
		return ErrQuoted
	}
	l4off, _, fragOff, ok := header.IPv6SkipExthdr(q)
	if !ok || fragOff&^7 != 0 {
		l4off = 0
	}
	return manipIPv6(q, l4off, target, manip, false)
}
