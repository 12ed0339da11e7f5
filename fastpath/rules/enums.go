package rules

import "fmt"

// The enumerations below hold the kernel's values (nf_tables.h); each
// String gives the name nft --debug=netlink uses.

func enumString(v uint32, names []string, kind string) string {
	if int(v) < len(names) && names[v] != "" {
		return names[v]
	}
	return fmt.Sprintf("%s(%d)", kind, v)
}

// PayloadBase is the header a payload offset counts from (NFT_PAYLOAD_*).
type PayloadBase uint32

// Payload bases.
const (
	PayloadLL        PayloadBase = iota // link layer: the Ethernet header
	PayloadNetwork                      // network header: IPv4, IPv6, ARP
	PayloadTransport                    // transport header: TCP, UDP, ICMP, …
	PayloadInner                        // inner header: after the transport header
	PayloadTunnel                       // tunnel header (inner expression)
)

// String returns "link", "network", "transport", "inner" or "tunnel".
func (b PayloadBase) String() string {
	return enumString(uint32(b), []string{"link", "network", "transport", "inner", "tunnel"}, "base")
}

// CsumType is the checksum a payload write fixes (NFT_PAYLOAD_CSUM_*).
type CsumType uint32

// Checksum types.
const (
	CsumNone CsumType = iota
	CsumInet          // the Internet checksum at CsumOffset
	CsumSCTP          // SCTP's CRC32c
)

// CsumFlags are a payload write's checksum flags.
type CsumFlags uint32

// CsumPseudoHeader also fixes the layer 4 checksum, whose pseudo-header
// covers the bytes written (NFT_PAYLOAD_L4CSUM_PSEUDOHDR).
const CsumPseudoHeader CsumFlags = 1 << 0

// CmpOp is a cmp operator (NFT_CMP_*).
type CmpOp uint32

// Cmp operators.
const (
	CmpEq CmpOp = iota
	CmpNeq
	CmpLt
	CmpLte
	CmpGt
	CmpGte
)

// String returns "eq", "neq", "lt", "lte", "gt" or "gte".
func (op CmpOp) String() string {
	return enumString(uint32(op), []string{"eq", "neq", "lt", "lte", "gt", "gte"}, "cmp")
}

// RangeOp is a range operator (NFT_RANGE_*).
type RangeOp uint32

// Range operators.
const (
	RangeEq RangeOp = iota
	RangeNeq
)

// String returns "eq" or "neq".
func (op RangeOp) String() string { return enumString(uint32(op), []string{"eq", "neq"}, "range") }

// BitwiseOp is a bitwise operation (NFT_BITWISE_*).
type BitwiseOp uint32

// Bitwise operations.
const (
	BitwiseMaskXor BitwiseOp = iota // (sreg & mask) ^ xor
	BitwiseLShift
	BitwiseRShift
	BitwiseAnd // sreg & sreg2
	BitwiseOr
	BitwiseXor
)

// String returns the operator ("mask-xor", "<<", ">>", "&", "|", "^").
func (op BitwiseOp) String() string {
	return enumString(uint32(op), []string{"mask-xor", "<<", ">>", "&", "|", "^"}, "bitwise")
}

// ByteorderOp is a byteorder conversion (NFT_BYTEORDER_*).
type ByteorderOp uint32

// Byteorder conversions.
const (
	ByteorderNtoh ByteorderOp = iota // network to host
	ByteorderHton                    // host to network
)

// String returns "ntoh" or "hton".
func (op ByteorderOp) String() string {
	return enumString(uint32(op), []string{"ntoh", "hton"}, "byteorder")
}

// MetaKey is a meta expression's key (NFT_META_*).
type MetaKey uint32

