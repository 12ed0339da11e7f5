package daemon

import (
	"context"
	"testing"
	"time"

	"github.com/xdpfwd/xdpfwd/fastpath"
	"github.com/xdpfwd/xdpfwd/internal/control"
)

// TestHeldRecordsLink: a record that continues a held one the stream saw
// gets how long its packet was held and by which stage, once; one that
// continues a record the stream did not see gets neither.
func TestHeldRecordsLink(t *testing.T) {
	h := heldRecords{}
	first := fastpath.TraceRecord{ID: 3, Time: 1000}
	h.link(&first, &control.TraceRecord{Exits: []control.TraceExit{{Outcome: "held", Stage: "neighbour"}}})
	sent := fastpath.TraceRecord{ID: 4, Time: 2000}
	h.link(&sent, &control.TraceRecord{Exits: []control.TraceExit{{Outcome: "sent"}}})

	var cont control.TraceRecord
	h.link(&fastpath.TraceRecord{ID: 5, Continues: 3, Time: 251000}, &cont)
	if cont.HeldNs != 250000 || cont.HeldBy != "neighbour" {
		t.Fatalf("continuation held %d ns by %q, want 250000 by neighbour", cont.HeldNs, cont.HeldBy)
	}
	for _, continues := range []uint32{3, 4, 6} { // followed already, not held, never seen
		var again control.TraceRecord
		h.link(&fastpath.TraceRecord{ID: 7, Continues: continues, Time: 300000}, &again)
		if again.HeldNs != 0 || again.HeldBy != "" {
			t.Fatalf("a record continuing %d: held %d ns by %q", continues, again.HeldNs, again.HeldBy)
		}
	}
}

// TestRewriteSummary: a stage that changed what the summary shows is
// described by both summaries; one that changed only checksums (finishing
// a partial checksum, or a TTL change's header checksum hidden by an
// equal summary) by the checksums it changed.
func TestRewriteSummary(t *testing.T) {
	ip := []byte{0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0xaa, 0xbb, 10, 0, 0, 1, 10, 0, 0, 2,
		0x9c, 0x40, 0, 7, 0, 8, 0x12, 0x34}
	mod := func(f func(b []byte)) []byte {
		b := append([]byte(nil), ip...)
		f(b)
		return b
	}
	for _, tc := range []struct {
		name string
		h    []byte
		want string
	}{
		{"ttl", mod(func(b []byte) { b[8] = 63 }), "10.0.0.1.40000 > 10.0.0.2.7 UDP ttl 64 → 10.0.0.1.40000 > 10.0.0.2.7 UDP ttl 63"},
		{"udp checksum", mod(func(b []byte) { b[27] = 0x35 }), "the UDP checksum"},
		{"both checksums", mod(func(b []byte) { b[11], b[26] = 0, 0 }), "the IPv4 header checksum and the UDP checksum"},
		{"identification", mod(func(b []byte) { b[4] = 1 }), "header bytes the summary does not show"},
	} {
		if got := rewriteSummary(ip, tc.h); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestDrainUntilStopped: a stream that ends at its timeout or its count
// finishes normally; one whose context ends first (the daemon stopping)
// finishes marked stopped, which the CLI reports as an error.
func TestDrainUntilStopped(t *testing.T) {
	run := func(ctx context.Context, timeoutMs int64, countAfter int) (stopped, finished bool) {
		takes := 0
		take := func() (bool, error) {
			takes++
			return countAfter > 0 && takes >= countAfter, nil
		}
		finish := func(s bool) error {
			stopped, finished = s, true
			return nil
		}
		if err := drainUntil(ctx, timeoutMs, time.Millisecond, func() {}, take, finish); err != nil {
			t.Fatal(err)
		}
		return stopped, finished
	}
	if stopped, finished := run(context.Background(), 20, 0); stopped || !finished {
		t.Errorf("timeout: stopped %v, finished %v; want finished, not stopped", stopped, finished)
	}
	if stopped, finished := run(context.Background(), 0, 3); stopped || !finished {
		t.Errorf("count: stopped %v, finished %v; want finished, not stopped", stopped, finished)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if stopped, finished := run(ctx, 10_000, 0); !stopped || !finished {
		t.Errorf("daemon stopping: stopped %v, finished %v; want both", stopped, finished)
	}
}
