package control

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func serve(t *testing.T, path string, h map[string]Handler) {
	t.Helper()
	s, err := Listen(path, h)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Serve(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

func TestCall(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the control socket answers root only; run as root")
	}
	path := filepath.Join(t.TempDir(), "ctl.sock")
	serve(t, path, map[string]Handler{
		"stats": func(json.RawMessage) (any, error) { return Stats{Version: "v-test", Workers: 2}, nil },
		"fail":  func(json.RawMessage) (any, error) { return nil, errors.New("it broke") },
	})
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm()&0o077 != 0 {
		t.Fatalf("socket mode = %v, %v; want no access for group and others", fi.Mode(), err)
	}
	var st Stats
	if err := Call(path, "stats", nil, &st); err != nil || st.Version != "v-test" || st.Workers != 2 {
		t.Fatalf("stats = %+v, %v", st, err)
	}
	if err := Call(path, "fail", nil, nil); err == nil || !strings.Contains(err.Error(), "it broke") {
		t.Errorf("fail verb: %v", err)
	}
	if err := Call(path, "nope", nil, nil); err == nil || !strings.Contains(err.Error(), `unknown verb "nope"`) {
		t.Errorf("unknown verb: %v", err)
	}
	if _, err := Listen(path, nil); err == nil || !strings.Contains(err.Error(), "another xdpfwd") {
		t.Errorf("second listener: %v", err)
	}
}

func TestStaleSocketReplaced(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ctl.sock")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	serve(t, path, nil)
	if err := Call(path, "x", nil, nil); err == nil || !strings.Contains(err.Error(), "x:") {
		t.Errorf("call on replaced socket: %v", err)
	}
}

func TestCallNoDaemon(t *testing.T) {
	err := Call(filepath.Join(t.TempDir(), "none.sock"), "stats", nil, nil)
	if err == nil || !strings.Contains(err.Error(), "is `xdpfwd run` running?") {
		t.Errorf("err = %v", err)
	}
}
