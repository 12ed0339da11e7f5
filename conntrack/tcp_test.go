package conntrack

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"
	"unsafe"
)

// tcpHdr builds a TCP header (ports 40000 → 80) with the given options,
// padded with EOL to a multiple of 4 bytes.
func tcpHdr(seq, ack uint32, flags uint8, win uint16, opts ...byte) []byte {
	ol := (len(opts) + 3) &^ 3
	b := make([]byte, 20+ol)
	binary.BigEndian.PutUint16(b[0:], 40000)
	binary.BigEndian.PutUint16(b[2:], 80)
	binary.BigEndian.PutUint32(b[4:], seq)
	binary.BigEndian.PutUint32(b[8:], ack)
	b[12] = byte((20+ol)/4) << 4
	b[13] = flags
	binary.BigEndian.PutUint16(b[14:], win)
	copy(b[20:], opts)
	return b
}

// Options.
var (
	optMSS      = []byte{2, 4, 0x05, 0xb4}
	optSackPerm = []byte{4, 2}
	optNOP      = []byte{1}
)

func optWS(shift byte) []byte { return []byte{1, 3, 3, shift} }

func optSACK(blocks ...uint32) []byte {
	b := []byte{1, 1, 5, byte(2 + 4*len(blocks))}
	for _, v := range blocks {
		b = binary.BigEndian.AppendUint32(b, v)
	}
	return b
}

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// tcpConn plays the flow table's part for one connection: TCPNew for the
// first packet, TCPPacket for all, SEEN_REPLY after an accepted reply,
// the result's status and timeout applied.
type tcpConn struct {
	t      *testing.T
	st     TCPState
	status Status
	tm     Timeouts
	cfg    TCPConfig
	live   bool          // the entry exists (confirmed)
	expiry time.Duration // its remaining lifetime (no time passes)
	killed bool
}

func newTCPConn(t *testing.T) *tcpConn {
	return &tcpConn{t: t, tm: DefaultTimeouts(), cfg: DefaultTCPConfig()}
}

// pkt sends one packet: flags, seq, ack, window, payload length, options.
func (c *tcpConn) pkt(dir Dir, flags uint8, seq, ack uint32, win uint16, payload int, opts ...byte) TCPResult {
	c.t.Helper()
	h := tcpHdr(seq, ack, flags, win, opts...)
	seg, err := ParseTCPSegment(h, len(h)+payload)
	if err != nil {
		c.t.Fatalf("parse: %v", err)
	}
	if !c.live {
		if dir != DirOriginal {
			c.t.Fatalf("reply packet without an entry")
		}
		if !TCPNew(&c.st, &seg, c.cfg.Loose) {
			return TCPResult{Verdict: TCPInvalid}
		}
	}
	r := TCPPacket(&c.st, dir, &seg, c.status, &c.tm, c.cfg)
	switch r.Verdict {
	case TCPAccept:
		c.live = true
		c.status |= r.SetStatus
		if dir == DirReply {
			c.status |= StatusSeenReply
		}
		c.expiry, _ = r.Expiry(c.expiry)
		if r.Kill {
			c.reset()
			c.killed = true
		}
	case TCPInvalid:
		if !c.live {
			c.reset() // an unconfirmed entry is dropped
		} else {
			c.expiry, _ = r.Expiry(c.expiry)
		}
	case TCPRepeat:
		c.reset()
	}
	return r
}

func (c *tcpConn) reset() {
	c.st, c.status, c.live, c.expiry = TCPState{}, 0, false, 0
}

// want checks a result's verdict, the connection's state and, if
// timeout is not 0, its remaining lifetime.
func (c *tcpConn) want(r TCPResult, v TCPVerdict, state TCPConntrack, timeout time.Duration) {
	c.t.Helper()
	if r.Verdict != v {
		c.t.Fatalf("verdict %v, want %v (state %v)", r.Verdict, v, c.st.State)
	}
	if c.st.State != state {
		c.t.Fatalf("state %v, want %v", c.st.State, state)
	}
	if timeout != 0 && c.expiry != timeout {
		c.t.Fatalf("timeout %v, want %v (state %v)", c.expiry, timeout, c.st.State)
	}
}

const (
	cISN = 1000  // client's initial sequence number
	sISN = 50000 // server's
	day  = 24 * time.Hour
)

// handshake opens a connection with window scaling (client 7, server 8)
// and SACK, and checks each step.
func (c *tcpConn) handshake() {
	c.t.Helper()
	r := c.pkt(DirOriginal, TCPSyn, cISN, 0, 65535, 0, cat(optMSS, optSackPerm, optWS(7))...)
	c.want(r, TCPAccept, TCPSynSent, 120*time.Second)
	r = c.pkt(DirReply, TCPSyn|TCPAck, sISN, cISN+1, 65160, 0, cat(optMSS, optSackPerm, optWS(8))...)
	c.want(r, TCPAccept, TCPSynRecv, 60*time.Second)
	if c.status&StatusAssured != 0 {
		c.t.Fatal("assured before the handshake's ACK")
	}
	r = c.pkt(DirOriginal, TCPAck, cISN+1, sISN+1, 502, 0)
	c.want(r, TCPAccept, TCPEstablished, 5*day)
	if r.SetStatus != StatusAssured || c.status&StatusAssured == 0 {
		c.t.Fatalf("handshake's ACK set %#x, want ASSURED", r.SetStatus)
	}
}

// The kernel's tcp_conntracks, transcribed on its own from
// net/netfilter/nf_conntrack_proto_tcp.c: rows syn, synack, fin, ack, rst,
// none; columns sNO sSS sSR sES sFW sCW sLA sTW sCL sS2.
var kernelTCPTable = [2][6]string{
	{ // ORIGINAL
		"SS SS IG IG IG IG IG SS SS S2",
		"IV IV SR IV IV IV IV IV IV SR",
		"IV IV FW FW LA LA LA TW CL IV",
		"ES IV ES ES CW CW TW TW CL IV",
		"IV CL CL CL CL CL CL CL CL CL",
		"IV IV IV IV IV IV IV IV IV IV",
	},
	{ // REPLY
		"IV S2 IV IV IV IV IV SS IV S2",
		"IV SR IG IG IG IG IG IG IG SR",
		"IV IV FW FW LA LA LA TW CL IV",
		"IV IG SR ES CW CW TW TW CL IG",
		"IV CL CL CL CL CL CL CL CL CL",
		"IV IV IV IV IV IV IV IV IV IV",
	},
}

var kernelTCPNames = map[string]TCPConntrack{
	"NO": TCPNone, "SS": TCPSynSent, "SR": TCPSynRecv, "ES": TCPEstablished,
	"FW": TCPFinWait, "CW": TCPCloseWait, "LA": TCPLastAck, "TW": TCPTimeWait,
	"CL": TCPClose, "S2": TCPSynSent2, "IV": TCPMax, "IG": TCPIgnore,
}

