package route

import (
	"errors"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func mustAdd(t *testing.T, tb *Table, rs ...Route) {
	t.Helper()
	for _, r := range rs {
		if err := tb.Add(r); err != nil {
			t.Fatalf("Add(%s): %v", r, err)
		}
	}
}

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func ip(s string) netip.Addr    { return netip.MustParseAddr(s) }

func lookup(tb *Table, a netip.Addr) (Type, Hop) {
	v := tb.FIB().View()
	var r Result
	if a.Is4() {
		r = v.Lookup4(a.As4(), 0)
	} else {
		r = v.Lookup6(a.As16(), 0)
	}
	return r.Type, v.Hop(r)
}

// TestMetric: the lowest metric wins; deleting it uncovers the next, as
// the kernel does; Replace changes only the route with its metric.
func TestMetric(t *testing.T) {
	tb := NewTable()
	via := func(port uint16, gw string) []NextHop { return []NextHop{{Port: port, Gateway: ip(gw)}} }
	mustAdd(t, tb,
		Route{Prefix: pfx("10.0.0.0/8"), Metric: 20, NextHops: via(2, "192.0.2.2")},
		Route{Prefix: pfx("10.0.0.0/8"), Metric: 10, NextHops: via(1, "192.0.2.1")},
	)
	if _, h := lookup(tb, ip("10.9.9.9")); h.Port != 1 {
		t.Fatalf("metric 10 route not chosen: %+v", h)
	}
	if err := tb.Replace(Route{Prefix: pfx("10.0.0.0/8"), Metric: 20, NextHops: via(3, "192.0.2.3")}); err != nil {
		t.Fatal(err)
	}
	if _, h := lookup(tb, ip("10.9.9.9")); h.Port != 1 {
		t.Fatalf("replacing metric 20 changed the FIB: %+v", h)
	}
	if err := tb.Delete(pfx("10.0.0.0/8"), 10); err != nil {
		t.Fatal(err)
	}
	if _, h := lookup(tb, ip("10.9.9.9")); h.Port != 3 || h.Addr() != ip("192.0.2.3") {
		t.Fatalf("after deleting metric 10: %+v, want the replaced metric 20 route", h)
	}
	if err := tb.Delete(pfx("10.0.0.0/8"), 20); err != nil {
		t.Fatal(err)
	}
	if typ, _ := lookup(tb, ip("10.9.9.9")); typ != NoRoute {
		t.Fatalf("after deleting both: %s", typ)
	}
}

func TestAddDeleteErrors(t *testing.T) {
	tb := NewTable()
	r := Route{Prefix: pfx("2001:db8::/32"), NextHops: []NextHop{{Port: 1}}}
	mustAdd(t, tb, r)
	if err := tb.Add(r); !errors.Is(err, ErrExists) {
		t.Fatalf("second Add: %v, want ErrExists", err)
	}
	if err := tb.Delete(pfx("2001:db8::/32"), 5); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Delete of another metric: %v, want ErrNotFound", err)
	}
	if err := tb.Delete(pfx("2001:db8::1/32"), 0); err == nil || !strings.Contains(err.Error(), "host bits") {
		t.Fatalf("Delete of a non-canonical prefix: %v", err)
	}
	if err := tb.Replace(Route{Prefix: pfx("2001:db8::/32"), Type: Blackhole}); err != nil {
		t.Fatal(err)
	}
	if typ, _ := lookup(tb, ip("2001:db8::5")); typ != Blackhole {
		t.Fatalf("after Replace with a blackhole: %s", typ)
	}
}

