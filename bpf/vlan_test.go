package bpf

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/gopacket/gopacket/layers"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/xdpfwd/xdpfwd/xdp"
)

func TestCheckVLAN(t *testing.T) {
	tests := []struct {
		name   string
		mode   Mode
		f      vlanFeatures
		tagged bool
		errHas []string // empty: accepted
	}{
		{"native, driver reads tags", ModeNative, vlanFeatures{MetadataVLANTag: true, RxCTag: true, RxSTag: true}, true, nil},
		{"native veth", ModeNative, vlanFeatures{MetadataVLANTag: true, RxCTag: true, RxSTag: true, Veth: true}, true, nil},
		{"native, driver reads tags, offload off", ModeNative, vlanFeatures{MetadataVLANTag: true}, true, nil},
		{"native, no offload, no metadata", ModeNative, vlanFeatures{}, false, nil},
		{"generic, no offload", ModeGeneric, vlanFeatures{}, false, nil},
		{"generic, no offload, driver reads tags natively", ModeGeneric, vlanFeatures{MetadataVLANTag: true}, false, nil},
		{"native, 802.1Q offload, no metadata", ModeNative, vlanFeatures{RxCTag: true}, false,
			[]string{"eth7 strips VLAN tags on receive", "no vlan-tag in its XDP RX metadata features", "ethtool -K eth7 rxvlan off"}},
		{"native, 802.1ad offload, no metadata", ModeNative, vlanFeatures{RxSTag: true}, false,
			[]string{"eth7 strips", "ethtool -K eth7 rx-vlan-stag-hw-parse off"}},
		{"native, both offloads, no metadata", ModeNative, vlanFeatures{RxCTag: true, RxSTag: true}, false,
			[]string{"ethtool -K eth7 rxvlan off rx-vlan-stag-hw-parse off"}},
		{"generic, offload, driver reads tags natively", ModeGeneric, vlanFeatures{MetadataVLANTag: true, RxCTag: true}, false,
			[]string{"generic XDP cannot read the tags", "ethtool -K eth7 rxvlan off"}},
		{"generic veth", ModeGeneric, vlanFeatures{MetadataVLANTag: true, RxCTag: true, RxSTag: true, Veth: true}, false,
			[]string{"eth7 is a veth in generic XDP mode", "use xdp_mode native"}},
		// A veth's own rx-vlan-offload does not keep its peer's tags in
		// the frame: generic mode stays refused with it off.
		{"generic veth, offload off", ModeGeneric, vlanFeatures{MetadataVLANTag: true, Veth: true}, false,
			[]string{"eth7 is a veth in generic XDP mode"}},
		{"native veth without metadata (old kernel)", ModeNative, vlanFeatures{Veth: true}, false,
			[]string{"eth7 is a veth in native XDP mode"}},
		// Generic XDP on an upper device runs after its lower device
		// took the tag out of the bytes: refused, with its own offload
		// off and whatever its lower devices are.
		{"generic, NIC, no lower device", ModeGeneric, vlanFeatures{Kind: "device"}, false, nil},
		{"generic ifb", ModeGeneric, vlanFeatures{Kind: "ifb"}, false, nil},
		{"generic macvlan", ModeGeneric, vlanFeatures{Kind: "macvlan", Lower: "eth0"}, false,
			[]string{"eth7 (macvlan) receives its frames from eth0, whose receive path takes VLAN tags out of the frame", "before generic XDP on eth7 runs", "make the lower device the port instead"}},
		{"generic ipvlan", ModeGeneric, vlanFeatures{Kind: "ipvlan", Lower: "eth0"}, false,
			[]string{"eth7 (ipvlan) receives its frames from eth0", "make the lower device the port"}},
		{"generic VLAN device", ModeGeneric, vlanFeatures{Kind: "vlan", Lower: "eth0"}, false,
			[]string{"eth7 (vlan) receives its frames from eth0"}},
		{"generic device stacked on another namespace's", ModeGeneric, vlanFeatures{Kind: "macvlan", Lower: "ifindex 3 in another network namespace"}, false,
			[]string{"from ifindex 3 in another network namespace"}},
		{"generic bond with ports", ModeGeneric, vlanFeatures{Kind: "bond", Lower: "eth0, eth1"}, false,
			[]string{"eth7 (bond) receives its frames from eth0, eth1,", "make the lower device the port"}},
		{"generic bond, no ports yet", ModeGeneric, vlanFeatures{Kind: "bond"}, false,
			[]string{"eth7 (bond) receives its frames from the devices enslaved to it"}},
		{"generic team", ModeGeneric, vlanFeatures{Kind: "team"}, false, []string{"eth7 (team) receives its frames from the devices enslaved to it"}},
		{"generic bridge", ModeGeneric, vlanFeatures{Kind: "bridge"}, false, []string{"eth7 (bridge) receives its frames from the devices enslaved to it"}},
		{"generic device with a device enslaved", ModeGeneric, vlanFeatures{Kind: "vrf", Lower: "eth0"}, false,
			[]string{"eth7 (vrf) receives its frames from eth0"}},
		// Native XDP runs in the driver of the device itself: the
		// offload rules decide.
		{"native, lower device, offload off", ModeNative, vlanFeatures{Kind: "bond", Lower: "eth0"}, false, nil},
		{"native, lower device, offload on", ModeNative, vlanFeatures{Kind: "bond", Lower: "eth0", RxCTag: true}, false,
			[]string{"ethtool -K eth7 rxvlan off"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tagged, err := checkVLAN("eth7", tt.mode, tt.f)
			if len(tt.errHas) == 0 {
				if err != nil || tagged != tt.tagged {
					t.Fatalf("checkVLAN = %v, %v; want %v, accepted", tagged, err, tt.tagged)
				}
				return
			}
			if err == nil {
				t.Fatalf("checkVLAN accepted the port (tagged %v); want it refused", tagged)
			}
			if !isVLANError(err) {
				t.Errorf("error %q is not a *VLANError", err)
			}
			for _, s := range tt.errHas {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
		})
	}
}

// TestReadVLANFeatures reads a veth's features as the kernel reports them:
// veth implements the VLAN tag kfunc and has rx-vlan-offload on by default;
// ethtool turns the offload off.
func TestReadVLANFeatures(t *testing.T) {
	tn := newTestNS(t)
	var f vlanFeatures
	var err error
	read := func() {
		t.Helper()
		if nsErr := tn.inNS(func() { f, err = readVLANFeatures(tn.aIndex, "xfa") }); nsErr != nil {
			t.Fatal(nsErr)
		}
		if err != nil {
			t.Fatalf("readVLANFeatures: %v", err)
		}
	}
	read()
	if want := (vlanFeatures{MetadataVLANTag: true, RxCTag: true, RxSTag: true, Veth: true, Kind: "veth"}); f != want {
		t.Errorf("veth features %+v, want %+v", f, want)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, err := tn.ns.Command(ctx, "ethtool", "-K", "xfa", "rxvlan", "off", "rx-vlan-stag-hw-parse", "off").CombinedOutput(); err != nil {
		t.Fatalf("ethtool -K xfa rxvlan off: %v\n%s", err, out)
	}
	read()
	if want := (vlanFeatures{MetadataVLANTag: true, Veth: true, Kind: "veth"}); f != want {
		t.Errorf("after ethtool -K xfa rxvlan off rx-vlan-stag-hw-parse off: features %+v, want %+v", f, want)
	}

	// A bridge device has neither the kfunc nor the offload; its ports
	// are its lower devices. A macvlan's lower device is the one it is
	// stacked on.
	readOf := func(name string) vlanFeatures {
		t.Helper()
		l, err := tn.h.LinkByName(name)
		if err != nil {
			t.Fatal(err)
		}
		var f vlanFeatures
		if nsErr := tn.inNS(func() { f, err = readVLANFeatures(l.Attrs().Index, name) }); nsErr != nil || err != nil {
			t.Fatalf("readVLANFeatures(%s): %v %v", name, nsErr, err)
		}
		return f
	}
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "xfd"}}
	if err := tn.h.LinkAdd(br); err != nil {
		t.Fatalf("adding bridge: %v", err)
	}
	if f := readOf("xfd"); f != (vlanFeatures{Kind: "bridge"}) {
		t.Errorf("bridge features %+v, want none but its kind", f)
	}
	if err := tn.h.LinkAdd(&netlink.Macvlan{LinkAttrs: netlink.LinkAttrs{Name: "xfm", ParentIndex: tn.aIndex}, Mode: netlink.MACVLAN_MODE_BRIDGE}); err != nil {
		t.Fatalf("adding macvlan on xfa: %v", err)
	}
	if f := readOf("xfm"); f != (vlanFeatures{Kind: "macvlan", Lower: "xfa"}) {
		t.Errorf("macvlan features %+v, want kind macvlan, lower xfa", f)
	}
	if err := tn.h.LinkSetMaster(tn.b, br); err != nil {
		t.Fatalf("adding xfb to the bridge: %v", err)
	}
	if f := readOf("xfd"); f != (vlanFeatures{Kind: "bridge", Lower: "xfb"}) {
		t.Errorf("features of a bridge with port xfb: %+v, want kind bridge, lower xfb", f)
	}
	// A veth's IFLA_LINK is its peer, not a lower device.
	if f := readOf("xfa"); f.Lower != "" {
		t.Errorf("veth xfa has lower devices %q, want none", f.Lower)
	}
}

