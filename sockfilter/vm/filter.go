package vm

import (
	"math/bits"
	"slices"

	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/sockfilter/skb"
)

// The filter form is a second internal form, for the programs compiled
// filters are made of: straight code and forward jumps over the socket
// buffer's legacy loads, context fields and registers. It runs without an
// Env and without a budget (a program without a jump back ends within its
// length), with every check New could make made once: the legacy loads
// know that r6 holds the context, the context loads know which field they
// read, and the helpers that write the stack write where nothing reads
// it. Its instructions carry both successors, so that a test selects the
// next instruction without a branch of the interpreter's own, and decode
// fuses the commonest sequences of compiled filters into one instruction:
// a legacy load, an optional AND and a test of the result against a
// constant; a byte load and the IPv4 header length computed from it
// (libpcap's ldxms); `r0 = imm; exit`. A program outside the form runs in
// the general interpreter (loop).

// fop is an operation of the filter form.
type fop uint8

const (
	// fRet is r0 = imm; exit. It is the zero op, so that an instruction
	// decode did not fill returns 0.
	fRet fop = iota

	// Arithmetic run inline; the others are fALUK and fALUX.
	fMov64K
	fMov64X
	fMov32K
	fMov32X
	fAdd64K
	fAdd64X
	fAdd32K
	fAdd32X
	fAnd64K
	fAnd32K
	fOr64K
	fOr32K
	fLsh64K
	fLsh32K
	fRsh64K
	fRsh32K
	fSub32K
	fMul32K
	fXor32K
	fDiv32K // decode made a division by 0 a move
	fMod32K // decode made a modulo by 0 a move
	fNeg32
	fDiv32X
	fMod32X
	fMovMask // dst = src & imm: a store to a stack slot (see slots)
	fALUK    // dst = aluOp(aux, dst, imm)
	fALUX    // dst = aluOp(aux, dst, src)

	// The tests, in families of four variants as the general form's
	// jumps (var64K...): the others are these with t and f swapped.
	fJeq64K
	fJeq64X
	fJeq32K
	fJeq32X
	fJgt64K
	fJgt64X
	fJgt32K
	fJgt32X
	fJge64K
	fJge64X
	fJge32K
	fJge32X
	fJset64K
	fJset64X
	fJset32K
	fJset32X
	fJsgt64K
	fJsgt64X
	fJsgt32K
	fJsgt32X
	fJsge64K
	fJsge64X
	fJsge32K
	fJsge32X

	fJa   // goto t
	fExit // exit

	// Legacy loads into r0: at base aux + off, or at src + off.
	fLdAbsB
	fLdAbsH
	fLdAbsW
	fLdIndB
	fLdIndH
	fLdIndW

	// A legacy load, r0 &= mask and a test of w0 against k, by size
	// (B, H, W) and test (eq, gt, ge, set).
	fLdAbsBEq
	fLdAbsBGt
	fLdAbsBGe
	fLdAbsBSet
	fLdAbsHEq
	fLdAbsHGt
	fLdAbsHGe
	fLdAbsHSet
	fLdAbsWEq
	fLdAbsWGt
	fLdAbsWGe
	fLdAbsWSet
	fLdIndBEq
	fLdIndBGt
	fLdIndBGe
	fLdIndBSet
	fLdIndHEq
	fLdIndHGt
	fLdIndHGe
	fLdIndHSet
	fLdIndWEq
	fLdIndWGt
	fLdIndWGe
	fLdIndWSet
	fLdLenEq // dst = skb->len, dst &= mask and a test of it against k
	fLdLenGt
	fLdLenGe
	fLdLenSet

	// fMSH is r0 = the byte at base aux + off; dst = (r0 & mask) << k:
	// libpcap's `ldx 4*([k]&0xf)` as compiled.
	fMSH
	fLdLen  // dst = skb->len
	fLdCtx  // dst = the field of struct __sk_buff at off, aux bytes
	fHelper // r0 = a helper that needs no memory
	// fSkbLoad is r0 = bpf_skb_load_bytes(skb, src, buffer, k) into a
	// buffer nothing reads: 0 or -EFAULT; fSkbLoadRel is
	// bpf_skb_load_bytes_relative, from the header mask.
	fSkbLoad
	fSkbLoadRel
	// fSkbLoadZ and fSkbLoadRelZ are those with a test of r0 against 0
	// after them: they go on at t when the load succeeds, at f otherwise.
	fSkbLoadZ
	fSkbLoadRelZ
	// fStackLd and fStackSt are loads and stores at r10 + off of aux
	// bytes, which slots makes moves from and to registers: a load that
	// sign-extends has k 1, a store of src rather than imm has k 1.
	fStackLd
	fStackSt

	// The tests whose two successors are `r0 = imm; exit`: the unsigned
	// tests against a constant and, in the order from fLdAbsBEq, the fused
	// ones. They return t when the test holds and f otherwise, the low
	// halves of the immediates, which is all of r0 a socket filter's
	// caller sees.
	fJeq64KRet
	fJeq32KRet
	fJgt64KRet
	fJgt32KRet
	fJge64KRet
	fJge32KRet
	fJset64KRet
	fJset32KRet
	fLdAbsBEqRet
	fLdAbsBGtRet
	fLdAbsBGeRet
	fLdAbsBSetRet
	fLdAbsHEqRet
	fLdAbsHGtRet
	fLdAbsHGeRet
	fLdAbsHSetRet
	fLdAbsWEqRet
	fLdAbsWGtRet
	fLdAbsWGeRet
	fLdAbsWSetRet
	fLdIndBEqRet
	fLdIndBGtRet
	fLdIndBGeRet
	fLdIndBSetRet
	fLdIndHEqRet
	fLdIndHGtRet
	fLdIndHGeRet
	fLdIndHSetRet
	fLdIndWEqRet
	fLdIndWGtRet
	fLdIndWGeRet
	fLdIndWSetRet
	fLdLenEqRet
	fLdLenGtRet
	fLdLenGeRet
	fLdLenSetRet

	// The tests for equality that make a second one when the first does
	// not hold, of the same value: a fused load's (fLdAbsBEq2 is
	// fLdAbsBEq...) or a register's on 32 bits. The second constant is
	// imm's low half, its successor imm's high half: a chain of tests of
	// an EtherType or a protocol number in one instruction.
	fLdAbsBEq2
	fLdAbsHEq2
	fLdAbsWEq2
	fLdIndBEq2
	fLdIndHEq2
	fLdIndWEq2
	fLdLenEq2
	fJeq32K2
)

