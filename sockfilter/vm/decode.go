package vm

import (
	"fmt"

	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/sockfilter/skb"
)

// decode translates v.insns, which New validated, into v.code.
func (v *VM) decode(opts *Options) error {
	v.code = make([]insn, len(v.insns))
	slots := v.insns.Offsets()
	index := make([]int, 0, len(v.insns)*2) // slot → instruction
	for i, ins := range v.insns {
		index = append(index, i)
		if ins.IsLoadImm64() {
			index = append(index, -1)
		}
	}
	// target returns the instruction rel slots after the one after i;
	// validation made sure there is one.
	target := func(i int, rel int64) int32 { return int32(index[int64(slots[i])+1+rel]) }
	if len(opts.Helpers) > 0 {
		v.custom = opts.Helpers
	}
	st := stackUse{}
	for i := range v.insns {
		ins := &v.insns[i]
		in, err := v.decodeOne(ins, func(rel int64) int32 { return target(i, rel) })
		if err == nil {
			err = st.note(ins)
		}
		if err != nil {
			return &asm.InstructionError{Index: i, Instruction: *ins, Err: err}
		}
		v.code[i] = in
	}
	v.stackZero = st.zero()
	v.r6ctx = v.insns[0].OpCode == asm.Mov.Reg(asm.R6, asm.R1).OpCode && v.insns[0].Dst == asm.R6 && v.insns[0].Src == asm.R1 && v.insns[0].Offset == 0
	for i := 1; i < len(v.insns); i++ {
		if writesReg(&v.insns[i], asm.R6) {
			v.r6ctx = false
		}
	}
	first := v.insns[0]
	v.prologue = first.OpCode == asm.Mov.Reg(asm.R6, asm.R1).OpCode && first.Dst == asm.R6 && first.Src == asm.R1 && first.Offset == 0
	v.filter = v.compileFilter()
	v.fuse()
	v.pure = true
	for _, in := range v.code {
		v.loads = v.loads || in.op >= opLdxB && in.op <= opLdxsW
		switch {
		case in.op >= opAdd64K && in.op <= opNop, in.op >= opJeq64K && in.op <= opJa,
			in.op == opExit, in.op >= opLdAbsB && in.op <= opRet:
		default:
			v.pure = false
		}
	}
	return nil
}

// decodeOne translates one instruction.
func (v *VM) decodeOne(ins *asm.Instruction, target func(int64) int32) (insn, error) {
	in := insn{dst: uint8(ins.Dst), src: uint8(ins.Src), off: int32(ins.Offset), imm: uint64(ins.Constant)}
	if ins.IsLoadImm64() && ins.Map != "" {
		return v.decodeMapRef(ins, in)
	}
	op := ins.OpCode
	switch op.Class() {
	case asm.ALUClass, asm.ALU64Class:
		in.op = decodeALU(ins, &in)
	case asm.JumpClass, asm.Jump32Class:
		return v.decodeJump(ins, in, target)
	case asm.LdClass:
		return decodeLd(ins, in, target)
	case asm.LdXClass:
		in.op = opLdxB
		if op.Mode() == asm.MemSXMode {
			in.op = opLdxsB
		}
		in.op += sizeIndex(op.Size())
	case asm.StClass:
		in.op = opStB + sizeIndex(op.Size())
	case asm.StXClass:
		return decodeStX(ins, in)
	}
	return in, nil
}

// sizeIndex returns 0, 1, 2, 3 for u8, u16, u32 and u64: the order of the
// sized operations.
func sizeIndex(s asm.Size) op {
	switch s {
	case asm.Byte:
		return 0
	case asm.Half:
		return 1
	case asm.Word:
		return 2
	}
	return 3
}

// aluIndex maps an ALU opcode's operation, with the offset that selects
// the signed variants, to its group of four in the op list.
func aluIndex(o asm.ALUOp, off int16) (op, bool) {
	groups := []asm.ALUOp{asm.Add, asm.Sub, asm.Mul, asm.Div, asm.SDiv, asm.Or, asm.And, asm.LSh, asm.RSh, asm.Mod, asm.SMod, asm.Xor, asm.Mov, asm.ArSh}
	if off == 1 && (o == asm.Div || o == asm.Mod) {
		o |= 1 << 8
	}
	for i, g := range groups {
		if g == o {
			return op(i), true
		}
	}
	return 0, false
}

