package nat

import (
	"net/netip"
	"testing"

	"github.com/xdpfwd/xdpfwd/conntrack"
)

// table is a fake connection table: the reply tuples taken.
type table map[conntrack.Tuple]bool

func (tb table) taken(t *conntrack.Tuple) bool { return tb[*t] }

// counting returns a taken function that counts its calls.
func counting(tb table, n *int) func(*conntrack.Tuple) bool {
	return func(t *conntrack.Tuple) bool { *n++; return tb[*t] }
}

// seq returns an rnd that yields vs in turn, then 0.
func seq(vs ...uint16) func() uint16 {
	return func() uint16 {
		if len(vs) == 0 {
			return 0
		}
		v := vs[0]
		vs = vs[1:]
		return v
	}
}

func tup(src string, sport uint16, dst string, dport uint16, proto uint8) conntrack.Tuple {
	var t conntrack.Tuple
	t.SetAddrs(netip.MustParseAddr(src), netip.MustParseAddr(dst))
	t.SrcPort, t.DstPort, t.Proto = sport, dport, proto
	return t
}

func single(a string) *Range {
	x := a16(a)
	if netip.MustParseAddr(a).Is4() {
		x = [16]byte{x[0], x[1], x[2], x[3]}
	}
	return &Range{Flags: MapIPs, MinAddr: x, MaxAddr: x}
}

func rangeOf(lo, hi string) *Range {
	r := single(lo)
	r.MaxAddr = single(hi).MaxAddr
	return r
}

// replyOf is the reply tuple a chosen original gives.
func replyOf(t conntrack.Tuple) conntrack.Tuple { return t.Inverse() }

func TestUniqueKeepsOriginalWhenFree(t *testing.T) {
	orig := tup("10.0.0.1", 40000, "192.0.2.1", 80, conntrack.ProtoTCP)
	// Source already in range (a null binding): kept as it is.
	got, ok := Unique(orig, single("10.0.0.1"), Src, table{}.taken, seq())
	if !ok || got != orig {
		t.Fatalf("in range: %v %v", got, ok)
	}
	// SNAT to another address: the port is kept when free.
	got, ok = Unique(orig, single("203.0.113.1"), Src, table{}.taken, seq())
	want := tup("203.0.113.1", 40000, "192.0.2.1", 80, conntrack.ProtoTCP)
	if !ok || got != want {
		t.Fatalf("snat: %v %v, want %v", got, ok, want)
	}
	// DNAT keeps the destination port without a port range.
	got, ok = Unique(orig, single("10.9.0.9"), Dst, table{}.taken, seq())
	want = tup("10.0.0.1", 40000, "10.9.0.9", 80, conntrack.ProtoTCP)
	if !ok || got != want {
		t.Fatalf("dnat: %v %v, want %v", got, ok, want)
	}
}

func TestUniqueTakenPortClass(t *testing.T) {
	for _, c := range []struct {
		sport  uint16
		lo, hi uint16
	}{{22, 1, 511}, {700, 600, 1023}, {40000, 1024, 65535}, {511, 1, 511}, {512, 600, 1023}, {1024, 1024, 65535}} {
		orig := tup("10.0.0.1", c.sport, "192.0.2.1", 80, conntrack.ProtoUDP)
		tb := table{replyOf(tup("203.0.113.1", c.sport, "192.0.2.1", 80, conntrack.ProtoUDP)): true}
		got, ok := Unique(orig, single("203.0.113.1"), Src, tb.taken, seq(12345))
		if !ok || got.SrcPort == c.sport || got.SrcPort < c.lo || got.SrcPort > c.hi {
			t.Errorf("port %d taken: got %d (%v), want another in %d-%d", c.sport, got.SrcPort, ok, c.lo, c.hi)
		}
		size := uint32(c.hi - c.lo + 1)
		if want := uint16(uint32(c.lo) + 12345%size); got.SrcPort != want {
			t.Errorf("port %d: %d, want lo + off %% size = %d", c.sport, got.SrcPort, want)
		}
		if got.Src != a16v4("203.0.113.1") {
			t.Errorf("address %v", got.SrcAddr())
		}
	}
}

func a16v4(s string) [16]byte {
	b := addr(s)
	return [16]byte{b[0], b[1], b[2], b[3]}
}

