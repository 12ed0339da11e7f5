package bpf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/sys/unix"

	"github.com/xdpfwd/xdpfwd/xdp"
)

var (
	hostMAC  = net.HardwareAddr{0x02, 0x00, 0x5e, 0x10, 0x00, 0x01}
	peerMAC  = net.HardwareAddr{0x02, 0x00, 0x5e, 0x10, 0x00, 0x02}
	otherMAC = net.HardwareAddr{0x02, 0x00, 0x5e, 0x10, 0x00, 0x03}
	bcastMAC = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
)

func serialize(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, ls...); err != nil {
		t.Fatalf("serializing frame: %v", err)
	}
	return bytes.Clone(buf.Bytes())
}

func udpFrame(t testing.TB, src, dst net.HardwareAddr) []byte {
	eth := &layers.Ethernet{SrcMAC: src, DstMAC: dst, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{
		Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP,
		SrcIP: net.IPv4(10, 99, 0, 1), DstIP: net.IPv4(10, 99, 0, 2),
	}
	udp := &layers.UDP{SrcPort: 40000, DstPort: 5201}
	if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	return serialize(t, eth, ip, udp, gopacket.Payload("xdpfwd"))
}

func arpRequest(t testing.TB, src net.HardwareAddr) []byte {
	return arpFor(t, src, layers.ARPRequest, []byte{10, 99, 0, 2})
}

// arpFor is an ARP packet of operation op from src asking for target.
func arpFor(t testing.TB, src net.HardwareAddr, op uint16, target []byte) []byte {
	eth := &layers.Ethernet{SrcMAC: src, DstMAC: bcastMAC, EthernetType: layers.EthernetTypeARP}
	arp := &layers.ARP{
		AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4,
		HwAddressSize: 6, ProtAddressSize: 4, Operation: op,
		SourceHwAddress: src, SourceProtAddress: []byte{10, 99, 0, 1},
		DstHwAddress: make([]byte, 6), DstProtAddress: target,
	}
	return serialize(t, eth, arp)
}

// hostIP is the pass IPv4 address of the test objects; maxFrame their frame
// length limit.
var (
	hostIP  = netip.MustParseAddr("10.99.0.7")
	hostIP6 = netip.MustParseAddr("2001:db8::7")
)

const maxFrame = 3000

// neighbourSolicitation is an ICMPv6 NS from src asking for target, sent to
// target's solicited-node multicast group (RFC 4861 4.3).
func neighbourSolicitation(t testing.TB, src net.HardwareAddr, target netip.Addr) []byte {
	b := target.As16()
	group := net.IP{0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, b[13], b[14], b[15]}
	eth := &layers.Ethernet{SrcMAC: src, DstMAC: net.HardwareAddr{0x33, 0x33, 0xff, b[13], b[14], b[15]}, EthernetType: layers.EthernetTypeIPv6}
	ip := &layers.IPv6{Version: 6, HopLimit: 255, NextHeader: layers.IPProtocolICMPv6,
		SrcIP: net.ParseIP("fe80::1"), DstIP: group}
	icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeNeighborSolicitation, 0)}
	if err := icmp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	ns := &layers.ICMPv6NeighborSolicitation{TargetAddress: target.AsSlice()}
	return serialize(t, eth, ip, icmp, ns)
}

// loadTestObjects loads the program and maps without attaching them, with
// hostMAC as the pass MAC, hostIP as the pass IPv4 address and maxFrame as
// the frame length limit.
func loadTestObjects(t testing.TB) *objects {
	t.Helper()
	objs, err := loadObjects(0)
	if err != nil {
		t.Fatalf("loading: %v", err)
	}
	t.Cleanup(func() { objs.close() })
	if err := objs.configure(Options{PassMACs: []net.HardwareAddr{hostMAC}, PassIPv4: []netip.Addr{hostIP},
		PassIPv6: []netip.Addr{hostIP6}, MaxFrame: maxFrame}); err != nil {
		t.Fatalf("configuring: %v", err)
	}
	return objs
}

