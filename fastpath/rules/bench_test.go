package rules

import (
	"fmt"
	"testing"

	"github.com/xdpfwd/xdpfwd/fastpath"
)

// benchRuleset is n forward rules as nft compiles
// "ip saddr 192.168.X.Y tcp dport P counter accept", the last one matching
// the benchmark's packet (1.1.1.1 → 10.1.0.1:80), in a drop-policy chain.
func benchRuleset(n int) *Ruleset {
	var rs [][]Expr
	for i := range n {
		saddr := []byte{192, 168, byte(i >> 8), byte(i)}
		port := []byte{0x10, byte(i)}
		if i == n-1 {
			saddr, port = []byte{1, 1, 1, 1}, []byte{0, 80}
		}
		rs = append(rs, ex(ld(PayloadNetwork, 12, 4), eq(saddr...), l4(6), ld(PayloadTransport, 2, 2), eq(port...),
			&Counter{}, accept))
	}
	var b tb
	return &Ruleset{Tables: []*Table{table(FamilyIP, "t", b.base("fw", HookForward, 0, VerdictDrop, rs...))}}
}

// BenchmarkInterpreter runs one packet through n rules, the matching one
// last, with the interpreter alone (BenchmarkClassifier has both), and
// reports ns/packet.
func BenchmarkInterpreter(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprint(n, "rules"), func(b *testing.B) {
			p := mustCompile(b, benchRuleset(n), testEnv)
			interpreterOnly(p)
			benchForward(b, p, routed(frame4(b, macB, macA, "1.1.1.1", "10.1.0.1", tcp(1234, 80, "S")), portWAN, fastpath.HookForward, 2))
		})
	}
}

// benchForward runs pk through p's forward hook b.N times, after checking
// that p accepts it, and reports ns/packet.
func benchForward(b *testing.B, p *Program, pk *fastpath.Packet) {
	var w worker
	if _, acc := w.evalAt(p, fastpath.HookForward, pk, 0); !acc {
		b.Fatal("not accepted")
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		w.evalAt(p, fastpath.HookForward, pk, 0)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/packet")
}

// BenchmarkStage runs a batch of 64 packets through the engine's stages
// of a program with rules at the forward hook only: the cost of every
// stage but one is the check that its hook has no chain.
func BenchmarkStage(b *testing.B) {
	p := mustCompile(b, benchRuleset(10), testEnv)
	stages := NewEngine(p).Stages()
	pk := *routed(frame4(b, macB, macA, "1.1.1.1", "10.1.0.1", tcp(1234, 80, "S")), portWAN, fastpath.HookForward, 2)
	var tmpl, batch fastpath.Batch
	for i := range fastpath.BatchSize {
		tmpl.Packets[i] = pk
	}
	tmpl.Len = fastpath.BatchSize
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		copy(batch.Packets[:], tmpl.Packets[:tmpl.Len])
		batch.Len = tmpl.Len
		for _, a := range stages {
			a.Stage.Process(&batch, 0)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/fastpath.BatchSize, "ns/packet")
}
