// Package topo builds throwaway network topologies out of named network
// namespaces and veth pairs.
//
// It is used by the integration tests, by `xdpfwd demo` and by `xdpfwd
// bench`. Every namespace it creates gets a unique name (the caller's prefix
// plus a random suffix), is visible to `ip netns exec`, and is removed again by
// [Topology.Close]. Nothing in the caller's own namespace is touched: links
// are created inside the topology's namespaces, and the calling thread's
// namespace is switched only on a locked OS thread that is restored before
// it is released.
package topo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// MaxIfNameLen is the longest interface name the kernel accepts (IFNAMSIZ
// minus the terminating NUL).
const MaxIfNameLen = unix.IFNAMSIZ - 1

// netnsDir is where `ip netns` and [netns.NewNamed] keep named namespaces.
const netnsDir = "/var/run/netns"

// Topology is a set of namespaces and veth pairs created together and torn
// down together. It is safe for concurrent use.
type Topology struct {
	prefix string

	mu         sync.Mutex
	namespaces []*Namespace // in creation order
	veths      []veth       // in creation order
	closed     bool
}

// veth records one created pair by the end that was created first.
type veth struct {
	ns   *Namespace
	name string
}

// New returns an empty topology whose namespaces are named
// prefix-<random>-<role>. prefix should be short and identify the user, for
// example "xft" or "demo".
func New(prefix string) *Topology {
	var b [4]byte
	// crypto/rand.Read never returns an error (Go 1.24+).
	_, _ = rand.Read(b[:])
	return &Topology{prefix: prefix + "-" + hex.EncodeToString(b[:])}
}

// Prefix returns the unique prefix shared by every namespace name of t.
func (t *Topology) Prefix() string { return t.prefix }

// Namespace is a named network namespace owned by a [Topology].
type Namespace struct {
	name   string
	handle netns.NsHandle
	nl     *netlink.Handle
}

// AddNamespace creates a named network namespace called
// <prefix>-<role>, brings its loopback interface up and returns it. The
// namespace is removed by [Topology.Close].
func (t *Topology) AddNamespace(role string) (*Namespace, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, fmt.Errorf("add namespace %q: topology is closed", role)
	}
	if role == "" || strings.ContainsAny(role, "/\x00") {
		return nil, fmt.Errorf("add namespace: invalid role %q", role)
	}
	name := t.prefix + "-" + role
	for _, n := range t.namespaces {
		if n.name == name {
			return nil, fmt.Errorf("add namespace %q: role already used in this topology", role)
		}
	}

	var handle netns.NsHandle
	err := onLockedThread(func() error {
		h, err := netns.NewNamed(name)
		if err != nil {
			// NewNamed may leave its mount-point file behind.
			_ = os.Remove(filepath.Join(netnsDir, name))
			return err
		}
		handle = h
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("create network namespace %s: %w", name, err)
	}

	n := &Namespace{name: name, handle: handle}
	// Register before anything else can fail, so Close removes it.
	t.namespaces = append(t.namespaces, n)

	n.nl, err = netlink.NewHandleAt(handle)
	if err != nil {
		return nil, fmt.Errorf("open netlink socket in namespace %s: %w", name, err)
	}
	if err := n.LinkUp("lo"); err != nil {
		return nil, err
	}
	return n, nil
}

// onLockedThread runs fn on a fresh goroutine locked to its OS thread and
// restores that thread's network namespace afterwards. If the namespace
// cannot be restored the thread is never unlocked, so the runtime discards
// it when the goroutine exits.
func onLockedThread(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("get current network namespace: %w", err)
			return
		}
		defer orig.Close()

		restored := false
		defer func() {
			if restored {
				runtime.UnlockOSThread()
			}
		}()
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("restore network namespace: %w", err))
			return
		}
		restored = true
		errc <- ferr
	}()
	return <-errc
}

