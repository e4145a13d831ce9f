package asm

// ALUOp is an arithmetic operation. Its low byte holds the operation bits of
// the opcode; its high byte holds the instruction offset that selects the
// kernel's signed and sign-extending variants (SDiv, SMod, MovSX8, ...).
type ALUOp uint16

// The arithmetic operations. In the semantics below, dst and src are the
// destination and source operands: registers, or for Imm builders the
// immediate.
const (
	Add  ALUOp = 0x00 // dst += src
	Sub  ALUOp = 0x10 // dst -= src
	Mul  ALUOp = 0x20 // dst *= src
	Div  ALUOp = 0x30 // dst = (src != 0) ? (dst / src) : 0, unsigned
	Or   ALUOp = 0x40 // dst |= src
	And  ALUOp = 0x50 // dst &= src
	LSh  ALUOp = 0x60 // dst <<= (src & mask)
	RSh  ALUOp = 0x70 // dst >>= (src & mask), logical
	Neg  ALUOp = 0x80 // dst = -dst; see Negate
	Mod  ALUOp = 0x90 // dst = (src != 0) ? (dst % src) : dst, unsigned
	Xor  ALUOp = 0xa0 // dst ^= src
	Mov  ALUOp = 0xb0 // dst = src
	ArSh ALUOp = 0xc0 // dst >>= (src & mask), sign-extending
	End  ALUOp = 0xd0 // byte swap; see ToLE, ToBE and BSwap

	// SDiv is signed division, dst s/= src (Linux 6.6).
	SDiv ALUOp = Div | 1<<8
	// SMod is signed modulo, dst s%= src (Linux 6.6).
	SMod ALUOp = Mod | 1<<8
	// MovSX8 sign-extends the low 8 bits of src into dst (Linux 6.6).
	MovSX8 ALUOp = Mov | 8<<8
	// MovSX16 sign-extends the low 16 bits of src into dst (Linux 6.6).
	MovSX16 ALUOp = Mov | 16<<8
	// MovSX32 sign-extends the low 32 bits of src into dst; only the
	// 64-bit form (Reg) exists (Linux 6.6).
	MovSX32 ALUOp = Mov | 32<<8
)

// opBits returns the operation bits of op's opcode.
func (op ALUOp) opBits() OpCode { return OpCode(op & 0xf0) }

// offset returns the instruction offset that selects op's variant.
func (op ALUOp) offset() int16 { return int16(op >> 8) }

// Imm emits a 64-bit operation with an immediate, `dst op= imm`
// (BPF_ALU64 | BPF_K). The immediate is sign-extended to 64 bits.
func (op ALUOp) Imm(dst Register, imm int32) Instruction {
	return Instruction{
		OpCode:   OpCode(ALU64Class) | op.opBits() | OpCode(ImmSource),
		Dst:      dst,
		Offset:   op.offset(),
		Constant: int64(imm),
	}
}

// Reg emits a 64-bit operation on two registers, `dst op= src`
// (BPF_ALU64 | BPF_X).
func (op ALUOp) Reg(dst, src Register) Instruction {
	return Instruction{
		OpCode: OpCode(ALU64Class) | op.opBits() | OpCode(RegSource),
		Dst:    dst,
		Src:    src,
		Offset: op.offset(),
	}
}

// Imm32 emits a 32-bit operation with an immediate, `wdst op= imm`
// (BPF_ALU | BPF_K). The result is zero-extended into the 64-bit register.
func (op ALUOp) Imm32(dst Register, imm int32) Instruction {
	ins := op.Imm(dst, imm)
	ins.OpCode = ins.OpCode&^0x07 | OpCode(ALUClass)
	return ins
}

// Reg32 emits a 32-bit operation on two registers, `wdst op= wsrc`
// (BPF_ALU | BPF_X). The result is zero-extended into the 64-bit register.
func (op ALUOp) Reg32(dst, src Register) Instruction {
	ins := op.Reg(dst, src)
	ins.OpCode = ins.OpCode&^0x07 | OpCode(ALUClass)
	return ins
}

// Negate emits `dst = -dst` on 64 bits (BPF_ALU64 | BPF_NEG).
func Negate(dst Register) Instruction { return Neg.Imm(dst, 0) }

// Negate32 emits `wdst = -wdst` on 32 bits (BPF_ALU | BPF_NEG).
func Negate32(dst Register) Instruction { return Neg.Imm32(dst, 0) }

// ToLE emits `dst = le<bits> dst`: converts the low 16, 32 or 64 bits of dst
// from host order to little-endian, zeroing the bits above
// (BPF_ALU | BPF_END | BPF_TO_LE).
func ToLE(dst Register, bits int32) Instruction {
	return Instruction{OpCode: OpCode(ALUClass) | End.opBits() | OpCode(ImmSource), Dst: dst, Constant: int64(bits)}
}

// ToBE emits `dst = be<bits> dst`: converts the low 16, 32 or 64 bits of dst
// from host order to big-endian, zeroing the bits above
// (BPF_ALU | BPF_END | BPF_TO_BE).
func ToBE(dst Register, bits int32) Instruction {
	return Instruction{OpCode: OpCode(ALUClass) | End.opBits() | OpCode(RegSource), Dst: dst, Constant: int64(bits)}
}

// BSwap emits `dst = bswap<bits> dst`: unconditionally reverses the bytes of
// the low 16, 32 or 64 bits of dst, zeroing the bits above
// (BPF_ALU64 | BPF_END, Linux 6.6).
func BSwap(dst Register, bits int32) Instruction {
	return Instruction{OpCode: OpCode(ALU64Class) | End.opBits() | OpCode(ImmSource), Dst: dst, Constant: int64(bits)}
}
