package conntrack

import (
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"
)

const sec = int64(time.Second)

func udp4(src, dst string, sp, dp uint16) Tuple {
	var t Tuple
	t.SetAddrs(netip.MustParseAddr(src), netip.MustParseAddr(dst))
	t.Proto, t.SrcPort, t.DstPort = ProtoUDP, sp, dp
	return t
}

func flowN(i int) Tuple {
	t := Tuple{Proto: ProtoUDP, Family: 4, SrcPort: uint16(1024 + i%50000), DstPort: 53}
	t.Src = [16]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}
	t.Dst = [16]byte{192, 0, 2, 1}
	return t
}

// add prepares and confirms a flow for k at now.
func add(t testing.TB, w *Worker, k Tuple, now int64) Conn {
	t.Helper()
	var e Entry
	if st, res := w.Prepare(&k, nil, now, &e); st != StateNew || res != PacketAccept {
		t.Fatalf("Prepare %v: %v %v", k, st, res)
	}
	c, res := w.Confirm(&e, now)
	if res != ConfirmInserted {
		t.Fatalf("Confirm %v: %v", k, res)
	}
	return c
}

func read(t *testing.T, tb *Table, c Conn) Entry {
	t.Helper()
	var e Entry
	if !tb.Read(c, &e) {
		t.Fatalf("Read(%x): gone", c)
	}
	return e
}

// near reports whether got is want up to one tick later.
func near(got, want int64) bool { return got >= want && got < want+tickNS }

func TestRecordSize(t *testing.T) {
	if s := unsafe.Sizeof(rec{}); s != recSize {
		t.Fatalf("record is %d bytes, want %d", s, recSize)
	}
}

func TestInsertLookupBothDirections(t *testing.T) {
	tb := New(Config{Max: 16})
	w := tb.NewWorker()
	k := udp4("10.0.0.1", "10.0.0.2", 1000, 53)
	c := add(t, w, k, 0)
	got, ok := w.Lookup(&k, 0)
	if !ok || got != c || got.Dir() != DirOriginal {
		t.Fatalf("Lookup original: %x %v, want %x", got, ok, c)
	}
	r, _ := k.Reverse()
	rc, ok := w.Lookup(&r, 0)
	if !ok || rc.Dir() != DirReply || rc.idx() != c.idx() {
		t.Fatalf("Lookup reply: %x %v", rc, ok)
	}
	e := read(t, tb, c)
	if e.Tuple[0] != k || e.Tuple[1] != r || e.Status != StatusConfirmed {
		t.Fatalf("entry %+v", e)
	}
	other := udp4("10.0.0.1", "10.0.0.2", 1001, 53)
	if _, ok := w.Lookup(&other, 0); ok {
		t.Fatal("found a tuple never inserted")
	}
	if tb.Count() != 1 || w.Stats.Insert != 1 {
		t.Fatalf("count %d stats %+v", tb.Count(), w.Stats)
	}
}