func kernelNext(t *testing.T, dir Dir, index uint8, old TCPConntrack) TCPConntrack {
	t.Helper()
	f := strings.Fields(kernelTCPTable[dir][index])
	if len(f) != int(TCPMax) {
		t.Fatalf("table row %d/%d has %d columns", dir, index, len(f))
	}
	s, ok := kernelTCPNames[f[old]]
	if !ok {
		t.Fatalf("bad name %q", f[old])
	}
	return s
}

// A representative packet of each class.
var tcpClassFlags = [tcpIndexMax]uint8{
	tcpSynSet:    TCPSyn,
	tcpSynAckSet: TCPSyn | TCPAck,
	tcpFinSet:    TCPFin | TCPAck,
	tcpAckSet:    TCPAck | TCPPsh,
	tcpRstSet:    TCPRst | TCPAck,
	tcpNoneSet:   0,
}

func TestTCPTransitionTable(t *testing.T) {
	n := 0
	for dir := DirOriginal; dir <= DirReply; dir++ {
		for index := uint8(0); index < tcpIndexMax; index++ {
			for old := TCPNone; old < TCPMax; old++ {
				want := kernelNext(t, dir, index, old)
				if got := tcpTransitions[dir][index][old]; got != want {
					t.Errorf("dir %d class %d state %v: %d, kernel %d", dir, index, old, got, want)
				}
				n++
			}
		}
	}
	if n != 120 {
		t.Fatalf("%d cells", n)
	}
	// The classification (get_conntrack_index).
	for f := 0; f < 256; f++ {
		flags := uint8(f)
		var want uint8
		switch {
		case flags&TCPRst != 0:
			want = tcpRstSet
		case flags&(TCPSyn|TCPAck) == TCPSyn|TCPAck:
			want = tcpSynAckSet
		case flags&TCPSyn != 0:
			want = tcpSynSet
		case flags&TCPFin != 0:
			want = tcpFinSet
		case flags&TCPAck != 0:
			want = tcpAckSet
		default:
			want = tcpNoneSet
		}
		if got := tcpIndex(flags); got != want {
			t.Errorf("flags %#x: class %d, want %d", flags, got, want)
		}
	}
}

// Every cell through TCPPacket, on a connection whose window checks are
// liberal so that only the state machine and its special cases decide.
func TestTCPTransitionsThroughPacket(t *testing.T) {
	tm := DefaultTimeouts()
	for dir := DirOriginal; dir <= DirReply; dir++ {
		for index := uint8(0); index < tcpIndexMax; index++ {
			for old := TCPNone; old < TCPMax; old++ {
				for _, closeInit := range []bool{false, true} {
					var st TCPState
					st.State = old
					st.LastIndex = tcpNoneSet
					for d := range st.Seen {
						st.Seen[d] = TCPSeen{End: uint32(1000 * (d + 1)), MaxEnd: 1 << 20, MaxWin: 65535, Flags: TCPFlagBeLiberal}
					}
					if closeInit {
						st.Seen[0].Flags |= TCPFlagCloseInit
					}
					other := st.Seen[dir^1].End
					h := tcpHdr(st.Seen[dir].End, other, tcpClassFlags[index], 1000)
					seg, err := ParseTCPSegment(h, len(h))
					if index == tcpNoneSet {
						// tcp_error refuses a packet without flags;
						// the state machine would call it invalid too.
						if !errors.Is(err, ErrTCPFlags) {
							t.Fatalf("no flags: %v", err)
						}
						seg = TCPSegment{Seq: st.Seen[dir].End, Ack: other, Sack: other, Window: 1000, HeaderLen: 20}
					} else if err != nil {
						t.Fatal(err)
					}
					before := st
					r := TCPPacket(&st, dir, &seg, StatusSeenReply|StatusAssured, &tm, DefaultTCPConfig())
					want := kernelNext(t, dir, index, old)
					name := func() string {
						return "dir " + string('0'+byte(dir)) + " class " + string('0'+index) + " from " + old.String()
					}
					switch {
					case want == TCPMax:
						if r.Verdict != TCPInvalid || st != before {
							t.Errorf("%s: %v, state %v; want invalid, unchanged", name(), r.Verdict, st.State)
						}
					case want == TCPIgnore,
						want == TCPSynSent && old >= TCPTimeWait && !closeInit:
						if r.Verdict != TCPAccept || r.Mode != TCPTimeoutKeep || st.State != old ||
							st.LastIndex != index || st.LastDir != dir {
							t.Errorf("%s: %v mode %d state %v; want ignored", name(), r.Verdict, r.Mode, st.State)
						}
					case want == TCPSynSent && old >= TCPTimeWait:
						if r.Verdict != TCPRepeat {
							t.Errorf("%s: %v, want repeat", name(), r.Verdict)
						}
					default:
						if r.Verdict != TCPAccept || r.Mode != TCPTimeoutSet || st.State != want {
							t.Errorf("%s: %v mode %d state %v; want accept, %v", name(), r.Verdict, r.Mode, st.State, want)
						}
						if want == TCPSynSent2 && st.LastFlags&TCPFlagSimultaneousOpen == 0 {
							t.Errorf("%s: simultaneous open not flagged", name())
						}
						if want == TCPFinWait && old != TCPFinWait && st.Seen[dir].Flags&TCPFlagCloseInit == 0 {
							t.Errorf("%s: CLOSE_INIT not set", name())
						}
					}
				}
			}
		}
	}
}

func TestTCPHandshakeAndData(t *testing.T) {
	c := newTCPConn(t)
	c.handshake()
	s0, s1 := c.st.Seen[0], c.st.Seen[1]
	if s0.Scale != 7 || s1.Scale != 8 ||
		s0.Flags&(TCPFlagWindowScale|TCPFlagSackPerm) != TCPFlagWindowScale|TCPFlagSackPerm ||
		s1.Flags&(TCPFlagWindowScale|TCPFlagSackPerm) != TCPFlagWindowScale|TCPFlagSackPerm {
		t.Fatalf("options: %+v %+v", s0, s1)
	}
	if s0.End != cISN+1 || s1.End != sISN+1 {
		t.Fatalf("ends %d %d", s0.End, s1.End)
	}
	// The server's SYN/ACK window (unscaled) + ack bounds the client.
	if s0.MaxEnd != cISN+1+65160 {
		t.Fatalf("client maxend %d", s0.MaxEnd)
	}
	// The client's ACK: window 502 << 7.
	if s1.MaxEnd != sISN+1+502<<7 {
		t.Fatalf("server maxend %d, want %d", s1.MaxEnd, sISN+1+502<<7)
	}

	// Data from the client: unacknowledged until the server acks it.
	r := c.pkt(DirOriginal, TCPAck|TCPPsh, cISN+1, sISN+1, 502, 100)
	c.want(r, TCPAccept, TCPEstablished, 300*time.Second)
	if c.st.Seen[0].Flags&TCPFlagDataUnacknowledged == 0 || c.st.Seen[0].End != cISN+101 {
		t.Fatalf("client after data: %+v", c.st.Seen[0])
	}
	r = c.pkt(DirReply, TCPAck, sISN+1, cISN+101, 509, 0)
	c.want(r, TCPAccept, TCPEstablished, 5*day)
	if c.st.Seen[0].Flags&TCPFlagDataUnacknowledged != 0 {
		t.Fatal("still unacknowledged")
	}
	if r.SetStatus != 0 {
		t.Fatalf("ASSURED set twice")
	}
	// Server data, client ack.
	r = c.pkt(DirReply, TCPAck|TCPPsh, sISN+1, cISN+101, 509, 1000)
	c.want(r, TCPAccept, TCPEstablished, 300*time.Second)
	r = c.pkt(DirOriginal, TCPAck, cISN+101, sISN+1001, 500, 0)
	c.want(r, TCPAccept, TCPEstablished, 5*day)
	if c.st.Seen[0].MaxAck != sISN+1001 || c.st.Seen[1].MaxAck != cISN+101 {
		t.Fatalf("maxacks %d %d", c.st.Seen[0].MaxAck, c.st.Seen[1].MaxAck)
	}
}

