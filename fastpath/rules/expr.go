package rules

import (
	"fmt"
	"strings"
)

// Expr is one nf_tables expression of a rule. The concrete types are the
// kernel's expressions, one type per way the kernel runs it (Payload
// loads, PayloadSet stores); a type switch on them is the interpreter's
// dispatch.
type Expr interface {
	// Name returns the kernel's name of the expression ("payload").
	Name() string
	// String prints the expression in the style of nft --debug=netlink.
	String() string
}

// Payload loads Len bytes at Offset from the header Base into DReg. A
// header the packet does not have, or one too short, ends the rule (the
// kernel's NFT_BREAK).
type Payload struct {
	Base   PayloadBase
	Offset uint32
	Len    uint32
	DReg   Register
}

// PayloadSet writes Len bytes from SReg at Offset of the header Base, then
// fixes the checksum at CsumOffset of that header when CsumType is not
// CsumNone (and the layer 4 checksum too with CsumPseudoHeader).
type PayloadSet struct {
	Base       PayloadBase
	Offset     uint32
	Len        uint32
	SReg       Register
	CsumType   CsumType
	CsumOffset uint32
	CsumFlags  CsumFlags
}

// Cmp compares the register SReg with Data, byte by byte as memcmp does
// (so big-endian data compares as numbers); no match ends the rule.
type Cmp struct {
	Op   CmpOp
	SReg Register
	Data []byte
}

// Range matches when From ≤ SReg ≤ To (memcmp order) for RangeEq, when
// not for RangeNeq.
type Range struct {
	Op   RangeOp
	SReg Register
	From []byte
	To   []byte
}

// Bitwise computes DReg from Len bytes of SReg: for BitwiseMaskXor
// (sreg & Mask) ^ Xor; for the shifts, each 32-bit word (host order)
// shifted by Shift bits; for BitwiseAnd, BitwiseOr and BitwiseXor, SReg
// op SReg2.
type Bitwise struct {
	Op    BitwiseOp
	SReg  Register
	DReg  Register
	Len   uint32
	Mask  []byte   // BitwiseMaskXor
	Xor   []byte   // BitwiseMaskXor
	Shift uint32   // BitwiseLShift, BitwiseRShift
	SReg2 Register // BitwiseAnd, BitwiseOr, BitwiseXor
}

// Byteorder converts Len bytes from SReg into DReg, Size bytes (2, 4 or
// 8) at a time, between network and host byte order.
type Byteorder struct {
	Op   ByteorderOp
	SReg Register
	DReg Register
	Len  uint32
	Size uint32
}

// Meta loads packet metadata Key into DReg.
type Meta struct {
	Key  MetaKey
	DReg Register
}

// MetaSet sets packet metadata Key (mark, priority, …) from SReg.
type MetaSet struct {
	Key  MetaKey
	SReg Register
}

// LookupFlags are a lookup's flags (NFT_LOOKUP_F_*).
type LookupFlags uint32

// LookupInvert makes a lookup match when the key is not in the set.
const LookupInvert LookupFlags = 1 << 0

// Lookup looks SReg up in the set named Set. Without a data register
// (Map false) it matches when the key is in the set (not in it with
// LookupInvert); with one, it loads the element's data into DReg, and a
// verdict map's lookup (DReg RegVerdict) gives the rule its verdict.
type Lookup struct {
	Set   string
	SetID uint32
	SReg  Register
	Map   bool
	DReg  Register
	Flags LookupFlags
}

// Immediate loads Data into DReg, or sets the verdict (DReg RegVerdict).
type Immediate struct {
	DReg    Register
	Data    []byte
	Verdict Verdict
}

// Counter counts the packets and bytes that reach it.
type Counter struct {
	Packets uint64
	Bytes   uint64
}

// Limit matches while the rate stays within Rate per Unit seconds
// (packets, or bytes with LimitBytes) with a Burst allowance; beyond it
// the rule ends, or the other way round with LimitInvert.
type Limit struct {
	Rate  uint64
	Unit  uint64 // seconds
	Burst uint32
	Type  LimitType
	Flags LimitFlags
}

// LogType says where a log expression logs.
type LogType uint8

// Log destinations.
const (
	LogSyslog LogType = iota // the kernel log, at Level
	LogNflog                 // an nflog group
)

