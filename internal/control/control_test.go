package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// clientEnv, when set, makes the test binary a control client instead: it
// calls the stats verb on the socket the variable names and prints the
// error (see TestNonRootRefused).
const clientEnv = "XDPFWD_CONTROL_TEST_CLIENT"

func TestMain(m *testing.M) {
	if path := os.Getenv(clientEnv); path != "" {
		err := Call(path, "stats", nil, nil)
		fmt.Printf("uid %d: %v\n", os.Getuid(), err)
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

// serve runs a server on path until the test ends.
func serve(t *testing.T, path string, h map[string]Handler) {
	t.Helper()
	s, err := Listen(path, h)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Serve(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the control socket answers root only; run as root (CI does)")
	}
}

func TestCall(t *testing.T) {
	requireRoot(t)
	path := filepath.Join(t.TempDir(), "ctl.sock")
	serve(t, path, map[string]Handler{
		"stats": func(json.RawMessage) (any, error) { return Stats{Version: "v-test", Workers: 2}, nil },
		"fail":  func(json.RawMessage) (any, error) { return nil, errors.New("it broke") },
	})
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm()&0o077 != 0 {
		t.Fatalf("socket mode = %v, %v; want no access for group and others", fi.Mode(), err)
	}
	var st Stats
	if err := Call(path, "stats", nil, &st); err != nil || st.Version != "v-test" || st.Workers != 2 {
		t.Fatalf("stats = %+v, %v", st, err)
	}
	if err := Call(path, "fail", nil, nil); err == nil || !strings.Contains(err.Error(), "it broke") {
		t.Errorf("fail verb: %v", err)
	}
	if err := Call(path, "nope", nil, nil); err == nil || !strings.Contains(err.Error(), `unknown verb "nope"`) {
		t.Errorf("unknown verb: %v", err)
	}
}

// TestListenRefuses checks that Listen leaves alone, and names, whatever
// is at the path unless it is a socket nobody answers on.
func TestListenRefuses(t *testing.T) {
	dir := t.TempDir()
	config := filepath.Join(dir, "xdpfwd.yaml")
	const configText = "ports:\n  - interface: veth-a\n"
	if err := os.WriteFile(config, []byte(configText), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	emptyDir := filepath.Join(dir, "run")
	if err := os.Mkdir(emptyDir, 0o700); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(config, link); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, path, want string
	}{
		{"config file", config, "is a regular file, not a socket"},
		{"empty regular file", empty, "is a regular file, not a socket"},
		{"empty directory", emptyDir, "is a directory, not a socket"},
		{"symbolic link", link, "is a symbolic link, not a socket"},
		{"named pipe", fifo, "is a named pipe, not a socket"},
	} {
		t.Run(c.name, func(t *testing.T) {
			before, err := os.Lstat(c.path)
			if err != nil {
				t.Fatal(err)
			}
			s, err := Listen(c.path, nil)
			if err == nil {
				s.Close()
				t.Fatalf("Listen(%s) replaced %s", c.path, c.name)
			}
			if !strings.Contains(err.Error(), c.path) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Listen(%s): %v; want the path and %q", c.path, err, c.want)
			}
			after, err := os.Lstat(c.path)
			if err != nil {
				t.Fatalf("%s is gone after Listen: %v", c.name, err)
			}
			if !os.SameFile(before, after) {
				t.Errorf("%s at %s was replaced", c.name, c.path)
			}
		})
	}
	if b, err := os.ReadFile(config); err != nil || string(b) != configText {
		t.Errorf("config file after Listen: %q, %v; want it untouched", b, err)
	}
}

// TestListenLiveSocket checks that a socket something answers on is not
// taken over.
func TestListenLiveSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ctl.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, err = Listen(path, nil)
	if err == nil || !strings.Contains(err.Error(), "another xdpfwd is serving "+path) {
		t.Fatalf("Listen on a live socket: %v; want \"another xdpfwd is serving %s\"", err, path)
	}
	// The first listener still has its socket.
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("the live socket no longer answers: %v", err)
	}
	c.Close()

	requireRoot(t)
	// A second xdpfwd server on a live one's path is refused too.
	live := filepath.Join(t.TempDir(), "live.sock")
	serve(t, live, nil)
	if _, err := Listen(live, nil); err == nil || !strings.Contains(err.Error(), "another xdpfwd is serving") {
		t.Errorf("second server: %v", err)
	}
}

// TestListenStaleSocket checks that a socket left by a dead process is
// replaced.
func TestListenStaleSocket(t *testing.T) {
	requireRoot(t)
	path := filepath.Join(t.TempDir(), "ctl.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	if fi, err := os.Lstat(path); err != nil || fi.Mode().Type() != os.ModeSocket {
		t.Fatalf("stale socket: %v, %v", fi, err)
	}
	serve(t, path, map[string]Handler{"stats": func(json.RawMessage) (any, error) { return Stats{Version: "new"}, nil }})
	var st Stats
	if err := Call(path, "stats", nil, &st); err != nil || st.Version != "new" {
		t.Errorf("call on the replaced socket: %+v, %v", st, err)
	}
}

// TestListenMissing checks the plain case: nothing at the path.
func TestListenMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ctl.sock")
	s, err := Listen(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(path); err != nil || fi.Mode().Type() != os.ModeSocket {
		t.Errorf("after Listen: %v, %v; want a socket", fi, err)
	}
	s.Close()
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left after Close: %v", err)
	}
}

