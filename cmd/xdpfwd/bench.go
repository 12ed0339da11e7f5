package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/xdpfwd/xdpfwd/internal/control"
	"github.com/xdpfwd/xdpfwd/internal/pktgen"
	"github.com/xdpfwd/xdpfwd/internal/topo"
)

func benchCmd(args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	duration := fs.Duration("duration", 10*time.Second, "how long each run drives traffic (each peak run and each paced run)")
	size := fs.Int("size", 60, "Ethernet frame size without FCS (60 = 64 bytes on the wire)")
	flows := fs.Int("flows", 1, "UDP flows (source ports)")
	xdpMode := fs.String("xdp-mode", "auto", "XDP mode of xdpfwd's ports: auto, native or generic")
	rate := fs.Float64("rate", 0, "offered packets per second for a single run per path (0: peak runs, then the paced runs of --paced)")
	paced := fs.String("paced", "10,25,50,90", "after the peak runs, paced runs at these percentages of each path's peak, on both paths (empty: none)")
	only := fs.String("only", "", `run one path alone ("kernel" or "xdpfwd"), e.g. under perf`)
	routed := fs.Bool("routed", false, "route between two subnets (kernel router vs xdpfwd's router) instead of bridging")
	rulesFlag := fs.String("rules", "", "the rules case: for each of these counts N (e.g. 0,100,1000,10000), routed peak runs through N forward-chain rules the traffic does not match, then one that counts and accepts it (implies --routed; no paced runs)")
	natFlag := fs.Bool("nat", false, "with --rules: the ruleset also masquerades the traffic out of p2, so both routers track connections and translate every packet")
	plotFile := fs.String("plot", "", "draw the results into this .svg or .png file: with --rules, delivered pps and CPU per packet against N; otherwise against the offered load of every run")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("bench: unexpected argument %q", fs.Arg(0))
	}
	percents, err := parsePercents(*paced)
	if err != nil {
		return err
	}
	var ruleCounts []int
	if *rulesFlag != "" {
		if ruleCounts, err = parseRuleCounts(*rulesFlag); err != nil {
			return err
		}
		explicit := false
		fs.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "paced" })
		if explicit {
			return errors.New("--rules makes peak runs only (or --rate runs): --paced does not go with it")
		}
		*routed = true
	}
	if *natFlag && ruleCounts == nil {
		return errors.New("--nat goes with --rules (e.g. --rules 0 --nat)")
	}
	if *plotFile != "" {
		if _, err := plotFormat(*plotFile); err != nil {
			return err
		}
	}
	if *duration <= 0 {
		return fmt.Errorf("--duration %s: must be positive", *duration)
	}
	if os.Geteuid() != 0 {
		return errors.New("bench builds network namespaces and attaches XDP programs: run it as root")
	}
	signal.Ignore(syscall.SIGPIPE) // as the demo: tear down even when the reader went away
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	fmt.Printf("xdpfwd bench: %d-byte UDP frames (%d on the wire), %d flow(s), h1 -> h2 for %s per run\n",
		*size, *size+4, *flows, *duration)
	fmt.Println("generator: xdpfwd's own AF_XDP TX generator in h1 (frames built once; only descriptors move); offered = frames the kernel sent")
	fmt.Println("delivered: UDP datagrams h2's stack received (InDatagrams + RcvbufErrors); CPU: all cores, busy time from /proc/stat")
	paths := []string{"kernel bridge", "xdpfwd"}
	if *routed {
		paths = []string{"kernel router", "xdpfwd router"}
	}
	switch *only {
	case "":
	case "kernel":
		paths = paths[:1]
	case "xdpfwd":
		paths = paths[1:]
	default:
		return fmt.Errorf("--only %q: want kernel or xdpfwd", *only)
	}
	o := benchOpts{duration: *duration, size: *size, flows: *flows, xdpMode: *xdpMode, rate: *rate, routed: *routed, nat: *natFlag}
	if ruleCounts != nil {
		return benchRules(ctx, paths, o, ruleCounts, *plotFile)
	}
	if *rate > 0 {
		fmt.Printf("\n-- offered load: %.0f pps\n", *rate)
	} else {
		fmt.Println("\n-- offered load: as fast as the generator sends")
	}
	peak, err := benchPaths(ctx, paths, o)
	if err != nil {
		return err
	}
	runs := peak
	if len(peak) == 2 && *rate == 0 {
		k, x := peak[0], peak[1]
		fmt.Printf("xdpfwd / kernel: delivered pps x%.2f, CPU per delivered packet x%.2f\n",
			x.deliveredPPS()/k.deliveredPPS(), x.cpuPerMillion()/k.cpuPerMillion())
		if len(percents) > 0 {
			more, err := benchPaced(ctx, paths, o, peak, percents)
			if err != nil {
				return err
			}
			runs = append(runs, more...)
		}
	}
	if *plotFile == "" {
		return nil
	}
	if err := writePlot(*plotFile, loadCharts(o.subtitle(), paths, runs)); err != nil {
		return err
	}
	fmt.Printf("\nplot: %s\n", *plotFile)
	return nil
}

