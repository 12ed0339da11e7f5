package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/xdpfwd/xdpfwd/fastpath"
	"github.com/xdpfwd/xdpfwd/fastpath/header"
	"github.com/xdpfwd/xdpfwd/fastpath/route"
	"github.com/xdpfwd/xdpfwd/fastpath/router"
)

// routerMAC returns the MAC of router interface in: the configured one,
// else its port's (a bridge's: its first port's).
func (d *Daemon) routerMAC(name string, mac []byte) header.MAC {
	if len(mac) == 6 {
		return header.MAC(mac)
	}
	for _, p := range d.ports {
		if p.cfg.Interface == name {
			return header.MAC(p.mac)
		}
	}
	for _, b := range d.cfg.Bridges {
		if b.Name == name && len(b.Ports) > 0 {
			return d.routerMAC(b.Ports[0], nil)
		}
	}
	return header.MAC{}
}

// bridgeRouterMACs returns the router MAC of every bridge with a router
// interface, for the bridges' configuration.
func (d *Daemon) bridgeRouterMACs() map[string]header.MAC {
	m := make(map[string]header.MAC)
	if d.cfg.Router == nil {
		return m
	}
	bridges := make(map[string]bool)
	for _, b := range d.cfg.Bridges {
		bridges[b.Name] = true
	}
	for _, in := range d.cfg.Router.Interfaces {
		if bridges[in.Name] {
			m[in.Name] = d.routerMAC(in.Name, in.MAC)
		}
	}
	return m
}

// buildRouter builds the router of the configuration, if it has one, and
// adds it to the subsystems. Its errors name the file, line and field of
// the item they are about.
func (d *Daemon) buildRouter() error {
	rc := d.cfg.Router
	if rc == nil {
		return nil
	}
	// Packets waiting for a neighbour hold UMEM frames: at most a quarter
	// of a worker's (2 × ring frames per socket, one socket at least).
	cfg := router.Config{MaxHeld: min(1024, d.cfg.Options.RingSize/2)}
	for _, in := range rc.Interfaces {
		ri := router.Interface{Name: in.Name, MAC: d.routerMAC(in.Name, in.MAC), Addrs: in.Addresses, MTU: in.MTU}
		if p := d.portNamed(in.Name); p != nil {
			ri.Port = p.id
			if ri.MTU == 0 {
				ri.MTU = p.mtu
			}
		} else {
			for _, b := range d.bridges.List() {
				if b.Name() != in.Name {
					continue
				}
				ri.Bridge, ri.Group, ri.Ports = true, b.Group(), b.Ports()
				if in.MTU == 0 {
					// A Linux bridge's MTU is its smallest port's.
					for _, id := range b.Ports() {
						if mtu := d.ports[id].mtu; ri.MTU == 0 || mtu < ri.MTU {
							ri.MTU = mtu
						}
					}
				}
			}
		}
		cfg.Interfaces = append(cfg.Interfaces, ri)
	}
	for _, rt := range rc.Routes {
		t, err := route.ParseType(rt.Type)
		if err != nil {
			return d.cfg.ErrorAt(rt.Pos, "router.routes", "%v", err)
		}
		cfg.Routes = append(cfg.Routes, router.StaticRoute{To: rt.To, Via: rt.Via, Weights: rt.Weights, Dev: rt.Dev, Type: t, Metric: uint32(rt.Metric)})
	}
	for _, n := range rc.Neighbours {
		cfg.Neighbours = append(cfg.Neighbours, router.StaticNeighbour{Iface: n.Interface, IP: n.IP, MAC: header.MAC(n.MAC)})
	}
	r, err := router.New(cfg)
	if err != nil {
		var ce *router.ConfigError
		if errors.As(err, &ce) {
			p := rc.Pos
			switch ce.Kind {
			case "interface":
				p = rc.Interfaces[ce.Index].Pos
			case "route":
				p = rc.Routes[ce.Index].Pos
			case "neighbour":
				p = rc.Neighbours[ce.Index].Pos
			}
			return d.cfg.ErrorAt(p, fmt.Sprintf("router.%ss[%d]", ce.Kind, ce.Index), "%v", ce.Err)
		}
		return d.cfg.ErrorAt(rc.Pos, "router", "%v", err)
	}
	d.router = r
	d.subsystems = append(d.subsystems, r)
	return nil
}

