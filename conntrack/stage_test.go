package conntrack_test

import (
	"encoding/binary"
	"net"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/xdpfwd/xdpfwd/conntrack"
	"github.com/xdpfwd/xdpfwd/fastpath"
	"github.com/xdpfwd/xdpfwd/fastpath/fastpathtest"
	"github.com/xdpfwd/xdpfwd/fastpath/header"
)

// stageRig is one worker's conntrack stages over a small table.
type stageRig struct {
	tr                 *conntrack.Tracker
	pre, out, in, post fastpath.Stage
	b                  fastpath.Batch
	now                fastpath.Time
}

func newStageRig(t *testing.T) *stageRig {
	t.Helper()
	return newStageRigConfig(t, conntrack.Config{Max: 64})
}

func newStageRigConfig(t *testing.T, cfg conntrack.Config) *stageRig {
	t.Helper()
	tr := conntrack.NewTracker(conntrack.New(cfg))
	tr.SetEnabled(true)
	return newStageRigOn(t, tr)
}

// newStageRigOn is a rig of one more worker's stages of tr.
func newStageRigOn(t *testing.T, tr *conntrack.Tracker) *stageRig {
	t.Helper()
	r := &stageRig{tr: tr, now: fastpathtest.Sec(1)}
	for _, a := range tr.Stages() {
		switch {
		case a.Hook == fastpath.HookPrerouting:
			r.pre = a.Stage
		case a.Hook == fastpath.HookOutput:
			r.out = a.Stage
		case a.Hook == fastpath.HookInput:
			r.in = a.Stage
		case a.Hook == fastpath.HookPostrouting:
			r.post = a.Stage
		}
	}
	if r.pre == nil || r.out == nil || r.in == nil || r.post == nil {
		t.Fatalf("stages %v", tr.Stages())
	}
	return r
}

// forward runs frames, routed through the router, past conntrack at
// prerouting and its confirmation at postrouting, and returns their
// packets after prerouting's tracking.
func (r *stageRig) forward(frames ...[]byte) []fastpath.Packet {
	r.b.Len = len(frames)
	for i, f := range frames {
		r.b.Packets[i] = fastpathtest.Parsed(f)
		r.b.Packets[i].Routed = true
	}
	r.pre.Process(&r.b, r.now)
	seen := make([]fastpath.Packet, len(frames))
	copy(seen, r.b.Packets[:len(frames)])
	r.in.Process(&r.b, r.now)
	r.post.Process(&r.b, r.now)
	return seen
}

var (
	macA, macB = fastpathtest.MAC(1), fastpathtest.MAC(2)
	h1, h2     = net.ParseIP("10.1.0.2"), net.ParseIP("10.2.0.2")
)

func frame(t *testing.T, src, dst net.IP, ls ...gopacket.SerializableLayer) []byte {
	ip := &layers.IPv4{Version: 4, TTL: 64, SrcIP: src, DstIP: dst}
	switch l := ls[0].(type) {
	case *layers.UDP:
		ip.Protocol = layers.IPProtocolUDP
		_ = l.SetNetworkLayerForChecksum(ip)
	case *layers.TCP:
		ip.Protocol = layers.IPProtocolTCP
		_ = l.SetNetworkLayerForChecksum(ip)
	case *layers.ICMPv4:
		ip.Protocol = layers.IPProtocolICMPv4
	}
	return fastpathtest.Serialize(t, append([]gopacket.SerializableLayer{
		&layers.Ethernet{SrcMAC: fastpathtest.HW(macA), DstMAC: fastpathtest.HW(macB), EthernetType: layers.EthernetTypeIPv4}, ip}, ls...)...)
}

func state(p fastpath.Packet) conntrack.State { return conntrack.State(p.CtState) }

