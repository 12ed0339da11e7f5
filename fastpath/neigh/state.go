package neigh

import "github.com/xdpfwd/xdpfwd/fastpath/header"

// State is a neighbour entry's state, with the kernel's NUD_* values
// (include/uapi/linux/neighbour.h).
type State uint8

// The states. An entry is never stored in StateNone.
const (
	StateNone       State = 0x00
	StateIncomplete State = 0x01 // resolving: solicitations sent, no address yet
	StateReachable  State = 0x02 // confirmed within the reachable time
	StateStale      State = 0x04 // has an address, not confirmed lately
	StateDelay      State = 0x08 // a STALE entry was used: probe soon
	StateProbe      State = 0x10 // unicast probes outstanding
	StateFailed     State = 0x20 // resolution failed
	StateNoARP      State = 0x40 // needs no resolution
	StatePermanent  State = 0x80 // static, from configuration
)

// valid is the kernel's NUD_VALID: states with a usable address.
const valid = StatePermanent | StateNoARP | StateReachable | StateProbe | StateStale | StateDelay

// connected is the kernel's NUD_CONNECTED.
const connected = StatePermanent | StateNoARP | StateReachable

// Valid reports whether entries in s have a usable address (NUD_VALID).
func (s State) Valid() bool { return s&valid != 0 }

// String returns the state as `ip neigh show` prints it.
func (s State) String() string {
	switch s {
	case StateNone:
		return "NONE"
	case StateIncomplete:
		return "INCOMPLETE"
	case StateReachable:
		return "REACHABLE"
	case StateStale:
		return "STALE"
	case StateDelay:
		return "DELAY"
	case StateProbe:
		return "PROBE"
	case StateFailed:
		return "FAILED"
	case StateNoARP:
		return "NOARP"
	case StatePermanent:
		return "PERMANENT"
	}
	return "state(" + itoa(uint64(s)) + ")"
}

// Action is what the caller of Resolve must do with the packet.
type Action uint8

const (
	// Send: rewrite the destination MAC to the returned one and send.
	Send Action = iota
	// SendProbe: as Send, and also send a unicast probe to the returned
	// MAC (an ARP request / a neighbour solicitation addressed to it):
	// the entry is in PROBE and a probe is due.
	SendProbe
	// HoldSolicit: hold the packet (Worker.Hold) and send a solicitation
	// to everyone (a broadcast ARP request / a neighbour solicitation to
	// the solicited-node multicast address): resolution just started, or
	// a retry is due.
	HoldSolicit
	// Hold: hold the packet (Worker.Hold); a solicitation is outstanding.
	Hold
	// Drop: drop the packet without an ICMP error, as the kernel does
	// when it cannot make the neighbour: the table is full (TableFull),
	// resolution is off (mcast_solicit 0), or another writer held the
	// entry's bucket for too long (Contended).
	Drop
)

// String names the action.
func (a Action) String() string {
	switch a {
	case Send:
		return "send"
	case SendProbe:
		return "send+probe"
	case HoldSolicit:
		return "hold+solicit"
	case Hold:
		return "hold"
	case Drop:
		return "drop"
	}
	return "action(" + itoa(uint64(a)) + ")"
}

// How describes the received message that carries a neighbour's link-layer
// address, for Confirm: exactly one kind, and the flags that apply to it.
// ClassifyARP derives it from an ARP packet.
type How uint16

// Kinds.
const (
	// ARPRequest: an ARP request sent by the neighbour (sender = it)
	// whose target is not one of our addresses: updates an existing
	// entry only, to STALE.
	ARPRequest How = 1
	// ARPRequestForUs: an ARP request from the neighbour for one of our
	// addresses on the interface (the router answers it): creates or
	// updates the entry, STALE, overriding its address (neigh_event_ns).
	ARPRequestForUs How = 2
	// ARPReply: an ARP reply sent by the neighbour: updates an existing
	// entry only; to REACHABLE when addressed to us (Unicast), else STALE.
	ARPReply How = 3
	// NS: a neighbour solicitation from the neighbour for one of our
	// addresses, with a source link-layer address option (RFC 4861
	// 7.2.3): creates or updates the entry, STALE, overriding.
	NS How = 4
	// NA: a neighbour advertisement whose target is the neighbour (RFC
	// 4861 7.2.5): updates an existing entry only, by its flags.
	NA How = 5

	kindMask How = 0xf
)

// Flags.
const (
	// Unicast (ARP): the frame was addressed to our MAC (the kernel's
	// PACKET_HOST), not broadcast: a reply asserts reachability.
	Unicast How = 1 << 4
	// Gratuitous (ARP): sender IP = target IP (for a reply also target
	// MAC = sender MAC) and the sender IP is a unicast address: it
	// overrides within LockTime (arp_is_garp).
	Gratuitous How = 1 << 5
	// Solicited (NA): the S flag.
	Solicited How = 1 << 6
	// Override (NA): the O flag.
	Override How = 1 << 7
	// IsRouter (NA): the R flag.
	IsRouter How = 1 << 8
	// NoLinkAddr (NA): no target link-layer address option; the mac
	// argument is ignored.
	NoLinkAddr How = 1 << 9
)

