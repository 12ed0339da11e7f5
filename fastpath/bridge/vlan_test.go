package bridge

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/xdpfwd/xdpfwd/fastpath"
	"github.com/xdpfwd/xdpfwd/fastpath/fastpathtest"
	"github.com/xdpfwd/xdpfwd/fastpath/header"
)

// newBridgeRig is a rig of the bridges of cfgs on a UMEM whose frames
// start headroom bytes into their chunks (256 models the XDP headroom of
// copy mode; 0 leaves no room before a frame).
func newBridgeRig(t testing.TB, headroom uint32, cfgs ...Config) (*fastpathtest.Rig, *Set) {
	return newRig(t, fastpathtest.RigConfig{Headroom: headroom}, cfgs...)
}

// ethFrame is an untagged frame with EtherType 0x88b5 and a payload that
// names it, padded to 60 bytes.
func ethFrame(dst, src header.MAC, id byte) []byte {
	f := make([]byte, 60)
	copy(f, dst[:])
	copy(f[6:], src[:])
	binary.BigEndian.PutUint16(f[12:], 0x88b5)
	for i := 14; i < len(f); i++ {
		f[i] = id
	}
	return f
}

// withTag returns f with a tag (tpid, tci) inserted after its MACs.
func withTag(f []byte, tpid, tci uint16) []byte {
	out := make([]byte, 0, len(f)+4)
	out = append(out, f[:12]...)
	out = binary.BigEndian.AppendUint16(out, tpid)
	out = binary.BigEndian.AppendUint16(out, tci)
	return append(out, f[12:]...)
}

func q8021(f []byte, tci uint16) []byte { return withTag(f, header.EtherTypeVLAN, tci) }

var (
	macT = header.MAC{0x02, 0, 0, 0, 0, 0x7e}
	macS = header.MAC{0x02, 0, 0, 0, 0, 0x55}
	macX = header.MAC{0x02, 0, 0, 0, 0, 0x88}
)

// The example: a and b access ports on VLAN 10, c on VLAN 20, t a
// trunk carrying both tagged.
const (
	portA fastpath.PortID = 1
	portB fastpath.PortID = 2
	portC fastpath.PortID = 3
	portT fastpath.PortID = 4
)

func vlanBridge() Config {
	return Config{Name: "br0", Ports: []fastpath.PortID{portA, portB, portC, portT},
		VLANs: map[fastpath.PortID]PortVLANs{
			portA: {PVID: 10}, portB: {PVID: 10}, portC: {PVID: 20}, portT: {Tagged: []uint16{10, 20}},
		},
		Static: []StaticEntry{{MAC: macS, Port: portC, VLAN: 20}},
	}
}

