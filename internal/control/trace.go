package control

// TraceArgs are the trace verb's arguments: follow the packets a filter
// chooses through the workers' pipelines (`xdpfwd trace`).
type TraceArgs struct {
	// Port is the interface of the ingress port to trace on; empty means
	// every port.
	Port string `json:"port,omitempty"`
	// Filter is a classic BPF program as CaptureArgs.Filter; empty means
	// every packet.
	Filter [][4]uint32 `json:"filter,omitempty"`
	// Count ends the trace after that many packets; 0 means no limit.
	Count int `json:"count,omitempty"`
	// TimeoutMs ends the trace after that many milliseconds; 0 means
	// none.
	TimeoutMs int64 `json:"timeout_ms,omitempty"`
}

// TraceChunk is one answer of the trace stream. The first, empty, comes
// once the trace is on the workers.
type TraceChunk struct {
	// Records are packets traced, oldest first per worker.
	Records []TraceRecord `json:"records,omitempty"`
	// Lost counts the packets the filter chose that were not traced
	// because a worker's ring was full, since the trace began.
	Lost uint64 `json:"lost,omitempty"`
	// Done marks the last chunk: the trace reached its count or timeout.
	Done bool `json:"done,omitempty"`
	// Held, in the last chunk, counts the traced packets a stage still
	// held when the trace ended: what happens to them after is not
	// traced.
	Held int `json:"held,omitempty"`
	// Stopped, in the last chunk, says the daemon ended the trace before
	// its count or timeout: it is stopping.
	Stopped bool `json:"stopped,omitempty"`
}

// TraceRecord is one traced packet's walk.
type TraceRecord struct {
	// ID numbers the record in its trace, from 1 (0 for trace-packet's).
	ID uint32 `json:"id,omitempty"`
	// Continues, if not 0, is the ID of the record of the same packet
	// before a stage held it: this record follows it from its release
	// on, HeldNs after, held by stage HeldBy (when the trace saw both).
	Continues uint32 `json:"continues,omitempty"`
	HeldNs    int64  `json:"held_ns,omitempty"`
	HeldBy    string `json:"held_by,omitempty"`
	// TimeNs is when its batch was taken off the RX ring, or for a
	// continuation when the stage gave it back (Unix nanoseconds).
	TimeNs int64 `json:"t"`
	// Worker, Port and Queue are where it came in: the worker's index,
	// the port's interface and the worker's queue index (-1 for a
	// continuation).
	Worker int    `json:"worker"`
	Port   string `json:"port"`
	Queue  int    `json:"queue"`
	// Length is the frame's length; Frame its first bytes; Packet a
	// one-line summary of its headers.
	Length int    `json:"len"`
	Frame  []byte `json:"frame"`
	Packet string `json:"packet"`
	// Steps are the stages it went through, in order.
	Steps []TraceStep `json:"steps"`
	// MoreSteps counts the steps beyond the record's bound.
	MoreSteps int `json:"more_steps,omitempty"`
	// Exits are where it (and its copies) went.
	Exits []TraceExit `json:"exits"`
}

// TraceStep is one stage's decision on a traced packet.
type TraceStep struct {
	// Hook and Stage name the stage.
	Hook  string `json:"hook"`
	Stage string `json:"stage"`
	// Copy, when a stage made copies of the packet (a flood's, one a
	// port; fragments), says which the step is of: 0 the first, in the
	// order the stage's batch holds them.
	Copy int `json:"copy,omitempty"`
	// Nanoseconds is the stage's time over its whole batch, of
	// BatchPackets packets.
	Nanoseconds  uint32 `json:"ns"`
	BatchPackets int    `json:"batch"`
	// Action is what happens to the packet next (continue, drop, ...),
	// Reason a drop's reason ("stage: reason").
	Action string `json:"action"`
	Reason string `json:"reason,omitempty"`
	// Egress is where the packet goes once decided: "port NAME" or
	// "group N".
	Egress string `json:"egress,omitempty"`
	// CtState is the packet's conntrack state, once tracked.
	CtState string `json:"ct_state,omitempty"`
	// Mark is the packet's mark, when not 0.
	Mark uint32 `json:"mark,omitempty"`
	// Rewrite, when the stage changed the packet's headers, is the
	// headers before and after.
	Rewrite string `json:"rewrite,omitempty"`
	// Note is the stage's own account (the rules matched, the route,
	// the connection).
	Note string `json:"note,omitempty"`
}

// TraceExit is one way a traced packet left the worker.
type TraceExit struct {
	// Outcome is sent, dropped, consumed, held or unknown; for a
	// simulated packet (trace-packet) "would be sent".
	Outcome string `json:"outcome"`
	// Port is the egress port (sent), or the port a drop counts on.
	Port string `json:"port,omitempty"`
	// Queue is the worker's egress queue index (sent).
	Queue int `json:"queue,omitempty"`
	// Reason is a drop's reason ("stage: reason").
	Reason string `json:"reason,omitempty"`
	// Stage and Note say, of a held packet, the stage that holds it and
	// what it said then (the router: the next hop whose address it
	// waits for), when the record kept that step.
	Stage string `json:"stage,omitempty"`
	Note  string `json:"note,omitempty"`
}

// TracePacketArgs are the trace-packet verb's arguments: run a synthetic
// frame through the pipeline without sending it (`xdpfwd trace
// --packet`).
type TracePacketArgs struct {
	// Frame is the Ethernet frame.
	Frame []byte `json:"frame"`
	// Port is the interface of the port it comes in on.
	Port string `json:"port"`
}
