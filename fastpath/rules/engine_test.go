package rules

import (
	"bytes"
	"net"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/xdpfwd/xdpfwd/fastpath"
	"github.com/xdpfwd/xdpfwd/fastpath/fastpathtest"
	"github.com/xdpfwd/xdpfwd/fastpath/header"
)

// engineRuleset drops tcp port 22 at ip forward, udp port 53 between the
// bridge's ports, and counts what netdev ingress sees on wan0.
func engineRuleset() *Ruleset {
	var b tb
	in := b.base("in", HookIngress, 0, VerdictAccept, ex(&Counter{}))
	in.Devices = []string{"wan0"}
	return &Ruleset{Tables: []*Table{
		table(FamilyIP, "f", b.base("fw", HookForward, 0, VerdictAccept, ex(&Counter{}, l4(6), ld(PayloadTransport, 2, 2), eq(0, 22), drop))),
		table(FamilyBridge, "b", b.base("fw", HookForward, 0, VerdictAccept, ex(l4(17), ld(PayloadTransport, 2, 2), eq(0, 53), &Counter{}, drop))),
		table(FamilyNetdev, "n", in),
	}}
}

func TestEngine(t *testing.T) {
	p := mustCompile(t, engineRuleset(), testEnv)
	r := newTestRig(t, p)
	out := r.Send(portWAN,
		frame4(t, macB, macA, "1.1.1.1", "10.1.0.1", tcp(1, 22, "S")),
		frame4(t, macB, macA, "1.1.1.1", "10.1.0.1", tcp(1, 80, "S")),
		frame4(t, macB, macA, "1.1.1.1", "10.1.0.1", udp(1, 22)))
	if len(out[portLAN]) != 2 || len(out) != 1 {
		t.Fatalf("routed: out %v", lens(out))
	}
	if n := r.Drops(portWAN, DropReason(fastpath.HookForward)); n != 1 {
		t.Errorf("%d drops at ip forward, want 1", n)
	}
	// Bridged: udp 53 to p3 is dropped per copy, counted on p3.
	out = r.Send(portP2,
		frame4(t, fastpathtest.MAC(3), macA, "10.0.0.1", "10.0.0.3", udp(1, 53)),
		frame4(t, fastpathtest.MAC(3), macA, "10.0.0.1", "10.0.0.3", udp(1, 54)))
	if len(out[portP3]) != 1 || len(out) != 1 {
		t.Fatalf("bridged: out %v", lens(out))
	}
	if n := r.Drops(portP3, DropReason(fastpath.HookBridgeForward)); n != 1 {
		t.Errorf("%d drops at bridge forward on p3, want 1", n)
	}
	want := map[string]uint64{"f/fw": 3, "b/fw": 1, "n/in": 3}
	for _, rs := range p.Rules() {
		if w := want[rs.Table+"/"+rs.Chain]; rs.Packets != w {
			t.Errorf("%s/%s rule %d counted %d, want %d", rs.Table, rs.Chain, rs.Handle, rs.Packets, w)
		}
	}
}

func lens(out map[fastpath.PortID][][]byte) map[fastpath.PortID]int {
	m := map[fastpath.PortID]int{}
	for p, f := range out {
		m[p] = len(f)
	}
	return m
}

