package main

import (
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseRuleCounts(t *testing.T) {
	if n, err := parseRuleCounts("0, 100,1000,10000"); err != nil || !slices.Equal(n, []int{0, 100, 1000, 10000}) {
		t.Errorf("parseRuleCounts = %v, %v", n, err)
	}
	for _, bad := range []string{"", ",", "-1", "x", "1,1", "2000000"} {
		if _, err := parseRuleCounts(bad); err == nil {
			t.Errorf("parseRuleCounts(%q): no error", bad)
		}
	}
}

// TestFillerRulesMissBenchTraffic checks what every filler rule could
// match against the bench flow: no address of the two hosts, no
// destination port range with port 9, no source port range with the
// generator's ports (10000 and up).
func TestFillerRulesMissBenchTraffic(t *testing.T) {
	addr := regexp.MustCompile(`\d+\.\d+\.\d+\.\d+(/\d+)?`)
	ports := regexp.MustCompile(`(sport|dport) (\{[^}]*\}|\d+(-\d+)?)`)
	hosts := []netip.Addr{netip.MustParseAddr("10.1.0.2"), netip.MustParseAddr(benchDst)}
	// The address blocks the rules take addresses from.
	var blocks []netip.Prefix
	for _, b := range []string{"172.16.0.0/12", "100.64.0.0/10", "198.18.0.0/15", "192.168.0.0/16"} {
		blocks = append(blocks, netip.MustParsePrefix(b))
	}
	kinds := map[string]bool{}
	for i := range 20040 {
		if i >= 20000 {
			i += 1_000_000 - 20040 // the largest counts too
		}
		r := fillerRule(i)
		if !strings.HasSuffix(r, " drop") {
			t.Fatalf("rule %d %q: not a drop rule", i, r)
		}
		kinds[strings.Fields(r)[0]+" "+strings.Fields(r)[1]+" "+strconv.FormatBool(strings.Contains(r, "{"))] = true
		for _, a := range addr.FindAllString(r, -1) {
			if !strings.Contains(a, "/") {
				a += "/32"
			}
			p := netip.MustParsePrefix(a)
			if !slices.ContainsFunc(blocks, func(b netip.Prefix) bool { return b.Contains(p.Addr()) && p.Bits() >= b.Bits() }) {
				t.Fatalf("rule %d %q: %s is outside the blocks %v", i, r, p, blocks)
			}
			for _, h := range hosts {
				if p.Contains(h) {
					t.Fatalf("rule %d %q matches %s", i, r, h)
				}
			}
		}
		for _, m := range ports.FindAllStringSubmatch(r, -1) {
			for _, el := range strings.FieldsFunc(strings.Trim(m[2], "{}"), func(r rune) bool { return r == ',' || r == ' ' }) {
				lo, hi, _ := strings.Cut(el, "-")
				if hi == "" {
					hi = lo
				}
				l, err1 := strconv.Atoi(lo)
				h, err2 := strconv.Atoi(hi)
				if err1 != nil || err2 != nil || l < 1 || h > 65535 || l > h {
					t.Fatalf("rule %d %q: bad port %q", i, r, el)
				}
				if m[1] == "dport" && l <= benchDstPort && benchDstPort <= h || m[1] == "sport" && h >= 10000 {
					t.Fatalf("rule %d %q: %s %q may match the bench flow", i, r, m[1], el)
				}
			}
		}
	}
	if len(kinds) < 5 {
		t.Errorf("only %d kinds of rules: %v", len(kinds), kinds)
	}
}

// TestBenchRulesetLoads loads generated files into a throwaway network
// namespace with the real nft and reads them back as the bench does: N
// filler rules, then the counting rule, with a zero counter.
func TestBenchRulesetLoads(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (unshare -n, nft)")
	}
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("no nft: apt-get install nftables")
	}
	dir := t.TempDir()
	for _, n := range []int{0, 1, 100, 1000} {
		path, err := createBenchRuleset(dir, n, false)
		if err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("unshare", "-n", "nft", "-c", "-f", path).CombinedOutput(); err != nil {
			t.Fatalf("nft -c -f (%d rules): %v\n%s", n, err, out)
		}
		out, err := exec.Command("unshare", "-n", "sh", "-c", `nft -f "$1" && nft -j list ruleset`, "sh", path).Output()
		if err != nil {
			t.Fatalf("nft -f (%d rules): %v", n, err)
		}
		c, err := nftJSONCount(out)
		if err != nil {
			t.Fatalf("%d rules: %v", n, err)
		}
		if c.rules != n+1 || c.packets != 0 {
			t.Errorf("%d rules: read back %+v, want %d rules and no packets", n, c, n+1)
		}
		if err := checkRuleCount("kernel", n, c, 10, 0); err == nil {
			t.Errorf("%d rules: nothing delivered, but no error", n)
		}
	}
}

