package conntrack

import (
	"encoding/binary"
	"sync"
	"sync/atomic"

	"github.com/xdpfwd/xdpfwd/fastpath"
	"github.com/xdpfwd/xdpfwd/fastpath/header"
)

// Tracker is connection tracking in the pipeline: the subsystem that
// gives each worker the kernel's conntrack hooks over one shared Table.
//
//   - ip prerouting, priority -200 (NF_IP_PRI_CONNTRACK): routed packets
//     that came in are looked up (nf_conntrack_in); a packet of no
//     connection starts one, kept with the packet, unconfirmed;
//   - ip output, priority -200: the same for what the router itself sends
//     (echo replies, ICMP errors, TCP resets);
//   - ip input and ip postrouting, at their ends (NF_IP_PRI_CONNTRACK_CONFIRM,
//     before the router's local delivery and neighbour resolution): a new
//     connection whose packet got this far is confirmed into the table.
//
// Each packet leaves with Meta.CtState (what `ct state` matches) and
// Meta.CtRef (what Entry and SetMark read), for the stages after it: the
// rules, next NAT. Tracking runs only while enabled: as the kernel's, it
// is off until a ruleset needs it.
type Tracker struct {
	// table is the flow table, made on first need (newTable): a router
	// that never tracks does not carry it.
	table    atomic.Pointer[Table]
	newTable func() *Table
	enabled  atomic.Bool

	mu sync.Mutex // serialises Stages
	// workers are the workers' tracking states, by id: a slice replaced,
	// never changed, so that workers read it without a lock.
	workers atomic.Pointer[[]*trackWorker]
}

// NewTracker returns connection tracking over table t, disabled.
func NewTracker(t *Table) *Tracker {
	tr := &Tracker{}
	tr.table.Store(t)
	return tr
}

// NewLazyTracker returns connection tracking, disabled, whose table New
// makes from cfg only when tracking is first turned on or the table is
// first asked for (Table): as the kernel's conntrack allocates its hash
// table only once a rule needs it, a dataplane that never tracks does not
// carry it (262 144 entries are 32 MiB).
func NewLazyTracker(cfg Config) *Tracker {
	return &Tracker{newTable: func() *Table { return New(cfg) }}
}

