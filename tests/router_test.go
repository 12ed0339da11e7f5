package tests

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xdpfwd/xdpfwd/internal/control"
	"github.com/xdpfwd/xdpfwd/internal/topo"
	"github.com/xdpfwd/xdpfwd/internal/traffic"
)

// routedStar makes the hosts of a star routed ones: host i gets
// 10.<i>.0.2/24 and fd00:<i>::2/64 (the star's 10.77.0.0/24 address
// removed) with default routes via 10.<i>.0.1 and fd00:<i>::1, the
// router's addresses on port p<i>. It returns the hosts with their new
// IPv4 address in IP, and the router part of the config.
func routedStar(t *testing.T, s *topo.Star) ([]*topo.Host, string) {
	t.Helper()
	var hosts []*topo.Host
	var cfg strings.Builder
	cfg.WriteString("router:\n  interfaces:\n")
	for _, h := range s.Hosts {
		i := h.Index
		run(t, h.Namespace, "ip", "addr", "flush", "dev", topo.HostIf)
		run(t, h.Namespace, "ip", "addr", "add", fmt.Sprintf("10.%d.0.2/24", i), "dev", topo.HostIf)
		run(t, h.Namespace, "ip", "-6", "addr", "add", fmt.Sprintf("fd00:%d::2/64", i), "dev", topo.HostIf, "nodad")
		run(t, h.Namespace, "ip", "route", "add", "default", "via", fmt.Sprintf("10.%d.0.1", i))
		run(t, h.Namespace, "ip", "-6", "route", "add", "default", "via", fmt.Sprintf("fd00:%d::1", i))
		c := *h
		c.IP = netip.MustParseAddr(fmt.Sprintf("10.%d.0.2", i))
		hosts = append(hosts, &c)
		fmt.Fprintf(&cfg, "    - name: %s\n      addresses: [10.%d.0.1/24, fd00:%d::1/64]\n", h.Port, i, i)
	}
	return hosts, cfg.String()
}

// pingSays pings dst once from h with extra arguments and fails t unless
// ping's output contains want (ping exits non-zero for an error reply).
func pingSays(t *testing.T, h *topo.Host, dst string, want string, extra ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args := append([]string{"-n", "-c", "1", "-W", "2"}, extra...)
	out, _ := h.Command(ctx, "ping", append(args, dst)...).CombinedOutput()
	if !strings.Contains(string(out), want) {
		t.Fatalf("ping %s from %s: want %q in:\n%s", dst, h.Name(), want, out)
	}
}

