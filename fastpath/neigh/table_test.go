package neigh

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xdpfwd/xdpfwd/fastpath/header"
)

func v4(i int) [16]byte {
	return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}).As16()
}

func TestTableFull(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Params.GCThresh1, c.Params.GCThresh2, c.Params.GCThresh3 = 2, 3, 4
		c.MaxStatic = 1
	})
	if err := e.tab.AddStatic(1, netip.MustParseAddr("10.0.0.100"), macA); err != nil {
		t.Fatal(err)
	}
	if err := e.tab.AddStatic(1, netip.MustParseAddr("10.0.0.101"), macA); err == nil {
		t.Fatal("a second static entry beyond MaxStatic 1 was accepted")
	}
	for i := range 4 {
		if _, a := e.resolve(v4(i)); a != HoldSolicit {
			t.Fatalf("neighbour %d: %v", i, a)
		}
	}
	// Full: four INCOMPLETE entries, none reclaimable.
	if _, a := e.resolve(v4(4)); a != Drop {
		t.Fatalf("fifth neighbour: %v, want drop", a)
	}
	if o := e.confirm(v4(5), macA, ARPRequestForUs); o != Refused {
		t.Fatalf("fifth by ARP: %v", o)
	}
	if st := e.tab.Stats(); st.TableFull != 2 || st.IPv4 != 4 || st.Static != 1 {
		t.Fatalf("stats %+v", st)
	}
	// IPv6 counts apart.
	if _, a := e.resolve(ip6); a != HoldSolicit {
		t.Fatalf("IPv6 neighbour: %v", a)
	}
	// Entries 0..3 fail at 3 s; a FAILED entry gives its place.
	e.at(3 * s)
	if _, a := e.resolve(v4(4)); a != HoldSolicit {
		t.Fatalf("after failures: %v", a)
	}
	if v4n, _, _ := e.tab.Len(); v4n != 4 {
		t.Fatalf("IPv4 entries %d", v4n)
	}
	// The static entry is still there.
	if l := e.entry(ip16("10.0.0.100")); l.State != StatePermanent {
		t.Fatalf("static %+v", l)
	}
}

func TestTableFullNeverEvictsPermanent(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Params.GCThresh1, c.Params.GCThresh2, c.Params.GCThresh3 = 1, 1, 1
		c.MaxStatic = 20
	})
	for i := range 20 {
		if err := e.tab.AddStatic(1, netip.AddrFrom16(v4(100+i)).Unmap(), macA); err != nil {
			t.Fatal(err)
		}
	}
	e.resolve(v4(1))
	e.at(time.Hour)
	// v4(1) is FAILED: reclaimable, for a key one of whose buckets holds
	// it (forced GC looks at the new key's buckets). Only it may go.
	a1 := v4(1)
	k1 := makeKey(1, &a1)
	i1, _, _, _, _ := e.tab.find(k1, e.tab.hash(k1))
	var other [16]byte
	for i := 2; ; i++ {
		a := v4(i)
		k := makeKey(1, &a)
		if b1, b2, _ := e.tab.buckets2(e.tab.hash(k)); b1 == i1/slotsPerBucket || b2 == i1/slotsPerBucket {
			other = v4(i)
			break
		}
	}
	if _, a := e.resolve(other); a != HoldSolicit {
		t.Fatalf("%v", a)
	}
	for i := range 20 {
		if e.state(v4(100+i)) != StatePermanent {
			t.Fatalf("static %d gone", i)
		}
	}
	if e.state(v4(1)) != StateNone {
		t.Fatal("FAILED entry not reclaimed")
	}
}

func TestGarbageCollection(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Params.GCThresh1, c.Params.GCThresh2, c.Params.GCThresh3 = 3, 100, 100
		c.TickBuckets = 1
	})
	sweep := func() int {
		n := 0
		for range len(e.tab.buckets) {
			n += e.tab.Tick(e.clock())
		}
		return n
	}
	// Two STALE entries: below gc_thresh1 nothing is collected, however old.
	e.confirm(v4(1), macA, ARPRequestForUs)
	e.confirm(v4(2), macA, ARPRequestForUs)
	e.at(time.Hour)
	if n := sweep(); n != 0 {
		t.Fatalf("collected %d below gc_thresh1", n)
	}
	// A third: at gc_thresh1, STALE entries unused for gc_stale_time go.
	e.confirm(v4(3), macA, ARPRequestForUs)
	e.at(time.Hour + 59*s)
	if n := sweep(); n != 2 {
		t.Fatalf("collected %d, want the two old STALE entries", n)
	}
	if e.state(v4(3)) != StateStale {
		t.Fatal("the young STALE entry was collected")
	}
	// FAILED entries go once FAILED for retrans_time (workers answered
	// their packets meanwhile).
	e.at(2 * time.Hour)
	e.confirm(v4(4), macA, ARPRequestForUs)
	e.confirm(v4(5), macA, ARPRequestForUs)
	e.resolve(v4(6))
	e.at(2*time.Hour + 3*s)
	if n := sweep(); n != 1 || e.state(v4(3)) != StateNone || e.stored(v4(6)) != StateFailed {
		t.Fatalf("collected %d, state %v: the old STALE entry goes, the failure is stored first", n, e.stored(v4(6)))
	}
	e.at(2*time.Hour + 4*s)
	if n := sweep(); n != 1 || e.state(v4(6)) != StateNone {
		t.Fatalf("collected %d", n)
	}
}

