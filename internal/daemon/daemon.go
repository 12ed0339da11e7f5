// Package daemon assembles a running dataplane from a configuration: it
// attaches the XDP program to every port, opens an AF_XDP socket on every
// port queue, hands them to fastpath workers (one per queue index, all of a
// worker's sockets on one UMEM) and answers the control socket. Close takes
// it all down again, in the reverse order.
package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/xdpfwd/xdpfwd/bpf"
	"github.com/xdpfwd/xdpfwd/fastpath"
	"github.com/xdpfwd/xdpfwd/fastpath/header"
	"github.com/xdpfwd/xdpfwd/internal/config"
	"github.com/xdpfwd/xdpfwd/internal/control"
	"github.com/xdpfwd/xdpfwd/xdp"
)

// xdpPacketHeadroom is the kernel's XDP_PACKET_HEADROOM: in copy mode a
// received frame starts this far into its chunk.
const xdpPacketHeadroom = 256

// Daemon is a running dataplane.
type Daemon struct {
	cfg     *config.Config
	log     *slog.Logger
	version string

	ports   []*port
	bridges *fastpath.Bridges
	workers []*worker
	wg      sync.WaitGroup // workers and the sweeper
	runErr  chan error
	// sweepStop ends the FDB sweeper.
	sweepStop chan struct{}
}

// port is one configured interface and what xdpfwd attached to it.
type port struct {
	cfg     config.Port
	id      fastpath.PortID
	ifindex int
	mac     net.HardwareAddr
	queues  int
	prog    *bpf.Port
	sockets []*xdp.Socket // by queue index
	// passMACs and passIPv4 are the host's own addresses on the port, for
	// pass_host_mac: frames to them go to the kernel stack.
	passMACs           []net.HardwareAddr
	passIPv4, passIPv6 []netip.Addr
}

// rxQueues is the number of RX queues ifname uses, as its driver says
// (ETHTOOL_GCHANNELS), and whether it said. sysfs is no fallback: it shows
// the network namespace it was mounted in, not necessarily the daemon's.
func rxQueues(ifname string) (int, bool) {
	if n, ok := xdp.RxQueueCount(ifname); ok {
		return n, true
	}
	return 1, false
}

// addHostAddrs makes the host's own traffic on the port go to the kernel
// stack: frames to its MAC, ARP requests for its IPv4 addresses and IPv6
// neighbour solicitations for its IPv6 addresses. The addresses are read
// once, at start.
func (p *port) addHostAddrs(link netlink.Link) error {
	p.passMACs = append(p.passMACs, p.mac)
	addrs, err := netlink.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		return err
	}
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		switch {
		case ip.Is4() && !slices.Contains(p.passIPv4, ip):
			p.passIPv4 = append(p.passIPv4, ip)
		case ip.Is6() && !slices.Contains(p.passIPv6, ip):
			p.passIPv6 = append(p.passIPv6, ip)
		}
	}
	if len(p.passIPv4) > bpf.MaxPassIPv4 || len(p.passIPv6) > bpf.MaxPassIPv6 {
		return fmt.Errorf("%d IPv4 and %d IPv6 addresses; xdpfwd passes at most %d and %d to the host", len(p.passIPv4), len(p.passIPv6), bpf.MaxPassIPv4, bpf.MaxPassIPv6)
	}
	return nil
}

// worker is one fastpath worker and the UMEM and sockets it owns.
type worker struct {
	fw      *fastpath.Worker
	umem    *xdp.Umem
	sockets []*xdp.Socket // the UMEM's owner first
}

// New attaches and opens everything cfg names, in the calling thread's
// network namespace, and starts the workers. On error it undoes what it
// did: nothing stays attached.
func New(cfg *config.Config, log *slog.Logger, version string) (_ *Daemon, err error) {
	d := &Daemon{cfg: cfg, log: log, version: version, runErr: make(chan error, 64)}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	if err := d.resolvePorts(); err != nil {
		return nil, err
	}
	if err := d.buildBridges(); err != nil {
		return nil, err
	}
	for _, p := range d.ports {
		if err := d.attach(p); err != nil {
			return nil, err
		}
	}
	if err := d.openWorkers(); err != nil {
		return nil, err
	}
	for _, w := range d.workers {
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			if err := w.fw.Run(); err != nil {
				d.runErr <- err
			}
		}()
	}
	d.sweepStop = make(chan struct{})
	d.wg.Add(1)
	go d.sweep(d.sweepStop)
	return d, nil
}

// sweepInterval is how often expired FDB entries are cleared, so that their
// slots are free for new MACs.
const sweepInterval = 5 * time.Second

// sweep clears expired FDB entries until stop is closed (by Close).
func (d *Daemon) sweep(stop <-chan struct{}) {
	defer d.wg.Done()
	t := time.NewTicker(sweepInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			d.bridges.Sweep(fastpath.MonotonicClock())
		}
	}
}

