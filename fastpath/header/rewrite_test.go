package header

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"
)

// tpkt is a test packet by its values; build lays it out with checksums
// computed from scratch by the naive reference (naiveSum, refChecksum),
// independently of the code under test.
type tpkt struct {
	v6       bool
	proto    uint8 // TCP, UDP, ICMP (v4) or ICMPv6 (v6)
	src, dst []byte
	sport    uint16 // ICMP: identifier
	dport    uint16 // ICMP: sequence number
	ttl      uint8
	id       uint16 // IPv4 identification
	opts     int    // IPv4 option bytes (NOPs), a multiple of 4
	noCsum   bool   // UDP checksum 0
	payload  []byte
	tcpBytes [12]byte // seq, ack, flags, window, urgent: random filler
}

func (p tpkt) clone() tpkt {
	p.src, p.dst, p.payload = bytes.Clone(p.src), bytes.Clone(p.dst), bytes.Clone(p.payload)
	return p
}

// l4Len returns the transport header length.
func (p tpkt) l4Len() int {
	if p.proto == ProtocolTCP {
		return TCPMinSize
	}
	return 8
}

// csumOff returns the offset of the transport checksum field.
func (p tpkt) csumOff() int {
	switch p.proto {
	case ProtocolTCP:
		return TCPChecksumOffset
	case ProtocolUDP:
		return UDPChecksumOffset
	}
	return 2
}

// segment lays out the transport header and payload, checksum field 0.
func (p tpkt) segment() []byte {
	seg := make([]byte, p.l4Len()+len(p.payload))
	switch p.proto {
	case ProtocolTCP:
		binary.BigEndian.PutUint16(seg[0:], p.sport)
		binary.BigEndian.PutUint16(seg[2:], p.dport)
		copy(seg[4:12], p.tcpBytes[:8])
		seg[12] = 5 << 4
		copy(seg[13:16], p.tcpBytes[8:11])
		seg[18] = p.tcpBytes[11]
	case ProtocolUDP:
		binary.BigEndian.PutUint16(seg[0:], p.sport)
		binary.BigEndian.PutUint16(seg[2:], p.dport)
		binary.BigEndian.PutUint16(seg[4:], uint16(len(seg)))
	case ProtocolICMP:
		seg[0] = ICMPv4Echo
		binary.BigEndian.PutUint16(seg[4:], p.sport)
		binary.BigEndian.PutUint16(seg[6:], p.dport)
	case ProtocolICMPv6:
		seg[0] = ICMPv6EchoRequest
		binary.BigEndian.PutUint16(seg[4:], p.sport)
		binary.BigEndian.PutUint16(seg[6:], p.dport)
	}
	copy(seg[p.l4Len():], p.payload)
	return seg
}

// l4Sum returns the reference checksum of the segment.
func (p tpkt) l4Sum(seg []byte) uint16 {
	if p.proto == ProtocolICMP {
		s := bytes.Clone(seg)
		s[2], s[3] = 0, 0
		return ^naiveSum(s, 0)
	}
	return refChecksum(p.src, p.dst, p.proto, seg, p.csumOff())
}

// build returns the IP packet with full, correct checksums.
func (p tpkt) build() []byte {
	seg := p.segment()
	c := p.l4Sum(seg)
	if p.noCsum {
		c = 0
	}
	binary.BigEndian.PutUint16(seg[p.csumOff():], c)
	return p.wrap(seg)
}

// buildPartial returns the IP packet with its TCP or UDP checksum field
// holding the pseudo-header sum, as a Linux sender leaves it.
func (p tpkt) buildPartial() []byte {
	seg := p.segment()
	binary.BigEndian.PutUint16(seg[p.csumOff():], p.pseudo(len(seg)))
	return p.wrap(seg)
}

// pseudo returns the reference pseudo-header sum.
func (p tpkt) pseudo(segLen int) uint16 {
	var ph []byte
	ph = append(append(ph, p.src...), p.dst...)
	if p.v6 {
		ph = binary.BigEndian.AppendUint32(ph, uint32(segLen))
		ph = append(ph, 0, 0, 0, p.proto)
	} else {
		ph = append(ph, 0, p.proto)
		ph = binary.BigEndian.AppendUint16(ph, uint16(segLen))
	}
	return naiveSum(ph, 0)
}

