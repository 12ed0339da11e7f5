package fastpath_test

import (
	"bytes"
	"slices"
	"testing"

	"github.com/xdpfwd/xdpfwd/fastpath"
	"github.com/xdpfwd/xdpfwd/fastpath/fastpathtest"
	"github.com/xdpfwd/xdpfwd/fastpath/header"
)

// answerer is a stage that answers every frame of EtherType 0x88b6 with an
// emitted 60-byte frame back to its sender's port: destination the
// sender, source the MAC given, payload the request's first payload byte.
type answerer struct {
	mac header.MAC
}

func (answerer) Name() string { return "answerer" }

func (a answerer) Process(b *fastpath.Batch, _ fastpath.Time) {
	n := b.Len // not the packets it emits itself
	for i := range b.Packets[:n] {
		p := &b.Packets[i]
		if p.Action != fastpath.ActionContinue || p.EtherType != 0x88b6 {
			continue
		}
		r := b.Emit(p.InPort, 60)
		if r == nil {
			continue
		}
		e := header.Ethernet(r.Data)
		e.SetDst(header.Ethernet(p.Data).Src())
		e.SetSrc(a.mac)
		e.SetEtherType(0x88b7)
		for j := 14; j < 60; j++ {
			r.Data[j] = p.Data[14]
		}
		r.ToPort(p.InPort)
	}
}

// localSeen records Local for every packet it sees.
type localSeen struct{ seen *[]bool }

func (localSeen) Name() string { return "localseen" }

func (l localSeen) Process(b *fastpath.Batch, _ fastpath.Time) {
	for i := range b.Packets[:b.Len] {
		*l.seen = append(*l.seen, b.Packets[i].Local)
	}
}

func request(src header.MAC, id byte) []byte {
	f := rawFrame(bcast, src)
	header.Ethernet(f).SetEtherType(0x88b6)
	f[14] = id
	return f
}

// TestEmit: a stage emits answers through the batch; later stages see them
// as Local, the worker sends them out of the port the stage chose and
// counts them as TX, and every frame comes back. With the UMEM empty,
// Emit fails and the worker counts DropNoEmit on the ingress port.
func TestEmit(t *testing.T) {
	var seen []bool
	router := fastpathtest.MAC(0x99)
	r := rig3(t, 64, 16, 4,
		fastpath.At(fastpath.HookBridgePrerouting, 10, answerer{mac: router}),
		fastpath.At(fastpath.HookBridgePrerouting, 20, localSeen{&seen}))
	out := r.Send(2, request(macB, 7), rawFrame(macA, macB), request(macB, 8))
	// The requests are broadcast: flooded to 1 and 3; the answers go back
	// to port 2.
	if len(out[2]) != 2 || len(out[1]) != 3 || len(out[3]) != 2 {
		t.Fatalf("sent on 1: %d, 2: %d, 3: %d frames; want 3, 2, 2", len(out[1]), len(out[2]), len(out[3]))
	}
	for i, id := range []byte{7, 8} {
		want := rawFrame(macB, router)
		header.Ethernet(want).SetEtherType(0x88b7)
		for j := 14; j < 60; j++ {
			want[j] = id
		}
		if !bytes.Equal(out[2][i], want) {
			t.Errorf("answer %d: %x, want %x", i, out[2][i], want)
		}
	}
	if want := []bool{false, false, false, true, true}; !slices.Equal(seen, want) {
		t.Errorf("Local seen by the next stage: %v, want %v", seen, want)
	}
	if c := r.W.Counters().Ports[2]; c.TxPackets != 2 || c.RxPackets != 3 {
		t.Errorf("port 2: rx %d tx %d, want 3 and 2", c.RxPackets, c.TxPackets)
	}

	// No free frame: the answer is not sent, and counted.
	var grab [64]uint64
	n := r.Umem.Alloc(grab[:])
	r.Frames -= n
	// One free frame would let the flood copy or the answer through: keep
	// none, so the request floods to one port (the frame itself) only.
	out = r.Send(2, request(macB, 9))
	if len(out[2]) != 0 {
		t.Fatalf("answered with no free frame: %x", out[2])
	}
	if d := r.Drops(2, fastpath.DropNoEmit); d != 1 {
		t.Fatalf("%d %q drops on port 2, want 1", d, fastpath.DropNoEmit)
	}
}

// lateEmitter tries to emit from a per-output hook, where Emit refuses.
type lateEmitter struct{ got *int }

func (lateEmitter) Name() string { return "lateemitter" }

func (l lateEmitter) Process(b *fastpath.Batch, _ fastpath.Time) {
	for i := range b.Packets[:b.Len] {
		if b.Emit(b.Packets[i].InPort, 60) != nil {
			*l.got++
		}
	}
}

// TestEmitRefusedPerOutput: a stage in a per-output hook cannot emit (the
// copies are made); each attempt is counted, nothing leaks.
func TestEmitRefusedPerOutput(t *testing.T) {
	got := 0
	r := rig3(t, 256, 64, 32, fastpath.At(fastpath.HookEgress, 0, lateEmitter{&got}))
	out := r.Send(1, rawFrame(macB, macA), rawFrame(bcast, macA))
	if got != 0 || len(out[2]) != 2 || len(out[3]) != 1 {
		t.Fatalf("emitted %d; sent %d on 2, %d on 3; want 0, 2, 1", got, len(out[2]), len(out[3]))
	}
	if d := r.Drops(1, fastpath.DropNoEmit); d != 3 {
		t.Fatalf("%d %q drops, want 3 (one per copy)", d, fastpath.DropNoEmit)
	}
}

// TestGroupWithoutEgress: a flood whose group has no port that can send
// is one drop ("no egress port") for the one frame; with one port down of
// two, the copy not made is one drop and the other port sends.
func TestGroupWithoutEgress(t *testing.T) {
	r := rig3(t, 256, 64, 32)
	r.W.SetPortDown(2, true)
	r.W.SetPortDown(3, true)
	r.Send(1, rawFrame(bcast, macA))
	if d := r.Drops(1, fastpath.DropNoEgress); d != 1 {
		t.Fatalf("all ports down: %d no-egress drops for one frame, want 1", d)
	}
	r.W.SetPortDown(3, false)
	out := r.Send(1, rawFrame(bcast, macA))
	if d := r.Drops(1, fastpath.DropNoEgress); d != 2 || len(out[3]) != 1 {
		t.Fatalf("port 2 down: %d no-egress drops in all (want 2), port 3 sent %d (want 1)", d, len(out[3]))
	}
}

// TestPortGroupsRefuseDuplicates: a group lists each port once.
func TestPortGroupsRefuseDuplicates(t *testing.T) {
	var g fastpath.PortGroups
	if _, err := g.Add([]fastpath.PortID{1, 2, 2}); err == nil {
		t.Fatal("a group with port 2 twice was accepted")
	}
}