// TestVLANBridge sends frames through the example VLAN-aware bridge, in
// order (earlier frames teach the FDB), and checks exactly which bytes
// leave which port, with a UMEM with and without headroom before frames.
func TestVLANBridge(t *testing.T) {
	f := ethFrame
	steps := []struct {
		name  string
		in    fastpath.PortID
		frame []byte
		out   map[fastpath.PortID][]byte
		drop  fastpath.Reason
	}{
		{"access broadcast floods its VLAN, tagged on the trunk", portA, f(bcast, macA, 1),
			map[fastpath.PortID][]byte{portB: f(bcast, macA, 1), portT: q8021(f(bcast, macA, 1), 10)}, fastpath.ReasonNone},
		{"other VLAN's broadcast stays there", portC, f(bcast, macC, 2),
			map[fastpath.PortID][]byte{portT: q8021(f(bcast, macC, 2), 20)}, fastpath.ReasonNone},
		{"trunk broadcast on VLAN 10 leaves access ports untagged", portT, q8021(f(bcast, macT, 3), 10),
			map[fastpath.PortID][]byte{portA: f(bcast, macT, 3), portB: f(bcast, macT, 3)}, fastpath.ReasonNone},
		{"trunk unicast on VLAN 20 to a learned MAC", portT, q8021(f(macC, macT, 4), 20),
			map[fastpath.PortID][]byte{portC: f(macC, macT, 4)}, fastpath.ReasonNone},
		{"access unicast within the VLAN", portB, f(macA, macB, 5),
			map[fastpath.PortID][]byte{portA: f(macA, macB, 5)}, fastpath.ReasonNone},
		{"access unicast to the trunk pushes the tag", portB, f(macT, macB, 6),
			map[fastpath.PortID][]byte{portT: q8021(f(macT, macB, 6), 10)}, fastpath.ReasonNone},
		{"MAC known on VLAN 20 only floods VLAN 10, never reaches c", portA, f(macC, macA, 7),
			map[fastpath.PortID][]byte{portB: f(macC, macA, 7), portT: q8021(f(macC, macA, 7), 10)}, fastpath.ReasonNone},
		{"trunk frame on a VLAN it does not carry", portT, q8021(f(bcast, macT, 8), 30), nil, DropVLANFiltered},
		{"untagged frame on a trunk without PVID", portT, f(bcast, macT, 9), nil, DropVLANFiltered},
		{"access port accepts a tag for its own PVID", portA, q8021(f(bcast, macA, 10), 10),
			map[fastpath.PortID][]byte{portB: f(bcast, macA, 10), portT: q8021(f(bcast, macA, 10), 10)}, fastpath.ReasonNone},
		{"access port drops another VLAN's tag", portA, q8021(f(bcast, macA, 11), 20), nil, DropVLANFiltered},
		{"priority tag: PVID's VLAN, PCP kept on the trunk", portA, q8021(f(bcast, macA, 12), 5<<13),
			map[fastpath.PortID][]byte{portB: f(bcast, macA, 12), portT: q8021(f(bcast, macA, 12), 5<<13|10)}, fastpath.ReasonNone},
		{"802.1ad tag counts as untagged: PVID, tag kept inside", portA, withTag(f(bcast, macA, 13), header.EtherTypeQinQ, 100),
			map[fastpath.PortID][]byte{portB: withTag(f(bcast, macA, 13), header.EtherTypeQinQ, 100),
				portT: q8021(withTag(f(bcast, macA, 13), header.EtherTypeQinQ, 100), 10)}, fastpath.ReasonNone},
		{"802.1ad frame on a trunk without PVID", portT, withTag(f(bcast, macT, 14), header.EtherTypeQinQ, 10), nil, DropVLANFiltered},
		{"tagged unicast with PCP to an access port leaves untagged", portT, q8021(f(macA, macT, 15), 3<<13|10),
			map[fastpath.PortID][]byte{portA: f(macA, macT, 15)}, fastpath.ReasonNone},
		{"static entry on VLAN 20", portT, q8021(f(macS, macT, 16), 20),
			map[fastpath.PortID][]byte{portC: f(macS, macT, 16)}, fastpath.ReasonNone},
		{"static entry is not on VLAN 10", portT, q8021(f(macS, macT, 17), 10),
			map[fastpath.PortID][]byte{portA: f(macS, macT, 17), portB: f(macS, macT, 17)}, fastpath.ReasonNone},
		{"X seen on VLAN 10", portA, f(bcast, macX, 18),
			map[fastpath.PortID][]byte{portB: f(bcast, macX, 18), portT: q8021(f(bcast, macX, 18), 10)}, fastpath.ReasonNone},
		{"X seen on VLAN 20 too", portC, f(bcast, macX, 19),
			map[fastpath.PortID][]byte{portT: q8021(f(bcast, macX, 19), 20)}, fastpath.ReasonNone},
		{"X on VLAN 10 is a's", portT, q8021(f(macX, macT, 20), 10),
			map[fastpath.PortID][]byte{portA: f(macX, macT, 20)}, fastpath.ReasonNone},
		{"X on VLAN 20 is c's", portT, q8021(f(macX, macT, 21), 20),
			map[fastpath.PortID][]byte{portC: f(macX, macT, 21)}, fastpath.ReasonNone},
		{"hairpin within a VLAN", portA, f(macX, macA, 22), nil, DropHairpin},
		{"tag with VID 4095", portT, q8021(f(bcast, macT, 24), 4095), nil, DropVLANFiltered},
	}
	for _, headroom := range []uint32{256, 0} {
		t.Run(fmt.Sprintf("headroom %d", headroom), func(t *testing.T) {
			r, _ := newBridgeRig(t, headroom, vlanBridge())
			drops := map[fastpath.Reason]uint64{}
			for i, s := range steps {
				got := r.Send(s.in, s.frame)
				for p, fs := range got {
					want, ok := s.out[p]
					if !ok || len(fs) != 1 || !bytes.Equal(fs[0], want) {
						t.Fatalf("step %d (%s): port %d sent %x\nwant %x", i, s.name, p, fs, want)
					}
				}
				for p := range s.out {
					if _, ok := got[p]; !ok {
						t.Fatalf("step %d (%s): port %d sent nothing; sent on %v", i, s.name, p, slices.Sorted(maps.Keys(got)))
					}
				}
				if s.drop != fastpath.ReasonNone {
					drops[s.drop]++
				}
				c := r.W.Counters().Ports[s.in]
				if s.drop != fastpath.ReasonNone && c.Drops[s.drop] == 0 {
					t.Fatalf("step %d (%s): no %q drop counted on port %d", i, s.name, s.drop, s.in)
				}
			}
			total := make([]uint64, fastpath.NumReasons())
			for _, pc := range r.W.Counters().Ports {
				for reason, n := range pc.Drops {
					total[reason] += n
				}
			}
			for reason, n := range total {
				if uint64(n) != drops[fastpath.Reason(reason)] {
					t.Errorf("%d drops %q counted, want %d", n, fastpath.Reason(reason), drops[fastpath.Reason(reason)])
				}
			}
		})
	}
}

