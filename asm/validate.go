package asm

import (
	"errors"
	"fmt"
	"math"
)

// ErrInvalidInstruction is wrapped by the errors of Assemble and Disassemble
// for an instruction whose fields the kernel does not accept together: an
// unknown opcode, a non-zero reserved field, a register above r10, an
// immediate that does not fit, ...
var ErrInvalidInstruction = errors.New("invalid instruction")

// invalid returns an error wrapping ErrInvalidInstruction.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidInstruction}, args...)...)
}

// Validate reports whether the kernel's decoder accepts ins, and if not,
// why: it applies the checks of the verifier's do_check_insn and
// check_*_op on fields (reserved fields zero, known operations and modes,
// registers r0 to r10, sizes an operation allows) but not those that need
// the program's state. Label and Target are not looked at: Assemble checks
// them. The kernel does not read the offset of exit, and accepts any.
func (ins Instruction) Validate() error { return ins.validate(kernelRules) }

// ValidateRFC is Validate under the rules of RFC 9669 (the BPF ISA) where
// they differ from the kernel's: a shift by an immediate out of range is
// defined (the count is masked to 5 or 6 bits), so is a division or modulo
// by an immediate 0 (the result is 0, or the dividend), and so is callx
// (BPF_JMP | BPF_X | BPF_CALL, see CallX), all of which the kernel
// refuses; and every field an instruction does not use must be zero, as
// the RFC says ("unused fields shall be cleared to zero"), where the
// kernel ignores the offset of exit and gives the offset of kfunc calls
// and the second immediate of LoadBTFID meanings of its own. The
// kernel's extensions the RFC does not define (may_goto, load-acquire and
// store-release, ...) are checked by the kernel's rules.
func (ins Instruction) ValidateRFC() error { return ins.validate(rfcRules) }

// rules selects the checks of validate.
type rules uint8

const (
	kernelRules rules = iota // the kernel's decoder: Validate
	rfcRules                 // RFC 9669: ValidateRFC
)

// validateAny accepts ins if the kernel or RFC 9669 does: what Assemble
// and Parse take. It returns the kernel's error otherwise.
func (ins *Instruction) validateAny() error {
	err := ins.validate(kernelRules)
	if err != nil && ins.validate(rfcRules) == nil {
		return nil
	}
	return err
}

func (ins *Instruction) validate(r rules) error {
	if ins.badSize != 0 {
		return invalid("access size %d is not 1, 2, 4 or 8", ins.badSize&0xff)
	}
	if ins.Dst > R10 {
		return invalid("destination register %d is not r0 to r10", ins.Dst)
	}
	if !ins.IsLoadImm64() && (ins.Constant < math.MinInt32 || ins.Constant > math.MaxInt32) {
		return invalid("immediate %d does not fit 32 bits", ins.Constant)
	}
	op := ins.OpCode
	switch op.Class() {
	case ALUClass, ALU64Class:
		return ins.validateALU(r)
	case JumpClass, Jump32Class:
		return ins.validateJump(r)
	case LdClass:
		return ins.validateLd(r)
	case LdXClass:
		return ins.validateLdX()
	case StClass:
		if op.Mode() != MemMode {
			return invalid("unknown st opcode %#02x", uint8(op))
		}
		return ins.zero(true, false, false)
	default: // StXClass
		return ins.validateStX()
	}
}

// zero checks that the fields flagged are zero: the source register, the
// offset and the immediate.
func (ins *Instruction) zero(src, off, imm bool) error {
	switch {
	case src && ins.Src != 0:
		return invalid("opcode %#02x uses reserved field src_reg (%d)", uint8(ins.OpCode), ins.Src)
	case off && ins.Offset != 0:
		return invalid("opcode %#02x uses reserved field off (%d)", uint8(ins.OpCode), ins.Offset)
	case imm && ins.Constant != 0:
		return invalid("opcode %#02x uses reserved field imm (%d)", uint8(ins.OpCode), ins.Constant)
	}
	return nil
}

