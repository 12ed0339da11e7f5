package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// flakyAccept stands between a server and its listener: while fail is
// above zero, an accept fails as accept(2) does when the process is out
// of file descriptors (EMFILE), without touching the listener.
type flakyAccept struct {
	accept   func() (*net.UnixConn, error)
	failedAt chan time.Time // when each failure happened, while it has room

	mu     sync.Mutex
	fail   int // accepts still to fail
	failed int // accepts failed so far
}

func newFlakyAccept(s *Server, fail int) *flakyAccept {
	f := &flakyAccept{accept: s.accept, failedAt: make(chan time.Time, 64), fail: fail}
	s.accept = f.Accept
	return f
}

// Accept fails if failures are due, else accepts from the listener.
func (f *flakyAccept) Accept() (*net.UnixConn, error) {
	f.mu.Lock()
	if f.fail > 0 {
		f.fail--
		f.failed++
		f.mu.Unlock()
		select {
		case f.failedAt <- time.Now():
		default: // a busy loop; the count tells
		}
		return nil, &net.OpError{Op: "accept", Net: "unix", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	f.mu.Unlock()
	return f.accept()
}

// failNext makes the next n accepts fail.
func (f *flakyAccept) failNext(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = n
}

// count is the number of failed accepts so far.
func (f *flakyAccept) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failed
}

// failures drains the times of the failures so far.
func (f *flakyAccept) failures() []time.Time {
	var ts []time.Time
	for {
		select {
		case t := <-f.failedAt:
			ts = append(ts, t)
		default:
			return ts
		}
	}
}

// logBuffer is a slog text log that tests read while the server writes.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// lines returns the log lines that contain every one of want.
func (l *logBuffer) lines(want ...string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range strings.Split(l.buf.String(), "\n") {
		ok := line != ""
		for _, w := range want {
			ok = ok && strings.Contains(line, w)
		}
		if ok {
			out = append(out, line)
		}
	}
	return out
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// flakyServer serves on a fresh socket whose first fail accepts fail,
// logging to the returned buffer, until the test ends or stop is called;
// stop returns when Serve has.
func flakyServer(t *testing.T, fail int) (path string, f *flakyAccept, log *logBuffer, stop func()) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "ctl.sock")
	s, err := Listen(path, map[string]Handler{"stats": func(json.RawMessage) (any, error) { return Stats{Version: "still here"}, nil }})
	if err != nil {
		t.Fatal(err)
	}
	f = newFlakyAccept(s, fail)
	log = &logBuffer{}
	s.SetLogger(slog.New(slog.NewTextHandler(log, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Serve(ctx); close(done) }()
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	return path, f, log, stop
}

// TestAcceptErrorsDoNotStopServing makes accepts fail with EMFILE, in two
// bursts: the socket must stay, answer afterwards, and each burst must be
// logged once when it starts and once when it ends, with growing waits
// between the attempts.
func TestAcceptErrorsDoNotStopServing(t *testing.T) {
	requireRoot(t)
	path, f, log, _ := flakyServer(t, 4)
	call := func(when string) {
		t.Helper()
		var st Stats
		if err := Call(path, "stats", nil, &st); err != nil || st.Version != "still here" {
			t.Fatalf("stats %s: %+v, %v\nlog:\n%s", when, st, err, log)
		}
	}

	call("after 4 failed accepts")
	ts := f.failures()
	if len(ts) != 4 {
		t.Fatalf("%d failed accepts, want 4", len(ts))
	}
	want := minAcceptDelay
	for i := 1; i < len(ts); i++ {
		if gap := ts[i].Sub(ts[i-1]); gap < want {
			t.Errorf("accept %d came %v after the failure before it; want at least %v", i+1, gap, want)
		}
		want *= 2
	}
	if got := log.lines("level=ERROR", "accept failed", "too many open files", path); len(got) != 1 {
		t.Errorf("%d error lines for the first burst, want 1; log:\n%s", len(got), log)
	}
	if got := log.lines("level=INFO", "accepting again", "failed_accepts=4"); len(got) != 1 {
		t.Errorf("%d recovery lines for the first burst, want 1; log:\n%s", len(got), log)
	}

	// The next accept, after the one waiting now, fails twice.
	f.failNext(2)
	call("accepted before the second burst")
	call("after the second burst")
	if n := f.count() - 4; n != 2 {
		t.Errorf("%d failed accepts in the second burst, want 2", n)
	}
	if got := log.lines("level=ERROR", "accept failed"); len(got) != 2 {
		t.Errorf("%d error lines after two bursts, want 2; log:\n%s", len(got), log)
	}
	if got := log.lines("level=INFO", "accepting again", "failed_accepts=2"); len(got) != 1 {
		t.Errorf("%d recovery lines for the second burst, want 1; log:\n%s", len(got), log)
	}
	if fi, err := os.Lstat(path); err != nil || fi.Mode().Type() != os.ModeSocket {
		t.Errorf("control socket after the bursts: %v, %v; want it still there", fi, err)
	}
}

// TestAcceptBackoffStops checks that accepts failing for good are retried
// with waits growing to maxAcceptDelay, not in a busy loop, that the run
// is logged once, and that stopping cuts a wait short.
func TestAcceptBackoffStops(t *testing.T) {
	_, f, log, stop := flakyServer(t, 1<<30)
	// The waits after failures 1 to 8 are 5, 10, ... 640 ms; after the
	// ninth, maxAcceptDelay.
	var ts []time.Time
	for len(ts) < 9 {
		select {
		case at := <-f.failedAt:
			ts = append(ts, at)
		case <-time.After(10 * time.Second):
			t.Fatalf("%d failed accepts in 10s, want 9 within about 1.3s; log:\n%s", len(ts), log)
		}
	}
	stop()
	stopped := time.Now()
	if waited := stopped.Sub(ts[8]); waited >= maxAcceptDelay {
		t.Errorf("Serve returned %v after the failure before its %v wait: stopping did not cut the wait short", waited, maxAcceptDelay)
	}
	if gap := ts[8].Sub(ts[7]); gap < 640*time.Millisecond {
		t.Errorf("the ninth accept came %v after the eighth failed; want at least 640ms", gap)
	}
	// Stopping ends Serve at the next attempt at the latest.
	if n := f.count(); n > 10 {
		t.Errorf("%d failed accepts in %v: a busy loop", n, stopped.Sub(ts[0]))
	}
	if got := log.lines("level=ERROR", "accept failed"); len(got) != 1 {
		t.Errorf("%d error lines for one run of failures, want 1; log:\n%s", len(got), log)
	}
	if got := log.lines("accepting again"); len(got) != 0 {
		t.Errorf("recovery logged, but no accept succeeded:\n%s", log)
	}
}

// TestAcceptEMFILE runs the server out of file descriptors for real: with
// RLIMIT_NOFILE lowered and every descriptor below it taken, a client
// connects, and the server's accept fails with EMFILE until descriptors
// are freed. The socket must stay and the client get its answer.
func TestAcceptEMFILE(t *testing.T) {
	requireRoot(t)
	path, _, log, _ := flakyServer(t, 0)
	// The client's socket is made now: connecting takes no descriptor.
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 10}); err != nil {
		t.Fatal(err)
	}

	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	var filler []int
	release := func() {
		for _, f := range filler {
			unix.Close(f)
		}
		filler = nil
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
			t.Errorf("restore RLIMIT_NOFILE: %v", err)
		}
	}
	defer release()
	low := lim
	low.Cur = uint64(fd) + 64
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	for {
		f, err := unix.Dup(fd)
		if errors.Is(err, unix.EMFILE) {
			break
		}
		if err != nil {
			t.Fatalf("take descriptors: %v", err)
		}
		filler = append(filler, f)
	}

	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatalf("connect with descriptors exhausted: %v", err)
	}
	if _, err := unix.Write(fd, []byte(`{"verb":"stats"}`+"\n")); err != nil {
		t.Fatalf("send the request: %v", err)
	}
	for deadline := time.Now().Add(5 * time.Second); len(log.lines("accept failed")) == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Errorf("no accept failure logged in 5s with descriptors exhausted; log:\n%s", log)
			break
		}
	}
	// Let it fail a few times more.
	time.Sleep(50 * time.Millisecond)
	release()

	var answer []byte
	buf := make([]byte, 4096)
	for {
		n, err := unix.Read(fd, buf)
		if err != nil {
			t.Fatalf("read the answer: %v (read so far %q); log:\n%s", err, answer, log)
		}
		if n == 0 {
			break
		}
		answer = append(answer, buf[:n]...)
	}
	var resp Response
	var st Stats
	if err := json.Unmarshal(answer, &resp); err != nil || resp.Error != "" || json.Unmarshal(resp.Result, &st) != nil || st.Version != "still here" {
		t.Fatalf("answer after EMFILE: %q (%v); log:\n%s", answer, err, log)
	}
	if got := log.lines("level=ERROR", "accept failed", "too many open files"); len(got) != 1 {
		t.Errorf("%d error lines for the EMFILE run, want 1; log:\n%s", len(got), log)
	}
	// The recovery is logged by the accept loop, which may not have got
	// there yet when the answer arrives: wait for it a while.
	for deadline := time.Now().Add(5 * time.Second); len(log.lines("level=INFO", "accepting again")) == 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if got := log.lines("level=INFO", "accepting again"); len(got) != 1 {
		t.Errorf("%d recovery lines, want 1; log:\n%s", len(got), log)
	}
	if err := Call(path, "stats", nil, nil); err != nil {
		t.Errorf("a call after the EMFILE run: %v", err)
	}
}
