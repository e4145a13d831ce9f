package kparse

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/purebpf/purebpf/asm"
)

// ErrFilter is wrapped by the error of a filter Splice cannot take.
var ErrFilter = errors.New("filter cannot be spliced")

// spliced is a user's filter cut for splicing: its main program, whose
// exits jump to accept or drop, and its subprograms, which must stay at
// the end of the whole program.
type spliced struct {
	main, subprogs asm.Instructions
}

// splice prepares filter, a socket filter program, to run in front of
// generated code. Every exit of its main program becomes
//
//	if w0 == 0 goto drop
//	goto accept
//
// as the kernel reads a socket filter's verdict: the low 32 bits of r0,
// 0 to drop. Exits of subprograms (the code BPF-to-BPF calls and
// bpf_loop callbacks reach) are theirs and stay. The main program starts
// with `r6 = r1` and must not write r6 otherwise, so that the socket
// buffer is in r6 at every exit: as the legacy packet loads need it, and
// as skb.Prologue starts a program. Jumps given as offsets are given
// labels, since the rewritten exits take more room.
func splice(filter asm.Instructions, accept, drop string) (spliced, error) {
	if len(filter) == 0 {
		return spliced{}, fmt.Errorf("%w: no instructions", ErrFilter)
	}
	insns, err := labelTargets(filter)
	if err != nil {
		return spliced{}, err
	}
	end := mainEnd(insns)
	main, subprogs := insns[:end], insns[end:]
	for i, ins := range main {
		if writesR6(ins) && !(i == 0 && ins == asm.Mov.Reg(asm.R6, asm.R1)) {
			return spliced{}, fmt.Errorf("%w: instruction %d (%s) writes r6, which must hold the socket buffer (r1 at the start) at every exit: start with skb.Prologue and keep r6", ErrFilter, i, ins)
		}
	}
	out := asm.Instructions{asm.Mov.Reg(asm.R6, asm.R1)}
	for _, ins := range main {
		if ins.OpCode.Class() == asm.JumpClass && ins.OpCode.JumpOp() == asm.ExitOp {
			out = append(out, asm.JEq.Imm32(asm.R0, 0, drop).WithLabel(ins.Label), asm.Goto(accept))
			continue
		}
		out = append(out, ins)
	}
	return spliced{main: out, subprogs: subprogs}, nil
}

// labelTargets returns a copy of insns in which every jump, call and
// LoadFunc that gives its target as an offset names it by a label, and
// checks that no label starts with LabelPrefix.
func labelTargets(filter asm.Instructions) (asm.Instructions, error) {
	insns := append(asm.Instructions(nil), filter...)
	slots := insns.Offsets()
	bySlot := make(map[int]int, len(insns))
	for i, s := range slots {
		bySlot[s] = i
	}
	for i, ins := range insns {
		if strings.HasPrefix(ins.Label, LabelPrefix) || strings.HasPrefix(ins.Target, LabelPrefix) {
			return nil, fmt.Errorf("%w: instruction %d uses a label starting with %q, which the spliced code uses", ErrFilter, i, LabelPrefix)
		}
	}
	for i := range insns {
		ins := &insns[i]
		rel, ok := offsetTarget(*ins)
		if !ok || ins.Target != "" {
			continue
		}
		t, ok := bySlot[slots[i]+1+int(rel)]
		if !ok {
			return nil, fmt.Errorf("%w: instruction %d (%s) jumps to slot %d, which does not start an instruction", ErrFilter, i, ins, slots[i]+1+int(rel))
		}
		if insns[t].Label == "" {
			insns[t].Label = LabelPrefix + "insn." + strconv.Itoa(t)
		}
		ins.Target = insns[t].Label
	}
	return insns, nil
}

// offsetTarget returns the offset, in slots from the next instruction, of
// what ins refers to, if it refers to another instruction.
func offsetTarget(ins asm.Instruction) (int64, bool) {
	op := ins.OpCode
	switch {
	case ins.IsLoadImm64():
		return int64(int32(ins.Constant)), ins.Src == asm.PseudoFunc
	case !op.Class().IsJump():
		return 0, false
	case op.JumpOp() == asm.ExitOp:
		return 0, false
	case op.JumpOp() == asm.CallOp:
		return ins.Constant, op.Class() == asm.JumpClass && ins.Src == asm.PseudoCall
	case op.Class() == asm.Jump32Class && op.JumpOp() == asm.Ja:
		return ins.Constant, true // gotol
	}
	return int64(ins.Offset), true
}

// mainEnd returns the index of the first subprogram: the first
// instruction a BPF-to-BPF call or a LoadFunc targets, or len(insns).
func mainEnd(insns asm.Instructions) int {
	starts := map[string]bool{}
	for _, ins := range insns {
		isCall := ins.OpCode.Class() == asm.JumpClass && ins.OpCode.JumpOp() == asm.CallOp && ins.Src == asm.PseudoCall
		if (isCall || ins.IsLoadImm64() && ins.Src == asm.PseudoFunc) && ins.Target != "" {
			starts[ins.Target] = true
		}
	}
	for i, ins := range insns {
		if i > 0 && ins.Label != "" && starts[ins.Label] {
			return i
		}
	}
	return len(insns)
}

// writesR6 reports whether ins may write r6.
func writesR6(ins asm.Instruction) bool {
	op := ins.OpCode
	switch c := op.Class(); {
	case c.IsALU(), c == asm.LdXClass:
		return ins.Dst == asm.R6
	case ins.IsLoadImm64():
		return ins.Dst == asm.R6
	case c == asm.StXClass && op.Mode() == asm.AtomicMode:
		switch asm.AtomicOp(ins.Constant) {
		case asm.LoadAcq:
			return ins.Dst == asm.R6
		case asm.StoreRel, asm.CmpXchg:
			return false // cmpxchg writes r0
		}
		// The fetching atomics write their source register.
		return ins.Src == asm.R6 && ins.Constant&0x01 != 0
	}
	return false
}
