package tests

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xdpfwd/xdpfwd/internal/control"
)

// ctRuleset turns connection tracking on: a rule matches ct state.
const ctRuleset = `table inet filter {
	chain forward {
		type filter hook forward priority 0; policy accept;
		ct state established,related accept
	}
}
`

// ctTraffic sends, from h1 to h2 through the lab's router, one UDP
// datagram to port 5353 (nothing listens: h2 answers port unreachable,
// which is related, so the flow stays UNREPLIED) and one ping.
func ctTraffic(t *testing.T, l *routerLab) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, err := l.h1.Command(ctx, "bash", "-c", "echo hello >/dev/udp/10.2.0.2/5353").CombinedOutput(); err != nil {
		t.Fatalf("udp from h1: %v\n%s", err, out)
	}
	if out, err := l.h1.Command(ctx, "ping", "-n", "-c", "1", "-W", "1", "10.2.0.2").CombinedOutput(); err != nil {
		t.Fatalf("ping from h1: %v\n%s", err, out)
	}
}

// ctNormalize masks what differs from run to run in a conntrack -L line:
// the UDP source port, the ping identifier, and the seconds left (29 or
// 30 right after the packet).
func ctNormalize(line string) string {
	line = regexp.MustCompile(`sport=\d+ dport=5353 (.*)sport=5353 dport=\d+`).ReplaceAllString(line, "sport=P dport=5353 ${1}sport=5353 dport=P")
	line = regexp.MustCompile(`id=\d+`).ReplaceAllString(line, "id=N")
	return regexp.MustCompile(`^(\S+ +\d+) \d+ `).ReplaceAllString(line, "$1 T ")
}

// nonEmptyLines splits out into its lines, dropping empty ones.
func nonEmptyLines(out string) []string {
	var ls []string
	for l := range strings.SplitSeq(out, "\n") {
		if l != "" {
			ls = append(ls, l)
		}
	}
	return ls
}