// TestStageUDP: a UDP flow is new until confirmed, then its reply is
// established in the reply direction, and an ICMP error quoting it is
// related; the entry is in the table with both tuples.
func TestStageUDP(t *testing.T) {
	r := newStageRig(t)
	out := frame(t, h1, h2, &layers.UDP{SrcPort: 4000, DstPort: 53}, gopacket.Payload("q"))
	back := frame(t, h2, h1, &layers.UDP{SrcPort: 53, DstPort: 4000}, gopacket.Payload("a"))
	p := r.forward(out)[0]
	if state(p) != conntrack.StateNew || p.CtRef == 0 {
		t.Fatalf("first packet: state %d ref %x", p.CtState, p.CtRef)
	}
	if n := r.tr.Table().Count(); n != 1 {
		t.Fatalf("%d entries after the first packet, want 1", n)
	}
	p = r.forward(out)[0]
	if state(p) != conntrack.StateNew {
		t.Fatalf("second packet before a reply: state %d, want new", p.CtState)
	}
	p = r.forward(back)[0]
	var e conntrack.Entry
	if state(p) != conntrack.StateEstablished || r.tr.Dir(&p) != conntrack.DirReply || !r.tr.Entry(&p, &e) {
		t.Fatalf("reply: state %d dir %d", p.CtState, r.tr.Dir(&p))
	}
	if e.Status&conntrack.StatusSeenReply == 0 || e.Tuple[0].String() != "src=10.1.0.2 dst=10.2.0.2 sport=4000 dport=53" {
		t.Fatalf("entry %+v", e)
	}
	// h2's port unreachable about h1's datagram: related, reply way.
	quoted := out[14 : 14+20+8]
	icmp := frame(t, h2, h1, &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(3, 3)}, gopacket.Payload(quoted))
	if p = r.forward(icmp)[0]; state(p) != conntrack.StateRelated || r.tr.Dir(&p) != conntrack.DirReply {
		t.Fatalf("port unreachable: state %d dir %d", p.CtState, r.tr.Dir(&p))
	}
	// The same error sent to somebody else is invalid.
	other := frame(t, h2, net.ParseIP("10.1.0.9"), &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(3, 3)}, gopacket.Payload(quoted))
	if p = r.forward(other)[0]; state(p) != conntrack.StateInvalid {
		t.Fatalf("error to another host: state %d, want invalid", p.CtState)
	}
	if n := r.tr.Table().Count(); n != 1 {
		t.Fatalf("%d entries, want 1", n)
	}
}

// TestStageRSTKeepsEntry: the RST that is a connection's only answer
// deletes its entry (nf_ct_kill_acct), but the RST itself keeps what it
// was for the rules after conntrack: established, reply, seen-reply.
func TestStageRSTKeepsEntry(t *testing.T) {
	r := newStageRig(t)
	syn := frame(t, h1, h2, &layers.TCP{SrcPort: 40000, DstPort: 9, SYN: true, Seq: 100, Window: 1000})
	rst := frame(t, h2, h1, &layers.TCP{SrcPort: 9, DstPort: 40000, RST: true, ACK: true, Ack: 101})
	r.forward(syn)
	p := r.forward(rst)[0]
	var e conntrack.Entry
	if state(p) != conntrack.StateEstablished || !r.tr.Entry(&p, &e) || e.Status&conntrack.StatusSeenReply == 0 {
		t.Fatalf("RST: state %d entry %+v", p.CtState, e)
	}
	if n := r.tr.Table().Count(); n != 0 {
		t.Fatalf("%d entries after the RST, want 0", n)
	}
}

// TestStageInvalidAndUntracked: TCP SYN+FIN is invalid; ICMPv6 neighbour
// solicitations are untracked; a frame the router sends is tracked at
// output only; nothing is tracked while disabled.
func TestStageInvalidAndUntracked(t *testing.T) {
	r := newStageRig(t)
	bad := frame(t, h1, h2, &layers.TCP{SrcPort: 1, DstPort: 2, SYN: true, FIN: true})
	if p := r.forward(bad)[0]; state(p) != conntrack.StateInvalid || p.CtRef != 0 {
		t.Fatalf("SYN+FIN: state %d", p.CtState)
	}
	ip6 := &layers.IPv6{Version: 6, HopLimit: 255, NextHeader: layers.IPProtocolICMPv6, SrcIP: net.ParseIP("fd00::1"), DstIP: net.ParseIP("ff02::1:ff00:2")}
	icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeNeighborSolicitation, 0)}
	_ = icmp.SetNetworkLayerForChecksum(ip6)
	ns := fastpathtest.Serialize(t, &layers.Ethernet{SrcMAC: fastpathtest.HW(macA), DstMAC: fastpathtest.HW(macB), EthernetType: layers.EthernetTypeIPv6},
		ip6, icmp, &layers.ICMPv6NeighborSolicitation{TargetAddress: net.ParseIP("fd00::2")})
	if p := r.forward(ns)[0]; state(p) != conntrack.StateUntracked {
		t.Fatalf("neighbour solicitation: state %d, want untracked", p.CtState)
	}
	r.tr.SetEnabled(false)
	if p := r.forward(frame(t, h1, h2, &layers.UDP{SrcPort: 1, DstPort: 2})); state(p[0]) != 0 {
		t.Fatalf("disabled: state %d", p[0].CtState)
	}
	if n := r.tr.Table().Count(); n != 0 {
		t.Fatalf("%d entries, want 0", n)
	}
}