// parsePercents parses --paced: a comma-separated list of percentages in
// (0, 100].
func parsePercents(s string) ([]float64, error) {
	var out []float64
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		v, err := strconv.ParseFloat(f, 64)
		if err != nil || v <= 0 || v > 100 {
			return nil, fmt.Errorf("--paced %q: %q is not a percentage in (0, 100]", s, f)
		}
		out = append(out, v)
	}
	return out, nil
}

// pacedLoad is one paced run: a percentage of one path's peak.
type pacedLoad struct {
	percent float64
	of      string // the path whose peak it is a share of
	rate    float64
}

// benchPaced drives both paths at fixed rates, percentages of each path's
// delivered peak, and prints a row per rate with both paths side by side:
// what each was offered, delivered and lost, and its CPU per packet. It
// returns every run.
func benchPaced(ctx context.Context, paths []string, o benchOpts, peak []benchResult, percents []float64) ([]benchResult, error) {
	var loads []pacedLoad
	for _, p := range peak {
		for _, pc := range percents {
			loads = append(loads, pacedLoad{percent: pc, of: p.path, rate: pc / 100 * p.deliveredPPS()})
		}
	}
	slices.SortStableFunc(loads, func(a, b pacedLoad) int { return cmp.Compare(a.rate, b.rate) })
	fmt.Printf("\n-- paced runs: %d rates x %d paths, %s each; lost = offered - delivered\n", len(loads), len(paths), o.duration)
	var rows []string
	var runs []benchResult
	header := fmt.Sprintf("%-22s %11s", "load", "target pps")
	for _, p := range paths {
		header += fmt.Sprintf(" | %-13s %11s %11s %9s %8s %9s %9s", p, "offered pps", "deliv pps", "deliv/off", "loss %", "lost", "CPU ms/M")
	}
	for _, l := range loads {
		o.rate = l.rate
		label := fmt.Sprintf("%g%% %s peak", l.percent, shortPath(l.of))
		row := fmt.Sprintf("%-22s %11.0f", label, l.rate)
		for _, path := range paths {
			r, err := benchPath(ctx, path, o)
			if err != nil {
				return nil, fmt.Errorf("%s at %.0f pps: %w", path, l.rate, err)
			}
			runs = append(runs, r)
			row += fmt.Sprintf(" | %-13s %11.0f %11.0f %9.5f %8.3f %9d %9.1f", r.path, r.offeredPPS(), r.deliveredPPS(),
				r.deliveredRatio(), r.lossPercent(), r.lost(), r.cpuPerMillion())
		}
		rows = append(rows, row)
	}
	// The table is printed whole at the end, after the runs' own lines.
	fmt.Println("\nloss at paced rates (" + o.duration.String() + " per run):")
	fmt.Println(header)
	for _, r := range rows {
		fmt.Println(r)
	}
	return runs, nil
}

