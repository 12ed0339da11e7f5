package conntrack

import "time"

// The TCP tracker: a port of the kernel's nf_conntrack_proto_tcp.c
// (Linux 6.18) without locking, events, logging, NAT sequence adjustment
// and SYN proxy.

// maxAckWindowMin is MAXACKWINCONST: the least distance below the
// receiver's end an acknowledgement may lag before it counts as overly
// delayed.
const maxAckWindowMin = 66000

// maxAckWindow is MAXACKWINDOW(sender).
func maxAckWindow(sender *TCPSeen) uint32 {
	return max(sender.MaxWin, maxAckWindowMin)
}

// TCPNew prepares st for the first packet of a connection, as the
// kernel's tcp_new: a SYN opens one in SYN_SENT's way; any other packet
// the state machine lets open one (a bare ACK, in the kernel's table)
// picks up a connection mid-stream if loose is set, with SACK assumed and
// liberal window checking in both directions. It returns false if the
// packet cannot create a connection; the packet is then invalid.
//
// The state stays TCPNone: as the kernel does after tcp_new, the caller
// then runs the same packet through TCPPacket (DirOriginal, no status
// bits), which moves the state on.
func TCPNew(st *TCPState, seg *TCPSegment, loose bool) bool {
	next := tcpTransitions[DirOriginal][tcpIndex(seg.Flags)][TCPNone]
	if next >= TCPMax {
		return false
	}
	if next != TCPSynSent && !loose {
		return false
	}
	*st = TCPState{}
	s := &st.Seen[DirOriginal]
	s.End = seg.end()
	s.MaxWin = max(uint32(seg.Window), 1)
	if next == TCPSynSent {
		s.MaxEnd = s.End
		tcpApplyOptions(s, seg)
	} else {
		// Mid-stream: the history is lost, take what the packet says.
		// The window is unscaled; liberal checking copes with scaling.
		s.MaxEnd = s.End + s.MaxWin
		st.Seen[DirOriginal].Flags = TCPFlagSackPerm | TCPFlagBeLiberal
		st.Seen[DirReply].Flags = TCPFlagSackPerm | TCPFlagBeLiberal
	}
	st.LastIndex = tcpNoneSet
	return true
}

// tcpApplyOptions records a SYN's or SYN/ACK's options in a direction, as
// the kernel's tcp_options: nothing changes when the header has no
// options; otherwise the scale and every flag but BE_LIBERAL are replaced
// by what the options say.
func tcpApplyOptions(s *TCPSeen, seg *TCPSegment) {
	if !seg.hasOptions() {
		return
	}
	s.Scale = seg.WScale
	s.Flags = s.Flags&TCPFlagBeLiberal | seg.OptFlags
}

// tcpInitSender (re)initialises the sender's direction from a SYN or
// SYN/ACK, as the kernel's tcp_init_sender. Window scaling needs the
// option from both sides (RFC 7323): when the reply direction's SYN/ACK
// (or SYN) completes the exchange without it on both, neither side
// scales.
func tcpInitSender(sender, receiver *TCPSeen, seg *TCPSegment, end, win uint32, dir Dir) {
	sender.End = end
	sender.MaxEnd = end
	sender.MaxWin = max(win, 1)
	tcpApplyOptions(sender, seg)
	if dir == DirReply &&
		(sender.Flags&TCPFlagWindowScale == 0 || receiver.Flags&TCPFlagWindowScale == 0) {
		sender.Scale = 0
		receiver.Scale = 0
	}
}

// tcpResetSeen forgets a direction's sequence space, keeping only its
// liberal flag (the kernel's nf_ct_tcp_state_reset).
func tcpResetSeen(s *TCPSeen) {
	*s = TCPSeen{Flags: s.Flags & TCPFlagBeLiberal}
}

// windowAction is tcp_in_window's answer (enum nf_ct_tcp_action).
type windowAction uint8

const (
	windowAccept  windowAction = iota // in window: go on
	windowIgnore                      // accept the packet, change nothing more
	windowInvalid                     // the packet is invalid
)

