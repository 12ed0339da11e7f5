package daemon

import (
	"fmt"
	"net"

	"github.com/xdpfwd/xdpfwd/fastpath"
	"github.com/xdpfwd/xdpfwd/internal/control"
)

// Stats gathers the counters of every layer: the XDP program's verdicts,
// the kernel's socket statistics, the workers' port counters and the
// bridges' FDBs.
func (d *Daemon) Stats() (*control.Stats, error) {
	var fws []*fastpath.Worker
	for _, w := range d.workers {
		fws = append(fws, w.fw)
	}
	sum := fastpath.SumCounters(fws...)
	st := &control.Stats{Version: d.version, Workers: len(d.workers)}
	for _, p := range d.ports {
		ps := control.PortStats{
			Name:     p.cfg.Interface,
			Ifindex:  p.ifindex,
			XDPMode:  p.prog.Mode().String(),
			ZeroCopy: p.sockets[0].ZeroCopy(),
			Queues:   p.queues,
			TxBudget: p.sockets[0].TxBudgetApplied(),
			Drops:    make(map[string]uint64),
		}
		if int(p.id) < len(sum.Ports) {
			c := sum.Ports[p.id]
			ps.RxPackets, ps.RxBytes, ps.TxPackets, ps.TxBytes = c.RxPackets, c.RxBytes, c.TxPackets, c.TxBytes
			for r, n := range c.Drops {
				if r != int(fastpath.DropNone) {
					ps.Drops[fastpath.DropReason(r).String()] = n
				}
			}
		}
		xc, err := p.prog.Counters()
		if err != nil {
			return nil, fmt.Errorf("port %s: %w", p.cfg.Interface, err)
		}
		ps.XDP = control.XDPCounters(xc)
		for q, s := range p.sockets {
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
	for _, fw := range fws {
		for i, ss := range fw.Pipeline().StageStats() {
			if i == len(st.Stages) {
				st.Stages = append(st.Stages, control.StageStats{Name: ss.Name})
			}
			st.Stages[i].Packets += ss.Packets
			st.Stages[i].Nanoseconds += ss.Nanoseconds
		}
	}
	st.Profiling = d.cfg.Options.Profile
	now := fastpath.MonotonicClock().Seconds()
	for _, b := range d.bridges.List() {
		c := b.Counters()
		bs := control.BridgeStats{Name: b.Name(), Forwarded: c.Forwarded, Flooded: c.Flooded, Learned: c.Learned, FDBFull: c.FDBFull}
		for _, id := range b.Ports() {
			bs.Ports = append(bs.Ports, d.ports[id].cfg.Interface)
		}
		for _, e := range b.FDB().Entries(now) {
			bs.FDB = append(bs.FDB, control.FDBEntry{MAC: net.HardwareAddr(e.MAC[:]).String(), Port: d.ports[e.Port].cfg.Interface, Static: e.Static, AgeSeconds: float64(e.Age)})
		}
		st.Bridges = append(st.Bridges, bs)
	}
	return st, nil
}