// finsn is an instruction of the filter form: 32 bytes.
type finsn struct {
	op   fop
	dst  uint8
	src  uint8
	aux  uint8  // a legacy load's base; the operation of fALUK, fALUX; a context load's size
	off  int32  // a legacy load's offset; a context field's offset
	t, f int32  // the next instruction when the test holds, and otherwise (or always)
	k    uint32 // the constant of a fused test, the shift of fMSH
	mask uint32 // the mask of a fused test or of fMSH
	imm  uint64 // the immediate, as in the general form; a helper's number
}

// maxFilterFrame bounds the frames the filter form runs: longer ones, if
// ever, run in the general form. The filter form folds the legacy loads
// at a constant offset beyond it into a return of 0.
const maxFilterFrame = 1 << 30

// filter is a program in the filter form.
type filter struct {
	v     *VM
	code  []finsn
	start int32 // the first instruction to run
	r6    bool  // the program starts with r6 = r1, which regs does
	// regs are the registers a run starts with: the program's registers
	// renamed to the eight the form has (rename), r1 and r10 and maybe r6
	// set.
	regs [filterRegs]uint64
	// needs says what of the socket buffer's frameCtx the runs need.
	needs uint8
}

// What a filter's runs need of the frameCtx: nothing but the frame and
// its bases, or all of it.
const (
	needNone uint8 = iota
	needCtx
)

// The abstract values the analysis gives registers: what every run that
// reaches an instruction holds there.
type absKind uint8

const (
	absUnknown absKind = iota
	absCtx             // the context pointer
	absStack           // r10 + c
	absConst           // c
	absCopy            // the value of register c, which has not changed since
)

type absVal struct {
	kind absKind
	c    int64
}

