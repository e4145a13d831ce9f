package vm

import (
	"math/bits"

	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/sockfilter/skb"
)

// exec runs the filter on pkt, the frame from its link-layer header, whose
// headers base gives, and returns the low half of r0, all a socket
// filter's caller sees. fc is the socket buffer, which only programs that
// read the context need (filter.needs): the others run without it.
func (f *filter) exec(pkt []byte, base *[4]int, fc *frameCtx) uint32 {
	r := f.regs // the registers, renamed (see rename)
	pc := int(uint32(f.start))
	for {
		ret, at := f.run(&r, pkt, base, pc)
		if at < 0 {
			return ret
		}
		pc = f.slow(&r, at, fc)
	}
}

// slow runs the instruction at pc that run leaves to it, one that calls a
// function or that compiled filters do not have, and returns the next.
func (f *filter) slow(r *[filterRegs]uint64, pc int, fc *frameCtx) int {
	in := &f.code[pc]
	d := in.dst & 7
	switch in.op {
	case fALUK:
		r[d] = aluOp(op(in.aux), r[d], in.imm)
	case fALUX:
		r[d] = aluOp(op(in.aux), r[d], r[in.src&7])
	case fLdCtx:
		r[d] = ctxLoad(fc, uint64(uint32(in.off)), uint64(in.aux))
	case fHelper:
		r[0] = f.v.filterCall(fc, asm.HelperFunc(int32(in.imm)))
	case fJsgt64K, fJsgt64X, fJsgt32K, fJsgt32X, fJsge64K, fJsge64X, fJsge32K, fJsge32X:
		if signedTest(in, r) {
			return int(uint32(in.t))
		}
	}
	return int(uint32(in.f))
}

// signedTest is the test of a signed jump, which compiled filters do not
// make.
func signedTest(in *finsn, r *[filterRegs]uint64) bool {
	a, b := r[in.dst&7], in.imm
	if (in.op-fJeq64K)&1 == 1 { // an X variant
		b = r[in.src&7]
	}
	switch in.op {
	case fJsgt64K, fJsgt64X:
		return int64(a) > int64(b)
	case fJsgt32K, fJsgt32X:
		return int32(a) > int32(b)
	case fJsge64K, fJsge64X:
		return int64(a) >= int64(b)
	}
	return int32(a) >= int32(b)
}

