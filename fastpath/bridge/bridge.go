// Package bridge is xdpfwd's learning bridge, as the Linux bridge: a
// lock-free FDB shared by all workers, learning, flooding and ageing,
// IEEE 802.1Q VLAN filtering (vlan_filtering 1) and per-port tagging. Its
// stages sit at the bridge hooks of the packet walk: the bridging decision
// (Forwarding) last at HookBridgePrerouting, and the VLAN tagging of each
// copy (VLANEgress) first at HookBridgeForward.
package bridge

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/xdpfwd/xdpfwd/fastpath"
	"github.com/xdpfwd/xdpfwd/fastpath/header"
)

// The bridge's drop reasons.
var (
	// DropNoBridge: the ingress port belongs to no bridge.
	DropNoBridge = fastpath.NewReason("bridge", "no bridge on ingress port")
	// DropHairpin: the FDB places the destination on the ingress port.
	DropHairpin = fastpath.NewReason("bridge", "hairpin")
	// DropInvalidSrcMAC: the source MAC is multicast or all zeros.
	DropInvalidSrcMAC = fastpath.NewReason("bridge", "invalid source MAC")
	// DropLinkLocal: the destination is an IEEE 802.1D reserved group
	// address, which a bridge does not forward.
	DropLinkLocal = fastpath.NewReason("bridge", "link-local destination")
	// DropVLANFiltered: on a VLAN-aware bridge, the frame's VLAN is not
	// one of the ingress port's (or it came untagged to a port without a
	// PVID), or the FDB's port for the destination is not in the VLAN.
	DropVLANFiltered = fastpath.NewReason("bridge", "VLAN filtered")
	// DropVLANNoRoom: the UMEM frame had no room for the 802.1Q tag the
	// output port needs (counted on the output port).
	DropVLANNoRoom = fastpath.NewReason("bridge", "no room for VLAN tag")
)

// Bridge defaults, as the Linux bridge has them (ageing) or as xdpfwd
// bounds memory (entries).
const (
	DefaultAgeingTime = 300 * time.Second
	DefaultMaxEntries = 65536
)

// Limits of a bridge's configuration.
const (
	// MaxAgeingTime keeps ages within the FDB's signed 32-bit second
	// arithmetic.
	MaxAgeingTime = 1 << 30 * time.Second
	// MaxMaxEntries bounds Config.MaxEntries.
	MaxMaxEntries = 1 << 24
)

// MaxVID is the highest VLAN ID a bridge port can be a member of (0 means
// no VLAN, or a priority tag; 4095 is reserved).
const MaxVID = 4094

// Config describes one bridge.
type Config struct {
	// Name names the bridge in errors, counters and listings.
	Name string
	// Ports are the bridge's ports. A port belongs to at most one bridge.
	Ports []fastpath.PortID
	// AgeingTime is how long a learned entry lives without traffic from
	// its MAC; whole seconds, at least one. 0 means DefaultAgeingTime.
	AgeingTime time.Duration
	// MaxEntries bounds the FDB. 0 means DefaultMaxEntries.
	MaxEntries int
	// Static are entries that never age and that learning never changes.
	Static []StaticEntry
	// RouterMAC, if not zero, is the MAC of the bridge's router interface
	// (a Linux bridge with an IP address): unicast frames to it go to the
	// router instead of through the FDB, and the router receives a copy
	// of every broadcast and multicast frame the bridge floods. Only on a
	// VLAN-unaware bridge.
	RouterMAC header.MAC
	// VLANs, when not nil, makes the bridge VLAN-aware, as a Linux bridge
	// with vlan_filtering 1 and its default vlan_protocol 802.1Q: it holds
	// the VLAN membership of every port of the bridge, each in at least
	// one VLAN. Nil leaves the bridge VLAN-unaware: frames keep whatever
	// tags they carry, and the FDB ignores them.
	VLANs map[fastpath.PortID]PortVLANs
}

