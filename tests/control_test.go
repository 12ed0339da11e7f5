package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/xdpfwd/xdpfwd/internal/control"
	"github.com/xdpfwd/xdpfwd/internal/topo"
)

// fdbListing is one bridge of `xdpfwd fdb show --json`.
type fdbListing struct {
	Bridge    string             `json:"bridge"`
	Entries   []control.FDBEntry `json:"entries"`
	Truncated bool               `json:"truncated"`
	Slots     int                `json:"slots"`
}

// fdbShow runs `xdpfwd fdb show --json args...` against the daemon and
// returns its listings, failing the test on error.
func (d *daemon) fdbShow(args ...string) []fdbListing {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, xdpfwdBinary(d.t), append([]string{"fdb", "show", "--control", d.control, "--json"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		d.t.Fatalf("xdpfwd fdb show %s: %v: %s\ndaemon stderr:\n%s", strings.Join(args, " "), err, stderr.Bytes(), d.stderr.String())
	}
	var ls []fdbListing
	if err := json.Unmarshal(out, &ls); err != nil {
		d.t.Fatalf("decode xdpfwd fdb show --json output %q: %v", out, err)
	}
	return ls
}

// fdb returns every entry of bridge name's FDB (`xdpfwd fdb show --bridge
// name --limit 0`).
func (d *daemon) fdb(name string) fdbListing {
	d.t.Helper()
	ls := d.fdbShow("--bridge", name, "--limit", "0")
	if len(ls) != 1 || ls[0].Bridge != name || ls[0].Truncated {
		d.t.Fatalf("xdpfwd fdb show --bridge %s --limit 0: %+v", name, ls)
	}
	return ls[0]
}

// controlIsConfig, as launch's control, makes --control the config file.
const controlIsConfig = "=config"

// launch starts `xdpfwd run --config FILE --control control` in sw with
// config written to a fresh directory, and stderr to stderr (nil: the
// daemon's buffer). A control of "" is a socket in that directory. It does
// not wait for the daemon to be ready; the process is stopped when t ends.
func launch(t *testing.T, sw *topo.Namespace, config, control string, stderr *os.File) *daemon {
	t.Helper()
	// A short directory: the control socket's path must fit sun_path.
	dir, err := os.MkdirTemp("", "xft-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	d := &daemon{t: t, sw: sw, config: filepath.Join(dir, "xdpfwd.yaml"), control: control, done: make(chan struct{})}
	switch d.control {
	case "":
		d.control = filepath.Join(dir, "ctl.sock")
	case controlIsConfig:
		d.control = d.config
	}
	if err := os.WriteFile(d.config, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	d.cmd = sw.Command(context.Background(), xdpfwdBinary(t), "run", "--config", d.config, "--control", d.control)
	d.cmd.Stdout = &d.stdout
	d.cmd.Stderr = &d.stderr
	if stderr != nil {
		d.cmd.Stderr = stderr
	}
	d.cmd.WaitDelay = 2 * time.Second
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("start xdpfwd run: %v", err)
	}
	go func() {
		_ = d.cmd.Wait()
		close(d.done)
	}()
	t.Cleanup(d.stop)
	return d
}

// TestControlPathNotSocket points --control at a regular file, the config
// file itself and an empty directory: the daemon must refuse to start,
// naming the path and what it is, and leave it as it was.
func TestControlPathNotSocket(t *testing.T) {
	t.Parallel()
	s := star(t, topo.VethOptions{}, topo.VethOptions{})
	dir := t.TempDir()
	file := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(file, []byte("keep me\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	emptyDir := filepath.Join(dir, "empty")
	if err := os.Mkdir(emptyDir, 0o700); err != nil {
		t.Fatal(err)
	}
	config := bridgeConfig(ports(s)...)
	for _, c := range []struct {
		name, path, what string
	}{
		{"regular file", file, "a regular file"},
		{"directory", emptyDir, "a directory"},
		{"config file", "", "a regular file"}, // the daemon's own config
	} {
		t.Run(c.name, func(t *testing.T) {
			path := c.path
			if path == "" {
				path = controlIsConfig
			}
			d := launch(t, s.Switch, config, path, nil)
			before, err := os.Lstat(d.control)
			if err != nil {
				t.Fatal(err)
			}
			stderr := assertFailed(t, d)
			if !strings.Contains(stderr, d.control) || !strings.Contains(stderr, c.what+", not a socket") {
				t.Errorf("stderr does not name %s as %s, not a socket:\n%s", d.control, c.what, stderr)
			}
			after, err := os.Lstat(d.control)
			if err != nil || !os.SameFile(before, after) {
				t.Errorf("%s at %s was removed or replaced: %v", c.name, d.control, err)
			}
			assertNoXDP(t, s.Switch, ports(s)...)
			if b, err := os.ReadFile(d.config); err != nil || string(b) != config {
				t.Errorf("config file %s after the daemon: %q, %v; want it untouched", d.config, b, err)
			}
		})
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != "keep me\n" {
		t.Errorf("the regular file after the daemons: %q, %v", b, err)
	}
}

// TestControlSocketInUse starts a second daemon on the control socket of a
// running one: it must refuse, and the first keeps its socket.
func TestControlSocketInUse(t *testing.T) {
	t.Parallel()
	s := star(t, topo.VethOptions{}, topo.VethOptions{}, topo.VethOptions{})
	first := runDaemon(t, s.Switch, bridgeConfig("p1", "p2"))
	second := launch(t, s.Switch, bridgeConfig("p3"), first.control, nil)
	stderr := assertFailed(t, second)
	if !strings.Contains(stderr, "another xdpfwd is serving "+first.control) {
		t.Errorf("second daemon's stderr:\n%s", stderr)
	}
	assertNoXDP(t, s.Switch, "p3")
	first.stats()
}

// TestIdleControlClientExit connects a control client that sends nothing,
// then stops the daemon: it must exit at once, not when the client's 10 s
// deadline runs out.
func TestIdleControlClientExit(t *testing.T) {
	t.Parallel()
	s := star(t, topo.VethOptions{}, topo.VethOptions{})
	d := runDaemon(t, s.Switch, bridgeConfig(ports(s)...))
	c, err := net.Dial("unix", d.control)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	time.Sleep(200 * time.Millisecond) // accepted, waiting for the request
	start := time.Now()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// Not a speed test: 5 s is far above a normal exit and far below the
	// 10 s an idle client held it before.
	st := d.waitExit(5 * time.Second)
	t.Logf("exited %v after SIGTERM with an idle control client", time.Since(start).Round(time.Millisecond))
	if !st.Exited() || st.ExitCode() != 0 {
		t.Errorf("%v, want exit status 0\nstderr:\n%s", st, d.stderr.String())
	}
	assertNoXDP(t, s.Switch, ports(s)...)
}

// TestNonRootStats runs `xdpfwd stats` as uid 65534 (nobody) against a
// running daemon: refused, even with the socket's mode loosened by hand.
func TestNonRootStats(t *testing.T) {
	t.Parallel()
	s := star(t, topo.VethOptions{}, topo.VethOptions{})
	d := runDaemon(t, s.Switch, bridgeConfig(ports(s)...))
	// nobody may enter the socket's directory and run a copy of the binary.
	bindir, err := os.MkdirTemp("", "xft-bin-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(bindir) })
	bin := filepath.Join(bindir, "xdpfwd")
	copyExecutable(t, xdpfwdBinary(t), bin)
	for _, p := range []string{bindir, filepath.Dir(d.control)} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	asNobody := func() string {
		t.Helper()
		cmd := exec.Command(bin, "stats", "--control", d.control)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Fatalf("xdpfwd stats as uid 65534 succeeded:\n%s", out)
		}
		return string(out)
	}
	if out := asNobody(); !strings.Contains(out, "permission denied") {
		t.Errorf("xdpfwd stats as uid 65534: %s; want permission denied", out)
	}
	if err := os.Chmod(d.control, 0o666); err != nil {
		t.Fatal(err)
	}
	if out := asNobody(); !strings.Contains(out, "permission denied: the control socket is for root only") {
		t.Errorf("xdpfwd stats as uid 65534 on a 0666 socket: %s; want the daemon's refusal", out)
	}
	d.stats()
}

func copyExecutable(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

// TestFDBShow lists the FDB with `xdpfwd fdb show`: every host's MAC on its
// port; --limit cuts the listing short and says so; stats carry the
// FDB's size, not its entries.
func TestFDBShow(t *testing.T) {
	t.Parallel()
	s := star(t, topo.VethOptions{}, topo.VethOptions{}, topo.VethOptions{})
	d := runDaemon(t, s.Switch, bridgeConfig(ports(s)...))
	for _, h := range s.Hosts[1:] {
		ping(t, s.Hosts[0], h.IP)
	}
	br := d.fdb("br0")
	assertLearned(t, br, s.Hosts...)
	for _, e := range br.Entries {
		if e.VLAN != 0 || e.Static {
			t.Errorf("entry %+v on a VLAN-unaware bridge without static entries", e)
		}
	}

	ls := d.fdbShow("--limit", "1")
	if len(ls) != 1 || len(ls[0].Entries) != 1 || !ls[0].Truncated {
		t.Errorf("fdb show --limit 1: %+v; want br0 with one entry, truncated", ls)
	}
	out := runCLI(t, 10*time.Second, "fdb", "show", "--control", d.control, "--limit", "2")
	if !strings.Contains(out, "bridge br0: 2 entries listed") || !strings.Contains(out, "not listed (--limit 2); use --limit N for more, --limit 0 for all") {
		t.Errorf("fdb show --limit 2:\n%s", out)
	}
	out = runCLI(t, 10*time.Second, "fdb", "show", "--control", d.control)
	for _, h := range s.Hosts {
		if !strings.Contains(out, h.HWAddr.String()) {
			t.Errorf("fdb show lacks %s:\n%s", h.HWAddr, out)
		}
	}
	if strings.Contains(out, "not listed") {
		t.Errorf("fdb show under the default limit says entries are missing:\n%s", out)
	}

	cmd := exec.Command(xdpfwdBinary(t), "fdb", "show", "--control", d.control, "--bridge", "nosuch")
	if b, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(b), `no bridge "nosuch" (bridges: br0)`) {
		t.Errorf("fdb show --bridge nosuch: %v\n%s", err, b)
	}

	// Stats: the FDB's size, no listing.
	b := bridgeOf(t, d.stats(), "br0")
	if b.FDBEntries < len(s.Hosts) {
		t.Errorf("stats: br0 fdb_entries %d, want >= %d", b.FDBEntries, len(s.Hosts))
	}
	raw := runCLI(t, 10*time.Second, "stats", "--control", d.control, "--json")
	if strings.Contains(raw, s.Hosts[0].HWAddr.String()) {
		t.Errorf("xdpfwd stats --json lists FDB entries:\n%s", raw)
	}
}

// TestScrapeDuringShutdown scrapes /metrics and calls stats in a loop
// while the daemon stops: it must exit 0 (with XDPFWD_TEST_RACE, a race
// detected in the daemon exits 66) without a panic, and detach
// everything.
func TestScrapeDuringShutdown(t *testing.T) {
	t.Parallel()
	s := star(t, topo.VethOptions{}, topo.VethOptions{})
	const addr = "127.0.0.1:9464"
	d := runDaemon(t, s.Switch, bridgeConfig(ports(s)...)+"options:\n  metrics: "+addr+"\n")
	ping(t, s.Hosts[0], s.Hosts[1].IP)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var scrapes, calls atomic.Int64
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = s.Switch.Do(func() error {
				for {
					select {
					case <-stop:
						return nil
					default:
					}
					if scrapeOnce(addr) == nil {
						scrapes.Add(1)
					}
				}
			})
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if control.Call(d.control, "stats", nil, &control.Stats{}) == nil {
				calls.Add(1)
			}
		}
	}()
	time.Sleep(500 * time.Millisecond)
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	st := d.waitExit(10 * time.Second)
	close(stop)
	wg.Wait()
	t.Logf("%d scrapes and %d stats calls answered", scrapes.Load(), calls.Load())
	stderr := d.stderr.String()
	if !st.Exited() || st.ExitCode() != 0 || strings.Contains(stderr, "panic") || strings.Contains(stderr, "DATA RACE") {
		t.Errorf("%v, want exit status 0 and no panic or race\nstderr:\n%s", st, stderr)
	}
	if scrapes.Load() == 0 || calls.Load() == 0 {
		t.Errorf("%d scrapes and %d stats calls answered before the stop; the test did not race them", scrapes.Load(), calls.Load())
	}
	assertNoXDP(t, s.Switch, ports(s)...)
}

// scrapeOnce fetches /metrics once from addr in the calling thread's
// namespace.
func scrapeOnce(addr string) error {
	_, err := fetchMetrics(addr, time.Second, 5*time.Second)
	return err
}

// TestSIGHUPReloads sends SIGHUP to a running daemon without a ruleset:
// it reloads (no rules) and goes on forwarding with XDP attached.
func TestSIGHUPReloads(t *testing.T) {
	t.Parallel()
	s := star(t, topo.VethOptions{}, topo.VethOptions{})
	d := runDaemon(t, s.Switch, bridgeConfig(ports(s)...))
	ping(t, s.Hosts[0], s.Hosts[1].IP)
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	const want = `msg="SIGHUP: reloaded" rules=0`
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(d.stderr.String(), want) {
		if d.exited() {
			t.Fatalf("SIGHUP ended the daemon: %v\nstderr:\n%s", d.cmd.ProcessState, d.stderr.String())
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the log 5s after SIGHUP:\n%s", want, d.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if d.exited() {
		t.Fatalf("SIGHUP ended the daemon: %v", d.cmd.ProcessState)
	}
	assertXDP(t, s.Switch, ports(s)...)
	ping(t, s.Hosts[0], s.Hosts[1].IP)
	udpIntact(t, s.Hosts[1], s.Hosts[0], 100, 71)
	d.stats()
}

// TestClosedStderr runs the daemon with stderr a pipe nobody reads (its
// read end closed): writing its log must not kill it (SIGPIPE). It
// forwards, and SIGTERM still stops it cleanly.
func TestClosedStderr(t *testing.T) {
	t.Parallel()
	s := star(t, topo.VethOptions{}, topo.VethOptions{})
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	d := launch(t, s.Switch, bridgeConfig(ports(s)...), "", w)
	w.Close() // the daemon holds the only write end
	d.waitReady()
	ping(t, s.Hosts[0], s.Hosts[1].IP)
	assertXDP(t, s.Switch, ports(s)...)
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	st := d.waitExit(10 * time.Second)
	if !st.Exited() || st.ExitCode() != 0 {
		t.Errorf("%v after SIGTERM, want exit status 0 (its stderr is closed: no log to show)", st)
	}
	assertNoXDP(t, s.Switch, ports(s)...)
	if _, err := os.Stat(d.control); err == nil {
		t.Errorf("control socket %s left behind", d.control)
	}
}

// TestMetricsBeyondLoopback serves metrics on every address of the
// daemon's (the test's own) namespace: served, with a warning in the log.
func TestMetricsBeyondLoopback(t *testing.T) {
	t.Parallel()
	s := star(t, topo.VethOptions{}, topo.VethOptions{})
	d := runDaemon(t, s.Switch, bridgeConfig(ports(s)...)+"options:\n  metrics: 0.0.0.0:9464\n")
	if !strings.Contains(d.stderr.String(), "metrics are served beyond loopback") {
		t.Errorf("no warning for metrics on 0.0.0.0:\n%s", d.stderr.String())
	}
	body := scrape(t, s.Switch, "127.0.0.1:9464")
	if !strings.Contains(body, `xdpfwd_bridge_fdb_entries{bridge="br0"}`) {
		t.Errorf("metrics on 0.0.0.0 not served:\n%s", body)
	}
}