// wrap puts the IP header in front of seg.
func (p tpkt) wrap(seg []byte) []byte {
	if p.v6 {
		h := make([]byte, IPv6Size, IPv6Size+len(seg))
		h[0] = 0x60
		binary.BigEndian.PutUint16(h[4:], uint16(len(seg)))
		h[6], h[7] = p.proto, p.ttl
		copy(h[8:24], p.src)
		copy(h[24:40], p.dst)
		return append(h, seg...)
	}
	hl := IPv4MinSize + p.opts
	h := make([]byte, hl, hl+len(seg))
	h[0] = 0x40 | byte(hl/4)
	binary.BigEndian.PutUint16(h[2:], uint16(hl+len(seg)))
	binary.BigEndian.PutUint16(h[4:], p.id)
	h[8], h[9] = p.ttl, p.proto
	copy(h[12:16], p.src)
	copy(h[16:20], p.dst)
	for i := IPv4MinSize; i < hl; i++ {
		h[i] = 1 // NOP
	}
	binary.BigEndian.PutUint16(h[10:], ^naiveSum(h, 0))
	return append(h, seg...)
}

// l4Off returns the offset of the transport header in the built packet.
func (p tpkt) l4Off() int {
	if p.v6 {
		return IPv6Size
	}
	return IPv4MinSize + p.opts
}

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// randPkt returns a random packet of the given family.
func randPkt(r *rand.Rand, v6 bool) tpkt {
	p := tpkt{v6: v6, ttl: uint8(r.Uint32()), id: uint16(r.Uint32()), sport: uint16(r.Uint32()), dport: uint16(r.Uint32())}
	protos := []uint8{ProtocolTCP, ProtocolUDP, ProtocolICMP}
	n := 4
	if v6 {
		protos[2], n = ProtocolICMPv6, 16
	} else {
		p.opts = 4 * r.IntN(3)
	}
	p.proto = protos[r.IntN(len(protos))]
	p.src, p.dst = randBytes(r, n), randBytes(r, n)
	p.payload = randBytes(r, 2+r.IntN(40)) // odd lengths too
	copy(p.tcpBytes[:], randBytes(r, 12))
	p.noCsum = p.proto == ProtocolUDP && !v6 && r.IntN(6) == 0
	return p
}

// forceL4Zero sets the first payload word so that p's transport checksum
// computes to 0 (sent as 0xffff for UDP: RFC 1624's -0 case).
func forceL4Zero(p *tpkt) {
	p.payload[0], p.payload[1] = 0, 0
	seg := p.segment()
	var rest uint16
	if p.proto == ProtocolICMP {
		rest = naiveSum(seg, 0)
	} else {
		rest = naiveSum(seg, p.pseudo(len(seg)))
	}
	binary.BigEndian.PutUint16(p.payload, 0xffff-rest)
}

// forceIPZero sets the IPv4 identification so that the header checksum
// computes to 0x0000.
func forceIPZero(p *tpkt) {
	p.id = 0
	h := p.wrap(nil)[:IPv4MinSize+p.opts]
	h[10], h[11] = 0, 0
	p.id = 0xffff - naiveSum(h, 0)
}

// mutation is a rewrite under test: change sets new values in a copy of
// the packet's values, apply makes the same change on the bytes through
// the code under test.
type mutation struct {
	name   string
	ok     func(p tpkt) bool
	change func(p *tpkt, r *rand.Rand)
	apply  func(b []byte, old, new tpkt, partial bool)
}

func always(tpkt) bool { return true }

func isTCPUDP(p tpkt) bool { return p.proto == ProtocolTCP || p.proto == ProtocolUDP }

func isICMP(p tpkt) bool { return p.proto == ProtocolICMP || p.proto == ProtocolICMPv6 }