// StaticEntry places a MAC on a port for good.
type StaticEntry struct {
	// MAC is a unicast, non-zero address.
	MAC header.MAC
	// Port is one of the bridge's ports.
	Port fastpath.PortID
	// VLAN is, on a VLAN-aware bridge, the VLAN the entry is for: one of
	// Port's, or 0 for every VLAN of Port (as `bridge fdb add` without a
	// vlan does). On a VLAN-unaware bridge it must be 0.
	VLAN uint16
}

// PortVLANs is one port's membership on a VLAN-aware bridge, as `bridge
// vlan add` sets it on a Linux bridge.
type PortVLANs struct {
	// PVID is the port's access VLAN, 1 to MaxVID, or 0 for none:
	// untagged and priority-tagged (VID 0) frames that come in on the port
	// belong to it, and frames on it leave the port untagged (Linux's
	// "pvid untagged"). Without a PVID such frames are dropped.
	PVID uint16
	// Tagged are the VLANs, 1 to MaxVID, that the port carries tagged
	// (trunk membership): 802.1Q frames with these VIDs are accepted, and
	// frames on them leave with an 802.1Q tag. PVID is not among them.
	Tagged []uint16
}

// Counters are a bridge's counters, summed over all workers.
type Counters struct {
	// Forwarded counts frames sent to one learned port.
	Forwarded uint64
	// Flooded counts frames sent to every other port (broadcast,
	// multicast, unknown unicast); on a VLAN-aware bridge, every other
	// port of the frame's VLAN.
	Flooded uint64
	// Learned counts new and moved FDB entries.
	Learned uint64
	// FDBFull counts source MACs not learned because the FDB was full.
	FDBFull uint64
	// Evicted counts dynamic FDB entries evicted for a new MAC because
	// every slot the new MAC may take held a live entry (see FDB).
	Evicted uint64
	// ToRouter counts frames handed to the router interface: to its MAC,
	// or copies of floods.
	ToRouter uint64
	// RoutedOut counts packets the router sent out of the bridge.
	RoutedOut uint64
}

// Bridge is one learning bridge: its ports, FDB and counters.
type Bridge struct {
	name                                          string
	index                                         int
	ports                                         []fastpath.PortID
	fdb                                           *FDB
	group                                         fastpath.GroupID // all ports: where floods go
	routerMAC                                     uint64           // 48-bit key; 0: no router interface
	forwarded, flooded, learned, fdbFull, evicted atomic.Uint64
	toRouter, routedOut                           atomic.Uint64

	// On a VLAN-aware bridge, vlans holds the bridge's VLANs by VID (nil
	// for a VID no port has; 0 and 4095 never have one) and pvid each
	// port's PVID by fastpath.PortID. Both are nil on a VLAN-unaware bridge.
	vlans []*bridgeVLAN
	pvid  []uint16
}

// bridgeVLAN is one VLAN of a VLAN-aware bridge.
type bridgeVLAN struct {
	// group holds the member ports, in the bridge's port order: where a
	// flood on this VLAN goes.
	group fastpath.GroupID
	// member and untagged are bitsets by fastpath.PortID: the members, and those
	// the VLAN leaves untagged (the ports whose PVID it is).
	member, untagged []uint64
}

// has reports whether port p is a member of v.
func (v *bridgeVLAN) has(p fastpath.PortID) bool {
	i := int(p) >> 6
	return i < len(v.member) && v.member[i]&(1<<(p&63)) != 0
}

// untags reports whether frames on v leave port p untagged.
func (v *bridgeVLAN) untags(p fastpath.PortID) bool {
	i := int(p) >> 6
	return i < len(v.untagged) && v.untagged[i]&(1<<(p&63)) != 0
}

// Name returns the bridge's name.
func (b *Bridge) Name() string { return b.name }

// Ports returns the bridge's ports. The slice must not be modified.
func (b *Bridge) Ports() []fastpath.PortID { return b.ports }

// FDB returns the bridge's forwarding database.
func (b *Bridge) FDB() *FDB { return b.fdb }

