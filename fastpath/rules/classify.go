package rules

import (
	"encoding/binary"
	"math/bits"
	"slices"
	"sort"
)

// The fast classifier: a bit-vector classifier (Lakshman and Stiliadis)
// per chain (or per run of its rules), over the conditions that start its
// rules.
//
// A rule's conditions are the matches its first expressions make on
// packet fields (a payload or meta load, optionally through a bitwise
// mask, compared with cmp, range, or looked up in a set): a prefix of
// pure expressions, which either all pass or break the rule with no
// effect. Each distinct field (a payload base and offset, or a meta key;
// byte-aligned prefixes of different lengths are one field; a non-prefix
// mask makes its own) has the sorted boundaries of the intervals the
// conditions on it name, found by a bucket table and a short search, and
// each elementary interval, plus one for a failed load, the bitmap of the
// rules it satisfies (a rule with no condition on the field everywhere
// but at a failed load). A packet's bitmaps, ANDed word by word where the
// summary words (one bit per 64-rule word) of every field agree, give its
// candidate rules in order. The rules are split into parts by the fields
// they match narrowly, so that rules of other shapes, which hold every
// value of those fields, do not make every word a candidate; the first
// candidate is the first of the parts'. The interpreter runs each
// candidate from the end of its conditions (or from its start if what
// follows reads registers they wrote), exactly as it would have run the
// whole rule, and the search goes on after it while the verdict is
// continue. A rule whose conditions the classifier does not hold is a
// candidate for every packet, run by the interpreter in order. A packet
// for which a field's loads fail for some conditions and not others (a
// packet cut short inside the bytes they load) is left to the
// interpreter. A set's elements are copied into the bitmaps: a set that
// changed would need its chains' classifiers rebuilt.
//
// Skipping a rule skips its register writes: the classifier is used only
// if every rule of the program reads registers its own earlier
// expressions wrote (as nft's rules do), so that no rule sees what another
// left there.

// maxFields bounds the fields of one chain's classifier: conditions on
// further fields are left to the interpreter.
const maxFields = 32

// maxEntries bounds the sparse bitmap entries of one classifier: rules
// whose conditions would need more (ranges that overlap, most of them
// each other) are split into runs of consecutive rules, a classifier
// each; chainEntries bounds them in one chain, and a run of fewer than
// minRun rules that still needs too many is left to the interpreter.
// Variables for the tests.
var (
	maxEntries   = 1 << 20
	chainEntries = 1 << 23
	minRun       = 64
)

// classifier is the classifier of a run of consecutive rules of a chain,
// lo to hi (exclusive); its rule numbers count from lo.
//
// Its rules are split into parts by shape: the fields on which a rule's
// conditions are narrow (hold for at most half the field's intervals).
// Within a part those fields hold no rule everywhere, so that their
// bitmaps, ANDed, are sparse even where rules of other shapes interleave;
// the first candidate of the run is the first of its parts'.
type classifier struct {
	lo, hi int
	nrules int
	fields []cfield
	parts  []cpart
	// resume is, per rule, the index of its first op to run once the
	// classifier has found its conditions true.
	resume []int32
	// marks tells the rules that set the mark (a field value may change).
	marks []bool
	// conds counts the rules with a condition the classifier holds.
	conds int
}

// maxParts bounds the parts of a classifier: the rules of the rarest
// shapes share one. A run of fewer than minParted rules (a variable for
// the tests) is one part.
const maxParts = 8

var minParted = 512

// cpart is a part of a classifier: some of its rules, in order, and the
// bitmaps of the fields they test.
type cpart struct {
	rules  []int32 // the classifier's rule numbers
	nwords int     // 64-rule words
	nsum   int     // summary words
	bms    []bitmap
}

// cfield is a field of a classifier: where its value comes from, and the
// elementary intervals of its values.
type cfield struct {
	// The value: n bytes from off of a payload base (meta false), or of
	// the register a meta key loads (metaOp); through mask and xor if
	// masked.
	meta   bool
	sub    uint8 // payload base or meta key
	fast   bool  // a transport load of the kernel's fast path (loads in fragments)
	masked bool
	off    int
	n      int
	// minNeed and maxNeed are the bytes from off the loads of the
	// field's conditions need: a packet with fewer than maxNeed but at
	// least minNeed (a load that fails for some conditions only) is left
	// to the interpreter.
	minNeed, maxNeed int

	// b64 are the starts of the elementary intervals, b64[0] 0, for
	// fields of at most 8 bytes; bounds the same as u128s.
	b64 []uint64
	// The bucket table: for v in [bounds[1], bounds[last]], bucket
	// (v-bounds[1])>>shift holds the intervals from start[b] to
	// start[b+1].
	shift uint
	start []int32

	bounds    []u128
	mask, xor *[16]byte
	metaOp    *op
}

