// Package cbpf runs classic BPF filters: the programs libpcap compiles a
// pcap-filter expression to (tcpdump -ddd prints them), over frames in
// memory, per packet on the fast path. Compile checks a program as the
// kernel checks a socket filter and, on amd64, compiles it to machine
// code, as the kernel's BPF JIT does (jit_amd64.go): Run is then one call
// into it, and RunBatch one call for a whole batch of frames. Elsewhere a
// small interpreter runs it, dispatching on a dense opcode decoded once.
// Neither allocates. Linux's BPF extensions (loads at SKF_AD_OFF and
// above: VLAN tag, ifindex...) are refused: a frame here carries its VLAN
// tags in its bytes.
package cbpf

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unsafe"
)

// Instruction is one classic BPF instruction, as struct sock_filter and
// tcpdump -ddd give it.
type Instruction struct {
	// Op is the opcode (class | size | mode, or class | op | source).
	Op uint16
	// Jt and Jf are a conditional jump's offsets, true and false.
	Jt, Jf uint8
	// K is the constant operand.
	K uint32
}

// MaxInstructions bounds a program, as the kernel's BPF_MAXINSNS does.
const MaxInstructions = 4096

// Classic BPF opcode parts (linux/bpf_common.h, linux/filter.h).
const (
	clsLD, clsLDX, clsST, clsSTX, clsALU, clsJMP, clsRET, clsMISC = 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07

	sizeW, sizeH, sizeB = 0x00, 0x08, 0x10

	modeIMM, modeABS, modeIND, modeMEM, modeLEN, modeMSH = 0x00, 0x20, 0x40, 0x60, 0x80, 0xa0

	srcK, srcX = 0x00, 0x08

	// skfAdOff is where Linux's ancillary loads (extensions) start.
	skfAdOff = 0xfffff000
)

// op is a decoded opcode: dense, so that Run's switch is a jump table.
type op uint8

const (
	opRetK op = iota
	opRetA
	opLdAbsW
	opLdAbsH
	opLdAbsB
	opLdIndW
	opLdIndH
	opLdIndB
	opLdImm
	opLdLen
	opLdMem
	opLdxImm
	opLdxLen
	opLdxMem
	opLdxMsh
	opSt
	opStx
	opAddK
	opSubK
	opMulK
	opDivK
	opModK
	opAndK
	opOrK
	opXorK
	opLshK
	opRshK
	opAddX
	opSubX
	opMulX
	opDivX
	opModX
	opAndX
	opOrX
	opXorX
	opLshX
	opRshX
	opNeg
	opJa
	opJeqK
	opJgtK
	opJgeK
	opJsetK
	opJeqX
	opJgtX
	opJgeX
	opJsetX
	opTax
	opTxa

	// Fused: a load into A followed by a conditional jump on a constant
	// (libpcap's code is mostly such pairs), one dispatch for two
	// instructions. The jump's instruction stays in place for the jumps
	// that land on it.
	opLdAbsWJeq
	opLdAbsHJeq
	opLdAbsBJeq
	opLdIndHJeq
	opLdIndBJeq
	opLdAbsWJset
	opLdAbsHJset
	opLdAbsBJset
	opLdIndHJset
	opLdIndBJset
)

// insn is a decoded instruction. For opJa, k is the jump's offset; for a
// fused load and jump, k is the load's offset and c the jump's constant.
type insn struct {
	op     op
	jt, jf uint8
	k      uint32
	c      uint32
}

// Program is a compiled filter. It is safe for concurrent use.
type Program struct {
	ins []insn
	// native is the program as machine code (jit_amd64.go), nil where
	// there is none: the interpreter runs ins, and interpreted says why.
	native      []byte
	interpreted error
}

// Interpreted returns nil if the program runs as machine code, else why
// it is interpreted (no compiler for this architecture, or the system
// refused executable memory). An interpreted program returns the same,
// slower.
func (p *Program) Interpreted() error { return p.interpreted }

// Len returns the program's number of instructions.
func (p *Program) Len() int { return len(p.ins) }

var aluOps = map[uint16]op{0x00: opAddK, 0x10: opSubK, 0x20: opMulK, 0x30: opDivK, 0x90: opModK, 0x50: opAndK, 0x40: opOrK, 0xa0: opXorK, 0x60: opLshK, 0x70: opRshK}

var jmpOps = map[uint16]op{0x10: opJeqK, 0x20: opJgtK, 0x30: opJgeK, 0x40: opJsetK}

