//go:build !amd64 && !arm64

package prefetch

// line does nothing where there is no prefetch instruction in this
// package.
func line(addr uintptr) {}
