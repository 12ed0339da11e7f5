package cbpf

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The compiler to amd64 machine code, as the kernel's bpf_jit_comp does
// for its filters: an interpreter pays a dispatch per instruction, about
// 2 ns; the compiled filter pays one call and then runs as straight-line
// code. Every load is still checked against the frame's length, and the
// code is made from a program Compile checked: only forward jumps, every
// one inside the program, and a return at the end.
//
// The code is a loop over a batch of frames, given as slice headers a
// stride apart. It runs on the goroutine's stack, called by runNative (in
// jit_amd64.s), and uses only the registers Go's ABI0 lets a callee
// clobber:
//
//	RDI  the current frame's slice header
//	R15  the stride
//	RBX  the frames left
//	R12  where the current frame's result goes
//	R8   the scratch memory M[0..15], 64 bytes of runNative's frame
//	EAX  A, and the result
//	ECX  X (CL is the shift count)
//	RSI  the frame's first byte
//	R10  the frame's length
//	EDX, R9, R11  temporaries (DIV writes EDX)
//
// It calls nothing and takes no stack of its own, so the goroutine cannot
// be preempted or moved while it runs: the runtime preempts only at Go
// code's safe points.

// runNative runs the compiled filter at entry over each of the n frames
// whose slice headers are stride bytes apart from frames (n > 0), and
// writes what it returns for the i-th into out[i].
//
//go:noescape
func runNative(entry uintptr, frames unsafe.Pointer, stride uintptr, n int, out *uint32)

// Run runs the program over the frame pkt and returns what it returns:
// how many bytes of the frame to keep, 0 to reject it. A load beyond the
// frame rejects it, as does a division by X = 0, as in the kernel; an
// indirect load's offset X+k is added in 32 bits, as the kernel adds it.
func (p *Program) Run(pkt []byte) uint32 {
	if p.native == nil {
		return p.interpret(pkt)
	}
	var r uint32
	runNative(uintptr(unsafe.Pointer(&p.native[0])), unsafe.Pointer(&pkt), 0, 1, &r)
	runtime.KeepAlive(p) // its cleanup unmaps the code
	return r
}

// RunBatch runs the program over each frame of frames and writes what it
// returns for frames[i] into out[i], as Run would, with one call into the
// machine code for the whole batch. out must be as long as frames.
func (p *Program) RunBatch(frames [][]byte, out []uint32) {
	if len(frames) > 0 {
		p.RunStrided(unsafe.Pointer(&frames[0]), unsafe.Sizeof(frames[0]), len(frames), out)
	}
}

// RunStrided is RunBatch over the frames of n records stride bytes apart
// from first, each holding its frame's []byte at the same offset (first
// points to the first record's): a batch of packets whose frames need not
// be gathered first. out must hold n results.
func (p *Program) RunStrided(first unsafe.Pointer, stride uintptr, n int, out []uint32) {
	if n <= 0 {
		return
	}
	if len(out) < n {
		panic("cbpf: RunStrided: out is shorter than the batch")
	}
	if p.native == nil {
		p.interpretStrided(first, stride, n, out)
		return
	}
	runNative(uintptr(unsafe.Pointer(&p.native[0])), first, stride, n, &out[0])
	runtime.KeepAlive(p)
}

// Native reports whether the program runs as machine code.
func (p *Program) Native() bool { return p.native != nil }

// compileNative compiles the decoded program (before fusing) to machine
// code in memory of its own, read-only and executable, and arranges for
// the memory to be unmapped once p is unreachable. If the system refuses
// executable memory, the program is interpreted and Interpreted says why.
func (p *Program) compileNative() error {
	code := assemble(p.ins)
	mem, err := unix.Mmap(-1, 0, len(code), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return fmt.Errorf("cbpf: mapping %d bytes for the compiled filter: %w", len(code), err)
	}
	copy(mem, code)
	if err := unix.Mprotect(mem, unix.PROT_READ|unix.PROT_EXEC); err != nil {
		_ = unix.Munmap(mem)
		return fmt.Errorf("cbpf: making the compiled filter executable: %w", err)
	}
	p.native = mem
	runtime.AddCleanup(p, func(m []byte) { _ = unix.Munmap(m) }, mem)
	return nil
}

