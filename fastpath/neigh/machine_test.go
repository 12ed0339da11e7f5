package neigh

import (
	"fmt"
	"testing"
	"time"

	"github.com/xdpfwd/xdpfwd/fastpath/header"
)

// step is one event of a transition case: at a time, a packet (Resolve),
// a message (Confirm), a Tick, or only a look; then the expected result
// and state.
type step struct {
	at    time.Duration
	do    string // "send", "confirm", "tick", "look"
	how   How
	mac   header.MAC
	act   Action  // send
	out   Outcome // confirm
	state State
	lladd header.MAC // expected address when the state is valid (zero: don't check)
}

const s = time.Second

// TestTransitions walks every state transition the kernel makes, each case
// named by the kernel behaviour, with the default parameters and a
// reachable time of exactly 30 s.
func TestTransitions(t *testing.T) {
	cases := []struct {
		name  string
		ip    [16]byte
		mod   func(*Config)
		steps []step
	}{
		{"new neighbour: INCOMPLETE, first solicitation at once (__neigh_event_send, immediate_probe)", ip4, nil, []step{
			{at: 0, do: "send", act: HoldSolicit, state: StateIncomplete},
		}},
		{"INCOMPLETE: packets held, one solicitation per retrans_time, mcast_solicit of them, then FAILED (neigh_timer_handler)", ip4, nil, []step{
			{at: 0, do: "send", act: HoldSolicit, state: StateIncomplete},
			{at: 500 * time.Millisecond, do: "send", act: Hold, state: StateIncomplete},
			{at: 1 * s, do: "send", act: HoldSolicit, state: StateIncomplete},
			{at: 1999 * time.Millisecond, do: "send", act: Hold, state: StateIncomplete},
			{at: 2 * s, do: "send", act: HoldSolicit, state: StateIncomplete},
			{at: 2500 * time.Millisecond, do: "send", act: Hold, state: StateIncomplete},
			{at: 2999 * time.Millisecond, do: "look", state: StateIncomplete},
			{at: 3 * s, do: "tick", state: StateFailed},
		}},
		{"FAILED: the next packet starts resolution again (__neigh_event_send on NUD_FAILED)", ip4, nil, []step{
			{at: 0, do: "send", act: HoldSolicit},
			{at: 3 * s, do: "look", state: StateFailed},
			{at: 4 * s, do: "send", act: HoldSolicit, state: StateIncomplete},
			{at: 4500 * time.Millisecond, do: "send", act: Hold, state: StateIncomplete},
			{at: 7 * s, do: "look", state: StateFailed},
		}},
		{"FAILED, no timer on the way: a late packet sees the failure and restarts", ip4, nil, []step{
			{at: 0, do: "send", act: HoldSolicit},
			{at: 10 * s, do: "send", act: HoldSolicit, state: StateIncomplete},
		}},
		{"mcast_solicit 0: no resolution, the packet is dropped", ip4, func(c *Config) { c.Params.McastSolicit = 0 }, []step{
			{at: 0, do: "send", act: Drop, state: StateNone},
		}},
		{"INCOMPLETE + solicited NA: REACHABLE with its address, packets sent", ip6, nil, []step{
			{at: 0, do: "send", act: HoldSolicit},
			{at: 100 * time.Millisecond, do: "confirm", how: NA | Solicited, mac: macA, out: Updated, state: StateReachable, lladd: macA},
			{at: 200 * time.Millisecond, do: "send", act: Send, state: StateReachable},
		}},
		{"INCOMPLETE + unsolicited NA: STALE (RFC 4861 7.2.5)", ip6, nil, []step{
			{at: 0, do: "send", act: HoldSolicit},
			{at: 100 * time.Millisecond, do: "confirm", how: NA | Override, mac: macA, out: Updated, state: StateStale, lladd: macA},
		}},
		{"INCOMPLETE + NA without target link-layer address: ignored", ip6, nil, []step{
			{at: 0, do: "send", act: HoldSolicit},
			{at: 100 * time.Millisecond, do: "confirm", how: NA | Solicited | NoLinkAddr, out: Ignored, state: StateIncomplete},
		}},
		{"INCOMPLETE + ARP reply to us: REACHABLE (arp_process)", ip4, nil, []step{
			{at: 0, do: "send", act: HoldSolicit},
			{at: 10 * time.Millisecond, do: "confirm", how: ARPReply | Unicast, mac: macA, out: Updated, state: StateReachable, lladd: macA},
		}},
		{"INCOMPLETE + broadcast ARP reply: STALE (broadcast replies do not assert reachability)", ip4, nil, []step{
			{at: 0, do: "send", act: HoldSolicit},
			{at: 10 * time.Millisecond, do: "confirm", how: ARPReply, mac: macA, out: Updated, state: StateStale, lladd: macA},
		}},
		{"REACHABLE → STALE after the reachable time; packets meanwhile sent (neigh_timer_handler)", ip4, nil, []step{
			{at: 0, do: "send", act: HoldSolicit},
			{at: 0, do: "confirm", how: ARPReply | Unicast, mac: macA, out: Updated},
			{at: 29999 * time.Millisecond, do: "send", act: Send, state: StateReachable},
			{at: 30 * s, do: "tick", state: StateStale, lladd: macA},
		}},
		{"STALE + packet: DELAY, sent; DELAY + delay_first_probe_time: PROBE with a unicast probe", ip4, nil, []step{
			{at: 0, do: "send", act: HoldSolicit},
			{at: 0, do: "confirm", how: ARPReply | Unicast, mac: macA, out: Updated},
			{at: 40 * s, do: "send", act: Send, state: StateDelay, lladd: macA},
			{at: 44 * s, do: "send", act: Send, state: StateDelay},
			{at: 45 * s, do: "send", act: SendProbe, state: StateProbe, lladd: macA},
			{at: 45500 * time.Millisecond, do: "send", act: Send, state: StateProbe},
			{at: 46 * s, do: "send", act: SendProbe, state: StateProbe},
			{at: 47 * s, do: "send", act: SendProbe, state: StateProbe},
			{at: 47500 * time.Millisecond, do: "send", act: Send, state: StateProbe},
			{at: 48 * s, do: "tick", state: StateFailed},
		}},
		{"DELAY → PROBE by the timer alone (Tick), probe sent with the next packet", ip4, nil, []step{
			{at: 0, do: "send", act: HoldSolicit},
			{at: 0, do: "confirm", how: ARPReply | Unicast, mac: macA, out: Updated},
			{at: 31 * s, do: "send", act: Send, state: StateDelay},
			{at: 36 * s, do: "tick", state: StateProbe},
			{at: 36500 * time.Millisecond, do: "send", act: SendProbe, state: StateProbe},
		}},
		{"PROBE + solicited NA: REACHABLE", ip6, nil, []step{
			{at: 0, do: "send", act: HoldSolicit},
			{at: 0, do: "confirm", how: NA | Solicited, mac: macA, out: Updated},
			{at: 31 * s, do: "send", act: Send, state: StateDelay},
			{at: 36 * s, do: "send", act: SendProbe, state: StateProbe},
			{at: 36100 * time.Millisecond, do: "confirm", how: NA | Solicited, mac: macA, out: Updated, state: StateReachable},
			{at: 66 * s, do: "look", state: StateReachable},
			{at: 66100 * time.Millisecond, do: "look", state: StateStale},
		}},
		{"DELAY + ARP reply to us: REACHABLE", ip4, nil, []step{
			{at: 0, do: "send", act: HoldSolicit},
			{at: 0, do: "confirm", how: ARPReply | Unicast, mac: macA, out: Updated},
			{at: 31 * s, do: "send", act: Send, state: StateDelay},
			{at: 32 * s, do: "confirm", how: ARPReply | Unicast, mac: macA, out: Updated, state: StateReachable},
		}},
		{"REACHABLE + ARP reply to us, same address: confirmed again, reachable time restarts", ip4, nil, []step{
			{at: 0, do: "send", act: HoldSolicit},
			{at: 0, do: "confirm", how: ARPReply | Unicast, mac: macA, out: Updated},
			{at: 20 * s, do: "confirm", how: ARPReply | Unicast, mac: macA, out: Unchanged, state: StateReachable},
			{at: 49 * s, do: "look", state: StateReachable},
			{at: 50 * s, do: "look", state: StateStale},
		}},
		{"ARP request for us from an unknown neighbour: STALE entry (neigh_event_ns)", ip4, nil, []step{
			{at: 0, do: "confirm", how: ARPRequestForUs, mac: macA, out: Created, state: StateStale, lladd: macA},
			{at: 1 * s, do: "send", act: Send, state: StateDelay},
		}},
		{"NS for us with a source link-layer address from an unknown neighbour: STALE entry (RFC 4861 7.2.3)", ip6, nil, []step{
			{at: 0, do: "confirm", how: NS, mac: macA, out: Created, state: StateStale, lladd: macA},
		}},
		{"unsolicited ARP reply or request, or NA, for an unknown neighbour: no entry (arp_accept 0, accept_untracked_na 0)", ip4, nil, []step{
			{at: 0, do: "confirm", how: ARPReply | Unicast, mac: macA, out: Ignored, state: StateNone},
			{at: 0, do: "confirm", how: ARPRequest, mac: macA, out: Ignored, state: StateNone},
			{at: 0, do: "confirm", how: ARPReply | Gratuitous, mac: macA, out: Ignored, state: StateNone},
		}},
		{"ARP request for us on a REACHABLE entry, same address: stays REACHABLE (a STALE update of the same address keeps the state)", ip4, nil, []step{
			{at: 0, do: "send", act: HoldSolicit},
			{at: 0, do: "confirm", how: ARPReply | Unicast, mac: macA, out: Updated},
			{at: 5 * s, do: "confirm", how: ARPRequestForUs, mac: macA, out: Unchanged, state: StateReachable},
		}},
		{"ARP request for us on a REACHABLE entry, new address: STALE with it (override)", ip4, nil, []step{
			{at: 0, do: "send", act: HoldSolicit},
			{at: 0, do: "confirm", how: ARPReply | Unicast, mac: macA, out: Updated},
			{at: 100 * time.Millisecond, do: "confirm", how: ARPRequestForUs, mac: macB, out: Updated, state: StateStale, lladd: macB},
		}},
		{"ARP reply with another address within locktime: ignored, the first answer wins; after locktime: taken", ip4, nil, []step{
			{at: 0, do: "send", act: HoldSolicit},
			{at: 0, do: "confirm", how: ARPReply | Unicast, mac: macA, out: Updated},
			{at: 500 * time.Millisecond, do: "confirm", how: ARPReply | Unicast, mac: macB, out: Ignored, state: StateReachable, lladd: macA},
			{at: 1 * s, do: "confirm", how: ARPReply | Unicast, mac: macB, out: Ignored, lladd: macA},
			{at: 1001 * time.Millisecond, do: "confirm", how: ARPReply | Unicast, mac: macB, out: Updated, state: StateReachable, lladd: macB},
		}},
		{"gratuitous ARP with another address within locktime: taken (arp_is_garp), STALE", ip4, nil, []step{
			{at: 0, do: "send", act: HoldSolicit},
			{at: 0, do: "confirm", how: ARPReply | Unicast, mac: macA, out: Updated},
			{at: 100 * time.Millisecond, do: "confirm", how: ARPRequest | Gratuitous, mac: macB, out: Updated, state: StateStale, lladd: macB},
		}},
		{"ARP message for a FAILED entry: revives it", ip4, nil, []step{
			{at: 0, do: "send", act: HoldSolicit},
			{at: 3 * s, do: "tick", state: StateFailed},
			{at: 4 * s, do: "confirm", how: ARPRequest, mac: macA, out: Updated, state: StateStale, lladd: macA},
		}},
		{"NA for a FAILED entry: ignored (ndisc_recv_na)", ip6, nil, []step{
			{at: 0, do: "send", act: HoldSolicit},
			{at: 3 * s, do: "tick", state: StateFailed},
			{at: 4 * s, do: "confirm", how: NA | Solicited | Override, mac: macA, out: Ignored, state: StateFailed},
		}},
		{"ucast_solicit 0: DELAY expiry fails the entry at once", ip4, func(c *Config) { c.Params.UcastSolicit = 0 }, []step{
			{at: 0, do: "send", act: HoldSolicit},
			{at: 0, do: "confirm", how: ARPReply | Unicast, mac: macA, out: Updated},
			{at: 31 * s, do: "send", act: Send, state: StateDelay},
			{at: 36 * s, do: "look", state: StateFailed},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, c.mod)
			for n, st := range c.steps {
				e.at(st.at)
				where := fmt.Sprintf("step %d (%s at %v)", n, st.do, st.at)
				switch st.do {
				case "send":
					if _, a := e.resolve(c.ip); a != st.act {
						t.Fatalf("%s: %v, want %v", where, a, st.act)
					}
				case "confirm":
					if o := e.confirm(c.ip, st.mac, st.how); o != st.out {
						t.Fatalf("%s: %v, want %v", where, o, st.out)
					}
				case "tick":
					for range len(e.tab.buckets) {
						e.tab.Tick(e.clock())
					}
					// What Tick stored, read without the listing's advance.
					if st.state != 0 {
						if got := e.stored(c.ip); got != st.state {
							t.Fatalf("%s: stored state %v, want %v", where, got, st.state)
						}
					}
				}
				if st.state != 0 || st.do == "look" {
					if got := e.state(c.ip); got != st.state {
						t.Fatalf("%s: state %v, want %v", where, got, st.state)
					}
				}
				if st.lladd != (header.MAC{}) {
					if got := e.entry(c.ip).MAC; got != st.lladd {
						t.Fatalf("%s: lladdr %v, want %v", where, got, st.lladd)
					}
				}
			}
		})
	}
}

