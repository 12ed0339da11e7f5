// Package rules is the typed form of an nftables ruleset as the kernel
// compiled it: tables, chains, rules with their expressions, sets and
// their elements, named objects. It is pure data: the loader in
// fastpath/rules/nftnl fills it from the kernel (nft -f in a throwaway
// network namespace, read back over netlink), and the interpreter and the
// classifier run it.
//
// The representation follows the kernel's nf_tables exactly: one Go type
// per expression, with the attributes the kernel dumps for it, registers
// by their netlink numbers (Register), data as the bytes the kernel
// compares (network byte order where nft put it so). Nothing is
// normalised away: what `nft --debug=netlink` shows for a rule is what
// its Exprs hold, and String prints them in that style.
//
//	table inet t { chain in { type filter hook input priority 0;
//	    ip saddr 10.0.0.0/8 accept } }
//
// becomes one Rule whose Exprs are
//
//	[ meta load nfproto => reg 1 ]
//	[ cmp eq reg 1 0x02 ]
//	[ payload load 1b @ network header + 12 => reg 1 ]
//	[ cmp eq reg 1 0x0a ]
//	[ immediate reg 0 accept ]
//
// Compile links a Ruleset into a Program for xdpfwd's devices (Env),
// refusing what xdpfwd does not run; an Engine (a fastpath.Subsystem)
// runs the current Program at the hooks of the packet walk with the
// reference interpreter, exact to the kernel's nf_tables core, and swaps
// programs between batches, carrying unchanged rules' counters over. A
// bit-vector classifier per chain (classify.go) skips the rules whose
// leading matches on packet fields (payload and meta loads, masks, cmp,
// range, set lookups) fail, so that a packet's cost is nearly flat in
// the number of rules; the interpreter runs the rest of each rule that
// can match, and every rule the classifier does not hold.
package rules
