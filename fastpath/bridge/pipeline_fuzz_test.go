package bridge

import (
	"bytes"
	"encoding/binary"
	"maps"
	"slices"
	"testing"

	"github.com/xdpfwd/xdpfwd/fastpath"
	"github.com/xdpfwd/xdpfwd/fastpath/fastpathtest"
	"github.com/xdpfwd/xdpfwd/fastpath/header"
)

// FuzzPipeline runs a script of frames (bytes, ingress port) through a
// worker with fake queues — parse, bridge, checksum finishing, dispatch
// with VLAN tagging — on a VLAN-unaware or a VLAN-aware bridge, and
// compares every frame's fate with refBridge, a small reference model of
// the Linux bridge written without the fast path's code: which ports send
// it, in which order, with which bytes. The bytes may differ from the
// model's only where checksum finishing applies: from the transport
// header on, as the checksum stage alone does to the same frame. Frames
// are conserved, and every packet ends decided with its offsets inside
// the frame.
//
// A script is a sequence of records: ingress byte (port 1 + b%5; port 5
// is in no bridge), length byte n, then n bytes of frame.
func FuzzPipeline(f *testing.F) {
	for _, seed := range pipelineSeeds(f) {
		f.Add(seed, false)
		f.Add(seed, true)
	}
	f.Fuzz(func(t *testing.T, script []byte, aware bool) {
		type frame struct {
			in   fastpath.PortID
			data []byte
		}
		var frames []frame
		for len(script) >= 2 {
			in, n := fastpath.PortID(1+script[0]%5), int(script[1])
			script = script[2:]
			n = min(n, len(script))
			frames = append(frames, frame{in, bytes.Clone(script[:n])})
			script = script[n:]
		}
		cfg := fuzzBridgeConfig(aware)
		r := newFuzzRig(t, cfg)
		model := newRefBridge(cfg)
		for i, fr := range frames {
			want := model.process(fr.in, fr.data)
			got := r.Send(fr.in, fr.data)
			if !slices.Equal(slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want))) {
				t.Fatalf("frame %d (%x in on %d): sent on ports %v, the model on %v", i, fr.data, fr.in, slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
			}
			finished, l4 := checksumAlone(fr.data)
			for p, out := range got {
				if len(out) != 1 {
					t.Fatalf("frame %d: port %d sent %d frames", i, p, len(out))
				}
				exp := want[p]
				if bytes.Equal(out[0], exp) {
					continue
				}
				// Only checksum finishing may change more: the model's
				// bytes for the finished frame, and only from L4 on.
				exp2 := model.egress(finished, p, fr.in)
				if l4 == 0 || !bytes.Equal(out[0], exp2) {
					t.Fatalf("frame %d (%x in on %d): port %d sent\n%x\nthe model says\n%x", i, fr.data, fr.in, p, out[0], exp)
				}
				if !bytes.Equal(finished[:l4], fr.data[:l4]) || len(finished) != len(fr.data) {
					t.Fatalf("frame %d: checksum finishing changed bytes before the transport header (at %d): %x -> %x", i, l4, fr.data, finished)
				}
			}
		}
		for i, fr := range frames {
			pk := fastpathtest.Parsed(bytes.Clone(fr.data))
			p := &pk
			if (p.Action == fastpath.ActionDrop) != (p.Reason != fastpath.ReasonNone) {
				t.Fatalf("frame %d: action %v (%d) reason %v (%d)", i, p.Action, p.Action, p.Reason, p.Reason)
			}
			if int(p.L3End) > len(p.Data) || p.L4Off > p.L3End || (p.L3Off == 0) != (p.L3End == 0) {
				t.Fatalf("frame %d: offsets L3 %d..%d L4 %d in %d bytes", i, p.L3Off, p.L3End, p.L4Off, len(p.Data))
			}
		}
	})
}

