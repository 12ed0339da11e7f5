package fastpath_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/xdpfwd/xdpfwd/fastpath"
	"github.com/xdpfwd/xdpfwd/fastpath/fastpathtest"
	"github.com/xdpfwd/xdpfwd/fastpath/header"
)

// csumCase is a correct frame (gopacket computed every checksum) and how a
// Linux sender with TX offload would have left it: partial turns the
// correct frame into the one on the wire.
type csumCase struct {
	name    string
	correct []byte
	partial func(f []byte)
	// wrong turns the correct frame into one whose checksums are wrong
	// without being partial: finishing must leave it alone.
	wrong func(f []byte)
}

const payloadLen = 40 // no Ethernet padding, anywhere

var (
	ip4A, ip4B = net.IP{10, 1, 0, 1}, net.IP{10, 1, 0, 2}
	ip4C, ip4D = net.IP{192, 168, 7, 1}, net.IP{192, 168, 7, 2}
	ip6A, ip6B = net.ParseIP("fd00::a"), net.ParseIP("fd00::b")
	ip6C, ip6D = net.ParseIP("fd01::c"), net.ParseIP("fd01::d")
)

func pl(b byte) gopacket.Payload { return gopacket.Payload(bytes.Repeat([]byte{b}, payloadLen)) }

// l4 returns an IP header and a TCP or UDP header over it.
func l4(v6, tcp bool, src, dst net.IP) (gopacket.SerializableLayer, gopacket.SerializableLayer) {
	var ip gopacket.NetworkLayer
	proto := layers.IPProtocolUDP
	if tcp {
		proto = layers.IPProtocolTCP
	}
	if v6 {
		ip = &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: proto, SrcIP: src, DstIP: dst}
	} else {
		ip = &layers.IPv4{Version: 4, TTL: 64, Protocol: proto, SrcIP: src, DstIP: dst}
	}
	if tcp {
		t := &layers.TCP{SrcPort: 40000, DstPort: 80, Seq: 1, ACK: true, PSH: true, Window: 500, DataOffset: 5}
		t.SetNetworkLayerForChecksum(ip)
		return ip.(gopacket.SerializableLayer), t
	}
	u := &layers.UDP{SrcPort: 40000, DstPort: 9999}
	u.SetNetworkLayerForChecksum(ip)
	return ip.(gopacket.SerializableLayer), u
}

// outerUDP is an outer IPv4 or IPv6 header and a UDP header to port.
func outerUDP(v6 bool, port layers.UDPPort) (gopacket.SerializableLayer, *layers.UDP) {
	var ip gopacket.NetworkLayer
	if v6 {
		ip = &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolUDP, SrcIP: ip6C, DstIP: ip6D}
	} else {
		ip = &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: ip4C, DstIP: ip4D}
	}
	u := &layers.UDP{SrcPort: 51000, DstPort: port}
	u.SetNetworkLayerForChecksum(ip)
	return ip.(gopacket.SerializableLayer), u
}

func eth(t layers.EthernetType) *layers.Ethernet {
	return &layers.Ethernet{SrcMAC: fastpathtest.HW(macA), DstMAC: fastpathtest.HW(macB), EthernetType: t}
}

func ipType(v6 bool) layers.EthernetType {
	if v6 {
		return layers.EthernetTypeIPv6
	}
	return layers.EthernetTypeIPv4
}

// refPseudo is the pseudo-header sum written the obvious way.
func refPseudo(src, dst net.IP, proto uint8, n int) uint16 {
	var ph []byte
	if v4 := src.To4(); v4 != nil {
		ph = append(append(ph, v4...), dst.To4()...)
		ph = append(ph, 0, proto)
		ph = binary.BigEndian.AppendUint16(ph, uint16(n))
	} else {
		ph = append(append(ph, src.To16()...), dst.To16()...)
		ph = binary.BigEndian.AppendUint32(ph, uint32(n))
		ph = append(ph, 0, 0, 0, proto)
	}
	return refSum(ph, 0)
}

// refSum is RFC 1071 with big-endian words, the slow way.
func refSum(b []byte, s uint16) uint16 {
	sum := uint32(s)
	for i := 0; i < len(b); i += 2 {
		w := uint32(b[i]) << 8
		if i+1 < len(b) {
			w |= uint32(b[i+1])
		}
		sum += w
		sum = sum&0xffff + sum>>16
	}
	return uint16(sum)
}

