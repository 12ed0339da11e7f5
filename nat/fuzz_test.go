package nat

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"

	"github.com/xdpfwd/xdpfwd/conntrack"
	"github.com/xdpfwd/xdpfwd/fastpath/header"
)

// sameUpToZero reports whether a and b are equal but for checksum fields
// at the offsets csums holding 0x0000 in one and 0xffff in the other (the
// two zeros of one's complement, which an update there and back may
// exchange).
func sameUpToZero(a, b []byte, csums []int) bool {
	if len(a) != len(b) {
		return false
	}
	a, b = bytes.Clone(a), bytes.Clone(b)
	for _, o := range csums {
		if o < 0 || o+2 > len(a) {
			continue
		}
		for _, x := range [][]byte{a, b} {
			if binary.BigEndian.Uint16(x[o:]) == 0xffff {
				binary.BigEndian.PutUint16(x[o:], 0)
			}
		}
	}
	return bytes.Equal(a, b)
}

// l4Csum returns the offset in the transport header of its checksum
// field, -1 for none the manipulation updates.
func l4Csum(proto uint8, l4len int) int {
	switch proto {
	case conntrack.ProtoTCP:
		if l4len >= 20 {
			return 16
		}
	case conntrack.ProtoUDP, protoUDPLite:
		return 6
	case conntrack.ProtoICMP, conntrack.ProtoICMPv6:
		return 2
	}
	return -1
}

// fixSCTP gives an SCTP header of at least 12 bytes its right CRC (the
// manipulation recomputes it, so only a right one comes back).
func fixSCTP(l4 []byte) {
	if len(l4) >= 12 {
		binary.LittleEndian.PutUint32(l4[8:], 0)
		binary.LittleEndian.PutUint32(l4[8:], crc32.Checksum(l4, crc32.MakeTable(crc32.Castagnoli)))
	}
}

// portsOf reads what a manipulation of t's protocol sets: the address
// of the side and the port or identifier.
func readSide(ip []byte, v6 bool, l4off int, proto uint8, manip Manip, t *conntrack.Tuple) {
	so, n := 12, 4
	if v6 {
		so, n = 8, 16
	}
	if manip == Dst {
		so += n
	}
	side := &t.Src
	if manip == Dst {
		side = &t.Dst
	}
	*side = [16]byte{}
	copy(side[:], ip[so:so+n])
	if l4off <= 0 || l4off > len(ip) {
		return
	}
	l4 := ip[l4off:]
	switch proto {
	case conntrack.ProtoICMP, conntrack.ProtoICMPv6:
		if len(l4) >= 6 {
			t.SrcPort = binary.BigEndian.Uint16(l4[4:])
		}
	default:
		if len(l4) >= 4 {
			if manip == Src {
				t.SrcPort = binary.BigEndian.Uint16(l4)
			} else {
				t.DstPort = binary.BigEndian.Uint16(l4[2:])
			}
		}
	}
}

func seedPackets() [][]byte {
	var out [][]byte
	for _, src := range [][]byte{addr("10.0.0.1"), addr("2001:db8::1")} {
		dst := addr("192.0.2.1")
		if len(src) == 16 {
			dst = addr("2001:db8:1::1")
		}
		for _, proto := range []uint8{conntrack.ProtoTCP, conntrack.ProtoUDP, protoUDPLite, protoSCTP, conntrack.ProtoICMP, conntrack.ProtoICMPv6} {
			out = append(out, pkt{src: src, dst: dst, proto: proto, sport: 1000, dport: 80, payload: []byte("seed payload....")}.build())
		}
	}
	return out
}