// TestIdleClientDoesNotDelayStop connects a client that never sends a
// request: stopping the server must close it at once, not wait for its
// 10 s deadline. The issue asks for an exit within 1 s; the bound here,
// from the cancel to Serve's return, leaves room for a loaded machine.
func TestIdleClientDoesNotDelayStop(t *testing.T) {
	const bound = 1500 * time.Millisecond
	path := filepath.Join(t.TempDir(), "ctl.sock")
	s, err := Listen(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { s.Serve(ctx); close(done) }()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Wait until the server has accepted it and waits for its request.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		s.mu.Lock()
		n := len(s.conns)
		s.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the server did not take the connection within 10s")
		}
	}
	start := time.Now()
	cancel()
	select {
	case <-done:
	case <-time.After(connTimeout + time.Second):
		t.Fatalf("Serve still running %v after its context ended, with an idle client", connTimeout+time.Second)
	}
	if took := time.Since(start); took > bound {
		t.Errorf("Serve returned %v after its context ended, with an idle client; want within %v", took, bound)
	} else {
		t.Logf("Serve returned %v after its context ended", took)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("the idle client: %v", err)
	}
	if len(b) > 0 && !strings.Contains(string(b), "shutting down") {
		t.Errorf("the idle client got %q; want nothing or a shutdown notice", b)
	}
}

// TestBusyClientFinishes checks that a request being answered when the
// server stops still gets its answer.
func TestBusyClientFinishes(t *testing.T) {
	requireRoot(t)
	path := filepath.Join(t.TempDir(), "ctl.sock")
	started, release := make(chan struct{}), make(chan struct{})
	s, err := Listen(path, map[string]Handler{"slow": func(json.RawMessage) (any, error) {
		close(started)
		<-release
		return Stats{Version: "answered"}, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Serve(ctx); close(done) }()
	called := make(chan error, 1)
	var st Stats
	go func() { called <- Call(path, "slow", nil, &st) }()
	<-started
	cancel()
	close(release)
	if err := <-called; err != nil || st.Version != "answered" {
		t.Errorf("request in progress at stop: %+v, %v", st, err)
	}
	<-done
}

// TestNonRootRefused runs a control client as uid 65534 (nobody): with the
// socket's own mode the kernel refuses the connection; with the mode
// loosened, the server refuses the client by its credentials. The verb's
// handler never runs.
func TestNonRootRefused(t *testing.T) {
	requireRoot(t)
	// A directory of its own, not under t.TempDir (whose top directory
	// is 0700: uid 65534 could not reach into it), made 0755 so that
	// uid 65534 can enter it, run the copy of this test binary it holds,
	// and connect to the socket made there (if the socket's mode lets it).
	dir, err := os.MkdirTemp("", "xfctl-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "control.test")
	copyFile(t, self, bin, 0o755)

	path := filepath.Join(dir, "ctl.sock")
	var calls atomic.Int32
	serve(t, path, map[string]Handler{"stats": func(json.RawMessage) (any, error) {
		calls.Add(1)
		return Stats{}, nil
	}})
	asNobody := func() string {
		t.Helper()
		cmd := exec.Command(bin, "-test.run=^$")
		cmd.Env = append(os.Environ(), clientEnv+"="+path)
		cmd.Dir = dir
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("client as uid 65534: %v\n%s", err, out)
		}
		if !strings.HasPrefix(string(out), "uid 65534: ") {
			t.Fatalf("the client did not run as uid 65534: %s", out)
		}
		return string(out)
	}

	// The socket as Listen made it: owner only.
	if out := asNobody(); !strings.Contains(out, "connect") || !strings.Contains(out, "permission denied") {
		t.Errorf("uid 65534 on a 0600 socket: %s; want the connection refused with permission denied", out)
	}
	// Loosened by hand: the server itself must refuse.
	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatal(err)
	}
	if out := asNobody(); !strings.Contains(out, "stats: permission denied: the control socket is for root only") {
		t.Errorf("uid 65534 on a 0666 socket: %s; want the server's refusal", out)
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("the stats handler ran %d time(s) for a non-root client", n)
	}
	// Root still gets its answer.
	if err := Call(path, "stats", nil, nil); err != nil || calls.Load() != 1 {
		t.Errorf("root: %v (handler calls %d)", err, calls.Load())
	}
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestCallNoDaemon(t *testing.T) {
	err := Call(filepath.Join(t.TempDir(), "none.sock"), "stats", nil, nil)
	if err == nil || !strings.Contains(err.Error(), "is `xdpfwd run` running?") {
		t.Errorf("err = %v", err)
	}
}

// TestAnswerErrorNamesVerbOnce: the daemon's error for a verb is shown
// after the verb, once, whether or not the daemon named it.
func TestAnswerErrorNamesVerbOnce(t *testing.T) {
	for _, tc := range []struct{ msg, want string }{
		{`trace: "p9" is not a port of this daemon`, `trace: "p9" is not a port of this daemon`},
		{"a trace is already running", "trace: a trace is already running"},
		{"tracer: x", "trace: tracer: x"},
	} {
		if got := answerError("trace", tc.msg).Error(); got != tc.want {
			t.Errorf("%q: %q, want %q", tc.msg, got, tc.want)
		}
	}
}
