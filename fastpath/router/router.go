// Package router is xdpfwd's IPv4 and IPv6 router, as a Linux host with
// forwarding on: router interfaces on ports or on bridges, connected,
// local and static routes (fastpath/route), ARP and NDP with the kernel's
// neighbour state machine (fastpath/neigh), TTL and hop limit, and the
// kernel's ICMP answers and errors. Its stages sit at the IP hooks of the
// packet walk:
//
//	HookIngress      Ingress: a frame on a port interface for its MAC (or
//	                 broadcast, multicast) goes to the router (Routed)
//	                 (on a bridge, the bridge hands frames over)
//	HookPrerouting   neighbour events (first): held packets whose
//	                 neighbour failed (ICMP host unreachable), solicitation
//	                 retries, announcements at start
//	                 decide (last): ARP; the routing decision: local, or
//	                 forward (TTL, MTU, TTL decrement), or an ICMP error
//	HookInput        input (last): echo replies, NDP, port unreachable,
//	                 TCP reset
//	HookOutput       output (first): the route of what the router sends
//	HookPostrouting  resolve (before the bridge's Output): held packets
//	                 whose neighbour resolved; IPv4 fragmentation; the
//	                 next hop's MAC and the L2 rewrite; packets wait for a
//	                 neighbour (stolen, reinjected when it resolves)
package router

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/xdpfwd/xdpfwd/fastpath"
	"github.com/xdpfwd/xdpfwd/fastpath/header"
	"github.com/xdpfwd/xdpfwd/fastpath/neigh"
	"github.com/xdpfwd/xdpfwd/fastpath/route"
)

// DefaultMTU is a router interface's MTU when the config gives none.
const DefaultMTU = 1500

// Interface is one router interface: on a port, or on a bridge.
type Interface struct {
	// Name names the interface in listings and errors.
	Name string
	// Port is the interface's port, when it is on a port.
	Port fastpath.PortID
	// Bridge marks an interface on a bridge; Group is then the bridge's
	// group (bridge.Bridge.Group) and Ports its ports.
	Bridge bool
	Group  fastpath.GroupID
	Ports  []fastpath.PortID
	// MAC is the interface's address: frames to it are the router's.
	MAC header.MAC
	// Addrs are the interface's addresses with their prefix lengths
	// (10.1.0.1/24, fd00:1::1/64): each makes a connected route and a
	// local one.
	Addrs []netip.Prefix
	// MTU is the largest IP packet the interface sends; 0 means
	// DefaultMTU.
	MTU int
}

// StaticRoute is a route the config adds.
type StaticRoute struct {
	// To is the destination prefix (0.0.0.0/0 for the default route).
	To netip.Prefix
	// Via are the gateways: one, or several for ECMP (a flow keeps its
	// gateway, by a hash of its addresses); each on a connected prefix
	// of an interface. None for the types without a next hop.
	Via []netip.Addr
	// Weights, if given, are the gateways' shares of the flows (1 to
	// route.MaxWeight), as `ip route ... nexthop weight`.
	Weights []int
	// Dev names the interface the gateways are on, for gateways on no
	// interface's prefix: IPv6 link-local ones (`via fe80::1 dev wan`).
	// Empty: each gateway's interface is the one whose prefix holds it.
	Dev string
	// Type is the route's type; zero means unicast.
	Type route.Type
	// Metric orders routes to one prefix, lowest first.
	Metric uint32
}

// StaticNeighbour is a PERMANENT neighbour entry.
type StaticNeighbour struct {
	Iface string
	IP    netip.Addr
	MAC   header.MAC
}

// Config configures a Router.
type Config struct {
	Interfaces []Interface
	Routes     []StaticRoute
	Neighbours []StaticNeighbour
	// Neigh are the neighbour cache's parameters; the zero value means
	// neigh.DefaultParams.
	Neigh *neigh.Params
	// MaxHeld bounds the packets one worker holds for unresolved
	// neighbours; 0 means 1024.
	MaxHeld int
	// ICMP limits the ICMP errors the router sends; the zero value
	// means the kernel's defaults (DefaultICMPLimit).
	ICMP ICMPLimit
	// WallClock is the time of day the router writes into the IPv4
	// timestamp options of the echo replies it sends; nil means
	// time.Now. Tests inject a fixed one.
	WallClock func() time.Time
}

