package rules

import (
	"bytes"
	"encoding/binary"
	"github.com/xdpfwd/xdpfwd/conntrack"
	"github.com/xdpfwd/xdpfwd/nat"

	"github.com/xdpfwd/xdpfwd/fastpath"
)

// The reference interpreter: nf_tables' nft_do_chain, expression by
// expression, on the registers as the kernel lays them out (sixteen 4-byte
// registers overlaid on four 16-byte ones, in host byte order where the
// kernel keeps host order; the verdict apart).

// ctxKind is the kind of hook a packet is evaluated at.
type ctxKind uint8

const (
	ctxIP ctxKind = iota
	ctxBridge
	ctxNetdev
)

// The kernel's packet types (PACKET_*).
const (
	pktHost      = 0
	pktBroadcast = 1
	pktMulticast = 2
	pktOtherHost = 3
)

// ARPHRD_ETHER: every device of xdpfwd is an Ethernet device.
const arphrdEther = 1

// pktCtx is what the kernel's nft_pktinfo and sk_buff tell expressions
// about a packet at one hook, in frame offsets: where the headers are,
// how long the packet is as the kernel counts it, which devices it came
// in on and leaves by.
type pktCtx struct {
	pk   *fastpath.Packet
	b    *fastpath.Batch
	now  fastpath.Time
	hook fastpath.Hook
	kind ctxKind
	v6   bool // ctxIP: an IPv6 packet
	// data is the frame; payload loads read data[:end] (the kernel's
	// skb: an IP hook's packet ends with its IP packet).
	data []byte
	end  int
	// ll: the link-layer header is there to load (not for what the host
	// itself sends, at the IP hooks).
	ll bool
	nh int
	// l4 is NFT_PKTINFO_L4PROTO: tprot, thoff (a frame offset) and
	// fragoff are set.
	l4       bool
	tprot    uint8
	thoff    int
	fragoff  uint16
	skbLen   uint32 // skb->len
	protocol uint16 // skb->protocol
	nfproto  uint8
	pkttype  uint8
	in, out  int32 // devices, -1 for none
}

// frame is an entry of the jump stack: where to go on at return.
type frame struct {
	chain int32
	rule  int32
}

// worker is one worker's interpreter: its registers, jump stack and
// scratch. Its stages share it; they run on the worker's thread.
type worker struct {
	e    *Engine
	prog *Program // the program of the batch (loaded by the first stage)
	regs [RegDataSize]byte
	v    vkind
	tgt  int32
	st   [jumpStackSize]frame
	ctx  pktCtx
	ipID uint16
	line []byte
	// fv holds the packet's interval of each field of the classifier
	// running, cand the first candidate of each of its parts.
	fv   [maxFields]int32
	cand [maxParts]int32
	// ctEntry is the connection a ct expression reads.
	ctEntry conntrack.Entry
	// hits are what the batch's traced packets met (trace.go).
	hits ruleHits
}

// dryRun reports whether c's packet is in a Simulator's batch: the rules
// decide, but charge no counter, quota or limit, log nothing and set no
// connection mark.
func (c *pktCtx) dryRun() bool { return c.b != nil && c.b.DryRun }

// runHook runs the base chains of one hook over the packet of c, in
// order: accept goes on to the next, drop is final. It reports whether
// the packet is accepted.
func (w *worker) runHook(p *Program, chains []int32, c *pktCtx) bool {
	for _, ci := range chains {
		if w.runChain(p, ci, c) == vDrop {
			return false
		}
	}
	return true
}