// tcpLogInvalid is nf_tcp_log_invalid without the log: a failed window
// check is waived (accepted, with nothing more updated) when the sender
// is liberal or nf_conntrack_tcp_be_liberal is set.
func tcpLogInvalid(sender *TCPSeen, cfg *TCPConfig, ret windowAction) windowAction {
	if sender.Flags&TCPFlagBeLiberal != 0 || cfg.BeLiberal {
		return windowAccept
	}
	return ret
}

// tcpInWindow is the kernel's tcp_in_window: window tracking after Guido
// van Rooij's "Real Stateful TCP Packet Filtering in IP Filter", with
// RFC 793's bounds. For the sender's seq..end and the (s)ack it carries:
//
//	I.   seq <= sender.MaxEnd                      (data fits the window)
//	II.  end >= sender.End - receiver.MaxWin       (not old data)
//	III. sack <= receiver.End                      (acks only data seen)
//	IV.  sack >= receiver.End - MAXACKWINDOW       (ack not too old)
//
// A packet passing them updates both directions' windows and the
// retransmission counter. state is the connection's state before this
// packet.
func tcpInWindow(st *TCPState, dir Dir, index uint8, seg *TCPSegment, cfg *TCPConfig) windowAction {
	sender := &st.Seen[dir]
	receiver := &st.Seen[dir^1]
	syn := seg.Flags&TCPSyn != 0
	hasAck := seg.Flags&TCPAck != 0

	seq := seg.Seq
	ack := seg.Ack
	sack := ack
	if receiver.Flags&TCPFlagSackPerm != 0 {
		sack = seg.Sack
	}
	win := uint32(seg.Window)
	end := seg.end()
	// (No NAT sequence offset: nf_ct_seq_offset is 0 without seqadj.)

	if sender.MaxWin == 0 {
		// First packet seen from this direction.
		if syn {
			// SYN/ACK answering a SYN, or a SYN from the reply
			// direction in a simultaneous open.
			tcpInitSender(sender, receiver, seg, end, win, dir)
			if !hasAck {
				return windowAccept
			}
		} else {
			// Mid-stream: the history is lost, use the packet.
			sender.End = end
			swin := win << sender.Scale
			sender.MaxWin = max(swin, 1)
			sender.MaxEnd = end + sender.MaxWin
			if receiver.MaxWin == 0 {
				// Nothing seen the other way either: let checks
				// III and IV pass until something is.
				receiver.End = sack
				receiver.MaxEnd = sack
			} else if sack == receiver.End+1 {
				// Likely a keepalive's answer; needed for III.
				receiver.End++
			}
		}
	} else if syn && seqAfter(end, sender.End) &&
		(st.State == TCPSynSent || st.State == TCPSynRecv) {
		// A reinitialised TCP may reuse the tuple with higher sequence
		// numbers (RFC 793): start this direction afresh, its
		// sequence numbers and options may have changed.
		tcpInitSender(sender, receiver, seg, end, win, dir)
		if dir == DirReply && !hasAck {
			return windowAccept
		}
	}

	if !hasAck {
		// No ACK: pretend it acknowledges everything seen.
		ack = receiver.End
		sack = ack
	} else if seg.Flags&TCPRst != 0 && ack == 0 {
		// Broken stacks send RST+ACK with a zero ack.
		ack = receiver.End
		sack = ack
	}

	if seg.Flags&TCPRst != 0 && seq == 0 && st.State == TCPSynSent {
		// RST answering a SYN.
		seq = sender.End
		end = sender.End
	}

	// I.
	if !seqBefore(seq, sender.MaxEnd+1) {
		overshot := end - sender.MaxEnd + 1
		ackOK := seqAfter(sack, receiver.End-maxAckWindow(sender)-1)
		inRecvWin := receiver.MaxWin != 0 &&
			seqAfter(end, sender.End-receiver.MaxWin-1)
		if inRecvWin && ackOK && overshot <= receiver.MaxWin &&
			seqBefore(sack, receiver.End+1) {
			// The sender sent more than the receiver's window
			// allowed. Let the peer's ack of it be valid later:
			// only this packet is out of window.
			sender.End = end
			sender.Flags |= TCPFlagDataUnacknowledged
			return tcpLogInvalid(sender, cfg, windowIgnore)
		}
		return tcpLogInvalid(sender, cfg, windowInvalid)
	}
	// III.
	if !seqBefore(sack, receiver.End+1) {
		return tcpLogInvalid(sender, cfg, windowInvalid)
	}
	// II: already acknowledged data retransmitted.
	if receiver.MaxWin != 0 && !seqAfter(end, sender.End-receiver.MaxWin-1) {
		return tcpLogInvalid(sender, cfg, windowIgnore)
	}
	// IV: an overly delayed ack.
	if !seqAfter(sack, receiver.End-maxAckWindow(sender)-1) {
		return tcpLogInvalid(sender, cfg, windowIgnore)
	}

	// Window scaling applies to all but SYNs (RFC 7323).
	if !syn {
		win <<= sender.Scale
	}

	// The sender's side.
	if swin := win + (sack - ack); sender.MaxWin < swin {
		sender.MaxWin = swin
	}
	if seqAfter(end, sender.End) {
		sender.End = end
		sender.Flags |= TCPFlagDataUnacknowledged
	}
	if hasAck {
		if sender.Flags&TCPFlagMaxAckSet == 0 {
			sender.MaxAck = ack
			sender.Flags |= TCPFlagMaxAckSet
		} else if seqAfter(ack, sender.MaxAck) {
			sender.MaxAck = ack
		}
	}

	// The receiver's side.
	if receiver.MaxWin != 0 && seqAfter(end, sender.MaxEnd) {
		receiver.MaxWin += end - sender.MaxEnd
	}
	if seqAfter(sack+win, receiver.MaxEnd-1) {
		receiver.MaxEnd = sack + win
		if win == 0 {
			receiver.MaxEnd++
		}
	}
	if ack == receiver.End {
		receiver.Flags &^= TCPFlagDataUnacknowledged
	}

	// Retransmissions: the same ACK-class segment again.
	if index == tcpAckSet {
		if st.LastDir == dir && st.LastSeq == seq && st.LastAck == ack &&
			st.LastEnd == end && st.LastWin == seg.Window {
			st.Retrans++
		} else {
			st.LastDir = dir
			st.LastSeq = seq
			st.LastAck = ack
			st.LastEnd = end
			st.LastWin = seg.Window
			st.Retrans = 0
		}
	}
	return windowAccept
}

