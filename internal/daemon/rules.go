package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/xdpfwd/xdpfwd/fastpath/header"
	"github.com/xdpfwd/xdpfwd/fastpath/rules"
	"github.com/xdpfwd/xdpfwd/fastpath/rules/nftnl"
	"github.com/xdpfwd/xdpfwd/internal/config"
	"github.com/xdpfwd/xdpfwd/internal/control"
)

// buildRules loads the configuration's ruleset, if it names one, and adds
// the rules engine to the subsystems. The engine is there without a
// ruleset too, so that a reload can add one: with no program its stages
// cost one atomic load per batch.
func (d *Daemon) buildRules() error {
	var prog *rules.Program
	if d.cfg.Ruleset != "" {
		var err error
		if prog, d.ruleset, err = d.loadRules(d.cfg, ""); err != nil {
			return err
		}
		d.log.Info("ruleset loaded", "file", d.cfg.Ruleset, "rules", len(prog.Rules()))
	}
	d.rules, d.rulesFrom = rules.NewEngine(prog), d.cfg
	d.ct.SetEnabled(prog != nil && prog.UsesConntrack())
	d.subsystems = append(d.subsystems, d.rules)
	return nil
}

// loadRules loads and compiles the ruleset cfg names, off the fast path:
// nft compiles it into a throwaway network namespace (with stand-ins for
// the ports and bridges, whose names rules may take by index), then the
// nft script after (set changes) in the same transaction, and
// fastpath/rules links the kernel's compiled form for the engine. Errors
// are nft's own (file:line:column) or name the rule.
func (d *Daemon) loadRules(cfg *config.Config, after string) (*rules.Program, *rules.Ruleset, error) {
	env := rules.Env{
		Ports:      make([]string, len(d.ports)),
		PortBridge: make([]string, len(d.ports)),
		Log:        d.ruleLog(),
		MACs:       make(map[string]header.MAC),
	}
	if d.router != nil {
		// Rejected forwarded packets get their ICMP errors from the
		// router's address toward the sender, as icmp_send picks it.
		env.ErrorSource = d.router.ErrorSource
	}
	env.Conntrack, env.NAT = d.ct, d.nat
	names := make([]string, 0, len(d.ports)+len(cfg.Bridges))
	for i, p := range d.ports {
		env.Ports[i] = p.cfg.Interface
		env.MACs[p.cfg.Interface] = header.MAC(p.mac)
		names = append(names, p.cfg.Interface)
	}
	for _, b := range cfg.Bridges {
		// A bridge's MAC is its router MAC (its first port's unless
		// configured), as routerMAC gives it.
		mac := d.routerMAC(b.Name, nil)
		if cfg.Router != nil {
			for _, in := range cfg.Router.Interfaces {
				if in.Name == b.Name {
					mac = d.routerMAC(b.Name, in.MAC)
				}
			}
		}
		env.MACs[b.Name] = mac
		names = append(names, b.Name)
		for _, pn := range b.Ports {
			if p := d.portNamed(pn); p != nil {
				env.PortBridge[p.id] = b.Name
			}
		}
	}
	if cfg.Router != nil {
		for _, in := range cfg.Router.Interfaces {
			env.Ifaces = append(env.Ifaces, in.Name)
		}
	}
	rs, err := nftnl.Load(cfg.Ruleset, nftnl.Options{Interfaces: names, After: after})
	if err != nil {
		return nil, nil, cfg.ErrorAt(cfg.RulesetPos, "ruleset", "%v", err)
	}
	prog, err := rules.Compile(rs, env)
	if err != nil {
		return nil, nil, cfg.ErrorAt(cfg.RulesetPos, "ruleset", "%s: %v", cfg.Ruleset, err)
	}
	return prog, rs, nil
}

// ruleLog returns the Env.Log of the daemon's rulesets: nft `log`
// statements' lines, already rate-limited by the engine, into the
// daemon's log.
func (d *Daemon) ruleLog() func(string) {
	return func(line string) { d.log.Info("nft log", "line", line) }
}

