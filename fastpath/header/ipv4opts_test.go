package header

import (
	"encoding/hex"
	"testing"
)

// TestEchoOptionsAllocs: answering echo requests with IPv4 options or
// after IPv6 extension headers, and refusing bad options, allocates
// nothing.
func TestEchoOptionsAllocs(t *testing.T) {
	rr, _ := hex.DecodeString("4800003012340000400145f20a4d00020a4d0001070b0400000000000000000008006665000400016162636465666768")
	bad, _ := hex.DecodeString("46000028123400004001507d0a4d00020a4d00010188010008006653001600016162636465666768")
	v6, _ := hex.DecodeString("6000000000183c40fd770000000000000000000000000002fd7700000000000000000000000000013a000104000000008000f32a000100016162636465666768")
	buf := make([]byte, len(v6))
	local := func(a [4]byte) bool { return a == [4]byte{10, 77, 0, 1} }
	n := testing.AllocsPerRun(100, func() {
		copy(buf, rr)
		if _, err := ICMPv4EchoReplyOptions(IPv4(buf[:len(rr)]), 0, 1, 5, local); err != nil {
			t.Fatal(err)
		}
		if _, ok := CheckIPv4Options(IPv4(bad)).(IPv4OptionProblem); !ok {
			t.Fatal("bad option length accepted")
		}
		copy(buf, v6)
		d := IPv6LocalDelivery(IPv6(buf))
		if d.Verdict != IPv6Deliver {
			t.Fatalf("verdict %d", d.Verdict)
		}
		if _, err := ICMPv6EchoReplyAfterExt(IPv6(buf), d.Off, 0, 0); err != nil {
			t.Fatal(err)
		}
	})
	if n != 0 {
		t.Fatalf("%v allocations per run", n)
	}
}
