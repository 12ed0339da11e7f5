package header

import (
	"encoding/binary"
	"fmt"
	"strconv"
)

// Builders of the packets a router sends of its own: ICMP and ICMPv6
// errors quoting an offending packet, echo replies, and neighbor
// advertisements and solicitations. They write IP packets (the caller
// puts the link header in front) into a caller-given buffer, allocate
// nothing on success, and return the length written. The header fields
// are those Linux 6.18 sends, checked on the wire: net/ipv4/icmp.c
// (__icmp_send, icmp_reply), net/ipv6/icmp.c (icmp6_send, icmpv6_echo_reply)
// and net/ipv6/ndisc.c.

// Defaults of the fields Linux takes from sysctls.
const (
	// DefaultTTL is net.ipv4.ip_default_ttl: the TTL of the ICMP
	// messages Linux sends.
	DefaultTTL = 64
	// DefaultHopLimit is net.ipv6.conf.*.hop_limit: the hop limit of the
	// ICMPv6 errors and echo replies Linux sends.
	DefaultHopLimit = 64

	// ICMPv4ErrorMaxSize bounds an ICMPv4 error, IP header included: "as
	// much of the original datagram as possible without the ICMP
	// datagram exceeding 576 bytes" (RFC 1812, section 4.3.2.3).
	ICMPv4ErrorMaxSize = 576
	// IPv6MinMTU is the IPv6 minimum link MTU (RFC 8200, section 5),
	// which bounds an ICMPv6 error (RFC 4443, section 2.4(c)).
	IPv6MinMTU = 1280

	// icmpv4ErrorTOSMask keeps the old TOS bits of the offending packet
	// (Linux's RT_TOS, IPTOS_TOS_MASK) under precedence "internetwork
	// control" (IPTOS_PREC_INTERNETCONTROL).
	icmpv4ErrorTOSMask = 0x1e
	icmpv4ErrorTOSPrec = 0xc0
)

// ICMPv4Error is an ICMPv4 error to build about an offending packet.
type ICMPv4Error struct {
	// Type and Code of the error, e.g. ICMPv4TimeExceeded and
	// ICMPv4TTLExceeded.
	Type, Code uint8
	// Rest is the rest-of-header word: the next-hop MTU for
	// ICMPv4FragmentationNeeded (RFC 1191), the pointer << 24 for a
	// parameter problem, else 0.
	Rest uint32
	// Src is the router's address the error is sent from; the
	// destination is the offending packet's source.
	Src [4]byte
	// TTL of the error; 0 means DefaultTTL.
	TTL uint8
	// ID is the IP identification. Linux draws it from a per-destination
	// hashed counter; the caller gives its own.
	ID uint16
	// MTU of the path towards the destination, if below 576; 0 means no
	// limit below ICMPv4ErrorMaxSize.
	MTU int
}

// Build writes into buf the IPv4 packet carrying the error about the
// offending IPv4 packet orig (as received: header, then as much of the
// datagram as its total length says; a forwarder quotes it before
// decrementing the TTL, as Linux does) and returns its length. Like
// Linux's __icmp_send it quotes as much of orig as fits in min(576, MTU)
// bytes, its header included; sets TOS to orig's TOS bits (mask 0x1e)
// with precedence internetwork control (0xc0); leaves DF clear (Linux's
// ICMP socket has IP_PMTUDISC_DONT); writes no IP options (Linux echoes
// orig's source route, record route and timestamp options; this does
// not). It does not decide whether the error may be sent: see
// ShouldSendICMPError4. buf may overlap orig (in place: orig's fields are
// read before anything is written). It fails for an invalid orig, an
// MTU too small to quote orig's header, or a buffer too short.
func (e ICMPv4Error) Build(buf []byte, orig IPv4) (int, error) {
	if !orig.IsValid(len(orig)) {
		return 0, fmt.Errorf("ICMP error type %d code %d: offending packet of %d bytes is not a valid IPv4 packet", e.Type, e.Code, len(orig))
	}
	room := ICMPv4ErrorMaxSize
	if e.MTU > 0 && e.MTU < room {
		room = e.MTU
	}
	room -= IPv4MinSize + ICMPv4MinSize
	if room <= IPv4MinSize {
		return 0, fmt.Errorf("ICMP error type %d code %d: MTU %d leaves no room to quote an IP header", e.Type, e.Code, e.MTU)
	}
	quote := min(int(orig.TotalLength()), room)
	n := IPv4MinSize + ICMPv4MinSize + quote
	if len(buf) < n {
		return 0, fmt.Errorf("ICMP error type %d code %d: %d-byte buffer, need %d: %w", e.Type, e.Code, len(buf), n, ErrShortBuffer)
	}
	dst, tos := orig.Src(), orig[1]
	copy(buf[IPv4MinSize+ICMPv4MinSize:n], orig[:quote])
	ttl := e.TTL
	if ttl == 0 {
		ttl = DefaultTTL
	}
	putIPv4(buf, tos&icmpv4ErrorTOSMask|icmpv4ErrorTOSPrec, uint16(n), e.ID, ttl, ProtocolICMP, e.Src, dst)
	m := ICMPv4(buf[IPv4MinSize:n])
	m[icmpType], m[icmpCode] = e.Type, e.Code
	binary.BigEndian.PutUint32(m[icmpRest:], e.Rest)
	m.SetChecksum(0)
	m.SetChecksum(m.CalculateChecksum())
	return n, nil
}

