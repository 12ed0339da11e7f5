package rules

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// ruleRef names a rule: handles are unique within a table.
type ruleRef struct {
	family Family
	table  string
	handle uint64
}

// listingState is what a listing shows of the running program: each
// rule's inline counters and quotas (those of the anonymous chains it
// jumps to after its own, in the order nft prints them) and each named
// object's state.
type listingState struct {
	counters map[ruleRef][]Counter
	quotas   map[ruleRef][]Quota
	objects  map[ruleRef]Expr // handle: the object's
}

func (p *Program) listingState() *listingState {
	rs := p.rs
	st := &listingState{counters: map[ruleRef][]Counter{}, quotas: map[ruleRef][]Quota{}, objects: map[ruleRef]Expr{}}
	type chainRef struct {
		family      Family
		table, name string
	}
	byChain := map[chainRef][]RuleStats{}
	for _, r := range p.Rules() {
		k := chainRef{r.Family, r.Table, r.Chain}
		byChain[k] = append(byChain[k], r)
	}
	for _, t := range rs.Tables {
		// nft prints an anonymous chain's rules inside the rule that
		// jumps to it, after that rule's own statements.
		var add func(ref ruleRef, chain string)
		add = func(ref ruleRef, chain string) {
			for _, r := range byChain[chainRef{t.Family, t.Name, chain}] {
				st.counters[ref] = append(st.counters[ref], r.Counters...)
				st.quotas[ref] = append(st.quotas[ref], r.Quotas...)
				for _, body := range boundChains(t, chain, r.Handle) {
					add(ref, body)
				}
			}
		}
		for _, c := range t.Chains {
			if c.Flags&ChainBinding != 0 {
				continue
			}
			for _, r := range byChain[chainRef{t.Family, t.Name, c.Name}] {
				ref := ruleRef{t.Family, t.Name, r.Handle}
				st.counters[ref] = append([]Counter(nil), r.Counters...)
				st.quotas[ref] = append([]Quota(nil), r.Quotas...)
				for _, body := range boundChains(t, c.Name, r.Handle) {
					add(ref, body)
				}
			}
		}
	}
	for _, o := range p.Objects() {
		if t := rs.Table(o.Family, o.Table); t != nil {
			for _, to := range t.Objects {
				if to.Name == o.Name && to.Type == o.Type {
					st.objects[ruleRef{o.Family, o.Table, to.Handle}] = o.Value
				}
			}
		}
	}
	return st
}

// boundChains returns the anonymous chains rule handle of chain jumps or
// goes to, in the order of its expressions.
func boundChains(t *Table, chain string, handle uint64) []string {
	c := t.Chain(chain)
	if c == nil {
		return nil
	}
	var out []string
	for _, r := range c.Rules {
		if r.Handle != handle {
			continue
		}
		for _, e := range r.Exprs {
			if im, ok := e.(*Immediate); ok && (im.Verdict.Kind == VerdictJump || im.Verdict.Kind == VerdictGoto) {
				if b := t.Chain(im.Verdict.Chain); b != nil && b.Flags&ChainBinding != 0 {
					out = append(out, b.Name)
				}
			}
		}
	}
	return out
}

var (
	counterText = regexp.MustCompile(`counter packets \d+ bytes \d+`)
	quotaText   = regexp.MustCompile(`quota (over )?\d+ [kmgt]?bytes( used \d+ [kmgt]?bytes)?`)
	handleText  = regexp.MustCompile(` # handle \d+$`)
)

