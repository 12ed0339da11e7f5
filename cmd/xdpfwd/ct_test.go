package main

import (
	"slices"
	"testing"

	"github.com/xdpfwd/xdpfwd/internal/control"
)

// xdpfwd's own flags come out of the arguments anywhere; conntrack's
// filter options, which look like flags, stay in order.
func TestParseCtFlags(t *testing.T) {
	o, err := parseCtFlags([]string{"-p", "udp", "--json", "--control=/x.sock", "--dport", "53", "-s", "10.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	if !o.json || o.ctl != "/x.sock" || o.cfgPath != "" || !slices.Equal(o.filter, []string{"-p", "udp", "--dport", "53", "-s", "10.0.0.1"}) {
		t.Errorf("%+v", o)
	}
	o, err = parseCtFlags([]string{"--config", "c.yaml", "-h"})
	if err != nil || o.cfgPath != "c.yaml" || !o.help || len(o.filter) != 0 {
		t.Errorf("%+v %v", o, err)
	}
	if _, err := parseCtFlags([]string{"--control"}); err == nil {
		t.Error("--control without a value")
	}
	if _, err := parseCtFlags([]string{"--json=1"}); err == nil {
		t.Error("--json=1")
	}
}

// The stats line is conntrack -S's, captured with conntrack-tools 1.4.7:
// "cpu=0   \tfound=0 invalid=0 insert=0 insert_failed=0 drop=0
// early_drop=0 error=0 search_restart=0 clash_resolve=0 chaintoolong=0 "
// (a tab after the padded CPU, a space before the newline).
func TestCtStatsLine(t *testing.T) {
	const want = "cpu=0   \tfound=0 invalid=0 insert=0 insert_failed=0 drop=0 early_drop=0 error=0 search_restart=0 clash_resolve=0 chaintoolong=0 \n"
	if got := ctStatsLine(0, &control.CtCounters{}); got != want {
		t.Errorf("%q\nwant %q", got, want)
	}
	s := control.CtCounters{Found: 1, Invalid: 2, Insert: 3, InsertFailed: 4, Drop: 5, EarlyDrop: 6, Error: 7, SearchRestart: 8, ClashResolve: 9, ChainTooLong: 10}
	if got, want := ctStatsLine(12, &s), "cpu=12  \tfound=1 invalid=2 insert=3 insert_failed=4 drop=5 early_drop=6 error=7 search_restart=8 clash_resolve=9 chaintoolong=10 \n"; got != want {
		t.Errorf("%q\nwant %q", got, want)
	}
}
