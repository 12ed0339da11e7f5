package bridge

import (
	"cmp"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xdpfwd/xdpfwd/fastpath"
	"github.com/xdpfwd/xdpfwd/fastpath/header"
)

func macN(i int) header.MAC {
	return header.MAC{0x02, 0, byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)}
}

func TestFDBEntriesAndSweep(t *testing.T) {
	f := newFDB(16, 10)
	f.addStatic(0, macC, 3)
	f.Learn(0, macA, 1, 100)
	f.Learn(0, macB, 2, 105)
	got := allEntries(f, 108)
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
	if _, ok := f.Lookup(0, macB, 111); !ok {
		t.Fatal("B lost by the sweep")
	}
	if r := f.Learn(0, macA, 1, 112); r != LearnNew {
		t.Fatalf("relearn after sweep: %v", r)
	}
	if p, ok := f.Lookup(0, macA, 112); !ok || p != 1 {
		t.Fatalf("A after relearn: %d %v", p, ok)
	}
}

func TestFDBFullAtExactlyMax(t *testing.T) {
	const max = 100
	f := newFDB(max, 300)
	for i := range max {
		if r := f.Learn(0, macN(i+1), 1, 0); r != LearnNew {
			t.Fatalf("MAC %d: %v", i, r)
		}
	}
	if r := f.Learn(0, macN(max+1), 1, 0); r != LearnFull {
		t.Fatalf("MAC %d of %d: %v, want LearnFull", max+1, max, r)
	}
	for i := range max {
		if _, ok := f.Lookup(0, macN(i+1), 1); !ok {
			t.Fatalf("MAC %d lost when the table filled", i)
		}
	}
	// Swept expired entries make room.
	if n := f.Sweep(400); n != max {
		t.Fatalf("Sweep cleared %d of %d expired entries", n, max)
	}
	if r := f.Learn(0, macN(max+1), 1, 400); r != LearnNew {
		t.Fatalf("learning after the sweep: %v, want LearnNew", r)
	}
}

// TestFDBReusesExpiredWithoutSweep: a learner takes an expired entry's
// slot even before any sweep.
func TestFDBReusesExpiredWithoutSweep(t *testing.T) {
	const max = 100
	f := newFDB(max, 300)
	for i := range max {
		f.Learn(0, macN(i+1), 1, 0)
	}
	// A new MAC whose home slot holds one of them (its probe meets that
	// expired entry before any empty slot).
	m := macN(max + 1)
	for i := max + 1; !wordUsed(f.slots[f.home(fdbKey(0, m))].word.Load()); i++ {
		m = macN(i)
	}
	if r := f.Learn(0, m, 2, 400); r != LearnNew {
		t.Fatalf("learning into a full table of expired entries: %v", r)
	}
	if p, ok := f.Lookup(0, m, 400); !ok || p != 2 {
		t.Fatalf("new MAC: port %d %v", p, ok)
	}
	if f.Len() != max {
		t.Fatalf("Len %d, want %d: the expired slot was reused", f.Len(), max)
	}
}

