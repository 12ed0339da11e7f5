package conntrack

import (
	"encoding/binary"
	"math/rand/v2"
	"sync/atomic"
	"time"
)

// PacketResult is what the tracker decided for a packet (Prepare,
// Packet, Track).
type PacketResult uint8

// The packet results.
const (
	// PacketAccept: the packet is tracked; its State says how (new,
	// established, related).
	PacketAccept PacketResult = iota
	// PacketInvalid: the packet is not part of a valid connection (ct
	// state invalid); it passes on (the kernel's -NF_ACCEPT), the entry,
	// if any, keeps what the protocol tracker left in it. Counted as
	// Stats.Invalid.
	PacketInvalid
	// PacketDrop: drop the packet (NF_DROP): the table is full and early
	// drop found nothing to evict (Prepare), or a TCP packet wanted to
	// reopen a connection already being deleted (Packet).
	PacketDrop
	// PacketRepeat: a TCP SYN reopens a closed connection. Packet has
	// deleted the entry; process the packet again as the first of a new
	// connection (Prepare, or Track which does all of it), as the
	// kernel's nf_conntrack_in does on -NF_REPEAT.
	PacketRepeat
	// PacketStale: the reference no longer names a live entry (deleted,
	// expired, or its record reused): look the tuple up again.
	PacketStale
	// PacketAcceptGone: the packet is tracked, and its entry was deleted
	// as it passed (the kernel's nf_ct_kill_acct: a TCP connection whose
	// only answer was a RST). Worker.Gone holds the entry's last state,
	// which the packet keeps for the rest of its way, as the kernel's
	// skb keeps its reference to the dying conntrack.
	PacketAcceptGone
)

var packetResultNames = [...]string{"accept", "invalid", "drop", "repeat", "stale", "accept, entry gone"}

// String names the result.
func (r PacketResult) String() string {
	if int(r) < len(packetResultNames) {
		return packetResultNames[r]
	}
	return "unknown"
}

// ConfirmResult is what Confirm did.
type ConfirmResult uint8

// The confirm results.
const (
	// ConfirmInserted: the entry is in the table under both tuples.
	ConfirmInserted ConfirmResult = iota
	// ConfirmClash: another worker inserted the same connection
	// meanwhile and the clash was resolved as the kernel's
	// nf_ct_resolve_clash does: the returned reference is the entry the
	// packet continues with (the one already in the table, or, when that
	// one was NAT-translated differently, the new entry hashed in the
	// reply direction only with a 1 s fixed timeout). Counted as
	// Stats.ClashResolve.
	ConfirmClash
	// ConfirmDrop: nothing was inserted, drop the packet: a clash the
	// protocol does not allow to resolve (TCP, ICMP, …) or that could not
	// be (insert_failed), a chain too long (chaintoolong), or a table
	// that filled up since Prepare (drop).
	ConfirmDrop
)

var confirmResultNames = [...]string{"inserted", "clash", "drop"}

// String names the result.
func (r ConfirmResult) String() string {
	if int(r) < len(confirmResultNames) {
		return confirmResultNames[r]
	}
	return "unknown"
}

// The TCP state's words in rec.proto (encodeTCP).
const tcpStateWord = 9

func encodeTCP(s *TCPState, w *[protoWords]uint32) {
	for d := range 2 {
		q := &s.Seen[d]
		w[4*d], w[4*d+1], w[4*d+2], w[4*d+3] = q.End, q.MaxEnd, q.MaxWin, q.MaxAck
	}
	w[8] = uint32(s.Seen[0].Scale) | uint32(s.Seen[0].Flags)<<8 | uint32(s.Seen[1].Scale)<<16 | uint32(s.Seen[1].Flags)<<24
	w[9] = uint32(s.State) | uint32(s.LastDir)<<8 | uint32(s.Retrans)<<16 | uint32(s.LastIndex)<<24
	w[10], w[11], w[12] = s.LastSeq, s.LastAck, s.LastEnd
	w[13] = uint32(s.LastWin) | uint32(s.LastWScale)<<16 | uint32(s.LastFlags)<<24
}

