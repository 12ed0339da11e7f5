package main

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/xdpfwd/xdpfwd/internal/control"
	"github.com/xdpfwd/xdpfwd/internal/topo"
	"github.com/xdpfwd/xdpfwd/internal/traffic"
)

//go:embed demo.yaml
var demoConfig []byte

func demoCmd(args []string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	tcpMiB := fs.Int("tcp-mib", 256, "MiB to send in the TCP transfer")
	udpCount := fs.Int("udp", 20000, "UDP datagrams to send")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return errors.New("the demo builds network namespaces and attaches XDP programs: run it as root")
	}
	// A reader that goes away (xdpfwd demo | head) must not kill the
	// demo before it tears its namespaces down: its writes fail instead.
	signal.Ignore(syscall.SIGPIPE)
	runtime.LockOSThread() // the daemon's parent-death signal follows this thread (startDaemon)
	defer runtime.UnlockOSThread()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	fmt.Println("== building the demo topology: namespaces h1, h2, h3, each with eth0 (10.77.0.1-3/24),")
	fmt.Println("   and h4 on another subnet (10.78.0.2/24); veth peers p1-p4 in namespace sw;")
	fmt.Println("   no kernel bridge or router anywhere")
	t := topo.New("xdpdemo")
	defer func() {
		fmt.Println("== tearing down: namespaces, veths")
		if err := t.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "teardown:", err)
		}
	}()
	star, err := t.Star(make([]topo.VethOptions, 4))
	if err != nil {
		return err
	}
	h4, err := demoRoutedHost(ctx, star)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "xdpfwd-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	d, err := startDaemon(ctx, star.Switch, dir, demoConfig)
	if err != nil {
		return err
	}
	defer d.stop()
	fmt.Printf("== xdpfwd is forwarding in namespace %s (config: embedded demo.yaml)\n", star.Switch.Name())
	fmt.Print(indent(string(demoConfig)))

	h1, h2, h3 := star.Hosts[0], star.Hosts[1], star.Hosts[2]
	fmt.Println("\n== ping h1 -> h2, h1 -> h3 (the first ARP request is flooded, the replies are learned)")
	for _, dst := range []*topo.Host{h2, h3} {
		out, err := h1.Command(ctx, "ping", "-c", "3", "-i", "0.2", "-W", "1", dst.IP.String()).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ping %s: %v\n%s", dst.IP, err, out)
		}
		fmt.Print(indent(lastLines(string(out), 2)))
	}
	fmt.Println("\n== ping h1 -> h2 with a 1472-byte payload (a full 1500-byte IP packet)")
	out, err := h1.Command(ctx, "ping", "-c", "3", "-i", "0.2", "-W", "1", "-s", "1472", "-M", "do", h2.IP.String()).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ping -s 1472: %v\n%s", err, out)
	}
	fmt.Print(indent(lastLines(string(out), 2)))

	fmt.Printf("\n== UDP: %d datagrams of random sizes h2 -> h3, checked byte for byte\n", *udpCount)
	ur, err := traffic.UDP(h2, h3, *udpCount, 1472, 1)
	if err != nil {
		return err
	}
	fmt.Printf("   sent %d, arrived intact %d, corrupt %d\n", ur.Sent, ur.Received, ur.Corrupt)

	fmt.Printf("\n== TCP: %d MiB h1 -> h3, checked by SHA-256 (host veths keep TX checksum offload on;\n", *tcpMiB)
	fmt.Println("   xdpfwd finishes the partial checksums)")
	tr, err := traffic.TCP(h1, h3, *tcpMiB<<20, 2)
	if err != nil {
		return err
	}
	fmt.Printf("   %d MiB in %.2fs: %.2f Gbit/s, SHA-256 equal\n", *tcpMiB, tr.Elapsed.Seconds(), tr.Gbps())

	fmt.Println("\n== routed: ping h1 -> h4 across subnets (xdpfwd's router on br0 and p4 resolves both by ARP),")
	fmt.Println("   then a ping with TTL 1 (the router answers time exceeded)")
	out, err = h1.Command(ctx, "ping", "-c", "3", "-i", "0.2", "-W", "1", h4.IP.String()).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ping %s: %v\n%s", h4.IP, err, out)
	}
	fmt.Print(indent(lastLines(string(out), 2)))
	out, _ = h1.Command(ctx, "ping", "-c", "1", "-W", "1", "-t", "1", h4.IP.String()).CombinedOutput()
	fmt.Print(indent(firstLine(string(out), "From ")))
	fmt.Printf("\n== UDP: %d datagrams h4 -> h2, routed, checked byte for byte\n", *udpCount/4)
	ur4, err := traffic.UDP(h4, h2, *udpCount/4, 1472, 3)
	if err != nil {
		return err
	}
	fmt.Printf("   sent %d, arrived intact %d, corrupt %d\n", ur4.Sent, ur4.Received, ur4.Corrupt)

	fmt.Println("\n== xdpfwd trace udp port 7: one datagram h1 -> h4 followed through the pipeline")
	fmt.Println("   (bridge, router; h4 answers port unreachable, which the filter leaves out)")
	if err := demoTrace(ctx, d.control, h1, h4); err != nil {
		return err
	}
	for _, verb := range []string{"route", "neigh"} {
		var lines []string
		if err := control.Call(d.control, verb, nil, &lines); err != nil {
			return err
		}
		fmt.Printf("\n== xdpfwd %s show\n", verb)
		fmt.Print(indent(strings.Join(lines, "\n") + "\n"))
	}

	var st control.Stats
	if err := control.Call(d.control, "stats", nil, &st); err != nil {
		return err
	}
	fmt.Println("\n== xdpfwd stats")
	printStats(os.Stdout, &st)
	if ur.Received != ur.Sent || ur4.Received != ur4.Sent {
		return fmt.Errorf("%d of %d UDP datagrams did not arrive intact", ur.Sent-ur.Received+ur4.Sent-ur4.Received, ur.Sent+ur4.Sent)
	}
	return nil
}

