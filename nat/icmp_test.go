package nat

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"github.com/xdpfwd/xdpfwd/conntrack"
)

// wrapError builds an ICMP (v4) or ICMPv6 error from src to dst quoting
// inner, checksums by the references.
func wrapError(src, dst []byte, typ, code uint8, inner []byte) []byte {
	v6 := len(src) == 16
	msg := make([]byte, 8+len(inner))
	msg[0], msg[1] = typ, code
	copy(msg[8:], inner)
	proto := uint8(conntrack.ProtoICMP)
	var pseudo uint32
	if v6 {
		proto = conntrack.ProtoICMPv6
		pseudo = refPseudo(src, dst, proto, len(msg))
	}
	binary.BigEndian.PutUint16(msg[2:], ^refSum(msg, pseudo))
	p := pkt{src: src, dst: dst, proto: 255, payload: msg}
	b := p.build()
	if v6 {
		b[6] = proto
	} else {
		b[9] = proto
		binary.BigEndian.PutUint16(b[10:], 0)
		binary.BigEndian.PutUint16(b[10:], ^refSum(b[:20], 0))
	}
	return b
}

func TestTranslateICMPErrorSNAT(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		a, b, n, r := "10.0.0.1", "192.0.2.1", "203.0.113.1", "198.51.100.1"
		icmp, unreach := uint8(conntrack.ProtoICMP), uint8(3)
		if v6 {
			a, b, n, r = "fd00::1", "2001:db8::1", "2001:db8:ff::1", "2001:db8:1::1"
			icmp, unreach = conntrack.ProtoICMPv6, 1
		}
		for _, proto := range []uint8{conntrack.ProtoTCP, conntrack.ProtoUDP, protoSCTP, icmp, 33} {
			t.Run(fmt.Sprintf("v6=%v/proto=%d", v6, proto), func(t *testing.T) {
				// The connection a:40000 -> b:80, source NATed to n:5555.
				seen := pkt{src: addr(n), dst: addr(b), proto: proto, sport: 5555, dport: 80, payload: []byte("quoted payload!!")}
				orig := pkt{src: addr(a), dst: addr(b), proto: proto, sport: 40000, dport: 80, payload: seen.payload}
				if proto == 33 {
					// DCCP is no NAT protocol in 6.18: ports untouched.
					orig.sport = seen.sport
				}
				var tuples [2]conntrack.Tuple
				tuples[0] = tupleOf(orig)
				tuples[1] = ptr(tupleOf(seen)).Inverse()
				status := conntrack.StatusSrcNAT | conntrack.StatusSrcNATDone | conntrack.StatusDstNATDone | conntrack.StatusConfirmed
				// A router on the way says the port is unreachable, to n.
				e := wrapError(addr(r), addr(n), unreach, 3, seen.build())
				off := 20
				if v6 {
					off = 40
				}
				if err := TranslateICMPError(e, tuples[0].Family, off, &tuples, status, conntrack.DirReply, Dst); err != nil {
					t.Fatal(err)
				}
				// SCTP: the kernel recomputes the CRC over what is quoted,
				// here the whole packet, so it is the original's.
				want := wrapError(addr(r), addr(a), unreach, 3, orig.build())
				if !bytes.Equal(e, want) {
					t.Fatalf("translated\n%x\nwant (built from scratch)\n%x", e, want)
				}
				if proto != 33 { // gopacket has no DCCP
					verifyGopacket(t, e, v6)
					verifyGopacket(t, e[off+8:], v6)
				}
			})
		}
	}
}

func ptr[T any](v T) *T { return &v }

