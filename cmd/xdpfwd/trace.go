package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/xdpfwd/xdpfwd/internal/control"
)

const traceUsage = `usage: xdpfwd trace [--port P] [--count N] [--timeout D] [--json] [--control PATH | --config FILE] [FILTER EXPRESSION...]

Follows live packets through a running daemon's pipeline, as nft monitor
trace and ofproto/trace show theirs: where each came in, every stage it
went through (hook, stage, what it decided, the egress, the conntrack
state, the headers it rewrote, the rules it matched, the route and
neighbour, the time the stage took over its batch), and where it went
(the TX queue, or the drop and its reason). FILTER is a pcap-filter
expression as tcpdump takes it (compiled with tcpdump -ddd). --count
defaults to 1; the trace also ends at --timeout or Ctrl-C.`

// traceOptions are xdpfwd trace's flags.
type traceOptions struct {
	ctl, cfgPath, port string
	count              int
	timeout            time.Duration
	json, all          bool
	expr               []string
}

// parseTraceFlags parses flags anywhere among args; the other words are
// the filter expression.
func parseTraceFlags(args []string) (traceOptions, error) {
	var o traceOptions
	fs := flag.NewFlagSet("trace", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprintln(os.Stderr, traceUsage) }
	fs.StringVar(&o.ctl, "control", "", "the daemon's control socket")
	fs.StringVar(&o.cfgPath, "config", "", "the daemon's configuration (for its control socket)")
	fs.StringVar(&o.port, "port", "", "trace what comes in on this port (interface) only")
	fs.IntVar(&o.count, "count", 1, "stop after N packets (0: no limit)")
	fs.DurationVar(&o.timeout, "timeout", 0, "stop after this long")
	fs.BoolVar(&o.json, "json", false, "one JSON object a packet")
	fs.BoolVar(&o.all, "all", false, "print every stage, also those that changed nothing and said nothing")
	expr, err := parseInterleaved(fs, args)
	if err != nil {
		return o, err
	}
	o.expr = expr
	if o.count < 0 || o.timeout < 0 {
		return o, errors.New("--count and --timeout must not be negative")
	}
	return o, nil
}

// parseInterleaved parses fs's flags anywhere among args and returns the
// other words, in order (all words after a "--").
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var words []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return words, nil
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(words, rest...), nil
		}
		words, args = append(words, rest[0]), rest[1:]
	}
}

// traceCmd is `xdpfwd trace`.
func traceCmd(args []string) error {
	o, err := parseTraceFlags(args)
	if err != nil {
		return err
	}
	targs := control.TraceArgs{Port: o.port, Count: o.count, TimeoutMs: o.timeout.Milliseconds()}
	if o.timeout > 0 && targs.TimeoutMs == 0 {
		targs.TimeoutMs = 1
	}
	if len(o.expr) > 0 {
		if targs.Filter, err = compileFilter(o.expr); err != nil {
			return err
		}
	}
	if err := resolveControl(&o.ctl, o.cfgPath); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	n, lost := 0, uint64(0)
	err = control.CallStream(ctx, o.ctl, "trace", targs, func(raw json.RawMessage) error {
		var c control.TraceChunk
		if err := json.Unmarshal(raw, &c); err != nil {
			return fmt.Errorf("trace answer: %w", err)
		}
		lost = c.Lost
		for _, r := range c.Records {
			n++
			if o.json {
				if err := json.NewEncoder(os.Stdout).Encode(r); err != nil {
					return err
				}
				continue
			}
			if err := writeTrace(os.Stdout, n, &r, o.all); err != nil {
				return err
			}
		}
		if c.Done {
			return control.ErrStop
		}
		return nil
	})
	if errors.Is(err, context.Canceled) || ctx.Err() != nil {
		err = nil
	}
	if lost > 0 {
		fmt.Fprintf(os.Stderr, "%d packets matched but were not traced (a worker's trace ring was full)\n", lost)
	}
	if n == 0 && err == nil {
		fmt.Fprintln(os.Stderr, "no packet traced")
	}
	return err
}

// writeTrace prints traced packet n: where it came in, a line per stage
// (with all false, only the first and those that changed the packet's
// decision, state or headers or said something), and where it went.
func writeTrace(out io.Writer, n int, r *control.TraceRecord, all bool) error {
	t := time.Unix(0, r.TimeNs)
	fmt.Fprintf(out, "trace %d: %s in %s queue %d (worker %d), %d bytes: %s\n", n, t.Format("15:04:05.000000"), r.Port, r.Queue, r.Worker, r.Length, r.Packet)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	hidden := 0
	for i, s := range r.Steps {
		if !all && i > 0 && s.Note == "" && s.Rewrite == "" {
			p := r.Steps[i-1]
			if s.Action == p.Action && s.Reason == p.Reason && s.Egress == p.Egress && s.CtState == p.CtState && s.Mark == p.Mark {
				hidden++
				continue
			}
		}
		var what []string
		what = append(what, s.Action)
		if s.Reason != "" {
			what = append(what, "("+s.Reason+")")
		}
		if s.Egress != "" && s.Action == "continue" {
			what = append(what, "→ "+s.Egress)
		}
		if s.CtState != "" {
			what = append(what, "ct "+s.CtState)
		}
		if s.Mark != 0 {
			what = append(what, fmt.Sprintf("mark %#x", s.Mark))
		}
		detail := s.Note
		if s.Rewrite != "" {
			detail = strings.TrimPrefix(detail+"; rewrote "+s.Rewrite, "; ")
		}
		fmt.Fprintf(tw, "  %s\t%s\t%d ns/%d\t%s\t%s\n", s.Hook, s.Stage, s.Nanoseconds, s.BatchPackets, strings.Join(what, " "), detail)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if hidden > 0 {
		fmt.Fprintf(out, "  (%d stages that changed nothing not shown; --all shows them)\n", hidden)
	}
	if r.MoreSteps > 0 {
		fmt.Fprintf(out, "  ... %d more steps not kept\n", r.MoreSteps)
	}
	if len(r.Exits) == 0 {
		fmt.Fprintln(out, "  → left the trace without an exit (the worker stopped tracing)")
	}
	for _, e := range r.Exits {
		switch e.Outcome {
		case "sent":
			fmt.Fprintf(out, "  → sent on %s (worker queue %d)\n", e.Port, e.Queue)
		case "dropped":
			fmt.Fprintf(out, "  → dropped: %s, counted on %s\n", e.Reason, e.Port)
		case "consumed":
			fmt.Fprintf(out, "  → consumed (answered or given to the host) on %s\n", e.Port)
		case "held":
			fmt.Fprintf(out, "  → held by a stage (waiting for its next hop's address); its later steps are not traced\n")
		default:
			fmt.Fprintf(out, "  → %s\n", e.Outcome)
		}
	}
	_, err := fmt.Fprintln(out)
	return err
}
