package header

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// linuxFrames returns the frames of testdata/linux-6.18-router.hex, which
// says how they were captured.
func linuxFrames(t testing.TB) [][]byte {
	t.Helper()
	f, err := os.Open("testdata/linux-6.18-router.hex")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var frames [][]byte
	s := bufio.NewScanner(f)
	s.Buffer(nil, 1<<20)
	for s.Scan() {
		l := strings.TrimSpace(s.Text())
		if l == "" || l[0] == '#' {
			continue
		}
		b, err := hex.DecodeString(l)
		if err != nil {
			t.Fatalf("frame %d: %v", len(frames), err)
		}
		frames = append(frames, b)
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	return frames
}

var (
	linuxRouterMAC = MAC{0x16, 0xc7, 0x0c, 0xd0, 0xde, 0x5d}
	linuxHostMAC   = MAC{0x12, 0x74, 0xe9, 0x7c, 0xdf, 0x82}
	linuxRouter4   = [4]byte{10, 1, 0, 1}
	linuxHost4     = [4]byte{10, 1, 0, 2}
	linuxRouter6   = [16]byte{0: 0xfd, 1: 0x01, 15: 1}
	linuxHost6     = [16]byte{0: 0xfd, 1: 0x01, 15: 2}
)

func diffHex(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from Linux's:\ngot  %x\nwant %x", what, got, want)
	}
}

// TestICMPErrorsMatchLinux builds the errors Linux 6.18 sent for the
// captured packets and compares them byte for byte (the identification
// and flow label, which Linux draws from hashes, taken from the capture).
func TestICMPErrorsMatchLinux(t *testing.T) {
	fr := linuxFrames(t)
	buf := make([]byte, 2048)
	for _, c := range []struct {
		name       string
		orig, want int
		typ, code  uint8
		rest       uint32
	}{
		{"time exceeded, quote cut at 576", 7, 8, ICMPv4TimeExceeded, ICMPv4TTLExceeded, 0},
		{"time exceeded, small", 9, 10, ICMPv4TimeExceeded, ICMPv4TTLExceeded, 0},
		{"fragmentation needed", 11, 12, ICMPv4DestUnreachable, ICMPv4FragmentationNeeded, 1300},
	} {
		want := fr[c.want][EthernetSize:]
		e := ICMPv4Error{Type: c.typ, Code: c.code, Rest: c.rest, Src: linuxRouter4, ID: be16(want[4:])}
		n, err := e.Build(buf, IPv4(fr[c.orig][EthernetSize:]))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		diffHex(t, c.name, buf[:n], want)
	}
	for _, c := range []struct {
		name       string
		orig, want int
		typ, code  uint8
		rest       uint32
	}{
		{"v6 time exceeded, quote cut at 1280", 15, 16, ICMPv6TimeExceeded, ICMPv6HopLimitExceeded, 0},
		{"packet too big", 17, 18, ICMPv6PacketTooBig, 0, 1300},
		{"v6 time exceeded, small", 19, 20, ICMPv6TimeExceeded, ICMPv6HopLimitExceeded, 0},
	} {
		want := fr[c.want][EthernetSize:]
		e := ICMPv6Error{Type: c.typ, Code: c.code, Rest: c.rest, Src: linuxRouter6, FlowLabel: binary.BigEndian.Uint32(want) & 0xfffff}
		n, err := e.Build(buf, IPv6(fr[c.orig][EthernetSize:]))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		diffHex(t, c.name, buf[:n], want)
	}
}

func TestEchoRepliesMatchLinux(t *testing.T) {
	fr := linuxFrames(t)
	ip := IPv4(bytes.Clone(fr[21][EthernetSize:]))
	want := fr[22][EthernetSize:]
	if err := ICMPv4EchoReplyInPlace(ip, 0, be16(want[4:])); err != nil {
		t.Fatal(err)
	}
	diffHex(t, "echo reply", ip, want)

	ip6 := IPv6(bytes.Clone(fr[23][EthernetSize:]))
	want = fr[24][EthernetSize:]
	if err := ICMPv6EchoReplyInPlace(ip6, 0, binary.BigEndian.Uint32(want)&0xfffff); err != nil {
		t.Fatal(err)
	}
	diffHex(t, "ICMPv6 echo reply", ip6, want)
}

func TestNDPMatchesLinux(t *testing.T) {
	fr := linuxFrames(t)
	buf := make([]byte, 256)
	for _, c := range []struct {
		name     string
		ns, na   int
		mac      MAC
		isRouter bool
	}{
		{"router answers a multicast NS", 13, 14, linuxRouterMAC, true},
		{"host answers a unicast NS", 26, 27, linuxHostMAC, false},
		{"router answers a unicast NS", 30, 32, linuxRouterMAC, true},
	} {
		ip := IPv6(fr[c.ns][EthernetSize:])
		if err := ValidateNDP(ip, ICMPv6(ip[IPv6Size:])); err != nil {
			t.Fatalf("%s: Linux's NS does not validate: %v", c.name, err)
		}
		n, err := BuildNeighborAdvert(buf, ip, NDPNeighborSolicit(ip[IPv6Size:]), c.mac, c.isRouter)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		want := fr[c.na][EthernetSize:]
		diffHex(t, c.name, buf[:n], want)
		if err := ValidateNDP(IPv6(want), ICMPv6(want[IPv6Size:])); err != nil {
			t.Fatalf("%s: Linux's NA does not validate: %v", c.name, err)
		}
	}
	for _, c := range []struct {
		name     string
		frame    int
		src, tgt [16]byte
		mac      MAC
		unicast  bool
	}{
		{"host resolves the router", 13, linuxHost6, linuxRouter6, linuxHostMAC, false},
		{"router probes the host", 26, [16]byte(fr[26][EthernetSize+8:]), linuxHost6, linuxRouterMAC, true},
	} {
		n, err := BuildNeighborSolicit(buf, c.src, c.mac, c.tgt, c.unicast)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		diffHex(t, c.name, buf[:n], fr[c.frame][EthernetSize:])
	}
}

