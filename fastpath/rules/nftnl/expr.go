package nftnl

import (
	"encoding/binary"
	"fmt"

	"github.com/xdpfwd/xdpfwd/fastpath/rules"
)

// decodeExprs decodes a list of expressions (NFTA_RULE_EXPRESSIONS,
// NFTA_SET_EXPRESSIONS, …): NFTA_LIST_ELEM attributes, each an expression.
func decodeExprs(b []byte) ([]rules.Expr, error) {
	l := parseAttrs(nil, "expressions", b)
	var out []rules.Expr
	for i, eb := range l.all(listElem) {
		e, err := decodeExpr(eb)
		if err != nil {
			return nil, fmt.Errorf("expression %d: %w", i+1, err)
		}
		out = append(out, e)
	}
	return out, l.done()
}

// decodeExpr decodes one expression: NFTA_EXPR_NAME and NFTA_EXPR_DATA.
func decodeExpr(b []byte) (rules.Expr, error) {
	a := parseAttrs(nil, "expression", b)
	a.need(exprName)
	name := a.str(exprName)
	if err := a.err; err != nil {
		return nil, err
	}
	dec, ok := exprDecoders[name]
	if !ok {
		return nil, fmt.Errorf("expression %q not understood", name)
	}
	data, _ := a.get(exprData)
	d := parseAttrs(nil, name, data)
	e := dec(d)
	if err := d.done(); err != nil {
		return nil, err
	}
	return e, a.done()
}

// exprDecoders holds a decoder for each expression this package knows.
// A decoder reads its attributes from a; what it does not read is an
// error (attrs.done).
var exprDecoders map[string]func(a *attrs) rules.Expr

func init() {
	// Assigned in init: dynset decodes nested expressions through it.
	exprDecoders = map[string]func(a *attrs) rules.Expr{
		"payload":   decodePayload,
		"cmp":       decodeCmp,
		"range":     decodeRange,
		"bitwise":   decodeBitwise,
		"byteorder": decodeByteorder,
		"meta":      decodeMeta,
		"lookup":    decodeLookup,
		"immediate": decodeImmediate,
		"counter":   decodeCounter,
		"limit":     decodeLimit,
		"log":       decodeLog,
		"reject":    decodeReject,
		"quota":     decodeQuota,
		"ct":        decodeCt,
		"notrack":   func(*attrs) rules.Expr { return &rules.Notrack{} },
		"nat":       decodeNat,
		"masq":      decodeMasq,
		"redir":     decodeRedir,
		"dynset":    decodeDynset,
		"objref":    decodeObjref,
		"exthdr":    decodeExthdr,
		"fib":       decodeFib,
		"rt":        decodeRt,
		"socket":    decodeSocket,
		"queue":     decodeQueue,
		"hash":      decodeHash,
		"numgen":    decodeNumgen,
		"dup":       decodeDup,
		"fwd":       decodeFwd,
		"connlimit": decodeConnlimit,
		"last":      decodeLast,
		"synproxy":  decodeSynproxy,
		"tproxy":    decodeTproxy,
		"xfrm":      decodeXfrm,
		"osf":       decodeOsf,
	}
}

// flags reads a u32 attribute of flags that must all be in mask.
func (a *attrs) flags(t uint16, mask uint32) uint32 {
	v := a.u32(t)
	if v&^mask != 0 {
		a.fail("attribute %d: flags %#x not understood", t, v&^mask)
	}
	return v
}

// enum reads a u32 attribute that must be below n.
func (a *attrs) enum(t uint16, n uint32) uint32 {
	v := a.u32(t)
	if v >= n {
		a.fail("attribute %d: value %d not understood", t, v)
	}
	return v
}

func decodePayload(a *attrs) rules.Expr {
	a.need(payloadBase, payloadOffset, payloadLen)
	base := rules.PayloadBase(a.enum(payloadBase, uint32(rules.PayloadInner)+1))
	off, n := a.u32(payloadOffset), a.u32(payloadLen)
	if a.has(payloadSReg) {
		return &rules.PayloadSet{Base: base, Offset: off, Len: n, SReg: a.reg(payloadSReg),
			CsumType:   rules.CsumType(a.enum(payloadCsumType, uint32(rules.CsumSCTP)+1)),
			CsumOffset: a.u32(payloadCsumOffset),
			CsumFlags:  rules.CsumFlags(a.flags(payloadCsumFlags, uint32(rules.CsumPseudoHeader)))}
	}
	a.need(payloadDReg)
	return &rules.Payload{Base: base, Offset: off, Len: n, DReg: a.reg(payloadDReg)}
}

