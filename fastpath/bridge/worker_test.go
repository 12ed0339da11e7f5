package bridge

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/xdpfwd/xdpfwd/fastpath"
	"github.com/xdpfwd/xdpfwd/fastpath/fastpathtest"
)

// rig3 is a rig with fake ports 1, 2 and 3 (A, B and C) on one bridge.
func rig3(t *testing.T, frames, ring, fillTarget int) (*fastpathtest.Rig, *Set) {
	t.Helper()
	return newRig(t, fastpathtest.RigConfig{Frames: uint32(frames), Ring: ring, FillTarget: fillTarget},
		Config{Name: "br0", Ports: []fastpath.PortID{1, 2, 3}})
}

func TestWorkerBridgesThreePorts(t *testing.T) {
	r, bs := rig3(t, 256, 64, 32)
	req := arpRequest(t, macA, 2)
	out := r.Send(1, req)
	if len(out) != 2 || len(out[2]) != 1 || len(out[3]) != 1 || !bytes.Equal(out[2][0], req) || !bytes.Equal(out[3][0], req) {
		t.Fatalf("ARP broadcast from A: sent %v, want one copy on ports 2 and 3", out)
	}
	reply := arpReply(t, macB, macA)
	out = r.Send(2, reply)
	if len(out) != 1 || len(out[1]) != 1 || !bytes.Equal(out[1][0], reply) {
		t.Fatalf("ARP reply B→A: sent %v, want it on port 1 only", out)
	}
	data := udp4(t, macB, macA, 100)
	out = r.Send(1, data)
	if len(out) != 1 || len(out[2]) != 1 || !bytes.Equal(out[2][0], data) {
		t.Fatalf("A→B: sent %v, want it on port 2 only", out)
	}
	c := r.W.Counters()
	want := map[fastpath.PortID]fastpath.PortCounters{
		1: {RxPackets: 2, RxBytes: uint64(len(req) + len(data)), TxPackets: 1, TxBytes: uint64(len(reply))},
		2: {RxPackets: 1, RxBytes: uint64(len(reply)), TxPackets: 2, TxBytes: uint64(len(req) + len(data))},
		3: {TxPackets: 1, TxBytes: uint64(len(req))},
	}
	for p, w := range want {
		if c.Ports[p].RxPackets != w.RxPackets || c.Ports[p].RxBytes != w.RxBytes || c.Ports[p].TxPackets != w.TxPackets || c.Ports[p].TxBytes != w.TxBytes {
			t.Errorf("port %d counters %+v, want %+v", p, c.Ports[p], w)
		}
		for r, n := range c.Ports[p].Drops {
			if n != 0 {
				t.Errorf("port %d: %d dropped as %q", p, n, fastpath.Reason(r))
			}
		}
	}
	if got := bs.List()[0].Counters(); got != (Counters{Forwarded: 2, Flooded: 1, Learned: 2}) {
		t.Errorf("bridge counters %+v", got)
	}
}

func TestWorkerFinishesChecksums(t *testing.T) {
	r, _ := rig3(t, 256, 64, 32)
	r.Send(2, arpRequest(t, macB, 1)) // learn B
	for _, want := range [][]byte{udp4(t, macB, macA, 0), udp4(t, macB, macA, 1200), tcp6(t, macB, macA, 33)} {
		partial := bytes.Clone(want)
		off := makePartial(t, partial)
		if bytes.Equal(partial, want) {
			t.Fatal("test frame's checksum equals its pseudo-header sum")
		}
		out := r.Send(1, partial)
		if len(out[2]) != 1 || !bytes.Equal(out[2][0], want) {
			t.Fatalf("forwarded checksum %#x, want %#x", binary.BigEndian.Uint16(out[2][0][off:]), binary.BigEndian.Uint16(want[off:]))
		}
	}
	// A broadcast-flooded partial frame is finished on every copy.
	want := udp4(t, bcast, macA, 10)
	partial := bytes.Clone(want)
	makePartial(t, partial)
	out := r.Send(1, partial)
	if len(out[2]) != 1 || len(out[3]) != 1 || !bytes.Equal(out[2][0], want) || !bytes.Equal(out[3][0], want) {
		t.Fatal("flooded copies not finished")
	}
	// Three forwarded frames, and each of the flood's two copies.
	if r.Checksum.Finished() != 5 {
		t.Fatalf("Finished() = %d, want 5", r.Checksum.Finished())
	}
}