// FuzzManipPacket: random packets and targets never panic; translating
// there and back restores the bytes; valid checksums stay valid.
func FuzzManipPacket(f *testing.F) {
	for i, p := range seedPackets() {
		f.Add(p, uint8(p[0]>>4), uint8(i%2), false, uint32(0xcb007101), uint16(4242))
	}
	f.Add([]byte{0x45, 0, 0, 20}, uint8(4), uint8(0), true, uint32(1), uint16(1))
	f.Fuzz(func(t *testing.T, ip []byte, family, m uint8, partial bool, a uint32, port uint16) {
		family = 4 + 2*(family&1)
		manip := Manip(m & 1)
		v6 := family == 6
		var proto uint8
		l4off := 40
		if v6 {
			if len(ip) >= 40 {
				proto = ip[6]
			}
		} else if len(ip) >= 20 {
			proto, l4off = ip[9], int(ip[0]&0xf)*4
			if binary.BigEndian.Uint16(ip[6:])&0x1fff != 0 {
				l4off = 0
			}
		}
		if !v6 && len(ip) >= 20 && ip[0]&0xf < 5 {
			// An IHL the kernel's ip_rcv drops: the caller's transport
			// offset would overlap the IP header. Only no panic.
			var tu conntrack.Tuple
			_ = ManipPacket(ip, family, l4off, &tu, manip, partial)
			return
		}
		if proto == protoSCTP && l4off > 0 && l4off <= len(ip) && !partial {
			fixSCTP(ip[l4off:])
		}
		var target conntrack.Tuple
		target.Family, target.Proto = family, proto
		var na [16]byte
		binary.BigEndian.PutUint32(na[:], a)
		binary.BigEndian.PutUint32(na[12:], a)
		if v6 {
			target.Src, target.Dst = na, na
		} else {
			target.Src, target.Dst = [16]byte{na[0], na[1], na[2], na[3]}, [16]byte{na[0], na[1], na[2], na[3]}
		}
		target.SrcPort, target.DstPort = port, port
		before := bytes.Clone(ip)
		var back conntrack.Tuple
		back.Family, back.Proto = family, proto
		if len(ip) >= 20 && (!v6 || len(ip) >= 40) {
			readSide(ip, v6, l4off, proto, manip, &back)
		}
		err := ManipPacket(ip, family, l4off, &target, manip, partial)
		if err != nil {
			var e Error
			if !errors.As(err, &e) {
				t.Fatalf("error of type %T", err)
			}
			return
		}
		if hl := min(len(ip), int(before[0]&0xf)*4); !v6 && refSum(before[:hl], 0) == 0xffff {
			if refSum(ip[:hl], 0) != 0xffff {
				t.Fatal("IPv4 header checksum broken")
			}
		}
		if err := ManipPacket(ip, family, l4off, &back, manip, partial); err != nil {
			t.Fatalf("back: %v", err)
		}
		csums := []int{10}
		if v6 {
			csums = nil
		}
		if l4off > 0 && l4off <= len(ip) {
			if c := l4Csum(proto, len(ip)-l4off); c >= 0 {
				csums = append(csums, l4off+c)
			}
		}
		if !sameUpToZero(ip, before, csums) {
			t.Fatalf("there and back\n%x\nbecame\n%x", before, ip)
		}
	})
}

