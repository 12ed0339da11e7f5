package route

import (
	"fmt"
	"net/netip"
	"strconv"
)

// Type is a route's type, with the meaning `ip route` gives it
// (rtnetlink's RTN_* values for the types xdpfwd routes). In a Result it
// also says what the lookup found; NoRoute is only a lookup result.
type Type uint8

const (
	// NoRoute is the result of a lookup that matched no route: the kernel
	// answers such a packet with ICMP network unreachable. In a Route, the
	// zero Type means Unicast.
	NoRoute Type = iota
	// Unicast routes forward to one next hop or to an ECMP group.
	Unicast
	// Local routes are the router's own addresses: the packet is for the
	// router itself (the input hook).
	Local
	// Blackhole routes drop silently.
	Blackhole
	// Unreachable routes drop with ICMP host unreachable.
	Unreachable
	// Prohibit routes drop with ICMP communication administratively
	// prohibited.
	Prohibit
)

var typeNames = [...]string{
	NoRoute:     "no route",
	Unicast:     "unicast",
	Local:       "local",
	Blackhole:   "blackhole",
	Unreachable: "unreachable",
	Prohibit:    "prohibit",
}

// String returns the type's name as `ip route` prints it.
func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// ParseType returns the Type that `ip route` calls name.
func ParseType(name string) (Type, error) {
	for t, n := range typeNames {
		if n == name && Type(t) != NoRoute {
			return Type(t), nil
		}
	}
	return 0, fmt.Errorf("route type %q: want unicast, local, blackhole, unreachable or prohibit", name)
}

// MaxNextHops is the most next hops one route may have.
const MaxNextHops = 64

// MaxWeight is the largest next-hop weight, as `ip route … nexthop weight`.
const MaxWeight = 256

// NextHop is one next hop of a route, as the control plane gives it.
type NextHop struct {
	// Port is the output interface's id.
	Port uint16
	// Gateway is the neighbour to send to. The zero Addr means the route
	// is connected: the destination itself is the neighbour. It may be of
	// the other family than the route (an IPv4 route via an IPv6
	// gateway, RFC 5549); it carries no zone (Port is its scope).
	Gateway netip.Addr
	// Weight is the next hop's share of an ECMP group's flows, 1 to
	// MaxWeight; zero means 1.
	Weight uint16
}

// String formats the next hop as `ip route` does, with its port as a
// number: "via 192.0.2.1 dev 1".
func (n NextHop) String() string { return n.format(portNumber) }

// format formats the next hop as `ip route` does, naming its port with
// name.
func (n NextHop) format(name func(port uint16) string) string {
	s := "dev " + name(n.Port)
	if n.Gateway.IsValid() {
		s = "via " + n.Gateway.String() + " " + s
	}
	return s
}

// portNumber names a port by its number, for String methods.
func portNumber(port uint16) string { return strconv.Itoa(int(port)) }

func (n NextHop) weight() uint32 {
	if n.Weight == 0 {
		return 1
	}
	return uint32(n.Weight)
}

// GatewayKind says what a Hop's gateway is.
type GatewayKind uint8

const (
	// Connected: no gateway, the packet's destination is the neighbour.
	Connected GatewayKind = iota
	// Gateway4: the neighbour is Hop.Gateway's first 4 bytes, an IPv4
	// address.
	Gateway4
	// Gateway6: the neighbour is the IPv6 address Hop.Gateway.
	Gateway6
)

// Hop is a next hop as the fast path reads it: pointer-free, so it can sit
// in packet metadata.
type Hop struct {
	// Gateway holds the gateway's address: IPv4 in the first 4 bytes
	// (Kind Gateway4), IPv6 in all 16 (Gateway6), zero when Connected.
	Gateway [16]byte
	// Port is the output interface's id.
	Port uint16
	// Kind says whether there is a gateway, and of which family.
	Kind GatewayKind
}

// Addr returns the hop's gateway, or the zero Addr when it is connected.
func (h Hop) Addr() netip.Addr {
	switch h.Kind {
	case Gateway4:
		return netip.AddrFrom4([4]byte(h.Gateway[:4]))
	case Gateway6:
		return netip.AddrFrom16(h.Gateway)
	}
	return netip.Addr{}
}

// Result is the answer of a FIB lookup: pointer-free, 8 bytes.
type Result struct {
	// NextHop identifies the chosen next hop; View.Hop reads it. It is
	// zero when the route has no next hop (NoRoute, Blackhole,
	// Unreachable, Prohibit, and Local without an interface). It is only
	// meaningful to the View that returned it.
	NextHop uint32
	// Type is the matched route's type, or NoRoute.
	Type Type
}

// HasHop reports whether the result names a next hop (View.Hop); port 0
// of a Hop is a real port only then.
func (r Result) HasHop() bool { return r.NextHop != 0 }

// upperBounds returns each next hop's hash upper bound, as the kernel's
// fib_rebalance: DIV_ROUND_CLOSEST(w_cumulative << 31, w_total) - 1. A
// lookup picks the first next hop whose bound is at least hash>>1; the
// bounds depend only on the group's own weights (see the package
// documentation for the hash).
func upperBounds(hops []NextHop) []uint32 {
	var total uint64
	for _, h := range hops {
		total += uint64(h.weight())
	}
	out := make([]uint32, len(hops))
	var w uint64
	for i, h := range hops {
		w += uint64(h.weight())
		out[i] = uint32((w<<31+total/2)/total) - 1
	}
	return out
}