func TestARPMatchesLinux(t *testing.T) {
	fr := linuxFrames(t)
	buf := make([]byte, 64)
	n, err := BuildARPReply(buf, ARP(fr[5][EthernetSize:]), linuxRouterMAC)
	if err != nil {
		t.Fatal(err)
	}
	diffHex(t, "router's ARP reply", buf[:n], fr[6][EthernetSize:])
	n, err = BuildARPReply(buf, ARP(fr[28][EthernetSize:]), linuxHostMAC)
	if err != nil {
		t.Fatal(err)
	}
	diffHex(t, "host's ARP reply", buf[:n], fr[29][EthernetSize:])
	n, err = BuildARPRequest(buf, linuxHostMAC, linuxHost4, linuxRouter4)
	if err != nil {
		t.Fatal(err)
	}
	diffHex(t, "host's ARP request", buf[:n], fr[5][EthernetSize:])
	n, err = BuildARPRequest(buf, linuxRouterMAC, linuxRouter4, linuxHost4)
	if err != nil {
		t.Fatal(err)
	}
	diffHex(t, "router's ARP request", buf[:n], fr[28][EthernetSize:])
	// In place: the request's own bytes become the reply.
	req := bytes.Clone(fr[5][EthernetSize:])
	if n, err = BuildARPReply(req, ARP(req), linuxRouterMAC); err != nil || !bytes.Equal(req[:n], fr[6][EthernetSize:]) {
		t.Fatalf("in place: %v\n%x", err, req)
	}
}

// decode decodes an IP packet with gopacket and fails on any decoding
// error or checksum gopacket finds wrong.
func decode(t *testing.T, b []byte, first gopacket.LayerType) gopacket.Packet {
	t.Helper()
	p := gopacket.NewPacket(b, first, gopacket.Default)
	if el := p.ErrorLayer(); el != nil {
		t.Fatalf("gopacket: %v\n%x", el.Error(), b)
	}
	if ic, ok := p.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6); ok {
		if err := ic.SetNetworkLayerForChecksum(p.NetworkLayer()); err != nil {
			t.Fatal(err)
		}
	}
	err, bad := p.VerifyChecksums()
	if err != nil || len(bad) != 0 {
		t.Fatalf("gopacket checksums: %v %+v\n%x", err, bad, b)
	}
	return p
}

// offending returns a random IPv4 or IPv6 packet to quote, UDP, TCP or
// ICMP echo, of a random size up to 1500 bytes, with random TOS or
// traffic class, built by gopacket.
func offending(t *testing.T, r *rand.Rand, v6 bool) []byte {
	pl := gopacket.Payload(randBytes(r, r.IntN(1460)))
	var net4 = &layers.IPv4{Version: 4, TTL: uint8(r.IntN(3)), TOS: uint8(r.Uint32()), Id: uint16(r.Uint32()),
		SrcIP: net.IP{10, 1, 0, byte(r.IntN(250) + 2)}, DstIP: net.IP{10, 2, 0, 2}}
	var net6 = &layers.IPv6{Version: 6, HopLimit: uint8(r.IntN(3)), TrafficClass: uint8(r.Uint32()), FlowLabel: r.Uint32() & 0xfffff,
		SrcIP: net.ParseIP("fd01::99"), DstIP: net.ParseIP("fd02::2")}
	var l3 gopacket.NetworkLayer = net4
	if v6 {
		l3 = net6
	}
	var l4 gopacket.SerializableLayer
	switch r.IntN(3) {
	case 0:
		u := &layers.UDP{SrcPort: layers.UDPPort(r.Uint32()), DstPort: 53}
		u.SetNetworkLayerForChecksum(l3)
		l4, net4.Protocol, net6.NextHeader = u, layers.IPProtocolUDP, layers.IPProtocolUDP
	case 1:
		tc := &layers.TCP{SrcPort: layers.TCPPort(r.Uint32()), DstPort: 80, Seq: r.Uint32(), SYN: true, Window: 1000}
		tc.SetNetworkLayerForChecksum(l3)
		l4, net4.Protocol, net6.NextHeader = tc, layers.IPProtocolTCP, layers.IPProtocolTCP
	default:
		if v6 {
			ic := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(ICMPv6EchoRequest, 0)}
			ic.SetNetworkLayerForChecksum(l3)
			pl = append(gopacket.Payload{0, 1, 0, 2}, pl...)
			l4, net6.NextHeader = ic, layers.IPProtocolICMPv6
		} else {
			l4, net4.Protocol = &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(ICMPv4Echo, 0), Id: 1, Seq: 2}, layers.IPProtocolICMPv4
		}
	}
	return serialize(t, l3.(gopacket.SerializableLayer), l4, pl)
}

