package router

import (
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/xdpfwd/xdpfwd/fastpath"
	"github.com/xdpfwd/xdpfwd/fastpath/header"
	"github.com/xdpfwd/xdpfwd/fastpath/route"
)

// ICMPLimit bounds the ICMP errors the router sends, as the kernel's
// sysctls do (defaults read on this kernel, 6.18): a global token bucket
// (net.ipv4.icmp_msgs_per_sec 1000, icmp_msgs_burst 50, shared by IPv4
// and IPv6) and one per destination (net.ipv4.icmp_ratelimit 1000 ms,
// net.ipv6.icmp.ratelimit 100 ms, each with a burst of 6 as the kernel's
// XRLIM_BURST_FACTOR), for the types the kernel limits
// (net.ipv4.icmp_ratemask: destination unreachable but fragmentation
// needed, source quench, time exceeded, parameter problem;
// net.ipv6.icmp.ratemask: every error but packet too big). Zero fields
// take those defaults.
type ICMPLimit struct {
	MsgsPerSec, Burst int
	PerDest4          time.Duration
	PerDest6          time.Duration
	// Off sends every error.
	Off bool
}

// Kernel defaults.
const (
	DefaultICMPMsgsPerSec = 1000
	DefaultICMPBurst      = 50
	DefaultICMPPerDest4   = time.Second
	DefaultICMPPerDest6   = 100 * time.Millisecond
	perDestBurst          = 6    // XRLIM_BURST_FACTOR
	perDestSlots          = 4096 // destinations tracked (hashed; a collision limits both)
)

// limiter is the ICMP rate limit, shared by the workers: generic cell rate
// buckets (a theoretical arrival time each) advanced with one
// compare-and-swap, no lock.
type limiter struct {
	off bool
	// The global bucket: one message per globalInterval ns, globalBurst
	// ahead at most.
	global                      gcra
	globalInterval, globalBurst int64
	// Per destination (hashed into slots), IPv4 and IPv6.
	slots4, slots6       []atomic.Int64
	interval4, interval6 int64
}

// gcra is one bucket: tat is the theoretical arrival time of the next
// message on the workers' clock.
type gcra struct{ tat atomic.Int64 }

func newLimiter(c ICMPLimit) *limiter {
	if c.MsgsPerSec == 0 {
		c.MsgsPerSec = DefaultICMPMsgsPerSec
	}
	if c.Burst == 0 {
		c.Burst = DefaultICMPBurst
	}
	if c.PerDest4 == 0 {
		c.PerDest4 = DefaultICMPPerDest4
	}
	if c.PerDest6 == 0 {
		c.PerDest6 = DefaultICMPPerDest6
	}
	return &limiter{
		off:            c.Off,
		globalInterval: int64(time.Second) / int64(c.MsgsPerSec), globalBurst: int64(c.Burst),
		interval4: int64(c.PerDest4), interval6: int64(c.PerDest6),
		slots4: make([]atomic.Int64, perDestSlots), slots6: make([]atomic.Int64, perDestSlots),
	}
}

// take advances bucket tat by interval if a message fits the burst at
// now.
func take(tat *atomic.Int64, now, interval, burst int64) bool {
	for {
		t := tat.Load()
		next := max(t, now) + interval
		if next-now > burst*interval {
			return false
		}
		if tat.CompareAndSwap(t, next) {
			return true
		}
	}
}

// allow reports whether an error of type typ/code (IPv4 when v4) to dst
// may be sent at now. plen is, for IPv6, the prefix length of the route
// back to dst: the kernel's icmpv6_xrlim_allow shortens the interval
// (ratelimit >> ((128 - plen) >> 5)) for destinations behind wider
// routes.
func (l *limiter) allow(v4 bool, typ, code uint8, dst [16]byte, plen int, now fastpath.Time) bool {
	if l.off || !limited(v4, typ, code) {
		return true
	}
	// As the kernel: the global bucket must have room, the destination's
	// must give a token, and only then is the global token spent.
	if !room(&l.global.tat, int64(now), l.globalInterval, l.globalBurst) {
		return false
	}
	h := uint32(0)
	for i := 0; i < 16; i += 4 {
		h = mix(h, uint32(dst[i])<<24|uint32(dst[i+1])<<16|uint32(dst[i+2])<<8|uint32(dst[i+3]))
	}
	slot, interval := &l.slots4[h%perDestSlots], l.interval4
	if !v4 {
		slot, interval = &l.slots6[h%perDestSlots], l.interval6
		if plen < 128 {
			interval >>= (128 - plen) >> 5
		}
	}
	if !take(slot, int64(now), interval, perDestBurst) {
		return false
	}
	return take(&l.global.tat, int64(now), l.globalInterval, l.globalBurst)
}

