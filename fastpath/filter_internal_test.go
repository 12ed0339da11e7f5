package fastpath

import (
	"encoding/binary"
	"testing"

	"github.com/xdpfwd/xdpfwd/fastpath/cbpf"
)

// udpPort9999 is tcpdump -ddd -y EN10MB 'udp port 9999'.
var udpPort9999 = [][4]uint32{
	{40, 0, 0, 12}, {21, 0, 6, 34525}, {48, 0, 0, 20}, {21, 0, 15, 17}, {40, 0, 0, 54}, {21, 12, 0, 9999},
	{40, 0, 0, 56}, {21, 10, 11, 9999}, {21, 0, 10, 2048}, {48, 0, 0, 23}, {21, 0, 8, 17}, {40, 0, 0, 20},
	{69, 6, 0, 8191}, {177, 0, 0, 14}, {72, 0, 0, 14}, {21, 2, 0, 9999}, {72, 0, 0, 16}, {21, 0, 1, 9999},
	{6, 0, 0, 262144}, {6, 0, 0, 0},
}

func compileFilter(tb testing.TB, raw [][4]uint32) *cbpf.Program {
	tb.Helper()
	prog := make([]cbpf.Instruction, len(raw))
	for i, in := range raw {
		prog[i] = cbpf.Instruction{Op: uint16(in[0]), Jt: uint8(in[1]), Jf: uint8(in[2]), K: in[3]}
	}
	p, err := cbpf.Compile(prog)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// udpFrame is an Ethernet/IPv4/UDP frame to port dport.
func udpFrame(dport uint16) []byte {
	f := make([]byte, 60)
	binary.BigEndian.PutUint16(f[12:], 0x0800)
	f[14], f[23] = 0x45, 17
	binary.BigEndian.PutUint16(f[36:], dport)
	return f
}

// TestFilterBatch: the filter's result for each packet of a batch, the
// same as run one at a time; with no filter, all.
func TestFilterBatch(t *testing.T) {
	p := compileFilter(t, udpPort9999)
	var b Batch
	for i := range BatchSize {
		b.Packets[i].Data = udpFrame(uint16(9998 + i%3))
	}
	var f filterBatch
	got := f.packets(p, 0, b.Packets[:BatchSize])
	for i, v := range got {
		if want := p.Run(b.Packets[i].Data); v != want || (v != 0) != (i%3 == 1) {
			t.Fatalf("packet %d: %d, one at a time %d", i, v, want)
		}
	}
	for i, v := range f.packets(nil, 77, b.Packets[:3]) {
		if v != 77 {
			t.Fatalf("no filter, packet %d: %d, want 77", i, v)
		}
	}
	if a := testing.AllocsPerRun(100, func() { f.packets(p, 0, b.Packets[:BatchSize]) }); a != 0 {
		t.Fatalf("%v allocations", a)
	}
}

// BenchmarkFilterBatch is the cost per packet of running 'udp port 9999'
// over a batch of 64 UDP frames that do not match: at once
// (filterBatch), and one call per packet.
func BenchmarkFilterBatch(b *testing.B) {
	p := compileFilter(b, udpPort9999)
	var batch Batch
	for i := range BatchSize {
		batch.Packets[i].Data = udpFrame(9)
	}
	pkts := batch.Packets[:BatchSize]
	b.Run("batch", func(b *testing.B) {
		var f filterBatch
		for b.Loop() {
			f.packets(p, 0, pkts)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*BatchSize), "ns/packet")
	})
	b.Run("each", func(b *testing.B) {
		for b.Loop() {
			for i := range pkts {
				p.Run(pkts[i].Data)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*BatchSize), "ns/packet")
	})
}