// checksumAlone returns frame f as the checksum stage alone leaves it
// (parsed, forwarded), and the offset of its transport header (0: none).
func checksumAlone(f []byte) ([]byte, int) {
	var b fastpath.Batch
	b.Len = 1
	b.Packets[0] = fastpathtest.Parsed(bytes.Clone(f))
	p := &b.Packets[0]
	if p.Action == fastpath.ActionDrop {
		return f, 0
	}
	(&fastpath.ChecksumFinish{}).Process(&b, 0)
	return p.Data, int(p.L4Off)
}

var macFuzzStatic = header.MAC{0x02, 0, 0, 0, 0, 0x5f}

// fuzzBridgeConfig is ports 1-4 on one bridge (5 in none), with a static
// entry; VLAN-aware: 1 access on 10, 2 access on 10 and trunk for 30, 3
// access on 20 and trunk for 10 and 30, 4 a trunk for 10, 20 and 30 (so
// that a flood on 10 has tagged and untagged copies).
func fuzzBridgeConfig(aware bool) Config {
	c := Config{Name: "br0", Ports: []fastpath.PortID{1, 2, 3, 4}, Static: []StaticEntry{{MAC: macFuzzStatic, Port: 3}}}
	if aware {
		c.VLANs = map[fastpath.PortID]PortVLANs{1: {PVID: 10}, 2: {PVID: 10, Tagged: []uint16{30}}, 3: {PVID: 20, Tagged: []uint16{10, 30}}, 4: {Tagged: []uint16{10, 20, 30}}}
		c.Static[0].VLAN = 20
	}
	return c
}

// newFuzzRig is a rig of cfg plus port 5, in no bridge.
func newFuzzRig(t *testing.T, cfg Config) *fastpathtest.Rig {
	r, _ := newRig(t, fastpathtest.RigConfig{Ports: []fastpath.PortID{1, 2, 3, 4, 5}, Frames: 64, Headroom: 256, Ring: 8, FillTarget: 4}, cfg)
	return r
}

// refBridge is a reference model of a Linux bridge (vlan_filtering 0 or
// 1, vlan_protocol 802.1Q), one frame at a time, at one moment (nothing
// ages, the FDB never fills): a map of (VLAN, MAC) to port.
type refBridge struct {
	cfg    Config
	fdb    map[[2]uint64]fastpath.PortID
	static map[[2]uint64]bool
	// The frame being processed.
	vid uint16
	tci uint16
}

func newRefBridge(cfg Config) *refBridge {
	m := &refBridge{cfg: cfg, fdb: map[[2]uint64]fastpath.PortID{}, static: map[[2]uint64]bool{}}
	for _, s := range cfg.Static {
		k := [2]uint64{uint64(s.VLAN), macKey(s.MAC)}
		m.fdb[k], m.static[k] = s.Port, true
	}
	return m
}

func isTPID(t uint16) bool { return t == 0x8100 || t == 0x88a8 }

// process returns, for frame f in on port in, what each port sends.
func (m *refBridge) process(in fastpath.PortID, f []byte) map[fastpath.PortID][]byte {
	if !slices.Contains(m.cfg.Ports, in) {
		return nil // no bridge
	}
	// Malformed: shorter than an Ethernet header, or than one of the
	// (first two) tags it announces.
	if len(f) < 14 || isTPID(binary.BigEndian.Uint16(f[12:])) && (len(f) < 18 || isTPID(binary.BigEndian.Uint16(f[16:])) && len(f) < 22) {
		return nil
	}
	m.vid, m.tci = 0, 0
	if m.cfg.VLANs != nil {
		if binary.BigEndian.Uint16(f[12:]) == 0x8100 {
			m.tci = binary.BigEndian.Uint16(f[14:])
		}
		m.vid = m.tci & 0xfff
		if m.vid == 0 {
			m.vid = m.cfg.VLANs[in].PVID
			m.tci |= m.vid
		}
		if m.vid == 0 || !m.member(in, m.vid) {
			return nil // VLAN filtered
		}
	}
	dst, src := macKey(header.MAC(f[0:6])), macKey(header.MAC(f[6:12]))
	if src == 0 || src&groupBit != 0 {
		return nil
	}
	if k := [2]uint64{uint64(m.vid), src}; !m.static[k] {
		m.fdb[k] = in
	}
	if dst>>4 == 0x0180c2000000>>4 {
		return nil // link-local
	}
	var outs []fastpath.PortID
	if p, ok := m.fdb[[2]uint64{uint64(m.vid), dst}]; ok && dst&groupBit == 0 {
		if p == in {
			return nil // hairpin
		}
		outs = []fastpath.PortID{p}
	} else {
		for _, p := range m.cfg.Ports {
			if p != in && (m.cfg.VLANs == nil || m.member(p, m.vid)) {
				outs = append(outs, p)
			}
		}
	}
	got := map[fastpath.PortID][]byte{}
	for _, p := range outs {
		got[p] = m.egress(f, p, in)
	}
	return got
}

