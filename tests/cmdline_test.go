package tests

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/xdpfwd/xdpfwd/internal/topo"
)

// TestStatsTable checks the table `xdpfwd stats` prints for a person: a
// row per port with its mode, and a line per bridge with its ports.
func TestStatsTable(t *testing.T) {
	t.Parallel()
	s := star(t, topo.VethOptions{}, topo.VethOptions{}, topo.VethOptions{})
	d := runDaemon(t, s.Switch, bridgeConfig(ports(s)...))
	ping(t, s.Hosts[0], s.Hosts[1].IP)

	out := runCLI(t, 10*time.Second, "stats", "--control", d.control)
	lines := strings.Split(out, "\n")
	if !strings.HasPrefix(out, "xdpfwd ") || !strings.Contains(lines[0], "1 worker(s)") {
		t.Errorf("first line %q, want the version and 1 worker(s)", lines[0])
	}
	for _, p := range ports(s) {
		row := ""
		for _, l := range lines {
			if f := strings.Fields(l); row == "" && len(f) > 1 && f[0] == p {
				row = l
			}
		}
		// veth supports native XDP; AF_XDP zero-copy it does not.
		if !strings.Contains(row, " native/copy ") {
			t.Errorf("no row for port %s showing native/copy in:\n%s", p, out)
		}
	}
	if !strings.Contains(out, "bridge br0 [p1 p2 p3]: forwarded ") {
		t.Errorf("no line for bridge br0 [p1 p2 p3] in:\n%s", out)
	}
}

// TestCLIErrors checks what a user sees for a daemon that is not running,
// the version, and an unknown command.
func TestCLIErrors(t *testing.T) {
	t.Parallel()
	bin := xdpfwdBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	out, err := exec.CommandContext(ctx, bin, "stats", "--control", "/nonexistent").CombinedOutput()
	if code := exitCode(t, err); code == 0 || !strings.Contains(string(out), "is `xdpfwd run` running?") {
		t.Errorf("xdpfwd stats --control /nonexistent: exit %d, want non-zero and a hint that xdpfwd run is not running:\n%s", code, out)
	}

	if out := runCLI(t, 10*time.Second, "version"); !strings.HasPrefix(out, "xdpfwd ") {
		t.Errorf("xdpfwd version printed %q, want it to start with \"xdpfwd \"", out)
	}

	out, err = exec.CommandContext(ctx, bin, "frobnicate").CombinedOutput()
	if code := exitCode(t, err); code != 2 || !strings.Contains(string(out), "usage: xdpfwd") || !strings.Contains(string(out), "frobnicate") {
		t.Errorf("xdpfwd frobnicate: exit %d, want 2 with the usage naming the unknown command:\n%s", code, out)
	}
}

// exitCode returns the exit status of a finished command from its error.
func exitCode(t *testing.T, err error) int {
	t.Helper()
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("run xdpfwd: %v", err)
	}
	return ee.ExitCode()
}