// TestValidation: every malformed route is refused with a message naming
// the problem.
func TestValidation(t *testing.T) {
	hop := []NextHop{{Port: 1}}
	for _, c := range []struct {
		r    Route
		want string
	}{
		{Route{NextHops: hop}, "invalid prefix"},
		{Route{Prefix: pfx("10.1.2.3/16"), NextHops: hop}, "host bits set (did you mean 10.1.0.0/16?)"},
		{Route{Prefix: pfx("10.0.0.0/16")}, "no next hop"},
		{Route{Prefix: pfx("10.0.0.0/16"), Type: Blackhole, NextHops: hop}, "has no next hop"},
		{Route{Prefix: pfx("10.0.0.0/16"), Type: Local, NextHops: []NextHop{{Port: 1, Gateway: ip("10.0.0.1")}}}, "at most its interface"},
		{Route{Prefix: pfx("10.0.0.0/16"), Type: 99, NextHops: hop}, "unknown type 99"},
		{Route{Prefix: pfx("10.0.0.0/16"), NextHops: []NextHop{{Port: 1, Weight: 257}}}, "weight 257"},
		{Route{Prefix: pfx("10.0.0.0/16"), NextHops: []NextHop{{Port: 1, Gateway: ip("fe80::1%eth0")}}}, "has a zone"},
		{Route{Prefix: pfx("10.0.0.0/16"), NextHops: []NextHop{{Port: 1, Gateway: ip("::ffff:10.0.0.1")}}}, "IPv4-mapped"},
		{Route{Prefix: pfx("10.0.0.0/16"), NextHops: []NextHop{{Port: 1, Gateway: ip("0.0.0.0")}}}, "not a unicast"},
		{Route{Prefix: pfx("10.0.0.0/16"), NextHops: []NextHop{{Port: 1, Gateway: ip("224.0.0.1")}}}, "not a unicast"},
		{Route{Prefix: pfx("10.0.0.0/16"), NextHops: []NextHop{{Port: 1}, {Port: 2}, {Port: 1}}}, "next hop 3 (dev 1) repeats next hop 1"},
		{Route{Prefix: pfx("10.0.0.0/16"), NextHops: make([]NextHop, MaxNextHops+1)}, "65 next hops"},
	} {
		tb := NewTable()
		err := tb.Add(c.r)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Add(%+v): %v, want an error containing %q", c.r, err, c.want)
		}
		if tb.Len() != 0 {
			t.Errorf("Add(%+v) failed but left a route", c.r)
		}
	}
}

