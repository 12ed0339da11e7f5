package nftnl

import (
	"errors"
	"fmt"
	"slices"

	"github.com/xdpfwd/xdpfwd/fastpath/rules"
)

// The decoders below are pure functions of one netlink message's payload
// (struct nfgenmsg, then attributes), so they can be fuzzed.

// header checks the nfgenmsg and returns the family and the attributes.
func header(what string, b []byte) (rules.Family, *attrs, error) {
	if len(b) < nfgenmsgLen {
		return 0, nil, fmt.Errorf("%s: message of %d bytes", what, len(b))
	}
	f := rules.Family(b[0])
	if !f.Valid() {
		return 0, nil, fmt.Errorf("%s: family %d not understood", what, b[0])
	}
	return f, parseAttrs(nil, what, b[nfgenmsgLen:]), nil
}

func decodeTable(b []byte) (*rules.Table, error) {
	f, a, err := header("table", b)
	if err != nil {
		return nil, err
	}
	a.need(tableName)
	t := &rules.Table{Family: f, Name: a.str(tableName), Handle: a.u64(tableHandle),
		Flags: rules.TableFlags(a.flags(tableFlags, 1<<3-1))}
	a.skip(tableUse)
	a.skip(tablePad)
	a.skip(tableUserdata)
	a.skip(tableOwner)
	if err := a.done(); err != nil {
		return nil, fmt.Errorf("table %s %s: %w", f, t.Name, err)
	}
	return t, nil
}

// hookOf maps the kernel's per-family hook number.
func hookOf(f rules.Family, n uint32) (rules.Hook, bool) {
	switch f {
	case rules.FamilyNetdev:
		switch n {
		case 0:
			return rules.HookIngress, true
		case 1:
			return rules.HookEgress, true
		}
	case rules.FamilyARP:
		switch n {
		case 0:
			return rules.HookInput, true
		case 1:
			return rules.HookOutput, true
		case 2:
			return rules.HookForward, true
		}
	default:
		if n <= uint32(rules.HookPostrouting) {
			return rules.Hook(n), true
		}
		if n == 5 && f == rules.FamilyInet {
			return rules.HookIngress, true
		}
	}
	return 0, false
}

// decodeChain returns the chain and its table's name.
func decodeChain(b []byte) (rules.Family, string, *rules.Chain, error) {
	f, a, err := header("chain", b)
	if err != nil {
		return 0, "", nil, err
	}
	a.need(chainTable, chainName)
	table := a.str(chainTable)
	c := &rules.Chain{Name: a.str(chainName), Handle: a.u64(chainHandle), Flags: rules.ChainFlags(a.flags(chainFlags, 1<<3-1))}
	a.nested(chainHook, "hook", func(h *attrs) {
		h.need(hookNum, hookPriority)
		n := h.u32(hookNum)
		hk, ok := hookOf(f, n)
		if !ok {
			h.fail("hook %d not understood for family %s", n, f)
		}
		c.Hook, c.Priority = hk, int32(h.u32(hookPriority))
		// One device comes as NFTA_HOOK_DEV, and in NFTA_HOOK_DEVS too.
		hasDev := h.has(hookDev)
		dev := h.str(hookDev)
		h.nested(hookDevs, "devices", func(d *attrs) {
			for i := range d.as {
				at := &d.as[i]
				if at.Type != deviceName && at.Type != devicePrefix {
					continue
				}
				at.used = true
				name, ok := cstring(at.Data)
				if !ok {
					d.fail("device name not terminated")
				}
				if at.Type == devicePrefix {
					name += "*"
				}
				c.Devices = append(c.Devices, name)
			}
		})
		if hasDev && !slices.Contains(c.Devices, dev) {
			c.Devices = append([]string{dev}, c.Devices...)
		}
	})
	if a.has(chainPolicy) {
		switch p := int32(a.u32(chainPolicy)); p {
		case nfAccept:
			c.Policy = rules.VerdictAccept
		case nfDrop:
			c.Policy = rules.VerdictDrop
		default:
			a.fail("policy %d not understood", p)
		}
	}
	if a.has(chainType) {
		c.Type = rules.ChainType(a.str(chainType))
		switch c.Type {
		case rules.ChainFilter, rules.ChainNAT, rules.ChainRoute:
		default:
			a.fail("type %q not understood", c.Type)
		}
	}
	if c.Base() && (c.Type == "" || c.Policy == rules.VerdictNone) {
		a.fail("base chain without type or policy")
	}
	a.skip(chainUse)
	a.skip(chainCounters)
	a.skip(chainPad)
	a.skip(chainID)
	a.skip(chainUserdata)
	if err := a.done(); err != nil {
		return 0, "", nil, fmt.Errorf("table %s %s, chain %s: %w", f, table, c.Name, err)
	}
	return f, table, c, nil
}