// tailL4 makes the TCP or UDP segment at the end of f (payloadLen bytes of
// payload) partial over src/dst: the field gets the pseudo-header sum.
func tailL4(tcp bool, src, dst net.IP) func(f []byte) {
	return func(f []byte) {
		hl, off, proto := header.UDPSize, header.UDPChecksumOffset, uint8(header.ProtocolUDP)
		if tcp {
			hl, off, proto = header.TCPMinSize, header.TCPChecksumOffset, header.ProtocolTCP
		}
		l4 := len(f) - payloadLen - hl
		binary.BigEndian.PutUint16(f[l4+off:], refPseudo(src, dst, proto, hl+payloadLen))
	}
}

// set writes v at off.
func set(off int, v uint16) func(f []byte) {
	return func(f []byte) { binary.BigEndian.PutUint16(f[off:], v) }
}

// bump adds 1 to the 16-bit word at off.
func bump(off int) func(f []byte) {
	return func(f []byte) { binary.BigEndian.PutUint16(f[off:], binary.BigEndian.Uint16(f[off:])+1) }
}

func seq(fs ...func([]byte)) func([]byte) {
	return func(f []byte) {
		for _, fn := range fs {
			fn(f)
		}
	}
}

// tailField is the offset of the checksum field of the TCP or UDP segment
// at the end of f.
func tailField(f []byte, tcp bool) int {
	if tcp {
		return len(f) - payloadLen - header.TCPMinSize + header.TCPChecksumOffset
	}
	return len(f) - payloadLen - header.UDPSize + header.UDPChecksumOffset
}

// outerPartial makes the outer UDP checksum (outer IP header at 14 of
// length iplen) partial.
func outerPartial(v6 bool) func(f []byte) {
	return func(f []byte) {
		src, dst, l4 := net.IP(f[26:30]), net.IP(f[30:34]), 34
		if v6 {
			src, dst, l4 = net.IP(f[22:38]), net.IP(f[38:54]), 54
		}
		binary.BigEndian.PutUint16(f[l4+header.UDPChecksumOffset:], refPseudo(src, dst, header.ProtocolUDP, len(f)-l4))
	}
}

func outerField(v6 bool) int {
	if v6 {
		return 54 + header.UDPChecksumOffset
	}
	return 34 + header.UDPChecksumOffset
}

// inner returns IP and transport layers of an inner (or plain) packet and
// the addresses its pseudo-header uses.
func inner(v6, tcp bool) (gopacket.SerializableLayer, gopacket.SerializableLayer, net.IP, net.IP) {
	src, dst := ip4A, ip4B
	if v6 {
		src, dst = ip6A, ip6B
	}
	ip, l := l4(v6, tcp, src, dst)
	return ip, l, src, dst
}