// amd64 condition codes, the low nibble of Jcc (0x0f 0x80+cc).
const (
	ccB  = 0x2 // below (unsigned <)
	ccAE = 0x3 // above or equal (unsigned >=)
	ccE  = 0x4 // equal, zero
	ccNE = 0x5 // not equal, not zero
	ccBE = 0x6 // below or equal (unsigned <=)
	ccA  = 0x7 // above (unsigned >)
)

// Labels other than the program's instructions: retZero returns 0 (a
// load beyond the frame, a division by zero), done stores A as the
// frame's result and goes on to the next frame.
const (
	retZero = -1
	done    = -2
)

// assembler collects machine code and the 32-bit jumps to patch once
// every instruction's place is known. The program's body is emitted
// twice: a copy for frames long enough for every constant-offset load,
// which checks only the loads at X+k, and a copy that checks every load.
type assembler struct {
	code  []byte
	at    [2][]int // the code offset of each program instruction, by copy
	fixes []fix
	// body is the copy being emitted (0 unchecked, 1 checked), and
	// checkK whether it checks the loads at constant offsets.
	body   int
	checkK bool
}

// fix is a rel32 at code offset pos, to the label target (an
// instruction's index in copy body, retZero or done).
type fix struct {
	pos, target, body int
}

func (a *assembler) emit(b ...byte) { a.code = append(a.code, b...) }

func (a *assembler) imm32(v uint32) { a.code = binary.LittleEndian.AppendUint32(a.code, v) }

// jmp jumps to label target; jcc jumps there on condition cc.
func (a *assembler) jmp(target int) { a.emit(0xe9); a.rel32(target) }

func (a *assembler) jcc(cc byte, target int) { a.emit(0x0f, 0x80|cc); a.rel32(target) }

func (a *assembler) rel32(target int) {
	a.fixes = append(a.fixes, fix{pos: len(a.code), target: target, body: a.body})
	a.imm32(0)
}

// branch ends conditional jump i at pc, whose condition is cc, true to
// pc+1+jt and false to pc+1+jf; a jump to the next instruction falls
// through.
func (a *assembler) branch(pc int, i insn, cc byte) {
	t, f := pc+1+int(i.jt), pc+1+int(i.jf)
	switch {
	case t == f:
		if t != pc+1 {
			a.jmp(t)
		}
	case t == pc+1:
		a.jcc(cc^1, f) // amd64's condition codes come in pairs: cc^1 is the opposite
	default:
		a.jcc(cc, t)
		if f != pc+1 {
			a.jmp(f)
		}
	}
}

// maxDisp is the largest constant offset a load addresses as [rsi+k]:
// k+4 fits a signed 32-bit displacement.
const maxDisp = 0x7fffffff - 4

// boundsK returns 0 unless size bytes at constant offset k are in the
// frame (in the unchecked copy, the frame is known to be long enough). It
// reports whether the load can address them as [rsi+k]; if not (k does
// not fit a signed 32-bit displacement), R11 holds k and the load
// addresses [rsi+r11].
func (a *assembler) boundsK(k uint32, size byte) (disp bool) {
	if k > maxDisp {
		a.emit(0x41, 0xbb) // mov r11d, imm32
		a.imm32(k)
		a.boundsR11(size)
		return false
	}
	if a.checkK {
		a.emit(0x49, 0x81, 0xfa) // cmp r10, imm32
		a.imm32(k + uint32(size))
		a.jcc(ccB, retZero)
	}
	return true
}

