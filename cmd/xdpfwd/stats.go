package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/xdpfwd/xdpfwd/internal/config"
	"github.com/xdpfwd/xdpfwd/internal/control"
)

func statsCmd(args []string) error {
	fs := flag.NewFlagSet("stats", flag.ContinueOnError)
	ctl := fs.String("control", "", "control socket of the running daemon (default "+config.DefaultControl+")")
	cfgPath := fs.String("config", "", "the daemon's configuration file, to take options.control from")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := resolveControl(ctl, *cfgPath); err != nil {
		return err
	}
	var st control.Stats
	if err := control.Call(*ctl, "stats", nil, &st); err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	printStats(os.Stdout, &st)
	return nil
}

// resolveControl sets *ctl to the control socket path: the one given, else
// options.control of the config file given, else the default.
func resolveControl(ctl *string, cfgPath string) error {
	switch {
	case *ctl != "" && cfgPath != "":
		return errors.New("give --control or --config, not both")
	case cfgPath != "":
		cfg, err := config.Load(cfgPath)
		if err != nil {
			return err
		}
		*ctl = cfg.Options.Control
	case *ctl == "":
		*ctl = config.DefaultControl
	}
	return nil
}

// printStats writes the stats as tables a person reads.
func printStats(w io.Writer, st *control.Stats) {
	fmt.Fprintf(w, "xdpfwd %s, %d worker(s)\n\n", st.Version, st.Workers)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "PORT\tSTATE\tMODE\tQUEUES\tRX PKTS\tRX BYTES\tTX PKTS\tTX BYTES\tDROPS\tXDP REDIR\tXDP PASS\tXDP DROP\tXSK RX DROP\t")
	for _, p := range st.Ports {
		var drops uint64
		for _, n := range p.Drops {
			drops += n
		}
		bind := "copy"
		if p.ZeroCopy {
			bind = "zerocopy"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s/%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t\n", p.Name, shortState(p.State), p.XDPMode, bind, p.Queues,
			p.RxPackets, p.RxBytes, p.TxPackets, p.TxBytes, drops,
			p.XDP.Redirected, p.XDP.PassNoSocket+p.XDP.PassHost, p.XDP.DropTooBig+p.XDP.DropMalformed, p.XSK.RxDropped)
	}
	tw.Flush()
	for _, p := range st.Ports {
		if _, reason, ok := strings.Cut(p.State, ": "); ok {
			fmt.Fprintf(w, "  %s: failed: %s\n", p.Name, reason)
		}
		reasons := make([]string, 0, len(p.Drops))
		for r, n := range p.Drops {
			if n > 0 {
				reasons = append(reasons, r)
			}
		}
		sort.Strings(reasons)
		for _, r := range reasons {
			fmt.Fprintf(w, "  %s: %d dropped: %s\n", p.Name, p.Drops[r], r)
		}
		for _, x := range []struct {
			n    uint64
			what string
		}{
			{p.XDP.DropTooBig, "dropped: longer than a UMEM frame (xdp drop_too_big)"},
			{p.XDP.DropMalformed, "dropped: shorter than an Ethernet header (xdp drop_malformed)"},
			{p.XDP.RedirectFailed, "passed to the kernel: the redirect to the socket failed (xdp redirect_failed)"},
			{p.XDP.PassNoSocket, "passed to the kernel: no socket on their queue (xdp pass_no_socket)"},
			{p.XDP.VLANRestored, "redirected with the VLAN tag the driver kept beside the frame put back (xdp vlan_restored)"},
		} {
			if x.n > 0 {
				fmt.Fprintf(w, "  %s: %d frames %s\n", p.Name, x.n, x.what)
			}
		}
	}
	printLatency(w, st.Ports)
	if st.Profiling {
		fmt.Fprintln(w, "\npipeline stages (options.profile):")
		for _, s := range st.Stages {
			fmt.Fprintf(w, "  %-10s %12d packets %8.1f ns/packet\n", s.Name, s.Packets, float64(s.Nanoseconds)/float64(max(s.Packets, 1)))
		}
	}
	for _, b := range st.Bridges {
		fmt.Fprintf(w, "\nbridge %s %v: forwarded %d, flooded %d, learned %d, fdb full %d, evicted %d, fdb entries %d\n",
			b.Name, b.Ports, b.Forwarded, b.Flooded, b.Learned, b.FDBFull, b.Evicted, b.FDBEntries)
	}
	if len(st.Bridges) > 0 {
		fmt.Fprintln(w, "\n(the FDB entries: xdpfwd fdb show)")
	}
	if r := st.Router; r != nil {
		fmt.Fprintf(w, "\nrouter: forwarded %d, local %d; sent %d echo replies, %d ARP replies, %d neighbour advertisements, %d solicitations, %d ICMP errors (%d held back by the rate limit); %d routes, %d neighbours\n",
			r.Forwarded, r.Local, r.EchoReplies, r.ARPReplies, r.NASent, r.Solicits, r.ICMPErrors, r.ICMPLimited, r.Routes, r.Neighbours)
		fmt.Fprintln(w, "(xdpfwd route show, xdpfwd neigh show)")
	}
}

// printLatency writes, for each port that sent frames, how long they
// spent in xdpfwd: quantiles, then the buckets that hold any.
func printLatency(w io.Writer, ports []control.PortStats) {
	header := false
	for _, p := range ports {
		l := p.Latency
		if l.Packets == 0 {
			continue
		}
		if !header {
			fmt.Fprintln(w, "\nlatency, RX ring to TX ring, by egress port:")
			header = true
		}
		fmt.Fprintf(w, "  %s: %d frames, mean %v, p50 %v, p99 %v, max %v\n", p.Name, l.Packets,
			ns(l.SumNanoseconds/l.Packets), ns(l.P50Nanoseconds), ns(l.P99Nanoseconds), ns(l.MaxNanoseconds))
		var parts []string
		for i, n := range l.Counts {
			if n == 0 {
				continue
			}
			le := "+Inf"
			if i < len(l.BoundsNanoseconds) {
				le = ns(l.BoundsNanoseconds[i]).String()
			}
			parts = append(parts, fmt.Sprintf("≤%s: %d", le, n))
		}
		fmt.Fprintf(w, "    %s\n", strings.Join(parts, ", "))
	}
}

// ns is a count of nanoseconds as a Duration, for printing.
func ns(n uint64) time.Duration { return time.Duration(min(n, math.MaxInt64)) }

// shortState is a port's state for the table: a failed port's reason is
// printed below it.
func shortState(s string) string {
	st, _, _ := strings.Cut(s, ": ")
	return st
}
