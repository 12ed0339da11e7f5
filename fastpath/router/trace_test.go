package router

import (
	"encoding/binary"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/xdpfwd/xdpfwd/fastpath"
	"github.com/xdpfwd/xdpfwd/fastpath/header"
)

// traced returns copies of the records tr published.
func traced(tr *fastpath.Trace) []fastpath.TraceRecord {
	var out []fastpath.TraceRecord
	tr.Drain(func(r *fastpath.TraceRecord) { out = append(out, *r) })
	return out
}

// traceLAN starts, on r's worker, a trace of the first count packets
// that come in on lan.
func traceLAN(t *testing.T, r *routerRig, count int) *fastpath.Trace {
	t.Helper()
	tr, err := fastpath.NewTrace(fastpath.TraceConfig{Port: portLAN, Count: count})
	if err != nil {
		t.Fatal(err)
	}
	r.W.SetTrace(tr)
	return tr
}

// stepOf returns rec's first step of stage name, nil if none.
func stepOf(rec *fastpath.TraceRecord, name string) *fastpath.TraceStep {
	st := rec.Steps()
	for i := range st {
		if st[i].Stage == name {
			return &st[i]
		}
	}
	return nil
}

// TestRouterTraceHeld: a traced packet to a gateway not resolved yet
// ends its record held by the neighbour stage, which names the address
// it waits for; once the gateway answers, a record continuing the first
// follows the packet from the neighbour stage, which gives the MAC it
// leaves to, to its exit on wan, and the trace of one packet is done.
func TestRouterTraceHeld(t *testing.T) {
	r := newRouterRig(t, defaultRoute)
	tr := traceLAN(t, r, 1)
	r.Send(portLAN, udp4(t, macLAN, ipH, net.IP{198, 51, 100, 7}, 64, false, 100))
	got := traced(tr)
	if len(got) != 1 {
		t.Fatalf("%d records while held, want 1", len(got))
	}
	held := got[0]
	s := stepOf(&held, "neighbour")
	if s == nil || s.Action != fastpath.ActionStolen || s.Note() != "waiting for the address of 192.0.2.254 on wan" {
		t.Fatalf("neighbour step of the held packet: %+v", s)
	}
	if ex := held.Exits(); len(ex) != 1 || ex[0].Outcome != fastpath.TraceHeld || tr.Done() {
		t.Fatalf("held record's exits %+v, trace done %v", ex, tr.Done())
	}

	r.Send(portWAN, arpFrame(t, layers.ARPReply, macWAN, macG, ipG, ipWAN, macWAN))
	r.W.Poll() // the release may come with the reply's batch or the next poll
	r.Drain()
	got = traced(tr)
	if len(got) != 1 {
		t.Fatalf("%d records after the release, want the continuation", len(got))
	}
	cont := got[0]
	if cont.Continues != held.ID || cont.ID == held.ID {
		t.Fatalf("continuation: ID %d continues %d; held record %d", cont.ID, cont.Continues, held.ID)
	}
	if st := cont.Steps(); len(st) == 0 || st[0].Stage != "neighbour" || st[0].Action != fastpath.ActionContinue || st[0].Note() != "to "+net.HardwareAddr(macG[:]).String() {
		t.Fatalf("continuation's steps %+v", st)
	}
	if ex := cont.Exits(); len(ex) != 1 || ex[0].Outcome != fastpath.TraceSent || ex[0].Port != portWAN || !tr.Done() {
		t.Fatalf("continuation's exits %+v, trace done %v", ex, tr.Done())
	}
}

