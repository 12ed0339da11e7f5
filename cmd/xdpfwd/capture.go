package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/xdpfwd/xdpfwd/fastpath/cbpf"
	"github.com/xdpfwd/xdpfwd/internal/control"
)

const captureUsage = `usage: xdpfwd capture [--port P] [--point ingress|egress|drop|stage --stage NAME] [--count N] [--timeout D]
                      [-w FILE|-] [--snaplen N] [FILTER EXPRESSION...] [--control PATH | --config FILE]

Writes, as pcapng, the frames that pass a point of a running daemon's
workers: a port's ingress (as received), its egress (as put on the TX ring,
after every rewrite), the drops (the reason, "stage: reason", as each
packet's comment; the ingress port as its interface), or what a named
stage left to go on (--point stage --stage "nat ip postrouting": as the
stage left it; an unknown name gets the list of stages). One interface per
port, named after it. FILTER EXPRESSION is a pcap-filter expression as
tcpdump takes it, compiled with tcpdump -ddd (tcpdump must be installed);
none captures every frame. Ends at --count frames, after --timeout, or at
Ctrl-C; -w - writes to stdout (xdpfwd capture -w - | tcpdump -r -).`

// captureOptions are the capture command's flags.
type captureOptions struct {
	ctl, cfgPath, port, point, out string
	stage                          string
	count, snaplen                 int
	timeout                        time.Duration
	expr                           []string
}

// parseCaptureFlags parses flags anywhere among args; the other words are
// the filter expression.
func parseCaptureFlags(args []string) (captureOptions, error) {
	o := captureOptions{point: "ingress"}
	fs := flag.NewFlagSet("capture", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprintln(os.Stderr, captureUsage) }
	fs.StringVar(&o.ctl, "control", "", "the daemon's control socket")
	fs.StringVar(&o.cfgPath, "config", "", "the daemon's configuration (for its control socket)")
	fs.StringVar(&o.port, "port", "", "the port (interface) to capture on; every port if not given")
	fs.StringVar(&o.point, "point", "ingress", "ingress, egress, drop or stage")
	fs.StringVar(&o.stage, "stage", "", "with --point stage: the stage after which frames are taken")
	fs.StringVar(&o.out, "w", "", "the pcapng file to write; - for stdout")
	fs.IntVar(&o.count, "count", 0, "stop after N frames")
	fs.IntVar(&o.snaplen, "snaplen", 0, "bytes kept of each frame (0: all)")
	fs.DurationVar(&o.timeout, "timeout", 0, "stop after this long")
	expr, err := parseInterleaved(fs, args)
	if err != nil {
		return o, err
	}
	o.expr = expr
	switch o.point {
	case "ingress", "egress", "drop":
		if o.stage != "" {
			return o, errors.New("--stage goes with --point stage")
		}
	case "stage":
		if o.stage == "" {
			return o, errors.New("--point stage needs --stage NAME")
		}
	default:
		return o, fmt.Errorf("--point %q: want ingress, egress, drop or stage", o.point)
	}
	if o.out == "" {
		return o, errors.New("-w FILE (or -w - for stdout) is required")
	}
	if o.count < 0 || o.snaplen < 0 || o.timeout < 0 {
		return o, errors.New("--count, --snaplen and --timeout must not be negative")
	}
	return o, nil
}

// captureCmd is `xdpfwd capture`.
func captureCmd(args []string) error {
	o, err := parseCaptureFlags(args)
	if err != nil {
		return err
	}
	var filter [][4]uint32
	if len(o.expr) > 0 {
		if filter, err = compileFilter(o.expr); err != nil {
			return err
		}
	}
	if err := resolveControl(&o.ctl, o.cfgPath); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cargs := control.CaptureArgs{Point: o.point, Stage: o.stage, Port: o.port, Filter: filter, Snaplen: o.snaplen, Count: o.count, TimeoutMs: o.timeout.Milliseconds()}
	if o.timeout > 0 && cargs.TimeoutMs == 0 {
		cargs.TimeoutMs = 1
	}
	n, lost, started, err := capture(ctx, o, cargs)
	if started {
		fmt.Fprintf(os.Stderr, "%d %s captured\n", n, plural(n, "packet"))
	}
	if lost > 0 {
		fmt.Fprintf(os.Stderr, "%d %s dropped by the capture (ring full)\n", lost, plural(int(lost), "packet"))
	}
	return err
}

// plural returns word, with an s unless n is 1.
func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// errDaemonStopped ends a capture or trace the daemon ended early.
var errDaemonStopped = errors.New("the daemon ended it early: it is stopping")