func TestIPv6AndICMPAndNAT66(t *testing.T) {
	tb := New(Config{Max: 16})
	w := tb.NewWorker()
	var k Tuple
	k.SetAddrs(netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2"))
	k.Proto, k.SrcPort, k.DstPort = ProtoICMPv6, 7, 128<<8
	c := add(t, w, k, 0)
	r, _ := k.Reverse()
	if rc, ok := w.Lookup(&r, 0); !ok || rc.Dir() != DirReply {
		t.Fatal("ICMPv6 echo reply not found")
	}
	if e := read(t, tb, c); !near(e.Expires, 30*sec) {
		t.Fatalf("ICMPv6 expires %d", e.Expires)
	}
	// A reply tuple NAT66 translated: kept in the side slab.
	k.SrcPort = 8
	var e Entry
	w.Prepare(&k, nil, 0, &e)
	e.Tuple[1].Src = netip.MustParseAddr("2001:db8::99").As16()
	c2, res := w.Confirm(&e, 0)
	if res != ConfirmInserted {
		t.Fatal(res)
	}
	if rc, ok := w.Lookup(&e.Tuple[1], 0); !ok || rc.idx() != c2.idx() || rc.Dir() != DirReply {
		t.Fatal("translated reply tuple not found")
	}
	if got := read(t, tb, c2); got.Tuple[1] != e.Tuple[1] {
		t.Fatalf("reply tuple %v, want %v", got.Tuple[1], e.Tuple[1])
	}
	// An echo reply or an error type cannot open a connection.
	for _, typ := range []uint16{129, 1} {
		k.DstPort = typ << 8
		if st, res := w.Prepare(&k, nil, 0, &e); st != StateInvalid || res != PacketInvalid {
			t.Fatalf("type %d: %v %v", typ, st, res)
		}
	}
}

func TestZones(t *testing.T) {
	tb := New(Config{Max: 16})
	w := tb.NewWorker()
	k := udp4("10.0.0.1", "10.0.0.2", 1000, 53)
	c0 := add(t, w, k, 0)
	k.Zone = 7
	if _, ok := w.Lookup(&k, 0); ok {
		t.Fatal("zone 7 found zone 0's entry")
	}
	c7 := add(t, w, k, 0)
	if c7.idx() == c0.idx() {
		t.Fatal("same entry")
	}
	r, _ := k.Reverse()
	if rc, ok := w.Lookup(&r, 0); !ok || rc.idx() != c7.idx() {
		t.Fatal("zone 7 reply")
	}
}

func TestUDPTimeouts(t *testing.T) {
	tb := New(Config{Max: 16})
	w := tb.NewWorker()
	k := udp4("10.0.0.1", "10.0.0.2", 1000, 53)
	r, _ := k.Reverse()
	c := add(t, w, k, 0)
	if e := read(t, tb, c); !near(e.Expires, 30*sec) || !near(e.UDPStreamAt, 2*sec) {
		t.Fatalf("unreplied: %+v", e)
	}
	// A second packet the same way: still new, 30 s.
	if st, res := w.Packet(c, nil, sec/2); st != StateNew || res != PacketAccept {
		t.Fatal(st, res)
	}
	// The reply, within 2 s: established, replied, not assured, 30 s.
	rc, _ := w.Lookup(&r, sec)
	if st, res := w.Packet(rc, nil, sec); st != StateEstablished || res != PacketAccept {
		t.Fatal(st, res)
	}
	e := read(t, tb, c)
	if e.Status&StatusSeenReply == 0 || e.Status&StatusAssured != 0 || !near(e.Expires, 31*sec) {
		t.Fatalf("replied: %+v", e)
	}
	if st, _ := w.Packet(c, nil, sec+1); st != StateEstablished {
		t.Fatal("original after reply not established")
	}
	// Still active after 2 s: a stream, 120 s, assured.
	w.Packet(c, nil, 3*sec)
	e = read(t, tb, c)
	if e.Status&StatusAssured == 0 || !near(e.Expires, 123*sec) {
		t.Fatalf("stream: %+v", e)
	}
	// Expiry: found until then, not after.
	if _, ok := w.Lookup(&k, 122*sec); !ok {
		t.Fatal("gone early")
	}
	if _, ok := w.Lookup(&k, 123*sec+tickNS); ok {
		t.Fatal("expired entry found")
	}
	if st, res := w.Packet(c, nil, 124*sec); res != PacketStale {
		t.Fatal("Packet on an expired entry", st, res)
	}
}

func TestUnrepliedExpiresAndGeneric(t *testing.T) {
	tb := New(Config{Max: 16})
	w := tb.NewWorker()
	k := udp4("10.0.0.1", "10.0.0.2", 1000, 53)
	add(t, w, k, 0)
	if _, ok := w.Lookup(&k, 30*sec-tickNS); !ok {
		t.Fatal("unreplied UDP gone before 30 s")
	}
	if _, ok := w.Lookup(&k, 30*sec+tickNS); ok {
		t.Fatal("unreplied UDP alive after 30 s")
	}
	icmp := udp4("10.0.0.1", "10.0.0.2", 0, 0)
	icmp.Proto, icmp.SrcPort, icmp.DstPort = ProtoICMP, 9, 8<<8
	c := add(t, w, icmp, 0)
	w.Packet(c, nil, 10*sec)
	if e := read(t, tb, c); !near(e.Expires, 40*sec) {
		t.Fatalf("ICMP expires %v", e.Expires)
	}
	gre := udp4("10.0.0.1", "10.0.0.2", 0, 0)
	gre.Proto = 47
	c = add(t, w, gre, 0)
	if e := read(t, tb, c); !near(e.Expires, 600*sec) {
		t.Fatalf("generic expires %v", e.Expires)
	}
}

func TestTCPThroughTable(t *testing.T) {
	tb := New(Config{Max: 16})
	w := tb.NewWorker()
	k := udp4("10.0.0.1", "10.0.0.2", 40000, 80)
	k.Proto = ProtoTCP
	r, _ := k.Reverse()
	syn := TCPSegment{Seq: 1000, Flags: TCPSyn, Window: 65535, HeaderLen: 20}
	var e Entry
	if st, res := w.Prepare(&k, &syn, 0, &e); st != StateNew || res != PacketAccept || e.TCP.State != TCPSynSent {
		t.Fatalf("SYN: %v %v %v", st, res, e.TCP.State)
	}
	c, _ := w.Confirm(&e, 0)
	if e := read(t, tb, c); !near(e.Expires, 120*sec) {
		t.Fatalf("SYN_SENT expires %d", e.Expires)
	}
	sa := TCPSegment{Seq: 5000, Ack: 1001, Flags: TCPSyn | TCPAck, Window: 65535, HeaderLen: 20}
	rc, _ := w.Lookup(&r, sec)
	if st, res := w.Packet(rc, &sa, sec); st != StateEstablished || res != PacketAccept {
		t.Fatal("SYN/ACK", st, res)
	}
	ack := TCPSegment{Seq: 1001, Ack: 5001, Flags: TCPAck, Window: 65535, HeaderLen: 20}
	w.Packet(c, &ack, 2*sec)
	got := read(t, tb, c)
	if got.TCP.State != TCPEstablished || got.Status&StatusAssured == 0 || !near(got.Expires, 2*sec+432000*sec) {
		t.Fatalf("after handshake: %v %v %d", got.TCP.State, got.Status, got.Expires)
	}
	// A bare ACK cannot open a connection when loose is off.
	tb2 := New(Config{Max: 4, TCP: &TCPConfig{MaxRetrans: 3}})
	if st, res := tb2.NewWorker().Prepare(&k, &ack, 0, &e); st != StateInvalid || res != PacketInvalid {
		t.Fatal("ACK opened a connection without loose", st, res)
	}
}

func TestMaxAndCounted(t *testing.T) {
	const n = 64
	tb := New(Config{Max: n})
	w := tb.NewWorker()
	var cs []Conn
	for i := range n {
		k := flowN(i)
		c := add(t, w, k, 0)
		// Make it assured: reply, then a packet after 2 s.
		r, _ := k.Reverse()
		rc, _ := w.Lookup(&r, 0)
		w.Packet(rc, nil, 0)
		w.Packet(c, nil, 3*sec)
		cs = append(cs, c)
	}
	if tb.Count() != n {
		t.Fatalf("count %d", tb.Count())
	}
	for i := n; i < n+10; i++ {
		k := flowN(i)
		var e Entry
		if _, res := w.Prepare(&k, nil, 3*sec, &e); res != PacketDrop {
			t.Fatalf("flow %d over the limit: %v", i, res)
		}
	}
	if w.Stats.Drop != 10 || w.Stats.EarlyDrop != 0 || tb.Count() != n {
		t.Fatalf("stats %+v count %d", w.Stats, tb.Count())
	}
	for _, c := range cs {
		read(t, tb, c)
	}
}

func TestEarlyDrop(t *testing.T) {
	// One bucket: early drop sees every entry.
	tb := New(Config{Max: 4, Buckets: 1})
	w := tb.NewWorker()
	var assured []Conn
	for i := range 3 {
		k := flowN(i)
		c := add(t, w, k, 0)
		r, _ := k.Reverse()
		rc, _ := w.Lookup(&r, 0)
		w.Packet(rc, nil, 0)
		w.Packet(c, nil, 3*sec)
		assured = append(assured, c)
	}
	un := add(t, w, flowN(3), 3*sec)
	k := flowN(4)
	var e Entry
	if _, res := w.Prepare(&k, nil, 3*sec, &e); res != PacketAccept {
		t.Fatal(res)
	}
	if w.Stats.EarlyDrop != 1 {
		t.Fatalf("early drops %d", w.Stats.EarlyDrop)
	}
	if tb.Read(un, &e) {
		t.Fatal("the unassured entry survived")
	}
	for _, c := range assured {
		read(t, tb, c)
	}
}

func TestSYNFloodKeepsAssured(t *testing.T) {
	const n = 256
	tb := New(Config{Max: n})
	w := tb.NewWorker()
	var cs []Conn
	for i := range n {
		k := flowN(i)
		c := add(t, w, k, 0)
		r, _ := k.Reverse()
		rc, _ := w.Lookup(&r, 0)
		w.Packet(rc, nil, 0)
		w.Packet(c, nil, 3*sec)
		cs = append(cs, c)
	}
	syn := TCPSegment{Seq: 1, Flags: TCPSyn, Window: 1024, HeaderLen: 20}
	for i := range 5000 {
		k := flowN(100000 + i)
		k.Proto = ProtoTCP
		var e Entry
		if _, res := w.Prepare(&k, &syn, 4*sec, &e); res == PacketAccept {
			if _, cr := w.Confirm(&e, 4*sec); cr == ConfirmInserted {
				t.Fatal("a SYN got in")
			}
		}
	}
	for _, c := range cs {
		read(t, tb, c)
	}
	if tb.Count() != n || w.Stats.Drop != 5000 {
		t.Fatalf("count %d stats %+v", tb.Count(), w.Stats)
	}
}

func TestConcurrentConfirmSameTuple(t *testing.T) {
	for _, proto := range []uint8{ProtoUDP, ProtoTCP} {
		for range 200 {
			tb := New(Config{Max: 16})
			k := udp4("10.0.0.1", "10.0.0.2", 1000, 80)
			k.Proto = proto
			syn := TCPSegment{Seq: 1, Flags: TCPSyn, Window: 1024, HeaderLen: 20}
			var wg sync.WaitGroup
			var res [2]ConfirmResult
			var conns [2]Conn
			ws := [2]*Worker{tb.NewWorker(), tb.NewWorker()}
			for i := range 2 {
				wg.Go(func() {
					var e Entry
					ws[i].Prepare(&k, &syn, 0, &e)
					conns[i], res[i] = ws[i].Confirm(&e, 0)
				})
			}
			wg.Wait()
			if tb.Count() != 1 {
				t.Fatalf("proto %d: %d entries", proto, tb.Count())
			}
			ins := 0
			for i := range 2 {
				switch res[i] {
				case ConfirmInserted:
					ins++
				case ConfirmClash:
					if proto != ProtoUDP {
						t.Fatal("TCP clash resolved")
					}
					if conns[i] != conns[1-i] {
						t.Fatal("clash resolved to another entry")
					}
				}
			}
			if ins != 1 {
				t.Fatalf("proto %d: %v", proto, res)
			}
			if proto == ProtoUDP && (res[0] == ConfirmDrop || res[1] == ConfirmDrop) {
				t.Fatal("UDP clash dropped")
			}
		}
	}
}

func TestStaleConn(t *testing.T) {
	tb := New(Config{Max: 1})
	w := tb.NewWorker()
	c := add(t, w, flowN(1), 0)
	if !tb.Delete(c) || tb.Delete(c) {
		t.Fatal("Delete")
	}
	c2 := add(t, w, flowN(2), 0)
	if c2.idx() != c.idx() {
		t.Fatal("record not reused")
	}
	var e Entry
	if tb.Read(c, &e) || tb.SetMark(c, 1) || tb.Delete(c) {
		t.Fatal("stale reference accepted")
	}
	if _, res := w.Packet(c, nil, 0); res != PacketStale {
		t.Fatal(res)
	}
	if !tb.SetMark(c2, 5) || read(t, tb, c2).Mark != 5 {
		t.Fatal("live reference refused")
	}
}

func TestExpireBounded(t *testing.T) {
	tb := New(Config{Max: 1000})
	w := tb.NewWorker()
	for i := range 1000 {
		add(t, w, flowN(i), 0)
	}
	if n := tb.Expire(10*sec, 1000); n != 0 {
		t.Fatalf("reaped %d live", n)
	}
	total := 0
	for range 10 {
		n := tb.Expire(31*sec, 100)
		if n > 100 {
			t.Fatalf("one slice reaped %d", n)
		}
		total += n
	}
	if total != 1000 || tb.Count() != 0 {
		t.Fatalf("reaped %d, count %d", total, tb.Count())
	}
}

func TestFlushWalk(t *testing.T) {
	tb := New(Config{Max: 100})
	w := tb.NewWorker()
	for i := range 50 {
		add(t, w, flowN(i), 0)
	}
	seen := map[Tuple]bool{}
	tb.Walk(0, func(e *Entry) bool { seen[e.Tuple[0]] = true; return true })
	if len(seen) != 50 || !seen[flowN(7)] {
		t.Fatalf("walk saw %d", len(seen))
	}
	n := 0
	tb.Walk(0, func(*Entry) bool { n++; return n < 3 })
	if n != 3 {
		t.Fatal("walk did not stop")
	}
	if m := tb.Flush(); m != 50 || tb.Count() != 0 {
		t.Fatalf("flushed %d", m)
	}
	k := flowN(7)
	if _, ok := w.Lookup(&k, 0); ok {
		t.Fatal("found after flush")
	}
}

func TestTCPRepeat(t *testing.T) {
	tb := New(Config{Max: 16})
	w := tb.NewWorker()
	k := udp4("10.0.0.1", "10.0.0.2", 40000, 80)
	k.Proto = ProtoTCP
	syn := TCPSegment{Seq: 1000, Flags: TCPSyn, Window: 65535, HeaderLen: 20}
	var e Entry
	w.Prepare(&k, &syn, 0, &e)
	c, _ := w.Confirm(&e, 0)
	rst := TCPSegment{Seq: 1001, Flags: TCPRst, HeaderLen: 20}
	w.Packet(c, &rst, sec)
	syn.Seq = 9000
	_, ok, st, res := w.Track(&k, Hint{}, &syn, 2*sec, &e)
	if ok || st != StateNew || res != PacketAccept {
		t.Fatalf("SYN after RST: %v %v %v (state %v)", ok, st, res, read(t, tb, c).TCP.State)
	}
}

func TestConcurrentRace(t *testing.T) {
	tb := New(Config{Max: 512})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := range 2 {
		w := tb.NewWorker()
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := flowN(g*100000 + i%2000)
				now := int64(i) * int64(time.Millisecond)
				_, ok, _, res := w.Track(&k, Hint{}, nil, now, new(Entry))
				if ok || res != PacketAccept {
					continue
				}
				var e Entry
				w.Prepare(&k, nil, now, &e)
				c, _ := w.Confirm(&e, now)
				if i%7 == 0 {
					tb.Delete(c)
				}
			}
		})
	}
	for range 2 {
		w := tb.NewWorker()
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := flowN(i % 2000)
				if c, ok := w.Lookup(&k, 0); ok {
					w.Packet(c, nil, 0)
					var e Entry
					tb.Read(c, &e)
				}
			}
		})
	}
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			tb.Expire(int64(i)*int64(time.Millisecond), 64)
			if i%50 == 0 {
				tb.Walk(0, func(*Entry) bool { return true })
			}
		}
	})
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	n := 0
	tb.Walk(-1<<62, func(*Entry) bool { n++; return true })
	if n > tb.Count() || tb.Count() > 512 {
		t.Fatalf("walk %d count %d", n, tb.Count())
	}
}

