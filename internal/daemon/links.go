package daemon

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/xdpfwd/xdpfwd/bpf"
	"github.com/xdpfwd/xdpfwd/fastpath"
	"github.com/xdpfwd/xdpfwd/xdp"
)

// Port states as `xdpfwd stats` and the metrics show them; a failed port's
// state is "failed: " and the reason.
const (
	stateUp     = "up"
	stateDown   = "down"
	stateAbsent = "absent"
	failedState = "failed: "
)

// checkInterval is how often every port is looked at even without a link
// event: a detached XDP link and a changed queue count send none, and a
// stalled TX ring is the workers' to report.
const checkInterval = time.Second

// idleTimeout is how long an idle worker sleeps in poll(2) before it
// looks at its stop flag, and so bounds how long a rebuild or Close waits
// for it (it forwards meanwhile: the pause of a rebuild starts when it has
// stopped). Each wakeup of a worker also wakes the Go runtime's sysmon a
// few times, so an idle daemon wakes about 4 × (1/idleTimeout) times a
// second per worker: at 250ms, ~16.
const idleTimeout = 250 * time.Millisecond

// linkWatch follows the kernel's link events (RTNLGRP_LINK) in the
// daemon's network namespace and runs the supervisor that acts on them.
//
// Runtime changes are level-triggered: an event only says "look again",
// and the supervisor compares what each port is (netlink, ETHTOOL_GCHANNELS)
// with what xdpfwd holds, so a missed or merged event (a delete and a
// re-create between two looks, a full socket buffer) is caught at the next
// look, at most checkInterval later.
type linkWatch struct {
	f      *os.File      // the netlink socket, in the runtime's poller
	kick   chan struct{} // a link changed; capacity 1
	stop   chan struct{}
	done   sync.WaitGroup
	closed bool
}

// watchLinks subscribes to link events in the calling thread's network
// namespace. The socket is non-blocking and read through the Go poller, so
// closing it ends the reader at once (a blocking recvfrom would not be
// woken by close).
func watchLinks() (*linkWatch, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("follow link events: open netlink socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: 1 << (unix.RTNLGRP_LINK - 1)}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("follow link events: join RTNLGRP_LINK: %w", err)
	}
	return &linkWatch{f: os.NewFile(uintptr(fd), "rtnetlink"), kick: make(chan struct{}, 1), stop: make(chan struct{})}, nil
}

// start runs the reader and the supervisor.
func (l *linkWatch) start(d *Daemon) {
	l.done.Add(2)
	go l.read()
	go d.supervise(l)
}

// close ends the reader and the supervisor and waits for them. It may be
// called on a nil watch and more than once.
func (l *linkWatch) close() {
	if l == nil || l.closed {
		return
	}
	l.closed = true
	close(l.stop)
	l.f.Close()
	l.done.Wait()
}

// read turns link messages into kicks until the socket is closed. An
// overrun socket (ENOBUFS: events were lost) kicks too: the supervisor
// looks at every port anyway.
func (l *linkWatch) read() {
	defer l.done.Done()
	buf := make([]byte, 1<<16)
	for {
		n, err := l.f.Read(buf)
		if err != nil && !errors.Is(err, unix.ENOBUFS) {
			return // closed
		}
		if err == nil && !isLinkMessage(buf[:n]) {
			continue
		}
		select {
		case l.kick <- struct{}{}:
		default: // a look is already due
		}
	}
}

// isLinkMessage reports whether b holds an RTM_NEWLINK or RTM_DELLINK.
func isLinkMessage(b []byte) bool {
	msgs, err := syscall.ParseNetlinkMessage(b)
	if err != nil {
		return true // look anyway
	}
	for _, m := range msgs {
		if m.Header.Type == unix.RTM_NEWLINK || m.Header.Type == unix.RTM_DELLINK {
			return true
		}
	}
	return false
}

// supervise looks at every port after each link event and every
// checkInterval, and collects the workers' TX stalls, until the watch is
// closed. It wakes once a second when nothing happens.
func (d *Daemon) supervise(l *linkWatch) {
	defer l.done.Done()
	t := time.NewTicker(checkInterval)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-l.kick:
			d.reconcile()
		case <-t.C:
			d.reconcile()
		}
	}
}

