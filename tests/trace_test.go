package tests

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/xdpfwd/xdpfwd/internal/control"
	"github.com/xdpfwd/xdpfwd/internal/topo"
)

// traceRuleset masquerades what leaves p2, drops UDP to port 9 in the
// forward chain and accepts new connections.
const traceRuleset = `table ip nat {
	chain post {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "p2" counter masquerade
	}
}
table inet filter {
	chain forward {
		type filter hook forward priority 0; policy accept;
		ct state invalid counter drop
		udp dport 9 counter drop
		ct state new counter accept
	}
}
`

// traceOnce runs `xdpfwd trace --count 1` with args and a filter in the
// background, sends frame(i) from h1 every 200 ms, i = 0, 1, ..., until
// the trace answers (it installs itself on the workers after it starts),
// and returns its output.
func traceOnce(t *testing.T, l *routerLab, frame func(i int) []byte, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, xdpfwdBinary(t), append([]string{"trace", "--count", "1", "--control", l.daemon.control}, args...)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for i := 0; ; i++ {
		l.probeFrom(t, 1, frame(i))
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("xdpfwd trace %v: %v\n%s%s", args, err, out.String(), errOut.String())
			}
			return out.String()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// traceLive runs `xdpfwd trace --count 1` with args against the daemon
// of control socket ctl, calls send once the trace is on the workers,
// and returns what the command printed on its standard output and error
// when it ends.
func traceLive(t *testing.T, ctl string, send func(), args ...string) (stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, xdpfwdBinary(t), append([]string{"trace", "--count", "1", "--control", ctl}, args...)...)
	var out bytes.Buffer
	errPipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line := make([]byte, 256)
	n, err := errPipe.Read(line)
	if err != nil || !strings.HasPrefix(string(line[:n]), "tracing on ") {
		t.Fatalf("trace did not start: %q %v", line[:n], err)
	}
	send()
	rest, _ := io.ReadAll(errPipe)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("xdpfwd trace %v: %v\n%s%s", args, err, out.String(), rest)
	}
	return out.String(), string(line[:n]) + string(rest)
}

