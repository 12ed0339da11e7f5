package header

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"net"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

func TestICMPv6View(t *testing.T) {
	ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolICMPv6, SrcIP: net.ParseIP("fd00::1"), DstIP: net.ParseIP("fd00::2")}
	ic := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(ICMPv6EchoRequest, 0)}
	ic.SetNetworkLayerForChecksum(ip)
	b := serialize(t, ip, ic, &layers.ICMPv6Echo{Identifier: 0x1234, SeqNumber: 0x5678}, gopacket.Payload("hello"))
	v6 := IPv6(b)
	m := ICMPv6(b[IPv6Size:])
	if !m.IsValid() || m.Type() != ICMPv6EchoRequest || m.Code() != 0 || m.Ident() != 0x1234 || m.Seq() != 0x5678 ||
		m.RestOfHeader() != 0x12345678 || string(m.Payload()) != "hello" {
		t.Fatalf("echo view: %x", m)
	}
	if c := m.CalculateChecksum(v6.Src(), v6.Dst()); c != m.Checksum() {
		t.Fatalf("CalculateChecksum %#04x, gopacket wrote %#04x", c, m.Checksum())
	}
	tb := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(ICMPv6PacketTooBig, 0)}
	tb.SetNetworkLayerForChecksum(ip)
	b = serialize(t, ip, tb, gopacket.Payload{0, 0, 0x05, 0x14})
	if m := ICMPv6(b[IPv6Size:]); m.MTU() != 1300 || m.CalculateChecksum(v6.Src(), v6.Dst()) != m.Checksum() {
		t.Fatalf("packet too big: %x", m)
	}
	if ICMPv6(make([]byte, 7)).IsValid() {
		t.Fatal("7 bytes valid")
	}
	for typ := 0; typ < 256; typ++ {
		if ICMPv6IsError(uint8(typ)) != (typ < 128) {
			t.Errorf("type %d", typ)
		}
	}
}

// TestICMPv6Setters: every setter, NDP's too, keeps the checksum
// verifying over random messages.
func TestICMPv6Setters(t *testing.T) {
	r := rand.New(rand.NewPCG(4443, 2))
	for i := 0; i < 5000; i++ {
		src, dst := [16]byte(randBytes(r, 16)), [16]byte(randBytes(r, 16))
		m := ICMPv6(randBytes(r, 24+8*r.IntN(3)))
		m.SetChecksum(m.CalculateChecksum(src, dst))
		switch i % 8 {
		case 0:
			m.SetType(uint8(r.Uint32()))
		case 1:
			m.SetCode(uint8(r.Uint32()))
		case 2:
			m.SetRestOfHeader(r.Uint32())
		case 3:
			m.SetIdent(uint16(r.Uint32()))
		case 4:
			NDPNeighborAdvert(m).SetFlags(r.IntN(2) == 0, r.IntN(2) == 0, r.IntN(2) == 0)
		case 5:
			NDPNeighborAdvert(m).SetTarget([16]byte(randBytes(r, 16)))
		case 6:
			NDPNeighborSolicit(m).SetTarget([16]byte(randBytes(r, 16)))
		case 7:
			old := dst
			dst = [16]byte(randBytes(r, 16))
			m.UpdatePseudoHeaderAddr6(old, dst, false)
		}
		if Checksum(m, PseudoHeaderChecksum6(ProtocolICMPv6, src, dst, uint32(len(m)))) != 0xffff {
			t.Fatalf("setter %d broke the checksum", i%8)
		}
	}
}

