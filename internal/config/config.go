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
	"strconv"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is a whole configuration file, validated.
type Config struct {
	// File is the path the configuration was read from, for messages.
	File    string
	Ports   []Port
	Bridges []Bridge
	Options Options
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
	// of the device's RX queues.
	Queues int
	// PassMACs are destination MACs whose frames the XDP program passes to
	// the kernel instead of the fast path.
	PassMACs []net.HardwareAddr
	// PassHostMAC adds the interface's own MAC to PassMACs, so that the host
	// keeps its connectivity on a physical NIC port.
	PassHostMAC bool
	// Line is where the port is defined, for later messages.
	Line int
}

// Bridge is one learning L2 bridge over some of the ports.
type Bridge struct {
	Name string
	// Ports are interface names, each defined under ports and used by at
	// most one bridge.
	Ports []string
	// AgeingTime is how long a learned MAC lives without traffic. Default 300s.
	AgeingTime time.Duration
	// MaxEntries bounds the FDB; when it is full no new MAC is learned and
	// frames to unknown MACs are flooded. Default 65536.
	MaxEntries int
	// Static are FDB entries that never age and are never relearned.
	Static []StaticEntry
	// Line is where the bridge is defined.
	Line int
}

// StaticEntry pins a MAC to a port of its bridge.
type StaticEntry struct {
	MAC  net.HardwareAddr
	Port string
}

// Options tune the engine. Zero values take defaults.
type Options struct {
	// FrameSize is the UMEM chunk size: 2048 or 4096 (default).
	FrameSize int
	// RingSize sizes every AF_XDP ring (fill, completion, RX, TX). Default 2048.
	RingSize int
	// Workers caps the number of worker threads; 0 means one per queue
	// index that every port has.
	Workers int
	// Control is the path of the control socket.
	Control string
}

// Defaults of the fields left out of a file.
const (
	DefaultAgeingTime = 300 * time.Second
	DefaultMaxEntries = 65536
	DefaultFrameSize  = 4096
	DefaultRingSize   = 2048
	DefaultControl    = "/run/xdpfwd.sock"
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
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: empty configuration: it needs at least one port", file)
		}
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	c := &Config{File: file, Options: Options{FrameSize: DefaultFrameSize, RingSize: DefaultRingSize, Control: DefaultControl}}
	if err := d.config(&doc, c); err != nil {
		return nil, err
	}
	return c, nil
}

// Error is a configuration error at a place in the file.
type Error struct {
	File         string
	Line, Column int
	// Field is the path of the field, e.g. bridges[0].ageing_time.
	Field string
	Msg   string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s:%d:%d: %s: %s", e.File, e.Line, e.Column, e.Field, e.Msg)
}

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

