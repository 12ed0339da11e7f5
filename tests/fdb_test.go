package tests

import (
	"fmt"
	"testing"
	"time"

	"github.com/xdpfwd/xdpfwd/internal/control"
	"github.com/xdpfwd/xdpfwd/internal/topo"
)

// TestStaticFDB pins h2's MAC to its own port and h3's MAC to the wrong
// port p1. Stats lists both as static; h2 is reachable; h3's own frames do
// not move its entry; unicast from h1 to h3's MAC is dropped as hairpin on
// p1 and never reaches h3.
func TestStaticFDB(t *testing.T) {
	t.Parallel()
	s := star(t, topo.VethOptions{}, topo.VethOptions{}, topo.VethOptions{})
	h1, h2, h3 := s.Hosts[0], s.Hosts[1], s.Hosts[2]
	config := bridgeConfig(ports(s)...) + fmt.Sprintf(`    static:
      - mac: %s
        port: %s
      - mac: %s
        port: %s
`, h2.HWAddr, h2.Port, h3.HWAddr, h1.Port)
	d := runDaemon(t, s.Switch, config)

	br := d.fdb("br0")
	assertStatic(t, br, h2.HWAddr.String(), h2.Port)
	assertStatic(t, br, h3.HWAddr.String(), h1.Port)

	ping(t, h1, h2.IP)

	// h3 sends frames from its MAC (ARP requests for h2): learning must not
	// move the static entry, so h2's replies follow it to p1 and h3 never
	// hears back.
	pingFails(t, h3, h2.IP)
	assertStatic(t, d.fdb("br0"), h3.HWAddr.String(), h1.Port)

	// h1 reaches h3's MAC without ARP; the FDB places it on p1, where the
	// frames came from.
	if err := h1.Neigh(topo.HostIf, h3.IP.String(), h3.HWAddr); err != nil {
		t.Fatal(err)
	}
	const n = 64
	hairpinBefore := portOf(t, d.stats(), h1.Port).Drops["hairpin"]
	rxBefore := rxPackets(t, h3.Namespace, topo.HostIf)
	udpLost(t, h1, h3, n, 5)
	if rise := rxPackets(t, h3.Namespace, topo.HostIf) - rxBefore; rise >= n/4 {
		t.Errorf("h3's %s rx_packets rose by %d while h1 sent %d datagrams to a MAC pinned to p1", topo.HostIf, rise, n)
	}
	after := portOf(t, d.stats(), h1.Port)
	if rise := after.Drops["hairpin"] - hairpinBefore; rise < n {
		t.Errorf("hairpin drops on %s rose by %d, want >= %d; drops: %v", h1.Port, rise, n, after.Drops)
	}
}

// assertStatic fails t unless the FDB of br holds mac exactly once, on
// port, as a static entry.
func assertStatic(t *testing.T, br fdbListing, mac, port string) {
	t.Helper()
	var got []control.FDBEntry
	for _, e := range br.Entries {
		if e.MAC == mac {
			got = append(got, e)
		}
	}
	if len(got) != 1 || got[0].Port != port || !got[0].Static {
		t.Errorf("FDB of %s has %s as %+v, want one static entry on %s; FDB: %+v", br.Bridge, mac, got, port, br.Entries)
	}
}

// TestFDBAgeing checks that learned entries of a bridge with a 2 s ageing
// time leave the FDB once their hosts fall silent.
func TestFDBAgeing(t *testing.T) {
	t.Parallel()
	s := star(t, topo.VethOptions{}, topo.VethOptions{})
	a, b := s.Hosts[0], s.Hosts[1]
	// Silence the hosts between pings: no IPv6 (router solicitations, MLD
	// reports) and no ARP.
	for _, h := range s.Hosts {
		run(t, h.Namespace, "sysctl", "-q", "-w", "net.ipv6.conf."+topo.HostIf+".disable_ipv6=1")
	}
	if err := a.Neigh(topo.HostIf, b.IP.String(), b.HWAddr); err != nil {
		t.Fatal(err)
	}
	if err := b.Neigh(topo.HostIf, a.IP.String(), a.HWAddr); err != nil {
		t.Fatal(err)
	}
	config := fmt.Sprintf(`ports:
  - interface: %s
  - interface: %s
bridges:
  - name: br0
    ports: [%[1]s, %[2]s]
    ageing_time: 2s
`, a.Port, b.Port)
	d := runDaemon(t, s.Switch, config)

	ping(t, a, b.IP)
	assertLearned(t, d.fdb("br0"), a, b)

	// The daemon sweeps every 5 s and hides expired entries at once; allow
	// 15 s, this is not a timing assertion.
	deadline := time.Now().Add(15 * time.Second)
	for {
		br := d.fdb("br0")
		if len(br.Entries) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("15s after the last traffic, with ageing_time 2s, the FDB still lists %+v", br.Entries)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