// Meta keys.
const (
	MetaLen          MetaKey = 0  // skb->len
	MetaProtocol     MetaKey = 1  // ethertype, network order
	MetaPriority     MetaKey = 2  // skb->priority
	MetaMark         MetaKey = 3  // skb->mark, host order
	MetaIIF          MetaKey = 4  // input ifindex, host order
	MetaOIF          MetaKey = 5  // output ifindex, host order
	MetaIIFName      MetaKey = 6  // input interface name, 16 bytes
	MetaOIFName      MetaKey = 7  // output interface name, 16 bytes
	MetaIIFType      MetaKey = 8  // input device type (ARPHRD_*), 2 bytes host order
	MetaOIFType      MetaKey = 9  // output device type
	MetaSkUID        MetaKey = 10 // socket UID
	MetaSkGID        MetaKey = 11 // socket GID
	MetaNFTrace      MetaKey = 12 // nftrace bit
	MetaRtClassID    MetaKey = 13
	MetaSecmark      MetaKey = 14
	MetaNFProto      MetaKey = 15 // NFPROTO_* of the hook, 1 byte
	MetaL4Proto      MetaKey = 16 // layer 4 protocol number, 1 byte
	MetaBriIIFName   MetaKey = 17 // input bridge name
	MetaBriOIFName   MetaKey = 18 // output bridge name
	MetaPktType      MetaKey = 19 // PACKET_HOST, _BROADCAST, _MULTICAST, _OTHERHOST, 1 byte
	MetaCPU          MetaKey = 20
	MetaIIFGroup     MetaKey = 21
	MetaOIFGroup     MetaKey = 22
	MetaCgroup       MetaKey = 23
	MetaPRandom      MetaKey = 24
	MetaSecpath      MetaKey = 25
	MetaIIFKind      MetaKey = 26
	MetaOIFKind      MetaKey = 27
	MetaBriIIFPVID   MetaKey = 28
	MetaBriIIFVProto MetaKey = 29
	MetaTimeNS       MetaKey = 30
	MetaTimeDay      MetaKey = 31
	MetaTimeHour     MetaKey = 32
	MetaSDIF         MetaKey = 33
	MetaSDIFName     MetaKey = 34
	MetaBriBroute    MetaKey = 35
	MetaBriIIFHWAddr MetaKey = 37
)

var metaNames = []string{"len", "protocol", "priority", "mark", "iif", "oif", "iifname", "oifname",
	"iiftype", "oiftype", "skuid", "skgid", "nftrace", "rtclassid", "secmark", "nfproto", "l4proto",
	"bri_iifname", "bri_oifname", "pkttype", "cpu", "iifgroup", "oifgroup", "cgroup", "prandom",
	"secpath", "iifkind", "oifkind", "bri_iifpvid", "bri_iifvproto", "time", "day", "hour", "sdif",
	"sdifname", "bri_broute", "", "bri_iifhwaddr"}

// String returns the key as nft names it ("mark", "l4proto", …).
func (k MetaKey) String() string { return enumString(uint32(k), metaNames, "meta") }

// CtKey is a ct expression's key (NFT_CT_*).
type CtKey uint32

// Conntrack keys.
const (
	CtState      CtKey = 0 // bitmask of NF_CT_STATE_* bits, host order
	CtDirection  CtKey = 1
	CtStatus     CtKey = 2
	CtMark       CtKey = 3
	CtSecmark    CtKey = 4
	CtExpiration CtKey = 5
	CtHelper     CtKey = 6
	CtL3Protocol CtKey = 7
	CtSrc        CtKey = 8
	CtDst        CtKey = 9
	CtProtocol   CtKey = 10
	CtProtoSrc   CtKey = 11
	CtProtoDst   CtKey = 12
	CtLabels     CtKey = 13
	CtPkts       CtKey = 14
	CtBytes      CtKey = 15
	CtAvgPkt     CtKey = 16
	CtZone       CtKey = 17
	CtEventMask  CtKey = 18
	CtSrcIP      CtKey = 19
	CtDstIP      CtKey = 20
	CtSrcIP6     CtKey = 21
	CtDstIP6     CtKey = 22
	CtID         CtKey = 23
)

var ctNames = []string{"state", "direction", "status", "mark", "secmark", "expiration", "helper",
	"l3protocol", "src", "dst", "protocol", "proto_src", "proto_dst", "label", "packets", "bytes",
	"avgpkt", "zone", "event", "src_ip", "dst_ip", "src_ip6", "dst_ip6", "id"}

// String returns the key as nft names it ("state", "mark", …).
func (k CtKey) String() string { return enumString(uint32(k), ctNames, "ct") }

// NatType is snat or dnat (NFT_NAT_*).
type NatType uint32

// NAT types.
const (
	NatSNAT NatType = iota
	NatDNAT
)

// String returns "snat" or "dnat".
func (t NatType) String() string { return enumString(uint32(t), []string{"snat", "dnat"}, "nat") }

