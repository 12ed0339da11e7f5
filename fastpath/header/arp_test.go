package header

import (
	"bytes"
	"errors"
	"net"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

func TestARPView(t *testing.T) {
	b := serialize(t, &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4,
		HwAddressSize: 6, ProtAddressSize: 4, Operation: layers.ARPRequest,
		SourceHwAddress: macA, SourceProtAddress: net.IP{10, 0, 0, 1},
		DstHwAddress: make([]byte, 6), DstProtAddress: net.IP{10, 0, 0, 2}})
	a := ARP(b)
	if !a.IsValid() || a.HardwareType() != 1 || a.Op() != ARPRequest || a.SenderMAC() != MAC(macA) || a.SenderIP() != [4]byte{10, 0, 0, 1} ||
		a.TargetMAC() != (MAC{}) || a.TargetIP() != [4]byte{10, 0, 0, 2} || a.IsGratuitous() {
		t.Fatalf("view of %x", b)
	}
	a.SetOp(ARPReply)
	a.SetSenderMAC(MAC(macB))
	a.SetSenderIP([4]byte{1, 2, 3, 4})
	a.SetTargetMAC(MAC(macA))
	a.SetTargetIP([4]byte{1, 2, 3, 4})
	p := gopacket.NewPacket(b, layers.LayerTypeARP, gopacket.Default)
	g := p.Layer(layers.LayerTypeARP).(*layers.ARP)
	if g.Operation != ARPReply || !bytes.Equal(g.SourceHwAddress, macB) || !bytes.Equal(g.SourceProtAddress, []byte{1, 2, 3, 4}) ||
		!bytes.Equal(g.DstHwAddress, macA) || !bytes.Equal(g.DstProtAddress, []byte{1, 2, 3, 4}) || !a.IsGratuitous() {
		t.Fatalf("gopacket reads %+v", g)
	}
	for i, mod := range []func(b []byte) []byte{
		func(b []byte) []byte { return b[:ARPSize-1] },
		func(b []byte) []byte { b[1] = 2; return b },    // hardware type 2
		func(b []byte) []byte { b[2] = 0x86; return b }, // protocol type
		func(b []byte) []byte { b[4] = 8; return b },
		func(b []byte) []byte { b[5] = 16; return b },
	} {
		if ARP(mod(bytes.Clone(b))).IsValid() {
			t.Errorf("invalid message %d accepted", i)
		}
	}
}

func TestBuildARPReplyRefuses(t *testing.T) {
	fr := linuxFrames(t)
	req, reply := ARP(fr[5][EthernetSize:]), ARP(fr[6][EthernetSize:])
	buf := make([]byte, 64)
	if _, err := BuildARPReply(buf, reply, linuxRouterMAC); err != ErrARPNotRequest {
		t.Errorf("reply answered: %v", err)
	}
	if _, err := BuildARPReply(buf, req[:20], linuxRouterMAC); err != ErrARPInvalid {
		t.Errorf("short request answered: %v", err)
	}
	if _, err := BuildARPReply(buf[:27], req, linuxRouterMAC); !errors.Is(err, ErrShortBuffer) {
		t.Errorf("reply built into 27 bytes: %v", err)
	}
	if _, err := BuildARPRequest(buf[:27], linuxRouterMAC, linuxRouter4, linuxHost4); err == nil {
		t.Error("request built into 27 bytes")
	}
	// Gratuitous: target = sender.
	n, _ := BuildARPRequest(buf, linuxRouterMAC, linuxRouter4, linuxRouter4)
	if !ARP(buf[:n]).IsGratuitous() || !ARP(buf[:n]).IsValid() {
		t.Error("gratuitous ARP")
	}
}

// TestARPBuildersGopacket decodes the builders' messages with gopacket.
func TestARPBuildersGopacket(t *testing.T) {
	buf := make([]byte, 64)
	n, err := BuildARPRequest(buf, MAC(macA), [4]byte{10, 0, 0, 1}, [4]byte{10, 0, 0, 2})
	if err != nil {
		t.Fatal(err)
	}
	req := bytes.Clone(buf[:n])
	n, err = BuildARPReply(buf, ARP(req), MAC(macB))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		b                  []byte
		op                 uint16
		sha, spa, tha, tpa []byte
	}{
		{req, ARPRequest, macA, []byte{10, 0, 0, 1}, make([]byte, 6), []byte{10, 0, 0, 2}},
		{buf[:n], ARPReply, macB, []byte{10, 0, 0, 2}, macA, []byte{10, 0, 0, 1}},
	} {
		p := gopacket.NewPacket(c.b, layers.LayerTypeARP, gopacket.Default)
		if p.ErrorLayer() != nil {
			t.Fatal(p.ErrorLayer().Error())
		}
		g := p.Layer(layers.LayerTypeARP).(*layers.ARP)
		if g.AddrType != layers.LinkTypeEthernet || g.Protocol != layers.EthernetTypeIPv4 || g.HwAddressSize != 6 || g.ProtAddressSize != 4 ||
			g.Operation != c.op || !bytes.Equal(g.SourceHwAddress, c.sha) || !bytes.Equal(g.SourceProtAddress, c.spa) ||
			!bytes.Equal(g.DstHwAddress, c.tha) || !bytes.Equal(g.DstProtAddress, c.tpa) {
			t.Fatalf("gopacket reads %+v", g)
		}
	}
}

// TestARPIEEE802: hardware type 6 is accepted, as Linux does on Ethernet,
// and answered with type 1.
func TestARPIEEE802(t *testing.T) {
	fr := linuxFrames(t)
	req := bytes.Clone(fr[5][EthernetSize:])
	req[1] = 6
	buf := make([]byte, ARPSize)
	n, err := BuildARPReply(buf, ARP(req), linuxRouterMAC)
	if err != nil {
		t.Fatal(err)
	}
	diffHex(t, "reply to an IEEE 802 request", buf[:n], fr[6][EthernetSize:])
}