func TestZeroAllocs(t *testing.T) {
	tb := New(Config{Max: 1 << 12})
	w := tb.NewWorker()
	k := flowN(1)
	c := add(t, w, k, 0)
	if a := testing.AllocsPerRun(100, func() {
		c, _ = w.Lookup(&k, 0)
		w.Packet(c, nil, 0)
	}); a != 0 {
		t.Fatalf("Lookup+Packet: %v allocs", a)
	}
	i := 2
	var e Entry
	if a := testing.AllocsPerRun(100, func() {
		k := flowN(i)
		i++
		w.Lookup(&k, 0)
		w.Prepare(&k, nil, 0, &e)
		w.Confirm(&e, 0)
	}); a != 0 {
		t.Fatalf("Prepare+Confirm: %v allocs", a)
	}
}

// homeFlows returns n distinct UDP flows (flowN from i0 on) whose
// original tuple's home line in tb is line.
func homeFlows(tb *Table, line uint32, i0, n int) []Tuple {
	var ks []Tuple
	for i := i0; len(ks) < n; i++ {
		k := flowN(i)
		k.DstPort = uint16(i >> 16)
		kk := keyOf(&k)
		if tb.homeLine(tb.hash(&kk)) == line {
			ks = append(ks, k)
		}
	}
	return ks
}