func TestUniquePortRange(t *testing.T) {
	orig := tup("10.0.0.1", 40000, "192.0.2.1", 80, conntrack.ProtoTCP)
	r := single("203.0.113.1")
	r.Flags |= ProtoSpecified
	r.MinProto, r.MaxProto = 5000, 5009
	got, ok := Unique(orig, r, Src, table{}.taken, seq(7))
	if !ok || got.SrcPort != 5007 {
		t.Fatalf("out of range port: %d %v, want 5000 + 7", got.SrcPort, ok)
	}
	// In range and free: kept.
	orig.SrcPort = 5003
	if got, ok := Unique(orig, r, Src, table{}.taken, seq(7)); !ok || got.SrcPort != 5003 {
		t.Fatalf("in range port: %d", got.SrcPort)
	}
	// A reversed range is swapped, as the kernel does.
	r.MinProto, r.MaxProto = 5009, 5000
	orig.SrcPort = 1
	if got, _ := Unique(orig, r, Src, table{}.taken, seq(3)); got.SrcPort != 5003 {
		t.Fatalf("reversed range: %d", got.SrcPort)
	}
	// DNAT to a port range: the offset starts at 0 without a random flag.
	d := single("10.9.0.9")
	d.Flags |= ProtoSpecified
	d.MinProto, d.MaxProto = 8080, 8089
	got, ok = Unique(orig, d, Dst, table{}.taken, func() uint16 { t.Fatal("rnd called"); return 0 })
	if !ok || got.DstPort != 8080 {
		t.Fatalf("dnat range: %d", got.DstPort)
	}
	// With a random flag it is random.
	d.Flags |= Random
	if got, _ := Unique(orig, d, Dst, table{}.taken, seq(4)); got.DstPort != 8084 {
		t.Fatalf("dnat random: %d", got.DstPort)
	}
	// ProtoOffset: the original port's distance to the base.
	o := single("10.9.0.9")
	o.Flags |= ProtoSpecified | ProtoOffset
	o.MinProto, o.MaxProto, o.BaseProto = 2000, 2999, 80
	orig.DstPort = 85
	if got, _ := Unique(orig, o, Dst, table{}.taken, seq()); got.DstPort != 2005 {
		t.Fatalf("offset: %d", got.DstPort)
	}
}

func TestUniqueRandomIgnoresOriginal(t *testing.T) {
	orig := tup("10.0.0.1", 40000, "192.0.2.1", 80, conntrack.ProtoTCP)
	for _, f := range []Flags{Random, ProtoRandomFully} {
		r := single("203.0.113.1")
		r.Flags |= f
		got, ok := Unique(orig, r, Src, table{}.taken, seq(100))
		if !ok || got.SrcPort != 1024+100 {
			t.Errorf("flags %#x: port %d, want 1124", f, got.SrcPort)
		}
		// Even a source already in range is moved.
		r = single("10.0.0.1")
		r.Flags |= f
		if got, _ := Unique(orig, r, Src, table{}.taken, seq(100)); got.SrcPort != 1124 {
			t.Errorf("flags %#x in range: port %d", f, got.SrcPort)
		}
	}
}

