package tests

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/xdpfwd/xdpfwd/internal/topo"
)

// TestVLANBridgeMatchesKernel sends the same frames through a Linux bridge
// with vlan_filtering 1 and through an xdpfwd VLAN-aware bridge set up the
// same way (a and b access ports on VLAN 10, c on VLAN 20, t a trunk with
// both tagged, a static entry on VLAN 20), and checks that every host
// receives the same frames, byte for byte, on both paths — and what it
// must, frame by frame (the table follows net/bridge/br_vlan.c): a frame
// on VLAN 10 never reaches c, the trunk sees tags, access hosts do not.
//
// A kernel built without CONFIG_BRIDGE_VLAN_FILTERING (which needs
// CONFIG_VLAN_8021Q, absent on this project's machines) refuses
// vlan_filtering with EOPNOTSUPP: the test then says so and checks xdpfwd
// against the table alone. TestVLANUnawareBridgeMatchesKernel compares
// with the kernel on any kernel.
//
// Frames are written and read with AF_PACKET sockets in the hosts (there
// are no 802.1Q VLAN devices either): a receiver gets the outer tag out of
// band (the kernel takes it off on receive) and puts it back from the
// socket's PACKET_AUXDATA, as tcpdump does, on both paths alike.
func TestVLANBridgeMatchesKernel(t *testing.T) {
	requireRoot(t)
	s := star(t, topo.VethOptions{}, topo.VethOptions{}, topo.VethOptions{}, topo.VethOptions{})
	hosts := map[string]*topo.Host{"a": s.Hosts[0], "b": s.Hosts[1], "c": s.Hosts[2], "t": s.Hosts[3]}
	socks := map[string]*pktSock{}
	for name, h := range hosts {
		// No IPv6: the hosts' own router solicitations would be frames
		// the trunk (no pvid) filters too, and the test counts those.
		run(t, h.Namespace, "sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1")
		socks[name] = openPktSock(t, h.Namespace, topo.HostIf)
	}
	steps := vlanSteps()
	sw := s.Switch
	p := func(name string) string { return hosts[name].Port }

	// The kernel's bridge, then xdpfwd, on the same ports.
	var kernel []map[string][][]byte
	if out, err := sw.Command(t.Context(), "ip", "link", "add", "xbr0", "type", "bridge", "vlan_filtering", "1", "vlan_default_pvid", "0", "stp_state", "0", "mcast_snooping", "0").CombinedOutput(); err != nil {
		if !strings.Contains(string(out), "Operation not supported") {
			t.Fatalf("create a VLAN-filtering kernel bridge: %v: %s", err, out)
		}
		t.Logf("this kernel has no bridge VLAN filtering (%s): xdpfwd is checked against the expected frames only", strings.TrimSpace(string(out)))
	} else {
		for _, n := range []string{"a", "b", "c", "t"} {
			run(t, sw, "ip", "link", "set", p(n), "master", "xbr0")
		}
		run(t, sw, "bridge", "vlan", "add", "dev", p("a"), "vid", "10", "pvid", "untagged")
		run(t, sw, "bridge", "vlan", "add", "dev", p("b"), "vid", "10", "pvid", "untagged")
		run(t, sw, "bridge", "vlan", "add", "dev", p("c"), "vid", "20", "pvid", "untagged")
		run(t, sw, "bridge", "vlan", "add", "dev", p("t"), "vid", "10")
		run(t, sw, "bridge", "vlan", "add", "dev", p("t"), "vid", "20")
		run(t, sw, "bridge", "fdb", "add", vmac(0x55).String(), "dev", p("c"), "master", "static", "vlan", "20")
		run(t, sw, "ip", "link", "set", "xbr0", "up")
		kernel = runVLANSteps(t, socks, steps)
		run(t, sw, "ip", "link", "del", "xbr0")
	}

	cfg := fmt.Sprintf(`ports:
  - interface: %[1]s
  - interface: %[2]s
  - interface: %[3]s
  - interface: %[4]s
bridges:
  - name: br0
    ports: [%[1]s, %[2]s, %[3]s, %[4]s]
    vlans:
      %[1]s: {pvid: 10}
      %[2]s: {pvid: 10}
      %[3]s: {pvid: 20}
      %[4]s: {tagged: [10, 20]}
    static:
      - mac: %[5]s
        port: %[3]s
        vlan: 20
`, p("a"), p("b"), p("c"), p("t"), vmac(0x55))
	d := runDaemon(t, sw, cfg)
	fast := runVLANSteps(t, socks, steps)
	st := d.stats()

	for i, step := range steps {
		for _, h := range []string{"a", "b", "c", "t"} {
			x := fast[i][h]
			if kernel != nil && !slices.EqualFunc(kernel[i][h], x, bytes.Equal) {
				t.Errorf("step %d (%s): host %s received\n  kernel bridge: %x\n  xdpfwd:        %x", i, step.name, h, kernel[i][h], x)
			}
			if want := step.want[h]; !slices.EqualFunc(x, want, bytes.Equal) {
				t.Errorf("step %d (%s): host %s received %x through xdpfwd, want %x", i, step.name, h, x, want)
			}
		}
		// VLAN 10 never reaches c.
		if step.vlan == 10 && (len(fast[i]["c"]) > 0 || kernel != nil && len(kernel[i]["c"]) > 0) {
			t.Errorf("step %d (%s): c received a frame on VLAN 10", i, step.name)
		}
	}
	var filtered uint64
	for _, pt := range st.Ports {
		filtered += pt.Drops["VLAN filtered"]
	}
	if want := uint64(countDrops(steps)); filtered != want {
		t.Errorf("xdpfwd counted %d frames as \"VLAN filtered\", want %d", filtered, want)
	}
}

