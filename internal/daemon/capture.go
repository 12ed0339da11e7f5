package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/xdpfwd/xdpfwd/fastpath"
	"github.com/xdpfwd/xdpfwd/internal/control"
)

// The capture stream (`xdpfwd capture`): one capture at a time runs on
// every worker (fastpath.Capture: a ring per worker, filled on the
// workers' threads); the stream's goroutine drains the rings every
// captureTick and sends what they held. A rebuilt worker gets the running
// capture too (openWorker). The capture leaves the workers when the
// stream ends: count, timeout, or the client gone.

// captureTick is how often a capture's rings are drained.
const captureTick = 10 * time.Millisecond

// captureChunk bounds the frames of one answer.
const captureChunk = 256

// captureVerb is the capture verb: it checks the arguments and returns the
// stream of captured frames (control.Stream).
func (d *Daemon) captureVerb(raw json.RawMessage) (any, error) {
	var args control.CaptureArgs
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &args); err != nil {
			return nil, fmt.Errorf("capture arguments: %w", err)
		}
	}
	cfg := fastpath.CaptureConfig{Port: fastpath.AnyPort, Snaplen: args.Snaplen}
	switch args.Point {
	case "ingress", "":
		cfg.Point = fastpath.CaptureIngress
	case "egress":
		cfg.Point = fastpath.CaptureEgress
	case "drop":
		cfg.Point = fastpath.CaptureDrop
	case "stage":
		cfg.Point, cfg.Stage = fastpath.CaptureStage, args.Stage
		if names := d.stageNames(); !slices.Contains(names, args.Stage) {
			return nil, fmt.Errorf("capture: no stage named %q (the stages: %s)", args.Stage, strings.Join(names, ", "))
		}
	default:
		return nil, fmt.Errorf("capture point %q: want ingress, egress, drop or stage", args.Point)
	}
	if args.Snaplen < 0 || args.Count < 0 || args.TimeoutMs < 0 {
		return nil, errors.New("capture: snaplen, count and timeout must not be negative")
	}
	var err error
	if cfg.Filter, err = d.compileFilter(args.Filter); err != nil {
		return nil, fmt.Errorf("capture filter: %w", err)
	}
	if cfg.Port, err = d.portByName(args.Port); err != nil {
		return nil, fmt.Errorf("capture: %w", err)
	}
	var ports []control.CapturePort
	for _, p := range d.ports {
		ports = append(ports, control.CapturePort{ID: int(p.id), Name: p.cfg.Interface})
	}
	c, err := fastpath.NewCapture(cfg)
	if err != nil {
		return nil, err
	}
	if err := d.startCapture(c); err != nil {
		return nil, err
	}
	return control.Stream(func(ctx context.Context, send func(any) error) error {
		defer d.stopCapture(c)
		if err := send(control.CaptureChunk{Ports: ports}); err != nil {
			return err
		}
		sent := 0
		var chunk []control.CapturedFrame
		flush := func(done, stopped bool) error {
			if len(chunk) == 0 && !done {
				return nil
			}
			err := send(control.CaptureChunk{Frames: chunk, Lost: c.Lost(), Done: done, Stopped: stopped})
			chunk = chunk[:0]
			return err
		}
		// take drains the rings into chunks, up to the count; it reports
		// whether the count is reached.
		take := func() (bool, error) {
			var err error
			c.Drain(func(p *fastpath.CapturedPacket) {
				if err != nil || (args.Count > 0 && sent >= args.Count) {
					return
				}
				chunk = append(chunk, capturedFrame(p))
				sent++
				if len(chunk) == captureChunk {
					err = flush(false, false)
				}
			})
			if err == nil {
				err = flush(false, false)
			}
			return args.Count > 0 && sent >= args.Count, err
		}
		return drainUntil(ctx, args.TimeoutMs, captureTick, func() { d.stopCapture(c) }, take, func(stopped bool) error { return flush(true, stopped) })
	}), nil
}

// capturedFrame is p for the control socket.
func capturedFrame(p *fastpath.CapturedPacket) control.CapturedFrame {
	at := time.Now().Add(-time.Duration(fastpath.MonotonicClock() - p.Time))
	f := control.CapturedFrame{TimeNs: at.UnixNano(), Port: int(p.Port), Length: p.Length, Data: append([]byte(nil), p.Data...)}
	if p.Reason != fastpath.ReasonNone {
		f.Reason = p.Reason.Stage() + ": " + p.Reason.String()
	}
	return f
}

// startCapture sets c on every worker, unless a capture already runs.
func (d *Daemon) startCapture(c *fastpath.Capture) error {
	d.state.RLock()
	defer d.state.RUnlock()
	if d.closed {
		return ErrClosed
	}
	d.captureMu.Lock()
	defer d.captureMu.Unlock()
	if d.capture != nil {
		return errors.New("capture: a capture is already running (one at a time)")
	}
	d.capture = c
	for _, w := range d.workers {
		if w.fw != nil {
			w.fw.SetCapture(c)
		}
	}
	return nil
}

// stopCapture takes c off every worker.
func (d *Daemon) stopCapture(c *fastpath.Capture) {
	d.state.RLock()
	defer d.state.RUnlock()
	d.captureMu.Lock()
	defer d.captureMu.Unlock()
	if d.capture != c {
		return
	}
	d.capture = nil
	for _, w := range d.workers {
		if w.fw != nil {
			w.fw.SetCapture(nil)
		}
	}
}

// runningCapture returns the capture running, nil if none, for a worker
// (re)opened.
func (d *Daemon) runningCapture() *fastpath.Capture {
	d.captureMu.Lock()
	defer d.captureMu.Unlock()
	return d.capture
}

// stageNames returns the names of the stages of the workers' pipeline,
// in walk order.
func (d *Daemon) stageNames() []string {
	d.state.RLock()
	defer d.state.RUnlock()
	for _, w := range d.workers {
		if w.pipe != nil {
			return w.pipe.StageNames()
		}
	}
	return nil
}