// bitmap is, for one field and the rules of a part, the rules each of
// the field's intervals satisfies. The bitmap of interval e
// (len(bounds) for a failed load) is (base | add[e]) &^ del[e]; add and
// del are sparse: a summary bit per word present (addSum[e*nsum+sw]),
// and the index in addW of the first present word of each summary word
// (addCum[e*nsum+sw]).
type bitmap struct {
	f int // the field
	// empty has a bit per interval whose bitmap is all zeros (no rule of
	// the part in base, none added).
	empty   []uint64
	base    []uint64
	sumBase []uint64
	addSum  []uint64
	addCum  []int32
	addW    []uint64
	delSum  []uint64
	delCum  []int32
	delW    []uint64
}

// fieldKey identifies a field.
type fieldKey struct {
	meta   bool
	sub    uint8
	fast   bool
	off    int
	masked bool
	n      int // masked fields only
	mask   [16]byte
	xor    [16]byte
}

// cond is one condition of a rule: the values of the field's first m
// bytes it accepts.
type cond struct {
	key  fieldKey
	m    int
	need int // payload: bytes from off its load needs
	set  ivset
	op   int // its load's op index
}

// tracked is a value a load left in the registers, while the conditions
// of a rule are read.
type tracked struct {
	reg, n int // where, how many meaningful bytes
	key    fieldKey
	loadN  int // payload: bytes loaded from key.off
	prefix bool
	pmask  u128
	ops    [2]int // the load and the bitwise op, -1 if none
}

// ruleConds reads the conditions at the start of a rule's ops, and where
// the interpreter must resume once they hold.
func ruleConds(ops []op) ([]cond, int) {
	var trk []tracked
	consumed := make([]bool, len(ops))
	var conds []cond
	kill := func(from, to int) {
		trk = slices.DeleteFunc(trk, func(t tracked) bool { return t.reg < to && from < t.reg+t.n })
	}
	end := len(ops)
walk:
	for i := range ops {
		o := &ops[i]
		switch o.kind {
		case opPayload, opLoadFast:
			n := int(o.n)
			kill(int(o.dreg), int(o.dreg)+(n+3)&^3)
			if PayloadBase(o.sub) > PayloadInner {
				end = i
				break walk
			}
			k := fieldKey{sub: o.sub, fast: o.kind == opLoadFast && PayloadBase(o.sub) == PayloadTransport, off: int(o.off)}
			trk = append(trk, tracked{reg: int(o.dreg), n: n, key: k, loadN: n, ops: [2]int{i, -1}})
		case opMeta:
			n, _ := metaLen(FamilyInet, MetaKey(o.sub))
			if n == 0 {
				n = 16 // the bridge family's keys
			}
			kill(int(o.dreg), int(o.dreg)+int(n))
			trk = append(trk, tracked{reg: int(o.dreg), n: int(n), key: fieldKey{meta: true, sub: o.sub}, ops: [2]int{i, -1}})
		case opBitMaskXor:
			n := int(o.n)
			j := slices.IndexFunc(trk, func(t tracked) bool { return t.reg == int(o.sreg) })
			if j < 0 || trk[j].key.masked || trk[j].prefix || n > trk[j].n || n > 16 {
				end = i
				break walk
			}
			t := trk[j]
			t.reg, t.n, t.ops[1] = int(o.dreg), n, i
			mask, xor := beU128(o.data[:n]), beU128(o.data2[:n])
			if xor == (u128{}) && prefixMask(mask, n) {
				t.prefix, t.pmask = true, mask
			} else {
				t.key.masked, t.key.n = true, n
				copy(t.key.mask[:], o.data[:n])
				copy(t.key.xor[:], o.data2[:n])
			}
			kill(int(o.dreg), int(o.dreg)+(n+3)&^3)
			trk = append(trk, t)
		case opCmp, opCmpFast, opRange, opLookup:
			m := int(o.n)
			if o.kind == opLookup {
				if o.sub != 0 {
					end = i
					break walk
				}
				m = o.set.klen
			}
			s := int(o.sreg)
			j := slices.IndexFunc(trk, func(t tracked) bool { return t.reg <= s && s+m <= t.reg+t.n })
			if j < 0 || m > 16 {
				end = i
				break walk
			}
			t := trk[j]
			win := s - t.reg
			if (t.key.masked || t.prefix) && (win != 0 || m != t.n) {
				end = i
				break walk
			}
			set, ok := opSet(o, m)
			if !ok {
				end = i
				break walk
			}
			c := cond{key: t.key, m: m, set: set, op: t.ops[0]}
			if t.prefix {
				c.set = set.unmask(t.pmask, m)
			}
			if !t.key.masked {
				c.key.off += win
			}
			if !t.key.meta {
				c.need = t.loadN - win
			}
			conds = append(conds, c)
			consumed[i] = true
			for _, k := range t.ops {
				if k >= 0 {
					consumed[k] = true
				}
			}
		default:
			end = i
			break walk
		}
	}
	resume := end
	if i := slices.Index(consumed[:end], false); i >= 0 {
		resume = i
	}
	return conds, resume
}

