package rules

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sort"
)

// setKind is how a compiled set finds a key, after the kernel's set
// backends: a hash of exact keys (nft_hash, nft_bitmap), sorted interval
// boundaries (nft_rbtree), or per-field ranges (nft_pipapo, the sets whose
// elements carry their own end, as concatenations with intervals do).
type setKind uint8

const (
	setExact setKind = iota
	setInterval
	setRanges
)

// field is one field of a set key: its offset and length in bytes (a
// concatenation's fields each start on a 4-byte boundary, as registers
// hold them).
type field struct{ off, n int }

// cset is a set or map prepared for lookups from the packet path. It is
// immutable once compiled.
type cset struct {
	name    string
	kind    setKind
	klen    int
	dlen    int  // data length of a data map
	isMap   bool // elements carry data (or verdicts)
	vmap    bool // a verdict map
	exact16 map[[16]byte]int32
	exactS  map[string]int32
	// setInterval: the boundaries, klen bytes each, sorted (an interval's
	// end before a start of the same key), and each one's element (-1
	// for an end).
	bounds    []byte
	boundElem []int32
	// setRanges: each element's start and inclusive end, klen bytes each,
	// compared field by field.
	fields       []field
	starts, ends []byte
	rangeElem    []int32
	// catchall is the catch-all element ("*"), -1 if none.
	catchall int32
	// data holds dlen bytes per element (data maps); verdicts one per
	// element (verdict maps).
	data     []byte
	verdicts []cverdict
	nelems   int
}

// cverdict is a verdict with its chain resolved.
type cverdict struct {
	kind  vkind
	chain int32
}

// lookup returns the element whose key matches key (klen bytes), or -1.
// The catch-all element is not looked at. It allocates nothing.
func (s *cset) lookup(key []byte) int32 {
	switch s.kind {
	case setExact:
		if s.exact16 != nil {
			var k [16]byte
			copy(k[:], key)
			if e, ok := s.exact16[k]; ok {
				return e
			}
			return -1
		}
		if e, ok := s.exactS[string(key)]; ok {
			return e
		}
		return -1
	case setInterval:
		n := len(s.boundElem)
		kl := s.klen
		// The last boundary not above key.
		i := sort.Search(n, func(i int) bool { return bytes.Compare(s.bounds[i*kl:(i+1)*kl], key) > 0 }) - 1
		if i < 0 {
			return -1
		}
		return s.boundElem[i]
	default:
		kl := s.klen
	next:
		for i, e := range s.rangeElem {
			st, en := s.starts[i*kl:(i+1)*kl], s.ends[i*kl:(i+1)*kl]
			for _, f := range s.fields {
				k := key[f.off : f.off+f.n]
				if bytes.Compare(k, st[f.off:f.off+f.n]) < 0 || bytes.Compare(k, en[f.off:f.off+f.n]) > 0 {
					continue next
				}
			}
			return e
		}
		return -1
	}
}

// elemData returns the data of element e of a data map.
func (s *cset) elemData(e int32) []byte {
	return s.data[int(e)*s.dlen : int(e+1)*s.dlen]
}