// With window scaling the scaled window admits data far beyond the raw
// window; without it (the server does not send the option) the same data
// is out of window.
func TestTCPWindowScaling(t *testing.T) {
	// Beyond the unscaled windows by more than the receiver's largest
	// window, within 1000<<8.
	far := uint32(cISN + 1 + 200000)

	c := newTCPConn(t)
	c.handshake()
	c.pkt(DirReply, TCPAck, sISN+1, cISN+1, 1000, 0) // 1000<<8 = 256000
	r := c.pkt(DirOriginal, TCPAck|TCPPsh, far, sISN+1, 502, 100)
	c.want(r, TCPAccept, TCPEstablished, 300*time.Second)

	c = newTCPConn(t)
	c.pkt(DirOriginal, TCPSyn, cISN, 0, 65535, 0, cat(optMSS, optSackPerm, optWS(7))...)
	c.pkt(DirReply, TCPSyn|TCPAck, sISN, cISN+1, 65160, 0, cat(optMSS, optSackPerm)...)
	if c.st.Seen[0].Scale != 0 || c.st.Seen[1].Scale != 0 {
		t.Fatalf("scales %d %d without the option on both sides", c.st.Seen[0].Scale, c.st.Seen[1].Scale)
	}
	c.pkt(DirOriginal, TCPAck, cISN+1, sISN+1, 502, 0)
	c.pkt(DirReply, TCPAck, sISN+1, cISN+1, 1000, 0)
	r = c.pkt(DirOriginal, TCPAck|TCPPsh, far, sISN+1, 502, 100)
	c.want(r, TCPInvalid, TCPEstablished, 5*day)

	// A scale above 14 counts as 14.
	seg, err := ParseTCPSegment(tcpHdr(1, 0, TCPSyn, 100, optWS(20)...), 24)
	if err != nil || seg.WScale != 14 || seg.OptFlags != TCPFlagWindowScale {
		t.Fatalf("scale 20: %+v %v", seg, err)
	}
}

// SACK blocks raise the acknowledgement when the receiver allowed SACK:
// an ack beyond what the receiver sent is invalid; a SACK block beyond it
// too, but only with SACK permitted.
func TestTCPSack(t *testing.T) {
	c := newTCPConn(t)
	c.handshake()
	c.pkt(DirOriginal, TCPAck|TCPPsh, cISN+1, sISN+1, 502, 1000)
	// Server sacks within what the client sent.
	r := c.pkt(DirReply, TCPAck, sISN+1, cISN+1, 509, 0, optSACK(cISN+501, cISN+1001)...)
	c.want(r, TCPAccept, TCPEstablished, 0)
	// And beyond it: invalid.
	r = c.pkt(DirReply, TCPAck, sISN+1, cISN+1, 509, 0, optSACK(cISN+501, cISN+1002)...)
	c.want(r, TCPInvalid, TCPEstablished, 0)

	// Without SACK permitted the block is not read.
	c = newTCPConn(t)
	c.pkt(DirOriginal, TCPSyn, cISN, 0, 65535, 0, cat(optMSS, optWS(7))...)
	c.pkt(DirReply, TCPSyn|TCPAck, sISN, cISN+1, 65160, 0, cat(optMSS, optWS(8))...)
	c.pkt(DirOriginal, TCPAck, cISN+1, sISN+1, 502, 0)
	c.pkt(DirOriginal, TCPAck|TCPPsh, cISN+1, sISN+1, 502, 1000)
	r = c.pkt(DirReply, TCPAck, sISN+1, cISN+1, 509, 0, optSACK(cISN+501, cISN+5000)...)
	c.want(r, TCPAccept, TCPEstablished, 0)
	// The ack itself beyond: invalid.
	r = c.pkt(DirReply, TCPAck, sISN+1, cISN+1002, 509, 0)
	c.want(r, TCPInvalid, TCPEstablished, 0)
}

func TestTCPSimultaneousOpen(t *testing.T) {
	// A SYN, B SYN, A SYN/ACK, B ACK: the reply side's ACK completes it.
	c := newTCPConn(t)
	c.want(c.pkt(DirOriginal, TCPSyn, cISN, 0, 65535, 0), TCPAccept, TCPSynSent, 120*time.Second)
	r := c.pkt(DirReply, TCPSyn, sISN, 0, 65535, 0)
	c.want(r, TCPAccept, TCPSynSent2, 120*time.Second)
	if c.st.LastFlags&TCPFlagSimultaneousOpen == 0 {
		t.Fatal("not flagged simultaneous")
	}
	c.want(c.pkt(DirOriginal, TCPSyn|TCPAck, cISN, sISN+1, 65535, 0), TCPAccept, TCPSynRecv, 60*time.Second)
	r = c.pkt(DirReply, TCPAck, sISN+1, cISN+1, 65535, 0)
	c.want(r, TCPAccept, TCPEstablished, 5*day)
	if r.SetStatus != StatusAssured {
		t.Fatalf("status %#x", r.SetStatus)
	}

	// A SYN, B SYN, A SYN/ACK, B SYN/ACK (ignored), A ACK.
	c = newTCPConn(t)
	c.pkt(DirOriginal, TCPSyn, cISN, 0, 65535, 0)
	c.pkt(DirReply, TCPSyn, sISN, 0, 65535, 0)
	c.pkt(DirOriginal, TCPSyn|TCPAck, cISN, sISN+1, 65535, 0)
	r = c.pkt(DirReply, TCPSyn|TCPAck, sISN, cISN+1, 65535, 0)
	c.want(r, TCPAccept, TCPSynRecv, 60*time.Second)
	if r.Mode != TCPTimeoutKeep {
		t.Fatal("ignored packet renewed the timeout")
	}
	r = c.pkt(DirOriginal, TCPAck, cISN+1, sISN+1, 65535, 0)
	c.want(r, TCPAccept, TCPEstablished, 5*day)
	if c.status&StatusAssured == 0 {
		t.Fatal("not assured")
	}
}

