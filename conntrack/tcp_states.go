package conntrack

// The packet classes the state machine is indexed by, the kernel's enum
// tcp_bit_set; TCPState.LastIndex holds one of them.
const (
	tcpSynSet uint8 = iota
	tcpSynAckSet
	tcpFinSet
	tcpAckSet
	tcpRstSet
	tcpNoneSet
	tcpIndexMax
)

// tcpIndex classifies a segment by its flags as the kernel's
// get_conntrack_index: RST wins, then SYN (with or without ACK), then
// FIN, then ACK.
func tcpIndex(flags uint8) uint8 {
	switch {
	case flags&TCPRst != 0:
		return tcpRstSet
	case flags&TCPSyn != 0:
		if flags&TCPAck != 0 {
			return tcpSynAckSet
		}
		return tcpSynSet
	case flags&TCPFin != 0:
		return tcpFinSet
	case flags&TCPAck != 0:
		return tcpAckSet
	}
	return tcpNoneSet
}

// Short names for the transition table, as the kernel's sNO … sIG.
const (
	sNO = TCPNone
	sSS = TCPSynSent
	sSR = TCPSynRecv
	sES = TCPEstablished
	sFW = TCPFinWait
	sCW = TCPCloseWait
	sLA = TCPLastAck
	sTW = TCPTimeWait
	sCL = TCPClose
	sS2 = TCPSynSent2
	sIV = TCPMax    // invalid packet
	sIG = TCPIgnore // packet ignored: may be valid, the tracker may be out of sync
)

// tcpTransitions is the kernel's tcp_conntracks: the state a packet moves
// the connection to, by direction, packet class and current state. The
// tracker guesses the state of the packet's sender; the result is sIV for
// packets it regards as invalid and sIG for packets that may or may not
// be valid (a SYN or SYN/ACK the endpoints may accept while the tracker
// is out of sync with them).
var tcpTransitions = [2][tcpIndexMax][TCPMax]TCPConntrack{
	DirOriginal: {
		//                sNO  sSS  sSR  sES  sFW  sCW  sLA  sTW  sCL  sS2
		tcpSynSet:    {sSS, sSS, sIG, sIG, sIG, sIG, sIG, sSS, sSS, sS2},
		tcpSynAckSet: {sIV, sIV, sSR, sIV, sIV, sIV, sIV, sIV, sIV, sSR},
		tcpFinSet:    {sIV, sIV, sFW, sFW, sLA, sLA, sLA, sTW, sCL, sIV},
		tcpAckSet:    {sES, sIV, sES, sES, sCW, sCW, sTW, sTW, sCL, sIV},
		tcpRstSet:    {sIV, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL},
		tcpNoneSet:   {sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV},
	},
	DirReply: {
		//                sNO  sSS  sSR  sES  sFW  sCW  sLA  sTW  sCL  sS2
		tcpSynSet:    {sIV, sS2, sIV, sIV, sIV, sIV, sIV, sSS, sIV, sS2},
		tcpSynAckSet: {sIV, sSR, sIG, sIG, sIG, sIG, sIG, sIG, sIG, sSR},
		tcpFinSet:    {sIV, sIV, sFW, sFW, sLA, sLA, sLA, sTW, sCL, sIV},
		tcpAckSet:    {sIV, sIG, sSR, sES, sCW, sCW, sTW, sTW, sCL, sIG},
		tcpRstSet:    {sIV, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL},
		tcpNoneSet:   {sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV},
	},
}
