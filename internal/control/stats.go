package control

import "encoding/json"

// Stats is the answer to the stats verb: what the daemon forwards, how, and
// what it dropped and why.
type Stats struct {
	// Version is the daemon's build.
	Version string `json:"version"`
	// Workers is the number of worker threads.
	Workers int `json:"workers"`
	// Ports are the configured ports, in configuration order.
	Ports []PortStats `json:"ports"`
	// Bridges are the configured bridges with their FDBs.
	Bridges []BridgeStats `json:"bridges"`
	// Router is the router's counters, nil without a router.
	Router *RouterStats `json:"router,omitempty"`
	// Profiling tells whether per-stage costs are being measured
	// (options.profile); Stages count only while it is on.
	Profiling bool `json:"profiling"`
	// Stages are the pipeline's stages in order, summed over workers.
	Stages []StageStats `json:"stages"`
}

// StageStats is the cost of one pipeline stage.
type StageStats struct {
	// Name is the stage's name (parse, bridge, checksum, ...).
	Name string `json:"name"`
	// Packets counts the packets the stage ran over (not yet dropped).
	Packets uint64 `json:"packets"`
	// Nanoseconds is the time spent in the stage.
	Nanoseconds uint64 `json:"nanoseconds"`
}

// PortStats are one port's mode and counters.
type PortStats struct {
	// Name is the interface name.
	Name string `json:"name"`
	// State is "up", "down" (link or carrier off), "absent" (the
	// interface is gone: deleted or moved to another namespace) or
	// "failed: " and why xdpfwd does not use it.
	State string `json:"state"`
	// Ifindex is the interface index in the daemon's namespace.
	Ifindex int `json:"ifindex"`
	// XDPMode is the attach mode in use: native or generic.
	XDPMode string `json:"xdp_mode"`
	// ZeroCopy tells whether the AF_XDP sockets are bound zero-copy; false
	// means copy mode.
	ZeroCopy bool `json:"zero_copy"`
	// Queues is the number of queues with an AF_XDP socket.
	Queues int `json:"queues"`
	// TxBudget is XDP_MAX_TX_SKB_BUDGET as applied (0: the kernel lacks it).
	TxBudget uint32 `json:"tx_budget"`
	// RxPackets counts frames the fast path received on the port.
	RxPackets uint64 `json:"rx_packets"`
	// RxBytes is the bytes of those frames.
	RxBytes uint64 `json:"rx_bytes"`
	// TxPackets counts frames transmitted: put on the port's TX rings and
	// completed by the kernel (fastpath.PortCounters).
	TxPackets uint64 `json:"tx_packets"`
	// TxBytes is the bytes of those frames.
	TxBytes uint64 `json:"tx_bytes"`
	// Drops counts the frames dropped in the fast path, by reason.
	Drops map[string]uint64 `json:"drops"`
	// DropStages names, for each reason of Drops, the stage that
	// registered it (parse, worker, bridge, router, rules, ...).
	DropStages map[string]string `json:"drop_stages,omitempty"`
	// Latency is the time the frames sent on the port spent in xdpfwd,
	// from the RX ring to the port's TX ring.
	Latency LatencyStats `json:"latency"`
	// XDP are the XDP program's verdict counters on this port.
	XDP XDPCounters `json:"xdp"`
	// XSK are the kernel's XDP_STATISTICS summed over the port's sockets.
	XSK XSKCounters `json:"xsk"`
}

// LatencyStats is a histogram of the time frames spent in xdpfwd, from
// the RX ring to the TX ring (fastpath.LatencyHistogram), summed over the
// workers.
type LatencyStats struct {
	// Packets counts the frames measured: those put on the port's TX
	// rings.
	Packets uint64 `json:"packets"`
	// SumNanoseconds is the sum of their latencies.
	SumNanoseconds uint64 `json:"sum_nanoseconds"`
	// MaxNanoseconds is the largest latency; P50Nanoseconds and
	// P99Nanoseconds the median and 99th percentile, estimated from the
	// buckets (linear within one).
	MaxNanoseconds uint64 `json:"max_nanoseconds"`
	P50Nanoseconds uint64 `json:"p50_nanoseconds"`
	P99Nanoseconds uint64 `json:"p99_nanoseconds"`
	// BoundsNanoseconds are the buckets' upper bounds, inclusive, in
	// rising order.
	BoundsNanoseconds []uint64 `json:"bounds_nanoseconds"`
	// Counts are the frames per bucket, not cumulative: Counts[i] those
	// above BoundsNanoseconds[i-1] and up to BoundsNanoseconds[i]; it has
	// one element more than BoundsNanoseconds, the last counting those
	// above the last bound.
	Counts []uint64 `json:"counts"`
}