// runChain is nft_do_chain: it runs base chain base over the packet of c
// and returns accept or drop.
func (w *worker) runChain(p *Program, base int32, c *pktCtx) vkind {
	w.regs = [RegDataSize]byte{}
	sp := 0
	ci := base
	ri := 0
	for {
		ch := &p.chains[ci]
		w.v = vContinue
		// The classifier of the run of rule ri, if any: k indexes the
		// runs, ready tells that fv holds the packet's fields for run k,
		// interp that the interpreter decides this packet in run k.
		k, ready, interp := 0, false, false
		for ri < len(ch.rules) {
			for k < len(ch.runs) && ch.runs[k].hi <= ri {
				k, ready, interp = k+1, false, false
			}
			if k == len(ch.runs) || ri < ch.runs[k].lo || interp {
				w.evalRule(p, ch.rules[ri].ops, c)
			} else {
				cl := ch.runs[k]
				if !ready {
					if !cl.prepare(w, p, c, &w.fv, &w.cand) {
						interp = true
						continue
					}
					ready = true
				}
				j := cl.next(&w.fv, &w.cand, ri-cl.lo)
				if ri = cl.lo + j; j == cl.nrules {
					continue // none in the run
				}
				w.evalRule(p, ch.rules[ri].ops[cl.resume[j]:], c)
				ready = !cl.marks[j]
			}
			if c.pk.Trace != 0 && w.v != vBreak {
				w.hit(c.pk, ruleHit{rule: int32(ch.rules[ri].info), v: w.v})
			}
			if w.v == vContinue || w.v == vBreak {
				w.v = vContinue
				ri++
				continue
			}
			break
		}
		switch w.v {
		case vAccept, vDrop:
			return w.v
		case vJump:
			if sp >= jumpStackSize {
				return vDrop // the kernel's WARN: Compile bounds the depth
			}
			w.st[sp] = frame{chain: ci, rule: int32(ri + 1)}
			sp++
			ci, ri = w.tgt, 0
			continue
		case vGoto:
			ci, ri = w.tgt, 0
			continue
		}
		// The end of a chain, or return.
		if sp > 0 {
			sp--
			ci, ri = w.st[sp].chain, int(w.st[sp].rule)
			continue
		}
		if c.pk.Trace != 0 {
			w.hit(c.pk, ruleHit{rule: -1, chain: base, v: p.chains[base].policy})
		}
		return p.chains[base].policy
	}
}

// evalRule runs the expressions of one rule until one sets a verdict.
func (w *worker) evalRule(p *Program, ops []op, c *pktCtx) {
	for i := range ops {
		o := &ops[i]
		switch o.kind {
		case opLoadFast:
			if !w.loadFast(o, c) {
				w.v = vBreak
			}
		case opCmpFast:
			if (w.word(int(o.sreg))&o.mask == o.val) != (o.sub == uint8(CmpEq)) {
				w.v = vBreak
			}
		case opPayload:
			if !w.payload(o, c) {
				w.v = vBreak
			}
		case opCmp:
			if !cmpOK(CmpOp(o.sub), bytes.Compare(w.regs[o.sreg:int(o.sreg)+int(o.n)], o.data)) {
				w.v = vBreak
			}
		case opRange:
			r := w.regs[o.sreg : int(o.sreg)+int(o.n)]
			in := bytes.Compare(r, o.data) >= 0 && bytes.Compare(r, o.data2) <= 0
			if in != (RangeOp(o.sub) == RangeEq) {
				w.v = vBreak
			}
		case opBitMaskXor, opBitShl, opBitShr, opBitAnd, opBitOr, opBitXor:
			w.bitwise(o)
		case opByteorder:
			w.byteorder(o)
		case opMeta:
			if !w.meta(p, o, c) {
				w.v = vBreak
			}
		case opSetMark:
			c.pk.Mark = binary.NativeEndian.Uint32(w.regs[o.sreg:])
		case opLookup:
			w.lookup(o)
		case opImmData:
			w.store(o.dreg, o.data)
		case opImmVerdict:
			w.v, w.tgt = o.verdict.kind, o.verdict.chain
		case opCounter:
			if !c.dryRun() {
				o.ctr.add(c.skbLen)
			}
		case opLimit:
			if c.dryRun() && o.lim.peek(o.limP, c.skbLen, int64(c.now)) || !c.dryRun() && o.lim.over(o.limP, c.skbLen, int64(c.now)) {
				w.v = vBreak
			}
		case opQuota:
			if c.dryRun() && o.quota.peek(o.quotaP, c.skbLen) || !c.dryRun() && o.quota.over(o.quotaP, c.skbLen) {
				w.v = vBreak
			}
		case opLog:
			if !c.dryRun() {
				w.log(p, o, c)
			}
		case opReject:
			w.reject(p, o.rej, c)
			w.v = vDrop
		case opCt:
			if !w.ct(p, o, c) {
				w.v = vBreak
			}
		case opCtSetMark:
			if p.env.Conntrack != nil && !c.dryRun() {
				p.env.Conntrack.SetMark(c.pk, binary.NativeEndian.Uint32(w.regs[o.sreg:]))
			}
		case opNat:
			if w.natEval(p, o.nat, c) {
				w.v = vAccept
			} else {
				w.v = vDrop
			}
		case opNotrack:
			// nft_notrack_eval: only a packet conntrack has not seen.
			if c.pk.CtState == 0 {
				c.pk.CtState = uint8(conntrack.StateUntracked)
			}
		}
		if w.v != vContinue {
			return
		}
	}
}