// opSet returns the m-byte values a comparison, range or set lookup
// accepts.
func opSet(o *op, m int) (ivset, bool) {
	max := maxOf(m)
	all := ivset{{u128{}, max}}
	switch o.kind {
	case opCmp, opCmpFast:
		c := beU128(o.data)
		var s ivset
		switch CmpOp(o.sub) {
		case CmpEq:
			s = ivset{{c, c}}
		case CmpNeq:
			s = ivset{{c, c}}.complement(max)
		case CmpLt:
			if c == (u128{}) {
				return nil, true
			}
			s = ivset{{u128{}, c.sub1()}}
		case CmpLte:
			s = ivset{{u128{}, c}}
		case CmpGt:
			if c == max {
				return nil, true
			}
			s = ivset{{c.add1(), max}}
		default:
			s = ivset{{c, max}}
		}
		return s, true
	case opRange:
		a, b := beU128(o.data), beU128(o.data2)
		var s ivset
		if !b.less(a) {
			s = ivset{{a, b}}
		}
		if RangeOp(o.sub) == RangeNeq {
			s = s.complement(max)
		}
		return s, true
	}
	cs := o.set
	if cs.klen != m {
		return nil, false
	}
	if cs.catchall >= 0 {
		return all, true
	}
	var s ivset
	switch cs.kind {
	case setExact:
		if cs.exact16 == nil {
			return nil, false
		}
		for k := range cs.exact16 {
			v := beU128(k[:m])
			s = append(s, ival{v, v})
		}
	case setInterval:
		n := len(cs.boundElem)
		for i := 0; i < n; i++ {
			key := cs.bounds[i*m : (i+1)*m]
			// Of equal keys the last counts (an end before a start).
			for i+1 < n && string(cs.bounds[(i+1)*m:(i+2)*m]) == string(key) {
				i++
			}
			if cs.boundElem[i] < 0 {
				continue
			}
			lo, hi := beU128(key), max
			if i+1 < n {
				hi = beU128(cs.bounds[(i+1)*m : (i+2)*m]).sub1()
			}
			s = append(s, ival{lo, hi})
		}
	default:
		if len(cs.fields) != 1 {
			return nil, false
		}
		for i := range cs.rangeElem {
			a, b := beU128(cs.starts[i*m:(i+1)*m]), beU128(cs.ends[i*m:(i+1)*m])
			if !b.less(a) {
				s = append(s, ival{a, b})
			}
		}
	}
	s = s.normalize()
	if o.fast { // inverted
		s = s.complement(max)
	}
	return s, true
}

