package rules

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// The stateful expressions' state, shared by the workers: atomics, no
// locks. A Program owns its state; Engine.Swap hands the state of each
// unchanged rule (and named object) over to the new program, so counters,
// quotas and limits carry on across a reload.

// counter is a counter expression's or a named counter's state.
type counter struct {
	packets, bytes atomic.Uint64
}

func (c *counter) add(n uint32) {
	c.packets.Add(1)
	c.bytes.Add(uint64(n))
}

// limitState is a limit's token bucket, as the kernel's nft_limit keeps it
// (tokens, last) under a lock, here as one theoretical arrival time: tat
// is the time at which the bucket is full again. With tokens the bucket
// holds at now, tat = now + tokensMax - tokens; a packet of cost c fits
// when max(tat, now) + c - now ≤ tokensMax, and then advances tat by c.
// The bucket starts full (tat 0, the clock's start).
type limitState struct {
	tat atomic.Int64
}

// limitParams are a limit's constants, from nft_limit_init.
type limitParams struct {
	nsecs     uint64 // unit in ns
	rate      uint64
	tokensMax int64
	costPkt   int64 // packets: the cost of one packet
	bytes     bool
	invert    bool
}

// newLimitParams computes a limit's constants as nft_limit_init does, or
// reports why the kernel would refuse it.
func newLimitParams(l *Limit) (limitParams, string) {
	if l.Rate == 0 {
		return limitParams{}, "rate 0"
	}
	hi, nsecs := bits.Mul64(l.Unit, uint64(time.Second))
	if hi != 0 {
		return limitParams{}, "unit overflows"
	}
	burst := uint64(l.Burst)
	pkts := l.Type == LimitPackets
	if pkts && burst == 0 {
		burst = 5 // NFT_LIMIT_PKT_BURST_DEFAULT
	}
	rb, c := bits.Add64(l.Rate, burst, 0)
	if c != 0 {
		return limitParams{}, "rate and burst overflow"
	}
	p := limitParams{nsecs: nsecs, rate: l.Rate, bytes: !pkts, invert: l.Flags&LimitInvert != 0}
	var tokens uint64
	if pkts {
		cost := nsecs / l.Rate
		h, t := bits.Mul64(cost, burst)
		if h != 0 {
			return limitParams{}, "burst overflows"
		}
		tokens = t
		p.costPkt = clampInt64(cost)
	} else {
		h, t := bits.Mul64(nsecs, rb)
		if h != 0 {
			return limitParams{}, "rate and burst overflow"
		}
		tokens = t / l.Rate
	}
	p.tokensMax = clampInt64(tokens)
	return p, ""
}

func clampInt64(v uint64) int64 {
	if v > math.MaxInt64/4 {
		return math.MaxInt64 / 4
	}
	return int64(v)
}

// over takes the cost of a packet of n bytes from the bucket at now and
// reports whether the limit breaks the rule: over the rate (under it with
// invert), as nft_limit_eval.
func (s *limitState) over(p *limitParams, n uint32, now int64) bool {
	cost := p.costPkt
	if p.bytes {
		cost = clampInt64(p.nsecs * uint64(n) / p.rate) // u64 arithmetic, as the kernel's
	}
	for {
		t := s.tat.Load()
		base := max(t, now)
		if base+cost-now > p.tokensMax {
			// Not enough tokens: the kernel keeps what the bucket holds.
			return !p.invert
		}
		if s.tat.CompareAndSwap(t, base+cost) {
			return p.invert
		}
	}
}

// peek is over without taking the tokens: what over would say now, for
// a dry run.
func (s *limitState) peek(p *limitParams, n uint32, now int64) bool {
	cost := p.costPkt
	if p.bytes {
		cost = clampInt64(p.nsecs * uint64(n) / p.rate)
	}
	if max(s.tat.Load(), now)+cost-now > p.tokensMax {
		return !p.invert
	}
	return p.invert
}