// operState is "up" when the link is administratively up and has carrier
// (on veth: the peer is up too), else "down".
func operState(a *netlink.LinkAttrs) string {
	if a.Flags&net.FlagUp == 0 || a.RawFlags&unix.IFF_LOWER_UP == 0 {
		return stateDown
	}
	return stateUp
}

// noteProg records the ID of the XDP program now on p's interface, so
// that a later look can tell it was detached or replaced.
// If the interface cannot be read now, the ID is asked of the program
// itself rather than left 0, which a later look would take for a detach.
func (d *Daemon) noteProg(p *port) {
	if l, err := netlink.LinkByIndex(p.ifindex); err == nil {
		p.progID = 0
		if x := l.Attrs().Xdp; x != nil && x.Attached {
			p.progID = x.ProgId
		}
		return
	}
	if p.prog != nil {
		if id, err := p.prog.ProgramID(); err == nil {
			p.progID = id
		}
	}
}

// portVLANCheck makes again, on a port's interface as it is now, the check
// by which bpf.Attach refuses a port whose out-of-band VLAN tags would be
// lost (bpf.Port.CheckVLAN). A variable so that a test can answer for a
// device whose offload only a NIC can turn on.
var portVLANCheck = (*bpf.Port).CheckVLAN

// misfit says why an interface with attributes a no longer fits p as the
// workers were planned (MTU against the UMEM frame, VLAN tags that would
// now arrive beside the frames where its program cannot read them, queue
// counts against the sockets and workers), or "" if it fits. It also
// refreshes p.txQueues, and reports whether that changed.
func (d *Daemon) misfit(p *port, a *netlink.LinkAttrs) (reason string, txChanged bool) {
	if why := d.mtuMisfit(a.MTU); why != "" {
		return why, false
	}
	// rx-vlan-offload turned on (ethtool -K), or a device enslaved, after
	// the attach. A port not attached yet is checked by bpf.Attach; an
	// interface that cannot be read now is looked at again later.
	if p.prog != nil {
		var ve *bpf.VLANError
		if err := portVLANCheck(p.prog); errors.As(err, &ve) {
			return ve.Reason, false
		}
	}
	if rx, ok := xdp.RxQueueCount(a.Name); ok && rx < p.queues {
		return fmt.Sprintf("%d RX queue(s), xdpfwd binds %d: restore the queue count or restart xdpfwd", rx, p.queues), false
	}
	tx, ok := xdp.TxQueueCount(a.Name)
	if !ok {
		return "", false
	}
	if tx < d.nworkers {
		return fmt.Sprintf("%d TX queue(s), each of the %d workers needs one: restore the queue count or restart xdpfwd", tx, d.nworkers), false
	}
	if tx != p.txQueues {
		p.txQueues = tx
		return "", true
	}
	return "", false
}

// portEvent is what one look found for one port: a state change, a
// re-attach, and the one log line that says so.
type portEvent struct {
	p       *port
	msg     string
	attrs   []any
	warn    bool
	rebuild bool // the workers must be rebuilt (the port came or went, or its queues changed)
}

