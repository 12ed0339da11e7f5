package config

import (
	"slices"
	"strings"
	"testing"
)

// vlanGood is the VLAN-aware bridge of the README: two access ports on
// VLAN 10, one on VLAN 20, a trunk with both.
const vlanGood = `ports:
  - interface: a
  - interface: b
  - interface: c
  - interface: t
bridges:
  - name: br0
    ports: [a, b, c, t]
    vlans:
      a: {pvid: 10}
      b: {pvid: 10}
      c: {pvid: 20}
      t: {tagged: [10, 20]}
    static:
      - mac: 02:00:00:00:00:01
        port: t
        vlan: 20
      - mac: 02:00:00:00:00:02
        port: a
`

func TestParseVLANs(t *testing.T) {
	c, err := Parse("x.yaml", []byte(vlanGood))
	if err != nil {
		t.Fatal(err)
	}
	b := c.Bridges[0]
	want := []PortVLANs{
		{Port: "a", PVID: 10, Pos: Pos{10, 7}},
		{Port: "b", PVID: 10, Pos: Pos{11, 7}},
		{Port: "c", PVID: 20, Pos: Pos{12, 7}},
		{Port: "t", Tagged: []int{10, 20}, Pos: Pos{13, 7}},
	}
	if !slices.EqualFunc(b.VLANs, want, func(x, y PortVLANs) bool {
		return x.Port == y.Port && x.PVID == y.PVID && slices.Equal(x.Tagged, y.Tagged) && x.Pos == y.Pos
	}) {
		t.Fatalf("vlans %+v, want %+v", b.VLANs, want)
	}
	if b.Static[0].VLAN != 20 || b.Static[1].VLAN != 0 {
		t.Fatalf("static %+v", b.Static)
	}
	// Without vlans the bridge is VLAN-unaware: VLANs is nil.
	c, err = Parse("x.yaml", []byte("ports: [{interface: a}]\nbridges: [{name: b, ports: [a]}]\n"))
	if err != nil || c.Bridges[0].VLANs != nil {
		t.Fatalf("bridge without vlans: %+v, %v", c, err)
	}
}

