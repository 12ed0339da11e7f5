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

func TestParseWorkerCPUs(t *testing.T) {
	const base = "ports:\n  - interface: a\nbridges:\n  - name: b\n    ports: [a]\n"
	c, err := Parse("x.yaml", []byte(base+"options:\n  worker_cpus: [3, 1]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Options.WorkerCPUs; len(got) != 2 || got[0] != 3 || got[1] != 1 || c.Options.WorkerCPUsPos.Line != 7 {
		t.Errorf("worker_cpus [3, 1]: %v at %+v, want [3 1] at line 7", got, c.Options.WorkerCPUsPos)
	}
	for bad, want := range map[string]string{
		"[1, 1]": "x.yaml:7:20: options.worker_cpus[1]: CPU 1 is listed twice",
		"[-1]":   "x.yaml:7:17: options.worker_cpus[0]: -1 is out of range [0, 1023]",
		"[1024]": "x.yaml:7:17: options.worker_cpus[0]: 1024 is out of range [0, 1023]",
		"two":    "x.yaml:7:16: options.worker_cpus: must be a list",
	} {
		_, err := Parse("x.yaml", []byte(base+"options:\n  worker_cpus: "+bad+"\n"))
		if err == nil || err.Error() != want {
			t.Errorf("worker_cpus %s: err %v, want %q", bad, err, want)
		}
	}
}
