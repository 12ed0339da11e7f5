package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"strings"
	"testing"
)

func TestServiceLogFlags(t *testing.T) {
	parse := func(args ...string) *logFlags {
		t.Helper()
		var lf logFlags
		fs := flag.NewFlagSet("run", flag.ContinueOnError)
		lf.add(fs)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		return &lf
	}
	var buf bytes.Buffer
	log, err := parse("--log-format", "json", "--log-level", "warn").logger(&buf)
	if err != nil {
		t.Fatal(err)
	}
	log.Info("hidden")
	log.Warn("shown", "port", "p1")
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("%q: %v, want one JSON line", buf.String(), err)
	}
	if rec["msg"] != "shown" || rec["level"] != "WARN" || rec["port"] != "p1" {
		t.Errorf("record %v", rec)
	}

	buf.Reset()
	log, err = parse().logger(&buf)
	if err != nil {
		t.Fatal(err)
	}
	log.Debug("hidden")
	log.Info("shown")
	if out := buf.String(); !strings.Contains(out, "level=INFO msg=shown") || strings.Contains(out, "hidden") {
		t.Errorf("default text at info: %q", out)
	}

	for _, args := range [][]string{{"--log-format", "xml"}, {"--log-level", "loud"}} {
		if _, err := parse(args...).logger(&buf); err == nil || !strings.Contains(err.Error(), args[0]) {
			t.Errorf("%v: %v, want an error naming %s", args, err, args[0])
		}
	}
}
