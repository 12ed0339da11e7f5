package tests

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xdpfwd/xdpfwd/internal/control"
)

// ctEventTraffic sends, from h1 to h2 through the lab's router, a UDP
// datagram from port 40000 to port 5555, h2's reply to it, and one ping.
func ctEventTraffic(t *testing.T, l *routerLab) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	echo := l.h2.Command(ctx, "python3", "-c", `
import socket
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("10.2.0.2", 5555)); u.settimeout(5)
print("ready", flush=True)
d, a = u.recvfrom(100); u.sendto(d, a)
`)
	out, err := echo.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := echo.Start(); err != nil {
		t.Fatal(err)
	}
	defer echo.Wait()
	if line, _ := bufio.NewReader(out).ReadString('\n'); line != "ready\n" {
		t.Fatalf("UDP echo on h2: %q", line)
	}
	if b, err := l.h1.Command(ctx, "python3", "-c", `
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("10.1.0.2", 40000)); s.settimeout(3)
s.sendto(b"hello", ("10.2.0.2", 5555)); print(s.recv(100))
`).CombinedOutput(); err != nil {
		t.Fatalf("UDP from h1: %v\n%s", err, b)
	}
	if b, err := l.h1.Command(ctx, "ping", "-n", "-c", "1", "-W", "1", "10.2.0.2").CombinedOutput(); err != nil {
		t.Fatalf("ping from h1: %v\n%s", err, b)
	}
}

// ctEventNormalize masks the ping identifier, which differs from run to
// run.
func ctEventNormalize(line string) string {
	return regexp.MustCompile(`id=\d+`).ReplaceAllString(line, "id=N")
}

// The events of a UDP flow and its reply, then a ping, in conntrack -E's
// lines and order.
var ctEventsWant = []string{
	"    [NEW] udp      17 30 src=10.1.0.2 dst=10.2.0.2 sport=40000 dport=5555 [UNREPLIED] src=10.2.0.2 dst=10.1.0.2 sport=5555 dport=40000",
	" [UPDATE] udp      17 30 src=10.1.0.2 dst=10.2.0.2 sport=40000 dport=5555 src=10.2.0.2 dst=10.1.0.2 sport=5555 dport=40000",
	"    [NEW] icmp     1 30 src=10.1.0.2 dst=10.2.0.2 type=8 code=0 id=N [UNREPLIED] src=10.2.0.2 dst=10.1.0.2 type=0 code=0 id=N",
	" [UPDATE] icmp     1 30 src=10.1.0.2 dst=10.2.0.2 type=8 code=0 id=N src=10.2.0.2 dst=10.1.0.2 type=0 code=0 id=N",
}