// run runs the instructions of the filter from pc on the registers r,
// until it returns, with the low half of r0 and -1, or meets an
// instruction that calls a function, which it returns the index of for
// slow to run: so that nothing it runs calls a function, and the
// compiler keeps what it works on in machine registers.
//
// Like loop, it is one function with one switch, for the same reasons;
// unlike loop, it has no status to return, for nothing in the filter form
// fails: a legacy load past the end returns 0, as the kernel's does. The
// legacy loads check the frame's bounds once, on offsets of 32 bits, so
// that the compiler proves the reads in bounds. A test is a branch, on
// purpose: selecting the successor without one (which the compiler does
// not do in a loop, and arithmetic can) makes the next instruction's
// address wait for the frame's bytes, where a predicted branch lets the
// processor run ahead; measured, it was half as fast.
func (f *filter) run(r *[filterRegs]uint64, pkt []byte, base *[4]int, pc int) (uint32, int) {
	code := f.code
	_, _ = r[0], base[0] // nil checks, once
	for {
		in := &code[pc]
		next := int(uint32(in.f))
		switch in.op {
		case fMov64K:
			r[in.dst&7] = in.imm
		case fMov64X:
			r[in.dst&7] = r[in.src&7]
		case fMov32K:
			r[in.dst&7] = uint64(uint32(in.imm))
		case fMov32X:
			r[in.dst&7] = uint64(uint32(r[in.src&7]))
		case fAdd64K:
			r[in.dst&7] += in.imm
		case fAdd64X:
			r[in.dst&7] += r[in.src&7]
		case fAdd32K:
			d := in.dst & 7
			r[d] = uint64(uint32(r[d]) + uint32(in.imm))
		case fAdd32X:
			d := in.dst & 7
			r[d] = uint64(uint32(r[d]) + uint32(r[in.src&7]))
		case fAnd64K:
			r[in.dst&7] &= in.imm
		case fAnd32K:
			d := in.dst & 7
			r[d] = uint64(uint32(r[d]) & uint32(in.imm))
		case fOr64K:
			r[in.dst&7] |= in.imm
		case fOr32K:
			d := in.dst & 7
			r[d] = uint64(uint32(r[d]) | uint32(in.imm))
		case fLsh64K:
			r[in.dst&7] <<= in.imm & 63
		case fLsh32K:
			d := in.dst & 7
			r[d] = uint64(uint32(r[d]) << (in.imm & 31))
		case fRsh64K:
			r[in.dst&7] >>= in.imm & 63
		case fRsh32K:
			d := in.dst & 7
			r[d] = uint64(uint32(r[d]) >> (in.imm & 31))
		case fSub32K:
			d := in.dst & 7
			r[d] = uint64(uint32(r[d]) - uint32(in.imm))
		case fMul32K:
			d := in.dst & 7
			r[d] = uint64(uint32(r[d]) * uint32(in.imm))
		case fXor32K:
			d := in.dst & 7
			r[d] = uint64(uint32(r[d]) ^ uint32(in.imm))
		case fDiv32K, fMod32K:
			r[in.dst&7] = aluOp32K(in.op, uint32(r[in.dst&7]), uint32(in.imm))
		case fDiv32X:
			r[in.dst&7] = aluOp32K(fDiv32K, uint32(r[in.dst&7]), uint32(r[in.src&7]))
		case fMod32X:
			r[in.dst&7] = aluOp32K(fMod32K, uint32(r[in.dst&7]), uint32(r[in.src&7]))
		case fMovMask:
			r[in.dst&7] = r[in.src&7] & in.imm
		case fNeg32:
			d := in.dst & 7
			r[d] = uint64(-uint32(r[d]))
		case fALUK, fALUX, fLdCtx, fHelper, fJsgt64K, fJsgt64X, fJsgt32K, fJsgt32X,
			fJsge64K, fJsge64X, fJsge32K, fJsge32X:
			return 0, pc // slow runs them

		case fJeq64K:
			if r[in.dst&7] == in.imm {
				next = int(uint32(in.t))
			}
		case fJeq64X:
			if r[in.dst&7] == r[in.src&7] {
				next = int(uint32(in.t))
			}
		case fJeq32K:
			if uint32(r[in.dst&7]) == uint32(in.imm) {
				next = int(uint32(in.t))
			}
		case fJeq32X:
			if uint32(r[in.dst&7]) == uint32(r[in.src&7]) {
				next = int(uint32(in.t))
			}
		case fJgt64K:
			if r[in.dst&7] > in.imm {
				next = int(uint32(in.t))
			}
		case fJgt64X:
			if r[in.dst&7] > r[in.src&7] {
				next = int(uint32(in.t))
			}
		case fJgt32K:
			if uint32(r[in.dst&7]) > uint32(in.imm) {
				next = int(uint32(in.t))
			}
		case fJgt32X:
			if uint32(r[in.dst&7]) > uint32(r[in.src&7]) {
				next = int(uint32(in.t))
			}
		case fJge64K:
			if r[in.dst&7] >= in.imm {
				next = int(uint32(in.t))
			}
		case fJge64X:
			if r[in.dst&7] >= r[in.src&7] {
				next = int(uint32(in.t))
			}
		case fJge32K:
			if uint32(r[in.dst&7]) >= uint32(in.imm) {
				next = int(uint32(in.t))
			}
		case fJge32X:
			if uint32(r[in.dst&7]) >= uint32(r[in.src&7]) {
				next = int(uint32(in.t))
			}
		case fJset64K:
			if r[in.dst&7]&in.imm != 0 {
				next = int(uint32(in.t))
			}
		case fJset64X:
			if r[in.dst&7]&r[in.src&7] != 0 {
				next = int(uint32(in.t))
			}
		case fJset32K:
			if uint32(r[in.dst&7])&uint32(in.imm) != 0 {
				next = int(uint32(in.t))
			}
		case fJset32X:
			if uint32(r[in.dst&7])&uint32(r[in.src&7]) != 0 {
				next = int(uint32(in.t))
			}
		case fJa:
			next = int(uint32(in.t))
		case fRet:
			return uint32(in.imm), -1
		case fExit:
			return uint32(r[0]), -1

		case fLdAbsB:
			x, ok := load1(pkt, absOff(base, in))
			if !ok {
				return 0, -1
			}
			r[0] = uint64(x)
		case fLdAbsH:
			x, ok := load2(pkt, absOff(base, in))
			if !ok {
				return 0, -1
			}
			r[0] = uint64(x)
		case fLdAbsW:
			x, ok := load4(pkt, absOff(base, in))
			if !ok {
				return 0, -1
			}
			r[0] = uint64(x)
		case fLdIndB:
			x, ok := load1(pkt, indOff(base, r[in.src&7], in))
			if !ok {
				return 0, -1
			}
			r[0] = uint64(x)
		case fLdIndH:
			x, ok := load2(pkt, indOff(base, r[in.src&7], in))
			if !ok {
				return 0, -1
			}
			r[0] = uint64(x)
		case fLdIndW:
			x, ok := load4(pkt, indOff(base, r[in.src&7], in))
			if !ok {
				return 0, -1
			}
			r[0] = uint64(x)
		case fLdAbsBEq:
			x, ok := load1(pkt, absOff(base, in))
			if !ok {
				return 0, -1
			}
			x &= in.mask
			r[0] = uint64(x)
			if x == in.k {
				next = int(uint32(in.t))
			}
		case fLdAbsBGt:
			x, ok := load1(pkt, absOff(base, in))
			if !ok {
				return 0, -1
			}
			x &= in.mask
			r[0] = uint64(x)
			if x > in.k {
				next = int(uint32(in.t))
			}
		case fLdAbsBGe:
			x, ok := load1(pkt, absOff(base, in))
			if !ok {
				return 0, -1
			}
			x &= in.mask
			r[0] = uint64(x)
			if x >= in.k {
				next = int(uint32(in.t))
			}
		case fLdAbsBSet:
			x, ok := load1(pkt, absOff(base, in))
			if !ok {
				return 0, -1
			}
			x &= in.mask
			r[0] = uint64(x)
			if x&in.k != 0 {
				next = int(uint32(in.t))
			}
		case fLdAbsHEq:
			x, ok := load2(pkt, absOff(base, in))
			if !ok {
				return 0, -1
			}
			x &= in.mask
			r[0] = uint64(x)
			if x == in.k {
				next = int(uint32(in.t))
			}
		case fLdAbsHGt:
			x, ok := load2(pkt, absOff(base, in))
			if !ok {
				return 0, -1
			}
			x &= in.mask
			r[0] = uint64(x)
			if x > in.k {
				next = int(uint32(in.t))
			}
		case fLdAbsHGe:
			x, ok := load2(pkt, absOff(base, in))
			if !ok {
				return 0, -1
			}
			x &= in.mask
			r[0] = uint64(x)
			if x >= in.k {
				next = int(uint32(in.t))
			}
		case fLdAbsHSet:
			x, ok := load2(pkt, absOff(base, in))
			if !ok {
				return 0, -1
			}
			x &= in.mask
			r[0] = uint64(x)
			if x&in.k != 0 {
				next = int(uint32(in.t))
			}
		case fLdAbsWEq:
			x, ok := load4(pkt, absOff(base, in))
			if !ok {
				return 0, -1
			}
			x &= in.mask
			r[0] = uint64(x)
			if x == in.k {
				next = int(uint32(in.t))
			}
		case fLdAbsWGt:
			x, ok := load4(pkt, absOff(base, in))
			if !ok {
				return 0, -1
			}
			x &= in.mask
			r[0] = uint64(x)
			if x > in.k {
				next = int(uint32(in.t))
			}
		case fLdAbsWGe:
			x, ok := load4(pkt, absOff(base, in))
			if !ok {
				return 0, -1
			}
			x &= in.mask
			r[0] = uint64(x)
			if x >= in.k {
				next = int(uint32(in.t))
			}
		case fLdAbsWSet:
			x, ok := load4(pkt, absOff(base, in))
			if !ok {
				return 0, -1
			}
			x &= in.mask
			r[0] = uint64(x)
			if x&in.k != 0 {
				next = int(uint32(in.t))
			}
		case fLdIndBEq:
			x, ok := load1(pkt, indOff(base, r[in.src&7], in))
			if !ok {
				return 0, -1
			}
			x &= in.mask
			r[0] = uint64(x)
			if x == in.k {
				next = int(uint32(in.t))
			}
		case fLdIndBGt:
			x, ok := load1(pkt, indOff(base, r[in.src&7], in))
			if !ok {
				return 0, -1
			}
			x &= in.mask
			r[0] = uint64(x)
			if x > in.k {
				next = int(uint32(in.t))
			}
		case fLdIndBGe:
			x, ok := load1(pkt, indOff(base, r[in.src&7], in))
			if !ok {
				return 0, -1
			}
			x &= in.mask
			r[0] = uint64(x)
			if x >= in.k {
				next = int(uint32(in.t))
			}
		case fLdIndBSet:
			x, ok := load1(pkt, indOff(base, r[in.src&7], in))
			if !ok {
				return 0, -1
			}
			x &= in.mask
			r[0] = uint64(x)
			if x&in.k != 0 {
				next = int(uint32(in.t))
			}
		case fLdIndHEq:
			x, ok := load2(pkt, indOff(base, r[in.src&7], in))
			if !ok {
				return 0, -1
			}
			x &= in.mask
			r[0] = uint64(x)
			if x == in.k {
				next = int(uint32(in.t))
			}
		case fLdIndHGt:
			x, ok := load2(pkt, indOff(base, r[in.src&7], in))
			if !ok {
				return 0, -1
			}
			x &= in.mask
			r[0] = uint64(x)
			if x > in.k {
				next = int(uint32(in.t))
			}
		case fLdIndHGe:
			x, ok := load2(pkt, indOff(base, r[in.src&7], in))
			if !ok {
				return 0, -1
			}
			x &= in.mask
			r[0] = uint64(x)
			if x >= in.k {
				next = int(uint32(in.t))
			}
		case fLdIndHSet:
			x, ok := load2(pkt, indOff(base, r[in.src&7], in))
			if !ok {
				return 0, -1
			}
			x &= in.mask
			r[0] = uint64(x)
			if x&in.k != 0 {
				next = int(uint32(in.t))
			}
		case fLdIndWEq:
			x, ok := load4(pkt, indOff(base, r[in.src&7], in))
			if !ok {
				return 0, -1
			}
			x &= in.mask
			r[0] = uint64(x)
			if x == in.k {
				next = int(uint32(in.t))
			}
		case fLdIndWGt:
			x, ok := load4(pkt, indOff(base, r[in.src&7], in))
			if !ok {
				return 0, -1
			}
			x &= in.mask
			r[0] = uint64(x)
			if x > in.k {
				next = int(uint32(in.t))
			}
		case fLdIndWGe:
			x, ok := load4(pkt, indOff(base, r[in.src&7], in))
			if !ok {
				return 0, -1
			}
			x &= in.mask
			r[0] = uint64(x)
			if x >= in.k {
				next = int(uint32(in.t))
			}
		case fLdIndWSet:
			x, ok := load4(pkt, indOff(base, r[in.src&7], in))
			if !ok {
				return 0, -1
			}
			x &= in.mask
			r[0] = uint64(x)
			if x&in.k != 0 {
				next = int(uint32(in.t))
			}
		case fLdLenEq:
			x := skbLen(pkt, base) & in.mask
			r[in.dst&7] = uint64(x)
			if x == in.k {
				next = int(uint32(in.t))
			}
		case fLdLenGt:
			x := skbLen(pkt, base) & in.mask
			r[in.dst&7] = uint64(x)
			if x > in.k {
				next = int(uint32(in.t))
			}
		case fLdLenGe:
			x := skbLen(pkt, base) & in.mask
			r[in.dst&7] = uint64(x)
			if x >= in.k {
				next = int(uint32(in.t))
			}
		case fLdLenSet:
			x := skbLen(pkt, base) & in.mask
			r[in.dst&7] = uint64(x)
			if x&in.k != 0 {
				next = int(uint32(in.t))
			}
		case fLdAbsBEq2:
			x, ok := load1(pkt, absOff(base, in))
			if !ok {
				return 0, -1
			}
			x &= in.mask
			r[0] = uint64(x)
			if x == in.k {
				next = int(uint32(in.t))
			} else if x == uint32(in.imm) {
				next = int(uint32(in.imm >> 32))
			}
		case fLdAbsHEq2:
			x, ok := load2(pkt, absOff(base, in))
			if !ok {
				return 0, -1
			}
			x &= in.mask
			r[0] = uint64(x)
			if x == in.k {
				next = int(uint32(in.t))
			} else if x == uint32(in.imm) {
				next = int(uint32(in.imm >> 32))
			}
		case fLdAbsWEq2:
			x, ok := load4(pkt, absOff(base, in))
			if !ok {
				return 0, -1
			}
			x &= in.mask
			r[0] = uint64(x)
			if x == in.k {
				next = int(uint32(in.t))
			} else if x == uint32(in.imm) {
				next = int(uint32(in.imm >> 32))
			}
		case fLdIndBEq2:
			x, ok := load1(pkt, indOff(base, r[in.src&7], in))
			if !ok {
				return 0, -1
			}
			x &= in.mask
			r[0] = uint64(x)
			if x == in.k {
				next = int(uint32(in.t))
			} else if x == uint32(in.imm) {
				next = int(uint32(in.imm >> 32))
			}
		case fLdIndHEq2:
			x, ok := load2(pkt, indOff(base, r[in.src&7], in))
			if !ok {
				return 0, -1
			}
			x &= in.mask
			r[0] = uint64(x)
			if x == in.k {
				next = int(uint32(in.t))
			} else if x == uint32(in.imm) {
				next = int(uint32(in.imm >> 32))
			}
		case fLdIndWEq2:
			x, ok := load4(pkt, indOff(base, r[in.src&7], in))
			if !ok {
				return 0, -1
			}
			x &= in.mask
			r[0] = uint64(x)
			if x == in.k {
				next = int(uint32(in.t))
			} else if x == uint32(in.imm) {
				next = int(uint32(in.imm >> 32))
			}
		case fLdLenEq2:
			x := skbLen(pkt, base) & in.mask
			r[in.dst&7] = uint64(x)
			if x == in.k {
				next = int(uint32(in.t))
			} else if x == uint32(in.imm) {
				next = int(uint32(in.imm >> 32))
			}
		case fJeq32K2:
			if x := uint32(r[in.dst&7]); x == in.k {
				next = int(uint32(in.t))
			} else if x == uint32(in.imm) {
				next = int(uint32(in.imm >> 32))
			}
		case fMSH:
			x, ok := load1(pkt, absOff(base, in))
			if !ok {
				return 0, -1
			}
			r[0] = uint64(x)
			r[in.dst&7] = uint64(x&in.mask) << (in.k & 31)
		case fLdLen:
			r[in.dst&7] = uint64(skbLen(pkt, base))
		case fSkbLoad:
			if _, ok := loadBytes(pkt, base, uint64(uint32(r[in.src&7])), uint64(in.k)); ok {
				r[0] = 0
			} else {
				r[0] = efault
			}
		case fSkbLoadRel:
			if _, ok := loadBytesRelative(pkt, base, uint64(uint32(r[in.src&7])), uint64(in.k), uint64(in.mask)); ok {
				r[0] = 0
			} else {
				r[0] = efault
			}
		case fSkbLoadZ:
			r[0] = efault
			if _, ok := loadBytes(pkt, base, uint64(uint32(r[in.src&7])), uint64(in.k)); ok {
				r[0], next = 0, int(uint32(in.t))
			}
		case fSkbLoadRelZ:
			r[0] = efault
			if _, ok := loadBytesRelative(pkt, base, uint64(uint32(r[in.src&7])), uint64(in.k), uint64(in.mask)); ok {
				r[0], next = 0, int(uint32(in.t))
			}
		case fJeq64KRet:
			return sel(eq(r[in.dst&7], in.imm), in.t, in.f), -1
		case fJeq32KRet:
			return sel(eq(uint64(uint32(r[in.dst&7])), uint64(uint32(in.imm))), in.t, in.f), -1
		case fJgt64KRet:
			return sel(gt(r[in.dst&7], in.imm), in.t, in.f), -1
		case fJgt32KRet:
			return sel(gt(uint64(uint32(r[in.dst&7])), uint64(uint32(in.imm))), in.t, in.f), -1
		case fJge64KRet:
			return sel(ge(r[in.dst&7], in.imm), in.t, in.f), -1
		case fJge32KRet:
			return sel(ge(uint64(uint32(r[in.dst&7])), uint64(uint32(in.imm))), in.t, in.f), -1
		case fJset64KRet:
			return sel(set(r[in.dst&7], in.imm), in.t, in.f), -1
		case fJset32KRet:
			return sel(set(uint64(uint32(r[in.dst&7])), uint64(uint32(in.imm))), in.t, in.f), -1
		case fLdAbsBEqRet:
			x, ok := load1(pkt, absOff(base, in))
			if !ok {
				return 0, -1
			}
			x &= in.mask
			return sel(eq(uint64(x), uint64(in.k)), in.t, in.f), -1
		case fLdAbsBGtRet:
			x, ok := load1(pkt, absOff(base, in))
			if !ok {
				return 0, -1
			}
			x &= in.mask
			return sel(gt(uint64(x), uint64(in.k)), in.t, in.f), -1
		case fLdAbsBGeRet:
			x, ok := load1(pkt, absOff(base, in))
			if !ok {
				return 0, -1
			}
			x &= in.mask
			return sel(ge(uint64(x), uint64(in.k)), in.t, in.f), -1
		case fLdAbsBSetRet:
			x, ok := load1(pkt, absOff(base, in))
			if !ok {
				return 0, -1
			}
			x &= in.mask
			return sel(set(uint64(x), uint64(in.k)), in.t, in.f), -1
		case fLdAbsHEqRet:
			x, ok := load2(pkt, absOff(base, in))
			if !ok {
				return 0, -1
			}
			x &= in.mask
			return sel(eq(uint64(x), uint64(in.k)), in.t, in.f), -1
		case fLdAbsHGtRet:
			x, ok := load2(pkt, absOff(base, in))
			if !ok {
				return 0, -1
			}
			x &= in.mask
			return sel(gt(uint64(x), uint64(in.k)), in.t, in.f), -1
		case fLdAbsHGeRet:
			x, ok := load2(pkt, absOff(base, in))
			if !ok {
				return 0, -1
			}
			x &= in.mask
			return sel(ge(uint64(x), uint64(in.k)), in.t, in.f), -1
		case fLdAbsHSetRet:
			x, ok := load2(pkt, absOff(base, in))
			if !ok {
				return 0, -1
			}
			x &= in.mask
			return sel(set(uint64(x), uint64(in.k)), in.t, in.f), -1
		case fLdAbsWEqRet:
			x, ok := load4(pkt, absOff(base, in))
			if !ok {
				return 0, -1
			}
			x &= in.mask
			return sel(eq(uint64(x), uint64(in.k)), in.t, in.f), -1
		case fLdAbsWGtRet:
			x, ok := load4(pkt, absOff(base, in))
			if !ok {
				return 0, -1
			}
			x &= in.mask
			return sel(gt(uint64(x), uint64(in.k)), in.t, in.f), -1
		case fLdAbsWGeRet:
			x, ok := load4(pkt, absOff(base, in))
			if !ok {
				return 0, -1
			}
			x &= in.mask
			return sel(ge(uint64(x), uint64(in.k)), in.t, in.f), -1
		case fLdAbsWSetRet:
			x, ok := load4(pkt, absOff(base, in))
			if !ok {
				return 0, -1
			}
			x &= in.mask
			return sel(set(uint64(x), uint64(in.k)), in.t, in.f), -1
		case fLdIndBEqRet:
			x, ok := load1(pkt, indOff(base, r[in.src&7], in))
			if !ok {
				return 0, -1
			}
			x &= in.mask
			return sel(eq(uint64(x), uint64(in.k)), in.t, in.f), -1
		case fLdIndBGtRet:
			x, ok := load1(pkt, indOff(base, r[in.src&7], in))
			if !ok {
				return 0, -1
			}
			x &= in.mask
			return sel(gt(uint64(x), uint64(in.k)), in.t, in.f), -1
		case fLdIndBGeRet:
			x, ok := load1(pkt, indOff(base, r[in.src&7], in))
			if !ok {
				return 0, -1
			}
			x &= in.mask
			return sel(ge(uint64(x), uint64(in.k)), in.t, in.f), -1
		case fLdIndBSetRet:
			x, ok := load1(pkt, indOff(base, r[in.src&7], in))
			if !ok {
				return 0, -1
			}
			x &= in.mask
			return sel(set(uint64(x), uint64(in.k)), in.t, in.f), -1
		case fLdIndHEqRet:
			x, ok := load2(pkt, indOff(base, r[in.src&7], in))
			if !ok {
				return 0, -1
			}
			x &= in.mask
			return sel(eq(uint64(x), uint64(in.k)), in.t, in.f), -1
		case fLdIndHGtRet:
			x, ok := load2(pkt, indOff(base, r[in.src&7], in))
			if !ok {
				return 0, -1
			}
			x &= in.mask
			return sel(gt(uint64(x), uint64(in.k)), in.t, in.f), -1
		case fLdIndHGeRet:
			x, ok := load2(pkt, indOff(base, r[in.src&7], in))
			if !ok {
				return 0, -1
			}
			x &= in.mask
			return sel(ge(uint64(x), uint64(in.k)), in.t, in.f), -1
		case fLdIndHSetRet:
			x, ok := load2(pkt, indOff(base, r[in.src&7], in))
			if !ok {
				return 0, -1
			}
			x &= in.mask
			return sel(set(uint64(x), uint64(in.k)), in.t, in.f), -1
		case fLdIndWEqRet:
			x, ok := load4(pkt, indOff(base, r[in.src&7], in))
			if !ok {
				return 0, -1
			}
			x &= in.mask
			return sel(eq(uint64(x), uint64(in.k)), in.t, in.f), -1
		case fLdIndWGtRet:
			x, ok := load4(pkt, indOff(base, r[in.src&7], in))
			if !ok {
				return 0, -1
			}
			x &= in.mask
			return sel(gt(uint64(x), uint64(in.k)), in.t, in.f), -1
		case fLdIndWGeRet:
			x, ok := load4(pkt, indOff(base, r[in.src&7], in))
			if !ok {
				return 0, -1
			}
			x &= in.mask
			return sel(ge(uint64(x), uint64(in.k)), in.t, in.f), -1
		case fLdIndWSetRet:
			x, ok := load4(pkt, indOff(base, r[in.src&7], in))
			if !ok {
				return 0, -1
			}
			x &= in.mask
			return sel(set(uint64(x), uint64(in.k)), in.t, in.f), -1
		case fLdLenEqRet:
			return sel(eq(uint64(skbLen(pkt, base)&in.mask), uint64(in.k)), in.t, in.f), -1
		case fLdLenGtRet:
			return sel(gt(uint64(skbLen(pkt, base)&in.mask), uint64(in.k)), in.t, in.f), -1
		case fLdLenGeRet:
			return sel(ge(uint64(skbLen(pkt, base)&in.mask), uint64(in.k)), in.t, in.f), -1
		case fLdLenSetRet:
			return sel(set(uint64(skbLen(pkt, base)&in.mask), uint64(in.k)), in.t, in.f), -1
		default: // a bug: decode made every instruction
			return 0, -1
		}
		pc = next
	}
}

