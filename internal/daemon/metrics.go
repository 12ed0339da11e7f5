package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/xdpfwd/xdpfwd/fastpath"
	"github.com/xdpfwd/xdpfwd/internal/control"
)

// metricDesc names and describes one metric family.
func metricDesc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("xdpfwd_"+name, help, labels, nil)
}

var (
	descPortState   = metricDesc("port_state", "1 for the port's state, 0 for the other three (up, down, absent, failed); why a port failed is in `xdpfwd stats` and the log.", "port", "state")
	descPortInfo    = metricDesc("port_info", "A port: its XDP mode, socket bind mode and queues.", "port", "xdp_mode", "bind", "queues")
	descRxPackets   = metricDesc("port_rx_packets_total", "Frames the fast path received on the port.", "port")
	descRxBytes     = metricDesc("port_rx_bytes_total", "Bytes of the frames the fast path received on the port.", "port")
	descTxPackets   = metricDesc("port_tx_packets_total", "Frames transmitted on the port: put on its TX rings and completed.", "port")
	descTxBytes     = metricDesc("port_tx_bytes_total", "Bytes of the frames transmitted on the port.", "port")
	descDrops       = metricDesc("drop_count_total", "Frames the fast path dropped, by ingress (or egress) port, the stage that dropped them, and reason.", "port", "stage", "reason")
	descXDP         = metricDesc("xdp_verdicts_total", "The XDP program's verdicts on the port.", "port", "verdict")
	descXSK         = metricDesc("xsk_statistics_total", "The kernel's XDP_STATISTICS, summed over the port's sockets.", "port", "counter")
	descRouter      = metricDesc("router_packets_total", "Packets the router routed (forwarded), took for itself (local), or cut into fragments (fragmented).", "action")
	descRouterSent  = metricDesc("router_sent_total", "Packets the router sent of its own, by kind.", "kind")
	descRouterSize  = metricDesc("router_entries", "Entries of the router's tables.", "table")
	descBridge      = metricDesc("bridge_frames_total", "Frames a bridge forwarded to one port or flooded.", "bridge", "action")
	descLearned     = metricDesc("bridge_learned_total", "New and moved FDB entries.", "bridge")
	descFDBFull     = metricDesc("bridge_fdb_full_total", "Source MACs not learned because the FDB was full.", "bridge")
	descFDBEvicted  = metricDesc("bridge_fdb_evicted_total", "Dynamic FDB entries evicted for a new MAC whose probe window was full.", "bridge")
	descFDBEntries  = metricDesc("bridge_fdb_entries", "FDB slots in use: live entries, and expired ones until the sweeper clears them.", "bridge")
	descStagePkts   = metricDesc("stage_packets_total", "Packets each pipeline stage ran over (options.profile).", "stage")
	descStageSecond = metricDesc("stage_seconds_total", "Time spent in each pipeline stage (options.profile).", "stage")
	descLatency     = metricDesc("port_latency_seconds", "Time the frames sent on the port spent in xdpfwd, from the RX ring to the port's TX ring.", "port")
)

// portStates are the states xdpfwd_port_state has a series for, one
// each per port, whatever state the port is in: a series that vanished
// with the state it names would hide the change from an alert on it.
// "failed" stands for failedState whatever the reason, which is text
// without bound and stays out of the labels.
var portStates = [...]string{stateUp, stateDown, stateAbsent, strings.TrimSuffix(failedState, ": ")}

// collector turns a stats snapshot, from stats, into metrics at every
// scrape, so the metrics and the stats verb never disagree.
type collector struct {
	stats func() (*control.Stats, error)
}

