package rules

import (
	"testing"

	"github.com/xdpfwd/xdpfwd/fastpath"
	"github.com/xdpfwd/xdpfwd/fastpath/fastpathtest"
)

// Test helpers for the tests of package rules_test (which load real
// rulesets with nftnl: package rules's own tests cannot import it).

// TestEnv is the test topology: ports 0 (wan0) and 1 (lan0) router
// interfaces 1 and 2, ports 2 and 3 (p2, p3) the ports of bridge br0.
var TestEnv = testEnv

// EvalAt runs p's chains of hook h over pk.
func EvalAt(p *Program, h fastpath.Hook, pk *fastpath.Packet, now fastpath.Time) (selected, accepted bool) {
	return evalAt(p, h, pk, now)
}

// NewTestRig returns a rig of the test topology running p, with stand-ins
// for the router (10.1.0.0/16 and fd01::/16 behind lan0, the rest behind
// wan0) and the bridge.
func NewTestRig(t testing.TB, p *Program) (*fastpathtest.Rig, *Engine) {
	r := newTestRig(t, p)
	return r.Rig, r.E
}

// Frame4 is a TCP ("tcp", flags) or UDP ("udp") frame from src to dst
// over IPv4, from MACA to MACB.
func Frame4(t testing.TB, src, dst, proto string, sport, dport uint16, flags string) []byte {
	return frame4(t, macB, macA, src, dst, spec(proto, sport, dport, flags))
}

// Frame6 is Frame4 over IPv6.
func Frame6(t testing.TB, src, dst, proto string, sport, dport uint16, flags string) []byte {
	return frame6(t, macB, macA, src, dst, spec(proto, sport, dport, flags))
}

func spec(proto string, sport, dport uint16, flags string) l4spec {
	if proto == "tcp" {
		return tcp(sport, dport, flags)
	}
	return udp(sport, dport)
}

// Routed is the packet of frame f at IP hook h, received on port in and
// forwarded out of router interface out (0: for the router itself).
func Routed(f []byte, in fastpath.PortID, h fastpath.Hook, out uint16) *fastpath.Packet {
	return routed(f, in, h, out)
}

// Bridged is the packet of frame f received on port in, leaving by port
// out at the per-output hooks.
func Bridged(f []byte, in, out fastpath.PortID) *fastpath.Packet { return bridged(f, in, out) }

// Tag inserts a VLAN tag into frame f.
func Tag(f []byte, tpid, vid uint16) []byte { return tag(f, tpid, vid) }
