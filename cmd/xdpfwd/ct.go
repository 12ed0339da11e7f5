package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/xdpfwd/xdpfwd/conntrack"
	"github.com/xdpfwd/xdpfwd/internal/control"
)

const ctUsage = `usage: xdpfwd ct list [FILTER...] [--json] [--control PATH | --config FILE]
       xdpfwd ct count|flush|stats [--json] [--control PATH | --config FILE]

  list    the connection tracking table, one entry a line as conntrack -L prints it
  count   the number of entries, as conntrack -C
  flush   delete every entry, as conntrack -F
  stats   the counters of each worker, as conntrack -S prints them per CPU

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
	if sub != "list" && len(o.filter) > 0 {
		return fmt.Errorf("ct %s: unexpected argument %q\n%s", sub, o.filter[0], ctUsage)
	}
	switch sub {
	case "list", "count", "flush", "stats":
	default:
		return fmt.Errorf("ct %q: want list, count, flush or stats\n%s", sub, ctUsage)
	}
	if sub == "list" {
		// Refuse a bad filter before asking the daemon (which checks
		// it again).
		if _, err := conntrack.ParseFilter(o.filter); err != nil {
			return fmt.Errorf("list: %w", err)
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
	}
	return errors.Join(err, w.Flush())
}

// ctOptions are the ct command's flags; filter is what is left, the
// list's filter options.
type ctOptions struct {
	ctl, cfgPath string
	json, help   bool
	filter       []string
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
	if err := control.Call(o.ctl, "ct-flush", nil, &res); err != nil {
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
	return nil
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
