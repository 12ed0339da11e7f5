package rules

import (
	"cmp"
	"errors"
	"fmt"
	"github.com/xdpfwd/xdpfwd/conntrack"
	"github.com/xdpfwd/xdpfwd/nat"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/xdpfwd/xdpfwd/fastpath"
	"github.com/xdpfwd/xdpfwd/fastpath/header"
)

// Env tells Compile what the names of a ruleset mean in xdpfwd.
//
// meta iif and meta oif compile to ifindexes of the throwaway namespace
// the ruleset was loaded in (Ruleset.Interfaces names them): Compile maps
// them back to names, and the names to xdpfwd's ports and router
// interfaces. A device of xdpfwd whose name had no stand-in interface gets
// an ifindex of its own that no rule names, so iif "x" for a name that is
// not a port, bridge or router interface of xdpfwd matches nothing (as an
// ifindex of another device would), and iif != "x" matches everything.
// iifname and oifname compare the names themselves.
type Env struct {
	// Ports names the interface of each fastpath.PortID (the index).
	Ports []string
	// Ifaces names the router interfaces by index (Meta.InIface and
	// Meta.OutIface less one): the port or bridge the router sees as the
	// device, as the kernel's ip hooks see it.
	Ifaces []string
	// PortBridge names, for each PortID, the bridge it is a port of, ""
	// if none (meta ibrname and obrname; the bridge family's hooks see
	// the ports of bridges only).
	PortBridge []string
	// Log receives the lines of log statements, already rate-limited by
	// the engine as the kernel's printk rate limit (10 lines per 5 s); nil
	// drops them. It is called from the workers: it must not block.
	Log func(line string)
	// MACs optionally gives the MAC address of ports and bridges by name,
	// for meta pkttype: a frame to a port's own MAC (or, at the bridge
	// hooks, to its bridge's) is PACKET_HOST, as the kernel's
	// eth_type_trans and br_handle_frame classify it; without one, a
	// unicast frame a bridge or a netdev chain sees is PACKET_OTHERHOST.
	// Packets for the router and those it sends are PACKET_HOST.
	MACs map[string]header.MAC
	// ErrorSource optionally picks the source address of an ICMP or
	// ICMPv6 error that reject sends about packet p at an ip, ip6 or inet
	// hook, as the kernel's icmp_send would: IPv4 in the first 4 bytes.
	// Nil, or ok false, sends it from the offending packet's destination
	// address, which is what the kernel does when that address is the
	// router's (the input hook); for forwarded packets the kernel picks
	// an address of the router's interface toward the sender. It is
	// called from the workers and must not allocate.
	ErrorSource func(p *fastpath.Packet, v6 bool) (src [16]byte, ok bool)
	// Conntrack is the connection tracking ct expressions read and `ct
	// mark set` writes (the conntrack package's Tracker); nil: a ct
	// expression other than ct state finds no connection.
	Conntrack Conntrack
	// NAT binds and rewrites connections for nat chains and statements
	// (the nat package's Translator); nil refuses them.
	NAT NAT
}

// NAT is what nat chains and statements use of NAT: the binding of a new
// connection (nf_nat_setup_info) and the rewriting of packets
// (nf_nat_packet). Every method is called by the worker whose pipeline
// holds p and must not allocate.
type NAT interface {
	// Unbound reports whether p's new connection has no binding for m
	// yet: the nat chains of the hook run for it.
	Unbound(p *fastpath.Packet, m nat.Manip) bool
	// Setup binds m of p's new connection into r; false drops p.
	Setup(p *fastpath.Packet, r *nat.Range, m nat.Manip, now fastpath.Time) bool
	// Masquerade binds p's source to its output interface's address.
	Masquerade(p *fastpath.Packet, r *nat.Range, now fastpath.Time) bool
	// Redirect binds p's destination to its input interface's address.
	Redirect(p *fastpath.Packet, r *nat.Range, now fastpath.Time) bool
	// Apply gives an unbound new connection its null binding and
	// rewrites p if its connection is translated; false: p was dropped.
	// dry: p is in a dry run (fastpath.Batch.DryRun), to count nothing.
	Apply(p *fastpath.Packet, m nat.Manip, now fastpath.Time, dry bool) bool
}

