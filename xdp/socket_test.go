package xdp

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// waitFor polls cond until it holds; it fails the test after 10 s (a hang
// guard, not a speed assertion).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestBindModeParse(t *testing.T) {
	for _, m := range []BindMode{BindAuto, BindZeroCopy, BindCopy} {
		got, err := ParseBindMode(m.String())
		if err != nil || got != m {
			t.Errorf("ParseBindMode(%q) = %v, %v; want %v", m.String(), got, err, m)
		}
	}
	if _, err := ParseBindMode("zero-copy"); err == nil {
		t.Error("ParseBindMode(zero-copy) succeeded")
	}
}

func TestTransmitReachesPeer(t *testing.T) {
	n := newTestNS(t)
	a, b := n.vethPair(1)
	rx := n.packetSocket(b)
	u := newUmem(t, UmemConfig{})
	s := n.newSocket(u, SocketConfig{Ifindex: a.Index, NeedWakeup: true})
	if s.ZeroCopy() {
		t.Fatal("ZeroCopy() = true on veth")
	}

	const frames = 300
	sent := make(map[uint32][]byte)
	addrs := make([]uint64, 64)
	descs := make([]Desc, 64)
	completed := 0
	for seq := uint32(0); seq < frames; {
		k := u.Alloc(addrs[:min(64, frames-int(seq))])
		for i := range k {
			f := testFrame(a.HardwareAddr, seq+uint32(i))
			copy(u.Frame(addrs[i], uint32(len(f))), f)
			sent[seq+uint32(i)] = f
			descs[i] = Desc{Addr: addrs[i], Len: uint32(len(f))}
		}
		for done := 0; done < k; {
			done += s.Transmit(descs[done:k])
			c := s.Complete(addrs)
			for _, ad := range addrs[:c] {
				u.Free(ad)
			}
			completed += c
		}
		seq += uint32(k)
	}
	waitFor(t, "completions", func() bool {
		s.Transmit(nil) // kick whatever is still queued
		c := s.Complete(addrs)
		for _, ad := range addrs[:c] {
			u.Free(ad)
		}
		completed += c
		return completed == frames
	})
	if u.FreeCount() != int(u.Config().FrameCount) {
		t.Errorf("free frames after all completions = %d, want %d", u.FreeCount(), u.Config().FrameCount)
	}
	got := recvFrames(t, rx, frames)
	if len(got) != frames {
		t.Fatalf("peer received %d of %d frames", len(got), frames)
	}
	for seq, f := range sent {
		if !bytes.Equal(got[seq], f) {
			t.Fatalf("frame %d differs:\n got %x\nwant %x", seq, got[seq], f)
		}
	}
	if s.Kicks() == 0 {
		t.Error("Kicks() = 0: copy mode needs sendto to transmit")
	}
	t.Logf("kicks %+v, TX budget applied %d", s.KickStats(), s.TxBudgetApplied())
}

func TestReceiveFromPeer(t *testing.T) {
	n := newTestNS(t)
	a, b := n.vethPair(1)
	xsks := n.redirectToXSK(a)
	tx := n.packetSocket(b)
	const headroom = 64
	u := newUmem(t, UmemConfig{Headroom: headroom})
	s := n.newSocket(u, SocketConfig{Ifindex: a.Index, NeedWakeup: true})
	if err := xsks.Update(uint32(0), uint32(s.FD()), ebpf.UpdateAny); err != nil {
		t.Fatal(err)
	}
	addrs := make([]uint64, 1024)
	k := u.Alloc(addrs)
	if got := s.Fill(addrs[:k]); got != k {
		t.Fatalf("Fill took %d of %d", got, k)
	}
	if occ := s.Occupancy(); occ.Fill != uint32(k) {
		t.Errorf("Occupancy().Fill = %d, want %d", occ.Fill, k)
	}

	const frames = 500
	sendFrames(t, tx, b, 0, frames)
	got := make(map[uint32][]byte)
	descs := make([]Desc, 64)
	waitFor(t, "received frames", func() bool {
		r := s.Receive(descs)
		for _, d := range descs[:r] {
			if off := d.Addr % uint64(u.Config().FrameSize); off != unix.XDP_PACKET_HEADROOM+headroom {
				t.Fatalf("frame at chunk offset %d, want %d", off, unix.XDP_PACKET_HEADROOM+headroom)
			}
			f := u.Frame(d.Addr, d.Len)
			if seq, ok := frameSeq(f); ok {
				got[seq] = append([]byte(nil), f...)
			}
			u.Free(d.Addr)
		}
		return len(got) == frames
	})
	for seq := range uint32(frames) {
		if want := testFrame(b.HardwareAddr, seq); !bytes.Equal(got[seq], want) {
			t.Fatalf("frame %d differs:\n got %x\nwant %x", seq, got[seq], want)
		}
	}
	st, err := s.Statistics()
	if err != nil {
		t.Fatal(err)
	}
	if st.RxDropped != 0 || st.RxRingFull != 0 || st.RxInvalidDescs != 0 {
		t.Errorf("statistics show drops: %+v", st)
	}
	occ := s.Occupancy()
	if occ.RX != 0 || int(occ.Fill)+u.FreeCount() != int(u.Config().FrameCount) {
		t.Errorf("occupancy %+v with %d free frames: frames lost", occ, u.FreeCount())
	}
}

