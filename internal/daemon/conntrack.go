package daemon

import (
	"github.com/xdpfwd/xdpfwd/conntrack"
	"github.com/xdpfwd/xdpfwd/fastpath"
	"github.com/xdpfwd/xdpfwd/fastpath/rules"
	"github.com/xdpfwd/xdpfwd/internal/config"
	"github.com/xdpfwd/xdpfwd/nat"
)

// buildConntrack makes the connection tracker (its flow table shared by
// every worker) and adds it to the subsystems. It tracks nothing until a
// ruleset needs it (swapRules), as the kernel's conntrack, which a
// network namespace runs only once a rule uses it.
func (d *Daemon) buildConntrack() {
	d.ct = conntrack.NewLazyTracker(d.conntrackConfig())
	d.subsystems = append(d.subsystems, d.ct)
	var masq, redir func(p *fastpath.Packet, v6 bool) ([16]byte, bool)
	if d.router != nil {
		masq, redir = d.router.MasqueradeSource, d.router.RedirectTarget
	}
	d.nat = nat.NewTranslator(d.ct, masq, redir, nat.Options{Log: func(msg string) { d.log.Warn(msg) }})
	if d.router != nil {
		d.router.SetErrorNAT(d.nat.UnNATError)
	}
}

// conntrackConfig is the flow table's configuration: the file's
// conntrack section, which holds the kernel's defaults for what it does
// not give (a configuration made in code, without Parse, gets them all).
func (d *Daemon) conntrackConfig() conntrack.Config {
	c := config.DefaultConntrack()
	if d.cfg != nil && d.cfg.Conntrack.Max != 0 {
		c = d.cfg.Conntrack
	}
	tcp := c.TCP
	return conntrack.Config{Max: c.Max, Buckets: c.Buckets, Timeouts: c.Timeouts, TCP: &tcp, SkipChecksum: !c.Checksum}
}

// swapRules puts prog in place of the running program between batches,
// with connection tracking on while it needs it: on before a program that
// matches ct state runs, off only once none does.
func (d *Daemon) swapRules(prog *rules.Program) {
	needs := prog != nil && prog.UsesConntrack()
	if needs {
		d.ct.SetEnabled(true)
	}
	d.rules.Swap(prog)
	if !needs {
		d.ct.SetEnabled(false)
	}
}