// constEnd returns the end of the farthest bytes a load at a constant
// offset (addressed as [rsi+k]) reads: frames at least that long need no
// check of those loads.
func constEnd(ins []insn) uint32 {
	var end uint32
	for _, i := range ins {
		size, ok := loadSize[i.op]
		switch {
		case i.op == opLdxMsh:
			size, ok = 1, true
		case i.op == opLdIndB || i.op == opLdIndH || i.op == opLdIndW:
			ok = false
		}
		if ok && i.k <= maxDisp {
			end = max(end, i.k+uint32(size))
		}
	}
	return end
}

// boundsX computes the offset X+k (mod 2^32, as the interpreter) into R11
// and returns 0 unless size bytes there are in the frame.
func (a *assembler) boundsX(k uint32, size byte) {
	a.emit(0x44, 0x8d, 0x99) // lea r11d, [rcx+disp32]
	a.imm32(k)
	a.boundsR11(size)
}

// boundsR11 returns 0 unless size bytes at offset R11 are in the frame.
func (a *assembler) boundsR11(size byte) {
	a.emit(0x4d, 0x8d, 0x4b, size) // lea r9, [r11+size]
	a.emit(0x4d, 0x39, 0xd1)       // cmp r9, r10
	a.jcc(ccA, retZero)
}

// load emits the load of size bytes into A (EAX), in network order, from
// [rsi+k] if disp, else from [rsi+r11].
func (a *assembler) load(size byte, k uint32, disp bool) {
	// The opcodes, and the ModRM byte for [rsi+disp32] and for
	// [rsi+r11] (with SIB 0x1e and REX.X).
	var opc []byte
	switch size {
	case 1:
		opc = []byte{0x0f, 0xb6} // movzx eax, byte
	case 2:
		opc = []byte{0x0f, 0xb7} // movzx eax, word
	case 4:
		opc = []byte{0x8b} // mov eax, dword
	}
	if disp {
		a.emit(opc...)
		a.emit(0x86)
		a.imm32(k)
	} else {
		a.emit(0x42)
		a.emit(opc...)
		a.emit(0x04, 0x1e)
	}
	switch size {
	case 2:
		a.emit(0x66, 0xc1, 0xc0, 8) // rol ax, 8
	case 4:
		a.emit(0x0f, 0xc8) // bswap eax
	}
}

// aluK and aluX are the one-opcode ALU operations on EAX: op eax, imm32
// and op eax, ecx.
var (
	aluK = map[op]byte{opAddK: 0x05, opSubK: 0x2d, opAndK: 0x25, opOrK: 0x0d, opXorK: 0x35}
	aluX = map[op]byte{opAddX: 0x01, opSubX: 0x29, opAndX: 0x21, opOrX: 0x09, opXorX: 0x31}
	// loadSize is a load's size in bytes.
	loadSize = map[op]byte{opLdAbsB: 1, opLdAbsH: 2, opLdAbsW: 4, opLdIndB: 1, opLdIndH: 2, opLdIndW: 4}
	// jumpCond is the condition a comparing jump takes when true.
	jumpCond = map[op]byte{opJeqK: ccE, opJgtK: ccA, opJgeK: ccAE, opJeqX: ccE, opJgtX: ccA, opJgeX: ccAE}
)

