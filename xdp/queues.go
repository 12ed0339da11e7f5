package xdp

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// RxQueueCount returns how many RX queues ifname has in use, as its driver
// reports them (ETHTOOL_GCHANNELS, RX or combined channels), and false when
// the driver does not say. This is the number of queues a socket can bind
// to, which may be less than the device's allocated maximum (a veth made
// without numrxqueues allocates one per CPU but uses one).
func RxQueueCount(ifname string) (int, bool) { return rxQueueCount(ifname) }

// TxQueueCount returns how many TX queues ifname has in use, as its driver
// reports them (ETHTOOL_GCHANNELS: TX-only plus combined channels), and
// false when the driver does not say. A socket may be bound to a queue
// index at or above it (binding goes by RX queue), but frames put on its TX
// ring are never sent nor completed: the kernel's copy-mode transmit skips
// a socket whose queue index is not below the device's real TX queue count.
//
// For veth it is the count set by numtxqueues or `ethtool -L IF tx N`
// (dev->real_num_tx_queues); netlink's IFLA_NUM_TX_QUEUES
// (netlink.LinkAttrs.NumTxQueues) is the number allocated, which
// `ethtool -L` does not change, and so is not the number that works.
func TxQueueCount(ifname string) (int, bool) {
	ch, ok := channels(ifname)
	if !ok {
		return 0, false
	}
	n := int(ch.txCount + ch.combinedCount)
	return n, n > 0
}

// ethtoolChannels is struct ethtool_channels from linux/ethtool.h.
type ethtoolChannels struct {
	cmd                                         uint32
	maxRx, maxTx, maxOther, maxCombined         uint32
	rxCount, txCount, otherCount, combinedCount uint32
}

// channels asks the driver of ifname for its channel counts
// (ETHTOOL_GCHANNELS), and reports false when it does not answer.
func channels(ifname string) (ethtoolChannels, bool) {
	ch := ethtoolChannels{cmd: ethtoolGChannels}
	if len(ifname) >= unix.IFNAMSIZ {
		return ch, false
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return ch, false
	}
	defer unix.Close(fd)
	var ifr struct {
		name [unix.IFNAMSIZ]byte
		data uintptr
		_    [16]byte
	}
	copy(ifr.name[:], ifname)
	ifr.data = uintptr(unsafe.Pointer(&ch))
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr))); errno != 0 {
		return ch, false
	}
	return ch, true
}