// absState is what the registers hold at an instruction.
type absState struct {
	reached bool
	r       [11]absVal
}

// join merges s into a state that other paths reach too.
func (a *absState) join(s *absState) {
	if !a.reached {
		*a = *s
		return
	}
	for i := range a.r {
		if a.r[i] != s.r[i] {
			a.r[i] = absVal{}
		}
	}
}

// compileFilter translates v.code, before fuse, into the filter form when
// the program keeps to it, and returns nil otherwise.
func (v *VM) compileFilter() *filter {
	code := v.code
	states := make([]absState, len(code))
	states[0].reached = true
	states[0].r[1] = absVal{kind: absCtx}
	states[0].r[10] = absVal{kind: absStack}
	fc := make([]finsn, len(code))
	for i := range code {
		st := states[i]
		if !st.reached {
			fc[i] = finsn{op: fRet} // never runs
			continue
		}
		in := &code[i]
		fi, ok := v.filterInsn(i, in, &st)
		if !ok {
			return nil
		}
		fc[i] = fi
		// Pass the state on, after the instruction's effect.
		succ := filterSuccessors(i, in)
		if succ[0] < 0 && succ[1] < 0 {
			continue
		}
		transfer(in, &st)
		for _, s := range succ {
			if s < 0 {
				continue
			}
			if s <= i || s >= len(code) {
				return nil // a jump back: a loop, which needs the budget
			}
			states[s].join(&st)
		}
	}
	f := &filter{v: v, code: fc}
	if !f.slots() {
		return nil
	}
	for _, fi := range fc {
		switch {
		case fi.op == fLdCtx, fi.op == fHelper && asm.HelperFunc(fi.imm) == asm.FnGetSocketUID:
			f.needs = needCtx
		}
	}
	f.prune()
	f.thread()
	f.fuse()
	f.returns()
	f.chain()
	f.start = f.follow(0)
	if first := &fc[f.start]; first.op == fMov64X && first.dst == 6 && first.src == 1 {
		f.start, f.r6 = f.follow(first.f), true // r6 = r1, done by regs
	}
	if !f.rename() {
		return nil
	}
	return f
}

// filterSuccessors returns the instructions that may run after i, -1 for
// none.
func filterSuccessors(i int, in *insn) [2]int {
	switch {
	case in.op >= opJeq64K && in.op <= opJsle32X:
		return [2]int{i + 1, int(in.off)}
	case in.op == opJa:
		return [2]int{int(in.off), -1}
	case in.op == opExit, in.op == opLdFail:
		return [2]int{-1, -1}
	}
	return [2]int{i + 1, -1}
}

// transfer applies the effect of in to st.
func transfer(in *insn, st *absState) {
	d, src := int(in.dst&15), int(in.src&15)
	var v absVal // the new value of the register w
	w := d
	switch {
	case in.op == opMov64X:
		if src == d {
			return
		}
		if v = st.r[src]; v.kind == absUnknown {
			v = absVal{kind: absCopy, c: int64(src)}
		}
	case in.op == opMov64K:
		v = absVal{kind: absConst, c: int64(in.imm)}
	case in.op == opAdd64K:
		if v = st.r[d]; v.kind == absStack || v.kind == absConst {
			v.c += int64(in.imm)
		} else {
			v = absVal{}
		}
	case in.op >= opAdd64K && in.op <= opBswap64, in.op >= opLdxB && in.op <= opLdxsW:
	case in.op >= opLdAbsB && in.op <= opLdIndW, in.op == opCall:
		w = 0
	default:
		return
	}
	// What copied the old value of w copies it no more.
	for i := range st.r {
		if st.r[i].kind == absCopy && st.r[i].c == int64(w) {
			st.r[i] = absVal{}
		}
	}
	st.r[w] = v
}

