package route

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
)

// Route is one route of the control plane, as `ip route` knows it.
type Route struct {
	// Prefix is the destination, masked (10.1.0.0/16, never
	// 10.1.2.3/16). 0.0.0.0/0 and ::/0 are the default routes.
	Prefix netip.Prefix
	// Type is the route's type; zero means Unicast.
	Type Type
	// Metric orders routes to the same prefix: the lowest wins, as the
	// kernel's priority.
	Metric uint32
	// NextHops are where a Unicast route sends packets: one, or an ECMP
	// group of up to MaxNextHops. A Local route may name its interface
	// (one next hop without gateway); other types have none.
	NextHops []NextHop
}

// String formats the route as Format does, with ports as numbers:
// "10.0.0.0/8 via 192.0.2.1 dev 1 metric 10".
func (r Route) String() string { return r.Format(portNumber, Attrs{}) }

// Attrs are what `ip route show` prints of a route beyond what Route
// holds, for Format.
type Attrs struct {
	// Src is the interface address the route was made from (its connected
	// route, or its local one), the zero Addr if none: the route is then
	// shown as the kernel shows those it makes, "proto kernel scope link
	// src ADDR".
	Src netip.Addr
	// Table, if not "", is shown as "table NAME", as `ip route show table
	// all` shows the routes of tables other than main.
	Table string
}

// Format formats the route as `ip route show` does, naming each next hop's
// port with name: one line, and for an ECMP group a "\tnexthop" line per
// next hop after it. A host route shows its address alone, as the kernel
// shows it.
func (r Route) Format(name func(port uint16) string, a Attrs) string {
	var b strings.Builder
	if r.Type != Unicast && r.Type != NoRoute {
		b.WriteString(r.Type.String())
		b.WriteByte(' ')
	}
	switch {
	case r.Prefix.Bits() == 0:
		b.WriteString("default")
	case r.Prefix.IsSingleIP():
		b.WriteString(r.Prefix.Addr().String())
	default:
		b.WriteString(r.Prefix.String())
	}
	if len(r.NextHops) == 1 {
		b.WriteByte(' ')
		b.WriteString(r.NextHops[0].format(name))
	}
	if a.Table != "" {
		b.WriteString(" table " + a.Table)
	}
	if len(r.NextHops) == 1 && !r.NextHops[0].Gateway.IsValid() {
		if a.Src.IsValid() {
			b.WriteString(" proto kernel")
		}
		if r.Type == Local {
			b.WriteString(" scope host")
		} else {
			b.WriteString(" scope link")
		}
		if a.Src.IsValid() {
			b.WriteString(" src " + a.Src.String())
		}
	}
	if r.Metric != 0 {
		fmt.Fprintf(&b, " metric %d", r.Metric)
	}
	if len(r.NextHops) > 1 {
		for _, h := range r.NextHops {
			fmt.Fprintf(&b, "\n\tnexthop %s weight %d", h.format(name), h.weight())
		}
	}
	return b.String()
}

// ErrExists is returned (wrapped) by Table.Add for a route whose prefix
// and metric are already in the table, as the kernel's EEXIST.
var ErrExists = errors.New("route exists")

// ErrNotFound is returned (wrapped) by Table.Delete for a route that is
// not in the table, as the kernel's ESRCH.
var ErrNotFound = errors.New("no such route")

// Table is the control plane's routing table: routes added, replaced and
// deleted one at a time (safe from any goroutine; writers take turns), and
// the FIB derived from it, which the fast path reads without locks. Of the
// routes to one prefix, the one with the lowest metric is in the FIB.
type Table struct {
	mu     sync.Mutex
	routes map[netip.Prefix][]Route // by metric, ascending
	fib    FIB
	f4     *fib4
	f6     *fib6
}

// NewTable returns an empty table.
func NewTable() *Table {
	return newTable(defaultRootBits)
}

