package rules

import (
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/xdpfwd/xdpfwd/nat"
)

// vkind is a verdict as the interpreter runs it.
type vkind uint8

const (
	vContinue vkind = iota
	vBreak
	vAccept
	vDrop
	vJump
	vGoto
	vReturn
)

// opKind is what one compiled expression does.
type opKind uint8

const (
	opNop opKind = iota
	opPayload
	opLoadFast // a payload load of 1, 2 or 4 aligned bytes of the network or transport header
	opCmp
	opCmpFast // cmp eq or neq of 1 to 4 bytes (the kernel's nft_cmp_fast)
	opRange
	opBitMaskXor
	opBitShl
	opBitShr
	opBitAnd
	opBitOr
	opBitXor
	opByteorder
	opMeta
	opSetMark
	opLookup
	opImmData
	opImmVerdict
	opCounter
	opLimit
	opQuota
	opLog
	opReject
	opCt        // ct KEY [DIR]: sub the key, off the direction (0 none, else dir + 1)
	opCtSetMark // ct mark set
	opNotrack
	opNat // snat, dnat, masquerade, redirect: opExt.nat
)

// op is one expression compiled for the interpreter: registers as byte
// offsets into the data registers, lengths checked, sets and chains
// resolved. What the expressions that decide most rules need (loads,
// comparisons) sits in the op itself, 64 bytes; the rest behind opExt.
type op struct {
	kind opKind
	// sub is the payload base, cmp or range operator, meta key or
	// byteorder size.
	sub uint8
	// fast marks a payload load the kernel runs on its fast path
	// (nft_payload_fast_ops); for a lookup, an inverted one.
	fast              bool
	sreg, sreg2, dreg uint8
	n                 uint16 // length in bytes
	off               uint32 // payload offset; shift
	// mask and val are a short comparison's (opCmpFast): the register's
	// first word, masked to its first n bytes, against val.
	mask, val uint32
	obj       int32 // the named object of an objref, -1 if none
	verdict   cverdict
	data      []byte
	*opExt
}

// opExt holds what few expressions need.
type opExt struct {
	data2  []byte
	set    *cset
	ctr    *counter
	lim    *limitState
	limP   *limitParams
	quota  *quotaState
	quotaP *quotaParams
	rej    *rejectSpec
	prefix string
	nat    *natSpec
}

// natKind is what a compiled nat statement does.
type natKind uint8

const (
	natSNAT natKind = iota
	natDNAT
	natMasq
	natRedir
)

// natSpec is a compiled nat statement: its kind, flags and the registers
// of its range (0xff: absent), as nft_nat, nft_masq and nft_redir keep
// them.
type natSpec struct {
	kind               natKind
	v6                 bool // the addresses' family (snat, dnat)
	flags              nat.Flags
	addrMin, addrMax   uint8
	protoMin, protoMax uint8
	hasAddr, hasProto  bool
}

func (o *op) stateful() bool { return o.kind == opCounter || o.kind == opLimit || o.kind == opQuota }

// ctLen returns the length of what a ct expression loads (nft_ct_get_init),
// or why xdpfwd does not run it.
func ctLen(f Family, e *Ct) (uint32, string) {
	if f == FamilyBridge {
		return 0, "bridged frames are not tracked: the kernel's nf_conntrack_bridge is not in xdpfwd"
	}
	directional := e.Direction != 0
	switch e.Key {
	case CtState, CtStatus, CtMark, CtSecmark, CtExpiration:
		return 4, ""
	case CtDirection, CtL3Protocol, CtProtocol:
		return 1, ""
	case CtProtoSrc, CtProtoDst:
		if !directional {
			return 0, "needs a direction"
		}
		return 2, ""
	case CtZone:
		return 2, ""
	case CtSrc, CtDst:
		if !directional {
			return 0, "needs a direction"
		}
		if f == FamilyIP {
			return 4, ""
		}
		return 16, ""
	case CtSrcIP, CtDstIP:
		return 4, ""
	case CtSrcIP6, CtDstIP6:
		return 16, ""
	case CtPkts, CtBytes, CtAvgPkt:
		return 8, ""
	case CtLabels:
		return 16, ""
	case CtHelper:
		return 16, ""
	}
	return 0, "not a key xdpfwd reads (its value is the kernel's own)"
}

// rejectHow is what reject sends for one IP family.
type rejectHow uint8

const (
	rejectNothing rejectHow = iota // drop only (the kernel's default case)
	rejectICMP
	rejectRST
)