// filterInsn translates one instruction that st reaches, or reports that
// the filter form cannot run it.
func (v *VM) filterInsn(i int, in *insn, st *absState) (finsn, bool) {
	fi := finsn{dst: in.dst & 15, src: in.src & 15, imm: in.imm, f: int32(i + 1)}
	switch o := in.op; {
	case o >= opAdd64K && o <= opNop:
		fi.op = filterALU(o)
		fi.aux = uint8(o)
		if fi.op == fALUK && aluOperand(o) {
			fi.op = fALUX
		}
	case o >= opJeq64K && o <= opJsle32X:
		var swap bool
		fi.op, swap = filterTest(o)
		fi.t = in.off
		if swap {
			fi.t, fi.f = fi.f, fi.t
		}
	case o == opJa:
		fi.op, fi.t, fi.f = fJa, in.off, in.off
	case o == opExit:
		fi.op = fExit
	case o >= opLdAbsB && o <= opLdFail:
		if st.r[6].kind != absCtx {
			return fi, false
		}
		switch {
		case o == opLdFail, o <= opLdAbsW && in.off >= maxFilterFrame:
			// A load that fails on every frame the form runs: the
			// compilers' way to reject.
			fi.op, fi.imm = fRet, 0
		case o <= opLdAbsW:
			fi.op, fi.aux, fi.off = fLdAbsB+fop(o-opLdAbsB), in.aux, in.off
		default:
			fi.op, fi.off = fLdIndB+fop(o-opLdIndB), int32(in.imm)
		}
	case o >= opLdxB && o <= opStxDW && stackAccess(in, st) != nil:
		return stackInsn(fi, in, stackAccess(in, st))
	case o >= opLdxB && o <= opLdxW:
		n := int64(1) << (o - opLdxB)
		off := int64(in.off)
		if st.r[in.src&15].kind != absCtx || off < 0 || off+n > ctxSize || ctxRead[off]&uint8(n) == 0 {
			return fi, false
		}
		fi.op, fi.off, fi.aux = fLdCtx, int32(off), uint8(n)
		if off == int64(skb.Len) && n == 4 {
			fi.op = fLdLen
		}
	case o == opCall:
		fn := asm.HelperFunc(int32(in.imm))
		if in.aux != helperBuiltin || !filterHelper(fn, st) {
			return fi, false
		}
		fi.op = fHelper
		if fn == asm.FnSkbLoadBytes || fn == asm.FnSkbLoadBytesRelative {
			// The offset from the register r2 copies, if any, the
			// length and start from their constants.
			fi.op, fi.src, fi.k, fi.off = fSkbLoad, 2, uint32(st.r[4].c), int32(st.r[3].c)
			if st.r[2].kind == absCopy {
				fi.src = uint8(st.r[2].c)
			}
			if fn == asm.FnSkbLoadBytesRelative {
				fi.op, fi.mask = fSkbLoadRel, uint32(st.r[5].c)
			}
		}
	default:
		return fi, false
	}
	return fi, true
}

// stackAccess returns the abstract value of the base register of in, a
// load or store, when it points into the stack, or nil.
func stackAccess(in *insn, st *absState) *absVal {
	base := in.src & 15
	if in.op >= opStB {
		base = in.dst & 15
	}
	if a := &st.r[base]; a.kind == absStack {
		return a
	}
	return nil
}

// stackInsn translates in, a load or store at a constant offset from r10
// (at, the base register's value), into fStackLd or fStackSt, for slots.
func stackInsn(fi finsn, in *insn, at *absVal) (finsn, bool) {
	var n uint8
	switch o := in.op; {
	case o <= opLdxDW:
		fi.op, n = fStackLd, 1<<(o-opLdxB)
	case o <= opLdxsW:
		fi.op, n, fi.k = fStackLd, 1<<(o-opLdxsB), 1
	case o <= opStDW:
		fi.op, n = fStackSt, 1<<(o-opStB)
	case o <= opStxDW:
		fi.op, n, fi.k = fStackSt, 1<<(o-opStxB), 1
	}
	c := at.c + int64(in.off)
	if c < -StackSize || c+int64(n) > 0 {
		return fi, false
	}
	fi.off, fi.aux = int32(c), n
	return fi, true
}

