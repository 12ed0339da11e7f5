package tests

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/xdpfwd/xdpfwd/fastpath/cbpf"
)

// filterExprs are pcap-filter expressions of the kinds people type: ports,
// hosts and nets, protocols, VLANs (which move every later offset), TCP
// flags, fragments, IP options (a variable header length: ldxmsh and
// indirect loads), lengths, link-layer addresses, ICMP types.
var filterExprs = []string{
	"udp port 7", "tcp", "icmp", "icmp6", "ip6", "arp", "ip",
	"vlan", "vlan 100", "vlan and udp port 53", "vlan 200 and ip6",
	"tcp[tcpflags] & tcp-syn != 0", "tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn",
	"ip[6:2] & 0x1fff != 0", "ip[6:2] & 0x3fff != 0", "ip[0] & 0xf > 5",
	"greater 200", "less 80", "len >= 100 and len <= 600",
	"ether broadcast", "ether multicast", "ether dst 02:00:00:00:00:02",
	"net 10.1.0.0/16", "host 10.1.0.2 and udp", "src port 1000 or dst port 53",
	"portrange 1000-2000", "ip6 and tcp port 80", "ip and ip[8] < 5",
	"icmp[icmptype] == icmp-echo", "ip proto 47", "not ip and not ip6",
	"udp[8:4] == 0x01020304", "tcp port 443 and (tcp[((tcp[12] & 0xf0) >> 2):1] == 0x16)",
	"ip6 net 2001:db8::/32", "ip multicast", "ip broadcast",
}

