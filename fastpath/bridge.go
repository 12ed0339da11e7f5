package fastpath

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/xdpfwd/xdpfwd/fastpath/header"
)

// Bridge defaults, as the Linux bridge has them (ageing) or as xdpfwd
// bounds memory (entries).
const (
	DefaultAgeingTime = 300 * time.Second
	DefaultMaxEntries = 65536
)

// maxAgeing keeps ages within the FDB's signed 32-bit second arithmetic.
const maxAgeing = 1 << 30 * time.Second

// BridgeConfig describes one bridge.
type BridgeConfig struct {
	// Name names the bridge in errors, counters and listings.
	Name string
	// Ports are the bridge's ports. A port belongs to at most one bridge.
	Ports []PortID
	// AgeingTime is how long a learned entry lives without traffic from
	// its MAC; whole seconds, at least one. 0 means DefaultAgeingTime.
	AgeingTime time.Duration
	// MaxEntries bounds the FDB. 0 means DefaultMaxEntries.
	MaxEntries int
	// Static are entries that never age and that learning never changes.
	Static []StaticEntry
}

// StaticEntry places a MAC on a port for good.
type StaticEntry struct {
	// MAC is a unicast, non-zero address.
	MAC header.MAC
	// Port is one of the bridge's ports.
	Port PortID
}

// BridgeCounters are a bridge's counters, summed over all workers.
type BridgeCounters struct {
	// Forwarded counts frames sent to one learned port.
	Forwarded uint64
	// Flooded counts frames sent to every other port (broadcast,
	// multicast, unknown unicast).
	Flooded uint64
	// Learned counts new and moved FDB entries.
	Learned uint64
	// FDBFull counts source MACs not learned because the FDB was full.
	FDBFull uint64
}

// Bridge is one learning bridge: its ports, FDB and counters.
type Bridge struct {
	name                                 string
	index                                int
	ports                                []PortID
	fdb                                  *FDB
	forwarded, flooded, learned, fdbFull atomic.Uint64
}

// Name returns the bridge's name.
func (b *Bridge) Name() string { return b.name }

// Ports returns the bridge's ports. The slice must not be modified.
func (b *Bridge) Ports() []PortID { return b.ports }

// FDB returns the bridge's forwarding database.
func (b *Bridge) FDB() *FDB { return b.fdb }

// Counters returns the bridge's counters.
func (b *Bridge) Counters() BridgeCounters {
	return BridgeCounters{
		Forwarded: b.forwarded.Load(),
		Flooded:   b.flooded.Load(),
		Learned:   b.learned.Load(),
		FDBFull:   b.fdbFull.Load(),
	}
}

// Bridges is the set of bridges of a dataplane and the map from ports to
// them. It is shared by all workers; each worker's pipeline gets its own
// stage from Stage.
type Bridges struct {
	list   []*Bridge
	byPort []*Bridge // indexed by PortID; nil for a port in no bridge
}

// NewBridges checks the configurations and builds their bridges.
func NewBridges(cfgs ...BridgeConfig) (*Bridges, error) {
	bs := &Bridges{}
	names := make(map[string]bool)
	for i, c := range cfgs {
		b, err := newBridge(c, i)
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
	}
	return bs, nil
}

func newBridge(c BridgeConfig, index int) (*Bridge, error) {
	if c.Name == "" {
		return nil, errors.New("no name")
	}
	if c.AgeingTime == 0 {
		c.AgeingTime = DefaultAgeingTime
	}
	if c.AgeingTime < time.Second || c.AgeingTime > maxAgeing || c.AgeingTime%time.Second != 0 {
		return nil, fmt.Errorf("ageing time %v: must be whole seconds, 1s to %v", c.AgeingTime, maxAgeing)
	}
	if c.MaxEntries == 0 {
		c.MaxEntries = DefaultMaxEntries
	}
	if c.MaxEntries < 1 || c.MaxEntries > 1<<24 {
		return nil, fmt.Errorf("max entries %d: must be 1 to %d", c.MaxEntries, 1<<24)
	}
	member := make(map[PortID]bool)
	for _, p := range c.Ports {
		if p >= MaxPorts {
			return nil, fmt.Errorf("port %d: port IDs must be below %d", p, MaxPorts)
		}
		if member[p] {
			return nil, fmt.Errorf("port %d listed twice", p)
		}
		member[p] = true
	}
	b := &Bridge{
		name:  c.Name,
		index: index,
		ports: append([]PortID(nil), c.Ports...),
		fdb:   newFDB(c.MaxEntries, uint32(c.AgeingTime/time.Second)),
	}
	if len(c.Static) > c.MaxEntries {
		return nil, fmt.Errorf("%d static entries: more than max entries %d", len(c.Static), c.MaxEntries)
	}
	for _, e := range c.Static {
		if e.MAC.IsMulticast() || e.MAC.IsZero() {
			return nil, fmt.Errorf("static entry %v: not a unicast address", e.MAC)
		}
		if !member[e.Port] {
			return nil, fmt.Errorf("static entry %v: port %d is not a port of the bridge", e.MAC, e.Port)
		}
		if !b.fdb.addStatic(e.MAC, e.Port) {
			return nil, fmt.Errorf("static entry %v: no free slot near its hash", e.MAC)
		}
	}
	return b, nil
}