// Kind returns h's kind.
func (h How) Kind() How { return h & kindMask }

// ClassifyARP returns how Confirm must take an ARP packet with operation
// op (1 request, 2 reply), sender and target IPv4 addresses sip, tip and
// hardware addresses sha, tha, received as unicast to our MAC (toUs) or
// not, where tipLocal says tip is one of our addresses on the interface
// and sipUnicast that sip is a unicast address (not local, broadcast or
// multicast: the caller's routing table knows). ok is false for packets
// that update nothing: other operations, and sip 0.0.0.0 (a duplicate
// address detection probe, RFC 5227, which the kernel answers without
// learning). The rules are arp_process's in net/ipv4/arp.c.
func ClassifyARP(op uint16, sip, tip [4]byte, sha, tha [6]byte, toUs, tipLocal, sipUnicast bool) (how How, ok bool) {
	if sip == ([4]byte{}) {
		return 0, false
	}
	switch op {
	case 1:
		how = ARPRequest
		if tipLocal {
			how = ARPRequestForUs
		}
	case 2:
		how = ARPReply
	default:
		return 0, false
	}
	if toUs {
		how |= Unicast
	}
	garp := sip == tip
	if garp && op == 2 {
		garp = tha == sha
	}
	if garp && sipUnicast {
		how |= Gratuitous
	}
	return how, true
}

// Outcome is what Confirm did.
type Outcome uint8

const (
	// Ignored: nothing changed: no entry and the message does not create
	// one, the rules refuse the update (an entry within LockTime, an NA
	// without O for another address on an entry not REACHABLE, an NA for
	// a FAILED entry), or the entry is PERMANENT / on a NOARP interface.
	Ignored Outcome = iota
	// Unchanged: the entry was confirmed but its state and address are
	// the same (an ARP reply or a solicited NA for a REACHABLE entry
	// restarts its reachable time).
	Unchanged
	// Updated: the entry's state or address changed.
	Updated
	// Created: a new entry was made.
	Created
	// Refused: the message would create an entry, but the table is full
	// (TableFull) or its buckets were contended. (The kernel then does not
	// answer an ARP request for us either: neigh_event_ns failed.)
	Refused
	// Invalid: the address is not one an entry may have (a group or zero
	// MAC, a multicast IP) or how is not a valid kind.
	Invalid
)

// String names the outcome.
func (o Outcome) String() string {
	switch o {
	case Ignored:
		return "ignored"
	case Unchanged:
		return "unchanged"
	case Updated:
		return "updated"
	case Created:
		return "created"
	case Refused:
		return "refused"
	case Invalid:
		return "invalid"
	}
	return "outcome(" + itoa(uint64(o)) + ")"
}

// EventKind is what Worker.Poll asks the worker to do.
type EventKind uint8

const (
	// EventSend: send held packet Handle with destination MAC on Iface.
	EventSend EventKind = iota + 1
	// EventUnreachable: resolution of the packet's neighbour failed:
	// drop held packet Handle and answer its sender with ICMP host
	// unreachable (ICMPv6 address unreachable), as neigh_invalidate does.
	EventUnreachable
	// EventDrop: drop held packet Handle without an ICMP error: its
	// entry was deleted, or Drain emptied the queues.
	EventDrop
	// EventSolicit: send a solicitation for IP on Iface to everyone (a
	// broadcast ARP request / an NS to the solicited-node multicast
	// address): a retry for a neighbour this worker holds packets for.
	EventSolicit
	// EventProbe: send a unicast probe for IP on Iface to MAC.
	EventProbe
)

// String names the event kind.
func (k EventKind) String() string {
	switch k {
	case EventSend:
		return "send"
	case EventUnreachable:
		return "unreachable"
	case EventDrop:
		return "drop"
	case EventSolicit:
		return "solicit"
	case EventProbe:
		return "probe"
	}
	return "event(" + itoa(uint64(k)) + ")"
}

// Event is one thing Worker.Poll asks the worker to do.
type Event struct {
	// Kind says what.
	Kind EventKind
	// Iface is the interface of the neighbour.
	Iface uint16
	// Len is the held packet's length (EventSend, EventUnreachable,
	// EventDrop).
	Len uint32
	// Handle is the held packet (EventSend, EventUnreachable, EventDrop).
	Handle uint64
	// IP is the neighbour's address, IPv4 in its IPv4-mapped form.
	IP [16]byte
	// MAC is the destination MAC (EventSend, EventProbe).
	MAC header.MAC
}

func itoa(v uint64) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			return string(b[i:])
		}
	}
}