// putIPv4 writes a 20-byte IPv4 header, no flags, no fragment offset,
// with its checksum.
func putIPv4(b []byte, tos uint8, totalLen, id uint16, ttl, proto uint8, src, dst [4]byte) {
	_ = b[IPv4MinSize-1]
	b[ipv4VersIHL], b[1] = 0x45, tos
	put16(b[ipv4TotalLen:], totalLen)
	put16(b[4:], id)
	put16(b[ipv4FlagsOff:], 0)
	b[ipv4TTL], b[ipv4Protocol] = ttl, proto
	put16(b[ipv4Checksum:], 0)
	copy(b[ipv4Src:ipv4Src+4], src[:])
	copy(b[ipv4Dst:ipv4Dst+4], dst[:])
	ip := IPv4(b)
	ip.SetChecksum(^Checksum(b[:IPv4MinSize], 0))
}

// ICMPv6Error is an ICMPv6 error to build about an offending packet.
type ICMPv6Error struct {
	// Type and Code of the error, e.g. ICMPv6TimeExceeded and
	// ICMPv6HopLimitExceeded.
	Type, Code uint8
	// Rest is the first word of the body: the MTU for
	// ICMPv6PacketTooBig, the pointer for a parameter problem, else 0.
	Rest uint32
	// Src is the router's address the error is sent from; the
	// destination is the offending packet's source.
	Src [16]byte
	// HopLimit of the error; 0 means DefaultHopLimit.
	HopLimit uint8
	// FlowLabel of the error (20 bits). Linux sets a hash of the flow
	// (auto flow labels); 0 means none.
	FlowLabel uint32
}

// Build writes into buf the IPv6 packet carrying the error about the
// offending IPv6 packet orig (as received, as long as its payload length
// says) and returns its length. Like Linux's icmp6_send it quotes as
// much of orig as fits in the IPv6 minimum MTU, 1280 bytes, its own
// headers included (RFC 4443, section 2.4(c)), with traffic class 0. It
// does not decide whether the error may be sent: see
// ShouldSendICMPError6. buf may overlap orig. It fails for an invalid
// orig, a flow label over 20 bits or a buffer too short.
func (e ICMPv6Error) Build(buf []byte, orig IPv6) (int, error) {
	if !orig.IsValid(len(orig)) {
		return 0, fmt.Errorf("ICMPv6 error type %d code %d: offending packet of %d bytes is not a valid IPv6 packet", e.Type, e.Code, len(orig))
	}
	if e.FlowLabel > 0xfffff {
		return 0, fmt.Errorf("ICMPv6 error type %d code %d: flow label %#x over 20 bits", e.Type, e.Code, e.FlowLabel)
	}
	quote := min(IPv6Size+int(orig.PayloadLength()), IPv6MinMTU-IPv6Size-ICMPv6MinSize)
	n := IPv6Size + ICMPv6MinSize + quote
	if len(buf) < n {
		return 0, fmt.Errorf("ICMPv6 error type %d code %d: %d-byte buffer, need %d: %w", e.Type, e.Code, len(buf), n, ErrShortBuffer)
	}
	dst := orig.Src()
	copy(buf[IPv6Size+ICMPv6MinSize:n], orig[:quote])
	hl := e.HopLimit
	if hl == 0 {
		hl = DefaultHopLimit
	}
	putIPv6(buf, 0, e.FlowLabel, uint16(n-IPv6Size), ProtocolICMPv6, hl, e.Src, dst)
	m := ICMPv6(buf[IPv6Size:n])
	m[icmpv6Type], m[icmpv6Code] = e.Type, e.Code
	binary.BigEndian.PutUint32(m[icmpv6Rest:], e.Rest)
	m.SetChecksum(0)
	m.SetChecksum(m.CalculateChecksum(e.Src, dst))
	return n, nil
}