// rejectSpec is a compiled reject: what it sends about an IPv4 and an
// IPv6 packet, and whether it answers at layer 2 (the bridge family).
type rejectSpec struct {
	how4, how6   rejectHow
	code4, code6 uint8
	l2           bool
}

// The kernel's codes for reject with icmpx (nft_reject_icmp_code,
// nft_reject_icmpv6_code): no route, port, host unreachable, admin
// prohibited.
var (
	icmpxCode4 = [4]uint8{0, 3, 1, 13}
	icmpxCode6 = [4]uint8{0, 4, 3, 1}
)

// expr compiles expression e of a rule of chain ci.
func (c *compiler) expr(tc *tableCtx, ci int32, e Expr) (op, error) {
	o := op{obj: -1, opExt: &opExt{}}
	var err error
	switch e := e.(type) {
	case *Payload:
		if e.Base > PayloadInner {
			return o, fmt.Errorf("base %s not understood", e.Base)
		}
		if e.Len > 255 || e.Offset > 0xffff {
			return o, fmt.Errorf("%d bytes at offset %d: beyond the kernel's limits", e.Len, e.Offset)
		}
		o.kind, o.sub, o.n, o.off = opPayload, uint8(e.Base), uint16(e.Len), e.Offset
		if o.dreg, err = regCheck(e.DReg, e.Len, "destination"); err != nil {
			return o, err
		}
		o.fast = (e.Base == PayloadNetwork || e.Base == PayloadTransport) &&
			(e.Len == 1 || e.Len == 2 || e.Len == 4) && e.Offset%e.Len == 0
		if o.fast {
			o.kind = opLoadFast
		}
	case *PayloadSet:
		return o, fmt.Errorf("%w: payload writes (header mangling)", ErrUnsupported)
	case *Cmp:
		if len(e.Data) == 0 || len(e.Data) > 16 || e.Op > CmpGte {
			return o, fmt.Errorf("cmp %s of %d bytes not understood", e.Op, len(e.Data))
		}
		o.kind, o.sub, o.n, o.data = opCmp, uint8(e.Op), uint16(len(e.Data)), e.Data
		if o.sreg, err = regCheck(e.SReg, uint32(len(e.Data)), "source"); err != nil {
			return o, err
		}
		if len(e.Data) <= 4 && (e.Op == CmpEq || e.Op == CmpNeq) {
			var w [4]byte
			copy(w[:], e.Data)
			o.kind, o.val = opCmpFast, binary.NativeEndian.Uint32(w[:])
			clear(w[:])
			for i := range e.Data {
				w[i] = 0xff
			}
			o.mask = binary.NativeEndian.Uint32(w[:])
		}
	case *Range:
		if len(e.From) == 0 || len(e.From) > 16 || len(e.From) != len(e.To) || e.Op > RangeNeq {
			return o, fmt.Errorf("range %s of %d and %d bytes not understood", e.Op, len(e.From), len(e.To))
		}
		o.kind, o.sub, o.n, o.data, o.data2 = opRange, uint8(e.Op), uint16(len(e.From)), e.From, e.To
		o.sreg, err = regCheck(e.SReg, uint32(len(e.From)), "source")
	case *Bitwise:
		return c.bitwise(e)
	case *Byteorder:
		switch {
		case e.Size != 2 && e.Size != 4 && e.Size != 8:
			return o, fmt.Errorf("byteorder of %d-byte values not understood", e.Size)
		case e.Size == 8 && e.Len > 8:
			return o, fmt.Errorf("%w: byteorder of several 8-byte values (the kernel indexes them by 4 bytes)", ErrUnsupported)
		case e.Len > 255 || e.Op > ByteorderHton:
			return o, fmt.Errorf("byteorder %s of %d bytes not understood", e.Op, e.Len)
		}
		o.kind, o.sub, o.n = opByteorder, uint8(e.Size), uint16(e.Len)
		if o.sreg, err = regCheck(e.SReg, e.Len, "source"); err != nil {
			return o, err
		}
		o.dreg, err = regCheck(e.DReg, e.Len, "destination")
	case *Meta:
		n, why := metaLen(tc.t.Family, e.Key)
		if why != "" {
			return o, fmt.Errorf("%w: meta %s (%s)", ErrUnsupported, e.Key, why)
		}
		o.kind, o.sub = opMeta, uint8(e.Key)
		o.dreg, err = regCheck(e.DReg, n, "destination")
	case *MetaSet:
		if e.Key != MetaMark {
			return o, fmt.Errorf("%w: meta %s set (only meta mark set)", ErrUnsupported, e.Key)
		}
		o.kind = opSetMark
		o.sreg, err = regCheck(e.SReg, 4, "source")
	case *Lookup:
		return c.lookup(tc, ci, e)
	case *Immediate:
		if e.DReg == RegVerdict {
			v, err := compileVerdict(e.Verdict, tc.chainOf)
			if err != nil {
				return o, err
			}
			if v.kind == vJump || v.kind == vGoto {
				c.edge(ci, v.chain)
			}
			o.kind, o.verdict = opImmVerdict, v
			return o, nil
		}
		if len(e.Data) == 0 || len(e.Data) > 16 {
			return o, fmt.Errorf("immediate of %d bytes not understood", len(e.Data))
		}
		o.kind, o.data, o.n = opImmData, e.Data, uint16(len(e.Data))
		o.dreg, err = regCheck(e.DReg, uint32(len(e.Data)), "destination")
	case *Counter:
		o.kind, o.ctr = opCounter, &counter{}
		o.ctr.packets.Store(e.Packets)
		o.ctr.bytes.Store(e.Bytes)
	case *Limit:
		lp, why := newLimitParams(e)
		if why != "" {
			return o, errors.New(why)
		}
		o.kind, o.lim, o.limP = opLimit, &limitState{}, &lp
	case *Quota:
		o.kind, o.quota = opQuota, &quotaState{}
		o.quota.consumed.Store(e.Consumed)
		o.quota.depleted.Store(e.Flags&QuotaDepleted != 0)
		o.quotaP = &quotaParams{bytes: e.Bytes, invert: e.Flags&QuotaInvert != 0}
	case *Log:
		if e.Type != LogSyslog {
			return o, fmt.Errorf("%w: log to an nflog group (log group %d)", ErrUnsupported, e.Group)
		}
		o.kind, o.prefix = opLog, e.Prefix
	case *Reject:
		return c.reject(tc, e)
	case *Objref:
		return c.objref(tc, e)
	case *Notrack:
		o.kind = opNotrack
	case *Ct:
		n, why := ctLen(tc.t.Family, e)
		if why != "" {
			return o, fmt.Errorf("%w: ct %s (%s)", ErrUnsupported, e.Key, why)
		}
		o.kind, o.sub, o.off, o.n = opCt, uint8(e.Key), uint32(e.Direction), uint16(n)
		o.dreg, err = regCheck(e.DReg, n, "destination")
	case *CtSet:
		if e.Key != CtMark || e.Direction != 0 {
			return o, fmt.Errorf("%w: ct %s set (only ct mark set)", ErrUnsupported, e.Key)
		}
		if tc.t.Family == FamilyBridge {
			return o, fmt.Errorf("%w: ct in the bridge family (bridged frames are not tracked)", ErrUnsupported)
		}
		o.kind = opCtSetMark
		o.sreg, err = regCheck(e.SReg, 4, "source")
	case *Connlimit:
		return o, fmt.Errorf("%w: ct count (connection limits)", ErrUnsupported)
	case *Nat, *Masq, *Redir:
		return c.natStatement(tc, e)
	case *Dynset:
		return o, fmt.Errorf("%w: sets updated from the packet path (dynset: add, update, delete @set)", ErrUnsupported)
	case *Exthdr:
		return o, fmt.Errorf("%w: IPv6 extension header, IP and TCP option matches (exthdr)", ErrUnsupported)
	case *Fib:
		return o, fmt.Errorf("%w: fib lookups", ErrUnsupported)
	default:
		return o, fmt.Errorf("%w: %s expressions", ErrUnsupported, e.Name())
	}
	return o, err
}

