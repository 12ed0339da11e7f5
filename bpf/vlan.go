package bpf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"unsafe"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// Out-of-band VLAN tags.
//
// A NIC with rx-vlan-offload (ethtool features rx-vlan-hw-parse and
// rx-vlan-stag-hw-parse) strips the outermost VLAN tag from the frame and
// hands it to the kernel beside the bytes; a veth passes on the tag its peer
// kept beside the bytes (a VLAN device on the peer, tc's bpf_skb_vlan_push).
// An AF_XDP socket gets only the bytes, so such a tag must be put back by the
// XDP program, which reads it with the bpf_xdp_metadata_rx_vlan_tag kfunc
// (program xdpfwd_redirect_tagged). The kernel offers that kfunc only to a
// program bound to its device and attached in native mode, and only drivers
// that implement it answer (veth does). Where the tag cannot be read,
// xdpfwd refuses the port unless nothing can carry a tag out of band:
// checkVLAN decides.

// VLANError is the error by which Attach and Port.CheckVLAN refuse a port
// because VLAN tags could arrive beside its frames that the program in use
// cannot put back: tagged frames would leave xdpfwd untagged and cross VLAN
// isolation.
type VLANError struct {
	// Reason says why, naming the interface, and what to do.
	Reason string
}

func (e *VLANError) Error() string { return e.Reason }

// vlanFeatures is what decides whether a port's out-of-band VLAN tags can
// reach its AF_XDP sockets.
type vlanFeatures struct {
	// MetadataVLANTag tells whether the driver implements the
	// bpf_xdp_metadata_rx_vlan_tag kfunc (netdev dev-get,
	// xdp-rx-metadata-features, bit vlan-tag).
	MetadataVLANTag bool
	// RxCTag and RxSTag tell whether the device strips 802.1Q and 802.1ad
	// tags on receive (rx-vlan-hw-parse, rx-vlan-stag-hw-parse active).
	RxCTag, RxSTag bool
	// Veth tells whether the device is a veth, whose peer passes tags on
	// out of band whatever its own offload settings.
	Veth bool
	// Kind is the link type as rtnetlink names it (IFLA_INFO_KIND:
	// "macvlan", "bond", ...; "device" for a NIC without one).
	Kind string
	// Lower names, comma-separated, the devices whose receive path a frame
	// takes before it reaches this one: the device it is stacked on
	// (IFLA_LINK of a macvlan, ipvlan or VLAN device) and those enslaved
	// to it (IFLA_MASTER: a bond's, team's or bridge's ports). "" for
	// none. The kernel takes the tag out of the bytes there (the lower
	// driver's offload, or its own skb_vlan_untag) before generic XDP on
	// this device runs.
	Lower string
}

// aggregate tells whether kind is a device that receives the frames of
// devices enslaved to it: it has lower devices as soon as one is added.
func aggregate(kind string) bool {
	switch kind {
	case "bond", "team", "bridge", "openvswitch":
		return true
	}
	return false
}

// checkVLAN decides, for interface name attached in mode (native or
// generic), whether the program must restore out-of-band tags (the
// device-bound xdpfwd_redirect_tagged), may run without (xdpfwd_redirect),
// or whether the port must be refused because tagged frames would leave
// xdpfwd untagged and cross VLAN isolation (a *VLANError).
func checkVLAN(name string, mode Mode, f vlanFeatures) (tagged bool, err error) {
	if mode == ModeNative && f.MetadataVLANTag {
		return true, nil
	}
	if f.Veth {
		// The receiving veth's rx-vlan-offload changes nothing: the tag
		// travels in the peer's socket buffer.
		return false, &VLANError{Reason: fmt.Sprintf("%s is a veth in %v XDP mode, where the XDP program cannot read the VLAN tags its peer passes beside the frame (a VLAN device or tc on the peer): such frames would leave xdpfwd untagged; use xdp_mode native (or auto), which restores them", name, mode)}
	}
	if mode == ModeGeneric && (f.Lower != "" || aggregate(f.Kind)) {
		// Generic XDP on an upper device runs after the lower device's
		// receive path has moved the tag out of the bytes, whatever this
		// device's own offload flags say.
		from := f.Lower
		if from == "" {
			from = "the devices enslaved to it"
		}
		return false, &VLANError{Reason: fmt.Sprintf("%s (%s) receives its frames from %s, whose receive path takes VLAN tags out of the frame before generic XDP on %s runs: tagged frames would leave xdpfwd untagged; make the lower device the port instead (in native mode where its driver has XDP)", name, f.Kind, from, name)}
	}
	var off []string
	if f.RxCTag {
		off = append(off, "rxvlan off")
	}
	if f.RxSTag {
		off = append(off, "rx-vlan-stag-hw-parse off")
	}
	if len(off) == 0 {
		return false, nil // tags stay in the frame
	}
	why := "its driver offers XDP no way to read the tags it strips (no vlan-tag in its XDP RX metadata features)"
	if mode == ModeGeneric && f.MetadataVLANTag {
		why = "generic XDP cannot read the tags it strips (its driver offers them to native XDP only)"
	}
	return false, &VLANError{Reason: fmt.Sprintf("%s strips VLAN tags on receive (rx-vlan-offload) and %s: tagged frames would leave xdpfwd untagged; turn the offload off: ethtool -K %s %s",
		name, why, name, strings.Join(off, " "))}
}