// Table returns the flow table, making it if it is not made yet.
func (tr *Tracker) Table() *Table {
	if t := tr.table.Load(); t != nil {
		return t
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if t := tr.table.Load(); t != nil {
		return t
	}
	t := tr.newTable()
	tr.table.Store(t)
	return t
}

// SetEnabled turns tracking on or off for the batches that follow.
// Entries stay; a connection that goes on while tracking was off is picked
// up again as the kernel picks up a connection it has not seen the start
// of (TCP's loose mode).
func (tr *Tracker) SetEnabled(on bool) {
	if on {
		tr.Table() // made before any worker sees tracking on
	}
	tr.enabled.Store(on)
}

// Enabled reports whether tracking is on.
func (tr *Tracker) Enabled() bool { return tr.enabled.Load() }

// Stats returns each worker's counters as `conntrack -S` prints them per
// CPU, as last published (at the end of each batch). A Simulator's
// pipeline (one that ran dry runs) counts nothing and is left out.
func (tr *Tracker) Stats() []Stats {
	ws := tr.loadWorkers()
	out := make([]Stats, 0, len(ws))
	for _, w := range ws {
		if !w.simulated.Load() {
			out = append(out, w.published.load())
		}
	}
	return out
}

func (tr *Tracker) loadWorkers() []*trackWorker {
	if p := tr.workers.Load(); p != nil {
		return *p
	}
	return nil
}

// ExpireBudget is how many records one Expire call looks at.
const ExpireBudget = 65536

// Expire removes expired connections, a bounded slice of the table per
// call (the daemon calls it about once a second).
func (tr *Tracker) Expire(now fastpath.Time) int {
	t := tr.table.Load()
	if t == nil {
		return 0
	}
	return t.Expire(int64(now), ExpireBudget)
}

// Stages returns one worker's conntrack stages.
func (tr *Tracker) Stages() []fastpath.Attached {
	tr.mu.Lock()
	old := tr.loadWorkers()
	w := &trackWorker{tr: tr, id: uint32(len(old))}
	if t := tr.table.Load(); t != nil {
		w.cw = t.NewWorker()
	}
	ws := append(old[:len(old):len(old)], w)
	tr.workers.Store(&ws)
	tr.mu.Unlock()
	const (
		priorityConntrack = -200
		// Confirm after every other stage of the hook but the
		// router's local delivery (input) and neighbour resolution
		// (postrouting), which sit at PriorityLast and PriorityLast-1.
		priorityConfirm = fastpath.PriorityLast - 2
	)
	return []fastpath.Attached{
		fastpath.At(fastpath.HookPrerouting, priorityConntrack, &inStage{w: w, local: false}),
		fastpath.At(fastpath.HookOutput, priorityConntrack, &inStage{w: w, local: true}),
		fastpath.At(fastpath.HookInput, priorityConfirm, &confirmStage{w: w, input: true}),
		fastpath.At(fastpath.HookPostrouting, priorityConfirm, &confirmStage{w: w}),
	}
}

// Drop reasons of connection tracking.
var (
	// DropTableFull: a new connection found the table full and nothing
	// to evict (the kernel's "nf_conntrack: table full, dropping
	// packet").
	DropTableFull = fastpath.NewReason("conntrack", "table full")
	// DropInsertFailed: a new connection could not be confirmed (a clash
	// the protocol does not resolve, a chain too long).
	DropInsertFailed = fastpath.NewReason("conntrack", "insert failed")
	// DropTracker: the TCP tracker dropped the packet (a connection
	// reopened while being deleted).
	DropTracker = fastpath.NewReason("conntrack", "dropped by the tracker")
)

// maxPending bounds the unconfirmed connections of one batch: one per
// received and one per emitted packet.
const maxPending = fastpath.BatchSize + fastpath.MaxEmitted

// trackWorker is one worker's tracking state: its table handle, the
// connections its current batch started (unconfirmed, as the kernel keeps
// a new conntrack with its skb), and its published counters.
type trackWorker struct {
	tr *Tracker
	cw *Worker
	id uint32

	// in is the conntrack stage's first pass over its batch.
	in [maxPending]inPacket

	pending  [maxPending]Entry
	npending int
	// gone marks the pending slots that hold a deleted entry's last
	// state (PacketAcceptGone), not a connection to confirm.
	gone [maxPending]bool
	// pendingTuples counts, by pendingBit, the tuples pending
	// connections have or had: Taken scans the pending connections only
	// for a tuple whose count says another one may have it.
	pendingTuples [1 << pendingBits]uint16
	pendingMarked bool
	// batch counts the batches, for frags' unconfirmed references.
	batch uint64
	// frags remembers the tuple of the datagrams whose first fragment
	// was tracked, for their other fragments.
	frags [fragSlots]fragEntry

	published publishedStats
	last      Stats
	// simulated marks the worker of a Simulator's pipeline: it ran a
	// dry run, whose counts it drops (publish); set by the first stage
	// of its first dry batch.
	simulated atomic.Bool
	// explainBuf is the entry a trace's Explain reads, confirmed what
	// the confirm stage did to the batch's traced packets, by
	// Meta.Trace's low byte (trace.go).
	explainBuf   Entry
	confirmed    [256]ConfirmResult
	confirmedAny bool // confirmed has an entry since the last batch began
}

// CtRef encodings in Meta.CtRef: a confirmed connection is its Conn with
// refTable set; an unconfirmed one names its worker and slot.
const (
	refGone    = 1 << 61 // with refPending: not to confirm (a deleted entry's last state, a fragment's datagram)
	refTable   = 1 << 62
	refPending = 1 << 63
)

func tableRef(c Conn) uint64 { return uint64(c) | refTable }

func pendingRef(worker uint32, slot int) uint64 {
	return refPending | uint64(worker&0xffff)<<32 | uint64(slot&0x7fff)<<1
}

// pendingEntry returns the entry an unconfirmed (or deleted) connection's
// reference names: a slot of its worker's.
func (tr *Tracker) pendingEntry(ref uint64) *Entry {
	return &(*tr.workers.Load())[uint32(ref>>32)&0xffff].pending[int(ref>>1)&0x7fff]
}

// inStage is nf_conntrack_in at prerouting (packets that came in) or at
// output (packets the router sends).
type inStage struct {
	w     *trackWorker
	local bool
}

// Name returns "conntrack" and its hook.
func (s *inStage) Name() string {
	if s.local {
		return "conntrack ip output"
	}
	return "conntrack ip prerouting"
}

// Process tracks the batch's routed packets.
func (s *inStage) Process(b *fastpath.Batch, now fastpath.Time) {
	w := s.w
	if b.DryRun && !w.simulated.Load() {
		w.simulated.Store(true) // before NAT asks (Simulated)
	}
	if !s.local {
		w.npending = 0 // the previous batch's are confirmed or gone
		if w.confirmedAny {
			w.confirmed, w.confirmedAny = [256]ConfirmResult{}, false
		}
		if w.pendingMarked {
			w.pendingTuples = [1 << pendingBits]uint16{}
			w.pendingMarked = false
		}
		w.batch++
	}
	if !w.tr.enabled.Load() {
		return
	}
	if w.cw == nil {
		// Tracking turned on for the first time: SetEnabled made the
		// table before this worker could see it on.
		w.cw = w.tr.table.Load().NewWorker()
	}
	// Three passes, so that the batch's lookups miss the cache together
	// (PrefetchLine): the tuples, hashed, and their index lines
	// fetched; the records those lines point to fetched; then tracking.
	pkts := b.Packets[:b.Len]
	for i := range pkts {
		p := &pkts[i]
		in := &w.in[i]
		in.kind = tupleSkip
		if p.Action != fastpath.ActionContinue || !p.Routed && !p.Local || p.Local != s.local {
			continue
		}
		if s.local && (p.OutIface == 0 || p.L3Off == 0) {
			continue // not an IP packet the router routes out (ARP, a bridge's reject)
		}
		if p.CtState != 0 || p.CtRef != 0 {
			// notrack in a raw chain, already tracked, or a reset
			// that carries its rejected packet's connection.
			continue
		}
		if p.Fragment {
			in.kind = tupleFragment
			continue
		}
		in.kind = w.tuple(p, &in.k, &in.seg, true, !s.local && w.cw.t.checksum)
		if in.kind == tupleOK {
			in.hint = w.cw.PrefetchLine(&in.k)
		}
	}
	for i := range pkts {
		if in := &w.in[i]; in.kind == tupleOK {
			w.cw.PrefetchEntry(in.hint)
		}
	}
	for i := range pkts {
		switch in := &w.in[i]; in.kind {
		case tupleSkip:
		case tupleFragment:
			if p := &pkts[i]; b.DryRun && p.L4Off != 0 {
				// A first fragment, tracked as its datagram.
				p.Fragment = false
				in.kind, in.hint = w.tuple(p, &in.k, &in.seg, false, false), Hint{}
				w.trackDry(p, in, int64(now))
				p.Fragment = true
				continue
			}
			w.fragment(&pkts[i], int64(now))
		default:
			if b.DryRun {
				w.trackDry(&pkts[i], in, int64(now))
				continue
			}
			w.trackTuple(&pkts[i], in, int64(now))
		}
	}
}

// trackDry is trackTuple for a Simulator's packet: it changes no entry.
// A packet of a connection in the table gets the state the entry gives
// its direction (the TCP tracker does not run: a segment it would find
// invalid shows the entry's state); any other gets a new connection,
// unconfirmed, as trackTuple gives it (Prepare without early drop).
func (w *trackWorker) trackDry(p *fastpath.Packet, in *inPacket, now int64) {
	if in.kind != tupleOK {
		w.trackTuple(p, in, now) // invalid, untracked, related: no entry changes
		return
	}
	if c, ok := w.cw.lookup(&in.k, in.hint, now); ok {
		if st, ok := w.cw.t.Translated(c, 0, nil); ok {
			p.CtState, p.CtRef = uint8(ctState(c.Dir(), st)), tableRef(c)
			return
		}
	}
	if w.npending == len(w.pending) {
		return
	}
	var seg *TCPSegment
	if in.k.Proto == ProtoTCP {
		seg = &in.seg
	}
	state, res := w.cw.prepare(&in.k, seg, now, &w.pending[w.npending], true)
	p.CtState = uint8(state)
	if res == PacketAccept {
		w.keepPending(p)
	}
}

// inPacket is what the conntrack stage's first pass found in a packet:
// its tuple, TCP segment and hint.
type inPacket struct {
	k    Tuple
	seg  TCPSegment
	hint Hint
	kind tupleKind
}

// track is nf_conntrack_in for one packet: the first fragment of a
// datagram, whose transport checksum covers fragments not seen yet.
func (w *trackWorker) track(p *fastpath.Packet, now int64) {
	if p.Fragment {
		w.fragment(p, now)
		return
	}
	var in inPacket
	in.kind = w.tuple(p, &in.k, &in.seg, false, false)
	w.trackTuple(p, &in, now)
}

// trackTuple is nf_conntrack_in for a packet whose tuple the stage found.
func (w *trackWorker) trackTuple(p *fastpath.Packet, in *inPacket, now int64) {
	k := &in.k
	switch in.kind {
	case tupleNone:
		p.CtState = uint8(StateInvalid)
		w.cw.Stats.Invalid++
		return
	case tupleError:
		p.CtState = uint8(StateInvalid)
		w.cw.Stats.Error++
		return
	case tupleUntracked:
		p.CtState = uint8(StateUntracked)
		return
	case tupleICMPError:
		w.related(p, k, now)
		return
	}
	if w.npending == len(w.pending) {
		p.Drop(DropTracker) // bounded by the batch: not reached
		return
	}
	var segp *TCPSegment
	if k.Proto == ProtoTCP {
		segp = &in.seg
	}
	e := &w.pending[w.npending]
	c, ok, state, res := w.cw.Track(k, in.hint, segp, now, e)
	switch res {
	case PacketDrop:
		p.Drop(DropTableFull)
		if ok {
			p.Reason = DropTracker
		}
		return
	case PacketInvalid:
		p.CtState = uint8(StateInvalid)
		return
	}
	p.CtState = uint8(state)
	switch {
	case res == PacketAcceptGone:
		// The packet keeps the deleted entry's last state; it is not
		// confirmed again.
		*e = w.cw.Gone
		p.CtRef = pendingRef(w.id, w.npending) | refGone | uint64(c.Dir())
		w.gone[w.npending] = true
		w.npending++
	case ok:
		p.CtRef = tableRef(c)
	default:
		w.keepPending(p)
	}
}

// keepPending makes the next pending slot, which holds p's new
// connection, p's: unconfirmed, to be confirmed, counted by Taken.
func (w *trackWorker) keepPending(p *fastpath.Packet) {
	e := &w.pending[w.npending]
	p.CtRef = pendingRef(w.id, w.npending)
	w.gone[w.npending] = false
	w.npending++
	w.markPending(&e.Tuple[0])
	w.markPending(&e.Tuple[1])
}

// pendingBit is the counter of a tuple in pendingTuples: a hash of its
// ports and of the first and last words of its addresses (all of an IPv4
// address), which tell most tuples apart.
func pendingBit(k *Tuple) uint32 {
	le := binary.LittleEndian
	src := le.Uint32(k.Src[:]) ^ le.Uint32(k.Src[12:])
	dst := le.Uint32(k.Dst[:]) ^ le.Uint32(k.Dst[12:])
	h := (uint32(k.SrcPort)<<16|uint32(k.DstPort))*0x9e3779b1 ^ src*0x85ebca6b ^ dst*0xc2b2ae35
	return h >> (32 - pendingBits)
}

// pendingBits is the log2 of pendingTuples' size in bits.
const pendingBits = 9

// markPending records that a pending connection has tuple k, for Taken.
func (w *trackWorker) markPending(k *Tuple) {
	w.pendingTuples[pendingBit(k)]++
	w.pendingMarked = true
}

// othersMayHave reports whether a pending connection other than self may
// have tuple k: false when no tuple but self's has k's bit. (The count
// of a bit includes the tuples a connection had before a NAT binding
// changed it: it errs only towards scanning.)
func (w *trackWorker) othersMayHave(self *Entry, k *Tuple) bool {
	b := pendingBit(k)
	n := w.pendingTuples[b]
	for i := range self.Tuple {
		if pendingBit(&self.Tuple[i]) == b {
			n--
		}
	}
	return n > 0
}

// related is nf_conntrack_inet_error: an ICMP error belongs to the
// connection whose packet it quotes (k, the quoted packet's tuple), as
// related, if the error goes where that connection's packets in the
// found direction go; else it is invalid.
func (w *trackWorker) related(p *fastpath.Packet, k *Tuple, now int64) {
	inv, ok := k.Reverse()
	if !ok {
		p.CtState = uint8(StateInvalid)
		w.cw.Stats.Error++
		return
	}
	c, found := w.cw.Lookup(&inv, now)
	var e Entry
	if !found || !w.cw.Table().Read(c, &e) {
		p.CtState = uint8(StateInvalid)
		w.cw.Stats.Error++
		return
	}
	var outerDst [16]byte
	if k.Family == 4 {
		copy(outerDst[:4], p.Data[p.L3Off+16:p.L3Off+20])
	} else {
		copy(outerDst[:], p.Data[p.L3Off+24:p.L3Off+40])
	}
	if e.Tuple[c.Dir()].Dst != outerDst {
		p.CtState = uint8(StateInvalid)
		w.cw.Stats.Error++
		return
	}
	p.CtState, p.CtRef = uint8(StateRelated), tableRef(c)
}

// tupleKind is what a packet's headers make of it for tracking.
type tupleKind uint8

const (
	tupleOK        tupleKind = iota
	tupleNone                // no tuple: truncated, a fragment, a bad TCP header, a bad TCP or UDP checksum
	tupleError               // an ICMP message with a bad checksum (counted as an error, as the kernel's icmp_error)
	tupleUntracked           // ICMPv6 neighbour discovery and MLD
	tupleICMPError           // the tuple is the quoted packet's
	tupleFragment            // a fragment: tracked by its datagram's first (fragment)
	tupleSkip                // not the stage's to track
)

// fragSlots is the size of a worker's fragment memory.
const fragSlots = 256

// fragTimeout is how long the first fragment's tuple serves the others:
// the kernel's ipfrag_time.
const fragTimeout = 30e9

// fragEntry is a fragmented datagram: its key (addresses, protocol,
// identification), the tuple its first fragment was tracked with, and
// the first fragment's state and reference if it was unconfirmed in
// batch.
type fragEntry struct {
	key   fragKey
	tuple Tuple
	state State
	ref   uint64
	batch uint64
	at    int64
}

type fragKey struct {
	src, dst [16]byte
	id       uint32
	proto    uint8
	family   uint8
}

// fragment tracks a fragment. The kernel reassembles a datagram before
// conntrack sees it (nf_defrag) and tracks it once; xdpfwd forwards
// fragments as they are, so it tracks the datagram with its first
// fragment (which carries the transport header) and gives the others,
// matched by addresses, protocol and identification, the state and
// connection the first got. A fragment whose first fragment this worker
// has not seen (out of order, or on another queue) has no connection:
// ct state invalid.
func (w *trackWorker) fragment(p *fastpath.Packet, now int64) {
	key, ok := fragKeyOf(p)
	if !ok {
		p.CtState = uint8(StateInvalid)
		return
	}
	slot := &w.frags[fragHash(&key)%fragSlots]
	if p.L4Off != 0 { // the first fragment
		p.Fragment = false // tracked as the datagram
		w.track(p, now)
		var k Tuple
		var seg TCPSegment
		if w.tuple(p, &k, &seg, false, false) == tupleOK && p.CtState != uint8(StateInvalid) {
			*slot = fragEntry{key: key, tuple: k, state: State(p.CtState), ref: p.CtRef, batch: w.batch, at: now}
		}
		p.Fragment = true
		return
	}
	if slot.key != key || now-slot.at > fragTimeout {
		p.CtState = uint8(StateInvalid)
		w.cw.Stats.Invalid++
		return
	}
	if slot.batch == w.batch && slot.ref&refPending != 0 {
		// The first fragment's connection, unconfirmed: the first
		// fragment alone confirms it.
		p.CtState, p.CtRef = uint8(slot.state), slot.ref|refGone
		return
	}
	c, found := w.cw.Lookup(&slot.tuple, now)
	var e Entry
	if !found || !w.cw.Table().Read(c, &e) {
		p.CtState = uint8(StateInvalid)
		w.cw.Stats.Invalid++
		return
	}
	st := ctState(c.Dir(), e.Status)
	if slot.state == StateRelated {
		st = StateRelated
	}
	p.CtState, p.CtRef = uint8(st), tableRef(c)
}

// fragKeyOf returns the key of a fragment's datagram.
func fragKeyOf(p *fastpath.Packet) (fragKey, bool) {
	var k fragKey
	if p.L3Off == 0 {
		return k, false
	}
	ip := p.Data[p.L3Off:p.L3End]
	if p.EtherType == header.EtherTypeIPv4 {
		k.family, k.proto = 4, ip[9]
		k.id = uint32(binary.BigEndian.Uint16(ip[4:]))
		copy(k.src[:4], ip[12:16])
		copy(k.dst[:4], ip[16:20])
		return k, true
	}
	k.family = 6
	copy(k.src[:], ip[8:24])
	copy(k.dst[:], ip[24:40])
	nh, off := ip[6], header.IPv6Size
	for header.IsIPv6ExtHeader(nh) && off+8 <= len(ip) {
		if nh == header.IPv6Fragment {
			k.proto, k.id = ip[off], binary.BigEndian.Uint32(ip[off+4:])
			return k, true
		}
		nh, off = ip[off], off+header.IPv6ExtLength(nh, ip[off:])
	}
	return k, false
}

func fragHash(k *fragKey) uint32 {
	h := k.id*0x9e3779b1 ^ binary.LittleEndian.Uint32(k.src[:]) ^ binary.LittleEndian.Uint32(k.src[12:])*31 ^ uint32(k.proto)
	return h ^ h>>15
}

// tuple decodes p's tuple into k (and, for TCP, its segment into seg),
// as nf_ct_get_tuple and the protocols' error functions do; for an ICMP
// error, k is the tuple of the packet it quotes. whole is false for the
// first fragment of a datagram, which is shorter than its UDP length
// says. With verify (at prerouting, nf_conntrack_checksum on, and whole)
// a TCP, UDP, ICMP or ICMPv6
// checksum that is wrong makes the packet invalid, as those functions do
// for a packet the device did not check; a segment whose checksum the
// sender left for the device to finish (CHECKSUM_PARTIAL, which the
// kernel does not check either) and a UDP datagram without a checksum
// pass.
func (w *trackWorker) tuple(p *fastpath.Packet, k *Tuple, seg *TCPSegment, whole, verify bool) tupleKind {
	if p.L3Off == 0 || p.Fragment || p.L4Off == 0 {
		// xdpfwd does not reassemble: a fragment has no tuple here
		// (the kernel's defragmentation runs before conntrack).
		return tupleNone
	}
	l3 := p.Data[p.L3Off:p.L3End]
	l4 := p.Data[p.L4Off:p.L3End]
	if p.EtherType == header.EtherTypeIPv4 {
		k.Family = 4
		copy(k.Src[:4], l3[12:16])
		copy(k.Dst[:4], l3[16:20])
	} else {
		k.Family = 6
		copy(k.Src[:], l3[8:24])
		copy(k.Dst[:], l3[24:40])
	}
	k.Proto = p.L4Proto
	switch k.Proto {
	case ProtoTCP:
		var err error
		if *seg, err = ParseTCPSegment(l4, len(l4)); err != nil || verify && !l4Checksum(l3, l4, k.Family, k.Proto) {
			return tupleNone
		}
		k.SrcPort, k.DstPort = binary.BigEndian.Uint16(l4), binary.BigEndian.Uint16(l4[2:])
	case ProtoUDP:
		// udp_error: the length field within the datagram and not
		// below the header's.
		if len(l4) < header.UDPSize {
			return tupleNone
		}
		if n := int(binary.BigEndian.Uint16(l4[4:])); whole && (n > len(l4) || n < header.UDPSize) ||
			verify && binary.BigEndian.Uint16(l4[6:]) != 0 && !l4Checksum(l3, l4, k.Family, k.Proto) {
			return tupleNone
		}
		k.SrcPort, k.DstPort = binary.BigEndian.Uint16(l4), binary.BigEndian.Uint16(l4[2:])
	case protoUDPLite, protoDCCP, protoSCTP:
		if len(l4) < 4 {
			return tupleNone
		}
		k.SrcPort, k.DstPort = binary.BigEndian.Uint16(l4), binary.BigEndian.Uint16(l4[2:])
	case ProtoICMP, ProtoICMPv6:
		if len(l4) < 8 {
			return tupleNone
		}
		if verify && !l4Checksum(l3, l4, k.Family, k.Proto) {
			return tupleError
		}
		typ := l4[0]
		if k.Family == 6 && typ != 0 && k.Proto == ProtoICMPv6 && icmpv6Untracked(typ) {
			return tupleUntracked
		}
		if IsICMPError(k.Proto, typ) {
			return quotedTuple(l4[8:], k)
		}
		k.SrcPort, k.DstPort = binary.BigEndian.Uint16(l4[4:]), uint16(typ)<<8|uint16(l4[1])
	}
	return tupleOK
}

// The port protocols tracked by ports beyond TCP and UDP.
const (
	protoDCCP = 33
	protoSCTP = 132
)

// IsICMPError reports whether a message of protocol proto (ICMP or
// ICMPv6) and type typ is an error conntrack relates to the connection it
// quotes: the kernel's icmp_is_err for ICMP (destination unreachable,
// source quench, redirect, time exceeded, parameter problem), every type
// below 128 for ICMPv6.
func IsICMPError(proto, typ uint8) bool {
	switch proto {
	case ProtoICMP:
		switch typ {
		case header.ICMPv4DestUnreachable, 4 /* source quench */, 5 /* redirect */, header.ICMPv4TimeExceeded, header.ICMPv4ParameterProblem:
			return true
		}
	case ProtoICMPv6:
		return typ < 128
	}
	return false
}

// l4Checksum reports whether the transport checksum of segment l4, in
// IP packet l3 of family, is right, or left for the device to finish
// (TCP and UDP: the field holds the pseudo-header sum).
func l4Checksum(l3, l4 []byte, family, proto uint8) bool {
	var pseudo uint16
	switch {
	case proto == ProtoICMP:
		return header.Checksum(l4, 0) == 0xffff
	case family == 4:
		pseudo = header.IPv4(l3).PseudoHeaderChecksum(proto, uint16(len(l4)))
	default:
		pseudo = header.IPv6(l3).PseudoHeaderChecksum(proto, uint32(len(l4)))
	}
	if _, partial := header.PartialChecksum(proto, pseudo, l4); partial {
		return true // one compare, before the sum over the segment
	}
	return header.Checksum(l4, pseudo) == 0xffff
}

// icmpv6Untracked is the kernel's noct_valid_new: MLD and neighbour
// discovery messages are never tracked.
func icmpv6Untracked(typ uint8) bool {
	switch typ {
	case 130, 131, 132, 133, 134, 135, 136, 143:
		return true
	}
	return false
}

// quotedTuple decodes the tuple of the packet an ICMP error quotes (q:
// its IP header and at least 8 bytes of what follows) into k (whose
// family is the error's).
func quotedTuple(q []byte, k *Tuple) tupleKind {
	var l4 []byte
	if k.Family == 4 {
		if len(q) < header.IPv4MinSize {
			return tupleNone
		}
		ip := header.IPv4(q)
		hl := ip.HeaderLength()
		if ip.Version() != 4 || hl < header.IPv4MinSize || len(q) < hl || ip.FragmentOffset() != 0 {
			return tupleNone
		}
		*k = Tuple{Family: 4, Proto: ip.Protocol()}
		copy(k.Src[:4], q[12:16])
		copy(k.Dst[:4], q[16:20])
		l4 = q[hl:]
	} else {
		if len(q) < header.IPv6Size || q[0]>>4 != 6 {
			return tupleNone
		}
		off, proto, _, ok := header.IPv6SkipExthdr(q)
		if !ok || off > len(q) {
			return tupleNone
		}
		*k = Tuple{Family: 6, Proto: proto}
		copy(k.Src[:], q[8:24])
		copy(k.Dst[:], q[24:40])
		l4 = q[off:]
	}
	switch k.Proto {
	case ProtoTCP, ProtoUDP, protoUDPLite, protoDCCP, protoSCTP:
		if len(l4) < 4 {
			return tupleNone
		}
		k.SrcPort, k.DstPort = binary.BigEndian.Uint16(l4), binary.BigEndian.Uint16(l4[2:])
	case ProtoICMP, ProtoICMPv6:
		if len(l4) < 8 {
			return tupleNone
		}
		k.SrcPort, k.DstPort = binary.BigEndian.Uint16(l4[4:]), uint16(l4[0])<<8|uint16(l4[1])
	}
	return tupleICMPError
}

// confirmStage is nf_conntrack_confirm at the end of ip input (packets
// for the router) or of ip postrouting (the others).
type confirmStage struct {
	w     *trackWorker
	input bool
}

// Name returns "conntrack confirm" and its hook.
func (s *confirmStage) Name() string {
	if s.input {
		return "conntrack confirm ip input"
	}
	return "conntrack confirm ip postrouting"
}

// Process confirms the new connections of the packets that got here.
func (s *confirmStage) Process(b *fastpath.Batch, now fastpath.Time) {
	w := s.w
	if w.npending > 0 {
		for i := range b.Packets[:b.Len] {
			p := &b.Packets[i]
			if p.Action != fastpath.ActionContinue || p.CtRef&refPending == 0 || p.CtRef&refGone != 0 || p.RouteLocal != s.input {
				continue
			}
			if Dir(p.CtRef&1) == DirReply {
				continue // only the original direction confirms (nf_conntrack_confirm)
			}
			if b.DryRun {
				if p.Trace != 0 {
					w.traceConfirm(p, confirmDry)
				}
				continue
			}
			c, res := w.cw.Confirm(w.tr.pendingEntry(p.CtRef), int64(now))
			if p.Trace != 0 {
				w.traceConfirm(p, res)
			}
			if res == ConfirmDrop {
				p.Drop(DropInsertFailed)
				continue
			}
			p.CtRef = tableRef(c)
		}
	}
	if !s.input {
		w.publish(b.DryRun)
	}
}

// Entry copies the connection of a packet in this worker's pipeline into
// e (confirmed or not) and reports whether it has one: for the rules'
// ct expressions, run by the same worker.
func (tr *Tracker) Entry(p *fastpath.Packet, e *Entry) bool {
	switch {
	case p.CtRef&refPending != 0:
		*e = *tr.pendingEntry(p.CtRef)
		return true
	case p.CtRef&refTable != 0:
		return tr.table.Load().Read(Conn(p.CtRef&^refTable), e)
	}
	return false
}

// Translated returns the status of a packet's connection (confirmed or
// not) and, if it has one of the NAT status bits in want, fills out with
// the tuple the packet carries once translated both ways
// (Table.Translated); false if the packet has no connection.
func (tr *Tracker) Translated(p *fastpath.Packet, want Status, out *Tuple) (Status, bool) {
	switch {
	case p.CtRef&refPending != 0:
		e := tr.pendingEntry(p.CtRef)
		if e.Status&want != 0 {
			*out = e.Tuple[1-tr.Dir(p)].Inverse()
		}
		return e.Status, true
	case p.CtRef&refTable != 0:
		return tr.table.Load().Translated(Conn(p.CtRef&^refTable), want, out)
	}
	return 0, false
}

// Pending returns the connection of a packet in this worker's pipeline
// that is not confirmed yet, for a NAT binding to change before it is
// (nf_nat_setup_info works on unconfirmed conntracks only); ok is false
// for a packet of a confirmed connection or of none.
func (tr *Tracker) Pending(p *fastpath.Packet) (e *Entry, ok bool) {
	if p.CtRef&refPending == 0 || p.CtRef&refGone != 0 {
		return nil, false
	}
	return tr.pendingEntry(p.CtRef), true
}

// Simulated reports whether p, a packet of a new connection not
// confirmed yet (Pending), belongs to a Simulator's dry run, for NAT,
// which must count nothing for it. For a packet of a confirmed
// connection, or of none, it cannot tell and reports false.
func (tr *Tracker) Simulated(p *fastpath.Packet) bool {
	if p.CtRef&refPending == 0 {
		return false
	}
	return (*tr.workers.Load())[uint32(p.CtRef>>32)&0xffff].simulated.Load()
}

// SetReply sets the reply tuple of a packet's unconfirmed connection
// (Pending), as a NAT binding does (nf_nat_setup_info's
// nf_conntrack_alter_reply).
func (tr *Tracker) SetReply(p *fastpath.Packet, reply *Tuple) {
	e, ok := tr.Pending(p)
	if !ok {
		return
	}
	e.Tuple[1] = *reply
	(*tr.workers.Load())[uint32(p.CtRef>>32)&0xffff].markPending(reply)
}

// SameSource fills reply with the reply tuple of the n-th newest
// connection (from 0) from the source of orig that went through source
// NAT setup, and reports whether there is one (find_appropriate_src's
// walk): first the connections of p's batch set up before p's (the
// kernel confirms each before the next packet), then the table's
// (Table.SameSource).
func (tr *Tracker) SameSource(p *fastpath.Packet, orig *Tuple, n int, reply *Tuple) bool {
	w := (*tr.workers.Load())[uint32(p.CtRef>>32)&0xffff]
	self := int(p.CtRef>>1) & 0x7fff
	for i := self - 1; i >= 0; i-- {
		e := &w.pending[i]
		o := &e.Tuple[0]
		if w.gone[i] || e.Status&StatusSrcNATDone == 0 || o.SrcPort != orig.SrcPort || o.Src != orig.Src ||
			o.Proto != orig.Proto || o.Zone != orig.Zone || o.Family != orig.Family {
			continue
		}
		if n == 0 {
			*reply = e.Tuple[1]
			return true
		}
		n--
	}
	return tr.table.Load().SameSource(orig, n, reply)
}

// Taken reports whether a connection in the table has tuple k, original
// or reply (the kernel's nf_conntrack_tuple_taken), looked up by the
// worker whose unconfirmed connection p has (Pending).
func (tr *Tracker) Taken(p *fastpath.Packet, k *Tuple, now int64) bool {
	w := (*tr.workers.Load())[uint32(p.CtRef>>32)&0xffff]
	if _, ok := w.cw.Lookup(k, now); ok {
		return true
	}
	// The kernel binds and confirms one packet at a time; a batch binds
	// its new connections before any is confirmed: the others of this
	// batch count as taken too (but the copies of deleted entries).
	self := int(p.CtRef>>1) & 0x7fff
	if !w.othersMayHave(&w.pending[self], k) {
		return false
	}
	for i := range w.npending {
		if i == self || w.gone[i] {
			continue
		}
		e := &w.pending[i]
		// Ports first: they tell most tuples apart for the price of one
		// compare.
		if e.Tuple[1].SrcPort == k.SrcPort && e.Tuple[1].DstPort == k.DstPort && e.Tuple[1] == *k ||
			e.Tuple[0].SrcPort == k.SrcPort && e.Tuple[0].DstPort == k.DstPort && e.Tuple[0] == *k {
			return true
		}
	}
	return false
}

// Dir returns the direction of a tracked packet in its connection.
func (tr *Tracker) Dir(p *fastpath.Packet) Dir { return Dir(p.CtRef & 1) }

// SetMark sets the connection mark of a packet's connection (ct mark
// set), if it has one.
func (tr *Tracker) SetMark(p *fastpath.Packet, mark uint32) {
	switch {
	case p.CtRef&refPending != 0:
		tr.pendingEntry(p.CtRef).Mark = mark
	case p.CtRef&refTable != 0:
		if t := tr.table.Load(); t.evOn() { // the UPDATE's time
			t.SetMarkAt(Conn(p.CtRef&^refTable), mark, int64(fastpath.MonotonicClock()))
			return
		}
		tr.table.Load().SetMark(Conn(p.CtRef&^refTable), mark)
	}
}

// publishedStats is a worker's Stats as others may read them.
type publishedStats struct {
	v [statsFields]atomic.Uint64
}

func (s *publishedStats) load() Stats {
	var a [statsFields]uint64
	for i := range a {
		a[i] = s.v[i].Load()
	}
	return statsFromArray(a)
}

// publish makes the worker's counters readable by Stats, storing only
// what changed since the last batch. A dry run's counts are dropped: a
// Simulator's packets change no counter.
func (w *trackWorker) publish(dry bool) {
	if w.cw == nil {
		return
	}
	if dry {
		w.cw.Stats = w.last
		return
	}
	cur := w.cw.Stats
	if cur == w.last {
		return
	}
	a := statsArray(cur)
	old := statsArray(w.last)
	for i := range a {
		if a[i] != old[i] {
			w.published.v[i].Store(a[i])
		}
	}
	w.last = cur
}

// statsFields is the number of counters in Stats.
const statsFields = 10

func statsArray(s Stats) [statsFields]uint64 {
	return [statsFields]uint64{s.Found, s.Invalid, s.Insert, s.InsertFailed, s.Drop, s.EarlyDrop, s.Error, s.SearchRestart, s.ClashResolve, s.ChainTooLong}
}

func statsFromArray(a [statsFields]uint64) Stats {
	return Stats{Found: a[0], Invalid: a[1], Insert: a[2], InsertFailed: a[3], Drop: a[4], EarlyDrop: a[5], Error: a[6], SearchRestart: a[7], ClashResolve: a[8], ChainTooLong: a[9]}
}