// VLANAware reports whether the bridge filters and tags by VLAN.
func (b *Bridge) VLANAware() bool { return b.vlans != nil }

// Counters returns the bridge's counters.
func (b *Bridge) Counters() Counters {
	return Counters{
		Forwarded: b.forwarded.Load(),
		Flooded:   b.flooded.Load(),
		Learned:   b.learned.Load(),
		FDBFull:   b.fdbFull.Load(),
		Evicted:   b.evicted.Load(),
		ToRouter:  b.toRouter.Load(),
		RoutedOut: b.routedOut.Load(),
	}
}

// Group returns the port group of all the bridge's ports: where the router
// sends a packet out of the bridge (Output then picks the port the FDB
// knows).
func (b *Bridge) Group() fastpath.GroupID { return b.group }

// Set is the set of bridges of a dataplane and the map from ports to them:
// a fastpath.Subsystem. It is shared by all workers; each worker's
// pipeline gets its own stages from Stages.
type Set struct {
	list    []*Bridge
	byPort  []*Bridge                    // indexed by PortID; nil for a port in no bridge
	byGroup map[fastpath.GroupID]*Bridge // by the group of all a bridge's ports

	swept     bool          // Expire swept once
	lastSweep fastpath.Time // when Expire last swept
}

// NewSet checks the configurations and builds their bridges, adding the
// port groups their floods go to (a bridge's ports, each VLAN's) to groups.
func NewSet(groups *fastpath.PortGroups, cfgs ...Config) (*Set, error) {
	bs := &Set{byGroup: make(map[fastpath.GroupID]*Bridge)}
	names := make(map[string]bool)
	for i, c := range cfgs {
		b, err := newBridge(c, i, groups)
		if err != nil {
			return nil, fmt.Errorf("bridge %q: %w", c.Name, err)
		}
		if names[c.Name] {
			return nil, fmt.Errorf("bridge %q: name used twice", c.Name)
		}
		names[c.Name] = true
		for _, p := range b.ports {
			if int(p) >= len(bs.byPort) {
				bs.byPort = append(bs.byPort, make([]*Bridge, int(p)+1-len(bs.byPort))...)
			}
			if o := bs.byPort[p]; o != nil {
				return nil, fmt.Errorf("bridge %q: port %d already belongs to bridge %q", c.Name, p, o.name)
			}
			bs.byPort[p] = b
		}
		bs.list = append(bs.list, b)
		bs.byGroup[b.group] = b
	}
	return bs, nil
}

