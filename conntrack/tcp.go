package conntrack

// TCPConntrack is a TCP connection's state in the kernel's tracker (enum
// tcp_conntrack), as `conntrack -L` prints it.
type TCPConntrack uint8

// The TCP states, at the kernel's values.
const (
	TCPNone TCPConntrack = iota
	TCPSynSent
	TCPSynRecv
	TCPEstablished
	TCPFinWait
	TCPCloseWait
	TCPLastAck
	TCPTimeWait
	TCPClose
	TCPSynSent2 // TCP_CONNTRACK_SYN_SENT2 (LISTEN): simultaneous open
	TCPMax
	TCPIgnore
	TCPRetrans
	TCPUnack
)

var tcpStateNames = [...]string{"NONE", "SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT", "CLOSE_WAIT", "LAST_ACK", "TIME_WAIT", "CLOSE", "SYN_SENT2"}

// String returns the state's name as `conntrack -L` prints it.
func (s TCPConntrack) String() string {
	if int(s) < len(tcpStateNames) {
		return tcpStateNames[s]
	}
	return "UNKNOWN"
}

// TCPSeen is what the tracker knows of one direction's sequence space,
// the kernel's ip_ct_tcp_state.
type TCPSeen struct {
	// End is the highest sequence number sent + length (td_end).
	End uint32
	// MaxEnd is the highest acknowledged + window of the other side
	// (td_maxend).
	MaxEnd uint32
	// MaxWin is the largest window seen (td_maxwin).
	MaxWin uint32
	// MaxAck is the highest acknowledgement seen (td_maxack).
	MaxAck uint32
	// Scale is the window scale factor (td_scale).
	Scale uint8
	// Flags are the IP_CT_TCP_FLAG_* bits (TCPFlag...).
	Flags uint8
}

// The per-direction TCP flags (IP_CT_TCP_FLAG_*).
const (
	TCPFlagWindowScale        = 0x01
	TCPFlagSackPerm           = 0x02
	TCPFlagCloseInit          = 0x04
	TCPFlagBeLiberal          = 0x08
	TCPFlagDataUnacknowledged = 0x10
	TCPFlagMaxAckSet          = 0x20
	TCPFlagExpChallengeAck    = 0x40
	TCPFlagSimultaneousOpen   = 0x80
)

// TCPState is a TCP connection's tracking state, the kernel's ip_ct_tcp.
type TCPState struct {
	Seen       [2]TCPSeen
	State      TCPConntrack
	LastDir    Dir
	Retrans    uint8
	LastIndex  uint8
	LastSeq    uint32
	LastAck    uint32
	LastEnd    uint32
	LastWin    uint16
	LastWScale uint8
	LastFlags  uint8
}
