package xdp

import (
	"fmt"
	"math/bits"

	"golang.org/x/sys/unix"
)

// UmemConfig sizes a UMEM. Zero fields take the defaults.
type UmemConfig struct {
	// FrameCount is the number of frames (chunks). Default 4096.
	FrameCount uint32
	// FrameSize is the size of one chunk: 2048 or 4096. Default 4096,
	// since copy mode drops frames over ~1792 bytes with 2048-byte chunks.
	FrameSize uint32
	// Headroom is reserved in front of every received frame, on top of the
	// kernel's own XDP_PACKET_HEADROOM. Default 0.
	Headroom uint32
	// FillSize and CompletionSize size the fill and completion rings of
	// every socket on this UMEM (powers of two). Default 2048 each.
	FillSize, CompletionSize uint32
	// CheckFrees makes Free panic on a double free or an address outside
	// the UMEM, from a bitmap of the chunks on the free list (FrameCount
	// bits). It is meant for tests: it costs a few bit operations per
	// frame in Alloc and Free. Without it, Free trusts its caller and a
	// double free puts one chunk on the free list twice, so two packets
	// later share it.
	CheckFrees bool
}

func (c *UmemConfig) setDefaults() {
	if c.FrameCount == 0 {
		c.FrameCount = 4096
	}
	if c.FrameSize == 0 {
		c.FrameSize = 4096
	}
	if c.FillSize == 0 {
		c.FillSize = 2048
	}
	if c.CompletionSize == 0 {
		c.CompletionSize = 2048
	}
}

// Umem is the frame memory that the kernel and the sockets bound to it
// share, cut into equal chunks, and the free list of chunks that no ring
// and no packet holds. It is owned by one goroutine (a worker): none of its
// methods is safe for concurrent use.
type Umem struct {
	cfg  UmemConfig
	area []byte
	free []uint64 // chunk base addresses, used as a stack

	// freeBits, only with cfg.CheckFrees, has bit i set while chunk i is
	// on the free list. Free tests it for nil once, so the check costs
	// nothing else when off.
	freeBits []uint64

	// owner is the socket that registered the area with XDP_UMEM_REG; nil
	// until the first socket is made. socks are all open sockets on this
	// UMEM, the owner included.
	owner       *Socket
	ownerClosed bool
	socks       []*Socket
}

// NewUmem maps the frame memory and puts every frame on the free list. The
// memory is registered with the kernel when the first socket is made.
func NewUmem(cfg UmemConfig) (*Umem, error) {
	cfg.setDefaults()
	if cfg.FrameSize != 2048 && cfg.FrameSize != 4096 {
		return nil, fmt.Errorf("umem: frame size %d: must be 2048 or 4096", cfg.FrameSize)
	}
	for _, r := range []struct {
		name string
		n    uint32
	}{{"fill", cfg.FillSize}, {"completion", cfg.CompletionSize}} {
		if r.n&(r.n-1) != 0 {
			return nil, fmt.Errorf("umem: %s ring size %d: must be a power of two", r.name, r.n)
		}
	}
	size := int(cfg.FrameCount) * int(cfg.FrameSize)
	area, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_POPULATE)
	if err != nil {
		return nil, fmt.Errorf("umem: map %d frames of %d bytes: %w", cfg.FrameCount, cfg.FrameSize, err)
	}
	u := &Umem{cfg: cfg, area: area, free: make([]uint64, cfg.FrameCount)}
	for i := range u.free {
		u.free[i] = uint64(i) * uint64(cfg.FrameSize)
	}
	if cfg.CheckFrees {
		u.freeBits = make([]uint64, (cfg.FrameCount+63)/64)
		for i := range cfg.FrameCount {
			u.freeBits[i/64] |= 1 << (i % 64)
		}
	}
	return u, nil
}

// Config returns the UMEM's configuration with defaults filled in.
func (u *Umem) Config() UmemConfig { return u.cfg }

// Frame returns the n bytes of the frame at addr. The slice's capacity ends
// at the end of the chunk, so a frame can grow in place.
func (u *Umem) Frame(addr uint64, n uint32) []byte {
	end := (addr | uint64(u.cfg.FrameSize-1)) + 1
	return u.area[addr : addr+uint64(n) : end]
}

// Alloc takes up to len(addrs) chunks off the free list and returns how
// many it took. The addresses are chunk bases.
func (u *Umem) Alloc(addrs []uint64) int {
	n := min(len(addrs), len(u.free))
	copy(addrs, u.free[len(u.free)-n:])
	u.free = u.free[:len(u.free)-n]
	if u.freeBits != nil {
		for _, a := range addrs[:n] {
			i := a >> bits.TrailingZeros32(u.cfg.FrameSize)
			u.freeBits[i/64] &^= 1 << (i % 64)
		}
	}
	return n
}

// Free returns the chunk that holds addr to the free list. A chunk must be
// freed once per Alloc (or per address Complete returns); with
// [UmemConfig.CheckFrees] Free panics when it is not, or when addr is not
// in the UMEM.
func (u *Umem) Free(addr uint64) {
	u.free = append(u.free, addr&^uint64(u.cfg.FrameSize-1))
	if u.freeBits != nil {
		u.checkFree(addr)
	}
}

// checkFree panics if addr, just pushed on the free list, is outside the
// UMEM or its chunk was on the list already, and then takes it off the
// list again; otherwise it marks the chunk free. It is apart from Free,
// and called after the push, so that Free stays small enough to inline
// and keeps no value live across the call.
func (u *Umem) checkFree(addr uint64) {
	i := addr >> bits.TrailingZeros32(u.cfg.FrameSize)
	if i >= uint64(u.cfg.FrameCount) {
		u.free = u.free[:len(u.free)-1]
		panic(fmt.Sprintf("xdp: Free(%#x): address outside the UMEM of %d frames of %d bytes", addr, u.cfg.FrameCount, u.cfg.FrameSize))
	}
	bit := uint64(1) << (i % 64)
	if u.freeBits[i/64]&bit != 0 {
		u.free = u.free[:len(u.free)-1]
		panic(fmt.Sprintf("xdp: Free(%#x): double free: frame %d is already on the free list", addr, i))
	}
	u.freeBits[i/64] |= bit
}

// FreeCount is the number of chunks on the free list.
func (u *Umem) FreeCount() int { return len(u.free) }

// Close unmaps the frame memory. It closes nothing else: every socket on
// the UMEM must be closed first (shared sockets, then the owner, see
// [Socket.Close]), and Close reports an error and unmaps nothing while any
// is open. No frame slice may be used after Close.
func (u *Umem) Close() error {
	if n := len(u.socks); n > 0 {
		return fmt.Errorf("umem: close: %d socket(s) still open on it: close them first", n)
	}
	if u.area == nil {
		return nil
	}
	if err := unix.Munmap(u.area); err != nil {
		return fmt.Errorf("umem: unmap: %w", err)
	}
	u.area = nil
	u.free = nil
	return nil
}
