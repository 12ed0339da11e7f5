package header

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// naiveSum is RFC 1071 written the slow, obvious way: big-endian 16-bit
// words, zero-padded, folded.
func naiveSum(b []byte, initial uint16) uint16 {
	s := uint32(initial)
	for i := 0; i < len(b); i += 2 {
		w := uint32(b[i]) << 8
		if i+1 < len(b) {
			w |= uint32(b[i+1])
		}
		s += w
		s = (s & 0xffff) + s>>16
	}
	return uint16(s)
}

func TestChecksumMatchesNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 2000)
	for i := range buf {
		buf[i] = byte(r.Uint32())
	}
	for n := 0; n <= 200; n++ {
		for _, off := range []int{0, 1, 3} {
			b := buf[off : off+n]
			init := uint16(r.Uint32())
			if got, want := Checksum(b, init), naiveSum(b, init); got != want {
				t.Fatalf("Checksum(len %d, off %d, init %#x) = %#x, want %#x", n, off, init, got, want)
			}
		}
	}
	allOnes := bytes.Repeat([]byte{0xff}, 1500)
	if got, want := Checksum(allOnes, 0xffff), naiveSum(allOnes, 0xffff); got != want {
		t.Fatalf("all ones: got %#x, want %#x", got, want)
	}
}

func FuzzChecksum(f *testing.F) {
	f.Add([]byte{1, 2, 3}, uint16(0))
	f.Add(bytes.Repeat([]byte{0xff}, 67), uint16(0xffff))
	f.Fuzz(func(t *testing.T, b []byte, init uint16) {
		if got, want := Checksum(b, init), naiveSum(b, init); got != want {
			t.Fatalf("Checksum = %#x, want %#x", got, want)
		}
	})
}

func TestIPv4Header(t *testing.T) {
	frame := udp4Frame(t, 30)
	ip := IPv4(frame[EthernetSize:])
	if !ip.IsValid(len(ip)) {
		t.Fatal("valid header reported invalid")
	}
	if ip.SrcAddr() != netip.MustParseAddr("10.0.0.1") || ip.DstAddr() != netip.MustParseAddr("10.0.0.2") {
		t.Fatalf("addresses %v -> %v", ip.SrcAddr(), ip.DstAddr())
	}
	if ip.Protocol() != ProtocolUDP || ip.HeaderLength() != 20 || int(ip.TotalLength()) != len(ip) {
		t.Fatalf("proto %d hlen %d tlen %d", ip.Protocol(), ip.HeaderLength(), ip.TotalLength())
	}
	if ip.CalculateChecksum() != ip.Checksum() {
		t.Fatalf("CalculateChecksum %#x, header has %#x", ip.CalculateChecksum(), ip.Checksum())
	}
	if ip.IsValid(len(ip) - 1) {
		t.Fatal("header longer than the packet reported valid")
	}
	u := UDP(ip.Payload())
	if u.SrcPort() != 1000 || u.DstPort() != 2000 || int(u.Length()) != len(u) {
		t.Fatalf("udp %d -> %d len %d", u.SrcPort(), u.DstPort(), u.Length())
	}
	eth := Ethernet(frame)
	if eth.EtherType() != EtherTypeIPv4 || eth.Src() != (MAC{2, 0, 0, 0, 0, 1}) || eth.Dst().IsMulticast() {
		t.Fatalf("ethernet %v -> %v type %#x", eth.Src(), eth.Dst(), eth.EtherType())
	}
	if !BroadcastMAC.IsBroadcast() || !BroadcastMAC.IsMulticast() || !(MAC{}).IsZero() || (MAC{1}).IsBroadcast() {
		t.Fatal("MAC predicates")
	}
	if s := (MAC{0xde, 0xad, 0, 1, 2, 0xff}).String(); s != "de:ad:00:01:02:ff" {
		t.Fatalf("MAC.String = %q", s)
	}
}

var (
	macA = net.HardwareAddr{2, 0, 0, 0, 0, 1}
	macB = net.HardwareAddr{2, 0, 0, 0, 0, 2}
)

func serialize(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true, FixLengths: true}, ls...); err != nil {
		t.Fatalf("serialize: %v", err)
	}
	return bytes.Clone(buf.Bytes())
}

