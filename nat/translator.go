package nat

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xdpfwd/xdpfwd/conntrack"
	"github.com/xdpfwd/xdpfwd/fastpath"
	"github.com/xdpfwd/xdpfwd/fastpath/header"
)

// Translator is NAT in the pipeline, the kernel's nf_nat core on top of
// connection tracking: the binding a nat statement (or, where none
// matched, the null binding) gives a new connection before it is
// confirmed, and the rewriting of every packet of a translated connection
// at the NAT hooks — destination at ip prerouting and output (priority
// −100), source at ip postrouting and input (100). The rules engine runs
// the nat chains and calls it; it is safe from every worker.
type Translator struct {
	tr *conntrack.Tracker
	// masq and redir pick the addresses masquerade and redirect map to
	// (router.MasqueradeSource, router.RedirectTarget).
	masq, redir func(p *fastpath.Packet, v6 bool) ([16]byte, bool)

	exhausted, noAddress, dropped atomic.Uint64

	// log is Options.Log; logNext is the dataplane time before which
	// no line is logged; loggedMu serialises the lines and guards
	// logged, the exhausted count the last line covered.
	log      func(msg string)
	logNext  atomic.Int64
	loggedMu sync.Mutex
	logged   uint64
}

// Options are the optional settings of a Translator.
type Options struct {
	// Log, if not nil, is given a line about NAT exhaustion (new
	// connections for which the range had no free tuple left, which
	// conntrack then drops): at most once a second on the dataplane's
	// clock, from the worker that met the exhaustion, with the count
	// since the last line and the last connection concerned. Exhaustion
	// met less than a second after a line is reported by the next one.
	// It must not block for long: a worker waits for it.
	Log func(msg string)
}

// NewTranslator returns NAT over the connections tr tracks, with masq and
// redir picking masquerade's and redirect's addresses (nil: those
// statements drop, as the kernel does when the device has no address),
// and the options opts (at most one; none: the zero Options).
func NewTranslator(tr *conntrack.Tracker, masq, redir func(p *fastpath.Packet, v6 bool) ([16]byte, bool), opts ...Options) *Translator {
	x := &Translator{tr: tr, masq: masq, redir: redir}
	if len(opts) > 0 {
		x.log = opts[0].Log
	}
	return x
}

// Stats are NAT's counters.
type Stats struct {
	// Exhausted counts new connections whose binding found no free
	// tuple left in its range (a snat, dnat, masquerade or redirect
	// statement's, or the null binding's): the kernel's get_unique_tuple
	// giving up. As the kernel's nf_nat_setup_info, the binding still
	// takes the tuple and the packet goes on; conntrack then refuses the
	// duplicate when it confirms the connection and drops the packet
	// (conntrack.Stats.InsertFailed, conntrack.DropInsertFailed), unless
	// the clash is one the kernel resolves (UDP: the same connection
	// bound the same way by another worker at the same time). So no two
	// connections ever share a tuple.
	Exhausted uint64
	// NoAddress counts masquerade and redirect bindings dropped because
	// the interface had no address.
	NoAddress uint64
	// Dropped counts packets dropped while rewritten (a header too short,
	// an ICMP error with a bad checksum).
	Dropped uint64
}

// Stats returns the counters.
func (x *Translator) Stats() Stats {
	return Stats{Exhausted: x.exhausted.Load(), NoAddress: x.noAddress.Load(), Dropped: x.dropped.Load()}
}

// DropNAT is the drop reason of packets NAT could not rewrite.
var DropNAT = fastpath.NewReason("nat", "cannot translate")

// HookManip is the manipulation a NAT hook makes (the kernel's
// HOOK2MANIP): destination at prerouting and output, source at
// postrouting and input.
func HookManip(h fastpath.Hook) Manip {
	if h == fastpath.HookPrerouting || h == fastpath.HookOutput {
		return Dst
	}
	return Src
}

// doneBit is the status bit that says manip m of a connection is set up.
func doneBit(m Manip) conntrack.Status {
	if m == Src {
		return conntrack.StatusSrcNATDone
	}
	return conntrack.StatusDstNATDone
}

// Unbound reports whether p belongs to a new connection whose manip m is
// not bound yet (nf_nat_initialized false): the nat chains of the hook
// run for it. Only a connection not yet confirmed can be bound.
func (x *Translator) Unbound(p *fastpath.Packet, m Manip) bool {
	e, ok := x.tr.Pending(p)
	return ok && e.Status&doneBit(m) == 0
}