func newBridge(c Config, index int, groups *fastpath.PortGroups) (*Bridge, error) {
	if c.Name == "" {
		return nil, errors.New("no name")
	}
	if c.AgeingTime == 0 {
		c.AgeingTime = DefaultAgeingTime
	}
	if c.AgeingTime < time.Second || c.AgeingTime > MaxAgeingTime || c.AgeingTime%time.Second != 0 {
		return nil, fmt.Errorf("ageing time %v: must be whole seconds, 1s to %v", c.AgeingTime, MaxAgeingTime)
	}
	if c.MaxEntries == 0 {
		c.MaxEntries = DefaultMaxEntries
	}
	if c.MaxEntries < 1 || c.MaxEntries > MaxMaxEntries {
		return nil, fmt.Errorf("max entries %d: must be 1 to %d", c.MaxEntries, MaxMaxEntries)
	}
	member := make(map[fastpath.PortID]bool)
	for _, p := range c.Ports {
		if p >= fastpath.MaxPorts {
			return nil, fmt.Errorf("port %d: port IDs must be below %d", p, fastpath.MaxPorts)
		}
		if member[p] {
			return nil, fmt.Errorf("port %d listed twice", p)
		}
		member[p] = true
	}
	b := &Bridge{
		name:  c.Name,
		index: index,
		ports: append([]fastpath.PortID(nil), c.Ports...),
		fdb:   newFDB(c.MaxEntries, uint32(c.AgeingTime/time.Second)),
	}
	var err error
	if b.group, err = groups.Add(b.ports); err != nil {
		return nil, err
	}
	if m := c.RouterMAC; !m.IsZero() {
		if m.IsMulticast() {
			return nil, fmt.Errorf("router MAC %v: not a unicast address", m)
		}
		if c.VLANs != nil {
			return nil, errors.New("a router interface on a VLAN-aware bridge is not supported: give the bridge no vlans, or route on a port")
		}
		b.routerMAC = binary.BigEndian.Uint64(append([]byte{0, 0}, m[:]...))
	}
	if c.VLANs != nil {
		if err := b.setVLANs(c.VLANs, member, groups); err != nil {
			return nil, err
		}
	}
	statics := 0
	for _, e := range c.Static {
		if e.MAC.IsMulticast() || e.MAC.IsZero() {
			return nil, fmt.Errorf("static entry %v: not a unicast address", e.MAC)
		}
		if !member[e.Port] {
			return nil, fmt.Errorf("static entry %v: port %d is not a port of the bridge", e.MAC, e.Port)
		}
		vids := []uint16{e.VLAN}
		switch {
		case c.VLANs == nil && e.VLAN != 0:
			return nil, fmt.Errorf("static entry %v: VLAN %d on a bridge without VLANs", e.MAC, e.VLAN)
		case c.VLANs == nil:
		case e.VLAN == 0:
			vids = portVIDs(c.VLANs[e.Port])
		case e.VLAN > MaxVID || b.vlans[e.VLAN] == nil || !b.vlans[e.VLAN].has(e.Port):
			return nil, fmt.Errorf("static entry %v: port %d is not a member of VLAN %d", e.MAC, e.Port, e.VLAN)
		}
		for _, vid := range vids {
			if statics++; statics > c.MaxEntries {
				return nil, fmt.Errorf("static entries (%d, one per VLAN): more than max entries %d", statics, c.MaxEntries)
			}
			if !b.fdb.addStatic(vid, e.MAC, e.Port) {
				return nil, fmt.Errorf("static entry %v: no free slot near its hash", e.MAC)
			}
		}
	}
	return b, nil
}

// portVIDs returns a port's VLANs: its PVID, if any, then the tagged ones.
func portVIDs(pv PortVLANs) []uint16 {
	if pv.PVID == 0 {
		return pv.Tagged
	}
	return append([]uint16{pv.PVID}, pv.Tagged...)
}

// setVLANs makes b VLAN-aware with the memberships of vlans, after checking
// them against the bridge's ports (member).
func (b *Bridge) setVLANs(vlans map[fastpath.PortID]PortVLANs, member map[fastpath.PortID]bool, groups *fastpath.PortGroups) error {
	for p := range vlans {
		if !member[p] {
			return fmt.Errorf("VLANs: port %d is not a port of the bridge", p)
		}
	}
	maxPort := fastpath.PortID(0)
	for _, p := range b.ports {
		maxPort = max(maxPort, p)
		if pv := vlans[p]; pv.PVID == 0 && len(pv.Tagged) == 0 {
			return fmt.Errorf("VLANs: port %d is in no VLAN: give it a PVID or tagged VLANs", p)
		}
	}
	words := int(maxPort)/64 + 1
	b.vlans = make([]*bridgeVLAN, MaxVID+2)
	ports := make(map[*bridgeVLAN][]fastpath.PortID)
	b.pvid = make([]uint16, int(maxPort)+1)
	// Ports join their VLANs in the bridge's port order, so floods go out
	// in that order.
	for _, p := range b.ports {
		pv := vlans[p]
		seen := make(map[uint16]bool)
		for _, vid := range portVIDs(pv) {
			switch {
			case vid < 1 || vid > MaxVID:
				return fmt.Errorf("VLANs: port %d: VID %d is outside 1 to %d", p, vid, MaxVID)
			case seen[vid] && vid == pv.PVID:
				return fmt.Errorf("VLANs: port %d: VID %d is both its PVID and tagged", p, vid)
			case seen[vid]:
				return fmt.Errorf("VLANs: port %d: tagged VID %d listed twice", p, vid)
			}
			seen[vid] = true
			v := b.vlans[vid]
			if v == nil {
				v = &bridgeVLAN{member: make([]uint64, words), untagged: make([]uint64, words)}
				b.vlans[vid] = v
			}
			ports[v] = append(ports[v], p)
			v.member[p>>6] |= 1 << (p & 63)
			if vid == pv.PVID {
				v.untagged[p>>6] |= 1 << (p & 63)
			}
		}
		b.pvid[p] = pv.PVID
	}
	for _, v := range b.vlans {
		if v == nil {
			continue
		}
		var err error
		if v.group, err = groups.Add(ports[v]); err != nil {
			return err
		}
	}
	return nil
}