// sharedSetup makes two veth pairs in one namespace, an XDP redirect on
// a0, and two sockets on one UMEM: in on a0 (the owner) and out on a1.
type sharedSetup struct {
	n          *testNS
	a0, b0, a1 *net.Interface
	u          *Umem
	in, out    *Socket
	send, recv int // packet sockets on b0 and b1
}

func newSharedSetup(t *testing.T) *sharedSetup {
	n := newTestNS(t)
	a0, b0 := n.vethPair(1)
	a1, b1 := n.vethPair(1)
	xsks := n.redirectToXSK(a0)
	ss := &sharedSetup{n: n, a0: a0, b0: b0, a1: a1, send: n.packetSocket(b0), recv: n.packetSocket(b1)}
	ss.u = newUmem(t, UmemConfig{})
	ss.in = n.newSocket(ss.u, SocketConfig{Ifindex: a0.Index, NeedWakeup: true})
	ss.out = n.newSocket(ss.u, SocketConfig{Ifindex: a1.Index, NeedWakeup: true})
	if err := xsks.Update(uint32(0), uint32(ss.in.FD()), ebpf.UpdateAny); err != nil {
		t.Fatal(err)
	}
	return ss
}

func TestSharedUmemForwardsByDescriptor(t *testing.T) {
	ss := newSharedSetup(t)
	if ss.out.ZeroCopy() || !ss.out.NeedWakeup() {
		t.Errorf("shared socket: ZeroCopy %v NeedWakeup %v, want the owner's false, true", ss.out.ZeroCopy(), ss.out.NeedWakeup())
	}
	// A third socket on the owner's device and queue cannot have rings.
	_, err := ss.n.tryNewSocket(ss.u, SocketConfig{Ifindex: ss.a0.Index, NeedWakeup: true})
	if err == nil || !strings.Contains(err.Error(), ss.a0.Name) || !strings.Contains(err.Error(), "own device or queue") {
		t.Errorf("socket on the owner's queue: err = %v", err)
	}

	addrs := make([]uint64, 256)
	k := ss.u.Alloc(addrs)
	ss.in.Fill(addrs[:k])
	const frames = 200
	sendFrames(t, ss.send, ss.b0, 0, frames)

	received := make(map[uint64]bool)
	descs := make([]Desc, 64)
	var moved, completed int
	waitFor(t, "frames forwarded", func() bool {
		r := ss.in.Receive(descs)
		for _, d := range descs[:r] {
			received[d.Addr] = true
		}
		for done := 0; done < r; {
			done += ss.out.Transmit(descs[done:r])
		}
		moved += r
		ss.out.Transmit(nil)
		c := ss.out.Complete(addrs)
		for _, ad := range addrs[:c] {
			if !received[ad] {
				t.Fatalf("completed address %#x was never received: the frame was copied", ad)
			}
			delete(received, ad)
			ss.u.Free(ad)
		}
		completed += c
		return moved >= frames && completed == moved
	})
	got := recvFrames(t, ss.recv, frames)
	if len(got) != frames {
		t.Fatalf("b1 received %d of %d frames", len(got), frames)
	}
	for seq := range uint32(frames) {
		if want := testFrame(ss.b0.HardwareAddr, seq); !bytes.Equal(got[seq], want) {
			t.Fatalf("frame %d differs:\n got %x\nwant %x", seq, got[seq], want)
		}
	}
}

