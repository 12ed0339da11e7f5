package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/xdpfwd/xdpfwd/internal/topo"
)

// workerSched returns the scheduling policy and priority of the daemon's
// worker thread xdpfwd-w0, found by its name under /proc.
func workerSched(t *testing.T, d *daemon) (policy, prio uint32) {
	t.Helper()
	comms, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/comm", d.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range comms {
		b, err := os.ReadFile(c)
		if err != nil {
			continue
		}
		name := strings.TrimSpace(string(b))
		names = append(names, name)
		if name != "xdpfwd-w0" {
			continue
		}
		tid, _ := strconv.Atoi(filepath.Base(filepath.Dir(c)))
		attr, err := unix.SchedGetAttr(tid, 0)
		if err != nil {
			t.Fatalf("sched_getattr of thread %d (xdpfwd-w0): %v", tid, err)
		}
		return attr.Policy, attr.Priority
	}
	t.Fatalf("the daemon has no thread named xdpfwd-w0; its threads: %v", names)
	return 0, 0
}

// The workers run at SCHED_FIFO (priority 10 by default,
// options.worker_priority otherwise), so that a worker woken by traffic
// is not left waiting behind other tasks' time slices while its fill ring
// runs dry; worker_priority: 0 keeps them ordinary threads.
func TestWorkerThreadPriority(t *testing.T) {
	requireRoot(t)
	for _, tc := range []struct {
		name    string
		options string
		policy  uint32
		prio    uint32
	}{
		{"default", "", unix.SCHED_FIFO, 10},
		{"configured", "options:\n  worker_priority: 42\n", unix.SCHED_FIFO, 42},
		{"off", "options:\n  worker_priority: 0\n", unix.SCHED_NORMAL, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := star(t, topo.VethOptions{}, topo.VethOptions{})
			d := runDaemon(t, s.Switch, bridgeConfig(ports(s)...)+tc.options)
			if policy, prio := workerSched(t, d); policy != tc.policy || prio != tc.prio {
				t.Errorf("worker thread: policy %d priority %d, want policy %d priority %d", policy, prio, tc.policy, tc.prio)
			}
			ping(t, s.Hosts[0], s.Hosts[1].IP)
		})
	}
}