// Compile checks a program as the kernel's sk_chk_filter does and decodes
// it: every opcode known, every jump inside the program, scratch memory
// indexes below 16, no division by a constant 0, no extension load, and a
// return as the last instruction (so that every path returns).
func Compile(prog []Instruction) (*Program, error) {
	if len(prog) == 0 || len(prog) > MaxInstructions {
		return nil, fmt.Errorf("cbpf: %d instructions: want 1 to %d", len(prog), MaxInstructions)
	}
	p := &Program{ins: make([]insn, len(prog))}
	for pc, in := range prog {
		d := insn{jt: in.Jt, jf: in.Jf, k: in.K}
		bad := func(why string) error {
			return fmt.Errorf("cbpf: instruction %d (%#x %d %d %#x): %s", pc, in.Op, in.Jt, in.Jf, in.K, why)
		}
		switch in.Op & 0x07 {
		case clsLD:
			switch in.Op {
			case clsLD | sizeW | modeABS, clsLD | sizeH | modeABS, clsLD | sizeB | modeABS:
				if in.K >= skfAdOff {
					return nil, bad("Linux BPF extensions are not supported")
				}
				d.op = [...]op{opLdAbsW, opLdAbsH, opLdAbsB}[in.Op>>3&3]
			case clsLD | sizeW | modeIND, clsLD | sizeH | modeIND, clsLD | sizeB | modeIND:
				if in.K >= skfAdOff {
					return nil, bad("Linux BPF extensions are not supported")
				}
				d.op = [...]op{opLdIndW, opLdIndH, opLdIndB}[in.Op>>3&3]
			case clsLD | sizeW | modeIMM:
				d.op = opLdImm
			case clsLD | sizeW | modeLEN:
				d.op = opLdLen
			case clsLD | sizeW | modeMEM:
				d.op = opLdMem
			default:
				return nil, bad("unknown load")
			}
		case clsLDX:
			switch in.Op {
			case clsLDX | sizeW | modeIMM:
				d.op = opLdxImm
			case clsLDX | sizeW | modeLEN:
				d.op = opLdxLen
			case clsLDX | sizeW | modeMEM:
				d.op = opLdxMem
			case clsLDX | sizeB | modeMSH:
				if in.K >= skfAdOff {
					return nil, bad("Linux BPF extensions are not supported")
				}
				d.op = opLdxMsh
			default:
				return nil, bad("unknown load into X")
			}
		case clsST, clsSTX:
			if in.Op&^0x07 != 0 {
				return nil, bad("unknown store")
			}
			d.op = opSt
			if in.Op == clsSTX {
				d.op = opStx
			}
		case clsALU:
			if in.Op == clsALU|0x80 {
				d.op = opNeg
				break
			}
			o, ok := aluOps[in.Op&0xf0]
			if !ok || in.Op&^0xff != 0 {
				return nil, bad("unknown ALU operation")
			}
			if in.Op&srcX != 0 {
				o += opAddX - opAddK
			} else if in.K == 0 && (o == opDivK || o == opModK) {
				return nil, bad("division by zero")
			} else if in.K >= 32 && (o == opLshK || o == opRshK) {
				return nil, bad("shift by 32 or more")
			}
			d.op = o
		case clsJMP:
			if in.Op == clsJMP { // ja
				if uint64(in.K) >= uint64(len(prog)-pc-1) {
					return nil, bad("jump out of the program")
				}
				d.op = opJa
				break
			}
			o, ok := jmpOps[in.Op&0xf0]
			if !ok || in.Op&^0xff != 0 {
				return nil, bad("unknown jump")
			}
			if in.Op&srcX != 0 {
				o += opJeqX - opJeqK
			}
			if int(in.Jt) >= len(prog)-pc-1 || int(in.Jf) >= len(prog)-pc-1 {
				return nil, bad("jump out of the program")
			}
			d.op = o
		case clsRET:
			switch in.Op {
			case clsRET | srcK: // BPF_K
				d.op = opRetK
			case clsRET | 0x10: // BPF_A
				d.op = opRetA
			default:
				return nil, bad("unknown return")
			}
		case clsMISC:
			switch in.Op {
			case clsMISC: // tax
				d.op = opTax
			case clsMISC | 0x80:
				d.op = opTxa
			default:
				return nil, bad("unknown misc operation")
			}
		}
		switch d.op {
		case opLdMem, opLdxMem, opSt, opStx:
			if in.K >= 16 {
				return nil, bad("scratch memory index out of range")
			}
		}
		p.ins[pc] = d
	}
	if last := p.ins[len(p.ins)-1].op; last != opRetK && last != opRetA {
		return nil, errors.New("cbpf: the last instruction is not a return")
	}
	p.interpreted = p.compileNative()
	p.fuse()
	return p, nil
}

