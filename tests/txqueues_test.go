package tests

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/xdpfwd/xdpfwd/internal/topo"
	"github.com/xdpfwd/xdpfwd/internal/topotest"
	"github.com/xdpfwd/xdpfwd/internal/traffic"
)

// unevenHost adds host idx to the switch namespace sw of tp, joined by a
// veth pair whose switch end (p<idx>) has swRx RX and swTx TX queues and
// whose host end (eth0) has the mirror image, so that the host's TX queues
// feed every RX queue of the switch end. It returns the host with its
// address 10.77.0.idx/24 on eth0, both ends up.
func unevenHost(t *testing.T, tp *topo.Topology, sw *topo.Namespace, idx, swRx, swTx int) *topo.Host {
	t.Helper()
	ns, err := tp.AddNamespace(fmt.Sprintf("h%d", idx))
	if err != nil {
		t.Fatal(err)
	}
	h := &topo.Host{Namespace: ns, Index: idx, IP: netip.AddrFrom4([4]byte{10, 77, 0, byte(idx)}), Port: fmt.Sprintf("p%d", idx)}
	hns, err := netns.GetFromName(ns.Name())
	if err != nil {
		t.Fatal(err)
	}
	defer hns.Close()
	la := netlink.NewLinkAttrs()
	la.Name, la.NumRxQueues, la.NumTxQueues = h.Port, swRx, swTx
	v := &netlink.Veth{LinkAttrs: la, PeerName: topo.HostIf, PeerTxQLen: -1,
		PeerNumRxQueues: uint32(swTx), PeerNumTxQueues: uint32(swRx), PeerNamespace: netlink.NsFd(hns)}
	// The pair goes away with the host namespace.
	if err := sw.Netlink().LinkAdd(v); err != nil {
		t.Fatalf("create veth %s (%d RX, %d TX queues): %v", h.Port, swRx, swTx, err)
	}
	for _, step := range []error{sw.LinkUp(h.Port), ns.LinkUp(topo.HostIf), ns.AddAddr(topo.HostIf, netip.PrefixFrom(h.IP, 24).String())} {
		if step != nil {
			t.Fatal(step)
		}
	}
	if h.HWAddr, err = ns.MAC(topo.HostIf); err != nil {
		t.Fatal(err)
	}
	return h
}

// staticNeighbours gives every host a permanent neighbour entry for every
// other, so that no ARP exchange decides what arrives.
func staticNeighbours(t *testing.T, hosts ...*topo.Host) {
	t.Helper()
	for _, a := range hosts {
		for _, b := range hosts {
			if a != b {
				if err := a.Neigh(topo.HostIf, b.IP.String(), b.HWAddr); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}

// TestFewerTxQueuesThanRx puts a port with 2 RX queues and 1 TX queue
// beside two ports with 2 of each. Sockets are bound by RX queue, and a
// frame put on the TX ring of queue 1 of a device with one TX queue is
// never sent (nor completed): before egress queues were chosen among the
// TX queues that exist, 22 of 32 flows to that port were lost and no drop
// was counted. Every flow must arrive, the daemon must say at start-up
// which queues it transmits on, and no drop may be counted.
func TestFewerTxQueuesThanRx(t *testing.T) {
	t.Parallel()
	tp := topotest.New(t, "xtq")
	sw, err := tp.AddNamespace("sw")
	if err != nil {
		t.Fatal(err)
	}
	var hosts []*topo.Host
	for i := 1; i <= 2; i++ {
		hosts = append(hosts, unevenHost(t, tp, sw, i, 2, 2))
	}
	narrow := unevenHost(t, tp, sw, 3, 2, 1)
	hosts = append(hosts, narrow)
	staticNeighbours(t, hosts...)
	d := runDaemon(t, sw, bridgeConfig("p1", "p2", "p3"))

	// 32 flows (each its own source port, so the senders' TX hash spreads
	// them over both queues) from each 2-queue host to the narrow one.
	const flows, per = 32, 16
	var mu sync.Mutex
	var lost []string
	var wg sync.WaitGroup
	for i := range flows {
		src := hosts[i%2]
		wg.Go(func() {
			res, err := traffic.UDP(src, narrow, per, 256, uint64(500+i))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				t.Errorf("flow %d: %v", i, err)
				return
			}
			if res.Received != per {
				lost = append(lost, fmt.Sprintf("flow %d from %s: %d of %d arrived", i, src.Name(), res.Received, per))
			}
		})
	}
	wg.Wait()
	if len(lost) > 0 {
		t.Errorf("%d of %d flows to the port with 1 TX queue lost datagrams:\n%s", len(lost), flows, strings.Join(lost, "\n"))
	}
	// And the other way round.
	udpIntact(t, narrow, hosts[0], 200, 77)

	st := d.stats()
	for _, p := range st.Ports {
		for r, n := range p.Drops {
			if n > 0 {
				t.Errorf("port %s: %d frames dropped: %s; want none", p.Name, n, r)
			}
		}
	}
	if log := d.stderr.String(); !strings.Contains(log, "port=p3") || !strings.Contains(log, "tx_queues=1") {
		t.Errorf("the daemon did not log the TX queues of p3 at start-up:\n%s", log)
	}
}