// Conntrack is what the ct expressions use of connection tracking.
type Conntrack interface {
	// Entry copies the connection of p (Meta.CtRef) into e and reports
	// whether p has one. It is called by the worker whose pipeline holds
	// p, and must not allocate.
	Entry(p *fastpath.Packet, e *conntrack.Entry) bool
	// SetMark sets the mark of p's connection, if it has one.
	SetMark(p *fastpath.Packet, mark uint32)
}

// ErrUnsupported is wrapped by the errors of Compile about what xdpfwd
// does not run (yet).
var ErrUnsupported = errors.New("not supported by xdpfwd")

// errNeedsNAT is the reason nat chains and statements are refused by a
// program compiled without NAT (Env.NAT nil).
var errNeedsNAT = fmt.Errorf("%w: needs connection tracking and NAT, which this program has not", ErrUnsupported)

// Error is a part of a ruleset that Compile refuses: a table, chain, set
// or rule (by handle, with its text as nft lists it), and why.
type Error struct {
	Family Family
	Table  string
	// Chain and Set name the chain or set, if the error is about one.
	Chain, Set string
	// Handle and Text name the rule, if the error is about one.
	Handle uint64
	Text   string
	Err    error
}

// Error names the part of the ruleset and what is wrong with it.
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "rules: table %s %s", e.Family, e.Table)
	if e.Chain != "" {
		fmt.Fprintf(&b, ", chain %s", e.Chain)
	}
	if e.Set != "" {
		fmt.Fprintf(&b, ", set %s", e.Set)
	}
	if e.Handle != 0 {
		fmt.Fprintf(&b, ", rule handle %d", e.Handle)
	}
	if e.Text != "" {
		fmt.Fprintf(&b, " (%s)", e.Text)
	}
	fmt.Fprintf(&b, ": %v", e.Err)
	return b.String()
}

// Unwrap returns what is wrong.
func (e *Error) Unwrap() error { return e.Err }

// jumpStackSize is the kernel's NFT_JUMP_STACK_SIZE.
const jumpStackSize = 16

// Program is a ruleset compiled for the reference interpreter: chains
// linked, sets prepared for lookups, registers checked, base chains sorted
// by hook and priority; and, per chain, a classifier that finds the first
// rule whose leading matches on packet fields hold, so that the
// interpreter runs only the rules that can match (Placement). It is immutable but for the state of its stateful
// expressions (counters, limits, quotas), which the workers share. Put it
// to work with NewEngine or Engine.Swap, once.
type Program struct {
	// natHooks are the type nat chains at each IP hook, by priority;
	// nat4 and nat6 say whether NAT runs for IPv4 and IPv6 (any nat
	// chain of the family: the kernel's NAT hooks are then at all four
	// hooks).
	natHooks   [fastpath.NumHooks]hookChains
	nat4, nat6 bool
	// rs is the ruleset the program was compiled from (for listings).
	rs   *Ruleset
	env  Env
	devs []device
	// portDev and ifaceDev give the device of a port and of a router
	// interface (index); portIface a port's router interface (id, 0 for
	// none); portBridged whether a port is a bridge's.
	portDev, ifaceDev []int32
	portIface         []uint16
	portBridged       []bool

	ops    []op
	chains []chain
	rules  []ruleInfo
	objs   []objectInfo
	hooks  [fastpath.NumHooks]hookChains
	active [fastpath.NumHooks]bool

	icmp    *icmpLimiter
	logRate gcra
	// published is set once the program has been put into an Engine: it
	// adopts the state of the one before only then.
	published atomic.Bool
}

// device is a network device as the rules see it.
type device struct {
	name     [16]byte
	ifindex  uint32
	bridge   [16]byte // the bridge it is a port of (meta ibrname), zeros if none
	mac      header.MAC
	hasMAC   bool
	brMAC    header.MAC // its bridge's MAC
	hasBrMAC bool
}

// chain is a compiled chain.
type chain struct {
	name   string
	family Family
	table  string
	rules  []crule
	base   bool
	hook   Hook
	prio   int32
	policy vkind
	order  int // creation order in the ruleset, for base chains of equal priority
	devs   []string
	// nat marks a type nat chain: the NAT stage runs it, for the first
	// packet of a connection only.
	nat bool
	// runs are the classifiers of runs of its rules, in order; the
	// interpreter runs the rules of none in order.
	runs []*classifier
}