func (d *decoder) config(doc *yaml.Node, c *Config) error {
	root := doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	var portsNode *yaml.Node
	bridgeNodes := map[int]*yaml.Node{}
	err := d.fields(root, "", "ports, bridges, options", func(key string, v *yaml.Node, field string) error {
		switch key {
		case "ports":
			portsNode = v
			return d.seq(v, field, func(_ int, el *yaml.Node, field string) error {
				p, err := d.port(el, field)
				c.Ports = append(c.Ports, p)
				return err
			})
		case "bridges":
			return d.seq(v, field, func(i int, el *yaml.Node, field string) error {
				b, err := d.bridge(el, field)
				bridgeNodes[i] = el
				c.Bridges = append(c.Bridges, b)
				return err
			})
		case "options":
			return d.options(v, field, &c.Options)
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
	return d.validate(c, bridgeNodes)
}

func (d *decoder) port(n *yaml.Node, path string) (Port, error) {
	p := Port{XDPMode: "auto", Bind: "auto", Line: n.Line}
	err := d.fields(n, path, "interface, xdp_mode, bind, queues, pass_macs, pass_host_mac", func(key string, v *yaml.Node, field string) (err error) {
		switch key {
		case "interface":
			p.Interface, err = d.str(v, field)
			if err == nil && len(p.Interface) > 15 {
				err = d.errorf(v, field, "%q is longer than an interface name can be (15)", p.Interface)
			}
		case "xdp_mode":
			p.XDPMode, err = d.oneOf(v, field, "auto", "native", "generic")
		case "bind":
			p.Bind, err = d.oneOf(v, field, "auto", "zerocopy", "copy")
		case "queues":
			p.Queues, err = d.intRange(v, field, 0, 64)
		case "pass_macs":
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
	if err == nil && p.Interface == "" {
		err = d.errorf(n, path+".interface", "missing: name the network interface")
	}
	return p, err
}

func (d *decoder) bridge(n *yaml.Node, path string) (Bridge, error) {
	b := Bridge{AgeingTime: DefaultAgeingTime, MaxEntries: DefaultMaxEntries, Line: n.Line}
	err := d.fields(n, path, "name, ports, ageing_time, max_entries, static", func(key string, v *yaml.Node, field string) (err error) {
		switch key {
		case "name":
			b.Name, err = d.str(v, field)
		case "ports":
			err = d.seq(v, field, func(_ int, el *yaml.Node, field string) error {
				s, err := d.str(el, field)
				b.Ports = append(b.Ports, s)
				return err
			})
		case "ageing_time":
			b.AgeingTime, err = d.duration(v, field)
		case "max_entries":
			b.MaxEntries, err = d.intRange(v, field, 1, 1<<24)
		case "static":
			err = d.seq(v, field, func(_ int, el *yaml.Node, path string) error {
				var s StaticEntry
				err := d.fields(el, path, "mac, port", func(key string, v *yaml.Node, field string) (err error) {
					switch key {
					case "mac":
						s.MAC, err = d.mac(v, field)
					case "port":
						s.Port, err = d.str(v, field)
					default:
						err = errUnknown
					}
					return err
				})
				if err == nil && (s.MAC == nil || s.Port == "") {
					err = d.errorf(el, path, "a static entry needs both mac and port")
				}
				b.Static = append(b.Static, s)
				return err
			})
		default:
			err = errUnknown
		}
		return err
	})
	if err == nil && b.Name == "" {
		err = d.errorf(n, path+".name", "missing: give the bridge a name")
	}
	return b, err
}

func (d *decoder) options(n *yaml.Node, path string, o *Options) error {
	return d.fields(n, path, "frame_size, ring_size, workers, control", func(key string, v *yaml.Node, field string) (err error) {
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
			o.Workers, err = d.intRange(v, field, 0, 64)
		case "control":
			o.Control, err = d.str(v, field)
		default:
			err = errUnknown
		}
		return err
	})
}

// validate checks what spans fields: names that must exist and be unique.
func (d *decoder) validate(c *Config, bridgeNodes map[int]*yaml.Node) error {
	ports := make(map[string]int)
	for i, p := range c.Ports {
		if _, dup := ports[p.Interface]; dup {
			return &Error{File: d.file, Line: p.Line, Column: 1, Field: fmt.Sprintf("ports[%d].interface", i), Msg: fmt.Sprintf("%q is listed twice", p.Interface)}
		}
		ports[p.Interface] = i
	}
	owner := make(map[string]string)
	names := make(map[string]bool)
	for i, b := range c.Bridges {
		bn := bridgeNodes[i]
		at := func(field, format string, args ...any) error {
			return d.errorf(bn, fmt.Sprintf("bridges[%d].%s", i, field), format, args...)
		}
		if names[b.Name] {
			return at("name", "bridge %q is defined twice", b.Name)
		}
		names[b.Name] = true
		if len(b.Ports) == 0 {
			return at("ports", "bridge %q has no ports", b.Name)
		}
		members := make(map[string]bool)
		for j, p := range b.Ports {
			if _, ok := ports[p]; !ok {
				return at(fmt.Sprintf("ports[%d]", j), "%q is not one of the ports defined under ports", p)
			}
			if o, taken := owner[p]; taken {
				return at(fmt.Sprintf("ports[%d]", j), "%q is already a port of bridge %q", p, o)
			}
			owner[p] = b.Name
			members[p] = true
		}
		for j, s := range b.Static {
			if !members[s.Port] {
				return at(fmt.Sprintf("static[%d].port", j), "%q is not a port of bridge %q", s.Port, b.Name)
			}
			if s.MAC[0]&1 != 0 {
				return at(fmt.Sprintf("static[%d].mac", j), "%s is a multicast address", s.MAC)
			}
		}
	}
	return nil
}
