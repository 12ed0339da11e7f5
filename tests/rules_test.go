package tests

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xdpfwd/xdpfwd/internal/control"
	"github.com/xdpfwd/xdpfwd/internal/topo"
	"github.com/xdpfwd/xdpfwd/internal/traffic"
)

// rulesLines returns the daemon's `rules` listing.
func (d *daemon) rulesLines() []string {
	d.t.Helper()
	var lines []string
	if err := control.Call(d.control, "rules", nil, &lines); err != nil {
		d.t.Fatalf("rules: %v", err)
	}
	return lines
}

// ruleLine returns the listing's line that contains sub, failing t if
// none does.
func (d *daemon) ruleLine(sub string) string {
	d.t.Helper()
	lines := d.rulesLines()
	for _, l := range lines {
		if strings.Contains(l, sub) {
			return l
		}
	}
	d.t.Fatalf("no rule with %q in:\n%s", sub, strings.Join(lines, "\n"))
	return ""
}

// reload asks the daemon to reload and returns its error.
func (d *daemon) reload() error {
	var res control.ReloadResult
	return control.Call(d.control, "reload", nil, &res)
}

// TestRules: a routed topology filtered by an nft file: a forward-chain
// drop, a reject with an ICMP type, a TCP reset, an accepted flow counted,
// then reloads: a new file takes effect, a broken one changes nothing
// and says why, and SIGHUP reloads too.
func TestRules(t *testing.T) {
	t.Parallel()
	s := star(t, topo.VethOptions{}, topo.VethOptions{})
	hosts, routerCfg := routedStar(t, s)
	h1, h2 := hosts[0], hosts[1]
	dir := t.TempDir()
	rulesFile := filepath.Join(dir, "rules.nft")
	write := func(text string) {
		t.Helper()
		if err := os.WriteFile(rulesFile, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(`table inet filter {
	chain forward {
		type filter hook forward priority 0; policy accept;
		ip daddr 10.2.0.2 icmp type echo-request counter drop
		ip6 daddr fd00:2::2 icmpv6 type echo-request counter reject with icmpv6 type admin-prohibited
		ip daddr 10.1.0.2 icmp type echo-request counter accept
	}
}
`)
	cfg := "ports:\n  - interface: p1\n  - interface: p2\n" + routerCfg + "ruleset: " + rulesFile + "\n"
	d := runDaemon(t, s.Switch, cfg)

	pingFails(t, h1, h2.IP)
	pingSays(t, h1, "fd00:2::2", "Administratively prohibited")
	ping(t, h2, h1.IP)
	ping(t, h1, netip.MustParseAddr("10.1.0.1")) // input: no chain, accepted
	if l := d.ruleLine("ip daddr 10.2.0.2"); !strings.Contains(l, "counter packets 3 bytes 252 drop") {
		t.Errorf("drop rule: %q, want 3 packets of 84 bytes counted", l)
	}
	if l := d.ruleLine("fd00:2::2"); !strings.Contains(l, "counter packets 1 bytes 104 reject") {
		t.Errorf("reject rule: %q, want 1 packet of 104 bytes counted", l)
	}
	if l := d.ruleLine("ip daddr 10.1.0.2"); !strings.Contains(l, "counter packets 3 bytes 252 accept") {
		t.Errorf("accept rule: %q, want 3 packets of 84 bytes counted", l)
	}

	// A new file: h1 -> h2 pings pass; TCP to port 5555 is reset.
	write(`table ip filter {
	chain forward {
		type filter hook forward priority 0; policy accept;
		tcp dport 5555 counter reject with tcp reset
		ip daddr 10.2.0.2 icmp type echo-request counter accept
	}
}
`)
	if err := d.reload(); err != nil {
		t.Fatalf("reload: %v", err)
	}
	ping(t, h1, h2.IP)
	if l := d.ruleLine("ip daddr 10.2.0.2"); !strings.Contains(l, "counter packets 3 ") {
		t.Errorf("after reload: %q, want 3 packets counted", l)
	}
	if out, err := h1.Command(t.Context(), "bash", "-c", "exec 3<>/dev/tcp/10.2.0.2/5555").CombinedOutput(); err == nil || !strings.Contains(string(out), "Connection refused") {
		t.Errorf("TCP to a port with reject with tcp reset: %v, want connection refused:\n%s", err, out)
	}

	// A broken file: the reload fails with nft's message (file:line), the
	// running rules stay, their counters too.
	write("table ip filter {\n\tchain forward {\n\t\ttype filter hook forward priority 0;\n\t\tip daddr banana drop\n\t}\n}\n")
	err := d.reload()
	if err == nil || !strings.Contains(err.Error(), "rules.nft:4:") {
		t.Fatalf("reload of a broken file: %v, want nft's error at rules.nft:4", err)
	}
	ping(t, h1, h2.IP)
	if l := d.ruleLine("ip daddr 10.2.0.2"); !strings.Contains(l, "counter packets 6 ") {
		t.Errorf("after a failed reload: %q, want the old rule with 6 packets counted", l)
	}

	// SIGHUP reloads as the verb does.
	write(`table ip filter {
	chain forward {
		type filter hook forward priority 0; policy drop;
		ip saddr 10.2.0.2 accept
	}
}
`)
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the SIGHUP reload", func() bool {
		return len(d.rulesLines()) == 1
	})
	pingFails(t, h1, h2.IP)
	if st := d.stats(); st == nil {
		t.Fatal("no stats")
	}
}

