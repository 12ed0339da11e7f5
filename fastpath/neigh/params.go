package neigh

import (
	"errors"
	"fmt"
	"time"

	"github.com/xdpfwd/xdpfwd/fastpath/header"
)

// Params are the neighbour parameters of the kernel's neigh_parms, one set
// for both families (the kernel keeps one per family and per device; this
// package does not do per-device parameters). Zero durations are taken
// literally, not as "default": start from DefaultParams.
type Params struct {
	// BaseReachableTime is base_reachable_time_ms: a confirmed entry
	// stays REACHABLE for a random time between 0.5 and 1.5 times this,
	// drawn again every 300 s (neigh_rand_reach_time).
	BaseReachableTime time.Duration
	// DelayFirstProbeTime is delay_first_probe_time: how long a used
	// STALE entry waits in DELAY before probing.
	DelayFirstProbeTime time.Duration
	// RetransTime is retrans_time_ms: the interval between solicitations.
	RetransTime time.Duration
	// UcastSolicit is ucast_solicit: unicast probes in PROBE before FAILED.
	UcastSolicit int
	// McastSolicit is mcast_solicit: broadcast ARP requests / multicast
	// neighbour solicitations in INCOMPLETE before FAILED. 0 turns
	// resolution off: only static, confirmed and learned entries resolve.
	McastSolicit int
	// AppSolicit is app_solicit, the probes the kernel asks a user-space
	// daemon (arpd) to make. There is no such daemon here: it must be 0.
	AppSolicit int
	// GCStaleTime is gc_stale_time: an unused STALE entry is removed
	// after this long (only while the family holds GCThresh1 entries or
	// more, as the kernel does).
	GCStaleTime time.Duration
	// UnresQLenBytes is unres_qlen_bytes: the bytes of packets one worker
	// holds for one unresolved neighbour, each packet counted at its
	// kernel truesize (Truesize); over it the oldest held packet is
	// dropped.
	UnresQLenBytes int
	// LockTime is locktime, for ARP only: an ARP packet that is not
	// gratuitous changes an entry's address only if the entry was not
	// updated within this time (the first of several answers wins).
	LockTime time.Duration
	// GCThresh1 is gc_thresh1: below this many entries of a family,
	// garbage collection removes nothing.
	GCThresh1 int
	// GCThresh2 is gc_thresh2: above this many entries of a family, Tick
	// also removes FAILED entries and STALE ones not updated for 5 s.
	GCThresh2 int
	// GCThresh3 is gc_thresh3: the most entries of a family, static ones
	// not counted. A new neighbour beyond it takes the place of a FAILED
	// or STALE entry not updated for 5 s, or is refused (TableFull).
	GCThresh3 int
}

// DefaultParams returns the kernel's defaults, as read on the kernel this
// was written on (6.18) from /proc/sys/net/ipv4/neigh/default/ (the IPv6
// ones are the same but locktime, 0, which only ARP uses):
//
//	base_reachable_time_ms 30000   delay_first_probe_time 5
//	retrans_time_ms 1000           ucast_solicit 3
//	mcast_solicit 3                app_solicit 0
//	gc_stale_time 60               locktime 100 (USER_HZ: 1 s)
//	unres_qlen_bytes 212992        unres_qlen 101
//	gc_thresh1 128  gc_thresh2 512  gc_thresh3 1024
//
// unres_qlen is not a setting of its own: the kernel shows
// unres_qlen_bytes divided by the truesize of a 1514-byte frame, 2112
// (Truesize(1514)), rounded up.
func DefaultParams() Params {
	return Params{
		BaseReachableTime:   30 * time.Second,
		DelayFirstProbeTime: 5 * time.Second,
		RetransTime:         time.Second,
		UcastSolicit:        3,
		McastSolicit:        3,
		AppSolicit:          0,
		GCStaleTime:         60 * time.Second,
		UnresQLenBytes:      212992,
		LockTime:            time.Second,
		GCThresh1:           128,
		GCThresh2:           512,
		GCThresh3:           1024,
	}
}

