package daemon

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/xdpfwd/xdpfwd/fastpath/header"
	"github.com/xdpfwd/xdpfwd/fastpath/route"
)

// startKernelSync follows the routes and permanent neighbours of the
// daemon's network namespace over netlink and mirrors them into the router
// (router.kernel_sync), as VPP's linux-cp does: a routing daemon (FRR,
// BIRD) that programs the kernel programs xdpfwd too. Mirrored are the
// main table's routes that the kernel did not make itself (not proto
// kernel: those of the kernel's own addresses) whose output interfaces are
// router interfaces on ports, of types unicast, blackhole, unreachable and
// prohibit; and PERMANENT neighbours on those interfaces (the kernel
// learns no others on ports xdpfwd took over: their frames go to xdpfwd).
// The existing ones are read at start, and every change lands as soon as
// netlink reports it. What cannot be mirrored is logged.
func (d *Daemon) startKernelSync() error {
	routes := make(chan netlink.RouteUpdate, 1024)
	neighs := make(chan netlink.NeighUpdate, 1024)
	done := make(chan struct{})
	onErr := func(err error) { d.log.Warn("kernel_sync: netlink", "err", err) }
	if err := netlink.RouteSubscribeWithOptions(routes, done, netlink.RouteSubscribeOptions{ListExisting: true, ErrorCallback: onErr}); err != nil {
		close(done)
		return fmt.Errorf("kernel_sync: follow the kernel's routes: %w", err)
	}
	if err := netlink.NeighSubscribeWithOptions(neighs, done, netlink.NeighSubscribeOptions{ListExisting: true, ErrorCallback: onErr}); err != nil {
		close(done)
		return fmt.Errorf("kernel_sync: follow the kernel's neighbours: %w", err)
	}
	d.syncStop = done
	d.wg.Add(1)
	go d.kernelSync(routes, neighs, done)
	return nil
}

// kernelSync applies route and neighbour updates until done is closed.
func (d *Daemon) kernelSync(routes <-chan netlink.RouteUpdate, neighs <-chan netlink.NeighUpdate, done <-chan struct{}) {
	defer d.wg.Done()
	for {
		select {
		case <-done:
			return
		case u, ok := <-routes:
			if !ok {
				return
			}
			if err := d.syncRoute(u); err != nil {
				d.log.Warn("kernel_sync: route not mirrored", "route", u.Route.String(), "err", err)
			}
		case u, ok := <-neighs:
			if !ok {
				return
			}
			if err := d.syncNeigh(u); err != nil {
				d.log.Warn("kernel_sync: neighbour not mirrored", "ip", u.IP, "err", err)
			}
		}
	}
}

// errNotMirrored marks updates kernel_sync leaves out by design.
var errNotMirrored = errors.New("not mirrored")

// syncIface returns the router interface of kernel interface ifindex.
func (d *Daemon) syncIface(ifindex int) (uint16, error) {
	l, err := netlink.LinkByIndex(ifindex)
	if err != nil {
		return 0, fmt.Errorf("interface %d: %w", ifindex, err)
	}
	id, ok := d.router.InterfaceID(l.Attrs().Name)
	if !ok {
		return 0, fmt.Errorf("%w: %s is not a router interface", errNotMirrored, l.Attrs().Name)
	}
	return id, nil
}

// syncRoute mirrors one route update.
func (d *Daemon) syncRoute(u netlink.RouteUpdate) error {
	r := u.Route
	if r.Table != unix.RT_TABLE_MAIN || r.Protocol == unix.RTPROT_KERNEL {
		return nil
	}
	var t route.Type
	switch r.Type {
	case unix.RTN_UNICAST:
		t = route.Unicast
	case unix.RTN_BLACKHOLE:
		t = route.Blackhole
	case unix.RTN_UNREACHABLE:
		t = route.Unreachable
	case unix.RTN_PROHIBIT:
		t = route.Prohibit
	default:
		return nil
	}
	prefix, err := routePrefix(r)
	if err != nil {
		return err
	}
	metric := uint32(r.Priority)
	if u.Type == unix.RTM_DELROUTE {
		if err := d.router.Table().Delete(prefix, metric); err != nil && !errors.Is(err, route.ErrNotFound) {
			return err
		}
		d.log.Debug("kernel_sync: route deleted", "prefix", prefix, "metric", metric)
		return nil
	}
	rt := route.Route{Prefix: prefix, Type: t, Metric: metric}
	if t == route.Unicast {
		hops := []netlink.NexthopInfo{{LinkIndex: r.LinkIndex, Gw: r.Gw}}
		if len(r.MultiPath) > 0 {
			hops = hops[:0]
			for _, h := range r.MultiPath {
				hops = append(hops, *h)
			}
		}
		for _, h := range hops {
			id, err := d.syncIface(h.LinkIndex)
			if err != nil {
				if errors.Is(err, errNotMirrored) {
					return nil
				}
				return err
			}
			nh := route.NextHop{Port: id, Weight: uint16(h.Hops + 1)}
			if h.Gw != nil {
				gw, ok := netip.AddrFromSlice(h.Gw)
				if !ok {
					return fmt.Errorf("gateway %v", h.Gw)
				}
				nh.Gateway = gw.Unmap()
			}
			rt.NextHops = append(rt.NextHops, nh)
		}
	}
	if err := d.router.Table().Replace(rt); err != nil {
		return err
	}
	d.log.Debug("kernel_sync: route", "route", rt.String())
	return nil
}

// routePrefix returns the destination of a kernel route (the default
// route has none).
func routePrefix(r netlink.Route) (netip.Prefix, error) {
	if r.Dst == nil {
		if r.Family == unix.AF_INET6 {
			return netip.MustParsePrefix("::/0"), nil
		}
		return netip.MustParsePrefix("0.0.0.0/0"), nil
	}
	a, ok := netip.AddrFromSlice(r.Dst.IP)
	if !ok {
		return netip.Prefix{}, fmt.Errorf("destination %v", r.Dst)
	}
	ones, _ := r.Dst.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones).Masked(), nil
}

// syncNeigh mirrors one neighbour update: PERMANENT entries on router
// interfaces.
func (d *Daemon) syncNeigh(u netlink.NeighUpdate) error {
	n := u.Neigh
	if n.State&netlink.NUD_PERMANENT == 0 && u.Type != unix.RTM_DELNEIGH {
		return nil
	}
	id, err := d.syncIface(n.LinkIndex)
	if err != nil {
		if errors.Is(err, errNotMirrored) {
			return nil
		}
		return err
	}
	ip, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return fmt.Errorf("address %v", n.IP)
	}
	ip = ip.Unmap()
	if u.Type == unix.RTM_DELNEIGH {
		d.router.Neighbours().Delete(id, ip)
		return nil
	}
	if len(n.HardwareAddr) != 6 {
		return fmt.Errorf("link-layer address %v", net.HardwareAddr(n.HardwareAddr))
	}
	d.router.Neighbours().Delete(id, ip)
	return d.router.Neighbours().AddStatic(id, ip, header.MAC(n.HardwareAddr))
}