func TestParseVLANErrors(t *testing.T) {
	for _, tc := range []struct {
		name, edit string // edit: "old=>new" applied to vlanGood
		want       string
	}{
		{"unknown port", "t: {tagged=>x: {tagged", `x.yaml:13:7: bridges[0].vlans.x: "x" is not a port of bridge "br0"`},
		{"port without vlans", "      c: {pvid: 20}\n=>", `x.yaml:10:7: bridges[0].vlans: port "c" of bridge "br0" has no VLANs`},
		{"vid zero", "pvid: 20=>pvid: 0", `x.yaml:12:17: bridges[0].vlans.c.pvid: 0 is out of range [1, 4094]`},
		{"vid 4095", "[10, 20]=>[10, 4095]", `x.yaml:13:24: bridges[0].vlans.t.tagged[1]: 4095 is out of range [1, 4094]`},
		{"vid not a number", "[10, 20]=>[10, twenty]", `x.yaml:13:24: bridges[0].vlans.t.tagged[1]: "twenty" is not an integer`},
		{"pvid also tagged", "{tagged: [10, 20]}=>{pvid: 20, tagged: [10, 20]}", `x.yaml:13:34: bridges[0].vlans.t.tagged[1]: VLAN 20 is the port's pvid`},
		{"tagged twice", "[10, 20]=>[10, 20, 10]", `x.yaml:13:28: bridges[0].vlans.t.tagged[2]: VLAN 10 is listed twice (also tagged[0])`},
		{"no vlan at all", "{pvid: 20}=>{}", `x.yaml:12:10: bridges[0].vlans.c: port "c" is in no VLAN`},
		{"unknown field", "{pvid: 20}=>{vid: 20}", `x.yaml:12:11: bridges[0].vlans.c.vid: unknown field "vid" (known: pvid, tagged)`},
		{"port given twice", "b: {pvid: 10}=>a: {pvid: 10}", `x.yaml:11:7: bridges[0].vlans.a: given twice`},
		{"not a mapping", "    vlans:\n      a: {pvid: 10}\n      b: {pvid: 10}\n      c: {pvid: 20}\n      t: {tagged: [10, 20]}\n=>    vlans: [a]\n", `x.yaml:9:12: bridges[0].vlans: must be a mapping`},
		{"static vlan not on port", "vlan: 20=>vlan: 30", `x.yaml:17:15: bridges[0].static[0].vlan: port "t" is not in VLAN 30`},
		{"static vlan out of range", "vlan: 20=>vlan: 5000", `x.yaml:17:15: bridges[0].static[0].vlan: 5000 is out of range`},
		{"static vlan without vlans", "    vlans:\n      a: {pvid: 10}\n      b: {pvid: 10}\n      c: {pvid: 20}\n      t: {tagged: [10, 20]}\n=>", `x.yaml:12:15: bridges[0].static[0].vlan: bridge "br0" has no vlans`},
		{"static on every VLAN and one", "port: a\n=>port: a\n      - mac: 02:00:00:00:00:02\n        port: a\n        vlan: 10\n", `x.yaml:20:14: bridges[0].static[2].mac: 02:00:00:00:00:02 is pinned twice on VLAN 10 (also static[1])`},
		{"statics per VLAN over max entries", "        port: a\n=>        port: t\n    max_entries: 2\n", `bridges[0].static: 3 static entries (one per VLAN of the port where no vlan is given): more than max_entries (2)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old, repl, _ := strings.Cut(tc.edit, "=>")
			src := strings.Replace(vlanGood, old, repl, 1)
			if src == vlanGood {
				t.Fatalf("edit %q changed nothing", tc.edit)
			}
			_, err := Parse("x.yaml", []byte(src))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
	// The same MAC pinned on two VLANs is two entries, not a duplicate.
	src := strings.Replace(vlanGood, "port: a\n", "port: a\n        vlan: 10\n      - mac: 02:00:00:00:00:02\n        port: t\n        vlan: 20\n", 1)
	if _, err := Parse("x.yaml", []byte(src)); err != nil {
		t.Fatalf("one MAC on two VLANs: %v", err)
	}
}

// FuzzParseVLANs fuzzes the vlans section of a VLAN-aware bridge: whatever
// the parser accepts is a valid membership (VIDs in range, no VID both
// pvid and tagged, no VID twice, every port of the bridge in a VLAN).
func FuzzParseVLANs(f *testing.F) {
	f.Add("a: {pvid: 10}\n      b: {pvid: 10}\n      c: {pvid: 20}\n      t: {tagged: [10, 20]}")
	f.Add("a: {pvid: 1, tagged: [2, 3]}\n      b: {pvid: 1}\n      c: {pvid: 1}\n      t: {pvid: 4094}")
	f.Add("a: {pvid: 10, tagged: [10]}")
	f.Fuzz(func(t *testing.T, vlans string) {
		src := strings.Replace(vlanGood, "a: {pvid: 10}\n      b: {pvid: 10}\n      c: {pvid: 20}\n      t: {tagged: [10, 20]}", vlans, 1)
		src = strings.Replace(src, "        vlan: 20\n", "", 1)
		c, err := Parse("f.yaml", []byte(src))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "f.yaml") {
				t.Fatalf("error without the file: %v", err)
			}
			return
		}
		b := c.Bridges[0]
		in := map[string]bool{}
		for _, pv := range b.VLANs {
			if !slices.Contains(b.Ports, pv.Port) || in[pv.Port] {
				t.Fatalf("vlans entry %+v: not a port of the bridge, or twice", pv)
			}
			in[pv.Port] = true
			vids := pv.Tagged
			if pv.PVID != 0 {
				vids = append([]int{pv.PVID}, vids...)
			}
			if len(vids) == 0 {
				t.Fatalf("port %s in no VLAN accepted", pv.Port)
			}
			for i, v := range vids {
				if v < 1 || v > 4094 || slices.Index(vids, v) != i {
					t.Fatalf("port %s: VIDs %v accepted", pv.Port, vids)
				}
			}
		}
		for _, p := range b.Ports {
			if b.VLANs != nil && !in[p] {
				t.Fatalf("port %s without VLANs accepted", p)
			}
		}
	})
}
