package fastpath

import (
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
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
	// Swept expired entries make room.
	if n := f.Sweep(400); n != max {
		t.Fatalf("Sweep cleared %d of %d expired entries", n, max)
	}
	if r := f.Learn(macN(max+1), 1, 400); r != LearnNew {
		t.Fatalf("learning after the sweep: %v, want LearnNew", r)
	}
}

// TestFDBReusesExpiredWithoutSweep: a learner takes an expired entry's
// slot even before any sweep.
func TestFDBReusesExpiredWithoutSweep(t *testing.T) {
	const max = 100
	f := newFDB(max, 300)
	for i := range max {
		f.Learn(macN(i+1), 1, 0)
	}
	if r := f.Learn(macN(max+1), 2, 400); r != LearnNew {
		t.Fatalf("learning into a full table of expired entries: %v", r)
	}
	if p, ok := f.Lookup(macN(max+1), 400); !ok || p != 2 {
		t.Fatalf("new MAC: port %d %v", p, ok)
	}
}

// TestFDBSweepEmptiesTombstones churns the table through many generations
// of MACs: after each sweep, lookups of unknown MACs (floods) must stay
// short, and the MACs still live must still be found.
func TestFDBSweepEmptiesTombstones(t *testing.T) {
	const max = 1024
	f := newFDB(max, 300)
	next := 1
	var live []header.MAC
	for round := range 20 {
		now := uint32(round * 400)
		live = live[:0]
		for i := range max - 100 {
			m := macN(next)
			next++
			if r := f.Learn(m, PortID(1+i%3), now); r != LearnNew {
				t.Fatalf("round %d MAC %d: %v", round, i, r)
			}
			if i%10 == 0 {
				live = append(live, m)
			}
		}
		// A tenth is seen again late, so it outlives the sweep.
		for _, m := range live {
			f.Learn(m, 3, now+250)
		}
		// All but this round's live ones have expired, the previous
		// round's live ones included.
		if before, n := f.Len(), f.Sweep(now+310); n != before-len(live) || f.Len() != len(live) {
			t.Fatalf("round %d: Sweep cleared %d of %d, Len %d; want %d live", round, n, before, f.Len(), len(live))
		}
		for _, m := range live {
			if p, ok := f.Lookup(m, now+310); !ok || p != 3 {
				t.Fatalf("round %d: live %v after sweep: port %d %v", round, m, p, ok)
			}
		}
		total, worst := 0, 0
		const unknown = 1000
		for i := range unknown {
			n := f.probes(header.MAC{0x06, 0xee, byte(round), 0, byte(i >> 8), byte(i)})
			total += n
			worst = builtinMax(worst, n)
		}
		if avg := float64(total) / unknown; avg > 1.5 || worst >= fdbMaxProbe {
			t.Fatalf("round %d: an unknown MAC's lookup probes %.2f slots on average, %d at worst", round, avg, worst)
		}
		// Everything expires at the next round; the live ones are swept
		// then too.
	}
	if n := f.Sweep(20*400 + 310); n != len(live) || f.Len() != 0 {
		t.Fatalf("final sweep cleared %d, Len %d; want %d, 0", n, f.Len(), len(live))
	}
	for i := range f.slots {
		if w := f.slots[i].word.Load(); w != 0 {
			t.Fatalf("slot %d is %#x after every entry was swept, want empty", i, w)
		}
	}
}

