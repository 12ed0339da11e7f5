// Package prefetch asks the CPU to bring a cache line in ahead of its
// use, for the passes over a batch that look up many packets in a big
// table (VPP's prefetch pipeline): the lines of all the batch's lookups
// are fetched at once instead of one miss after another. Go has no
// prefetch intrinsic outside the runtime, so this is one instruction of
// assembly where the architecture has one, and nothing elsewhere.
package prefetch

import "unsafe"

// Line hints that the cache line holding p will be read soon. It never
// faults and never blocks, whatever p is.
func Line(p unsafe.Pointer) { line(uintptr(p)) }
