package pcapfilter

import (
	"fmt"

	"golang.org/x/net/bpf"

	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/sockfilter/skb"
)

// classicALU maps the ALU operations of classic BPF to eBPF's, which
// encode them alike.
var classicALU = map[uint16]asm.ALUOp{
	0x00: asm.Add, 0x10: asm.Sub, 0x20: asm.Mul, 0x30: asm.Div, 0x40: asm.Or,
	0x50: asm.And, 0x60: asm.LSh, 0x70: asm.RSh, 0x90: asm.Mod, 0xa0: asm.Xor,
}

// classicJumps maps the conditions of classic BPF's jumps (JEQ, JGT, JGE,
// JSET) to eBPF's jump taken when the condition holds, and inverted to the
// one taken when it does not (JSET has none).
var classicJumps = map[uint16]struct{ op, inv asm.JumpOp }{
	0x10: {asm.JEq, asm.JNE}, 0x20: {asm.JGT, asm.JLE}, 0x30: {asm.JGE, asm.JLT}, 0x40: {asm.JSet, 0},
}

// convert appends the eBPF code of ins, the instruction at pc, which
// checkClassic has accepted.
func (c *classicConv) convert(pc int, ins bpf.RawInstruction) error {
	code, k := ins.Op, ins.K
	dst := regA
	if code&0x07 == clsLDX {
		dst = regX
	}
	switch {
	case code == clsLD|modeIMM || code == clsLDX|modeIMM:
		c.emit(pc, asm.Mov.Imm32(dst, int32(k)))
	case code == clsLD|modeLEN|szW || code == clsLDX|modeLEN|szW:
		if c.linkRel {
			c.emit(pc, asm.Mov.Reg32(dst, regLen))
		} else {
			c.emit(pc, skb.Len.Load(dst, asm.R6))
		}
	case code == clsLD|modeMEM || code == clsLDX|modeMEM:
		c.emit(pc, asm.LoadMem(dst, asm.RFP, scratchOff(k), asm.Word))
	case code == clsST:
		c.emit(pc, asm.StoreMem(asm.RFP, scratchOff(k), regA, asm.Word))
	case code == clsSTX:
		c.emit(pc, asm.StoreMem(asm.RFP, scratchOff(k), regX, asm.Word))
	case code&0xe7 == clsLD|modeABS && k >= skfADOff:
		return c.ancillary(pc, k-skfADOff)
	case code&0xe7 == clsLD|modeABS:
		c.loadAbs(pc, int32(k), loadSize(code))
	case code&0xe7 == clsLD|modeIND:
		c.loadInd(pc, int32(k), loadSize(code))
	case code == clsLDX|modeMSH|szB:
		// X = 4 * (the byte at k & 0xf), keeping A, which the load
		// overwrites, in r8.
		c.emit(pc, asm.Mov.Reg(regTmp, regA))
		c.loadAbs(pc, int32(k), asm.Byte)
		c.emit(pc, asm.And.Imm32(regA, 0xf),
			asm.LSh.Imm32(regA, 2),
			asm.Mov.Reg(regX, regA),
			asm.Mov.Reg(regA, regTmp))
	case code == clsALU|opNEG:
		c.emit(pc, asm.Negate32(regA))
	case code&0x07 == clsALU:
		op := classicALU[code&0xf0]
		if code&srcX == 0 {
			c.emit(pc, op.Imm32(regA, int32(k)))
			break
		}
		if op == asm.Div || op == asm.Mod {
			// Classic BPF ends the program returning 0; eBPF goes
			// on with 0 or A.
			c.ret0 = true
			c.emit(pc, asm.JEq.Imm32(regX, 0, "ret0"))
		}
		c.emit(pc, op.Reg32(regA, regX))
	case code == clsJMP|opJA:
		if k != 0 {
			c.emit(pc, asm.Goto(classicLabel(pc+1+int(k))))
		}
	case code&0x07 == clsJMP:
		c.jump(pc, ins)
	case code == clsRET:
		c.emit(pc, asm.Mov.Imm32(asm.R0, int32(k)), asm.Exit())
	case code == clsRET|retA:
		c.emit(pc, asm.Mov.Reg32(asm.R0, regA), asm.Exit())
	case code == clsMISC|opTAX:
		c.emit(pc, asm.Mov.Reg32(regX, regA))
	case code == clsMISC|opTXA:
		c.emit(pc, asm.Mov.Reg32(regA, regX))
	default:
		return fmt.Errorf("code 0x%02x is not an instruction of classic BPF", code)
	}
	return nil
}