// checkIndexEmpty fails unless every slot is empty and every overflow
// count and lock is 0.
func checkIndexEmpty(t *testing.T, tb *Table) {
	t.Helper()
	for i := range tb.index {
		if w := tb.index[i].Load(); w != 0 {
			t.Fatalf("index word %d (line %d) is %#x", i, i/lineWords, w)
		}
	}
}

func TestIndexOverflow(t *testing.T) {
	tb := New(Config{Max: 1000, Seed: [2]uint64{1, 2}})
	w := tb.NewWorker()
	// Four lines' worth of flows that all start at line 0: they fill it
	// and overflow into the lines after it.
	ks := homeFlows(tb, 0, 0, 4*lineSlots)
	var cs []Conn
	for _, k := range ks {
		cs = append(cs, add(t, w, k, 0))
	}
	if tb.line(0)[0].Load()>>overShift == 0 || tb.line(2)[0].Load()>>overShift == 0 {
		t.Fatal("no overflow counted")
	}
	for i, k := range ks {
		if c, ok := w.Lookup(&k, 0); !ok || c != cs[i] {
			t.Fatalf("flow %d not found past its home line", i)
		}
		r, _ := k.Reverse()
		if c, ok := w.Lookup(&r, 0); !ok || c.idx() != cs[i].idx() || c.Dir() != DirReply {
			t.Fatalf("flow %d's reply not found", i)
		}
	}
	// Delete them from the home line's end: the overflow counts go.
	for i, c := range cs {
		if !tb.Delete(c) {
			t.Fatalf("Delete %d", i)
		}
		for j := i + 1; j < len(ks); j++ {
			if _, ok := w.Lookup(&ks[j], 0); !ok {
				t.Fatalf("flow %d lost when %d was deleted", j, i)
			}
		}
	}
	checkIndexEmpty(t, tb)
	if tb.Count() != 0 {
		t.Fatalf("count %d", tb.Count())
	}
}

