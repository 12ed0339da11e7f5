package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/xdpfwd/xdpfwd/internal/control"
)

// rulesCmd is `xdpfwd rules list` (the running ruleset as `nft list
// ruleset` prints it, with xdpfwd's counters) and `xdpfwd rules show` (its
// rules one a line, with their counters).
func rulesCmd(args []string) error {
	if len(args) > 0 && args[0] == "list" {
		return rulesListCmd(args[1:])
	}
	return showLines("rules", "", args, func(sel []string) (any, error) {
		return nil, fmt.Errorf("rules show: unexpected argument %q", sel[0])
	})
}

// rulesListCmd is `xdpfwd rules list [-a] [--json]`.
func rulesListCmd(args []string) error {
	fs := flag.NewFlagSet("rules list", flag.ContinueOnError)
	ctl := fs.String("control", "", "control socket of the running daemon (default: options.control of --config, else /run/xdpfwd.sock)")
	cfgPath := fs.String("config", "", "the daemon's configuration file, to take options.control from")
	handles := fs.Bool("a", false, "show rule handles, as nft -a")
	asJSON := fs.Bool("json", false, "print JSON, as nft -j")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("rules list: unexpected argument %q", fs.Arg(0))
	}
	if err := resolveControl(ctl, *cfgPath); err != nil {
		return err
	}
	var res control.Ruleset
	if err := control.Call(*ctl, "ruleset", control.RulesetArgs{JSON: *asJSON, Handles: *handles}, &res); err != nil {
		return err
	}
	if *asJSON {
		_, err := os.Stdout.Write(res.JSON)
		return err
	}
	_, err := os.Stdout.WriteString(res.Text)
	return err
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

// setCmd is `xdpfwd set list|add|del [FAMILY] TABLE SET [ELEMENT...]`: a
// running daemon's named set, listed or changed without a reload (as `nft
// list set`, `nft add element`, `nft delete element`).
func setCmd(args []string) error {
	const usage = "usage: xdpfwd set list|add|del [FAMILY] TABLE SET [ELEMENT...] [--json] [--control PATH | --config FILE]"
	fs := flag.NewFlagSet("set", flag.ContinueOnError)
	ctl := fs.String("control", "", "control socket of the running daemon (default: options.control of --config, else /run/xdpfwd.sock)")
	cfgPath := fs.String("config", "", "the daemon's configuration file, to take options.control from")
	asJSON := fs.Bool("json", false, "print JSON")
	// Flags may come anywhere: take the words apart from them.
	var words []string
	for rest := args; len(rest) > 0; {
		if err := fs.Parse(rest); err != nil {
			return err
		}
		rest = fs.Args()
		if len(rest) > 0 {
			words, rest = append(words, rest[0]), rest[1:]
		}
	}
	if len(words) < 3 {
		return errors.New(usage)
	}
	a := control.SetArgs{Op: words[0]}
	words = words[1:]
	switch words[0] {
	case "ip", "ip6", "inet", "bridge", "netdev", "arp":
		a.Family, words = words[0], words[1:]
	}
	if len(words) < 2 {
		return errors.New(usage)
	}
	a.Table, a.Set, a.Elements = words[0], words[1], words[2:]
	switch {
	case a.Op != "list" && a.Op != "add" && a.Op != "del":
		return fmt.Errorf("%q: want list, add or del\n%s", a.Op, usage)
	case a.Op == "list" && len(a.Elements) > 0:
		return fmt.Errorf("set list takes no elements\n%s", usage)
	case a.Op != "list" && len(a.Elements) == 0:
		return fmt.Errorf("set %s needs elements\n%s", a.Op, usage)
	}
	if err := resolveControl(ctl, *cfgPath); err != nil {
		return err
	}
	var elements []string
	if err := control.Call(*ctl, "set", a, &elements); err != nil {
		return err
	}
	if *asJSON {
		if elements == nil {
			elements = []string{}
		}
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(elements)
	}
	for _, e := range elements {
		fmt.Println(e)
	}
	return nil
}