// VethOptions configures a veth pair created by [Topology.Veth]. Zero values
// mean the kernel's defaults.
type VethOptions struct {
	// Queues is the number of RX and TX queues of both ends. The kernel's
	// default for veth is the number of possible CPUs.
	Queues int
	// MTU of both ends.
	MTU int
}

// Veth creates a veth pair with end aName in namespace a and end bName in
// namespace b (a and b may be the same namespace) and brings both ends up.
// Offload settings are left at the kernel's defaults. The pair is removed by
// [Topology.Close].
func (t *Topology) Veth(a *Namespace, aName string, b *Namespace, bName string, opts VethOptions) error {
	if a == nil || b == nil {
		return fmt.Errorf("create veth %s/%s: both ends need a namespace of the topology", aName, bName)
	}
	for _, name := range []string{aName, bName} {
		if name == "" || len(name) > MaxIfNameLen {
			return fmt.Errorf("create veth %s/%s: interface name %q must have 1 to %d characters", aName, bName, name, MaxIfNameLen)
		}
	}
	if opts.Queues < 0 || opts.MTU < 0 {
		return fmt.Errorf("create veth %s/%s: negative queues (%d) or MTU (%d)", aName, bName, opts.Queues, opts.MTU)
	}

	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return fmt.Errorf("create veth %s/%s: topology is closed", aName, bName)
	}

	la := netlink.NewLinkAttrs()
	la.Name = aName
	la.MTU = opts.MTU
	la.NumRxQueues = opts.Queues
	la.NumTxQueues = opts.Queues
	v := &netlink.Veth{
		LinkAttrs:       la,
		PeerName:        bName,
		PeerTxQLen:      -1,
		PeerNumRxQueues: uint32(opts.Queues),
		PeerNumTxQueues: uint32(opts.Queues),
		PeerMTU:         uint32(opts.MTU),
	}
	if b != a {
		v.PeerNamespace = netlink.NsFd(b.handle)
	}
	if err := a.nl.LinkAdd(v); err != nil {
		return fmt.Errorf("create veth %s (in %s) / %s (in %s): %w", aName, a.name, bName, b.name, err)
	}
	t.veths = append(t.veths, veth{ns: a, name: aName})

	if err := a.LinkUp(aName); err != nil {
		return err
	}
	return b.LinkUp(bName)
}

// Close deletes every veth pair and namespace of t, in reverse creation
// order, continuing past failures, and returns all errors joined. Processes
// still running in a namespace keep it alive until they exit, but its name
// is gone. Close is idempotent.
func (t *Topology) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	t.closed = true

	var errs []error
	// Delete the pairs explicitly, so they disappear even while a process
	// still holds a namespace open.
	for i := len(t.veths) - 1; i >= 0; i-- {
		v := t.veths[i]
		link, err := v.ns.nl.LinkByName(v.name)
		if err != nil {
			var nf netlink.LinkNotFoundError
			if !errors.As(err, &nf) {
				errs = append(errs, fmt.Errorf("find veth %s in %s: %w", v.name, v.ns.name, err))
			}
			continue
		}
		if err := v.ns.nl.LinkDel(link); err != nil && !errors.Is(err, unix.ENODEV) {
			errs = append(errs, fmt.Errorf("delete veth %s in %s: %w", v.name, v.ns.name, err))
		}
	}
	for i := len(t.namespaces) - 1; i >= 0; i-- {
		n := t.namespaces[i]
		if n.nl != nil {
			n.nl.Close()
		}
		if err := n.handle.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close handle of namespace %s: %w", n.name, err))
		}
		if err := netns.DeleteNamed(n.name); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("delete namespace %s: %w", n.name, err))
		}
	}
	t.veths = nil
	t.namespaces = nil
	return errors.Join(errs...)
}

// Name returns the namespace's name, as used by `ip netns exec`.
func (n *Namespace) Name() string { return n.name }

// Netlink returns the namespace's netlink handle, for what this package has
// no helper for (other link types, XDP attach details). Links made through
// it are removed with the namespace.
func (n *Namespace) Netlink() *netlink.Handle { return n.nl }

