package conntrack

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

// The golden lines were captured with the real `conntrack -L`
// (conntrack-tools 1.4.7, libnetfilter_conntrack 1.0.9, Linux 6.18) in a
// throwaway pair of network namespaces joined by a veth (10.1.0.1/24 and
// fd00::1/64 on one end, .2 and ::2 on the other), the first loading
//
//	table inet t {
//	  chain raw { type filter hook output priority -300; udp dport 7777 ct zone set 5; }
//	  chain c { type filter hook output priority 0; ct state established,related accept; udp dport 6666 ct mark set 42; ct state new accept; }
//	  chain i { type filter hook input priority 0; ct state established,related accept; accept; }
//	}
//
// and the traffic: ping and ping -6; a TCP connection to a listener on
// port 80 (v4 and v6), one closed by the server (TIME_WAIT), one reset
// after the handshake (CLOSE), SYNs the peer drops (SYN_SENT); UDP
// datagrams to ports 53 (answered), 5555, 6666 and 7777 (not); one
// datagram of IP protocol 253. Each line is `conntrack -L` run right
// after the traffic, copied as printed (the timeouts are whatever was
// left when it ran).

// golden is one captured line and the entry it shows.
type golden struct {
	line string
	e    Entry
}

func tuple(proto uint8, src, dst string, sp, dp uint16) Tuple {
	var t Tuple
	t.SetAddrs(netip.MustParseAddr(src), netip.MustParseAddr(dst))
	t.Proto, t.SrcPort, t.DstPort = proto, sp, dp
	return t
}

// entry makes an entry of proto from src:sp to dst:dp, not translated,
// with secs seconds and 0.6 s left at the test's now (0).
func entry(proto uint8, src, dst string, sp, dp uint16, st Status, secs int64) Entry {
	o := tuple(proto, src, dst, sp, dp)
	r, ok := o.Reverse()
	if !ok {
		panic("no reverse")
	}
	return Entry{Tuple: [2]Tuple{o, r}, Status: st | StatusConfirmed, Expires: secs*int64(time.Second) + 600*int64(time.Millisecond)}
}

func icmpEntry(proto uint8, src, dst string, typ uint8, id uint16, st Status, secs int64) Entry {
	return entry(proto, src, dst, id, uint16(typ)<<8, st, secs)
}

func tcpEntry(src, dst string, sp, dp uint16, state TCPConntrack, st Status, secs int64) Entry {
	e := entry(ProtoTCP, src, dst, sp, dp, st, secs)
	e.TCP.State = state
	return e
}

func withMark(e Entry, m uint32) Entry { e.Mark = m; return e }

func withZone(e Entry, z uint16) Entry {
	e.Tuple[0].Zone, e.Tuple[1].Zone = z, z
	return e
}

const replied = StatusSeenReply

// capture1 is the first capture, in the order conntrack listed it.
var capture1 = []golden{
	{"icmpv6   58 29 src=fd00::1 dst=fd00::2 type=128 code=0 id=1904 src=fd00::2 dst=fd00::1 type=129 code=0 id=1904 mark=0 use=1",
		icmpEntry(ProtoICMPv6, "fd00::1", "fd00::2", 128, 1904, replied, 29)},
	{"tcp      6 431999 ESTABLISHED src=10.1.0.1 dst=10.1.0.2 sport=46734 dport=80 src=10.1.0.2 dst=10.1.0.1 sport=80 dport=46734 [ASSURED] mark=0 use=1",
		tcpEntry("10.1.0.1", "10.1.0.2", 46734, 80, TCPEstablished, replied|StatusAssured, 431999)},
	{"udp      17 29 src=10.1.0.1 dst=10.1.0.2 sport=55352 dport=5555 [UNREPLIED] src=10.1.0.2 dst=10.1.0.1 sport=5555 dport=55352 mark=0 use=1",
		entry(ProtoUDP, "10.1.0.1", "10.1.0.2", 55352, 5555, 0, 29)},
	{"udp      17 29 src=10.1.0.1 dst=10.1.0.2 sport=47765 dport=53 src=10.1.0.2 dst=10.1.0.1 sport=53 dport=47765 mark=0 use=1",
		entry(ProtoUDP, "10.1.0.1", "10.1.0.2", 47765, 53, replied, 29)},
	{"udp      17 29 src=fd00::1 dst=fd00::2 sport=34734 dport=5555 [UNREPLIED] src=fd00::2 dst=fd00::1 sport=5555 dport=34734 mark=0 use=1",
		entry(ProtoUDP, "fd00::1", "fd00::2", 34734, 5555, 0, 29)},
	{"icmp     1 28 src=10.1.0.1 dst=10.1.0.2 type=8 code=0 id=1903 src=10.1.0.2 dst=10.1.0.1 type=0 code=0 id=1903 mark=0 use=1",
		icmpEntry(ProtoICMP, "10.1.0.1", "10.1.0.2", 8, 1903, replied, 28)},
}

