package xdp

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/xdpfwd/xdpfwd/internal/topo"
	"github.com/xdpfwd/xdpfwd/internal/topotest"
)

// testNS is a network namespace made for one test (internal/topo) and
// removed with it.
type testNS struct {
	t  *testing.T
	tp *topo.Topology
	ns *topo.Namespace
}

// newTestNS makes a fresh network namespace with IPv6 off (so no router
// solicitations or DAD frames show up on the links).
func newTestNS(t *testing.T) *testNS {
	t.Helper()
	tp := topotest.New(t, "xsk")
	ns, err := tp.AddNamespace("t")
	if err != nil {
		t.Fatal(err)
	}
	n := &testNS{t: t, tp: tp, ns: ns}
	n.do(func() error {
		for _, p := range []string{"all", "default"} {
			// /proc/sys/net is that of the opening thread's namespace.
			if err := os.WriteFile("/proc/sys/net/ipv6/conf/"+p+"/disable_ipv6", []byte("1"), 0); err != nil {
				return err
			}
		}
		return nil
	})
	return n
}

// do runs fn on a thread that is in the namespace, and fails the test
// (from the test's goroutine) if fn returns an error.
func (n *testNS) do(fn func() error) {
	n.t.Helper()
	if err := n.ns.Do(fn); err != nil {
		n.t.Fatal(err)
	}
}

// vethPair makes a veth pair with q queues each side, both up, and
// returns them. The names carry a random suffix.
func (n *testNS) vethPair(q int) (a, b *net.Interface) {
	n.t.Helper()
	suffix := rand.Uint32() % 100000
	an, bn := fmt.Sprintf("xa%d", suffix), fmt.Sprintf("xb%d", suffix)
	if err := n.tp.Veth(n.ns, an, n.ns, bn, topo.VethOptions{Queues: q}); err != nil {
		n.t.Fatal(err)
	}
	n.do(func() (err error) {
		if a, err = net.InterfaceByName(an); err != nil {
			return err
		}
		b, err = net.InterfaceByName(bn)
		return err
	})
	return a, b
}

// redirectToXSK attaches (native mode) an XDP program to ifi that
// redirects every frame to the XSKMAP slot of its RX queue, falling back
// to XDP_PASS, and returns the map.
func (n *testNS) redirectToXSK(ifi *net.Interface) *ebpf.Map {
	n.t.Helper()
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.XSKMap, KeySize: 4, ValueSize: 4, MaxEntries: 16})
	if err != nil {
		n.t.Fatalf("create XSKMAP: %v", err)
	}
	n.t.Cleanup(func() { m.Close() })
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:    ebpf.XDP,
		License: "GPL",
		Instructions: asm.Instructions{
			// r2 = ctx->rx_queue_index (struct xdp_md, offset 16)
			asm.LoadMem(asm.R2, asm.R1, 16, asm.Word),
			asm.LoadMapPtr(asm.R1, m.FD()),
			asm.Mov.Imm(asm.R3, 2), // XDP_PASS when the slot is empty
			asm.FnRedirectMap.Call(),
			asm.Return(),
		},
	})
	if err != nil {
		n.t.Fatalf("load XDP program: %v", err)
	}
	n.t.Cleanup(func() { prog.Close() })
	var l link.Link
	n.do(func() (err error) {
		if l, err = link.AttachXDP(link.XDPOptions{Program: prog, Interface: ifi.Index, Flags: link.XDPDriverMode}); err != nil {
			return fmt.Errorf("attach XDP to %s: %w", ifi.Name, err)
		}
		return nil
	})
	n.t.Cleanup(func() { l.Close() })
	return m
}

// testEtherType is the IEEE local experimental EtherType 1; the test
// frames carry it so that nothing else is counted.
const testEtherType = 0x88b5