func newTable(rootBits int) *Table {
	t := &Table{routes: make(map[netip.Prefix][]Route)}
	t.f4 = newFib4(&t.fib.v4, rootBits)
	t.f6 = newFib6(&t.fib.v6)
	return t
}

// FIB returns the table's FIB. It stays the same object for the table's
// life; its contents follow every change.
func (t *Table) FIB() *FIB { return &t.fib }

// Add adds r; a route with the same prefix and metric is an error
// (ErrExists), as `ip route add`.
func (t *Table) Add(r Route) error {
	return t.put(r, false)
}

// Replace adds r, or replaces the route with the same prefix and metric,
// as `ip route replace`.
func (t *Table) Replace(r Route) error {
	return t.put(r, true)
}

func (t *Table) put(r Route, replace bool) error {
	r, err := normalize(r)
	if err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	rs := t.routes[r.Prefix]
	i, found := slices.BinarySearchFunc(rs, r.Metric, func(x Route, m uint32) int { return cmp.Compare(x.Metric, m) })
	if found && !replace {
		return fmt.Errorf("adding route %s metric %d: %w", r.Prefix, r.Metric, ErrExists)
	}
	if i == 0 {
		if err := t.install(r); err != nil {
			return fmt.Errorf("adding route %s metric %d: %w", r.Prefix, r.Metric, err)
		}
	}
	if found {
		rs[i] = r
	} else {
		rs = slices.Insert(rs, i, r)
	}
	t.routes[r.Prefix] = rs
	return nil
}

// Delete removes the route to prefix with metric, as `ip route del
// PREFIX metric M`; a route of higher metric to the same prefix, if any,
// takes its place in the FIB.
func (t *Table) Delete(prefix netip.Prefix, metric uint32) error {
	if m := prefix.Masked(); m != prefix {
		return fmt.Errorf("deleting route %s: prefix has host bits set (did you mean %s?)", prefix, m)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	rs := t.routes[prefix]
	i, found := slices.BinarySearchFunc(rs, metric, func(x Route, m uint32) int { return cmp.Compare(x.Metric, m) })
	if !found {
		return fmt.Errorf("deleting route %s metric %d: %w", prefix, metric, ErrNotFound)
	}
	rs = slices.Delete(rs, i, i+1)
	var err error
	switch {
	case len(rs) == 0:
		delete(t.routes, prefix)
		if prefix.Addr().Is4() {
			err = t.f4.del(prefix)
		} else {
			err = t.f6.del(prefix)
		}
	case i == 0:
		t.routes[prefix] = rs
		err = t.install(rs[0])
	default:
		t.routes[prefix] = rs
	}
	if err != nil {
		return fmt.Errorf("deleting route %s metric %d: %w", prefix, metric, err)
	}
	return nil
}

// install puts r into the FIB as its prefix's route.
func (t *Table) install(r Route) error {
	w := encodeEntry(r.Type, r.NextHops)
	if r.Prefix.Addr().Is4() {
		return t.f4.set(r.Prefix, w)
	}
	return t.f6.set(r.Prefix, w)
}

// Routes returns every route, in the order `ip route show` then
// `ip -6 route show` list them: IPv4 before IPv6; by address; of prefixes
// with the same address, the longer first (as the kernel's fib_trie
// dumps them); of routes to the same prefix, the lower metric first.
func (t *Table) Routes() []Route {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []Route
	for _, rs := range t.routes {
		for _, r := range rs {
			r.NextHops = slices.Clone(r.NextHops)
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b Route) int {
		if c := a.Prefix.Addr().Compare(b.Prefix.Addr()); c != 0 {
			return c
		}
		if c := cmp.Compare(b.Prefix.Bits(), a.Prefix.Bits()); c != 0 {
			return c
		}
		return cmp.Compare(a.Metric, b.Metric)
	})
	return out
}

// Len returns the number of routes.
func (t *Table) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, rs := range t.routes {
		n += len(rs)
	}
	return n
}

