package asm

// JumpOp is a jump operation, the operation bits of a JMP or JMP32 opcode.
type JumpOp uint8

// The jump operations. Conditional jumps compare dst with src (a register or
// the immediate) and jump when the condition holds.
const (
	Ja     JumpOp = 0x00 // goto, unconditionally
	JEq    JumpOp = 0x10 // if dst == src
	JGT    JumpOp = 0x20 // if dst > src, unsigned
	JGE    JumpOp = 0x30 // if dst >= src, unsigned
	JSet   JumpOp = 0x40 // if dst & src
	JNE    JumpOp = 0x50 // if dst != src
	JSGT   JumpOp = 0x60 // if dst s> src, signed
	JSGE   JumpOp = 0x70 // if dst s>= src, signed
	CallOp JumpOp = 0x80 // call; see Call, CallLabel and CallKfunc
	ExitOp JumpOp = 0x90 // return r0; see Exit
	JLT    JumpOp = 0xa0 // if dst < src, unsigned
	JLE    JumpOp = 0xb0 // if dst <= src, unsigned
	JSLT   JumpOp = 0xc0 // if dst s< src, signed
	JSLE   JumpOp = 0xd0 // if dst s<= src, signed
	JCond  JumpOp = 0xe0 // BPF_JCOND: may_goto; see MayGoto
)

// Imm emits `if dst op imm goto label` comparing all 64 bits of dst with
// the sign-extended immediate (BPF_JMP | BPF_K).
func (op JumpOp) Imm(dst Register, imm int32, label string) Instruction {
	return Instruction{OpCode: OpCode(JumpClass) | OpCode(op) | OpCode(ImmSource), Dst: dst, Constant: int64(imm), Target: label}
}

// Reg emits `if dst op src goto label` comparing all 64 bits
// (BPF_JMP | BPF_X).
func (op JumpOp) Reg(dst, src Register, label string) Instruction {
	return Instruction{OpCode: OpCode(JumpClass) | OpCode(op) | OpCode(RegSource), Dst: dst, Src: src, Target: label}
}

// Imm32 emits `if wdst op imm goto label` comparing the low 32 bits
// (BPF_JMP32 | BPF_K, Linux 5.1).
func (op JumpOp) Imm32(dst Register, imm int32, label string) Instruction {
	ins := op.Imm(dst, imm, label)
	ins.OpCode = ins.OpCode&^0x07 | OpCode(Jump32Class)
	return ins
}

// Reg32 emits `if wdst op wsrc goto label` comparing the low 32 bits
// (BPF_JMP32 | BPF_X, Linux 5.1).
func (op JumpOp) Reg32(dst, src Register, label string) Instruction {
	ins := op.Reg(dst, src, label)
	ins.OpCode = ins.OpCode&^0x07 | OpCode(Jump32Class)
	return ins
}

// Goto emits `goto label` (BPF_JMP | BPF_JA). Its 16-bit offset reaches
// 32767 instructions either way; when the label is farther, the assembler
// relaxes it to the 32-bit form of GotoL.
func Goto(label string) Instruction {
	return Instruction{OpCode: OpCode(JumpClass) | OpCode(Ja), Target: label}
}

// GotoL emits `gotol label`, the unconditional jump whose offset is the
// 32-bit immediate (BPF_JMP32 | BPF_JA, Linux 6.6).
func GotoL(label string) Instruction {
	return Instruction{OpCode: OpCode(Jump32Class) | OpCode(Ja), Target: label}
}

// MayGoto emits `may_goto label` (BPF_JMP | BPF_JCOND, src BPF_MAY_GOTO,
// Linux 6.9): it falls through while the loop budget the kernel keeps for
// the program lasts, taking one unit of it each time, and jumps to label
// once the budget is spent, so that a loop that tests it ends. The offset
// is 16 bits, as for conditional jumps.
func MayGoto(label string) Instruction {
	return Instruction{OpCode: OpCode(JumpClass) | OpCode(JCond), Src: mayGoto, Target: label}
}

// mayGoto is BPF_MAY_GOTO, the src_reg of may_goto.
const mayGoto Register = 0

// Call emits `call fn`, a call to a kernel helper function (BPF_JMP |
// BPF_CALL, src 0). Arguments are passed in r1 to r5 and the result comes
// back in r0; r1 to r5 are clobbered.
func Call(fn HelperFunc) Instruction {
	return Instruction{OpCode: OpCode(JumpClass) | OpCode(CallOp), Constant: int64(fn)}
}

// CallX emits `callx dst`, a call of the helper function whose number is
// in register dst (BPF_JMP | BPF_X | BPF_CALL): the callx conformance
// group of the public bpf_conformance suite, emitted by clang at -O0 and by
// gcc's -mxbpf. RFC 9669 defines calls of helpers "by address"; the kernel
// does not load callx (ValidateRFC accepts it, Validate does not).
func CallX(dst Register) Instruction {
	return Instruction{OpCode: OpCode(JumpClass) | OpCode(CallOp) | OpCode(RegSource), Dst: dst}
}

// CallLabel emits `call label`, a BPF-to-BPF call of the subprogram that
// starts at label (BPF_JMP | BPF_CALL, src BPF_PSEUDO_CALL, Linux 4.16).
func CallLabel(label string) Instruction {
	return Instruction{OpCode: OpCode(JumpClass) | OpCode(CallOp), Src: PseudoCall, Target: label}
}

// CallKfunc emits a call of the kernel function with BTF id btfID (BPF_JMP |
// BPF_CALL, src BPF_PSEUDO_KFUNC_CALL, Linux 5.13).
func CallKfunc(btfID int32) Instruction {
	return Instruction{OpCode: OpCode(JumpClass) | OpCode(CallOp), Src: PseudoKfuncCall, Constant: int64(btfID)}
}

// Exit emits `exit`: return from the program or subprogram with the value
// in r0 (BPF_JMP | BPF_EXIT).
func Exit() Instruction {
	return Instruction{OpCode: OpCode(JumpClass) | OpCode(ExitOp)}
}

// Source register values that give a call or LD_IMM64 its pseudo meaning.
const (
	PseudoMapFD       Register = 1 // LD_IMM64: imm is a map fd
	PseudoMapValue    Register = 2 // LD_IMM64: imm is a map fd, next imm an offset into its value
	PseudoBTFID       Register = 3 // LD_IMM64: imm is a kernel variable's BTF id
	PseudoFunc        Register = 4 // LD_IMM64: imm is the offset of a subprogram
	PseudoMapIdx      Register = 5 // LD_IMM64: imm is an index into fd_array
	PseudoMapIdxValue Register = 6 // LD_IMM64: as PseudoMapIdx, next imm an offset into its value

	PseudoCall      Register = 1 // call: imm is the offset of a subprogram
	PseudoKfuncCall Register = 2 // call: imm is a kernel function's BTF id
)