func TestTranslateICMPErrorDNATAndRules(t *testing.T) {
	// A DNAT connection c:1000 -> v:80 (virtual) to s:8080; a router
	// between the NAT and s reports the packet c -> s unreachable; it
	// goes back at postrouting (source manipulation, reply direction).
	c, v, s, r := "192.0.2.9", "203.0.113.80", "10.0.0.80", "10.0.0.254"
	orig := pkt{src: addr(c), dst: addr(v), proto: conntrack.ProtoUDP, sport: 1000, dport: 80, payload: []byte("dns?")}
	seen := pkt{src: addr(c), dst: addr(s), proto: conntrack.ProtoUDP, sport: 1000, dport: 8080, payload: orig.payload}
	tuples := [2]conntrack.Tuple{tupleOf(orig), ptr(tupleOf(seen)).Inverse()}
	status := conntrack.StatusDstNAT | conntrack.StatusSrcNATDone | conntrack.StatusDstNATDone
	e := wrapError(addr(r), addr(c), 3, 1, seen.build())
	if err := TranslateICMPError(e, 4, 20, &tuples, status, conntrack.DirReply, Src); err != nil {
		t.Fatal(err)
	}
	if want := wrapError(addr(v), addr(c), 3, 1, orig.build()); !bytes.Equal(e, want) {
		t.Fatalf("translated\n%x\nwant\n%x", e, want)
	}

	// Not translated on this side: nothing changes.
	e = wrapError(addr(r), addr(c), 3, 1, seen.build())
	before := bytes.Clone(e)
	if err := TranslateICMPError(e, 4, 20, &tuples, status, conntrack.DirReply, Dst); err != nil || !bytes.Equal(e, before) {
		t.Fatalf("untranslated side: %v", err)
	}
	// A wrong checksum is dropped, even with nothing to translate.
	e[22] ^= 1
	if err := TranslateICMPError(e, 4, 20, &tuples, status, conntrack.DirReply, Dst); !errors.Is(err, ErrICMPChecksum) {
		t.Fatalf("bad checksum: %v", err)
	}
	// A redirect about a translated connection is dropped.
	e = wrapError(addr(r), addr(c), 5, 1, seen.build())
	if err := TranslateICMPError(e, 4, 20, &tuples, status, conntrack.DirReply, Src); !errors.Is(err, ErrRedirect) {
		t.Fatalf("redirect: %v", err)
	}
	// Too short for the quoted header; a quote of another family.
	e = wrapError(addr(r), addr(c), 3, 1, seen.build()[:19])
	if err := TranslateICMPError(e, 4, 20, &tuples, status, conntrack.DirReply, Src); !errors.Is(err, ErrShortICMP) {
		t.Fatalf("short: %v", err)
	}
	in := seen.build()
	in[0] = 0x65
	e = wrapError(addr(r), addr(c), 3, 1, in)
	if err := TranslateICMPError(e, 4, 20, &tuples, status, conntrack.DirReply, Src); !errors.Is(err, ErrQuoted) {
		t.Fatalf("quote of another family: %v", err)
	}
	if err := TranslateICMPError(e, 7, 20, &tuples, status, conntrack.DirReply, Src); !errors.Is(err, ErrFamily) {
		t.Fatalf("family: %v", err)
	}
}

func TestTranslateICMPErrorTruncatedQuote(t *testing.T) {
	// A quote of 8 bytes of TCP (what RFC 792 requires): the ports are
	// rewritten, the TCP checksum (not quoted) is not touched.
	seen := pkt{src: addr("203.0.113.1"), dst: addr("192.0.2.1"), proto: conntrack.ProtoTCP, sport: 5555, dport: 80}
	orig := seen
	orig.src, orig.sport = addr("10.0.0.1"), 40000
	tuples := [2]conntrack.Tuple{tupleOf(orig), ptr(tupleOf(seen)).Inverse()}
	q := seen.build()[:28]
	e := wrapError(addr("192.0.2.1"), addr("203.0.113.1"), 3, 3, q)
	if err := TranslateICMPError(e, 4, 20, &tuples, conntrack.StatusSrcNAT, conntrack.DirReply, Dst); err != nil {
		t.Fatal(err)
	}
	inner := e[28:]
	if binary.BigEndian.Uint16(inner[20:]) != 40000 || !bytes.Equal(inner[12:16], addr("10.0.0.1")) {
		t.Fatalf("inner %x", inner)
	}
	if refSum(inner[:20], 0) != 0xffff || refSum(e[20:], 0) != 0xffff || refSum(e[:20], 0) != 0xffff {
		t.Fatal("a checksum is wrong")
	}
}

func TestTranslateICMPErrorZeroAlloc(t *testing.T) {
	seen := pkt{src: addr("2001:db8:ff::1"), dst: addr("2001:db8::1"), proto: conntrack.ProtoTCP, sport: 5555, dport: 80, payload: make([]byte, 64)}
	orig := seen
	orig.src, orig.sport = addr("fd00::1"), 40000
	tuples := [2]conntrack.Tuple{tupleOf(orig), ptr(tupleOf(seen)).Inverse()}
	e := wrapError(addr("2001:db8:1::1"), addr("2001:db8:ff::1"), 1, 4, seen.build())
	back := [2]conntrack.Tuple{tuples[1].Inverse(), tuples[1]}
	if n := testing.AllocsPerRun(100, func() {
		_ = TranslateICMPError(e, 6, 40, &tuples, conntrack.StatusSrcNAT, conntrack.DirReply, Dst)
		_ = TranslateICMPError(e, 6, 40, &back, conntrack.StatusSrcNAT, conntrack.DirReply, Dst)
	}); n != 0 {
		t.Fatalf("%v allocations", n)
	}
}
