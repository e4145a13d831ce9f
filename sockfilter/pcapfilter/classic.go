package pcapfilter

import (
	"fmt"
	"strconv"

	"golang.org/x/net/bpf"

	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/sockfilter/skb"
)

// FromClassic converts a classic BPF program (golang.org/x/net/bpf; for
// instance the output of `tcpdump -dd`, decoded with
// bpf.RawInstruction.Disassemble) into an eBPF socket filter with the
// kernel's classic-BPF semantics (bpf_convert_filter in
// net/core/filter.c): the 32-bit accumulator A and index X start at 0, the
// 16 scratch words M[0..15] live on the stack, a division or modulo by an
// X of 0 ends the program returning 0, a shift by X uses X's low 5 bits,
// and a packet load past the end of the frame ends it returning 0.
//
// Packet offsets are kept as they are, relative to skb->data, as the
// kernel's own conversion of a filter attached with SO_ATTACH_FILTER: on a
// packet socket offset 0 is the link-layer header, but under Program.Test
// (BPF_PROG_TEST_RUN) it is the network header. To load a program written
// for link-layer frames and get the same verdicts under Program.Test as on
// a socket, use FromClassicLinkRelative.
//
// The ancillary loads (LoadExtension) are mapped to __sk_buff fields and
// helpers: ExtLen (skb->len), ExtProto, ExtType, ExtMark, ExtQueue,
// ExtInterfaceIndex, ExtRXHash, ExtVLANTag, ExtVLANTagPresent,
// ExtVLANProto, ExtCPUID (bpf_get_smp_processor_id) and ExtRand
// (bpf_get_prandom_u32). ExtPayloadOffset, ExtLinkLayerType and the
// netlink extensions have no eBPF equivalent and are an error.
//
// Scratch words are zeroed at the start, so a program that reads one
// before writing it gets 0 (as golang.org/x/net/bpf's VM does), where the
// kernel's classic checker would refuse it.
func FromClassic(insns []bpf.Instruction) (asm.Instructions, error) {
	return fromClassic(insns, false)
}

// FromClassicLinkRelative is FromClassic with the packet offsets of
// absolute and indirect loads taken relative to the link-layer header
// (SKF_LL_OFF + k) rather than skb->data, and ExtLen the frame length from
// the link-layer header, as Compile's programs do: the program gives the
// same verdict on a packet socket and under Program.Test. Offsets the
// program gives relative to a header (SKF_NET_OFF, SKF_LL_OFF) are kept.
func FromClassicLinkRelative(insns []bpf.Instruction) (asm.Instructions, error) {
	return fromClassic(insns, true)
}

// Registers of converted classic programs: A in r0, where the packet loads
// leave their result, X in r7, the saved A of LoadMemShift in r8, the
// frame length in r8 only while it is computed.
const (
	regA   = asm.R0
	regX   = asm.R7
	regTmp = asm.R8
)

// scratchOff returns the stack offset of M[n].
func scratchOff(n int) int16 { return int16(-128 + 4*n) }

// classicMaxInsns is BPF_MAXINSNS, the kernel's limit for classic programs.
const classicMaxInsns = 4096

type classicConv struct {
	out     asm.Instructions
	linkRel bool
	ret0    bool // something jumps to "ret0"
}

func fromClassic(insns []bpf.Instruction, linkRel bool) (asm.Instructions, error) {
	if len(insns) == 0 {
		return nil, fmt.Errorf("convert classic program: empty program")
	}
	if len(insns) > classicMaxInsns {
		return nil, fmt.Errorf("convert classic program: %d instructions, more than %d", len(insns), classicMaxInsns)
	}
	c := &classicConv{linkRel: linkRel}
	var used [16]bool
	insns = append([]bpf.Instruction(nil), insns...)
	for i, ins := range insns {
		if raw, ok := ins.(bpf.RawInstruction); ok {
			ins = raw.Disassemble()
			insns[i] = ins
		}
		switch ins := ins.(type) {
		case bpf.LoadScratch:
			if ins.N < 0 || ins.N > 15 {
				return nil, fmt.Errorf("convert classic program: instruction %d: scratch index %d out of range 0-15", i, ins.N)
			}
			used[ins.N] = true
		case bpf.StoreScratch:
			if ins.N < 0 || ins.N > 15 {
				return nil, fmt.Errorf("convert classic program: instruction %d: scratch index %d out of range 0-15", i, ins.N)
			}
		}
	}
	if !isRet(insns[len(insns)-1]) {
		return nil, fmt.Errorf("convert classic program: the last instruction must return")
	}
	c.out = append(c.out,
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.Mov.Imm32(regA, 0),
		asm.Mov.Imm32(regX, 0))
	for n, u := range used {
		if u {
			c.out = append(c.out, asm.StoreImm(asm.RFP, scratchOff(n), 0, asm.Word))
		}
	}
	targets := make(map[int]bool)
	for i, ins := range insns {
		start := len(c.out)
		if err := c.convert(i, ins, len(insns), targets); err != nil {
			return nil, fmt.Errorf("convert classic program: instruction %d (%v): %w", i, ins, err)
		}
		if len(c.out) == start {
			c.emit(asm.Goto("").WithOffset(0)) // a jump may land here
		}
		c.out[start] = c.out[start].WithLabel(classicLabel(i))
	}
	if c.ret0 {
		c.out = append(c.out, asm.Mov.Imm(asm.R0, 0).WithLabel("ret0"), asm.Exit())
	}
	for i := range c.out {
		if l := c.out[i].Label; l != "" && l != "ret0" {
			n, _ := strconv.Atoi(l[1:])
			if !targets[n] {
				c.out[i].Label = ""
			}
		}
	}
	return c.out, nil
}

