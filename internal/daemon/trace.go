package daemon

import (
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/xdpfwd/xdpfwd/conntrack"
	"github.com/xdpfwd/xdpfwd/fastpath"
	"github.com/xdpfwd/xdpfwd/fastpath/header"
	"github.com/xdpfwd/xdpfwd/internal/control"
)

// The trace stream (`xdpfwd trace`): one trace at a time runs on every
// worker (fastpath.Trace: a ring of records per worker, filled on the
// workers' threads); the stream's goroutine drains the rings every
// traceTick, turns each record into its text form (port names, the
// headers each stage rewrote, reasons) and sends them. A rebuilt worker
// gets the running trace too (openWorker). The trace leaves the workers
// when the stream ends: count, timeout, or the client gone.

// traceTick is how often a trace's rings are drained.
const traceTick = 20 * time.Millisecond

// heldWait is how long a trace that reached its count still runs for the
// packets it traced that a stage holds, to follow them when they are
// given back (the router gives a packet back when its neighbour resolves
// or fails: with the default neighbour parameters within about 3 s).
// The client's timeout, if shorter, ends it first.
const heldWait = 10 * time.Second

// tracing is the daemon's running trace: the trace, and for each of its
// rings (by TraceRecord.Worker) the port queue of each of its worker's
// queues, as they were when the ring was made.
type tracing struct {
	mu     sync.Mutex
	trace  *fastpath.Trace
	queues [][]int
}

// traceVerb is the trace verb: it checks the arguments and returns the
// stream of traced packets (control.Stream).
func (d *Daemon) traceVerb(raw json.RawMessage) (any, error) {
	var args control.TraceArgs
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &args); err != nil {
			return nil, fmt.Errorf("trace arguments: %w", err)
		}
	}
	if args.Count < 0 || args.TimeoutMs < 0 {
		return nil, errors.New("trace: count and timeout must not be negative")
	}
	cfg := fastpath.TraceConfig{Port: fastpath.AnyPort, Count: args.Count}
	var err error
	if cfg.Filter, err = d.compileFilter(args.Filter); err != nil {
		return nil, fmt.Errorf("trace filter: %w", err)
	}
	if cfg.Port, err = d.portByName(args.Port); err != nil {
		return nil, fmt.Errorf("trace: %w", err)
	}
	t, err := fastpath.NewTrace(cfg)
	if err != nil {
		return nil, err
	}
	if err := d.startTrace(t); err != nil {
		return nil, err
	}
	return control.Stream(func(ctx context.Context, send func(any) error) error {
		defer d.stopTrace(t)
		// The first answer, empty, says the trace is on the workers.
		if err := send(control.TraceChunk{}); err != nil {
			return err
		}
		var recs []control.TraceRecord
		held := heldRecords{}
		var counted time.Time // when the trace reached its count
		take := func() (bool, error) {
			recs = recs[:0]
			queues := d.traceQueues() // once a drain, not a record
			t.Drain(func(r *fastpath.TraceRecord) {
				rec := d.traceRecord(r, queues)
				held.link(r, &rec)
				recs = append(recs, rec)
			})
			if len(recs) > 0 {
				if err := send(control.TraceChunk{Records: recs, Lost: t.Lost()}); err != nil {
					return false, err
				}
			}
			return traceOver(t, &counted), nil
		}
		finish := func(stopped bool) error {
			return send(control.TraceChunk{Lost: t.Lost(), Done: true, Held: t.Held(), Stopped: stopped})
		}
		return drainUntil(ctx, args.TimeoutMs, traceTick, func() { d.stopTrace(t) }, take, finish)
	}), nil
}

// traceOver reports whether trace t is over: done (fastpath.Trace.Done),
// or its count reached heldWait ago (counted keeps when) while packets it
// traced are still held.
func traceOver(t *fastpath.Trace, counted *time.Time) bool {
	if t.Done() {
		return true
	}
	if !t.Counted() {
		return false
	}
	if counted.IsZero() {
		*counted = time.Now()
	}
	return time.Since(*counted) >= heldWait
}

