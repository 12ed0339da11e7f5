package fastpathtest

import (
	"bytes"
	"net"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/xdpfwd/xdpfwd/fastpath"
	"github.com/xdpfwd/xdpfwd/fastpath/header"
)

// MACs the tests use: MAC(n) is 02:00:00:00:00:n, the address MACSwitch
// sends to port n.
var (
	MACA      = MAC(0x0a)
	MACB      = MAC(0x0b)
	MACC      = MAC(0x0c)
	MACD      = MAC(0x0d)
	Broadcast = header.BroadcastMAC
	Multicast = header.MAC{0x01, 0x00, 0x5e, 0, 0, 1}
)

// MAC returns the locally administered unicast MAC 02:00:00:00:00:n.
func MAC(n byte) header.MAC { return header.MAC{0x02, 0, 0, 0, 0, n} }

// HW returns m as a net.HardwareAddr, for gopacket.
func HW(m header.MAC) net.HardwareAddr { return net.HardwareAddr(m[:]) }

// Serialize builds a frame from layers, with lengths and checksums
// computed.
func Serialize(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true, FixLengths: true}, ls...); err != nil {
		t.Fatalf("serialize: %v", err)
	}
	return bytes.Clone(buf.Bytes())
}

// RawFrame is an Ethernet frame with an opaque payload (EtherType 0x88b5,
// local experimental), padded to 60 bytes.
func RawFrame(dst, src header.MAC) []byte {
	f := make([]byte, 60)
	header.Ethernet(f).SetDst(dst)
	header.Ethernet(f).SetSrc(src)
	header.Ethernet(f).SetEtherType(0x88b5)
	return f
}

// ARPRequest is who-has 10.0.0.target from src (10.0.0.1), broadcast.
func ARPRequest(t testing.TB, src header.MAC, target byte) []byte {
	return Serialize(t,
		&layers.Ethernet{SrcMAC: HW(src), DstMAC: HW(Broadcast), EthernetType: layers.EthernetTypeARP},
		&layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
			Operation: layers.ARPRequest, SourceHwAddress: HW(src), SourceProtAddress: []byte{10, 0, 0, 1},
			DstHwAddress: make([]byte, 6), DstProtAddress: []byte{10, 0, 0, target}})
}

// ARPReply is src's (10.0.0.2) answer to dst (10.0.0.1).
func ARPReply(t testing.TB, src, dst header.MAC) []byte {
	return Serialize(t,
		&layers.Ethernet{SrcMAC: HW(src), DstMAC: HW(dst), EthernetType: layers.EthernetTypeARP},
		&layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
			Operation: layers.ARPReply, SourceHwAddress: HW(src), SourceProtAddress: []byte{10, 0, 0, 2},
			DstHwAddress: HW(dst), DstProtAddress: []byte{10, 0, 0, 1}})
}

// UDP4 is a correct UDP/IPv4 frame, 10.0.0.1:4000 → 10.0.0.2:5000, with
// payload bytes of payload.
func UDP4(t testing.TB, dst, src header.MAC, payload int) []byte {
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.IP{10, 0, 0, 1}, DstIP: net.IP{10, 0, 0, 2}}
	u := &layers.UDP{SrcPort: 4000, DstPort: 5000}
	u.SetNetworkLayerForChecksum(ip)
	return Serialize(t, &layers.Ethernet{SrcMAC: HW(src), DstMAC: HW(dst), EthernetType: layers.EthernetTypeIPv4},
		ip, u, gopacket.Payload(bytes.Repeat([]byte{0x5a}, payload)))
}

