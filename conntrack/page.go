package conntrack

// Page is Walk one bounded slice at a time, for listings that must not
// hold anything for long (the control socket's `ct list`): it reads the
// records from cursor on, at most scan of them, calling fn with a copy
// of each live entry not expired at now (the entries Walk shows), until
// fn returns false. It returns the cursor of the next page, 0 when the
// slab is done.
//
// The order is the slab's: records in the order they were first used,
// freed ones reused newest first. That is not `conntrack -L`'s order
// (the kernel dumps hash bucket by bucket). As with the kernel's dump,
// entries added or deleted while a listing pages through the table may
// or may not show; an entry is never shown twice within one page, and
// entries that stay are shown exactly once.
func (t *Table) Page(now int64, cursor uint32, scan int, fn func(*Entry) bool) (next uint32) {
	hi := min(t.bump.Load(), uint32(len(t.slab)))
	if scan <= 0 {
		scan = 1
	}
	var e Entry
	i := cursor
	for ; i < hi && scan > 0; i++ {
		scan--
		if !t.listed(i, &e, now) {
			continue
		}
		if !fn(&e) {
			i++
			break
		}
	}
	if i >= hi {
		return 0
	}
	return i
}