// selfContained reports whether every register byte the ops read was
// written by an earlier one of them.
func selfContained(ops []op) bool {
	var w uint64 // bytes written
	rng := func(from, n int) uint64 {
		if n <= 0 {
			return 0
		}
		to := min(from+n, RegDataSize)
		if to-from >= 64 {
			return ^uint64(0)
		}
		return (uint64(1)<<(to-from) - 1) << from
	}
	for i := range ops {
		o := &ops[i]
		var r, wr uint64
		n := int(o.n)
		words := (n + 3) &^ 3
		switch o.kind {
		case opPayload:
			wr = rng(int(o.dreg), words)
		case opLoadFast:
			wr = rng(int(o.dreg), 4)
		case opMeta:
			l, _ := metaLen(FamilyBridge, MetaKey(o.sub))
			wr = rng(int(o.dreg), int(l))
		case opBitMaskXor, opBitShl, opBitShr:
			r, wr = rng(int(o.sreg), words), rng(int(o.dreg), words)
		case opBitAnd, opBitOr, opBitXor:
			r, wr = rng(int(o.sreg), words)|rng(int(o.sreg2), words), rng(int(o.dreg), words)
		case opByteorder:
			sz := int(o.sub)
			r, wr = rng(int(o.sreg), max(n, sz*(n/sz))), rng(int(o.dreg), sz*(n/sz))
			if sz == 8 {
				r = rng(int(o.sreg), 8*((n+7)/8))
			}
		case opCmp, opCmpFast, opRange:
			r = rng(int(o.sreg), n)
		case opSetMark, opCtSetMark:
			r = rng(int(o.sreg), 4)
		case opCt:
			wr = rng(int(o.dreg), words)
		case opLookup:
			r = rng(int(o.sreg), o.set.klen)
			if o.sub == 1 {
				wr = rng(int(o.dreg), (o.set.dlen+3)&^3)
			}
		case opImmData:
			wr = rng(int(o.dreg), words)
		}
		if r&^w != 0 {
			return false
		}
		w |= wr
	}
	return true
}

// buildClassifiers gives every chain that has conditions a classifier, if
// every rule of the program is self-contained.
func (p *Program) buildClassifiers() {
	for i := range p.chains {
		for _, r := range p.chains[i].rules {
			if !selfContained(r.ops) {
				return
			}
		}
	}
	for i := range p.chains {
		budget := chainEntries
		p.chains[i].runs = buildRuns(p.chains[i].rules, 0, &budget)
	}
}

// buildRuns returns the classifiers of rules (the first numbered lo),
// split into runs where one would take more than maxEntries, within
// budget.
func buildRuns(rules []crule, lo int, budget *int) []*classifier {
	b := min(maxEntries, *budget)
	cl, ok := buildClassifier(rules, &b)
	switch {
	case ok:
		if cl == nil {
			return nil
		}
		*budget -= min(maxEntries, *budget) - b
		cl.lo, cl.hi = lo, lo+len(rules)
		return []*classifier{cl}
	case len(rules) < 2*minRun || *budget <= 0:
		return nil
	}
	h := len(rules) / 2
	return append(buildRuns(rules[:h], lo, budget), buildRuns(rules[h:], lo+h, budget)...)
}

// minClassified is the fewest rules with conditions a chain needs for a
// classifier: below, the interpreter is as fast.
const minClassified = 4

// buildClassifier returns the classifier of a run of rules, nil if none
// is worth it; false if it would take more than budget entries (less
// those it takes).
func buildClassifier(rules []crule, budget *int) (*classifier, bool) {
	n := len(rules)
	cl := &classifier{nrules: n, resume: make([]int32, n), marks: make([]bool, n)}
	keys := map[fieldKey]int{}
	var keyList []fieldKey
	// perField[f][r]: the conditions of rule r on field f.
	var perField [][][]cond
	for ri, r := range rules {
		conds, resume := ruleConds(r.ops)
		cl.marks[ri] = slices.ContainsFunc(r.ops, func(o op) bool { return o.kind == opSetMark })
		kept := false
		for _, c := range conds {
			f, ok := keys[c.key]
			if !ok {
				if len(keyList) == maxFields {
					resume = min(resume, c.op)
					continue
				}
				f = len(keyList)
				keys[c.key] = f
				keyList = append(keyList, c.key)
				perField = append(perField, make([][]cond, n))
			}
			perField[f][ri] = append(perField[f][ri], c)
			kept = true
		}
		if kept {
			cl.conds++
		}
		if !selfContained(r.ops[resume:]) {
			resume = 0
		}
		cl.resume[ri] = int32(resume)
	}
	if cl.conds < minClassified {
		return nil, true
	}
	// Each field's intervals, and each rule's on it.
	infos := make([]fieldInfo, len(keyList))
	for f, k := range keyList {
		fd, info, ok := buildField(k, perField[f], budget)
		if !ok {
			return nil, false
		}
		cl.fields = append(cl.fields, fd)
		infos[f] = info
	}
	// Shapes: the fields a rule's conditions are narrow on. A small run
	// is one part: its words are few whatever their density.
	shapes := map[uint32][]int32{}
	for r := range n {
		var sh uint32
		for f := range infos {
			if in := &infos[f]; in.has[r] && 2*in.cover[r] <= in.ne && n >= minParted {
				sh |= 1 << f
			}
		}
		shapes[sh] = append(shapes[sh], int32(r))
	}
	groups := make([][]int32, 0, len(shapes))
	for _, g := range shapes {
		groups = append(groups, g)
	}
	slices.SortFunc(groups, func(a, b []int32) int {
		if len(a) != len(b) {
			return len(b) - len(a)
		}
		return int(a[0] - b[0])
	})
	// The rarest shapes, and those of fewer than a word of rules, share
	// the last part.
	k := 0
	for k < len(groups) && k < maxParts-1 && len(groups[k]) >= min(64, minParted) {
		k++
	}
	if k < len(groups)-1 {
		var rest []int32
		for _, g := range groups[k:] {
			rest = append(rest, g...)
		}
		slices.Sort(rest)
		groups = append(groups[:k], rest)
	}
	for _, g := range groups {
		cl.parts = append(cl.parts, buildPart(g, infos))
	}
	return cl, true
}

