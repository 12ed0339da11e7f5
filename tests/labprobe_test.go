package tests

import (
	"net"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/xdpfwd/xdpfwd/fastpath/fastpathtest"
)

// labFrame builds a probe frame for a router lab (its MACs differ from
// lab to lab).
type labFrame func(l *routerLab) []byte

// labBuild returns the frame of layers ls (an IPv4 or IPv6 header first)
// from h1 (from 1) or h2 (2) to the router's MAC on that side, with the
// transport checksums computed.
func labBuild(t *testing.T, from int, ls ...gopacket.SerializableLayer) labFrame {
	return func(l *routerLab) []byte {
		eth := &layers.Ethernet{SrcMAC: l.h1.HWAddr, DstMAC: l.routerMAC, EthernetType: layers.EthernetTypeIPv4}
		if from == 2 {
			eth.SrcMAC, eth.DstMAC = l.h2.HWAddr, l.routerMAC2
		}
		var nl gopacket.NetworkLayer
		switch ip := ls[0].(type) {
		case *layers.IPv6:
			eth.EthernetType, nl = layers.EthernetTypeIPv6, ip
		case *layers.IPv4:
			nl = ip
		}
		for _, x := range ls[1:] {
			if c, ok := x.(interface {
				SetNetworkLayerForChecksum(gopacket.NetworkLayer) error
			}); ok {
				_ = c.SetNetworkLayerForChecksum(nl)
			}
		}
		return fastpathtest.Serialize(t, append([]gopacket.SerializableLayer{eth}, ls...)...)
	}
}

func labIP4(src, dst string, proto layers.IPProtocol) *layers.IPv4 {
	return &layers.IPv4{Version: 4, TTL: 64, Protocol: proto, SrcIP: net.ParseIP(src), DstIP: net.ParseIP(dst), Id: 4242}
}

func labIP6(src, dst string, proto layers.IPProtocol) *layers.IPv6 {
	return &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: proto, SrcIP: net.ParseIP(src), DstIP: net.ParseIP(dst)}
}

func labUDP(sport, dport uint16) *layers.UDP {
	return &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
}

// labProbe is one probe of a differential run: frames sent from h1 (from
// 1) or h2 (2).
type labProbe struct {
	name string
	from int
	f    labFrame
	// frags, if set, gives the frames to send instead of f: the kernel
	// reassembles them before its rules and conntrack (and counts one
	// packet), xdpfwd tracks them by the first: what arrives is
	// compared, not the counters.
	frags func(l *routerLab) [][]byte
}

// compareProbes sends each probe to the kernel's lab and to xdpfwd's, in
// order (each may build on the connections the ones before opened), and
// requires the same packets at both hosts and, probe by probe, the same
// counter deltas on every rule.
func compareProbes(t *testing.T, kernel, xdp *routerLab, probes []labProbe) {
	t.Helper()
	kc, xc := kernelCounters(t, kernel), xdpfwdCounters(t, xdp)
	for _, p := range probes {
		var k1, k2, x1, x2 []string
		if p.frags != nil {
			k1, k2 = kernel.probeFrom(t, p.from, p.frags(kernel)...)
			x1, x2 = xdp.probeFrom(t, p.from, p.frags(xdp)...)
		} else {
			k1, k2 = kernel.probeFrom(t, p.from, p.f(kernel))
			x1, x2 = xdp.probeFrom(t, p.from, p.f(xdp))
		}
		sameAtHosts(t, p.name, k1, k2, x1, x2)
		kn, xn := kernelCounters(t, kernel), xdpfwdCounters(t, xdp)
		if p.frags == nil {
			kd, xd := counterDelta(kn, kc), counterDelta(xn, xc)
			for k := range mapKeys(kd, xd) {
				if kd[k] != xd[k] {
					t.Errorf("%s: rule %s: the kernel counted %v, xdpfwd %v", p.name, k, kd[k], xd[k])
				}
			}
		}
		kc, xc = kn, xn
		time.Sleep(200 * time.Millisecond) // within the ICMP rate limits of both
	}
}