func TestGCAboveThresh2(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Params.GCThresh1, c.Params.GCThresh2, c.Params.GCThresh3 = 1, 2, 100
	})
	for i := range 5 {
		e.confirm(v4(i), macA, ARPRequestForUs)
	}
	e.at(5 * s)
	// Above gc_thresh2, STALE entries not updated for 5 s go, down to it.
	for range len(e.tab.buckets) {
		e.tab.Tick(e.clock())
	}
	if v4n, _, _ := e.tab.Len(); v4n != 2 {
		t.Fatalf("%d entries left, want gc_thresh2 = 2", v4n)
	}
}

func TestTickIsIncremental(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.TickBuckets = 2 })
	for i := range 200 {
		e.reachableAt(v4(i), macA)
	}
	e.at(31 * s)
	nb := len(e.tab.buckets)
	stale := func() int {
		n := 0
		for i := range 200 {
			if e.stored(v4(i)) == StateStale {
				n++
			}
		}
		return n
	}
	for i := 1; i <= nb/2; i++ {
		e.tab.Tick(e.clock())
		if n := stale(); n > 2*slotsPerBucket*i {
			t.Fatalf("%d Ticks of 2 buckets stored %d transitions", i, n)
		}
	}
	if n := stale(); n != 200 {
		t.Fatalf("a full round of Ticks stored %d of 200", n)
	}
}

// reachableAt makes ip REACHABLE with mac at the current time.
func (e *env) reachableAt(ip [16]byte, mac header.MAC) {
	e.t.Helper()
	e.resolve(ip)
	how := NA | Solicited | Override
	if netip.AddrFrom16(ip).Is4In6() {
		how = ARPReply | Unicast
	}
	if o := e.confirm(ip, mac, how); o != Updated {
		e.t.Fatalf("confirm %v", o)
	}
}

func TestReachableTimeRandomized(t *testing.T) {
	var draws []uint64
	e := newEnv(t, func(c *Config) {
		c.Rand = func(n uint64) uint64 { draws = append(draws, n); return uint64(len(draws)) * 1000 }
	})
	if got := e.tab.ReachableTime(); got != 16*time.Second {
		t.Fatalf("reachable %d ms, want base/2 + draw", got)
	}
	e.tab.Tick(e.clock())
	e.at(299 * s)
	e.tab.Tick(e.clock())
	if len(draws) != 1 {
		t.Fatalf("%d draws before 300 s", len(draws))
	}
	e.at(300 * s)
	e.tab.Tick(e.clock())
	if len(draws) != 2 || draws[1] != 30000 || e.tab.ReachableTime() != 17*time.Second {
		t.Fatalf("draws %v, reachable %d", draws, e.tab.ReachableTime())
	}
	// The default draws within [base/2, 3·base/2).
	tab, _ := New(Config{Params: DefaultParams()})
	for range 100 {
		tab.reroll()
		if r := tab.ReachableTime(); r < 15*time.Second || r >= 45*time.Second {
			t.Fatalf("reachable time %d", r)
		}
	}
}

func TestClockWrap(t *testing.T) {
	// Times are 32-bit milliseconds: a clock crossing 2^32 ms changes
	// nothing.
	e := newEnv(t, nil)
	e.start = int64(1<<32-10_000) * 1e6
	e.reachableAt(ip4, macA)
	e.at(29 * s)
	if e.state(ip4) != StateReachable {
		t.Fatal("not REACHABLE across the wrap")
	}
	e.at(31 * s)
	if e.state(ip4) != StateStale {
		t.Fatal("not STALE across the wrap")
	}
	// An entry idle for 40 days stays old (Tick keeps its times in range).
	e.confirm(ip6, macA, NS)
	for d := time.Duration(0); d < 40*24*time.Hour; d += time.Hour {
		e.at(31*s + d)
		for range len(e.tab.buckets) / 64 {
			e.tab.Tick(e.clock())
		}
	}
	if l := e.entry(ip6); l.State != StateStale || l.Updated < 6*24*time.Hour {
		t.Fatalf("after 40 days: %+v", l)
	}
	if mac, a := e.resolve(ip6); a != Send || mac != macA || e.state(ip6) != StateDelay {
		t.Fatalf("%v %v %v", mac, a, e.state(ip6))
	}
}