// TestFDBSweepEmptiesTombstones churns the table through many generations
// of MACs: after each sweep, lookups of unknown MACs (floods) must stay
// short, and the MACs still live must still be found.
func TestFDBSweepEmptiesTombstones(t *testing.T) {
	// A fixed seed: with a random one, a run of 32 occupied slots (live
	// entries, not tombstones) now and then makes the worst probe hit the
	// window by chance, which is not what this test is about.
	withSeed(t, 0x0123456789abcdef, 0xfedcba9876543210)
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
			if r := f.Learn(0, m, fastpath.PortID(1+i%3), now); r != LearnNew {
				t.Fatalf("round %d MAC %d: %v", round, i, r)
			}
			if i%10 == 0 {
				live = append(live, m)
			}
		}
		// A tenth is seen again late, so it outlives the sweep.
		for _, m := range live {
			f.Learn(0, m, 3, now+250)
		}
		// All but this round's live ones have expired, the previous
		// round's live ones included.
		if before, n := f.Len(), f.Sweep(now+310); n != before-len(live) || f.Len() != len(live) {
			t.Fatalf("round %d: Sweep cleared %d of %d, Len %d; want %d live", round, n, before, f.Len(), len(live))
		}
		for _, m := range live {
			if p, ok := f.Lookup(0, m, now+310); !ok || p != 3 {
				t.Fatalf("round %d: live %v after sweep: port %d %v", round, m, p, ok)
			}
		}
		total, worst := 0, 0
		const unknown = 1000
		for i := range unknown {
			n := f.probes(0, header.MAC{0x06, 0xee, byte(round), 0, byte(i >> 8), byte(i)})
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
// retaking; run with -race. Learners share MACs and learn each on a port
// of their own among the MAC's ports (ownPorts), so the same MAC is
// learned on several ports at once (the duplicate-slot case). Every
// lookup and listing meanwhile answers one of the MAC's ports or nothing,
// never another MAC's; afterwards the table must be consistent.
func TestFDBConcurrent(t *testing.T) {
	const (
		learners = 4
		macs     = 600
		ageing   = 2
	)
	f := newFDB(1024, ageing)
	index := make(map[header.MAC]int, macs)
	for i := range macs {
		index[macN(i+1)] = i
	}
	var clock atomic.Uint32
	var stop atomic.Bool
	var swept, passes, found atomic.Uint64
	var bad badAnswers
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
					f.Learn(0, macN(i+1), ownPort(i, w, learners), now)
					j := (i * 7) % macs
					if p, ok := f.Lookup(0, macN(j+1), now); ok {
						found.Add(1)
						bad.check(j, p, learners, "Lookup")
					}
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
			es := allEntries(f, now)
			if len(es) > macs {
				t.Errorf("%d entries of %d MACs", len(es), macs)
				return
			}
			for _, e := range es {
				bad.check(index[e.MAC], e.Port, learners, "Page")
			}
		}
	})
	wg.Wait()
	bad.report(t)
	if t.Failed() {
		return
	}
	if swept.Load() == 0 || found.Load() == 0 {
		t.Fatalf("the sweeper expired %d entries, lookups found %d: the test raced nothing", swept.Load(), found.Load())
	}
	now := clock.Load()
	checkFDB(t, f, now)
	// Every MAC learned once more on its first port is found there.
	for i := range macs {
		f.Learn(0, macN(i+1), ownPort(i, 0, learners), now)
	}
	for i := range macs {
		if p, ok := f.Lookup(0, macN(i+1), now); !ok || p != ownPort(i, 0, learners) {
			t.Fatalf("MAC %d after relearning: port %d %v, want %d", i+1, p, ok, ownPort(i, 0, learners))
		}
	}
	checkFDB(t, f, now)
	// Once all expire, one sweep leaves an empty table.
	f.Sweep(now + ageing)
	if f.Len() != 0 || len(allEntries(f, now+ageing)) != 0 {
		t.Fatalf("after the last sweep: Len %d, entries %v", f.Len(), allEntries(f, now+ageing))
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
		if v := f.slots[j].word.Load(); wordUsed(v) && wordKey(v) == wordKey(w) {
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
		if wordBusy(w) {
			t.Errorf("slot %d: %#x is still claimed (busy) with no writer running", i, w)
		}
		// Probes from the entry's home reach its slot (a duplicate copy
		// may come first; Lookup then answers from that one).
		home := f.home(wordKey(w))
		if !f.reachable(home, (uint64(i)-home)&f.mask) {
			t.Errorf("slot %d: entry %#x lies beyond an empty slot", i, w)
		}
		if _, ok := f.lookup(wordKey(w), now); f.live(s, w, now) && !ok && !hasCopyBefore(f, home, uint64(i), w) {
			t.Errorf("slot %d: live entry %#x not found by Lookup", i, w)
		}
	}
	if f.Len() != used {
		t.Errorf("Len %d, %d occupied slots", f.Len(), used)
	}
	seen := make(map[header.MAC]bool)
	for _, e := range allEntries(f, now) {
		if seen[e.MAC] {
			t.Errorf("Entries lists %v twice", e.MAC)
		}
		seen[e.MAC] = true
	}
}

