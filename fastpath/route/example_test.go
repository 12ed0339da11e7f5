package route_test

import (
	"fmt"
	"net/netip"

	"github.com/xdpfwd/xdpfwd/fastpath/route"
)

// A table with a connected subnet, the router's own address, an ECMP
// default route and a blackhole; a worker looks up a batch through one
// View.
func Example() {
	t := route.NewTable()
	for _, r := range []route.Route{
		{Prefix: netip.MustParsePrefix("10.1.0.0/24"), NextHops: []route.NextHop{{Port: 2}}},
		{Prefix: netip.MustParsePrefix("10.1.0.1/32"), Type: route.Local, NextHops: []route.NextHop{{Port: 2}}},
		{Prefix: netip.MustParsePrefix("0.0.0.0/0"), NextHops: []route.NextHop{
			{Port: 1, Gateway: netip.MustParseAddr("192.0.2.1")},
			{Port: 1, Gateway: netip.MustParseAddr("192.0.2.2")},
		}},
		{Prefix: netip.MustParsePrefix("10.66.0.0/16"), Type: route.Blackhole},
	} {
		if err := t.Add(r); err != nil {
			fmt.Println(err)
		}
	}
	for _, r := range t.Routes() {
		fmt.Println(r)
	}

	v := t.FIB().View() // once per batch
	for _, dst := range []string{"10.1.0.7", "10.1.0.1", "10.66.1.1", "198.51.100.1"} {
		flowHash := uint32(0x12345678) // the packet's L3 or L4 hash
		res := v.Lookup4(netip.MustParseAddr(dst).As4(), flowHash)
		hop := v.Hop(res)
		fmt.Printf("%s: %s port %d gateway %v\n", dst, res.Type, hop.Port, hop.Addr())
	}
	// Output:
	// default
	// 	nexthop via 192.0.2.1 dev 1 weight 1
	// 	nexthop via 192.0.2.2 dev 1 weight 1
	// 10.1.0.0/24 dev 2 scope link
	// local 10.1.0.1 dev 2 scope host
	// blackhole 10.66.0.0/16
	// 10.1.0.7: unicast port 2 gateway invalid IP
	// 10.1.0.1: local port 2 gateway invalid IP
	// 10.66.1.1: blackhole port 0 gateway invalid IP
	// 198.51.100.1: unicast port 1 gateway 192.0.2.1
}
