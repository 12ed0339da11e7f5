// Package nat is the kernel's NAT core as pure functions: choosing the
// tuple a connection is translated to (net/netfilter/nf_nat_core.c),
// rewriting a packet to it (nf_nat_proto.c), translating the ICMP errors
// that quote a translated packet, and the masquerade and netmap ranges
// (nf_nat_masquerade.c, nft_nat.c). It knows nothing of sockets,
// pipelines or rules: the connection table is reached only through the
// functions the caller passes, and packets are byte slices from the IP
// header on.
//
// The semantics are Linux 6.18's. In that kernel DCCP is no longer
// tracked (its conntrack and NAT were removed in 6.16), so a DCCP packet
// gets only its addresses rewritten, as any protocol NAT does not know;
// GRE's PPTP call-id rewrite needs the GRE keys the conntrack package
// does not track, so GRE is handled as an unknown protocol too.
package nat
