package rules

import (
	"encoding/binary"
	"github.com/xdpfwd/xdpfwd/conntrack"

	"github.com/xdpfwd/xdpfwd/fastpath"
	"github.com/xdpfwd/xdpfwd/fastpath/header"
)

// reject answers the packet of c as the kernel's reject expressions do,
// then the rule drops it. At the ip, ip6 and inet hooks (nft_reject_ipv4,
// nft_reject_ipv6, nft_reject_inet) the answer is an IP packet of the
// router's own, emitted to walk on from the output hook (the router routes
// it, as the kernel's ip_local_out): a TCP reset (nf_send_reset), or an
// ICMP or ICMPv6 destination unreachable (nf_send_unreach, through
// icmp_send's checks and rate limits). At the output hook the offending
// packet is the router's own: the kernel's answer goes to the router
// itself, which consumes it, so nothing is emitted. In the bridge family
// (nft_reject_bridge) the answer is built at layer 2 and leaves by the
// port the frame came in on, with its VLAN tag.
//
// xdpfwd cannot tell a checksum a sender left to its device's offload from
// a bad one, so unlike the kernel it does not check the offending
// packet's transport checksum before answering.
func (w *worker) reject(p *Program, r *rejectSpec, c *pktCtx) {
	if c.b == nil {
		return
	}
	if r.l2 {
		w.rejectL2(r, c)
		return
	}
	if c.hook == fastpath.HookOutput {
		return
	}
	if !c.v6 {
		switch r.how4 {
		case rejectRST:
			w.rst4(p, c)
		case rejectICMP:
			w.unreach4(p, c, r.code4)
		}
		return
	}
	switch r.how6 {
	case rejectRST:
		w.rst6(p, c)
	case rejectICMP:
		w.unreach6(p, c, r.code6)
	}
}

// TCP flags.
const (
	tcpFIN = 0x01
	tcpSYN = 0x02
	tcpRST = 0x04
	tcpACK = 0x10
)

// putRST writes the 20-byte reset answering TCP segment seg into b, as
// nf_reject_ip_tcphdr_put and nf_reject_ip6_tcphdr_put do (window 0, no
// checksum yet); payload is the length the kernel takes as the segment's:
// its skb's length less the IP and TCP headers.
func putRST(b, seg []byte, payload uint32) {
	clear(b[:header.TCPMinSize])
	copy(b[0:2], seg[2:4])
	copy(b[2:4], seg[0:2])
	b[12] = 5 << 4
	f := seg[13]
	if f&tcpACK != 0 {
		copy(b[4:8], seg[8:12])
		b[13] = tcpRST
		return
	}
	n := binary.BigEndian.Uint32(seg[4:8]) + payload
	if f&tcpSYN != 0 {
		n++
	}
	if f&tcpFIN != 0 {
		n++
	}
	binary.BigEndian.PutUint32(b[8:12], n)
	b[13] = tcpRST | tcpACK
}

// putIPv4 writes the IPv4 header of nf_reject_iphdr_put: TOS 0, ID 0, DF,
// TTL 64, from the offending packet's destination to its source, with
// its checksum.
func putIPv4(b []byte, orig []byte, proto uint8, total int) {
	clear(b[:header.IPv4MinSize])
	b[0] = 0x45
	binary.BigEndian.PutUint16(b[2:], uint16(total))
	b[6] = 0x40
	b[8], b[9] = header.DefaultTTL, proto
	copy(b[12:16], orig[16:20])
	copy(b[16:20], orig[12:16])
	binary.BigEndian.PutUint16(b[10:], ^header.Checksum(b[:header.IPv4MinSize], 0))
}

// putIPv6 writes the IPv6 header of nf_reject_ip6hdr_put: traffic class
// and flow label 0, hop limit 64, from the offending packet's destination
// to its source.
func putIPv6(b []byte, orig []byte, next uint8, payload int) {
	binary.BigEndian.PutUint32(b[0:], 6<<28)
	binary.BigEndian.PutUint16(b[4:], uint16(payload))
	b[6], b[7] = next, header.DefaultHopLimit
	copy(b[8:24], orig[24:40])
	copy(b[24:40], orig[8:24])
}