func classicLabel(i int) string { return "c" + strconv.Itoa(i) }

func isRet(ins bpf.Instruction) bool {
	switch ins.(type) {
	case bpf.RetA, bpf.RetConstant:
		return true
	}
	return false
}

var classicALU = map[bpf.ALUOp]asm.ALUOp{
	bpf.ALUOpAdd: asm.Add, bpf.ALUOpSub: asm.Sub, bpf.ALUOpMul: asm.Mul,
	bpf.ALUOpDiv: asm.Div, bpf.ALUOpOr: asm.Or, bpf.ALUOpAnd: asm.And,
	bpf.ALUOpShiftLeft: asm.LSh, bpf.ALUOpShiftRight: asm.RSh, bpf.ALUOpMod: asm.Mod,
	bpf.ALUOpXor: asm.Xor,
}

// classicJumps maps a condition to the jump taken when it holds, and
// whether that jump is really JSet taken when it does not.
var classicJumps = map[bpf.JumpTest]asm.JumpOp{
	bpf.JumpEqual: asm.JEq, bpf.JumpNotEqual: asm.JNE, bpf.JumpGreaterThan: asm.JGT,
	bpf.JumpLessThan: asm.JLT, bpf.JumpGreaterOrEqual: asm.JGE, bpf.JumpLessOrEqual: asm.JLE,
	bpf.JumpBitsSet: asm.JSet,
}

func (c *classicConv) emit(ins ...asm.Instruction) { c.out = append(c.out, ins...) }

func (c *classicConv) convert(i int, ins bpf.Instruction, n int, targets map[int]bool) error {
	target := func(skip uint32) (string, error) {
		t := i + 1 + int(skip)
		if int64(i)+1+int64(skip) >= int64(n) {
			return "", fmt.Errorf("jump past the end of the program")
		}
		targets[t] = true
		return classicLabel(t), nil
	}
	switch ins := ins.(type) {
	case bpf.LoadConstant:
		c.emit(asm.Mov.Imm32(reg(ins.Dst), int32(ins.Val)))
	case bpf.LoadScratch:
		c.emit(asm.LoadMem(reg(ins.Dst), asm.RFP, scratchOff(ins.N), asm.Word))
	case bpf.StoreScratch:
		c.emit(asm.StoreMem(asm.RFP, scratchOff(ins.N), reg(ins.Src), asm.Word))
	case bpf.LoadAbsolute:
		return c.loadAbs(int32(ins.Off), ins.Size)
	case bpf.LoadIndirect:
		return c.loadInd(int32(ins.Off), ins.Size)
	case bpf.LoadMemShift:
		c.emit(asm.Mov.Reg(regTmp, regA))
		if err := c.loadAbs(int32(ins.Off), 1); err != nil {
			return err
		}
		c.emit(asm.And.Imm32(regA, 0xf),
			asm.LSh.Imm32(regA, 2),
			asm.Mov.Reg(regX, regA),
			asm.Mov.Reg(regA, regTmp))
	case bpf.LoadExtension:
		return c.extension(ins.Num)
	case bpf.ALUOpConstant:
		op, ok := classicALU[ins.Op]
		if !ok {
			return fmt.Errorf("unknown ALU operation %d", ins.Op)
		}
		switch {
		case (ins.Op == bpf.ALUOpDiv || ins.Op == bpf.ALUOpMod) && ins.Val == 0:
			return fmt.Errorf("division by zero")
		case (ins.Op == bpf.ALUOpShiftLeft || ins.Op == bpf.ALUOpShiftRight) && ins.Val >= 32:
			return fmt.Errorf("shift by %d, more than 31", ins.Val)
		}
		c.emit(op.Imm32(regA, int32(ins.Val)))
	case bpf.ALUOpX:
		op, ok := classicALU[ins.Op]
		if !ok {
			return fmt.Errorf("unknown ALU operation %d", ins.Op)
		}
		if ins.Op == bpf.ALUOpDiv || ins.Op == bpf.ALUOpMod {
			c.ret0 = true
			c.emit(asm.JEq.Imm32(regX, 0, "ret0"))
		}
		c.emit(op.Reg32(regA, regX))
	case bpf.NegateA:
		c.emit(asm.Negate32(regA))
	case bpf.Jump:
		t, err := target(ins.Skip)
		if err != nil {
			return err
		}
		c.emit(asm.Goto(t))
	case bpf.JumpIf:
		return c.jump(ins.Cond, false, ins.Val, ins.SkipTrue, ins.SkipFalse, target)
	case bpf.JumpIfX:
		return c.jump(ins.Cond, true, 0, ins.SkipTrue, ins.SkipFalse, target)
	case bpf.RetA:
		c.emit(asm.Mov.Reg32(asm.R0, regA), asm.Exit())
	case bpf.RetConstant:
		c.emit(asm.Mov.Imm32(asm.R0, int32(ins.Val)), asm.Exit())
	case bpf.TAX:
		c.emit(asm.Mov.Reg32(regX, regA))
	case bpf.TXA:
		c.emit(asm.Mov.Reg32(regA, regX))
	default:
		return fmt.Errorf("unsupported instruction")
	}
	return nil
}

