package vm_test

import (
	"math/rand/v2"
	"strconv"

	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/sockfilter/skb"
)

// progGen generates random socket filters for the differential test with
// the kernel and for the fuzz test's seeds: arithmetic of both widths on
// scalars, byte swaps and sign extensions, forward jumps, stack loads,
// stores and atomics, and, in packet mode, legacy packet loads, context
// reads and writes and bpf_skb_load_bytes(_relative); in call mode, a
// BPF-to-BPF call. It keeps to programs the verifier can accept: every
// register initialised before it is read, the stack written before it is
// read, shifts by immediates in range, no division by an immediate 0, no
// pointer arithmetic, no loops. The value returned folds every scalar and
// the stack into r0.
type progGen struct {
	r      *rand.Rand
	insns  asm.Instructions
	regs   []asm.Register // the scalar registers
	packet bool           // legacy loads, context and helpers: r1 to r5 are scratch
	filter bool           // packet mode without the stack, as compiled filters are
	jumps  []genJump
	labels int
}

// genJump is a forward jump waiting for its target.
type genJump struct {
	from, to int // instruction indexes
}

// stack slots the generated programs use: r10-8 to r10-stackSlots*8.
const stackSlots = 8

func newProgGen(seed uint64) *progGen {
	return &progGen{r: rand.New(rand.NewPCG(seed, seed*0x9e3779b97f4a7c15+1))}
}

func (g *progGen) pick(n int) int { return g.r.IntN(n) }

func (g *progGen) emit(ins ...asm.Instruction) { g.insns = append(g.insns, ins...) }

func (g *progGen) reg() asm.Register { return g.regs[g.pick(len(g.regs))] }

// imm returns an immediate, often at a boundary.
func (g *progGen) imm() int32 {
	switch g.pick(6) {
	case 0:
		return []int32{0, 1, -1, 0x7fffffff, -0x80000000, 0xff, 0xffff, 8, 16, 32, 63, 64}[g.pick(12)]
	case 1:
		return int32(g.r.Uint32())
	}
	return int32(g.pick(200)) - 100
}

// generate returns a program in one of four modes: plain arithmetic,
// packet access, arithmetic with a call of a subprogram, or a filter as
// compilers write them (packet access without the stack, tests that
// return, the sequences the VM fuses), which the VM runs in its filter
// form.
func (g *progGen) generate() asm.Instructions {
	mode := g.pick(4)
	g.packet, g.filter = mode == 1 || mode == 3, mode == 3
	g.insns, g.jumps = nil, nil
	g.emit(asm.Mov.Reg(asm.R6, asm.R1))
	if g.packet {
		g.regs = []asm.Register{asm.R0, asm.R7, asm.R8, asm.R9}
	} else {
		g.regs = []asm.Register{asm.R0, asm.R1, asm.R2, asm.R3, asm.R4, asm.R5, asm.R7, asm.R8, asm.R9}
	}
	g.prologue()
	for n := 8 + g.pick(40); n > 0; n-- {
		if g.filter {
			g.filterStep()
		} else {
			g.step()
		}
	}
	g.land(true)
	if mode == 2 {
		g.callSub()
	}
	g.fold()
	if mode == 2 {
		g.subprogram()
	}
	if g.filter {
		g.emit(asm.Mov.Imm(asm.R0, g.imm()).WithLabel("ret1"), asm.Exit(),
			asm.Mov.Imm(asm.R0, -1).WithLabel("ret2"), asm.Exit())
	}
	return g.insns
}

// prologue initialises the scalars and the stack.
func (g *progGen) prologue() {
	for _, r := range g.regs {
		if g.pick(3) == 0 {
			g.emit(asm.LoadImm64(r, int64(g.r.Uint64())))
		} else {
			g.emit(asm.Mov.Imm(r, g.imm()))
		}
	}
	if g.filter {
		for i, size := range filterSlots {
			g.emit(asm.StoreImm(asm.R10, int16(-8*(i+1)), g.imm(), size))
		}
		return
	}
	for i := 1; i <= stackSlots; i++ {
		g.emit(asm.StoreImm(asm.R10, int16(-8*i), g.imm(), asm.DWord))
	}
}

// land gives the pending jumps that are due (all of them if force) the
// next instruction as their target: a no-op carrying their label, which
// it emits.
func (g *progGen) land(force bool) {
	kept, label := g.jumps[:0], ""
	for _, j := range g.jumps {
		if !force && j.to > len(g.insns) {
			kept = append(kept, j)
			continue
		}
		if label == "" {
			g.labels++
			label = "L" + strconv.Itoa(g.labels)
		}
		g.insns[j.from].Target = label
	}
	g.jumps = kept
	if label != "" {
		g.emit(asm.Mov.Reg(asm.R0, asm.R0).WithLabel(label))
	}
}

