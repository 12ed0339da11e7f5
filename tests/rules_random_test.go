package tests

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/sys/unix"

	"github.com/xdpfwd/xdpfwd/fastpath/fastpathtest"
	"github.com/xdpfwd/xdpfwd/fastpath/header"
	"github.com/xdpfwd/xdpfwd/internal/topo"
)

// The random differential run's size: rulesets, probes per ruleset, and
// the time after which no further ruleset starts.
const (
	randomRulesets = 5
	randomProbes   = 50
	randomBudget   = 40 * time.Second
)

// TestRulesRandom is the random-ruleset differential run: from a seed
// (logged; XDPFWD_RULES_SEED sets it), it generates rulesets
// (XDPFWD_RULES_RULESETS of them for a longer run) of an inet
// filter table (prerouting, input and one or two forward base chains,
// regular chains reached by jump, goto and verdict maps, named sets of
// every kind: exact, interval, concatenated; rules on addresses (prefixes,
// ranges, sets, masks, negated), protocols, ports (values, ranges, sets,
// relations, negated), meta length and IP lengths, TTLs, DSCP, TCP flags,
// ICMP types and codes, interfaces (oif and oifname where there is none),
// pkttype and marks set and matched; every verdict and reject kind; a
// counter on every rule) and probes for each (IPv4 and IPv6, UDP, TCP with
// various flags, ICMP echo and errors, from h1's addresses to h2's and to
// the router's, TTL 1 at times, TOS and ECN bits, IPv4 options and IPv6
// destination options at times). Each ruleset is loaded into one kernel
// router lab (nft flush
// ruleset, nft -f) and one xdpfwd lab (reload); the probes go through
// both, and h1 and h2 must receive the same packets (normalized as
// TestRouterDifferential does), and every rule's counter must have
// counted the same packets and bytes.
//
// The probes are pipelined: every packet a probe causes is attributed to
// it by its flow (the quoted packet's for an ICMP error), each probe's
// flow being unique within its ruleset. h1 and h2 have several addresses,
// so that ICMP errors spread over several destinations: the kernel's ICMP
// rate limits are off in the namespaces the test creates
// (net.ipv4.icmp_ratelimit and net.ipv6.icmp.ratelimit 0), and xdpfwd's
// (1 s per IPv4 destination, 100 ms per IPv6 one, a burst of 6) are kept
// by pacing its probes: the kernel's answers tell which probe makes the
// router send an error to whom, and xdpfwd's probe waits until that
// destination has a token to spare.
func TestRulesRandom(t *testing.T) {
	t.Parallel()
	start := time.Now()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("XDPFWD_RULES_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 0, 64); err != nil {
			t.Fatalf("XDPFWD_RULES_SEED=%q: %v", s, err)
		}
	}
	t.Logf("seed %d (XDPFWD_RULES_SEED=%d reproduces this run)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 0x6e667461626c6573))
	type round struct {
		text   string
		probes []rprobe
	}
	count, budget := randomRulesets, randomBudget
	if s := os.Getenv("XDPFWD_RULES_RULESETS"); s != "" {
		// A longer run, unbounded in time.
		var err error
		if count, err = strconv.Atoi(s); err != nil {
			t.Fatalf("XDPFWD_RULES_RULESETS=%q: %v", s, err)
		}
		budget = time.Duration(1<<63 - 1)
	}
	var rounds []round
	for k := range count {
		g := newRGen(rng, k)
		text := g.ruleset()
		rounds = append(rounds, round{text, g.probes(randomProbes)})
	}

	file := filepath.Join(t.TempDir(), "rules.nft")
	if err := os.WriteFile(file, []byte("table inet filter {\n\tchain forward {\n\t\ttype filter hook forward priority 0; policy accept;\n\t}\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var kernel, xdp *routerLab
	var wg sync.WaitGroup
	wg.Go(func() { kernel = newRouterLab(t, true, "") })
	wg.Go(func() { xdp = newRouterLab(t, false, file) })
	wg.Wait()
	if kernel == nil || xdp == nil {
		t.FailNow()
	}
	randomLabExtras(t, kernel)
	randomLabExtras(t, xdp)
	t.Logf("labs ready in %v", time.Since(start).Round(time.Millisecond))

	tokens := newErrBudget()
	for k, rd := range rounds {
		if time.Since(start) > budget {
			t.Logf("time budget spent: rulesets %d to %d not run", k, len(rounds)-1)
			break
		}
		t0 := time.Now()
		if err := os.WriteFile(file, []byte(rd.text), 0o644); err != nil {
			t.Fatal(err)
		}
		run(t, kernel.sw, "nft", "flush", "ruleset")
		if out, err := kernel.sw.Command(t.Context(), "nft", "-f", file).CombinedOutput(); err != nil {
			t.Fatalf("seed %d, ruleset %d: the kernel's nft -f refused the generated file: %v\n%s\n%s", seed, k, err, out, numbered(rd.text))
		}
		if err := xdp.daemon.reload(); err != nil {
			t.Errorf("seed %d, ruleset %d: xdpfwd refused a ruleset the kernel loaded: %v\n%s", seed, k, err, numbered(rd.text))
			continue
		}
		kc0, xc0 := kernelCounters(t, kernel), xdpfwdCounters(t, xdp)

		keys := make(map[string]int)
		for i, p := range rd.probes {
			keys[p.key()] = i
		}
		frames := func(l *routerLab) [][]byte {
			var f [][]byte
			for _, p := range rd.probes {
				f = append(f, p.frame(t, l))
			}
			return f
		}
		kr := kernel.runProbes(t, frames(kernel), keys, nil, 400*time.Millisecond)
		// What the kernel's router sent as rate-limited ICMP errors, by
		// probe: xdpfwd's probe waits for those tokens.
		needs := make([][]netip.Addr, len(rd.probes))
		for i, got := range kr.got {
			for _, side := range got {
				for _, h := range side {
					if d, ok := limitedErrorTo(h); ok {
						needs[i] = append(needs[i], d)
					}
				}
			}
		}
		xr := xdp.runProbes(t, frames(xdp), keys, func(i int) { tokens.wait(needs[i]) }, 400*time.Millisecond)
		for i, got := range xr.got {
			tokens.excess(got, needs[i])
		}

		var fails []string
		for i, p := range rd.probes {
			for h, host := range []string{"h1", "h2"} {
				ks, xs := slices.Sorted(slices.Values(kr.got[i][h])), slices.Sorted(slices.Values(xr.got[i][h]))
				if slices.Equal(ks, xs) {
					continue
				}
				var b strings.Builder
				fmt.Fprintf(&b, "probe %d (%s): %s received %d packets through the kernel, %d through xdpfwd", i, p, host, len(ks), len(xs))
				for _, s := range ks {
					fmt.Fprintf(&b, "\n-- kernel:\n%s", describe(s))
				}
				for _, s := range xs {
					fmt.Fprintf(&b, "\n-- xdpfwd:\n%s", describe(s))
				}
				if len(ks) == len(xs) {
					for j := range ks {
						if ks[j] != xs[j] {
							fmt.Fprintf(&b, "\n-- %s\n   kernel %s\n   xdpfwd %s", firstDiff(ks[j], xs[j]), ks[j], xs[j])
						}
					}
				}
				fails = append(fails, b.String())
			}
		}
		for h, host := range []string{"h1", "h2"} {
			ks, xs := slices.Sorted(slices.Values(kr.stray[h])), slices.Sorted(slices.Values(xr.stray[h]))
			if !slices.Equal(ks, xs) {
				var b strings.Builder
				fmt.Fprintf(&b, "packets no probe explains at %s: %d through the kernel, %d through xdpfwd", host, len(ks), len(xs))
				for _, s := range ks {
					fmt.Fprintf(&b, "\n-- kernel:\n%s", describe(s))
				}
				for _, s := range xs {
					fmt.Fprintf(&b, "\n-- xdpfwd:\n%s", describe(s))
				}
				fails = append(fails, b.String())
			}
		}

		kd, xd := counterDelta(kernelCounters(t, kernel), kc0), counterDelta(xdpfwdCounters(t, xdp), xc0)
		if len(kd) == 0 {
			t.Fatalf("seed %d, ruleset %d: the kernel's listing has no counters", seed, k)
		}
		texts := ruleTexts(t, xdp)
		var counterFails []string
		for _, key := range slices.Sorted(mapKeys(kd, xd)) {
			kv, kok := kd[key]
			xv, xok := xd[key]
			if kok && xok && kv == xv {
				continue
			}
			counterFails = append(counterFails, fmt.Sprintf("rule %s (%s): kernel counted %+v (listed %v), xdpfwd %+v (listed %v)", key, texts[key], kv, kok, xv, xok))
		}
		if len(counterFails) > 0 {
			counterFails = append(capped(counterFails, 12), replayCounters(t, kernel, xdp, rd.probes, texts)...)
		}
		fails = append(capped(fails, 12), counterFails...)
		matched := 0
		for _, v := range kd {
			if v.Packets > 0 {
				matched++
			}
		}
		atH2, atH1, silent := 0, 0, 0
		for _, got := range kr.got {
			if len(got[1]) > 0 {
				atH2++
			}
			if len(got[0]) > 0 {
				atH1++
			}
			if len(got[0])+len(got[1]) == 0 {
				silent++
			}
		}
		t.Logf("ruleset %d: %d rules, %d of them counted packets; %d probes: %d reached h2, %d answered at h1, %d nothing; %v",
			k, len(kd), matched, len(rd.probes), atH2, atH1, silent, time.Since(t0).Round(time.Millisecond))
		if os.Getenv("XDPFWD_RULES_VERBOSE") != "" {
			var b strings.Builder
			for i, p := range rd.probes {
				fmt.Fprintf(&b, "\n  %2d: %s: %d at h1, %d at h2", i, p, len(kr.got[i][0]), len(kr.got[i][1]))
			}
			t.Logf("ruleset %d:\n%s\nprobes (through the kernel):%s\ncounters:\n%s", k, numbered(rd.text), b.String(), run(t, kernel.sw, "nft", "-a", "list", "ruleset"))
		}
		if len(fails) > 0 {
			var probes strings.Builder
			for i, p := range rd.probes {
				fmt.Fprintf(&probes, "\n  %2d: %s", i, p)
			}
			t.Errorf("seed %d (XDPFWD_RULES_SEED=%d), ruleset %d: the kernel and xdpfwd differ:\n%s\nthe ruleset:\n%s\nthe probes:%s",
				seed, seed, k, strings.Join(fails, "\n"), numbered(rd.text), probes.String())
		}
	}
	t.Logf("done in %v", time.Since(start).Round(time.Millisecond))
}

// The lab's addresses beyond routedStar's: more of h1's and h2's, so
// that ICMP errors spread over several destinations.
var (
	rrH1v4, rrH2v4, rrH1v6, rrH2v6 []netip.Addr
	rrRouters                      = []netip.Addr{netip.MustParseAddr("10.1.0.1"), netip.MustParseAddr("10.2.0.1"), netip.MustParseAddr("fd00:1::1"), netip.MustParseAddr("fd00:2::1")}
)

func init() {
	for i := 2; i <= 9; i++ {
		rrH1v4 = append(rrH1v4, netip.MustParseAddr(fmt.Sprintf("10.1.0.%d", i)))
		rrH1v6 = append(rrH1v6, netip.MustParseAddr(fmt.Sprintf("fd00:1::%d", i)))
	}
	for i := 2; i <= 5; i++ {
		rrH2v4 = append(rrH2v4, netip.MustParseAddr(fmt.Sprintf("10.2.0.%d", i)))
		rrH2v6 = append(rrH2v6, netip.MustParseAddr(fmt.Sprintf("fd00:2::%d", i)))
	}
}

// rrIsHost reports whether a is one of h1's or h2's addresses.
func rrIsHost(a netip.Addr) bool {
	for _, pool := range [][]netip.Addr{rrH1v4, rrH2v4, rrH1v6, rrH2v6} {
		if slices.Contains(pool, a) {
			return true
		}
	}
	return false
}

// randomLabExtras gives l's hosts their further addresses, turns off the
// kernel's per-destination ICMP rate limits in every namespace of the lab
// running a kernel stack that answers (the hosts, and the kernel
// router's), and makes the router resolve every host address.
func randomLabExtras(t *testing.T, l *routerLab) {
	t.Helper()
	limitsOff := []string{"sysctl", "-qw", "net.ipv4.icmp_ratelimit=0", "net.ipv6.icmp.ratelimit=0"}
	if l.daemon == nil {
		run(t, l.sw, limitsOff[0], limitsOff[1:]...)
	}
	for _, h := range []struct {
		host   *topo.Host
		v4, v6 []netip.Addr
		r4, r6 string
	}{{l.h1, rrH1v4, rrH1v6, "10.1.0.1", "fd00:1::1"}, {l.h2, rrH2v4, rrH2v6, "10.2.0.1", "fd00:2::1"}} {
		run(t, h.host.Namespace, limitsOff[0], limitsOff[1:]...)
		var script strings.Builder
		for i := range h.v4 {
			if i > 0 { // the first is routedStar's
				fmt.Fprintf(&script, "ip addr add %s/24 dev %s && ip -6 addr add %s/64 dev %s nodad && ", h.v4[i], topo.HostIf, h.v6[i], topo.HostIf)
			}
		}
		for i := range h.v4 {
			fmt.Fprintf(&script, "{ ping -n -c 1 -W 2 -I %s %s >/dev/null & ping -n -c 1 -W 2 -I %s %s >/dev/null & } && ", h.v4[i], h.r4, h.v6[i], h.r6)
		}
		script.WriteString("wait")
		run(t, h.host.Namespace, "sh", "-c", script.String())
	}
}

// rprobe is one generated probe packet from h1.
type rprobe struct {
	n            int // index in its ruleset
	v6           bool
	kind         string // udp, tcp, echo, error (an ICMP port unreachable from h1 about a packet h2 sent)
	src, dst     netip.Addr
	ttl          uint8
	sport, dport uint16
	flags        uint8 // TCP
	payload      int
	tos          uint8 // or traffic class
	opts         bool  // IPv4 options (NOPs), or an IPv6 destination options header
}

func (p rprobe) String() string {
	s := fmt.Sprintf("%s ", p.kind)
	if p.v6 {
		s = "IPv6 " + s
	}
	switch p.kind {
	case "udp", "tcp":
		s += fmt.Sprintf("%v -> %v", netip.AddrPortFrom(p.src, p.sport), netip.AddrPortFrom(p.dst, p.dport))
	case "echo":
		s += fmt.Sprintf("%v -> %v id %#x", p.src, p.dst, p.echoID())
	case "error":
		s += fmt.Sprintf("%v -> %v about UDP %v -> %v", p.src, p.dst, netip.AddrPortFrom(p.dst, p.sport), netip.AddrPortFrom(p.src, p.dport))
	}
	if p.kind == "tcp" {
		s += " flags " + tcpFlagNames(p.flags)
	}
	if p.tos != 0 {
		s += fmt.Sprintf(" tos %#x", p.tos)
	}
	if p.opts && p.v6 {
		s += " after a destination options header"
	} else if p.opts {
		s += " with IP options (NOPs)"
	}
	return s + fmt.Sprintf(" ttl %d, %d bytes of payload", p.ttl, p.payload)
}

func tcpFlagNames(f uint8) string {
	var n []string
	for i, name := range []string{"fin", "syn", "rst", "psh", "ack", "urg"} {
		if f&(1<<i) != 0 {
			n = append(n, name)
		}
	}
	if len(n) == 0 {
		return "none"
	}
	return strings.Join(n, "|")
}

func (p rprobe) echoID() uint16 { return 0x5000 + uint16(p.n) }

// key is the flow every packet the probe causes belongs to (see rrFlowKey).
func (p rprobe) key() string {
	switch p.kind {
	case "udp":
		return rrPortKey(17, p.src, p.sport, p.dst, p.dport)
	case "tcp":
		return rrPortKey(6, p.src, p.sport, p.dst, p.dport)
	case "echo":
		return rrEchoKey(p.src, p.dst, p.echoID())
	default: // the quoted datagram's
		return rrPortKey(17, p.dst, p.sport, p.src, p.dport)
	}
}

func rrPortKey(proto uint8, a netip.Addr, ap uint16, b netip.Addr, bp uint16) string {
	x, y := netip.AddrPortFrom(a, ap), netip.AddrPortFrom(b, bp)
	if x.Compare(y) > 0 {
		x, y = y, x
	}
	return fmt.Sprintf("%d %v %v", proto, x, y)
}

func rrEchoKey(a, b netip.Addr, id uint16) string {
	if a.Compare(b) > 0 {
		a, b = b, a
	}
	return fmt.Sprintf("echo %v %v %d", a, b, id)
}

// rrFlowKey returns the flow key of a normalized packet (hex): its own,
// or for an ICMP error the quoted packet's; "" if it has none.
func rrFlowKey(h string) string {
	b, err := hex.DecodeString(h)
	if err != nil {
		return ""
	}
	return rrFlowKeyOf(b, false)
}

func rrFlowKeyOf(b []byte, quoted bool) string {
	src, dst, proto, l4, ok := rrIP(b)
	if !ok {
		return ""
	}
	switch proto {
	case 6, 17:
		if len(l4) < 4 {
			return ""
		}
		return rrPortKey(proto, src, binary.BigEndian.Uint16(l4[0:2]), dst, binary.BigEndian.Uint16(l4[2:4]))
	case 1, 58:
		if len(l4) < 8 {
			return ""
		}
		switch t := l4[0]; {
		case proto == 1 && (t == 0 || t == 8), proto == 58 && (t == 128 || t == 129):
			return rrEchoKey(src, dst, binary.BigEndian.Uint16(l4[4:6]))
		case !quoted && (proto == 1 && (t == 3 || t == 4 || t == 5 || t == 11 || t == 12) || proto == 58 && t >= 1 && t <= 4):
			return rrFlowKeyOf(l4[8:], true)
		}
	}
	return ""
}

// rrIP parses an IPv4 or IPv6 header (no extension headers) at the start
// of b, which may be a quoted, truncated packet.
func rrIP(b []byte) (src, dst netip.Addr, proto uint8, l4 []byte, ok bool) {
	if len(b) == 0 {
		return
	}
	switch b[0] >> 4 {
	case 4:
		ihl := int(b[0]&0xf) * 4
		if len(b) < 20 || ihl < 20 || len(b) < ihl || binary.BigEndian.Uint16(b[6:8])&0x1fff != 0 {
			return
		}
		return netip.AddrFrom4([4]byte(b[12:16])), netip.AddrFrom4([4]byte(b[16:20])), b[9], b[ihl:], true
	case 6:
		if len(b) < 40 {
			return
		}
		proto, l4 := b[6], b[40:]
		for (proto == 0 || proto == 43 || proto == 60) && len(l4) >= 8 {
			proto, l4 = l4[0], l4[min(len(l4), 8+8*int(l4[1])):]
		}
		return netip.AddrFrom16([16]byte(b[8:24])), netip.AddrFrom16([16]byte(b[24:40])), proto, l4, true
	}
	return
}

// rrNormalize normalizes further what normalize left: in an ICMP error
// quoting an ICMP message (an echo reply of h2's the router rejected),
// the quoted packet's IPv4 identification (and header checksum), which
// the host's kernel draws from a per-namespace hash, zeroed, and the
// error's checksum recomputed.
func rrNormalize(h string) string {
	b, err := hex.DecodeString(h)
	if err != nil || len(b) < 20 || b[0]>>4 != 4 || b[9] != 1 {
		return h
	}
	ihl := int(b[0]&0xf) * 4
	icmp := b[ihl:]
	if len(icmp) < 8+20 || (icmp[0] != 3 && icmp[0] != 11 && icmp[0] != 12) {
		return h
	}
	q := icmp[8:]
	if q[0]>>4 != 4 || q[9] != 1 {
		return h
	}
	q[4], q[5], q[10], q[11] = 0, 0, 0, 0
	icmp[2], icmp[3] = 0, 0
	binary.BigEndian.PutUint16(icmp[2:4], ^header.Checksum(icmp, 0))
	return hex.EncodeToString(b)
}

// firstDiff says where two normalized packets (hex) first differ.
func firstDiff(a, b string) string {
	x, _ := hex.DecodeString(a)
	y, _ := hex.DecodeString(b)
	for i := range min(len(x), len(y)) {
		if x[i] != y[i] {
			return fmt.Sprintf("first difference at IP byte %d: kernel %#02x, xdpfwd %#02x", i, x[i], y[i])
		}
	}
	return fmt.Sprintf("lengths %d and %d", len(x), len(y))
}

// limitedErrorTo returns the destination of a normalized packet (hex) if
// it is an ICMP error the router sent of a kind the rate limits count.
func limitedErrorTo(h string) (netip.Addr, bool) {
	b, err := hex.DecodeString(h)
	if err != nil {
		return netip.Addr{}, false
	}
	src, dst, proto, l4, ok := rrIP(b)
	if !ok || len(l4) < 2 || rrIsHost(src) {
		return netip.Addr{}, false
	}
	switch t, c := l4[0], l4[1]; {
	case proto == 1 && (t == 3 && c != 4 || t == 4 || t == 11 || t == 12),
		proto == 58 && (t == 1 || t == 3 || t == 4):
		return dst, true
	}
	return netip.Addr{}, false
}

// frame builds the probe's frame for lab l.
func (p rprobe) frame(t *testing.T, l *routerLab) []byte {
	t.Helper()
	f := p.build(t, l)
	if !p.opts {
		return f
	}
	const ip = header.EthernetSize
	if p.v6 {
		// A destination options header (PadN) before the transport.
		ext := []byte{f[ip+6], 0, 1, 4, 0, 0, 0, 0}
		f = slices.Insert(f, ip+header.IPv6Size, ext...)
		f[ip+6] = 60
		binary.BigEndian.PutUint16(f[ip+4:], binary.BigEndian.Uint16(f[ip+4:])+8)
		return f
	}
	f = slices.Insert(f, ip+header.IPv4MinSize, 1, 1, 1, 0) // NOP, NOP, NOP, end
	f[ip] = 0x46
	binary.BigEndian.PutUint16(f[ip+2:], binary.BigEndian.Uint16(f[ip+2:])+4)
	f[ip+10], f[ip+11] = 0, 0
	binary.BigEndian.PutUint16(f[ip+10:], ^header.Checksum(f[ip:ip+24], 0))
	return f
}

func (p rprobe) build(t *testing.T, l *routerLab) []byte {
	t.Helper()
	typ := layers.EthernetTypeIPv4
	if p.v6 {
		typ = layers.EthernetTypeIPv6
	}
	eth := &layers.Ethernet{SrcMAC: l.h1.HWAddr, DstMAC: l.routerMAC, EthernetType: typ}
	payload := gopacket.Payload(bytes.Repeat([]byte{byte(0x30 + p.n)}, p.payload))
	var ip interface {
		gopacket.NetworkLayer
		gopacket.SerializableLayer
	}
	proto := map[string]layers.IPProtocol{"udp": layers.IPProtocolUDP, "tcp": layers.IPProtocolTCP, "echo": layers.IPProtocolICMPv4, "error": layers.IPProtocolICMPv4}[p.kind]
	if p.v6 {
		if proto == layers.IPProtocolICMPv4 {
			proto = layers.IPProtocolICMPv6
		}
		ip = &layers.IPv6{Version: 6, HopLimit: p.ttl, TrafficClass: p.tos, NextHeader: proto, SrcIP: p.src.AsSlice(), DstIP: p.dst.AsSlice()}
	} else {
		ip = &layers.IPv4{Version: 4, TTL: p.ttl, TOS: p.tos, Protocol: proto, SrcIP: p.src.AsSlice(), DstIP: p.dst.AsSlice(), Id: 0x1000 + uint16(p.n)}
	}
	switch p.kind {
	case "udp":
		u := &layers.UDP{SrcPort: layers.UDPPort(p.sport), DstPort: layers.UDPPort(p.dport)}
		u.SetNetworkLayerForChecksum(ip)
		return fastpathtest.Serialize(t, eth, ip, u, payload)
	case "tcp":
		f := p.flags
		tc := &layers.TCP{SrcPort: layers.TCPPort(p.sport), DstPort: layers.TCPPort(p.dport), Seq: 1000 + 7919*uint32(p.n), Window: 1000,
			FIN: f&1 != 0, SYN: f&2 != 0, RST: f&4 != 0, PSH: f&8 != 0, ACK: f&16 != 0, URG: f&32 != 0}
		if tc.ACK {
			tc.Ack = 50000 + 104729*uint32(p.n)
		}
		tc.SetNetworkLayerForChecksum(ip)
		return fastpathtest.Serialize(t, eth, ip, tc, payload)
	case "echo":
		if p.v6 {
			icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeEchoRequest, 0)}
			icmp.SetNetworkLayerForChecksum(ip)
			return fastpathtest.Serialize(t, eth, ip, icmp, &layers.ICMPv6Echo{Identifier: p.echoID(), SeqNumber: uint16(p.n)}, payload)
		}
		return fastpathtest.Serialize(t, eth, ip, &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoRequest, 0), Id: p.echoID(), Seq: uint16(p.n)}, payload)
	}
	// An ICMP port unreachable about a UDP datagram from the destination
	// to the source: the quoted packet, then the error.
	var inner []byte
	if p.v6 {
		qip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolUDP, SrcIP: p.dst.AsSlice(), DstIP: p.src.AsSlice()}
		u := &layers.UDP{SrcPort: layers.UDPPort(p.sport), DstPort: layers.UDPPort(p.dport)}
		u.SetNetworkLayerForChecksum(qip)
		inner = fastpathtest.Serialize(t, qip, u, payload)
		icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeDestinationUnreachable, layers.ICMPv6CodePortUnreachable)}
		icmp.SetNetworkLayerForChecksum(ip)
		return fastpathtest.Serialize(t, eth, ip, icmp, gopacket.Payload(append(make([]byte, 4), inner...)))
	}
	qip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: p.dst.AsSlice(), DstIP: p.src.AsSlice(), Id: 0x2000 + uint16(p.n)}
	u := &layers.UDP{SrcPort: layers.UDPPort(p.sport), DstPort: layers.UDPPort(p.dport)}
	u.SetNetworkLayerForChecksum(qip)
	inner = fastpathtest.Serialize(t, qip, u, payload)
	return fastpathtest.Serialize(t, eth, ip, &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeDestinationUnreachable, layers.ICMPv4CodePort)}, gopacket.Payload(inner))
}

