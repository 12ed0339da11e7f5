// Package control is the daemon's control socket: a unix stream socket,
// reachable by root only, over which the CLI verbs (stats, fdb, and later
// ct, rules, trace, reload) send one JSON request and read one JSON
// response.
package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Request asks the daemon for one verb.
type Request struct {
	// Verb names what is asked: stats, fdb, and later ct, rules, trace,
	// reload.
	Verb string `json:"verb"`
	// Args are the verb's arguments as JSON, if it takes any.
	Args json.RawMessage `json:"args,omitempty"`
}

// Response carries a verb's result, or why it failed.
type Response struct {
	// Error says why the verb failed; empty on success.
	Error string `json:"error,omitempty"`
	// Result is the verb's answer as JSON.
	Result json.RawMessage `json:"result,omitempty"`
}

// Handler answers one verb; its result is sent as JSON.
type Handler func(args json.RawMessage) (any, error)

// Server serves the control socket.
type Server struct {
	ln       *net.UnixListener
	accept   func() (*net.UnixConn, error) // ln.AcceptUnix; tests make it fail
	path     string
	handlers map[string]Handler
	log      *slog.Logger
	wg       sync.WaitGroup
	stopped  chan struct{} // closed once Serve is stopping

	mu       sync.Mutex
	conns    map[*net.UnixConn]struct{} // connections being served
	stopping bool                       // Serve's context is done
}

// connTimeout bounds one connection: reading the request, answering it and
// writing the answer.
const connTimeout = 10 * time.Second

// shutdownGrace is how long a connection whose request is already being
// answered may take to write its answer once Serve is stopping. A
// connection still waiting for its request is closed at once.
const shutdownGrace = time.Second

// maxRequest bounds the size of one request.
const maxRequest = 1 << 20

// After a failed accept (EMFILE, ENFILE, ENOBUFS...) Serve waits before
// it tries again: minAcceptDelay after the first failure, doubling after
// each further one up to maxAcceptDelay, as net/http's Server.Serve does.
const (
	minAcceptDelay = 5 * time.Millisecond
	maxAcceptDelay = time.Second
)

// Listen creates the control socket at path, readable and writable by its
// owner (root) only. What is already at path is replaced only if it is a
// socket that nobody answers on (left by a daemon that died); a socket a
// live process answers on, and anything that is not a socket (a regular
// file, a directory, a symbolic link...), is an error and is left alone.
func Listen(path string, handlers map[string]Handler) (*Server, error) {
	if err := clearStale(path); err != nil {
		return nil, err
	}
	old := unix.Umask(0o077)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	unix.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	ln.SetUnlinkOnClose(true)
	return &Server{
		ln:       ln,
		accept:   ln.AcceptUnix,
		path:     path,
		handlers: handlers,
		log:      slog.Default(),
		stopped:  make(chan struct{}),
		conns:    make(map[*net.UnixConn]struct{}),
	}, nil
}

// clearStale removes a socket left at path by a process that is gone, and
// refuses anything else that is there.
func clearStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("control socket %s: %w", path, err)
	}
	if fi.Mode().Type() != os.ModeSocket {
		return fmt.Errorf("control socket %s: the path is %s, not a socket; xdpfwd replaces only a stale socket: remove it yourself or choose another path (--control or options.control)", path, describeMode(fi.Mode()))
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	switch {
	case err == nil:
		c.Close()
		return fmt.Errorf("control socket %s: another xdpfwd is serving %s (stop it, or choose another path with --control or options.control)", path, path)
	case errors.Is(err, syscall.EAGAIN):
		// A listener whose backlog is full is alive.
		return fmt.Errorf("control socket %s: another xdpfwd is serving %s (its backlog is full; stop it, or choose another path with --control or options.control)", path, path)
	case !errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("control socket %s: an existing socket is there and probing it failed (%w); not replacing it: remove it yourself or choose another path", path, err)
	}
	// Connection refused: nothing listens, the socket is stale.
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("control socket %s: remove stale socket: %w", path, err)
	}
	return nil
}

// describeMode names a file type for an error message.
func describeMode(m os.FileMode) string {
	switch m.Type() {
	case 0:
		return "a regular file"
	case os.ModeDir:
		return "a directory"
	case os.ModeSymlink:
		return "a symbolic link"
	case os.ModeNamedPipe:
		return "a named pipe"
	case os.ModeDevice, os.ModeDevice | os.ModeCharDevice:
		return "a device"
	default:
		return "not a regular file (" + m.Type().String() + ")"
	}
}

// SetHandlers sets the verbs the server answers. Call it before Serve.
func (s *Server) SetHandlers(h map[string]Handler) { s.handlers = h }

// SetLogger sets where the server logs what goes wrong with the socket
// itself (accept failures and recoveries); slog.Default() until set. Call
// it before Serve.
func (s *Server) SetLogger(l *slog.Logger) { s.log = l }

// Close removes the socket of a server that never served.
func (s *Server) Close() error { return s.ln.Close() }

// Serve answers connections until ctx is done. Then it closes the socket,
// closes the connections that have not sent a request yet at once, gives
// those being answered shutdownGrace to finish, and returns when every
// connection is closed. A failed accept (out of file descriptors, say)
// does not end it: the first failure of a run is logged, Serve waits
// (minAcceptDelay, doubling up to maxAcceptDelay) and tries again, and
// logs once more when an accept succeeds again.
func (s *Server) Serve(ctx context.Context) {
	acceptDone, watchDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(watchDone)
		select {
		case <-ctx.Done():
		case <-acceptDone:
		}
		s.stop()
	}()
	s.acceptLoop()
	close(acceptDone)
	<-watchDone
	s.wg.Wait()
}

