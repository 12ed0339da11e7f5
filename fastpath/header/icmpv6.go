package header

import (
	"encoding/binary"
	"strconv"
)

// ICMPv6 is an ICMPv6 message (RFC 4443, section 2.1): a header and what
// follows it, to the end of the IPv6 payload.
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     Type      |     Code      |          Checksum             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                     Message body ...                          |
//
// The first word of the body is, for echo request and reply, the
// identifier and sequence number; for packet too big the MTU; for
// parameter problem the pointer; unused (zero) for the other errors,
// which then quote the offending packet. The checksum covers the IPv6
// pseudo-header (RFC 8200, section 8.1; next header 58) and the whole
// message.
//
// Setters of a field the checksum covers keep the checksum correct (RFC
// 1624). A view must hold ICMPv6MinSize bytes (IsValid).
type ICMPv6 []byte

const (
	icmpv6Type     = 0
	icmpv6Code     = 1
	icmpv6Checksum = 2
	icmpv6Rest     = 4
	icmpv6Ident    = 4
	icmpv6Seq      = 6

	// ICMPv6MinSize is the size of an ICMPv6 header with the first word
	// of the body, which every message this package knows has.
	ICMPv6MinSize = 8
)

// ICMPv6 types (RFC 4443, RFC 4861).
const (
	ICMPv6DestUnreachable  = 1
	ICMPv6PacketTooBig     = 2
	ICMPv6TimeExceeded     = 3
	ICMPv6ParameterProblem = 4
	ICMPv6EchoRequest      = 128
	ICMPv6EchoReply        = 129
	ICMPv6RouterSolicit    = 133
	ICMPv6RouterAdvert     = 134
	ICMPv6NeighborSolicit  = 135
	ICMPv6NeighborAdvert   = 136
	ICMPv6Redirect         = 137
)

// ICMPv6 destination unreachable codes (RFC 4443, section 3.1).
const (
	ICMPv6NoRoute         = 0
	ICMPv6AdminProhibited = 1
	ICMPv6BeyondScope     = 2
	ICMPv6AddrUnreachable = 3
	ICMPv6PortUnreachable = 4
	ICMPv6SrcFailedPolicy = 5
	ICMPv6RejectRoute     = 6
)

// ICMPv6 time exceeded codes (RFC 4443, section 3.3).
const (
	ICMPv6HopLimitExceeded  = 0
	ICMPv6ReassemblyTimeout = 1
)

// ICMPv6 parameter problem codes (RFC 4443, section 3.4).
const (
	ICMPv6ErroneousHeader    = 0
	ICMPv6UnknownNextHeader  = 1
	ICMPv6UnrecognizedOption = 2
)

// ICMPv6IsError reports whether an ICMPv6 type is an error message: types
// 0-127 (RFC 4443, section 2.1).
func ICMPv6IsError(typ uint8) bool { return typ < 128 }

// IsValid reports whether b is long enough for an ICMPv6 header.
func (b ICMPv6) IsValid() bool { return len(b) >= ICMPv6MinSize }

// Type returns the message type.
func (b ICMPv6) Type() uint8 { return b[icmpv6Type] }

// Code returns the message code.
func (b ICMPv6) Code() uint8 { return b[icmpv6Code] }

// Checksum returns the checksum field.
func (b ICMPv6) Checksum() uint16 { return be16(b[icmpv6Checksum:]) }

// SetChecksum sets the checksum field.
func (b ICMPv6) SetChecksum(c uint16) { put16(b[icmpv6Checksum:], c) }

// SetType sets the message type and updates the checksum.
func (b ICMPv6) SetType(t uint8) {
	old := be16(b[icmpv6Type:])
	b[icmpv6Type] = t
	b.SetChecksum(ChecksumUpdate(b.Checksum(), old, be16(b[icmpv6Type:])))
}

// SetCode sets the message code and updates the checksum.
func (b ICMPv6) SetCode(c uint8) {
	old := be16(b[icmpv6Type:])
	b[icmpv6Code] = c
	b.SetChecksum(ChecksumUpdate(b.Checksum(), old, be16(b[icmpv6Type:])))
}

// RestOfHeader returns the first 32-bit word of the body: the MTU of a
// packet too big message, the pointer of a parameter problem.
func (b ICMPv6) RestOfHeader() uint32 { return binary.BigEndian.Uint32(b[icmpv6Rest:]) }

// SetRestOfHeader sets the first word of the body and updates the
// checksum.
func (b ICMPv6) SetRestOfHeader(w uint32) {
	c := b.Checksum()
	c = ChecksumUpdate(c, be16(b[icmpv6Rest:]), uint16(w>>16))
	c = ChecksumUpdate(c, be16(b[icmpv6Rest+2:]), uint16(w))
	binary.BigEndian.PutUint32(b[icmpv6Rest:], w)
	b.SetChecksum(c)
}

