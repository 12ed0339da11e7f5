// Package siphash is SipHash-1-3 over one or two 8-byte message words, for
// the dataplane's keyed hash tables (the bridge's FDB, the neighbour
// cache): fast enough per packet, and keyed with a per-process random
// seed so that an attacker cannot compute colliding keys offline. Every
// message of a table has the same length, so the length block is left
// out.
package siphash

import "math/bits"

// Key is a keyed SipHash initial state.
type Key [4]uint64

// NewKey returns the state SipHash starts from for the 128-bit key k0, k1.
func NewKey(k0, k1 uint64) Key {
	return Key{k0 ^ 0x736f6d6570736575, k1 ^ 0x646f72616e646f6d, k0 ^ 0x6c7967656e657261, k1 ^ 0x7465646279746573}
}

// Sum1 returns the hash of the one-word message m.
func (k Key) Sum1(m uint64) uint64 {
	v0, v1, v2, v3 := k[0], k[1], k[2], k[3]
	v0, v1, v2, v3 = compress(v0, v1, v2, v3, m)
	return finalize(v0, v1, v2, v3)
}

// Sum2 returns the hash of the two-word message m0, m1.
func (k Key) Sum2(m0, m1 uint64) uint64 {
	v0, v1, v2, v3 := k[0], k[1], k[2], k[3]
	v0, v1, v2, v3 = compress(v0, v1, v2, v3, m0)
	v0, v1, v2, v3 = compress(v0, v1, v2, v3, m1)
	return finalize(v0, v1, v2, v3)
}

// compress mixes message word m into the state: one SipRound (the "1").
func compress(v0, v1, v2, v3, m uint64) (uint64, uint64, uint64, uint64) {
	v3 ^= m
	v0, v1, v2, v3 = round(v0, v1, v2, v3)
	v0 ^= m
	return v0, v1, v2, v3
}

// finalize ends the hash: three SipRounds (the "3").
func finalize(v0, v1, v2, v3 uint64) uint64 {
	v2 ^= 0xff
	v0, v1, v2, v3 = round(v0, v1, v2, v3)
	v0, v1, v2, v3 = round(v0, v1, v2, v3)
	v0, v1, v2, v3 = round(v0, v1, v2, v3)
	return v0 ^ v1 ^ v2 ^ v3
}

func round(v0, v1, v2, v3 uint64) (uint64, uint64, uint64, uint64) {
	v0 += v1
	v1 = bits.RotateLeft64(v1, 13)
	v1 ^= v0
	v0 = bits.RotateLeft64(v0, 32)
	v2 += v3
	v3 = bits.RotateLeft64(v3, 16)
	v3 ^= v2
	v0 += v3
	v3 = bits.RotateLeft64(v3, 21)
	v3 ^= v0
	v2 += v1
	v1 = bits.RotateLeft64(v1, 17)
	v1 ^= v2
	v2 = bits.RotateLeft64(v2, 32)
	return v0, v1, v2, v3
}

// Sum5 returns the hash of the five-word message m0 … m4 (an IPv6 flow's
// two addresses and its ports and protocol, in one pass rather than
// chained Sum2 calls).
func (k Key) Sum5(m0, m1, m2, m3, m4 uint64) uint64 {
	v0, v1, v2, v3 := k[0], k[1], k[2], k[3]
	v0, v1, v2, v3 = compress(v0, v1, v2, v3, m0)
	v0, v1, v2, v3 = compress(v0, v1, v2, v3, m1)
	v0, v1, v2, v3 = compress(v0, v1, v2, v3, m2)
	v0, v1, v2, v3 = compress(v0, v1, v2, v3, m3)
	v0, v1, v2, v3 = compress(v0, v1, v2, v3, m4)
	return finalize(v0, v1, v2, v3)
}