// packetSocket opens an AF_PACKET socket bound to ifi that receives only
// testEtherType frames and can send raw frames.
func (n *testNS) packetSocket(ifi *net.Interface) int {
	n.t.Helper()
	fd := -1
	n.do(func() (err error) {
		proto := int(htons(testEtherType))
		if fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto); err != nil {
			return fmt.Errorf("packet socket: %w", err)
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(testEtherType), Ifindex: ifi.Index}); err != nil {
			return fmt.Errorf("bind packet socket to %s: %w", ifi.Name, err)
		}
		// Frames are read after a whole burst is sent: make room.
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 64<<20); err != nil {
			return err
		}
		tv := unix.NsecToTimeval(int64(200 * time.Millisecond))
		return unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	})
	n.t.Cleanup(func() {
		if fd >= 0 {
			unix.Close(fd)
		}
	})
	return fd
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// testFrame builds frame number seq: broadcast, testEtherType, seq, and a
// pattern to a length between 60 and 1060 bytes.
func testFrame(src net.HardwareAddr, seq uint32) []byte {
	f := make([]byte, 60+int(seq*37%1001))
	copy(f, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	copy(f[6:], src)
	binary.BigEndian.PutUint16(f[12:], testEtherType)
	binary.BigEndian.PutUint32(f[14:], seq)
	for i := 18; i < len(f); i++ {
		f[i] = byte(seq) + byte(i)
	}
	return f
}

// frameSeq returns the sequence number of a test frame.
func frameSeq(f []byte) (uint32, bool) {
	if len(f) < 18 || binary.BigEndian.Uint16(f[12:]) != testEtherType {
		return 0, false
	}
	return binary.BigEndian.Uint32(f[14:]), true
}

// sendFrames sends frames first..first+n-1 out of ifi from fd.
func sendFrames(t *testing.T, fd int, ifi *net.Interface, first, n uint32) {
	t.Helper()
	sa := &unix.SockaddrLinklayer{Protocol: htons(testEtherType), Ifindex: ifi.Index}
	for seq := first; seq < first+n; seq++ {
		if err := unix.Sendto(fd, testFrame(ifi.HardwareAddr, seq), 0, sa); err != nil {
			t.Errorf("send frame %d on %s: %v", seq, ifi.Name, err)
			return
		}
	}
}

// recvFrames reads test frames from fd until want arrived or nothing came
// for 2 s, and returns them by sequence number.
func recvFrames(t *testing.T, fd int, want int) map[uint32][]byte {
	t.Helper()
	got := make(map[uint32][]byte)
	buf := make([]byte, 4096)
	idle := time.Now()
	for len(got) < want && time.Since(idle) < 2*time.Second {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err == unix.EAGAIN || err == unix.EINTR {
			continue
		}
		if err != nil {
			t.Fatalf("receive on packet socket: %v", err)
		}
		if seq, ok := frameSeq(buf[:n]); ok {
			got[seq] = append([]byte(nil), buf[:n]...)
			idle = time.Now()
		}
	}
	return got
}

// newUmem makes a UMEM closed at the end of the test (after its sockets,
// whose cleanups run first because they are registered later).
func newUmem(t *testing.T, cfg UmemConfig) *Umem {
	t.Helper()
	u, err := NewUmem(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := u.Close(); err != nil {
			t.Errorf("close UMEM: %v", err)
		}
	})
	return u
}

// newSocket makes a socket inside the namespace, closed at test end.
func (n *testNS) newSocket(u *Umem, cfg SocketConfig) *Socket {
	n.t.Helper()
	s, err := n.tryNewSocket(u, cfg)
	if err != nil {
		n.t.Fatal(err)
	}
	return s
}

func (n *testNS) tryNewSocket(u *Umem, cfg SocketConfig) (s *Socket, err error) {
	n.t.Helper()
	n.do(func() error { s, err = u.NewSocket(cfg); return nil })
	if err == nil {
		n.t.Cleanup(func() {
			if err := s.Close(); err != nil {
				n.t.Errorf("close socket: %v", err)
			}
		})
	}
	return s, err
}
