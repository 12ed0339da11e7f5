package rules

import (
	"encoding/binary"
	"fmt"
	"github.com/xdpfwd/xdpfwd/nat"
	"sync"
	"sync/atomic"

	"github.com/xdpfwd/xdpfwd/fastpath"
	"github.com/xdpfwd/xdpfwd/fastpath/header"
)

// dropReasons are the reasons of the rules' drops, one per hook: a drop
// verdict (of a rule or a base chain's policy), reject included.
var dropReasons = func() (r [fastpath.NumHooks]fastpath.Reason) {
	for h := range fastpath.NumHooks {
		r[h] = fastpath.NewReason("nft "+h.String(), "nft drop at "+h.String())
	}
	return r
}()

// DropReason returns the reason the rules' stage at hook h drops packets
// with: a drop verdict, a base chain's drop policy, or a reject.
func DropReason(h fastpath.Hook) fastpath.Reason { return dropReasons[h] }

var _ fastpath.Subsystem = (*Engine)(nil)

// Engine runs the current Program at every hook of the packet walk: the
// rules subsystem (fastpath.Subsystem). Swap replaces the program between
// batches; the workers never wait for it.
type Engine struct {
	cur atomic.Pointer[Program]
	mu  sync.Mutex // serializes Swap
}

// NewEngine returns an engine running p (nil: none yet).
func NewEngine(p *Program) *Engine {
	e := &Engine{}
	e.Swap(p)
	return e
}

// Program returns the program the engine runs, nil if none.
func (e *Engine) Program() *Program { return e.cur.Load() }

// Swap makes p the program the workers run from their next batch on (nil
// runs none). The state of every rule of p that the current program has
// unchanged (same family, table, chain, handle and text), and of every
// named object of the same family, table, type and name, is the current
// one's from then on, shared: counters, quotas and limits carry on
// without a count lost. p must come fresh from Compile: a program already
// put into an engine keeps its own state.
func (e *Engine) Swap(p *Program) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if p != nil && p.published.CompareAndSwap(false, true) {
		if old := e.cur.Load(); old != nil {
			p.adopt(old)
		}
	}
	e.cur.Store(p)
}

// Expire does nothing: the rules keep no state that ages. It returns 0.
func (e *Engine) Expire(fastpath.Time) int { return 0 }

// ruleKey names a rule across programs.
type ruleKey struct {
	family       Family
	table, chain string
	handle       uint64
	text, fp     string
}

type objKeyT struct {
	family      Family
	table, name string
	typ         ObjectType
}

// adopt takes over the state of old's unchanged rules and named objects.
// p is not running yet.
func (p *Program) adopt(old *Program) {
	rules := make(map[ruleKey]*ruleInfo, len(old.rules))
	for i := range old.rules {
		r := &old.rules[i]
		rules[ruleKey{r.family, r.table, r.chain, r.handle, r.text, r.fingerprint}] = r
	}
	for i := range p.rules {
		r := &p.rules[i]
		o := rules[ruleKey{r.family, r.table, r.chain, r.handle, r.text, r.fingerprint}]
		if o == nil || len(o.ops) != len(r.ops) {
			continue
		}
		for j, oi := range r.ops {
			n, was := &p.ops[oi], &old.ops[o.ops[j]]
			if n.kind != was.kind || n.obj >= 0 || was.obj >= 0 {
				continue // named objects carry over by name below
			}
			n.ctr, n.lim, n.quota = was.ctr, was.lim, was.quota
		}
	}
	objs := make(map[objKeyT]*objectInfo, len(old.objs))
	for i := range old.objs {
		o := &old.objs[i]
		objs[objKeyT{o.family, o.table, o.name, o.typ}] = o
	}
	for i := range p.objs {
		n := &p.objs[i]
		o := objs[objKeyT{n.family, n.table, n.name, n.typ}]
		if o == nil {
			continue
		}
		if n.ctr != nil && o.ctr != nil {
			n.ctr = o.ctr
		}
		if n.quota != nil && o.quota != nil && n.quotaP == o.quotaP {
			n.quota = o.quota
		}
		if n.lim != nil && o.lim != nil && n.limP == o.limP {
			n.lim = o.lim
		}
		for _, oi := range n.refs {
			op := &p.ops[oi]
			op.ctr, op.quota, op.lim = n.ctr, n.quota, n.lim
		}
	}
}