// TestICMPv4ErrorGopacket builds errors about random packets and checks
// every field with gopacket, which verifies both checksums: header fields
// as Linux sets them, the quote as long as fits in min(576, MTU).
func TestICMPv4ErrorGopacket(t *testing.T) {
	r := rand.New(rand.NewPCG(792, 1))
	buf := make([]byte, 1600)
	for i := 0; i < 300; i++ {
		orig := offending(t, r, false)
		e := ICMPv4Error{Type: ICMPv4DestUnreachable, Code: uint8(r.IntN(16)), Rest: uint32(r.IntN(1500)),
			Src: [4]byte{192, 0, 2, byte(r.IntN(255))}, TTL: uint8(r.IntN(3)) * 100, ID: uint16(r.Uint32())}
		if r.IntN(3) == 0 {
			e.MTU = 49 + r.IntN(600)
		}
		n, err := e.Build(buf, IPv4(orig))
		if err != nil {
			t.Fatal(err)
		}
		limit := ICMPv4ErrorMaxSize
		if e.MTU != 0 && e.MTU < limit {
			limit = e.MTU
		}
		if want := min(28+len(orig), limit); n != want {
			t.Fatalf("length %d, want %d (original %d, MTU %d)", n, want, len(orig), e.MTU)
		}
		p := decode(t, buf[:n], layers.LayerTypeIPv4)
		ip := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		ttl := e.TTL
		if ttl == 0 {
			ttl = 64
		}
		if ip.Version != 4 || ip.IHL != 5 || ip.TOS != orig[1]&0x1e|0xc0 || int(ip.Length) != n || ip.Id != e.ID ||
			ip.Flags != 0 || ip.FragOffset != 0 || ip.TTL != ttl || ip.Protocol != layers.IPProtocolICMPv4 ||
			!ip.SrcIP.Equal(net.IP(e.Src[:])) || !ip.DstIP.Equal(net.IP(orig[12:16])) {
			t.Fatalf("IPv4 header %+v for %+v", ip, e)
		}
		ic := p.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
		if ic.TypeCode != layers.CreateICMPv4TypeCode(e.Type, e.Code) || uint32(ic.Id)<<16|uint32(ic.Seq) != e.Rest {
			t.Fatalf("ICMP %+v for %+v", ic, e)
		}
		if q := buf[28:n]; !bytes.Equal(q, orig[:len(q)]) {
			t.Fatal("quote is not the original's first bytes")
		}
	}
}

func TestICMPv6ErrorGopacket(t *testing.T) {
	r := rand.New(rand.NewPCG(4443, 1))
	buf := make([]byte, 1600)
	for i := 0; i < 300; i++ {
		orig := offending(t, r, true)
		e := ICMPv6Error{Type: uint8(1 + r.IntN(4)), Code: uint8(r.IntN(7)), Rest: r.Uint32(),
			Src: [16]byte{0xfd, 0, 15: byte(r.IntN(255))}, HopLimit: uint8(r.IntN(3)) * 100, FlowLabel: r.Uint32() & 0xfffff}
		n, err := e.Build(buf, IPv6(orig))
		if err != nil {
			t.Fatal(err)
		}
		if want := min(48+len(orig), 1280); n != want {
			t.Fatalf("length %d, want %d (original %d)", n, want, len(orig))
		}
		p := decode(t, buf[:n], layers.LayerTypeIPv6)
		ip := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
		hl := e.HopLimit
		if hl == 0 {
			hl = 64
		}
		if ip.Version != 6 || ip.TrafficClass != 0 || ip.FlowLabel != e.FlowLabel || int(ip.Length) != n-40 ||
			ip.NextHeader != layers.IPProtocolICMPv6 || ip.HopLimit != hl ||
			!ip.SrcIP.Equal(net.IP(e.Src[:])) || !ip.DstIP.Equal(net.IP(orig[8:24])) {
			t.Fatalf("IPv6 header %+v for %+v", ip, e)
		}
		ic := p.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6)
		if ic.TypeCode != layers.CreateICMPv6TypeCode(e.Type, e.Code) || binary.BigEndian.Uint32(ic.Payload) != e.Rest {
			t.Fatalf("ICMPv6 %+v for %+v", ic, e)
		}
		if q := buf[48:n]; !bytes.Equal(q, orig[:len(q)]) {
			t.Fatal("quote is not the original's first bytes")
		}
	}
	if _, err := (ICMPv6Error{FlowLabel: 1 << 20}).Build(buf, IPv6(offending(t, r, true))); err == nil {
		t.Fatal("flow label over 20 bits accepted")
	}
}

// TestICMPErrorInPlace: the error can be built over the offending
// packet's own bytes.
func TestICMPErrorInPlace(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	for i := 0; i < 50; i++ {
		orig := offending(t, r, i%2 == 1)
		want := make([]byte, 1600)
		inPlace := append(bytes.Clone(orig), make([]byte, 100)...)
		var n1, n2 int
		var err1, err2 error
		if i%2 == 1 {
			e := ICMPv6Error{Type: 1, Src: [16]byte{1}}
			n1, err1 = e.Build(want, IPv6(orig))
			n2, err2 = e.Build(inPlace, IPv6(inPlace[:len(orig)]))
		} else {
			e := ICMPv4Error{Type: 3, Src: [4]byte{1}}
			n1, err1 = e.Build(want, IPv4(orig))
			n2, err2 = e.Build(inPlace, IPv4(inPlace[:len(orig)]))
		}
		if err1 != nil || err2 != nil || n1 != n2 || !bytes.Equal(want[:n1], inPlace[:n2]) {
			t.Fatalf("in place differs: %v %v %d %d", err1, err2, n1, n2)
		}
	}
}