func udp4Frame(t testing.TB, payload int) []byte {
	eth := &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.IP{10, 0, 0, 1}, DstIP: net.IP{10, 0, 0, 2}}
	udp := &layers.UDP{SrcPort: 1000, DstPort: 2000}
	udp.SetNetworkLayerForChecksum(ip)
	return serialize(t, eth, ip, udp, gopacket.Payload(bytes.Repeat([]byte{0xab}, payload)))
}

type l4Case struct {
	name  string
	frame []byte
	l4Off int  // from the frame start
	csum  int  // checksum field offset in the L4 header
	v6    bool // IPv6
	proto uint8
}

func finishCases(t testing.TB) []l4Case {
	ip4 := func(proto layers.IPProtocol) *layers.IPv4 {
		return &layers.IPv4{Version: 4, TTL: 64, Protocol: proto, SrcIP: net.IP{192, 168, 1, 10}, DstIP: net.IP{192, 168, 2, 20}}
	}
	ip6 := func(proto layers.IPProtocol) *layers.IPv6 {
		return &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: proto, SrcIP: net.ParseIP("fd00::1"), DstIP: net.ParseIP("fd00:1::2")}
	}
	eth4 := &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeIPv4}
	eth6 := &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeIPv6}
	var cases []l4Case
	for _, n := range []int{0, 1, 18, 1400} {
		pl := gopacket.Payload(bytes.Repeat([]byte{byte(n)}, n))
		{
			ip, u := ip4(layers.IPProtocolUDP), &layers.UDP{SrcPort: 53, DstPort: 4000}
			u.SetNetworkLayerForChecksum(ip)
			cases = append(cases, l4Case{"udp4", serialize(t, eth4, ip, u, pl), 34, UDPChecksumOffset, false, ProtocolUDP})
		}
		{
			ip, tc := ip4(layers.IPProtocolTCP), &layers.TCP{SrcPort: 80, DstPort: 5000, Seq: 7, ACK: true, Window: 100, DataOffset: 5}
			tc.SetNetworkLayerForChecksum(ip)
			cases = append(cases, l4Case{"tcp4", serialize(t, eth4, ip, tc, pl), 34, TCPChecksumOffset, false, ProtocolTCP})
		}
		{
			ip, u := ip6(layers.IPProtocolUDP), &layers.UDP{SrcPort: 53, DstPort: 4000}
			u.SetNetworkLayerForChecksum(ip)
			cases = append(cases, l4Case{"udp6", serialize(t, eth6, ip, u, pl), 54, UDPChecksumOffset, true, ProtocolUDP})
		}
		{
			ip, tc := ip6(layers.IPProtocolTCP), &layers.TCP{SrcPort: 80, DstPort: 5000, Seq: 7, SYN: true, Window: 100, DataOffset: 5}
			tc.SetNetworkLayerForChecksum(ip)
			cases = append(cases, l4Case{"tcp6", serialize(t, eth6, ip, tc, pl), 54, TCPChecksumOffset, true, ProtocolTCP})
		}
	}
	return cases
}

// partialSum computes the pseudo-header-only value as Linux leaves it
// (~csum_tcpudp_magic(...)), independently of the package's helpers.
func partialSum(c l4Case) uint16 {
	f := c.frame
	// The IP header's length, not the frame's: gopacket pads short frames.
	segLen := int(binary.BigEndian.Uint16(f[EthernetSize+2:])) - (c.l4Off - EthernetSize)
	if c.v6 {
		segLen = int(binary.BigEndian.Uint16(f[EthernetSize+4:])) - (c.l4Off - EthernetSize - IPv6Size)
	}
	return partialSumLen(c, segLen)
}

// partialSumLen is partialSum for a segment of segLen bytes.
func partialSumLen(c l4Case, segLen int) uint16 {
	f := c.frame
	var ph []byte
	if c.v6 {
		ph = append(ph, f[EthernetSize+8:EthernetSize+40]...)
		ph = binary.BigEndian.AppendUint32(ph, uint32(segLen))
		ph = append(ph, 0, 0, 0, c.proto)
	} else {
		ph = append(ph, f[EthernetSize+12:EthernetSize+20]...)
		ph = append(ph, 0, c.proto)
		ph = binary.BigEndian.AppendUint16(ph, uint16(segLen))
	}
	return naiveSum(ph, 0)
}