func TestNewBridgesErrors(t *testing.T) {
	tests := []struct {
		cfgs []Config
		want string
	}{
		{[]Config{{Name: "a", Ports: []fastpath.PortID{1}}, {Name: "b", Ports: []fastpath.PortID{1}}}, `port 1 already belongs to bridge "a"`},
		{[]Config{{Name: "a"}, {Name: "a"}}, "name used twice"},
		{[]Config{{Ports: []fastpath.PortID{1}}}, "no name"},
		{[]Config{{Name: "a", Ports: []fastpath.PortID{1, 1}}}, "listed twice"},
		{[]Config{{Name: "a", AgeingTime: time.Millisecond}}, "whole seconds"},
		{[]Config{{Name: "a", MaxEntries: -1}}, "max entries"},
		{[]Config{{Name: "a", Ports: []fastpath.PortID{fastpath.MaxPorts}}}, "below"},
		{[]Config{{Name: "a", Ports: []fastpath.PortID{1}, Static: []StaticEntry{{MAC: macA, Port: 2}}}}, "not a port of the bridge"},
		{[]Config{{Name: "a", Ports: []fastpath.PortID{1}, Static: []StaticEntry{{MAC: bcast, Port: 1}}}}, "not a unicast"},
	}
	for _, tt := range tests {
		_, err := NewSet(&fastpath.PortGroups{}, tt.cfgs...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("NewBridges(%+v) = %v, want an error with %q", tt.cfgs, err, tt.want)
		}
	}
}

// withSeed keys the FDBs made during the test with a known seed, the
// test-only way to set it, and puts the process's random seed back after.
func withSeed(t testing.TB, k0, k1 uint64) {
	old := fdbSeed
	fdbSeed = [2]uint64{k0, k1}
	t.Cleanup(func() { fdbSeed = old })
}

// collide returns n MACs other than victim whose keys on VLAN vid have
// victim's home slot in f: what an attacker who knew f's seed would send.
func collide(f *FDB, vid uint16, victim header.MAC, n int) []header.MAC {
	home := f.home(fdbKey(vid, victim))
	var out []header.MAC
	for i := 0; len(out) < n; i++ {
		m := header.MAC{0x02, 0xad, byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)}
		if m != victim && f.home(fdbKey(vid, m)) == home {
			out = append(out, m)
		}
	}
	return out
}

var macVictim = header.MAC{0x02, 0x76, 0x69, 0x63, 0x74, 0x6d}

// TestFDBEvictsOldestWhenWindowFull: 32 MACs sharing a victim's home slot
// fill every slot the victim may take; the victim is learned anyway, in
// the slot of the dynamic entry seen longest ago, and static entries are
// never evicted.
func TestFDBEvictsOldestWhenWindowFull(t *testing.T) {
	withSeed(t, 0x0123456789abcdef, 0xfedcba9876543210)
	f := newFDB(1024, 300)
	attackers := collide(f, 0, macVictim, fdbMaxProbe)
	// attackers[5] is seen first, so it is the oldest.
	f.Learn(0, attackers[5], 2, 1)
	for i, m := range attackers {
		if i != 5 {
			f.Learn(0, m, 2, uint32(10+i))
		}
	}
	if f.Len() != fdbMaxProbe {
		t.Fatalf("Len %d after the attack, want %d", f.Len(), fdbMaxProbe)
	}
	if r := f.Learn(0, macVictim, 1, 50); r != LearnEvicted {
		t.Fatalf("victim: %v, want LearnEvicted", r)
	}
	if p, ok := f.Lookup(0, macVictim, 50); !ok || p != 1 {
		t.Fatalf("victim after learning: port %d %v, want 1", p, ok)
	}
	if _, ok := f.Lookup(0, attackers[5], 50); ok {
		t.Fatal("the oldest attacker MAC is still there: the eviction took another")
	}
	for i, m := range attackers {
		if _, ok := f.Lookup(0, m, 50); !ok && i != 5 {
			t.Fatalf("attacker MAC %d evicted, want only the oldest (5)", i)
		}
	}
	if f.Len() != fdbMaxProbe {
		t.Fatalf("Len %d after the eviction, want %d", f.Len(), fdbMaxProbe)
	}
	checkFDB(t, f, 50)

	// Static entries stay: with 31 of them and one dynamic entry in the
	// window, the dynamic one goes; with 32, nothing can be learned.
	f = newFDB(1024, 300)
	for _, m := range attackers[:fdbMaxProbe-1] {
		f.addStatic(0, m, 3)
	}
	f.Learn(0, attackers[fdbMaxProbe-1], 2, 100)
	if r := f.Learn(0, macVictim, 1, 100); r != LearnEvicted {
		t.Fatalf("victim among statics: %v, want LearnEvicted", r)
	}
	for _, m := range attackers[:fdbMaxProbe-1] {
		if p, ok := f.Lookup(0, m, 100); !ok || p != 3 {
			t.Fatalf("static %v: port %d %v after the eviction", m, p, ok)
		}
	}
	checkFDB(t, f, 100)
	f = newFDB(1024, 300)
	for _, m := range attackers {
		f.addStatic(0, m, 3)
	}
	if r := f.Learn(0, macVictim, 1, 100); r != LearnFull {
		t.Fatalf("window of static entries only: %v, want LearnFull", r)
	}
	checkFDB(t, f, 100)
}

