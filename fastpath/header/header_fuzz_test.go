package header

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// Fuzz targets for the views, iterators and builders of arp.go, icmp.go,
// icmpv6.go, icmperr.go and rewrite.go: no input panics them, what they
// parse re-encodes to the same bytes, and what they build or rewrite
// verifies.

func FuzzARP(f *testing.F) {
	for _, fr := range linuxFrames(f) {
		if binary.BigEndian.Uint16(fr[12:]) == EtherTypeARP {
			f.Add(fr[EthernetSize:])
		}
	}
	f.Add(make([]byte, 28))
	f.Fuzz(func(t *testing.T, b []byte) {
		a := ARP(b)
		if !a.IsValid() {
			if len(b) >= ARPSize && b[4] == 6 && b[5] == 4 && (be16(b) == 1 || be16(b) == 6) && be16(b[2:]) == EtherTypeIPv4 {
				t.Fatal("valid message refused")
			}
			if _, err := BuildARPReply(make([]byte, 64), a, MAC{1}); err == nil {
				t.Fatal("invalid message answered")
			}
			return
		}
		// Re-encode from the parsed values.
		re := make([]byte, ARPSize)
		putARP(re, a.Op(), a.SenderMAC(), a.SenderIP(), a.TargetMAC(), a.TargetIP())
		put16(re, a.HardwareType())
		if !bytes.Equal(re, b[:ARPSize]) {
			t.Fatalf("re-encoded %x, was %x", re, b[:ARPSize])
		}
		buf := make([]byte, ARPSize)
		n, err := BuildARPReply(buf, a, MAC{1, 2, 3, 4, 5, 6})
		if (err == nil) != (a.Op() == ARPRequest) {
			t.Fatalf("op %d: reply error %v", a.Op(), err)
		}
		if err == nil {
			r := ARP(buf[:n])
			if !r.IsValid() || r.Op() != ARPReply || r.SenderIP() != a.TargetIP() || r.TargetIP() != a.SenderIP() ||
				r.TargetMAC() != a.SenderMAC() || r.SenderMAC() != (MAC{1, 2, 3, 4, 5, 6}) {
				t.Fatalf("reply %x to %x", r, b)
			}
		}
	})
}

func FuzzICMPv4(f *testing.F) {
	fr := linuxFrames(f)
	f.Add(IPv4(fr[12][EthernetSize:]).Payload(), uint32(1), uint8(0))
	f.Add(IPv4(fr[21][EthernetSize:]).Payload(), uint32(7), uint8(3))
	f.Add(make([]byte, 8), uint32(0), uint8(1))
	f.Fuzz(func(t *testing.T, b []byte, v uint32, which uint8) {
		m := ICMPv4(bytes.Clone(b))
		if !m.IsValid() {
			return
		}
		_, _, _, _, _, _ = m.Type(), m.Code(), m.Ident(), m.Seq(), m.MTU(), m.IsError()
		if m.RestOfHeader() != binary.BigEndian.Uint32(b[4:]) || !bytes.Equal(m.Payload(), b[8:]) {
			t.Fatal("view reads the wrong bytes")
		}
		m.SetChecksum(m.CalculateChecksum())
		if Checksum(m, 0) != 0xffff {
			t.Fatalf("CalculateChecksum does not verify: %x", m)
		}
		switch which % 4 {
		case 0:
			m.SetType(uint8(v))
		case 1:
			m.SetCode(uint8(v))
		case 2:
			m.SetRestOfHeader(v)
		case 3:
			m.SetIdent(uint16(v))
		}
		if Checksum(m, 0) != 0xffff {
			t.Fatalf("setter %d broke the checksum: %x", which%4, m)
		}
	})
}

