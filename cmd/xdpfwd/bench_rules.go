package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// The bench's rules case (--rules): the routed topology with N filler
// rules in the forward chain of table inet filter, which the bench
// traffic does not match, then the counting rule, which does. The kernel
// router loads the file with nft -f; xdpfwd names it in its config.
const (
	// benchRuleFamily, benchRuleTable and benchRuleChain name the chain the
	// generated rules are in.
	benchRuleFamily = "inet"
	benchRuleTable  = "filter"
	benchRuleChain  = "forward"
	// benchDst and benchDstPort are where the bench's UDP goes (h2 in the
	// routed topology, the sink's port).
	benchDst     = "10.2.0.2"
	benchDstPort = 9
)

// benchCountingRule is the last rule of the generated chain: it matches
// the bench traffic, counts it and accepts it.
var benchCountingRule = fmt.Sprintf("ip daddr %s udp dport %d counter accept", benchDst, benchDstPort)

// parseRuleCounts parses --rules: a comma-separated list of filler rule
// counts, each at least 0, at most 1 000 000, no duplicates.
func parseRuleCounts(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 0 || n > 1_000_000 {
			return nil, fmt.Errorf("--rules %q: %q is not a rule count in [0, 1000000]", s, f)
		}
		for _, m := range out {
			if m == n {
				return nil, fmt.Errorf("--rules %q: %d twice", s, n)
			}
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("--rules %q: no rule count", s)
	}
	return out, nil
}

// fillerRule is the i-th (from 0) of the generated rules that the bench
// traffic (UDP 10.1.0.2:10000+ -> 10.2.0.2:9, and the warm-up ping
// between the same hosts) does not match, in a mix like a real
// firewall's: mostly single source addresses, some source and
// destination prefixes, port ranges of varied widths, TCP ports, and
// anonymous sets of addresses, prefixes and ports. Every address is in
// 172.16.0.0/12, 100.64.0.0/10, 198.18.0.0/15 or 192.168.0.0/16, every
// destination port range lies in [1024, 65535], every source port in
// [1, 1023]: none is the bench flow's.
func fillerRule(i int) string {
	switch i % 20 {
	case 0, 1, 2, 3, 4, 5, 6, 7:
		return fmt.Sprintf("ip saddr %s/32 drop", offsetAddr(netip.AddrFrom4([4]byte{172, 16, 0, 0}), uint32(i)))
	case 8, 9:
		// 100.64.0.0/10 has 16 384 /24s.
		return fmt.Sprintf("ip saddr %s/24 drop", offsetAddr(netip.AddrFrom4([4]byte{100, 64, 0, 0}), uint32(i%16384)<<8))
	case 10:
		return fmt.Sprintf("ip daddr %s/32 drop", offsetAddr(netip.AddrFrom4([4]byte{198, 18, 0, 0}), uint32(i%131072)))
	case 11, 12, 13:
		lo := 1024 + (i*37)%60000
		return fmt.Sprintf("udp dport %d-%d drop", lo, lo+i%97)
	case 14:
		lo := 1024 + (i*53)%60000
		return fmt.Sprintf("tcp dport %d-%d drop", lo, lo+i%13)
	case 15:
		return fmt.Sprintf("ip saddr %s/32 udp dport %d drop", offsetAddr(netip.AddrFrom4([4]byte{172, 16, 0, 0}), uint32(i)), 1024+i%50000)
	case 16:
		return fmt.Sprintf("udp sport %d udp dport %d drop", 1+i%1023, 1024+(i*7)%60000)
	case 17:
		// A set of eight addresses.
		base := offsetAddr(netip.AddrFrom4([4]byte{192, 168, 0, 0}), uint32(i*8%65536))
		elems := make([]string, 8)
		for k := range elems {
			elems[k] = offsetAddr(base, uint32(k)).String()
		}
		return fmt.Sprintf("ip daddr { %s } drop", strings.Join(elems, ", "))
	case 18:
		// A set of four /28 source prefixes (an interval set), apart
		// so that nft does not merge them, in 172.20.0.0/14.
		elems := make([]string, 4)
		for k := range elems {
			elems[k] = offsetAddr(netip.AddrFrom4([4]byte{172, 20, 0, 0}), uint32((i*4+k)*2%16384)<<4).String() + "/28"
		}
		return fmt.Sprintf("ip saddr { %s } drop", strings.Join(elems, ", "))
	default:
		// A set of five destination ports.
		elems := make([]string, 5)
		for k := range elems {
			elems[k] = strconv.Itoa(1024 + (i*5+k*997)%64000)
		}
		return fmt.Sprintf("udp dport { %s } drop", strings.Join(elems, ", "))
	}
}