// Reload reads the configuration file again and swaps in its ruleset
// between batches: counters of unchanged rules carry over, forwarding
// never stops. A file that does not load, or a configuration that changed
// in more than its ruleset, leaves everything as it was and says why. It
// returns the number of rules now running.
func (d *Daemon) Reload() (int, error) {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	cfg, err := config.Load(d.cfg.File)
	if err != nil {
		return 0, fmt.Errorf("reload: %w", err)
	}
	// The control socket is the running one (run --control overrides
	// the file's).
	cfg.Options.Control = d.cfg.Options.Control
	if field := dataplaneChange(d.cfg, cfg); field != "" {
		return 0, fmt.Errorf("reload: %s: %s changed: only the ruleset reloads; restart xdpfwd to apply the rest (nothing was reloaded)", cfg.File, field)
	}
	var prog *rules.Program
	var rs *rules.Ruleset
	if cfg.Ruleset != "" {
		if prog, rs, err = d.loadRules(cfg, ""); err != nil {
			return 0, fmt.Errorf("reload: %w", err)
		}
	}
	d.state.RLock()
	defer d.state.RUnlock()
	if d.closed {
		return 0, errors.New("reload: the daemon is stopping")
	}
	d.swapRules(prog)
	// The file is the whole truth again, as after nft -f: set changes
	// made since the last load are gone.
	d.rulesFrom, d.ruleset, d.setChanges = cfg, rs, nil
	n := 0
	if prog != nil {
		n = len(prog.Rules())
	}
	d.log.Info("reloaded", "ruleset", cfg.Ruleset, "rules", n)
	return n, nil
}

// dataplaneChange returns the first field (e.g. "Router.Interfaces[0].MTU")
// in which a and b configure different ports, bridges, router or options,
// "" if none: they may differ in their ruleset and in where in the file
// things are (config.Pos).
func dataplaneChange(a, b *config.Config) string {
	x, y := *a, *b
	x.Ruleset, x.RulesetPos, y.Ruleset, y.RulesetPos = "", config.Pos{}, "", config.Pos{}
	return firstChange(reflect.ValueOf(x), reflect.ValueOf(y), "")
}

var posType = reflect.TypeFor[config.Pos]()

// firstChange is reflect.DeepEqual for configuration values, with every
// config.Pos equal to every other, returning the path of the first
// difference ("" for none; the root's own difference is "config").
func firstChange(a, b reflect.Value, path string) string {
	here := path
	if here == "" {
		here = "config"
	}
	if a.Type() != b.Type() {
		return here
	}
	if a.Type() == posType {
		return ""
	}
	switch a.Kind() {
	case reflect.Pointer, reflect.Interface:
		if a.IsNil() || b.IsNil() {
			if a.IsNil() != b.IsNil() {
				return here
			}
			return ""
		}
		return firstChange(a.Elem(), b.Elem(), path)
	case reflect.Struct:
		if !allExported(a.Type()) {
			break // a value type of another package (netip.Addr): a leaf
		}
		for i := range a.NumField() {
			name := a.Type().Field(i).Name
			if path != "" {
				name = path + "." + name
			}
			if c := firstChange(a.Field(i), b.Field(i), name); c != "" {
				return c
			}
		}
		return ""
	case reflect.Slice, reflect.Array:
		if a.Len() != b.Len() {
			return here
		}
		for i := range a.Len() {
			if c := firstChange(a.Index(i), b.Index(i), fmt.Sprintf("%s[%d]", path, i)); c != "" {
				return c
			}
		}
		return ""
	case reflect.Map:
		if a.Len() != b.Len() {
			return here
		}
		for _, k := range a.MapKeys() {
			v := b.MapIndex(k)
			if !v.IsValid() {
				return here
			}
			if c := firstChange(a.MapIndex(k), v, fmt.Sprintf("%s[%v]", path, k)); c != "" {
				return c
			}
		}
		return ""
	}
	if !reflect.DeepEqual(a.Interface(), b.Interface()) {
		return here
	}
	return ""
}

// allExported reports whether every field of struct type t is exported.
func allExported(t reflect.Type) bool {
	for i := range t.NumField() {
		if !t.Field(i).IsExported() {
			return false
		}
	}
	return true
}

// reloadVerb is the control socket's `reload`.
func (d *Daemon) reloadVerb(json.RawMessage) (any, error) {
	n, err := d.Reload()
	if err != nil {
		return nil, err
	}
	return control.ReloadResult{Rules: n}, nil
}