// TestTrace: `xdpfwd trace` follows a UDP packet from h1 through the
// router with conntrack, a forward chain and masquerade: the port it
// came in on, the conntrack state and connection, the rule that accepted
// it (with its handle and text), the route, the masquerade's rewrite and
// rule, and the exit on p2; a packet a rule drops ends with the rule and
// the drop's reason. The text form says the same. The first packet to a
// next hop the router has not resolved yet is held while it resolves it:
// the trace shows the held record and the one that continues it, from
// the release to p2, both for one --count.
func TestTrace(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "trace.nft")
	if err := os.WriteFile(file, []byte(traceRuleset), 0o644); err != nil {
		t.Fatal(err)
	}
	l := newRouterLab(t, false, file)
	const h1, h2 = "10.1.0.2", "10.2.0.2"
	payload := gopacket.Payload("trace")
	// A new connection each time: the first packet of the traced one
	// meets the nat chain.
	udp := func(dport uint16) func(i int) []byte {
		return func(i int) []byte {
			return labBuild(t, 1, labIP4(h1, h2, layers.IPProtocolUDP), labUDP(uint16(40000+i), dport), payload)(l)
		}
	}
	udp7, udp9 := udp(7), udp(9)

	var rec control.TraceRecord
	if err := json.Unmarshal([]byte(firstLine(traceOnce(t, l, udp7, "--json", "udp", "port", "7"))), &rec); err != nil {
		t.Fatalf("trace --json: %v", err)
	}
	var sport int
	if _, err := fmt.Sscanf(rec.Packet[strings.Index(rec.Packet, "10.1.0.2."):], "10.1.0.2.%d > 10.2.0.2.7 UDP ttl 64", &sport); err != nil || rec.Port != "p1" || rec.Length != len(udp7(0)) {
		t.Fatalf("came in: %+v (%v)", rec, err)
	}
	step := func(stage string) control.TraceStep {
		t.Helper()
		for _, s := range rec.Steps {
			if s.Stage == stage {
				return s
			}
		}
		t.Fatalf("no step %q in %+v", stage, rec.Steps)
		return control.TraceStep{}
	}
	tuples := fmt.Sprintf("src=10.1.0.2 dst=10.2.0.2 sport=%d dport=7 src=10.2.0.2 dst=10.1.0.2 sport=7 dport=%d", sport, sport)
	if s := step("conntrack ip prerouting"); s.CtState != "new" || s.Note != "ct state new original, unconfirmed: "+tuples+" [UNREPLIED]" {
		t.Errorf("conntrack step: %+v", s)
	}
	if s := step("route"); s.Note != "out of p2" || !strings.HasSuffix(s.Rewrite, "ttl 63") {
		t.Errorf("route step: %+v", s)
	}
	if s := step("nft ip forward"); !strings.Contains(s.Note, "inet filter forward handle ") || !strings.Contains(s.Note, "rule ct state new counter") || !strings.HasSuffix(s.Note, "(verdict accept)") {
		t.Errorf("forward step: %+v", s)
	}
	if s := step("nat ip postrouting"); s.Rewrite != fmt.Sprintf("10.1.0.2.%d > 10.2.0.2.7 UDP ttl 63 → 10.2.0.1.%d > 10.2.0.2.7 UDP ttl 63", sport, sport) || !strings.Contains(s.Note, "ip nat post handle ") || !strings.Contains(s.Note, "masquerade (verdict accept)") {
		t.Errorf("masquerade step: %+v", s)
	}
	if s := step("conntrack confirm ip postrouting"); s.Note != "confirmed: the connection is in the table" {
		t.Errorf("confirm step: %+v", s)
	}
	if len(rec.Exits) != 1 || rec.Exits[0].Outcome != "sent" || rec.Exits[0].Port != "p2" {
		t.Errorf("exits %+v", rec.Exits)
	}

	// A packet the forward chain drops.
	rec = control.TraceRecord{}
	if err := json.Unmarshal([]byte(firstLine(traceOnce(t, l, udp9, "--json", "udp", "port", "9"))), &rec); err != nil {
		t.Fatalf("trace --json: %v", err)
	}
	if s := step("nft ip forward"); s.Action != "drop" || s.Reason != "nft ip forward: nft drop at ip forward" || !strings.Contains(s.Note, "rule udp dport 9 counter") || !strings.HasSuffix(s.Note, "(verdict drop)") {
		t.Errorf("forward step of the dropped packet: %+v", s)
	}
	if len(rec.Exits) != 1 || rec.Exits[0].Outcome != "dropped" || rec.Exits[0].Reason != "nft ip forward: nft drop at ip forward" || rec.Exits[0].Port != "p1" {
		t.Errorf("exits of the dropped packet %+v", rec.Exits)
	}

	// The text form.
	text := traceOnce(t, l, udp7, "--port", "p1", "udp", "port", "7")
	t.Logf("xdpfwd trace:\n%s", text)
	for _, want := range []string{"trace 1: ", " in p1 queue 0 ", " > 10.2.0.2.7 UDP ttl 64", "ip forward", "(verdict accept)", "rewrote 10.1.0.2.", "→ sent on p2"} {
		if !strings.Contains(text, want) {
			t.Errorf("trace text lacks %q:\n%s", want, text)
		}
	}

	// A packet to an address of h2 the router has no neighbour entry
	// for: held while ARP runs, then given back and sent.
	run(t, l.h2.Namespace, "ip", "addr", "add", "10.2.0.3/24", "dev", topo.HostIf)
	var atH2 []string
	held := labBuild(t, 1, labIP4(h1, "10.2.0.3", layers.IPProtocolUDP), labUDP(41000, 7), payload)(l)
	text, stderr := traceLive(t, l.daemon.control, func() { _, atH2 = l.probeFrom(t, 1, held) }, "udp", "and", "dst", "host", "10.2.0.3")
	t.Logf("xdpfwd trace of a held packet:\n%s%s", text, stderr)
	if len(atH2) == 0 {
		t.Errorf("h2 did not receive the held packet")
	}
	recs := strings.Split(strings.TrimSpace(text), "\n\n")
	if len(recs) != 2 {
		t.Fatalf("%d records, want the held one and its continuation:\n%s", len(recs), text)
	}
	for _, want := range []string{"trace 1: ", " in p1 queue 0 ", "10.1.0.2.41000 > 10.2.0.3.7 UDP ttl 64",
		"→ held by neighbour (waiting for the address of 10.2.0.3 on p2); a record continuing trace 1 follows when it is given back"} {
		if !strings.Contains(recs[0], want) {
			t.Errorf("held record lacks %q:\n%s", want, recs[0])
		}
	}
	for _, want := range []string{"trace 2: ", " continues trace 1, released after ", " held by neighbour (came in on p1, worker 0)", "neighbour", "to " + l.h2.HWAddr.String(), "→ sent on p2"} {
		if !strings.Contains(recs[1], want) {
			t.Errorf("continuation lacks %q:\n%s", want, recs[1])
		}
	}
	if strings.Contains(recs[0], "sent on") || strings.Contains(stderr, "still held") {
		t.Errorf("the held record says it was sent, or the trace ended with the packet held:\n%s%s", text, stderr)
	}

	// To an address no host has, the router holds the packet for its
	// neighbour's resolution's seconds: a trace whose timeout comes
	// first shows it held and says it ended with the packet held.
	lost := labBuild(t, 1, labIP4(h1, "10.2.0.9", layers.IPProtocolUDP), labUDP(41001, 7), payload)(l)
	text, stderr = traceLive(t, l.daemon.control, func() { l.probeFrom(t, 1, lost) }, "--timeout", "1s", "udp", "and", "dst", "host", "10.2.0.9")
	if !strings.Contains(text, "→ held by neighbour (waiting for the address of 10.2.0.9 on p2)") || strings.Contains(text, "trace 2: ") ||
		!strings.Contains(stderr, "1 traced packet(s) still held by a stage when the trace ended") {
		t.Errorf("a trace that ends with its packet held:\n%s%s", text, stderr)
	}
}

