// Package route is xdpfwd's routing table: the routes the control plane
// adds, replaces and deletes (Table), and the forwarding table the fast
// path reads (FIB): IPv4 and IPv6 longest-prefix match, route types as
// `ip route` has them, and ECMP by per-flow hash.
//
// It sits at the routing decision of a routed packet's walk, between the
// prerouting hook (filter, DNAT, conntrack) and the forward or input hook:
//
//	prerouting ─► route: View.Lookup4 / Lookup4Batch / Lookup6 (dst, flow hash)
//	                ├─ Unicast: View.Hop → output port, gateway ─► forward ─► postrouting ─► neighbour
//	                ├─ Local: the router's own address ─► input
//	                ├─ NoRoute: ICMP network unreachable; Unreachable: host unreachable;
//	                │  Prohibit: administratively prohibited
//	                └─ Blackhole: dropped silently
//
// A worker takes a View once per batch (FIB.View) and looks up each
// packet without locks or allocations; a Result is 8 pointer-free bytes
// that fit in packet metadata, and View.Hop reads its next hop (output
// port and gateway, also pointer-free). The Table's writer changes the
// FIB while workers read it: every lookup answers as the routes were
// before or after a concurrent change, never a mixture.
//
// Of several routes to one prefix the lowest metric is in the FIB, as in
// the kernel. ECMP is the kernel's hash-threshold selection with weights
// (fib_rebalance, fib_select_multipath): each next hop owns a slice of the
// 31-bit hash space by its share of the weights, and the flow hash's top
// 31 bits pick it. The caller computes the hash once per packet, the same
// way on every worker, from the fields of the kernel's
// fib_multipath_hash_policy:
//
//	0 (L3): source and destination address (IPv6: also flow label and next header)
//	1 (L4): source and destination address, protocol, source and destination
//	        port (ICMP errors hash as the flow they quote)
//
// Any well-mixed 32-bit hash of them will do (the kernel's jhash values are
// not reproduced, so a flow's next hop differs from the kernel's choice
// while spread and stability match): a flow keeps its next hop on every
// worker and across changes to other routes.
//
// IPv4 is a 16-8-8 multibit trie with leaf pushing (VPP's ip4 mtrie) in
// one pointer-free []uint32 on transparent huge pages, changed in place
// with atomic stores and rebuilt when freed space dominates; IPv6 is a
// DXR range table over the upper 64 bits (fib6.go), changed per chunk
// with atomic stores, its few prefixes longer than /64 in a
// github.com/gaissmai/bart Table. Measured on the development machine (2
// cores, AMD EPYC, shared with other work: numbers wander by up to 2x
// between runs), at 100 000 routes spread as an Internet table, for
// random destinations / destinations inside the routes, ns per lookup:
//
//	IPv4 Lookup4Batch, 64 a call      8.0-8.5 / 5.8-6.1
//	IPv4 Lookup4                      13-14   / 8.0-8.7
//	  same trie, 24-bit root (DIR-24-8)  8.9-10  / 6.0-8.2, twice the memory
//	  bart.Table / bart.Fast Lookup   33-60 / 43-79, 31-63 / 39-55
//	IPv6 Lookup6                      26-27   / 37-40
//	  bart.Table / bart.Fast, built in one go  30-35 / 91-165, 23-29 / 125-207
//	  (IPv6 rows from a slower day of the machine: bart.Table inside the
//	  routes took 40-42 on the day of the IPv4 rows)
//	bytes, IPv4 FIB                   65 MB (16-8-8), 126 MB (DIR-24-8)
//	add + delete one route            2.4-3.0 µs IPv4, 3.2-4.0 µs IPv6
//
// BenchmarkLookup4, BenchmarkLookup6, BenchmarkUpdate and BenchmarkMemory
// measure them.
package route
