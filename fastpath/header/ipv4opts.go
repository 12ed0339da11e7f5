package header

import (
	"encoding/binary"
	"errors"
	"strconv"
)

// IPv4 option types (RFC 791, RFC 1108, RFC 2113, IANA "IP Option
// Numbers"): the copied flag, class and number in one byte.
const (
	IPv4OptEnd         = 0
	IPv4OptNOP         = 1
	IPv4OptRecordRoute = 7
	IPv4OptTimestamp   = 68
	IPv4OptSecurity    = 130
	IPv4OptLSRR        = 131
	IPv4OptCIPSO       = 134
	IPv4OptStreamID    = 136
	IPv4OptSSRR        = 137
	IPv4OptRouterAlert = 148
)

// IPv4 timestamp option flags (RFC 791): what each entry holds.
const (
	// IPv4TSOnly: timestamps only.
	IPv4TSOnly = 0
	// IPv4TSAndAddr: each router's address, then its timestamp.
	IPv4TSAndAddr = 1
	// IPv4TSPrespec: addresses the sender chose; only those routers fill
	// in their timestamp.
	IPv4TSPrespec = 3
)

// IPv4MaxOptions is the most option bytes an IPv4 header holds (IHL 15).
const IPv4MaxOptions = 40

// IPv4RouteOption is a record route, loose or strict source route option
// (RFC 791, section 3.1):
//
//	+--------+--------+--------+---------//--------+
//	|  Type  | Length | Pointer|     route data    |
//	+--------+--------+--------+---------//--------+
//
// The pointer is the 1-based offset, in the option, of the next address
// slot; past the length, the route data is full. A view must hold
// Length() bytes, 3 at least.
type IPv4RouteOption []byte

const (
	ipv4OptLen = 1
	ipv4OptPtr = 2
	ipv4OptOF  = 3
)

// Length returns the option's length, type and length bytes included.
func (b IPv4RouteOption) Length() int { return int(b[ipv4OptLen]) }

// Pointer returns the 1-based offset of the next address slot.
func (b IPv4RouteOption) Pointer() int { return int(b[ipv4OptPtr]) }

// IPv4TimestampOption is an internet timestamp option (RFC 791, section
// 3.1):
//
//	+--------+--------+--------+--------+
//	|01000100| length | pointer|oflw|flg|
//	+--------+--------+--------+--------+
//	|         internet address          |
//	+--------+--------+--------+--------+
//	|             timestamp             |
//	+--------+--------+--------+--------+
//	|                 .                 |
//
// The pointer is the 1-based offset of the next free entry (5 at least),
// overflow counts the routers that found no room, the flags say what an
// entry holds (IPv4TSOnly, IPv4TSAndAddr, IPv4TSPrespec). A timestamp is
// milliseconds since midnight UT. A view must hold Length() bytes, 4 at
// least.
type IPv4TimestampOption []byte

// Length returns the option's length, type and length bytes included.
func (b IPv4TimestampOption) Length() int { return int(b[ipv4OptLen]) }

// Pointer returns the 1-based offset of the next free entry.
func (b IPv4TimestampOption) Pointer() int { return int(b[ipv4OptPtr]) }

// Overflow returns the count of routers that could not add an entry.
func (b IPv4TimestampOption) Overflow() uint8 { return b[ipv4OptOF] >> 4 }

// Flags returns what an entry holds (IPv4TSOnly, ...).
func (b IPv4TimestampOption) Flags() uint8 { return b[ipv4OptOF] & 0xf }

// IPv4OptionProblem is why Linux refuses an IPv4 header's options
// (ip_options_compile): the offset, in the IP header, of the offending
// byte, which the ICMP parameter problem it sends points at (RFC 792).
// It is an error that allocates nothing when returned.
type IPv4OptionProblem uint8

// Error describes the problem.
func (e IPv4OptionProblem) Error() string {
	return "IPv4 options: bad option at header byte " + strconv.Itoa(int(e))
}

