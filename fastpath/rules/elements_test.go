package rules

import (
	"slices"
	"testing"
)

func TestElementStrings(t *testing.T) {
	ip := func(a, b, c, d byte) []byte { return []byte{a, b, c, d} }
	port := func(p uint16) []byte { return []byte{byte(p >> 8), byte(p)} }
	for _, tc := range []struct {
		name string
		set  Set
		want []string
	}{
		{"addresses", Set{KeyType: typeIPv4Addr, KeyLen: 4, Elements: []Element{{Key: ip(10, 0, 0, 2)}, {Key: ip(10, 0, 0, 1)}}},
			[]string{"10.0.0.1", "10.0.0.2"}},
		{"intervals", Set{KeyType: typeIPv4Addr, KeyLen: 4, Flags: SetInterval, Elements: []Element{
			{Key: ip(0, 0, 0, 0), Flags: ElemIntervalEnd}, // the kernel's leading end
			{Key: ip(10, 1, 0, 0)}, {Key: ip(10, 2, 0, 0), Flags: ElemIntervalEnd},
			{Key: ip(10, 3, 0, 0)}, {Key: ip(10, 3, 0, 10), Flags: ElemIntervalEnd},
			{Key: ip(192, 0, 2, 7)}, {Key: ip(192, 0, 2, 8), Flags: ElemIntervalEnd},
		}}, []string{"10.1.0.0/16", "10.3.0.0-10.3.0.9", "192.0.2.7"}},
		{"ports map", Set{KeyType: typeInetServic, KeyLen: 2, Flags: SetMap, DataType: DataTypeVerdict, Elements: []Element{
			{Key: port(80), Verdict: Verdict{Kind: VerdictAccept}}, {Key: port(22), Verdict: Verdict{Kind: VerdictDrop}},
		}}, []string{"22 : drop", "80 : accept"}},
		{"concatenation", Set{KeyType: typeIPv4Addr<<6 | typeInetServic, KeyLen: 8, FieldLen: []uint32{4, 2}, Elements: []Element{
			{Key: append(ip(10, 2, 0, 2), port(6001)[0], port(6001)[1], 0, 0)},
		}}, []string{"10.2.0.2 . 6001"}},
	} {
		if got := tc.set.ElementStrings(); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
