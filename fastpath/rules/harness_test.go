package rules

import (
	"encoding/binary"
	"fmt"
	"net"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/xdpfwd/xdpfwd/fastpath"
	"github.com/xdpfwd/xdpfwd/fastpath/fastpathtest"
	"github.com/xdpfwd/xdpfwd/fastpath/header"
)

// The test topology: ports 0 (wan0) and 1 (lan0) are router interfaces
// 1 and 2; ports 2 and 3 (p2, p3) are the ports of bridge br0.
var testEnv = Env{
	Ports:      []string{"wan0", "lan0", "p2", "p3"},
	Ifaces:     []string{"wan0", "lan0"},
	PortBridge: []string{"", "", "br0", "br0"},
}

const (
	portWAN fastpath.PortID = 0
	portLAN fastpath.PortID = 1
	portP2  fastpath.PortID = 2
	portP3  fastpath.PortID = 3
)

// Addresses: the router is 10.0.0.254 and fd00::fe; 10.1.0.0/16 and
// fd01::/16 are behind lan0, the rest behind wan0.
var (
	routerIP4 = net.IP{10, 0, 0, 254}
	routerIP6 = net.ParseIP("fd00::fe")
)

// IR helpers.

func ld(base PayloadBase, off, n uint32) *Payload {
	return &Payload{Base: base, Offset: off, Len: n, DReg: Reg1}
}

func ldr(base PayloadBase, off, n uint32, r Register) *Payload {
	return &Payload{Base: base, Offset: off, Len: n, DReg: r}
}

func cmpOp(op CmpOp, b ...byte) *Cmp { return &Cmp{Op: op, SReg: Reg1, Data: b} }

func eq(b ...byte) *Cmp { return cmpOp(CmpEq, b...) }

func meta(k MetaKey) *Meta { return &Meta{Key: k, DReg: Reg1} }

func verdict(k VerdictKind, chain ...string) *Immediate {
	v := Verdict{Kind: k}
	if len(chain) > 0 {
		v.Chain = chain[0]
	}
	return &Immediate{DReg: RegVerdict, Verdict: v}
}

var (
	accept = verdict(VerdictAccept)
	drop   = verdict(VerdictDrop)
	ret    = verdict(VerdictReturn)
)

func host32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }

// l4 is the l4proto dependency nft puts before a transport match.
func l4(proto byte) []Expr { return []Expr{meta(MetaL4Proto), eq(proto)} }

func ex(parts ...any) []Expr {
	var out []Expr
	for _, p := range parts {
		switch p := p.(type) {
		case Expr:
			out = append(out, p)
		case []Expr:
			out = append(out, p...)
		default:
			panic(fmt.Sprintf("ex: %T", p))
		}
	}
	return out
}

// tb builds tables and chains with handles numbered in order.
type tb struct {
	handle uint64
}

func (b *tb) rules(rs ...[]Expr) []*Rule {
	var out []*Rule
	for _, r := range rs {
		b.handle++
		out = append(out, &Rule{Handle: b.handle, Text: fmt.Sprintf("rule %d", b.handle), Exprs: r})
	}
	return out
}

func (b *tb) base(name string, h Hook, prio int32, policy VerdictKind, rs ...[]Expr) *Chain {
	return &Chain{Name: name, Flags: ChainBase, Type: ChainFilter, Hook: h, Priority: prio, Policy: policy, Rules: b.rules(rs...)}
}

func (b *tb) chain(name string, rs ...[]Expr) *Chain {
	return &Chain{Name: name, Rules: b.rules(rs...)}
}

func table(f Family, name string, chains ...*Chain) *Table {
	return &Table{Family: f, Name: name, Chains: chains}
}

func mustCompile(t testing.TB, rs *Ruleset, env Env) *Program {
	t.Helper()
	p, err := Compile(rs, env)
	if err != nil {
		t.Fatalf("Compile: %v\n%s", err, rs)
	}
	return p
}

// Frames.

type l4spec struct {
	proto          layers.IPProtocol
	sport, dport   uint16
	flags          string // TCP: "S", "A", "SA", "R", "F"...
	seq, ack       uint32
	payload        int
	icmpType, code uint8
}

func tcp(sport, dport uint16, flags string) l4spec {
	return l4spec{proto: layers.IPProtocolTCP, sport: sport, dport: dport, flags: flags, seq: 1000, ack: 2000}
}

func udp(sport, dport uint16) l4spec {
	return l4spec{proto: layers.IPProtocolUDP, sport: sport, dport: dport, payload: 10}
}

