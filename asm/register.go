package asm

import "strconv"

// Register is one of the eleven eBPF registers. R0 holds return values, R1
// to R5 hold call arguments, R6 to R9 survive calls, and R10 is the
// read-only frame pointer.
type Register uint8

// The registers.
const (
	R0 Register = iota
	R1
	R2
	R3
	R4
	R5
	R6
	R7
	R8
	R9
	R10
	// RFP is the read-only frame pointer, R10.
	RFP = R10
)

// String returns the register's 64-bit name as the kernel prints it: "r0".
func (r Register) String() string { return "r" + strconv.Itoa(int(r)) }

// Size is the width of a memory access.
type Size uint8

// The access sizes; the zero Size is invalid.
const (
	Byte  Size = 1 // BPF_B, u8
	Half  Size = 2 // BPF_H, u16
	Word  Size = 4 // BPF_W, u32
	DWord Size = 8 // BPF_DW, u64
)

// String returns the kernel's name for s: "u8", "u16", "u32" or "u64".
func (s Size) String() string {
	switch s {
	case Byte:
		return "u8"
	case Half:
		return "u16"
	case Word:
		return "u32"
	case DWord:
		return "u64"
	}
	return "Size(" + strconv.Itoa(int(s)) + ")"
}