// FuzzTranslateICMPError: random errors and connections never panic;
// the translated error's checksums are valid; translating back (the
// connection seen from the other side) restores the bytes.
func FuzzTranslateICMPError(f *testing.F) {
	for _, p := range seedPackets() {
		v6 := p[0]>>4 == 6
		src, dst := addr("198.51.100.1"), addr("10.0.0.1")
		if v6 {
			src, dst = addr("2001:db8:9::1"), addr("2001:db8::1")
		}
		f.Add(wrapError(src, dst, 3, 3, p), uint32(0x0a000063), uint16(40000))
	}
	f.Fuzz(func(t *testing.T, e []byte, a uint32, port uint16) {
		if len(e) < 1 {
			return
		}
		v6 := e[0]>>4 == 6
		family, icmpOff, qMin := uint8(4), 20, 20
		if v6 {
			family, icmpOff, qMin = 6, 40, 40
		} else if len(e) >= 20 {
			icmpOff = int(e[0]&0xf) * 4
		}
		if icmpOff < qMin || len(e) < icmpOff+8+qMin {
			var tu [2]conntrack.Tuple
			_ = TranslateICMPError(e, family, icmpOff, &tu, conntrack.StatusSrcNAT, conntrack.DirReply, Dst)
			return
		}
		q := e[icmpOff+8:]
		// The quoted packet's tuple and transport offset, as the kernel
		// finds them.
		var in conntrack.Tuple
		in.Family = family
		l4off := 0
		if v6 {
			in.Proto = q[6]
			copy(in.Src[:], q[8:24])
			copy(in.Dst[:], q[24:40])
			if off, p, fo, ok := header.IPv6SkipExthdr(q); ok && fo&^7 == 0 {
				l4off, in.Proto = off, p
			}
			// The error goes back to the quoted packet's source.
			copy(e[24:40], q[8:24])
		} else {
			in.Proto = q[9]
			copy(in.Src[:4], q[12:16])
			copy(in.Dst[:4], q[16:20])
			if binary.BigEndian.Uint16(q[6:])&0x1fff == 0 {
				l4off = int(q[0]&0xf) * 4
			}
			copy(e[16:20], q[12:16])
			if hl := int(e[0]&0xf) * 4; hl >= 20 && hl <= len(e) {
				binary.BigEndian.PutUint16(e[10:], 0)
				binary.BigEndian.PutUint16(e[10:], ^refSum(e[:hl], 0))
			}
		}
		if l4off > 0 && l4off <= len(q) {
			l4 := q[l4off:]
			if in.Proto == protoSCTP {
				fixSCTP(l4)
			}
			if len(l4) >= 8 {
				if in.Proto == conntrack.ProtoICMP || in.Proto == conntrack.ProtoICMPv6 {
					in.SrcPort = binary.BigEndian.Uint16(l4[4:])
				} else {
					in.SrcPort, in.DstPort = binary.BigEndian.Uint16(l4), binary.BigEndian.Uint16(l4[2:])
				}
			}
		}
		// An error type (a query's identifier would be rewritten too,
		// as the kernel does, and not come back) and a valid ICMP
		// checksum, so that the error is translated.
		msg := e[icmpOff:]
		if !v6 && icmpQuery(msg[0]) {
			msg[0] = 3
		}
		if v6 && (msg[0] == 128 || msg[0] == 129) {
			msg[0] = 1
		}
		binary.BigEndian.PutUint16(msg[2:], 0)
		var pseudo uint32
		if v6 {
			pseudo = refPseudo(e[8:24], e[24:40], conntrack.ProtoICMPv6, len(msg))
		}
		binary.BigEndian.PutUint16(msg[2:], ^refSum(msg, pseudo))
		before := bytes.Clone(e)
		// The connection: the quoted source was source NATed from a:port.
		orig := in
		if v6 {
			binary.BigEndian.PutUint32(orig.Src[12:], a)
		} else {
			binary.BigEndian.PutUint32(orig.Src[:4], a)
		}
		orig.SrcPort = port
		fwd := [2]conntrack.Tuple{orig, in.Inverse()}
		if err := TranslateICMPError(e, family, icmpOff, &fwd, conntrack.StatusSrcNAT, conntrack.DirReply, Dst); err != nil {
			var ee Error
			if !errors.As(err, &ee) {
				t.Fatalf("error of type %T", err)
			}
			return
		}
		if v6 {
			pseudo = refPseudo(e[8:24], e[24:40], conntrack.ProtoICMPv6, len(msg))
		}
		if refSum(msg, pseudo) != 0xffff {
			t.Fatal("ICMP checksum wrong after translation")
		}
		if !v6 && refSum(e[:icmpOff], 0) != 0xffff {
			t.Fatal("IPv4 header checksum wrong after translation")
		}
		back := [2]conntrack.Tuple{in, orig.Inverse()}
		if err := TranslateICMPError(e, family, icmpOff, &back, conntrack.StatusSrcNAT, conntrack.DirReply, Dst); err != nil {
			t.Fatalf("back: %v", err)
		}
		csums := []int{icmpOff + 2}
		if !v6 {
			csums = append(csums, 10, icmpOff+8+10)
		}
		if l4off > 0 && l4off <= len(q) {
			if c := l4Csum(in.Proto, len(q)-l4off); c >= 0 {
				csums = append(csums, icmpOff+8+l4off+c)
			}
		}
		if !sameUpToZero(e, before, csums) {
			t.Fatalf("there and back\n%x\nbecame\n%x", before, e)
		}
	})
}