func checksumCases(t testing.TB) []csumCase {
	var cs []csumCase
	// plainLike: the TCP/UDP segment at the end of f is the partial one.
	plainLike := func(name string, tcp bool, src, dst net.IP, f []byte) {
		cs = append(cs, csumCase{name + " " + l4Name(src, tcp), f, tailL4(tcp, src, dst), seq(tailL4(tcp, src, dst), bump(tailField(f, tcp)))})
	}
	for _, c := range []struct{ v6, tcp bool }{{false, false}, {true, true}, {false, true}, {true, false}} {
		ip, l, src, dst := inner(c.v6, c.tcp)
		plainLike("plain", c.tcp, src, dst, fastpathtest.Serialize(t, eth(ipType(c.v6)), ip, l, pl(1)))
		ip, l, src, dst = inner(c.v6, c.tcp)
		plainLike("802.1Q", c.tcp, src, dst, fastpathtest.Serialize(t, eth(layers.EthernetTypeDot1Q),
			&layers.Dot1Q{VLANIdentifier: 10, Priority: 3, Type: ipType(c.v6)}, ip, l, pl(2)))
		ip, l, src, dst = inner(c.v6, c.tcp)
		plainLike("802.1ad+802.1Q", c.tcp, src, dst, fastpathtest.Serialize(t, eth(layers.EthernetTypeQinQ),
			&layers.Dot1Q{VLANIdentifier: 100, Type: layers.EthernetTypeDot1Q},
			&layers.Dot1Q{VLANIdentifier: 10, Type: ipType(c.v6)}, ip, l, pl(3)))
	}
	{
		// IPv6 hop-by-hop and destination options.
		ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolIPv6HopByHop, SrcIP: ip6A, DstIP: ip6B}
		hbh := &layers.IPv6HopByHop{}
		hbh.NextHeader = layers.IPProtocolIPv6Destination
		hbh.Options = append(hbh.Options, &layers.IPv6HopByHopOption{OptionType: 1, OptionLength: 4, OptionData: []byte{0, 0, 0, 0}})
		dopts := gopacket.Payload{header.ProtocolUDP, 0, 1, 4, 0, 0, 0, 0}
		u := &layers.UDP{SrcPort: 40000, DstPort: 9999}
		u.SetNetworkLayerForChecksum(ip)
		plainLike("IPv6 hop-by-hop+dest options", false, ip6A, ip6B, fastpathtest.Serialize(t, eth(layers.EthernetTypeIPv6), ip, hbh, dopts, u, pl(5)))
	}
	{
		// IPv6 segment routing header (type 4), one segment left: the
		// pseudo-header uses Segment List[0], the final destination.
		final := net.ParseIP("fd02::99")
		ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolIPv6Routing, SrcIP: ip6A, DstIP: final}
		srh := gopacket.Payload(append(append([]byte{header.ProtocolTCP, 4, 4, 1, 1, 0, 0, 0}, final...), ip6B...))
		tc := &layers.TCP{SrcPort: 40000, DstPort: 80, Seq: 1, ACK: true, Window: 500, DataOffset: 5}
		tc.SetNetworkLayerForChecksum(ip)
		f := fastpathtest.Serialize(t, eth(layers.EthernetTypeIPv6), ip, srh, tc, pl(6))
		copy(f[38:54], ip6B) // the fixed header names the next segment
		plainLike("IPv6 segment routing header", true, ip6A, final, f)
	}
	// VXLAN over IPv4 and IPv6: the inner checksum partial, the outer
	// computed by local checksum offload (correct once the inner is
	// finished) or absent (0); and the outer one partial.
	for _, c := range []struct {
		outer6, inner6, tcp, zero bool
		port                      layers.UDPPort
	}{
		{false, false, true, false, header.UDPPortVXLAN}, {false, true, false, true, header.UDPPortVXLAN},
		{true, false, true, false, header.UDPPortVXLAN}, {true, true, false, true, header.UDPPortVXLAN},
		{false, false, false, false, header.UDPPortVXLANLinux},
	} {
		oip, ou := outerUDP(c.outer6, c.port)
		ip, l, src, dst := inner(c.inner6, c.tcp)
		f := fastpathtest.Serialize(t, eth(ipType(c.outer6)), oip, ou, &layers.VXLAN{ValidIDFlag: true, VNI: 42},
			eth(layers.EthernetTypeDot1Q), &layers.Dot1Q{VLANIdentifier: 7, Type: ipType(c.inner6)}, ip, l, pl(7))
		name := "VXLAN, outer checksum by LCO"
		if c.zero {
			name = "VXLAN, outer checksum 0"
			set(outerField(c.outer6), 0)(f)
		}
		name += fmt.Sprintf(", port %d, IPv%d outer, %s inner", c.port, map[bool]int{false: 4, true: 6}[c.outer6], l4Name(src, c.tcp))
		cs = append(cs, csumCase{name, f, tailL4(c.tcp, src, dst), seq(tailL4(c.tcp, src, dst), bump(tailField(f, c.tcp)))})
		if !c.zero {
			// The outer checksum does not verify even when finished:
			// the inner is not touched.
			cs = append(cs, csumCase{name + " (outer corrupt)", f, nil, seq(tailL4(c.tcp, src, dst), bump(outerField(c.outer6)))})
			cs = append(cs, csumCase{"VXLAN, outer partial", f, outerPartial(c.outer6), seq(outerPartial(c.outer6), bump(outerField(c.outer6)))})
		}
	}
	// GENEVE: Ethernet inside with an option (outer 0, Linux's default
	// over IPv4) and IPv4 inside (outer by LCO).
	{
		oip, ou := outerUDP(false, header.UDPPortGENEVE)
		ip, l, src, dst := inner(false, true)
		f := fastpathtest.Serialize(t, eth(layers.EthernetTypeIPv4), oip, ou,
			&layers.Geneve{Protocol: layers.EthernetType(header.EtherTypeTEB), VNI: 9,
				Options: []*layers.GeneveOption{{Class: 0x0102, Type: 0x80, Length: 8, Data: []byte{1, 2, 3, 4}}}},
			eth(layers.EthernetTypeIPv4), ip, l, pl(8))
		set(outerField(false), 0)(f)
		cs = append(cs, csumCase{"GENEVE, Ethernet inside, outer 0", f, tailL4(true, src, dst), seq(tailL4(true, src, dst), bump(tailField(f, true)))})
		oip, ou = outerUDP(true, header.UDPPortGENEVE)
		ip, l, src, dst = inner(false, false)
		f = fastpathtest.Serialize(t, eth(layers.EthernetTypeIPv6), oip, ou, &layers.Geneve{Protocol: layers.EthernetTypeIPv4, VNI: 9}, ip, l, pl(9))
		cs = append(cs, csumCase{"GENEVE, IPv4 inside, outer by LCO", f, tailL4(false, src, dst), seq(tailL4(false, src, dst), bump(outerField(true)))})
	}
	// GRE: gretap with key and sequence number (no GRE checksum); IP
	// inside with a GRE checksum by LCO; a partial GRE checksum.
	greIP := func() *layers.IPv4 {
		return &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolGRE, SrcIP: ip4C, DstIP: ip4D}
	}
	{
		ip, l, src, dst := inner(true, true)
		f := fastpathtest.Serialize(t, eth(layers.EthernetTypeIPv4), greIP(),
			&layers.GRE{KeyPresent: true, Key: 5, SeqPresent: true, Seq: 77, Protocol: layers.EthernetTypeTransparentEthernetBridging},
			eth(layers.EthernetTypeIPv6), ip, l, pl(10))
		cs = append(cs, csumCase{"gretap, key and sequence", f, tailL4(true, src, dst), seq(tailL4(true, src, dst), bump(tailField(f, true)))})
		ip, l, src, dst = inner(false, false)
		f = fastpathtest.Serialize(t, eth(layers.EthernetTypeIPv4), greIP(), &layers.GRE{ChecksumPresent: true, KeyPresent: true, Key: 1, Protocol: layers.EthernetTypeIPv4}, ip, l, pl(11))
		greSum := 14 + 20 + 4
		cs = append(cs, csumCase{"GRE, IPv4 inside, GRE checksum by LCO", f, tailL4(false, src, dst), seq(tailL4(false, src, dst), bump(greSum))})
		cs = append(cs, csumCase{"GRE, partial GRE checksum", f, set(greSum, 0), seq(set(greSum, 0), bump(tailField(f, false)), bump(greSum))})
	}
	// SCTP: the CRC32c field is 0.
	for _, v6 := range []bool{false, true} {
		var ip gopacket.SerializableLayer = &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolSCTP, SrcIP: ip4A, DstIP: ip4B}
		if v6 {
			ip = &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolSCTP, SrcIP: ip6A, DstIP: ip6B}
		}
		data := &layers.SCTPData{SCTPChunk: layers.SCTPChunk{Type: layers.SCTPChunkTypeData, Length: 16 + 40},
			BeginFragment: true, EndFragment: true, TSN: 1, Payload: bytes.Repeat([]byte{0x77}, 40)}
		f := fastpathtest.Serialize(t, eth(layers.EthernetTypeDot1Q), &layers.Dot1Q{VLANIdentifier: 20, Type: ipType(v6)}, ip,
			&layers.SCTP{SrcPort: 5000, DstPort: 6000, VerificationTag: 0xdeadbeef}, data)
		off := 18 + 20 + header.SCTPChecksumOffset
		if v6 {
			off = 18 + 40 + header.SCTPChecksumOffset
		}
		cs = append(cs, csumCase{"SCTP in 802.1Q, IPv" + map[bool]string{false: "4", true: "6"}[v6], f, seq(set(off, 0), set(off+2, 0)), seq(set(off, 0), set(off+2, 1))})
	}
	return cs
}

