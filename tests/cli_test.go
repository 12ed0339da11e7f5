package tests

import (
	"bufio"
	"context"
	"math"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// runCLI runs the xdpfwd binary with args and returns its combined output;
// the test fails if it exits non-zero.
func runCLI(t *testing.T, timeout time.Duration, args ...string) string {
	t.Helper()
	out, err := runCLIErr(t, timeout, args...)
	if err != nil {
		t.Fatalf("xdpfwd %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// runCLIErr runs the xdpfwd binary with args and returns its combined
// output and error.
func runCLIErr(t *testing.T, timeout time.Duration, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, xdpfwdBinary(t), args...).CombinedOutput()
	return string(out), err
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
		"From 10.77.0.254 icmp_seq=1 Time to live exceeded",
		"sent 500, arrived intact 500, corrupt 0",
		"10.78.0.0/24 dev p4 proto kernel scope link src 10.78.0.1",
		"10.78.0.2 dev p4 lladdr",
		"for the bridge's own address: up to its router interface", // the traced datagram
		"→ sent on p4",
		"== tearing down",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, " 0% packet loss"); n != 4 {
		t.Errorf("%d pings without loss, want 4:\n%s", n, out)
	}
	ns := regexp.MustCompile(`forwarding in namespace (xdpdemo-[0-9a-f]+)-sw`).FindStringSubmatch(out)
	if ns == nil {
		t.Fatalf("demo did not name its namespace:\n%s", out)
	}
	assertNamespacesGone(t, ns[1])
}

// TestDemoReaderGone: a demo whose reader goes away (xdpfwd demo | head)
// still tears its namespaces down, rather than dying of SIGPIPE with
// them in place.
func TestDemoReaderGone(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, xdpfwdBinary(t), "demo", "--tcp-mib", "4", "--udp", "200")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var prefix string
	re := regexp.MustCompile(`forwarding in namespace (xdpdemo-[0-9a-f]+)-sw`)
	sc := bufio.NewScanner(out)
	for prefix == "" && sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			prefix = m[1]
		}
	}
	out.Close()    // the reader goes
	_ = cmd.Wait() // its writes failed: it may exit non-zero, but after tearing down
	if prefix == "" {
		t.Fatal("the demo did not name its namespace")
	}
	t.Cleanup(func() { deleteNamespaces(prefix) }) // what a failing demo left
	assertNamespacesGone(t, prefix)
}

// TestDemoKilledStopsDaemon: a demo killed outright (SIGKILL: no
// teardown) takes its daemon with it: the daemon gets SIGTERM and
// detaches, rather than living on in the demo's namespace with its XDP
// programs attached.
func TestDemoKilledStopsDaemon(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, xdpfwdBinary(t), "demo", "--tcp-mib", "4", "--udp", "200")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var prefix string
	re := regexp.MustCompile(`forwarding in namespace (xdpdemo-[0-9a-f]+)-sw`)
	for sc := bufio.NewScanner(out); prefix == "" && sc.Scan(); {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			prefix = m[1]
		}
	}
	if prefix != "" {
		t.Cleanup(func() { deleteNamespaces(prefix) }) // the killed demo tears nothing down
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if prefix == "" {
		t.Fatal("the demo did not name its namespace")
	}
	var pids string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		b, _ := exec.Command("ip", "netns", "pids", prefix+"-sw").Output()
		if pids = strings.TrimSpace(string(b)); pids == "" {
			return
		}
	}
	t.Fatalf("processes still in %s-sw 10 s after the demo was killed: %s", prefix, pids)
}

// deleteNamespaces kills the processes left in the namespaces whose
// names start with prefix (a daemon whose demo died; its XDP links go
// with it) and deletes the namespaces.
func deleteNamespaces(prefix string) {
	out, _ := exec.Command("ip", "netns", "list").Output()
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], prefix) {
			continue
		}
		pids, _ := exec.Command("ip", "netns", "pids", f[0]).Output()
		for _, p := range strings.Fields(string(pids)) {
			if pid, err := strconv.Atoi(p); err == nil {
				_ = unix.Kill(pid, unix.SIGKILL)
			}
		}
		_ = exec.Command("ip", "netns", "del", f[0]).Run()
	}
}

