package tests

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"golang.org/x/sys/unix"
)

// captureRuleset drops, in the forward hook, UDP to port 9: the drops a
// drop capture shows.
const captureRuleset = `table inet filter {
	chain forward {
		type filter hook forward priority 0; policy accept;
		udp dport 9 drop
	}
}
`

// captureFrame is a UDP/IPv4 frame from h1 to h2 through the router, to
// dport, with a payload that tells the frames apart.
func captureFrame(t *testing.T, l *routerLab, dport uint16, tag byte) []byte {
	t.Helper()
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: l.h1.IP.AsSlice(), DstIP: l.h2.IP.AsSlice(), Id: uint16(tag)}
	u := &layers.UDP{SrcPort: 40000, DstPort: layers.UDPPort(dport)}
	u.SetNetworkLayerForChecksum(ip)
	buf := gopacket.NewSerializeBuffer()
	err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		&layers.Ethernet{SrcMAC: l.h1.HWAddr, DstMAC: l.routerMAC, EthernetType: layers.EthernetTypeIPv4},
		ip, u, gopacket.Payload(bytes.Repeat([]byte{tag}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// startCapture runs `xdpfwd capture ARGS -w FILE` and waits until the
// daemon streams to it (the file has its header); wait waits for the
// command to end, fails t unless it exits 0, and returns its stderr.
func startCapture(t *testing.T, ctl string, args ...string) (file string, cmd *exec.Cmd, wait func() string) {
	t.Helper()
	file = filepath.Join(t.TempDir(), "capture.pcapng")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	cmd = exec.CommandContext(ctx, xdpfwdBinary(t), append(append([]string{"capture", "-w", file}, args...), "--control", ctl)...)
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if fi, err := os.Stat(file); err == nil && fi.Size() > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("xdpfwd capture %v: no file after 10s\n%s", args, stderr.String())
		}
	}
	return file, cmd, func() string {
		t.Helper()
		if err := cmd.Wait(); err != nil {
			t.Fatalf("xdpfwd capture %v: %v\n%s", args, err, stderr.String())
		}
		return stderr.String()
	}
}

// capturedPacket is one packet of a pcapng file.
type capturedPacket struct {
	data    []byte
	iface   string
	comment string
}

// readCapture reads a pcapng file with gopacket's reader.
func readCapture(t *testing.T, r io.Reader) []capturedPacket {
	t.Helper()
	ng, err := pcapgo.NewNgReader(r, pcapgo.DefaultNgReaderOptions)
	if err != nil {
		t.Fatalf("pcapng: %v", err)
	}
	var out []capturedPacket
	for {
		data, ci, opts, err := ng.ReadPacketDataWithOptions()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("pcapng: %v", err)
		}
		intf, err := ng.Interface(ci.InterfaceIndex)
		if err != nil {
			t.Fatalf("pcapng: %v", err)
		}
		p := capturedPacket{data: bytes.Clone(data), iface: intf.Name}
		if len(opts.Comments) > 0 {
			p.comment = strings.Join(opts.Comments, "; ")
		}
		if ci.Length != len(data) {
			t.Errorf("pcapng: a packet of %d bytes holds %d", ci.Length, len(data))
		}
		out = append(out, p)
	}
}

// readCaptureFile reads a pcapng file with gopacket's reader.
func readCaptureFile(t *testing.T, file string) []capturedPacket {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return readCapture(t, bytes.NewReader(b))
}

// tcpdumpRead runs tcpdump -r on the file (- reads stdin) and returns its
// lines.
func tcpdumpRead(t *testing.T, file string, stdin []byte) []string {
	t.Helper()
	if _, err := exec.LookPath("tcpdump"); err != nil {
		t.Fatal("tcpdump (Debian package tcpdump) is not installed: scripts/deps.sh installs it")
	}
	cmd := exec.Command("tcpdump", "-nn", "-r", file)
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tcpdump -r %s: %v\n%s", file, err, stderr.String())
	}
	return nonEmptyLines(string(out))
}

// sendFrames writes frames to h1's packet socket (out of its eth0).
func sendFrames(t *testing.T, l *routerLab, frames ...[]byte) {
	t.Helper()
	for _, f := range frames {
		if _, err := unix.Write(l.fd1, f); err != nil {
			t.Fatalf("send from h1: %v", err)
		}
	}
}

