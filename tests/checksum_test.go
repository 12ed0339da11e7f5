package tests

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/xdpfwd/xdpfwd/internal/topo"
	"github.com/xdpfwd/xdpfwd/internal/traffic"
)

// TestChecksumMatrix sends the same traffic, with checksums left
// unfinished the way Linux senders leave them (CHECKSUM_PARTIAL: veth has
// TX checksum offload on), from h1 to h2 through a kernel bridge and
// through xdpfwd, and asserts on both paths that it arrives and that no
// receiver's *InCsumErrors counter (Ip, Icmp, Tcp, Udp, UdpLite, Icmp6,
// Udp6, UdpLite6) rises: the kernel path is the oracle.
//
// What this kernel can produce, the kernel produces: plain TCP/UDP;
// 802.1Q and 802.1ad+802.1Q tags pushed by a tc egress program
// (bpf_skb_vlan_push) on the sender's veth, with VID 0, which receivers
// without VLAN devices accept (priority tags); VXLAN devices with and
// without the outer UDP checksum; IPv6 hop-by-hop and destination options
// set on the sockets; UDP without checksum (SO_NO_CHECK).
//
// What it cannot (no GENEVE, GRE or SCTP in this kernel, no loadable
// modules) is built with gopacket exactly as Linux would leave it and
// injected from h1 with AF_PACKET and a virtio-net header that marks it
// CHECKSUM_PARTIAL (csum_start/csum_offset at the unfinished field), so
// the kernel path carries it as it carries a real sender's: GENEVE with
// Ethernet inside (outer UDP checksum computed by local checksum offload,
// as udp_set_csum does), GRE with key and sequence number, GRE with its
// own checksum (gre_build_header), SCTP with its CRC32c field 0
// (sctp_packet_pack). The receiver h2 has no GENEVE, GRE or SCTP stack to
// count errors, so an AF_PACKET socket on h2 checks every such frame as a
// receiving stack would: either the kernel marks it CHECKSUM_PARTIAL
// (TP_STATUS_CSUMNOTREADY: a local stack trusts it) or every checksum in
// it verifies (outer and inner TCP/UDP, GRE, SCTP CRC32c), computed here
// independently of xdpfwd.
func TestChecksumMatrix(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	var results []string
	t.Cleanup(func() {
		sort.Strings(results)
		t.Logf("checksum matrix (case × path → result):\n%s", strings.Join(results, "\n"))
	})
	for _, path := range []string{"kernel", "xdpfwd"} {
		t.Run(path, func(t *testing.T) {
			h1, h2 := checksumPath(t, path)
			for _, c := range checksumMatrix() {
				t.Run(c.name, func(t *testing.T) {
					before1, before2 := csumCounters(t, h1.Namespace), csumCounters(t, h2.Namespace)
					defer func() {
						// Also after a t.Fatal in c.run.
						rose := countersRose(before1, csumCounters(t, h1.Namespace), h1.Name())
						rose = append(rose, countersRose(before2, csumCounters(t, h2.Namespace), h2.Name())...)
						for _, r := range rose {
							t.Errorf("checksum errors: %s", r)
						}
						res := "ok"
						if t.Failed() {
							res = "FAIL " + strings.Join(rose, "; ")
						}
						results = append(results, fmt.Sprintf("  %-46s %-7s %s", c.name, path, res))
					}()
					c.run(t, h1, h2)
				})
			}
		})
	}
}

// checksumPath builds hosts h1 and h2 joined by path: "kernel", a Linux
// bridge in the switch namespace; "xdpfwd", the daemon bridging the ports.
func checksumPath(t *testing.T, path string) (h1, h2 *topo.Host) {
	t.Helper()
	s := star(t, topo.VethOptions{}, topo.VethOptions{})
	h1, h2 = s.Hosts[0], s.Hosts[1]
	for _, h := range s.Hosts {
		n := strconv.Itoa(h.Index)
		run(t, h.Namespace, "ip", "-6", "addr", "add", "fd00:77::"+n+"/64", "dev", topo.HostIf, "nodad")
	}
	switch path {
	case "kernel":
		run(t, s.Switch, "ip", "link", "add", "br0", "type", "bridge")
		for _, h := range s.Hosts {
			run(t, s.Switch, "ip", "link", "set", h.Port, "master", "br0")
		}
		run(t, s.Switch, "ip", "link", "set", "br0", "up")
	case "xdpfwd":
		runDaemon(t, s.Switch, bridgeConfig(ports(s)...))
	}
	ping(t, h1, h2.IP)
	return h1, h2
}

type matrixCase struct {
	name string
	run  func(t *testing.T, h1, h2 *topo.Host)
}