// crule is a compiled rule: its operations, in order (Program.ops[start:end]).
type crule struct {
	start, end int
	info       int // in Program.rules
	ops        []op
}

// ruleInfo names a rule and holds its state, for Rules and Swap.
type ruleInfo struct {
	family       Family
	table, chain string
	handle       uint64
	text         string
	fingerprint  string // its expressions, for a rule without text
	ops          []int  // indexes in Program.ops of its stateful ops
}

// objectInfo is a named object and its state.
type objectInfo struct {
	family      Family
	table, name string
	typ         ObjectType
	ctr         *counter
	quota       *quotaState
	quotaP      quotaParams
	lim         *limitState
	limP        limitParams
	limit       *Limit
	refs        []int // ops that use it
}

// hookChains are the base chains one hook runs, sorted as the kernel
// runs them: by priority, and of equal priority the one created last
// first (nf_hook_entries_grow inserts a hook before those of its
// priority).
type hookChains struct {
	v4, v6 []int32   // ip, ip6 and inet chains at an IP hook
	br     []int32   // bridge chains
	port   [][]int32 // netdev chains by PortID
}

// Compile validates rs and links it into a Program for the devices of
// env. It refuses, with an *Error naming the table, chain and rule (its
// text) and wrapping ErrUnsupported, what xdpfwd does not run: connection
// tracking (ct expressions, nat, masquerade and redirect statements, nat
// chains), the expressions the interpreter does not implement, the
// families and hooks xdpfwd has no place for (arp; inet ingress; bridge
// input and output), netdev chains on a bridge device, reject in the
// netdev family. A rule is never run weakened. A netdev chain on devices
// that are none of xdpfwd's ports never runs, as the kernel's would see
// none of xdpfwd's traffic.
func Compile(rs *Ruleset, env Env) (*Program, error) {
	if rs == nil {
		rs = &Ruleset{}
	}
	p := &Program{rs: rs, env: env, icmp: newICMPLimiter(),
		logRate: gcra{interval: int64(logRateInterval), burst: logRateBurst}}
	p.env.Ports = slices.Clone(env.Ports)
	p.env.Ifaces = slices.Clone(env.Ifaces)
	p.env.PortBridge = slices.Clone(env.PortBridge)
	p.devices(rs)
	c := &compiler{p: p}
	for _, t := range rs.Tables {
		if err := c.table(t); err != nil {
			return nil, err
		}
	}
	if err := c.link(); err != nil {
		return nil, err
	}
	if err := c.checkHooks(); err != nil {
		return nil, err
	}
	for i := range p.chains {
		for j := range p.chains[i].rules {
			r := &p.chains[i].rules[j]
			r.ops = p.ops[r.start:r.end:r.end]
		}
	}
	p.sortHooks()
	p.buildClassifiers()
	return p, nil
}

// devices builds the device table from env and the stand-in interfaces'
// ifindexes.
func (p *Program) devices(rs *Ruleset) {
	byName := make(map[string]uint32, len(rs.Interfaces))
	next := uint32(0)
	for idx, name := range rs.Interfaces {
		byName[name] = idx
		next = max(next, idx)
	}
	next++
	index := map[string]int32{}
	dev := func(name, bridge string) int32 {
		if i, ok := index[name]; ok {
			return i
		}
		d := device{}
		copy(d.name[:15], name)
		copy(d.bridge[:15], bridge)
		if idx, ok := byName[name]; ok {
			d.ifindex = idx
		} else {
			d.ifindex = next
			next++
		}
		d.mac, d.hasMAC = p.env.MACs[name]
		if bridge != "" {
			d.brMAC, d.hasBrMAC = p.env.MACs[bridge]
		}
		p.devs = append(p.devs, d)
		index[name] = int32(len(p.devs) - 1)
		return index[name]
	}
	for i, name := range p.env.Ports {
		p.portDev = append(p.portDev, dev(name, p.bridgeOf(fastpath.PortID(i))))
		p.portBridged = append(p.portBridged, p.bridgeOf(fastpath.PortID(i)) != "")
	}
	for _, name := range p.env.Ifaces {
		p.ifaceDev = append(p.ifaceDev, dev(name, ""))
	}
	for i, name := range p.env.Ports {
		var id uint16
		for j, f := range p.env.Ifaces {
			if f == name || f != "" && f == p.bridgeOf(fastpath.PortID(i)) {
				id = uint16(j + 1)
				break
			}
		}
		p.portIface = append(p.portIface, id)
	}
}

