package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xdpfwd/xdpfwd/internal/topo"
	"github.com/xdpfwd/xdpfwd/internal/topotest"
	"github.com/xdpfwd/xdpfwd/internal/traffic"
)

// faultRig is four hosts on one xdpfwd bridge. Hosts 1 and 2 exchange
// traffic in the background while a test breaks port p3 (host 3's).
type faultRig struct {
	t  *testing.T
	tp *topo.Topology
	s  *topo.Star
	d  *daemon
	h  []*topo.Host

	stop     chan struct{}
	wg       sync.WaitGroup
	mu       sync.Mutex
	done     int     // background TCP transfers completed intact
	failures []error // background transfers that failed
}

func newFaultRig(t *testing.T) *faultRig {
	t.Helper()
	tp := topotest.New(t, "xfl")
	s, err := tp.Star(make([]topo.VethOptions, 4))
	if err != nil {
		t.Fatal(err)
	}
	r := &faultRig{t: t, tp: tp, s: s, h: s.Hosts, stop: make(chan struct{})}
	r.d = runDaemon(t, s.Switch, bridgeConfig(ports(s)...)+"options:\n  metrics: "+faultMetrics+"\n")
	ping(t, r.h[0], r.h[1].IP)
	ping(t, r.h[0], r.h[2].IP)
	return r
}

// background keeps TCP transfers going between hosts 1 and 2, both ways,
// until endBackground.
func (r *faultRig) background() {
	r.wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-r.stop:
				return
			default:
			}
			src, dst := r.h[i%2], r.h[(i+1)%2]
			_, err := traffic.TCP(src, dst, 256<<10, uint64(900+i))
			r.mu.Lock()
			if err != nil {
				r.failures = append(r.failures, fmt.Errorf("transfer %d %s -> %s: %w", i, src.Name(), dst.Name(), err))
			} else {
				r.done++
			}
			r.mu.Unlock()
		}
	})
}

// endBackground stops the background traffic and fails the test unless
// every transfer arrived intact and at least one completed after the
// point `since` (the count of transfers completed when the fault began).
func (r *faultRig) endBackground(since int) {
	r.t.Helper()
	close(r.stop)
	r.wg.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, err := range r.failures {
		r.t.Errorf("traffic between hosts 1 and 2 during the fault: %v", err)
	}
	if r.done <= since {
		r.t.Errorf("no transfer between hosts 1 and 2 completed during the fault (%d before, %d after)", since, r.done)
	}
}

// completed is the number of background transfers completed so far.
func (r *faultRig) completed() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.done
}

// faultMetrics is where the fault rig's daemon serves metrics, in its
// own switch namespace.
const faultMetrics = "127.0.0.1:9464"

// waitState polls `xdpfwd stats` until port has a state starting with
// want, for at most 5 s, checks that the metrics say the same, and returns
// the state.
func (r *faultRig) waitState(port, want string) string {
	r.t.Helper()
	var got string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		got = portOf(r.t, r.d.stats(), port).State
		if strings.HasPrefix(got, want) {
			// One series per state: 1 for the port's, 0 for the others;
			// a failed port's reason is in stats and the log, not a label.
			state, _, _ := strings.Cut(got, ": ")
			body := scrape(r.t, r.s.Switch, faultMetrics)
			for _, s := range []string{"up", "down", "absent", "failed"} {
				v := 0
				if s == state {
					v = 1
				}
				if metric := fmt.Sprintf("xdpfwd_port_state{port=%q,state=%q} %d\n", port, s, v); !strings.Contains(body, metric) {
					r.t.Errorf("port %s in state %q: metrics lack %s", port, got, strings.TrimSpace(metric))
				}
			}
			return got
		}
	}
	r.t.Fatalf("port %s: state %q after 5s, want %q\ndaemon stderr:\n%s", port, got, want, r.d.stderr.String())
	return ""
}