// TestRouter: two hosts on two subnets, routed by xdpfwd: pings to the
// router and across, IPv4 and IPv6; UDP and TCP checked byte for byte;
// the kernel's ICMP errors for TTL 1, no route and a prohibit route; the
// listings of routes and neighbours; the router's drop counters.
func TestRouter(t *testing.T) {
	t.Parallel()
	s := star(t, topo.VethOptions{}, topo.VethOptions{})
	hosts, routerCfg := routedStar(t, s)
	h1, h2 := hosts[0], hosts[1]
	cfg := "ports:\n  - interface: p1\n  - interface: p2\n" + routerCfg +
		"  routes:\n    - to: 10.9.0.0/16\n      type: prohibit\n"
	d := runDaemon(t, s.Switch, cfg)

	ping(t, h1, netip.MustParseAddr("10.1.0.1"))
	ping(t, h1, netip.MustParseAddr("10.2.0.1"))
	ping(t, h1, h2.IP)
	ping(t, h2, h1.IP)
	ping(t, h1, netip.MustParseAddr("fd00:2::2"))
	ping(t, h1, netip.MustParseAddr("fd00:1::1"))
	udpIntact(t, h1, h2, 200, 61)
	udpIntact(t, h2, h1, 200, 62)
	res, err := traffic.TCP(h1, h2, 8<<20, 63)
	if err != nil {
		t.Fatalf("TCP h1 -> h2 through the router: %v", err)
	}
	t.Logf("TCP h1 -> h2: %d bytes intact, %.2f Gbit/s", res.Bytes, res.Gbps())

	pingSays(t, h1, "10.2.0.2", "From 10.1.0.1 icmp_seq=1 Time to live exceeded", "-t", "1")
	pingSays(t, h1, "10.8.0.1", "From 10.1.0.1 icmp_seq=1 Destination Net Unreachable")
	pingSays(t, h1, "10.9.0.1", "From 10.1.0.1 icmp_seq=1 Packet filtered")
	pingSays(t, h1, "fd00:2::2", "Time exceeded: Hop limit", "-t", "1")

	// As ip route show: table main by default, the local routes in table
	// local, both in table all (the local ones marked).
	const (
		connected  = "10.1.0.0/24 dev p1 proto kernel scope link src 10.1.0.1"
		prohibit   = "prohibit 10.9.0.0/16"
		connected6 = "fd00:2::/64 dev p2 proto kernel scope link src fd00:2::1"
		local      = "local 10.2.0.1 dev p2 proto kernel scope host src 10.2.0.1"
		localAll   = "local 10.2.0.1 dev p2 table local proto kernel scope host src 10.2.0.1"
	)
	for _, c := range []struct {
		table      string
		want, lack []string
	}{
		{"", []string{connected, prohibit, connected6}, []string{"local "}},
		{"local", []string{local, "local fd00:2::1 dev p2 proto kernel scope host src fd00:2::1"}, []string{connected, prohibit}},
		{"all", []string{connected, prohibit, connected6, localAll}, nil},
	} {
		var routes []string
		if err := control.Call(d.control, "route", control.RouteArgs{Table: c.table}, &routes); err != nil {
			t.Fatal(err)
		}
		all := strings.Join(routes, "\n")
		for _, want := range c.want {
			if !strings.Contains(all, want) {
				t.Errorf("route show table %q lacks %q:\n%s", c.table, want, all)
			}
		}
		for _, lack := range c.lack {
			if strings.Contains(all, lack) {
				t.Errorf("route show table %q has %q:\n%s", c.table, lack, all)
			}
		}
	}
	if out := run(t, s.Switch, xdpfwdBinary(t), "route", "show", "table", "local", "--control", d.control); !strings.Contains(out, local) {
		t.Errorf("xdpfwd route show table local lacks %q:\n%s", local, out)
	}
	out := run(t, s.Switch, xdpfwdBinary(t), "neigh", "show", "--control", d.control)
	if want := fmt.Sprintf("10.1.0.2 dev p1 lladdr %s", h1.HWAddr); !strings.Contains(out, want) {
		t.Errorf("neigh show lacks %q:\n%s", want, out)
	}
	st := d.stats()
	if r := st.Router; r == nil || r.Forwarded == 0 || r.EchoReplies < 6 || r.ICMPErrors < 4 || r.ARPReplies == 0 || r.NASent == 0 || r.Routes != 9 {
		t.Errorf("router stats %+v", st.Router)
	}
	p1 := portOf(t, st, "p1")
	for _, reason := range []string{"TTL exceeded", "no route", "prohibited route"} {
		if p1.Drops[reason] == 0 {
			t.Errorf("p1: no %q drops counted: %v", reason, p1.Drops)
		}
	}
}

// TestRouterOnBridge: h1 and h2 on bridge br0, whose router interface is
// 10.1.0.1/24; h3 on a routed port (10.3.0.0/24). h1 and h2 talk bridged;
// each reaches h3 routed, and h3 both of them (out of the bridge, to the
// port the FDB knows).
func TestRouterOnBridge(t *testing.T) {
	t.Parallel()
	s := star(t, topo.VethOptions{}, topo.VethOptions{}, topo.VethOptions{})
	var hosts []*topo.Host
	for i, h := range s.Hosts {
		subnet, addr := 1, fmt.Sprintf("10.1.0.%d", i+2)
		if i == 2 {
			subnet, addr = 3, "10.3.0.2"
		}
		run(t, h.Namespace, "ip", "addr", "flush", "dev", topo.HostIf)
		run(t, h.Namespace, "ip", "addr", "add", addr+"/24", "dev", topo.HostIf)
		run(t, h.Namespace, "ip", "route", "add", "default", "via", fmt.Sprintf("10.%d.0.1", subnet))
		c := *h
		c.IP = netip.MustParseAddr(addr)
		hosts = append(hosts, &c)
	}
	h1, h2, h3 := hosts[0], hosts[1], hosts[2]
	cfg := "ports:\n  - interface: p1\n  - interface: p2\n  - interface: p3\n" +
		"bridges:\n  - name: br0\n    ports: [p1, p2]\n" +
		"router:\n  interfaces:\n    - name: br0\n      addresses: [10.1.0.1/24]\n    - name: p3\n      addresses: [10.3.0.1/24]\n"
	d := runDaemon(t, s.Switch, cfg)
	ping(t, h1, h2.IP)
	ping(t, h1, netip.MustParseAddr("10.1.0.1"))
	ping(t, h1, h3.IP)
	ping(t, h3, h2.IP)
	udpIntact(t, h3, h1, 100, 71)
	udpIntact(t, h2, h3, 100, 72)
	br := bridgeOf(t, d.stats(), "br0")
	if br.Forwarded == 0 {
		t.Errorf("bridge counters %+v: nothing forwarded between h1 and h2", br)
	}
}

