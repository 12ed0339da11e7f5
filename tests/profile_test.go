package tests

import (
	"strings"
	"testing"
	"time"

	"github.com/xdpfwd/xdpfwd/internal/topo"
)

// With options.profile the stats verb reports what every pipeline stage
// cost, per stage, in JSON and in the table.
func TestProfileStages(t *testing.T) {
	t.Parallel()
	s := star(t, topo.VethOptions{}, topo.VethOptions{})
	d := runDaemon(t, s.Switch, bridgeConfig(ports(s)...)+"options:\n  profile: true\n")
	ping(t, s.Hosts[0], s.Hosts[1].IP)

	st := d.stats()
	if !st.Profiling {
		t.Fatal("stats says profiling is off with options.profile: true")
	}
	var names []string
	for _, sg := range st.Stages {
		names = append(names, sg.Name)
		if sg.Packets < 6 || sg.Nanoseconds == 0 {
			t.Errorf("stage %s: %d packets in %d ns, want at least the 6 echo packets and some time", sg.Name, sg.Packets, sg.Nanoseconds)
		}
	}
	// The rules engine's stages, connection tracking's and NAT's are
	// there without a ruleset too (a reload may bring one), each costing
	// one look per batch.
	const want = "parse nft netdev ingress nft bridge prerouting bridge conntrack ip prerouting nat ip prerouting nft ip prerouting nft ip input nat ip input conntrack confirm ip input nft ip forward conntrack ip output nat ip output nft ip output nft ip postrouting nat ip postrouting conntrack confirm ip postrouting nft bridge forward nft bridge postrouting nft netdev egress checksum"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("stages %q, want %q", got, want)
	}
	out := runCLI(t, 10*time.Second, "stats", "--control", d.control)
	if !strings.Contains(out, "pipeline stages (options.profile):") || !strings.Contains(out, "ns/packet") {
		t.Errorf("the stats table shows no stage costs:\n%s", out)
	}
}
