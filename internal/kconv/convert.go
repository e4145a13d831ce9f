package kconv

import (
	"fmt"
	"math"

	"golang.org/x/net/bpf"
)

// converter is the state of a conversion: the two passes of
// bpf_convert_filter, the first with addrs nil (sizes only), the second
// with addrs[i] the index of classic instruction i's first eBPF
// instruction.
type converter struct {
	prog     []bpf.RawInstruction
	l        *Layout
	loadable bool // Loadable's form, see loadable.go
	addrs    []int
	seen     bool // seen_ld_abs
	stack    int
}

func (c *converter) run() (*Program, error) {
	// The sizing pass: each instruction's length does not depend on the
	// jumps' offsets, and it finds whether the program reads the packet,
	// which the prologue depends on. The kernel's passes differ only in
	// being repeated until the length stops changing.
	sizes := make([]int, len(c.prog))
	for i := range c.prog {
		seq, err := c.insn(i)
		if err != nil {
			return nil, err
		}
		sizes[i] = len(seq)
	}
	c.addrs = make([]int, len(c.prog))
	pos := len(c.prologue())
	for i, s := range sizes {
		c.addrs[i] = pos
		pos += s
	}
	out := c.prologue()
	for i := range c.prog {
		seq, err := c.insn(i)
		if err != nil {
			return nil, err
		}
		out = append(out, seq...)
	}
	return &Program{Insns: out, SeenLdAbs: c.seen, StackDepth: c.stack}, nil
}

// prologue returns the prologue: A and X zeroed, the context in r6, and
// if the program reads the packet, its data and linear length in r8, r9.
func (c *converter) prologue() []Insn {
	p := []Insn{alu32Reg(opXOR, regA, regA), alu32Reg(opXOR, regX, regX), mov64Reg(regCtx, regArg1)}
	if c.loadable {
		// The verifier refuses a read of the unset r0 and r7.
		p[0], p[1] = mov32Imm(regA, 0), mov32Imm(regX, 0)
	}
	if !c.seen {
		return p
	}
	if c.loadable {
		return append(p, c.loadablePrologue()...)
	}
	ptr := uint8(sizeDW)
	if c.l.PointerSize == 4 {
		ptr = szW
	}
	return append(p,
		ldx(ptr, regD, regCtx, c.l.Data),
		ldx(szW, regH, regCtx, c.l.Len),
		ldx(szW, regTmp, regCtx, c.l.DataLen),
		alu32Reg(opSUB, regH, regTmp))
}

// insn returns the eBPF code of classic instruction i.
func (c *converter) insn(i int) ([]Insn, error) {
	fp := c.prog[i]
	var out []Insn
	switch op := fp.Op; {
	case op&0x07 == clsALU:
		if op == clsALU|opDIV|srcX || op == clsALU|opMOD|srcX {
			out = append(out, mov32Reg(regX, regX), jmpImm(jmpJNE, regX, 0, 2), alu32Reg(opXOR, regA, regA), exit())
		}
		ins := Insn{Code: uint8(op), Dst: regA, Src: regX, Imm: int32(fp.K)}
		if c.loadable && op&srcX == 0 {
			// The kernel leaves X in the source field of its own
			// program; the verifier refuses it there.
			ins.Src = 0
			if op == clsALU|opNEG {
				ins.Imm = 0
			}
		}
		out = append(out, ins)
	case op == clsLD|modeABS|szW || op == clsLD|modeABS|szH || op == clsLD|modeABS|szB:
		if seq, ok, err := c.extension(fp); ok || err != nil {
			return seq, err
		}
		c.seen = true
		return c.ldAbs(fp), nil
	case op == clsLD|modeIND|szW || op == clsLD|modeIND|szH || op == clsLD|modeIND|szB:
		c.seen = true
		return c.ldAbs(fp), nil
	case op&0x07 == clsJMP:
		return c.jump(i, fp)
	case op == clsLDX|modeMSH|szB:
		c.seen = true
		out = append(out, mov64Reg(regX, regA))
		out = append(out, c.ldAbs(bpf.RawInstruction{Op: clsLD | modeABS | szB, K: fp.K})...)
		out = append(out, alu32Imm(opAND, regA, 0xf), alu32Imm(opLSH, regA, 2),
			mov64Reg(regTmp, regX), mov64Reg(regX, regA), mov64Reg(regA, regTmp))
	case op == clsRET|retK:
		out = append(out, mov32Imm(regA, int32(fp.K)), exit())
	case op == clsRET|retA:
		out = append(out, exit())
	case op == clsST || op == clsSTX:
		off := int(fp.K)*4 + 4
		src := uint8(regA)
		if op == clsSTX {
			src = regX
		}
		out = append(out, stx(szW, regFP, src, int16(-off)))
		c.stack = max(c.stack, off)
	case op == clsLD|modeMEM || op == clsLDX|modeMEM:
		off := int(fp.K)*4 + 4
		out = append(out, ldx(szW, dstOf(op), regFP, int16(-off)))
	case op == clsLD|modeIMM || op == clsLDX|modeIMM:
		out = append(out, mov32Imm(dstOf(op), int32(fp.K)))
	case op == clsMISC|miscTAX:
		out = append(out, mov64Reg(regX, regA))
	case op == clsMISC|miscTXA:
		out = append(out, mov64Reg(regA, regX))
	case op == clsLD|modeLEN|szW || op == clsLDX|modeLEN|szW:
		if c.loadable {
			out = append(out, ldx(szW, dstOf(op), regCtx, ctxLen))
		} else {
			out = append(out, ldx(szW, dstOf(op), regCtx, c.l.Len))
		}
	default:
		return nil, fmt.Errorf("kconv: %w: instruction %d: opcode %#04x", ErrInvalid, i, op)
	}
	return out, nil
}