func TestNDPViews(t *testing.T) {
	buf := make([]byte, 128)
	mac := MAC{2, 0, 0, 0, 0, 7}
	target := [16]byte{0xfd, 1, 15: 7}
	n, _ := BuildNeighborSolicit(buf, [16]byte{0xfd, 15: 1}, mac, target, false)
	ns := NDPNeighborSolicit(buf[IPv6Size:n])
	if !ns.IsValid() || ns.Target() != target || NDPNeighborAdvert(ns).IsValid() || NDPRouterSolicit(ns).IsValid() {
		t.Fatal("NS view")
	}
	if got, ok, err := ns.Options().LinkLayerAddr(NDPOptSourceLinkLayer); got != mac || !ok || err != nil {
		t.Fatalf("source link-layer address %v %v %v", got, ok, err)
	}
	if _, ok, err := ns.Options().LinkLayerAddr(NDPOptTargetLinkLayer); ok || err != nil {
		t.Fatal("target link-layer address found in an NS")
	}
	n, _ = BuildUnsolicitedNeighborAdvert(buf, target, mac, true)
	na := NDPNeighborAdvert(buf[IPv6Size:n])
	if !na.IsValid() || !na.Router() || na.Solicited() || !na.Override() || na.Target() != target {
		t.Fatal("NA view")
	}
	na.SetFlags(false, true, false)
	if na.Router() || !na.Solicited() || na.Override() {
		t.Fatal("NA flags")
	}
	rs := NDPRouterSolicit{ICMPv6RouterSolicit, 0, 0, 0, 0, 0, 0, 0, NDPOptSourceLinkLayer, 1, 2, 0, 0, 0, 0, 7}
	if !rs.IsValid() {
		t.Fatal("RS view")
	}
	if got, ok, err := rs.Options().LinkLayerAddr(NDPOptSourceLinkLayer); got != mac || !ok || err != nil {
		t.Fatalf("RS source link-layer address %v %v %v", got, ok, err)
	}
	if SolicitedNodeAddr([16]byte{0xfd, 1, 15: 1}) != [16]byte(net.ParseIP("ff02::1:ff00:1")) ||
		!IsSolicitedNodeAddr([16]byte(net.ParseIP("ff02::1:ffab:cdef"))) || IsSolicitedNodeAddr(IPv6AllNodes) {
		t.Fatal("solicited-node address")
	}
	if IPv6MulticastMAC([16]byte(net.ParseIP("ff02::1:ff00:1"))) != (MAC{0x33, 0x33, 0xff, 0, 0, 1}) {
		t.Fatal("multicast MAC")
	}
}

func TestNDPOptions(t *testing.T) {
	sll := []byte{NDPOptSourceLinkLayer, 1, 2, 0, 0, 0, 0, 7}
	long := append([]byte{NDPOptSourceLinkLayer, 2}, make([]byte, 14)...) // 16 bytes: not Ethernet
	mtu := []byte{NDPOptMTU, 1, 0, 0, 0, 0, 5, 0x14}
	cat := func(bs ...[]byte) NDPOptions { return NDPOptions(bytes.Join(bs, nil)) }
	for _, c := range []struct {
		name  string
		o     NDPOptions
		types []uint8
		err   error
		mac   MAC
		found bool
	}{
		{"none", nil, nil, nil, MAC{}, false},
		{"source", cat(sll), []uint8{1}, nil, MAC{2, 0, 0, 0, 0, 7}, true},
		{"mtu then source", cat(mtu, sll), []uint8{5, 1}, nil, MAC{2, 0, 0, 0, 0, 7}, true},
		{"first source 16 bytes: no address", cat(long, sll), []uint8{1, 1}, nil, MAC{}, false},
		{"second source ignored", cat(sll, []byte{1, 1, 9, 9, 9, 9, 9, 9}), []uint8{1, 1}, nil, MAC{2, 0, 0, 0, 0, 7}, true},
		{"only a 16-byte source", cat(long), []uint8{1}, nil, MAC{}, false},
		{"zero length", cat(sll, []byte{1, 0, 0, 0, 0, 0, 0, 0}), []uint8{1}, NDPErrOptionZeroLength, MAC{2, 0, 0, 0, 0, 7}, true},
		{"zero length first", cat([]byte{1, 0, 0, 0, 0, 0, 0, 0}, sll), nil, NDPErrOptionZeroLength, MAC{}, false},
		{"truncated", cat(mtu, []byte{1, 2, 0, 0, 0, 0, 0, 0}), []uint8{5}, NDPErrOptionTruncated, MAC{}, false},
		{"one byte left", cat(mtu, []byte{1}), []uint8{5}, NDPErrOptionTruncated, MAC{}, false},
	} {
		var types []uint8
		var err error
		for o := c.o; len(o) > 0; {
			var opt NDPOption
			if opt, o, err = o.Next(); err != nil {
				break
			}
			if opt.Length() != len(opt) || len(opt.Data()) != len(opt)-2 {
				t.Errorf("%s: option length %d of %d bytes", c.name, opt.Length(), len(opt))
			}
			types = append(types, opt.Type())
		}
		if !bytes.Equal(types, c.types) || err != c.err || c.o.Validate() != c.err {
			t.Errorf("%s: types %v err %v, want %v %v", c.name, types, err, c.types, c.err)
		}
		mac, found, err := c.o.LinkLayerAddr(NDPOptSourceLinkLayer)
		if mac != c.mac || found != c.found || (err != nil && !found) != (c.err != nil && !c.found) {
			t.Errorf("%s: LinkLayerAddr %v %v %v, want %v %v", c.name, mac, found, err, c.mac, c.found)
		}
	}
	var e error = NDPErrChecksum
	if !errors.Is(e, NDPErrChecksum) || e.Error() == "" || NDPError(200).Error() != "NDP error 200" {
		t.Fatal("NDPError")
	}
}