// capture2 is the second capture (zones, marks, TCP states, a protocol
// conntrack has no name for), in conntrack's order.
var capture2 = []golden{
	{"udp      17 29 src=10.1.0.1 dst=10.1.0.2 sport=46097 dport=7777 [UNREPLIED] src=10.1.0.2 dst=10.1.0.1 sport=7777 dport=46097 mark=0 zone=5 use=1",
		withZone(entry(ProtoUDP, "10.1.0.1", "10.1.0.2", 46097, 7777, 0, 29), 5)},
	{"tcp      6 431999 ESTABLISHED src=fd00::1 dst=fd00::2 sport=34048 dport=80 src=fd00::2 dst=fd00::1 sport=80 dport=34048 [ASSURED] mark=0 use=1",
		tcpEntry("fd00::1", "fd00::2", 34048, 80, TCPEstablished, replied|StatusAssured, 431999)},
	{"tcp      6 119 TIME_WAIT src=10.1.0.1 dst=10.1.0.2 sport=42176 dport=80 src=10.1.0.2 dst=10.1.0.1 sport=80 dport=42176 [ASSURED] mark=0 use=1",
		tcpEntry("10.1.0.1", "10.1.0.2", 42176, 80, TCPTimeWait, replied|StatusAssured, 119)},
	{"unknown  253 599 src=10.1.0.1 dst=10.1.0.2 [UNREPLIED] src=10.1.0.2 dst=10.1.0.1 mark=0 use=1",
		entry(253, "10.1.0.1", "10.1.0.2", 0, 0, 0, 599)},
	{"udp      17 29 src=10.1.0.1 dst=10.1.0.2 sport=46097 dport=6666 [UNREPLIED] src=10.1.0.2 dst=10.1.0.1 sport=6666 dport=46097 mark=42 use=1",
		withMark(entry(ProtoUDP, "10.1.0.1", "10.1.0.2", 46097, 6666, 0, 29), 42)},
	{"tcp      6 9 CLOSE src=10.1.0.1 dst=10.1.0.2 sport=42180 dport=80 src=10.1.0.2 dst=10.1.0.1 sport=80 dport=42180 [ASSURED] mark=0 use=1",
		tcpEntry("10.1.0.1", "10.1.0.2", 42180, 80, TCPClose, replied|StatusAssured, 9)},
}

// capture3 are single lines of other captures: SYNs the peer drops, and
// the v6 connection of capture2 once the server closed it.
var capture3 = []golden{
	{"tcp      6 119 SYN_SENT src=10.1.0.1 dst=10.1.0.2 sport=55382 dport=99 [UNREPLIED] src=10.1.0.2 dst=10.1.0.1 sport=99 dport=55382 mark=0 use=1",
		tcpEntry("10.1.0.1", "10.1.0.2", 55382, 99, TCPSynSent, 0, 119)},
	{"tcp      6 59 CLOSE_WAIT src=fd00::1 dst=fd00::2 sport=34048 dport=80 src=fd00::2 dst=fd00::1 sport=80 dport=34048 [ASSURED] mark=0 use=1",
		tcpEntry("fd00::1", "fd00::2", 34048, 80, TCPCloseWait, replied|StatusAssured, 59)},
}