// offsetAddr is the IPv4 address off after a.
func offsetAddr(a netip.Addr, off uint32) netip.Addr {
	b := a.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v += off
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// writeBenchRuleset writes an nft file with table inet filter and its
// forward chain (filter hook, priority 0, policy accept): n filler rules
// (fillerRule) and, last, benchCountingRule; with nat, also a table ip
// that masquerades what leaves p2 (benchNATTable: connection tracking
// and NAT on every packet).
func writeBenchRuleset(w io.Writer, n int, nat bool) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# xdpfwd bench: %d rules that the bench traffic does not match, then the one that counts it\n", n)
	fmt.Fprintf(&b, "table %s %s {\n\tchain %s {\n\t\ttype filter hook forward priority 0; policy accept;\n", benchRuleFamily, benchRuleTable, benchRuleChain)
	for i := range n {
		b.WriteString("\t\t" + fillerRule(i) + "\n")
		if b.Len() > 1<<16 {
			if _, err := io.WriteString(w, b.String()); err != nil {
				return err
			}
			b.Reset()
		}
	}
	b.WriteString("\t\t" + benchCountingRule + "\n\t}\n}\n")
	if nat {
		b.WriteString(benchNATTable)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// benchNATTable masquerades the bench's routed traffic behind the
// router's address toward h2.
const benchNATTable = "table ip xdpfwd_bench_nat {\n\tchain post {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n\t\toifname \"p2\" masquerade\n\t}\n}\n"

// createBenchRuleset writes writeBenchRuleset's file for n filler rules
// into dir and returns its path.
func createBenchRuleset(dir string, n int, nat bool) (path string, err error) {
	path = filepath.Join(dir, fmt.Sprintf("bench-%d.nft", n))
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	defer func() { err = errors.Join(err, f.Close()) }()
	return path, writeBenchRuleset(f, n, nat)
}

// chainCount is what the bench reads back from a path's ruleset after a
// run: how many rules the generated chain holds, and what its counting
// rule (the only one with a counter, which must be the last) counted.
type chainCount struct {
	rules          int
	packets, bytes uint64
}

// nftJSONCount reads the generated chain from `nft -j list ruleset`
// output: the kernel's own counters.
func nftJSONCount(data []byte) (chainCount, error) {
	var doc struct {
		Nftables []struct {
			Rule *struct {
				Family string            `json:"family"`
				Table  string            `json:"table"`
				Chain  string            `json:"chain"`
				Expr   []json.RawMessage `json:"expr"`
			} `json:"rule"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return chainCount{}, fmt.Errorf("nft -j list ruleset: %w", err)
	}
	var c chainCount
	at := 0 // the counting rule's place in the chain, from 1
	for _, o := range doc.Nftables {
		r := o.Rule
		if r == nil || r.Family != benchRuleFamily || r.Table != benchRuleTable || r.Chain != benchRuleChain {
			continue
		}
		c.rules++
		for _, e := range r.Expr {
			var ex struct {
				Counter *struct {
					Packets uint64 `json:"packets"`
					Bytes   uint64 `json:"bytes"`
				} `json:"counter"`
			}
			if err := json.Unmarshal(e, &ex); err != nil || ex.Counter == nil {
				continue
			}
			if at != 0 {
				return c, errors.New("nft -j list ruleset: more than one counter in the bench's chain")
			}
			c.packets, c.bytes, at = ex.Counter.Packets, ex.Counter.Bytes, c.rules
		}
	}
	return c, checkCountingRule("nft -j list ruleset", c, at)
}

// checkCountingRule checks that the chain had a counter, in its last
// rule (at, from 1; 0: none): a rule after it would mean the counter is
// not the one the bench put there.
func checkCountingRule(source string, c chainCount, at int) error {
	switch {
	case at == 0:
		return fmt.Errorf("%s: no counter in %s %s %s (%d rules)", source, benchRuleFamily, benchRuleTable, benchRuleChain, c.rules)
	case at != c.rules:
		return fmt.Errorf("%s: the counting rule is rule %d of %d in %s %s %s, not the last", source, at, c.rules, benchRuleFamily, benchRuleTable, benchRuleChain)
	}
	return nil
}

// rulesLineCounter matches the counter of a rule line of the control
// socket's `rules` verb.
var rulesLineCounter = regexp.MustCompile(`\bcounter packets (\d+) bytes (\d+)\b`)

// rulesVerbCount reads the generated chain from the lines of xdpfwd's
// control socket `rules` verb ("inet filter forward handle 7: ip daddr
// 10.2.0.2 udp dport 9 counter packets 123 bytes 456 accept"): xdpfwd's
// counters.
func rulesVerbCount(lines []string) (chainCount, error) {
	prefix := fmt.Sprintf("%s %s %s handle ", benchRuleFamily, benchRuleTable, benchRuleChain)
	var c chainCount
	at := 0
	for _, l := range lines {
		if !strings.HasPrefix(l, prefix) {
			continue
		}
		c.rules++
		m := rulesLineCounter.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		if at != 0 {
			return c, errors.New("xdpfwd rules: more than one counter in the bench's chain")
		}
		var err1, err2 error
		c.packets, err1 = strconv.ParseUint(m[1], 10, 64)
		c.bytes, err2 = strconv.ParseUint(m[2], 10, 64)
		if err := errors.Join(err1, err2); err != nil {
			return c, fmt.Errorf("xdpfwd rules: %q: %w", l, err)
		}
		at = c.rules
	}
	return c, checkCountingRule("xdpfwd rules", c, at)
}

// checkRuleCount fails a run whose ruleset did not see the bench
// traffic: the chain must hold the n filler rules and the counting rule,
// and the counting rule must have counted every datagram h2 received
// (delivered <= counted: a path that bypassed the rules delivers
// datagrams no rule counted) and none that was not sent (counted <=
// sent). Counted may exceed delivered by the frames a path accepted and
// then lost on the way to h2. A run that delivered nothing fails too:
// the rules, or something else, dropped the traffic.
func checkRuleCount(path string, n int, c chainCount, sent, delivered uint64) error {
	switch {
	case c.rules != n+1:
		return fmt.Errorf("%s: the bench's chain holds %d rules, want %d (%d filler rules and the counting rule)", path, c.rules, n+1, n)
	case delivered == 0:
		return fmt.Errorf("%s: nothing delivered through %d rules (the counting rule counted %d)", path, n, c.packets)
	case c.packets < delivered:
		return fmt.Errorf("%s: the counting rule counted %d packets but h2 received %d: traffic bypassed the rules", path, c.packets, delivered)
	case c.packets > sent:
		return fmt.Errorf("%s: the counting rule counted %d packets but only %d were sent", path, c.packets, sent)
	}
	return nil
}

// benchRules is the rules case: for each filler rule count, a file of
// that many rules and the counting rule, and a run of each path through
// it (peak, or at --rate), checked by the counting rule's counter. It
// prints a table by rule count, and draws it into plotFile when set.
// When a run fails, the counts done so far are still printed and drawn.
func benchRules(ctx context.Context, paths []string, o benchOpts, counts []int, plotFile string) (err error) {
	dir, err := os.MkdirTemp("", "xdpfwd-bench-rules-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	fmt.Printf("rules: %s %s %s (filter hook forward, priority 0, policy accept) holds N rules that the traffic does not match, then %q\n",
		benchRuleFamily, benchRuleTable, benchRuleChain, benchCountingRule)
	fmt.Println("the kernel router loads the file with nft -f; xdpfwd names it (ruleset:); after each run the counting rule's counter must cover what was delivered")
	if o.nat {
		fmt.Println("with --nat, the file also masquerades what leaves p2: connection tracking and NAT on every packet, in both routers")
	}
	var results [][]benchResult
	for _, n := range counts {
		file, ferr := createBenchRuleset(dir, n, o.nat)
		if ferr != nil {
			err = ferr
			break
		}
		o.ruleset, o.rules = file, n
		if o.rate > 0 {
			fmt.Printf("\n-- N = %d, offered load %.0f pps\n", n, o.rate)
		} else {
			fmt.Printf("\n-- N = %d, offered load: as fast as the generator sends\n", n)
		}
		rs, rerr := benchPaths(ctx, paths, o)
		if rerr != nil {
			err = fmt.Errorf("%d rules: %w", n, rerr)
			break
		}
		results = append(results, rs)
	}
	if len(results) == 0 {
		return err
	}
	fmt.Printf("\nrules case: delivered pps and CPU ms per million delivered packets (all cores) by N, %s per run\n", o.duration)
	fmt.Print(rulesTable(paths, counts, results))
	if plotFile != "" {
		if perr := writePlot(plotFile, rulesCharts(o.subtitle(), paths, counts, results)); perr != nil {
			return errors.Join(err, perr)
		}
		fmt.Printf("\nplot: %s\n", plotFile)
	}
	return err
}

// rulesTable is the rules case's table: a row per rule count N (results[i]
// for counts[i]) with each path's delivered pps, CPU ms per million
// delivered packets and counted packets, and with two paths, xdpfwd's
// delivered pps and CPU per packet as multiples of the kernel's.
func rulesTable(paths []string, counts []int, results [][]benchResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%7s", "N")
	for _, p := range paths {
		fmt.Fprintf(&b, " | %-13s %11s %9s %11s", p, "deliv pps", "CPU ms/M", "counted")
	}
	if len(paths) == 2 {
		fmt.Fprintf(&b, " | %9s %9s", "pps x", "CPU/pkt x")
	}
	b.WriteString("\n")
	for i, rs := range results {
		fmt.Fprintf(&b, "%7d", counts[i])
		for _, r := range rs {
			fmt.Fprintf(&b, " | %-13s %11.0f %9.1f %11d", r.path, r.deliveredPPS(), r.cpuPerMillion(), r.counted)
		}
		if len(rs) == 2 {
			fmt.Fprintf(&b, " | %9.2f %9.2f", rs[1].deliveredPPS()/rs[0].deliveredPPS(), rs[1].cpuPerMillion()/rs[0].cpuPerMillion())
		}
		b.WriteString("\n")
	}
	return b.String()
}
