package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/xdpfwd/xdpfwd/internal/control"
)

// TestWriteTraceHeld: a held record says which stage holds the packet and
// why, and that a record continuing it follows; the continuation says
// which record it continues, after how long and held by what, and where
// the packet went; a simulated held packet would wait.
func TestWriteTraceHeld(t *testing.T) {
	step := control.TraceStep{Hook: "ip postrouting", Stage: "neighbour", Action: "stolen", Note: "waiting for the address of 10.2.0.3 on p2"}
	held := control.TraceRecord{ID: 7, Port: "p1", Packet: "10.1.0.2.41000 > 10.2.0.3.7 UDP ttl 64", Steps: []control.TraceStep{step},
		Exits: []control.TraceExit{{Outcome: "held", Port: "p1", Stage: "neighbour", Note: step.Note}}}
	cont := control.TraceRecord{ID: 9, Continues: 7, HeldNs: 1_250_000, HeldBy: "neighbour", Port: "p1", Queue: -1, Worker: 1,
		Packet: "10.2.0.1.41000 > 10.2.0.3.7 UDP ttl 63", Steps: []control.TraceStep{{Hook: "ip postrouting", Stage: "neighbour", Action: "continue", Egress: "port p2", Note: "to 02:00:00:00:00:02"}},
		Exits: []control.TraceExit{{Outcome: "sent", Port: "p2", Queue: 1}}}
	sim := held
	sim.ID, sim.Worker = 0, -1
	for _, tc := range []struct {
		rec  control.TraceRecord
		n    int
		want []string
	}{
		{held, 7, []string{"trace 7: ", " in p1 queue 0 ", "→ held by neighbour (waiting for the address of 10.2.0.3 on p2); a record continuing trace 7 follows when it is given back"}},
		{cont, 9, []string{"trace 9: ", " continues trace 7, released after 1.25ms held by neighbour (came in on p1, worker 1)", "to 02:00:00:00:00:02", "→ sent on p2 (queue 1)"}},
		{sim, 1, []string{"trace 1: simulated in p1", "→ held by neighbour (waiting for the address of 10.2.0.3 on p2): it would wait there"}},
	} {
		var out bytes.Buffer
		if err := writeTrace(&out, tc.n, &tc.rec, false); err != nil {
			t.Fatal(err)
		}
		for _, w := range tc.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("trace %d lacks %q:\n%s", tc.n, w, out.String())
			}
		}
	}
}

// TestOfflineFramesRefuses: --pcap takes whole Ethernet frames, and
// refuses, naming the file and the packet, a file of another link type
// (tcpdump -i any's), a frame cut by the capture's snap length, and an
// empty file.
func TestOfflineFramesRefuses(t *testing.T) {
	frame := make([]byte, 60)
	write := func(name string, lt layers.LinkType, ci gopacket.CaptureInfo) string {
		path := filepath.Join(t.TempDir(), name)
		var b bytes.Buffer
		w := pcapgo.NewWriter(&b)
		if err := w.WriteFileHeader(65535, lt); err != nil {
			t.Fatal(err)
		}
		if err := w.WritePacket(ci, frame[:ci.CaptureLength]); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	whole := gopacket.CaptureInfo{CaptureLength: 60, Length: 60}
	o := traceOptions{pcap: write("ok.pcap", layers.LinkTypeEthernet, whole)}
	if frames, err := o.offlineFrames(); err != nil || len(frames) != 1 || len(frames[0]) != 60 {
		t.Fatalf("a whole Ethernet frame: %d frames, %v", len(frames), err)
	}
	empty := filepath.Join(t.TempDir(), "empty.pcap")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, want string }{
		{write("any.pcap", layers.LinkTypeLinuxSLL, whole), "packet 1: link type Linux SLL: xdpfwd traces Ethernet frames"},
		{write("cut.pcap", layers.LinkTypeEthernet, gopacket.CaptureInfo{CaptureLength: 40, Length: 60}), "packet 1: 40 of its 60 bytes were captured"},
		{empty, "empty file"},
	} {
		o := traceOptions{pcap: tc.path}
		if _, err := o.offlineFrames(); err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.path) {
			t.Errorf("%s: %v, want %q", tc.path, err, tc.want)
		}
	}
}