// decodeALU translates an arithmetic instruction, preparing its immediate:
// sign-extended to 64 bits (a 32-bit operation uses its low half), a shift
// count masked as the RFC says, a division or modulo by 0 turned into
// what it yields.
func decodeALU(ins *asm.Instruction, in *insn) op {
	opc := ins.OpCode
	is32 := opc.Class() == asm.ALUClass
	k := opc.Source() == asm.ImmSource
	switch a := opc.ALUOp(); a {
	case asm.Neg:
		if is32 {
			return opNeg32
		}
		return opNeg64
	case asm.End:
		return endOp(ins)
	case asm.Mov:
		if !k && ins.Offset != 0 {
			return movSX(ins.Offset, is32)
		}
	case asm.LSh, asm.RSh, asm.ArSh:
		if is32 {
			in.imm &= 31
		} else {
			in.imm &= 63
		}
	case asm.Div, asm.Mod:
		if k && ins.Constant == 0 {
			// dst = 0 for a division; dst unchanged, or its low 32
			// bits zero-extended, for a modulo.
			in.src = in.dst
			switch {
			case a == asm.Div:
				in.imm = 0
				return opMov64K
			case is32:
				return opMov32X
			}
			return opNop
		}
	}
	g, _ := aluIndex(opc.ALUOp(), ins.Offset)
	variant := op(var64K)
	switch {
	case is32 && k:
		variant = var32K
	case is32:
		variant = var32X
	case !k:
		variant = var64X
	}
	return opAdd64K + 4*g + variant
}

// movSX returns the sign-extending move from bits.
func movSX(bits int16, is32 bool) op {
	switch {
	case bits == 8 && is32:
		return opMovSX8to32
	case bits == 16 && is32:
		return opMovSX16to32
	case bits == 8:
		return opMovSX8to64
	case bits == 16:
		return opMovSX16to64
	}
	return opMovSX32to64
}

// endOp returns the byte swap of ins on this little-endian VM: to little
// endian truncates, to big endian and bswap swap.
func endOp(ins *asm.Instruction) op {
	swap := ins.OpCode.Class() == asm.ALU64Class || ins.OpCode.Source() == asm.RegSource
	switch {
	case ins.Constant == 16 && swap:
		return opBswap16
	case ins.Constant == 32 && swap:
		return opBswap32
	case swap:
		return opBswap64
	case ins.Constant == 16:
		return opZext16
	case ins.Constant == 32:
		return opZext32
	}
	return opNop
}

// jumpIndex is the order of the conditional jumps in the op list.
var jumpIndex = map[asm.JumpOp]op{
	asm.JEq: 0, asm.JGT: 1, asm.JGE: 2, asm.JSet: 3, asm.JNE: 4, asm.JSGT: 5,
	asm.JSGE: 6, asm.JLT: 7, asm.JLE: 8, asm.JSLT: 9, asm.JSLE: 10,
}

func (v *VM) decodeJump(ins *asm.Instruction, in insn, target func(int64) int32) (insn, error) {
	opc := ins.OpCode
	is32 := opc.Class() == asm.Jump32Class
	switch j := opc.JumpOp(); j {
	case asm.Ja:
		in.op = opJa
		if is32 {
			in.off = target(int64(int32(ins.Constant)))
		} else {
			in.off = target(int64(ins.Offset))
		}
	case asm.JCond:
		in.op, in.off = opMayGoto, target(int64(ins.Offset))
	case asm.ExitOp:
		in.op = opExit
	case asm.CallOp:
		return v.decodeCall(ins, in, target)
	default:
		variant := op(var64K)
		if is32 {
			variant = var32K
		}
		if opc.Source() == asm.RegSource {
			variant++
		}
		in.op = opJeq64K + 4*jumpIndex[j] + variant
		in.off = target(int64(ins.Offset))
	}
	return in, nil
}