// emitIP emits an IP packet of n bytes of the router's own about the
// packet of c, for the router to route from the output hook on.
func (w *worker) emitIP(p *Program, c *pktCtx, n int, v6 bool) *fastpath.Packet {
	e := c.b.Emit(c.pk.InPort, header.EthernetSize+n)
	if e == nil {
		return nil
	}
	et := uint16(header.EtherTypeIPv4)
	if v6 {
		et = header.EtherTypeIPv6
	}
	clear(e.Data[:12])
	binary.BigEndian.PutUint16(e.Data[12:], et)
	e.EtherType, e.L3Off, e.L3End = et, header.EthernetSize, uint16(header.EthernetSize+n)
	e.InIface = c.pk.InIface
	if e.InIface == 0 && int(c.pk.InPort) < len(p.portIface) {
		e.InIface = p.portIface[c.pk.InPort]
	}
	return e
}

// rst4 is nf_send_reset.
func (w *worker) rst4(p *Program, c *pktCtx) {
	ip := c.data[c.nh:c.end]
	ihl := int(ip[0]&0xf) * 4
	if binary.BigEndian.Uint16(ip[6:])&0x1fff != 0 || ip[9] != header.ProtocolTCP || ihl+header.TCPMinSize > len(ip) {
		return
	}
	seg := ip[ihl:]
	dst := ip[16:20]
	if seg[13]&tcpRST != 0 || dst[0]&0xf0 == 0xe0 || [4]byte(dst) == [4]byte{255, 255, 255, 255} || c.pkttype != pktHost {
		return // no reset for a reset, or to a broadcast or multicast
	}
	const n = header.IPv4MinSize + header.TCPMinSize
	e := w.emitIP(p, c, n, false)
	if e == nil {
		return
	}
	out := e.Data[header.EthernetSize:]
	putIPv4(out, ip, header.ProtocolTCP, n)
	t := out[header.IPv4MinSize:n]
	putRST(t, seg, c.skbLen-uint32(ihl)-uint32(seg[12]>>4)*4)
	src, to := [4]byte(out[12:16]), [4]byte(out[16:20])
	header.TCP(t).SetChecksum(^header.Checksum(t, header.PseudoHeaderChecksum4(header.ProtocolTCP, src, to, header.TCPMinSize)))
	e.L4Off, e.L4Proto = header.EthernetSize+header.IPv4MinSize, header.ProtocolTCP
	attachConntrack(e, c.pk)
}

// attachConntrack gives a reset the rejected packet's connection, in
// the other direction, as related: the kernel's nf_send_reset attaches
// it (nf_ct_attach), so conntrack leaves the reset alone at output and
// NAT translates it back as it translates the connection's replies.
func attachConntrack(rst, orig *fastpath.Packet) {
	if orig.CtRef != 0 {
		rst.CtRef, rst.CtState = orig.CtRef^1, uint8(conntrack.StateRelated)
	}
}

// unreach4 is nf_send_unreach: icmp_send's destination unreachable.
func (w *worker) unreach4(p *Program, c *pktCtx, code uint8) {
	ip := header.IPv4(c.data[c.nh:c.end])
	if ip.FragmentOffset() != 0 || !header.ShouldSendICMPError4(ip, c.pkttype != pktHost) {
		return
	}
	orig := ip.Src()
	if !c.dryRun() && !p.icmp.allow(true, code, orig[:], int64(c.now)) {
		return
	}
	src := ip.Dst()
	if p.env.ErrorSource != nil {
		if s, ok := p.env.ErrorSource(c.pk, false); ok {
			src = [4]byte(s[:4])
		}
	}
	e := w.emitIP(p, c, header.ICMPv4ErrorMaxSize, false)
	if e == nil {
		return
	}
	w.ipID++
	n, err := header.ICMPv4Error{Type: header.ICMPv4DestUnreachable, Code: code, Src: src, ID: w.ipID}.Build(e.Data[header.EthernetSize:], ip)
	if err != nil {
		e.Drop(dropReasons[c.hook])
		return
	}
	e.Data = e.Data[:header.EthernetSize+n]
	e.L3End = uint16(header.EthernetSize + n)
	e.L4Off, e.L4Proto = header.EthernetSize+header.IPv4MinSize, header.ProtocolICMP
}

