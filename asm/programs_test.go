package asm

// labelsProgram has jumps in both directions, resolved from labels.
func labelsProgram() Instructions {
	return Instructions{
		Mov.Imm(R0, 0),
		JEq.Imm(R1, 0, "mid"),
		Add.Imm(R0, 1).WithLabel("loop"),
		JLT.Imm32(R0, 10, "loop"),
		GotoL("out"),
		Goto("out").WithLabel("mid"),
		Exit().WithLabel("out"),
	}
}

// The offsets of the header-relative legacy loads (skb.LLOff and
// skb.NetOff; asm cannot import skb, which imports asm).
const (
	skfLLOff  int32 = -0x200000
	skfNetOff int32 = -0x100000
)
