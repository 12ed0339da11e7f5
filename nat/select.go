package nat

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"sync"

	"github.com/xdpfwd/xdpfwd/conntrack"
)

// MaxAttempts is NF_NAT_MAX_ATTEMPTS: the most ports or identifiers the
// first round of the search tries; each later round (with a new random
// offset) tries half as many, down to 8.
const MaxAttempts = 128

// UDP-Lite's protocol number; fastpath/header does not name it.
const protoUDPLite = 136

// Unique returns the tuple a new connection is translated to, as the
// kernel's get_unique_tuple chooses it for nf_nat_setup_info: orig is
// the connection's current original tuple (the inverse of its reply
// tuple: what its packets look like before this manipulation), r the
// range, manip which side changes. It is UniqueWithSource without the
// by-source index: the kernel's find_appropriate_src step (reuse the
// mapping of another connection from the same source address and port
// when the original source is out of range) is skipped, so such a
// connection goes straight to the address and port selection. See
// UniqueWithSource for taken, rnd and the results.
func Unique(orig conntrack.Tuple, r *Range, manip Manip, taken func(*conntrack.Tuple) bool, rnd func() uint16) (conntrack.Tuple, bool) {
	return UniqueWithSource(orig, r, manip, taken, rnd, nil)
}

// UniqueWithSource is the kernel's get_unique_tuple, in its three steps:
//
//  1. source NAT without a random flag keeps orig if its source is in
//     the range and it is free (nf_nat_used_tuple_new); if the source is
//     out of range, it reuses the mapping of a connection from the same
//     source (find_appropriate_src) that is in range and free.
//  2. the address is chosen from the range by find_best_ips_proto: a
//     jhash2 of the source address, seeded with the destination address
//     (its last 32-bit word) and the zone, unless Persistent, scaled into
//     the range word by word, so that a client keeps its address.
//  3. the port (TCP, UDP, UDP-Lite, SCTP) or ICMP identifier is kept if
//     in range and free, else searched by nf_nat_l4proto_unique_tuple:
//     in the range given, or by default in the class of the original
//     port (1-511 below 512, 600-1023 below 1024, else 1024-65535; a
//     destination NAT without a range keeps its port; ICMP identifiers
//     0-65535), from a random offset (from the original port's distance
//     to BaseProto with ProtoOffset; from 0 for destination NAT without
//     a random flag), at most MaxAttempts tries, then rounds of half as
//     many from new random offsets while at least 16 were tried.
//
// taken is the kernel's nf_nat_used_tuple seen from the table: it is
// called with the REPLY tuple a candidate would give the connection
// (the candidate inverted here, as nf_ct_invert_tuple) and reports
// whether that tuple is in the table for another connection
// (nf_conntrack_tuple_taken). The connection being set up is not in the
// table yet, so any entry holding the tuple is another's. taken must not
// keep the pointer past its return. rnd stands for
// get_random_u16 (nil: math/rand/v2).
//
// sameSource (nil: step 1 reuses nothing) is the by-source index the
// kernel keeps for source NAT (nf_nat_bysource): it fills reply with the
// reply tuple of the n-th (from 0) most recently set up connection whose
// original tuple has orig's protocol, source address, source port and
// zone and that went through source NAT setup, and reports whether there
// is one. It must not keep the pointers past its return.
//
// The tuple returned is the kernel's choice in every case. ok is false
// if it is taken: all the tries failed, or the kernel took it unchecked
// (a single-port range, a destination NAT that keeps its port, a
// protocol without ports). The kernel then goes on and drops the packet
// when the connection cannot be confirmed (insert_failed); a caller can
// do the same, or drop at once and count the exhaustion.
//
// Not ported: the refinements the table would have to answer. In step 1
// nf_nat_used_tuple_new lets a UDP or UDP-Lite tuple clash with an entry
// of the reverse direction created at the same time when neither uses
// NAT (here such a tuple is taken); in the search's last 32 tries,
// nf_nat_used_tuple_harder evicts a colliding source-NATed TCP entry in
// TIME_WAIT or later whose sequence numbers the new SYN_SENT connection
// has passed (here such a tuple is taken). GRE keys are never changed
// (the kernel changes them only for PPTP's expected connections).
func UniqueWithSource(orig conntrack.Tuple, r *Range, manip Manip, taken func(*conntrack.Tuple) bool, rnd func() uint16, sameSource SameSource) (conntrack.Tuple, bool) {
	if rnd == nil {
		rnd = randU16
	}
	sc := scratches.Get().(*scratch)
	defer scratches.Put(sc)
	reply := &sc.reply
	l := lookup{taken: taken}
	// 1) Source NAT: keep the original, or the mapping of the same source.
	if manip == Src && r.Flags&RandomAll == 0 {
		if inRange(&orig, r) {
			if !l.used(reply, &orig) {
				return orig, true
			}
		} else if sameSource != nil {
			sc.orig = orig
			if t, ok := findAppropriateSrc(&sc.orig, r, sameSource, &sc.mapped); ok && !l.used(reply, &t) {
				return t, true
			}
		}
	}
	// 2) The address.
	t := orig
	findBestIPsProto(&t, r, manip)
	// 3) The port or identifier: keep it if in range and free.
	if r.Flags&RandomAll == 0 {
		if r.Flags&ProtoSpecified != 0 {
			if r.Flags&ProtoOffset == 0 && l4InRange(&t, manip, r.MinProto, r.MaxProto) {
				if r.MinProto == r.MaxProto {
					return t, !l.used(reply, &t)
				}
				if !l.used(reply, &t) {
					return t, true
				}
			}
		} else if !l.used(reply, &t) {
			return t, true
		}
	}
	free, checked := l4UniqueTuple(&t, r, manip, &l, reply, rnd)
	if !checked {
		free = !l.used(reply, &t)
	}
	return t, free
}