// metaLen returns the bytes a meta key loads, as the kernel's
// nft_meta_get_init validates them, or why the interpreter does not run
// it.
func metaLen(f Family, k MetaKey) (uint32, string) {
	switch k {
	case MetaProtocol, MetaIIFType, MetaOIFType:
		return 2, ""
	case MetaLen, MetaMark, MetaIIF, MetaOIF, MetaNFProto, MetaL4Proto, MetaPktType:
		return 4, ""
	case MetaIIFName, MetaOIFName:
		return 16, ""
	case MetaBriIIFName, MetaBriOIFName:
		if f != FamilyBridge {
			return 0, "the bridge family's alone"
		}
		return 16, ""
	}
	return 0, "not implemented"
}

func (c *compiler) bitwise(e *Bitwise) (op, error) {
	o := op{obj: -1, n: uint16(e.Len), opExt: &opExt{}}
	var err error
	if e.Len > 255 {
		return o, fmt.Errorf("bitwise of %d bytes not understood", e.Len)
	}
	if o.sreg, err = regCheck(e.SReg, e.Len, "source"); err != nil {
		return o, err
	}
	if o.dreg, err = regCheck(e.DReg, e.Len, "destination"); err != nil {
		return o, err
	}
	switch e.Op {
	case BitwiseMaskXor:
		if e.Len > 16 || len(e.Mask) != int(e.Len) || len(e.Xor) != int(e.Len) {
			return o, fmt.Errorf("bitwise of %d bytes with a %d-byte mask and %d-byte xor", e.Len, len(e.Mask), len(e.Xor))
		}
		// Whole words, as the kernel's: mask and xor are zero past Len.
		w := (int(e.Len) + 3) &^ 3
		o.kind = opBitMaskXor
		o.data = append(append(make([]byte, 0, w), e.Mask...), make([]byte, w-int(e.Len))...)
		o.data2 = append(append(make([]byte, 0, w), e.Xor...), make([]byte, w-int(e.Len))...)
	case BitwiseLShift, BitwiseRShift:
		if e.Shift == 0 || e.Shift >= 32 {
			return o, fmt.Errorf("shift by %d bits: the kernel shifts by 1 to 31", e.Shift)
		}
		o.kind, o.off = opBitShl, e.Shift
		if e.Op == BitwiseRShift {
			o.kind = opBitShr
		}
	case BitwiseAnd, BitwiseOr, BitwiseXor:
		if o.sreg2, err = regCheck(e.SReg2, e.Len, "second source"); err != nil {
			return o, err
		}
		o.kind = map[BitwiseOp]opKind{BitwiseAnd: opBitAnd, BitwiseOr: opBitOr, BitwiseXor: opBitXor}[e.Op]
	default:
		return o, fmt.Errorf("bitwise %s not understood", e.Op)
	}
	// Words: the kernel works on DIV_ROUND_UP(len, 4) of them.
	return o, nil
}

