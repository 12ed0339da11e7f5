// Package daemon assembles a running dataplane from a configuration: it
// attaches the XDP program to every port, opens an AF_XDP socket on every
// port queue, hands them to fastpath workers (one per queue index, all of a
// worker's sockets on one UMEM) and answers the control socket. While it
// runs it follows the ports' interfaces (links.go): down and up, deleted
// and created again, moved away, MTU or queues changed, XDP detached by
// someone else, TX rings that stall. Close takes it all down again, in the
// reverse order.
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
	"golang.org/x/sys/unix"

	"github.com/xdpfwd/xdpfwd/bpf"
	"github.com/xdpfwd/xdpfwd/conntrack"
	"github.com/xdpfwd/xdpfwd/fastpath"
	"github.com/xdpfwd/xdpfwd/fastpath/bridge"
	"github.com/xdpfwd/xdpfwd/fastpath/header"
	"github.com/xdpfwd/xdpfwd/fastpath/router"
	"github.com/xdpfwd/xdpfwd/fastpath/rules"
	"github.com/xdpfwd/xdpfwd/internal/config"
	"github.com/xdpfwd/xdpfwd/internal/control"
	"github.com/xdpfwd/xdpfwd/nat"
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
	bridges *bridge.Set
	// router is the router, nil without one.
	router *router.Router
	// rules runs the nft ruleset (none until one is loaded); reloadMu
	// makes reloads take turns.
	rules *rules.Engine
	// ct is connection tracking, on while the ruleset needs it; nat the
	// NAT its nat chains use.
	ct       *conntrack.Tracker
	ctEvents ctEventHub // the ct-events streams (ct_events.go)
	nat      *nat.Translator
	reloadMu sync.Mutex
	// rulesFrom is the configuration the running ruleset was loaded by
	// (the last reload's); ruleset is its IR (nil without one);
	// setChanges the nft set changes applied since. reloadMu guards them.
	rulesFrom  *config.Config
	ruleset    *rules.Ruleset
	setChanges []string
	// groups are the port groups of the subsystems (the bridges' floods).
	groups *fastpath.PortGroups
	// subsystems are the bridges (and next the router, the rules,
	// conntrack): each gives every worker its stages, and ages its state
	// (sweep).
	subsystems []fastpath.Subsystem
	workers    []*worker
	wg         sync.WaitGroup // workers and the sweeper
	runErr     chan error
	// sweepStop ends the FDB sweeper.
	sweepStop chan struct{}
	// syncStop ends kernel_sync, nil without it.
	syncStop chan struct{}
	// priority is the workers' SCHED_FIFO priority, 0 for none (see
	// resolvePriority).
	priority int
	// nworkers is the number of workers, fixed at start (workerCount).
	nworkers int
	// links follows link events and port faults (links.go).
	links *linkWatch
	// broken: the last rebuild left workers closed; the next look
	// rebuilds again.
	broken bool

	// capture is the capture running on the workers, nil if none
	// (capture.go); captureMu guards it.
	captureMu sync.Mutex
	capture   *fastpath.Capture
	// tracing is the trace running on the workers (trace.go); sim runs
	// synthetic packets through a pipeline of its own, made on first use.
	tracing tracing
	simOnce sync.Once
	sim     *fastpath.Simulator
	simErr  error

	// state orders Close (write lock) after the readers of what it tears
	// down (Stats, FDBPage; read lock); closed tells readers Close began.
	state  sync.RWMutex
	closed bool
}

