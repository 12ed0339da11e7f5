package tests

import (
	"net/netip"
	"testing"

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
	if err := s.Switch.AddAddr("p1", hostIP.String()+"/24"); err != nil {
		t.Fatal(err)
	}
	d := runDaemon(t, s.Switch, `ports:
  - interface: p1
    pass_host_mac: true
  - interface: p2
bridges:
  - name: br0
    ports: [p1, p2]
`)
	h1, h2 := s.Hosts[0], s.Hosts[1]
	ping(t, h1, hostIP)
	ping(t, h1, h2.IP)
	st := d.stats()
	p1 := portOf(t, st, "p1")
	// 3 echo requests and at least one ARP request went to the host.
	if p1.XDP.PassHost < 4 {
		t.Errorf("p1 passed %d frames to the host, want at least 4 (ARP + 3 echo requests)", p1.XDP.PassHost)
	}
	if p1.RxPackets < 3 {
		t.Errorf("p1 forwarded %d frames, want the pings to h2 among them", p1.RxPackets)
	}
}