// Router is the router subsystem: its interfaces, routing table,
// neighbour cache and counters, shared by the workers, each of which gets
// its stages from Stages.
type Router struct {
	ifaces    []iface
	byPort    []uint16 // PortID → interface index + 1 (a bridge's ports too)
	table     *route.Table
	neigh     *neigh.Table
	maxHeld   int
	limit     *limiter
	redirects *redirectLimiter
	c         counters
	// announcer is claimed by the first worker's stages: they announce
	// the router's addresses once, at start.
	announcer atomic.Bool
	// addrs4 are the router's IPv4 addresses and nets4 its IPv4 subnets
	// with room for a broadcast address (below /31), as words for the
	// per-packet checks.
	addrs4 []uint32
	nets4  []net4
	// wallClock is Config.WallClock (time.Now if nil).
	wallClock func() time.Time
	// errorNAT is SetErrorNAT's function, nil without NAT.
	errorNAT func(about *fastpath.Packet, ip []byte) bool
}

// net4 is an IPv4 subnet: its network address and its host bits.
type net4 struct{ net, host uint32 }

// iface is an Interface with its addresses in lookup form.
type iface struct {
	Interface
	v4 [][4]byte
	v6 [][16]byte
	// linkLocal is the interface's IPv6 link-local address (fe80::/64
	// from its MAC, as the kernel's EUI-64 address): the source of its
	// NDP messages.
	linkLocal [16]byte
}

// counters are the router's answers; drops are counted per port and
// reason by the workers.
type counters struct {
	forwarded, local, echoReplies, arpReplies, naSent, solicits, icmpErrors, icmpLimited, announced, fragmented atomic.Uint64
}

// Counters are the router's counters, summed over the workers.
type Counters struct {
	// Forwarded counts packets routed to a next hop.
	Forwarded uint64
	// Local counts packets for the router's own addresses.
	Local uint64
	// EchoReplies, ARPReplies and NASent count answers it sent.
	EchoReplies, ARPReplies, NASent uint64
	// Solicits counts ARP requests and neighbour solicitations sent.
	Solicits uint64
	// ICMPErrors counts ICMP errors sent; ICMPLimited those the rate
	// limit suppressed.
	ICMPErrors, ICMPLimited uint64
	// Announced counts the gratuitous ARP requests and unsolicited
	// neighbour advertisements sent at start.
	Announced uint64
	// Fragmented counts IPv4 packets cut into fragments for their output
	// MTU.
	Fragmented uint64
}

// ConfigError is an error of New about one item of its Config: Kind is
// "interface", "route" or "neighbour" and Index its place in that list.
type ConfigError struct {
	Kind  string
	Index int
	Err   error
}

// Error returns the item and what is wrong with it.
func (e *ConfigError) Error() string { return fmt.Sprintf("router: %s %d: %v", e.Kind, e.Index, e.Err) }

// Unwrap returns the error about the item.
func (e *ConfigError) Unwrap() error { return e.Err }

// New checks cfg and builds the router: its connected, local and static
// routes and static neighbours. An error about one item is a
// *ConfigError.
func New(cfg Config) (*Router, error) {
	r := &Router{table: route.NewTable(), maxHeld: cfg.MaxHeld, limit: newLimiter(cfg.ICMP), redirects: newRedirectLimiter(), wallClock: cfg.WallClock}
	if r.wallClock == nil {
		r.wallClock = time.Now
	}
	if r.maxHeld == 0 {
		r.maxHeld = 1024
	}
	params := neigh.DefaultParams()
	if cfg.Neigh != nil {
		params = *cfg.Neigh
	}
	nt, err := neigh.New(neigh.Config{Params: params})
	if err != nil {
		return nil, fmt.Errorf("router: neighbour cache: %w", err)
	}
	r.neigh = nt
	names := make(map[string]int)
	for i, in := range cfg.Interfaces {
		if err := r.addInterface(i, in, names); err != nil {
			return nil, &ConfigError{"interface", i, fmt.Errorf("%q: %w", in.Name, err)}
		}
	}
	for i, s := range cfg.Routes {
		if err := r.addStatic(s); err != nil {
			return nil, &ConfigError{"route", i, fmt.Errorf("to %v: %w", s.To, err)}
		}
	}
	for i, n := range cfg.Neighbours {
		id, ok := names[n.Iface]
		if !ok {
			return nil, &ConfigError{"neighbour", i, fmt.Errorf("%v: no interface %q", n.IP, n.Iface)}
		}
		if err := r.neigh.AddStatic(uint16(id+1), n.IP.Unmap(), n.MAC); err != nil {
			return nil, &ConfigError{"neighbour", i, fmt.Errorf("%v: %w", n.IP, err)}
		}
	}
	return r, nil
}