// RuleStats is one rule of a program and its counters.
type RuleStats struct {
	Family Family
	Table  string
	Chain  string
	Handle uint64
	// Text is the rule as nft lists it.
	Text string
	// Packets and Bytes are those of the rule's first counter statement,
	// an inline counter or a named one (0 if it has none).
	Packets, Bytes uint64
	// Counters are its inline counter statements' values, in order (the
	// "counter packets N bytes M" nft prints in the rule).
	Counters []Counter
	// Quotas are its inline quota statements, in order.
	Quotas []Quota
}

// Rules returns every rule of the program, in the ruleset's order, with
// its counters as they are now (the workers go on counting).
func (p *Program) Rules() []RuleStats {
	out := make([]RuleStats, 0, len(p.rules))
	for i := range p.rules {
		r := &p.rules[i]
		s := RuleStats{Family: r.family, Table: r.table, Chain: r.chain, Handle: r.handle, Text: r.text}
		first := true
		for _, oi := range r.ops {
			o := &p.ops[oi]
			switch {
			case o.kind == opCounter:
				c := Counter{Packets: o.ctr.packets.Load(), Bytes: o.ctr.bytes.Load()}
				if first {
					s.Packets, s.Bytes, first = c.Packets, c.Bytes, false
				}
				if o.obj < 0 {
					s.Counters = append(s.Counters, c)
				}
			case o.kind == opQuota && o.obj < 0:
				s.Quotas = append(s.Quotas, o.quotaState())
			}
		}
		out = append(out, s)
	}
	return out
}

// ObjectStats is a named stateful object of a program and its state.
type ObjectStats struct {
	Family Family
	Table  string
	Name   string
	Type   ObjectType
	// Value is its state as the expression of its kind: *Counter,
	// *Quota (Consumed, and QuotaDepleted once used up) or *Limit.
	Value Expr
}

// Objects returns the program's named counters, quotas and limits.
func (p *Program) Objects() []ObjectStats {
	var out []ObjectStats
	for i := range p.objs {
		o := &p.objs[i]
		s := ObjectStats{Family: o.family, Table: o.table, Name: o.name, Type: o.typ}
		switch {
		case o.ctr != nil:
			s.Value = &Counter{Packets: o.ctr.packets.Load(), Bytes: o.ctr.bytes.Load()}
		case o.quota != nil:
			q := quotaOf(o.quota, &o.quotaP)
			s.Value = &q
		case o.lim != nil:
			l := *o.limit
			s.Value = &l
		default:
			continue
		}
		out = append(out, s)
	}
	return out
}

// Stages returns one worker's stages: one per hook, each at priority 0
// (after the core's first stages, before the decisions hooks lead to: the
// bridge's FDB lookup, the routing decision). Each runs the base chains of
// its hook in priority order over the packets that hook is for:
//
//	netdev ingress       every received frame: netdev ingress chains of
//	                     its port
//	bridge prerouting    frames of a bridge's ports, before the bridge
//	                     decides: bridge prerouting chains
//	ip prerouting        packets for the router (Routed), before the
//	                     routing decision: ip, ip6 and inet chains
//	ip input             routed packets for the router itself (RouteLocal)
//	ip forward           routed packets forwarded (an output interface)
//	ip output            packets the router sends, routed (Local)
//	ip postrouting       forwarded and sent packets
//	bridge forward       each copy of a bridged frame, with its port
//	bridge postrouting   each copy leaving by a bridge's port, bridged
//	                     or routed into the bridge
//	netdev egress        each copy: netdev egress chains of its port
//
// The first stage (netdev ingress) loads the engine's program once per
// batch, the others use that one: a batch runs one program at every hook,
// so a pipeline must have them all. With no program, or no chain at a
// hook, a stage costs nothing more.
func (e *Engine) Stages() []fastpath.Attached {
	w := &worker{e: e}
	var out []fastpath.Attached
	for h := range fastpath.NumHooks {
		out = append(out, fastpath.At(h, 0, &stage{w: w, hook: h, name: "nft " + h.String()}))
	}
	// The NAT hooks: destination NAT before the filters at prerouting
	// and output (NF_IP_PRI_NAT_DST), source NAT after them at
	// postrouting and input (NF_IP_PRI_NAT_SRC).
	for _, n := range []struct {
		h    fastpath.Hook
		prio int32
	}{{fastpath.HookPrerouting, -100}, {fastpath.HookOutput, -100}, {fastpath.HookInput, 100}, {fastpath.HookPostrouting, 100}} {
		out = append(out, fastpath.At(n.h, n.prio, &natStage{w: w, hook: n.h, manip: nat.HookManip(n.h), name: "nat " + n.h.String()}))
	}
	return out
}

