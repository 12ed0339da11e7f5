package fastpath

import (
	"unsafe"

	"github.com/xdpfwd/xdpfwd/fastpath/cbpf"
	"github.com/xdpfwd/xdpfwd/xdp"
)

// filterBatch runs a capture's or a trace's filter over a batch at once:
// one call into the filter's machine code for the batch, where a call per
// packet would cost more than the filter. It belongs to one worker's ring
// (single producer), so it needs no lock. frames gathers the frames that
// are not in a Packet (TX descriptors).
type filterBatch struct {
	frames [BatchSize + MaxEmitted][]byte
	result [BatchSize + MaxEmitted]uint32
}

// packets runs filter over the frames of pkts and returns what it
// returned for each, by index; with no filter, all for each. The filter
// reads each Packet's Data in place.
func (f *filterBatch) packets(filter *cbpf.Program, all uint32, pkts []Packet) []uint32 {
	out := f.result[:len(pkts)]
	if filter == nil || len(pkts) == 0 {
		return f.run(nil, all, len(pkts))
	}
	filter.RunStrided(unsafe.Pointer(&pkts[0].Data), unsafe.Sizeof(pkts[0]), len(pkts), out)
	return out
}

// descs runs filter over the frames of the descriptors (at most the
// filterBatch's size), which live in umem, as packets does; the frames
// stay in f.frames.
func (f *filterBatch) descs(filter *cbpf.Program, all uint32, umem *xdp.Umem, descs []xdp.Desc) []uint32 {
	for i, d := range descs {
		f.frames[i] = umem.Frame(d.Addr, d.Len)
	}
	return f.run(filter, all, len(descs))
}

// run runs filter over the first n frames.
func (f *filterBatch) run(filter *cbpf.Program, all uint32, n int) []uint32 {
	out := f.result[:n]
	if filter == nil {
		for i := range out {
			out[i] = all
		}
		return out
	}
	filter.RunBatch(f.frames[:n], out)
	return out
}