// putIPv6 writes an IPv6 fixed header.
func putIPv6(b []byte, tclass uint8, flowLabel uint32, payloadLen uint16, next, hopLimit uint8, src, dst [16]byte) {
	_ = b[IPv6Size-1]
	binary.BigEndian.PutUint32(b[0:], 6<<28|uint32(tclass)<<20|flowLabel&0xfffff)
	put16(b[ipv6PayloadLen:], payloadLen)
	b[ipv6NextHeader], b[ipv6HopLimit] = next, hopLimit
	copy(b[ipv6Src:ipv6Src+16], src[:])
	copy(b[ipv6Dst:ipv6Dst+16], dst[:])
}

// isIPv4Multicast reports whether a is in 224.0.0.0/4.
func isIPv4Multicast(a [4]byte) bool { return a[0]&0xf0 == 0xe0 }

// ShouldSendICMPError4 reports whether an ICMPv4 error may be sent about
// the IPv4 packet ip, by the rules of RFC 1812 section 4.3.2.7 as Linux's
// __icmp_send applies them. linkGroup says the frame came to a link-layer
// broadcast or multicast address (Linux: pkt_type != PACKET_HOST). No
// error is sent:
//
//   - about a packet sent to a link-layer broadcast or multicast address;
//   - about one to an IP multicast address or the limited broadcast
//     255.255.255.255 (a subnet's directed broadcast is the caller's to
//     check: it knows its subnets);
//   - about a fragment other than the first;
//   - about an ICMP error (ICMPv4IsError; an ICMP packet too short to
//     show its type counts as one);
//   - about a packet whose source does not name a single host: 0.0.0.0/8,
//     127.0.0.0/8, multicast, 240.0.0.0/4 and the limited broadcast (Linux
//     drops such martian sources before routing, so never answers them);
//   - about a packet that is not valid IPv4.
func ShouldSendICMPError4(ip IPv4, linkGroup bool) bool {
	if linkGroup || !ip.IsValid(len(ip)) {
		return false
	}
	dst, src := ip.Dst(), ip.Src()
	if isIPv4Multicast(dst) || dst == [4]byte{255, 255, 255, 255} {
		return false
	}
	if src[0] == 0 || src[0] == 127 || src[0] >= 224 {
		return false
	}
	if ip.FragmentOffset() != 0 {
		return false
	}
	if ip.Protocol() == ProtocolICMP {
		p := ip.Payload()
		if len(p) < 1 || ICMPv4IsError(p[icmpType]) {
			return false
		}
	}
	return true
}

// ShouldSendICMPError6 reports whether an ICMPv6 error of type typ and
// code code, with rest-of-header word rest, may be sent about the IPv6
// packet ip, by RFC 4443 section 2.4(e) as Linux's icmp6_send applies it.
// linkGroup says the frame came to a link-layer broadcast or multicast
// address. No error is sent:
//
//   - about a packet to an IPv6 multicast address or a link-layer group
//     address, except a packet too big, or a parameter problem of code
//     ICMPv6UnrecognizedOption whose pointer rest points in ip at an
//     option type with the high-order bits 10 (e.3-e.5);
//   - about a packet from the unspecified or a multicast address (e.6; an
//     anycast source is the caller's to check: it knows its anycast
//     addresses);
//   - about an ICMPv6 error (e.1), or a redirect (e.2), found after the
//     extension headers; an ICMPv6 header cut short counts as an error,
//     except in a fragment other than the first (RFC 8200 section 4.5;
//     Linux's is_ineligible);
//   - about a packet that is not valid IPv6.
//
// Unlike IPv4, a fragment other than the first may get an error (Linux
// sends one, and RFC 4443 does not forbid it). Linux sends errors about
// redirects; RFC 4443 e.2 says not to, and this follows the RFC.
func ShouldSendICMPError6(ip IPv6, linkGroup bool, typ, code uint8, rest uint32) bool {
	if !ip.IsValid(len(ip)) {
		return false
	}
	if isIPv6Multicast(ip.Dst()) || linkGroup {
		ok := typ == ICMPv6PacketTooBig
		if typ == ICMPv6ParameterProblem && code == ICMPv6UnrecognizedOption {
			end := IPv6Size + int(ip.PayloadLength())
			ok = int64(rest) < int64(end) && ip[rest]>>6 == 2
		}
		if !ok {
			return false
		}
	}
	if src := ip.Src(); isIPv6Unspecified(src) || isIPv6Multicast(src) {
		return false
	}
	return !icmpv6Ineligible(ip)
}