// TestEngineSwap: a new program takes over between batches; the counters
// of unchanged rules (and named objects) carry on, changed ones start
// anew.
func TestEngineSwap(t *testing.T) {
	mk := func(port byte, extra bool) *Program {
		var b tb
		rules := [][]Expr{
			ex(&Counter{}),
			ex(&Counter{}, l4(6), ld(PayloadTransport, 2, 2), eq(0, port), drop),
			ex(&Objref{Type: ObjectCounter, Object: "c"}),
		}
		if extra {
			rules = append(rules, ex(&Counter{}))
		}
		tbl := table(FamilyIP, "f", b.base("fw", HookForward, 0, VerdictAccept, rules...))
		tbl.Objects = []*Object{{Name: "c", Type: ObjectCounter, Value: &Counter{}}}
		rs := &Ruleset{Tables: []*Table{tbl}}
		// The rule that changes gets another text.
		tbl.Chains[0].Rules[1].Text = "tcp dport " + string('0'+port)
		return mustCompile(t, rs, testEnv)
	}
	p1 := mk(2, false)
	r := newTestRig(t, nil)
	send := func() {
		r.Send(portWAN, frame4(t, macB, macA, "1.1.1.1", "10.1.0.1", tcp(1, 9, "S")))
	}
	send() // no program: nothing counts
	r.E.Swap(p1)
	send()
	send()
	p2 := mk(3, true)
	r.E.Swap(p2)
	if r.E.Program() != p2 {
		t.Fatal("Program is not the swapped one")
	}
	send()
	got := p2.Rules()
	// Rule 1 carries on, rule 2 changed, rule 3 counts in the named
	// counter, which carries on, rule 4 is new.
	for i, want := range []uint64{3, 1, 3, 1} {
		if got[i].Packets != want {
			t.Errorf("rule %d (%s): %d packets, want %d", got[i].Handle, got[i].Text, got[i].Packets, want)
		}
	}
	if o := p2.Objects(); len(o) != 1 || o[0].Value.(*Counter).Packets != 3 {
		t.Errorf("named counter: %+v", o)
	}
	// The old program's shared counters went on too (they are the same).
	if p1.Rules()[0].Packets != 3 {
		t.Errorf("old program's first rule: %d", p1.Rules()[0].Packets)
	}
	r.E.Swap(nil)
	send()
	if p2.Rules()[0].Packets != 3 {
		t.Error("counted with no program")
	}
}