// FuzzNDP parses arbitrary IPv6 packets as NDP messages: ValidateNDP and
// the options iterator never panic; options that parse re-encode to the
// options area; a valid solicitation gets an advertisement that is valid
// in turn.
func FuzzNDP(f *testing.F) {
	for _, fr := range linuxFrames(f) {
		if binary.BigEndian.Uint16(fr[12:]) == EtherTypeIPv6 && fr[EthernetSize+6] == ProtocolICMPv6 {
			f.Add(fr[EthernetSize:])
		}
	}
	f.Fuzz(func(t *testing.T, pkt []byte) {
		ip := IPv6(pkt)
		if !ip.IsValid(len(ip)) || ip.NextHeader() != ProtocolICMPv6 {
			return
		}
		msg := ICMPv6(pkt[IPv6Size : IPv6Size+int(ip.PayloadLength())])
		err := ValidateNDP(ip, msg)
		if err != nil {
			if _, ok := err.(NDPError); !ok {
				t.Fatalf("error %T %v is not an NDPError", err, err)
			}
		}
		var opts NDPOptions
		switch {
		case NDPNeighborSolicit(msg).IsValid():
			opts = NDPNeighborSolicit(msg).Options()
		case NDPNeighborAdvert(msg).IsValid():
			opts = NDPNeighborAdvert(msg).Options()
		case NDPRouterSolicit(msg).IsValid():
			opts = NDPRouterSolicit(msg).Options()
		default:
			if err == nil {
				t.Fatal("a message of no NDP view validated")
			}
			return
		}
		var re []byte
		var optErr error
		for o := opts; len(o) > 0; {
			var opt NDPOption
			if opt, o, optErr = o.Next(); optErr != nil {
				break
			}
			if opt.Length() != len(opt) || opt.Length() == 0 {
				t.Fatalf("option of %d bytes, length %d", len(opt), opt.Length())
			}
			re = append(re, opt...)
		}
		if optErr == nil && !bytes.Equal(re, opts) {
			t.Fatalf("options re-encode to %x, were %x", re, []byte(opts))
		}
		if optErr != nil && err == nil {
			t.Fatal("a message with malformed options validated")
		}
		if opts.Validate() != optErr {
			t.Fatalf("Validate %v, Next %v", opts.Validate(), optErr)
		}
		if err != nil || msg.Type() != ICMPv6NeighborSolicit {
			return
		}
		buf := make([]byte, 128)
		n, berr := BuildNeighborAdvert(buf, ip, NDPNeighborSolicit(msg), MAC{2, 0, 0, 0, 0, 1}, true)
		if berr != nil {
			t.Fatal(berr)
		}
		if verr := ValidateNDP(IPv6(buf[:n]), ICMPv6(buf[IPv6Size:n])); verr != nil {
			t.Fatalf("advertisement does not validate: %v\n%x", verr, buf[:n])
		}
	})
}