// TestUniqueAddressSpreadKernelVectors checks the address a range picks
// against the kernel's find_best_ips_proto compiled from C (see
// TestJhash2KernelVectors).
func TestUniqueAddressSpreadKernelVectors(t *testing.T) {
	for _, c := range []struct {
		src, dst, lo, hi string
		flags            Flags
		zone             uint16
		dnat             bool
		want             string
	}{
		{"10.0.0.1", "192.0.2.1", "203.0.113.1", "203.0.113.10", 1, 0, false, "203.0.113.7"},
		{"10.0.0.2", "192.0.2.1", "203.0.113.1", "203.0.113.10", 1, 0, false, "203.0.113.9"},
		{"10.0.0.1", "192.0.2.2", "203.0.113.1", "203.0.113.10", 1, 0, false, "203.0.113.3"},
		{"10.0.0.1", "192.0.2.2", "203.0.113.1", "203.0.113.10", 1, 7, false, "203.0.113.5"},
		{"10.0.0.1", "192.0.2.1", "203.0.113.1", "203.0.113.10", 9, 0, false, "203.0.113.3"},
		{"10.0.0.1", "192.0.2.99", "203.0.113.1", "203.0.113.10", 9, 0, false, "203.0.113.3"},
		{"10.0.0.1", "192.0.2.1", "10.1.0.0", "10.2.255.255", 1, 0, false, "10.2.91.94"},
		{"10.0.0.1", "192.0.2.1", "10.9.0.1", "10.9.0.4", 1, 0, true, "10.9.0.3"},
		{"10.0.0.5", "192.0.2.77", "10.9.0.1", "10.9.0.4", 1, 3, true, "10.9.0.3"},
		{"2001:db8::1", "2001:db8:1::1", "2001:db8:ff::1", "2001:db8:ff::10", 1, 0, false, "2001:db8:ff::5"},
		{"2001:db8::2", "2001:db8:1::1", "2001:db8:ff::1", "2001:db8:ff::10", 1, 0, false, "2001:db8:ff::3"},
		{"2001:db8::2", "2001:db8:1::1", "2001:db8:ff::1", "2001:db8:ff:1::10", 1, 0, false, "2001:db8:ff:0:25c4:5ae3:25c4:5ae3"},
		{"2001:db8::2", "2001:db8:1::1", "2001:db8:ff::1", "2001:db8:ff::10", 9, 0, false, "2001:db8:ff::1"},
		{"2001:db8::2", "2001:db8:1::1", "2001:db8:a::", "2001:db8:b::ffff", 1, 5, true, "2001:db8:a:1d8:d9d9:94e7:3e4d:4d30"},
	} {
		orig := tup(c.src, 40000, c.dst, 80, conntrack.ProtoTCP)
		orig.Zone = c.zone
		r := rangeOf(c.lo, c.hi)
		r.Flags = c.flags
		m := Src
		if c.dnat {
			m = Dst
		}
		got, ok := Unique(orig, r, m, table{}.taken, seq())
		a := got.SrcAddr()
		if c.dnat {
			a = got.DstAddr()
		}
		if !ok || a.String() != c.want {
			t.Errorf("%s -> %s in %s-%s flags %d zone %d dnat %v: %v, kernel %s", c.src, c.dst, c.lo, c.hi, c.flags, c.zone, c.dnat, a, c.want)
		}
	}
}

func TestUniquePersistentIgnoresDestination(t *testing.T) {
	r := rangeOf("203.0.113.1", "203.0.113.200")
	r.Flags |= Persistent
	var first netip.Addr
	for i := range 50 {
		orig := tup("10.0.0.1", 40000, netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}).String(), 80, conntrack.ProtoTCP)
		orig.Zone = uint16(i)
		got, _ := Unique(orig, r, Src, table{}.taken, seq())
		if i == 0 {
			first = got.SrcAddr()
		} else if got.SrcAddr() != first {
			t.Fatalf("destination %d: %v, first %v", i, got.SrcAddr(), first)
		}
	}
	// Without Persistent the destination moves it.
	r.Flags &^= Persistent
	seen := map[netip.Addr]bool{}
	for i := range 50 {
		orig := tup("10.0.0.1", 40000, netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}).String(), 80, conntrack.ProtoTCP)
		got, _ := Unique(orig, r, Src, table{}.taken, seq())
		seen[got.SrcAddr()] = true
	}
	if len(seen) < 10 {
		t.Fatalf("only %d addresses for 50 destinations", len(seen))
	}
}

func TestUniqueExhaustion(t *testing.T) {
	r := single("203.0.113.1")
	r.Flags |= ProtoSpecified
	r.MinProto, r.MaxProto = 5000, 5000
	tb := table{}
	a := tup("10.0.0.1", 40000, "192.0.2.1", 80, conntrack.ProtoTCP)
	got, ok := Unique(a, r, Src, tb.taken, seq())
	if !ok || got.SrcPort != 5000 {
		t.Fatalf("first flow: %v %v", got, ok)
	}
	tb[replyOf(got)] = true
	b := tup("10.0.0.2", 40000, "192.0.2.1", 80, conntrack.ProtoTCP)
	got, ok = Unique(b, r, Src, tb.taken, seq())
	if ok {
		t.Fatalf("second flow got %v from a pool of one", got)
	}
	// The kernel's choice all the same: the one port, to fail at confirm.
	if got.SrcPort != 5000 || got.Src != a16v4("203.0.113.1") {
		t.Fatalf("second flow's tuple %v", got)
	}
	// Another destination is another reply tuple: free.
	c := tup("10.0.0.2", 40000, "192.0.2.2", 80, conntrack.ProtoTCP)
	if _, ok := Unique(c, r, Src, tb.taken, seq()); !ok {
		t.Fatal("another destination refused")
	}
}

