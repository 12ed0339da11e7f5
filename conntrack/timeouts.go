package conntrack

import "time"

// Timeouts are how long an entry lives after its last packet, per
// protocol and state; the kernel's nf_conntrack_*_timeout sysctls.
type Timeouts struct {
	// TCP is indexed by TCPConntrack (TCPSynSent … TCPSynSent2).
	TCP [TCPMax]time.Duration
	// TCPMaxRetrans applies once a direction retransmitted more than
	// MaxRetrans times (nf_conntrack_tcp_timeout_max_retrans).
	TCPMaxRetrans time.Duration
	// TCPUnacknowledged applies while data is unacknowledged
	// (nf_conntrack_tcp_timeout_unacknowledged).
	TCPUnacknowledged time.Duration
	// UDP is for a UDP flow that has not seen a reply or is not a stream;
	// UDPStream for one that is (replied, then more traffic after 2 s).
	UDP, UDPStream time.Duration
	// ICMP and ICMPv6 are for query/reply flows.
	ICMP, ICMPv6 time.Duration
	// Generic is for any other protocol.
	Generic time.Duration
}

// MaxRetrans is the kernel's nf_conntrack_tcp_max_retrans: after this many
// retransmissions of the same segment, TCPMaxRetrans applies.
const MaxRetrans = 3

// DefaultTimeouts returns this kernel's defaults (/proc/sys/net/netfilter
// on Linux 6.18).
func DefaultTimeouts() Timeouts {
	const s = time.Second
	var t Timeouts
	t.TCP[TCPNone] = 0
	t.TCP[TCPSynSent] = 120 * s
	t.TCP[TCPSynRecv] = 60 * s
	t.TCP[TCPEstablished] = 432000 * s
	t.TCP[TCPFinWait] = 120 * s
	t.TCP[TCPCloseWait] = 60 * s
	t.TCP[TCPLastAck] = 30 * s
	t.TCP[TCPTimeWait] = 120 * s
	t.TCP[TCPClose] = 10 * s
	t.TCP[TCPSynSent2] = 120 * s
	t.TCPMaxRetrans = 300 * s
	t.TCPUnacknowledged = 300 * s
	t.UDP = 30 * s
	t.UDPStream = 120 * s
	t.ICMP = 30 * s
	t.ICMPv6 = 30 * s
	t.Generic = 600 * s
	return t
}