func TestPseudoHeaderInPlace(t *testing.T) {
	for _, c := range finishCases(t) {
		if c.v6 {
			ip := IPv6(c.frame[EthernetSize:])
			if a, b := ip.PseudoHeaderChecksum(c.proto, 1234), PseudoHeaderChecksum6(c.proto, ip.Src(), ip.Dst(), 1234); a != b || a != partialSumLen(c, 1234) {
				t.Fatalf("%s: in place %#x, from arrays %#x", c.name, a, b)
			}
			continue
		}
		ip := IPv4(c.frame[EthernetSize:])
		if a, b := ip.PseudoHeaderChecksum(c.proto, 1234), PseudoHeaderChecksum4(c.proto, ip.Src(), ip.Dst(), 1234); a != b || a != partialSumLen(c, 1234) {
			t.Fatalf("%s: in place %#x, from arrays %#x", c.name, a, b)
		}
	}
}

func finish(c l4Case, frame []byte) bool {
	if c.v6 {
		return FinishIPv6(IPv6(frame[EthernetSize:]), c.proto, c.l4Off-EthernetSize)
	}
	return FinishIPv4(IPv4(frame[EthernetSize:]))
}

func TestFinishChecksum(t *testing.T) {
	for _, c := range finishCases(t) {
		t.Run(c.name, func(t *testing.T) {
			off := c.l4Off + c.csum
			// Partial, as a veth with TX offload sends it: finished to
			// exactly gopacket's bytes.
			partial := bytes.Clone(c.frame)
			binary.BigEndian.PutUint16(partial[off:], partialSum(c))
			if !finish(c, partial) {
				t.Fatalf("partial checksum %#x not finished", partialSum(c))
			}
			if !bytes.Equal(partial, c.frame) {
				t.Fatalf("finished checksum %#x, gopacket computed %#x",
					binary.BigEndian.Uint16(partial[off:]), binary.BigEndian.Uint16(c.frame[off:]))
			}
			// Correct: left as it is.
			correct := bytes.Clone(c.frame)
			finish(c, correct)
			if !bytes.Equal(correct, c.frame) {
				t.Fatal("a correct frame was changed")
			}
			// Wrong but not partial: left as it is, for the receiver to drop.
			wrong := bytes.Clone(c.frame)
			binary.BigEndian.PutUint16(wrong[off:], partialSum(c)+1)
			want := bytes.Clone(wrong)
			if finish(c, wrong) || !bytes.Equal(wrong, want) {
				t.Fatal("a wrong, non-partial checksum was changed")
			}
		})
	}
}

func TestFinishSkipsFragments(t *testing.T) {
	c := finishCases(t)[0]
	frame := bytes.Clone(c.frame)
	binary.BigEndian.PutUint16(frame[c.l4Off+c.csum:], partialSum(c))
	ip := IPv4(frame[EthernetSize:])
	binary.BigEndian.PutUint16(ip[6:], 0x2000) // MF
	want := bytes.Clone(frame)
	if FinishIPv4(ip) || !bytes.Equal(frame, want) {
		t.Fatal("first fragment (MF) was finished")
	}
	binary.BigEndian.PutUint16(ip[6:], 0x0001) // offset 8
	if FinishIPv4(ip) {
		t.Fatal("non-first fragment was finished")
	}
}

// TestFinishUDPZero checks that a UDP checksum that computes to 0 goes out
// as 0xffff: the payload is chosen to make the segment sum 0xffff.
func TestFinishUDPZero(t *testing.T) {
	c := finishCases(t)[0] // udp4, empty payload
	frame := append(bytes.Clone(c.frame), 0, 0)
	ip := IPv4(frame[EthernetSize:])
	binary.BigEndian.PutUint16(ip[2:], uint16(len(ip)))
	u := UDP(ip[IPv4MinSize:])
	binary.BigEndian.PutUint16(u[4:], uint16(len(u)))
	c.frame = frame
	ps := partialSum(c)
	u.SetChecksum(0)
	s := naiveSum(u, ps)
	// Choose the last word w so that s + w = 0xffff.
	binary.BigEndian.PutUint16(u[8:], 0xffff-s)
	u.SetChecksum(ps)
	if !FinishIPv4(ip) {
		t.Fatal("not finished")
	}
	if u.Checksum() != 0xffff {
		t.Fatalf("checksum %#x, want 0xffff", u.Checksum())
	}
}