func TestListAndFormat(t *testing.T) {
	e := newEnv(t, nil)
	e.reachableAt(ip4, header.MAC{2, 0, 0, 0, 0, 1})
	e.confirm(ip16("fe80::1"), macB, NS)
	e.confirm(ip16("fe80::1"), macB, NA|Solicited|Override|IsRouter)
	e.resolve(ip16("10.1.0.9"))
	if err := e.tab.AddStatic(2, netip.MustParseAddr("10.2.0.5"), macA); err != nil {
		t.Fatal(err)
	}
	e.at(5 * s)
	names := map[uint16]string{1: "lan0", 2: "wan0"}
	var lines []string
	for cur := uint64(0); ; {
		page, next := e.tab.List(e.clock(), cur, 1)
		for _, l := range page {
			lines = append(lines, l.Format(names[l.Iface]))
		}
		if next == 0 {
			break
		}
		cur = next
	}
	slices.Sort(lines)
	want := []string{
		"10.1.0.2 dev lan0 lladdr 02:00:00:00:00:01 REACHABLE",
		"10.1.0.9 dev lan0 FAILED",
		"10.2.0.5 dev wan0 lladdr 02:00:00:00:00:0a PERMANENT",
		"fe80::1 dev lan0 lladdr 02:00:00:00:00:0b router REACHABLE",
	}
	if !slices.Equal(lines, want) {
		t.Fatalf("listing:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

func TestParamsValidate(t *testing.T) {
	if err := DefaultParams().Validate(); err != nil {
		t.Fatal(err)
	}
	bad := []struct {
		mod  func(*Params)
		want string
	}{
		{func(p *Params) { p.AppSolicit = 1 }, "app_solicit"},
		{func(p *Params) { p.RetransTime = time.Millisecond }, "retrans_time_ms"},
		{func(p *Params) { p.BaseReachableTime = 0 }, "base_reachable_time_ms"},
		{func(p *Params) { p.GCThresh2 = 2000 }, "gc_thresh"},
		{func(p *Params) { p.UcastSolicit = -1 }, "ucast_solicit"},
		{func(p *Params) { p.GCStaleTime = 48 * time.Hour }, "gc_stale_time"},
	}
	for _, b := range bad {
		p := DefaultParams()
		b.mod(&p)
		if err := p.Validate(); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%s: %v", b.want, err)
		}
		if _, err := New(Config{Params: p}); err == nil {
			t.Errorf("%s: New accepted it", b.want)
		}
	}
	if _, err := New(Config{}); err == nil {
		t.Error("New accepted zero Params")
	}
	if _, err := New(Config{Params: DefaultParams(), NoARP: []NoARPInterface{{Iface: 1, MAC: macA}, {Iface: 1, MAC: macA}}}); err == nil {
		t.Error("New accepted a NOARP interface twice")
	}
	if tab, _ := New(Config{Params: DefaultParams()}); len(tab.slots)*64 != 256<<10 {
		t.Errorf("default table: %d slots", len(tab.slots))
	}
	if Truesize(1514) != 2112 || (212992+2111)/2112 != 101 {
		t.Errorf("Truesize(1514) = %d: /proc's unres_qlen 101 is unres_qlen_bytes 212992 over 2112, rounded up", Truesize(1514))
	}
}

// TestConcurrent runs workers resolving, holding and polling, a
// confirmer, and Tick at once (run it under -race), on a fake clock that
// moves forward; then checks that no frame was lost or duplicated and
// that no key has two entries.
func TestConcurrent(t *testing.T) {
	tab, err := New(Config{Params: DefaultParams(), Rand: fixedRand})
	if err != nil {
		t.Fatal(err)
	}
	const (
		workers = 4
		keys    = 64
		rounds  = 3000 // each worker's packets, at least
		answers = 6000 // the confirmer's messages, 10 ms apart: 60 s
	)
	var clock atomic.Int64
	var wg sync.WaitGroup
	var stop atomic.Bool
	var answered atomic.Bool
	type tally struct{ held, freed, sent, lookups int }
	tallies := make([]tally, workers)
	for wi := range workers {
		w, err := tab.NewWorker(128)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(wi), 1))
			ev := make([]Event, 64)
			var dropped []uint64
			ty := &tallies[wi]
			next := uint64(wi) << 40
			for ty.lookups < rounds || !answered.Load() {
				ty.lookups++
				if ty.lookups%16 == 0 {
					runtime.Gosched()
				}
				now := clock.Load()
				ki := r.IntN(keys)
				ip := v4(ki)
				if r.IntN(4) == 0 {
					ip[0] = 0xfd // an IPv6 one
				}
				mac, a := w.Resolve(1, ip, now)
				switch a {
				case Send, SendProbe:
					// Only this key's addresses were ever confirmed: a
					// torn read would show another's.
					if mac[4] != byte(ki) || mac[5] > 1 || mac[0] != 2 {
						t.Errorf("key %d resolved to %v", ki, mac)
					}
					ty.sent++
				case Hold, HoldSolicit:
					next++
					var ok bool
					dropped, ok = w.Hold(1, ip, next, 64, dropped[:0])
					ty.freed += len(dropped)
					ty.held++ // handed over: to be freed exactly once
					if !ok {
						ty.freed++
					}
				case Drop:
				}
				n := w.Poll(now, ev)
				for _, e := range ev[:n] {
					switch e.Kind {
					case EventSend, EventUnreachable, EventDrop:
						ty.freed++
					}
				}
			}
			for w.Held() > 0 {
				n := w.Drain(ev)
				ty.freed += n
			}
			ty.freed -= ty.held // every held packet freed exactly once
		}()
	}
	var others sync.WaitGroup
	others.Add(2)
	go func() { // the network answering
		defer others.Done()
		r := rand.New(rand.NewPCG(99, 1))
		defer answered.Store(true)
		for range answers {
			// The last quarter of the keys never answer; the others
			// answer in every way, reachability asserted or not.
			i := r.IntN(keys * 3 / 4)
			ip := v4(i)
			how := [...]How{ARPReply | Unicast, ARPReply, ARPRequest, ARPRequestForUs}[r.IntN(4)]
			if r.IntN(4) == 0 {
				ip[0] = 0xfd
				how = [...]How{NA | Solicited | Override, NA | Solicited, NA | Override, NA, NS}[r.IntN(5)]
			}
			tab.Confirm(1, ip, header.MAC{2, 0, 0, 0, byte(i), byte(r.IntN(2))}, how, clock.Load())
			clock.Add(int64(10 * time.Millisecond))
			if i%8 == 0 {
				runtime.Gosched()
			}
		}
	}()
	go func() { // the daemon
		defer others.Done()
		for !stop.Load() {
			tab.Tick(clock.Load())
		}
	}()
	wg.Wait()
	stop.Store(true)
	others.Wait()
	lookups := 0
	for _, ty := range tallies {
		lookups += ty.lookups
	}
	for wi, ty := range tallies {
		if ty.freed != 0 {
			t.Errorf("worker %d: freed minus held = %d, want 0", wi, ty.freed)
		}
	}
	seen := map[string]bool{}
	for cur := uint64(0); ; {
		page, next := tab.List(clock.Load(), cur, 100)
		for _, l := range page {
			k := fmt.Sprint(l.Iface, l.IP)
			if seen[k] {
				t.Errorf("two entries for %s", k)
			}
			seen[k] = true
		}
		if next == 0 {
			break
		}
		cur = next
	}
	v4n, v6n, _ := tab.Len()
	if v4n+v6n != len(seen) {
		t.Errorf("counts %d+%d, listed %d", v4n, v6n, len(seen))
	}
	st := tab.Stats()
	t.Logf("stats %+v; workers %+v", st, tallies)
	if st.Lookups != uint64(lookups) || st.Resolved == 0 || st.Failed == 0 || st.Probes == 0 || st.Confirms != answers {
		t.Errorf("stats %+v", st)
	}
}

