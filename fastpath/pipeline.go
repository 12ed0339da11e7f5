package fastpath

import (
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

// Stage is one step of the pipeline. Process writes verdicts into the
// packets' metadata. An ingress stage (parse, bridge, and later router,
// rules, conntrack, NAT) works only on packets still VerdictPending; an
// egress stage (checksum finishing) works on packets about to be sent
// (VerdictForward, VerdictFlood). No stage sends, frees or counts: the
// Pipeline and the Worker do.
//
// A Stage value belongs to one worker's pipeline: Process is never called
// concurrently on one value. Shared state (the FDB) is behind the stage.
type Stage interface {
	// Name names the stage in stage statistics and traces.
	Name() string
	// Process runs the stage over b.Packets[:b.Len] at time now.
	Process(b *Batch, now Time)
}

// TraceFunc is called, when set, after each stage for each packet of the
// batch with the stage's name and the packet as the stage left it.
type TraceFunc func(stage string, p *Packet)

// StageStat is the cost of one stage, accumulated over the batches run
// while profiling is on. Nanoseconds/Packets is the stage's cost per
// packet it works on.
type StageStat struct {
	// Name is the stage's name.
	Name string
	// Packets counts the packets that entered the stage not yet dropped
	// (pending, forwarded or flooded): every packet the stage may work on,
	// whether it is an ingress stage (which works on the pending ones) or
	// an egress stage (the forwarded and flooded ones). Dropped packets
	// are left out: no stage works on them. One rule for every stage
	// keeps the Pipeline from needing to know which kind a stage is.
	Packets uint64
	// Nanoseconds is the wall-clock time spent in the stage's Process.
	Nanoseconds uint64
}

// Pipeline runs stages over batches, in order. It owns what every stage
// needs and none should do itself: cost accounting per stage and per-packet
// tracing. Drops need no stage's help either: a stage only writes
// VerdictDrop and a reason, and the worker that runs the pipeline counts
// them per ingress port and reason when it acts on the verdicts. A
// Pipeline belongs to one worker.
type Pipeline struct {
	stages  []Stage
	profile atomic.Bool
	trace   atomic.Pointer[TraceFunc]
	packets []atomic.Uint64 // per stage
	nanos   []atomic.Uint64 // per stage
}

// NewPipeline returns a pipeline that runs stages in the order given.
func NewPipeline(stages ...Stage) *Pipeline {
	return &Pipeline{
		stages:  stages,
		packets: make([]atomic.Uint64, len(stages)),
		nanos:   make([]atomic.Uint64, len(stages)),
	}
}

// SetProfiling turns per-stage cost accounting on or off. It is safe to
// call while the pipeline runs.
func (p *Pipeline) SetProfiling(on bool) { p.profile.Store(on) }

// SetTrace sets the per-packet trace function; nil turns tracing off. It
// is safe to call while the pipeline runs. Tracing costs a call per packet
// per stage; off, it costs one atomic load per batch.
func (p *Pipeline) SetTrace(f TraceFunc) {
	if f == nil {
		p.trace.Store(nil)
		return
	}
	p.trace.Store(&f)
}

// Run runs every stage over b at time now.
func (p *Pipeline) Run(b *Batch, now Time) {
	profile := p.profile.Load()
	trace := p.trace.Load()
	for i, s := range p.stages {
		var start time.Time
		if profile {
			p.packets[i].Add(uint64(inFlight(b)))
			start = time.Now()
		}
		s.Process(b, now)
		if profile {
			p.nanos[i].Add(uint64(time.Since(start)))
		}
		if trace != nil {
			name := s.Name()
			for j := range b.Packets[:b.Len] {
				(*trace)(name, &b.Packets[j])
			}
		}
	}
}

// inFlight returns how many packets of b are not dropped.
func inFlight(b *Batch) int {
	n := 0
	for i := range b.Packets[:b.Len] {
		if b.Packets[i].Verdict != VerdictDrop {
			n++
		}
	}
	return n
}

// StageStats returns the accumulated cost of each stage, in pipeline order.
func (p *Pipeline) StageStats() []StageStat {
	st := make([]StageStat, len(p.stages))
	for i, s := range p.stages {
		st[i] = StageStat{Name: s.Name(), Packets: p.packets[i].Load(), Nanoseconds: p.nanos[i].Load()}
	}
	return st
}
