package tests

import (
	"context"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// runCLI runs the xdpfwd binary with args and returns its combined output;
// the test fails if it exits non-zero.
func runCLI(t *testing.T, timeout time.Duration, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, xdpfwdBinary(t), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("xdpfwd %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// assertNamespacesGone fails t if a namespace whose name starts with prefix
// still exists.
func assertNamespacesGone(t *testing.T, prefix string) {
	t.Helper()
	out, err := exec.Command("ip", "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatalf("ip netns list: %v\n%s", err, out)
	}
	if strings.Contains(string(out), prefix) {
		t.Errorf("namespaces of %s left behind:\n%s", prefix, out)
	}
}

// The README's first command ends in `xdpfwd demo`: it must forward
// everything it sends and leave nothing behind.
func TestDemo(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	out := runCLI(t, 3*time.Minute, "demo", "--tcp-mib", "16", "--udp", "2000")
	for _, want := range []string{
		"3 packets transmitted, 3 received, 0% packet loss",
		"sent 2000, arrived intact 2000, corrupt 0",
		"SHA-256 equal",
		"bridge br0 [p1 p2 p3]",
		"== tearing down",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, " 0% packet loss"); n != 3 {
		t.Errorf("%d pings without loss, want 3:\n%s", n, out)
	}
	ns := regexp.MustCompile(`forwarding in namespace (xdpdemo-[0-9a-f]+)-sw`).FindStringSubmatch(out)
	if ns == nil {
		t.Fatalf("demo did not name its namespace:\n%s", out)
	}
	assertNamespacesGone(t, ns[1])
}

// xdpfwd bench runs both paths, at peak and at equal load, prints a row
// for each with traffic delivered, and cleans up. Speed is not asserted.
func TestBenchRuns(t *testing.T) {
	requireRoot(t)
	out := runCLI(t, 3*time.Minute, "bench", "--duration", "1s")
	rows := regexp.MustCompile(`(?m)^(kernel bridge|xdpfwd)\s+(\d+)\s+(\d+)\s+[\d.]+s\s+[\d.]+$`).FindAllStringSubmatch(out, -1)
	if len(rows) != 4 {
		t.Fatalf("want 4 result rows (2 paths x 2 loads), got %d:\n%s", len(rows), out)
	}
	for _, r := range rows {
		if d, _ := strconv.Atoi(r[3]); d == 0 {
			t.Errorf("%s delivered nothing:\n%s", r[1], out)
		}
	}
	if !strings.Contains(out, "xdpfwd / kernel: delivered pps x") {
		t.Errorf("no ratio line:\n%s", out)
	}
	made := regexp.MustCompile(`namespaces (xdpbench-[0-9a-f]+)-\*`).FindAllStringSubmatch(out, -1)
	if len(made) != 4 {
		t.Fatalf("bench named %d topologies, want 4:\n%s", len(made), out)
	}
	for _, m := range made {
		assertNamespacesGone(t, m[1])
	}
}