func TestChainTooLong(t *testing.T) {
	tb := New(Config{Max: 2000, Seed: [2]uint64{3, 4}})
	w := tb.NewWorker()
	ks := homeFlows(tb, 5, 0, (minChainLen+maxChainLen)*chainScale+2)
	n := 0
	for _, k := range ks {
		var e Entry
		w.Prepare(&k, nil, 0, &e)
		if _, res := w.Confirm(&e, 0); res != ConfirmInserted {
			if res != ConfirmDrop || w.Stats.ChainTooLong != 1 || w.Stats.InsertFailed != 1 {
				t.Fatalf("after %d: %v %+v", n, res, w.Stats)
			}
			break
		}
		n++
	}
	// The chain holds other nodes too (reply tuples that landed there).
	if n < minChainLen*chainScale/2 || n >= len(ks) {
		t.Fatalf("%d entries went in from one line", n)
	}
	if tb.Count() != n {
		t.Fatalf("count %d, inserted %d", tb.Count(), n)
	}
	tb.Flush()
	checkIndexEmpty(t, tb)
}

// TestReadersNeverMiss: lock-free lookups of entries that stay always
// find them while other entries sharing their lines come and go.
func TestReadersNeverMiss(t *testing.T) {
	tb := New(Config{Max: 96})
	w := tb.NewWorker()
	var stable []Tuple
	for i := range 24 {
		k := flowN(1000 + i)
		add(t, w, k, 0)
		stable = append(stable, k)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := range 2 {
		w := tb.NewWorker()
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := flowN(100000*(g+1) + i%64)
				var e Entry
				if _, res := w.Prepare(&k, nil, 0, &e); res != PacketAccept {
					continue
				}
				if c, res := w.Confirm(&e, 0); res == ConfirmInserted && i%3 != 0 {
					tb.Delete(c)
				}
				if i%64 == 63 {
					for j := range 64 {
						k := flowN(100000*(g+1) + j)
						if c, ok := w.Lookup(&k, 0); ok {
							tb.Delete(c)
						}
					}
				}
			}
		})
	}
	var missed atomic.Int64
	for range 2 {
		w := tb.NewWorker()
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				for _, k := range stable {
					if _, ok := w.Lookup(&k, 0); !ok {
						missed.Add(1)
					}
					r, _ := k.Reverse()
					if _, ok := w.Lookup(&r, 0); !ok {
						missed.Add(1)
					}
				}
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	if m := missed.Load(); m != 0 {
		t.Fatalf("%d lookups missed a live entry", m)
	}
	tb.Flush()
	checkIndexEmpty(t, tb)
}

