package fastpath_test

import (
	"bytes"
	"testing"

	"github.com/xdpfwd/xdpfwd/fastpath"
	"github.com/xdpfwd/xdpfwd/fastpath/header"
)

// keeper is a stage that steals every frame of EtherType 0x88b8 and, once
// release is set, reinjects what it keeps (dropped with dropTest if
// dropThem is set), and consumes every frame of EtherType 0x88b9. It is a
// Holder while it keeps frames.
type keeper struct {
	kept     []keptFrame
	release  bool
	dropThem bool
}

type keptFrame struct {
	addr uint64
	n    int
	meta fastpath.Meta
}

func (*keeper) Name() string { return "keeper" }

func (k *keeper) Holding() bool { return len(k.kept) > 0 }

func (k *keeper) Process(b *fastpath.Batch, _ fastpath.Time) {
	n := b.Len
	for i := range b.Packets[:n] {
		p := &b.Packets[i]
		if p.Action != fastpath.ActionContinue {
			continue
		}
		switch p.EtherType {
		case 0x88b8:
			k.kept = append(k.kept, keptFrame{p.Addr, len(p.Data), p.Meta})
			p.Action = fastpath.ActionStolen
		case 0x88b9:
			p.Action = fastpath.ActionConsumed
		}
	}
	if !k.release {
		return
	}
	for len(k.kept) > 0 {
		f := k.kept[0]
		p := b.Reinject(f.addr, f.n, &f.meta)
		if p == nil {
			return
		}
		k.kept = k.kept[1:]
		p.Action = fastpath.ActionContinue
		if k.dropThem {
			p.Drop(dropTest)
		}
	}
}

func typed(dst, src header.MAC, et uint16, id byte) []byte {
	f := rawFrame(dst, src)
	header.Ethernet(f).SetEtherType(et)
	f[14] = id
	return f
}

// TestStolenAndReinjected: frames a stage steals stay counted (Stolen)
// and leave nothing; given back with no traffic at all (the worker runs
// the stage when idle), they walk on to their ports unchanged, in order;
// reinjected dropped, they are freed and counted. Consumed frames are
// freed and counted as consumed, not as drops.
func TestStolenAndReinjected(t *testing.T) {
	k := &keeper{}
	r := rig3(t, 256, 64, 32, fastpath.At(fastpath.HookBridgePrerouting, -1, k))
	held := [][]byte{typed(macB, macA, 0x88b8, 1), typed(macC, macA, 0x88b8, 2), typed(macB, macA, 0x88b8, 3)}
	out := r.Send(1, append(held, typed(macB, macA, 0x88b9, 4), rawFrame(macB, macA))...)
	if len(out[2]) != 1 || len(out[3]) != 0 {
		t.Fatalf("sent %d on 2, %d on 3; want only the plain frame", len(out[2]), len(out[3]))
	}
	if r.W.Stolen() != 3 {
		t.Fatalf("Stolen() = %d, want 3", r.W.Stolen())
	}
	c := r.W.Counters().Ports[1]
	if c.Consumed != 1 || c.RxPackets != 5 {
		t.Fatalf("port 1: consumed %d rx %d, want 1 and 5", c.Consumed, c.RxPackets)
	}
	for reason, n := range c.Drops {
		if n != 0 {
			t.Fatalf("port 1: %d dropped as %q", n, fastpath.Reason(reason))
		}
	}

	k.release = true
	if !r.W.Poll() { // no frame comes in: the idle run reinjects
		t.Fatal("Poll did nothing with a stage holding frames released")
	}
	got := r.Drain()
	if len(got[2]) != 2 || len(got[3]) != 1 || !bytes.Equal(got[2][0], held[0]) || !bytes.Equal(got[2][1], held[2]) || !bytes.Equal(got[3][0], held[1]) {
		t.Fatalf("reinjected frames sent %x", got)
	}
	r.W.Poll()
	r.Conserved("after reinjection")
	if r.W.Stolen() != 0 || r.W.Held() != 0 {
		t.Fatalf("stolen %d held %d after reinjection", r.W.Stolen(), r.W.Held())
	}

	k.release, k.dropThem = false, true
	r.Send(1, typed(macB, macA, 0x88b8, 5))
	k.release = true
	r.W.Poll()
	r.Conserved("after dropping reinjected")
	if d := r.Drops(1, dropTest); d != 1 || len(r.Drain()) != 0 {
		t.Fatalf("reinjected dropped: %d test drops, want 1 and nothing sent", d)
	}
}
