package fastpath

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xdpfwd/xdpfwd/fastpath/header"
)

func macN(i int) header.MAC {
	return header.MAC{0x02, 0, byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)}
}

func TestFDBEntriesAndSweep(t *testing.T) {
	f := newFDB(16, 10)
	f.addStatic(macC, 3)
	f.Learn(macA, 1, 100)
	f.Learn(macB, 2, 105)
	got := f.Entries(108)
	want := []FDBEntry{{MAC: macA, Port: 1, Age: 8}, {MAC: macB, Port: 2, Age: 3}, {MAC: macC, Port: 3, Static: true}}
	if len(got) != len(want) {
		t.Fatalf("entries %+v, want %+v", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("entry %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if n := f.Sweep(111); n != 1 || f.Len() != 2 {
		t.Fatalf("Sweep cleared %d, Len %d; want 1, 2", n, f.Len())
	}
	if _, ok := f.Lookup(macB, 111); !ok {
		t.Fatal("B lost by the sweep")
	}
	if r := f.Learn(macA, 1, 112); r != LearnNew {
		t.Fatalf("relearn after sweep: %v", r)
	}
	if p, ok := f.Lookup(macA, 112); !ok || p != 1 {
		t.Fatalf("A after relearn: %d %v", p, ok)
	}
}

func TestFDBFullAtExactlyMax(t *testing.T) {
	const max = 100
	f := newFDB(max, 300)
	for i := range max {
		if r := f.Learn(macN(i+1), 1, 0); r != LearnNew {
			t.Fatalf("MAC %d: %v", i, r)
		}
	}
	if r := f.Learn(macN(max+1), 1, 0); r != LearnFull {
		t.Fatalf("MAC %d of %d: %v, want LearnFull", max+1, max, r)
	}
	for i := range max {
		if _, ok := f.Lookup(macN(i+1), 1); !ok {
			t.Fatalf("MAC %d lost when the table filled", i)
		}
	}
	// Expired entries make room.
	if r := f.Learn(macN(max+1), 1, 400); r != LearnNew && f.Sweep(400) == 0 {
		t.Fatal("no room after every entry expired")
	}
}

// TestFDBConcurrent runs learners, lookups and sweeps side by side; run with
// -race. Every worker owns its MACs, so each must always find its own
// stations on its own port.
func TestFDBConcurrent(t *testing.T) {
	f := newFDB(4096, 300)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for round := range 50 {
				for i := range 200 {
					m := macN(w<<16 | i)
					f.Learn(m, PortID(w), uint32(round))
					if p, ok := f.Lookup(m, uint32(round)); !ok || p != PortID(w) {
						t.Errorf("worker %d MAC %d: port %d %v", w, i, p, ok)
						return
					}
				}
			}
		})
	}
	wg.Go(func() {
		for range 100 {
			f.Sweep(0)
			f.Entries(0)
		}
	})
	wg.Wait()
	if n := len(f.Entries(49)); n != 800 {
		t.Fatalf("%d entries, want 800", n)
	}
}

func TestNewBridgesErrors(t *testing.T) {
	tests := []struct {
		cfgs []BridgeConfig
		want string
	}{
		{[]BridgeConfig{{Name: "a", Ports: []PortID{1}}, {Name: "b", Ports: []PortID{1}}}, `port 1 already belongs to bridge "a"`},
		{[]BridgeConfig{{Name: "a"}, {Name: "a"}}, "name used twice"},
		{[]BridgeConfig{{Ports: []PortID{1}}}, "no name"},
		{[]BridgeConfig{{Name: "a", Ports: []PortID{1, 1}}}, "listed twice"},
		{[]BridgeConfig{{Name: "a", AgeingTime: time.Millisecond}}, "whole seconds"},
		{[]BridgeConfig{{Name: "a", MaxEntries: -1}}, "max entries"},
		{[]BridgeConfig{{Name: "a", Ports: []PortID{MaxPorts}}}, "below"},
		{[]BridgeConfig{{Name: "a", Ports: []PortID{1}, Static: []StaticEntry{{MAC: macA, Port: 2}}}}, "not a port of the bridge"},
		{[]BridgeConfig{{Name: "a", Ports: []PortID{1}, Static: []StaticEntry{{MAC: bcast, Port: 1}}}}, "not a unicast"},
	}
	for _, tt := range tests {
		_, err := NewBridges(tt.cfgs...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("NewBridges(%+v) = %v, want an error with %q", tt.cfgs, err, tt.want)
		}
	}
}
