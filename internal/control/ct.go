package control

// The connection tracking verbs: ct-list (a page of entries, as
// `conntrack -L` lists them), ct-count (`conntrack -C`), ct-flush
// (`conntrack -F`) and ct-stats (`conntrack -S`).

// MaxCtPage is the most entries one ct-list call returns; a table of
// 262144 entries takes 64 calls.
const MaxCtPage = 4096

// CtListArgs are the ct-list verb's arguments: a page of the entries that
// pass a filter.
type CtListArgs struct {
	// Filter are `conntrack -L`'s filter options, as the command line
	// gives them (e.g. ["-p", "udp", "--dport", "53"]); the daemon parses
	// them with conntrack.ParseFilter.
	Filter []string `json:"filter,omitempty"`
	// Cursor is where the page starts: 0 for the first page, else the
	// Next of the page before.
	Cursor uint32 `json:"cursor"`
	// Limit is the most entries the page holds (at most MaxCtPage; 0
	// means MaxCtPage).
	Limit int `json:"limit"`
}

// CtPage is the ct-list verb's answer. A page may hold fewer entries than
// asked for, even none, and still not be the last: each call reads a
// bounded part of the table. Entries created or deleted while a listing
// pages through the table may or may not be listed.
type CtPage struct {
	// Entries are the page's entries, in table order.
	Entries []CtEntry `json:"entries"`
	// Next is the Cursor of the next page; 0 when this page is the last.
	Next uint32 `json:"next"`
}

// CtEntry is one connection.
type CtEntry struct {
	// Line is the entry as a line of `conntrack -L`.
	Line string `json:"line"`
	// Family is "ipv4" or "ipv6".
	Family string `json:"family"`
	// Proto is the protocol's name as conntrack prints it ("unknown" for
	// one it has no name for); ProtoNum its number.
	Proto    string `json:"proto"`
	ProtoNum uint8  `json:"protonum"`
	// Timeout is the whole seconds left before the entry expires.
	Timeout int64 `json:"timeout"`
	// State is a TCP connection's state (ESTABLISHED, TIME_WAIT, ...).
	State string `json:"state,omitempty"`
	// Original and Reply are the two directions' tuples.
	Original CtTuple `json:"original"`
	Reply    CtTuple `json:"reply"`
	// Status are the status bits set, by `ct status`'s names
	// (seen-reply, assured, confirmed, ...).
	Status []string `json:"status"`
	// Mark is the connection mark; Zone its zone.
	Mark uint32 `json:"mark"`
	Zone uint16 `json:"zone"`
}

// CtTuple is one direction of a connection: addresses, and ports or
// ICMP type, code and identifier when the protocol has them.
type CtTuple struct {
	// Src and Dst are the addresses.
	Src string `json:"src"`
	Dst string `json:"dst"`
	// Sport and Dport are the ports of TCP, UDP, UDP-Lite, SCTP and DCCP.
	Sport *uint16 `json:"sport,omitempty"`
	Dport *uint16 `json:"dport,omitempty"`
	// Type, Code and ID are an ICMP or ICMPv6 query's.
	Type *uint8  `json:"type,omitempty"`
	Code *uint8  `json:"code,omitempty"`
	ID   *uint16 `json:"id,omitempty"`
}

// CtCount is the ct-count verb's answer.
type CtCount struct {
	// Count is the number of entries (expired ones the sweeper has not
	// reaped yet included, as the kernel's nf_conntrack_count that
	// `conntrack -C` prints).
	Count int `json:"count"`
	// Max is the most the table holds (nf_conntrack_max).
	Max int `json:"max"`
}

// CtFlushResult is the ct-flush verb's answer.
type CtFlushResult struct {
	// Deleted is the number of entries deleted.
	Deleted int `json:"deleted"`
}

