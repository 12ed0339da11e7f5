package bpf

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/sys/unix"
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
	objs, err := loadObjects()
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
	verdict, runErr := objs.XdpfwdRedirect.Run(&ebpf.RunOptions{Data: frame})
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
	xdpDrop = 1
	xdpPass = 2
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
	objs, err := loadObjects()
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
	objs, err := loadObjects()
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

// FuzzProgram checks the program against a model of its verdicts: every
// frame gets the verdict the model predicts and moves exactly the counter
// the model names, by one.
func FuzzProgram(f *testing.F) {
	f.Add([]byte{})
	f.Add(udpFrame(f, peerMAC, otherMAC)[:13])
	f.Add(udpFrame(f, peerMAC, otherMAC))
	f.Add(udpFrame(f, peerMAC, hostMAC))
	f.Add(arpRequest(f, peerMAC))
	objs := loadTestObjects(f)
	f.Fuzz(func(t *testing.T, frame []byte) {
		if len(frame) > 3000 {
			frame = frame[:3000] // BPF_PROG_TEST_RUN takes up to a page
		}
		if len(frame) < 14 {
			checkShort(t, objs, frame)
			return
		}
		var wantVerdict uint32
		var want Counters
		switch {
		case bytes.Equal(frame[:6], hostMAC):
			wantVerdict, want.PassHost = xdpPass, 1
		default:
			wantVerdict, want.PassNoSocket = xdpPass, 1
		}
		verdict, delta := runFrame(t, objs, frame)
		if verdict != wantVerdict || delta != want {
			t.Errorf("frame % x: verdict %d, counters moved by %+v; want %d, %+v", frame, verdict, delta, wantVerdict, want)
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