// heldRecords keeps, by ID, what a trace's stream saw of the records
// that ended held, for the records that continue them.
type heldRecords map[uint32]heldRecord

// heldRecord is a held record's batch time and the stage holding it.
type heldRecord struct {
	at fastpath.Time
	by string
}

// link gives out, the control form of r, how long and by which stage its
// packet was held if it continues a record seen before, and remembers r
// if it ended held.
func (h heldRecords) link(r *fastpath.TraceRecord, out *control.TraceRecord) {
	if first, ok := h[r.Continues]; ok && r.Continues != 0 {
		out.HeldNs, out.HeldBy = int64(r.Time-first.at), cmp.Or(first.by, "a stage")
		delete(h, r.Continues)
	}
	for _, e := range out.Exits {
		if e.Outcome == "held" {
			h[r.ID] = heldRecord{at: r.Time, by: e.Stage}
			return
		}
	}
}

// tracePacketVerb is the trace-packet verb: it runs the frame given
// through the daemon's simulator, a pipeline of every subsystem's stages
// that decides on the live tables and changes none of them
// (fastpath.Simulator), and returns its walk as a trace record.
func (d *Daemon) tracePacketVerb(raw json.RawMessage) (any, error) {
	var args control.TracePacketArgs
	if err := json.Unmarshal(raw, &args); err != nil {
		return nil, fmt.Errorf("trace-packet arguments: %w", err)
	}
	if args.Port == "" {
		return nil, errors.New("trace-packet: the port the frame comes in on is required")
	}
	in, err := d.portByName(args.Port)
	if err != nil {
		return nil, fmt.Errorf("trace-packet: %w", err)
	}
	d.state.RLock() // Close waits for the run, then closes the simulator
	defer d.state.RUnlock()
	if d.closed {
		return nil, ErrClosed
	}
	d.simOnce.Do(func() { d.sim, d.simErr = fastpath.NewSimulator(d.newPipeline(), d.groups) })
	if d.simErr != nil {
		return nil, d.simErr
	}
	var rec fastpath.TraceRecord
	if err := d.sim.Run(args.Frame, in, fastpath.MonotonicClock(), &rec); err != nil {
		return nil, fmt.Errorf("trace-packet: %w", err)
	}
	return d.traceRecord(&rec, nil), nil
}

// drainUntil drains a workers' stream every tick (take, which reports
// whether the stream's count is reached) until the count, the timeout
// (ms, 0: none) or the client's end; then it stops the workers' part
// (stop), takes what a batch begun before that left, and sends the last
// answer (finish) if the client is still there: stopped if ctx ended
// first (the daemon is stopping, or the client went).
func drainUntil(ctx context.Context, timeoutMs int64, tick time.Duration, stop func(), take func() (bool, error), finish func(stopped bool) error) error {
	parent := ctx
	if timeoutMs > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(timeoutMs)*time.Millisecond)
		defer cancel()
	}
	tk := time.NewTicker(tick)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			stop()
			time.Sleep(time.Millisecond) // a batch begun before stop ends
			if _, err := take(); err != nil {
				return nil // the client is gone
			}
			_ = finish(parent.Err() != nil)
			return nil
		case <-tk.C:
			done, err := take()
			if err != nil {
				return err
			}
			if done {
				stop()
				time.Sleep(time.Millisecond)
				if _, err := take(); err != nil {
					return err
				}
				return finish(false)
			}
		}
	}
}

// startTrace sets t on every worker, unless a trace already runs.
func (d *Daemon) startTrace(t *fastpath.Trace) error {
	d.state.RLock()
	defer d.state.RUnlock()
	if d.closed {
		return ErrClosed
	}
	d.tracing.mu.Lock()
	defer d.tracing.mu.Unlock()
	if d.tracing.trace != nil {
		return errors.New("trace: a trace is already running (one at a time)")
	}
	d.tracing.trace, d.tracing.queues = t, nil
	for _, w := range d.workers {
		d.setTrace(w)
	}
	return nil
}