// `xdpfwd ct events` on a router tracking connections: the lines of a
// UDP flow with a reply and of a ping are conntrack -E's, as the kernel's
// router with the same ruleset and traffic shows them; --count ends the
// stream, a flush shows DESTROY with [USERSPACE], --json and -e work, and
// SIGINT ends a stream cleanly.
func TestCtEvents(t *testing.T) {
	requireRoot(t)
	rules := filepath.Join(t.TempDir(), "ct.nft")
	if err := os.WriteFile(rules, []byte(ctRuleset), 0o644); err != nil {
		t.Fatal(err)
	}
	l := newRouterLab(t, false, rules)
	ctl := l.daemon.control
	runCLI(t, 20*time.Second, "ct", "flush", "--control", ctl) // the lab's own pings

	// start runs `xdpfwd ct events ARGS` and returns its stdout, once the
	// daemon streams to it.
	start := func(ctx context.Context, args ...string) (*exec.Cmd, *strings.Builder, *strings.Builder) {
		t.Helper()
		cmd := exec.CommandContext(ctx, xdpfwdBinary(t), append(append([]string{"ct", "events"}, args...), "--control", ctl)...)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond) // connected and subscribed
		return cmd, &stdout, &stderr
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ev, evOut, evErr := start(ctx, "--count", "4")
	js, jsOut, _ := start(ctx, "--json", "-e", "NEW", "-p", "udp", "--count", "1")
	ctEventTraffic(t, l)
	if err := ev.Wait(); err != nil {
		t.Fatalf("ct events --count 4: %v\n%s%s", err, evOut, evErr)
	}
	var ours []string
	for _, line := range nonEmptyLines(evOut.String()) {
		ours = append(ours, ctEventNormalize(line))
	}
	if strings.Join(ours, "\n") != strings.Join(ctEventsWant, "\n") {
		t.Errorf("xdpfwd ct events:\n%s\nwant\n%s", strings.Join(ours, "\n"), strings.Join(ctEventsWant, "\n"))
	}
	if !strings.Contains(evErr.String(), "4 flow events have been shown.") {
		t.Errorf("ct events stderr: %q", evErr)
	}
	if err := js.Wait(); err != nil {
		t.Fatalf("ct events --json: %v\n%s", err, jsOut)
	}
	var je control.CtEvent
	if err := json.Unmarshal([]byte(jsOut.String()), &je); err != nil {
		t.Fatalf("ct events --json: %v: %q", err, jsOut)
	}
	if je.Type != "NEW" || je.Line != ctEventsWant[0] || je.Entry == nil || je.Entry.Proto != "udp" || *je.Entry.Original.Dport != 5555 {
		t.Errorf("ct events --json: %+v", je)
	}

	// A flush: DESTROY for both, named after the process that flushed;
	// then SIGINT ends the stream, which says how many it showed.
	fl, flOut, flErr := start(ctx, "-e", "DESTROY")
	runCLI(t, 20*time.Second, "ct", "flush", "--control", ctl)
	time.Sleep(300 * time.Millisecond)
	if err := fl.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := fl.Wait(); err != nil {
		t.Fatalf("ct events after SIGINT: %v\n%s", err, flErr)
	}
	destroyRe := regexp.MustCompile(`^\[DESTROY\] (udp      17|icmp     1) \d+ src=10\.1\.0\.2 dst=10\.2\.0\.2 .* \[USERSPACE\] portid=\d+ progname=xdpfwd$`)
	lines := nonEmptyLines(flOut.String())
	if len(lines) != 2 || !destroyRe.MatchString(lines[0]) || !destroyRe.MatchString(lines[1]) {
		t.Errorf("DESTROY after flush:\n%s", flOut)
	}
	if !strings.Contains(flErr.String(), "2 flow events have been shown.") {
		t.Errorf("stderr after SIGINT: %q", flErr)
	}

	// The kernel's router, same ruleset, same traffic: conntrack -E
	// shows the same lines.
	if _, err := exec.LookPath("conntrack"); err != nil {
		t.Fatal("conntrack (Debian package conntrack) is not installed: scripts/deps.sh installs it")
	}
	k := newRouterLab(t, true, rules)
	if out, err := k.sw.Command(ctx, "conntrack", "-F").CombinedOutput(); err != nil {
		t.Fatalf("conntrack -F: %v\n%s", err, out)
	}
	kev := k.sw.Command(ctx, "conntrack", "-E")
	var kOut strings.Builder
	kev.Stdout = &kOut
	if err := kev.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	ctEventTraffic(t, k)
	time.Sleep(300 * time.Millisecond)
	kev.Process.Signal(syscall.SIGINT)
	kev.Wait()
	var kernel []string
	for _, line := range nonEmptyLines(kOut.String()) {
		if strings.Contains(line, "src=10.1.0.2 dst=10.2.0.2") {
			kernel = append(kernel, ctEventNormalize(line))
		}
	}
	t.Logf("conntrack -E on the kernel's router, normalized:\n%s", strings.Join(kernel, "\n"))
	if strings.Join(kernel, "\n") != strings.Join(ours, "\n") {
		t.Errorf("conntrack -E on the kernel's router:\n%s\nxdpfwd ct events:\n%s", strings.Join(kernel, "\n"), strings.Join(ours, "\n"))
	}
}
