package header

import (
	"encoding/binary"
	"math/bits"
)

// Checksum returns the 16-bit one's complement sum (RFC 1071) of b added to
// initial, folded but not complemented. Chain calls by passing one result as
// the next initial; complement the final sum to get a checksum field.
//
// It adds 8 bytes at a time into a 64-bit accumulator with end-around
// carry. The one's complement sum does not depend on byte order (RFC 1071,
// section 2(B)), so it sums little-endian words and swaps the result once.
func Checksum(b []byte, initial uint16) uint16 {
	sum := uint64(bits.ReverseBytes16(initial))
	var c uint64
	for len(b) >= 32 {
		sum, c = bits.Add64(sum, binary.LittleEndian.Uint64(b), c)
		sum, c = bits.Add64(sum, binary.LittleEndian.Uint64(b[8:]), c)
		sum, c = bits.Add64(sum, binary.LittleEndian.Uint64(b[16:]), c)
		sum, c = bits.Add64(sum, binary.LittleEndian.Uint64(b[24:]), c)
		b = b[32:]
	}
	for len(b) >= 8 {
		sum, c = bits.Add64(sum, binary.LittleEndian.Uint64(b), c)
		b = b[8:]
	}
	if len(b) >= 4 {
		sum, c = bits.Add64(sum, uint64(binary.LittleEndian.Uint32(b)), c)
		b = b[4:]
	}
	if len(b) >= 2 {
		sum, c = bits.Add64(sum, uint64(binary.LittleEndian.Uint16(b)), c)
		b = b[2:]
	}
	if len(b) == 1 {
		// A trailing odd byte is the high-order byte of a zero-padded
		// big-endian word: the low byte of a little-endian one.
		sum, c = bits.Add64(sum, uint64(b[0]), c)
	}
	// Add the last carry; this carries out only when the result is 0, so
	// adding that carry back cannot carry again.
	sum, c = bits.Add64(sum, 0, c)
	sum += c
	return bits.ReverseBytes16(fold64(sum))
}

// fold64 folds a 64-bit one's complement sum to 16 bits.
func fold64(s uint64) uint16 {
	s = (s & 0xffffffff) + s>>32
	s = (s & 0xffffffff) + s>>32
	s = (s & 0xffff) + s>>16
	s = (s & 0xffff) + s>>16
	return uint16(s)
}

// PseudoHeaderChecksum4 returns the folded, non-complemented sum of the
// IPv4 pseudo-header (RFC 768, RFC 9293 section 3.1): source, destination,
// zero, protocol and the transport length.
func PseudoHeaderChecksum4(proto uint8, src, dst [4]byte, length uint16) uint16 {
	s := uint64(binary.BigEndian.Uint32(src[:])) +
		uint64(binary.BigEndian.Uint32(dst[:])) +
		uint64(proto) + uint64(length)
	return fold64(s)
}

// PseudoHeaderChecksum6 returns the folded, non-complemented sum of the
// IPv6 pseudo-header (RFC 8200, section 8.1): source, destination, upper-
// layer length and next header.
func PseudoHeaderChecksum6(proto uint8, src, dst [16]byte, length uint32) uint16 {
	var s uint64
	for i := 0; i < 16; i += 4 {
		s += uint64(binary.BigEndian.Uint32(src[i:])) + uint64(binary.BigEndian.Uint32(dst[i:]))
	}
	s += uint64(proto) + uint64(length)
	return fold64(s)
}

// PseudoHeaderChecksum is PseudoHeaderChecksum4 over b's own addresses,
// read in place.
func (b IPv4) PseudoHeaderChecksum(proto uint8, length uint16) uint16 {
	a := binary.BigEndian.Uint64(b[ipv4Src : ipv4Dst+4])
	return fold64(a>>32 + a&0xffffffff + uint64(proto) + uint64(length))
}

// PseudoHeaderChecksum is PseudoHeaderChecksum6 over b's own addresses,
// read in place.
func (b IPv6) PseudoHeaderChecksum(proto uint8, length uint32) uint16 {
	a := b[ipv6Src : ipv6Dst+16]
	var s uint64
	for i := 0; i < 32; i += 8 {
		w := binary.BigEndian.Uint64(a[i:])
		s += w>>32 + w&0xffffffff
	}
	return fold64(s + uint64(proto) + uint64(length))
}