// aluOp32K is a 32-bit division or modulo, by a constant decode made
// non-zero or by a register, with aluOp's results for a zero divisor.
func aluOp32K(o fop, a, k uint32) uint64 {
	switch {
	case k == 0 && o == fDiv32K:
		return 0
	case k == 0:
		return uint64(a)
	case o == fDiv32K:
		return uint64(a / k)
	}
	return uint64(a % k)
}

// sel returns t when c is 1 and f when it is 0, without a branch: the
// result of a filter's last test is data, which the processor need not
// predict.
func sel(c uint64, t, f int32) uint32 {
	return uint32(f) ^ (uint32(f)^uint32(t))&-uint32(c)
}

// The tests of the instructions that return: 1 when they hold, 0
// otherwise, computed without a branch.
func eq(a, b uint64) uint64  { return 1 ^ nz(a^b) }
func gt(a, b uint64) uint64  { return lt(b, a) }
func ge(a, b uint64) uint64  { return 1 ^ lt(a, b) }
func set(a, b uint64) uint64 { return nz(a & b) }

// lt is a < b, the borrow of a - b.
func lt(a, b uint64) uint64 {
	_, borrow := bits.Sub64(a, b, 0)
	return borrow
}

// nz is a != 0.
func nz(a uint64) uint64 { return (a | -a) >> 63 }