// RejectType is how a reject answers (NFT_REJECT_*).
type RejectType uint32

// Reject types.
const (
	RejectICMPUnreach  RejectType = iota // ICMP or ICMPv6 destination unreachable, code Code
	RejectTCPReset                       // TCP RST
	RejectICMPXUnreach                   // an abstract code for either family
)

// String returns "icmp", "tcp reset" or "icmpx".
func (t RejectType) String() string {
	return enumString(uint32(t), []string{"icmp", "tcp reset", "icmpx"}, "reject")
}

// LimitType is what a limit counts (NFT_LIMIT_*).
type LimitType uint32

// Limit types.
const (
	LimitPackets LimitType = iota
	LimitBytes
)

// String returns "packets" or "bytes".
func (t LimitType) String() string {
	return enumString(uint32(t), []string{"packets", "bytes"}, "limit")
}

// LimitFlags are a limit's flags (NFT_LIMIT_F_*).
type LimitFlags uint32

// LimitInvert makes a limit match over the rate ("limit rate over").
const LimitInvert LimitFlags = 1 << 0

// DynsetOp is what a dynset does to its set (NFT_DYNSET_OP_*).
type DynsetOp uint32

// Dynset operations.
const (
	DynsetAdd DynsetOp = iota
	DynsetUpdate
	DynsetDelete
)

// String returns "add", "update" or "delete".
func (op DynsetOp) String() string {
	return enumString(uint32(op), []string{"add", "update", "delete"}, "dynset")
}

// ExthdrOp is what an exthdr expression looks into (NFT_EXTHDR_OP_*).
type ExthdrOp uint32

// Exthdr kinds.
const (
	ExthdrIPv6   ExthdrOp = iota // IPv6 extension headers
	ExthdrTCPOpt                 // TCP options
	ExthdrIPv4                   // IPv4 options
	ExthdrSCTP                   // SCTP chunks
	ExthdrDCCP                   // DCCP options
)

// String returns "ipv6", "tcpopt", "ipv4", "sctp" or "dccp".
func (op ExthdrOp) String() string {
	return enumString(uint32(op), []string{"ipv6", "tcpopt", "ipv4", "sctp", "dccp"}, "exthdr")
}

// FibResult is what a FIB lookup loads (NFT_FIB_RESULT_*).
type FibResult uint32

// FIB results.
const (
	FibResultOIF      FibResult = 1
	FibResultOIFName  FibResult = 2
	FibResultAddrType FibResult = 3
)

// String returns "oif", "oifname" or "type".
func (r FibResult) String() string {
	return enumString(uint32(r), []string{"", "oif", "oifname", "type"}, "fib")
}

// RtKey is an rt expression's key (NFT_RT_*).
type RtKey uint32

// Routing keys.
const (
	RtClassID RtKey = iota
	RtNexthop4
	RtNexthop6
	RtTCPMSS
	RtXfrm
)

// String returns "classid", "nexthop4", "nexthop6", "tcpmss" or "ipsec".
func (k RtKey) String() string {
	return enumString(uint32(k), []string{"classid", "nexthop4", "nexthop6", "tcpmss", "ipsec"}, "rt")
}

// SocketKey is a socket expression's key (NFT_SOCKET_*).
type SocketKey uint32

// Socket keys.
const (
	SocketTransparent SocketKey = iota
	SocketMark
	SocketWildcard
	SocketCgroupv2
)

// String returns "transparent", "mark", "wildcard" or "cgroupv2".
func (k SocketKey) String() string {
	return enumString(uint32(k), []string{"transparent", "mark", "wildcard", "cgroupv2"}, "socket")
}

// HashType is a hash expression's function (NFT_HASH_*).
type HashType uint32

// Hash functions.
const (
	HashJenkins HashType = iota
	HashSym
)

// String returns "jhash" or "symhash".
func (t HashType) String() string { return enumString(uint32(t), []string{"jhash", "symhash"}, "hash") }

// NumgenType is a numgen expression's kind (NFT_NG_*).
type NumgenType uint32

// Number generators.
const (
	NumgenInc NumgenType = iota
	NumgenRandom
)

// String returns "inc" or "random".
func (t NumgenType) String() string {
	return enumString(uint32(t), []string{"inc", "random"}, "numgen")
}