func mutations() []mutation {
	addr := func(dst bool) func(p *tpkt, r *rand.Rand) {
		return func(p *tpkt, r *rand.Rand) {
			a := randBytes(r, len(p.src))
			if r.IntN(4) == 0 {
				// A change that leaves the 16-bit sum as it is.
				a = bytes.Clone(p.src)
				if dst {
					a = bytes.Clone(p.dst)
				}
			}
			if dst {
				p.dst = a
			} else {
				p.src = a
			}
		}
	}
	applyAddr := func(dst bool) func(b []byte, old, new tpkt, partial bool) {
		return func(b []byte, old, new tpkt, partial bool) {
			o, n := old.src, new.src
			if dst {
				o, n = old.dst, new.dst
			}
			seg := b[old.l4Off():]
			if old.v6 {
				ip := IPv6(b)
				if dst {
					ip.SetDst([16]byte(n))
				} else {
					ip.SetSrc([16]byte(n))
				}
				if !UpdateL4Addr6(old.proto, seg, [16]byte(o), [16]byte(n), partial) {
					panic("UpdateL4Addr6 refused")
				}
				return
			}
			ip := IPv4(b)
			if dst {
				ip.SetDst([4]byte(n))
			} else {
				ip.SetSrc([4]byte(n))
			}
			if !UpdateL4Addr4(old.proto, seg, [4]byte(o), [4]byte(n), partial) {
				panic("UpdateL4Addr4 refused")
			}
		}
	}
	port := func(dst bool) func(p *tpkt, r *rand.Rand) {
		return func(p *tpkt, r *rand.Rand) {
			if dst {
				p.dport = uint16(r.Uint32())
			} else {
				p.sport = uint16(r.Uint32())
			}
		}
	}
	applyPort := func(dst bool) func(b []byte, old, new tpkt, partial bool) {
		return func(b []byte, old, new tpkt, partial bool) {
			seg := b[old.l4Off():]
			switch {
			case old.proto == ProtocolTCP && dst:
				TCP(seg).SetDstPort(new.dport, partial)
			case old.proto == ProtocolTCP:
				TCP(seg).SetSrcPort(new.sport, partial)
			case dst:
				UDP(seg).SetDstPort(new.dport, partial)
			default:
				UDP(seg).SetSrcPort(new.sport, partial)
			}
		}
	}
	return []mutation{
		{"ttl", always, func(p *tpkt, r *rand.Rand) { p.ttl = uint8(r.Uint32()) }, func(b []byte, _, new tpkt, _ bool) {
			if new.v6 {
				IPv6(b).SetHopLimit(new.ttl)
			} else {
				IPv4(b).SetTTL(new.ttl)
			}
		}},
		{"decttl", func(p tpkt) bool { return p.ttl > 0 }, func(p *tpkt, _ *rand.Rand) { p.ttl-- }, func(b []byte, _, new tpkt, _ bool) {
			var got uint8
			if new.v6 {
				got = IPv6(b).DecHopLimit()
			} else {
				got = IPv4(b).DecTTL()
			}
			if got != new.ttl {
				panic("DecTTL returned the wrong TTL")
			}
		}},
		{"src", always, addr(false), applyAddr(false)},
		{"dst", always, addr(true), applyAddr(true)},
		{"sport", isTCPUDP, port(false), applyPort(false)},
		{"dport", isTCPUDP, port(true), applyPort(true)},
		{"ident", isICMP, func(p *tpkt, r *rand.Rand) { p.sport = uint16(r.Uint32()) }, func(b []byte, old, new tpkt, _ bool) {
			if old.v6 {
				ICMPv6(b[old.l4Off():]).SetIdent(new.sport)
			} else {
				ICMPv4(b[old.l4Off():]).SetIdent(new.sport)
			}
		}},
	}
}