// dstOf returns A for a classic LD, X for an LDX.
func dstOf(op uint16) uint8 {
	if op&0x07 == clsLDX {
		return regX
	}
	return regA
}

// jump returns the code of the jump fp at i.
func (c *converter) jump(i int, fp bpf.RawInstruction) ([]Insn, error) {
	var out []Insn
	// emit appends ins as a jump to classic instruction target.
	emit := func(ins Insn, target int) error {
		if target < 0 || target >= len(c.prog) {
			return fmt.Errorf("kconv: %w: instruction %d: jump out of the program", ErrInvalid, i)
		}
		off := 0
		if c.addrs != nil {
			off = c.addrs[target] - c.addrs[i] - 1 - len(out)
		}
		if off < math.MinInt16 || off > math.MaxInt16 {
			return fmt.Errorf("kconv: %w: instruction %d: jump of %d instructions once converted", ErrInvalid, i, off)
		}
		ins.Off = int16(off)
		out = append(out, ins)
		return nil
	}
	if fp.Op == clsJMP|opJA {
		return out, emit(Insn{Code: uint8(fp.Op)}, i+int(int32(fp.K))+1)
	}
	ins := Insn{Dst: regA}
	src := uint8(fp.Op & srcX)
	if src == srcK && int32(fp.K) < 0 {
		// eBPF sign-extends the immediate: compare with it in w2.
		out = append(out, mov32Imm(regTmp, int32(fp.K)))
		ins.Src, src = regTmp, srcX
	} else {
		ins.Imm = int32(fp.K)
		if src == srcX {
			ins.Src = regX
		}
	}
	op := uint8(fp.Op & 0xf0)
	if fp.Jf == 0 {
		ins.Code = ebpfJMP | op | src
		return out, emit(ins, i+int(fp.Jt)+1)
	}
	if fp.Jt == 0 {
		inv := map[uint8]uint8{opJEQ: jmpJNE, opJGT: jmpJLE, opJGE: jmpJLT}
		if o, ok := inv[op]; ok {
			ins.Code = ebpfJMP | o | src
			return out, emit(ins, i+int(fp.Jf)+1)
		}
	}
	ins.Code = ebpfJMP | op | src
	if err := emit(ins, i+int(fp.Jt)+1); err != nil {
		return nil, err
	}
	return out, emit(Insn{Code: ebpfJMP | opJA}, i+int(fp.Jf)+1)
}

// loadSize returns the eBPF size bits and the byte count of a classic load.
func loadSize(op uint16) (uint8, int) {
	switch op & 0x18 {
	case szH:
		return szH, 2
	case szB:
		return szB, 1
	}
	return szW, 4
}