// absOff returns the byte of the frame the LD_ABS in reads. Its result
// is the sum of two 32-bit numbers, so that the compiler knows it does not
// overflow and proves the reads after a bounds check.
func absOff(base *[4]int, in *finsn) uint {
	return uint(uint32(base[in.aux&3])) + uint(uint32(in.off))
}

// load1, load2 and load4 read 1, 2 or 4 bytes of the frame at o in network
// byte order, or report that the frame is too short.
func load1(pkt []byte, o uint) (uint32, bool) {
	if o >= uint(len(pkt)) {
		return 0, false
	}
	return uint32(pkt[o]), true
}

func load2(pkt []byte, o uint) (uint32, bool) {
	if o+2 > uint(len(pkt)) {
		return 0, false
	}
	p := pkt[o : o+2]
	return uint32(p[0])<<8 | uint32(p[1]), true
}

func load4(pkt []byte, o uint) (uint32, bool) {
	if o+4 > uint(len(pkt)) {
		return 0, false
	}
	p := pkt[o : o+4]
	return uint32(p[0])<<24 | uint32(p[1])<<16 | uint32(p[2])<<8 | uint32(p[3]), true
}

// indOff returns the byte of the frame the LD_IND in reads with x in its
// source register (see indOffset), or an offset past any frame, as the sum
// of two 32-bit numbers (see absOff).
func indOff(base *[4]int, x uint64, in *finsn) uint {
	k := uint32(x) + uint32(in.off)
	var b uint32
	switch s := int32(k); {
	case s >= 0:
		b = uint32(base[baseData])
	case s >= skb.NetOff:
		b, k = uint32(base[baseNet]), uint32(s-skb.NetOff)
	case s >= skb.LLOff:
		b, k = uint32(base[baseMAC]), uint32(s-skb.LLOff)
	default:
		b, k = 1<<32-1, 1<<32-1
	}
	return uint(b) + uint(k)
}

// filterCall runs a helper of the filter form (filterHelper).
func (v *VM) filterCall(fc *frameCtx, fn asm.HelperFunc) uint64 {
	switch fn {
	case asm.FnKtimeGetNs, asm.FnKtimeGetBootNs, asm.FnKtimeGetCoarseNs, asm.FnKtimeGetTaiNs:
		return v.clock()
	case asm.FnGetPrandomU32:
		return uint64(v.rand())
	case asm.FnGetSocketUID:
		return socketUID(fc)
	case asm.FnGetSmpProcessorID:
		return uint64(v.cpu)
	}
	return 0 // numa_node_id
}
