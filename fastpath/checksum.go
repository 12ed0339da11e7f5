package fastpath

import (
	"encoding/binary"
	"sync/atomic"

	"github.com/xdpfwd/xdpfwd/fastpath/header"
)

// ChecksumFinish is the device's checksum offload, done in software: it sits
// last at HookEgress and finishes, on every copy about to be sent, the
// checksums that a Linux sender left for its device to
// compute (CHECKSUM_PARTIAL; a veth has TX checksum offload on by
// default), so receivers do not drop them. A frame carries no csum_start,
// so the stage finds the unfinished field from the frame's structure, as
// the kernel's own offloads would have placed it:
//
//   - TCP and UDP over IPv4 or IPv6 (extension headers included; with a
//     routing header, the pseudo-header uses the final destination),
//     after up to two 802.1Q/802.1ad tags: the field holds only the
//     pseudo-header sum (header.FinishChecksum). A UDP checksum of 0
//     (none, over IPv4) stays 0. A UDP datagram whose length field is
//     not the length its IP packet leaves it is left alone, with what it
//     tunnels: a receiver checks it over the UDP length, and no Linux
//     sender leaves such a datagram partial.
//   - SCTP: the CRC32c field holds 0 (header.FinishSCTP).
//   - VXLAN (UDP 4789, or Linux's default 8472), GENEVE (UDP 6081) and
//     GRE (with or without key, sequence number and checksum; Ethernet
//     or IP inside): the inner TCP or UDP checksum is partial. When the
//     outer checksum (UDP, or GRE with its C flag) is present, Linux
//     computed it as if the inner one were finished (local checksum
//     offload), so the inner one is finished only if that turns an outer
//     checksum that does not verify into one that does; with no outer
//     checksum, only if the inner field holds the inner pseudo-header
//     sum. An outer checksum that is itself partial (the inner one
//     complete) is finished instead.
//
// A checksum that is already correct is never changed, and fragments are
// left alone. Only one level of tunnel is looked into.
type ChecksumFinish struct {
	finished atomic.Uint64
}

// Name returns "checksum".
func (*ChecksumFinish) Name() string { return "checksum" }

// Process finishes the checksums of b's packets not dropped.
func (c *ChecksumFinish) Process(b *Batch, _ Time) {
	var n uint64
	for i := range b.Packets[:b.Len] {
		p := &b.Packets[i]
		if p.Action != ActionContinue || p.L4Off == 0 || p.Fragment {
			continue
		}
		if finishL4(p.Data[:p.L3End], p.EtherType, int(p.L3Off), int(p.L4Off), p.L4Proto) {
			n++
		}
	}
	if n != 0 {
		c.finished.Add(n)
	}
}

// Finished returns how many packets the stage has finished a checksum of.
func (c *ChecksumFinish) Finished() uint64 { return c.finished.Load() }

// finishL4 finishes the checksum of the transport header of protocol proto
// at l4Off of the IP packet at l3Off (EtherType et) in d, which ends where
// the IP packet does. It reports whether it changed the frame.
func finishL4(d []byte, et uint16, l3Off, l4Off int, proto uint8) bool {
	seg := d[l4Off:]
	switch proto {
	case header.ProtocolTCP:
	case header.ProtocolUDP:
		u := header.UDP(seg)
		if int(u.Length()) != len(seg) {
			// A receiver checks the datagram the UDP length gives (Linux
			// drops a longer one and trims what follows a shorter one),
			// and no Linux sender leaves such a datagram partial: a
			// checksum over the IP length could break a correct one.
			return false
		}
		switch u.DstPort() {
		case header.UDPPortVXLAN, header.UDPPortVXLANLinux:
			if header.VXLAN(seg[header.UDPSize:]).IsValid() {
				return finishUDPTunnel(d, et, l3Off, l4Off, header.EtherTypeTEB, l4Off+header.UDPSize+header.VXLANSize)
			}
		case header.UDPPortGENEVE:
			if g := header.GENEVE(seg[header.UDPSize:]); g.IsValid() {
				return finishUDPTunnel(d, et, l3Off, l4Off, g.ProtocolType(), l4Off+header.UDPSize+g.HeaderLength())
			}
		}
	case header.ProtocolSCTP:
		return header.FinishSCTP(seg)
	case header.ProtocolGRE:
		return finishGRE(seg)
	default:
		return false
	}
	// TCP, or UDP that carries no tunnel: the field holds the pseudo-
	// header sum if partial (header.FinishChecksum).
	var ps uint16
	if et == header.EtherTypeIPv4 {
		// The common case, without a call.
		ps = header.IPv4(d[l3Off:]).PseudoHeaderChecksum(proto, uint16(len(seg)))
	} else {
		var ok bool
		if ps, ok = pseudoSum(d, et, l3Off, l4Off, proto); !ok {
			return false
		}
	}
	return header.FinishChecksum(proto, ps, seg)
}