// Describe implements prometheus.Collector.
func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descPortInfo, descRxPackets, descRxBytes, descTxPackets, descTxBytes, descDrops,
		descXDP, descXSK, descBridge, descRouter, descRouterSent, descRouterSize, descLearned, descFDBFull, descFDBEvicted, descFDBEntries, descStagePkts, descStageSecond, descPortState, descLatency} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c collector) Collect(ch chan<- prometheus.Metric) {
	st, err := c.stats()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descPortInfo, err)
		return
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	for _, p := range st.Ports {
		bind := "copy"
		if p.ZeroCopy {
			bind = "zerocopy"
		}
		ch <- prometheus.MustNewConstMetric(descPortInfo, prometheus.GaugeValue, 1, p.Name, p.XDPMode, bind, strconv.Itoa(p.Queues))
		portState(ch, p)
		counter(descRxPackets, p.RxPackets, p.Name)
		counter(descRxBytes, p.RxBytes, p.Name)
		counter(descTxPackets, p.TxPackets, p.Name)
		counter(descTxBytes, p.TxBytes, p.Name)
		for reason, n := range p.Drops {
			stage, ok := p.DropStages[reason]
			if !ok {
				r, _ := fastpath.LookupReason(reason)
				stage = r.Stage()
			}
			counter(descDrops, n, p.Name, stage, reason)
		}
		ch <- latencyHistogram(p)
		for _, v := range xdpVerdicts(p.XDP) {
			counter(descXDP, v.n, p.Name, v.name)
		}
		for _, v := range xskCounters(p.XSK) {
			counter(descXSK, v.n, p.Name, v.name)
		}
	}
	for _, b := range st.Bridges {
		counter(descBridge, b.Forwarded, b.Name, "forwarded")
		counter(descBridge, b.Flooded, b.Name, "flooded")
		counter(descLearned, b.Learned, b.Name)
		counter(descFDBFull, b.FDBFull, b.Name)
		counter(descFDBEvicted, b.Evicted, b.Name)
		ch <- prometheus.MustNewConstMetric(descFDBEntries, prometheus.GaugeValue, float64(b.FDBEntries), b.Name)
	}
	if r := st.Router; r != nil {
		counter(descRouter, r.Forwarded, "forwarded")
		counter(descRouter, r.Local, "local")
		counter(descRouter, r.Fragmented, "fragmented")
		for _, v := range []struct {
			n    uint64
			kind string
		}{{r.EchoReplies, "echo_reply"}, {r.ARPReplies, "arp_reply"}, {r.NASent, "neighbour_advertisement"}, {r.Solicits, "solicitation"},
			{r.ICMPErrors, "icmp_error"}, {r.ICMPLimited, "icmp_error_rate_limited"}, {r.Announced, "announcement"}} {
			counter(descRouterSent, v.n, v.kind)
		}
		ch <- prometheus.MustNewConstMetric(descRouterSize, prometheus.GaugeValue, float64(r.Routes), "routes")
		ch <- prometheus.MustNewConstMetric(descRouterSize, prometheus.GaugeValue, float64(r.Neighbours), "neighbours")
	}
	for _, s := range st.Stages {
		counter(descStagePkts, s.Packets, s.Name)
		ch <- prometheus.MustNewConstMetric(descStageSecond, prometheus.CounterValue, float64(s.Nanoseconds)/1e9, s.Name)
	}
}

// latencyHistogram is p's latency as a Prometheus histogram, its buckets'
// bounds in seconds.
func latencyHistogram(p control.PortStats) prometheus.Metric {
	l := p.Latency
	buckets := make(map[float64]uint64, len(l.BoundsNanoseconds))
	var cum uint64
	for i, b := range l.BoundsNanoseconds {
		if i < len(l.Counts) {
			cum += l.Counts[i]
		}
		buckets[float64(b)/1e9] = cum
	}
	return prometheus.MustNewConstHistogram(descLatency, l.Packets, float64(l.SumNanoseconds)/1e9, buckets, p.Name)
}

