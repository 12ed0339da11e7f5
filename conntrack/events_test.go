package conntrack

import (
	"strings"
	"sync"
	"testing"
)

// events drains tb's events as conntrack -E lines.
func eventLines(t *testing.T, tb *Table) []string {
	t.Helper()
	evs, lost := tb.ReadEvents(nil)
	if lost != 0 {
		t.Fatalf("%d events lost", lost)
	}
	var ls []string
	for i := range evs {
		ls = append(ls, evs[i].Format(""))
	}
	return ls
}

func wantLines(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s:\n%s\nwant\n%s", what, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// Without a subscriber nothing is produced (and no ring allocated).
func TestEventsOffProducesNothing(t *testing.T) {
	tb := New(Config{Max: 16})
	w := tb.NewWorker()
	k := udp4("10.1.0.2", "10.2.0.2", 40000, 5555)
	c := add(t, w, k, 0)
	tb.SetMark(c, 7)
	tb.Flush()
	if evs, lost := tb.ReadEvents(nil); len(evs) != 0 || lost != 0 || len(tb.loadRings()) != 0 {
		t.Fatalf("events without subscribers: %d, lost %d, rings %d", len(evs), lost, len(tb.loadRings()))
	}
}

// A UDP flow: NEW at confirm, UPDATE at the first reply (IPCT_REPLY),
// none for a packet that changes nothing, UPDATE when it becomes a
// stream (IPCT_ASSURED), UPDATE for a mark change (IPCT_MARK, and none
// when the mark stays), DESTROY when it times out. The lines are the
// kernel's (captured with conntrack -E for the same traffic, timeouts as
// set there).
func TestEventsUDP(t *testing.T) {
	tm := DefaultTimeouts()
	tm.UDP, tm.UDPStream = 4*1e9, 6*1e9
	tb := New(Config{Max: 16, Timeouts: tm})
	tb.SubscribeEvents()
	defer tb.UnsubscribeEvents()
	w := tb.NewWorker()
	k := udp4("10.77.0.1", "10.77.0.2", 40000, 5555)
	c := add(t, w, k, 0)
	r, _ := k.Reverse()
	rc, _ := w.Lookup(&r, sec/10)
	w.Packet(rc, nil, sec/10)
	w.Packet(c, nil, sec/5)
	w.Packet(rc, nil, sec/5)
	w.Packet(c, nil, 2*sec+sec/5)
	w.Packet(rc, nil, 2*sec+sec/5) // assured already: nothing
	tb.SetMarkAt(c, 42, 2*sec+sec/5)
	tb.SetMarkAt(c, 42, 2*sec+sec/5)
	wantLines(t, "udp", eventLines(t, tb),
		"    [NEW] udp      17 4 src=10.77.0.1 dst=10.77.0.2 sport=40000 dport=5555 [UNREPLIED] src=10.77.0.2 dst=10.77.0.1 sport=5555 dport=40000",
		" [UPDATE] udp      17 4 src=10.77.0.1 dst=10.77.0.2 sport=40000 dport=5555 src=10.77.0.2 dst=10.77.0.1 sport=5555 dport=40000",
		" [UPDATE] udp      17 6 src=10.77.0.1 dst=10.77.0.2 sport=40000 dport=5555 src=10.77.0.2 dst=10.77.0.1 sport=5555 dport=40000 [ASSURED]",
		" [UPDATE] udp      17 6 src=10.77.0.1 dst=10.77.0.2 sport=40000 dport=5555 src=10.77.0.2 dst=10.77.0.1 sport=5555 dport=40000 [ASSURED] mark=42",
	)
	tb.SetMarkAt(c, 0, 2*sec+sec/5)
	if n := tb.Expire(10*sec, 16); n != 1 {
		t.Fatalf("expired %d", n)
	}
	wantLines(t, "udp mark 0 and timeout", eventLines(t, tb),
		" [UPDATE] udp      17 6 src=10.77.0.1 dst=10.77.0.2 sport=40000 dport=5555 src=10.77.0.2 dst=10.77.0.1 sport=5555 dport=40000 [ASSURED] mark=0",
		"[DESTROY] udp      17 src=10.77.0.1 dst=10.77.0.2 sport=40000 dport=5555 src=10.77.0.2 dst=10.77.0.1 sport=5555 dport=40000 [ASSURED]",
	)
}

// A ping: NEW, UPDATE at the reply; flushed by process 3327 (conntrack
// -F): DESTROY with the seconds left and [USERSPACE].
func TestEventsICMPFlush(t *testing.T) {
	tb := New(Config{Max: 16})
	tb.SubscribeEvents()
	defer tb.UnsubscribeEvents()
	w := tb.NewWorker()
	k := udp4("10.77.0.1", "10.77.0.2", 3233, 8<<8)
	k.Proto = ProtoICMP
	add(t, w, k, 0)
	r, _ := k.Reverse()
	rc, _ := w.Lookup(&r, 0)
	w.Packet(rc, nil, 0)
	if n := tb.FlushFrom(sec+sec/2, 3327); n != 1 {
		t.Fatalf("flushed %d", n)
	}
	evs, _ := tb.ReadEvents(nil)
	var got []string
	for i := range evs {
		got = append(got, evs[i].Format("conntrack"))
	}
	wantLines(t, "icmp", got,
		"    [NEW] icmp     1 30 src=10.77.0.1 dst=10.77.0.2 type=8 code=0 id=3233 [UNREPLIED] src=10.77.0.2 dst=10.77.0.1 type=0 code=0 id=3233",
		" [UPDATE] icmp     1 30 src=10.77.0.1 dst=10.77.0.2 type=8 code=0 id=3233 src=10.77.0.2 dst=10.77.0.1 type=0 code=0 id=3233",
		"[DESTROY] icmp     1 28 src=10.77.0.1 dst=10.77.0.2 type=8 code=0 id=3233 src=10.77.0.2 dst=10.77.0.1 type=0 code=0 id=3233 [USERSPACE] portid=3327 progname=conntrack",
	)
	if evs[2].Entry.Status&StatusDying == 0 {
		t.Error("DESTROY's status lacks dying")
	}
}

// A TCP connection opened and closed: the kernel's sequence of states,
// each change an UPDATE with the state; then one refused by a RST:
// DESTROY, [UNREPLIED], the state CLOSE and SYN_SENT's timeout.
func TestEventsTCP(t *testing.T) {
	tm := DefaultTimeouts()
	tm.TCP[TCPTimeWait] = 3 * 1e9
	tb := New(Config{Max: 16, Timeouts: tm})
	tb.SubscribeEvents()
	defer tb.UnsubscribeEvents()
	w := tb.NewWorker()
	k := udp4("10.77.0.1", "10.77.0.2", 47744, 8080)
	k.Proto = ProtoTCP
	r, _ := k.Reverse()
	seg := func(seq, ack uint32, flags uint8) *TCPSegment {
		return &TCPSegment{Seq: seq, Ack: ack, Flags: flags, Window: 65535, HeaderLen: 20}
	}
	var e Entry
	w.Prepare(&k, seg(1000, 0, TCPSyn), 0, &e)
	c, _ := w.Confirm(&e, 0)
	rc, _ := w.Lookup(&r, 0)
	w.Packet(rc, seg(5000, 1001, TCPSyn|TCPAck), 0)
	w.Packet(c, seg(1001, 5001, TCPAck), 0)
	w.Packet(c, &TCPSegment{Seq: 1001, Ack: 5001, Flags: TCPAck | TCPPsh, Window: 65535, HeaderLen: 20, PayloadLen: 6}, 0)
	w.Packet(rc, seg(5001, 1007, TCPAck), 0) // no state change: nothing
	w.Packet(rc, &TCPSegment{Seq: 5001, Ack: 1007, Flags: TCPAck | TCPPsh | TCPFin, Window: 65535, HeaderLen: 20, PayloadLen: 6}, 0)
	w.Packet(c, seg(1007, 5008, TCPAck|TCPFin), 0)
	w.Packet(rc, seg(5008, 1008, TCPAck), 0)
	wantLines(t, "tcp", eventLines(t, tb),
		"    [NEW] tcp      6 120 SYN_SENT src=10.77.0.1 dst=10.77.0.2 sport=47744 dport=8080 [UNREPLIED] src=10.77.0.2 dst=10.77.0.1 sport=8080 dport=47744",
		" [UPDATE] tcp      6 60 SYN_RECV src=10.77.0.1 dst=10.77.0.2 sport=47744 dport=8080 src=10.77.0.2 dst=10.77.0.1 sport=8080 dport=47744",
		" [UPDATE] tcp      6 432000 ESTABLISHED src=10.77.0.1 dst=10.77.0.2 sport=47744 dport=8080 src=10.77.0.2 dst=10.77.0.1 sport=8080 dport=47744 [ASSURED]",
		" [UPDATE] tcp      6 120 FIN_WAIT src=10.77.0.1 dst=10.77.0.2 sport=47744 dport=8080 src=10.77.0.2 dst=10.77.0.1 sport=8080 dport=47744 [ASSURED]",
		" [UPDATE] tcp      6 30 LAST_ACK src=10.77.0.1 dst=10.77.0.2 sport=47744 dport=8080 src=10.77.0.2 dst=10.77.0.1 sport=8080 dport=47744 [ASSURED]",
		" [UPDATE] tcp      6 3 TIME_WAIT src=10.77.0.1 dst=10.77.0.2 sport=47744 dport=8080 src=10.77.0.2 dst=10.77.0.1 sport=8080 dport=47744 [ASSURED]",
	)
	tb.Expire(4*sec, 16)
	wantLines(t, "tcp timeout", eventLines(t, tb),
		"[DESTROY] tcp      6 TIME_WAIT src=10.77.0.1 dst=10.77.0.2 sport=47744 dport=8080 src=10.77.0.2 dst=10.77.0.1 sport=8080 dport=47744 [ASSURED]")

	k.SrcPort, k.DstPort = 57094, 8081
	r, _ = k.Reverse()
	w.Prepare(&k, seg(1000, 0, TCPSyn), 5*sec, &e)
	w.Confirm(&e, 5*sec)
	rc, _ = w.Lookup(&r, 5*sec)
	if _, res := w.Packet(rc, seg(0, 1001, TCPRst|TCPAck), 5*sec); res != PacketAcceptGone {
		t.Fatal("RST:", res)
	}
	wantLines(t, "tcp rst", eventLines(t, tb),
		"    [NEW] tcp      6 120 SYN_SENT src=10.77.0.1 dst=10.77.0.2 sport=57094 dport=8081 [UNREPLIED] src=10.77.0.2 dst=10.77.0.1 sport=8081 dport=57094",
		"[DESTROY] tcp      6 120 CLOSE src=10.77.0.1 dst=10.77.0.2 sport=57094 dport=8081 [UNREPLIED] src=10.77.0.2 dst=10.77.0.1 sport=8081 dport=57094",
	)
}

// Early drop reports the entries it evicts as DESTROY.
func TestEventsEarlyDrop(t *testing.T) {
	tb := New(Config{Max: 4, Buckets: 1})
	w := tb.NewWorker()
	for i := range 4 {
		add(t, w, flowN(i), 0)
	}
	tb.SubscribeEvents()
	defer tb.UnsubscribeEvents()
	add(t, w, flowN(4), 0)
	evs, _ := tb.ReadEvents(nil)
	var n [8]int
	for _, ev := range evs {
		n[ev.Type]++
	}
	if n[EventDestroy] != 4 || n[EventNew] != 1 || evs[len(evs)-1].Type != EventNew {
		t.Fatalf("early drop: %d DESTROY, %d NEW", n[EventDestroy], n[EventNew])
	}
}

// A full ring drops events and counts them; draining makes room again.
func TestEventsRingOverflow(t *testing.T) {
	tb := New(Config{Max: EventRingSize + 100})
	tb.SubscribeEvents()
	defer tb.UnsubscribeEvents()
	w := tb.NewWorker()
	for i := range EventRingSize + 10 {
		add(t, w, flowN(i), 0)
	}
	evs, lost := tb.ReadEvents(nil)
	if len(evs) != EventRingSize || lost != 10 {
		t.Fatalf("%d events, %d lost; want %d and 10", len(evs), lost, EventRingSize)
	}
	if evs[0].Entry.Tuple[0] != flowN(0) || evs[EventRingSize-1].Entry.Tuple[0] != flowN(EventRingSize-1) {
		t.Fatal("the ring kept the wrong events")
	}
	add(t, w, flowN(EventRingSize+20), 0)
	if evs, lost := tb.ReadEvents(evs[:0]); len(evs) != 1 || lost != 0 {
		t.Fatalf("after a drain: %d events, %d lost", len(evs), lost)
	}
}

// Workers, the reaper and a flush produce while a reader drains: every
// event arrives once, in each producer's order (run with -race).
func TestEventsConcurrent(t *testing.T) {
	const perWorker = 3000
	tb := New(Config{Max: 4 * perWorker})
	tb.SubscribeEvents()
	defer tb.UnsubscribeEvents()
	var wg sync.WaitGroup
	for g := range 3 {
		wg.Go(func() {
			w := tb.NewWorker()
			for i := range perWorker {
				add(t, w, flowN(g*perWorker+i), int64(i))
			}
		})
	}
	wg.Go(func() {
		for range 50 {
			tb.Expire(1, 1000)
		}
	})
	done := make(chan struct{})
	var got []Event
	var lost uint64
	go func() {
		defer close(done)
		for {
			var l uint64
			got, l = tb.ReadEvents(got)
			lost += l
			if len(got)+int(lost) >= 3*perWorker {
				return
			}
		}
	}()
	wg.Wait()
	<-done
	news := 0
	for _, ev := range got {
		if ev.Type == EventNew {
			news++
		}
	}
	if news+int(lost) != 3*perWorker {
		t.Fatalf("%d NEW + %d lost, want %d", news, lost, 3*perWorker)
	}
}
