package neigh

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/xdpfwd/xdpfwd/fastpath/header"
)

// kinds returns the kinds and handles of evs, for comparisons.
func handles(evs []Event, kind EventKind) []uint64 {
	var h []uint64
	for _, e := range evs {
		if e.Kind == kind {
			h = append(h, e.Handle)
		}
	}
	return h
}

func count(evs []Event, kind EventKind) int { return len(handles(evs, kind)) }

func hold(t *testing.T, w *Worker, ip [16]byte, h uint64, length uint32) []uint64 {
	t.Helper()
	dropped, ok := w.Hold(1, ip, h, length, nil)
	if !ok {
		t.Fatalf("Hold %d refused", h)
	}
	return dropped
}

func TestHeldPacketsReleasedOnEveryWorker(t *testing.T) {
	e := newEnv(t, nil)
	w2, err := e.tab.NewWorker(16)
	if err != nil {
		t.Fatal(err)
	}
	if _, a := e.resolve(ip4); a != HoldSolicit {
		t.Fatalf("first packet: %v", a)
	}
	for h := uint64(1); h <= 3; h++ {
		hold(t, e.w, ip4, h, 100)
	}
	if _, a := w2.Resolve(1, ip4, e.clock()); a != Hold {
		t.Fatalf("second worker: %v, want hold (a solicitation is outstanding)", a)
	}
	hold(t, w2, ip4, 10, 100)
	hold(t, w2, ip4, 11, 100)
	if evs := e.poll(); len(evs) != 0 {
		t.Fatalf("poll before the answer: %v", evs)
	}
	e.at(300 * time.Millisecond)
	if o := e.confirm(ip4, macA, ARPReply|Unicast); o != Updated {
		t.Fatal(o)
	}
	evs := e.poll()
	if got := handles(evs, EventSend); !slices.Equal(got, []uint64{1, 2, 3}) || len(evs) != 3 {
		t.Fatalf("worker 1 released %v", evs)
	}
	for _, ev := range evs {
		if ev.MAC != macA || ev.Iface != 1 || ev.IP != ip4 || ev.Len != 100 {
			t.Fatalf("event %+v", ev)
		}
	}
	ev2 := make([]Event, 8)
	n := w2.Poll(e.clock(), ev2)
	if got := handles(ev2[:n], EventSend); !slices.Equal(got, []uint64{10, 11}) {
		t.Fatalf("worker 2 released %v", ev2[:n])
	}
	if e.w.Held() != 0 || w2.Held() != 0 {
		t.Fatalf("held %d, %d", e.w.Held(), w2.Held())
	}
	st := e.tab.Stats()
	if st.Resolved != 1 || st.Lookups != 2 || st.Misses != 2 || st.Solicits != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestFailedReleasesUnreachable(t *testing.T) {
	e := newEnv(t, nil)
	e.resolve(ip6)
	hold(t, e.w, ip6, 1, 100)
	hold(t, e.w, ip6, 2, 100)
	var solicits []time.Duration
	var unreachable []uint64
	// Poll every 100 ms with no new packet: the worker sends the retries,
	// and answers the held packets when the entry fails.
	for d := 100 * time.Millisecond; d <= 4*s; d += 100 * time.Millisecond {
		for _, ev := range e.at(d).poll() {
			switch ev.Kind {
			case EventSolicit:
				if ev.IP != ip6 || ev.Iface != 1 {
					t.Fatalf("solicit %+v", ev)
				}
				solicits = append(solicits, d)
			case EventUnreachable:
				if d != 3*s {
					t.Fatalf("unreachable at %v, want 3s", d)
				}
				unreachable = append(unreachable, ev.Handle)
			default:
				t.Fatalf("event %+v", ev)
			}
		}
	}
	if !slices.Equal(solicits, []time.Duration{1 * s, 2 * s}) {
		t.Fatalf("retries at %v, want 1s and 2s (the first went with the packet)", solicits)
	}
	if !slices.Equal(unreachable, []uint64{1, 2}) {
		t.Fatalf("unreachable %v", unreachable)
	}
	if st := e.tab.Stats(); st.Failed != 1 || st.Solicits != 3 {
		t.Fatalf("stats %+v", st)
	}
}

func TestFailedRoundEndsOnlyItsPackets(t *testing.T) {
	// Worker 1 holds packets of round 1; the entry fails and worker 2
	// starts round 2 before worker 1 polls: worker 1's packets get their
	// ICMP error, its packets of round 2 stay held.
	e := newEnv(t, nil)
	w2, _ := e.tab.NewWorker(16)
	e.resolve(ip4)
	hold(t, e.w, ip4, 1, 64)
	e.at(3500 * time.Millisecond)
	if _, a := w2.Resolve(1, ip4, e.clock()); a != HoldSolicit {
		t.Fatalf("restart: %v", a)
	}
	if _, a := e.resolve(ip4); a != Hold {
		t.Fatalf("round 2 on worker 1: %v", a)
	}
	hold(t, e.w, ip4, 2, 64)
	evs := e.poll()
	if !slices.Equal(handles(evs, EventUnreachable), []uint64{1}) || len(evs) != 1 {
		t.Fatalf("events %v", evs)
	}
	if e.w.Held() != 1 {
		t.Fatalf("held %d", e.w.Held())
	}
	e.confirm(ip4, macA, ARPReply|Unicast)
	if evs := e.poll(); !slices.Equal(handles(evs, EventSend), []uint64{2}) {
		t.Fatalf("events %v", evs)
	}
}

func TestQueueDropsOldest(t *testing.T) {
	e := newEnv(t, nil)
	e.resolve(ip4)
	// 1514-byte frames count 2112 bytes: 100 fit in 212992, the 101st
	// drops the oldest (__neigh_event_send).
	for h := uint64(0); h < 100; h++ {
		if d := hold(t, e.w, ip4, h, 1514); len(d) != 0 {
			t.Fatalf("packet %d dropped %v", h, d)
		}
	}
	if d := hold(t, e.w, ip4, 100, 1514); !slices.Equal(d, []uint64{0}) {
		t.Fatalf("101st packet dropped %v, want [0]", d)
	}
	// A 9000-byte frame (truesize 9600) makes room by dropping 4 more:
	// 96 × 2112 + 9600 = 212352 fits, 97 × 2112 + 9600 does not.
	if d := hold(t, e.w, ip4, 101, 9000); !slices.Equal(d, []uint64{1, 2, 3, 4}) {
		t.Fatalf("jumbo dropped %v", d)
	}
	e.poll() // publishes the worker's counters
	if st := e.tab.Stats(); st.QueueDrops != 5 {
		t.Fatalf("queue drops %d", st.QueueDrops)
	}
	e.confirm(ip4, macA, ARPReply|Unicast)
	evs := e.poll()
	want := []uint64{}
	for h := uint64(5); h <= 101; h++ {
		want = append(want, h)
	}
	if got := handles(evs, EventSend); !slices.Equal(got, want) {
		t.Fatalf("released %v", got)
	}
}

func TestQueueAloneOverBound(t *testing.T) {
	// The new packet is kept even when it alone is over the bound.
	e := newEnv(t, func(c *Config) { c.Params.UnresQLenBytes = 1000 })
	e.resolve(ip4)
	hold(t, e.w, ip4, 1, 1500)
	if d := hold(t, e.w, ip4, 2, 1500); !slices.Equal(d, []uint64{1}) {
		t.Fatalf("dropped %v", d)
	}
	if e.w.Held() != 1 {
		t.Fatal(e.w.Held())
	}
}

func TestPoolBound(t *testing.T) {
	e := newEnv(t, nil)
	w, _ := e.tab.NewWorker(4)
	other := ip16("10.1.0.3")
	w.Resolve(1, ip4, 0)
	w.Resolve(1, other, 0)
	for h := uint64(1); h <= 4; h++ {
		hold(t, w, ip4, h, 64)
	}
	if _, ok := w.Hold(1, other, 9, 64, nil); ok {
		t.Fatal("a fifth packet for another neighbour was held")
	}
	if d := hold(t, w, ip4, 5, 64); !slices.Equal(d, []uint64{1}) {
		t.Fatalf("dropped %v", d)
	}
	if st := e.tab.Stats(); st.HoldRefused != 0 {
		t.Fatalf("counters published before Poll: %+v", st)
	}
	w.Poll(0, make([]Event, 8))
	if st := e.tab.Stats(); st.HoldRefused != 1 || st.QueueDrops != 1 || st.Lookups != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestDeleteDropsHeld(t *testing.T) {
	e := newEnv(t, nil)
	e.resolve(ip4)
	hold(t, e.w, ip4, 7, 64)
	if !e.tab.Delete(1, netip.AddrFrom16(ip4).Unmap()) {
		t.Fatal("Delete found nothing")
	}
	if evs := e.poll(); !slices.Equal(handles(evs, EventDrop), []uint64{7}) || len(evs) != 1 {
		t.Fatalf("events %v", evs)
	}
}

func TestStaticReleasesHeld(t *testing.T) {
	e := newEnv(t, nil)
	e.resolve(ip4)
	hold(t, e.w, ip4, 7, 64)
	if err := e.tab.AddStatic(1, netip.MustParseAddr("10.1.0.2"), macB); err != nil {
		t.Fatal(err)
	}
	evs := e.poll()
	if len(evs) != 1 || evs[0].Kind != EventSend || evs[0].MAC != macB {
		t.Fatalf("events %v", evs)
	}
	if _, _, st := e.tab.Len(); st != 1 {
		t.Fatalf("statics %d", st)
	}
	if v4, _, _ := e.tab.Len(); v4 != 0 {
		t.Fatalf("dynamic %d", v4)
	}
}

func TestPollSmallBufferAndGate(t *testing.T) {
	e := newEnv(t, nil)
	e.resolve(ip4)
	e.resolve(ip6)
	for h := uint64(0); h < 5; h++ {
		hold(t, e.w, ip4, h, 64)
		hold(t, e.w, ip6, 100+h, 64)
	}
	if n := e.w.Poll(e.clock(), make([]Event, 4)); n != 0 {
		t.Fatalf("poll with nothing due: %d", n)
	}
	e.confirm(ip4, macA, ARPReply|Unicast)
	e.confirm(ip6, macB, NA|Solicited)
	var got []uint64
	buf := make([]Event, 3)
	for range 10 {
		n := e.w.Poll(e.clock(), buf)
		got = append(got, handles(buf[:n], EventSend)...)
		if n < len(buf) {
			break
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, []uint64{0, 1, 2, 3, 4, 100, 101, 102, 103, 104}) || e.w.Held() != 0 {
		t.Fatalf("released %v, held %d", got, e.w.Held())
	}
}

func TestDrain(t *testing.T) {
	e := newEnv(t, nil)
	e.resolve(ip4)
	e.resolve(ip6)
	hold(t, e.w, ip4, 1, 64)
	hold(t, e.w, ip6, 2, 64)
	hold(t, e.w, ip4, 3, 64)
	buf := make([]Event, 2)
	var got []uint64
	for e.w.Held() > 0 {
		n := e.w.Drain(buf)
		got = append(got, handles(buf[:n], EventDrop)...)
	}
	slices.Sort(got)
	if !slices.Equal(got, []uint64{1, 2, 3}) {
		t.Fatal(got)
	}
}

func TestProbeFromPoll(t *testing.T) {
	// Packets held while INCOMPLETE and released on a STALE answer move
	// the entry to DELAY, as the kernel's flush of its arp_queue does.
	e := newEnv(t, nil)
	e.resolve(ip4)
	hold(t, e.w, ip4, 1, 64)
	e.confirm(ip4, macA, ARPReply) // broadcast reply: STALE
	if evs := e.poll(); count(evs, EventSend) != 1 {
		t.Fatalf("events %v", evs)
	}
	if s := e.state(ip4); s != StateDelay {
		t.Fatalf("state %v, want DELAY", s)
	}
}

func TestFixedAddresses(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.NoARP = []NoARPInterface{{Iface: 7, MAC: header.MAC{2, 9, 9, 9, 9, 9}}}
	})
	cases := []struct {
		iface uint16
		ip    string
		mac   header.MAC
	}{
		{1, "224.0.0.251", header.MAC{0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb}},
		{1, "239.255.1.2", header.MAC{0x01, 0x00, 0x5e, 0x7f, 0x01, 0x02}},
		{1, "255.255.255.255", header.BroadcastMAC},
		{1, "ff02::1:ff00:2", header.MAC{0x33, 0x33, 0xff, 0x00, 0x00, 0x02}},
		{7, "10.9.9.9", header.MAC{2, 9, 9, 9, 9, 9}},
		{7, "fd00::9", header.MAC{2, 9, 9, 9, 9, 9}},
	}
	for _, c := range cases {
		mac, a := e.w.Resolve(c.iface, ip16(c.ip), 0)
		if a != Send || mac != c.mac {
			t.Errorf("%s on %d: %v %v, want send %v", c.ip, c.iface, mac, a, c.mac)
		}
	}
	if v4, v6, st := e.tab.Len(); v4+v6+st != 0 {
		t.Fatal("entries made for fixed addresses")
	}
	if o := e.tab.Confirm(7, ip16("10.9.9.9"), macA, ARPReply|Unicast, 0); o != Ignored {
		t.Fatalf("confirm on NOARP: %v", o)
	}
	if o := e.tab.Confirm(1, ip16("224.0.0.1"), macA, ARPReply|Unicast, 0); o != Invalid {
		t.Fatalf("confirm for multicast: %v", o)
	}
	if o := e.tab.Confirm(1, ip4, header.MAC{1, 0, 0, 0, 0, 1}, ARPReply|Unicast, 0); o != Invalid {
		t.Fatalf("confirm with a group MAC: %v", o)
	}
	if o := e.tab.Confirm(1, ip16("::"), macA, NS, 0); o != Invalid {
		t.Fatalf("NS from ::: %v", o)
	}
	if o := e.tab.Confirm(1, ip16("0.0.0.0"), macA, ARPRequestForUs, 0); o != Invalid {
		t.Fatalf("ARP from 0.0.0.0: %v", o)
	}
	if o := e.tab.Confirm(1, ip4, macA, NA|Solicited, 0); o != Invalid {
		t.Fatalf("NA for an IPv4 address: %v", o)
	}
	if err := e.tab.AddStatic(7, netip.MustParseAddr("10.9.9.9"), macA); err == nil {
		t.Fatal("static on a NOARP interface accepted")
	}
}

func TestPermanent(t *testing.T) {
	e := newEnv(t, nil)
	if err := e.tab.AddStatic(1, netip.MustParseAddr("10.1.0.2"), macA); err != nil {
		t.Fatal(err)
	}
	for _, d := range []time.Duration{0, 40 * s, 1000 * s} {
		if mac, a := e.at(d).resolve(ip4); a != Send || mac != macA {
			t.Fatalf("at %v: %v %v", d, mac, a)
		}
		e.tab.Tick(e.clock())
	}
	if o := e.confirm(ip4, macB, ARPReply|Unicast|Gratuitous); o != Ignored {
		t.Fatalf("confirm on PERMANENT: %v", o)
	}
	if l := e.entry(ip4); l.State != StatePermanent || l.MAC != macA {
		t.Fatalf("%+v", l)
	}
}

func TestWorkerClose(t *testing.T) {
	e := newEnv(t, nil)
	e.resolve(ip4)
	hold(t, e.w, ip4, 1, 64)
	if err := e.w.Close(); err == nil {
		t.Fatal("Close with a held packet succeeded")
	}
	e.w.Drain(make([]Event, 4))
	if err := e.w.Close(); err != nil {
		t.Fatal(err)
	}
	if st := e.tab.Stats(); st.Lookups != 1 || st.Solicits != 1 || len(e.tab.workers) != 0 {
		t.Fatalf("after Close: %+v, %d workers", st, len(e.tab.workers))
	}
}

func TestContended(t *testing.T) {
	e := newEnv(t, nil)
	e.reachableAt(ip4, macA)
	// A writer stuck in the slot (an odd sequence): Resolve gives up
	// after its bounded retries and drops, without waiting.
	k := makeKey(1, &ip4)
	i, _, q, found, _ := e.tab.find(k, e.tab.hash(k))
	if !found {
		t.Fatal("no entry")
	}
	e.tab.slots[i].seq.Store(q + 1)
	if _, a := e.resolve(ip4); a != Drop {
		t.Fatalf("stuck slot: %v", a)
	}
	e.tab.slots[i].seq.Store(q + 2)
	if mac, a := e.resolve(ip4); a != Send || mac != macA {
		t.Fatalf("after: %v %v", mac, a)
	}
	// A creator stuck holding the new key's bucket lock.
	other := ip16("10.1.0.3")
	ko := makeKey(1, &other)
	b1, _, _ := e.tab.buckets2(e.tab.hash(ko))
	e.tab.buckets[b1].lock.Store(1)
	if _, a := e.resolve(other); a != Drop {
		t.Fatalf("stuck lock: %v", a)
	}
	if o := e.confirm(other, macB, ARPRequestForUs); o != Refused {
		t.Fatalf("stuck lock, confirm: %v", o)
	}
	e.tab.buckets[b1].lock.Store(0)
	if _, a := e.resolve(other); a != HoldSolicit {
		t.Fatalf("after: %v", a)
	}
	if st := e.tab.Stats(); st.Contended != 3 {
		t.Fatalf("contended %d", st.Contended)
	}
}

// TestWorkerCache: the worker's cache of hits never answers for an entry
// that changed, expired or went away.
func TestWorkerCache(t *testing.T) {
	e := newEnv(t, nil)
	e.reachableAt(ip4, macA)
	for range 2 { // the second answer comes from the cache
		if mac, a := e.resolve(ip4); a != Send || mac != macA {
			t.Fatalf("%v %v", mac, a)
		}
	}
	if c := e.w.cache[cacheIndex(makeKey(1, &ip4))]; c.state != StateReachable || c.mac != macA {
		t.Fatalf("not cached: %+v", c)
	}
	e.at(100 * time.Millisecond)
	e.confirm(ip4, macB, ARPRequest|Gratuitous)
	if mac, a := e.resolve(ip4); a != Send || mac != macB || e.state(ip4) != StateDelay {
		t.Fatalf("after a new address: %v %v %v", mac, a, e.state(ip4))
	}
	e.reachableAt(ip6, macA)
	e.resolve(ip6)
	e.at(31 * s)
	if _, a := e.resolve(ip6); a != Send || e.state(ip6) != StateDelay {
		t.Fatalf("expired: %v %v", a, e.state(ip6))
	}
	e.resolve(ip6)
	e.tab.Delete(1, netip.AddrFrom16(ip6))
	if _, a := e.resolve(ip6); a != HoldSolicit {
		t.Fatalf("deleted: %v", a)
	}
}

// TestWatchedNeighbourProbes: a neighbour a packet moved from STALE to
// DELAY is probed by Poll with no further packet, as the kernel's timer
// probes it: nothing before delay_first_probe_time, then a unicast probe
// to its MAC every retrans_time, ucast_solicit of them, and FAILED after
// the last unanswered; one that answers becomes REACHABLE and is no longer
// watched.
func TestWatchedNeighbourProbes(t *testing.T) {
	const s = time.Second
	for _, answers := range []bool{false, true} {
		e := newEnv(t, nil)
		e.resolve(ip4)
		e.confirm(ip4, macA, ARPReply|Unicast) // REACHABLE
		e.at(40 * s)                           // STALE by then
		if _, act := e.resolve(ip4); act != Send || e.state(ip4) != StateDelay || !e.w.Watching() {
			t.Fatalf("a packet to a STALE neighbour: %v, state %v, watching %v", act, e.state(ip4), e.w.Watching())
		}
		if evs := e.at(44 * s).poll(); len(evs) != 0 {
			t.Fatalf("before delay_first_probe_time: %v", evs)
		}
		var probes []time.Duration
		for at := 45 * s; at <= 49*s; at += 100 * time.Millisecond {
			for _, ev := range e.at(at).poll() {
				if ev.Kind != EventProbe || ev.MAC != macA {
					t.Fatalf("at %v: %+v, want a unicast probe to %v", at, ev, macA)
				}
				probes = append(probes, at)
				if answers {
					e.confirm(ip4, macA, ARPReply|Unicast)
				}
			}
		}
		if answers {
			if len(probes) != 1 || e.state(ip4) != StateReachable || e.w.Watching() {
				t.Fatalf("answered: probes at %v, state %v, watching %v; want one probe, REACHABLE, not watched", probes, e.state(ip4), e.w.Watching())
			}
			continue
		}
		if want := []time.Duration{45 * s, 46 * s, 47 * s}; !slices.Equal(probes, want) {
			t.Fatalf("probes at %v, want %v", probes, want)
		}
		if e.state(ip4) != StateFailed || e.w.Watching() {
			t.Fatalf("after the last probe: state %v, watching %v; want FAILED, not watched", e.state(ip4), e.w.Watching())
		}
	}
}