func decodeCmp(a *attrs) rules.Expr {
	a.need(cmpSReg, cmpOp, cmpData)
	return &rules.Cmp{SReg: a.reg(cmpSReg), Op: rules.CmpOp(a.enum(cmpOp, uint32(rules.CmpGte)+1)), Data: a.data(cmpData)}
}

func decodeRange(a *attrs) rules.Expr {
	a.need(rangeSReg, rangeOp, rangeFromData, rangeToData)
	return &rules.Range{SReg: a.reg(rangeSReg), Op: rules.RangeOp(a.enum(rangeOp, uint32(rules.RangeNeq)+1)),
		From: a.data(rangeFromData), To: a.data(rangeToData)}
}

func decodeBitwise(a *attrs) rules.Expr {
	a.need(bitwiseSReg, bitwiseDReg, bitwiseLen)
	e := &rules.Bitwise{SReg: a.reg(bitwiseSReg), DReg: a.reg(bitwiseDReg), Len: a.u32(bitwiseLen)}
	if a.has(bitwiseOp) {
		e.Op = rules.BitwiseOp(a.enum(bitwiseOp, uint32(rules.BitwiseXor)+1))
	}
	switch e.Op {
	case rules.BitwiseMaskXor:
		a.need(bitwiseMask, bitwiseXor)
		e.Mask, e.Xor = a.data(bitwiseMask), a.data(bitwiseXor)
	case rules.BitwiseLShift, rules.BitwiseRShift:
		a.need(bitwiseData)
		if d := a.data(bitwiseData); len(d) == 4 {
			e.Shift = binary.NativeEndian.Uint32(d)
		} else if a.err == nil {
			a.fail("shift of %d bytes", len(d))
		}
	default:
		a.need(bitwiseSReg2)
		e.SReg2 = a.reg(bitwiseSReg2)
	}
	return e
}

func decodeByteorder(a *attrs) rules.Expr {
	a.need(byteorderSReg, byteorderDReg, byteorderOp, byteorderLen, byteorderSize)
	return &rules.Byteorder{SReg: a.reg(byteorderSReg), DReg: a.reg(byteorderDReg),
		Op:  rules.ByteorderOp(a.enum(byteorderOp, uint32(rules.ByteorderHton)+1)),
		Len: a.u32(byteorderLen), Size: a.u32(byteorderSize)}
}

func decodeMeta(a *attrs) rules.Expr {
	a.need(metaKey)
	key := rules.MetaKey(a.enum(metaKey, uint32(rules.MetaBriIIFHWAddr)+1))
	if a.has(metaSReg) {
		return &rules.MetaSet{Key: key, SReg: a.reg(metaSReg)}
	}
	a.need(metaDReg)
	return &rules.Meta{Key: key, DReg: a.reg(metaDReg)}
}

func decodeLookup(a *attrs) rules.Expr {
	a.need(lookupSet, lookupSReg)
	return &rules.Lookup{Set: a.str(lookupSet), SetID: a.u32(lookupSetID), SReg: a.reg(lookupSReg),
		Map: a.has(lookupDReg), DReg: a.reg(lookupDReg),
		Flags: rules.LookupFlags(a.flags(lookupFlags, uint32(rules.LookupInvert)))}
}

func decodeImmediate(a *attrs) rules.Expr {
	a.need(immediateDReg, immediateData)
	e := &rules.Immediate{DReg: a.reg(immediateDReg)}
	v, vd, _ := a.dataOrVerdict(immediateData)
	if (e.DReg == rules.RegVerdict) != (vd.Kind != rules.VerdictNone) {
		a.fail("register %d with data %x, verdict %s", uint32(e.DReg), v, vd)
	}
	e.Data, e.Verdict = v, vd
	return e
}

func decodeCounter(a *attrs) rules.Expr {
	a.need(counterBytes, counterPackets)
	a.skip(counterPad)
	return &rules.Counter{Bytes: a.u64(counterBytes), Packets: a.u64(counterPackets)}
}

func decodeLimit(a *attrs) rules.Expr {
	a.need(limitRate, limitUnit, limitBurst, limitType, limitFlags)
	a.skip(limitPad)
	e := &rules.Limit{Rate: a.u64(limitRate), Unit: a.u64(limitUnit), Burst: a.u32(limitBurst),
		Type:  rules.LimitType(a.enum(limitType, uint32(rules.LimitBytes)+1)),
		Flags: rules.LimitFlags(a.flags(limitFlags, uint32(rules.LimitInvert)))}
	return e
}