// shortPath names a path in a load label.
func shortPath(path string) string {
	switch path {
	case "kernel bridge", "kernel router":
		return "kernel"
	case "xdpfwd router":
		return "xdpfwd"
	}
	return path
}

type benchOpts struct {
	duration    time.Duration
	size, flows int
	xdpMode     string
	rate        float64
	// routed puts h1 and h2 on two subnets, 10.1.0.0/24 and
	// 10.2.0.0/24, with the router at .1 of each.
	routed bool
	// ruleset, when set, is the nft file (writeBenchRuleset's, with
	// rules filler rules) that both routers filter with: the kernel
	// router loads it with nft -f, xdpfwd names it in its config
	// (ruleset:). After each run the bench checks its counting rule.
	ruleset string
	rules   int
	// nat adds masquerading to the ruleset (--nat).
	nat bool
}

// subtitle describes o's runs in a plot's titles.
func (o benchOpts) subtitle() string {
	s := "bridged"
	if o.routed {
		s = "routed"
	}
	s += fmt.Sprintf(", %d-byte UDP, %s runs", o.size+4, o.duration)
	if o.rate > 0 {
		s += fmt.Sprintf(" at %.0f pps", o.rate)
	}
	return s
}

// benchPaths runs every path with the same options and prints a table.
func benchPaths(ctx context.Context, paths []string, o benchOpts) ([]benchResult, error) {
	var results []benchResult
	for _, path := range paths {
		r, err := benchPath(ctx, path, o)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		results = append(results, r)
	}
	fmt.Printf("%-14s %14s %14s %9s %12s %18s\n", "path", "offered pps", "delivered pps", "loss %", "CPU busy", "CPU ms / M pkts")
	for _, r := range results {
		fmt.Printf("%-14s %14.0f %14.0f %9.3f %11.2fs %18.1f\n", r.path, r.offeredPPS(), r.deliveredPPS(), r.lossPercent(), r.cpu.Seconds(), r.cpuPerMillion())
	}
	return results, nil
}

type benchResult struct {
	path            string
	sent, delivered uint64
	elapsed, cpu    time.Duration
	// counted is what the ruleset's counting rule counted (with
	// benchOpts.ruleset).
	counted uint64
}

func (r benchResult) offeredPPS() float64   { return float64(r.sent) / r.elapsed.Seconds() }
func (r benchResult) deliveredPPS() float64 { return float64(r.delivered) / r.elapsed.Seconds() }
func (r benchResult) cpuPerMillion() float64 {
	return float64(r.cpu.Milliseconds()) / float64(max(r.delivered, 1)) * 1e6
}

// lost is the frames offered and not delivered. It is never negative:
// benchPath fails a run where h2 received more of the flow's datagrams
// than were sent (an error in the counting).
func (r benchResult) lost() int64 { return int64(r.sent) - int64(r.delivered) }

// deliveredRatio is delivered / offered.
func (r benchResult) deliveredRatio() float64 { return float64(r.delivered) / float64(max(r.sent, 1)) }

// lossPercent is lost / offered in percent.
func (r benchResult) lossPercent() float64 { return 100 * float64(r.lost()) / float64(max(r.sent, 1)) }

