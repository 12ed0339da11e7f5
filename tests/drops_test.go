package tests

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xdpfwd/xdpfwd/internal/control"
	"github.com/xdpfwd/xdpfwd/internal/topo"
)

// dropsOutput is what `xdpfwd drops --json` prints.
type dropsOutput struct {
	IntervalSeconds float64 `json:"interval_seconds"`
	Total           uint64  `json:"total"`
	TotalRate       float64 `json:"total_rate_per_second"`
	Drops           []struct {
		Port   string  `json:"port"`
		Stage  string  `json:"stage"`
		Reason string  `json:"reason"`
		Count  uint64  `json:"count"`
		Rate   float64 `json:"rate_per_second"`
	} `json:"drops"`
}

// find returns the count and rate of the row port/stage/reason, 0 if the
// table has no such row.
func (o dropsOutput) find(port, stage, reason string) (count uint64, rate float64) {
	for _, r := range o.Drops {
		if r.Port == port && r.Stage == stage && r.Reason == reason {
			return r.Count, r.Rate
		}
	}
	return 0, 0
}

// truncatedVLAN is a frame that announces an 802.1Q tag and ends there:
// the XDP program hands it to xdpfwd (it holds an Ethernet header), whose
// parser drops it as "malformed frame".
func truncatedVLAN(src byte) []byte {
	return []byte{0x02, 0x5e, 0, 0, 0, 0x99, 0x02, 0x5e, 0, 0, 0, src, 0x81, 0x00}
}