// tcpHandleInvalid is the kernel's nf_tcp_handle_invalid, run for a packet
// that failed the window checks: an out-of-window FIN or RST on an
// assured connection answering a FIN or RST from the other side means the
// endpoints have gone while the tracker is out of sync, so the entry's
// timeout shrinks to the unacknowledged one (reported as true: the
// caller lowers it if it is at least 120 s away and longer). A first such
// FIN or RST is remembered in LastIndex/LastDir.
func tcpHandleInvalid(st *TCPState, dir Dir, index uint8, status Status) bool {
	if status&StatusAssured == 0 || status&StatusFixedTimeout != 0 {
		return false
	}
	if index != tcpRstSet && index != tcpFinSet {
		return false
	}
	if st.LastDir != dir && (st.LastIndex == tcpFinSet || st.LastIndex == tcpRstSet) {
		return true
	}
	st.LastIndex = index
	st.LastDir = dir
	return false
}

// tcpEstablished is the kernel's nf_conntrack_tcp_established: in
// ESTABLISHED and assured.
func tcpEstablished(st *TCPState, status Status) bool {
	return st.State == TCPEstablished && status&StatusAssured != 0
}

// tcpClosing is the kernel's tcp_can_early_drop: the states of a
// connection being torn down.
func tcpClosing(s TCPConntrack) bool {
	switch s {
	case TCPFinWait, TCPLastAck, TCPTimeWait, TCPClose, TCPCloseWait:
		return true
	}
	return false
}