// stage is the rules' stage of one worker at one hook.
type stage struct {
	w    *worker
	hook fastpath.Hook
	name string
}

// Name returns "nft" and the hook ("nft ip forward").
func (s *stage) Name() string { return s.name }

// Process runs the hook's base chains over the packets of b it is for,
// and drops those they drop.
func (s *stage) Process(b *fastpath.Batch, now fastpath.Time) {
	w := s.w
	if s.hook == fastpath.HookIngress {
		w.prog = w.e.cur.Load()
		w.hits.reset()
	}
	p := w.prog
	if p == nil || !p.active[s.hook] {
		return
	}
	c := &w.ctx
	n := b.Len // what a reject emits walks on from the next stage
	for i := range b.Packets[:n] {
		pk := &b.Packets[i]
		if pk.Action != fastpath.ActionContinue {
			continue
		}
		chains := p.selectChains(s.hook, pk, c)
		if len(chains) == 0 {
			continue
		}
		c.b, c.now = b, now
		if !w.runHook(p, chains, c) {
			pk.Drop(dropReasons[s.hook])
		}
		c.pk, c.b = nil, nil
	}
}

// natStage is the NAT core at one hook for one worker
// (nf_nat_inet_fn): for a new connection not yet bound on its side, the
// hook's nat chains run until one binds it; then NAT gives it the null
// binding if none did, and rewrites the packet if its connection is
// translated.
type natStage struct {
	w     *worker
	hook  fastpath.Hook
	manip nat.Manip
	name  string
}

// Name returns "nat" and the hook.
func (s *natStage) Name() string { return s.name }

// Process runs NAT over the tracked IP packets of b the hook is for.
func (s *natStage) Process(b *fastpath.Batch, now fastpath.Time) {
	w := s.w
	p := w.prog
	if p == nil || !p.nat4 && !p.nat6 {
		return
	}
	x := p.env.NAT
	c := &w.ctx
	n := b.Len
	for i := range b.Packets[:n] {
		pk := &b.Packets[i]
		if pk.Action != fastpath.ActionContinue || pk.CtRef == 0 {
			continue
		}
		v6 := pk.EtherType == header.EtherTypeIPv6
		if v6 && !p.nat6 || !v6 && !p.nat4 {
			continue
		}
		chains, ok := p.selectIP(&p.natHooks[s.hook], s.hook, pk, c)
		if !ok {
			continue
		}
		if len(chains) > 0 && x.Unbound(pk, s.manip) {
			c.b, c.now = b, now
			for _, ci := range chains {
				if w.runChain(p, ci, c) == vDrop {
					pk.Drop(dropReasons[s.hook])
					break
				}
				if !x.Unbound(pk, s.manip) {
					break
				}
			}
			c.pk, c.b = nil, nil
			if pk.Action != fastpath.ActionContinue {
				continue
			}
		}
		x.Apply(pk, s.manip, now, b.DryRun)
	}
}

