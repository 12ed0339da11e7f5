package bpf

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// isVLANError tells whether err is a refusal by checkVLAN.
func isVLANError(err error) bool {
	var ve *VLANError
	return errors.As(err, &ve)
}

// addMacvlan adds macvlan device xfm on xfa, up, and returns it.
func (tn *testNS) addMacvlan(t *testing.T) netlink.Link {
	t.Helper()
	if err := tn.h.LinkAdd(&netlink.Macvlan{LinkAttrs: netlink.LinkAttrs{Name: "xfm", ParentIndex: tn.aIndex}, Mode: netlink.MACVLAN_MODE_BRIDGE}); err != nil {
		t.Fatalf("adding macvlan xfm on xfa: %v", err)
	}
	l, err := tn.h.LinkByName("xfm")
	if err != nil {
		t.Fatal(err)
	}
	if err := tn.h.LinkSetUp(l); err != nil {
		t.Fatalf("bringing xfm up: %v", err)
	}
	return l
}

// TestAttachUpperRefused: a macvlan has no native XDP, so auto mode falls
// back to generic, where the kernel has taken the VLAN tag out of the
// frame on the lower device before the program runs
// (TestGenericMacvlanLosesTag): Attach refuses it in auto and generic mode,
// names the lower device, and leaves nothing attached. A bridge is refused
// in generic mode, with or without ports.
func TestAttachUpperRefused(t *testing.T) {
	tn := newTestNS(t)
	mv := tn.addMacvlan(t)
	for _, mode := range []Mode{ModeAuto, ModeGeneric} {
		p, err := tn.attach(t, Options{Ifindex: mv.Attrs().Index, Mode: mode})
		if err == nil {
			t.Fatalf("%v attach to macvlan xfm succeeded in %v mode; want it refused", mode, p.Mode())
		}
		if !isVLANError(err) {
			t.Errorf("%v attach to macvlan xfm: error %q is not a *VLANError", mode, err)
		}
		for _, want := range []string{"attaching XDP to xfm: xfm (macvlan) receives its frames from xfa", "make the lower device the port instead"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%v attach to macvlan xfm: error %q does not say %q", mode, err, want)
			}
		}
		if x := tn.xdpOf(t, "xfm"); x.Attached {
			t.Errorf("refused %v attach left a program on xfm: %+v", mode, x)
		}
	}

	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "xfd"}}
	if err := tn.h.LinkAdd(br); err != nil {
		t.Fatalf("adding bridge: %v", err)
	}
	l, err := tn.h.LinkByName("xfd")
	if err != nil {
		t.Fatal(err)
	}
	check := func(want string) {
		t.Helper()
		_, err := tn.attach(t, Options{Ifindex: l.Attrs().Index, Mode: ModeAuto})
		if !isVLANError(err) || !strings.Contains(err.Error(), want) {
			t.Errorf("auto attach to bridge xfd: got %v, want the refusal saying %q", err, want)
		}
	}
	check("xfd (bridge) receives its frames from the devices enslaved to it")
	if err := tn.h.LinkSetMaster(tn.b, br); err != nil {
		t.Fatalf("adding xfb to the bridge: %v", err)
	}
	check("xfd (bridge) receives its frames from xfb,")
}

// TestGenericMacvlanLosesTag checks the kernel behaviour behind refusing
// upper devices in generic mode: with the program attached generically to
// a macvlan (by hand, past Attach's refusal), a frame that crosses the wire
// with its 802.1Q tag in its bytes reaches the socket untagged, the lower
// device (xfa) having taken the tag out of the bytes before the macvlan
// got the frame. If a kernel ever puts the tag back for generic XDP, this
// fails and the refusal can go.
func TestGenericMacvlanLosesTag(t *testing.T) {
	tn := newTestNS(t)
	mv := tn.addMacvlan(t)
	mvIndex := mv.Attrs().Index
	umem, sock, send := genericSocket(t, tn, mvIndex, "xfm")

	// To the macvlan's MAC, VID 10 in the bytes.
	f := make([]byte, 100)
	copy(f, mv.Attrs().HardwareAddr)
	copy(f[6:], peerMAC)
	binary.BigEndian.PutUint16(f[12:], 0x8100)
	binary.BigEndian.PutUint16(f[14:], 10)
	binary.BigEndian.PutUint16(f[16:], 0x88b5)
	untagged := append(bytes.Clone(f[:12]), f[16:]...)
	if err := unix.Sendto(send, f, 0, &unix.SockaddrLinklayer{Ifindex: tn.b.Attrs().Index, Halen: 6}); err != nil {
		t.Fatal(err)
	}
	if g := awaitFrame(t, sock, umem, f[:12]); !bytes.Equal(g, untagged) {
		t.Fatalf("generic XDP on a macvlan handed the socket\n% x\nwant the frame as sent without its tag\n% x", g, untagged)
	}
}