func TestNftJSONCount(t *testing.T) {
	const doc = `{"nftables": [{"metainfo": {"version": "1.0.6", "json_schema_version": 1}},
{"table": {"family": "inet", "name": "filter", "handle": 1}},
{"chain": {"family": "inet", "table": "filter", "name": "forward", "handle": 1, "type": "filter", "hook": "forward", "prio": 0, "policy": "accept"}},
{"rule": {"family": "inet", "table": "filter", "chain": "forward", "handle": 2, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": "172.16.0.0"}}, {"drop": null}]}},
{"rule": {"family": "ip", "table": "other", "chain": "forward", "handle": 2, "expr": [{"counter": {"packets": 5, "bytes": 9}}]}},
{"rule": {"family": "inet", "table": "filter", "chain": "forward", "handle": 3, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": "10.2.0.2"}}, {"counter": {"packets": 123, "bytes": 5658}}, {"accept": null}]}}]}`
	c, err := nftJSONCount([]byte(doc))
	if err != nil || c != (chainCount{rules: 2, packets: 123, bytes: 5658}) {
		t.Errorf("nftJSONCount = %+v, %v", c, err)
	}
	// A counter that is not in the last rule is not the bench's.
	moved := strings.Replace(doc, `{"drop": null}`, `{"counter": {"packets": 1, "bytes": 1}}, {"drop": null}`, 1)
	moved = strings.Replace(moved, `{"counter": {"packets": 123, "bytes": 5658}}, `, "", 1)
	if _, err := nftJSONCount([]byte(moved)); err == nil {
		t.Error("nftJSONCount: a counter in the first of two rules, no error")
	}
	if _, err := nftJSONCount([]byte(`{"nftables": []}`)); err == nil {
		t.Error("nftJSONCount: an empty ruleset, no error")
	}
}

func TestRulesVerbCount(t *testing.T) {
	lines := []string{
		"inet filter forward handle 2: ip saddr 172.16.0.0 drop",
		"ip other input handle 3: counter packets 9 bytes 9 accept",
		"inet filter forward handle 7: ip daddr 10.2.0.2 udp dport 9 counter packets 123 bytes 456 accept",
	}
	c, err := rulesVerbCount(lines)
	if err != nil || c != (chainCount{rules: 2, packets: 123, bytes: 456}) {
		t.Errorf("rulesVerbCount = %+v, %v", c, err)
	}
	if _, err := rulesVerbCount(lines[:1]); err == nil {
		t.Error("rulesVerbCount: no counter, no error")
	}
	if _, err := rulesVerbCount(append(slices.Clone(lines), "inet filter forward handle 8: drop")); err == nil {
		t.Error("rulesVerbCount: the counter not last, no error")
	}
}

func TestCheckRuleCount(t *testing.T) {
	ok := chainCount{rules: 11, packets: 1000}
	if err := checkRuleCount("x", 10, ok, 1200, 990); err != nil {
		t.Errorf("counted 1000 of 1200 sent, 990 delivered: %v", err)
	}
	for _, c := range []struct {
		cc              chainCount
		sent, delivered uint64
	}{
		{chainCount{rules: 10, packets: 1000}, 1200, 990}, // a rule missing
		{chainCount{rules: 11, packets: 0}, 1200, 990},    // bypassed
		{chainCount{rules: 11, packets: 1000}, 900, 900},  // counted unsent frames
		{chainCount{rules: 11, packets: 0}, 1200, 0},      // nothing delivered
	} {
		if err := checkRuleCount("x", 10, c.cc, c.sent, c.delivered); err == nil {
			t.Errorf("checkRuleCount(%+v, sent %d, delivered %d): no error", c.cc, c.sent, c.delivered)
		}
	}
}

func TestRulesTable(t *testing.T) {
	paths := []string{"kernel router", "xdpfwd router"}
	res := [][]benchResult{{
		{path: paths[0], sent: 600, delivered: 400, elapsed: time.Second, cpu: 2 * time.Millisecond, counted: 400},
		{path: paths[1], sent: 900, delivered: 800, elapsed: time.Second, cpu: 2 * time.Millisecond, counted: 800},
	}}
	got := rulesTable(paths, []int{100, 1000}, res)
	want := "      N | kernel router   deliv pps  CPU ms/M     counted | xdpfwd router   deliv pps  CPU ms/M     counted |     pps x CPU/pkt x\n" +
		"    100 | kernel router         400    5000.0         400 | xdpfwd router         800    2500.0         800 |      2.00      0.50\n"
	if got != want {
		t.Errorf("rulesTable:\n%s\nwant:\n%s", got, want)
	}
}