func (r *Router) addInterface(i int, in Interface, names map[string]int) error {
	if in.Name == "" {
		return errors.New("no name")
	}
	if _, dup := names[in.Name]; dup {
		return errors.New("named twice")
	}
	names[in.Name] = i
	if in.MAC.IsZero() || in.MAC.IsMulticast() {
		return fmt.Errorf("MAC %v: not a unicast address", in.MAC)
	}
	if in.MTU == 0 {
		in.MTU = DefaultMTU
	}
	if in.MTU < 576 || in.MTU > 65535 {
		return fmt.Errorf("MTU %d: must be 576 to 65535", in.MTU)
	}
	for _, a := range in.Addrs {
		if a.Addr().Is6() && in.MTU < header.IPv6MinMTU {
			return fmt.Errorf("MTU %d: below IPv6's minimum, 1280, with IPv6 address %v", in.MTU, a)
		}
	}
	ports := in.Ports
	if !in.Bridge {
		ports = []fastpath.PortID{in.Port}
	}
	id := uint16(i + 1)
	for _, p := range ports {
		if int(p) >= len(r.byPort) {
			r.byPort = append(r.byPort, make([]uint16, int(p)+1-len(r.byPort))...)
		}
		if o := r.byPort[p]; o != 0 {
			return fmt.Errorf("port %d already belongs to interface %q", p, r.ifaces[o-1].Name)
		}
		r.byPort[p] = id
	}
	f := iface{Interface: in, linkLocal: linkLocal(in.MAC)}
	for _, a := range in.Addrs {
		if !a.IsValid() || a.Addr().Zone() != "" {
			return fmt.Errorf("address %v: not an address with a prefix length", a)
		}
		if a.Addr().Is4In6() {
			return fmt.Errorf("address %v: an IPv4-mapped IPv6 address; write it as IPv4", a)
		}
		local := netip.PrefixFrom(a.Addr(), a.Addr().BitLen())
		if err := r.table.Add(route.Route{Prefix: local, Type: route.Local, NextHops: []route.NextHop{{Port: id}}}); err != nil {
			return fmt.Errorf("address %v: %w", a, err)
		}
		if a.Bits() < a.Addr().BitLen() {
			conn := a.Masked()
			if err := r.table.Add(route.Route{Prefix: conn, NextHops: []route.NextHop{{Port: id}}}); err != nil {
				return fmt.Errorf("address %v: connected route %v: %w", a, conn, err)
			}
		}
		if a.Addr().Is4() {
			f.v4 = append(f.v4, a.Addr().As4())
			a4 := a.Addr().As4()
			r.addrs4 = append(r.addrs4, binary.BigEndian.Uint32(a4[:]))
			if a.Bits() < 31 {
				m := a.Masked().Addr().As4()
				r.nets4 = append(r.nets4, net4{net: binary.BigEndian.Uint32(m[:]), host: ^uint32(0) >> a.Bits()})
			}
		} else {
			f.v6 = append(f.v6, a.Addr().As16())
		}
	}
	r.ifaces = append(r.ifaces, f)
	return nil
}

// addStatic adds a configured route, its gateway resolved to the
// interface whose connected prefix holds it.
func (r *Router) addStatic(s StaticRoute) error {
	if !s.To.IsValid() || s.To != s.To.Masked() {
		return fmt.Errorf("destination %v: not a masked prefix (want %v)", s.To, s.To.Masked())
	}
	rt := route.Route{Prefix: s.To, Type: s.Type, Metric: s.Metric}
	switch s.Type {
	case route.NoRoute, route.Unicast:
		if len(s.Via) == 0 {
			return errors.New("a unicast route needs a gateway (via)")
		}
		if len(s.Weights) != 0 && len(s.Weights) != len(s.Via) {
			return fmt.Errorf("%d weights for %d gateways", len(s.Weights), len(s.Via))
		}
		rt.Type = route.Unicast
		for i, via := range s.Via {
			id, ok := r.connected(via)
			if s.Dev != "" {
				if id, ok = r.InterfaceID(s.Dev); !ok {
					return fmt.Errorf("dev %q: not a router interface", s.Dev)
				}
			}
			if !ok {
				if via.Is6() && via.IsLinkLocalUnicast() {
					return fmt.Errorf("gateway %v: a link-local gateway needs its interface (dev)", via)
				}
				return fmt.Errorf("gateway %v: on no interface's connected prefix", via)
			}
			nh := route.NextHop{Port: id, Gateway: via.Unmap()}
			if len(s.Weights) > 0 {
				if s.Weights[i] < 1 || s.Weights[i] > route.MaxWeight {
					return fmt.Errorf("gateway %v: weight %d out of 1 to %d", via, s.Weights[i], route.MaxWeight)
				}
				nh.Weight = uint16(s.Weights[i])
			}
			rt.NextHops = append(rt.NextHops, nh)
		}
	default:
		if len(s.Via) > 0 {
			return fmt.Errorf("a %v route has no gateway", s.Type)
		}
	}
	return r.table.Add(rt)
}

