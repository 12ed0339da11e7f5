package main

import (
	"slices"
	"strings"
	"testing"
)

func TestParseCaptureFlags(t *testing.T) {
	o, err := parseCaptureFlags([]string{"--point", "egress", "-w", "-", "udp", "port", "7", "--control", "/run/x.sock", "and", "not", "host", "10.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	if o.point != "egress" || o.out != "-" || o.ctl != "/run/x.sock" || strings.Join(o.expr, " ") != "udp port 7 and not host 10.0.0.1" {
		t.Errorf("%+v", o)
	}
	o, err = parseCaptureFlags([]string{"-w", "f", "--count", "3", "--", "udp", "--weird"})
	if err != nil || o.count != 3 || !slices.Equal(o.expr, []string{"udp", "--weird"}) {
		t.Errorf("%+v, %v", o, err)
	}
	for _, bad := range [][]string{{"udp"}, {"-w", "f", "--point", "middle"}, {"-w", "f", "--count", "-1"}} {
		if _, err := parseCaptureFlags(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// TestCompileFilter compiles with tcpdump, which scripts/deps.sh installs.
func TestCompileFilter(t *testing.T) {
	prog, err := compileFilter([]string{"udp", "port", "7"})
	if err != nil {
		t.Fatal(err)
	}
	if len(prog) != 20 || prog[0] != [4]uint32{0x28, 0, 0, 12} || prog[19] != [4]uint32{6, 0, 0, 0} {
		t.Errorf("udp port 7: %v", prog)
	}
	if _, err := compileFilter([]string{"udp", "port", "no-such-port"}); err == nil || !strings.Contains(err.Error(), "no-such-port") {
		t.Errorf("bad expression: %v", err)
	}
	t.Setenv("PATH", t.TempDir())
	if _, err := compileFilter([]string{"udp"}); err == nil || !strings.Contains(err.Error(), "install the tcpdump package") {
		t.Errorf("without tcpdump: %v", err)
	}
}
