package pcapfilter

import "github.com/purebpf/purebpf/asm"

// The passes over the virtual code once rewritten: what the verifier
// refuses (unreachable code, a caller's label nothing jumps to) goes, and
// jumps and labels that do nothing.

// keepOutcomes makes code, in label mode, jump to each of Match and
// NoMatch (or fall through at its end for an empty one) on some path, as
// the verifier refuses the caller's code nothing jumps to ("unreachable
// insn"): a filter that always matches, like the empty expression, gets
// a jump to NoMatch that is never taken, `w0 = 0; if w0 != 0 goto
// NoMatch`, which the verifier follows no further.
func (s *splicer) keepOutcomes(code asm.Instructions) asm.Instructions {
	if s.opts.Match == "" && s.opts.NoMatch == "" || len(code) == 0 {
		return code
	}
	refs := map[string]bool{}
	for _, ins := range code {
		if ins.OpCode.Class().IsJump() {
			refs[ins.Target] = true
		}
	}
	var guard asm.Instructions
	end := s.label("end")
	hasEnd := len(code) > 0 && code[len(code)-1].Label == end
	for _, l := range []string{s.opts.Match, s.opts.NoMatch} {
		if l == "" {
			if falls(code[len(code)-1]) || refs[end] {
				continue
			}
			l = end
		}
		if !refs[l] {
			guard = append(guard, asm.Mov.Imm32(vReg0, 0), asm.JNE.Imm32(vReg0, 0, l))
			refs[l] = true
		}
	}
	if refs[end] && !hasEnd {
		code = append(code, asm.Goto("").WithOffset(0).WithLabel(end))
	}
	return append(guard, code...)
}

// tidy threads jumps to a goto through to the goto's target, drops gotos
// to the next instruction and drops the code nothing reaches, which the
// verifier refuses ("unreachable insn").
func tidy(code asm.Instructions) asm.Instructions {
	at := labels(code)
	isGoto := func(ins asm.Instruction) bool {
		return ins.OpCode == asm.Goto("").OpCode && ins.Target != ""
	}
	for i := range code {
		ins := &code[i]
		if !ins.OpCode.Class().IsJump() || ins.Target == "" || ins.OpCode.JumpOp() == asm.CallOp {
			continue
		}
		for n := 0; n < len(code); n++ { // bounded: jumps go forward
			j, ok := at[ins.Target]
			if !ok || !isGoto(code[j]) {
				break
			}
			ins.Target = code[j].Target
		}
	}
	return dropGotoNext(dropDead(code))
}

// dropGotoNext returns code without its gotos to the next instruction;
// their labels move on to it.
func dropGotoNext(code asm.Instructions) asm.Instructions {
	isGoto := func(ins asm.Instruction) bool {
		return ins.OpCode == asm.Goto("").OpCode && ins.Target != ""
	}
	var out asm.Instructions
	carry := ""
	alias := map[string]string{}
	for i, ins := range code {
		if carry != "" {
			if ins.Label == "" {
				ins.Label = carry
			} else {
				alias[carry] = ins.Label
			}
			carry = ""
		}
		if isGoto(ins) && i+1 < len(code) && code[i+1].Label == ins.Target {
			carry = ins.Label
			continue
		}
		out = append(out, ins)
	}
	if carry != "" {
		out = append(out, asm.Goto("").WithOffset(0).WithLabel(carry))
	}
	for i := range out {
		if t, ok := alias[out[i].Target]; ok {
			out[i].Target = t
		}
	}
	return out
}

// labels returns the index of each label of code.
func labels(code asm.Instructions) map[string]int {
	at := make(map[string]int, len(code))
	for i, ins := range code {
		if ins.Label != "" {
			at[ins.Label] = i
		}
	}
	return at
}

// dropDead returns code without the instructions no path from its first
// reaches.
func dropDead(code asm.Instructions) asm.Instructions {
	at := labels(code)
	seen := make([]bool, len(code)+1)
	seen[0] = true
	for i, ins := range code {
		if !seen[i] {
			continue
		}
		if falls(ins) {
			seen[i+1] = true
		}
		if !ins.OpCode.Class().IsJump() || ins.OpCode.JumpOp() == asm.CallOp || ins.OpCode.JumpOp() == asm.ExitOp {
			continue
		}
		if j, ok := at[ins.Target]; ok {
			seen[j] = true
		} else if ins.Target == "" {
			seen[min(i+1+int(ins.Offset), len(code))] = true
		}
	}
	out := code[:0:0]
	for i, ins := range code {
		if seen[i] {
			out = append(out, ins)
		}
	}
	return out
}

// dropUnusedLabels returns code without the labels nothing jumps to.
func dropUnusedLabels(code asm.Instructions) asm.Instructions {
	used := make(map[string]bool)
	for _, ins := range code {
		if ins.Target != "" {
			used[ins.Target] = true
		}
	}
	for i := range code {
		if !used[code[i].Label] {
			code[i].Label = ""
		}
	}
	return code
}
