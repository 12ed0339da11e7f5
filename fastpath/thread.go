package fastpath

import (
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// MaxPriority is the highest SCHED_FIFO priority Linux accepts.
const MaxPriority = 99

// Why a worker runs at a real-time priority (measured, see the project's
// field notes): a worker woken by traffic is an ordinary thread to the
// scheduler. On a core shared with any busy task, a sender, a compiler at
// nice 19, it waits for that task's time slice (a tick is 4 ms at HZ=250),
// and when traffic keeps it busy it is time-sliced like a CPU hog. Meanwhile
// the XDP side keeps taking frames from the fill ring, in the sender's
// softirq, until it is empty. With one nice-19 busy loop beside it, 64-byte
// UDP at 100k pps lost 8–36 % as rx_fill_ring_empty_descs; the same traffic
// through the kernel bridge, which forwards in softirq context, lost none.
// At SCHED_FIFO the worker runs as soon as it is woken, on whichever core.

// threadConfig is what Run does to its OS thread.
type threadConfig struct {
	name     string
	priority int
	cpus     []int // allowed CPUs; empty: as inherited
}

// changes reports whether Run changes the thread at all.
func (t threadConfig) changes() bool { return t.name != "" || t.priority > 0 || len(t.cpus) > 0 }

// apply names the calling thread and sets its scheduling policy. The
// caller has locked the goroutine to the thread and never unlocks it
// afterwards, so the thread ends with the goroutine and no other goroutine
// inherits the name or the priority.
//
// The name comes last: a thread that carries it has the rest already.
func (t threadConfig) apply() error {
	if len(t.cpus) > 0 {
		var set unix.CPUSet
		for _, c := range t.cpus {
			set.Set(c)
		}
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			return fmt.Errorf("worker: pin thread to CPU(s) %v: %w", t.cpus, err)
		}
	}
	if t.priority > 0 {
		if err := setRealtime(t.priority); err != nil {
			return fmt.Errorf("worker: run at SCHED_FIFO priority %d: %w", t.priority, err)
		}
	}
	if t.name != "" {
		if err := setThreadName(t.name); err != nil {
			return fmt.Errorf("worker: name thread %q: %w", t.name, err)
		}
	}
	return nil
}

// setThreadName sets the calling thread's name (comm, at most 15 bytes),
// which top -H, ps -L and perf show.
func setThreadName(name string) error {
	b := make([]byte, min(len(name), 15)+1)
	copy(b, name)
	return unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(&b[0])), 0, 0, 0)
}

// setRealtime puts the calling thread in SCHED_FIFO at priority prio.
// Threads it forks (none: the Go runtime makes new threads from a clean
// template thread when the caller is locked) would be reset to the default
// policy.
func setRealtime(prio int) error {
	attr := unix.SchedAttr{Policy: unix.SCHED_FIFO, Priority: uint32(prio), Flags: unix.SCHED_FLAG_RESET_ON_FORK}
	return unix.SchedSetAttr(0, &attr, 0)
}

// CheckPriority reports whether this process may run a worker thread at
// SCHED_FIFO priority prio (1 to MaxPriority), by trying it on a
// throwaway thread. It fails with EPERM without CAP_SYS_NICE (or a
// sufficient RLIMIT_RTPRIO), and where real-time group scheduling gives
// the process's cgroup no real-time budget.
func CheckPriority(prio int) error {
	if prio < 1 || prio > MaxPriority {
		return fmt.Errorf("SCHED_FIFO priority %d: want 1 to %d", prio, MaxPriority)
	}
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: the thread, now real-time, exits with the
		// goroutine instead of going back to the runtime's pool.
		runtime.LockOSThread()
		errc <- setRealtime(prio)
	}()
	if err := <-errc; err != nil {
		if errors.Is(err, unix.EPERM) {
			return fmt.Errorf("set SCHED_FIFO priority %d: %w: the process needs CAP_SYS_NICE (or RLIMIT_RTPRIO ≥ %d) and a real-time budget in its cgroup", prio, err, prio)
		}
		return fmt.Errorf("set SCHED_FIFO priority %d: %w", prio, err)
	}
	return nil
}

// The kernel lets real-time threads use at most sched_rt_runtime_us of
// every sched_rt_period_us on a core (950 ms of 1 s by default) and then
// stops them for the rest of the period, even with the core otherwise idle.
// A worker near saturation needs more than that: measured at 90 % of its
// peak rate it ran 95 % of a core, and each second it was stopped for
// ~50 ms while the fill ring ran dry (2–3 % of the frames lost). So the
// governor watches the thread's CPU time and makes it an ordinary thread
// while it uses more than rtBusyHigh of a core, and real-time again once it
// uses less than rtBusyLow: real-time where latency decides loss (a worker
// with headroom, woken by traffic), ordinary where the RT budget would.
// Ordinary at nice -20, the heaviest weight the fair scheduler knows: at
// nice 0 the receivers' ksoftirqd and kworkers on its core took their full
// share, and the rings ran dry (0.08 % lost at 560k pps against 0–0.006 %
// at nice -20, three 10-s runs each).
const (
	rtWindow    = 100_000_000 // ns of wall time per measurement
	rtBusyHigh  = 0.85        // above: leave real-time
	rtBusyLow   = 0.70        // below: back to real-time
	rtCheckMask = 63          // look at the clock every 64 loop turns
)

// rtGovernor switches a worker's thread between SCHED_FIFO and
// SCHED_OTHER by how busy it is. The zero value (priority 0) does nothing.
type rtGovernor struct {
	priority int
	rt       bool  // the thread is SCHED_FIFO now
	turns    uint  // loop turns, to read the clock only every few
	start    int64 // window start: monotonic ns
	cpu0     int64 // thread CPU ns at the window's start
	failed   bool  // a sched_setattr failed: stop switching

	// The clocks and the policy switch, replaced in tests.
	now, cpu func() int64
	setRT    func(rt bool) error
}

// newRTGovernor returns a governor for a thread that apply() just made
// SCHED_FIFO at priority, or one that does nothing if priority is 0.
func newRTGovernor(priority int) rtGovernor {
	g := rtGovernor{priority: priority, rt: priority > 0, now: monotonicNS, cpu: threadCPUNS}
	g.setRT = func(rt bool) error {
		if rt {
			return setRealtime(priority)
		}
		attr := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_NORMAL, Nice: -20}
		return unix.SchedSetAttr(0, &attr, 0)
	}
	if priority > 0 {
		g.start, g.cpu0 = g.now(), g.cpu()
	}
	return g
}

// tick is called once per loop turn of Run.
func (g *rtGovernor) tick() {
	if g.priority == 0 || g.failed {
		return
	}
	g.turns++
	if g.turns&rtCheckMask != 0 {
		return
	}
	now := g.now()
	if now-g.start < rtWindow {
		return
	}
	cpu := g.cpu()
	busy := float64(cpu-g.cpu0) / float64(now-g.start)
	g.start, g.cpu0 = now, cpu
	switch {
	case g.rt && busy > rtBusyHigh, !g.rt && busy < rtBusyLow:
	default:
		return
	}
	if err := g.setRT(!g.rt); err != nil {
		// Stop switching; if a demotion failed the thread stays
		// real-time, still bounded by the kernel's RT budget.
		g.failed = true
		return
	}
	g.rt = !g.rt
}

func monotonicNS() int64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}

func threadCPUNS() int64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts)
	return ts.Nano()
}
