package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/xdpfwd/xdpfwd/internal/control"
	"github.com/xdpfwd/xdpfwd/internal/pktgen"
	"github.com/xdpfwd/xdpfwd/internal/topo"
)

func benchCmd(args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	duration := fs.Duration("duration", 5*time.Second, "how long each path is driven")
	size := fs.Int("size", 60, "Ethernet frame size without FCS (60 = 64 bytes on the wire)")
	flows := fs.Int("flows", 1, "UDP flows (source ports)")
	xdpMode := fs.String("xdp-mode", "auto", "XDP mode of xdpfwd's ports: auto, native or generic")
	rate := fs.Float64("rate", 0, "offered packets per second (0: as fast as the generator sends, then again at 90% of the slower path's peak)")
	only := fs.String("only", "", `run one path alone ("kernel" or "xdpfwd"), e.g. under perf`)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return errors.New("bench builds network namespaces and attaches XDP programs: run it as root")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	fmt.Printf("xdpfwd bench: %d-byte UDP frames (%d on the wire), %d flow(s), h1 -> h2 for %s per run\n",
		*size, *size+4, *flows, *duration)
	fmt.Println("generator: xdpfwd's own AF_XDP TX generator in h1 (frames built once; only descriptors move)")
	fmt.Println("delivered: h2 eth0 rx_packets; CPU: all cores, busy time from /proc/stat")
	paths := []string{"kernel bridge", "xdpfwd"}
	switch *only {
	case "":
	case "kernel":
		paths = paths[:1]
	case "xdpfwd":
		paths = paths[1:]
	default:
		return fmt.Errorf("--only %q: want kernel or xdpfwd", *only)
	}
	o := benchOpts{duration: *duration, size: *size, flows: *flows, xdpMode: *xdpMode, rate: *rate}
	fmt.Println("\n-- offered load: as fast as the generator sends")
	peak, err := benchPaths(ctx, paths, o)
	if err != nil {
		return err
	}
	if len(peak) < 2 || *rate > 0 {
		return nil
	}
	k, x := peak[0], peak[1]
	fmt.Printf("xdpfwd / kernel: delivered pps x%.2f, CPU per delivered packet x%.2f\n",
		x.deliveredPPS()/k.deliveredPPS(), x.cpuPerMillion()/k.cpuPerMillion())

	// At saturation every path burns whole cores and drops the excess, so
	// CPU per packet is compared again at one load both paths carry.
	o.rate = 0.9 * min(k.deliveredPPS(), x.deliveredPPS())
	fmt.Printf("\n-- offered load: %.0f pps on both paths (90%% of the slower one's peak)\n", o.rate)
	equal, err := benchPaths(ctx, paths, o)
	if err != nil {
		return err
	}
	k, x = equal[0], equal[1]
	fmt.Printf("xdpfwd / kernel: delivered pps x%.2f, CPU per delivered packet x%.2f\n",
		x.deliveredPPS()/k.deliveredPPS(), x.cpuPerMillion()/k.cpuPerMillion())
	return nil
}

type benchOpts struct {
	duration    time.Duration
	size, flows int
	xdpMode     string
	rate        float64
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
	fmt.Printf("%-14s %14s %14s %12s %18s\n", "path", "offered pps", "delivered pps", "CPU busy", "CPU ms / M pkts")
	for _, r := range results {
		fmt.Printf("%-14s %14.0f %14.0f %11.2fs %18.1f\n", r.path, r.offeredPPS(), r.deliveredPPS(), r.cpu.Seconds(), r.cpuPerMillion())
	}
	return results, nil
}

type benchResult struct {
	path            string
	sent, delivered uint64
	elapsed, cpu    time.Duration
}

func (r benchResult) offeredPPS() float64   { return float64(r.sent) / r.elapsed.Seconds() }
func (r benchResult) deliveredPPS() float64 { return float64(r.delivered) / r.elapsed.Seconds() }
func (r benchResult) cpuPerMillion() float64 {
	return float64(r.cpu.Milliseconds()) / float64(max(r.delivered, 1)) * 1e6
}

// benchPath builds two hosts joined by path, drives them and tears them down.
func benchPath(ctx context.Context, path string, o benchOpts) (res benchResult, err error) {
	res.path = path
	var dm *daemonProc
	t := topo.New("xdpbench")
	defer func() { err = errors.Join(err, t.Close()) }()
	star, err := t.Star(make([]topo.VethOptions, 2))
	if err != nil {
		return res, err
	}
	h1, h2 := star.Hosts[0], star.Hosts[1]
	switch path {
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
		dm, err = startDaemon(ctx, star.Switch, dir, []byte(fmt.Sprintf("ports:\n  - interface: p1\n    xdp_mode: %[1]s\n  - interface: p2\n    xdp_mode: %[1]s\nbridges:\n  - name: br0\n    ports: [p1, p2]\n", o.xdpMode)))
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
	// The datagrams go to a socket that is never read: the receiver's stack
	// drops them at the socket without answering with ICMP.
	var sink *net.UDPConn
	if err := h2.Do(func() (err error) {
		sink, err = net.ListenUDP("udp4", &net.UDPAddr{IP: h2.IP.AsSlice(), Port: 9})
		return err
	}); err != nil {
		return res, err
	}
	defer sink.Close()

	cfg := pktgen.Config{SrcMAC: h1.HWAddr, DstMAC: h2.HWAddr,
		Src: netip.AddrPortFrom(h1.IP, 10000), Dst: netip.AddrPortFrom(h2.IP, 9),
		Size: o.size, Flows: o.flows, Duration: o.duration, Rate: o.rate}
	rx0, _, err := h2.LinkStats(topo.HostIf)
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
	rx1, _, err := h2.LinkStats(topo.HostIf)
	if err != nil {
		return res, err
	}
	res.sent, res.delivered, res.elapsed, res.cpu = gr.Sent, rx1-rx0, gr.Elapsed, cpu1-cpu0
	fmt.Printf("  %-14s sent %d, delivered %d (namespaces %s-*)\n", path, res.sent, res.delivered, t.Prefix())
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
	return res, nil
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