// icmpv6Ineligible reports whether ip carries an ICMPv6 error or a
// redirect after its extension headers, or an ICMPv6 header cut short in
// a packet that is not a later fragment. A chain of extension headers
// that cannot be walked (cut short, no next header) is eligible, as in
// Linux's is_ineligible.
func icmpv6Ineligible(ip IPv6) bool {
	end := IPv6Size + int(ip.PayloadLength())
	nh, off := ip.NextHeader(), IPv6Size
	laterFragment := false
	for IsIPv6ExtHeader(nh) {
		if off+2 > end {
			return false
		}
		if nh == IPv6Fragment {
			if off+4 > end {
				return false
			}
			if be16(ip[off+2:])&^7 != 0 {
				laterFragment = true
				break
			}
		}
		l := IPv6ExtLength(nh, ip[off:end])
		nh = ip[off]
		off += l
	}
	if laterFragment || nh != ProtocolICMPv6 {
		return false
	}
	if off+1 > end {
		return true
	}
	t := ip[off]
	return ICMPv6IsError(t) || t == ICMPv6Redirect
}

// EchoError is why an echo request is not answered in place. It is an
// error that allocates nothing when returned, so a flood of bad requests
// costs no garbage, and it can index per-reason counters.
type EchoError uint8

// Reasons an echo request is not answered in place.
const (
	EchoErrInvalid EchoError = iota + 1
	EchoErrPadding
	EchoErrOptions
	EchoErrFragment
	EchoErrNotICMP
	EchoErrShort
	EchoErrNotRequest
	EchoErrChecksum
	EchoErrGroupDst
	EchoErrGroupSrc
	EchoErrFlowLabel
)

var echoErrText = [...]string{
	EchoErrInvalid:    "echo reply: request is not a valid IP packet",
	EchoErrPadding:    "echo reply: bytes after the IP packet's length (trim the link padding first)",
	EchoErrOptions:    "echo reply: request has IP options",
	EchoErrFragment:   "echo reply: request is a fragment",
	EchoErrNotICMP:    "echo reply: request is not ICMP right after the IP header",
	EchoErrShort:      "echo reply: ICMP message shorter than its header",
	EchoErrNotRequest: "echo reply: ICMP type is not echo request",
	EchoErrChecksum:   "echo reply: request's ICMP checksum is wrong",
	EchoErrGroupDst:   "echo reply: request to a broadcast or multicast address",
	EchoErrGroupSrc:   "echo reply: request from a multicast or the unspecified address",
	EchoErrFlowLabel:  "echo reply: flow label over 20 bits",
}

// Error returns the reason.
func (e EchoError) Error() string {
	if int(e) < len(echoErrText) && echoErrText[e] != "" {
		return echoErrText[e]
	}
	return "echo reply: error " + strconv.Itoa(int(e))
}

// ICMPv4EchoReplyInPlace turns the ICMPv4 echo request ip (an unfragmented
// IPv4 packet without options, no longer than its total length) into its
// reply, as Linux's icmp_reply sends it: addresses swapped, type echo
// reply with code, identifier, sequence number and data kept, TOS kept,
// DF clear, identification id, TTL ttl (0: DefaultTTL); both checksums
// updated. It fails, changing nothing, for anything else: an invalid or
// fragmented packet, IP options (Linux echoes some; build the reply anew
// for those), not an echo request, a wrong ICMP checksum (Linux drops
// the request), or a multicast or limited broadcast destination (Linux's
// icmp_echo_ignore_broadcasts, on by default; directed broadcasts are
// the caller's to refuse). The error is an EchoError.
func ICMPv4EchoReplyInPlace(ip IPv4, ttl uint8, id uint16) error {
	switch {
	case !ip.IsValid(len(ip)):
		return EchoErrInvalid
	case int(ip.TotalLength()) != len(ip):
		return EchoErrPadding
	case ip.HeaderLength() != IPv4MinSize:
		return EchoErrOptions
	case ip.IsFragment():
		return EchoErrFragment
	case ip.Protocol() != ProtocolICMP:
		return EchoErrNotICMP
	}
	m := ICMPv4(ip.Payload())
	switch {
	case !m.IsValid():
		return EchoErrShort
	case m.Type() != ICMPv4Echo:
		return EchoErrNotRequest
	case Checksum(m, 0) != 0xffff:
		return EchoErrChecksum
	}
	src, dst := ip.Src(), ip.Dst()
	if isIPv4Multicast(dst) || dst == [4]byte{255, 255, 255, 255} {
		return EchoErrGroupDst
	}
	if ttl == 0 {
		ttl = DefaultTTL
	}
	putIPv4(ip, ip[1], ip.TotalLength(), id, ttl, ProtocolICMP, dst, src)
	m.SetType(ICMPv4EchoReply)
	return nil
}

