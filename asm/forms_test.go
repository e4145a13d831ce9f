package asm

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"strings"
	"testing"
)

// form is one instruction form with its encoding and its text.
type form struct {
	ins  Instruction
	text string // Instruction.String, the kernel's text
	// hex is the little-endian encoding, one 8-byte slot per line, grouped
	// as opcode, registers (src<<4 | dst), offset and immediate; the text
	// column is the slot's meaning.
	hex string
}

// bytes decodes f.hex.
func (f form) bytes(t testing.TB) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(f.hex, " ", ""))
	if err != nil {
		t.Fatalf("bad fixture %q: %v", f.hex, err)
	}
	return b
}

// forms holds every instruction form of RFC 9669's conformance groups
// (base32, base64, divmul32, divmul64, atomic32, atomic64, packet) and of
// the kernel's extensions (movsx, ldsx, bswap, be/le, JMP32, gotol,
// LD_IMM64, calls, exit, load-acquire and store-release) whose text is the
// kernel's own. Jumps use pc+0 so that the kernel oracle can load them in
// a straight line.
var forms = []form{
	{Add.Imm(R1, -7), "r1 += -7", "07 01 0000 f9ffffff"},
	{Add.Reg(R1, R2), "r1 += r2", "0f 21 0000 00000000"},
	{Add.Imm32(R1, -7), "w1 += -7", "04 01 0000 f9ffffff"},
	{Add.Reg32(R1, R2), "w1 += w2", "0c 21 0000 00000000"},
	{Sub.Imm(R1, 3), "r1 -= 3", "17 01 0000 03000000"},
	{Sub.Reg(R1, R2), "r1 -= r2", "1f 21 0000 00000000"},
	{Sub.Imm32(R1, 3), "w1 -= 3", "14 01 0000 03000000"},
	{Sub.Reg32(R1, R2), "w1 -= w2", "1c 21 0000 00000000"},
	{Mul.Imm(R1, 5), "r1 *= 5", "27 01 0000 05000000"},
	{Mul.Reg(R1, R2), "r1 *= r2", "2f 21 0000 00000000"},
	{Mul.Imm32(R1, 5), "w1 *= 5", "24 01 0000 05000000"},
	{Mul.Reg32(R1, R2), "w1 *= w2", "2c 21 0000 00000000"},
	{Div.Imm(R1, 2), "r1 /= 2", "37 01 0000 02000000"},
	{Div.Reg(R1, R2), "r1 /= r2", "3f 21 0000 00000000"},
	{Div.Imm32(R1, 2), "w1 /= 2", "34 01 0000 02000000"},
	{Div.Reg32(R1, R2), "w1 /= w2", "3c 21 0000 00000000"},
	{Or.Imm(R1, 0x10), "r1 |= 16", "47 01 0000 10000000"},
	{Or.Reg(R1, R2), "r1 |= r2", "4f 21 0000 00000000"},
	{Or.Imm32(R1, 0x10), "w1 |= 16", "44 01 0000 10000000"},
	{Or.Reg32(R1, R2), "w1 |= w2", "4c 21 0000 00000000"},
	{And.Imm(R1, 0xff), "r1 &= 255", "57 01 0000 ff000000"},
	{And.Reg(R1, R2), "r1 &= r2", "5f 21 0000 00000000"},
	{And.Imm32(R1, 0xff), "w1 &= 255", "54 01 0000 ff000000"},
	{And.Reg32(R1, R2), "w1 &= w2", "5c 21 0000 00000000"},
	{LSh.Imm(R1, 3), "r1 <<= 3", "67 01 0000 03000000"},
	{LSh.Reg(R1, R2), "r1 <<= r2", "6f 21 0000 00000000"},
	{LSh.Imm32(R1, 3), "w1 <<= 3", "64 01 0000 03000000"},
	{LSh.Reg32(R1, R2), "w1 <<= w2", "6c 21 0000 00000000"},
	{RSh.Imm(R1, 7), "r1 >>= 7", "77 01 0000 07000000"},
	{RSh.Reg(R1, R2), "r1 >>= r2", "7f 21 0000 00000000"},
	{RSh.Imm32(R1, 7), "w1 >>= 7", "74 01 0000 07000000"},
	{RSh.Reg32(R1, R2), "w1 >>= w2", "7c 21 0000 00000000"},
	{Mod.Imm(R1, 10), "r1 %= 10", "97 01 0000 0a000000"},
	{Mod.Reg(R1, R2), "r1 %= r2", "9f 21 0000 00000000"},
	{Mod.Imm32(R1, 10), "w1 %= 10", "94 01 0000 0a000000"},
	{Mod.Reg32(R1, R2), "w1 %= w2", "9c 21 0000 00000000"},
	{Xor.Imm(R1, -1), "r1 ^= -1", "a7 01 0000 ffffffff"},
	{Xor.Reg(R1, R2), "r1 ^= r2", "af 21 0000 00000000"},
	{Xor.Imm32(R1, -1), "w1 ^= -1", "a4 01 0000 ffffffff"},
	{Xor.Reg32(R1, R2), "w1 ^= w2", "ac 21 0000 00000000"},
	{Mov.Imm(R1, -1), "r1 = -1", "b7 01 0000 ffffffff"},
	{Mov.Reg(R1, R2), "r1 = r2", "bf 21 0000 00000000"},
	{Mov.Imm32(R1, -1), "w1 = -1", "b4 01 0000 ffffffff"},
	{Mov.Reg32(R1, R2), "w1 = w2", "bc 21 0000 00000000"},
	{ArSh.Imm(R1, 2), "r1 s>>= 2", "c7 01 0000 02000000"},
	{ArSh.Reg(R1, R2), "r1 s>>= r2", "cf 21 0000 00000000"},
	{ArSh.Imm32(R1, 2), "w1 s>>= 2", "c4 01 0000 02000000"},
	{ArSh.Reg32(R1, R2), "w1 s>>= w2", "cc 21 0000 00000000"},
	{Negate(R5), "r5 = -r5", "87 05 0000 00000000"},
	{Negate32(R5), "w5 = -w5", "84 05 0000 00000000"},
	{SDiv.Imm(R1, -3), "r1 s/= -3", "37 01 0100 fdffffff"},
	{SDiv.Reg(R1, R2), "r1 s/= r2", "3f 21 0100 00000000"},
	{SDiv.Imm32(R1, -3), "w1 s/= -3", "34 01 0100 fdffffff"},
	{SDiv.Reg32(R1, R2), "w1 s/= w2", "3c 21 0100 00000000"},
	{SMod.Imm(R1, 7), "r1 s%= 7", "97 01 0100 07000000"},
	{SMod.Reg(R1, R2), "r1 s%= r2", "9f 21 0100 00000000"},
	{SMod.Imm32(R1, 7), "w1 s%= 7", "94 01 0100 07000000"},
	{SMod.Reg32(R1, R2), "w1 s%= w2", "9c 21 0100 00000000"},
	{MovSX8.Reg(R2, R3), "r2 = (s8)r3", "bf 32 0800 00000000"},
	{MovSX16.Reg(R2, R3), "r2 = (s16)r3", "bf 32 1000 00000000"},
	{MovSX32.Reg(R2, R3), "r2 = (s32)r3", "bf 32 2000 00000000"},
	{MovSX8.Reg32(R2, R3), "w2 = (s8)w3", "bc 32 0800 00000000"},
	{MovSX16.Reg32(R2, R3), "w2 = (s16)w3", "bc 32 1000 00000000"},
	{ToLE(R1, 16), "r1 = le16 r1", "d4 01 0000 10000000"},
	{ToBE(R1, 16), "r1 = be16 r1", "dc 01 0000 10000000"},
	{BSwap(R1, 16), "r1 = bswap16 r1", "d7 01 0000 10000000"},
	{ToLE(R1, 32), "r1 = le32 r1", "d4 01 0000 20000000"},
	{ToBE(R1, 32), "r1 = be32 r1", "dc 01 0000 20000000"},
	{BSwap(R1, 32), "r1 = bswap32 r1", "d7 01 0000 20000000"},
	{ToLE(R1, 64), "r1 = le64 r1", "d4 01 0000 40000000"},
	{ToBE(R1, 64), "r1 = be64 r1", "dc 01 0000 40000000"},
	{BSwap(R1, 64), "r1 = bswap64 r1", "d7 01 0000 40000000"},
	{JEq.Imm(R1, 0x800, "").WithOffset(0), "if r1 == 0x800 goto pc+0", "15 01 0000 00080000"},
	{JEq.Reg(R1, R2, "").WithOffset(0), "if r1 == r2 goto pc+0", "1d 21 0000 00000000"},
	{JEq.Imm32(R1, 0x800, "").WithOffset(0), "if w1 == 0x800 goto pc+0", "16 01 0000 00080000"},
	{JEq.Reg32(R1, R2, "").WithOffset(0), "if w1 == w2 goto pc+0", "1e 21 0000 00000000"},
	{JGT.Imm(R1, 5, "").WithOffset(0), "if r1 > 0x5 goto pc+0", "25 01 0000 05000000"},
	{JGT.Reg(R1, R2, "").WithOffset(0), "if r1 > r2 goto pc+0", "2d 21 0000 00000000"},
	{JGT.Imm32(R1, 5, "").WithOffset(0), "if w1 > 0x5 goto pc+0", "26 01 0000 05000000"},
	{JGT.Reg32(R1, R2, "").WithOffset(0), "if w1 > w2 goto pc+0", "2e 21 0000 00000000"},
	{JGE.Imm(R1, -1, "").WithOffset(0), "if r1 >= 0xffffffff goto pc+0", "35 01 0000 ffffffff"},
	{JGE.Reg(R1, R2, "").WithOffset(0), "if r1 >= r2 goto pc+0", "3d 21 0000 00000000"},
	{JGE.Imm32(R1, -1, "").WithOffset(0), "if w1 >= 0xffffffff goto pc+0", "36 01 0000 ffffffff"},
	{JGE.Reg32(R1, R2, "").WithOffset(0), "if w1 >= w2 goto pc+0", "3e 21 0000 00000000"},
	{JSet.Imm(R1, 1, "").WithOffset(0), "if r1 & 0x1 goto pc+0", "45 01 0000 01000000"},
	{JSet.Reg(R1, R2, "").WithOffset(0), "if r1 & r2 goto pc+0", "4d 21 0000 00000000"},
	{JSet.Imm32(R1, 1, "").WithOffset(0), "if w1 & 0x1 goto pc+0", "46 01 0000 01000000"},
	{JSet.Reg32(R1, R2, "").WithOffset(0), "if w1 & w2 goto pc+0", "4e 21 0000 00000000"},
	{JNE.Imm(R1, 0, "").WithOffset(0), "if r1 != 0x0 goto pc+0", "55 01 0000 00000000"},
	{JNE.Reg(R1, R2, "").WithOffset(0), "if r1 != r2 goto pc+0", "5d 21 0000 00000000"},
	{JNE.Imm32(R1, 0, "").WithOffset(0), "if w1 != 0x0 goto pc+0", "56 01 0000 00000000"},
	{JNE.Reg32(R1, R2, "").WithOffset(0), "if w1 != w2 goto pc+0", "5e 21 0000 00000000"},
	{JSGT.Imm(R1, -2, "").WithOffset(0), "if r1 s> 0xfffffffe goto pc+0", "65 01 0000 feffffff"},
	{JSGT.Reg(R1, R2, "").WithOffset(0), "if r1 s> r2 goto pc+0", "6d 21 0000 00000000"},
	{JSGT.Imm32(R1, -2, "").WithOffset(0), "if w1 s> 0xfffffffe goto pc+0", "66 01 0000 feffffff"},
	{JSGT.Reg32(R1, R2, "").WithOffset(0), "if w1 s> w2 goto pc+0", "6e 21 0000 00000000"},
	{JSGE.Imm(R1, 7, "").WithOffset(0), "if r1 s>= 0x7 goto pc+0", "75 01 0000 07000000"},
	{JSGE.Reg(R1, R2, "").WithOffset(0), "if r1 s>= r2 goto pc+0", "7d 21 0000 00000000"},
	{JSGE.Imm32(R1, 7, "").WithOffset(0), "if w1 s>= 0x7 goto pc+0", "76 01 0000 07000000"},
	{JSGE.Reg32(R1, R2, "").WithOffset(0), "if w1 s>= w2 goto pc+0", "7e 21 0000 00000000"},
	{JLT.Imm(R1, 100, "").WithOffset(0), "if r1 < 0x64 goto pc+0", "a5 01 0000 64000000"},
	{JLT.Reg(R1, R2, "").WithOffset(0), "if r1 < r2 goto pc+0", "ad 21 0000 00000000"},
	{JLT.Imm32(R1, 100, "").WithOffset(0), "if w1 < 0x64 goto pc+0", "a6 01 0000 64000000"},
	{JLT.Reg32(R1, R2, "").WithOffset(0), "if w1 < w2 goto pc+0", "ae 21 0000 00000000"},
	{JLE.Imm(R1, 0x7fffffff, "").WithOffset(0), "if r1 <= 0x7fffffff goto pc+0", "b5 01 0000 ffffff7f"},
	{JLE.Reg(R1, R2, "").WithOffset(0), "if r1 <= r2 goto pc+0", "bd 21 0000 00000000"},
	{JLE.Imm32(R1, 0x7fffffff, "").WithOffset(0), "if w1 <= 0x7fffffff goto pc+0", "b6 01 0000 ffffff7f"},
	{JLE.Reg32(R1, R2, "").WithOffset(0), "if w1 <= w2 goto pc+0", "be 21 0000 00000000"},
	{JSLT.Imm(R1, -0x80000000, "").WithOffset(0), "if r1 s< 0x80000000 goto pc+0", "c5 01 0000 00000080"},
	{JSLT.Reg(R1, R2, "").WithOffset(0), "if r1 s< r2 goto pc+0", "cd 21 0000 00000000"},
	{JSLT.Imm32(R1, -0x80000000, "").WithOffset(0), "if w1 s< 0x80000000 goto pc+0", "c6 01 0000 00000080"},
	{JSLT.Reg32(R1, R2, "").WithOffset(0), "if w1 s< w2 goto pc+0", "ce 21 0000 00000000"},
	{JSLE.Imm(R1, 3, "").WithOffset(0), "if r1 s<= 0x3 goto pc+0", "d5 01 0000 03000000"},
	{JSLE.Reg(R1, R2, "").WithOffset(0), "if r1 s<= r2 goto pc+0", "dd 21 0000 00000000"},
	{JSLE.Imm32(R1, 3, "").WithOffset(0), "if w1 s<= 0x3 goto pc+0", "d6 01 0000 03000000"},
	{JSLE.Reg32(R1, R2, "").WithOffset(0), "if w1 s<= w2 goto pc+0", "de 21 0000 00000000"},
	{Goto("").WithOffset(0), "goto pc+0", "05 00 0000 00000000"},
	{GotoL(""), "gotol pc+0", "06 00 0000 00000000"},
	{MayGoto("").WithOffset(0), "may_goto pc+0", "e5 00 0000 00000000"},
	{Call(FnGetPrandomU32), "call bpf_get_prandom_u32#7", "85 00 0000 07000000"},
	{Call(FnKtimeGetNs), "call bpf_ktime_get_ns#5", "85 00 0000 05000000"},
	{LoadMem(R4, R10, -8, Byte), "r4 = *(u8 *)(r10 -8)", "71 a4 f8ff 00000000"},
	{LoadMem(R4, R10, -8, Half), "r4 = *(u16 *)(r10 -8)", "69 a4 f8ff 00000000"},
	{LoadMem(R4, R10, -8, Word), "r4 = *(u32 *)(r10 -8)", "61 a4 f8ff 00000000"},
	{LoadMem(R4, R10, -8, DWord), "r4 = *(u64 *)(r10 -8)", "79 a4 f8ff 00000000"},
	{LoadMemSX(R4, R10, -8, Byte), "r4 = *(s8 *)(r10 -8)", "91 a4 f8ff 00000000"},
	{LoadMemSX(R4, R10, -8, Half), "r4 = *(s16 *)(r10 -8)", "89 a4 f8ff 00000000"},
	{LoadMemSX(R4, R10, -8, Word), "r4 = *(s32 *)(r10 -8)", "81 a4 f8ff 00000000"},
	{StoreImm(R10, -16, 7, Byte), "*(u8 *)(r10 -16) = 7", "72 0a f0ff 07000000"},
	{StoreImm(R10, -16, 7, Half), "*(u16 *)(r10 -16) = 7", "6a 0a f0ff 07000000"},
	{StoreImm(R10, -16, 7, Word), "*(u32 *)(r10 -16) = 7", "62 0a f0ff 07000000"},
	{StoreImm(R10, -16, 7, DWord), "*(u64 *)(r10 -16) = 7", "7a 0a f0ff 07000000"},
	{StoreMem(R10, -8, R1, Byte), "*(u8 *)(r10 -8) = r1", "73 1a f8ff 00000000"},
	{StoreMem(R10, -8, R1, Half), "*(u16 *)(r10 -8) = r1", "6b 1a f8ff 00000000"},
	{StoreMem(R10, -8, R1, Word), "*(u32 *)(r10 -8) = r1", "63 1a f8ff 00000000"},
	{StoreMem(R10, -8, R1, DWord), "*(u64 *)(r10 -8) = r1", "7b 1a f8ff 00000000"},
	{LoadAbs(12, Byte), "r0 = *(u8 *)skb[12]", "30 00 0000 0c000000"},
	{LoadAbs(12, Half), "r0 = *(u16 *)skb[12]", "28 00 0000 0c000000"},
	{LoadAbs(12, Word), "r0 = *(u32 *)skb[12]", "20 00 0000 0c000000"},
	{LoadInd(R3, 14, Byte), "r0 = *(u8 *)skb[r3 + 14]", "50 30 0000 0e000000"},
	{LoadInd(R3, 14, Half), "r0 = *(u16 *)skb[r3 + 14]", "48 30 0000 0e000000"},
	{LoadInd(R3, 14, Word), "r0 = *(u32 *)skb[r3 + 14]", "40 30 0000 0e000000"},
	{LoadAbs(skfLLOff+12, Half), "r0 = *(u16 *)skb[-2097140]", "28 00 0000 0c00e0ff"},
	{LoadAbs(skfNetOff+9, Byte), "r0 = *(u8 *)skb[-1048567]", "30 00 0000 0900f0ff"},
	{LoadImm64(R4, 0x123456789abcdef0), "r4 = 0x123456789abcdef0",
		"18 04 0000 f0debc9a" + // r4 = 0x123456789abcdef0
			"00 00 0000 78563412"},
	{LoadImm64(R0, -1), "r0 = 0xffffffffffffffff",
		"18 00 0000 ffffffff" + // r0 = 0xffffffffffffffff
			"00 00 0000 ffffffff"},
	{LoadImm64(R1, 5), "r1 = 0x5",
		"18 01 0000 05000000" + // r1 = 0x5
			"00 00 0000 00000000"},
	{AtomicAdd.Mem(R10, -8, R1, Word), "lock *(u32 *)(r10 -8) += r1", "c3 1a f8ff 00000000"},
	{AtomicOr.Mem(R10, -8, R1, Word), "lock *(u32 *)(r10 -8) |= r1", "c3 1a f8ff 40000000"},
	{AtomicAnd.Mem(R10, -8, R1, Word), "lock *(u32 *)(r10 -8) &= r1", "c3 1a f8ff 50000000"},
	{AtomicXor.Mem(R10, -8, R1, Word), "lock *(u32 *)(r10 -8) ^= r1", "c3 1a f8ff a0000000"},
	{FetchAdd.Mem(R10, -8, R1, Word), "r1 = atomic_fetch_add((u32 *)(r10 -8), r1)", "c3 1a f8ff 01000000"},
	{FetchOr.Mem(R10, -8, R1, Word), "r1 = atomic_fetch_or((u32 *)(r10 -8), r1)", "c3 1a f8ff 41000000"},
	{FetchAnd.Mem(R10, -8, R1, Word), "r1 = atomic_fetch_and((u32 *)(r10 -8), r1)", "c3 1a f8ff 51000000"},
	{FetchXor.Mem(R10, -8, R1, Word), "r1 = atomic_fetch_xor((u32 *)(r10 -8), r1)", "c3 1a f8ff a1000000"},
	{Xchg.Mem(R10, -8, R1, Word), "r1 = atomic_xchg((u32 *)(r10 -8), r1)", "c3 1a f8ff e1000000"},
	{CmpXchg.Mem(R10, -8, R1, Word), "r0 = atomic_cmpxchg((u32 *)(r10 -8), r0, r1)", "c3 1a f8ff f1000000"},
	{AtomicAdd.Mem(R10, -8, R1, DWord), "lock *(u64 *)(r10 -8) += r1", "db 1a f8ff 00000000"},
	{AtomicOr.Mem(R10, -8, R1, DWord), "lock *(u64 *)(r10 -8) |= r1", "db 1a f8ff 40000000"},
	{AtomicAnd.Mem(R10, -8, R1, DWord), "lock *(u64 *)(r10 -8) &= r1", "db 1a f8ff 50000000"},
	{AtomicXor.Mem(R10, -8, R1, DWord), "lock *(u64 *)(r10 -8) ^= r1", "db 1a f8ff a0000000"},
	{FetchAdd.Mem(R10, -8, R1, DWord), "r1 = atomic64_fetch_add((u64 *)(r10 -8), r1)", "db 1a f8ff 01000000"},
	{FetchOr.Mem(R10, -8, R1, DWord), "r1 = atomic64_fetch_or((u64 *)(r10 -8), r1)", "db 1a f8ff 41000000"},
	{FetchAnd.Mem(R10, -8, R1, DWord), "r1 = atomic64_fetch_and((u64 *)(r10 -8), r1)", "db 1a f8ff 51000000"},
	{FetchXor.Mem(R10, -8, R1, DWord), "r1 = atomic64_fetch_xor((u64 *)(r10 -8), r1)", "db 1a f8ff a1000000"},
	{Xchg.Mem(R10, -8, R1, DWord), "r1 = atomic64_xchg((u64 *)(r10 -8), r1)", "db 1a f8ff e1000000"},
	{CmpXchg.Mem(R10, -8, R1, DWord), "r0 = atomic64_cmpxchg((u64 *)(r10 -8), r0, r1)", "db 1a f8ff f1000000"},
	{LoadAcq.Mem(R1, 0, R2, Byte), "r1 = load_acquire((u8 *)(r2 +0))", "d3 21 0000 00010000"},
	{LoadAcq.Mem(R1, 0, R2, Half), "r1 = load_acquire((u16 *)(r2 +0))", "cb 21 0000 00010000"},
	{LoadAcq.Mem(R1, 0, R2, Word), "r1 = load_acquire((u32 *)(r2 +0))", "c3 21 0000 00010000"},
	{LoadAcq.Mem(R1, 0, R2, DWord), "r1 = load_acquire((u64 *)(r2 +0))", "db 21 0000 00010000"},
	{StoreRel.Mem(R1, -8, R2, Byte), "store_release((u8 *)(r1 -8), r2)", "d3 21 f8ff 10010000"},
	{StoreRel.Mem(R1, -8, R2, Half), "store_release((u16 *)(r1 -8), r2)", "cb 21 f8ff 10010000"},
	{StoreRel.Mem(R1, -8, R2, Word), "store_release((u32 *)(r1 -8), r2)", "c3 21 f8ff 10010000"},
	{StoreRel.Mem(R1, -8, R2, DWord), "store_release((u64 *)(r1 -8), r2)", "db 21 f8ff 10010000"},
	{Exit(), "exit", "95 00 0000 00000000"},
}

