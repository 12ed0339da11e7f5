package tests

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/xdpfwd/xdpfwd/internal/topo"
	"github.com/xdpfwd/xdpfwd/internal/traffic"
)

// TestTwoWorkers gives every port two queues, so the daemon runs two
// workers that share the bridge's FDB: concurrent TCP flows and UDP between
// all hosts arrive intact, and each host's MAC is learned once, on its
// port, whichever worker saw it.
func TestTwoWorkers(t *testing.T) {
	t.Parallel()
	q2 := topo.VethOptions{Queues: 2}
	s := star(t, q2, q2, q2)
	h := s.Hosts
	d := runDaemon(t, s.Switch, bridgeConfig(ports(s)...))

	st := d.stats()
	if st.Workers != 2 {
		t.Errorf("xdpfwd stats shows %d workers, want 2 (every port has 2 queues)", st.Workers)
	}
	for _, p := range ports(s) {
		if q := portOf(t, st, p).Queues; q != 2 {
			t.Errorf("port %s: stats shows queues %d, want 2", p, q)
		}
	}

	ping(t, h[0], h[1].IP)
	ping(t, h[1], h[2].IP)
	ping(t, h[2], h[0].IP)

	// Eight flows around the ring h1->h2->h3->h1; their ephemeral ports
	// spread them over both queues.
	const flows = 8
	var wg sync.WaitGroup
	errs := make(chan error, flows)
	for i := range flows {
		src, dst := h[i%3], h[(i+1)%3]
		wg.Go(func() {
			if _, err := traffic.TCP(src, dst, 4<<20, uint64(300+i)); err != nil {
				errs <- fmt.Errorf("TCP flow %d %s -> %s: %w", i, src.Name(), dst.Name(), err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	for i := range 6 {
		udpIntact(t, h[i%3], h[(i+1)%3], 200, uint64(400+i))
	}

	assertLearned(t, d.fdb("br0"), h...)

	// Both queues, so both workers' sockets, carried traffic: the veths'
	// own per-queue counters of frames redirected by XDP.
	for q := range 2 {
		var n uint64
		for _, p := range ports(s) {
			n += ethtoolStat(t, s.Switch, p, fmt.Sprintf("rx_queue_%d_xdp_redirect", q))
		}
		if n == 0 {
			t.Errorf("no frame was redirected to an AF_XDP socket on queue %d of any port", q)
		}
	}
}

// ethtoolStat returns the counter name of `ethtool -S ifname` in ns.
func ethtoolStat(t *testing.T, ns *topo.Namespace, ifname, name string) uint64 {
	t.Helper()
	out := run(t, ns, "ethtool", "-S", ifname)
	for _, l := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(l), ": ")
		if ok && k == name {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				t.Fatalf("ethtool -S %s: %s: %v", ifname, name, err)
			}
			return n
		}
	}
	t.Fatalf("ethtool -S %s has no counter %s:\n%s", ifname, name, out)
	return 0
}
