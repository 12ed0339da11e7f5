package bridge

import (
	"slices"
	"testing"
	"time"

	"github.com/xdpfwd/xdpfwd/fastpath"
	"github.com/xdpfwd/xdpfwd/fastpath/header"
)

// verdict is what the pipeline decided for a packet, as the tests state
// it.
type verdict uint8

const (
	vForward verdict = iota + 1
	vFlood
	vDrop
)

// decided returns the verdict of p, its port and its group's ports.
func decided(p *fastpath.Packet, groups *fastpath.PortGroups) (verdict, fastpath.PortID, []fastpath.PortID) {
	switch {
	case p.Action == fastpath.ActionDrop:
		return vDrop, 0, nil
	case p.Egress == fastpath.EgressPort:
		return vForward, p.OutPort, nil
	case p.Egress == fastpath.EgressGroup:
		return vFlood, 0, groups.Ports(p.Group)
	}
	return 0, 0, nil
}

// step sends one frame in on a port at a time and says what the pipeline
// must decide.
type step struct {
	frame   []byte
	in      fastpath.PortID
	at      int // seconds
	verdict verdict
	out     fastpath.PortID   // vForward
	flood   []fastpath.PortID // vFlood: the bridge's ports
	reason  fastpath.Reason   // vDrop
}

func fwd(f []byte, in fastpath.PortID, at int, out fastpath.PortID) step {
	return step{frame: f, in: in, at: at, verdict: vForward, out: out}
}

func flood(f []byte, in fastpath.PortID, at int, ports ...fastpath.PortID) step {
	return step{frame: f, in: in, at: at, verdict: vFlood, flood: ports}
}

func drop(f []byte, in fastpath.PortID, at int, r fastpath.Reason) step {
	return step{frame: f, in: in, at: at, verdict: vDrop, reason: r}
}

