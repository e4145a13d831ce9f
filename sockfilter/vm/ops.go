package vm

// op is an operation of the VM's internal form, into which New translates
// each instruction: one dense number per opcode and operand kind, so that
// the interpreter's switch compiles to a jump table, with what the
// instruction's fields imply (a sign-extended immediate, a masked shift,
// the absolute index of a jump target) worked out beforehand.
type op uint8

// The arithmetic operations come in groups of four variants, in the order
// of the variant constants, and the conditional jumps likewise: decode
// computes an operation as base + 4*index + variant.
const (
	opInvalid op = iota // the zero op, never decoded

	opAdd64K
	opAdd64X
	opAdd32K
	opAdd32X
	opSub64K
	opSub64X
	opSub32K
	opSub32X
	opMul64K
	opMul64X
	opMul32K
	opMul32X
	opDiv64K
	opDiv64X
	opDiv32K
	opDiv32X
	opSDiv64K
	opSDiv64X
	opSDiv32K
	opSDiv32X
	opOr64K
	opOr64X
	opOr32K
	opOr32X
	opAnd64K
	opAnd64X
	opAnd32K
	opAnd32X
	opLsh64K
	opLsh64X
	opLsh32K
	opLsh32X
	opRsh64K
	opRsh64X
	opRsh32K
	opRsh32X
	opMod64K
	opMod64X
	opMod32K
	opMod32X
	opSMod64K
	opSMod64X
	opSMod32K
	opSMod32X
	opXor64K
	opXor64X
	opXor32K
	opXor32X
	opMov64K // also LD_IMM64: imm holds the 64-bit value
	opMov64X
	opMov32K
	opMov32X
	opArsh64K
	opArsh64X
	opArsh32K
	opArsh32X

	opNeg64
	opNeg32
	opMovSX8to64
	opMovSX16to64
	opMovSX32to64
	opMovSX8to32
	opMovSX16to32
	opZext16 // le16 on a little-endian machine
	opZext32 // le32
	opBswap16
	opBswap32
	opBswap64
	opNop // le64, a modulo by an immediate 0 on 64 bits

	opJeq64K
	opJeq64X
	opJeq32K
	opJeq32X
	opJgt64K
	opJgt64X
	opJgt32K
	opJgt32X
	opJge64K
	opJge64X
	opJge32K
	opJge32X
	opJset64K
	opJset64X
	opJset32K
	opJset32X
	opJne64K
	opJne64X
	opJne32K
	opJne32X
	opJsgt64K
	opJsgt64X
	opJsgt32K
	opJsgt32X
	opJsge64K
	opJsge64X
	opJsge32K
	opJsge32X
	opJlt64K
	opJlt64X
	opJlt32K
	opJlt32X
	opJle64K
	opJle64X
	opJle32K
	opJle32X
	opJslt64K
	opJslt64X
	opJslt32K
	opJslt32X
	opJsle64K
	opJsle64X
	opJsle32K
	opJsle32X

	opJa      // goto and gotol
	opMayGoto // may_goto
	opCall    // helper call; imm is the helper, off its index in VM.helpers
	opCallX   // callx: the helper's number is in dst
	opCallPC  // BPF-to-BPF call of the subprogram at off
	opExit

	opLdxB // dst = *(u8 *)(src + off), also load-acquire
	opLdxH
	opLdxW
	opLdxDW
	opLdxsB // dst = *(s8 *)(src + off)
	opLdxsH
	opLdxsW
	opStB // *(u8 *)(dst + off) = imm
	opStH
	opStW
	opStDW
	opStxB // *(u8 *)(dst + off) = src, also store-release
	opStxH
	opStxW
	opStxDW
	opAtomic32 // an atomic read-modify-write on u32; aux is the operation
	opAtomic64 // the same on u64

	opLdAbsB // r0 = skb[base + imm]; aux is the base
	opLdAbsH
	opLdAbsW
	opLdIndB // r0 = skb[src + imm], imm relative to skb->data or a header
	opLdIndH
	opLdIndW
	opLdFail // a legacy load that cannot succeed: the program returns 0

	// Superinstructions, which decode makes of an instruction and the
	// 32-bit equality test of its result after it, the commonest pairs of
	// compiled filters: imm holds the test's constant in its low half and
	// the instruction's own constant (a legacy load's offset, an AND's
	// mask) in its high half; off is the jump's target. The test stays in
	// the code on its own, for jumps that land on it.
	opLdAbsBJeq
	opLdAbsHJeq
	opLdAbsWJeq
	opLdAbsBJne
	opLdAbsHJne
	opLdAbsWJne
	opAnd32KJeq
	opAnd32KJne
	// opRet is `r0 = imm; exit` in a program without BPF-to-BPF calls.
	opRet
)

// The variants of an arithmetic operation or conditional jump.
const (
	var64K = iota // 64 bits, immediate operand
	var64X        // 64 bits, register operand
	var32K        // 32 bits, immediate operand
	var32X        // 32 bits, register operand
)

// The atomic read-modify-write operations, in insn.aux.
const (
	atomicAdd uint8 = iota
	atomicOr
	atomicAnd
	atomicXor
	atomicXchg
	atomicCmpXchg
	atomicFetch = 0x80 // flag: the old value goes to src
)

// The bases of the legacy packet loads, in insn.aux for LD_ABS and in the
// machine's base table.
const (
	baseData  = iota // skb->data
	baseMAC          // the link-layer header (SKF_LL_OFF)
	baseNet          // the network header (SKF_NET_OFF)
	baseExtra        // not a header: the bytes skb->len counts that the frame lacks (skbLen)
)

// insn is an instruction in the VM's internal form: 16 bytes.
type insn struct {
	op  op
	dst uint8
	src uint8
	aux uint8  // LD_ABS base, atomic operation, access size
	off int32  // memory offset, or absolute index of a jump or call target
	imm uint64 // the immediate, prepared for the operation
}