// ICMPv6EchoReplyInPlace turns the ICMPv6 echo request ip (an IPv6 packet
// whose next header is ICMPv6, no longer than its payload length says)
// into its reply, as Linux's icmpv6_echo_reply sends it: addresses
// swapped, type echo reply with code, identifier, sequence number and
// data kept, traffic class kept, flow label flowLabel (Linux: a hash of
// the flow), hop limit hopLimit (0: DefaultHopLimit); the checksum
// updated (swapping the addresses leaves the pseudo-header sum as it
// is). It fails, changing nothing, for anything else: an invalid packet,
// extension headers, not an echo request, a wrong checksum, a multicast
// destination (the reply needs a unicast source the caller must choose:
// build it anew) or source, a flow label over 20 bits. The error is an
// EchoError.
func ICMPv6EchoReplyInPlace(ip IPv6, hopLimit uint8, flowLabel uint32) error {
	switch {
	case !ip.IsValid(len(ip)):
		return EchoErrInvalid
	case IPv6Size+int(ip.PayloadLength()) != len(ip):
		return EchoErrPadding
	case ip.NextHeader() != ProtocolICMPv6:
		return EchoErrNotICMP
	case flowLabel > 0xfffff:
		return EchoErrFlowLabel
	}
	m := ICMPv6(ip[IPv6Size:])
	src, dst := ip.Src(), ip.Dst()
	switch {
	case !m.IsValid():
		return EchoErrShort
	case m.Type() != ICMPv6EchoRequest:
		return EchoErrNotRequest
	case Checksum(m, PseudoHeaderChecksum6(ProtocolICMPv6, src, dst, uint32(len(m)))) != 0xffff:
		return EchoErrChecksum
	case isIPv6Multicast(dst):
		return EchoErrGroupDst
	case isIPv6Multicast(src) || isIPv6Unspecified(src):
		return EchoErrGroupSrc
	}
	if hopLimit == 0 {
		hopLimit = DefaultHopLimit
	}
	w := binary.BigEndian.Uint32(ip[0:])
	binary.BigEndian.PutUint32(ip[0:], w&^0xfffff|flowLabel)
	ip.SetSrc(dst)
	ip.SetDst(src)
	ip.SetHopLimit(hopLimit)
	m.SetType(ICMPv6EchoReply)
	return nil
}

// putNeighborAdvert writes an IPv6 packet with a neighbor advertisement
// for target and returns its length.
func putNeighborAdvert(b []byte, src, dst, target [16]byte, mac MAC, r, s, o, withOpt bool) int {
	n := IPv6Size + NDPNeighborSize
	if withOpt {
		n += ndpLLAddrSize
	}
	putIPv6(b, 0, 0, uint16(n-IPv6Size), ProtocolICMPv6, NDPHopLimit, src, dst)
	m := b[IPv6Size:n]
	clear(m)
	m[icmpv6Type] = ICMPv6NeighborAdvert
	na := NDPNeighborAdvert(m)
	na.SetFlags(r, s, o)
	copy(m[ndpTarget:ndpTarget+16], target[:])
	if withOpt {
		PutLinkLayerOption(m[NDPNeighborSize:], NDPOptTargetLinkLayer, mac)
	}
	ICMPv6(m).SetChecksum(0)
	ICMPv6(m).SetChecksum(ICMPv6(m).CalculateChecksum(src, dst))
	return n
}