// Pointer returns the parameter problem's pointer: the offset of the
// offending byte in the IP header.
func (e IPv4OptionProblem) Pointer() uint8 { return uint8(e) }

var (
	// ErrIPv4SourceRoute is the error of a packet with a loose or strict
	// source route option, which Linux drops with
	// net.ipv4.conf.all.accept_source_route 0, its default.
	ErrIPv4SourceRoute = errors.New("IPv4 options: source route not accepted")
	// ErrIPv4OptionsNoEcho is the error of options that Linux cannot
	// echo in a reply (ip_options_echo): a record route or timestamp
	// option with room for the request's entry but not for the
	// reply's. Linux sends no reply.
	ErrIPv4OptionsNoEcho = errors.New("IPv4 options: no room to echo record route or timestamp")
)

// ipv4Options is a header's options as ip_options_compile finds them:
// the offsets (in the options) of the record route, timestamp, source
// route and CIPSO options, -1 for none, and which entries the receiver
// filled.
type ipv4Options struct {
	rr, ts, srr, cipso     int
	rrAddr, tsAddr, tsTime bool
}

// compileIPv4Options checks the options o of an IPv4 header received by
// a host whose address it was sent to is addr, as Linux's
// ip_options_compile does on receipt, and records them: o must be a copy
// the receiver may fill (its record route slot and timestamp entries,
// with addr and now; a timestamp overflow count incremented), as Linux
// fills the received header. local reports whether an address is the
// receiver's (or a broadcast, multicast or zero one), for prespecified
// timestamps; nil means addr alone.
func compileIPv4Options(o []byte, addr [4]byte, now uint32, local func([4]byte) bool) (ipv4Options, error) {
	c := ipv4Options{rr: -1, ts: -1, srr: -1, cipso: -1}
	problem := func(off int) error { return IPv4OptionProblem(IPv4MinSize + off) }
	for i := 0; i < len(o); {
		switch o[i] {
		case IPv4OptEnd:
			return c, nil
		case IPv4OptNOP:
			i++
			continue
		}
		if len(o)-i < 2 {
			return c, problem(i)
		}
		n := int(o[i+ipv4OptLen])
		if n < 2 || n > len(o)-i {
			return c, problem(i)
		}
		opt := o[i : i+n]
		switch opt[0] {
		case IPv4OptLSRR, IPv4OptSSRR:
			switch {
			case n < 3:
				return c, problem(i + ipv4OptLen)
			case opt[ipv4OptPtr] < 4:
				return c, problem(i + ipv4OptPtr)
			case c.srr >= 0:
				return c, problem(i)
			}
			c.srr = i
		case IPv4OptRecordRoute:
			switch {
			case c.rr >= 0:
				return c, problem(i)
			case n < 3:
				return c, problem(i + ipv4OptLen)
			case opt[ipv4OptPtr] < 4:
				return c, problem(i + ipv4OptPtr)
			}
			if ptr := int(opt[ipv4OptPtr]); ptr <= n {
				if ptr+3 > n {
					return c, problem(i + ipv4OptPtr)
				}
				copy(opt[ptr-1:], addr[:])
				opt[ipv4OptPtr] += 4
				c.rrAddr = true
			}
			c.rr = i
		case IPv4OptTimestamp:
			switch {
			case c.ts >= 0:
				return c, problem(i)
			case n < 4:
				return c, problem(i + ipv4OptLen)
			case opt[ipv4OptPtr] < 5:
				return c, problem(i + ipv4OptPtr)
			}
			ts := IPv4TimestampOption(opt)
			if ptr := ts.Pointer(); ptr <= n {
				if ptr+3 > n {
					return c, problem(i + ipv4OptPtr)
				}
				switch ts.Flags() {
				case IPv4TSOnly:
					binary.BigEndian.PutUint32(opt[ptr-1:], now)
					opt[ipv4OptPtr] += 4
					c.tsTime = true
				case IPv4TSAndAddr:
					if ptr+7 > n {
						return c, problem(i + ipv4OptPtr)
					}
					copy(opt[ptr-1:], addr[:])
					binary.BigEndian.PutUint32(opt[ptr+3:], now)
					opt[ipv4OptPtr] += 8
					c.tsAddr, c.tsTime = true, true
				case IPv4TSPrespec:
					if ptr+7 > n {
						return c, problem(i + ipv4OptPtr)
					}
					if !isLocal4([4]byte(opt[ptr-1:ptr+3]), addr, local) {
						break
					}
					binary.BigEndian.PutUint32(opt[ptr+3:], now)
					opt[ipv4OptPtr] += 8
					c.tsTime = true
				}
			} else if ts.Flags() != IPv4TSPrespec {
				of := ts.Overflow()
				if of == 15 {
					return c, problem(i + ipv4OptOF)
				}
				opt[ipv4OptOF] = ts.Flags() | (of+1)<<4
			}
			c.ts = i
		case IPv4OptRouterAlert:
			if n < 4 {
				return c, problem(i + ipv4OptLen)
			}
		case IPv4OptCIPSO:
			// No CIPSO DOI is configured: cipso_v4_validate refuses
			// every one, at its length or its DOI.
			if c.cipso >= 0 {
				return c, problem(i)
			}
			if n < 8 {
				return c, problem(i + ipv4OptLen)
			}
			return c, problem(i + 2)
		}
		i += n
	}
	return c, nil
}