// TestStageNoAllocs: tracking a batch of established packets allocates
// nothing.
func TestStageNoAllocs(t *testing.T) {
	r := newStageRig(t)
	out := frame(t, h1, h2, &layers.UDP{SrcPort: 4000, DstPort: 53}, gopacket.Payload("q"))
	back := frame(t, h2, h1, &layers.UDP{SrcPort: 53, DstPort: 4000}, gopacket.Payload("a"))
	r.forward(out)
	r.forward(back)
	var pk [2]fastpath.Packet
	pk[0], pk[1] = fastpathtest.Parsed(out), fastpathtest.Parsed(back)
	allocs := testing.AllocsPerRun(100, func() {
		r.b.Len = 2
		r.b.Packets[0], r.b.Packets[1] = pk[0], pk[1]
		r.b.Packets[0].Routed, r.b.Packets[1].Routed = true, true
		r.pre.Process(&r.b, r.now)
		r.post.Process(&r.b, r.now)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per batch", allocs)
	}
}

// TestStageFragments: a fragmented datagram is tracked by its first
// fragment; the second, in the same batch and in a later one, gets the
// same connection; a fragment whose first was not seen is invalid.
func TestStageFragments(t *testing.T) {
	r := newStageRig(t)
	big := frame(t, h1, h2, &layers.UDP{SrcPort: 4000, DstPort: 53}, gopacket.Payload(make([]byte, 100)))
	first, second := fastpathtest.Fragments4(t, big, 48)
	ps := r.forward(first, second)
	if state(ps[0]) != conntrack.StateNew || state(ps[1]) != conntrack.StateNew || ps[0].CtRef&^(1<<61) != ps[1].CtRef&^(1<<61) {
		t.Fatalf("fragments: states %d %d refs %x %x", ps[0].CtState, ps[1].CtState, ps[0].CtRef, ps[1].CtRef)
	}
	if n := r.tr.Table().Count(); n != 1 {
		t.Fatalf("%d entries, want 1 (the second fragment must not confirm again)", n)
	}
	back := frame(t, h2, h1, &layers.UDP{SrcPort: 53, DstPort: 4000}, gopacket.Payload("a"))
	r.forward(back)
	if p := r.forward(second)[0]; state(p) != conntrack.StateEstablished {
		t.Fatalf("a later fragment after the reply: state %d, want established", p.CtState)
	}
	other := frame(t, h1, h2, &layers.UDP{SrcPort: 4001, DstPort: 53}, gopacket.Payload(make([]byte, 100)))
	other[14+4] = 0x77 // another identification
	_, lone := fastpathtest.Fragments4(t, other, 48)
	if p := r.forward(lone)[0]; state(p) != conntrack.StateInvalid {
		t.Fatalf("a fragment without its first: state %d, want invalid", p.CtState)
	}
}

// TestStageChecksums: at prerouting a TCP, UDP or ICMP packet whose
// checksum is wrong is invalid and starts no connection (counted invalid,
// ICMP as an error, as the kernel's tcp_error, udp_error and
// icmp_error with nf_conntrack_checksum 1); a UDP datagram without a
// checksum, or one whose checksum the sender left for the device
// (CHECKSUM_PARTIAL), is tracked; so is a UDP datagram whose length field
// exceeds it not. SkipChecksum turns the check off.
func TestStageChecksums(t *testing.T) {
	udp := func(sport uint16) []byte {
		return frame(t, h1, h2, &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: 53}, gopacket.Payload("query"))
	}
	corrupt := func(f []byte, off int) []byte { f[off] ^= 0x55; return f }
	setSum := func(f []byte, v uint16) []byte { binary.BigEndian.PutUint16(f[14+20+6:], v); return f }
	ip := func(f []byte) header.IPv4 { return header.IPv4(f[14 : 14+20]) }
	partial := func(f []byte) []byte {
		return setSum(f, ip(f).PseudoHeaderChecksum(header.ProtocolUDP, binary.BigEndian.Uint16(f[14+20+4:])))
	}
	longer := func(f []byte) []byte { binary.BigEndian.PutUint16(f[14+20+4:], 200); return setSum(f, 0) }
	syn := frame(t, h1, h2, &layers.TCP{SrcPort: 5000, DstPort: 80, SYN: true, Seq: 1, Window: 1000})
	echo := frame(t, h1, h2, &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0), Id: 9, Seq: 1})
	for _, tc := range []struct {
		name          string
		f             []byte
		skip          bool
		want          conntrack.State
		invalid, errs uint64
	}{
		{"udp", udp(1), false, conntrack.StateNew, 0, 0},
		{"udp bad checksum", corrupt(udp(2), 14+20+6), false, conntrack.StateInvalid, 1, 0},
		{"udp bad payload", corrupt(udp(3), 14+20+8), false, conntrack.StateInvalid, 1, 0},
		{"udp no checksum", setSum(corrupt(udp(4), 14+20+8), 0), false, conntrack.StateNew, 0, 0},
		{"udp partial", partial(udp(5)), false, conntrack.StateNew, 0, 0},
		{"udp length beyond the datagram", longer(udp(6)), false, conntrack.StateInvalid, 1, 0},
		{"tcp bad checksum", corrupt(syn, 14+20+16), false, conntrack.StateInvalid, 1, 0},
		{"icmp bad checksum", corrupt(echo, 14+20+2), false, conntrack.StateInvalid, 0, 1},
		{"udp bad checksum, checks off", corrupt(udp(7), 14+20+6), true, conntrack.StateNew, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newStageRig(t)
			if tc.skip {
				r = newStageRigConfig(t, conntrack.Config{Max: 64, SkipChecksum: true})
			}
			p := r.forward(tc.f)[0]
			var s conntrack.Stats
			for _, w := range r.tr.Stats() {
				s.Add(&w)
			}
			if state(p) != tc.want || s.Invalid != tc.invalid || s.Error != tc.errs {
				t.Fatalf("state %d invalid %d error %d, want %d %d %d", p.CtState, s.Invalid, s.Error, tc.want, tc.invalid, tc.errs)
			}
			want := 0
			if tc.want == conntrack.StateNew {
				want = 1
			}
			if n := r.tr.Table().Count(); n != want {
				t.Fatalf("%d entries, want %d", n, want)
			}
		})
	}
}