// XDPCounters are the XDP program's verdicts.
type XDPCounters struct {
	// Redirected counts frames handed to an AF_XDP socket.
	Redirected uint64 `json:"redirected"`
	// PassNoSocket counts frames passed to the kernel: no socket on their queue.
	PassNoSocket uint64 `json:"pass_no_socket"`
	// PassHost counts frames passed to the kernel as the host's own (pass_macs, pass_host_mac).
	PassHost uint64 `json:"pass_host"`
	// DropMalformed counts frames shorter than an Ethernet header.
	DropMalformed uint64 `json:"drop_malformed"`
	// RedirectFailed counts frames whose redirect failed (passed to the kernel).
	RedirectFailed uint64 `json:"redirect_failed"`
	// DropTooBig counts frames longer than a UMEM frame holds.
	DropTooBig uint64 `json:"drop_too_big"`
	// VLANRestored counts redirected frames whose out-of-band VLAN tag
	// (kept beside the frame by the driver) was put back into the frame;
	// not a verdict: each is in Redirected too.
	VLANRestored uint64 `json:"vlan_restored"`
}

// XSKCounters are the kernel's AF_XDP socket statistics.
type XSKCounters struct {
	// RxDropped counts frames the kernel dropped before the RX ring (e.g. fill ring empty).
	RxDropped uint64 `json:"rx_dropped"`
	// RxInvalidDescs counts invalid descriptors on the fill ring.
	RxInvalidDescs uint64 `json:"rx_invalid_descs"`
	// TxInvalidDescs counts invalid descriptors on the TX ring.
	TxInvalidDescs uint64 `json:"tx_invalid_descs"`
	// RxRingFull counts frames dropped because the RX ring was full.
	RxRingFull uint64 `json:"rx_ring_full"`
	// RxFillRingEmptyDescs counts times the fill ring was empty when a frame came.
	RxFillRingEmptyDescs uint64 `json:"rx_fill_ring_empty_descs"`
	// TxRingEmptyDescs counts times the kernel found the TX ring empty.
	TxRingEmptyDescs uint64 `json:"tx_ring_empty_descs"`
}

// BridgeStats are one bridge's counters and the size of its forwarding
// database; the entries themselves are listed, a page at a time, by the
// fdb verb.
type BridgeStats struct {
	// Name is the bridge's name.
	Name string `json:"name"`
	// Ports are the bridge's ports by interface name.
	Ports []string `json:"ports"`
	// Forwarded counts frames sent to the one port the FDB named.
	Forwarded uint64 `json:"forwarded"`
	// Flooded counts broadcast, multicast and unknown-unicast frames sent to every other port.
	Flooded uint64 `json:"flooded"`
	// Learned counts new and moved FDB entries.
	Learned uint64 `json:"learned"`
	// FDBFull counts source MACs not learned because the FDB was full.
	FDBFull uint64 `json:"fdb_full"`
	// Evicted counts dynamic FDB entries evicted to make room for a new
	// MAC whose probe window was full (the oldest first; static entries
	// never are).
	Evicted uint64 `json:"evicted"`
	// FDBEntries is the number of FDB slots in use: live entries, and
	// expired ones until the sweeper (every few seconds) clears them.
	FDBEntries int `json:"fdb_entries"`
}

// FDBArgs are the fdb verb's arguments: which page of which bridge's FDB.
type FDBArgs struct {
	// Bridge names the bridge.
	Bridge string `json:"bridge"`
	// Cursor is where the page starts: 0 for the first page, else the
	// Next of the page before.
	Cursor uint64 `json:"cursor"`
	// Limit is the most entries the page holds (at most MaxFDBPage; 0 means
	// MaxFDBPage).
	Limit int `json:"limit"`
}

