package rules

import "fmt"

// Register is an nf_tables register as netlink numbers it: RegVerdict (0),
// the four 16-byte registers Reg1…Reg4 (1…4), and the sixteen 4-byte
// registers Reg32(0)…Reg32(15) (8…23), which overlay the 16-byte ones:
// Reg1 is Reg32(0)…Reg32(3), Reg2 is Reg32(4)…Reg32(7), and so on. A value
// longer than its register runs on into the next ones.
type Register uint32

// Registers.
const (
	RegVerdict Register = 0
	Reg1       Register = 1
	Reg2       Register = 2
	Reg3       Register = 3
	Reg4       Register = 4
	reg32Base  Register = 8
)

// RegDataSize is the size in bytes of the data registers together.
const RegDataSize = 64

// Reg32 returns the 4-byte register n (0…15), NFT_REG32_00 + n.
func Reg32(n int) Register { return reg32Base + Register(n) }

// Valid reports whether r is a register the kernel accepts.
func (r Register) Valid() bool { return r <= Reg4 || (r >= reg32Base && r < reg32Base+16) }

// Offset returns the byte offset of a data register in the 64 bytes of
// data registers; -1 for RegVerdict and invalid numbers.
func (r Register) Offset() int {
	switch {
	case r >= Reg1 && r <= Reg4:
		return int(r-Reg1) * 16
	case r >= reg32Base && r < reg32Base+16:
		return int(r-reg32Base) * 4
	}
	return -1
}

// String prints the register as nft --debug=netlink does ("reg 1").
func (r Register) String() string { return fmt.Sprintf("reg %d", uint32(r)) }

// VerdictKind is what a verdict does. The zero value is no verdict.
type VerdictKind uint8

// Verdicts. The kernel's codes are NF_DROP 0, NF_ACCEPT 1, NF_QUEUE 3,
// NFT_CONTINUE -1, NFT_BREAK -2, NFT_JUMP -3, NFT_GOTO -4, NFT_RETURN -5.
const (
	VerdictNone     VerdictKind = iota
	VerdictAccept               // accept: ends this hook's base chain, next base chain runs
	VerdictDrop                 // drop: final
	VerdictQueue                // queue to user space (queue 0)
	VerdictContinue             // continue with the next rule
	VerdictBreak                // end this rule (a failed match)
	VerdictJump                 // push, run Chain, come back
	VerdictGoto                 // run Chain, do not come back
	VerdictReturn               // pop the jump stack; in a base chain, its policy
)

var verdictNames = [...]string{"none", "accept", "drop", "queue", "continue", "break", "jump", "goto", "return"}

// String returns the verdict as nft names it.
func (k VerdictKind) String() string {
	if int(k) < len(verdictNames) {
		return verdictNames[k]
	}
	return fmt.Sprintf("verdict(%d)", uint8(k))
}

// Verdict is a verdict: its kind and, for jump and goto, the chain.
type Verdict struct {
	Kind  VerdictKind
	Chain string
}

// String prints the verdict as nft does ("accept", "jump web").
func (v Verdict) String() string {
	if v.Kind == VerdictJump || v.Kind == VerdictGoto {
		return v.Kind.String() + " " + v.Chain
	}
	return v.Kind.String()
}