// bridgeOf returns the bridge of port pt, "" if none.
func (p *Program) bridgeOf(pt fastpath.PortID) string {
	if int(pt) < len(p.env.PortBridge) {
		return p.env.PortBridge[pt]
	}
	return ""
}

// compiler holds what compiling one ruleset needs.
type compiler struct {
	p *Program
	// chainIdx finds a chain by family, table and name.
	chainIdx map[[3]string]int32
	// pending are the jumps to check once every chain exists.
	edges map[int32][]int32
	order int
}

type tableCtx struct {
	t       *Table
	chainOf func(name string) (int32, error)
	sets    map[string]*cset
	ids     map[uint32]*cset
	objs    map[string]int // by type and name: index in p.objs
}

func (c *compiler) errTable(t *Table, err error) error {
	return &Error{Family: t.Family, Table: t.Name, Err: err}
}

func (c *compiler) table(t *Table) error {
	p := c.p
	switch t.Family {
	case FamilyIP, FamilyIP6, FamilyInet, FamilyBridge, FamilyNetdev:
	case FamilyARP:
		return c.errTable(t, fmt.Errorf("%w: the arp family (xdpfwd's router answers ARP itself)", ErrUnsupported))
	default:
		return c.errTable(t, fmt.Errorf("family %d not understood", uint8(t.Family)))
	}
	if c.chainIdx == nil {
		c.chainIdx = map[[3]string]int32{}
		c.edges = map[int32][]int32{}
	}
	tc := &tableCtx{t: t, sets: map[string]*cset{}, ids: map[uint32]*cset{}, objs: map[string]int{}}
	// Chains first: rules and verdict maps jump to them.
	first := int32(len(p.chains))
	for _, ch := range t.Chains {
		cc, err := c.chainHeader(t, ch)
		if err != nil {
			return err
		}
		key := [3]string{t.Family.String(), t.Name, ch.Name}
		if _, dup := c.chainIdx[key]; dup {
			return &Error{Family: t.Family, Table: t.Name, Chain: ch.Name, Err: errors.New("chain defined twice")}
		}
		c.chainIdx[key] = int32(len(p.chains))
		p.chains = append(p.chains, cc)
	}
	chainOf := func(name string) (int32, error) {
		i, ok := c.chainIdx[[3]string{t.Family.String(), t.Name, name}]
		if !ok {
			return 0, fmt.Errorf("no chain %q in the table", name)
		}
		if p.chains[i].base {
			return 0, fmt.Errorf("jump or goto to base chain %q", name)
		}
		return i, nil
	}
	tc.chainOf = chainOf
	for _, s := range t.Sets {
		cs, err := compileSet(t.Family, s, chainOf)
		if err != nil {
			return &Error{Family: t.Family, Table: t.Name, Set: s.Name, Err: fmt.Errorf("compiling the set: %w", err)}
		}
		tc.sets[s.Name] = cs
		if s.ID != 0 {
			tc.ids[s.ID] = cs
		}
		// A verdict map's jumps are edges of every chain that looks it
		// up: recorded when a rule does.
	}
	for _, o := range t.Objects {
		if err := c.object(tc, o); err != nil {
			return err
		}
	}
	for i, ch := range t.Chains {
		ci := first + int32(i)
		for _, r := range ch.Rules {
			cr, err := c.rule(tc, ci, r)
			if err != nil {
				return &Error{Family: t.Family, Table: t.Name, Chain: ch.Name, Handle: r.Handle, Text: r.Text, Err: err}
			}
			p.chains[ci].rules = append(p.chains[ci].rules, cr)
		}
	}
	return nil
}

