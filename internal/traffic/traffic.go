// Package traffic sends checked traffic between the hosts of a topology:
// TCP bulk transfers verified by SHA-256 and UDP datagrams verified byte
// for byte. The demo and the integration tests use it.
package traffic

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"time"

	"github.com/xdpfwd/xdpfwd/internal/topo"
)

// TCPResult is one finished transfer.
type TCPResult struct {
	// Bytes is how much was sent and verified.
	Bytes int
	// Elapsed runs from the first write to the server's digest.
	Elapsed time.Duration
}

// Gbps is the transfer's goodput in gigabits per second.
func (r TCPResult) Gbps() float64 { return float64(r.Bytes) * 8 / r.Elapsed.Seconds() / 1e9 }

// TCP sends size bytes of random data (from seed) from src to a server on
// dst and fails unless the server's SHA-256 of what it received equals the
// sender's.
func TCP(src, dst *topo.Host, size int, seed uint64) (TCPResult, error) {
	return TCPVia(src, dst, 0, netip.AddrPort{}, size, seed)
}

// TCPVia is TCP with the server on dst listening on port (0: any) and the
// client connecting to via instead of the server's own address (zero:
// the server's): through a destination NAT, a port forward.
func TCPVia(src, dst *topo.Host, port uint16, via netip.AddrPort, size int, seed uint64) (TCPResult, error) {
	addr, serverErr, err := tcpServer(dst, port)
	if err != nil {
		return TCPResult{}, err
	}
	if via.IsValid() {
		addr = via
	}
	var c *net.TCPConn
	err = src.Do(func() error {
		d := net.Dialer{Timeout: 10 * time.Second}
		conn, err := d.Dial("tcp4", addr.String())
		if err != nil {
			return err
		}
		c = conn.(*net.TCPConn)
		return nil
	})
	if err != nil {
		return TCPResult{}, fmt.Errorf("connect %s from %s: %w", addr, src.Name(), err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Minute))

	start := time.Now()
	rng := rand.New(rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16), byte(seed >> 24)}))
	hash := sha256.New()
	chunk := make([]byte, 64<<10)
	for left := size; left > 0; {
		n := min(left, len(chunk))
		for i := 0; i < n; i += 8 {
			binary.LittleEndian.PutUint64(chunk[i:], rng.Uint64())
		}
		hash.Write(chunk[:n])
		if _, err := c.Write(chunk[:n]); err != nil {
			return TCPResult{}, fmt.Errorf("client write with %d bytes left: %w", left, err)
		}
		left -= n
	}
	if err := c.CloseWrite(); err != nil {
		return TCPResult{}, fmt.Errorf("client close write: %w", err)
	}
	got := make([]byte, sha256.Size)
	if _, err := io.ReadFull(c, got); err != nil {
		return TCPResult{}, errors.Join(fmt.Errorf("client read digest: %w", err), <-serverErr)
	}
	elapsed := time.Since(start)
	if err := <-serverErr; err != nil {
		return TCPResult{}, err
	}
	if want := hash.Sum(nil); !bytes.Equal(got, want) {
		return TCPResult{}, fmt.Errorf("server received data with SHA-256 %x, sender sent %x (%d bytes)", got, want, size)
	}
	return TCPResult{Bytes: size, Elapsed: elapsed}, nil
}

// tcpServer accepts one connection on h's port (0: any), reads it to EOF, and writes back
// the SHA-256 of what it read.
func tcpServer(h *topo.Host, port uint16) (netip.AddrPort, <-chan error, error) {
	var ln *net.TCPListener
	err := h.Do(func() error {
		var err error
		ln, err = net.ListenTCP("tcp4", net.TCPAddrFromAddrPort(netip.AddrPortFrom(h.IP, port)))
		return err
	})
	if err != nil {
		return netip.AddrPort{}, nil, fmt.Errorf("listen TCP in %s: %w", h.Name(), err)
	}
	errc := make(chan error, 1)
	go func() {
		defer ln.Close()
		_ = ln.SetDeadline(time.Now().Add(2 * time.Minute))
		c, err := ln.AcceptTCP()
		if err != nil {
			errc <- fmt.Errorf("accept: %w", err)
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Minute))
		hash := sha256.New()
		if _, err := io.Copy(hash, c); err != nil {
			errc <- fmt.Errorf("server read: %w", err)
			return
		}
		if _, err := c.Write(hash.Sum(nil)); err != nil {
			errc <- fmt.Errorf("server write digest: %w", err)
			return
		}
		errc <- nil
	}()
	return ln.Addr().(*net.TCPAddr).AddrPort(), errc, nil
}

// UDPResult counts one run of UDP datagrams.
type UDPResult struct {
	// Sent and Received count datagrams; Received only counts those whose
	// bytes equal what was sent.
	Sent, Received int
	// Corrupt counts datagrams that arrived with other bytes.
	Corrupt int
}

// UDP sends n datagrams of random content and lengths up to maxLen (8 to
// 1472) from src to dst, in windows of 32 so the receiver keeps up, and
// counts what arrives intact. A datagram that does not arrive within a
// second of its window is counted as lost, not retried.
func UDP(src, dst *topo.Host, n, maxLen int, seed uint64) (UDPResult, error) {
	maxLen = min(max(maxLen, 8), 1472)
	var rx, tx *net.UDPConn
	err := dst.Do(func() (err error) {
		rx, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(dst.IP, 0)))
		return err
	})
	if err != nil {
		return UDPResult{}, fmt.Errorf("listen UDP in %s: %w", dst.Name(), err)
	}
	defer rx.Close()
	err = src.Do(func() (err error) {
		tx, err = net.DialUDP("udp4", nil, rx.LocalAddr().(*net.UDPAddr))
		return err
	})
	if err != nil {
		return UDPResult{}, fmt.Errorf("dial UDP from %s: %w", src.Name(), err)
	}
	defer tx.Close()

	const window = 32
	rng := rand.New(rand.NewPCG(seed, 1))
	var res UDPResult
	buf := make([]byte, 2048)
	for start := 0; start < n; start += window {
		sent := make(map[uint64][]byte, window)
		for seq := start; seq < min(start+window, n); seq++ {
			p := make([]byte, 8+rng.IntN(maxLen-8+1))
			for i := 8; i < len(p); i++ {
				p[i] = byte(rng.Uint32())
			}
			binary.BigEndian.PutUint64(p, uint64(seq))
			sent[uint64(seq)] = p
			if _, err := tx.Write(p); err != nil {
				return res, fmt.Errorf("send datagram %d: %w", seq, err)
			}
			res.Sent++
		}
		_ = rx.SetReadDeadline(time.Now().Add(time.Second))
		for len(sent) > 0 {
			m, err := rx.Read(buf)
			if err != nil {
				break // the rest of the window is lost
			}
			want, ok := sent[binary.BigEndian.Uint64(buf[:max(m, 8)])]
			if m < 8 || !ok || !bytes.Equal(buf[:m], want) {
				res.Corrupt++
				continue
			}
			delete(sent, binary.BigEndian.Uint64(buf))
			res.Received++
		}
	}
	return res, nil
}