func TestFrameAccounting(t *testing.T) {
	ss := newSharedSetup(t)
	u, in, out := ss.u, ss.in, ss.out
	total := int(u.Config().FrameCount)
	// The output socket never receives, but its fill ring holds frames too.
	addrs := make([]uint64, 64)
	out.Fill(addrs[:u.Alloc(addrs[:16])])

	const frames = 10000
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		sendFrames(t, ss.send, ss.b0, 0, frames)
	}()

	var held []Desc // received and not yet queued for TX
	descs := make([]Desc, 64)
	var received, queued, completed int
	start := time.Now()
	last := start
	step := func() (progress bool) {
		// Keep the input fill ring topped up from the free list.
		if f := int(in.Occupancy().Fill); f < 1024 {
			k := u.Alloc(addrs[:min(64, 1024-f)])
			if got := in.Fill(addrs[:k]); got != k {
				for _, ad := range addrs[got:k] {
					u.Free(ad)
				}
			}
		}
		r := in.Receive(descs)
		received += r
		held = append(held, descs[:r]...)
		q := out.Transmit(held[:min(64, len(held))])
		held = held[q:]
		queued += q
		c := out.Complete(addrs)
		for _, ad := range addrs[:c] {
			u.Free(ad)
		}
		completed += c
		if r > 0 || c > 0 {
			last = time.Now()
			return true
		}
		return false
	}
	senderDone := func() bool {
		select {
		case <-sent:
			return true
		default:
			return false
		}
	}
	idle := time.Now()
	for !senderDone() || time.Since(idle) < 300*time.Millisecond || len(held) > 0 || completed < queued {
		if step() {
			idle = time.Now()
		}
		if time.Since(idle) > 10*time.Second {
			t.Fatalf("stuck: held %d, queued %d, completed %d", len(held), queued, completed)
		}
	}
	elapsed := last.Sub(start)
	occIn, occOut := in.Occupancy(), out.Occupancy()
	sum := u.FreeCount() + int(occIn.Total()) + int(occOut.Total()) + len(held)
	st, err := in.Statistics()
	if err != nil {
		t.Fatal(err)
	}
	// Every frame is counted back, except that a frame the kernel took off
	// the fill ring for a packet it then dropped for a full RX ring stays
	// with the kernel (see Occupancy): at most RxRingFull of them.
	if sum > total || uint64(total-sum) > st.RxRingFull {
		t.Errorf("free %d + in %+v + out %+v + held %d = %d, want FrameCount %d (less at most RxRingFull %d)",
			u.FreeCount(), occIn, occOut, len(held), sum, total, st.RxRingFull)
	}
	if received == 0 || completed != received {
		t.Errorf("received %d, completed %d", received, completed)
	}
	arrived := recvFrames(t, ss.recv, completed)
	t.Logf("forwarded %d of %d frames in %v (%.0f frames/s, limited by the Go AF_PACKET sender), %d arrived on b1; in stats %+v; out kicks %+v",
		completed, frames, elapsed, float64(completed)/elapsed.Seconds(), len(arrived), st, out.KickStats())
}

func TestBindAutoFallsBackToCopy(t *testing.T) {
	n := newTestNS(t)
	a, _ := n.vethPair(1)
	u := newUmem(t, UmemConfig{FrameCount: 256})
	_, err := n.tryNewSocket(u, SocketConfig{Ifindex: a.Index, Bind: BindZeroCopy})
	if !errors.Is(err, unix.EOPNOTSUPP) || !strings.Contains(err.Error(), a.Name) {
		t.Errorf("zero-copy bind on veth: err = %v, want EOPNOTSUPP naming %s", err, a.Name)
	}
	s := n.newSocket(u, SocketConfig{Ifindex: a.Index, Bind: BindAuto})
	if s.ZeroCopy() {
		t.Error("auto bind on veth: ZeroCopy() = true")
	}
}

func TestBindErrorsNameInterfaceAndQueue(t *testing.T) {
	n := newTestNS(t)
	a, _ := n.vethPair(1)
	u := newUmem(t, UmemConfig{FrameCount: 256})
	_, err := n.tryNewSocket(u, SocketConfig{Ifindex: a.Index, Queue: 5})
	if err == nil {
		t.Fatal("bind to queue 5 of a 1-queue veth succeeded")
	}
	for _, want := range []string{a.Name, "queue 5", "only 1 RX queue"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}

	n.newSocket(u, SocketConfig{Ifindex: a.Index})
	u2 := newUmem(t, UmemConfig{FrameCount: 256})
	_, err = n.tryNewSocket(u2, SocketConfig{Ifindex: a.Index})
	if !errors.Is(err, unix.EBUSY) || !strings.Contains(err.Error(), "queue 0 of "+a.Name+" already has an AF_XDP socket") {
		t.Errorf("second UMEM on a busy queue: err = %v", err)
	}
}

