package main

import (
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	fmt.Println("== building the demo topology: namespaces h1, h2, h3, each with eth0 (10.77.0.1-3/24),")
	fmt.Println("   veth peers p1, p2, p3 in namespace sw; no kernel bridge anywhere")
	t := topo.New("xdpdemo")
	defer func() {
		fmt.Println("== tearing down: namespaces, veths")
		if err := t.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "teardown:", err)
		}
	}()
	star, err := t.Star(make([]topo.VethOptions, 3))
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

	var st control.Stats
	if err := control.Call(d.control, "stats", nil, &st); err != nil {
		return err
	}
	fmt.Println("\n== xdpfwd stats")
	printStats(os.Stdout, &st)
	if ur.Received != ur.Sent {
		return fmt.Errorf("%d of %d UDP datagrams did not arrive intact", ur.Sent-ur.Received, ur.Sent)
	}
	return nil
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