// stored returns the state stored in the table, without applying due
// timer transitions.
func (e *env) stored(ip [16]byte) State {
	k := makeKey(1, &ip)
	_, en, _, found, _ := e.tab.find(k, e.tab.hash(k))
	if !found {
		return StateNone
	}
	return en.state
}

// refNA is RFC 4861 section 7.2.5 read literally (plus the kernel's
// "ignore an NA for a FAILED entry"): the reference for NA processing.
func refNA(st State, cached header.MAC, router bool, sFlag, oFlag, rFlag bool, ll *header.MAC) (State, header.MAC, bool, bool) {
	if st == StateFailed {
		return st, cached, router, false
	}
	if st == StateIncomplete {
		if ll == nil {
			return st, cached, router, false
		}
		if sFlag {
			return StateReachable, *ll, rFlag, true
		}
		return StateStale, *ll, rFlag, true
	}
	differs := ll != nil && *ll != cached
	if !oFlag && differs {
		if st == StateReachable {
			return StateStale, cached, router, true
		}
		return st, cached, router, false
	}
	mac := cached
	if differs {
		mac = *ll
	}
	switch {
	case sFlag:
		st = StateReachable
	case differs:
		st = StateStale
	}
	return st, mac, rFlag, true
}

// TestNAFlags checks NA processing against refNA for every starting state,
// router flag, S/O/R combination and address (none, same, another).
func TestNAFlags(t *testing.T) {
	type setup struct {
		state State
		make  func(e *env)
	}
	// Each setup leaves ip6 in its state at e.now, cached address macA
	// (but INCOMPLETE and FAILED), router flag as set by the first NA.
	var routerInit bool
	reach := func(e *env) {
		e.at(0)
		e.resolve(ip6)
		how := NA | Solicited | Override
		if routerInit {
			how |= IsRouter
		}
		e.confirm(ip6, macA, how)
	}
	setups := []setup{
		{StateIncomplete, func(e *env) { e.at(0); e.resolve(ip6) }},
		{StateReachable, func(e *env) { reach(e); e.at(10 * s) }},
		{StateStale, func(e *env) { reach(e); e.at(40 * s) }},
		{StateDelay, func(e *env) { reach(e); e.at(40 * s); e.resolve(ip6) }},
		{StateProbe, func(e *env) { reach(e); e.at(40 * s); e.resolve(ip6); e.at(45 * s); e.resolve(ip6) }},
		{StateFailed, func(e *env) { e.at(0); e.resolve(ip6); e.at(5 * s) }},
	}
	lls := []struct {
		name string
		ll   *header.MAC
	}{{"no lladdr", nil}, {"same lladdr", &macA}, {"other lladdr", &macB}}
	n := 0
	for _, su := range setups {
		for _, ri := range []bool{false, true} {
			for flags := range 8 {
				for _, ll := range lls {
					sF, oF, rF := flags&1 != 0, flags&2 != 0, flags&4 != 0
					name := fmt.Sprintf("%v router=%v S=%v O=%v R=%v %s", su.state, ri, sF, oF, rF, ll.name)
					routerInit = ri
					e := newEnv(t, nil)
					su.make(e)
					before := e.entry(ip6)
					if before.State != su.state {
						t.Fatalf("%s: setup gave %v", name, before.State)
					}
					how := NA
					if sF {
						how |= Solicited
					}
					if oF {
						how |= Override
					}
					if rF {
						how |= IsRouter
					}
					mac := header.MAC{}
					if ll.ll == nil {
						how |= NoLinkAddr
					} else {
						mac = *ll.ll
					}
					wantSt, wantMAC, wantR, applied := refNA(before.State, before.MAC, before.Router, sF, oF, rF, ll.ll)
					out := e.confirm(ip6, mac, how)
					after := e.entry(ip6)
					if (out != Ignored) != applied {
						t.Errorf("%s: outcome %v, reference applied=%v", name, out, applied)
					}
					if after.State != wantSt || after.Router != wantR || wantSt.Valid() && after.MAC != wantMAC {
						t.Errorf("%s: got %v %v router=%v, want %v %v router=%v", name, after.State, after.MAC, after.Router, wantSt, wantMAC, wantR)
					}
					n++
				}
			}
		}
	}
	if n != 6*2*8*3 {
		t.Fatalf("ran %d cases", n)
	}
}