// rulesVerb is the control socket's `rules`: each rule of the running
// ruleset as one line, in the order the kernel lists them, with its
// counter's live values in place of the zeros nft compiled it with.
func (d *Daemon) rulesVerb(json.RawMessage) (any, error) {
	d.state.RLock()
	defer d.state.RUnlock()
	if d.closed {
		return nil, errors.New("the daemon is stopping")
	}
	prog := d.rules.Program()
	if prog == nil {
		return []string{}, nil
	}
	return prog.RuleLines(), nil
}

// rulesetVerb is the control socket's `ruleset`: the running ruleset as
// `nft list ruleset` prints it (with handles as `nft -a`, or as `nft -j`),
// with xdpfwd's counters.
func (d *Daemon) rulesetVerb(raw json.RawMessage) (any, error) {
	var args control.RulesetArgs
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &args); err != nil {
			return nil, fmt.Errorf("ruleset arguments: %w", err)
		}
	}
	d.state.RLock()
	defer d.state.RUnlock()
	if d.closed {
		return nil, errors.New("the daemon is stopping")
	}
	prog := d.rules.Program()
	if prog == nil {
		return control.Ruleset{}, nil
	}
	if args.JSON {
		js, err := prog.ListingJSON()
		return control.Ruleset{JSON: js}, err
	}
	return control.Ruleset{Text: prog.Listing(args.Handles)}, nil
}

// setVerb is the control socket's `set`: list a named set's elements, or
// add or delete elements without a reload. A change is nft's own `add
// element` / `delete element`, applied after the ruleset file in a fresh
// load (nft checks and encodes the elements: intervals merge, a missing
// element is an error), compiled and swapped in between batches like a
// reload, counters carried over. Changes last until the next reload,
// which takes the file as it is, as `nft -f` does.
func (d *Daemon) setVerb(raw json.RawMessage) (any, error) {
	var args control.SetArgs
	if err := json.Unmarshal(raw, &args); err != nil {
		return nil, fmt.Errorf("set arguments: %w", err)
	}
	family := args.Family
	if family == "" {
		family = "ip" // as nft
	}
	if !validNftFamily(family) {
		return nil, fmt.Errorf("set: %q is not an nft family (ip, ip6, inet, bridge, netdev)", family)
	}
	if args.Table == "" || args.Set == "" {
		return nil, errors.New("set: a table and a set are needed")
	}
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	if d.ruleset == nil {
		return nil, errors.New("set: no ruleset is loaded")
	}
	find := func(rs *rules.Ruleset) (*rules.Set, error) {
		for _, t := range rs.Tables {
			if t.Family.String() == family && t.Name == args.Table {
				if s := t.Set(args.Set); s != nil {
					return s, nil
				}
			}
		}
		return nil, fmt.Errorf("set: no set %s in table %s %s", args.Set, family, args.Table)
	}
	if args.Op == "list" {
		s, err := find(d.ruleset)
		if err != nil {
			return nil, err
		}
		return s.ElementStrings(), nil
	}
	var verb string
	switch args.Op {
	case "add":
		verb = "add"
	case "del":
		verb = "delete"
	default:
		return nil, fmt.Errorf("set: %q: want add, del or list", args.Op)
	}
	if len(args.Elements) == 0 {
		return nil, errors.New("set: no elements given")
	}
	for _, e := range args.Elements {
		if strings.ContainsAny(e, "{};\n#") {
			return nil, fmt.Errorf("set: element %q: braces, semicolons, comments and newlines are not elements", e)
		}
	}
	if _, err := find(d.ruleset); err != nil {
		return nil, err
	}
	change := fmt.Sprintf("%s element %s %s %s { %s }", verb, family, args.Table, args.Set, strings.Join(args.Elements, ", "))
	changes := append(slices.Clone(d.setChanges), change)
	prog, rs, err := d.loadRules(d.rulesFrom, strings.Join(changes, "\n"))
	if err != nil {
		return nil, fmt.Errorf("set %s: %w", args.Op, err)
	}
	d.state.RLock()
	defer d.state.RUnlock()
	if d.closed {
		return nil, errors.New("set: the daemon is stopping")
	}
	d.swapRules(prog)
	d.ruleset, d.setChanges = rs, changes
	d.log.Info("set changed", "change", change)
	s, err := find(rs)
	if err != nil {
		return nil, err
	}
	return s.ElementStrings(), nil
}

// validNftFamily reports whether f names an nft family xdpfwd's rules
// can hold.
func validNftFamily(f string) bool {
	switch f {
	case "ip", "ip6", "inet", "bridge", "netdev", "arp":
		return true
	}
	return false
}
