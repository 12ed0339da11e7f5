package router

import (
	"encoding/binary"

	"github.com/xdpfwd/xdpfwd/fastpath"
	"github.com/xdpfwd/xdpfwd/fastpath/header"
)

// TCP flags.
const (
	tcpFIN = 0x01
	tcpSYN = 0x02
	tcpRST = 0x04
	tcpACK = 0x10
)

// rstFields returns the sequence number, acknowledgment number and flags
// of the reset answering TCP segment seg of payload bytes, as the kernel's
// tcp_v4_send_reset and tcp_v6_send_reset choose them (RFC 793, "Reset
// Generation"): with ACK set, the reset takes its sequence number from
// the segment's acknowledgment; without, it acknowledges all the segment
// occupies (SYN and FIN count one each) from sequence number 0.
func rstFields(seg header.TCP, payload int) (seq, ack uint32, flags uint8) {
	f := seg.Flags()
	if f&tcpACK != 0 {
		return binary.BigEndian.Uint32(seg[8:12]), 0, tcpRST
	}
	n := uint32(payload)
	if f&tcpSYN != 0 {
		n++
	}
	if f&tcpFIN != 0 {
		n++
	}
	return 0, binary.BigEndian.Uint32(seg[4:8]) + n, tcpRST | tcpACK
}

// putRST writes a 20-byte TCP reset from the segment's destination port to
// its source port into b, without its checksum.
func putRST(b []byte, seg header.TCP, seq, ack uint32, flags uint8) {
	clear(b[:header.TCPMinSize])
	copy(b[0:2], seg[2:4])
	copy(b[2:4], seg[0:2])
	binary.BigEndian.PutUint32(b[4:8], seq)
	binary.BigEndian.PutUint32(b[8:12], ack)
	b[12] = 5 << 4
	b[13] = flags
}

// tcpReset answers a TCP segment to one of the router's addresses, where
// nothing listens, with a reset, as a host does (never a reset for a
// reset).
func (w *worker) tcpReset(b *fastpath.Batch, p *fastpath.Packet) {
	seg := header.TCP(p.Data[p.L4Off:p.L3End])
	if len(seg) < header.TCPMinSize || seg.Flags()&tcpRST != 0 || seg.DataOffset() > len(seg) {
		return
	}
	seq, ack, flags := rstFields(seg, len(seg)-seg.DataOffset())
	const n4, n6 = header.IPv4MinSize + header.TCPMinSize, header.IPv6Size + header.TCPMinSize
	if p.EtherType == header.EtherTypeIPv4 {
		ip := header.IPv4(p.Data[p.L3Off:p.L3End])
		e := b.Emit(p.InPort, header.EthernetSize+n4)
		if e == nil {
			return
		}
		out := e.Data[header.EthernetSize:]
		// tcp_v4_send_reset: TTL ip_default_ttl, DF, identification 0,
		// the segment's TOS without its ECN bits.
		clear(out[:header.IPv4MinSize])
		out[0], out[1] = 0x45, ip[1]&^0x03
		binary.BigEndian.PutUint16(out[2:4], n4)
		out[6] = 0x40
		out[8], out[9] = header.DefaultTTL, header.ProtocolTCP
		src, dst := ip.Dst(), ip.Src()
		copy(out[12:16], src[:])
		copy(out[16:20], dst[:])
		v := header.IPv4(out)
		v.SetChecksum(v.CalculateChecksum())
		t := header.TCP(out[header.IPv4MinSize:n4])
		putRST(t, seg, seq, ack, flags)
		t.SetChecksum(^header.Checksum(t, header.PseudoHeaderChecksum4(header.ProtocolTCP, src, dst, header.TCPMinSize)))
		w.emitted(e, p, n4, header.EtherTypeIPv4)
		return
	}
	ip := header.IPv6(p.Data[p.L3Off:p.L3End])
	e := b.Emit(p.InPort, header.EthernetSize+n6)
	if e == nil {
		return
	}
	out := e.Data[header.EthernetSize:]
	// tcp_v6_send_reset: hop limit 64, traffic class (without its ECN
	// bits) and flow label of the segment.
	copy(out[0:4], ip[0:4])
	out[1] &^= 0x30
	binary.BigEndian.PutUint16(out[4:6], header.TCPMinSize)
	out[6], out[7] = header.ProtocolTCP, header.DefaultHopLimit
	src, dst := ip.Dst(), ip.Src()
	copy(out[8:24], src[:])
	copy(out[24:40], dst[:])
	t := header.TCP(out[header.IPv6Size:n6])
	putRST(t, seg, seq, ack, flags)
	t.SetChecksum(^header.Checksum(t, header.PseudoHeaderChecksum6(header.ProtocolTCP, src, dst, header.TCPMinSize)))
	w.emitted(e, p, n6, header.EtherTypeIPv6)
}