// TestVLANUnawareBridgeKeepsTags: without VLANs a bridge carries 802.1Q
// and 802.1ad tags through untouched, and its FDB ignores them.
func TestVLANUnawareBridgeKeepsTags(t *testing.T) {
	r, bs := newBridgeRig(t, 256, Config{Name: "br0", Ports: []fastpath.PortID{1, 2, 3}})
	for _, fr := range [][]byte{
		q8021(ethFrame(bcast, macA, 1), 10),
		withTag(ethFrame(bcast, macA, 2), header.EtherTypeQinQ, 100),
		withTag(q8021(ethFrame(bcast, macA, 3), 20), header.EtherTypeQinQ, 100),
	} {
		got := r.Send(1, fr)
		if len(got) != 2 || !bytes.Equal(got[2][0], fr) || !bytes.Equal(got[3][0], fr) {
			t.Fatalf("flood of %x: %x", fr, got)
		}
	}
	// A learned on port 1 from a frame on VLAN 10: a frame on another VLAN
	// to A goes to port 1 too.
	fr := q8021(ethFrame(macA, macB, 4), 30)
	if got := r.Send(2, fr); len(got) != 1 || !bytes.Equal(got[1][0], fr) {
		t.Fatalf("unicast to A: %x", got)
	}
	if e := allEntries(bs.List()[0].FDB(), 0); len(e) != 2 || e[0].VLAN != 0 || e[1].VLAN != 0 {
		t.Fatalf("FDB %+v, want A and B on VLAN 0", e)
	}
}

// TestVLANFloodCopiesAreIndependent: a flood to several trunks and access
// ports gives each port its own bytes: untagging the frame in place for
// one port changes no other port's copy.
func TestVLANFloodCopiesAreIndependent(t *testing.T) {
	cfg := Config{Name: "br0", Ports: []fastpath.PortID{1, 2, 3, 4, 5},
		VLANs: map[fastpath.PortID]PortVLANs{
			1: {Tagged: []uint16{7}}, 2: {PVID: 7}, 3: {Tagged: []uint16{7}}, 4: {PVID: 7, Tagged: []uint16{8}}, 5: {Tagged: []uint16{8, 7}},
		}}
	for _, headroom := range []uint32{256, 0} {
		r, _ := newBridgeRig(t, headroom, cfg)
		// 1 and 5 send tagged, 2 priority-tagged (PCP 6, VID 0), 4 untagged.
		for _, in := range []fastpath.PortID{1, 2, 4, 5} {
			plain := ethFrame(bcast, macN(int(in)), byte(in))
			fr, tci := plain, uint16(7)
			switch in {
			case 1, 5:
				fr, tci = q8021(plain, 2<<13|7), 2<<13|7
			case 2:
				fr, tci = q8021(plain, 6<<13), 6<<13|7
			}
			got := r.Send(in, fr)
			for p := fastpath.PortID(1); p <= 5; p++ {
				var want []byte
				switch {
				case p == in:
				case p == 2 || p == 4:
					want = plain
				default:
					want = q8021(plain, tci)
				}
				if want == nil && got[p] != nil || want != nil && (len(got[p]) != 1 || !bytes.Equal(got[p][0], want)) {
					t.Fatalf("headroom %d, in %d: port %d sent %x, want %x", headroom, in, p, got[p], want)
				}
			}
		}
	}
}