func checksumMatrix() []matrixCase {
	return []matrixCase{
		{"plain UDP+TCP (kernel)", func(t *testing.T, h1, h2 *topo.Host) {
			udpTCP(t, h1, h2)
		}},
		{"802.1Q VID 0 (kernel, tc vlan push)", func(t *testing.T, h1, h2 *topo.Host) {
			vlanPush(t, h1, header8021Q)
			vlanPush(t, h2, header8021Q)
			udpTCP(t, h1, h2)
		}},
		{"802.1ad+802.1Q VID 0 (kernel, tc vlan push)", func(t *testing.T, h1, h2 *topo.Host) {
			// Through xdpfwd both tags travel in the bytes (an AF_XDP
			// socket cannot send one beside them, as the kernel path
			// does), and a veth takes at most MTU + 18 bytes
			// (is_skb_forwardable): a full-MTU frame with two tags, MTU +
			// 22, is dropped by the receiving veth. The sender's MTU
			// leaves room for the second tag.
			run(t, h1.Namespace, "ip", "link", "set", topo.HostIf, "mtu", "1496")
			t.Cleanup(func() { run(t, h1.Namespace, "ip", "link", "set", topo.HostIf, "mtu", "1500") })
			vlanPush(t, h1, header8021Q, header8021AD)
			vlanPush(t, h2, header8021Q, header8021AD)
			udpTCP(t, h1, h2)
		}},
		{"VXLAN, outer UDP checksum (kernel)", func(t *testing.T, h1, h2 *topo.Host) {
			a, b := vxlanPair(t, h1, h2, 1, "udpcsum")
			udpTCP(t, a, b)
		}},
		{"VXLAN, no outer UDP checksum (kernel)", func(t *testing.T, h1, h2 *topo.Host) {
			a, b := vxlanPair(t, h1, h2, 2, "noudpcsum")
			udpTCP(t, a, b)
		}},
		{"IPv6 hop-by-hop+dest options (kernel)", func(t *testing.T, h1, h2 *topo.Host) {
			ipv6ExtHeaders(t, h1, h2)
		}},
		{"UDP without checksum (kernel)", func(t *testing.T, h1, h2 *topo.Host) {
			udpNoChecksum(t, h1, h2)
		}},
		{"GENEVE, Ethernet inside, TCP (injected)", func(t *testing.T, h1, h2 *topo.Host) {
			injectAndCheck(t, h1, h2, "geneve")
		}},
		{"GRE, key+seq, Ethernet inside, TCP (injected)", func(t *testing.T, h1, h2 *topo.Host) {
			injectAndCheck(t, h1, h2, "gretap")
		}},
		{"GRE checksum, IPv4 inside, UDP (injected)", func(t *testing.T, h1, h2 *topo.Host) {
			injectAndCheck(t, h1, h2, "gre-csum")
		}},
		{"SCTP (injected)", func(t *testing.T, h1, h2 *topo.Host) {
			injectAndCheck(t, h1, h2, "sctp")
		}},
		{"SCTP in 802.1Q VID 0 (injected)", func(t *testing.T, h1, h2 *topo.Host) {
			injectAndCheck(t, h1, h2, "sctp-vlan")
		}},
	}
}

// udpTCP sends UDP datagrams and a TCP stream from a to b, with the
// hosts' default offloads, and fails unless all of it arrives intact.
func udpTCP(t *testing.T, a, b *topo.Host) {
	t.Helper()
	res, err := traffic.UDP(a, b, 200, 1400, 5)
	if err != nil {
		t.Fatalf("UDP %s -> %s: %v", a.IP, b.IP, err)
	}
	if res.Received != 200 || res.Corrupt != 0 {
		t.Errorf("UDP %s -> %s: %d of 200 datagrams arrived intact, %d corrupt", a.IP, b.IP, res.Received, res.Corrupt)
	}
	done := make(chan error, 1)
	go func() {
		_, err := traffic.TCP(a, b, 1<<20, 6)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("TCP %s -> %s: %v", a.IP, b.IP, err)
		}
	case <-time.After(40 * time.Second):
		// traffic.TCP has minutes-long deadlines; a stream that has not
		// moved 1 MiB in 40 s through a bridge is broken.
		t.Errorf("TCP %s -> %s: 1 MiB not through after 40 s", a.IP, b.IP)
	}
}

// Tag protocol identifiers, as bpf_skb_vlan_push takes them (network byte
// order in a register of this little-endian machine).
const (
	header8021Q  = 0x8100
	header8021AD = 0x88a8
)