// TestFDBConcurrent runs learners, lookups and sweeps side by side on a
// clock that advances while they run, with a short ageing time, so the
// sweeper expires entries that learners are refreshing, moving and
// retaking; run with -race. Learners share MACs and learn them on their
// own ports, so the same MAC is learned on several ports at once (the
// duplicate-slot case). Afterwards the table must be consistent.
func TestFDBConcurrent(t *testing.T) {
	const (
		learners = 4
		macs     = 600
		ageing   = 2
	)
	f := newFDB(1024, ageing)
	var clock atomic.Uint32
	var stop atomic.Bool
	var swept, passes atomic.Uint64
	var wg sync.WaitGroup
	for w := range learners {
		wg.Go(func() {
			for round := 0; !stop.Load(); round++ {
				for i := range macs {
					now := clock.Load()
					// For two seconds in every eight nobody sees an eighth
					// of the MACs, so their entries expire; one learner
					// also skips others now and then.
					if i%8 == int(now/2%8) || (i+round+w)%5 == 0 {
						continue
					}
					f.Learn(macN(i+1), PortID(w+1), now)
					f.Lookup(macN((i*7)%macs+1), now)
				}
				passes.Add(1)
			}
		})
	}
	wg.Go(func() {
		defer stop.Store(true)
		for k := range uint64(100) {
			// Let the learners through a pass between two ticks.
			for passes.Load() < 2*k && !t.Failed() {
				runtime.Gosched()
			}
			now := clock.Add(1)
			swept.Add(uint64(f.Sweep(now)))
			if n := len(f.Entries(now)); n > macs {
				t.Errorf("%d entries of %d MACs", n, macs)
				return
			}
		}
	})
	wg.Wait()
	if t.Failed() {
		return
	}
	if swept.Load() == 0 {
		t.Fatal("the sweeper expired nothing: the test raced nothing")
	}
	now := clock.Load()
	checkFDB(t, f, now)
	// Every MAC learned once more on port 1 is found there.
	for i := range macs {
		f.Learn(macN(i+1), 1, now)
	}
	for i := range macs {
		if p, ok := f.Lookup(macN(i+1), now); !ok || p != 1 {
			t.Fatalf("MAC %d after relearning: port %d %v", i+1, p, ok)
		}
	}
	checkFDB(t, f, now)
	// Once all expire, one sweep leaves an empty table.
	f.Sweep(now + ageing)
	if f.Len() != 0 || len(f.Entries(now+ageing)) != 0 {
		t.Fatalf("after the last sweep: Len %d, entries %v", f.Len(), f.Entries(now+ageing))
	}
	for i := range f.slots {
		if w := f.slots[i].word.Load(); w != 0 {
			t.Fatalf("slot %d is %#x after every entry was swept, want empty", i, w)
		}
	}
}

// hasCopyBefore reports whether a slot from home to before i holds the
// MAC of w.
func hasCopyBefore(f *FDB, home, i uint64, w uint64) bool {
	for j := home; j != i; j = (j + 1) & f.mask {
		if v := f.slots[j].word.Load(); wordUsed(v) && wordMAC(v) == wordMAC(w) {
			return true
		}
	}
	return false
}

func builtinMax(a, b int) int { return max(a, b) }

// checkFDB checks f's invariants with no writer running: Len counts the
// occupied slots, Entries lists a MAC at most once, and every live entry
// is found by Lookup (no entry sits beyond an empty slot on its probe
// path).
func checkFDB(t *testing.T, f *FDB, now uint32) {
	t.Helper()
	used := 0
	for i := range f.slots {
		s := &f.slots[i]
		w := s.word.Load()
		if !wordUsed(w) {
			continue
		}
		used++
		// Probes from the entry's home reach its slot (a duplicate copy
		// may come first; Lookup then answers from that one).
		home := f.home(wordMAC(w))
		if !f.reachable(home, (uint64(i)-home)&f.mask) {
			t.Errorf("slot %d: entry %#x lies beyond an empty slot", i, w)
		}
		if _, ok := f.lookup(wordMAC(w), now); f.live(s, w, now) && !ok && !hasCopyBefore(f, home, uint64(i), w) {
			t.Errorf("slot %d: live entry %#x not found by Lookup", i, w)
		}
	}
	if f.Len() != used {
		t.Errorf("Len %d, %d occupied slots", f.Len(), used)
	}
	seen := make(map[header.MAC]bool)
	for _, e := range f.Entries(now) {
		if seen[e.MAC] {
			t.Errorf("Entries lists %v twice", e.MAC)
		}
		seen[e.MAC] = true
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