// TestRulesReloadUnderTraffic: a TCP transfer and a UDP stream cross ten
// reloads between two rulesets that both let them through (one of them
// with 1000 other rules first): nothing is lost or corrupted, and a
// broken file in the middle changes nothing.
func TestRulesReloadUnderTraffic(t *testing.T) {
	t.Parallel()
	s := star(t, topo.VethOptions{}, topo.VethOptions{})
	hosts, routerCfg := routedStar(t, s)
	h1, h2 := hosts[0], hosts[1]
	rulesFile := filepath.Join(t.TempDir(), "rules.nft")
	var big strings.Builder
	big.WriteString("table ip filter {\n\tchain forward {\n\t\ttype filter hook forward priority 0; policy drop;\n")
	for i := range 1000 {
		fmt.Fprintf(&big, "\t\tip saddr 172.16.%d.%d udp dport %d drop\n", i/250, i%250+1, 10000+i)
	}
	big.WriteString("\t\tip saddr { 10.1.0.2, 10.2.0.2 } counter accept\n\t}\n}\n")
	files := []string{
		"table ip filter {\n\tchain forward {\n\t\ttype filter hook forward priority 0; policy drop;\n\t\tip saddr 10.0.0.0/8 counter accept\n\t}\n}\n",
		big.String(),
	}
	write := func(text string) {
		t.Helper()
		if err := os.WriteFile(rulesFile, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(files[0])
	d := runDaemon(t, s.Switch, "ports:\n  - interface: p1\n  - interface: p2\n"+routerCfg+"ruleset: "+rulesFile+"\n")
	ping(t, h1, h2.IP)

	// Traffic in both directions until the reloads are done, checked
	// round by round.
	done := make(chan struct{})
	errs := make(chan error, 2)
	var tcpBytes, udpDatagrams int
	go func() {
		for i := uint64(0); ; i++ {
			select {
			case <-done:
				errs <- nil
				return
			default:
			}
			res, err := traffic.TCP(h1, h2, 16<<20, 92+i)
			if err != nil {
				errs <- fmt.Errorf("TCP h1 -> h2, round %d: %w", i, err)
				return
			}
			tcpBytes += res.Bytes
		}
	}()
	go func() {
		for i := uint64(0); ; i++ {
			select {
			case <-done:
				errs <- nil
				return
			default:
			}
			res, err := traffic.UDP(h2, h1, 256, 1472, 191+i)
			if err == nil && (res.Sent != 256 || res.Received != res.Sent || res.Corrupt != 0) {
				err = fmt.Errorf("sent %d of 256, received %d intact, %d corrupt", res.Sent, res.Received, res.Corrupt)
			}
			if err != nil {
				errs <- fmt.Errorf("UDP h2 -> h1, round %d: %w", i, err)
				return
			}
			udpDatagrams += res.Received
		}
	}()
	for i := range 11 {
		time.Sleep(100 * time.Millisecond)
		if i == 5 {
			write("table ip filter {\n\tchain forward {\n\t\tip saddr banana accept\n")
			if err := d.reload(); err == nil {
				t.Error("a broken file reloaded")
			}
			continue
		}
		write(files[i%2])
		if err := d.reload(); err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
	}
	close(done)
	for range 2 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	t.Logf("across 10 reloads: %d TCP bytes and %d UDP datagrams intact", tcpBytes, udpDatagrams)
	if tcpBytes == 0 || udpDatagrams == 0 {
		t.Errorf("no traffic crossed the reloads")
	}
	if lines := d.rulesLines(); len(lines) != 1 {
		t.Errorf("after the reloads: %d rules listed, want the last file's 1", len(lines))
	}
}

// TestRulesSets: a named set changed without a reload, through the CLI:
// an address range added blocks pings, the listing shows it, a bad
// element is refused with nft's message and changes nothing, deleting it
// lets pings through again, and a reload takes the file as it is.
func TestRulesSets(t *testing.T) {
	t.Parallel()
	s := star(t, topo.VethOptions{}, topo.VethOptions{})
	hosts, routerCfg := routedStar(t, s)
	h1, h2 := hosts[0], hosts[1]
	rulesFile := filepath.Join(t.TempDir(), "rules.nft")
	if err := os.WriteFile(rulesFile, []byte(`table inet filter {
	set blocklist {
		type ipv4_addr
		flags interval
		elements = { 192.0.2.0/24 }
	}
	chain forward {
		type filter hook forward priority 0; policy accept;
		ip saddr @blocklist counter drop
	}
}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	d := runDaemon(t, s.Switch, "ports:\n  - interface: p1\n  - interface: p2\n"+routerCfg+"ruleset: "+rulesFile+"\n")
	cli := func(args ...string) (string, error) {
		out, err := runCLIErr(t, 30*time.Second, append(args, "--control", d.control)...)
		return out, err
	}
	ping(t, h1, h2.IP)
	if out, err := cli("set", "add", "inet", "filter", "blocklist", "10.1.0.0/28", "10.9.0.1-10.9.0.5"); err != nil {
		t.Fatalf("set add: %v\n%s", err, out)
	}
	pingFails(t, h1, h2.IP)
	ping(t, h2, netip.MustParseAddr("10.2.0.1")) // h2 is not in the set
	out, err := cli("set", "list", "inet", "filter", "blocklist")
	if err != nil {
		t.Fatalf("set list: %v\n%s", err, out)
	}
	if want := "10.1.0.0/28\n10.9.0.1-10.9.0.5\n192.0.2.0/24\n"; out != want {
		t.Errorf("set list: %q, want %q", out, want)
	}
	if out, err := cli("set", "add", "inet", "filter", "blocklist", "banana"); err == nil || !strings.Contains(out, "banana") {
		t.Errorf("set add banana: %v, want nft's error naming it:\n%s", err, out)
	}
	if out, err := cli("set", "add", "inet", "filter", "nosuchset", "10.0.0.1"); err == nil || !strings.Contains(out, "no set nosuchset") {
		t.Errorf("set add to a missing set: %v:\n%s", err, out)
	}
	pingFails(t, h1, h2.IP)
	if l := d.ruleLine("@blocklist"); !strings.Contains(l, "counter packets 6 ") {
		t.Errorf("drop rule after two blocked pings: %q, want 6 packets counted", l)
	}
	if out, err := cli("set", "del", "inet", "filter", "blocklist", "10.1.0.0/28"); err != nil {
		t.Fatalf("set del: %v\n%s", err, out)
	}
	ping(t, h1, h2.IP)
	// A reload takes the file as it is: the range added is gone.
	if err := d.reload(); err != nil {
		t.Fatal(err)
	}
	if out, _ := cli("set", "list", "inet", "filter", "blocklist"); out != "192.0.2.0/24\n" {
		t.Errorf("set list after a reload: %q, want the file's 192.0.2.0/24 only", out)
	}
}