// fieldInfo is what building a field learnt of each rule: whether it has
// a condition on the field, the intervals it accepts as index ranges, and
// how many.
type fieldInfo struct {
	ne    int
	has   []bool
	idx   [][][2]int
	cover []int
}

// buildPart builds the bitmaps of a part of rules.
func buildPart(rules []int32, infos []fieldInfo) cpart {
	pt := cpart{rules: rules, nwords: (len(rules) + 63) / 64}
	pt.nsum = (pt.nwords + 63) / 64
	for f := range infos {
		in := &infos[f]
		if !slices.ContainsFunc(rules, func(r int32) bool { return in.has[r] }) {
			continue // no rule of the part tests it
		}
		bm := bitmap{f: f, base: make([]uint64, pt.nwords)}
		ne := in.ne
		add := make([][]int32, ne+1)
		del := make([][]int32, ne+1)
		for li, r := range rules {
			bit := uint64(1) << (li & 63)
			if !in.has[r] {
				bm.base[li>>6] |= bit
				continue
			}
			if 2*in.cover[r] <= ne {
				for _, ab := range in.idx[r] {
					for e := ab[0]; e <= ab[1]; e++ {
						add[e] = append(add[e], int32(li))
					}
				}
				continue
			}
			// Most intervals: in base, deleted from the others and
			// from the failed load.
			bm.base[li>>6] |= bit
			e := 0
			for _, ab := range in.idx[r] {
				for ; e < ab[0]; e++ {
					del[e] = append(del[e], int32(li))
				}
				e = ab[1] + 1
			}
			for ; e <= ne; e++ {
				del[e] = append(del[e], int32(li))
			}
		}
		bm.sumBase = make([]uint64, pt.nsum)
		for w, x := range bm.base {
			if x != 0 {
				bm.sumBase[w>>6] |= 1 << (w & 63)
			}
		}
		bm.addSum, bm.addCum, bm.addW = sparse(add, pt.nsum)
		bm.delSum, bm.delCum, bm.delW = sparse(del, pt.nsum)
		bm.empty = make([]uint64, (ne+1+63)/64)
		if popcount(bm.base) == 0 {
			for e, l := range add {
				if len(l) == 0 {
					bm.empty[e>>6] |= 1 << (e & 63)
				}
			}
		}
		pt.bms = append(pt.bms, bm)
	}
	// The most selective first: those fewest rules are in the base of.
	slices.SortStableFunc(pt.bms, func(a, b bitmap) int { return popcount(a.base) - popcount(b.base) })
	return pt
}

func popcount(ws []uint64) int {
	n := 0
	for _, w := range ws {
		n += bits.OnesCount64(w)
	}
	return n
}