// tcpIgnored handles a packet the state machine ignores (sIG), or a SYN
// on a closed connection that does not reopen it, as the kernel's
// TCP_CONNTRACK_IGNORE case. The endpoints may be in sync while the
// tracker is not; the packets that would tell are:
//
//	a) a SYN in the original direction,
//	b) a SYN/ACK in the reply direction,
//	c) an ACK in the reply direction after the first SYN.
//
// b) answering an a) the tracker let through resynchronises it from what
// it noted of that SYN: tcpIgnored returns true and the packet goes on as
// a SYN/ACK in SYN_SENT. Otherwise the packet is noted in the Last*
// fields and accepted without changing anything else (false). An
// invalid ignored packet draws a RST from the receiver, which the RST
// handling then matches against the notes.
func tcpIgnored(st *TCPState, dir Dir, index uint8, seg *TCPSegment, old TCPConntrack) bool {
	if index == tcpSynAckSet && st.LastIndex == tcpSynSet &&
		st.LastDir != dir && seg.Ack == st.LastEnd {
		// b) acknowledges the SYN noted at a): both ends are in sync,
		// the tracker catches up from the notes.
		s := &st.Seen[st.LastDir&1]
		s.End = st.LastEnd
		s.MaxEnd = st.LastEnd
		s.MaxWin = max(uint32(st.LastWin), 1)
		s.Scale = st.LastWScale
		st.LastFlags &^= TCPFlagExpChallengeAck
		s.Flags = st.LastFlags
		tcpResetSeen(&st.Seen[dir])
		return true
	}
	st.LastIndex = index
	st.LastDir = dir
	st.LastSeq = seg.Seq
	st.LastEnd = seg.end()
	st.LastWin = seg.Window

	if index == tcpSynSet && dir == DirOriginal {
		// a) note the SYN's options: if it is valid, the server's
		// SYN/ACK (b) will bring the tracker in sync; if not, the
		// server may answer with an RFC 5961 challenge ACK, which in
		// LAST_ACK must not pass for the ACK of the last FIN.
		st.LastFlags = seg.OptFlags & (TCPFlagWindowScale | TCPFlagSackPerm)
		st.LastWScale = 0
		if seg.OptFlags&TCPFlagWindowScale != 0 {
			st.LastWScale = seg.WScale
		}
		if old == TCPLastAck {
			st.LastFlags |= TCPFlagExpChallengeAck
		}
	}
	if old == TCPSynSent && index == tcpAckSet && dir == DirReply {
		// c) perhaps a challenge ACK answering the SYN.
		st.LastAck = seg.Ack
	}
	return false
}

// rstAction is how tcpRSTInClose lets a RST go on.
type rstAction uint8

const (
	rstCheckWindow rstAction = iota // go on to the window checks
	rstSkipWindow                   // in window without the checks
	rstInvalid                      // invalid RST
)

// tcpRSTInClose validates a RST (the kernel's TCP_CONNTRACK_CLOSE case
// for the RST class) and returns how it goes on and the state it moves
// the connection to.
func tcpRSTInClose(st *TCPState, dir Dir, seg *TCPSegment, status Status, cfg *TCPConfig, old TCPConntrack) (rstAction, TCPConntrack) {
	// Closing already: the tuple may have been reused and the notes
	// are stale, so no validation.
	if tcpClosing(old) {
		return rstSkipWindow, TCPClose
	}
	peer := &st.Seen[dir^1]
	next := TCPClose
	// The peer's highest ack is outdated if a SYN was let through.
	if peer.Flags&TCPFlagMaxAckSet != 0 && st.LastIndex != tcpSynSet {
		seq := seg.Seq
		if seq == 0 && !tcpEstablished(st, status) {
			// Most likely answering a SYN let through above.
			return rstCheckWindow, next
		}
		if seqBefore(seq, peer.MaxAck) && !cfg.IgnoreInvalidRST {
			return rstInvalid, old
		}
		if !tcpEstablished(st, status) || seq == peer.MaxAck {
			return rstCheckWindow, next
		}
		if st.LastIndex == tcpAckSet && st.LastDir == dir && seq == st.LastEnd {
			// The RST ends a train of this side's segments.
			return rstCheckWindow, next
		}
		// Not the exact sequence number: stay established, the peer
		// may answer with a challenge ACK (RFC 5961).
		next = old
	}
	if ((status&StatusSeenReply != 0 && st.LastIndex == tcpSynSet) ||
		(status&StatusAssured == 0 && st.LastIndex == tcpAckSet)) &&
		seg.Ack == st.LastEnd {
		// The RST answers a SYN (a) or ACK (c) let through while
		// ignored: delete the connection. It may acknowledge what was
		// ignored, so no window checks.
		return rstSkipWindow, next
	}
	if old == TCPSynSent && st.LastIndex == tcpAckSet &&
		st.LastDir == DirReply && seg.Seq == st.LastAck {
		// The RST answers a challenge ACK let through earlier.
		return rstSkipWindow, next
	}
	return rstCheckWindow, next
}