// benchPath builds two hosts joined by path, drives them and tears them down.
func benchPath(ctx context.Context, path string, o benchOpts) (res benchResult, err error) {
	runtime.LockOSThread() // the daemon's parent-death signal follows this thread (startDaemon)
	defer runtime.UnlockOSThread()
	res.path = path
	var dm *daemonProc
	t := topo.New("xdpbench")
	defer func() { err = errors.Join(err, t.Close()) }()
	star, err := t.Star(make([]topo.VethOptions, 2))
	if err != nil {
		return res, err
	}
	h1, h2 := star.Hosts[0], star.Hosts[1]
	dstMAC := h2.HWAddr
	if o.routed {
		if h1, h2, err = routedHosts(ctx, star); err != nil {
			return res, err
		}
		if dstMAC, err = star.Switch.MAC("p1"); err != nil {
			return res, err
		}
	}
	switch path {
	case "kernel router":
		for _, c := range [][]string{
			{"sysctl", "-qw", "net.ipv4.ip_forward=1"},
			{"ip", "addr", "add", "10.1.0.1/24", "dev", "p1"},
			{"ip", "addr", "add", "10.2.0.1/24", "dev", "p2"},
		} {
			if out, cerr := star.Switch.Command(ctx, c[0], c[1:]...).CombinedOutput(); cerr != nil {
				return res, fmt.Errorf("%s: %v\n%s", strings.Join(c, " "), cerr, out)
			}
		}
		if o.ruleset != "" {
			if out, cerr := star.Switch.Command(ctx, "nft", "-f", o.ruleset).CombinedOutput(); cerr != nil {
				return res, fmt.Errorf("nft -f %s: %v\n%s", o.ruleset, cerr, out)
			}
		}
	case "kernel bridge":
		err = star.Switch.Do(func() error {
			br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "br0"}}
			if err := netlink.LinkAdd(br); err != nil {
				return fmt.Errorf("add bridge: %w", err)
			}
			for _, h := range star.Hosts {
				l, err := netlink.LinkByName(h.Port)
				if err != nil {
					return err
				}
				if err := netlink.LinkSetMaster(l, br); err != nil {
					return fmt.Errorf("enslave %s: %w", h.Port, err)
				}
			}
			return netlink.LinkSetUp(br)
		})
	default:
		var dir string
		if dir, err = os.MkdirTemp("", "xdpfwd-bench-"); err != nil {
			return res, err
		}
		defer os.RemoveAll(dir)
		config := fmt.Sprintf("ports:\n  - interface: p1\n    xdp_mode: %[1]s\n  - interface: p2\n    xdp_mode: %[1]s\n", o.xdpMode)
		if o.routed {
			config += "router:\n  interfaces:\n    - name: p1\n      addresses: [10.1.0.1/24]\n    - name: p2\n      addresses: [10.2.0.1/24]\n"
		} else {
			config += "bridges:\n  - name: br0\n    ports: [p1, p2]\n"
		}
		if o.ruleset != "" {
			config += fmt.Sprintf("ruleset: %s\n", strconv.Quote(o.ruleset))
		}
		if cpu := workerCPU(); cpu > 0 {
			config += fmt.Sprintf("options:\n  worker_cpus: [%d]\n", cpu)
		}
		dm, err = startDaemon(ctx, star.Switch, dir, []byte(config))
		if err != nil {
			return res, err
		}
		defer dm.stop()
	}
	if err != nil {
		return res, err
	}
	// Both bridges learn both MACs before the measurement.
	if out, err := h1.Command(ctx, "ping", "-c", "2", "-i", "0.2", "-W", "1", h2.IP.String()).CombinedOutput(); err != nil {
		return res, fmt.Errorf("warm-up ping: %v\n%s", err, out)
	}
	// The datagrams go to a socket that is read only after the run: the
	// receiver's stack drops them at the socket without answering with
	// ICMP, and counts them.
	var sink *net.UDPConn
	if err := h2.Do(func() (err error) {
		sink, err = net.ListenUDP("udp4", &net.UDPAddr{IP: h2.IP.AsSlice(), Port: 9})
		return err
	}); err != nil {
		return res, err
	}
	defer sink.Close()

	cfg := pktgen.Config{SrcMAC: h1.HWAddr, DstMAC: dstMAC,
		Src: netip.AddrPortFrom(h1.IP, 10000), Dst: netip.AddrPortFrom(h2.IP, 9),
		Size: o.size, Flows: o.flows, Duration: o.duration, Rate: o.rate}
	rx0, err := udpReceived(h2)
	if err != nil {
		return res, err
	}
	cpu0, err := cpuBusy()
	if err != nil {
		return res, err
	}
	var gr pktgen.Result
	err = h1.Do(func() error {
		ifc, err := net.InterfaceByName(topo.HostIf)
		if err != nil {
			return err
		}
		cfg.Ifindex = ifc.Index
		// The generator on CPU 0, on both paths; xdpfwd's worker on
		// another (workerCPU), as a deployment would place them.
		restore, err := pinThread(0)
		if err != nil {
			return err
		}
		defer restore()
		gr, err = pktgen.Run(ctx, cfg)
		return err
	})
	if err != nil {
		return res, err
	}
	time.Sleep(100 * time.Millisecond) // let the last frames land
	cpu1, err := cpuBusy()
	if err != nil {
		return res, err
	}
	// InDatagrams counts a datagram when it is read: read what the sink
	// holds, so that it counts.
	if err := drain(sink); err != nil {
		return res, err
	}
	rx1, err := udpReceived(h2)
	if err != nil {
		return res, err
	}
	res.sent, res.delivered, res.elapsed, res.cpu = gr.Sent, rx1-rx0, gr.Elapsed, cpu1-cpu0
	fmt.Printf("  %-14s sent %d, delivered %d, generator behind schedule by %d (namespaces %s-*)\n", path, res.sent, res.delivered, gr.Behind, t.Prefix())
	if res.delivered > res.sent {
		return res, fmt.Errorf("%s: h2 received %d datagrams of the flow but only %d were sent: the counting is wrong", path, res.delivered, res.sent)
	}
	if dm != nil {
		// Where the frames that did not arrive went.
		var st control.Stats
		if err := control.Call(dm.control, "stats", nil, &st); err != nil {
			return res, err
		}
		for _, p := range st.Ports {
			fmt.Printf("    %s: rx %d tx %d, xdp redirected %d, xsk rx_dropped %d rx_ring_full %d fill_ring_empty %d, drops %v\n",
				p.Name, p.RxPackets, p.TxPackets, p.XDP.Redirected, p.XSK.RxDropped, p.XSK.RxRingFull, p.XSK.RxFillRingEmptyDescs, nonZero(p.Drops))
		}
	}
	if o.ruleset != "" {
		// The counting rule must have seen what was delivered: a
		// path that bypassed the rules fails here.
		var c chainCount
		if dm != nil {
			var lines []string
			if err := control.Call(dm.control, "rules", nil, &lines); err != nil {
				return res, fmt.Errorf("xdpfwd rules: %w", err)
			}
			c, err = rulesVerbCount(lines)
		} else {
			out, cerr := star.Switch.Command(ctx, "nft", "-j", "list", "ruleset").Output()
			if cerr != nil {
				return res, fmt.Errorf("nft -j list ruleset: %w", cerr)
			}
			c, err = nftJSONCount(out)
		}
		if err != nil {
			return res, err
		}
		res.counted = c.packets
		fmt.Printf("    %d rules in %s %s %s; the counting rule counted %d packets, %d bytes (delivered %d)\n",
			c.rules, benchRuleFamily, benchRuleTable, benchRuleChain, c.packets, c.bytes, res.delivered)
		if err := checkRuleCount(path, o.rules, c, res.sent, res.delivered); err != nil {
			return res, err
		}
	}
	return res, nil
}

