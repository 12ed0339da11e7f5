package config

import (
	"fmt"
	"net"
	"net/netip"

	"go.yaml.in/yaml/v3"
)

// Router is the optional router: interfaces with addresses on ports or
// bridges, static routes and neighbours. The router's own rules (a
// gateway on a connected prefix, an MTU in range, ...) are checked by the
// router when the daemon builds it, and reported at the Pos of what they
// are about.
type Router struct {
	// Interfaces are the router interfaces, in file order; at least one.
	Interfaces []RouterInterface
	// Routes are the static routes, in file order.
	Routes []Route
	// Neighbours are static (PERMANENT) neighbour entries.
	Neighbours []Neighbour
	// KernelSync mirrors the routes and permanent neighbours of the
	// daemon's network namespace (those on router interfaces that are
	// ports) into the router, as they change.
	KernelSync bool
	// Pos is where the router mapping starts.
	Pos Pos
}

// RouterInterface is one router interface.
type RouterInterface struct {
	// Name is a port's interface name (a port in no bridge) or a
	// bridge's name.
	Name string
	// Addresses are the interface's addresses with prefix lengths, e.g.
	// 10.1.0.1/24 or fd00:1::1/64.
	Addresses []netip.Prefix
	// MAC is the interface's MAC; nil means the port's (a bridge's: its
	// first port's).
	MAC net.HardwareAddr
	// MTU is the largest IP packet it sends; 0 means the device's MTU (a
	// bridge's: its smallest port MTU).
	MTU int
	// Pos is where the interface's mapping starts.
	Pos Pos
}

// Route is one static route.
type Route struct {
	// To is the destination prefix, masked (0.0.0.0/0: the default
	// route).
	To netip.Prefix
	// Via are the gateways: one (via: ADDR), or several for ECMP (via:
	// [ADDR, ADDR]); required for a unicast route, refused for the
	// others.
	Via []netip.Addr
	// Weights are the gateways' shares of the flows, one per gateway;
	// none means equal shares.
	Weights []int
	// Dev is the router interface the gateways are on; needed for
	// gateways on no interface's prefix (IPv6 link-local ones).
	Dev string
	// Type is unicast (default), blackhole, unreachable or prohibit.
	Type string
	// Metric orders routes to one prefix, lowest first.
	Metric int
	// Pos is where the route's mapping starts.
	Pos Pos
}

// Neighbour is a static neighbour entry.
type Neighbour struct {
	// Interface is a router interface's name.
	Interface string
	// IP is the neighbour's address.
	IP netip.Addr
	// MAC is its Ethernet address.
	MAC net.HardwareAddr
	// Pos is where the entry's mapping starts.
	Pos Pos
}

func (d *decoder) router(n *yaml.Node, path string) (*Router, error) {
	r := &Router{Pos: pos(n)}
	err := d.fields(n, path, "interfaces, routes, neighbours, kernel_sync", func(key string, v *yaml.Node, field string) (err error) {
		switch key {
		case "interfaces":
			return d.seq(v, field, func(_ int, el *yaml.Node, field string) error {
				in, err := d.routerInterface(el, field)
				r.Interfaces = append(r.Interfaces, in)
				return err
			})
		case "routes":
			return d.seq(v, field, func(_ int, el *yaml.Node, field string) error {
				rt, err := d.route(el, field)
				r.Routes = append(r.Routes, rt)
				return err
			})
		case "neighbours":
			return d.seq(v, field, func(_ int, el *yaml.Node, field string) error {
				nb, err := d.neighbour(el, field)
				r.Neighbours = append(r.Neighbours, nb)
				return err
			})
		case "kernel_sync":
			r.KernelSync, err = d.boolean(v, field)
			return err
		}
		return errUnknown
	})
	if err == nil && len(r.Interfaces) == 0 {
		err = d.errorf(n, path+".interfaces", "a router needs at least one interface")
	}
	return r, err
}

func (d *decoder) routerInterface(n *yaml.Node, path string) (RouterInterface, error) {
	in := RouterInterface{Pos: pos(n)}
	err := d.fields(n, path, "name, addresses, mac, mtu", func(key string, v *yaml.Node, field string) (err error) {
		switch key {
		case "name":
			in.Name, err = d.str(v, field)
		case "addresses":
			return d.seq(v, field, func(_ int, el *yaml.Node, field string) error {
				p, err := netip.ParsePrefix(el.Value)
				if el.Kind != yaml.ScalarNode || err != nil || p.Addr().Zone() != "" {
					return d.errorf(el, field, "%q is not an address with a prefix length (e.g. 10.1.0.1/24, fd00:1::1/64)", el.Value)
				}
				in.Addresses = append(in.Addresses, p)
				return nil
			})
		case "mac":
			in.MAC, err = d.mac(v, field)
		case "mtu":
			in.MTU, err = d.intRange(v, field, 576, 65535)
		default:
			return errUnknown
		}
		return err
	})
	if err == nil && in.Name == "" {
		err = d.errorf(n, path+".name", "a router interface needs a name: a port's interface or a bridge")
	}
	return in, err
}