func transport(t testing.TB, s l4spec, nl gopacket.NetworkLayer) []gopacket.SerializableLayer {
	payload := gopacket.Payload(make([]byte, s.payload))
	for i := range payload {
		payload[i] = byte(i)
	}
	switch s.proto {
	case layers.IPProtocolTCP:
		tc := &layers.TCP{SrcPort: layers.TCPPort(s.sport), DstPort: layers.TCPPort(s.dport), Seq: s.seq, Ack: s.ack, Window: 1000}
		for _, f := range s.flags {
			switch f {
			case 'S':
				tc.SYN = true
			case 'A':
				tc.ACK = true
			case 'R':
				tc.RST = true
			case 'F':
				tc.FIN = true
			}
		}
		_ = tc.SetNetworkLayerForChecksum(nl)
		return []gopacket.SerializableLayer{tc, payload}
	case layers.IPProtocolUDP:
		u := &layers.UDP{SrcPort: layers.UDPPort(s.sport), DstPort: layers.UDPPort(s.dport)}
		_ = u.SetNetworkLayerForChecksum(nl)
		return []gopacket.SerializableLayer{u, payload}
	case layers.IPProtocolICMPv4:
		return []gopacket.SerializableLayer{&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(s.icmpType, s.code), Id: 7, Seq: 1}, payload}
	case layers.IPProtocolICMPv6:
		ic := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(s.icmpType, s.code)}
		_ = ic.SetNetworkLayerForChecksum(nl)
		return []gopacket.SerializableLayer{ic, &layers.ICMPv6Echo{Identifier: 7, SeqNumber: 1}, payload}
	}
	t.Fatalf("transport %v", s.proto)
	return nil
}

func eth(dst, src header.MAC, et layers.EthernetType) *layers.Ethernet {
	return &layers.Ethernet{DstMAC: fastpathtest.HW(dst), SrcMAC: fastpathtest.HW(src), EthernetType: et}
}

// frame4 is an IPv4 frame from src to dst.
func frame4(t testing.TB, dst, src header.MAC, srcIP, dstIP string, s l4spec) []byte {
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: s.proto, SrcIP: net.ParseIP(srcIP).To4(), DstIP: net.ParseIP(dstIP).To4(), Id: 0x1234}
	return fastpathtest.Serialize(t, append([]gopacket.SerializableLayer{eth(dst, src, layers.EthernetTypeIPv4), ip}, transport(t, s, ip)...)...)
}

// frame6 is an IPv6 frame from src to dst.
func frame6(t testing.TB, dst, src header.MAC, srcIP, dstIP string, s l4spec) []byte {
	if s.proto == layers.IPProtocolICMPv4 {
		s.proto, s.icmpType = layers.IPProtocolICMPv6, 128
	}
	ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: s.proto, SrcIP: net.ParseIP(srcIP), DstIP: net.ParseIP(dstIP)}
	return fastpathtest.Serialize(t, append([]gopacket.SerializableLayer{eth(dst, src, layers.EthernetTypeIPv6), ip}, transport(t, s, ip)...)...)
}

// tag inserts an 802.1Q (or tpid) tag with vid into frame f.
func tag(f []byte, tpid, vid uint16) []byte {
	out := append([]byte(nil), f[:12]...)
	out = binary.BigEndian.AppendUint16(out, tpid)
	out = binary.BigEndian.AppendUint16(out, vid)
	return append(out, f[12:]...)
}

// Packets for direct evaluation.

// routed returns the packet of frame f as the router has it at hook h:
// received on port in (router interface in+1), forwarded out of iface out
// (0: for the router itself at the input hook).
func routed(f []byte, in fastpath.PortID, h fastpath.Hook, out uint16) *fastpath.Packet {
	p := fastpathtest.Parsed(f)
	p.InPort, p.Routed = in, true
	if h != fastpath.HookPrerouting {
		p.InIface = uint16(in) + 1
		if out == 0 {
			p.RouteLocal = true
		} else {
			p.OutIface = out
		}
	}
	return &p
}

// bridged returns the packet of frame f received on port in, at a bridge
// hook (out is its output port at the per-output hooks).
func bridged(f []byte, in, out fastpath.PortID) *fastpath.Packet {
	p := fastpathtest.Parsed(f)
	p.InPort, p.OutPort = in, out
	return &p
}

// evalAt runs p's chains of hook h over pk as the stage would, without
// emitting: whether the hook is for pk, and whether pk is accepted.
func evalAt(p *Program, h fastpath.Hook, pk *fastpath.Packet, now fastpath.Time) (selected, accepted bool) {
	w := &worker{}
	return w.evalAt(p, h, pk, now)
}

func (w *worker) evalAt(p *Program, h fastpath.Hook, pk *fastpath.Packet, now fastpath.Time) (selected, accepted bool) {
	c := &w.ctx
	chains := p.selectChains(h, pk, c)
	if chains == nil {
		return false, true
	}
	c.now = now
	return true, w.runHook(p, chains, c)
}

// The test rig: a worker with the rules engine and stand-ins for the
// router and the bridge (testRouter), as the daemon wires the real ones.

type testRig struct {
	*fastpathtest.Rig
	E *Engine
}

