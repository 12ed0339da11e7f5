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
	go d.sweep()
	return d, nil
}

// sweepInterval is how often expired FDB entries are cleared, so that their
// slots are free for new MACs.
const sweepInterval = 5 * time.Second

// sweep clears expired FDB entries until Close.
func (d *Daemon) sweep() {
	defer d.wg.Done()
	t := time.NewTicker(sweepInterval)
	defer t.Stop()
	for {
		select {
		case <-d.sweepStop:
			return
		case <-t.C:
			d.bridges.Sweep(fastpath.MonotonicClock())
		}
	}
}

// atPort is an error about a configured port, placed in the file.
func (d *Daemon) atPort(p config.Port, i int, format string, args ...any) error {
	return &config.Error{File: d.cfg.File, Line: p.Line, Column: 5, Field: fmt.Sprintf("ports[%d].interface", i), Msg: fmt.Sprintf(format, args...)}
}

func (d *Daemon) resolvePorts() error {
	maxFrame := d.cfg.Options.FrameSize - xdpPacketHeadroom
	for i, pc := range d.cfg.Ports {
		link, err := netlink.LinkByName(pc.Interface)
		if err != nil {
			return d.atPort(pc, i, "no interface %q in this network namespace: %v", pc.Interface, err)
		}
		a := link.Attrs()
		p := &port{cfg: pc, id: fastpath.PortID(i), ifindex: a.Index, mac: a.HardwareAddr, queues: max(a.NumRxQueues, 1)}
		if pc.Queues > 0 {
			if pc.Queues > p.queues {
				return d.atPort(pc, i, "%s has %d RX queue(s), the config asks for %d", pc.Interface, p.queues, pc.Queues)
			}
			p.queues = pc.Queues
		}
		if a.MTU+14 > maxFrame {
			return d.atPort(pc, i, "%s has MTU %d: its frames (%d bytes) do not fit a %d-byte UMEM frame after the kernel's %d-byte headroom; lower the MTU to %d or raise options.frame_size",
				pc.Interface, a.MTU, a.MTU+14, d.cfg.Options.FrameSize, xdpPacketHeadroom, maxFrame-14)
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
	pass := append([]net.HardwareAddr(nil), p.cfg.PassMACs...)
	if p.cfg.PassHostMAC {
		pass = append(pass, p.mac)
	}
	p.prog, err = bpf.Attach(bpf.Options{Ifindex: p.ifindex, Mode: mode, PassMACs: pass})
	if err != nil {
		return fmt.Errorf("port %s: %w", p.cfg.Interface, err)
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
		w.fw, err = fastpath.NewWorker(fastpath.WorkerConfig{Umem: umem, Queues: queues, Pipeline: pipe})
		if err != nil {
			return fmt.Errorf("worker %d: %w", wi, err)
		}
	}
	// Only now, with every worker ready to poll, do frames start to come.
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