// TestFDBSeedKeysTheHash: the MACs that fill a window under one seed are
// spread out under another, so colliding MACs computed for one process
// (or for the old unkeyed hash) do not collide in the next; and the
// process's seed is random, not zero.
func TestFDBSeedKeysTheHash(t *testing.T) {
	if fdbSeed == [2]uint64{} {
		t.Fatal("the process's FDB seed is zero")
	}
	withSeed(t, 1, 2)
	a := newFDB(1024, 300)
	attackers := collide(a, 0, macVictim, fdbMaxProbe)
	withSeed(t, 3, 4)
	b := newFDB(1024, 300)
	home := b.home(fdbKey(0, macVictim))
	same := 0
	for _, m := range attackers {
		if b.home(fdbKey(0, m)) == home {
			same++
		}
	}
	if same > 2 {
		t.Fatalf("%d of %d MACs colliding under one seed still share the victim's home under another", same, len(attackers))
	}
	for _, m := range attackers {
		b.Learn(0, m, 2, 0)
	}
	if r := b.Learn(0, macVictim, 1, 0); r != LearnNew {
		t.Fatalf("victim under another seed: %v, want LearnNew (nothing evicted)", r)
	}
	// The VLAN is part of the key: the same MAC on another VLAN has
	// another home.
	moved := 0
	for _, m := range attackers {
		if a.home(fdbKey(10, m)) != a.home(fdbKey(0, m)) {
			moved++
		}
	}
	if moved < len(attackers)-2 {
		t.Fatalf("only %d of %d MACs hash elsewhere on VLAN 10", moved, len(attackers))
	}
}

// TestFDBVLANs: one MAC on two VLANs is two entries, on their own ports;
// learning on one VLAN moves nothing on the other.
func TestFDBVLANs(t *testing.T) {
	f := newFDB(64, 300)
	f.Learn(10, macA, 1, 0)
	f.Learn(20, macA, 3, 0)
	f.addStatic(20, macB, 4)
	for _, c := range []struct {
		vid  uint16
		mac  header.MAC
		port fastpath.PortID
		ok   bool
	}{{10, macA, 1, true}, {20, macA, 3, true}, {0, macA, 0, false}, {30, macA, 0, false}, {20, macB, 4, true}, {10, macB, 0, false}} {
		if p, ok := f.Lookup(c.vid, c.mac, 1); p != c.port || ok != c.ok {
			t.Errorf("Lookup(%d, %v) = %d %v, want %d %v", c.vid, c.mac, p, ok, c.port, c.ok)
		}
	}
	if r := f.Learn(10, macA, 2, 1); r != LearnMoved {
		t.Fatalf("move on VLAN 10: %v", r)
	}
	if p, _ := f.Lookup(20, macA, 1); p != 3 {
		t.Fatalf("A on VLAN 20 moved to %d with the move on VLAN 10", p)
	}
	want := []FDBEntry{{VLAN: 10, MAC: macA, Port: 2}, {VLAN: 20, MAC: macA, Port: 3, Age: 1}, {VLAN: 20, MAC: macB, Port: 4, Static: true}}
	if got := allEntries(f, 1); !slices.Equal(got, want) {
		t.Fatalf("Entries %+v, want %+v", got, want)
	}
}

