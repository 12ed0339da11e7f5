package conntrack

import (
	"encoding/binary"
	"errors"
)

// TCP header flag bits (the header's 14th byte).
const (
	TCPFin uint8 = 0x01
	TCPSyn uint8 = 0x02
	TCPRst uint8 = 0x04
	TCPPsh uint8 = 0x08
	TCPAck uint8 = 0x10
	TCPUrg uint8 = 0x20
	TCPEce uint8 = 0x40
	TCPCwr uint8 = 0x80
)

// Errors of ParseTCPSegment: the checks of the kernel's tcp_error (and
// the header fetch before it), each of which makes nf_conntrack_tcp_packet
// return -NF_ACCEPT: the packet is tracked as invalid and no entry is
// created or changed.
var (
	// ErrTCPTruncated: fewer than 20 bytes of header, a data offset
	// below 5 words, or a segment shorter than its data offset
	// ("truncated packet").
	ErrTCPTruncated = errors.New("conntrack: truncated TCP packet")
	// ErrTCPFlags: a flag combination outside tcp_valid_flags ("invalid
	// tcp flag combination").
	ErrTCPFlags = errors.New("conntrack: invalid TCP flag combination")
)

// TCPSegment is what the tracker reads from one TCP segment, decoded once
// by ParseTCPSegment. It holds no pointers.
type TCPSegment struct {
	// Seq and Ack are the sequence and acknowledgement numbers.
	Seq, Ack uint32
	// Sack is Ack raised to the highest right edge of the first SACK
	// option's blocks that lies after it, as the kernel's tcp_sack
	// computes; Ack when there is no SACK option. The tracker uses it
	// only if the receiver negotiated SACK.
	Sack uint32
	// PayloadLen is the number of data bytes after the header.
	PayloadLen uint32
	// Window is the raw (unscaled) window field.
	Window uint16
	// Flags is the header's flag byte (TCPFin … TCPCwr).
	Flags uint8
	// HeaderLen is the header length in bytes (data offset × 4).
	HeaderLen uint8
	// OptFlags is what the kernel's tcp_options finds in the options:
	// TCPFlagWindowScale and TCPFlagSackPerm.
	OptFlags uint8
	// WScale is the window scale option's shift, capped at 14 (0 without
	// the option).
	WScale uint8
}

// tcpMaxWScale is TCP_MAX_WSCALE (RFC 7323).
const tcpMaxWScale = 14

// TCP option kinds and lengths the tracker reads.
const (
	tcpOptEOL          = 0
	tcpOptNOP          = 1
	tcpOptWindow       = 3
	tcpOptSackPerm     = 4
	tcpOptSack         = 5
	tcpOptLenWindow    = 3
	tcpOptLenSackPerm  = 2
	tcpOptLenSackBase  = 2
	tcpOptLenSackBlock = 8
)

// tcpValidFlags mirrors the kernel's tcp_valid_flags: indexed by the flag
// byte without PSH, ECE and CWR (which are always allowed), true for the
// combinations tcp_error accepts.
var tcpValidFlags = [TCPFin | TCPSyn | TCPRst | TCPAck | TCPUrg + 1]bool{
	TCPSyn:                   true,
	TCPSyn | TCPUrg:          true,
	TCPSyn | TCPAck:          true,
	TCPRst:                   true,
	TCPRst | TCPAck:          true,
	TCPFin | TCPAck:          true,
	TCPFin | TCPAck | TCPUrg: true,
	TCPAck:                   true,
	TCPAck | TCPUrg:          true,
}

// TCPValidFlags reports whether a TCP flag byte is a combination the
// kernel's tcp_error lets through.
func TCPValidFlags(flags uint8) bool {
	return tcpValidFlags[flags&^(TCPPsh|TCPEce|TCPCwr)]
}

