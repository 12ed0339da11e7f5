// Package config reads xdpfwd's YAML configuration: the ports the forwarder
// takes over, the bridges between them, and engine options. Every error
// names the file, the line and column, and the field, e.g.
//
//	xdpfwd.yaml:7:18: bridges[0].ageing_time: "banana" is not a duration (e.g. 300s)
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/xdpfwd/xdpfwd/fastpath/bridge"
	"go.yaml.in/yaml/v3"
)

// Config is a whole configuration file, validated.
type Config struct {
	// File is the path the configuration was read from, for messages.
	File string
	// Ports are the interfaces the forwarder takes over, in file order; a
	// port's index is its fastpath.PortID. There is at least one.
	Ports []Port
	// Bridges are the learning bridges, in file order; none is allowed.
	Bridges []Bridge
	// Options are the engine options, with defaults filled in.
	Options Options
	// Router is the router, nil without one.
	Router *Router
	// Ruleset is the nft rules file (`ruleset:`), as a path relative to
	// the working directory (the file names it relative to itself); ""
	// for none. The daemon loads it with nft into a throwaway network
	// namespace and runs the kernel's compiled form (fastpath/rules).
	Ruleset string
	// RulesetPos is where the file names it.
	RulesetPos Pos
	// Conntrack configures connection tracking (`conntrack:`), the
	// kernel's defaults where the file does not say.
	Conntrack Conntrack
}

// Pos is a place in the configuration file: 1-based line and column, as
// YAML counts them. The zero Pos means the value was not given.
type Pos struct {
	// Line is the 1-based line number.
	Line int
	// Column is the 1-based column number.
	Column int
}

