package pcapfilter

import (
	"strconv"

	"github.com/purebpf/purebpf/asm"
)

// crossJump shortens insns by cross-jumping: where the k instructions
// before a `goto L` are the same as the k instructions that fall through
// into L, they are replaced by a goto to the first of those (k+1
// instructions become 1). The same instructions from the same place on
// do the same thing, whatever the path into them.
func crossJump(insns asm.Instructions) asm.Instructions {
	// bare returns ins without its label; ok is false for an
	// instruction whose meaning depends on where it is (a jump by
	// offset).
	bare := func(ins asm.Instruction) (asm.Instruction, bool) {
		ins.Label = ""
		c := ins.OpCode.Class()
		if (c == asm.JumpClass || c == asm.Jump32Class) && ins.Target == "" &&
			ins.OpCode.JumpOp() != asm.ExitOp && ins.OpCode.JumpOp() != asm.CallOp {
			return ins, false
		}
		return ins, true
	}
	fresh := 0
	// Each round finds the first goto it can shorten and starts over, in
	// time linear in the program: maxCrossJumps rounds keep the whole
	// linear. (No test program has more than a few.)
	for changed, rounds := true, 0; changed && rounds < maxCrossJumps; rounds++ {
		changed = false
		at := make(map[string]int)
		for i, ins := range insns {
			if ins.Label != "" {
				at[ins.Label] = i
			}
		}
		for j, g := range insns {
			if g.OpCode.Class() != asm.JumpClass || g.OpCode.JumpOp() != asm.Ja || g.Target == "" {
				continue
			}
			p, ok := at[g.Target]
			if !ok {
				continue
			}
			k := 0
			for {
				a, b := j-k-1, p-k-1
				if a < 0 || b < 0 || a == p-1 || b == j || b >= a && b <= j || a >= b && a < p {
					break
				}
				x, okx := bare(insns[a])
				y, oky := bare(insns[b])
				if !okx || !oky || x != y || k > 0 && insns[a+1].Label != "" {
					break
				}
				k++
			}
			for k > 0 && insns[j-k+1].Label != "" {
				k-- // something jumps into the middle: keep from there
			}
			if k == 0 || g.Label != "" {
				// (A goto with a label of its own, made by an
				// earlier round or inside a test's code, is kept:
				// the one that replaces it has the first
				// instruction's label.)
				continue
			}
			target := insns[p-k].Label
			if target == "" {
				fresh++
				target = "x" + strconv.Itoa(fresh)
				insns[p-k] = insns[p-k].WithLabel(target)
			}
			jump := asm.Goto(target)
			jump.Label = insns[j-k].Label
			out := append(asm.Instructions{}, insns[:j-k]...)
			out = append(out, jump)
			insns = append(out, insns[j+1:]...)
			changed = true
			break
		}
	}
	return insns
}

// maxCrossJumps bounds the gotos crossJump shortens.
const maxCrossJumps = 256