// withSocket puts a bound AF_XDP socket into slot 0 of objs' XSKMAP, so
// that bpf_redirect_map finds it and the program redirects: under
// BPF_PROG_TEST_RUN every frame arrives on RX queue 0, and a redirect only
// returns XDP_REDIRECT (no frame reaches the socket). The kernel takes only
// a bound socket with an RX ring into the map; it is bound to queue 0 of a
// veth in a namespace of its own, with no XDP program there.
func withSocket(tb testing.TB, objs *objects) {
	tb.Helper()
	tn := newTestNS(tb)
	var umem *xdp.Umem
	var sock *xdp.Socket
	var err error
	if nsErr := tn.inNS(func() {
		umem, err = xdp.NewUmem(xdp.UmemConfig{FrameCount: 64, FillSize: 32, CompletionSize: 32})
		if err != nil {
			return
		}
		sock, err = umem.NewSocket(xdp.SocketConfig{Ifindex: tn.aIndex, Queue: 0, RxSize: 32, TxSize: 32, Bind: xdp.BindCopy})
	}); nsErr != nil {
		tb.Fatalf("entering netns: %v", nsErr)
	}
	if umem != nil {
		tb.Cleanup(func() { umem.Close() })
	}
	if err != nil {
		tb.Fatalf("AF_XDP socket for the XSKMAP: %v", err)
	}
	tb.Cleanup(func() { sock.Close() })
	if err := objs.Xsks.Update(uint32(0), uint32(sock.FD()), ebpf.UpdateAny); err != nil {
		tb.Fatalf("putting the socket into slot 0: %v", err)
	}
	tb.Cleanup(func() { objs.Xsks.Delete(uint32(0)) })
}

// runFrame runs the program once over frame and returns its verdict and how
// each counter moved.
func runFrame(t testing.TB, objs *objects, frame []byte) (uint32, Counters) {
	t.Helper()
	verdict, delta, err := tryFrame(t, objs, frame)
	if err != nil {
		t.Fatalf("running the program over %d bytes: %v", len(frame), err)
	}
	return verdict, delta
}

// tryFrame is runFrame returning the error of BPF_PROG_TEST_RUN.
func tryFrame(t testing.TB, objs *objects, frame []byte) (uint32, Counters, error) {
	t.Helper()
	before, err := objs.counters()
	if err != nil {
		t.Fatal(err)
	}
	verdict, runErr := objs.prog.Run(&ebpf.RunOptions{Data: frame})
	after, err := objs.counters()
	if err != nil {
		t.Fatal(err)
	}
	return verdict, Counters{
		Redirected:     after.Redirected - before.Redirected,
		PassNoSocket:   after.PassNoSocket - before.PassNoSocket,
		PassHost:       after.PassHost - before.PassHost,
		DropMalformed:  after.DropMalformed - before.DropMalformed,
		RedirectFailed: after.RedirectFailed - before.RedirectFailed,
		DropTooBig:     after.DropTooBig - before.DropTooBig,
		VLANRestored:   after.VLANRestored - before.VLANRestored,
	}, runErr
}

// checkShort checks the verdict on a frame shorter than an Ethernet header.
// Linux 6.18 refuses such input to BPF_PROG_TEST_RUN with EINVAL (and
// bpf_xdp_adjust_head and _tail refuse to shrink a frame below 14 bytes),
// so there the check is that the program did not run; where the kernel does
// run it, the frame must be dropped and counted as malformed.
func checkShort(t *testing.T, objs *objects, frame []byte) {
	t.Helper()
	verdict, delta, err := tryFrame(t, objs, frame)
	switch {
	case errors.Is(err, unix.EINVAL):
		if delta != (Counters{}) {
			t.Errorf("kernel refused the %d-byte frame, yet counters moved by %+v", len(frame), delta)
		}
	case err != nil:
		t.Fatalf("running the program over %d bytes: %v", len(frame), err)
	case verdict != xdpDrop || delta != (Counters{DropMalformed: 1}):
		t.Errorf("%d-byte frame: verdict %d, counters moved by %+v; want drop, DropMalformed 1", len(frame), verdict, delta)
	}
}

const (
	xdpDrop     = 1
	xdpPass     = 2
	xdpRedirect = 4
)