// Ident returns the identifier of an echo request or reply.
func (b ICMPv6) Ident() uint16 { return be16(b[icmpv6Ident:]) }

// SetIdent sets the identifier of an echo request or reply and updates
// the checksum.
func (b ICMPv6) SetIdent(id uint16) {
	old := be16(b[icmpv6Ident:])
	put16(b[icmpv6Ident:], id)
	b.SetChecksum(ChecksumUpdate(b.Checksum(), old, id))
}

// Seq returns the sequence number of an echo request or reply.
func (b ICMPv6) Seq() uint16 { return be16(b[icmpv6Seq:]) }

// MTU returns the MTU of a packet too big message.
func (b ICMPv6) MTU() uint32 { return b.RestOfHeader() }

// Payload returns what follows the first word of the body: echo data, or
// the quoted packet of an error.
func (b ICMPv6) Payload() []byte { return b[ICMPv6MinSize:] }

// CalculateChecksum returns the checksum the message should carry when
// sent from src to dst: the complement of the sum of the pseudo-header
// (upper-layer length len(b)) and the message with the checksum field as
// zero.
func (b ICMPv6) CalculateChecksum(src, dst [16]byte) uint16 {
	s := PseudoHeaderChecksum6(ProtocolICMPv6, src, dst, uint32(len(b)))
	return ^Checksum(b[icmpv6Rest:], Checksum(b[:icmpv6Checksum], s))
}

// UpdatePseudoHeaderAddr6 updates the checksum after one address of the
// pseudo-header changed from old to new; partial says the field holds a
// pseudo-header sum for a device to finish (Linux computes ICMPv6
// checksums in software, so a frame from Linux is never partial, but the
// arithmetic is the same as TCP's).
func (b ICMPv6) UpdatePseudoHeaderAddr6(old, new [16]byte, partial bool) {
	b.SetChecksum(l4Addr6(b.Checksum(), old, new, partial))
}

// Neighbor Discovery (RFC 4861). The NDP views are whole ICMPv6 messages,
// header included, so that their setters can keep the checksum correct.

// NDP option types (RFC 4861, section 4.6).
const (
	NDPOptSourceLinkLayer = 1
	NDPOptTargetLinkLayer = 2
	NDPOptPrefixInfo      = 3
	NDPOptRedirected      = 4
	NDPOptMTU             = 5
)

// NDPHopLimit is the hop limit every NDP message is sent with, and
// must arrive with (RFC 4861, section 7.1).
const NDPHopLimit = 255

// NDPNeighborSolicit is a neighbor solicitation (RFC 4861, section 4.3):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     Type      |     Code      |          Checksum             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                           Reserved                            |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                                                               |
//	+                                                               +
//	|                                                               |
//	+                       Target Address                          +
//	|                                                               |
//	+                                                               +
//	|                                                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|   Options ...
//	+-+-+-+-+-+-+-+-+-+-+-+-
type NDPNeighborSolicit []byte

const (
	ndpTarget     = 8
	ndpNSOptions  = 24
	ndpNAFlags    = 4
	ndpRSOptions  = 8
	ndpNAFlagR    = 0x80
	ndpNAFlagS    = 0x40
	ndpNAFlagO    = 0x20
	ndpLLAddrSize = 8

	// NDPNeighborSize is the size of a neighbor solicitation or
	// advertisement without options.
	NDPNeighborSize = 24
	// NDPRouterSolicitSize is the size of a router solicitation without
	// options.
	NDPRouterSolicitSize = 8
)

// IsValid reports whether b holds a neighbor solicitation header: type
// 135, code 0, at least NDPNeighborSize bytes. ValidateNDP checks the
// rest of RFC 4861's validity rules.
func (b NDPNeighborSolicit) IsValid() bool {
	return len(b) >= NDPNeighborSize && b[icmpv6Type] == ICMPv6NeighborSolicit && b[icmpv6Code] == 0
}

// Target returns the target address.
func (b NDPNeighborSolicit) Target() [16]byte { return [16]byte(b[ndpTarget : ndpTarget+16]) }

// SetTarget sets the target address and updates the checksum.
func (b NDPNeighborSolicit) SetTarget(a [16]byte) { setTarget(b, a) }

// Options returns the options after the fixed part.
func (b NDPNeighborSolicit) Options() NDPOptions { return NDPOptions(b[ndpNSOptions:]) }

