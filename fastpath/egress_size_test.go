package fastpath

import (
	"bytes"
	"testing"
)

// TestWorkerDropsTooBigForEgress: a frame longer than the egress port's
// device accepts is dropped and counted on the egress port instead of
// being handed to a device that would discard it uncounted; shorter ones
// pass, and a flood drops only the copies that do not fit.
func TestWorkerDropsTooBigForEgress(t *testing.T) {
	r := newRig(t, 256, 64, 32)
	r.send(2, arpReply(t, macB, macA)) // learn B on port 2
	long := udp4(t, macB, macA, 200)
	short := udp4(t, macB, macA, 20)
	r.w.SetPortMaxFrame(2, len(long)-1)
	r.w.SetPortMaxFrame(3, len(long)-1)

	if out := r.send(1, long); len(out) != 0 {
		t.Fatalf("a %d-byte frame to a port that takes %d: sent %v, want nothing", len(long), len(long)-1, out)
	}
	if got := r.w.Counters().Ports[2].Drops[DropTooBigForEgress]; got != 1 {
		t.Fatalf("egress port 2's %q drops = %d, want 1", DropTooBigForEgress, got)
	}
	if out := r.send(1, short); len(out[2]) != 1 || !bytes.Equal(out[2][0], short) {
		t.Fatalf("a short frame: sent %v, want it on port 2", out)
	}

	// A flood with port 2's limit lifted: only port 3's copy is dropped.
	r.w.SetPortMaxFrame(2, 0)
	flood := udp4(t, macC, macA, 200) // C is unknown: flooded
	tx3 := r.w.Counters().Ports[3].TxPackets
	out := r.send(1, flood)
	if len(out) != 1 || len(out[2]) != 1 || !bytes.Equal(out[2][0], flood) {
		t.Fatalf("flood with port 3 limited: sent %v, want it on port 2 only", out)
	}
	c := r.w.Counters()
	if got := c.Ports[3].Drops[DropTooBigForEgress]; got != 1 {
		t.Fatalf("egress port 3's %q drops = %d, want 1", DropTooBigForEgress, got)
	}
	if c.Ports[3].TxPackets != tx3 {
		t.Fatalf("port 3 TX packets %d after the flood, want %d as before", c.Ports[3].TxPackets, tx3)
	}
}
