//go:build amd64 || arm64

package prefetch

// line is PREFETCHT0 (amd64) or PRFM PLDL1KEEP (arm64) of addr.
//
//go:noescape
func line(addr uintptr)