// buildField builds field k from the conditions on it of each rule; false
// if its bitmaps would take more than budget entries (less those they
// take).
func buildField(k fieldKey, rc [][]cond, budget *int) (cfield, fieldInfo, bool) {
	f := cfield{meta: k.meta, sub: k.sub, fast: k.fast, off: k.off, masked: k.masked, mask: &k.mask, xor: &k.xor,
		minNeed: 1 << 30}
	for _, cs := range rc {
		for _, c := range cs {
			f.n = max(f.n, c.m)
			if !k.meta {
				f.minNeed, f.maxNeed = min(f.minNeed, c.need), max(f.maxNeed, c.need)
			}
		}
	}
	f.maxNeed = max(f.maxNeed, f.n)
	f.minNeed = min(f.minNeed, f.n)
	if k.meta {
		f.metaOp = &op{kind: opMeta, sub: k.sub, obj: -1}
	}
	// Each rule's accepted values, on n bytes.
	in := fieldInfo{has: make([]bool, len(rc)), idx: make([][][2]int, len(rc)), cover: make([]int, len(rc))}
	sets := make([]ivset, len(rc))
	max := maxOf(f.n)
	bset := map[u128]struct{}{{}: {}}
	for r, cs := range rc {
		if len(cs) == 0 {
			continue
		}
		in.has[r] = true
		s := ivset{{u128{}, max}}
		for _, c := range cs {
			s = s.intersect(c.set.widen(c.m, f.n))
		}
		sets[r] = s
		for _, v := range s {
			bset[v.lo] = struct{}{}
			if v.hi != max {
				bset[v.hi.add1()] = struct{}{}
			}
		}
	}
	f.bounds = make([]u128, 0, len(bset))
	for b := range bset {
		f.bounds = append(f.bounds, b)
	}
	slices.SortFunc(f.bounds, func(a, b u128) int { return a.cmp(b) })
	ne := len(f.bounds)
	in.ne = ne
	if f.n <= 8 {
		f.b64 = make([]uint64, ne)
		for i, b := range f.bounds {
			f.b64[i] = b.lo
		}
	}
	f.buildBuckets()
	for r := range rc {
		if !in.has[r] {
			continue
		}
		idx := make([][2]int, 0, len(sets[r]))
		for _, v := range sets[r] {
			a := f.find(v.lo)
			b := ne - 1
			if v.hi != max {
				b = f.find(v.hi.add1()) - 1
			}
			idx = append(idx, [2]int{a, b})
			in.cover[r] += b - a + 1
		}
		in.idx[r] = idx
		// Added where covered, or deleted where not.
		if *budget -= min(in.cover[r], ne+1-in.cover[r]); *budget < 0 {
			return f, in, false
		}
	}
	return f, in, true
}

// sparse lays out per-interval sorted rule lists as summaries, the index
// of each summary word's first present word, and the present words.
func sparse(lists [][]int32, nsum int) (sum []uint64, cum []int32, words []uint64) {
	sum = make([]uint64, len(lists)*nsum)
	cum = make([]int32, len(lists)*nsum)
	for e, l := range lists {
		for _, r := range l {
			w := int(r >> 6)
			bit := uint64(1) << (w & 63)
			s := &sum[e*nsum+w>>6]
			if *s&bit == 0 {
				*s |= bit
				words = append(words, 0)
			}
			words[len(words)-1] |= 1 << (r & 63)
		}
	}
	n := int32(0)
	for i, s := range sum {
		cum[i] = n
		n += int32(bits.OnesCount64(s))
	}
	return sum, cum, words
}

// buildBuckets builds the bucket table of a field with more than a few
// intervals.
func (f *cfield) buildBuckets() {
	ne := len(f.bounds)
	if ne <= 8 {
		return
	}
	lo, hi := f.bounds[1], f.bounds[ne-1]
	k := min(bits.Len(uint(2*ne)), 16)
	span := hi.sub(lo)
	if l := span.bitLen(); l > k {
		f.shift = uint(l - k)
	}
	nb := int(span.shr(f.shift).lo) + 1
	f.start = make([]int32, nb+1)
	for b := range nb + 1 {
		v := addU(lo, u128{0, uint64(b)}.shl(f.shift))
		if b == nb || hi.less(v) {
			v = hi
		}
		f.start[b] = int32(f.findSlow(v))
	}
}

// findSlow returns the interval of v by binary search.
func (f *cfield) findSlow(v u128) int {
	return sort.Search(len(f.bounds), func(i int) bool { return v.less(f.bounds[i]) }) - 1
}