// TCPPacket tracks one packet of an existing connection (or the first,
// after TCPNew), as the kernel's nf_conntrack_tcp_packet after
// tcp_error: the state machine, its special cases, the window checks,
// the new timeout and ASSURED. dir is the packet's direction; status is
// the entry's status bits as they are before this packet; tm and cfg are
// the timeouts and sysctls. The caller applies the result's SetStatus,
// timeout (TCPResult.Expiry) and Kill, and, as nf_conntrack_in does
// after the protocol's handler, sets StatusSeenReply when a reply
// direction packet was accepted.
//
// Verdicts: TCPAccept, TCPInvalid (the packet is invalid; st may have
// changed where the kernel changes it), TCPRepeat (a SYN reopens a
// closed connection: delete the entry and start a new one with the
// packet).
func TCPPacket(st *TCPState, dir Dir, seg *TCPSegment, status Status, tm *Timeouts, cfg TCPConfig) TCPResult {
	dir &= 1
	old := st.State
	if old >= TCPMax {
		// Not a state the kernel can be in.
		return TCPResult{Verdict: TCPInvalid}
	}
	index := tcpIndex(seg.Flags)
	next := tcpTransitions[dir][index][old]
	checkWindow := true

	switch next {
	case TCPSynSent:
		if old < TCPTimeWait {
			break
		}
		// A SYN on a connection in TIME_WAIT or CLOSE. RFC 1122 lets
		// a new SYN reopen a connection in TIME_WAIT; the kernel
		// ignores the conditions. The connection closed (a FIN was
		// seen) or this side aborted it (its last packet was a RST):
		// delete the entry and track the SYN as a new connection.
		if (st.Seen[0].Flags|st.Seen[1].Flags)&TCPFlagCloseInit != 0 ||
			(st.LastDir == dir && st.LastIndex == tcpRstSet) {
			return TCPResult{Verdict: TCPRepeat}
		}
		// Otherwise the SYN is ignored.
		if !tcpIgnored(st, dir, index, seg, old) {
			return tcpIgnoredResult()
		}
		old, next = TCPSynSent, TCPSynRecv
	case TCPIgnore:
		if !tcpIgnored(st, dir, index, seg, old) {
			return tcpIgnoredResult()
		}
		old, next = TCPSynSent, TCPSynRecv
	case TCPMax:
		// Invalid. (The kernel's exception for a SYN proxy client's
		// keepalive in SYN_SENT does not apply: no SYN proxy here.)
		return TCPResult{Verdict: TCPInvalid}
	case TCPTimeWait:
		// An RFC 5961 challenge ACK answering a SYN that was let
		// through in LAST_ACK does not acknowledge the last FIN.
		if old == TCPLastAck && index == tcpAckSet && st.LastDir != dir &&
			st.LastIndex == tcpSynSet && st.LastFlags&TCPFlagExpChallengeAck != 0 {
			st.LastFlags &^= TCPFlagExpChallengeAck
			return tcpIgnoredResult()
		}
	case TCPSynSent2:
		// The table alone cannot follow a simultaneous open.
		st.LastFlags |= TCPFlagSimultaneousOpen
	case TCPSynRecv:
		// In a simultaneous open the reply side's ACK completes it.
		if dir == DirReply && index == tcpAckSet && st.LastFlags&TCPFlagSimultaneousOpen != 0 {
			next = TCPEstablished
		}
	case TCPClose:
		if index != tcpRstSet {
			break
		}
		var act rstAction
		act, next = tcpRSTInClose(st, dir, seg, status, &cfg, old)
		switch act {
		case rstInvalid:
			return TCPResult{Verdict: TCPInvalid}
		case rstSkipWindow:
			checkWindow = false
		}
	}

	if checkWindow {
		switch tcpInWindow(st, dir, index, seg, &cfg) {
		case windowIgnore:
			return tcpIgnoredResult()
		case windowInvalid:
			r := TCPResult{Verdict: TCPInvalid}
			if tcpHandleInvalid(st, dir, index, status) {
				r.Mode = TCPTimeoutLower
				r.Timeout = tm.TCPUnacknowledged
			}
			return r
		}
	}

	// In window from here on.
	st.LastIndex = index
	st.LastDir = dir
	st.State = next
	if old != next && next == TCPFinWait {
		st.Seen[dir].Flags |= TCPFlagCloseInit
	}

	r := TCPResult{Verdict: TCPAccept, Mode: TCPTimeoutSet, Timeout: tcpTimeout(st, index, next, tm, &cfg)}
	if status&StatusSeenReply == 0 {
		if index == tcpRstSet {
			// The only answer so far is a RST: no connection, delete
			// the entry now.
			r.Mode = TCPTimeoutKeep
			r.Kill = true
			return r
		}
		if index == tcpSynSet && old == TCPSynSent {
			// A SYN retransmit does not renew the timeout, or a
			// client (or NAT) reusing the port would keep the
			// entry alive for ever.
			r.Mode = TCPTimeoutKeep
			return r
		}
		// Picked up mid-stream (loose) and no reply yet: not the long
		// ESTABLISHED timeout.
		if next == TCPEstablished && r.Timeout > tm.TCPUnacknowledged {
			r.Timeout = tm.TCPUnacknowledged
		}
	} else if status&StatusAssured == 0 &&
		(old == TCPSynRecv || old == TCPEstablished) && next == TCPEstablished {
		// A valid ACK in ESTABLISHED after SYN_RECV, or an answer on a
		// picked-up connection.
		r.SetStatus |= StatusAssured
	}
	if status&StatusFixedTimeout != 0 {
		// nf_ct_refresh leaves a fixed timeout alone.
		r.Mode = TCPTimeoutKeep
	}
	return r
}