// readVLANFeatures reads what checkVLAN needs about the interface ifindex,
// named name, in the calling thread's network namespace.
func readVLANFeatures(ifindex int, name string) (vlanFeatures, error) {
	var f vlanFeatures
	link, err := netlink.LinkByIndex(ifindex)
	if err != nil {
		return f, fmt.Errorf("reading the link of %s: %w", name, err)
	}
	f.Kind = link.Type()
	f.Veth = f.Kind == "veth"
	if f.Lower, err = lowerDevices(link); err != nil {
		return f, fmt.Errorf("reading the lower devices of %s: %w", name, err)
	}
	meta, err := xdpRxMetadataFeatures(ifindex)
	if err != nil {
		return f, fmt.Errorf("reading the XDP RX metadata features of %s: %w", name, err)
	}
	f.MetadataVLANTag = meta&netdevXDPRxMetadataVLANTag != 0
	active, err := ethtoolFeatures(name, "rx-vlan-hw-parse", "rx-vlan-stag-hw-parse")
	if err != nil {
		return f, fmt.Errorf("reading the offload features of %s: %w", name, err)
	}
	f.RxCTag, f.RxSTag = active[0], active[1]
	return f, nil
}

// lowerDevices names, comma-separated, the device link is stacked on
// (IFLA_LINK; a veth's is its peer, not a lower device) and the devices
// enslaved to it (IFLA_MASTER), in the calling thread's network namespace.
// A lower device in another namespace is named by its index there.
func lowerDevices(link netlink.Link) (string, error) {
	a := link.Attrs()
	var lower []string
	if a.ParentIndex != 0 && a.ParentIndex != a.Index && link.Type() != "veth" {
		switch l, err := netlink.LinkByIndex(a.ParentIndex); {
		case a.NetNsID >= 0:
			lower = append(lower, fmt.Sprintf("ifindex %d in another network namespace", a.ParentIndex))
		case err != nil:
			lower = append(lower, fmt.Sprintf("ifindex %d", a.ParentIndex))
		default:
			lower = append(lower, l.Attrs().Name)
		}
	}
	links, err := netlink.LinkList()
	if err != nil {
		return "", err
	}
	for _, l := range links {
		if l.Attrs().MasterIndex == a.Index {
			lower = append(lower, l.Attrs().Name)
		}
	}
	return strings.Join(lower, ", "), nil
}

// The netdev generic netlink family (include/uapi/linux/netdev.h).
const (
	netdevCmdDevGet                        = 1
	netdevADevIfindex                      = 1
	netdevADevXDPRxMetadataFeatures        = 5
	netdevXDPRxMetadataVLANTag      uint64 = 4
)

// xdpRxMetadataFeatures returns the XDP RX metadata kfuncs the driver of
// ifindex implements (netdev dev-get, NETDEV_A_DEV_XDP_RX_METADATA_FEATURES):
// 0 on a kernel that does not report them.
func xdpRxMetadataFeatures(ifindex int) (uint64, error) {
	fam, err := netlink.GenlFamilyGet("netdev")
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return 0, nil // kernel before 6.3: no metadata kfuncs either
		}
		return 0, fmt.Errorf("looking up the netdev netlink family: %w", err)
	}
	req := nl.NewNetlinkRequest(int(fam.ID), 0)
	req.AddData(genlHeader{cmd: netdevCmdDevGet, version: 1})
	req.AddData(nl.NewRtAttr(netdevADevIfindex, nl.Uint32Attr(uint32(ifindex))))
	msgs, err := req.Execute(unix.NETLINK_GENERIC, 0)
	if err != nil {
		return 0, fmt.Errorf("netdev dev-get: %w", err)
	}
	for _, m := range msgs {
		if len(m) < nl.SizeofGenlmsg {
			continue
		}
		attrs, err := nl.ParseRouteAttr(m[nl.SizeofGenlmsg:])
		if err != nil {
			return 0, fmt.Errorf("netdev dev-get: %w", err)
		}
		for _, a := range attrs {
			if a.Attr.Type == netdevADevXDPRxMetadataFeatures && len(a.Value) == 8 {
				return binary.NativeEndian.Uint64(a.Value), nil
			}
		}
	}
	return 0, nil
}

