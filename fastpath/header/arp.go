package header

import (
	"errors"
	"fmt"
)

// ARP is an ARP message for IPv4 over Ethernet (RFC 826), the payload of
// an Ethernet frame of EtherType 0x0806:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     Hardware type (1)         |     Protocol type (0x0800)    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| HW len (6)    | Proto len (4) |          Operation            |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                 Sender hardware address                       |
//	+                               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                               |  Sender protocol address      |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  (cont.)                      |                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               +
//	|                 Target hardware address                       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                 Target protocol address                       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// A view must hold ARPSize bytes; IsValid checks that and the fixed
// fields.
type ARP []byte

const (
	arpHType = 0
	arpPType = 2
	arpHLen  = 4
	arpPLen  = 5
	arpOp    = 6
	arpSHA   = 8
	arpSPA   = 14
	arpTHA   = 18
	arpTPA   = 24

	// ARPSize is the size of an ARP message for IPv4 over Ethernet.
	ARPSize = 28

	arpHTypeEthernet = 1
	arpHTypeIEEE802  = 6
)

// ARP operations (RFC 826).
const (
	ARPRequest = 1
	ARPReply   = 2
)

// IsValid reports whether b holds an ARP message for IPv4 over Ethernet:
// at least ARPSize bytes (a frame's padding may follow), hardware type 1
// (Ethernet) or 6 (IEEE 802, which Linux's arp_process accepts on an
// Ethernet device too), protocol type 0x0800, address lengths 6 and 4. It
// does not check the operation.
func (b ARP) IsValid() bool {
	if len(b) < ARPSize {
		return false
	}
	ht := be16(b[arpHType:])
	return (ht == arpHTypeEthernet || ht == arpHTypeIEEE802) &&
		be16(b[arpPType:]) == EtherTypeIPv4 && b[arpHLen] == 6 && b[arpPLen] == 4
}

// HardwareType returns the hardware type: 1 (Ethernet) or 6 (IEEE 802)
// in a valid message.
func (b ARP) HardwareType() uint16 { return be16(b[arpHType:]) }

// Op returns the operation (ARPRequest, ARPReply).
func (b ARP) Op() uint16 { return be16(b[arpOp:]) }

// SetOp sets the operation.
func (b ARP) SetOp(op uint16) { put16(b[arpOp:], op) }

// SenderMAC returns the sender hardware address.
func (b ARP) SenderMAC() MAC { return MAC(b[arpSHA : arpSHA+6]) }

// SetSenderMAC sets the sender hardware address.
func (b ARP) SetSenderMAC(m MAC) { copy(b[arpSHA:arpSHA+6], m[:]) }

// SenderIP returns the sender protocol address.
func (b ARP) SenderIP() [4]byte { return [4]byte(b[arpSPA : arpSPA+4]) }

// SetSenderIP sets the sender protocol address.
func (b ARP) SetSenderIP(a [4]byte) { copy(b[arpSPA:arpSPA+4], a[:]) }

// TargetMAC returns the target hardware address.
func (b ARP) TargetMAC() MAC { return MAC(b[arpTHA : arpTHA+6]) }

// SetTargetMAC sets the target hardware address.
func (b ARP) SetTargetMAC(m MAC) { copy(b[arpTHA:arpTHA+6], m[:]) }

// TargetIP returns the target protocol address.
func (b ARP) TargetIP() [4]byte { return [4]byte(b[arpTPA : arpTPA+4]) }

// SetTargetIP sets the target protocol address.
func (b ARP) SetTargetIP(a [4]byte) { copy(b[arpTPA:arpTPA+4], a[:]) }

// IsGratuitous reports whether the message announces its sender's own
// address: sender and target protocol addresses equal (RFC 5227, section
// 3).
func (b ARP) IsGratuitous() bool { return b.SenderIP() == b.TargetIP() }

// ErrShortBuffer is returned, wrapped with what was being built and the
// sizes, by the builders when the caller's buffer cannot hold what they
// build.
var ErrShortBuffer = errors.New("buffer too short")

// Errors of BuildARPReply about the request; returned as they are, so a
// flood of bad requests allocates nothing.
var (
	ErrARPInvalid    = errors.New("ARP reply: message is not ARP for IPv4 over Ethernet")
	ErrARPNotRequest = errors.New("ARP reply: operation is not a request")
)

// putARP writes an IPv4-over-Ethernet ARP message into b.
func putARP(b []byte, op uint16, sha MAC, spa [4]byte, tha MAC, tpa [4]byte) {
	_ = b[ARPSize-1]
	put16(b[arpHType:], arpHTypeEthernet)
	put16(b[arpPType:], EtherTypeIPv4)
	b[arpHLen], b[arpPLen] = 6, 4
	put16(b[arpOp:], op)
	copy(b[arpSHA:arpSHA+6], sha[:])
	copy(b[arpSPA:arpSPA+4], spa[:])
	copy(b[arpTHA:arpTHA+6], tha[:])
	copy(b[arpTPA:arpTPA+4], tpa[:])
}

// BuildARPReply writes into buf the reply to the ARP request req from a
// host that owns req's target address at hardware address mac: sender
// mac and req's target address, target req's sender, hardware type 1
// (RFC 826; as Linux's arp_process answers on an Ethernet device), and
// returns its length, ARPSize. The caller sends
// it in an Ethernet frame from mac to req.SenderMAC(). buf may be req
// itself (a reply in place). It fails with ErrARPInvalid for an invalid
// message, ErrARPNotRequest for an operation other than request, or
// ErrShortBuffer (wrapped) for a buffer shorter than ARPSize.
func BuildARPReply(buf []byte, req ARP, mac MAC) (int, error) {
	if !req.IsValid() {
		return 0, ErrARPInvalid
	}
	if req.Op() != ARPRequest {
		return 0, ErrARPNotRequest
	}
	if len(buf) < ARPSize {
		return 0, fmt.Errorf("ARP reply: %d-byte buffer, need %d: %w", len(buf), ARPSize, ErrShortBuffer)
	}
	sha, spa, tpa := req.SenderMAC(), req.SenderIP(), req.TargetIP()
	putARP(buf, ARPReply, mac, tpa, sha, spa)
	return ARPSize, nil
}

// BuildARPRequest writes into buf a request for the hardware address of
// target from a host at mac and ip, and returns its length, ARPSize. The
// target hardware address is zero, as Linux's arp_solicit sends it; the
// caller sends it to the broadcast address, or to the cached address when
// confirming a stale entry. With target == ip it is a gratuitous ARP
// announcing ip (RFC 5227, section 3).
func BuildARPRequest(buf []byte, mac MAC, ip, target [4]byte) (int, error) {
	if len(buf) < ARPSize {
		return 0, fmt.Errorf("ARP request: %d-byte buffer, need %d: %w", len(buf), ARPSize, ErrShortBuffer)
	}
	putARP(buf, ARPRequest, mac, ip, MAC{}, target)
	return ARPSize, nil
}