// connected returns the interface whose connected prefix holds a.
func (r *Router) connected(a netip.Addr) (uint16, bool) {
	a = a.Unmap()
	for i, f := range r.ifaces {
		for _, p := range f.Addrs {
			if p.Bits() < p.Addr().BitLen() && p.Masked().Contains(a) {
				return uint16(i + 1), true
			}
		}
	}
	return 0, false
}

// linkLocal returns the EUI-64 link-local address of mac (RFC 4291
// appendix A), as the kernel gives an interface.
func linkLocal(mac header.MAC) [16]byte {
	var a [16]byte
	a[0], a[1] = 0xfe, 0x80
	a[8], a[9], a[10], a[11], a[12], a[13], a[14], a[15] = mac[0]^2, mac[1], mac[2], 0xff, 0xfe, mac[3], mac[4], mac[5]
	return a
}

// Table returns the routing table, for listings and changes.
func (r *Router) Table() *route.Table { return r.table }

// Neighbours returns the neighbour cache, for listings and changes.
func (r *Router) Neighbours() *neigh.Table { return r.neigh }

// InterfaceName returns the name of interface id (index + 1), or "".
func (r *Router) InterfaceName(id uint16) string {
	if id == 0 || int(id) > len(r.ifaces) {
		return ""
	}
	return r.ifaces[id-1].Name
}

// InterfaceID returns the id (index + 1) of the interface named name.
func (r *Router) InterfaceID(name string) (uint16, bool) {
	for i := range r.ifaces {
		if r.ifaces[i].Name == name {
			return uint16(i + 1), true
		}
	}
	return 0, false
}

// Counters returns the router's counters.
func (r *Router) Counters() Counters {
	return Counters{
		Forwarded: r.c.forwarded.Load(), Local: r.c.local.Load(),
		EchoReplies: r.c.echoReplies.Load(), ARPReplies: r.c.arpReplies.Load(), NASent: r.c.naSent.Load(),
		Solicits: r.c.solicits.Load(), ICMPErrors: r.c.icmpErrors.Load(), ICMPLimited: r.c.icmpLimited.Load(),
		Announced: r.c.announced.Load(), Fragmented: r.c.fragmented.Load(),
	}
}

// Expire runs the neighbour cache's timers and garbage collection (a
// bounded slice of it per call) and returns the entries it removed.
func (r *Router) Expire(now fastpath.Time) int { return r.neigh.Tick(int64(now)) }

// Stages returns the stages of one worker's pipeline, each at its hook.
// They share the worker's view of the FIB and its held packets.
func (r *Router) Stages() []fastpath.Attached {
	nw, err := r.neigh.NewWorker(r.maxHeld)
	if err != nil {
		// NewWorker fails only for a bound below 1, which New excludes.
		panic(fmt.Sprintf("router: %v", err))
	}
	w := &worker{r: r, nw: nw, slots: make([]heldSlot, r.maxHeld), events: make([]neigh.Event, 64),
		pending: make([]neigh.Event, 0, r.maxHeld+64), sends: make([]neigh.Event, 0, r.maxHeld), dropped: make([]uint64, 0, r.maxHeld),
		answered: make([]answer, 0, fastpath.BatchSize)}
	w.notUnicast4 = r.notUnicast4
	for i := range r.maxHeld {
		w.free = append(w.free, uint32(r.maxHeld-1-i))
	}
	if r.announcer.CompareAndSwap(false, true) {
		w.announce = r.announcements()
	}
	return []fastpath.Attached{
		fastpath.At(fastpath.HookIngress, 100, (*ingress)(w)),
		fastpath.At(fastpath.HookPrerouting, fastpath.PriorityFirst, (*neighEvents)(w)),
		fastpath.At(fastpath.HookPrerouting, fastpath.PriorityLast, (*decide)(w)),
		fastpath.At(fastpath.HookInput, fastpath.PriorityLast, (*input)(w)),
		fastpath.At(fastpath.HookOutput, fastpath.PriorityFirst, (*output)(w)),
		fastpath.At(fastpath.HookPostrouting, fastpath.PriorityLast-1, (*resolve)(w)),
	}
}

// announcement is one address to announce at start on an interface.
type announcement struct {
	iface uint16
	v4    bool
	addr  [16]byte
}

// announcements lists the router's addresses, each to announce once.
func (r *Router) announcements() []announcement {
	var as []announcement
	for i, f := range r.ifaces {
		for _, a := range f.v4 {
			as = append(as, announcement{iface: uint16(i + 1), v4: true, addr: mapped4(a)})
		}
		for _, a := range f.v6 {
			as = append(as, announcement{iface: uint16(i + 1), addr: a})
		}
	}
	return as
}