// step emits one random operation, placing the labels of jumps that land
// here first.
func (g *progGen) step() {
	g.land(false)
	switch x := g.pick(100); {
	case x < 35:
		g.alu()
	case x < 45:
		g.unary()
	case x < 60:
		g.stack()
	case x < 68:
		g.atomic()
	case x < 80:
		g.jump()
	case g.packet && x < 92:
		g.packetLoad()
	case g.packet:
		g.contextOrHelper()
	default:
		g.alu()
	}
}

var genALUOps = []asm.ALUOp{asm.Add, asm.Sub, asm.Mul, asm.Div, asm.SDiv, asm.Or, asm.And, asm.LSh, asm.RSh, asm.Mod, asm.SMod, asm.Xor, asm.Mov, asm.ArSh}

func (g *progGen) alu() {
	op := genALUOps[g.pick(len(genALUOps))]
	dst := g.reg()
	w32 := g.pick(2) == 0
	if g.pick(2) == 0 {
		src := g.reg()
		if w32 {
			g.emit(op.Reg32(dst, src))
		} else {
			g.emit(op.Reg(dst, src))
		}
		return
	}
	k := g.imm()
	switch op {
	case asm.LSh, asm.RSh, asm.ArSh:
		k &= 31
		if !w32 {
			k = int32(g.pick(64))
		}
	case asm.Div, asm.SDiv, asm.Mod, asm.SMod:
		if k == 0 {
			k = -1
		}
	}
	if w32 {
		g.emit(op.Imm32(dst, k))
	} else {
		g.emit(op.Imm(dst, k))
	}
}

func (g *progGen) unary() {
	dst, src := g.reg(), g.reg()
	bits := []int32{16, 32, 64}[g.pick(3)]
	switch g.pick(8) {
	case 0:
		g.emit(asm.Negate(dst))
	case 1:
		g.emit(asm.Negate32(dst))
	case 2:
		g.emit([]asm.ALUOp{asm.MovSX8, asm.MovSX16, asm.MovSX32}[g.pick(3)].Reg(dst, src))
	case 3:
		g.emit([]asm.ALUOp{asm.MovSX8, asm.MovSX16}[g.pick(2)].Reg32(dst, src))
	case 4:
		g.emit(asm.ToBE(dst, bits))
	case 5:
		g.emit(asm.ToLE(dst, bits))
	case 6:
		g.emit(asm.BSwap(dst, bits))
	default:
		g.emit(asm.LoadImm64(dst, int64(g.r.Uint64())))
	}
}

// slot returns an aligned offset for an access of size to the stack.
func (g *progGen) slot(size asm.Size) int16 {
	n := int(size)
	return int16(-8*(1+g.pick(stackSlots)) + n*g.pick(8/n))
}

var genSizes = []asm.Size{asm.Byte, asm.Half, asm.Word, asm.DWord}

func (g *progGen) stack() {
	size := genSizes[g.pick(4)]
	off := g.slot(size)
	switch g.pick(6) {
	case 0:
		g.emit(asm.StoreImm(asm.R10, off, g.imm(), size))
	case 1:
		g.emit(asm.StoreMem(asm.R10, off, g.reg(), size))
	case 2:
		g.emit(asm.StoreRel.Mem(asm.R10, off, g.reg(), size))
	case 3:
		g.emit(asm.LoadAcq.Mem(g.reg(), off, asm.R10, size))
	case 4:
		if size != asm.DWord {
			g.emit(asm.LoadMemSX(g.reg(), asm.R10, off, size))
			return
		}
		fallthrough
	default:
		g.emit(asm.LoadMem(g.reg(), asm.R10, off, size))
	}
}

var genAtomics = []asm.AtomicOp{asm.AtomicAdd, asm.AtomicOr, asm.AtomicAnd, asm.AtomicXor,
	asm.FetchAdd, asm.FetchOr, asm.FetchAnd, asm.FetchXor, asm.Xchg, asm.CmpXchg}

func (g *progGen) atomic() {
	size := []asm.Size{asm.Word, asm.DWord}[g.pick(2)]
	op := genAtomics[g.pick(len(genAtomics))]
	g.emit(op.Mem(asm.R10, g.slot(size), g.reg(), size))
}

var genJumpOps = []asm.JumpOp{asm.JEq, asm.JGT, asm.JGE, asm.JSet, asm.JNE, asm.JSGT, asm.JSGE, asm.JLT, asm.JLE, asm.JSLT, asm.JSLE}