// skipExthdr6 is the kernel's ipv6_skip_exthdr from the IPv6 header at nh
// of d (ending at end): the offset and protocol after the extension
// headers, and whether the packet is a fragment but the first; ok false
// where the kernel returns -1.
func skipExthdr6(d []byte, nh, end int) (off int, proto uint8, later bool, ok bool) {
	off, proto, fragOff, ok := header.IPv6SkipExthdr(d[nh:end])
	return nh + off, proto, fragOff&^7 != 0, ok
}

// unicast6 reports whether a is a unicast address (neither multicast nor
// unspecified), as nf_send_reset6 wants both addresses.
func unicast6(a []byte) bool { return a[0] != 0xff && [16]byte(a) != [16]byte{} }

// rst6 is nf_send_reset6.
func (w *worker) rst6(p *Program, c *pktCtx) {
	ip := c.data[c.nh:c.end]
	if !unicast6(ip[8:24]) || !unicast6(ip[24:40]) {
		return
	}
	th, proto, _, ok := skipExthdr6(c.data, c.nh, c.end)
	if !ok || proto != header.ProtocolTCP || c.end-th < header.TCPMinSize {
		return
	}
	seg := c.data[th:c.end]
	if seg[13]&tcpRST != 0 {
		return
	}
	const n = header.IPv6Size + header.TCPMinSize
	e := w.emitIP(p, c, n, true)
	if e == nil {
		return
	}
	out := e.Data[header.EthernetSize:]
	putIPv6(out, ip, header.ProtocolTCP, header.TCPMinSize)
	t := out[header.IPv6Size:n]
	putRST(t, seg, uint32(len(seg))-uint32(seg[12]>>4)*4)
	header.TCP(t).SetChecksum(^header.Checksum(t, header.PseudoHeaderChecksum6(header.ProtocolTCP,
		[16]byte(out[8:24]), [16]byte(out[24:40]), header.TCPMinSize)))
	e.L4Off, e.L4Proto = header.EthernetSize+header.IPv6Size, header.ProtocolTCP
	attachConntrack(e, c.pk)
}

// unreach6 is nf_send_unreach6: icmpv6_send's destination unreachable.
func (w *worker) unreach6(p *Program, c *pktCtx, code uint8) {
	ip := header.IPv6(c.data[c.nh:c.end])
	if !header.ShouldSendICMPError6(ip, c.pkttype != pktHost, header.ICMPv6DestUnreachable, code, 0) {
		return
	}
	orig := ip.Src()
	if !c.dryRun() && !p.icmp.allow(false, code, orig[:], int64(c.now)) {
		return
	}
	src := ip.Dst()
	if p.env.ErrorSource != nil {
		if s, ok := p.env.ErrorSource(c.pk, true); ok {
			src = s
		}
	}
	e := w.emitIP(p, c, header.IPv6MinMTU, true)
	if e == nil {
		return
	}
	n, err := header.ICMPv6Error{Type: header.ICMPv6DestUnreachable, Code: code, Src: src}.Build(e.Data[header.EthernetSize:], ip)
	if err != nil {
		e.Drop(dropReasons[c.hook])
		return
	}
	e.Data = e.Data[:header.EthernetSize+n]
	e.L3End = uint16(header.EthernetSize + n)
	e.L4Off, e.L4Proto = header.EthernetSize+header.IPv6Size, header.ProtocolICMPv6
}