// RuleError is a rule the loader could not decode: an expression or an
// attribute it does not understand. It names the rule by table, chain,
// handle and its text in `nft -a list ruleset`.
type RuleError struct {
	Family rules.Family
	Table  string
	Chain  string
	Handle uint64
	Text   string
	Err    error
}

// Error names the rule and what is not understood.
func (e *RuleError) Error() string {
	text := ""
	if e.Text != "" {
		text = " (" + e.Text + ")"
	}
	return fmt.Sprintf("table %s %s, chain %s, rule handle %d%s: %v", e.Family, e.Table, e.Chain, e.Handle, text, e.Err)
}

// Unwrap returns what went wrong.
func (e *RuleError) Unwrap() error { return e.Err }

// decodeRule returns the rule and its table and chain names. A rule that
// does not decode is a *RuleError (its Text empty: the caller knows it).
func decodeRule(b []byte) (rules.Family, string, string, *rules.Rule, error) {
	f, a, err := header("rule", b)
	if err != nil {
		return 0, "", "", nil, err
	}
	a.need(ruleTable, ruleChain, ruleHandle)
	table, chain := a.str(ruleTable), a.str(ruleChain)
	r := &rules.Rule{Handle: a.u64(ruleHandle), Position: a.u64(rulePosition), UserData: a.bin(ruleUserdata)}
	a.skip(rulePad)
	if a.err == nil {
		if eb, ok := a.get(ruleExpressions); ok {
			r.Exprs, err = decodeExprs(eb)
			if err != nil {
				a.err = err
			}
		}
	}
	if err := a.done(); err != nil {
		var re *RuleError
		if errors.As(err, &re) {
			return 0, "", "", nil, err
		}
		return 0, "", "", nil, &RuleError{Family: f, Table: table, Chain: chain, Handle: r.Handle, Err: err}
	}
	return f, table, chain, r, nil
}

// decodeSet returns the set (without elements) and its table's name.
func decodeSet(b []byte) (rules.Family, string, *rules.Set, error) {
	f, a, err := header("set", b)
	if err != nil {
		return 0, "", nil, err
	}
	a.need(setTable, setName, setKeyLen)
	table := a.str(setTable)
	s := &rules.Set{Name: a.str(setName), Handle: a.u64(setHandle), ID: a.u32(setID),
		Flags: rules.SetFlags(a.flags(setFlags, 1<<9-1)), KeyType: a.u32(setKeyType), KeyLen: a.u32(setKeyLen),
		DataType: a.u32(setDataType), DataLen: a.u32(setDataLen), ObjType: rules.ObjectType(a.u32(setObjType)),
		Policy: a.u32(setPolicy), Timeout: a.u64(setTimeout), GCInterval: a.u32(setGCInterval),
		UserData: a.bin(setUserdata)}
	a.nested(setDesc, "desc", func(d *attrs) {
		s.Size = d.u32(setDescSize)
		d.nested(setDescConcat, "concat", func(c *attrs) {
			for _, fb := range c.all(listElem) {
				fa := parseAttrs(c, "field", fb)
				fa.need(setFieldLen)
				s.FieldLen = append(s.FieldLen, fa.u32(setFieldLen))
				if err := fa.done(); err != nil && c.err == nil {
					c.err = err
				}
			}
		})
	})
	if eb, ok := a.get(setExpr); ok {
		e, err := decodeExpr(eb)
		if err != nil {
			a.fail("%v", err)
		}
		s.Exprs = append(s.Exprs, e)
	}
	if eb, ok := a.get(setExpressions); ok {
		es, err := decodeExprs(eb)
		if err != nil {
			a.fail("%v", err)
		}
		s.Exprs = append(s.Exprs, es...)
	}
	a.skip(setPad)
	a.skip(setType)
	a.skip(setCount)
	if err := a.done(); err != nil {
		return 0, "", nil, fmt.Errorf("table %s %s, set %s: %w", f, table, s.Name, err)
	}
	return f, table, s, nil
}