// chainHeader checks a chain's type and hook and returns it without rules.
func (c *compiler) chainHeader(t *Table, ch *Chain) (chain, error) {
	cc := chain{name: ch.Name, family: t.Family, table: t.Name, base: ch.Base(), order: c.order}
	c.order++
	if !cc.base {
		return cc, nil
	}
	fail := func(err error) (chain, error) {
		return chain{}, &Error{Family: t.Family, Table: t.Name, Chain: ch.Name, Err: err}
	}
	switch ch.Type {
	case ChainFilter, ChainRoute:
		// A route chain reroutes what its rules change (marks,
		// addresses); xdpfwd routes by destination alone and rules do
		// not rewrite addresses: it filters as a filter chain.
	case ChainNAT:
		if c.p.env.NAT == nil {
			return fail(fmt.Errorf("type nat chain: %w", errNeedsNAT))
		}
		if t.Family != FamilyIP && t.Family != FamilyIP6 && t.Family != FamilyInet {
			return fail(fmt.Errorf("%w: a type nat chain in the %s family", ErrUnsupported, t.Family))
		}
		if ch.Hook != HookPrerouting && ch.Hook != HookInput && ch.Hook != HookOutput && ch.Hook != HookPostrouting {
			return fail(fmt.Errorf("type nat chain at hook %s: nat chains hook prerouting, input, output or postrouting", ch.Hook))
		}
		if ch.Hook == HookOutput {
			// The kernel routes the host's packet again after an
			// output dnat (ip_route_me_harder) and redirects it to
			// loopback; xdpfwd's router routes what it sends once,
			// and has no local stack to redirect to.
			return fail(fmt.Errorf("%w: a type nat chain at the output hook (destination NAT of the router's own packets)", ErrUnsupported))
		}
		cc.nat = true
	default:
		return fail(fmt.Errorf("chain type %q not understood", ch.Type))
	}
	ok := false
	switch t.Family {
	case FamilyIP, FamilyIP6, FamilyInet:
		ok = ch.Hook <= HookPostrouting
		if ch.Hook == HookIngress {
			return fail(fmt.Errorf("%w: the inet family's ingress hook (use a netdev chain)", ErrUnsupported))
		}
	case FamilyBridge:
		ok = ch.Hook == HookPrerouting || ch.Hook == HookForward || ch.Hook == HookPostrouting
		if ch.Hook == HookInput || ch.Hook == HookOutput {
			return fail(fmt.Errorf("%w: the bridge family's %s hook (frames to and from the bridge device)", ErrUnsupported, ch.Hook))
		}
	case FamilyNetdev:
		ok = ch.Hook == HookIngress || ch.Hook == HookEgress
		for _, d := range ch.Devices {
			for _, b := range c.p.env.PortBridge {
				if b != "" && (d == b || strings.HasSuffix(d, "*") && strings.HasPrefix(b, strings.TrimSuffix(d, "*"))) {
					return fail(fmt.Errorf("%w: a netdev chain on bridge device %q", ErrUnsupported, b))
				}
			}
		}
	}
	if !ok {
		return fail(fmt.Errorf("hook %s not understood for family %s", ch.Hook, t.Family))
	}
	switch ch.Policy {
	case VerdictAccept:
		cc.policy = vAccept
	case VerdictDrop:
		cc.policy = vDrop
	default:
		return fail(fmt.Errorf("policy %s not understood", ch.Policy))
	}
	cc.hook, cc.prio, cc.devs = ch.Hook, ch.Priority, ch.Devices
	if t.Flags&TableDormant != 0 {
		cc.base = false // not hooked: never runs
		cc.hook = 255
	}
	return cc, nil
}

// object compiles a named object.
func (c *compiler) object(tc *tableCtx, o *Object) error {
	p := c.p
	oi := objectInfo{family: tc.t.Family, table: tc.t.Name, name: o.Name, typ: o.Type}
	switch v := o.Value.(type) {
	case *Counter:
		oi.ctr = &counter{}
		oi.ctr.packets.Store(v.Packets)
		oi.ctr.bytes.Store(v.Bytes)
	case *Quota:
		oi.quota = &quotaState{}
		oi.quota.consumed.Store(v.Consumed)
		oi.quota.depleted.Store(v.Flags&QuotaDepleted != 0)
		oi.quotaP = quotaParams{bytes: v.Bytes, invert: v.Flags&QuotaInvert != 0}
	case *Limit:
		lp, why := newLimitParams(v)
		if why != "" {
			return &Error{Family: tc.t.Family, Table: tc.t.Name, Err: fmt.Errorf("limit %s: %s", o.Name, why)}
		}
		oi.lim, oi.limP, oi.limit = &limitState{}, lp, v
	default:
		// Objects xdpfwd does not run are refused where a rule uses them.
	}
	tc.objs[objKey(o.Type, o.Name)] = len(p.objs)
	p.objs = append(p.objs, oi)
	return nil
}