// TestReject checks the packets reject sends, byte by byte, through the
// whole pipeline: at the ip hooks the router's own (a TCP reset, an ICMP
// error, routed back to the sender), in the bridge family at layer 2 out
// of the port the frame came in on.
func TestReject(t *testing.T) {
	var b tb
	rs := &Ruleset{Tables: []*Table{
		table(FamilyInet, "f", b.base("fw", HookForward, 0, VerdictAccept,
			ex(l4(6), ld(PayloadTransport, 2, 2), eq(0, 22), &Reject{Type: RejectTCPReset}),
			ex(l4(17), ld(PayloadTransport, 2, 2), eq(0, 53), &Reject{Type: RejectICMPXUnreach, Code: 1}),
			ex(l4(17), ld(PayloadTransport, 2, 2), eq(0, 54), &Reject{Type: RejectICMPUnreach, Code: 3}))),
		table(FamilyBridge, "b", b.base("pre", HookPrerouting, 0, VerdictAccept,
			ex(l4(6), ld(PayloadTransport, 2, 2), eq(0, 22), &Reject{Type: RejectTCPReset}),
			ex(l4(17), ld(PayloadTransport, 2, 2), eq(0, 53), &Reject{Type: RejectICMPXUnreach, Code: 3}))),
	}}
	p := mustCompile(t, rs, testEnv)
	r := newTestRig(t, p)

	check := func(name string, in fastpath.PortID, f []byte, out fastpath.PortID, verify func(t *testing.T, pk gopacket.Packet)) {
		t.Helper()
		drops := r.Drops(in, DropReason(fastpath.HookForward)) + r.Drops(in, DropReason(fastpath.HookBridgePrerouting))
		got := r.Send(in, f)
		if len(got) != 1 || len(got[out]) != 1 {
			t.Errorf("%s: sent %v, want one frame on port %d", name, lens(got), out)
			return
		}
		if n := r.Drops(in, DropReason(fastpath.HookForward)) + r.Drops(in, DropReason(fastpath.HookBridgePrerouting)); n != drops+1 {
			t.Errorf("%s: %d drops, want %d", name, n, drops+1)
		}
		pk := gopacket.NewPacket(got[out][0], layers.LayerTypeEthernet, gopacket.Default)
		if el := pk.ErrorLayer(); el != nil {
			t.Errorf("%s: %v", name, el.Error())
			return
		}
		verify(t, pk)
	}
	checksums := func(t *testing.T, pk gopacket.Packet) {
		t.Helper()
		raw := pk.Data()
		pp := fastpathtest.Parsed(raw)
		if pp.EtherType == header.EtherTypeIPv4 && header.Checksum(raw[pp.L3Off:pp.L3Off+20], 0) != 0xffff {
			t.Error("bad IPv4 header checksum")
		}
		seg := raw[pp.L4Off:pp.L3End]
		ps := fastpathtest.PseudoSum(raw, &pp)
		if pp.L4Proto == header.ProtocolICMP {
			ps = 0
		}
		if header.Checksum(seg, ps) != 0xffff {
			t.Errorf("bad %d checksum", pp.L4Proto)
		}
	}

	syn := frame4(t, macB, macA, "1.1.1.1", "10.1.0.1", l4spec{proto: 6, sport: 1234, dport: 22, flags: "S", seq: 1000, payload: 3})
	check("ip rst", portWAN, syn, portWAN, func(t *testing.T, pk gopacket.Packet) {
		ip := pk.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		tc := pk.Layer(layers.LayerTypeTCP).(*layers.TCP)
		if !ip.SrcIP.Equal(net.IP{10, 1, 0, 1}) || !ip.DstIP.Equal(net.IP{1, 1, 1, 1}) || ip.TTL != 64 || ip.Flags != layers.IPv4DontFragment ||
			ip.TOS != 0 || ip.Id != 0 || ip.Length != 40 {
			t.Errorf("ip %+v", ip)
		}
		if tc.SrcPort != 22 || tc.DstPort != 1234 || !tc.RST || !tc.ACK || tc.SYN || tc.Seq != 0 || tc.Ack != 1000+1+3 || tc.Window != 0 {
			t.Errorf("tcp %+v", tc)
		}
		checksums(t, pk)
	})
	ack := frame4(t, macB, macA, "1.1.1.1", "10.1.0.1", l4spec{proto: 6, sport: 1234, dport: 22, flags: "A", seq: 1000, ack: 5555})
	check("ip rst to ack", portWAN, ack, portWAN, func(t *testing.T, pk gopacket.Packet) {
		tc := pk.Layer(layers.LayerTypeTCP).(*layers.TCP)
		if !tc.RST || tc.ACK || tc.Seq != 5555 || tc.Ack != 0 {
			t.Errorf("tcp %+v", tc)
		}
		checksums(t, pk)
	})
	u := frame4(t, macB, macA, "1.1.1.1", "10.1.0.1", udp(4000, 53))
	check("icmpx port unreachable", portWAN, u, portWAN, func(t *testing.T, pk gopacket.Packet) {
		ip := pk.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		ic := pk.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
		if !ip.SrcIP.Equal(net.IP{10, 1, 0, 1}) || !ip.DstIP.Equal(net.IP{1, 1, 1, 1}) || ip.TOS != 0xc0 {
			t.Errorf("ip %+v", ip)
		}
		// icmp_send quotes the IP packet (the frame's padding trimmed).
		if ic.TypeCode != layers.CreateICMPv4TypeCode(3, 3) || !bytes.Equal(ic.Payload, u[14:14+38]) {
			t.Errorf("icmp %v, quote %x", ic.TypeCode, ic.Payload)
		}
		checksums(t, pk)
	})
	u6 := frame6(t, macB, macA, "fd00::1", "fd01::1", udp(4000, 54))
	check("icmpv6 addr unreachable (code 3)", portWAN, u6, portWAN, func(t *testing.T, pk gopacket.Packet) {
		ip := pk.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
		ic := pk.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6)
		if !ip.SrcIP.Equal(net.ParseIP("fd01::1")) || !ip.DstIP.Equal(net.ParseIP("fd00::1")) || ip.HopLimit != 64 {
			t.Errorf("ip %+v", ip)
		}
		if ic.TypeCode != layers.CreateICMPv6TypeCode(1, 3) || !bytes.Equal(ic.Payload[4:], u6[14:14+58]) {
			t.Errorf("icmpv6 %v", ic.TypeCode)
		}
		checksums(t, pk)
	})
	syn6 := frame6(t, macB, macA, "fd00::1", "fd01::1", tcp(1234, 22, "S"))
	check("ip6 rst", portWAN, syn6, portWAN, func(t *testing.T, pk gopacket.Packet) {
		ip := pk.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
		tc := pk.Layer(layers.LayerTypeTCP).(*layers.TCP)
		if !ip.SrcIP.Equal(net.ParseIP("fd01::1")) || ip.TrafficClass != 0 || ip.FlowLabel != 0 || ip.HopLimit != 64 {
			t.Errorf("ip %+v", ip)
		}
		if tc.SrcPort != 22 || tc.DstPort != 1234 || !tc.RST || !tc.ACK || tc.Ack != 1001 {
			t.Errorf("tcp %+v", tc)
		}
		checksums(t, pk)
	})

	// Bridge: a tagged SYN from p2 to p3 gets a reset from p3's MAC, with
	// the tag, out of p2; nothing reaches p3.
	bsyn := tag(frame4(t, fastpathtest.MAC(3), macA, "10.0.0.1", "10.0.0.3", tcp(1234, 22, "S")), 0x8100, 7)
	check("bridge rst", portP2, bsyn, portP2, func(t *testing.T, pk gopacket.Packet) {
		e := pk.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
		d := pk.Layer(layers.LayerTypeDot1Q).(*layers.Dot1Q)
		ip := pk.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		tc := pk.Layer(layers.LayerTypeTCP).(*layers.TCP)
		if !bytes.Equal(e.SrcMAC, fastpathtest.HW(fastpathtest.MAC(3))) || !bytes.Equal(e.DstMAC, fastpathtest.HW(macA)) || d.VLANIdentifier != 7 {
			t.Errorf("ethernet %v → %v vlan %d", e.SrcMAC, e.DstMAC, d.VLANIdentifier)
		}
		// The kernel counts the segment from its untrimmed skb: the
		// frame's 6 bytes of Ethernet padding (gopacket padded it to 60
		// bytes before the tag went in) are in the acknowledgment.
		if !ip.SrcIP.Equal(net.IP{10, 0, 0, 3}) || !tc.RST || tc.Ack != 1000+1+6 {
			t.Errorf("ip %v, tcp %+v", ip.SrcIP, tc)
		}
		checksums(t, pk)
	})
	bu := frame4(t, fastpathtest.MAC(3), macA, "10.0.0.1", "10.0.0.3", udp(4000, 53))
	check("bridge admin prohibited", portP2, bu, portP2, func(t *testing.T, pk gopacket.Packet) {
		ip := pk.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		ic := pk.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
		// nf_reject_skb_v4_unreach: TOS 0, DF, quoting the untrimmed
		// frame (Ethernet padding included).
		if ip.TOS != 0 || ip.Flags != layers.IPv4DontFragment || ic.TypeCode != layers.CreateICMPv4TypeCode(3, 13) ||
			!bytes.Equal(ic.Payload, bu[14:]) {
			t.Errorf("ip %+v icmp %v quote %d bytes", ip, ic.TypeCode, len(ic.Payload))
		}
		checksums(t, pk)
	})
	// To a broadcast MAC: dropped, nothing sent.
	got := r.Send(portP2, frame4(t, header.BroadcastMAC, macA, "10.0.0.1", "10.0.0.3", udp(4000, 53)))
	if len(got) != 0 {
		t.Errorf("reject of a broadcast frame sent %v", lens(got))
	}
}