func TestClassifyARP(t *testing.T) {
	me := [4]byte{10, 1, 0, 1}
	peer := [4]byte{10, 1, 0, 2}
	other := [4]byte{10, 1, 0, 3}
	sha := [6]byte(macA)
	zero := [6]byte{}
	cases := []struct {
		name                       string
		op                         uint16
		sip, tip                   [4]byte
		tha                        [6]byte
		toUs, tipLocal, sipUnicast bool
		want                       How
		ok                         bool
	}{
		{"request for us", 1, peer, me, zero, false, true, true, ARPRequestForUs, true},
		{"request for another host", 1, peer, other, zero, false, false, true, ARPRequest, true},
		{"unicast reply", 2, peer, me, [6]byte{2, 0, 0, 0, 0, 1}, true, true, true, ARPReply | Unicast, true},
		{"broadcast reply", 2, peer, me, zero, false, true, true, ARPReply, true},
		{"gratuitous request", 1, peer, peer, zero, false, false, true, ARPRequest | Gratuitous, true},
		{"gratuitous reply, tha = sha", 2, peer, peer, sha, false, false, true, ARPReply | Gratuitous, true},
		{"reply with sip = tip but tha != sha: not gratuitous", 2, peer, peer, zero, false, false, true, ARPReply, true},
		{"sip = tip not unicast: not gratuitous", 1, peer, peer, zero, false, false, false, ARPRequest, true},
		{"DAD probe (sip 0.0.0.0)", 1, [4]byte{}, me, zero, false, true, false, 0, false},
		{"RARP op", 3, peer, me, zero, false, true, true, 0, false},
	}
	for _, c := range cases {
		got, ok := ClassifyARP(c.op, c.sip, c.tip, sha, c.tha, c.toUs, c.tipLocal, c.sipUnicast)
		if got != c.want || ok != c.ok {
			t.Errorf("%s: %v %v, want %v %v", c.name, got, ok, c.want, c.ok)
		}
	}
}