func TestProgramVerdicts(t *testing.T) {
	objs := loadTestObjects(t)
	unicast := udpFrame(t, peerMAC, otherMAC)
	tests := []struct {
		name    string
		frame   []byte
		verdict uint32
		delta   Counters
	}{
		{"empty", nil, xdpDrop, Counters{DropMalformed: 1}},
		{"six bytes", unicast[:6], xdpDrop, Counters{DropMalformed: 1}},
		{"13 bytes", unicast[:13], xdpDrop, Counters{DropMalformed: 1}},
		{"13 bytes to pass MAC", udpFrame(t, peerMAC, hostMAC)[:13], xdpDrop, Counters{DropMalformed: 1}},
		{"bare Ethernet header", unicast[:14], xdpPass, Counters{PassNoSocket: 1}},
		{"unicast, empty slot", unicast, xdpPass, Counters{PassNoSocket: 1}},
		{"to pass MAC", udpFrame(t, peerMAC, hostMAC), xdpPass, Counters{PassHost: 1}},
		{"from pass MAC", udpFrame(t, hostMAC, peerMAC), xdpPass, Counters{PassNoSocket: 1}},
		{"pass MAC but last byte", udpFrame(t, peerMAC, net.HardwareAddr{0x02, 0x00, 0x5e, 0x10, 0x00, 0x00}), xdpPass, Counters{PassNoSocket: 1}},
		{"broadcast ARP, empty slot", arpRequest(t, peerMAC), xdpPass, Counters{PassNoSocket: 1}},
		{"ARP request for the host", arpFor(t, peerMAC, layers.ARPRequest, hostIP.AsSlice()), xdpPass, Counters{PassHost: 1}},
		{"ARP reply about the host's address", arpFor(t, peerMAC, layers.ARPReply, hostIP.AsSlice()), xdpPass, Counters{PassNoSocket: 1}},
		{"truncated ARP request for the host", arpFor(t, peerMAC, layers.ARPRequest, hostIP.AsSlice())[:14+20], xdpPass, Counters{PassNoSocket: 1}},
		{"ARP request with a 2-byte hardware address", func() []byte {
			f := arpFor(t, peerMAC, layers.ARPRequest, hostIP.AsSlice())
			f[14+4] = 2
			return f
		}(), xdpPass, Counters{PassNoSocket: 1}},
		{"neighbour solicitation for the host", neighbourSolicitation(t, peerMAC, hostIP6), xdpPass, Counters{PassHost: 1}},
		{"neighbour solicitation, same low 24 bits", neighbourSolicitation(t, peerMAC, netip.MustParseAddr("fd00::7")), xdpPass, Counters{PassNoSocket: 1}},
		{"truncated neighbour solicitation", neighbourSolicitation(t, peerMAC, hostIP6)[:14+40+8+8], xdpPass, Counters{PassNoSocket: 1}},
		{"too long for a socket, but the slot is empty", append(bytes.Clone(unicast), make([]byte, maxFrame+1-len(unicast))...), xdpPass, Counters{PassNoSocket: 1}},
		{"frame of the largest length", append(bytes.Clone(unicast), make([]byte, maxFrame-len(unicast))...), xdpPass, Counters{PassNoSocket: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if len(tt.frame) < 14 {
				checkShort(t, objs, tt.frame)
				return
			}
			verdict, delta := runFrame(t, objs, tt.frame)
			if verdict != tt.verdict {
				t.Errorf("verdict = %d, want %d", verdict, tt.verdict)
			}
			if delta != tt.delta {
				t.Errorf("counters moved by %+v, want %+v", delta, tt.delta)
			}
		})
	}
}

func TestPassMACsOption(t *testing.T) {
	objs, err := loadObjects(0)
	if err != nil {
		t.Fatal(err)
	}
	defer objs.close()
	macs := []net.HardwareAddr{hostMAC, bcastMAC}
	if err := objs.setPassMACs(macs); err != nil {
		t.Fatal(err)
	}
	for _, mac := range macs {
		verdict, delta := runFrame(t, objs, udpFrame(t, peerMAC, mac))
		if verdict != xdpPass || delta != (Counters{PassHost: 1}) {
			t.Errorf("frame to %v: verdict %d, counters moved by %+v; want pass to host", mac, verdict, delta)
		}
	}
	// With the broadcast address in the set, ARP requests count as host
	// traffic.
	if _, delta := runFrame(t, objs, arpRequest(t, peerMAC)); delta != (Counters{PassHost: 1}) {
		t.Errorf("ARP request: counters moved by %+v, want PassHost 1", delta)
	}
}