// TestVLANConfigErrors: NewBridges refuses VLAN configurations a Linux
// bridge could not have, naming the port and VID.
func TestVLANConfigErrors(t *testing.T) {
	base := func(v map[fastpath.PortID]PortVLANs, st ...StaticEntry) Config {
		return Config{Name: "br0", Ports: []fastpath.PortID{1, 2}, VLANs: v, Static: st}
	}
	tests := []struct {
		cfg  Config
		want string
	}{
		{base(map[fastpath.PortID]PortVLANs{1: {PVID: 10}, 2: {PVID: 10}, 3: {PVID: 10}}), "port 3 is not a port of the bridge"},
		{base(map[fastpath.PortID]PortVLANs{1: {PVID: 10}}), "port 2 is in no VLAN"},
		{base(map[fastpath.PortID]PortVLANs{1: {PVID: 4095}, 2: {PVID: 10}}), "VID 4095 is outside 1 to 4094"},
		{base(map[fastpath.PortID]PortVLANs{1: {PVID: 10}, 2: {Tagged: []uint16{0}}}), "VID 0 is outside"},
		{base(map[fastpath.PortID]PortVLANs{1: {PVID: 10, Tagged: []uint16{20, 10}}, 2: {PVID: 10}}), "VID 10 is both its PVID and tagged"},
		{base(map[fastpath.PortID]PortVLANs{1: {PVID: 10}, 2: {Tagged: []uint16{20, 20}}}), "tagged VID 20 listed twice"},
		{base(map[fastpath.PortID]PortVLANs{1: {PVID: 10}, 2: {PVID: 20}}, StaticEntry{MAC: macA, Port: 1, VLAN: 20}), "port 1 is not a member of VLAN 20"},
		{base(nil, StaticEntry{MAC: macA, Port: 1, VLAN: 20}), "VLAN 20 on a bridge without VLANs"},
		{Config{Name: "br0", Ports: []fastpath.PortID{1, 2}, MaxEntries: 2, VLANs: map[fastpath.PortID]PortVLANs{1: {PVID: 1, Tagged: []uint16{2, 3}}, 2: {PVID: 1}},
			Static: []StaticEntry{{MAC: macA, Port: 1}}}, "more than max entries 2"},
	}
	for _, tt := range tests {
		_, err := NewSet(&fastpath.PortGroups{}, tt.cfg)
		if err == nil || !bytes.Contains([]byte(err.Error()), []byte(tt.want)) {
			t.Errorf("NewBridges(%+v) = %v, want an error with %q", tt.cfg, err, tt.want)
		}
	}
	// A static entry without VLAN is on every VLAN of its port.
	bs, err := NewSet(&fastpath.PortGroups{}, base(map[fastpath.PortID]PortVLANs{1: {PVID: 10, Tagged: []uint16{20}}, 2: {PVID: 10}}, StaticEntry{MAC: macA, Port: 1}))
	if err != nil {
		t.Fatal(err)
	}
	want := []FDBEntry{{VLAN: 10, MAC: macA, Port: 1, Static: true}, {VLAN: 20, MAC: macA, Port: 1, Static: true}}
	if got := allEntries(bs.List()[0].FDB(), 0); !slices.Equal(got, want) {
		t.Fatalf("static entries %+v, want %+v", got, want)
	}
}

