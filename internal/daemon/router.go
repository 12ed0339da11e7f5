package daemon

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/xdpfwd/xdpfwd/fastpath"
	"github.com/xdpfwd/xdpfwd/fastpath/header"
	"github.com/xdpfwd/xdpfwd/fastpath/route"
	"github.com/xdpfwd/xdpfwd/fastpath/router"
	"github.com/xdpfwd/xdpfwd/internal/control"
)

// routerMAC returns the MAC of router interface name: mac if configured,
// else its port's (a bridge's: its first port's).
func (d *Daemon) routerMAC(name string, mac []byte) header.MAC {
	if len(mac) == 6 {
		return header.MAC(mac)
	}
	if p := d.portNamed(name); p != nil {
		return header.MAC(p.mac)
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

// routeVerb answers `xdpfwd route show [table main|local|all]`: the
// routes of the table asked for, one line each as `ip route show` prints
// them, with interface names. xdpfwd keeps one table; its local routes are
// the kernel's table local, the others its table main.
func (d *Daemon) routeVerb(raw json.RawMessage) (any, error) {
	var args control.RouteArgs
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &args); err != nil {
			return nil, fmt.Errorf("route arguments: %w", err)
		}
	}
	showMain, showLocal := true, false
	switch args.Table {
	case "", "main":
	case "local":
		showMain, showLocal = false, true
	case "all":
		showLocal = true
	default:
		return nil, fmt.Errorf("table %q: want main, local or all", args.Table)
	}
	if err := d.lockRouter(); err != nil {
		return nil, err
	}
	defer d.state.RUnlock()
	routes := d.router.Table().Routes()
	// As `ip route show table all` then `ip -6 route show table all`:
	// each family's table main, then its table local.
	order := func(r route.Route) int {
		k := 0
		if r.Prefix.Addr().Is6() {
			k = 2
		}
		if r.Type == route.Local {
			k++
		}
		return k
	}
	slices.SortStableFunc(routes, func(a, b route.Route) int { return cmp.Compare(order(a), order(b)) })
	var lines []string
	for _, rt := range routes {
		attrs := route.Attrs{Src: d.routeAddr(rt)}
		if rt.Type == route.Local {
			if !showLocal {
				continue
			}
			if showMain {
				attrs.Table = "local"
			}
		} else if !showMain {
			continue
		}
		lines = append(lines, rt.Format(d.router.InterfaceName, attrs))
	}
	return lines, nil
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

// routeAddr returns the configured address a route was made from: the
// address whose connected route or local route rt is, on rt's interface;
// the zero Addr if none. It is the src `ip route` shows for such a route.
func (d *Daemon) routeAddr(rt route.Route) netip.Addr {
	if len(rt.NextHops) != 1 || rt.NextHops[0].Gateway.IsValid() {
		return netip.Addr{}
	}
	name := d.router.InterfaceName(rt.NextHops[0].Port)
	for _, in := range d.cfg.Router.Interfaces {
		if in.Name != name {
			continue
		}
		for _, a := range in.Addresses {
			if rt.Type == route.Local && a.Addr() == rt.Prefix.Addr() && rt.Prefix.IsSingleIP() ||
				rt.Type == route.Unicast && a.Masked() == rt.Prefix {
				return a.Addr()
			}
		}
	}
	return netip.Addr{}
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