// rejectL2 is nft_reject_bridge_eval: nothing for a frame to a broadcast
// or multicast MAC, or one carrying neither IPv4 nor IPv6; else the
// answer, built at layer 2.
func (w *worker) rejectL2(r *rejectSpec, c *pktCtx) {
	d := c.data
	if d[0]&1 != 0 {
		return
	}
	switch binary.BigEndian.Uint16(d[c.nh-2:]) {
	case header.EtherTypeIPv4:
		switch r.how4 {
		case rejectRST:
			w.rstL2v4(c)
		case rejectICMP:
			w.unreachL2v4(c, r.code4)
		}
	case header.EtherTypeIPv6:
		switch r.how6 {
		case rejectRST:
			w.rstL2v6(c)
		case rejectICMP:
			w.unreachL2v6(c, r.code6)
		}
	}
}

// emitL2 emits the answer to the frame of c: n bytes of IP after its
// Ethernet header (and VLAN tag, kept), addressed back to its sender, to
// leave by its port.
func (w *worker) emitL2(c *pktCtx, n int, et uint16) *fastpath.Packet {
	e := c.b.Emit(c.pk.InPort, c.nh+n)
	if e == nil {
		return nil
	}
	d := c.data
	copy(e.Data[0:6], d[6:12])
	copy(e.Data[6:12], d[0:6])
	copy(e.Data[12:c.nh], d[12:c.nh]) // the tag, if any, and the EtherType
	if c.nh > header.EthernetSize {
		e.OuterTPID, e.OuterTCI = binary.BigEndian.Uint16(d[12:]), binary.BigEndian.Uint16(d[14:])
	}
	e.EtherType, e.L3Off, e.L3End = et, uint16(c.nh), uint16(c.nh+n)
	e.ToPort(c.pk.InPort)
	return e
}

// ipv4L2 is nf_reject_iphdr_validate: the IPv4 header at nh, and its
// length.
func ipv4L2(c *pktCtx) (ihl int, ok bool) {
	d, nh := c.data, c.nh
	if nh+header.IPv4MinSize > len(d) || d[nh]>>4 != 4 || d[nh]&0xf < 5 {
		return 0, false
	}
	ihl = int(d[nh]&0xf) * 4
	tot := int(binary.BigEndian.Uint16(d[nh+2:]))
	return ihl, tot <= len(d)-nh && tot >= ihl && nh+ihl <= len(d)
}

// rstL2v4 is nf_reject_skb_v4_tcp_reset, at layer 2. The kernel counts
// the segment's length from its untrimmed skb (Ethernet padding too).
func (w *worker) rstL2v4(c *pktCtx) {
	ihl, ok := ipv4L2(c)
	d, nh := c.data, c.nh
	if !ok || binary.BigEndian.Uint16(d[nh+6:])&0x1fff != 0 || d[nh+9] != header.ProtocolTCP || nh+ihl+header.TCPMinSize > len(d) {
		return
	}
	seg := d[nh+ihl:]
	if seg[13]&tcpRST != 0 {
		return
	}
	const n = header.IPv4MinSize + header.TCPMinSize
	e := w.emitL2(c, n, header.EtherTypeIPv4)
	if e == nil {
		return
	}
	out := e.Data[nh:]
	putIPv4(out, d[nh:], header.ProtocolTCP, n)
	t := out[header.IPv4MinSize:n]
	putRST(t, seg, c.skbLen-uint32(ihl)-uint32(seg[12]>>4)*4)
	header.TCP(t).SetChecksum(^header.Checksum(t, header.PseudoHeaderChecksum4(header.ProtocolTCP,
		[4]byte(out[12:16]), [4]byte(out[16:20]), header.TCPMinSize)))
	e.L4Off, e.L4Proto = uint16(nh+header.IPv4MinSize), header.ProtocolTCP
}

