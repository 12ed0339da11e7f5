// Package bpf holds xdpfwd's XDP program and its loader.
//
// The program (xdpfwd.c, compiled by bpf2go into the committed
// xdpfwd_bpfel.o) redirects every frame that arrives on RX queue q of a port
// into the AF_XDP socket in slot q of its XSKMAP. Frames for one of the
// port's pass MACs, ARP requests and neighbour solicitations for its pass
// addresses (untagged: a tag in the bytes or beside them makes them
// bridged), and frames on a queue with no socket, go to the kernel stack.
// Before a redirect it puts back into the frame the VLAN tag that the driver
// kept beside it, where the driver lets XDP read it. A Port is one loaded
// copy of the program and its maps, attached to one interface through a
// bpf_link, so that the program goes away with the process that attached
// it.
package bpf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Mode is the XDP attach mode of a port.
type Mode int

const (
	// ModeAuto attaches in native mode and falls back to generic mode where
	// the driver does not support native XDP.
	ModeAuto Mode = iota
	// ModeNative runs the program in the driver's receive path.
	ModeNative
	// ModeGeneric runs the program on socket buffers, after the driver.
	// It works on every device, more slowly than native mode.
	ModeGeneric
)

// ParseMode parses "auto", "native" or "generic".
func ParseMode(s string) (Mode, error) {
	switch s {
	case "auto":
		return ModeAuto, nil
	case "native":
		return ModeNative, nil
	case "generic":
		return ModeGeneric, nil
	}
	return 0, fmt.Errorf("unknown XDP mode %q: want auto, native or generic", s)
}

