package fastpath_test

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"testing"

	"github.com/gopacket/gopacket/layers"

	"github.com/xdpfwd/xdpfwd/fastpath"
	"github.com/xdpfwd/xdpfwd/fastpath/fastpathtest"
	"github.com/xdpfwd/xdpfwd/fastpath/header"
)

// recorder is a stage that writes "name@port" into log for every packet
// it sees not dropped (port: OutPort in the per-output hooks, InPort
// before), and optionally changes each packet.
type recorder struct {
	name   string
	output bool
	log    *[]string
	change func(p *fastpath.Packet)
}

func (r *recorder) Name() string { return r.name }

func (r *recorder) Process(b *fastpath.Batch, _ fastpath.Time) {
	for i := range b.Packets[:b.Len] {
		p := &b.Packets[i]
		if p.Action != fastpath.ActionContinue {
			continue
		}
		port := p.InPort
		if r.output {
			port = p.OutPort
		}
		*r.log = append(*r.log, fmt.Sprintf("%s@%d", r.name, port))
		if r.change != nil {
			r.change(p)
		}
	}
}

// TestHooksOrderAndCopies: stages run hook by hook in walk order and by
// priority within a hook, whatever order they are given in; stages of the
// hooks before the copies see each packet once, those of the per-output
// hooks each copy once, with its output port; a per-output stage that
// changes one copy's bytes changes no other copy.
func TestHooksOrderAndCopies(t *testing.T) {
	var log []string
	rec := func(name string, output bool) *recorder { return &recorder{name: name, output: output, log: &log} }
	stamp := rec("stamp", true)
	stamp.change = func(p *fastpath.Packet) { p.Data[len(p.Data)-1] = byte(p.OutPort) }
	groups := &fastpath.PortGroups{}
	r := fastpathtest.NewRig(t, fastpathtest.RigConfig{Ports: []fastpath.PortID{1, 2, 3}, Groups: groups, Stages: []fastpath.Attached{
		fastpath.At(fastpath.HookEgress, 0, rec("egress", true)),
		fastpath.At(fastpath.HookBridgePostrouting, 0, rec("post", true)),
		fastpath.At(fastpath.HookBridgeForward, 10, stamp),
		fastpath.At(fastpath.HookBridgeForward, -10, rec("fwd-10", true)),
		fastpathtest.NewMACSwitch(groups, 1, 2, 3),
		fastpath.At(fastpath.HookBridgePrerouting, -5, rec("pre-5", false)),
		fastpath.At(fastpath.HookIngress, 100, rec("ingress", false)),
	}})
	frame := rawFrame(bcast, macA)
	out := r.Send(1, frame)
	want := []string{"ingress@1", "pre-5@1", "fwd-10@2", "fwd-10@3", "stamp@2", "stamp@3", "post@2", "post@3", "egress@2", "egress@3"}
	if !slices.Equal(log, want) {
		t.Fatalf("stages ran\n%v\nwant\n%v", log, want)
	}
	for _, p := range []fastpath.PortID{2, 3} {
		w := bytes.Clone(frame)
		w[len(w)-1] = byte(p)
		if len(out[p]) != 1 || !bytes.Equal(out[p][0], w) {
			t.Errorf("port %d sent %x, want %x", p, out[p], w)
		}
	}
}

// TestPerOutputDropCountsOnOutputPort: a drop in a per-output hook frees
// that copy alone and counts on its output port; the other copies leave.
func TestPerOutputDropCountsOnOutputPort(t *testing.T) {
	var log []string
	drop3 := &recorder{name: "drop3", output: true, log: &log}
	drop3.change = func(p *fastpath.Packet) {
		if p.OutPort == 3 {
			p.Drop(dropTest)
		}
	}
	groups := &fastpath.PortGroups{}
	r := fastpathtest.NewRig(t, fastpathtest.RigConfig{Ports: []fastpath.PortID{1, 2, 3}, Groups: groups, Stages: []fastpath.Attached{
		fastpathtest.NewMACSwitch(groups, 1, 2, 3), fastpath.At(fastpath.HookBridgePostrouting, 0, drop3),
	}})
	out := r.Send(1, rawFrame(bcast, macA), rawFrame(macC, macA))
	if len(out) != 1 || len(out[2]) != 1 {
		t.Fatalf("sent %v, want the broadcast's copy on port 2 only", out)
	}
	if n1, n3 := r.Drops(1, dropTest), r.Drops(3, dropTest); n1 != 0 || n3 != 2 {
		t.Fatalf("test drops: %d on the ingress port, %d on port 3; want 0 and 2", n1, n3)
	}
}

