package config

import (
	"strings"
	"time"

	"github.com/xdpfwd/xdpfwd/conntrack"
	"go.yaml.in/yaml/v3"
)

// Conntrack configures connection tracking (`conntrack:`), with the
// kernel's defaults filled in for what the file does not give:
//
//	conntrack:
//	  max: 262144              # nf_conntrack_max
//	  buckets: 262144          # nf_conntrack_buckets (default: max, rounded up to a power of two)
//	  timeouts:                # seconds, keyed as the nf_conntrack_* sysctls
//	    tcp_timeout_established: 432000
//	    udp_timeout: 30
//	  tcp_loose: true          # nf_conntrack_tcp_loose
//	  tcp_be_liberal: false    # nf_conntrack_tcp_be_liberal
//	  tcp_max_retrans: 3       # nf_conntrack_tcp_max_retrans
//	  checksum: true           # nf_conntrack_checksum
type Conntrack struct {
	// Max is the most entries the flow table holds, 1 to 2^30 (the
	// table allocates about 128 bytes per entry up front); default
	// conntrack.DefaultMax.
	Max int
	// Buckets is the number of hash buckets, 1 to 2^30; 0 (the default)
	// is Max rounded up to a power of two.
	Buckets int
	// Timeouts are the per-protocol and per-state timeouts, whole
	// seconds from 1 to maxConntrackTimeout; the kernel's defaults
	// (conntrack.DefaultTimeouts) for those not given.
	Timeouts conntrack.Timeouts
	// TCP is the TCP tracker's configuration; the kernel's defaults
	// (conntrack.DefaultTCPConfig) for what is not given.
	TCP conntrack.TCPConfig
	// Checksum checks transport checksums at prerouting
	// (nf_conntrack_checksum); default true, as the kernel's.
	Checksum bool
	// Pos is where the conntrack mapping starts; zero if the file has no
	// conntrack section.
	Pos Pos
}

// Bounds of the conntrack section.
const (
	// maxConntrackEntries is the table's own bound on Max and Buckets.
	maxConntrackEntries = 1 << 30
	// maxConntrackTimeout is the longest timeout, in seconds: the
	// kernel's bound for its jiffies sysctls at HZ=1000 (INT_MAX / HZ),
	// within the flow table's clock (2^31 ticks of 2^20 ns).
	maxConntrackTimeout = 2147483
)

// DefaultConntrack returns the conntrack configuration of a file without
// a conntrack section: the kernel's defaults.
func DefaultConntrack() Conntrack {
	return Conntrack{Max: conntrack.DefaultMax, Timeouts: conntrack.DefaultTimeouts(), TCP: conntrack.DefaultTCPConfig(), Checksum: true}
}

// conntrackTimeoutKeys are the timeouts: the nf_conntrack_* sysctls
// without their prefix, in the kernel's order.
var conntrackTimeoutKeys = []string{
	"tcp_timeout_syn_sent", "tcp_timeout_syn_recv", "tcp_timeout_established", "tcp_timeout_fin_wait",
	"tcp_timeout_close_wait", "tcp_timeout_last_ack", "tcp_timeout_time_wait", "tcp_timeout_close",
	"tcp_timeout_max_retrans", "tcp_timeout_unacknowledged", "udp_timeout", "udp_timeout_stream",
	"icmp_timeout", "icmpv6_timeout", "generic_timeout",
}

// conntrackTimeout returns the timeout of t that sysctl key sets, nil for
// a key that is not one.
func conntrackTimeout(t *conntrack.Timeouts, key string) *time.Duration {
	switch key {
	case "tcp_timeout_syn_sent":
		return &t.TCP[conntrack.TCPSynSent]
	case "tcp_timeout_syn_recv":
		return &t.TCP[conntrack.TCPSynRecv]
	case "tcp_timeout_established":
		return &t.TCP[conntrack.TCPEstablished]
	case "tcp_timeout_fin_wait":
		return &t.TCP[conntrack.TCPFinWait]
	case "tcp_timeout_close_wait":
		return &t.TCP[conntrack.TCPCloseWait]
	case "tcp_timeout_last_ack":
		return &t.TCP[conntrack.TCPLastAck]
	case "tcp_timeout_time_wait":
		return &t.TCP[conntrack.TCPTimeWait]
	case "tcp_timeout_close":
		return &t.TCP[conntrack.TCPClose]
	case "tcp_timeout_max_retrans":
		return &t.TCPMaxRetrans
	case "tcp_timeout_unacknowledged":
		return &t.TCPUnacknowledged
	case "udp_timeout":
		return &t.UDP
	case "udp_timeout_stream":
		return &t.UDPStream
	case "icmp_timeout":
		return &t.ICMP
	case "icmpv6_timeout":
		return &t.ICMPv6
	case "generic_timeout":
		return &t.Generic
	}
	return nil
}

// conntrack decodes the conntrack section into ct, which holds the
// defaults.
func (d *decoder) conntrack(n *yaml.Node, path string, ct *Conntrack) error {
	ct.Pos = pos(n)
	return d.fields(n, path, "max, buckets, timeouts, tcp_loose, tcp_be_liberal, tcp_ignore_invalid_rst, tcp_max_retrans, checksum", func(key string, v *yaml.Node, field string) (err error) {
		switch key {
		case "max":
			ct.Max, err = d.intRange(v, field, 1, maxConntrackEntries)
		case "buckets":
			ct.Buckets, err = d.intRange(v, field, 1, maxConntrackEntries)
		case "timeouts":
			err = d.fields(v, field, strings.Join(conntrackTimeoutKeys, ", "), func(key string, v *yaml.Node, field string) error {
				p := conntrackTimeout(&ct.Timeouts, key)
				if p == nil {
					return errUnknown
				}
				s, err := d.intRange(v, field, 1, maxConntrackTimeout)
				*p = time.Duration(s) * time.Second
				return err
			})
		case "tcp_loose":
			ct.TCP.Loose, err = d.sysctlBool(v, field)
		case "tcp_be_liberal":
			ct.TCP.BeLiberal, err = d.sysctlBool(v, field)
		case "tcp_ignore_invalid_rst":
			ct.TCP.IgnoreInvalidRST, err = d.sysctlBool(v, field)
		case "checksum":
			ct.Checksum, err = d.sysctlBool(v, field)
		case "tcp_max_retrans":
			var r int
			r, err = d.intRange(v, field, 0, 255)
			ct.TCP.MaxRetrans = uint8(r)
		default:
			err = errUnknown
		}
		return err
	})
}

// sysctlBool decodes a boolean sysctl: true or false, or 1 or 0 as the
// sysctl is written.
func (d *decoder) sysctlBool(n *yaml.Node, field string) (bool, error) {
	if n.Kind == yaml.ScalarNode {
		switch n.Value {
		case "1":
			return true, nil
		case "0":
			return false, nil
		}
	}
	return d.boolean(n, field)
}
