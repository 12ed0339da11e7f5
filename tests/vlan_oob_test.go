package tests

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/xdpfwd/xdpfwd/internal/topo"
)

// TestVLANOutOfBandTag sends tagged frames whose tag travels beside the
// frame bytes, as a VLAN device or tc on a veth leaves it: host 1's eth0
// has a tc egress program that tags every frame with VID 10 via
// bpf_skb_vlan_push. Host 2 has no VLAN 10 interface, so a tagged echo
// request is not for it. Through a kernel bridge (the oracle) and through
// xdpfwd, host 2 must receive the echo requests tagged with VID 10 and
// leave them unanswered; before this was fixed, xdpfwd delivered them
// untagged and host 2 answered: the tag was lost and VLAN isolation with
// it.
func TestVLANOutOfBandTag(t *testing.T) {
	t.Parallel()
	for _, path := range []string{"kernel bridge", "xdpfwd"} {
		t.Run(path, func(t *testing.T) {
			s := star(t, topo.VethOptions{}, topo.VethOptions{})
			h1, h2 := s.Hosts[0], s.Hosts[1]
			// Static neighbours: the echo requests themselves cross,
			// not ARP.
			if err := h1.Neigh(topo.HostIf, h2.IP.String(), h2.HWAddr); err != nil {
				t.Fatal(err)
			}
			if err := h2.Neigh(topo.HostIf, h1.IP.String(), h1.HWAddr); err != nil {
				t.Fatal(err)
			}
			var d *daemon
			if path == "xdpfwd" {
				d = runDaemon(t, s.Switch, bridgeConfig(h1.Port, h2.Port))
			} else {
				oobKernelBridge(t, s.Switch, h1.Port, h2.Port)
			}
			// Untagged, the hosts reach each other: what follows fails
			// because of the tag alone.
			ping(t, h1, h2.IP)

			oobPushVLAN(t, h1.Namespace, topo.HostIf, 10)
			capt := openOOBCapture(t, h2.Namespace, topo.HostIf)
			pingFails(t, h1, h2.IP)

			frames := capt.drain(t)
			var echoes, tagged int
			for _, f := range frames {
				if !oobEqualMAC(f.src, h1.HWAddr) || !f.isEchoRequest() {
					continue
				}
				echoes++
				if f.tagged && f.tpid == unix.ETH_P_8021Q && f.tci&0x0fff == 10 {
					tagged++
				} else {
					t.Errorf("echo request from host 1 arrived at host 2 %s, want tagged 802.1Q VID 10", f.describeTag())
				}
			}
			if echoes < 3 {
				t.Fatalf("host 2 captured %d echo requests from host 1 (of %d frames), want at least 3", echoes, len(frames))
			}
			t.Logf("host 2 captured %d echo requests from host 1, %d with 802.1Q VID 10", echoes, tagged)
			if d != nil {
				if n := portOf(t, d.stats(), h1.Port).XDP.VLANRestored; n < uint64(echoes) {
					t.Errorf("xdp vlan_restored on %s = %d, want at least the %d echo requests", h1.Port, n, echoes)
				}
			}
		})
	}
}

// TestVLANGenericVethRefused: in generic mode the XDP program cannot read
// the tags a veth's peer keeps beside the frame, so xdpfwd refuses such a
// port at start-up, naming it and saying what to do, and leaves nothing
// attached (the native port before it included).
func TestVLANGenericVethRefused(t *testing.T) {
	t.Parallel()
	s := star(t, topo.VethOptions{}, topo.VethOptions{})
	h1, h2 := s.Hosts[0], s.Hosts[1]
	config := fmt.Sprintf(`ports:
  - interface: %s
    xdp_mode: native
  - interface: %s
    xdp_mode: generic
bridges:
  - name: br0
    ports: [%[1]s, %[2]s]
`, h2.Port, h1.Port)
	stderr := assertFailed(t, startDaemon(t, s.Switch, config))
	for _, want := range []string{"port " + h1.Port + ": ", h1.Port + " is a veth in generic XDP mode", "use xdp_mode native"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not say %q:\n%s", want, stderr)
		}
	}
	assertNoXDP(t, s.Switch, h1.Port, h2.Port)
}

// oobKernelBridge joins ports in sw with a Linux bridge (VLAN-unaware, as
// xdpfwd's bridge without vlans).
func oobKernelBridge(t *testing.T, sw *topo.Namespace, ports ...string) {
	t.Helper()
	h := sw.Netlink()
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "kbr0"}}
	if err := h.LinkAdd(br); err != nil {
		t.Fatalf("adding kernel bridge in %s: %v", sw.Name(), err)
	}
	for _, p := range ports {
		l, err := h.LinkByName(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.LinkSetMaster(l, br); err != nil {
			t.Fatalf("adding %s to the kernel bridge: %v", p, err)
		}
	}
	if err := h.LinkSetUp(br); err != nil {
		t.Fatalf("bringing the kernel bridge up: %v", err)
	}
}