// reconcile compares every port with its interface and acts: it marks
// ports down or up, takes away a port that is gone or no longer fits,
// attaches and binds a port whose interface came back, re-attaches a
// detached XDP program, and rebuilds workers whose TX ring stalled. Each
// change gets one log line. Forwarding among the other ports carries on,
// except for the brief pause of a worker rebuild.
func (d *Daemon) reconcile() {
	d.state.Lock()
	defer d.state.Unlock()
	if d.closed {
		return
	}
	var events []portEvent
	var closeProgs []*bpf.Port
	for _, p := range d.ports {
		ev := d.look(p, &closeProgs)
		if ev.msg != "" {
			events = append(events, ev)
		}
	}
	stalled := d.takeStalls()
	for _, st := range stalled {
		// A ring that stalls again and again will not get better by
		// rebuilding every other second: fail the port until its
		// interface is made anew. Stalls far apart (a process paused
		// now and then) are not "again and again": the count starts
		// over after stallMemory without one.
		if now := time.Now(); now.Sub(st.p.lastStall) > stallMemory {
			st.p.stalls = 0
		}
		st.p.lastStall = time.Now()
		if st.p.stalls++; st.p.stalls >= maxStalls && st.p.active {
			d.deactivate(st.p, &closeProgs)
			st.p.stuckOn = st.p.ifindex
			st.p.state = failedState + fmt.Sprintf("the TX ring of queue %d stalled %d times (frames and no completion for %v): the driver does not transmit on it; delete and create the interface again, or restart xdpfwd", st.q, st.p.stalls, fastpath.TxStallTimeout)
			events = append(events, portEvent{p: st.p, msg: "port failed", warn: true, rebuild: true})
		}
	}
	rebuild := len(stalled) > 0 || len(closeProgs) > 0 || d.broken
	for _, ev := range events {
		rebuild = rebuild || ev.rebuild
	}
	var pause time.Duration
	var rebuildErr error
	if rebuild {
		var failed []*port
		pause, failed, rebuildErr = d.rebuild(closeProgs)
	next:
		for _, p := range failed {
			ev := portEvent{p: p, msg: "port failed", warn: true}
			for i := range events {
				if events[i].p == p { // "port back" did not come true
					events[i] = ev
					continue next
				}
			}
			events = append(events, ev)
		}
	}
	rebuilds := 0
	for _, w := range d.workers {
		rebuilds += w.rebuilds
	}
	for _, st := range stalled {
		d.log.Warn("TX ring stalled: its frames are counted as dropped (TX stalled) and the worker's sockets and UMEM are made anew",
			"port", st.p.cfg.Interface, "queue", st.q, "frames", st.frames, "timeout", fastpath.TxStallTimeout, "pause", pause.Round(time.Microsecond), "rebuilds", rebuilds)
	}
	for _, ev := range events {
		if ev.rebuild {
			ev.attrs = append(ev.attrs, "workers_paused", len(d.workers), "pause", pause.Round(time.Microsecond), "rebuilds", rebuilds)
		}
		args := append([]any{"port", ev.p.cfg.Interface, "state", ev.p.state}, ev.attrs...)
		if ev.warn {
			d.log.Warn(ev.msg, args...)
		} else {
			d.log.Info(ev.msg, args...)
		}
	}
	if rebuildErr != nil {
		d.log.Error("rebuilding the workers failed: the ports above may not forward", "err", rebuildErr)
	}
}

// look compares p with its interface and changes p's state; it returns
// the event to log (msg "" if nothing changed). The program of a port that
// goes away is added to closeProgs, closed after the rebuild.
func (d *Daemon) look(p *port, closeProgs *[]*bpf.Port) portEvent {
	link, err := netlink.LinkByName(p.cfg.Interface)
	var nf netlink.LinkNotFoundError
	if err != nil && !errors.As(err, &nf) {
		return portEvent{} // netlink hiccup: look again later
	}
	if link == nil {
		if p.active {
			d.deactivate(p, closeProgs)
			p.state = stateAbsent
			return portEvent{p: p, msg: "port absent: the interface is gone (deleted or moved to another network namespace); its sockets are closed", warn: true, rebuild: true}
		}
		if p.state != stateAbsent {
			p.state = stateAbsent
			return portEvent{p: p, msg: "port absent: the interface is gone (deleted or moved to another network namespace)", warn: true}
		}
		return portEvent{}
	}
	a := link.Attrs()
	if p.active && a.Index != p.ifindex {
		// Deleted and created again between two looks: the old sockets
		// are dead; bind the new interface.
		d.deactivate(p, closeProgs)
		p.state = stateAbsent
		ev := d.activate(p, link)
		ev.rebuild = true
		if ev.msg == "" {
			ev = portEvent{p: p, msg: "port absent: the interface is gone", warn: true, rebuild: true}
		}
		return ev
	}
	if !p.active {
		return d.activate(p, link)
	}
	// Active, same interface.
	reason, txChanged := d.misfit(p, a)
	if reason != "" {
		d.deactivate(p, closeProgs)
		p.state = failedState + reason
		return portEvent{p: p, msg: "port failed: it no longer fits; its sockets are closed and XDP detached", warn: true, rebuild: true}
	}
	// misfit has taken in a TX queue change (p.txQueues): whatever else is
	// reported, it must reach the workers.
	if x := a.Xdp; x == nil || !x.Attached || x.ProgId != p.progID {
		ev := d.reattach(p, closeProgs)
		ev.rebuild = ev.rebuild || txChanged
		return ev
	}
	if a.MTU != p.mtu {
		p.mtu = a.MTU
		for _, w := range d.workers {
			if w.fw != nil {
				w.fw.SetPortMaxFrame(p.id, egressMaxFrame(p.mtu))
			}
		}
		return portEvent{p: p, msg: "port MTU changed: longer frames to it are dropped (too big for egress)", attrs: []any{"mtu", p.mtu, "max_frame", egressMaxFrame(p.mtu)}, rebuild: txChanged}
	}
	if txChanged {
		return portEvent{p: p, msg: "port TX queues changed: the workers are rebuilt to transmit on those that exist", attrs: []any{"tx_queues", p.txQueues, "egress_queues", d.egressQueues(p)}, rebuild: true}
	}
	if st := operState(a); st != p.state {
		p.state = st
		for _, w := range d.workers {
			if w.fw != nil {
				w.fw.SetPortDown(p.id, st == stateDown)
			}
		}
		if st == stateDown {
			return portEvent{p: p, msg: "port down: frames to it are dropped (no egress port) until it is up", warn: true}
		}
		return portEvent{p: p, msg: "port up"}
	}
	return portEvent{}
}