// TestVLANUnawareBridgeMatchesKernel: without vlans, xdpfwd carries 802.1Q
// and 802.1ad tags through untouched and learns regardless of VLAN, as a
// kernel bridge without vlan_filtering does; the same frames through both
// arrive the same, byte for byte.
func TestVLANUnawareBridgeMatchesKernel(t *testing.T) {
	requireRoot(t)
	s := star(t, topo.VethOptions{}, topo.VethOptions{}, topo.VethOptions{})
	names := []string{"a", "b", "c"}
	socks := map[string]*pktSock{}
	for i, n := range names {
		socks[n] = openPktSock(t, s.Hosts[i].Namespace, topo.HostIf)
	}
	bc := net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	A, B := vmac(0x0a), vmac(0x0b)
	f := vframe
	all := func(from string, fr []byte) map[string][][]byte {
		m := map[string][][]byte{}
		for _, n := range names {
			if n != from {
				m[n] = [][]byte{fr}
			}
		}
		return m
	}
	steps := []vlanStep{
		{name: "802.1Q broadcast", from: "a", frame: vq(f(bc, A, 1), 10), want: all("a", vq(f(bc, A, 1), 10))},
		{name: "802.1ad broadcast", from: "b", frame: vtag(f(bc, B, 2), 0x88a8, 100), want: all("b", vtag(f(bc, B, 2), 0x88a8, 100))},
		{name: "QinQ broadcast", from: "a", frame: vtag(vq(f(bc, A, 3), 20), 0x88a8, 100), want: all("a", vtag(vq(f(bc, A, 3), 20), 0x88a8, 100))},
		{name: "priority-tagged broadcast", from: "b", frame: vq(f(bc, B, 4), 6<<13), want: all("b", vq(f(bc, B, 4), 6<<13))},
		{name: "unicast to A on another VLAN: the FDB ignores VLANs", from: "b", frame: vq(f(A, B, 5), 30), want: map[string][][]byte{"a": {vq(f(A, B, 5), 30)}}},
		{name: "untagged unicast to B", from: "a", frame: f(B, A, 6), want: map[string][][]byte{"b": {f(B, A, 6)}}},
	}
	sw := s.Switch
	run(t, sw, "ip", "link", "add", "xbr0", "type", "bridge", "stp_state", "0", "mcast_snooping", "0")
	for _, h := range s.Hosts {
		run(t, sw, "ip", "link", "set", h.Port, "master", "xbr0")
	}
	run(t, sw, "ip", "link", "set", "xbr0", "up")
	kernel := runVLANSteps(t, socks, steps)
	run(t, sw, "ip", "link", "del", "xbr0")

	runDaemon(t, sw, bridgeConfig(ports(s)...))
	fast := runVLANSteps(t, socks, steps)
	for i, step := range steps {
		for _, h := range names {
			k, x := kernel[i][h], fast[i][h]
			if !slices.EqualFunc(k, x, bytes.Equal) {
				t.Errorf("step %d (%s): host %s received\n  kernel bridge: %x\n  xdpfwd:        %x", i, step.name, h, k, x)
			}
			if !slices.EqualFunc(x, step.want[h], bytes.Equal) {
				t.Errorf("step %d (%s): host %s received %x through xdpfwd, want %x", i, step.name, h, x, step.want[h])
			}
		}
	}
}

// vlanStep is one frame sent by a host, and what every host must receive.
type vlanStep struct {
	name  string
	from  string
	frame []byte
	want  map[string][][]byte
	vlan  int  // the VLAN the frame is on (0: dropped or unknown)
	drop  bool // filtered by VLAN
}

func vmac(b byte) net.HardwareAddr { return net.HardwareAddr{0x02, 0x5e, 0, 0, 0, b} }