func TestICMPErrorBuildFails(t *testing.T) {
	r := rand.New(rand.NewPCG(6, 6))
	orig4, orig6 := offending(t, r, false), offending(t, r, true)
	for _, c := range []struct {
		name string
		err  func() error
	}{
		{"v4 invalid", func() error { _, err := (ICMPv4Error{}).Build(make([]byte, 600), IPv4(orig4[:10])); return err }},
		{"v4 tiny MTU", func() error {
			_, err := (ICMPv4Error{MTU: 48}).Build(make([]byte, 600), IPv4(orig4))
			return err
		}},
		{"v4 short buffer", func() error { _, err := (ICMPv4Error{}).Build(make([]byte, 40), IPv4(orig4)); return err }},
		{"v6 invalid", func() error { _, err := (ICMPv6Error{}).Build(make([]byte, 1300), IPv6(orig6[:39])); return err }},
		{"v6 short buffer", func() error { _, err := (ICMPv6Error{}).Build(make([]byte, 50), IPv6(orig6)); return err }},
	} {
		if c.err() == nil {
			t.Errorf("%s: no error", c.name)
		}
	}
}

// TestEchoReplyGopacket turns random echo requests into replies and
// checks them with gopacket; and refuses what it must.
func TestEchoReplyGopacket(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 8))
	for i := 0; i < 200; i++ {
		pl := gopacket.Payload(randBytes(r, r.IntN(1400)))
		id, seq := uint16(r.Uint32()), uint16(r.Uint32())
		ip := &layers.IPv4{Version: 4, TTL: 64, TOS: uint8(r.Uint32()), Flags: layers.IPv4DontFragment, Protocol: layers.IPProtocolICMPv4,
			SrcIP: net.IP{10, 1, 0, 2}, DstIP: net.IP{10, 1, 0, 1}}
		b := serialize(t, ip, &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(ICMPv4Echo, 0), Id: id, Seq: seq}, pl)
		newID := uint16(r.Uint32())
		if err := ICMPv4EchoReplyInPlace(IPv4(b), 0, newID); err != nil {
			t.Fatal(err)
		}
		p := decode(t, b, layers.LayerTypeIPv4)
		got := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		ic := p.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
		if !got.SrcIP.Equal(ip.DstIP) || !got.DstIP.Equal(ip.SrcIP) || got.TOS != ip.TOS || got.Flags != 0 || got.Id != newID ||
			got.TTL != 64 || ic.TypeCode != layers.CreateICMPv4TypeCode(ICMPv4EchoReply, 0) || ic.Id != id || ic.Seq != seq ||
			!bytes.Equal(ic.Payload, pl) {
			t.Fatalf("reply %+v %+v", got, ic)
		}

		ip6 := &layers.IPv6{Version: 6, HopLimit: 64, TrafficClass: uint8(r.Uint32()), NextHeader: layers.IPProtocolICMPv6,
			SrcIP: net.ParseIP("fd01::2"), DstIP: net.ParseIP("fd01::1")}
		ic6 := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(ICMPv6EchoRequest, 0)}
		ic6.SetNetworkLayerForChecksum(ip6)
		b = serialize(t, ip6, ic6, &layers.ICMPv6Echo{Identifier: id, SeqNumber: seq}, pl)
		fl := r.Uint32() & 0xfffff
		if err := ICMPv6EchoReplyInPlace(IPv6(b), 200, fl); err != nil {
			t.Fatal(err)
		}
		p = decode(t, b, layers.LayerTypeIPv6)
		got6 := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
		echo := p.Layer(layers.LayerTypeICMPv6Echo).(*layers.ICMPv6Echo)
		if !got6.SrcIP.Equal(ip6.DstIP) || !got6.DstIP.Equal(ip6.SrcIP) || got6.TrafficClass != ip6.TrafficClass ||
			got6.FlowLabel != fl || got6.HopLimit != 200 ||
			p.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6).TypeCode != layers.CreateICMPv6TypeCode(ICMPv6EchoReply, 0) ||
			echo.Identifier != id || echo.SeqNumber != seq || !bytes.Equal(echo.Payload, pl) {
			t.Fatalf("reply %+v %+v", got6, echo)
		}
	}
}

func TestEchoReplyRefuses(t *testing.T) {
	fr := linuxFrames(t)
	req4, req6 := fr[21][EthernetSize:], fr[23][EthernetSize:]
	for _, c := range []struct {
		name string
		mod  func(b []byte)
	}{
		{"bad checksum", func(b []byte) { b[len(b)-1]++ }},
		{"not an echo request", func(b []byte) { IPv4(b).Payload()[0] = ICMPv4EchoReply }},
		{"fragment", func(b []byte) { b[6] |= 0x20 }},
		{"to multicast", func(b []byte) { b[16] = 224 }},
		{"to broadcast", func(b []byte) { copy(b[16:], []byte{255, 255, 255, 255}) }},
		{"options", func(b []byte) { b[0] = 0x46 }},
		{"padding", func(b []byte) { b[3]-- }},
		{"not ICMP", func(b []byte) { b[9] = ProtocolUDP }},
	} {
		b := bytes.Clone(req4)
		c.mod(b)
		want := bytes.Clone(b)
		if err := ICMPv4EchoReplyInPlace(IPv4(b), 0, 0); err == nil || !bytes.Equal(b, want) {
			t.Errorf("v4 %s: err %v, changed %v", c.name, err, !bytes.Equal(b, want))
		}
	}
	for _, c := range []struct {
		name string
		mod  func(b []byte)
	}{
		{"bad checksum", func(b []byte) { b[len(b)-1]++ }},
		{"not an echo request", func(b []byte) { b[40] = ICMPv6EchoReply }},
		{"to multicast", func(b []byte) { b[24] = 0xff }},
		{"extension header", func(b []byte) { b[6] = IPv6HopByHop }},
		{"padding", func(b []byte) { b[5]-- }},
	} {
		b := bytes.Clone(req6)
		c.mod(b)
		want := bytes.Clone(b)
		if err := ICMPv6EchoReplyInPlace(IPv6(b), 0, 0); err == nil || !bytes.Equal(b, want) {
			t.Errorf("v6 %s: err %v, changed %v", c.name, err, !bytes.Equal(b, want))
		}
	}
	if err := ICMPv6EchoReplyInPlace(IPv6(bytes.Clone(req6)), 0, 1<<20); err == nil {
		t.Error("v6 flow label over 20 bits accepted")
	}
}