// activate takes a port whose interface is there but not in use (it came
// back, or was failed): if it fits, it attaches the XDP program and marks
// it active for the rebuild that binds its sockets.
func (d *Daemon) activate(p *port, link netlink.Link) portEvent {
	a := link.Attrs()
	prev := p.state
	fail := func(reason string) portEvent {
		st := failedState + reason
		if st == prev {
			return portEvent{}
		}
		p.state = st
		return portEvent{p: p, msg: "port failed", warn: true}
	}
	if p.stuckOn != 0 && p.stuckOn == a.Index {
		return portEvent{} // failed for good on this interface (see port.stuckOn)
	}
	p.stuckOn, p.stalls = 0, 0
	p.ifindex, p.mac, p.mtu = a.Index, a.HardwareAddr, a.MTU
	if reason, _ := d.misfit(p, a); reason != "" {
		return fail(reason)
	}
	if x := a.Xdp; x != nil && x.Attached {
		return fail(fmt.Sprintf("interface %s has another XDP program (id %d): not taking it over", p.cfg.Interface, x.ProgId))
	}
	if p.cfg.PassHostMAC {
		// A new interface has a new MAC, maybe new addresses.
		p.passMACs, p.passIPv4, p.passIPv6 = nil, nil, nil
		if err := p.addHostAddrs(link); err != nil {
			return fail("read its addresses for pass_host_mac: " + err.Error())
		}
	}
	if err := d.attach(p); err != nil {
		// A VLAN refusal in misfit's words: a port that misfit failed is
		// not failed again, in other words, when it is tried again here.
		var ve *bpf.VLANError
		if errors.As(err, &ve) {
			return fail(ve.Reason)
		}
		return fail(err.Error())
	}
	p.sockets = make([]*xdp.Socket, p.queues)
	d.noteProg(p)
	p.active = true
	p.state = operState(a)
	what := "port back: attached and bound again"
	if prev == stateAbsent {
		what = "port back: the interface was created again; attached and bound again"
	}
	return portEvent{p: p, msg: what, attrs: []any{"ifindex", p.ifindex, "xdp_mode", p.prog.Mode().String(), "queues", p.queues, "tx_queues", p.txQueues}, rebuild: true}
}

// reattach puts a fresh XDP program on p after someone detached (or
// replaced) xdpfwd's; the sockets stay as they are. If the interface has
// another program now, p fails.
func (d *Daemon) reattach(p *port, closeProgs *[]*bpf.Port) portEvent {
	old := p.prog
	socks := p.sockets
	p.prog = nil
	oldErr := old.Close() // the link is defunct; this frees the program and maps
	err := d.attach(p)
	p.sockets = socks
	if err == nil {
		d.noteProg(p)
		err = d.setSockets(p)
	}
	if err != nil {
		d.deactivate(p, closeProgs)
		p.state = failedState + "XDP program detached by someone else, and attaching it again failed: " + err.Error()
		return portEvent{p: p, msg: "port failed", warn: true, rebuild: true, attrs: []any{"close_err", oldErr}}
	}
	return portEvent{p: p, msg: "XDP program detached by someone else: attached again", warn: true, attrs: []any{"prog_id", p.progID, "xdp_mode", p.prog.Mode().String()}}
}

