package config

import (
	"strings"
	"testing"
	"time"
)

const good = `ports:
  - interface: veth-a      # a netdev in the daemon's namespace
    xdp_mode: auto         # auto | native | generic
  - interface: veth-b
    xdp_mode: generic
    queues: 2
  - interface: veth-c
    pass_host_mac: true
    pass_macs: [02:00:00:00:00:aa]
bridges:
  - name: br0
    ports: [veth-a, veth-b, veth-c]
    ageing_time: 300s
    static:
      - mac: 02:00:00:00:00:01
        port: veth-b
options:
  workers: 1
`

func TestParseGood(t *testing.T) {
	c, err := Parse("x.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Ports) != 3 || c.Ports[1].XDPMode != "generic" || c.Ports[1].Queues != 2 || c.Ports[0].XDPMode != "auto" || c.Ports[0].Bind != "auto" {
		t.Errorf("ports = %+v", c.Ports)
	}
	if !c.Ports[2].PassHostMAC || c.Ports[2].PassMACs[0].String() != "02:00:00:00:00:aa" {
		t.Errorf("port 2 = %+v", c.Ports[2])
	}
	b := c.Bridges[0]
	if b.Name != "br0" || len(b.Ports) != 3 || b.AgeingTime != 300*time.Second || b.MaxEntries != DefaultMaxEntries {
		t.Errorf("bridge = %+v", b)
	}
	if b.Static[0].Port != "veth-b" || b.Static[0].MAC.String() != "02:00:00:00:00:01" {
		t.Errorf("static = %+v", b.Static)
	}
	if c.Options.Workers != 1 || c.Options.FrameSize != DefaultFrameSize || c.Options.RingSize != DefaultRingSize || c.Options.Control != DefaultControl {
		t.Errorf("options = %+v", c.Options)
	}
}

func TestParseDefaults(t *testing.T) {
	c, err := Parse("x.yaml", []byte("ports:\n  - interface: a\nbridges:\n  - name: b\n    ports: [a]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Bridges[0].AgeingTime != DefaultAgeingTime || c.Options.FrameSize != DefaultFrameSize || c.Options.Control != DefaultControl {
		t.Errorf("defaults not applied: %+v", c)
	}
}

// Every bad file is refused with the file, the line and the field.
func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, edit string // edit: "old=>new" applied to good
		want       string
	}{
		{"bad duration", "300s=>banana", `x.yaml:13:18: bridges[0].ageing_time: "banana" is not a duration`},
		{"bad mode", "mode: generic=>mode: turbo", `x.yaml:5:15: ports[1].xdp_mode: "turbo" is not one of`},
		{"unknown field", "queues: 2=>qeueus: 2", `x.yaml:6:5: ports[1].qeueus: unknown field "qeueus"`},
		{"bad mac", "02:00:00:00:00:aa=>02:00:00:00:00", `x.yaml:9:17: ports[2].pass_macs[0]: "02:00:00:00:00" is not an Ethernet MAC`},
		{"unknown bridge port", "veth-b, veth-c]=>veth-b, veth-d]", `x.yaml:11:5: bridges[0].ports[2]: "veth-d" is not one of the ports`},
		{"static port outside bridge", "port: veth-b=>port: veth-x", `bridges[0].static[0].port: "veth-x" is not a port of bridge "br0"`},
		{"duplicate port", "interface: veth-c=>interface: veth-a", `ports[2].interface: "veth-a" is listed twice`},
		{"queues range", "queues: 2=>queues: 500", `x.yaml:6:13: ports[1].queues: 500 is out of range`},
		{"not a list", "ports: [veth-a, veth-b, veth-c]=>ports: veth-a", `bridges[0].ports: must be a list`},
		{"ring size", "workers: 1=>ring_size: 1000", `options.ring_size: 1000 is not a power of two`},
		{"top level", "options:=>optoins:", `optoins: unknown field`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old, repl, _ := strings.Cut(tc.edit, "=>")
			src := strings.Replace(good, old, repl, 1)
			if src == good {
				t.Fatalf("edit %q changed nothing", tc.edit)
			}
			_, err := Parse("x.yaml", []byte(src))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestParseEmptyAndSyntax(t *testing.T) {
	if _, err := Parse("e.yaml", nil); err == nil || !strings.Contains(err.Error(), "e.yaml") {
		t.Errorf("empty: %v", err)
	}
	if _, err := Parse("s.yaml", []byte("ports: [\n")); err == nil || !strings.Contains(err.Error(), "s.yaml") {
		t.Errorf("syntax: %v", err)
	}
	if _, err := Parse("p.yaml", []byte("bridges: []\n")); err == nil || !strings.Contains(err.Error(), "at least one port") {
		t.Errorf("no ports: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte("ports:\n  - interface: a\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("f.yaml", data)
		if err == nil && len(c.Ports) == 0 {
			t.Fatal("accepted a config without ports")
		}
		if err != nil && !strings.Contains(err.Error(), "f.yaml") {
			t.Fatalf("error does not name the file: %v", err)
		}
	})
}