// RouteArgs are the route verb's arguments: which routes to list, by
// `ip route show table` name.
type RouteArgs struct {
	// Table is "main" (or ""): every route but the router's own
	// addresses; "local": those, the routes the kernel keeps in table
	// local; "all": both, each family's main routes first.
	Table string `json:"table"`
}

// ReloadResult is the reload verb's answer.
type ReloadResult struct {
	// Rules is the number of rules running after the reload.
	Rules int `json:"rules"`
}

// SetArgs are the set verb's arguments: list a named set's elements, or
// add or delete elements (in nft's syntax: 192.0.2.1, 10.0.0.0/8,
// 10.1.0.1-10.1.0.9, 10.0.0.1 . 80).
type SetArgs struct {
	// Op is "list", "add" or "del".
	Op string `json:"op"`
	// Family is the table's nft family ("" is ip, as nft takes it).
	Family string `json:"family"`
	// Table and Set name the set.
	Table string `json:"table"`
	Set   string `json:"set"`
	// Elements are the elements to add or delete.
	Elements []string `json:"elements,omitempty"`
}

// RulesetArgs are the ruleset verb's arguments.
type RulesetArgs struct {
	// JSON asks for nft's JSON layout (nft -j list ruleset).
	JSON bool `json:"json,omitempty"`
	// Handles keeps nft's "# handle N" comments (nft -a list ruleset).
	Handles bool `json:"handles,omitempty"`
}

// Ruleset is the running ruleset listed as nft lists it, with xdpfwd's
// counters: Text, or JSON when asked.
type Ruleset struct {
	Text string          `json:"text,omitempty"`
	JSON json.RawMessage `json:"json,omitempty"`
}

// MaxFDBPage is the most entries one fdb call returns; longer listings
// take several calls.
const MaxFDBPage = 4096

// FDBPage is the fdb verb's answer: live entries of one bridge, in table
// order. Entries learned, moved or aged while a listing pages through the
// table may be missed or listed twice.
type FDBPage struct {
	// Bridge names the bridge.
	Bridge string `json:"bridge"`
	// Entries are the page's entries.
	Entries []FDBEntry `json:"entries"`
	// Next is the Cursor of the next page; 0 when this page is the last.
	Next uint64 `json:"next"`
	// Slots is the FDB's slots in use when the page was read (see
	// BridgeStats.FDBEntries).
	Slots int `json:"slots"`
}

// FDBEntry is one MAC the bridge knows.
type FDBEntry struct {
	// VLAN is the entry's VLAN (0 on a VLAN-unaware bridge).
	VLAN uint16 `json:"vlan"`
	// MAC is the station's address.
	MAC string `json:"mac"`
	// Port is the interface the station is on.
	Port string `json:"port"`
	// Static marks a configured entry, which never ages.
	Static bool `json:"static"`
	// AgeSeconds is the time since the station was last seen (0 for static).
	AgeSeconds float64 `json:"age_seconds"`
}

// RouterStats are the router's counters (its drops are counted per port
// and reason, with the ports').
type RouterStats struct {
	// Forwarded counts packets routed to a next hop; Local those for the
	// router's own addresses.
	Forwarded uint64 `json:"forwarded"`
	Local     uint64 `json:"local"`
	// EchoReplies, ARPReplies and NASent count the answers it sent;
	// Solicits its ARP requests and neighbour solicitations.
	EchoReplies uint64 `json:"echo_replies"`
	ARPReplies  uint64 `json:"arp_replies"`
	NASent      uint64 `json:"na_sent"`
	Solicits    uint64 `json:"solicits"`
	// ICMPErrors counts the ICMP errors it sent; ICMPLimited those the
	// rate limit held back.
	ICMPErrors  uint64 `json:"icmp_errors"`
	ICMPLimited uint64 `json:"icmp_limited"`
	// Announced counts the gratuitous ARP requests and unsolicited
	// neighbour advertisements sent at start.
	Announced uint64 `json:"announced"`
	// Fragmented counts IPv4 packets cut into fragments for their
	// output MTU.
	Fragmented uint64 `json:"fragmented"`
	// Routes and Neighbours are the table sizes (neighbours: IPv4, IPv6
	// and static entries together).
	Routes     int `json:"routes"`
	Neighbours int `json:"neighbours"`
}
