package vm

import "math/bits"

// aluOp returns the new value of the destination register of the
// arithmetic operation o (opAdd64K to opNop) applied to a, its value, and
// b, the operand: the immediate for the K variants, the source register
// for the X variants and the sign-extending moves. It is the one place
// that knows the results of every arithmetic operation; the interpreters
// run the commonest ones inline and call it for the others.
//
// Division by 0 gives 0; modulo by 0 leaves the dividend, its low 32 bits
// zero-extended on 32 bits; INT_MIN / -1 is INT_MIN and INT_MIN % -1 is 0
// (as Go computes them); a shift by a register uses the count's low 5 or
// 6 bits (decode masked the immediate counts); every 32-bit result is
// zero-extended.
func aluOp(o op, a, b uint64) uint64 {
	switch o {
	case opAdd64K, opAdd64X:
		return a + b
	case opAdd32K, opAdd32X:
		return uint64(uint32(a) + uint32(b))
	case opSub64K, opSub64X:
		return a - b
	case opSub32K, opSub32X:
		return uint64(uint32(a) - uint32(b))
	case opMul64K, opMul64X:
		return a * b
	case opMul32K, opMul32X:
		return uint64(uint32(a) * uint32(b))
	case opDiv64K, opDiv64X:
		if b == 0 {
			return 0
		}
		return a / b
	case opDiv32K, opDiv32X:
		if uint32(b) == 0 {
			return 0
		}
		return uint64(uint32(a) / uint32(b))
	case opSDiv64K, opSDiv64X:
		if b == 0 {
			return 0
		}
		return uint64(int64(a) / int64(b))
	case opSDiv32K, opSDiv32X:
		if uint32(b) == 0 {
			return 0
		}
		return uint64(uint32(int32(a) / int32(b)))
	case opOr64K, opOr64X:
		return a | b
	case opOr32K, opOr32X:
		return uint64(uint32(a) | uint32(b))
	case opAnd64K, opAnd64X:
		return a & b
	case opAnd32K, opAnd32X:
		return uint64(uint32(a) & uint32(b))
	case opLsh64K, opLsh64X:
		return a << (b & 63)
	case opLsh32K, opLsh32X:
		return uint64(uint32(a) << (b & 31))
	case opRsh64K, opRsh64X:
		return a >> (b & 63)
	case opRsh32K, opRsh32X:
		return uint64(uint32(a) >> (b & 31))
	case opMod64K, opMod64X:
		if b == 0 {
			return a
		}
		return a % b
	case opMod32K, opMod32X:
		if uint32(b) == 0 {
			return uint64(uint32(a))
		}
		return uint64(uint32(a) % uint32(b))
	case opSMod64K, opSMod64X:
		if b == 0 {
			return a
		}
		return uint64(int64(a) % int64(b))
	case opSMod32K, opSMod32X:
		if uint32(b) == 0 {
			return uint64(uint32(a))
		}
		return uint64(uint32(int32(a) % int32(b)))
	case opXor64K, opXor64X:
		return a ^ b
	case opXor32K, opXor32X:
		return uint64(uint32(a) ^ uint32(b))
	case opMov64K, opMov64X:
		return b
	case opMov32K, opMov32X:
		return uint64(uint32(b))
	case opArsh64K, opArsh64X:
		return uint64(int64(a) >> (b & 63))
	case opArsh32K, opArsh32X:
		return uint64(uint32(int32(a) >> (b & 31)))
	case opNeg64:
		return -a
	case opNeg32:
		return uint64(-uint32(a))
	case opMovSX8to64:
		return uint64(int64(int8(b)))
	case opMovSX16to64:
		return uint64(int64(int16(b)))
	case opMovSX32to64:
		return uint64(int64(int32(b)))
	case opMovSX8to32:
		return uint64(uint32(int32(int8(b))))
	case opMovSX16to32:
		return uint64(uint32(int32(int16(b))))
	case opZext16:
		return uint64(uint16(a))
	case opZext32:
		return uint64(uint32(a))
	case opBswap16:
		return uint64(bits.ReverseBytes16(uint16(a)))
	case opBswap32:
		return uint64(bits.ReverseBytes32(uint32(a)))
	case opBswap64:
		return bits.ReverseBytes64(a)
	}
	return a // opNop
}

// aluOperand reports whether o reads the source register as its operand
// b (the X variants and the sign-extending moves); the others take the
// immediate, or no operand.
func aluOperand(o op) bool {
	switch {
	case o >= opAdd64K && o <= opArsh32X:
		return (o-opAdd64K)&1 == 1
	case o >= opMovSX8to64 && o <= opMovSX16to32:
		return true
	}
	return false
}
