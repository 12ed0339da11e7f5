package nat

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"testing"

	"github.com/gopacket/gopacket/layers"
	"github.com/xdpfwd/xdpfwd/conntrack"
	"github.com/xdpfwd/xdpfwd/fastpath/header"
)

// manipCase rewrites p to new addresses and ports and checks the result
// from scratch.
func TestManipPacketGopacket(t *testing.T) {
	payload := []byte("hello, translated world!")
	for _, v6 := range []bool{false, true} {
		src, dst, nsrc, ndst := addr("10.0.0.1"), addr("192.0.2.1"), addr("203.0.113.7"), addr("10.9.0.9")
		icmp := uint8(conntrack.ProtoICMP)
		if v6 {
			src, dst, nsrc, ndst = addr("2001:db8::1"), addr("2001:db8:1::1"), addr("2001:db8:ff::7"), addr("fd00::9")
			icmp = conntrack.ProtoICMPv6
		}
		for _, proto := range []uint8{conntrack.ProtoTCP, conntrack.ProtoUDP, protoUDPLite, protoSCTP, icmp} {
			for _, manip := range []Manip{Src, Dst} {
				for _, partial := range []bool{false, true} {
					if partial && proto != conntrack.ProtoTCP && proto != conntrack.ProtoUDP {
						continue
					}
					for _, zero := range []bool{false, true} {
						if zero && (proto != conntrack.ProtoUDP || partial) {
							continue
						}
						name := fmt.Sprintf("v6=%v/proto=%d/manip=%d/partial=%v/zero=%v", v6, proto, manip, partial, zero)
						t.Run(name, func(t *testing.T) {
							p := pkt{src: src, dst: dst, proto: proto, sport: 40000, dport: 80, payload: payload, partial: partial, zeroUDP: zero}
							b := p.build()
							target := tupleOf(p)
							if manip == Src {
								copy(target.Src[:], nsrc)
								target.SrcPort = 1234
							} else {
								copy(target.Dst[:], ndst)
								target.DstPort = 8080
							}
							if proto == icmp {
								target.SrcPort = 4321
							}
							l4off := 20
							if v6 {
								l4off = 40
							}
							if err := ManipPacket(b, target.Family, l4off, &target, manip, partial); err != nil {
								t.Fatal(err)
							}
							want := p
							if manip == Src {
								want.src, want.sport = nsrc, 1234
							} else {
								want.dst, want.dport = ndst, 8080
							}
							if proto == icmp {
								want.sport = 4321
								want.dport = p.dport
							}
							if partial {
								// The field is the pseudo-header sum over the new
								// addresses; finish it as the device would.
								seg := b[l4off:]
								ps := refSum(nil, refPseudo(want.src, want.dst, proto, len(seg)))
								off := 16
								if proto == conntrack.ProtoUDP {
									off = 6
								}
								if got := binary.BigEndian.Uint16(seg[off:]); got != ps {
									t.Fatalf("partial field %#x, pseudo-header sum %#x", got, ps)
								}
								if v6 {
									header.FinishIPv6(b, proto, l4off)
								} else {
									header.FinishIPv4(b)
								}
								want.partial = false
							}
							if exp := want.build(); !bytes.Equal(b, exp) {
								t.Fatalf("rewritten\n%x\nwant (built from scratch)\n%x", b, exp)
							}
							gp := verifyGopacket(t, b, v6)
							switch proto {
							case conntrack.ProtoTCP:
								l := gp.Layer(layers.LayerTypeTCP).(*layers.TCP)
								if uint16(l.SrcPort) != want.sport || uint16(l.DstPort) != want.dport {
									t.Fatalf("gopacket ports %d %d", l.SrcPort, l.DstPort)
								}
							case conntrack.ProtoUDP:
								l := gp.Layer(layers.LayerTypeUDP).(*layers.UDP)
								if uint16(l.SrcPort) != want.sport || uint16(l.DstPort) != want.dport || zero != (l.Checksum == 0) {
									t.Fatalf("gopacket UDP %d %d checksum %#x", l.SrcPort, l.DstPort, l.Checksum)
								}
							case protoSCTP:
								s := b[l4off:]
								c := binary.LittleEndian.Uint32(s[8:])
								binary.LittleEndian.PutUint32(s[8:], 0)
								if crc32.Checksum(s, crc32.MakeTable(crc32.Castagnoli)) != c {
									t.Fatal("SCTP CRC32c wrong")
								}
								binary.LittleEndian.PutUint32(s[8:], c)
							case protoUDPLite:
								if refSum(b[l4off:], refPseudo(want.src, want.dst, proto, len(b)-l4off)) != 0xffff {
									t.Fatal("UDP-Lite checksum wrong")
								}
							}
						})
					}
				}
			}
		}
	}
}

