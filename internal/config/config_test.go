package config

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/xdpfwd/xdpfwd/fastpath/bridge"
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
	if b.Name != "br0" || len(b.Ports) != 3 || b.AgeingTime != 300*time.Second || b.MaxEntries != bridge.DefaultMaxEntries {
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
	if c.Bridges[0].AgeingTime != bridge.DefaultAgeingTime || c.Bridges[0].MaxEntries != bridge.DefaultMaxEntries || c.Options.FrameSize != DefaultFrameSize || c.Options.Control != DefaultControl {
		t.Errorf("defaults not applied: %+v", c)
	}
}

// ruleset is relative to the configuration file's directory.
func TestParseRuleset(t *testing.T) {
	for _, tc := range []struct{ file, val, want string }{
		{"/etc/xdpfwd/x.yaml", "rules.nft", "/etc/xdpfwd/rules.nft"},
		{"x.yaml", "rules.nft", "rules.nft"},
		{"conf/x.yaml", "../r/rules.nft", "r/rules.nft"},
		{"/etc/xdpfwd/x.yaml", "/srv/rules.nft", "/srv/rules.nft"},
	} {
		c, err := Parse(tc.file, []byte(strings.Replace(good, "options:", "ruleset: "+tc.val+"\noptions:", 1)))
		if err != nil {
			t.Fatal(err)
		}
		if c.Ruleset != tc.want || c.RulesetPos.Line != 17 {
			t.Errorf("%s names %s: Ruleset %q at %+v, want %q at line 17", tc.file, tc.val, c.Ruleset, c.RulesetPos, tc.want)
		}
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
		{"unknown bridge port", "veth-b, veth-c]=>veth-b, veth-d]", `x.yaml:12:29: bridges[0].ports[2]: "veth-d" is not one of the ports`},
		{"port in two bridges", "options:=>  - name: br1\n    ports: [veth-a]\noptions:", `x.yaml:18:13: bridges[1].ports[0]: "veth-a" is already a port of bridge "br0"`},
		{"port twice in a bridge", "ports: [veth-a, veth-b, veth-c]=>ports: [veth-a, veth-b, veth-a]", `x.yaml:12:29: bridges[0].ports[2]: "veth-a" is already a port of bridge "br0"`},
		{"duplicate bridge", "options:=>  - name: br0\n    ports: [veth-a]\noptions:", `x.yaml:17:11: bridges[1].name: bridge "br0" is defined twice`},
		{"static port outside bridge", "port: veth-b=>port: veth-x", `x.yaml:16:15: bridges[0].static[0].port: "veth-x" is not a port of bridge "br0"`},
		{"duplicate port", "interface: veth-c=>interface: veth-a", `x.yaml:7:16: ports[2].interface: "veth-a" is listed twice (also ports[0])`},
		{"ageing not whole seconds", "300s=>1500ms", `x.yaml:13:18: bridges[0].ageing_time: 1.5s: must be whole seconds`},
		{"ageing too long", "300s=>1073741825s", `x.yaml:13:18: bridges[0].ageing_time: 298261h37m5s: must be at most`},
		{"ageing negative", "300s=>-1s", `x.yaml:13:18: bridges[0].ageing_time: -1s must be positive`},
		{"max entries range", "ageing_time: 300s=>max_entries: 16777217", `x.yaml:13:18: bridges[0].max_entries: 16777217 is out of range [1, 16777216]`},
		{"static zero mac", "02:00:00:00:00:01=>00:00:00:00:00:00", `x.yaml:15:14: bridges[0].static[0].mac: 00:00:00:00:00:00 is the zero address`},
		{"static multicast mac", "02:00:00:00:00:01=>01:00:5e:00:00:01", `x.yaml:15:14: bridges[0].static[0].mac: 01:00:5e:00:00:01 is a multicast address`},
		{"static broadcast mac", "02:00:00:00:00:01=>ff:ff:ff:ff:ff:ff", `x.yaml:15:14: bridges[0].static[0].mac: ff:ff:ff:ff:ff:ff is a multicast address`},
		{"static long mac", "02:00:00:00:00:01=>02:00:00:00:00:00:00:01", `x.yaml:15:14: bridges[0].static[0].mac: "02:00:00:00:00:00:00:01" is not an Ethernet MAC`},
		{"static without port", "\n        port: veth-b=>", `x.yaml:15:9: bridges[0].static[0]: a static entry needs both mac and port`},
		{"static mac twice", "port: veth-b\n=>port: veth-b\n      - mac: 02:00:00:00:00:01\n        port: veth-a\n", `x.yaml:17:14: bridges[0].static[1].mac: 02:00:00:00:00:01 is pinned twice (also static[0])`},
		{"static over max entries", "port: veth-b\n=>port: veth-b\n      - mac: 02:00:00:00:00:02\n        port: veth-a\n    max_entries: 1\n", `x.yaml:15:7: bridges[0].static: 2 static entries: more than max_entries (1)`},
		{"bridge without name", "- name: br0\n    ports=>- ports", `x.yaml:11:5: bridges[0].name: missing`},
		{"bridge without ports", "ports: [veth-a, veth-b, veth-c]=>ports: []", `x.yaml:12:12: bridges[0].ports: bridge "br0" has no ports`},
		{"pass_macs too many", "[02:00:00:00:00:aa]=>" + macList(65), `x.yaml:9:16: ports[2].pass_macs: 65 MACs: at most 64`},
		{"pass_macs and host mac too many", "[02:00:00:00:00:aa]=>" + macList(64), `x.yaml:9:16: ports[2].pass_macs: 64 MACs and the host MAC of pass_host_mac: at most 64`},
		{"second document", "workers: 1\n=>workers: 1\n---\nports:\n  - interface: z\n", `x.yaml:19:1: only one YAML document is allowed`},
		{"second document after ...", "workers: 1\n=>workers: 1\n...\n# next\n--- {ports: []}\n", `x.yaml:21:1: only one YAML document is allowed`},
		{"third document", "workers: 1\n=>workers: 1\n---\n---\n[1]\n", `x.yaml:20:1: only one YAML document is allowed`},
		{"syntax in second document", "workers: 1\n=>workers: 1\n---\nports: [\n", `x.yaml: yaml: line 20: did not find expected node content`},
		{"queues range", "queues: 2=>queues: 500", `x.yaml:6:13: ports[1].queues: 500 is out of range`},
		{"not a list", "ports: [veth-a, veth-b, veth-c]=>ports: veth-a", `bridges[0].ports: must be a list`},
		{"metrics address", "workers: 1=>metrics: banana", `options.metrics: "banana" is not host:port`},
		{"ring size", "workers: 1=>ring_size: 1000", `options.ring_size: 1000 is not a power of two`},
		{"top level", "options:=>optoins:", `optoins: unknown field`},
		{"ruleset not a path", "options:=>ruleset: [a]\noptions:", `x.yaml:17:10: ruleset: must be the path of an nft rules file`},
		{"ruleset empty", "options:=>ruleset: \"\"\noptions:", `x.yaml:17:10: ruleset: must be the path of an nft rules file`},
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

// macList is a YAML flow list of n distinct unicast MACs.
func macList(n int) string {
	macs := make([]string, n)
	for i := range macs {
		macs[i] = fmt.Sprintf("02:00:00:00:01:%02x", i)
	}
	return "[" + strings.Join(macs, ", ") + "]"
}

// The data plane takes up to 64 pass MACs per port, the host MAC included.
func TestParsePassMACsLimit(t *testing.T) {
	for _, tc := range []struct {
		n    int
		host bool
	}{{64, false}, {63, true}} {
		src := fmt.Sprintf("ports:\n  - interface: a\n    pass_host_mac: %v\n    pass_macs: %s\n", tc.host, macList(tc.n))
		c, err := Parse("x.yaml", []byte(src))
		if err != nil {
			t.Fatalf("%d MACs, host %v: %v", tc.n, tc.host, err)
		}
		if len(c.Ports[0].PassMACs) != tc.n {
			t.Errorf("%d MACs, host %v: got %d", tc.n, tc.host, len(c.Ports[0].PassMACs))
		}
	}
}

func TestParseOneDocument(t *testing.T) {
	// An empty document after the first ignores nothing, so it is allowed.
	for _, tail := range []string{"---\n", "---\n# nothing\n", "...\n", "---\n---\n"} {
		if _, err := Parse("x.yaml", []byte(good+tail)); err != nil {
			t.Errorf("good + %q: %v", tail, err)
		}
	}
	// So are empty documents before it.
	for _, head := range []string{"---\n", "---\n---\n", "# xdpfwd\n---\n"} {
		if _, err := Parse("x.yaml", []byte(head+good)); err != nil {
			t.Errorf("%q + good: %v", head, err)
		}
	}
	// A file of empty documents is an empty configuration.
	for _, src := range []string{"", "---", "---\n...\n", "# nothing\n---\n---\n"} {
		if _, err := Parse("e.yaml", []byte(src)); err == nil || err.Error() != "e.yaml: empty configuration: it needs at least one port" {
			t.Errorf("%q: %v", src, err)
		}
	}
	// But an explicit null is content.
	if _, err := Parse("x.yaml", []byte(good+"--- ~\n")); err == nil || !strings.Contains(err.Error(), "x.yaml:19:1: only one YAML document") {
		t.Errorf("good + --- ~: %v", err)
	}
}

// The decoded structs carry positions so that the daemon can place its
// own errors at the right value.
func TestParsePositions(t *testing.T) {
	c, err := Parse("x.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		got, want Pos
	}{
		{"ports[0]", c.Ports[0].Pos, Pos{2, 5}},
		{"ports[0].interface", c.Ports[0].InterfacePos, Pos{2, 16}},
		{"ports[0].queues", c.Ports[0].QueuesPos, Pos{}},
		{"ports[1].queues", c.Ports[1].QueuesPos, Pos{6, 13}},
		{"ports[2].interface", c.Ports[2].InterfacePos, Pos{7, 16}},
		{"bridges[0]", c.Bridges[0].Pos, Pos{11, 5}},
		{"bridges[0].static[0]", c.Bridges[0].Static[0].Pos, Pos{15, 9}},
	} {
		if tc.got != tc.want {
			t.Errorf("%s at %+v, want %+v", tc.name, tc.got, tc.want)
		}
	}
	for i, p := range c.Ports {
		if p.Pos.Line == 0 {
			t.Errorf("ports[%d] has no position", i)
		}
	}

	err = c.ErrorAt(c.Ports[1].QueuesPos, "ports[1].queues", "veth-b has %d RX queue(s)", 1)
	if got, want := err.Error(), "x.yaml:6:13: ports[1].queues: veth-b has 1 RX queue(s)"; got != want {
		t.Errorf("ErrorAt = %q, want %q", got, want)
	}
	var e *Error
	if !errors.As(err, &e) || e.File != "x.yaml" || e.Line != 6 || e.Column != 13 || e.Field != "ports[1].queues" {
		t.Errorf("ErrorAt gave %#v", err)
	}
}

func TestErrorFormat(t *testing.T) {
	for _, tc := range []struct {
		e    Error
		want string
	}{
		{Error{File: "f", Line: 3, Column: 4, Field: "a.b", Msg: "m"}, "f:3:4: a.b: m"},
		{Error{File: "f", Line: 3, Column: 1, Msg: "m"}, "f:3:1: m"},
		{Error{File: "f", Field: "a", Msg: "m"}, "f: a: m"},
	} {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.e, got, tc.want)
		}
	}
}