func objKey(t ObjectType, name string) string { return fmt.Sprintf("%d/%s", t, name) }

// sortHooks fills the per-hook chain lists.
func (p *Program) sortHooks() {
	var bases []int32
	for i := range p.chains {
		if p.chains[i].base {
			bases = append(bases, int32(i))
		}
	}
	// By priority; of equal priority, the one created last first.
	slices.SortStableFunc(bases, func(a, b int32) int {
		ca, cb := &p.chains[a], &p.chains[b]
		return cmp.Or(cmp.Compare(ca.prio, cb.prio), cmp.Compare(cb.order, ca.order))
	})
	ipHook := [...]fastpath.Hook{HookPrerouting: fastpath.HookPrerouting, HookInput: fastpath.HookInput,
		HookForward: fastpath.HookForward, HookOutput: fastpath.HookOutput, HookPostrouting: fastpath.HookPostrouting}
	brHook := map[Hook]fastpath.Hook{HookPrerouting: fastpath.HookBridgePrerouting, HookForward: fastpath.HookBridgeForward,
		HookPostrouting: fastpath.HookBridgePostrouting}
	for _, i := range bases {
		ch := &p.chains[i]
		if ch.nat {
			// Run by the NAT stage of the hook (NF_IP_PRI_NAT_DST
			// or _SRC), among the other nat chains by priority.
			hc := &p.natHooks[ipHook[ch.hook]]
			if ch.family != FamilyIP6 {
				hc.v4 = append(hc.v4, i)
				p.nat4 = true
			}
			if ch.family != FamilyIP {
				hc.v6 = append(hc.v6, i)
				p.nat6 = true
			}
			continue
		}
		switch ch.family {
		case FamilyIP, FamilyIP6, FamilyInet:
			hc := &p.hooks[ipHook[ch.hook]]
			if ch.family != FamilyIP6 {
				hc.v4 = append(hc.v4, i)
			}
			if ch.family != FamilyIP {
				hc.v6 = append(hc.v6, i)
			}
			p.active[ipHook[ch.hook]] = true
		case FamilyBridge:
			h := brHook[ch.hook]
			p.hooks[h].br = append(p.hooks[h].br, i)
			p.active[h] = true
		case FamilyNetdev:
			h := fastpath.HookIngress
			if ch.hook == HookEgress {
				h = fastpath.HookEgress
			}
			hc := &p.hooks[h]
			if hc.port == nil {
				hc.port = make([][]int32, len(p.env.Ports))
			}
			for pt, name := range p.env.Ports {
				if deviceMatch(ch.devs, name) {
					hc.port[pt] = append(hc.port[pt], i)
					p.active[h] = true
				}
			}
		}
	}
}

// deviceMatch reports whether a netdev chain on devs hooks device name
// ("eth*" matches by prefix).
func deviceMatch(devs []string, name string) bool {
	for _, d := range devs {
		if d == name || strings.HasSuffix(d, "*") && strings.HasPrefix(name, strings.TrimSuffix(d, "*")) {
			return true
		}
	}
	return false
}

// link checks the jumps: no loop, and no chain deeper than the kernel's
// jump stack (NFT_JUMP_STACK_SIZE) below a base chain, as its
// nft_chain_validate counts levels (jumps and gotos alike).
func (c *compiler) link() error {
	p := c.p
	const (
		white = iota
		grey
		black
	)
	color := make([]uint8, len(p.chains))
	height := make([]int, len(p.chains))
	var visit func(i int32) error
	visit = func(i int32) error {
		switch color[i] {
		case grey:
			return fmt.Errorf("chain %s jumps back to itself (a loop)", p.chains[i].name)
		case black:
			return nil
		}
		color[i] = grey
		h := 0
		for _, t := range c.edges[i] {
			if err := visit(t); err != nil {
				return err
			}
			h = max(h, height[t]+1)
		}
		color[i], height[i] = black, h
		return nil
	}
	for i := range p.chains {
		ch := &p.chains[i]
		if err := visit(int32(i)); err != nil {
			return &Error{Family: ch.family, Table: ch.table, Chain: ch.name, Err: err}
		}
		if ch.base && height[i] >= jumpStackSize {
			return &Error{Family: ch.family, Table: ch.table, Chain: ch.name,
				Err: fmt.Errorf("jumps %d chains deep, the kernel's limit is %d", height[i], jumpStackSize-1)}
		}
	}
	return nil
}