// TestPortRecheck is Port.CheckVLAN's decision over features read after
// Attach: the offload turned on under a port whose program does not
// restore tags fails it, with the command that turns it off; a port whose
// program restores them keeps fitting.
func TestPortRecheck(t *testing.T) {
	generic := &Port{mode: ModeGeneric, name: "eth7"}
	nativePlain := &Port{mode: ModeNative, name: "eth7"}
	nativeTagged := &Port{mode: ModeNative, name: "eth7", tagged: true}
	tests := []struct {
		name   string
		p      *Port
		f      vlanFeatures
		errHas string // "": still fits
	}{
		{"generic, offload still off", generic, vlanFeatures{Kind: "device"}, ""},
		{"generic, rxvlan turned on", generic, vlanFeatures{Kind: "device", RxCTag: true}, "ethtool -K eth7 rxvlan off"},
		{"generic, stag turned on", generic, vlanFeatures{Kind: "device", RxSTag: true}, "ethtool -K eth7 rx-vlan-stag-hw-parse off"},
		{"generic, a device enslaved", generic, vlanFeatures{Kind: "vrf", Lower: "eth0"}, "eth7 (vrf) receives its frames from eth0"},
		{"native without metadata, rxvlan turned on", nativePlain, vlanFeatures{Kind: "device", RxCTag: true}, "eth7 strips VLAN tags on receive"},
		{"native without metadata, offload off", nativePlain, vlanFeatures{Kind: "device"}, ""},
		{"native restoring, rxvlan on", nativeTagged, vlanFeatures{Kind: "veth", Veth: true, MetadataVLANTag: true, RxCTag: true, RxSTag: true}, ""},
		{"native plain, metadata appeared", nativePlain, vlanFeatures{Kind: "device", MetadataVLANTag: true}, "loaded without reading them"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.recheck("eth7", tt.f)
			if tt.errHas == "" {
				if err != nil {
					t.Fatalf("recheck: %v; want the port to fit", err)
				}
				return
			}
			if !isVLANError(err) || !strings.Contains(err.Error(), tt.errHas) {
				t.Fatalf("recheck: %v; want a *VLANError saying %q", err, tt.errHas)
			}
		})
	}
}

// TestPortCheckVLAN runs Port.CheckVLAN on real ports: a native veth
// restores tags, so it fits whatever its rx-vlan-offload says; a generic
// ifb fits. (No device this kernel can make in a namespace lets ethtool
// turn rx-vlan-offload on besides veth, hence TestPortRecheck.)
func TestPortCheckVLAN(t *testing.T) {
	tn := newTestNS(t)
	p, err := tn.attach(t, Options{Ifindex: tn.aIndex, Mode: ModeNative})
	if err != nil {
		t.Fatal(err)
	}
	check := func(p *Port, what string) {
		t.Helper()
		var err error
		if nsErr := tn.inNS(func() { err = p.CheckVLAN() }); nsErr != nil {
			t.Fatal(nsErr)
		}
		if err != nil {
			t.Errorf("CheckVLAN on %s: %v; want it to fit", what, err)
		}
	}
	check(p, "native veth, rxvlan on")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, err := tn.ns.Command(ctx, "ethtool", "-K", "xfa", "rxvlan", "off").CombinedOutput(); err != nil {
		t.Fatalf("ethtool -K xfa rxvlan off: %v\n%s", err, out)
	}
	check(p, "native veth, rxvlan off")

	if err := tn.h.LinkAdd(&netlink.Ifb{LinkAttrs: netlink.LinkAttrs{Name: "xfd"}}); err != nil {
		t.Fatalf("adding ifb: %v", err)
	}
	l, err := tn.h.LinkByName("xfd")
	if err != nil {
		t.Fatal(err)
	}
	g, err := tn.attach(t, Options{Ifindex: l.Attrs().Index, Mode: ModeGeneric})
	if err != nil {
		t.Fatal(err)
	}
	check(g, "generic ifb")

	// The interface gone: an error that is not a refusal.
	if err := tn.h.LinkDel(l); err != nil {
		t.Fatal(err)
	}
	if nsErr := tn.inNS(func() { err = g.CheckVLAN() }); nsErr != nil {
		t.Fatal(nsErr)
	}
	if err == nil || isVLANError(err) || !strings.Contains(err.Error(), "checking the VLAN features of xfd") {
		t.Errorf("CheckVLAN on a deleted interface: %v; want a read error that is not a *VLANError", err)
	}
}
