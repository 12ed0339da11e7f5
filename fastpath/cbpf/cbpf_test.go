package cbpf

import (
	"encoding/binary"
	"testing"

	"golang.org/x/net/bpf"
)

// udpPort7 is tcpdump -ddd -y EN10MB 'udp port 7'.
const udpPort7 = `20
40 0 0 12
21 0 6 34525
48 0 0 20
21 0 15 17
40 0 0 54
21 12 0 7
40 0 0 56
21 10 11 7
21 0 10 2048
48 0 0 23
21 0 8 17
40 0 0 20
69 6 0 8191
177 0 0 14
72 0 0 14
21 2 0 7
72 0 0 16
21 0 1 7
6 0 0 262144
6 0 0 0
`

// udp4 is an Ethernet/IPv4/UDP frame from port 1000 to dport.
func udp4(dport uint16) []byte {
	b := make([]byte, 60)
	binary.BigEndian.PutUint16(b[12:], 0x0800)
	b[14] = 0x45
	b[23] = 17
	binary.BigEndian.PutUint16(b[34:], 1000)
	binary.BigEndian.PutUint16(b[36:], dport)
	return b
}

func compileText(t testing.TB, text string) *Program {
	t.Helper()
	raw, err := ParseTcpdump(text)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compile(raw)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestUDPPort(t *testing.T) {
	p := compileText(t, udpPort7)
	if got := p.Run(udp4(7)); got != 262144 {
		t.Errorf("udp to port 7: %d, want 262144", got)
	}
	if got := p.Run(udp4(9)); got != 0 {
		t.Errorf("udp to port 9: %d, want 0", got)
	}
	tcp := udp4(7)
	tcp[23] = 6
	if got := p.Run(tcp); got != 0 {
		t.Errorf("tcp to port 7: %d, want 0", got)
	}
	if got := p.Run(udp4(7)[:30]); got != 0 {
		t.Errorf("truncated frame: %d, want 0", got)
	}
	if a := testing.AllocsPerRun(100, func() { p.Run(udp4Frame) }); a != 0 {
		t.Errorf("%v allocations per run", a)
	}
}

var udp4Frame = udp4(9)

func TestCompileRefuses(t *testing.T) {
	for name, prog := range map[string][]Instruction{
		"empty":          nil,
		"no return":      {{Op: 0x28, K: 12}},
		"jump out":       {{Op: 0x15, Jt: 1, K: 1}, {Op: 0x06}},
		"ja out":         {{Op: 0x05, K: 1}, {Op: 0x06}},
		"extension":      {{Op: 0x30, K: skfAdOff + 44}, {Op: 0x06}},
		"div by 0":       {{Op: 0x34}, {Op: 0x06}},
		"scratch index":  {{Op: 0x02, K: 16}, {Op: 0x06}},
		"unknown opcode": {{Op: 0xff}, {Op: 0x06}},
		"shift 32":       {{Op: 0x64, K: 32}, {Op: 0x06}},
	} {
		if _, err := Compile(prog); err == nil {
			t.Errorf("%s: compiled", name)
		}
	}
	for _, text := range []string{"", "2\n6 0 0 1\n", "1\n6 0 0\n", "1\n6 0 0 x\n", "1\n6 0 256 1\n"} {
		if _, err := ParseTcpdump(text); err == nil {
			t.Errorf("ParseTcpdump(%q): no error", text)
		}
	}
}

func BenchmarkRun(b *testing.B) {
	p := compileText(b, udpPort7)
	for b.Loop() {
		p.Run(udp4Frame)
	}
}

// FuzzRun runs random programs over random frames: Compile and Run never
// panic, and a program golang.org/x/net/bpf's VM also runs returns what
// that VM returns.
func FuzzRun(f *testing.F) {
	raw, _ := ParseTcpdump(udpPort7)
	f.Add(encode(raw), udp4(7))
	f.Add(encode(raw), udp4(9))
	f.Add(encode([]Instruction{{Op: 0xb1, K: 14}, {Op: 0x48, K: 16}, {Op: 0x3c}, {Op: 0x16}}), udp4(9))
	f.Add(encode([]Instruction{{Op: 0x00, K: 5}, {Op: 0x02, K: 3}, {Op: 0x61, K: 3}, {Op: 0x87}, {Op: 0x9c}, {Op: 0x16}}), []byte{1})
	f.Fuzz(func(t *testing.T, code, pkt []byte) {
		prog := decode(code)
		p, err := Compile(prog)
		if err != nil {
			return
		}
		got := p.Run(pkt)
		rawIns := make([]bpf.RawInstruction, len(prog))
		for i, in := range prog {
			if in.Op == clsLDX|sizeW|modeLEN {
				return // x/net/bpf loads the length into A, not X
			}
			rawIns[i] = bpf.RawInstruction{Op: in.Op, Jt: in.Jt, Jf: in.Jf, K: in.K}
		}
		ins, ok := bpf.Disassemble(rawIns)
		if !ok {
			return
		}
		vm, err := bpf.NewVM(ins)
		if err != nil {
			return
		}
		want, err := vm.Run(pkt)
		if err != nil {
			return
		}
		if uint32(want) != got {
			t.Fatalf("program %v on %x: %d, x/net/bpf says %d", prog, pkt, got, want)
		}
	})
}

func encode(prog []Instruction) []byte {
	b := make([]byte, 8*len(prog))
	for i, in := range prog {
		binary.LittleEndian.PutUint16(b[8*i:], in.Op)
		b[8*i+2], b[8*i+3] = in.Jt, in.Jf
		binary.LittleEndian.PutUint32(b[8*i+4:], in.K)
	}
	return b
}

func decode(b []byte) []Instruction {
	prog := make([]Instruction, len(b)/8)
	for i := range prog {
		c := b[8*i:]
		prog[i] = Instruction{Op: binary.LittleEndian.Uint16(c), Jt: c[2], Jf: c[3], K: binary.LittleEndian.Uint32(c[4:])}
	}
	return prog
}