// isLocal4 reports whether a is not another host's unicast address:
// addr, or what local says.
func isLocal4(a, addr [4]byte, local func([4]byte) bool) bool {
	if local == nil {
		return a == addr
	}
	return local(a)
}

// CheckIPv4Options reports whether Linux accepts the options of IPv4
// header ip (a valid one) on receipt, as ip_rcv_options does: nil; an
// IPv4OptionProblem (Linux answers with an ICMP parameter problem
// pointing at it and drops the packet); or ErrIPv4SourceRoute (dropped
// silently). It does not allocate.
func CheckIPv4Options(ip IPv4) error {
	hl := ip.HeaderLength()
	if hl <= IPv4MinSize {
		return nil
	}
	var o [IPv4MaxOptions]byte
	n := copy(o[:], ip[IPv4MinSize:hl])
	c, err := compileIPv4Options(o[:n], ip.Dst(), 0, nil)
	if err != nil {
		return err
	}
	if c.srr >= 0 {
		return ErrIPv4SourceRoute
	}
	return nil
}

// EchoIPv4Options writes into dst (IPv4MaxOptions bytes at least) the
// options of the reply Linux sends to the IPv4 packet ip, received at
// its destination address (the reply's source) and answered at once
// (icmp_reply: ip_options_compile on receipt, ip_options_echo, then
// ip_options_build), and returns their length, a multiple of 4. Only
// record route and timestamp options are echoed, in that order whatever
// their order in ip, each as long as in the request, with the receiver's
// entry and then the reply's filled in where there is room (the
// destination address; the time now, in milliseconds since midnight UT);
// an END pads them. Every other option (NOP, router alert, security, an
// unknown one) is left out. local reports whether an address is the
// receiver's or not unicast, for prespecified timestamps (nil: ip's
// destination alone). It fails as CheckIPv4Options, or with
// ErrIPv4OptionsNoEcho.
func EchoIPv4Options(dst []byte, ip IPv4, now uint32, local func([4]byte) bool) (int, error) {
	hl := ip.HeaderLength()
	if hl <= IPv4MinSize {
		return 0, nil
	}
	_ = dst[IPv4MaxOptions-1]
	var o [IPv4MaxOptions]byte
	optLen := copy(o[:], ip[IPv4MinSize:hl])
	addr := ip.Dst()
	c, err := compileIPv4Options(o[:optLen], addr, now, local)
	if err != nil {
		return 0, err
	}
	if c.srr >= 0 {
		return 0, ErrIPv4SourceRoute
	}
	n := 0
	if c.rr >= 0 {
		rr := o[c.rr:]
		l, ptr := int(rr[ipv4OptLen]), int(rr[ipv4OptPtr])
		d := dst[n : n+l]
		copy(d, rr[:l])
		if c.rrAddr && ptr <= l {
			if ptr+3 > l {
				return 0, ErrIPv4OptionsNoEcho
			}
			copy(d[ptr-1:], addr[:])
			d[ipv4OptPtr] = byte(ptr + 4)
		}
		n += l
	}
	if c.ts >= 0 {
		ts := o[c.ts:]
		l, ptr := int(ts[ipv4OptLen]), int(ts[ipv4OptPtr])
		d := dst[n : n+l]
		copy(d, ts[:l])
		if ptr <= l {
			if c.tsAddr {
				if ptr+3 > l {
					return 0, ErrIPv4OptionsNoEcho
				}
				copy(d[ptr-1:], addr[:])
				ptr += 4
			}
			if c.tsTime {
				if ptr+3 > l {
					return 0, ErrIPv4OptionsNoEcho
				}
				switch {
				case IPv4TimestampOption(d).Flags() != IPv4TSPrespec:
					binary.BigEndian.PutUint32(d[ptr-1:], now)
					ptr += 4
				case ptr+7 <= l && isLocal4([4]byte(d[ptr-1:ptr+3]), addr, local):
					binary.BigEndian.PutUint32(d[ptr+3:], now)
					ptr += 8
				}
			}
			d[ipv4OptPtr] = byte(ptr)
		}
		n += l
	}
	for n&3 != 0 {
		dst[n] = IPv4OptEnd
		n++
	}
	return n, nil
}