// selectChains returns the base chains hook h runs over pk, and fills c
// for it; nil if h is not for pk.
func (p *Program) selectChains(h fastpath.Hook, pk *fastpath.Packet, c *pktCtx) []int32 {
	hc := &p.hooks[h]
	switch h {
	case fastpath.HookIngress:
		if pk.Local || int(pk.InPort) >= len(hc.port) || len(hc.port[pk.InPort]) == 0 {
			return nil
		}
		p.l2Ctx(c, h, pk, ctxNetdev, p.portDevice(pk.InPort), -1)
		return hc.port[pk.InPort]
	case fastpath.HookEgress:
		if int(pk.OutPort) >= len(hc.port) || len(hc.port[pk.OutPort]) == 0 {
			return nil
		}
		p.l2Ctx(c, h, pk, ctxNetdev, -1, p.portDevice(pk.OutPort))
		return hc.port[pk.OutPort]
	case fastpath.HookBridgePrerouting:
		if pk.Local || pk.Routed || !p.bridged(pk.InPort) {
			return nil
		}
		p.l2Ctx(c, h, pk, ctxBridge, p.portDevice(pk.InPort), -1)
		return hc.br
	case fastpath.HookBridgeForward:
		if pk.Local || pk.Routed || !p.bridged(pk.InPort) {
			return nil
		}
		p.l2Ctx(c, h, pk, ctxBridge, p.portDevice(pk.InPort), p.portDevice(pk.OutPort))
		return hc.br
	case fastpath.HookBridgePostrouting:
		if !p.bridged(pk.OutPort) {
			return nil
		}
		p.l2Ctx(c, h, pk, ctxBridge, -1, p.portDevice(pk.OutPort))
		return hc.br
	}
	chains, _ := p.selectIP(hc, h, pk, c)
	return chains
}

// selectIP returns the chains of hc IP hook h runs over pk, filling c for
// them (only if there are any); ok is false if h is not for pk.
func (p *Program) selectIP(hc *hookChains, h fastpath.Hook, pk *fastpath.Packet, c *pktCtx) (chains []int32, ok bool) {
	if pk.L3Off == 0 || pk.EtherType != header.EtherTypeIPv4 && pk.EtherType != header.EtherTypeIPv6 {
		return nil, false
	}
	var in, out int32 = -1, -1
	switch h {
	case fastpath.HookPrerouting:
		if !pk.Routed || pk.Local || pk.RouteLocal || pk.OutIface != 0 || pk.OuterTPID != 0 || !ipReceived(pk) {
			return nil, false
		}
		in = p.inIface(pk)
	case fastpath.HookInput:
		if !pk.Routed || pk.Local || !pk.RouteLocal {
			return nil, false
		}
		in = p.inIface(pk)
	case fastpath.HookForward:
		if !pk.Routed || pk.Local || pk.RouteLocal || pk.OutIface == 0 {
			return nil, false
		}
		in, out = p.inIface(pk), p.ifaceDevice(pk.OutIface)
	case fastpath.HookOutput:
		if !pk.Local || pk.OutIface == 0 {
			return nil, false
		}
		out = p.ifaceDevice(pk.OutIface)
	case fastpath.HookPostrouting:
		if pk.OutIface == 0 || !(pk.Local || pk.Routed && !pk.RouteLocal) {
			return nil, false
		}
		if !pk.Local {
			in = p.inIface(pk)
		}
		out = p.ifaceDevice(pk.OutIface)
	}
	v6 := pk.EtherType == header.EtherTypeIPv6
	chains = hc.v4
	if v6 {
		chains = hc.v6
	}
	if len(chains) == 0 {
		return nil, true
	}
	p.ipCtx(c, h, pk, v6, in, out)
	return chains, true
}

// ipReceived reports whether the kernel's ip_rcv or ipv6_rcv would let a
// packet for the router reach the prerouting hook: an IPv4 header whose
// checksum verifies; an IPv6 packet from neither a multicast, loopback or
// IPv4-mapped address, to neither loopback nor a node-local multicast
// group. (The router drops the others right after.)
func ipReceived(pk *fastpath.Packet) bool {
	ip := pk.Data[pk.L3Off:pk.L3End]
	if pk.EtherType == header.EtherTypeIPv4 {
		return header.Checksum(ip[:header.IPv4(ip).HeaderLength()], 0) == 0xffff
	}
	src, dst := header.IPv6(ip).Src(), header.IPv6(ip).Dst()
	loop := [16]byte{15: 1}
	mapped := src[10] == 0xff && src[11] == 0xff && [10]byte(src[:10]) == [10]byte{}
	return src[0] != 0xff && src != loop && dst != loop && !mapped && !(dst[0] == 0xff && dst[1]&0xf == 1)
}

func (p *Program) bridged(pt fastpath.PortID) bool {
	return int(pt) < len(p.portBridged) && p.portBridged[pt]
}

func (p *Program) portDevice(pt fastpath.PortID) int32 {
	if int(pt) < len(p.portDev) {
		return p.portDev[pt]
	}
	return -1
}