// routedHosts moves the star's two hosts onto two subnets, 10.1.0.2/24
// and 10.2.0.2/24, with default routes via .1, and returns them with
// their new addresses.
func routedHosts(ctx context.Context, s *topo.Star) (h1, h2 *topo.Host, err error) {
	var hs []*topo.Host
	for _, h := range s.Hosts[:2] {
		i := h.Index
		for _, c := range [][]string{
			{"ip", "addr", "flush", "dev", topo.HostIf},
			{"ip", "addr", "add", fmt.Sprintf("10.%d.0.2/24", i), "dev", topo.HostIf},
			{"ip", "route", "add", "default", "via", fmt.Sprintf("10.%d.0.1", i)},
		} {
			if out, err := h.Command(ctx, c[0], c[1:]...).CombinedOutput(); err != nil {
				return nil, nil, fmt.Errorf("%s in %s: %v\n%s", strings.Join(c, " "), h.Name(), err, out)
			}
		}
		c := *h
		c.IP = netip.AddrFrom4([4]byte{10, byte(i), 0, 2})
		hs = append(hs, &c)
	}
	return hs[0], hs[1], nil
}

// drain reads every datagram queued on c.
func drain(c *net.UDPConn) error {
	buf := make([]byte, 1<<16)
	for {
		if err := c.SetReadDeadline(time.Now().Add(20 * time.Millisecond)); err != nil {
			return err
		}
		if _, _, err := c.ReadFromUDP(buf); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return nil
			}
			return fmt.Errorf("read the sink socket: %w", err)
		}
	}
}