// TestShouldSendICMPError4 checks each rule, on a packet that is
// otherwise eligible.
func TestShouldSendICMPError4(t *testing.T) {
	base := func(proto uint8, payload ...byte) []byte {
		p := tpkt{proto: ProtocolUDP, src: []byte{10, 1, 0, 2}, dst: []byte{10, 2, 0, 2}, ttl: 1, payload: []byte{1, 2, 3, 4}}
		b := p.build()
		b[9] = proto
		if payload != nil {
			b = append(b[:20], payload...)
			binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
		}
		return b
	}
	for _, c := range []struct {
		name      string
		b         []byte
		mod       func(b []byte)
		linkGroup bool
		want      bool
	}{
		{"udp", base(ProtocolUDP), nil, false, true},
		{"link broadcast", base(ProtocolUDP), nil, true, false},
		{"to multicast", base(ProtocolUDP), func(b []byte) { b[16] = 239 }, false, false},
		{"to limited broadcast", base(ProtocolUDP), func(b []byte) { copy(b[16:], []byte{255, 255, 255, 255}) }, false, false},
		{"first fragment", base(ProtocolUDP), func(b []byte) { b[6] = 0x20 }, false, true},
		{"later fragment", base(ProtocolUDP), func(b []byte) { b[7] = 1 }, false, false},
		{"later fragment DF", base(ProtocolUDP), func(b []byte) { b[6], b[7] = 0x40, 0x10 }, false, false},
		{"from 0/8", base(ProtocolUDP), func(b []byte) { b[12] = 0 }, false, false},
		{"from loopback", base(ProtocolUDP), func(b []byte) { b[12] = 127 }, false, false},
		{"from multicast", base(ProtocolUDP), func(b []byte) { b[12] = 224 }, false, false},
		{"from class E", base(ProtocolUDP), func(b []byte) { b[12] = 240 }, false, false},
		{"echo request", base(ProtocolICMP, ICMPv4Echo, 0, 0, 0, 0, 0, 0, 0), nil, false, true},
		{"echo reply", base(ProtocolICMP, ICMPv4EchoReply, 0, 0, 0, 0, 0, 0, 0), nil, false, true},
		{"timestamp", base(ProtocolICMP, ICMPv4Timestamp, 0), nil, false, true},
		{"address mask reply", base(ProtocolICMP, 18), nil, false, true},
		{"dest unreachable", base(ProtocolICMP, ICMPv4DestUnreachable, 3, 0, 0, 0, 0, 0, 0), nil, false, false},
		{"time exceeded", base(ProtocolICMP, ICMPv4TimeExceeded, 0), nil, false, false},
		{"redirect", base(ProtocolICMP, ICMPv4Redirect), nil, false, false},
		{"type 7", base(ProtocolICMP, 7), nil, false, false},
		{"type 19", base(ProtocolICMP, 19), nil, false, false},
		{"ICMP without type", base(ProtocolICMP, []byte{}...), nil, false, false},
		{"ICMP fragment with MF: first", base(ProtocolICMP, ICMPv4Echo, 0), func(b []byte) { b[6] = 0x20 }, false, true},
		{"truncated", base(ProtocolUDP)[:19], nil, false, false},
	} {
		b := bytes.Clone(c.b)
		if c.mod != nil {
			c.mod(b)
		}
		if got := ShouldSendICMPError4(IPv4(b), c.linkGroup); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

func TestShouldSendICMPError6(t *testing.T) {
	base := func(next uint8, rest ...byte) []byte {
		b := make([]byte, 40, 40+len(rest))
		b[0] = 0x60
		b[6], b[7] = next, 1
		copy(b[8:], net.ParseIP("fd01::2"))
		copy(b[24:], net.ParseIP("fd02::2"))
		b = append(b, rest...)
		binary.BigEndian.PutUint16(b[4:], uint16(len(rest)))
		return b
	}
	udp := base(ProtocolUDP, make([]byte, 8)...)
	frag := func(off uint16, next uint8, rest ...byte) []byte {
		h := []byte{next, 0, byte(off >> 8), byte(off), 0, 0, 0, 1}
		return base(IPv6Fragment, append(h, rest...)...)
	}
	hbh := func(next uint8, rest ...byte) []byte {
		return append([]byte{next, 0, 1, 4, 0, 0, 0, 0}, rest...)
	}
	for _, c := range []struct {
		name      string
		b         []byte
		mod       func(b []byte)
		linkGroup bool
		typ, code uint8
		rest      uint32
		want      bool
	}{
		{"udp", udp, nil, false, ICMPv6DestUnreachable, 0, 0, true},
		{"link multicast", udp, nil, true, ICMPv6DestUnreachable, 0, 0, false},
		{"link multicast, packet too big", udp, nil, true, ICMPv6PacketTooBig, 0, 1280, true},
		{"to multicast", udp, func(b []byte) { b[24] = 0xff }, false, ICMPv6TimeExceeded, 0, 0, false},
		{"to multicast, packet too big", udp, func(b []byte) { b[24] = 0xff }, false, ICMPv6PacketTooBig, 0, 1280, true},
		{"to multicast, unrecognized option 10", base(IPv6HopByHop, hbh(ProtocolUDP)...), func(b []byte) { b[24] = 0xff; b[42] = 0x80 }, false, ICMPv6ParameterProblem, ICMPv6UnrecognizedOption, 42, true},
		{"to multicast, unrecognized option 11", base(IPv6HopByHop, hbh(ProtocolUDP)...), func(b []byte) { b[24] = 0xff; b[42] = 0xc0 }, false, ICMPv6ParameterProblem, ICMPv6UnrecognizedOption, 42, false},
		{"to multicast, pointer outside", base(IPv6HopByHop, hbh(ProtocolUDP)...), func(b []byte) { b[24] = 0xff }, false, ICMPv6ParameterProblem, ICMPv6UnrecognizedOption, 4000, false},
		{"from ::", udp, func(b []byte) { clear(b[8:24]) }, false, ICMPv6DestUnreachable, 0, 0, false},
		{"from multicast", udp, func(b []byte) { b[8] = 0xff }, false, ICMPv6DestUnreachable, 0, 0, false},
		{"echo request", base(ProtocolICMPv6, ICMPv6EchoRequest, 0, 0, 0, 0, 0, 0, 0), nil, false, ICMPv6TimeExceeded, 0, 0, true},
		{"about an error", base(ProtocolICMPv6, ICMPv6DestUnreachable, 0, 0, 0, 0, 0, 0, 0), nil, false, ICMPv6TimeExceeded, 0, 0, false},
		{"about a redirect", base(ProtocolICMPv6, ICMPv6Redirect, 0, 0, 0), nil, false, ICMPv6TimeExceeded, 0, 0, false},
		{"about an error after hop-by-hop", base(IPv6HopByHop, hbh(ProtocolICMPv6, ICMPv6PacketTooBig, 0)...), nil, false, ICMPv6TimeExceeded, 0, 0, false},
		{"about an echo after hop-by-hop", base(IPv6HopByHop, hbh(ProtocolICMPv6, ICMPv6EchoReply, 0)...), nil, false, ICMPv6TimeExceeded, 0, 0, true},
		{"ICMPv6 cut short", base(ProtocolICMPv6), nil, false, ICMPv6TimeExceeded, 0, 0, false},
		{"first fragment of an error", frag(0, ProtocolICMPv6, ICMPv6TimeExceeded, 0), nil, false, ICMPv6TimeExceeded, 0, 0, false},
		{"first fragment cut short", frag(1, ProtocolICMPv6), nil, false, ICMPv6TimeExceeded, 0, 0, false},
		{"later fragment", frag(8, ProtocolICMPv6, ICMPv6TimeExceeded, 0), nil, false, ICMPv6TimeExceeded, 0, 0, true},
		{"later fragment of udp", frag(8, ProtocolUDP, 1, 2), nil, false, ICMPv6TimeExceeded, 0, 0, true},
		{"extension chain cut short", base(IPv6HopByHop, 58), nil, false, ICMPv6TimeExceeded, 0, 0, true},
		{"truncated", udp[:39], nil, false, ICMPv6DestUnreachable, 0, 0, false},
	} {
		b := bytes.Clone(c.b)
		if c.mod != nil {
			c.mod(b)
		}
		if got := ShouldSendICMPError6(IPv6(b), c.linkGroup, c.typ, c.code, c.rest); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

// TestNDPBuildersGopacket decodes the NDP builders' output with gopacket.
func TestNDPBuildersGopacket(t *testing.T) {
	buf := make([]byte, 128)
	mac := MAC{2, 0, 0, 0, 0, 7}
	target := [16]byte{0xfd, 1, 15: 7}
	src := [16]byte{0xfe, 0x80, 15: 9}
	check := func(n int, wantDst [16]byte, typ uint8) gopacket.Packet {
		t.Helper()
		p := decode(t, buf[:n], layers.LayerTypeIPv6)
		ip := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
		if ip.HopLimit != 255 || !ip.DstIP.Equal(net.IP(wantDst[:])) || ip.TrafficClass != 0 || ip.FlowLabel != 0 {
			t.Fatalf("IPv6 header %+v", ip)
		}
		if tc := p.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6).TypeCode; tc != layers.CreateICMPv6TypeCode(typ, 0) {
			t.Fatalf("type %v", tc)
		}
		if err := ValidateNDP(IPv6(buf[:n]), ICMPv6(buf[IPv6Size:n])); err != nil {
			t.Fatal(err)
		}
		return p
	}
	n, err := BuildNeighborSolicit(buf, src, mac, target, false)
	if err != nil {
		t.Fatal(err)
	}
	p := check(n, SolicitedNodeAddr(target), ICMPv6NeighborSolicit)
	ns := p.Layer(layers.LayerTypeICMPv6NeighborSolicitation).(*layers.ICMPv6NeighborSolicitation)
	if !ns.TargetAddress.Equal(net.IP(target[:])) || len(ns.Options) != 1 || ns.Options[0].Type != layers.ICMPv6OptSourceAddress ||
		!bytes.Equal(ns.Options[0].Data, mac[:]) {
		t.Fatalf("NS %+v", ns)
	}
	nsPkt := bytes.Clone(buf[:n])

	// The answer to it, and to the same NS from :: (DAD) and unicast.
	for _, c := range []struct {
		name  string
		mod   func(b []byte)
		dst   [16]byte
		flags uint8
		opt   bool
	}{
		{"multicast NS", nil, src, 0xe0, true},
		{"DAD NS", func(b []byte) {
			ip := IPv6(b)
			ip.SetSrc([16]byte{})
			// No source link-layer option from ::.
			binary.BigEndian.PutUint16(b[4:], NDPNeighborSize)
			m := ICMPv6(b[IPv6Size : IPv6Size+NDPNeighborSize])
			m.SetChecksum(0)
			m.SetChecksum(m.CalculateChecksum(ip.Src(), ip.Dst()))
		}, IPv6AllNodes, 0xa0, true},
		{"unicast NS", func(b []byte) {
			ip := IPv6(b)
			old := ip.Dst()
			ip.SetDst(target)
			ICMPv6(b[IPv6Size:]).UpdatePseudoHeaderAddr6(old, target, false)
		}, src, 0xc0, false},
	} {
		in := bytes.Clone(nsPkt)
		if c.mod != nil {
			c.mod(in)
		}
		ip := IPv6(in)
		in = in[:IPv6Size+int(ip.PayloadLength())]
		if err := ValidateNDP(IPv6(in), ICMPv6(in[IPv6Size:])); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		n, err = BuildNeighborAdvert(buf, IPv6(in), NDPNeighborSolicit(in[IPv6Size:]), mac, true)
		if err != nil {
			t.Fatal(err)
		}
		p = check(n, c.dst, ICMPv6NeighborAdvert)
		na := p.Layer(layers.LayerTypeICMPv6NeighborAdvertisement).(*layers.ICMPv6NeighborAdvertisement)
		if !bytes.Equal(buf[8:24], target[:]) || na.Flags != c.flags || !na.TargetAddress.Equal(net.IP(target[:])) ||
			(len(na.Options) == 1) != c.opt || c.opt && (na.Options[0].Type != layers.ICMPv6OptTargetAddress || !bytes.Equal(na.Options[0].Data, mac[:])) {
			t.Fatalf("%s: NA %+v", c.name, na)
		}
	}

	n, err = BuildUnsolicitedNeighborAdvert(buf, target, mac, false)
	if err != nil {
		t.Fatal(err)
	}
	p = check(n, IPv6AllNodes, ICMPv6NeighborAdvert)
	if na := p.Layer(layers.LayerTypeICMPv6NeighborAdvertisement).(*layers.ICMPv6NeighborAdvertisement); na.Flags != 0x20 || len(na.Options) != 1 {
		t.Fatalf("unsolicited NA %+v", na)
	}
	if _, err := BuildNeighborAdvert(buf, IPv6(buf[:n]), NDPNeighborSolicit(buf[IPv6Size:n]), mac, true); err != NDPErrType {
		t.Fatalf("NA answered: %v", err)
	}
	if _, err := BuildNeighborAdvert(buf, IPv6(buf[:n]), NDPNeighborSolicit(buf[IPv6Size:IPv6Size+20]), mac, true); err != NDPErrShort {
		t.Fatalf("short NS answered: %v", err)
	}
	if _, err := BuildNeighborSolicit(buf, [16]byte{}, mac, target, false); err == nil {
		t.Fatal("NS from :: built")
	}
	if _, err := BuildNeighborSolicit(buf[:71], src, mac, target, false); err == nil {
		t.Fatal("NS built into a short buffer")
	}
}

func TestBuildersAllocs(t *testing.T) {
	fr := linuxFrames(t)
	buf := make([]byte, 1600)
	orig4, orig6 := IPv4(fr[7][EthernetSize:]), IPv6(fr[15][EthernetSize:])
	echo4, echo6 := bytes.Clone(fr[21][EthernetSize:]), bytes.Clone(fr[23][EthernetSize:])
	nsIP := IPv6(fr[13][EthernetSize:])
	arp := ARP(fr[5][EthernetSize:])
	e4 := ICMPv4Error{Type: 11, Src: linuxRouter4}
	e6 := ICMPv6Error{Type: 3, Src: linuxRouter6}
	allocs := testing.AllocsPerRun(100, func() {
		if !ShouldSendICMPError4(orig4, false) || !ShouldSendICMPError6(orig6, false, 3, 0, 0) {
			panic("not eligible")
		}
		if _, err := e4.Build(buf, orig4); err != nil {
			panic(err)
		}
		if _, err := e6.Build(buf, orig6); err != nil {
			panic(err)
		}
		copy(echo4, fr[21][EthernetSize:])
		copy(echo6, fr[23][EthernetSize:])
		if ICMPv4EchoReplyInPlace(IPv4(echo4), 0, 1) != nil || ICMPv6EchoReplyInPlace(IPv6(echo6), 0, 1) != nil {
			panic("echo")
		}
		if ValidateNDP(nsIP, ICMPv6(nsIP[IPv6Size:])) != nil {
			panic("NS")
		}
		if _, err := BuildNeighborAdvert(buf, nsIP, NDPNeighborSolicit(nsIP[IPv6Size:]), linuxRouterMAC, true); err != nil {
			panic(err)
		}
		if _, err := BuildNeighborSolicit(buf, linuxHost6, linuxHostMAC, linuxRouter6, false); err != nil {
			panic(err)
		}
		if _, err := BuildARPReply(buf, arp, linuxRouterMAC); err != nil {
			panic(err)
		}
		if _, err := BuildARPRequest(buf, linuxRouterMAC, linuxRouter4, linuxHost4); err != nil {
			panic(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per run", allocs)
	}
}

func BenchmarkBuilders(b *testing.B) {
	fr := linuxFrames(b)
	buf := make([]byte, 1600)
	orig4, orig6 := IPv4(fr[9][EthernetSize:]), IPv6(fr[19][EthernetSize:])
	big4, big6 := IPv4(fr[7][EthernetSize:]), IPv6(fr[15][EthernetSize:])
	b.Run("ICMPv4Error/small", func(b *testing.B) {
		e := ICMPv4Error{Type: 11, Src: linuxRouter4}
		for b.Loop() {
			e.Build(buf, orig4)
		}
	})
	b.Run("ICMPv4Error/576", func(b *testing.B) {
		e := ICMPv4Error{Type: 11, Src: linuxRouter4}
		for b.Loop() {
			e.Build(buf, big4)
		}
	})
	b.Run("ICMPv6Error/small", func(b *testing.B) {
		e := ICMPv6Error{Type: 3, Src: linuxRouter6}
		for b.Loop() {
			e.Build(buf, orig6)
		}
	})
	b.Run("ICMPv6Error/1280", func(b *testing.B) {
		e := ICMPv6Error{Type: 3, Src: linuxRouter6}
		for b.Loop() {
			e.Build(buf, big6)
		}
	})
	b.Run("ShouldSendICMPError4", func(b *testing.B) {
		for b.Loop() {
			ShouldSendICMPError4(orig4, false)
		}
	})
	b.Run("ShouldSendICMPError6", func(b *testing.B) {
		for b.Loop() {
			ShouldSendICMPError6(orig6, false, 3, 0, 0)
		}
	})
	b.Run("ICMPv4EchoReplyInPlace", func(b *testing.B) {
		req := fr[21][EthernetSize:]
		ip := bytes.Clone(req)
		for b.Loop() {
			copy(ip, req)
			if ICMPv4EchoReplyInPlace(IPv4(ip), 0, 1) != nil {
				b.Fatal("refused")
			}
		}
	})
	b.Run("ICMPv6EchoReplyInPlace", func(b *testing.B) {
		req := fr[23][EthernetSize:]
		ip := bytes.Clone(req)
		for b.Loop() {
			copy(ip, req)
			if ICMPv6EchoReplyInPlace(IPv6(ip), 0, 1) != nil {
				b.Fatal("refused")
			}
		}
	})
	b.Run("BuildNeighborSolicit", func(b *testing.B) {
		for b.Loop() {
			BuildNeighborSolicit(buf, linuxHost6, linuxHostMAC, linuxRouter6, false)
		}
	})
	b.Run("ValidateNDP", func(b *testing.B) {
		nsIP := IPv6(fr[13][EthernetSize:])
		for b.Loop() {
			if ValidateNDP(nsIP, ICMPv6(nsIP[IPv6Size:])) != nil {
				b.Fatal("invalid")
			}
		}
	})
	b.Run("BuildNeighborAdvert", func(b *testing.B) {
		nsIP := IPv6(fr[13][EthernetSize:])
		for b.Loop() {
			BuildNeighborAdvert(buf, nsIP, NDPNeighborSolicit(nsIP[IPv6Size:]), linuxRouterMAC, true)
		}
	})
	b.Run("BuildARPReply", func(b *testing.B) {
		req := ARP(fr[5][EthernetSize:])
		for b.Loop() {
			BuildARPReply(buf, req, linuxRouterMAC)
		}
	})
}

// A router drops a packet whose TTL ran out and answers with time
// exceeded, quoting the packet as it came in.
func ExampleICMPv4Error_Build() {
	// A UDP datagram from 10.1.0.2 to 10.2.0.2 with TTL 1.
	ip := IPv4(tpkt{proto: ProtocolUDP, src: []byte{10, 1, 0, 2}, dst: []byte{10, 2, 0, 2}, ttl: 1, payload: []byte("hi")}.build())
	if ip.TTL() <= 1 && ShouldSendICMPError4(ip, false) {
		buf := make([]byte, ICMPv4ErrorMaxSize)
		e := ICMPv4Error{Type: ICMPv4TimeExceeded, Code: ICMPv4TTLExceeded, Src: [4]byte{10, 1, 0, 1}, ID: 1}
		n, err := e.Build(buf, ip)
		if err != nil {
			panic(err)
		}
		out := IPv4(buf[:n])
		m := ICMPv4(out.Payload())
		fmt.Println(n, out.SrcAddr(), "->", out.DstAddr(), "TTL", out.TTL(), "type", m.Type(),
			"checksums", out.CalculateChecksum() == out.Checksum() && m.CalculateChecksum() == m.Checksum())
	}
	// Output: 58 10.1.0.1 -> 10.1.0.2 TTL 64 type 11 checksums true
}