// acceptLoop accepts connections and serves each in its own goroutine
// until the server is stopping (or its listener was closed under it).
func (s *Server) acceptLoop() {
	var (
		delay      time.Duration // the wait after the last failure; 0 if it succeeded
		failures   int           // failed accepts in a row
		firstError time.Time     // when the first of them failed
	)
	for {
		c, err := s.accept()
		if err != nil {
			if s.isStopping() {
				return
			}
			if errors.Is(err, net.ErrClosed) {
				// Nothing but stop should close it; it cannot come back.
				s.log.Error("control socket closed while serving; the CLI can no longer reach the daemon", "path", s.path, "err", err)
				return
			}
			failures++
			if delay == 0 {
				firstError = time.Now()
				delay = minAcceptDelay
				s.log.Error("control socket: accept failed; retrying with backoff (logged once until it recovers)",
					"path", s.path, "err", err, "first_retry_in", delay)
			} else {
				delay = min(2*delay, maxAcceptDelay)
			}
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-s.stopped:
				t.Stop()
			}
			continue
		}
		if failures > 0 {
			s.log.Info("control socket: accepting again", "path", s.path,
				"failed_accepts", failures, "after", time.Since(firstError).Round(time.Millisecond))
			delay, failures = 0, 0
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer c.Close()
			s.serveConn(c)
		}()
	}
}

// stop closes the listener and ends the connections: those waiting for a
// request at once, the others within shutdownGrace.
func (s *Server) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		return
	}
	s.stopping = true
	close(s.stopped)
	s.ln.Close()
	now := time.Now()
	for c := range s.conns {
		c.SetReadDeadline(now)
		c.SetWriteDeadline(now.Add(shutdownGrace))
	}
}

// track registers c for stop; false if the server is already stopping.
func (s *Server) track(c *net.UnixConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) isStopping() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopping
}

func (s *Server) untrack(c *net.UnixConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
}

func (s *Server) serveConn(c *net.UnixConn) {
	// The deadline first: stop, once c is tracked, may shorten it.
	c.SetDeadline(time.Now().Add(connTimeout))
	if !s.track(c) {
		return
	}
	defer s.untrack(c)
	resp, st := s.answer(c)
	if st != nil {
		s.serveStream(c, st)
		return
	}
	json.NewEncoder(c).Encode(resp)
}

func (s *Server) answer(c *net.UnixConn) (Response, Stream) {
	resp, res := s.answerResult(c)
	if st, ok := res.(Stream); ok {
		return Response{}, st
	}
	return resp, nil
}

func (s *Server) answerResult(c *net.UnixConn) (Response, any) {
	if uid, err := peerUID(c); err != nil || uid != 0 {
		return Response{Error: "permission denied: the control socket is for root only"}, nil
	}
	var req Request
	if err := json.NewDecoder(io.LimitReader(c, maxRequest)).Decode(&req); err != nil {
		if s.isStopping() {
			return Response{Error: "xdpfwd is shutting down"}, nil
		}
		return Response{Error: fmt.Sprintf("bad request: %v", err)}, nil
	}
	h, ok := s.handlers[req.Verb]
	if !ok {
		return Response{Error: fmt.Sprintf("unknown verb %q", req.Verb)}, nil
	}
	res, err := h(req.Args)
	if err != nil {
		return Response{Error: err.Error()}, nil
	}
	if st, ok := res.(Stream); ok {
		return Response{}, st
	}
	raw, err := json.Marshal(res)
	if err != nil {
		return Response{Error: fmt.Sprintf("encode %s result: %v", req.Verb, err)}, nil
	}
	return Response{Result: raw}, nil
}

func peerUID(c *net.UnixConn) (uint32, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return 0, err
	}
	if credErr != nil {
		return 0, credErr
	}
	return cred.Uid, nil
}

// Call sends one request to the daemon at path and decodes its result into
// result (which may be nil).
func Call(path, verb string, args, result any) error {
	c, err := net.DialTimeout("unix", path, 2*time.Second)
	if err != nil {
		return fmt.Errorf("connect to xdpfwd control socket %s (is `xdpfwd run` running? is --control right?): %w", path, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	req := Request{Verb: verb}
	if args != nil {
		if req.Args, err = json.Marshal(args); err != nil {
			return fmt.Errorf("encode %s args: %w", verb, err)
		}
	}
	var resp Response
	if err := json.NewEncoder(c).Encode(req); err != nil {
		// The daemon may have answered before reading the request (a
		// refusal) and closed: its answer says more than our write error.
		if json.NewDecoder(c).Decode(&resp) != nil || resp.Error == "" {
			return fmt.Errorf("send %s: %w", verb, err)
		}
	} else if err := json.NewDecoder(c).Decode(&resp); err != nil {
		return fmt.Errorf("read %s answer: %w", verb, err)
	}
	if resp.Error != "" {
		return answerError(verb, resp.Error)
	}
	if result == nil {
		return nil
	}
	if err := json.Unmarshal(resp.Result, result); err != nil {
		return fmt.Errorf("decode %s answer: %w", verb, err)
	}
	return nil
}

// answerError is the error the daemon answered to verb with: msg, after
// the verb unless msg names it first already.
func answerError(verb, msg string) error {
	if strings.HasPrefix(msg, verb+":") {
		return errors.New(msg)
	}
	return fmt.Errorf("%s: %s", verb, msg)
}
