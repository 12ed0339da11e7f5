// Package nftnl loads an nftables ruleset file the way the kernel
// compiles it: Load runs the real `nft -f` in a throwaway network
// namespace (with stand-in interfaces for the names that rules compile to
// ifindexes), reads each rule's text from `nft -a list ruleset`, and reads
// the kernel's compiled form back over netlink (NETLINK_NETFILTER dumps of
// tables, chains, sets and their elements, objects and rules) into
// fastpath/rules.
//
// Decoding walks the netlink attributes itself: every attribute of every
// message is read or the message is refused, so an expression or an
// attribute this package does not understand is an error naming the rule
// (RuleError), never a rule silently weakened. The decoders are pure
// functions of a message's bytes, fuzzed from messages the kernel sent
// (testdata/fuzz).
package nftnl