// Setup binds manip m of p's new connection into range r, as
// nf_nat_setup_info: the original tuple as it stands (the inverse of the
// reply tuple) is kept if it is free and in range, else the kernel's
// choice of a free one (Unique); the reply tuple becomes its inverse and
// the connection is marked translated. It reports the verdict: true to
// accept (the nat statement's NF_ACCEPT).
func (x *Translator) Setup(p *fastpath.Packet, r *Range, m Manip, now fastpath.Time) bool {
	e, ok := x.tr.Pending(p)
	if !ok || e.Status&doneBit(m) != 0 {
		return true // confirmed, or already bound: the kernel does nothing
	}
	cur := e.Tuple[1].Inverse()
	taken := func(reply *conntrack.Tuple) bool { return x.tr.Taken(p, reply, int64(now)) }
	sameSource := func(orig *conntrack.Tuple, n int, reply *conntrack.Tuple) bool {
		return x.tr.SameSource(p, orig, n, reply)
	}
	t, free := UniqueWithSource(cur, r, m, taken, nil, sameSource)
	if !free && !x.tr.Simulated(p) { // a dry run counts and logs nothing
		x.exhaust(&e.Tuple[0], &t, now)
	}
	if t != cur {
		reply := t.Inverse()
		x.tr.SetReply(p, &reply)
		if m == Src {
			e.Status |= conntrack.StatusSrcNAT
		} else {
			e.Status |= conntrack.StatusDstNAT
		}
	}
	e.Status |= doneBit(m)
	return true
}

// count adds one to counter c for packet p, unless p is a Simulator's
// (conntrack.Tracker.Simulated): a dry run changes no counter.
func (x *Translator) count(c *atomic.Uint64, p *fastpath.Packet) {
	if !x.tr.Simulated(p) {
		c.Add(1)
	}
}

// UnNATError rewrites ip, an ICMP error (from its IP header on) the
// router made about packet about after about's NAT (a packet it held,
// whose neighbour failed), as the kernel's NAT does to such an error,
// which conntrack relates to about's connection in the other direction:
// nf_nat_icmp_reply_translation at the local output hook (destination
// manip), then at postrouting (source manip). The error goes to the
// address about's sender used, and quotes the packet that sender sent.
// It reports whether about's connection is NATed and the error was
// translated (router.Router.SetErrorNAT).
func (x *Translator) UnNATError(about *fastpath.Packet, ip []byte) bool {
	var e conntrack.Entry
	if len(ip) == 0 || !x.tr.Entry(about, &e) || e.Status&(conntrack.StatusSrcNAT|conntrack.StatusDstNAT) == 0 {
		return false
	}
	fam, off := e.Tuple[0].Family, header.IPv6Size
	if fam == 4 {
		off = int(ip[0]&0xf) * 4
	}
	dir := x.tr.Dir(about) ^ 1 // the error goes back the way about came
	return TranslateICMPError(ip, fam, off, &e.Tuple, e.Status, dir, Dst) == nil &&
		TranslateICMPError(ip, fam, off, &e.Tuple, e.Status, dir, Src) == nil
}

// countDrop counts a packet Apply drops, unless dry.
func (x *Translator) countDrop(p *fastpath.Packet, dry bool) {
	if !dry {
		x.count(&x.dropped, p)
	}
}

// exhaust counts a connection (original tuple orig) that Setup bound to
// taken tuple t, and logs a line if a second has passed since the last.
func (x *Translator) exhaust(orig, t *conntrack.Tuple, now fastpath.Time) {
	x.exhausted.Add(1)
	if x.log == nil {
		return
	}
	next := x.logNext.Load()
	if int64(now) < next || !x.logNext.CompareAndSwap(next, int64(now)+int64(time.Second)) {
		return
	}
	x.logExhausted(orig, t)
}

// logExhausted logs the exhaustion line (it allocates: at most once a
// second).
func (x *Translator) logExhausted(orig, t *conntrack.Tuple) {
	x.loggedMu.Lock()
	defer x.loggedMu.Unlock()
	n := x.exhausted.Load()
	d := n - x.logged
	x.logged = n
	x.log(fmt.Sprintf("nat: range exhausted: no free tuple for %d new connection(s) since the last report (%d in all), dropped unless their clash resolves; the last: proto %d %v translated to %v",
		d, n, orig.Proto, *orig, *t))
}

// Masquerade binds the source of p's new connection to the address of
// its output interface, ports from r (nft_masq_eval). A connection from
// 0.0.0.0 is left alone; an interface without an address drops the
// packet.
func (x *Translator) Masquerade(p *fastpath.Packet, r *Range, now fastpath.Time) bool {
	e, ok := x.tr.Pending(p)
	if !ok {
		return true
	}
	fam := e.Tuple[0].Family
	if fam == 4 && [4]byte(e.Tuple[0].Src[:4]) == [4]byte{} {
		return true
	}
	if x.masq == nil {
		x.count(&x.noAddress, p)
		return false
	}
	src, ok := x.masq(p, fam == 6)
	if !ok {
		x.count(&x.noAddress, p)
		return false
	}
	nr := Masquerade(r, fam, src)
	return x.Setup(p, &nr, Src, now)
}