func (c *compiler) lookup(tc *tableCtx, ci int32, e *Lookup) (op, error) {
	o := op{obj: -1, kind: opLookup, fast: e.Flags&LookupInvert != 0, opExt: &opExt{}}
	cs := tc.sets[e.Set]
	if cs == nil && e.Set == "" {
		cs = tc.ids[e.SetID]
	}
	if cs == nil {
		return o, fmt.Errorf("no set %q (id %d) in the table", e.Set, e.SetID)
	}
	o.set = cs
	var err error
	if o.sreg, err = regCheck(e.SReg, uint32(cs.klen), "key"); err != nil {
		return o, err
	}
	if !e.Map {
		return o, nil
	}
	switch {
	case !cs.isMap:
		return o, fmt.Errorf("lookup with data in set %s, not a map", cs.name)
	case o.fast:
		return o, errors.New("an inverted lookup in a map")
	case cs.vmap != (e.DReg == RegVerdict):
		return o, fmt.Errorf("lookup into %s in map %s", e.DReg, cs.name)
	}
	o.sub = 1 // copies data
	if cs.vmap {
		o.sub = 2
		for _, v := range cs.verdicts {
			if v.kind == vJump || v.kind == vGoto {
				c.edge(ci, v.chain)
			}
		}
		return o, nil
	}
	o.n = uint16(cs.dlen)
	o.dreg, err = regCheck(e.DReg, uint32(cs.dlen), "destination")
	return o, err
}

func (c *compiler) reject(tc *tableCtx, e *Reject) (op, error) {
	o := op{obj: -1, kind: opReject, opExt: &opExt{}}
	rs := &rejectSpec{}
	if e.Type > RejectICMPXUnreach {
		return o, fmt.Errorf("reject type %s not understood", e.Type)
	}
	if e.Type == RejectICMPXUnreach && e.Code > 3 {
		return o, fmt.Errorf("reject with icmpx code %d not understood", e.Code)
	}
	f := tc.t.Family
	switch f {
	case FamilyNetdev:
		return o, fmt.Errorf("%w: reject in the netdev family", ErrUnsupported)
	case FamilyBridge:
		rs.l2 = true
	}
	switch e.Type {
	case RejectTCPReset:
		rs.how4, rs.how6 = rejectRST, rejectRST
	case RejectICMPUnreach:
		rs.how4, rs.how6 = rejectICMP, rejectICMP
		rs.code4, rs.code6 = e.Code, e.Code
	case RejectICMPXUnreach:
		// The ip and ip6 families' reject sends nothing for icmpx.
		if f == FamilyInet || f == FamilyBridge {
			rs.how4, rs.how6 = rejectICMP, rejectICMP
			rs.code4, rs.code6 = icmpxCode4[e.Code], icmpxCode6[e.Code]
		}
	}
	switch f {
	case FamilyIP:
		rs.how6 = rejectNothing
	case FamilyIP6:
		rs.how4 = rejectNothing
	}
	o.rej = rs
	return o, nil
}

