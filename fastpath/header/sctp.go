package header

import (
	"encoding/binary"
	"hash/crc32"
)

// SCTP is an SCTP common header and the chunks after it (RFC 9260,
// section 3.1):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     Source Port Number        |     Destination Port Number   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                      Verification Tag                         |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                           Checksum                            |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// The checksum is CRC32c (Castagnoli) over the whole packet with the
// field as zero, stored least significant byte first (RFC 9260, appendix
// A; Linux's sctp_compute_cksum stores cpu_to_le32(crc)). It has no
// pseudo-header.
type SCTP []byte

const (
	sctpSrcPort = 0
	sctpDstPort = 2

	// SCTPChecksumOffset is the offset of the checksum field.
	SCTPChecksumOffset = 8
	// SCTPSize is the size of the common header.
	SCTPSize = 12
)

// SrcPort returns the source port.
func (b SCTP) SrcPort() uint16 { return be16(b[sctpSrcPort:]) }

// DstPort returns the destination port.
func (b SCTP) DstPort() uint16 { return be16(b[sctpDstPort:]) }

// Checksum returns the checksum field as the CRC value it holds.
func (b SCTP) Checksum() uint32 { return binary.LittleEndian.Uint32(b[SCTPChecksumOffset:]) }

// SetChecksum stores the CRC value c in the checksum field.
func (b SCTP) SetChecksum(c uint32) { binary.LittleEndian.PutUint32(b[SCTPChecksumOffset:], c) }

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var zeroCRCField [4]byte

// CalculateChecksum returns the CRC32c the packet should carry: over the
// whole of b with the checksum field taken as zero. b must hold at least
// SCTPSize bytes.
func (b SCTP) CalculateChecksum() uint32 {
	c := crc32.Update(0, castagnoli, b[:SCTPChecksumOffset])
	c = crc32.Update(c, castagnoli, zeroCRCField[:])
	return crc32.Update(c, castagnoli, b[SCTPSize:])
}