// slots turns the stack accesses of the program into moves from and to
// registers of their own (r11 to r15 before rename), when every access to
// a slot has one offset and size, the slots do not overlap each other or
// a buffer a helper loads into (which fSkbLoad does not write), and there
// are at most five: scalar replacement, as compilers do. The stack starts
// zeroed; so do the registers.
func (f *filter) slots() bool {
	type slot struct {
		size uint8
		reg  uint8
	}
	at := map[int32]*slot{}
	var offs []int32
	for i := range f.code {
		fi := &f.code[i]
		if fi.op != fStackLd && fi.op != fStackSt {
			continue
		}
		switch s := at[fi.off]; {
		case s == nil:
			at[fi.off] = &slot{size: fi.aux}
			offs = append(offs, fi.off)
		case s.size != fi.aux:
			return false
		}
	}
	if len(offs) > 5 {
		return false
	}
	slices.Sort(offs)
	for i, o := range offs {
		at[o].reg = uint8(11 + i)
		if i+1 < len(offs) && o+int32(at[o].size) > offs[i+1] {
			return false
		}
	}
	for i := range f.code {
		fi := &f.code[i]
		switch fi.op {
		case fSkbLoad, fSkbLoadRel:
			for _, o := range offs {
				if o < fi.off+int32(fi.k) && fi.off < o+int32(at[o].size) {
					return false
				}
			}
		case fStackLd:
			s := at[fi.off]
			fi.op, fi.src = fMov64X, s.reg
			if fi.k == 1 && s.size < 8 {
				fi.op, fi.aux = fALUX, uint8(opMovSX8to64+op(bits.TrailingZeros8(s.size)))
			}
		case fStackSt:
			s := at[fi.off]
			mask := ^uint64(0) >> (64 - 8*uint(s.size))
			fi.dst = s.reg
			if fi.k == 1 {
				fi.op, fi.imm = fMovMask, mask
			} else {
				fi.op, fi.imm = fMov64K, fi.imm&mask
			}
		}
	}
	return true
}

// filterALU returns the filter form of an arithmetic operation.
func filterALU(o op) fop {
	switch o {
	case opMov64K:
		return fMov64K
	case opMov64X:
		return fMov64X
	case opMov32K:
		return fMov32K
	case opMov32X:
		return fMov32X
	case opAdd64K:
		return fAdd64K
	case opAdd64X:
		return fAdd64X
	case opAdd32K:
		return fAdd32K
	case opAdd32X:
		return fAdd32X
	case opAnd64K:
		return fAnd64K
	case opAnd32K:
		return fAnd32K
	case opOr64K:
		return fOr64K
	case opOr32K:
		return fOr32K
	case opLsh64K:
		return fLsh64K
	case opLsh32K:
		return fLsh32K
	case opRsh64K:
		return fRsh64K
	case opRsh32K:
		return fRsh32K
	case opSub32K:
		return fSub32K
	case opMul32K:
		return fMul32K
	case opXor32K:
		return fXor32K
	case opDiv32K:
		return fDiv32K
	case opMod32K:
		return fMod32K
	case opNeg32:
		return fNeg32
	case opDiv32X:
		return fDiv32X
	case opMod32X:
		return fMod32X
	}
	return fALUK
}

// filterTest returns the test of the general form's conditional jump o,
// and whether it holds when o's does not: the filter form has no tests
// that negate others (jne, jlt, jle, jslt, jsle), whose targets it swaps.
func filterTest(o op) (fop, bool) {
	g, variant := (o-opJeq64K)/4, fop((o-opJeq64K)&3)
	tests := [...]struct {
		f    fop
		swap bool
	}{
		{fJeq64K, false}, {fJgt64K, false}, {fJge64K, false}, {fJset64K, false},
		{fJeq64K, true}, {fJsgt64K, false}, {fJsge64K, false}, {fJge64K, true},
		{fJgt64K, true}, {fJsge64K, true}, {fJsgt64K, true},
	}
	t := tests[g]
	return t.f + variant, t.swap
}