// natEval runs a nat statement (nft_nat_eval, nft_masq_eval,
// nft_redir_eval): the range from the registers, then the binding; it
// returns the statement's verdict, accept or drop.
func (w *worker) natEval(p *Program, s *natSpec, c *pktCtx) bool {
	var r nat.Range
	r.Flags = s.flags
	if s.hasAddr {
		n := 4
		if s.v6 {
			n = 16
		}
		copy(r.MinAddr[:n], w.regs[s.addrMin:])
		copy(r.MaxAddr[:n], w.regs[s.addrMax:])
	}
	if s.hasProto {
		r.MinProto = binary.BigEndian.Uint16(w.regs[s.protoMin:])
		r.MaxProto = binary.BigEndian.Uint16(w.regs[s.protoMax:])
	}
	switch s.kind {
	case natMasq:
		return p.env.NAT.Masquerade(c.pk, &r, c.now)
	case natRedir:
		return p.env.NAT.Redirect(c.pk, &r, c.now)
	case natSNAT:
		return p.env.NAT.Setup(c.pk, &r, nat.Src, c.now)
	}
	return p.env.NAT.Setup(c.pk, &r, nat.Dst, c.now)
}

// ct loads a conntrack key of the packet's connection into the
// registers, as nft_ct_get_eval: false is NFT_BREAK (the packet has no
// connection, or the key has no value for it).
func (w *worker) ct(p *Program, o *op, c *pktCtx) bool {
	d := w.regs[o.dreg:]
	key := CtKey(o.sub)
	if key == CtState {
		st := uint32(c.pk.CtState)
		if st == 0 {
			st = uint32(conntrack.StateInvalid) // no conntrack
		}
		binary.NativeEndian.PutUint32(d, st)
		return true
	}
	if c.pk.CtRef == 0 || p.env.Conntrack == nil {
		return false
	}
	e := &w.ctEntry
	if !p.env.Conntrack.Entry(c.pk, e) {
		return false
	}
	dir := conntrack.Dir(c.pk.CtRef & 1)
	switch key {
	case CtDirection:
		store8(d, uint8(dir))
		return true
	case CtStatus:
		binary.NativeEndian.PutUint32(d, uint32(e.Status))
		return true
	case CtMark:
		binary.NativeEndian.PutUint32(d, e.Mark)
		return true
	case CtSecmark:
		binary.NativeEndian.PutUint32(d, 0)
		return true
	case CtExpiration:
		var ms uint32
		if e.Status&conntrack.StatusConfirmed != 0 && e.Expires > int64(c.now) {
			ms = uint32((e.Expires - int64(c.now)) / 1e6)
		}
		binary.NativeEndian.PutUint32(d, ms)
		return true
	case CtHelper:
		return false // no helpers: the kernel breaks
	case CtLabels:
		clear(d[:16])
		return true
	case CtPkts, CtBytes, CtAvgPkt:
		clear(d[:8]) // accounting off, as nf_conntrack_acct's default
		return true
	case CtL3Protocol:
		if e.Tuple[0].Family == 4 {
			store8(d, 2) // NFPROTO_IPV4
		} else {
			store8(d, 10)
		}
		return true
	case CtProtocol:
		store8(d, e.Tuple[0].Proto)
		return true
	case CtZone:
		store16(d, [2]byte{byte(e.Tuple[0].Zone), byte(e.Tuple[0].Zone >> 8)})
		return true
	}
	t := &e.Tuple[0]
	if o.off == 2 {
		t = &e.Tuple[1]
	}
	v4 := t.Family == 4
	switch key {
	case CtSrc, CtDst:
		a := &t.Src
		if key == CtDst {
			a = &t.Dst
		}
		if v4 {
			copy(d[:4], a[:4])
		} else {
			copy(d[:16], a[:])
		}
	case CtSrcIP, CtDstIP:
		if !v4 {
			return false
		}
		a := &t.Src
		if key == CtDstIP {
			a = &t.Dst
		}
		copy(d[:4], a[:4])
	case CtSrcIP6, CtDstIP6:
		if v4 {
			return false
		}
		a := &t.Src
		if key == CtDstIP6 {
			a = &t.Dst
		}
		copy(d[:16], a[:])
	case CtProtoSrc:
		store16(d, [2]byte{byte(t.SrcPort >> 8), byte(t.SrcPort)})
	case CtProtoDst:
		store16(d, [2]byte{byte(t.DstPort >> 8), byte(t.DstPort)})
	default:
		return false
	}
	return true
}

// cmpOK applies a cmp operator to a memcmp result.
func cmpOK(op CmpOp, d int) bool {
	switch op {
	case CmpEq:
		return d == 0
	case CmpNeq:
		return d != 0
	case CmpLt:
		return d < 0
	case CmpLte:
		return d <= 0
	case CmpGt:
		return d > 0
	}
	return d >= 0
}