// l4Name names a transport over an address family: "tcp4", "udp6".
func l4Name(src net.IP, tcp bool) string {
	n := "udp"
	if tcp {
		n = "tcp"
	}
	if src.To4() != nil {
		return n + "4"
	}
	return n + "6"
}

// finishOne runs f through Parse and ChecksumFinish as a forwarded packet
// and returns how many checksums the stage finished.
func finishOne(f []byte) uint64 {
	var b fastpath.Batch
	b.Len = 1
	p := &b.Packets[0]
	p.Reset(0, f, 0)
	fastpath.ParsePacket(p)
	var c fastpath.ChecksumFinish
	c.Process(&b, 0)
	return c.Finished()
}

func TestChecksumFinishCases(t *testing.T) {
	for _, c := range checksumCases(t) {
		t.Run(c.name, func(t *testing.T) {
			// The reference verifier uses the fixed header's destination,
			// not a routing header's final one.
			if !strings.Contains(c.name, "routing") && !refVerify(c.correct) {
				t.Fatal("test bug: the reference finds a wrong checksum in the correct frame")
			}
			if c.partial != nil {
				f := bytes.Clone(c.correct)
				c.partial(f)
				if bytes.Equal(f, c.correct) {
					t.Fatal("test bug: the partial frame is the correct one")
				}
				if n := finishOne(f); n != 1 || !bytes.Equal(f, c.correct) {
					t.Fatalf("partial frame: finished %d, bytes\n%x\nwant\n%x", n, f, c.correct)
				}
			}
			f := bytes.Clone(c.correct)
			if n := finishOne(f); n != 0 || !bytes.Equal(f, c.correct) {
				t.Fatalf("correct frame changed (finished %d):\n%x\nwant\n%x", n, f, c.correct)
			}
			f = bytes.Clone(c.correct)
			c.wrong(f)
			want := bytes.Clone(f)
			if n := finishOne(f); n != 0 || !bytes.Equal(f, want) {
				t.Fatalf("wrong, not partial frame changed (finished %d):\n%x\nwant\n%x", n, f, want)
			}
		})
	}
}

