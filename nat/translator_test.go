package nat

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xdpfwd/xdpfwd/conntrack"
	"github.com/xdpfwd/xdpfwd/fastpath"
	"github.com/xdpfwd/xdpfwd/fastpath/fastpathtest"
)

// logLines collects a Translator's log lines.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) log(msg string) {
	l.mu.Lock()
	l.lines = append(l.lines, msg)
	l.mu.Unlock()
}

func (l *logLines) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

// TestExhaustionSinglePort: `snat to 10.9.0.1:5000` takes one flow; the
// next flow to the same server (whose reply tuple would be the first
// one's) gets the same tuple, as the kernel's nf_nat_setup_info, which
// never fails, and is dropped when conntrack confirms it: counted as
// exhausted by NAT and insert_failed by conntrack, with one log line a
// second. Once the first expires, the next flow gets the port. For UDP
// nf_ct_resolve_clash does not rescue the second flow: the entry in the
// table is NAT-translated and has other tuples.
func TestExhaustionSinglePort(t *testing.T) {
	for _, tc := range []struct {
		name    string
		mk      func(t testing.TB, src string, sport uint16, dst string, dport uint16) []byte
		timeout fastpath.Time
	}{
		{"tcp", tcpSYN, fastpathtest.Sec(121)},  // SYN_SENT: 2 min
		{"udp", udpFrame, fastpathtest.Sec(31)}, // unreplied: 30 s
	} {
		t.Run(tc.name, func(t *testing.T) {
			var lg logLines
			tr := newNATTracker(64)
			x := NewTranslator(tr, nil, nil, Options{Log: lg.log})
			r := newNATRig(t, tr, x)
			r.snat = func(p *fastpath.Packet) bool { return x.Setup(p, snatTo("10.9.0.1", 5000, 5000), Src, r.now) }

			first := r.forward(tc.mk(t, "10.0.0.2", 40000, "192.0.2.1", 80))[0]
			if first.Action != fastpath.ActionContinue {
				t.Fatalf("first flow: %v %v", first.Action, first.Reason)
			}
			if src, _, sport, _ := flowOf(&first); !src.Equal(net.ParseIP("10.9.0.1")) || sport != 5000 {
				t.Fatalf("first flow leaves as %v:%d", src, sport)
			}
			// The next flows, from other clients to the same server.
			for i, c := range []string{"10.0.0.3", "10.0.0.4"} {
				p := r.forward(tc.mk(t, c, 40000, "192.0.2.1", 80))[0]
				if p.Action != fastpath.ActionDrop || p.Reason != conntrack.DropInsertFailed {
					t.Fatalf("flow from %s: %v %v, want dropped at confirm", c, p.Action, p.Reason)
				}
				if s := x.Stats(); s.Exhausted != uint64(i+1) {
					t.Fatalf("exhausted %d, want %d", s.Exhausted, i+1)
				}
				if s := ctStats(tr); s.InsertFailed != uint64(i+1) {
					t.Fatalf("insert_failed %d, want %d", s.InsertFailed, i+1)
				}
			}
			es := entries(tr, r.now)
			if len(es) != 1 || es[0].Tuple[1].DstPort != 5000 || es[0].Tuple[0].Src != a16("10.0.0.2") {
				t.Fatalf("entries %+v", es)
			}
			// One line for the first exhaustion; the second, in the
			// same second, waits for the next line.
			if ls := lg.get(); len(ls) != 1 || !strings.Contains(ls[0], "for 1 new connection(s)") || !strings.Contains(ls[0], "translated to src=10.9.0.1 dst=192.0.2.1 sport=5000") {
				t.Fatalf("log lines %q", ls)
			}
			// A reply still reaches the first client.
			if tc.name == "udp" {
				back := r.forward(udpFrame(t, "192.0.2.1", 80, "10.9.0.1", 5000))[0]
				if _, dst, _, dport := flowOf(&back); back.Action != fastpath.ActionContinue || !dst.Equal(net.ParseIP("10.0.0.2")) || dport != 40000 {
					t.Fatalf("reply: %v to %v:%d", back.Action, dst, dport)
				}
				tc.timeout = fastpathtest.Sec(181) // replied: 3 min (stream) at most
			}

			// The first flow expires; a retransmission from the second
			// client gets the port.
			r.now += tc.timeout
			p := r.forward(tc.mk(t, "10.0.0.3", 40000, "192.0.2.1", 80))[0]
			if src, _, sport, _ := flowOf(&p); p.Action != fastpath.ActionContinue || !src.Equal(net.ParseIP("10.9.0.1")) || sport != 5000 {
				t.Fatalf("after expiry: %v %v leaves as %v:%d", p.Action, p.Reason, src, sport)
			}
			es = entries(tr, r.now)
			if len(es) != 1 || es[0].Tuple[0].Src != a16("10.0.0.3") {
				t.Fatalf("entries after expiry %+v", es)
			}
			if s := x.Stats(); s.Exhausted != 2 {
				t.Fatalf("exhausted %d after expiry, want 2", s.Exhausted)
			}
			// Exhausted again, over a second later: the next line counts
			// the one left from before and this one.
			r.now += fastpathtest.Sec(1)
			if p := r.forward(tc.mk(t, "10.0.0.5", 40000, "192.0.2.1", 80))[0]; p.Action != fastpath.ActionDrop {
				t.Fatalf("third client: %v", p.Action)
			}
			if ls := lg.get(); len(ls) != 2 || !strings.Contains(ls[1], "for 2 new connection(s)") || !strings.Contains(ls[1], "(3 in all)") {
				t.Fatalf("log lines %q", ls)
			}
		})
	}
}

