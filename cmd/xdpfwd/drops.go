package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xdpfwd/xdpfwd/internal/config"
	"github.com/xdpfwd/xdpfwd/internal/control"
)

// dropsCmd is `xdpfwd drops`: the drops of a running daemon per port,
// stage and reason, with rates between two samples of the stats verb.
func dropsCmd(args []string) error {
	fs := flag.NewFlagSet("drops", flag.ContinueOnError)
	ctl := fs.String("control", "", "control socket of the running daemon (default "+config.DefaultControl+")")
	cfgPath := fs.String("config", "", "the daemon's configuration file, to take options.control from")
	watch := fs.Bool("watch", false, "redraw the table every interval until interrupted (SIGINT)")
	interval := fs.Duration("interval", time.Second, "time between the two samples the rates are taken over")
	asJSON := fs.Bool("json", false, "print JSON (with --watch: one object a line)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *interval <= 0 {
		return fmt.Errorf("--interval %v: want a duration above 0", *interval)
	}
	if err := resolveControl(ctl, *cfgPath); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	sample := func() (dropCounts, time.Time, error) {
		var st control.Stats
		t := time.Now()
		if err := control.Call(*ctl, "stats", nil, &st); err != nil {
			return nil, t, err
		}
		return countDrops(&st), t, nil
	}
	prev, t0, err := sample()
	if err != nil {
		return err
	}
	tty := isTerminal(os.Stdout)
	tick := time.NewTicker(*interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			if *watch {
				return nil
			}
			return errors.New("interrupted before the second sample")
		case <-tick.C:
		}
		cur, t1, err := sample()
		if err != nil && !*watch {
			return err
		}
		if *watch && tty && !*asJSON {
			fmt.Print("\x1b[H\x1b[2J") // cursor home, clear the screen
		}
		if err != nil {
			// The daemon may be restarting: say so, and try again at
			// the next interval.
			fmt.Fprintf(os.Stderr, "%s: %v\n", time.Now().Format(time.TimeOnly), err)
			continue
		}
		tbl := dropTableOf(prev, cur, t1.Sub(t0))
		tbl.Time = t1
		switch {
		case *asJSON && *watch:
			if err := json.NewEncoder(os.Stdout).Encode(tbl); err != nil {
				return err
			}
		case *asJSON:
			enc := json.NewEncoder(os.Stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(tbl)
		default:
			printDrops(os.Stdout, tbl)
			if !*watch {
				return nil
			}
			fmt.Println()
		}
		prev, t0 = cur, t1
	}
}

// isTerminal reports whether f is a terminal.
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// dropKey names one drop counter: a port, the stage that counts it and
// the reason.
type dropKey struct {
	port, stage, reason string
}

// dropCounts are the drop counters of one sample.
type dropCounts map[dropKey]uint64

// Stages of the drops that the kernel counts, beside the fast path's own
// (fastpath.Reason's stages).
const (
	stageXDP = "xdp" // the XDP program, before the AF_XDP socket
	stageXSK = "xsk" // the AF_XDP socket (XDP_STATISTICS)
)

// countDrops returns every drop counter of st: the fast path's by port
// and reason, the XDP program's drop verdicts, and the sockets' drops.
func countDrops(st *control.Stats) dropCounts {
	c := dropCounts{}
	for _, p := range st.Ports {
		for reason, n := range p.Drops {
			stage := p.DropStages[reason]
			if stage == "" {
				stage = "?" // a daemon older than drop_stages
			}
			c[dropKey{p.Name, stage, reason}] = n
		}
		c[dropKey{p.Name, stageXDP, "drop_malformed"}] = p.XDP.DropMalformed
		c[dropKey{p.Name, stageXDP, "drop_too_big"}] = p.XDP.DropTooBig
		c[dropKey{p.Name, stageXSK, "rx_dropped"}] = p.XSK.RxDropped
		c[dropKey{p.Name, stageXSK, "rx_ring_full"}] = p.XSK.RxRingFull
		c[dropKey{p.Name, stageXSK, "rx_invalid_descs"}] = p.XSK.RxInvalidDescs
		c[dropKey{p.Name, stageXSK, "tx_invalid_descs"}] = p.XSK.TxInvalidDescs
	}
	return c
}

// dropRow is one line of the drop table.
type dropRow struct {
	// Port is the port the drop counts on; Stage the stage that
	// registered Reason, or xdp or xsk for the kernel's counters.
	Port   string `json:"port"`
	Stage  string `json:"stage"`
	Reason string `json:"reason"`
	// Count is the drops since the daemon started.
	Count uint64 `json:"count"`
	// Rate is the drops per second between the two samples.
	Rate float64 `json:"rate_per_second"`
}

// dropTable is what `xdpfwd drops` prints: the counters that are not 0,
// most drops first, with their totals.
type dropTable struct {
	// Time is when the second sample was taken.
	Time time.Time `json:"time"`
	// IntervalSeconds is the time between the two samples.
	IntervalSeconds float64 `json:"interval_seconds"`
	// Total and TotalRate add up the rows.
	Total     uint64  `json:"total"`
	TotalRate float64 `json:"total_rate_per_second"`
	// Drops are the counters that are not 0, most drops first.
	Drops []dropRow `json:"drops"`
}

// dropTableOf makes the table of cur, with the rates since prev, taken dt
// earlier. A counter that went down (the daemon restarted) has rate 0.
func dropTableOf(prev, cur dropCounts, dt time.Duration) dropTable {
	tbl := dropTable{IntervalSeconds: dt.Seconds(), Drops: []dropRow{}}
	for k, n := range cur {
		if n == 0 {
			continue
		}
		r := dropRow{Port: k.port, Stage: k.stage, Reason: k.reason, Count: n}
		if p := prev[k]; n > p && dt > 0 {
			r.Rate = float64(n-p) / dt.Seconds()
		}
		tbl.Drops = append(tbl.Drops, r)
		tbl.Total += n
		tbl.TotalRate += r.Rate
	}
	slices.SortFunc(tbl.Drops, func(a, b dropRow) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(b.Rate, a.Rate),
			cmp.Compare(a.Port, b.Port), cmp.Compare(a.Stage, b.Stage), cmp.Compare(a.Reason, b.Reason))
	})
	return tbl
}

// printDrops writes tbl as a table a person reads.
func printDrops(w io.Writer, tbl dropTable) {
	fmt.Fprintf(w, "drops at %s (counts since the daemon started, rates over the last %.1fs)\n\n",
		tbl.Time.Format(time.TimeOnly), tbl.IntervalSeconds)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PORT\tSTAGE\tREASON\tDROPS\tPER SECOND")
	for _, r := range tbl.Drops {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%.1f\n", r.Port, r.Stage, r.Reason, r.Count, r.Rate)
	}
	fmt.Fprintf(tw, "total\t\t\t%d\t%.1f\n", tbl.Total, tbl.TotalRate)
	tw.Flush()
}