// TestFinishUDPLength: FinishIPv4 and FinishIPv6 leave alone a UDP
// datagram whose length field is not the length its IP packet leaves it,
// even with the pseudo-header sum over the IP length in its field: a
// receiver checks the datagram over its UDP length (Linux trims what
// follows it, and drops a datagram longer than its IP packet), so a
// checksum over the IP length could break a correct one.
func TestFinishUDPLength(t *testing.T) {
	for _, c := range finishCases(t) {
		if c.proto != ProtocolUDP {
			continue
		}
		end := EthernetSize + int(binary.BigEndian.Uint16(c.frame[EthernetSize+2:]))
		if c.v6 {
			end = EthernetSize + IPv6Size + int(binary.BigEndian.Uint16(c.frame[EthernetSize+4:]))
		}
		ulen := int(binary.BigEndian.Uint16(c.frame[c.l4Off+4:]))
		// Two bytes after the datagram; then a datagram 2 bytes longer
		// than its IP packet.
		trailer := append(bytes.Clone(c.frame[:end]), 0xee, 0xee)
		if c.v6 {
			binary.BigEndian.PutUint16(trailer[EthernetSize+4:], uint16(end+2-EthernetSize-IPv6Size))
		} else {
			ip := IPv4(trailer[EthernetSize:])
			binary.BigEndian.PutUint16(ip[2:], uint16(end+2-EthernetSize))
			ip.SetChecksum(ip.CalculateChecksum())
		}
		long := bytes.Clone(c.frame[:end])
		binary.BigEndian.PutUint16(long[c.l4Off+4:], uint16(ulen+2))
		for _, f := range []struct {
			name  string
			frame []byte
		}{{"2 bytes after the datagram", trailer}, {"datagram 2 bytes longer than its IP packet", long}} {
			c := c
			c.frame = f.frame
			binary.BigEndian.PutUint16(f.frame[c.l4Off+c.csum:], partialSumLen(c, len(f.frame)-c.l4Off))
			want := bytes.Clone(f.frame)
			if finish(c, f.frame) || !bytes.Equal(f.frame, want) {
				t.Errorf("%s, %d-byte payload: %s: finished, checksum %#x", c.name, ulen-UDPSize, f.name, binary.BigEndian.Uint16(f.frame[c.l4Off+c.csum:]))
			}
		}
	}
}

// refChecksum computes the checksum the transport segment seg (protocol
// proto, checksum field at off) of an IP packet with the given pseudo-
// header addresses should carry, independently of the package: field as
// zero, naiveSum over pseudo-header and segment, complemented; a UDP
// result of 0 is sent as 0xffff.
func refChecksum(src, dst []byte, proto uint8, seg []byte, off int) uint16 {
	var ph []byte
	ph = append(append(ph, src...), dst...)
	if len(src) == 4 {
		ph = append(ph, 0, proto)
		ph = binary.BigEndian.AppendUint16(ph, uint16(len(seg)))
	} else {
		ph = binary.BigEndian.AppendUint32(ph, uint32(len(seg)))
		ph = append(ph, 0, 0, 0, proto)
	}
	s := bytes.Clone(seg)
	s[off], s[off+1] = 0, 0
	c := ^naiveSum(s, naiveSum(ph, 0))
	if c == 0 && proto == ProtocolUDP {
		c = 0xffff
	}
	return c
}