// quotaState is a quota's bytes consumed and its depleted flag.
type quotaState struct {
	consumed atomic.Uint64
	depleted atomic.Bool
}

// quotaParams are a quota's constants.
type quotaParams struct {
	bytes  uint64
	invert bool
}

// over adds n bytes to what the quota consumed and reports whether it
// breaks the rule, as nft_quota: over the quota (consumed > bytes), or
// within it with invert ("quota over"). The quota is depleted once
// consumed reaches bytes.
func (s *quotaState) over(p *quotaParams, n uint32) bool {
	c := s.consumed.Add(uint64(n))
	if c >= p.bytes && !s.depleted.Load() {
		s.depleted.Store(true)
	}
	return (c > p.bytes) != p.invert
}

// peek is over without consuming: what over would say now, for a dry
// run.
func (s *quotaState) peek(p *quotaParams, n uint32) bool {
	return (s.consumed.Load()+uint64(n) > p.bytes) != p.invert
}

// gcra is a generic cell rate bucket shared by the workers: one event per
// interval, burst ahead at most.
type gcra struct {
	tat      atomic.Int64
	interval int64
	burst    int64
}

// take reports whether an event fits the bucket at now, and counts it.
func (g *gcra) take(now int64) bool {
	for {
		t := g.tat.Load()
		next := max(t, now) + g.interval
		if next-now > g.burst*g.interval {
			return false
		}
		if g.tat.CompareAndSwap(t, next) {
			return true
		}
	}
}

// room reports whether an event would fit at now.
func (g *gcra) room(now int64) bool {
	return max(g.tat.Load(), now)+g.interval-now <= g.burst*g.interval
}

// The kernel's ICMP rate limits, which its icmp_send and icmpv6_send apply
// to the errors reject sends at the IP hooks (sysctl defaults): a global
// bucket (icmp_msgs_per_sec 1000, icmp_msgs_burst 50) and one per
// destination (icmp_ratelimit 1 s, icmpv6 ratelimit 100 ms, a burst of 6,
// XRLIM_BURST_FACTOR).
const (
	icmpMsgsPerSec = 1000
	icmpMsgsBurst  = 50
	icmpPerDest4   = int64(time.Second)
	icmpPerDest6   = int64(100 * time.Millisecond)
	icmpDestBurst  = 6
	icmpDestSlots  = 4096
)

// icmpLimiter is the ICMP rate limit of rejects: global, then per
// destination (hashed into slots; a collision limits both).
type icmpLimiter struct {
	global         gcra
	slots4, slots6 []gcra
}

func newICMPLimiter() *icmpLimiter {
	l := &icmpLimiter{global: gcra{interval: int64(time.Second) / icmpMsgsPerSec, burst: icmpMsgsBurst},
		slots4: make([]gcra, icmpDestSlots), slots6: make([]gcra, icmpDestSlots)}
	for i := range l.slots4 {
		l.slots4[i].interval, l.slots4[i].burst = icmpPerDest4, icmpDestBurst
		l.slots6[i].interval, l.slots6[i].burst = icmpPerDest6, icmpDestBurst
	}
	return l
}

// allow reports whether an ICMP destination unreachable (of code code,
// IPv4 when v4) to dst may be sent at now: as the kernel, the global
// bucket must have room, the destination's must give a token, and only
// then is the global token spent. Fragmentation needed is never limited.
func (l *icmpLimiter) allow(v4 bool, code uint8, dst []byte, now int64) bool {
	if v4 && code == 4 {
		return true
	}
	if !l.global.room(now) {
		return false
	}
	var h uint64 = 14695981039346656037
	for _, c := range dst {
		h = (h ^ uint64(c)) * 1099511628211
	}
	slots := l.slots4
	if !v4 {
		slots = l.slots6
	}
	if !slots[h%icmpDestSlots].take(now) {
		return false
	}
	return l.global.take(now)
}