// port is one configured interface and what xdpfwd attached to it.
type port struct {
	cfg     config.Port
	id      fastpath.PortID
	ifindex int
	mac     net.HardwareAddr
	// mtu is the device's MTU as last seen: the workers drop frames longer
	// than maxFrame(mtu) for it rather than let the device discard them.
	mtu     int
	queues  int
	prog    *bpf.Port
	sockets []*xdp.Socket // by queue index
	// txQueues is the device's TX queue count (ETHTOOL_GCHANNELS): sockets
	// on queues at or above it receive but never transmit.
	txQueues int
	// active: the port is attached and its sockets are in the workers.
	// state is what stats show: up, down, absent or "failed: reason".
	active bool
	state  string
	// progID is the XDP program on the interface after attach, to notice
	// a detach (or a replacement) by someone else.
	progID uint32
	// zeroCopy and txBudget are from the last bind, for stats while the
	// port has no socket.
	zeroCopy bool
	txBudget uint32
	// stalls counts the port's TX stalls, each within stallMemory of
	// lastStall, the one before. At maxStalls, or when its
	// sockets cannot be bound, it fails, and stays failed while its
	// interface has index stuckOn: it would only fail again.
	stalls    int
	lastStall time.Time
	stuckOn   int
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

// worker is one fastpath worker and the UMEM and sockets it owns. When a
// port comes or goes, or a TX ring stalls, the worker is rebuilt (links.go):
// fw stopped, sockets and UMEM closed, new ones opened for the active
// ports; pipe and the counters (base) carry over.
type worker struct {
	idx     int
	fw      *fastpath.Worker // nil while no active port has a queue here
	umem    *xdp.Umem
	sockets []*xdp.Socket // the UMEM's owner first
	refs    []queueRef    // by fw queue index: the port and queue of each socket
	pipe    *fastpath.Pipeline
	base    fastpath.Counters // counters of earlier generations of fw
	next    *xdp.Umem         // made ahead of a rebuild, for openWorker
	done    chan struct{}     // closed when fw.Run returns; nil if not running
	// rebuilds counts the times the worker was rebuilt (each a pause).
	rebuilds int
}

// queueRef is one port queue a worker holds a socket on.
type queueRef struct {
	p *port
	q int
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
	if err := d.buildSubsystems(); err != nil {
		return nil, err
	}
	// Link events from here on: none is missed between the checks below
	// and the watch.
	if d.links, err = watchLinks(); err != nil {
		return nil, err
	}
	for _, p := range d.ports {
		if err := d.attach(p); err != nil {
			return nil, err
		}
		d.noteProg(p)
		p.active = true
	}
	if err := d.openWorkers(); err != nil {
		return nil, err
	}
	for _, w := range d.workers {
		d.startWorker(w)
	}
	d.sweepStop = make(chan struct{})
	d.wg.Add(1)
	go d.sweep(d.sweepStop)
	if d.cfg.Router != nil && d.cfg.Router.KernelSync {
		if err := d.startKernelSync(); err != nil {
			return nil, err
		}
	}
	d.links.start(d)
	return d, nil
}

// sweepInterval is how often the subsystems' state ages (Expire): every
// few seconds for the bridges' FDB sweeps; every second with a router, for
// its neighbour cache's garbage collection and the timers of entries no
// packet meets (workers apply the others as they use the entries). A
// shorter tick costs wakeups: at 100 ms the idle daemon woke ~130 more
// times a second.
func (d *Daemon) sweepInterval() time.Duration {
	if d.router != nil {
		return time.Second
	}
	return 5 * time.Second
}

// sweep expires the subsystems' state (FDB entries) every sweepInterval
// until stop is closed (by Close).
func (d *Daemon) sweep(stop <-chan struct{}) {
	defer d.wg.Done()
	t := time.NewTicker(d.sweepInterval())
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			now := fastpath.MonotonicClock()
			for _, s := range d.subsystems {
				s.Expire(now)
			}
		}
	}
}

