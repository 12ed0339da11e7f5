package rules

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
)

// nft's data types (src/datatype.h, TYPE_*) that ElementStrings writes as
// nft does; others are written in hex.
const (
	typeMark       = 19
	typeIPv4Addr   = 7
	typeIPv6Addr   = 8
	typeEtherAddr  = 9
	typeInetProto  = 12
	typeInetServic = 13
	typeInteger    = 4
	typeIfname     = 41
)

// ElementStrings returns the set's elements as nft writes them, one a
// string, in key order: addresses, ports, protocols, marks and interface
// names as nft prints them (others in hex), concatenations joined by
// " . ", a range as FIRST-LAST or, where it is one, as a prefix, a map's
// data after " : ". Intervals are the kernel's pairs of a start and an
// end element (ElemIntervalEnd, whose key is one past the range).
func (s *Set) ElementStrings() []string {
	types := s.fieldTypes()
	lens := s.FieldLen
	if len(lens) == 0 {
		lens = []uint32{s.KeyLen}
	}
	field := func(k []byte) string {
		var parts []string
		off := 0
		for i, l := range lens {
			if off+int(l) > len(k) {
				break
			}
			parts = append(parts, formatValue(types[min(i, len(types)-1)], k[off:off+int(l)]))
			off += int(l+3) &^ 3
		}
		return strings.Join(parts, " . ")
	}
	data := func(e Element) string {
		switch {
		case s.Flags&SetMap == 0:
			return ""
		case s.VerdictMap():
			return " : " + e.Verdict.String()
		default:
			return " : " + formatValue(s.DataType, e.Data)
		}
	}
	var out []string
	els := slices.Clone(s.Elements)
	if s.Flags&SetInterval != 0 && len(s.FieldLen) == 0 {
		// Start and end elements, in any order: sort by key, then pair
		// each start with the end that follows it.
		slices.SortStableFunc(els, func(a, b Element) int { return bytes.Compare(a.Key, b.Key) })
		for i, e := range els {
			if e.Flags&ElemIntervalEnd != 0 || e.Flags&ElemCatchall != 0 {
				continue
			}
			last := bytes.Repeat([]byte{0xff}, len(e.Key))
			for _, n := range els[i+1:] {
				if n.Flags&ElemIntervalEnd != 0 {
					last = minusOne(n.Key)
					break
				}
			}
			out = append(out, formatRange(types[0], e.Key, last)+data(e))
		}
	} else {
		slices.SortStableFunc(els, func(a, b Element) int { return bytes.Compare(a.Key, b.Key) })
		for _, e := range els {
			if e.Flags&ElemCatchall != 0 || e.Flags&ElemIntervalEnd != 0 {
				continue
			}
			k := field(e.Key)
			if e.KeyEnd != nil && !bytes.Equal(e.KeyEnd, e.Key) {
				k += "-" + field(e.KeyEnd)
			}
			out = append(out, k+data(e))
		}
	}
	for _, e := range s.Elements {
		if e.Flags&ElemCatchall != 0 {
			out = append(out, "*"+data(e))
		}
	}
	return out
}

// fieldTypes returns the data type of each field of the set's key: a
// concatenation packs them 6 bits each (TYPE_BITS), the first field in
// the highest bits.
func (s *Set) fieldTypes() []uint32 {
	n := len(s.FieldLen)
	if n <= 1 {
		return []uint32{s.KeyType}
	}
	t := make([]uint32, n)
	for i := range n {
		t[i] = s.KeyType >> (6 * (n - 1 - i)) & 0x3f
	}
	return t
}

// minusOne returns k - 1 (big-endian).
func minusOne(k []byte) []byte {
	out := slices.Clone(k)
	for i := len(out) - 1; i >= 0; i-- {
		out[i]--
		if out[i] != 0xff {
			break
		}
	}
	return out
}

// formatRange writes first-last, as a prefix where the range is one (an
// address type) or as a single value.
func formatRange(typ uint32, first, last []byte) string {
	if bytes.Equal(first, last) {
		return formatValue(typ, first)
	}
	if typ == typeIPv4Addr || typ == typeIPv6Addr {
		if p, ok := rangePrefix(first, last); ok {
			return formatValue(typ, first) + fmt.Sprintf("/%d", p)
		}
	}
	return formatValue(typ, first) + "-" + formatValue(typ, last)
}

// rangePrefix reports whether first-last is a prefix, and its length:
// first with the host bits clear and last with them set.
func rangePrefix(first, last []byte) (int, bool) {
	n := 8 * len(first)
	for p := n; p >= 0; p-- {
		ok := true
		for i := range first {
			// mask: the bits of byte i inside the prefix.
			var mask byte
			switch in := p - 8*i; {
			case in >= 8:
				mask = 0xff
			case in > 0:
				mask = 0xff << (8 - in)
			}
			if first[i]&^mask != 0 || last[i] != first[i]|^mask {
				ok = false
				break
			}
		}
		if ok {
			return p, true
		}
	}
	return 0, false
}

// formatValue writes one value of nft data type typ as nft prints it.
func formatValue(typ uint32, v []byte) string {
	switch {
	case typ == typeIPv4Addr && len(v) == 4:
		return netip.AddrFrom4([4]byte(v)).String()
	case typ == typeIPv6Addr && len(v) == 16:
		return netip.AddrFrom16([16]byte(v)).String()
	case typ == typeEtherAddr && len(v) >= 6:
		return net.HardwareAddr(v[:6]).String()
	case typ == typeInetServic && len(v) >= 2:
		return fmt.Sprint(binary.BigEndian.Uint16(v))
	case typ == typeInetProto && len(v) >= 1:
		return fmt.Sprint(v[0])
	case (typ == typeMark || typ == typeInteger) && len(v) == 4:
		return fmt.Sprintf("%#x", binary.NativeEndian.Uint32(v))
	case typ == typeIfname:
		return `"` + string(bytes.TrimRight(v, "\x00")) + `"`
	}
	return "0x" + hex.EncodeToString(v)
}