func TestBridgePipeline(t *testing.T) {
	br := func(name string, ports ...fastpath.PortID) Config { return Config{Name: name, Ports: ports} }
	f := rawFrame
	tests := []struct {
		name    string
		bridges []Config
		steps   []step
		want    map[string]Counters
	}{{
		name:    "learn then forward",
		bridges: []Config{br("br0", 1, 2, 3)},
		steps: []step{
			flood(f(macB, macA), 1, 0, 1, 2, 3), // B unknown
			flood(f(bcast, macB), 2, 0, 1, 2, 3),
			fwd(f(macA, macB), 2, 1, 1),
			fwd(f(macB, macA), 1, 1, 2),
			flood(f(macC, macA), 1, 1, 1, 2, 3),
			flood(f(mcast, macA), 1, 1, 1, 2, 3),
		},
		want: map[string]Counters{"br0": {Forwarded: 2, Flooded: 4, Learned: 2}},
	}, {
		name:    "hairpin",
		bridges: []Config{br("br0", 1, 2)},
		steps: []step{
			flood(f(bcast, macA), 1, 0, 1, 2),
			flood(f(bcast, macB), 1, 0, 1, 2), // B is also behind port 1
			drop(f(macB, macA), 1, 0, DropHairpin),
		},
		want: map[string]Counters{"br0": {Flooded: 2, Learned: 2}},
	}, {
		name:    "invalid source",
		bridges: []Config{br("br0", 1, 2)},
		steps: []step{
			drop(f(macB, mcast), 1, 0, DropInvalidSrcMAC),
			drop(f(macB, bcast), 1, 0, DropInvalidSrcMAC),
			drop(f(macB, header.MAC{}), 1, 0, DropInvalidSrcMAC),
			flood(f(mcast, macB), 2, 0, 1, 2), // nothing was learned: B still floods...
			flood(f(header.MAC{}, macA), 1, 0, 1, 2),
		},
		want: map[string]Counters{"br0": {Flooded: 2, Learned: 2}},
	}, {
		name:    "malformed, no bridge, link-local",
		bridges: []Config{br("br0", 1, 2)},
		steps: []step{
			drop(make([]byte, 13), 1, 0, fastpath.DropMalformed),
			drop(nil, 1, 0, fastpath.DropMalformed),
			drop(f(macB, macA), 7, 0, DropNoBridge),
			drop(f(header.MAC{0x01, 0x80, 0xc2, 0, 0, 0x0e}, macA), 1, 0, DropLinkLocal), // LLDP
			flood(f(header.MAC{0x01, 0x80, 0xc2, 0, 0, 0x10}, macA), 1, 0, 1, 2),
		},
		want: map[string]Counters{"br0": {Flooded: 1, Learned: 1}},
	}, {
		name:    "ageing",
		bridges: []Config{{Name: "br0", Ports: []fastpath.PortID{1, 2}, AgeingTime: 10 * time.Second}},
		steps: []step{
			flood(f(bcast, macA), 1, 100, 1, 2),
			fwd(f(macA, macB), 2, 109, 1),
			flood(f(macA, macB), 2, 110, 1, 2), // A aged out
			flood(f(bcast, macA), 1, 111, 1, 2),
			fwd(f(macA, macB), 2, 120, 1), // relearned at 111; B, last seen at 110, relearned
		},
		want: map[string]Counters{"br0": {Forwarded: 2, Flooded: 3, Learned: 4}},
	}, {
		name: "static",
		bridges: []Config{{Name: "br0", Ports: []fastpath.PortID{1, 2, 3}, AgeingTime: time.Second,
			Static: []StaticEntry{{MAC: macC, Port: 3}}}},
		steps: []step{
			fwd(f(macC, macA), 1, 0, 3),
			flood(f(bcast, macC), 2, 0, 1, 2, 3), // learning does not move C
			fwd(f(macC, macA), 1, 1000, 3),       // nor does it age
		},
		want: map[string]Counters{"br0": {Forwarded: 2, Flooded: 1, Learned: 2}},
	}, {
		name:    "station move",
		bridges: []Config{br("br0", 1, 2, 3)},
		steps: []step{
			flood(f(bcast, macA), 1, 0, 1, 2, 3),
			fwd(f(macA, macB), 2, 0, 1),
			flood(f(bcast, macA), 3, 1, 1, 2, 3), // A moves to port 3
			fwd(f(macA, macB), 2, 1, 3),
		},
		want: map[string]Counters{"br0": {Forwarded: 2, Flooded: 2, Learned: 3}},
	}, {
		name:    "fdb full",
		bridges: []Config{{Name: "br0", Ports: []fastpath.PortID{1, 2}, MaxEntries: 2}},
		steps: []step{
			flood(f(bcast, macA), 1, 0, 1, 2),
			flood(f(bcast, macB), 2, 0, 1, 2),
			fwd(f(macA, macC), 2, 0, 1),      // full: C not learned, A and B kept
			flood(f(macC, macA), 1, 0, 1, 2), // so C still floods
		},
		want: map[string]Counters{"br0": {Forwarded: 1, Flooded: 3, Learned: 2, FDBFull: 1}},
	}, {
		name:    "several bridges",
		bridges: []Config{br("br0", 1, 2), br("br1", 3, 4)},
		steps: []step{
			flood(f(bcast, macA), 1, 0, 1, 2),
			flood(f(macA, macB), 3, 0, 3, 4), // A is not known on br1
			fwd(f(macB, macC), 4, 0, 3),
			fwd(f(macA, macD), 2, 0, 1),
		},
		want: map[string]Counters{"br0": {Forwarded: 1, Flooded: 1, Learned: 2}, "br1": {Forwarded: 1, Flooded: 1, Learned: 2}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			groups := &fastpath.PortGroups{}
			bs, err := NewSet(groups, tt.bridges...)
			if err != nil {
				t.Fatal(err)
			}
			pl := pipeline(bs)
			var b fastpath.Batch
			for i, s := range tt.steps {
				b.Len = 1
				b.Packets[0].Reset(0, s.frame, s.in)
				pl.RunIngress(&b, sec(s.at))
				p := &b.Packets[0]
				v, out, flood := decided(p, groups)
				if v != s.verdict || p.Reason != s.reason || out != s.out || !slices.Equal(flood, s.flood) {
					t.Fatalf("step %d: verdict %v reason %q out %d flood %v; want %v %q %d %v",
						i, v, p.Reason, out, flood, s.verdict, s.reason, s.out, s.flood)
				}
			}
			for _, b := range bs.List() {
				if got := b.Counters(); got != tt.want[b.Name()] {
					t.Errorf("bridge %s counters %+v, want %+v", b.Name(), got, tt.want[b.Name()])
				}
			}
		})
	}
}

