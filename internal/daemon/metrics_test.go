package daemon

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/xdpfwd/xdpfwd/fastpath"
	"github.com/xdpfwd/xdpfwd/fastpath/bridge"
)

// TestLimitScrapes lets one scrape in at a time: a second that waits past
// the bound gets 503, and a later one gets in once the first is done.
func TestLimitScrapes(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // first registered: runs after the other cleanups
	entered, release := make(chan struct{}, 4), make(chan struct{})
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
		fmt.Fprintln(w, "ok")
	})
	srv := httptest.NewServer(limitScrapes(slow, 1, 200*time.Millisecond))
	defer srv.Close()
	get := func() (int, string) {
		resp, err := http.Get(srv.URL)
		if err != nil {
			t.Error(err)
			return 0, ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	var firstCode int
	go func() { defer wg.Done(); firstCode, _ = get() }()
	<-entered
	code, body := get()
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "too many concurrent scrapes") {
		t.Errorf("second scrape while the first runs: %d %q; want 503", code, body)
	}
	close(release)
	wg.Wait()
	if firstCode != http.StatusOK {
		t.Errorf("first scrape: %d", firstCode)
	}
	if code, _ := get(); code != http.StatusOK {
		t.Errorf("scrape after the first ended: %d", code)
	}
	http.DefaultClient.CloseIdleConnections()
}

// serveMetrics runs ServeMetrics on addr and returns the log it wrote and
// the URL, with a cleanup that stops it.
func serveMetrics(t *testing.T, d *Daemon, addr string) (*bytes.Buffer, string) {
	t.Helper()
	var log bytes.Buffer
	d.log = slog.New(slog.NewTextHandler(&log, nil))
	ctx, cancel := context.WithCancel(context.Background())
	done, err := d.ServeMetrics(ctx, addr)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("metrics server still running 5s after its context ended")
		}
	})
	url := strings.TrimSpace(log.String()[strings.Index(log.String(), "url=")+4:])
	return &log, url
}

// TestMetricsBeyondLoopbackWarns checks that metrics bound beyond loopback
// are served with a warning, and on loopback without one. (Addresses only:
// the test binds nothing beyond loopback; tests/ has the daemon do it in a
// namespace of its own.)
func TestMetricsBeyondLoopbackWarns(t *testing.T) {
	for _, c := range []struct {
		addr string
		ip   net.IP
		warn bool
	}{
		{"127.0.0.1:9464", net.IPv4(127, 0, 0, 1), false},
		{"localhost:9464", net.IPv6loopback, false},
		{"0.0.0.0:9464", net.IPv4zero, true},
		{":9464", net.IPv6unspecified, true},
		{"192.0.2.1:9464", net.IPv4(192, 0, 2, 1), true},
	} {
		var log bytes.Buffer
		warnBeyondLoopback(slog.New(slog.NewTextHandler(&log, nil)), c.addr, &net.TCPAddr{IP: c.ip, Port: 9464})
		warned := strings.Contains(log.String(), "level=WARN") && strings.Contains(log.String(), "beyond loopback")
		if warned != c.warn {
			t.Errorf("metrics on %s: warned %v, want %v; log:\n%s", c.addr, warned, c.warn, log.String())
		}
	}
}

// TestServeMetricsLoopback serves metrics on loopback: no warning, and the
// server is gone once its context ends.
func TestServeMetricsLoopback(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // first registered: runs after the other cleanups
	log, url := serveMetrics(t, testDaemon(t, nil), "127.0.0.1:0")
	if strings.Contains(log.String(), "level=WARN") {
		t.Errorf("warning for metrics on loopback:\n%s", log.String())
	}
	if !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Errorf("logged URL %q", url)
	}
}

// TestScrapeAfterClose checks that a scrape of a daemon being closed is an
// error that says so, not torn counters, and that a scrape before shows
// the FDB size from its counter.
func TestScrapeAfterClose(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // first registered: runs after the other cleanups
	d := testDaemon(t, nil, bridge.Config{Name: "br0", MaxEntries: 64})
	now := fastpath.MonotonicClock().Seconds()
	for i := range 5 {
		d.bridges.List()[0].FDB().Learn(0, testMAC(i), 0, now)
	}
	_, url := serveMetrics(t, d, "127.0.0.1:0")
	scrape := func() (int, string) {
		t.Helper()
		c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := c.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := scrape()
	if code != http.StatusOK || !strings.Contains(body, `xdpfwd_bridge_fdb_entries{bridge="br0"} 5`) {
		t.Errorf("scrape: %d, want 200 and 5 FDB entries:\n%s", code, body)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	code, body = scrape()
	if code == http.StatusOK || !strings.Contains(body, "shutting down") {
		t.Errorf("scrape after Close: %d %q; want an error saying the daemon is shutting down", code, body)
	}
}
