package tests

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/xdpfwd/xdpfwd/internal/topo"
)

// scrape fetches /metrics from addr inside ns (the daemon's namespace).
func scrape(t *testing.T, ns *topo.Namespace, addr string) string {
	t.Helper()
	var body string
	err := ns.Do(func() (err error) {
		body, err = fetchMetrics(addr, 5*time.Second, 10*time.Second)
		return err
	})
	if err != nil {
		t.Fatalf("scrape http://%s/metrics in %s: %v", addr, ns.Name(), err)
	}
	return body
}

// fetchMetrics GETs /metrics from addr in the calling thread's namespace,
// with a dial timeout and a deadline for the whole exchange, and returns
// the body of a 200 answer.
func fetchMetrics(addr string, dial, total time.Duration) (string, error) {
	c, err := net.DialTimeout("tcp", addr, dial)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(total))
	if _, err := fmt.Fprintf(c, "GET /metrics HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", addr); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %s: %s", resp.Status, b)
	}
	return string(b), err
}

// options.metrics serves Prometheus metrics that say what the stats verb
// says: traffic per port, drops by reason, XDP verdicts, bridge counters.
func TestMetrics(t *testing.T) {
	t.Parallel()
	s := star(t, topo.VethOptions{}, topo.VethOptions{})
	const addr = "127.0.0.1:9464" // the switch namespace is the test's own
	d := runDaemon(t, s.Switch, bridgeConfig(ports(s)...)+"options:\n  metrics: "+addr+"\n  profile: true\n")
	ping(t, s.Hosts[0], s.Hosts[1].IP)
	body := scrape(t, s.Switch, addr)
	st := d.stats()
	p1 := portOf(t, st, "p1")
	for _, want := range []string{
		`xdpfwd_port_info{bind="copy",port="p1",queues="1",xdp_mode="native"} 1`,
		`xdpfwd_port_rx_packets_total{port="p1"} `,
		`xdpfwd_xdp_verdicts_total{port="p1",verdict="redirected"} `,
		`xdpfwd_drop_count_total{port="p1",reason="hairpin",stage="bridge"} `,
		`xdpfwd_bridge_frames_total{action="forwarded",bridge="br0"} `,
		`xdpfwd_bridge_fdb_entries{bridge="br0"} 2`,
		`xdpfwd_stage_seconds_total{stage="bridge"} `,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
	// The counters are those of the stats verb (traffic stopped after ping).
	var rx uint64
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, `xdpfwd_port_rx_packets_total{port="p1"} `) {
			fmt.Sscan(strings.TrimPrefix(l, `xdpfwd_port_rx_packets_total{port="p1"} `), &rx)
		}
	}
	if rx == 0 || rx > p1.RxPackets {
		t.Errorf("metrics say p1 received %d frames, stats %d", rx, p1.RxPackets)
	}
}
