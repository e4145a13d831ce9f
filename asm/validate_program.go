package asm

import (
	"errors"
	"fmt"
)

// InstructionError is an error about one instruction of a program: of
// Assemble, AppendAssembled, AppendEncoded and Instructions.Validate.
type InstructionError struct {
	Index       int         // the instruction's index in the Instructions
	Instruction Instruction // the instruction, with its label resolved
	Err         error       // what is wrong; wraps ErrInvalidInstruction or ErrInvalidProgram
}

// Error says which instruction and what: "instruction 3 (exit): ...".
func (e *InstructionError) Error() string {
	return fmt.Sprintf("instruction %d (%s): %v", e.Index, e.Instruction.String(), e.Err)
}

// Unwrap returns Err.
func (e *InstructionError) Unwrap() error { return e.Err }

// ErrInvalidProgram is wrapped by the errors of Instructions.Validate about
// the shape of a program rather than the fields of an instruction: a jump
// outside the program or its subprogram, a path that runs off the end, a
// write to the frame pointer.
var ErrInvalidProgram = errors.New("invalid program")

func invalidProgram(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidProgram}, args...)...)
}

// Validate checks insns as the kernel does before it verifies a program
// (bpf_check: resolve_pseudo_ldimm64, check_subprogs, check_cfg), for an
// early and precise error: labels resolve (see Resolve); every
// instruction passes Instruction.Validate; the program has instructions;
// every jump, call and LoadFunc lands on the first slot of an instruction
// inside the program, not on the second half of an LD_IMM64; a jump stays
// in its subprogram (the code from the program's start, or from a target
// of a BPF-to-BPF call or LoadFunc, to the next such start); the last
// instruction of each subprogram is exit or an unconditional jump, so that
// no path runs off its end; and no instruction writes the read-only frame
// pointer r10. It does not verify the program: what depends on the values
// in registers (memory bounds, pointer types, termination) is the
// verifier's business. The error is an *InstructionError naming the
// instruction, or an error of Resolve.
func (insns Instructions) Validate() error { return insns.validate(kernelRules) }

// ValidateRFC is Validate with Instruction.ValidateRFC in place of
// Instruction.Validate: it accepts the programs RFC 9669 defines, such as
// those using callx or shifts by immediates out of range.
func (insns Instructions) ValidateRFC() error { return insns.validate(rfcRules) }

func (insns Instructions) validate(r rules) error {
	if len(insns) == 0 {
		return invalidProgram("no instructions")
	}
	resolved, err := insns.Resolve()
	if err != nil {
		return err
	}
	fail := func(i int, err error) error {
		return &InstructionError{Index: i, Instruction: resolved[i], Err: err}
	}
	for i := range resolved {
		if err := resolved[i].validate(r); err != nil {
			return fail(i, err)
		}
		if writesFramePointer(&resolved[i]) {
			return fail(i, invalidProgram("it writes r10, the read-only frame pointer"))
		}
	}
	s := newShape(resolved)
	// Subprograms start at the program's start and at the targets of
	// BPF-to-BPF calls and LoadFunc.
	for i := range resolved {
		if rel, ok := subprogRef(&resolved[i]); ok {
			j, err := s.target(i, rel)
			if err != nil {
				return fail(i, err)
			}
			s.start[j] = true
		}
	}
	sub := s.subprograms()
	for i := range resolved {
		rel, ok := jumpOffset(&resolved[i])
		if !ok {
			continue
		}
		j, err := s.target(i, rel)
		if err != nil {
			return fail(i, err)
		}
		if sub[j] != sub[i] {
			return fail(i, invalidProgram("jump to instruction %d leaves the subprogram that starts at instruction %d", j, sub[i]))
		}
	}
	for i := range resolved {
		if (i+1 == len(resolved) || s.start[i+1]) && !endsPath(&resolved[i]) {
			return fail(i, invalidProgram("the last instruction of the subprogram at instruction %d is not exit or goto: execution would run off its end", sub[i]))
		}
	}
	return nil
}

// shape maps slots to instructions.
type shape struct {
	slots []int  // instruction index → slot
	index []int  // slot → instruction index, -1 for second halves of LD_IMM64
	start []bool // instruction index → starts a subprogram
}

func newShape(insns Instructions) *shape {
	s := &shape{slots: insns.Offsets(), start: make([]bool, len(insns))}
	s.index = make([]int, 0, insns.Slots())
	for i, ins := range insns {
		s.index = append(s.index, i)
		if ins.IsLoadImm64() {
			s.index = append(s.index, -1)
		}
	}
	s.start[0] = true
	return s
}

// target returns the instruction that instruction i reaches rel slots
// after the next one.
func (s *shape) target(i int, rel int64) (int, error) {
	slot := int64(s.slots[i]) + 1 + rel
	switch {
	case slot < 0 || slot >= int64(len(s.index)):
		return 0, invalidProgram("target slot %d is outside the program of %d slots", slot, len(s.index))
	case s.index[slot] < 0:
		return 0, invalidProgram("target slot %d is the second half of the ld_imm64 at instruction %d", slot, s.index[slot-1])
	}
	return s.index[slot], nil
}

// subprograms returns, for each instruction, the index of the first
// instruction of its subprogram.
func (s *shape) subprograms() []int {
	sub := make([]int, len(s.start))
	for i := range sub {
		if s.start[i] {
			sub[i] = i
		} else {
			sub[i] = sub[i-1]
		}
	}
	return sub
}

// subprogRef returns the offset of the subprogram a BPF-to-BPF call or a
// LoadFunc refers to.
func subprogRef(ins *Instruction) (int64, bool) {
	switch {
	case ins.OpCode == OpCode(JumpClass)|OpCode(CallOp) && ins.Src == PseudoCall:
		return int64(int32(ins.Constant)), true
	case ins.IsLoadImm64() && ins.Src == PseudoFunc:
		return int64(int32(ins.Constant)), true
	}
	return 0, false
}

// jumpOffset returns the offset of a jump: goto, gotol, a conditional
// jump or may_goto.
func jumpOffset(ins *Instruction) (int64, bool) {
	op := ins.OpCode
	if !op.Class().IsJump() {
		return 0, false
	}
	switch op.JumpOp() {
	case CallOp, ExitOp:
		return 0, false
	case Ja:
		if op.Class() == Jump32Class {
			return int64(int32(ins.Constant)), true
		}
	}
	return int64(ins.Offset), true
}

// endsPath reports whether ins is exit or an unconditional jump, which no
// path falls through.
func endsPath(ins *Instruction) bool {
	op := ins.OpCode
	return op == OpCode(JumpClass)|OpCode(ExitOp) || op == OpCode(JumpClass)|OpCode(Ja) || op == OpCode(Jump32Class)|OpCode(Ja)
}

// writesFramePointer reports whether ins writes r10.
func writesFramePointer(ins *Instruction) bool {
	op := ins.OpCode
	switch op.Class() {
	case ALUClass, ALU64Class, LdXClass:
		return ins.Dst == R10
	case LdClass:
		return ins.IsLoadImm64() && ins.Dst == R10
	case StXClass:
		if op.Mode() != AtomicMode {
			return false
		}
		switch a := AtomicOp(ins.Constant); {
		case a == LoadAcq:
			return ins.Dst == R10
		case a == StoreRel || a == CmpXchg:
			return false
		case a&fetch != 0:
			return ins.Src == R10
		}
	}
	return false
}