// TestAttachVLANRefusal: a veth in generic mode is refused (its peer's
// out-of-band tags cannot be read there) and nothing is attached; native
// mode on the same veth restores tags.
func TestAttachVLANRefusal(t *testing.T) {
	tn := newTestNS(t)
	_, err := tn.attach(t, Options{Ifindex: tn.aIndex, Mode: ModeGeneric})
	if err == nil || !strings.Contains(err.Error(), "attaching XDP to xfa: xfa is a veth in generic XDP mode") ||
		!strings.Contains(err.Error(), "use xdp_mode native") {
		t.Fatalf("generic attach to a veth: got %v, want the VLAN refusal", err)
	}
	if xdp := tn.xdpOf(t, "xfa"); xdp.Attached {
		t.Errorf("refused attach left a program: %+v", xdp)
	}
	p, err := tn.attach(t, Options{Ifindex: tn.aIndex, Mode: ModeNative})
	if err != nil {
		t.Fatalf("native attach: %v", err)
	}
	if !p.RestoresVLANTags() {
		t.Error("native program on veth does not restore VLAN tags")
	}
}

// pushVLAN makes every frame xfb sends carry a VLAN tag (tpid, tci) beside
// its bytes (skb->vlan_tci), as a VLAN device on a veth does: a tc egress
// program calling bpf_skb_vlan_push.
func (tn *testNS) pushVLAN(t *testing.T, tpid, tci uint16) {
	t.Helper()
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.SchedCLS, License: "GPL", Instructions: asm.Instructions{
		asm.Mov.Imm(asm.R2, int32(tpid<<8|tpid>>8)), // network byte order
		asm.Mov.Imm(asm.R3, int32(tci)),
		asm.FnSkbVlanPush.Call(), // (skb in r1)
		asm.Mov.Imm(asm.R0, 0),   // TC_ACT_OK
		asm.Return(),
	}})
	if err != nil {
		t.Fatalf("loading the tc VLAN push program: %v", err)
	}
	t.Cleanup(func() { prog.Close() })
	idx := tn.b.Attrs().Index
	if err := tn.h.QdiscAdd(&netlink.GenericQdisc{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: idx, Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT}, QdiscType: "clsact"}); err != nil {
		t.Fatalf("adding clsact to xfb: %v", err)
	}
	if err := tn.h.FilterAdd(&netlink.BpfFilter{
		FilterAttrs: netlink.FilterAttrs{LinkIndex: idx, Parent: netlink.HANDLE_MIN_EGRESS, Handle: 1, Protocol: unix.ETH_P_ALL, Priority: 1},
		Fd:          prog.FD(), Name: "push_vlan", DirectAction: true,
	}); err != nil {
		t.Fatalf("adding the tc egress filter to xfb: %v", err)
	}
}

