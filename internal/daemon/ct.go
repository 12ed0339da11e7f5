package daemon

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/xdpfwd/xdpfwd/conntrack"
	"github.com/xdpfwd/xdpfwd/fastpath"
	"github.com/xdpfwd/xdpfwd/internal/control"
)

// ctPageScan bounds the table records one ct-list call reads while it
// fills a page (each a consistent copy of about 124 bytes): a sparse
// table's or a selective filter's page comes back short, with a cursor to
// go on.
const ctPageScan = 1 << 17

// tracker returns the connection tracker, or why the ct verbs cannot use
// it. The caller holds d.state.
func (d *Daemon) tracker() (*conntrack.Tracker, error) {
	if d.closed {
		return nil, ErrClosed
	}
	if d.ct == nil {
		return nil, errors.New("connection tracking is not set up")
	}
	return d.ct, nil
}

// CtPage answers the ct-list verb: up to args.Limit entries that pass
// args.Filter, from args.Cursor on, each as `conntrack -L` prints it,
// and the cursor of the next page. It reads at most ctPageScan records
// of the table per call. The remaining seconds are on the workers' clock
// (fastpath.MonotonicClock), the one the entries' expiry is on.
func (d *Daemon) CtPage(args control.CtListArgs) (*control.CtPage, error) {
	f, err := conntrack.ParseFilter(args.Filter)
	if err != nil {
		return nil, fmt.Errorf("ct list filter: %w", err)
	}
	d.state.RLock()
	defer d.state.RUnlock()
	ct, err := d.tracker()
	if err != nil {
		return nil, err
	}
	limit := args.Limit
	if limit <= 0 || limit > control.MaxCtPage {
		limit = control.MaxCtPage
	}
	now := int64(fastpath.MonotonicClock())
	page := &control.CtPage{Entries: []control.CtEntry{}}
	page.Next = ct.Table().Page(now, args.Cursor, ctPageScan, func(e *conntrack.Entry) bool {
		if f.Match(e) {
			page.Entries = append(page.Entries, ctEntry(e, now))
		}
		return len(page.Entries) < limit
	})
	return page, nil
}

// ctEntry is e for the control socket.
func ctEntry(e *conntrack.Entry, now int64) control.CtEntry {
	o := &e.Tuple[conntrack.DirOriginal]
	ce := control.CtEntry{
		Line:     e.Format(now),
		Family:   "ipv4",
		Proto:    conntrack.ProtoName(o.Proto),
		ProtoNum: o.Proto,
		Timeout:  e.Remaining(now),
		Original: ctTuple(o),
		Reply:    ctTuple(&e.Tuple[conntrack.DirReply]),
		Status:   statusNames(e.Status),
		Mark:     e.Mark,
		Zone:     o.Zone,
	}
	if o.Family == 6 {
		ce.Family = "ipv6"
	}
	if o.Proto == conntrack.ProtoTCP {
		ce.State = e.TCP.State.String()
	}
	return ce
}

// ctTuple is t for the control socket.
func ctTuple(t *conntrack.Tuple) control.CtTuple {
	ct := control.CtTuple{Src: t.SrcAddr().String(), Dst: t.DstAddr().String()}
	switch t.Proto {
	case conntrack.ProtoICMP, conntrack.ProtoICMPv6:
		typ, code, id := uint8(t.DstPort>>8), uint8(t.DstPort), t.SrcPort
		ct.Type, ct.Code, ct.ID = &typ, &code, &id
	case conntrack.ProtoTCP, conntrack.ProtoUDP, 33, 132, 136: // DCCP, SCTP, UDP-Lite
		sp, dp := t.SrcPort, t.DstPort
		ct.Sport, ct.Dport = &sp, &dp
	}
	return ct
}

// statusBitNames name the status bits as nft's `ct status` does (and in
// its style where it has no name), by bit.
var statusBitNames = [...]string{"expected", "seen-reply", "assured", "confirmed", "snat", "dnat", "seq-adjust",
	"snat-done", "dnat-done", "dying", "fixed-timeout", "template", "nat-clash", "helper", "offload", "hw-offload"}

// statusNames returns the names of the bits set in s.
func statusNames(s conntrack.Status) []string {
	names := []string{}
	for i, n := range statusBitNames {
		if s&(1<<i) != 0 {
			names = append(names, n)
		}
	}
	return names
}

// ctListVerb decodes the ct-list verb's arguments and answers it with
// CtPage.
func (d *Daemon) ctListVerb(raw json.RawMessage) (any, error) {
	var args control.CtListArgs
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &args); err != nil {
			return nil, fmt.Errorf("ct list arguments: %w", err)
		}
	}
	return d.CtPage(args)
}

// ctCountVerb is the ct-count verb: the number of entries, as `conntrack
// -C`, and the table's size.
func (d *Daemon) ctCountVerb(json.RawMessage) (any, error) {
	d.state.RLock()
	defer d.state.RUnlock()
	ct, err := d.tracker()
	if err != nil {
		return nil, err
	}
	return control.CtCount{Count: ct.Table().Count(), Max: ct.Table().Max()}, nil
}

// ctFlushVerb is the ct-flush verb: every entry deleted, as `conntrack
// -F`; the workers go on meanwhile, and connections still passing start
// again as the kernel picks them up after a flush.
//
// The DESTROY events of the entries name the process args.PID, if given,
// as the kernel's name the process whose request deleted them.
func (d *Daemon) ctFlushVerb(raw json.RawMessage) (any, error) {
	var args control.CtFlushArgs
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &args); err != nil {
			return nil, fmt.Errorf("ct flush arguments: %w", err)
		}
	}
	d.state.RLock()
	defer d.state.RUnlock()
	ct, err := d.tracker()
	if err != nil {
		return nil, err
	}
	if args.PID != 0 {
		d.ctEvents.origin(args.PID)
	}
	n := ct.Table().FlushFrom(int64(fastpath.MonotonicClock()), args.PID)
	d.log.Info("conntrack table flushed", "deleted", n)
	return control.CtFlushResult{Deleted: n}, nil
}

// ctStatsVerb is the ct-stats verb: each worker's counters as `conntrack
// -S` prints them per CPU, as the workers last published them (at the end
// of a batch), and their sum.
func (d *Daemon) ctStatsVerb(json.RawMessage) (any, error) {
	d.state.RLock()
	defer d.state.RUnlock()
	ct, err := d.tracker()
	if err != nil {
		return nil, err
	}
	res := control.CtStats{Enabled: ct.Enabled(), Workers: []control.CtCounters{}}
	var total conntrack.Stats
	for _, s := range ct.Stats() {
		res.Workers = append(res.Workers, ctCounters(&s))
		total.Add(&s)
	}
	res.Total = ctCounters(&total)
	if d.nat != nil {
		n := d.nat.Stats()
		res.NAT = control.NATCounters{Exhausted: n.Exhausted, NoAddress: n.NoAddress, Dropped: n.Dropped}
	}
	return res, nil
}

// ctCounters is s for the control socket.
func ctCounters(s *conntrack.Stats) control.CtCounters {
	return control.CtCounters{Found: s.Found, Invalid: s.Invalid, Insert: s.Insert, InsertFailed: s.InsertFailed,
		Drop: s.Drop, EarlyDrop: s.EarlyDrop, Error: s.Error, SearchRestart: s.SearchRestart,
		ClashResolve: s.ClashResolve, ChainTooLong: s.ChainTooLong}
}
