package fastpath

import "github.com/xdpfwd/xdpfwd/xdp"

// Queue is the batch I/O of one port queue as a worker sees it: the four
// rings of an AF_XDP socket. *xdp.Socket implements it, and so does
// fastpathtest.FakeQueue, which lets the whole pipeline run in plain unit
// tests.
//
// Every call moves up to len(arg) entries and returns how many it moved; none
// of them blocks or allocates.
type Queue interface {
	// Receive takes received frames off the RX ring.
	Receive(descs []xdp.Desc) int
	// Transmit puts frames on the TX ring and wakes the kernel if needed.
	Transmit(descs []xdp.Desc) int
	// Complete takes the addresses of transmitted frames off the completion ring.
	Complete(addrs []uint64) int
	// Fill gives free frames to the kernel for reception.
	Fill(addrs []uint64) int
}