// List returns the bridges in configuration order.
func (bs *Bridges) List() []*Bridge { return bs.list }

// Of returns the bridge of port p, or nil.
func (bs *Bridges) Of(p PortID) *Bridge {
	if int(p) < len(bs.byPort) {
		return bs.byPort[p]
	}
	return nil
}

// Sweep clears the expired FDB entries of every bridge (see FDB.Sweep) and
// returns how many it cleared. Call it every few seconds from any
// goroutine.
func (bs *Bridges) Sweep(now Time) int {
	n := 0
	for _, b := range bs.list {
		n += b.fdb.Sweep(now.Seconds())
	}
	return n
}

// Stage returns a bridge stage for one worker's pipeline.
func (bs *Bridges) Stage() *BridgeStage {
	return &BridgeStage{bridges: bs, local: make([]BridgeCounters, len(bs.list))}
}

// BridgeStage is the bridge ingress stage of one worker. Per packet it
// learns the source MAC and looks up the destination, as the Linux bridge
// does:
//
//   - ingress port in no bridge: drop (DropNoBridge);
//   - source MAC multicast or zero: drop (DropInvalidSrcMAC);
//   - destination 01:80:c2:00:00:0X (IEEE 802.1D reserved): drop
//     (DropLinkLocal), as a Linux bridge never forwards them by default;
//   - destination broadcast, multicast or unknown: VerdictFlood;
//   - destination learned on the ingress port: drop (DropHairpin);
//   - otherwise VerdictForward to the learned port.
//
// It counts per bridge in plain fields and adds them to the bridges'
// atomic counters once per batch.
type BridgeStage struct {
	bridges *Bridges
	local   []BridgeCounters // indexed by Bridge.index; zero between batches
}

// Name returns "bridge".
func (*BridgeStage) Name() string { return "bridge" }

// Process bridges the undecided packets of b.
func (s *BridgeStage) Process(b *Batch, now Time) {
	sec := now.Seconds()
	// A batch comes from one queue, so its packets share an ingress port:
	// look the bridge up once per port change, not per packet.
	var (
		inPort = PortID(MaxPorts) // no port
		br     *Bridge
		fdb    *FDB
		c      *BridgeCounters
	)
	for i := range b.Packets[:b.Len] {
		p := &b.Packets[i]
		if p.Verdict != VerdictPending {
			continue
		}
		if p.InPort != inPort {
			inPort, br = p.InPort, s.bridges.Of(p.InPort)
			if br != nil {
				fdb, c = br.fdb, &s.local[br.index]
			}
		}
		if br == nil {
			p.drop(DropNoBridge)
			continue
		}
		// MACs as 48-bit keys: two loads instead of byte-wise copies.
		// Parse guarantees the 14 bytes of the Ethernet header.
		dst := binary.BigEndian.Uint64(p.Data[0:8]) >> 16
		src := binary.BigEndian.Uint64(p.Data[4:12]) & (1<<48 - 1)
		if src&groupBit != 0 || src == 0 {
			p.drop(DropInvalidSrcMAC)
			continue
		}
		switch fdb.learn(src, p.InPort, sec) {
		case LearnNew, LearnMoved:
			c.Learned++
		case LearnFull:
			c.FDBFull++
		}
		if dst>>4 == linkLocalPrefix {
			p.drop(DropLinkLocal)
			continue
		}
		if dst&groupBit == 0 {
			if port, ok := fdb.lookup(dst, sec); ok {
				if port == p.InPort {
					p.drop(DropHairpin)
					continue
				}
				p.Verdict, p.OutPort = VerdictForward, port
				c.Forwarded++
				continue
			}
		}
		p.Verdict, p.FloodPorts = VerdictFlood, br.ports
		c.Flooded++
	}
	s.publish()
}

func (s *BridgeStage) publish() {
	for i := range s.local {
		c := &s.local[i]
		if *c == (BridgeCounters{}) {
			continue
		}
		b := s.bridges.list[i]
		b.forwarded.Add(c.Forwarded)
		b.flooded.Add(c.Flooded)
		b.learned.Add(c.Learned)
		b.fdbFull.Add(c.FDBFull)
		*c = BridgeCounters{}
	}
}

const (
	// groupBit is the I/G bit of a MAC key: a multicast address.
	groupBit = 1 << 40
	// linkLocalPrefix is 01:80:c2:00:00:0X >> 4, the IEEE 802.1D reserved
	// group addresses (STP, LACP, LLDP, 802.1X...).
	linkLocalPrefix = 0x0180c2000000 >> 4
)
