package daemon

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/xdpfwd/xdpfwd/conntrack"
	"github.com/xdpfwd/xdpfwd/fastpath"
	"github.com/xdpfwd/xdpfwd/internal/config"
	"github.com/xdpfwd/xdpfwd/internal/control"
)

// A changed conntrack section needs a restart: the flow table is sized and
// configured once. Moving it in the file does not.
func TestDataplaneChangeConntrack(t *testing.T) {
	const base = "ports:\n  - interface: a\nconntrack:\n  max: 1024\n  timeouts:\n    udp_timeout: 60\n"
	parse := func(src string) *config.Config {
		t.Helper()
		c, err := config.Parse("x.yaml", []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	a := parse(base)
	for _, tc := range []struct{ name, src, want string }{
		{"same", base, ""},
		{"moved", "# moved\n" + base, ""},
		{"max", strings.Replace(base, "1024", "2048", 1), "Conntrack.Max"},
		{"timeout", strings.Replace(base, "60", "61", 1), "Conntrack.Timeouts.UDP"},
		{"tcp timeout", base + "    tcp_timeout_established: 100\n", "Conntrack.Timeouts.TCP[3]"},
		{"buckets", base + "  buckets: 64\n", "Conntrack.Buckets"},
		{"loose", base + "  tcp_loose: false\n", "Conntrack.TCP.Loose"},
		{"section removed", "ports:\n  - interface: a\n", "Conntrack.Max"},
	} {
		if got := dataplaneChange(a, parse(tc.src)); got != tc.want {
			t.Errorf("%s: dataplaneChange = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// The daemon's table takes the file's conntrack section.
func TestConntrackConfig(t *testing.T) {
	c, err := config.Parse("x.yaml", []byte("ports:\n  - interface: a\nconntrack:\n  max: 1000\n  buckets: 64\n  timeouts:\n    icmp_timeout: 5\n  tcp_be_liberal: 1\n  tcp_max_retrans: 7\n"))
	if err != nil {
		t.Fatal(err)
	}
	d := &Daemon{cfg: c}
	cc := d.conntrackConfig()
	want := conntrack.DefaultTimeouts()
	want.ICMP = 5 * time.Second
	if cc.Max != 1000 || cc.Buckets != 64 || cc.Timeouts != want || *cc.TCP != (conntrack.TCPConfig{Loose: true, BeLiberal: true, MaxRetrans: 7}) {
		t.Errorf("conntrackConfig = %+v", cc)
	}
	d = &Daemon{cfg: &config.Config{}}
	if cc := d.conntrackConfig(); cc.Max != conntrack.DefaultMax || cc.Timeouts != conntrack.DefaultTimeouts() || *cc.TCP != conntrack.DefaultTCPConfig() {
		t.Errorf("a configuration made in code: %+v", cc)
	}
}

// ctDaemon is a daemon with a flow table of n UDP flows 10.0.x.y:1000+i →
// 192.0.2.1:53, every third one replied, and an ICMP echo.
func ctDaemon(t *testing.T, n int) *Daemon {
	t.Helper()
	d := testDaemon(t, nil)
	d.ct = conntrack.NewTracker(conntrack.New(conntrack.Config{Max: n + 16}))
	w := d.ct.Table().NewWorker()
	now := int64(fastpath.MonotonicClock())
	add := func(k conntrack.Tuple, reply bool) {
		var e conntrack.Entry
		if st, res := w.Prepare(&k, nil, now, &e); st != conntrack.StateNew || res != conntrack.PacketAccept {
			t.Fatalf("Prepare %v: %v %v", k, st, res)
		}
		c, res := w.Confirm(&e, now)
		if res != conntrack.ConfirmInserted {
			t.Fatalf("Confirm %v: %v", k, res)
		}
		if reply {
			r := e.Tuple[1]
			rc, ok := w.Lookup(&r, now)
			if !ok || rc.Dir() != conntrack.DirReply {
				t.Fatalf("reply of %v not found", k)
			}
			w.Packet(rc, nil, now)
		}
		_ = c
	}
	for i := range n {
		var k conntrack.Tuple
		k.SetAddrs(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), netip.MustParseAddr("192.0.2.1"))
		k.Proto, k.SrcPort, k.DstPort = conntrack.ProtoUDP, uint16(1000+i), 53
		add(k, i%3 == 0)
	}
	var k conntrack.Tuple
	k.SetAddrs(netip.MustParseAddr("10.9.0.1"), netip.MustParseAddr("10.9.0.2"))
	k.Proto, k.SrcPort, k.DstPort = conntrack.ProtoICMP, 77, 8<<8
	add(k, true)
	return d
}

func call[T any](t *testing.T, d *Daemon, verb string, args any) T {
	t.Helper()
	var raw json.RawMessage
	if args != nil {
		var err error
		if raw, err = json.Marshal(args); err != nil {
			t.Fatal(err)
		}
	}
	res, err := d.Handlers()[verb](raw)
	if err != nil {
		t.Fatalf("%s: %v", verb, err)
	}
	js, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var out T
	if err := json.Unmarshal(js, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// ct-list pages through the table, filters as conntrack -L, and formats
// the lines as it does; ct-count, ct-flush and ct-stats answer as -C, -F
// and -S.
func TestCtVerbs(t *testing.T) {
	const n = 300
	d := ctDaemon(t, n)
	list := func(filter []string, limit int) ([]control.CtEntry, int) {
		var all []control.CtEntry
		calls := 0
		for cur := uint32(0); ; {
			p := call[control.CtPage](t, d, "ct-list", control.CtListArgs{Filter: filter, Cursor: cur, Limit: limit})
			calls++
			if len(p.Entries) > max(limit, 0) && limit > 0 {
				t.Fatalf("page of %d entries, limit %d", len(p.Entries), limit)
			}
			all = append(all, p.Entries...)
			if p.Next == 0 {
				return all, calls
			}
			cur = p.Next
		}
	}
	all, _ := list(nil, 0)
	if len(all) != n+1 {
		t.Fatalf("listed %d entries, want %d", len(all), n+1)
	}
	paged, calls := list(nil, 7)
	if len(paged) != n+1 || calls < (n+1)/7 {
		t.Errorf("paged by 7: %d entries in %d calls", len(paged), calls)
	}
	e := all[0]
	if e.Line != "udp      17 29 src=10.0.0.0 dst=192.0.2.1 sport=1000 dport=53 src=192.0.2.1 dst=10.0.0.0 sport=53 dport=1000 mark=0 use=1" &&
		e.Line != "udp      17 30 src=10.0.0.0 dst=192.0.2.1 sport=1000 dport=53 src=192.0.2.1 dst=10.0.0.0 sport=53 dport=1000 mark=0 use=1" {
		t.Errorf("line %q", e.Line)
	}
	if e.Family != "ipv4" || e.Proto != "udp" || e.ProtoNum != 17 || *e.Original.Sport != 1000 || *e.Reply.Sport != 53 || e.Original.Type != nil ||
		strings.Join(e.Status, ",") != "seen-reply,confirmed" {
		t.Errorf("entry %+v", e)
	}
	if !strings.Contains(all[1].Line, "[UNREPLIED]") || strings.Join(all[1].Status, ",") != "confirmed" {
		t.Errorf("unreplied entry %+v", all[1])
	}
	icmp := all[n]
	if icmp.Line[:9] != "icmp     " || !strings.Contains(icmp.Line, "type=8 code=0 id=77 src=10.9.0.2 dst=10.9.0.1 type=0 code=0 id=77 mark=0 use=1") ||
		*icmp.Original.Type != 8 || *icmp.Reply.Type != 0 || *icmp.Original.ID != 77 || icmp.Original.Sport != nil {
		t.Errorf("icmp entry %+v", icmp)
	}
	for _, tc := range []struct {
		filter string
		want   int
	}{
		{"-p udp", n},
		{"-p icmp", 1},
		{"-p udp --sport 1005", 1},
		{"-s 10.0.1.0/24", n - 256},
		{"-d 192.0.2.1 -f ipv4", n},
		{"-f ipv6", 0},
		{"-r 10.9.0.2", 1},
	} {
		got, _ := list(strings.Fields(tc.filter), 0)
		if len(got) != tc.want {
			t.Errorf("%q: %d entries, want %d", tc.filter, len(got), tc.want)
		}
	}
	if _, err := d.Handlers()["ct-list"](json.RawMessage(`{"filter": ["--sport", "1"]}`)); err == nil || !strings.Contains(err.Error(), "ct list filter: ") {
		t.Errorf("bad filter: %v", err)
	}
	if c := call[control.CtCount](t, d, "ct-count", nil); c.Count != n+1 || c.Max != n+16 {
		t.Errorf("count %+v", c)
	}
	if st := call[control.CtStats](t, d, "ct-stats", nil); st.Enabled || len(st.Workers) != 0 {
		t.Errorf("stats %+v (no worker attached)", st)
	}
	if f := call[control.CtFlushResult](t, d, "ct-flush", nil); f.Deleted != n+1 {
		t.Errorf("flush deleted %d", f.Deleted)
	}
	if c := call[control.CtCount](t, d, "ct-count", nil); c.Count != 0 {
		t.Errorf("count after flush %+v", c)
	}
	if got, _ := list(nil, 0); len(got) != 0 {
		t.Errorf("%d entries after flush", len(got))
	}
	d.closed = true
	if _, err := d.Handlers()["ct-count"](nil); err != ErrClosed {
		t.Errorf("closed: %v", err)
	}
	d2 := testDaemon(t, nil)
	if _, err := d2.Handlers()["ct-list"](nil); err == nil || !strings.Contains(err.Error(), "not set up") {
		t.Errorf("no tracker: %v", err)
	}
}
