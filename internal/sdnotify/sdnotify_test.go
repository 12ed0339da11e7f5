package sdnotify

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// listen opens a unixgram socket at addr (a path, or @name for an
// abstract one) that t closes when it ends.
func listen(t *testing.T, addr string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// recv reads one datagram from c, failing t after 5 s.
func recv(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("read the notification: %v", err)
	}
	return string(buf[:n])
}

func TestNotifyPath(t *testing.T) {
	addr := filepath.Join(t.TempDir(), "notify.sock")
	c := listen(t, addr)
	t.Setenv("NOTIFY_SOCKET", addr)
	sent, err := Notify(Ready, Status("forwarding: 2 ports"))
	if err != nil || !sent {
		t.Fatalf("Notify: sent %v, %v", sent, err)
	}
	if got, want := recv(t, c), "READY=1\nSTATUS=forwarding: 2 ports\n"; got != want {
		t.Errorf("datagram %q, want %q", got, want)
	}
}

func TestNotifyAbstract(t *testing.T) {
	addr := fmt.Sprintf("@xdpfwd-sdnotify-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	c := listen(t, addr)
	t.Setenv("NOTIFY_SOCKET", addr)
	if sent, err := Notify(Reloading, MonotonicUsec()); err != nil || !sent {
		t.Fatalf("Notify: sent %v, %v", sent, err)
	}
	lines := strings.Split(strings.TrimSuffix(recv(t, c), "\n"), "\n")
	if len(lines) != 2 || lines[0] != "RELOADING=1" || !strings.HasPrefix(lines[1], "MONOTONIC_USEC=") {
		t.Fatalf("datagram lines %q, want RELOADING=1 and MONOTONIC_USEC=", lines)
	}
	us, err := strconv.ParseInt(strings.TrimPrefix(lines[1], "MONOTONIC_USEC="), 10, 64)
	if err != nil || us <= 0 {
		t.Errorf("MONOTONIC_USEC %q: %v, want a positive integer", lines[1], err)
	}
}

func TestNotifyUnset(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	if sent, err := Notify(Ready); sent || err != nil {
		t.Errorf("Notify without NOTIFY_SOCKET: sent %v, %v; want false, nil", sent, err)
	}
}

func TestNotifyNoListener(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "nobody"))
	if sent, err := Notify(Ready); sent || err == nil {
		t.Errorf("Notify to a missing socket: sent %v, %v; want an error", sent, err)
	}
}

func TestStatusOneLine(t *testing.T) {
	if got := Status("a\nb"); got != "STATUS=a b" {
		t.Errorf("Status(a\\nb) = %q", got)
	}
}

func TestWatchdogInterval(t *testing.T) {
	t.Setenv("WATCHDOG_PID", "")
	t.Setenv("WATCHDOG_USEC", "")
	if d := WatchdogInterval(); d != 0 {
		t.Errorf("without WATCHDOG_USEC: %v, want 0", d)
	}
	t.Setenv("WATCHDOG_USEC", "3000000")
	if d := WatchdogInterval(); d != 1500*time.Millisecond {
		t.Errorf("WATCHDOG_USEC=3000000: %v, want 1.5s", d)
	}
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()+1))
	if d := WatchdogInterval(); d != 0 {
		t.Errorf("WATCHDOG_PID of another process: %v, want 0", d)
	}
}