// vlanPush attaches to h's eth0 a tc egress program that pushes a VID 0
// tag of each TPID in turn (bpf_skb_vlan_push: the first goes beside the
// frame, a later one moves it into the bytes), as a VLAN device or tc on a
// Linux sender does. It is removed when t ends.
func vlanPush(t *testing.T, h *topo.Host, tpids ...uint16) {
	t.Helper()
	insns := asm.Instructions{asm.Mov.Reg(asm.R6, asm.R1)}
	for _, tpid := range tpids {
		insns = append(insns,
			asm.Mov.Reg(asm.R1, asm.R6),
			asm.Mov.Imm(asm.R2, int32(tpid>>8|tpid<<8&0xff00)),
			asm.Mov.Imm(asm.R3, 0),
			asm.FnSkbVlanPush.Call(),
		)
	}
	insns = append(insns, asm.Mov.Imm(asm.R0, 0), asm.Return()) // TC_ACT_OK
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: "vlan_push", Type: ebpf.SchedCLS, Instructions: insns, License: "GPL"})
	if err != nil {
		t.Fatalf("load tc program pushing VLAN tags: %v", err)
	}
	t.Cleanup(func() { prog.Close() })
	nl := h.Netlink()
	link, err := nl.LinkByName(topo.HostIf)
	if err != nil {
		t.Fatalf("%s in %s: %v", topo.HostIf, h.Name(), err)
	}
	qdisc := &netlink.GenericQdisc{
		QdiscAttrs: netlink.QdiscAttrs{LinkIndex: link.Attrs().Index, Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT},
		QdiscType:  "clsact",
	}
	if err := nl.QdiscAdd(qdisc); err != nil {
		t.Fatalf("add clsact qdisc to %s in %s: %v", topo.HostIf, h.Name(), err)
	}
	t.Cleanup(func() {
		if err := nl.QdiscDel(qdisc); err != nil {
			t.Errorf("remove clsact qdisc from %s in %s: %v", topo.HostIf, h.Name(), err)
		}
	})
	filter := &netlink.BpfFilter{
		FilterAttrs:  netlink.FilterAttrs{LinkIndex: link.Attrs().Index, Parent: netlink.HANDLE_MIN_EGRESS, Handle: 1, Protocol: unix.ETH_P_ALL, Priority: 1},
		Fd:           prog.FD(),
		Name:         "vlan_push",
		DirectAction: true,
	}
	if err := nl.FilterAdd(filter); err != nil {
		t.Fatalf("attach tc egress program on %s in %s: %v", topo.HostIf, h.Name(), err)
	}
	// Flush neighbours so ARP runs tagged too.
	run(t, h.Namespace, "ip", "neigh", "flush", "dev", topo.HostIf)
}

// vxlanPair makes a VXLAN device vx<n> (VNI n, UDP 4789; csum "udpcsum"
// or "noudpcsum") on h1 and h2 over their eth0, with addresses 10.78.n.1
// and .2, and returns the two hosts as seen through the tunnel. The
// devices are removed when t ends.
func vxlanPair(t *testing.T, h1, h2 *topo.Host, n int, csum string) (*topo.Host, *topo.Host) {
	t.Helper()
	dev := "vx" + strconv.Itoa(n)
	var inner []*topo.Host
	for _, x := range []struct{ self, peer *topo.Host }{{h1, h2}, {h2, h1}} {
		h := x.self
		run(t, h.Namespace, "ip", "link", "add", dev, "type", "vxlan", "id", strconv.Itoa(n), "dstport", "4789",
			"local", h.IP.String(), "remote", x.peer.IP.String(), "dev", topo.HostIf, csum)
		t.Cleanup(func() { run(t, h.Namespace, "ip", "link", "del", dev) })
		ip := netip.AddrFrom4([4]byte{10, 78, byte(n), byte(h.Index)})
		run(t, h.Namespace, "ip", "addr", "add", ip.String()+"/24", "dev", dev)
		run(t, h.Namespace, "ip", "link", "set", dev, "up")
		v := *h
		v.IP = ip
		inner = append(inner, &v)
	}
	return inner[0], inner[1]
}

