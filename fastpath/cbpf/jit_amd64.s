#include "textflag.h"

// func runNative(entry uintptr, frames unsafe.Pointer, stride uintptr, n int, out *uint32)
//
// Calls the compiled filter at entry, which loops over the n frames (see
// jit_amd64.go for its registers), with the 64 bytes of this frame as its
// scratch memory.
TEXT ·runNative(SB), NOSPLIT, $64-40
	MOVQ entry+0(FP), AX
	MOVQ frames+8(FP), DI
	MOVQ stride+16(FP), R15
	MOVQ n+24(FP), BX
	MOVQ out+32(FP), R12
	MOVQ SP, R8
	CALL AX
	RET