// TestRouterDryRunCountsNothing: a Simulator's packets, one the router
// forwards (and would hold for its gateway) and one whose TTL runs out
// (answered with an ICMP error), leave the router's counters as they
// were.
func TestRouterDryRunCountsNothing(t *testing.T) {
	r := newRouterRig(t, defaultRoute)
	pipe := fastpath.NewPipeline(append(fastpath.CoreStages(&fastpath.ChecksumFinish{}), r.r.Stages()...)...)
	sim, err := fastpath.NewSimulator(pipe, &fastpath.PortGroups{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	before := r.r.Counters()
	var rec fastpath.TraceRecord
	for _, f := range [][]byte{
		udp4(t, macLAN, ipH, net.IP{198, 51, 100, 7}, 64, false, 100),
		udp4(t, macLAN, ipH, net.IP{198, 51, 100, 7}, 1, false, 100),
	} {
		if err := sim.Run(f, portLAN, r.Now, &rec); err != nil {
			t.Fatal(err)
		}
		if len(rec.Exits()) == 0 {
			t.Fatalf("a simulated packet without an exit: steps %+v", rec.Steps())
		}
	}
	if ex := rec.Exits(); ex[0].Outcome != fastpath.TraceDropped || ex[0].Reason != DropTTL {
		t.Fatalf("TTL 1: exits %+v, want dropped for its TTL", ex)
	}
	if after := r.r.Counters(); after != before {
		t.Fatalf("counters moved by a dry run:\nbefore %+v\nafter  %+v", before, after)
	}
}

// TestRouterTraceHeldFails: a traced packet held for a neighbour that
// never answers is followed to its end: after the kernel's three
// solicitations, a record continuing the held one ends with the drop for
// the neighbour, and the trace is done.
func TestRouterTraceHeldFails(t *testing.T) {
	r := newRouterRig(t)
	r.Send(portLAN, arpFrame(t, layers.ARPRequest, header.BroadcastMAC, macH, ipH, ipLAN, header.MAC{}))
	tr := traceLAN(t, r, 1)
	r.Send(portLAN, udp4(t, macLAN, ipH, net.IP{192, 0, 2, 77}, 64, false, 10))
	var got []fastpath.TraceRecord
	for step := 0; step < 40 && !tr.Done(); step++ {
		r.Now += fastpath.Time(100 * time.Millisecond)
		r.W.Poll()
		r.Drain()
		got = append(got, traced(tr)...)
	}
	if !tr.Done() || len(got) != 2 {
		t.Fatalf("after 4 s: done %v, %d records, want the held one and its continuation", tr.Done(), len(got))
	}
	held, cont := got[0], got[1]
	if ex := held.Exits(); len(ex) != 1 || ex[0].Outcome != fastpath.TraceHeld {
		t.Fatalf("first record's exits %+v, want held", ex)
	}
	if ex := cont.Exits(); cont.Continues != held.ID || len(ex) != 1 || ex[0].Outcome != fastpath.TraceDropped || ex[0].Reason != DropNeighbour {
		t.Fatalf("continuation of %d: continues %d, exits %+v; want dropped for the neighbour", held.ID, cont.Continues, ex)
	}
	if st := cont.Steps(); len(st) == 0 || st[0].Note() != "answered with ICMP host unreachable" {
		t.Fatalf("continuation's first step %+v, want the host unreachable it was answered with", st)
	}
}

// TestRouterTraceAnswered: a traced packet the router answers with an
// ICMP error has the error named in the note of the stage that sent it:
// time exceeded for TTL 1 (after the route), port unreachable for UDP to
// the router itself.
func TestRouterTraceAnswered(t *testing.T) {
	r := newRouterRig(t, defaultRoute)
	r.Send(portLAN, arpFrame(t, layers.ARPRequest, header.BroadcastMAC, macH, ipH, ipLAN, header.MAC{}))
	tr := traceLAN(t, r, 2)
	r.Send(portLAN, udp4(t, macLAN, ipH, net.IP{198, 51, 100, 7}, 1, false, 100))
	r.Send(portLAN, udp4(t, macLAN, ipH, ipLAN, 64, false, 100))
	got := traced(tr)
	if len(got) != 2 {
		t.Fatalf("%d records, want 2", len(got))
	}
	for i, want := range []struct{ stage, note string }{{"route", "answered with ICMP time exceeded"}, {"router input", "answered with ICMP port unreachable"}} {
		s := stepOf(&got[i], want.stage)
		if s == nil || !strings.HasSuffix(s.Note(), want.note) {
			t.Errorf("record %d, %s step: %+v, want a note ending %q", i, want.stage, s, want.note)
		}
	}
}

// TestRouterTraceFragments: a traced packet the router cuts into two
// fragments is followed as two copies from the stage that cut it on: each
// step of the second fragment says it is copy 1, the first fragment's
// header keeps the UDP ports and the second's does not (a later
// fragment), and each fragment has its exit on wan.
func TestRouterTraceFragments(t *testing.T) {
	r := newRouterRig(t, defaultRoute)
	r.Send(portWAN, arpFrame(t, layers.ARPRequest, header.BroadcastMAC, macG, ipG, ipWAN, header.MAC{}))
	tr := traceLAN(t, r, 1)
	if out := r.Send(portLAN, udp4(t, macLAN, ipH, net.IP{198, 51, 100, 7}, 64, false, 1450)); len(out[portWAN]) != 2 {
		t.Fatalf("%d frames on wan, want 2 fragments", len(out[portWAN]))
	}
	got := traced(tr)
	if len(got) != 1 {
		t.Fatalf("%d records, want 1", len(got))
	}
	rec := got[0]
	split := -1
	for i, s := range rec.Steps() {
		if s.Copy > 1 {
			t.Fatalf("step %d (%s): copy %d, want 0 or 1", i, s.Stage, s.Copy)
		}
		if s.Copy == 1 && split < 0 {
			split = i
		}
	}
	if split < 1 {
		t.Fatalf("no step of a second fragment: %d steps", len(rec.Steps()))
	}
	for _, s := range rec.Steps()[split-1:] {
		h := s.Header()
		if len(h) < 20 {
			continue
		}
		later := binary.BigEndian.Uint16(h[6:])&0x1fff != 0
		if later != (s.Copy == 1) {
			t.Fatalf("%s, copy %d: fragment offset %d", s.Stage, s.Copy, binary.BigEndian.Uint16(h[6:])&0x1fff)
		}
	}
	if ex := rec.Exits(); len(ex) != 2 || ex[0].Port != portWAN || ex[1].Port != portWAN {
		t.Fatalf("exits %+v, want both fragments sent on wan", ex)
	}
}

// TestRouterTraceContinuationOneCopy: a continuation record opened in the
// middle of a stage's pass (the neighbour stage gives the held packet
// back) numbers its packet as the only one, whatever an earlier batch's
// records left in the counters.
func TestRouterTraceContinuationOneCopy(t *testing.T) {
	r := newRouterRig(t, defaultRoute)
	r.Send(portLAN, arpFrame(t, layers.ARPRequest, header.BroadcastMAC, macH, ipH, ipLAN, header.MAC{}))
	tr := traceLAN(t, r, 2)
	r.Send(portLAN, udp4(t, macLAN, ipH, net.IP{198, 51, 100, 7}, 64, false, 100)) // held for the gateway
	r.Send(portLAN, udp4(t, macLAN, net.IP{10, 1, 0, 9}, ipH, 64, false, 100))     // back out of lan
	traced(tr)
	r.Send(portWAN, arpFrame(t, layers.ARPReply, macWAN, macG, ipG, ipWAN, macWAN))
	r.W.Poll()
	r.Drain()
	got := traced(tr)
	if len(got) != 1 || got[0].Continues == 0 {
		t.Fatalf("%d records after the release, want the continuation", len(got))
	}
	for _, s := range got[0].Steps() {
		if s.Copy != 0 {
			t.Fatalf("continuation step %s: copy %d, want 0 (one packet)", s.Stage, s.Copy)
		}
	}
}

// TestRouterHeldErrorToSelf: errors about packets whose source is the
// router's own address (held after NAT66 masquerade; nothing answers for
// their destination) come from that address, as the kernel's source
// selection picks it, and only the global rate limit applies to them (the
// kernel routes them through loopback): ten held packets, ten errors, all
// handed to NAT to turn back.
func TestRouterHeldErrorToSelf(t *testing.T) {
	r := newRouterRig(t)
	var srcs []netip.Addr
	r.r.SetErrorNAT(func(about *fastpath.Packet, ip []byte) bool {
		srcs = append(srcs, netip.AddrFrom16(header.IPv6(ip).Src()))
		return false
	})
	self := netip.MustParseAddr("fd00:2::1")
	for range 10 {
		f := ser(t, eth(macLAN, macH, layers.EthernetTypeIPv6),
			&layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolUDP, SrcIP: self.AsSlice(), DstIP: net.ParseIP("fd00:2::77")},
			gopacket.Payload(make([]byte, 28)))
		r.Send(portLAN, f)
	}
	for range 50 {
		r.Now += fastpath.Time(100 * time.Millisecond)
		r.W.Poll()
		r.Drain()
	}
	if len(srcs) != 10 {
		t.Fatalf("%d errors for 10 held packets, want 10 (no per-destination limit to the router itself)", len(srcs))
	}
	for _, s := range srcs {
		if s != self {
			t.Fatalf("error source %v, want %v", s, self)
		}
	}
}
