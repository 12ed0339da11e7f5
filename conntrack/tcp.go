package conntrack

import "time"

// TCPConntrack is a TCP connection's state in the kernel's tracker (enum
// tcp_conntrack), as `conntrack -L` prints it.
type TCPConntrack uint8

// The TCP states, at the kernel's values. TCPMax doubles as the
// transition table's "invalid" mark (sIV) and TCPIgnore as its "ignore"
// mark (sIG); TCPRetrans and TCPUnack only name timeouts.
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
	// MaxWin is the largest window seen (td_maxwin). 0 means the
	// direction has not been initialised yet.
	MaxWin uint32
	// MaxAck is the highest acknowledgement seen (td_maxack).
	MaxAck uint32
	// Scale is the window scale factor (td_scale).
	Scale uint8
	// Flags are the IP_CT_TCP_FLAG_* bits (TCPFlag...).
	Flags uint8
}

// The per-direction TCP flags (IP_CT_TCP_FLAG_*). TCPFlagExpChallengeAck
// and TCPFlagSimultaneousOpen are the kernel's IP_CT_EXP_CHALLENGE_ACK and
// IP_CT_TCP_SIMULTANEOUS_OPEN, kept in TCPState.LastFlags.
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

// TCPState is a TCP connection's tracking state, the kernel's ip_ct_tcp
// (60 bytes, no pointers).
type TCPState struct {
	// Seen is each direction's sequence space, indexed by Dir.
	Seen [2]TCPSeen
	// State is the connection's state.
	State TCPConntrack
	// LastDir is the direction of the last in-window packet, or of the
	// last ignored one (last_dir).
	LastDir Dir
	// Retrans counts retransmissions of the last ACK-class segment
	// (retrans).
	Retrans uint8
	// LastIndex is the class (SYN, SYN/ACK, FIN, ACK, RST, none) of the
	// last packet the tracker remembered (last_index).
	LastIndex uint8
	// LastSeq, LastAck, LastEnd and LastWin describe the last remembered
	// segment: for retransmission counting, and for an ignored SYN or
	// ACK so a later SYN/ACK or RST can be matched to it.
	LastSeq uint32
	LastAck uint32
	LastEnd uint32
	LastWin uint16
	// LastWScale and LastFlags are the window scale and option flags of
	// an ignored SYN, plus TCPFlagExpChallengeAck and
	// TCPFlagSimultaneousOpen (last_wscale, last_flags).
	LastWScale uint8
	LastFlags  uint8
}

// TCPConfig is the TCP tracker's configuration, the kernel's per-netns
// nf_conntrack_tcp_* sysctls.
type TCPConfig struct {
	// Loose lets a connection be picked up mid-stream from a packet that
	// is not a SYN (nf_conntrack_tcp_loose).
	Loose bool
	// BeLiberal accepts out-of-window packets instead of marking them
	// invalid (nf_conntrack_tcp_be_liberal).
	BeLiberal bool
	// IgnoreInvalidRST accepts RSTs whose sequence number is below the
	// other side's highest ack (nf_conntrack_tcp_ignore_invalid_rst).
	IgnoreInvalidRST bool
	// MaxRetrans is how many retransmissions of the same segment switch
	// to the Timeouts.TCPMaxRetrans timeout (nf_conntrack_tcp_max_retrans).
	MaxRetrans uint8
}

// DefaultTCPConfig returns the kernel's defaults: loose 1, be_liberal 0,
// ignore_invalid_rst 0, max_retrans 3.
func DefaultTCPConfig() TCPConfig {
	return TCPConfig{Loose: true, MaxRetrans: MaxRetrans}
}

// TCPVerdict is what the tracker decided for one packet, the kernel's
// return value of nf_conntrack_tcp_packet.
type TCPVerdict uint8

// The verdicts.
const (
	// TCPAccept (NF_ACCEPT): the packet belongs to the connection; apply
	// the result's timeout and status.
	TCPAccept TCPVerdict = iota
	// TCPInvalid (-NF_ACCEPT): the packet passes but is tracked as
	// invalid (ct state invalid); the entry stays, with the changes the
	// kernel makes on this path (see TCPResult.Timeout).
	TCPInvalid
	// TCPRepeat (-NF_REPEAT after nf_ct_kill): a SYN reopens a closed
	// connection. Delete the entry and process the packet again as the
	// first packet of a new connection.
	TCPRepeat
	// TCPDrop (NF_DROP): the kernel drops the packet when it wants to
	// repeat but cannot kill the entry because its destruction is already
	// under way. TCPPacket never returns it itself: a caller that gets
	// TCPRepeat and finds the entry already gone should drop the packet.
	TCPDrop
)

var tcpVerdictNames = [...]string{"accept", "invalid", "repeat", "drop"}

// String names the verdict.
func (v TCPVerdict) String() string {
	if int(v) < len(tcpVerdictNames) {
		return tcpVerdictNames[v]
	}
	return "unknown"
}

// TCPTimeoutMode says what to do with the entry's expiry after a packet.
type TCPTimeoutMode uint8

// The timeout modes.
const (
	// TCPTimeoutKeep leaves the expiry as it is: the kernel returns
	// without nf_ct_refresh (ignored packets, SYN retransmits before a
	// reply, fixed-timeout entries, entries being killed).
	TCPTimeoutKeep TCPTimeoutMode = iota
	// TCPTimeoutSet sets the expiry to now + Timeout (nf_ct_refresh).
	TCPTimeoutSet
	// TCPTimeoutLower lowers it to now + Timeout if it is at least 120 s
	// away and further than Timeout (nf_tcp_handle_invalid, for an
	// out-of-window FIN or RST answering one from the other side).
	TCPTimeoutLower
)

// tcpLowerFloor is nf_tcp_handle_invalid's threshold: an entry that
// expires sooner than this keeps its timeout.
const tcpLowerFloor = 120 * time.Second

// TCPResult is the outcome of TCPPacket.
type TCPResult struct {
	// Timeout is the entry's new lifetime from now, used as Mode says.
	Timeout time.Duration
	// SetStatus is the status bits to set on the entry (StatusAssured).
	SetStatus Status
	// Verdict is the packet's verdict.
	Verdict TCPVerdict
	// Mode says how Timeout applies.
	Mode TCPTimeoutMode
	// Kill asks the caller to delete the entry after accepting the
	// packet: the only answer to the connection's first packet was a RST
	// (nf_ct_kill_acct in nf_conntrack_tcp_packet).
	Kill bool
}

// Expiry applies the result's timeout to an entry that has remaining
// time left to live; it returns the new remaining time and whether it
// changed.
func (r *TCPResult) Expiry(remaining time.Duration) (time.Duration, bool) {
	switch r.Mode {
	case TCPTimeoutSet:
		return r.Timeout, true
	case TCPTimeoutLower:
		if remaining < tcpLowerFloor || remaining <= r.Timeout {
			return remaining, false
		}
		return r.Timeout, true
	}
	return remaining, false
}
