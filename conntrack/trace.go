package conntrack

import "github.com/xdpfwd/xdpfwd/fastpath"

// What the conntrack stages say of a traced packet (fastpath.Explainer):
// its state and direction, and its connection as `conntrack -L` lists
// the tuples and flags.

// explain writes p's state and connection into n.
func (tr *Tracker) explain(p *fastpath.Packet, n *fastpath.Note, e *Entry) {
	if p.CtState == 0 {
		if !tr.Enabled() {
			// As the kernel's conntrack, which a namespace runs only once
			// a rule uses it.
			n.Str("not tracked: no rule uses conntrack")
			return
		}
		n.Str("not tracked here")
		return
	}
	n.Str("ct state ")
	n.Str(State(p.CtState).String())
	if p.CtRef == 0 || !tr.Entry(p, e) {
		return
	}
	if tr.Dir(p) == DirReply {
		n.Str(" reply")
	} else {
		n.Str(" original")
	}
	if p.CtRef&refPending != 0 && p.CtRef&refGone == 0 {
		n.Str(", unconfirmed")
	}
	n.Str(": ")
	tupleNote(n, &e.Tuple[0])
	n.Str(" ")
	tupleNote(n, &e.Tuple[1])
	if e.Status&StatusAssured != 0 {
		n.Str(" [ASSURED]")
	} else if e.Status&StatusSeenReply == 0 {
		n.Str(" [UNREPLIED]")
	}
	if e.Mark != 0 {
		n.Str(" mark=")
		n.Uint(uint64(e.Mark))
	}
}

// tupleNote writes t as Tuple.String does, without allocating.
func tupleNote(n *fastpath.Note, t *Tuple) {
	n.Str("src=")
	n.Addr(t.SrcAddr())
	n.Str(" dst=")
	n.Addr(t.DstAddr())
	switch t.Proto {
	case ProtoICMP, ProtoICMPv6:
		n.Str(" type=")
		n.Uint(uint64(t.DstPort >> 8))
		n.Str(" code=")
		n.Uint(uint64(t.DstPort & 0xff))
		n.Str(" id=")
		n.Uint(uint64(t.SrcPort))
	case ProtoTCP, ProtoUDP, protoDCCP, protoSCTP, protoUDPLite:
		n.Str(" sport=")
		n.Uint(uint64(t.SrcPort))
		n.Str(" dport=")
		n.Uint(uint64(t.DstPort))
	}
}

// Explain says p's state and connection after tracking, where the stage
// tracks p.
func (s *inStage) Explain(p *fastpath.Packet, n *fastpath.Note) {
	if p.Local != s.local || !p.Routed && !p.Local {
		return
	}
	s.w.tr.explain(p, n, &s.w.explainBuf)
}

// confirmDry is what the confirm stage did to a Simulator's packet:
// nothing; the connection would be confirmed.
const confirmDry ConfirmResult = 254

// traceConfirm remembers what confirming traced packet p's connection
// did, for Explain.
func (w *trackWorker) traceConfirm(p *fastpath.Packet, res ConfirmResult) {
	w.confirmed[p.Trace&0xff] = res + 1 // 0: not confirmed here
	w.confirmedAny = true
}

// Explain says whether the stage confirmed p's connection.
func (s *confirmStage) Explain(p *fastpath.Packet, n *fastpath.Note) {
	c := &s.w.confirmed[p.Trace&0xff]
	switch *c {
	case 0:
		return
	case ConfirmInserted + 1:
		n.Str("confirmed: the connection is in the table")
	case confirmDry + 1:
		n.Str("would be confirmed (a dry run changes no entry)")
	case ConfirmClash + 1:
		n.Str("confirmed: clashed with a connection another worker inserted, resolved (the packet follows it)")
	default:
		n.Str("not confirmed: insert failed (the tuple is taken), the packet is dropped")
	}
	*c = 0
}