// TestRewriteMatchesRecompute checks every setter on random IPv4 and IPv6
// packets: the incrementally updated packet equals the packet built from
// scratch with the new values, checksums recomputed by the naive
// reference. Corner cases are forced often: old or new transport checksum
// computing to 0 (UDP's 0xffff), the other representation of zero in the
// old field, an IPv4 header checksum of 0, UDP without checksum, changes
// that leave the sum as it is.
func TestRewriteMatchesRecompute(t *testing.T) {
	r := rand.New(rand.NewPCG(6, 1624))
	counts := map[string]int{}
	for i := 0; i < 20000; i++ {
		p := randPkt(r, i%2 == 1)
		for _, m := range mutations() {
			if !m.ok(p) {
				continue
			}
			old := p.clone()
			q := p.clone()
			m.change(&q, r)
			switch r.IntN(5) {
			case 0: // the new checksum computes to 0
				if !q.noCsum {
					forceL4Zero(&q)
					old.payload = bytes.Clone(q.payload)
					counts["new zero"]++
				}
			case 1: // the old one does
				if !old.noCsum {
					forceL4Zero(&old)
					q.payload = bytes.Clone(old.payload)
					counts["old zero"]++
				}
			case 2:
				if !old.v6 {
					forceIPZero(&q)
					old.id = q.id
					counts["ip zero"]++
				}
			}
			b := old.build()
			// The other zero in the old field: 0xffff for TCP, ICMP
			// (both verify; UDP sends 0xffff already), where the
			// rewrite updates that field (one it does not touch keeps
			// what it holds).
			co := old.l4Off() + old.csumOff()
			touchesL4 := m.name != "ttl" && m.name != "decttl" && !(old.proto == ProtocolICMP && (m.name == "src" || m.name == "dst"))
			if touchesL4 && old.proto != ProtocolUDP && binary.BigEndian.Uint16(b[co:]) == 0 && r.IntN(2) == 0 {
				binary.BigEndian.PutUint16(b[co:], 0xffff)
				counts["old -0"]++
			}
			m.apply(b, old, q, false)
			if want := q.build(); !bytes.Equal(b, want) {
				t.Fatalf("%s (v6 %v, proto %d): incremental\n%x\nrecomputed\n%x", m.name, p.v6, p.proto, b, want)
			}
			counts[m.name]++
		}
	}
	for _, k := range []string{"new zero", "old zero", "ip zero", "old -0", "ttl", "decttl", "src", "dst", "sport", "dport", "ident"} {
		if counts[k] < 100 {
			t.Errorf("only %d cases of %s", counts[k], k)
		}
	}
}

// TestRewritePartialThenFinish checks rewrites of CHECKSUM_PARTIAL TCP
// and UDP segments: rewrite with partial set, then finish the checksum as
// ChecksumFinish does, equals the packet built from scratch with the new
// values and full checksums.
func TestRewritePartialThenFinish(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 1624))
	n := 0
	for i := 0; i < 20000; i++ {
		p := randPkt(r, i%2 == 1)
		if !isTCPUDP(p) || p.noCsum {
			continue
		}
		for _, m := range mutations() {
			if !m.ok(p) {
				continue
			}
			q := p.clone()
			m.change(&q, r)
			old := p.clone()
			if r.IntN(4) == 0 {
				forceL4Zero(&q)
				old.payload = bytes.Clone(q.payload)
			}
			b := old.buildPartial()
			m.apply(b, old, q, true)
			var done bool
			if q.v6 {
				done = FinishIPv6(IPv6(b), q.proto, IPv6Size)
			} else {
				done = FinishIPv4(IPv4(b))
			}
			if want := q.build(); !done || !bytes.Equal(b, want) {
				t.Fatalf("%s (v6 %v, proto %d): finished %v\n%x\nbuilt\n%x", m.name, q.v6, q.proto, done, b, want)
			}
			n++
		}
	}
	if n < 10000 {
		t.Fatalf("only %d cases", n)
	}
}

// TestChecksumUpdateRFC1624 checks the example of RFC 1624 section 4 and
// the -0 case eqn. 2 gets wrong.
func TestChecksumUpdateRFC1624(t *testing.T) {
	// Section 4: HC = 0xdd2f, m = 0x5555, m' = 0x3285 gives 0x0000.
	if got := ChecksumUpdate(0xdd2f, 0x5555, 0x3285); got != 0x0000 {
		t.Fatalf("RFC 1624 example: %#04x, want 0x0000", got)
	}
	// Data: one word 0x0001 and a word changing 0x0000 -> 0xfffe: the
	// sum goes 0x0001 -> 0xffff, so the checksum becomes 0x0000, never
	// 0xffff (-0).
	hc := ^naiveSum([]byte{0, 1, 0, 0}, 0)
	if got, want := ChecksumUpdate(hc, 0, 0xfffe), ^naiveSum([]byte{0, 1, 0xff, 0xfe}, 0); got != want || got != 0 {
		t.Fatalf("to zero: %#04x, recomputed %#04x", got, want)
	}
}

func TestDecTTLZero(t *testing.T) {
	p := randPkt(rand.New(rand.NewPCG(1, 1)), false)
	p.ttl = 0
	b := p.build()
	if IPv4(b).DecTTL() != 0 || !bytes.Equal(b, p.build()) {
		t.Fatal("DecTTL changed a TTL of 0")
	}
	p.v6, p.src, p.dst, p.proto = true, make([]byte, 16), make([]byte, 16), ProtocolUDP
	b = p.build()
	if IPv6(b).DecHopLimit() != 0 || !bytes.Equal(b, p.build()) {
		t.Fatal("DecHopLimit changed a hop limit of 0")
	}
}