// FuzzFinish feeds FinishIPv4 and FinishIPv6 arbitrary packets and checks,
// against refChecksum: a packet is changed only when finishing reports
// it, and then only in its checksum field, which then holds the correct
// checksum; a packet whose checksum is already correct is never changed.
func FuzzFinish(f *testing.F) {
	for _, c := range finishCases(f) {
		f.Add(c.frame[EthernetSize:], c.v6, uint8(c.l4Off-EthernetSize), c.proto == ProtocolTCP)
		partial := bytes.Clone(c.frame)
		binary.BigEndian.PutUint16(partial[c.l4Off+c.csum:], partialSum(c))
		f.Add(partial[EthernetSize:], c.v6, uint8(c.l4Off-EthernetSize), c.proto == ProtocolTCP)
	}
	f.Fuzz(func(t *testing.T, pkt []byte, v6 bool, l4Off uint8, tcp bool) {
		// testing.F forbids changing the input: finish a copy.
		pkt = bytes.Clone(pkt)
		proto, field := uint8(ProtocolUDP), UDPChecksumOffset
		if tcp {
			proto, field = ProtocolTCP, TCPChecksumOffset
		}
		// The segment Finish* works on, and the pseudo-header addresses,
		// as the RFCs define them (nil if Finish* must refuse).
		var seg, src, dst []byte
		finish := func(p []byte) bool { return FinishIPv6(IPv6(p), proto, int(l4Off)) }
		if v6 {
			if len(pkt) >= IPv6Size && pkt[0]>>4 == 6 {
				end := IPv6Size + int(binary.BigEndian.Uint16(pkt[4:]))
				if end <= len(pkt) && int(l4Off) >= IPv6Size && int(l4Off) <= end {
					seg, src, dst = pkt[l4Off:end], pkt[8:24], pkt[24:40]
				}
			}
		} else {
			finish = func(p []byte) bool { return FinishIPv4(IPv4(p)) }
			if len(pkt) >= IPv4MinSize && pkt[0]>>4 == 4 {
				hl, tl := int(pkt[0]&0xf)*4, int(binary.BigEndian.Uint16(pkt[2:]))
				frag := binary.BigEndian.Uint16(pkt[6:])&0x3fff != 0
				if hl >= IPv4MinSize && hl <= tl && tl <= len(pkt) && !frag {
					seg, src, dst = pkt[hl:tl], pkt[12:16], pkt[16:20]
					proto = pkt[9]
					switch proto {
					case ProtocolTCP:
						field = TCPChecksumOffset
					case ProtocolUDP:
						field = UDPChecksumOffset
					default:
						seg = nil
					}
				}
			}
		}
		minLen := UDPSize
		if proto == ProtocolTCP {
			minLen = TCPMinSize
		}
		if len(seg) < minLen || proto == ProtocolUDP && int(binary.BigEndian.Uint16(seg[4:])) != len(seg) {
			seg = nil // too short, or a UDP length that is not the IP one's
		}

		before := bytes.Clone(pkt)
		done := finish(pkt)
		if !done {
			if !bytes.Equal(pkt, before) {
				t.Fatalf("finishing reported nothing done but changed the packet:\nbefore %x\nafter  %x", before, pkt)
			}
		} else {
			if seg == nil {
				t.Fatalf("finished a packet it must refuse (v6 %v, l4 %d, proto %d): %x", v6, l4Off, proto, before)
			}
			fo := int(before[0]&0xf)*4 + field
			if v6 {
				fo = int(l4Off) + field
			}
			want := refChecksum(src, dst, proto, seg, field)
			if got := binary.BigEndian.Uint16(pkt[fo:]); got != want {
				t.Fatalf("finished checksum %#x, reference %#x; before %x", got, want, before)
			}
			after := bytes.Clone(pkt)
			after[fo], after[fo+1] = before[fo], before[fo+1]
			if !bytes.Equal(after, before) {
				t.Fatalf("finishing changed more than the checksum field:\nbefore %x\nafter  %x", before, pkt)
			}
		}
		if seg != nil {
			// The same packet with its correct checksum is left as is.
			fo := int(pkt[0]&0xf) * 4
			if v6 {
				fo = int(l4Off)
			}
			correct := bytes.Clone(before)
			binary.BigEndian.PutUint16(correct[fo+field:], refChecksum(src, dst, proto, seg, field))
			c2 := bytes.Clone(correct)
			finish(c2)
			if !bytes.Equal(c2, correct) {
				t.Fatalf("a correct checksum was changed:\nbefore %x\nafter  %x", correct, c2)
			}
		}
	})
}

func BenchmarkChecksum(b *testing.B) {
	for _, n := range []int{64, 1500} {
		buf := make([]byte, n)
		b.Run(itoa(n), func(b *testing.B) {
			b.SetBytes(int64(n))
			for b.Loop() {
				Checksum(buf, 0)
			}
		})
	}
}

func BenchmarkChecksumFinish(b *testing.B) {
	for _, n := range []int{64, 1500} {
		// Ethernet+IPv4+UDP = 42 bytes of headers.
		frame := udp4Frame(b, n-42)
		c := l4Case{frame: frame, l4Off: 34, csum: UDPChecksumOffset, proto: ProtocolUDP}
		ps := partialSum(c)
		ip := IPv4(frame[EthernetSize:])
		u := UDP(ip.Payload())
		b.Run(itoa(n), func(b *testing.B) {
			b.SetBytes(int64(n))
			for b.Loop() {
				u.SetChecksum(ps)
				if !FinishIPv4(ip) {
					b.Fatal("not finished")
				}
			}
		})
	}
}

func itoa(n int) string {
	if n == 64 {
		return "64B"
	}
	return "1500B"
}