// firstLine returns s's first line.
func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// routerCounters returns the router's counters as `xdpfwd stats --json`
// prints them.
func routerCounters(t *testing.T, ctl string) control.RouterStats {
	t.Helper()
	var st control.Stats
	out := runCLI(t, 10*time.Second, "stats", "--json", "--control", ctl)
	if err := json.Unmarshal([]byte(out), &st); err != nil || st.Router == nil {
		t.Fatalf("xdpfwd stats --json: %v, router %v\n%s", err, st.Router, out)
	}
	return *st.Router
}

// ctStatsWorkers returns the worker lines `xdpfwd ct stats` prints.
func ctStatsWorkers(t *testing.T, ctl string) []string {
	t.Helper()
	var lines []string
	for _, line := range strings.Split(runCLI(t, 10*time.Second, "ct", "stats", "--control", ctl), "\n") {
		if strings.HasPrefix(line, "cpu=") {
			lines = append(lines, line)
		}
	}
	return lines
}

// TestTraceOffline: `xdpfwd trace --packet HEX --in p1` runs a frame
// through the daemon's own stages without sending it or changing any
// table, and shows the same walk the live path then takes with the same
// frame: the same stages, decisions, conntrack state and connection, rules,
// route, rewrites and exit port (the live one is sent and confirmed, the
// offline one would be). h2 receives nothing from the offline run, and
// the connection is not in the table after it. Neither it nor a frame
// the router would answer with an ICMP error changes a counter of the
// router's in `xdpfwd stats`, nor adds a worker (the offline pipeline's)
// to `xdpfwd ct stats`.
func TestTraceOffline(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "trace.nft")
	if err := os.WriteFile(file, []byte(traceRuleset), 0o644); err != nil {
		t.Fatal(err)
	}
	l := newRouterLab(t, false, file)
	ctl := l.daemon.control
	frame := labBuild(t, 1, labIP4("10.1.0.2", "10.2.0.2", layers.IPProtocolUDP), labUDP(45000, 7), gopacket.Payload("offline"))(l)

	ttl1 := labIP4("10.1.0.2", "10.2.0.2", layers.IPProtocolUDP)
	ttl1.TTL = 1
	expiring := labBuild(t, 1, ttl1, labUDP(45001, 7), gopacket.Payload("offline"))(l)

	drain(l.fd2)
	routerBefore, ctBefore := routerCounters(t, ctl), ctStatsWorkers(t, ctl)
	var offline, expired control.TraceRecord
	out := runCLI(t, 20*time.Second, "trace", "--packet", hex.EncodeToString(frame), "--in", "p1", "--json", "--control", ctl)
	if err := json.Unmarshal([]byte(firstLine(out)), &offline); err != nil {
		t.Fatalf("trace --packet: %v\n%s", err, out)
	}
	out = runCLI(t, 20*time.Second, "trace", "--packet", hex.EncodeToString(expiring), "--in", "p1", "--json", "--control", ctl)
	if err := json.Unmarshal([]byte(firstLine(out)), &expired); err != nil {
		t.Fatalf("trace --packet of a frame with TTL 1: %v\n%s", err, out)
	}
	if len(expired.Exits) == 0 || expired.Exits[0].Outcome != "dropped" || !strings.Contains(expired.Exits[0].Reason, "TTL") {
		t.Errorf("a frame with TTL 1, offline: exits %+v, want dropped for its TTL", expired.Exits)
	}
	routerAfter, ctAfter := routerCounters(t, ctl), ctStatsWorkers(t, ctl)
	if routerAfter.Forwarded != routerBefore.Forwarded || routerAfter.ICMPErrors != routerBefore.ICMPErrors ||
		routerAfter.ICMPLimited != routerBefore.ICMPLimited || routerAfter.Fragmented != routerBefore.Fragmented {
		t.Errorf("offline traces moved the router's counters:\nbefore %+v\nafter  %+v", routerBefore, routerAfter)
	}
	if len(ctAfter) != len(ctBefore) {
		t.Errorf("xdpfwd ct stats lists %d workers after offline traces, %d before:\n%s", len(ctAfter), len(ctBefore), strings.Join(ctAfter, "\n"))
	}
	if got := readIP(t, l.fd2); len(got) != 0 {
		t.Fatalf("h2 received %d packets from an offline trace", len(got))
	}
	if ct := runCLI(t, 10*time.Second, "ct", "list", "-p", "udp", "--sport", "45000", "--control", ctl); strings.Contains(ct, "sport=45000") {
		t.Fatalf("the offline trace left a connection:\n%s", ct)
	}

	// The same frame, live.
	stdout, stderr := traceLive(t, ctl, func() { l.probeFrom(t, 1, frame) }, "--json", "udp", "port", "45000")
	if !strings.HasPrefix(stderr, "tracing on every port: udp port 45000") {
		t.Fatalf("trace's stderr: %q", stderr)
	}
	var live control.TraceRecord
	if err := json.Unmarshal([]byte(firstLine(stdout)), &live); err != nil {
		t.Fatalf("trace --json: %v\n%s", err, stdout)
	}

	type step struct{ hook, stage, action, reason, egress, ct, rewrite, note string }
	steps := func(r control.TraceRecord) []step {
		var out []step
		for _, s := range r.Steps {
			note := strings.Replace(s.Note, "would be confirmed (a dry run changes no entry)", "confirmed: the connection is in the table", 1)
			out = append(out, step{s.Hook, s.Stage, s.Action, s.Reason, s.Egress, s.CtState, s.Rewrite, note})
		}
		return out
	}
	o, v := steps(offline), steps(live)
	if len(o) != len(v) {
		t.Fatalf("offline %d steps, live %d:\n%+v\n%+v", len(o), len(v), o, v)
	}
	for i := range o {
		if o[i] != v[i] {
			t.Errorf("step %d: offline %+v\nlive %+v", i, o[i], v[i])
		}
	}
	if len(offline.Exits) != 1 || offline.Exits[0].Outcome != "would be sent" || offline.Exits[0].Port != "p2" ||
		len(live.Exits) != 1 || live.Exits[0].Outcome != "sent" || live.Exits[0].Port != "p2" {
		t.Errorf("exits: offline %+v, live %+v", offline.Exits, live.Exits)
	}
	if !strings.Contains(offline.Packet, "10.1.0.2.45000 > 10.2.0.2.7 UDP ttl 64") {
		t.Errorf("offline packet %q", offline.Packet)
	}
}
