package fastpath

import (
	"testing"
)

// BenchmarkChecksumFinishUDP measures the ChecksumFinish stage alone on a
// batch of 64 partial UDP/IPv4 frames (64 bytes, no tag, no tunnel): the
// common case whose cost the tunnel, tag and SCTP support must not raise.
func BenchmarkChecksumFinishUDP(b *testing.B) {
	frame := udp4(b, macB, macA, 64-42)
	var bt Batch
	bt.Len = BatchSize
	frames := make([][]byte, BatchSize)
	for i := range bt.Packets {
		frames[i] = append([]byte(nil), frame...)
	}
	var c ChecksumFinish
	off := makePartial(b, frames[0])
	partial := [2]byte{frames[0][off], frames[0][off+1]}
	for i := range bt.Packets {
		p := &bt.Packets[i]
		p.Reset(0, frames[i], 0)
		parse(p)
		p.Verdict = VerdictForward
	}
	b.ReportAllocs()
	for b.Loop() {
		for i := range bt.Packets {
			frames[i][off], frames[i][off+1] = partial[0], partial[1]
		}
		c.Process(&bt, 0)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*BatchSize), "ns/packet")
}

// BenchmarkChecksumFinishKinds measures Parse + ChecksumFinish per packet
// on batches of one kind of partial frame from checksumCases.
func BenchmarkChecksumFinishKinds(b *testing.B) {
	for _, c := range checksumCases(b) {
		if c.partial == nil {
			continue
		}
		switch c.name {
		case "plain udp4", "802.1Q udp4", "802.1ad+802.1Q tcp6", "SCTP in 802.1Q, IPv4",
			"VXLAN, outer checksum by LCO, port 4789, IPv4 outer, tcp4 inner",
			"VXLAN, outer checksum 0, port 4789, IPv4 outer, udp6 inner",
			"GENEVE, Ethernet inside, outer 0", "GRE, IPv4 inside, GRE checksum by LCO":
		default:
			continue
		}
		partial := append([]byte(nil), c.correct...)
		c.partial(partial)
		frames := make([][]byte, BatchSize)
		for i := range frames {
			frames[i] = append([]byte(nil), partial...)
		}
		b.Run(c.name, func(b *testing.B) {
			var bt Batch
			bt.Len = BatchSize
			var cf ChecksumFinish
			b.ReportAllocs()
			for b.Loop() {
				for i, f := range frames {
					copy(f, partial)
					bt.Packets[i].Reset(0, f, 0)
				}
				Parse{}.Process(&bt, 0)
				for i := range bt.Packets {
					bt.Packets[i].Verdict = VerdictForward
				}
				cf.Process(&bt, 0)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*BatchSize), "ns/packet")
		})
	}
}