// portNamed returns the port of interface name, nil if none.
func (d *Daemon) portNamed(name string) *port {
	for _, p := range d.ports {
		if p.cfg.Interface == name {
			return p
		}
	}
	return nil
}

// lockRouter read-locks the daemon's state for a router verb; on success
// the caller unlocks it. It fails while the daemon closes and without a
// router.
func (d *Daemon) lockRouter() error {
	d.state.RLock()
	switch {
	case d.closed:
		d.state.RUnlock()
		return ErrClosed
	case d.router == nil:
		d.state.RUnlock()
		return errors.New("no router in this configuration")
	}
	return nil
}

// routeVerb answers `xdpfwd route show`: the routes, one line each as
// `ip route` prints them, with interface names.
func (d *Daemon) routeVerb(json.RawMessage) (any, error) {
	if err := d.lockRouter(); err != nil {
		return nil, err
	}
	defer d.state.RUnlock()
	var lines []string
	for _, rt := range d.router.Table().Routes() {
		lines = append(lines, d.routeLine(rt))
	}
	return lines, nil
}

// routeLine formats a route as `ip route` does, with interface names.
func (d *Daemon) routeLine(rt route.Route) string {
	var b strings.Builder
	if rt.Type != route.Unicast && rt.Type != route.NoRoute {
		b.WriteString(rt.Type.String() + " ")
	}
	switch {
	case rt.Prefix.Bits() == 0:
		b.WriteString("default")
	case rt.Prefix.IsSingleIP():
		b.WriteString(rt.Prefix.Addr().String())
	default:
		b.WriteString(rt.Prefix.String())
	}
	hop := func(h route.NextHop) string {
		s := ""
		if h.Gateway.IsValid() {
			s = "via " + h.Gateway.String() + " "
		}
		return s + "dev " + d.router.InterfaceName(h.Port)
	}
	if len(rt.NextHops) == 1 {
		h := rt.NextHops[0]
		switch {
		case rt.Type == route.Local:
			fmt.Fprintf(&b, " dev %s proto kernel scope host src %s", d.router.InterfaceName(h.Port), rt.Prefix.Addr())
		case !h.Gateway.IsValid():
			b.WriteString(" " + hop(h) + " proto kernel scope link")
			if src, ok := d.ifaceAddrIn(d.router.InterfaceName(h.Port), rt.Prefix); ok {
				b.WriteString(" src " + src.String())
			}
		default:
			b.WriteString(" " + hop(h))
		}
	}
	if rt.Metric != 0 {
		fmt.Fprintf(&b, " metric %d", rt.Metric)
	}
	if len(rt.NextHops) > 1 {
		for _, h := range rt.NextHops {
			fmt.Fprintf(&b, "\n\tnexthop %s weight %d", hop(h), max(h.Weight, 1))
		}
	}
	return b.String()
}

// neighVerb answers `xdpfwd neigh show`: the neighbour cache as `ip
// neigh` prints it.
func (d *Daemon) neighVerb(json.RawMessage) (any, error) {
	if err := d.lockRouter(); err != nil {
		return nil, err
	}
	defer d.state.RUnlock()
	now := int64(fastpath.MonotonicClock())
	var lines []string
	var cursor uint64
	for {
		entries, next := d.router.Neighbours().List(now, cursor, 1024)
		for _, e := range entries {
			lines = append(lines, e.Format(d.router.InterfaceName(e.Iface)))
		}
		if next == 0 || len(lines) > 1<<16 {
			break
		}
		cursor = next
	}
	return lines, nil
}

// ifaceAddrIn returns router interface name's configured address in
// prefix p, the src `ip route` shows for a connected route.
func (d *Daemon) ifaceAddrIn(name string, p netip.Prefix) (netip.Addr, bool) {
	for _, in := range d.cfg.Router.Interfaces {
		if in.Name != name {
			continue
		}
		for _, a := range in.Addresses {
			if a.Masked() == p {
				return a.Addr(), true
			}
		}
	}
	return netip.Addr{}, false
}

// routerPort reports whether port interface name is a router interface.
func (d *Daemon) routerPort(name string) bool {
	if d.cfg.Router == nil {
		return false
	}
	for _, in := range d.cfg.Router.Interfaces {
		if in.Name == name {
			return true
		}
	}
	return false
}
