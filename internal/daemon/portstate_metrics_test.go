package daemon

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/goleak"

	"github.com/xdpfwd/xdpfwd/internal/control"
)

// TestPortStateMetric scrapes xdpfwd_port_state as Prometheus would, from
// stats whose ports change state between scrapes: every port has one
// series per state, 1 for the one it is in and 0 for the others, so the
// series for "up" is still there (at 0) once the port is down, and a
// failed port's reason is in no label.
func TestPortStateMetric(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // first registered: runs after the other cleanups
	var mu sync.Mutex
	states := map[string]string{"p1": "up", "p2": "down", "p3": "absent", "p4": "failed: its MTU 9000 no longer fits the UMEM frame"}
	reg := prometheus.NewRegistry()
	if err := reg.Register(collector{stats: func() (*control.Stats, error) {
		mu.Lock()
		defer mu.Unlock()
		st := &control.Stats{}
		for _, p := range []string{"p1", "p2", "p3", "p4"} {
			st.Ports = append(st.Ports, control.PortStats{Name: p, State: states[p]})
		}
		return st, nil
	}}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	scrape := func() (int, string) {
		t.Helper()
		c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := c.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(b)
	}
	// check wants, for each port, the state whose series is 1.
	check := func(when string, want map[string]string) {
		t.Helper()
		code, body := scrape()
		if code != http.StatusOK {
			t.Fatalf("scrape %s: %d\n%s", when, code, body)
		}
		var got []string
		for _, line := range strings.Split(body, "\n") {
			if strings.HasPrefix(line, "xdpfwd_port_state{") {
				got = append(got, line)
			}
		}
		var lines []string
		for _, p := range []string{"p1", "p2", "p3", "p4"} {
			for _, s := range []string{"absent", "down", "failed", "up"} { // the exposition's order
				v := 0
				if s == want[p] {
					v = 1
				}
				lines = append(lines, fmt.Sprintf("xdpfwd_port_state{port=%q,state=%q} %d", p, s, v))
			}
		}
		if strings.Join(got, "\n") != strings.Join(lines, "\n") {
			t.Errorf("port_state %s:\n%s\nwant:\n%s", when, strings.Join(got, "\n"), strings.Join(lines, "\n"))
		}
	}
	check("at first", map[string]string{"p1": "up", "p2": "down", "p3": "absent", "p4": "failed"})

	mu.Lock()
	states["p1"], states["p2"], states["p4"] = "down", "failed: bind its sockets: device busy", "up"
	mu.Unlock()
	check("after p1 went down, p2 failed and p4 came up", map[string]string{"p1": "down", "p2": "failed", "p3": "absent", "p4": "up"})

	// A state the metric has no series for is a bug: the scrape says so.
	mu.Lock()
	states["p3"] = "sleepy"
	mu.Unlock()
	if code, body := scrape(); code == http.StatusOK || !strings.Contains(body, `port p3: unknown state "sleepy"`) {
		t.Errorf("scrape with an unknown state: %d %q; want an error naming the port and its state", code, body)
	}
}