// waitLog waits up to 5 s for a log line with msg about port, and fails
// the test unless there is exactly one.
func (r *faultRig) waitLog(msg, port string) string {
	r.t.Helper()
	var lines []string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		lines = logLines(r.d, msg, port)
		if len(lines) > 0 {
			break
		}
	}
	time.Sleep(300 * time.Millisecond) // a duplicate would come right after
	lines = logLines(r.d, msg, port)
	if len(lines) != 1 {
		r.t.Fatalf("want exactly one log line %q for port %s, got %d\ndaemon stderr:\n%s", msg, port, len(lines), r.d.stderr.String())
	}
	return lines[0]
}

// logLines are the daemon's log lines with message msg about port.
func logLines(d *daemon, msg, port string) []string {
	var out []string
	for _, l := range strings.Split(d.stderr.String(), "\n") {
		if strings.Contains(l, "msg=\""+msg) && strings.Contains(l, " port="+port+" ") {
			out = append(out, l)
		}
	}
	return out
}

// assertOthersForward checks that hosts 1, 2 and 4 still reach each other
// with every datagram intact.
func (r *faultRig) assertOthersForward() {
	r.t.Helper()
	udpIntact(r.t, r.h[0], r.h[3], 100, 31)
	udpIntact(r.t, r.h[3], r.h[1], 100, 32)
}

// TestFaultLinkDownUp: p3 set down, then up, under traffic between hosts 1
// and 2. Down: one log line, state down, frames to host 3 are dropped as
// "no egress port" rather than counted as sent. Up: one log line, state up,
// host 3 reachable again.
func TestFaultLinkDownUp(t *testing.T) {
	t.Parallel()
	r := newFaultRig(t)
	r.background()
	before := r.completed()
	sw := r.s.Switch

	run(t, sw, "ip", "link", "set", "p3", "down")
	r.waitLog("port down", "p3")
	r.waitState("p3", "down")
	pingFails(t, r.h[0], r.h[2].IP)
	st := r.d.stats()
	if n := portOf(t, st, "p1").Drops["no egress port"]; n == 0 {
		t.Errorf("frames from host 1 to the down port p3 are not counted as dropped (no egress port): %+v", portOf(t, st, "p1").Drops)
	}
	r.assertOthersForward()

	run(t, sw, "ip", "link", "set", "p3", "up")
	r.waitLog("port up", "p3")
	r.waitState("p3", "up")
	ping(t, r.h[0], r.h[2].IP)
	udpIntact(t, r.h[2], r.h[0], 100, 33)
	r.endBackground(before)
}

// TestFaultDeleteRecreate: p3 deleted under the daemon, then created again
// with the same name. Deleted: one log line, state absent, the others keep
// forwarding. Re-created: one log line, state up, and traffic to host 3
// flows again without restarting the daemon.
func TestFaultDeleteRecreate(t *testing.T) {
	t.Parallel()
	r := newFaultRig(t)
	r.background()
	before := r.completed()
	sw, h3 := r.s.Switch, r.h[2]
	rx1 := portOf(t, r.d.stats(), "p1").RxPackets

	run(t, sw, "ip", "link", "del", "p3")
	line := r.waitLog("port absent", "p3")
	if !strings.Contains(line, "state=absent") {
		t.Errorf("log line %q does not give the state absent", line)
	}
	r.waitState("p3", "absent")
	r.assertOthersForward()

	if err := r.tp.Veth(h3.Namespace, topo.HostIf, sw, h3.Port, topo.VethOptions{Queues: 1}); err != nil {
		t.Fatal(err)
	}
	if err := h3.AddAddr(topo.HostIf, fmt.Sprintf("%s/24", h3.IP)); err != nil {
		t.Fatal(err)
	}
	r.waitLog("port back", "p3")
	r.waitState("p3", "up")
	// The new eth0 has a new MAC: the bridge learns it from host 3's own
	// frames.
	ping(t, h3, r.h[0].IP)
	udpIntact(t, r.h[0], h3, 200, 34)
	udpIntact(t, h3, r.h[1], 200, 35)
	r.assertOthersForward()
	r.endBackground(before)
	// The workers were rebuilt twice; their counters carried over.
	if rx := portOf(t, r.d.stats(), "p1").RxPackets; rx < rx1+200 {
		t.Errorf("p1 received %d frames in all, %d before the delete: counters were lost in the rebuilds", rx, rx1)
	}
}