// xdpfwd bench runs both paths at peak, then both paths at paced rates
// (shares of each path's peak), prints the peak table and the loss table,
// and cleans up. Speed and loss are not asserted; that the numbers add up
// is: delivered never exceeds offered, loss and lost agree with them, and
// no paced run offered more than its target.
func TestBenchRuns(t *testing.T) {
	requireRoot(t)
	out := runCLI(t, 4*time.Minute, "bench", "--duration", "1s", "--paced", "25,90")
	peak := regexp.MustCompile(`(?m)^(kernel bridge|xdpfwd)\s+(\d+)\s+(\d+)\s+(-?[\d.]+)\s+[\d.]+s\s+[\d.]+$`).FindAllStringSubmatch(out, -1)
	if len(peak) != 2 {
		t.Fatalf("want 2 peak rows (one per path), got %d:\n%s", len(peak), out)
	}
	peakPPS := map[string]float64{}
	for _, r := range peak {
		offered, delivered := atof(t, r[2]), atof(t, r[3])
		if delivered == 0 {
			t.Errorf("%s delivered nothing at peak:\n%s", r[1], out)
		}
		if delivered > offered {
			t.Errorf("%s at peak: delivered %v pps > offered %v pps", r[1], delivered, offered)
		}
		peakPPS[r[1]] = delivered
	}
	if !strings.Contains(out, "xdpfwd / kernel: delivered pps x") {
		t.Errorf("no ratio line:\n%s", out)
	}

	// The loss table: one row per rate, 2 percentages x 2 paths' peaks,
	// each with both paths side by side.
	if !strings.Contains(out, "loss at paced rates (1s per run):") {
		t.Fatalf("no loss table:\n%s", out)
	}
	side := `(kernel bridge|xdpfwd)\s+(\d+)\s+(\d+)\s+([\d.]+)\s+(-?[\d.]+)\s+(-?\d+)\s+([\d.]+)`
	rows := regexp.MustCompile(`(?m)^(\d+)% (kernel|xdpfwd) peak\s+(\d+) \| `+side+` \| `+side+`$`).FindAllStringSubmatch(out, -1)
	if len(rows) != 4 {
		t.Fatalf("want 4 loss-table rows (2 percentages x 2 peaks), got %d:\n%s", len(rows), out)
	}
	seen := map[string]bool{}
	prevTarget := 0.0
	for _, r := range rows {
		pct, of, target := atof(t, r[1]), r[2], atof(t, r[3])
		seen[r[1]+" "+of] = true
		name := map[string]string{"kernel": "kernel bridge", "xdpfwd": "xdpfwd"}[of]
		if want := pct / 100 * peakPPS[name]; target < want-1 || target > want+1 {
			t.Errorf("row %q: target %v pps, want %v%% of %s's peak %v", r[0], target, pct, name, peakPPS[name])
		}
		if target < prevTarget {
			t.Errorf("rows not in rising order of rate: %v after %v", target, prevTarget)
		}
		prevTarget = target
		for i, path := range []string{"kernel bridge", "xdpfwd"} {
			f := r[4+7*i : 4+7*(i+1)]
			if f[0] != path {
				t.Fatalf("row %q: column %d is %q, want %q", r[0], i, f[0], path)
			}
			offered, delivered, ratio, loss, lost := atof(t, f[1]), atof(t, f[2]), atof(t, f[3]), atof(t, f[4]), atof(t, f[5])
			if delivered > offered || lost < 0 || loss < 0 {
				t.Errorf("row %q, %s: delivered %v > offered %v (lost %v, loss %v%%): counting is wrong", r[0], path, delivered, offered, lost, loss)
			}
			// A path may keep the generator from reaching the target (the
			// kernel bridge forwards on the sender's core), but pacing
			// must never overshoot it.
			if offered > 1.02*target+100 {
				t.Errorf("row %q, %s: offered %v pps for a target of %v: pacing overshoots", r[0], path, offered, target)
			}
			if offered > 0 && math.Abs(ratio-delivered/offered) > 0.01 {
				t.Errorf("row %q, %s: delivered/offered %v, but %v / %v = %v", r[0], path, ratio, delivered, offered, delivered/offered)
			}
			if math.Abs(loss-100*(1-ratio)) > 0.01 {
				t.Errorf("row %q, %s: loss %v%% does not match delivered/offered %v", r[0], path, loss, ratio)
			}
		}
	}
	for _, k := range []string{"25 kernel", "90 kernel", "25 xdpfwd", "90 xdpfwd"} {
		if !seen[k] {
			t.Errorf("no loss-table row for %s peak:\n%s", k, out)
		}
	}
	made := regexp.MustCompile(`namespaces (xdpbench-[0-9a-f]+)-\*`).FindAllStringSubmatch(out, -1)
	if len(made) != 2+4*2 {
		t.Fatalf("bench named %d topologies, want %d (2 peak runs, 8 paced runs):\n%s", len(made), 2+4*2, out)
	}
	for _, m := range made {
		assertNamespacesGone(t, m[1])
	}
}

func atof(t *testing.T, s string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("%q is not a number: %v", s, err)
	}
	return v
}