// TestExhaustionLogRate: however many connections find the range
// exhausted, at most one line a second, each with the count since the
// previous one.
func TestExhaustionLogRate(t *testing.T) {
	var lg logLines
	x := NewTranslator(nil, nil, nil, Options{Log: lg.log})
	var o, tt conntrack.Tuple
	now := fastpathtest.Sec(10)
	for i := range 5000 {
		x.exhaust(&o, &tt, now+fastpath.Time(i)*fastpath.Time(time.Millisecond))
	}
	ls := lg.get()
	if len(ls) != 5 {
		t.Fatalf("%d lines over 5 s, want 5: %q", len(ls), ls)
	}
	total := 0
	for _, l := range ls {
		var n int
		if _, err := fmt.Sscanf(l[strings.Index(l, "for "):], "for %d new", &n); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		total += n
	}
	if want := 5000 - 999; total != want || x.Stats().Exhausted != 5000 {
		t.Fatalf("lines count %d, want %d (the last second's are for the next line)", total, want)
	}
	// No logger: counted only.
	x = NewTranslator(nil, nil, nil)
	x.exhaust(&o, &tt, now)
	if x.Stats().Exhausted != 1 {
		t.Fatal("not counted")
	}
}

// TestExhaustionTwoWorkers: two workers bind new connections that
// compete for the last free port of the range at the same time: one
// gets it, the other is dropped (exhausted at its binding if it saw the
// winner, else insert_failed when it confirms the same reply tuple);
// never two entries with the same reply tuple.
func TestExhaustionTwoWorkers(t *testing.T) {
	iters := 300
	if testing.Short() {
		iters = 50
	}
	frames := map[string][2][]byte{
		"tcp": {tcpSYN(t, "10.0.0.3", 40000, "192.0.2.1", 80), tcpSYN(t, "10.0.0.4", 40000, "192.0.2.1", 80)},
		"udp": {udpFrame(t, "10.0.0.3", 40000, "192.0.2.1", 80), udpFrame(t, "10.0.0.4", 40000, "192.0.2.1", 80)},
	}
	holders := map[string][]byte{
		"tcp": tcpSYN(t, "10.0.0.2", 40000, "192.0.2.1", 80),
		"udp": udpFrame(t, "10.0.0.2", 40000, "192.0.2.1", 80),
	}
	// One table for every round, flushed between them: its memory is
	// touched (huge pages faulted in) before the workers race.
	tr := newNATTracker(64)
	r := newNATRig(t, tr, nil)
	var ws [2]*natRig
	for j := range ws {
		ws[j] = newNATRig(t, tr, nil)
	}
	var raced, sawWinner int
	for i := range iters {
		proto := "tcp"
		if i%2 == 1 {
			proto = "udp"
		}
		tr.Table().Flush()
		x := NewTranslator(tr, nil, nil)
		r.x = x
		// Port 5000 of two is taken: 5001 is the last free one.
		r.snat = func(p *fastpath.Packet) bool { return x.Setup(p, snatTo("10.9.0.1", 5000, 5000), Src, r.now) }
		if p := r.forward(holders[proto])[0]; p.Action != fastpath.ActionContinue {
			t.Fatalf("holder: %v", p.Action)
		}
		for j, w := range ws {
			w.x = x
			w.snat = func(p *fastpath.Packet) bool { return x.Setup(p, snatTo("10.9.0.1", 5000, 5001), Src, w.now) }
			w.load(frames[proto][j])
		}
		// Both spin until both run, so that they bind at once.
		var ready atomic.Int32
		var done sync.WaitGroup
		for _, w := range ws {
			done.Add(1)
			go func() {
				defer done.Done()
				ready.Add(1)
				for ready.Load() < int32(len(ws)) {
				}
				w.process()
			}()
		}
		done.Wait()
		won := 0
		for _, w := range ws {
			p := &w.b.Packets[0]
			switch {
			case p.Action == fastpath.ActionContinue:
				won++
				if _, _, sport, _ := flowOf(p); sport != 5001 {
					t.Fatalf("%s: the winner leaves from port %d", proto, sport)
				}
			case p.Reason != conntrack.DropInsertFailed:
				t.Fatalf("%s: the loser dropped for %v", proto, p.Reason)
			}
		}
		if won != 1 {
			t.Fatalf("%s: %d winners", proto, won)
		}
		es := entries(tr, r.now)
		seen := map[conntrack.Tuple]bool{}
		for _, e := range es {
			for d := range 2 {
				if seen[e.Tuple[d]] {
					t.Fatalf("%s: tuple %v twice in %+v", proto, e.Tuple[d], es)
				}
				seen[e.Tuple[d]] = true
			}
		}
		if len(es) != 2 {
			t.Fatalf("%s: %d entries, want 2: %+v", proto, len(es), es)
		}
		if x.Stats().Exhausted == 1 {
			sawWinner++
		} else {
			raced++
		}
	}
	t.Logf("%d races lost at confirm, %d losers exhausted at binding", raced, sawWinner)
}

