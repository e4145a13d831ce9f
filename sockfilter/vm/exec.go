package vm

import (
	"fmt"
	"math/bits"
)

// run runs the program from its first instruction with r1 and r2 set, and
// returns r0.
//
// It is one function with one switch, longer than the guide's hundred
// lines, because that is what makes it fast: the switch over the dense
// internal operations compiles to a jump table, the registers stay in a
// local array, and a taken jump is a goto to the shared code that counts
// the instructions run since the last one against the budget, so that
// instructions that do not jump cost nothing for it.
func (v *VM) run(e *Env, r1, r2 uint64) (uint64, error) {
	e.start()
	var r [16]uint64
	r[1], r[2], r[10] = r1, r2, stackTop
	code := v.code
	budget := v.budget
	pc, start := 0, 0 // the instruction, and the first of the straight run it is in
	for {
		in := &code[pc]
		d, s := in.dst&15, in.src&15
		switch in.op {
		case opAdd64K:
			r[d] += in.imm
		case opAdd64X:
			r[d] += r[s]
		case opAdd32K:
			r[d] = uint64(uint32(r[d]) + uint32(in.imm))
		case opAdd32X:
			r[d] = uint64(uint32(r[d]) + uint32(r[s]))
		case opSub64K:
			r[d] -= in.imm
		case opSub64X:
			r[d] -= r[s]
		case opSub32K:
			r[d] = uint64(uint32(r[d]) - uint32(in.imm))
		case opSub32X:
			r[d] = uint64(uint32(r[d]) - uint32(r[s]))
		case opMul64K:
			r[d] *= in.imm
		case opMul64X:
			r[d] *= r[s]
		case opMul32K:
			r[d] = uint64(uint32(r[d]) * uint32(in.imm))
		case opMul32X:
			r[d] = uint64(uint32(r[d]) * uint32(r[s]))
		case opDiv64K: // decode made a division by 0 a move of 0
			r[d] /= in.imm
		case opDiv64X:
			if r[s] == 0 {
				r[d] = 0
			} else {
				r[d] /= r[s]
			}
		case opDiv32K:
			r[d] = uint64(uint32(r[d]) / uint32(in.imm))
		case opDiv32X:
			if uint32(r[s]) == 0 {
				r[d] = 0
			} else {
				r[d] = uint64(uint32(r[d]) / uint32(r[s]))
			}
		case opSDiv64K: // Go's MinInt64 / -1 is MinInt64, as the kernel's
			r[d] = uint64(int64(r[d]) / int64(in.imm))
		case opSDiv64X:
			if r[s] == 0 {
				r[d] = 0
			} else {
				r[d] = uint64(int64(r[d]) / int64(r[s]))
			}
		case opSDiv32K:
			r[d] = uint64(uint32(int32(r[d]) / int32(in.imm)))
		case opSDiv32X:
			if uint32(r[s]) == 0 {
				r[d] = 0
			} else {
				r[d] = uint64(uint32(int32(r[d]) / int32(r[s])))
			}
		case opOr64K:
			r[d] |= in.imm
		case opOr64X:
			r[d] |= r[s]
		case opOr32K:
			r[d] = uint64(uint32(r[d]) | uint32(in.imm))
		case opOr32X:
			r[d] = uint64(uint32(r[d]) | uint32(r[s]))
		case opAnd64K:
			r[d] &= in.imm
		case opAnd64X:
			r[d] &= r[s]
		case opAnd32K:
			r[d] = uint64(uint32(r[d]) & uint32(in.imm))
		case opAnd32X:
			r[d] = uint64(uint32(r[d]) & uint32(r[s]))
		case opLsh64K: // decode masked the count
			r[d] <<= in.imm
		case opLsh64X:
			r[d] <<= r[s] & 63
		case opLsh32K:
			r[d] = uint64(uint32(r[d]) << in.imm)
		case opLsh32X:
			r[d] = uint64(uint32(r[d]) << (r[s] & 31))
		case opRsh64K:
			r[d] >>= in.imm
		case opRsh64X:
			r[d] >>= r[s] & 63
		case opRsh32K:
			r[d] = uint64(uint32(r[d]) >> in.imm)
		case opRsh32X:
			r[d] = uint64(uint32(r[d]) >> (r[s] & 31))
		case opMod64K: // decode made a modulo by 0 a no-op
			r[d] %= in.imm
		case opMod64X:
			if r[s] != 0 {
				r[d] %= r[s]
			}
		case opMod32K:
			r[d] = uint64(uint32(r[d]) % uint32(in.imm))
		case opMod32X:
			if uint32(r[s]) != 0 {
				r[d] = uint64(uint32(r[d]) % uint32(r[s]))
			} else {
				r[d] = uint64(uint32(r[d]))
			}
		case opSMod64K:
			r[d] = uint64(int64(r[d]) % int64(in.imm))
		case opSMod64X:
			if r[s] != 0 {
				r[d] = uint64(int64(r[d]) % int64(r[s]))
			}
		case opSMod32K:
			r[d] = uint64(uint32(int32(r[d]) % int32(in.imm)))
		case opSMod32X:
			if uint32(r[s]) != 0 {
				r[d] = uint64(uint32(int32(r[d]) % int32(r[s])))
			} else {
				r[d] = uint64(uint32(r[d]))
			}
		case opXor64K:
			r[d] ^= in.imm
		case opXor64X:
			r[d] ^= r[s]
		case opXor32K:
			r[d] = uint64(uint32(r[d]) ^ uint32(in.imm))
		case opXor32X:
			r[d] = uint64(uint32(r[d]) ^ uint32(r[s]))
		case opMov64K:
			r[d] = in.imm
		case opMov64X:
			r[d] = r[s]
		case opMov32K:
			r[d] = uint64(uint32(in.imm))
		case opMov32X:
			r[d] = uint64(uint32(r[s]))
		case opArsh64K:
			r[d] = uint64(int64(r[d]) >> in.imm)
		case opArsh64X:
			r[d] = uint64(int64(r[d]) >> (r[s] & 63))
		case opArsh32K:
			r[d] = uint64(uint32(int32(r[d]) >> in.imm))
		case opArsh32X:
			r[d] = uint64(uint32(int32(r[d]) >> (r[s] & 31)))
		case opNeg64:
			r[d] = -r[d]
		case opNeg32:
			r[d] = uint64(-uint32(r[d]))
		case opMovSX8to64:
			r[d] = uint64(int64(int8(r[s])))
		case opMovSX16to64:
			r[d] = uint64(int64(int16(r[s])))
		case opMovSX32to64:
			r[d] = uint64(int64(int32(r[s])))
		case opMovSX8to32:
			r[d] = uint64(uint32(int32(int8(r[s]))))
		case opMovSX16to32:
			r[d] = uint64(uint32(int32(int16(r[s]))))
		case opZext16:
			r[d] = uint64(uint16(r[d]))
		case opZext32:
			r[d] = uint64(uint32(r[d]))
		case opBswap16:
			r[d] = uint64(bits.ReverseBytes16(uint16(r[d])))
		case opBswap32:
			r[d] = uint64(bits.ReverseBytes32(uint32(r[d])))
		case opBswap64:
			r[d] = bits.ReverseBytes64(r[d])
		case opNop:

		case opJeq64K:
			if r[d] == in.imm {
				goto taken
			}
		case opJeq64X:
			if r[d] == r[s] {
				goto taken
			}
		case opJeq32K:
			if uint32(r[d]) == uint32(in.imm) {
				goto taken
			}
		case opJeq32X:
			if uint32(r[d]) == uint32(r[s]) {
				goto taken
			}
		case opJgt64K:
			if r[d] > in.imm {
				goto taken
			}
		case opJgt64X:
			if r[d] > r[s] {
				goto taken
			}
		case opJgt32K:
			if uint32(r[d]) > uint32(in.imm) {
				goto taken
			}
		case opJgt32X:
			if uint32(r[d]) > uint32(r[s]) {
				goto taken
			}
		case opJge64K:
			if r[d] >= in.imm {
				goto taken
			}
		case opJge64X:
			if r[d] >= r[s] {
				goto taken
			}
		case opJge32K:
			if uint32(r[d]) >= uint32(in.imm) {
				goto taken
			}
		case opJge32X:
			if uint32(r[d]) >= uint32(r[s]) {
				goto taken
			}
		case opJset64K:
			if r[d]&in.imm != 0 {
				goto taken
			}
		case opJset64X:
			if r[d]&r[s] != 0 {
				goto taken
			}
		case opJset32K:
			if uint32(r[d])&uint32(in.imm) != 0 {
				goto taken
			}
		case opJset32X:
			if uint32(r[d])&uint32(r[s]) != 0 {
				goto taken
			}
		case opJne64K:
			if r[d] != in.imm {
				goto taken
			}
		case opJne64X:
			if r[d] != r[s] {
				goto taken
			}
		case opJne32K:
			if uint32(r[d]) != uint32(in.imm) {
				goto taken
			}
		case opJne32X:
			if uint32(r[d]) != uint32(r[s]) {
				goto taken
			}
		case opJsgt64K:
			if int64(r[d]) > int64(in.imm) {
				goto taken
			}
		case opJsgt64X:
			if int64(r[d]) > int64(r[s]) {
				goto taken
			}
		case opJsgt32K:
			if int32(r[d]) > int32(in.imm) {
				goto taken
			}
		case opJsgt32X:
			if int32(r[d]) > int32(r[s]) {
				goto taken
			}
		case opJsge64K:
			if int64(r[d]) >= int64(in.imm) {
				goto taken
			}
		case opJsge64X:
			if int64(r[d]) >= int64(r[s]) {
				goto taken
			}
		case opJsge32K:
			if int32(r[d]) >= int32(in.imm) {
				goto taken
			}
		case opJsge32X:
			if int32(r[d]) >= int32(r[s]) {
				goto taken
			}
		case opJlt64K:
			if r[d] < in.imm {
				goto taken
			}
		case opJlt64X:
			if r[d] < r[s] {
				goto taken
			}
		case opJlt32K:
			if uint32(r[d]) < uint32(in.imm) {
				goto taken
			}
		case opJlt32X:
			if uint32(r[d]) < uint32(r[s]) {
				goto taken
			}
		case opJle64K:
			if r[d] <= in.imm {
				goto taken
			}
		case opJle64X:
			if r[d] <= r[s] {
				goto taken
			}
		case opJle32K:
			if uint32(r[d]) <= uint32(in.imm) {
				goto taken
			}
		case opJle32X:
			if uint32(r[d]) <= uint32(r[s]) {
				goto taken
			}
		case opJslt64K:
			if int64(r[d]) < int64(in.imm) {
				goto taken
			}
		case opJslt64X:
			if int64(r[d]) < int64(r[s]) {
				goto taken
			}
		case opJslt32K:
			if int32(r[d]) < int32(in.imm) {
				goto taken
			}
		case opJslt32X:
			if int32(r[d]) < int32(r[s]) {
				goto taken
			}
		case opJsle64K:
			if int64(r[d]) <= int64(in.imm) {
				goto taken
			}
		case opJsle64X:
			if int64(r[d]) <= int64(r[s]) {
				goto taken
			}
		case opJsle32K:
			if int32(r[d]) <= int32(in.imm) {
				goto taken
			}
		case opJsle32X:
			if int32(r[d]) <= int32(r[s]) {
				goto taken
			}
		case opJa:
			goto taken
		case opMayGoto:
			if e.mayGoto[e.depth] == 0 {
				goto taken
			}
			e.mayGoto[e.depth]--

		case opCall:
			e.pc = pc
			x, err := v.call(e, in, &r)
			if err != nil {
				return 0, v.fail(pc, err)
			}
			r[0] = x
		case opCallX:
			e.pc = pc
			x, err := v.callX(e, r[d], &r)
			if err != nil {
				return 0, v.fail(pc, err)
			}
			r[0] = x
		case opCallPC:
			if e.depth+1 >= MaxFrames {
				return 0, v.fail(pc, fmt.Errorf("%w: the call would make %d frames, more than %d", ErrCall, e.depth+2, MaxFrames))
			}
			f := &e.frames[e.depth]
			f.ret, f.regs = pc+1, [4]uint64{r[6], r[7], r[8], r[9]}
			e.depth++
			r[10] -= StackSize
			e.regions[regionStack].lo -= StackSize
			e.clearStack(e.depth)
			e.mayGoto[e.depth] = mayGotoLoops
			goto taken
		case opExit:
			if e.depth == 0 {
				return r[0], nil
			}
			e.depth--
			f := &e.frames[e.depth]
			r[6], r[7], r[8], r[9] = f.regs[0], f.regs[1], f.regs[2], f.regs[3]
			r[10] += StackSize
			e.regions[regionStack].lo += StackSize
			budget -= pc + 1 - start
			if budget < 0 {
				return 0, v.fail(pc, v.budgetError())
			}
			pc, start = f.ret, f.ret
			continue

		case opLdxB:
			a := r[s] + uint64(int64(in.off))
			if p := e.load(a, 1); p != nil {
				r[d] = uint64(p[0])
			} else if x, err := e.slowLoad(a, 1); err == nil {
				r[d] = x
			} else {
				return 0, v.fail(pc, err)
			}
		case opLdxH:
			a := r[s] + uint64(int64(in.off))
			if p := e.load(a, 2); p != nil {
				r[d] = uint64(le.Uint16(p))
			} else if x, err := e.slowLoad(a, 2); err == nil {
				r[d] = x
			} else {
				return 0, v.fail(pc, err)
			}
		case opLdxW:
			a := r[s] + uint64(int64(in.off))
			if p := e.load(a, 4); p != nil {
				r[d] = uint64(le.Uint32(p))
			} else if x, err := e.slowLoad(a, 4); err == nil {
				r[d] = x
			} else {
				return 0, v.fail(pc, err)
			}
		case opLdxDW:
			a := r[s] + uint64(int64(in.off))
			if p := e.load(a, 8); p != nil {
				r[d] = le.Uint64(p)
			} else if x, err := e.slowLoad(a, 8); err == nil {
				r[d] = x
			} else {
				return 0, v.fail(pc, err)
			}
		case opLdxsB:
			a := r[s] + uint64(int64(in.off))
			if p := e.load(a, 1); p != nil {
				r[d] = uint64(int64(int8(p[0])))
			} else if x, err := e.slowLoad(a, 1); err == nil {
				r[d] = uint64(int64(int8(x)))
			} else {
				return 0, v.fail(pc, err)
			}
		case opLdxsH:
			a := r[s] + uint64(int64(in.off))
			if p := e.load(a, 2); p != nil {
				r[d] = uint64(int64(int16(le.Uint16(p))))
			} else if x, err := e.slowLoad(a, 2); err == nil {
				r[d] = uint64(int64(int16(x)))
			} else {
				return 0, v.fail(pc, err)
			}
		case opLdxsW:
			a := r[s] + uint64(int64(in.off))
			if p := e.load(a, 4); p != nil {
				r[d] = uint64(int64(int32(le.Uint32(p))))
			} else if x, err := e.slowLoad(a, 4); err == nil {
				r[d] = uint64(int64(int32(x)))
			} else {
				return 0, v.fail(pc, err)
			}
		case opStB, opStH, opStW, opStDW:
			if err := e.storeValue(r[d]+uint64(int64(in.off)), 1<<(in.op-opStB), in.imm); err != nil {
				return 0, v.fail(pc, err)
			}
		case opStxB, opStxH, opStxW, opStxDW:
			if err := e.storeValue(r[d]+uint64(int64(in.off)), 1<<(in.op-opStxB), r[s]); err != nil {
				return 0, v.fail(pc, err)
			}
		case opAtomic32, opAtomic64:
			if err := e.atomic(in, &r); err != nil {
				return 0, v.fail(pc, err)
			}

		case opLdAbsB, opLdAbsH, opLdAbsW:
			if r[6] != ctxAddr || !e.hasSkb {
				return 0, v.fail(pc, e.noSkb())
			}
			o := e.base[in.aux&3] + int(in.off)
			x, ok := e.pktLoad(o, in.op-opLdAbsB)
			if !ok {
				return 0, nil
			}
			r[0] = x
		case opLdIndB, opLdIndH, opLdIndW:
			if r[6] != ctxAddr || !e.hasSkb {
				return 0, v.fail(pc, e.noSkb())
			}
			o, ok := e.indOffset(int32(uint32(r[s] + in.imm)))
			if !ok {
				return 0, nil
			}
			x, ok := e.pktLoad(o, in.op-opLdIndB)
			if !ok {
				return 0, nil
			}
			r[0] = x
		case opLdFail:
			if r[6] != ctxAddr || !e.hasSkb {
				return 0, v.fail(pc, e.noSkb())
			}
			return 0, nil
		case opInvalid:
			return 0, v.fail(pc, fmt.Errorf("internal error: operation %d", in.op))
		}
		pc++
		continue

	taken:
		// A jump or call to in.off: count the straight run that ends here.
		budget -= pc + 1 - start
		if budget < 0 {
			return 0, v.fail(pc, v.budgetError())
		}
		pc = int(in.off)
		start = pc
	}
}