func decodeTCP(w *[protoWords]uint32, s *TCPState) {
	for d := range 2 {
		q := &s.Seen[d]
		q.End, q.MaxEnd, q.MaxWin, q.MaxAck = w[4*d], w[4*d+1], w[4*d+2], w[4*d+3]
	}
	s.Seen[0].Scale, s.Seen[0].Flags = uint8(w[8]), uint8(w[8]>>8)
	s.Seen[1].Scale, s.Seen[1].Flags = uint8(w[8]>>16), uint8(w[8]>>24)
	s.State, s.LastDir, s.Retrans, s.LastIndex = TCPConntrack(w[9]), Dir(w[9]>>8), uint8(w[9]>>16), uint8(w[9]>>24)
	s.LastSeq, s.LastAck, s.LastEnd = w[10], w[11], w[12]
	s.LastWin, s.LastWScale, s.LastFlags = uint16(w[13]), uint8(w[13]>>16), uint8(w[13]>>24)
}

// allowClash reports whether the protocol resolves insertion clashes
// (nf_conntrack_l4proto.allow_clash in this kernel: UDP and UDP-Lite;
// GRE's too, whose tracker this package does not have).
func allowClash(proto uint8) bool { return proto == ProtoUDP || proto == protoUDPLite }

const protoUDPLite = 136

// ctState is the packet's state for a packet of an existing entry in
// direction dir with status st, as resolve_normal_ct sets ctinfo: a reply
// is established; an original-direction packet is established once a
// reply was seen, related if the entry is expected, else new.
func ctState(dir Dir, st Status) State {
	switch {
	case dir == DirReply || st&StatusSeenReply != 0:
		return StateEstablished
	case st&StatusExpected != 0:
		return StateRelated
	}
	return StateNew
}

// Prepare starts a new connection for a packet with tuple k (and, for
// TCP, segment seg; nil for other protocols) that Lookup did not find:
// the kernel's init_conntrack and the protocol's first packet. It fills
// e, which the caller keeps with the packet and passes to Confirm once
// the packet is accepted at the last hook (the kernel confirms only
// then); the reply tuple is k.Reverse(). The results:
//
//   - StateNew, PacketAccept: e is the new connection.
//   - StateInvalid, PacketInvalid: the packet cannot start one (an ICMP
//     type without a reply or that is no request, a TCP segment TCPNew or
//     the state machine refuses, an ICMP protocol on the wrong family).
//   - 0, PacketDrop: the table is full and early drop found nothing to
//     evict near k's bucket; drop the packet (as __nf_conntrack_alloc,
//     which checks before the protocol does).
func (w *Worker) Prepare(k *Tuple, seg *TCPSegment, now int64, e *Entry) (State, PacketResult) {
	return w.prepare(k, seg, now, e, false)
}

// prepare is Prepare; dry (a Simulator's packet) leaves the table alone:
// no early drop when it is full.
func (w *Worker) prepare(k *Tuple, seg *TCPSegment, now int64, e *Entry, dry bool) (State, PacketResult) {
	t := w.t
	t.see(now)
	reply, ok := k.Reverse()
	if !ok {
		w.Stats.Invalid++
		return StateInvalid, PacketInvalid
	}
	if !dry && t.count.Load() >= t.max {
		kk := keyOf(k)
		if w.earlyDrop(t.bucket(t.hash(&kk)), tickOf(now)) == 0 {
			t.gcDrop.Store(true)
			w.Stats.Drop++
			return 0, PacketDrop
		}
	}
	*e = Entry{Tuple: [2]Tuple{*k, reply}}
	if !t.newProto(e, seg, now) {
		w.Stats.Invalid++
		return StateInvalid, PacketInvalid
	}
	return StateNew, PacketAccept
}

