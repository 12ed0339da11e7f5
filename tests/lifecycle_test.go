package tests

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xdpfwd/xdpfwd/internal/topo"
)

// TestSIGKILLDetaches checks that a daemon killed without a chance to clean
// up leaves no XDP program behind (the programs are held by bpf_links that
// die with the process).
func TestSIGKILLDetaches(t *testing.T) {
	t.Parallel()
	s := star(t, topo.VethOptions{}, topo.VethOptions{}, topo.VethOptions{})
	d := runDaemon(t, s.Switch, bridgeConfig(ports(s)...))
	assertXDP(t, s.Switch, ports(s)...)

	if err := d.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	d.waitExit(5 * time.Second)

	deadline := time.Now().Add(2 * time.Second)
	for {
		attached := attachedPorts(t, s)
		if len(attached) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("2s after SIGKILL, XDP programs are still attached to %v", attached)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func attachedPorts(t *testing.T, s *topo.Star) []string {
	t.Helper()
	var on []string
	for _, p := range ports(s) {
		a, err := s.Switch.XDPAttached(p)
		if err != nil {
			t.Fatal(err)
		}
		if a {
			on = append(on, p)
		}
	}
	return on
}

// TestSignalCleanExit checks that SIGTERM and SIGINT make the daemon exit
// with status 0 having detached every port.
func TestSignalCleanExit(t *testing.T) {
	t.Parallel()
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			s := star(t, topo.VethOptions{}, topo.VethOptions{})
			d := runDaemon(t, s.Switch, bridgeConfig(ports(s)...))
			assertXDP(t, s.Switch, ports(s)...)
			ping(t, s.Hosts[0], s.Hosts[1].IP)

			if err := d.cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			st := d.waitExit(10 * time.Second)
			if !st.Exited() || st.ExitCode() != 0 {
				t.Errorf("after %v: %v, want exit status 0\nstderr:\n%s", sig, st, d.stderr.String())
			}
			assertNoXDP(t, s.Switch, ports(s)...)
			if _, err := os.Stat(d.control); err == nil {
				t.Errorf("control socket %s left behind", d.control)
			}
		})
	}
}

// assertFailed checks that d exits on its own within 10 s with a non-zero
// status and a clean error (no panic), and returns its stderr.
func assertFailed(t *testing.T, d *daemon) string {
	t.Helper()
	st := d.waitExit(10 * time.Second)
	stderr := d.stderr.String()
	if !st.Exited() || st.ExitCode() == 0 {
		t.Errorf("%v, want a non-zero exit status\nstderr:\n%s", st, stderr)
	}
	if strings.Contains(stderr, "panic:") || strings.Contains(stderr, "goroutine ") {
		t.Errorf("xdpfwd crashed instead of reporting an error:\n%s", stderr)
	}
	if strings.TrimSpace(stderr) == "" {
		t.Error("xdpfwd failed with nothing on stderr")
	}
	return stderr
}

func TestErrorUnknownInterface(t *testing.T) {
	t.Parallel()
	s := star(t, topo.VethOptions{}, topo.VethOptions{})
	d := startDaemon(t, s.Switch, bridgeConfig("p1", "nosuch0"))
	stderr := assertFailed(t, d)
	if !strings.Contains(stderr, "nosuch0") {
		t.Errorf("stderr does not name the unknown interface nosuch0:\n%s", stderr)
	}
	assertNoXDP(t, s.Switch, ports(s)...)
}

// TestErrorPortInUse starts a second daemon on a port the first one holds:
// the second must fail, say so, undo what it did, and leave the first
// forwarding.
func TestErrorPortInUse(t *testing.T) {
	t.Parallel()
	s := star(t, topo.VethOptions{}, topo.VethOptions{}, topo.VethOptions{})
	a, b := s.Hosts[0], s.Hosts[1]
	first := runDaemon(t, s.Switch, bridgeConfig("p1", "p2"))

	// p3 first, so a second daemon that attaches in order holds it when p1 fails.
	second := startDaemon(t, s.Switch, bridgeConfig("p3", "p1"))
	stderr := assertFailed(t, second)
	if !strings.Contains(stderr, "p1") || !strings.Contains(strings.ToLower(stderr), "already") {
		t.Errorf("stderr should name port p1 and say it is already in use:\n%s", stderr)
	}
	assertNoXDP(t, s.Switch, "p3")
	assertXDP(t, s.Switch, "p1", "p2")

	first.stats()
	ping(t, a, b.IP)
}

func TestErrorMalformedConfig(t *testing.T) {
	t.Parallel()
	s := star(t, topo.VethOptions{}, topo.VethOptions{})
	const config = `ports:
  - interface: p1
  - interface: p2
bridges:
  - name: br0
    ports: [p1, p2]
    ageing_time: banana
`
	if !strings.HasPrefix(strings.Split(config, "\n")[6], "    ageing_time: banana") {
		t.Fatal("test config: ageing_time is not on line 7")
	}
	d := startDaemon(t, s.Switch, config)
	stderr := assertFailed(t, d)
	if base := filepath.Base(d.config); !strings.Contains(stderr, base) {
		t.Errorf("stderr does not name the config file %s:\n%s", base, stderr)
	}
	if !regexp.MustCompile(`(?i)(line 7\b|:7\b)`).MatchString(stderr) {
		t.Errorf("stderr does not name line 7:\n%s", stderr)
	}
	if !strings.Contains(stderr, "ageing_time") {
		t.Errorf("stderr does not name the field ageing_time:\n%s", stderr)
	}
	assertNoXDP(t, s.Switch, ports(s)...)
}
