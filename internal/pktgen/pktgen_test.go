package pktgen

import (
	"net"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/xdpfwd/xdpfwd/fastpath/header"
)

func TestFrame(t *testing.T) {
	c := Config{
		SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2},
		Src: netip.MustParseAddrPort("10.0.0.1:1000"), Dst: netip.MustParseAddrPort("10.0.0.2:9"),
	}
	for _, size := range []int{60, 128, 1514} {
		c.Size = size
		f, err := Frame(c, 1234)
		if err != nil {
			t.Fatal(err)
		}
		if len(f) != size {
			t.Errorf("size %d: frame of %d bytes", size, len(f))
		}
		p := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
		udp, _ := p.Layer(layers.LayerTypeUDP).(*layers.UDP)
		ip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		if udp == nil || ip == nil {
			t.Fatalf("size %d: not an IPv4 UDP frame: %v", size, p)
		}
		if udp.SrcPort != 1234 || udp.DstPort != 9 || !ip.DstIP.Equal(net.IP{10, 0, 0, 2}) {
			t.Errorf("size %d: addressed %v:%d -> %v:%d", size, ip.SrcIP, udp.SrcPort, ip.DstIP, udp.DstPort)
		}
		// A correct checksum sums, with the pseudo-header, to all ones.
		seg := f[14+20 : 14+ip.Length]
		pseudo := header.PseudoHeaderChecksum4(17, [4]byte(ip.SrcIP.To4()), [4]byte(ip.DstIP.To4()), uint16(len(seg)))
		if sum := header.Checksum(seg, pseudo); sum != 0xffff {
			t.Errorf("size %d: UDP checksum does not verify (sum %#x)", size, sum)
		}
	}
}
