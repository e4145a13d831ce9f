package vm

import (
	"encoding/binary"
	"fmt"

	"github.com/purebpf/purebpf/internal/wire"
)

// machine is the state of a run: the registers, the budget, the Env and
// the socket buffer. It lives on the stack of the Run method.
type machine struct {
	r      [16]uint64
	budget int // instructions left
	start  int // where the straight run being counted started
	// e is nil for programs that use no memory (VM.pure). The frame is
	// not kept here: a *frameCtx stored in a struct that also points to
	// the Env would escape with it to the heap.
	e *Env
}

// status says why loop returned.
type status uint8

const (
	stExit    status = iota // exit from the main program: r0 is the result
	stReject                // a legacy load past the end: the result is 0
	stSlow                  // the instruction needs slow: a call, an atomic, an access to the context, a fault
	stNoSkb                 // a legacy load without the socket buffer in r6
	stBudget                // the budget is spent
	stInvalid               // an operation the VM does not know: a bug
)

// run runs the program from its first instruction with r1 and r2 set, and
// returns r0. It alternates loop, which runs the instructions that need
// nothing but the registers, the stack and the frame, and slow, which
// runs the others.
func (v *VM) run(e *Env, fc *frameCtx, r1, r2 uint64) (uint64, error) {
	var m machine
	m.e, m.budget = e, v.budget
	if e != nil {
		e.start(fc)
		if fc.hasSkb && v.loads {
			e.fillCtx(fc)
		}
	}
	m.r[1], m.r[2], m.r[10] = r1, r2, stackTop
	pc := 0
	if v.prologue {
		// The program starts with r6 = r1, done here.
		m.r[6], pc = r1, 1
	}
	for {
		var st status
		switch pc, st = v.loop(&m, fc.pkt, &fc.base, pc, v.r6ctx && r1 == ctxAddr); st {
		case stExit:
			if e != nil && len(e.reserved) > 0 {
				n := e.releaseRecords()
				return 0, v.fail(pc, fmt.Errorf("%w: the program exits holding %d ring buffer records reserved, which it must submit or discard (the verifier refuses it); the VM discarded them", ErrCall, n))
			}
			return m.r[0], nil
		case stSlow:
			next, err := v.slow(&m, fc, pc)
			if err != nil {
				return 0, v.fail(pc, err)
			}
			pc = next
		default:
			return 0, v.stopped(pc, st, fc)
		}
	}
}

// The offsets of skb->data, the link-layer header and the network
// header in the frame, for each link type and view.
var (
	ethBases  = [4]int{baseData: 0, baseMAC: 0, baseNet: wire.EthernetHeaderLen}
	rawBases  = [4]int{}
	testBases = [4]int{baseData: wire.EthernetHeaderLen, baseMAC: 0, baseNet: wire.EthernetHeaderLen}
)

// runPure is run for a program without an Env (VM.pure) on frame, whose
// headers base gives, as short as it can be.
func (v *VM) runPure(frame []byte, base *[4]int) (uint32, error) {
	var m machine
	m.budget = v.budget
	m.r[1], m.r[10] = ctxAddr, stackTop
	pc := 0
	if v.prologue {
		m.r[6], pc = ctxAddr, 1
	}
	pc, st := v.loop(&m, frame, base, pc, v.r6ctx)
	if st == stExit {
		return uint32(m.r[0]), nil
	}
	return 0, v.stopped(pc, st, nil)
}

// stopped returns the error of a run that stopped at pc with st, or nil
// for a legacy load past the end.
func (v *VM) stopped(pc int, st status, fc *frameCtx) error {
	switch st {
	case stReject:
		return nil
	case stNoSkb:
		return v.fail(pc, noSkb(fc == nil || fc.hasSkb))
	case stBudget:
		return v.fail(pc, v.budgetError())
	}
	return v.fail(pc, fmt.Errorf("internal error: operation %d in %v", v.code[pc].op, st))
}

