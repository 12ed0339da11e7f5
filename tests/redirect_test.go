package tests

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xdpfwd/xdpfwd/bpf"
	"github.com/xdpfwd/xdpfwd/internal/topo"
	"github.com/xdpfwd/xdpfwd/internal/topotest"
	"github.com/xdpfwd/xdpfwd/xdp"
)

// The XDP program with a real AF_XDP socket in its XSKMAP: frames sent by
// the peer arrive in the socket byte for byte and count as redirected;
// once the slot is cleared they go to the kernel and count as passed.
func TestXDPRedirectIntoSocket(t *testing.T) {
	const maxFrame = 1000
	tp := topotest.New(t, "xrd")
	ns, err := tp.AddNamespace("a")
	if err != nil {
		t.Fatal(err)
	}
	if err := tp.Veth(ns, "va", ns, "vb", topo.VethOptions{Queues: 1}); err != nil {
		t.Fatal(err)
	}
	var (
		port  *bpf.Port
		umem  *xdp.Umem
		sock  *xdp.Socket
		pkt   int
		vbIdx int
	)
	err = ns.Do(func() error {
		va, err := net.InterfaceByName("va")
		if err != nil {
			return err
		}
		vb, err := net.InterfaceByName("vb")
		if err != nil {
			return err
		}
		vbIdx = vb.Index
		if port, err = bpf.Attach(bpf.Options{Ifindex: va.Index, Mode: bpf.ModeNative, MaxFrame: maxFrame}); err != nil {
			return err
		}
		if umem, err = xdp.NewUmem(xdp.UmemConfig{FrameCount: 512}); err != nil {
			return err
		}
		if sock, err = umem.NewSocket(xdp.SocketConfig{Ifindex: va.Index, RxSize: 512, TxSize: 64, NeedWakeup: true}); err != nil {
			return err
		}
		pkt, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		unix.Close(pkt)
		sock.Close()
		umem.Close()
		port.Close()
	})
	free := make([]uint64, 256)
	if n := umem.Alloc(free); sock.Fill(free[:n]) != n {
		t.Fatal("fill ring refused frames")
	}
	if err := port.SetSocket(0, sock.FD()); err != nil {
		t.Fatal(err)
	}

	// Frames of a local experimental EtherType, so the veths' own IPv6
	// chatter is told apart.
	frame := func(seq int) []byte {
		f := make([]byte, 100)
		copy(f, []byte{0x02, 0, 0, 0, 0, 0xaa, 0x02, 0, 0, 0, 0, 0xbb, 0x88, 0xb5})
		binary.BigEndian.PutUint32(f[14:], uint32(seq))
		for i := 18; i < len(f); i++ {
			f[i] = byte(seq + i)
		}
		return f
	}
	send := func(n int) {
		for i := range n {
			sa := &unix.SockaddrLinklayer{Ifindex: vbIdx, Halen: 6}
			if err := unix.Sendto(pkt, frame(i), 0, sa); err != nil {
				t.Fatalf("send frame %d: %v", i, err)
			}
		}
	}
	before, err := port.Counters()
	if err != nil {
		t.Fatal(err)
	}
	const n = 100
	send(n)
	got := 0
	descs := make([]xdp.Desc, 64)
	for deadline := time.Now().Add(5 * time.Second); got < n && time.Now().Before(deadline); {
		k := sock.Receive(descs)
		for _, d := range descs[:k] {
			f := umem.Frame(d.Addr, d.Len)
			if len(f) >= 18 && f[12] == 0x88 && f[13] == 0xb5 {
				if seq := int(binary.BigEndian.Uint32(f[14:])); !bytes.Equal(f, frame(seq)) {
					t.Fatalf("frame %d arrived with other bytes", seq)
				}
				got++
			}
			umem.Free(d.Addr)
		}
		if k == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	if got != n {
		t.Fatalf("socket received %d of %d frames", got, n)
	}
	after, err := port.Counters()
	if err != nil {
		t.Fatal(err)
	}
	if d := after.Redirected - before.Redirected; d < n {
		t.Errorf("redirected counter rose by %d, want at least %d", d, n)
	}

	// A frame longer than MaxFrame is dropped and counted, not redirected.
	big := make([]byte, maxFrame+1)
	copy(big, frame(n))
	if err := unix.Sendto(pkt, big, 0, &unix.SockaddrLinklayer{Ifindex: vbIdx, Halen: 6}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; {
		c, err := port.Counters()
		if err != nil {
			t.Fatal(err)
		}
		if c.DropTooBig-after.DropTooBig == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("drop_too_big rose by %d, want 1", c.DropTooBig-after.DropTooBig)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, d := range descs[:sock.Receive(descs)] {
		if f := umem.Frame(d.Addr, d.Len); len(f) >= 14 && f[12] == 0x88 && f[13] == 0xb5 {
			t.Errorf("socket received a %d-byte test frame; the only one sent was too long", len(f))
		}
		umem.Free(d.Addr)
	}
	if after, err = port.Counters(); err != nil {
		t.Fatal(err)
	}

	// An empty slot passes frames to the kernel.
	if err := port.ClearSocket(0); err != nil {
		t.Fatal(err)
	}
	send(n)
	time.Sleep(100 * time.Millisecond)
	final, err := port.Counters()
	if err != nil {
		t.Fatal(err)
	}
	if d := final.PassNoSocket - after.PassNoSocket; d < n {
		t.Errorf("pass_no_socket rose by %d, want at least %d", d, n)
	}
	if k := sock.Receive(descs); k != 0 {
		t.Errorf("socket received %d frames after its slot was cleared", k)
	}
}