// TestEarlyDropBuckets: early drop evicts only entries one of whose
// tuples is in the EarlyDropScan buckets from the new tuple's on.
func TestEarlyDropBuckets(t *testing.T) {
	const n = 256
	tb := New(Config{Max: n, Buckets: 64, Seed: [2]uint64{5, 6}})
	w := tb.NewWorker()
	for i := range n {
		add(t, w, flowN(i), 0)
	}
	before := map[Tuple]bool{}
	tb.Walk(0, func(e *Entry) bool { before[e.Tuple[0]] = true; return true })
	k := flowN(n)
	kk := keyOf(&k)
	b := tb.bucket(tb.hash(&kk))
	var e Entry
	if _, res := w.Prepare(&k, nil, 0, &e); res != PacketAccept || w.Stats.EarlyDrop == 0 {
		t.Fatalf("%v %+v", res, w.Stats)
	}
	after := map[Tuple]bool{}
	tb.Walk(0, func(e *Entry) bool { after[e.Tuple[0]] = true; return true })
	if len(before)-len(after) != int(w.Stats.EarlyDrop) {
		t.Fatalf("%d dropped, %d counted", len(before)-len(after), w.Stats.EarlyDrop)
	}
	for o := range before {
		if after[o] {
			continue
		}
		r, _ := o.Reverse()
		k0, k1 := keyOf(&o), keyOf(&r)
		in := func(bk uint32) bool { return (bk-b+64)%64 < uint32(tb.earlyScan) }
		if !in(tb.bucket(tb.hash(&k0))) && !in(tb.bucket(tb.hash(&k1))) {
			t.Fatalf("dropped %v, outside buckets %d+%d", o, b, tb.earlyScan)
		}
	}
}

