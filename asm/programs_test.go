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