// Stats is what a table's FIB holds.
type Stats struct {
	// Prefixes4 and Prefixes6 count the prefixes in the FIB.
	Prefixes4, Prefixes6 int
	// Bytes4 is the memory of the IPv4 FIB: its arena (root, plies,
	// entries, garbage not yet reclaimed, spare room) and the writer's
	// depth array.
	Bytes4 int
	// Bytes6 is the memory of the IPv6 FIB: its root, interval pairs
	// and entry arena (garbage and spare room included).
	Bytes6 int
	// Rebuilds4 and Rebuilds6 count the times a family's FIB was built
	// afresh: to reclaim garbage, or to grow.
	Rebuilds4, Rebuilds6 int
}

// Stats returns the sizes of the table's FIB.
func (t *Table) Stats() Stats {
	t.mu.Lock()
	defer t.mu.Unlock()
	return Stats{
		Prefixes4: len(t.f4.routes),
		Prefixes6: len(t.f6.routes),
		Bytes4:    t.f4.bytes(),
		Bytes6:    t.f6.bytes(),
		Rebuilds4: t.f4.rebuilds,
		Rebuilds6: t.f6.rebuilds,
	}
}

// normalize checks r and returns it with defaults filled in and its next
// hops copied.
func normalize(r Route) (Route, error) {
	if !r.Prefix.IsValid() {
		return r, fmt.Errorf("route %v: invalid prefix", r.Prefix)
	}
	if m := r.Prefix.Masked(); m != r.Prefix {
		return r, fmt.Errorf("route %s: prefix has host bits set (did you mean %s?)", r.Prefix, m)
	}
	if r.Type == NoRoute {
		r.Type = Unicast
	}
	where := func() string { return fmt.Sprintf("%s route %s", r.Type, r.Prefix) }
	switch r.Type {
	case Unicast:
		if len(r.NextHops) == 0 {
			return r, fmt.Errorf("%s: no next hop", where())
		}
	case Local:
		if len(r.NextHops) > 1 || len(r.NextHops) == 1 && r.NextHops[0].Gateway.IsValid() {
			return r, fmt.Errorf("%s: a local route names at most its interface, without gateway", where())
		}
	case Blackhole, Unreachable, Prohibit:
		if len(r.NextHops) != 0 {
			return r, fmt.Errorf("%s: this type has no next hop", where())
		}
	default:
		return r, fmt.Errorf("route %s: unknown type %d", r.Prefix, uint8(r.Type))
	}
	if len(r.NextHops) > MaxNextHops {
		return r, fmt.Errorf("%s: %d next hops, at most %d", where(), len(r.NextHops), MaxNextHops)
	}
	for i, h := range r.NextHops {
		if h.Weight > MaxWeight {
			return r, fmt.Errorf("%s: next hop %d (%s): weight %d, want 1 to %d", where(), i+1, h, h.Weight, MaxWeight)
		}
		if h.Gateway.IsValid() {
			if h.Gateway.Zone() != "" {
				return r, fmt.Errorf("%s: next hop %d: gateway %s has a zone; the port is its scope", where(), i+1, h.Gateway)
			}
			if h.Gateway.Is4In6() {
				return r, fmt.Errorf("%s: next hop %d: gateway %s is IPv4-mapped; give it as IPv4", where(), i+1, h.Gateway)
			}
			if h.Gateway.IsUnspecified() || h.Gateway.IsMulticast() {
				return r, fmt.Errorf("%s: next hop %d: gateway %s is not a unicast address", where(), i+1, h.Gateway)
			}
		}
		for j := range i {
			if r.NextHops[j].Port == h.Port && r.NextHops[j].Gateway == h.Gateway {
				return r, fmt.Errorf("%s: next hop %d (%s) repeats next hop %d", where(), i+1, h, j+1)
			}
		}
	}
	r.NextHops = slices.Clone(r.NextHops)
	return r, nil
}