// Log logs the packet with Prefix: to the kernel log at Level with Flags
// (LogSyslog), or to nflog Group with Snaplen and QThreshold (LogNflog).
type Log struct {
	Type       LogType
	Prefix     string
	Level      uint32 // 0 (emerg) … 7 (debug), 8 audit
	Flags      uint32 // NF_LOG_* (tcpseq 1, tcpopt 2, ipopt 4, uid 8, macdecode 0x20)
	Group      uint16
	Snaplen    uint32
	QThreshold uint16
}

// Reject drops the packet and answers it: an ICMP (or ICMPv6, by the
// packet's family) error of Code, a TCP reset, or for RejectICMPX an
// abstract code (NFT_REJECT_ICMPX_*) mapped to either family.
type Reject struct {
	Type RejectType
	Code uint8
}

// QuotaFlags are a quota's flags (NFT_QUOTA_F_*).
type QuotaFlags uint32

// Quota flags.
const (
	QuotaInvert   QuotaFlags = 1 << 0 // "over": match once the quota is used
	QuotaDepleted QuotaFlags = 1 << 1
)

// Quota matches until Bytes bytes have passed it (after, with
// QuotaInvert); Consumed is what has passed so far.
type Quota struct {
	Bytes    uint64
	Consumed uint64
	Flags    QuotaFlags
}

// CtDir is the direction of a directional conntrack key. The zero
// value means none was given (the kernel's attribute is absent);
// otherwise it is the kernel's IP_CT_DIR_* plus one.
type CtDir uint8

// Conntrack directions.
const (
	CtDirNone     CtDir = iota
	CtDirOriginal       // IP_CT_DIR_ORIGINAL
	CtDirReply          // IP_CT_DIR_REPLY
)

// Ct loads conntrack information Key (of Direction) into DReg.
type Ct struct {
	Key       CtKey
	Direction CtDir
	DReg      Register
}

// CtSet sets conntrack information Key (mark, zone, …) from SReg.
type CtSet struct {
	Key       CtKey
	Direction CtDir
	SReg      Register
}

// Notrack marks the packet as untracked.
type Notrack struct{}

// NatFlags are NAT range flags (NF_NAT_RANGE_*).
type NatFlags uint32

// NAT flags.
const (
	NatMapIPs         NatFlags = 1 << 0
	NatProtoSpecified NatFlags = 1 << 1
	NatRandom         NatFlags = 1 << 2
	NatPersistent     NatFlags = 1 << 3
	NatRandomFully    NatFlags = 1 << 4
	NatProtoOffset    NatFlags = 1 << 5
	NatNetmap         NatFlags = 1 << 6
)

var natFlagNames = []string{"map-ips", "proto-specified", "random", "persistent", "fully-random", "proto-offset", "netmap"}

// String lists the flags by name.
func (f NatFlags) String() string { return flagString(uint32(f), natFlagNames) }

// Nat is snat or dnat: addresses from RegAddrMin…RegAddrMax and ports
// from RegProtoMin…RegProtoMax (0 where absent) of Family.
type Nat struct {
	Type        NatType
	Family      Family
	RegAddrMin  Register
	RegAddrMax  Register
	RegProtoMin Register
	RegProtoMax Register
	Flags       NatFlags
}

// Masq is masquerade: source NAT to the output interface's address,
// ports from RegProtoMin…RegProtoMax (0 where absent).
type Masq struct {
	Flags       NatFlags
	RegProtoMin Register
	RegProtoMax Register
}

// Redir is redirect: destination NAT to the local host, ports from
// RegProtoMin…RegProtoMax (0 where absent).
type Redir struct {
	Flags       NatFlags
	RegProtoMin Register
	RegProtoMax Register
}

// DynsetFlags are a dynset's flags (NFT_DYNSET_F_*).
type DynsetFlags uint32

// Dynset flags.
const (
	DynsetInvert DynsetFlags = 1 << 0
	DynsetExpr   DynsetFlags = 1 << 1
)

// Dynset adds, updates or deletes the element SRegKey (with data
// SRegData, 0 if none) in Set from the packet path, with Timeout
// (milliseconds, 0 the set's default) and the element's Exprs.
type Dynset struct {
	Set      string
	SetID    uint32
	Op       DynsetOp
	SRegKey  Register
	SRegData Register
	Timeout  uint64
	Flags    DynsetFlags
	Exprs    []Expr
}

// Objref runs a named object: the object named Object of Type, or (Set not
// empty) the object that the object map Set gives for the key in SReg.
type Objref struct {
	Type   ObjectType
	Object string
	Set    string
	SetID  uint32
	SReg   Register
}

// ExthdrFlags are an exthdr's flags (NFT_EXTHDR_F_*).
type ExthdrFlags uint32

