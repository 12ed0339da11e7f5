package neigh

// rerollEvery is how often Tick draws the reachable time again, as
// neigh_periodic_work does every 300 s.
const rerollEvery = 300_000

// rebaseAge bounds how old a stored time may be: Tick moves older ones
// (12.4 days) to rebaseTo (6.2 days) ago, so that 32-bit millisecond
// differences never wrap (2^31 ms is 24.8 days) and an idle entry is
// rewritten once in 6 days, not at every sweep; every threshold is far
// below both.
const (
	rebaseAge = 1 << 30
	rebaseTo  = 1 << 29
)

// Tick is the housekeeping the kernel's timers and neigh_periodic_work
// do, called from one goroutine (never two Ticks at once; beside the
// workers is fine), every 100 ms or so, at now (nanoseconds, the workers'
// clock). Each call visits Config.TickBuckets buckets (8 slots each) from
// where the last one stopped, so its work is bounded however large the
// table; it returns how many entries it removed. For each entry it:
//
//   - applies the timer transitions due (REACHABLE → STALE, DELAY →
//     PROBE, INCOMPLETE and PROBE → FAILED: see the package comment);
//     Resolve and Poll apply them too when they meet the entry first;
//   - in a sweep (a visit of every bucket) that started while the
//     entry's family had GCThresh1 entries or more, removes a
//     FAILED entry (one that was FAILED when last seen and for
//     retrans_time since, so that the workers answered its held packets
//     first) and a STALE one unused for GCStaleTime; above GCThresh2 also
//     a STALE one not updated for 5 s;
//   - keeps its stored times within reach of 32-bit arithmetic.
//
// Every 300 s it draws the reachable time again.
func (t *Table) Tick(now int64) int {
	now32 := toMS(now)
	if !t.rerolled || !before(now32, t.rerollAt) {
		if t.rerolled {
			t.reroll()
		}
		t.rerollAt, t.rerolled = now32+rerollEvery, true
	}
	reach := t.reach.Load()
	removed := 0
	for range min(t.tickBuckets, len(t.buckets)) {
		b := t.cursor
		t.cursor = (t.cursor + 1) & t.mask
		if b == 0 {
			// A sweep starts: as neigh_periodic_work, collect in this
			// whole pass if the family has gc_thresh1 entries now.
			for f := range t.gcOn {
				t.gcOn[f] = t.counts[f].Load() >= int64(t.p.GCThresh1)
			}
		}
		dir := t.buckets[b].dir.Load()
		for j := range uint32(slotsPerBucket) {
			if dir>>(8*j)&0xff == 0 {
				continue
			}
			i := b*slotsPerBucket + j
			e, q, ok := t.slots[i].read()
			if !ok || e.state == StateNone {
				continue
			}
			ne := e
			tr := t.tm.advance(&ne, now32, reach)
			rebase(&ne, now32)
			if e.state == ne.state && t.collect(&ne, now32) {
				if t.remove(i, q, &e) {
					removed++
				}
				continue
			}
			if ne != e {
				t.cas(i, q, &e, &ne, tr)
			}
		}
	}
	return removed
}

// collect reports whether garbage collection removes e at now.
func (t *Table) collect(e *entry, now ms) bool {
	if e.state == StatePermanent {
		return false
	}
	f := e.key().family()
	if !t.gcOn[f] {
		return false
	}
	c := t.counts[f].Load()
	switch e.state {
	case StateFailed:
		return age(now, e.updated) >= t.tm.retrans
	case StateStale:
		used := e.used
		if before(used, e.confirmed) {
			used = e.confirmed
		}
		return age(now, used) >= t.tm.gcStale || c > int64(t.p.GCThresh2) && age(now, e.updated) >= 5000
	}
	return false
}

// rebase moves e's times older than rebaseAge up to it.
func rebase(e *entry, now ms) {
	for _, p := range [...]*ms{&e.updated, &e.confirmed, &e.used, &e.probeAt} {
		if int32(now-*p) > rebaseAge {
			*p = now - rebaseTo
		}
	}
}
