package rules

import (
	"fmt"
	"strings"
)

// Family is the netfilter family of a table (the kernel's NFPROTO_*).
type Family uint8

// Table families, with the kernel's NFPROTO_* values.
const (
	FamilyInet   Family = 1  // inet: IPv4 and IPv6
	FamilyIP     Family = 2  // ip: IPv4
	FamilyARP    Family = 3  // arp
	FamilyNetdev Family = 5  // netdev: per-device ingress and egress
	FamilyBridge Family = 7  // bridge: bridged frames
	FamilyIP6    Family = 10 // ip6: IPv6
)

var familyNames = map[Family]string{
	FamilyInet: "inet", FamilyIP: "ip", FamilyARP: "arp",
	FamilyNetdev: "netdev", FamilyBridge: "bridge", FamilyIP6: "ip6",
}

// String returns the family as nft names it ("ip", "ip6", "inet", …).
func (f Family) String() string {
	if s, ok := familyNames[f]; ok {
		return s
	}
	return fmt.Sprintf("family(%d)", uint8(f))
}

// Valid reports whether f is a table family the kernel knows.
func (f Family) Valid() bool {
	_, ok := familyNames[f]
	return ok
}

// Ruleset is a whole nftables ruleset as the kernel compiled it.
type Ruleset struct {
	// Tables in the kernel's order (the order nft created them).
	Tables []*Table
	// Interfaces names the ifindexes that rules compiled in (meta iif,
	// meta oif): the stand-in interfaces the loader created.
	Interfaces map[uint32]string
	// Listing is `nft -a list ruleset` and ListingJSON `nft -j list
	// ruleset` as nft printed them once it had loaded the file: the
	// layout Program.Listing fills with live counters.
	Listing, ListingJSON string
}

// Table returns the table of that family and name, or nil.
func (rs *Ruleset) Table(f Family, name string) *Table {
	for _, t := range rs.Tables {
		if t.Family == f && t.Name == name {
			return t
		}
	}
	return nil
}

// String prints the ruleset, one line per table, chain, set, object and
// expression; for debugging.
func (rs *Ruleset) String() string {
	var b strings.Builder
	for _, t := range rs.Tables {
		t.format(&b)
	}
	return b.String()
}

// TableFlags are a table's flags (NFT_TABLE_F_*).
type TableFlags uint32

// Table flags.
const (
	TableDormant TableFlags = 1 << 0 // the table's chains are not hooked
	TableOwner   TableFlags = 1 << 1 // owned by a netlink socket
	TablePersist TableFlags = 1 << 2 // outlives its owner
)

// Table is an nftables table: chains, sets and named objects of one family.
type Table struct {
	Family Family
	Name   string
	Handle uint64
	Flags  TableFlags
	// Chains in the kernel's order.
	Chains []*Chain
	// Sets and maps, anonymous ones (__set%d, __map%d) included.
	Sets []*Set
	// Objects are the named stateful objects (counter, quota, limit, …).
	Objects []*Object
}