// ExthdrPresent loads 1 if the header or option exists, 0 if not.
const ExthdrPresent ExthdrFlags = 1 << 0

// Exthdr loads (DReg), writes (SReg) or with neither removes Len bytes at
// Offset of the IPv6 extension header, IPv4 or TCP option or SCTP chunk
// of Type.
type Exthdr struct {
	Op     ExthdrOp
	Type   uint8
	Offset uint32
	Len    uint32
	Flags  ExthdrFlags
	DReg   Register
	SReg   Register
}

// FibFlags say which fields key a FIB lookup (NFTA_FIB_F_*).
type FibFlags uint32

// FIB flags.
const (
	FibSaddr   FibFlags = 1 << 0
	FibDaddr   FibFlags = 1 << 1
	FibMark    FibFlags = 1 << 2
	FibIIF     FibFlags = 1 << 3
	FibOIF     FibFlags = 1 << 4
	FibPresent FibFlags = 1 << 5
)

var fibFlagNames = []string{"saddr", "daddr", "mark", "iif", "oif", "present"}

// String lists the flags by name.
func (f FibFlags) String() string { return flagString(uint32(f), fibFlagNames) }

// Fib looks the packet up in the FIB and loads Result into DReg.
type Fib struct {
	Result FibResult
	Flags  FibFlags
	DReg   Register
}

// Rt loads routing information Key into DReg.
type Rt struct {
	Key  RtKey
	DReg Register
}

// Socket loads information Key of the packet's socket into DReg.
type Socket struct {
	Key   SocketKey
	DReg  Register
	Level uint32 // cgroupv2 ancestor level
}

// Queue hands the packet to user space: queues Num…Num+Total-1, or the
// queue number in SRegQnum; Flags NFT_QUEUE_FLAG_* (bypass 1, fanout 2).
type Queue struct {
	Num      uint16
	Total    uint16
	Flags    uint16
	SRegQnum Register
}

// Hash loads into DReg a hash of Len bytes of SReg (Jenkins, with Seed)
// or of the flow (symmetric), modulo Modulus plus Offset.
type Hash struct {
	Type    HashType
	SReg    Register
	DReg    Register
	Len     uint32
	Modulus uint32
	Seed    uint32
	Offset  uint32
}

// Numgen loads a number (incremental or random) modulo Modulus plus
// Offset into DReg.
type Numgen struct {
	Type    NumgenType
	DReg    Register
	Modulus uint32
	Offset  uint32
}

// Dup sends a copy of the packet to the address in SRegAddr via the
// device in SRegDev (0 where absent).
type Dup struct {
	SRegAddr Register
	SRegDev  Register
}

// Fwd forwards the packet to the device in SRegDev (netdev family), to
// the address in SRegAddr of NFProto if given.
type Fwd struct {
	SRegDev  Register
	SRegAddr Register
	NFProto  Family
}

// Connlimit matches while the packet's conntrack zone has at most Count
// connections (more with Flags 1, inverted).
type Connlimit struct {
	Count uint32
	Flags uint32
}

// Last records when it last saw a packet: Set is 1 once it has, Msecs
// how long ago.
type Last struct {
	Set   uint32
	Msecs uint64
}

// Synproxy answers SYNs itself with MSS and Wscale and Flags.
type Synproxy struct {
	MSS    uint16
	Wscale uint8
	Flags  uint32
}

// Tproxy diverts the packet to a local socket at the address in RegAddr
// and port in RegPort (0 where absent).
type Tproxy struct {
	Family  Family
	RegAddr Register
	RegPort Register
}

// Xfrm loads IPsec state Key of direction Dir (0 in, 1 out) and
// security path entry SPNum into DReg.
type Xfrm struct {
	Key   uint32
	Dir   uint8
	SPNum uint32
	DReg  Register
}

// Osf loads the passive OS fingerprint into DReg.
type Osf struct {
	DReg  Register
	TTL   uint8
	Flags uint32
}

// Name returns "payload".
func (*Payload) Name() string { return "payload" }

// Name returns "payload".
func (*PayloadSet) Name() string { return "payload" }

// Name returns "cmp".
func (*Cmp) Name() string { return "cmp" }

// Name returns "range".
func (*Range) Name() string { return "range" }

// Name returns "bitwise".
func (*Bitwise) Name() string { return "bitwise" }

// Name returns "byteorder".
func (*Byteorder) Name() string { return "byteorder" }

// Name returns "meta".
func (*Meta) Name() string { return "meta" }