// interpretStrided interprets the program over the frames of n records
// stride bytes apart from first, as RunStrided.
func (p *Program) interpretStrided(first unsafe.Pointer, stride uintptr, n int, out []uint32) {
	for i := range n {
		out[i] = p.interpret(*(*[]byte)(unsafe.Add(first, uintptr(i)*stride)))
	}
}

// interpret runs the program over the frame pkt as Run does, one
// instruction at a time.
func (p *Program) interpret(pkt []byte) uint32 {
	var a, x uint32
	var mem [16]uint32
	ins := p.ins
	n := uint64(len(pkt))
	for pc := 0; pc < len(ins); pc++ {
		i := &ins[pc]
		switch i.op {
		case opRetK:
			return i.k
		case opRetA:
			return a
		case opLdAbsW:
			o := uint64(i.k)
			if o+4 > n {
				return 0
			}
			a = uint32(pkt[o])<<24 | uint32(pkt[o+1])<<16 | uint32(pkt[o+2])<<8 | uint32(pkt[o+3])
		case opLdAbsH:
			o := uint64(i.k)
			if o+2 > n {
				return 0
			}
			a = uint32(pkt[o])<<8 | uint32(pkt[o+1])
		case opLdAbsB:
			o := uint64(i.k)
			if o >= n {
				return 0
			}
			a = uint32(pkt[o])
		case opLdIndW:
			o := uint64(i.k + x)
			if o+4 > n {
				return 0
			}
			a = uint32(pkt[o])<<24 | uint32(pkt[o+1])<<16 | uint32(pkt[o+2])<<8 | uint32(pkt[o+3])
		case opLdIndH:
			o := uint64(i.k + x)
			if o+2 > n {
				return 0
			}
			a = uint32(pkt[o])<<8 | uint32(pkt[o+1])
		case opLdIndB:
			o := uint64(i.k + x)
			if o >= n {
				return 0
			}
			a = uint32(pkt[o])
		case opLdImm:
			a = i.k
		case opLdLen:
			a = uint32(n)
		case opLdMem:
			a = mem[i.k&15]
		case opLdxImm:
			x = i.k
		case opLdxLen:
			x = uint32(n)
		case opLdxMem:
			x = mem[i.k&15]
		case opLdxMsh:
			o := uint64(i.k)
			if o >= n {
				return 0
			}
			x = uint32(pkt[o]&0xf) << 2
		case opSt:
			mem[i.k&15] = a
		case opStx:
			mem[i.k&15] = x
		case opAddK:
			a += i.k
		case opSubK:
			a -= i.k
		case opMulK:
			a *= i.k
		case opDivK:
			a /= i.k
		case opModK:
			a %= i.k
		case opAndK:
			a &= i.k
		case opOrK:
			a |= i.k
		case opXorK:
			a ^= i.k
		case opLshK:
			a = shl(a, i.k)
		case opRshK:
			a = shr(a, i.k)
		case opAddX:
			a += x
		case opSubX:
			a -= x
		case opMulX:
			a *= x
		case opDivX:
			if x == 0 {
				return 0
			}
			a /= x
		case opModX:
			if x == 0 {
				return 0
			}
			a %= x
		case opAndX:
			a &= x
		case opOrX:
			a |= x
		case opXorX:
			a ^= x
		case opLshX:
			a = shl(a, x)
		case opRshX:
			a = shr(a, x)
		case opNeg:
			a = -a
		case opJa:
			pc += int(i.k)
		case opJeqK:
			pc += jump(a == i.k, i)
		case opJgtK:
			pc += jump(a > i.k, i)
		case opJgeK:
			pc += jump(a >= i.k, i)
		case opJsetK:
			pc += jump(a&i.k != 0, i)
		case opJeqX:
			pc += jump(a == x, i)
		case opJgtX:
			pc += jump(a > x, i)
		case opJgeX:
			pc += jump(a >= x, i)
		case opJsetX:
			pc += jump(a&x != 0, i)
		case opLdAbsWJeq:
			o := uint64(i.k)
			if o+4 > n {
				return 0
			}
			a = uint32(pkt[o])<<24 | uint32(pkt[o+1])<<16 | uint32(pkt[o+2])<<8 | uint32(pkt[o+3])
			pc += 1 + jump(a == i.c, i)
		case opLdAbsWJset:
			o := uint64(i.k)
			if o+4 > n {
				return 0
			}
			a = uint32(pkt[o])<<24 | uint32(pkt[o+1])<<16 | uint32(pkt[o+2])<<8 | uint32(pkt[o+3])
			pc += 1 + jump(a&i.c != 0, i)
		case opLdAbsHJeq:
			o := uint64(i.k)
			if o+2 > n {
				return 0
			}
			a = uint32(pkt[o])<<8 | uint32(pkt[o+1])
			pc += 1 + jump(a == i.c, i)
		case opLdAbsHJset:
			o := uint64(i.k)
			if o+2 > n {
				return 0
			}
			a = uint32(pkt[o])<<8 | uint32(pkt[o+1])
			pc += 1 + jump(a&i.c != 0, i)
		case opLdAbsBJeq:
			o := uint64(i.k)
			if o >= n {
				return 0
			}
			a = uint32(pkt[o])
			pc += 1 + jump(a == i.c, i)
		case opLdAbsBJset:
			o := uint64(i.k)
			if o >= n {
				return 0
			}
			a = uint32(pkt[o])
			pc += 1 + jump(a&i.c != 0, i)
		case opLdIndHJeq:
			o := uint64(i.k + x)
			if o+2 > n {
				return 0
			}
			a = uint32(pkt[o])<<8 | uint32(pkt[o+1])
			pc += 1 + jump(a == i.c, i)
		case opLdIndHJset:
			o := uint64(i.k + x)
			if o+2 > n {
				return 0
			}
			a = uint32(pkt[o])<<8 | uint32(pkt[o+1])
			pc += 1 + jump(a&i.c != 0, i)
		case opLdIndBJeq:
			o := uint64(i.k + x)
			if o >= n {
				return 0
			}
			a = uint32(pkt[o])
			pc += 1 + jump(a == i.c, i)
		case opLdIndBJset:
			o := uint64(i.k + x)
			if o >= n {
				return 0
			}
			a = uint32(pkt[o])
			pc += 1 + jump(a&i.c != 0, i)
		case opTax:
			x = a
		case opTxa:
			a = x
		}
	}
	return 0 // not reached: Compile wants a return last
}

