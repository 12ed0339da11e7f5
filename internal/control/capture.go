package control

// CaptureArgs are the capture verb's arguments: a stream of the frames
// that pass a point of the workers and a filter (`xdpfwd capture`).
type CaptureArgs struct {
	// Point is ingress, egress, drop or stage.
	Point string `json:"point"`
	// Stage is, with point stage, the name of the stage after which
	// frames are taken (as xdpfwd stats lists the stages).
	Stage string `json:"stage,omitempty"`
	// Port is the interface of the port to capture on (a drop's ingress
	// port); empty means every port.
	Port string `json:"port,omitempty"`
	// Filter is a classic BPF program (as tcpdump -ddd prints it: op, jt,
	// jf, k), compiled by the client from a pcap-filter expression; empty
	// means every frame.
	Filter [][4]uint32 `json:"filter,omitempty"`
	// Snaplen bounds the bytes kept of each frame; 0 means all of it.
	Snaplen int `json:"snaplen,omitempty"`
	// Count ends the capture after that many frames; 0 means no limit.
	Count int `json:"count,omitempty"`
	// TimeoutMs ends the capture after that many milliseconds; 0 means
	// none.
	TimeoutMs int64 `json:"timeout_ms,omitempty"`
}

// CapturePort names a port, for the capture file's interfaces.
type CapturePort struct {
	// ID is the port's number, as CapturedFrame.Port gives it.
	ID int `json:"id"`
	// Name is its interface.
	Name string `json:"name"`
}

// CaptureChunk is one answer of the capture stream: the first carries the
// ports, the others frames; every one the frames lost so far.
type CaptureChunk struct {
	// Ports are the daemon's ports, in the first chunk only.
	Ports []CapturePort `json:"ports,omitempty"`
	// Frames are frames captured, oldest first.
	Frames []CapturedFrame `json:"frames,omitempty"`
	// Lost counts the frames that matched but were lost to a full capture
	// ring since the capture began.
	Lost uint64 `json:"lost,omitempty"`
	// Done marks the last chunk: the capture reached its count or
	// timeout.
	Done bool `json:"done,omitempty"`
	// Stopped, in the last chunk, says the daemon ended the capture
	// before its count or timeout: it is stopping.
	Stopped bool `json:"stopped,omitempty"`
}

// CapturedFrame is one frame of the capture stream.
type CapturedFrame struct {
	// TimeNs is when its batch was taken off the RX ring (Unix
	// nanoseconds).
	TimeNs int64 `json:"t"`
	// Port is its port's ID (CapturePort): the ingress port at the
	// ingress point and for drops, the egress port at the egress point.
	Port int `json:"port"`
	// Reason is a drop's reason as "stage: reason".
	Reason string `json:"reason,omitempty"`
	// Length is the frame's length; Data its first bytes.
	Length int    `json:"len"`
	Data   []byte `json:"data"`
}