// xdpfwd drops shows the frames the fast path dropped, on the port they
// came in on, under the stage and reason that dropped them, with rates
// that add up to the count, in JSON, as a table, and live (--watch)
// until SIGINT; the metrics agree.
func TestDropsCLI(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	s := star(t, topo.VethOptions{}, topo.VethOptions{})
	const addr = "127.0.0.1:9464" // the switch namespace is the test's own
	d := runDaemon(t, s.Switch, bridgeConfig(ports(s)...)+"options:\n  metrics: "+addr+"\n")
	h1, port := s.Hosts[0], s.Hosts[0].Port
	sock := openPktSock(t, h1.Namespace, topo.HostIf)

	// A live JSON watch: one object a line, every 300ms.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	watch := exec.CommandContext(ctx, xdpfwdBinary(t), "drops", "--watch", "--json", "--interval", "300ms", "--control", d.control)
	stdout, err := watch.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var watchErr syncBuffer
	watch.Stderr = &watchErr
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = watch.Process.Kill(); _ = watch.Wait() })
	lines := make(chan dropsOutput)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var o dropsOutput
			if err := json.Unmarshal(sc.Bytes(), &o); err != nil {
				t.Errorf("xdpfwd drops --watch --json printed %q: %v", sc.Text(), err)
				return
			}
			lines <- o
		}
	}()
	next := func() dropsOutput {
		t.Helper()
		select {
		case o, ok := <-lines:
			if !ok {
				t.Fatalf("xdpfwd drops --watch ended early: %s", watchErr.String())
			}
			return o
		case <-time.After(10 * time.Second):
			t.Fatalf("xdpfwd drops --watch printed nothing for 10s: %s", watchErr.String())
		}
		return dropsOutput{}
	}
	first := next()
	base, _ := first.find(port, "parse", "malformed frame")
	if base != 0 {
		t.Fatalf("%d malformed frames before the test sent any", base)
	}

	const n = 37
	for range n {
		sock.send(t, truncatedVLAN(1))
	}
	// The rates, times their intervals, add up to the count.
	var integral float64
	var count uint64
	for settled := 0; settled < 2; {
		o := next()
		c, rate := o.find(port, "parse", "malformed frame")
		integral += rate * o.IntervalSeconds
		if c == count && c > 0 {
			settled++
		}
		count = c
		if o.Total < c {
			t.Errorf("total %d below the malformed frames alone (%d)", o.Total, c)
		}
	}
	if count != n {
		t.Errorf("xdpfwd drops --watch: %d malformed frames on %s, want %d", count, port, n)
	}
	if math.Abs(integral-n) > 0.01 {
		t.Errorf("xdpfwd drops --watch: rates × intervals add up to %v, want %d", integral, n)
	}
	// SIGINT ends the watch, successfully.
	if err := watch.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	for range lines {
	}
	if err := watch.Wait(); err != nil {
		t.Errorf("xdpfwd drops --watch after SIGINT: %v, want exit 0: %s", err, watchErr.String())
	}

	// One table: totals and rates (none now) over the interval.
	var o dropsOutput
	out := runCLI(t, 30*time.Second, "drops", "--json", "--interval", "200ms", "--control", d.control)
	if err := json.Unmarshal([]byte(out), &o); err != nil {
		t.Fatalf("xdpfwd drops --json: %v\n%s", err, out)
	}
	if c, rate := o.find(port, "parse", "malformed frame"); c != n || rate != 0 {
		t.Errorf("xdpfwd drops --json: %s/parse/malformed frame: %d at %v/s, want %d at 0/s:\n%s", port, c, rate, n, out)
	}
	if o.IntervalSeconds < 0.2 || o.Total < n {
		t.Errorf("xdpfwd drops --json: interval %vs, total %d:\n%s", o.IntervalSeconds, o.Total, out)
	}
	text := runCLI(t, 30*time.Second, "drops", "--interval", "200ms", "--control", d.control)
	if !strings.Contains(text, "PORT") || !containsFields(text, port, "parse", "malformed", "frame", strconv.Itoa(n)) {
		t.Errorf("xdpfwd drops prints no row %s parse malformed frame %d:\n%s", port, n, text)
	}

	// A text watch on a pipe: plain successive tables, no escapes.
	wctx, wcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer wcancel()
	var textOut syncBuffer
	tw := exec.CommandContext(wctx, xdpfwdBinary(t), "drops", "--watch", "--interval", "100ms", "--control", d.control)
	tw.Stdout, tw.Stderr = &textOut, &textOut
	if err := tw.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); strings.Count(textOut.String(), "PORT") < 3 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	_ = tw.Process.Signal(syscall.SIGINT)
	if err := tw.Wait(); err != nil {
		t.Errorf("xdpfwd drops --watch after SIGINT: %v\n%s", err, textOut.String())
	}
	if got := textOut.String(); strings.Count(got, "PORT") < 3 || strings.Contains(got, "\x1b[") || !containsFields(got, port, "parse", "malformed", "frame", strconv.Itoa(n)) {
		t.Errorf("xdpfwd drops --watch to a pipe: want 3 or more plain tables with the malformed frames:\n%q", got)
	}

	// The metrics count the same drops under the same stage.
	want := fmt.Sprintf(`xdpfwd_drop_count_total{port=%q,reason="malformed frame",stage="parse"} %d`, port, n)
	if body := scrape(t, s.Switch, addr); !strings.Contains(body, want+"\n") {
		t.Errorf("metrics lack %q:\n%s", want, body)
	}
	if st := d.stats(); portOf(t, st, port).DropStages["malformed frame"] != "parse" {
		t.Errorf("xdpfwd stats --json: drop_stages of %s: %v, want malformed frame → parse", port, portOf(t, st, port).DropStages)
	}
}

// containsFields reports whether a line of text has fields as consecutive
// whitespace-separated fields.
func containsFields(text string, fields ...string) bool {
	want := " " + strings.Join(fields, " ") + " "
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(" "+strings.Join(strings.Fields(l), " ")+" ", want) {
			return true
		}
	}
	return false
}

