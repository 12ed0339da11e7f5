// Package topotest gives tests a [topo.Topology] that is torn down when
// the test ends. It lives apart from topo so that the product binary does
// not import the testing package.
package topotest

import (
	"os"
	"testing"

	"github.com/xdpfwd/xdpfwd/internal/topo"
)

// New returns a new [topo.Topology] that is closed when tb and its subtests
// finish, pass or fail; a failure to clean up fails tb. It skips tb when the
// process is not root, since namespaces and veth pairs need CAP_NET_ADMIN
// and CAP_SYS_ADMIN.
func New(tb testing.TB, prefix string) *topo.Topology {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("skipping: creating network namespaces and veth pairs needs root")
	}
	t := topo.New(prefix)
	tb.Cleanup(func() {
		if err := t.Close(); err != nil {
			tb.Errorf("tear down topology %s: %v", t.Prefix(), err)
		}
	})
	return t
}