// setTrace sets the running trace, if any, on w's worker. The caller
// holds d.tracing.mu.
func (d *Daemon) setTrace(w *worker) {
	if t := d.tracing.trace; t != nil && w.fw != nil {
		qs := make([]int, len(w.refs))
		for i, r := range w.refs {
			qs[i] = r.q
		}
		w.fw.SetTrace(t)
		d.tracing.queues = append(d.tracing.queues, qs)
	}
}

// traceNewWorker sets the running trace, if any, on a worker being
// (re)built.
func (d *Daemon) traceNewWorker(w *worker) {
	d.tracing.mu.Lock()
	defer d.tracing.mu.Unlock()
	d.setTrace(w)
}

// stopTrace takes t off every worker.
func (d *Daemon) stopTrace(t *fastpath.Trace) {
	d.state.RLock()
	defer d.state.RUnlock()
	d.tracing.mu.Lock()
	defer d.tracing.mu.Unlock()
	if d.tracing.trace != t {
		return
	}
	d.tracing.trace = nil
	for _, w := range d.workers {
		if w.fw != nil {
			w.fw.SetTrace(nil)
		}
	}
}

// portName returns the interface of port id (d.ports is indexed by id).
func (d *Daemon) portName(id fastpath.PortID) string {
	if int(id) < len(d.ports) {
		return d.ports[id].cfg.Interface
	}
	return "port " + strconv.Itoa(int(id))
}

// traceQueues returns a copy of the running trace's queue maps (for each
// ring, the port queue of each of its worker's queues).
func (d *Daemon) traceQueues() [][]int {
	d.tracing.mu.Lock()
	defer d.tracing.mu.Unlock()
	return slices.Clone(d.tracing.queues)
}

// portQueue returns the port's queue that queue q of worker (its own
// numbering of the sockets it polls) is, q itself if queues does not say.
func portQueue(queues [][]int, worker, q int) int {
	if worker >= 0 && worker < len(queues) && q >= 0 && q < len(queues[worker]) {
		return queues[worker][q]
	}
	return q
}

// traceRecord is r for the control socket, its ports named, its queue
// the port's (queues: traceQueues) and its steps described.
func (d *Daemon) traceRecord(r *fastpath.TraceRecord, queues [][]int) control.TraceRecord {
	at := time.Now().Add(-time.Duration(fastpath.MonotonicClock() - r.Time))
	out := control.TraceRecord{ID: r.ID, Continues: r.Continues, TimeNs: at.UnixNano(), Worker: r.Worker, Port: d.portName(r.Port), Queue: r.Queue,
		Length: r.Length, Frame: append([]byte(nil), r.Frame()...), Packet: frameSummary(r.Frame()), MoreSteps: r.MoreSteps}
	out.Queue = portQueue(queues, r.Worker, r.Queue)
	// The headers each copy of the packet had after its last step; a
	// copy a stage made starts from what the packet had before that
	// stage (atStage).
	prev := map[uint8][]byte{}
	var atStage []byte
	for i, s := range r.Steps() {
		if i == 0 || s.Stage != r.Steps()[i-1].Stage || s.Hook != r.Steps()[i-1].Hook {
			atStage = prev[0]
		}
		st := control.TraceStep{Hook: s.Hook.String(), Stage: s.Stage, Copy: int(s.Copy), Nanoseconds: s.Nanoseconds, BatchPackets: int(s.BatchPackets),
			Action: s.Action.String(), Mark: s.Mark, Note: s.Note()}
		if s.Action == fastpath.ActionDrop {
			st.Reason = reasonText(s.Reason)
		}
		switch s.Egress {
		case fastpath.EgressPort:
			st.Egress = "port " + d.portName(s.OutPort)
		case fastpath.EgressGroup:
			st.Egress = "group " + strconv.Itoa(int(s.Group))
		}
		if s.CtState != 0 {
			st.CtState = conntrack.State(s.CtState).String()
		}
		if s.HeaderIsIP {
			h := s.Header()
			before, ok := prev[s.Copy]
			if !ok {
				before = atStage
			}
			if before != nil && string(before) != string(h) {
				st.Rewrite = rewriteSummary(before, h)
			}
			prev[s.Copy] = slices.Clone(h)
		}
		out.Steps = append(out.Steps, st)
	}
	for _, e := range r.Exits() {
		x := control.TraceExit{Port: d.portName(e.Port)}
		switch e.Outcome {
		case fastpath.TraceSent:
			x.Outcome, x.Queue = "sent", portQueue(queues, r.Worker, e.Queue)
			if e.Queue < 0 {
				x.Outcome, x.Queue = "would be sent", 0 // a simulated packet
			}
		case fastpath.TraceDropped:
			x.Outcome, x.Reason = "dropped", reasonText(e.Reason)
		case fastpath.TraceConsumed:
			x.Outcome = "consumed"
		case fastpath.TraceHeld:
			x.Outcome = "held"
			if s := heldStep(r); s != nil {
				x.Stage, x.Note = s.Stage, s.Note()
			}
		default:
			x.Outcome = "unknown"
		}
		out.Exits = append(out.Exits, x)
	}
	return out
}