// pseudoForms are the forms whose kernel text depends on the running
// kernel (LD_IMM64 with a map or BTF object, whose immediate the verifier
// replaces with an address; kfunc calls, which it names from BTF) or that
// need a subprogram (BPF-to-BPF calls, LoadFunc): Instruction.String prints
// them in purebpf's own syntax, which Parse reads back.
var pseudoForms = []form{
	{LoadMapFD(R1, 3), "r1 = map[fd:3]",
		"18 11 0000 03000000" + // r1 = map[fd:3]
			"00 00 0000 00000000"},
	{LoadMapValue(R1, 3, 8), "r1 = map[fd:3][0]+8",
		"18 21 0000 03000000" + // r1 = map[fd:3][0]+8
			"00 00 0000 08000000"},
	{LoadMapIdx(R1, 0), "r1 = map[idx:0]",
		"18 51 0000 00000000" + // r1 = map[idx:0]
			"00 00 0000 00000000"},
	{LoadMapIdxValue(R1, 1, 4), "r1 = map[idx:1][0]+4",
		"18 61 0000 01000000" + // r1 = map[idx:1][0]+4
			"00 00 0000 04000000"},
	{LoadBTFID(R1, 42), "r1 = btf[id:42]",
		"18 31 0000 2a000000" + // r1 = btf[id:42]
			"00 00 0000 00000000"},
	{LoadFunc(R2, "").withConstant(3), "r2 = func[pc+3]",
		"18 42 0000 03000000" + // r2 = func[pc+3]
			"00 00 0000 00000000"},
	{CallLabel("").withConstant(3), "call pc+3", "85 10 0000 03000000"},
	{CallKfunc(1234), "call kernel-function#1234", "85 20 0000 d2040000"},
}