// loop runs instructions from pc until one it cannot run by itself, and
// returns where it stopped and why.
//
// It is one function with one switch, longer than the guide's hundred
// lines, because that is what makes it fast: the switch over the dense
// internal operations compiles to a jump table; nothing in it calls a
// function but the rarer arithmetic (aluOp) and the rare cases return to
// run, so that the compiler keeps the program counter and the pointers it
// uses in machine registers; and a
// taken jump is a goto to the shared code that counts instructions against
// the budget when it jumps back, so that straight code and forward jumps
// cost nothing for it.
//
// ctxInR6 says that r6 holds the context pointer whenever a legacy load
// runs (VM.r6ctx, and the run has a socket buffer), so that the loads need
// not check.
func (v *VM) loop(m *machine, pkt []byte, base *[4]int, pc int, ctxInR6 bool) (int, status) {
	r := &m.r
	code := v.code
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
		case opNop:
		case opMul64K, opMul64X, opMul32K, opMul32X, opDiv64K, opDiv64X, opDiv32K, opDiv32X,
			opSDiv64K, opSDiv64X, opSDiv32K, opSDiv32X, opMod64K, opMod64X, opMod32K, opMod32X,
			opSMod64K, opSMod64X, opSMod32K, opSMod32X, opArsh64K, opArsh64X, opArsh32K, opArsh32X,
			opNeg64, opNeg32, opMovSX8to64, opMovSX16to64, opMovSX32to64, opMovSX8to32, opMovSX16to32,
			opZext16, opZext32, opBswap16, opBswap32, opBswap64:
			// The rarer operations, in the one place that knows them all.
			b := in.imm
			if aluOperand(in.op) {
				b = r[s]
			}
			r[d] = aluOp(in.op, r[d], b)

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
			if e := m.e; e.mayGoto[e.depth] == 0 {
				goto taken
			} else {
				e.mayGoto[e.depth]--
			}

		case opLdxB:
			if p := m.e.load(r[s]+uint64(int64(in.off)), 1); p != nil {
				r[d] = uint64(p[0])
			} else {
				return pc, stSlow
			}
		case opLdxH:
			if p := m.e.load(r[s]+uint64(int64(in.off)), 2); p != nil {
				r[d] = uint64(le.Uint16(p))
			} else {
				return pc, stSlow
			}
		case opLdxW:
			a := r[s] + uint64(int64(in.off))
			if p := m.e.load(a, 4); p != nil {
				r[d] = uint64(le.Uint32(p))
			} else if o := a & 0xffffffff; a>>32 == regionCtx && m.e.ctxReady && o < ctxSize && ctxRead[o]&4 != 0 {
				// A field of the context, which start built: a u32
				// load reads the whole field.
				r[d] = uint64(le.Uint32(m.e.ctx[o:]))
			} else {
				return pc, stSlow
			}
		case opLdxDW:
			if p := m.e.load(r[s]+uint64(int64(in.off)), 8); p != nil {
				r[d] = le.Uint64(p)
			} else {
				return pc, stSlow
			}
		case opLdxsB:
			if p := m.e.load(r[s]+uint64(int64(in.off)), 1); p != nil {
				r[d] = uint64(int64(int8(p[0])))
			} else {
				return pc, stSlow
			}
		case opLdxsH:
			if p := m.e.load(r[s]+uint64(int64(in.off)), 2); p != nil {
				r[d] = uint64(int64(int16(le.Uint16(p))))
			} else {
				return pc, stSlow
			}
		case opLdxsW:
			if p := m.e.load(r[s]+uint64(int64(in.off)), 4); p != nil {
				r[d] = uint64(int64(int32(le.Uint32(p))))
			} else {
				return pc, stSlow
			}
		case opStB, opStxB:
			x := in.imm
			if in.op == opStxB {
				x = r[s]
			}
			if p := m.e.store(r[d]+uint64(int64(in.off)), 1); p != nil {
				p[0] = byte(x)
			} else {
				return pc, stSlow
			}
		case opStH, opStxH:
			x := in.imm
			if in.op == opStxH {
				x = r[s]
			}
			if p := m.e.store(r[d]+uint64(int64(in.off)), 2); p != nil {
				le.PutUint16(p, uint16(x))
			} else {
				return pc, stSlow
			}
		case opStW, opStxW:
			x := in.imm
			if in.op == opStxW {
				x = r[s]
			}
			if p := m.e.store(r[d]+uint64(int64(in.off)), 4); p != nil {
				le.PutUint32(p, uint32(x))
			} else {
				return pc, stSlow
			}
		case opStDW, opStxDW:
			x := in.imm
			if in.op == opStxDW {
				x = r[s]
			}
			if p := m.e.store(r[d]+uint64(int64(in.off)), 8); p != nil {
				le.PutUint64(p, x)
			} else {
				return pc, stSlow
			}
		case opCall, opCallX, opCallPC, opAtomic32, opAtomic64:
			return pc, stSlow
		case opExit:
			if m.e == nil || m.e.depth == 0 {
				return pc, stExit
			}
			return pc, stSlow
		case opLdAbsB:
			if !ctxInR6 && r[6] != ctxAddr {
				return pc, stNoSkb
			}
			o := uint(base[in.aux&3]) + uint(in.off)
			if o >= uint(len(pkt)) {
				return pc, stReject
			}
			r[0] = uint64(pkt[o])
		case opLdAbsH:
			if !ctxInR6 && r[6] != ctxAddr {
				return pc, stNoSkb
			}
			o := uint(base[in.aux&3]) + uint(in.off)
			if o+2 > uint(len(pkt)) {
				return pc, stReject
			}
			r[0] = uint64(binary.BigEndian.Uint16(pkt[o:]))
		case opLdAbsW:
			if !ctxInR6 && r[6] != ctxAddr {
				return pc, stNoSkb
			}
			o := uint(base[in.aux&3]) + uint(in.off)
			if o+4 > uint(len(pkt)) {
				return pc, stReject
			}
			r[0] = uint64(binary.BigEndian.Uint32(pkt[o:]))
		case opLdIndB, opLdIndH, opLdIndW:
			if !ctxInR6 && r[6] != ctxAddr {
				return pc, stNoSkb
			}
			o, ok := indOffset(base, int32(uint32(r[s]+in.imm)))
			if !ok {
				return pc, stReject
			}
			x, ok := pktLoad(pkt, o, in.op-opLdIndB)
			if !ok {
				return pc, stReject
			}
			r[0] = x
		case opLdFail:
			if !ctxInR6 && r[6] != ctxAddr {
				return pc, stNoSkb
			}
			return pc, stReject
		case opLdAbsBJeq:
			if !ctxInR6 && r[6] != ctxAddr {
				return pc, stNoSkb
			}
			o := uint(base[in.aux&3]) + uint(in.imm>>32)
			if o >= uint(len(pkt)) {
				return pc, stReject
			}
			r[0] = uint64(pkt[o])
			pc++
			if uint32(r[0]) == uint32(in.imm) {
				goto taken
			}
		case opLdAbsBJne:
			if !ctxInR6 && r[6] != ctxAddr {
				return pc, stNoSkb
			}
			o := uint(base[in.aux&3]) + uint(in.imm>>32)
			if o >= uint(len(pkt)) {
				return pc, stReject
			}
			r[0] = uint64(pkt[o])
			pc++
			if uint32(r[0]) != uint32(in.imm) {
				goto taken
			}
		case opLdAbsHJeq:
			if !ctxInR6 && r[6] != ctxAddr {
				return pc, stNoSkb
			}
			o := uint(base[in.aux&3]) + uint(in.imm>>32)
			if o+2 > uint(len(pkt)) {
				return pc, stReject
			}
			r[0] = uint64(binary.BigEndian.Uint16(pkt[o:]))
			pc++
			if uint32(r[0]) == uint32(in.imm) {
				goto taken
			}
		case opLdAbsHJne:
			if !ctxInR6 && r[6] != ctxAddr {
				return pc, stNoSkb
			}
			o := uint(base[in.aux&3]) + uint(in.imm>>32)
			if o+2 > uint(len(pkt)) {
				return pc, stReject
			}
			r[0] = uint64(binary.BigEndian.Uint16(pkt[o:]))
			pc++
			if uint32(r[0]) != uint32(in.imm) {
				goto taken
			}
		case opLdAbsWJeq:
			if !ctxInR6 && r[6] != ctxAddr {
				return pc, stNoSkb
			}
			o := uint(base[in.aux&3]) + uint(in.imm>>32)
			if o+4 > uint(len(pkt)) {
				return pc, stReject
			}
			r[0] = uint64(binary.BigEndian.Uint32(pkt[o:]))
			pc++
			if uint32(r[0]) == uint32(in.imm) {
				goto taken
			}
		case opLdAbsWJne:
			if !ctxInR6 && r[6] != ctxAddr {
				return pc, stNoSkb
			}
			o := uint(base[in.aux&3]) + uint(in.imm>>32)
			if o+4 > uint(len(pkt)) {
				return pc, stReject
			}
			r[0] = uint64(binary.BigEndian.Uint32(pkt[o:]))
			pc++
			if uint32(r[0]) != uint32(in.imm) {
				goto taken
			}
		case opAnd32KJeq:
			r[d] = uint64(uint32(r[d]) & uint32(in.imm>>32))
			pc++
			if uint32(r[d]) == uint32(in.imm) {
				goto taken
			}
		case opAnd32KJne:
			r[d] = uint64(uint32(r[d]) & uint32(in.imm>>32))
			pc++
			if uint32(r[d]) != uint32(in.imm) {
				goto taken
			}
		case opRet:
			r[0] = in.imm
			return pc, stExit
		case opInvalid:
			return pc, stInvalid
		default: // a bug
			return pc, stInvalid
		}
		pc++
		continue

	taken:
		// A jump or call to in.off. Only a jump back can make a loop: it
		// counts the instructions from the last such target to here,
		// those forward jumps skipped included, against the budget.
		if next := int(in.off); next > pc {
			pc = next
		} else {
			m.budget -= pc + 1 - m.start
			if m.budget < 0 {
				return pc, stBudget
			}
			pc, m.start = next, next
		}
	}
}

