package fastpath

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"net"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/xdpfwd/xdpfwd/fastpath/header"
)

func TestParseVLAN(t *testing.T) {
	ip, l, _, _ := inner(false, true)
	untagged := serialize(t, eth(layers.EthernetTypeIPv4), ip, l, pl(1))
	ip, l, _, _ = inner(false, true)
	one := serialize(t, eth(layers.EthernetTypeDot1Q), &layers.Dot1Q{Priority: 5, DropEligible: true, VLANIdentifier: 10, Type: layers.EthernetTypeIPv4}, ip, l, pl(1))
	ip6, l6, _, _ := inner(true, false)
	two := serialize(t, eth(layers.EthernetTypeQinQ),
		&layers.Dot1Q{VLANIdentifier: 100, Type: layers.EthernetTypeDot1Q},
		&layers.Dot1Q{VLANIdentifier: 10, Type: layers.EthernetTypeIPv6}, ip6, l6, pl(1))
	ip, l, _, _ = inner(false, true)
	three := serialize(t, eth(layers.EthernetTypeQinQ),
		&layers.Dot1Q{VLANIdentifier: 100, Type: layers.EthernetTypeDot1Q},
		&layers.Dot1Q{VLANIdentifier: 10, Type: layers.EthernetTypeDot1Q},
		&layers.Dot1Q{VLANIdentifier: 11, Type: layers.EthernetTypeIPv4}, ip, l, pl(1))
	for _, c := range []struct {
		name           string
		f              []byte
		tags           uint8
		tpid, tci      uint16
		typeOff, l3Off uint16
		et             uint16
		l4Off          uint16
		proto          uint8
	}{
		{"untagged", untagged, 0, 0, 0, 12, 14, header.EtherTypeIPv4, 34, header.ProtocolTCP},
		{"802.1Q", one, 1, header.EtherTypeVLAN, 5<<13 | 1<<12 | 10, 16, 18, header.EtherTypeIPv4, 38, header.ProtocolTCP},
		{"802.1ad+802.1Q", two, 2, header.EtherTypeQinQ, 100, 20, 22, header.EtherTypeIPv6, 62, header.ProtocolUDP},
		{"three tags: not decoded past two", three, 2, header.EtherTypeQinQ, 100, 20, 0, header.EtherTypeVLAN, 0, 0},
	} {
		var p Packet
		p.Reset(0, c.f, 0)
		parse(&p)
		if p.Verdict != VerdictPending || p.VLANTags != c.tags || p.OuterTPID != c.tpid || p.OuterTCI != c.tci ||
			p.EtherTypeOff != c.typeOff || p.EtherType != c.et || p.L3Off != c.l3Off || p.L4Off != c.l4Off || p.L4Proto != c.proto {
			t.Errorf("%s: verdict %v tags %d TPID %#x TCI %#x EtherType %#x at %d, L3 %d, L4 %d proto %d; want tags %d TPID %#x TCI %#x EtherType %#x at %d, L3 %d, L4 %d proto %d",
				c.name, p.Verdict, p.VLANTags, p.OuterTPID, p.OuterTCI, p.EtherType, p.EtherTypeOff, p.L3Off, p.L4Off, p.L4Proto,
				c.tags, c.tpid, c.tci, c.et, c.typeOff, c.l3Off, c.l4Off, c.proto)
		}
		if c.tags > 0 {
			v := header.VLAN(c.f[12:])
			if v.TPID() != c.tpid || v.TCI() != c.tci || v.VID() != c.tci&0xfff {
				t.Errorf("%s: header.VLAN TPID %#x TCI %#x VID %d", c.name, v.TPID(), v.TCI(), v.VID())
			}
		}
	}
	if v := header.VLAN(one[12:]); v.PCP() != 5 || !v.DEI() || v.VID() != 10 || v.EtherType() != header.EtherTypeIPv4 {
		t.Errorf("header.VLAN: PCP %d DEI %v VID %d EtherType %#x, want 5 true 10 0x800", v.PCP(), v.DEI(), v.VID(), v.EtherType())
	}
	// A frame that ends inside its tag is malformed, as Linux's
	// skb_vlan_untag finds it.
	for _, n := range []int{14, 15, 17} {
		var p Packet
		p.Reset(0, bytes.Clone(one[:n]), 0)
		parse(&p)
		if p.Verdict != VerdictDrop || p.Reason != DropMalformed {
			t.Errorf("802.1Q frame cut to %d bytes: verdict %v reason %v, want drop (malformed)", n, p.Verdict, p.Reason)
		}
	}
}

