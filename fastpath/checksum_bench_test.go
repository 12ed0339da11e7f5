package fastpath_test

import (
	"testing"

	"github.com/xdpfwd/xdpfwd/fastpath"
	"github.com/xdpfwd/xdpfwd/fastpath/fastpathtest"
)

// BenchmarkChecksumFinishUDP measures the ChecksumFinish stage alone on a
// batch of 64 partial UDP/IPv4 frames (64 bytes, no tag, no tunnel): the
// common case whose cost the tunnel, tag and SCTP support must not raise.
func BenchmarkChecksumFinishUDP(b *testing.B) {
	frame := udp4(b, macB, macA, 64-42)
	var bt fastpath.Batch
	bt.Len = fastpath.BatchSize
	frames := make([][]byte, fastpath.BatchSize)
	for i := range bt.Packets[:bt.Len] {
		frames[i] = append([]byte(nil), frame...)
	}
	var c fastpath.ChecksumFinish
	off := fastpathtest.MakePartial(b, frames[0])
	partial := [2]byte{frames[0][off], frames[0][off+1]}
	for i := range bt.Packets[:bt.Len] {
		p := &bt.Packets[i]
		p.Reset(0, frames[i], 0)
		fastpath.ParsePacket(p)
	}
	b.ReportAllocs()
	for b.Loop() {
		for i := range bt.Packets[:bt.Len] {
			frames[i][off], frames[i][off+1] = partial[0], partial[1]
		}
		c.Process(&bt, 0)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*fastpath.BatchSize), "ns/packet")
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
		frames := make([][]byte, fastpath.BatchSize)
		for i := range frames {
			frames[i] = append([]byte(nil), partial...)
		}
		b.Run(c.name, func(b *testing.B) {
			var bt fastpath.Batch
			bt.Len = fastpath.BatchSize
			var cf fastpath.ChecksumFinish
			b.ReportAllocs()
			for b.Loop() {
				for i, f := range frames {
					copy(f, partial)
					bt.Packets[i].Reset(0, f, 0)
				}
				fastpath.Parse{}.Process(&bt, 0)
				cf.Process(&bt, 0)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*fastpath.BatchSize), "ns/packet")
		})
	}
}
