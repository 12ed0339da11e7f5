package fastpath

import (
	"errors"
	"testing"
)

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