// TestWriteTraceCopies: once a stage made a copy of the packet, each step
// names its copy, and a copy's first step is shown even if it changed
// nothing against the step before it, which is the other copy's.
func TestWriteTraceCopies(t *testing.T) {
	r := control.TraceRecord{ID: 1, Port: "p1", Steps: []control.TraceStep{
		{Hook: "ip prerouting", Stage: "route", Action: "continue", Egress: "port p2"},
		{Hook: "ip postrouting", Stage: "fragment", Action: "continue", Egress: "port p2", Rewrite: "a → b"},
		{Hook: "ip postrouting", Stage: "fragment", Copy: 1, Action: "continue", Egress: "port p2", Rewrite: "a → c"},
		{Hook: "netdev egress", Stage: "checksum", Action: "continue", Egress: "port p2"},
		{Hook: "netdev egress", Stage: "checksum", Copy: 1, Action: "continue", Egress: "port p2", Rewrite: "the UDP checksum"},
	}, Exits: []control.TraceExit{{Outcome: "sent", Port: "p2"}, {Outcome: "sent", Port: "p2"}}}
	var b bytes.Buffer
	if err := writeTrace(&b, 1, &r, false); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"fragment [copy 1]", "rewrote a → b", "fragment [copy 2]", "rewrote a → c", "checksum [copy 2]", "rewrote the UDP checksum", "(1 stages that changed nothing not shown"} {
		if !strings.Contains(out, want) {
			t.Errorf("lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "checksum [copy 1]") {
		t.Errorf("copy 1's checksum step changed nothing, yet is shown:\n%s", out)
	}
}

// TestParseTraceFlagsRefuses: flags that do not go together are refused
// rather than ignored.
func TestParseTraceFlagsRefuses(t *testing.T) {
	for _, args := range [][]string{
		{"--packet", "", "--in", "p1"},
		{"--packet", "00", "--in", "p1", "--count", "3"},
		{"--pcap", "f.pcap", "--in", "p1", "--port", "p2"},
		{"--pcap", "f.pcap", "--in", "p1", "--timeout", "1s"},
		{"--packet", "00", "--pcap", "f.pcap", "--in", "p1"},
		{"--packet", "00"},
		{"--packet", "00", "--in", "p1", "udp"},
		{"--in", "p1", "udp"},
		{"--count", "-1"},
	} {
		if _, err := parseTraceFlags(args); err == nil {
			t.Errorf("%q: accepted", args)
		}
	}
	if o, err := parseTraceFlags([]string{"--packet", "00", "--in", "p1", "--json"}); err != nil || o.packet != "00" || !o.json {
		t.Errorf("--packet 00 --in p1 --json: %+v, %v", o, err)
	}
}

// TestOfflineFramesCutShort: a pcap file whose last record is cut short
// (a capture still being written) gives the frames before it.
func TestOfflineFramesCutShort(t *testing.T) {
	var b bytes.Buffer
	w := pcapgo.NewWriter(&b)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	frame := make([]byte, 60)
	for range 2 {
		if err := w.WritePacket(gopacket.CaptureInfo{CaptureLength: 60, Length: 60}, frame); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "cut.pcap")
	if err := os.WriteFile(path, b.Bytes()[:b.Len()-10], 0o644); err != nil {
		t.Fatal(err)
	}
	o := traceOptions{pcap: path}
	if frames, err := o.offlineFrames(); err != nil || len(frames) != 1 {
		t.Fatalf("%d frames, %v; want the whole first one", len(frames), err)
	}
}