// TestFDBPage: pages list every live entry once, in slot order, within
// their limit; expired entries and duplicate copies are left out; Len
// counts without reading the table.
func TestFDBPage(t *testing.T) {
	const n = 3000
	f := newFDB(4096, 300) // 8192 slots: two pages of 4096 slots at least
	for i := range n {
		f.Learn(uint16(i%3), macN(i+1), fastpath.PortID(1+i%5), uint32(i%100))
	}
	// A duplicate copy of one entry further along its probe path, as two
	// workers learning one MAC at once leave it; lookups answer from the
	// first copy, and so must the listing.
	dupKey := fdbKey(1, macN(2))
	j := f.home(dupKey)
	for f.slots[j].word.Load() != 0 {
		j = (j + 1) & f.mask
	}
	f.slots[j].val.Store(makeVal(9, 150, f.tag(dupKey)))
	f.slots[j].word.Store(entryWord(dupKey))
	f.entries.Add(1)

	for _, limit := range []int{1, 7, 1000, 100000} {
		var all []FDBEntry
		pages := 0
		for cursor := uint64(0); ; pages++ {
			page, next := f.Page(150, cursor, limit)
			if len(page) > limit {
				t.Fatalf("limit %d: page of %d", limit, len(page))
			}
			all = append(all, page...)
			if next == 0 {
				break
			}
			if next <= cursor {
				t.Fatalf("limit %d: next cursor %d after %d", limit, next, cursor)
			}
			cursor = next
		}
		// Entries seen at 50..99 are live at 150 (ageing 300): all of them.
		if len(all) != n {
			t.Fatalf("limit %d: %d entries in %d pages, want %d", limit, len(all), pages, n)
		}
		seen := make(map[uint64]bool)
		for _, e := range all {
			k := fdbKey(e.VLAN, e.MAC)
			if seen[k] {
				t.Fatalf("limit %d: %+v listed twice", limit, e)
			}
			seen[k] = true
			if p, ok := f.Lookup(e.VLAN, e.MAC, 150); !ok || p != e.Port {
				t.Fatalf("limit %d: listed %+v, Lookup says %d %v", limit, e, p, ok)
			}
		}
		if limit >= 1000 && pages > 2*n/limit+2 {
			t.Fatalf("limit %d: %d pages", limit, pages)
		}
	}
	// Ageing: at 350 the entries seen before 50 have expired.
	// The duplicate (seen at 150) stays hidden behind its expired first
	// copy, as it is from lookups.
	live := 0
	for i := range n {
		if i%100 > 50 {
			live++
		}
	}
	if all := allEntries(f, 350); len(all) != live {
		t.Fatalf("%d entries live at 350, want %d", len(all), live)
	}
	// A sparse table: a page reads a bounded number of slots, so it may
	// come back short with a next cursor.
	g := newFDB(1<<16, 300)
	g.Learn(0, macA, 1, 0)
	page, next := g.Page(0, 0, 10)
	if next == 0 || next > pageScanMin || len(page) > 1 {
		t.Fatalf("first page of a sparse table: %d entries, next %d; want a bounded scan", len(page), next)
	}
	if g.Len() != 1 {
		t.Fatalf("Len %d", g.Len())
	}
}

// BenchmarkFDB measures the FDB operations of every bridged frame over a
// table of 10000 stations: refresh the source, look up the destination.
func BenchmarkFDB(b *testing.B) {
	f := newFDB(65536, 300)
	const n = 10000
	for i := range n {
		f.Learn(0, macN(i), fastpath.PortID(i%4), 0)
	}
	i := 0
	for b.Loop() {
		f.Learn(0, macN(i%n), fastpath.PortID(i%n%4), 1)
		f.Lookup(0, macN((i*7)%n), 1)
		i++
	}
}

