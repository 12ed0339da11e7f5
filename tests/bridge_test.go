package tests

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xdpfwd/xdpfwd/internal/topo"
	"github.com/xdpfwd/xdpfwd/internal/traffic"
)

// TestBridgeThreeHosts forwards ping, UDP and TCP between three hosts bridged
// by xdpfwd alone (no kernel bridge), with the hosts' default offloads, so
// the TCP/UDP checksums the hosts leave unfinished must be completed by
// xdpfwd.
func TestBridgeThreeHosts(t *testing.T) {
	t.Parallel()
	s := star(t, topo.VethOptions{}, topo.VethOptions{}, topo.VethOptions{})
	a, b, c := s.Hosts[0], s.Hosts[1], s.Hosts[2]
	runDaemon(t, s.Switch, bridgeConfig(ports(s)...))

	t.Run("ping", func(t *testing.T) {
		ping(t, a, b.IP)
		ping(t, a, c.IP)
		ping(t, c, b.IP)
	})
	t.Run("ping1472", func(t *testing.T) {
		// 1472 bytes of ICMP data make a 1500-byte IP packet: a full-MTU frame.
		ping(t, a, b.IP, "-s", "1472")
		ping(t, b, c.IP, "-s", "1472", "-M", "do")
	})
	t.Run("udp", func(t *testing.T) {
		before := csumErrors(t, b.Namespace)
		udpIntact(t, a, b, 1000, 1)
		if after := csumErrors(t, b.Namespace); after != before {
			t.Errorf("InCsumErrors in %s rose from %d to %d", b.Name(), before, after)
		}
	})
	t.Run("tcp64MiB", func(t *testing.T) {
		beforeA, beforeB := csumErrors(t, a.Namespace), csumErrors(t, b.Namespace)
		if _, err := traffic.TCP(a, b, 64<<20, 42); err != nil {
			t.Fatal(err)
		}
		if after := csumErrors(t, b.Namespace); after != beforeB {
			t.Errorf("InCsumErrors in receiver %s rose from %d to %d", b.Name(), beforeB, after)
		}
		if after := csumErrors(t, a.Namespace); after != beforeA {
			t.Errorf("InCsumErrors in sender %s (ACKs) rose from %d to %d", a.Name(), beforeA, after)
		}
	})
}

// TestMACLearning checks that once A and B have talked, unicast between
// them reaches B and not C, and that the FDB shows where they are.
func TestMACLearning(t *testing.T) {
	t.Parallel()
	s := star(t, topo.VethOptions{}, topo.VethOptions{}, topo.VethOptions{})
	a, b, c := s.Hosts[0], s.Hosts[1], s.Hosts[2]
	d := runDaemon(t, s.Switch, bridgeConfig(ports(s)...))

	// A learns B's MAC by ARP and both directions pass the bridge.
	ping(t, a, b.IP)

	cBefore := rxPackets(t, c.Namespace, topo.HostIf)
	bBefore := rxPackets(t, b.Namespace, topo.HostIf)
	const n = 200
	udpIntact(t, a, b, n, 3)
	cRise := rxPackets(t, c.Namespace, topo.HostIf) - cBefore
	bRise := rxPackets(t, b.Namespace, topo.HostIf) - bBefore
	t.Logf("after %d unicast datagrams A->B: B rx +%d, C rx +%d", n, bRise, cRise)
	if bRise < n {
		t.Errorf("B's %s rx_packets rose by %d, want >= %d", topo.HostIf, bRise, n)
	}
	// A few IPv6 multicast packets (router solicitation, MLD) may be
	// flooded to C meanwhile; flooding the unicast would add n.
	if cRise >= n/4 {
		t.Errorf("C's %s rx_packets rose by %d while A sent %d unicast datagrams to B: unicast is flooded, want ~0", topo.HostIf, cRise, n)
	}

	br := bridgeOf(t, d.stats(), "br0")
	assertLearned(t, d.fdb("br0"), a, b)
	if br.Forwarded < n {
		t.Errorf("br0 forwarded = %d after %d unicast datagrams, want >= %d", br.Forwarded, n, n)
	}
}