// ldAbs returns the code of a packet load (convert_bpf_ld_abs).
func (c *converter) ldAbs(fp bpf.RawInstruction) []Insn {
	if c.loadable {
		return c.loadableLdAbs(fp)
	}
	sz, size := loadSize(fp.Op)
	endian := sz != szB
	indirect := fp.Op&0xe0 == modeIND
	offset := int32(fp.K)
	var out []Insn
	aligned := c.l.UnalignedOK || (offset+int32(c.l.NetIPAlign) >= 0 && offset+int32(c.l.NetIPAlign)%int32(size) == 0)
	if !indirect && offset >= 0 && aligned {
		ldxOK := offset <= math.MaxInt16
		out = append(out, mov64Reg(regTmp, regH))
		if offset != 0 {
			out = append(out, alu64Imm(opSUB, regTmp, offset))
		}
		skip := 2
		if endian {
			skip++
		}
		if !ldxOK {
			skip += 2
		}
		out = append(out, jmpImm(jmpJSLT, regTmp, int32(size), int16(skip)))
		if ldxOK {
			out = append(out, ldx(sz, regA, regD, int16(offset)))
		} else {
			out = append(out, mov64Reg(regTmp, regD), alu64Imm(opADD, regTmp, offset), ldx(sz, regA, regTmp, 0))
		}
		if endian {
			out = append(out, fromBE(regA, int32(size*8)))
		}
		out = append(out, ja(8))
	}
	out = append(out, mov64Reg(regArg1, regCtx), mov64Reg(regTmp, regD), mov64Reg(regArg3, regH))
	if !indirect {
		out = append(out, mov64Imm(regArg4, offset))
	} else {
		out = append(out, mov64Reg(regArg4, regX))
		if fp.K != 0 {
			out = append(out, alu64Imm(opADD, regArg4, offset))
		}
	}
	helper := map[uint8]Func{szB: LoadHelper8, szH: LoadHelper16, szW: LoadHelper32}[sz]
	return append(out, call(helper), jmpImm(jmpJSGE, regA, 0, 2), alu32Reg(opXOR, regA, regA), exit())
}

// extension returns the code of an ancillary load
// (convert_bpf_extensions), and false if fp is a packet load.
func (c *converter) extension(fp bpf.RawInstruction) ([]Insn, bool, error) {
	if fp.K < skfADOff {
		return nil, false, nil
	}
	n := fp.K - skfADOff
	if c.loadable {
		return c.loadableExtension(n)
	}
	l := c.l
	ptr := uint8(sizeDW)
	if l.PointerSize == 4 {
		ptr = szW
	}
	switch n {
	case adProtocol:
		return []Insn{ldx(szH, regA, regCtx, l.Protocol), fromBE(regA, 16)}, true, nil
	case adPktType:
		if l.BigEndianBitfield {
			return []Insn{ldx(szB, regA, regCtx, l.PktTypeOffset), alu32Imm(opAND, regA, 7<<5), alu32Imm(opRSH, regA, 5)}, true, nil
		}
		return []Insn{ldx(szB, regA, regCtx, l.PktTypeOffset), alu32Imm(opAND, regA, 7)}, true, nil
	case adIfindex, adHatype:
		out := []Insn{ldx(ptr, regTmp, regCtx, l.Dev), jmpImm(jmpJNE, regTmp, 0, 1), exit()}
		if n == adIfindex {
			return append(out, ldx(szW, regA, regTmp, l.DevIfindex)), true, nil
		}
		return append(out, ldx(szH, regA, regTmp, l.DevType)), true, nil
	case adMark:
		return []Insn{ldx(szW, regA, regCtx, l.Mark)}, true, nil
	case adRxhash:
		return []Insn{ldx(szW, regA, regCtx, l.Hash)}, true, nil
	case adQueue:
		return []Insn{ldx(szH, regA, regCtx, l.QueueMapping)}, true, nil
	case adVLANTag:
		return []Insn{ldx(szH, regA, regCtx, l.VLANTCI)}, true, nil
	case adVLANPresent:
		return []Insn{ldx(szW, regA, regCtx, l.VLANAll), jmpImm(opJEQ, regA, 0, 1), mov32Imm(regA, 1)}, true, nil
	case adVLANTPID:
		return []Insn{ldx(szH, regA, regCtx, l.VLANProto), fromBE(regA, 16)}, true, nil
	case adPayOffset, adNlattr, adNlattrNest, adCPU, adRandom:
		f := map[uint32]Func{adPayOffset: GetPayOffset, adNlattr: GetNlattr, adNlattrNest: GetNlattrNest, adCPU: GetRawCPUID, adRandom: UserRndU32}[n]
		return []Insn{mov64Reg(regArg1, regCtx), mov64Reg(regTmp, regA), mov64Reg(regArg3, regX), call(f)}, true, nil
	case adALUXorX:
		return []Insn{alu32Reg(opXOR, regA, regX)}, true, nil
	}
	return nil, false, nil
}