// TCP6 is a correct TCP/IPv6 frame, [fd00::1]:4000 → [fd00::2]:80, with a
// hop-by-hop extension header.
func TCP6(t testing.TB, dst, src header.MAC, payload int) []byte {
	ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolIPv6HopByHop, SrcIP: net.ParseIP("fd00::1"), DstIP: net.ParseIP("fd00::2")}
	hbh := &layers.IPv6HopByHop{}
	hbh.NextHeader = layers.IPProtocolTCP
	hbh.Options = append(hbh.Options, &layers.IPv6HopByHopOption{OptionType: 1, OptionLength: 4, OptionData: []byte{0, 0, 0, 0}})
	tc := &layers.TCP{SrcPort: 4000, DstPort: 80, Seq: 1, ACK: true, Window: 1000, DataOffset: 5}
	tc.SetNetworkLayerForChecksum(ip)
	return Serialize(t, &layers.Ethernet{SrcMAC: HW(src), DstMAC: HW(dst), EthernetType: layers.EthernetTypeIPv6},
		ip, hbh, tc, gopacket.Payload(bytes.Repeat([]byte{0x33}, payload)))
}

// Parsed returns the packet of frame f as fastpath.Parse (with flow keys)
// leaves it.
func Parsed(f []byte) fastpath.Packet {
	var b fastpath.Batch
	b.Packets[0].Reset(0, f, 0)
	b.Len = 1
	fastpath.Parse{FlowKeys: true}.Process(&b, 0)
	return b.Packets[0]
}

// MakePartial overwrites the L4 checksum of a correct frame with the
// pseudo-header-only value a veth with TX offload leaves, and returns the
// offset of the field.
func MakePartial(t testing.TB, f []byte) int {
	t.Helper()
	p := Parsed(f)
	if p.L4Off == 0 {
		t.Fatal("MakePartial: no transport header")
	}
	ps := PseudoSum(f, &p)
	off := int(p.L4Off) + header.UDPChecksumOffset
	if p.L4Proto == header.ProtocolTCP {
		off = int(p.L4Off) + header.TCPChecksumOffset
	}
	f[off], f[off+1] = byte(ps>>8), byte(ps)
	return off
}

// PseudoSum returns the pseudo-header sum of the transport segment of
// frame f, parsed as p (IPv4 or IPv6).
func PseudoSum(f []byte, p *fastpath.Packet) uint16 {
	seg := f[p.L4Off:p.L3End]
	if p.EtherType == header.EtherTypeIPv4 {
		ip := header.IPv4(f[p.L3Off:])
		return header.PseudoHeaderChecksum4(p.L4Proto, ip.Src(), ip.Dst(), uint16(len(seg)))
	}
	ip := header.IPv6(f[p.L3Off:])
	return header.PseudoHeaderChecksum6(p.L4Proto, ip.Src(), ip.Dst(), uint32(len(seg)))
}

// Sec returns s seconds on the dataplane's clock.
func Sec(s int) fastpath.Time { return fastpath.Time(s) * 1e9 }

// Fragments4 cuts the IPv4 datagram of frame f (Ethernet, IPv4 without
// DF) in two at byte cut of its payload (a multiple of 8): the first
// fragment with MF set, the second at offset cut, each with its header's
// length and checksum right.
func Fragments4(t testing.TB, f []byte, cut int) (first, second []byte) {
	t.Helper()
	ip := header.IPv4(f[header.EthernetSize:])
	hl := ip.HeaderLength()
	if cut%8 != 0 || hl+cut >= int(ip.TotalLength()) {
		t.Fatalf("Fragments4: cannot cut a %d-byte datagram at %d", ip.TotalLength(), cut)
	}
	end := int(ip.TotalLength())
	mk := func(payload []byte, off int, more bool) []byte {
		out := append(append([]byte(nil), f[:header.EthernetSize+hl]...), payload...)
		h := header.IPv4(out[header.EthernetSize:])
		fo := off / 8
		if more {
			fo |= 0x2000
		}
		h[2], h[3] = byte((hl+len(payload))>>8), byte(hl+len(payload))
		h[6], h[7] = byte(fo>>8), byte(fo)
		h.SetChecksum(0)
		h.SetChecksum(h.CalculateChecksum())
		return out
	}
	return mk(ip[hl:hl+cut], 0, true), mk(ip[hl+cut:end], cut, false)
}
