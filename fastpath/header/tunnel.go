package header

// Tunnel encapsulations whose inner checksums a forwarder may have to
// finish: VXLAN and GENEVE over UDP, GRE over IP.

// Well-known UDP destination ports of tunnels (IANA).
const (
	// UDPPortVXLAN is VXLAN's port (RFC 7348).
	UDPPortVXLAN = 4789
	// UDPPortVXLANLinux is the port Linux gives a vxlan device made
	// without dstport (and flannel uses).
	UDPPortVXLANLinux = 8472
	// UDPPortGENEVE is GENEVE's port (RFC 8926).
	UDPPortGENEVE = 6081
)

// More IP protocol numbers (IANA).
const (
	// ProtocolGRE is Generic Routing Encapsulation.
	ProtocolGRE = 47
	// ProtocolSCTP is the Stream Control Transmission Protocol.
	ProtocolSCTP = 132
)

// EtherTypeTEB is Transparent Ethernet Bridging: an Ethernet frame inside
// GRE (gretap) or GENEVE.
const EtherTypeTEB = 0x6558

// VXLAN is a VXLAN header (RFC 7348, section 5) and the inner Ethernet
// frame after it:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|R|R|R|R|I|R|R|R|            Reserved                           |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                VXLAN Network Identifier (VNI) |   Reserved    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
type VXLAN []byte

const (
	vxlanFlags = 0
	vxlanVNI   = 4

	// VXLANSize is the size of a VXLAN header.
	VXLANSize = 8

	vxlanFlagI = 0x08
)

// IsValid reports whether b holds a VXLAN header with the I flag (a valid
// VNI) set, as RFC 7348 requires of every VXLAN packet.
func (b VXLAN) IsValid() bool { return len(b) >= VXLANSize && b[vxlanFlags]&vxlanFlagI != 0 }

// VNI returns the VXLAN network identifier.
func (b VXLAN) VNI() uint32 {
	return uint32(b[vxlanVNI])<<16 | uint32(b[vxlanVNI+1])<<8 | uint32(b[vxlanVNI+2])
}

// Payload returns the inner Ethernet frame.
func (b VXLAN) Payload() []byte { return b[VXLANSize:] }

// GENEVE is a GENEVE header (RFC 8926, section 3.4) with its options and
// the payload after them:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Ver|  Opt Len  |O|C|    Rsvd.  |          Protocol Type        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|        Virtual Network Identifier (VNI)       |    Reserved   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                                                               |
//	~                    Variable-Length Options                    ~
//	|                                                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
type GENEVE []byte

const (
	geneveVerOptLen = 0
	geneveProtocol  = 2
	geneveVNI       = 4

	// GENEVEMinSize is the size of a GENEVE header without options.
	GENEVEMinSize = 8
)

// Version returns the version field (0 is the only one defined).
func (b GENEVE) Version() uint8 { return b[geneveVerOptLen] >> 6 }

// HeaderLength returns the header length in bytes, options included.
func (b GENEVE) HeaderLength() int { return GENEVEMinSize + int(b[geneveVerOptLen]&0x3f)*4 }

// ProtocolType returns the EtherType of the payload (EtherTypeTEB for an
// Ethernet frame).
func (b GENEVE) ProtocolType() uint16 { return be16(b[geneveProtocol:]) }

// VNI returns the virtual network identifier.
func (b GENEVE) VNI() uint32 {
	return uint32(b[geneveVNI])<<16 | uint32(b[geneveVNI+1])<<8 | uint32(b[geneveVNI+2])
}

// IsValid reports whether b holds a version 0 GENEVE header whose options
// fit in b.
func (b GENEVE) IsValid() bool {
	return len(b) >= GENEVEMinSize && b.Version() == 0 && b.HeaderLength() <= len(b)
}

// Payload returns what follows the header and its options. Call it only
// on a header that IsValid.
func (b GENEVE) Payload() []byte { return b[b.HeaderLength():] }

// GRE is a GRE header (RFC 2784, section 2, with the key and sequence
// number extensions of RFC 2890) and its payload:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|C|R|K|S| Reserved0       | Ver |         Protocol Type         |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|      Checksum (optional)      |       Reserved1 (Optional)    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                         Key (optional)                        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                 Sequence Number (Optional)                    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// The checksum covers the GRE header and payload, with no pseudo-header.
// R (the routing bit of RFC 1701) is set by no current sender; a header
// with it, or with a version other than 0, is not IsValid.
type GRE []byte

const (
	greFlags    = 0
	greProtocol = 2
	greChecksum = 4

	// GREMinSize is the size of a GRE header without optional fields.
	GREMinSize = 4

	greFlagC = 0x80
	greFlagR = 0x40
	greFlagK = 0x20
	greFlagS = 0x10
)

// HasChecksum reports whether the C flag is set: the checksum field is
// present and meaningful.
func (b GRE) HasChecksum() bool { return b[greFlags]&greFlagC != 0 }

// HasKey reports whether the K flag is set.
func (b GRE) HasKey() bool { return b[greFlags]&greFlagK != 0 }

// HasSeq reports whether the S flag is set.
func (b GRE) HasSeq() bool { return b[greFlags]&greFlagS != 0 }

// Version returns the version (0; 1 is PPTP's enhanced GRE).
func (b GRE) Version() uint8 { return b[greFlags+1] & 7 }

// ProtocolType returns the EtherType of the payload.
func (b GRE) ProtocolType() uint16 { return be16(b[greProtocol:]) }

// HeaderLength returns the header length in bytes, optional fields
// included.
func (b GRE) HeaderLength() int {
	n := GREMinSize
	if b.HasChecksum() {
		n += 4
	}
	if b.HasKey() {
		n += 4
	}
	if b.HasSeq() {
		n += 4
	}
	return n
}

// IsValid reports whether b holds a version 0 GRE header without the R
// flag whose optional fields fit in b.
func (b GRE) IsValid() bool {
	return len(b) >= GREMinSize && b[greFlags]&greFlagR == 0 && b.Version() == 0 && b.HeaderLength() <= len(b)
}

// Checksum returns the checksum field; call it only if HasChecksum.
func (b GRE) Checksum() uint16 { return be16(b[greChecksum:]) }

// SetChecksum sets the checksum field; call it only if HasChecksum.
func (b GRE) SetChecksum(c uint16) { put16(b[greChecksum:], c) }

// Payload returns what follows the header. Call it only on a header that
// IsValid.
func (b GRE) Payload() []byte { return b[b.HeaderLength():] }