// probeResult is what h1 and h2 received during a run of probes: by
// probe (the flow it belongs to), and what no probe explains.
type probeResult struct {
	got   [][2][]string
	stray [2][]string
}

// runProbes sends frames from h1 one after the other (before(i), if not
// nil, runs before frame i is sent) while collecting what h1 and h2
// receive, until both have been quiet for a while after the last frame,
// and attributes each packet to the probe whose flow key it has.
func (l *routerLab) runProbes(t *testing.T, frames [][]byte, keys map[string]int, before func(i int), settle time.Duration) probeResult {
	t.Helper()
	const (
		spacing = 15 * time.Millisecond
		longest = 3 * time.Second
	)
	quiet := settle * 5 / 8 // without a packet, at least; settle: after the last frame
	ifi := 0
	if err := l.h1.Do(func() error {
		i, err := net.InterfaceByName(topo.HostIf)
		if err == nil {
			ifi = i.Index
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	drain(l.fd1)
	drain(l.fd2)
	type rx struct {
		host int
		pkt  string
	}
	var (
		mu     sync.Mutex
		got    []rx
		lastRx time.Time
		stop   atomic.Bool
		wg     sync.WaitGroup
	)
	for host, fd := range []int{l.fd1, l.fd2} {
		wg.Go(func() {
			buf := make([]byte, 9000)
			for !stop.Load() {
				n, from, err := unix.Recvfrom(fd, buf, 0)
				if err != nil {
					continue // the read timeout
				}
				if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
					continue
				}
				if p := rrNormalize(normalize(buf[:n])); p != "" {
					mu.Lock()
					got = append(got, rx{host, p})
					lastRx = time.Now()
					mu.Unlock()
				}
			}
		})
	}
	for i, f := range frames {
		if before != nil {
			before(i)
		}
		if err := unix.Sendto(l.fd1, f, 0, &unix.SockaddrLinklayer{Ifindex: ifi, Halen: 6, Addr: [8]byte(append(slices.Clone(f[0:6]), 0, 0))}); err != nil {
			stop.Store(true)
			wg.Wait()
			t.Fatalf("%s: send probe %d: %v", l.name, i, err)
		}
		time.Sleep(spacing)
	}
	last := time.Now()
	for {
		time.Sleep(25 * time.Millisecond)
		mu.Lock()
		lr := lastRx
		mu.Unlock()
		now := time.Now()
		if now.Sub(last) >= settle && now.Sub(lr) >= quiet || now.Sub(last) > longest {
			break
		}
	}
	stop.Store(true)
	wg.Wait()
	res := probeResult{got: make([][2][]string, len(frames))}
	for _, r := range got {
		if i, ok := keys[rrFlowKey(r.pkt)]; ok {
			res.got[i][r.host] = append(res.got[i][r.host], r.pkt)
		} else {
			res.stray[r.host] = append(res.stray[r.host], r.pkt)
		}
	}
	return res
}

// errBudget follows xdpfwd's ICMP error rate limits per destination (the
// router's and the reject expression's, taken as one, which is
// stricter), with margins: a token every 1.25 s for an IPv4 destination,
// 130 ms for an IPv6 one, 5 ahead at most (xdpfwd: 1 s, 100 ms or less,
// 6).
type errBudget struct{ tat map[netip.Addr]time.Time }

func newErrBudget() *errBudget { return &errBudget{tat: make(map[netip.Addr]time.Time)} }

func (b *errBudget) interval(d netip.Addr) time.Duration {
	if d.Is4() {
		return 1250 * time.Millisecond
	}
	return 130 * time.Millisecond
}

const errBurst = 5

// wait sleeps until every destination of dests (one token each time it
// appears) has a token, and takes them.
func (b *errBudget) wait(dests []netip.Addr) {
	for _, d := range dests {
		iv := b.interval(d)
		if w := time.Until(b.tat[d].Add(-(errBurst - 1) * iv)); w > 0 {
			time.Sleep(w)
		}
		b.take(d)
	}
}

func (b *errBudget) take(d netip.Addr) {
	t := time.Now()
	if b.tat[d].After(t) {
		t = b.tat[d]
	}
	b.tat[d] = t.Add(b.interval(d))
}

// excess takes a token for every rate-limited error in got beyond those
// expected, so that a divergence does not starve later probes.
func (b *errBudget) excess(got [2][]string, expected []netip.Addr) {
	left := slices.Clone(expected)
	for _, side := range got {
		for _, h := range side {
			d, ok := limitedErrorTo(h)
			if !ok {
				continue
			}
			if i := slices.Index(left, d); i >= 0 {
				left = slices.Delete(left, i, i+1)
				continue
			}
			b.take(d)
		}
	}
}

func counterDelta(now, before map[string]counter) map[string]counter {
	out := make(map[string]counter, len(now))
	for k, v := range now {
		b := before[k]
		out[k] = counter{v.Packets - b.Packets, v.Bytes - b.Bytes}
	}
	return out
}

func mapKeys(ms ...map[string]counter) func(func(string) bool) {
	seen := make(map[string]bool)
	for _, m := range ms {
		for k := range m {
			seen[k] = true
		}
	}
	return func(yield func(string) bool) {
		for k := range seen {
			if !yield(k) {
				return
			}
		}
	}
}

var listedRule = regexp.MustCompile(`^(\S+ \S+ \S+) handle (\d+): (.*)$`)

// ruleTexts maps "family table chain handle" to the rule's text in
// xdpfwd's listing.
func ruleTexts(t *testing.T, l *routerLab) map[string]string {
	out := make(map[string]string)
	for _, line := range l.daemon.rulesLines() {
		if m := listedRule.FindStringSubmatch(line); m != nil {
			out[m[1]+" "+m[2]] = m[3]
		}
	}
	return out
}

// replayCounters sends the probes again one at a time through both labs,
// reading every counter after each, and says which probes the two count
// differently (the first few).
func replayCounters(t *testing.T, kernel, xdp *routerLab, probes []rprobe, texts map[string]string) []string {
	t.Helper()
	var out []string
	kp, xp := kernelCounters(t, kernel), xdpfwdCounters(t, xdp)
	for _, p := range probes {
		kernel.runProbes(t, [][]byte{p.frame(t, kernel)}, nil, nil, 150*time.Millisecond)
		xdp.runProbes(t, [][]byte{p.frame(t, xdp)}, nil, nil, 150*time.Millisecond)
		kn, xn := kernelCounters(t, kernel), xdpfwdCounters(t, xdp)
		kd, xd := counterDelta(kn, kp), counterDelta(xn, xp)
		kp, xp = kn, xn
		var diffs []string
		for _, key := range slices.Sorted(mapKeys(kd, xd)) {
			if kd[key] != xd[key] {
				diffs = append(diffs, fmt.Sprintf("\n    rule %s (%s): kernel +%+v, xdpfwd +%+v", key, texts[key], kd[key], xd[key]))
			}
		}
		if len(diffs) > 0 {
			out = append(out, fmt.Sprintf("replayed alone, probe %d (%s) is counted differently:%s", p.n, p, strings.Join(diffs, "")))
			if len(out) == 3 {
				break
			}
		}
	}
	return out
}

// capped returns the first n of fails, and how many more there were.
func capped(fails []string, n int) []string {
	if len(fails) <= n {
		return fails
	}
	return append(fails[:n:n], fmt.Sprintf("(and %d more)", len(fails)-n))
}

// numbered returns text with line numbers.
func numbered(text string) string {
	var b strings.Builder
	for i, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		fmt.Fprintf(&b, "%3d  %s\n", i+1, line)
	}
	return b.String()
}

// rgen generates one ruleset and probes meant for it.
type rgen struct {
	r       *rand.Rand
	idx     int
	dports  []uint16 // destination ports rules use
	sports  []uint16 // source ports rules use
	dedge   map[uint16]bool
	sedge   map[uint16]bool
	lengths []int // meta length bounds rules use
	marks   []uint32
	regular []string // regular chains, in the order jumps may go
	portSet []uint16
}

func newRGen(r *rand.Rand, idx int) *rgen {
	g := &rgen{r: r, idx: idx, dedge: make(map[uint16]bool), sedge: make(map[uint16]bool), marks: []uint32{0x1, 0x2, 0x42}}
	g.dports = []uint16{22, 53, 80, 443}
	for range 6 {
		g.dports = append(g.dports, uint16(1000+r.IntN(9000)))
	}
	g.sports = []uint16{40000, 40001, 40002, 53, 1024, uint16(20000 + r.IntN(20000))}
	g.regular = []string{"c1"}
	if r.IntN(2) == 0 {
		g.regular = append(g.regular, "c2")
	}
	return g
}

func (g *rgen) chance(p float64) bool { return g.r.Float64() < p }

func pickOne[T any](g *rgen, xs []T) T { return xs[g.r.IntN(len(xs))] }

// distinct returns n distinct elements of xs (all if fewer), sorted by cmp.
func distinct[T comparable](g *rgen, xs []T, n int) []T {
	var out []T
	for _, i := range g.r.Perm(len(xs)) {
		if len(out) == n {
			break
		}
		if !slices.Contains(out, xs[i]) {
			out = append(out, xs[i])
		}
	}
	return out
}

func joinAny[T any](xs []T) string {
	var s []string
	for _, x := range xs {
		s = append(s, fmt.Sprint(x))
	}
	return strings.Join(s, ", ")
}

// Disjoint address blocks for interval sets, around the lab's addresses.
var (
	blocks4 = []string{"10.1.0.0/30", "10.1.0.4-10.1.0.6", "10.1.0.8/29", "10.2.0.0/30", "10.2.0.4/31", "10.2.0.128/25", "10.3.0.0/16", "192.168.0.0/16"}
	blocks6 = []string{"fd00:1::/126", "fd00:1::4-fd00:1::6", "fd00:1::8/125", "fd00:2::/126", "fd00:2::4/127", "fd00:2::8000/113", "fd00:3::/64", "2001:db8::/32"}
)

func (g *rgen) addrPool(v6 bool) []netip.Addr {
	var pool []netip.Addr
	if v6 {
		pool = slices.Concat(rrH1v6, rrH2v6, rrRouters[2:], []netip.Addr{netip.MustParseAddr("fd00:3::7")})
	} else {
		pool = slices.Concat(rrH1v4, rrH2v4, rrRouters[:2], []netip.Addr{netip.MustParseAddr("10.3.0.7")})
	}
	return pool
}

// addrValue is a value to compare an address with: an address, a prefix,
// a range, or an anonymous set.
func (g *rgen) addrValue(v6 bool) string {
	pool := g.addrPool(v6)
	switch g.r.IntN(10) {
	case 0, 1:
		return pickOne(g, pool).String()
	case 2, 3, 4, 5:
		a := pickOne(g, pool)
		plens := []int{8, 16, 24, 24, 28, 29, 30, 31}
		if v6 {
			plens = []int{16, 32, 48, 64, 64, 120, 125, 126, 127}
		}
		return netip.PrefixFrom(a, pickOne(g, plens)).Masked().String()
	case 6:
		a, b := pickOne(g, pool), pickOne(g, pool)
		if a.Compare(b) > 0 {
			a, b = b, a
		}
		if a == b {
			return a.String()
		}
		return a.String() + "-" + b.String()
	case 7, 8:
		bl := blocks4
		if v6 {
			bl = blocks6
		}
		return "{ " + joinAny(distinct(g, bl, 2+g.r.IntN(2))) + " }"
	default:
		return "{ " + joinAny(distinct(g, pool, 2+g.r.IntN(3))) + " }"
	}
}

// portValue is a value to compare a port with, and notes the ports at
// its edges for the probes.
func (g *rgen) portValue(src bool, allowNamed bool) string {
	univ, edge := g.dports, g.dedge
	if src {
		univ, edge = g.sports, g.sedge
	}
	p := pickOne(g, univ)
	switch g.r.IntN(8) {
	case 0, 1:
		edge[p] = true
		return fmt.Sprint(p)
	case 2, 3:
		d := uint16(g.r.IntN(60))
		lo, hi := max(p, d+2)-d, min(p, 65000)+d+1
		edge[lo-1], edge[lo], edge[hi], edge[hi+1] = true, true, true, true
		return fmt.Sprintf("%d-%d", lo, hi)
	case 4:
		op := pickOne(g, []string{"< ", "> ", "<= ", ">= "})
		edge[p-1], edge[p], edge[p+1] = true, true, true
		return op + fmt.Sprint(p)
	case 5:
		if allowNamed && !src && len(g.portSet) > 0 {
			if g.chance(0.5) {
				return "@ports"
			}
			return "@portr"
		}
		fallthrough
	default:
		vs := distinct(g, univ, 2+g.r.IntN(3))
		slices.Sort(vs)
		var el []string
		for i := 0; i < len(vs); i++ {
			edge[vs[i]] = true
			if i+1 < len(vs) && vs[i+1] > vs[i]+1 && g.chance(0.3) {
				el = append(el, fmt.Sprintf("%d-%d", vs[i], vs[i+1]))
				edge[vs[i+1]] = true
				i++
				continue
			}
			el = append(el, fmt.Sprint(vs[i]))
		}
		if len(el) == 1 {
			return el[0]
		}
		return "{ " + strings.Join(el, ", ") + " }"
	}
}

// neg makes a comparison value negated at times ("!= " before it; not
// for relational operators, which have no negated form).
func (g *rgen) neg(v string, p float64) string {
	if strings.HasPrefix(v, "<") || strings.HasPrefix(v, ">") || !g.chance(p) {
		return v
	}
	return "!= " + v
}

var tcpFlagWords = []string{"fin", "syn", "rst", "psh", "ack", "urg"}

// cond is one condition for a rule of network family fam (4, 6, or 0:
// either) and transport l4 (tcp, udp, th: tcp or udp, icmp, or "").
func (g *rgen) cond(fam int, l4 string) string {
	ip, ttl := "ip", "ip ttl"
	if fam == 6 {
		ip, ttl = "ip6", "ip6 hoplimit"
	}
	for {
		switch g.r.IntN(16) {
		case 0, 1, 2: // addresses
			if fam == 0 {
				continue
			}
			dir := pickOne(g, []string{"saddr", "daddr"})
			if g.chance(0.2) {
				set := "@nets4"
				if fam == 6 {
					set = "@nets6"
				}
				return fmt.Sprintf("%s %s %s", ip, dir, g.neg(set, 0.3))
			}
			return fmt.Sprintf("%s %s %s", ip, dir, g.neg(g.addrValue(fam == 6), 0.25))
		case 3: // TTL, hop limit
			if fam == 0 {
				continue
			}
			lo := pickOne(g, []int{1, 2, 63, 64, 65, 127, 128, 254})
			v := fmt.Sprint(lo)
			switch g.r.IntN(4) {
			case 0:
				v = "!= " + v
			case 1:
				v = pickOne(g, []string{"< ", "> "}) + v
			case 2:
				v = fmt.Sprintf("%d-%d", lo, lo+1+g.r.IntN(255-lo))
			}
			return ttl + " " + v
		case 4, 5, 6: // ports
			switch l4 {
			case "tcp", "udp", "th":
				dir := "dport"
				src := g.chance(0.25)
				if src {
					dir = "sport"
				}
				return fmt.Sprintf("%s %s %s", l4, dir, g.neg(g.portValue(src, l4 != "th"), 0.2))
			}
		case 7: // concatenations
			if fam != 4 || (l4 != "tcp" && l4 != "udp") {
				continue
			}
			if g.chance(0.6) {
				return fmt.Sprintf("ip daddr . %s dport @pairs", l4)
			}
			var el []string
			for range 2 + g.r.IntN(2) {
				p := pickOne(g, g.dports)
				g.dedge[p] = true
				el = append(el, fmt.Sprintf("%s . %d", pickOne(g, slices.Concat(rrH2v4, rrRouters[:2])), p))
			}
			slices.Sort(el)
			el = slices.Compact(el)
			return fmt.Sprintf("ip daddr . %s dport { %s }", l4, strings.Join(el, ", "))
		case 8: // TCP flags
			if l4 != "tcp" {
				continue
			}
			switch g.r.IntN(5) {
			case 0:
				return "tcp flags " + pickOne(g, tcpFlagWords)
			case 1:
				return "tcp flags " + g.neg("== "+pickOne(g, []string{"syn", "ack", "rst", "fin | ack", "syn | ack", "psh | ack"}), 0)
			case 2:
				return "tcp flags != " + pickOne(g, []string{"syn", "ack", "syn | ack"})
			case 3:
				mask := distinct(g, tcpFlagWords, 2+g.r.IntN(2))
				val := distinct(g, mask, g.r.IntN(len(mask)))
				v := "0"
				if len(val) > 0 {
					v = strings.Join(val, " | ")
				}
				return fmt.Sprintf("tcp flags & (%s) == %s", strings.Join(mask, " | "), v)
			default:
				return "tcp flags { " + joinAny(distinct(g, []string{"syn", "ack", "rst", "fin | ack", "syn | ack", "psh | ack"}, 2)) + " }"
			}
		case 9: // ICMP
			if l4 != "icmp" {
				continue
			}
			if fam == 6 {
				types := []string{"echo-request", "echo-reply", "destination-unreachable", "time-exceeded"}
				if g.chance(0.3) {
					return "icmpv6 type { " + joinAny(distinct(g, types, 2)) + " }"
				}
				return "icmpv6 type " + g.neg(pickOne(g, types), 0.2)
			}
			types := []string{"echo-request", "echo-reply", "destination-unreachable", "time-exceeded"}
			switch g.r.IntN(5) {
			case 0:
				return "icmp type { " + joinAny(distinct(g, types, 2)) + " }"
			case 1:
				return "icmp code " + pickOne(g, []string{"port-unreachable", "net-unreachable", "0"})
			default:
				return "icmp type " + g.neg(pickOne(g, types), 0.2)
			}
		case 10: // length
			n := 40 + g.r.IntN(400)
			g.lengths = append(g.lengths, n)
			switch g.r.IntN(4) {
			case 0:
				return fmt.Sprintf("meta length %d-%d", n, n+g.r.IntN(200))
			case 1:
				return fmt.Sprintf("meta length != %d", n)
			default:
				return fmt.Sprintf("meta length %s %d", pickOne(g, []string{"<", ">", "<=", ">="}), n)
			}
		case 11: // mark
			m := pickOne(g, g.marks)
			switch g.r.IntN(4) {
			case 0:
				return fmt.Sprintf("meta mark != %#x", m)
			case 1:
				return "meta mark 1-3"
			default:
				return fmt.Sprintf("meta mark %#x", m)
			}
		case 13: // interfaces (at prerouting and input, no output one: oif 0, oifname "")
			switch g.r.IntN(6) {
			case 0:
				return "iifname " + g.neg(pickOne(g, []string{`"p1"`, `"p2"`, `"p*"`}), 0.3)
			case 1:
				return "iif " + g.neg(pickOne(g, []string{`"p1"`, `"p2"`}), 0.3)
			case 2:
				return "oif " + g.neg(pickOne(g, []string{`"p1"`, `"p2"`}), 0.4)
			case 3:
				return `oifname { "p1", "p2" }`
			case 4:
				return "meta pkttype " + g.neg("host", 0.3)
			default:
				return "oifname " + g.neg(pickOne(g, []string{`"p1"`, `"p2"`, `"p*"`}), 0.4)
			}
		case 14: // DSCP, and masks
			if fam == 0 {
				return fmt.Sprintf("meta mark & %#x == %#x", pickOne(g, []int{0x40, 0x3, 0xf0}), pickOne(g, []int{0, 0x2, 0x40}))
			}
			if g.chance(0.3) {
				dir := pickOne(g, []string{"saddr", "daddr"})
				if fam == 4 {
					return fmt.Sprintf("ip %s & 0.0.0.%d == 0.0.0.%d", dir, pickOne(g, []int{1, 3, 7, 255}), pickOne(g, []int{0, 1, 2, 3, 5}))
				}
				return fmt.Sprintf("ip6 %s & ::%x == ::%x", dir, pickOne(g, []int{1, 3, 7, 0xff}), pickOne(g, []int{0, 1, 2, 3, 5}))
			}
			d := []string{"cs0", "cs1", "ef", "af11", "cs6"}
			if g.chance(0.3) {
				return ip + " dscp { " + joinAny(distinct(g, d, 2)) + " }"
			}
			return ip + " dscp " + g.neg(pickOne(g, d), 0.3)
		case 15: // lengths of the IP header's own
			if fam == 4 {
				return fmt.Sprintf("ip length %s %d", pickOne(g, []string{"<", ">", ">="}), 40+g.r.IntN(400))
			}
			if fam == 6 {
				return fmt.Sprintf("ip6 length %s %d", pickOne(g, []string{"<", ">", ">="}), 20+g.r.IntN(400))
			}
		case 12: // protocols
			if l4 != "" {
				continue
			}
			switch {
			case fam == 4 && g.chance(0.5):
				return "ip protocol " + g.neg(pickOne(g, []string{"tcp", "udp", "icmp"}), 0.3)
			case fam == 6 && g.chance(0.5):
				return "ip6 nexthdr " + g.neg(pickOne(g, []string{"tcp", "udp", "ipv6-icmp"}), 0.3)
			case fam == 0 && g.chance(0.3):
				return "meta nfproto " + pickOne(g, []string{"ipv4", "ipv6"})
			case g.chance(0.3):
				return "meta l4proto { " + joinAny(distinct(g, []string{"tcp", "udp", "icmp", "ipv6-icmp"}, 2)) + " }"
			default:
				return "meta l4proto " + g.neg(pickOne(g, []string{"tcp", "udp", "icmp", "ipv6-icmp"}), 0.3)
			}
		}
	}
}

// rule is one rule of chain ch (base or the regular chain at index reg,
// -1 for a base chain).
func (g *rgen) rule(base bool, reg int) string {
	fam := pickOne(g, []int{4, 4, 4, 6, 6, 6, 0, 0})
	l4 := pickOne(g, []string{"tcp", "tcp", "tcp", "udp", "udp", "udp", "th", "icmp", "icmp", "", "", ""})
	if l4 == "icmp" && fam == 0 {
		fam = pickOne(g, []int{4, 6})
	}
	var parts []string
	switch l4 {
	case "th":
		parts = append(parts, "meta l4proto { tcp, udp }")
	case "icmp":
		if fam == 6 {
			parts = append(parts, "meta l4proto ipv6-icmp")
		} else {
			parts = append(parts, "meta l4proto icmp")
		}
	case "tcp", "udp":
		if g.chance(0.3) {
			parts = append(parts, "meta l4proto "+l4)
		}
	}
	// The verdict.
	var jumpable []string
	if reg < 0 {
		jumpable = g.regular
	} else {
		jumpable = g.regular[reg+1:]
	}
	v := ""
	for v == "" {
		switch x := g.r.IntN(100); {
		case x < 25:
			v = "-"
		case x < 38:
			v = "accept"
		case x < 52:
			v = "drop"
		case x < 56:
			v = "continue"
		case x < 62:
			if !base {
				v = "return"
			} else if g.chance(0.2) {
				v = "return" // in a base chain: the policy
			}
		case x < 72:
			if len(jumpable) > 0 {
				v = "jump " + pickOne(g, jumpable)
			}
		case x < 78:
			if len(jumpable) > 0 {
				v = "goto " + pickOne(g, jumpable)
			}
		case x < 84:
			if base && (l4 == "tcp" || l4 == "udp" || l4 == "th") {
				if g.chance(0.6) {
					v = fmt.Sprintf("%s dport vmap @vm", l4)
				} else {
					var el []string
					for _, p := range distinct(g, g.dports, 2+g.r.IntN(2)) {
						g.dedge[p] = true
						el = append(el, fmt.Sprintf("%d : %s", p, pickOne(g, append([]string{"accept", "drop", "continue"}, prefixAll("jump ", g.regular)...))))
					}
					v = fmt.Sprintf("%s dport vmap { %s }", l4, strings.Join(el, ", "))
				}
			}
		default:
			v = g.reject(fam, l4)
		}
	}
	// Terminal verdicts come with conditions enough that they stop only
	// some probes, so that the rules after them see packets too.
	nconds := g.r.IntN(4)
	switch {
	case v == "accept" || v == "drop" || v == "return" || strings.HasPrefix(v, "goto") || strings.HasPrefix(v, "reject"):
		nconds = 2 + g.r.IntN(2)
	case strings.Contains(v, "vmap"):
		nconds = g.r.IntN(2)
	}
	seen := map[string]bool{}
	for range nconds {
		c := g.cond(fam, l4)
		if !seen[c] {
			seen[c] = true
			parts = append(parts, c)
		}
	}
	// nft refuses a reject whose protocol a condition contradicts.
	all := strings.Join(parts, " ")
	if v == "reject with tcp reset" && l4 != "tcp" && (strings.Contains(all, "protocol") || strings.Contains(all, "nexthdr") || strings.Contains(all, "l4proto")) ||
		strings.HasPrefix(v, "reject with icmp") && strings.Contains(all, "nfproto") {
		v = "reject"
	}
	mark := ""
	if g.chance(0.12) {
		mark = fmt.Sprintf(" meta mark set %#x", pickOne(g, g.marks))
	}
	if v == "-" {
		v = ""
	}
	s := strings.Join(append(parts, "counter"), " ") + mark
	if v != "" {
		s += " " + v
	}
	return s
}

func prefixAll(p string, xs []string) []string {
	var out []string
	for _, x := range xs {
		out = append(out, p+x)
	}
	return out
}

// reject is a reject statement that fits the rule's context (or, at
// times, one whose implied protocol check nft adds).
func (g *rgen) reject(fam int, l4 string) string {
	x := g.r.IntN(10)
	switch {
	case x < 3 && (l4 == "tcp" || l4 == "" && g.chance(0.3)):
		return "reject with tcp reset"
	case x < 5 && (fam == 4 || fam == 0 && g.chance(0.3)):
		return "reject with icmp type " + pickOne(g, []string{"host-unreachable", "net-unreachable", "prot-unreachable", "port-unreachable", "net-prohibited", "host-prohibited", "admin-prohibited"})
	case x < 7 && (fam == 6 || fam == 0 && g.chance(0.3)):
		return "reject with icmpv6 type " + pickOne(g, []string{"no-route", "admin-prohibited", "addr-unreachable", "port-unreachable", "policy-fail", "reject-route"})
	case x < 9:
		return "reject with icmpx type " + pickOne(g, []string{"port-unreachable", "admin-prohibited", "no-route", "host-unreachable"})
	}
	return "reject"
}

// ruleset generates the file.
func (g *rgen) ruleset() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# random ruleset %d\ntable inet filter {\n", g.idx)
	// Named sets and the verdict map.
	g.portSet = distinct(g, g.dports, 3+g.r.IntN(3))
	slices.Sort(g.portSet)
	for _, p := range g.portSet {
		g.dedge[p] = true
	}
	fmt.Fprintf(&b, "\tset ports {\n\t\ttype inet_service\n\t\telements = { %s }\n\t}\n", joinAny(g.portSet))
	var pr []string
	for _, p := range distinct(g, g.dports, 3) {
		lo, hi := p, min(p+uint16(1+g.r.IntN(30)), 65535)
		pr = append(pr, fmt.Sprintf("%d-%d", lo, hi))
		g.dedge[lo-1], g.dedge[lo], g.dedge[hi], g.dedge[hi+1] = true, true, true, true
	}
	// Intervals must not overlap: keep those that do not.
	slices.SortFunc(pr, func(a, b string) int {
		x, _ := strconv.Atoi(strings.Split(a, "-")[0])
		y, _ := strconv.Atoi(strings.Split(b, "-")[0])
		return x - y
	})
	var prOK []string
	lastHi := -1
	for _, r := range pr {
		lohi := strings.Split(r, "-")
		lo, _ := strconv.Atoi(lohi[0])
		hi, _ := strconv.Atoi(lohi[1])
		if lo > lastHi+1 {
			prOK = append(prOK, r)
			lastHi = hi
		}
	}
	fmt.Fprintf(&b, "\tset portr {\n\t\ttype inet_service\n\t\tflags interval\n\t\telements = { %s }\n\t}\n", strings.Join(prOK, ", "))
	fmt.Fprintf(&b, "\tset nets4 {\n\t\ttype ipv4_addr\n\t\tflags interval\n\t\telements = { %s }\n\t}\n", joinAny(distinct(g, blocks4, 2+g.r.IntN(3))))
	fmt.Fprintf(&b, "\tset nets6 {\n\t\ttype ipv6_addr\n\t\tflags interval\n\t\telements = { %s }\n\t}\n", joinAny(distinct(g, blocks6, 2+g.r.IntN(3))))
	var pairs []string
	for range 3 + g.r.IntN(4) {
		p := pickOne(g, g.dports)
		g.dedge[p] = true
		pairs = append(pairs, fmt.Sprintf("%s . %d", pickOne(g, slices.Concat(rrH2v4, rrRouters[:2])), p))
	}
	slices.Sort(pairs)
	fmt.Fprintf(&b, "\tset pairs {\n\t\ttype ipv4_addr . inet_service\n\t\telements = { %s }\n\t}\n", strings.Join(slices.Compact(pairs), ", "))
	var vm []string
	verdicts := append([]string{"accept", "drop", "continue", "return"}, prefixAll("jump ", g.regular)...)
	verdicts = append(verdicts, prefixAll("goto ", g.regular)...)
	for _, p := range distinct(g, g.dports, 3+g.r.IntN(3)) {
		g.dedge[p] = true
		vm = append(vm, fmt.Sprintf("%d : %s", p, pickOne(g, verdicts)))
	}
	fmt.Fprintf(&b, "\tmap vm {\n\t\ttype inet_service : verdict\n\t\telements = { %s }\n\t}\n", strings.Join(vm, ", "))

	chain := func(name, head string, base bool, reg, lo, hi int, guard bool) {
		fmt.Fprintf(&b, "\tchain %s {\n", name)
		if head != "" {
			fmt.Fprintf(&b, "\t\t%s\n", head)
		}
		if guard {
			// Neighbour discovery and multicast come when they will:
			// accepted uncounted, before any rule could drop or count
			// them.
			b.WriteString("\t\tip6 daddr ff00::/8 accept\n\t\ticmpv6 type { nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert } accept\n")
		}
		for range lo + g.r.IntN(hi-lo+1) {
			fmt.Fprintf(&b, "\t\t%s\n", g.rule(base, reg))
		}
		if !base && g.chance(0.3) {
			b.WriteString("\t\tcounter return\n")
		}
		b.WriteString("\t}\n")
	}
	for i := len(g.regular) - 1; i >= 0; i-- {
		chain(g.regular[i], "", false, i, 3, 8, false)
	}
	policy := func(pDrop float64) string {
		if g.chance(pDrop) {
			return "drop"
		}
		return "accept"
	}
	chain("pre", "type filter hook prerouting priority -150; policy accept;", true, -1, 2, 6, true)
	chain("in", "type filter hook input priority 0; policy "+policy(0.25)+";", true, -1, 2, 6, true)
	chain("forward", "type filter hook forward priority 0; policy "+policy(0.4)+";", true, -1, 8, 25, false)
	if g.chance(0.3) {
		chain("forward_late", "type filter hook forward priority 10; policy "+policy(0.3)+";", true, -1, 2, 5, false)
	}
	b.WriteString("}\n")
	return b.String()
}

