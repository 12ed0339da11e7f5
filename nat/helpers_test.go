package nat

import (
	"encoding/binary"
	"hash/crc32"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/xdpfwd/xdpfwd/conntrack"
)

// refSum is a naive RFC 1071 sum of b added to init, folded: the
// reference the tests check against, independent of the header package.
func refSum(b []byte, init uint32) uint16 {
	s := init
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

// refPseudo is the naive pseudo-header sum (not folded).
func refPseudo(src, dst []byte, proto uint8, n int) uint32 {
	var s uint32
	for i := 0; i < len(src); i += 2 {
		s += (uint32(src[i])<<8 | uint32(src[i+1])) + (uint32(dst[i])<<8 | uint32(dst[i+1]))
	}
	return s + uint32(proto) + uint32(n)
}

func addr(s string) []byte {
	a := netip.MustParseAddr(s)
	if a.Is4() {
		b := a.As4()
		return b[:]
	}
	b := a.As16()
	return b[:]
}

func a16(s string) [16]byte {
	var r [16]byte
	copy(r[:], addr(s))
	return r
}

// pkt describes a test packet.
type pkt struct {
	src, dst     []byte
	proto        uint8
	sport, dport uint16 // ICMP: identifier, sequence number
	icmpType     uint8  // 0: echo request of the family
	payload      []byte
	zeroUDP      bool // UDP checksum 0
	partial      bool // TCP/UDP field holds the pseudo-header sum
	fragOff      uint16
	l4Short      int // cut the transport header to this many bytes
}

func (p pkt) v6() bool { return len(p.src) == 16 }

// build lays p out with checksums computed by the references.
func (p pkt) build() []byte {
	var l4 []byte
	switch p.proto {
	case conntrack.ProtoTCP:
		l4 = make([]byte, 20+len(p.payload))
		l4[12] = 5 << 4
		l4[13] = 0x18
		binary.BigEndian.PutUint32(l4[4:], 0x01020304)
		binary.BigEndian.PutUint16(l4[14:], 1000)
	case conntrack.ProtoUDP, protoUDPLite:
		l4 = make([]byte, 8+len(p.payload))
		if p.proto == conntrack.ProtoUDP {
			binary.BigEndian.PutUint16(l4[4:], uint16(len(l4)))
		}
	case protoSCTP:
		// One DATA chunk carrying the payload.
		l4 = make([]byte, 12+16+len(p.payload))
		binary.BigEndian.PutUint32(l4[4:], 0xcafef00d)
		l4[12], l4[13] = 0, 3
		binary.BigEndian.PutUint16(l4[14:], uint16(16+len(p.payload)))
	case conntrack.ProtoICMP, conntrack.ProtoICMPv6, 33:
		l4 = make([]byte, 8+len(p.payload))
		t := p.icmpType
		if t == 0 && p.proto != 33 {
			t = 8
			if p.proto == conntrack.ProtoICMPv6 {
				t = 128
			}
		}
		l4[0] = t
	default:
		l4 = make([]byte, len(p.payload))
	}
	if p.proto == conntrack.ProtoICMP || p.proto == conntrack.ProtoICMPv6 {
		binary.BigEndian.PutUint16(l4[4:], p.sport)
		binary.BigEndian.PutUint16(l4[6:], p.dport)
		copy(l4[8:], p.payload)
	} else if len(l4) >= 4 && p.proto != 0 {
		binary.BigEndian.PutUint16(l4[0:], p.sport)
		binary.BigEndian.PutUint16(l4[2:], p.dport)
		copy(l4[len(l4)-len(p.payload):], p.payload)
	} else {
		copy(l4, p.payload)
	}
	var pseudo uint32
	if p.v6() || p.proto != conntrack.ProtoICMP {
		pseudo = refPseudo(p.src, p.dst, p.proto, len(l4))
	}
	switch p.proto {
	case conntrack.ProtoTCP:
		setSum(l4, 16, pseudo, p.partial, false)
	case conntrack.ProtoUDP:
		if !p.zeroUDP {
			setSum(l4, 6, pseudo, p.partial, true)
		}
	case protoUDPLite:
		setSum(l4, 6, pseudo, false, true)
	case protoSCTP:
		binary.LittleEndian.PutUint32(l4[8:], crc32.Checksum(l4, crc32.MakeTable(crc32.Castagnoli)))
	case conntrack.ProtoICMP:
		setSum(l4, 2, 0, false, false)
	case conntrack.ProtoICMPv6:
		setSum(l4, 2, pseudo, false, false)
	}
	if p.l4Short > 0 {
		l4 = l4[:p.l4Short]
	}
	var ip []byte
	if p.v6() {
		ip = make([]byte, 40+len(l4))
		ip[0] = 0x60
		binary.BigEndian.PutUint16(ip[4:], uint16(len(l4)))
		ip[6], ip[7] = p.proto, 64
		copy(ip[8:], p.src)
		copy(ip[24:], p.dst)
		copy(ip[40:], l4)
		return ip
	}
	ip = make([]byte, 20+len(l4))
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(len(ip)))
	binary.BigEndian.PutUint16(ip[4:], 0x1234)
	binary.BigEndian.PutUint16(ip[6:], p.fragOff)
	ip[8], ip[9] = 64, p.proto
	copy(ip[12:], p.src)
	copy(ip[16:], p.dst)
	binary.BigEndian.PutUint16(ip[10:], ^refSum(ip[:20], 0))
	copy(ip[20:], l4)
	return ip
}