// TestBridgeFDBAttack: 32 MACs that share the victim's home slot (found
// with the FDB's seed, which an attacker does not have) fill every slot
// the victim may take. The victim is learned anyway, and its unicast
// traffic goes to its port alone: the attacker's port receives none of
// it.
func TestBridgeFDBAttack(t *testing.T) {
	withSeed(t, 0x5eed5eed5eed5eed, 0xa77ac4a77ac4)
	const victimPort, attackerPort, senderPort = 1, 2, 3
	r, bs := newBridgeRig(t, 256, Config{Name: "br0", Ports: []fastpath.PortID{victimPort, attackerPort, senderPort}})
	br := bs.List()[0]
	for i, m := range collide(br.FDB(), 0, macVictim, fdbMaxProbe) {
		r.Now = sec(i)
		r.Send(attackerPort, ethFrame(bcast, m, 1))
	}
	r.Now = sec(100)
	r.Send(victimPort, ethFrame(bcast, macVictim, 2))
	for i := range 10 {
		got := r.Send(senderPort, ethFrame(macVictim, macC, byte(3+i)))
		if len(got[attackerPort]) != 0 {
			t.Fatalf("frame %d to the victim reached the attacker's port", i)
		}
		if len(got[victimPort]) != 1 {
			t.Fatalf("frame %d to the victim: victim's port sent %d frames", i, len(got[victimPort]))
		}
	}
	if c := br.Counters(); c.Evicted != 1 || c.FDBFull != 0 || c.Forwarded != 10 {
		t.Fatalf("bridge counters %+v, want 1 evicted, 10 forwarded, no FDB-full", c)
	}
}

// TestVLANWorkerPollAllocs: the VLAN-aware path — classification, per-VLAN
// learning, floods with per-port tagged and untagged copies, tags pushed
// and popped in place — allocates nothing per packet.
func TestVLANWorkerPollAllocs(t *testing.T) {
	r, _ := newBridgeRig(t, 256, vlanBridge())
	r.Send(portT, q8021(ethFrame(bcast, macT, 1), 10)) // T known on VLAN 10
	r.Send(portB, ethFrame(bcast, macB, 2))            // B too
	frames := make([][]byte, fastpath.BatchSize/2)
	for i := range frames {
		switch i % 4 {
		case 0:
			frames[i] = ethFrame(bcast, macA, 3) // flood: b untagged, t tagged (push)
		case 1:
			frames[i] = ethFrame(macT, macA, 4) // forward with a push
		case 2:
			frames[i] = q8021(ethFrame(macB, macA, 5), 10) // forward with a pop
		default:
			frames[i] = q8021(ethFrame(bcast, macA, 6), 5<<13) // priority tag: pop and rewrite
		}
	}
	tframes := make([][]byte, fastpath.BatchSize/2)
	for i := range tframes {
		tframes[i] = q8021(ethFrame(bcast, macT, 7), 10) // flood from the trunk: pops
	}
	allocs := testing.AllocsPerRun(100, func() {
		r.Q[portA].Inject(frames...)
		r.Q[portT].Inject(tframes...)
		r.W.Poll()
		for _, q := range r.Q {
			q.Consume()
		}
		r.W.Poll()
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per worker iteration", allocs)
	}
	if c := r.W.Counters(); c.Ports[portT].TxPackets < 100*fastpath.BatchSize/4 {
		t.Fatalf("trunk sent %d frames", c.Ports[portT].TxPackets)
	}
}

// BenchmarkVLANWorker forwards 64-byte frames from an access port to a
// learned MAC behind a trunk (a tag pushed per frame), through a worker
// with fake queues.
func BenchmarkVLANWorker(b *testing.B) {
	r, _ := newRig(b, fastpathtest.RigConfig{Frames: 1024, Headroom: 256, Ring: 256, FillTarget: 256, UncheckedFrees: true}, vlanBridge())
	w, qs := r.W, r.Q
	w.Poll()
	qs[portT].Inject(q8021(ethFrame(bcast, macT, 1), 10))
	w.Poll()
	for _, q := range qs {
		q.Consume()
	}
	frames := make([][]byte, fastpath.BatchSize)
	for i := range frames {
		frames[i] = udp4(b, macT, macA, 18)
	}
	for b.Loop() {
		qs[portA].Inject(frames...)
		w.Poll()
		qs[portT].Consume()
	}
	w.Poll() // reap the last completions: TX counts a frame when it completes
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*fastpath.BatchSize), "ns/packet")
	if c := w.Counters(); c.Ports[portT].TxPackets != uint64(b.N*fastpath.BatchSize) {
		b.Fatalf("sent %d of %d", c.Ports[portT].TxPackets, b.N*fastpath.BatchSize)
	}
}
