package nat

import (
	"encoding/binary"

	"github.com/xdpfwd/xdpfwd/conntrack"
	"github.com/xdpfwd/xdpfwd/fastpath/header"
)

// manipL4 is the kernel's l4proto_manip_pkt: the transport header of
// protocol target.Proto at l4off in ip gets the manipulated port or
// identifier, and its checksum the address change a. A protocol it does
// not know passes unchanged.
func manipL4(ip []byte, l4off int, a *addrChange, target *conntrack.Tuple, manip Manip, partial bool) error {
	// Past the end, every protocol that needs its header fails below
	// (skb_ensure_writable); one the kernel does not know passes.
	l4 := ip[min(l4off, len(ip)):]
	port := target.SrcPort
	if manip == Dst {
		port = target.DstPort
	}
	switch target.Proto {
	case conntrack.ProtoTCP:
		return manipTCP(l4, a, port, manip, partial)
	case conntrack.ProtoUDP:
		return manipUDP(l4, a, port, manip, partial)
	case protoUDPLite:
		return manipUDPLite(l4, a, port, manip, partial)
	case protoSCTP:
		return manipSCTP(l4, port, manip, partial)
	case conntrack.ProtoICMP:
		return manipICMP(l4, target.SrcPort, partial)
	case conntrack.ProtoICMPv6:
		return manipICMPv6(l4, a, target.SrcPort, partial)
	}
	return nil
}

// portOffset returns the offset of the port a manipulation rewrites in a
// TCP, UDP or SCTP header: source first, destination second.
func portOffset(manip Manip) int {
	if manip == Dst {
		return 2
	}
	return 0
}

// manipTCP is tcp_manip_pkt. Conntrack guarantees 8 bytes of a TCP
// header; a header cut short of its checksum (the quote in an ICMP
// error) gets its port only.
func manipTCP(l4 []byte, a *addrChange, port uint16, manip Manip, partial bool) error {
	if len(l4) < 8 {
		return ErrShortL4
	}
	if len(l4) < header.TCPMinSize {
		binary.BigEndian.PutUint16(l4[portOffset(manip):], port)
		return nil
	}
	t := header.TCP(l4)
	if a.v4 {
		t.UpdatePseudoHeaderAddr4(a.old4, a.new4, partial)
	} else {
		t.UpdatePseudoHeaderAddr6(a.old6, a.new6, partial)
	}
	if manip == Src {
		t.SetSrcPort(port, partial)
	} else {
		t.SetDstPort(port, partial)
	}
	return nil
}

// manipUDP is udp_manip_pkt: the checksum is updated only if it is not 0
// (no checksum), and never left 0 (CSUM_MANGLED_0).
func manipUDP(l4 []byte, a *addrChange, port uint16, manip Manip, partial bool) error {
	if len(l4) < header.UDPSize {
		return ErrShortL4
	}
	u := header.UDP(l4)
	if a.v4 {
		u.UpdatePseudoHeaderAddr4(a.old4, a.new4, partial)
	} else {
		u.UpdatePseudoHeaderAddr6(a.old6, a.new6, partial)
	}
	if manip == Src {
		u.SetSrcPort(port, partial)
	} else {
		u.SetDstPort(port, partial)
	}
	return nil
}

// manipUDPLite is udplite_manip_pkt: UDP's rewrite, but the checksum
// (mandatory in UDP-Lite) is always updated, a 0 included.
func manipUDPLite(l4 []byte, a *addrChange, port uint16, manip Manip, partial bool) error {
	if len(l4) < header.UDPSize {
		return ErrShortL4
	}
	u := header.UDP(l4)
	off := portOffset(manip)
	old := binary.BigEndian.Uint16(l4[off:])
	c := a.update(u.Checksum(), partial)
	if !partial {
		c = header.ChecksumUpdate(c, old, port)
	}
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(l4[off:], port)
	u.SetChecksum(c)
	return nil
}

// manipSCTP is sctp_manip_pkt: the port, then the CRC32c over the rest
// of the packet, unless the header is cut short of its checksum (a quote)
// or the CRC is left to the device.
func manipSCTP(l4 []byte, port uint16, manip Manip, partial bool) error {
	if len(l4) < 8 {
		return ErrShortL4
	}
	binary.BigEndian.PutUint16(l4[portOffset(manip):], port)
	if len(l4) < header.SCTPSize || partial {
		return nil
	}
	s := header.SCTP(l4)
	s.SetChecksum(s.CalculateChecksum())
	return nil
}

// icmpQuery reports whether an ICMP type carries an identifier
// icmp_manip_pkt rewrites: echo, timestamp, information and address mask
// requests and replies.
func icmpQuery(typ uint8) bool {
	switch typ {
	case header.ICMPv4EchoReply, header.ICMPv4Echo, header.ICMPv4Timestamp, header.ICMPv4TimestampReply, 15, 16, 17, 18:
		return true
	}
	return false
}

// manipICMP is icmp_manip_pkt: a query's identifier, with the checksum
// updated as inet_proto_csum_replace2 does (not at all for a partial
// packet). Like the kernel it does not correct the one case RFC 1624's
// update gets wrong for ICMP, a message that becomes all zeros (an echo
// reply with identifier, sequence number and data 0), which it gives
// checksum 0 where a recompute gives 0xffff.
func manipICMP(l4 []byte, id uint16, partial bool) error {
	if len(l4) < header.ICMPv4MinSize {
		return ErrShortL4
	}
	m := header.ICMPv4(l4)
	if !icmpQuery(m.Type()) {
		return nil
	}
	old := m.Ident()
	binary.BigEndian.PutUint16(l4[4:], id)
	if !partial {
		m.SetChecksum(header.ChecksumUpdate(m.Checksum(), old, id))
	}
	return nil
}

// manipICMPv6 is icmpv6_manip_pkt: the pseudo-header address change for
// any message, then an echo's identifier.
func manipICMPv6(l4 []byte, a *addrChange, id uint16, partial bool) error {
	if len(l4) < header.ICMPv6MinSize {
		return ErrShortL4
	}
	m := header.ICMPv6(l4)
	m.SetChecksum(a.update(m.Checksum(), partial))
	if t := m.Type(); t != header.ICMPv6EchoRequest && t != header.ICMPv6EchoReply {
		return nil
	}
	if partial {
		binary.BigEndian.PutUint16(l4[4:], id)
	} else {
		m.SetIdent(id)
	}
	return nil
}
