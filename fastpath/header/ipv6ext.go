package header

import "encoding/binary"

// IPv6OptionsHeader is a hop-by-hop or destination options header (RFC
// 8200, sections 4.3 and 4.6):
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Next Header  |  Hdr Ext Len  |                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               +
//	|                                                               |
//	.                                                               .
//	.                            Options                            .
//	.                                                               .
//	|                                                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// The options are TLVs (a type byte, a length byte, the data) but for
// Pad1, a single zero byte. The two high bits of an option's type say
// what a node that does not know it does (RFC 8200, section 4.2): skip
// it (00), drop the packet (01), drop it with an ICMPv6 parameter
// problem (10), or with one unless the destination is multicast (11).
// A view must hold Length() bytes, 2 at least.
type IPv6OptionsHeader []byte

// Length returns the header's length in bytes ((Hdr Ext Len + 1) × 8).
func (b IPv6OptionsHeader) Length() int { return (int(b[1]) + 1) * 8 }

// IPv6 option types (RFC 8200, RFC 2711, RFC 2675, RFC 5570, RFC 6275,
// RFC 9486) Linux acts on. The home address option (RFC 6275) is
// unknown to a kernel without mobile IPv6 (this one).
const (
	IPv6OptPad1        = 0
	IPv6OptPadN        = 1
	IPv6OptRouterAlert = 5
	IPv6OptCALIPSO     = 7
	IPv6OptIOAM        = 0x31
	IPv6OptJumbo       = 0xc2
)

// ipv6MaxOpts is net.ipv6.max_hbh_opts_number and max_dst_opts_number:
// the most options (padding aside) Linux takes in one header.
const ipv6MaxOpts = 8

// IPv6Verdict is what Linux does with an IPv6 packet addressed to the
// host once it has walked its extension headers (IPv6LocalDelivery).
type IPv6Verdict uint8

// Verdicts.
const (
	// IPv6Deliver: the upper-layer header, Proto at Off, gets it.
	IPv6Deliver IPv6Verdict = iota
	// IPv6Drop: dropped without a word.
	IPv6Drop
	// IPv6ParamProblem: dropped with an ICMPv6 parameter problem of
	// Code pointing at Pointer.
	IPv6ParamProblem
	// IPv6Reassemble: a fragment, for reassembly.
	IPv6Reassemble
)

// IPv6Delivery is the outcome of IPv6LocalDelivery.
type IPv6Delivery struct {
	Verdict IPv6Verdict
	// Proto and Off: the upper-layer protocol and its header's offset
	// in the packet (IPv6Deliver).
	Proto uint8
	Off   int
	// Code and Pointer of the parameter problem (IPv6ParamProblem).
	Code    uint8
	Pointer uint32
}

// IPv6LocalDelivery walks the extension headers of IPv6 packet ip (a
// valid one, as long as its payload length says) addressed to this host
// as Linux does before it hands the packet to the upper layer (ipv6_rcv,
// ip6_protocol_deliver_rcu) with its default settings: a hop-by-hop
// options header only right after the fixed header, else a parameter
// problem (unknown next header); in options headers, padding of at most
// 7 bytes of zeros in a row, at most 8 other options, router alert of
// length 2, unknown options as their type's two high bits say, CALIPSO
// and a misaligned IOAM option dropped, IOAM otherwise
// skipped, a jumbo payload option refused (the home address option is
// unknown: no mobile IPv6); a routing header with no
// segment left skipped (but segment routing, types 3 and 4, which is
// off), one with segments left refused with a parameter problem at its
// type; an atomic fragment header (offset 0, no more fragments)
// skipped, any other fragment left to reassembly; an authentication
// header or no next header dropped. A header that does not fit is
// dropped. It does not allocate.
func IPv6LocalDelivery(ip IPv6) IPv6Delivery {
	end := len(ip)
	mcast := isIPv6Multicast(ip.Dst())
	nh, off, nhOff := ip.NextHeader(), IPv6Size, ipv6NextHeader
	drop := IPv6Delivery{Verdict: IPv6Drop}
	if nh == IPv6HopByHop {
		if off+8 > end || off+IPv6OptionsHeader(ip[off:]).Length() > end {
			return drop
		}
		if d, ok := ipv6Options(ip, off, true, mcast); !ok {
			return d
		}
		nh, nhOff = ip[off], off
		off += IPv6OptionsHeader(ip[off:]).Length()
	}
	for {
		switch nh {
		case IPv6HopByHop:
			return IPv6Delivery{Verdict: IPv6ParamProblem, Code: ICMPv6UnknownNextHeader, Pointer: uint32(nhOff)}
		case IPv6DestOptions:
			if off+8 > end || off+IPv6OptionsHeader(ip[off:]).Length() > end {
				return drop
			}
			if d, ok := ipv6Options(ip, off, false, mcast); !ok {
				return d
			}
			nh, nhOff = ip[off], off
			off += IPv6OptionsHeader(ip[off:]).Length()
		case IPv6Routing:
			if off+8 > end || off+IPv6RoutingHeader(ip[off:]).Length() > end || mcast {
				return drop
			}
			rt := IPv6RoutingHeader(ip[off:])
			switch {
			case rt[ipv6RoutingType] == 3 || rt[ipv6RoutingType] == 4:
				return drop // RPL and segment routing are off
			case rt[ipv6RoutingSegmentsLeft] != 0:
				return IPv6Delivery{Verdict: IPv6ParamProblem, Code: ICMPv6ErroneousHeader, Pointer: uint32(off + ipv6RoutingType)}
			}
			nh, nhOff = ip[off], off
			off += rt.Length()
		case IPv6Fragment:
			if off+8 > end {
				return drop
			}
			if binary.BigEndian.Uint16(ip[off+2:])&0xfff9 != 0 {
				return IPv6Delivery{Verdict: IPv6Reassemble}
			}
			nh, nhOff = ip[off], off
			off += 8
		case IPv6Auth, IPv6NoNext:
			return drop
		default:
			return IPv6Delivery{Verdict: IPv6Deliver, Proto: nh, Off: off}
		}
	}
}

