package tests

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/xdpfwd/xdpfwd/internal/control"
	"github.com/xdpfwd/xdpfwd/internal/topo"
	"github.com/xdpfwd/xdpfwd/internal/topotest"
	"github.com/xdpfwd/xdpfwd/internal/traffic"
)

// star builds the standard topology (switch namespace plus one host per
// element of hosts) with a cleanup that removes it.
func star(t *testing.T, hosts ...topo.VethOptions) *topo.Star {
	t.Helper()
	tp := topotest.New(t, "xft")
	s, err := tp.Star(hosts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// bridgeConfig is a config with every given port on one bridge br0.
func bridgeConfig(ports ...string) string {
	var b strings.Builder
	b.WriteString("ports:\n")
	for _, p := range ports {
		fmt.Fprintf(&b, "  - interface: %s\n    xdp_mode: auto\n", p)
	}
	fmt.Fprintf(&b, "bridges:\n  - name: br0\n    ports: [%s]\n    ageing_time: 300s\n", strings.Join(ports, ", "))
	return b.String()
}

// syncBuffer is a bytes.Buffer safe for a writer and a concurrent reader.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// daemon is an `xdpfwd run` process in a switch namespace.
type daemon struct {
	t       *testing.T
	sw      *topo.Namespace
	config  string // path of the config file
	control string // path of the control socket
	cmd     *exec.Cmd
	stderr  syncBuffer
	stdout  syncBuffer
	done    chan struct{} // closed when the process has been reaped
}

// startDaemon writes config to a file and starts `xdpfwd run` in sw without
// waiting for it to be ready. The process is stopped when t ends.
func startDaemon(t *testing.T, sw *topo.Namespace, config string) *daemon {
	t.Helper()
	return launch(t, sw, config, "", nil)
}

// runDaemon starts `xdpfwd run` and waits until its control socket answers.
func runDaemon(t *testing.T, sw *topo.Namespace, config string) *daemon {
	t.Helper()
	d := startDaemon(t, sw, config)
	d.waitReady()
	return d
}

// stop ends the process if it still runs: SIGTERM, then SIGKILL. A daemon
// stopped by SIGTERM must exit 0: it detached everything (and, built with
// XDPFWD_TEST_RACE, saw no data race).
func (d *daemon) stop() {
	if d.exited() {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
		if code := d.cmd.ProcessState.ExitCode(); code != 0 {
			d.t.Errorf("xdpfwd exited %d after SIGTERM, want 0\nstderr:\n%s", code, d.stderr.String())
		}
		return
	case <-time.After(10 * time.Second):
	}
	d.t.Errorf("xdpfwd did not exit within 10s of SIGTERM; killing it\nstderr:\n%s", d.stderr.String())
	_ = d.cmd.Process.Kill()
	<-d.done
}

func (d *daemon) exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// waitExit waits up to timeout for the process to end and returns its exit
// status; it fails the test if the process is still running.
func (d *daemon) waitExit(timeout time.Duration) *os.ProcessState {
	d.t.Helper()
	select {
	case <-d.done:
		return d.cmd.ProcessState
	case <-time.After(timeout):
		d.t.Fatalf("xdpfwd still running after %v\nstderr:\n%s", timeout, d.stderr.String())
		return nil
	}
}

// waitReady polls `xdpfwd stats` until it succeeds, for at most 10 s.
func (d *daemon) waitReady() {
	d.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var lastErr error
	for time.Now().Before(deadline) {
		if d.exited() {
			d.t.Fatalf("xdpfwd run exited before it was ready (%v)\nstderr:\n%s", d.cmd.ProcessState, d.stderr.String())
		}
		if _, lastErr = d.statsErr(); lastErr == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	d.t.Fatalf("xdpfwd not ready after 10s: last stats error: %v\ndaemon stderr:\n%s", lastErr, d.stderr.String())
}

// portOf returns port name of st, failing t if stats lists no such port.
func portOf(t *testing.T, st *control.Stats, name string) control.PortStats {
	t.Helper()
	for _, p := range st.Ports {
		if p.Name == name {
			return p
		}
	}
	t.Fatalf("xdpfwd stats lists no port %s: %+v", name, st.Ports)
	return control.PortStats{}
}

// bridgeOf returns bridge name of st, failing t if stats lists no such
// bridge.
func bridgeOf(t *testing.T, st *control.Stats, name string) control.BridgeStats {
	t.Helper()
	for _, b := range st.Bridges {
		if b.Name == name {
			return b
		}
	}
	t.Fatalf("xdpfwd stats lists no bridge %s: %+v", name, st.Bridges)
	return control.BridgeStats{}
}

// fdbPorts returns the entries the FDB listing b (see daemon.fdb) has for
// mac, failing t on an entry with a malformed MAC.
func fdbPorts(t *testing.T, b fdbListing, mac net.HardwareAddr) []control.FDBEntry {
	t.Helper()
	var found []control.FDBEntry
	for _, e := range b.Entries {
		m, err := net.ParseMAC(e.MAC)
		if err != nil {
			t.Fatalf("bridge %s: FDB entry with malformed MAC %q: %v", b.Bridge, e.MAC, err)
		}
		if bytes.Equal(m, mac) {
			found = append(found, e)
		}
	}
	return found
}

// statsErr runs `xdpfwd stats --json` against the daemon's control socket.
func (d *daemon) statsErr() (*control.Stats, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cmd := d.sw.Command(ctx, xdpfwdBinary(d.t), "stats", "--control", d.control, "--json")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("xdpfwd stats: %w: %s", err, bytes.TrimSpace(stderr.Bytes()))
	}
	var s control.Stats
	if err := json.Unmarshal(out, &s); err != nil {
		return nil, fmt.Errorf("decode xdpfwd stats --json output %q: %w", out, err)
	}
	return &s, nil
}

// stats returns the daemon's counters, failing the test on error.
func (d *daemon) stats() *control.Stats {
	d.t.Helper()
	s, err := d.statsErr()
	if err != nil {
		d.t.Fatalf("%v\ndaemon stderr:\n%s", err, d.stderr.String())
	}
	return s
}

// bridgeCounters returns forwarded and flooded of bridge name.
func (d *daemon) bridgeCounters(name string) (forwarded, flooded uint64) {
	d.t.Helper()
	b := bridgeOf(d.t, d.stats(), name)
	return b.Forwarded, b.Flooded
}

// ping runs `ping -c 3 -W 1 [extra...] dst` in h and fails t unless every
// echo is answered.
func ping(t *testing.T, h *topo.Host, dst netip.Addr, extra ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args := append([]string{"-n", "-c", "3", "-W", "1"}, extra...)
	args = append(args, dst.String())
	out, err := h.Command(ctx, "ping", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ping %s from %s: %v\n%s", strings.Join(args, " "), h.Name(), err, out)
	}
	if !strings.Contains(string(out), ", 0% packet loss") {
		t.Fatalf("ping %s from %s lost packets:\n%s", strings.Join(args, " "), h.Name(), out)
	}
}

// run runs a command in ns and fails t if it fails.
func run(t *testing.T, ns *topo.Namespace, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := ns.Command(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s in %s: %v\n%s", name, strings.Join(args, " "), ns.Name(), err, out)
	}
	return string(out)
}

// csumErrors sums every InCsumErrors counter (IP, ICMP, TCP, UDP, UDP-Lite)
// of /proc/net/snmp in ns.
func csumErrors(t *testing.T, ns *topo.Namespace) uint64 {
	t.Helper()
	out := run(t, ns, "cat", "/proc/net/snmp")
	var total uint64
	found := false
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		names := strings.Fields(sc.Text())
		if !sc.Scan() {
			break
		}
		values := strings.Fields(sc.Text())
		if len(names) != len(values) || len(names) == 0 || names[0] != values[0] {
			t.Fatalf("malformed /proc/net/snmp in %s:\n%s", ns.Name(), out)
		}
		for i, n := range names {
			if n == "InCsumErrors" {
				v, err := strconv.ParseUint(values[i], 10, 64)
				if err != nil {
					t.Fatalf("%s InCsumErrors %q in %s: %v", names[0], values[i], ns.Name(), err)
				}
				total += v
				found = true
			}
		}
	}
	if !found {
		t.Fatalf("no InCsumErrors counter in /proc/net/snmp of %s:\n%s", ns.Name(), out)
	}
	return total
}

// rxPackets returns the rx_packets counter of ifname in ns.
func rxPackets(t *testing.T, ns *topo.Namespace, ifname string) uint64 {
	t.Helper()
	rx, _, err := ns.LinkStats(ifname)
	if err != nil {
		t.Fatal(err)
	}
	return rx
}

// udpIntact sends n datagrams of random length (8 to 1472 bytes) from src
// to dst with traffic.UDP and fails t unless every one arrives intact.
func udpIntact(t *testing.T, src, dst *topo.Host, n int, seed uint64) {
	t.Helper()
	res, err := traffic.UDP(src, dst, n, 1472, seed)
	if err != nil {
		t.Fatalf("UDP %s -> %s: %v", src.Name(), dst.Name(), err)
	}
	if res.Sent != n || res.Received != res.Sent || res.Corrupt != 0 {
		t.Fatalf("UDP %s -> %s: sent %d of %d, received %d intact, %d corrupt; want all intact", src.Name(), dst.Name(), res.Sent, n, res.Received, res.Corrupt)
	}
}

// assertNoXDP fails t if any of ports in sw has an XDP program attached.
func assertNoXDP(t *testing.T, sw *topo.Namespace, ports ...string) {
	t.Helper()
	for _, p := range ports {
		on, err := sw.XDPAttached(p)
		if err != nil {
			t.Fatal(err)
		}
		if on {
			t.Errorf("an XDP program is still attached to %s", p)
		}
	}
}

// assertXDP fails t unless every one of ports in sw has an XDP program.
func assertXDP(t *testing.T, sw *topo.Namespace, ports ...string) {
	t.Helper()
	for _, p := range ports {
		on, err := sw.XDPAttached(p)
		if err != nil {
			t.Fatal(err)
		}
		if !on {
			t.Errorf("no XDP program attached to %s while xdpfwd runs", p)
		}
	}
}

func ports(s *topo.Star) []string {
	var p []string
	for _, h := range s.Hosts {
		p = append(p, h.Port)
	}
	return p
}

// requireRoot skips tb unless it runs as root, which CI always does.
func requireRoot(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("skipping: needs root (network namespaces, XDP)")
	}
}

