// Package asm writes, encodes, decodes and prints eBPF instructions: the
// whole instruction set of RFC 9669 and the Linux kernel's extensions to
// it, with no compiler toolchain.
//
// # Instructions
//
// An Instruction is a value with the fields of the kernel's struct bpf_insn
// (include/uapi/linux/bpf.h): OpCode, Dst, Src, Offset and Constant (the
// immediate, or for the two-slot LD_IMM64 its whole 64-bit value), plus a
// Label it defines and a Target label it refers to. Instructions is a
// program. Builders are methods on the operations, in the kernel's terms:
//
//	asm.Add.Imm(asm.R1, 7)            // r1 += 7
//	asm.Mov.Reg32(asm.R2, asm.R3)     // w2 = w3
//	asm.MovSX16.Reg(asm.R2, asm.R3)   // r2 = (s16)r3
//	asm.JNE.Imm(asm.R0, 0x800, "drop") // if r0 != 0x800 goto drop
//	asm.LoadAbs(12, asm.Half)         // r0 = *(u16 *)skb[12]
//	asm.LoadMem(asm.R4, asm.R10, -8, asm.DWord) // r4 = *(u64 *)(r10 -8)
//	asm.FetchAdd.Mem(asm.R10, -8, asm.R1, asm.DWord) // r1 = atomic64_fetch_add((u64 *)(r10 -8), r1)
//	asm.Call(asm.FnGetPrandomU32)     // call bpf_get_prandom_u32#7
//	asm.Exit()                        // exit
//
// The forms of the RFC's conformance groups are all there (base32,
// base64, divmul32, divmul64 with SDiv and SMod, atomic32 and atomic64 with
// the fetch variants, Xchg and CmpXchg, and the legacy packet loads), and
// the kernel's: sign-extending moves and loads, BSwap, ToBE and ToLE, JMP32
// (Imm32, Reg32), GotoL, MayGoto, LD_IMM64 with each pseudo source
// (LoadMapFD, LoadMapValue, LoadMapIdx, LoadMapIdxValue, LoadBTFID,
// LoadFunc), helper, BPF-to-BPF and kfunc calls, LoadAcq and
// StoreRel; and CallX, the callx of the conformance suites, which the
// kernel does not load.
//
// # Labels
//
// Jumps, BPF-to-BPF calls and LoadFunc name their target with a label,
// defined by WithLabel on the target instruction. Assemble and Resolve
// compute the offsets, in 8-byte slots from the next instruction. A
// missing or duplicate label is an error that names it (ErrMissingLabel,
// ErrDuplicateLabel); so is a conditional jump whose distance does not fit
// its 16-bit offset (ErrOffsetOverflow). A Goto that is too far becomes a
// gotol, whose offset is the 32-bit immediate, in the same 8 bytes.
//
// # Encoding
//
// Assemble encodes a program in little-endian order, AppendAssembled in
// either; both refuse an instruction that neither the kernel
// (Instruction.Validate) nor RFC 9669 (Instruction.ValidateRFC) accepts.
// Disassemble and DisassembleOrder decode every instruction whose opcode
// is defined, keeping every field, so that AppendEncoded, which encodes
// without those checks, gives back the same bytes; bad input is a
// *DecodeError naming the byte offset, never garbage and never a panic.
//
// # Validation
//
// Instruction.Validate applies the kernel decoder's checks of the fields
// of one instruction, Instruction.ValidateRFC those of RFC 9669, which
// defines callx and shifts by any immediate and wants every unused field
// zero. Instructions.Validate and Instructions.ValidateRFC check a whole
// program's shape as the kernel does before verifying it: jumps inside
// their subprogram, no path off the end, LD_IMM64 taken whole, no write to
// r10. Errors name the instruction (*InstructionError).
//
// # Text
//
// Instruction.String prints an instruction exactly as the verifier log
// does (kernel/bpf/disasm.c), and Parse reads that text back, with labels:
//
//	r6 = r1
//	r0 = *(u16 *)skb[12]
//	if r0 != 0x800 goto drop
//	r0 = -1
//	exit
//	drop:
//	r0 = 0
//	exit
//
// The package's tests load every form into the running kernel and compare
// the verifier's listing with String, byte for byte.
//
// # Example
//
// A socket filter that keeps IPv4 packets, written in Go:
//
//	insns := asm.Instructions{
//		asm.Mov.Reg(asm.R6, asm.R1), // the legacy loads read the packet through r6
//		asm.LoadAbs(12, asm.Half),   // EtherType, from the link-layer header
//		asm.JNE.Imm(asm.R0, 0x0800, "drop"),
//		asm.Mov.Imm(asm.R0, -1), // keep the whole packet
//		asm.Exit(),
//		asm.Mov.Imm(asm.R0, 0).WithLabel("drop"), // keep none of it
//		asm.Exit(),
//	}
//	code, err := insns.Assemble()
//
// code holds the 7 instructions, 56 bytes, that BPF_PROG_LOAD takes as a
// BPF_PROG_TYPE_SOCKET_FILTER program.
package asm