// assemble compiles the decoded program ins to machine code: for each
// frame, the unchecked copy of the body if the frame is at least
// constEnd long, else the checked copy.
func assemble(ins []insn) []byte {
	a := &assembler{}
	loop := len(a.code)
	a.emit(0x48, 0x8b, 0x37)       // mov rsi, [rdi]: the frame
	a.emit(0x4c, 0x8b, 0x57, 0x08) // mov r10, [rdi+8]: its length
	a.emit(0x31, 0xc0)             // xor eax, eax: A = 0
	a.emit(0x31, 0xc9)             // xor ecx, ecx: X = 0
	for _, i := range ins {
		if i.op == opLdMem || i.op == opLdxMem {
			// M starts zeroed, as in the interpreter.
			a.emit(0x31, 0xd2) // xor edx, edx
			for d := byte(0); d < 64; d += 8 {
				a.emit(0x49, 0x89, 0x50, d) // mov [r8+d], rdx
			}
			break
		}
	}
	end := constEnd(ins)
	if end > 0 {
		a.emit(0x49, 0x81, 0xfa) // cmp r10, imm32
		a.imm32(end)
		a.emit(0x0f, 0x80|ccB) // jb: to the checked copy
		checked := len(a.code)
		a.imm32(0)
		a.emitBody(ins, 0, false)
		binary.LittleEndian.PutUint32(a.code[checked:], uint32(len(a.code)-(checked+4)))
	}
	a.emitBody(ins, 1, true)
	a.finish(loop)
	return a.code
}

// emitBody emits copy body of the program ins, which checks the loads at
// constant offsets if checkK.
func (a *assembler) emitBody(ins []insn, body int, checkK bool) {
	a.body, a.checkK = body, checkK
	a.at[body] = make([]int, len(ins))
	last := body == 1 // done follows the checked copy
	for pc, i := range ins {
		a.at[body][pc] = len(a.code)
		switch i.op {
		case opRetK:
			a.emit(0xb8) // mov eax, imm32
			a.imm32(i.k)
			a.ret(pc == len(ins)-1 && last)
		case opRetA:
			a.ret(pc == len(ins)-1 && last)
		case opLdAbsB, opLdAbsH, opLdAbsW:
			size := loadSize[i.op]
			a.load(size, i.k, a.boundsK(i.k, size))
		case opLdIndB, opLdIndH, opLdIndW:
			size := loadSize[i.op]
			a.boundsX(i.k, size)
			a.load(size, 0, false)
		case opLdImm:
			a.emit(0xb8) // mov eax, imm32
			a.imm32(i.k)
		case opLdxImm:
			a.emit(0xb9) // mov ecx, imm32
			a.imm32(i.k)
		case opLdLen:
			a.emit(0x41, 0x8b, 0xc2) // mov eax, r10d
		case opLdxLen:
			a.emit(0x41, 0x8b, 0xca) // mov ecx, r10d
		case opLdMem:
			a.emit(0x41, 0x8b, 0x40, byte(4*i.k)) // mov eax, [r8+4k]
		case opLdxMem:
			a.emit(0x41, 0x8b, 0x48, byte(4*i.k)) // mov ecx, [r8+4k]
		case opSt:
			a.emit(0x41, 0x89, 0x40, byte(4*i.k)) // mov [r8+4k], eax
		case opStx:
			a.emit(0x41, 0x89, 0x48, byte(4*i.k)) // mov [r8+4k], ecx
		case opLdxMsh:
			if a.boundsK(i.k, 1) {
				a.emit(0x0f, 0xb6, 0x8e) // movzx ecx, byte [rsi+disp32]
				a.imm32(i.k)
			} else {
				a.emit(0x42, 0x0f, 0xb6, 0x0c, 0x1e) // movzx ecx, byte [rsi+r11]
			}
			a.emit(0x83, 0xe1, 0x0f) // and ecx, 0xf
			a.emit(0xc1, 0xe1, 0x02) // shl ecx, 2
		case opAddK, opSubK, opAndK, opOrK, opXorK:
			a.emit(aluK[i.op])
			a.imm32(i.k)
		case opAddX, opSubX, opAndX, opOrX, opXorX:
			a.emit(aluX[i.op], 0xc8) // op eax, ecx
		case opMulK:
			a.emit(0x69, 0xc0) // imul eax, eax, imm32
			a.imm32(i.k)
		case opMulX:
			a.emit(0x0f, 0xaf, 0xc1) // imul eax, ecx
		case opDivK, opModK:
			a.emit(0x31, 0xd2)       // xor edx, edx
			a.emit(0x41, 0xb9)       // mov r9d, imm32
			a.imm32(i.k)             // not 0: Compile refuses it
			a.emit(0x41, 0xf7, 0xf1) // div r9d
			if i.op == opModK {
				a.emit(0x89, 0xd0) // mov eax, edx
			}
		case opDivX, opModX:
			a.emit(0x85, 0xc9) // test ecx, ecx
			a.jcc(ccE, retZero)
			a.emit(0x31, 0xd2) // xor edx, edx
			a.emit(0xf7, 0xf1) // div ecx
			if i.op == opModX {
				a.emit(0x89, 0xd0) // mov eax, edx
			}
		case opLshK:
			a.emit(0xc1, 0xe0, byte(i.k)) // shl eax, imm8 (below 32: Compile refuses more)
		case opRshK:
			a.emit(0xc1, 0xe8, byte(i.k)) // shr eax, imm8
		case opLshX, opRshX:
			// A shift by 32 or more leaves 0, as Go's shift (amd64
			// would shift by CL mod 32).
			shift := byte(0xe0) // shl eax, cl
			if i.op == opRshX {
				shift = 0xe8 // shr eax, cl
			}
			a.emit(0x83, 0xf9, 31) // cmp ecx, 31
			a.emit(0x76, 4)        // jbe +4: to the shift
			a.emit(0x31, 0xc0)     // xor eax, eax
			a.emit(0xeb, 2)        // jmp +2: over the shift
			a.emit(0xd3, shift)
		case opNeg:
			a.emit(0xf7, 0xd8) // neg eax
		case opTax:
			a.emit(0x89, 0xc1) // mov ecx, eax
		case opTxa:
			a.emit(0x89, 0xc8) // mov eax, ecx
		case opJa:
			if i.k != 0 {
				a.jmp(pc + 1 + int(i.k))
			}
		case opJeqK, opJgtK, opJgeK:
			a.emit(0x3d) // cmp eax, imm32
			a.imm32(i.k)
			a.branch(pc, i, jumpCond[i.op])
		case opJsetK:
			a.emit(0xa9) // test eax, imm32
			a.imm32(i.k)
			a.branch(pc, i, ccNE)
		case opJeqX, opJgtX, opJgeX:
			a.emit(0x39, 0xc8) // cmp eax, ecx
			a.branch(pc, i, jumpCond[i.op])
		case opJsetX:
			a.emit(0x85, 0xc8) // test eax, ecx
			a.branch(pc, i, ccNE)
		default:
			panic(fmt.Sprintf("cbpf: no machine code for op %d", i.op)) // Compile decodes no other
		}
	}
}