// TestSameIPOtherInterface: keys that differ only by interface, chosen to
// share their first bucket and their tag, so that only the full key
// comparison tells them apart.
func TestSameIPOtherInterface(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Params.GCThresh1, c.Params.GCThresh2, c.Params.GCThresh3 = 4, 4, 4; c.MaxStatic = 1 })
	ip := ip4
	k1 := makeKey(1, &ip)
	b1, _, tag1 := e.tab.buckets2(e.tab.hash(k1))
	other := uint16(0)
	for i := uint16(2); i != 0; i++ {
		k := makeKey(i, &ip)
		if b, _, tag := e.tab.buckets2(e.tab.hash(k)); b == b1 && tag == tag1 {
			other = i
			break
		}
	}
	if other == 0 {
		t.Fatal("no colliding interface")
	}
	e.reachableAt(ip, macA) // on interface 1
	if mac, a := e.w.Resolve(other, ip, e.clock()); a != HoldSolicit {
		t.Fatalf("interface %d resolved to %v (%v)", other, mac, a)
	}
	if o := e.tab.Confirm(other, ip, macB, ARPReply|Unicast, e.clock()); o != Updated {
		t.Fatal(o)
	}
	for range 2 {
		if mac, _ := e.resolve(ip); mac != macA {
			t.Fatalf("interface 1: %v", mac)
		}
		if mac, _ := e.w.Resolve(other, ip, e.clock()); mac != macB {
			t.Fatalf("interface %d: %v", other, mac)
		}
	}
}