// genlHeader is struct genlmsghdr. (nl.Genlmsg serializes 4 bytes from a
// 2-byte struct, and the netdev family refuses a reserved field that is not
// 0.)
type genlHeader struct{ cmd, version uint8 }

func (h genlHeader) Len() int { return nl.SizeofGenlmsg }

func (h genlHeader) Serialize() []byte { return []byte{h.cmd, h.version, 0, 0} }

// ethtool's feature ioctls (include/uapi/linux/ethtool.h).
const (
	ethSSFeatures = 4
	ethGStringLen = 32
)

// ethtoolFeatures reports, for each of names (ethtool -k feature names),
// whether it is active on interface ifname.
func ethtoolFeatures(ifname string, names ...string) ([]bool, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)

	// struct ethtool_sset_info: the number of feature names.
	sset := struct {
		cmd, reserved uint32
		mask          uint64
		count         uint32
	}{cmd: unix.ETHTOOL_GSSET_INFO, mask: 1 << ethSSFeatures}
	if err := ethtoolIoctl(fd, ifname, unsafe.Pointer(&sset)); err != nil {
		return nil, fmt.Errorf("ETHTOOL_GSSET_INFO: %w", err)
	}
	if sset.mask&(1<<ethSSFeatures) == 0 || sset.count == 0 || sset.count > 4096 {
		return nil, fmt.Errorf("ETHTOOL_GSSET_INFO: the kernel reports no feature names")
	}
	n := int(sset.count)

	// struct ethtool_gstrings: the names, ETH_GSTRING_LEN bytes each.
	strs := make([]byte, 12+n*ethGStringLen)
	binary.NativeEndian.PutUint32(strs[0:], unix.ETHTOOL_GSTRINGS)
	binary.NativeEndian.PutUint32(strs[4:], ethSSFeatures)
	binary.NativeEndian.PutUint32(strs[8:], uint32(n))
	if err := ethtoolIoctl(fd, ifname, unsafe.Pointer(&strs[0])); err != nil {
		return nil, fmt.Errorf("ETHTOOL_GSTRINGS: %w", err)
	}

	// struct ethtool_gfeatures: a block of four u32 words (available,
	// requested, active, never_changed) per 32 features.
	blocks := (n + 31) / 32
	feats := make([]byte, 8+blocks*16)
	binary.NativeEndian.PutUint32(feats[0:], unix.ETHTOOL_GFEATURES)
	binary.NativeEndian.PutUint32(feats[4:], uint32(blocks))
	if err := ethtoolIoctl(fd, ifname, unsafe.Pointer(&feats[0])); err != nil {
		return nil, fmt.Errorf("ETHTOOL_GFEATURES: %w", err)
	}

	out := make([]bool, len(names))
	found := make([]bool, len(names))
	for i := range n {
		s := strs[12+i*ethGStringLen : 12+(i+1)*ethGStringLen]
		if z := strings.IndexByte(string(s), 0); z >= 0 {
			s = s[:z]
		}
		for j, name := range names {
			if string(s) == name {
				active := binary.NativeEndian.Uint32(feats[8+(i/32)*16+8:])
				out[j], found[j] = active&(1<<(i%32)) != 0, true
			}
		}
	}
	for j, ok := range found {
		if !ok {
			return nil, fmt.Errorf("the kernel has no feature %q", names[j])
		}
	}
	return out, nil
}

// ethtoolIoctl runs SIOCETHTOOL on ifname with data as the command buffer.
func ethtoolIoctl(fd int, ifname string, data unsafe.Pointer) error {
	if len(ifname) >= unix.IFNAMSIZ {
		return fmt.Errorf("interface name %q too long", ifname)
	}
	var ifr struct {
		name [unix.IFNAMSIZ]byte
		data unsafe.Pointer
		_    [16]byte
	}
	copy(ifr.name[:], ifname)
	ifr.data = data
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr))); errno != 0 {
		return errno
	}
	return nil
}
