// Package pktgen is a UDP packet generator on an AF_XDP socket: it builds
// its frames once, then only moves descriptors between the TX and
// completion rings, so one core can offer far more packets than a kernel
// bridge or xdpfwd forwards. xdpfwd bench drives both paths with it.
//
// Why not trafgen: it stops at the first EAGAIN on a full ring, and an
// AF_XDP generator of our own exercises the same socket layer the
// forwarder uses.
package pktgen

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/xdpfwd/xdpfwd/xdp"
)

// Config describes the traffic.
type Config struct {
	// Ifindex is the interface to send on, in the calling thread's namespace.
	Ifindex int
	// SrcMAC and DstMAC are every frame's Ethernet addresses.
	SrcMAC, DstMAC net.HardwareAddr
	// Src and Dst are the IPv4 addresses and UDP ports; the source port
	// counts up from Src's over Flows flows.
	Src, Dst netip.AddrPort
	// Size is the Ethernet frame length without FCS (minimum 60; 64 on the
	// wire counts the 4-byte FCS the NIC adds, so Size 60 is "64-byte").
	Size int
	// Flows spreads frames over this many source ports (default 1).
	Flows int
	// Duration bounds the run; the context may end it sooner.
	Duration time.Duration
	// Rate caps the offered load in packets per second; 0 sends as fast as
	// the TX ring takes frames.
	Rate float64
}

// Result is what one run sent.
type Result struct {
	// Sent counts the frames the kernel sent: those it gave back on the
	// completion ring. Frames still on the TX ring when the run ends are
	// kicked out first (for at most a second), so Sent is the load offered
	// to the link, not what the ring took.
	Sent uint64
	// Elapsed is how long the run took, the final drain not included:
	// Sent / Elapsed is the offered rate.
	Elapsed time.Duration
	// Kicks counts the sendto calls that woke the kernel.
	Kicks uint64
	// Behind counts frames a paced run left out because it fell more than
	// maxBacklog frames behind its schedule (the generator was not run for
	// a while): they are not sent later in one burst, which would measure
	// the path's tolerance to bursts instead of the paced rate. Sent does
	// not include them.
	Behind uint64
}

// maxBacklog is how far behind its schedule a paced run may fall before it
// leaves frames out (Result.Behind) rather than catch up in a burst.
const maxBacklog = 256

// Frame builds the UDP frame with source port sport: correct checksums,
// zero padding up to size.
func Frame(c Config, sport uint16) ([]byte, error) {
	eth := &layers.Ethernet{SrcMAC: c.SrcMAC, DstMAC: c.DstMAC, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP,
		SrcIP: c.Src.Addr().AsSlice(), DstIP: c.Dst.Addr().AsSlice()}
	udp := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(c.Dst.Port())}
	if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
		return nil, err
	}
	payload := max(0, c.Size-14-20-8)
	buf := gopacket.NewSerializeBuffer()
	err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		eth, ip, udp, gopacket.Payload(make([]byte, payload)))
	if err != nil {
		return nil, fmt.Errorf("build frame: %w", err)
	}
	return buf.Bytes(), nil
}

// Run sends as fast as the TX ring takes frames, or at Rate, until the
// duration is over or ctx is done. Call it on a thread in the sender's
// network namespace: the socket is made there.
//
// Pacing is by the clock, not by sleeping a gap per frame: before each
// batch Run sends what the rate allows by now (at most 64 frames) and
// sleeps 50µs while nothing is due, so the offered rate over the run is
// Rate however coarse the sleeps are; no sendto carries more than 64
// frames, and a generator that was not run for a while catches up at most
// maxBacklog frames (the rest are counted in Result.Behind).
func Run(ctx context.Context, c Config) (Result, error) {
	if c.Size < 60 {
		c.Size = 60
	}
	c.Flows = max(c.Flows, 1)
	const ring = 2048
	umem, err := xdp.NewUmem(xdp.UmemConfig{FrameCount: 2 * ring, FrameSize: 2048, FillSize: ring, CompletionSize: ring})
	if err != nil {
		return Result{}, err
	}
	defer umem.Close()
	sock, err := umem.NewSocket(xdp.SocketConfig{Ifindex: c.Ifindex, RxSize: 64, TxSize: ring, NeedWakeup: true, TxBudget: ring / 8})
	if err != nil {
		return Result{}, fmt.Errorf("generator socket: %w", err)
	}
	defer sock.Close()

	// Every frame is written once; afterwards only descriptors move.
	free := make([]uint64, umem.Config().FrameCount)
	n := umem.Alloc(free)
	descs := make([]xdp.Desc, n)
	for i := range n {
		f, err := Frame(c, c.Src.Port()+uint16(i%c.Flows))
		if err != nil {
			return Result{}, err
		}
		copy(umem.Frame(free[i], uint32(len(f))), f)
		descs[i] = xdp.Desc{Addr: free[i], Len: uint32(len(f))}
	}
	// descs is a circular queue of frames waiting for the TX ring.
	length, head, queued := descs[0].Len, 0, len(descs)
	done := make([]uint64, 256)
	var res Result
	var taken uint64 // frames the TX ring took
	// reap takes completions off the ring and queues their frames again.
	reap := func() {
		for _, addr := range done[:sock.Complete(done[:min(len(done), len(descs)-queued)])] {
			descs[(head+queued)%len(descs)] = xdp.Desc{Addr: addr, Len: length}
			queued++
			res.Sent++
		}
	}
	start := time.Now()
	deadline := start.Add(c.Duration)
	for i := 0; ; i++ {
		if i%64 == 0 && (time.Now().After(deadline) || ctx.Err() != nil) {
			break
		}
		batch := descs[head:min(head+queued, len(descs))]
		if c.Rate > 0 {
			due := int64(c.Rate*time.Since(start).Seconds()) - int64(taken) - int64(res.Behind)
			if due > maxBacklog {
				res.Behind += uint64(due - maxBacklog)
				due = maxBacklog
			}
			if due <= 0 {
				reap()
				time.Sleep(50 * time.Microsecond)
				continue
			}
			batch = batch[:min(int64(len(batch)), due, 64)]
		}
		sent := sock.Transmit(batch)
		taken += uint64(sent)
		head, queued = (head+sent)%len(descs), queued-sent
		reap()
	}
	res.Elapsed = time.Since(start)
	// Frames the ring took but the kernel has not sent yet are kicked out
	// and counted, so that Sent is what was offered.
	for end := time.Now().Add(time.Second); res.Sent < taken && time.Now().Before(end); {
		sock.Transmit(nil)
		reap()
		if res.Sent < taken {
			time.Sleep(100 * time.Microsecond)
		}
	}
	res.Kicks = sock.Kicks()
	if res.Sent < taken {
		return res, fmt.Errorf("generator: %d of %d frames queued for TX never completed within a second of the end", taken-res.Sent, taken)
	}
	return res, nil
}
