package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xdpfwd/xdpfwd/conntrack"
	"github.com/xdpfwd/xdpfwd/fastpath"
	"github.com/xdpfwd/xdpfwd/internal/control"
)

// The ct-events streams (`xdpfwd ct events`, conntrack -E): while at
// least one client streams, the flow table produces events into its
// producers' rings (conntrack.Table.SubscribeEvents) and one drainer
// goroutine moves them, every ctEventsTick, to each stream's bounded
// queue, through the stream's filter. A full queue loses events and
// counts them, as a full ring does; the stream reports both.

// ctEventsTick is how often the drainer reads the producers' rings: the
// latency of an event, and (with EventRingSize) the rate of events a
// producer can make without loss: 4096 per 20 ms.
const ctEventsTick = 20 * time.Millisecond

// ctEventsQueue bounds one stream's queue of events.
const ctEventsQueue = 8192

// ctEventsLostEvery is how often a stream reports events lost while none
// pass.
const ctEventsLostEvery = 500 * time.Millisecond

// ctEventHub is the daemon's event streams. Its zero value is ready.
type ctEventHub struct {
	mu    sync.Mutex
	subs  map[*ctEventSub]struct{}
	table *conntrack.Table
	stop  chan struct{} // ends the drainer
	done  chan struct{} // closed when it has
	// names are the program names of the processes whose requests
	// deleted entries (ct-flush's PID), for [USERSPACE] progname=: the
	// requester has often exited by the time its events are formatted.
	names map[uint32]string
}

// ctEventSub is one stream.
type ctEventSub struct {
	filter conntrack.Filter
	types  conntrack.EventType
	ch     chan conntrack.Event
	lost   atomic.Uint64
}

// subscribe adds a stream of table t's events; the first one turns the
// table's events on and starts the drainer.
func (h *ctEventHub) subscribe(t *conntrack.Table, s *ctEventSub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.subs == nil {
		h.subs = make(map[*ctEventSub]struct{})
	}
	if len(h.subs) == 0 {
		t.ReadEvents(nil) // what an earlier session left
		t.SubscribeEvents()
		h.table = t
		h.stop, h.done = make(chan struct{}), make(chan struct{})
		go h.drain(t, h.stop, h.done)
	}
	h.subs[s] = struct{}{}
}

// unsubscribe removes a stream; the last one turns the events off and
// waits for the drainer to end.
func (h *ctEventHub) unsubscribe(s *ctEventSub) {
	h.mu.Lock()
	delete(h.subs, s)
	if len(h.subs) != 0 {
		h.mu.Unlock()
		return
	}
	h.table.UnsubscribeEvents()
	stop, done := h.stop, h.done
	h.mu.Unlock()
	close(stop)
	<-done
}

// drain moves the table's events to the streams until stop is closed.
func (h *ctEventHub) drain(t *conntrack.Table, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	tk := time.NewTicker(ctEventsTick)
	defer tk.Stop()
	var buf []conntrack.Event
	for {
		select {
		case <-stop:
			return
		case <-tk.C:
		}
		var lost uint64
		buf, lost = t.ReadEvents(buf[:0])
		if len(buf) == 0 && lost == 0 {
			continue
		}
		h.mu.Lock()
		for s := range h.subs {
			if lost > 0 {
				s.lost.Add(lost)
			}
			for i := range buf {
				ev := &buf[i]
				if s.types&ev.Type == 0 || !s.filter.Match(&ev.Entry) {
					continue
				}
				select {
				case s.ch <- *ev:
				default:
					s.lost.Add(1)
				}
			}
		}
		h.mu.Unlock()
		if cap(buf) > 4*conntrack.EventRingSize {
			buf = nil // a burst's buffer goes
		}
	}
}

// origin remembers the program name of process pid, for the events its
// request makes.
func (h *ctEventHub) origin(pid uint32) {
	comm, err := os.ReadFile("/proc/" + strconv.FormatUint(uint64(pid), 10) + "/comm")
	if err != nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.names == nil || len(h.names) >= 64 {
		h.names = make(map[uint32]string)
	}
	h.names[pid] = strings.TrimSpace(string(comm))
}

func (h *ctEventHub) name(pid uint32) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.names[pid]
}

// parseEventTypes parses conntrack -e's list of event types (NEW, UPDATE,
// DESTROY, ALL; any case, comma-separated); none means all.
func parseEventTypes(names []string) (conntrack.EventType, error) {
	if len(names) == 0 {
		return conntrack.EventNew | conntrack.EventUpdate | conntrack.EventDestroy, nil
	}
	var m conntrack.EventType
	for _, n := range names {
		for part := range strings.SplitSeq(n, ",") {
			switch strings.ToUpper(strings.TrimSpace(part)) {
			case "NEW":
				m |= conntrack.EventNew
			case "UPDATE":
				m |= conntrack.EventUpdate
			case "DESTROY":
				m |= conntrack.EventDestroy
			case "ALL":
				m |= conntrack.EventNew | conntrack.EventUpdate | conntrack.EventDestroy
			default:
				return 0, fmt.Errorf("unknown event type %q: want NEW, UPDATE, DESTROY or ALL", part)
			}
		}
	}
	return m, nil
}

// ctEventsVerb is the ct-events verb: it checks the arguments and
// returns the stream of events that pass them (control.Stream), each as
// `conntrack -E` prints it, with reports of the events lost.
func (d *Daemon) ctEventsVerb(raw json.RawMessage) (any, error) {
	var args control.CtEventsArgs
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &args); err != nil {
			return nil, fmt.Errorf("ct events arguments: %w", err)
		}
	}
	f, err := conntrack.ParseFilter(args.Filter)
	if err != nil {
		return nil, fmt.Errorf("ct events filter: %w", err)
	}
	types, err := parseEventTypes(args.Types)
	if err != nil {
		return nil, fmt.Errorf("ct events: %w", err)
	}
	d.state.RLock()
	ct, err := d.tracker()
	d.state.RUnlock()
	if err != nil {
		return nil, err
	}
	return control.Stream(func(ctx context.Context, send func(any) error) error {
		s := &ctEventSub{filter: f, types: types, ch: make(chan conntrack.Event, ctEventsQueue)}
		d.ctEvents.subscribe(ct.Table(), s)
		defer d.ctEvents.unsubscribe(s)
		tk := time.NewTicker(ctEventsLostEvery)
		defer tk.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-tk.C:
				if n := s.lost.Swap(0); n > 0 {
					if err := send(control.CtEvent{Lost: n}); err != nil {
						return err
					}
				}
			case ev := <-s.ch:
				out := d.ctEvent(&ev)
				out.Lost = s.lost.Swap(0)
				if err := send(out); err != nil {
					return err
				}
			}
		}
	}), nil
}

// causeNames name the event causes, by bit.
var causeNames = [...]string{"reply", "assured", "protoinfo", "mark"}

// ctEvent is ev for the control socket.
func (d *Daemon) ctEvent(ev *conntrack.Event) control.CtEvent {
	at := time.Now().Add(-time.Duration(int64(fastpath.MonotonicClock()) - ev.Time))
	e := ctEntry(&ev.Entry, ev.Time)
	out := control.CtEvent{
		Type:  ev.Type.String(),
		Line:  ev.Format(d.ctEvents.name(ev.Origin)),
		Time:  at.Format(time.RFC3339Nano),
		Entry: &e,
	}
	for i, n := range causeNames {
		if ev.Cause&(1<<i) != 0 {
			out.Cause = append(out.Cause, n)
		}
	}
	return out
}