// TestUpdateL4Refuses: protocols without a known pseudo-header checksum
// are refused, those without a pseudo-header are accepted unchanged,
// short segments are refused; nothing changes when refused.
func TestUpdateL4Refuses(t *testing.T) {
	seg := bytes.Repeat([]byte{0xaa}, 40)
	for _, c := range []struct {
		v6    bool
		proto uint8
		n     int
		want  bool
	}{
		{false, ProtocolTCP, 19, false}, {false, ProtocolUDP, 7, false}, {false, 136, 40, false},
		{false, ProtocolICMPv6, 40, false}, {false, ProtocolICMP, 40, true}, {false, ProtocolSCTP, 40, true},
		{true, ProtocolTCP, 19, false}, {true, ProtocolUDP, 7, false}, {true, ProtocolICMPv6, 7, false},
		{true, ProtocolICMP, 40, false}, {true, ProtocolGRE, 40, true},
	} {
		s := bytes.Clone(seg[:c.n])
		var got bool
		if c.v6 {
			got = UpdateL4Addr6(c.proto, s, [16]byte{1}, [16]byte{2}, false)
		} else {
			got = UpdateL4Addr4(c.proto, s, [4]byte{1}, [4]byte{2}, false)
		}
		if got != c.want || !bytes.Equal(s, seg[:c.n]) {
			t.Errorf("v6 %v proto %d len %d: %v, want %v (changed: %v)", c.v6, c.proto, c.n, got, c.want, !bytes.Equal(s, seg[:c.n]))
		}
	}
}