func (d *Daemon) resolvePorts() error {
	maxFrame := d.cfg.Options.FrameSize - xdpPacketHeadroom
	for i, pc := range d.cfg.Ports {
		link, err := netlink.LinkByName(pc.Interface)
		if err != nil {
			return d.cfg.ErrorAt(pc.InterfacePos, fmt.Sprintf("ports[%d].interface", i), "no interface %q in this network namespace: %v", pc.Interface, err)
		}
		a := link.Attrs()
		p := &port{cfg: pc, id: fastpath.PortID(i), ifindex: a.Index, mac: a.HardwareAddr}
		var known bool
		if p.queues, known = rxQueues(pc.Interface); !known && pc.Queues == 0 {
			d.log.Warn("the driver does not report its queue count: binding queue 0 only; set queues if it has more", "port", pc.Interface)
		}
		if pc.Queues == 0 && p.queues > bpf.MaxQueues {
			return d.cfg.ErrorAt(pc.InterfacePos, fmt.Sprintf("ports[%d].interface", i), "%s has %d RX queues, xdpfwd binds at most %d: set queues (the others then go to the kernel stack)", pc.Interface, p.queues, bpf.MaxQueues)
		}
		if pc.Queues > 0 && !known {
			p.queues = pc.Queues // the driver cannot say; the bind will
		}
		if pc.Queues > 0 {
			if pc.Queues > p.queues {
				return d.cfg.ErrorAt(pc.QueuesPos, fmt.Sprintf("ports[%d].queues", i), "%s has %d RX queue(s), the config asks for %d", pc.Interface, p.queues, pc.Queues)
			}
			if pc.Queues < p.queues {
				d.log.Warn("queues beyond the configured count get no socket: their frames go to the kernel stack, not through xdpfwd",
					"port", pc.Interface, "queues", p.queues, "configured", pc.Queues)
			}
			p.queues = pc.Queues
		}
		if pc.PassHostMAC {
			if err := p.addHostAddrs(link); err != nil {
				return d.cfg.ErrorAt(pc.Pos, fmt.Sprintf("ports[%d].pass_host_mac", i), "read the addresses of %s for pass_host_mac: %v", pc.Interface, err)
			}
		}
		// Ethernet header and one 802.1Q tag on top of the MTU.
		if l2 := 18; a.MTU+l2 > maxFrame {
			return d.cfg.ErrorAt(pc.InterfacePos, fmt.Sprintf("ports[%d].interface", i), "%s has MTU %d: its frames (up to %d bytes with a VLAN tag) do not fit a %d-byte UMEM frame after the kernel's %d-byte headroom; lower the MTU to %d or raise options.frame_size",
				pc.Interface, a.MTU, a.MTU+l2, d.cfg.Options.FrameSize, xdpPacketHeadroom, maxFrame-l2)
		}
		d.ports = append(d.ports, p)
	}
	return nil
}

func (d *Daemon) buildBridges() error {
	byName := make(map[string]fastpath.PortID)
	for _, p := range d.ports {
		byName[p.cfg.Interface] = p.id
	}
	var cfgs []fastpath.BridgeConfig
	for _, b := range d.cfg.Bridges {
		bc := fastpath.BridgeConfig{Name: b.Name, AgeingTime: b.AgeingTime, MaxEntries: b.MaxEntries}
		for _, name := range b.Ports {
			bc.Ports = append(bc.Ports, byName[name])
		}
		for _, s := range b.Static {
			bc.Static = append(bc.Static, fastpath.StaticEntry{MAC: header.MAC(s.MAC), Port: byName[s.Port]})
		}
		cfgs = append(cfgs, bc)
	}
	bs, err := fastpath.NewBridges(cfgs...)
	if err != nil {
		return fmt.Errorf("%s: bridges: %w", d.cfg.File, err)
	}
	d.bridges = bs
	for _, p := range d.ports {
		if bs.Of(p.id) == nil {
			d.log.Warn("port is in no bridge: the frames it receives are dropped (reason \"no bridge on ingress port\")", "port", p.cfg.Interface)
		}
	}
	return nil
}

func (d *Daemon) attach(p *port) error {
	mode, err := bpf.ParseMode(p.cfg.XDPMode)
	if err != nil {
		return err
	}
	maxFrame := uint32(d.cfg.Options.FrameSize - xdpPacketHeadroom)
	p.prog, err = bpf.Attach(bpf.Options{Ifindex: p.ifindex, Mode: mode, PassMACs: append(p.passMACs, p.cfg.PassMACs...), PassIPv4: p.passIPv4, PassIPv6: p.passIPv6, MaxFrame: maxFrame})
	if err != nil {
		return fmt.Errorf("port %s: %w", p.cfg.Interface, err)
	}
	if p.prog.Mode() == bpf.ModeGeneric {
		d.log.Warn("generic XDP sees frames after GRO and, on veth, unsegmented GSO frames from the peer (up to 64 KiB): those that do not fit a UMEM frame are dropped (xdp drop_too_big) and TCP through this port slows down. Turn GRO/LRO off on a NIC (ethtool -K IF gro off lro off); native mode avoids it on veth",
			"port", p.cfg.Interface, "max_frame", maxFrame)
	}
	p.sockets = make([]*xdp.Socket, p.queues)
	return nil
}