// edge records a jump or goto from chain from to chain to.
func (c *compiler) edge(from, to int32) {
	if !slices.Contains(c.edges[from], to) {
		c.edges[from] = append(c.edges[from], to)
	}
}

// regCheck checks that a register holds n bytes from its start within the
// data registers.
func regCheck(r Register, n uint32, what string) (uint8, error) {
	off := r.Offset()
	if off < 0 {
		return 0, fmt.Errorf("%s: %s is not a data register", what, r)
	}
	if n == 0 || uint32(off)+n > RegDataSize {
		return 0, fmt.Errorf("%s: %d bytes from %s run past the registers", what, n, r)
	}
	return uint8(off), nil
}

// rule compiles one rule of chain ci.
func (c *compiler) rule(tc *tableCtx, ci int32, r *Rule) (crule, error) {
	p := c.p
	start := len(p.ops)
	info := ruleInfo{family: tc.t.Family, table: tc.t.Name, chain: p.chains[ci].name, handle: r.Handle, text: r.Text}
	if r.Text == "" {
		// No listing: the expressions tell whether it is the same rule.
		info.fingerprint = r.String()
	}
	for i, e := range r.Exprs {
		o, err := c.expr(tc, ci, e)
		if err != nil {
			return crule{}, fmt.Errorf("expression %d (%s): %w", i+1, e.Name(), err)
		}
		if o.kind == opNop {
			continue
		}
		if o.stateful() {
			info.ops = append(info.ops, len(p.ops))
			if o.obj >= 0 {
				p.objs[o.obj].refs = append(p.objs[o.obj].refs, len(p.ops))
			}
		}
		p.ops = append(p.ops, o)
	}
	p.rules = append(p.rules, info)
	// The ops slice grows while compiling: rules take their ops once
	// every rule is compiled (Compile).
	return crule{start: start, end: len(p.ops), info: len(p.rules) - 1}, nil
}

// checkHooks refuses a reject in a chain that a hook the kernel does not
// allow it at reaches (nft_reject_validate: prerouting, input, forward and
// output; the bridge family's nft_reject_bridge_validate: prerouting and
// input).
func (c *compiler) checkHooks() error {
	p := c.p
	reach := make([]uint8, len(p.chains))
	var mark func(i int32, m uint8)
	mark = func(i int32, m uint8) {
		if reach[i]&m == m {
			return
		}
		reach[i] |= m
		for _, t := range c.edges[i] {
			mark(t, m)
		}
	}
	for i := range p.chains {
		if ch := &p.chains[i]; ch.base {
			mark(int32(i), 1<<ch.hook)
		}
	}
	for i := range p.chains {
		ch := &p.chains[i]
		allowed := uint8(1<<HookPrerouting | 1<<HookInput | 1<<HookForward | 1<<HookOutput)
		if ch.family == FamilyBridge {
			allowed = 1<<HookPrerouting | 1<<HookInput
		}
		if reach[i]&^allowed == 0 {
			continue
		}
		for _, r := range ch.rules {
			for _, o := range p.ops[r.start:r.end] {
				if o.kind == opReject {
					ri := &p.rules[r.info]
					return &Error{Family: ri.family, Table: ri.table, Chain: ri.chain, Handle: ri.handle, Text: ri.text,
						Err: fmt.Errorf("reject at a hook the kernel does not allow it at (%s)", hookList(reach[i]&^allowed))}
				}
			}
		}
	}
	return nil
}

// hookList names the hooks of a mask.
func hookList(m uint8) string {
	var names []string
	for h := range Hook(8) {
		if m&(1<<h) != 0 {
			names = append(names, h.String())
		}
	}
	return strings.Join(names, ", ")
}

// UsesConntrack reports whether the program reads or writes connection
// tracking (ct expressions, ct mark set): the kernel runs conntrack in a
// namespace only while a ruleset needs it, and so does xdpfwd.
func (p *Program) UsesConntrack() bool {
	if p.nat4 || p.nat6 {
		return true
	}
	for i := range p.ops {
		if k := p.ops[i].kind; k == opCt || k == opCtSetMark {
			return true
		}
	}
	return false
}
