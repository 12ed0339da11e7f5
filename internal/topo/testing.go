package topo

import (
	"os"
	"testing"
)

// ForTest returns a new [Topology] that is closed when tb and its subtests
// finish, pass or fail; a failure to clean up fails tb. It skips tb when the
// process is not root, since namespaces and veth pairs need CAP_NET_ADMIN
// and CAP_SYS_ADMIN.
func ForTest(tb testing.TB, prefix string) *Topology {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("skipping: creating network namespaces and veth pairs needs root")
	}
	t := New(prefix)
	tb.Cleanup(func() {
		if err := t.Close(); err != nil {
			tb.Errorf("tear down topology %s: %v", t.Prefix(), err)
		}
	})
	return t
}
