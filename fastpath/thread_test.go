package fastpath

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xdpfwd/xdpfwd/xdp"
)

// threadNamed returns the ID of this process's thread named name, or 0.
func threadNamed(t *testing.T, name string) int {
	t.Helper()
	comms, err := filepath.Glob("/proc/self/task/*/comm")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range comms {
		b, err := os.ReadFile(c)
		if err != nil {
			continue // the thread exited
		}
		if strings.TrimSpace(string(b)) == name {
			tid, _ := strconv.Atoi(filepath.Base(filepath.Dir(c)))
			return tid
		}
	}
	return 0
}

// A worker with a Priority runs on a thread of its ThreadName at that
// SCHED_FIFO priority, pinned to its CPUs, and the thread ends with Run
// instead of going back to the runtime with its priority.
func TestWorkerRunRealtimeThread(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SCHED_FIFO needs CAP_SYS_NICE: run as root")
	}
	umem, err := xdp.NewUmem(xdp.UmemConfig{FrameCount: 64, FrameSize: 2048})
	if err != nil {
		t.Fatal(err)
	}
	bs, _ := NewBridges(BridgeConfig{Name: "br0", Ports: []PortID{1}})
	const name = "xdpfwd-wtest"
	w, err := NewWorker(WorkerConfig{Umem: umem, Queues: []PortQueue{{Port: 1, Queue: NewFakeQueue(umem, 16)}},
		Pipeline: NewPipeline(Parse{}, bs.Stage()), Priority: 7, ThreadName: name, CPUs: []int{0}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- w.Run() }()
	var tid int
	for deadline := time.Now().Add(5 * time.Second); tid == 0 && time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		tid = threadNamed(t, name)
	}
	if tid == 0 {
		w.Stop()
		t.Fatalf("no thread named %q while the worker runs (Run: %v)", name, <-done)
	}
	attr, err := unix.SchedGetAttr(tid, 0)
	var cpus unix.CPUSet
	cpuErr := unix.SchedGetaffinity(tid, &cpus)
	w.Stop()
	if cpuErr != nil || cpus.Count() != 1 || !cpus.IsSet(0) {
		t.Errorf("worker thread's CPUs: %d of them, CPU 0 %v (err %v); want CPU 0 alone", cpus.Count(), cpus.IsSet(0), cpuErr)
	}
	if err != nil {
		t.Fatalf("sched_getattr of the worker's thread %d: %v", tid, err)
	}
	if attr.Policy != unix.SCHED_FIFO || attr.Priority != 7 {
		t.Errorf("worker thread: policy %d priority %d, want SCHED_FIFO (%d) priority 7", attr.Policy, attr.Priority, unix.SCHED_FIFO)
	}
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	for deadline := time.Now().Add(5 * time.Second); threadNamed(t, name) != 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the worker's real-time thread %q outlived Run", name)
		}
	}
}

func TestWorkerPriorityRange(t *testing.T) {
	umem, err := xdp.NewUmem(xdp.UmemConfig{FrameCount: 64, FrameSize: 2048})
	if err != nil {
		t.Fatal(err)
	}
	bs, _ := NewBridges(BridgeConfig{Name: "br0", Ports: []PortID{1}})
	for _, prio := range []int{-1, MaxPriority + 1} {
		_, err := NewWorker(WorkerConfig{Umem: umem, Queues: []PortQueue{{Port: 1, Queue: NewFakeQueue(umem, 16)}},
			Pipeline: NewPipeline(Parse{}, bs.Stage()), Priority: prio})
		if err == nil || !strings.Contains(err.Error(), "priority") {
			t.Errorf("priority %d: err %v, want a priority error", prio, err)
		}
		if err := CheckPriority(prio); err == nil {
			t.Errorf("CheckPriority(%d) = nil, want an error", prio)
		}
	}
	if os.Geteuid() == 0 {
		if err := CheckPriority(MaxPriority); err != nil {
			t.Errorf("CheckPriority(%d) as root: %v", MaxPriority, err)
		}
	}
}

// TestRTGovernor: the worker's thread leaves SCHED_FIFO when it used more
// than rtBusyHigh of a core over a window, comes back below rtBusyLow,
// stays put in between, and stops switching after a failed switch.
func TestRTGovernor(t *testing.T) {
	var now, cpu int64
	var calls []bool
	var fail error
	g := rtGovernor{priority: 10, rt: true,
		now: func() int64 { return now }, cpu: func() int64 { return cpu },
		setRT: func(rt bool) error { calls = append(calls, rt); return fail }}
	// window runs one measurement window in which the thread was busy for
	// the fraction busy of it.
	window := func(busy float64) {
		now += rtWindow
		cpu += int64(busy * rtWindow)
		for range rtCheckMask + 1 {
			g.tick()
		}
	}
	steps := []struct {
		busy   float64
		wantRT bool
		calls  int
	}{
		{0.50, true, 0},  // real-time with headroom: stays
		{0.95, false, 1}, // near saturation: ordinary thread
		{0.80, false, 1}, // between the marks: stays
		{0.60, true, 2},  // headroom again: real-time
		{0.84, true, 2},  // below the high mark: stays
	}
	for i, s := range steps {
		window(s.busy)
		if g.rt != s.wantRT || len(calls) != s.calls {
			t.Fatalf("step %d (busy %.2f): real-time %v after %d switches, want %v after %d", i, s.busy, g.rt, len(calls), s.wantRT, s.calls)
		}
	}
	if calls[0] != false || calls[1] != true {
		t.Fatalf("switches %v, want [false true]", calls)
	}
	fail = errors.New("EPERM")
	window(0.99)
	if !g.failed || !g.rt {
		t.Fatalf("a failed demotion: failed %v, real-time %v; want true, true (the thread's policy is unchanged)", g.failed, g.rt)
	}
	n := len(calls)
	window(0.10)
	window(0.99)
	if len(calls) != n {
		t.Fatalf("%d more switches after a failure, want none", len(calls)-n)
	}
}