func TestUniqueAttemptBound(t *testing.T) {
	// Every port taken: the first round tries 128, then 64, 32, 16 and
	// 8 from new random offsets (rounds continue while at least 16 were
	// tried), 248 lookups in all, plus the one of step 3 (the source is
	// out of range, so step 1 looks up nothing).
	all := func(*conntrack.Tuple) bool { return true }
	var calls, rnds int
	taken := func(t *conntrack.Tuple) bool { calls++; return all(t) }
	rnd := func() uint16 { rnds++; return 0 }
	orig := tup("10.0.0.1", 40000, "192.0.2.1", 80, conntrack.ProtoTCP)
	_, ok := Unique(orig, single("203.0.113.1"), Src, taken, rnd)
	if ok {
		t.Fatal("found a port with all taken")
	}
	if calls != 1+128+64+32+16+8 || rnds != 5 {
		t.Fatalf("%d lookups, %d random offsets", calls, rnds)
	}
	// A range smaller than 128 is tried once, whole (the original port
	// is out of it, so step 3 looks up nothing).
	calls, rnds = 0, 0
	r := single("203.0.113.1")
	r.Flags |= ProtoSpecified
	r.MinProto, r.MaxProto = 1000, 1099
	Unique(orig, r, Src, taken, rnd)
	if calls != 100 || rnds != 1 {
		t.Fatalf("range of 100: %d lookups, %d random offsets", calls, rnds)
	}
	// The search stops at the first free one, counting from the offset.
	var n int
	tb := table{}
	for p := 1024 + 10; p < 1024+20; p++ {
		tb[replyOf(tup("203.0.113.1", uint16(p), "192.0.2.1", 80, conntrack.ProtoTCP))] = true
	}
	tb[replyOf(tup("203.0.113.1", 40000, "192.0.2.1", 80, conntrack.ProtoTCP))] = true
	got, ok := Unique(orig, single("203.0.113.1"), Src, counting(tb, &n), seq(10))
	if !ok || got.SrcPort != 1024+20 || n != 1+11 {
		t.Fatalf("got %d after %d lookups", got.SrcPort, n)
	}
}

func TestUniqueICMPIdentifiers(t *testing.T) {
	orig := tup("10.0.0.1", 77, "192.0.2.1", 8<<8, conntrack.ProtoICMP)
	tb := table{replyOf(tup("203.0.113.1", 77, "192.0.2.1", 8<<8, conntrack.ProtoICMP)): true}
	// Default: the whole 0-65535.
	got, ok := Unique(orig, single("203.0.113.1"), Src, tb.taken, seq(65535))
	if !ok || got.SrcPort != 65535 || got.DstPort != 8<<8 {
		t.Fatalf("icmp default: %v", got)
	}
	// A range.
	r := single("203.0.113.1")
	r.Flags |= ProtoSpecified
	r.MinProto, r.MaxProto = 100, 109
	if got, _ := Unique(orig, r, Src, tb.taken, seq(13)); got.SrcPort != 103 {
		t.Fatalf("icmp range: %d", got.SrcPort)
	}
	// DNAT changes the identifier too when it is taken (the id is the
	// same in both directions), from offset 0.
	tb = table{replyOf(tup("10.0.0.1", 77, "10.9.0.9", 8<<8, conntrack.ProtoICMP)): true}
	got, ok = Unique(orig, single("10.9.0.9"), Dst, tb.taken, seq())
	if !ok || got.SrcPort != 0 {
		t.Fatalf("icmp dnat: %v", got)
	}
	// ICMPv6.
	o6 := tup("2001:db8::1", 5, "2001:db8:1::1", 128<<8, conntrack.ProtoICMPv6)
	tb = table{replyOf(tup("2001:db8:ff::1", 5, "2001:db8:1::1", 128<<8, conntrack.ProtoICMPv6)): true}
	if got, ok := Unique(o6, single("2001:db8:ff::1"), Src, tb.taken, seq(9)); !ok || got.SrcPort != 9 {
		t.Fatalf("icmpv6: %v", got)
	}
}

