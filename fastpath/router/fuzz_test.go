package router

import (
	"bytes"
	"net"
	"testing"

	"github.com/gopacket/gopacket/layers"

	"github.com/xdpfwd/xdpfwd/fastpath"
	"github.com/xdpfwd/xdpfwd/fastpath/header"
)

// FuzzRouter sends a script of frames into the router (ports lan and
// wan, the default route via G) with the clock moving on: every frame the
// router reads, answers or forwards is a parse of untrusted bytes. A
// script is a sequence of records: port byte (lan if even), a time step in
// 100 ms, a length byte n, n bytes of frame. Frames are conserved (none
// lost between the free list, the rings, the worker and the packets the
// router holds), nothing panics, and every IPv4 packet the router sends
// has a header checksum that verifies.
func FuzzRouter(f *testing.F) {
	for _, seed := range routerSeeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, script []byte) {
		r := newRouterRig(t, defaultRoute)
		for len(script) >= 3 {
			port := fastpath.PortID(portLAN)
			if script[0]%2 == 1 {
				port = portWAN
			}
			r.Now += fastpath.Time(script[1]) * 100e6
			n := min(int(script[2]), len(script)-3)
			frame := bytes.Clone(script[3 : 3+n])
			script = script[3+n:]
			if len(frame) == 0 {
				continue
			}
			r.Inject(port, frame)
			r.W.Poll()
			for _, frames := range r.Drain() {
				for _, out := range frames {
					if len(out) < header.EthernetSize {
						t.Fatalf("sent a %d-byte frame", len(out))
					}
					if header.Ethernet(out).EtherType() == header.EtherTypeIPv4 {
						ip := header.IPv4(out[header.EthernetSize:])
						if ip.IsValid(len(ip)) && header.Checksum(ip[:ip.HeaderLength()], 0) != 0xffff {
							t.Fatalf("sent an IPv4 header whose checksum does not verify: %x", out)
						}
					}
				}
			}
			r.W.Poll()
			r.Conserved("fuzz")
		}
	})
}

// routerSeeds are scripts of valid frames of every kind the router reads.
func routerSeeds(tb testing.TB) [][]byte {
	rec := func(port, step byte, f []byte) []byte {
		return append([]byte{port, step, byte(min(len(f), 255))}, f[:min(len(f), 255)]...)
	}
	arpReq := arpFrame(tb, layers.ARPRequest, header.BroadcastMAC, macH, ipH, ipLAN, header.MAC{})
	arpRep := arpFrame(tb, layers.ARPReply, macWAN, macG, ipG, ipWAN, macWAN)
	fwd := udp4(tb, macLAN, ipH, net.IP{198, 51, 100, 7}, 64, false, 40)
	ttl1 := udp4(tb, macLAN, ipH, net.IP{198, 51, 100, 7}, 1, false, 40)
	local := udp4(tb, macLAN, ipH, ipLAN, 64, false, 10)
	ping := ping4(tb, macLAN, ipH, ipLAN, 64)
	return [][]byte{
		append(rec(0, 0, arpReq), rec(0, 1, ping)...),
		append(append(rec(0, 0, fwd), rec(1, 2, arpRep)...), rec(0, 40, fwd)...),
		append(rec(0, 0, ttl1), rec(0, 0, local)...),
		append(rec(0, 0, fwd), rec(0, 40, fwd)...), // the neighbour fails, ICMP host unreachable
	}
}