// The latency histogram of each port counts every frame xdpfwd put on
// its TX ring: `xdpfwd stats --json` and the metrics show as many as the
// port transmitted, in buckets that add up, with quantiles in order.
func TestLatencyStatsAndMetrics(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	s := star(t, topo.VethOptions{}, topo.VethOptions{})
	for _, h := range s.Hosts { // quiet hosts: no router solicitations while counting
		run(t, h.Namespace, "sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1")
	}
	const addr = "127.0.0.1:9464" // the switch namespace is the test's own
	d := runDaemon(t, s.Switch, bridgeConfig(ports(s)...)+"options:\n  metrics: "+addr+"\n")
	const datagrams = 300
	ping(t, s.Hosts[0], s.Hosts[1].IP)
	udpIntact(t, s.Hosts[0], s.Hosts[1], datagrams, 9)

	// Frames still on a TX ring are measured but not yet transmitted:
	// wait until every one has completed.
	var st *control.Stats
	var p1, p2 control.PortStats
	for deadline := time.Now().Add(5 * time.Second); ; {
		st = d.stats()
		p1, p2 = portOf(t, st, s.Hosts[0].Port), portOf(t, st, s.Hosts[1].Port)
		if p1.Latency.Packets == p1.TxPackets && p2.Latency.Packets == p2.TxPackets || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, p := range []control.PortStats{p1, p2} {
		l := p.Latency
		if l.Packets != p.TxPackets {
			t.Errorf("%s: latency counts %d frames, the port transmitted %d", p.Name, l.Packets, p.TxPackets)
		}
		var sum uint64
		for _, c := range l.Counts {
			sum += c
		}
		if sum != l.Packets || len(l.Counts) != len(l.BoundsNanoseconds)+1 {
			t.Errorf("%s: %d buckets (%d bounds) holding %d frames, want %d", p.Name, len(l.Counts), len(l.BoundsNanoseconds), sum, l.Packets)
		}
		if l.Packets > 0 && !(l.P50Nanoseconds <= l.P99Nanoseconds && l.P99Nanoseconds <= l.MaxNanoseconds && l.MaxNanoseconds > 0 && l.SumNanoseconds >= l.MaxNanoseconds) {
			t.Errorf("%s: p50 %dns, p99 %dns, max %dns, sum %dns: out of order", p.Name, l.P50Nanoseconds, l.P99Nanoseconds, l.MaxNanoseconds, l.SumNanoseconds)
		}
	}
	// p2 sent h2 every datagram and echo request; p1 the replies.
	if p2.Latency.Packets < datagrams+3 || p1.Latency.Packets < 3 {
		t.Errorf("latency counts %d frames on %s and %d on %s, want at least %d and 3", p2.Latency.Packets, p2.Name, p1.Latency.Packets, p1.Name, datagrams+3)
	}

	// The metrics: a histogram per port with the same count, cumulative
	// buckets ending in +Inf at the count.
	body := scrape(t, s.Switch, addr)
	after := d.stats()
	for _, p := range []control.PortStats{p1, p2} {
		count := metricValue(t, body, fmt.Sprintf(`xdpfwd_port_latency_seconds_count{port=%q}`, p.Name))
		if now := portOf(t, after, p.Name).Latency.Packets; count < float64(p.Latency.Packets) || count > float64(now) {
			t.Errorf("metrics: %s latency count %v, stats %d before and %d after", p.Name, count, p.Latency.Packets, now)
		}
		if inf := metricValue(t, body, fmt.Sprintf(`xdpfwd_port_latency_seconds_bucket{port=%q,le="+Inf"}`, p.Name)); inf != count {
			t.Errorf("metrics: %s +Inf bucket %v, count %v", p.Name, inf, count)
		}
		// The smallest bound, 256ns, and a millisecond-scale one.
		for _, le := range []string{"2.56e-07", "0.001048576"} {
			metricValue(t, body, fmt.Sprintf(`xdpfwd_port_latency_seconds_bucket{port=%q,le=%q}`, p.Name, le))
		}
	}
	out := runCLI(t, 30*time.Second, "stats", "--control", d.control)
	if !strings.Contains(out, "latency, RX ring to TX ring, by egress port:") || !regexp.MustCompile(`(?m)^  `+p2.Name+`: \d+ frames, mean \S+, p50 \S+, p99 \S+, max \S+$`).MatchString(out) {
		t.Errorf("xdpfwd stats shows no latency for %s:\n%s", p2.Name, out)
	}
}

// metricValue returns the value of the series named exactly series
// (name and labels) in a scrape body, failing t if it is missing.
func metricValue(t *testing.T, body, series string) float64 {
	t.Helper()
	for _, l := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metrics: %s: %v", l, err)
			}
			return f
		}
	}
	t.Fatalf("metrics lack %s:\n%s", series, body)
	return 0
}
