package fastpath

import (
	"bytes"
	"net"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/xdpfwd/xdpfwd/fastpath/header"
)

var (
	macA  = header.MAC{0x02, 0, 0, 0, 0, 0x0a}
	macB  = header.MAC{0x02, 0, 0, 0, 0, 0x0b}
	macC  = header.MAC{0x02, 0, 0, 0, 0, 0x0c}
	macD  = header.MAC{0x02, 0, 0, 0, 0, 0x0d}
	bcast = header.BroadcastMAC
	mcast = header.MAC{0x01, 0x00, 0x5e, 0, 0, 1}
)

func hw(m header.MAC) net.HardwareAddr { return net.HardwareAddr(m[:]) }

func serialize(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true, FixLengths: true}, ls...); err != nil {
		t.Fatalf("serialize: %v", err)
	}
	return bytes.Clone(buf.Bytes())
}

// rawFrame is an Ethernet frame with an opaque payload, padded to 60 bytes.
func rawFrame(dst, src header.MAC) []byte {
	f := make([]byte, 60)
	header.Ethernet(f).SetDst(dst)
	header.Ethernet(f).SetSrc(src)
	header.Ethernet(f).SetEtherType(0x88b5) // local experimental
	return f
}

// arpRequest is who-has 10.0.0.x from src, broadcast.
func arpRequest(t testing.TB, src header.MAC, target byte) []byte {
	return serialize(t,
		&layers.Ethernet{SrcMAC: hw(src), DstMAC: hw(bcast), EthernetType: layers.EthernetTypeARP},
		&layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
			Operation: layers.ARPRequest, SourceHwAddress: hw(src), SourceProtAddress: []byte{10, 0, 0, 1},
			DstHwAddress: make([]byte, 6), DstProtAddress: []byte{10, 0, 0, target}})
}

// arpReply is src's answer to dst.
func arpReply(t testing.TB, src, dst header.MAC) []byte {
	return serialize(t,
		&layers.Ethernet{SrcMAC: hw(src), DstMAC: hw(dst), EthernetType: layers.EthernetTypeARP},
		&layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
			Operation: layers.ARPReply, SourceHwAddress: hw(src), SourceProtAddress: []byte{10, 0, 0, 2},
			DstHwAddress: hw(dst), DstProtAddress: []byte{10, 0, 0, 1}})
}

// udp4 is a correct UDP/IPv4 frame with payload bytes of payload.
func udp4(t testing.TB, dst, src header.MAC, payload int) []byte {
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.IP{10, 0, 0, 1}, DstIP: net.IP{10, 0, 0, 2}}
	u := &layers.UDP{SrcPort: 4000, DstPort: 5000}
	u.SetNetworkLayerForChecksum(ip)
	return serialize(t, &layers.Ethernet{SrcMAC: hw(src), DstMAC: hw(dst), EthernetType: layers.EthernetTypeIPv4},
		ip, u, gopacket.Payload(bytes.Repeat([]byte{0x5a}, payload)))
}

// tcp6 is a correct TCP/IPv6 frame with a hop-by-hop extension header.
func tcp6(t testing.TB, dst, src header.MAC, payload int) []byte {
	ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolIPv6HopByHop, SrcIP: net.ParseIP("fd00::1"), DstIP: net.ParseIP("fd00::2")}
	hbh := &layers.IPv6HopByHop{}
	hbh.NextHeader = layers.IPProtocolTCP
	hbh.Options = append(hbh.Options, &layers.IPv6HopByHopOption{OptionType: 1, OptionLength: 4, OptionData: []byte{0, 0, 0, 0}})
	tc := &layers.TCP{SrcPort: 4000, DstPort: 80, Seq: 1, ACK: true, Window: 1000, DataOffset: 5}
	tc.SetNetworkLayerForChecksum(ip)
	return serialize(t, &layers.Ethernet{SrcMAC: hw(src), DstMAC: hw(dst), EthernetType: layers.EthernetTypeIPv6},
		ip, hbh, tc, gopacket.Payload(bytes.Repeat([]byte{0x33}, payload)))
}

// makePartial overwrites the L4 checksum of a correct frame with the
// pseudo-header-only value a veth with TX offload leaves, and returns the
// offset of the field.
func makePartial(t testing.TB, f []byte) int {
	t.Helper()
	var p Packet
	p.Data = f
	parse(&p)
	if p.L4Off == 0 {
		t.Fatal("makePartial: no transport header")
	}
	seg := f[p.L4Off:p.L3End]
	var ps uint16
	if p.EtherType == header.EtherTypeIPv4 {
		ip := header.IPv4(f[p.L3Off:])
		ps = header.PseudoHeaderChecksum4(p.L4Proto, ip.Src(), ip.Dst(), uint16(len(seg)))
	} else {
		ip := header.IPv6(f[p.L3Off:])
		ps = header.PseudoHeaderChecksum6(p.L4Proto, ip.Src(), ip.Dst(), uint32(len(seg)))
	}
	off := int(p.L4Off) + header.UDPChecksumOffset
	if p.L4Proto == header.ProtocolTCP {
		off = int(p.L4Off) + header.TCPChecksumOffset
	}
	f[off], f[off+1] = byte(ps>>8), byte(ps)
	return off
}

func sec(s int) Time { return Time(s) * 1e9 }
