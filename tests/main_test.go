// Package tests holds privileged integration tests: real namespaces, veth
// pairs and the real xdpfwd binary, driven the way a user drives it.
package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// xdpfwdPath is the binary built by TestMain; buildErr is why it is missing.
var (
	xdpfwdPath string
	buildErr   error
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	if os.Geteuid() == 0 {
		dir, err := os.MkdirTemp("", "xdpfwd-bin-")
		if err != nil {
			fmt.Fprintf(os.Stderr, "create directory for the xdpfwd binary: %v\n", err)
			return 1
		}
		defer os.RemoveAll(dir)
		xdpfwdPath = filepath.Join(dir, "xdpfwd")
		args := []string{"build", "-o", xdpfwdPath}
		if os.Getenv("XDPFWD_TEST_RACE") != "" {
			// The daemon under the race detector: a race makes it exit
			// 66, which the tests that stop it cleanly catch.
			args = append(args, "-race")
		}
		out, err := exec.Command("go", append(args, "github.com/xdpfwd/xdpfwd/cmd/xdpfwd")...).CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build ./cmd/xdpfwd: %w\n%s", err, out)
		}
	}
	return m.Run()
}

// xdpfwdBinary returns the path of the xdpfwd binary, failing tb if it did not build.
func xdpfwdBinary(tb testing.TB) string {
	tb.Helper()
	if buildErr != nil {
		tb.Fatal(buildErr)
	}
	return xdpfwdPath
}