// TestEngineAllocs: the per-packet path allocates nothing, whatever the
// rules do (log and the packets reject emits aside).
func TestEngineAllocs(t *testing.T) {
	var b tb
	tbl := table(FamilyInet, "f",
		b.chain("web", ex(&Counter{}, ld(PayloadNetwork, 12, 4), &Lookup{Set: "blocked", SReg: Reg1}, drop), ex(ret)),
		b.base("pre", HookPrerouting, 0, VerdictAccept,
			ex(l4(17), &Immediate{DReg: Reg1, Data: host32(7)}, &MetaSet{Key: MetaMark, SReg: Reg1})),
		b.base("fw", HookForward, 0, VerdictAccept,
			ex(meta(MetaIIFName), eq([]byte("wan")...), &Counter{}),
			ex(&Limit{Rate: 1 << 30, Unit: 1}, &Quota{Bytes: 1 << 50}, &Counter{}),
			ex(meta(MetaMark), &Byteorder{Op: ByteorderHton, SReg: Reg1, DReg: Reg1, Len: 4, Size: 4}, cmpOp(CmpGte, 0, 0, 0, 5)),
			ex(meta(MetaNFProto), eq(2), l4(6), ld(PayloadNetwork, 16, 4), ldr(PayloadTransport, 2, 2, Reg32(1)),
				&Lookup{Set: "svc", SReg: Reg1, Map: true}),
			ex(l4(17), ld(PayloadTransport, 2, 2), cmpOp(CmpNeq, 0, 53), &Counter{})))
	tbl.Sets = []*Set{
		ipSet("blocked", SetInterval, 4, Element{Key: []byte{0, 0, 0, 0}, Flags: ElemIntervalEnd}, Element{Key: []byte{10, 0, 0, 0}},
			Element{Key: []byte{11, 0, 0, 0}, Flags: ElemIntervalEnd}),
		{Name: "svc", Flags: SetMap | SetConcat, KeyLen: 8, FieldLen: []uint32{4, 2}, DataType: DataTypeVerdict, Elements: []Element{
			{Key: []byte{10, 1, 0, 1, 0, 80, 0, 0}, Verdict: Verdict{Kind: VerdictJump, Chain: "web"}},
			{Key: []byte{10, 1, 0, 1, 0, 22, 0, 0}, Verdict: Verdict{Kind: VerdictDrop}}}},
	}
	p := mustCompile(t, &Ruleset{Tables: []*Table{tbl}}, testEnv)
	e := NewEngine(p)
	stages := e.Stages()
	var tmpl [4]fastpath.Packet
	for i, f := range [][]byte{
		frame4(t, macB, macA, "1.1.1.1", "10.1.0.1", tcp(1, 80, "S")),
		frame4(t, macB, macA, "1.1.1.1", "10.1.0.1", tcp(1, 22, "S")),
		frame4(t, macB, macA, "1.1.1.1", "10.1.0.1", udp(1, 54)),
		frame6(t, macB, macA, "fd00::1", "fd01::1", tcp(1, 80, "S")),
	} {
		tmpl[i] = *routed(f, portWAN, fastpath.HookPrerouting, 0)
	}
	var batch fastpath.Batch
	run := func() {
		copy(batch.Packets[:], tmpl[:])
		batch.Len = len(tmpl)
		for _, a := range stages {
			if a.Hook == fastpath.HookForward {
				for i := range batch.Packets[:batch.Len] {
					batch.Packets[i].InIface, batch.Packets[i].OutIface = 1, 2
				}
			}
			a.Stage.Process(&batch, 1)
		}
	}
	run()
	if batch.Packets[1].Action != fastpath.ActionDrop || batch.Packets[0].Action != fastpath.ActionContinue {
		t.Fatalf("actions %v %v", batch.Packets[0].Action, batch.Packets[1].Action)
	}
	if n := testing.AllocsPerRun(200, run); n != 0 {
		t.Errorf("%.1f allocations per batch", n)
	}
}