// TestFaultMovedAway: p3 moved to another network namespace is absent to
// the daemon; moved back, it is attached and bound again.
func TestFaultMovedAway(t *testing.T) {
	t.Parallel()
	r := newFaultRig(t)
	r.background()
	before := r.completed()
	sw := r.s.Switch
	other, err := r.tp.AddNamespace("elsewhere")
	if err != nil {
		t.Fatal(err)
	}
	run(t, sw, "ip", "link", "set", "p3", "netns", other.Name())
	r.waitLog("port absent", "p3")
	r.waitState("p3", "absent")
	r.assertOthersForward()

	run(t, other, "ip", "link", "set", "p3", "netns", sw.Name())
	run(t, sw, "ip", "link", "set", "p3", "up")
	r.waitLog("port back", "p3")
	r.waitState("p3", "up")
	ping(t, r.h[0], r.h[2].IP)
	r.endBackground(before)
}

// TestFaultXDPLinkDetached: someone detaches xdpfwd's XDP link from p3
// (`bpftool link detach`). The daemon notices within a second, logs it
// once and attaches the program again; host 3 is reachable through xdpfwd
// again.
func TestFaultXDPLinkDetached(t *testing.T) {
	t.Parallel()
	r := newFaultRig(t)
	r.background()
	before := r.completed()
	sw := r.s.Switch

	id := xdpLinkID(t, sw, "p3")
	run(t, sw, "bpftool", "link", "detach", "id", strconv.Itoa(id))
	line := r.waitLog("XDP program detached by someone else", "p3")
	if !strings.Contains(line, "attached again") {
		t.Errorf("log line %q does not say the program was attached again", line)
	}
	r.waitState("p3", "up")
	assertXDP(t, sw, "p3")
	if again := xdpLinkID(t, sw, "p3"); again == id {
		t.Errorf("p3's XDP link is still %d after the detach", id)
	}
	redirected := portOf(t, r.d.stats(), "p3").XDP.Redirected
	udpIntact(t, r.h[2], r.h[0], 100, 36)
	if after := portOf(t, r.d.stats(), "p3").XDP.Redirected; after < redirected+100 {
		t.Errorf("p3's new program redirected %d frames for 100 datagrams, want at least 100", after-redirected)
	}
	r.endBackground(before)
}

// xdpLinkID returns the ID of the bpf_link attaching the XDP program on
// ifname in ns, from netlink's program ID and bpftool's link list.
func xdpLinkID(t *testing.T, ns *topo.Namespace, ifname string) int {
	t.Helper()
	l, err := ns.Netlink().LinkByName(ifname)
	if err != nil {
		t.Fatal(err)
	}
	x := l.Attrs().Xdp
	if x == nil || !x.Attached {
		t.Fatalf("%s has no XDP program", ifname)
	}
	var links []struct {
		ID     int    `json:"id"`
		Type   string `json:"type"`
		ProgID uint32 `json:"prog_id"`
	}
	if err := json.Unmarshal([]byte(run(t, ns, "bpftool", "-j", "link", "show")), &links); err != nil {
		t.Fatalf("bpftool -j link show: %v", err)
	}
	for _, k := range links {
		if k.Type == "xdp" && k.ProgID == x.ProgId {
			return k.ID
		}
	}
	t.Fatalf("no XDP bpf_link for program %d of %s in bpftool's list", x.ProgId, ifname)
	return 0
}

// TestFaultMTUBeyondFrame: p3's MTU raised beyond what a UMEM frame holds.
// The port fails with the reason (log, stats), its XDP program is
// detached, the others keep forwarding; with the MTU back, it is up again.
func TestFaultMTUBeyondFrame(t *testing.T) {
	t.Parallel()
	r := newFaultRig(t)
	r.background()
	before := r.completed()
	sw := r.s.Switch

	run(t, sw, "ip", "link", "set", "p3", "mtu", "9000")
	r.waitLog("port failed", "p3")
	state := r.waitState("p3", "failed: ")
	if !strings.Contains(state, "MTU 9000") || !strings.Contains(state, "UMEM frame") {
		t.Errorf("p3's state %q does not say the MTU does not fit the UMEM frame", state)
	}
	assertNoXDP(t, sw, "p3")
	out := run(t, sw, xdpfwdBinary(t), "stats", "--control", r.d.control)
	if !strings.Contains(out, "p3: failed: MTU 9000") {
		t.Errorf("xdpfwd stats does not show why p3 failed:\n%s", out)
	}
	r.assertOthersForward()

	run(t, sw, "ip", "link", "set", "p3", "mtu", "1500")
	r.waitLog("port back", "p3")
	r.waitState("p3", "up")
	ping(t, r.h[0], r.h[2].IP)
	r.endBackground(before)
}