// yamlLines bounds the number of lines YAML sees in data: it breaks lines
// at \n, \r, NEL, LS and PS (counting \r\n twice only loosens the bound),
// and reads UTF-16 when data starts with its byte order mark.
func yamlLines(data []byte) int {
	runes := []rune(string(data))
	if len(data) >= 2 && (data[0] == 0xff && data[1] == 0xfe || data[0] == 0xfe && data[1] == 0xff) {
		units := make([]uint16, 0, len(data)/2)
		for i := 2; i+1 < len(data); i += 2 {
			if data[0] == 0xff {
				units = append(units, uint16(data[i])|uint16(data[i+1])<<8)
			} else {
				units = append(units, uint16(data[i])<<8|uint16(data[i+1]))
			}
		}
		runes = utf16.Decode(units)
	}
	n := 1
	for _, r := range runes {
		switch r {
		case '\n', '\r', '\u0085', '\u2028', '\u2029':
			n++
		}
	}
	return n
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte(goodRouter))
	f.Add([]byte("ports:\n  - interface: a\n"))
	f.Add([]byte(good + "---\nports:\n  - interface: z\n"))
	f.Add([]byte("\xff\xfe( 00")) // UTF-16: a line separator, then 00
	f.Add([]byte("ports: [{interface: a}]\n---\n---\n...\n--- [1]\n"))
	f.Add([]byte("ports: [{interface: a, pass_macs: [02:00:00:00:00:01]}]\nbridges: [{name: b, ports: [a], ageing_time: 1500ms, static: [{mac: 00:00:00:00:00:00, port: a}]}]\n"))
	f.Add([]byte(goodConntrack))
	f.Add([]byte("ports: [{interface: a}]\nconntrack: {max: 0, buckets: -1, timeouts: {udp_timeout: 0, tcp_timeout_established: 2147484}, tcp_loose: 2, tcp_max_retrans: 256}\n"))
	f.Add([]byte("ports: [{interface: a}]\nconntrack: {max: 1, timeouts: {icmpv6_timeout: 1, generic_timeout: 2147483}, tcp_be_liberal: 0}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("f.yaml", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "f.yaml:") {
				t.Fatalf("error does not start with the file: %v", err)
			}
			// A positioned error points into the file.
			var e *Error
			if errors.As(err, &e) && (e.Line < 1 || e.Column < 1 || e.Line > yamlLines(data)) {
				t.Fatalf("error at %d:%d, outside the file: %v", e.Line, e.Column, err)
			}
			return
		}
		// What is accepted, the data plane accepts.
		if len(c.Ports) == 0 {
			t.Fatal("accepted a config without ports")
		}
		if ct := c.Conntrack; ct.Max < 1 || ct.Max > maxConntrackEntries || ct.Buckets < 0 || ct.Buckets > maxConntrackEntries {
			t.Fatalf("conntrack %+v: a table size the tracker refuses", ct)
		}
		for _, k := range conntrackTimeoutKeys {
			d := *conntrackTimeout(&c.Conntrack.Timeouts, k)
			if d < time.Second || d > maxConntrackTimeout*time.Second || d%time.Second != 0 {
				t.Fatalf("conntrack timeout %s = %v", k, d)
			}
		}
		defined := make(map[string]bool)
		for _, p := range c.Ports {
			if p.Interface == "" || defined[p.Interface] || p.InterfacePos.Line < 1 {
				t.Fatalf("port %+v: empty, duplicate or without position", p)
			}
			defined[p.Interface] = true
			n := len(p.PassMACs)
			if p.PassHostMAC {
				n++
			}
			if n > 64 || p.Queues < 0 || p.Queues > 64 {
				t.Fatalf("port %+v: over the data plane's limits", p)
			}
			for _, m := range p.PassMACs {
				if len(m) != 6 {
					t.Fatalf("port %+v: pass MAC %v is not 6 bytes", p, m)
				}
			}
		}
		for _, b := range c.Bridges {
			if b.AgeingTime < time.Second || b.AgeingTime%time.Second != 0 || b.MaxEntries < 1 || len(b.Static) > b.MaxEntries {
				t.Fatalf("bridge %+v: ageing or entries the fast path refuses", b)
			}
			for _, p := range b.Ports {
				if !defined[p] {
					t.Fatalf("bridge %q: port %q not defined", b.Name, p)
				}
			}
			for _, s := range b.Static {
				if len(s.MAC) != 6 || s.MAC[0]&1 != 0 || net.HardwareAddr.String(s.MAC) == "00:00:00:00:00:00" {
					t.Fatalf("bridge %q: static MAC %v the fast path refuses", b.Name, s.MAC)
				}
			}
		}
	})
}