// String returns the name that ParseMode accepts for m.
func (m Mode) String() string {
	switch m {
	case ModeAuto:
		return "auto"
	case ModeNative:
		return "native"
	case ModeGeneric:
		return "generic"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// MaxQueues is the number of XSKMAP slots: SetSocket accepts queue indices
// below it. It matches XSKS_MAX in xdpfwd.c.
const MaxQueues = 64

// MaxPassMACs is the most destination MACs Options.PassMACs may hold. It
// matches PASS_MACS_MAX in xdpfwd.c.
const MaxPassMACs = 64

// MaxPassIPv4 and MaxPassIPv6 are the most addresses Options.PassIPv4 and
// PassIPv6 may hold. They match PASS_IPV4_MAX and PASS_IPV6_MAX in
// xdpfwd.c.
const (
	MaxPassIPv4 = 64
	MaxPassIPv6 = 64
)

// Options configures Attach.
type Options struct {
	// Ifindex is the index of the interface to attach to, in the network
	// namespace of the calling thread.
	Ifindex int
	// Mode is the attach mode. ModeAuto tries native mode first and falls
	// back to generic mode where native XDP is not supported.
	Mode Mode
	// PassMACs are destination MACs (EUI-48) whose frames go to the kernel
	// stack, such as the host's own address on a NIC that xdpfwd takes
	// over.
	PassMACs []net.HardwareAddr
	// PassIPv4 are the host's IPv4 addresses: ARP requests for them go to
	// the kernel stack, so that the host keeps answering ARP on a port
	// whose broadcasts otherwise all go to the fast path.
	PassIPv4 []netip.Addr
	// PassIPv6 are the host's IPv6 addresses: ICMPv6 neighbour
	// solicitations for them go to the kernel stack.
	PassIPv6 []netip.Addr
	// MaxFrame is the longest frame the port's AF_XDP sockets take (what
	// fits a UMEM frame); longer frames are dropped and counted as
	// DropTooBig. 0 means no limit.
	MaxFrame uint32
}

// Counters are the program's counters, summed over CPUs. Every frame the
// program sees is counted in exactly one of the verdict counters (all but
// VLANRestored).
type Counters struct {
	// Redirected counts frames redirected into an AF_XDP socket.
	Redirected uint64
	// PassNoSocket counts frames passed to the kernel because no socket is
	// set for their RX queue.
	PassNoSocket uint64
	// PassHost counts frames passed to the kernel because their
	// destination MAC is one of the pass MACs, or because they are
	// untagged ARP requests or IPv6 neighbour solicitations for one of the
	// pass addresses.
	PassHost uint64
	// DropMalformed counts frames dropped because they are shorter than an
	// Ethernet header.
	DropMalformed uint64
	// RedirectFailed counts frames whose redirect failed; they are passed
	// to the kernel.
	RedirectFailed uint64
	// DropTooBig counts frames dropped because they are longer than
	// Options.MaxFrame (counting the VLAN tag the program would put back):
	// in generic mode these are GSO/GRO super-frames that no UMEM frame
	// holds.
	DropTooBig uint64
	// VLANRestored is not a verdict: it counts the redirected frames whose
	// VLAN tag the driver kept beside the frame and the program put back
	// into it. Each is counted in Redirected too.
	VLANRestored uint64
}

// Port is the XDP program attached to one interface, with its own maps.
// Its methods may be called from several goroutines.
type Port struct {
	mu   sync.Mutex
	objs *objects // nil once closed
	link link.Link
	mode Mode
	name string
	// ifindex is the interface the program is attached to.
	ifindex int
	// tagged: the program restores out-of-band VLAN tags.
	tagged bool
}

var removeMemlock = sync.OnceValue(rlimit.RemoveMemlock)

// Attach loads a fresh copy of the program and its maps and attaches it to
// opts.Ifindex through a bpf_link, which the kernel removes when the last
// file descriptor to it closes, also when the process is killed. It does not
// take over an interface that already has an XDP program.
//
// Where the driver hands XDP the VLAN tags it keeps beside the frame (veth
// does, in native mode), the program is loaded bound to the device and puts
// them back into the frames it redirects. Attach refuses an interface that
// could receive tags out of band that the program cannot read, saying how
// to turn the offload off (checkVLAN).
func Attach(opts Options) (*Port, error) {
	ifi, err := net.InterfaceByIndex(opts.Ifindex)
	if err != nil {
		return nil, fmt.Errorf("attaching XDP: no interface with index %d in this network namespace: %w", opts.Ifindex, err)
	}
	name := ifi.Name
	if opts.Mode != ModeAuto && opts.Mode != ModeNative && opts.Mode != ModeGeneric {
		return nil, fmt.Errorf("attaching XDP to %s: invalid mode %v", name, opts.Mode)
	}
	vf, err := readVLANFeatures(opts.Ifindex, name)
	if err != nil {
		return nil, fmt.Errorf("attaching XDP to %s: %w", name, err)
	}
	if opts.Mode != ModeAuto {
		return attachIn(opts, name, opts.Mode, vf)
	}
	p, err := attachIn(opts, name, ModeNative, vf)
	if err == nil || !nativeUnsupported(err) {
		return p, err
	}
	p, gerr := attachIn(opts, name, ModeGeneric, vf)
	if gerr != nil {
		return nil, fmt.Errorf("%w (native mode failed first: %v)", gerr, err)
	}
	return p, nil
}

// attachIn loads the program that mode and the interface's VLAN features
// call for, with its maps, and attaches it in mode.
func attachIn(opts Options, name string, mode Mode, vf vlanFeatures) (*Port, error) {
	tagged, err := checkVLAN(name, mode, vf)
	if err != nil {
		return nil, fmt.Errorf("attaching XDP to %s: %w", name, err)
	}
	bound := 0
	if tagged {
		bound = opts.Ifindex
	}
	objs, err := loadObjects(bound)
	if err != nil {
		return nil, fmt.Errorf("attaching XDP to %s: %w", name, err)
	}
	if err := objs.configure(opts); err != nil {
		objs.close()
		return nil, fmt.Errorf("attaching XDP to %s: %w", name, err)
	}
	l, err := attachMode(objs.prog, opts.Ifindex, name, mode)
	if err != nil {
		objs.close()
		return nil, err
	}
	return &Port{objs: objs, link: l, mode: mode, name: name, ifindex: opts.Ifindex, tagged: tagged}, nil
}

// attachMode links prog to ifindex in native or generic mode.
func attachMode(prog *ebpf.Program, ifindex int, name string, mode Mode) (link.Link, error) {
	flags := link.XDPDriverMode
	if mode == ModeGeneric {
		flags = link.XDPGenericMode
	}
	l, err := link.AttachXDP(link.XDPOptions{Program: prog, Interface: ifindex, Flags: flags})
	switch {
	case err == nil:
		return l, nil
	case errors.Is(err, unix.EBUSY), errors.Is(err, unix.EEXIST):
		return nil, fmt.Errorf("interface %s already has an XDP program attached (another xdpfwd, or see \"ip link show %s\"); not taking it over: %w",
			name, name, err)
	}
	return nil, fmt.Errorf("attaching XDP to %s in %v mode: %w", name, mode, err)
}

// nativeUnsupported reports whether err from a native attach means that the
// driver or its configuration does not support native XDP, so that generic
// mode is worth trying. An interface that already has a program answers
// EBUSY or EEXIST, which are not among these.
func nativeUnsupported(err error) bool {
	const enotsupp = unix.Errno(524) // kernel-internal ENOTSUPP
	return errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EINVAL) ||
		errors.Is(err, unix.ERANGE) || errors.Is(err, enotsupp)
}

// Mode returns the mode the program is attached in: ModeNative or
// ModeGeneric, never ModeAuto.
func (p *Port) Mode() Mode { return p.mode }

// RestoresVLANTags tells whether the program puts the VLAN tags the driver
// keeps beside the frame back into the frames it redirects; where it does
// not, the interface cannot receive such tags (Attach checked).
func (p *Port) RestoresVLANTags() bool { return p.tagged }

// CheckVLAN makes again, on the interface as it is now, the check by which
// Attach refuses a port that could receive VLAN tags beside its frames that
// the program in use cannot put back: rx-vlan-offload turned on after
// Attach, or a device enslaved to a generic-mode port, makes it fail. It
// returns nil while the port still fits, a *VLANError (saying why and
// what to do) when it no longer does, and another error when the interface
// cannot be read (in the calling thread's network
// namespace).
func (p *Port) CheckVLAN() error {
	if p.tagged {
		// The program reads the tags through the driver's kfunc, which
		// does not come and go with settings: nothing to read again.
		return nil
	}
	link, err := netlink.LinkByIndex(p.ifindex)
	if err != nil {
		return fmt.Errorf("checking the VLAN features of %s: %w", p.name, err)
	}
	name := link.Attrs().Name
	f, err := readVLANFeatures(p.ifindex, name)
	if err != nil {
		return fmt.Errorf("checking the VLAN features of %s: %w", name, err)
	}
	return p.recheck(name, f)
}

// recheck is CheckVLAN's decision over features f of the port's interface,
// now named name: checkVLAN for the mode in use. A port whose program
// restores tags keeps fitting (its driver's kfunc does not come and go); one
// whose program does not must not now need it.
func (p *Port) recheck(name string, f vlanFeatures) error {
	tagged, err := checkVLAN(name, p.mode, f)
	if err != nil {
		return err
	}
	if tagged && !p.tagged {
		return &VLANError{Reason: fmt.Sprintf("%s now offers XDP its VLAN tags but its program was loaded without reading them: detach and attach again", name)}
	}
	return nil
}

// SetSocket puts the AF_XDP socket fd into the slot of RX queue queue, so
// that the frames of that queue are redirected to it. The map holds its own
// reference to the socket.
func (p *Port) SetSocket(queue int, fd int) error {
	if err := checkQueue(queue); err != nil {
		return fmt.Errorf("setting AF_XDP socket of %s: %w", p.name, err)
	}
	if fd < 0 || fd > int(^uint32(0)>>1) {
		return fmt.Errorf("setting AF_XDP socket of %s queue %d: invalid fd %d", p.name, queue, fd)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.objs == nil {
		return fmt.Errorf("setting AF_XDP socket of %s queue %d: port closed", p.name, queue)
	}
	if err := p.objs.Xsks.Update(uint32(queue), uint32(fd), ebpf.UpdateAny); err != nil {
		return fmt.Errorf("setting AF_XDP socket of %s queue %d (fd %d): %w", p.name, queue, fd, err)
	}
	return nil
}

// ClearSocket empties the slot of RX queue queue, so that its frames go to
// the kernel stack again. Clearing an empty slot is not an error.
func (p *Port) ClearSocket(queue int) error {
	if err := checkQueue(queue); err != nil {
		return fmt.Errorf("clearing AF_XDP socket of %s: %w", p.name, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.objs == nil {
		return fmt.Errorf("clearing AF_XDP socket of %s queue %d: port closed", p.name, queue)
	}
	err := p.objs.Xsks.Delete(uint32(queue))
	if err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("clearing AF_XDP socket of %s queue %d: %w", p.name, queue, err)
	}
	return nil
}

func checkQueue(queue int) error {
	if queue < 0 || queue >= MaxQueues {
		return fmt.Errorf("queue %d out of range [0, %d)", queue, MaxQueues)
	}
	return nil
}

// Counters returns the program's counters, summed over CPUs.
func (p *Port) Counters() (Counters, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.objs == nil {
		return Counters{}, fmt.Errorf("reading XDP counters of %s: port closed", p.name)
	}
	c, err := p.objs.counters()
	if err != nil {
		return Counters{}, fmt.Errorf("reading XDP counters of %s: %w", p.name, err)
	}
	return c, nil
}

// Close detaches the program and closes its maps. Sockets set with
// SetSocket stay open: they belong to the caller. Closing a closed Port
// does nothing.
func (p *Port) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.objs == nil {
		return nil
	}
	var errs []error
	if err := p.link.Close(); err != nil {
		errs = append(errs, fmt.Errorf("detaching XDP from %s: %w", p.name, err))
	}
	if err := p.objs.close(); err != nil {
		errs = append(errs, fmt.Errorf("closing XDP objects of %s: %w", p.name, err))
	}
	p.objs, p.link = nil, nil
	return errors.Join(errs...)
}

// objects are the program and maps of one port, loaded but not attached.
type objects struct {
	// prog is xdpfwd_redirect, or xdpfwd_redirect_tagged bound to a
	// device.
	prog *ebpf.Program
	xdpfwdMaps
}

// bpfFXDPDevBoundOnly is BPF_F_XDP_DEV_BOUND_ONLY: the program is bound to
// one device (ProgramSpec.Ifindex) and may call its XDP RX metadata kfuncs.
const bpfFXDPDevBoundOnly = 1 << 6

// loadObjects loads a fresh copy of the maps and of one program: with
// boundTo 0, xdpfwd_redirect, which runs anywhere and under
// BPF_PROG_TEST_RUN; otherwise xdpfwd_redirect_tagged, bound to the device
// with index boundTo (in the calling thread's namespace), which the kernel
// runs only natively on that device and never under BPF_PROG_TEST_RUN.
func loadObjects(boundTo int) (*objects, error) {
	if err := removeMemlock(); err != nil {
		return nil, fmt.Errorf("removing the memlock limit: %w", err)
	}
	spec, err := loadXdpfwd()
	if err != nil {
		return nil, err
	}
	// Only one program and the maps it uses are loaded: not the data
	// section holding unused_counter, which is there only for bpf2go.
	if boundTo == 0 {
		var o struct {
			Prog *ebpf.Program `ebpf:"xdpfwd_redirect"`
			xdpfwdMaps
		}
		if err := spec.LoadAndAssign(&o, nil); err != nil {
			return nil, fmt.Errorf("loading XDP program: %w", err)
		}
		return &objects{prog: o.Prog, xdpfwdMaps: o.xdpfwdMaps}, nil
	}
	ps := spec.Programs[xdpfwdProgXdpfwdRedirectTagged]
	ps.Flags |= bpfFXDPDevBoundOnly
	ps.Ifindex = uint32(boundTo)
	var o struct {
		Prog *ebpf.Program `ebpf:"xdpfwd_redirect_tagged"`
		xdpfwdMaps
	}
	if err := spec.LoadAndAssign(&o, nil); err != nil {
		return nil, fmt.Errorf("loading XDP program bound to ifindex %d: %w", boundTo, err)
	}
	return &objects{prog: o.Prog, xdpfwdMaps: o.xdpfwdMaps}, nil
}

func (o *objects) close() error {
	return errors.Join(o.prog.Close(), o.xdpfwdMaps.Close())
}

// configure fills the maps that steer frames to the host and bound their
// length.
func (o *objects) configure(opts Options) error {
	if err := o.setPassMACs(opts.PassMACs); err != nil {
		return err
	}
	if len(opts.PassIPv4) > MaxPassIPv4 {
		return fmt.Errorf("%d pass IPv4 addresses, at most %d supported", len(opts.PassIPv4), MaxPassIPv4)
	}
	for _, ip := range opts.PassIPv4 {
		if !ip.Is4() {
			return fmt.Errorf("pass IPv4 address %v: not an IPv4 address", ip)
		}
		// The key is the address as it stands in the packet.
		if err := o.PassIpv4.Update(binary.NativeEndian.Uint32(ip.AsSlice()), uint8(1), ebpf.UpdateAny); err != nil {
			return fmt.Errorf("adding pass IPv4 address %v: %w", ip, err)
		}
	}
	if len(opts.PassIPv6) > MaxPassIPv6 {
		return fmt.Errorf("%d pass IPv6 addresses, at most %d supported", len(opts.PassIPv6), MaxPassIPv6)
	}
	for _, ip := range opts.PassIPv6 {
		if !ip.Is6() || ip.Is4In6() {
			return fmt.Errorf("pass IPv6 address %v: not an IPv6 address", ip)
		}
		if err := o.PassIpv6.Update(xdpfwdIpv6Key{Addr: ip.As16()}, uint8(1), ebpf.UpdateAny); err != nil {
			return fmt.Errorf("adding pass IPv6 address %v: %w", ip, err)
		}
	}
	if err := o.Settings.Update(uint32(0), opts.MaxFrame, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("setting the frame length limit: %w", err)
	}
	return nil
}

// setPassMACs adds macs to the pass_macs map.
func (o *objects) setPassMACs(macs []net.HardwareAddr) error {
	if len(macs) > MaxPassMACs {
		return fmt.Errorf("%d pass MACs, at most %d supported", len(macs), MaxPassMACs)
	}
	for _, mac := range macs {
		if len(mac) != 6 {
			return fmt.Errorf("pass MAC %v: not a 6-byte Ethernet address", mac)
		}
		var key xdpfwdMacKey
		copy(key.Addr[:], mac)
		if err := o.PassMacs.Update(&key, uint8(1), ebpf.UpdateAny); err != nil {
			return fmt.Errorf("adding pass MAC %v: %w", mac, err)
		}
	}
	return nil
}

// Counters and objects.counters name exactly the C program's counters: this
// stops compiling when COUNTER_MAX in xdpfwd.c changes.
var _ = [1]struct{}{}[xdpfwdCounterCOUNTER_MAX-7]

// counters reads and sums the per-CPU counters.
func (o *objects) counters() (Counters, error) {
	var c Counters
	fields := [...]struct {
		idx xdpfwdCounter
		dst *uint64
	}{
		{xdpfwdCounterCOUNTER_REDIRECTED, &c.Redirected},
		{xdpfwdCounterCOUNTER_PASS_NO_SOCKET, &c.PassNoSocket},
		{xdpfwdCounterCOUNTER_PASS_HOST, &c.PassHost},
		{xdpfwdCounterCOUNTER_DROP_MALFORMED, &c.DropMalformed},
		{xdpfwdCounterCOUNTER_REDIRECT_FAILED, &c.RedirectFailed},
		{xdpfwdCounterCOUNTER_DROP_TOO_BIG, &c.DropTooBig},
		{xdpfwdCounterCOUNTER_VLAN_RESTORED, &c.VLANRestored},
	}
	var perCPU []uint64
	for _, f := range fields {
		if err := o.Counters.Lookup(uint32(f.idx), &perCPU); err != nil {
			return Counters{}, fmt.Errorf("counter %d: %w", f.idx, err)
		}
		for _, v := range perCPU {
			*f.dst += v
		}
	}
	return c, nil
}

// ProgramID returns the kernel's ID of the program attached through the
// port's link, as `ip link` and netlink show it on the interface.
func (p *Port) ProgramID() (uint32, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.objs == nil {
		return 0, fmt.Errorf("port %s: closed", p.name)
	}
	info, err := p.link.Info()
	if err != nil {
		return 0, fmt.Errorf("port %s: read the XDP link's info: %w", p.name, err)
	}
	return uint32(info.Program), nil
}