func TestTCPSynRetransmit(t *testing.T) {
	c := newTCPConn(t)
	c.pkt(DirOriginal, TCPSyn, cISN, 0, 65535, 0, optWS(7)...)
	c.expiry = 30 * time.Second // time has passed
	// The same SYN again: no renewal of the timeout.
	r := c.pkt(DirOriginal, TCPSyn, cISN, 0, 65535, 0, optWS(7)...)
	c.want(r, TCPAccept, TCPSynSent, 30*time.Second)
	if r.Mode != TCPTimeoutKeep {
		t.Fatalf("mode %d", r.Mode)
	}
	// A new SYN with a higher sequence number reinitialises the
	// direction, options included.
	r = c.pkt(DirOriginal, TCPSyn, cISN+5000, 0, 1000, 0, optSackPerm...)
	c.want(r, TCPAccept, TCPSynSent, 30*time.Second)
	if s := c.st.Seen[0]; s.End != cISN+5001 || s.MaxWin != 1000 || s.Flags != TCPFlagSackPerm || s.Scale != 0 {
		t.Fatalf("after new SYN: %+v", s)
	}
	// The SYN/ACK answers the new one.
	r = c.pkt(DirReply, TCPSyn|TCPAck, sISN, cISN+5001, 65535, 0)
	c.want(r, TCPAccept, TCPSynRecv, 60*time.Second)
	// A SYN/ACK retransmit is ignored.
	r = c.pkt(DirReply, TCPSyn|TCPAck, sISN, cISN+5001, 65535, 0)
	c.want(r, TCPAccept, TCPSynRecv, 60*time.Second)
	if r.Mode != TCPTimeoutKeep {
		t.Fatal("SYN/ACK retransmit renewed the timeout")
	}
	c.want(c.pkt(DirOriginal, TCPAck, cISN+5001, sISN+1, 65535, 0), TCPAccept, TCPEstablished, 5*day)
}

func TestTCPCloseFromClient(t *testing.T) {
	c := newTCPConn(t)
	c.handshake()
	r := c.pkt(DirOriginal, TCPFin|TCPAck, cISN+1, sISN+1, 502, 0)
	c.want(r, TCPAccept, TCPFinWait, 120*time.Second)
	if c.st.Seen[0].Flags&TCPFlagCloseInit == 0 || c.st.Seen[1].Flags&TCPFlagCloseInit != 0 {
		t.Fatal("CLOSE_INIT on the wrong side")
	}
	c.want(c.pkt(DirReply, TCPAck, sISN+1, cISN+2, 509, 0), TCPAccept, TCPCloseWait, 60*time.Second)
	c.want(c.pkt(DirReply, TCPFin|TCPAck, sISN+1, cISN+2, 509, 0), TCPAccept, TCPLastAck, 30*time.Second)
	c.want(c.pkt(DirOriginal, TCPAck, cISN+2, sISN+2, 502, 0), TCPAccept, TCPTimeWait, 120*time.Second)
	// The last ACK again stays in TIME_WAIT.
	c.want(c.pkt(DirOriginal, TCPAck, cISN+2, sISN+2, 502, 0), TCPAccept, TCPTimeWait, 120*time.Second)

	// The client reuses the port: delete and repeat as new.
	r = c.pkt(DirOriginal, TCPSyn, cISN+100000, 0, 65535, 0)
	if r.Verdict != TCPRepeat {
		t.Fatalf("SYN in TIME_WAIT: %v", r.Verdict)
	}
	if c.live {
		t.Fatal("entry kept")
	}
	c.want(c.pkt(DirOriginal, TCPSyn, cISN+100000, 0, 65535, 0), TCPAccept, TCPSynSent, 120*time.Second)
}

func TestTCPCloseFromServer(t *testing.T) {
	c := newTCPConn(t)
	c.handshake()
	c.want(c.pkt(DirReply, TCPFin|TCPAck, sISN+1, cISN+1, 509, 0), TCPAccept, TCPFinWait, 120*time.Second)
	if c.st.Seen[1].Flags&TCPFlagCloseInit == 0 {
		t.Fatal("CLOSE_INIT not on the server's side")
	}
	// Simultaneous close: the client's FIN crosses.
	c.want(c.pkt(DirOriginal, TCPFin|TCPAck, cISN+1, sISN+1, 502, 0), TCPAccept, TCPLastAck, 30*time.Second)
	c.want(c.pkt(DirOriginal, TCPAck, cISN+2, sISN+2, 502, 0), TCPAccept, TCPTimeWait, 120*time.Second)
	// The server's SYN reopens (it may have switched roles): the tuple
	// is this entry's reply, so it repeats as new.
	r := c.pkt(DirReply, TCPSyn, sISN+100000, 0, 65535, 0)
	if r.Verdict != TCPRepeat {
		t.Fatalf("reply SYN in TIME_WAIT: %v", r.Verdict)
	}
}

// A SYN in CLOSE after an RST from the same side reopens; after an RST
// from the other side it is ignored.
func TestTCPSynAfterRST(t *testing.T) {
	c := newTCPConn(t)
	c.handshake()
	c.pkt(DirReply, TCPAck, sISN+1, cISN+1, 509, 0)
	c.want(c.pkt(DirOriginal, TCPRst, cISN+1, 0, 0, 0), TCPAccept, TCPClose, 10*time.Second)
	if r := c.pkt(DirOriginal, TCPSyn, cISN+9999, 0, 65535, 0); r.Verdict != TCPRepeat {
		t.Fatalf("SYN after own RST: %v", r.Verdict)
	}

	c = newTCPConn(t)
	c.handshake()
	c.pkt(DirOriginal, TCPAck, cISN+1, sISN+1, 502, 0)
	c.want(c.pkt(DirReply, TCPRst, sISN+1, 0, 0, 0), TCPAccept, TCPClose, 10*time.Second)
	r := c.pkt(DirOriginal, TCPSyn, cISN+9999, 0, 65535, 0)
	c.want(r, TCPAccept, TCPClose, 10*time.Second)
	if r.Mode != TCPTimeoutKeep || c.st.LastIndex != tcpSynSet {
		t.Fatalf("SYN after the peer's RST not ignored: mode %d", r.Mode)
	}
}

// establishedWithData: handshake, 100 bytes from the client, acked.
func establishedWithData(t *testing.T) *tcpConn {
	c := newTCPConn(t)
	c.handshake()
	c.pkt(DirOriginal, TCPAck|TCPPsh, cISN+1, sISN+1, 502, 100)
	c.pkt(DirReply, TCPAck, sISN+1, cISN+101, 509, 0)
	return c
}