// TestFaultIdleWakeups: an idle daemon, and one whose port was deleted
// while frames were being sent to it, wakes at most ~100 times a second
// (all its threads' context switches). Before ports were followed, the
// frames left on the dead socket's TX ring never completed, the worker
// woke every millisecond to kick them (~3000 wakeups/s measured) and
// counted more and more TX on the deleted port.
func TestFaultIdleWakeups(t *testing.T) {
	t.Parallel()
	r := newFaultRig(t)
	pid := r.d.cmd.Process.Pid
	// Idle means idle: no IPv6 router solicitations or MLD reports from
	// the hosts waking the worker.
	for _, h := range r.h {
		run(t, h.Namespace, "sysctl", "-qw", "net.ipv6.conf.eth0.disable_ipv6=1")
	}
	time.Sleep(time.Second) // let start-up settle
	if rate := wakeups(t, pid, 5*time.Second); rate > 100 {
		t.Errorf("idle daemon: %.0f wakeups/s, want at most 100", rate)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	flood := r.h[0].Command(ctx, "ping", "-n", "-q", "-i", "0.002", "-c", "1000", r.h[2].IP.String())
	if err := flood.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	run(t, r.s.Switch, "ip", "link", "del", "p3")
	r.waitLog("port absent", "p3")
	_ = flood.Wait() // ends after its 1000 echoes, most unanswered
	tx := portOf(t, r.d.stats(), "p3").TxPackets
	if rate := wakeups(t, pid, 5*time.Second); rate > 100 {
		t.Errorf("idle daemon with a port deleted under traffic: %.0f wakeups/s, want at most 100", rate)
	}
	p := portOf(t, r.d.stats(), "p3")
	if p.State != "absent" {
		t.Errorf("p3's state %q, want absent", p.State)
	}
	if p.TxPackets != tx {
		t.Errorf("the deleted port's TX count went on from %d to %d", tx, p.TxPackets)
	}
}

// wakeups measures the voluntary context switches (a thread went to sleep,
// so it was woken before or will be) per second of every thread of
// process pid, over d cut in five windows, and returns the quietest
// window's rate. Involuntary ones are preemptions: they grow with the
// machine's load, not with the daemon's wakeups. A loaded machine (the
// rest of the suite under -race) also puts bursts into the voluntary
// ones, through the Go runtime's threads, for a second or so (more
// since the suite moves TCP through conntrack and NAT in parallel tests);
// a daemon that keeps waking (the kick loop this test guards against
// wakes 1000 times a second) is busy in every window.
func wakeups(t *testing.T, pid int, d time.Duration) float64 {
	t.Helper()
	best := -1.0
	const windows = 5
	for range windows {
		a := ctxSwitches(t, pid)
		time.Sleep(d / windows)
		b := ctxSwitches(t, pid)
		rate := float64(b-a) / (d / windows).Seconds()
		t.Logf("pid %d: %d voluntary context switches in %v: %.0f/s", pid, b-a, d/windows, rate)
		if best < 0 || rate < best {
			best = rate
		}
	}
	return best
}

// ctxSwitches sums the voluntary context switches of the threads of pid.
func ctxSwitches(t *testing.T, pid int) uint64 {
	t.Helper()
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	if err != nil || len(tasks) == 0 {
		t.Fatalf("threads of pid %d: %v", pid, err)
	}
	var n uint64
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // the thread ended
		}
		for _, l := range strings.Split(string(b), "\n") {
			k, v, ok := strings.Cut(l, ":")
			if ok && k == "voluntary_ctxt_switches" {
				c, _ := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
				n += c
			}
		}
	}
	return n
}
