package daemon

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/xdpfwd/xdpfwd/fastpath"
	"github.com/xdpfwd/xdpfwd/fastpath/rules"
	"github.com/xdpfwd/xdpfwd/internal/config"
)

// Summary is what a configuration sets up: what Check found, or what a
// running daemon runs.
type Summary struct {
	// Ports and Bridges are how many ports and bridges it configures.
	Ports, Bridges int
	// Router tells whether it has a router; RouterInterfaces and Routes
	// are its interfaces and static routes.
	Router                   bool
	RouterInterfaces, Routes int
	// Ruleset is the nft rules file, "" for none; Rules the number of
	// rules it compiled to.
	Ruleset string
	Rules   int
	// Conntrack tells whether the ruleset turns connection tracking on.
	Conntrack bool
}

// Check builds everything New builds from cfg that does not depend on the
// interfaces — the bridges, the router, connection tracking and NAT, the
// ruleset (loaded by nft in a throwaway network namespace and compiled,
// as New and Reload load it), the workers' CPUs and priority — with the
// same code and so the same errors, and throws it away. It touches no
// interface, XDP program or socket: ports stand in for the interfaces,
// with a made-up MAC and MTU 1500, so what New learns from the
// interfaces themselves (that they exist, their queues and MTU, their
// addresses for pass_host_mac) is not checked.
func Check(cfg *config.Config, log *slog.Logger) (Summary, error) {
	d := &Daemon{cfg: cfg, log: log, runErr: make(chan error, 1)}
	for i, pc := range cfg.Ports {
		q := max(pc.Queues, 1)
		// A locally administered unicast MAC per port: 02:78:64:70:hi:lo.
		mac := []byte{0x02, 0x78, 0x64, 0x70, byte(i >> 8), byte(i)}
		d.ports = append(d.ports, &port{cfg: pc, id: fastpath.PortID(i), mac: mac, mtu: 1500, queues: q, txQueues: q, state: stateUp})
	}
	if err := d.buildSubsystems(); err != nil {
		return Summary{}, err
	}
	if err := d.checkCPUs(); err != nil {
		return Summary{}, err
	}
	if err := d.resolvePriority(); err != nil {
		return Summary{}, err
	}
	return summarize(cfg, d.rules.Program()), nil
}

// Summary is what the daemon runs: its configuration, with the ruleset
// of the last successful load or reload.
func (d *Daemon) Summary() Summary {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	return summarize(d.rulesFrom, d.rules.Program())
}

// summarize is the Summary of cfg running prog (nil for no ruleset).
func summarize(cfg *config.Config, prog *rules.Program) Summary {
	s := Summary{Ports: len(cfg.Ports), Bridges: len(cfg.Bridges)}
	if r := cfg.Router; r != nil {
		s.Router, s.RouterInterfaces, s.Routes = true, len(r.Interfaces), len(r.Routes)
	}
	if prog != nil {
		s.Ruleset, s.Rules, s.Conntrack = cfg.Ruleset, len(prog.Rules()), prog.UsesConntrack()
	}
	return s
}

// buildSubsystems builds, for New and Check, the subsystems of the
// configuration over the ports resolved: the bridges, the router,
// connection tracking and NAT, and the rules engine with the ruleset.
func (d *Daemon) buildSubsystems() error {
	if err := d.buildBridges(); err != nil {
		return err
	}
	if err := d.buildRouter(); err != nil {
		return err
	}
	d.buildConntrack()
	return d.buildRules()
}

// String is s on one line, e.g. "3 ports, 1 bridge, router (2
// interfaces, 3 routes), ruleset rules.nft (12 rules, conntrack)".
func (s Summary) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s, %s", plural(s.Ports, "port"), plural(s.Bridges, "bridge"))
	if s.Router {
		fmt.Fprintf(&b, ", router (%s, %s)", plural(s.RouterInterfaces, "interface"), plural(s.Routes, "route"))
	} else {
		b.WriteString(", no router")
	}
	if s.Ruleset == "" {
		b.WriteString(", no ruleset")
	} else {
		fmt.Fprintf(&b, ", ruleset %s (%s", s.Ruleset, plural(s.Rules, "rule"))
		if s.Conntrack {
			b.WriteString(", conntrack")
		}
		b.WriteString(")")
	}
	return b.String()
}

// plural is "1 port", "2 ports".
func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