// Chain returns the chain of that name, or nil.
func (t *Table) Chain(name string) *Chain {
	for _, c := range t.Chains {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// Set returns the set or map of that name, or nil.
func (t *Table) Set(name string) *Set {
	for _, s := range t.Sets {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// Object returns the named object of that type and name, or nil.
func (t *Table) Object(typ ObjectType, name string) *Object {
	for _, o := range t.Objects {
		if o.Type == typ && o.Name == name {
			return o
		}
	}
	return nil
}

func (t *Table) format(b *strings.Builder) {
	fmt.Fprintf(b, "table %s %s handle %d", t.Family, t.Name, t.Handle)
	if t.Flags != 0 {
		fmt.Fprintf(b, " flags %#x", uint32(t.Flags))
	}
	b.WriteByte('\n')
	for _, s := range t.Sets {
		fmt.Fprintf(b, "\t%s\n", s)
		for _, e := range s.Elements {
			fmt.Fprintf(b, "\t\t%s\n", e)
		}
	}
	for _, o := range t.Objects {
		fmt.Fprintf(b, "\t%s\n", o)
	}
	for _, c := range t.Chains {
		fmt.Fprintf(b, "\t%s\n", c)
		for _, r := range c.Rules {
			fmt.Fprintf(b, "\t\trule handle %d: %s\n", r.Handle, r.Text)
			for _, e := range r.Exprs {
				fmt.Fprintf(b, "\t\t\t[ %s ]\n", e)
			}
		}
	}
}

// Hook is the netfilter hook a base chain is attached to. The kernel
// numbers hooks per family (NF_INET_*, NF_NETDEV_*, NF_ARP_*); Hook names
// them independently of the family.
type Hook uint8

// Hooks.
const (
	HookPrerouting  Hook = iota // NF_INET_PRE_ROUTING, NF_BR_PRE_ROUTING
	HookInput                   // NF_INET_LOCAL_IN, NF_BR_LOCAL_IN, NF_ARP_IN
	HookForward                 // NF_INET_FORWARD, NF_BR_FORWARD, NF_ARP_FORWARD
	HookOutput                  // NF_INET_LOCAL_OUT, NF_BR_LOCAL_OUT, NF_ARP_OUT
	HookPostrouting             // NF_INET_POST_ROUTING, NF_BR_POST_ROUTING
	HookIngress                 // NF_NETDEV_INGRESS, NF_INET_INGRESS (inet)
	HookEgress                  // NF_NETDEV_EGRESS
)

var hookNames = [...]string{"prerouting", "input", "forward", "output", "postrouting", "ingress", "egress"}

// String returns the hook as nft names it.
func (h Hook) String() string {
	if int(h) < len(hookNames) {
		return hookNames[h]
	}
	return fmt.Sprintf("hook(%d)", uint8(h))
}

// ChainType is a base chain's type: "filter", "nat" or "route".
type ChainType string

// Chain types.
const (
	ChainFilter ChainType = "filter"
	ChainNAT    ChainType = "nat"
	ChainRoute  ChainType = "route"
)

// ChainFlags are a chain's flags (NFT_CHAIN_*).
type ChainFlags uint32

// Chain flags.
const (
	ChainBase      ChainFlags = 1 << 0 // attached to a hook
	ChainHWOffload ChainFlags = 1 << 1
	ChainBinding   ChainFlags = 1 << 2 // anonymous chain bound to a rule
)

// Chain is a chain of rules. A base chain (Base) is attached to a hook
// with a priority, a type and a policy; a regular chain is only reached
// by jump and goto.
type Chain struct {
	Name   string
	Handle uint64
	Flags  ChainFlags
	// Base chains only.
	Type     ChainType
	Hook     Hook
	Priority int32
	Policy   VerdictKind // VerdictAccept or VerdictDrop
	Devices  []string    // netdev (and inet ingress) chains: the devices
	// Rules in evaluation order.
	Rules []*Rule
}

// Base reports whether the chain is attached to a hook.
func (c *Chain) Base() bool { return c.Flags&ChainBase != 0 }

// Rule returns the rule with that handle, or nil.
func (c *Chain) Rule(handle uint64) *Rule {
	for _, r := range c.Rules {
		if r.Handle == handle {
			return r
		}
	}
	return nil
}

// String prints the chain's header.
func (c *Chain) String() string {
	s := fmt.Sprintf("chain %s handle %d", c.Name, c.Handle)
	if c.Base() {
		s += fmt.Sprintf(" type %s hook %s priority %d policy %s", c.Type, c.Hook, c.Priority, c.Policy)
		if len(c.Devices) > 0 {
			s += fmt.Sprintf(" devices %q", c.Devices)
		}
	}
	if f := c.Flags &^ ChainBase; f != 0 {
		s += fmt.Sprintf(" flags %#x", uint32(f))
	}
	return s
}

// Rule is one rule: its expressions run in order on the registers.
type Rule struct {
	Handle uint64
	// Position is the handle of the rule before it in its chain (the
	// kernel's NFTA_RULE_POSITION), 0 for the first rule.
	Position uint64
	// Text is the rule as `nft -a list ruleset` prints it, without the
	// "# handle N" comment.
	Text string
	// UserData is nft's TLV annotation of the rule (its comment).
	UserData []byte
	Exprs    []Expr
}

// String prints the rule's expressions on one line.
func (r *Rule) String() string {
	var b strings.Builder
	for i, e := range r.Exprs {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString("[ " + e.String() + " ]")
	}
	return b.String()
}

// SetFlags are a set's flags (NFT_SET_*).
type SetFlags uint32

// Set flags.
const (
	SetAnonymous SetFlags = 0x1   // a rule's inline set: { 22, 80 }
	SetConstant  SetFlags = 0x2   // contents do not change while bound
	SetInterval  SetFlags = 0x4   // elements are ranges
	SetMap       SetFlags = 0x8   // elements carry data
	SetTimeout   SetFlags = 0x10  // elements expire
	SetEval      SetFlags = 0x20  // updated from the packet path (dynset)
	SetObject    SetFlags = 0x40  // elements name stateful objects
	SetConcat    SetFlags = 0x80  // keys are concatenations
	SetExpr      SetFlags = 0x100 // elements carry expressions
)

var setFlagNames = []string{"anonymous", "constant", "interval", "map", "timeout", "dynamic", "object", "concat", "expr"}

// String lists the flags by name.
func (f SetFlags) String() string { return flagString(uint32(f), setFlagNames) }

// DataTypeVerdict is the data type of a verdict map (NFT_DATA_VERDICT).
const DataTypeVerdict = 0xffffff00

// Set is a set or a map: lookups match keys against its elements; a map
// also gives each element's data (a verdict for a verdict map).
type Set struct {
	Name   string
	Handle uint64
	ID     uint32
	Flags  SetFlags
	// KeyType is nft's data type of the key (informational; for a
	// concatenation, the types packed 6 bits each).
	KeyType uint32
	// KeyLen is the key's length in bytes (each field of a
	// concatenation padded to 4 bytes).
	KeyLen uint32
	// DataType and DataLen describe a map's data; DataType is
	// DataTypeVerdict for a verdict map.
	DataType uint32
	DataLen  uint32
	// ObjType is the object type of an object map.
	ObjType ObjectType
	Policy  uint32 // NFT_SET_POL_PERFORMANCE (0) or NFT_SET_POL_MEMORY (1)
	Size    uint32 // the declared maximum number of elements, 0 if none
	// FieldLen gives each field's length in bytes for a concatenation.
	FieldLen []uint32
	// Timeout is the default element timeout in milliseconds.
	Timeout    uint64
	GCInterval uint32 // milliseconds
	UserData   []byte
	// Exprs are the expressions each element carries (e.g. a counter).
	Exprs    []Expr
	Elements []Element
}

// VerdictMap reports whether the set is a verdict map.
func (s *Set) VerdictMap() bool { return s.Flags&SetMap != 0 && s.DataType == DataTypeVerdict }

// String prints the set's declaration.
func (s *Set) String() string {
	kind := "set"
	if s.Flags&SetMap != 0 {
		kind = "map"
	}
	str := fmt.Sprintf("%s %s handle %d id %d flags %s key type %#x len %d",
		kind, s.Name, s.Handle, s.ID, s.Flags, s.KeyType, s.KeyLen)
	if s.Flags&SetMap != 0 {
		str += fmt.Sprintf(" data type %#x len %d", s.DataType, s.DataLen)
	}
	if s.Flags&SetObject != 0 {
		str += fmt.Sprintf(" object %s", s.ObjType)
	}
	if len(s.FieldLen) > 0 {
		str += fmt.Sprintf(" fields %v", s.FieldLen)
	}
	if s.Size != 0 {
		str += fmt.Sprintf(" size %d", s.Size)
	}
	if s.Timeout != 0 {
		str += fmt.Sprintf(" timeout %dms", s.Timeout)
	}
	for _, e := range s.Exprs {
		str += " [ " + e.String() + " ]"
	}
	return str
}

// ElemFlags are a set element's flags (NFT_SET_ELEM_*).
type ElemFlags uint32

// Element flags.
const (
	// ElemIntervalEnd marks the element that ends an interval: in a
	// set with SetInterval but without KeyEnd, a range [a, b] is the
	// element a and the element b+1 flagged ElemIntervalEnd.
	ElemIntervalEnd ElemFlags = 0x1
	// ElemCatchall is the catch-all element (key "*").
	ElemCatchall ElemFlags = 0x2
)

// Element is one element of a set or map.
type Element struct {
	Key []byte
	// KeyEnd is the inclusive end of a range, for sets whose ranges
	// are single elements (concatenations with intervals).
	KeyEnd []byte
	// Data is a map element's value; Verdict a verdict map element's.
	Data    []byte
	Verdict Verdict
	// ObjRef names the object of an object map element.
	ObjRef     string
	Flags      ElemFlags
	Timeout    uint64 // milliseconds
	Expiration uint64 // milliseconds left
	UserData   []byte
	Exprs      []Expr
}

// String prints the element.
func (e Element) String() string {
	s := "element " + hexBytes(e.Key)
	if e.KeyEnd != nil {
		s += "-" + hexBytes(e.KeyEnd)
	}
	switch {
	case e.Verdict.Kind != VerdictNone:
		s += " : " + e.Verdict.String()
	case e.Data != nil:
		s += " : " + hexBytes(e.Data)
	case e.ObjRef != "":
		s += " : " + e.ObjRef
	}
	if e.Flags != 0 {
		s += fmt.Sprintf(" flags %#x", uint32(e.Flags))
	}
	if e.Timeout != 0 {
		s += fmt.Sprintf(" timeout %dms", e.Timeout)
	}
	for _, x := range e.Exprs {
		s += " [ " + x.String() + " ]"
	}
	return s
}

// ObjectType is the type of a named stateful object (NFT_OBJECT_*).
type ObjectType uint32

// Object types.
const (
	ObjectCounter    ObjectType = 1
	ObjectQuota      ObjectType = 2
	ObjectCtHelper   ObjectType = 3
	ObjectLimit      ObjectType = 4
	ObjectConnlimit  ObjectType = 5
	ObjectTunnel     ObjectType = 6
	ObjectCtTimeout  ObjectType = 7
	ObjectSecmark    ObjectType = 8
	ObjectCtExpect   ObjectType = 9
	ObjectSynproxy   ObjectType = 10
	objectTypeNumber            = 11
)

var objectNames = [objectTypeNumber]string{"", "counter", "quota", "ct helper", "limit", "connlimit",
	"tunnel", "ct timeout", "secmark", "ct expectation", "synproxy"}

// String returns the object type as nft names it.
func (t ObjectType) String() string {
	if t != 0 && t < objectTypeNumber {
		return objectNames[t]
	}
	return fmt.Sprintf("object(%d)", uint32(t))
}

// Object is a named stateful object, shared by the rules that name it
// (objref) or by the elements of an object map.
type Object struct {
	Name     string
	Handle   uint64
	Type     ObjectType
	UserData []byte
	// Value holds the object's state, as the expression of the same
	// kind: *Counter, *Quota, *Limit or *Connlimit.
	Value Expr
}

// String prints the object.
func (o *Object) String() string {
	return fmt.Sprintf("%s %s handle %d [ %s ]", o.Type, o.Name, o.Handle, o.Value)
}

func flagString(v uint32, names []string) string {
	if v == 0 {
		return "0"
	}
	var parts []string
	for i, n := range names {
		if v&(1<<i) != 0 {
			parts = append(parts, n)
			v &^= 1 << i
		}
	}
	if v != 0 {
		parts = append(parts, fmt.Sprintf("%#x", v))
	}
	return strings.Join(parts, ",")
}

func hexBytes(b []byte) string {
	if b == nil {
		return "-"
	}
	return fmt.Sprintf("0x%x", b)
}
