package pcapfilter

import "github.com/purebpf/purebpf/asm"

// dropGuards removes from DirectAccess code the checks of constant loads
// that earlier checks have made: `v0 = start; v0 += K; if v0 > end goto
// no` (directLoad) proves to the verifier that K bytes from start are in
// the packet, on the path where it falls through, as it marks the range
// on start's register (find_good_pkt_pointers); a later load that needs
// no more than the bytes proven on every path into it needs no check of
// its own. The proof is a forward dataflow over the code, whose jumps all
// go forward: the bytes known at an instruction are the least known on
// the ways into it. The verifier follows each path with its own state, so
// it knows at least as much.
func dropGuards(code asm.Instructions) asm.Instructions {
	at := labels(code)
	known := make([]int32, len(code)+1)
	reached := make([]bool, len(code)+1)
	reached[0] = true
	flow := func(j int, k int32) {
		if !reached[j] {
			known[j], reached[j] = k, true
		} else {
			known[j] = min(known[j], k)
		}
	}
	drop := make([]bool, len(code))
	for i := 0; i < len(code); i++ {
		if !reached[i] {
			continue
		}
		k := known[i]
		if g, ok := guardAt(code, i); ok {
			if g <= k {
				drop[i], drop[i+1], drop[i+2] = true, true, true
			} else {
				if j, ok := at[code[i+2].Target]; ok {
					flow(j, k) // the jump: no more known
				}
				k = g
			}
			flow(i+3, k)
			i += 2
			continue
		}
		ins := code[i]
		if ins.OpCode.Class().IsJump() && ins.OpCode.JumpOp() != asm.CallOp {
			if j, ok := at[ins.Target]; ok {
				flow(j, k)
			}
		}
		if falls(ins) {
			flow(i+1, k)
		}
	}
	out := make(asm.Instructions, 0, len(code))
	label := ""
	for i, ins := range code {
		if drop[i] {
			if ins.Label != "" {
				label = ins.Label // only the first of a guard can have one
			}
			continue
		}
		if label != "" {
			ins.Label, label = label, ""
		}
		out = append(out, ins)
	}
	return out
}

// guardAt returns K if code[i:] starts with the check of a constant load
// of directLoad, `v0 = start; v0 += K; if v0 > end goto l` followed by a
// load from start, with no label after its first instruction.
func guardAt(code asm.Instructions, i int) (int32, bool) {
	if i+3 >= len(code) {
		return 0, false
	}
	a, b, c, d := code[i], code[i+1], code[i+2], code[i+3]
	ok := a.WithLabel("") == asm.Mov.Reg(vReg0, vStart) &&
		b == asm.Add.Imm(vReg0, int32(b.Constant)) &&
		c == asm.JGT.Reg(vReg0, vEnd, c.Target) &&
		d.Label == "" && d.OpCode.Class() == asm.LdXClass && d.Src == vStart && d.Dst == vReg0 &&
		int32(d.Offset)+int32(d.OpCode.Size()) <= int32(b.Constant)
	return int32(b.Constant), ok
}
