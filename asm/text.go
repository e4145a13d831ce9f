package asm

import (
	"strconv"
	"strings"
)

// String returns ins in the syntax of the kernel's verifier log
// (print_bpf_insn in kernel/bpf/disasm.c): exactly the text that follows
// the opcode, "(b7) ", in a line of the log, such as `r0 = -1`,
// `if r1 != 0x800 goto pc+3` or `call bpf_get_prandom_u32#7`.
//
// Where the kernel's text does not say everything, String departs from it
// so that Parse can read it back:
//   - an instruction with a Target prints the label instead of the offset:
//     `goto drop`, `if r0 != 0x800 goto drop`, `call subprog`;
//   - an LD_IMM64 with a pseudo source, whose immediate the kernel prints
//     after it has replaced it with an address, prints as `r1 = map[fd:3]`,
//     `r1 = map[fd:3][0]+8`, `r1 = map[idx:0]`, `r1 = map[idx:0][0]+8`,
//     `r1 = btf[id:42]` (`btf[id:42,fd:5]` for a module's BTF) and
//     `r1 = func[pc+3]` (or `r1 = func[label]`);
//   - a map load that names its map (Instruction.Map) prints the name
//     where the fd would be, `r1 = map[flows]` and `r1 = map[flows][0]+8`:
//     without the `fd:` or `idx:` of the kernel's forms;
//   - a kfunc call prints as the kernel prints it without BTF,
//     `call kernel-function#42`, where the verifier names the function;
//     a non-zero offset (the fd_array index of a module's BTF) follows as
//     ` off:N`, and so does the offset of exit, which the kernel ignores
//     and does not print: `exit off:1`;
//   - callx, which the kernel does not load, prints as LLVM writes it:
//     `callx r2`.
//
// An invalid instruction prints as something readable, not as kernel text.
func (ins Instruction) String() string {
	return string(ins.AppendTo(make([]byte, 0, 48)))
}

// AppendTo appends the text of String to b, as netip.Addr.AppendTo does.
func (ins Instruction) AppendTo(b []byte) []byte {
	if ins.badSize != 0 {
		b = append(b, "invalid size "...)
		return strconv.AppendUint(b, uint64(ins.badSize&0xff), 10)
	}
	switch ins.OpCode.Class() {
	case ALUClass, ALU64Class:
		return ins.appendALU(b)
	case JumpClass, Jump32Class:
		return ins.appendJump(b)
	case LdClass:
		return ins.appendLd(b)
	case LdXClass:
		return ins.appendLdX(b)
	case StClass:
		if ins.OpCode.Mode() != MemMode {
			break
		}
		b = ins.appendMem(b, sizeName(ins.OpCode), ins.Dst)
		b = append(b, " = "...)
		return strconv.AppendInt(b, int64(int32(ins.Constant)), 10)
	case StXClass:
		return ins.appendStX(b)
	}
	return appendInvalid(b, ins)
}

func appendInvalid(b []byte, ins Instruction) []byte {
	b = append(b, "invalid opcode 0x"...)
	return appendHex2(b, uint8(ins.OpCode))
}

func appendHex2(b []byte, v uint8) []byte {
	const digits = "0123456789abcdef"
	return append(b, digits[v>>4], digits[v&0xf])
}

// appendReg appends a register as rN, or wN for 32-bit operations.
func appendReg(b []byte, w bool, r Register) []byte {
	if w {
		b = append(b, 'w')
	} else {
		b = append(b, 'r')
	}
	return strconv.AppendUint(b, uint64(r), 10)
}

// appendSigned appends v with an explicit sign, as printf's %+d.
func appendSigned(b []byte, v int64) []byte {
	if v >= 0 {
		b = append(b, '+')
	}
	return strconv.AppendInt(b, v, 10)
}

var aluNames = [16]string{"+=", "-=", "*=", "/=", "|=", "&=", "<<=", ">>=", "neg", "%=", "^=", "=", "s>>=", "endian"}

var jumpNames = [16]string{"jmp", "==", ">", ">=", "&", "!=", "s>", "s>=", "call", "exit", "<", "<=", "s<", "s<="}

var sizeNames = [4]string{"u32", "u16", "u8", "u64"}

var sxNames = [4]string{"s32", "s16", "s8", ""}

func sizeName(op OpCode) string { return sizeNames[op>>3&3] }