// ipv6ExtHeaders sends UDP datagrams and a TCP stream from h1 to h2 over
// IPv6 with a hop-by-hop and a destination options header (PadN) set on
// the sending sockets, and fails unless all of it arrives intact.
func ipv6ExtHeaders(t *testing.T, h1, h2 *topo.Host) {
	t.Helper()
	padN := string([]byte{0, 0, 1, 4, 0, 0, 0, 0}) // next header and length filled by the kernel
	opts := func(c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			if serr = unix.SetsockoptString(int(fd), unix.IPPROTO_IPV6, unix.IPV6_HOPOPTS, padN); serr == nil {
				serr = unix.SetsockoptString(int(fd), unix.IPPROTO_IPV6, unix.IPV6_DSTOPTS, padN)
			}
		})
		return errors.Join(err, serr)
	}
	dst := netip.MustParseAddr("fd00:77::" + strconv.Itoa(h2.Index))

	// UDP.
	var rx, tx *net.UDPConn
	mustDo(t, h2, func() (err error) {
		rx, err = net.ListenUDP("udp6", net.UDPAddrFromAddrPort(netip.AddrPortFrom(dst, 0)))
		return err
	})
	defer rx.Close()
	mustDo(t, h1, func() (err error) {
		if tx, err = net.DialUDP("udp6", nil, rx.LocalAddr().(*net.UDPAddr)); err != nil {
			return err
		}
		rc, err := tx.SyscallConn()
		if err != nil {
			return err
		}
		return opts(rc)
	})
	defer tx.Close()
	got := exchangeUDP(t, tx, rx, 100)
	if got != 100 {
		t.Errorf("UDP over IPv6 with extension headers: %d of 100 datagrams arrived intact", got)
	}

	// TCP.
	var ln *net.TCPListener
	mustDo(t, h2, func() (err error) {
		ln, err = net.ListenTCP("tcp6", net.TCPAddrFromAddrPort(netip.AddrPortFrom(dst, 0)))
		return err
	})
	defer ln.Close()
	sum := make(chan []byte, 1)
	go func() {
		_ = ln.SetDeadline(time.Now().Add(40 * time.Second))
		c, err := ln.Accept()
		if err != nil {
			sum <- nil
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(40 * time.Second))
		h := sha256.New()
		_, _ = io.Copy(h, c)
		sum <- h.Sum(nil)
	}()
	data := bytes.Repeat([]byte("xdpfwd ipv6 extension headers "), 1<<15)
	mustDo(t, h1, func() error {
		d := net.Dialer{Timeout: 10 * time.Second, Control: func(_, _ string, c syscall.RawConn) error { return opts(c) }}
		c, err := d.Dial("tcp6", ln.Addr().String())
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(40 * time.Second))
		_, err = c.Write(data)
		return err
	})
	want := sha256.Sum256(data)
	if got := <-sum; !bytes.Equal(got, want[:]) {
		t.Errorf("TCP over IPv6 with extension headers: the server got data with SHA-256 %x, want %x", got, want)
	}
}

// exchangeUDP writes n numbered datagrams on tx and returns how many
// arrive intact on rx.
func exchangeUDP(t *testing.T, tx, rx *net.UDPConn, n int) int {
	t.Helper()
	got := 0
	buf := make([]byte, 2048)
	for i := range n {
		p := bytes.Repeat([]byte{byte(i)}, 700+i)
		binary.BigEndian.PutUint32(p, uint32(i))
		if _, err := tx.Write(p); err != nil {
			t.Fatalf("send datagram %d: %v", i, err)
		}
		_ = rx.SetReadDeadline(time.Now().Add(time.Second))
		m, err := rx.Read(buf)
		if err != nil {
			continue
		}
		if bytes.Equal(buf[:m], p) {
			got++
		}
	}
	return got
}

// udpNoChecksum sends UDP/IPv4 datagrams without a checksum (SO_NO_CHECK:
// the field is 0, which IPv4 allows) from h1 to h2 and fails unless they
// all arrive and still carry 0, not 0xffff, on h2's wire.
func udpNoChecksum(t *testing.T, h1, h2 *topo.Host) {
	t.Helper()
	capt := capture(t, h2)
	var rx, tx *net.UDPConn
	mustDo(t, h2, func() (err error) {
		rx, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(h2.IP, 0)))
		return err
	})
	defer rx.Close()
	mustDo(t, h1, func() (err error) {
		if tx, err = net.DialUDP("udp4", nil, rx.LocalAddr().(*net.UDPAddr)); err != nil {
			return err
		}
		rc, err := tx.SyscallConn()
		if err != nil {
			return err
		}
		var serr error
		err = rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_NO_CHECK, 1) })
		return errors.Join(err, serr)
	})
	defer tx.Close()
	if got := exchangeUDP(t, tx, rx, 50); got != 50 {
		t.Errorf("%d of 50 datagrams without checksum arrived intact", got)
	}
	port := uint16(rx.LocalAddr().(*net.UDPAddr).Port)
	frames := capt.collect(t, 50, func(f []byte) bool {
		p := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
		u, ok := p.Layer(layers.LayerTypeUDP).(*layers.UDP)
		return ok && uint16(u.DstPort) == port
	})
	for _, f := range frames {
		u := gopacket.NewPacket(f.data, layers.LayerTypeEthernet, gopacket.Default).Layer(layers.LayerTypeUDP).(*layers.UDP)
		if u.Checksum != 0 {
			t.Fatalf("a datagram sent without checksum arrived with checksum %#x, want 0", u.Checksum)
		}
	}
	if len(frames) != 50 {
		t.Errorf("captured %d of the 50 datagrams on %s", len(frames), h2.Name())
	}
}