// Redirect binds the destination of p's new connection to the address of
// the interface it came in on, ports from r (nf_nat_redirect_ipv4/6).
func (x *Translator) Redirect(p *fastpath.Packet, r *Range, now fastpath.Time) bool {
	e, ok := x.tr.Pending(p)
	if !ok {
		return true
	}
	fam := e.Tuple[0].Family
	if x.redir == nil {
		x.count(&x.noAddress, p)
		return false
	}
	dst, ok := x.redir(p, fam == 6)
	if !ok {
		x.count(&x.noAddress, p)
		return false
	}
	if fam == 4 {
		dst = [16]byte{dst[0], dst[1], dst[2], dst[3]}
	}
	nr := Range{Flags: r.Flags | MapIPs, MinAddr: dst, MaxAddr: dst, MinProto: r.MinProto, MaxProto: r.MaxProto}
	return x.Setup(p, &nr, Dst, now)
}

// Apply is the NAT hook for p after the nat chains ran (nf_nat_inet_fn):
// a new connection still unbound for m gets the null binding (its tuple
// kept, or a free port if another connection took it:
// nf_nat_alloc_null_binding); then the packet is rewritten if its
// connection is translated on m's side in its direction (nf_nat_packet),
// an ICMP error related to one inside and out. false drops the packet.
// dry says p is in a dry run (fastpath.Batch.DryRun), which counts
// nothing: a packet of a confirmed connection does not show it otherwise.
func (x *Translator) Apply(p *fastpath.Packet, m Manip, now fastpath.Time, dry bool) bool {
	if p.CtRef == 0 || p.L3Off == 0 {
		return true
	}
	if e, ok := x.tr.Pending(p); ok && e.Status&doneBit(m) == 0 {
		var a [16]byte
		if m == Src {
			a = e.Tuple[1].Dst
		} else {
			a = e.Tuple[1].Src
		}
		r := Range{Flags: MapIPs, MinAddr: a, MaxAddr: a}
		x.Setup(p, &r, m, now)
	}
	dir := x.tr.Dir(p)
	ip := p.Data[p.L3Off:p.L3End]
	if conntrack.State(p.CtState) == conntrack.StateRelated && p.L4Off != 0 && conntrack.IsICMPError(p.L4Proto, p.Data[p.L4Off]) {
		var e conntrack.Entry
		if !x.tr.Entry(p, &e) || e.Status&(conntrack.StatusSrcNAT|conntrack.StatusDstNAT) == 0 {
			return true
		}
		if TranslateICMPError(ip, e.Tuple[0].Family, int(p.L4Off-p.L3Off), &e.Tuple, e.Status, dir, m) != nil {
			x.countDrop(p, dry)
			p.Drop(DropNAT)
			return false
		}
		return true
	}
	// The status bit under which m rewrites this packet: at Dst, an
	// original packet's destination if the connection is DNATed, a
	// reply's if it is SNATed (undone); at Src the other way round.
	bit := conntrack.StatusDstNAT
	if m == Src {
		bit = conntrack.StatusSrcNAT
	}
	if dir == conntrack.DirReply {
		bit ^= conntrack.StatusSrcNAT | conntrack.StatusDstNAT
	}
	var target conntrack.Tuple
	if st, ok := x.tr.Translated(p, bit, &target); !ok || st&bit == 0 {
		return true
	}
	fam := target.Family
	l4off := 0
	if p.L4Off != 0 {
		l4off = int(p.L4Off - p.L3Off)
	}
	if ManipPacket(ip, fam, l4off, &target, m, partialL4(ip, fam, l4off, p.L4Proto)) != nil {
		x.countDrop(p, dry)
		p.Drop(DropNAT)
		return false
	}
	if m == Dst {
		p.DstNATed = true
	}
	return true
}

// partialL4 reports whether a TCP or UDP segment's checksum is left for
// the device to finish (CHECKSUM_PARTIAL): its field holds the
// pseudo-header sum, as fastpath's ChecksumFinish decides at egress.
func partialL4(ip []byte, family uint8, l4off int, proto uint8) bool {
	if l4off <= 0 || proto != header.ProtocolTCP && proto != header.ProtocolUDP {
		return false
	}
	seg := ip[l4off:]
	var ps uint16
	if family == 4 {
		ps = header.IPv4(ip).PseudoHeaderChecksum(proto, uint16(len(seg)))
	} else {
		ps = header.IPv6(ip).PseudoHeaderChecksum(proto, uint32(len(seg)))
	}
	_, ok := header.PartialChecksum(proto, ps, seg)
	return ok
}