// TestStageDryRunCountsNothing: packets of a dry run (a Simulator's
// batch, through stages of their own) change no counter of Stats, and
// the worker that ran them is not listed: Stats lists the workers that
// carry traffic, with what they counted.
func TestStageDryRunCountsNothing(t *testing.T) {
	r := newStageRig(t)
	udp := func(sport uint16) []byte {
		return frame(t, h1, h2, &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: 53}, gopacket.Payload("query"))
	}
	bad := udp(1)
	bad[14+20+6] ^= 0x55 // the UDP checksum: invalid
	r.forward(bad, udp(2))
	before := r.tr.Stats()
	if len(before) != 1 || before[0].Invalid != 1 {
		t.Fatalf("stats after a live batch %+v, want one worker, 1 invalid", before)
	}

	sim := newStageRigOn(t, r.tr)
	sim.b.DryRun = true
	bad2 := udp(3)
	bad2[14+20+6] ^= 0x55
	seen := sim.forward(bad2, udp(4), udp(2))
	if state(seen[0]) != conntrack.StateInvalid || state(seen[1]) != conntrack.StateNew {
		t.Fatalf("dry run: states %d %d, want invalid and new", seen[0].CtState, seen[1].CtState)
	}
	after := r.tr.Stats()
	if len(after) != 1 || after[0] != before[0] {
		t.Fatalf("stats after a dry run %+v, want %+v (the dry run's worker not listed)", after, before)
	}
	if n := r.tr.Table().Count(); n != 1 {
		t.Fatalf("%d entries after a dry run, want the live one", n)
	}
}