func TestPassMACsInvalid(t *testing.T) {
	objs, err := loadObjects(0)
	if err != nil {
		t.Fatal(err)
	}
	defer objs.close()
	if err := objs.setPassMACs([]net.HardwareAddr{{1, 2, 3}}); err == nil {
		t.Error("a 3-byte pass MAC was accepted")
	}
	eui64 := net.HardwareAddr{0x02, 0, 0, 0, 0, 0, 0, 1}
	if err := objs.setPassMACs([]net.HardwareAddr{eui64}); err == nil {
		t.Error("an 8-byte pass MAC was accepted")
	}
	tooMany := make([]net.HardwareAddr, MaxPassMACs+1)
	for i := range tooMany {
		tooMany[i] = net.HardwareAddr{0x02, 0, 0, 0, byte(i >> 8), byte(i)}
	}
	if err := objs.setPassMACs(tooMany); err == nil {
		t.Errorf("%d pass MACs were accepted", len(tooMany))
	}
	if err := objs.setPassMACs(tooMany[:MaxPassMACs]); err != nil {
		t.Errorf("%d pass MACs: %v", MaxPassMACs, err)
	}
}

// TestProgramRedirect runs the program with a socket in the XSKMAP slot of
// queue 0, where frames bound for the fast path are redirected or, when
// longer than a UMEM frame holds, dropped; the host's own frames still go
// to the kernel.
func TestProgramRedirect(t *testing.T) {
	objs := loadTestObjects(t)
	withSocket(t, objs)
	unicast := udpFrame(t, peerMAC, otherMAC)
	tests := []struct {
		name    string
		frame   []byte
		verdict uint32
		delta   Counters
	}{
		{"unicast", unicast, xdpRedirect, Counters{Redirected: 1}},
		{"bare Ethernet header", unicast[:14], xdpRedirect, Counters{Redirected: 1}},
		{"broadcast ARP request, not for the host", arpRequest(t, peerMAC), xdpRedirect, Counters{Redirected: 1}},
		{"to pass MAC", udpFrame(t, peerMAC, hostMAC), xdpPass, Counters{PassHost: 1}},
		{"ARP request for the host", arpFor(t, peerMAC, layers.ARPRequest, hostIP.AsSlice()), xdpPass, Counters{PassHost: 1}},
		{"neighbour solicitation for the host", neighbourSolicitation(t, peerMAC, hostIP6), xdpPass, Counters{PassHost: 1}},
		{"neighbour solicitation for another address", neighbourSolicitation(t, peerMAC, netip.MustParseAddr("2001:db8::8")), xdpRedirect, Counters{Redirected: 1}},
		{"frame of the largest length", append(bytes.Clone(unicast), make([]byte, maxFrame-len(unicast))...), xdpRedirect, Counters{Redirected: 1}},
		{"one byte too long", append(bytes.Clone(unicast), make([]byte, maxFrame+1-len(unicast))...), xdpDrop, Counters{DropTooBig: 1}},
		{"too long, to pass MAC", append(udpFrame(t, peerMAC, hostMAC), make([]byte, maxFrame)...), xdpPass, Counters{PassHost: 1}},
		{"longest frame the fuzz target runs", append(bytes.Clone(unicast), make([]byte, maxTestRun-len(unicast))...), xdpDrop, Counters{DropTooBig: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			verdict, delta := runFrame(t, objs, tt.frame)
			if verdict != tt.verdict {
				t.Errorf("verdict = %d, want %d", verdict, tt.verdict)
			}
			if delta != tt.delta {
				t.Errorf("counters moved by %+v, want %+v", delta, tt.delta)
			}
		})
	}
}

// model is the whole logic of xdpfwd_redirect, written from the protocols'
// layouts rather than from the C: the verdict for frame and the one counter
// it moves, with or without a socket in the slot of the frame's queue.
func model(frame []byte, socket bool) (uint32, Counters) {
	switch {
	case len(frame) < 14:
		return xdpDrop, Counters{DropMalformed: 1}
	case bytes.Equal(frame[0:6], hostMAC), arpRequestFor(frame, hostIP), solicitationFor(frame, hostIP6):
		return xdpPass, Counters{PassHost: 1}
	case !socket:
		return xdpPass, Counters{PassNoSocket: 1}
	case len(frame) > maxFrame:
		return xdpDrop, Counters{DropTooBig: 1}
	}
	// The test-run program reads no out-of-band tag (there is none), so
	// VLANRestored never moves and the host rules above apply to every
	// frame. (The tagged program skips the ARP and neighbour solicitation
	// rules for a frame whose tag is beside its bytes, as a frame with the
	// tag in its bytes never matches them: TestRestoreVLANTag.)
	return xdpRedirect, Counters{Redirected: 1}
}

