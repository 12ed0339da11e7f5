package conntrack

import (
	"strconv"
	"strings"
	"time"
)

// protoNames are the protocol names `conntrack -L` prints
// (libnetfilter_conntrack's proto2str); other protocols are "unknown".
var protoNames = map[uint8]string{
	ProtoICMP:    "icmp",
	ProtoTCP:     "tcp",
	ProtoUDP:     "udp",
	protoDCCP:    "dccp",
	47:           "gre",
	ProtoICMPv6:  "icmpv6",
	protoSCTP:    "sctp",
	protoUDPLite: "udplite",
}

// ProtoName returns protocol p's name as `conntrack -L` prints it: tcp,
// udp, udplite, icmp, icmpv6, sctp, gre, dccp, else "unknown".
func ProtoName(p uint8) string {
	if n, ok := protoNames[p]; ok {
		return n
	}
	return "unknown"
}

// Remaining returns the whole seconds left before e expires at now, as
// the kernel reports them to `conntrack -L` (ctnetlink_dump_timeout:
// nf_ct_expires(ct) / HZ, truncated, never below 0).
func (e *Entry) Remaining(now int64) int64 {
	d := e.Expires - now
	if d <= 0 {
		return 0
	}
	return d / int64(time.Second)
}

// Format returns e as one line of `conntrack -L` (conntrack-tools 1.4.7,
// its default output), at now:
//
//	tcp      6 431999 ESTABLISHED src=10.1.0.1 dst=10.1.0.2 sport=46734 dport=80 src=10.1.0.2 dst=10.1.0.1 sport=80 dport=46734 [ASSURED] mark=0 use=1
//	udp      17 29 src=10.1.0.1 dst=10.1.0.2 sport=55352 dport=5555 [UNREPLIED] src=10.1.0.2 dst=10.1.0.1 sport=5555 dport=55352 mark=0 use=1
//	icmpv6   58 29 src=fd00::1 dst=fd00::2 type=128 code=0 id=1904 src=fd00::2 dst=fd00::1 type=129 code=0 id=1904 mark=0 use=1
//
// The protocol name padded to 8 columns and its number; the seconds left
// (Remaining); TCP's state; the original tuple; [UNREPLIED] until a
// reply was seen; the reply tuple; [HW_OFFLOAD], else [OFFLOAD], else
// [ASSURED] (the kernel's order: they exclude each other); the mark; the
// zone when it is not 0; and use=1 (xdpfwd holds no references on an
// entry while it is listed, the kernel's use counts its own). IPv6 lines
// look the same: conntrack prints the family only with -o extended.
func (e *Entry) Format(now int64) string {
	var b strings.Builder
	b.Grow(192)
	e.writeLine(&b, e.Remaining(now), true, e.Tuple[DirOriginal].Proto == ProtoTCP)
	b.WriteString(" mark=")
	b.WriteString(strconv.FormatUint(uint64(e.Mark), 10))
	e.writeZone(&b)
	b.WriteString(" use=1")
	return b.String()
}

// writeLine writes what `conntrack -L` and `-E` lines share: the
// protocol's name (8 columns) and number, the seconds left (withSecs),
// TCP's state (withState), the original tuple, [UNREPLIED] until a reply
// was seen, the reply tuple, and [HW_OFFLOAD], else [OFFLOAD], else
// [ASSURED].
func (e *Entry) writeLine(b *strings.Builder, secs int64, withSecs, withState bool) {
	o, r := &e.Tuple[DirOriginal], &e.Tuple[DirReply]
	name := ProtoName(o.Proto)
	b.WriteString(name)
	for i := len(name); i < 8; i++ {
		b.WriteByte(' ')
	}
	b.WriteByte(' ')
	b.WriteString(strconv.Itoa(int(o.Proto)))
	b.WriteByte(' ')
	if withSecs {
		b.WriteString(strconv.FormatInt(secs, 10))
		b.WriteByte(' ')
	}
	if withState {
		b.WriteString(e.TCP.State.String())
		b.WriteByte(' ')
	}
	b.WriteString(o.String())
	b.WriteByte(' ')
	if e.Status&StatusSeenReply == 0 {
		b.WriteString("[UNREPLIED] ")
	}
	b.WriteString(r.String())
	switch {
	case e.Status&StatusHWOffload != 0:
		b.WriteString(" [HW_OFFLOAD]")
	case e.Status&StatusOffload != 0:
		b.WriteString(" [OFFLOAD]")
	case e.Status&StatusAssured != 0:
		b.WriteString(" [ASSURED]")
	}
}

// writeZone writes " zone=N" for an entry in a zone but 0.
func (e *Entry) writeZone(b *strings.Builder) {
	if z := e.Tuple[DirOriginal].Zone; z != 0 {
		b.WriteString(" zone=")
		b.WriteString(strconv.Itoa(int(z)))
	}
}
