package header

import (
	"bytes"
	"math/rand/v2"
	"net"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

func TestICMPv4View(t *testing.T) {
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolICMPv4, SrcIP: net.IP{10, 0, 0, 1}, DstIP: net.IP{10, 0, 0, 2}}
	b := serialize(t, ip, &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(ICMPv4Echo, 0), Id: 0x1234, Seq: 0x5678}, gopacket.Payload("hello"))
	m := ICMPv4(IPv4(b).Payload())
	if !m.IsValid() || m.Type() != ICMPv4Echo || m.Code() != 0 || m.Ident() != 0x1234 || m.Seq() != 0x5678 ||
		m.RestOfHeader() != 0x12345678 || string(m.Payload()) != "hello" || m.IsError() {
		t.Fatalf("echo view: %x", m)
	}
	if m.CalculateChecksum() != m.Checksum() {
		t.Fatalf("CalculateChecksum %#04x, gopacket wrote %#04x", m.CalculateChecksum(), m.Checksum())
	}
	b = serialize(t, ip, &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(ICMPv4DestUnreachable, ICMPv4FragmentationNeeded), Seq: 1400})
	m = ICMPv4(IPv4(b).Payload())
	if m.MTU() != 1400 || !m.IsError() || m.Code() != ICMPv4FragmentationNeeded || m.CalculateChecksum() != m.Checksum() {
		t.Fatalf("frag needed view: %x", m)
	}
	if ICMPv4(make([]byte, 7)).IsValid() {
		t.Fatal("7 bytes valid")
	}
}

// TestICMPv4Setters: every setter keeps the checksum equal to a
// recompute, over random messages, the all-zero one included.
func TestICMPv4Setters(t *testing.T) {
	r := rand.New(rand.NewPCG(792, 2))
	for i := 0; i < 5000; i++ {
		m := ICMPv4(randBytes(r, 8+r.IntN(30)))
		if i%10 == 0 {
			clear(m)
		}
		m.SetChecksum(m.CalculateChecksum())
		switch i % 4 {
		case 0:
			m.SetType(uint8(r.Uint32()))
		case 1:
			m.SetCode(uint8(r.Uint32()))
		case 2:
			m.SetRestOfHeader(r.Uint32())
		case 3:
			m.SetIdent(uint16(r.Uint32()))
		}
		if Checksum(m, 0) != 0xffff {
			t.Fatalf("setter %d broke the checksum: %x", i%4, m)
		}
		want := ICMPv4(bytes.Clone(m))
		want.SetChecksum(0)
		if got := ^naiveSum(want, 0); got != m.Checksum() {
			t.Fatalf("setter %d: checksum %#04x, recomputed %#04x", i%4, m.Checksum(), got)
		}
	}
	zero := ICMPv4(make([]byte, 8))
	if zero.CalculateChecksum() != 0xffff {
		t.Fatalf("all-zero message: checksum %#04x, want 0xffff", zero.CalculateChecksum())
	}
}

// TestICMPv4IsError follows Linux's icmp_pointers table.
func TestICMPv4IsError(t *testing.T) {
	notErrors := map[uint8]bool{0: true, 8: true, 13: true, 14: true, 15: true, 16: true, 17: true, 18: true}
	for typ := 0; typ < 256; typ++ {
		if got := ICMPv4IsError(uint8(typ)); got == notErrors[uint8(typ)] {
			t.Errorf("type %d: error %v", typ, got)
		}
	}
}