// newProto runs the protocol's part of a new connection on e (the
// kernel's l4proto new and packet functions on an unconfirmed entry):
// the initial state and timeout. It reports false if the protocol
// refuses the packet.
func (t *Table) newProto(e *Entry, seg *TCPSegment, now int64) bool {
	k := &e.Tuple[0]
	switch k.Proto {
	case ProtoTCP:
		if seg == nil || !TCPNew(&e.TCP, seg, t.tcpCfg.Loose) {
			return false
		}
		res := TCPPacket(&e.TCP, DirOriginal, seg, 0, &t.tm, t.tcpCfg)
		if res.Verdict != TCPAccept {
			return false
		}
		e.Status |= res.SetStatus
		d, _ := res.Expiry(0)
		e.Expires = now + int64(d)
	case ProtoUDP:
		// nf_conntrack_udp_packet on an unconfirmed entry: the stream
		// time, and the unreplied timeout.
		e.UDPStreamAt = now + int64(2*time.Second)
		e.Expires = now + int64(t.tm.UDP)
	case protoUDPLite:
		e.Expires = now + int64(t.tm.UDP)
	case ProtoICMP, ProtoICMPv6:
		// nf_conntrack_icmp_packet / nf_conntrack_icmpv6_packet: only
		// on their own family, only a request opens a connection.
		if (k.Proto == ProtoICMP) != (k.Family == 4) || !IsICMPQuery(k.Family, uint8(k.DstPort>>8)) {
			return false
		}
		to := t.tm.ICMP
		if k.Proto == ProtoICMPv6 {
			to = t.tm.ICMPv6
		}
		e.Expires = now + int64(to)
	default:
		e.Expires = now + int64(t.tm.Generic)
	}
	return true
}

// Packet tracks one packet of the connection c refers to, in c's
// direction, at now: the kernel's nf_conntrack_in after the lookup found
// the entry. It runs the protocol's tracker (TCP: TCPPacket; UDP:
// nf_conntrack_udp_packet; ICMP and ICMPv6: nf_conntrack_icmp_packet;
// others: the generic tracker), refreshes the expiry, sets SEEN_REPLY on
// the first accepted reply and returns the packet's state and result
// (see PacketResult). seg is the TCP segment (nil for other protocols;
// a TCP packet without one is invalid). It never allocates; it waits only
// while the other direction's worker updates the same entry.
func (w *Worker) Packet(c Conn, seg *TCPSegment, now int64) (State, PacketResult) {
	t := w.t
	r := t.rec(c)
	if r == nil {
		return 0, PacketStale
	}
	nt := tickOf(now)
	if state, ok := t.packetNoop(r, c, nt, now); ok {
		return state, PacketAccept
	}
	s := lockRec(r)
	id := r.id.Load()
	if id&idLive == 0 || idGen(id) != c.gen() || expired(r.expires.Load(), nt) {
		unlockRec(r, s)
		return 0, PacketStale
	}
	dir := c.Dir()
	zs0 := r.zs.Load()
	zs := zs0
	on := t.evOn() // events: the one load this site costs without subscribers
	var st0 uint32
	if on && uint8(id) == ProtoTCP {
		st0 = r.proto[tcpStateWord].Load()
	}
	status := Status(zs & 0xffff)
	state := ctState(dir, status)
	res := PacketAccept
	kill := false
	if uint8(id) == ProtoTCP {
		res, kill = t.tcpPacket(r, dir, seg, status, now, &zs)
	} else {
		d, set := t.otherPacket(r, uint8(id), status, nt)
		t.refresh(r, status, now, d)
		zs |= uint32(set)
	}
	if res == PacketAccept && dir == DirReply {
		zs |= uint32(StatusSeenReply)
	}
	if zs != zs0 {
		r.zs.Store(zs)
	}
	var cause EventCause
	if on && !kill && (res == PacketAccept || res == PacketInvalid) {
		if cause = updateCause(r, id, zs0, zs, st0); cause != 0 {
			t.decode(r, c.idx(), id, &w.evBuf, now)
		}
	}
	unlockRec(r, s)
	if cause != 0 {
		t.emit(&w.ev, EventUpdate, cause, 0, now, &w.evBuf)
	}
	switch res {
	case PacketAccept:
		if kill {
			// nf_ct_kill_acct: the packet passes, the entry goes.
			t.Read(c, &w.Gone)
			w.Gone.Status |= StatusDying
			if t.kill(c.idx(), c.gen(), nil, 0, now) {
				if on {
					// The kernel reports the DESTROY before the packet
					// sets SEEN_REPLY: [UNREPLIED].
					w.evBuf = w.Gone
					w.evBuf.Status &^= StatusSeenReply &^ Status(zs0)
					t.emit(&w.ev, EventDestroy, 0, 0, now, &w.evBuf)
				}
				return state, PacketAcceptGone
			}
		}
		return state, PacketAccept
	case PacketRepeat:
		// tcp_packet: nf_ct_kill, then -NF_REPEAT; if the entry is
		// already being killed, NF_DROP (counted invalid and drop).
		if t.kill(c.idx(), c.gen(), &w.ev, 0, now) {
			return 0, PacketRepeat
		}
		w.Stats.Invalid++
		w.Stats.Drop++
		return StateInvalid, PacketDrop
	case PacketDrop:
		w.Stats.Invalid++
		w.Stats.Drop++
		return StateInvalid, PacketDrop
	}
	w.Stats.Invalid++
	return StateInvalid, PacketInvalid
}