func TestUniqueNoPortsAndDNATKeepsPort(t *testing.T) {
	// A protocol without ports: only the address.
	orig := tup("10.0.0.1", 0, "192.0.2.1", 0, 47)
	tb := table{replyOf(tup("203.0.113.1", 0, "192.0.2.1", 0, 47)): true}
	got, ok := Unique(orig, single("203.0.113.1"), Src, tb.taken, seq())
	if ok || got.Src != a16v4("203.0.113.1") {
		t.Fatalf("gre: %v %v", got, ok)
	}
	// DNAT without a port range never changes the port, taken or not.
	o := tup("10.0.0.1", 1000, "192.0.2.1", 80, conntrack.ProtoTCP)
	tb = table{replyOf(tup("10.0.0.1", 1000, "10.9.0.9", 80, conntrack.ProtoTCP)): true}
	got, ok = Unique(o, single("10.9.0.9"), Dst, tb.taken, seq())
	if ok || got.DstPort != 80 {
		t.Fatalf("dnat taken: %v %v", got, ok)
	}
	// No MapIPs: nothing changes.
	got, ok = Unique(o, &Range{}, Src, table{}.taken, seq())
	if !ok || got != o {
		t.Fatalf("null range: %v", got)
	}
}

func TestUniqueWithSameSource(t *testing.T) {
	// A connection from 10.0.0.1:40000 was mapped to 203.0.113.1:2222;
	// a new one from the same source to another destination reuses it.
	prev := tup("203.0.113.1", 2222, "192.0.2.1", 80, conntrack.ProtoTCP)
	src := func(o *conntrack.Tuple, n int, reply *conntrack.Tuple) bool {
		*reply = replyOf(prev)
		return n == 0
	}
	orig := tup("10.0.0.1", 40000, "192.0.2.7", 443, conntrack.ProtoTCP)
	got, ok := UniqueWithSource(orig, single("203.0.113.1"), Src, table{}.taken, seq(1), src)
	want := tup("203.0.113.1", 2222, "192.0.2.7", 443, conntrack.ProtoTCP)
	if !ok || got != want {
		t.Fatalf("same source: %v, want %v", got, want)
	}
	// Out of range (another pool): not reused.
	got, _ = UniqueWithSource(orig, single("203.0.113.9"), Src, table{}.taken, seq(1), src)
	if got.SrcPort != 40000 {
		t.Fatalf("other pool: %v", got)
	}
}

func TestMasqueradeAndNetmap(t *testing.T) {
	r := Range{Flags: ProtoSpecified | Random, MinProto: 1000, MaxProto: 2000, BaseProto: 9}
	m := Masquerade(&r, 4, a16("203.0.113.5"))
	if m.Flags != MapIPs|ProtoSpecified|Random || m.MinAddr != a16v4("203.0.113.5") || m.MaxAddr != m.MinAddr || m.MinProto != 1000 || m.MaxProto != 2000 || m.BaseProto != 0 {
		t.Fatalf("masquerade: %+v", m)
	}
	n := rangeOf("10.9.0.0", "10.9.255.255")
	n.Flags |= NetMap
	got := n.Netmap(4, a16("192.168.7.9"))
	if got.MinAddr != a16v4("10.9.7.9") || got.MaxAddr != got.MinAddr {
		t.Fatalf("netmap: %v", got.MinAddr)
	}
	n6 := rangeOf("2001:db8:aa::", "2001:db8:aa::ffff:ffff")
	if got := n6.Netmap(6, a16("fd00::1:2:3:4")); got.MinAddr != a16("2001:db8:aa::3:4") {
		t.Fatalf("netmap6: %v", netip.AddrFrom16(got.MinAddr))
	}
}

func TestUniqueZeroAlloc(t *testing.T) {
	tb := table{replyOf(tup("203.0.113.1", 40000, "192.0.2.1", 80, conntrack.ProtoTCP)): true}
	orig := tup("10.0.0.1", 40000, "192.0.2.1", 80, conntrack.ProtoTCP)
	r := rangeOf("203.0.113.1", "203.0.113.1")
	rnd := seq()
	taken := tb.taken
	if n := testing.AllocsPerRun(100, func() { Unique(orig, r, Src, taken, rnd) }); n != 0 {
		t.Fatalf("%v allocations", n)
	}
}