// store copies data into the registers at off as nft_data_copy does: the
// last 4-byte word, if partly written, is zeroed first.
func (w *worker) store(off uint8, data []byte) {
	d := w.regs[off:]
	if n := len(data); n%4 != 0 {
		clear(d[n&^3 : n&^3+4])
	}
	copy(d, data)
}

// payload loads o.n bytes of a header into the registers, as
// nft_payload_eval and its fast path: false is NFT_BREAK (a header the
// packet does not have, or a load past its end).
func (w *worker) payload(o *op, c *pktCtx) bool {
	n := int(o.n)
	d := w.regs[o.dreg:]
	if n%4 != 0 {
		clear(d[n&^3 : n&^3+4])
	}
	var at int
	switch PayloadBase(o.sub) {
	case PayloadLL:
		if !c.ll {
			return false
		}
	case PayloadNetwork:
		at = c.nh
	case PayloadTransport:
		// The fast path loads from thoff whatever the fragment offset;
		// the slow one refuses a fragment but the first.
		if !c.l4 || c.fragoff != 0 && !o.fast {
			return false
		}
		at = c.thoff
	default:
		if at = c.inner(); at < 0 {
			return false
		}
	}
	at += int(o.off)
	if at+n > c.end {
		return false
	}
	copy(d[:n], c.data[at:at+n])
	return true
}

// loadFast is a payload load the kernel runs on its fast path
// (nft_payload_fast_eval): 1, 2 or 4 aligned bytes of the network or
// transport header into a zeroed register. From the transport header it
// loads whatever the fragment offset, as that path does; where it fails
// the slow path fails too (zeroing the register first).
func (w *worker) loadFast(o *op, c *pktCtx) bool {
	at, n := c.nh, int(o.n)
	if PayloadBase(o.sub) == PayloadTransport {
		at = c.thoff
	}
	at += int(o.off)
	if PayloadBase(o.sub) == PayloadTransport && !c.l4 || at+n > c.end {
		if n < 4 {
			w.setWord(int(o.dreg), 0)
		}
		return false
	}
	var v uint32
	switch n {
	case 1:
		v = uint32(c.data[at])
	case 2:
		v = uint32(binary.NativeEndian.Uint16(c.data[at:]))
	default:
		v = binary.NativeEndian.Uint32(c.data[at:])
	}
	w.setWord(int(o.dreg), v)
	return true
}

// inner returns the offset of the inner header, after the transport
// header (nft_payload_inner_offset), or -1.
func (c *pktCtx) inner() int {
	if !c.l4 || c.fragoff != 0 {
		return -1
	}
	th := c.thoff
	switch c.tprot {
	case 17: // UDP
		return th + 8
	case 6: // TCP
		if th+20 > c.end {
			return -1
		}
		return th + int(c.data[th+12]>>4)*4
	case 47: // GRE, version 0
		if th+4 > c.end {
			return -1
		}
		f := binary.BigEndian.Uint16(c.data[th:])
		if f&7 != 0 || f&0x4000 != 0 {
			return -1
		}
		off := 4
		for _, bit := range [...]uint16{0x8000, 0x2000, 0x1000} { // checksum, key, sequence
			if f&bit != 0 {
				off += 4
			}
		}
		return th + off
	case 4: // IPIP
		return th
	}
	return -1
}

func (w *worker) word(off int) uint32 { return binary.NativeEndian.Uint32(w.regs[off:]) }

func (w *worker) setWord(off int, v uint32) { binary.NativeEndian.PutUint32(w.regs[off:], v) }

// bitwise is nft_bitwise_eval: word by word, in the kernel's order, so
// that overlapping registers give what they give in the kernel.
func (w *worker) bitwise(o *op) {
	words := (int(o.n) + 3) / 4
	s, s2, d := int(o.sreg), int(o.sreg2), int(o.dreg)
	switch o.kind {
	case opBitMaskXor:
		for i := range words {
			m := binary.NativeEndian.Uint32(o.data[4*i:])
			x := binary.NativeEndian.Uint32(o.data2[4*i:])
			w.setWord(d+4*i, w.word(s+4*i)&m^x)
		}
	case opBitShl:
		sh := o.off
		var carry uint32
		for i := words; i > 0; i-- {
			w.setWord(d+4*(i-1), w.word(s+4*(i-1))<<sh|carry)
			carry = w.word(s+4*(i-1)) >> (32 - sh)
		}
	case opBitShr:
		sh := o.off
		var carry uint32
		for i := range words {
			w.setWord(d+4*i, carry|w.word(s+4*i)>>sh)
			carry = w.word(s+4*i) << (32 - sh)
		}
	case opBitAnd:
		for i := range words {
			w.setWord(d+4*i, w.word(s+4*i)&w.word(s2+4*i))
		}
	case opBitOr:
		for i := range words {
			w.setWord(d+4*i, w.word(s+4*i)|w.word(s2+4*i))
		}
	case opBitXor:
		for i := range words {
			w.setWord(d+4*i, w.word(s+4*i)^w.word(s2+4*i))
		}
	}
}