// decodeSetElems returns the elements of one set-elements message and
// the table and set they belong to.
func decodeSetElems(b []byte) (rules.Family, string, string, []rules.Element, error) {
	f, a, err := header("set elements", b)
	if err != nil {
		return 0, "", "", nil, err
	}
	a.need(elemListTable, elemListSet)
	table, set := a.str(elemListTable), a.str(elemListSet)
	var elems []rules.Element
	a.skip(elemListSetID)
	a.nested(elemListElements, "elements", func(l *attrs) {
		for _, eb := range l.all(listElem) {
			e, err := decodeElem(eb)
			if err != nil {
				l.fail("element %d: %v", len(elems)+1, err)
				return
			}
			elems = append(elems, e)
		}
	})
	if err := a.done(); err != nil {
		return 0, "", "", nil, fmt.Errorf("table %s %s, set %s: %w", f, table, set, err)
	}
	return f, table, set, elems, nil
}

func decodeElem(b []byte) (rules.Element, error) {
	a := parseAttrs(nil, "element", b)
	var e rules.Element
	e.Flags = rules.ElemFlags(a.flags(elemFlags, uint32(rules.ElemIntervalEnd|rules.ElemCatchall)))
	if a.has(elemKey) {
		e.Key = a.data(elemKey)
	} else if e.Flags&rules.ElemCatchall == 0 {
		a.fail("no key")
	}
	if a.has(elemKeyEnd) {
		e.KeyEnd = a.data(elemKeyEnd)
	}
	if a.has(elemData) {
		e.Data, e.Verdict, _ = a.dataOrVerdict(elemData)
	}
	e.ObjRef = a.str(elemObjref)
	e.Timeout, e.Expiration = a.u64(elemTimeout), a.u64(elemExpiration)
	e.UserData = a.bin(elemUserdata)
	if eb, ok := a.get(elemExpr); ok {
		x, err := decodeExpr(eb)
		if err != nil {
			a.fail("%v", err)
		}
		e.Exprs = append(e.Exprs, x)
	}
	if eb, ok := a.get(elemExpressions); ok {
		xs, err := decodeExprs(eb)
		if err != nil {
			a.fail("%v", err)
		}
		e.Exprs = append(e.Exprs, xs...)
	}
	a.skip(elemPad)
	return e, a.done()
}

// objDecoders decode the objects that are also expressions.
var objDecoders = map[rules.ObjectType]func(*attrs) rules.Expr{
	rules.ObjectCounter:   decodeCounter,
	rules.ObjectQuota:     decodeQuota,
	rules.ObjectLimit:     decodeLimit,
	rules.ObjectConnlimit: decodeConnlimit,
}

// decodeObj returns the named object and its table's name.
func decodeObj(b []byte) (rules.Family, string, *rules.Object, error) {
	f, a, err := header("object", b)
	if err != nil {
		return 0, "", nil, err
	}
	a.need(objTable, objName, objType, objData)
	table := a.str(objTable)
	o := &rules.Object{Name: a.str(objName), Handle: a.u64(objHandle), Type: rules.ObjectType(a.u32(objType)),
		UserData: a.bin(objUserdata)}
	dec, ok := objDecoders[o.Type]
	if !ok {
		a.fail("%s object %s not understood", o.Type, o.Name)
		dec = func(*attrs) rules.Expr { return nil }
	}
	a.nested(objData, o.Type.String(), func(d *attrs) { o.Value = dec(d) })
	a.skip(objUse)
	a.skip(objPad)
	if err := a.done(); err != nil {
		return 0, "", nil, fmt.Errorf("table %s %s, object %s: %w", f, table, o.Name, err)
	}
	return f, table, o, nil
}