// CtStats is the ct-stats verb's answer: `conntrack -S`'s counters, per
// worker (conntrack prints them per CPU) and summed.
type CtStats struct {
	// Enabled tells whether tracking is on (a ruleset uses it).
	Enabled bool `json:"enabled"`
	// Workers are each worker's counters, by worker index.
	Workers []CtCounters `json:"workers"`
	// Total is their sum.
	Total CtCounters `json:"total"`
	// NAT are NAT's counters.
	NAT NATCounters `json:"nat"`
}

// NATCounters are NAT's counters (nat.Stats).
type NATCounters struct {
	// Exhausted counts new connections for which no free tuple was left
	// (conntrack then drops them at confirmation: insert_failed).
	Exhausted uint64 `json:"exhausted"`
	// NoAddress counts masquerade and redirect bindings dropped for an
	// interface without an address.
	NoAddress uint64 `json:"no_address"`
	// Dropped counts packets NAT could not rewrite.
	Dropped uint64 `json:"dropped"`
}

// CtCounters are one worker's conntrack counters, the kernel's
// ip_conntrack_stat as `conntrack -S` names them.
type CtCounters struct {
	// Found counts lookups of a tuple that is taken (NAT only).
	Found uint64 `json:"found"`
	// Invalid counts packets of no valid connection.
	Invalid uint64 `json:"invalid"`
	// Insert counts entries confirmed; InsertFailed confirmations that
	// failed.
	Insert       uint64 `json:"insert"`
	InsertFailed uint64 `json:"insert_failed"`
	// Drop counts packets the tracker dropped; EarlyDrop entries
	// evicted to make room.
	Drop      uint64 `json:"drop"`
	EarlyDrop uint64 `json:"early_drop"`
	// Error counts packets whose headers failed the protocol's checks.
	Error uint64 `json:"error"`
	// SearchRestart counts lookups restarted because a chain changed.
	SearchRestart uint64 `json:"search_restart"`
	// ClashResolve counts insertion races resolved without a drop;
	// ChainTooLong confirmations refused for a chain too long.
	ClashResolve uint64 `json:"clash_resolve"`
	ChainTooLong uint64 `json:"chaintoolong"`
}

// CtFlushArgs are the ct-flush verb's optional arguments.
type CtFlushArgs struct {
	// PID is the requesting process's id: the DESTROY events of the
	// flushed entries name it, as the kernel's name the netlink port of
	// the process that flushed ([USERSPACE] portid=PID progname=NAME).
	PID uint32 `json:"pid,omitempty"`
}

// CtEventsArgs are the ct-events verb's arguments: a stream of the
// events (`conntrack -E`) that pass a filter.
type CtEventsArgs struct {
	// Filter are conntrack's filter options as the command line gives
	// them (those of ct-list: -p, -s, -d, --dport, ...).
	Filter []string `json:"filter,omitempty"`
	// Types are the event types to stream (NEW, UPDATE, DESTROY);
	// empty means all, as conntrack -e.
	Types []string `json:"types,omitempty"`
}

// CtEvent is one answer of the ct-events stream: an event, or a report of
// events lost (Lost > 0, no Type).
type CtEvent struct {
	// Type is NEW, UPDATE or DESTROY.
	Type string `json:"type,omitempty"`
	// Line is the event as a line of `conntrack -E`.
	Line string `json:"line,omitempty"`
	// Time is when it happened (wall clock, RFC 3339).
	Time string `json:"time,omitempty"`
	// Cause names what an UPDATE reports (reply, assured, protoinfo,
	// mark: the kernel's IPCT_* bits).
	Cause []string `json:"cause,omitempty"`
	// Entry is the connection at the event (its Line is conntrack -L's
	// and its Timeout the seconds then left).
	Entry *CtEntry `json:"entry,omitempty"`
	// Lost is how many events were lost before this answer since the
	// last report: a producer's ring or this stream's queue was full
	// (the kernel's ENOBUFS).
	Lost uint64 `json:"lost,omitempty"`
}
