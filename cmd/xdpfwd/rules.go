package main

import (
	"flag"
	"fmt"

	"github.com/xdpfwd/xdpfwd/internal/control"
)

// rulesCmd is `xdpfwd rules show`: the running ruleset's rules, one a
// line, with their counters.
func rulesCmd(args []string) error {
	return showLines("rules", "", args, func(sel []string) (any, error) {
		return nil, fmt.Errorf("rules show: unexpected argument %q", sel[0])
	})
}

// reloadCmd is `xdpfwd reload`: the running daemon reads its
// configuration again and swaps in its ruleset, as SIGHUP does.
func reloadCmd(args []string) error {
	fs := flag.NewFlagSet("reload", flag.ContinueOnError)
	ctl := fs.String("control", "", "control socket of the running daemon (default: options.control of --config, else /run/xdpfwd.sock)")
	cfgPath := fs.String("config", "", "the daemon's configuration file, to take options.control from")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if err := resolveControl(ctl, *cfgPath); err != nil {
		return err
	}
	var res control.ReloadResult
	if err := control.Call(*ctl, "reload", nil, &res); err != nil {
		return err
	}
	fmt.Printf("reloaded: %d rules\n", res.Rules)
	return nil
}
