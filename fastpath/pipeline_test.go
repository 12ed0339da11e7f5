package fastpath

import "testing"

// TestPipelineStageStats: with profiling on, every stage of a bridge
// pipeline, the egress checksum stage included, reports the packets it
// could work on and the time it took; dropped packets count for no later
// stage; with profiling off nothing is added.
func TestPipelineStageStats(t *testing.T) {
	bs, err := NewBridges(BridgeConfig{Name: "br0", Ports: []PortID{1, 2}})
	if err != nil {
		t.Fatal(err)
	}
	pl := NewPipeline(Parse{}, bs.Stage(), &ChecksumFinish{})
	var b Batch
	b.Len = 3
	b.Packets[0] = Packet{Data: udp4(t, bcast, macA, 18), InPort: 1} // flooded
	b.Packets[1] = Packet{Data: udp4(t, bcast, macB, 18), InPort: 2} // flooded
	b.Packets[2] = Packet{Data: []byte{1, 2, 3}, InPort: 1}          // dropped by parse
	pl.Run(&b, 0)
	for _, s := range pl.StageStats() {
		if s.Packets != 0 || s.Nanoseconds != 0 {
			t.Fatalf("profiling off: %+v", s)
		}
	}
	pl.SetProfiling(true)
	const batches = 10
	for range batches {
		resetBatch(&b)
		pl.Run(&b, 0)
	}
	want := []struct {
		name    string
		packets uint64
	}{{"parse", 3 * batches}, {"bridge", 2 * batches}, {"checksum", 2 * batches}}
	st := pl.StageStats()
	if len(st) != len(want) {
		t.Fatalf("stage stats %+v", st)
	}
	for i, w := range want {
		if st[i].Name != w.name || st[i].Packets != w.packets || st[i].Nanoseconds == 0 {
			t.Errorf("stage %d: %+v, want %s with %d packets and some nanoseconds", i, st[i], w.name, w.packets)
		}
	}
	if b.Packets[0].Verdict != VerdictFlood || b.Packets[2].Verdict != VerdictDrop {
		t.Fatalf("verdicts %v %v", b.Packets[0].Verdict, b.Packets[2].Verdict)
	}
}