// `xdpfwd capture` on a router: an ingress capture with a filter holds
// exactly the matching frames, byte for byte, on the ingress port's
// interface, and tcpdump reads it (from a file and from a pipe); an
// egress capture holds the routed frame as h2 received it (TTL
// decremented, MACs rewritten); a drop capture holds the frame an nft
// rule dropped, with the reason as its comment.
func TestCapture(t *testing.T) {
	requireRoot(t)
	rules := filepath.Join(t.TempDir(), "capture.nft")
	if err := os.WriteFile(rules, []byte(captureRuleset), 0o644); err != nil {
		t.Fatal(err)
	}
	l := newRouterLab(t, false, rules)
	ctl := l.daemon.control

	t.Run("ingress", func(t *testing.T) {
		file, _, wait := startCapture(t, ctl, "--port", "p1", "--point", "ingress", "--count", "3", "udp", "port", "7")
		var want [][]byte
		for i := range 3 {
			m := captureFrame(t, l, 7, byte(0x10+i))
			want = append(want, m)
			sendFrames(t, l, captureFrame(t, l, 8, byte(0x20+i)), m, captureFrame(t, l, 5353, byte(0x30+i)))
		}
		stderr := wait()
		if !strings.Contains(stderr, "3 packets captured") {
			t.Errorf("stderr: %q", stderr)
		}
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		got := readCapture(t, bytes.NewReader(b))
		if len(got) != len(want) {
			t.Fatalf("captured %d frames, want %d", len(got), len(want))
		}
		for i, p := range got {
			if !bytes.Equal(p.data, want[i]) || p.iface != "p1" || p.comment != "" {
				t.Errorf("frame %d on %s (%q):\n%x\nwant on p1:\n%x", i, p.iface, p.comment, p.data, want[i])
			}
		}
		lines := tcpdumpRead(t, file, nil)
		if len(lines) != 3 {
			t.Fatalf("tcpdump -r: %d lines, want 3:\n%s", len(lines), strings.Join(lines, "\n"))
		}
		for _, line := range lines {
			if !strings.Contains(line, fmt.Sprintf("%s.40000 > %s.7: UDP, length 32", l.h1.IP, l.h2.IP)) {
				t.Errorf("tcpdump -r: %q", line)
			}
		}
	})

	t.Run("egress", func(t *testing.T) {
		// To stdout, piped into tcpdump -r - as well as read back.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, xdpfwdBinary(t), "capture", "-w", "-", "--point", "egress", "--port", "p2", "--count", "1", "--control", ctl, "udp", "and", "dst", "port", "7")
		var stdout, stderr syncBuffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(10 * time.Second); stdout.String() == ""; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("xdpfwd capture -w -: nothing written after 10s\n%s", stderr.String())
			}
		}
		sent := captureFrame(t, l, 7, 0x44)
		sendFrames(t, l, sent)
		if err := cmd.Wait(); err != nil {
			t.Fatalf("xdpfwd capture: %v\n%s", err, stderr.String())
		}
		out := []byte(stdout.String())
		got := readCapture(t, bytes.NewReader(out))
		if len(got) != 1 {
			t.Fatalf("captured %d frames, want 1", len(got))
		}
		// What h2 received, byte for byte.
		var recv []byte
		buf := make([]byte, 2048)
		for deadline := time.Now().Add(2 * time.Second); recv == nil && time.Now().Before(deadline); {
			n, err := unix.Read(l.fd2, buf)
			if err != nil {
				continue
			}
			if n == len(sent) && bytes.Equal(buf[n-32:n], sent[len(sent)-32:]) {
				recv = bytes.Clone(buf[:n])
			}
		}
		if recv == nil {
			t.Fatal("h2 did not receive the routed frame")
		}
		p := got[0]
		if !bytes.Equal(p.data, recv) || p.iface != "p2" {
			t.Errorf("egress capture on %s:\n%x\nwant what h2 received, on p2:\n%x", p.iface, p.data, recv)
		}
		pkt := gopacket.NewPacket(p.data, layers.LayerTypeEthernet, gopacket.Default)
		eth, _ := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
		ip, _ := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		if eth == nil || ip == nil || !bytes.Equal(eth.SrcMAC, l.routerMAC2) || !bytes.Equal(eth.DstMAC, l.h2.HWAddr) || ip.TTL != 63 {
			t.Errorf("egress capture is not the routed frame (router's MAC to h2's, TTL 63): %v", pkt)
		}
		lines := tcpdumpRead(t, "-", out)
		if len(lines) != 1 || !strings.Contains(lines[0], ".40000 > ") {
			t.Errorf("xdpfwd capture -w - | tcpdump -r -: %q", lines)
		}
	})

	t.Run("drop", func(t *testing.T) {
		file, _, wait := startCapture(t, ctl, "--point", "drop", "--count", "1", "udp", "port", "9")
		dropped := captureFrame(t, l, 9, 0x55)
		sendFrames(t, l, captureFrame(t, l, 7, 0x56), dropped)
		wait()
		got := readCaptureFile(t, file)
		if len(got) != 1 {
			t.Fatalf("captured %d drops, want 1", len(got))
		}
		// The frame as it was dropped: routed, so its TTL (and IP
		// checksum) already changed; its MACs not yet.
		p := got[0]
		want := bytes.Clone(dropped)
		want[22]--
		copy(want[24:26], p.data[24:26])
		const reason = "nft ip forward: nft drop at ip forward"
		if !bytes.Equal(p.data, want) || p.iface != "p1" || p.comment != reason {
			t.Errorf("drop capture on %s, comment %q:\n%x\nwant on p1, comment %q:\n%x", p.iface, p.comment, p.data, reason, want)
		}
		if ip, _ := gopacket.NewPacket(p.data, layers.LayerTypeEthernet, gopacket.Default).Layer(layers.LayerTypeIPv4).(*layers.IPv4); ip == nil || ip.Checksum != ipChecksum(p.data[14:34]) {
			t.Errorf("drop capture: bad IPv4 header checksum")
		}
	})

	t.Run("stage", func(t *testing.T) {
		// After the routing decision: the TTL is one less (and the IP
		// checksum fixed), the MACs are still h1's frame's.
		file, _, wait := startCapture(t, ctl, "--point", "stage", "--stage", "route", "--count", "1", "udp", "port", "7")
		sent := captureFrame(t, l, 7, 0x66)
		sendFrames(t, l, sent)
		wait()
		got := readCaptureFile(t, file)
		if len(got) != 1 {
			t.Fatalf("captured %d frames after route, want 1", len(got))
		}
		want := bytes.Clone(sent)
		want[22]--
		copy(want[24:26], got[0].data[24:26])
		if !bytes.Equal(got[0].data, want) || got[0].iface != "p1" {
			t.Errorf("after route, on %s:\n%x\nwant on p1:\n%x", got[0].iface, got[0].data, want)
		}
		// An unknown stage is refused, naming the stages.
		out, err := runCLIErr(t, 10*time.Second, "capture", "-w", filepath.Join(t.TempDir(), "x.pcapng"), "--point", "stage", "--stage", "nope", "--control", ctl)
		if err == nil || !strings.Contains(out, `no stage named "nope" (the stages: parse, `) || !strings.Contains(out, "nat ip postrouting") {
			t.Errorf("unknown stage: %v\n%s", err, out)
		}
	})

	t.Run("sigint", func(t *testing.T) {
		// Ctrl-C ends the capture: the file holds what came, and the
		// daemon takes the capture off its workers (another may start).
		file, cmd, wait := startCapture(t, ctl, "udp", "port", "7")
		sent := captureFrame(t, l, 7, 0x66)
		sendFrames(t, l, sent)
		time.Sleep(300 * time.Millisecond)
		if err := cmd.Process.Signal(unix.SIGINT); err != nil {
			t.Fatal(err)
		}
		stderr := wait()
		if !strings.Contains(stderr, "1 packet captured") {
			t.Errorf("stderr after SIGINT: %q", stderr)
		}
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if got := readCapture(t, bytes.NewReader(b)); len(got) != 1 || !bytes.Equal(got[0].data, sent) {
			t.Errorf("after SIGINT the file holds %d frames, want the one sent", len(got))
		}
		var out string
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if out, err = runCLIErr(t, 20*time.Second, "capture", "-w", os.DevNull, "--timeout", "10ms", "--control", ctl); err == nil {
				return
			}
		}
		t.Errorf("a capture after SIGINT: %v: %s", err, out)
	})

	t.Run("errors", func(t *testing.T) {
		_, err := runCLIErr(t, 20*time.Second, "capture", "-w", os.DevNull, "--control", ctl, "udp", "port", "nonsense-port")
		if err == nil {
			t.Error("capture with a bad filter expression succeeded")
		}
		out, err := runCLIErr(t, 20*time.Second, "capture", "-w", os.DevNull, "--port", "nope", "--control", ctl)
		if err == nil || !strings.Contains(out, `"nope" is not a port`) {
			t.Errorf("capture --port nope: %v: %s", err, out)
		}
		// One at a time.
		_, _, wait := startCapture(t, ctl, "--timeout", "2s")
		out, err = runCLIErr(t, 20*time.Second, "capture", "-w", os.DevNull, "--control", ctl)
		if err == nil || !strings.Contains(out, "a capture is already running") {
			t.Errorf("second capture: %v: %s", err, out)
		}
		wait()
		// The first one ended (timeout): another may start.
		_, _, wait = startCapture(t, ctl, "--timeout", "100ms")
		wait()
	})
}

// ipChecksum is the checksum an IPv4 header h should carry.
func ipChecksum(h []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(h); i += 2 {
		if i != 10 {
			sum += uint32(h[i])<<8 | uint32(h[i+1])
		}
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