func (v *VM) decodeCall(ins *asm.Instruction, in insn, target func(int64) int32) (insn, error) {
	switch {
	case ins.OpCode.Source() == asm.RegSource:
		in.op = opCallX
	case ins.Src == asm.PseudoCall:
		in.op, in.off = opCallPC, target(int64(int32(ins.Constant)))
	case ins.Src == asm.PseudoKfuncCall:
		return in, fmt.Errorf("%w: kfunc calls need the kernel's BTF", ErrUnsupported)
	default:
		fn := asm.HelperFunc(ins.Constant)
		if why := helperError(fn, v.custom); why != "" {
			return in, fmt.Errorf("%w: %s", ErrUnsupported, why)
		}
		in.op, in.aux = opCall, helperBuiltin
		if h := v.custom[fn]; h != nil {
			in.aux, in.off = helperCustom, int32(len(v.helpers))
			v.helpers = append(v.helpers, h)
		}
	}
	return in, nil
}

// decodeLd translates LD_IMM64 and the legacy packet loads, whose offset
// it resolves to a base and an offset from it when it is constant.
func decodeLd(ins *asm.Instruction, in insn, target func(int64) int32) (insn, error) {
	opc := ins.OpCode
	switch opc.Mode() {
	case asm.ImmMode:
		in.op = opMov64K
		switch ins.Src {
		case 0:
		case asm.PseudoMapFD, asm.PseudoMapIdx:
			in.imm = handle(ins.Src, uint32(ins.Constant))
		case asm.PseudoFunc:
			in.imm = handle(ins.Src, uint32(target(int64(int32(ins.Constant)))))
		default:
			return in, fmt.Errorf("%w: ld_imm64 of %s needs the kernel's objects", ErrUnsupported, pseudoName(ins.Src))
		}
		return in, nil
	case asm.IndMode:
		in.op = opLdIndB + sizeIndex(opc.Size())
		in.imm = uint64(int64(int32(ins.Constant)))
		return in, nil
	}
	in.op = opLdAbsB + sizeIndex(opc.Size())
	k := int32(ins.Constant)
	switch {
	case k >= 0:
		in.aux, in.off = baseData, k
	case k >= skb.NetOff:
		in.aux, in.off = baseNet, k-skb.NetOff
	case k >= skb.LLOff:
		in.aux, in.off = baseMAC, k-skb.LLOff
	default:
		in.op = opLdFail
	}
	return in, nil
}

func pseudoName(src asm.Register) string {
	switch src {
	case asm.PseudoMapValue, asm.PseudoMapIdxValue:
		return "a map value"
	case asm.PseudoBTFID:
		return "a kernel variable"
	}
	return fmt.Sprintf("source %d", src)
}

func decodeStX(ins *asm.Instruction, in insn) (insn, error) {
	opc := ins.OpCode
	if opc.Mode() == asm.MemMode {
		in.op = opStxB + sizeIndex(opc.Size())
		return in, nil
	}
	a := asm.AtomicOp(ins.Constant)
	switch a {
	case asm.LoadAcq:
		in.op = opLdxB + sizeIndex(opc.Size())
		return in, nil
	case asm.StoreRel:
		in.op = opStxB + sizeIndex(opc.Size())
		return in, nil
	}
	in.op = opAtomic64
	if opc.Size() == asm.Word {
		in.op = opAtomic32
	}
	switch a &^ 1 {
	case asm.AtomicAdd:
		in.aux = atomicAdd
	case asm.AtomicOr:
		in.aux = atomicOr
	case asm.AtomicAnd:
		in.aux = atomicAnd
	case asm.AtomicXor:
		in.aux = atomicXor
	case asm.Xchg &^ 1:
		in.aux = atomicXchg
	case asm.CmpXchg &^ 1:
		in.aux = atomicCmpXchg
	}
	if a&1 != 0 && a != asm.CmpXchg {
		in.aux |= atomicFetch
	}
	return in, nil
}

// stackUse finds how much of its stack a program can touch: how deep its
// accesses at constant offsets from r10 go, and whether it takes r10 in
// any other way, which lets it reach any of the 512 bytes.
type stackUse struct {
	used   bool // r10 appears
	escape bool // r10 is used other than as the base of an access
	depth  int  // the deepest byte an access at r10 + constant reaches
}

