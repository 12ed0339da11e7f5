// Package conntrack is xdpfwd's connection tracker, with the Linux
// kernel's semantics (net/netfilter/nf_conntrack_*.c): a bounded flow
// table shared by every worker, each entry found under its original and
// its reply tuple; the states `ct state` matches (new, established,
// related, invalid, untracked) and the status bits `ct status` does
// (seen-reply, assured, confirmed, snat, dnat, dying); TCP tracked as the
// kernel tracks it (states, window tracking, timeouts); UDP, ICMP and
// ICMPv6 echo; ICMP errors related to the flow they quote; timeouts with
// the kernel's defaults on an injected clock.
//
// The package knows nothing of sockets or frames: callers decode a packet
// once into a Tuple (and, for TCP, a TCPSegment) and ask the Table.
package conntrack