func TestTCPRst(t *testing.T) {
	// The exact sequence number the server acknowledged.
	c := establishedWithData(t)
	c.want(c.pkt(DirOriginal, TCPRst, cISN+101, 0, 0, 0), TCPAccept, TCPClose, 10*time.Second)
	// Anything but a SYN in CLOSE stays there.
	c.want(c.pkt(DirReply, TCPAck, sISN+1, cISN+101, 509, 0), TCPAccept, TCPClose, 10*time.Second)

	// Below what the server acknowledged: invalid, unchanged.
	c = establishedWithData(t)
	before := c.st
	c.want(c.pkt(DirOriginal, TCPRst, cISN+50, 0, 0, 0), TCPInvalid, TCPEstablished, 5*day)
	if c.st != before {
		t.Fatal("invalid RST changed the state")
	}
	// ... unless nf_conntrack_tcp_ignore_invalid_rst: then it is in
	// window but not exact, so the state stays for a challenge ACK,
	// with the CLOSE timeout.
	c.cfg.IgnoreInvalidRST = true
	c.want(c.pkt(DirOriginal, TCPRst, cISN+50, 0, 0, 0), TCPAccept, TCPEstablished, 10*time.Second)

	// In window but not exact: stays ESTABLISHED with the CLOSE timeout.
	c = establishedWithData(t)
	c.want(c.pkt(DirOriginal, TCPRst, cISN+600, 0, 0, 0), TCPAccept, TCPEstablished, 10*time.Second)
	// The exact one then closes.
	c.want(c.pkt(DirOriginal, TCPRst|TCPAck, cISN+101, sISN+1, 0, 0), TCPAccept, TCPClose, 10*time.Second)

	// After a train of data the RST at the train's end closes.
	c = establishedWithData(t)
	c.pkt(DirOriginal, TCPAck|TCPPsh, cISN+101, sISN+1, 502, 19)
	c.want(c.pkt(DirOriginal, TCPRst, cISN+120, 0, 0, 0), TCPAccept, TCPClose, 10*time.Second)

	// Out of window: invalid.
	c = establishedWithData(t)
	c.want(c.pkt(DirOriginal, TCPRst, cISN+101+10_000_000, 0, 0, 0), TCPInvalid, TCPEstablished, 5*day)
	if c.st.LastIndex != tcpRstSet || c.st.LastDir != DirOriginal {
		t.Fatal("out-of-window RST not noted")
	}
	// An out-of-window FIN from the other side answering it lowers the
	// timeout to the unacknowledged one (the entry is assured and far
	// from expiry).
	r := c.pkt(DirReply, TCPFin|TCPAck, sISN+1+10_000_000, cISN+101, 509, 0)
	c.want(r, TCPInvalid, TCPEstablished, 300*time.Second)
	if r.Mode != TCPTimeoutLower {
		t.Fatalf("mode %d", r.Mode)
	}
	if d, ok := r.Expiry(100 * time.Second); ok || d != 100*time.Second {
		t.Fatal("lowered an expiry under 120 s")
	}
	if d, ok := r.Expiry(250 * time.Second); ok || d != 250*time.Second {
		t.Fatal("raised an expiry")
	}

	// In CLOSE_WAIT (closing) an RST is not validated.
	c = establishedWithData(t)
	c.pkt(DirOriginal, TCPFin|TCPAck, cISN+101, sISN+1, 502, 0)
	c.pkt(DirReply, TCPAck, sISN+1, cISN+102, 509, 0)
	c.want(c.pkt(DirReply, TCPRst, 12345, 0, 0, 0), TCPAccept, TCPClose, 10*time.Second)
}

// An RST as the only answer to a SYN: the entry goes at once.
func TestTCPRstAnsweringSyn(t *testing.T) {
	c := newTCPConn(t)
	c.pkt(DirOriginal, TCPSyn, cISN, 0, 65535, 0)
	r := c.pkt(DirReply, TCPRst|TCPAck, 0, cISN+1, 0, 0)
	if r.Verdict != TCPAccept || !r.Kill || r.Mode != TCPTimeoutKeep || !c.killed {
		t.Fatalf("RST answering SYN: %+v", r)
	}
	// RST with seq 0 and no ACK (the RST-for-SYN form): its sequence
	// number becomes the sender's end.
	c = newTCPConn(t)
	c.pkt(DirOriginal, TCPSyn, cISN, 0, 65535, 0)
	r = c.pkt(DirReply, TCPRst, 0, 0, 0, 0)
	if r.Verdict != TCPAccept || !r.Kill {
		t.Fatalf("bare RST answering SYN: %+v", r)
	}
}

func TestTCPOutOfWindow(t *testing.T) {
	c := establishedWithData(t)
	// seq far beyond the window: invalid, state unchanged.
	before := c.st
	c.want(c.pkt(DirOriginal, TCPAck|TCPPsh, cISN+101+10_000_000, sISN+1, 502, 10), TCPInvalid, TCPEstablished, 5*day)
	if c.st != before {
		t.Fatal("invalid data changed the state")
	}
	// An ack for data never sent: invalid.
	c.want(c.pkt(DirOriginal, TCPAck, cISN+101, sISN+5000, 502, 0), TCPInvalid, TCPEstablished, 5*day)
	// Data retransmitted from before the receiver's window (acked long
	// ago): accepted, nothing updated, timeout not renewed.
	c.expiry = time.Hour
	old := uint32(cISN + 101)
	r := c.pkt(DirOriginal, TCPAck|TCPPsh, old-200_000, sISN+1, 502, 10)
	c.want(r, TCPAccept, TCPEstablished, time.Hour)
	if r.Mode != TCPTimeoutKeep {
		t.Fatalf("mode %d", r.Mode)
	}
	// A few bytes over the receiver's window: accepted without a
	// refresh, but the end moves so the ack for it will be valid.
	c = establishedWithData(t)
	maxEnd := c.st.Seen[0].MaxEnd
	r = c.pkt(DirOriginal, TCPAck|TCPPsh, maxEnd+1, sISN+1, 502, 10)
	if r.Verdict != TCPAccept || r.Mode != TCPTimeoutKeep || c.st.Seen[0].End != maxEnd+11 {
		t.Fatalf("overshoot: %+v end %d", r, c.st.Seen[0].End)
	}
	c.want(c.pkt(DirReply, TCPAck, sISN+1, maxEnd+11, 509, 0), TCPAccept, TCPEstablished, 0)
	// A FIN from the client before the server's SYN/ACK is invalid.
	c = newTCPConn(t)
	c.pkt(DirOriginal, TCPSyn, cISN, 0, 65535, 0)
	c.want(c.pkt(DirOriginal, TCPFin|TCPAck, cISN+1, 0, 65535, 0), TCPInvalid, TCPSynSent, 0)
}