// TestConcurrentSwap: workers count while programs are swapped and
// counters read; no count is lost on the rules that carry over (run with
// -race).
func TestConcurrentSwap(t *testing.T) {
	mk := func(extra bool) *Program {
		var b tb
		rs := [][]Expr{ex(&Counter{}), ex(&Limit{Rate: 1 << 40, Unit: 1}, &Quota{Bytes: 1 << 60}, accept)}
		if extra {
			rs = append([][]Expr{ex(meta(MetaMark))}, rs...)
		}
		rset := &Ruleset{Tables: []*Table{table(FamilyIP, "f", b.base("fw", HookForward, 0, VerdictAccept, rs...))}}
		if extra {
			// The same rules after the new one: same handles and texts.
			c := rset.Tables[0].Chains[0]
			c.Rules[0].Handle, c.Rules[1].Handle, c.Rules[2].Handle = 99, 1, 2
			c.Rules[1].Text, c.Rules[2].Text = "rule 1", "rule 2"
		}
		return mustCompile(t, rset, testEnv)
	}
	e := NewEngine(mk(false))
	tmpl := *routed(frame4(t, macB, macA, "1.1.1.1", "10.1.0.1", udp(1, 2)), portWAN, fastpath.HookForward, 2)
	const workers, batches = 2, 300
	done := make(chan struct{})
	for range workers {
		go func() {
			defer func() { done <- struct{}{} }()
			stages := e.Stages()
			var batch fastpath.Batch
			for range batches {
				for i := range fastpath.BatchSize {
					batch.Packets[i] = tmpl
				}
				batch.Len = fastpath.BatchSize
				for _, a := range stages {
					a.Stage.Process(&batch, 1)
				}
			}
		}()
	}
	for i := range 50 {
		e.Swap(mk(i%2 == 1))
		_ = e.Program().Rules()
	}
	for range workers {
		<-done
	}
	for _, r := range e.Program().Rules() {
		if r.Handle == 1 && r.Packets != workers*batches*fastpath.BatchSize {
			t.Errorf("rule 1 counted %d, want %d", r.Packets, workers*batches*fastpath.BatchSize)
		}
	}
}