// jump emits a forward jump over the next 1 to 8 operations. At most 10
// per program keep the verifier's walk short.
func (g *progGen) jump() {
	if len(g.jumps) > 3 || g.labels > 10 {
		// At most 10 jumps a program keep the verifier's walk short.
		g.alu()
		return
	}
	op := genJumpOps[g.pick(len(genJumpOps))]
	dst := g.reg()
	var ins asm.Instruction
	to := len(g.insns) + 2 + g.pick(8)
	switch g.pick(5) {
	case 0:
		ins = op.Reg(dst, g.reg(), "")
	case 1:
		ins = op.Reg32(dst, g.reg(), "")
	case 2:
		ins = op.Imm32(dst, g.imm(), "")
	case 3:
		// An unconditional jump over code would leave it unreachable,
		// which the verifier refuses: this one goes to the next.
		ins, to = asm.Goto(""), len(g.insns)+1
		if g.pick(2) == 0 {
			ins = asm.GotoL("")
		}
	default:
		ins = op.Imm(dst, g.imm(), "")
	}
	g.jumps = append(g.jumps, genJump{from: len(g.insns), to: to})
	g.emit(ins)
}

// packetLoad emits a legacy load: from skb->data, the network header or
// the link-layer header, at a constant or at a register plus a constant;
// offsets past the frame end the program with 0.
func (g *progGen) packetLoad() {
	size := genSizes[g.pick(3)]
	k := int32(g.pick(70))
	switch g.pick(5) {
	case 0:
		k += skb.NetOff
	case 1, 2:
		k += skb.LLOff
	case 3:
		if g.pick(4) == 0 {
			k = int32(g.r.Uint32())
		}
	}
	if g.pick(3) == 0 {
		src := g.regs[1+g.pick(len(g.regs)-1)]
		g.emit(asm.And.Imm(src, 0x3f), asm.LoadInd(src, k, size))
		return
	}
	g.emit(asm.LoadAbs(k, size))
}

// genCtx are the fields of struct __sk_buff whose value the VM's test run
// view knows.
var genCtx = []skb.Field{skb.Len, skb.PktType, skb.Mark, skb.QueueMapping, skb.Protocol,
	skb.VLANPresent, skb.VLANTCI, skb.VLANProto, skb.Priority, skb.IngressIfindex, skb.Ifindex,
	skb.TCIndex, skb.CB, skb.CB + 4, skb.CB + 8, skb.CB + 12, skb.CB + 16, skb.Hash, skb.NapiID,
	skb.GSOSegs, skb.GSOSize}

func (g *progGen) contextOrHelper() {
	f := int16(genCtx[g.pick(len(genCtx))])
	size := genSizes[g.pick(3)]
	f += int16(int(size) * g.pick(4/int(size)))
	switch g.pick(5) {
	case 0:
		g.emit(asm.StoreMem(asm.R6, int16(skb.CB)+4*int16(g.pick(5)), g.reg(), asm.Word))
	case 1, 2:
		g.emit(asm.LoadMem(g.reg(), asm.R6, f, size))
	default:
		// bpf_skb_load_bytes(_relative)(skb, off, r10-8*slot, len[, start])
		slot := int32(1 + g.pick(stackSlots))
		n := 1 + g.pick(8)
		g.emit(asm.Mov.Reg(asm.R1, asm.R6), asm.Mov.Imm(asm.R2, int32(g.pick(80))),
			asm.Mov.Reg(asm.R3, asm.R10), asm.Add.Imm(asm.R3, -8*slot), asm.Mov.Imm(asm.R4, int32(n)))
		if g.pick(2) == 0 {
			g.emit(asm.Call(asm.FnSkbLoadBytes))
		} else {
			g.emit(asm.Mov.Imm(asm.R5, int32(g.pick(2))), asm.Call(asm.FnSkbLoadBytesRelative))
		}
	}
}

// callSub calls the subprogram "sub" with the scalars r1 to r5.
func (g *progGen) callSub() {
	g.emit(asm.CallLabel("sub"))
	for _, r := range []asm.Register{asm.R1, asm.R2, asm.R3, asm.R4, asm.R5} {
		g.emit(asm.Mov.Imm(r, g.imm())) // the call clobbered them
	}
}

// subprogram emits "sub": arithmetic on its arguments and its own stack.
func (g *progGen) subprogram() {
	g.emit(asm.Mov.Reg(asm.R0, asm.R1).WithLabel("sub"))
	saved := g.regs
	g.regs = []asm.Register{asm.R0, asm.R1, asm.R2, asm.R3, asm.R4, asm.R5}
	for i := 1; i <= stackSlots; i++ {
		g.emit(asm.StoreMem(asm.R10, int16(-8*i), g.reg(), asm.DWord))
	}
	for n := 4 + g.pick(16); n > 0; n-- {
		g.step()
	}
	g.land(true)
	g.emit(asm.Exit())
	g.regs = saved
}