// workerCount is one worker per queue index that every port has, so each
// worker holds a socket on every port and forwarding between ports never
// leaves the worker's UMEM. A port with more queues spreads them over the
// workers (queue q goes to worker q mod n).
func (d *Daemon) workerCount() int {
	n := d.ports[0].queues
	for _, p := range d.ports {
		n = min(n, p.queues)
	}
	if w := d.cfg.Options.Workers; w > 0 {
		n = min(n, w)
	}
	return n
}

func (d *Daemon) openWorkers() error {
	n := d.workerCount()
	ring := uint32(d.cfg.Options.RingSize)
	for wi := range n {
		var queues []fastpath.PortQueue
		var owners []*port
		var qidx []int
		for _, p := range d.ports {
			for q := wi; q < p.queues; q += n {
				owners, qidx = append(owners, p), append(qidx, q)
			}
		}
		// Enough frames to fill every fill ring and every TX ring at once.
		frames := uint32(len(owners)) * 2 * ring
		umem, err := xdp.NewUmem(xdp.UmemConfig{FrameCount: frames, FrameSize: uint32(d.cfg.Options.FrameSize), FillSize: ring, CompletionSize: ring})
		if err != nil {
			return fmt.Errorf("worker %d: %w", wi, err)
		}
		w := &worker{umem: umem}
		d.workers = append(d.workers, w)
		for i, p := range owners {
			bind, err := xdp.ParseBindMode(p.cfg.Bind)
			if err != nil {
				return err
			}
			s, err := umem.NewSocket(xdp.SocketConfig{Ifindex: p.ifindex, Queue: qidx[i], RxSize: ring, TxSize: ring, Bind: bind, NeedWakeup: true, TxBudget: min(256, ring)})
			if err != nil {
				return fmt.Errorf("port %s: %w", p.cfg.Interface, err)
			}
			w.sockets = append(w.sockets, s)
			p.sockets[qidx[i]] = s
			queues = append(queues, fastpath.PortQueue{Port: p.id, Queue: s})
		}
		pipe := fastpath.NewPipeline(fastpath.Parse{}, d.bridges.Stage(), &fastpath.ChecksumFinish{})
		pipe.SetProfiling(d.cfg.Options.Profile)
		w.fw, err = fastpath.NewWorker(fastpath.WorkerConfig{Umem: umem, Queues: queues, Pipeline: pipe})
		if err != nil {
			return fmt.Errorf("worker %d: %w", wi, err)
		}
		// One poll before Run gives every fill ring its frames, so the
		// first frames redirected below find room.
		w.fw.Poll()
	}
	// Only now, with every fill ring stocked, do frames start to come.
	for _, p := range d.ports {
		for q, s := range p.sockets {
			if err := p.prog.SetSocket(q, s.FD()); err != nil {
				return fmt.Errorf("port %s queue %d: %w", p.cfg.Interface, q, err)
			}
		}
		d.log.Info("port ready", "port", p.cfg.Interface, "ifindex", p.ifindex, "xdp_mode", p.prog.Mode().String(),
			"zero_copy", p.sockets[0].ZeroCopy(), "queues", p.queues, "tx_budget", p.sockets[0].TxBudgetApplied())
	}
	d.log.Info("forwarding", "ports", len(d.ports), "bridges", len(d.cfg.Bridges), "workers", len(d.workers))
	return nil
}

// Wait blocks until ctx is done or a worker fails.
func (d *Daemon) Wait(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case err := <-d.runErr:
		return fmt.Errorf("worker: %w", err)
	}
}

// Close stops the workers and detaches everything, in the reverse order
// of New: XSKMAP slots first (frames go to the kernel again), then the
// workers, sockets, UMEMs and XDP programs. It returns the first error
// but undoes everything it can.
func (d *Daemon) Close() error {
	var errs []error
	for _, p := range d.ports {
		if p.prog == nil {
			continue
		}
		for q, s := range p.sockets {
			if s != nil {
				errs = append(errs, p.prog.ClearSocket(q))
			}
		}
	}
	for _, w := range d.workers {
		if w.fw != nil {
			w.fw.Stop()
		}
	}
	if d.sweepStop != nil {
		close(d.sweepStop)
		d.sweepStop = nil
	}
	d.wg.Wait()
	for _, w := range d.workers {
		// Shared sockets before the UMEM's owner, the owner before the UMEM.
		for i := len(w.sockets) - 1; i >= 0; i-- {
			errs = append(errs, w.sockets[i].Close())
		}
		errs = append(errs, w.umem.Close())
	}
	d.workers = nil
	for _, p := range d.ports {
		if p.prog != nil {
			errs = append(errs, p.prog.Close())
			p.prog = nil
		}
	}
	return errors.Join(errs...)
}

// Handlers are the control socket's verbs.
func (d *Daemon) Handlers() map[string]control.Handler {
	return map[string]control.Handler{
		"stats": func(json.RawMessage) (any, error) { return d.Stats() },
	}
}
