// Package sdnotify speaks systemd's service notification protocol
// (sd_notify(3)): newline-separated VAR=value assignments sent as one
// datagram to the unix socket named by $NOTIFY_SOCKET. A name starting
// with '@' is an abstract socket. Without $NOTIFY_SOCKET (not started by
// systemd as Type=notify) every call does nothing.
package sdnotify

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// The assignments systemd understands that xdpfwd sends.
const (
	// Ready tells systemd that start-up (or a reload) is finished.
	Ready = "READY=1"
	// Reloading tells systemd that a reload began; send Ready when it
	// ends, and MonotonicUsec with it (ReloadingNow does both parts).
	Reloading = "RELOADING=1"
	// Stopping tells systemd that shutdown began.
	Stopping = "STOPPING=1"
	// Watchdog is the keep-alive ping of WatchdogSec=.
	Watchdog = "WATCHDOG=1"
)

// Status is the STATUS= assignment: a one-line, human-readable state that
// systemctl status shows. Newlines in s become spaces.
func Status(s string) string {
	return "STATUS=" + strings.ReplaceAll(s, "\n", " ")
}

// MonotonicUsec is the MONOTONIC_USEC= assignment with CLOCK_MONOTONIC
// now, which systemd wants beside RELOADING=1 (Type=notify-reload).
func MonotonicUsec() string {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return "MONOTONIC_USEC=" + strconv.FormatInt(ts.Nano()/1000, 10)
}

// Notify sends the assignments, one a line, in one datagram to
// $NOTIFY_SOCKET. It returns false, nil when the variable is unset.
func Notify(assignments ...string) (sent bool, err error) {
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr == "" {
		return false, nil
	}
	// An address starting with '@' is abstract to Go's net package too.
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return false, fmt.Errorf("sd_notify: %w", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(strings.Join(assignments, "\n") + "\n")); err != nil {
		return false, fmt.Errorf("sd_notify %s: %w", addr, err)
	}
	return true, nil
}

// WatchdogInterval is how often the service must send Watchdog, from
// $WATCHDOG_USEC (and $WATCHDOG_PID, which must be this process if set):
// half the timeout systemd enforces. It returns 0 when no watchdog is on.
func WatchdogInterval() time.Duration {
	if pid := os.Getenv("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return 0
	}
	us, err := strconv.ParseInt(os.Getenv("WATCHDOG_USEC"), 10, 64)
	if err != nil || us <= 0 {
		return 0
	}
	return time.Duration(us) * time.Microsecond / 2
}
