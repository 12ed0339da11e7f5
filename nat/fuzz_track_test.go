package nat

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/xdpfwd/xdpfwd/conntrack"
	"github.com/xdpfwd/xdpfwd/fastpath"
	"github.com/xdpfwd/xdpfwd/fastpath/fastpathtest"
	"github.com/xdpfwd/xdpfwd/fastpath/header"
)

// The kinds of a transport checksum, as NAT must keep them.
const (
	sumNone    = iota // no transport checksum to check (none, a fragment)
	sumFull           // right, computed over the segment
	sumPartial        // the pseudo-header sum a device finishes
	sumZero           // UDP without a checksum
	sumBad            // wrong
)

// pktSums is what a packet's checksums are, computed from scratch.
type pktSums struct {
	ip    bool // the IPv4 header's is right (true for IPv6)
	l4    int  // the transport checksum's kind
	inner bool // an ICMP error's quoted IPv4 header's is right (true if none)
}

// checksums computes p's checksums from scratch, with the offsets Parse
// gave it (NAT changes no length).
func checksums(p *fastpath.Packet) pktSums {
	s := pktSums{ip: true, inner: true}
	ip := p.Data[p.L3Off:p.L3End]
	v6 := ip[0]>>4 == 6
	if !v6 {
		hl := int(ip[0]&0xf) * 4
		s.ip = refSum(ip[:hl], 0) == 0xffff
	}
	if p.Fragment || p.L4Off == 0 {
		return s
	}
	l4off := int(p.L4Off - p.L3Off)
	seg := ip[l4off:]
	src, dst := ip[12:16], ip[16:20]
	fam := uint8(4)
	if v6 {
		src, dst, fam = ip[8:24], ip[24:40], 6
	}
	pseudo := refPseudo(src, dst, p.L4Proto, len(seg))
	full := func() int {
		if refSum(seg, pseudo) == 0xffff {
			return sumFull
		}
		return sumBad
	}
	switch p.L4Proto {
	case header.ProtocolTCP:
		if len(seg) < header.TCPMinSize {
			return s
		}
		s.l4 = full()
		if partialL4(ip, fam, l4off, p.L4Proto) {
			s.l4 = sumPartial
		}
	case header.ProtocolUDP:
		if len(seg) < header.UDPSize {
			return s
		}
		s.l4 = full()
		if binary.BigEndian.Uint16(seg[6:]) == 0 {
			// No checksum, which NAT leaves alone (the kernel's
			// udp_manip_pkt), IPv6's (not allowed there) included.
			s.l4 = sumZero
		} else if partialL4(ip, fam, l4off, p.L4Proto) {
			s.l4 = sumPartial
		}
	case header.ProtocolICMP:
		if v6 || len(seg) < 8 {
			return s
		}
		s.l4 = sumBad
		// An all-zero message (an echo reply with identifier and
		// sequence 0 and no data) gets checksum 0 from the kernel's
		// incremental update (TestManipPacketICMPAllZeroKernelCorner):
		// counted right here.
		if sum := refSum(seg, 0); sum == 0xffff || sum == 0 {
			s.l4 = sumFull
		}
		if conntrack.IsICMPError(p.L4Proto, seg[0]) && len(seg) >= 8+20 && seg[8]>>4 == 4 {
			if hl := int(seg[8]&0xf) * 4; hl >= 20 && len(seg) >= 8+hl {
				s.inner = refSum(seg[8:8+hl], 0) == 0xffff
			}
		}
	case header.ProtocolICMPv6:
		if !v6 || len(seg) < 8 {
			return s
		}
		s.l4 = full()
	}
	return s
}

// endpoints reads a packet's addresses and ports (ICMP: the identifier
// as both ports).
func endpoints(p *fastpath.Packet) (src, dst string, sport, dport uint16) {
	s, d, sp, dp := flowOf(p)
	if p.L4Proto == header.ProtocolICMP || p.L4Proto == header.ProtocolICMPv6 {
		l4 := p.Data[p.L4Off:p.L3End]
		if len(l4) >= 6 {
			sp = binary.BigEndian.Uint16(l4[4:])
			dp = sp
		}
	}
	return s.String(), d.String(), sp, dp
}