// otherPacket is the tracker of every protocol but TCP for a packet of
// an entry with status st (record r, protocol proto) at tick nt: it
// returns the timeout to refresh the entry with and the status bits the
// packet sets.
//
//   - UDP (nf_conntrack_udp_packet): once a reply was seen, a flow still
//     active 2 s after its first packet is a stream: the stream timeout,
//     and ASSURED (never for a NAT clash entry).
//   - UDP-Lite (nf_conntrack_udplite_packet): the stream timeout and
//     ASSURED as soon as a reply was seen.
//   - ICMP, ICMPv6 and the generic tracker: their timeout.
func (t *Table) otherPacket(r *rec, proto uint8, st Status, nt uint32) (time.Duration, Status) {
	switch proto {
	case ProtoUDP, protoUDPLite:
		if st&StatusSeenReply == 0 || proto == ProtoUDP && int32(r.proto[0].Load()-nt) >= 0 {
			return t.tm.UDP, 0
		}
		if st&StatusNATClash != 0 {
			return t.tm.UDPStream, 0
		}
		return t.tm.UDPStream, StatusAssured
	case ProtoICMP:
		return t.tm.ICMP, 0
	case ProtoICMPv6:
		return t.tm.ICMPv6, 0
	}
	return t.tm.Generic, 0
}

// packetNoop is Packet, without the record lock, for a packet of a
// protocol other than TCP that changes nothing in its entry: its refresh
// gives the expiry the entry has (the same tick, about a millisecond) and
// it sets no status bit the entry lacks, as most packets of a busy flow.
// It reads the words between two equal loads of the sequence word, so
// they are a consistent copy, and the packet takes effect there (the
// kernel's nf_ct_refresh likewise writes the timeout only when it
// changes). It reports false, having done nothing, for any other packet:
// Packet then takes the record lock.
func (t *Table) packetNoop(r *rec, c Conn, nt uint32, now int64) (State, bool) {
	s := r.seq.Load()
	id := r.id.Load()
	if s&1 != 0 || id&idLive == 0 || idGen(id) != c.gen() || uint8(id) == ProtoTCP {
		return 0, false
	}
	exp, zs := r.expires.Load(), r.zs.Load()
	status, dir := Status(zs&0xffff), c.Dir()
	d, set := t.otherPacket(r, uint8(id), status, nt)
	if dir == DirReply {
		set |= StatusSeenReply
	}
	if expired(exp, nt) || status&set != set ||
		status&StatusFixedTimeout == 0 && deadline(now, d) != exp || r.seq.Load() != s {
		return 0, false
	}
	return ctState(dir, status), true
}

