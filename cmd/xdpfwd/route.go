package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/xdpfwd/xdpfwd/internal/control"
)

// routeCmd is `xdpfwd route show [table main|local|all]`: the router's
// routes as `ip route show` prints them, table main unless told otherwise.
func routeCmd(args []string) error {
	return showLines("route", "[table main|local|all] ", args, func(sel []string) (any, error) {
		if len(sel) == 2 && sel[0] == "table" {
			return control.RouteArgs{Table: sel[1]}, nil
		}
		return nil, fmt.Errorf("route show: unexpected argument %q (want table main, local or all)", strings.Join(sel, " "))
	})
}

// neighCmd is `xdpfwd neigh show`: the router's neighbour cache as `ip
// neigh` prints it.
func neighCmd(args []string) error {
	return showLines("neigh", "", args, func(sel []string) (any, error) {
		return nil, fmt.Errorf("neigh show: unexpected argument %q", sel[0])
	})
}

// showLines calls verb on the daemon and prints the lines it answers, or
// them as a JSON list. The words of args that are not flags (before or
// after them), if any, are given to selectors, which returns the verb's
// arguments; usage shows them.
func showLines(verb, usage string, args []string, selectors func([]string) (any, error)) error {
	if len(args) == 0 || args[0] != "show" {
		return fmt.Errorf("usage: xdpfwd %s show %s[--json] [--control PATH | --config FILE]", verb, usage)
	}
	fs := flag.NewFlagSet(verb+" show", flag.ContinueOnError)
	ctl := fs.String("control", "", "control socket of the running daemon (default: options.control of --config, else /run/xdpfwd.sock)")
	cfgPath := fs.String("config", "", "the daemon's configuration file, to take options.control from")
	asJSON := fs.Bool("json", false, "print JSON")
	var sel []string
	for rest := args[1:]; ; {
		if err := fs.Parse(rest); err != nil {
			return err
		}
		rest = fs.Args()
		i := 0
		for i < len(rest) && (len(rest[i]) < 2 || rest[i][0] != '-') {
			i++
		}
		sel, rest = append(sel, rest[:i]...), rest[i:]
		if len(rest) == 0 {
			break
		}
	}
	var verbArgs any
	if len(sel) > 0 {
		var err error
		if verbArgs, err = selectors(sel); err != nil {
			return err
		}
	}
	if err := resolveControl(ctl, *cfgPath); err != nil {
		return err
	}
	var lines []string
	if err := control.Call(*ctl, verb, verbArgs, &lines); err != nil {
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
