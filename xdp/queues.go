package xdp

// RxQueueCount returns how many RX queues ifname has in use, as its driver
// reports them (ETHTOOL_GCHANNELS, RX or combined channels), and false when
// the driver does not say. This is the number of queues a socket can bind
// to, which may be less than the device's allocated maximum (a veth made
// without numrxqueues allocates one per CPU but uses one).
func RxQueueCount(ifname string) (int, bool) { return rxQueueCount(ifname) }