func (ins Instruction) appendALU(b []byte) []byte {
	op := ins.OpCode
	w := op.Class() == ALUClass
	switch aop := op.ALUOp(); {
	case aop == End:
		b = appendReg(b, false, ins.Dst)
		switch {
		case !w:
			b = append(b, " = bswap"...)
		case op.Source() == RegSource:
			b = append(b, " = be"...)
		default:
			b = append(b, " = le"...)
		}
		b = strconv.AppendInt(b, int64(int32(ins.Constant)), 10)
		b = append(b, ' ')
		return appendReg(b, false, ins.Dst)
	case aop == Neg:
		b = appendReg(b, w, ins.Dst)
		b = append(b, " = -"...)
		return appendReg(b, w, ins.Dst)
	case aop >= 0xe0:
		return appendInvalid(b, ins)
	}
	b = appendReg(b, w, ins.Dst)
	b = append(b, ' ')
	name := aluNames[op>>4]
	if ins.Offset == 1 && (op.ALUOp() == Div || op.ALUOp() == Mod) {
		name = "s" + name
	}
	b = append(b, name...)
	b = append(b, ' ')
	if op.Source() == ImmSource {
		return strconv.AppendInt(b, int64(int32(ins.Constant)), 10)
	}
	if op.ALUOp() == Mov {
		switch ins.Offset {
		case 8, 16, 32:
			b = append(b, "(s"...)
			b = strconv.AppendInt(b, int64(ins.Offset), 10)
			b = append(b, ')')
		}
	}
	return appendReg(b, w, ins.Src)
}

func (ins Instruction) appendTarget(b []byte, off int64) []byte {
	if ins.Target != "" {
		return append(b, ins.Target...)
	}
	b = append(b, "pc"...)
	return appendSigned(b, off)
}

func (ins Instruction) appendJump(b []byte) []byte {
	op := ins.OpCode
	w := op.Class() == Jump32Class
	switch jop := op.JumpOp(); {
	case jop == CallOp && !w && op.Source() == RegSource:
		b = append(b, "callx "...)
		return appendReg(b, false, ins.Dst)
	case jop == CallOp && !w:
		b = append(b, "call "...)
		switch ins.Src {
		case PseudoCall:
			return ins.appendTarget(b, int64(int32(ins.Constant)))
		case PseudoKfuncCall:
			b = append(b, "kernel-function#"...)
			b = strconv.AppendInt(b, int64(int32(ins.Constant)), 10)
			if ins.Offset != 0 {
				b = append(b, " off:"...)
				b = strconv.AppendInt(b, int64(ins.Offset), 10)
			}
			return b
		}
		b = append(b, HelperFunc(ins.Constant).String()...)
		b = append(b, '#')
		return strconv.AppendInt(b, int64(int32(ins.Constant)), 10)
	case jop == ExitOp && !w:
		b = append(b, "exit"...)
		if ins.Offset != 0 {
			b = append(b, " off:"...)
			b = strconv.AppendInt(b, int64(ins.Offset), 10)
		}
		return b
	case jop == JCond && !w:
		b = append(b, "may_goto "...)
		return ins.appendTarget(b, int64(ins.Offset))
	case jop == Ja && !w:
		b = append(b, "goto "...)
		return ins.appendTarget(b, int64(ins.Offset))
	case jop == Ja:
		b = append(b, "gotol "...)
		return ins.appendTarget(b, int64(int32(ins.Constant)))
	case jop >= 0xe0 || jop == CallOp || jop == ExitOp:
		return appendInvalid(b, ins)
	}
	b = append(b, "if "...)
	b = appendReg(b, w, ins.Dst)
	b = append(b, ' ')
	b = append(b, jumpNames[op>>4]...)
	b = append(b, ' ')
	if op.Source() == RegSource {
		b = appendReg(b, w, ins.Src)
	} else {
		b = append(b, "0x"...)
		b = strconv.AppendUint(b, uint64(uint32(ins.Constant)), 16)
	}
	b = append(b, " goto "...)
	return ins.appendTarget(b, int64(ins.Offset))
}

// appendMem appends `*(size *)(reg +off)`.
func (ins Instruction) appendMem(b []byte, size string, reg Register) []byte {
	b = append(b, "*("...)
	b = append(b, size...)
	b = append(b, " *)"...)
	return ins.appendAddr(b, reg)
}

// appendAddr appends `(reg +off)`.
func (ins Instruction) appendAddr(b []byte, reg Register) []byte {
	b = append(b, '(')
	b = appendReg(b, false, reg)
	b = append(b, ' ')
	b = appendSigned(b, int64(ins.Offset))
	return append(b, ')')
}