// List returns the bridges in configuration order.
func (bs *Set) List() []*Bridge { return bs.list }

// Of returns the bridge of port p, or nil.
func (bs *Set) Of(p fastpath.PortID) *Bridge {
	if int(p) < len(bs.byPort) {
		return bs.byPort[p]
	}
	return nil
}

// sweepEvery is how often Expire sweeps the FDBs: a sweep reads every
// slot, and an expired entry is dead to lookups already.
const sweepEvery = 5 * time.Second

// Expire clears the expired FDB entries of every bridge (see FDB.Sweep),
// at most every sweepEvery of now, and returns how many it cleared. Call
// it as often as you like from one goroutine.
func (bs *Set) Expire(now fastpath.Time) int {
	if bs.swept && now-bs.lastSweep < fastpath.Time(sweepEvery) {
		return 0
	}
	bs.swept, bs.lastSweep = true, now
	n := 0
	for _, b := range bs.list {
		n += b.fdb.Sweep(now.Seconds())
	}
	return n
}

// Stages returns the bridge stages of one worker's pipeline, each at its
// hook: the bridging decision last at HookBridgePrerouting; if a bridge
// has a router interface, the FDB lookup for what the router sends out of
// it last at HookPostrouting; if a bridge is VLAN-aware, the VLAN tagging
// first at HookBridgeForward.
func (bs *Set) Stages() []fastpath.Attached {
	st := []fastpath.Attached{fastpath.At(fastpath.HookBridgePrerouting, fastpath.PriorityLast, bs.Forwarding())}
	if slices.ContainsFunc(bs.list, func(b *Bridge) bool { return b.routerMAC != 0 }) {
		st = append(st, fastpath.At(fastpath.HookPostrouting, fastpath.PriorityLast, &Output{set: bs, local: make([]uint64, len(bs.list))}))
	}
	if slices.ContainsFunc(bs.list, func(b *Bridge) bool { return b.vlans != nil }) {
		st = append(st, fastpath.At(fastpath.HookBridgeForward, fastpath.PriorityFirst, &VLANEgress{set: bs}))
	}
	return st
}

// Forwarding returns a bridging decision stage for one worker's pipeline.
func (bs *Set) Forwarding() *Forwarding {
	return &Forwarding{bridges: bs, local: make([]Counters, len(bs.list))}
}

// Forwarding is the bridging decision of one worker. Per packet it
// learns the source MAC and looks up the destination, as the Linux bridge
// does:
//
//   - ingress port in no bridge: drop (DropNoBridge);
//   - on a VLAN-aware bridge, the frame's VLAN is the VID of its 802.1Q
//     tag, or the ingress port's PVID for an untagged or priority-tagged
//     (VID 0) frame — an 802.1ad (0x88a8) outer tag counts as untagged, as
//     on a Linux bridge with vlan_protocol 802.1Q. A frame on a VLAN the
//     port is not a member of, or untagged on a port without a PVID, is
//     dropped (DropVLANFiltered). Learning, lookups and floods are then
//     per VLAN;
//   - source MAC multicast or zero: drop (DropInvalidSrcMAC);
//   - destination 01:80:c2:00:00:0X (IEEE 802.1D reserved): drop
//     (DropLinkLocal), as a Linux bridge never forwards them by default;
//   - destination broadcast, multicast or unknown: to the group of the
//     bridge's ports (on a VLAN-aware bridge, the VLAN's);
//   - destination learned on the ingress port: drop (DropHairpin);
//   - otherwise to the learned port (on a VLAN-aware bridge, if it is a
//     member of the VLAN: else DropVLANFiltered).
//
// On a VLAN-aware bridge it records the VLAN in the packet (VID, TCI) for
// VLANEgress, which tags or untags each copy for its output port.
//
// It counts per bridge in plain fields and adds them to the bridges'
// atomic counters once per batch.
type Forwarding struct {
	bridges *Set
	local   []Counters // indexed by Bridge.index; zero between batches
}