func TestRewriteAllocs(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	p4 := randPkt(r, false)
	p4.proto = ProtocolTCP
	p6 := randPkt(r, true)
	p6.proto = ProtocolUDP
	b4, b6 := p4.build(), p6.build()
	ip4, ip6 := IPv4(b4), IPv6(b6)
	tcp, udp := TCP(b4[p4.l4Off():]), UDP(b6[IPv6Size:])
	a4, a6 := [4]byte{10, 0, 0, 9}, [16]byte{0xfd, 15: 9}
	allocs := testing.AllocsPerRun(100, func() {
		ip4.SetTTL(9)
		ip4.DecTTL()
		old := ip4.Src()
		ip4.SetSrc(a4)
		ip4.SetDst(a4)
		UpdateL4Addr4(ProtocolTCP, tcp, old, a4, false)
		tcp.SetSrcPort(7, false)
		tcp.SetDstPort(8, true)
		ip6.SetHopLimit(9)
		ip6.DecHopLimit()
		old6 := ip6.Dst()
		ip6.SetSrc(a6)
		ip6.SetDst(a6)
		UpdateL4Addr6(ProtocolUDP, udp, old6, a6, true)
		udp.SetSrcPort(7, false)
		udp.SetDstPort(8, false)
		ICMPv4(b4[p4.l4Off():]).SetIdent(3)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per run", allocs)
	}
}

func BenchmarkRewrite(b *testing.B) {
	r := rand.New(rand.NewPCG(4, 4))
	p4 := randPkt(r, false)
	p4.proto, p4.noCsum = ProtocolUDP, false
	p6 := randPkt(r, true)
	p6.proto = ProtocolTCP
	b4, b6 := p4.build(), p6.build()
	ip4, ip6 := IPv4(b4), IPv6(b6)
	udp, tcp := UDP(b4[p4.l4Off():]), TCP(b6[IPv6Size:])
	a4, c4 := [4]byte{10, 0, 0, 9}, [4]byte{10, 0, 0, 10}
	a6, c6 := [16]byte{0xfd, 15: 9}, [16]byte{0xfd, 15: 10}
	b.Run("IPv4.SetTTL", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			ip4.SetTTL(uint8(i))
		}
	})
	b.Run("IPv4.DecTTL", func(b *testing.B) {
		for b.Loop() {
			if ip4.DecTTL() == 0 {
				ip4.SetTTL(255)
			}
		}
	})
	b.Run("IPv4.SetSrc", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			ip4.SetSrc([...][4]byte{a4, c4}[i&1])
		}
	})
	b.Run("IPv4.SetDst", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			ip4.SetDst([...][4]byte{a4, c4}[i&1])
		}
	})
	b.Run("UDP.UpdatePseudoHeaderAddr4", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			udp.UpdatePseudoHeaderAddr4(a4, c4, i&1 == 0)
		}
	})
	b.Run("UDP.SetSrcPort", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			udp.SetSrcPort(uint16(i), false)
		}
	})
	b.Run("UDP.SetDstPort", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			udp.SetDstPort(uint16(i), false)
		}
	})
	b.Run("UpdateL4Addr4", func(b *testing.B) {
		for b.Loop() {
			UpdateL4Addr4(ProtocolUDP, udp, a4, c4, false)
		}
	})
	b.Run("IPv6.SetHopLimit", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			ip6.SetHopLimit(uint8(i))
		}
	})
	b.Run("IPv6.DecHopLimit", func(b *testing.B) {
		for b.Loop() {
			if ip6.DecHopLimit() == 0 {
				ip6.SetHopLimit(255)
			}
		}
	})
	b.Run("IPv6.SetSrc", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			ip6.SetSrc([...][16]byte{a6, c6}[i&1])
		}
	})
	b.Run("IPv6.SetDst", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			ip6.SetDst([...][16]byte{a6, c6}[i&1])
		}
	})
	b.Run("TCP.UpdatePseudoHeaderAddr6", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			tcp.UpdatePseudoHeaderAddr6(a6, c6, i&1 == 0)
		}
	})
	b.Run("TCP.SetSrcPort", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			tcp.SetSrcPort(uint16(i), false)
		}
	})
	b.Run("TCP.SetDstPort", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			tcp.SetDstPort(uint16(i), false)
		}
	})
	b.Run("UpdateL4Addr6", func(b *testing.B) {
		for b.Loop() {
			UpdateL4Addr6(ProtocolTCP, tcp, a6, c6, false)
		}
	})
	b.Run("TCP.UpdatePseudoHeaderAddr4", func(b *testing.B) {
		t4 := TCP(make([]byte, TCPMinSize))
		for i := 0; b.Loop(); i++ {
			t4.UpdatePseudoHeaderAddr4(a4, c4, i&1 == 0)
		}
	})
	b.Run("UDP.UpdatePseudoHeaderAddr6", func(b *testing.B) {
		u6 := UDP([]byte{0, 1, 0, 2, 0, 8, 0xab, 0xcd})
		for i := 0; b.Loop(); i++ {
			u6.UpdatePseudoHeaderAddr6(a6, c6, i&1 == 0)
		}
	})
	b.Run("ICMPv6.UpdatePseudoHeaderAddr6", func(b *testing.B) {
		m := ICMPv6(make([]byte, 64))
		for i := 0; b.Loop(); i++ {
			m.UpdatePseudoHeaderAddr6(a6, c6, false)
		}
	})
	b.Run("ICMPv6.SetIdent", func(b *testing.B) {
		m := ICMPv6(make([]byte, 64))
		for i := 0; b.Loop(); i++ {
			m.SetIdent(uint16(i))
		}
	})
	b.Run("ICMPv4.SetIdent", func(b *testing.B) {
		m := ICMPv4(make([]byte, 64))
		for i := 0; b.Loop(); i++ {
			m.SetIdent(uint16(i))
		}
	})
}

// Source NAT of a UDP datagram that a Linux sender left CHECKSUM_PARTIAL:
// the address and port change, the header and transport checksums stay
// right, and the datagram is finished afterwards as the device would.
func ExampleUpdateL4Addr4() {
	p := tpkt{proto: ProtocolUDP, src: []byte{10, 1, 0, 2}, dst: []byte{192, 0, 2, 9}, ttl: 64, sport: 4000, dport: 53, payload: []byte("query")}
	ip := IPv4(p.buildPartial())
	udp := UDP(ip.Payload())
	// The field holds the pseudo-header sum: the segment is partial.
	partial := udp.Checksum() == ip.PseudoHeaderChecksum(ProtocolUDP, uint16(len(udp)))

	old, nat := ip.Src(), [4]byte{198, 51, 100, 1}
	ip.SetSrc(nat)
	UpdateL4Addr4(ip.Protocol(), udp, old, nat, partial)
	udp.SetSrcPort(61000, partial)
	FinishIPv4(ip)

	p.src, p.sport = nat[:], 61000
	fmt.Println(partial, bytes.Equal(ip, p.build()))
	// Output: true true
}
