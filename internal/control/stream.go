package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// Stream is what a verb that streams returns as its result (ct-events):
// instead of one answer, the server then calls it with a context, done
// when the client goes away or the server stops, and a send that writes
// one answer (a Response whose Result is v) to the client. The stream
// ends when it returns: with an error, the client gets a last Response
// carrying it.
type Stream func(ctx context.Context, send func(v any) error) error

// streamWriteTimeout bounds one write of a stream: a client that reads
// nothing for this long is dropped.
const streamWriteTimeout = 10 * time.Second

// serveStream runs st on c: no deadline but each write's; a goroutine
// reads c, to see the client close it (or stop's read deadline), and
// cancels the stream then.
func (s *Server) serveStream(c *net.UnixConn, st Stream) {
	c.SetDeadline(time.Time{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		defer cancel()
		var b [64]byte
		for {
			if _, err := c.Read(b[:]); err != nil {
				return
			}
		}
	}()
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		select {
		case <-s.stopped:
			cancel()
		case <-ctx.Done():
		}
	}()
	if s.isStopping() {
		cancel()
	}
	enc := json.NewEncoder(c)
	send := func(v any) error {
		raw, err := json.Marshal(v)
		if err != nil {
			return err
		}
		c.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
		return enc.Encode(Response{Result: raw})
	}
	if err := st(ctx, send); err != nil && ctx.Err() == nil {
		c.SetWriteDeadline(time.Now().Add(shutdownGrace))
		enc.Encode(Response{Error: err.Error()})
	}
	cancel()
	c.SetReadDeadline(time.Now()) // ends the reader
	<-readDone
	<-watchDone
}

// CallStream sends one request for a verb that streams and calls fn with
// each answer's result until the daemon ends the stream, fn returns an
// error (ErrStop ends it without one), or ctx is done (nil then).
func CallStream(ctx context.Context, path, verb string, args any, fn func(result json.RawMessage) error) error {
	c, err := net.DialTimeout("unix", path, 2*time.Second)
	if err != nil {
		return fmt.Errorf("connect to xdpfwd control socket %s (is `xdpfwd run` running? is --control right?): %w", path, err)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetReadDeadline(time.Now()) })
	defer stop()
	req := Request{Verb: verb}
	if args != nil {
		if req.Args, err = json.Marshal(args); err != nil {
			return fmt.Errorf("encode %s args: %w", verb, err)
		}
	}
	c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := json.NewEncoder(c).Encode(req); err != nil {
		return fmt.Errorf("send %s: %w", verb, err)
	}
	dec := json.NewDecoder(c)
	for {
		var resp Response
		if err := dec.Decode(&resp); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, io.EOF) {
				return fmt.Errorf("%s: the daemon ended the stream", verb)
			}
			return fmt.Errorf("read %s answer: %w", verb, err)
		}
		if resp.Error != "" {
			return answerError(verb, resp.Error)
		}
		if err := fn(resp.Result); err != nil {
			if errors.Is(err, ErrStop) {
				return nil
			}
			return err
		}
	}
}

// ErrStop, returned by CallStream's fn, ends the stream without an error.
var ErrStop = errors.New("stop the stream")
