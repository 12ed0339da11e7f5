package main

import (
	"slices"
	"testing"
)

func TestSnmpUDPReceived(t *testing.T) {
	const snmp = `Ip: Forwarding DefaultTTL
Ip: 2 64
Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors
Udp: 256 3 50002 0 50000 0 2 0 0
UdpLite: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors
UdpLite: 7 0 0 0 7 0 0 0 0
`
	// Read datagrams plus those dropped at the full socket; not NoPorts,
	// not checksum errors, not UDP-Lite.
	if n, err := snmpUDPReceived(snmp); err != nil || n != 50256 {
		t.Errorf("snmpUDPReceived = %d, %v; want 50256", n, err)
	}
	for _, bad := range []string{"", "Udp: InDatagrams RcvbufErrors\n", "Udp: InDatagrams NoPorts\nUdp: 1 2\n", "Udp: InDatagrams RcvbufErrors\nUdp: 1 x\n"} {
		if n, err := snmpUDPReceived(bad); err == nil {
			t.Errorf("snmpUDPReceived(%q) = %d, want an error", bad, n)
		}
	}
}

func TestParsePercents(t *testing.T) {
	if p, err := parsePercents("10, 25,50,90"); err != nil || !slices.Equal(p, []float64{10, 25, 50, 90}) {
		t.Errorf("parsePercents = %v, %v", p, err)
	}
	if p, err := parsePercents(""); err != nil || len(p) != 0 {
		t.Errorf("parsePercents(\"\") = %v, %v; want none", p, err)
	}
	for _, bad := range []string{"0", "101", "x", "10,-5"} {
		if _, err := parsePercents(bad); err == nil {
			t.Errorf("parsePercents(%q): no error", bad)
		}
	}
}
