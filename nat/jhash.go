package nat

import "math/bits"

// jhashInitval is JHASH_INITVAL, the arbitrary initial value of
// include/linux/jhash.h.
const jhashInitval = 0xdeadbeef

// jhash2 is the kernel's jhash2 (include/linux/jhash.h, Bob Jenkins'
// lookup3 hashword): the hash of the 32-bit words k with initval.
func jhash2(k []uint32, initval uint32) uint32 {
	a := jhashInitval + uint32(len(k))<<2 + initval
	b, c := a, a
	for len(k) > 3 {
		a += k[0]
		b += k[1]
		c += k[2]
		a, b, c = jhashMix(a, b, c)
		k = k[3:]
	}
	switch len(k) {
	case 3:
		c += k[2]
		fallthrough
	case 2:
		b += k[1]
		fallthrough
	case 1:
		a += k[0]
		c = jhashFinal(a, b, c)
	}
	return c
}

// jhashMix is __jhash_mix: mix three words reversibly.
func jhashMix(a, b, c uint32) (uint32, uint32, uint32) {
	a -= c
	a ^= bits.RotateLeft32(c, 4)
	c += b
	b -= a
	b ^= bits.RotateLeft32(a, 6)
	a += c
	c -= b
	c ^= bits.RotateLeft32(b, 8)
	b += a
	a -= c
	a ^= bits.RotateLeft32(c, 16)
	c += b
	b -= a
	b ^= bits.RotateLeft32(a, 19)
	a += c
	c -= b
	c ^= bits.RotateLeft32(b, 4)
	b += a
	return a, b, c
}

// jhashFinal is __jhash_final: the final mixing of a, b and c into c.
func jhashFinal(a, b, c uint32) uint32 {
	c ^= b
	c -= bits.RotateLeft32(b, 14)
	a ^= c
	a -= bits.RotateLeft32(c, 11)
	b ^= a
	b -= bits.RotateLeft32(a, 25)
	c ^= b
	c -= bits.RotateLeft32(b, 16)
	a ^= c
	a -= bits.RotateLeft32(c, 4)
	b ^= a
	b -= bits.RotateLeft32(a, 14)
	c ^= b
	c -= bits.RotateLeft32(b, 24)
	return c
}

// reciprocalScale is the kernel's reciprocal_scale: val scaled into
// [0, ep_ro) by a multiplication instead of a division.
func reciprocalScale(val, epRo uint32) uint32 {
	return uint32(uint64(val) * uint64(epRo) >> 32)
}