func reg(r bpf.Register) asm.Register {
	if r == bpf.RegX {
		return regX
	}
	return regA
}

func (c *classicConv) jump(cond bpf.JumpTest, x bool, k uint32, skipTrue, skipFalse uint8,
	target func(uint32) (string, error)) error {
	jt, err := target(uint32(skipTrue))
	if err != nil {
		return err
	}
	jf, err := target(uint32(skipFalse))
	if err != nil {
		return err
	}
	if cond == bpf.JumpBitsNotSet {
		cond, jt, jf, skipTrue, skipFalse = bpf.JumpBitsSet, jf, jt, skipFalse, skipTrue
	}
	op, ok := classicJumps[cond]
	if !ok {
		return fmt.Errorf("unknown jump condition %d", cond)
	}
	j := func(op asm.JumpOp, to string) asm.Instruction {
		if x {
			return op.Reg32(regA, regX, to)
		}
		return op.Imm32(regA, int32(k), to)
	}
	switch {
	case jt == jf:
		if skipTrue != 0 {
			c.emit(asm.Goto(jt))
		}
	case skipFalse == 0:
		c.emit(j(op, jt))
	default:
		c.emit(j(op, jt), asm.Goto(jf))
	}
	return nil
}

// loadAbs emits A = the size bytes at off.
func (c *classicConv) loadAbs(off int32, size int) error {
	sz, err := classicSize(size)
	if err != nil {
		return err
	}
	if c.linkRel && off >= 0 {
		if off >= maxFrameOffset {
			off = pastEnd
		} else {
			off += skb.LLOff
		}
	}
	c.emit(asm.LoadAbs(off, sz))
	return nil
}

// loadInd emits A = the size bytes at X + off.
func (c *classicConv) loadInd(off int32, size int) error {
	sz, err := classicSize(size)
	if err != nil {
		return err
	}
	if c.linkRel && off >= 0 {
		if off >= maxFrameOffset {
			c.emit(asm.LoadAbs(pastEnd, sz))
			return nil
		}
		// X + off past 1 MiB is past the end of any frame; keep the
		// sum within the link-layer window of SKF_LL_OFF.
		c.ret0 = true
		c.emit(asm.JGT.Imm32(regX, maxFrameOffset-1-off, "ret0"))
		off += skb.LLOff
	}
	c.emit(asm.LoadInd(regX, off, sz))
	return nil
}

func classicSize(size int) (asm.Size, error) {
	switch size {
	case 1:
		return asm.Byte, nil
	case 2:
		return asm.Half, nil
	case 4:
		return asm.Word, nil
	}
	return 0, fmt.Errorf("load size %d is not 1, 2 or 4", size)
}

// extension emits A = the ancillary value ext (SKF_AD_*).
func (c *classicConv) extension(ext bpf.Extension) error {
	field := func(f skb.Field) { c.emit(f.Load(regA, asm.R6)) }
	switch ext {
	case bpf.ExtLen:
		if !c.linkRel {
			field(skb.Len)
			break
		}
		c.emit(frameLenInsns(regTmp, asm.R6, false)...)
		c.emit(asm.Mov.Reg(regA, regTmp))
	case bpf.ExtProto:
		field(skb.Protocol)
		c.emit(asm.ToBE(regA, 16))
	case bpf.ExtType:
		field(skb.PktType)
	case bpf.ExtMark:
		field(skb.Mark)
	case bpf.ExtQueue:
		field(skb.QueueMapping)
	case bpf.ExtInterfaceIndex:
		field(skb.Ifindex)
	case bpf.ExtRXHash:
		field(skb.Hash)
	case bpf.ExtVLANTag:
		field(skb.VLANTCI)
	case bpf.ExtVLANTagPresent:
		field(skb.VLANPresent)
	case bpf.ExtVLANProto:
		field(skb.VLANProto)
		c.emit(asm.ToBE(regA, 16))
	case bpf.ExtCPUID:
		c.emit(asm.Call(asm.FnGetSmpProcessorID))
	case bpf.ExtRand:
		c.emit(asm.Call(asm.FnGetPrandomU32))
	default:
		return fmt.Errorf("ancillary load %d (SKF_AD_OFF + %d) has no eBPF equivalent", ext, ext)
	}
	return nil
}