// injectAndCheck builds 20 frames of kind, leaves one checksum of each
// unfinished as Linux would, injects them from h1 as CHECKSUM_PARTIAL and
// checks every one on h2 (see TestChecksumMatrix). For GENEVE, whose outer
// UDP checksum h2's kernel verifies, it also counts the datagrams a UDP
// socket on port 6081 receives.
func injectAndCheck(t *testing.T, h1, h2 *topo.Host, kind string) {
	t.Helper()
	capt := capture(t, h2)
	var geneve *net.UDPConn
	if kind == "geneve" {
		mustDo(t, h2, func() (err error) {
			geneve, err = net.ListenUDP("udp4", &net.UDPAddr{IP: h2.IP.AsSlice(), Port: 6081})
			return err
		})
		defer geneve.Close()
	}
	const n = 20
	marker := []byte("xdpfwd-checksum-" + kind + "-")
	inj := injector(t, h1)
	for i := range n {
		f, start, off := partialFrame(t, h1, h2, kind, append(bytes.Clone(marker), byte('a'+i)))
		inj.send(t, f, start, off)
	}
	frames := capt.collect(t, n, func(f []byte) bool { return bytes.Contains(f, marker) })
	if len(frames) != n {
		t.Errorf("%d of %d injected %s frames arrived on %s", len(frames), n, kind, h2.Name())
	}
	if geneve != nil {
		// Read before the frames are checked: the kernel verifies a UDP
		// checksum when the datagram is read, and counts a failure then.
		got := 0
		buf := make([]byte, 2048)
		for range n {
			_ = geneve.SetReadDeadline(time.Now().Add(time.Second))
			m, err := geneve.Read(buf)
			if err != nil {
				break
			}
			if bytes.Contains(buf[:m], marker) {
				got++
			}
		}
		if got != n {
			t.Errorf("a UDP socket on %s:6081 received %d of %d GENEVE datagrams", h2.IP, got, n)
		}
	}
	want := map[string]int{"geneve": 2, "gretap": 1, "gre-csum": 2, "sctp": 1, "sctp-vlan": 1}[kind]
	for _, f := range frames {
		if f.status&unix.TP_STATUS_CSUMNOTREADY != 0 {
			continue // CHECKSUM_PARTIAL: a local stack trusts it
		}
		checked, err := verifyChecksums(f.data)
		if err != nil {
			t.Errorf("%s frame arrived with a checksum its receiver drops: %v\n%x", kind, err, f.data)
			break
		}
		if checked != want {
			t.Errorf("%s frame: verified %d checksums, want %d (decoded %v)", kind, checked, want, gopacket.NewPacket(f.data, layers.LayerTypeEthernet, gopacket.Default))
			break
		}
	}
}

