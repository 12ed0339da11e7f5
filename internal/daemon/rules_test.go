package daemon

import (
	"strings"
	"testing"

	"github.com/xdpfwd/xdpfwd/internal/config"
)

// A reload takes a new ruleset and moved lines; any other change is
// named by its field.
func TestDataplaneChange(t *testing.T) {
	const base = "ports:\n  - interface: a\n  - interface: b\nrouter:\n  interfaces:\n    - name: a\n      addresses: [10.1.0.1/24]\nruleset: r.nft\n"
	parse := func(src string) *config.Config {
		t.Helper()
		c, err := config.Parse("x.yaml", []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	a := parse(base)
	for _, tc := range []struct{ name, src, want string }{
		{"same", base, ""},
		{"other ruleset", strings.Replace(base, "r.nft", "s.nft", 1), ""},
		{"moved lines", "# a comment\n\n" + base, ""},
		{"address", strings.Replace(base, "10.1.0.1/24", "10.1.0.2/24", 1), "Router.Interfaces[0].Addresses[0]"},
		{"port added", strings.Replace(base, "  - interface: b\n", "  - interface: b\n  - interface: c\n", 1), "Ports"},
		{"router removed", "ports:\n  - interface: a\n  - interface: b\n", "Router"},
	} {
		if got := dataplaneChange(a, parse(tc.src)); got != tc.want {
			t.Errorf("%s: dataplaneChange = %q, want %q", tc.name, got, tc.want)
		}
	}
}