// loadSize returns the size of a packet load's code.
func loadSize(code uint16) asm.Size {
	switch code & 0x18 {
	case szH:
		return asm.Half
	case szB:
		return asm.Byte
	}
	return asm.Word
}

// jump appends a conditional jump: to the true target, and to the false
// one unless it falls through (or, inverted, the other way round).
func (c *classicConv) jump(pc int, ins bpf.RawInstruction) {
	ops := classicJumps[ins.Op&0xf0]
	jt, jf := classicLabel(pc+1+int(ins.Jt)), classicLabel(pc+1+int(ins.Jf))
	j := func(op asm.JumpOp, to string) asm.Instruction {
		if ins.Op&srcX != 0 {
			return op.Reg32(regA, regX, to)
		}
		return op.Imm32(regA, int32(ins.K), to)
	}
	switch {
	case ins.Jt == ins.Jf:
		if ins.Jt != 0 {
			c.emit(pc, asm.Goto(jt))
		}
	case ins.Jf == 0:
		c.emit(pc, j(ops.op, jt))
	case ins.Jt == 0 && ops.inv != 0:
		c.emit(pc, j(ops.inv, jf))
	default:
		c.emit(pc, j(ops.op, jt), asm.Goto(jf))
	}
}

// loadAbs emits A = the size bytes at off.
func (c *classicConv) loadAbs(pc int, off int32, size asm.Size) {
	if c.linkRel && off >= 0 {
		if off >= maxFrameOffset {
			off = pastEnd
		} else {
			off += skb.LLOff
		}
	}
	c.emit(pc, asm.LoadAbs(off, size))
}

// loadInd emits A = the size bytes at X + off. The kernel loads at (X +
// off) mod 2^32 read as a signed offset: from skb->data when it is not
// negative, from a header (SKF_NET_OFF, SKF_LL_OFF) when it is. An eBPF
// LD_IND computes the same offset (bpf_gen_ld_abs adds the constant to the
// register and the helper takes the int), so FromClassic's is the classic
// instruction as it is; FromClassicLinkRelative's adds SKF_LL_OFF to an
// offset that is not negative, and rejects one past 1 MiB, where no frame
// reaches.
func (c *classicConv) loadInd(pc int, off int32, size asm.Size) {
	if !c.linkRel {
		c.emit(pc, asm.LoadInd(regX, off, size))
		return
	}
	c.ret0 = true
	neg := classicLabel(pc) + ".neg"
	c.emit(pc,
		asm.Mov.Reg32(asm.R1, regX),
		asm.Add.Imm32(asm.R1, off),
		asm.JSLT.Imm32(asm.R1, 0, neg),
		asm.JGT.Imm32(asm.R1, maxFrameOffset-1, "ret0"),
		asm.LoadInd(asm.R1, skb.LLOff, size),
		asm.Goto(classicLabel(pc+1)),
		asm.LoadInd(asm.R1, 0, size).WithLabel(neg))
}

// ancillary emits the ancillary load SKF_AD_OFF + ad (of any size, as the
// kernel reads it).
func (c *classicConv) ancillary(pc int, ad uint32) error {
	field := func(f skb.Field) { c.emit(pc, f.Load(regA, asm.R6)) }
	switch ancillaryNames[ad] {
	case "PROTOCOL":
		field(skb.Protocol)
		c.emit(pc, asm.ToBE(regA, 16))
	case "PKTTYPE":
		field(skb.PktType)
	case "IFINDEX":
		field(skb.Ifindex)
	case "MARK":
		field(skb.Mark)
	case "QUEUE":
		field(skb.QueueMapping)
	case "RXHASH":
		field(skb.Hash)
	case "CPU":
		c.emit(pc, asm.Call(asm.FnGetSmpProcessorID))
	case "ALU_XOR_X":
		c.emit(pc, asm.Xor.Reg32(regA, regX))
	case "VLAN_TAG":
		field(skb.VLANTCI)
	case "VLAN_TAG_PRESENT":
		field(skb.VLANPresent)
	case "RANDOM":
		c.emit(pc, asm.Call(asm.FnGetPrandomU32))
	case "VLAN_TPID":
		field(skb.VLANProto)
		c.emit(pc, asm.ToBE(regA, 16))
	default: // HATYPE, PAY_OFFSET, NLATTR, NLATTR_NEST
		return fmt.Errorf("ancillary load SKF_AD_%s: %w", ancillaryNames[ad], errNoEBPF)
	}
	return nil
}