// udpReceived is the number of UDP datagrams h's stack has received for a
// socket, from its namespace's /proc/net/snmp: InDatagrams (read by the
// socket's reader: the bench drains the sink before it counts) plus
// RcvbufErrors (dropped because the sink was full). Only the
// generator sends UDP to h, so unlike the interface's rx_packets it counts
// no ARP or IPv6 neighbour traffic, and a frame with a bad checksum
// (InCsumErrors) does not count as delivered.
func udpReceived(h *topo.Host) (n uint64, err error) {
	err = h.Do(func() error {
		// thread-self: /proc/self/net is the namespace of the process's
		// main thread, not of this one.
		data, err := os.ReadFile("/proc/thread-self/net/snmp")
		if err != nil {
			return err
		}
		n, err = snmpUDPReceived(string(data))
		return err
	})
	return n, err
}

// snmpUDPReceived parses the Udp lines of /proc/net/snmp and returns
// InDatagrams + RcvbufErrors.
func snmpUDPReceived(snmp string) (uint64, error) {
	var names, values []string
	for line := range strings.Lines(snmp) {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "Udp:" {
			continue
		}
		if names == nil {
			names = f
		} else {
			values = f
		}
	}
	if len(names) == 0 || len(names) != len(values) {
		return 0, errors.New("/proc/net/snmp: no Udp counters")
	}
	var sum uint64
	for _, want := range []string{"InDatagrams", "RcvbufErrors"} {
		i := slices.Index(names, want)
		if i < 0 {
			return 0, fmt.Errorf("/proc/net/snmp: no Udp %s counter", want)
		}
		v, err := strconv.ParseUint(values[i], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/net/snmp: Udp %s: %w", want, err)
		}
		sum += v
	}
	return sum, nil
}

func nonZero(m map[string]uint64) map[string]uint64 {
	out := make(map[string]uint64)
	for k, v := range m {
		if v > 0 {
			out[k] = v
		}
	}
	return out
}

// cpuBusy is the time all CPUs together spent not idle, from /proc/stat.
func cpuBusy() (time.Duration, error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	var busy uint64
	for i, v := range f[1:] {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat: %w", err)
		}
		// user nice system idle iowait irq softirq steal guest guest_nice:
		// the first three and irq and softirq are work done here; idle and
		// iowait are not, steal is the hypervisor running someone else, and
		// guest time is already in user.
		if i <= 2 || i == 5 || i == 6 {
			busy += n
		}
	}
	const userHZ = 100 // USER_HZ, fixed at 100 on Linux
	return time.Duration(busy) * time.Second / userHZ, nil
}

// workerCPU is the CPU the bench pins xdpfwd's worker to: the last one
// this process may use, apart from CPU 0 where the generator runs; 0 if
// there is no other (the worker is then not pinned).
func workerCPU() int {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return 0
	}
	for c := 1023; c > 0; c-- {
		if set.IsSet(c) {
			return c
		}
	}
	return 0
}

// pinThread pins the calling (locked) thread to cpu and returns what
// restores its former CPU set.
func pinThread(cpu int) (restore func(), err error) {
	var old, set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		return nil, fmt.Errorf("read the generator thread's CPUs: %w", err)
	}
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return nil, fmt.Errorf("pin the generator to CPU %d: %w", cpu, err)
	}
	return func() { _ = unix.SchedSetaffinity(0, &old) }, nil
}