// TestFDBConcurrentEvictions runs learners on a table far too small for
// their MACs, so windows fill and entries are evicted all the time, while
// the same MACs move between the learners' ports, refresh, and a sweeper
// expires them; run with -race. Afterwards the table is consistent: no
// slot is left claimed, every entry is reachable, Len counts the slots.
func TestFDBConcurrentEvictions(t *testing.T) {
	const learners = 4
	withSeed(t, 11, 12)
	f := newFDB(256, 3)
	// 48 MACs with one home slot: 16 more than its window holds.
	set := collide(f, 0, macVictim, 48)
	macs := len(set)
	index := make(map[header.MAC]int, macs)
	for i, m := range set {
		index[m] = i
	}
	var clock atomic.Uint32
	var stop atomic.Bool
	var evicted, found atomic.Uint64
	var bad badAnswers
	var wg sync.WaitGroup
	for w := range learners {
		wg.Go(func() {
			for round := 0; !stop.Load(); round++ {
				for i := range macs {
					now := clock.Load()
					// Each MAC moves among its own ports.
					if f.Learn(0, set[i], ownPort(i, w+round, learners), now) == LearnEvicted {
						evicted.Add(1)
					}
					j := (i * 13) % macs
					if p, ok := f.Lookup(0, set[j], now); ok {
						found.Add(1)
						bad.check(j, p, learners, "Lookup")
					}
				}
			}
		})
	}
	wg.Go(func() {
		defer stop.Store(true)
		for range 60 {
			time.Sleep(2 * time.Millisecond)
			f.Sweep(clock.Add(1))
			page, _ := f.Page(clock.Load(), 0, 50)
			for _, e := range page {
				bad.check(index[e.MAC], e.Port, learners, "Page")
			}
		}
	})
	wg.Wait()
	bad.report(t)
	if evicted.Load() == 0 || found.Load() == 0 {
		t.Fatalf("%d evictions, %d lookups found their MAC: the test raced nothing", evicted.Load(), found.Load())
	}
	now := clock.Load()
	checkFDB(t, f, now)
	// After the race every MAC is where it was last learned.
	for i, m := range set {
		f.Learn(0, m, ownPort(i, 0, learners), now)
		if p, ok := f.Lookup(0, m, now); !ok || p != ownPort(i, 0, learners) {
			t.Fatalf("MAC %d learned again: port %d %v, want %d", i, p, ok, ownPort(i, 0, learners))
		}
	}
}

// ownPort returns port k (mod n) of MAC i in a concurrent test, where MAC
// i is only ever learned on ports i*n+1 .. i*n+n: a lookup or a listing
// that answers a port outside them answers with another MAC's.
func ownPort(i, k, n int) fastpath.PortID { return fastpath.PortID(i*n + 1 + k%n) }

// badAnswers collects, from any goroutine, answers with another MAC's port.
type badAnswers struct {
	n     atomic.Uint64
	first atomic.Pointer[string]
}

// check records port p, answered for MAC i (n ports each) by what, if it
// is not one of the MAC's ports.
func (b *badAnswers) check(i int, p fastpath.PortID, n int, what string) {
	if int(p) > i*n && int(p) <= i*n+n {
		return
	}
	if b.n.Add(1) == 1 {
		msg := fmt.Sprintf("%s answered port %d for MAC %d, whose ports are %d..%d", what, p, i, i*n+1, i*n+n)
		b.first.Store(&msg)
	}
}

func (b *badAnswers) report(t *testing.T) {
	t.Helper()
	if n := b.n.Load(); n != 0 {
		t.Errorf("%d answers with another MAC's port; the first: %s", n, *b.first.Load())
	}
}

// allEntries returns every live entry of f at now, sorted by VLAN and MAC,
// from Page.
func allEntries(f *FDB, now uint32) []FDBEntry {
	var es []FDBEntry
	for cursor := uint64(0); ; {
		page, next := f.Page(now, cursor, 1024)
		es = append(es, page...)
		if next == 0 {
			break
		}
		cursor = next
	}
	slices.SortFunc(es, func(a, b FDBEntry) int {
		return cmp.Or(cmp.Compare(a.VLAN, b.VLAN), cmp.Compare(macKey(a.MAC), macKey(b.MAC)))
	})
	return es
}