// refresh sets the expiry to now + d unless the entry has a fixed
// timeout: the kernel's nf_ct_refresh on a confirmed entry, which writes
// the timeout only when it changes.
func (t *Table) refresh(r *rec, status Status, now int64, d time.Duration) {
	if status&StatusFixedTimeout == 0 {
		if e := deadline(now, d); r.expires.Load() != e {
			r.expires.Store(e)
		}
	}
}

// tcpPacket is the TCP part of Packet, on the locked record r: it runs
// TCPPacket on the stored state and applies its result. It returns the
// packet's result, and whether the entry must be deleted after the
// packet is accepted.
func (t *Table) tcpPacket(r *rec, dir Dir, seg *TCPSegment, status Status, now int64, zs *uint32) (PacketResult, bool) {
	if seg == nil {
		return PacketInvalid, false
	}
	var w [protoWords]uint32
	for i := range w {
		w[i] = r.proto[i].Load()
	}
	var st TCPState
	decodeTCP(&w, &st)
	res := TCPPacket(&st, dir, seg, status, &t.tm, t.tcpCfg)
	if res.Verdict == TCPRepeat {
		return PacketRepeat, false
	}
	if res.Verdict == TCPDrop {
		return PacketDrop, false
	}
	old := w
	encodeTCP(&st, &w)
	for i := range w {
		if w[i] != old[i] { // each store is a locked instruction
			r.proto[i].Store(w[i])
		}
	}
	if status&StatusFixedTimeout == 0 {
		exp := r.expires.Load()
		rem := time.Duration(int64(int32(exp-tickOf(now))) << tickShift)
		if d, ok := res.Expiry(rem); ok && deadline(now, d) != exp {
			r.expires.Store(deadline(now, d))
		}
	}
	*zs |= uint32(res.SetStatus)
	if res.Verdict == TCPInvalid {
		return PacketInvalid, false
	}
	return PacketAccept, res.Kill
}

// Track is the whole of the kernel's nf_conntrack_in for a packet with
// tuple k (and TCP segment seg; hint is k's from PrefetchLine, or the
// zero Hint): Lookup, then Packet; on a miss, or when
// TCP reopens a closed connection (PacketRepeat), Prepare into e. It
// returns the packet's state, its result, and the reference when the
// packet belongs to an entry in the table; with StateNew and
// PacketAccept and no reference (ok false), e holds the new connection
// to Confirm once the packet is accepted.
func (w *Worker) Track(k *Tuple, hint Hint, seg *TCPSegment, now int64, e *Entry) (c Conn, ok bool, state State, res PacketResult) {
	for range 3 {
		c, ok = w.lookup(k, hint, now)
		if !ok {
			state, res = w.Prepare(k, seg, now, e)
			return 0, false, state, res
		}
		state, res = w.Packet(c, seg, now)
		if res != PacketRepeat && res != PacketStale {
			return c, true, state, res
		}
	}
	state, res = w.Prepare(k, seg, now, e)
	return 0, false, state, res
}