// mirror returns the reply to the packet p (as it left): addresses and
// ports swapped, an ICMP query's reply type, a TCP SYN's SYN/ACK or an
// ACK of what it carried; checksums computed. nil if p is not one a
// connection answers so (a fragment, an ICMP error, a protocol without
// ports).
func mirror(p *fastpath.Packet) []byte {
	if p.Fragment || p.L4Off == 0 {
		return nil
	}
	f := bytes.Clone(p.Data[:p.L3End])
	ip := f[p.L3Off:]
	v6 := ip[0]>>4 == 6
	l4off := int(p.L4Off - p.L3Off)
	seg := ip[l4off:]
	n := 4
	so := 12
	if v6 {
		n, so = 16, 8
	}
	a := bytes.Clone(ip[so : so+n])
	copy(ip[so:], ip[so+n:so+2*n])
	copy(ip[so+n:], a)
	var sumOff int
	switch p.L4Proto {
	case header.ProtocolTCP:
		if len(seg) < header.TCPMinSize {
			return nil
		}
		seg[0], seg[1], seg[2], seg[3] = seg[2], seg[3], seg[0], seg[1]
		seq, ack := binary.BigEndian.Uint32(seg[4:]), binary.BigEndian.Uint32(seg[8:])
		dlen := len(seg) - int(seg[12]>>4)*4
		if dlen < 0 {
			return nil
		}
		fl := seg[13]
		end := seq + uint32(dlen)
		if fl&0x03 != 0 { // SYN, FIN
			end++
		}
		if fl&0x12 == 0x02 { // SYN without ACK: SYN/ACK
			binary.BigEndian.PutUint32(seg[4:], 77777)
			seg[13] = 0x12
		} else {
			binary.BigEndian.PutUint32(seg[4:], ack)
			seg[13] = 0x10
		}
		binary.BigEndian.PutUint32(seg[8:], end)
		sumOff = 16
	case header.ProtocolUDP:
		if len(seg) < header.UDPSize {
			return nil
		}
		seg[0], seg[1], seg[2], seg[3] = seg[2], seg[3], seg[0], seg[1]
		sumOff = 6
	case header.ProtocolICMP, header.ProtocolICMPv6:
		fam := uint8(4)
		if v6 {
			fam = 6
		}
		typ, ok := conntrack.ICMPQueryReply(fam, seg[0])
		if len(seg) < 8 || !ok || fam == 4 && p.L4Proto != header.ProtocolICMP {
			return nil
		}
		if fam == 6 && seg[0] != 128 && seg[0] != 129 {
			// The kernel rewrites the identifier of ICMPv6 echo only
			// (icmpv6_manip_pkt): a node information query translated
			// to another identifier gets no reply that matches.
			return nil
		}
		seg[0] = typ
		sumOff = 2
	default:
		return nil
	}
	if !v6 {
		hl := int(ip[0]&0xf) * 4
		binary.BigEndian.PutUint16(ip[10:], 0)
		binary.BigEndian.PutUint16(ip[10:], ^refSum(ip[:hl], 0))
	}
	var pseudo uint32
	if p.L4Proto != header.ProtocolICMP {
		pseudo = refPseudo(ip[so:so+n], ip[so+n:so+2*n], p.L4Proto, len(seg))
	}
	setSum(seg, sumOff, pseudo, false, p.L4Proto == header.ProtocolUDP)
	return f
}

// icmpError returns the ICMP error the destination of p (as it left)
// sends back about it: port unreachable, quoting its start.
func icmpError(t testing.TB, p *fastpath.Packet) []byte {
	src, dst, _, _ := flowOf(p)
	q := p.Data[p.L3Off:p.L3End]
	if len(q) > 128 {
		q = q[:128]
	}
	if p.EtherType == header.EtherTypeIPv4 {
		return ipFrameOf(t, false, dst, src, &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(3, 3)}, gopacket.Payload(q))
	}
	return ipFrameOf(t, true, dst, src, &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(1, 4)}, gopacket.Payload(append(make([]byte, 4), q...)))
}

