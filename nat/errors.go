package nat

import "strconv"

// Error is why a packet cannot be translated: where the kernel's
// manipulation fails and the packet is dropped (NF_DROP). It allocates
// nothing when returned, so that a flood of bad packets costs no
// garbage, and it can index per-reason counters.
type Error uint8

// The reasons.
const (
	// ErrFamily: the family is neither 4 nor 6.
	ErrFamily Error = iota + 1
	// ErrShortIP: shorter than its IP header (skb_ensure_writable of the
	// IP header fails).
	ErrShortIP
	// ErrShortL4: shorter than the part of the transport header the
	// protocol rewrites (8 bytes; skb_ensure_writable fails).
	ErrShortL4
	// ErrShortICMP: an ICMP error shorter than its header and the quoted
	// IP header.
	ErrShortICMP
	// ErrICMPChecksum: an ICMP error whose checksum is wrong
	// (nf_ip_checksum, nf_ip6_checksum).
	ErrICMPChecksum
	// ErrRedirect: an ICMP redirect about a connection that is translated
	// or whose NAT is not set up both ways.
	ErrRedirect
	// ErrQuoted: the quoted packet's IP header is not one of the
	// error's family (conntrack relates no such error).
	ErrQuoted
)

var errText = [...]string{
	ErrFamily:       "nat: IP family is not 4 or 6",
	ErrShortIP:      "nat: packet shorter than its IP header",
	ErrShortL4:      "nat: packet shorter than the transport header to rewrite",
	ErrShortICMP:    "nat: ICMP error shorter than its header and the quoted IP header",
	ErrICMPChecksum: "nat: ICMP error with a wrong checksum",
	ErrRedirect:     "nat: ICMP redirect about a translated connection",
	ErrQuoted:       "nat: ICMP error quotes no IP header of its family",
}

// Error returns the reason.
func (e Error) Error() string {
	if int(e) < len(errText) && errText[e] != "" {
		return errText[e]
	}
	return "nat: error " + strconv.Itoa(int(e))
}
