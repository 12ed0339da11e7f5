package config

import (
	"fmt"
	"strings"
	"testing"
)

// staticOn returns vlanGood with its static entries replaced by one MAC
// pinned per given "port[/vlan]".
func staticOn(pins ...string) string {
	var b strings.Builder
	for _, p := range pins {
		port, vlan, tagged := strings.Cut(p, "/")
		fmt.Fprintf(&b, "      - mac: 02:00:00:00:00:0a\n        port: %s\n", port)
		if tagged {
			fmt.Fprintf(&b, "        vlan: %s\n", vlan)
		}
	}
	i := strings.Index(vlanGood, "      - mac:")
	return vlanGood[:i] + b.String()
}

// TestParseStaticPerVLAN: a static entry is checked for duplicates on the
// VLANs it applies to (vlan 0: every VLAN of its port), so one MAC may be
// pinned on several ports whose VLANs differ — a MAC pinned on every VLAN
// of port a (VLAN 10) and on c's VLAN 20 never overlap.
func TestParseStaticPerVLAN(t *testing.T) {
	for _, pins := range [][]string{
		{"a", "c/20"},
		{"a", "c"},
		{"a/10", "c"},
		{"a", "t/20"},
		{"c", "t/10"},
		{"t/10", "t/20"},
	} {
		c, err := Parse("x.yaml", []byte(staticOn(pins...)))
		if err != nil {
			t.Errorf("%v: %v", pins, err)
			continue
		}
		if got := len(c.Bridges[0].Static); got != len(pins) {
			t.Errorf("%v: %d static entries, want %d", pins, got, len(pins))
		}
	}
}

// TestParseStaticTwiceOnAVLAN: a MAC pinned twice on one VLAN, directly
// or through vlan 0 (every VLAN of the port), is refused at the second
// entry's mac, naming the VLAN and the first entry.
func TestParseStaticTwiceOnAVLAN(t *testing.T) {
	for _, tc := range []struct {
		pins []string
		want string
	}{
		{[]string{"a", "t/10"}, `x.yaml:17:14: bridges[0].static[1].mac: 02:00:00:00:00:0a is pinned twice on VLAN 10 (also static[0])`},
		{[]string{"t", "c"}, `x.yaml:17:14: bridges[0].static[1].mac: 02:00:00:00:00:0a is pinned twice on VLAN 20 (also static[0])`},
		{[]string{"c/20", "a", "t"}, `x.yaml:20:14: bridges[0].static[2].mac: 02:00:00:00:00:0a is pinned twice on VLAN 10 (also static[1])`},
		{[]string{"a/10", "b/10"}, `x.yaml:18:14: bridges[0].static[1].mac: 02:00:00:00:00:0a is pinned twice on VLAN 10 (also static[0])`},
	} {
		_, err := Parse("x.yaml", []byte(staticOn(tc.pins...)))
		if err == nil || err.Error() != tc.want {
			t.Errorf("%v: err = %v, want %s", tc.pins, err, tc.want)
		}
	}
}

// BenchmarkParseStatics parses a bridge with many static entries, each
// checked against the others for duplicates.
func BenchmarkParseStatics(b *testing.B) {
	var src strings.Builder
	src.WriteString("ports: [{interface: a}, {interface: b}]\nbridges:\n  - name: br0\n    ports: [a, b]\n    static:\n")
	for i := range 20000 {
		fmt.Fprintf(&src, "      - {mac: 02:00:00:%02x:%02x:%02x, port: a}\n", i>>16, i>>8&0xff, i&0xff)
	}
	buf := []byte(src.String())
	for b.Loop() {
		if _, err := Parse("x.yaml", buf); err != nil {
			b.Fatal(err)
		}
	}
}
