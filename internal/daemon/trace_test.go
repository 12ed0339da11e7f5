package daemon

import (
	"testing"

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
