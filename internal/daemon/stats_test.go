package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/xdpfwd/xdpfwd/fastpath"
	"github.com/xdpfwd/xdpfwd/fastpath/bridge"
	"github.com/xdpfwd/xdpfwd/fastpath/header"
	"github.com/xdpfwd/xdpfwd/internal/config"
	"github.com/xdpfwd/xdpfwd/internal/control"
)

// testDaemon is a Daemon with bridges and named ports but nothing
// attached: enough for the stats and fdb verbs without privileges. Its
// ports have no XDP program, so Stats may only be called when ports is
// empty.
func testDaemon(t *testing.T, ports []string, bridges ...bridge.Config) *Daemon {
	t.Helper()
	bs, err := bridge.NewSet(&fastpath.PortGroups{}, bridges...)
	if err != nil {
		t.Fatal(err)
	}
	d := &Daemon{cfg: &config.Config{}, log: slog.New(slog.NewTextHandler(io.Discard, nil)), version: "test", bridges: bs}
	for i, name := range ports {
		d.ports = append(d.ports, &port{cfg: config.Port{Interface: name}, id: fastpath.PortID(i)})
	}
	return d
}

// testMAC is the i-th of a run of locally administered unicast MACs.
func testMAC(i int) header.MAC {
	return header.MAC{0x02, 0x00, byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)}
}

func macString(i int) string {
	m := testMAC(i)
	return net.HardwareAddr(m[:]).String()
}

// TestStatsCloseRace reads stats in a loop while Close runs: under -race a
// read of what Close tears down is a failure, and once Close has begun,
// Stats says the daemon is shutting down instead of reading torn state.
func TestStatsCloseRace(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // first registered: runs after the other cleanups
	const n = 1000
	d := testDaemon(t, nil, bridge.Config{Name: "br0", MaxEntries: 2 * n})
	now := fastpath.MonotonicClock().Seconds()
	for i := range n {
		d.bridges.List()[0].FDB().Learn(0, testMAC(i), 0, now)
	}
	st, err := d.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Bridges) != 1 || st.Bridges[0].FDBEntries != n {
		t.Fatalf("stats bridges %+v, want br0 with %d FDB entries", st.Bridges, n)
	}

	var wg sync.WaitGroup
	var closed atomic.Bool
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !closed.Load() {
				if _, err := d.Stats(); err != nil && !errors.Is(err, ErrClosed) {
					errs <- err
					return
				}
			}
		}()
	}
	time.Sleep(10 * time.Millisecond) // the readers are reading
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	closed.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("Stats beside Close: %v", err)
	}
	if st, err := d.Stats(); !errors.Is(err, ErrClosed) || st != nil {
		t.Errorf("Stats after Close = %+v, %v; want %v", st, err, ErrClosed)
	}
	if _, err := d.FDBPage(control.FDBArgs{Bridge: "br0"}); !errors.Is(err, ErrClosed) {
		t.Errorf("FDBPage after Close: %v; want %v", err, ErrClosed)
	}
}