// arpRequestFor tells whether frame is an Ethernet/IPv4 ARP request (RFC
// 826) for target. After the 14-byte Ethernet header:
//
//	 0      2      4    5    6    8     14    18    24    28
//	+------+------+----+----+----+-----+-----+-----+-----+
//	|htype |ptype |hlen|plen| op | sha | spa | tha | tpa |
//	+------+------+----+----+----+-----+-----+-----+-----+
func arpRequestFor(frame []byte, target netip.Addr) bool {
	if len(frame) < 14+28 || binary.BigEndian.Uint16(frame[12:]) != 0x0806 {
		return false
	}
	arp := frame[14:]
	return binary.BigEndian.Uint16(arp[0:]) == 1 && binary.BigEndian.Uint16(arp[2:]) == 0x0800 &&
		arp[4] == 6 && arp[5] == 4 && binary.BigEndian.Uint16(arp[6:]) == 1 &&
		bytes.Equal(arp[24:28], target.AsSlice())
}

// solicitationFor tells whether frame is an IPv6 packet whose header (RFC
// 8200 3, no extension header: next header 58 at offset 6) carries an
// ICMPv6 neighbour solicitation (RFC 4861 4.3: type 135, code 0) for
// target. After the 40-byte IPv6 header:
//
//	 0      1      2          4          8        24
//	+------+------+----------+----------+--------+
//	| type | code | checksum | reserved | target |
//	+------+------+----------+----------+--------+
func solicitationFor(frame []byte, target netip.Addr) bool {
	if len(frame) < 14+40+24 || binary.BigEndian.Uint16(frame[12:]) != 0x86dd {
		return false
	}
	ip := frame[14:]
	icmp := ip[40:]
	return ip[6] == 58 && icmp[0] == 135 && icmp[1] == 0 && bytes.Equal(icmp[8:24], target.AsSlice())
}

// maxTestRun is the longest frame BPF_PROG_TEST_RUN takes for XDP: a page
// less the XDP headroom and the skb_shared_info tail.
const maxTestRun = 3300

// FuzzProgram checks the program against model: every frame, with and
// without a socket in the XSKMAP, gets the verdict the model predicts and
// moves exactly the counter the model names, by one. The program is the
// one that reads no out-of-band VLAN tag (xdpfwd_redirect): the kernel runs
// no device-bound program under BPF_PROG_TEST_RUN.
func FuzzProgram(f *testing.F) {
	unicast := udpFrame(f, peerMAC, otherMAC)
	for _, frame := range [][]byte{
		{},
		unicast[:13],
		unicast[:14],
		unicast,
		udpFrame(f, peerMAC, hostMAC),
		arpRequest(f, peerMAC),
		arpFor(f, peerMAC, layers.ARPRequest, hostIP.AsSlice()),
		arpFor(f, peerMAC, layers.ARPReply, hostIP.AsSlice()),
		neighbourSolicitation(f, peerMAC, hostIP6),
		neighbourSolicitation(f, peerMAC, netip.MustParseAddr("fd00::7")),
		append(bytes.Clone(unicast), make([]byte, maxFrame-len(unicast))...),
		append(bytes.Clone(unicast), make([]byte, maxFrame+1-len(unicast))...),
	} {
		f.Add(frame, false)
		f.Add(frame, true)
	}
	bare := loadTestObjects(f)
	socket := loadTestObjects(f)
	withSocket(f, socket)
	f.Fuzz(func(t *testing.T, frame []byte, withSocket bool) {
		if len(frame) > maxTestRun {
			frame = frame[:maxTestRun]
		}
		objs := bare
		if withSocket {
			objs = socket
		}
		if len(frame) < 14 {
			checkShort(t, objs, frame)
			return
		}
		wantVerdict, want := model(frame, withSocket)
		verdict, delta := runFrame(t, objs, frame)
		if verdict != wantVerdict || delta != want {
			t.Errorf("%d-byte frame % x…, socket %v: verdict %d, counters moved by %+v; want %d, %+v",
				len(frame), frame[:min(len(frame), 80)], withSocket, verdict, delta, wantVerdict, want)
		}
	})
}

// The Go limits must match the map sizes in xdpfwd.c.
func TestMapSizes(t *testing.T) {
	spec, err := loadXdpfwd()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []struct {
		name string
		want int
	}{{xdpfwdMapXsks, MaxQueues}, {xdpfwdMapPassMacs, MaxPassMACs}, {xdpfwdMapCounters, int(xdpfwdCounterCOUNTER_MAX)}} {
		if got := spec.Maps[m.name].MaxEntries; got != uint32(m.want) {
			t.Errorf("map %s has %d entries, Go expects %d", m.name, got, m.want)
		}
	}
}