// TestARPFlooded checks that a broadcast ARP request from A reaches C, which
// is not its target, and is counted as flooded.
func TestARPFlooded(t *testing.T) {
	t.Parallel()
	s := star(t, topo.VethOptions{}, topo.VethOptions{}, topo.VethOptions{})
	a, b, c := s.Hosts[0], s.Hosts[1], s.Hosts[2]
	d := runDaemon(t, s.Switch, bridgeConfig(ports(s)...))

	for _, h := range s.Hosts {
		run(t, h.Namespace, "ip", "neigh", "flush", "dev", topo.HostIf)
	}
	fd := arpSocket(t, c)
	_, floodedBefore := d.bridgeCounters("br0")
	cBefore := rxPackets(t, c.Namespace, topo.HostIf)

	ping(t, a, b.IP)

	if !sawARPRequest(t, fd, a.HWAddr, a.IP, b.IP) {
		t.Errorf("C did not receive A's ARP request for %s", b.IP)
	}
	if rise := rxPackets(t, c.Namespace, topo.HostIf) - cBefore; rise == 0 {
		t.Error("C's rx_packets did not rise")
	}
	if _, floodedAfter := d.bridgeCounters("br0"); floodedAfter <= floodedBefore {
		t.Errorf("br0 flooded counter %d -> %d, want a rise for the ARP broadcast", floodedBefore, floodedAfter)
	}
}

// arpSocket opens a packet socket receiving ARP frames on h's eth0, with
// a 200 ms read timeout.
func arpSocket(t *testing.T, h *topo.Host) int {
	return packetSocket(t, h, unix.ETH_P_ARP, 200*time.Millisecond)
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// sawARPRequest reads ARP frames from fd for up to 3 s and reports whether
// one is a request from senderMAC/senderIP for targetIP.
func sawARPRequest(t *testing.T, fd int, senderMAC net.HardwareAddr, senderIP, targetIP netip.Addr) bool {
	t.Helper()
	buf := make([]byte, 2048)
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err == unix.EAGAIN || err == unix.EINTR {
			continue
		}
		if err != nil {
			t.Fatalf("read ARP socket: %v", err)
		}
		// Ethernet header (14) + ARP for IPv4 over Ethernet (28).
		if n < 42 {
			continue
		}
		arp := buf[14:n]
		if binary.BigEndian.Uint16(arp[6:8]) != 1 { // op: request
			continue
		}
		sha, spa, tpa := net.HardwareAddr(arp[8:14]), netip.AddrFrom4([4]byte(arp[14:18])), netip.AddrFrom4([4]byte(arp[24:28]))
		if sha.String() == senderMAC.String() && spa == senderIP && tpa == targetIP {
			return true
		}
	}
	return false
}

// TestMultiQueue runs several TCP and UDP flows between two hosts whose veth
// pairs have two queues at both ends.
func TestMultiQueue(t *testing.T) {
	t.Parallel()
	s := star(t, topo.VethOptions{Queues: 2}, topo.VethOptions{Queues: 2}, topo.VethOptions{})
	a, b := s.Hosts[0], s.Hosts[1]
	d := runDaemon(t, s.Switch, bridgeConfig(ports(s)...))

	st := d.stats()
	for _, want := range []struct {
		port   string
		queues int
	}{{a.Port, 2}, {b.Port, 2}, {s.Hosts[2].Port, 1}} {
		if p := portOf(t, st, want.port); p.Queues != want.queues {
			t.Errorf("port %s: stats shows queues %d, want %d", want.port, p.Queues, want.queues)
		}
	}

	ping(t, a, b.IP)

	const flows = 8
	var wg sync.WaitGroup
	errs := make(chan error, flows)
	for i := range flows {
		wg.Go(func() {
			if _, err := traffic.TCP(a, b, 4<<20, uint64(100+i)); err != nil {
				errs <- fmt.Errorf("TCP flow %d: %w", i, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	// UDP flows from distinct source ports, to distinct destination ports
	// (traffic.UDP opens fresh sockets on ephemeral ports every call).
	// Flows hashed to a queue xdpfwd does not serve would be lost.
	for i := range flows {
		udpIntact(t, a, b, 64, uint64(200+i))
	}
}