func TestFormatGolden(t *testing.T) {
	for _, g := range slices.Concat(capture1, capture2, capture3) {
		if got := g.e.Format(0); got != g.line {
			t.Errorf("Format:\n got %q\nwant %q", got, g.line)
		}
	}
}

// The seconds left are truncated, as the kernel's nf_ct_expires / HZ,
// and never negative.
func TestRemaining(t *testing.T) {
	const s = int64(time.Second)
	for _, tc := range []struct {
		left int64
		want int64
	}{{30 * s, 30}, {30*s - 1, 29}, {s - 1, 0}, {0, 0}, {-5 * s, 0}, {432000*s - 1, 431999}} {
		e := Entry{Expires: 1000*s + tc.left}
		if got := e.Remaining(1000 * s); got != tc.want {
			t.Errorf("%d ns left: %d s, want %d", tc.left, got, tc.want)
		}
	}
}

// Offload flags take [ASSURED]'s place, as in the kernel's listing; the
// names conntrack knows.
func TestFormatFlagsAndNames(t *testing.T) {
	e := entry(ProtoUDP, "10.0.0.1", "10.0.0.2", 1, 2, replied|StatusAssured|StatusOffload, 10)
	if got := e.Format(0); !strings.Contains(got, " [OFFLOAD] mark=") || strings.Contains(got, "ASSURED") {
		t.Errorf("offload: %q", got)
	}
	e.Status |= StatusHWOffload
	if got := e.Format(0); !strings.Contains(got, " [HW_OFFLOAD] mark=") {
		t.Errorf("hw offload: %q", got)
	}
	for p, want := range map[uint8]string{1: "icmp", 6: "tcp", 17: "udp", 33: "dccp", 47: "gre", 58: "icmpv6", 132: "sctp", 136: "udplite", 0: "unknown", 4: "unknown"} {
		if got := ProtoName(p); got != want {
			t.Errorf("ProtoName(%d) = %q, want %q", p, got, want)
		}
	}
	sctp := entry(protoSCTP, "10.0.0.1", "10.0.0.2", 5000, 6000, 0, 10)
	if got, want := sctp.Format(0), "sctp     132 10 src=10.0.0.1 dst=10.0.0.2 sport=5000 dport=6000 [UNREPLIED] src=10.0.0.2 dst=10.0.0.1 sport=6000 dport=5000 mark=0 use=1"; got != want {
		t.Errorf("sctp: %q, want %q", got, want)
	}
}

// The filters select what the same options of the real conntrack -L
// selected from the same captures (the counts are those conntrack
// printed).
func TestFilterAsConntrack(t *testing.T) {
	for _, tc := range []struct {
		capture []golden
		args    string
		want    []int // indices into capture
	}{
		{capture1, "", []int{0, 1, 2, 3, 4, 5}},
		{capture1, "-p udp", []int{2, 3, 4}},
		{capture1, "-p 17 --dport 53", []int{3}},
		{capture1, "-s 10.1.0.2", nil},
		{capture1, "-d 10.1.0.2", []int{1, 2, 3, 5}},
		{capture1, "--reply-src 10.1.0.2", []int{1, 2, 3, 5}},
		{capture1, "-f ipv6", []int{0, 4}},
		{capture2, "-m 42", []int{4}},
		{capture2, "-w 5", []int{0}},
		{capture2, "-p 253", []int{3}},
		{capture2, "-s 10.1.0.0/24", []int{0, 2, 3, 4, 5}},
		{capture2, "-f ipv6 -p tcp", []int{1}},
		// Beyond the captures' commands.
		{capture1, "--proto=icmp --icmp-type 8", []int{5}},
		{capture1, "-p icmpv6 --icmp-id 1904", []int{0}},
		{capture1, "-p udp --sport 47765 --reply-port-src 53", []int{3}},
		{capture1, "-q 10.1.0.1 -r 10.1.0.2 -p tcp", []int{1}},
		{capture2, "-p tcp --state time_wait", []int{2}},
		{capture2, "-m 0x2a/0xff", []int{4}},
		{capture2, "-m 0/0xc0", []int{0, 1, 2, 3, 4, 5}},
		{capture2, "-m 0/0xf0", []int{0, 1, 2, 3, 5}},
		{capture2, "-w 0 -f ipv4", []int{2, 3, 4, 5}},
		{capture2, "-d fd00::/8", []int{1}},
	} {
		f, err := ParseFilter(strings.Fields(tc.args))
		if err != nil {
			t.Errorf("%q: %v", tc.args, err)
			continue
		}
		var got []int
		for i, g := range tc.capture {
			if f.Match(&g.e) {
				got = append(got, i)
			}
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%q matches %v, want %v", tc.args, got, tc.want)
		}
	}
}