// TestRouterKernelSync: with kernel_sync, routes and permanent neighbours
// the switch namespace's kernel has (before the start, and added or
// deleted later, as a routing daemon would) are xdpfwd's too.
func TestRouterKernelSync(t *testing.T) {
	t.Parallel()
	s := star(t, topo.VethOptions{}, topo.VethOptions{})
	hosts, routerCfg := routedStar(t, s)
	h1, h2 := hosts[0], hosts[1]
	sw := s.Switch
	run(t, h2.Namespace, "ip", "addr", "add", "10.5.0.1/32", "dev", "lo")
	run(t, h2.Namespace, "ip", "addr", "add", "10.6.0.1/32", "dev", "lo")
	// One route before the start, one after.
	run(t, sw, "ip", "link", "set", "p2", "up")
	run(t, sw, "ip", "route", "add", "10.5.0.0/24", "via", "10.2.0.2", "dev", "p2", "onlink")
	d := runDaemon(t, sw, "ports:\n  - interface: p1\n  - interface: p2\n"+routerCfg+"  kernel_sync: true\n")
	ping(t, h1, netip.MustParseAddr("10.5.0.1"))
	pingSays(t, h1, "10.6.0.1", "Destination Net Unreachable")
	run(t, sw, "ip", "route", "add", "10.6.0.0/24", "via", "10.2.0.2", "dev", "p2", "onlink", "metric", "7")
	waitFor(t, "the route to 10.6.0.0/24 mirrored", func() bool {
		var routes []string
		return control.Call(d.control, "route", nil, &routes) == nil && strings.Contains(strings.Join(routes, "\n"), "10.6.0.0/24 via 10.2.0.2 dev p2 metric 7")
	})
	ping(t, h1, netip.MustParseAddr("10.6.0.1"))
	run(t, sw, "ip", "route", "del", "10.5.0.0/24")
	waitFor(t, "the route to 10.5.0.0/24 gone", func() bool {
		var routes []string
		return control.Call(d.control, "route", nil, &routes) == nil && !strings.Contains(strings.Join(routes, "\n"), "10.5.0.0/24")
	})
	pingSays(t, h1, "10.5.0.1", "Destination Net Unreachable")

	run(t, sw, "ip", "neigh", "add", "10.2.0.9", "lladdr", "02:00:00:00:00:09", "dev", "p2", "nud", "permanent")
	waitFor(t, "the permanent neighbour mirrored", func() bool {
		var lines []string
		return control.Call(d.control, "neigh", nil, &lines) == nil && slices.Contains(lines, "10.2.0.9 dev p2 lladdr 02:00:00:00:00:09 PERMANENT")
	})
	run(t, sw, "ip", "neigh", "del", "10.2.0.9", "dev", "p2")
	waitFor(t, "the permanent neighbour gone", func() bool {
		var lines []string
		return control.Call(d.control, "neigh", nil, &lines) == nil && !strings.Contains(strings.Join(lines, "\n"), "10.2.0.9 ")
	})
}

// waitFor polls cond for up to 5 s and fails t if it never holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("%s: not within 5 s", what)
}
