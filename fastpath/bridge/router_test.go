package bridge

import (
	"bytes"
	"slices"
	"testing"

	"github.com/xdpfwd/xdpfwd/fastpath"
	"github.com/xdpfwd/xdpfwd/fastpath/fastpathtest"
	"github.com/xdpfwd/xdpfwd/fastpath/header"
)

var macRouter = header.MAC{0x02, 0, 0, 0, 0, 0xee}

// fakeRouter stands for the router at HookPrerouting: it consumes every
// routed packet, recording its ingress port and bytes, and for every
// frame of EtherType 0x88b6 it receives sends a packet out of the bridge
// (to the destination MAC in the frame's payload) at HookOutput.
type fakeRouter struct {
	got   []string
	sends [][]byte // frames to send out of the bridge, one per 0x88b6 frame
	group fastpath.GroupID
}

func (*fakeRouter) Name() string { return "fakerouter" }

func (r *fakeRouter) Process(b *fastpath.Batch, _ fastpath.Time) {
	for i := range b.Packets[:b.Len] {
		p := &b.Packets[i]
		if p.Action != fastpath.ActionContinue || !p.Routed {
			continue
		}
		r.got = append(r.got, string(rune('0'+p.InPort))+":"+string(p.Data[14:15]))
		p.Action = fastpath.ActionConsumed
		if header.Ethernet(p.Data).EtherType() == 0x88b6 && len(r.sends) > 0 {
			f := r.sends[0]
			r.sends = r.sends[1:]
			e := b.Emit(p.InPort, len(f))
			copy(e.Data, f)
			e.ToGroup(r.group)
		}
	}
}

// routerRig is a worker with bridge br0 on ports 1-3, whose router
// interface has MAC macRouter, and a fakeRouter at prerouting.
func routerRig(t *testing.T) (*fastpathtest.Rig, *Set, *fakeRouter) {
	t.Helper()
	cfg := Config{Name: "br0", Ports: []fastpath.PortID{1, 2, 3}, RouterMAC: macRouter}
	groups := &fastpath.PortGroups{}
	bs, err := NewSet(groups, cfg)
	if err != nil {
		t.Fatal(err)
	}
	fr := &fakeRouter{group: bs.List()[0].Group()}
	r := fastpathtest.NewRig(t, fastpathtest.RigConfig{Ports: []fastpath.PortID{1, 2, 3}, Groups: groups, Checksum: true,
		Stages: append(bs.Stages(), fastpath.At(fastpath.HookPrerouting, 0, fr))})
	return r, bs, fr
}

func TestBridgeRouterInterface(t *testing.T) {
	r, bs, fr := routerRig(t)
	frame := func(dst, src header.MAC, et uint16, id byte) []byte {
		f := rawFrame(dst, src)
		header.Ethernet(f).SetEtherType(et)
		f[14] = id
		return f
	}

	// A broadcast is flooded and the router gets a copy.
	bc := frame(bcast, macA, 0x88b5, 'a')
	out := r.Send(1, bc)
	if len(out[2]) != 1 || len(out[3]) != 1 || !bytes.Equal(out[2][0], bc) || len(out[1]) != 0 {
		t.Fatalf("broadcast: sent %v", out)
	}
	// Unicast to the router MAC goes to the router alone.
	out = r.Send(2, frame(macRouter, macB, 0x88b5, 'b'))
	if len(out) != 0 {
		t.Fatalf("to the router MAC: sent %v", out)
	}
	if want := []string{"1:a", "2:b"}; !slices.Equal(fr.got, want) {
		t.Fatalf("router got %v, want %v", fr.got, want)
	}
	// What the router sends out of the bridge goes to the port the FDB
	// knows (A on 1, B on 2), or to every port (the ingress one too) if
	// the MAC is unknown or broadcast.
	toA, toC, toAll := frame(macA, macRouter, 0x0800, 1), frame(macC, macRouter, 0x0800, 2), frame(bcast, macRouter, 0x0806, 3)
	fr.sends = [][]byte{toA, toC, toAll}
	out = r.Send(2, frame(macRouter, macB, 0x88b6, 'c'), frame(macRouter, macB, 0x88b6, 'd'), frame(macRouter, macB, 0x88b6, 'e'))
	if len(out[1]) != 3 || len(out[2]) != 2 || len(out[3]) != 2 {
		t.Fatalf("routed out: %d on 1, %d on 2, %d on 3; want 3, 2, 2", len(out[1]), len(out[2]), len(out[3]))
	}
	if !bytes.Equal(out[1][0], toA) || !bytes.Equal(out[2][0], toC) || !bytes.Equal(out[2][1], toAll) {
		t.Fatalf("routed out: port 1 %x, port 2 %x", out[1], out[2])
	}
	c := bs.List()[0].Counters()
	if c.ToRouter != 5 || c.RoutedOut != 3 {
		t.Fatalf("counters %+v, want 5 to the router, 3 routed out", c)
	}
	if n := r.W.Counters().Ports[2].Consumed; n != 4 {
		t.Fatalf("port 2: %d consumed, want 4", n)
	}
}

func TestBridgeRouterMACErrors(t *testing.T) {
	for _, tt := range []struct {
		cfg  Config
		want string
	}{
		{Config{Name: "br0", Ports: []fastpath.PortID{1}, RouterMAC: bcast}, "not a unicast address"},
		{Config{Name: "br0", Ports: []fastpath.PortID{1}, RouterMAC: macRouter, VLANs: map[fastpath.PortID]PortVLANs{1: {PVID: 1}}}, "VLAN-aware bridge is not supported"},
	} {
		_, err := NewSet(&fastpath.PortGroups{}, tt.cfg)
		if err == nil || !bytes.Contains([]byte(err.Error()), []byte(tt.want)) {
			t.Errorf("%+v: error %v, want %q", tt.cfg, err, tt.want)
		}
	}
}

// TestBridgeTraceToRouter: a traced frame for the bridge's own MAC has
// its bridge step say that it goes up to the router interface; one for
// a host has the FDB's word.
func TestBridgeTraceToRouter(t *testing.T) {
	r, _, _ := routerRig(t)
	tr, err := fastpath.NewTrace(fastpath.TraceConfig{Port: fastpath.AnyPort, Count: 2})
	if err != nil {
		t.Fatal(err)
	}
	r.W.SetTrace(tr)
	r.Send(2, rawFrame(macRouter, macB))
	r.Send(1, rawFrame(macB, macA))
	var notes []string
	tr.Drain(func(rec *fastpath.TraceRecord) {
		for _, s := range rec.Steps() {
			if s.Stage == "bridge" {
				notes = append(notes, s.Note())
			}
		}
	})
	want := []string{"for the bridge's own address: up to its router interface", "destination in the FDB"}
	if !slices.Equal(notes, want) {
		t.Fatalf("bridge notes %q, want %q", notes, want)
	}
}