// Confirm inserts e, a connection Prepare made (its tuples, status, mark,
// expiry and protocol state as the packet's hooks left them), under both
// of its tuples: the kernel's __nf_conntrack_confirm, at the last hook
// for the packet that created it. See ConfirmResult; on ConfirmInserted
// and ConfirmClash the reference is what the packet continues with.
func (w *Worker) Confirm(e *Entry, now int64) (Conn, ConfirmResult) {
	t := w.t
	t.see(now)
	nt := tickOf(now)
	var k0, k1 key
	k0, k1 = keyOf(&e.Tuple[0]), keyOf(&e.Tuple[1])
	if k0.v6 != k1.v6 || k0.proto != k1.proto || k0.zone != k1.zone || (e.Tuple[0].Family != 4 && e.Tuple[0].Family != 6) {
		w.Stats.InsertFailed++
		w.Stats.Drop++
		return 0, ConfirmDrop
	}
	h0, h1 := t.hash(&k0), t.hash(&k1)
	// __nf_conntrack_alloc's bound, checked again: another worker may
	// have filled the table since Prepare.
	for try := 0; ; try++ {
		if t.count.Add(1) <= t.max {
			break
		}
		t.count.Add(-1)
		if try > 0 || w.earlyDrop(t.bucket(h0), nt) == 0 {
			t.gcDrop.Store(true)
			w.Stats.Drop++
			return 0, ConfirmDrop
		}
	}
	idx, ok := t.alloc()
	if !ok {
		t.count.Add(-1)
		w.Stats.Drop++
		return 0, ConfirmDrop
	}
	r := &t.slab[idx]
	l0, l1 := t.homeLine(h0), t.homeLine(h1)
	// Load the reply tuple's home line now, beside the record write
	// reads first: the two cache misses overlap, where after write's
	// stores (locked instructions, which wait for every load before
	// them) they would come one after the other.
	t.line(l1)[0].Load()
	id := t.write(r, idx, e)
	for range 4 {
		t.lockLines(l0, l1)
		hidx, hid, hdir, found, long := t.clashScan(h0, &k0, true)
		if !found && !long {
			hidx, hid, hdir, found, long = t.clashScan(h1, &k1, true)
		}
		if !found && !long && !t.publish(r, idx, id, h0, h1, false) {
			long = true // not reached: the index has room for every node
		}
		if long {
			t.unlockLines(l0, l1)
			t.drop(r, idx, id)
			w.Stats.ChainTooLong++
			w.Stats.InsertFailed++
			return 0, ConfirmDrop
		}
		if !found {
			t.unlockLines(l0, l1)
			if e.Status&StatusSrcNATDone != 0 {
				t.noteSource(idx, id, &e.Tuple[0])
			}
			if t.evOn() {
				w.emitNew(e, now)
			}
			w.Stats.Insert++
			return makeConn(idx, idGen(id), DirOriginal), ConfirmInserted
		}
		hr := &t.slab[hidx]
		if expired(hr.expires.Load(), nt) {
			// The lookup that preceded this would have reaped it
			// (nf_ct_gc_expired): reap it, and try again.
			t.unlockLines(l0, l1)
			t.kill(hidx, idGen(hid), &w.ev, 0, now)
			continue
		}
		c, res := t.resolveClash(r, idx, id, e, hr, hidx, hid, hdir, h1, &k1, nt)
		t.unlockLines(l0, l1)
		switch res {
		case ConfirmClash:
			w.Stats.ClashResolve++
		default:
			w.Stats.Drop++
			w.Stats.InsertFailed++
		}
		return c, res
	}
	t.drop(r, idx, id)
	w.Stats.Drop++
	w.Stats.InsertFailed++
	return 0, ConfirmDrop
}

// The kernel's bounds on a chain at confirmation: MIN_CHAINLEN plus a
// random part below MAX_CHAINLEN, times chainScale: the kernel's chain is
// one bucket's, about 2 nodes when the table is full (Buckets = Max); a
// probe here scans lines of about nodesPerLine nodes, as many as
// chainScale kernel buckets hold. A probe is that long only when the
// hash is flooded: random tuples in a full table of 10^6 entries make
// probes of at most 9 lines, 135 slots, against a bound of 250 to 400.
const (
	minChainLen = 50
	maxChainLen = 80 - minChainLen
	chainScale  = 8
)