// NDPNeighborAdvert is a neighbor advertisement (RFC 4861, section 4.4):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     Type      |     Code      |          Checksum             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|R|S|O|                     Reserved                            |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                                                               |
//	+                                                               +
//	|                                                               |
//	+                       Target Address                          +
//	|                                                               |
//	+                                                               +
//	|                                                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|   Options ...
//	+-+-+-+-+-+-+-+-+-+-+-+-
//
// R: the sender is a router; S: sent in response to a solicitation; O:
// the advertisement should override a cached link-layer address.
type NDPNeighborAdvert []byte

// IsValid reports whether b holds a neighbor advertisement header: type
// 136, code 0, at least NDPNeighborSize bytes.
func (b NDPNeighborAdvert) IsValid() bool {
	return len(b) >= NDPNeighborSize && b[icmpv6Type] == ICMPv6NeighborAdvert && b[icmpv6Code] == 0
}

// Router reports whether the R flag is set.
func (b NDPNeighborAdvert) Router() bool { return b[ndpNAFlags]&ndpNAFlagR != 0 }

// Solicited reports whether the S flag is set.
func (b NDPNeighborAdvert) Solicited() bool { return b[ndpNAFlags]&ndpNAFlagS != 0 }

// Override reports whether the O flag is set.
func (b NDPNeighborAdvert) Override() bool { return b[ndpNAFlags]&ndpNAFlagO != 0 }

// SetFlags sets the R, S and O flags (clearing the reserved bits of their
// octet) and updates the checksum.
func (b NDPNeighborAdvert) SetFlags(router, solicited, override bool) {
	var f byte
	if router {
		f |= ndpNAFlagR
	}
	if solicited {
		f |= ndpNAFlagS
	}
	if override {
		f |= ndpNAFlagO
	}
	old := be16(b[ndpNAFlags:])
	b[ndpNAFlags] = f
	b.setChecksum(ChecksumUpdate(be16(b[icmpv6Checksum:]), old, be16(b[ndpNAFlags:])))
}

func (b NDPNeighborAdvert) setChecksum(c uint16) { put16(b[icmpv6Checksum:], c) }

// Target returns the target address.
func (b NDPNeighborAdvert) Target() [16]byte { return [16]byte(b[ndpTarget : ndpTarget+16]) }

// SetTarget sets the target address and updates the checksum.
func (b NDPNeighborAdvert) SetTarget(a [16]byte) { setTarget(b, a) }

// Options returns the options after the fixed part.
func (b NDPNeighborAdvert) Options() NDPOptions { return NDPOptions(b[ndpNSOptions:]) }

// setTarget writes the target of an NS or NA and updates its checksum.
func setTarget(b []byte, a [16]byte) {
	old := [16]byte(b[ndpTarget : ndpTarget+16])
	copy(b[ndpTarget:ndpTarget+16], a[:])
	put16(b[icmpv6Checksum:], ChecksumUpdateAddr6(be16(b[icmpv6Checksum:]), old, a))
}

// NDPRouterSolicit is a router solicitation (RFC 4861, section 4.1):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     Type      |     Code      |          Checksum             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                            Reserved                           |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|   Options ...
//	+-+-+-+-+-+-+-+-+-+-+-+-
type NDPRouterSolicit []byte

// IsValid reports whether b holds a router solicitation header: type
// 133, code 0, at least NDPRouterSolicitSize bytes.
func (b NDPRouterSolicit) IsValid() bool {
	return len(b) >= NDPRouterSolicitSize && b[icmpv6Type] == ICMPv6RouterSolicit && b[icmpv6Code] == 0
}

// Options returns the options after the fixed part.
func (b NDPRouterSolicit) Options() NDPOptions { return NDPOptions(b[ndpRSOptions:]) }

// NDPError is why an NDP message or option is invalid (RFC 4861). It is
// an error that allocates nothing when returned, so a flood of bad
// messages costs no garbage, and it can index per-reason counters.
type NDPError uint8

// Reasons an NDP message or option is invalid.
const (
	NDPErrShort NDPError = iota + 1
	NDPErrHopLimit
	NDPErrCode
	NDPErrChecksum
	NDPErrType
	NDPErrMulticastTarget
	NDPErrOptionZeroLength
	NDPErrOptionTruncated
	NDPErrUnspecifiedNotSolicitedNode
	NDPErrUnspecifiedAdvert
	NDPErrUnspecifiedWithLinkLayer
	NDPErrMulticastSolicited
	NDPErrMulticastSource
)

