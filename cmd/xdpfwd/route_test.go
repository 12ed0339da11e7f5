package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xdpfwd/xdpfwd/internal/control"
)

// TestRouteShowArgs: `route show` asks for table main unless a `table`
// selector, before or after the flags, names another; other words are
// refused before the daemon is called.
func TestRouteShowArgs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the control socket answers root only; run as root (CI does)")
	}
	var got []string
	h := func(raw json.RawMessage) (any, error) {
		var a control.RouteArgs
		if len(raw) > 0 {
			if err := json.Unmarshal(raw, &a); err != nil {
				return nil, err
			}
		}
		got = append(got, a.Table)
		return []string{}, nil
	}
	path := filepath.Join(t.TempDir(), "ctl.sock")
	s, err := control.Listen(path, map[string]control.Handler{"route": h})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Serve(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"show", "--control", path}, ""},
		{[]string{"show", "table", "local", "--control", path}, "local"},
		{[]string{"show", "--control", path, "table", "all"}, "all"},
	} {
		got = nil
		if err := routeCmd(c.args); err != nil {
			t.Fatalf("%v: %v", c.args, err)
		}
		if len(got) != 1 || got[0] != c.want {
			t.Errorf("%v asked for tables %q, want [%q]", c.args, got, c.want)
		}
	}
	got = nil
	for _, args := range [][]string{
		{"show", "table", "--control", path},
		{"show", "local", "--control", path},
		{"show", "table", "local", "extra", "--control", path},
	} {
		if err := routeCmd(args); err == nil || !strings.Contains(err.Error(), "unexpected argument") {
			t.Errorf("%v: %v, want an unexpected argument error", args, err)
		}
	}
	if len(got) != 0 {
		t.Errorf("the daemon was asked %q for bad arguments", got)
	}
}