// demoTrace traces one UDP datagram from host from to port 7 of host to
// through the running pipeline, as `xdpfwd trace udp port 7` does, and
// prints its walk.
func demoTrace(ctx context.Context, ctl string, from, to *topo.Host) error {
	filter, err := compileFilter([]string{"udp", "port", "7"})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	type result struct {
		n   int
		err error
	}
	var walk bytes.Buffer
	on, done := make(chan struct{}), make(chan result, 1)
	go func() {
		n, _, _, err := streamTrace(ctx, ctl, control.TraceArgs{Filter: filter, Count: 1, TimeoutMs: 10000}, &walk, false, false, func() { close(on) })
		done <- result{n, err}
	}()
	select {
	case <-on:
	case r := <-done:
		return fmt.Errorf("trace: ended before it started: %v", r.err)
	}
	if out, err := from.Command(ctx, "bash", "-c", "echo xdpfwd > /dev/udp/"+to.IP.String()+"/7").CombinedOutput(); err != nil {
		return fmt.Errorf("sending the traced datagram: %v\n%s", err, out)
	}
	r := <-done
	if r.err != nil {
		return fmt.Errorf("trace: %w", r.err)
	}
	if r.n == 0 {
		return errors.New("trace: the datagram h1 sent to h4 was not traced")
	}
	fmt.Print(indent(strings.TrimRight(walk.String(), "\n") + "\n"))
	return nil
}

// demoRoutedHost puts h4 on its own subnet, 10.78.0.2/24 via the router
// at 10.78.0.1, and routes h1-h3 to it via the bridge's router interface,
// 10.77.0.254.
func demoRoutedHost(ctx context.Context, s *topo.Star) (*topo.Host, error) {
	h4 := *s.Hosts[3]
	h4.IP = netip.MustParseAddr("10.78.0.2")
	cmds := []struct {
		h    *topo.Host
		args []string
	}{
		{s.Hosts[3], []string{"ip", "addr", "flush", "dev", topo.HostIf}},
		{s.Hosts[3], []string{"ip", "addr", "add", "10.78.0.2/24", "dev", topo.HostIf}},
		{s.Hosts[3], []string{"ip", "route", "add", "default", "via", "10.78.0.1"}},
	}
	for _, h := range s.Hosts[:3] {
		cmds = append(cmds, struct {
			h    *topo.Host
			args []string
		}{h, []string{"ip", "route", "add", "10.78.0.0/24", "via", "10.77.0.254"}})
	}
	for _, c := range cmds {
		if out, err := c.h.Command(ctx, c.args[0], c.args[1:]...).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("%s in %s: %v\n%s", strings.Join(c.args, " "), c.h.Name(), err, out)
		}
	}
	return &h4, nil
}

// firstLine returns the first line of s that starts with prefix, with
// its newline, or "".
func firstLine(s, prefix string) string {
	for line := range strings.Lines(s) {
		if strings.HasPrefix(line, prefix) {
			return line
		}
	}
	return ""
}

// daemonProc is an `xdpfwd run` started in a namespace.
type daemonProc struct {
	cmd     *exec.Cmd
	control string
	stderr  *strings.Builder
	exited  chan struct{}
}

// startDaemon runs this binary's `run` in ns with config, and waits until
// its control socket answers.
func startDaemon(ctx context.Context, ns *topo.Namespace, dir string, config []byte) (*daemonProc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(dir, "xdpfwd.yaml")
	if err := os.WriteFile(cfgPath, config, 0o600); err != nil {
		return nil, err
	}
	d := &daemonProc{control: filepath.Join(dir, "xdpfwd.sock"), stderr: new(strings.Builder), exited: make(chan struct{})}
	// Not CommandContext: the daemon must get SIGTERM and detach, not SIGKILL.
	d.cmd = ns.Command(context.Background(), self, "run", "--config", cfgPath, "--control", d.control)
	d.cmd.Stderr = d.stderr
	// If this process dies without stopping it (SIGKILL), the daemon
	// gets SIGTERM and detaches, rather than living on with its XDP
	// programs. The signal follows the thread that forks it: the caller
	// keeps its goroutine on that thread (runtime.LockOSThread) while the
	// daemon runs.
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := d.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start xdpfwd run: %w", err)
	}
	go func() { d.cmd.Wait(); close(d.exited) }()
	for deadline := time.Now().Add(15 * time.Second); ; {
		if control.Call(d.control, "stats", nil, nil) == nil {
			return d, nil
		}
		select {
		case <-d.exited:
			return nil, fmt.Errorf("xdpfwd run exited: %s\n%s", d.cmd.ProcessState, d.stderr)
		case <-ctx.Done():
			d.stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			d.stop()
			return nil, fmt.Errorf("xdpfwd run did not answer on %s within 15s:\n%s", d.control, d.stderr)
		}
	}
}

// stop sends SIGTERM and waits for the daemon to detach and exit.
func (d *daemonProc) stop() {
	select {
	case <-d.exited:
		return
	default:
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(10 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.exited
	}
}

func indent(s string) string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(s, "\n") {
		if l != "" {
			b.WriteString("   " + l)
		}
	}
	return b.String()
}

func lastLines(s string, n int) string {
	ls := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(ls[max(0, len(ls)-n):], "\n") + "\n"
}