// ICMPv4EchoReplyOptions is ICMPv4EchoReplyInPlace for a request that
// may carry IP options: the reply, written in place over ip, carries the
// options Linux echoes (EchoIPv4Options, with now and local), its header
// length and total length follow them, and the echo message moves up
// behind them. It returns the reply's length, which is never more than
// the request's. It fails, changing nothing, as ICMPv4EchoReplyInPlace
// does (but for options), or as EchoIPv4Options does: an
// IPv4OptionProblem (Linux sends a parameter problem),
// ErrIPv4SourceRoute or ErrIPv4OptionsNoEcho (no reply). It does not
// allocate.
func ICMPv4EchoReplyOptions(ip IPv4, ttl uint8, id uint16, now uint32, local func([4]byte) bool) (int, error) {
	switch {
	case !ip.IsValid(len(ip)):
		return 0, EchoErrInvalid
	case int(ip.TotalLength()) != len(ip):
		return 0, EchoErrPadding
	case ip.IsFragment():
		return 0, EchoErrFragment
	case ip.Protocol() != ProtocolICMP:
		return 0, EchoErrNotICMP
	}
	m := ICMPv4(ip.Payload())
	switch {
	case !m.IsValid():
		return 0, EchoErrShort
	case m.Type() != ICMPv4Echo:
		return 0, EchoErrNotRequest
	case Checksum(m, 0) != 0xffff:
		return 0, EchoErrChecksum
	}
	src, dst := ip.Src(), ip.Dst()
	if isIPv4Multicast(dst) || dst == [4]byte{255, 255, 255, 255} {
		return 0, EchoErrGroupDst
	}
	var o [IPv4MaxOptions]byte
	n, err := EchoIPv4Options(o[:], ip, now, local)
	if err != nil {
		return 0, err
	}
	if ttl == 0 {
		ttl = DefaultTTL
	}
	hl := IPv4MinSize + n
	size := hl + len(m)
	copy(ip[hl:], m) // the message moves up (hl ≤ the request's)
	tos := ip[1]
	putIPv4(ip, tos, uint16(size), id, ttl, ProtocolICMP, dst, src)
	ip[ipv4VersIHL] = 0x40 | byte(hl/4)
	copy(ip[IPv4MinSize:hl], o[:n])
	ip.SetChecksum(0)
	ip.SetChecksum(^Checksum(ip[:hl], 0))
	ICMPv4(ip[hl:size]).SetType(ICMPv4EchoReply)
	return size, nil
}
