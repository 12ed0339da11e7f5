package tests

import (
	"fmt"
	"net"
	"testing"

	"github.com/xdpfwd/xdpfwd/internal/topo"
)

// TestSeveralBridges runs two bridges in one daemon, br0 over p1,p2 and br1
// over p3,p4, with all four hosts in one IP subnet: hosts on one bridge
// reach each other, hosts on different bridges do not, broadcasts stay on
// their bridge, and each bridge has its own FDB.
func TestSeveralBridges(t *testing.T) {
	t.Parallel()
	s := star(t, topo.VethOptions{}, topo.VethOptions{}, topo.VethOptions{}, topo.VethOptions{})
	h1, h2, h3, h4 := s.Hosts[0], s.Hosts[1], s.Hosts[2], s.Hosts[3]
	config := fmt.Sprintf(`ports:
  - interface: %s
  - interface: %s
  - interface: %s
  - interface: %s
bridges:
  - name: br0
    ports: [%[1]s, %[2]s]
  - name: br1
    ports: [%[3]s, %[4]s]
`, h1.Port, h2.Port, h3.Port, h4.Port)
	d := runDaemon(t, s.Switch, config)

	ping(t, h1, h2.IP)
	ping(t, h3, h4.IP)

	// h1's ARP requests for h4 are broadcasts: flooded on br0 (to h2), not
	// to br1.
	run(t, h1.Namespace, "ip", "neigh", "flush", "dev", topo.HostIf)
	arp2, arp3, arp4 := arpSocket(t, h2), arpSocket(t, h3), arpSocket(t, h4)
	pingFails(t, h1, h4.IP)
	if !sawARPRequest(t, arp2, h1.HWAddr, h1.IP, h4.IP) {
		t.Errorf("h2 (same bridge) did not receive h1's ARP request for %s", h4.IP)
	}
	for _, x := range []struct {
		h  *topo.Host
		fd int
	}{{h3, arp3}, {h4, arp4}} {
		if sawARPRequest(t, x.fd, h1.HWAddr, h1.IP, h4.IP) {
			t.Errorf("%s, on br1, received h1's ARP request from br0", x.h.Name())
		}
	}

	st := d.stats()
	if len(st.Bridges) != 2 {
		t.Errorf("xdpfwd stats lists %d bridges, want 2: %+v", len(st.Bridges), st.Bridges)
	}
	for _, want := range []struct {
		name    string
		members []*topo.Host
		others  []*topo.Host
	}{{"br0", []*topo.Host{h1, h2}, []*topo.Host{h3, h4}}, {"br1", []*topo.Host{h3, h4}, []*topo.Host{h1, h2}}} {
		br := bridgeOf(t, st, want.name)
		if got := fmt.Sprint(br.Ports); got != fmt.Sprint([]string{want.members[0].Port, want.members[1].Port}) {
			t.Errorf("bridge %s has ports %s, want [%s %s]", br.Name, got, want.members[0].Port, want.members[1].Port)
		}
		fdb := d.fdb(want.name)
		assertLearned(t, fdb, want.members...)
		for _, h := range want.others {
			if e := fdbPorts(t, fdb, h.HWAddr); len(e) != 0 {
				t.Errorf("FDB of %s lists %s (%s) of the other bridge: %+v", br.Name, h.Name(), h.HWAddr, e)
			}
		}
	}
}

// TestPassMACs lists a MAC in p1's pass_macs: frames from h1 to that MAC
// go to the switch namespace's kernel (XDP pass_host counter), not through
// the bridge to h2.
func TestPassMACs(t *testing.T) {
	t.Parallel()
	s := star(t, topo.VethOptions{}, topo.VethOptions{})
	h1, h2 := s.Hosts[0], s.Hosts[1]
	const passMAC = "02:00:00:00:00:99"
	config := fmt.Sprintf(`ports:
  - interface: %s
    pass_macs: [%s]
  - interface: %s
bridges:
  - name: br0
    ports: [%[1]s, %[3]s]
`, h1.Port, passMAC, h2.Port)
	d := runDaemon(t, s.Switch, config)

	ping(t, h1, h2.IP)

	mac, err := net.ParseMAC(passMAC)
	if err != nil {
		t.Fatal(err)
	}
	if err := h1.Neigh(topo.HostIf, h2.IP.String(), mac); err != nil {
		t.Fatal(err)
	}
	const n = 64
	passBefore := portOf(t, d.stats(), h1.Port).XDP.PassHost
	rxBefore := rxPackets(t, h2.Namespace, topo.HostIf)
	udpLost(t, h1, h2, n, 6)
	if rise := rxPackets(t, h2.Namespace, topo.HostIf) - rxBefore; rise >= n/4 {
		t.Errorf("h2's %s rx_packets rose by %d while h1 sent %d datagrams to pass MAC %s", topo.HostIf, rise, n, passMAC)
	}
	p1 := portOf(t, d.stats(), h1.Port)
	if rise := p1.XDP.PassHost - passBefore; rise < n {
		t.Errorf("XDP pass_host on %s rose by %d, want >= %d; xdp: %+v", h1.Port, rise, n, p1.XDP)
	}
}
