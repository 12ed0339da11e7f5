// Package xdp is the AF_XDP socket layer of xdpfwd: a UMEM (the frame memory
// shared with the kernel), its fill and completion rings, and sockets with
// RX and TX rings, all on golang.org/x/sys/unix. It moves frame descriptors
// and knows nothing of what the frames contain.
package xdp

// Desc describes one frame in a UMEM: where it starts and how long it is.
// Its layout is that of the kernel's struct xdp_desc, so RX and TX ring
// entries are copied as they are.
type Desc struct {
	// Addr is the frame's offset in the UMEM. For a received frame it
	// points past the headroom, at the first byte of the Ethernet header.
	Addr uint64
	// Len is the frame's length in bytes.
	Len uint32
	// Options carries XDP_PKT_CONTD and other flags; 0 for a whole frame.
	Options uint32
}