// TestBridgeBatchSharesLookups: within one batch the stage reuses FDB
// answers for packets of one flow, but never across bridges, and never
// past learning that changed the FDB.
func TestBridgeBatchSharesLookups(t *testing.T) {
	groups := &fastpath.PortGroups{}
	bs, err := NewSet(groups, Config{Name: "br0", Ports: []fastpath.PortID{1, 2, 3}}, Config{Name: "br1", Ports: []fastpath.PortID{4, 5}})
	if err != nil {
		t.Fatal(err)
	}
	pl := pipeline(bs)
	var b fastpath.Batch
	frames := []struct {
		in   fastpath.PortID
		data []byte
	}{
		{2, rawFrame(bcast, macB)}, // B on port 2 of br0
		{1, rawFrame(macB, macA)},  // to port 2
		{1, rawFrame(macB, macA)},  // same flow: same answer
		{4, rawFrame(macB, macA)},  // B is unknown on br1: flood there
		{1, rawFrame(macC, macA)},  // C unknown: flood
		{1, rawFrame(bcast, macC)}, // C learned on port 1
		{1, rawFrame(macC, macA)},  // C now on the ingress port: hairpin
		{3, rawFrame(macC, macB)},  // B moves to port 3
		{1, rawFrame(macB, macA)},  // B now on port 3
	}
	want := []struct {
		v    verdict
		out  fastpath.PortID
		drop fastpath.Reason
	}{
		{vFlood, 0, fastpath.ReasonNone}, {vForward, 2, fastpath.ReasonNone}, {vForward, 2, fastpath.ReasonNone},
		{vFlood, 0, fastpath.ReasonNone}, {vFlood, 0, fastpath.ReasonNone}, {vFlood, 0, fastpath.ReasonNone},
		{vDrop, 0, DropHairpin}, {vForward, 1, fastpath.ReasonNone}, {vForward, 3, fastpath.ReasonNone},
	}
	b.Len = len(frames)
	for i, f := range frames {
		b.Packets[i].Reset(0, f.data, f.in)
	}
	pl.RunIngress(&b, 0)
	for i, w := range want {
		p := &b.Packets[i]
		v, out, _ := decided(p, groups)
		if v != w.v || p.Reason != w.drop || out != w.out {
			t.Errorf("packet %d: %v %q out %d, want %v %q out %d", i, v, p.Reason, out, w.v, w.drop, w.out)
		}
	}
}

// TestBridgeDryRunCountsNothing: a dry run (a Simulator's batch) decides
// as a live batch would, forward to a known MAC and flood to an unknown
// one, but leaves the bridge's counters as they were and learns nothing.
func TestBridgeDryRunCountsNothing(t *testing.T) {
	groups := &fastpath.PortGroups{}
	bs, err := NewSet(groups, Config{Name: "br0", Ports: []fastpath.PortID{1, 2, 3}})
	if err != nil {
		t.Fatal(err)
	}
	pl := pipeline(bs)
	var b fastpath.Batch
	b.Len = 1
	b.Packets[0].Reset(0, rawFrame(bcast, macA), 1) // A learned on port 1
	pl.RunIngress(&b, 0)
	br := bs.List()[0]
	before := br.Counters()

	b.DryRun, b.Len = true, 2
	b.Packets[0].Reset(0, rawFrame(macA, macB), 2)
	b.Packets[1].Reset(0, rawFrame(macC, macB), 2)
	pl.RunIngress(&b, sec(1))
	if v, out, _ := decided(&b.Packets[0], groups); v != vForward || out != 1 {
		t.Fatalf("dry run to a known MAC: %v out %d, want forwarded to 1", v, out)
	}
	if v, _, _ := decided(&b.Packets[1], groups); v != vFlood {
		t.Fatalf("dry run to an unknown MAC: %v, want flooded", v)
	}
	if after := br.Counters(); after != before {
		t.Fatalf("counters moved by a dry run:\nbefore %+v\nafter  %+v", before, after)
	}

	b.DryRun, b.Len = false, 1
	b.Packets[0].Reset(0, rawFrame(macB, macA), 1)
	pl.RunIngress(&b, sec(2))
	if v, _, _ := decided(&b.Packets[0], groups); v != vFlood {
		t.Fatalf("to the dry run's source: %v, want flooded (B was not learned)", v)
	}
}