func (c *compiler) objref(tc *tableCtx, e *Objref) (op, error) {
	o := op{obj: -1, opExt: &opExt{}}
	if e.Set != "" {
		return o, fmt.Errorf("%w: object maps (objref by set %s)", ErrUnsupported, e.Set)
	}
	i, ok := tc.objs[objKey(e.Type, e.Object)]
	if !ok {
		return o, fmt.Errorf("no %s object %q in the table", e.Type, e.Object)
	}
	oi := &c.p.objs[i]
	o.obj = int32(i)
	switch e.Type {
	case ObjectCounter:
		o.kind, o.ctr = opCounter, oi.ctr
	case ObjectQuota:
		o.kind, o.quota, o.quotaP = opQuota, oi.quota, &oi.quotaP
	case ObjectLimit:
		o.kind, o.lim, o.limP = opLimit, oi.lim, &oi.limP
	case ObjectConnlimit, ObjectCtHelper, ObjectCtTimeout, ObjectCtExpect:
		return o, fmt.Errorf("%w: %s objects", ErrUnsupported, e.Type)
	default:
		return o, fmt.Errorf("%w: %s objects", ErrUnsupported, e.Type)
	}
	if o.ctr == nil && o.quota == nil && o.lim == nil {
		return o, fmt.Errorf("%s object %q has no state", e.Type, e.Object)
	}
	return o, nil
}

// natStatement compiles snat, dnat, masquerade and redirect (nft_nat,
// nft_masq, nft_redir): a range built from registers at run time, in a
// nat chain of the family.
func (c *compiler) natStatement(tc *tableCtx, e Expr) (op, error) {
	o := op{obj: -1, kind: opNat, opExt: &opExt{}}
	if c.p.env.NAT == nil {
		return o, fmt.Errorf("%s statement: %w", e.Name(), errNeedsNAT)
	}
	s := &natSpec{addrMin: 0xff, addrMax: 0xff, protoMin: 0xff, protoMax: 0xff}
	reg := func(r Register, n uint32, what string) (uint8, error) {
		return regCheck(r, n, what)
	}
	var err error
	protos := func(min, max Register) error {
		if min == 0 {
			return nil
		}
		s.hasProto = true
		if s.protoMin, err = reg(min, 2, "proto min"); err != nil {
			return err
		}
		s.protoMax = s.protoMin
		if max != 0 {
			s.protoMax, err = reg(max, 2, "proto max")
		}
		return err
	}
	switch e := e.(type) {
	case *Nat:
		s.kind, s.flags = natSNAT, nat.Flags(e.Flags)
		if e.Type == NatDNAT {
			s.kind = natDNAT
		}
		var n uint32 = 4
		switch e.Family {
		case FamilyIP:
		case FamilyIP6:
			n, s.v6 = 16, true
		default:
			return o, fmt.Errorf("nat statement of family %s not understood", e.Family)
		}
		if tc.t.Family != FamilyInet && tc.t.Family != e.Family {
			return o, fmt.Errorf("nat statement of family %s in a %s table", e.Family, tc.t.Family)
		}
		if e.RegAddrMin != 0 {
			s.hasAddr = true
			s.flags |= nat.MapIPs
			if s.addrMin, err = reg(e.RegAddrMin, n, "address min"); err != nil {
				return o, err
			}
			s.addrMax = s.addrMin
			if e.RegAddrMax != 0 {
				if s.addrMax, err = reg(e.RegAddrMax, n, "address max"); err != nil {
					return o, err
				}
			}
		}
		if err := protos(e.RegProtoMin, e.RegProtoMax); err != nil {
			return o, err
		}
	case *Masq:
		s.kind, s.flags = natMasq, nat.Flags(e.Flags)
		if err := protos(e.RegProtoMin, e.RegProtoMax); err != nil {
			return o, err
		}
	case *Redir:
		s.kind, s.flags = natRedir, nat.Flags(e.Flags)
		if err := protos(e.RegProtoMin, e.RegProtoMax); err != nil {
			return o, err
		}
	}
	if s.hasProto {
		s.flags |= nat.ProtoSpecified
	}
	o.nat = s
	return o, nil
}
