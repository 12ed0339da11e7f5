package nat

import (
	"github.com/xdpfwd/xdpfwd/conntrack"
	"github.com/xdpfwd/xdpfwd/fastpath/header"
)

// Protocol numbers of the header package, by short names.
const (
	protoSCTP = header.ProtocolSCTP
	protoGRE  = header.ProtocolGRE
)

// ManipPacket rewrites the packet ip (from its IP header to the end of
// the IP packet, no link padding) of family 4 or 6 so that it matches
// target on the manipulated side, as the kernel's nf_nat_manip_pkt does
// with the inverse of the other direction's tuple: manip Src sets the
// source address and port to target's, Dst the destination's; an ICMP or
// ICMPv6 echo (or other query) gets target's identifier (SrcPort)
// either way. target.Proto says the transport protocol, whose header
// starts at l4off; l4off ≤ 0 means the packet has none (an IPv6 fragment
// but the first, an extension chain that cannot be walked), and an IPv4
// fragment other than the first is recognised from its header: such a
// packet gets only its addresses rewritten. Checksums are updated
// incrementally, as the kernel's csum_replace4 and inet_proto_csum_replace*
// do: the IPv4 header checksum; the TCP, UDP, UDP-Lite and ICMPv6
// checksums for the pseudo-header address and the port or identifier (a
// UDP checksum of 0 stays 0, a result of 0 is sent as 0xffff); the ICMP
// checksum for the identifier; SCTP's CRC32c recomputed over the rest of
// the packet. A TCP or SCTP header cut short after its ports gets its
// ports only. partial says the transport checksum is left for a device
// to finish (CHECKSUM_PARTIAL: a TCP, UDP or UDP-Lite field holds the
// pseudo-header sum, which follows the address change but not the port;
// an SCTP CRC is not computed; an identifier change leaves ICMP
// checksums alone, as the kernel does for such skbs). Other protocols
// (DCCP and GRE included, see the package comment) get the address
// rewrite only. It allocates nothing; it fails, with an Error, where the
// kernel's would: an IP or transport header too short.
func ManipPacket(ip []byte, family uint8, l4off int, target *conntrack.Tuple, manip Manip, partial bool) error {
	switch family {
	case 4:
		if len(ip) < header.IPv4MinSize {
			return ErrShortIP
		}
		if header.IPv4(ip).FragmentOffset() != 0 {
			l4off = 0
		}
		return manipIPv4(ip, l4off, target, manip, partial)
	case 6:
		if len(ip) < header.IPv6Size {
			return ErrShortIP
		}
		return manipIPv6(ip, l4off, target, manip, partial)
	}
	return ErrFamily
}

// manipIPv4 is nf_nat_ipv4_manip_pkt: the transport rewrite (at l4off,
// if positive), then the address with the header checksum.
func manipIPv4(ip []byte, l4off int, target *conntrack.Tuple, manip Manip, partial bool) error {
	h := header.IPv4(ip)
	a := addrChange{v4: true}
	if manip == Src {
		a.old4, a.new4 = h.Src(), [4]byte(target.Src[:4])
	} else {
		a.old4, a.new4 = h.Dst(), [4]byte(target.Dst[:4])
	}
	if l4off > 0 {
		if err := manipL4(ip, l4off, &a, target, manip, partial); err != nil {
			return err
		}
	}
	if manip == Src {
		h.SetSrc(a.new4)
	} else {
		h.SetDst(a.new4)
	}
	return nil
}

// manipIPv6 is nf_nat_ipv6_manip_pkt: the transport rewrite (at l4off,
// if positive), then the address (IPv6 has no header checksum).
func manipIPv6(ip []byte, l4off int, target *conntrack.Tuple, manip Manip, partial bool) error {
	h := header.IPv6(ip)
	a := addrChange{}
	if manip == Src {
		a.old6, a.new6 = h.Src(), target.Src
	} else {
		a.old6, a.new6 = h.Dst(), target.Dst
	}
	if l4off > 0 {
		if err := manipL4(ip, l4off, &a, target, manip, partial); err != nil {
			return err
		}
	}
	if manip == Src {
		h.SetSrc(a.new6)
	} else {
		h.SetDst(a.new6)
	}
	return nil
}

// addrChange is the address a manipulation replaces, for the transport
// checksums whose pseudo-header holds it (the kernel's nf_csum_update).
type addrChange struct {
	v4         bool
	old4, new4 [4]byte
	old6, new6 [16]byte
}

// update returns the transport checksum field c after the address
// change: adjusted through its complement, or, partial, as the
// pseudo-header sum it holds (inet_proto_csum_replace4/16 with
// pseudohdr true).
func (a *addrChange) update(c uint16, partial bool) uint16 {
	if partial {
		return ^a.update(^c, false)
	}
	if a.v4 {
		return header.ChecksumUpdateAddr4(c, a.old4, a.new4)
	}
	return header.ChecksumUpdateAddr6(c, a.old6, a.new6)
}
