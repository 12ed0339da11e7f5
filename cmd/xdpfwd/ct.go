package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/xdpfwd/xdpfwd/conntrack"
	"github.com/xdpfwd/xdpfwd/internal/control"
)

const ctUsage = `usage: xdpfwd ct list [FILTER...] [--json] [--control PATH | --config FILE]
       xdpfwd ct events [FILTER...] [-e NEW,UPDATE,DESTROY] [--count N] [-o timestamp] [--json] [--control PATH | --config FILE]
       xdpfwd ct count|flush|stats [--json] [--control PATH | --config FILE]

  list    the connection tracking table, one entry a line as conntrack -L prints it
  count   the number of entries, as conntrack -C
  flush   delete every entry, as conntrack -F
  stats   the counters of each worker, as conntrack -S prints them per CPU
  events  the connections' events as they happen, one a line as conntrack -E
          prints them, until Ctrl-C (or --count N events); -e selects the
          types, -o timestamp prefixes each line with its time

FILTER is conntrack -L's: -f ipv4|ipv6, -p PROTO, -s/-d ADDR[/LEN] (original
tuple), -r/-q ADDR[/LEN] (reply tuple), --sport/--dport PORT and
--reply-port-src/--reply-port-dst PORT (with -p tcp, udp, udplite, sctp or
dccp), --icmp-type/--icmp-code/--icmp-id N (with -p icmp or icmpv6), --state
STATE (with -p tcp), -m MARK[/MASK], -w ZONE`

// ctCmd is `xdpfwd ct list|count|flush|stats`: a running daemon's
// connection tracking table, as conntrack -L, -C, -F and -S show it.
func ctCmd(args []string) error {
	if len(args) == 0 {
		return errors.New(ctUsage)
	}
	sub, rest := args[0], args[1:]
	o, err := parseCtFlags(rest)
	if err != nil {
		return err
	}
	if o.help {
		fmt.Fprintln(os.Stderr, ctUsage)
		return nil
	}
	if sub != "events" && (o.types != nil || o.count != 0 || o.timestamp) {
		return fmt.Errorf("ct %s: -e, --count and -o are ct events' options\n%s", sub, ctUsage)
	}
	if sub != "list" && sub != "events" && len(o.filter) > 0 {
		return fmt.Errorf("ct %s: unexpected argument %q\n%s", sub, o.filter[0], ctUsage)
	}
	switch sub {
	case "list", "count", "flush", "stats", "events":
	default:
		return fmt.Errorf("ct %q: want list, count, flush, stats or events\n%s", sub, ctUsage)
	}
	if sub == "list" || sub == "events" {
		// Refuse a bad filter before asking the daemon (which checks
		// it again).
		if _, err := conntrack.ParseFilter(o.filter); err != nil {
			return fmt.Errorf("%s: %w", sub, err)
		}
	}
	if err := resolveControl(&o.ctl, o.cfgPath); err != nil {
		return err
	}
	w := bufio.NewWriter(os.Stdout)
	switch sub {
	case "list":
		err = ctList(w, os.Stderr, o)
	case "count":
		err = ctCount(w, o)
	case "flush":
		err = ctFlush(w, o)
	case "stats":
		err = ctStats(w, o)
	case "events":
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err = ctEvents(ctx, w, os.Stderr, o)
		stop()
	}
	return errors.Join(err, w.Flush())
}

// ctOptions are the ct command's flags; filter is what is left, the
// list's filter options.
type ctOptions struct {
	ctl, cfgPath string
	json, help   bool
	filter       []string
	// types (-e), count (--count) and timestamp (-o timestamp) are ct
	// events' options.
	types     []string
	count     int
	timestamp bool
}

// parseCtFlags takes xdpfwd's own flags (--json, --control, --config,
// -h) out of args, anywhere among them; the rest are conntrack's filter
// options, which look like flags but are not the flag package's (-p udp,
// --dport 53).
func parseCtFlags(args []string) (ctOptions, error) {
	var o ctOptions
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") {
			o.filter = append(o.filter, a)
			continue
		}
		switch name {
		case "json":
			if hasVal {
				return o, fmt.Errorf("%s: --json takes no value", a)
			}
			o.json = true
		case "h", "help":
			o.help = true
		case "e", "event-mask", "count", "o", "output":
			if !hasVal {
				if i+1 >= len(args) {
					return o, fmt.Errorf("%s needs a value", a)
				}
				i++
				val = args[i]
			}
			switch name {
			case "e", "event-mask":
				o.types = append(o.types, val)
			case "count":
				n, err := strconv.Atoi(val)
				if err != nil || n <= 0 {
					return o, fmt.Errorf("--count %q: want a positive number", val)
				}
				o.count = n
			default:
				if val != "timestamp" {
					return o, fmt.Errorf("-o %q: only timestamp is supported", val)
				}
				o.timestamp = true
			}
		case "control", "config":
			if !hasVal {
				if i+1 >= len(args) {
					return o, fmt.Errorf("--%s needs a value", name)
				}
				i++
				val = args[i]
			}
			if name == "control" {
				o.ctl = val
			} else {
				o.cfgPath = val
			}
		default:
			o.filter = append(o.filter, a)
		}
	}
	return o, nil
}