// allowGlobal is allow without the per-destination bucket: the global
// one alone, for the error types the ratemask limits.
func (l *limiter) allowGlobal(v4 bool, typ, code uint8, now fastpath.Time) bool {
	if l.off || !limited(v4, typ, code) {
		return true
	}
	return take(&l.global.tat, int64(now), l.globalInterval, l.globalBurst)
}

// room reports whether bucket tat would give a token at now.
func room(tat *atomic.Int64, now, interval, burst int64) bool {
	return max(tat.Load(), now)+interval-now <= burst*interval
}

// limited reports whether the kernel rate-limits an error of type typ and
// code (icmp_ratemask 0x1818, icmpv6 ratemask 0-1,3-127; fragmentation
// needed is never limited, as icmpv4_mask_allow exempts it for PMTU).
func limited(v4 bool, typ, code uint8) bool {
	if v4 {
		if typ == header.ICMPv4DestUnreachable && code == header.ICMPv4FragmentationNeeded {
			return false
		}
		return typ < 32 && 0x1818&(1<<typ) != 0
	}
	return typ != header.ICMPv6PacketTooBig && typ < 128
}

// icmp4Error sends the kernel's ICMP error about IPv4 packet p, as
// __icmp_send does: never about an ICMP error, a fragment other than the
// first, a broadcast or multicast; from the address it was sent to if that
// is the router's, else from the address of the interface it came in on;
// within the rate limit.
func (w *worker) icmp4Error(b *fastpath.Batch, p *fastpath.Packet, typ, code uint8, rest uint32) {
	ip := header.IPv4(p.Data[p.L3Off:p.L3End])
	if !header.ShouldSendICMPError4(ip, p.Data[0]&1 != 0) {
		return
	}
	src, ok := sourcePicker{w.r, w.view}.errorSource4(p, ip)
	if !ok {
		return
	}
	toSelf := w.r.local4(ip.Src()) // a packet held after NAT (SetErrorNAT)
	if !w.allowError(true, typ, code, mapped4(ip.Src()), 32, toSelf) {
		return
	}
	e := b.Emit(p.InPort, header.EthernetSize+header.ICMPv4ErrorMaxSize)
	if e == nil {
		return
	}
	w.ipID++
	n, err := header.ICMPv4Error{Type: typ, Code: code, Rest: rest, Src: src, ID: w.ipID}.Build(e.Data[header.EthernetSize:], ip)
	if err != nil {
		e.Drop(DropBadIP)
		return
	}
	if toSelf && w.r.errorNAT != nil {
		w.r.errorNAT(p, e.Data[header.EthernetSize:header.EthernetSize+n])
	}
	w.answer(p, true, typ, code)
	w.emitted(e, p, n, header.EtherTypeIPv4)
}

// icmp6Error is icmp4Error for IPv6 (icmp6_send).
func (w *worker) icmp6Error(b *fastpath.Batch, p *fastpath.Packet, typ, code uint8, rest uint32) {
	ip := header.IPv6(p.Data[p.L3Off:p.L3End])
	if !header.ShouldSendICMPError6(ip, p.Data[0]&1 != 0, typ, code, rest) {
		return
	}
	src := sourcePicker{w.r, w.view}.errorSource6(p, ip)
	toSelf := w.r.local6(ip.Src()) // a packet held after NAT (SetErrorNAT)
	if !w.allowError(false, typ, code, ip.Src(), w.r.routePrefixLen6(ip.Src()), toSelf) {
		return
	}
	e := b.Emit(p.InPort, header.EthernetSize+header.IPv6MinMTU)
	if e == nil {
		return
	}
	n, err := header.ICMPv6Error{Type: typ, Code: code, Rest: rest, Src: src}.Build(e.Data[header.EthernetSize:], ip)
	if err != nil {
		e.Drop(DropBadIP)
		return
	}
	if toSelf && w.r.errorNAT != nil {
		w.r.errorNAT(p, e.Data[header.EthernetSize:header.EthernetSize+n])
	}
	w.answer(p, false, typ, code)
	w.emitted(e, p, n, header.EtherTypeIPv6)
}

