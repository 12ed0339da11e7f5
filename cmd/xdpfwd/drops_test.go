package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/xdpfwd/xdpfwd/internal/control"
)

// The drop table holds the fast path's, the XDP program's and the
// sockets' drops that are not 0, most first, with rates over the
// interval between the two samples and totals.
func TestDropsTable(t *testing.T) {
	sample := func(malformed, hairpin, xdpTooBig, xskRing uint64) dropCounts {
		return countDrops(&control.Stats{Ports: []control.PortStats{
			{Name: "p1", Drops: map[string]uint64{"malformed frame": malformed, "no egress port": 0},
				DropStages: map[string]string{"malformed frame": "parse", "no egress port": "worker"},
				XDP:        control.XDPCounters{DropTooBig: xdpTooBig}},
			{Name: "p2", Drops: map[string]uint64{"hairpin": hairpin},
				DropStages: map[string]string{"hairpin": "bridge"},
				XSK:        control.XSKCounters{RxRingFull: xskRing}},
		}})
	}
	prev := sample(10, 100, 0, 5)
	cur := sample(30, 100, 4, 5)
	tbl := dropTableOf(prev, cur, 2*time.Second)
	want := []dropRow{
		{Port: "p2", Stage: "bridge", Reason: "hairpin", Count: 100, Rate: 0},
		{Port: "p1", Stage: "parse", Reason: "malformed frame", Count: 30, Rate: 10},
		{Port: "p2", Stage: "xsk", Reason: "rx_ring_full", Count: 5, Rate: 0},
		{Port: "p1", Stage: "xdp", Reason: "drop_too_big", Count: 4, Rate: 2},
	}
	if len(tbl.Drops) != len(want) {
		t.Fatalf("rows %+v, want %+v", tbl.Drops, want)
	}
	for i := range want {
		if tbl.Drops[i] != want[i] {
			t.Errorf("row %d: %+v, want %+v", i, tbl.Drops[i], want[i])
		}
	}
	if tbl.Total != 139 || tbl.TotalRate != 12 || tbl.IntervalSeconds != 2 {
		t.Errorf("total %d, %v/s over %vs; want 139, 12/s over 2s", tbl.Total, tbl.TotalRate, tbl.IntervalSeconds)
	}

	var out bytes.Buffer
	printDrops(&out, tbl)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2+1+4+1 { // heading, blank, column names, rows, total
		t.Fatalf("table:\n%s", out.String())
	}
	for i, f := range [][]string{
		{"PORT", "STAGE", "REASON", "DROPS", "PER", "SECOND"},
		{"p2", "bridge", "hairpin", "100", "0.0"},
		{"p1", "parse", "malformed", "frame", "30", "10.0"},
		{"p2", "xsk", "rx_ring_full", "5", "0.0"},
		{"p1", "xdp", "drop_too_big", "4", "2.0"},
		{"total", "139", "12.0"},
	} {
		if got := strings.Fields(lines[2+i]); strings.Join(got, " ") != strings.Join(f, " ") {
			t.Errorf("line %d: %q, want fields %q", 2+i, lines[2+i], f)
		}
	}
}

// A counter that went down (the daemon restarted between the samples)
// has no rate rather than a negative one.
func TestDropsTableCounterReset(t *testing.T) {
	k := dropKey{"p1", "parse", "malformed frame"}
	tbl := dropTableOf(dropCounts{k: 50}, dropCounts{k: 3}, time.Second)
	if len(tbl.Drops) != 1 || tbl.Drops[0].Count != 3 || tbl.Drops[0].Rate != 0 {
		t.Errorf("after a reset: %+v", tbl.Drops)
	}
	if tbl := dropTableOf(dropCounts{}, dropCounts{k: 0}, time.Second); len(tbl.Drops) != 0 || tbl.Total != 0 {
		t.Errorf("no drops: %+v", tbl)
	}
}