// BuildNeighborAdvert writes into buf the IPv6 packet answering the
// neighbor solicitation ns (the ICMPv6 message, checked with ValidateNDP)
// that came in the IPv6 packet ip, from a node that owns ns's target at
// mac, and returns its length. router sets the R flag. As Linux's
// ndisc_recv_ns answers: from the target address, hop limit 255; to the
// solicitation's source with S set, or, for a solicitation from :: (duplicate
// address detection), to all-nodes (ff02::1) with S clear; a target
// link-layer address option and O set when the solicitation was sent to
// a multicast address or from ::, neither for a unicast one (RFC 4861
// section 7.2.4 lets a unicast answer omit the option, and O must then
// be clear). The caller sends it to the link-layer address of the
// solicitation's source link-layer option or frame source, or to
// 33:33:00:00:00:01 for all-nodes. buf may overlap ip. It fails with
// NDPErrShort or NDPErrType for a message that is not a neighbor
// solicitation, or ErrShortBuffer (wrapped) for a buffer too short.
func BuildNeighborAdvert(buf []byte, ip IPv6, ns NDPNeighborSolicit, mac MAC, router bool) (int, error) {
	if len(ip) < IPv6Size || len(ns) < NDPNeighborSize {
		return 0, NDPErrShort
	}
	if !ns.IsValid() {
		return 0, NDPErrType
	}
	target, src, dst := ns.Target(), ip.Src(), ip.Dst()
	dad := isIPv6Unspecified(src)
	withOpt := dad || isIPv6Multicast(dst)
	n := IPv6Size + NDPNeighborSize
	if withOpt {
		n += ndpLLAddrSize
	}
	if len(buf) < n {
		return 0, fmt.Errorf("neighbor advertisement: %d-byte buffer, need %d: %w", len(buf), n, ErrShortBuffer)
	}
	to := src
	if dad {
		to = IPv6AllNodes
	}
	return putNeighborAdvert(buf, target, to, target, mac, router, !dad, withOpt, withOpt), nil
}

// BuildUnsolicitedNeighborAdvert writes into buf the IPv6 packet of an
// unsolicited neighbor advertisement announcing that target is at mac
// (RFC 4861 section 7.2.6, as Linux's ndisc_send_unsol_na sends it at
// start or on an address change): from target to all-nodes (ff02::1), S
// clear, O set, R as router, with a target link-layer address option.
// It returns the length written, or fails for a buffer too short.
func BuildUnsolicitedNeighborAdvert(buf []byte, target [16]byte, mac MAC, router bool) (int, error) {
	n := IPv6Size + NDPNeighborSize + ndpLLAddrSize
	if len(buf) < n {
		return 0, fmt.Errorf("unsolicited neighbor advertisement: %d-byte buffer, need %d: %w", len(buf), n, ErrShortBuffer)
	}
	return putNeighborAdvert(buf, target, IPv6AllNodes, target, mac, router, false, true, true), nil
}

// BuildNeighborSolicit writes into buf the IPv6 packet of a neighbor
// solicitation for target from src (a unicast address of the sender's,
// not ::) at mac, with a source link-layer address option, as Linux's
// ndisc_send_ns sends it: hop limit 255, to target's solicited-node
// multicast address (resolution; link-layer destination
// IPv6MulticastMAC of it), or to target itself when unicast (a
// reachability probe to the cached link-layer address). It returns the
// length written, or fails for src :: or a multicast target or a buffer
// too short.
func BuildNeighborSolicit(buf []byte, src [16]byte, mac MAC, target [16]byte, unicast bool) (int, error) {
	if isIPv6Unspecified(src) || isIPv6Multicast(src) || isIPv6Multicast(target) {
		return 0, fmt.Errorf("neighbor solicitation: source must be unicast and target not multicast")
	}
	n := IPv6Size + NDPNeighborSize + ndpLLAddrSize
	if len(buf) < n {
		return 0, fmt.Errorf("neighbor solicitation: %d-byte buffer, need %d: %w", len(buf), n, ErrShortBuffer)
	}
	dst := SolicitedNodeAddr(target)
	if unicast {
		dst = target
	}
	putIPv6(buf, 0, 0, uint16(n-IPv6Size), ProtocolICMPv6, NDPHopLimit, src, dst)
	m := buf[IPv6Size:n]
	clear(m)
	m[icmpv6Type] = ICMPv6NeighborSolicit
	copy(m[ndpTarget:ndpTarget+16], target[:])
	PutLinkLayerOption(m[NDPNeighborSize:], NDPOptSourceLinkLayer, mac)
	ICMPv6(m).SetChecksum(ICMPv6(m).CalculateChecksum(src, dst))
	return n, nil
}