// maxTime bounds every duration: times are kept in 32-bit milliseconds,
// and differences must stay far inside int32.
const maxTime = 24 * time.Hour

// Validate reports the first parameter out of range, by its sysctl name.
func (p Params) Validate() error {
	durs := []struct {
		name string
		v    time.Duration
		min  time.Duration
	}{
		{"base_reachable_time_ms", p.BaseReachableTime, time.Millisecond},
		{"delay_first_probe_time", p.DelayFirstProbeTime, 0},
		{"retrans_time_ms", p.RetransTime, 10 * time.Millisecond},
		{"gc_stale_time", p.GCStaleTime, 0},
		{"locktime", p.LockTime, 0},
	}
	for _, d := range durs {
		if d.v < d.min || d.v > maxTime {
			return fmt.Errorf("neigh: %s %v out of range [%v, %v]", d.name, d.v, d.min, maxTime)
		}
	}
	ints := []struct {
		name     string
		v        int
		min, max int
	}{
		{"ucast_solicit", p.UcastSolicit, 0, 32},
		{"mcast_solicit", p.McastSolicit, 0, 32},
		{"unres_qlen_bytes", p.UnresQLenBytes, 0, 1 << 30},
		{"gc_thresh1", p.GCThresh1, 0, 1 << 20},
		{"gc_thresh2", p.GCThresh2, 0, 1 << 20},
		{"gc_thresh3", p.GCThresh3, 1, 1 << 20},
	}
	for _, n := range ints {
		if n.v < n.min || n.v > n.max {
			return fmt.Errorf("neigh: %s %d out of range [%d, %d]", n.name, n.v, n.min, n.max)
		}
	}
	if p.AppSolicit != 0 {
		return fmt.Errorf("neigh: app_solicit %d: there is no user-space resolver (arpd) to ask; it must be 0", p.AppSolicit)
	}
	if p.GCThresh1 > p.GCThresh2 || p.GCThresh2 > p.GCThresh3 {
		return fmt.Errorf("neigh: gc_thresh1 %d, gc_thresh2 %d, gc_thresh3 %d: each must be at most the next", p.GCThresh1, p.GCThresh2, p.GCThresh3)
	}
	return nil
}

// Truesize is what one held packet of length bytes counts against
// UnresQLenBytes: the kernel's SKB_TRUESIZE for a linear skb of that
// length on x86-64, SKB_DATA_ALIGN(length) + 576 (256 for struct sk_buff,
// 320 for struct skb_shared_info, each cache-line aligned). So the default
// bound holds what the kernel's does: 100 full 1514-byte frames (101 is
// the rounded-up figure /proc shows), 332 of 64 bytes.
func Truesize(length uint32) uint32 { return (length+63)&^63 + 576 }

// Config configures a Table. The table takes 64 bytes per slot, with
// room for both families at GCThresh3 and MaxStatic static entries in at
// most 3/4 of its slots, rounded up to a power of two of 8-slot buckets:
// 256 KiB with the defaults.
type Config struct {
	// Params are the state machine's parameters; the zero value is
	// invalid: start from DefaultParams.
	Params Params
	// MaxStatic bounds the PERMANENT entries (AddStatic), which
	// GCThresh3 does not count; 0 means 256.
	MaxStatic int
	// NoARP lists interfaces without address resolution (the kernel's
	// IFF_NOARP devices, a point-to-point link): every neighbour on one
	// resolves to its MAC (the kernel uses the device's own address) and
	// no entry is made.
	NoARP []NoARPInterface
	// TickBuckets bounds the work of one Tick call: buckets of 8 slots
	// visited; 0 means 64.
	TickBuckets int
	// Rand, if set, returns a uniform random number in [0, n); it draws
	// the randomized reachable time. Tests set it; nil uses math/rand/v2.
	Rand func(n uint64) uint64
}

// NoARPInterface is an interface whose neighbours need no resolution.
type NoARPInterface struct {
	// Iface is the interface id.
	Iface uint16
	// MAC is the destination MAC of every packet sent on it.
	MAC header.MAC
}

var errNoParams = errors.New("neigh: Config.Params is the zero value; start from DefaultParams()")
