package tests

import (
	"fmt"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/xdpfwd/xdpfwd/internal/topo"
)

// TestVLANUpperDeviceRefused: a macvlan has no native XDP, so xdp_mode
// auto attaches it in generic mode, where the kernel has already taken a
// frame's VLAN tag out of its bytes on the lower device: its tagged frames
// would leave xdpfwd untagged. xdpfwd refuses such a port at start-up,
// naming the lower device to use instead, and leaves nothing attached (the
// native port before it included).
func TestVLANUpperDeviceRefused(t *testing.T) {
	t.Parallel()
	s := star(t, topo.VethOptions{}, topo.VethOptions{})
	h1, h2 := s.Hosts[0], s.Hosts[1]
	h := s.Switch.Netlink()
	lower, err := h.LinkByName(h1.Port)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.LinkAdd(&netlink.Macvlan{LinkAttrs: netlink.LinkAttrs{Name: "xfmv0", ParentIndex: lower.Attrs().Index}, Mode: netlink.MACVLAN_MODE_BRIDGE}); err != nil {
		t.Fatalf("adding a macvlan on %s: %v", h1.Port, err)
	}
	mv, err := h.LinkByName("xfmv0")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetUp(mv); err != nil {
		t.Fatal(err)
	}
	config := fmt.Sprintf(`ports:
  - interface: %s
    xdp_mode: native
  - interface: xfmv0
bridges:
  - name: br0
    ports: [%[1]s, xfmv0]
`, h2.Port)
	stderr := assertFailed(t, startDaemon(t, s.Switch, config))
	for _, want := range []string{"port xfmv0: ", "xfmv0 (macvlan) receives its frames from " + h1.Port, "make the lower device the port instead"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not say %q:\n%s", want, stderr)
		}
	}
	assertNoXDP(t, s.Switch, h2.Port, "xfmv0")
}
