package nat

import (
	"encoding/binary"

	"github.com/xdpfwd/xdpfwd/fastpath/header"
)

// ipv6SkipExthdr is the kernel's ipv6_skip_exthdr over the IPv6 packet b
// (fixed header first, at least header.IPv6Size bytes): the offset of the
// upper-layer header, its protocol and the fragment offset field of a
// fragment header met on the way (a fragment but the first ends the walk
// at its fragment header). ok is false where the kernel returns -1: a
// header that is not there to read, or no next header. Unlike
// header.IPv6SkipExt it reads only the bytes the kernel reads (2 of an
// option header, 4 of a fragment header), so the offset it returns may
// lie past the end of b, where the transport rewrite then fails as the
// kernel's does.
func ipv6SkipExthdr(b []byte) (off int, proto uint8, fragOff uint16, ok bool) {
	proto, off = header.IPv6(b).NextHeader(), header.IPv6Size
	for {
		switch proto {
		case header.IPv6HopByHop, header.IPv6Routing, header.IPv6Fragment, header.IPv6Auth, header.IPv6DestOptions:
		case header.IPv6NoNext:
			return 0, 0, 0, false
		default:
			return off, proto, fragOff, true
		}
		if off+2 > len(b) {
			return 0, 0, 0, false
		}
		var n int
		switch proto {
		case header.IPv6Fragment:
			if off+4 > len(b) {
				return 0, 0, 0, false
			}
			fragOff = binary.BigEndian.Uint16(b[off+2:])
			if fragOff&^7 != 0 {
				return off, proto, fragOff, true
			}
			n = 8
		case header.IPv6Auth:
			n = (int(b[off+1]) + 2) << 2
		default:
			n = (int(b[off+1]) + 1) << 3
		}
		proto, off = b[off], off+n
	}
}
