package asm

// The 8-bit opcode of an eBPF instruction (RFC 9669, section 3) is split
// into fields that depend on its class, held in the three low bits:
//
//	 7 6 5 4 3 2 1 0
//	+-------+-+-----+
//	|  op   |s|class|   ALU, ALU64, JMP, JMP32: operation, source (K=0, X=1)
//	+-------+-+-----+
//	+-----+---+-----+
//	|mode |sz |class|   LD, LDX, ST, STX: addressing mode, size
//	+-----+---+-----+

// OpCode is the raw opcode byte of an instruction.
type OpCode uint8

// Class is the instruction class, the three low bits of an OpCode.
type Class uint8

// The instruction classes.
const (
	LdClass     Class = 0x00 // BPF_LD: LD_IMM64 and the legacy packet loads
	LdXClass    Class = 0x01 // BPF_LDX: loads from memory into a register
	StClass     Class = 0x02 // BPF_ST: stores of an immediate
	StXClass    Class = 0x03 // BPF_STX: stores of a register, atomics
	ALUClass    Class = 0x04 // BPF_ALU: 32-bit arithmetic
	JumpClass   Class = 0x05 // BPF_JMP: 64-bit jumps, call, exit
	Jump32Class Class = 0x06 // BPF_JMP32: 32-bit jumps
	ALU64Class  Class = 0x07 // BPF_ALU64: 64-bit arithmetic
)

// Source selects the second operand of ALU and jump instructions.
type Source uint8

// The operand sources.
const (
	ImmSource Source = 0x00 // BPF_K: the 32-bit immediate
	RegSource Source = 0x08 // BPF_X: the source register
)

// Mode is the addressing mode of a load or store.
type Mode uint8

// The addressing modes.
const (
	ImmMode    Mode = 0x00 // BPF_IMM: LD_IMM64
	AbsMode    Mode = 0x20 // BPF_ABS: legacy packet load at a constant offset
	IndMode    Mode = 0x40 // BPF_IND: legacy packet load at register + offset
	MemMode    Mode = 0x60 // BPF_MEM: regular load or store
	MemSXMode  Mode = 0x80 // BPF_MEMSX: sign-extending load (Linux 6.6)
	AtomicMode Mode = 0xc0 // BPF_ATOMIC: atomic operation (Linux 5.12)
)

// Class returns the class of op.
func (op OpCode) Class() Class { return Class(op & 0x07) }

// Source returns the operand source of an ALU or jump opcode.
func (op OpCode) Source() Source { return Source(op & 0x08) }

// Mode returns the addressing mode of a load or store opcode.
func (op OpCode) Mode() Mode { return Mode(op & 0xe0) }

// Size returns the access size of a load or store opcode.
func (op OpCode) Size() Size {
	switch op & 0x18 {
	case 0x00:
		return Word
	case 0x08:
		return Half
	case 0x10:
		return Byte
	default:
		return DWord
	}
}

// ALUOp returns the operation of an ALU or ALU64 opcode. The signed and
// sign-extending variants are told apart by the instruction's offset, so
// the result is one of the plain operations.
func (op OpCode) ALUOp() ALUOp { return ALUOp(op & 0xf0) }

// JumpOp returns the operation of a JMP or JMP32 opcode.
func (op OpCode) JumpOp() JumpOp { return JumpOp(op & 0xf0) }

// IsALU reports whether c is ALUClass or ALU64Class.
func (c Class) IsALU() bool { return c == ALUClass || c == ALU64Class }

// IsJump reports whether c is JumpClass or Jump32Class.
func (c Class) IsJump() bool { return c == JumpClass || c == Jump32Class }

// bits encodes s in the size field of a load or store opcode.
func (s Size) bits() OpCode {
	switch s {
	case Byte:
		return 0x10
	case Half:
		return 0x08
	case Word:
		return 0x00
	default:
		return 0x18
	}
}

// Defined reports whether op is the opcode of an instruction of RFC 9669
// or of the kernel's extensions to it, whatever its other fields hold:
// Disassemble decodes these, and refuses the others. The undefined
// opcodes are the arithmetic operations 0xe and 0xf, negation and the
// 64-bit byte swap with the source bit set, jump operation 0xf, 0xe but
// for may_goto (BPF_JMP | BPF_K | BPF_JCOND), jumps by register (0x0d,
// 0x0e), calls and exits of JMP32 and exit by register, 32-bit and narrower
// BPF_LD | BPF_IMM (classic BPF's), 64-bit legacy packet loads, BPF_LD in
// other modes, 64-bit sign-extending loads, stores of immediates in modes
// other than BPF_MEM and stores of registers in modes other than BPF_MEM
// and BPF_ATOMIC.
func (op OpCode) Defined() bool {
	switch op.Class() {
	case ALUClass, ALU64Class:
		switch op.ALUOp() {
		case 0xe0, 0xf0:
			return false
		case Neg:
			return op.Source() == ImmSource
		case End:
			return op.Class() == ALUClass || op.Source() == ImmSource
		}
		return true
	case JumpClass, Jump32Class:
		jmp32 := op.Class() == Jump32Class
		switch op.JumpOp() {
		case Ja, JCond:
			return op.Source() == ImmSource && (op.JumpOp() == Ja || !jmp32)
		case CallOp:
			return !jmp32
		case ExitOp:
			return !jmp32 && op.Source() == ImmSource
		case 0xf0:
			return false
		}
		return true
	case LdClass:
		switch op.Mode() {
		case ImmMode:
			return op.Size() == DWord
		case AbsMode, IndMode:
			return op.Size() != DWord
		}
		return false
	case LdXClass:
		return op.Mode() == MemMode || op.Mode() == MemSXMode && op.Size() != DWord
	case StClass:
		return op.Mode() == MemMode
	default: // StXClass
		return op.Mode() == MemMode || op.Mode() == AtomicMode
	}
}
