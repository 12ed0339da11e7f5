package header

// UDP is a UDP header and payload (RFC 768):
//
//	 0      7 8     15 16    23 24    31
//	+--------+--------+--------+--------+
//	|     Source      |   Destination   |
//	|      Port       |      Port       |
//	+--------+--------+--------+--------+
//	|                 |                 |
//	|     Length      |    Checksum     |
//	+--------+--------+--------+--------+
type UDP []byte

const (
	udpSrcPort = 0
	udpDstPort = 2
	udpLength  = 4

	// UDPChecksumOffset is the offset of the checksum field in a UDP header.
	UDPChecksumOffset = 6
	// UDPSize is the size of a UDP header.
	UDPSize = 8
)

// SrcPort returns the source port.
func (b UDP) SrcPort() uint16 { return be16(b[udpSrcPort:]) }

// DstPort returns the destination port.
func (b UDP) DstPort() uint16 { return be16(b[udpDstPort:]) }

// Length returns the length field: header and payload in bytes.
func (b UDP) Length() uint16 { return be16(b[udpLength:]) }

// Checksum returns the checksum field.
func (b UDP) Checksum() uint16 { return be16(b[UDPChecksumOffset:]) }

// SetChecksum sets the checksum field.
func (b UDP) SetChecksum(c uint16) { put16(b[UDPChecksumOffset:], c) }

// TCP is a TCP header (RFC 9293, section 3.1):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|          Source Port          |       Destination Port        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                        Sequence Number                        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                    Acknowledgment Number                      |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Data |       |C|E|U|A|P|R|S|F|                               |
//	| Offset| Rsrvd |W|C|R|C|S|S|Y|I|            Window             |
//	|       |       |R|E|G|K|H|T|N|N|                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|           Checksum            |         Urgent Pointer        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                           [Options]                           |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
type TCP []byte

const (
	tcpSrcPort    = 0
	tcpDstPort    = 2
	tcpDataOffset = 12
	tcpFlags      = 13

	// TCPChecksumOffset is the offset of the checksum field in a TCP header.
	TCPChecksumOffset = 16
	// TCPMinSize is the size of a TCP header without options.
	TCPMinSize = 20
)

// SrcPort returns the source port.
func (b TCP) SrcPort() uint16 { return be16(b[tcpSrcPort:]) }

// DstPort returns the destination port.
func (b TCP) DstPort() uint16 { return be16(b[tcpDstPort:]) }

// DataOffset returns the header length in bytes (data offset × 4).
func (b TCP) DataOffset() int { return int(b[tcpDataOffset]>>4) * 4 }

// Flags returns the flag octet (CWR ... FIN).
func (b TCP) Flags() uint8 { return b[tcpFlags] }

// Checksum returns the checksum field.
func (b TCP) Checksum() uint16 { return be16(b[TCPChecksumOffset:]) }

// SetChecksum sets the checksum field.
func (b TCP) SetChecksum(c uint16) { put16(b[TCPChecksumOffset:], c) }
