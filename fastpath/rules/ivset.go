package rules

import (
	"cmp"
	"math/bits"
	"slices"
)

// u128 is an unsigned 128-bit number: a field value of up to 16 bytes,
// read big-endian, so that its order is the order bytes.Compare gives
// values of the same length.
type u128 struct{ hi, lo uint64 }

func (a u128) cmp(b u128) int {
	if c := cmp.Compare(a.hi, b.hi); c != 0 {
		return c
	}
	return cmp.Compare(a.lo, b.lo)
}

func (a u128) less(b u128) bool { return a.hi < b.hi || a.hi == b.hi && a.lo < b.lo }

func (a u128) add1() u128 {
	lo, c := bits.Add64(a.lo, 1, 0)
	return u128{a.hi + c, lo}
}

func (a u128) sub1() u128 {
	lo, b := bits.Sub64(a.lo, 1, 0)
	return u128{a.hi - b, lo}
}

func (a u128) sub(b u128) u128 {
	lo, br := bits.Sub64(a.lo, b.lo, 0)
	return u128{a.hi - b.hi - br, lo}
}

func (a u128) and(b u128) u128 { return u128{a.hi & b.hi, a.lo & b.lo} }

func (a u128) or(b u128) u128 { return u128{a.hi | b.hi, a.lo | b.lo} }

func (a u128) not() u128 { return u128{^a.hi, ^a.lo} }

func (a u128) shl(s uint) u128 {
	switch {
	case s == 0:
		return a
	case s >= 128:
		return u128{}
	case s >= 64:
		return u128{a.lo << (s - 64), 0}
	}
	return u128{a.hi<<s | a.lo>>(64-s), a.lo << s}
}

func (a u128) shr(s uint) u128 {
	switch {
	case s == 0:
		return a
	case s >= 128:
		return u128{}
	case s >= 64:
		return u128{0, a.hi >> (s - 64)}
	}
	return u128{a.hi >> s, a.lo>>s | a.hi<<(64-s)}
}

func (a u128) bitLen() int {
	if a.hi != 0 {
		return 64 + bits.Len64(a.hi)
	}
	return bits.Len64(a.lo)
}

// maxOf returns the largest value of n bytes (n ≤ 16).
func maxOf(n int) u128 { return u128{^uint64(0), ^uint64(0)}.shr(uint(128 - 8*n)) }

// beU128 reads b (at most 16 bytes) as a big-endian number.
func beU128(b []byte) u128 {
	var v u128
	for _, x := range b {
		v = u128{v.hi<<8 | v.lo>>56, v.lo<<8 | uint64(x)}
	}
	return v
}

// ival is the closed interval [lo, hi] of field values.
type ival struct{ lo, hi u128 }

// ivset is a set of field values: sorted, disjoint, non-adjacent closed
// intervals.
type ivset []ival

// normalize sorts and merges the intervals of s.
func (s ivset) normalize() ivset {
	slices.SortFunc(s, func(a, b ival) int { return a.lo.cmp(b.lo) })
	out := s[:0]
	for _, v := range s {
		if n := len(out); n > 0 && (!out[n-1].hi.less(v.lo) || out[n-1].hi.add1() == v.lo) {
			if out[n-1].hi.less(v.hi) {
				out[n-1].hi = v.hi
			}
			continue
		}
		out = append(out, v)
	}
	return out
}

// complement returns the values of [0, max] not in s.
func (s ivset) complement(max u128) ivset {
	var out ivset
	next := u128{}
	done := false
	for _, v := range s {
		if next.less(v.lo) {
			out = append(out, ival{next, v.lo.sub1()})
		}
		if v.hi == max {
			done = true
			break
		}
		next = v.hi.add1()
	}
	if !done {
		out = append(out, ival{next, max})
	}
	return out
}

// intersect returns the values in both s and t.
func (s ivset) intersect(t ivset) ivset {
	var out ivset
	i, j := 0, 0
	for i < len(s) && j < len(t) {
		lo, hi := s[i].lo, s[i].hi
		if lo.less(t[j].lo) {
			lo = t[j].lo
		}
		if t[j].hi.less(hi) {
			hi = t[j].hi
		}
		if !hi.less(lo) {
			out = append(out, ival{lo, hi})
		}
		if s[i].hi.less(t[j].hi) {
			i++
		} else {
			j++
		}
	}
	return out
}

// widen maps a set of m-byte values to the n-byte values (n ≥ m) whose
// first m bytes are in it.
func (s ivset) widen(m, n int) ivset {
	if m == n {
		return s
	}
	sh := uint(8 * (n - m))
	low := maxOf(n - m)
	out := make(ivset, len(s))
	for i, v := range s {
		out[i] = ival{v.lo.shl(sh), v.hi.shl(sh).or(low)}
	}
	return out
}

// unmask maps a set of values of v&mask, mask a prefix mask of n bytes,
// to the set of values v.
func (s ivset) unmask(mask u128, n int) ivset {
	host := mask.not().and(maxOf(n))
	unit := host.add1()
	var out ivset
	for _, v := range s {
		lo := v.lo
		if lo.and(host) != (u128{}) {
			// The next value of the prefix's form, if any.
			lo = lo.and(mask)
			if lo.and(mask) == mask {
				continue
			}
			lo = addU(lo, unit)
		}
		hi := v.hi.and(mask)
		if hi.less(lo) {
			continue
		}
		out = append(out, ival{lo, hi.or(host)})
	}
	return out.normalize()
}

func addU(a, b u128) u128 {
	lo, c := bits.Add64(a.lo, b.lo, 0)
	return u128{a.hi + b.hi + c, lo}
}

// prefixMask reports whether mask (n bytes) is a run of ones followed by
// zeros.
func prefixMask(mask u128, n int) bool {
	host := mask.not().and(maxOf(n))
	return host.and(host.add1()) == u128{}
}
