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
	if got := strings.Join(names, " "); got != "parse bridge checksum" {
		t.Errorf("stages %q, want parse bridge checksum", got)
	}
	out := runCLI(t, 10*time.Second, "stats", "--control", d.control)
	if !strings.Contains(out, "pipeline stages (options.profile):") || !strings.Contains(out, "ns/packet") {
		t.Errorf("the stats table shows no stage costs:\n%s", out)
	}
}