// TestRoutesOrder: `ip route` order and formatting; Routes returns
// copies.
func TestRoutesOrder(t *testing.T) {
	tb := NewTable()
	mustAdd(t, tb,
		Route{Prefix: pfx("2001:db8::/32"), Type: Unreachable},
		Route{Prefix: pfx("10.0.0.0/8"), Metric: 5, NextHops: []NextHop{{Port: 2, Gateway: ip("192.0.2.9")}}},
		Route{Prefix: pfx("10.0.0.0/16"), NextHops: []NextHop{{Port: 1}}},
		Route{Prefix: pfx("0.0.0.0/0"), NextHops: []NextHop{{Port: 1, Gateway: ip("192.0.2.1"), Weight: 2}, {Port: 2, Gateway: ip("fe80::1")}}},
		Route{Prefix: pfx("10.0.0.0/8"), Metric: 1, Type: Blackhole},
		Route{Prefix: pfx("192.0.2.1/32"), Type: Local, NextHops: []NextHop{{Port: 1}}},
	)
	var lines []string
	for _, r := range tb.Routes() {
		lines = append(lines, r.String())
	}
	want := []string{
		"default metric 0\n\tnexthop via 192.0.2.1 dev 1 weight 2\n\tnexthop via fe80::1 dev 2 weight 1",
		"10.0.0.0/16 dev 1 scope link",
		"blackhole 10.0.0.0/8 metric 1",
		"10.0.0.0/8 via 192.0.2.9 dev 2 metric 5",
		"local 192.0.2.1 dev 1 scope host",
		"unreachable 2001:db8::/32",
	}
	want[0] = strings.Replace(want[0], " metric 0", "", 1)
	if !slices.Equal(lines, want) {
		t.Fatalf("Routes:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	rs := tb.Routes()
	name := func(port uint16) string { return "eth" + strconv.Itoa(int(port)) }
	for _, c := range []struct {
		r    Route
		a    Attrs
		want string
	}{
		{rs[0], Attrs{}, "default\n\tnexthop via 192.0.2.1 dev eth1 weight 2\n\tnexthop via fe80::1 dev eth2 weight 1"},
		{rs[1], Attrs{Src: ip("10.0.0.1")}, "10.0.0.0/16 dev eth1 proto kernel scope link src 10.0.0.1"},
		{rs[3], Attrs{}, "10.0.0.0/8 via 192.0.2.9 dev eth2 metric 5"},
		{rs[4], Attrs{Src: ip("192.0.2.1")}, "local 192.0.2.1 dev eth1 proto kernel scope host src 192.0.2.1"},
		{rs[4], Attrs{Src: ip("192.0.2.1"), Table: "local"}, "local 192.0.2.1 dev eth1 table local proto kernel scope host src 192.0.2.1"},
		{rs[2], Attrs{Table: "local"}, "blackhole 10.0.0.0/8 table local metric 1"},
	} {
		if got := c.r.Format(name, c.a); got != c.want {
			t.Errorf("Format(%+v):\n%s\nwant:\n%s", c.a, got, c.want)
		}
	}
	rs[0].NextHops[0].Port = 99
	if tb.Routes()[0].NextHops[0].Port == 99 {
		t.Fatal("Routes shares next hops with the table")
	}
}

// TestTypesAndHops: each type's lookup result, the connected and gateway
// hops of both families, and a local route's interface.
func TestTypesAndHops(t *testing.T) {
	tb := NewTable()
	mustAdd(t, tb,
		Route{Prefix: pfx("10.1.0.0/24"), NextHops: []NextHop{{Port: 3}}},
		Route{Prefix: pfx("10.2.0.0/24"), NextHops: []NextHop{{Port: 4, Gateway: ip("fe80::7")}}},
		Route{Prefix: pfx("10.1.0.1/32"), Type: Local, NextHops: []NextHop{{Port: 3}}},
		Route{Prefix: pfx("10.3.0.0/16"), Type: Prohibit},
		Route{Prefix: pfx("fd00::/8"), NextHops: []NextHop{{Port: 5, Gateway: ip("10.9.9.9")}}},
		Route{Prefix: pfx("fd00::1/128"), Type: Local},
	)
	for _, c := range []struct {
		dst  string
		typ  Type
		port uint16
		kind GatewayKind
		gw   string
	}{
		{"10.1.0.9", Unicast, 3, Connected, ""},
		{"10.1.0.1", Local, 3, Connected, ""},
		{"10.2.0.9", Unicast, 4, Gateway6, "fe80::7"},
		{"10.3.1.1", Prohibit, 0, Connected, ""},
		{"10.4.0.0", NoRoute, 0, Connected, ""},
		{"fd00::9", Unicast, 5, Gateway4, "10.9.9.9"},
		{"fd00::1", Local, 0, Connected, ""},
		{"fe00::1", NoRoute, 0, Connected, ""},
	} {
		typ, h := lookup(tb, ip(c.dst))
		v := tb.FIB().View()
		if a := ip(c.dst); a.Is4() {
			if got, want := v.Lookup4(a.As4(), 0).HasHop(), c.port != 0; got != want {
				t.Errorf("%s: HasHop %v", c.dst, got)
			}
		}
		var gw netip.Addr
		if c.gw != "" {
			gw = ip(c.gw)
		}
		if typ != c.typ || h.Port != c.port || h.Kind != c.kind || h.Addr() != gw {
			t.Errorf("%s: %s %+v, want %s port %d kind %d gateway %s", c.dst, typ, h, c.typ, c.port, c.kind, c.gw)
		}
	}
}

func TestParseType(t *testing.T) {
	for _, ty := range []Type{Unicast, Local, Blackhole, Unreachable, Prohibit} {
		got, err := ParseType(ty.String())
		if err != nil || got != ty {
			t.Errorf("ParseType(%q) = %v, %v", ty.String(), got, err)
		}
	}
	if _, err := ParseType("no route"); err == nil {
		t.Error(`ParseType("no route") accepted`)
	}
	if _, err := ParseType("nat"); err == nil || !strings.Contains(err.Error(), `"nat"`) {
		t.Errorf(`ParseType("nat"): %v`, err)
	}
}