// TestChecksumFinishUDPZero: a UDP/IPv4 datagram without checksum (field
// 0, as SO_NO_CHECK sends it) goes out with 0, as the kernel forwards it.
func TestChecksumFinishUDPZero(t *testing.T) {
	ip, l, _, _ := inner(false, false)
	f := fastpathtest.Serialize(t, eth(layers.EthernetTypeIPv4), ip, l, pl(12))
	set(tailField(f, false), 0)(f)
	want := bytes.Clone(f)
	if n := finishOne(f); n != 0 || !bytes.Equal(f, want) {
		t.Fatalf("UDP without checksum changed (finished %d):\n%x\nwant\n%x", n, f, want)
	}
}

// TestParseFinishAllocs: Parse and ChecksumFinish allocate nothing on any
// kind of frame they handle (tags, tunnels, SCTP, extension headers).
func TestParseFinishAllocs(t *testing.T) {
	cases := checksumCases(t)
	var b fastpath.Batch
	var frames, partials [][]byte
	for _, c := range cases {
		if c.partial == nil {
			continue
		}
		f := bytes.Clone(c.correct)
		c.partial(f)
		partials = append(partials, f)
		frames = append(frames, bytes.Clone(f))
		if len(frames) == fastpath.BatchSize {
			break
		}
	}
	b.Len = len(frames)
	var c fastpath.ChecksumFinish
	allocs := testing.AllocsPerRun(100, func() {
		for i, f := range frames {
			copy(f, partials[i])
			b.Packets[i].Reset(0, f, 0)
		}
		fastpath.Parse{}.Process(&b, 0)
		c.Process(&b, 0)
	})
	if allocs != 0 {
		t.Fatalf("Parse + ChecksumFinish: %v allocations per batch, want 0", allocs)
	}
	if got, want := c.Finished(), uint64(101*b.Len); got != want {
		t.Fatalf("finished %d checksums in 101 runs of %d partial frames, want %d", got, b.Len, want)
	}
}