// vframe is an untagged frame with EtherType 0x88b5, padded to 60 bytes,
// whose payload is id.
func vframe(dst, src net.HardwareAddr, id byte) []byte {
	f := make([]byte, 60)
	copy(f, dst)
	copy(f[6:], src)
	binary.BigEndian.PutUint16(f[12:], 0x88b5)
	for i := 14; i < len(f); i++ {
		f[i] = id
	}
	return f
}

// big is vframe at the largest size an MTU of 1500 allows untagged.
func big(dst, src net.HardwareAddr, id byte) []byte {
	f := vframe(dst, src, id)
	return append(f, bytes.Repeat([]byte{id}, 1514-len(f))...)
}

func vtag(f []byte, tpid, tci uint16) []byte {
	out := append([]byte(nil), f[:12]...)
	out = binary.BigEndian.AppendUint16(out, tpid)
	out = binary.BigEndian.AppendUint16(out, tci)
	return append(out, f[12:]...)
}

func vq(f []byte, tci uint16) []byte { return vtag(f, 0x8100, tci) }

func vlanSteps() []vlanStep {
	bc := net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	A, B, C, T, S, X := vmac(0x0a), vmac(0x0b), vmac(0x0c), vmac(0x7e), vmac(0x55), vmac(0x88)
	f := vframe
	w := func(kv ...any) map[string][][]byte {
		m := map[string][][]byte{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = [][]byte{kv[i+1].([]byte)}
		}
		return m
	}
	return []vlanStep{
		{"access broadcast floods VLAN 10, tagged on the trunk", "a", f(bc, A, 1), w("b", f(bc, A, 1), "t", vq(f(bc, A, 1), 10)), 10, false},
		{"VLAN 20 broadcast", "c", f(bc, C, 2), w("t", vq(f(bc, C, 2), 20)), 20, false},
		{"trunk broadcast on VLAN 10", "t", vq(f(bc, T, 3), 10), w("a", f(bc, T, 3), "b", f(bc, T, 3)), 10, false},
		{"trunk unicast on VLAN 20 to c", "t", vq(f(C, T, 4), 20), w("c", f(C, T, 4)), 20, false},
		{"access unicast within VLAN 10", "b", f(A, B, 5), w("a", f(A, B, 5)), 10, false},
		{"access unicast to the trunk", "b", f(T, B, 6), w("t", vq(f(T, B, 6), 10)), 10, false},
		{"c's MAC is unknown on VLAN 10: flood, never c", "a", f(C, A, 7), w("b", f(C, A, 7), "t", vq(f(C, A, 7), 10)), 10, false},
		{"trunk frame on VLAN 30", "t", vq(f(bc, T, 8), 30), w(), 0, true},
		{"untagged on the trunk (no pvid)", "t", f(bc, T, 9), w(), 0, true},
		{"access port, tagged with its pvid", "a", vq(f(bc, A, 10), 10), w("b", f(bc, A, 10), "t", vq(f(bc, A, 10), 10)), 10, false},
		{"access port, tagged VLAN 20", "a", vq(f(bc, A, 11), 20), w(), 0, true},
		{"priority tag", "a", vq(f(bc, A, 12), 5<<13), w("b", f(bc, A, 12), "t", vq(f(bc, A, 12), 5<<13|10)), 10, false},
		{"802.1ad frame on an access port", "a", vtag(f(bc, A, 13), 0x88a8, 100),
			w("b", vtag(f(bc, A, 13), 0x88a8, 100), "t", vq(vtag(f(bc, A, 13), 0x88a8, 100), 10)), 10, false},
		{"802.1ad frame on the trunk (no pvid)", "t", vtag(f(bc, T, 14), 0x88a8, 10), w(), 0, true},
		{"tagged unicast with PCP to an access host", "t", vq(f(A, T, 15), 3<<13|10), w("a", f(A, T, 15)), 10, false},
		{"static entry on VLAN 20", "t", vq(f(S, T, 16), 20), w("c", f(S, T, 16)), 20, false},
		{"static entry is not on VLAN 10", "t", vq(f(S, T, 17), 10), w("a", f(S, T, 17), "b", f(S, T, 17)), 10, false},
		{"X on VLAN 10", "a", f(bc, X, 18), w("b", f(bc, X, 18), "t", vq(f(bc, X, 18), 10)), 10, false},
		{"X on VLAN 20", "c", f(bc, X, 19), w("t", vq(f(bc, X, 19), 20)), 20, false},
		{"X on VLAN 10 is a's", "t", vq(f(X, T, 20), 10), w("a", f(X, T, 20)), 10, false},
		{"X on VLAN 20 is c's", "t", vq(f(X, T, 21), 20), w("c", f(X, T, 21)), 20, false},
		{"full-size frame to the trunk grows by the tag", "a", big(T, A, 22), w("t", vq(big(T, A, 22), 10)), 10, false},
		{"full-size tagged frame from the trunk shrinks", "t", vq(big(A, T, 23), 10), w("a", big(A, T, 23)), 10, false},
	}
}

