// Package control is the daemon's control socket: a unix stream socket,
// reachable by root only, over which the CLI verbs (stats, and later ct,
// rules, trace, reload) send one JSON request and read one JSON response.
package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Request asks the daemon for one verb.
type Request struct {
	// Verb names what is asked: stats, and later ct, rules, trace, reload.
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
	path     string
	handlers map[string]Handler
	wg       sync.WaitGroup
}

// Listen creates the control socket at path, readable and writable by its
// owner (root) only. A socket file left by a dead daemon is replaced; one
// that a live daemon answers on is an error.
func Listen(path string, handlers map[string]Handler) (*Server, error) {
	if c, err := net.DialTimeout("unix", path, 200*time.Millisecond); err == nil {
		c.Close()
		return nil, fmt.Errorf("control socket %s: another xdpfwd is answering on it (stop it, or set options.control)", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("control socket %s: remove stale socket: %w", path, err)
	}
	old := unix.Umask(0o077)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	unix.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	ln.SetUnlinkOnClose(true)
	return &Server{ln: ln, path: path, handlers: handlers}, nil
}

// SetHandlers sets the verbs the server answers. Call it before Serve.
func (s *Server) SetHandlers(h map[string]Handler) { s.handlers = h }

// Close removes the socket of a server that never served.
func (s *Server) Close() error { return s.ln.Close() }

// Serve answers connections until ctx is done, then closes the socket and
// waits for the connections in progress.
func (s *Server) Serve(ctx context.Context) {
	go func() {
		<-ctx.Done()
		s.ln.Close()
	}()
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			break
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer c.Close()
			s.serveConn(c)
		}()
	}
	s.wg.Wait()
}

func (s *Server) serveConn(c *net.UnixConn) {
	c.SetDeadline(time.Now().Add(10 * time.Second))
	resp := s.answer(c)
	json.NewEncoder(c).Encode(resp)
}

func (s *Server) answer(c *net.UnixConn) Response {
	if uid, err := peerUID(c); err != nil || uid != 0 {
		return Response{Error: "permission denied: the control socket is for root only"}
	}
	var req Request
	if err := json.NewDecoder(bufio.NewReader(c)).Decode(&req); err != nil {
		return Response{Error: fmt.Sprintf("bad request: %v", err)}
	}
	h, ok := s.handlers[req.Verb]
	if !ok {
		return Response{Error: fmt.Sprintf("unknown verb %q", req.Verb)}
	}
	res, err := h(req.Args)
	if err != nil {
		return Response{Error: err.Error()}
	}
	raw, err := json.Marshal(res)
	if err != nil {
		return Response{Error: fmt.Sprintf("encode %s result: %v", req.Verb, err)}
	}
	return Response{Result: raw}
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
	if err := json.NewEncoder(c).Encode(req); err != nil {
		return fmt.Errorf("send %s: %w", verb, err)
	}
	var resp Response
	if err := json.NewDecoder(c).Decode(&resp); err != nil {
		return fmt.Errorf("read %s answer: %w", verb, err)
	}
	if resp.Error != "" {
		return fmt.Errorf("%s: %s", verb, resp.Error)
	}
	if result == nil {
		return nil
	}
	if err := json.Unmarshal(resp.Result, result); err != nil {
		return fmt.Errorf("decode %s answer: %w", verb, err)
	}
	return nil
}