// Name returns "bridge".
func (*Forwarding) Name() string { return "bridge" }

// Process bridges the undecided packets of b.
func (s *Forwarding) Process(b *fastpath.Batch, now fastpath.Time) {
	sec := now.Seconds()
	// A batch comes from one queue, so its packets share an ingress port:
	// look the bridge up once per port change, not per packet.
	var (
		inPort = fastpath.PortID(fastpath.MaxPorts) // no port
		br     *Bridge
		fdb    *FDB
		c      *Counters
		pvid   uint16
	)
	// Packets of a batch often share a flow. The FDB key last learned on
	// inPort in this batch, and the last destination looked up and its
	// answer, spare those packets the FDB's hashing; any learning that
	// changes the FDB forgets the answer.
	const noKey = ^uint64(0) // no FDB key (they have 60 bits)
	lastSrc, lastDst := uint64(noKey), uint64(noKey)
	var dstPort fastpath.PortID
	var dstFound bool
	for i := range b.Packets[:b.Len] {
		p := &b.Packets[i]
		if p.Action != fastpath.ActionContinue || p.Routed || p.Local || p.Egress != fastpath.EgressNone {
			// Not a bridged frame, or an earlier stage chose its way.
			continue
		}
		if p.InPort != inPort {
			lastSrc, lastDst = noKey, noKey
			inPort, br = p.InPort, s.bridges.Of(p.InPort)
			if br != nil {
				fdb, c = br.fdb, &s.local[br.index]
				if br.vlans != nil {
					pvid = br.pvid[inPort]
				}
			}
		}
		if br == nil {
			p.Drop(DropNoBridge)
			continue
		}
		// The FDB key's VLAN bits: 0 on a VLAN-unaware bridge.
		var vk uint64
		var vlan *bridgeVLAN
		if br.vlans != nil {
			var tci uint16
			if p.OuterTPID == header.EtherTypeVLAN {
				tci = p.OuterTCI
			}
			vid := tci & header.VLANVIDMask
			if vid == 0 {
				// Untagged or priority-tagged: the PVID's (the PCP and
				// DEI of a priority tag stay).
				vid = pvid
				tci |= vid
			}
			vlan = br.vlans[vid]
			if vlan == nil || !vlan.has(inPort) {
				p.Drop(DropVLANFiltered)
				continue
			}
			p.VID, p.TCI = vid, tci
			vk = uint64(vid) << 48
		}
		// MACs as 48-bit keys: two loads instead of byte-wise copies.
		// Parse guarantees the 14 bytes of the Ethernet header.
		dst := binary.BigEndian.Uint64(p.Data[0:8]) >> 16
		src := binary.BigEndian.Uint64(p.Data[4:12]) & (1<<48 - 1)
		if src&groupBit != 0 || src == 0 {
			p.Drop(DropInvalidSrcMAC)
			continue
		}
		if key := vk | src; key != lastSrc && !b.DryRun {
			switch fdb.learn(key, p.InPort, sec) {
			case LearnRefreshed, LearnStatic:
				lastSrc = key
			case LearnNew, LearnMoved:
				c.Learned++
				lastSrc, lastDst = key, noKey
			case LearnEvicted:
				c.Learned++
				c.Evicted++
				lastSrc, lastDst = key, noKey
			case LearnFull:
				c.FDBFull++
			}
		}
		if dst>>4 == linkLocalPrefix {
			p.Drop(DropLinkLocal)
			continue
		}
		if br.routerMAC != 0 {
			if dst == br.routerMAC {
				p.Routed = true
				c.ToRouter++
				continue
			}
			if dst&groupBit != 0 {
				// The bridge's own interface receives what it floods.
				if cl := b.Clone(p); cl != nil {
					cl.Routed = true
					c.ToRouter++
				}
			}
		}
		if dst&groupBit == 0 {
			if key := vk | dst; key != lastDst {
				lastDst = key
				dstPort, dstFound = fdb.lookup(key, sec)
			}
			if port := dstPort; dstFound {
				switch {
				case port == p.InPort:
					p.Drop(DropHairpin)
					continue
				case vlan != nil && !vlan.has(port):
					p.Drop(DropVLANFiltered)
					continue
				}
				p.ToPort(port)
				c.Forwarded++
				continue
			}
		}
		if vlan != nil {
			p.ToGroup(vlan.group)
		} else {
			p.ToGroup(br.group)
		}
		c.Flooded++
	}
	s.publish(b.DryRun)
}