// FuzzParse checks what later stages rely on for any frame: no panic;
// every offset inside the frame and in order; the tag fields agree with
// the bytes.
func FuzzParse(f *testing.F) {
	for _, c := range checksumCases(f) {
		f.Add(c.correct)
	}
	f.Add(udp4(f, macB, macA, 10))
	f.Add(tcp6(f, macB, macA, 10))
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0x81, 0, 0, 10})
	f.Fuzz(func(t *testing.T, d []byte) {
		var p Packet
		p.Reset(0, d, 0)
		parse(&p)
		if len(d) < header.EthernetSize {
			if p.Verdict != VerdictDrop || p.Reason != DropMalformed {
				t.Fatalf("%d-byte frame: verdict %v reason %v, want malformed", len(d), p.Verdict, p.Reason)
			}
			return
		}
		if p.Verdict == VerdictDrop {
			// Only a frame ending inside a tag it announces.
			if p.Reason != DropMalformed || !header.IsVLANTPID(binary.BigEndian.Uint16(d[12:])) {
				t.Fatalf("dropped (%v) a frame with EtherType %#x", p.Reason, binary.BigEndian.Uint16(d[12:]))
			}
			return
		}
		if p.VLANTags > maxVLANTags || int(p.EtherTypeOff) != 12+4*int(p.VLANTags) || int(p.EtherTypeOff)+2 > len(d) {
			t.Fatalf("%d tags, EtherType at %d in %d bytes", p.VLANTags, p.EtherTypeOff, len(d))
		}
		if p.EtherType != binary.BigEndian.Uint16(d[p.EtherTypeOff:]) {
			t.Fatalf("EtherType %#x, the frame has %#x at %d", p.EtherType, binary.BigEndian.Uint16(d[p.EtherTypeOff:]), p.EtherTypeOff)
		}
		for i := range int(p.VLANTags) {
			if tpid := binary.BigEndian.Uint16(d[12+4*i:]); !header.IsVLANTPID(tpid) {
				t.Fatalf("tag %d has TPID %#x", i, tpid)
			}
		}
		if (p.VLANTags == 0) != (p.OuterTPID == 0) || (p.VLANTags > 0 && (p.OuterTPID != binary.BigEndian.Uint16(d[12:]) || p.OuterTCI != binary.BigEndian.Uint16(d[14:]))) {
			t.Fatalf("%d tags, outer TPID %#x TCI %#x; frame %x", p.VLANTags, p.OuterTPID, p.OuterTCI, d[:min(len(d), 24)])
		}
		if p.VLANTags < maxVLANTags && header.IsVLANTPID(p.EtherType) {
			t.Fatalf("stopped at tag %d of %d", p.VLANTags, maxVLANTags)
		}
		if p.L3Off == 0 {
			if p.L3End != 0 || p.L4Off != 0 || p.Fragment {
				t.Fatalf("no L3 but L3End %d L4 %d fragment %v", p.L3End, p.L4Off, p.Fragment)
			}
			return
		}
		if p.L3Off != p.EtherTypeOff+2 || p.L3End <= p.L3Off || int(p.L3End) > len(d) {
			t.Fatalf("L3 %d..%d, EtherType at %d, %d bytes", p.L3Off, p.L3End, p.EtherTypeOff, len(d))
		}
		if p.L4Off != 0 && (p.L4Off <= p.L3Off || p.L4Off > p.L3End) {
			t.Fatalf("L4 at %d outside L3 %d..%d", p.L4Off, p.L3Off, p.L3End)
		}
		// The IP layer agrees with gopacket's decoding of the same frame.
		pkt := gopacket.NewPacket(d, layers.LayerTypeEthernet, gopacket.NoCopy)
		for _, l := range pkt.Layers() {
			if lt := l.LayerType(); lt != layers.LayerTypeIPv4 && lt != layers.LayerTypeIPv6 {
				continue
			}
			// NoCopy: the layer aliases d, so capacities give its offset.
			if off := cap(d) - cap(l.LayerContents()); off != int(p.L3Off) && pkt.ErrorLayer() == nil {
				t.Fatalf("L3 at %d, gopacket finds it at %d", p.L3Off, off)
			}
			break
		}
	})
}