var ndpErrText = [...]string{
	NDPErrShort:                       "NDP message shorter than its fixed part",
	NDPErrHopLimit:                    "NDP message with a hop limit other than 255",
	NDPErrCode:                        "NDP message with a code other than 0",
	NDPErrChecksum:                    "NDP message with a wrong ICMPv6 checksum",
	NDPErrType:                        "ICMPv6 type is not a router solicitation, neighbor solicitation or advertisement",
	NDPErrMulticastTarget:             "NDP neighbor message with a multicast target",
	NDPErrOptionZeroLength:            "NDP option with length 0",
	NDPErrOptionTruncated:             "NDP option runs past the end of the message",
	NDPErrUnspecifiedNotSolicitedNode: "NDP neighbor solicitation from :: not to a solicited-node address",
	NDPErrUnspecifiedAdvert:           "NDP neighbor advertisement from ::",
	NDPErrUnspecifiedWithLinkLayer:    "NDP solicitation from :: with a source link-layer address option",
	NDPErrMulticastSolicited:          "NDP neighbor advertisement to a multicast address with the solicited flag",
	NDPErrMulticastSource:             "NDP message from a multicast address",
}

// Error returns the rule broken.
func (e NDPError) Error() string {
	if int(e) < len(ndpErrText) && ndpErrText[e] != "" {
		return ndpErrText[e]
	}
	return "NDP error " + strconv.Itoa(int(e))
}

// NDPOptions is the options area of an NDP message (RFC 4861, section
// 4.6): a sequence of type-length-value options, each a multiple of 8
// bytes.
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     Type      |    Length     |              ...              |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                              ...                              ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Length counts units of 8 bytes, type and length included. Iterate with
// Next:
//
//	for opts := ns.Options(); len(opts) > 0; {
//		opt, rest, err := opts.Next()
//		if err != nil { ... }
//		...
//		opts = rest
//	}
type NDPOptions []byte

// Next returns the first option and the options after it. It fails with
// NDPErrOptionZeroLength or NDPErrOptionTruncated for a malformed option;
// then the whole message is to be discarded (RFC 4861, section 4.6). o
// must not be empty.
func (o NDPOptions) Next() (opt NDPOption, rest NDPOptions, err error) {
	if len(o) < 2 {
		return nil, nil, NDPErrOptionTruncated
	}
	n := int(o[1]) * 8
	if n == 0 {
		return nil, nil, NDPErrOptionZeroLength
	}
	if n > len(o) {
		return nil, nil, NDPErrOptionTruncated
	}
	return NDPOption(o[:n]), o[n:], nil
}

// Validate checks every option's length (see Next).
func (o NDPOptions) Validate() error {
	for len(o) > 0 {
		var err error
		if _, o, err = o.Next(); err != nil {
			return err
		}
	}
	return nil
}

// LinkLayerAddr returns the Ethernet address in the first option of type
// typ (NDPOptSourceLinkLayer or NDPOptTargetLinkLayer), as Linux's
// ndisc_parse_options keeps the first option of each type; ok is false if
// there is none, or if that option is not 8 bytes long, the size of an
// Ethernet address option (RFC 2464 section 6; Linux's
// ndisc_opt_addr_data then ignores it). err is non-nil for malformed
// options (see Next) before the option found.
func (o NDPOptions) LinkLayerAddr(typ uint8) (mac MAC, ok bool, err error) {
	for len(o) > 0 {
		var opt NDPOption
		if opt, o, err = o.Next(); err != nil {
			return mac, false, err
		}
		if opt.Type() == typ {
			if len(opt) != ndpLLAddrSize {
				return mac, false, nil
			}
			return opt.LinkLayerAddr(), true, nil
		}
	}
	return mac, false, nil
}

// NDPOption is one NDP option, as Next returns it: at least 8 bytes, as
// long as its length field says.
type NDPOption []byte

// Type returns the option type.
func (b NDPOption) Type() uint8 { return b[0] }

// Length returns the option's length in bytes (the length field × 8).
func (b NDPOption) Length() int { return int(b[1]) * 8 }

// Data returns the option's bytes after type and length.
func (b NDPOption) Data() []byte { return b[2:] }

// LinkLayerAddr returns the Ethernet address of a source or target
// link-layer address option (bytes 2-7).
func (b NDPOption) LinkLayerAddr() MAC { return MAC(b[2:8]) }

// PutLinkLayerOption writes a source or target (typ) link-layer address
// option for Ethernet address mac into b (at least 8 bytes) and returns
// its length, 8.
func PutLinkLayerOption(b []byte, typ uint8, mac MAC) int {
	_ = b[ndpLLAddrSize-1]
	b[0], b[1] = typ, 1
	copy(b[2:8], mac[:])
	return ndpLLAddrSize
}

