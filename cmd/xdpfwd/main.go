// Command xdpfwd is a user-space dataplane: XDP programs on veth and NIC
// ports redirect frames into AF_XDP sockets, and a Go worker per queue
// bridges them and transmits them on the egress port's TX ring.
//
//	xdpfwd run --config FILE     forward in the foreground until SIGINT/SIGTERM
//	xdpfwd check --config FILE   validate a configuration and its ruleset as run loads them
//	xdpfwd stats                 a running daemon's counters
//	xdpfwd drops [--watch]       a running daemon's drops by port, stage and reason, with rates
//	xdpfwd fdb show              a running daemon's forwarding databases
//	xdpfwd rules list            a running daemon's ruleset as nft lists it, with its counters
//	xdpfwd rules show            a running daemon's nft rules and counters, one a line
//	xdpfwd reload                a running daemon loads its ruleset again
//	xdpfwd set add|del|list      a running daemon's named set, changed without a reload
//	xdpfwd ct list|count|flush|stats|events  a running daemon's connection tracking table, as conntrack -L, -C, -F, -S, -E
//	xdpfwd capture               pcapng of the frames at a port's ingress or egress, or of the drops
//	xdpfwd trace                 follow live packets through every stage: decisions, rules, conntrack, NAT, exit
//	xdpfwd demo                  build a demo topology, forward through it, tear it down
//	xdpfwd bench                 xdpfwd beside the kernel bridge on the same traffic
//	xdpfwd version               the build's version
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime/debug"
	"strings"
)

const usage = `usage: xdpfwd <command> [flags]

commands:
  run      --config FILE [--control PATH] [--log-format text|json] [--log-level debug|info|warn|error]
                                            forward in the foreground (systemd Type=notify aware)
  check    --config FILE                    validate the configuration and its ruleset as run loads them,
                                            touching no interface
  stats    [--control PATH | --config FILE] [--json]
                                            counters of a running daemon
  drops    [--watch] [--interval 1s] [--json] [--control PATH | --config FILE]
                                            drops per port, stage and reason, most first, with rates over the interval
  fdb show [--bridge B] [--limit N] [--json] [--control PATH | --config FILE]
                                            FDB entries of a running daemon (default limit 1000 per bridge)
  route show [table main|local|all] [--json] [--control PATH | --config FILE]
                                            the router's routes, as ip route shows them (table main by default)
  neigh show [--json] [--control PATH | --config FILE]
                                            the router's neighbours, as ip neigh shows them
  rules list [-a] [--json] [--control PATH | --config FILE]
                                            the running ruleset as nft list ruleset prints it (-a: handles, --json: as nft -j), with xdpfwd's counters
  rules show [--json] [--control PATH | --config FILE]
                                            the running ruleset's rules, one a line, with their counters
  reload   [--control PATH | --config FILE] read the configuration again and swap in its ruleset (as SIGHUP)
  set list|add|del [FAMILY] TABLE SET [ELEMENT...] [--json] [--control PATH | --config FILE]
                                            a named set's elements, listed or changed without a reload
  ct list  [FILTER...] [--json] [--control PATH | --config FILE]
                                            the connection tracking table as conntrack -L prints it (FILTER: -p, -s, -d, --sport, ...)
  ct count|flush|stats [--json] [--control PATH | --config FILE]
                                            its size (conntrack -C), emptied (-F), its counters per worker (-S)
  ct events [FILTER...] [-e NEW,UPDATE,DESTROY] [--count N] [-o timestamp] [--json] [--control PATH | --config FILE]
                                            stream connection events as conntrack -E
  capture  [--port P] [--point ingress|egress|drop|stage --stage NAME] [--count N] [--timeout D] [-w FILE|-] [--snaplen N]
           [FILTER EXPRESSION...] [--control PATH | --config FILE]
                                            pcapng of the frames at a port's ingress or egress, after a stage, or of the drops
                                            (reason as comment); FILTER as tcpdump takes it (needs tcpdump)
  trace    [--port P] [--count N] [--timeout D] [--json] [FILTER EXPRESSION...] [--control PATH | --config FILE]
                                            follow live packets through every stage (rules matched, conntrack, NAT, route)
                                            and out, or to their drop; --count 1 by default
  demo                                      forward through a demo topology, then tear it down
  bench    [--duration 5s] [--size 60] [--routed] [--rules N,... [--nat]] [--flows N] [--plot FILE.svg|.png]
                                            kernel vs xdpfwd on 64-byte UDP (60 + FCS): bridge, router, router with N nft rules
  version                                   print the version

Run "xdpfwd <command> -h" for a command's flags.
`

type command struct {
	run func(args []string) error
}

var commands = map[string]command{
	"run":     {runCmd},
	"check":   {checkCmd},
	"stats":   {statsCmd},
	"drops":   {dropsCmd},
	"fdb":     {fdbCmd},
	"route":   {routeCmd},
	"neigh":   {neighCmd},
	"rules":   {rulesCmd},
	"reload":  {reloadCmd},
	"set":     {setCmd},
	"ct":      {ctCmd},
	"capture": {captureCmd},
	"trace":   {traceCmd},
	"demo":    {demoCmd},
	"bench":   {benchCmd},
	"version": {versionCmd},
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	cmd, ok := commands[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "xdpfwd: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	if err := cmd.run(os.Args[2:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		// An error that names the command first (the daemon's answer to
		// its verb) names it once.
		fmt.Fprintf(os.Stderr, "xdpfwd %s: %s\n", os.Args[1], strings.TrimPrefix(err.Error(), os.Args[1]+": "))
		os.Exit(1)
	}
}

// buildVersion is set by the Makefile (-ldflags -X main.buildVersion=…)
// from git describe, for builds where Go's own VCS stamping is off.
var buildVersion string

// version is the version the build was given, else the module version or
// the VCS revision Go stamped into the binary.
func version() string {
	if buildVersion != "" {
		return buildVersion
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "-dirty"
			}
		}
	}
	if rev != "" && (v == "" || v == "(devel)") {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		return rev + dirty
	}
	return v
}

func versionCmd(args []string) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	if err := fs.Parse(args); err != nil {
		return err
	}
	fmt.Printf("xdpfwd %s (%s)\n", version(), goVersion())
	return nil
}

func goVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		return bi.GoVersion
	}
	return "go?"
}