// byteorder is nft_byteorder_eval on a little-endian host: both
// directions swap each value's bytes.
func (w *worker) byteorder(o *op) {
	s, d, n := int(o.sreg), int(o.dreg), int(o.n)
	r := w.regs[:]
	switch o.sub {
	case 2:
		for i := range n / 2 {
			binary.BigEndian.PutUint16(r[d+2*i:], binary.LittleEndian.Uint16(r[s+2*i:]))
		}
	case 4:
		for i := range n / 4 {
			binary.BigEndian.PutUint32(r[d+4*i:], binary.LittleEndian.Uint32(r[s+4*i:]))
		}
	case 8:
		for i := range n / 8 {
			binary.BigEndian.PutUint64(r[d+8*i:], binary.LittleEndian.Uint64(r[s+4*i:]))
		}
	}
}

// store8 and store16 are nft_reg_store8 and nft_reg_store16: the 4-byte
// register zeroed, then the value at its start.
func store8(d []byte, v uint8) {
	binary.NativeEndian.PutUint32(d, 0)
	d[0] = v
}

func store16(d []byte, v [2]byte) {
	binary.NativeEndian.PutUint32(d, 0)
	d[0], d[1] = v[0], v[1]
}

// meta is nft_meta_get_eval for the keys the interpreter runs; false is
// NFT_BREAK.
func (w *worker) meta(p *Program, o *op, c *pktCtx) bool {
	d := w.regs[o.dreg:]
	switch MetaKey(o.sub) {
	case MetaLen:
		binary.NativeEndian.PutUint32(d, c.skbLen)
	case MetaProtocol:
		store16(d, [2]byte{byte(c.protocol >> 8), byte(c.protocol)})
	case MetaNFProto:
		store8(d, c.nfproto)
	case MetaL4Proto:
		if !c.l4 {
			return false
		}
		store8(d, c.tprot)
	case MetaMark:
		binary.NativeEndian.PutUint32(d, c.pk.Mark)
	case MetaIIF, MetaOIF:
		var idx uint32
		if dv := c.dev(MetaKey(o.sub) == MetaOIF); dv >= 0 {
			idx = p.devs[dv].ifindex
		}
		binary.NativeEndian.PutUint32(d, idx)
	case MetaIIFName, MetaOIFName:
		if dv := c.dev(MetaKey(o.sub) == MetaOIFName); dv >= 0 {
			copy(d[:16], p.devs[dv].name[:])
		} else {
			clear(d[:16])
		}
	case MetaIIFType, MetaOIFType:
		if c.dev(MetaKey(o.sub) == MetaOIFType) < 0 {
			return false
		}
		var v [2]byte
		binary.NativeEndian.PutUint16(v[:], arphrdEther)
		store16(d, v)
	case MetaPktType:
		store8(d, c.pkttype)
	case MetaBriIIFName, MetaBriOIFName:
		if dv := c.dev(MetaKey(o.sub) == MetaBriOIFName); dv >= 0 {
			copy(d[:16], p.devs[dv].bridge[:])
		} else {
			clear(d[:16])
		}
	}
	return true
}

// dev returns the device the packet leaves by (out) or came in on.
func (c *pktCtx) dev(out bool) int32 {
	if out {
		return c.out
	}
	return c.in
}

// lookup is nft_lookup_eval: a key not found (found, with invert) falls
// back on the catch-all element, or breaks the rule; a map's element
// gives its data, a verdict map's its verdict.
func (w *worker) lookup(o *op) {
	s := o.set
	hit := s.lookup(w.regs[o.sreg : int(o.sreg)+s.klen])
	inv := o.fast
	e := int32(-1)
	switch {
	case (hit >= 0) != inv:
		if !inv {
			e = hit
		}
	case s.catchall >= 0:
		e = s.catchall
	default:
		w.v = vBreak
		return
	}
	if e < 0 {
		return
	}
	switch o.sub {
	case 1:
		w.store(o.dreg, s.elemData(e))
	case 2:
		v := s.verdicts[e]
		w.v, w.tgt = v.kind, v.chain
	}
}
