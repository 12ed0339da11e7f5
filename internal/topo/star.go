package topo

import (
	"fmt"
	"net"
	"net/netip"
)

// StarSubnet is the IPv4 subnet of the hosts of a [Star]; host i has address
// 10.77.0.i. It exists only inside the star's namespaces.
var StarSubnet = netip.MustParsePrefix("10.77.0.0/24")

// Star is the standard test topology: a switch namespace "sw" where the
// forwarder runs and hosts "h1".."hN", each with one interface eth0 whose
// veth peer p<i> lives in the switch namespace. Nothing connects the p<i>
// interfaces: no kernel bridge, no addresses.
type Star struct {
	// Switch is the namespace holding the ports p1..pN.
	Switch *Namespace
	// Hosts are the host namespaces; Hosts[i-1] is host i.
	Hosts []*Host
}

// Host is one host namespace of a [Star].
type Host struct {
	*Namespace
	// Index is the host's 1-based number.
	Index int
	// IP is the address of eth0 (10.77.0.Index).
	IP netip.Addr
	// HWAddr is the hardware address of eth0.
	HWAddr net.HardwareAddr
	// Port is the name of the peer interface in the switch namespace (p<Index>).
	Port string
}

// HostIf is the interface name of every host's link to the switch.
const HostIf = "eth0"

// Star builds a [Star] with one host per element of hosts; hosts[i] sets the
// queue count and MTU of host i+1's veth pair (both ends). A zero queue
// count means one queue, so the topology does not depend on the number of
// CPUs (the kernel's default for veth). At most 254 hosts.
func (t *Topology) Star(hosts []VethOptions) (*Star, error) {
	if len(hosts) == 0 || len(hosts) > 254 {
		return nil, fmt.Errorf("build star topology: %d hosts, want 1 to 254", len(hosts))
	}
	sw, err := t.AddNamespace("sw")
	if err != nil {
		return nil, fmt.Errorf("build star topology: %w", err)
	}
	s := &Star{Switch: sw}
	for i, opts := range hosts {
		idx := i + 1
		if opts.Queues == 0 {
			opts.Queues = 1
		}
		ns, err := t.AddNamespace(fmt.Sprintf("h%d", idx))
		if err != nil {
			return nil, fmt.Errorf("build star topology: %w", err)
		}
		h := &Host{
			Namespace: ns,
			Index:     idx,
			IP:        netip.AddrFrom4([4]byte{10, 77, 0, byte(idx)}),
			Port:      fmt.Sprintf("p%d", idx),
		}
		if err := t.Veth(ns, HostIf, sw, h.Port, opts); err != nil {
			return nil, fmt.Errorf("build star topology: %w", err)
		}
		cidr := netip.PrefixFrom(h.IP, StarSubnet.Bits()).String()
		if err := ns.AddAddr(HostIf, cidr); err != nil {
			return nil, fmt.Errorf("build star topology: %w", err)
		}
		if h.HWAddr, err = ns.MAC(HostIf); err != nil {
			return nil, fmt.Errorf("build star topology: %w", err)
		}
		s.Hosts = append(s.Hosts, h)
	}
	return s, nil
}