// ErrorAt returns an *Error at p in c's file, for problems found after
// parsing (e.g. by the daemon) to be reported the way Parse reports them.
// field is the path of the field, e.g. ports[1].queues.
func (c *Config) ErrorAt(p Pos, field, format string, args ...any) error {
	return &Error{File: c.File, Line: p.Line, Column: p.Column, Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Port is one network interface handed to the fast path.
type Port struct {
	// Interface is the netdev's name in the daemon's network namespace.
	Interface string
	// XDPMode is "auto" (native, else generic), "native" or "generic".
	XDPMode string
	// Bind is "auto" (zero-copy, else copy), "zerocopy" or "copy".
	Bind string
	// Queues is how many queues, from 0, get an AF_XDP socket; 0 means all
	// of the device's RX queues. At most 64.
	Queues int
	// PassMACs are destination MACs (6 bytes each) whose frames the XDP
	// program passes to the kernel instead of the fast path. Together with
	// the host MAC of PassHostMAC they are at most 64.
	PassMACs []net.HardwareAddr
	// PassHostMAC makes the host's own traffic on the port go to the kernel
	// stack, so that the host keeps its connectivity on a physical NIC
	// port: frames to the interface's MAC, ARP requests for its IPv4
	// addresses and IPv6 neighbour solicitations for its IPv6 addresses.
	PassHostMAC bool
	// Pos is where the port's mapping starts (its first key).
	Pos Pos
	// InterfacePos is where the interface value is, for errors about the
	// interface itself (e.g. no such interface).
	InterfacePos Pos
	// QueuesPos is where the queues value is; zero if queues is not given.
	QueuesPos Pos
}

// Bridge is one learning L2 bridge over some of the ports.
type Bridge struct {
	// Name names the bridge in messages, counters and listings; unique.
	Name string
	// Ports are interface names, each defined under ports and used by at
	// most one bridge.
	Ports []string
	// AgeingTime is how long a learned MAC lives without traffic: whole
	// seconds, 1s to 2^30s. Default bridge.DefaultAgeingTime.
	AgeingTime time.Duration
	// MaxEntries bounds the FDB, 1 to 2^24. When it holds that many, a new
	// MAC is learned only in place of an expired entry or, when its probe
	// window is full, of an evicted one (see bridge.FDB); else it is not
	// learned and frames to it flood. Default bridge.DefaultMaxEntries.
	MaxEntries int
	// Static are FDB entries that never age and are never relearned; at
	// most MaxEntries (counting one per VLAN), each MAC at most once per
	// VLAN.
	Static []StaticEntry
	// VLANs, when given (not nil), makes the bridge VLAN-aware, as a Linux
	// bridge with vlan_filtering 1: the VLAN membership of every one of
	// its ports, in file order. Nil leaves it VLAN-unaware: frames keep
	// their tags and the FDB ignores them.
	VLANs []PortVLANs
	// Pos is where the bridge's mapping starts (its first key).
	Pos Pos
}

// PortVLANs is one port's VLAN membership on a VLAN-aware bridge.
type PortVLANs struct {
	// Port is the interface name of one of the bridge's ports.
	Port string
	// PVID is the access VLAN, 1 to 4094, or 0 for none: untagged frames
	// in belong to it, and frames on it leave untagged.
	PVID int
	// Tagged are the VLANs, 1 to 4094, the port carries with an 802.1Q
	// tag; PVID is not among them.
	Tagged []int
	// Pos is where the port's name is, under vlans.
	Pos Pos
}

// StaticEntry pins a MAC to a port of its bridge.
type StaticEntry struct {
	// MAC is a unicast, non-zero Ethernet address.
	MAC net.HardwareAddr
	// Port is the interface name of one of the bridge's ports.
	Port string
	// VLAN is the VLAN, 1 to 4094, the entry is for on a VLAN-aware
	// bridge (one of Port's); 0, the default, means every VLAN of Port
	// there. A VLAN-unaware bridge takes no vlan.
	VLAN int
	// Pos is where the entry's mapping starts (its first key).
	Pos Pos
}

// Options tune the engine. Zero values take defaults.
type Options struct {
	// FrameSize is the UMEM chunk size: 2048 or 4096 (default).
	FrameSize int
	// RingSize sizes every AF_XDP ring (fill, completion, RX, TX). Default
	// DefaultRingSize.
	RingSize int
	// Workers caps the number of worker threads; 0 means one per queue
	// index that every port has.
	Workers int
	// Control is the path of the control socket.
	Control string
	// Metrics is host:port to serve Prometheus metrics on (/metrics), such
	// as 127.0.0.1:9464; empty means none. It is in the daemon's network
	// namespace.
	Metrics string
	// MetricsPos is where the metrics value is, for errors about it.
	MetricsPos Pos
	// Profile turns on per-stage cost accounting in every worker's
	// pipeline (two clock reads per stage and batch); the stats verb shows
	// it.
	Profile bool
	// WorkerPriority is the SCHED_FIFO priority (1–99) of the worker
	// threads, so that a worker woken by traffic runs at once instead of
	// waiting for the time slice of whatever else holds its core; 0 leaves
	// them ordinary threads. Default DefaultWorkerPriority.
	WorkerPriority int
	// WorkerPriorityPos is where the worker_priority value is; zero if it
	// is not given (the default applies).
	WorkerPriorityPos Pos
	// WorkerCPUs pins the workers' threads: worker i runs on CPU
	// WorkerCPUs[i mod len]. Empty: the scheduler places them.
	WorkerCPUs []int
	// WorkerCPUsPos is where the worker_cpus value is.
	WorkerCPUsPos Pos
}

// Defaults of the options left out of a file. Bridges default to
// bridge.DefaultAgeingTime and bridge.DefaultMaxEntries.
const (
	// DefaultFrameSize is the default Options.FrameSize.
	DefaultFrameSize = 4096
	// DefaultRingSize is the default Options.RingSize. A worker near its
	// peak rate has a few percent of a core to spare, and the rings are
	// the time it may be away: at 610k pps (90 % of its peak, 64-byte UDP,
	// two-port bridge) 4096-frame rings (6.7 ms) ran dry in 2 of 4 10-s
	// runs (0.006–0.08 % lost), 8192-frame rings (13 ms) in none. The
	// cost is memory: a worker's UMEM holds 2 × ring frames per socket
	// (128 MiB for two ports at the default frame size).
	DefaultRingSize = 8192
	// DefaultControl is the default Options.Control.
	DefaultControl = "/run/xdpfwd.sock"
	// DefaultWorkerPriority is the default Options.WorkerPriority: below
	// the kernel's threaded interrupt handlers (50), which feed the workers.
	DefaultWorkerPriority = 10
)

// Limits of the data plane that a file must respect, so that the daemon
// never refuses a valid configuration. They are not imported from bpf,
// which would make every user of the parser link the eBPF loader.
const (
	// maxQueues is bpf.MaxQueues, the number of XSKMAP slots.
	maxQueues = 64
	// maxPassMACs is bpf.MaxPassMACs, the size of the pass_macs map.
	maxPassMACs = 64
	// The bridge's limits, which the engine owns.
	maxAgeingTime = bridge.MaxAgeingTime
	maxEntries    = bridge.MaxMaxEntries
	maxVID        = bridge.MaxVID
)

// Load reads and validates the configuration file at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, data)
}

// Parse validates a configuration held in memory; file names it in errors.
func Parse(file string, data []byte) (*Config, error) {
	d := decoder{file: file}
	// The configuration is the one document that is not empty. Empty ones
	// (a stray "---", only comments) hold nothing to ignore; a second
	// document with content would be ignored, so it is refused.
	var doc *yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		if emptyDocument(&n) {
			continue
		}
		if doc != nil {
			return nil, &Error{File: file, Line: n.Line, Column: n.Column, Msg: "only one YAML document is allowed, and a second starts here"}
		}
		doc = &n
	}
	if doc == nil {
		return nil, fmt.Errorf("%s: empty configuration: it needs at least one port", file)
	}
	c := &Config{File: file, Options: Options{FrameSize: DefaultFrameSize, RingSize: DefaultRingSize, Control: DefaultControl, WorkerPriority: DefaultWorkerPriority},
		Conntrack: DefaultConntrack()}
	if err := d.config(doc, c); err != nil {
		return nil, err
	}
	return c, nil
}