// fold folds the scalars and the stack into r0 and exits.
func (g *progGen) fold() {
	for _, r := range g.regs[1:] {
		g.emit(asm.Xor.Reg(asm.R0, r))
	}
	if g.filter {
		// Jumps to both returns, which the verifier wants reachable.
		g.emit(asm.JGT.Imm32(asm.R0, g.imm(), "ret1"), asm.JEq.Imm(asm.R0, g.imm(), "ret2"), asm.Exit())
		return
	}
	for i := 1; i <= stackSlots; i++ {
		g.emit(asm.LoadMem(asm.R1, asm.R10, int16(-8*i), asm.DWord), asm.Add.Reg(asm.R0, asm.R1))
	}
	g.emit(asm.Mov.Reg(asm.R1, asm.R0), asm.RSh.Imm(asm.R1, 32), asm.Xor.Reg(asm.R0, asm.R1), asm.Exit())
}

// filterStep emits one random operation of a filter: arithmetic, a jump,
// a legacy load alone or fused with a test of its value, libpcap's
// `ldx 4*([k]&0xf)`, a context field, bpf_skb_load_bytes(_relative) into
// a stack buffer nothing reads, or a test that returns.
func (g *progGen) filterStep() {
	g.land(false)
	switch x := g.pick(100); {
	case x < 20:
		g.alu()
	case x < 25:
		g.unary()
	case x < 35:
		g.jump()
	case x < 45:
		g.packetLoad()
	case x < 65:
		g.fusedTest()
	case x < 70:
		g.emit(asm.LoadAbs(int32(g.pick(40)), asm.Byte), asm.Mov.Reg(asm.R7, asm.R0),
			asm.And.Imm32(asm.R7, 0xf), asm.LSh.Imm32(asm.R7, 2))
	case x < 75:
		// A stack slot, always of the same size.
		i := g.pick(len(filterSlots))
		off, size := int16(-8*(i+1)), filterSlots[i]
		switch g.pick(4) {
		case 0:
			g.emit(asm.StoreImm(asm.R10, off, g.imm(), size))
		case 1:
			g.emit(asm.StoreMem(asm.R10, off, g.reg(), size))
		case 2:
			if size != asm.DWord {
				g.emit(asm.LoadMemSX(g.reg(), asm.R10, off, size))
				return
			}
			fallthrough
		default:
			g.emit(asm.LoadMem(g.reg(), asm.R10, off, size))
		}
	case x < 80:
		f := genCtx[g.pick(len(genCtx))]
		size := genSizes[g.pick(3)]
		g.emit(asm.LoadMem(g.reg(), asm.R6, int16(f)+int16(int(size)*g.pick(4/int(size))), size))
	case x < 85:
		n := 1 + g.pick(8)
		g.emit(asm.Mov.Reg(asm.R1, asm.R6), asm.Mov.Reg(asm.R2, g.reg()), asm.And.Imm(asm.R2, 0x7f),
			asm.Mov.Reg(asm.R3, asm.R10), asm.Add.Imm(asm.R3, -48), asm.Mov.Imm(asm.R4, int32(n)))
		if g.pick(2) == 0 {
			g.emit(asm.Call(asm.FnSkbLoadBytes))
		} else {
			g.emit(asm.Mov.Imm(asm.R5, int32(g.pick(2))), asm.Call(asm.FnSkbLoadBytesRelative))
		}
	default:
		op := genJumpOps[g.pick(len(genJumpOps))]
		g.emit(op.Imm32(g.reg(), g.imm(), []string{"ret1", "ret2"}[g.pick(2)]))
	}
}

// filterSlots are the sizes of the stack slots of filter mode, at r10-8,
// r10-16 and so on: the VM's filter form keeps them in registers. The
// buffer of the helpers is further down, at r10-48.
var filterSlots = []asm.Size{asm.Word, asm.DWord, asm.Half, asm.Byte}

// fusedTest emits a legacy load, sometimes an AND of r0, and a test of r0
// against a constant, on 32 or 64 bits.
func (g *progGen) fusedTest() {
	g.packetLoad()
	if g.pick(2) == 0 {
		g.emit(asm.And.Imm32(asm.R0, int32(g.r.Uint32())))
	}
	op := genJumpOps[g.pick(len(genJumpOps))]
	k := g.imm()
	if g.pick(3) == 0 {
		k = int32(g.pick(256))
	}
	target := []string{"ret1", "ret2", ""}[g.pick(3)]
	var ins asm.Instruction
	if g.pick(2) == 0 {
		ins = op.Imm32(asm.R0, k, target)
	} else {
		ins = op.Imm(asm.R0, k, target)
	}
	if target == "" {
		g.jumps = append(g.jumps, genJump{from: len(g.insns), to: len(g.insns) + 2 + g.pick(8)})
	}
	g.emit(ins)
}