func (n *Namespace) link(ifname string) (netlink.Link, error) {
	link, err := n.nl.LinkByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("find interface %s in namespace %s: %w", ifname, n.name, err)
	}
	return link, nil
}

// AddAddr adds the address cidr (for example "10.77.0.1/24") to ifname.
func (n *Namespace) AddAddr(ifname, cidr string) error {
	addr, err := netlink.ParseAddr(cidr)
	if err != nil {
		return fmt.Errorf("parse address %q: %w", cidr, err)
	}
	link, err := n.link(ifname)
	if err != nil {
		return err
	}
	if err := n.nl.AddrAdd(link, addr); err != nil {
		return fmt.Errorf("add address %s to %s in namespace %s: %w", cidr, ifname, n.name, err)
	}
	return nil
}

// LinkUp sets ifname administratively up.
func (n *Namespace) LinkUp(ifname string) error {
	link, err := n.link(ifname)
	if err != nil {
		return err
	}
	if err := n.nl.LinkSetUp(link); err != nil {
		return fmt.Errorf("set %s up in namespace %s: %w", ifname, n.name, err)
	}
	return nil
}

// MAC returns the hardware address of ifname.
func (n *Namespace) MAC(ifname string) (net.HardwareAddr, error) {
	link, err := n.link(ifname)
	if err != nil {
		return nil, err
	}
	return link.Attrs().HardwareAddr, nil
}

// LinkStats returns the packet counters of ifname as the kernel reports them.
func (n *Namespace) LinkStats(ifname string) (rxPackets, txPackets uint64, err error) {
	link, err := n.link(ifname)
	if err != nil {
		return 0, 0, err
	}
	st := link.Attrs().Statistics
	if st == nil {
		return 0, 0, fmt.Errorf("read statistics of %s in namespace %s: kernel returned none", ifname, n.name)
	}
	return st.RxPackets, st.TxPackets, nil
}

// XDPAttached reports whether an XDP program (in any mode, attached by
// netlink or by bpf_link) is attached to ifname.
func (n *Namespace) XDPAttached(ifname string) (bool, error) {
	link, err := n.link(ifname)
	if err != nil {
		return false, err
	}
	xdp := link.Attrs().Xdp
	return xdp != nil && xdp.Attached, nil
}

// Neigh adds or replaces a permanent neighbour entry for ip on ifname.
func (n *Namespace) Neigh(ifname, ip string, mac net.HardwareAddr) error {
	addr := net.ParseIP(ip)
	if addr == nil {
		return fmt.Errorf("add neighbour on %s: invalid IP address %q", ifname, ip)
	}
	link, err := n.link(ifname)
	if err != nil {
		return err
	}
	family := netlink.FAMILY_V6
	if addr.To4() != nil {
		family = netlink.FAMILY_V4
	}
	err = n.nl.NeighSet(&netlink.Neigh{
		LinkIndex:    link.Attrs().Index,
		Family:       family,
		State:        netlink.NUD_PERMANENT,
		IP:           addr,
		HardwareAddr: mac,
	})
	if err != nil {
		return fmt.Errorf("add neighbour %s at %s on %s in namespace %s: %w", ip, mac, ifname, n.name, err)
	}
	return nil
}

// Do runs fn on an OS thread that is inside the namespace for the duration
// of the call. Sockets fn creates belong to the namespace and may be used
// from any goroutine afterwards; goroutines fn starts do not run in the
// namespace.
func (n *Namespace) Do(fn func() error) error {
	return onLockedThread(func() error {
		if err := netns.Set(n.handle); err != nil {
			return fmt.Errorf("enter network namespace %s: %w", n.name, err)
		}
		return fn()
	})
}

// Command returns a command that runs name with args inside the namespace,
// via `ip netns exec`, which execs name in place, so the returned command's
// process is the program itself.
func (n *Namespace) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.name, name}, args...)...)
}