// TestPortShadowing: a new connection's translated tuple must not be the
// tuple of an existing connection that is not translated (the kernel's
// nf_nat_used_tuple, which guards against port shadowing): here the
// router's public address 10.9.0.1 talks from port 5000 to a server
// itself (a connection from that address, seen at prerouting as a
// forwarded one would be, given the null binding), and an inside client
// from port 5000 to the same server is masqueraded into 5000-5001. The
// kernel would keep its port 5000 (in range) were it free; it is the
// other connection's, so it gets 5001, and the server's answers to
// 10.9.0.1:5000 still go to the connection that had it. With only 5000
// in the range, the client's connection is dropped instead.
func TestPortShadowing(t *testing.T) {
	tr := newNATTracker(64)
	x := NewTranslator(tr, nil, nil)
	r := newNATRig(t, tr, x)
	rng := snatTo("10.9.0.1", 5000, 5001)
	r.snat = func(p *fastpath.Packet) bool {
		if src, _, _, _ := flowOf(p); src.Equal(net.ParseIP("10.9.0.1")) {
			return true // the router's own: no nat rule
		}
		return x.Setup(p, rng, Src, r.now)
	}
	own := r.forward(udpFrame(t, "10.9.0.1", 5000, "192.0.2.1", 53))[0]
	if src, _, sport, _ := flowOf(&own); own.Action != fastpath.ActionContinue || !src.Equal(net.ParseIP("10.9.0.1")) || sport != 5000 {
		t.Fatalf("own flow: %v %v:%d", own.Action, src, sport)
	}
	client := r.forward(udpFrame(t, "10.0.0.2", 5000, "192.0.2.1", 53))[0]
	if src, _, sport, _ := flowOf(&client); client.Action != fastpath.ActionContinue || !src.Equal(net.ParseIP("10.9.0.1")) || sport != 5001 {
		t.Fatalf("client flow leaves as %v:%d (%v), want 10.9.0.1:5001", src, sport, client.Action)
	}
	for port, to := range map[uint16]string{5000: "10.9.0.1", 5001: "10.0.0.2"} {
		back := r.forward(udpFrame(t, "192.0.2.1", 53, "10.9.0.1", port))[0]
		if _, dst, _, dport := flowOf(&back); back.Action != fastpath.ActionContinue || !dst.Equal(net.ParseIP(to)) || dport != 5000 {
			t.Fatalf("answer to port %d goes to %v:%d, want %s:5000", port, dst, dport, to)
		}
	}
	if s := x.Stats(); s.Exhausted != 0 {
		t.Fatalf("exhausted %d", s.Exhausted)
	}
	// Only 5000: exhausted, and dropped at confirmation rather than
	// shadow the router's connection.
	rng = snatTo("10.9.0.1", 5000, 5000)
	p := r.forward(udpFrame(t, "10.0.0.3", 5000, "192.0.2.1", 53))[0]
	if p.Action != fastpath.ActionDrop || p.Reason != conntrack.DropInsertFailed || x.Stats().Exhausted != 1 {
		t.Fatalf("single port: %v %v, exhausted %d", p.Action, p.Reason, x.Stats().Exhausted)
	}
	back := r.forward(udpFrame(t, "192.0.2.1", 53, "10.9.0.1", 5000))[0]
	if _, dst, _, _ := flowOf(&back); !dst.Equal(net.ParseIP("10.9.0.1")) {
		t.Fatalf("answer to the router's port goes to %v", dst)
	}
	if n := len(entries(tr, r.now)); n != 2 {
		t.Fatalf("%d entries, want 2", n)
	}
}