// filterFrames are frames that tell the expressions apart: IPv4 and IPv6
// with UDP, TCP (flags, ports), ICMP, ICMPv6 and GRE; 802.1Q-tagged
// frames; fragments (first and later); IPv4 options; ARP; broadcast and
// multicast; a range of lengths.
func filterFrames(t *testing.T) [][]byte {
	t.Helper()
	srcMAC := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	dstMAC := net.HardwareAddr{2, 0, 0, 0, 0, 2}
	var frames [][]byte
	add := func(ls ...gopacket.SerializableLayer) {
		buf := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
			t.Fatal(err)
		}
		frames = append(frames, bytes.Clone(buf.Bytes()))
	}
	eth := func(dst net.HardwareAddr, et layers.EthernetType) *layers.Ethernet {
		return &layers.Ethernet{SrcMAC: srcMAC, DstMAC: dst, EthernetType: et}
	}
	v4 := func(src, dst string, proto layers.IPProtocol, ttl uint8) *layers.IPv4 {
		return &layers.IPv4{Version: 4, TTL: ttl, Protocol: proto, SrcIP: net.ParseIP(src), DstIP: net.ParseIP(dst)}
	}
	v6 := func(src, dst string, next layers.IPProtocol) *layers.IPv6 {
		return &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: next, SrcIP: net.ParseIP(src), DstIP: net.ParseIP(dst)}
	}
	payload := func(n int) gopacket.Payload { return bytes.Repeat([]byte{1, 2, 3, 4}, n/4+1)[:n] }
	for _, vid := range []uint16{0, 100, 200} {
		l2 := func(dst net.HardwareAddr, et layers.EthernetType) []gopacket.SerializableLayer {
			if vid == 0 {
				return []gopacket.SerializableLayer{eth(dst, et)}
			}
			return []gopacket.SerializableLayer{eth(dst, layers.EthernetTypeDot1Q), &layers.Dot1Q{VLANIdentifier: vid, Type: et}}
		}
		for _, ports := range [][2]uint16{{1000, 7}, {40000, 53}, {1500, 9}, {5353, 80}, {443, 2000}} {
			for _, size := range []int{4, 120, 560} {
				ip := v4("10.1.0.2", "10.2.0.2", layers.IPProtocolUDP, 64)
				u := &layers.UDP{SrcPort: layers.UDPPort(ports[0]), DstPort: layers.UDPPort(ports[1])}
				u.SetNetworkLayerForChecksum(ip)
				add(append(l2(dstMAC, layers.EthernetTypeIPv4), ip, u, payload(size))...)
				ip6 := v6("2001:db8::1", "2001:db9::2", layers.IPProtocolTCP)
				tc := &layers.TCP{SrcPort: layers.TCPPort(ports[0]), DstPort: layers.TCPPort(ports[1]), SYN: size == 4, ACK: size != 4, Window: 1000}
				tc.SetNetworkLayerForChecksum(ip6)
				add(append(l2(dstMAC, layers.EthernetTypeIPv6), ip6, tc, payload(size))...)
			}
			for _, flags := range []struct{ syn, ack, psh bool }{{true, false, false}, {true, true, false}, {false, true, true}} {
				ip := v4("10.3.0.9", "10.1.0.2", layers.IPProtocolTCP, 3)
				tc := &layers.TCP{SrcPort: layers.TCPPort(ports[1]), DstPort: layers.TCPPort(ports[0]), SYN: flags.syn, ACK: flags.ack, PSH: flags.psh, Window: 1000}
				tc.SetNetworkLayerForChecksum(ip)
				add(append(l2(dstMAC, layers.EthernetTypeIPv4), ip, tc, gopacket.Payload([]byte{0x16, 3, 1, 0, 5}))...)
			}
		}
		add(append(l2(dstMAC, layers.EthernetTypeIPv4), v4("10.1.0.2", "10.2.0.2", layers.IPProtocolICMPv4, 64),
			&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoRequest, 0), Id: 1, Seq: 1}, payload(56))...)
		add(append(l2(dstMAC, layers.EthernetTypeIPv4), v4("10.1.0.2", "10.2.0.2", layers.IPProtocolICMPv4, 64),
			&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoReply, 0), Id: 1, Seq: 1}, payload(56))...)
		i6 := v6("fe80::1", "ff02::1", layers.IPProtocolICMPv6)
		icmp6 := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeEchoRequest, 0)}
		icmp6.SetNetworkLayerForChecksum(i6)
		add(append(l2(net.HardwareAddr{0x33, 0x33, 0, 0, 0, 1}, layers.EthernetTypeIPv6), i6, icmp6, payload(16))...)
		add(append(l2(dstMAC, layers.EthernetTypeIPv4), v4("10.1.0.2", "10.2.0.2", 47, 64), payload(24))...)
		// Fragments: a first one (MF) and a later one, of UDP.
		first := v4("10.1.0.2", "10.2.0.2", layers.IPProtocolUDP, 64)
		first.Flags = layers.IPv4MoreFragments
		add(append(l2(dstMAC, layers.EthernetTypeIPv4), first, payload(64))...)
		later := v4("10.1.0.2", "10.2.0.2", layers.IPProtocolUDP, 64)
		later.FragOffset = 8
		add(append(l2(dstMAC, layers.EthernetTypeIPv4), later, payload(64))...)
		// IPv4 options (a 28-byte header): the UDP header moves.
		opt := v4("10.1.0.2", "10.2.0.2", layers.IPProtocolUDP, 64)
		opt.Options = []layers.IPv4Option{{OptionType: 1}, {OptionType: 1}, {OptionType: 1}, {OptionType: 0}, {OptionType: 0}, {OptionType: 0}, {OptionType: 0}, {OptionType: 0}}
		u := &layers.UDP{SrcPort: 1000, DstPort: 7}
		u.SetNetworkLayerForChecksum(opt)
		add(append(l2(dstMAC, layers.EthernetTypeIPv4), opt, u, payload(8))...)
		// Broadcast and multicast IPv4, ARP.
		for _, to := range []struct {
			mac  net.HardwareAddr
			ip   string
			port uint16
		}{{layers.EthernetBroadcast, "255.255.255.255", 67}, {net.HardwareAddr{1, 0, 0x5e, 0, 0, 0xfb}, "224.0.0.251", 5353}} {
			ip := v4("10.1.0.2", to.ip, layers.IPProtocolUDP, 1)
			u := &layers.UDP{SrcPort: 68, DstPort: layers.UDPPort(to.port)}
			u.SetNetworkLayerForChecksum(ip)
			add(append(l2(to.mac, layers.EthernetTypeIPv4), ip, u, payload(40))...)
		}
		add(append(l2(layers.EthernetBroadcast, layers.EthernetTypeARP), &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4,
			HwAddressSize: 6, ProtAddressSize: 4, Operation: layers.ARPRequest, SourceHwAddress: srcMAC, SourceProtAddress: []byte{10, 1, 0, 2},
			DstHwAddress: make([]byte, 6), DstProtAddress: []byte{10, 1, 0, 1}})...)
	}
	return frames
}

