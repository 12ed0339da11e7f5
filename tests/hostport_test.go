package tests

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/xdpfwd/xdpfwd/internal/topo"
)

// A port taken over with pass_host_mac keeps the host's own connectivity:
// the switch namespace holds an address on p1, as a host does on its NIC,
// and h1 reaches it (ARP request for it and unicast to its MAC go to the
// kernel) while h1 and h2 are still bridged through xdpfwd.
func TestPassHostMAC(t *testing.T) {
	t.Parallel()
	s := star(t, topo.VethOptions{}, topo.VethOptions{})
	hostIP := netip.MustParseAddr("10.77.0.100")
	hostIP6 := netip.MustParseAddr("fd00:77::100")
	h1, h2 := s.Hosts[0], s.Hosts[1]
	for _, a := range []struct {
		ns     *topo.Namespace
		ifname string
		cidr   string
	}{
		{s.Switch, "p1", hostIP.String() + "/24"},
		{s.Switch, "p1", hostIP6.String() + "/64"},
		{h1.Namespace, topo.HostIf, "fd00:77::1/64"},
	} {
		if err := a.ns.AddAddr(a.ifname, a.cidr); err != nil {
			t.Fatal(err)
		}
	}
	// The daemon reads the host's addresses when it starts: wait until
	// duplicate address detection is done with the IPv6 ones.
	for _, ns := range []*topo.Namespace{s.Switch, h1.Namespace} {
		for deadline := time.Now().Add(10 * time.Second); ; {
			if out := run(t, ns, "ip", "-6", "addr", "show", "tentative"); !strings.Contains(out, "inet6") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("IPv6 addresses in %s still tentative after 10s", ns.Name())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	d := runDaemon(t, s.Switch, `ports:
  - interface: p1
    pass_host_mac: true
  - interface: p2
bridges:
  - name: br0
    ports: [p1, p2]
`)
	ping(t, h1, hostIP)
	ping(t, h1, hostIP6) // a neighbour solicitation for the host's address, then unicast
	ping(t, h1, h2.IP)
	st := d.stats()
	p1 := portOf(t, st, "p1")
	// 6 echo requests, at least one ARP request and one neighbour
	// solicitation went to the host.
	if p1.XDP.PassHost < 8 {
		t.Errorf("p1 passed %d frames to the host, want at least 8 (ARP + NS + 6 echo requests)", p1.XDP.PassHost)
	}
	if p1.RxPackets < 3 {
		t.Errorf("p1 forwarded %d frames, want the pings to h2 among them", p1.RxPackets)
	}
}