// FuzzChecksumFinish runs arbitrary frames through Parse and
// ChecksumFinish: a frame is changed only when the stage counts it, a
// second pass changes nothing, and a frame whose every checksum verifies
// (checked by refVerify, independently of the stage) is not changed.
func FuzzChecksumFinish(f *testing.F) {
	for _, c := range checksumCases(f) {
		f.Add(c.correct)
		if c.partial != nil {
			p := bytes.Clone(c.correct)
			c.partial(p)
			f.Add(p)
		}
	}
	f.Fuzz(func(t *testing.T, d []byte) {
		before := bytes.Clone(d)
		correct := refVerify(before)
		n := finishOne(d)
		if correct && !bytes.Equal(d, before) {
			t.Fatalf("a frame whose checksums all verify was changed:\nbefore %x\nafter  %x", before, d)
		}
		if n == 0 && !bytes.Equal(d, before) {
			t.Fatalf("frame changed but not counted:\nbefore %x\nafter  %x", before, d)
		}
		once := bytes.Clone(d)
		finishOne(d)
		if !bytes.Equal(d, once) {
			t.Fatalf("a second pass changed the frame:\nfirst  %x\nsecond %x", once, d)
		}
	})
}

// refVerify reports whether gopacket decodes f without error and every
// TCP, UDP, GRE and SCTP checksum in it (inner ones of tunnels too)
// verifies, computed with refSum and hash/crc32: what a receiver checks.
// A UDP/IPv4 checksum of 0 means none, as does a tunnel's over IPv6.
func refVerify(f []byte) bool {
	p := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
	if p.ErrorLayer() != nil {
		return false
	}
	var src, dst net.IP
	for _, l := range p.Layers() {
		seg := append(bytes.Clone(l.LayerContents()), l.LayerPayload()...)
		var proto uint8
		switch l := l.(type) {
		case *layers.IPv4:
			src, dst = l.SrcIP, l.DstIP
			continue
		case *layers.IPv6:
			src, dst = l.SrcIP, l.DstIP
			continue
		case *layers.UDP:
			// RFC 6935 allows tunnels a zero checksum over IPv6 too.
			tunnel := l.DstPort == header.UDPPortVXLAN || l.DstPort == header.UDPPortGENEVE
			if l.Checksum == 0 && (src.To4() != nil || tunnel) {
				continue
			}
			proto = header.ProtocolUDP
		case *layers.TCP:
			proto = header.ProtocolTCP
		case *layers.GRE:
			if l.ChecksumPresent && refSum(seg, 0) != 0xffff {
				return false
			}
			continue
		case *layers.SCTP:
			if len(seg) < 12 {
				return false
			}
			field := binary.LittleEndian.Uint32(seg[8:])
			copy(seg[8:12], []byte{0, 0, 0, 0})
			if crc32.Checksum(seg, crc32.MakeTable(crc32.Castagnoli)) != field {
				return false
			}
			continue
		default:
			continue
		}
		if src == nil || refSum(seg, refPseudo(src, dst, proto, len(seg))) != 0xffff {
			return false
		}
	}
	return true
}
