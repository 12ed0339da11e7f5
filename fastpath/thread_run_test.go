package fastpath_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xdpfwd/xdpfwd/fastpath"
	"github.com/xdpfwd/xdpfwd/fastpath/fastpathtest"
	"github.com/xdpfwd/xdpfwd/xdp"
	"golang.org/x/sys/unix"
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
	const name = "xdpfwd-wtest"
	w, err := fastpath.NewWorker(fastpath.WorkerConfig{Umem: umem, Queues: []fastpath.PortQueue{{Port: 1, Queue: fastpathtest.NewFakeQueue(umem, 16)}},
		Pipeline: fastpath.NewPipeline(), Priority: 7, ThreadName: name, CPUs: []int{0}})
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
	for _, prio := range []int{-1, fastpath.MaxPriority + 1} {
		_, err := fastpath.NewWorker(fastpath.WorkerConfig{Umem: umem, Queues: []fastpath.PortQueue{{Port: 1, Queue: fastpathtest.NewFakeQueue(umem, 16)}},
			Pipeline: fastpath.NewPipeline(), Priority: prio})
		if err == nil || !strings.Contains(err.Error(), "priority") {
			t.Errorf("priority %d: err %v, want a priority error", prio, err)
		}
		if err := fastpath.CheckPriority(prio); err == nil {
			t.Errorf("CheckPriority(%d) = nil, want an error", prio)
		}
	}
	if os.Geteuid() == 0 {
		if err := fastpath.CheckPriority(fastpath.MaxPriority); err != nil {
			t.Errorf("CheckPriority(%d) as root: %v", fastpath.MaxPriority, err)
		}
	}
}