// Error is a configuration error at a place in the file.
type Error struct {
	// File is the configuration file's path.
	File string
	// Line and Column are the 1-based place of the offending value; 0 when
	// unknown.
	Line, Column int
	// Field is the path of the field, e.g. bridges[0].ageing_time; empty
	// for a problem with the file as a whole.
	Field string
	// Msg says what is wrong.
	Msg string
}

// Error formats e as file:line:column: field: message, leaving out the
// place when it is unknown and the field when it is empty.
func (e *Error) Error() string {
	s := e.File
	if e.Line > 0 {
		s += fmt.Sprintf(":%d:%d", e.Line, e.Column)
	}
	if e.Field != "" {
		s += ": " + e.Field
	}
	return s + ": " + e.Msg
}

// emptyDocument reports whether doc holds nothing: no node, or the null
// that an empty document decodes to (but not an explicit ~ or null).
func emptyDocument(doc *yaml.Node) bool {
	if len(doc.Content) == 0 {
		return true
	}
	n := doc.Content[0]
	return len(doc.Content) == 1 && n.Kind == yaml.ScalarNode && n.Tag == "!!null" && n.Value == "" && n.Style == 0
}

func pos(n *yaml.Node) Pos { return Pos{Line: n.Line, Column: n.Column} }

type decoder struct{ file string }

func (d *decoder) errorf(n *yaml.Node, field, format string, args ...any) error {
	return &Error{File: d.file, Line: n.Line, Column: n.Column, Field: field, Msg: fmt.Sprintf(format, args...)}
}

// errUnknown is returned by a fields callback for a key it does not know.
var errUnknown = errors.New("unknown field")