func TestTCPMidStreamPickup(t *testing.T) {
	c := newTCPConn(t)
	r := c.pkt(DirOriginal, TCPAck|TCPPsh, 7000, 90000, 1000, 50)
	// No reply yet: not the 5-day ESTABLISHED timeout.
	c.want(r, TCPAccept, TCPEstablished, 300*time.Second)
	// SACK and liberal checking assumed both ways. (The ack is beyond
	// the reply side's unknown end: the check fails and, liberal, the
	// packet passes without updating the windows.)
	if c.st.Seen[0].Flags != TCPFlagSackPerm|TCPFlagBeLiberal ||
		c.st.Seen[1].Flags != TCPFlagSackPerm|TCPFlagBeLiberal {
		t.Fatalf("flags %#x %#x", c.st.Seen[0].Flags, c.st.Seen[1].Flags)
	}
	if r.SetStatus != 0 {
		t.Fatal("assured without a reply")
	}
	// The reply: still no SEEN_REPLY while it is processed.
	r = c.pkt(DirReply, TCPAck, 90000, 7050, 2000, 0)
	c.want(r, TCPAccept, TCPEstablished, 300*time.Second)
	if r.SetStatus != 0 {
		t.Fatal("assured on the first reply")
	}
	// The next packet: a valid answer on a picked-up connection.
	r = c.pkt(DirOriginal, TCPAck, 7050, 90000, 1000, 0)
	c.want(r, TCPAccept, TCPEstablished, 5*day)
	if r.SetStatus != StatusAssured {
		t.Fatal("not assured")
	}
	// Liberal: far out-of-window data is accepted.
	c.want(c.pkt(DirOriginal, TCPAck, 7050+50_000_000, 90000, 1000, 10), TCPAccept, TCPEstablished, 0)

	// loose off: no pickup.
	c = newTCPConn(t)
	c.cfg.Loose = false
	c.want(c.pkt(DirOriginal, TCPAck, 7000, 90000, 1000, 50), TCPInvalid, TCPNone, 0)
	if c.live {
		t.Fatal("entry created")
	}
	// A SYN still opens with loose off.
	c.want(c.pkt(DirOriginal, TCPSyn, 7000, 0, 1000, 0), TCPAccept, TCPSynSent, 0)

	// FIN, RST and SYN/ACK never open a connection.
	for _, f := range []uint8{TCPFin | TCPAck, TCPRst, TCPRst | TCPAck, TCPSyn | TCPAck} {
		h := tcpHdr(1, 1, f, 100)
		seg, err := ParseTCPSegment(h, len(h))
		if err != nil {
			t.Fatal(err)
		}
		var st TCPState
		if TCPNew(&st, &seg, true) {
			t.Errorf("flags %#x opened a connection", f)
		}
	}
}

func TestTCPRetransmissions(t *testing.T) {
	c := newTCPConn(t)
	c.tm.TCPMaxRetrans = 250 * time.Second // tell it from the unacknowledged 300 s
	c.handshake()
	c.want(c.pkt(DirOriginal, TCPAck|TCPPsh, cISN+1, sISN+1, 502, 100), TCPAccept, TCPEstablished, 300*time.Second)
	for i := 1; i <= 3; i++ {
		r := c.pkt(DirOriginal, TCPAck|TCPPsh, cISN+1, sISN+1, 502, 100)
		if int(c.st.Retrans) != i {
			t.Fatalf("retrans %d, want %d", c.st.Retrans, i)
		}
		want := 300 * time.Second
		if i >= MaxRetrans {
			want = 250 * time.Second
		}
		c.want(r, TCPAccept, TCPEstablished, want)
	}
	// The ack resets the count.
	c.want(c.pkt(DirReply, TCPAck, sISN+1, cISN+101, 509, 0), TCPAccept, TCPEstablished, 5*day)
	if c.st.Retrans != 0 {
		t.Fatalf("retrans %d after ack", c.st.Retrans)
	}
	// A zero window: the max_retrans timeout too.
	c.want(c.pkt(DirReply, TCPAck, sISN+1, cISN+101, 0, 0), TCPAccept, TCPEstablished, 250*time.Second)
}

func TestTCPUnacknowledgedTimeout(t *testing.T) {
	c := newTCPConn(t)
	c.tm.TCPUnacknowledged = 200 * time.Second
	c.handshake()
	c.want(c.pkt(DirReply, TCPAck|TCPPsh, sISN+1, cISN+1, 509, 10), TCPAccept, TCPEstablished, 200*time.Second)
	// Shorter state timeouts win over it.
	c.want(c.pkt(DirOriginal, TCPFin|TCPAck, cISN+1, sISN+1, 502, 0), TCPAccept, TCPFinWait, 120*time.Second)
	c.want(c.pkt(DirReply, TCPAck, sISN+11, cISN+2, 509, 0), TCPAccept, TCPCloseWait, 60*time.Second)
}

func TestTCPFixedTimeout(t *testing.T) {
	c := newTCPConn(t)
	c.handshake()
	c.status |= StatusFixedTimeout
	c.expiry = 42 * time.Second
	r := c.pkt(DirOriginal, TCPAck|TCPPsh, cISN+1, sISN+1, 502, 100)
	c.want(r, TCPAccept, TCPEstablished, 42*time.Second)
}

// A SYN let through on an established connection, answered by a SYN/ACK
// that acknowledges it: the tracker resyncs from its notes.
func TestTCPIgnoredSynResync(t *testing.T) {
	c := establishedWithData(t)
	r := c.pkt(DirOriginal, TCPSyn, 777777, 0, 29200, 0, cat(optMSS, optSackPerm, optWS(9))...)
	c.want(r, TCPAccept, TCPEstablished, 5*day)
	if r.Mode != TCPTimeoutKeep || c.st.LastIndex != tcpSynSet || c.st.LastEnd != 777778 ||
		c.st.LastWScale != 9 || c.st.LastFlags != TCPFlagWindowScale|TCPFlagSackPerm {
		t.Fatalf("SYN not noted: %+v", c.st)
	}
	r = c.pkt(DirReply, TCPSyn|TCPAck, 333333, 777778, 28960, 0, cat(optMSS, optSackPerm, optWS(6))...)
	c.want(r, TCPAccept, TCPSynRecv, 60*time.Second)
	if s := c.st.Seen[0]; s.End != 777778 || s.Scale != 9 || s.MaxWin != 29200 {
		t.Fatalf("client side: %+v", s)
	}
	if s := c.st.Seen[1]; s.End != 333334 || s.Scale != 6 {
		t.Fatalf("server side: %+v", s)
	}
	c.want(c.pkt(DirOriginal, TCPAck, 777778, 333334, 229, 0), TCPAccept, TCPEstablished, 5*day)
}

// A SYN let through, answered by a RST: the RST closes the entry without
// window checks.
func TestTCPIgnoredSynRst(t *testing.T) {
	c := establishedWithData(t)
	c.pkt(DirOriginal, TCPSyn, 777777, 0, 29200, 0)
	c.want(c.pkt(DirReply, TCPRst|TCPAck, 0, 777778, 0, 0), TCPAccept, TCPClose, 10*time.Second)
}

// In LAST_ACK a SYN draws an RFC 5961 challenge ACK, which must not count
// as the last ACK.
func TestTCPChallengeAck(t *testing.T) {
	c := establishedWithData(t)
	c.pkt(DirOriginal, TCPFin|TCPAck, cISN+101, sISN+1, 502, 0)
	c.want(c.pkt(DirReply, TCPFin|TCPAck, sISN+1, cISN+102, 509, 0), TCPAccept, TCPLastAck, 30*time.Second)
	r := c.pkt(DirOriginal, TCPSyn, 888888, 0, 29200, 0)
	c.want(r, TCPAccept, TCPLastAck, 30*time.Second)
	if c.st.LastFlags&TCPFlagExpChallengeAck == 0 {
		t.Fatal("challenge ACK not expected")
	}
	r = c.pkt(DirReply, TCPAck, sISN+2, cISN+102, 509, 0)
	c.want(r, TCPAccept, TCPLastAck, 30*time.Second)
	if r.Mode != TCPTimeoutKeep || c.st.LastFlags&TCPFlagExpChallengeAck != 0 {
		t.Fatal("challenge ACK not ignored")
	}
	// The real last ACK.
	c.want(c.pkt(DirOriginal, TCPAck, cISN+102, sISN+2, 502, 0), TCPAccept, TCPTimeWait, 120*time.Second)
}