// unreachL2v4 is nf_reject_skb_v4_unreach, at layer 2: it quotes up to
// 536 bytes from the network header of the untrimmed skb.
func (w *worker) unreachL2v4(c *pktCtx, code uint8) {
	ihl, ok := ipv4L2(c)
	d, nh := c.data, c.nh
	if !ok || binary.BigEndian.Uint16(d[nh+6:])&0x1fff != 0 {
		return
	}
	if d[nh+9] == header.ProtocolICMP && nh+ihl < len(d) && d[nh+ihl] == header.ICMPv4DestUnreachable {
		return // no unreachable about an unreachable
	}
	q := min(536, len(d)-nh)
	n := header.IPv4MinSize + header.ICMPv4MinSize + q
	e := w.emitL2(c, n, header.EtherTypeIPv4)
	if e == nil {
		return
	}
	out := e.Data[nh:]
	putIPv4(out, d[nh:], header.ProtocolICMP, n)
	m := out[header.IPv4MinSize:n]
	clear(m[:header.ICMPv4MinSize])
	m[0], m[1] = header.ICMPv4DestUnreachable, code
	copy(m[header.ICMPv4MinSize:], d[nh:nh+q])
	binary.BigEndian.PutUint16(m[2:], ^header.Checksum(m, 0))
	e.L4Off, e.L4Proto = uint16(nh+header.IPv4MinSize), header.ProtocolICMP
}

// ipv6L2 is nf_reject_ip6hdr_validate.
func ipv6L2(c *pktCtx) bool {
	d, nh := c.data, c.nh
	return nh+header.IPv6Size <= len(d) && d[nh]>>4 == 6 &&
		header.IPv6Size+int(binary.BigEndian.Uint16(d[nh+4:])) <= len(d)-nh
}

// rstL2v6 is nf_reject_skb_v6_tcp_reset, at layer 2.
func (w *worker) rstL2v6(c *pktCtx) {
	if !ipv6L2(c) {
		return
	}
	d, nh := c.data, c.nh
	th, proto, _, ok := skipExthdr6(d, nh, len(d))
	if !ok || proto != header.ProtocolTCP || len(d)-th < header.TCPMinSize {
		return
	}
	seg := d[th:]
	if seg[13]&tcpRST != 0 {
		return
	}
	const n = header.IPv6Size + header.TCPMinSize
	e := w.emitL2(c, n, header.EtherTypeIPv6)
	if e == nil {
		return
	}
	out := e.Data[nh:]
	putIPv6(out, d[nh:], header.ProtocolTCP, header.TCPMinSize)
	t := out[header.IPv6Size:n]
	putRST(t, seg, uint32(len(seg))-uint32(seg[12]>>4)*4)
	header.TCP(t).SetChecksum(^header.Checksum(t, header.PseudoHeaderChecksum6(header.ProtocolTCP,
		[16]byte(out[8:24]), [16]byte(out[24:40]), header.TCPMinSize)))
	e.L4Off, e.L4Proto = uint16(nh+header.IPv6Size), header.ProtocolTCP
}

// unreachL2v6 is nf_reject_skb_v6_unreach, at layer 2: it quotes up to
// 1220 bytes from the network header.
func (w *worker) unreachL2v6(c *pktCtx, code uint8) {
	if !ipv6L2(c) {
		return
	}
	d, nh := c.data, c.nh
	if th, proto, later, ok := skipExthdr6(d, nh, len(d)); ok && !later && proto == header.ProtocolICMPv6 &&
		th < len(d) && d[th] == header.ICMPv6DestUnreachable {
		return
	}
	q := min(1220, len(d)-nh)
	n := header.IPv6Size + header.ICMPv6MinSize + q
	e := w.emitL2(c, n, header.EtherTypeIPv6)
	if e == nil {
		return
	}
	out := e.Data[nh:]
	putIPv6(out, d[nh:], header.ProtocolICMPv6, n-header.IPv6Size)
	m := out[header.IPv6Size:n]
	clear(m[:header.ICMPv6MinSize])
	m[0], m[1] = header.ICMPv6DestUnreachable, code
	copy(m[header.ICMPv6MinSize:], d[nh:nh+q])
	binary.BigEndian.PutUint16(m[2:], ^header.Checksum(m, header.PseudoHeaderChecksum6(header.ProtocolICMPv6,
		[16]byte(out[8:24]), [16]byte(out[24:40]), uint32(len(m)))))
	e.L4Off, e.L4Proto = uint16(nh+header.IPv6Size), header.ProtocolICMPv6
}