// clashScan looks for a live entry with key k, whose hash is h, from its
// home line on, whose lock the caller holds (nf_ct_key_equal in
// __nf_conntrack_confirm). With bound, it reports whether the nodes met
// before the match or the end (the chain, here) are more than the
// kernel's bound (see chainScale; its random part is drawn only when a
// chain is that long).
func (t *Table) clashScan(h uint64, k *key, bound bool) (idx, id, dir uint32, found, long bool) {
	tag, mask := t.tagWord(h), uint32(1)<<t.nodeBits-1
	maxChain := -1
	l, first, chain := t.homeLine(h), firstSlot(h), 0
	for range t.nlines {
		ln := t.line(l)
		for j := range uint32(lineSlots) {
			s := first + j
			if s >= lineSlots {
				s -= lineSlots
			}
			w := ln[1+s].Load()
			if w == 0 {
				continue
			}
			if w&^mask == tag {
				n := w&mask - 1
				idx, dir = n>>1, n&1
				r := &t.slab[idx]
				id = r.id.Load()
				if t.matches(r, idx, id, dir, k) {
					return idx, id, dir, true, false
				}
			}
			if chain++; bound && chain > minChainLen*chainScale {
				if maxChain < 0 {
					maxChain = (minChainLen + rand.IntN(maxChainLen)) * chainScale
				}
				if chain > maxChain+1 {
					return 0, 0, 0, false, true
				}
			}
		}
		if ln[0].Load()>>overShift == 0 {
			break
		}
		l = t.nextLine(l)
	}
	return 0, 0, 0, false, false
}

// resolveClash is the kernel's nf_ct_resolve_clash, with the bucket
// locks held: the entry already in the table (record hr) won the race
// against e (record r, not yet published).
func (t *Table) resolveClash(r *rec, idx, id uint32, e *Entry, hr *rec, hidx, hid, hdir uint32, h1 uint64, k1 *key, nt uint32) (Conn, ConfirmResult) {
	if !allowClash(uint8(id)) {
		t.drop(r, idx, id)
		return 0, ConfirmDrop
	}
	if c, ok := t.resolveWith(hr, hidx, hid, e); ok {
		t.drop(r, idx, id)
		return c, ConfirmClash
	}
	// nf_ct_resolve_clash_harder: a clash in the reply direction too is
	// resolved only as above; else e goes in hashed in the reply
	// direction only, with a 1 s fixed timeout, never ASSURED.
	if ridx, rid, _, found, _ := t.clashScan(h1, k1, false); found {
		if c, ok := t.resolveWith(&t.slab[ridx], ridx, rid, e); ok {
			t.drop(r, idx, id)
			return c, ConfirmClash
		}
		t.drop(r, idx, id)
		return 0, ConfirmDrop
	}
	s := lockRec(r)
	r.zs.Store(r.zs.Load() | uint32(StatusFixedTimeout|StatusNATClash))
	r.expires.Store(nt + uint32(time.Second>>tickShift))
	unlockRec(r, s)
	if !t.publish(r, idx, id, 0, h1, true) {
		t.drop(r, idx, id) // not reached: the index has room for every node
		return 0, ConfirmDrop
	}
	return makeConn(idx, idGen(id), DirOriginal), ConfirmClash
}

// resolveWith is the kernel's __nf_ct_resolve_clash: the packet continues
// with the entry in the table (hr) if it was not NAT-translated or has
// the same tuples as e. The reference is in the direction whose tuple is
// e's original one (the original direction if none is, as the kernel
// keeps the packet's ctinfo).
func (t *Table) resolveWith(hr *rec, hidx, hid uint32, e *Entry) (Conn, bool) {
	var he Entry
	t.decode(hr, hidx, hid, &he, 0)
	if hr.id.Load() != hid {
		return 0, false
	}
	st := Status(hr.zs.Load())
	if st&(StatusSrcNATDone|StatusDstNATDone) != 0 && (he.Tuple[0] != e.Tuple[0] || he.Tuple[1] != e.Tuple[1]) {
		return 0, false
	}
	dir := DirOriginal
	if he.Tuple[1] == e.Tuple[0] {
		dir = DirReply
	}
	return makeConn(hidx, idGen(hid), dir), true
}