func (p *Program) ifaceDevice(id uint16) int32 {
	if id != 0 && int(id) <= len(p.ifaceDev) {
		return p.ifaceDev[id-1]
	}
	return -1
}

// inIface returns the device of the router interface a routed packet came
// in on (before the routing decision, the one of its port).
func (p *Program) inIface(pk *fastpath.Packet) int32 {
	id := pk.InIface
	if id == 0 && int(pk.InPort) < len(p.portIface) {
		id = p.portIface[pk.InPort]
	}
	return p.ifaceDevice(id)
}

// ipCtx fills c for a packet at an IP hook, as the kernel's
// nft_set_pktinfo_ipv4 and nft_set_pktinfo_ipv6 see it (the ip layer
// validated the header; the packet ends with its IP packet).
func (p *Program) ipCtx(c *pktCtx, h fastpath.Hook, pk *fastpath.Packet, v6 bool, in, out int32) {
	*c = pktCtx{pk: pk, hook: h, kind: ctxIP, v6: v6, data: pk.Data, end: int(pk.L3End), ll: !pk.Local,
		nh: int(pk.L3Off), in: in, out: out}
	c.skbLen = uint32(c.end - c.nh)
	switch {
	case pk.Local:
		c.pkttype = pktHost
	case pk.Data[0]&1 == 0:
		c.pkttype = pktHost
	case header.MAC(pk.Data[0:6]).IsBroadcast():
		c.pkttype = pktBroadcast
	default:
		c.pkttype = pktMulticast
	}
	if !v6 {
		c.protocol, c.nfproto = header.EtherTypeIPv4, uint8(FamilyIP)
		ip := pk.Data[c.nh:]
		c.l4, c.tprot, c.thoff = true, ip[9], c.nh+int(ip[0]&0xf)*4
		c.fragoff = binary.BigEndian.Uint16(ip[6:]) & 0x1fff
		return
	}
	c.protocol, c.nfproto = header.EtherTypeIPv6, uint8(FamilyIP6)
	c.l4, c.tprot, c.thoff, c.fragoff = findHdr6(c.data, c.nh, c.end)
}

// l2Ctx fills c for a frame at a bridge or netdev hook, as the kernel sees
// it there: the outer VLAN tag out of band (skb_vlan_untag), so the
// network header follows it; skb->len from the network header at ingress
// and the bridge hooks, from the Ethernet header at egress; the IPv4 or
// IPv6 header checked (nft_set_pktinfo_ipv4_validate,
// nft_set_pktinfo_ipv6_validate) before anything is loaded from the
// transport header.
func (p *Program) l2Ctx(c *pktCtx, h fastpath.Hook, pk *fastpath.Packet, kind ctxKind, in, out int32) {
	d := pk.Data
	nh := header.EthernetSize
	if len(d) >= header.EthernetSize+header.VLANTagSize && header.IsVLANTPID(binary.BigEndian.Uint16(d[12:])) {
		nh += header.VLANTagSize
	}
	*c = pktCtx{pk: pk, hook: h, kind: kind, data: d, end: len(d), ll: true, nh: nh, in: in, out: out}
	c.nfproto = uint8(FamilyBridge)
	if kind == ctxNetdev {
		c.nfproto = uint8(FamilyNetdev)
	}
	if h == fastpath.HookEgress {
		c.skbLen = uint32(len(d) - (nh - header.EthernetSize))
	} else {
		c.skbLen = uint32(len(d) - nh)
	}
	et := binary.BigEndian.Uint16(d[nh-2:])
	c.protocol = et
	if et < 0x600 { // an 802.3 length: eth_type_trans's ETH_P_802_3 or ETH_P_802_2
		c.protocol = 4
		if len(d) >= nh+2 && d[nh] == 0xff && d[nh+1] == 0xff {
			c.protocol = 1
		}
	}
	c.pkttype = p.l2PktType(pk, h, in)
	switch et {
	case header.EtherTypeIPv4:
		c.l4, c.tprot, c.thoff, c.fragoff = validate4(d, nh)
	case header.EtherTypeIPv6:
		if len(d) >= nh+header.IPv6Size && d[nh]>>4 == 6 &&
			nh+header.IPv6Size+int(binary.BigEndian.Uint16(d[nh+4:])) <= len(d) {
			c.l4, c.tprot, c.thoff, c.fragoff = findHdr6(d, nh, len(d))
		}
	}
}

