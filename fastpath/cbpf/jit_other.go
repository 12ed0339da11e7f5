//go:build !amd64

package cbpf

import (
	"fmt"
	"runtime"
	"unsafe"
)

// Run runs the program over the frame pkt and returns what it returns:
// how many bytes of the frame to keep, 0 to reject it. A load beyond the
// frame rejects it, as does a division by X = 0, as in the kernel; an
// indirect load's offset X+k is added in 32 bits, as the kernel adds it. On
// this architecture the program is interpreted.
func (p *Program) Run(pkt []byte) uint32 { return p.interpret(pkt) }

// Native reports whether the program runs as machine code: never on this
// architecture.
func (p *Program) Native() bool { return false }

// compileNative has no machine code to make on this architecture.
func (p *Program) compileNative() error {
	return fmt.Errorf("cbpf: no compiler to machine code for %s", runtime.GOARCH)
}

// RunBatch runs the program over each frame of frames and writes what it
// returns for frames[i] into out[i], as Run would. out must be as long as
// frames.
func (p *Program) RunBatch(frames [][]byte, out []uint32) {
	for i, f := range frames {
		out[i] = p.interpret(f)
	}
}

// RunStrided is RunBatch over the frames of n records stride bytes apart
// from first, each holding its frame's []byte at the same offset (first
// points to the first record's): a batch of packets whose frames need not
// be gathered first. out must hold n results.
func (p *Program) RunStrided(first unsafe.Pointer, stride uintptr, n int, out []uint32) {
	if n > 0 {
		p.interpretStrided(first, stride, n, out)
	}
}