// partialFrame builds one frame of kind from h1 to h2 carrying payload,
// with the checksum Linux leaves for the device unfinished, and returns
// it with csum_start and csum_offset as the sender's skb would have them.
func partialFrame(t *testing.T, h1, h2 *topo.Host, kind string, payload []byte) (f []byte, start, off int) {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: h1.HWAddr, DstMAC: h2.HWAddr, EthernetType: layers.EthernetTypeIPv4}
	outer := func(proto layers.IPProtocol) *layers.IPv4 {
		return &layers.IPv4{Version: 4, TTL: 64, Id: 1, Protocol: proto, SrcIP: h1.IP.AsSlice(), DstIP: h2.IP.AsSlice()}
	}
	innerEth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0xee, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0xee, 2}, EthernetType: layers.EthernetTypeIPv4}
	innerIP := func(proto layers.IPProtocol) *layers.IPv4 {
		return &layers.IPv4{Version: 4, TTL: 64, Id: 2, Protocol: proto, SrcIP: net.IP{172, 30, 0, 1}, DstIP: net.IP{172, 30, 0, 2}}
	}
	pl := gopacket.Payload(append(payload, bytes.Repeat([]byte{0x5c}, 200)...))
	tcpSeg := func(ip *layers.IPv4) *layers.TCP {
		tc := &layers.TCP{SrcPort: 40000, DstPort: 8080, Seq: 100, Ack: 1, ACK: true, PSH: true, Window: 1000, DataOffset: 5}
		tc.SetNetworkLayerForChecksum(ip)
		return tc
	}
	var ls []gopacket.SerializableLayer
	var inner string // which checksum is left unfinished: "tcp", "udp", "sctp"
	switch kind {
	case "geneve":
		o := outer(layers.IPProtocolUDP)
		u := &layers.UDP{SrcPort: 50000, DstPort: 6081}
		u.SetNetworkLayerForChecksum(o)
		ip := innerIP(layers.IPProtocolTCP)
		ls = []gopacket.SerializableLayer{eth, o, u, &layers.Geneve{Protocol: layers.EthernetTypeTransparentEthernetBridging, VNI: 7}, innerEth, ip, tcpSeg(ip), pl}
		inner = "tcp"
	case "gretap":
		ip := innerIP(layers.IPProtocolTCP)
		ls = []gopacket.SerializableLayer{eth, outer(layers.IPProtocolGRE),
			&layers.GRE{KeyPresent: true, Key: 9, SeqPresent: true, Seq: 3, Protocol: layers.EthernetTypeTransparentEthernetBridging},
			innerEth, ip, tcpSeg(ip), pl}
		inner = "tcp"
	case "gre-csum":
		ip := innerIP(layers.IPProtocolUDP)
		u := &layers.UDP{SrcPort: 40001, DstPort: 9999}
		u.SetNetworkLayerForChecksum(ip)
		ls = []gopacket.SerializableLayer{eth, outer(layers.IPProtocolGRE), &layers.GRE{ChecksumPresent: true, Protocol: layers.EthernetTypeIPv4}, ip, u, pl}
		inner = "udp"
	case "sctp", "sctp-vlan":
		data := &layers.SCTPData{SCTPChunk: layers.SCTPChunk{Type: layers.SCTPChunkTypeData, Length: uint16(16 + len(pl))},
			BeginFragment: true, EndFragment: true, TSN: 1, Payload: pl}
		ls = []gopacket.SerializableLayer{eth, outer(layers.IPProtocolSCTP), &layers.SCTP{SrcPort: 5000, DstPort: 6000, VerificationTag: 0x01020304}, data}
		if kind == "sctp-vlan" {
			eth.EthernetType = layers.EthernetTypeDot1Q
			ls = append([]gopacket.SerializableLayer{eth, &layers.Dot1Q{Type: layers.EthernetTypeIPv4}}, ls[1:]...)
		}
		inner = "sctp"
	default:
		t.Fatalf("unknown frame kind %q", kind)
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true, FixLengths: true}, ls...); err != nil {
		t.Fatalf("build %s frame: %v", kind, err)
	}
	f = bytes.Clone(buf.Bytes())
	// The last TCP/UDP header: at a fixed distance from the end.
	plLen := len(pl)
	switch inner {
	case "tcp":
		start, off = len(f)-plLen-20, 16
	case "udp":
		start, off = len(f)-plLen-8, 6
	case "sctp":
		// After the Ethernet header, a tag, and the outer IPv4 header; the
		// DATA chunk is padded to 4 bytes, so not from the end.
		start, off = len(f)-len(buf.Bytes())+14+20, 8
		if kind == "sctp-vlan" {
			start += 4
		}
	}
	switch inner {
	case "sctp":
		// sctp_packet_pack leaves the CRC32c field as sctp_packet_transmit
		// set it: 0.
		copy(f[start+off:], []byte{0, 0, 0, 0})
	default:
		// The pseudo-header sum of the inner segment (~csum_tcpudp_magic);
		// the outer UDP or GRE checksum that gopacket computed over the
		// finished inner segment is what Linux's local checksum offload
		// (lco_csum) writes.
		ip := f[start-20 : start]
		proto := uint8(layers.IPProtocolTCP)
		if inner == "udp" {
			proto = uint8(layers.IPProtocolUDP)
		}
		binary.BigEndian.PutUint16(f[start+off:], pseudoSum(ip[12:16], ip[16:20], proto, len(f)-start))
	}
	return f, start, off
}

// pseudoSum is the folded, non-complemented IPv4 pseudo-header sum.
func pseudoSum(src, dst []byte, proto uint8, n int) uint16 {
	ph := append(append(append([]byte{}, src...), dst...), 0, proto, byte(n>>8), byte(n))
	return onesSum(ph, 0)
}

// onesSum is the RFC 1071 sum of b added to s, folded, not complemented.
func onesSum(b []byte, s uint16) uint16 {
	sum := uint32(s)
	for i := 0; i < len(b); i += 2 {
		w := uint32(b[i]) << 8
		if i+1 < len(b) {
			w |= uint32(b[i+1])
		}
		sum += w
		sum = sum&0xffff + sum>>16
	}
	return uint16(sum)
}