func TestUmemRegErrorNamesMemlock(t *testing.T) {
	err := umemRegError(unix.ENOBUFS, 1<<24)
	if !errors.Is(err, unix.ENOBUFS) {
		t.Errorf("%v does not wrap ENOBUFS", err)
	}
	for _, want := range []string{"RLIMIT_MEMLOCK", "ulimit -l", "CAP_IPC_LOCK"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// TestUmemRegWithoutCapIPCLock drops CAP_IPC_LOCK from this thread's
// effective set (capabilities are per thread), so the UMEM is charged to
// RLIMIT_MEMLOCK, which is smaller than it, and checks the error.
//
// It lowers the soft RLIMIT_MEMLOCK of the whole process (not just this
// test or thread) while it runs, so it must never run in parallel with
// other tests of this package: never add t.Parallel to it. A UMEM
// registered, or memory locked, by a test overlapping it would fail with
// ENOBUFS or EPERM for no fault of its own. (Other packages' tests run in
// other processes and are not affected.)
func TestUmemRegWithoutCapIPCLock(t *testing.T) {
	n := newTestNS(t)
	a, _ := n.vethPair(1)
	// Lower the soft limit (process-wide) below the UMEM's size for the
	// duration of the test; the hard limit stays.
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_MEMLOCK, &lim); err != nil {
		t.Fatal(err)
	}
	const size = 16 << 20
	low := lim
	low.Cur = min(lim.Cur, 8<<20)
	if err := unix.Setrlimit(unix.RLIMIT_MEMLOCK, &low); err != nil {
		t.Fatal(err)
	}
	defer unix.Setrlimit(unix.RLIMIT_MEMLOCK, &lim)
	u := newUmem(t, UmemConfig{FrameCount: uint32(size / 4096)})
	var err error
	n.do(func() error {
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var data [2]unix.CapUserData
		if err := unix.Capget(&hdr, &data[0]); err != nil {
			return err
		}
		saved := data
		data[unix.CAP_IPC_LOCK/32].Effective &^= 1 << (unix.CAP_IPC_LOCK % 32)
		if err := unix.Capset(&hdr, &data[0]); err != nil {
			return err
		}
		_, err = u.NewSocket(SocketConfig{Ifindex: a.Index})
		if err := unix.Capset(&hdr, &saved[0]); err != nil {
			// Lock the thread once more: the caller's unlock leaves it
			// locked, so the runtime discards it with its capabilities.
			runtime.LockOSThread()
			return fmt.Errorf("restore capabilities: %w", err)
		}
		return nil
	})
	if !errors.Is(err, unix.ENOBUFS) || !strings.Contains(err.Error(), "RLIMIT_MEMLOCK") {
		t.Errorf("UMEM over RLIMIT_MEMLOCK without CAP_IPC_LOCK: err = %v", err)
	}
}

func TestBatchCallsDoNotAllocate(t *testing.T) {
	n := newTestNS(t)
	a, _ := n.vethPair(1)
	u := newUmem(t, UmemConfig{})
	s := n.newSocket(u, SocketConfig{Ifindex: a.Index, NeedWakeup: true})
	addrs := make([]uint64, 64)
	descs := make([]Desc, 64)
	u.Alloc(addrs)
	for i := range descs {
		descs[i] = Desc{Addr: addrs[i], Len: 60}
	}
	fill := make([]uint64, 64)
	u.Alloc(fill)
	comp := make([]uint64, 64)
	rx := make([]Desc, 64)
	for name, fn := range map[string]func(){
		"Transmit": func() { s.Transmit(descs) },
		"Complete": func() { s.Complete(comp) },
		"Fill":     func() { s.Fill(fill) },
		"Receive":  func() { s.Receive(rx) },
	} {
		if allocs := testing.AllocsPerRun(100, fn); allocs != 0 {
			t.Errorf("%s: %v allocations per batch of 64", name, allocs)
		}
	}
	if s.Kicks() == 0 {
		t.Error("Transmit made no sendto: the allocation test did not reach the kick")
	}
}

func TestCloseOrder(t *testing.T) {
	n := newTestNS(t)
	a, _ := n.vethPair(1)
	c, _ := n.vethPair(1)
	u, err := NewUmem(UmemConfig{FrameCount: 256})
	if err != nil {
		t.Fatal(err)
	}
	var owner, shared *Socket
	n.do(func() error {
		if owner, err = u.NewSocket(SocketConfig{Ifindex: a.Index}); err != nil {
			return err
		}
		if shared, err = u.NewSocket(SocketConfig{Ifindex: c.Index}); err != nil {
			owner.Close()
			return err
		}
		return nil
	})
	if err := u.Close(); err == nil || !strings.Contains(err.Error(), "2 socket(s) still open") {
		t.Errorf("Close of a UMEM with open sockets: err = %v", err)
	}
	if err := shared.Close(); err != nil {
		t.Error(err)
	}
	if err := owner.Close(); err != nil {
		t.Error(err)
	}
	if err := owner.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	n.do(func() error { _, err = u.NewSocket(SocketConfig{Ifindex: c.Index}); return nil })
	if err == nil || !strings.Contains(err.Error(), "owner socket is closed") {
		t.Errorf("NewSocket after the owner closed: err = %v", err)
	}
	if err := u.Close(); err != nil {
		t.Errorf("Close after all sockets: %v", err)
	}
}
