package conntrack

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Opt is an optional value of a Filter: the option is given when Set.
type Opt[T any] struct {
	// V is the value.
	V T
	// Set tells that the option was given.
	Set bool
}

// Filter selects entries as the filter options of `conntrack -L` do: every
// option given must match, and the address and port options match the
// ORIGINAL tuple unless they name the reply one. The zero Filter matches
// everything.
type Filter struct {
	// Family is 4 or 6 (-f ipv4|ipv6), 0 for both.
	Family uint8
	// Proto is the protocol (-p).
	Proto Opt[uint8]
	// Src and Dst match the original tuple's addresses (-s, -d), ReplySrc
	// and ReplyDst the reply tuple's (-r, -q); an invalid (zero) Prefix
	// matches any address.
	Src, Dst, ReplySrc, ReplyDst netip.Prefix
	// Sport and Dport match the original tuple's ports (--sport,
	// --dport), ReplySport and ReplyDport the reply tuple's
	// (--reply-port-src, --reply-port-dst); only entries of a port
	// protocol (TCP, UDP, UDP-Lite, SCTP, DCCP) match them.
	Sport, Dport, ReplySport, ReplyDport Opt[uint16]
	// ICMPType, ICMPCode and ICMPID match an ICMP or ICMPv6 entry's
	// original tuple (--icmp-type, --icmp-code, --icmp-id).
	ICMPType, ICMPCode Opt[uint8]
	ICMPID             Opt[uint16]
	// State matches a TCP entry's state (--state).
	State Opt[TCPConntrack]
	// Mark matches the mark under MarkMask (-m MARK[/MASK]; the parser
	// makes the mask all ones when none is given).
	Mark     Opt[uint32]
	MarkMask uint32
	// Zone matches the zone (-w).
	Zone Opt[uint16]
}

// Match reports whether e passes every option of f.
func (f *Filter) Match(e *Entry) bool {
	o, r := &e.Tuple[DirOriginal], &e.Tuple[DirReply]
	switch {
	case f.Family != 0 && o.Family != f.Family,
		f.Proto.Set && o.Proto != f.Proto.V,
		!matchAddr(f.Src, o.SrcAddr()), !matchAddr(f.Dst, o.DstAddr()),
		!matchAddr(f.ReplySrc, r.SrcAddr()), !matchAddr(f.ReplyDst, r.DstAddr()),
		f.Mark.Set && e.Mark&f.MarkMask != f.Mark.V&f.MarkMask,
		f.Zone.Set && o.Zone != f.Zone.V,
		f.State.Set && (o.Proto != ProtoTCP || e.TCP.State != f.State.V):
		return false
	}
	if f.Sport.Set || f.Dport.Set || f.ReplySport.Set || f.ReplyDport.Set {
		if !hasPorts(o.Proto) ||
			f.Sport.Set && o.SrcPort != f.Sport.V || f.Dport.Set && o.DstPort != f.Dport.V ||
			f.ReplySport.Set && r.SrcPort != f.ReplySport.V || f.ReplyDport.Set && r.DstPort != f.ReplyDport.V {
			return false
		}
	}
	if f.ICMPType.Set || f.ICMPCode.Set || f.ICMPID.Set {
		if o.Proto != ProtoICMP && o.Proto != ProtoICMPv6 ||
			f.ICMPType.Set && uint8(o.DstPort>>8) != f.ICMPType.V ||
			f.ICMPCode.Set && uint8(o.DstPort) != f.ICMPCode.V ||
			f.ICMPID.Set && o.SrcPort != f.ICMPID.V {
			return false
		}
	}
	return true
}

func matchAddr(p netip.Prefix, a netip.Addr) bool { return !p.IsValid() || p.Contains(a) }

// hasPorts reports whether protocol p's tuples hold ports.
func hasPorts(p uint8) bool {
	switch p {
	case ProtoTCP, ProtoUDP, protoUDPLite, protoDCCP, protoSCTP:
		return true
	}
	return false
}

// ParseProto parses a protocol as `conntrack -p` takes it: a name
// ProtoName returns (but "unknown") or a number 0 to 255.
func ParseProto(s string) (uint8, error) {
	for p, n := range protoNames {
		if n == s {
			return p, nil
		}
	}
	n, err := strconv.ParseUint(s, 10, 8)
	if err != nil {
		return 0, fmt.Errorf("%q is not a protocol (tcp, udp, udplite, icmp, icmpv6, sctp, gre, dccp, or a number 0-255)", s)
	}
	return uint8(n), nil
}

// ParseFilter parses the filter options of `conntrack -L` (each as
// "-o VALUE", "--option VALUE" or "--option=VALUE"):
//
//	-f, --family ipv4|ipv6         the family
//	-p, --proto NAME|NUM           the protocol (tcp, udp, icmp, 47, ...)
//	-s, --src, --orig-src ADDR[/LEN]   the original source address
//	-d, --dst, --orig-dst ADDR[/LEN]   the original destination address
//	-r, --reply-src ADDR[/LEN]     the reply source address
//	-q, --reply-dst ADDR[/LEN]     the reply destination address
//	--sport, --orig-port-src PORT  the original source port (needs -p
//	                               tcp, udp, udplite, sctp or dccp)
//	--dport, --orig-port-dst PORT  the original destination port (likewise)
//	--reply-port-src, --reply-port-dst PORT
//	--icmp-type, --icmp-code, --icmp-id N   (needs -p icmp or icmpv6)
//	--state STATE                  a TCP state, e.g. ESTABLISHED (needs -p tcp)
//	-m, --mark MARK[/MASK]         the mark (decimal or 0x hex)
//	-w, --zone ZONE                the zone
//
// As conntrack, an address sets the family, and addresses and -f of
// different families are an error ("mismatched address family").
func ParseFilter(args []string) (Filter, error) {
	var f Filter
	for i := 0; i < len(args); i++ {
		opt, val, hasVal := args[i], "", false
		if strings.HasPrefix(opt, "--") {
			opt, val, hasVal = strings.Cut(opt, "=")
		}
		if !hasVal {
			if i+1 >= len(args) {
				return f, fmt.Errorf("%s needs a value", opt)
			}
			i++
			val = args[i]
		}
		if err := f.set(opt, val); err != nil {
			return f, fmt.Errorf("%s %s: %w", opt, val, err)
		}
	}
	return f, f.check()
}