// rfcForms are forms the kernel does not load, or loads without printing
// what sets them apart: those RFC 9669 defines and the kernel refuses
// (callx, shifts by an immediate out of range, which the RFC masks, and
// division by an immediate 0), and exit with an offset, which the kernel
// ignores. Their text is purebpf's.
var rfcForms = []form{
	{CallX(R2), "callx r2", "8d 02 0000 00000000"},
	{LSh.Imm(R1, 64), "r1 <<= 64", "67 01 0000 40000000"},
	{RSh.Imm32(R1, -1), "w1 >>= -1", "74 01 0000 ffffffff"},
	{ArSh.Imm(R1, 100), "r1 s>>= 100", "c7 01 0000 64000000"},
	{Div.Imm(R1, 0), "r1 /= 0", "37 01 0000 00000000"},
	{SMod.Imm32(R1, 0), "w1 s%= 0", "94 01 0100 00000000"},
	{Exit().WithOffset(1), "exit off:1", "95 00 0100 00000000"},
}

func allForms() []form {
	return append(append(append([]form(nil), forms...), pseudoForms...), rfcForms...)
}

func TestForms(t *testing.T) {
	for _, f := range allForms() {
		t.Run(f.text, func(t *testing.T) {
			want := f.bytes(t)
			got, err := Instructions{f.ins}.Assemble()
			if err != nil {
				t.Fatalf("Assemble: %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("Assemble = % x, want % x", got, want)
			}
			if s := f.ins.String(); s != f.text {
				t.Errorf("String = %q, want %q", s, f.text)
			}
			dec, err := Disassemble(want)
			if err != nil {
				t.Fatalf("Disassemble: %v", err)
			}
			if len(dec) != 1 || dec[0] != f.ins {
				t.Errorf("Disassemble = %#v, want %#v", dec, f.ins)
			}
			parsed, err := Parse(f.text)
			if err != nil {
				t.Fatalf("Parse(%q): %v", f.text, err)
			}
			if len(parsed) != 1 || parsed[0] != f.ins {
				t.Errorf("Parse(%q) = %#v, want %#v", f.text, parsed, f.ins)
			}
			pb, err := parsed.Assemble()
			if err != nil || !bytes.Equal(pb, want) {
				t.Errorf("Parse(%q).Assemble() = % x, %v; want % x", f.text, pb, err, want)
			}
		})
	}
}

// TestFormsBigEndian checks the big-endian encoding: the same fields with
// the register nibbles swapped (dst_reg is the first bit field, which
// big-endian compilers place in the high nibble) and offset and immediate
// byte-reversed.
func TestFormsBigEndian(t *testing.T) {
	for _, f := range allForms() {
		t.Run(f.text, func(t *testing.T) {
			le := f.bytes(t)
			want := make([]byte, 0, len(le))
			for i := 0; i < len(le); i += 8 {
				s := le[i : i+8]
				want = append(want, s[0], s[1]<<4|s[1]>>4)
				want = binary.BigEndian.AppendUint16(want, binary.LittleEndian.Uint16(s[2:4]))
				want = binary.BigEndian.AppendUint32(want, binary.LittleEndian.Uint32(s[4:8]))
			}
			got, err := Instructions{f.ins}.AppendAssembled([]byte{0xaa}, binary.BigEndian)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got[1:], want) || got[0] != 0xaa {
				t.Errorf("AppendAssembled(BigEndian) = % x, want aa % x", got, want)
			}
			dec, err := DisassembleOrder(want, binary.BigEndian)
			if err != nil || len(dec) != 1 || dec[0] != f.ins {
				t.Errorf("DisassembleOrder(BigEndian) = %v, %v; want %v", dec, err, f.ins)
			}
			// A ByteOrder of another type takes the generic path.
			got, err = Instructions{f.ins}.AppendAssembled(nil, otherBigEndian{})
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("AppendAssembled(otherBigEndian) = % x, %v; want % x", got, err, want)
			}
			dec, err = DisassembleOrder(want, otherBigEndian{})
			if err != nil || len(dec) != 1 || dec[0] != f.ins {
				t.Errorf("DisassembleOrder(otherBigEndian) = %v, %v; want %v", dec, err, f.ins)
			}
		})
	}
}

// otherBigEndian is big-endian, but not binary.BigEndian.
type otherBigEndian struct{ binary.ByteOrder }

func (otherBigEndian) Uint16(b []byte) uint16       { return binary.BigEndian.Uint16(b) }
func (otherBigEndian) Uint32(b []byte) uint32       { return binary.BigEndian.Uint32(b) }
func (otherBigEndian) PutUint16(b []byte, v uint16) { binary.BigEndian.PutUint16(b, v) }
func (otherBigEndian) PutUint32(b []byte, v uint32) { binary.BigEndian.PutUint32(b, v) }