// `xdpfwd ct list|count|flush|stats` on a router tracking connections:
// the lines are conntrack -L's, the kernel's router with the same ruleset
// and traffic lists the same, the filters select, flush empties, stats
// count the inserts.
func TestCtCLI(t *testing.T) {
	requireRoot(t)
	rules := filepath.Join(t.TempDir(), "ct.nft")
	if err := os.WriteFile(rules, []byte(ctRuleset), 0o644); err != nil {
		t.Fatal(err)
	}
	l := newRouterLab(t, false, rules)
	ctl := l.daemon.control
	ct := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, xdpfwdBinary(t), append(append([]string{"ct"}, args...), "--control", ctl)...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("xdpfwd ct %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
		}
		return string(out)
	}

	// The lab's own pings made entries: flush them.
	if out := ct("flush"); !regexp.MustCompile(`^connection tracking table has been emptied: \d+ entr(y|ies) deleted\.\n$`).MatchString(out) {
		t.Errorf("flush: %q", out)
	}
	if out := ct("count"); out != "0\n" {
		t.Fatalf("count after flush: %q", out)
	}
	ctTraffic(t, l)

	// The seconds left depend on how long the test took to get here:
	// within a timeout of 30 s, and compared as "T" between listings.
	secs := regexp.MustCompile(`^(\S+ +\d+) \d+ `)
	listing := func(args ...string) []string {
		var out []string
		for _, l := range nonEmptyLines(ct(append([]string{"list"}, args...)...)) {
			out = append(out, secs.ReplaceAllString(l, "$1 T "))
		}
		return out
	}
	lines := nonEmptyLines(ct("list"))
	udpRe := regexp.MustCompile(`^udp      17 ([12]\d|30) src=10\.1\.0\.2 dst=10\.2\.0\.2 sport=(\d+) dport=5353 \[UNREPLIED\] src=10\.2\.0\.2 dst=10\.1\.0\.2 sport=5353 dport=(\d+) mark=0 use=1$`)
	icmpRe := regexp.MustCompile(`^icmp     1 ([12]\d|30) src=10\.1\.0\.2 dst=10\.2\.0\.2 type=8 code=0 id=(\d+) src=10\.2\.0\.2 dst=10\.1\.0\.2 type=0 code=0 id=(\d+) mark=0 use=1$`)
	var udp, icmp []string
	for _, line := range lines {
		if m := udpRe.FindStringSubmatch(line); m != nil && m[2] == m[3] {
			udp = append(udp, secs.ReplaceAllString(line, "$1 T "))
		}
		if m := icmpRe.FindStringSubmatch(line); m != nil && m[2] == m[3] {
			icmp = append(icmp, secs.ReplaceAllString(line, "$1 T "))
		}
	}
	if len(udp) != 1 || len(icmp) != 1 {
		t.Fatalf("ct list: want one UDP and one ICMP entry as conntrack -L prints them, got:\n%s\nstats:\n%s", strings.Join(lines, "\n"), ct("stats"))
	}
	if out := ct("count"); out != strconv.Itoa(len(lines))+"\n" {
		t.Errorf("count %q, list has %d lines", out, len(lines))
	}
	if got := listing("-p", "udp"); !slices.Equal(got, udp) {
		t.Errorf("list -p udp:\n%s\nwant\n%s", strings.Join(got, "\n"), udp[0])
	}
	if got := listing("-p", "icmp", "-s", "10.1.0.0/16"); !slices.Equal(got, icmp) {
		t.Errorf("list -p icmp -s 10.1.0.0/16:\n%s", strings.Join(got, "\n"))
	}
	if got := nonEmptyLines(ct("list", "-p", "udp", "--dport", "5354")); len(got) != 0 {
		t.Errorf("list --dport 5354: %q", got)
	}
	if got := listing("--reply-src", "10.2.0.2", "-p", "17"); !slices.Equal(got, udp) {
		t.Errorf("list --reply-src 10.2.0.2 -p 17: %q", got)
	}
	var js []control.CtEntry
	if err := json.Unmarshal([]byte(ct("list", "--json", "-p", "udp")), &js); err != nil {
		t.Fatal(err)
	}
	if len(js) != 1 || secs.ReplaceAllString(js[0].Line, "$1 T ") != udp[0] || js[0].Proto != "udp" || js[0].Original.Src != "10.1.0.2" || *js[0].Original.Dport != 5353 || !slices.Contains(js[0].Status, "confirmed") {
		t.Errorf("list --json: %+v", js)
	}
	if _, err := runCLIErr(t, 10*time.Second, "ct", "list", "--sport", "1", "--control", ctl); err == nil {
		t.Error("list --sport without -p succeeded")
	}

	// stats: conntrack -S's layout, one line per worker, the inserts
	// counted.
	var inserts uint64
	statsRe := regexp.MustCompile(`^cpu=(\d+) *\tfound=\d+ invalid=\d+ insert=(\d+) insert_failed=\d+ drop=\d+ early_drop=\d+ error=\d+ search_restart=\d+ clash_resolve=\d+ chaintoolong=\d+ $`)
	for _, line := range nonEmptyLines(ct("stats")) {
		if strings.HasPrefix(line, "nat ") {
			if line != "nat     \texhausted=0 no_address=0 dropped=0" {
				t.Errorf("stats: NAT line %q", line)
			}
			continue
		}
		m := statsRe.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("stats line %q is not conntrack -S's", line)
		}
		n, _ := strconv.ParseUint(m[2], 10, 64)
		inserts += n
	}
	if inserts < uint64(len(lines)) {
		t.Errorf("stats: %d inserts, %d entries listed", inserts, len(lines))
	}
	var st control.CtStats
	if err := json.Unmarshal([]byte(ct("stats", "--json")), &st); err != nil {
		t.Fatal(err)
	}
	if !st.Enabled || len(st.Workers) == 0 || st.Total.Insert != inserts {
		t.Errorf("stats --json: %+v (text: %d inserts)", st, inserts)
	}

	if out := ct("flush"); out != "connection tracking table has been emptied: "+strconv.Itoa(len(lines))+" entries deleted.\n" {
		t.Errorf("flush: %q, want %d entries", out, len(lines))
	}
	if out := ct("list"); out != "" {
		t.Errorf("list after flush: %q", out)
	}
	if out := ct("count"); out != "0\n" {
		t.Errorf("count after flush: %q", out)
	}

	// The kernel's router, same ruleset, same traffic: conntrack -L
	// lists the same lines, up to the source port, the ping identifier
	// and the seconds left.
	if _, err := exec.LookPath("conntrack"); err != nil {
		t.Fatal("conntrack (Debian package conntrack) is not installed: scripts/deps.sh installs it")
	}
	k := newRouterLab(t, true, rules)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, err := k.sw.Command(ctx, "conntrack", "-F").CombinedOutput(); err != nil {
		t.Fatalf("conntrack -F: %v\n%s", err, out)
	}
	ctTraffic(t, k)
	out, err := k.sw.Command(ctx, "conntrack", "-L").Output()
	if err != nil {
		t.Fatalf("conntrack -L: %v", err)
	}
	var kernel, ours []string
	for _, line := range nonEmptyLines(string(out)) {
		kernel = append(kernel, ctNormalize(line))
	}
	for _, line := range append(udp, icmp...) {
		ours = append(ours, ctNormalize(line))
	}
	slices.Sort(kernel)
	slices.Sort(ours)
	t.Logf("conntrack -L, normalized, the same for both:\n%s", strings.Join(kernel, "\n"))
	if !slices.Equal(kernel, ours) {
		t.Errorf("conntrack -L on the kernel's router:\n%s\nxdpfwd ct list:\n%s", strings.Join(kernel, "\n"), strings.Join(ours, "\n"))
	}
}