// An ACK from the server in SYN_SENT (a half-open connection, or a
// challenge ACK) is ignored and noted; a RST answering it closes.
func TestTCPHalfOpen(t *testing.T) {
	c := newTCPConn(t)
	c.pkt(DirOriginal, TCPSyn, cISN, 0, 65535, 0)
	r := c.pkt(DirReply, TCPAck, sISN+77, 123456, 1000, 0)
	c.want(r, TCPAccept, TCPSynSent, 120*time.Second)
	if c.st.LastAck != 123456 || c.st.LastIndex != tcpAckSet {
		t.Fatal("challenge ACK not noted")
	}
	// The client's RST with seq = that ack (after SEEN_REPLY was set by
	// the accepted reply).
	c.want(c.pkt(DirOriginal, TCPRst, 123456, 0, 0, 0), TCPAccept, TCPClose, 10*time.Second)
}

func TestTCPResultExpiry(t *testing.T) {
	r := TCPResult{Mode: TCPTimeoutSet, Timeout: time.Minute}
	if d, ok := r.Expiry(time.Hour); !ok || d != time.Minute {
		t.Fatal("set")
	}
	r.Mode = TCPTimeoutKeep
	if d, ok := r.Expiry(time.Hour); ok || d != time.Hour {
		t.Fatal("keep")
	}
	r = TCPResult{Mode: TCPTimeoutLower, Timeout: 300 * time.Second}
	for _, c := range []struct {
		in, out time.Duration
		ok      bool
	}{
		{5 * day, 300 * time.Second, true},
		{301 * time.Second, 300 * time.Second, true},
		{300 * time.Second, 300 * time.Second, false},
		{200 * time.Second, 200 * time.Second, false},
		{119 * time.Second, 119 * time.Second, false},
	} {
		if d, ok := r.Expiry(c.in); d != c.out || ok != c.ok {
			t.Errorf("lower %v: %v %v", c.in, d, ok)
		}
	}
}

func TestTCPParseSegment(t *testing.T) {
	h := tcpHdr(0x01020304, 0x05060708, TCPSyn|TCPAck|TCPEce, 0x1234, cat(optMSS, optSackPerm, optWS(3))...)
	seg, err := ParseTCPSegment(h, len(h)+7)
	if err != nil {
		t.Fatal(err)
	}
	want := TCPSegment{Seq: 0x01020304, Ack: 0x05060708, Sack: 0x05060708, PayloadLen: 7, Window: 0x1234,
		Flags: TCPSyn | TCPAck | TCPEce, HeaderLen: 32, OptFlags: TCPFlagSackPerm | TCPFlagWindowScale, WScale: 3}
	if seg != want {
		t.Fatalf("got %+v\nwant %+v", seg, want)
	}
	if seg.end() != 0x01020304+7+1 {
		t.Fatalf("end %d", seg.end())
	}

	// The checks of tcp_error.
	for _, c := range []struct {
		name   string
		b      []byte
		segLen int
		err    error
	}{
		{"short", make([]byte, 19), 19, ErrTCPTruncated},
		{"doff 4", func() []byte { b := tcpHdr(1, 1, TCPAck, 1); b[12] = 4 << 4; return b }(), 20, ErrTCPTruncated},
		{"doff 0", func() []byte { b := tcpHdr(1, 1, TCPAck, 1); b[12] = 0; return b }(), 20, ErrTCPTruncated},
		{"segLen under doff", tcpHdr(1, 1, TCPAck, 1, optMSS...), 23, ErrTCPTruncated},
		{"bytes under doff", tcpHdr(1, 1, TCPAck, 1, optMSS...)[:22], 100, ErrTCPTruncated},
		{"no flags", tcpHdr(1, 1, 0, 1), 20, ErrTCPFlags},
		{"SYN FIN", tcpHdr(1, 1, TCPSyn|TCPFin, 1), 20, ErrTCPFlags},
		{"FIN alone", tcpHdr(1, 1, TCPFin, 1), 20, ErrTCPFlags},
		{"ok", tcpHdr(1, 1, TCPFin|TCPAck|TCPPsh, 1, optMSS...), 24, nil},
		{"ok with payload bytes", cat(tcpHdr(1, 1, TCPAck, 1), []byte("data")), 24, nil},
	} {
		_, err := ParseTCPSegment(c.b, c.segLen)
		if !errors.Is(err, c.err) || (c.err == nil) != (err == nil) {
			t.Errorf("%s: %v, want %v", c.name, err, c.err)
		}
	}

	// tcp_valid_flags, written out: the allowed combinations of FIN,
	// SYN, RST, ACK and URG; PSH, ECE and CWR never matter.
	valid := map[uint8]bool{
		0x02: true, 0x22: true, 0x12: true, 0x04: true, 0x14: true,
		0x11: true, 0x31: true, 0x10: true, 0x30: true,
	}
	n := 0
	for f := 0; f < 256; f++ {
		got := TCPValidFlags(uint8(f))
		if got != valid[uint8(f)&0x37] {
			t.Errorf("flags %#x: valid %v", f, got)
		}
		if got {
			n++
		}
	}
	if n != 9*8 {
		t.Errorf("%d valid flag bytes, want 72", n)
	}
}

func TestTCPParseOptions(t *testing.T) {
	for _, c := range []struct {
		name   string
		opts   []byte
		flags  uint8
		wscale uint8
	}{
		{"none", nil, 0, 0},
		{"ws", optWS(7), TCPFlagWindowScale, 7},
		{"ws capped", optWS(15), TCPFlagWindowScale, 14},
		{"ws bad length", []byte{3, 4, 7, 0}, 0, 0},
		{"sackperm", optSackPerm, TCPFlagSackPerm, 0},
		{"sackperm bad length", []byte{4, 3, 0}, 0, 0},
		{"EOL stops", cat([]byte{0}, optWS(7)), 0, 0},
		{"silly length stops", cat([]byte{8, 1}, optWS(7)), 0, 0},
		{"after silly, what came before stays", cat(optSackPerm, []byte{8, 0}, optWS(7)), TCPFlagSackPerm, 0},
		{"partial option stops", cat(optSackPerm, []byte{3, 3}), TCPFlagSackPerm, 0},
		{"lone kind byte", cat(optNOP, optNOP, optNOP, []byte{3}), 0, 0},
		{"last ws wins", cat(optWS(3), optWS(5)), TCPFlagWindowScale, 5},
		{"timestamps skipped", cat([]byte{1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2}, optSackPerm, optWS(2)), TCPFlagSackPerm | TCPFlagWindowScale, 2},
	} {
		f, w := tcpParseOptions(c.opts)
		if f != c.flags || w != c.wscale {
			t.Errorf("%s: flags %#x scale %d, want %#x %d", c.name, f, w, c.flags, c.wscale)
		}
	}

	const ack = 1000
	for _, c := range []struct {
		name string
		opts []byte
		want uint32
	}{
		{"none", nil, ack},
		{"one block", optSACK(900, 1500), 1500},
		{"highest of blocks", optSACK(900, 1500, 1600, 2500, 1200, 1300), 2500},
		{"edge before ack", optSACK(100, 500), ack},
		{"wraps", []byte{5, 10, 0xff, 0xff, 0xff, 0, 0, 0, 0, 10}, ack}, // edge 10 is before 1000
		{"bad length skipped", cat([]byte{5, 6, 0, 0, 0, 0}, optSACK(1, 3000)), 3000},
		{"only the first SACK option", cat(optSACK(1, 1100), optSACK(1, 3000)), 1100},
		{"partial stops", []byte{5, 18, 0, 0, 0, 1, 0, 0, 0x0b, 0xb8}, ack},
		{"timestamps then sack", cat([]byte{1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2}, optSACK(1, 1234)), 1234},
	} {
		if got := tcpSackEdge(c.opts, ack); got != c.want {
			t.Errorf("sack %s: %d, want %d", c.name, got, c.want)
		}
	}
	// Near the wrap: an edge just after 2^32-1 counts.
	if got := tcpSackEdge(optSACK(0xfffffff0, 5), 0xfffffff0); got != 5 {
		t.Errorf("sack across the wrap: %d", got)
	}
}