// write initialises free record idx with e and returns the identity it
// will be published with. The record is not live until publish stores
// that identity, so nothing reads these words meanwhile but snapshots,
// which a record that is not live fails, and a lookup's key comparison,
// which it fails too; so it takes no lock, and writes only the words the
// entry's family and protocol use (an IPv4 entry's addr[2, 3, 6, 7] and
// a UDP entry's proto[1:] keep what they held), and of those only the
// ones whose value changes: an atomic store is a locked instruction, some
// 6 ns, and a new entry often has the status, mark, server address or
// port its record's last one had.
func (t *Table) write(r *rec, idx uint32, e *Entry) uint32 {
	o, p := &e.Tuple[0], &e.Tuple[1]
	id := idGen(r.id.Load())<<idGenShift | uint32(o.Proto)
	store(&r.zs, uint32(o.Zone)<<16|uint32((e.Status|StatusConfirmed)&0xffff))
	store(&r.ports[0], uint32(o.SrcPort)<<16|uint32(o.DstPort))
	store(&r.ports[1], uint32(p.SrcPort)<<16|uint32(p.DstPort))
	if o.Family == 6 {
		id |= idV6
		for i := range 4 {
			store(&r.addr[i], binary.LittleEndian.Uint32(o.Src[4*i:]))
			store(&r.addr[4+i], binary.LittleEndian.Uint32(o.Dst[4*i:]))
		}
		if p.Src != o.Dst || p.Dst != o.Src {
			id |= idExt
			t.extOnce.Do(func() {
				x := make([]extRec, len(t.slab))
				t.ext.Store(&x)
			})
			x := &(*t.ext.Load())[idx]
			for i := range 4 {
				store(&x[i], binary.LittleEndian.Uint32(p.Src[4*i:]))
				store(&x[4+i], binary.LittleEndian.Uint32(p.Dst[4*i:]))
			}
		}
	} else {
		store(&r.addr[0], binary.LittleEndian.Uint32(o.Src[:]))
		store(&r.addr[4], binary.LittleEndian.Uint32(o.Dst[:]))
		store(&r.addr[1], binary.LittleEndian.Uint32(p.Src[:]))
		store(&r.addr[5], binary.LittleEndian.Uint32(p.Dst[:]))
	}
	store(&r.mark, e.Mark)
	store(&r.expires, tickCeil(e.Expires))
	switch o.Proto {
	case ProtoTCP:
		var w [protoWords]uint32
		encodeTCP(&e.TCP, &w)
		for i := range w {
			store(&r.proto[i], w[i])
		}
	case ProtoUDP:
		store(&r.proto[0], tickCeil(e.UDPStreamAt))
	}
	return id
}

// store stores v in w unless w holds it already.
func store(w *atomic.Uint32, v uint32) {
	if w.Load() != v {
		w.Store(v)
	}
}

// publish stores record idx's nodes, the original tuple's (hash h0)
// unless it is a clash entry, and the reply tuple's (h1), and makes it
// live: the kernel's __nf_conntrack_hash_insert, with the CONFIRMED bit.
// The caller holds the locks of both home lines. It reports false, and
// leaves the record as it was, if the index has no room (not reached).
func (t *Table) publish(r *rec, idx, id uint32, h0, h1 uint64, replyOnly bool) bool {
	l0, l1 := t.homeLine(h0), t.homeLine(h1)
	if !replyOnly && !t.place(l0, firstSlot(h0), t.slotWord(h0, idx<<1)) {
		return false
	}
	if !t.place(l1, firstSlot(h1), t.slotWord(h1, idx<<1|1)) {
		if !replyOnly {
			t.remove(l0, t.slotWord(h0, idx<<1))
		}
		return false
	}
	id |= idLive
	if replyOnly {
		id |= idReplyOnly
	}
	r.id.Store(id)
	return true
}

// drop frees record idx, written but never published.
func (t *Table) drop(r *rec, idx, id uint32) {
	s := lockRec(r)
	r.id.Store((idGen(id)+1)<<idGenShift | id&0xff)
	unlockRec(r, s)
	t.release(idx)
}