// slow runs the instruction at pc that loop could not, and returns the
// next one: calls and returns from subprograms, atomics, and the loads
// and stores that are not plain memory (the context, the test run's
// socket) or fail.
func (v *VM) slow(m *machine, fc *frameCtx, pc int) (int, error) {
	in := &v.code[pc]
	e, r := m.e, &m.r
	d, s := in.dst&15, in.src&15
	switch in.op {
	case opLdxB, opLdxH, opLdxW, opLdxDW, opLdxsB, opLdxsH, opLdxsW:
		n := uint64(1) << ((in.op - opLdxB) & 3)
		if in.op >= opLdxsB {
			n = uint64(1) << (in.op - opLdxsB)
		}
		x, err := e.slowLoad(fc, r[s]+uint64(int64(in.off)), n)
		if err != nil {
			return 0, err
		}
		switch in.op {
		case opLdxsB:
			x = uint64(int64(int8(x)))
		case opLdxsH:
			x = uint64(int64(int16(x)))
		case opLdxsW:
			x = uint64(int64(int32(x)))
		}
		r[d] = x
	case opStB, opStH, opStW, opStDW:
		if err := e.storeValue(fc, r[d]+uint64(int64(in.off)), 1<<(in.op-opStB), in.imm); err != nil {
			return 0, err
		}
	case opStxB, opStxH, opStxW, opStxDW:
		if err := e.storeValue(fc, r[d]+uint64(int64(in.off)), 1<<(in.op-opStxB), r[s]); err != nil {
			return 0, err
		}
	case opAtomic32, opAtomic64:
		if err := e.atomic(in, r); err != nil {
			return 0, err
		}
	case opCall, opCallX:
		e.pc = pc
		var x uint64
		var err error
		if in.op == opCall {
			x, err = v.call(e, fc, in, r)
		} else {
			x, err = v.callX(e, fc, r[d], r)
		}
		if err != nil {
			return 0, err
		}
		r[0] = x
	case opCallPC:
		if e.depth+1 >= MaxFrames {
			return 0, fmt.Errorf("%w: the call would make %d frames, more than %d", ErrCall, e.depth+2, MaxFrames)
		}
		f := &e.frames[e.depth]
		f.ret, f.regs = pc+1, [4]uint64{r[6], r[7], r[8], r[9]}
		e.depth++
		r[10] -= StackSize
		e.regions[regionStack].lo -= StackSize
		e.clearStack(e.depth)
		e.mayGoto[e.depth] = mayGotoLoops
		next := int(in.off)
		if next <= pc {
			if m.budget -= pc + 1 - m.start; m.budget < 0 {
				return 0, v.budgetError()
			}
			m.start = next
		}
		return next, nil
	case opExit: // from a subprogram
		e.depth--
		f := &e.frames[e.depth]
		r[6], r[7], r[8], r[9] = f.regs[0], f.regs[1], f.regs[2], f.regs[3]
		r[10] += StackSize
		e.regions[regionStack].lo += StackSize
		if m.budget -= pc + 1 - m.start; m.budget < 0 {
			return 0, v.budgetError()
		}
		m.start = f.ret
		return f.ret, nil
	default:
		return 0, fmt.Errorf("internal error: operation %d has no slow path", in.op)
	}
	return pc + 1, nil
}

// fail returns the *Error of instruction pc.
func (v *VM) fail(pc int, err error) error {
	return &Error{Index: pc, Instruction: v.insns[pc], Err: err}
}

func (v *VM) budgetError() error {
	return fmt.Errorf("%w: the run executed more than %d instructions (Options.Budget)", ErrBudget, v.budget)
}

// storeValue writes the n low bytes of x at a.
func (e *Env) storeValue(fc *frameCtx, a, n, x uint64) error {
	p := e.store(a, n)
	if p == nil {
		return e.slowStore(fc, a, n, x)
	}
	writeLE(p, n, x)
	return nil
}

// atomic runs an atomic read-modify-write. A run is single-threaded and
// its stack its own, so the operations need no synchronisation there;
// map memory, which runs share, gets the processor's atomic instructions
// (atomicShared); memory a helper exposes is the helper's to guard.
func (e *Env) atomic(in *insn, r *[16]uint64) error {
	n := uint64(4)
	if in.op == opAtomic64 {
		n = 8
	}
	a := r[in.dst&15] + uint64(int64(in.off))
	p := e.store(a, n)
	if p == nil {
		if p = e.mapMemory(a, n); p != nil {
			return atomicShared(in, p, r)
		}
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
