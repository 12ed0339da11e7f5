package main

import (
	"cmp"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"text/tabwriter"

	"github.com/xdpfwd/xdpfwd/internal/control"
)

// defaultFDBLimit is how many entries per bridge `xdpfwd fdb show` lists
// unless told otherwise.
const defaultFDBLimit = 1000

// fdbListing is one bridge's part of `xdpfwd fdb show`.
type fdbListing struct {
	// Bridge names the bridge.
	Bridge string `json:"bridge"`
	// Entries are the entries listed, sorted by VLAN and MAC.
	Entries []control.FDBEntry `json:"entries"`
	// Truncated tells that the limit cut the listing short.
	Truncated bool `json:"truncated"`
	// Slots is the FDB's slots in use (live entries, and expired ones not
	// yet swept) at the last page read.
	Slots int `json:"slots"`
}

func fdbCmd(args []string) error {
	if len(args) == 0 || args[0] != "show" {
		return errors.New("usage: xdpfwd fdb show [--bridge B] [--limit N] [--json] [--control PATH | --config FILE]")
	}
	fs := flag.NewFlagSet("fdb show", flag.ContinueOnError)
	ctl := fs.String("control", "", "control socket of the running daemon (default: options.control of --config, else /run/xdpfwd.sock)")
	cfgPath := fs.String("config", "", "the daemon's configuration file, to take options.control from")
	bridge := fs.String("bridge", "", "list this bridge only (default: every bridge)")
	limit := fs.Int("limit", defaultFDBLimit, "list at most this many entries per bridge; 0 lists them all")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("fdb show: unexpected argument %q", fs.Arg(0))
	}
	if *limit < 0 {
		return fmt.Errorf("--limit %d: want 0 (all) or more", *limit)
	}
	if err := resolveControl(ctl, *cfgPath); err != nil {
		return err
	}
	bridges := []string{*bridge}
	if *bridge == "" {
		var st control.Stats
		if err := control.Call(*ctl, "stats", nil, &st); err != nil {
			return err
		}
		bridges = bridges[:0]
		for _, b := range st.Bridges {
			bridges = append(bridges, b.Name)
		}
	}
	listings := []fdbListing{}
	for _, b := range bridges {
		l, err := listFDB(*ctl, b, *limit)
		if err != nil {
			return err
		}
		listings = append(listings, l)
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(listings)
	}
	printFDB(os.Stdout, listings, *limit)
	return nil
}

// listFDB pages through bridge's FDB on the daemon at ctl until it has
// limit entries (0: all) or the table ends.
func listFDB(ctl, bridge string, limit int) (fdbListing, error) {
	l := fdbListing{Bridge: bridge, Entries: []control.FDBEntry{}}
	var cursor uint64
	for {
		want := control.MaxFDBPage
		if limit > 0 {
			want = min(want, limit-len(l.Entries))
		}
		if want == 0 {
			// The limit is reached: is anything left?
			more, err := anyFDBEntry(ctl, bridge, cursor)
			if err != nil {
				return l, err
			}
			l.Truncated = more
			break
		}
		var page control.FDBPage
		if err := control.Call(ctl, "fdb", control.FDBArgs{Bridge: bridge, Cursor: cursor, Limit: want}, &page); err != nil {
			return l, err
		}
		l.Entries = append(l.Entries, page.Entries...)
		l.Slots = page.Slots
		if page.Next == 0 {
			break
		}
		cursor = page.Next
	}
	slices.SortFunc(l.Entries, func(a, b control.FDBEntry) int {
		return cmp.Or(cmp.Compare(a.VLAN, b.VLAN), cmp.Compare(a.MAC, b.MAC))
	})
	return l, nil
}

// anyFDBEntry tells whether bridge's FDB has a live entry at or after
// cursor.
func anyFDBEntry(ctl, bridge string, cursor uint64) (bool, error) {
	for {
		var page control.FDBPage
		if err := control.Call(ctl, "fdb", control.FDBArgs{Bridge: bridge, Cursor: cursor, Limit: 1}, &page); err != nil {
			return false, err
		}
		if len(page.Entries) > 0 {
			return true, nil
		}
		if page.Next == 0 {
			return false, nil
		}
		cursor = page.Next
	}
}

// printFDB writes the listings as tables a person reads.
func printFDB(w io.Writer, ls []fdbListing, limit int) {
	for i, l := range ls {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "bridge %s: %d entries listed\n", l.Bridge, len(l.Entries))
		if len(l.Entries) > 0 {
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "  VLAN\tMAC\tPORT\tAGE\t")
			for _, e := range l.Entries {
				vlan := "-"
				if e.VLAN != 0 {
					vlan = strconv.Itoa(int(e.VLAN))
				}
				age := fmt.Sprintf("%.0fs", e.AgeSeconds)
				if e.Static {
					age = "static"
				}
				fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t\n", vlan, e.MAC, e.Port, age)
			}
			tw.Flush()
		}
		if l.Truncated {
			if more := l.Slots - len(l.Entries); more > 0 {
				noun := "entries"
				if more == 1 {
					noun = "entry"
				}
				fmt.Fprintf(w, "  about %d more %s not listed (--limit %d); use --limit N for more, --limit 0 for all\n", more, noun, limit)
			} else {
				fmt.Fprintf(w, "  more entries not listed (--limit %d); use --limit N for more, --limit 0 for all\n", limit)
			}
		}
	}
}