// set applies one option.
func (f *Filter) set(opt, val string) error {
	var err error
	switch opt {
	case "-f", "--family":
		switch val {
		case "ipv4":
			f.Family = 4
		case "ipv6":
			f.Family = 6
		default:
			return fmt.Errorf("want ipv4 or ipv6")
		}
	case "-p", "--proto":
		f.Proto.V, err = ParseProto(val)
		f.Proto.Set = err == nil
	case "-s", "--src", "--orig-src":
		f.Src, err = parseHostOrPrefix(val)
	case "-d", "--dst", "--orig-dst":
		f.Dst, err = parseHostOrPrefix(val)
	case "-r", "--reply-src":
		f.ReplySrc, err = parseHostOrPrefix(val)
	case "-q", "--reply-dst":
		f.ReplyDst, err = parseHostOrPrefix(val)
	case "--sport", "--orig-port-src":
		f.Sport, err = parseOpt[uint16](val)
	case "--dport", "--orig-port-dst":
		f.Dport, err = parseOpt[uint16](val)
	case "--reply-port-src":
		f.ReplySport, err = parseOpt[uint16](val)
	case "--reply-port-dst":
		f.ReplyDport, err = parseOpt[uint16](val)
	case "--icmp-type":
		f.ICMPType, err = parseOpt[uint8](val)
	case "--icmp-code":
		f.ICMPCode, err = parseOpt[uint8](val)
	case "--icmp-id":
		f.ICMPID, err = parseOpt[uint16](val)
	case "--state":
		f.State = Opt[TCPConntrack]{}
		for s := TCPSynSent; s < TCPMax; s++ {
			if strings.EqualFold(val, s.String()) || s == TCPSynSent2 && strings.EqualFold(val, "LISTEN") {
				f.State = Opt[TCPConntrack]{s, true}
			}
		}
		if !f.State.Set {
			err = fmt.Errorf("not a TCP state (%s)", strings.Join(tcpStateNames[TCPSynSent:], ", "))
		}
	case "-m", "--mark":
		m, mask, hasMask := strings.Cut(val, "/")
		var v, k uint64 = 0, 0xffffffff
		if v, err = strconv.ParseUint(m, 0, 32); err == nil && hasMask {
			k, err = strconv.ParseUint(mask, 0, 32)
		}
		if err != nil {
			return fmt.Errorf("want MARK or MARK/MASK, 32-bit numbers")
		}
		f.Mark, f.MarkMask = Opt[uint32]{uint32(v), true}, uint32(k)
	case "-w", "--zone":
		f.Zone, err = parseOpt[uint16](val)
	default:
		return fmt.Errorf("unknown option (want -f, -p, -s, -d, -r, -q, --sport, --dport, --reply-port-src, --reply-port-dst, --icmp-type, --icmp-code, --icmp-id, --state, -m, -w)")
	}
	return err
}

// check refuses options that cannot go together, as conntrack does.
func (f *Filter) check() error {
	fam := f.Family
	for _, p := range []netip.Prefix{f.Src, f.Dst, f.ReplySrc, f.ReplyDst} {
		if !p.IsValid() {
			continue
		}
		pf := uint8(4)
		if p.Addr().Is6() {
			pf = 6
		}
		if fam != 0 && fam != pf {
			return fmt.Errorf("mismatched address family")
		}
		fam = pf
	}
	f.Family = fam
	if (f.Sport.Set || f.Dport.Set || f.ReplySport.Set || f.ReplyDport.Set) && (!f.Proto.Set || !hasPorts(f.Proto.V)) {
		return fmt.Errorf("port options need -p tcp, udp, udplite, sctp or dccp")
	}
	if (f.ICMPType.Set || f.ICMPCode.Set || f.ICMPID.Set) && (!f.Proto.Set || f.Proto.V != ProtoICMP && f.Proto.V != ProtoICMPv6) {
		return fmt.Errorf("--icmp-type, --icmp-code and --icmp-id need -p icmp or icmpv6")
	}
	if f.State.Set && (!f.Proto.Set || f.Proto.V != ProtoTCP) {
		return fmt.Errorf("--state needs -p tcp")
	}
	return nil
}

// parseHostOrPrefix parses an address (a host) or an address/length.
func parseHostOrPrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("not an address or prefix: %w", err)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("not an IPv4 or IPv6 address")
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// parseOpt parses a decimal number that fits T.
func parseOpt[T uint8 | uint16](s string) (Opt[T], error) {
	var zero T
	bits := 8
	if ^zero > 0xff {
		bits = 16
	}
	n, err := strconv.ParseUint(s, 10, bits)
	if err != nil {
		return Opt[T]{}, fmt.Errorf("want a number 0 to %d", ^zero)
	}
	return Opt[T]{T(n), true}, nil
}
