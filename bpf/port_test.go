package bpf

import (
	"errors"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/xdpfwd/xdpfwd/internal/topo"
	"github.com/xdpfwd/xdpfwd/internal/topotest"
)

// testNS is a fresh network namespace (internal/topo) holding a veth pair,
// xfa and xfb.
type testNS struct {
	ns     *topo.Namespace
	h      *netlink.Handle
	a, b   netlink.Link
	aIndex int
}

// inNS runs fn on an OS thread in the test's namespace.
func (tn *testNS) inNS(fn func()) error {
	return tn.ns.Do(func() error { fn(); return nil })
}

// newTestNS creates a network namespace with a veth pair inside, removed
// when the test ends.
func newTestNS(t testing.TB) *testNS {
	t.Helper()
	tp := topotest.New(t, "xbp")
	ns, err := tp.AddNamespace("t")
	if err != nil {
		t.Fatal(err)
	}
	if err := tp.Veth(ns, "xfa", ns, "xfb", topo.VethOptions{}); err != nil {
		t.Fatal(err)
	}
	tn := &testNS{ns: ns, h: ns.Netlink()}
	if tn.a, err = tn.h.LinkByName("xfa"); err != nil {
		t.Fatal(err)
	}
	if tn.b, err = tn.h.LinkByName("xfb"); err != nil {
		t.Fatal(err)
	}
	tn.aIndex = tn.a.Attrs().Index
	return tn
}

// attach calls Attach in the namespace and closes the port at cleanup.
func (tn *testNS) attach(t *testing.T, opts Options) (*Port, error) {
	t.Helper()
	var p *Port
	var err error
	if nsErr := tn.inNS(func() { p, err = Attach(opts) }); nsErr != nil {
		t.Fatalf("entering netns: %v", nsErr)
	}
	if p != nil {
		t.Cleanup(func() { p.Close() })
	}
	return p, err
}

// xdpOf returns what netlink says about the XDP program on link name.
func (tn *testNS) xdpOf(t *testing.T, name string) netlink.LinkXdp {
	t.Helper()
	l, err := tn.h.LinkByName(name)
	if err != nil {
		t.Fatalf("looking up %s: %v", name, err)
	}
	if l.Attrs().Xdp == nil {
		return netlink.LinkXdp{}
	}
	return *l.Attrs().Xdp
}

func progID(t *testing.T, p *Port) uint32 {
	t.Helper()
	info, err := p.objs.prog.Info()
	if err != nil {
		t.Fatal(err)
	}
	id, ok := info.ID()
	if !ok {
		t.Fatal("kernel gave no program ID")
	}
	return uint32(id)
}

