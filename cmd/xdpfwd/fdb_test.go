package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/xdpfwd/xdpfwd/internal/control"
)

// fakeFDB answers the fdb verb over entries as a sparse table does: a page
// covers at most 4 slots of a table with an entry in every other slot, so
// pages come back short or empty with a cursor to go on.
func fakeFDB(t *testing.T, entries []control.FDBEntry) string {
	t.Helper()
	const slotsPerPage = 4
	slots := 2 * len(entries)
	h := func(raw json.RawMessage) (any, error) {
		var a control.FDBArgs
		if err := json.Unmarshal(raw, &a); err != nil {
			return nil, err
		}
		if a.Bridge != "br0" {
			return nil, fmt.Errorf("no bridge %q", a.Bridge)
		}
		p := &control.FDBPage{Bridge: a.Bridge, Entries: []control.FDBEntry{}, Slots: len(entries)}
		i := int(a.Cursor)
		for ; i < slots && i < int(a.Cursor)+slotsPerPage && len(p.Entries) < a.Limit; i++ {
			if i%2 == 1 {
				p.Entries = append(p.Entries, entries[i/2])
			}
		}
		if i < slots {
			p.Next = uint64(i)
		}
		return p, nil
	}
	path := filepath.Join(t.TempDir(), "ctl.sock")
	s, err := control.Listen(path, map[string]control.Handler{"fdb": h})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Serve(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return path
}

// TestListFDB pages through a sparse FDB as `xdpfwd fdb show` does: every
// entry once, sorted; a limit stops early and says whether more are left.
func TestListFDB(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the control socket answers root only; run as root (CI does)")
	}
	t.Cleanup(func() { goleak.VerifyNone(t) })
	var entries []control.FDBEntry
	for i := 9; i >= 0; i-- {
		entries = append(entries, control.FDBEntry{VLAN: uint16(i % 2), MAC: fmt.Sprintf("02:00:00:00:00:%02x", i), Port: "p1"})
	}
	ctl := fakeFDB(t, entries)

	for _, c := range []struct {
		limit, want int
		truncated   bool
	}{{0, 10, false}, {4, 4, true}, {9, 9, true}, {10, 10, false}, {50, 10, false}} {
		l, err := listFDB(ctl, "br0", c.limit)
		if err != nil {
			t.Fatal(err)
		}
		if len(l.Entries) != c.want || l.Truncated != c.truncated {
			t.Errorf("--limit %d: %d entries, truncated %v; want %d, %v", c.limit, len(l.Entries), l.Truncated, c.want, c.truncated)
		}
		for i := 1; i < len(l.Entries); i++ {
			a, b := l.Entries[i-1], l.Entries[i]
			if a.VLAN > b.VLAN || a.VLAN == b.VLAN && a.MAC >= b.MAC {
				t.Errorf("--limit %d: not sorted by VLAN and MAC: %v before %v", c.limit, a, b)
			}
		}
		if c.limit == 0 {
			seen := make(map[string]bool)
			for _, e := range l.Entries {
				seen[e.MAC] = true
			}
			if len(seen) != 10 {
				t.Errorf("--limit 0 listed %d distinct MACs, want 10", len(seen))
			}
		}
	}

	l, err := listFDB(ctl, "br0", 4)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	printFDB(&out, []fdbListing{l}, 4)
	for _, want := range []string{"bridge br0: 4 entries listed", "VLAN  MAC", "about 6 more entries not listed (--limit 4)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if _, err := listFDB(ctl, "br9", 0); err == nil || !strings.Contains(err.Error(), `no bridge "br9"`) {
		t.Errorf("unknown bridge: %v", err)
	}
}