// TestResetClearsMeta: every metadata field a stage sets on one packet is
// zero for the next packet the worker puts in the same slot.
func TestResetClearsMeta(t *testing.T) {
	var p fastpath.Packet
	p.Reset(64, make([]byte, 60), 1)
	p.Meta = fastpath.Meta{Addr: 1, InPort: 2, OutPort: 3, Group: 4, Reason: 5, Action: fastpath.ActionDrop, Egress: fastpath.EgressGroup,
		EtherType: 6, L3Off: 7, L3End: 8, L4Off: 9, L4Proto: 10, Fragment: true, OuterTPID: 11, OuterTCI: 12, VID: 13, TCI: 14,
		Flow: fastpath.FlowKey{SrcPort: 15, Family: 4}}
	f := make([]byte, 60)
	p.Reset(4096, f, 7)
	if p.Meta != (fastpath.Meta{Addr: 4096, InPort: 7}) || &p.Data[0] != &f[0] {
		t.Fatalf("after Reset: %+v", p.Meta)
	}
}

// TestReasons: the registry numbers reasons from 1 (0 is "none"), knows
// each one's stage, finds them by name, and refuses a name twice.
func TestReasons(t *testing.T) {
	if fastpath.ReasonNone.String() != "none" {
		t.Fatalf("ReasonNone is %q", fastpath.ReasonNone)
	}
	for _, c := range []struct {
		r           fastpath.Reason
		stage, name string
	}{
		{fastpath.DropMalformed, "parse", "malformed frame"},
		{fastpath.DropNoEgress, "worker", "no egress port"},
		{dropTest, "test", "test drop"},
	} {
		if c.r == fastpath.ReasonNone || c.r.Stage() != c.stage || c.r.String() != c.name {
			t.Errorf("reason %d: stage %q name %q, want %q %q", c.r, c.r.Stage(), c.r, c.stage, c.name)
		}
		if got, ok := fastpath.LookupReason(c.name); !ok || got != c.r {
			t.Errorf("LookupReason(%q) = %d, %v", c.name, got, ok)
		}
	}
	if n := fastpath.NumReasons(); int(dropTest) >= n {
		t.Fatalf("NumReasons %d, test reason %d", n, dropTest)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("a reason registered after a worker was made")
		}
	}()
	fastpath.NewReason("test", "late")
}

// TestParseFlowKey: Parse with FlowKeys fills the flow key of IPv4 and IPv6 packets:
// addresses, protocol, ports of TCP and UDP, the echo identifier of ICMP
// echo; a frame without IP has none, and Parse without FlowKeys none.
func TestParseFlowKey(t *testing.T) {
	v4 := func(s string) (a [16]byte) {
		b := netip.MustParseAddr(s).As4()
		copy(a[:], b[:])
		return a
	}
	v6 := func(s string) [16]byte { return netip.MustParseAddr(s).As16() }
	echo := fastpathtest.Serialize(t,
		&layers.Ethernet{SrcMAC: fastpathtest.HW(macA), DstMAC: fastpathtest.HW(macB), EthernetType: layers.EthernetTypeIPv4},
		&layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolICMPv4, SrcIP: net.IP{10, 0, 0, 1}, DstIP: net.IP{10, 0, 0, 2}},
		&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoRequest, 0), Id: 0x1234, Seq: 1})
	tests := []struct {
		name  string
		frame []byte
		want  fastpath.FlowKey
	}{
		{"udp4", udp4(t, macB, macA, 8), fastpath.FlowKey{Src: v4("10.0.0.1"), Dst: v4("10.0.0.2"), SrcPort: 4000, DstPort: 5000, Proto: header.ProtocolUDP, Family: 4}},
		{"tcp6", tcp6(t, macB, macA, 8), fastpath.FlowKey{Src: v6("fd00::1"), Dst: v6("fd00::2"), SrcPort: 4000, DstPort: 80, Proto: header.ProtocolTCP, Family: 6}},
		{"icmp echo", echo, fastpath.FlowKey{Src: v4("10.0.0.1"), Dst: v4("10.0.0.2"), SrcPort: 0x1234, Proto: header.ProtocolICMP, Family: 4}},
		{"no IP", rawFrame(macB, macA), fastpath.FlowKey{}},
	}
	for _, tt := range tests {
		if p := fastpathtest.Parsed(tt.frame); p.Flow != tt.want {
			t.Errorf("%s: flow %+v, want %+v", tt.name, p.Flow, tt.want)
		}
		var b fastpath.Batch
		b.Len = 1
		b.Packets[0].Reset(0, tt.frame, 0)
		fastpath.Parse{}.Process(&b, 0)
		if b.Packets[0].Flow != (fastpath.FlowKey{}) {
			t.Errorf("%s: flow %+v without FlowKeys", tt.name, b.Packets[0].Flow)
		}
	}
}
