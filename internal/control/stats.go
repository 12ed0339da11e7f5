package control

// Stats is the answer to the stats verb: what the daemon forwards, how, and
// what it dropped and why.
type Stats struct {
	Version string `json:"version"`
	// Workers is the number of worker threads.
	Workers int `json:"workers"`
	// Ports are the configured ports, in configuration order.
	Ports []PortStats `json:"ports"`
	// Bridges are the configured bridges with their FDBs.
	Bridges []BridgeStats `json:"bridges"`
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
	Name    string `json:"name"`
	Ifindex int    `json:"ifindex"`
	// XDPMode is the attach mode in use: native or generic.
	XDPMode string `json:"xdp_mode"`
	// ZeroCopy tells whether the AF_XDP sockets are bound zero-copy; false
	// means copy mode.
	ZeroCopy bool `json:"zero_copy"`
	// Queues is the number of queues with an AF_XDP socket.
	Queues int `json:"queues"`
	// TxBudget is XDP_MAX_TX_SKB_BUDGET as applied (0: the kernel lacks it).
	TxBudget  uint32 `json:"tx_budget"`
	RxPackets uint64 `json:"rx_packets"`
	RxBytes   uint64 `json:"rx_bytes"`
	TxPackets uint64 `json:"tx_packets"`
	TxBytes   uint64 `json:"tx_bytes"`
	// Drops counts the frames dropped in the fast path, by reason.
	Drops map[string]uint64 `json:"drops"`
	// XDP are the XDP program's verdict counters on this port.
	XDP XDPCounters `json:"xdp"`
	// XSK are the kernel's XDP_STATISTICS summed over the port's sockets.
	XSK XSKCounters `json:"xsk"`
}

// XDPCounters are the XDP program's verdicts.
type XDPCounters struct {
	Redirected     uint64 `json:"redirected"`
	PassNoSocket   uint64 `json:"pass_no_socket"`
	PassHost       uint64 `json:"pass_host"`
	DropMalformed  uint64 `json:"drop_malformed"`
	RedirectFailed uint64 `json:"redirect_failed"`
	DropTooBig     uint64 `json:"drop_too_big"`
}

// XSKCounters are the kernel's AF_XDP socket statistics.
type XSKCounters struct {
	RxDropped            uint64 `json:"rx_dropped"`
	RxInvalidDescs       uint64 `json:"rx_invalid_descs"`
	TxInvalidDescs       uint64 `json:"tx_invalid_descs"`
	RxRingFull           uint64 `json:"rx_ring_full"`
	RxFillRingEmptyDescs uint64 `json:"rx_fill_ring_empty_descs"`
	TxRingEmptyDescs     uint64 `json:"tx_ring_empty_descs"`
}

// BridgeStats are one bridge's counters and forwarding database.
type BridgeStats struct {
	Name      string     `json:"name"`
	Ports     []string   `json:"ports"`
	Forwarded uint64     `json:"forwarded"`
	Flooded   uint64     `json:"flooded"`
	Learned   uint64     `json:"learned"`
	FDBFull   uint64     `json:"fdb_full"`
	FDB       []FDBEntry `json:"fdb"`
}

// FDBEntry is one MAC the bridge knows.
type FDBEntry struct {
	MAC        string  `json:"mac"`
	Port       string  `json:"port"`
	Static     bool    `json:"static"`
	AgeSeconds float64 `json:"age_seconds"`
}