// TestFiltersAgreeWithLibpcap: for each expression, the frames the
// compiled filter keeps (fastpath/cbpf, as a capture or a trace runs it,
// one at a time and a batch at once) are exactly those tcpdump keeps
// when it filters the same frames from a file (libpcap's own BPF
// interpreter), with the program tcpdump -ddd made of the expression.
func TestFiltersAgreeWithLibpcap(t *testing.T) {
	tcpdump, err := exec.LookPath("tcpdump")
	if err != nil {
		t.Fatal("tcpdump is not installed: scripts/deps.sh installs it")
	}
	frames := filterFrames(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "in.pcap")
	writePcap(t, in, frames)
	for _, expr := range filterExprs {
		out, err := exec.Command(tcpdump, "-ddd", "-y", "EN10MB", expr).Output()
		if err != nil {
			t.Fatalf("tcpdump -ddd %q: %v", expr, err)
		}
		raw, err := cbpf.ParseTcpdump(string(out))
		if err != nil {
			t.Fatalf("%q: %v", expr, err)
		}
		p, err := cbpf.Compile(raw)
		if err != nil {
			t.Fatalf("%q: %v", expr, err)
		}
		results := make([]uint32, len(frames))
		p.RunBatch(frames, results)
		var ours []int
		for i, f := range frames {
			if v := p.Run(f); v != results[i] {
				t.Fatalf("%q, frame %d: %d alone, %d in a batch", expr, i, v, results[i])
			}
			if results[i] != 0 {
				ours = append(ours, i)
			}
		}

		kept := filepath.Join(dir, "kept.pcap")
		if out, err := exec.Command(tcpdump, "-r", in, "-w", kept, expr).CombinedOutput(); err != nil {
			t.Fatalf("tcpdump -r %q: %v\n%s", expr, err, out)
		}
		theirs := keptIndexes(t, kept, frames)
		if len(theirs) == 0 || len(theirs) == len(frames) {
			t.Errorf("%q: libpcap keeps %d of the %d frames: they do not tell it apart", expr, len(theirs), len(frames))
		}
		if fmt.Sprint(ours) != fmt.Sprint(theirs) {
			t.Errorf("%q: xdpfwd keeps frames %v, libpcap %v", expr, ours, theirs)
		}
	}
}

// writePcap writes frames to a pcap file of Ethernet frames.
func writePcap(t *testing.T, path string, frames [][]byte) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	for _, fr := range frames {
		if err := w.WritePacket(gopacket.CaptureInfo{CaptureLength: len(fr), Length: len(fr)}, fr); err != nil {
			t.Fatal(err)
		}
	}
}

// keptIndexes reads the pcap file tcpdump wrote and returns the indexes
// in frames of the frames it holds (every frame differs from the others
// or is an exact copy whose index comes first).
func keptIndexes(t *testing.T, path string, frames [][]byte) []int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var idx []int
	next := 0
	for {
		data, _, err := r.ReadPacketData()
		if err != nil {
			break
		}
		for next < len(frames) && !bytes.Equal(frames[next], data) {
			next++
		}
		if next == len(frames) {
			t.Fatalf("tcpdump kept a frame not in the input, or out of order: %x", data)
		}
		idx = append(idx, next)
		next++
	}
	return idx
}