// ipv6Options checks the options of the hop-by-hop (hbh) or destination
// options header at off in ip as Linux's ip6_parse_tlv does; ok is false
// when the packet is not to be delivered, d saying why.
func ipv6Options(ip IPv6, off int, hbh, mcast bool) (d IPv6Delivery, ok bool) {
	drop := IPv6Delivery{Verdict: IPv6Drop}
	end := off + IPv6OptionsHeader(ip[off:]).Length()
	pad, count := 0, 0
	for i := off + 2; i < end; {
		t := ip[i]
		if t == IPv6OptPad1 {
			if pad++; pad > 7 {
				return drop, false
			}
			i++
			continue
		}
		if end-i < 2 {
			return drop, false
		}
		n := int(ip[i+1]) + 2
		if n > end-i {
			return drop, false
		}
		if t == IPv6OptPadN {
			if pad += n; pad > 7 || !isZero(ip[i+2:i+n]) {
				return drop, false
			}
			i += n
			continue
		}
		if count++; count > ipv6MaxOpts {
			return drop, false
		}
		switch {
		case hbh && t == IPv6OptRouterAlert:
			if n != 4 {
				return drop, false
			}
		case hbh && t == IPv6OptIOAM:
			if i&3 != 0 {
				return drop, false
			}
		case hbh && t == IPv6OptJumbo:
			switch {
			case n != 6 || i&3 != 2:
				return drop, false
			case binary.BigEndian.Uint32(ip[i+2:]) <= 0xffff:
				return IPv6Delivery{Verdict: IPv6ParamProblem, Code: ICMPv6ErroneousHeader, Pointer: uint32(i + 2)}, false
			default: // a jumbogram's payload length must be 0
				return IPv6Delivery{Verdict: IPv6ParamProblem, Code: ICMPv6ErroneousHeader, Pointer: uint32(i)}, false
			}
		case hbh && t == IPv6OptCALIPSO:
			return drop, false // no CALIPSO DOI
		default:
			switch t >> 6 {
			case 0:
			case 1:
				return drop, false
			case 3:
				if mcast {
					return drop, false
				}
				fallthrough
			default:
				return IPv6Delivery{Verdict: IPv6ParamProblem, Code: ICMPv6UnrecognizedOption, Pointer: uint32(i)}, false
			}
		}
		pad = 0
		i += n
	}
	return d, true
}

// ICMPv6EchoReplyAfterExt is ICMPv6EchoReplyInPlace for an echo request
// whose ICMPv6 message is at off in ip, after extension headers
// (IPv6LocalDelivery finds off): the reply, written in place, carries
// none, as Linux's icmpv6_echo_reply builds it anew; the message moves
// up behind the fixed header. It returns the reply's length. It fails,
// changing nothing, as ICMPv6EchoReplyInPlace does. It does not
// allocate.
func ICMPv6EchoReplyAfterExt(ip IPv6, off int, hopLimit uint8, flowLabel uint32) (int, error) {
	switch {
	case !ip.IsValid(len(ip)):
		return 0, EchoErrInvalid
	case IPv6Size+int(ip.PayloadLength()) != len(ip):
		return 0, EchoErrPadding
	case off < IPv6Size || off > len(ip):
		return 0, EchoErrNotICMP
	case flowLabel > 0xfffff:
		return 0, EchoErrFlowLabel
	}
	m := ICMPv6(ip[off:])
	src, dst := ip.Src(), ip.Dst()
	switch {
	case !m.IsValid():
		return 0, EchoErrShort
	case m.Type() != ICMPv6EchoRequest:
		return 0, EchoErrNotRequest
	case Checksum(m, PseudoHeaderChecksum6(ProtocolICMPv6, src, dst, uint32(len(m)))) != 0xffff:
		return 0, EchoErrChecksum
	case isIPv6Multicast(dst):
		return 0, EchoErrGroupDst
	case isIPv6Multicast(src) || isIPv6Unspecified(src):
		return 0, EchoErrGroupSrc
	}
	n := IPv6Size + copy(ip[IPv6Size:], m)
	put16(ip[ipv6PayloadLen:], uint16(n-IPv6Size))
	ip[ipv6NextHeader] = ProtocolICMPv6
	if err := ICMPv6EchoReplyInPlace(ip[:n], hopLimit, flowLabel); err != nil {
		return 0, err // not reached: checked above
	}
	return n, nil
}