func countDrops(steps []vlanStep) int {
	n := 0
	for _, s := range steps {
		if s.drop {
			n++
		}
	}
	return n
}

// runVLANSteps sends each step's frame and returns, per step, what each
// host received of the test's frames (source MAC 02:5e:...).
func runVLANSteps(t *testing.T, socks map[string]*pktSock, steps []vlanStep) []map[string][][]byte {
	t.Helper()
	// A settling pause: ports just enslaved or taken over.
	time.Sleep(300 * time.Millisecond)
	for _, s := range socks {
		s.take()
	}
	var out []map[string][][]byte
	for _, st := range steps {
		socks[st.from].send(t, st.frame)
		time.Sleep(150 * time.Millisecond)
		got := map[string][][]byte{}
		for name, s := range socks {
			if fs := s.take(); len(fs) > 0 {
				got[name] = fs
			}
		}
		out = append(out, got)
	}
	return out
}

// pktSock is an AF_PACKET socket on a host's interface that keeps the
// test's frames it receives (not those it sends), outer VLAN tag put back.
type pktSock struct {
	fd      int
	ifindex int
	stop    atomic.Bool
	done    chan struct{}
	mu      sync.Mutex
	got     [][]byte
}

func openPktSock(t *testing.T, ns *topo.Namespace, ifname string) *pktSock {
	t.Helper()
	s := &pktSock{done: make(chan struct{})}
	err := ns.Do(func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		s.ifindex = ifi.Index
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return fmt.Errorf("AF_PACKET socket: %w", err)
		}
		s.fd = fd
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_AUXDATA, 1); err != nil {
			return fmt.Errorf("PACKET_AUXDATA: %w", err)
		}
		tv := unix.NsecToTimeval(int64(20 * time.Millisecond))
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index})
	})
	if err != nil {
		if s.fd > 0 {
			unix.Close(s.fd)
		}
		t.Fatalf("packet socket on %s in %s: %v", ifname, ns.Name(), err)
	}
	go s.read()
	t.Cleanup(func() {
		s.stop.Store(true)
		<-s.done
		unix.Close(s.fd)
	})
	return s
}

func (s *pktSock) read() {
	defer close(s.done)
	buf := make([]byte, 9000)
	oob := make([]byte, 256)
	for !s.stop.Load() {
		n, oobn, _, from, err := unix.Recvmsg(s.fd, buf, oob, 0)
		if err != nil {
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				continue
			}
			return
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		f := append([]byte(nil), buf[:n]...)
		if tpid, tci, ok := auxVLAN(oob[:oobn]); ok && len(f) >= 12 {
			f = vtag(f, tpid, tci)
		}
		// Only the test's frames: source 02:5e:00:00:00:xx.
		if len(f) < 14 || !bytes.Equal(f[6:10], []byte{0x02, 0x5e, 0, 0}) {
			continue
		}
		s.mu.Lock()
		s.got = append(s.got, f)
		s.mu.Unlock()
	}
}

// auxVLAN returns the VLAN tag the kernel took off a received frame, from
// its PACKET_AUXDATA control message.
func auxVLAN(oob []byte) (tpid, tci uint16, ok bool) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return 0, 0, false
	}
	for _, m := range msgs {
		if m.Header.Level != unix.SOL_PACKET || m.Header.Type != unix.PACKET_AUXDATA || len(m.Data) < int(unsafe.Sizeof(unix.TpacketAuxdata{})) {
			continue
		}
		aux := (*unix.TpacketAuxdata)(unsafe.Pointer(&m.Data[0]))
		if aux.Status&unix.TP_STATUS_VLAN_VALID == 0 {
			return 0, 0, false
		}
		tpid = 0x8100
		if aux.Status&unix.TP_STATUS_VLAN_TPID_VALID != 0 {
			tpid = aux.Vlan_tpid
		}
		return tpid, aux.Vlan_tci, true
	}
	return 0, 0, false
}

func (s *pktSock) send(t *testing.T, f []byte) {
	t.Helper()
	if err := unix.Sendto(s.fd, f, 0, &unix.SockaddrLinklayer{Ifindex: s.ifindex, Halen: 6, Addr: [8]byte{f[0], f[1], f[2], f[3], f[4], f[5]}}); err != nil {
		t.Fatalf("send %x: %v", f, err)
	}
}

// take returns the frames received since the last call.
func (s *pktSock) take() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	got := s.got
	s.got = nil
	return got
}