// pseudoSum returns the pseudo-header sum of the transport segment
// d[l4Off:] of protocol proto in the IP packet at l3Off. ok is false for
// an IPv6 packet whose routing header does not tell the final
// destination.
func pseudoSum(d []byte, et uint16, l3Off, l4Off int, proto uint8) (sum uint16, ok bool) {
	n := len(d) - l4Off
	if et == header.EtherTypeIPv4 {
		return header.IPv4(d[l3Off:]).PseudoHeaderChecksum(proto, uint16(n)), true
	}
	ip := header.IPv6(d[l3Off:])
	nh := ip.NextHeader()
	if nh == proto && l4Off == l3Off+header.IPv6Size {
		return ip.PseudoHeaderChecksum(proto, uint32(n)), true
	}
	// Extension headers: the walk decodeL3 made, again, to find a routing
	// header (rare; costs a few compares).
	dst := ip.Dst()
	for o := l3Off + header.IPv6Size; o < l4Off && header.IsIPv6ExtHeader(nh); {
		if nh == header.IPv6Routing {
			if dst, ok = header.IPv6RoutingHeader(d[o:l4Off]).FinalDst(dst); !ok {
				return 0, false
			}
		}
		nh, o = d[o], o+header.IPv6ExtLength(nh, d[o:])
	}
	return header.PseudoHeaderChecksum6(proto, ip.Src(), dst, uint32(n)), true
}

// finishUDPTunnel finishes a VXLAN or GENEVE packet: the UDP segment at
// l4Off of the outer IP packet at l3Off carries a payload of type inner
// (header.EtherTypeTEB: an Ethernet frame; or IPv4/IPv6) at innerOff.
func finishUDPTunnel(d []byte, et uint16, l3Off, l4Off int, inner uint16, innerOff int) bool {
	u := header.UDP(d[l4Off:])
	ps, ok := pseudoSum(d, et, l3Off, l4Off, header.ProtocolUDP)
	if !ok {
		return false
	}
	outer := u.Checksum()
	field, sum, innerOK := innerPartial(d, inner, innerOff)
	switch {
	case innerOK && outer == 0:
		// No outer checksum (UDP over IPv4, or a zero-checksum tunnel
		// over IPv6).
	case innerOK && fixesOuter(header.Checksum(u, ps), binary.BigEndian.Uint16(d[field:]), sum):
	case outer == ps:
		// The outer checksum is the partial one: the inner is complete.
		return header.FinishChecksum(header.ProtocolUDP, ps, u)
	default:
		return false
	}
	binary.BigEndian.PutUint16(d[field:], sum)
	return true
}

// finishGRE finishes a GRE packet g (header and payload): a partial inner
// TCP/UDP checksum, or a partial GRE checksum (C flag, field 0: Linux's
// gre_build_header leaves 0 for the device when the payload's checksums
// are complete).
func finishGRE(g []byte) bool {
	gre := header.GRE(g)
	if !gre.IsValid() {
		return false
	}
	field, sum, innerOK := innerPartial(g, gre.ProtocolType(), gre.HeaderLength())
	if !gre.HasChecksum() {
		if !innerOK {
			return false
		}
		binary.BigEndian.PutUint16(g[field:], sum)
		return true
	}
	gsum := header.Checksum(g, 0)
	if innerOK && fixesOuter(gsum, binary.BigEndian.Uint16(g[field:]), sum) {
		binary.BigEndian.PutUint16(g[field:], sum)
		return true
	}
	if gre.Checksum() == 0 && gsum != 0xffff {
		gre.SetChecksum(^gsum)
		return true
	}
	return false
}

// fixesOuter reports whether an outer packet whose data sums (with its
// pseudo-header, if any) to outerSum, which does not verify, verifies once
// an inner word old is replaced by new: Linux's local checksum offload
// computes the outer checksum of a packet with an unfinished inner one as
// if the inner one were finished.
func fixesOuter(outerSum, old, new uint16) bool {
	return outerSum != 0xffff && header.OnesAdd(header.OnesAdd(outerSum, ^old), new) == 0xffff
}

// innerPartial decodes the tunnelled payload of type typ (header.EtherTypeTEB
// for an Ethernet frame, with up to two VLAN tags; IPv4 or IPv6) at off of
// d, which ends with the outer packet. If it holds a TCP or UDP segment
// (not a fragment) whose checksum field holds the pseudo-header sum, it
// returns the field's offset in d and the finished checksum, without
// writing it.
func innerPartial(d []byte, typ uint16, off int) (field int, sum uint16, ok bool) {
	if typ == header.EtherTypeTEB {
		if off+header.EthernetSize > len(d) {
			return 0, 0, false
		}
		var typeOff int
		if typ, typeOff, ok = skipTags(d, off+header.EthernetSize-2); !ok {
			return 0, 0, false
		}
		off = typeOff + 2
	}
	l, ok := decodeL3(d, typ, off)
	if !ok || l.fragment || l.l4Off == 0 {
		return 0, 0, false
	}
	seg := d[l.l4Off:l.l3End]
	switch l.proto {
	case header.ProtocolTCP:
		field = l.l4Off + header.TCPChecksumOffset
	case header.ProtocolUDP:
		if int(header.UDP(seg).Length()) != len(seg) {
			return 0, 0, false // as in finishL4
		}
		field = l.l4Off + header.UDPChecksumOffset
	default:
		return 0, 0, false
	}
	ps, ok := pseudoSum(d[:l.l3End], typ, l.l3Off, l.l4Off, l.proto)
	if !ok || binary.BigEndian.Uint16(d[field:]) != ps {
		return 0, 0, false
	}
	return field, header.FinishedChecksum(l.proto, seg), true
}