// SameSource is UniqueWithSource's by-source index.
type SameSource func(orig *conntrack.Tuple, n int, reply *conntrack.Tuple) bool

// scratch holds the tuples UniqueWithSource passes to taken and
// sameSource: tuples on its stack would escape to the heap through the
// calls of unknown functions, once per call.
type scratch struct{ reply, orig, mapped conntrack.Tuple }

var scratches = sync.Pool{New: func() any { return new(scratch) }}

// lookup is the kernel's nf_nat_used_tuple over the caller's taken.
type lookup struct {
	taken func(*conntrack.Tuple) bool
}

// used reports whether the reply tuple candidate t would give is taken,
// writing it to reply (one of replies) for taken. reply is not a field
// of lookup: the tuple a call of an unknown function is given leaks, and
// with it whatever holds it, which would make taken (often a closure)
// escape to the heap at each Unique.
func (l lookup) used(reply, t *conntrack.Tuple) bool {
	*reply = t.Inverse()
	return l.taken(reply)
}

// randU16 is get_random_u16.
func randU16() uint16 { return uint16(rand.Uint32()) }

// inRange is the kernel's nf_in_range: whether source-mapping a
// connection so that its tuple is t meets r: t's source address in the
// range (with MapIPs) and its source port or identifier (with
// ProtoSpecified).
func inRange(t *conntrack.Tuple, r *Range) bool {
	if r.Flags&MapIPs != 0 && !addrInRange(t, r) {
		return false
	}
	if r.Flags&ProtoSpecified == 0 {
		return true
	}
	return l4InRange(t, Src, r.MinProto, r.MaxProto)
}

// addrInRange is nf_nat_inet_in_range: t's source address between the
// range's bounds, as big-endian numbers.
func addrInRange(t *conntrack.Tuple, r *Range) bool {
	n := 16
	if t.Family == 4 {
		n = 4
	}
	return bytes.Compare(t.Src[:n], r.MinAddr[:n]) >= 0 && bytes.Compare(t.Src[:n], r.MaxAddr[:n]) <= 0
}

// l4InRange is the kernel's l4proto_in_range: whether the part of t the
// manipulation changes (source or destination port; the ICMP identifier
// either way) is within [lo, hi]. Protocols without ports always are.
func l4InRange(t *conntrack.Tuple, manip Manip, lo, hi uint16) bool {
	var p uint16
	switch t.Proto {
	case conntrack.ProtoICMP, conntrack.ProtoICMPv6:
		p = t.SrcPort
	case conntrack.ProtoTCP, conntrack.ProtoUDP, protoUDPLite, protoSCTP, protoGRE:
		p = t.SrcPort
		if manip == Dst {
			p = t.DstPort
		}
	default:
		return true
	}
	return p >= lo && p <= hi
}

// findAppropriateSrc is the kernel's find_appropriate_src: the first
// connection from the same source whose mapping, with orig's
// destination, is in range.
func findAppropriateSrc(orig *conntrack.Tuple, r *Range, sameSource SameSource, reply *conntrack.Tuple) (conntrack.Tuple, bool) {
	for n := 0; sameSource(orig, n, reply); n++ {
		t := reply.Inverse()
		t.Dst, t.DstPort, t.Proto, t.Zone = orig.Dst, orig.DstPort, orig.Proto, orig.Zone
		if inRange(&t, r) {
			return t, true
		}
	}
	return conntrack.Tuple{}, false
}

