package fastpath

import (
	"slices"
	"testing"
	"time"

	"github.com/xdpfwd/xdpfwd/fastpath/header"
)

// step sends one frame in on a port at a time and says what the pipeline
// must decide.
type step struct {
	frame   []byte
	in      PortID
	at      int // seconds
	verdict Verdict
	out     PortID     // VerdictForward
	flood   []PortID   // VerdictFlood: the bridge's ports
	reason  DropReason // VerdictDrop
}

func fwd(f []byte, in PortID, at int, out PortID) step {
	return step{frame: f, in: in, at: at, verdict: VerdictForward, out: out}
}

func flood(f []byte, in PortID, at int, ports ...PortID) step {
	return step{frame: f, in: in, at: at, verdict: VerdictFlood, flood: ports}
}

func drop(f []byte, in PortID, at int, r DropReason) step {
	return step{frame: f, in: in, at: at, verdict: VerdictDrop, reason: r}
}

func TestBridgePipeline(t *testing.T) {
	br := func(name string, ports ...PortID) BridgeConfig { return BridgeConfig{Name: name, Ports: ports} }
	f := rawFrame
	tests := []struct {
		name    string
		bridges []BridgeConfig
		steps   []step
		want    map[string]BridgeCounters
	}{{
		name:    "learn then forward",
		bridges: []BridgeConfig{br("br0", 1, 2, 3)},
		steps: []step{
			flood(f(macB, macA), 1, 0, 1, 2, 3), // B unknown
			flood(f(bcast, macB), 2, 0, 1, 2, 3),
			fwd(f(macA, macB), 2, 1, 1),
			fwd(f(macB, macA), 1, 1, 2),
			flood(f(macC, macA), 1, 1, 1, 2, 3),
			flood(f(mcast, macA), 1, 1, 1, 2, 3),
		},
		want: map[string]BridgeCounters{"br0": {Forwarded: 2, Flooded: 4, Learned: 2}},
	}, {
		name:    "hairpin",
		bridges: []BridgeConfig{br("br0", 1, 2)},
		steps: []step{
			flood(f(bcast, macA), 1, 0, 1, 2),
			flood(f(bcast, macB), 1, 0, 1, 2), // B is also behind port 1
			drop(f(macB, macA), 1, 0, DropHairpin),
		},
		want: map[string]BridgeCounters{"br0": {Flooded: 2, Learned: 2}},
	}, {
		name:    "invalid source",
		bridges: []BridgeConfig{br("br0", 1, 2)},
		steps: []step{
			drop(f(macB, mcast), 1, 0, DropInvalidSrcMAC),
			drop(f(macB, bcast), 1, 0, DropInvalidSrcMAC),
			drop(f(macB, header.MAC{}), 1, 0, DropInvalidSrcMAC),
			flood(f(mcast, macB), 2, 0, 1, 2), // nothing was learned: B still floods...
			flood(f(header.MAC{}, macA), 1, 0, 1, 2),
		},
		want: map[string]BridgeCounters{"br0": {Flooded: 2, Learned: 2}},
	}, {
		name:    "malformed, no bridge, link-local",
		bridges: []BridgeConfig{br("br0", 1, 2)},
		steps: []step{
			drop(make([]byte, 13), 1, 0, DropMalformed),
			drop(nil, 1, 0, DropMalformed),
			drop(f(macB, macA), 7, 0, DropNoBridge),
			drop(f(header.MAC{0x01, 0x80, 0xc2, 0, 0, 0x0e}, macA), 1, 0, DropLinkLocal), // LLDP
			flood(f(header.MAC{0x01, 0x80, 0xc2, 0, 0, 0x10}, macA), 1, 0, 1, 2),
		},
		want: map[string]BridgeCounters{"br0": {Flooded: 1, Learned: 1}},
	}, {
		name:    "ageing",
		bridges: []BridgeConfig{{Name: "br0", Ports: []PortID{1, 2}, AgeingTime: 10 * time.Second}},
		steps: []step{
			flood(f(bcast, macA), 1, 100, 1, 2),
			fwd(f(macA, macB), 2, 109, 1),
			flood(f(macA, macB), 2, 110, 1, 2), // A aged out
			flood(f(bcast, macA), 1, 111, 1, 2),
			fwd(f(macA, macB), 2, 120, 1), // relearned at 111; B, last seen at 110, relearned
		},
		want: map[string]BridgeCounters{"br0": {Forwarded: 2, Flooded: 3, Learned: 4}},
	}, {
		name: "static",
		bridges: []BridgeConfig{{Name: "br0", Ports: []PortID{1, 2, 3}, AgeingTime: time.Second,
			Static: []StaticEntry{{MAC: macC, Port: 3}}}},
		steps: []step{
			fwd(f(macC, macA), 1, 0, 3),
			flood(f(bcast, macC), 2, 0, 1, 2, 3), // learning does not move C
			fwd(f(macC, macA), 1, 1000, 3),       // nor does it age
		},
		want: map[string]BridgeCounters{"br0": {Forwarded: 2, Flooded: 1, Learned: 2}},
	}, {
		name:    "station move",
		bridges: []BridgeConfig{br("br0", 1, 2, 3)},
		steps: []step{
			flood(f(bcast, macA), 1, 0, 1, 2, 3),
			fwd(f(macA, macB), 2, 0, 1),
			flood(f(bcast, macA), 3, 1, 1, 2, 3), // A moves to port 3
			fwd(f(macA, macB), 2, 1, 3),
		},
		want: map[string]BridgeCounters{"br0": {Forwarded: 2, Flooded: 2, Learned: 3}},
	}, {
		name:    "fdb full",
		bridges: []BridgeConfig{{Name: "br0", Ports: []PortID{1, 2}, MaxEntries: 2}},
		steps: []step{
			flood(f(bcast, macA), 1, 0, 1, 2),
			flood(f(bcast, macB), 2, 0, 1, 2),
			fwd(f(macA, macC), 2, 0, 1),      // full: C not learned, A and B kept
			flood(f(macC, macA), 1, 0, 1, 2), // so C still floods
		},
		want: map[string]BridgeCounters{"br0": {Forwarded: 1, Flooded: 3, Learned: 2, FDBFull: 1}},
	}, {
		name:    "several bridges",
		bridges: []BridgeConfig{br("br0", 1, 2), br("br1", 3, 4)},
		steps: []step{
			flood(f(bcast, macA), 1, 0, 1, 2),
			flood(f(macA, macB), 3, 0, 3, 4), // A is not known on br1
			fwd(f(macB, macC), 4, 0, 3),
			fwd(f(macA, macD), 2, 0, 1),
		},
		want: map[string]BridgeCounters{"br0": {Forwarded: 1, Flooded: 1, Learned: 2}, "br1": {Forwarded: 1, Flooded: 1, Learned: 2}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bs, err := NewBridges(tt.bridges...)
			if err != nil {
				t.Fatal(err)
			}
			pl := NewPipeline(Parse{}, bs.Stage(), &ChecksumFinish{})
			var b Batch
			for i, s := range tt.steps {
				b.Len = 1
				b.Packets[0] = Packet{Data: s.frame, InPort: s.in}
				pl.Run(&b, sec(s.at))
				p := &b.Packets[0]
				if p.Verdict != s.verdict || p.Reason != s.reason ||
					(s.verdict == VerdictForward && p.OutPort != s.out) ||
					(s.verdict == VerdictFlood && !slices.Equal(p.FloodPorts, s.flood)) {
					t.Fatalf("step %d: verdict %v reason %q out %d flood %v; want %v %q %d %v",
						i, p.Verdict, p.Reason, p.OutPort, p.FloodPorts, s.verdict, s.reason, s.out, s.flood)
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
	bs, err := NewBridges(BridgeConfig{Name: "br0", Ports: []PortID{1, 2, 3}}, BridgeConfig{Name: "br1", Ports: []PortID{4, 5}})
	if err != nil {
		t.Fatal(err)
	}
	pl := NewPipeline(Parse{}, bs.Stage())
	var b Batch
	frames := []struct {
		in   PortID
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
		v    Verdict
		out  PortID
		drop DropReason
	}{
		{VerdictFlood, 0, DropNone}, {VerdictForward, 2, DropNone}, {VerdictForward, 2, DropNone},
		{VerdictFlood, 0, DropNone}, {VerdictFlood, 0, DropNone}, {VerdictFlood, 0, DropNone},
		{VerdictDrop, 0, DropHairpin}, {VerdictForward, 1, DropNone}, {VerdictForward, 3, DropNone},
	}
	b.Len = len(frames)
	for i, f := range frames {
		b.Packets[i] = Packet{Data: f.data, InPort: f.in}
	}
	pl.Run(&b, 0)
	for i, w := range want {
		p := &b.Packets[i]
		if p.Verdict != w.v || p.Reason != w.drop || (w.v == VerdictForward && p.OutPort != w.out) {
			t.Errorf("packet %d: %v %q out %d, want %v %q out %d", i, p.Verdict, p.Reason, p.OutPort, w.v, w.drop, w.out)
		}
	}
}
