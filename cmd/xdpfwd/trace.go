package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/hex"
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

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/xdpfwd/xdpfwd/internal/control"
)

const traceUsage = `usage: xdpfwd trace [--port P] [--count N] [--timeout D] [--all] [--json] [--control PATH | --config FILE] [FILTER EXPRESSION...]
       xdpfwd trace --packet HEX|--pcap FILE --in PORT [--all] [--json] [--control PATH | --config FILE]

Follows live packets through a running daemon's pipeline, as nft monitor
trace and ofproto/trace show theirs: where each came in, every stage it
went through (hook, stage, what it decided, the egress, the conntrack
state, the headers it rewrote, the rules it matched, the route and
neighbour, the time the stage took over its batch), and where it went
(the TX queue, or the drop and its reason). FILTER is a pcap-filter
expression as tcpdump takes it (compiled with tcpdump -ddd). --count
defaults to 1; the trace also ends at --timeout or Ctrl-C.

A packet a stage holds (the router, while it resolves the next hop's
address) ends its record "held"; when the stage gives it back, a second
record, "continues trace N", follows it to its exit. It counts as the
same packet: once --count packets are traced, the trace waits up to 10 s
(or until --timeout) for those still held; one still held when the trace
ends is reported, its release untraced.

With --packet (a frame in hex) or --pcap (every frame of a pcap or pcapng
file) and --in, the frames are not waited for: each runs through a
pipeline of the daemon's own stages, on its live tables, that changes
nothing (no learning, no connection tracked or confirmed, no counter
charged, no neighbour resolved) and sends nothing: what would happen to
this packet, as ofproto/trace.`