// fail returns the *Error of instruction pc.
func (v *VM) fail(pc int, err error) error {
	return &Error{Index: pc, Instruction: v.insns[pc], Err: err}
}

func (v *VM) budgetError() error {
	return fmt.Errorf("%w: the run executed more than %d instructions (Options.Budget)", ErrBudget, v.budget)
}

// storeValue writes the n low bytes of x at a.
func (e *Env) storeValue(a, n, x uint64) error {
	p := e.store(a, n)
	if p == nil {
		return e.slowStore(a, n, x)
	}
	writeLE(p, n, x)
	return nil
}

// atomic runs an atomic read-modify-write. A run is single-threaded and
// its stack its own, so the operations need no synchronisation; memory a
// helper exposes is the helper's to guard.
func (e *Env) atomic(in *insn, r *[16]uint64) error {
	n := uint64(4)
	if in.op == opAtomic64 {
		n = 8
	}
	a := r[in.dst&15] + uint64(int64(in.off))
	p := e.store(a, n)
	if p == nil {
		return e.fault("atomic update", a, n)
	}
	old := readLE(p, n)
	src := r[in.src&15]
	var x uint64
	switch in.aux &^ atomicFetch {
	case atomicAdd:
		x = old + src
	case atomicOr:
		x = old | src
	case atomicAnd:
		x = old & src
	case atomicXor:
		x = old ^ src
	case atomicXchg:
		x = src
	case atomicCmpXchg:
		// r0 = the old value, zero-extended; the store happens when it
		// equals r0 (its low 32 bits for u32).
		x = old
		if n == 4 && uint32(old) == uint32(r[0]) || n == 8 && old == r[0] {
			x = src
		}
		r[0] = old
		writeLE(p, n, x)
		return nil
	}
	writeLE(p, n, x)
	if in.aux&atomicFetch != 0 {
		r[in.src&15] = old
	}
	return nil
}