func TestAttachNative(t *testing.T) {
	tn := newTestNS(t)
	p, err := tn.attach(t, Options{Ifindex: tn.aIndex, Mode: ModeNative, PassMACs: []net.HardwareAddr{hostMAC}})
	if err != nil {
		t.Fatalf("Attach: %v", err)
	}
	if p.Mode() != ModeNative {
		t.Errorf("Mode() = %v, want native", p.Mode())
	}
	id := progID(t, p)
	xdp := tn.xdpOf(t, "xfa")
	if !xdp.Attached || xdp.AttachMode != nl.XDP_ATTACHED_DRV || xdp.ProgId != id {
		t.Fatalf("netlink shows %+v, want program %d attached in driver mode", xdp, id)
	}

	if !p.RestoresVLANTags() {
		t.Error("RestoresVLANTags() = false on a native veth port, want true")
	}

	// A second attach must not take the interface over. (Generic mode on
	// a veth is refused before that: TestAttachVLANRefusal.)
	for _, tc := range []struct {
		mode  Mode
		errno unix.Errno
	}{{ModeNative, unix.EBUSY}, {ModeAuto, unix.EBUSY}} {
		p2, err := tn.attach(t, Options{Ifindex: tn.aIndex, Mode: tc.mode})
		if err == nil {
			t.Fatalf("second attach in %v mode succeeded in %v mode", tc.mode, p2.Mode())
		}
		if !strings.Contains(err.Error(), "interface xfa already has an XDP program") || !errors.Is(err, tc.errno) {
			t.Errorf("second attach in %v mode: got %q, want 'interface xfa already has an XDP program' and %v", tc.mode, err, tc.errno)
		}
		if got := tn.xdpOf(t, "xfa"); got.ProgId != id || got.AttachMode != nl.XDP_ATTACHED_DRV {
			t.Errorf("after a refused %v attach netlink shows %+v, want program %d in driver mode", tc.mode, got, id)
		}
	}

	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if xdp := tn.xdpOf(t, "xfa"); xdp.Attached || xdp.ProgId != 0 {
		t.Errorf("after Close netlink shows %+v, want no program", xdp)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := p.SetSocket(0, 0); err == nil {
		t.Error("SetSocket on a closed port succeeded")
	}
	if _, err := p.Counters(); err == nil {
		t.Error("Counters on a closed port succeeded")
	}
	// The interface is free again.
	p3, err := tn.attach(t, Options{Ifindex: tn.aIndex, Mode: ModeNative})
	if err != nil {
		t.Fatalf("attach after Close: %v", err)
	}
	p3.Close()
}

// TestAttachGeneric attaches in generic mode to an ifb device (a veth, and
// a device with lower devices such as a bridge, are refused in generic mode:
// TestAttachVLANRefusal).
func TestAttachGeneric(t *testing.T) {
	tn := newTestNS(t)
	if err := tn.h.LinkAdd(&netlink.Ifb{LinkAttrs: netlink.LinkAttrs{Name: "xfd"}}); err != nil {
		t.Fatalf("adding ifb: %v", err)
	}
	l, err := tn.h.LinkByName("xfd")
	if err != nil {
		t.Fatal(err)
	}
	p, err := tn.attach(t, Options{Ifindex: l.Attrs().Index, Mode: ModeGeneric})
	if err != nil {
		t.Fatalf("Attach: %v", err)
	}
	if p.Mode() != ModeGeneric {
		t.Errorf("Mode() = %v, want generic", p.Mode())
	}
	if p.RestoresVLANTags() {
		t.Error("RestoresVLANTags() = true in generic mode")
	}
	id := progID(t, p)
	if xdp := tn.xdpOf(t, "xfd"); !xdp.Attached || xdp.AttachMode != nl.XDP_ATTACHED_SKB || xdp.ProgId != id {
		t.Fatalf("netlink shows %+v, want program %d attached in generic (skb) mode", xdp, id)
	}
	// A second attach, generic or auto (falling back to generic), must
	// not take the interface over.
	// Auto falls back to generic after native fails; the kernel's errno
	// for that second attempt is EEXIST on some 6.18 builds and EBUSY
	// (as for a plain generic attach) on others.
	for _, tc := range []struct {
		mode   Mode
		errnos []unix.Errno
	}{{ModeGeneric, []unix.Errno{unix.EBUSY}}, {ModeAuto, []unix.Errno{unix.EEXIST, unix.EBUSY}}} {
		_, err := tn.attach(t, Options{Ifindex: l.Attrs().Index, Mode: tc.mode})
		if err == nil || !strings.Contains(err.Error(), "already has an XDP program") || !slices.ContainsFunc(tc.errnos, func(e unix.Errno) bool { return errors.Is(err, e) }) {
			t.Errorf("%v attach over a generic program: got %v, want 'already has an XDP program' and one of %v", tc.mode, err, tc.errnos)
		}
	}
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if xdp := tn.xdpOf(t, "xfd"); xdp.Attached {
		t.Errorf("after Close netlink shows %+v, want no program", xdp)
	}
}

func TestAttachAutoPrefersNative(t *testing.T) {
	tn := newTestNS(t)
	p, err := tn.attach(t, Options{Ifindex: tn.aIndex, Mode: ModeAuto})
	if err != nil {
		t.Fatalf("Attach: %v", err)
	}
	if p.Mode() != ModeNative || !p.RestoresVLANTags() {
		t.Errorf("Mode() = %v, RestoresVLANTags() = %v; want native, true on veth", p.Mode(), p.RestoresVLANTags())
	}
	if xdp := tn.xdpOf(t, "xfa"); xdp.AttachMode != nl.XDP_ATTACHED_DRV {
		t.Errorf("netlink shows %+v, want driver mode", xdp)
	}
}

// An ifb device has no native XDP: auto mode falls back to generic, native
// mode fails and says so.
func TestAttachAutoFallsBackToGeneric(t *testing.T) {
	tn := newTestNS(t)
	if err := tn.h.LinkAdd(&netlink.Ifb{LinkAttrs: netlink.LinkAttrs{Name: "xfd"}}); err != nil {
		t.Fatalf("adding ifb: %v", err)
	}
	l, err := tn.h.LinkByName("xfd")
	if err != nil {
		t.Fatal(err)
	}
	_, err = tn.attach(t, Options{Ifindex: l.Attrs().Index, Mode: ModeNative})
	if err == nil || !strings.Contains(err.Error(), "attaching XDP to xfd in native mode") || !errors.Is(err, unix.EOPNOTSUPP) {
		t.Errorf("native attach to an ifb: got %v, want 'attaching XDP to xfd in native mode' and EOPNOTSUPP", err)
	}
	p, err := tn.attach(t, Options{Ifindex: l.Attrs().Index, Mode: ModeAuto})
	if err != nil {
		t.Fatalf("auto attach to an ifb: %v", err)
	}
	if p.Mode() != ModeGeneric {
		t.Errorf("Mode() = %v, want generic", p.Mode())
	}
	if xdp := tn.xdpOf(t, "xfd"); !xdp.Attached || xdp.AttachMode != nl.XDP_ATTACHED_SKB || xdp.ProgId != progID(t, p) {
		t.Errorf("netlink shows %+v, want our program in generic (skb) mode", xdp)
	}
}

func TestAttachErrors(t *testing.T) {
	tn := newTestNS(t)
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"no such ifindex", Options{Ifindex: 9999}, "no interface with index 9999"},
		{"bad mode", Options{Ifindex: tn.aIndex, Mode: Mode(7)}, "invalid mode Mode(7)"},
		{"short MAC", Options{Ifindex: tn.aIndex, PassMACs: []net.HardwareAddr{{1, 2, 3}}}, "xfa: pass MAC 01:02:03"},
		{"too many MACs", Options{Ifindex: tn.aIndex, PassMACs: make([]net.HardwareAddr, MaxPassMACs+1)}, "at most 64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := tn.attach(t, tt.opts)
			if err == nil {
				t.Fatalf("Attach succeeded in %v mode", p.Mode())
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
			if xdp := tn.xdpOf(t, "xfa"); xdp.Attached {
				t.Errorf("failed Attach left a program: %+v", xdp)
			}
		})
	}
}