// compileFilter compiles a pcap-filter expression to classic BPF for
// Ethernet frames with tcpdump -ddd.
func compileFilter(expr []string) ([][4]uint32, error) {
	path, err := exec.LookPath("tcpdump")
	if err != nil {
		return nil, errors.New("a filter expression is compiled by tcpdump, which is not installed (on PATH): install the tcpdump package (apt-get install tcpdump), or capture without a filter")
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(path, append([]string{"-ddd", "-y", "EN10MB", "--"}, expr...)...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return nil, fmt.Errorf("filter %q: %s", strings.Join(expr, " "), msg)
	}
	prog, err := cbpf.ParseTcpdump(stdout.String())
	if err != nil {
		return nil, fmt.Errorf("filter %q: tcpdump's output: %w", strings.Join(expr, " "), err)
	}
	if _, err := cbpf.Compile(prog); err != nil {
		return nil, fmt.Errorf("filter %q: %w", strings.Join(expr, " "), err)
	}
	out := make([][4]uint32, len(prog))
	for i, in := range prog {
		out[i] = [4]uint32{uint32(in.Op), uint32(in.Jt), uint32(in.Jf), in.K}
	}
	return out, nil
}

// capture streams the capture into o.out and returns the frames written
// and the frames the daemon lost, and whether the capture started.
func capture(ctx context.Context, o captureOptions, args control.CaptureArgs) (n int, lost uint64, started bool, err error) {
	var (
		f      *os.File
		out    io.Writer
		w      *pcapgo.NgWriter
		ifaces = map[int]int{} // port ID → interface index
	)
	defer func() {
		if w != nil {
			if ferr := w.Flush(); ferr != nil && err == nil {
				err = fmt.Errorf("write: %w", ferr)
			}
		}
		if f != nil {
			if cerr := f.Close(); cerr != nil && err == nil {
				err = cerr
			}
		}
	}()
	snap := uint32(args.Snaplen)
	if snap == 0 {
		snap = 262144
	}
	err = control.CallStream(ctx, o.ctl, "capture", args, func(raw json.RawMessage) error {
		var c control.CaptureChunk
		if err := json.Unmarshal(raw, &c); err != nil {
			return fmt.Errorf("decode capture answer: %w", err)
		}
		lost = max(lost, c.Lost)
		if w == nil {
			if len(c.Ports) == 0 {
				return errors.New("the daemon named no port")
			}
			if o.out == "-" {
				out = os.Stdout
			} else {
				var err error
				if f, err = os.Create(o.out); err != nil {
					return err
				}
				out = f
			}
			var err error
			if w, err = newCaptureWriter(out, c.Ports, snap, ifaces); err != nil {
				return err
			}
		}
		for _, fr := range c.Frames {
			idx, ok := ifaces[fr.Port]
			if !ok {
				return fmt.Errorf("frame on unknown port %d", fr.Port)
			}
			ci := gopacket.CaptureInfo{Timestamp: time.Unix(0, fr.TimeNs), CaptureLength: len(fr.Data), Length: fr.Length, InterfaceIndex: idx}
			var opts pcapgo.NgPacketOptions
			dir := pcapgo.NgEpbFlagDirectionInbound
			if args.Point == "egress" {
				dir = pcapgo.NgEpbFlagDirectionOutbound
			}
			opts.Flags = &pcapgo.NgEpbFlags{Direction: dir}
			if fr.Reason != "" {
				opts.Comments = []string{fr.Reason}
			}
			if err := w.WritePacketWithOptions(ci, fr.Data, opts); err != nil {
				return fmt.Errorf("write: %w", err)
			}
			n++
		}
		if err := w.Flush(); err != nil {
			return fmt.Errorf("write: %w", err)
		}
		if c.Stopped {
			return errDaemonStopped
		}
		if c.Done {
			return control.ErrStop
		}
		return nil
	})
	return n, lost, w != nil, err
}

// newCaptureWriter starts a pcapng file with one interface per port, and
// fills ifaces (port ID → interface index).
func newCaptureWriter(out io.Writer, ports []control.CapturePort, snap uint32, ifaces map[int]int) (*pcapgo.NgWriter, error) {
	intf := func(p control.CapturePort) pcapgo.NgInterface {
		return pcapgo.NgInterface{Name: p.Name, Description: fmt.Sprintf("xdpfwd port %d", p.ID), LinkType: layers.LinkTypeEthernet, SnapLength: snap, TimestampResolution: 9}
	}
	w, err := pcapgo.NewNgWriterInterface(out, intf(ports[0]), pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{
		Hardware: runtime.GOARCH, OS: runtime.GOOS, Application: "xdpfwd " + version()}})
	if err != nil {
		return nil, fmt.Errorf("write: %w", err)
	}
	ifaces[ports[0].ID] = 0
	for _, p := range ports[1:] {
		idx, err := w.AddInterface(intf(p))
		if err != nil {
			return nil, fmt.Errorf("write: %w", err)
		}
		ifaces[p.ID] = idx
	}
	return w, nil
}