// allowError reports whether the rate limits let an ICMP error of type
// and code to dst (a prefix of plen bits for IPv6) go, and counts it if
// not; a dry run charges nothing. An error to one of the router's own
// addresses (toSelf) takes the global limit only: the kernel routes it
// through loopback, for which icmpv4_xrlim_allow and icmpv6_xrlim_allow
// skip the per-destination one.
func (w *worker) allowError(v4 bool, typ, code uint8, dst [16]byte, plen int, toSelf bool) bool {
	if w.dry {
		return true
	}
	ok := false
	if toSelf {
		ok = w.r.limit.allowGlobal(v4, typ, code, w.now)
	} else {
		ok = w.r.limit.allow(v4, typ, code, dst, plen, w.now)
	}
	if !ok {
		w.count(&w.r.c.icmpLimited)
	}
	return ok
}

// SetErrorNAT gives the router NAT's translation of the ICMP errors it
// makes about packets it holds after their source NAT, whose neighbour
// then fails (nat.Translator.UnNATError). Such an error is addressed to
// the router's own address (the packet's translated source); the
// kernel's NAT, at the local output hook, turns it back toward the
// connection's source and quotes the packet that source sent
// (nf_nat_icmp_reply_translation), and the kernel routes it again
// (nf_nat_ipv4_local_fn); the router translates it before it routes it.
// Set it before the router's stages run.
func (r *Router) SetErrorNAT(f func(about *fastpath.Packet, ip []byte) bool) { r.errorNAT = f }

// emitted finishes an emitted IP packet of n bytes after the Ethernet
// header, the router's own, and routes it (a stage after the output hook,
// the neighbour's, emits errors too).
func (w *worker) emitted(e, about *fastpath.Packet, n int, etherType uint16) {
	e.Data = e.Data[:header.EthernetSize+n]
	header.Ethernet(e.Data).SetEtherType(etherType)
	e.EtherType = etherType
	e.L3Off, e.L3End = header.EthernetSize, uint16(header.EthernetSize+n)
	e.InIface = about.InIface
	w.routeOut(e)
	if e.Action != fastpath.ActionContinue {
		return // no route back
	}
	if etherType == header.EtherTypeIPv4 && header.IPv4(e.Data[header.EthernetSize:]).Protocol() == header.ProtocolICMP ||
		etherType == header.EtherTypeIPv6 && header.IPv6(e.Data[header.EthernetSize:]).NextHeader() == header.ProtocolICMPv6 {
		w.count(&w.r.c.icmpErrors)
	}
}

// routePrefixLen6 returns the prefix length of the route back to a: of
// the interface prefix holding it, else of the longest static route, else
// 0 (the default route).
func (r *Router) routePrefixLen6(a [16]byte) int {
	addr := netip.AddrFrom16(a)
	for i := range r.ifaces {
		for _, p := range r.ifaces[i].Addrs {
			if p.Addr().Is6() && p.Masked().Contains(addr) {
				return p.Bits()
			}
		}
	}
	return 0
}

// sourcePicker picks the sources of ICMP errors: the router and the FIB
// view of the batch.
type sourcePicker struct {
	r    *Router
	view route.View
}

// ErrorSource picks the source address of an ICMP (v6 false) or ICMPv6
// error about packet p as the router's own errors take it (icmp_send's
// choice, below), for other subsystems that send errors on the router's
// behalf (nft reject): IPv4 in the first 4 bytes. ok is false when p has
// no IP header of that family or the router no address to send from. It
// allocates nothing and is safe from any worker.
func (r *Router) ErrorSource(p *fastpath.Packet, v6 bool) (src [16]byte, ok bool) {
	if p.L3Off == 0 || int(p.L3End) > len(p.Data) {
		return src, false
	}
	ip := p.Data[p.L3Off:p.L3End]
	w := sourcePicker{r: r, view: r.table.FIB().View()}
	if v6 {
		if len(ip) < header.IPv6Size || p.InIface == 0 || int(p.InIface) > len(r.ifaces) {
			return src, false
		}
		return w.errorSource6(p, header.IPv6(ip)), true
	}
	if len(ip) < header.IPv4MinSize {
		return src, false
	}
	if !p.RouteLocal {
		// Before the routing decision (a reject at prerouting) the
		// kernel routes the packet back toward its sender first, so
		// icmp_send answers from that interface's address even for a
		// packet to another of the router's addresses.
		a, ok := w.sourceBack4(p, header.IPv4(ip))
		copy(src[:], a[:])
		return src, ok
	}
	a, ok := w.errorSource4(p, header.IPv4(ip))
	copy(src[:], a[:])
	return src, ok
}