// ParseTCPSegment decodes a TCP segment for the tracker. tcp holds the
// segment from the start of its TCP header; it must cover at least the
// header with its options and may go on into the payload. segLen is the
// segment's length, header and payload, as the IP header gives it (the
// kernel's skb->len - dataoff): the payload length is segLen minus the
// header length.
//
// It makes the checks of the kernel's tcp_error and returns
// ErrTCPTruncated or ErrTCPFlags for a packet that fails them, which the
// kernel tracks as invalid. tcp_error's third check, the checksum
// (nf_conntrack_checksum, in PRE_ROUTING only), needs the IP pseudo
// header and is the caller's.
func ParseTCPSegment(tcp []byte, segLen int) (TCPSegment, error) {
	const minHeader = 20
	if len(tcp) < minHeader {
		return TCPSegment{}, ErrTCPTruncated
	}
	hlen := int(tcp[12]>>4) * 4
	if hlen < minHeader || segLen < hlen || len(tcp) < hlen {
		return TCPSegment{}, ErrTCPTruncated
	}
	flags := tcp[13]
	if !TCPValidFlags(flags) {
		return TCPSegment{}, ErrTCPFlags
	}
	seg := TCPSegment{
		Seq:        binary.BigEndian.Uint32(tcp[4:8]),
		Ack:        binary.BigEndian.Uint32(tcp[8:12]),
		PayloadLen: uint32(segLen - hlen),
		Window:     binary.BigEndian.Uint16(tcp[14:16]),
		Flags:      flags,
		HeaderLen:  uint8(hlen),
	}
	seg.Sack = seg.Ack
	if hlen > minHeader {
		opts := tcp[minHeader:hlen]
		seg.OptFlags, seg.WScale = tcpParseOptions(opts)
		seg.Sack = tcpSackEdge(opts, seg.Ack)
	}
	return seg, nil
}

// end is the sequence number after the segment: seq + payload, plus one
// for SYN and one for FIN (the kernel's segment_seq_plus_len).
func (s *TCPSegment) end() uint32 {
	e := s.Seq + s.PayloadLen
	if s.Flags&TCPSyn != 0 {
		e++
	}
	if s.Flags&TCPFin != 0 {
		e++
	}
	return e
}

// hasOptions reports whether the header carries options: the kernel's
// tcp_options leaves the state alone when there are none.
func (s *TCPSegment) hasOptions() bool { return s.HeaderLen > 20 }

// tcpParseOptions walks the options as the kernel's tcp_options does (a
// simplified tcp_parse_options): it stops at EOL, at a length below 2
// ("silly options") and at an option running past the end, keeping what
// it found before. It returns the SACK-permitted and window scale flags
// and the scale, capped at 14.
func tcpParseOptions(opts []byte) (flags, wscale uint8) {
	for i := 0; i < len(opts); {
		kind := opts[i]
		switch kind {
		case tcpOptEOL:
			return flags, wscale
		case tcpOptNOP:
			i++
			continue
		}
		if len(opts)-i < 2 {
			return flags, wscale
		}
		size := int(opts[i+1])
		if size < 2 || size > len(opts)-i {
			return flags, wscale
		}
		switch {
		case kind == tcpOptSackPerm && size == tcpOptLenSackPerm:
			flags |= TCPFlagSackPerm
		case kind == tcpOptWindow && size == tcpOptLenWindow:
			wscale = min(opts[i+2], tcpMaxWScale)
			flags |= TCPFlagWindowScale
		}
		i += size
	}
	return flags, wscale
}

// tcpSackEdge walks the options as the kernel's tcp_sack does and returns
// ack raised, block by block, to each right edge of the first
// well-formed SACK option that is after it in sequence space.
func tcpSackEdge(opts []byte, ack uint32) uint32 {
	sack := ack
	for i := 0; i < len(opts); {
		kind := opts[i]
		switch kind {
		case tcpOptEOL:
			return sack
		case tcpOptNOP:
			i++
			continue
		}
		if len(opts)-i < 2 {
			return sack
		}
		size := int(opts[i+1])
		if size < 2 || size > len(opts)-i {
			return sack
		}
		if kind == tcpOptSack && size >= tcpOptLenSackBase+tcpOptLenSackBlock &&
			(size-tcpOptLenSackBase)%tcpOptLenSackBlock == 0 {
			for b := i + tcpOptLenSackBase; b < i+size; b += tcpOptLenSackBlock {
				right := binary.BigEndian.Uint32(opts[b+4 : b+8])
				if seqAfter(right, sack) {
					sack = right
				}
			}
			return sack
		}
		i += size
	}
	return sack
}

// seqBefore and seqAfter compare sequence numbers modulo 2^32, as the
// kernel's before() and after().
func seqBefore(a, b uint32) bool { return int32(a-b) < 0 }

func seqAfter(a, b uint32) bool { return seqBefore(b, a) }