// find returns the elementary interval of value v.
func (f *cfield) find(v u128) int {
	b := f.bounds
	if f.start == nil {
		i := 0
		for i+1 < len(b) && !v.less(b[i+1]) {
			i++
		}
		return i
	}
	if v.less(b[1]) {
		return 0
	}
	last := len(b) - 1
	if !v.less(b[last]) {
		return last
	}
	bk := int(v.sub(b[1]).shr(f.shift).lo)
	i, j := int(f.start[bk]), int(f.start[bk+1])
	if j-i > 8 {
		// A dense bucket: binary search for the last bound ≤ v in [i, j].
		for i < j {
			h := int(uint(i+j+1) >> 1)
			if v.less(b[h]) {
				j = h - 1
			} else {
				i = h
			}
		}
		return i
	}
	for i < j && !v.less(b[i+1]) {
		i++
	}
	return i
}

// find64 is find for a field of at most 8 bytes.
func (f *cfield) find64(v uint64) int {
	b := f.b64
	if f.start == nil {
		i := 0
		for i+1 < len(b) && v >= b[i+1] {
			i++
		}
		return i
	}
	if v < b[1] {
		return 0
	}
	last := len(b) - 1
	if v >= b[last] {
		return last
	}
	bk := int((v - b[1]) >> f.shift)
	i, j := int(f.start[bk]), int(f.start[bk+1])
	if j-i > 8 {
		for i < j {
			h := int(uint(i+j+1) >> 1)
			if v < b[h] {
				j = h - 1
			} else {
				i = h
			}
		}
		return i
	}
	for i < j && v >= b[i+1] {
		i++
	}
	return i
}

// value reads the field's value in the packet of c: its interval, the
// failed load's (len(bounds)), or -1 if the loads of some of its
// conditions fail and others do not (the interpreter decides).
func (f *cfield) value(w *worker, p *Program, c *pktCtx) int {
	var b []byte
	if f.meta {
		if MetaKey(f.sub) == MetaL4Proto && f.n == 1 && f.off == 0 && !f.masked {
			if !c.l4 {
				return len(f.bounds)
			}
			return f.find64(uint64(c.tprot))
		}
		if !w.meta(p, f.metaOp, c) {
			return len(f.bounds)
		}
		b = w.regs[f.off : f.off+f.n]
	} else {
		var at int
		switch PayloadBase(f.sub) {
		case PayloadLL:
			if !c.ll {
				return len(f.bounds)
			}
		case PayloadNetwork:
			at = c.nh
		case PayloadTransport:
			if !c.l4 || c.fragoff != 0 && !f.fast {
				return len(f.bounds)
			}
			at = c.thoff
		default:
			if at = c.inner(); at < 0 {
				return len(f.bounds)
			}
		}
		at += f.off
		avail := c.end - at
		switch {
		case avail >= f.maxNeed:
		case avail < f.minNeed:
			return len(f.bounds)
		default:
			return -1
		}
		b = c.data[at : at+f.n]
	}
	if f.b64 != nil && !f.masked {
		var v uint64
		switch len(b) {
		case 1:
			v = uint64(b[0])
		case 2:
			v = uint64(binary.BigEndian.Uint16(b))
		case 4:
			v = uint64(binary.BigEndian.Uint32(b))
		default:
			v = f.read(b).lo
		}
		return f.find64(v)
	}
	v := f.read(b)
	if f.b64 != nil {
		return f.find64(v.lo)
	}
	return f.find(v)
}

// read returns the value of the field's bytes b, masked if it is.
func (f *cfield) read(b []byte) u128 {
	if f.masked {
		var t [16]byte
		for i := range b {
			t[i] = b[i]&f.mask[i] ^ f.xor[i]
		}
		return beU128(t[:len(b)])
	}
	switch len(b) {
	case 1:
		return u128{0, uint64(b[0])}
	case 2:
		return u128{0, uint64(binary.BigEndian.Uint16(b))}
	case 4:
		return u128{0, uint64(binary.BigEndian.Uint32(b))}
	case 8:
		return u128{0, binary.BigEndian.Uint64(b)}
	case 16:
		return u128{binary.BigEndian.Uint64(b), binary.BigEndian.Uint64(b[8:])}
	}
	return beU128(b)
}

