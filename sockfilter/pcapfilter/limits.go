package pcapfilter

import (
	"fmt"
	"math"

	"github.com/purebpf/purebpf/asm"
)

// The limits of what Compile takes. Each keeps one of its costs linear in
// the expression's size and small in absolute terms: a 1 MB expression
// compiles or is refused in well under a second and 100 MB. Past them,
// Compile returns an *Error wrapping ErrTooComplex, which says which limit
// was hit. The test expressions stay far below them.
const (
	// maxExpr bounds the length of an expression, in bytes.
	maxExpr = 4 << 20
	// maxTests bounds the tests of the predicate tree, before
	// optimisation (`port 80` is 23 tests, `host 10.0.0.1` 9): the graph
	// the optimiser works on has one node a test.
	maxTests = 1 << 14
	// maxArith bounds the operations and packet accesses of arithmetic
	// that are not constants, each one at least one instruction.
	maxArith = 1 << 14
	// maxInsns bounds the instructions of a program as emitted, before
	// the kernel expands them (see xlatedLen).
	maxInsns = 1 << 16
)

// Hints of what to do about a limit.
const (
	hintTests = "simplify it (a portrange for many ports, a net for many hosts)"
	hintArith = "simplify the arithmetic"
	hintNest  = "remove parentheses or negations"
)

// tooComplex returns the Error of a limit hit at column col (0 for the
// whole expression): what the limit is, and the hint.
func tooComplex(col int, hint, format string, args ...any) *Error {
	msg := ErrTooComplex.Error() + ": " + fmt.Sprintf(format, args...) + "; " + hint
	return &Error{Column: col, Msg: msg, Err: ErrTooComplex}
}

// xlatedLen returns an upper bound of the number of instructions the
// kernel makes of ins when it loads a socket filter, on any architecture:
// what the verifier's fixups (kernel/bpf/verifier.c) put in its place.
//
//   - A legacy packet load (BPF_LD | BPF_ABS or BPF_IND) becomes a call of
//     bpf_skb_load_helper_*_no_cache and the check of its result:
//     bpf_gen_ld_abs in net/core/filter.c writes 6 instructions, 7 for
//     BPF_IND with a non-zero offset.
//   - A division or modulo by a register gets its check for zero (4
//     instructions, do_misc_fixups).
//   - A load from the context (struct __sk_buff) is rewritten to read the
//     sk_buff (bpf_convert_ctx_access): at most 3 instructions.
//   - A helper call may be inlined (bpf_get_smp_processor_id, 3).
//   - A store to the stack may be followed by a speculation barrier for
//     an unprivileged loader (BPF_ST_NOSPEC).
//   - On architectures whose JIT needs explicit zero extension (arm32,
//     riscv, s390, powerpc, mips, x86-32), each instruction that writes
//     a 32-bit register may be followed by a `mov32` (and so may the
//     32-bit `xor` of a rewritten packet load or division).
//
// Jumps keep their offsets in 16 bits while the kernel inserts these
// (bpf_adj_branches in kernel/bpf/core.c refuses a jump that would no
// longer fit: "cannot be patched due to 16-bit range"), so a program loads
// only if every jump fits once every instruction is counted this way.
func xlatedLen(ins asm.Instruction) int {
	op := ins.OpCode
	switch c := op.Class(); {
	case c == asm.LdClass && op.Mode() == asm.AbsMode:
		return 6 + 1
	case c == asm.LdClass && op.Mode() == asm.IndMode:
		return 7 + 1
	case (c == asm.ALUClass || c == asm.ALU64Class) && op.Source() == asm.RegSource &&
		(op.ALUOp() == asm.Div || op.ALUOp() == asm.Mod):
		return 4 + 2
	case c == asm.ALUClass:
		return 1 + 1
	case c == asm.LdXClass && ins.Src != asm.RFP:
		return 3 + 1
	case c == asm.LdXClass:
		return 1 + 1
	case c == asm.StClass || c == asm.StXClass:
		return 1 + 1
	case c.IsJump() && op.JumpOp() == asm.CallOp:
		return 3
	}
	return 1
}

// farJump returns the index of a jump of insns that would not fit 16 bits
// once the kernel has expanded the instructions (see xlatedLen), and the
// distance it would have to jump; -1 if every jump fits. A jump to a label
// insns do not define is left for Assemble to report.
func farJump(insns asm.Instructions) (index, distance int) {
	at := make(map[string]int) // label → position in the expanded program
	pos := make([]int, len(insns)+1)
	for i, ins := range insns {
		if ins.Label != "" {
			at[ins.Label] = pos[i]
		}
		pos[i+1] = pos[i] + xlatedLen(ins)
	}
	for i, ins := range insns {
		if ins.Target == "" {
			continue
		}
		t, found := at[ins.Target]
		if !found {
			continue // Assemble reports it
		}
		if d := t - pos[i] - 1; d > math.MaxInt16 || d < math.MinInt16 {
			return i, d
		}
	}
	return -1, 0
}
