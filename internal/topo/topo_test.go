package topo_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/xdpfwd/xdpfwd/internal/topo"
	"github.com/xdpfwd/xdpfwd/internal/topotest"
)

func TestVethUDPAndCounters(t *testing.T) {
	t.Parallel()
	tp := topotest.New(t, "topo")
	a, err := tp.AddNamespace("a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := tp.AddNamespace("b")
	if err != nil {
		t.Fatal(err)
	}
	if err := tp.Veth(a, "va", b, "vb", topo.VethOptions{MTU: 9000}); err != nil {
		t.Fatal(err)
	}
	if err := a.AddAddr("va", "10.9.0.1/24"); err != nil {
		t.Fatal(err)
	}
	if err := b.AddAddr("vb", "10.9.0.2/24"); err != nil {
		t.Fatal(err)
	}
	bMAC, err := b.MAC("vb")
	if err != nil {
		t.Fatal(err)
	}
	// A static entry means A sends no ARP: exactly the datagrams reach B.
	if err := a.Neigh("va", "10.9.0.2", bMAC); err != nil {
		t.Fatal(err)
	}

	origNS, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer origNS.Close()

	var rx *net.UDPConn
	if err := b.Do(func() error {
		var err error
		rx, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(10, 9, 0, 2), Port: 7000})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	var tx *net.UDPConn
	if err := a.Do(func() error {
		var err error
		tx, err = net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(10, 9, 0, 2), Port: 7000})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer tx.Close()

	// Do must leave this goroutine's thread where it was.
	cur, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer cur.Close()
	if !cur.Equal(origNS) {
		t.Fatal("Do changed the caller's network namespace")
	}

	rxBefore, _, err := b.LinkStats("vb")
	if err != nil {
		t.Fatal(err)
	}
	_, txBefore, err := a.LinkStats("va")
	if err != nil {
		t.Fatal(err)
	}
	const n = 20
	payload := bytes.Repeat([]byte{0xab}, 8000) // needs the 9000 MTU
	buf := make([]byte, 9000)
	for i := 0; i < n; i++ {
		if _, err := tx.Write(payload); err != nil {
			t.Fatal(err)
		}
		_ = rx.SetReadDeadline(time.Now().Add(5 * time.Second))
		m, err := rx.Read(buf)
		if err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
		if !bytes.Equal(buf[:m], payload) {
			t.Fatalf("datagram %d: got %d bytes, want %d equal bytes", i, m, len(payload))
		}
	}
	rxAfter, _, err := b.LinkStats("vb")
	if err != nil {
		t.Fatal(err)
	}
	_, txAfter, err := a.LinkStats("va")
	if err != nil {
		t.Fatal(err)
	}
	// IPv6 autoconfiguration may add a few packets of its own.
	if got := rxAfter - rxBefore; got < n {
		t.Errorf("vb rx_packets rose by %d, want >= %d", got, n)
	}
	if got := txAfter - txBefore; got < n {
		t.Errorf("va tx_packets rose by %d, want >= %d", got, n)
	}

	out, err := a.Command(context.Background(), "ip", "-o", "link", "show", "va").CombinedOutput()
	if err != nil {
		t.Fatalf("ip netns exec: %v: %s", err, out)
	}
	if !strings.Contains(string(out), "mtu 9000") {
		t.Errorf("ip link show va in %s: %s, want mtu 9000", a.Name(), out)
	}
}

func TestStarQueuesAndClose(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("skipping: needs root")
	}
	tp := topo.New("topo")
	t.Cleanup(func() { _ = tp.Close() })
	s, err := tp.Star([]topo.VethOptions{{}, {Queues: 2}})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Hosts) != 2 || s.Hosts[1].Port != "p2" || s.Hosts[1].IP.String() != "10.77.0.2" {
		t.Fatalf("unexpected hosts %+v", s.Hosts)
	}
	for _, c := range []struct {
		ns     *topo.Namespace
		ifname string
		queues int
	}{
		{s.Hosts[0].Namespace, topo.HostIf, 1},
		{s.Switch, "p1", 1},
		{s.Hosts[1].Namespace, topo.HostIf, 2},
		{s.Switch, "p2", 2},
	} {
		link, err := c.ns.Netlink().LinkByName(c.ifname)
		if err != nil {
			t.Fatal(err)
		}
		if got := link.Attrs().NumRxQueues; got != c.queues {
			t.Errorf("%s in %s: %d RX queues, want %d", c.ifname, c.ns.Name(), got, c.queues)
		}
		if got := link.Attrs().NumTxQueues; got != c.queues {
			t.Errorf("%s in %s: %d TX queues, want %d", c.ifname, c.ns.Name(), got, c.queues)
		}
		if link.Attrs().OperState == netlink.OperDown {
			t.Errorf("%s in %s is down", c.ifname, c.ns.Name())
		}
	}
	mac, err := s.Hosts[0].MAC("eth0")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(mac, s.Hosts[0].HWAddr) {
		t.Errorf("Host.HWAddr %s, interface has %s", s.Hosts[0].HWAddr, mac)
	}

	names := []string{s.Switch.Name(), s.Hosts[0].Name(), s.Hosts[1].Name()}
	for _, name := range names {
		if _, err := os.Stat(filepath.Join("/var/run/netns", name)); err != nil {
			t.Fatalf("namespace %s not visible to ip netns: %v", name, err)
		}
	}
	if err := tp.Close(); err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		if _, err := os.Stat(filepath.Join("/var/run/netns", name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("namespace %s still exists after Close (stat: %v)", name, err)
		}
	}
	if err := tp.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := tp.AddNamespace("late"); err == nil {
		t.Error("AddNamespace after Close succeeded")
	}
}

func TestVethRejectsLongName(t *testing.T) {
	t.Parallel()
	tp := topotest.New(t, "topo")
	a, err := tp.AddNamespace("a")
	if err != nil {
		t.Fatal(err)
	}
	err = tp.Veth(a, "sixteen-chars-xx", a, "ok", topo.VethOptions{})
	if err == nil || !strings.Contains(err.Error(), "sixteen-chars-xx") {
		t.Fatalf("Veth with a 16-character name: err %v, want an error naming it", err)
	}
}

func TestXDPAttached(t *testing.T) {
	t.Parallel()
	tp := topotest.New(t, "topo")
	a, err := tp.AddNamespace("a")
	if err != nil {
		t.Fatal(err)
	}
	if err := tp.Veth(a, "x0", a, "x1", topo.VethOptions{}); err != nil {
		t.Fatal(err)
	}
	if on, err := a.XDPAttached("x0"); err != nil || on {
		t.Fatalf("fresh veth: attached %v, err %v; want false, nil", on, err)
	}
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:    ebpf.XDP,
		License: "GPL",
		Instructions: asm.Instructions{
			asm.Mov.Imm(asm.R0, 2), // XDP_PASS
			asm.Return(),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	link, err := a.Netlink().LinkByName("x0")
	if err != nil {
		t.Fatal(err)
	}
	// The package-level netlink functions use the calling thread's namespace.
	if err := a.Do(func() error {
		return netlink.LinkSetXdpFdWithFlags(link, prog.FD(), 1<<1 /* XDP_FLAGS_SKB_MODE */)
	}); err != nil {
		t.Fatal(err)
	}
	if on, err := a.XDPAttached("x0"); err != nil || !on {
		t.Fatalf("after attach: attached %v, err %v; want true, nil", on, err)
	}
	if on, err := a.XDPAttached("x1"); err != nil || on {
		t.Fatalf("peer: attached %v, err %v; want false, nil", on, err)
	}
}