func (ins Instruction) appendLd(b []byte) []byte {
	op := ins.OpCode
	switch op.Mode() {
	case AbsMode, IndMode:
		b = append(b, "r0 = *("...)
		b = append(b, sizeName(op)...)
		b = append(b, " *)skb["...)
		if op.Mode() == IndMode {
			b = appendReg(b, false, ins.Src)
			b = append(b, " + "...)
		}
		b = strconv.AppendInt(b, int64(int32(ins.Constant)), 10)
		return append(b, ']')
	case ImmMode:
		if !ins.IsLoadImm64() {
			break
		}
		b = appendReg(b, false, ins.Dst)
		b = append(b, " = "...)
		lo, hi := uint64(uint32(ins.Constant)), uint64(ins.Constant)>>32
		switch ins.Src {
		case 0:
			b = append(b, "0x"...)
			return strconv.AppendUint(b, uint64(ins.Constant), 16)
		case PseudoMapFD, PseudoMapValue:
			if ins.Map != "" {
				b = append(b, "map["...)
				b = append(b, ins.Map...)
				b = append(b, ']')
				if ins.Src == PseudoMapValue {
					b = append(b, "[0]+"...)
					b = strconv.AppendUint(b, hi, 10)
				}
				return b
			}
			b = append(b, "map[fd:"...)
		case PseudoMapIdx, PseudoMapIdxValue:
			b = append(b, "map[idx:"...)
		case PseudoBTFID:
			b = append(b, "btf[id:"...)
		case PseudoFunc:
			b = append(b, "func["...)
			if ins.Target != "" {
				b = append(b, ins.Target...)
				return append(b, ']')
			}
			b = ins.appendTarget(b, int64(int32(lo)))
			return append(b, ']')
		default:
			return appendInvalid(b, ins)
		}
		b = strconv.AppendUint(b, lo, 10)
		if ins.Src == PseudoBTFID && hi != 0 {
			b = append(b, ",fd:"...)
			b = strconv.AppendUint(b, hi, 10)
		}
		b = append(b, ']')
		if ins.Src == PseudoMapValue || ins.Src == PseudoMapIdxValue {
			b = append(b, "[0]+"...)
			return strconv.AppendUint(b, hi, 10)
		}
		return b
	}
	return appendInvalid(b, ins)
}

func (ins Instruction) appendLdX(b []byte) []byte {
	op := ins.OpCode
	var size string
	switch op.Mode() {
	case MemMode:
		size = sizeName(op)
	case MemSXMode:
		size = sxNames[op>>3&3]
	}
	if size == "" {
		return appendInvalid(b, ins)
	}
	b = appendReg(b, false, ins.Dst)
	b = append(b, " = "...)
	return ins.appendMem(b, size, ins.Src)
}

var atomicNames = [16]string{0x0: "add", 0x4: "or", 0x5: "and", 0xa: "xor"}

func (ins Instruction) appendStX(b []byte) []byte {
	op := ins.OpCode
	size := sizeName(op)
	if op.Mode() == MemMode {
		b = ins.appendMem(b, size, ins.Dst)
		b = append(b, " = "...)
		return appendReg(b, false, ins.Src)
	}
	if op.Mode() != AtomicMode {
		return appendInvalid(b, ins)
	}
	bits := ""
	if op.Size() == DWord {
		bits = "64"
	}
	aop := AtomicOp(ins.Constant)
	switch aop {
	case AtomicAdd, AtomicOr, AtomicAnd, AtomicXor:
		b = append(b, "lock "...)
		b = ins.appendMem(b, size, ins.Dst)
		b = append(b, ' ')
		b = append(b, aluNames[aop>>4]...)
		b = append(b, ' ')
		return appendReg(b, false, ins.Src)
	case FetchAdd, FetchOr, FetchAnd, FetchXor, Xchg, CmpXchg:
		if aop == CmpXchg {
			b = append(b, "r0 = atomic"...)
		} else {
			b = appendReg(b, false, ins.Src)
			b = append(b, " = atomic"...)
		}
		b = append(b, bits...)
		switch aop {
		case Xchg:
			b = append(b, "_xchg(("...)
		case CmpXchg:
			b = append(b, "_cmpxchg(("...)
		default:
			b = append(b, "_fetch_"...)
			b = append(b, atomicNames[aop>>4&0xf]...)
			b = append(b, "(("...)
		}
		b = append(b, size...)
		b = append(b, " *)"...)
		b = ins.appendAddr(b, ins.Dst)
		b = append(b, ", "...)
		if aop == CmpXchg {
			b = append(b, "r0, "...)
		}
		b = appendReg(b, false, ins.Src)
		return append(b, ')')
	case LoadAcq:
		b = appendReg(b, false, ins.Dst)
		b = append(b, " = load_acquire(("...)
		b = append(b, size...)
		b = append(b, " *)"...)
		b = ins.appendAddr(b, ins.Src)
		return append(b, ')')
	case StoreRel:
		b = append(b, "store_release(("...)
		b = append(b, size...)
		b = append(b, " *)"...)
		b = ins.appendAddr(b, ins.Dst)
		b = append(b, ", "...)
		b = appendReg(b, false, ins.Src)
		return append(b, ')')
	}
	return appendInvalid(b, ins)
}

// String returns a listing of insns that Parse reads back: a `name:` line
// for each label, then each instruction on its own line, indented by a
// tab, in the syntax of Instruction.String.
func (insns Instructions) String() string {
	var sb strings.Builder
	b := make([]byte, 0, 64)
	for _, ins := range insns {
		if ins.Label != "" {
			sb.WriteString(ins.Label)
			sb.WriteString(":\n")
		}
		b = append(b[:0], '\t')
		b = ins.AppendTo(b)
		b = append(b, '\n')
		sb.Write(b)
	}
	return sb.String()
}