// filterHelper reports whether the filter form can run a call of fn in
// state st: a helper that touches no memory, or bpf_skb_load_bytes(_relative)
// on the context into a buffer on the stack that nothing reads, of a
// constant length (from a constant header).
func filterHelper(fn asm.HelperFunc, st *absState) bool {
	switch fn {
	case asm.FnKtimeGetNs, asm.FnKtimeGetBootNs, asm.FnKtimeGetCoarseNs, asm.FnKtimeGetTaiNs,
		asm.FnGetPrandomU32, asm.FnGetSmpProcessorID, asm.FnGetNumaNodeID, asm.FnGetSocketUID:
		return true
	case asm.FnSkbLoadBytes, asm.FnSkbLoadBytesRelative:
		to, n := st.r[3], st.r[4]
		if st.r[1].kind != absCtx || to.kind != absStack || n.kind != absConst ||
			fn == asm.FnSkbLoadBytesRelative && st.r[5].kind != absConst {
			return false
		}
		size := int64(uint32(n.c))
		return to.c >= -StackSize && to.c+size <= 0
	}
	return false
}

// fuse makes the filter form's superinstructions, following each
// instruction to the one that runs after it, after thread, so that a
// jump between the parts of a sequence does not keep them apart. A fused
// instruction replaces the first of its sequence; the others stay, for
// the jumps that land on them.
func (f *filter) fuse() {
	for i := range f.code {
		fi := &f.code[i]
		switch {
		case fi.op >= fLdAbsB && fi.op <= fLdIndW, fi.op == fLdLen:
			if !f.fuseTest(fi) && fi.op == fLdAbsB {
				f.fuseMSH(fi)
			}
		case fi.op == fSkbLoad, fi.op == fSkbLoadRel:
			f.fuseZero(fi)
		case fi.op == fMov64K && fi.dst == 0 && f.at(fi.f).op == fExit:
			*fi = finsn{op: fRet, imm: fi.imm}
		}
	}
}

// fuseTest fuses the load fi with an AND of its value with a constant and
// a test of it against a constant after it: a test of the unsigned kinds
// on 32 bits, or on 64 bits with a constant the 32-bit test gives the
// same answer for (the loaded value has its upper half zero).
func (f *filter) fuseTest(fi *finsn) bool {
	reg := uint8(0) // the register the load writes
	if fi.op == fLdLen {
		reg = fi.dst
	}
	mask, next := uint32(0xffffffff), f.at(fi.f)
	if (next.op == fAnd32K || next.op == fAnd64K) && next.dst == reg {
		mask, next = uint32(next.imm), f.at(next.f)
	}
	variant, kind := (next.op-fJeq64K)&3, (next.op-fJeq64K)/4 // kind: eq, gt, ge, set
	switch {
	case next.op < fJeq64K || next.op > fJset32X || next.dst != reg:
		return false
	case variant == var64X || variant == var32X:
		return false
	case variant == var64K && kind != 3 && int64(next.imm) < 0:
		return false
	}
	first := fLdLenEq
	switch {
	case fi.op <= fLdAbsW:
		first = fLdAbsBEq + 4*(fi.op-fLdAbsB)
	case fi.op <= fLdIndW:
		first = fLdIndBEq + 4*(fi.op-fLdIndB)
	}
	*fi = finsn{op: first + kind, dst: fi.dst, src: fi.src, aux: fi.aux, off: fi.off,
		t: next.t, f: next.f, k: uint32(next.imm), mask: mask}
	return true
}

// fuseZero fuses the skb load fi with a test of r0 against 0 after it,
// which tells success (0) from failure (-EFAULT).
func (f *filter) fuseZero(fi *finsn) {
	next := f.at(fi.f)
	if next.dst != 0 || next.imm != 0 || next.op != fJeq64K && next.op != fJeq32K {
		return
	}
	fi.op += fSkbLoadZ - fSkbLoad
	fi.t, fi.f = next.t, next.f
}

// fuseMSH fuses the byte load fi with `rX = r0; rX &= mask; rX <<= k`
// after it (or the same on r0 itself), for a shift that keeps a byte
// within 32 bits, where both widths give the same result.
func (f *filter) fuseMSH(fi *finsn) {
	mov := f.at(fi.f)
	x, and := uint8(0), mov
	if mov.op == fMov64X || mov.op == fMov32X {
		if mov.src != 0 {
			return
		}
		x, and = mov.dst, f.at(mov.f)
	}
	lsh := f.at(and.f)
	switch {
	case and.op != fAnd32K && and.op != fAnd64K, and.dst != x,
		lsh.op != fLsh32K && lsh.op != fLsh64K, lsh.dst != x, lsh.imm > 24:
		return
	}
	*fi = finsn{op: fMSH, dst: x, aux: fi.aux, off: fi.off, f: lsh.f,
		mask: uint32(and.imm) & 0xff, k: uint32(lsh.imm)}
}