// oobPushVLAN tags every frame that ifname in ns sends with 802.1Q VID
// vid, kept beside the frame bytes (skb->vlan_tci), as a VLAN device on a
// veth does: a tc egress program on a clsact qdisc calling
// bpf_skb_vlan_push, built here (no clang at test time; tc's act_vlan is
// not in this kernel).
func oobPushVLAN(t *testing.T, ns *topo.Namespace, ifname string, vid int32) {
	t.Helper()
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name: "push_vlan",
		Type: ebpf.SchedCLS,
		Instructions: asm.Instructions{
			// bpf_skb_vlan_push(skb (r1), oobHtons(ETH_P_8021Q), vid)
			asm.Mov.Imm(asm.R2, int32(oobHtons(unix.ETH_P_8021Q))),
			asm.Mov.Imm(asm.R3, vid),
			asm.FnSkbVlanPush.Call(),
			asm.Mov.Imm(asm.R0, 0), // TC_ACT_OK
			asm.Return(),
		},
		License: "GPL",
	})
	if err != nil {
		t.Fatalf("loading the tc VLAN push program: %v", err)
	}
	t.Cleanup(func() { prog.Close() })
	h := ns.Netlink()
	l, err := h.LinkByName(ifname)
	if err != nil {
		t.Fatal(err)
	}
	qdisc := &netlink.GenericQdisc{
		QdiscAttrs: netlink.QdiscAttrs{LinkIndex: l.Attrs().Index, Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT},
		QdiscType:  "clsact",
	}
	if err := h.QdiscAdd(qdisc); err != nil {
		t.Fatalf("adding clsact to %s in %s: %v", ifname, ns.Name(), err)
	}
	filter := &netlink.BpfFilter{
		FilterAttrs: netlink.FilterAttrs{
			LinkIndex: l.Attrs().Index, Parent: netlink.HANDLE_MIN_EGRESS,
			Handle: 1, Protocol: unix.ETH_P_ALL, Priority: 1,
		},
		Fd: prog.FD(), Name: "push_vlan", DirectAction: true,
	}
	if err := h.FilterAdd(filter); err != nil {
		t.Fatalf("adding the tc egress filter on %s in %s: %v", ifname, ns.Name(), err)
	}
}

// oobCapture is an AF_PACKET socket on one interface that reports every
// frame's VLAN tag, whether it is in the bytes or beside them
// (PACKET_AUXDATA: the receiving stack moves an in-band tag there).
type oobCapture struct{ fd int }

// openOOBCapture opens a capture on ifname in ns, closed when t ends.
func openOOBCapture(t *testing.T, ns *topo.Namespace, ifname string) *oobCapture {
	t.Helper()
	c := &oobCapture{fd: -1}
	err := ns.Do(func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(oobHtons(unix.ETH_P_ALL)))
		if err != nil {
			return err
		}
		c.fd = fd
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_AUXDATA, 1); err != nil {
			return fmt.Errorf("PACKET_AUXDATA: %w", err)
		}
		return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: oobHtons(unix.ETH_P_ALL), Ifindex: ifi.Index})
	})
	if c.fd >= 0 {
		t.Cleanup(func() { unix.Close(c.fd) })
	}
	if err != nil {
		t.Fatalf("capture on %s in %s: %v", ifname, ns.Name(), err)
	}
	return c
}

// oobFrame is one frame a capture received and its outermost VLAN
// tag, if any; payload starts after the tag (at the EtherType).
type oobFrame struct {
	src       net.HardwareAddr
	tagged    bool
	tpid, tci uint16
	etherType uint16
	payload   []byte
}

// drain returns the frames queued on the capture, without waiting.
func (c *oobCapture) drain(t *testing.T) []oobFrame {
	t.Helper()
	var out []oobFrame
	buf := make([]byte, 65536)
	oob := make([]byte, 256)
	for {
		n, oobn, _, _, err := unix.Recvmsg(c.fd, buf, oob, unix.MSG_DONTWAIT)
		if errors.Is(err, unix.EAGAIN) {
			return out
		}
		if err != nil {
			t.Fatalf("reading the capture: %v", err)
		}
		if n < 14 {
			continue
		}
		f := oobFrame{src: net.HardwareAddr(append([]byte(nil), buf[6:12]...))}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil {
			t.Fatalf("parsing the capture's control messages: %v", err)
		}
		for _, m := range msgs {
			if m.Header.Level != unix.SOL_PACKET || m.Header.Type != unix.PACKET_AUXDATA || len(m.Data) < int(unsafe.Sizeof(unix.TpacketAuxdata{})) {
				continue
			}
			aux := (*unix.TpacketAuxdata)(unsafe.Pointer(&m.Data[0]))
			if aux.Status&unix.TP_STATUS_VLAN_VALID != 0 {
				f.tagged, f.tci, f.tpid = true, aux.Vlan_tci, unix.ETH_P_8021Q
				if aux.Status&unix.TP_STATUS_VLAN_TPID_VALID != 0 {
					f.tpid = aux.Vlan_tpid
				}
			}
		}
		off := 12
		if et := binary.BigEndian.Uint16(buf[12:]); !f.tagged && (et == unix.ETH_P_8021Q || et == unix.ETH_P_8021AD) && n >= 18 {
			f.tagged, f.tpid, f.tci = true, et, binary.BigEndian.Uint16(buf[14:])
			off = 16
		}
		f.etherType = binary.BigEndian.Uint16(buf[off:])
		f.payload = append([]byte(nil), buf[off+2:n]...)
		out = append(out, f)
	}
}

// isEchoRequest tells whether f carries an IPv4 ICMP echo request.
func (f oobFrame) isEchoRequest() bool {
	p := f.payload
	if f.etherType != unix.ETH_P_IP || len(p) < 20 || p[0]>>4 != 4 || p[9] != unix.IPPROTO_ICMP {
		return false
	}
	ihl := int(p[0]&0x0f) * 4
	return len(p) > ihl && p[ihl] == 8
}

func (f oobFrame) describeTag() string {
	if !f.tagged {
		return "untagged"
	}
	return fmt.Sprintf("with TPID %#04x TCI %#04x (VID %d)", f.tpid, f.tci, f.tci&0x0fff)
}

func oobEqualMAC(a, b net.HardwareAddr) bool { return string(a) == string(b) }

// oobHtons is v in network byte order, as socket calls take EtherTypes.
func oobHtons(v uint16) uint16 { return v<<8 | v>>8 }