// Name returns "meta".
func (*MetaSet) Name() string { return "meta" }

// Name returns "lookup".
func (*Lookup) Name() string { return "lookup" }

// Name returns "immediate".
func (*Immediate) Name() string { return "immediate" }

// Name returns "counter".
func (*Counter) Name() string { return "counter" }

// Name returns "limit".
func (*Limit) Name() string { return "limit" }

// Name returns "log".
func (*Log) Name() string { return "log" }

// Name returns "reject".
func (*Reject) Name() string { return "reject" }

// Name returns "quota".
func (*Quota) Name() string { return "quota" }

// Name returns "ct".
func (*Ct) Name() string { return "ct" }

// Name returns "ct".
func (*CtSet) Name() string { return "ct" }

// Name returns "notrack".
func (*Notrack) Name() string { return "notrack" }

// Name returns "nat".
func (*Nat) Name() string { return "nat" }

// Name returns "masq".
func (*Masq) Name() string { return "masq" }

// Name returns "redir".
func (*Redir) Name() string { return "redir" }

// Name returns "dynset".
func (*Dynset) Name() string { return "dynset" }

// Name returns "objref".
func (*Objref) Name() string { return "objref" }

// Name returns "exthdr".
func (*Exthdr) Name() string { return "exthdr" }

// Name returns "fib".
func (*Fib) Name() string { return "fib" }

// Name returns "rt".
func (*Rt) Name() string { return "rt" }

// Name returns "socket".
func (*Socket) Name() string { return "socket" }

// Name returns "queue".
func (*Queue) Name() string { return "queue" }

// Name returns "hash".
func (*Hash) Name() string { return "hash" }

// Name returns "numgen".
func (*Numgen) Name() string { return "numgen" }

// Name returns "dup".
func (*Dup) Name() string { return "dup" }

// Name returns "fwd".
func (*Fwd) Name() string { return "fwd" }

// Name returns "connlimit".
func (*Connlimit) Name() string { return "connlimit" }

// Name returns "last".
func (*Last) Name() string { return "last" }

// Name returns "synproxy".
func (*Synproxy) Name() string { return "synproxy" }

// Name returns "tproxy".
func (*Tproxy) Name() string { return "tproxy" }

// Name returns "xfrm".
func (*Xfrm) Name() string { return "xfrm" }

// Name returns "osf".
func (*Osf) Name() string { return "osf" }

// String prints the expression in the style of nft --debug=netlink.
func (e *Payload) String() string {
	return fmt.Sprintf("payload load %db @ %s header + %d => %s", e.Len, e.Base, e.Offset, e.DReg)
}

// String prints the expression in the style of nft --debug=netlink.
func (e *PayloadSet) String() string {
	return fmt.Sprintf("payload write %s => %db @ %s header + %d csum_type %d csum_off %d csum_flags %#x",
		e.SReg, e.Len, e.Base, e.Offset, e.CsumType, e.CsumOffset, uint32(e.CsumFlags))
}

// String prints the expression in the style of nft --debug=netlink.
func (e *Cmp) String() string {
	return fmt.Sprintf("cmp %s %s %s", e.Op, e.SReg, hexBytes(e.Data))
}

// String prints the expression in the style of nft --debug=netlink.
func (e *Range) String() string {
	return fmt.Sprintf("range %s %s %s %s", e.Op, e.SReg, hexBytes(e.From), hexBytes(e.To))
}

// String prints the expression in the style of nft --debug=netlink.
func (e *Bitwise) String() string {
	switch e.Op {
	case BitwiseMaskXor:
		return fmt.Sprintf("bitwise %s = ( %s & %s ) ^ %s", e.DReg, e.SReg, hexBytes(e.Mask), hexBytes(e.Xor))
	case BitwiseLShift, BitwiseRShift:
		return fmt.Sprintf("bitwise %s = ( %s %s %d )", e.DReg, e.SReg, e.Op, e.Shift)
	}
	return fmt.Sprintf("bitwise %s = ( %s %s %s )", e.DReg, e.SReg, e.Op, e.SReg2)
}

// String prints the expression in the style of nft --debug=netlink.
func (e *Byteorder) String() string {
	return fmt.Sprintf("byteorder %s = %s(%s, %d, %d)", e.DReg, e.Op, e.SReg, e.Size, e.Len)
}

// String prints the expression in the style of nft --debug=netlink.
func (e *Meta) String() string { return fmt.Sprintf("meta load %s => %s", e.Key, e.DReg) }

