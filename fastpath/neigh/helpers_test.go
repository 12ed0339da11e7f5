package neigh

import (
	"net/netip"
	"testing"
	"time"

	"github.com/xdpfwd/xdpfwd/fastpath/header"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// env is a table, a worker and a fake clock.
type env struct {
	t   *testing.T
	tab *Table
	w   *Worker
	now time.Duration // since start
	// start offsets the clock, to test wrap-around.
	start int64
}

var (
	macA = header.MAC{0x02, 0, 0, 0, 0, 0x0a}
	macB = header.MAC{0x02, 0, 0, 0, 0, 0x0b}
	ip4  = ip16("10.1.0.2")
	ip6  = ip16("fd00:1::2")
)

func ip16(s string) [16]byte { return netip.MustParseAddr(s).As16() }

// fixedRand makes the reachable time exactly base_reachable_time.
func fixedRand(n uint64) uint64 { return n / 2 }

func newEnv(t *testing.T, mod func(*Config)) *env {
	t.Helper()
	cfg := Config{Params: DefaultParams(), Rand: fixedRand}
	if mod != nil {
		mod(&cfg)
	}
	tab, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	w, err := tab.NewWorker(256)
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, tab: tab, w: w}
}

func (e *env) clock() int64 { return e.start + int64(e.now) }

func (e *env) at(d time.Duration) *env { e.now = d; return e }

func (e *env) resolve(ip [16]byte) (header.MAC, Action) {
	return e.w.Resolve(1, ip, e.clock())
}

func (e *env) confirm(ip [16]byte, mac header.MAC, how How) Outcome {
	return e.tab.Confirm(1, ip, mac, how, e.clock())
}

func (e *env) state(ip [16]byte) State {
	l, ok := e.tab.Lookup(1, netip.AddrFrom16(ip), e.clock())
	if !ok {
		return StateNone
	}
	return l.State
}

func (e *env) entry(ip [16]byte) Entry {
	e.t.Helper()
	l, ok := e.tab.Lookup(1, netip.AddrFrom16(ip), e.clock())
	if !ok {
		e.t.Fatalf("no entry for %v", netip.AddrFrom16(ip))
	}
	return l
}

func (e *env) poll() []Event {
	ev := make([]Event, 512)
	n := e.w.Poll(e.clock(), ev)
	return ev[:n]
}