// finish emits done, which goes back to loop for the next frame, and
// retZero, and patches the jumps.
func (a *assembler) finish(loop int) {
	end := len(a.code)             // done
	a.emit(0x41, 0x89, 0x04, 0x24) // mov [r12], eax
	a.emit(0x4c, 0x01, 0xff)       // add rdi, r15
	a.emit(0x49, 0x83, 0xc4, 0x04) // add r12, 4
	a.emit(0x48, 0xff, 0xcb)       // dec rbx
	a.emit(0x0f, 0x85)             // jnz loop
	a.imm32(uint32(int32(loop - (len(a.code) + 4))))
	a.emit(0xc3) // ret
	zero := len(a.code)
	a.emit(0x31, 0xc0) // retZero: xor eax, eax; jmp done
	a.jmp(done)
	for _, f := range a.fixes {
		var to int
		switch f.target {
		case retZero:
			to = zero
		case done:
			to = end
		default:
			to = a.at[f.body][f.target]
		}
		binary.LittleEndian.PutUint32(a.code[f.pos:], uint32(int32(to-(f.pos+4))))
	}
}

// ret ends the frame's run, its result in A: a jump to done, unless done
// follows.
func (a *assembler) ret(doneFollows bool) {
	if !doneFollows {
		a.jmp(done)
	}
}
