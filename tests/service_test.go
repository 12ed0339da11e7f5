package tests

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xdpfwd/xdpfwd/internal/topo"
)

// The service tests: `xdpfwd check`, the systemd notify protocol of
// `xdpfwd run` against a fake NOTIFY_SOCKET (systemd is not PID 1 where
// the tests run), the unit file in dist/, and the structured logs.

// serviceUnit is the unit file, relative to this package.
const serviceUnit = "../dist/xdpfwd.service"

// unitDirective is one Key=Value line of a unit file, with its section.
type unitDirective struct {
	section, key, value string
}

// parseUnit reads a systemd unit file: sections, Key=Value lines,
// comments; it does not join continued lines (the unit has none).
func parseUnit(t *testing.T, path string) []unitDirective {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var ds []unitDirective
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
		case strings.HasSuffix(line, `\`):
			t.Fatalf("%s:%d: a continued line; parseUnit does not join them", path, n)
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: %q is not Key=Value in a section", path, n, line)
			}
			ds = append(ds, unitDirective{section, strings.TrimSpace(k), strings.TrimSpace(v)})
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return ds
}

// unitValues returns the values of section's key, in file order.
func unitValues(ds []unitDirective, section, key string) []string {
	var vs []string
	for _, d := range ds {
		if d.section == section && d.key == key {
			vs = append(vs, d.value)
		}
	}
	return vs
}

// TestServiceUnit keeps dist/xdpfwd.service true to the binary: a
// Type=notify service whose ExecStartPre and ExecStart are xdpfwd
// commands with flags that exist (as `xdpfwd CMD -h` lists them), and
// which do what the unit wants with a configuration in place of
// /etc/xdpfwd/xdpfwd.yaml; whose reload is SIGHUP to the main process and
// stop SIGTERM; and, where systemd-analyze is installed, that systemd
// takes as it is.
func TestServiceUnit(t *testing.T) {
	t.Parallel()
	bin := xdpfwdBinary(t)
	ds := parseUnit(t, serviceUnit)
	one := func(section, key string) string {
		t.Helper()
		vs := unitValues(ds, section, key)
		if len(vs) != 1 {
			t.Fatalf("[%s] %s: %d values %q, want 1", section, key, len(vs), vs)
		}
		return vs[0]
	}
	for key, want := range map[string]string{"Type": "notify", "NotifyAccess": "main", "KillSignal": "SIGTERM", "Restart": "on-failure", "LimitMEMLOCK": "infinity"} {
		if got := one("Service", key); got != want {
			t.Errorf("[Service] %s=%s, want %s", key, got, want)
		}
	}
	if got := one("Install", "WantedBy"); got != "multi-user.target" {
		t.Errorf("[Install] WantedBy=%s, want multi-user.target", got)
	}
	if _, err := time.ParseDuration(one("Service", "TimeoutStopSec")); err != nil {
		t.Errorf("TimeoutStopSec: %v", err)
	}

	// A configuration for the commands: two ports on a bridge; check
	// touches no interface, so they need not exist.
	dir := t.TempDir()
	cfg := filepath.Join(dir, "xdpfwd.yaml")
	if err := os.WriteFile(cfg, []byte(bridgeConfig("svc-a0", "svc-a1")), 0o644); err != nil {
		t.Fatal(err)
	}
	const installed, etcConfig = "/usr/local/bin/xdpfwd", "/etc/xdpfwd/xdpfwd.yaml"
	for _, key := range []string{"ExecStartPre", "ExecStart"} {
		line := one("Service", key)
		args := strings.Fields(strings.TrimLeft(line, "-@:+!"))
		if len(args) < 2 || args[0] != installed {
			t.Fatalf("%s=%s: want %s COMMAND ...", key, line, installed)
		}
		sub := args[1]
		help, _ := runCLIErr(t, 10*time.Second, sub, "-h")
		for _, a := range args[2:] {
			if !strings.HasPrefix(a, "-") {
				continue
			}
			name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
			if !strings.Contains(help, "  -"+name+" ") && !strings.Contains(help, "  -"+name+"\n") {
				t.Errorf("%s=%s: xdpfwd %s has no flag -%s; its flags:\n%s", key, line, sub, name, help)
			}
		}
		if !slices.Contains(args, etcConfig) {
			t.Errorf("%s=%s: want --config %s", key, line, etcConfig)
		}
		switch sub {
		case "check":
			// The command itself, on a real configuration.
			args[0] = bin
			for i, a := range args {
				if a == etcConfig {
					args[i] = cfg
				}
			}
			out, err := runCLIErr(t, 30*time.Second, args[1:]...)
			if err != nil || !strings.Contains(out, ": OK: 2 ports, 1 bridge") {
				t.Errorf("%s=%s on a good configuration: %v, want OK:\n%s", key, line, err, out)
			}
		case "run":
		default:
			t.Errorf("%s=%s: xdpfwd %s, want check (ExecStartPre) or run (ExecStart)", key, line, sub)
		}
	}
	if got := one("Service", "ExecStart"); !strings.Contains(got, " run ") {
		t.Errorf("ExecStart=%s: want xdpfwd run", got)
	}
	// Reload is SIGHUP to the main process, which `run` reloads on
	// (TestServiceNotify).
	reload := strings.Fields(one("Service", "ExecReload"))
	if len(reload) != 3 || reload[1] != "-HUP" || reload[2] != "$MAINPID" {
		t.Errorf("ExecReload=%s: want KILL -HUP $MAINPID", strings.Join(reload, " "))
	} else if st, err := os.Stat(reload[0]); err != nil || st.Mode()&0o111 == 0 {
		t.Errorf("ExecReload: %s is not an executable: %v", reload[0], err)
	}
	// Capabilities systemd knows, the same in the bounding and ambient
	// sets (TestServiceCapabilities runs the daemon with them).
	bounding, ambient := strings.Fields(one("Service", "CapabilityBoundingSet")), strings.Fields(one("Service", "AmbientCapabilities"))
	if !slices.Equal(bounding, ambient) {
		t.Errorf("CapabilityBoundingSet %q and AmbientCapabilities %q differ", bounding, ambient)
	}
	for _, c := range bounding {
		if _, ok := capabilityNames[c]; !ok {
			t.Errorf("CapabilityBoundingSet: %s is not a capability xdpfwd's unit may name (%v)", c, capabilityNames)
		}
	}

	// systemd's own reading of the unit, with the binary and the
	// configuration where the test has them.
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze not installed: systemd's own check of the unit skipped")
		return
	}
	text, err := os.ReadFile(serviceUnit)
	if err != nil {
		t.Fatal(err)
	}
	unit := strings.NewReplacer(installed, bin, etcConfig, cfg).Replace(string(text))
	unitPath := filepath.Join(dir, "xdpfwd.service")
	if err := os.WriteFile(unitPath, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, analyze, "verify", "--man=no", "--recursive-errors=no", unitPath).CombinedOutput()
	if err != nil {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	// Warnings about the unit's own lines (unknown keys, bad values) are
	// errors here; others (about units it orders against) are not.
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, unitPath+":") {
			t.Errorf("systemd-analyze verify: %s", l)
		}
	}
}

// capabilityNames maps the capabilities the unit may name to their
// numbers.
var capabilityNames = map[string]int{
	"CAP_NET_ADMIN": unix.CAP_NET_ADMIN,
	"CAP_NET_RAW":   unix.CAP_NET_RAW,
	"CAP_BPF":       unix.CAP_BPF,
	"CAP_PERFMON":   unix.CAP_PERFMON,
	"CAP_SYS_ADMIN": unix.CAP_SYS_ADMIN,
	"CAP_IPC_LOCK":  unix.CAP_IPC_LOCK,
	"CAP_SYS_NICE":  unix.CAP_SYS_NICE,
}

// serviceDaemon starts `xdpfwd run --config CONFIG --control SOCKET
// [extra...]` in sw with env added to its environment, each argument of
// wrap before the binary (a command that execs it, such as setpriv). The
// process is stopped when t ends.
func serviceDaemon(t *testing.T, sw *topo.Namespace, config string, env, wrap []string, extra ...string) *daemon {
	t.Helper()
	dir, err := os.MkdirTemp("", "xft-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	d := &daemon{t: t, sw: sw, config: filepath.Join(dir, "xdpfwd.yaml"), control: filepath.Join(dir, "ctl.sock"), done: make(chan struct{})}
	if err := os.WriteFile(d.config, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	args := append(slices.Clone(wrap), xdpfwdBinary(t), "run", "--config", d.config, "--control", d.control)
	d.cmd = sw.Command(context.Background(), args[0], append(args[1:], extra...)...)
	d.cmd.Env = append(os.Environ(), env...)
	d.cmd.Stdout = &d.stdout
	d.cmd.Stderr = &d.stderr
	d.cmd.WaitDelay = 2 * time.Second
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("start xdpfwd run: %v", err)
	}
	go func() {
		_ = d.cmd.Wait()
		close(d.done)
	}()
	t.Cleanup(d.stop)
	return d
}

// notifySocket is a fake systemd: a unixgram socket that xdpfwd's
// notifications arrive on, one datagram each.
type notifySocket struct {
	path string
	msgs chan []string
}

// fakeNotifySocket listens on a fresh path; it is closed when t ends.
func fakeNotifySocket(t *testing.T) *notifySocket {
	t.Helper()
	dir, err := os.MkdirTemp("", "xft-n")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	n := &notifySocket{path: filepath.Join(dir, "notify"), msgs: make(chan []string, 64)}
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: n.path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 4096)
		for {
			k, err := c.Read(buf)
			if err != nil {
				close(n.msgs)
				return
			}
			n.msgs <- strings.Split(strings.TrimSuffix(string(buf[:k]), "\n"), "\n")
		}
	}()
	return n
}

// next returns the next notification, failing t if none comes within 20 s
// or the daemon exits first.
func (n *notifySocket) next(t *testing.T, d *daemon) []string {
	t.Helper()
	select {
	case m := <-n.msgs:
		return m
	case <-d.done:
		// What it sent before it exited still counts.
		select {
		case m := <-n.msgs:
			return m
		default:
		}
		t.Fatalf("xdpfwd exited (%v) without the next notification\nstderr:\n%s", d.cmd.ProcessState, d.stderr.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("no notification within 20 s\nstderr:\n%s", d.stderr.String())
	}
	return nil
}

// assignment returns the value of key in the notification m, "" and
// false if it has none.
func assignment(m []string, key string) (string, bool) {
	for _, a := range m {
		if v, ok := strings.CutPrefix(a, key+"="); ok {
			return v, true
		}
	}
	return "", false
}

// TestServiceNotify runs xdpfwd under a fake NOTIFY_SOCKET: READY=1 comes
// once every port forwards (the ports are up with XDP attached and a
// ping passes the moment it arrives), RELOADING=1 with MONOTONIC_USEC and
// then READY=1 frame a SIGHUP reload, good or bad (STATUS says which),
// and STOPPING=1 comes on SIGTERM, before a clean exit.
func TestServiceNotify(t *testing.T) {
	t.Parallel()
	s := star(t, topo.VethOptions{}, topo.VethOptions{})
	rules := filepath.Join(t.TempDir(), "rules.nft")
	write := func(text string) {
		t.Helper()
		if err := os.WriteFile(rules, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("table bridge filter {\n\tchain forward {\n\t\ttype filter hook forward priority 0; policy accept;\n\t\tudp dport 9 counter drop\n\t}\n}\n")
	ns := fakeNotifySocket(t)
	d := serviceDaemon(t, s.Switch, bridgeConfig(ports(s)...)+"ruleset: "+rules+"\n", []string{"NOTIFY_SOCKET=" + ns.path}, nil)

	m := ns.next(t, d)
	if !slices.Contains(m, "READY=1") {
		t.Fatalf("first notification %q, want READY=1", m)
	}
	// Ready means forwarding: no waiting from here on.
	st, err := d.statsErr()
	if err != nil {
		t.Fatalf("stats at READY=1: %v", err)
	}
	for _, p := range ports(s) {
		if ps := portOf(t, st, p); ps.State != "up" {
			t.Errorf("port %s at READY=1: state %q, want up", p, ps.State)
		}
	}
	assertXDP(t, s.Switch, ports(s)...)
	ping(t, s.Hosts[0], s.Hosts[1].IP)
	if status, _ := assignment(m, "STATUS"); !strings.Contains(status, "forwarding: 2 ports, 1 bridge") || !strings.Contains(status, "1 rule") || !strings.Contains(status, "ports: 2 up") {
		t.Errorf("STATUS at READY=1 %q, want the ports, bridge, rules and port states", status)
	}

	reload := func(wantStatus string) {
		t.Helper()
		if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		m := ns.next(t, d)
		if !slices.Contains(m, "RELOADING=1") {
			t.Fatalf("notification after SIGHUP %q, want RELOADING=1", m)
		}
		if us, ok := assignment(m, "MONOTONIC_USEC"); !ok || strings.Trim(us, "0123456789") != "" || us == "" {
			t.Errorf("RELOADING=1 with MONOTONIC_USEC %q, want a number", us)
		}
		m = ns.next(t, d)
		if !slices.Contains(m, "READY=1") {
			t.Fatalf("notification after RELOADING=1 %q, want READY=1", m)
		}
		if status, _ := assignment(m, "STATUS"); !strings.Contains(status, wantStatus) {
			t.Errorf("STATUS after the reload %q, want %q in it", status, wantStatus)
		}
	}
	write("table bridge filter {\n\tchain forward {\n\t\ttype filter hook forward priority 0; policy accept;\n\t\tudp dport 9 counter drop\n\t\tudp dport 7 counter drop\n\t}\n}\n")
	reload("reloaded; forwarding: 2 ports, 1 bridge, no router, ruleset " + rules + " (2 rules)")
	write("table bridge filter {\n\tchain forward {\n\t\tudp dport banana drop\n\t}\n}\n")
	reload("reload failed, the running ruleset stays")
	ping(t, s.Hosts[0], s.Hosts[1].IP)

	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	m = ns.next(t, d)
	if !slices.Contains(m, "STOPPING=1") {
		t.Fatalf("notification after SIGTERM %q, want STOPPING=1", m)
	}
	if code := d.waitExit(10 * time.Second).ExitCode(); code != 0 {
		t.Errorf("exit %d after SIGTERM, want 0\nstderr:\n%s", code, d.stderr.String())
	}
	assertNoXDP(t, s.Switch, ports(s)...)
}

// TestServiceCheck: `xdpfwd check` refuses what `xdpfwd run` refuses —
// a bad field, a router that does not build, a ruleset nft refuses, a
// ruleset xdpfwd does not run — with run's message word for word, and
// passes a good configuration with a one-line summary, touching no
// interface (the switch namespace keeps no XDP program; ports that do not
// exist are fine).
func TestServiceCheck(t *testing.T) {
	t.Parallel()
	s := star(t, topo.VethOptions{}, topo.VethOptions{})
	_, routerCfg := routedStar(t, s)
	dir := t.TempDir()
	file := func(name, text string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	base := "ports:\n  - interface: p1\n  - interface: p2\n" + routerCfg
	good := file("good.nft", "table ip filter {\n\tchain forward {\n\t\ttype filter hook forward priority 0; policy accept;\n\t\tct state established,related accept\n\t\tudp dport 9 drop\n\t}\n}\n")
	for _, c := range []struct {
		name, config, want string
	}{
		{"field", "ports:\n  - interface: p1\n    xdp_mode: sideways\n", "ports[0].xdp_mode"},
		{"router", base + "  routes:\n    - to: 10.9.0.0/24\n      via: 10.8.0.1\n", "router.routes[0]"},
		{"nft syntax", base + "ruleset: " + file("syntax.nft", "table ip filter {\n\tchain forward {\n\t\tip daddr banana drop\n\t}\n}\n") + "\n", "syntax.nft:3:"},
		{"unsupported", base + "ruleset: " + file("outnat.nft", "table ip nat {\n\tchain out {\n\t\ttype nat hook output priority -100;\n\t\tdnat to 10.2.0.2\n\t}\n}\n") + "\n", "a type nat chain at the output hook"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := file(c.name+".yaml", c.config)
			checkOut, err := runCLIErr(t, 30*time.Second, "check", "--config", cfg)
			if code := exitCode(t, err); code != 1 {
				t.Errorf("xdpfwd check: exit %d, want 1:\n%s", code, checkOut)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			runOut, err := s.Switch.Command(ctx, xdpfwdBinary(t), "run", "--config", cfg, "--control", filepath.Join(dir, c.name+".sock")).CombinedOutput()
			if code := exitCode(t, err); code != 1 {
				t.Errorf("xdpfwd run: exit %d, want 1:\n%s", code, runOut)
			}
			checkMsg, ok1 := strings.CutPrefix(lastError(checkOut), "xdpfwd check: ")
			runMsg, ok2 := strings.CutPrefix(lastError(string(runOut)), "xdpfwd run: ")
			if !ok1 || !ok2 || checkMsg != runMsg {
				t.Errorf("check and run disagree:\ncheck: %s\nrun:   %s", checkOut, runOut)
			}
			if !strings.Contains(checkMsg, cfg+":") || !strings.Contains(checkMsg, c.want) {
				t.Errorf("check says %q, want the file %s and %q", checkMsg, cfg, c.want)
			}
			assertNoXDP(t, s.Switch, ports(s)...)
		})
	}

	cfg := file("good.yaml", base+"ruleset: "+good+"\n")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := s.Switch.Command(ctx, xdpfwdBinary(t), "check", "--config", cfg).CombinedOutput()
	want := cfg + ": OK: 2 ports, 0 bridges, router (2 interfaces, 0 routes), ruleset " + good + " (2 rules, conntrack)\n"
	if err != nil || string(out) != want {
		t.Errorf("xdpfwd check of a good configuration: %v\n%s\nwant %s", err, out, want)
	}
	assertNoXDP(t, s.Switch, ports(s)...)
	// Interfaces that exist nowhere: check does not look.
	cfg = file("absent.yaml", bridgeConfig("svc-no0", "svc-no1"))
	if out := runCLI(t, 30*time.Second, "check", "--config", cfg); !strings.Contains(out, ": OK: 2 ports, 1 bridge, no router, no ruleset") {
		t.Errorf("xdpfwd check with absent interfaces: %s", out)
	}
	// Its own usage errors.
	for _, args := range [][]string{{"check"}, {"check", "--config", filepath.Join(dir, "nonexistent.yaml")}} {
		out, err := runCLIErr(t, 10*time.Second, args...)
		if code := exitCode(t, err); code == 0 || !strings.HasPrefix(out, "xdpfwd check: ") {
			t.Errorf("xdpfwd %s: exit %d, want non-zero with an xdpfwd check: message:\n%s", strings.Join(args, " "), code, out)
		}
	}
}

// lastError returns the line of out that starts with "xdpfwd " and all
// after it: a failed run's message (log lines come before it).
func lastError(out string) string {
	if i := strings.LastIndex(out, "\nxdpfwd "); i >= 0 {
		return out[i+1:]
	}
	return out
}

// TestServiceLogFormat: --log-format json makes every line the daemon
// logs a JSON object (time, level, msg and the attributes), at
// --log-level and above; bad values of either flag are refused before
// anything starts.
func TestServiceLogFormat(t *testing.T) {
	t.Parallel()
	s := star(t, topo.VethOptions{}, topo.VethOptions{})
	d := serviceDaemon(t, s.Switch, bridgeConfig(ports(s)...), nil, nil, "--log-format", "json", "--log-level", "info")
	d.waitReady()
	ping(t, s.Hosts[0], s.Hosts[1].IP)
	d.stop()
	var msgs []string
	for _, l := range strings.Split(strings.TrimSpace(d.stderr.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Errorf("log line %q is not JSON: %v", l, err)
			continue
		}
		for _, k := range []string{"time", "level", "msg"} {
			if _, ok := rec[k]; !ok {
				t.Errorf("log line %q has no %q", l, k)
			}
		}
		msg, _ := rec["msg"].(string)
		msgs = append(msgs, msg)
		if msg == "port ready" {
			if _, ok := rec["port"].(string); !ok {
				t.Errorf("port ready without its port attribute: %s", l)
			}
		}
	}
	for _, want := range []string{"port ready", "forwarding", "stopping: detaching from every port"} {
		if !slices.Contains(msgs, want) {
			t.Errorf("no %q among the JSON log lines %q", want, msgs)
		}
	}

	// warn and above only: a clean start and stop log nothing.
	d = serviceDaemon(t, s.Switch, bridgeConfig(ports(s)...), nil, nil, "--log-format", "json", "--log-level", "warn")
	d.waitReady()
	d.stop()
	if out := d.stderr.String(); out != "" {
		t.Errorf("--log-level warn logged:\n%s", out)
	}

	for _, c := range []struct{ flag, value, want string }{
		{"--log-format", "xml", `xdpfwd run: --log-format "xml": want text or json`},
		{"--log-level", "loud", `xdpfwd run: --log-level "loud": want debug, info, warn or error`},
	} {
		out, err := runCLIErr(t, 10*time.Second, "run", "--config", "/nonexistent.yaml", c.flag, c.value)
		if code := exitCode(t, err); code != 1 || strings.TrimSpace(out) != c.want {
			t.Errorf("run %s %s: exit %d, %q; want 1, %q", c.flag, c.value, code, out, c.want)
		}
	}
}

// TestServiceCapabilities runs the daemon with no capabilities but the
// unit's CapabilityBoundingSet (as systemd would, root included): it
// must start, load a ruleset (nft in a throwaway namespace), forward and
// stop cleanly, so that the unit's list is enough.
func TestServiceCapabilities(t *testing.T) {
	t.Parallel()
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Fatalf("setpriv (util-linux) is needed: %v", err)
	}
	var caps []string
	var mask uint64
	for _, c := range strings.Fields(unitValues(parseUnit(t, serviceUnit), "Service", "CapabilityBoundingSet")[0]) {
		n, ok := capabilityNames[c]
		if !ok {
			t.Fatalf("unknown capability %s in the unit", c)
		}
		caps = append(caps, "+"+strings.ToLower(strings.TrimPrefix(c, "CAP_")))
		mask |= 1 << n
	}
	s := star(t, topo.VethOptions{}, topo.VethOptions{})
	rules := filepath.Join(t.TempDir(), "rules.nft")
	if err := os.WriteFile(rules, []byte("table bridge filter {\n\tchain forward {\n\t\ttype filter hook forward priority 0; policy accept;\n\t\tudp dport 9 counter drop\n\t}\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	set := "-all," + strings.Join(caps, ",")
	wrap := []string{setpriv, "--bounding-set", set, "--inh-caps", "-all"}
	d := serviceDaemon(t, s.Switch, bridgeConfig(ports(s)...)+"ruleset: "+rules+"\n", nil, wrap)
	d.waitReady()
	ping(t, s.Hosts[0], s.Hosts[1].IP)
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("%016x", mask)
	for _, key := range []string{"CapEff:", "CapBnd:"} {
		for _, l := range strings.Split(string(status), "\n") {
			if v, ok := strings.CutPrefix(l, key); ok && strings.TrimSpace(v) != want {
				t.Errorf("the daemon's %s %s, want %s (the unit's CapabilityBoundingSet)", key, strings.TrimSpace(v), want)
			}
		}
	}
	d.stop()
	if strings.Contains(d.stderr.String(), "level=ERROR") {
		t.Errorf("errors logged:\n%s", d.stderr.String())
	}
}