// verifyChecksums checks every checksum of frame f as a receiver would:
// TCP and UDP over IPv4 or IPv6 (a UDP/IPv4 checksum of 0 means none), GRE
// with its C flag, SCTP's CRC32c; inner ones of VXLAN, GENEVE and GRE
// too. It returns how many it verified, or the first that does not.
func verifyChecksums(f []byte) (int, error) {
	p := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
	if el := p.ErrorLayer(); el != nil {
		return 0, fmt.Errorf("decode: %v", el.Error())
	}
	var src, dst []byte
	n := 0
	for _, l := range p.Layers() {
		seg := append(bytes.Clone(l.LayerContents()), l.LayerPayload()...)
		var proto uint8
		switch l := l.(type) {
		case *layers.IPv4:
			src, dst = l.SrcIP.To4(), l.DstIP.To4()
			continue
		case *layers.IPv6:
			src, dst = l.SrcIP.To16(), l.DstIP.To16()
			continue
		case *layers.UDP:
			if l.Checksum == 0 && len(src) == 4 {
				continue
			}
			proto = uint8(layers.IPProtocolUDP)
		case *layers.TCP:
			proto = uint8(layers.IPProtocolTCP)
		case *layers.GRE:
			if !l.ChecksumPresent {
				continue
			}
			if s := onesSum(seg, 0); s != 0xffff {
				return n, fmt.Errorf("GRE checksum %#x does not verify (sum %#x)", l.Checksum, s)
			}
			n++
			continue
		case *layers.SCTP:
			field := binary.LittleEndian.Uint32(seg[8:])
			copy(seg[8:12], []byte{0, 0, 0, 0})
			if want := crc32.Checksum(seg, crc32.MakeTable(crc32.Castagnoli)); field != want {
				return n, fmt.Errorf("SCTP CRC32c %#08x, want %#08x", field, want)
			}
			n++
			continue
		default:
			continue
		}
		var ph []byte
		if len(src) == 4 {
			ph = append(append(append(ph, src...), dst...), 0, proto, byte(len(seg)>>8), byte(len(seg)))
		} else {
			ph = append(append(ph, src...), dst...)
			ph = binary.BigEndian.AppendUint32(ph, uint32(len(seg)))
			ph = append(ph, 0, 0, 0, proto)
		}
		if s := onesSum(seg, onesSum(ph, 0)); s != 0xffff {
			return n, fmt.Errorf("%v checksum does not verify (sum %#x)", l.LayerType(), s)
		}
		n++
	}
	return n, nil
}

// pktInjector sends frames out of a host's eth0 as CHECKSUM_PARTIAL.
type pktInjector struct {
	fd      int
	ifindex int
}

// injector opens an AF_PACKET socket on h's eth0 with a virtio-net header
// (PACKET_VNET_HDR), closed when t ends.
func injector(t *testing.T, h *topo.Host) *pktInjector {
	t.Helper()
	inj := &pktInjector{fd: -1}
	mustDo(t, h, func() error {
		ifi, err := net.InterfaceByName(topo.HostIf)
		if err != nil {
			return err
		}
		inj.ifindex = ifi.Index
		if inj.fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0); err != nil {
			return fmt.Errorf("AF_PACKET socket: %w", err)
		}
		return unix.SetsockoptInt(inj.fd, unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1)
	})
	t.Cleanup(func() { unix.Close(inj.fd) })
	return inj
}

// send transmits f with its checksum at start+off left for the device
// (VIRTIO_NET_HDR_F_NEEDS_CSUM): the kernel makes it CHECKSUM_PARTIAL.
func (inj *pktInjector) send(t *testing.T, f []byte, start, off int) {
	t.Helper()
	hdr := make([]byte, 10) // struct virtio_net_hdr, host byte order
	hdr[0] = 1              // VIRTIO_NET_HDR_F_NEEDS_CSUM
	binary.LittleEndian.PutUint16(hdr[6:], uint16(start))
	binary.LittleEndian.PutUint16(hdr[8:], uint16(off))
	proto := binary.BigEndian.Uint16(f[12:])
	sa := &unix.SockaddrLinklayer{Ifindex: inj.ifindex, Protocol: proto>>8 | proto<<8}
	if err := unix.Sendto(inj.fd, append(hdr, f...), 0, sa); err != nil {
		t.Fatalf("inject a %d-byte frame: %v", len(f), err)
	}
}

// pktCapture reads what arrives on a host's eth0, with the kernel's
// checksum status of each frame.
type pktCapture struct{ fd int }

type capturedFrame struct {
	data   []byte
	status uint32 // tpacket_auxdata.tp_status
}