// srcReg checks that the source register is r0 to r10.
func (ins *Instruction) srcReg() error {
	if ins.Src > R10 {
		return invalid("source register %d is not r0 to r10", ins.Src)
	}
	return nil
}

func (ins *Instruction) validateALU(r rules) error {
	op := ins.OpCode
	alu64 := op.Class() == ALU64Class
	switch op.ALUOp() {
	case 0xe0, 0xf0:
		return invalid("unknown alu operation %#02x", uint8(op))
	case End:
		if alu64 && op.Source() != ImmSource {
			return invalid("bswap (%#02x) uses reserved source bit", uint8(op))
		}
		if c := ins.Constant; c != 16 && c != 32 && c != 64 {
			return invalid("byte swap of %d bits, not 16, 32 or 64", c)
		}
		return ins.zero(true, true, false)
	case Neg:
		if op.Source() != ImmSource {
			return invalid("neg (%#02x) uses reserved source bit", uint8(op))
		}
		return ins.zero(true, true, true)
	case Mov:
		if op.Source() == RegSource {
			switch off := ins.Offset; {
			case off == 0, off == 8, off == 16, off == 32 && alu64:
			default:
				return invalid("mov with sign extension from %d bits (offset) is not 8, 16 or 32 (32 only on 64 bits)", off)
			}
			if err := ins.srcReg(); err != nil {
				return err
			}
			return ins.zero(false, false, true)
		}
		return ins.zero(true, true, false)
	case Div, Mod:
		if ins.Offset != 0 && ins.Offset != 1 {
			return invalid("division with offset %d, not 0 (unsigned) or 1 (signed)", ins.Offset)
		}
		if op.Source() == ImmSource && ins.Constant == 0 && r == kernelRules {
			return invalid("division by an immediate 0") // check_alu_op: "div by zero"
		}
	case LSh, RSh, ArSh:
		if ins.Offset != 0 {
			return ins.zero(false, true, false)
		}
		width := int64(32)
		if alu64 {
			width = 64
		}
		if op.Source() == ImmSource && (ins.Constant < 0 || ins.Constant >= width) && r == kernelRules {
			return invalid("shift by %d, not 0 to %d", ins.Constant, width-1) // check_alu_op: "invalid shift"
		}
	default:
		if ins.Offset != 0 {
			return ins.zero(false, true, false)
		}
	}
	if op.Source() == RegSource {
		if err := ins.srcReg(); err != nil {
			return err
		}
		return ins.zero(false, false, true)
	}
	return ins.zero(true, false, false)
}

func (ins *Instruction) validateJump(r rules) error {
	op := ins.OpCode
	jmp32 := op.Class() == Jump32Class
	switch op.JumpOp() {
	case JCond:
		if jmp32 || op.Source() != ImmSource {
			return invalid("unknown jump opcode %#02x", uint8(op))
		}
		if ins.Src != mayGoto || ins.Dst != 0 || ins.Constant != 0 {
			return invalid("may_goto (%#02x) uses reserved fields src_reg, dst_reg or imm", uint8(op)) // check_cond_jmp_op: "invalid may_goto"
		}
		return nil
	case 0xf0:
		return invalid("unknown jump operation %#02x", uint8(op))
	case Ja:
		if op.Source() != ImmSource {
			return invalid("unknown jump opcode %#02x", uint8(op))
		}
		if ins.Dst != 0 {
			return invalid("goto (%#02x) uses reserved field dst_reg", uint8(op))
		}
		if jmp32 {
			return ins.zero(true, true, false)
		}
		return ins.zero(true, false, true)
	case CallOp:
		if !jmp32 && op.Source() == RegSource && r == rfcRules {
			// callx: the helper's number is in dst_reg.
			if ins.Dst > R10 {
				return invalid("callx register %d is not r0 to r10", ins.Dst)
			}
			return ins.zero(true, true, true)
		}
		if jmp32 || op.Source() != ImmSource {
			return invalid("unknown call opcode %#02x", uint8(op))
		}
		if ins.Dst != 0 {
			return invalid("call uses reserved field dst_reg")
		}
		switch ins.Src {
		case 0, PseudoCall:
			return ins.zero(false, true, false)
		case PseudoKfuncCall:
			if r == rfcRules {
				return ins.zero(false, true, false)
			}
			return nil // off selects the BTF (fd_array index) of a module kfunc
		}
		return invalid("call with unknown source %d", ins.Src)
	case ExitOp:
		if jmp32 || op.Source() != ImmSource {
			return invalid("unknown exit opcode %#02x", uint8(op))
		}
		if ins.Dst != 0 {
			return invalid("exit uses reserved field dst_reg")
		}
		// The kernel's do_check_insn does not look at the offset of exit.
		return ins.zero(true, r == rfcRules, true)
	}
	if op.Source() == RegSource {
		if err := ins.srcReg(); err != nil {
			return err
		}
		return ins.zero(false, false, true)
	}
	return ins.zero(true, false, false)
}

