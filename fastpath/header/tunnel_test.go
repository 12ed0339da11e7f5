package header

import (
	"bytes"
	"hash/crc32"
	"net"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

func TestTunnelViews(t *testing.T) {
	inner := bytes.Repeat([]byte{0xab}, 30)
	vx := serialize(t, &layers.VXLAN{ValidIDFlag: true, VNI: 0x123456}, gopacket.Payload(inner))
	if v := VXLAN(vx); !v.IsValid() || v.VNI() != 0x123456 || !bytes.Equal(v.Payload(), inner) {
		t.Errorf("VXLAN: valid %v VNI %#x payload %x", v.IsValid(), v.VNI(), v.Payload())
	}
	if VXLAN(vx[:7]).IsValid() || VXLAN(make([]byte, 8)).IsValid() {
		t.Error("VXLAN: a short header or one without the I flag is valid")
	}

	gn := serialize(t, &layers.Geneve{Protocol: layers.EthernetTypeTransparentEthernetBridging, VNI: 77,
		Options: []*layers.GeneveOption{{Class: 1, Type: 2, Length: 8, Data: []byte{1, 2, 3, 4}}}}, gopacket.Payload(inner))
	if g := GENEVE(gn); !g.IsValid() || g.HeaderLength() != 16 || g.ProtocolType() != EtherTypeTEB || g.VNI() != 77 || !bytes.Equal(g.Payload(), inner) {
		t.Errorf("GENEVE: valid %v length %d type %#x VNI %d", g.IsValid(), g.HeaderLength(), g.ProtocolType(), g.VNI())
	}
	if GENEVE(gn[:12]).IsValid() {
		t.Error("GENEVE: options past the end, valid")
	}

	for _, c := range []struct {
		g      layers.GRE
		length int
	}{
		{layers.GRE{Protocol: layers.EthernetTypeIPv4}, 4},
		{layers.GRE{ChecksumPresent: true, Protocol: layers.EthernetTypeIPv6}, 8},
		{layers.GRE{KeyPresent: true, Key: 5, SeqPresent: true, Seq: 6, Protocol: layers.EthernetTypeTransparentEthernetBridging}, 12},
		{layers.GRE{ChecksumPresent: true, KeyPresent: true, SeqPresent: true, Protocol: layers.EthernetTypeIPv4}, 16},
	} {
		b := serialize(t, &c.g, gopacket.Payload(inner))
		g := GRE(b)
		if !g.IsValid() || g.HeaderLength() != c.length || g.ProtocolType() != uint16(c.g.Protocol) ||
			g.HasChecksum() != c.g.ChecksumPresent || g.HasKey() != c.g.KeyPresent || g.HasSeq() != c.g.SeqPresent || !bytes.Equal(g.Payload(), inner) {
			t.Errorf("GRE %+v: valid %v length %d type %#x", c.g, g.IsValid(), g.HeaderLength(), g.ProtocolType())
		}
		if g.HasChecksum() && ^Checksum(b, 0) != 0 {
			t.Errorf("GRE %+v: gopacket's checksum %#x does not verify", c.g, g.Checksum())
		}
		if GRE(b[:c.length-1]).IsValid() {
			t.Errorf("GRE %+v cut short is valid", c.g)
		}
	}
	if GRE([]byte{0x40, 0, 8, 0, 0, 0, 0, 0}).IsValid() || GRE([]byte{0, 1, 8, 0}).IsValid() {
		t.Error("GRE with the routing bit or version 1 is valid")
	}
}

func TestSCTPChecksum(t *testing.T) {
	data := &layers.SCTPData{SCTPChunk: layers.SCTPChunk{Type: layers.SCTPChunkTypeData, Length: 16 + 33},
		BeginFragment: true, EndFragment: true, TSN: 9, Payload: bytes.Repeat([]byte{3}, 33)}
	b := serialize(t, &layers.SCTP{SrcPort: 1, DstPort: 2, VerificationTag: 3}, data)
	s := SCTP(b)
	// gopacket and a direct CRC32c agree with the view.
	z := bytes.Clone(b)
	copy(z[8:12], []byte{0, 0, 0, 0})
	if want := crc32.Checksum(z, crc32.MakeTable(crc32.Castagnoli)); s.Checksum() != want || s.CalculateChecksum() != want {
		t.Fatalf("SCTP checksum field %#x, calculated %#x, want %#x", s.Checksum(), s.CalculateChecksum(), want)
	}
	if s.SrcPort() != 1 || s.DstPort() != 2 {
		t.Fatalf("SCTP ports %d %d", s.SrcPort(), s.DstPort())
	}
	want := bytes.Clone(b)
	partial := bytes.Clone(z)
	if !FinishSCTP(partial) || !bytes.Equal(partial, want) {
		t.Fatalf("FinishSCTP: %x, want %x", partial, want)
	}
	if FinishSCTP(partial) || !bytes.Equal(partial, want) {
		t.Fatal("FinishSCTP changed a finished packet")
	}
	wrong := bytes.Clone(want)
	wrong[20]++
	w := bytes.Clone(wrong)
	if FinishSCTP(wrong) || !bytes.Equal(wrong, w) {
		t.Fatal("FinishSCTP changed a packet whose CRC is wrong but not 0")
	}
	if FinishSCTP(make([]byte, 11)) {
		t.Fatal("FinishSCTP finished 11 bytes")
	}
}

func TestIPv6RoutingFinalDst(t *testing.T) {
	fixed := [16]byte(net.ParseIP("fd00::1"))
	a, b := net.ParseIP("fd00::a"), net.ParseIP("fd00::b")
	rh := func(typ, left uint8, addrs ...net.IP) IPv6RoutingHeader {
		h := []byte{ProtocolUDP, uint8(2 * len(addrs)), typ, left, 0, 0, 0, 0}
		for _, x := range addrs {
			h = append(h, x...)
		}
		return h
	}
	for _, c := range []struct {
		name string
		h    IPv6RoutingHeader
		want net.IP
		ok   bool
	}{
		{"type 0, 2 left: last address", rh(0, 2, a, b), b, true},
		{"type 2, 1 left: the home address", rh(2, 1, a), a, true},
		{"type 4 (SRH), 1 left: Segment List[0]", rh(4, 1, a, b), a, true},
		{"none left: the fixed header's", rh(4, 0, a, b), net.IP(fixed[:]), true},
		{"type 3 (RPL), 1 left: unknown", rh(3, 1, a), nil, false},
		{"no address", rh(0, 1), nil, false},
		{"shorter than its length", rh(0, 2, a, b)[:30], nil, false},
	} {
		got, ok := c.h.FinalDst(fixed)
		if ok != c.ok || (ok && !net.IP(got[:]).Equal(c.want)) {
			t.Errorf("%s: %v %v, want %v %v", c.name, net.IP(got[:]), ok, c.want, c.ok)
		}
	}
	if n := IPv6ExtLength(IPv6Auth, []byte{0, 4}); n != 24 {
		t.Errorf("authentication header with payload length 4: %d bytes, want 24", n)
	}
	if n := IPv6ExtLength(IPv6Fragment, []byte{0, 9}); n != 8 || !IsIPv6ExtHeader(IPv6Fragment) || IsIPv6ExtHeader(ProtocolTCP) {
		t.Errorf("fragment header: %d bytes", n)
	}
}
