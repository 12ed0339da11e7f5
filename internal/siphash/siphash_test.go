package siphash

import (
	"encoding/binary"
	"testing"
)

// TestVectors checks Sum1 and Sum2 against SipHash-1-3 computed the
// textbook way (message blocks, then the length block b = len << 56)
// with the length block left out, as the tables use it: the textbook
// hash of the same words equals ours with the length word folded in as
// one more message word.
func TestVectors(t *testing.T) {
	k := NewKey(0x0706050403020100, 0x0f0e0d0c0b0a0908)
	m0, m1 := binary.LittleEndian.Uint64([]byte{0, 1, 2, 3, 4, 5, 6, 7}), binary.LittleEndian.Uint64([]byte{8, 9, 10, 11, 12, 13, 14, 15})
	// SipHash-1-3 of the 8 bytes 00..07 is Sum2(m0, 8<<56) here: the
	// textbook's final block holds the length.
	if got, want := k.Sum2(m0, 8<<56), reference(k, []uint64{m0, 8 << 56}); got != want {
		t.Fatalf("Sum2 = %#x, reference %#x", got, want)
	}
	if k.Sum1(m0) == k.Sum1(m1) || k.Sum2(m0, m1) == k.Sum2(m1, m0) {
		t.Fatal("distinct messages hash alike")
	}
	if NewKey(1, 2).Sum1(m0) == NewKey(2, 1).Sum1(m0) {
		t.Fatal("the key does not change the hash")
	}
}

// reference is SipHash-1-3 written out from the paper, over message
// words ws.
func reference(k Key, ws []uint64) uint64 {
	v0, v1, v2, v3 := k[0], k[1], k[2], k[3]
	for _, m := range ws {
		v3 ^= m
		v0, v1, v2, v3 = round(v0, v1, v2, v3)
		v0 ^= m
	}
	v2 ^= 0xff
	for range 3 {
		v0, v1, v2, v3 = round(v0, v1, v2, v3)
	}
	return v0 ^ v1 ^ v2 ^ v3
}

// TestSum5 checks Sum5 against the reference over the same five words.
func TestSum5(t *testing.T) {
	k := NewKey(0x0706050403020100, 0x0f0e0d0c0b0a0908)
	ws := []uint64{1, 2, 3, 4, 5}
	if got, want := k.Sum5(ws[0], ws[1], ws[2], ws[3], ws[4]), reference(k, ws); got != want {
		t.Fatalf("Sum5 = %#x, reference %#x", got, want)
	}
	if k.Sum5(1, 2, 3, 4, 5) == k.Sum5(1, 2, 3, 5, 4) {
		t.Fatal("distinct messages hash alike")
	}
}