// prepare reads the packet's interval of every field into fv, and
// forgets the parts' candidates; false if the interpreter must decide for
// this packet.
func (cl *classifier) prepare(w *worker, p *Program, c *pktCtx, fv *[maxFields]int32, cand *[maxParts]int32) bool {
	for i := range cl.fields {
		e := cl.fields[i].value(w, p, c)
		if e < 0 {
			return false
		}
		fv[i] = int32(e)
	}
	for i := range cl.parts {
		cand[i] = -1
	}
	return true
}

// next returns the first rule from on whose conditions all hold for the
// intervals fv, or the number of rules. cand caches each part's first
// candidate: -1 for none yet.
func (cl *classifier) next(fv *[maxFields]int32, cand *[maxParts]int32, from int) int {
	if len(cl.parts) == 1 {
		return cl.parts[0].next(fv, from, cl.nrules)
	}
	best := cl.nrules
	for i := range cl.parts {
		c := int(cand[i])
		if c < from {
			c = cl.parts[i].next(fv, from, cl.nrules)
			cand[i] = int32(c)
		}
		best = min(best, c)
	}
	return best
}

// next returns the first rule of the part from on (a number of the
// classifier) whose conditions all hold for the intervals fv, or none.
func (pt *cpart) next(fv *[maxFields]int32, from, none int) int {
	rs := pt.rules
	// The first rule of the part from on, by its local number.
	lo := 0
	if from > 0 {
		hi := len(rs)
		for lo < hi {
			h := int(uint(lo+hi) >> 1)
			if int(rs[h]) < from {
				lo = h + 1
			} else {
				hi = h
			}
		}
	}
	if lo == len(rs) {
		return none
	}
	bms := pt.bms
	if len(bms) == 0 {
		return int(rs[lo])
	}
	for i := range bms {
		// A field whose interval holds no rule of the part.
		if e := fv[bms[i].f]; bms[i].empty[e>>6]>>(e&63)&1 != 0 {
			return none
		}
	}
	w0 := lo >> 6
	for sw := w0 >> 6; sw < pt.nsum; sw++ {
		m := ^uint64(0)
		if sw == w0>>6 {
			m <<= w0 & 63
		}
		for i := range bms {
			b := &bms[i]
			if m &= b.sumBase[sw] | b.addSum[int(fv[b.f])*pt.nsum+sw]; m == 0 {
				break
			}
		}
		for m != 0 {
			w := sw<<6 | bits.TrailingZeros64(m)
			m &= m - 1
			x := ^uint64(0)
			if w == w0 {
				x <<= lo & 63
			}
			sh := uint(w & 63)
			below := uint64(1)<<sh - 1
			for i := range bms {
				// Word w of the bitmap of the field's interval.
				b := &bms[i]
				y := b.base[w]
				k := int(fv[b.f])*pt.nsum + sw
				if s := b.addSum[k]; s>>sh&1 != 0 {
					y |= b.addW[int(b.addCum[k])+bits.OnesCount64(s&below)]
				}
				if s := b.delSum[k]; s>>sh&1 != 0 {
					y &^= b.delW[int(b.delCum[k])+bits.OnesCount64(s&below)]
				}
				if x &= y; x == 0 {
					break
				}
			}
			if x != 0 {
				return int(rs[w<<6|bits.TrailingZeros64(x)])
			}
		}
	}
	return none
}

// size returns the bytes the classifier's tables take.
func (cl *classifier) size() int {
	n := 4*len(cl.resume) + len(cl.marks)
	for i := range cl.fields {
		f := &cl.fields[i]
		n += 16*len(f.bounds) + 8*len(f.b64) + 4*len(f.start)
	}
	for i := range cl.parts {
		pt := &cl.parts[i]
		n += 4 * len(pt.rules)
		for j := range pt.bms {
			b := &pt.bms[j]
			n += 8*(len(b.empty)+len(b.base)+len(b.sumBase)+len(b.addSum)+len(b.addW)+len(b.delSum)+len(b.delW)) + 4*(len(b.addCum)+len(b.delCum))
		}
	}
	return n
}

// Placement returns how many rules the classifier finds (rules with
// conditions it holds, in chains it serves) and how many the interpreter
// runs in order.
func (p *Program) Placement() (classified, interpreted int) {
	for i := range p.chains {
		ch := &p.chains[i]
		for _, cl := range ch.runs {
			classified += cl.conds
		}
		interpreted += len(ch.rules)
	}
	return classified, interpreted - classified
}