// FuzzICMPError decides and builds errors about arbitrary packets: the
// decision never panics, and a packet it allows gets an error whose
// checksums verify, that quotes its first bytes within the size limits.
func FuzzICMPError(f *testing.F) {
	for i, fr := range linuxFrames(f) {
		f.Add(fr[EthernetSize:], binary.BigEndian.Uint16(fr[12:]) == EtherTypeIPv6, i%5 == 0, uint8(i), uint8(i), uint32(i))
	}
	f.Fuzz(func(t *testing.T, pkt []byte, v6, linkGroup bool, typ, code uint8, rest uint32) {
		buf := make([]byte, 1400)
		if v6 {
			if !ShouldSendICMPError6(IPv6(pkt), linkGroup, typ, code, rest) {
				return
			}
			e := ICMPv6Error{Type: typ, Code: code, Rest: rest, Src: [16]byte{0xfd, 15: 1}}
			n, err := e.Build(buf, IPv6(pkt))
			if err != nil {
				t.Fatal(err)
			}
			ip := IPv6(buf[:n])
			quote := min(IPv6Size+int(IPv6(pkt).PayloadLength()), 1232)
			if n > IPv6MinMTU || !ip.IsValid(n) || n != IPv6Size+int(ip.PayloadLength()) ||
				!bytes.Equal(buf[48:n], pkt[:quote]) || ip.Dst() != IPv6(pkt).Src() {
				t.Fatalf("error %x about %x", buf[:n], pkt)
			}
			if Checksum(buf[IPv6Size:n], ip.PseudoHeaderChecksum(ProtocolICMPv6, uint32(n-IPv6Size))) != 0xffff {
				t.Fatal("ICMPv6 checksum does not verify")
			}
			return
		}
		if !ShouldSendICMPError4(IPv4(pkt), linkGroup) {
			return
		}
		e := ICMPv4Error{Type: typ, Code: code, Rest: rest, Src: [4]byte{192, 0, 2, 1}, MTU: int(rest % 700)}
		n, err := e.Build(buf, IPv4(pkt))
		if e.MTU > 0 && e.MTU <= 48 {
			if err == nil {
				t.Fatalf("built with MTU %d", e.MTU)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		ip := IPv4(buf[:n])
		if n > ICMPv4ErrorMaxSize || e.MTU > 0 && n > e.MTU || !ip.IsValid(n) || int(ip.TotalLength()) != n ||
			!bytes.Equal(buf[28:n], pkt[:n-28]) || ip.Dst() != IPv4(pkt).Src() {
			t.Fatalf("error %x about %x", buf[:n], pkt)
		}
		if Checksum(buf[:IPv4MinSize], 0) != 0xffff || Checksum(buf[IPv4MinSize:n], 0) != 0xffff {
			t.Fatal("checksum does not verify")
		}
	})
}

// FuzzEchoReply answers arbitrary packets in place: a refusal changes
// nothing; a reply verifies and keeps the request's data.
func FuzzEchoReply(f *testing.F) {
	fr := linuxFrames(f)
	f.Add(fr[21][EthernetSize:], false)
	f.Add(fr[23][EthernetSize:], true)
	f.Fuzz(func(t *testing.T, pkt []byte, v6 bool) {
		b := bytes.Clone(pkt)
		var err error
		if v6 {
			err = ICMPv6EchoReplyInPlace(IPv6(b), 0, 0x12345)
		} else {
			err = ICMPv4EchoReplyInPlace(IPv4(b), 0, 7)
		}
		if err != nil {
			if _, ok := err.(EchoError); !ok || !bytes.Equal(b, pkt) {
				t.Fatalf("refused (%v) but changed the packet", err)
			}
			return
		}
		if v6 {
			ip := IPv6(b)
			m := ICMPv6(b[IPv6Size:])
			if m.Type() != ICMPv6EchoReply || ip.Src() != IPv6(pkt).Dst() || !bytes.Equal(b[44:], pkt[44:]) ||
				Checksum(m, ip.PseudoHeaderChecksum(ProtocolICMPv6, uint32(len(m)))) != 0xffff {
				t.Fatalf("reply %x to %x", b, pkt)
			}
			return
		}
		ip := IPv4(b)
		if ip.Payload()[0] != ICMPv4EchoReply || ip.Src() != IPv4(pkt).Dst() || !bytes.Equal(b[24:], pkt[24:]) ||
			Checksum(b[:IPv4MinSize], 0) != 0xffff || Checksum(ip.Payload(), 0) != 0xffff {
			t.Fatalf("reply %x to %x", b, pkt)
		}
	})
}

// FuzzRewriteL4 rewrites an address in the pseudo-header of arbitrary
// segments whose checksum was correct: it is correct for the new address
// afterwards, equal to the reference recompute.
func FuzzRewriteL4(f *testing.F) {
	f.Add([]byte("0123456789abcdefghijklmnopqrstuvwxyz"), false, uint8(ProtocolUDP), []byte("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"), true)
	f.Add(make([]byte, 20), true, uint8(ProtocolTCP), make([]byte, 48), false)
	f.Add(make([]byte, 8), true, uint8(ProtocolICMPv6), make([]byte, 48), true)
	f.Fuzz(func(t *testing.T, seg []byte, v6 bool, proto uint8, addrs []byte, dst bool) {
		n := 4
		if v6 {
			n = 16
		}
		if len(addrs) < 3*n {
			return
		}
		src, dstA, newA := addrs[:n], addrs[n:2*n], addrs[2*n:3*n]
		var off int
		switch proto {
		case ProtocolTCP:
			off = TCPChecksumOffset
		case ProtocolUDP:
			off = UDPChecksumOffset
		case ProtocolICMPv6:
			if !v6 {
				return
			}
			off = 2
		default:
			return
		}
		if len(seg) < off+2 {
			return
		}
		seg = bytes.Clone(seg)
		binary.BigEndian.PutUint16(seg[off:], refChecksum(src, dstA, proto, seg, off))
		old := src
		if dst {
			old = dstA
		}
		var ok bool
		if v6 {
			ok = UpdateL4Addr6(proto, seg, [16]byte(old), [16]byte(newA), false)
		} else {
			ok = UpdateL4Addr4(proto, seg, [4]byte(old), [4]byte(newA), false)
		}
		minLen := UDPSize
		if proto == ProtocolTCP {
			minLen = TCPMinSize
		}
		if !ok {
			if len(seg) >= minLen {
				t.Fatal("refused a segment long enough")
			}
			return
		}
		if dst {
			dstA = newA
		} else {
			src = newA
		}
		if got, want := binary.BigEndian.Uint16(seg[off:]), refChecksum(src, dstA, proto, seg, off); got != want {
			t.Fatalf("checksum %#04x, recomputed %#04x", got, want)
		}
	})
}
