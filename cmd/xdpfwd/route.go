package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/xdpfwd/xdpfwd/internal/control"
)

// routeCmd is `xdpfwd route show`: the router's routes as `ip route`
// prints them.
func routeCmd(args []string) error { return showLines("route", args) }

// neighCmd is `xdpfwd neigh show`: the router's neighbour cache as `ip
// neigh` prints it.
func neighCmd(args []string) error { return showLines("neigh", args) }

// showLines calls verb on the daemon and prints the lines it answers, or
// them as a JSON list.
func showLines(verb string, args []string) error {
	if len(args) == 0 || args[0] != "show" {
		return fmt.Errorf("usage: xdpfwd %s show [--json] [--control PATH | --config FILE]", verb)
	}
	fs := flag.NewFlagSet(verb+" show", flag.ContinueOnError)
	ctl := fs.String("control", "", "control socket of the running daemon (default: options.control of --config, else /run/xdpfwd.sock)")
	cfgPath := fs.String("config", "", "the daemon's configuration file, to take options.control from")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s show: unexpected argument %q", verb, fs.Arg(0))
	}
	if err := resolveControl(ctl, *cfgPath); err != nil {
		return err
	}
	var lines []string
	if err := control.Call(*ctl, verb, nil, &lines); err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if lines == nil {
			lines = []string{}
		}
		return enc.Encode(lines)
	}
	for _, l := range lines {
		if _, err := fmt.Println(l); err != nil {
			return errors.Join(errors.New("write"), err)
		}
	}
	return nil
}
