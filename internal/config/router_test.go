package config

import (
	"net/netip"
	"strings"
	"testing"
)

const goodRouter = `ports:
  - interface: wan0
  - interface: lan0
  - interface: p1
  - interface: p2
bridges:
  - name: br0
    ports: [p1, p2]
router:
  interfaces:
    - name: lan0
      addresses: [10.1.0.1/24, fd00:1::1/64]
    - name: wan0
      addresses: [192.0.2.1/24]
      mtu: 1400
    - name: br0
      addresses: [10.3.0.1/24]
      mac: 02:00:00:00:03:01
  routes:
    - to: 0.0.0.0/0
      via: 192.0.2.254
    - to: 10.9.0.0/16
      type: blackhole
      metric: 5
  neighbours:
    - interface: lan0
      ip: 10.1.0.9
      mac: 02:00:00:00:00:09
  kernel_sync: false
`

func TestParseRouter(t *testing.T) {
	c, err := Parse("r.yaml", []byte(goodRouter))
	if err != nil {
		t.Fatal(err)
	}
	r := c.Router
	if r == nil || len(r.Interfaces) != 3 || len(r.Routes) != 2 || len(r.Neighbours) != 1 {
		t.Fatalf("router %+v", r)
	}
	lan := r.Interfaces[0]
	if lan.Name != "lan0" || len(lan.Addresses) != 2 || lan.Addresses[1] != netip.MustParsePrefix("fd00:1::1/64") || lan.Pos.Line != 11 {
		t.Fatalf("lan0 %+v", lan)
	}
	if r.Interfaces[1].MTU != 1400 || r.Interfaces[2].MAC.String() != "02:00:00:00:03:01" {
		t.Fatalf("interfaces %+v", r.Interfaces)
	}
	if rt := r.Routes[0]; rt.To != netip.MustParsePrefix("0.0.0.0/0") || len(rt.Via) != 1 || rt.Via[0] != netip.MustParseAddr("192.0.2.254") || rt.Type != "unicast" {
		t.Fatalf("route %+v", rt)
	}
	if rt := r.Routes[1]; rt.Type != "blackhole" || rt.Metric != 5 || len(rt.Via) != 0 {
		t.Fatalf("route %+v", rt)
	}
}

func TestParseRouterErrors(t *testing.T) {
	for _, tc := range []struct{ name, edit, want string }{
		{"kernel sync", "kernel_sync: false=>kernel_sync: maybe", `r.yaml:29:16: router.kernel_sync: "maybe" is not true or false`},
		{"bad address", "[192.0.2.1/24]=>[192.0.2.1]", `r.yaml:14:19: router.interfaces[1].addresses[0]: "192.0.2.1" is not an address with a prefix length`},
		{"no interfaces", "router:\n  interfaces:=>router:\n  neighbours: []\n  interfacez:", `router.interfacez: unknown field`},
		{"unknown interface", "- name: wan0=>- name: wan9", `router.interfaces[1].name: "wan9" is neither a port defined under ports nor a bridge`},
		{"bridge port", "- name: wan0=>- name: p1", `router.interfaces[1].name: "p1" is a port of bridge "br0": put the address on the bridge`},
		{"twice", "- name: wan0=>- name: lan0", `router.interfaces[1].name: "lan0" is a router interface twice`},
		{"host bits", "10.9.0.0/16=>10.9.1.0/16", `r.yaml:22:11: router.routes[1].to: 10.9.1.0/16 has host bits set: the prefix is 10.9.0.0/16`},
		{"no gateway", "      via: 192.0.2.254\n=>", `router.routes[0].via: a unicast route needs a gateway`},
		{"gateway on blackhole", "type: blackhole=>type: blackhole\n      via: 1.2.3.4", `router.routes[1].via: a blackhole route has no gateway`},
		{"bad type", "type: blackhole=>type: local", `router.routes[1].type: "local" is not one of`},
		{"mtu", "mtu: 1400=>mtu: 100", `router.interfaces[1].mtu: 100 is out of range [576, 65535]`},
		{"neighbour interface", "- interface: lan0\n      ip=>- interface: wan9\n      ip", `router.neighbours[0].interface: "wan9" is not a router interface`},
		{"unknown key", "kernel_sync: false=>kernel_sink: false", `router.kernel_sink: unknown field`},
		{"dev", "via: 192.0.2.254=>via: 192.0.2.254\n      dev: wan9", `router.routes[0].dev: "wan9" is not a router interface`},
		{"weights count", "via: 192.0.2.254=>via: [192.0.2.254, 192.0.2.253]\n      weights: [1]", `router.routes[0].weights: 1 weights for 2 gateways`},
		{"bad via in list", "via: 192.0.2.254=>via: [192.0.2.254, x]", `router.routes[0].via[1]: "x" is not an IP address`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old, repl, _ := strings.Cut(tc.edit, "=>")
			src := strings.Replace(goodRouter, old, repl, 1)
			if src == goodRouter {
				t.Fatalf("edit %q changed nothing", tc.edit)
			}
			_, err := Parse("r.yaml", []byte(src))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestParseRouterNeedsInterfaces(t *testing.T) {
	_, err := Parse("n.yaml", []byte("ports:\n  - interface: a\nrouter:\n  routes: []\n"))
	if err == nil || !strings.Contains(err.Error(), "n.yaml:4:3: router.interfaces: a router needs at least one interface") {
		t.Fatalf("err = %v", err)
	}
}

func TestParseRouterECMP(t *testing.T) {
	c, err := Parse("r.yaml", []byte(strings.Replace(goodRouter, "via: 192.0.2.254", "via: [192.0.2.254, 192.0.2.253]\n      weights: [3, 1]", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if rt := c.Router.Routes[0]; len(rt.Via) != 2 || rt.Via[1] != netip.MustParseAddr("192.0.2.253") || len(rt.Weights) != 2 || rt.Weights[0] != 3 {
		t.Fatalf("route %+v", rt)
	}
}