func (d *decoder) route(n *yaml.Node, path string) (Route, error) {
	r := Route{Pos: pos(n), Type: "unicast"}
	err := d.fields(n, path, "to, via, weights, dev, type, metric", func(key string, v *yaml.Node, field string) (err error) {
		switch key {
		case "to":
			p, perr := netip.ParsePrefix(v.Value)
			switch {
			case v.Kind != yaml.ScalarNode || perr != nil:
				err = d.errorf(v, field, "%q is not a prefix (e.g. 0.0.0.0/0, 10.2.0.0/16)", v.Value)
			case p != p.Masked():
				err = d.errorf(v, field, "%s has host bits set: the prefix is %s", p, p.Masked())
			}
			r.To = p
		case "via":
			one := func(el *yaml.Node, field string) error {
				a, perr := netip.ParseAddr(el.Value)
				if el.Kind != yaml.ScalarNode || perr != nil || a.Zone() != "" {
					return d.errorf(el, field, "%q is not an IP address", el.Value)
				}
				r.Via = append(r.Via, a)
				return nil
			}
			if v.Kind == yaml.SequenceNode {
				return d.seq(v, field, func(_ int, el *yaml.Node, field string) error { return one(el, field) })
			}
			return one(v, field)
		case "weights":
			return d.seq(v, field, func(_ int, el *yaml.Node, field string) error {
				w, err := d.intRange(el, field, 1, 256)
				r.Weights = append(r.Weights, w)
				return err
			})
		case "dev":
			r.Dev, err = d.str(v, field)
		case "type":
			r.Type, err = d.oneOf(v, field, "unicast", "blackhole", "unreachable", "prohibit")
		case "metric":
			r.Metric, err = d.intRange(v, field, 0, 1<<31-1)
		default:
			return errUnknown
		}
		return err
	})
	switch {
	case err != nil:
	case !r.To.IsValid():
		err = d.errorf(n, path+".to", "a route needs a destination (to)")
	case r.Type == "unicast" && len(r.Via) == 0:
		err = d.errorf(n, path+".via", "a unicast route needs a gateway (via)")
	case r.Type != "unicast" && len(r.Via) > 0:
		err = d.errorf(n, path+".via", "a %s route has no gateway", r.Type)
	case len(r.Weights) > 0 && len(r.Weights) != len(r.Via):
		err = d.errorf(n, path+".weights", "%d weights for %d gateways: one per gateway", len(r.Weights), len(r.Via))
	}
	return r, err
}

func (d *decoder) neighbour(n *yaml.Node, path string) (Neighbour, error) {
	nb := Neighbour{Pos: pos(n)}
	err := d.fields(n, path, "interface, ip, mac", func(key string, v *yaml.Node, field string) (err error) {
		switch key {
		case "interface":
			nb.Interface, err = d.str(v, field)
		case "ip":
			a, perr := netip.ParseAddr(v.Value)
			if v.Kind != yaml.ScalarNode || perr != nil || a.Zone() != "" {
				err = d.errorf(v, field, "%q is not an IP address", v.Value)
			}
			nb.IP = a
		case "mac":
			nb.MAC, err = d.mac(v, field)
		default:
			return errUnknown
		}
		return err
	})
	if err == nil && (nb.Interface == "" || !nb.IP.IsValid() || nb.MAC == nil) {
		err = d.errorf(n, path, "a neighbour needs interface, ip and mac")
	}
	return nb, err
}

// validateRouter checks the names the router refers to: each interface a
// port in no bridge or a bridge, named once; each neighbour on one of
// them.
func validateRouter(c *Config) error {
	r := c.Router
	ports := make(map[string]bool)
	for _, p := range c.Ports {
		ports[p.Interface] = true
	}
	inBridge := make(map[string]string)
	bridges := make(map[string]bool)
	for _, b := range c.Bridges {
		bridges[b.Name] = true
		for _, p := range b.Ports {
			inBridge[p] = b.Name
		}
	}
	names := make(map[string]bool)
	for i, in := range r.Interfaces {
		field := fmt.Sprintf("router.interfaces[%d].name", i)
		switch {
		case names[in.Name]:
			return c.ErrorAt(in.Pos, field, "%q is a router interface twice", in.Name)
		case inBridge[in.Name] != "":
			return c.ErrorAt(in.Pos, field, "%q is a port of bridge %q: put the address on the bridge (name: %s)", in.Name, inBridge[in.Name], inBridge[in.Name])
		case !ports[in.Name] && !bridges[in.Name]:
			return c.ErrorAt(in.Pos, field, "%q is neither a port defined under ports nor a bridge", in.Name)
		}
		names[in.Name] = true
	}
	for i, rt := range r.Routes {
		if rt.Dev != "" && !names[rt.Dev] {
			return c.ErrorAt(rt.Pos, fmt.Sprintf("router.routes[%d].dev", i), "%q is not a router interface", rt.Dev)
		}
	}
	for i, nb := range r.Neighbours {
		if !names[nb.Interface] {
			return c.ErrorAt(nb.Pos, fmt.Sprintf("router.neighbours[%d].interface", i), "%q is not a router interface", nb.Interface)
		}
	}
	return nil
}
