package xdp

import (
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// BindMode chooses how a socket is bound to its device queue.
type BindMode int

const (
	// BindAuto tries zero-copy first and falls back to copy mode when the
	// driver answers EOPNOTSUPP (veth does).
	BindAuto BindMode = iota
	// BindZeroCopy binds in zero-copy mode (XDP_ZEROCOPY) or fails.
	BindZeroCopy
	// BindCopy binds in copy mode (XDP_COPY).
	BindCopy
)

// String returns the name ParseBindMode accepts.
func (m BindMode) String() string {
	switch m {
	case BindAuto:
		return "auto"
	case BindZeroCopy:
		return "zerocopy"
	case BindCopy:
		return "copy"
	}
	return fmt.Sprintf("BindMode(%d)", int(m))
}

// ParseBindMode parses "auto", "zerocopy" or "copy".
func ParseBindMode(s string) (BindMode, error) {
	switch s {
	case "auto":
		return BindAuto, nil
	case "zerocopy":
		return BindZeroCopy, nil
	case "copy":
		return BindCopy, nil
	}
	return 0, fmt.Errorf("xdp: bind mode %q: want auto, zerocopy or copy", s)
}

// SocketConfig says where to bind a socket and how big its RX and TX rings
// are. The fill and completion ring sizes come from the UMEM's config.
type SocketConfig struct {
	// Ifindex is the index of the network device.
	Ifindex int
	// Queue is the device's RX/TX queue to bind to.
	Queue int
	// RxSize and TxSize are the numbers of RX and TX ring entries (powers
	// of two). Default 2048 each.
	RxSize, TxSize uint32
	// Bind chooses zero-copy or copy mode. A socket sharing another's UMEM
	// inherits the owner's mode: Bind must then be BindAuto or the mode
	// the owner uses.
	Bind BindMode
	// NeedWakeup sets XDP_USE_NEED_WAKEUP, so the kernel says when a ring
	// needs a syscall to make progress. A socket sharing another's UMEM
	// inherits the owner's setting and must ask for the same.
	NeedWakeup bool
	// TxBudget is the most frames one sendto sends in copy mode
	// (XDP_MAX_TX_SKB_BUDGET, between 32 and TxSize). 0 means 256 clamped
	// to TxSize. Kernels without the option keep their default of 32: see
	// [Socket.TxBudgetApplied].
	TxBudget uint32
}

// sockoptMaxTxSkbBudget is XDP_MAX_TX_SKB_BUDGET (Linux 6.17), the most
// frames one sendto sends in copy mode. golang.org/x/sys/unix has it as
// unix.XDP_MAX_TX_SKB_BUDGET; it is named here to document the value 9.
const sockoptMaxTxSkbBudget = unix.XDP_MAX_TX_SKB_BUDGET

// ethtoolGChannels is ETHTOOL_GCHANNELS from linux/ethtool.h.
const ethtoolGChannels = 0x3c

// Statistics are the kernel's per-socket counters (XDP_STATISTICS).
type Statistics struct {
	// RxDropped counts frames dropped for reasons other than those below.
	RxDropped uint64
	// RxInvalidDescs counts invalid descriptors on the fill ring.
	RxInvalidDescs uint64
	// TxInvalidDescs counts invalid descriptors on the TX ring.
	TxInvalidDescs uint64
	// RxRingFull counts frames dropped because the RX ring was full.
	RxRingFull uint64
	// RxFillRingEmptyDescs counts times the fill ring was empty when a
	// frame arrived.
	RxFillRingEmptyDescs uint64
	// TxRingEmptyDescs counts times the TX ring was empty when the kernel
	// looked.
	TxRingEmptyDescs uint64
}

// Occupancy is how many entries each of a socket's rings holds, as the
// shared producer and consumer indices say. Each entry is one frame.
type Occupancy struct {
	// Fill is frames given to the kernel and not yet used for a receive.
	Fill uint32
	// RX is frames received and not yet taken by Receive.
	RX uint32
	// TX is frames queued by Transmit and not yet taken by the kernel.
	TX uint32
	// Completion is frames sent and not yet taken by Complete.
	Completion uint32
}

// Total is the number of frames in all four rings.
func (o Occupancy) Total() uint32 { return o.Fill + o.RX + o.TX + o.Completion }

// KickStats counts the sendto calls Transmit made to wake the kernel.
type KickStats struct {
	// Kicks is the number of sendto calls.
	Kicks uint64
	// Busy counts sendto calls that answered EAGAIN, EBUSY or ENOBUFS:
	// the kernel had more to send or no room; the frames stay queued.
	Busy uint64
	// Errors counts sendto calls that failed otherwise (e.g. ENETDOWN).
	Errors uint64
	// LastError is the errno of the last failed call, 0 if none.
	LastError unix.Errno
}

// Socket is an AF_XDP socket bound to one device queue, with its four
// rings. Receive, Transmit, Complete and Fill belong to one goroutine (the
// queue's worker) and neither allocate nor lock; the other methods may be
// called from any goroutine.
type Socket struct {
	fd     int
	umem   *Umem
	cfg    SocketConfig
	ifname string

	fill, comp addrRing
	rx, tx     descRing

	zeroCopy   bool
	needWakeup bool
	txBudget   uint32

	kicks, kickBusy, kickErrs atomic.Uint64
	fillWakeups               atomic.Uint64
	lastKickErr               atomic.Uintptr
}

// NewSocket opens an AF_XDP socket on the UMEM and binds it to
// cfg.Ifindex, cfg.Queue. The thread must be in the device's network
// namespace; afterwards the socket may be used from any thread.
//
// The first socket of a UMEM registers the memory with the kernel
// (XDP_UMEM_REG) and owns it. Every later socket gets its own fill and
// completion rings and binds with XDP_SHARED_UMEM to the owner; it must be
// on a different device or queue than every other socket of the UMEM, and
// it inherits the owner's copy/zero-copy mode and need_wakeup setting.
func (u *Umem) NewSocket(cfg SocketConfig) (*Socket, error) {
	if cfg.RxSize == 0 {
		cfg.RxSize = 2048
	}
	if cfg.TxSize == 0 {
		cfg.TxSize = 2048
	}
	ifname := interfaceName(cfg.Ifindex)
	where := fmt.Sprintf("xdp: socket on queue %d of %s", cfg.Queue, ifname)
	switch {
	case cfg.Ifindex <= 0:
		return nil, fmt.Errorf("%s: invalid interface index %d", where, cfg.Ifindex)
	case cfg.Queue < 0:
		return nil, fmt.Errorf("%s: invalid queue", where)
	case cfg.RxSize&(cfg.RxSize-1) != 0:
		return nil, fmt.Errorf("%s: RX ring size %d: must be a power of two", where, cfg.RxSize)
	case cfg.TxSize&(cfg.TxSize-1) != 0:
		return nil, fmt.Errorf("%s: TX ring size %d: must be a power of two", where, cfg.TxSize)
	case cfg.Bind < BindAuto || cfg.Bind > BindCopy:
		return nil, fmt.Errorf("%s: unknown bind mode %d", where, int(cfg.Bind))
	case cfg.TxBudget != 0 && (cfg.TxBudget < 32 || cfg.TxBudget > cfg.TxSize):
		return nil, fmt.Errorf("%s: TX budget %d: must be between 32 and the TX ring size %d", where, cfg.TxBudget, cfg.TxSize)
	case u.area == nil:
		return nil, fmt.Errorf("%s: the UMEM is closed", where)
	case u.ownerClosed:
		return nil, fmt.Errorf("%s: the UMEM's owner socket is closed: no socket can join the UMEM any more", where)
	}

	var (
		s   *Socket
		err error
	)
	if owner := u.owner; owner != nil {
		for _, o := range u.socks {
			if o.cfg.Ifindex == cfg.Ifindex && o.cfg.Queue == cfg.Queue {
				return nil, fmt.Errorf("%s: another socket of this UMEM is bound there; a shared-UMEM socket needs its own device or queue", where)
			}
		}
		if cfg.NeedWakeup != owner.needWakeup {
			return nil, fmt.Errorf("%s: NeedWakeup=%v but the UMEM owner socket has %v: shared sockets inherit it", where, cfg.NeedWakeup, owner.needWakeup)
		}
		if (cfg.Bind == BindZeroCopy && !owner.zeroCopy) || (cfg.Bind == BindCopy && owner.zeroCopy) {
			return nil, fmt.Errorf("%s: bind mode %v but the UMEM owner socket uses %v: shared sockets inherit it", where, cfg.Bind, modeName(owner.zeroCopy))
		}
		s, err = u.open(cfg, ifname, unix.XDP_SHARED_UMEM, owner)
	} else {
		var flags uint16
		if cfg.NeedWakeup {
			flags |= unix.XDP_USE_NEED_WAKEUP
		}
		switch cfg.Bind {
		case BindCopy:
			s, err = u.open(cfg, ifname, flags|unix.XDP_COPY, nil)
		case BindZeroCopy:
			s, err = u.open(cfg, ifname, flags|unix.XDP_ZEROCOPY, nil)
		default:
			s, err = u.open(cfg, ifname, flags|unix.XDP_ZEROCOPY, nil)
			if errors.Is(err, unix.EOPNOTSUPP) {
				s, err = u.open(cfg, ifname, flags|unix.XDP_COPY, nil)
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	if u.owner == nil {
		u.owner = s
	}
	u.socks = append(u.socks, s)
	return s, nil
}

// open makes, sets up and binds one socket. owner is nil for the socket
// that registers the UMEM. On error everything it made is released.
func (u *Umem) open(cfg SocketConfig, ifname string, flags uint16, owner *Socket) (_ *Socket, err error) {
	fd, err := unix.Socket(unix.AF_XDP, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open AF_XDP socket: %w", err)
	}
	s := &Socket{fd: fd, umem: u, cfg: cfg, ifname: ifname}
	defer func() {
		if err != nil {
			s.release()
		}
	}()

	if owner == nil {
		reg := unix.XDPUmemReg{
			Addr:     uint64(uintptr(unsafe.Pointer(&u.area[0]))),
			Len:      uint64(len(u.area)),
			Size:     u.cfg.FrameSize,
			Headroom: u.cfg.Headroom,
		}
		if err := setsockopt(fd, unix.XDP_UMEM_REG, unsafe.Pointer(&reg), unsafe.Sizeof(reg)); err != nil {
			return nil, umemRegError(err, len(u.area))
		}
	}
	for _, o := range []struct {
		name string
		opt  int
		n    uint32
	}{
		{"fill", unix.XDP_UMEM_FILL_RING, u.cfg.FillSize},
		{"completion", unix.XDP_UMEM_COMPLETION_RING, u.cfg.CompletionSize},
		{"RX", unix.XDP_RX_RING, cfg.RxSize},
		{"TX", unix.XDP_TX_RING, cfg.TxSize},
	} {
		if err := unix.SetsockoptInt(fd, unix.SOL_XDP, o.opt, int(o.n)); err != nil {
			return nil, fmt.Errorf("size %s ring to %d entries: %w", o.name, o.n, err)
		}
	}

	budget := cfg.TxBudget
	if budget == 0 {
		budget = min(256, cfg.TxSize)
	}
	if budget >= 32 {
		switch err := unix.SetsockoptInt(fd, unix.SOL_XDP, sockoptMaxTxSkbBudget, int(budget)); {
		case err == nil:
			s.txBudget = budget
		case errors.Is(err, unix.ENOPROTOOPT), errors.Is(err, unix.EINVAL):
			// The kernel predates XDP_MAX_TX_SKB_BUDGET: it sends 32
			// frames per sendto. TxBudgetApplied reports 0.
		default:
			return nil, fmt.Errorf("set TX budget (XDP_MAX_TX_SKB_BUDGET) to %d: %w", budget, err)
		}
	}

	var off unix.XDPMmapOffsets
	if err := getsockopt(fd, unix.XDP_MMAP_OFFSETS, unsafe.Pointer(&off), unsafe.Sizeof(off)); err != nil {
		return nil, fmt.Errorf("read ring offsets (XDP_MMAP_OFFSETS): %w", err)
	}
	p, err := mapRing(&s.fill.ring, fd, unix.XDP_UMEM_PGOFF_FILL_RING, off.Fr, u.cfg.FillSize, 8, "fill")
	if err != nil {
		return nil, err
	}
	s.fill.addrs = unsafe.Slice((*uint64)(p), u.cfg.FillSize)
	if p, err = mapRing(&s.comp.ring, fd, unix.XDP_UMEM_PGOFF_COMPLETION_RING, off.Cr, u.cfg.CompletionSize, 8, "completion"); err != nil {
		return nil, err
	}
	s.comp.addrs = unsafe.Slice((*uint64)(p), u.cfg.CompletionSize)
	if p, err = mapRing(&s.rx.ring, fd, unix.XDP_PGOFF_RX_RING, off.Rx, cfg.RxSize, uint32(unsafe.Sizeof(Desc{})), "RX"); err != nil {
		return nil, err
	}
	s.rx.descs = unsafe.Slice((*Desc)(p), cfg.RxSize)
	if p, err = mapRing(&s.tx.ring, fd, unix.XDP_PGOFF_TX_RING, off.Tx, cfg.TxSize, uint32(unsafe.Sizeof(Desc{})), "TX"); err != nil {
		return nil, err
	}
	s.tx.descs = unsafe.Slice((*Desc)(p), cfg.TxSize)
	s.fill.initProducer()
	s.tx.initProducer()
	s.rx.initConsumer()
	s.comp.initConsumer()

	sa := &unix.SockaddrXDP{Flags: flags, Ifindex: uint32(cfg.Ifindex), QueueID: uint32(cfg.Queue)}
	if owner != nil {
		sa.SharedUmemFD = uint32(owner.fd)
	}
	if err := unix.Bind(fd, sa); err != nil {
		return nil, bindError(err, ifname, cfg.Queue, flags, func() (int, bool) { return rxQueueCount(ifname) })
	}

	var opts uint32
	if err := getsockopt(fd, unix.XDP_OPTIONS, unsafe.Pointer(&opts), unsafe.Sizeof(opts)); err != nil {
		return nil, fmt.Errorf("read bind mode (XDP_OPTIONS): %w", err)
	}
	s.zeroCopy = opts&unix.XDP_OPTIONS_ZEROCOPY != 0
	if owner != nil {
		s.needWakeup = owner.needWakeup
	} else {
		s.needWakeup = flags&unix.XDP_USE_NEED_WAKEUP != 0
	}
	return s, nil
}

// umemRegError explains a failed XDP_UMEM_REG of size bytes.
func umemRegError(err error, size int) error {
	if errors.Is(err, unix.ENOBUFS) || errors.Is(err, unix.EPERM) {
		return fmt.Errorf("register UMEM of %d bytes (XDP_UMEM_REG): %w: the locked-memory limit RLIMIT_MEMLOCK is too low: raise `ulimit -l` or run as root with CAP_IPC_LOCK", size, err)
	}
	return fmt.Errorf("register UMEM of %d bytes (XDP_UMEM_REG): %w", size, err)
}

// bindError explains a failed bind to queue of ifname. queues, if it can,
// returns the device's number of RX queues.
func bindError(err error, ifname string, queue int, flags uint16, queues func() (int, bool)) error {
	what := fmt.Sprintf("bind to queue %d of %s in %s mode", queue, ifname, flagMode(flags))
	switch {
	case errors.Is(err, unix.EBUSY):
		return fmt.Errorf("%s: %w: queue %d of %s already has an AF_XDP socket (another xdpfwd?)", what, err, queue, ifname)
	case errors.Is(err, unix.EINVAL):
		if n, ok := queues(); ok && queue >= n {
			return fmt.Errorf("%s: %w: %s has only %d RX queue(s), numbered from 0", what, err, ifname, n)
		}
		return fmt.Errorf("%s: %w", what, err)
	case errors.Is(err, unix.EOPNOTSUPP) && flags&unix.XDP_ZEROCOPY != 0:
		return fmt.Errorf("%s: %w: the driver of %s has no zero-copy AF_XDP support: use copy or auto mode", what, err, ifname)
	case errors.Is(err, unix.ENODEV), errors.Is(err, unix.ENXIO):
		return fmt.Errorf("%s: %w: no such device in this network namespace", what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

func flagMode(flags uint16) string {
	switch {
	case flags&unix.XDP_SHARED_UMEM != 0:
		return "shared-UMEM"
	case flags&unix.XDP_ZEROCOPY != 0:
		return "zero-copy"
	}
	return "copy"
}

func modeName(zeroCopy bool) BindMode {
	if zeroCopy {
		return BindZeroCopy
	}
	return BindCopy
}

// interfaceName names the device for error messages.
func interfaceName(ifindex int) string {
	if ifi, err := net.InterfaceByIndex(ifindex); err == nil {
		return ifi.Name
	}
	return fmt.Sprintf("ifindex %d", ifindex)
}

// rxQueueCount asks the driver (ETHTOOL_GCHANNELS) how many RX queues the
// device has: its RX-only plus its combined channels.
func rxQueueCount(ifname string) (int, bool) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, false
	}
	defer unix.Close(fd)
	var ch struct {
		cmd                                         uint32
		maxRx, maxTx, maxOther, maxCombined         uint32
		rxCount, txCount, otherCount, combinedCount uint32
	}
	ch.cmd = ethtoolGChannels
	var ifr struct {
		name [unix.IFNAMSIZ]byte
		data uintptr
		_    [16]byte
	}
	if len(ifname) >= unix.IFNAMSIZ {
		return 0, false
	}
	copy(ifr.name[:], ifname)
	ifr.data = uintptr(unsafe.Pointer(&ch))
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr))); errno != 0 {
		return 0, false
	}
	// RX-only channels and combined (RX+TX) channels each have an RX queue.
	n := int(ch.rxCount + ch.combinedCount)
	return n, n > 0
}

func setsockopt(fd, opt int, p unsafe.Pointer, size uintptr) error {
	_, _, errno := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(fd), unix.SOL_XDP, uintptr(opt), uintptr(p), size, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

func getsockopt(fd, opt int, p unsafe.Pointer, size uintptr) error {
	n := uint32(size)
	_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_XDP, uintptr(opt), uintptr(p), uintptr(unsafe.Pointer(&n)), 0)
	if errno != 0 {
		return errno
	}
	if uintptr(n) != size {
		return fmt.Errorf("kernel returned %d bytes, want %d", n, size)
	}
	return nil
}

// FD returns the socket's file descriptor, for poll or an XSKMAP.
func (s *Socket) FD() int { return s.fd }

// ZeroCopy reports whether the socket is bound in zero-copy mode, as the
// kernel says (XDP_OPTIONS).
func (s *Socket) ZeroCopy() bool { return s.zeroCopy }

// TxBudgetApplied is the XDP_MAX_TX_SKB_BUDGET the kernel accepted, or 0
// if it was not applied (kernels before 6.17 send 32 frames per sendto).
func (s *Socket) TxBudgetApplied() uint32 { return s.txBudget }

// NeedWakeup reports whether the socket uses XDP_USE_NEED_WAKEUP (its own
// or inherited from the UMEM owner).
func (s *Socket) NeedWakeup() bool { return s.needWakeup }

// FillNeedsWakeup reports whether the kernel asks for a syscall (poll or
// recvfrom) before it takes more from the fill ring. Without need_wakeup
// it is always false.
func (s *Socket) FillNeedsWakeup() bool {
	return s.needWakeup && s.fill.needsWakeup()
}

// WakeFill tells the kernel that the fill ring has frames again, for a
// socket whose FillNeedsWakeup is true (a zero-copy driver that stopped
// receiving when the fill ring ran dry). It is one recvfrom(MSG_DONTWAIT),
// as libbpf's xdpsock does; errors are the kernel's to ignore.
func (s *Socket) WakeFill() {
	s.fillWakeups.Add(1)
	unix.RawSyscall6(unix.SYS_RECVFROM, uintptr(s.fd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
}

// FillWakeups is the number of WakeFill calls.
func (s *Socket) FillWakeups() uint64 { return s.fillWakeups.Load() }

// Receive takes up to len(descs) received frames off the RX ring and
// returns how many it took. It makes no syscall.
func (s *Socket) Receive(descs []Desc) int { return s.rx.consume(descs) }

// Fill gives up to len(addrs) free frames to the fill ring and returns how
// many it gave.
func (s *Socket) Fill(addrs []uint64) int { return s.fill.produce(addrs) }

// Complete takes up to len(addrs) addresses of transmitted frames off the
// completion ring and returns how many it took.
func (s *Socket) Complete(addrs []uint64) int { return s.comp.consume(addrs) }

// Transmit queues as many of descs as fit on the TX ring and returns how
// many it queued. If frames are waiting on the ring and the kernel asks
// for a wakeup (or the socket does not use need_wakeup), it makes one
// sendto(MSG_DONTWAIT) for the whole batch; see [Socket.KickStats].
func (s *Socket) Transmit(descs []Desc) int {
	n := s.tx.produce(descs)
	if s.tx.occupancy() == 0 {
		return n
	}
	if s.needWakeup && !s.tx.needsWakeup() {
		return n
	}
	s.kicks.Add(1)
	// RawSyscall6, not Syscall6: sendto(MSG_DONTWAIT) never sleeps, so the
	// runtime need not hand the thread's P away and take it back on every
	// kick. With Syscall6 sysmon kept waking every 20µs to retake the P of
	// a thread that is in a syscall most of the time: ~4% of the worker's
	// CPU at 180k pps. The cost: a stop-the-world waits for one sendto
	// (at most TxBudget frames).
	_, _, errno := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(s.fd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
	switch errno {
	case 0:
	case unix.EAGAIN, unix.EBUSY, unix.ENOBUFS:
		s.kickBusy.Add(1)
	default:
		s.kickErrs.Add(1)
		s.lastKickErr.Store(uintptr(errno))
	}
	return n
}

// Kicks is the number of sendto calls Transmit made.
func (s *Socket) Kicks() uint64 { return s.kicks.Load() }

// KickStats returns the counts of Transmit's sendto calls by outcome.
func (s *Socket) KickStats() KickStats {
	return KickStats{
		Kicks:     s.kicks.Load(),
		Busy:      s.kickBusy.Load(),
		Errors:    s.kickErrs.Load(),
		LastError: unix.Errno(s.lastKickErr.Load()),
	}
}

// Occupancy returns how many frames each ring holds right now. With the
// socket idle, the UMEM's free list, the frames every ring of every socket
// holds and the frames the program holds add up to at most the frame
// count, not always to it: the kernel may hold frames that are in no ring.
// In copy mode a frame taken off the fill ring for a packet then dropped
// because the RX ring was full (Statistics.RxRingFull) stays with the
// kernel until a later packet uses it; in zero-copy mode the driver holds
// the frames it took off the fill ring for its hardware queue.
func (s *Socket) Occupancy() Occupancy {
	return Occupancy{
		Fill:       s.fill.occupancy(),
		RX:         s.rx.occupancy(),
		TX:         s.tx.occupancy(),
		Completion: s.comp.occupancy(),
	}
}

// Statistics reads the kernel's counters for the socket.
func (s *Socket) Statistics() (Statistics, error) {
	var st unix.XDPStatistics
	if err := getsockopt(s.fd, unix.XDP_STATISTICS, unsafe.Pointer(&st), unsafe.Sizeof(st)); err != nil {
		return Statistics{}, fmt.Errorf("xdp: read statistics of queue %d of %s: %w", s.cfg.Queue, s.ifname, err)
	}
	return Statistics{
		RxDropped:            st.Rx_dropped,
		RxInvalidDescs:       st.Rx_invalid_descs,
		TxInvalidDescs:       st.Tx_invalid_descs,
		RxRingFull:           st.Rx_ring_full,
		RxFillRingEmptyDescs: st.Rx_fill_ring_empty_descs,
		TxRingEmptyDescs:     st.Tx_ring_empty_descs,
	}, nil
}

// Close unmaps the rings and closes the socket. Frames still in its rings
// are lost to the UMEM's accounting: drain them first if they matter.
//
// Close the sockets that share a UMEM before its owner (the first socket
// made on it): once the owner is closed no socket can join the UMEM, and
// the kernel keeps the registration until the last socket is gone. Close
// the Umem itself after all its sockets.
func (s *Socket) Close() error {
	if s.fd < 0 {
		return nil
	}
	err := s.release()
	u := s.umem
	for i, o := range u.socks {
		if o == s {
			u.socks = append(u.socks[:i], u.socks[i+1:]...)
			break
		}
	}
	if u.owner == s {
		u.owner = nil
		u.ownerClosed = true
	}
	if err != nil {
		return fmt.Errorf("xdp: close socket on queue %d of %s: %w", s.cfg.Queue, s.ifname, err)
	}
	return nil
}

// release unmaps the rings and closes the fd.
func (s *Socket) release() error {
	s.fill.addrs, s.comp.addrs, s.rx.descs, s.tx.descs = nil, nil, nil, nil
	errs := []error{s.fill.unmap(), s.comp.unmap(), s.rx.unmap(), s.tx.unmap()}
	if s.fd >= 0 {
		errs = append(errs, unix.Close(s.fd))
		s.fd = -1
	}
	return errors.Join(errs...)
}
