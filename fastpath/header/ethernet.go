// Package header provides typed views over packet bytes — Ethernet,
// 802.1Q, IPv4, IPv6 (extension headers), UDP, TCP, SCTP, VXLAN, GENEVE,
// GRE, ARP, ICMPv4, ICMPv6 and NDP — the Internet checksum and its RFC 1624
// incremental updates (setters that keep checksums right, on partial
// frames too), and builders for what a router sends (ICMP errors, echo
// replies, ARP and NDP messages), as Linux writes them. A view is a []byte
// with accessors at fixed offsets; nothing here allocates or copies, and no
// accessor checks bounds beyond what the Go runtime does, so callers check a
// view's length (IsValid, or the size constants) before using it.
package header

// MAC is an IEEE 802 MAC-48 address.
type MAC [6]byte

// BroadcastMAC is ff:ff:ff:ff:ff:ff.
var BroadcastMAC = MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// IsBroadcast reports whether m is ff:ff:ff:ff:ff:ff.
func (m MAC) IsBroadcast() bool { return m == BroadcastMAC }

// IsMulticast reports whether m is a group address (the I/G bit, the least
// significant bit of the first octet, is set). Broadcast is multicast too.
func (m MAC) IsMulticast() bool { return m[0]&1 != 0 }

// IsZero reports whether m is 00:00:00:00:00:00.
func (m MAC) IsZero() bool { return m == MAC{} }

// String formats m as six colon-separated lower-case hex octets.
func (m MAC) String() string {
	const hex = "0123456789abcdef"
	b := make([]byte, 0, 17)
	for i, o := range m {
		if i > 0 {
			b = append(b, ':')
		}
		b = append(b, hex[o>>4], hex[o&0xf])
	}
	return string(b)
}

// Ethernet is an Ethernet II header (IEEE 802.3, no 802.1Q tag):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                  Destination MAC address                      |
//	+                               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                               |                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               +
//	|                     Source MAC address                        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|           EtherType           |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
type Ethernet []byte

const (
	ethDst  = 0
	ethSrc  = 6
	ethType = 12

	// EthernetSize is the size of an Ethernet II header.
	EthernetSize = 14
)

// EtherType values this package knows.
const (
	EtherTypeIPv4 = 0x0800
	EtherTypeARP  = 0x0806
	EtherTypeIPv6 = 0x86dd
)

// Dst returns the destination MAC address.
func (e Ethernet) Dst() MAC { return MAC(e[ethDst : ethDst+6]) }

// Src returns the source MAC address.
func (e Ethernet) Src() MAC { return MAC(e[ethSrc : ethSrc+6]) }

// EtherType returns the EtherType of the payload.
func (e Ethernet) EtherType() uint16 { return be16(e[ethType:]) }

// SetDst sets the destination MAC address.
func (e Ethernet) SetDst(m MAC) { copy(e[ethDst:ethDst+6], m[:]) }

// SetSrc sets the source MAC address.
func (e Ethernet) SetSrc(m MAC) { copy(e[ethSrc:ethSrc+6], m[:]) }

// SetEtherType sets the EtherType.
func (e Ethernet) SetEtherType(t uint16) { put16(e[ethType:], t) }

// Payload returns the bytes after the header.
func (e Ethernet) Payload() []byte { return e[EthernetSize:] }

func be16(b []byte) uint16 { return uint16(b[0])<<8 | uint16(b[1]) }

func put16(b []byte, v uint16) { b[0], b[1] = byte(v>>8), byte(v) }