// publish adds the batch's counters to the bridges' and zeroes them;
// for a dry run (a Simulator's batch) it only zeroes them.
func (s *Forwarding) publish(dry bool) {
	for i := range s.local {
		c := &s.local[i]
		if *c == (Counters{}) {
			continue
		}
		if dry {
			*c = Counters{}
			continue
		}
		b := s.bridges.list[i]
		b.forwarded.Add(c.Forwarded)
		b.flooded.Add(c.Flooded)
		b.learned.Add(c.Learned)
		b.fdbFull.Add(c.FDBFull)
		b.evicted.Add(c.Evicted)
		b.toRouter.Add(c.ToRouter)
		*c = Counters{}
	}
}

const (
	// groupBit is the I/G bit of a MAC key: a multicast address.
	groupBit = 1 << 40
	// linkLocalPrefix is 01:80:c2:00:00:0X >> 4, the IEEE 802.1D reserved
	// group addresses (STP, LACP, LLDP, 802.1X...).
	linkLocalPrefix = 0x0180c2000000 >> 4
)

// Output is the bridge's stage for what the router sends out of a bridge
// interface, last at HookPostrouting, after the router wrote the next
// hop's MAC: as the Linux bridge's br_dev_xmit, it looks the destination
// up in the FDB (learning nothing) and sends the packet to that port, or
// floods it to the bridge's ports if the MAC is unknown, broadcast or
// multicast. It works on routed and router-sent packets (Meta.Routed,
// Meta.Local) that the router sent to a bridge's group (Bridge.Group).
type Output struct {
	set   *Set
	local []uint64 // RoutedOut by Bridge.index; zero between batches
}

// Name returns "bridge output".
func (*Output) Name() string { return "bridge output" }

// Process picks the port of every routed packet sent to a bridge.
func (s *Output) Process(b *fastpath.Batch, now fastpath.Time) {
	sec := now.Seconds()
	for i := range b.Packets[:b.Len] {
		p := &b.Packets[i]
		if p.Action != fastpath.ActionContinue || !(p.Routed || p.Local) || p.Egress != fastpath.EgressGroup {
			continue
		}
		br := s.set.byGroup[p.Group]
		if br == nil {
			continue
		}
		s.local[br.index]++
		dst := binary.BigEndian.Uint64(p.Data[0:8]) >> 16
		if dst&groupBit != 0 {
			continue
		}
		if port, ok := br.fdb.lookup(dst, sec); ok {
			p.ToPort(port)
		}
	}
	for i, n := range s.local {
		if n != 0 && !b.DryRun { // a Simulator's packets count nowhere
			s.set.list[i].routedOut.Add(n)
		}
		s.local[i] = 0
	}
}