// TestPacketSameTick: packets within one expiry tick change nothing but
// what they must: a reply in the same tick still sets SEEN_REPLY, and
// the original direction is established after it.
func TestPacketSameTick(t *testing.T) {
	tb := New(Config{Max: 16})
	w := tb.NewWorker()
	k := udp4("10.0.0.1", "10.0.0.2", 1000, 53)
	c := add(t, w, k, 0)
	seq := tb.slab[c.idx()].seq.Load()
	if st, res := w.Packet(c, nil, 0); st != StateNew || res != PacketAccept {
		t.Fatal(st, res)
	}
	if tb.slab[c.idx()].seq.Load() != seq {
		t.Fatal("a packet that changes nothing took the record lock")
	}
	r, _ := k.Reverse()
	rc, _ := w.Lookup(&r, 0)
	if st, res := w.Packet(rc, nil, 0); st != StateEstablished || res != PacketAccept {
		t.Fatal(st, res)
	}
	if e := read(t, tb, c); e.Status&StatusSeenReply == 0 || !near(e.Expires, 30*sec) {
		t.Fatalf("reply in the same tick: %+v", e)
	}
	if st, _ := w.Packet(c, nil, 0); st != StateEstablished {
		t.Fatal("original after the reply:", st)
	}
	// Deleted: the lock-free path refuses a stale reference too.
	tb.Delete(c)
	if _, res := w.Packet(c, nil, 0); res != PacketStale {
		t.Fatal(res)
	}
}

// TestConfigTCPAllOff: a TCP configuration with every switch off and no
// retransmissions allowed is taken as given, not as "unset".
func TestConfigTCPAllOff(t *testing.T) {
	tb := New(Config{Max: 4, TCP: &TCPConfig{}})
	w := tb.NewWorker()
	k := udp4("10.0.0.1", "10.0.0.2", 40000, 80)
	k.Proto = ProtoTCP
	ack := TCPSegment{Seq: 1000, Ack: 5, Flags: TCPAck, Window: 100, HeaderLen: 20}
	var e Entry
	if st, res := w.Prepare(&k, &ack, 0, &e); st != StateInvalid || res != PacketInvalid {
		t.Fatalf("a mid-stream ACK with tcp_loose off: %v %v, want invalid", st, res)
	}
}

