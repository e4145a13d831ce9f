package asm

// Instruction is one eBPF instruction: a value, comparable with ==. Most
// instructions take 8 bytes when assembled; LD_IMM64 takes 16. The zero
// Instruction is invalid (opcode 0x00, a 32-bit BPF_LD | BPF_IMM, exists
// only in classic BPF); build instructions with the package's functions,
// or check them with Validate.
//
// Label names the instruction so that jumps and calls can target it, and
// Target names the label a jump, call or LoadFunc refers to. While Target
// is set, the assembler computes Offset (or, for gotol and calls, the
// immediate) from it; otherwise they are used as they are.
type Instruction struct {
	OpCode OpCode
	Dst    Register
	Src    Register
	Offset int16
	// Constant is the immediate, sign-extended from 32 bits; for LD_IMM64
	// it is the whole 64-bit value (for map values: the fd in the low half
	// and the offset in the high half, as the kernel reads them).
	Constant int64

	Label  string // the label this instruction defines, if any
	Target string // the label this instruction refers to, if any

	// Map names the map an LD_IMM64 map load refers to (LoadMapPtr,
	// LoadMapValuePtr), for the loader to replace with the map's file
	// descriptor: sockfilter.Load does, from LoadOptions.Maps. While Map
	// is set the low half of Constant is not used, and Assemble fails with
	// ErrUnresolvedMap.
	Map string

	// badSize is 0x100 | the Size a load or store builder was given when
	// that Size is not Byte, Half, Word or DWord, so that Assemble can
	// report it: the opcode alone has no room for an invalid size.
	badSize uint16
}

// Instructions is an eBPF program, or a part of one.
type Instructions []Instruction

// WithLabel returns ins with its Label set: jumps and calls can then name
// it as their target.
func (ins Instruction) WithLabel(label string) Instruction {
	ins.Label = label
	return ins
}

// WithOffset returns ins referring to the instruction off slots after the
// next one, rather than to a label: its Target is cleared.
func (ins Instruction) WithOffset(off int16) Instruction {
	ins.Offset = off
	ins.Target = ""
	return ins
}

// IsLoadImm64 reports whether ins is the two-slot LD_IMM64.
func (ins Instruction) IsLoadImm64() bool { return ins.OpCode == ldImm64 }

// Slots returns the number of 8-byte slots ins takes: 2 for LD_IMM64, else 1.
func (ins Instruction) Slots() int {
	if ins.IsLoadImm64() {
		return 2
	}
	return 1
}