// fuzzRig is the pipeline FuzzTrackNAT runs: mode's bits choose the
// bindings new connections get: 1 dnat to an inside server (2: and to
// port 80), 4 masquerade (8: into ports 5000-5001).
func fuzzRig(t testing.TB, mode uint8) *natRig {
	masq := func(p *fastpath.Packet, v6 bool) ([16]byte, bool) {
		if v6 {
			return a16("2001:db8:ff::1"), true
		}
		return a16("10.9.0.1"), true
	}
	tr := newNATTracker(64)
	x := NewTranslator(tr, masq, nil)
	r := newNATRig(t, tr, x)
	if mode&1 != 0 {
		r.dnat = func(p *fastpath.Packet) bool {
			to := a16("10.0.0.80")
			if p.EtherType == header.EtherTypeIPv6 {
				to = a16("fd00::80")
			} else {
				to = [16]byte{to[0], to[1], to[2], to[3]}
			}
			rg := Range{Flags: MapIPs, MinAddr: to, MaxAddr: to}
			if mode&2 != 0 {
				rg.Flags |= ProtoSpecified
				rg.MinProto, rg.MaxProto = 80, 80
			}
			return x.Setup(p, &rg, Dst, r.now)
		}
	}
	if mode&4 != 0 {
		r.snat = func(p *fastpath.Packet) bool {
			var rg Range
			if mode&8 != 0 {
				rg = Range{Flags: ProtoSpecified, MinProto: 5000, MaxProto: 5001}
			}
			return x.Masquerade(p, &rg, r.now)
		}
	}
	return r
}

// forwardChecked runs frame through r and fails if NAT rewrote it and
// broke a checksum that was right (or changed its kind: full, partial,
// none).
func forwardChecked(t *testing.T, r *natRig, frame []byte) fastpath.Packet {
	in := fastpathtest.Parsed(bytes.Clone(frame))
	var before pktSums
	if in.L3Off != 0 {
		before = checksums(&in)
	}
	out := r.forward(frame)[0]
	if out.L3Off == 0 || out.Action != fastpath.ActionContinue || bytes.Equal(out.Data, frame) {
		return out
	}
	after := checksums(&out)
	if before.ip && !after.ip || before.inner && !after.inner || before.l4 != sumBad && after.l4 != before.l4 {
		t.Fatalf("checksums %+v became %+v:\n in  %x\n out %x", before, after, frame, out.Data)
	}
	return out
}