// deactivate takes p out of forwarding: the rebuild leaves its queues out,
// and its program is closed after that (frames go to the kernel stack).
func (d *Daemon) deactivate(p *port, closeProgs *[]*bpf.Port) {
	p.active = false
	if p.prog != nil {
		*closeProgs = append(*closeProgs, p.prog)
		p.prog = nil
	}
}

// maxStalls is how many TX stalls, each within stallMemory of the one
// before, fail a port.
const maxStalls = 3

// stallMemory is how long a port's TX stall counts towards maxStalls.
const stallMemory = 10 * time.Minute

// stalledQueue is a TX stall a worker reported, by port and queue.
type stalledQueue struct {
	p      *port
	q      int
	frames int
}

// takeStalls collects the TX stalls the workers found since the last look.
func (d *Daemon) takeStalls() []stalledQueue {
	var out []stalledQueue
	for _, w := range d.workers {
		if w.fw == nil {
			continue
		}
		for _, s := range w.fw.TxStalls() {
			r := w.refs[s.Queue]
			out = append(out, stalledQueue{p: r.p, q: r.q, frames: s.Frames})
		}
	}
	return out
}

// rebuild stops every worker, closes its sockets and UMEM (so every frame,
// those a dead or stalled socket held included, comes back), closes the
// programs of ports that went away, and opens every worker anew on the
// active ports. A socket can only join a UMEM whose owner socket is still
// bound: making the UMEM anew is what lets a worker whose owner's
// interface was deleted carry on. It returns how long forwarding paused.
// While paused, frames to the workers' ports go to the kernel stack (the
// XSKMAP slots are empty).
func (d *Daemon) rebuild(closeProgs []*bpf.Port) (pause time.Duration, failed []*port, err error) {
	// New UMEMs first (mapping and populating them is the slow part), while
	// the workers still forward.
	var errs []error
	for _, w := range d.workers {
		if owners, _ := d.plan(w); len(owners) > 0 {
			u, err := d.newUmem(w, len(owners))
			errs = append(errs, err, w.dropNext())
			w.next = u
		}
	}
	// The workers forward until they see the stop flag (at most
	// idleTimeout); the pause starts when they have stopped.
	for _, w := range d.workers {
		if w.fw != nil {
			w.fw.Stop()
		}
	}
	for _, w := range d.workers {
		d.stopWorker(w)
	}
	start := time.Now()
	errs = append(errs, d.clearSockets()...)
	for _, w := range d.workers {
		errs = append(errs, d.closeWorker(w))
	}
	for _, prog := range closeProgs {
		errs = append(errs, prog.Close())
	}
	for _, w := range d.workers {
		w.rebuilds++
	}
	// A port whose socket cannot be bound (its interface went away
	// meanwhile, or its queue was taken) fails alone: the workers are
	// opened again without it.
	d.broken = false
	for attempt := 0; ; attempt++ {
		var openErr error
		for _, w := range d.workers {
			if openErr = d.openWorker(w); openErr != nil {
				break
			}
		}
		if openErr == nil {
			break
		}
		for _, w := range d.workers {
			// The UMEMs made ahead that were not used go too: a later
			// attempt makes them anew, and a broken rebuild must not
			// keep them mapped until the next one overwrites them.
			errs = append(errs, d.closeWorker(w), w.dropNext())
		}
		var pe *portError
		if !errors.As(openErr, &pe) || !pe.p.active || attempt >= len(d.ports) {
			errs = append(errs, openErr)
			d.broken = true
			break
		}
		pe.p.active = false
		if pe.p.prog != nil {
			errs = append(errs, pe.p.prog.Close())
			pe.p.prog = nil
		}
		pe.p.state = failedState + "bind its sockets: " + pe.err.Error()
		pe.p.stuckOn = pe.p.ifindex
		failed = append(failed, pe.p)
	}
	for _, p := range d.ports {
		if p.active && p.prog != nil {
			errs = append(errs, d.setSockets(p))
		}
	}
	for _, w := range d.workers {
		d.startWorker(w)
	}
	return time.Since(start), failed, errors.Join(errs...)
}
