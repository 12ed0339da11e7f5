package fastpath_test

import (
	"bytes"
	"testing"

	"github.com/xdpfwd/xdpfwd/fastpath"
)

// TestWorkerDropsTooBigForEgress: a frame longer than the egress port's
// device accepts is dropped and counted on the egress port instead of
// being handed to a device that would discard it uncounted; shorter ones
// pass, and a flood drops only the copies that do not fit.
func TestWorkerDropsTooBigForEgress(t *testing.T) {
	r := rig3(t, 256, 64, 32)
	long := udp4(t, macB, macA, 200)
	short := udp4(t, macB, macA, 20)
	r.W.SetPortMaxFrame(2, len(long)-1)
	r.W.SetPortMaxFrame(3, len(long)-1)

	if out := r.Send(1, long); len(out) != 0 {
		t.Fatalf("a %d-byte frame to a port that takes %d: sent %v, want nothing", len(long), len(long)-1, out)
	}
	if got := r.W.Counters().Ports[2].Drops[fastpath.DropTooBigForEgress]; got != 1 {
		t.Fatalf("egress port 2's %q drops = %d, want 1", fastpath.DropTooBigForEgress, got)
	}
	if out := r.Send(1, short); len(out[2]) != 1 || !bytes.Equal(out[2][0], short) {
		t.Fatalf("a short frame: sent %v, want it on port 2", out)
	}

	// A flood with port 2's limit lifted: only port 3's copy is dropped.
	r.W.SetPortMaxFrame(2, 0)
	flood := udp4(t, bcast, macA, 200) // flooded
	tx3 := r.W.Counters().Ports[3].TxPackets
	out := r.Send(1, flood)
	if len(out) != 1 || len(out[2]) != 1 || !bytes.Equal(out[2][0], flood) {
		t.Fatalf("flood with port 3 limited: sent %v, want it on port 2 only", out)
	}
	c := r.W.Counters()
	if got := c.Ports[3].Drops[fastpath.DropTooBigForEgress]; got != 1 {
		t.Fatalf("egress port 3's %q drops = %d, want 1", fastpath.DropTooBigForEgress, got)
	}
	if c.Ports[3].TxPackets != tx3 {
		t.Fatalf("port 3 TX packets %d after the flood, want %d as before", c.Ports[3].TxPackets, tx3)
	}
}
