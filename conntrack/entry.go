package conntrack

import "strconv"

// Dir is a packet's direction in its connection.
type Dir uint8

// The two directions, as the kernel's IP_CT_DIR_ORIGINAL and
// IP_CT_DIR_REPLY.
const (
	DirOriginal Dir = 0
	DirReply    Dir = 1
)

// Status is an entry's status bits, the kernel's IPS_* (what `ct status`
// matches and `conntrack -L` prints as flags).
type Status uint32

// The status bits, at the kernel's bit positions
// (include/uapi/linux/netfilter/nf_conntrack_common.h).
const (
	StatusExpected     Status = 1 << 0
	StatusSeenReply    Status = 1 << 1
	StatusAssured      Status = 1 << 2
	StatusConfirmed    Status = 1 << 3
	StatusSrcNAT       Status = 1 << 4
	StatusDstNAT       Status = 1 << 5
	StatusSeqAdjust    Status = 1 << 6
	StatusSrcNATDone   Status = 1 << 7
	StatusDstNATDone   Status = 1 << 8
	StatusDying        Status = 1 << 9
	StatusFixedTimeout Status = 1 << 10
	StatusTemplate     Status = 1 << 11
	StatusNATClash     Status = 1 << 12
	StatusHelper       Status = 1 << 13
	StatusOffload      Status = 1 << 14
	StatusHWOffload    Status = 1 << 15
)

// State is a packet's conntrack state as `ct state` matches it: one bit
// of the kernel's NF_CT_STATE_BIT values.
type State uint32

// The states, with nft's values (ct state invalid is 1, established 2,
// related 4, new 8, untracked 64).
const (
	StateInvalid     State = 1
	StateEstablished State = 2
	StateRelated     State = 4
	StateNew         State = 8
	StateUntracked   State = 64
)

// String names the state as `ct state` does ("established"); a value
// that is no single state is "state(N)".
func (s State) String() string {
	switch s {
	case StateInvalid:
		return "invalid"
	case StateEstablished:
		return "established"
	case StateRelated:
		return "related"
	case StateNew:
		return "new"
	case StateUntracked:
		return "untracked"
	}
	return "state(" + strconv.Itoa(int(s)) + ")"
}

// Entry is a snapshot of one connection: both tuples, status, mark,
// expiry and the protocol's state.
type Entry struct {
	// Tuple is the original and the reply tuple (indexed by Dir). They
	// differ beyond a Reverse only where NAT translated.
	Tuple [2]Tuple
	// Status is the IPS_* bits.
	Status Status
	// Mark is the connection mark (ct mark).
	Mark uint32
	// Expires is when the entry times out, on the table's clock (ns).
	Expires int64
	// UDPStreamAt is when a replied UDP flow that is still active counts
	// as a stream (the kernel's proto.udp.stream_ts: 2 s after the first
	// packet).
	UDPStreamAt int64
	// TCP is the TCP tracking state (TCP connections only).
	TCP TCPState
}
