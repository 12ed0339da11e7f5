package conntrack

import (
	"strconv"
	"strings"
)

// Format returns ev as one line of `conntrack -E` (conntrack-tools 1.4.7,
// its default output, without the trailing newline):
//
//	    [NEW] udp      17 30 src=10.1.0.1 dst=10.2.0.2 sport=40000 dport=5555 [UNREPLIED] src=10.2.0.2 dst=10.1.0.1 sport=5555 dport=40000
//	 [UPDATE] tcp      6 60 SYN_RECV src=10.1.0.1 dst=10.2.0.2 sport=47744 dport=80 src=10.2.0.2 dst=10.1.0.1 sport=80 dport=47744
//	[DESTROY] udp      17 src=10.1.0.1 dst=10.2.0.2 sport=40000 dport=5555 src=10.2.0.2 dst=10.1.0.1 sport=5555 dport=40000 [ASSURED]
//
// As ctnetlink builds the message (ctnetlink_conntrack_event): the type
// right-aligned in 9 columns; the protocol as in `conntrack -L`; the
// seconds left at the event (a DESTROY's only when not 0); a TCP
// connection's state in a NEW or UPDATE only when the state changed
// (IPCT_PROTOINFO), always in a DESTROY; the tuples with [UNREPLIED]
// between them until a reply was seen; [ASSURED] (or [OFFLOAD],
// [HW_OFFLOAD]); the mark when it is not 0 or the event is its change
// (IPCT_MARK); the zone when not 0; no use count (events carry none).
// progname, for an event a user-space request caused (Origin), is the
// requester's program name: " [USERSPACE] portid=PID progname=NAME"
// ends the line, as conntrack prints it (without progname when empty).
func (ev *Event) Format(progname string) string {
	var b strings.Builder
	b.Grow(200)
	name := "[" + ev.Type.String() + "]"
	for i := len(name); i < 9; i++ {
		b.WriteByte(' ')
	}
	b.WriteString(name)
	b.WriteByte(' ')
	e := &ev.Entry
	rem := e.Remaining(ev.Time)
	e.writeLine(&b, rem, ev.Type != EventDestroy || rem != 0,
		e.Tuple[DirOriginal].Proto == ProtoTCP && (ev.Type == EventDestroy || ev.Cause&CauseProtoInfo != 0))
	if e.Mark != 0 || ev.Cause&CauseMark != 0 {
		b.WriteString(" mark=")
		b.WriteString(strconv.FormatUint(uint64(e.Mark), 10))
	}
	e.writeZone(&b)
	if ev.Origin != 0 {
		b.WriteString(" [USERSPACE] portid=")
		b.WriteString(strconv.FormatUint(uint64(ev.Origin), 10))
		if progname != "" {
			b.WriteString(" progname=")
			b.WriteString(progname)
		}
	}
	return b.String()
}