// ctList pages through the table, printing each entry as its page comes
// (or a JSON list of them), then how many were shown on summary, as
// conntrack prints "N flow entries have been shown." on stderr.
func ctList(w, summary io.Writer, o ctOptions) error {
	n := 0
	if o.json {
		if _, err := io.WriteString(w, "["); err != nil {
			return err
		}
	}
	var cursor uint32
	for {
		var page control.CtPage
		if err := control.Call(o.ctl, "ct-list", control.CtListArgs{Filter: o.filter, Cursor: cursor}, &page); err != nil {
			return err
		}
		for _, e := range page.Entries {
			var err error
			if o.json {
				sep := ",\n  "
				if n == 0 {
					sep = "\n  "
				}
				var js []byte
				if js, err = json.MarshalIndent(e, "  ", "  "); err == nil {
					_, err = fmt.Fprintf(w, "%s%s", sep, js)
				}
			} else {
				_, err = fmt.Fprintln(w, e.Line)
			}
			if err != nil {
				return fmt.Errorf("write: %w", err)
			}
			n++
		}
		if page.Next == 0 {
			break
		}
		cursor = page.Next
	}
	if o.json {
		end := "\n]\n"
		if n == 0 {
			end = "]\n"
		}
		_, err := io.WriteString(w, end)
		return err
	}
	fmt.Fprintf(summary, "xdpfwd ct list: %d flow entries have been shown.\n", n)
	return nil
}

// ctCount prints the number of entries, as conntrack -C.
func ctCount(w io.Writer, o ctOptions) error {
	var res control.CtCount
	if err := control.Call(o.ctl, "ct-count", nil, &res); err != nil {
		return err
	}
	if o.json {
		return writeJSON(w, res)
	}
	_, err := fmt.Fprintln(w, res.Count)
	return err
}

// ctFlush empties the table and says how many entries it deleted.
func ctFlush(w io.Writer, o ctOptions) error {
	var res control.CtFlushResult
	if err := control.Call(o.ctl, "ct-flush", control.CtFlushArgs{PID: uint32(os.Getpid())}, &res); err != nil {
		return err
	}
	if o.json {
		return writeJSON(w, res)
	}
	noun := "entries"
	if res.Deleted == 1 {
		noun = "entry"
	}
	_, err := fmt.Fprintf(w, "connection tracking table has been emptied: %d %s deleted.\n", res.Deleted, noun)
	return err
}

// ctStats prints each worker's counters in conntrack -S's layout, the
// worker's index in place of the CPU.
func ctStats(w io.Writer, o ctOptions) error {
	var res control.CtStats
	if err := control.Call(o.ctl, "ct-stats", nil, &res); err != nil {
		return err
	}
	if o.json {
		return writeJSON(w, res)
	}
	for i, s := range res.Workers {
		if _, err := io.WriteString(w, ctStatsLine(i, &s)); err != nil {
			return err
		}
	}
	// conntrack -S has no NAT line; xdpfwd's NAT adds one after them.
	_, err := fmt.Fprintf(w, "nat     \texhausted=%d no_address=%d dropped=%d\n", res.NAT.Exhausted, res.NAT.NoAddress, res.NAT.Dropped)
	return err
}

// ctStatsLine is one line of conntrack -S (its trailing space included).
func ctStatsLine(cpu int, s *control.CtCounters) string {
	return fmt.Sprintf("cpu=%-4d\tfound=%d invalid=%d insert=%d insert_failed=%d drop=%d early_drop=%d error=%d search_restart=%d clash_resolve=%d chaintoolong=%d \n",
		cpu, s.Found, s.Invalid, s.Insert, s.InsertFailed, s.Drop, s.EarlyDrop, s.Error, s.SearchRestart, s.ClashResolve, s.ChainTooLong)
}

// writeJSON writes v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// ctEvents streams the daemon's conntrack events to w, each as its line
// of conntrack -E (with -o timestamp, after its time as conntrack prints
// it: [seconds.microseconds] and a tab), or as a JSON object a line, and
// flushes w after each; until ctx is done (Ctrl-C, SIGTERM) or o.count
// events were shown. Lost events are reported on diag as conntrack
// reports ENOBUFS, and at the end how many events were shown.
func ctEvents(ctx context.Context, w *bufio.Writer, diag io.Writer, o ctOptions) error {
	n := 0
	args := control.CtEventsArgs{Filter: o.filter, Types: o.types}
	err := control.CallStream(ctx, o.ctl, "ct-events", args, func(raw json.RawMessage) error {
		var ev control.CtEvent
		if err := json.Unmarshal(raw, &ev); err != nil {
			return fmt.Errorf("decode ct-events answer: %w", err)
		}
		if ev.Lost > 0 {
			fmt.Fprintf(diag, "WARNING: We have hit ENOBUFS! We are losing events.\nxdpfwd ct events: %d events lost: the daemon's event rings or this stream's queue overflowed.\n", ev.Lost)
		}
		if ev.Type == "" {
			return nil
		}
		var err error
		switch {
		case o.json:
			var js []byte
			if js, err = json.Marshal(ev); err == nil {
				_, err = fmt.Fprintf(w, "%s\n", js)
			}
		case o.timestamp:
			t, perr := time.Parse(time.RFC3339Nano, ev.Time)
			if perr != nil {
				t = time.Now()
			}
			_, err = fmt.Fprintf(w, "[%d.%06d]\t%s\n", t.Unix(), t.Nanosecond()/1000, ev.Line)
		default:
			_, err = fmt.Fprintln(w, ev.Line)
		}
		if err == nil {
			err = w.Flush()
		}
		if err != nil {
			return fmt.Errorf("write: %w", err)
		}
		if n++; o.count > 0 && n >= o.count {
			return control.ErrStop
		}
		return nil
	})
	if !o.json {
		fmt.Fprintf(diag, "xdpfwd ct events: %d flow events have been shown.\n", n)
	}
	return err
}
