package neigh

import "github.com/xdpfwd/xdpfwd/fastpath/header"

// This file is the state machine, as pure functions of an entry value and
// the time: net/core/neighbour.c's neigh_timer_handler (advance),
// __neigh_event_send (onSend) and __neigh_update (update). The table
// stores their results with a compare-and-swap; nothing here touches
// shared memory.

// entry is one neighbour entry's value. Times are milliseconds on the
// caller's clock (ms), compared with wrap-around (before), and kept within
// 2^30 ms of the present by Tick (rebase).
type entry struct {
	hi, lo    uint64 // the IP, big-endian halves
	iface     uint16
	state     State
	probes    uint8  // solicitations sent in this INCOMPLETE or PROBE
	router    bool   // NTF_ROUTER: the last NA had R set
	round     uint16 // how many times the entry entered INCOMPLETE
	mac       header.MAC
	updated   uint32 // when the state or address last changed
	confirmed uint32 // when reachability was last confirmed
	used      uint32 // when a packet last needed the entry off the hit path
	probeAt   uint32 // INCOMPLETE, PROBE: when the next solicitation is due
}

// ms is a time in milliseconds, 32 bits wrapping.
type ms = uint32

// toMS converts a clock reading in nanoseconds.
func toMS(now int64) ms { return ms(now / 1e6) }

// before reports whether a is before b, with wrap-around.
func before(a, b ms) bool { return int32(a-b) < 0 }

// age returns now - t, 0 if t is after now.
func age(now, t ms) ms {
	if d := int32(now - t); d > 0 {
		return ms(d)
	}
	return 0
}

// timing is Params in milliseconds.
type timing struct {
	base, delay, retrans, gcStale, lock ms
	ucast, mcast                        uint8
}

func newTiming(p Params) timing {
	return timing{
		base:    ms(p.BaseReachableTime.Milliseconds()),
		delay:   ms(p.DelayFirstProbeTime.Milliseconds()),
		retrans: ms(p.RetransTime.Milliseconds()),
		gcStale: ms(p.GCStaleTime.Milliseconds()),
		lock:    ms(p.LockTime.Milliseconds()),
		ucast:   uint8(p.UcastSolicit),
		mcast:   uint8(p.McastSolicit),
	}
}

// budget returns how many solicitations an entry in state s sends before
// it fails: neigh_max_probes (app_solicit and mcast_resolicit are 0).
func (tm *timing) budget(s State) uint8 {
	if s == StateProbe {
		return tm.ucast
	}
	return tm.mcast
}

// transition bits report what advance, onSend or update did.
type transition uint8

const (
	trFailed   transition = 1 << iota // INCOMPLETE or PROBE → FAILED
	trRestart                         // FAILED → INCOMPLETE (a new round)
	trResolved                        // INCOMPLETE → a valid state
)

// advance applies the timer transitions due at now, as the kernel's timer
// would have made them at their deadlines (the entry's times are those
// deadlines, so a late call changes nothing but when it is seen):
//
//	REACHABLE → STALE  at confirmed + reachable   (not used lately: the kernel's
//	                                               hit path does not record use)
//	DELAY     → PROBE  at updated + delay_first_probe_time, first probe due
//	INCOMPLETE, PROBE → FAILED  at updated + budget × retrans_time
func (tm *timing) advance(e *entry, now, reach ms) (tr transition) {
	for {
		switch e.state {
		case StateReachable:
			exp := e.confirmed + reach
			if before(now, exp) {
				return tr
			}
			e.state, e.updated = StateStale, exp
		case StateDelay:
			exp := e.updated + tm.delay
			if before(now, exp) {
				return tr
			}
			e.state, e.updated, e.probes, e.probeAt = StateProbe, exp, 0, exp
		case StateIncomplete, StateProbe:
			exp := e.updated + ms(tm.budget(e.state))*tm.retrans
			if before(now, exp) {
				return tr
			}
			e.state, e.updated = StateFailed, exp
			tr |= trFailed
		default:
			return tr
		}
	}
}

// probeDue reports whether an INCOMPLETE or PROBE entry's next
// solicitation is due at now and within its budget; if so it counts it.
func (tm *timing) probeDue(e *entry, now ms) bool {
	if e.probes >= tm.budget(e.state) || before(now, e.probeAt) {
		return false
	}
	e.probes++
	e.probeAt = now + tm.retrans
	return true
}

// startIncomplete puts e into INCOMPLETE at now with its first
// solicitation sent (__neigh_event_send with immediate_probe).
func (tm *timing) startIncomplete(e *entry, now ms) {
	e.state, e.updated, e.used = StateIncomplete, now, now
	e.probes, e.probeAt = 1, now+tm.retrans
	e.round++
}

