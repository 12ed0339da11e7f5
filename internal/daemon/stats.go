package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/xdpfwd/xdpfwd/fastpath"
	"github.com/xdpfwd/xdpfwd/fastpath/bridge"
	"github.com/xdpfwd/xdpfwd/internal/control"
)

// ErrClosed is the answer of Stats and FDBPage once Close has begun.
var ErrClosed = errors.New("xdpfwd is shutting down")

// Stats gathers the counters of every layer: the XDP program's verdicts,
// the kernel's socket statistics, the workers' port counters and the
// bridges' counters and FDB sizes. It reads counters only, never the FDB's
// entries (FDBPage lists those), so its cost does not grow with the
// table. It is safe beside Close: once Close has begun it returns
// ErrClosed.
func (d *Daemon) Stats() (*control.Stats, error) {
	d.state.RLock()
	defer d.state.RUnlock()
	if d.closed {
		return nil, ErrClosed
	}
	var fws []*fastpath.Worker
	for _, w := range d.workers {
		if w.fw != nil { // nil while no active port has a queue on it
			fws = append(fws, w.fw)
		}
	}
	sum := fastpath.SumCounters(fws...)
	for _, w := range d.workers {
		sum.Add(w.base) // earlier generations of rebuilt workers
	}
	st := &control.Stats{Version: d.version, Workers: len(d.workers)}
	for _, p := range d.ports {
		ps := control.PortStats{
			Name:       p.cfg.Interface,
			Ifindex:    p.ifindex,
			ZeroCopy:   p.zeroCopy,
			Queues:     p.queues,
			TxBudget:   p.txBudget,
			Drops:      make(map[string]uint64),
			DropStages: make(map[string]string),
			State:      p.state,
		}
		if p.prog != nil { // nil while the port is absent or failed
			ps.XDPMode = p.prog.Mode().String()
		}
		if int(p.id) < len(sum.Ports) {
			c := sum.Ports[p.id]
			ps.RxPackets, ps.RxBytes, ps.TxPackets, ps.TxBytes = c.RxPackets, c.RxBytes, c.TxPackets, c.TxBytes
			for r, n := range c.Drops {
				if r != int(fastpath.ReasonNone) {
					ps.Drops[fastpath.Reason(r).String()] = n
					ps.DropStages[fastpath.Reason(r).String()] = fastpath.Reason(r).Stage()
				}
			}
			ps.Latency = latencyStats(&c.Latency)
		} else {
			ps.Latency = latencyStats(&fastpath.LatencyHistogram{})
		}
		if p.prog != nil {
			xc, err := p.prog.Counters()
			if err != nil {
				return nil, fmt.Errorf("port %s: %w", p.cfg.Interface, err)
			}
			ps.XDP = control.XDPCounters(xc)
		}
		for q, s := range p.sockets {
			if s == nil {
				continue
			}
			xs, err := s.Statistics()
			if err != nil {
				return nil, fmt.Errorf("port %s queue %d: %w", p.cfg.Interface, q, err)
			}
			ps.XSK.RxDropped += xs.RxDropped
			ps.XSK.RxInvalidDescs += xs.RxInvalidDescs
			ps.XSK.TxInvalidDescs += xs.TxInvalidDescs
			ps.XSK.RxRingFull += xs.RxRingFull
			ps.XSK.RxFillRingEmptyDescs += xs.RxFillRingEmptyDescs
			ps.XSK.TxRingEmptyDescs += xs.TxRingEmptyDescs
		}
		st.Ports = append(st.Ports, ps)
	}
	// Stage costs, summed over the workers' pipelines (all alike).
	for _, w := range d.workers {
		for i, ss := range w.pipe.StageStats() {
			if i == len(st.Stages) {
				st.Stages = append(st.Stages, control.StageStats{Name: ss.Name})
			}
			st.Stages[i].Packets += ss.Packets
			st.Stages[i].Nanoseconds += ss.Nanoseconds
		}
	}
	st.Profiling = d.cfg.Options.Profile
	for _, b := range d.bridges.List() {
		c := b.Counters()
		bs := control.BridgeStats{Name: b.Name(), Forwarded: c.Forwarded, Flooded: c.Flooded, Learned: c.Learned, FDBFull: c.FDBFull, Evicted: c.Evicted, FDBEntries: b.FDB().Len()}
		for _, id := range b.Ports() {
			bs.Ports = append(bs.Ports, d.ports[id].cfg.Interface)
		}
		st.Bridges = append(st.Bridges, bs)
	}
	if d.router != nil {
		c := d.router.Counters()
		v4, v6, static := d.router.Neighbours().Len()
		st.Router = &control.RouterStats{Forwarded: c.Forwarded, Local: c.Local, EchoReplies: c.EchoReplies, ARPReplies: c.ARPReplies,
			NASent: c.NASent, Solicits: c.Solicits, ICMPErrors: c.ICMPErrors, ICMPLimited: c.ICMPLimited, Announced: c.Announced, Fragmented: c.Fragmented,
			Routes: d.router.Table().Len(), Neighbours: v4 + v6 + static}
	}
	return st, nil
}