// FuzzTrackNAT: random frames through conntrack and NAT (dnat and
// masquerade bindings given to new connections, as nat chains would)
// never panic; every packet NAT rewrote keeps its right checksums; the
// reply to a translated packet comes back with the addresses and ports
// of the original, and so does an ICMP error about it, inside and out.
// A second frame, b, goes through after the first, a.
func FuzzTrackNAT(f *testing.F) {
	tb := &testing.T{}
	udp4 := udpFrame(tb, "10.0.0.2", 40000, "192.0.2.1", 53)
	first, second := fastpathtest.Fragments4(tb, ipFrame(tb, "10.0.0.2", "192.0.2.1",
		&layers.UDP{SrcPort: 40001, DstPort: 53}, gopacket.Payload(make([]byte, 100))), 48)
	seeds := [][]byte{
		tcpSYN(tb, "10.0.0.2", 40000, "192.0.2.1", 80),
		udp4,
		ipFrame(tb, "10.0.0.2", "192.0.2.1", &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0), Id: 77, Seq: 1}, gopacket.Payload("ping")),
		tcpSYN(tb, "fd00::2", 40000, "2001:db8:1::1", 443),
		udpFrame(tb, "fd00::2", 40000, "2001:db8:1::1", 53),
		ipFrame(tb, "fd00::2", "2001:db8:1::1", &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(128, 0)}, gopacket.Payload("\x00\x4d\x00\x01ping")),
		first,
	}
	udp4p := fastpathtest.Parsed(bytes.Clone(udp4))
	errFrame := icmpError(tb, &udp4p)
	for mode := range uint8(16) {
		for _, s := range seeds {
			f.Add(mode, s, []byte(nil))
		}
		f.Add(mode, first, second)
		f.Add(mode, udp4, errFrame)
		f.Add(mode, tcpSYN(tb, "10.0.0.3", 40000, "192.0.2.1", 80), tcpSYN(tb, "10.0.0.4", 40000, "192.0.2.1", 80))
	}
	f.Fuzz(func(t *testing.T, mode uint8, a, b []byte) {
		r := fuzzRig(t, mode)
		if len(a) < header.EthernetSize || len(a) > 1500 || len(b) > 1500 {
			return
		}
		in := fastpathtest.Parsed(bytes.Clone(a))
		out := forwardChecked(t, r, a)
		if len(b) >= header.EthernetSize {
			forwardChecked(t, r, b)
		}
		if in.L3Off == 0 || out.Action != fastpath.ActionContinue || out.CtRef == 0 {
			return
		}
		if _, pending := r.tr.Pending(&out); pending {
			return // not confirmed (a fragment's, a deleted entry's)
		}
		reply := mirror(&out)
		if s, d, sp, dp := endpoints(&out); reply == nil || s == d && sp == dp {
			return // a packet to itself is its own reply
		}
		osrc, odst, osport, odport := endpoints(&in)
		back := forwardChecked(t, r, reply)
		dir := r.tr.Dir(&back)
		if back.Action != fastpath.ActionContinue || back.CtRef == 0 || dir != conntrack.DirReply {
			if in.L4Proto != header.ProtocolTCP {
				t.Fatalf("reply %x: %v %v ct state %d dir %d", reply, back.Action, back.Reason, back.CtState, dir)
			}
			return // the TCP tracker's to judge
		}
		bsrc, bdst, bsport, bdport := endpoints(&back)
		if bsrc != odst || bdst != osrc || bsport != odport || bdport != osport {
			t.Fatalf("original %s:%d > %s:%d, left as %x; reply came back %s:%d > %s:%d",
				osrc, osport, odst, odport, out.Data, bsrc, bsport, bdst, bdport)
		}
		// An ICMP error from where the packet went, about it.
		e := forwardChecked(t, r, icmpError(t, &out))
		if e.Action != fastpath.ActionContinue || conntrack.State(e.CtState) != conntrack.StateRelated {
			t.Fatalf("error about %x: %v %v ct state %d", out.Data, e.Action, e.Reason, e.CtState)
		}
		esrc, edst, _, _ := endpoints(&e)
		var qp fastpath.Packet
		qp.Data = bytes.Clone(e.Data)
		qoff := int(e.L4Off) + 8
		if e.EtherType == header.EtherTypeIPv4 {
			qp.EtherType, qp.L3Off = header.EtherTypeIPv4, uint16(qoff)
			qp.L4Off = qp.L3Off + uint16(qp.Data[qoff]&0xf)*4
		} else {
			qp.EtherType, qp.L3Off = header.EtherTypeIPv6, uint16(qoff)
			off, _, _, ok := header.IPv6SkipExthdr(qp.Data[qoff:])
			if !ok {
				t.Fatalf("quoted packet %x", qp.Data[qoff:])
			}
			qp.L4Off = qp.L3Off + uint16(off)
		}
		qp.L3End, qp.L4Proto = uint16(len(qp.Data)), in.L4Proto
		qsrc, qdst, qsport, qdport := endpoints(&qp)
		if esrc != odst || edst != osrc || qsrc != osrc || qdst != odst || qsport != osport || qdport != odport {
			t.Fatalf("original %s:%d > %s:%d; error %s > %s quoting %s:%d > %s:%d", osrc, osport, odst, odport, esrc, edst, qsrc, qsport, qdst, qdport)
		}
	})
}