// fields walks a mapping node, calling set for every key; a key that set
// answers errUnknown for is reported at the key, with the known ones.
func (d *decoder) fields(n *yaml.Node, path, known string, set func(key string, val *yaml.Node, field string) error) error {
	if n.Kind != yaml.MappingNode {
		return d.errorf(n, path, "must be a mapping")
	}
	seen := make(map[string]bool)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		field := k.Value
		if path != "" {
			field = path + "." + k.Value
		}
		if seen[k.Value] {
			return d.errorf(k, field, "given twice")
		}
		seen[k.Value] = true
		err := set(k.Value, v, field)
		if errors.Is(err, errUnknown) {
			return d.errorf(k, field, "unknown field %q (known: %s)", k.Value, known)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (d *decoder) seq(n *yaml.Node, field string, each func(i int, el *yaml.Node, field string) error) error {
	if n.Kind != yaml.SequenceNode {
		return d.errorf(n, field, "must be a list")
	}
	for i, el := range n.Content {
		if err := each(i, el, fmt.Sprintf("%s[%d]", field, i)); err != nil {
			return err
		}
	}
	return nil
}

func (d *decoder) str(n *yaml.Node, field string) (string, error) {
	if n.Kind != yaml.ScalarNode || n.Value == "" {
		return "", d.errorf(n, field, "must be a non-empty string")
	}
	return n.Value, nil
}

func (d *decoder) oneOf(n *yaml.Node, field string, allowed ...string) (string, error) {
	s, err := d.str(n, field)
	if err != nil {
		return "", err
	}
	for _, a := range allowed {
		if s == a {
			return s, nil
		}
	}
	return "", d.errorf(n, field, "%q is not one of %q", s, allowed)
}

func (d *decoder) intRange(n *yaml.Node, field string, lo, hi int) (int, error) {
	v, err := strconv.Atoi(n.Value)
	if n.Kind != yaml.ScalarNode || err != nil {
		return 0, d.errorf(n, field, "%q is not an integer", n.Value)
	}
	if v < lo || v > hi {
		return 0, d.errorf(n, field, "%d is out of range [%d, %d]", v, lo, hi)
	}
	return v, nil
}

func (d *decoder) boolean(n *yaml.Node, field string) (bool, error) {
	var b bool
	if n.Kind != yaml.ScalarNode || n.Decode(&b) != nil {
		return false, d.errorf(n, field, "%q is not true or false", n.Value)
	}
	return b, nil
}

func (d *decoder) duration(n *yaml.Node, field string) (time.Duration, error) {
	v, err := time.ParseDuration(n.Value)
	if n.Kind != yaml.ScalarNode || err != nil {
		return 0, d.errorf(n, field, "%q is not a duration (e.g. 300s)", n.Value)
	}
	if v <= 0 {
		return 0, d.errorf(n, field, "%s must be positive", v)
	}
	return v, nil
}

func (d *decoder) mac(n *yaml.Node, field string) (net.HardwareAddr, error) {
	m, err := net.ParseMAC(n.Value)
	if n.Kind != yaml.ScalarNode || err != nil || len(m) != 6 {
		return nil, d.errorf(n, field, "%q is not an Ethernet MAC address (e.g. 02:00:00:00:00:01)", n.Value)
	}
	return m, nil
}

// bridgeNodes are the nodes of a bridge that validate reports errors at.
type bridgeNodes struct {
	name       *yaml.Node   // the name value; nil if not given
	ports      *yaml.Node   // the ports list; nil if not given
	portItems  []*yaml.Node // the items of ports
	static     *yaml.Node   // the static list; nil if not given
	staticPort []*yaml.Node // the port value of each static entry
	staticMAC  []*yaml.Node // the mac value of each static entry
	staticVLAN []*yaml.Node // the vlan value of each static entry; nil if not given
	vlans      *yaml.Node   // the vlans mapping; nil if not given
	vlanPorts  []*yaml.Node // the port key of each vlans entry
}

func (d *decoder) config(doc *yaml.Node, c *Config) error {
	root := doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	var portsNode *yaml.Node
	var nodes []bridgeNodes
	err := d.fields(root, "", "ports, bridges, router, ruleset, options, conntrack", func(key string, v *yaml.Node, field string) error {
		switch key {
		case "ports":
			portsNode = v
			return d.seq(v, field, func(_ int, el *yaml.Node, field string) error {
				p, err := d.port(el, field)
				c.Ports = append(c.Ports, p)
				return err
			})
		case "bridges":
			return d.seq(v, field, func(_ int, el *yaml.Node, field string) error {
				b, bn, err := d.bridge(el, field)
				nodes = append(nodes, bn)
				c.Bridges = append(c.Bridges, b)
				return err
			})
		case "options":
			return d.options(v, field, &c.Options)
		case "conntrack":
			return d.conntrack(v, field, &c.Conntrack)
		case "router":
			var err error
			c.Router, err = d.router(v, field)
			return err
		case "ruleset":
			if v.Kind != yaml.ScalarNode || v.Tag != "!!str" || v.Value == "" {
				return d.errorf(v, field, "must be the path of an nft rules file")
			}
			c.Ruleset, c.RulesetPos = v.Value, pos(v)
			if !filepath.IsAbs(c.Ruleset) {
				c.Ruleset = filepath.Join(filepath.Dir(d.file), c.Ruleset)
			}
			return nil
		}
		return errUnknown
	})
	if err != nil {
		return err
	}
	if len(c.Ports) == 0 {
		n := root
		if portsNode != nil {
			n = portsNode
		}
		return d.errorf(n, "ports", "at least one port is needed")
	}
	if err := d.validate(c, nodes); err != nil {
		return err
	}
	if c.Router != nil {
		return validateRouter(c)
	}
	return nil
}

func (d *decoder) port(n *yaml.Node, path string) (Port, error) {
	p := Port{XDPMode: "auto", Bind: "auto", Pos: pos(n)}
	var passNode *yaml.Node
	err := d.fields(n, path, "interface, xdp_mode, bind, queues, pass_macs, pass_host_mac", func(key string, v *yaml.Node, field string) (err error) {
		switch key {
		case "interface":
			p.InterfacePos = pos(v)
			p.Interface, err = d.str(v, field)
			if err == nil && len(p.Interface) > 15 {
				err = d.errorf(v, field, "%q is longer than an interface name can be (15)", p.Interface)
			}
		case "xdp_mode":
			p.XDPMode, err = d.oneOf(v, field, "auto", "native", "generic")
		case "bind":
			p.Bind, err = d.oneOf(v, field, "auto", "zerocopy", "copy")
		case "queues":
			p.QueuesPos = pos(v)
			p.Queues, err = d.intRange(v, field, 0, maxQueues)
		case "pass_macs":
			passNode = v
			err = d.seq(v, field, func(_ int, el *yaml.Node, field string) error {
				m, err := d.mac(el, field)
				p.PassMACs = append(p.PassMACs, m)
				return err
			})
		case "pass_host_mac":
			p.PassHostMAC, err = d.boolean(v, field)
		default:
			err = errUnknown
		}
		return err
	})
	if err != nil {
		return p, err
	}
	if p.Interface == "" {
		return p, d.errorf(n, path+".interface", "missing: name the network interface")
	}
	if len(p.PassMACs) > maxPassMACs {
		return p, d.errorf(passNode, path+".pass_macs", "%d MACs: at most %d are supported", len(p.PassMACs), maxPassMACs)
	}
	if p.PassHostMAC && len(p.PassMACs) == maxPassMACs {
		return p, d.errorf(passNode, path+".pass_macs", "%d MACs and the host MAC of pass_host_mac: at most %d are supported", len(p.PassMACs), maxPassMACs)
	}
	return p, nil
}

func (d *decoder) bridge(n *yaml.Node, path string) (Bridge, bridgeNodes, error) {
	b := Bridge{AgeingTime: bridge.DefaultAgeingTime, MaxEntries: bridge.DefaultMaxEntries, Pos: pos(n)}
	var bn bridgeNodes
	err := d.fields(n, path, "name, ports, ageing_time, max_entries, static, vlans", func(key string, v *yaml.Node, field string) (err error) {
		switch key {
		case "name":
			bn.name = v
			b.Name, err = d.str(v, field)
		case "ports":
			bn.ports = v
			err = d.seq(v, field, func(_ int, el *yaml.Node, field string) error {
				s, err := d.str(el, field)
				b.Ports = append(b.Ports, s)
				bn.portItems = append(bn.portItems, el)
				return err
			})
		case "ageing_time":
			b.AgeingTime, err = d.duration(v, field)
			switch {
			case err != nil:
			case b.AgeingTime%time.Second != 0:
				err = d.errorf(v, field, "%s: must be whole seconds", b.AgeingTime)
			case b.AgeingTime > maxAgeingTime:
				err = d.errorf(v, field, "%s: must be at most %s", b.AgeingTime, maxAgeingTime)
			}
		case "max_entries":
			b.MaxEntries, err = d.intRange(v, field, 1, maxEntries)
		case "static":
			bn.static = v
			err = d.seq(v, field, func(_ int, el *yaml.Node, path string) error {
				s := StaticEntry{Pos: pos(el)}
				var macNode, portNode, vlanNode *yaml.Node
				err := d.fields(el, path, "mac, port, vlan", func(key string, v *yaml.Node, field string) (err error) {
					switch key {
					case "mac":
						macNode = v
						s.MAC, err = d.mac(v, field)
						switch {
						case err != nil:
						case s.MAC[0]&1 != 0:
							err = d.errorf(v, field, "%s is a multicast address: a static entry needs a unicast one", s.MAC)
						case bytes.Equal(s.MAC, make(net.HardwareAddr, 6)):
							err = d.errorf(v, field, "%s is the zero address: a static entry needs a unicast one", s.MAC)
						}
					case "port":
						portNode = v
						s.Port, err = d.str(v, field)
					case "vlan":
						vlanNode = v
						s.VLAN, err = d.intRange(v, field, 1, maxVID)
					default:
						err = errUnknown
					}
					return err
				})
				if err == nil && (macNode == nil || portNode == nil) {
					err = d.errorf(el, path, "a static entry needs both mac and port")
				}
				b.Static = append(b.Static, s)
				bn.staticMAC = append(bn.staticMAC, macNode)
				bn.staticPort = append(bn.staticPort, portNode)
				bn.staticVLAN = append(bn.staticVLAN, vlanNode)
				return err
			})
		case "vlans":
			bn.vlans = v
			err = d.vlans(v, field, &b, &bn)
		default:
			err = errUnknown
		}
		return err
	})
	if err == nil && bn.name == nil {
		err = d.errorf(n, path+".name", "missing: give the bridge a name")
	}
	return b, bn, err
}

// vlans decodes a bridge's vlans mapping: port name → {pvid: VID,
// tagged: [VID, ...]}. Whether the names are the bridge's ports is checked
// by validate, which knows them all.
func (d *decoder) vlans(n *yaml.Node, path string, b *Bridge, bn *bridgeNodes) error {
	if n.Kind != yaml.MappingNode {
		return d.errorf(n, path, "must be a mapping from port names to {pvid: VID, tagged: [VID, ...]}")
	}
	b.VLANs = []PortVLANs{}
	seen := make(map[string]bool)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		field := path + "." + k.Value
		port, err := d.str(k, field)
		if err != nil {
			return err
		}
		if seen[port] {
			return d.errorf(k, field, "given twice")
		}
		seen[port] = true
		pv := PortVLANs{Port: port, Pos: pos(k)}
		var taggedItems []*yaml.Node
		err = d.fields(v, field, "pvid, tagged", func(key string, v *yaml.Node, field string) (err error) {
			switch key {
			case "pvid":
				pv.PVID, err = d.intRange(v, field, 1, maxVID)
			case "tagged":
				err = d.seq(v, field, func(_ int, el *yaml.Node, field string) error {
					vid, err := d.intRange(el, field, 1, maxVID)
					pv.Tagged = append(pv.Tagged, vid)
					taggedItems = append(taggedItems, el)
					return err
				})
			default:
				err = errUnknown
			}
			return err
		})
		if err != nil {
			return err
		}
		if pv.PVID == 0 && len(pv.Tagged) == 0 {
			return d.errorf(v, field, "port %q is in no VLAN: give it a pvid, tagged VLANs, or both", port)
		}
		for j, vid := range pv.Tagged {
			tf := fmt.Sprintf("%s.tagged[%d]", field, j)
			if vid == pv.PVID {
				return d.errorf(taggedItems[j], tf, "VLAN %d is the port's pvid (untagged): a VLAN is either the pvid or tagged", vid)
			}
			if k := slices.Index(pv.Tagged, vid); k < j {
				return d.errorf(taggedItems[j], tf, "VLAN %d is listed twice (also tagged[%d])", vid, k)
			}
		}
		b.VLANs = append(b.VLANs, pv)
		bn.vlanPorts = append(bn.vlanPorts, k)
	}
	return nil
}

func (d *decoder) options(n *yaml.Node, path string, o *Options) error {
	return d.fields(n, path, "frame_size, ring_size, workers, control, profile, metrics, worker_priority, worker_cpus", func(key string, v *yaml.Node, field string) (err error) {
		switch key {
		case "frame_size":
			o.FrameSize, err = d.intRange(v, field, 2048, 4096)
			if err == nil && o.FrameSize != 2048 && o.FrameSize != 4096 {
				err = d.errorf(v, field, "%d: must be 2048 or 4096", o.FrameSize)
			}
		case "ring_size":
			o.RingSize, err = d.intRange(v, field, 64, 1<<16)
			if err == nil && o.RingSize&(o.RingSize-1) != 0 {
				err = d.errorf(v, field, "%d is not a power of two", o.RingSize)
			}
		case "workers":
			o.Workers, err = d.intRange(v, field, 0, maxQueues)
		case "control":
			o.Control, err = d.str(v, field)
		case "profile":
			o.Profile, err = d.boolean(v, field)
		case "worker_priority":
			o.WorkerPriority, err = d.intRange(v, field, 0, 99)
			o.WorkerPriorityPos = pos(v)
		case "worker_cpus":
			o.WorkerCPUsPos = pos(v)
			seen := map[int]bool{}
			err = d.seq(v, field, func(_ int, el *yaml.Node, field string) error {
				c, err := d.intRange(el, field, 0, 1023)
				if err == nil && seen[c] {
					err = d.errorf(el, field, "CPU %d is listed twice", c)
				}
				seen[c] = true
				o.WorkerCPUs = append(o.WorkerCPUs, c)
				return err
			})
		case "metrics":
			if o.Metrics, err = d.str(v, field); err == nil {
				o.MetricsPos = pos(v)
				if _, port, perr := net.SplitHostPort(o.Metrics); perr != nil || port == "" {
					err = d.errorf(v, field, "%q is not host:port (e.g. 127.0.0.1:9464)", o.Metrics)
				}
			}
		default:
			err = errUnknown
		}
		return err
	})
}

// validate checks what spans fields: names that must exist and be unique.
// Each error is at the offending value.
func (d *decoder) validate(c *Config, nodes []bridgeNodes) error {
	ports := make(map[string]int)
	for i, p := range c.Ports {
		if j, dup := ports[p.Interface]; dup {
			return c.ErrorAt(p.InterfacePos, fmt.Sprintf("ports[%d].interface", i), "%q is listed twice (also ports[%d])", p.Interface, j)
		}
		ports[p.Interface] = i
	}
	owner := make(map[string]string)
	names := make(map[string]bool)
	for i, b := range c.Bridges {
		bn := nodes[i]
		path := fmt.Sprintf("bridges[%d]", i)
		if names[b.Name] {
			return d.errorf(bn.name, path+".name", "bridge %q is defined twice", b.Name)
		}
		names[b.Name] = true
		if len(b.Ports) == 0 {
			n := bn.ports
			if n == nil {
				n = bn.name
			}
			return d.errorf(n, path+".ports", "bridge %q has no ports", b.Name)
		}
		members := make(map[string]bool)
		for j, p := range b.Ports {
			field := fmt.Sprintf("%s.ports[%d]", path, j)
			if _, ok := ports[p]; !ok {
				return d.errorf(bn.portItems[j], field, "%q is not one of the ports defined under ports", p)
			}
			if o, taken := owner[p]; taken {
				return d.errorf(bn.portItems[j], field, "%q is already a port of bridge %q", p, o)
			}
			owner[p] = b.Name
			members[p] = true
		}
		// On a VLAN-aware bridge, the VLANs of each port.
		var portVLANs map[string][]int
		if b.VLANs != nil {
			portVLANs = make(map[string][]int)
			for j, pv := range b.VLANs {
				if !members[pv.Port] {
					return d.errorf(bn.vlanPorts[j], path+".vlans."+pv.Port, "%q is not a port of bridge %q", pv.Port, b.Name)
				}
				portVLANs[pv.Port] = pv.Tagged
				if pv.PVID != 0 {
					portVLANs[pv.Port] = append([]int{pv.PVID}, pv.Tagged...)
				}
			}
			for _, p := range b.Ports {
				if _, ok := portVLANs[p]; !ok {
					return d.errorf(bn.vlans, path+".vlans", "port %q of bridge %q has no VLANs: on a VLAN-aware bridge every port needs a pvid or tagged VLANs", p, b.Name)
				}
			}
		}
		// Each static entry is one FDB entry per VLAN it applies to: its
		// vlan, or every VLAN of its port for vlan 0 on a VLAN-aware
		// bridge (VLAN 0 on a VLAN-unaware one). A MAC is pinned at most
		// once per VLAN; pinned maps each (VLAN, MAC) to its entry.
		type pin struct {
			vlan int
			mac  string
		}
		pinned := make(map[pin]int)
		statics := 0
		for j, s := range b.Static {
			if !members[s.Port] {
				return d.errorf(bn.staticPort[j], fmt.Sprintf("%s.static[%d].port", path, j), "%q is not a port of bridge %q", s.Port, b.Name)
			}
			vf := fmt.Sprintf("%s.static[%d].vlan", path, j)
			vids := []int{s.VLAN}
			switch {
			case s.VLAN != 0 && b.VLANs == nil:
				return d.errorf(bn.staticVLAN[j], vf, "bridge %q has no vlans: only a VLAN-aware bridge takes a vlan here", b.Name)
			case s.VLAN != 0 && !slices.Contains(portVLANs[s.Port], s.VLAN):
				return d.errorf(bn.staticVLAN[j], vf, "port %q is not in VLAN %d (its VLANs: %v)", s.Port, s.VLAN, portVLANs[s.Port])
			case s.VLAN == 0 && b.VLANs != nil:
				vids = portVLANs[s.Port]
			}
			for _, vid := range vids {
				if statics++; statics > b.MaxEntries {
					continue // refused below; the map stays within max_entries
				}
				k := pin{vid, string(s.MAC)}
				if o, dup := pinned[k]; dup {
					on := ""
					if b.VLANs != nil {
						on = fmt.Sprintf(" on VLAN %d", vid)
					}
					return d.errorf(bn.staticMAC[j], fmt.Sprintf("%s.static[%d].mac", path, j), "%s is pinned twice%s (also static[%d])", s.MAC, on, o)
				}
				pinned[k] = j
			}
		}
		if statics > b.MaxEntries {
			per := ""
			if b.VLANs != nil {
				per = " (one per VLAN of the port where no vlan is given)"
			}
			return d.errorf(bn.static, path+".static", "%d static entries%s: more than max_entries (%d)", statics, per, b.MaxEntries)
		}
	}
	return nil
}