// Listing returns the ruleset as `nft list ruleset` prints it (with
// handles: `nft -a list ruleset`), with the running program's counters and
// quota use where nft printed those it had when it loaded the file.
func (p *Program) Listing(handles bool) string {
	st := p.listingState()
	var (
		b       strings.Builder
		table   ruleRef
		object  Expr // the named object whose body comes next
		pending []string
		depth   int
	)
	emit := func(line string) {
		if !handles {
			line = handleText.ReplaceAllString(line, "")
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	for line := range strings.Lines(p.rs.Listing) {
		line = strings.TrimSuffix(line, "\n")
		f := strings.Fields(line)
		switch {
		case strings.HasPrefix(line, "table ") && len(f) >= 3:
			table = ruleRef{family: familyNamed(f[1]), table: strings.Trim(f[2], `"`)}
		case depth == 0 && len(f) >= 6 && (f[0] == "counter" || f[0] == "quota") && f[len(f)-3] == "#" && !strings.HasPrefix(line, "\t\t"):
			// "\tcounter NAME { # handle H": the body follows.
			h, _ := strconv.ParseUint(f[len(f)-1], 10, 64)
			object = st.objects[ruleRef{table.family, table.table, h}]
		case strings.HasPrefix(line, "\t\t") && object != nil && depth == 0:
			switch v := object.(type) {
			case *Counter:
				line = fmt.Sprintf("\t\tpackets %d bytes %d", v.Packets, v.Bytes)
			case *Quota:
				line = "\t\t" + strings.TrimPrefix(formatQuota(*v), "quota ")
			}
			object = nil
		case strings.HasPrefix(line, "\t\t") && len(f) > 0 && f[0] != "type" || depth > 0:
			// A rule: one line, or an anonymous chain's lines up to
			// the "} # handle N" that ends it.
			depth += strings.Count(line, "{") - strings.Count(line, "}")
			pending = append(pending, line)
			if depth > 0 {
				continue
			}
			h := handleText.FindString(line)
			handle, _ := strconv.ParseUint(strings.TrimPrefix(h, " # handle "), 10, 64)
			text := fillCounters(strings.Join(pending, "\n"), st, ruleRef{table.family, table.table, handle})
			pending = nil
			for l := range strings.Lines(text) {
				emit(strings.TrimSuffix(l, "\n"))
			}
			continue
		}
		emit(line)
	}
	return b.String()
}

// RuleLines returns the program's rules one a line, "FAMILY TABLE CHAIN
// handle N: TEXT", with the live counters and quota use in each rule's
// text (an anonymous chain's in the rule that holds it, as nft prints
// them; its rules have no line of their own).
func (p *Program) RuleLines() []string {
	st := p.listingState()
	bound := map[ruleRef]bool{}
	for _, t := range p.rs.Tables {
		for _, c := range t.Chains {
			if c.Flags&ChainBinding != 0 {
				for _, r := range c.Rules {
					bound[ruleRef{t.Family, t.Name, r.Handle}] = true
				}
			}
		}
	}
	var lines []string
	for _, r := range p.Rules() {
		ref := ruleRef{r.Family, r.Table, r.Handle}
		if bound[ref] {
			continue
		}
		lines = append(lines, fmt.Sprintf("%s %s %s handle %d: %s", r.Family, r.Table, r.Chain, r.Handle, fillCounters(r.Text, st, ref)))
	}
	return lines
}

// fillCounters puts rule ref's counters and quotas into its text, in
// order.
func fillCounters(text string, st *listingState, ref ruleRef) string {
	cs, qs := st.counters[ref], st.quotas[ref]
	text = counterText.ReplaceAllStringFunc(text, func(s string) string {
		if len(cs) == 0 {
			return s
		}
		c := cs[0]
		cs = cs[1:]
		return fmt.Sprintf("counter packets %d bytes %d", c.Packets, c.Bytes)
	})
	return quotaText.ReplaceAllStringFunc(text, func(s string) string {
		if len(qs) == 0 {
			return s
		}
		q := qs[0]
		qs = qs[1:]
		return formatQuota(q)
	})
}

// formatQuota prints a quota statement as nft does: "quota over 100
// mbytes used 5 kbytes" (the use only once there is some).
func formatQuota(q Quota) string {
	s := "quota "
	if q.Flags&QuotaInvert != 0 {
		s += "over "
	}
	n, unit := byteUnit(q.Bytes)
	s += fmt.Sprintf("%d %s", n, unit)
	if q.Consumed > 0 {
		n, unit = byteUnit(q.Consumed)
		s += fmt.Sprintf(" used %d %s", n, unit)
	}
	return s
}

// byteUnit expresses n in the largest of nft's units that divides it.
func byteUnit(n uint64) (uint64, string) {
	units := []string{"bytes", "kbytes", "mbytes", "gbytes", "tbytes"}
	i := 0
	for n >= 1024 && n%1024 == 0 && i < len(units)-1 {
		n /= 1024
		i++
	}
	return n, units[i]
}

func familyNamed(name string) Family {
	for f := Family(0); f < 16; f++ {
		if f.String() == name {
			return f
		}
	}
	return 0
}

// ListingJSON returns the ruleset as `nft -j list ruleset` prints it,
// with the running program's counters and quota use in place of those nft
// printed when it loaded the file.
func (p *Program) ListingJSON() ([]byte, error) {
	st := p.listingState()
	var doc struct {
		Nftables []map[string]json.RawMessage `json:"nftables"`
	}
	if p.rs.ListingJSON == "" { // no ruleset
		return []byte(`{"nftables":[]}` + "\n"), nil
	}
	if err := json.Unmarshal([]byte(p.rs.ListingJSON), &doc); err != nil {
		return nil, fmt.Errorf("rules: nft's JSON listing: %w", err)
	}
	type objectHead struct {
		Family, Table string
		Handle        uint64
	}
	for _, item := range doc.Nftables {
		for kind, raw := range item {
			var err error
			switch kind {
			case "counter", "quota":
				var h objectHead
				if err = json.Unmarshal(raw, &h); err != nil {
					break
				}
				v := st.objects[ruleRef{familyNamed(h.Family), h.Table, h.Handle}]
				item[kind], err = patchObject(raw, v)
			case "rule":
				item[kind], err = patchRule(raw, st)
			}
			if err != nil {
				return nil, fmt.Errorf("rules: nft's JSON listing, %s: %w", kind, err)
			}
		}
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// patchObject sets a named counter's or quota's state in its JSON object.
func patchObject(raw json.RawMessage, v Expr) (json.RawMessage, error) {
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	switch v := v.(type) {
	case *Counter:
		m["packets"], m["bytes"] = v.Packets, v.Bytes
	case *Quota:
		m["used"] = v.Consumed
	default:
		return raw, nil
	}
	return json.Marshal(m)
}

// patchRule puts a rule's inline counters and quotas into its JSON
// statements, in order. nft 1.0.6 prints an anonymous chain as a string
// of nft syntax: its counters are filled in as in the text listing.
func patchRule(raw json.RawMessage, st *listingState) (json.RawMessage, error) {
	var r struct {
		Family, Table string
		Handle        uint64
		Expr          []json.RawMessage
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, err
	}
	ref := ruleRef{familyNamed(r.Family), r.Table, r.Handle}
	sub := &listingState{counters: map[ruleRef][]Counter{ref: st.counters[ref]}, quotas: map[ruleRef][]Quota{ref: st.quotas[ref]}}
	for i, e := range r.Expr {
		var s string
		if json.Unmarshal(e, &s) == nil {
			filled := fillCounters(s, sub, ref)
			// What the string used is no longer the rule's to give.
			sub.counters[ref] = sub.counters[ref][min(len(counterText.FindAllString(s, -1)), len(sub.counters[ref])):]
			sub.quotas[ref] = sub.quotas[ref][min(len(quotaText.FindAllString(s, -1)), len(sub.quotas[ref])):]
			r.Expr[i], _ = json.Marshal(filled)
			continue
		}
		var stmt map[string]json.RawMessage
		if json.Unmarshal(e, &stmt) != nil {
			continue
		}
		if c, ok := stmt["counter"]; ok && len(c) > 0 && c[0] == '{' && len(sub.counters[ref]) > 0 {
			v := sub.counters[ref][0]
			sub.counters[ref] = sub.counters[ref][1:]
			stmt["counter"], _ = json.Marshal(map[string]uint64{"packets": v.Packets, "bytes": v.Bytes})
		}
		if q, ok := stmt["quota"]; ok && len(q) > 0 && q[0] == '{' && len(sub.quotas[ref]) > 0 {
			v := sub.quotas[ref][0]
			sub.quotas[ref] = sub.quotas[ref][1:]
			var m map[string]any
			if err := json.Unmarshal(q, &m); err != nil {
				return nil, err
			}
			delete(m, "used")
			delete(m, "used_unit")
			if v.Consumed > 0 { // as nft: no use, no field
				n, unit := byteUnit(v.Consumed)
				m["used"], m["used_unit"] = n, unit
			}
			stmt["quota"], _ = json.Marshal(m)
		}
		r.Expr[i], _ = json.Marshal(stmt)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	m["expr"], _ = json.Marshal(r.Expr)
	return json.Marshal(m)
}