// TestTranslatedIsReadsInverse: Translated gives, for each direction of
// translated entries of every kind (IPv4 SNAT and DNAT, ICMP and ICMPv6
// echo, IPv6 with a NAT66 reply tuple, zones), the other
// direction's tuple that Read returns, inverted; for an entry NAT does
// not translate, only the status.
func TestTranslatedIsReadsInverse(t *testing.T) {
	tb := New(Config{Max: 64})
	w := tb.NewWorker()
	mk := func(src, dst string, proto uint8, sp, dp uint16) Tuple {
		var k Tuple
		k.SetAddrs(netip.MustParseAddr(src), netip.MustParseAddr(dst))
		k.Proto, k.SrcPort, k.DstPort = proto, sp, dp
		return k
	}
	cases := []struct {
		name  string
		k     Tuple
		reply func(*Tuple)
		st    Status
	}{
		{"udp4 snat", mk("10.0.0.1", "192.0.2.1", ProtoUDP, 5000, 53), func(r *Tuple) { r.Dst = [16]byte{203, 0, 113, 1}; r.DstPort = 61000 }, StatusSrcNAT},
		{"udp4 dnat", mk("192.0.2.9", "203.0.113.1", ProtoUDP, 40000, 80), func(r *Tuple) { r.Src = [16]byte{10, 0, 0, 5}; r.SrcPort = 8080 }, StatusDstNAT},
		{"icmp4 snat", mk("10.0.0.1", "192.0.2.1", ProtoICMP, 77, 8<<8), func(r *Tuple) { r.Dst = [16]byte{203, 0, 113, 1}; r.SrcPort = 1234 }, StatusSrcNAT},
		{"udp6 nat66 zone", mk("2001:db8::1", "2001:db8:1::2", ProtoUDP, 1, 2), func(r *Tuple) {
			r.Dst = netip.MustParseAddr("2001:db8:ff::1").As16()
			r.DstPort = 1024
		}, StatusSrcNAT},
		{"icmp6 dnat", mk("2001:db8::7", "2001:db8:1::2", ProtoICMPv6, 3, 128<<8), func(r *Tuple) {
			r.Src = netip.MustParseAddr("2001:db8:2::9").As16()
		}, StatusDstNAT},
		{"udp6 port only", mk("2001:db8::3", "2001:db8:1::2", ProtoUDP, 7, 9), func(r *Tuple) { r.DstPort = 2000 }, StatusSrcNAT},
		{"udp4 untranslated", mk("10.0.0.2", "192.0.2.1", ProtoUDP, 5000, 53), nil, 0},
	}
	for i, tc := range cases {
		tc.k.Zone = uint16(i % 2)
		var e Entry
		if _, res := w.Prepare(&tc.k, nil, 0, &e); res != PacketAccept {
			t.Fatalf("%s: Prepare %v", tc.name, res)
		}
		if tc.reply != nil {
			tc.reply(&e.Tuple[1])
		}
		e.Status |= tc.st
		c, res := w.Confirm(&e, 0)
		if res != ConfirmInserted {
			t.Fatalf("%s: Confirm %v", tc.name, res)
		}
		want := read(t, tb, c)
		for _, dir := range []Dir{DirOriginal, DirReply} {
			cd := makeConn(c.idx(), c.gen(), dir)
			var got Tuple
			st, ok := tb.Translated(cd, StatusSrcNAT|StatusDstNAT, &got)
			if !ok || st != want.Status {
				t.Fatalf("%s dir %d: status %v %v, want %v", tc.name, dir, st, ok, want.Status)
			}
			if tc.st == 0 {
				if got != (Tuple{}) {
					t.Fatalf("%s: untranslated entry filled the tuple: %v", tc.name, got)
				}
				continue
			}
			if inv := want.Tuple[1-dir].Inverse(); got != inv {
				t.Fatalf("%s dir %d: Translated %v, want %v", tc.name, dir, got, inv)
			}
		}
		tb.Delete(c)
		if _, ok := tb.Translated(c, StatusSrcNAT, new(Tuple)); ok {
			t.Fatalf("%s: Translated of a deleted entry", tc.name)
		}
	}
}

// TestSameSourceUnderChurn: while two workers confirm and delete
// source-NATed connections from a few sources, SameSource only ever
// returns a live connection's reply tuple from the source asked about,
// newest first as far as the bucket remembers.
func TestSameSourceUnderChurn(t *testing.T) {
	tb := New(Config{Max: 256})
	var wg sync.WaitGroup
	var stop atomic.Bool
	src := func(i int) Tuple {
		return udp4("10.0.0."+strconv.Itoa(1+i%4), "192.0.2."+strconv.Itoa(1+i%200), 5000, 53)
	}
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wk := tb.NewWorker()
			var live []Conn
			for i := w; !stop.Load(); i += 2 {
				k := src(i)
				var e Entry
				if _, res := wk.Prepare(&k, nil, 0, &e); res != PacketAccept {
					continue
				}
				e.Tuple[1].Dst = [16]byte{203, 0, 113, 1}
				e.Tuple[1].DstPort = uint16(1024 + i%4) // the source's mapping
				e.Status |= StatusSrcNAT | StatusSrcNATDone
				if c, res := wk.Confirm(&e, 0); res == ConfirmInserted {
					live = append(live, c)
				}
				if len(live) > 32 {
					tb.Delete(live[0])
					live = live[1:]
				}
			}
		}()
	}
	deadline := time.Now().Add(200 * time.Millisecond)
	found := 0
	for time.Now().Before(deadline) {
		for s := range 4 {
			orig := src(s)
			var reply Tuple
			for n := 0; tb.SameSource(&orig, n, &reply); n++ {
				if reply.Dst != [16]byte{203, 0, 113, 1} || reply.DstPort != uint16(1024+s) || reply.Src[0] != 192 || reply.SrcPort != 53 {
					t.Fatalf("source %d: reply %v", s, reply)
				}
				found++
			}
		}
	}
	stop.Store(true)
	wg.Wait()
	if found == 0 {
		t.Fatal("SameSource found nothing")
	}
}