// member reports whether port p is in VLAN vid.
func (m *refBridge) member(p fastpath.PortID, vid uint16) bool {
	pv := m.cfg.VLANs[p]
	return vid != 0 && (pv.PVID == vid || slices.Contains(pv.Tagged, vid))
}

// egress returns frame f as port p sends it: on a VLAN-aware bridge,
// untagged if the frame's VLAN is p's PVID, else with an 802.1Q tag (the
// frame's own, or one with the ingress PVID pushed in front of whatever
// the frame carries), as Linux's br_handle_vlan does.
func (m *refBridge) egress(f []byte, p, _ fastpath.PortID) []byte {
	if m.cfg.VLANs == nil {
		return bytes.Clone(f)
	}
	var rest []byte // what follows the frame's 802.1Q tag, if any
	if binary.BigEndian.Uint16(f[12:]) == 0x8100 {
		rest = f[16:]
	} else {
		rest = f[12:]
	}
	out := bytes.Clone(f[:12])
	if m.cfg.VLANs[p].PVID != m.vid {
		out = binary.BigEndian.AppendUint16(out, 0x8100)
		out = binary.BigEndian.AppendUint16(out, m.tci)
	}
	return append(out, rest...)
}

// pipelineSeeds are scripts of frames that exercise learning, flooding,
// tags and checksums.
func pipelineSeeds(tb testing.TB) [][]byte {
	rec := func(in fastpath.PortID, f []byte) []byte { return append([]byte{byte(in - 1), byte(len(f))}, f...) }
	partial := udp4(tb, macA, macB, 10)
	makePartial(tb, partial)
	tcp := tcp6(tb, macB, macA, 10)
	makePartial(tb, tcp)
	return [][]byte{
		slices.Concat(rec(1, rawFrame(bcast, macA)), rec(2, rawFrame(macA, macB)), rec(1, rawFrame(macB, macA)), rec(3, rawFrame(macB, macC))),
		slices.Concat(rec(4, withTag(rawFrame(bcast, macD), 0x8100, 10)), rec(1, rawFrame(macD, macA)), rec(4, withTag(rawFrame(macA, macD), 0x8100, 3<<13|10))),
		slices.Concat(rec(1, withTag(rawFrame(bcast, macA), 0x8100, 5<<13)), rec(4, withTag(rawFrame(bcast, macD), 0x88a8, 10)), rec(3, withTag(rawFrame(bcast, macC), 0x8100, 30))),
		slices.Concat(rec(2, withTag(withTag(rawFrame(bcast, macB), 0x8100, 20), 0x88a8, 7)), rec(5, rawFrame(bcast, macA)), rec(1, []byte{1, 2, 3})),
		slices.Concat(rec(2, rawFrame(bcast, macB)), rec(1, partial), rec(4, withTag(partial, 0x8100, 10)), rec(3, withTag(tcp, 0x8100, 30))),
		slices.Concat(rec(1, rawFrame(macFuzzStatic, macA)), rec(4, withTag(rawFrame(macFuzzStatic, macD), 0x8100, 20)), rec(1, rawFrame(header.MAC{0x01, 0x80, 0xc2, 0, 0, 1}, macA))),
		[]byte("short"),
	}
}