func TestFilterErrors(t *testing.T) {
	for _, tc := range []struct{ args, want string }{
		{"-f ipv4 -s fd00::1", "mismatched address family"},
		{"-s 10.0.0.1 -d fd00::1", "mismatched address family"},
		{"-p foo", `"foo" is not a protocol`},
		{"--sport 80", "port options need -p"},
		{"-p icmp --dport 1", "port options need -p"},
		{"-p udp --icmp-type 8", "need -p icmp or icmpv6"},
		{"--state ESTABLISHED", "--state needs -p tcp"},
		{"-p tcp --state FOO", "not a TCP state"},
		{"-p udp --sport 70000", "want a number 0 to 65535"},
		{"-p icmp --icmp-type 256", "want a number 0 to 255"},
		{"-m x", "want MARK or MARK/MASK"},
		{"-w", "-w needs a value"},
		{"-f inet", "want ipv4 or ipv6"},
		{"-s 10.0.0.300", "not an IPv4 or IPv6 address"},
		{"-x 1", "unknown option"},
	} {
		_, err := ParseFilter(strings.Fields(tc.args))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.args, err, tc.want)
		}
	}
	var zero Filter
	for _, g := range capture2 {
		if !zero.Match(&g.e) {
			t.Errorf("the zero Filter refuses %q", g.line)
		}
	}
}

// Page goes through the table a bounded slice at a time and sees what
// Walk sees.
func TestPage(t *testing.T) {
	tb := New(Config{Max: 64})
	w := tb.NewWorker()
	now := int64(time.Hour)
	var conns []Conn
	for i := range 40 {
		conns = append(conns, add(t, w, flowN(i), now))
	}
	for i := 0; i < len(conns); i += 3 {
		tb.Delete(conns[i])
	}
	var walked, paged []Tuple
	tb.Walk(now, func(e *Entry) bool { walked = append(walked, e.Tuple[0]); return true })
	calls := 0
	for cur := uint32(0); ; {
		calls++
		cur = tb.Page(now, cur, 7, func(e *Entry) bool { paged = append(paged, e.Tuple[0]); return true })
		if cur == 0 {
			break
		}
	}
	if !slices.Equal(walked, paged) || len(paged) != 40-14 {
		t.Errorf("paged %d entries, walked %d", len(paged), len(walked))
	}
	if calls != 6 {
		t.Errorf("%d calls of 7 records for 40 records", calls)
	}
	// fn stops a page early; the next one goes on after it.
	var one []Tuple
	next := tb.Page(now, 0, 100, func(e *Entry) bool { one = append(one, e.Tuple[0]); return false })
	if len(one) != 1 || one[0] != walked[0] || next == 0 {
		t.Errorf("stopped page: %v, next %d", one, next)
	}
	tb.Page(now, next, 100, func(e *Entry) bool { one = append(one, e.Tuple[0]); return true })
	if !slices.Equal(one, walked) {
		t.Errorf("resumed page: %d entries, want %d", len(one), len(walked))
	}
	// Expired entries are not listed.
	if n := tb.Page(now+int64(time.Hour), 0, 100, func(*Entry) bool { t.Error("an expired entry listed"); return false }); n != 0 {
		t.Errorf("next %d after the whole slab", n)
	}
}
