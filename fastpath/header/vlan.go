package header

// VLAN is an IEEE 802.1Q tag as it sits in a frame, in the place of the
// EtherType, followed by the EtherType of what it tags (IEEE 802.1Q-2018,
// section 9.6; 802.1ad S-tags have the same layout with TPID 0x88a8):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     TPID (0x8100, 0x88a8)     | PCP |D|         VID           |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     EtherType (or next TPID)  |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// PCP is the priority code point, D the drop eligible indicator (DEI);
// together with the VID they form the tag control information (TCI). A
// view starts at the TPID, so VLAN(frame[12:]) is the first tag of a
// tagged frame; it must hold VLANViewSize bytes.
type VLAN []byte

const (
	vlanTPID      = 0
	vlanTCI       = 2
	vlanEtherType = 4

	// VLANTagSize is the number of bytes a tag adds to a frame.
	VLANTagSize = 4
	// VLANViewSize is the size of a VLAN view: the tag and the EtherType
	// after it.
	VLANViewSize = 6

	// VLANVIDMask selects the VID in a TCI.
	VLANVIDMask = 0x0fff
)

// TPIDs (tag protocol identifiers) of IEEE 802.1Q tags, which take the
// place of an EtherType.
const (
	// EtherTypeVLAN is the TPID of an 802.1Q customer tag (C-tag).
	EtherTypeVLAN = 0x8100
	// EtherTypeQinQ is the TPID of an 802.1ad service tag (S-tag).
	EtherTypeQinQ = 0x88a8
)

// IsVLANTPID reports whether an EtherType is the TPID of an 802.1Q or
// 802.1ad tag, as Linux's eth_type_vlan decides.
func IsVLANTPID(t uint16) bool { return t == EtherTypeVLAN || t == EtherTypeQinQ }

// TPID returns the tag protocol identifier.
func (b VLAN) TPID() uint16 { return be16(b[vlanTPID:]) }

// TCI returns the tag control information: PCP, DEI and VID.
func (b VLAN) TCI() uint16 { return be16(b[vlanTCI:]) }

// PCP returns the priority code point (0-7).
func (b VLAN) PCP() uint8 { return b[vlanTCI] >> 5 }

// DEI reports whether the drop eligible indicator is set.
func (b VLAN) DEI() bool { return b[vlanTCI]&0x10 != 0 }

// VID returns the VLAN identifier (0: priority tag, no VLAN).
func (b VLAN) VID() uint16 { return b.TCI() & VLANVIDMask }

// EtherType returns the EtherType after the tag: the payload's, or the
// TPID of the next tag.
func (b VLAN) EtherType() uint16 { return be16(b[vlanEtherType:]) }

// SetTCI sets the tag control information.
func (b VLAN) SetTCI(tci uint16) { put16(b[vlanTCI:], tci) }