// traceOptions are xdpfwd trace's flags.
type traceOptions struct {
	ctl, cfgPath, port string
	count              int
	timeout            time.Duration
	json, all          bool
	expr               []string
	packet, pcap, in   string
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
	fs.StringVar(&o.packet, "packet", "", "a frame in hex to run through the pipeline without sending it (with --in)")
	fs.StringVar(&o.pcap, "pcap", "", "a pcap or pcapng file whose frames run through the pipeline without being sent (with --in)")
	fs.StringVar(&o.in, "in", "", "the port the --packet or --pcap frames come in on")
	expr, err := parseInterleaved(fs, args)
	if err != nil {
		return o, err
	}
	o.expr = expr
	if o.count < 0 || o.timeout < 0 {
		return o, errors.New("--count and --timeout must not be negative")
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	switch offline := set["packet"] || set["pcap"]; {
	case set["packet"] && o.packet == "":
		return o, errors.New("--packet: an empty frame")
	case offline && (set["count"] || set["port"] || set["timeout"]):
		return o, errors.New("--count, --port and --timeout are a live trace's: --packet and --pcap run their frames once, on the port --in names")
	case o.packet != "" && o.pcap != "":
		return o, errors.New("--packet and --pcap: one or the other")
	case offline && o.in == "":
		return o, errors.New("--packet and --pcap need --in PORT, the port the frame comes in on")
	case offline && len(o.expr) > 0:
		return o, errors.New("--packet and --pcap take no filter expression")
	case !offline && o.in != "":
		return o, errors.New("--in goes with --packet or --pcap")
	}
	return o, nil
}

// offlineFrames returns the frames of --packet or --pcap.
func (o *traceOptions) offlineFrames() ([][]byte, error) {
	if o.packet != "" {
		h := strings.NewReplacer(" ", "", ":", "", "\n", "", "\t", "").Replace(o.packet)
		f, err := hex.DecodeString(strings.TrimPrefix(h, "0x"))
		if err != nil {
			return nil, fmt.Errorf("--packet: %w", err)
		}
		return [][]byte{f}, nil
	}
	b, err := os.ReadFile(o.pcap)
	if err != nil {
		return nil, err
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("%s: empty file", o.pcap)
	}
	var src interface {
		ReadPacketData() ([]byte, gopacket.CaptureInfo, error)
	}
	// linkType is the link type of a packet's interface: the file's,
	// or for pcapng the interface the packet names.
	var linkType func(ci gopacket.CaptureInfo) layers.LinkType
	if ng, err := pcapgo.NewNgReader(bytes.NewReader(b), pcapgo.DefaultNgReaderOptions); err == nil {
		src = ng
		linkType = func(ci gopacket.CaptureInfo) layers.LinkType {
			if i, err := ng.Interface(ci.InterfaceIndex); err == nil {
				return i.LinkType
			}
			return ng.LinkType()
		}
	} else if r, err2 := pcapgo.NewReader(bytes.NewReader(b)); err2 == nil {
		src = r
		linkType = func(gopacket.CaptureInfo) layers.LinkType { return r.LinkType() }
	} else {
		return nil, fmt.Errorf("%s: neither pcapng (%v) nor pcap (%v)", o.pcap, err, err2)
	}
	var frames [][]byte
	for n := 1; ; n++ {
		data, ci, err := src.ReadPacketData()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil && len(frames) > 0 {
			// A file cut short (a capture still being written): trace
			// what came before, as tcpdump -r reads it.
			fmt.Fprintf(os.Stderr, "%s: packet %d: %v: tracing the %d before it\n", o.pcap, n, err, len(frames))
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: packet %d: %w", o.pcap, n, err)
		}
		if lt := linkType(ci); lt != layers.LinkTypeEthernet {
			return nil, fmt.Errorf("%s: packet %d: link type %v: xdpfwd traces Ethernet frames (capture on one interface, not with tcpdump -i any)", o.pcap, n, lt)
		}
		if ci.CaptureLength < ci.Length {
			return nil, fmt.Errorf("%s: packet %d: %d of its %d bytes were captured (the capture's snap length): its walk would not be the packet's; capture it whole", o.pcap, n, ci.CaptureLength, ci.Length)
		}
		frames = append(frames, bytes.Clone(data))
	}
	if len(frames) == 0 {
		return nil, fmt.Errorf("%s: no packets", o.pcap)
	}
	return frames, nil
}

// traceOffline runs the frames of --packet or --pcap through the daemon's
// simulator and prints their walks.
func traceOffline(o traceOptions) error {
	frames, err := o.offlineFrames()
	if err != nil {
		return err
	}
	for i, f := range frames {
		var r control.TraceRecord
		if err := control.Call(o.ctl, "trace-packet", control.TracePacketArgs{Frame: f, Port: o.in}, &r); err != nil {
			return err
		}
		if o.json {
			if err := json.NewEncoder(os.Stdout).Encode(r); err != nil {
				return err
			}
			continue
		}
		if err := writeTrace(os.Stdout, i+1, &r, o.all); err != nil {
			return err
		}
	}
	return nil
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
	if o.packet != "" || o.pcap != "" {
		if err := resolveControl(&o.ctl, o.cfgPath); err != nil {
			return err
		}
		return traceOffline(o)
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
	n, lost, held, err := streamTrace(ctx, o.ctl, targs, os.Stdout, o.json, o.all, func() {
		where := "every port"
		if o.port != "" {
			where = o.port
		}
		fmt.Fprintf(os.Stderr, "tracing on %s: %s\n", where, cmp.Or(strings.Join(o.expr, " "), "every packet"))
	})
	if lost > 0 {
		fmt.Fprintf(os.Stderr, "%d packets matched but were not traced (a worker's trace ring was full)\n", lost)
	}
	if held > 0 {
		fmt.Fprintf(os.Stderr, "%d traced packet(s) still held by a stage when the trace ended: what became of them is not traced\n", held)
	}
	if n == 0 && err == nil {
		fmt.Fprintln(os.Stderr, "no packet traced")
	}
	return err
}

// streamTrace runs the live trace targs asks of the daemon at ctl and
// writes each record to out, as text (every stage if all) or as JSON
// lines. started is called once the trace is on the workers. It returns
// how many records it wrote, how many matching packets the workers'
// rings lost, and how many traced packets a stage still held at the end;
// ctx's end stops it without an error.
func streamTrace(ctx context.Context, ctl string, targs control.TraceArgs, out io.Writer, asJSON, all bool, started func()) (n int, lost uint64, held int, err error) {
	on := false
	err = control.CallStream(ctx, ctl, "trace", targs, func(raw json.RawMessage) error {
		var c control.TraceChunk
		if err := json.Unmarshal(raw, &c); err != nil {
			return fmt.Errorf("trace answer: %w", err)
		}
		if !on {
			on = true
			started()
		}
		lost, held = c.Lost, c.Held
		for _, r := range c.Records {
			n++
			if asJSON {
				if err := json.NewEncoder(out).Encode(r); err != nil {
					return err
				}
				continue
			}
			if err := writeTrace(out, cmp.Or(int(r.ID), n), &r, all); err != nil {
				return err
			}
		}
		if c.Stopped {
			return errDaemonStopped
		}
		if c.Done {
			return control.ErrStop
		}
		return nil
	})
	if errors.Is(err, context.Canceled) || ctx.Err() != nil {
		err = nil
	}
	return n, lost, held, err
}

// writeTraceHead prints the first line of traced packet n: when and where
// it came in, or for a continuation which record it continues, how long
// it was held and by what.
func writeTraceHead(out io.Writer, n int, r *control.TraceRecord) {
	t := time.Unix(0, r.TimeNs).Format("15:04:05.000000")
	switch {
	case r.Worker < 0:
		fmt.Fprintf(out, "trace %d: simulated in %s, %d bytes: %s\n", n, r.Port, r.Length, r.Packet)
	case r.Continues != 0:
		held := ""
		if r.HeldBy != "" {
			held = fmt.Sprintf(", released after %v held by %s", time.Duration(r.HeldNs).Round(time.Microsecond), r.HeldBy)
		}
		fmt.Fprintf(out, "trace %d: %s continues trace %d%s (came in on %s, worker %d), %d bytes: %s\n", n, t, r.Continues, held, r.Port, r.Worker, r.Length, r.Packet)
	default:
		fmt.Fprintf(out, "trace %d: %s in %s queue %d (worker %d), %d bytes: %s\n", n, t, r.Port, r.Queue, r.Worker, r.Length, r.Packet)
	}
}

// heldText describes exit e of traced packet n, held by a stage: which
// and why, and what follows.
func heldText(n int, r *control.TraceRecord, e control.TraceExit) string {
	s := "held by " + cmp.Or(e.Stage, "a stage")
	if e.Note != "" {
		s += " (" + e.Note + ")"
	}
	if r.Worker < 0 {
		return s + ": it would wait there"
	}
	return fmt.Sprintf("%s; a record continuing trace %d follows when it is given back", s, n)
}

// copiesFrom returns the index of the first step of the stage that made
// the first copy of the packet: from there on steps name their copy.
// len(steps) if no stage made one.
func copiesFrom(steps []control.TraceStep) int {
	for i, s := range steps {
		if s.Copy > 0 {
			for i > 0 && steps[i-1].Hook == s.Hook && steps[i-1].Stage == s.Stage {
				i--
			}
			return i
		}
	}
	return len(steps)
}

// writeTrace prints traced packet n: where it came in, a line per stage
// (with all false, only the first and those that changed the packet's
// decision, state or headers or said something), and where it went.
func writeTrace(out io.Writer, n int, r *control.TraceRecord, all bool) error {
	writeTraceHead(out, n, r)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	hidden := 0
	copies := copiesFrom(r.Steps)
	last := map[int]control.TraceStep{} // each copy's step before
	for i, s := range r.Steps {
		p, seen := last[s.Copy]
		last[s.Copy] = s
		if !all && i > 0 && seen && s.Note == "" && s.Rewrite == "" {
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
		stage := s.Stage
		if i >= copies {
			stage = fmt.Sprintf("%s [copy %d]", s.Stage, s.Copy+1)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%d ns/%d\t%s\t%s\n", s.Hook, stage, s.Nanoseconds, s.BatchPackets, strings.Join(what, " "), detail)
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
			fmt.Fprintf(out, "  → sent on %s (queue %d)\n", e.Port, e.Queue)
		case "would be sent":
			fmt.Fprintf(out, "  → would be sent on %s\n", e.Port)
		case "dropped":
			fmt.Fprintf(out, "  → dropped: %s, counted on %s\n", e.Reason, e.Port)
		case "consumed":
			fmt.Fprintf(out, "  → consumed (answered or given to the host) on %s\n", e.Port)
		case "held":
			fmt.Fprintf(out, "  → %s\n", heldText(n, r, e))
		default:
			fmt.Fprintf(out, "  → %s\n", e.Outcome)
		}
	}
	_, err := fmt.Fprintln(out)
	return err
}