// heldStep returns the step of the stage that holds r's packet: the
// first that left it stolen; nil if the record did not keep it.
func heldStep(r *fastpath.TraceRecord) *fastpath.TraceStep {
	steps := r.Steps()
	for i := range steps {
		if steps[i].Action == fastpath.ActionStolen {
			return &steps[i]
		}
	}
	return nil
}

// reasonText is a drop reason as "stage: reason".
func reasonText(r fastpath.Reason) string { return r.Stage() + ": " + r.String() }

// frameSummary describes an Ethernet frame's headers on one line: the
// MACs, VLAN tags, and what ipSummary says of an IP packet, or the
// EtherType.
func frameSummary(f []byte) string {
	if len(f) < header.EthernetSize {
		return fmt.Sprintf("%d bytes, shorter than an Ethernet header", len(f))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s > %s", header.MAC(f[6:12]), header.MAC(f[0:6]))
	off, et := 12, binary.BigEndian.Uint16(f[12:])
	for (et == header.EtherTypeVLAN || et == header.EtherTypeQinQ) && len(f) >= off+6 {
		fmt.Fprintf(&b, " vlan %d", binary.BigEndian.Uint16(f[off+2:])&0xfff)
		off += 4
		et = binary.BigEndian.Uint16(f[off:])
	}
	off += 2
	switch et {
	case header.EtherTypeIPv4, header.EtherTypeIPv6:
		b.WriteString(", " + ipSummary(f[off:]))
	case header.EtherTypeARP:
		b.WriteString(", ARP")
	default:
		fmt.Fprintf(&b, ", ethertype %#04x", et)
	}
	return b.String()
}

// ipSummary describes an IP packet's first bytes as tcpdump's brief line
// does: addresses and ports, the protocol, the TTL or hop limit.
func ipSummary(ip []byte) string {
	var src, dst netip.Addr
	var proto, ttl uint8
	var l4 []byte
	switch {
	case len(ip) >= header.IPv4MinSize && ip[0]>>4 == 4:
		h := header.IPv4(ip)
		src, dst, proto, ttl = netip.AddrFrom4(h.Src()), netip.AddrFrom4(h.Dst()), h.Protocol(), h.TTL()
		if hl := int(ip[0]&0xf) * 4; hl <= len(ip) && binary.BigEndian.Uint16(ip[6:])&0x1fff == 0 {
			l4 = ip[hl:]
		}
	case len(ip) >= header.IPv6Size && ip[0]>>4 == 6:
		h := header.IPv6(ip)
		src, dst, proto, ttl = netip.AddrFrom16(h.Src()), netip.AddrFrom16(h.Dst()), h.NextHeader(), ip[7]
		l4 = ip[header.IPv6Size:]
	default:
		return fmt.Sprintf("IP? %x", ip[:min(len(ip), 8)])
	}
	ports := func(name string) string {
		if len(l4) < 4 {
			return fmt.Sprintf("%s > %s %s", src, dst, name)
		}
		return fmt.Sprintf("%s.%d > %s.%d %s", src, binary.BigEndian.Uint16(l4), dst, binary.BigEndian.Uint16(l4[2:]), name)
	}
	var s string
	switch proto {
	case header.ProtocolTCP:
		s = ports("TCP")
		if len(l4) >= 14 {
			s += " [" + tcpFlags(l4[13]) + "]"
		}
	case header.ProtocolUDP:
		s = ports("UDP")
	case header.ProtocolICMP, header.ProtocolICMPv6:
		name := "ICMP"
		if proto == header.ProtocolICMPv6 {
			name = "ICMPv6"
		}
		s = fmt.Sprintf("%s > %s %s", src, dst, name)
		if len(l4) >= 2 {
			s += fmt.Sprintf(" type %d code %d", l4[0], l4[1])
		}
	default:
		s = fmt.Sprintf("%s > %s proto %d", src, dst, proto)
	}
	return fmt.Sprintf("%s ttl %d", s, ttl)
}

// rewriteSummary says how IP header (and first transport bytes) h differs
// from prev: the two summaries, or, where those read the same, which
// checksums changed (a stage that finishes a partial checksum).
func rewriteSummary(prev, h []byte) string {
	a, b := ipSummary(prev), ipSummary(h)
	if a != b {
		return a + " → " + b
	}
	var what []string
	differ := func(off int) bool {
		return off+2 <= len(prev) && off+2 <= len(h) && (prev[off] != h[off] || prev[off+1] != h[off+1])
	}
	l4, proto := header.IPv6Size, uint8(0)
	switch {
	case len(h) >= header.IPv4MinSize && h[0]>>4 == 4:
		if differ(10) {
			what = append(what, "the IPv4 header checksum")
		}
		l4, proto = int(h[0]&0xf)*4, h[9]
	case len(h) >= header.IPv6Size:
		proto = h[6]
	}
	if off, name := l4ChecksumAt(proto); off >= 0 && differ(l4+off) {
		what = append(what, "the "+name+" checksum")
	}
	if len(what) == 0 {
		return "header bytes the summary does not show"
	}
	return strings.Join(what, " and ")
}

// l4ChecksumAt returns where in its header the checksum of transport
// protocol proto is, and its name; -1 for a protocol this does not know.
func l4ChecksumAt(proto uint8) (int, string) {
	switch proto {
	case header.ProtocolTCP:
		return 16, "TCP"
	case header.ProtocolUDP:
		return 6, "UDP"
	case header.ProtocolICMP:
		return 2, "ICMP"
	case header.ProtocolICMPv6:
		return 2, "ICMPv6"
	}
	return -1, ""
}

// tcpFlags names the TCP flags set in f as tcpdump does (S, F, R, P, .).
func tcpFlags(f byte) string {
	var b []byte
	for _, x := range []struct {
		bit  byte
		name byte
	}{{0x02, 'S'}, {0x01, 'F'}, {0x04, 'R'}, {0x08, 'P'}, {0x20, 'U'}, {0x40, 'E'}, {0x80, 'W'}} {
		if f&x.bit != 0 {
			b = append(b, x.name)
		}
	}
	if f&0x10 != 0 {
		b = append(b, '.')
	}
	return string(b)
}
