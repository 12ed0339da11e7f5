package config

import (
	"strings"
	"testing"
)

func TestParseWorkerPriority(t *testing.T) {
	const base = "ports:\n  - interface: a\nbridges:\n  - name: b\n    ports: [a]\n"
	for _, tc := range []struct {
		options string
		want    int
		given   bool
	}{
		{"", DefaultWorkerPriority, false},
		{"options:\n  worker_priority: 0\n", 0, true},
		{"options:\n  worker_priority: 42\n", 42, true},
		{"options:\n  worker_priority: 99\n", 99, true},
	} {
		c, err := Parse("x.yaml", []byte(base+tc.options))
		if err != nil {
			t.Fatalf("%q: %v", tc.options, err)
		}
		if got := c.Options.WorkerPriority; got != tc.want {
			t.Errorf("%q: worker priority %d, want %d", tc.options, got, tc.want)
		}
		if given := c.Options.WorkerPriorityPos.Line != 0; given != tc.given {
			t.Errorf("%q: WorkerPriorityPos %+v: given %v, want %v", tc.options, c.Options.WorkerPriorityPos, given, tc.given)
		}
	}
	for _, bad := range []string{"100", "-1", "high"} {
		_, err := Parse("x.yaml", []byte(base+"options:\n  worker_priority: "+bad+"\n"))
		if err == nil || !strings.Contains(err.Error(), "options.worker_priority") || !strings.Contains(err.Error(), "x.yaml:7") {
			t.Errorf("worker_priority %s: err %v, want an error at x.yaml:7 naming options.worker_priority", bad, err)
		}
	}
}