// String prints the expression in the style of nft --debug=netlink.
func (e *MetaSet) String() string { return fmt.Sprintf("meta set %s with %s", e.Key, e.SReg) }

// String prints the expression in the style of nft --debug=netlink.
func (e *Lookup) String() string {
	s := fmt.Sprintf("lookup %s set %s", e.SReg, e.Set)
	if e.Map {
		s += fmt.Sprintf(" dreg %d", uint32(e.DReg))
	}
	if e.Flags != 0 {
		s += fmt.Sprintf(" %#x", uint32(e.Flags))
	}
	return s
}

// String prints the expression in the style of nft --debug=netlink.
func (e *Immediate) String() string {
	if e.DReg == RegVerdict {
		return fmt.Sprintf("immediate %s %s", e.DReg, e.Verdict)
	}
	return fmt.Sprintf("immediate %s %s", e.DReg, hexBytes(e.Data))
}

// String prints the expression in the style of nft --debug=netlink.
func (e *Counter) String() string {
	return fmt.Sprintf("counter pkts %d bytes %d", e.Packets, e.Bytes)
}

// String prints the expression in the style of nft --debug=netlink.
func (e *Limit) String() string {
	return fmt.Sprintf("limit rate %d/%ds burst %d type %s flags %#x", e.Rate, e.Unit, e.Burst, e.Type, e.Flags)
}

// String prints the expression in the style of nft --debug=netlink.
func (e *Log) String() string {
	if e.Type == LogNflog {
		return fmt.Sprintf("log prefix %q group %d snaplen %d qthreshold %d", e.Prefix, e.Group, e.Snaplen, e.QThreshold)
	}
	return fmt.Sprintf("log prefix %q level %d flags %#x", e.Prefix, e.Level, e.Flags)
}

// String prints the expression in the style of nft --debug=netlink.
func (e *Reject) String() string { return fmt.Sprintf("reject type %s code %d", e.Type, e.Code) }

// String prints the expression in the style of nft --debug=netlink.
func (e *Quota) String() string {
	return fmt.Sprintf("quota bytes %d consumed %d flags %#x", e.Bytes, e.Consumed, uint32(e.Flags))
}

// String prints the expression in the style of nft --debug=netlink.
func (e *Ct) String() string {
	return fmt.Sprintf("ct load %s%s => %s", e.Key, e.Direction.suffix(), e.DReg)
}

// String prints the expression in the style of nft --debug=netlink.
func (e *CtSet) String() string {
	return fmt.Sprintf("ct set %s%s with %s", e.Key, e.Direction.suffix(), e.SReg)
}

func (d CtDir) suffix() string {
	switch d {
	case CtDirOriginal:
		return " original"
	case CtDirReply:
		return " reply"
	}
	return ""
}

// String prints the expression in the style of nft --debug=netlink.
func (*Notrack) String() string { return "notrack" }

// String prints the expression in the style of nft --debug=netlink.
func (e *Nat) String() string {
	s := fmt.Sprintf("nat %s %s", e.Type, e.Family)
	return s + natRegs(e.RegAddrMin, e.RegAddrMax, e.RegProtoMin, e.RegProtoMax, e.Flags)
}

// String prints the expression in the style of nft --debug=netlink.
func (e *Masq) String() string {
	return "masq" + natRegs(0, 0, e.RegProtoMin, e.RegProtoMax, e.Flags)
}

// String prints the expression in the style of nft --debug=netlink.
func (e *Redir) String() string {
	return "redir" + natRegs(0, 0, e.RegProtoMin, e.RegProtoMax, e.Flags)
}

func natRegs(amin, amax, pmin, pmax Register, f NatFlags) string {
	var b strings.Builder
	for _, r := range []struct {
		n string
		r Register
	}{{"addr_min", amin}, {"addr_max", amax}, {"proto_min", pmin}, {"proto_max", pmax}} {
		if r.r != 0 {
			fmt.Fprintf(&b, " %s %s", r.n, r.r)
		}
	}
	if f != 0 {
		fmt.Fprintf(&b, " flags %s", f)
	}
	return b.String()
}

// String prints the expression in the style of nft --debug=netlink.
func (e *Dynset) String() string {
	s := fmt.Sprintf("dynset %s reg_key %d set %s", e.Op, uint32(e.SRegKey), e.Set)
	if e.SRegData != 0 {
		s += fmt.Sprintf(" sreg_data %d", uint32(e.SRegData))
	}
	if e.Timeout != 0 {
		s += fmt.Sprintf(" timeout %dms", e.Timeout)
	}
	if e.Flags != 0 {
		s += fmt.Sprintf(" flags %#x", uint32(e.Flags))
	}
	for _, x := range e.Exprs {
		s += " expr [ " + x.String() + " ]"
	}
	return s
}

