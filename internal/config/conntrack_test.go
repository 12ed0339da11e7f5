package config

import (
	"strings"
	"testing"
	"time"

	"github.com/xdpfwd/xdpfwd/conntrack"
)

const goodConntrack = `ports:
  - interface: a
conntrack:
  max: 65536
  buckets: 16384
  timeouts:
    tcp_timeout_established: 7200
    tcp_timeout_syn_sent: 60
    tcp_timeout_max_retrans: 100
    tcp_timeout_unacknowledged: 200
    udp_timeout: 10
    udp_timeout_stream: 180
    icmp_timeout: 5
    icmpv6_timeout: 6
    generic_timeout: 300
  tcp_loose: false
  tcp_be_liberal: 1
  tcp_ignore_invalid_rst: true
  tcp_max_retrans: 5
  checksum: 0
`

func TestParseConntrack(t *testing.T) {
	c, err := Parse("x.yaml", []byte(goodConntrack))
	if err != nil {
		t.Fatal(err)
	}
	ct := c.Conntrack
	want := conntrack.DefaultTimeouts()
	want.TCP[conntrack.TCPEstablished] = 7200 * time.Second
	want.TCP[conntrack.TCPSynSent] = 60 * time.Second
	want.TCPMaxRetrans = 100 * time.Second
	want.TCPUnacknowledged = 200 * time.Second
	want.UDP, want.UDPStream = 10*time.Second, 180*time.Second
	want.ICMP, want.ICMPv6, want.Generic = 5*time.Second, 6*time.Second, 300*time.Second
	if ct.Max != 65536 || ct.Buckets != 16384 || ct.Timeouts != want || ct.Pos != (Pos{4, 3}) {
		t.Errorf("conntrack = %+v", ct)
	}
	if ct.Checksum {
		t.Error("checksum: 0 left the check on")
	}
	if ct.TCP != (conntrack.TCPConfig{Loose: false, BeLiberal: true, IgnoreInvalidRST: true, MaxRetrans: 5}) {
		t.Errorf("tcp = %+v", ct.TCP)
	}
	// Every sysctl named is a timeout of its own.
	seen := map[*time.Duration]string{}
	var tm conntrack.Timeouts
	for _, k := range conntrackTimeoutKeys {
		p := conntrackTimeout(&tm, k)
		if p == nil || seen[p] != "" {
			t.Errorf("%s: %p (also %s)", k, p, seen[p])
		}
		seen[p] = k
	}
	// Without the section, or with an empty one: the kernel's defaults.
	for _, src := range []string{"ports:\n  - interface: a\n", "ports:\n  - interface: a\nconntrack: {}\n", "ports:\n  - interface: a\nconntrack: {timeouts: {}}\n"} {
		c, err := Parse("x.yaml", []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		c.Conntrack.Pos = Pos{}
		if c.Conntrack != DefaultConntrack() || c.Conntrack.Max != 262144 || !c.Conntrack.TCP.Loose || c.Conntrack.TCP.MaxRetrans != 3 || !c.Conntrack.Checksum {
			t.Errorf("%q: %+v", src, c.Conntrack)
		}
	}
}

// Bad values are refused with the file, the line and the field.
func TestParseConntrackErrors(t *testing.T) {
	for _, tc := range []struct{ name, edit, want string }{
		{"zero max", "max: 65536=>max: 0", `x.yaml:4:8: conntrack.max: 0 is out of range [1, 1073741824]`},
		{"negative max", "max: 65536=>max: -1", `x.yaml:4:8: conntrack.max: -1 is out of range`},
		{"max not a number", "max: 65536=>max: lots", `x.yaml:4:8: conntrack.max: "lots" is not an integer`},
		{"zero buckets", "buckets: 16384=>buckets: 0", `x.yaml:5:12: conntrack.buckets: 0 is out of range`},
		{"negative timeout", "udp_timeout: 10=>udp_timeout: -10", `x.yaml:11:18: conntrack.timeouts.udp_timeout: -10 is out of range [1, 2147483]`},
		{"zero timeout", "icmp_timeout: 5=>icmp_timeout: 0", `x.yaml:13:19: conntrack.timeouts.icmp_timeout: 0 is out of range`},
		{"huge timeout", "generic_timeout: 300=>generic_timeout: 2147484", `x.yaml:15:22: conntrack.timeouts.generic_timeout: 2147484 is out of range`},
		{"duration timeout", "udp_timeout: 10=>udp_timeout: 10s", `x.yaml:11:18: conntrack.timeouts.udp_timeout: "10s" is not an integer`},
		{"unknown timeout", "udp_timeout: 10=>udp_timout: 10", `x.yaml:11:5: conntrack.timeouts.udp_timout: unknown field "udp_timout" (known: tcp_timeout_syn_sent,`},
		{"prefixed timeout", "udp_timeout: 10=>nf_conntrack_udp_timeout: 10", `conntrack.timeouts.nf_conntrack_udp_timeout: unknown field`},
		{"unknown key", "tcp_loose: false=>tcp_lose: false", `x.yaml:16:3: conntrack.tcp_lose: unknown field "tcp_lose" (known: max, buckets, timeouts,`},
		{"bad bool", "tcp_loose: false=>tcp_loose: 2", `x.yaml:16:14: conntrack.tcp_loose: "2" is not true or false`},
		{"retrans range", "tcp_max_retrans: 5=>tcp_max_retrans: 256", `x.yaml:19:20: conntrack.tcp_max_retrans: 256 is out of range [0, 255]`},
		{"timeouts not a mapping", "timeouts:\n=>timeouts: 5\n  x:\n", `conntrack.timeouts: must be a mapping`},
		{"not a mapping", "conntrack:\n  max: 65536\n=>conntrack: [1]\nx:\n  max: 65536\n", `x.yaml:3:12: conntrack: must be a mapping`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old, repl, _ := strings.Cut(tc.edit, "=>")
			src := strings.Replace(goodConntrack, old, repl, 1)
			if src == goodConntrack {
				t.Fatalf("edit %q changed nothing", tc.edit)
			}
			_, err := Parse("x.yaml", []byte(src))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}