func TestManipPacketFragmentsAndUnknown(t *testing.T) {
	// An IPv4 fragment but the first: addresses only.
	p := pkt{src: addr("10.0.0.1"), dst: addr("192.0.2.1"), proto: conntrack.ProtoTCP, sport: 1, dport: 2, payload: []byte("0123456789abcdef"), fragOff: 185}
	b := p.build()
	target := tupleOf(p)
	target.Src = a16v4("203.0.113.1")
	target.SrcPort = 999
	if err := ManipPacket(b, 4, 20, &target, Src, false); err != nil {
		t.Fatal(err)
	}
	orig := p.build()
	if !bytes.Equal(b[20:], orig[20:]) || !bytes.Equal(b[12:16], addr("203.0.113.1")) || !bytes.Equal(b[:10], orig[:10]) {
		t.Fatal("fragment: more than the address changed")
	}
	verifyGopacket(t, b, false)
	// IPv6 without a transport header (l4off 0): addresses only.
	p6 := pkt{src: addr("2001:db8::1"), dst: addr("2001:db8::2"), proto: conntrack.ProtoUDP, sport: 1, dport: 2, payload: []byte("x")}
	b = p6.build()
	t6 := tupleOf(p6)
	t6.Dst, t6.DstPort = a16("2001:db8::99"), 7
	if err := ManipPacket(b, 6, 0, &t6, Dst, false); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b[40:], p6.build()[40:]) || !bytes.Equal(b[24:40], addr("2001:db8::99")) {
		t.Fatal("IPv6 without transport header")
	}
	// DCCP (no NAT protocol in 6.18): addresses only, the header untouched.
	pd := pkt{src: addr("10.0.0.1"), dst: addr("192.0.2.1"), proto: 33, sport: 5, dport: 6, payload: []byte("dccp")}
	b = pd.build()
	td := tupleOf(pd)
	td.Src, td.SrcPort = a16v4("203.0.113.1"), 77
	if err := ManipPacket(b, 4, 20, &td, Src, false); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b[20:], pd.build()[20:]) {
		t.Fatal("DCCP header changed")
	}
	// ICMP errors and other non-query types keep their rest of header.
	pe := pkt{src: addr("10.0.0.1"), dst: addr("192.0.2.1"), proto: conntrack.ProtoICMP, icmpType: 3, sport: 0x1111, dport: 0x2222}
	b = pe.build()
	te := tupleOf(pe)
	te.SrcPort = 9
	if err := ManipPacket(b, 4, 20, &te, Dst, false); err != nil {
		t.Fatal(err)
	}
	if binary.BigEndian.Uint16(b[24:]) != 0x1111 {
		t.Fatal("identifier of a non-query changed")
	}
	// A TCP header cut after its ports: ports only, no checksum touched.
	pt := pkt{src: addr("10.0.0.1"), dst: addr("192.0.2.1"), proto: conntrack.ProtoTCP, sport: 1, dport: 2, l4Short: 12}
	b = pt.build()
	tt := tupleOf(pt)
	tt.SrcPort = 0xabcd
	if err := ManipPacket(b, 4, 20, &tt, Src, false); err != nil {
		t.Fatal(err)
	}
	if binary.BigEndian.Uint16(b[20:]) != 0xabcd || !bytes.Equal(b[22:], pt.build()[22:]) {
		t.Fatal("short TCP")
	}
}