// Well-known IPv6 multicast addresses (RFC 4291, section 2.7.1).
var (
	// IPv6AllNodes is ff02::1, the link-local all-nodes group.
	IPv6AllNodes = [16]byte{0: 0xff, 1: 0x02, 15: 1}
	// IPv6AllRouters is ff02::2, the link-local all-routers group.
	IPv6AllRouters = [16]byte{0: 0xff, 1: 0x02, 15: 2}
)

// SolicitedNodeAddr returns the solicited-node multicast address of a
// (RFC 4291, section 2.7.1): ff02::1:ff00:0 with a's low 24 bits.
func SolicitedNodeAddr(a [16]byte) [16]byte {
	return [16]byte{0: 0xff, 1: 0x02, 11: 1, 12: 0xff, 13: a[13], 14: a[14], 15: a[15]}
}

// IsSolicitedNodeAddr reports whether a is a solicited-node multicast
// address.
func IsSolicitedNodeAddr(a [16]byte) bool {
	return [13]byte(a[:13]) == [13]byte{0: 0xff, 1: 0x02, 11: 1, 12: 0xff}
}

// IPv6MulticastMAC returns the Ethernet address an IPv6 multicast
// address a maps to: 33:33 and a's low 32 bits (RFC 2464, section 7).
func IPv6MulticastMAC(a [16]byte) MAC { return MAC{0x33, 0x33, a[12], a[13], a[14], a[15]} }

// isIPv6Unspecified reports whether a is ::.
func isIPv6Unspecified(a [16]byte) bool { return a == [16]byte{} }

// isIPv6Multicast reports whether a is in ff00::/8.
func isIPv6Multicast(a [16]byte) bool { return a[0] == 0xff }

// ValidateNDP checks a received NDP message msg (the ICMPv6 message, not
// past the end of the IPv6 payload) against the validity rules of RFC
// 4861 (sections 6.1.1, 7.1.1 and 7.1.2) for router solicitations,
// neighbor solicitations and advertisements, with the IPv6 header ip it
// came in: hop limit 255, checksum, code 0, length, well-formed options;
// a source that is not multicast (RFC 4291 section 2.7; Linux's ipv6_rcv
// drops such packets before NDP sees them);
// a target that is not multicast; from the unspecified address only a
// solicitation without a source link-layer address option, and for a
// neighbor solicitation only to a solicited-node address; an
// advertisement to a multicast address with S clear. A message of
// another type is an error too. The error is an NDPError naming the rule
// broken.
func ValidateNDP(ip IPv6, msg ICMPv6) error {
	if !msg.IsValid() {
		return NDPErrShort
	}
	typ := msg.Type()
	var opts NDPOptions
	switch typ {
	case ICMPv6RouterSolicit:
		opts = NDPRouterSolicit(msg).Options()
	case ICMPv6NeighborSolicit, ICMPv6NeighborAdvert:
		if len(msg) < NDPNeighborSize {
			return NDPErrShort
		}
		opts = NDPNeighborSolicit(msg).Options()
	default:
		return NDPErrType
	}
	if ip.HopLimit() != NDPHopLimit {
		return NDPErrHopLimit
	}
	if msg.Code() != 0 {
		return NDPErrCode
	}
	src, dst := ip.Src(), ip.Dst()
	if isIPv6Multicast(src) {
		return NDPErrMulticastSource
	}
	if Checksum(msg, PseudoHeaderChecksum6(ProtocolICMPv6, src, dst, uint32(len(msg)))) != 0xffff {
		return NDPErrChecksum
	}
	if typ != ICMPv6RouterSolicit && isIPv6Multicast([16]byte(msg[ndpTarget:ndpTarget+16])) {
		return NDPErrMulticastTarget
	}
	hasSLLA := false
	for len(opts) > 0 {
		var opt NDPOption
		var err error
		if opt, opts, err = opts.Next(); err != nil {
			return err
		}
		hasSLLA = hasSLLA || opt.Type() == NDPOptSourceLinkLayer
	}
	if isIPv6Unspecified(src) {
		switch {
		case typ == ICMPv6NeighborAdvert:
			return NDPErrUnspecifiedAdvert
		case typ == ICMPv6NeighborSolicit && !IsSolicitedNodeAddr(dst):
			return NDPErrUnspecifiedNotSolicitedNode
		case hasSLLA:
			return NDPErrUnspecifiedWithLinkLayer
		}
	}
	if typ == ICMPv6NeighborAdvert && isIPv6Multicast(dst) && NDPNeighborAdvert(msg).Solicited() {
		return NDPErrMulticastSolicited
	}
	return nil
}