// compileSet prepares the elements of s for lookups. chain resolves a
// verdict map's jump and goto targets to chain indexes.
func compileSet(f Family, s *Set, chain func(name string) (int32, error)) (*cset, error) {
	if s.Flags&SetTimeout != 0 || s.Timeout != 0 {
		return nil, fmt.Errorf("%w: elements that time out (flags timeout)", ErrUnsupported)
	}
	if s.Flags&(SetExpr|SetEval) != 0 || len(s.Exprs) > 0 {
		return nil, fmt.Errorf("%w: sets updated from the packet path or with expressions on elements (counter, dynamic)", ErrUnsupported)
	}
	if s.Flags&SetObject != 0 {
		return nil, fmt.Errorf("%w: object maps", ErrUnsupported)
	}
	if s.KeyLen == 0 || s.KeyLen > RegDataSize {
		return nil, fmt.Errorf("key length %d: must be 1 to %d", s.KeyLen, RegDataSize)
	}
	cs := &cset{name: s.Name, klen: int(s.KeyLen), isMap: s.Flags&SetMap != 0, vmap: s.VerdictMap(), catchall: -1}
	if cs.isMap && !cs.vmap {
		if s.DataLen == 0 || s.DataLen > 16 {
			return nil, fmt.Errorf("data length %d: must be 1 to 16", s.DataLen)
		}
		cs.dlen = int(s.DataLen)
	}
	fields, err := setFields(s)
	if err != nil {
		return nil, err
	}
	cs.fields = fields
	ranged := slices.ContainsFunc(s.Elements, func(e Element) bool { return e.KeyEnd != nil })
	switch {
	case ranged:
		cs.kind = setRanges
	case s.Flags&SetInterval != 0:
		cs.kind = setInterval
	default:
		cs.kind = setExact
		if cs.klen <= 16 {
			cs.exact16 = make(map[[16]byte]int32, len(s.Elements))
		} else {
			cs.exactS = make(map[string]int32, len(s.Elements))
		}
	}
	type bound struct {
		key  []byte
		end  bool
		elem int32
	}
	var bounds []bound
	for i, e := range s.Elements {
		elem := int32(cs.nelems)
		if e.Flags&ElemCatchall != 0 {
			if e.Flags&ElemIntervalEnd != 0 {
				return nil, fmt.Errorf("element %d: a catch-all element ending an interval", i+1)
			}
			if cs.catchall >= 0 {
				return nil, fmt.Errorf("element %d: a second catch-all element", i+1)
			}
			cs.catchall = elem
		} else {
			if len(e.Key) != cs.klen {
				return nil, fmt.Errorf("element %d: key of %d bytes in a set of %d-byte keys", i+1, len(e.Key), cs.klen)
			}
			if e.KeyEnd != nil && len(e.KeyEnd) != cs.klen {
				return nil, fmt.Errorf("element %d: key end of %d bytes in a set of %d-byte keys", i+1, len(e.KeyEnd), cs.klen)
			}
		}
		if e.Timeout != 0 || e.Expiration != 0 {
			return nil, fmt.Errorf("%w: element %d times out", ErrUnsupported, i+1)
		}
		if len(e.Exprs) > 0 || e.ObjRef != "" {
			return nil, fmt.Errorf("%w: element %d carries expressions or an object", ErrUnsupported, i+1)
		}
		isEnd := e.Flags&ElemIntervalEnd != 0
		if isEnd && cs.kind != setInterval {
			return nil, fmt.Errorf("element %d: an interval end in a set without intervals", i+1)
		}
		if e.Flags&ElemCatchall == 0 {
			switch cs.kind {
			case setExact:
				if cs.exact16 != nil {
					var k [16]byte
					copy(k[:], e.Key)
					cs.exact16[k] = elem
				} else {
					cs.exactS[string(e.Key)] = elem
				}
			case setInterval:
				bounds = append(bounds, bound{key: e.Key, end: isEnd, elem: elem})
			case setRanges:
				end := e.KeyEnd
				if end == nil {
					end = e.Key
				}
				cs.starts = append(cs.starts, e.Key...)
				cs.ends = append(cs.ends, end...)
				cs.rangeElem = append(cs.rangeElem, elem)
			}
		}
		if isEnd {
			continue // an end carries no data and is no element of its own
		}
		if err := cs.addData(f, i, e, chain); err != nil {
			return nil, err
		}
		cs.nelems++
	}
	if cs.kind == setInterval {
		// The kernel's rbtree orders an interval's end before a start of
		// the same key: a key equal to both matches the start.
		slices.SortStableFunc(bounds, func(a, b bound) int {
			if c := bytes.Compare(a.key, b.key); c != 0 {
				return c
			}
			switch {
			case a.end == b.end:
				return 0
			case a.end:
				return -1
			}
			return 1
		})
		for _, b := range bounds {
			cs.bounds = append(cs.bounds, b.key...)
			e := b.elem
			if b.end {
				e = -1
			}
			cs.boundElem = append(cs.boundElem, e)
		}
	}
	return cs, nil
}

// addData records the data or verdict of element i.
func (cs *cset) addData(_ Family, i int, e Element, chain func(string) (int32, error)) error {
	switch {
	case cs.vmap:
		v, err := compileVerdict(e.Verdict, chain)
		if err != nil {
			return fmt.Errorf("element %d: %w", i+1, err)
		}
		cs.verdicts = append(cs.verdicts, v)
	case cs.isMap:
		if len(e.Data) != cs.dlen {
			return fmt.Errorf("element %d: data of %d bytes in a map of %d-byte data", i+1, len(e.Data), cs.dlen)
		}
		cs.data = append(cs.data, e.Data...)
	case e.Data != nil || e.Verdict.Kind != VerdictNone:
		return fmt.Errorf("element %d: data in a set that is not a map", i+1)
	}
	return nil
}

// setFields returns the fields of a set's keys: its concatenation's, each
// on a 4-byte boundary, or one field of the whole key.
func setFields(s *Set) ([]field, error) {
	if len(s.FieldLen) <= 1 {
		return []field{{0, int(s.KeyLen)}}, nil
	}
	var fs []field
	off := 0
	for _, n := range s.FieldLen {
		if n == 0 || n > RegDataSize {
			return nil, fmt.Errorf("concatenation field of %d bytes", n)
		}
		fs = append(fs, field{off, int(n)})
		off += int(n+3) &^ 3
	}
	if off != int(s.KeyLen) {
		return nil, fmt.Errorf("concatenation fields %v take %d bytes, the key %d", s.FieldLen, off, s.KeyLen)
	}
	return fs, nil
}

// compileVerdict resolves a verdict as an immediate or a verdict map
// element gives it.
func compileVerdict(v Verdict, chain func(string) (int32, error)) (cverdict, error) {
	switch v.Kind {
	case VerdictAccept:
		return cverdict{kind: vAccept}, nil
	case VerdictDrop:
		return cverdict{kind: vDrop}, nil
	case VerdictContinue:
		return cverdict{kind: vContinue}, nil
	case VerdictBreak:
		return cverdict{kind: vBreak}, nil
	case VerdictReturn:
		return cverdict{kind: vReturn}, nil
	case VerdictJump, VerdictGoto:
		c, err := chain(v.Chain)
		if err != nil {
			return cverdict{}, err
		}
		k := vJump
		if v.Kind == VerdictGoto {
			k = vGoto
		}
		return cverdict{kind: k, chain: c}, nil
	case VerdictQueue:
		return cverdict{}, fmt.Errorf("%w: verdict queue (to a user-space program)", ErrUnsupported)
	}
	return cverdict{}, errors.New("no verdict")
}