// TCPState is stored per connection: keep it as compact as the kernel's
// ip_ct_tcp.
func TestTCPSizes(t *testing.T) {
	if n := unsafe.Sizeof(TCPState{}); n > 60 {
		t.Errorf("TCPState is %d bytes", n)
	}
	if n := unsafe.Sizeof(TCPSegment{}); n > 24 {
		t.Errorf("TCPSegment is %d bytes", n)
	}
}

func TestTCPZeroAlloc(t *testing.T) {
	syn := tcpHdr(cISN, 0, TCPSyn, 65535, cat(optMSS, optSackPerm, optWS(7))...)
	synack := tcpHdr(sISN, cISN+1, TCPSyn|TCPAck, 65535, cat(optMSS, optSackPerm, optWS(7))...)
	ack := tcpHdr(cISN+1, sISN+1, TCPAck, 500, optSACK(cISN, cISN+1)...)
	tm := DefaultTimeouts()
	cfg := DefaultTCPConfig()
	var sink TCPResult
	n := testing.AllocsPerRun(1000, func() {
		var st TCPState
		s, _ := ParseTCPSegment(syn, len(syn))
		if !TCPNew(&st, &s, true) {
			panic("new")
		}
		sink = TCPPacket(&st, DirOriginal, &s, 0, &tm, cfg)
		s, _ = ParseTCPSegment(synack, len(synack))
		sink = TCPPacket(&st, DirReply, &s, 0, &tm, cfg)
		s, _ = ParseTCPSegment(ack, len(ack)+100)
		sink = TCPPacket(&st, DirOriginal, &s, StatusSeenReply, &tm, cfg)
		_, _ = sink.Expiry(time.Hour)
		_, err := ParseTCPSegment(syn[:10], 10)
		_ = err
	})
	if n != 0 {
		t.Fatalf("%v allocations per run", n)
	}
	_ = sink
}

// FuzzTCPSegment feeds random headers through ParseTCPSegment, TCPNew and
// TCPPacket, on a fresh connection and on a state built from the input:
// nothing may panic, and the results must stay in range.
func FuzzTCPSegment(f *testing.F) {
	f.Add(tcpHdr(cISN, 0, TCPSyn, 65535, cat(optMSS, optSackPerm, optWS(7))...), uint16(0), []byte{})
	f.Add(tcpHdr(sISN, cISN+1, TCPSyn|TCPAck, 65535, optWS(20)...), uint16(0), []byte{1, 2, 3})
	f.Add(tcpHdr(7, 9, TCPAck|TCPPsh, 0, optSACK(1, 2, 3, 4)...), uint16(1400), []byte{3, 0, 0, 0, 0xff})
	f.Add(tcpHdr(0, 0, TCPRst, 0), uint16(0), []byte{7, 1, 4, 4, 0, 0, 0, 0})
	f.Add(tcpHdr(1, 1, TCPFin|TCPAck, 1, []byte{5, 18, 0}...), uint16(3), []byte{9, 1, 1, 1})
	f.Add([]byte{0, 1, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0xf0, 0x02, 0, 0, 0, 0, 0, 0}, uint16(0), []byte{})
	f.Fuzz(func(t *testing.T, hdr []byte, payload uint16, stateBytes []byte) {
		seg, err := ParseTCPSegment(hdr, len(hdr)+int(payload))
		if err != nil {
			return
		}
		if int(seg.HeaderLen) > len(hdr) || seg.HeaderLen < 20 || seg.WScale > 14 {
			t.Fatalf("bad segment %+v", seg)
		}
		tm := DefaultTimeouts()
		cfg := DefaultTCPConfig()
		var st TCPState
		if TCPNew(&st, &seg, true) {
			r := TCPPacket(&st, DirOriginal, &seg, 0, &tm, cfg)
			if r.Verdict > TCPDrop || st.State >= TCPMax {
				t.Fatalf("new: %+v state %v", r, st.State)
			}
			for _, d := range []Dir{DirReply, DirOriginal, DirReply} {
				r = TCPPacket(&st, d, &seg, StatusSeenReply, &tm, cfg)
				if r.Verdict > TCPDrop || st.State >= TCPMax {
					t.Fatalf("%+v state %v", r, st.State)
				}
			}
		}
		// An arbitrary state.
		at := func(i int) byte {
			if len(stateBytes) == 0 {
				return 0
			}
			return stateBytes[i%len(stateBytes)]
		}
		u32 := func(i int) uint32 {
			return uint32(at(i))<<24 | uint32(at(i+1))<<16 | uint32(at(i+2))<<8 | uint32(at(i+3))
		}
		st = TCPState{
			State: TCPConntrack(at(0) % uint8(TCPMax+1)), LastDir: Dir(at(1)), Retrans: at(2), LastIndex: at(3),
			LastSeq: u32(4), LastAck: u32(8), LastEnd: u32(12), LastWin: uint16(u32(16)), LastWScale: at(18), LastFlags: at(19),
		}
		for d := range st.Seen {
			o := 20 + 18*d
			st.Seen[d] = TCPSeen{End: u32(o), MaxEnd: u32(o + 4), MaxWin: u32(o + 8), MaxAck: u32(o + 12), Scale: at(o + 16), Flags: at(o + 17)}
		}
		cfg.BeLiberal = at(56)&1 != 0
		cfg.IgnoreInvalidRST = at(56)&2 != 0
		status := Status(at(57))
		r := TCPPacket(&st, Dir(at(58)), &seg, status, &tm, cfg)
		if r.Verdict > TCPDrop || (r.Verdict == TCPAccept && st.State >= TCPMax) {
			t.Fatalf("%+v state %v", r, st.State)
		}
	})
}