// findBestIPsProto is the kernel's find_best_ips_proto: with MapIPs, the
// address the manipulation changes is set from the range, the single
// address of a one-address range, else a jhash2 of the source address
// (all four 32-bit words, as the kernel hashes union nf_inet_addr,
// read in the byte order of the little-endian machines it runs on)
// seeded with the destination's last word xor the zone id (0 with
// Persistent), scaled into the range word by word. Once a word is below
// the range's maximum, the words after it take any value.
func findBestIPsProto(t *conntrack.Tuple, r *Range, manip Manip) {
	if r.Flags&MapIPs == 0 {
		return
	}
	v := &t.Src
	if manip == Dst {
		v = &t.Dst
	}
	if r.MinAddr == r.MaxAddr {
		*v = r.MinAddr
		return
	}
	last := 3
	if t.Family == 4 {
		last = 0
	}
	var src [4]uint32
	for i := range src {
		src[i] = binary.LittleEndian.Uint32(t.Src[4*i:])
	}
	persistent := r.Flags&Persistent != 0
	var initval uint32
	if !persistent {
		initval = binary.LittleEndian.Uint32(t.Dst[4*last:]) ^ uint32(t.Zone)
	}
	j := jhash2(src[:], initval)
	full := false
	for i := 0; i <= last; i++ {
		var lo, dist uint32
		if !full {
			lo = binary.BigEndian.Uint32(r.MinAddr[4*i:])
			dist = binary.BigEndian.Uint32(r.MaxAddr[4*i:]) - lo + 1
		} else {
			dist = ^uint32(0)
		}
		binary.BigEndian.PutUint32(v[4*i:], lo+reciprocalScale(j, dist))
		if [4]byte(v[4*i:]) != [4]byte(r.MaxAddr[4*i:]) {
			full = true
		}
		if !persistent {
			// The destination as it is now: for destination NAT, the
			// word just chosen.
			j ^= binary.LittleEndian.Uint32(t.Dst[4*i:])
		}
	}
}

// l4UniqueTuple is the kernel's nf_nat_l4proto_unique_tuple: it sets
// the port or identifier the manipulation changes to a free one if it
// can. checked reports whether the kernel looked at the table for the
// tuple it left (free then says what it found); it returns unchecked
// where the kernel changes nothing.
func l4UniqueTuple(t *conntrack.Tuple, r *Range, manip Manip, l *lookup, reply *conntrack.Tuple, rnd func() uint16) (free, checked bool) {
	var key *uint16
	var lo, size uint32
	switch t.Proto {
	case conntrack.ProtoICMP, conntrack.ProtoICMPv6:
		// The identifier is the same for either direction.
		key = &t.SrcPort
		if r.Flags&ProtoSpecified == 0 {
			lo, size = 0, 65536
		} else {
			// As the kernel, in unsigned arithmetic: a reversed range
			// wraps to a huge size.
			lo = uint32(r.MinProto)
			size = uint32(r.MaxProto) - lo + 1
		}
	case conntrack.ProtoTCP, conntrack.ProtoUDP, protoUDPLite, protoSCTP:
		key = &t.SrcPort
		if manip == Dst {
			key = &t.DstPort
		}
		if r.Flags&ProtoSpecified == 0 {
			if manip == Dst {
				// A destination rewrite without a range keeps the port.
				return false, false
			}
			switch {
			case *key < 512:
				lo, size = 1, 511
			case *key < 1024:
				lo, size = 600, 1023-600+1
			default:
				lo, size = 1024, 65535-1024+1
			}
		} else {
			hi := uint32(r.MaxProto)
			lo = uint32(r.MinProto)
			if hi < lo {
				lo, hi = hi, lo
			}
			size = hi - lo + 1
		}
	default:
		// GRE keys change only for PPTP (a master connection); other
		// protocols have nothing to change.
		return false, false
	}
	var off uint16
	switch {
	case r.Flags&ProtoOffset != 0:
		off = *key - r.BaseProto
	case r.Flags&RandomAll != 0 || manip != Dst:
		off = rnd()
	}
	attempts := min(size, MaxAttempts)
	for {
		for i := uint32(0); i < attempts; i, off = i+1, off+1 {
			*key = uint16(lo + uint32(off)%size)
			if !l.used(reply, t) {
				return true, true
			}
		}
		if attempts >= size || attempts < 16 {
			return false, true
		}
		attempts /= 2
		off = rnd()
	}
}