func decodeLog(a *attrs) rules.Expr {
	e := &rules.Log{Prefix: a.str(logPrefix)}
	if a.has(logGroup) {
		e.Type = rules.LogNflog
		e.Group, e.Snaplen, e.QThreshold = a.u16(logGroup), a.u32(logSnaplen), a.u16(logQThreshold)
		return e
	}
	a.need(logLevel)
	e.Level, e.Flags = a.u32(logLevel), a.u32(logFlags)
	return e
}

func decodeReject(a *attrs) rules.Expr {
	a.need(rejectType)
	return &rules.Reject{Type: rules.RejectType(a.enum(rejectType, uint32(rules.RejectICMPXUnreach)+1)),
		Code: a.u8(rejectICMPCode)}
}

func decodeQuota(a *attrs) rules.Expr {
	a.need(quotaBytes, quotaFlags)
	a.skip(quotaPad)
	return &rules.Quota{Bytes: a.u64(quotaBytes), Consumed: a.u64(quotaConsumed),
		Flags: rules.QuotaFlags(a.flags(quotaFlags, uint32(rules.QuotaInvert|rules.QuotaDepleted)))}
}

func decodeCt(a *attrs) rules.Expr {
	a.need(ctKey)
	key := rules.CtKey(a.enum(ctKey, uint32(rules.CtID)+1))
	var dir rules.CtDir
	if a.has(ctDirection) {
		d := a.u8(ctDirection)
		if d > 1 {
			a.fail("direction %d not understood", d)
		}
		dir = rules.CtDirOriginal + rules.CtDir(d)
	}
	if a.has(ctSReg) {
		return &rules.CtSet{Key: key, Direction: dir, SReg: a.reg(ctSReg)}
	}
	a.need(ctDReg)
	return &rules.Ct{Key: key, Direction: dir, DReg: a.reg(ctDReg)}
}

func decodeNat(a *attrs) rules.Expr {
	a.need(natType, natFamily)
	return &rules.Nat{Type: rules.NatType(a.enum(natType, uint32(rules.NatDNAT)+1)),
		Family:     rules.Family(a.enum(natFamily, 256)),
		RegAddrMin: a.reg(natRegAddrMin), RegAddrMax: a.reg(natRegAddrMax),
		RegProtoMin: a.reg(natRegProtoMin), RegProtoMax: a.reg(natRegProtoMax),
		Flags: rules.NatFlags(a.flags(natFlags, natFlagMask))}
}

// natFlagMask holds the NF_NAT_RANGE_* flags.
const natFlagMask = 1<<7 - 1

func decodeMasq(a *attrs) rules.Expr {
	return &rules.Masq{Flags: rules.NatFlags(a.flags(masqFlags, natFlagMask)),
		RegProtoMin: a.reg(masqRegProtoMin), RegProtoMax: a.reg(masqRegProtoMax)}
}

func decodeRedir(a *attrs) rules.Expr {
	return &rules.Redir{Flags: rules.NatFlags(a.flags(redirFlags, natFlagMask)),
		RegProtoMin: a.reg(redirRegProtoMin), RegProtoMax: a.reg(redirRegProtoMax)}
}

func decodeDynset(a *attrs) rules.Expr {
	a.need(dynsetSetName, dynsetOp, dynsetSRegKey)
	a.skip(dynsetPad)
	e := &rules.Dynset{Set: a.str(dynsetSetName), SetID: a.u32(dynsetSetID),
		Op:      rules.DynsetOp(a.enum(dynsetOp, uint32(rules.DynsetDelete)+1)),
		SRegKey: a.reg(dynsetSRegKey), SRegData: a.reg(dynsetSRegData),
		Timeout: a.u64(dynsetTimeout), Flags: rules.DynsetFlags(a.flags(dynsetFlags, uint32(rules.DynsetInvert|rules.DynsetExpr)))}
	if b, ok := a.get(dynsetExpr); ok {
		x, err := decodeExpr(b)
		if err != nil {
			a.fail("%v", err)
		}
		e.Exprs = append(e.Exprs, x)
	}
	if b, ok := a.get(dynsetExpressions); ok {
		xs, err := decodeExprs(b)
		if err != nil {
			a.fail("%v", err)
		}
		e.Exprs = append(e.Exprs, xs...)
	}
	return e
}

func decodeObjref(a *attrs) rules.Expr {
	if a.has(objrefSetName) {
		a.need(objrefSetSReg)
		return &rules.Objref{Set: a.str(objrefSetName), SetID: a.u32(objrefSetID), SReg: a.reg(objrefSetSReg)}
	}
	a.need(objrefImmType, objrefImmName)
	return &rules.Objref{Type: rules.ObjectType(a.u32(objrefImmType)), Object: a.str(objrefImmName)}
}