// TestRestoreVLANTag sends frames from xfb whose VLAN tag travels beside
// the bytes into the native (device-bound) program on xfa with a socket in
// its map: the socket receives each frame with the tag back in its bytes,
// after the MACs, TPID and TCI as sent; the frame limit counts the 4 tag
// bytes; a frame to the host's MAC goes to the kernel with its tag still
// beside it. An ARP request and a neighbour solicitation for the host's
// addresses are tagged, so they are bridged as they would be with the tag in
// their bytes: they reach the socket with the tag restored.
func TestRestoreVLANTag(t *testing.T) {
	for _, tc := range []struct {
		name      string
		tpid, tci uint16
	}{{"802.1Q", 0x8100, 0x600a}, {"802.1ad", 0x88a8, 0x1123}} {
		t.Run(tc.name, func(t *testing.T) { testRestoreVLANTag(t, tc.tpid, tc.tci) })
	}
}

func testRestoreVLANTag(t *testing.T, tpid, tci uint16) {
	const maxFrame = 200
	tn := newTestNS(t)
	p, err := tn.attach(t, Options{Ifindex: tn.aIndex, Mode: ModeNative, MaxFrame: maxFrame, PassMACs: []net.HardwareAddr{hostMAC},
		PassIPv4: []netip.Addr{hostIP}, PassIPv6: []netip.Addr{hostIP6}})
	if err != nil {
		t.Fatal(err)
	}
	var (
		umem       *xdp.Umem
		sock       *xdp.Socket
		send, host int
	)
	err = tn.ns.Do(func() error {
		if umem, err = xdp.NewUmem(xdp.UmemConfig{FrameCount: 256, FillSize: 128, CompletionSize: 64}); err != nil {
			return err
		}
		if sock, err = umem.NewSocket(xdp.SocketConfig{Ifindex: tn.aIndex, RxSize: 128, TxSize: 64, Bind: xdp.BindCopy}); err != nil {
			return err
		}
		if send, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0); err != nil {
			return err
		}
		// What the kernel gets on xfa: the frames for the host.
		if host, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL))); err != nil {
			return err
		}
		if err := unix.SetsockoptInt(host, unix.SOL_PACKET, unix.PACKET_AUXDATA, 1); err != nil {
			return err
		}
		return unix.Bind(host, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: tn.aIndex})
	})
	t.Cleanup(func() {
		for _, fd := range []int{send, host} {
			if fd > 0 {
				unix.Close(fd)
			}
		}
		if sock != nil {
			sock.Close()
		}
		if umem != nil {
			umem.Close()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	free := make([]uint64, 128)
	if n := umem.Alloc(free); sock.Fill(free[:n]) != n {
		t.Fatal("fill ring refused frames")
	}
	if err := p.SetSocket(0, sock.FD()); err != nil {
		t.Fatal(err)
	}
	// Untagged, an ARP request for the host's address goes to the host
	// (the tagged program reads "no tag" as such).
	c0, err := p.Counters()
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Sendto(send, arpFor(t, peerMAC, layers.ARPRequest, hostIP.AsSlice()), 0, &unix.SockaddrLinklayer{Ifindex: tn.b.Attrs().Index, Halen: 6}); err != nil {
		t.Fatalf("sending: %v", err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		c, err := p.Counters()
		if err != nil {
			t.Fatal(err)
		}
		if c.PassHost-c0.PassHost == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("an untagged ARP request for the host moved PassHost by %d, want 1", c.PassHost-c0.PassHost)
		}
	}
	tn.pushVLAN(t, tpid, tci)

	// Frames of a local experimental EtherType, numbered, so that the
	// namespace's own IPv6 chatter (tagged too) is told apart.
	frame := func(seq, length int, dst net.HardwareAddr) []byte {
		f := make([]byte, length)
		copy(f, dst)
		copy(f[6:], peerMAC)
		binary.BigEndian.PutUint16(f[12:], 0x88b5)
		binary.BigEndian.PutUint32(f[14:], uint32(seq))
		for i := 18; i < length; i++ {
			f[i] = byte(seq + i)
		}
		return f
	}
	// tagged is f as the socket must see it: the tag after the MACs.
	tagged := func(f []byte) []byte {
		out := append([]byte(nil), f[:12]...)
		out = binary.BigEndian.AppendUint16(out, tpid)
		out = binary.BigEndian.AppendUint16(out, tci)
		return append(out, f[12:]...)
	}
	before, err := p.Counters()
	if err != nil {
		t.Fatal(err)
	}
	// Lengths on both sides of the limit: maxFrame-4 bytes fit with the
	// tag, one more does not.
	sent := [][]byte{frame(0, 60, otherMAC), frame(1, 100, otherMAC), frame(2, maxFrame-4, otherMAC), frame(3, maxFrame-3, otherMAC), frame(4, 100, hostMAC)}
	want := map[uint32][]byte{0: tagged(sent[0]), 1: tagged(sent[1]), 2: tagged(sent[2])}
	// Neighbour requests for the host's addresses, told apart by their
	// bytes.
	forHost := [][]byte{arpFor(t, peerMAC, layers.ARPRequest, hostIP.AsSlice()), neighbourSolicitation(t, peerMAC, hostIP6)}
	wantForHost := [][]byte{tagged(forHost[0]), tagged(forHost[1])}
	gotForHost := make([]bool, len(forHost))
	for _, f := range append(sent, forHost...) {
		if err := unix.Sendto(send, f, 0, &unix.SockaddrLinklayer{Ifindex: tn.b.Attrs().Index, Halen: 6}); err != nil {
			t.Fatalf("sending: %v", err)
		}
	}

	descs := make([]xdp.Desc, 64)
	got := map[uint32][]byte{}
	allForHost := func() bool { return !slices.Contains(gotForHost, false) }
	for deadline := time.Now().Add(5 * time.Second); (len(got) < len(want) || !allForHost()) && time.Now().Before(deadline); {
		k := sock.Receive(descs)
		for _, d := range descs[:k] {
			f := umem.Frame(d.Addr, d.Len)
			if len(f) >= 22 && binary.BigEndian.Uint16(f[16:]) == 0x88b5 {
				got[binary.BigEndian.Uint32(f[18:])] = bytes.Clone(f)
			}
			for i, w := range wantForHost {
				gotForHost[i] = gotForHost[i] || bytes.Equal(f, w)
			}
			umem.Free(d.Addr)
		}
		if k == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	for seq, w := range want {
		if g, ok := got[seq]; !ok {
			t.Errorf("frame %d (%d bytes) did not reach the socket", seq, len(sent[seq]))
		} else if !bytes.Equal(g, w) {
			t.Errorf("frame %d reached the socket as\n% x\nwant (tag %#04x %#04x after the MACs)\n% x", seq, g, tpid, tci, w)
		}
	}
	for seq := range got {
		if _, ok := want[seq]; !ok {
			t.Errorf("frame %d reached the socket; it should not have", seq)
		}
	}
	for i, ok := range gotForHost {
		if !ok {
			t.Errorf("%s for the host's address, tagged beside its bytes, did not reach the socket with its tag restored:\n% x", []string{"ARP request", "neighbour solicitation"}[i], wantForHost[i])
		}
	}

	// The frame for the host reaches the kernel with its tag beside it,
	// bytes unchanged.
	var hostFrame []byte
	var aux *unix.TpacketAuxdata
	buf, oob := make([]byte, 2048), make([]byte, 256)
	for deadline := time.Now().Add(5 * time.Second); hostFrame == nil && time.Now().Before(deadline); {
		n, oobn, _, _, err := unix.Recvmsg(host, buf, oob, unix.MSG_DONTWAIT)
		if errors.Is(err, unix.EAGAIN) {
			time.Sleep(time.Millisecond)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if n < 18 || binary.BigEndian.Uint16(buf[12:]) != 0x88b5 || binary.BigEndian.Uint32(buf[14:]) != 4 {
			continue
		}
		hostFrame = bytes.Clone(buf[:n])
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			if m.Header.Level == unix.SOL_PACKET && m.Header.Type == unix.PACKET_AUXDATA {
				aux = (*unix.TpacketAuxdata)(unsafe.Pointer(&m.Data[0]))
			}
		}
	}
	switch {
	case hostFrame == nil:
		t.Error("the frame for the host did not reach the kernel on xfa")
	case !bytes.Equal(hostFrame, sent[4]):
		t.Errorf("the frame for the host reached the kernel as\n% x\nwant it unchanged\n% x", hostFrame, sent[4])
	case aux == nil || aux.Status&unix.TP_STATUS_VLAN_VALID == 0 || aux.Vlan_tci != tci || aux.Vlan_tpid != tpid:
		t.Errorf("the frame for the host reached the kernel with auxdata %+v, want its tag %#04x %#04x beside it", aux, tpid, tci)
	}

	var after Counters
	for deadline := time.Now().Add(5 * time.Second); ; {
		if after, err = p.Counters(); err != nil {
			t.Fatal(err)
		}
		if after.DropTooBig > before.DropTooBig || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The veths' IPv6 chatter is tagged and redirected too: at least.
	if d := after.VLANRestored - before.VLANRestored; d < 5 {
		t.Errorf("VLANRestored rose by %d, want at least 5", d)
	}
	if after.VLANRestored-before.VLANRestored > after.Redirected-before.Redirected {
		t.Errorf("VLANRestored rose by %d, more than Redirected (%d)", after.VLANRestored-before.VLANRestored, after.Redirected-before.Redirected)
	}
	if d := after.DropTooBig - before.DropTooBig; d != 1 {
		t.Errorf("DropTooBig rose by %d, want 1 (the %d-byte frame, %d with its tag)", d, maxFrame-3, maxFrame+1)
	}
	if d := after.PassHost - before.PassHost; d != 1 {
		t.Errorf("PassHost rose by %d, want 1 (the frame to the host's MAC; not the tagged ARP request or neighbour solicitation)", d)
	}
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// TestGenericVethLosesTag checks the kernel behaviour behind refusing a
// veth in generic mode: with the program attached generically (by hand,
// past Attach's refusal) and the veth's own rx-vlan-offload off, a frame
// whose tag its peer kept beside the bytes still reaches the socket
// untagged. If a kernel ever puts the tag back for generic XDP, this fails
// and the refusal can go.
func TestGenericVethLosesTag(t *testing.T) {
	tn := newTestNS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, err := tn.ns.Command(ctx, "ethtool", "-K", "xfa", "rxvlan", "off", "rx-vlan-stag-hw-parse", "off").CombinedOutput(); err != nil {
		t.Fatalf("ethtool -K xfa rxvlan off: %v\n%s", err, out)
	}
	umem, sock, send := genericSocket(t, tn, tn.aIndex, "xfa")
	tn.pushVLAN(t, 0x8100, 10)

	f := make([]byte, 100)
	copy(f, otherMAC)
	copy(f[6:], peerMAC)
	binary.BigEndian.PutUint16(f[12:], 0x88b5)
	if err := unix.Sendto(send, f, 0, &unix.SockaddrLinklayer{Ifindex: tn.b.Attrs().Index, Halen: 6}); err != nil {
		t.Fatal(err)
	}
	if g := awaitFrame(t, sock, umem, f[:12]); !bytes.Equal(g, f) {
		t.Fatalf("generic XDP on veth handed the socket\n% x\nwant the frame as sent, its tag lost\n% x", g, f)
	}
}

// awaitFrame returns the first frame on sock whose MAC addresses are macs
// (the namespace's own chatter is skipped), and fails t if none comes
// within 5 s.
func awaitFrame(t *testing.T, sock *xdp.Socket, umem *xdp.Umem, macs []byte) []byte {
	t.Helper()
	descs := make([]xdp.Desc, 64)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		k := sock.Receive(descs)
		for _, d := range descs[:k] {
			g := bytes.Clone(umem.Frame(d.Addr, d.Len))
			umem.Free(d.Addr)
			if bytes.Equal(g[:12], macs) {
				return g
			}
		}
		if k == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	t.Fatal("the frame did not reach the socket")
	return nil
}

// genericSocket attaches the plain program in generic mode to ifindex
// (named name) in tn's namespace, with an AF_XDP socket on its queue 0
// stocked with frames and in the XSKMAP, and opens an AF_PACKET socket to
// send with; all are closed when t ends.
func genericSocket(t *testing.T, tn *testNS, ifindex int, name string) (umem *xdp.Umem, sock *xdp.Socket, send int) {
	t.Helper()
	objs, err := loadObjects(0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { objs.close() })
	if err := objs.configure(Options{}); err != nil {
		t.Fatal(err)
	}
	err = tn.ns.Do(func() error {
		l, err := attachMode(objs.prog, ifindex, name, ModeGeneric)
		if err != nil {
			return err
		}
		t.Cleanup(func() { l.Close() })
		if umem, err = xdp.NewUmem(xdp.UmemConfig{FrameCount: 256, FillSize: 128, CompletionSize: 64}); err != nil {
			return err
		}
		t.Cleanup(func() { umem.Close() })
		if sock, err = umem.NewSocket(xdp.SocketConfig{Ifindex: ifindex, RxSize: 128, TxSize: 64, Bind: xdp.BindCopy}); err != nil {
			return err
		}
		t.Cleanup(func() { sock.Close() })
		send, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(send) })
	free := make([]uint64, 128)
	if n := umem.Alloc(free); sock.Fill(free[:n]) != n {
		t.Fatal("fill ring refused frames")
	}
	if err := objs.Xsks.Update(uint32(0), uint32(sock.FD()), ebpf.UpdateAny); err != nil {
		t.Fatal(err)
	}
	return umem, sock, send
}