func newTestRig(t testing.TB, p *Program) *testRig {
	t.Helper()
	var groups fastpath.PortGroups
	g, err := groups.Add([]fastpath.PortID{portP2, portP3})
	if err != nil {
		t.Fatal(err)
	}
	e := NewEngine(p)
	r := &testRouter{group: g}
	st := append(e.Stages(),
		fastpath.At(fastpath.HookIngress, 100, (*trIngress)(r)),
		fastpath.At(fastpath.HookBridgePrerouting, fastpath.PriorityLast, (*trBridge)(r)),
		fastpath.At(fastpath.HookPrerouting, fastpath.PriorityLast, (*trRoute)(r)),
		fastpath.At(fastpath.HookInput, fastpath.PriorityLast, (*trInput)(r)),
		fastpath.At(fastpath.HookOutput, fastpath.PriorityFirst, (*trOutput)(r)),
		fastpath.At(fastpath.HookPostrouting, fastpath.PriorityLast, (*trSend)(r)),
	)
	rig := fastpathtest.NewRig(t, fastpathtest.RigConfig{Ports: []fastpath.PortID{portWAN, portLAN, portP2, portP3},
		Stages: st, Groups: &groups, Headroom: 256})
	return &testRig{Rig: rig, E: e}
}

type testRouter struct{ group fastpath.GroupID }

// route4 returns the router interface for an IPv4 or IPv6 destination,
// 0 for the router itself.
func (r *testRouter) route(p *fastpath.Packet) uint16 {
	d := p.Data[p.L3Off:]
	if p.EtherType == header.EtherTypeIPv4 {
		dst := net.IP(d[16:20])
		switch {
		case dst.Equal(routerIP4):
			return 0
		case dst[0] == 10 && dst[1] == 1:
			return 2
		}
		return 1
	}
	dst := net.IP(d[24:40])
	switch {
	case dst.Equal(routerIP6):
		return 0
	case dst[0] == 0xfd && dst[1] == 1:
		return 2
	}
	return 1
}

type trIngress testRouter

func (*trIngress) Name() string { return "test router ingress" }
func (s *trIngress) Process(b *fastpath.Batch, _ fastpath.Time) {
	for i := range b.Packets[:b.Len] {
		if p := &b.Packets[i]; p.Action == fastpath.ActionContinue && !p.Local && p.InPort <= portLAN {
			p.Routed, p.InIface = true, uint16(p.InPort)+1
		}
	}
}

type trBridge testRouter

func (*trBridge) Name() string { return "test bridge" }
func (s *trBridge) Process(b *fastpath.Batch, _ fastpath.Time) {
	for i := range b.Packets[:b.Len] {
		p := &b.Packets[i]
		if p.Action != fastpath.ActionContinue || p.Local || p.Routed || p.Egress != fastpath.EgressNone {
			continue
		}
		if p.InPort != portP2 && p.InPort != portP3 {
			p.Drop(fastpath.DropNoVerdict)
			continue
		}
		switch dst := p.Data[5]; {
		case p.Data[0]&1 == 0 && (dst == byte(portP2) || dst == byte(portP3)):
			p.ToPort(fastpath.PortID(dst))
		default:
			p.ToGroup(s.group)
		}
	}
}

type trRoute testRouter

func (*trRoute) Name() string { return "test route" }
func (s *trRoute) Process(b *fastpath.Batch, _ fastpath.Time) {
	for i := range b.Packets[:b.Len] {
		p := &b.Packets[i]
		if p.Action != fastpath.ActionContinue || !p.Routed || p.RouteLocal || p.OutIface != 0 || p.L3Off == 0 {
			continue
		}
		if id := (*testRouter)(s).route(p); id == 0 {
			p.RouteLocal = true
		} else {
			p.OutIface = id
		}
	}
}

type trInput testRouter

func (*trInput) Name() string { return "test input" }
func (s *trInput) Process(b *fastpath.Batch, _ fastpath.Time) {
	for i := range b.Packets[:b.Len] {
		if p := &b.Packets[i]; p.Action == fastpath.ActionContinue && p.RouteLocal {
			p.Action = fastpath.ActionConsumed
		}
	}
}

type trOutput testRouter

func (*trOutput) Name() string { return "test output" }
func (s *trOutput) Process(b *fastpath.Batch, _ fastpath.Time) {
	for i := range b.Packets[:b.Len] {
		p := &b.Packets[i]
		if p.Action == fastpath.ActionContinue && p.Local && p.OutIface == 0 && p.Egress == fastpath.EgressNone && p.L3Off != 0 {
			p.OutIface = max((*testRouter)(s).route(p), 1)
		}
	}
}

type trSend testRouter

func (*trSend) Name() string { return "test send" }
func (s *trSend) Process(b *fastpath.Batch, _ fastpath.Time) {
	for i := range b.Packets[:b.Len] {
		p := &b.Packets[i]
		if p.Action == fastpath.ActionContinue && (p.Routed || p.Local) && p.OutIface != 0 && p.Egress == fastpath.EgressNone {
			p.ToPort(fastpath.PortID(p.OutIface - 1))
		}
	}
}