// tcpIgnoredResult is the kernel's plain NF_ACCEPT return: the packet
// passes, the entry's timeout is not renewed.
func tcpIgnoredResult() TCPResult {
	return TCPResult{Verdict: TCPAccept, Mode: TCPTimeoutKeep}
}

// tcpTimeout picks the timeout after an in-window packet, in the kernel's
// order: the max_retrans timeout once the same segment was retransmitted
// MaxRetrans times, the CLOSE timeout for a RST, the unacknowledged
// timeout while either side has data unacknowledged, the max_retrans
// timeout again while the last remembered window is zero; each only if
// shorter than the new state's own timeout, which applies otherwise.
func tcpTimeout(st *TCPState, index uint8, next TCPConntrack, tm *Timeouts, cfg *TCPConfig) time.Duration {
	t := tm.TCP[next]
	switch {
	case st.Retrans >= cfg.MaxRetrans && t > tm.TCPMaxRetrans:
		return tm.TCPMaxRetrans
	case index == tcpRstSet:
		return tm.TCP[TCPClose]
	case (st.Seen[0].Flags|st.Seen[1].Flags)&TCPFlagDataUnacknowledged != 0 && t > tm.TCPUnacknowledged:
		return tm.TCPUnacknowledged
	case st.LastWin == 0 && t > tm.TCPMaxRetrans:
		return tm.TCPMaxRetrans
	}
	return t
}