// at returns instruction x, or a return of 0 past the end, where the
// successor of an exit points.
func (f *filter) at(x int32) *finsn {
	if x < 0 || int(x) >= len(f.code) {
		return &finsn{}
	}
	return &f.code[x]
}

// filterRegs is the number of registers of the filter form: a power of
// two, so that an index masked to it needs no bounds check, and as few as
// compiled filters use, so that a run starts with little to copy.
const filterRegs = 8

// rename maps the registers the program uses to the filter form's, or
// reports that it uses too many. It sets the registers a run starts
// with: r1 and r6 (when the run skips r6 = r1) hold the context, r10 the
// stack's top, the others 0.
func (f *filter) rename() bool {
	var used uint16
	if f.r6 {
		used |= 1 << 6
	}
	for i := range f.code {
		use, def, _ := f.code[i].effect()
		used |= use | def
	}
	var slot [16]uint8
	n := 0
	for r := range 16 {
		if used&(1<<r) == 0 {
			continue
		}
		if n == filterRegs {
			return false
		}
		slot[r] = uint8(n)
		n++
	}
	for i := range f.code {
		fi := &f.code[i]
		fi.dst, fi.src = slot[fi.dst&15], slot[fi.src&15]
	}
	if used&(1<<1) != 0 {
		f.regs[slot[1]] = ctxAddr
	}
	if used&(1<<10) != 0 {
		f.regs[slot[10]] = stackTop
	}
	if f.r6 {
		f.regs[slot[6]] = ctxAddr
	}
	return true
}

// thread makes every successor skip the unconditional jumps it would go
// through.
func (f *filter) thread() {
	for i := range f.code {
		fi := &f.code[i]
		fi.t, fi.f = f.follow(fi.t), f.follow(fi.f)
	}
}

// follow returns where the unconditional jumps from x lead.
func (f *filter) follow(x int32) int32 {
	for int(x) < len(f.code) && f.code[x].op == fJa {
		x = f.code[x].t // forward: the chain ends
	}
	return x
}

// returns makes the tests whose successors both return return themselves
// (fJeq64KRet...), with the successors' values in t and f.
func (f *filter) returns() {
	for i := range f.code {
		fi := &f.code[i]
		var ret fop
		switch {
		case fi.op >= fJeq64K && fi.op <= fJset32X && (fi.op-fJeq64K)&1 == 0: // K variants
			ret = fJeq64KRet + (fi.op-fJeq64K)/2
		case fi.op >= fLdAbsBEq && fi.op <= fLdLenSet:
			ret = fi.op - fLdAbsBEq + fLdAbsBEqRet
		default:
			continue
		}
		t, e := f.at(fi.t), f.at(fi.f)
		if t.op == fRet && e.op == fRet {
			fi.op, fi.t, fi.f = ret, int32(uint32(t.imm)), int32(uint32(e.imm))
		}
	}
}