func TestSetSocket(t *testing.T) {
	tn := newTestNS(t)
	p, err := tn.attach(t, Options{Ifindex: tn.aIndex, Mode: ModeNative})
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []int{-1, MaxQueues} {
		if err := p.SetSocket(q, 0); err == nil || !strings.Contains(err.Error(), "out of range") {
			t.Errorf("SetSocket(%d): got %v, want out of range", q, err)
		}
		if err := p.ClearSocket(q); err == nil || !strings.Contains(err.Error(), "out of range") {
			t.Errorf("ClearSocket(%d): got %v, want out of range", q, err)
		}
	}
	// Only AF_XDP sockets go into the map.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if err := p.SetSocket(0, int(r.Fd())); err == nil {
		t.Error("SetSocket accepted a pipe")
	}
	udp, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(udp)
	if err := p.SetSocket(0, udp); err == nil {
		t.Error("SetSocket accepted a UDP socket")
	}
	if err := p.ClearSocket(0); err != nil {
		t.Errorf("ClearSocket of an empty slot: %v", err)
	}
}

// TestCountersLive sends frames from the veth peer into the port and reads
// them back from Counters: frames for a pass MAC count as host traffic,
// others (with no socket set) as passed for want of a socket.
func TestCountersLive(t *testing.T) {
	tn := newTestNS(t)
	p, err := tn.attach(t, Options{Ifindex: tn.aIndex, Mode: ModeNative, PassMACs: []net.HardwareAddr{hostMAC}})
	if err != nil {
		t.Fatal(err)
	}
	const n = 10
	frames := [][]byte{udpFrame(t, peerMAC, hostMAC), udpFrame(t, peerMAC, otherMAC)}
	var sendErr error
	err = tn.inNS(func() {
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
		if err != nil {
			sendErr = err
			return
		}
		defer unix.Close(fd)
		to := &unix.SockaddrLinklayer{Ifindex: tn.b.Attrs().Index, Halen: 6}
		for i := 0; i < n; i++ {
			for _, f := range frames {
				if err := unix.Sendto(fd, f, 0, to); err != nil {
					sendErr = err
					return
				}
			}
		}
	})
	if err != nil || sendErr != nil {
		t.Fatalf("sending frames: %v %v", err, sendErr)
	}
	// Delivery on veth is asynchronous (NAPI); wait for it, without timing
	// anything.
	var c Counters
	for deadline := time.Now().Add(10 * time.Second); ; {
		if c, err = p.Counters(); err != nil {
			t.Fatal(err)
		}
		if c.PassHost >= n && c.PassNoSocket >= n || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The namespace's own traffic (IPv6 neighbour discovery) may add to
	// PassNoSocket, but nothing else sends to hostMAC.
	if c.PassHost != n || c.PassNoSocket < n || c.Redirected != 0 || c.DropMalformed != 0 || c.RedirectFailed != 0 {
		t.Errorf("Counters() = %+v, want PassHost %d, PassNoSocket >= %d, others 0", c, n, n)
	}
}

func TestParseMode(t *testing.T) {
	for _, m := range []Mode{ModeAuto, ModeNative, ModeGeneric} {
		got, err := ParseMode(m.String())
		if err != nil || got != m {
			t.Errorf("ParseMode(%q) = %v, %v; want %v", m.String(), got, err, m)
		}
	}
	for _, s := range []string{"", "Native", "drv", "skb", "offload", "auto "} {
		if m, err := ParseMode(s); err == nil {
			t.Errorf("ParseMode(%q) = %v, want an error", s, m)
		}
	}
}

func FuzzParseMode(f *testing.F) {
	for _, s := range []string{"auto", "native", "generic", "", "NATIVE", "generic\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMode(s)
		if err != nil {
			return
		}
		if m.String() != s {
			t.Errorf("ParseMode(%q) = %v, which prints as %q", s, m, m.String())
		}
	})
}
