package nat

// Flags are the kernel's NF_NAT_RANGE_* bits
// (include/uapi/linux/netfilter/nf_nat.h), at their bit positions.
type Flags uint32

// The range flags.
const (
	// MapIPs: the range gives addresses (NF_NAT_RANGE_MAP_IPS).
	MapIPs Flags = 1 << 0
	// ProtoSpecified: the range gives ports or ICMP identifiers
	// (NF_NAT_RANGE_PROTO_SPECIFIED).
	ProtoSpecified Flags = 1 << 1
	// Random: a random port offset, and no keeping of the original port
	// (NF_NAT_RANGE_PROTO_RANDOM).
	Random Flags = 1 << 2
	// Persistent: the address chosen from a range does not depend on the
	// destination (NF_NAT_RANGE_PERSISTENT).
	Persistent Flags = 1 << 3
	// ProtoRandomFully: as Random (NF_NAT_RANGE_PROTO_RANDOM_FULLY).
	ProtoRandomFully Flags = 1 << 4
	// ProtoOffset: ports keep their offset from BaseProto
	// (NF_NAT_RANGE_PROTO_OFFSET).
	ProtoOffset Flags = 1 << 5
	// NetMap: the address range is a prefix mapped onto the original
	// address (NF_NAT_RANGE_NETMAP; see Range.Netmap).
	NetMap Flags = 1 << 6

	// RandomAll is either random flag (NF_NAT_RANGE_PROTO_RANDOM_ALL).
	RandomAll = Random | ProtoRandomFully
)

// Range is the kernel's struct nf_nat_range2: what a snat, dnat,
// masquerade or redirect statement maps a connection into. It holds no
// pointers.
type Range struct {
	// Flags are the NF_NAT_RANGE_* bits.
	Flags Flags
	// MinAddr and MaxAddr bound the addresses (with MapIPs), compared
	// as big-endian numbers; an IPv4 address fills the first 4 bytes and
	// leaves the rest 0, as in conntrack.Tuple.
	MinAddr, MaxAddr [16]byte
	// MinProto and MaxProto bound the ports or ICMP identifiers (with
	// ProtoSpecified), in host order.
	MinProto, MaxProto uint16
	// BaseProto is the port the offset is taken from (with ProtoOffset).
	BaseProto uint16
}

// Manip is which side of a tuple a translation changes: the kernel's
// enum nf_nat_manip_type.
type Manip uint8

// The two manipulations, NF_NAT_MANIP_SRC (source NAT, at postrouting
// and input) and NF_NAT_MANIP_DST (destination NAT, at prerouting and
// output).
const (
	Src Manip = 0
	Dst Manip = 1
)

// Opposite returns the other manipulation (the kernel's !maniptype).
func (m Manip) Opposite() Manip { return m ^ 1 }

// Masquerade returns the range masquerading maps into, as
// nf_nat_masquerade_ipv4 and nf_nat_masquerade_ipv6 build it from the
// rule's range r: the flags of r plus MapIPs, the single address src
// (the address the kernel selects on the output device: inet_select_addr
// toward the next hop, ipv6_dev_get_saddr toward the destination; the
// caller's to choose) and r's ports. BaseProto is not carried over.
// family is 4 or 6; for 4 only src's first 4 bytes are used.
func Masquerade(r *Range, family uint8, src [16]byte) Range {
	if family == 4 {
		src = [16]byte{src[0], src[1], src[2], src[3]}
	}
	return Range{
		Flags:    r.Flags | MapIPs,
		MinAddr:  src,
		MaxAddr:  src,
		MinProto: r.MinProto,
		MaxProto: r.MaxProto,
	}
}

// Netmap returns r with its address range replaced by the single address
// the netmap mapping gives addr (the packet's source for source NAT, its
// destination for destination NAT), as nft_nat_setup_netmap does for a
// rule with NetMap: the bits where MinAddr and MaxAddr agree come from
// MinAddr, the others from addr. family is 4 or 6.
func (r Range) Netmap(family uint8, addr [16]byte) Range {
	n := 16
	if family == 4 {
		n = 4
		addr = [16]byte{addr[0], addr[1], addr[2], addr[3]}
	}
	for i := range n {
		mask := ^(r.MinAddr[i] ^ r.MaxAddr[i])
		addr[i] = addr[i]&^mask | r.MinAddr[i]&mask
	}
	r.MinAddr, r.MaxAddr = addr, addr
	return r
}