// TestMasqueradeNoAddress: masquerade out of an interface without an
// address drops the packet (the verdict; the rules engine drops) and
// counts NoAddress; nothing is confirmed. With an address it binds.
func TestMasqueradeNoAddress(t *testing.T) {
	var addr [16]byte
	has := false
	masq := func(p *fastpath.Packet, v6 bool) ([16]byte, bool) { return addr, has }
	tr := newNATTracker(64)
	for _, x := range []*Translator{NewTranslator(tr, masq, nil), NewTranslator(tr, nil, nil)} {
		r := newNATRig(t, tr, x)
		r.snat = func(p *fastpath.Packet) bool { return x.Masquerade(p, &Range{}, r.now) }
		p := r.forward(udpFrame(t, "10.0.0.2", 4000, "192.0.2.1", 53))[0]
		if p.Action != fastpath.ActionDrop || p.Reason != DropNAT {
			t.Fatalf("no address: %v %v", p.Action, p.Reason)
		}
		if s := x.Stats(); s.NoAddress != 1 || s.Exhausted != 0 {
			t.Fatalf("stats %+v", s)
		}
		if n := tr.Table().Count(); n != 0 {
			t.Fatalf("%d entries", n)
		}
	}
	x := NewTranslator(tr, masq, nil)
	r := newNATRig(t, tr, x)
	r.snat = func(p *fastpath.Packet) bool { return x.Masquerade(p, &Range{}, r.now) }
	addr, has = a16("10.9.0.1"), true
	p := r.forward(udpFrame(t, "10.0.0.2", 4000, "192.0.2.1", 53))[0]
	if src, _, _, _ := flowOf(&p); p.Action != fastpath.ActionContinue || !src.Equal(net.ParseIP("10.9.0.1")) {
		t.Fatalf("with an address: %v from %v", p.Action, src)
	}
	if s := x.Stats(); s.NoAddress != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// TestDryRunCountsNothing: masquerade out of an interface without an
// address, in a dry run (a Simulator's batch, on a worker of its own),
// decides as the live path does (the packet is dropped) but counts
// nothing: NoAddress stays as the live packets left it.
func TestDryRunCountsNothing(t *testing.T) {
	tr := newNATTracker(64)
	x := NewTranslator(tr, nil, nil)
	live, sim := newNATRig(t, tr, x), newNATRig(t, tr, x)
	for _, r := range []*natRig{live, sim} {
		r.snat = func(p *fastpath.Packet) bool { return x.Masquerade(p, &Range{}, r.now) }
	}
	live.forward(udpFrame(t, "10.0.0.2", 4000, "192.0.2.1", 53))
	sim.b.DryRun = true
	p := sim.forward(udpFrame(t, "10.0.0.3", 4000, "192.0.2.1", 53))[0]
	if p.Action != fastpath.ActionDrop || p.Reason != DropNAT {
		t.Fatalf("dry run, no address: %v %v, want dropped", p.Action, p.Reason)
	}
	if s := x.Stats(); s.NoAddress != 1 {
		t.Fatalf("stats %+v, want the live packet's NoAddress only", s)
	}
}

// TestBatchBindsDistinctPorts: 64 new connections in one batch, from 64
// clients with the same source port to one server, snat'ed into a
// range of 64 ports: the kernel binds and confirms one packet at a time,
// so each sees the others' ports taken; here a batch binds all before
// confirming any, and each must still see the ports the others of its
// batch took. All 64 leave with distinct ports and none clashes at
// confirmation.
func TestBatchBindsDistinctPorts(t *testing.T) {
	tr := newNATTracker(1024)
	x := NewTranslator(tr, nil, nil)
	r := newNATRig(t, tr, x)
	r.snat = func(p *fastpath.Packet) bool { return x.Setup(p, snatTo("10.9.0.1", 2000, 2063), Src, r.now) }
	var frames [][]byte
	for i := range fastpath.BatchSize {
		frames = append(frames, udpFrame(t, fmt.Sprintf("10.0.%d.%d", i/200, 1+i%200), 40000, "192.0.2.1", 53))
	}
	seen := map[uint16]bool{}
	for i, p := range r.forward(frames...) {
		src, _, sport, _ := flowOf(&p)
		if p.Action != fastpath.ActionContinue || !src.Equal(net.ParseIP("10.9.0.1")) || sport < 2000 || sport > 2063 || seen[sport] {
			t.Fatalf("packet %d: %v %v leaves as %v:%d (ports so far %v)", i, p.Action, p.Reason, src, sport, seen)
		}
		seen[sport] = true
	}
	if s := ctStats(tr); s.Insert != fastpath.BatchSize || s.InsertFailed != 0 {
		t.Fatalf("conntrack %+v", s)
	}
	if s := x.Stats(); s.Exhausted != 0 {
		t.Fatalf("nat %+v", s)
	}
}

// TestSameSourceMapping is find_appropriate_src: a client whose source
// port another client holds is mapped to another port for its first
// connection; its next connections from the same source address and
// port, to other servers, get that same mapping, as long as it is free
// for them (a mapping that depends on the client only, which NAT
// traversal relies on) — whether the first connection was confirmed in
// an earlier batch or set up earlier in the same one.
func TestSameSourceMapping(t *testing.T) {
	for _, sameBatch := range []bool{false, true} {
		t.Run(fmt.Sprintf("sameBatch=%v", sameBatch), func(t *testing.T) {
			tr := newNATTracker(1024)
			masq := func(p *fastpath.Packet, v6 bool) ([16]byte, bool) { return a16v4b(10, 9, 0, 1), true }
			x := NewTranslator(tr, masq, nil)
			r := newNATRig(t, tr, x)
			var none Range
			r.snat = func(p *fastpath.Packet) bool { return x.Masquerade(p, &none, r.now) }
			// A holds 10.9.0.1:40000 towards 192.0.2.1:53.
			if p := r.forward(udpFrame(t, "10.0.0.1", 40000, "192.0.2.1", 53))[0]; sportOf(&p) != 40000 {
				t.Fatalf("A leaves from port %d", sportOf(&p))
			}
			// B, same source port, same server: another port.
			frames := [][]byte{
				udpFrame(t, "10.0.0.2", 40000, "192.0.2.1", 53),
				udpFrame(t, "10.0.0.2", 40000, "192.0.2.2", 53),
				udpFrame(t, "10.0.0.2", 40000, "192.0.2.3", 53),
			}
			var ps []fastpath.Packet
			if sameBatch {
				ps = r.forward(frames...)
			} else {
				for _, f := range frames {
					ps = append(ps, r.forward(f)[0])
				}
			}
			mapped := sportOf(&ps[0])
			if mapped == 40000 {
				t.Fatal("B kept the port A holds")
			}
			// B's connections to the other servers reuse B's mapping,
			// where without it they would keep port 40000, free there.
			for i, p := range ps[1:] {
				if src, _, sport, _ := flowOf(&p); p.Action != fastpath.ActionContinue || !src.Equal(net.ParseIP("10.9.0.1")) || sport != mapped {
					t.Fatalf("B's connection %d: %v leaves as %v:%d, want port %d", i+2, p.Action, src, sport, mapped)
				}
			}
			// A mapping not free for the new destination is not reused:
			// C takes B's mapping towards 192.0.2.4 first.
			r.snat = func(p *fastpath.Packet) bool {
				return x.Setup(p, snatTo("10.9.0.1", mapped, mapped), Src, r.now)
			}
			if p := r.forward(udpFrame(t, "10.0.0.3", 1, "192.0.2.4", 53))[0]; sportOf(&p) != mapped {
				t.Fatalf("C leaves from port %d", sportOf(&p))
			}
			r.snat = func(p *fastpath.Packet) bool { return x.Masquerade(p, &none, r.now) }
			if p := r.forward(udpFrame(t, "10.0.0.2", 40000, "192.0.2.4", 53))[0]; sportOf(&p) == mapped || p.Action != fastpath.ActionContinue {
				t.Fatalf("B towards C's server: %v from port %d, the port C holds", p.Action, sportOf(&p))
			}
		})
	}
}

// sportOf returns the source port of a packet as it leaves.
func sportOf(p *fastpath.Packet) uint16 {
	_, _, sport, _ := flowOf(p)
	return sport
}