// setSum writes the checksum at off of b over the pseudo-header sum
// pseudo: the full checksum, or the pseudo-header sum alone (partial).
func setSum(b []byte, off int, pseudo uint32, partial, udp bool) {
	binary.BigEndian.PutUint16(b[off:], 0)
	if partial {
		binary.BigEndian.PutUint16(b[off:], refSum(nil, pseudo))
		return
	}
	c := ^refSum(b, pseudo)
	if udp && c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(b[off:], c)
}

// tupleOf returns the tuple of packet b as conntrack decodes it.
func tupleOf(p pkt) conntrack.Tuple {
	t := conntrack.Tuple{Proto: p.proto, SrcPort: p.sport, DstPort: p.dport, Family: 4}
	if p.v6() {
		t.Family = 6
	}
	copy(t.Src[:], p.src)
	copy(t.Dst[:], p.dst)
	if p.proto == conntrack.ProtoICMP || p.proto == conntrack.ProtoICMPv6 {
		typ := p.icmpType
		if typ == 0 {
			typ = 8
			if p.proto == conntrack.ProtoICMPv6 {
				typ = 128
			}
		}
		t.DstPort = uint16(typ) << 8
	}
	return t
}

// verifyGopacket decodes ip with gopacket and fails on any checksum
// gopacket finds wrong, returning the packet for further checks.
func verifyGopacket(t *testing.T, ip []byte, v6 bool) gopacket.Packet {
	t.Helper()
	first := layers.LayerTypeIPv4
	if v6 {
		first = layers.LayerTypeIPv6
	}
	p := gopacket.NewPacket(ip, first, gopacket.Default)
	if el := p.ErrorLayer(); el != nil {
		t.Fatalf("gopacket: %v", el.Error())
	}
	if nl := p.NetworkLayer(); nl != nil {
		for _, l := range p.Layers() {
			if c, ok := l.(interface {
				SetNetworkLayerForChecksum(gopacket.NetworkLayer) error
			}); ok {
				if err := c.SetNetworkLayerForChecksum(nl); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	err, bad := p.VerifyChecksums()
	if err != nil {
		t.Fatalf("gopacket checksums: %v", err)
	}
	for _, m := range bad {
		t.Errorf("gopacket: %v checksum %#x, correct %#x", m.Layer.LayerType(), m.Actual, m.Correct)
	}
	return p
}