func (ins *Instruction) validateLd(r rules) error {
	op := ins.OpCode
	switch op.Mode() {
	case ImmMode:
		if op.Size() != DWord {
			return invalid("ld_imm (%#02x) of less than 64 bits", uint8(op))
		}
		switch ins.Src {
		case 0, PseudoMapValue, PseudoMapIdxValue:
		case PseudoBTFID:
			// The kernel reads the second immediate as the fd of a
			// module's BTF; the RFC defines no use for it.
			if r == rfcRules && ins.Constant>>32 != 0 {
				return invalid("ld_imm64 with source %d uses reserved field imm of its second half", ins.Src)
			}
		case PseudoMapFD, PseudoMapIdx, PseudoFunc:
			if ins.Constant>>32 != 0 {
				return invalid("ld_imm64 with source %d uses reserved field imm of its second half", ins.Src)
			}
		default:
			return invalid("ld_imm64 with unknown source %d", ins.Src)
		}
		return ins.zero(false, true, false)
	case AbsMode, IndMode:
		if op.Size() == DWord {
			return invalid("legacy packet load of 64 bits (%#02x)", uint8(op))
		}
		if ins.Dst != 0 {
			return invalid("legacy packet load uses reserved field dst_reg")
		}
		if op.Mode() == AbsMode {
			return ins.zero(true, true, false)
		}
		if err := ins.srcReg(); err != nil {
			return err
		}
		return ins.zero(false, true, false)
	}
	return invalid("unknown ld opcode %#02x", uint8(op))
}

func (ins *Instruction) validateLdX() error {
	op := ins.OpCode
	switch {
	case op.Mode() == MemMode:
	case op.Mode() == MemSXMode && op.Size() != DWord:
	default:
		return invalid("unknown ldx opcode %#02x", uint8(op))
	}
	if err := ins.srcReg(); err != nil {
		return err
	}
	return ins.zero(false, false, true)
}

func (ins *Instruction) validateStX() error {
	op := ins.OpCode
	if err := ins.srcReg(); err != nil {
		return err
	}
	switch op.Mode() {
	case MemMode:
		return ins.zero(false, false, true)
	case AtomicMode:
	default:
		return invalid("unknown stx opcode %#02x", uint8(op))
	}
	switch AtomicOp(ins.Constant) {
	case LoadAcq, StoreRel:
		return nil
	case AtomicAdd, AtomicOr, AtomicAnd, AtomicXor, FetchAdd, FetchOr, FetchAnd, FetchXor, Xchg, CmpXchg:
		if s := op.Size(); s != Word && s != DWord {
			return invalid("atomic operation on %s, not u32 or u64", s)
		}
		return nil
	}
	return invalid("unknown atomic operation %#x", ins.Constant)
}
