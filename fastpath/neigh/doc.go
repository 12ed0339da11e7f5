// Package neigh is the router's neighbour cache: the IP → MAC table that
// ARP (IPv4) and NDP (IPv6) fill, its state machine, and the packets
// waiting for a neighbour to resolve. It is written as the kernel's
// (net/core/neighbour.c, net/ipv4/arp.c, net/ipv6/ndisc.c) with the
// kernel's defaults (DefaultParams), so that xdpfwd and a kernel router
// answer the same traffic the same way.
//
// # Where it sits
//
// In the routed packet walk it is the step after the routing decision
// and before the L2 rewrite:
//
//	prerouting ─► route lookup (next hop: gateway, or the destination itself)
//	  ─► forward ─► postrouting ─► neighbour: Worker.Resolve(iface, nexthop)
//	       Send / SendProbe ─► L2 rewrite (dst = MAC, src = the interface's) ─► TX
//	       HoldSolicit / Hold ─► Worker.Hold (the frame waits here) [+ ARP request / NS]
//	       Drop ─► free the frame
//	every batch: Worker.Poll ─► held frames to send, to answer with ICMP host
//	       unreachable, or to free; retries of solicitations
//	ARP / NA / NS received ─► Table.Confirm
//	daemon, every ~100 ms: Table.Tick (timers, garbage collection)
//
// The package builds no packets: the caller sends the ARP requests,
// neighbour solicitations and ICMP errors it asks for.
//
// # States
//
// The kernel's NUD states, and what moves an entry between them (timers
// are applied by whoever meets the entry first: Resolve, Poll, Tick or a
// listing, at the kernel's deadlines):
//
//	            packet                       solicited NA, ARP reply to us
//	 (none) ─────────────► INCOMPLETE ─────────────────────────────► REACHABLE ◄─┐
//	                         │      ▲                                    │       │
//	      mcast_solicit      │      │ packet                  reachable  │       │ solicited NA,
//	      solicitations      ▼      │                         time       ▼       │ ARP reply to us
//	      unanswered       FAILED ──┘                                  STALE ◄── (none): ARP
//	                         ▲                                           │       │  request or
//	      ucast_solicit      │                                   packet  ▼       │  NS for us
//	      probes unanswered  │          delay_first_probe_time         DELAY     │
//	                         └───────────── PROBE ◄────────────────────┘         │
//	                                          └──────────────────────────────────┘
//
//	INCOMPLETE, PROBE: one solicitation every retrans_time (broadcast ARP or
//	multicast NS in INCOMPLETE, unicast in PROBE), FAILED after the last
//	one's retrans_time. FAILED entries start again on the next packet.
//
//	PERMANENT  static (AddStatic): never changes, never collected
//	NOARP      interfaces without resolution (Config.NoARP), multicast and
//	           broadcast destinations: a fixed MAC, no entry
//
// A confirmation in any state can make the entry REACHABLE or STALE by
// the rules in Table.Confirm (the kernel's arp_process and RFC 4861
// 7.2.5's NA flags S, O, R).
//
// Checked on this kernel (6.18, defaults, two network namespaces joined
// by a veth): a packet to an unanswered address sent three broadcast ARP
// requests, at 0, 1 and 2 s, and the entry was FAILED at 3 s; the next
// packet made it INCOMPLETE again. A used STALE entry went to DELAY and,
// delay_first_probe_time later, sent a unicast ARP request.
//
// # Sharing
//
// One Table serves all workers; each worker has a Worker for its counters
// and its held packets (frames of its own UMEM, so only it may send or
// free them). Lookups are loads only (a seqlock per 64-byte slot), state
// changes one compare-and-swap, and nothing on a worker's path allocates
// or takes a mutex; see Table for the layout and the protocol.
//
// # Differences from the kernel
//
//   - Solicitations and probes are sent by the workers, not by a timer:
//     Resolve when a packet comes, Poll while packets are held, and Poll
//     for the neighbours a worker's packets moved to DELAY, which it
//     watches until they are REACHABLE, FAILED or gone (up to 64 a
//     worker; beyond, such a neighbour probes only when a packet uses
//     it, and FAILs on time all the same).
//   - Upper-layer confirmation (TCP progress, MSG_CONFIRM) does not exist
//     in a forwarder; the kernel's forwarding path does not give it
//     either. So REACHABLE always ages to STALE, and DELAY always probes.
//   - One parameter set for both families and every interface; the
//     thresholds count each family apart, as the kernel's two tables do.
//   - Forced garbage collection when a family is full looks only at the
//     new neighbour's two buckets (the kernel walks its whole gc_list);
//     Tick brings a family above gc_thresh2 down over its next visits.
//   - Multicast and broadcast destinations get their MAC without an
//     entry (the kernel makes NOARP entries for them).
//   - app_solicit must be 0 (no arpd), mcast_resolicit is 0.
package neigh