// assertLearned fails t unless the FDB listing br (see daemon.fdb) places
// each host's MAC on the host's port, exactly once.
func assertLearned(t *testing.T, br fdbListing, hosts ...*topo.Host) {
	t.Helper()
	for _, h := range hosts {
		var where []string
		for _, e := range fdbPorts(t, br, h.HWAddr) {
			where = append(where, e.Port)
		}
		if len(where) != 1 || where[0] != h.Port {
			t.Errorf("FDB of %s has host %s (%s) on ports %v, want exactly [%s]; FDB: %+v", br.Bridge, h.Name(), h.HWAddr, where, h.Port, br.Entries)
		}
	}
}

// pingFails runs `ping -c 3 -W 1 dst` in h and fails t unless no echo is
// answered.
func pingFails(t *testing.T, h *topo.Host, dst netip.Addr) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := h.Command(ctx, "ping", "-n", "-c", "3", "-W", "1", dst.String()).CombinedOutput()
	if err == nil || !strings.Contains(string(out), " 100% packet loss") {
		t.Fatalf("ping %s from %s: %v, want 100%% packet loss:\n%s", dst, h.Name(), err, out)
	}
}

// udpLost sends n datagrams from src to dst with traffic.UDP and fails t
// unless all are sent and none arrives.
func udpLost(t *testing.T, src, dst *topo.Host, n int, seed uint64) {
	t.Helper()
	res, err := traffic.UDP(src, dst, n, 1472, seed)
	if err != nil {
		t.Fatalf("UDP %s -> %s: %v", src.Name(), dst.Name(), err)
	}
	if res.Sent != n || res.Received != 0 || res.Corrupt != 0 {
		t.Fatalf("UDP %s -> %s: sent %d of %d, received %d intact, %d corrupt; want all sent and none received", src.Name(), dst.Name(), res.Sent, n, res.Received, res.Corrupt)
	}
}