// TestFDBSweptSlotIsNoZeroMACEntry: a slot left by a swept entry is not
// an entry for 00:00:00:00:00:00 on VLAN 0 (key 0): a lookup of that MAC
// finds nothing, so its frames flood as on a Linux bridge, instead of
// going to the swept entry's old port (or being dropped as a hairpin).
func TestFDBSweptSlotIsNoZeroMACEntry(t *testing.T) {
	withSeed(t, 21, 22)
	f := newFDB(64, 10)
	var zero header.MAC
	// Two MACs with the zero MAC's home slot: the first takes it, the
	// second the slot after; once the first is swept its slot stays a
	// tombstone (the second's probes pass it).
	set := collide(f, 0, zero, 2)
	f.Learn(0, set[0], 1, 0)
	f.Learn(0, set[1], 2, 8)
	if n := f.Sweep(12); n != 1 {
		t.Fatalf("Sweep cleared %d, want 1", n)
	}
	if w := f.slots[f.home(0)].word.Load(); w == 0 || wordUsed(w) {
		t.Fatalf("the zero MAC's home slot is %#x after the sweep, want a tombstone", w)
	}
	if p, ok := f.Lookup(0, zero, 12); ok {
		t.Fatalf("Lookup(0, %v) = port %d after a sweep, want not found (flood)", zero, p)
	}
	if p, ok := f.Lookup(0, set[1], 12); !ok || p != 2 {
		t.Fatalf("the live entry behind the tombstone: port %d %v, want 2", p, ok)
	}
	if es := allEntries(f, 12); len(es) != 1 || es[0].MAC != set[1] {
		t.Fatalf("entries %+v, want only %v", es, set[1])
	}
	checkFDB(t, f, 12)
	// The zero MAC is a key like any other for the FDB (the bridge never
	// learns it: it drops frames from it).
	if r := f.Learn(0, zero, 3, 12); r != LearnNew {
		t.Fatalf("learning the zero MAC: %v, want LearnNew", r)
	}
	if p, ok := f.Lookup(0, zero, 12); !ok || p != 3 {
		t.Fatalf("the zero MAC once learned: port %d %v, want 3", p, ok)
	}
	checkFDB(t, f, 12)
}

// TestBridgeFloodsToZeroMACAfterSweep: on a VLAN-unaware bridge, a frame
// to 00:00:00:00:00:00 floods, as on a Linux bridge, also after an entry
// that sat in the zero MAC's home slot was swept — and also from the port
// that entry was on (not a hairpin drop).
func TestBridgeFloodsToZeroMACAfterSweep(t *testing.T) {
	withSeed(t, 41, 42)
	r, bs := newBridgeRig(t, 256, Config{Name: "br0", Ports: []fastpath.PortID{1, 2, 3}, AgeingTime: 10 * time.Second})
	var zero header.MAC
	set := collide(bs.List()[0].FDB(), 0, zero, 2)
	r.Now = sec(0)
	r.Send(1, ethFrame(bcast, set[0], 1))
	r.Now = sec(8)
	r.Send(2, ethFrame(bcast, set[1], 2))
	r.Now = sec(12)
	if n := bs.Expire(r.Now); n != 1 {
		t.Fatalf("Sweep cleared %d entries, want 1", n)
	}
	for _, in := range []fastpath.PortID{3, 1} {
		got := r.Send(in, ethFrame(zero, macC, 3))
		for _, p := range []fastpath.PortID{1, 2, 3} {
			want := 1
			if p == in {
				want = 0
			}
			if len(got[p]) != want {
				t.Fatalf("frame from port %d to %v: port %d sent %d frames, want %d (a flood)", in, zero, p, len(got[p]), want)
			}
		}
	}
}