// String prints the expression in the style of nft --debug=netlink.
func (e *Objref) String() string {
	if e.Set != "" {
		return fmt.Sprintf("objref sreg %d set %s", uint32(e.SReg), e.Set)
	}
	return fmt.Sprintf("objref type %s name %s", e.Type, e.Object)
}

// String prints the expression in the style of nft --debug=netlink.
func (e *Exthdr) String() string {
	switch {
	case e.DReg != 0:
		return fmt.Sprintf("exthdr load %s %db @ %d + %d flags %#x => %s", e.Op, e.Len, e.Type, e.Offset, uint32(e.Flags), e.DReg)
	case e.SReg != 0:
		return fmt.Sprintf("exthdr write %s %s => %db @ %d + %d", e.Op, e.SReg, e.Len, e.Type, e.Offset)
	}
	return fmt.Sprintf("exthdr reset %s %d", e.Op, e.Type)
}

// String prints the expression in the style of nft --debug=netlink.
func (e *Fib) String() string {
	return fmt.Sprintf("fib %s %s => %s", e.Flags, e.Result, e.DReg)
}

// String prints the expression in the style of nft --debug=netlink.
func (e *Rt) String() string { return fmt.Sprintf("rt load %s => %s", e.Key, e.DReg) }

// String prints the expression in the style of nft --debug=netlink.
func (e *Socket) String() string {
	return fmt.Sprintf("socket load %s level %d => %s", e.Key, e.Level, e.DReg)
}

// String prints the expression in the style of nft --debug=netlink.
func (e *Queue) String() string {
	if e.SRegQnum != 0 {
		return fmt.Sprintf("queue sreg_qnum %d flags %#x", uint32(e.SRegQnum), e.Flags)
	}
	return fmt.Sprintf("queue num %d total %d flags %#x", e.Num, e.Total, e.Flags)
}

// String prints the expression in the style of nft --debug=netlink.
func (e *Hash) String() string {
	return fmt.Sprintf("hash %s %s = %s(%s, %d, seed %#x) %% mod %d offset %d",
		e.Type, e.DReg, e.Type, e.SReg, e.Len, e.Seed, e.Modulus, e.Offset)
}

// String prints the expression in the style of nft --debug=netlink.
func (e *Numgen) String() string {
	return fmt.Sprintf("numgen %s = %s mod %d offset %d", e.DReg, e.Type, e.Modulus, e.Offset)
}

// String prints the expression in the style of nft --debug=netlink.
func (e *Dup) String() string {
	return fmt.Sprintf("dup sreg_addr %d sreg_dev %d", uint32(e.SRegAddr), uint32(e.SRegDev))
}

// String prints the expression in the style of nft --debug=netlink.
func (e *Fwd) String() string {
	return fmt.Sprintf("fwd sreg_dev %d sreg_addr %d nfproto %d", uint32(e.SRegDev), uint32(e.SRegAddr), uint8(e.NFProto))
}

// String prints the expression in the style of nft --debug=netlink.
func (e *Connlimit) String() string {
	return fmt.Sprintf("connlimit count %d flags %#x", e.Count, e.Flags)
}

// String prints the expression in the style of nft --debug=netlink.
func (e *Last) String() string { return fmt.Sprintf("last set %d msecs %d", e.Set, e.Msecs) }

// String prints the expression in the style of nft --debug=netlink.
func (e *Synproxy) String() string {
	return fmt.Sprintf("synproxy mss %d wscale %d flags %#x", e.MSS, e.Wscale, e.Flags)
}

// String prints the expression in the style of nft --debug=netlink.
func (e *Tproxy) String() string {
	return fmt.Sprintf("tproxy %s addr %d port %d", e.Family, uint32(e.RegAddr), uint32(e.RegPort))
}

// String prints the expression in the style of nft --debug=netlink.
func (e *Xfrm) String() string {
	return fmt.Sprintf("xfrm load key %d dir %d spnum %d => %s", e.Key, e.Dir, e.SPNum, e.DReg)
}

// String prints the expression in the style of nft --debug=netlink.
func (e *Osf) String() string {
	return fmt.Sprintf("osf ttl %d flags %#x => %s", e.TTL, e.Flags, e.DReg)
}
