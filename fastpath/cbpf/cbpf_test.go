package cbpf

import (
	"encoding/binary"
	"math/rand/v2"
	"runtime"
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
	b.Run("native", func(b *testing.B) {
		if !p.Native() {
			b.Skip("no compiler to machine code on " + runtime.GOARCH)
		}
		for b.Loop() {
			p.Run(udp4Frame)
		}
	})
	b.Run("native-batch", func(b *testing.B) {
		if !p.Native() {
			b.Skip("no compiler to machine code on " + runtime.GOARCH)
		}
		frames := make([][]byte, 64)
		for i := range frames {
			frames[i] = udp4(9)
		}
		out := make([]uint32, len(frames))
		for b.Loop() {
			p.RunBatch(frames, out)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(frames)), "ns/frame")
	})
	b.Run("interpreted", func(b *testing.B) {
		for b.Loop() {
			p.interpret(udp4Frame)
		}
	})
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
		if in := p.interpret(pkt); in != got {
			t.Fatalf("program %v on %x: %d, the interpreter says %d", prog, pkt, got, in)
		}
		rawIns := make([]bpf.RawInstruction, len(prog))
		for i, in := range prog {
			if in.Op == clsLDX|sizeW|modeLEN {
				return // x/net/bpf loads the length into A, not X
			}
			if in.Op&0x07 == clsLD && in.Op&0xe0 == modeIND {
				return // x/net/bpf adds X+k without wrapping at 2^32 (TestIndirectWraps)
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

// TestIndirectWraps: an indirect load's offset X+k is added in 32 bits,
// as the kernel adds it (x/net/bpf does not wrap, and so rejects the
// frame): X = 0xffffffff, k = 1 loads the first byte, compiled and
// interpreted.
func TestIndirectWraps(t *testing.T) {
	p, err := Compile([]Instruction{{Op: clsLDX | sizeW | modeIMM, K: 0xffffffff}, {Op: clsLD | sizeB | modeIND, K: 1}, {Op: clsRET | 0x10}})
	if err != nil {
		t.Fatal(err)
	}
	if got, in := p.Run([]byte{66}), p.interpret([]byte{66}); got != 66 || in != 66 {
		t.Fatalf("ldb [x+1] with x = 0xffffffff: %d compiled, %d interpreted; want 66", got, in)
	}
}

// TestNativeAgrees runs random valid programs, every opcode in them, over
// random and truncated frames: the machine code returns what the
// interpreter returns.
func TestNativeAgrees(t *testing.T) {
	if err := compileText(t, udpPort7).Interpreted(); err != nil && runtime.GOARCH == "amd64" {
		t.Fatalf("no machine code on amd64: %v", err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	ops := validOps()
	for range 3000 {
		n := 2 + r.IntN(30)
		prog := make([]Instruction, n)
		for pc := range prog[:n-1] {
			o := ops[r.IntN(len(ops))]
			in := Instruction{Op: o, K: randK(r, o)}
			if o&0x07 == clsJMP {
				left := n - pc - 1
				in.Jt, in.Jf = uint8(r.IntN(left)), uint8(r.IntN(left))
				if o == clsJMP {
					in.K = uint32(r.IntN(left))
				}
			}
			prog[pc] = in
		}
		prog[n-1] = Instruction{Op: clsRET | 0x10} // ret a
		if r.IntN(4) == 0 {
			prog[n-1] = Instruction{Op: clsRET, K: r.Uint32()}
		}
		p, err := Compile(prog)
		if err != nil {
			t.Fatalf("program %v: %v", prog, err)
		}
		frames := make([][]byte, 1+r.IntN(8))
		for f := range frames {
			pkt := make([]byte, r.IntN(80))
			for i := range pkt {
				pkt[i] = byte(r.IntN(4)) // small values: equal compares, short X offsets
				if r.IntN(3) == 0 {
					pkt[i] = byte(r.Uint32())
				}
			}
			if got, want := p.Run(pkt), p.interpret(pkt); got != want {
				t.Fatalf("program %v on %x: %d, the interpreter says %d", prog, pkt, got, want)
			}
			frames[f] = pkt
		}
		out := make([]uint32, len(frames))
		p.RunBatch(frames, out)
		for f, pkt := range frames {
			if want := p.interpret(pkt); out[f] != want {
				t.Fatalf("program %v on %x in a batch: %d, the interpreter says %d", prog, pkt, out[f], want)
			}
		}
	}
}

// validOps lists every opcode Compile takes, but returns.
func validOps() []uint16 {
	var ops []uint16
	for o := range uint16(0x100) {
		if o&0x07 == clsRET {
			continue
		}
		if _, err := Compile([]Instruction{{Op: o, K: 1}, {Op: clsRET}}); err == nil {
			ops = append(ops, o)
		}
	}
	return ops
}

// randK is a constant for opcode o that Compile takes and that often
// lands inside a short frame.
func randK(r *rand.Rand, o uint16) uint32 {
	switch {
	case o&0x07 == clsST || o&0x07 == clsSTX || o&0xe0 == modeMEM && o&0x06 == 0:
		return uint32(r.IntN(16)) // scratch memory index
	case o&0x07 == clsALU && (o&0xf0 == 0x60 || o&0xf0 == 0x70):
		return uint32(r.IntN(32)) // shift count
	case o&0x07 == clsALU && (o&0xf0 == 0x30 || o&0xf0 == 0x90):
		return 1 + uint32(r.IntN(300)) // divisor
	case o&0x07 == clsJMP && r.IntN(2) == 0:
		return uint32(r.IntN(4)) // often equal to A
	case r.IntN(8) == 0:
		return r.Uint32() % skfAdOff // beyond any frame; large ones are not a 32-bit displacement
	}
	return uint32(r.IntN(70))
}