// TestFDBValOfAnotherKey: a lookup loads a slot's word, then its val, then
// the word again, and answers only if the word did not change. A slot that
// went from MAC A to MAC B and back to A between the two word loads shows
// the reader A's word twice and B's val: the state this test builds. The
// lookup must not answer with B's port (nor list A there), and a learner of
// A must write A's own val.
func TestFDBValOfAnotherKey(t *testing.T) {
	withSeed(t, 31, 32)
	f := newFDB(1024, 300)
	set := collide(f, 0, macVictim, 2)
	a, b := set[0], set[1]
	if f.tag(fdbKey(0, a)) == f.tag(fdbKey(0, b)) {
		t.Fatal("A and B have one tag under this seed: pick another")
	}
	const portA, portB = 1, 2
	// A's word, as Learn writes it, from a twin FDB with the same seed.
	g := newFDB(1024, 300)
	g.Learn(0, a, portA, 1)
	h := f.home(fdbKey(0, b))
	wordA := g.slots[h].word.Load()
	if !wordUsed(wordA) || wordKey(wordA) != fdbKey(0, a) {
		t.Fatalf("slot %d of the twin holds %#x, not A", h, wordA)
	}
	if r := f.Learn(0, b, portB, 1); r != LearnNew {
		t.Fatalf("learning B: %v", r)
	}
	f.slots[h].word.Store(wordA) // B's val stays
	if p, ok := f.Lookup(0, a, 1); ok {
		t.Fatalf("Lookup(A) = port %d %v from B's val, want not found (flood)", p, ok)
	}
	if es := allEntries(f, 1); len(es) != 0 {
		t.Fatalf("Page lists %+v from B's val, want nothing", es)
	}
	if r := f.Learn(0, a, portA, 2); r != LearnNew && r != LearnMoved {
		t.Fatalf("learning A over B's val: %v", r)
	}
	if p, ok := f.Lookup(0, a, 2); !ok || p != portA {
		t.Fatalf("Lookup(A) after learning it: port %d %v, want %d", p, ok, portA)
	}
	checkFDB(t, f, 2)
}

// TestFDBAtMaxEntries: what the README says of a full FDB. At max entries
// a new MAC whose window has a free slot is not learned (LearnFull); one
// whose window holds an expired entry takes its slot; one whose window is
// all live entries evicts the oldest dynamic one. The count never grows.
func TestFDBAtMaxEntries(t *testing.T) {
	withSeed(t, 51, 52)
	const max = 40
	f := newFDB(max, 300)
	// 32 MACs fill the victim's window, 8 more go elsewhere.
	attackers := collide(f, 0, macVictim, fdbMaxProbe)
	for i, m := range attackers {
		f.Learn(0, m, 2, uint32(10+i))
	}
	home := f.home(fdbKey(0, macVictim))
	var others []header.MAC
	for i := 1; len(others) < max-fdbMaxProbe; i++ {
		if m := macN(i); (f.home(fdbKey(0, m))-home)&f.mask > 2*fdbMaxProbe {
			others = append(others, m)
			f.Learn(0, m, 3, 10)
		}
	}
	if f.Len() != max {
		t.Fatalf("Len %d, want %d", f.Len(), max)
	}
	var newcomer header.MAC
	for i := 1000; ; i++ {
		if m := macN(i); (f.home(fdbKey(0, m))-home)&f.mask > 3*fdbMaxProbe {
			newcomer = m
			break
		}
	}
	if r := f.Learn(0, newcomer, 4, 50); r != LearnFull {
		t.Fatalf("new MAC with a free slot at max entries: %v, want LearnFull", r)
	}
	if r := f.Learn(0, macVictim, 1, 50); r != LearnEvicted {
		t.Fatalf("new MAC with a full window at max entries: %v, want LearnEvicted", r)
	}
	if _, ok := f.Lookup(0, attackers[0], 50); ok {
		t.Fatal("the oldest entry of the window survived the eviction")
	}
	// others[0] expires (seen at 10, ageing 300); a MAC whose window holds it
	// takes its slot.
	f.Learn(0, attackers[1], 2, 320)
	for _, m := range others[1:] {
		f.Learn(0, m, 3, 320)
	}
	for _, m := range attackers[2:] {
		f.Learn(0, m, 2, 320)
	}
	f.Learn(0, macVictim, 1, 320)
	var reuser header.MAC
	for i := 2000; ; i++ {
		if m := macN(i); f.home(fdbKey(0, m)) == f.home(fdbKey(0, others[0])) {
			reuser = m
			break
		}
	}
	if r := f.Learn(0, reuser, 5, 320); r != LearnNew {
		t.Fatalf("new MAC whose window holds an expired entry at max entries: %v, want LearnNew", r)
	}
	if p, ok := f.Lookup(0, reuser, 320); !ok || p != 5 {
		t.Fatalf("the MAC that took the expired slot: port %d %v", p, ok)
	}
	if f.Len() != max {
		t.Fatalf("Len %d after all this, want %d", f.Len(), max)
	}
	checkFDB(t, f, 320)
}