// l2PktType classifies a frame as the kernel's eth_type_trans does on its
// port (and br_handle_frame for its bridge's MAC at the bridge hooks).
func (p *Program) l2PktType(pk *fastpath.Packet, h fastpath.Hook, in int32) uint8 {
	d := pk.Data
	switch {
	case pk.Local || pk.Routed:
		return pktHost
	case header.MAC(d[0:6]).IsBroadcast():
		return pktBroadcast
	case d[0]&1 != 0:
		return pktMulticast
	}
	dv := p.portDevice(pk.InPort)
	if dv < 0 {
		return pktOtherHost
	}
	dst := header.MAC(d[0:6])
	dev := &p.devs[dv]
	if dev.hasMAC && dst == dev.mac || h != fastpath.HookIngress && dev.hasBrMAC && dst == dev.brMAC {
		return pktHost
	}
	return pktOtherHost
}

// validate4 is nft_set_pktinfo_ipv4_validate on the IPv4 header at nh of
// frame d.
func validate4(d []byte, nh int) (l4 bool, proto uint8, thoff int, fragoff uint16) {
	if nh+header.IPv4MinSize > len(d) {
		return
	}
	ihl := int(d[nh]&0xf) * 4
	if ihl < header.IPv4MinSize || d[nh]>>4 != 4 {
		return
	}
	tot := int(binary.BigEndian.Uint16(d[nh+2:]))
	if len(d)-nh < tot || tot < ihl {
		return
	}
	return true, d[nh+9], nh + ihl, binary.BigEndian.Uint16(d[nh+6:]) & 0x1fff
}

// ipv6ExtHdr is the kernel's ipv6_ext_hdr.
func ipv6ExtHdr(nh uint8) bool {
	switch nh {
	case 0, 43, 44, 51, 59, 60:
		return true
	}
	return false
}

// findHdr6 is the kernel's ipv6_find_hdr(skb, &thoff, -1, &fragoff,
// IP6_FH_F_AUTH) on the IPv6 packet at nh of d, which ends at end, as
// nft_set_pktinfo_ipv6 uses it: the transport protocol and header offset
// after the extension headers (stopping at an authentication header); for
// a fragment but the first, the protocol after its fragment header, the
// transport offset left at the network header, and the fragment offset.
// ok is false where the kernel leaves the packet without NFT_PKTINFO_L4PROTO.
func findHdr6(d []byte, nh, end int) (ok bool, proto uint8, thoff int, fragoff uint16) {
	if nh+header.IPv6Size > end {
		return
	}
	start := nh + header.IPv6Size
	next := d[nh+6]
	for {
		if !ipv6ExtHdr(next) || next == 59 {
			return true, next, start, 0
		}
		if start+2 > end {
			return
		}
		var hlen int
		switch next {
		case 44:
			if start+4 > end {
				return
			}
			fo := binary.BigEndian.Uint16(d[start+2:]) &^ 7
			if fo != 0 {
				if n := d[start]; !ipv6ExtHdr(n) || n == 59 {
					return true, n, nh, fo
				}
				return
			}
			hlen = 8
		case 51:
			return true, next, start, 0
		default:
			hlen = (int(d[start+1]) + 1) << 3
		}
		next = d[start]
		start += hlen
	}
}

// String names the engine's program for debugging.
func (e *Engine) String() string {
	p := e.Program()
	if p == nil {
		return "rules: no program"
	}
	return fmt.Sprintf("rules: %d chains, %d rules", len(p.chains), len(p.rules))
}

// quotaOf is a quota's configuration and what it has used so far.
func quotaOf(st *quotaState, p *quotaParams) Quota {
	q := Quota{Bytes: p.bytes, Consumed: st.consumed.Load()}
	if p.invert {
		q.Flags |= QuotaInvert
	}
	if st.depleted.Load() {
		q.Flags |= QuotaDepleted
	}
	return q
}

// quotaState is the quota statement's configuration and use.
func (o *op) quotaState() Quota { return quotaOf(o.quota, o.quotaP) }