func (d *Daemon) resolvePorts() error {
	for i, pc := range d.cfg.Ports {
		link, err := netlink.LinkByName(pc.Interface)
		if err != nil {
			return d.cfg.ErrorAt(pc.InterfacePos, fmt.Sprintf("ports[%d].interface", i), "no interface %q in this network namespace: %v", pc.Interface, err)
		}
		a := link.Attrs()
		p := &port{cfg: pc, id: fastpath.PortID(i), ifindex: a.Index, mac: a.HardwareAddr, mtu: a.MTU}
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
		p.txQueues = p.queues
		if n, ok := xdp.TxQueueCount(pc.Interface); ok {
			p.txQueues = n
		}
		if p.txQueues < p.queues {
			d.log.Warn("fewer TX queues than RX queues: the sockets on the others only receive, frames leave on the first ones, and there are no more workers than TX queues",
				"port", pc.Interface, "rx_queues", p.queues, "tx_queues", p.txQueues)
		}
		p.state = operState(a)
		if why := d.mtuMisfit(a.MTU); why != "" {
			return d.cfg.ErrorAt(pc.InterfacePos, fmt.Sprintf("ports[%d].interface", i), "%s has %s", pc.Interface, why)
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
	var cfgs []bridge.Config
	routerMACs := d.bridgeRouterMACs()
	for _, b := range d.cfg.Bridges {
		bc := bridge.Config{Name: b.Name, AgeingTime: b.AgeingTime, MaxEntries: b.MaxEntries}
		for _, name := range b.Ports {
			bc.Ports = append(bc.Ports, byName[name])
		}
		for _, s := range b.Static {
			bc.Static = append(bc.Static, bridge.StaticEntry{MAC: header.MAC(s.MAC), Port: byName[s.Port], VLAN: uint16(s.VLAN)})
		}
		if b.VLANs != nil {
			bc.VLANs = make(map[fastpath.PortID]bridge.PortVLANs, len(b.VLANs))
			for _, pv := range b.VLANs {
				v := bridge.PortVLANs{PVID: uint16(pv.PVID)}
				for _, vid := range pv.Tagged {
					v.Tagged = append(v.Tagged, uint16(vid))
				}
				bc.VLANs[byName[pv.Port]] = v
			}
		}
		bc.RouterMAC = routerMACs[b.Name]
		cfgs = append(cfgs, bc)
	}
	d.groups = &fastpath.PortGroups{}
	bs, err := bridge.NewSet(d.groups, cfgs...)
	if err != nil {
		return fmt.Errorf("%s: bridges: %w", d.cfg.File, err)
	}
	d.bridges = bs
	d.subsystems = []fastpath.Subsystem{bs}
	for _, p := range d.ports {
		if bs.Of(p.id) == nil && !d.routerPort(p.cfg.Interface) {
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
	// bpf.Attach refused the port if it could receive VLAN tags beside the
	// frame that the program cannot put back.
	if p.prog.Mode() == bpf.ModeGeneric {
		d.log.Warn("generic XDP sees frames after GRO (up to 64 KiB): those that do not fit a UMEM frame are dropped (xdp drop_too_big) and TCP through this port slows down. Turn GRO/LRO off on a NIC (ethtool -K IF gro off lro off)",
			"port", p.cfg.Interface, "max_frame", maxFrame)
	}
	p.sockets = make([]*xdp.Socket, p.queues)
	return nil
}

// workerCount is one worker per queue index that every port has, so each
// worker holds a socket on every port and forwarding between ports never
// leaves the worker's UMEM. A port with more queues spreads them over the
// workers (queue q goes to worker q mod n).
//
// A worker must also be able to transmit on every port: sockets are bound
// by RX queue index, and a frame on the TX ring of a socket whose queue
// index has no TX queue on the device is never sent nor completed. So
// there are no more workers than the smallest TX queue count either; each
// worker's egress on a port is one of its queues below that count.
func (d *Daemon) workerCount() int {
	n := min(d.ports[0].queues, d.ports[0].txQueues)
	for _, p := range d.ports {
		n = min(n, p.queues, p.txQueues)
	}
	if w := d.cfg.Options.Workers; w > 0 {
		n = min(n, w)
	}
	return n
}

// resolvePriority decides the workers' SCHED_FIFO priority: the
// configured one if the process may use it. A priority the file asks for
// and the process may not use is an error; the default one is dropped with
// a warning, since the daemon still forwards, only with loss under CPU
// contention.
func (d *Daemon) resolvePriority() error {
	o := d.cfg.Options
	d.priority = o.WorkerPriority
	if d.priority == 0 {
		return nil
	}
	err := fastpath.CheckPriority(d.priority)
	if err == nil {
		return nil
	}
	if o.WorkerPriorityPos.Line != 0 {
		return d.cfg.ErrorAt(o.WorkerPriorityPos, "options.worker_priority", "%v; or set worker_priority: 0 to run the workers as ordinary threads (they then lose frames while other tasks hold their cores)", err)
	}
	d.log.Warn("workers run as ordinary threads: they lose frames while other tasks hold their cores; grant CAP_SYS_NICE, or set options.worker_priority: 0 to silence this",
		"priority", d.priority, "err", err)
	d.priority = 0
	return nil
}

// checkCPUs refuses worker_cpus that name a CPU the process may not run
// on (offline, or outside its cpuset), at its place in the file.
func (d *Daemon) checkCPUs() error {
	o := d.cfg.Options
	if len(o.WorkerCPUs) == 0 {
		return nil
	}
	var allowed unix.CPUSet
	if err := unix.SchedGetaffinity(0, &allowed); err != nil {
		return fmt.Errorf("read the CPUs this process may use: %w", err)
	}
	for _, c := range o.WorkerCPUs {
		if !allowed.IsSet(c) {
			return d.cfg.ErrorAt(o.WorkerCPUsPos, "options.worker_cpus", "CPU %d is not one this process may run on (%d CPUs allowed)", c, allowed.Count())
		}
	}
	return nil
}

// workerCPUs are the CPUs worker wi is pinned to (options.worker_cpus),
// nil if the workers are not pinned.
func (d *Daemon) workerCPUs(wi int) []int {
	if cpus := d.cfg.Options.WorkerCPUs; len(cpus) > 0 {
		return []int{cpus[wi%len(cpus)]}
	}
	return nil
}

// newPipeline returns a pipeline of the core's and every subsystem's
// stages, for one worker (or the simulator).
func (d *Daemon) newPipeline() *fastpath.Pipeline {
	stages := fastpath.CoreStages(&fastpath.ChecksumFinish{})
	for _, s := range d.subsystems {
		stages = append(stages, s.Stages()...)
	}
	return fastpath.NewPipeline(stages...)
}

func (d *Daemon) openWorkers() error {
	if err := d.checkCPUs(); err != nil {
		return err
	}
	if err := d.resolvePriority(); err != nil {
		return err
	}
	d.nworkers = d.workerCount()
	for wi := range d.nworkers {
		pipe := d.newPipeline()
		pipe.SetProfiling(d.cfg.Options.Profile)
		w := &worker{idx: wi, pipe: pipe}
		d.workers = append(d.workers, w)
		if err := d.openWorker(w); err != nil {
			return err
		}
	}
	// Only now, with every fill ring stocked, do frames start to come.
	for _, p := range d.ports {
		if err := d.setSockets(p); err != nil {
			return err
		}
		d.log.Info("port ready", "port", p.cfg.Interface, "ifindex", p.ifindex, "xdp_mode", p.prog.Mode().String(),
			"zero_copy", p.zeroCopy, "queues", p.queues, "tx_queues", p.txQueues, "egress_queues", d.egressQueues(p),
			"tx_budget", p.txBudget, "state", p.state)
	}
	d.log.Info("forwarding", "ports", len(d.ports), "bridges", len(d.cfg.Bridges), "workers", len(d.workers))
	return nil
}

// egressQueues lists the queues of p that frames leave on: those with a
// socket (by RX queue) that also have a TX queue.
func (d *Daemon) egressQueues(p *port) []int {
	var qs []int
	for q := range min(p.queues, p.txQueues) {
		qs = append(qs, q)
	}
	return qs
}

// openWorker opens w's UMEM, a socket on each of w's queues of every
// active port, and the fastpath worker over them, and polls it once so
// that every fill ring is stocked. With no active port it leaves w.fw nil.
// On error, what it opened stays in w for closeWorker.
func (d *Daemon) openWorker(w *worker) error {
	wi := w.idx
	ring := uint32(d.cfg.Options.RingSize)
	var queues []fastpath.PortQueue
	owners, qidx := d.plan(w)
	umem := w.next
	w.next = nil
	if len(owners) == 0 {
		if umem != nil {
			return umem.Close()
		}
		return nil
	}
	if umem == nil {
		var err error
		if umem, err = d.newUmem(w, len(owners)); err != nil {
			return err
		}
	}
	w.umem = umem
	for i, p := range owners {
		bind, err := xdp.ParseBindMode(p.cfg.Bind)
		if err != nil {
			return err
		}
		s, err := d.bindSocket(umem, xdp.SocketConfig{Ifindex: p.ifindex, Queue: qidx[i], RxSize: ring, TxSize: ring, Bind: bind, NeedWakeup: true, TxBudget: min(256, ring)})
		if err != nil {
			return &portError{p, err}
		}
		w.sockets = append(w.sockets, s)
		w.refs = append(w.refs, queueRef{p, qidx[i]})
		p.sockets[qidx[i]] = s
		p.zeroCopy, p.txBudget = s.ZeroCopy(), s.TxBudgetApplied()
		// A queue the device cannot transmit on only receives.
		queues = append(queues, fastpath.PortQueue{Port: p.id, Queue: s, RxOnly: qidx[i] >= p.txQueues})
	}
	var err error
	w.fw, err = fastpath.NewWorker(fastpath.WorkerConfig{Umem: umem, Queues: queues, Pipeline: w.pipe, Groups: d.groups, IdleTimeout: idleTimeout,
		Priority: d.priority, ThreadName: fmt.Sprintf("xdpfwd-w%d", wi), CPUs: d.workerCPUs(wi)})
	if err != nil {
		return fmt.Errorf("worker %d: %w", wi, err)
	}
	for _, p := range owners {
		if p.state == stateDown {
			w.fw.SetPortDown(p.id, true)
		}
	}
	for _, p := range d.ports {
		w.fw.SetPortMaxFrame(p.id, egressMaxFrame(p.mtu))
	}
	if c := d.runningCapture(); c != nil {
		w.fw.SetCapture(c)
	}
	d.traceNewWorker(w)
	// One poll before Run gives every fill ring its frames, so the
	// first frames redirected below find room.
	w.fw.Poll()
	return nil
}

// portError is a failure to bind a socket of one port.
type portError struct {
	p   *port
	err error
}

func (e *portError) Error() string { return fmt.Sprintf("port %s: %v", e.p.cfg.Interface, e.err) }
func (e *portError) Unwrap() error { return e.err }

// bindSocket opens a socket on umem. The kernel releases a closed socket's
// hold on its device queue a little after close (deferred work), so a
// bind to a queue whose socket was just closed, in a rebuild, may answer
// EBUSY for a while: it is tried again for up to a second.
//
// The retries end at once when the daemon is closing (its link watch is
// stopped), so a rebuild never holds up shutdown.
func (d *Daemon) bindSocket(umem *xdp.Umem, cfg xdp.SocketConfig) (*xdp.Socket, error) {
	var stop <-chan struct{} // nil before the link watch: never ready
	if d.links != nil {
		stop = d.links.stop
	}
	s, err := umem.NewSocket(cfg)
	for deadline := time.Now().Add(time.Second); errors.Is(err, unix.EBUSY) && time.Now().Before(deadline); {
		select {
		case <-stop:
			return s, err
		case <-time.After(time.Millisecond):
		}
		s, err = umem.NewSocket(cfg)
	}
	return s, err
}

// plan lists the queues w binds: queue q of every active port with
// q mod workers = w's index.
func (d *Daemon) plan(w *worker) (owners []*port, qidx []int) {
	for _, p := range d.ports {
		if !p.active {
			continue
		}
		for q := w.idx; q < p.queues; q += d.nworkers {
			owners, qidx = append(owners, p), append(qidx, q)
		}
	}
	return owners, qidx
}

// newUmem makes the UMEM of worker w for sockets sockets.
func (d *Daemon) newUmem(w *worker, sockets int) (*xdp.Umem, error) {
	ring := uint32(d.cfg.Options.RingSize)
	// Enough frames to fill every fill ring and every TX ring at once.
	frames := uint32(sockets) * 2 * ring
	umem, err := xdp.NewUmem(xdp.UmemConfig{FrameCount: frames, FrameSize: uint32(d.cfg.Options.FrameSize), FillSize: ring, CompletionSize: ring})
	if err != nil {
		return nil, fmt.Errorf("worker %d: %w", w.idx, err)
	}
	return umem, nil
}

// setSockets puts p's sockets into its XSKMAP: frames start to come.
func (d *Daemon) setSockets(p *port) error {
	for q, s := range p.sockets {
		if s == nil {
			continue
		}
		if err := p.prog.SetSocket(q, s.FD()); err != nil {
			return fmt.Errorf("port %s queue %d: %w", p.cfg.Interface, q, err)
		}
	}
	return nil
}

// startWorker runs w's fastpath worker on its own goroutine, if it has one.
func (d *Daemon) startWorker(w *worker) {
	if w.fw == nil || w.done != nil {
		return
	}
	done, fw := make(chan struct{}), w.fw
	w.done = done
	go func() {
		defer close(done)
		if err := fw.Run(); err != nil {
			d.runErr <- err
		}
	}()
}

// stopWorker stops w's worker goroutine and waits for it (at most the
// worker's IdleTimeout).
func (d *Daemon) stopWorker(w *worker) {
	if w.done == nil {
		return
	}
	w.fw.Stop()
	<-w.done
	w.done = nil
}

// closeWorker closes the sockets and UMEM of a stopped worker, keeping its
// counters in w.base, and leaves w ready for openWorker. Every frame of
// the UMEM goes with it, those a stalled or dead socket held included.
func (d *Daemon) closeWorker(w *worker) error {
	var errs []error
	if w.fw != nil {
		w.base.Add(w.fw.Counters())
		w.fw = nil
	}
	// Shared sockets before the UMEM's owner, the owner before the UMEM.
	for i := len(w.sockets) - 1; i >= 0; i-- {
		errs = append(errs, w.sockets[i].Close())
	}
	for _, r := range w.refs {
		r.p.sockets[r.q] = nil
	}
	w.sockets, w.refs = nil, nil
	if w.umem != nil {
		errs = append(errs, w.umem.Close())
		w.umem = nil
	}
	return errors.Join(errs...)
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
	// The link watch first, outside the lock: it takes the lock to act.
	d.links.close()
	d.state.Lock()
	defer d.state.Unlock()
	d.closed = true
	var errs []error
	if d.sim != nil {
		errs = append(errs, d.sim.Close())
	}
	errs = append(errs, d.clearSockets()...)
	for _, w := range d.workers {
		if w.fw != nil {
			w.fw.Stop() // all at once: each takes up to idleTimeout to see it
		}
	}
	for _, w := range d.workers {
		d.stopWorker(w)
	}
	if d.sweepStop != nil {
		close(d.sweepStop)
		d.sweepStop = nil
	}
	if d.syncStop != nil {
		close(d.syncStop)
		d.syncStop = nil
	}
	d.wg.Wait()
	for _, w := range d.workers {
		errs = append(errs, d.closeWorker(w), w.dropNext())
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
		"stats":   func(json.RawMessage) (any, error) { return d.Stats() },
		"fdb":     d.fdbVerb,
		"route":   d.routeVerb,
		"neigh":   d.neighVerb,
		"rules":   d.rulesVerb,
		"ruleset": d.rulesetVerb,
		"reload":  d.reloadVerb,
		"set":     d.setVerb,

		"ct-list":   d.ctListVerb,
		"ct-count":  d.ctCountVerb,
		"ct-flush":  d.ctFlushVerb,
		"ct-stats":  d.ctStatsVerb,
		"ct-events": d.ctEventsVerb,

		"capture":      d.captureVerb,
		"trace":        d.traceVerb,
		"trace-packet": d.tracePacketVerb,
	}
}

// clearSockets empties every port's XSKMAP slots, so frames go to the
// kernel stack again instead of to sockets about to close.
func (d *Daemon) clearSockets() []error {
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
	return errs
}

// egressMaxFrame is the longest frame a device with this MTU transmits
// when the kernel forwards to it: the MTU plus the Ethernet header plus
// one VLAN tag (is_skb_forwardable). A veth's peer drops longer ones
// without a counter xdpfwd could read, so the workers drop them first,
// counted.
func egressMaxFrame(mtu int) int { return mtu + header.EthernetSize + 4 }

// dropNext closes the UMEM made ahead for a rebuild (worker.next) if the
// rebuild did not get to use it.
func (w *worker) dropNext() error {
	if w.next == nil {
		return nil
	}
	err := w.next.Close()
	w.next = nil
	return err
}

// mtuMisfit says why a device with this MTU cannot be a port with the
// configured frame size ("" if it can): its frames, with the Ethernet
// header and one 802.1Q tag on top of the MTU, must fit a UMEM frame after
// the kernel's XDP headroom.
func (d *Daemon) mtuMisfit(mtu int) string {
	maxFrame := d.cfg.Options.FrameSize - xdpPacketHeadroom
	if n := egressMaxFrame(mtu); n > maxFrame {
		return fmt.Sprintf("MTU %d: its frames (up to %d bytes with a VLAN tag) do not fit a %d-byte UMEM frame after the kernel's %d-byte headroom; lower the MTU to %d or raise options.frame_size",
			mtu, n, d.cfg.Options.FrameSize, xdpPacketHeadroom, maxFrame-(n-mtu))
	}
	return ""
}