// effect returns the registers fi reads and writes, and whether it does
// nothing else: an instruction that does nothing else and writes only
// registers nothing reads afterwards can go.
func (fi *finsn) effect() (use, def uint16, pure bool) {
	d, s := uint16(1)<<(fi.dst&15), uint16(1)<<(fi.src&15)
	switch o := fi.op; {
	case o == fMov64K, o == fMov32K, o == fLdLen, o == fLdCtx:
		return 0, d, true
	case o == fMov64X, o == fMov32X, o == fMovMask:
		return s, d, true
	case o == fAdd64X, o == fAdd32X, o == fALUX, o == fDiv32X, o == fMod32X:
		return d | s, d, true
	case o >= fAdd64K && o <= fALUK:
		return d, d, true
	case o >= fJeq64K && o <= fJsge32X:
		if (o-fJeq64K)&1 == 1 { // an X variant
			return d | s, 0, false
		}
		return d, 0, false
	case o >= fJeq64KRet && o <= fJset32KRet:
		return d, 0, false
	case o == fExit:
		return 1, 0, false
	case o >= fLdLenEq && o <= fLdLenSet, o >= fLdLenEqRet && o <= fLdLenSetRet, o == fLdLenEq2:
		return 0, d, false // a test: it goes somewhere
	case o >= fLdAbsBEq2 && o <= fLdAbsWEq2:
		return 0, 1, false
	case o >= fLdIndBEq2 && o <= fLdIndWEq2:
		return s, 1, false
	case o == fJeq32K2:
		return d, 0, false
	case o >= fLdIndB && o <= fLdIndW, o >= fLdIndBEq && o <= fLdIndWSet, o >= fLdIndBEqRet && o <= fLdIndWSetRet:
		return s, 1, false
	case o >= fLdAbsB && o <= fLdAbsW, o >= fLdAbsBEq && o <= fLdAbsWSet, o >= fLdAbsBEqRet && o <= fLdAbsWSetRet:
		return 0, 1, false
	case o == fMSH:
		return 0, 1 | d, false
	case o >= fSkbLoad && o <= fSkbLoadRelZ:
		return s, 1, false
	case o == fHelper:
		return 0, 1, false
	}
	return 0, 0, false // fJa, fRet
}

// successors returns where fi goes on, -1 for nowhere.
func (fi *finsn) successors() [3]int32 {
	switch o := fi.op; {
	case o >= fJeq64K && o <= fJsge32X, o >= fLdAbsBEq && o <= fLdLenSet, o == fSkbLoadZ, o == fSkbLoadRelZ:
		return [3]int32{fi.t, fi.f, -1}
	case o >= fLdAbsBEq2:
		return [3]int32{fi.t, int32(fi.imm >> 32), fi.f}
	case o == fJa:
		return [3]int32{fi.t, -1, -1}
	case o == fRet, o == fExit, o >= fJeq64KRet:
		return [3]int32{-1, -1, -1}
	}
	return [3]int32{fi.f, -1, -1}
}

// prune removes the instructions that only write registers nothing reads
// afterwards, such as the arguments of a helper that fSkbLoad reads from
// elsewhere, making them jumps to their successor for thread to skip.
// Every jump goes forward, so that one walk from the end finds what each
// instruction's successors read; removing an instruction can leave
// others without readers, hence the rounds.
func (f *filter) prune() {
	live := make([]uint16, len(f.code)) // what may be read from each instruction on
	for changed := true; changed; {
		changed = false
		for i := len(f.code) - 1; i >= 0; i-- {
			fi := &f.code[i]
			var out uint16
			for _, s := range fi.successors() {
				if s >= 0 {
					out |= live[s]
				}
			}
			use, def, pure := fi.effect()
			if pure && def&out == 0 && fi.op != fJa {
				*fi = finsn{op: fJa, t: fi.f, f: fi.f}
				use, def, changed = 0, 0, true
			}
			live[i] = use | out&^def
		}
	}
}

// chain makes a test for equality whose successor when it does not hold
// is a test of the same value for equality on 32 bits one instruction
// (fLdAbsBEq2...), which returns already made their own.
func (f *filter) chain() {
	for i := range f.code {
		fi := &f.code[i]
		var two fop
		var reg uint8
		switch {
		case fi.op >= fLdAbsBEq && fi.op <= fLdIndWSet && (fi.op-fLdAbsBEq)%4 == 0:
			two = fLdAbsBEq2 + (fi.op-fLdAbsBEq)/4
		case fi.op == fLdLenEq:
			two, reg = fLdLenEq2, fi.dst
		case fi.op == fJeq32K:
			two, reg = fJeq32K2, fi.dst
		default:
			continue
		}
		next := f.at(fi.f)
		// A fused load's value has its upper half zero: a 64-bit test
		// of a constant of 32 bits is the 32-bit one.
		wide := two != fJeq32K2 && next.op == fJeq64K && next.imm < 1<<32
		if next.dst != reg || next.op != fJeq32K && !wide {
			continue
		}
		if two == fJeq32K2 {
			fi.k = uint32(fi.imm)
		}
		fi.op, fi.imm, fi.f = two, uint64(uint32(next.imm))|uint64(uint32(next.t))<<32, next.f
	}
}