// capture opens an AF_PACKET socket on h's eth0 with PACKET_AUXDATA,
// closed when t ends. Open it before sending.
func capture(t *testing.T, h *topo.Host) *pktCapture {
	t.Helper()
	c := &pktCapture{fd: -1}
	mustDo(t, h, func() error {
		ifi, err := net.InterfaceByName(topo.HostIf)
		if err != nil {
			return err
		}
		const ethPAll = unix.ETH_P_ALL>>8 | unix.ETH_P_ALL<<8&0xff00
		if c.fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, ethPAll); err != nil {
			return fmt.Errorf("AF_PACKET socket: %w", err)
		}
		if err := unix.Bind(c.fd, &unix.SockaddrLinklayer{Protocol: ethPAll, Ifindex: ifi.Index}); err != nil {
			return fmt.Errorf("bind AF_PACKET socket to %s: %w", topo.HostIf, err)
		}
		if err := unix.SetsockoptInt(c.fd, unix.SOL_PACKET, unix.PACKET_AUXDATA, 1); err != nil {
			return err
		}
		_ = unix.SetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20)
		return unix.SetsockoptTimeval(c.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 200_000})
	})
	t.Cleanup(func() { unix.Close(c.fd) })
	return c
}

// collect returns the received frames (not h's own) that match, until it
// has want of them or nothing matching came for 2 s.
func (c *pktCapture) collect(t *testing.T, want int, match func([]byte) bool) []capturedFrame {
	t.Helper()
	var got []capturedFrame
	buf, oob := make([]byte, 65536), make([]byte, 256)
	last := time.Now()
	for len(got) < want && time.Since(last) < 2*time.Second {
		n, oobn, _, from, err := unix.Recvmsg(c.fd, buf, oob, 0)
		if err != nil {
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				continue
			}
			t.Fatalf("capture: %v", err)
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		if !match(buf[:n]) {
			continue
		}
		f := capturedFrame{data: bytes.Clone(buf[:n])}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil {
			t.Fatalf("capture: control messages: %v", err)
		}
		for _, m := range msgs {
			if m.Header.Level == unix.SOL_PACKET && m.Header.Type == unix.PACKET_AUXDATA && len(m.Data) >= 4 {
				f.status = binary.NativeEndian.Uint32(m.Data)
			}
		}
		got = append(got, f)
		last = time.Now()
	}
	return got
}

// mustDo runs fn in h's namespace and fails t on error.
func mustDo(t *testing.T, h *topo.Host, fn func() error) {
	t.Helper()
	if err := h.Do(fn); err != nil {
		t.Fatalf("in %s: %v", h.Name(), err)
	}
}

// csumCounters reads every checksum error counter of ns: the
// InCsumErrors of /proc/net/snmp (Ip, Icmp, Tcp, Udp, UdpLite; Tcp counts
// IPv6 too), the *InCsumErrors of /proc/net/snmp6 (Icmp6, Udp6,
// UdpLite6), and SCTP's checksum errors if the kernel has SCTP (this one
// has not).
func csumCounters(t *testing.T, ns *topo.Namespace) map[string]uint64 {
	t.Helper()
	c := map[string]uint64{}
	snmp := run(t, ns, "cat", "/proc/net/snmp")
	sc := bufio.NewScanner(strings.NewReader(snmp))
	for sc.Scan() {
		names := strings.Fields(sc.Text())
		if !sc.Scan() {
			break
		}
		values := strings.Fields(sc.Text())
		for i, n := range names {
			if n == "InCsumErrors" && i < len(values) {
				v, err := strconv.ParseUint(values[i], 10, 64)
				if err != nil {
					t.Fatalf("/proc/net/snmp of %s: %s %q: %v", ns.Name(), names[0], values[i], err)
				}
				c[strings.TrimSuffix(names[0], ":")+"InCsumErrors"] = v
			}
		}
	}
	files := []string{"/proc/net/snmp6"}
	if _, err := os.Stat("/proc/net/sctp/snmp"); err == nil {
		files = append(files, "/proc/net/sctp/snmp")
	}
	for _, file := range files {
		out := run(t, ns, "cat", file)
		for _, line := range strings.Split(out, "\n") {
			f := strings.Fields(line)
			if len(f) == 2 && (strings.HasSuffix(f[0], "InCsumErrors") || f[0] == "SctpChecksumErrors") {
				v, err := strconv.ParseUint(f[1], 10, 64)
				if err != nil {
					t.Fatalf("%s of %s: %q: %v", file, ns.Name(), line, err)
				}
				c[f[0]] = v
			}
		}
	}
	for _, want := range []string{"TcpInCsumErrors", "UdpInCsumErrors", "Udp6InCsumErrors"} {
		if _, ok := c[want]; !ok {
			t.Fatalf("no %s counter in %s: %v", want, ns.Name(), c)
		}
	}
	return c
}

// countersRose describes every counter that rose from before to after.
func countersRose(before, after map[string]uint64, where string) []string {
	var r []string
	for k, v := range after {
		if v != before[k] {
			r = append(r, fmt.Sprintf("%s in %s rose from %d to %d", k, where, before[k], v))
		}
	}
	sort.Strings(r)
	return r
}