// TestValidateNDP breaks each rule of ValidateNDP once, from valid
// messages.
func TestValidateNDP(t *testing.T) {
	mac := MAC{2, 0, 0, 0, 0, 7}
	src, target := [16]byte{0xfd, 15: 1}, [16]byte{0xfd, 15: 7}
	ns := func() []byte {
		b := make([]byte, 128)
		n, _ := BuildNeighborSolicit(b, src, mac, target, false)
		return b[:n]
	}
	na := func() []byte {
		b := make([]byte, 128)
		n, _ := BuildUnsolicitedNeighborAdvert(b, target, mac, false)
		return b[:n]
	}
	// fix recomputes the checksum after a change.
	fix := func(b []byte) {
		ip := IPv6(b)
		m := ICMPv6(b[IPv6Size:])
		m.SetChecksum(0)
		m.SetChecksum(m.CalculateChecksum(ip.Src(), ip.Dst()))
	}
	rs := func() []byte {
		b := make([]byte, 56)
		putIPv6(b, 0, 0, 16, ProtocolICMPv6, 255, src, IPv6AllRouters)
		b[40] = ICMPv6RouterSolicit
		PutLinkLayerOption(b[48:], NDPOptSourceLinkLayer, mac)
		fix(b)
		return b
	}
	setLen := func(b []byte, n int) []byte {
		b = b[:IPv6Size+n]
		put16(b[4:], uint16(n))
		fix(b)
		return b
	}
	for _, c := range []struct {
		name string
		b    []byte
		mod  func(b []byte) []byte
		want error
	}{
		{"NS", ns(), nil, nil},
		{"NA", na(), nil, nil},
		{"RS", rs(), nil, nil},
		{"short", ns(), func(b []byte) []byte { return setLen(b, 7) }, NDPErrShort},
		{"short NS", ns(), func(b []byte) []byte { return setLen(b, 23) }, NDPErrShort},
		{"not NDP", ns(), func(b []byte) []byte { b[40] = ICMPv6EchoRequest; fix(b); return b }, NDPErrType},
		{"hop limit", ns(), func(b []byte) []byte { b[7] = 254; return b }, NDPErrHopLimit},
		{"code", ns(), func(b []byte) []byte { b[41] = 1; fix(b); return b }, NDPErrCode},
		{"checksum", ns(), func(b []byte) []byte { b[42]++; return b }, NDPErrChecksum},
		{"multicast source", ns(), func(b []byte) []byte { b[8] = 0xff; fix(b); return b }, NDPErrMulticastSource},
		{"multicast target", ns(), func(b []byte) []byte { NDPNeighborSolicit(b[40:]).SetTarget(IPv6AllNodes); return b }, NDPErrMulticastTarget},
		{"zero-length option", ns(), func(b []byte) []byte { b[65] = 0; fix(b); return b }, NDPErrOptionZeroLength},
		{"truncated option", ns(), func(b []byte) []byte { b[65] = 2; fix(b); return b }, NDPErrOptionTruncated},
		{"DAD NS", ns(), func(b []byte) []byte { clear(b[8:24]); return setLen(b, 24) }, nil},
		{"DAD NS with source link-layer option", ns(), func(b []byte) []byte { clear(b[8:24]); fix(b); return b }, NDPErrUnspecifiedWithLinkLayer},
		{"NS from :: to unicast", ns(), func(b []byte) []byte {
			clear(b[8:24])
			copy(b[24:40], target[:])
			return setLen(b, 24)
		}, NDPErrUnspecifiedNotSolicitedNode},
		{"NA from ::", na(), func(b []byte) []byte { clear(b[8:24]); fix(b); return b }, NDPErrUnspecifiedAdvert},
		{"solicited NA to multicast", na(), func(b []byte) []byte { NDPNeighborAdvert(b[40:]).SetFlags(false, true, true); return b }, NDPErrMulticastSolicited},
		{"RS from :: with option", rs(), func(b []byte) []byte { clear(b[8:24]); fix(b); return b }, NDPErrUnspecifiedWithLinkLayer},
		{"RS from :: without option", rs(), func(b []byte) []byte { clear(b[8:24]); return setLen(b, 8) }, nil},
	} {
		b := c.b
		if c.mod != nil {
			b = c.mod(b)
		}
		if err := ValidateNDP(IPv6(b), ICMPv6(b[IPv6Size:])); err != c.want {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	bad := ns()
	bad[42]++
	if a := testing.AllocsPerRun(100, func() { _ = ValidateNDP(IPv6(bad), ICMPv6(bad[IPv6Size:])) }); a != 0 {
		t.Fatalf("%v allocations rejecting a message", a)
	}
}
