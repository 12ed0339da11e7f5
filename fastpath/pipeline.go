package fastpath

import (
	"cmp"
	"slices"
	"sync/atomic"
	"time"
)

// Time is a point in time in nanoseconds on the dataplane's clock. A worker
// reads the clock once per batch and passes the reading to every stage.
type Time int64

// Seconds returns t in whole seconds.
func (t Time) Seconds() uint32 { return uint32(t / Time(time.Second)) }

// Clock returns the current time. Tests inject a fake one.
type Clock func() Time

var monoStart = time.Now()

// MonotonicClock reads the monotonic clock: nanoseconds since the process
// started.
func MonotonicClock() Time { return Time(time.Since(monoStart)) }

// StageStat is the cost of one stage, accumulated over the batches run
// while profiling is on. Nanoseconds/Packets is the stage's cost per
// packet it works on.
type StageStat struct {
	// Hook is where the stage sits.
	Hook Hook
	// Name is the stage's name.
	Name string
	// Packets counts the packets that entered the stage not dropped:
	// every packet the stage may work on.
	Packets uint64
	// Nanoseconds is the wall-clock time spent in the stage's Process.
	Nanoseconds uint64
}

// Pipeline runs the stages of each hook over batches, hook by hook in walk
// order and by priority within a hook. It owns what every stage needs and
// none should do itself: cost accounting per stage and the steps of
// traced packets (trace.go).
// The Worker runs the hooks before the copies (RunIngress), makes a copy
// per output port, runs the per-output hooks over the copies (RunOutput),
// and counts the drops. A Pipeline belongs to one worker.
type Pipeline struct {
	stages  []Attached // sorted by hook, then priority
	split   int        // stages[split:] are per-output
	profile atomic.Bool
	// tr is the worker's tracing of the batch that holds traced
	// packets, nil otherwise; capture the worker's capture ring of the
	// batch if it takes frames after a stage. The worker's thread sets
	// both.
	tr      *tracing
	capture *captureRing
	packets []atomic.Uint64 // per stage
	nanos   []atomic.Uint64 // per stage
}

// NewPipeline returns a pipeline of the stages given, each at its hook and
// priority; stages of one hook and priority run in the order given.
// It panics on a hook that does not exist: a stage's wiring is code, not
// input.
func NewPipeline(stages ...Attached) *Pipeline {
	for _, a := range stages {
		if a.Hook >= NumHooks {
			panic("fastpath.NewPipeline: stage " + a.Stage.Name() + " at " + a.Hook.String())
		}
	}
	s := slices.Clone(stages)
	slices.SortStableFunc(s, func(a, b Attached) int {
		return cmp.Or(cmp.Compare(a.Hook, b.Hook), cmp.Compare(a.Priority, b.Priority))
	})
	split := slices.IndexFunc(s, func(a Attached) bool { return a.Hook.PerOutput() })
	if split < 0 {
		split = len(s)
	}
	return &Pipeline{
		stages:  s,
		split:   split,
		packets: make([]atomic.Uint64, len(s)),
		nanos:   make([]atomic.Uint64, len(s)),
	}
}

// Holding reports whether a stage before the copies holds stolen frames
// (see Holder).
func (p *Pipeline) Holding() bool {
	for _, a := range p.stages[:p.split] {
		if h, ok := a.Stage.(Holder); ok && h.Holding() {
			return true
		}
	}
	return false
}

// SetProfiling turns per-stage cost accounting on or off. It is safe to
// call while the pipeline runs.
func (p *Pipeline) SetProfiling(on bool) { p.profile.Store(on) }

// RunIngress runs the stages of the hooks before the copies over b, the
// packets of one RX batch, at time now.
func (p *Pipeline) RunIngress(b *Batch, now Time) { p.run(b, now, 0, p.split) }

// RunOutput runs the stages of the per-output hooks over b, copies that
// each have their output port in OutPort, at time now.
func (p *Pipeline) RunOutput(b *Batch, now Time) { p.run(b, now, p.split, len(p.stages)) }

func (p *Pipeline) run(b *Batch, now Time, from, to int) {
	profile, tr, capture := p.profile.Load(), p.tr, p.capture
	for i := from; i < to; i++ {
		a := &p.stages[i]
		if !profile && tr == nil {
			a.Stage.Process(b, now)
		} else {
			n := inFlight(b)
			start := time.Now()
			a.Stage.Process(b, now)
			d := time.Since(start)
			if profile {
				p.packets[i].Add(uint64(n))
				p.nanos[i].Add(uint64(d))
			}
			if tr != nil {
				tr.traceStage(b, a, now, d, n)
			}
		}
		if capture != nil && capture.stage == i {
			captureStage(capture, b, a.Hook, now)
		}
	}
}

// inFlight returns how many packets of b are not dropped.
func inFlight(b *Batch) int {
	n := 0
	for i := range b.Packets[:b.Len] {
		if b.Packets[i].Action == ActionContinue {
			n++
		}
	}
	return n
}

// StageNames returns the names of the stages, in walk order.
func (p *Pipeline) StageNames() []string {
	names := make([]string, len(p.stages))
	for i, a := range p.stages {
		names[i] = a.Stage.Name()
	}
	return names
}

// StageStats returns the accumulated cost of each stage, in walk order.
func (p *Pipeline) StageStats() []StageStat {
	st := make([]StageStat, len(p.stages))
	for i, a := range p.stages {
		st[i] = StageStat{Hook: a.Hook, Name: a.Stage.Name(), Packets: p.packets[i].Load(), Nanoseconds: p.nanos[i].Load()}
	}
	return st
}