// TestFDBPages lists a bridge's FDB a page at a time through the fdb verb,
// as the CLI does, and finds every entry exactly once on its port.
func TestFDBPages(t *testing.T) {
	const n = 10000
	d := testDaemon(t, []string{"veth-a", "veth-b"},
		bridge.Config{Name: "br0", Ports: []fastpath.PortID{0, 1}, MaxEntries: 2 * n, Static: []bridge.StaticEntry{{MAC: testMAC(n), Port: 1}}},
		bridge.Config{Name: "br1", MaxEntries: 16})
	fdb := d.bridges.List()[0].FDB()
	now := fastpath.MonotonicClock().Seconds()
	for i := range n {
		fdb.Learn(0, testMAC(i), fastpath.PortID(i%2), now)
	}
	want := make(map[string]string)
	for i := range n {
		want[macString(i)] = []string{"veth-a", "veth-b"}[i%2]
	}
	want[macString(n)] = "veth-b"

	seen := make(map[string]int)
	pages := 0
	for cursor := uint64(0); ; pages++ {
		raw, _ := json.Marshal(control.FDBArgs{Bridge: "br0", Cursor: cursor, Limit: 1000})
		res, err := d.Handlers()["fdb"](raw)
		if err != nil {
			t.Fatal(err)
		}
		page := res.(*control.FDBPage)
		if len(page.Entries) > 1000 {
			t.Fatalf("page of %d entries, limit 1000", len(page.Entries))
		}
		if page.Slots != n+1 {
			t.Errorf("page says %d slots in use, want %d", page.Slots, n+1)
		}
		for _, e := range page.Entries {
			seen[e.MAC]++
			if e.Port != want[e.MAC] {
				t.Errorf("%s on %q, want %q", e.MAC, e.Port, want[e.MAC])
			}
			if e.Static != (e.MAC == macString(n)) {
				t.Errorf("%s: static %v", e.MAC, e.Static)
			}
		}
		if page.Next == 0 {
			break
		}
		if page.Next <= cursor {
			t.Fatalf("cursor went from %d to %d", cursor, page.Next)
		}
		cursor = page.Next
	}
	if len(seen) != len(want) {
		t.Errorf("listed %d distinct MACs, want %d", len(seen), len(want))
	}
	for mac, k := range seen {
		if k != 1 {
			t.Errorf("%s listed %d times", mac, k)
		}
	}
	if pages < n/1000 {
		t.Errorf("%d pages for %d entries at 1000 a page", pages, n+1)
	}

	// An empty bridge has one empty page; an unknown one is an error
	// naming the bridges there are.
	if p, err := d.FDBPage(control.FDBArgs{Bridge: "br1"}); err != nil || len(p.Entries) != 0 || p.Next != 0 {
		t.Errorf("empty bridge: %+v, %v", p, err)
	}
	_, err := d.FDBPage(control.FDBArgs{Bridge: "br9"})
	if err == nil || !strings.Contains(err.Error(), `no bridge "br9" (bridges: br0, br1)`) {
		t.Errorf("unknown bridge: %v", err)
	}
	if _, err := d.Handlers()["fdb"](json.RawMessage(`{"bridge": 7}`)); err == nil || !strings.Contains(err.Error(), "fdb arguments") {
		t.Errorf("malformed arguments: %v", err)
	}
}

// BenchmarkStats measures a stats call on a bridge with a large FDB: it
// reads counters only, so its cost does not grow with the table.
func BenchmarkStats(b *testing.B) {
	for _, n := range []int{0, 1 << 20} {
		b.Run(fmt.Sprintf("fdb=%d", n), func(b *testing.B) {
			bs, err := bridge.NewSet(&fastpath.PortGroups{}, bridge.Config{Name: "br0", MaxEntries: max(n, 1)})
			if err != nil {
				b.Fatal(err)
			}
			d := &Daemon{cfg: &config.Config{}, bridges: bs}
			now := fastpath.MonotonicClock().Seconds()
			for i := range n {
				bs.List()[0].FDB().Learn(0, testMAC(i), 0, now)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := d.Stats(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkFDBPage measures one fdb call of a full page (control.MaxFDBPage
// entries) on a bridge with a million entries.
func BenchmarkFDBPage(b *testing.B) {
	const n = 1 << 20
	bs, err := bridge.NewSet(&fastpath.PortGroups{}, bridge.Config{Name: "br0", Ports: []fastpath.PortID{0}, MaxEntries: n})
	if err != nil {
		b.Fatal(err)
	}
	d := &Daemon{cfg: &config.Config{}, bridges: bs, ports: []*port{{cfg: config.Port{Interface: "p0"}}}}
	now := fastpath.MonotonicClock().Seconds()
	for i := range n {
		bs.List()[0].FDB().Learn(0, testMAC(i), 0, now)
	}
	b.ReportAllocs()
	var cursor uint64
	for b.Loop() {
		p, err := d.FDBPage(control.FDBArgs{Bridge: "br0", Cursor: cursor, Limit: control.MaxFDBPage})
		if err != nil {
			b.Fatal(err)
		}
		cursor = p.Next
	}
}