func decodeExthdr(a *attrs) rules.Expr {
	a.need(exthdrType, exthdrOffset, exthdrLen)
	e := &rules.Exthdr{Type: a.u8(exthdrType), Offset: a.u32(exthdrOffset), Len: a.u32(exthdrLen),
		Flags: rules.ExthdrFlags(a.flags(exthdrFlags, uint32(rules.ExthdrPresent))), DReg: a.reg(exthdrDReg), SReg: a.reg(exthdrSReg)}
	if a.has(exthdrOp) {
		e.Op = rules.ExthdrOp(a.enum(exthdrOp, uint32(rules.ExthdrDCCP)+1))
	}
	return e
}

func decodeFib(a *attrs) rules.Expr {
	a.need(fibDReg, fibResult, fibFlags)
	r := a.enum(fibResult, uint32(rules.FibResultAddrType)+1)
	if r == 0 {
		a.fail("result 0 not understood")
	}
	return &rules.Fib{DReg: a.reg(fibDReg), Result: rules.FibResult(r), Flags: rules.FibFlags(a.flags(fibFlags, 1<<6-1))}
}

func decodeRt(a *attrs) rules.Expr {
	a.need(rtKey, rtDReg)
	return &rules.Rt{Key: rules.RtKey(a.enum(rtKey, uint32(rules.RtXfrm)+1)), DReg: a.reg(rtDReg)}
}

func decodeSocket(a *attrs) rules.Expr {
	a.need(socketKey, socketDReg)
	return &rules.Socket{Key: rules.SocketKey(a.enum(socketKey, uint32(rules.SocketCgroupv2)+1)),
		DReg: a.reg(socketDReg), Level: a.u32(socketLevel)}
}

func decodeQueue(a *attrs) rules.Expr {
	return &rules.Queue{Num: a.u16(queueNum), Total: a.u16(queueTotal), Flags: a.u16(queueFlags),
		SRegQnum: a.reg(queueSRegQnum)}
}

func decodeHash(a *attrs) rules.Expr {
	a.need(hashDReg, hashModulus)
	return &rules.Hash{Type: rules.HashType(a.enum(hashType, uint32(rules.HashSym)+1)),
		SReg: a.reg(hashSReg), DReg: a.reg(hashDReg), Len: a.u32(hashLen),
		Modulus: a.u32(hashModulus), Seed: a.u32(hashSeed), Offset: a.u32(hashOffset)}
}

func decodeNumgen(a *attrs) rules.Expr {
	a.need(ngDReg, ngModulus, ngType)
	return &rules.Numgen{DReg: a.reg(ngDReg), Modulus: a.u32(ngModulus),
		Type: rules.NumgenType(a.enum(ngType, uint32(rules.NumgenRandom)+1)), Offset: a.u32(ngOffset)}
}

func decodeDup(a *attrs) rules.Expr {
	return &rules.Dup{SRegAddr: a.reg(dupSRegAddr), SRegDev: a.reg(dupSRegDev)}
}

func decodeFwd(a *attrs) rules.Expr {
	return &rules.Fwd{SRegDev: a.reg(fwdSRegDev), SRegAddr: a.reg(fwdSRegAddr),
		NFProto: rules.Family(a.enum(fwdNFProto, 256))}
}

func decodeConnlimit(a *attrs) rules.Expr {
	a.need(connlimitCount)
	return &rules.Connlimit{Count: a.u32(connlimitCount), Flags: a.u32(connlimitFlags)}
}

func decodeLast(a *attrs) rules.Expr {
	a.skip(lastPad)
	return &rules.Last{Set: a.u32(lastSet), Msecs: a.u64(lastMsecs)}
}

func decodeSynproxy(a *attrs) rules.Expr {
	return &rules.Synproxy{MSS: a.u16(synproxyMSS), Wscale: a.u8(synproxyWscale), Flags: a.u32(synproxyFlags)}
}

func decodeTproxy(a *attrs) rules.Expr {
	a.need(tproxyFamily)
	return &rules.Tproxy{Family: rules.Family(a.enum(tproxyFamily, 256)),
		RegAddr: a.reg(tproxyRegAddr), RegPort: a.reg(tproxyRegPort)}
}

func decodeXfrm(a *attrs) rules.Expr {
	a.need(xfrmDReg, xfrmKey)
	return &rules.Xfrm{DReg: a.reg(xfrmDReg), Key: a.u32(xfrmKey), Dir: a.u8(xfrmDir), SPNum: a.u32(xfrmSPNum)}
}

func decodeOsf(a *attrs) rules.Expr {
	a.need(osfDReg)
	return &rules.Osf{DReg: a.reg(osfDReg), TTL: a.u8(osfTTL), Flags: a.u32(osfFlags)}
}