// errorSource4 picks an ICMP error's source as the kernel's icmp_send
// does (icmp_errors_use_inbound_ifaddr 0): the offending packet's
// destination if it is the router's; else an address of the interface
// the route back to the packet's source leaves by (on the source's subnet
// if it has one), else of the interface it came in on, else any of the
// router's.
func (w sourcePicker) errorSource4(p *fastpath.Packet, ip header.IPv4) ([4]byte, bool) {
	if dst := ip.Dst(); w.r.local4(dst) {
		return dst, true
	}
	return w.sourceBack4(p, ip)
}

// sourceBack4 is errorSource4 without the destination: the packet's
// source if it is the router's (a packet held after its source NAT), an
// address of the interface the route back to the packet's source leaves
// by, else of the interface it came in on, else any of the router's.
func (w sourcePicker) sourceBack4(p *fastpath.Packet, ip header.IPv4) ([4]byte, bool) {
	src := ip.Src()
	for i := range w.r.ifaces {
		if f := &w.r.ifaces[i]; f.has4(src) {
			// The kernel's route to its own address is local, with the
			// subnet's primary address as its preferred source.
			return f.source4(src)
		}
	}
	if res := w.view.Lookup4(src, 0); res.Type == route.Unicast {
		if a, ok := w.r.iface(w.view.Hop(res).Port).source4(src); ok {
			return a, true
		}
	}
	if p.InIface != 0 {
		if a, ok := w.r.iface(p.InIface).source4(src); ok {
			return a, true
		}
	}
	for i := range w.r.ifaces {
		if f := &w.r.ifaces[i]; len(f.v4) > 0 {
			return f.v4[0], true
		}
	}
	return [4]byte{}, false
}

// errorSource6 is errorSource4 for IPv6 (icmp6_send, source selection
// by scope): the destination if the router's; for a link-local source,
// the link-local address of the interface it came in on; else a global
// address of the interface the route back leaves by (on the source's
// prefix if it has one), else that interface's link-local one.
func (w sourcePicker) errorSource6(p *fastpath.Packet, ip header.IPv6) [16]byte {
	dst := ip.Dst()
	for i := range w.r.ifaces {
		if w.r.ifaces[i].has6(dst) {
			return dst
		}
	}
	src := ip.Src()
	if w.r.local6(src) {
		return src // the route to its own address: the address itself first
	}
	f := w.r.iface(p.InIface)
	if src[0] == 0xfe && src[1]&0xc0 == 0x80 {
		return f.linkLocal
	}
	if res := w.view.Lookup6(src, 0); res.Type == route.Unicast {
		f = w.r.iface(w.view.Hop(res).Port)
	}
	s := netip.AddrFrom16(src)
	for _, a := range f.Addrs {
		if a.Addr().Is6() && a.Masked().Contains(s) {
			return a.Addr().As16()
		}
	}
	if len(f.v6) > 0 {
		return f.v6[0]
	}
	return f.linkLocal
}

// The kernel's redirect backoff (net/ipv4/route.c): after the first
// redirect to a sender, the next waits redirectLoad << n (n redirects
// sent), at most redirectNumber of them; after redirectSilence without
// redirecting, it starts again.
const (
	redirectLoad    = 20 * time.Millisecond // ip_rt_redirect_load, HZ/50
	redirectNumber  = 9                     // ip_rt_redirect_number
	redirectSilence = redirectLoad << (redirectNumber + 1)
)

// redirectLimiter is the redirect backoff per sender, hashed into slots
// shared by the workers (a collision makes two senders share one).
type redirectLimiter struct {
	slots []redirectPeer
}

type redirectPeer struct {
	last atomic.Int64 // rate_last
	n    atomic.Int32 // n_redirects
}

func newRedirectLimiter() *redirectLimiter {
	return &redirectLimiter{slots: make([]redirectPeer, perDestSlots)}
}

// allow reports whether a redirect may go to src at now, and counts it,
// as ip_rt_send_redirect decides.
func (l *redirectLimiter) allow(src [4]byte, now fastpath.Time) bool {
	p := &l.slots[mix(uint32(src[0])<<24|uint32(src[1])<<16|uint32(src[2])<<8|uint32(src[3]), 0x5edd)%perDestSlots]
	t := int64(now)
	if t-p.last.Load() > int64(redirectSilence) {
		p.n.Store(0)
	}
	n := p.n.Load()
	if n >= redirectNumber {
		p.last.Store(t)
		return false
	}
	if n != 0 && t-p.last.Load() <= int64(redirectLoad)<<n {
		return false
	}
	p.last.Store(t)
	p.n.Add(1)
	return true
}