// onSend is a packet to e's neighbour at now (__neigh_event_send after the
// timers): the new entry and what to do with the packet.
//
//	PERMANENT, NOARP, REACHABLE, DELAY  send
//	PROBE       send; a unicast probe too when one is due
//	STALE       → DELAY, send
//	INCOMPLETE  hold; solicit when a retry is due
//	FAILED      → INCOMPLETE (a new round), hold and solicit; with
//	            mcast_solicit 0 drop
func (tm *timing) onSend(e entry, now, reach ms) (entry, Action, transition) {
	tr := tm.advance(&e, now, reach)
	switch e.state {
	case StateProbe:
		if tm.probeDue(&e, now) {
			return e, SendProbe, tr
		}
		return e, Send, tr
	case StateStale:
		e.state, e.updated, e.used = StateDelay, now, now
		return e, Send, tr
	case StateIncomplete:
		if tm.probeDue(&e, now) {
			return e, HoldSolicit, tr
		}
		return e, Hold, tr
	case StateFailed:
		if tm.mcast == 0 {
			return e, Drop, tr
		}
		tm.startIncomplete(&e, now)
		return e, HoldSolicit, tr | trRestart
	}
	return e, Send, tr
}

// updateFlags are __neigh_update's NEIGH_UPDATE_F_* flags used here.
type updateFlags uint8

const (
	fOverride         updateFlags = 1 << iota // a different address replaces the entry's
	fWeakOverride                             // ... or, for a CONNECTED entry, makes it STALE
	fOverrideIsRouter                         // set the router flag from fIsRouter
	fIsRouter
)

// update is __neigh_update for a message (never an administrator): the
// entry e (state 0 if new), the link-layer address (nil: none given), the
// proposed state (REACHABLE or STALE), flags, at now. It returns the new
// entry and the outcome (Ignored, Unchanged or Updated).
func (tm *timing) update(e entry, lladdr *header.MAC, nw State, f updateFlags, now ms) (entry, Outcome, transition) {
	old := e.state
	if old&(StateNoARP|StatePermanent) != 0 {
		return e, Ignored, 0
	}
	mac := e.mac
	diff := false
	switch {
	case lladdr != nil:
		diff = !old.Valid() || *lladdr != e.mac
		if diff {
			mac = *lladdr
		}
	case !old.Valid():
		return e, Ignored, 0 // no address given, none known
	}
	out := Unchanged
	if nw&connected != 0 {
		e.confirmed = now // even if the update is refused below, as the kernel
	}
	updRouter := f&fOverrideIsRouter != 0
	if old.Valid() {
		if diff && f&fOverride == 0 {
			updRouter = false
			if f&fWeakOverride == 0 || old&connected == 0 {
				return e, Ignored, 0
			}
			mac, diff, nw = e.mac, false, StateStale
		} else if !diff && nw == StateStale {
			nw = old
		}
	}
	var tr transition
	if nw != old || diff {
		e.updated = now
		out = Updated
	}
	if nw != old {
		e.state = nw
		if old == StateIncomplete {
			tr |= trResolved
		}
	}
	if diff {
		e.mac = mac
		if nw&connected == 0 {
			e.confirmed = now - 2*tm.base
		}
	}
	if updRouter {
		r := f&fIsRouter != 0
		if r != e.router {
			e.router = r
			out = Updated
		}
	}
	return e, out, tr
}

// confirmArgs maps a Confirm message to update's arguments: the proposed
// state, flags, whether it may create the entry, and whether it is
// refused outright.
func (tm *timing) confirm(e entry, exists bool, mac header.MAC, how How, now ms) (entry, Outcome, transition) {
	var (
		nw     = StateStale
		f      updateFlags
		ll     = &mac
		create bool
	)
	switch how.Kind() {
	case ARPRequestForUs: // neigh_event_ns
		f, create = fOverride, true
	case ARPRequest, ARPReply: // arp_process, "Update our ARP tables"
		if how.Kind() == ARPReply && how&Unicast != 0 {
			nw = StateReachable
		}
		if exists && (how&Gratuitous != 0 || before(e.updated+tm.lock, now)) {
			f = fOverride
		}
	case NS: // ndisc_recv_ns
		f, create = fOverride|fWeakOverride, true
	case NA: // ndisc_recv_na
		if exists && e.state == StateFailed {
			return e, Ignored, 0
		}
		if how&Solicited != 0 {
			nw = StateReachable
		}
		f = fWeakOverride | fOverrideIsRouter
		if how&Override != 0 {
			f |= fOverride
		}
		if how&IsRouter != 0 {
			f |= fIsRouter
		}
		if how&NoLinkAddr != 0 {
			ll = nil
		}
	}
	if !exists {
		if !create {
			return e, Ignored, 0
		}
		e.state, e.used, e.updated = StateNone, now, now
	}
	return tm.update(e, ll, nw, f, now)
}