// fused are the fused ops, by load and jump.
var fused = map[[2]op]op{
	{opLdAbsW, opJeqK}: opLdAbsWJeq, {opLdAbsH, opJeqK}: opLdAbsHJeq, {opLdAbsB, opJeqK}: opLdAbsBJeq,
	{opLdIndH, opJeqK}: opLdIndHJeq, {opLdIndB, opJeqK}: opLdIndBJeq,
	{opLdAbsW, opJsetK}: opLdAbsWJset, {opLdAbsH, opJsetK}: opLdAbsHJset, {opLdAbsB, opJsetK}: opLdAbsBJset,
	{opLdIndH, opJsetK}: opLdIndHJset, {opLdIndB, opJsetK}: opLdIndBJset,
}

// fuse replaces each load followed by a conditional jump on a constant by
// one fused instruction; the jump stays, for the jumps to it.
func (p *Program) fuse() {
	for pc := 0; pc+1 < len(p.ins); pc++ {
		ld, j := &p.ins[pc], &p.ins[pc+1]
		if f, ok := fused[[2]op{ld.op, j.op}]; ok {
			*ld = insn{op: f, jt: j.jt, jf: j.jf, k: ld.k, c: j.k}
		}
	}
}

func jump(c bool, i *insn) int {
	if c {
		return int(i.jt)
	}
	return int(i.jf)
}

// shl and shr shift as Go does: by 32 or more leaves 0 (Compile refuses
// such a constant count, as the kernel does; libpcap makes none).
func shl(a, n uint32) uint32 { return a << n }
func shr(a, n uint32) uint32 { return a >> n }

// ParseTcpdump reads a program as tcpdump -ddd prints it: the number of
// instructions on the first line, then one instruction a line, its four
// fields in decimal ("40 0 0 12").
func ParseTcpdump(text string) ([]Instruction, error) {
	lines := strings.Fields(strings.ReplaceAll(text, ",", " "))
	if len(lines) == 0 {
		return nil, errors.New("cbpf: empty program")
	}
	n, err := strconv.Atoi(lines[0])
	if err != nil || n <= 0 || n > MaxInstructions {
		return nil, fmt.Errorf("cbpf: instruction count %q: want 1 to %d", lines[0], MaxInstructions)
	}
	f := lines[1:]
	if len(f) != 4*n {
		return nil, fmt.Errorf("cbpf: %d instructions announced, %d fields follow (want 4 each)", n, len(f))
	}
	prog := make([]Instruction, n)
	for i := range prog {
		var v [4]uint64
		for j := range v {
			bits := []int{16, 8, 8, 32}[j]
			if v[j], err = strconv.ParseUint(f[4*i+j], 10, bits); err != nil {
				return nil, fmt.Errorf("cbpf: instruction %d: field %q: %w", i, f[4*i+j], err)
			}
		}
		prog[i] = Instruction{Op: uint16(v[0]), Jt: uint8(v[1]), Jf: uint8(v[2]), K: uint32(v[3])}
	}
	return prog, nil
}