// note records ins, and refuses an access at a constant offset from r10
// outside the stack.
func (st *stackUse) note(ins *asm.Instruction) error {
	opc := ins.OpCode
	base := asm.Register(255)
	switch opc.Class() {
	case asm.LdXClass:
		base = ins.Src
		if ins.Dst == asm.R10 {
			st.escape = true
		}
	case asm.StClass:
		base = ins.Dst
	case asm.StXClass:
		base = ins.Dst
		if opc.Mode() == asm.AtomicMode && asm.AtomicOp(ins.Constant) == asm.LoadAcq {
			base = ins.Src
		} else if ins.Src == asm.R10 {
			st.escape, st.used = true, true // the pointer is stored
		}
	default:
		reads := ins.Src == asm.R10 && (opc.Class().IsALU() && opc.Source() == asm.RegSource ||
			opc.Class().IsJump() && opc.Source() == asm.RegSource || opc.Class() == asm.LdClass && opc.Mode() == asm.IndMode)
		if reads || ins.Dst == asm.R10 && opc.Class().IsJump() {
			st.escape, st.used = true, true
		}
		return nil
	}
	if base != asm.R10 {
		return nil
	}
	st.used = true
	size := int(opc.Size())
	if off := int(ins.Offset); off < -StackSize || off+size > 0 {
		return fmt.Errorf("%w: access of %d bytes at r10%+d is outside the %d-byte stack", asm.ErrInvalidProgram, size, off, StackSize)
	}
	st.depth = max(st.depth, -int(ins.Offset))
	return nil
}

// zero returns how many bytes of each frame's stack to clear.
func (st *stackUse) zero() int {
	switch {
	case !st.used:
		return 0
	case st.escape:
		return StackSize
	}
	return (st.depth + 7) &^ 7
}

// fuse makes superinstructions of a legacy load at a constant offset, or
// a 32-bit AND with a constant, followed by a 32-bit test for equality or
// inequality of the same register with a constant (see opLdAbsBJeq); of
// `r0 = imm; exit` in a program without BPF-to-BPF calls (opRet); and of
// a first instruction r6 = r1 (VM.prologue), which decode found.
func (v *VM) fuse() {
	calls := false
	for _, in := range v.code {
		calls = calls || in.op == opCallPC
	}
	for i := 0; i+1 < len(v.code); i++ {
		a, b := &v.code[i], &v.code[i+1]
		if a.op == opMov64K && a.dst == 0 && b.op == opExit && !calls {
			a.op = opRet
			continue
		}
		eq := b.op == opJeq32K
		if !eq && b.op != opJne32K {
			continue
		}
		switch {
		case a.op >= opLdAbsB && a.op <= opLdAbsW && b.dst == 0:
			f := opLdAbsBJeq + (a.op - opLdAbsB)
			if !eq {
				f += opLdAbsBJne - opLdAbsBJeq
			}
			a.op, a.imm, a.off = f, uint64(uint32(b.imm))|uint64(uint32(a.off))<<32, b.off
		case a.op == opAnd32K && a.dst == b.dst:
			f := opAnd32KJeq
			if !eq {
				f = opAnd32KJne
			}
			a.op, a.imm, a.off = f, uint64(uint32(b.imm))|uint64(uint32(a.imm))<<32, b.off
		}
	}
}

// writesReg reports whether ins may write r. A call of a subprogram may:
// its code is checked on its own, and the caller's r6 to r9 come back.
func writesReg(ins *asm.Instruction, r asm.Register) bool {
	opc := ins.OpCode
	switch opc.Class() {
	case asm.ALUClass, asm.ALU64Class, asm.LdXClass:
		return ins.Dst == r
	case asm.LdClass:
		return ins.IsLoadImm64() && ins.Dst == r || r == asm.R0 || r >= asm.R1 && r <= asm.R5
	case asm.StXClass:
		if opc.Mode() != asm.AtomicMode {
			return false
		}
		switch a := asm.AtomicOp(ins.Constant); {
		case a == asm.LoadAcq:
			return ins.Dst == r
		case a == asm.CmpXchg:
			return r == asm.R0
		case a == asm.StoreRel:
			return false
		case a&1 != 0: // fetch
			return ins.Src == r
		}
	case asm.JumpClass:
		if opc.JumpOp() == asm.CallOp {
			return r <= asm.R5
		}
	}
	return false
}