// udpTrailer returns a copy of the correct frame f (IPv4 at 14, its UDP
// header at l4) with n bytes after the UDP datagram inside the IP packet:
// the IP total length grows, the UDP length does not. The UDP source port
// is chosen so that the datagram's correct checksum, over its UDP length,
// equals the pseudo-header sum over the IP length: the field looks
// partial to a finisher that takes the segment from the IP length.
func udpTrailer(t testing.TB, f []byte, l4, n int) []byte {
	g := append(bytes.Clone(f), bytes.Repeat([]byte{0xee}, n)...)
	ip := header.IPv4(g[14:])
	binary.BigEndian.PutUint16(ip[2:], ip.TotalLength()+uint16(n))
	ip.SetChecksum(0)
	ip.SetChecksum(ip.CalculateChecksum())
	src, dst := net.IP(g[26:30]), net.IP(g[30:34])
	ulen := int(binary.BigEndian.Uint16(g[l4+4:]))
	if ulen+n != len(g)-l4 {
		t.Fatalf("test bug: UDP length %d, %d bytes after it, %d in the IP packet", ulen, n, len(g)-l4)
	}
	looksPartial := refPseudo(src, dst, header.ProtocolUDP, len(g)-l4)
	for port := range 1 << 16 {
		binary.BigEndian.PutUint16(g[l4:], uint16(port))
		binary.BigEndian.PutUint16(g[l4+6:], 0)
		c := ^refSum(g[l4:l4+ulen], refPseudo(src, dst, header.ProtocolUDP, ulen))
		if c == 0 {
			c = 0xffff
		}
		if c == looksPartial {
			binary.BigEndian.PutUint16(g[l4+6:], c)
			return g
		}
	}
	t.Fatal("test bug: no source port makes the checksum look partial")
	return nil
}

// TestChecksumFinishUDPLength: a UDP datagram whose length field is not
// the length the IP header leaves it is not finished, nor is what it
// tunnels: a receiver checks the datagram over its UDP length (Linux
// trims what follows it and drops a datagram longer than its IP packet),
// so a checksum over the IP length would break a correct one.
func TestChecksumFinishUDPLength(t *testing.T) {
	byName := map[string][]byte{}
	for _, c := range checksumCases(t) {
		byName[c.name] = c.correct
	}
	plain, vxlan := byName["plain udp4"], byName["VXLAN, outer checksum by LCO, port 4789, IPv4 outer, tcp4 inner"]
	vxlanInner := byName["VXLAN, outer checksum 0, port 4789, IPv4 outer, udp6 inner"]
	if plain == nil || vxlan == nil || vxlanInner == nil {
		t.Fatal("test bug: a case is missing")
	}
	// A datagram longer than its IP packet, its field the pseudo-header
	// sum over the IP length.
	long := bytes.Clone(plain)
	binary.BigEndian.PutUint16(long[34+4:], uint16(len(long)-34+4))
	set(34+header.UDPChecksumOffset, refPseudo(ip4A, ip4B, header.ProtocolUDP, len(long)-34))(long)
	// The inner UDP/IPv6 datagram of a VXLAN packet 2 bytes shorter than
	// its IP packet, its field the pseudo-header sum over the IP length.
	short := bytes.Clone(vxlanInner)
	u := len(short) - payloadLen - header.UDPSize
	binary.BigEndian.PutUint16(short[u+4:], uint16(header.UDPSize+payloadLen-2))
	tailL4(false, ip6A, ip6B)(short)
	for _, c := range []struct {
		name    string
		f       []byte
		correct bool
	}{
		{"4 bytes after a correct datagram", udpTrailer(t, plain, 34, 4), true},
		{"3 bytes after a correct outer VXLAN datagram", udpTrailer(t, vxlan, 34, 3), true},
		{"datagram longer than its IP packet", long, false},
		{"inner datagram shorter than its IP packet", short, false},
	} {
		if c.correct && !refVerify(c.f) {
			t.Fatalf("%s: test bug: the reference finds a wrong checksum", c.name)
		}
		f := bytes.Clone(c.f)
		if n := finishOne(f); n != 0 || !bytes.Equal(f, c.f) {
			t.Errorf("%s: finished %d, frame\n%x\nwant it unchanged\n%x", c.name, n, f, c.f)
		}
	}
}