func TestManipPacketErrors(t *testing.T) {
	tu := tupleOf(pkt{src: addr("10.0.0.1"), dst: addr("192.0.2.1"), proto: conntrack.ProtoUDP})
	for _, c := range []struct {
		name   string
		b      []byte
		family uint8
		l4off  int
		proto  uint8
		want   error
	}{
		{"short v4", make([]byte, 19), 4, 20, conntrack.ProtoUDP, ErrShortIP},
		{"short v6", make([]byte, 39), 6, 40, conntrack.ProtoUDP, ErrShortIP},
		{"family", make([]byte, 60), 5, 20, conntrack.ProtoUDP, ErrFamily},
		{"short udp", pkt{src: addr("10.0.0.1"), dst: addr("192.0.2.1"), proto: conntrack.ProtoUDP, l4Short: 7}.build(), 4, 20, conntrack.ProtoUDP, ErrShortL4},
		{"short tcp", pkt{src: addr("10.0.0.1"), dst: addr("192.0.2.1"), proto: conntrack.ProtoTCP, l4Short: 7}.build(), 4, 20, conntrack.ProtoTCP, ErrShortL4},
		{"l4 past end", pkt{src: addr("10.0.0.1"), dst: addr("192.0.2.1"), proto: conntrack.ProtoUDP}.build(), 4, 100, conntrack.ProtoUDP, ErrShortL4},
		{"unknown past end", pkt{src: addr("10.0.0.1"), dst: addr("192.0.2.1"), proto: 50}.build(), 4, 100, 50, nil},
	} {
		tu.Proto = c.proto
		if c.b[0] == 0 && c.family == 4 {
			c.b[0] = 0x45
		}
		if err := ManipPacket(c.b, c.family, c.l4off, &tu, Src, false); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	if ErrShortL4.Error() == "" || Error(200).Error() == "" {
		t.Fatal("error text")
	}
}

func TestManipPacketICMPAllZeroKernelCorner(t *testing.T) {
	// An echo reply whose identifier becomes 0 with sequence 0 and no
	// data is all zeros: the kernel's incremental update writes 0 there,
	// and so does ManipPacket.
	p := pkt{src: addr("10.0.0.1"), dst: addr("192.0.2.1"), proto: conntrack.ProtoICMP, icmpType: 0, sport: 5}
	b := p.build()
	b[20] = 0 // type echo reply
	binary.BigEndian.PutUint16(b[22:], 0)
	binary.BigEndian.PutUint16(b[22:], ^refSum(b[20:], 0))
	tu := tupleOf(p)
	tu.SrcPort = 0
	if err := ManipPacket(b, 4, 20, &tu, Src, false); err != nil {
		t.Fatal(err)
	}
	if binary.BigEndian.Uint16(b[22:]) != 0 {
		t.Fatalf("checksum %#x, the kernel's 0", binary.BigEndian.Uint16(b[22:]))
	}
}

func TestManipPacketZeroAlloc(t *testing.T) {
	p := pkt{src: addr("2001:db8::1"), dst: addr("2001:db8:1::1"), proto: conntrack.ProtoTCP, sport: 1, dport: 2, payload: make([]byte, 100)}
	b := p.build()
	tu := tupleOf(p)
	tu.Src = a16("2001:db8::5")
	s := pkt{src: addr("10.0.0.1"), dst: addr("192.0.2.1"), proto: protoSCTP, sport: 1, dport: 2, payload: make([]byte, 64)}.build()
	ts := tupleOf(pkt{src: addr("10.0.0.1"), dst: addr("192.0.2.1"), proto: protoSCTP})
	if n := testing.AllocsPerRun(100, func() {
		_ = ManipPacket(b, 6, 40, &tu, Src, false)
		_ = ManipPacket(s, 4, 20, &ts, Dst, false)
		_ = ManipPacket(s[:10], 4, 20, &ts, Dst, false)
	}); n != 0 {
		t.Fatalf("%v allocations", n)
	}
}
