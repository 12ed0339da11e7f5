package neigh

import (
	"net/netip"
	"strings"
	"time"

	"github.com/xdpfwd/xdpfwd/fastpath/header"
)

// Entry is one neighbour entry as listed.
type Entry struct {
	// Iface is the interface id.
	Iface uint16
	// IP is the neighbour's address (IPv4 unmapped).
	IP netip.Addr
	// MAC is its link-layer address; meaningful when State.Valid().
	MAC header.MAC
	// State is the state at the listing time (timer transitions due by
	// then applied, even if no one has stored them yet).
	State State
	// Router is set when the neighbour's last NA had the R flag.
	Router bool
	// Probes is the solicitations sent in this INCOMPLETE or PROBE.
	Probes int
	// Used, Confirmed and Updated are how long ago the entry was last
	// used off the hit path, confirmed, and changed (0 for PERMANENT).
	Used, Confirmed, Updated time.Duration
}

// String formats e as `ip neigh show` does, with the interface named by
// its id; Format takes a name.
func (e Entry) String() string { return e.Format("if" + itoa(uint64(e.Iface))) }

// Format formats e as a line of `ip neigh show` (without the newline),
// with the interface called ifname:
//
//	10.1.0.2 dev lan0 lladdr 02:00:00:00:00:01 REACHABLE
//	fe80::1 dev lan0 lladdr 02:00:00:00:00:02 router STALE
//	10.1.0.9 dev lan0 FAILED
//
// The address shows only for valid states, as the kernel reports it.
func (e Entry) Format(ifname string) string {
	var b strings.Builder
	b.WriteString(e.IP.String())
	b.WriteString(" dev ")
	b.WriteString(ifname)
	if e.State.Valid() {
		b.WriteString(" lladdr ")
		b.WriteString(e.MAC.String())
	}
	if e.Router {
		b.WriteString(" router")
	}
	b.WriteByte(' ')
	b.WriteString(e.State.String())
	return b.String()
}

// listEntry makes the listing of e at now.
func (t *Table) listEntry(e entry, now ms) Entry {
	t.tm.advance(&e, now, t.reach.Load())
	k := e.key()
	ip := netip.AddrFrom16(k.ip())
	if k.v4() {
		ip = ip.Unmap()
	}
	l := Entry{Iface: e.iface, IP: ip, MAC: e.mac, State: e.state, Router: e.router}
	if e.state == StateIncomplete || e.state == StateProbe {
		l.Probes = int(e.probes)
	}
	if e.state != StatePermanent {
		d := func(t ms) time.Duration { return time.Duration(age(now, t)) * time.Millisecond }
		l.Used, l.Confirmed, l.Updated = d(e.used), d(e.confirmed), d(e.updated)
	}
	return l
}

// Lookup returns the entry of ip on iface at now, for the control plane
// and tests; it changes nothing.
func (t *Table) Lookup(iface uint16, ip netip.Addr, now int64) (Entry, bool) {
	a := ip.As16()
	k := makeKey(iface, &a)
	for range attempts {
		_, e, _, found, busy := t.find(k, t.hash(k))
		if found {
			return t.listEntry(e, toMS(now)), true
		}
		if !busy {
			break
		}
	}
	return Entry{}, false
}

// List returns up to limit entries from bucket cursor on (0 for the first
// page) and the cursor of the next page, 0 when there is none. Entries
// come in table order; one call reads at most max(limit, 64) buckets
// (8 slots each), so a page may hold fewer than limit entries while next
// is not 0. A limit below 1 is taken as 1. It allocates the page; it is
// safe beside the workers, and entries changing meanwhile may or may not
// show.
func (t *Table) List(now int64, cursor uint64, limit int) (entries []Entry, next uint64) {
	limit = max(limit, 1)
	nb := uint64(len(t.buckets))
	if cursor >= nb {
		return nil, 0
	}
	now32 := toMS(now)
	end := min(nb, cursor+uint64(max(limit, 64)))
	b := cursor
	for ; b < end && len(entries) < limit; b++ {
		dir := t.buckets[b].dir.Load()
		for j := range uint64(slotsPerBucket) {
			if dir>>(8*j)&0xff == 0 {
				continue
			}
			e, _, ok := t.slots[b*slotsPerBucket+j].read()
			if ok && e.state != StateNone {
				entries = append(entries, t.listEntry(e, now32))
			}
		}
	}
	if b >= nb {
		return entries, 0
	}
	return entries, b
}

// Stats are the table's counters and those of all its workers.
type Stats struct {
	// Lookups counts Resolve calls.
	Lookups uint64
	// Misses counts Resolve calls that gave no address (Hold,
	// HoldSolicit, Drop).
	Misses uint64
	// Solicits counts broadcast / multicast solicitations asked for
	// (HoldSolicit, EventSolicit).
	Solicits uint64
	// Probes counts unicast probes asked for (SendProbe, EventProbe).
	Probes uint64
	// Resolved counts entries that left INCOMPLETE with an address.
	Resolved uint64
	// Failed counts entries that became FAILED.
	Failed uint64
	// QueueDrops counts held packets dropped to make room
	// (unres_discards).
	QueueDrops uint64
	// HoldRefused counts packets a worker could not hold: its pool was
	// empty and the neighbour had none to drop instead.
	HoldRefused uint64
	// TableFull counts neighbours refused for want of room (table_fulls).
	TableFull uint64
	// Contended counts packets dropped and messages refused because a
	// bucket or slot stayed busy with another writer.
	Contended uint64
	// Created and Removed count entries made and removed.
	Created, Removed uint64
	// Confirms counts valid Confirm calls; Ignored those that changed
	// nothing by the rules.
	Confirms, Ignored uint64
	// IPv4, IPv6 and Static are the entries now.
	IPv4, IPv6, Static int
}

// Stats returns the counters. It is safe beside the workers; a worker's
// own counters are as of its last Poll.
func (t *Table) Stats() Stats {
	s := Stats{
		Resolved: t.stats.resolved.Load(), Failed: t.stats.failed.Load(), TableFull: t.stats.tableFull.Load(),
		Contended: t.stats.contended.Load(), Created: t.stats.created.Load(), Removed: t.stats.removed.Load(),
		Confirms: t.stats.confirmed.Load(), Ignored: t.stats.ignored.Load(),
	}
	s.IPv4, s.IPv6, s.Static = t.Len()
	t.mu.Lock()
	defer t.mu.Unlock()
	c := &t.closed
	s.Lookups, s.Misses, s.Solicits, s.Probes, s.QueueDrops, s.HoldRefused = c.lookups, c.misses, c.solicits, c.probes, c.queueDrops, c.holdRefused
	for _, w := range t.workers {
		c := &w.pub
		s.Lookups += c.lookups.Load()
		s.Misses += c.misses.Load()
		s.Solicits += c.solicits.Load()
		s.Probes += c.probes.Load()
		s.QueueDrops += c.queueDrops.Load()
		s.HoldRefused += c.holdRefused.Load()
	}
	return s
}