// probes generates n probes whose flows are distinct.
func (g *rgen) probes(n int) []rprobe {
	edges := func(m map[uint16]bool) []uint16 {
		var out []uint16
		for p := range m {
			out = append(out, p)
		}
		slices.Sort(out) // map order is random: sort for a reproducible draw
		return out
	}
	de, se := edges(g.dedge), edges(g.sedge)
	seen := make(map[string]bool)
	var out []rprobe
	for i := 0; len(out) < n; i++ {
		p := rprobe{n: len(out), v6: g.chance(0.4), ttl: 64}
		src, dst := rrH1v4, slices.Concat(rrH2v4, rrH2v4, rrRouters[:2])
		if p.v6 {
			src, dst = rrH1v6, slices.Concat(rrH2v6, rrH2v6, rrRouters[2:])
		}
		p.src, p.dst = pickOne(g, src), pickOne(g, dst)
		switch x := g.r.IntN(100); {
		case x < 12:
			p.ttl = 1
		case x < 30:
			p.ttl = pickOne(g, []uint8{2, 3, 63, 65, 128, 255})
		}
		switch x := g.r.IntN(100); {
		case x < 40:
			p.kind = "udp"
		case x < 78:
			p.kind = "tcp"
		case x < 94:
			p.kind = "echo"
		default:
			p.kind = "error"
			if slices.Contains(rrRouters, p.dst) {
				p.dst = pickOne(g, rrH2v4)
				if p.v6 {
					p.dst = pickOne(g, rrH2v6)
				}
			}
		}
		switch x := g.r.IntN(100); {
		case x < 55 && len(de) > 0:
			p.dport = pickOne(g, de)
		case x < 90:
			p.dport = pickOne(g, g.dports)
		default:
			p.dport = uint16(1 + g.r.IntN(65535))
		}
		switch x := g.r.IntN(100); {
		case x < 30 && len(se) > 0:
			p.sport = pickOne(g, se)
		case x < 60:
			p.sport = pickOne(g, g.sports)
		default:
			p.sport = uint16(40000 + g.r.IntN(1000))
		}
		if p.kind == "tcp" {
			p.flags = pickOne(g, []uint8{0x02, 0x02, 0x02, 0x12, 0x10, 0x18, 0x11, 0x04, 0x14, 0x00, 0x29, uint8(g.r.IntN(64))})
		}
		p.payload = g.r.IntN(360)
		if len(g.lengths) > 0 && g.chance(0.4) {
			// Near a length a rule compares with.
			hdr := 20 + 8
			if p.v6 {
				hdr = 40 + 8
			}
			if p.kind == "tcp" {
				hdr += 12
			}
			p.payload = max(0, pickOne(g, g.lengths)-hdr+g.r.IntN(3)-1)
		}
		if p.kind == "tcp" && p.flags&0x04 != 0 {
			p.payload = 0
		}
		if g.chance(0.3) {
			p.tos = pickOne(g, []uint8{0x20, 0xb8, 0x28, 0xc0, 0x01, 0x10})
		}
		p.opts = g.chance(0.08)
		for seen[p.key()] {
			p.sport = uint16(41000 + g.r.IntN(20000))
		}
		seen[p.key()] = true
		out = append(out, p)
	}
	return out
}