// portState sends p's xdpfwd_port_state series: 1 for its state, 0 for
// the others. A state none of portStates names is a bug, and an error
// for the scrape rather than a port that seems to be in no state.
func portState(ch chan<- prometheus.Metric, p control.PortStats) {
	state, _, _ := strings.Cut(p.State, ": ")
	known := false
	for _, s := range portStates {
		known = known || s == state
	}
	if !known {
		ch <- prometheus.NewInvalidMetric(descPortState, fmt.Errorf("port %s: unknown state %q", p.Name, p.State))
		return
	}
	for _, s := range portStates {
		v := 0.0
		if s == state {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(descPortState, prometheus.GaugeValue, v, p.Name, s)
	}
}

type namedCount struct {
	name string
	n    uint64
}

func xdpVerdicts(x control.XDPCounters) []namedCount {
	return []namedCount{{"redirected", x.Redirected}, {"pass_no_socket", x.PassNoSocket}, {"pass_host", x.PassHost},
		{"drop_malformed", x.DropMalformed}, {"redirect_failed", x.RedirectFailed}, {"drop_too_big", x.DropTooBig},
		{"vlan_restored", x.VLANRestored}}
}

func xskCounters(x control.XSKCounters) []namedCount {
	return []namedCount{{"rx_dropped", x.RxDropped}, {"rx_invalid_descs", x.RxInvalidDescs}, {"tx_invalid_descs", x.TxInvalidDescs},
		{"rx_ring_full", x.RxRingFull}, {"rx_fill_ring_empty_descs", x.RxFillRingEmptyDescs}, {"tx_ring_empty_descs", x.TxRingEmptyDescs}}
}

// Scrapes are bounded: at most maxScrapes are answered at once, and one
// that waits longer than scrapeWait for its turn gets 503.
const (
	maxScrapes = 2
	scrapeWait = 5 * time.Second
)

// limitScrapes lets at most n requests into h at once; a request that
// waits longer than wait for its turn is answered 503 Service Unavailable.
func limitScrapes(h http.Handler, n int, wait time.Duration) http.Handler {
	sem := make(chan struct{}, n)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case sem <- struct{}{}:
		case <-t.C:
			w.Header().Set("Retry-After", "1")
			http.Error(w, fmt.Sprintf("too many concurrent scrapes (at most %d at once): try again later", n), http.StatusServiceUnavailable)
			return
		case <-r.Context().Done():
			return
		}
		defer func() { <-sem }()
		h.ServeHTTP(w, r)
	})
}

// warnBeyondLoopback logs a warning if the metrics listener at bound (for
// options.metrics addr) is reachable from beyond loopback.
func warnBeyondLoopback(log *slog.Logger, addr string, bound net.Addr) {
	if ta, ok := bound.(*net.TCPAddr); ok && !ta.IP.IsLoopback() {
		log.Warn("metrics are served beyond loopback: anyone who can reach this address reads the counters; bind 127.0.0.1 or [::1] unless that is what you want",
			"options.metrics", addr, "listening", bound.String())
	}
}

// ServeMetrics serves /metrics on addr until ctx is done; done is closed
// once the server has shut down. The listener is opened before it
// returns, so a bad or busy address is an error at start. An address
// beyond loopback is served, with a warning: the counters name the ports
// and show their traffic to whoever can reach it.
func (d *Daemon) ServeMetrics(ctx context.Context, addr string) (done <-chan struct{}, err error) {
	reg := prometheus.NewRegistry()
	if err := reg.Register(collector{stats: d.Stats}); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: listen on %s (options.metrics): %w", addr, err)
	}
	warnBeyondLoopback(d.log, addr, ln.Addr())
	mux := http.NewServeMux()
	mux.Handle("/metrics", limitScrapes(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), maxScrapes, scrapeWait))
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      scrapeWait + 10*time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("metrics server stopped", "err", err)
		}
	}()
	c := make(chan struct{})
	go func() {
		defer close(c)
		select {
		case <-ctx.Done():
		case <-served:
		}
		// Idle connections close at once; a scrape in progress gets a
		// second, then its connection is closed.
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if srv.Shutdown(sctx) != nil {
			srv.Close()
		}
		<-served
	}()
	d.log.Info("metrics", "url", "http://"+ln.Addr().String()+"/metrics")
	return c, nil
}