// latencyStats is h as the stats verb shows it.
func latencyStats(h *fastpath.LatencyHistogram) control.LatencyStats {
	ls := control.LatencyStats{
		Packets:           h.Count(),
		SumNanoseconds:    h.SumNanos,
		MaxNanoseconds:    h.MaxNanos,
		P50Nanoseconds:    uint64(h.Quantile(0.5)),
		P99Nanoseconds:    uint64(h.Quantile(0.99)),
		BoundsNanoseconds: make([]uint64, fastpath.LatencyBuckets-1),
		Counts:            append([]uint64(nil), h.Buckets[:]...),
	}
	for i := range ls.BoundsNanoseconds {
		ls.BoundsNanoseconds[i] = uint64(fastpath.LatencyBound(i))
	}
	return ls
}

// fdbPageScan bounds the FDB slots one fdb call reads while it fills a
// page: a sparse table's page may come back short, with a cursor to go on.
const fdbPageScan = 1 << 18

// FDBPage answers the fdb verb: up to args.Limit live entries of bridge
// args.Bridge from args.Cursor on, and the cursor of the next page. It
// reads at most about fdbPageScan slots of the table per call.
func (d *Daemon) FDBPage(args control.FDBArgs) (*control.FDBPage, error) {
	d.state.RLock()
	defer d.state.RUnlock()
	if d.closed {
		return nil, ErrClosed
	}
	var br *bridge.Bridge
	var names []string
	for _, b := range d.bridges.List() {
		names = append(names, b.Name())
		if b.Name() == args.Bridge {
			br = b
		}
	}
	if br == nil {
		return nil, fmt.Errorf("no bridge %q (bridges: %s)", args.Bridge, strings.Join(names, ", "))
	}
	limit := args.Limit
	if limit <= 0 || limit > control.MaxFDBPage {
		limit = control.MaxFDBPage
	}
	fdb := br.FDB()
	now := fastpath.MonotonicClock().Seconds()
	page := &control.FDBPage{Bridge: br.Name(), Entries: []control.FDBEntry{}, Next: args.Cursor}
	for page.Next-args.Cursor < fdbPageScan && len(page.Entries) < limit {
		es, next := fdb.Page(now, page.Next, limit-len(page.Entries))
		for _, e := range es {
			page.Entries = append(page.Entries, control.FDBEntry{VLAN: e.VLAN, MAC: net.HardwareAddr(e.MAC[:]).String(),
				Port: d.ports[e.Port].cfg.Interface, Static: e.Static, AgeSeconds: float64(e.Age)})
		}
		page.Next = next
		if next == 0 {
			break
		}
	}
	page.Slots = fdb.Len()
	return page, nil
}

// fdbVerb decodes the fdb verb's arguments and answers it with FDBPage.
func (d *Daemon) fdbVerb(raw json.RawMessage) (any, error) {
	var args control.FDBArgs
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &args); err != nil {
			return nil, fmt.Errorf("fdb arguments: %w", err)
		}
	}
	return d.FDBPage(args)
}
