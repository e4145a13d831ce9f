package asm

import (
	"errors"
	"strings"
	"testing"
)

// TestParseVariants checks the spellings Parse accepts beyond the kernel's
// own text, and that they mean what the kernel's text means.
func TestParseVariants(t *testing.T) {
	for _, tc := range []struct {
		src  string
		want Instruction
	}{
		{"r1 += 0x10", Add.Imm(R1, 16)},
		{"r1 += 0xffffffff", Add.Imm(R1, -1)},
		{"r1 += -0x10", Add.Imm(R1, -16)},
		{"r1 += +5", Add.Imm(R1, 5)},
		{"w1 = 0x10", Mov.Imm32(R1, 16)},
		{"r1 = 16", Mov.Imm(R1, 16)},
		{"r1 = 0x10", LoadImm64(R1, 16)},
		{"r1 = 16 ll", LoadImm64(R1, 16)},
		{"r1 = 4294967296", LoadImm64(R1, 1<<32)},
		{"r1 = -2147483649", LoadImm64(R1, -2147483649)},
		{"r1 = -9223372036854775808", LoadImm64(R1, -1<<63)},
		{"r1 = 0xffffffffffffffff", LoadImm64(R1, -1)},
		{"r1 = - 1", Mov.Imm(R1, -1)},
		{"r1 = -0", Mov.Imm(R1, 0)},
		{"  if r1 == 2048 goto pc+3  // IPv4", JEq.Imm(R1, 0x800, "").WithOffset(3)},
		{"if r1 s< -1 goto pc-1", JSLT.Imm(R1, -1, "").WithOffset(-1)},
		{"if w1 & w2 goto out", JSet.Reg32(R1, R2, "out")},
		{"goto pc", Goto("pc")},
		{"call pc-2", CallLabel("").withConstant(-2)},
		{"call bpf_get_prandom_u32", Call(FnGetPrandomU32)},
		{"call unknown#300", Call(300)},
		{"call my_func", CallLabel("my_func")},
		{"r0 = *(u16 *)skb[-0x200000]", LoadAbs(skfLLOff, Half)},
		{"r0 = *(u8 *)skb[r3 + -4]", LoadInd(R3, -4, Byte)},
		{"r1 = *(u64 *)(r10)", LoadMem(R1, R10, 0, DWord)},
		{"r1 = *(u64 *)(r10 - 8)", LoadMem(R1, R10, -8, DWord)},
		{"*(u8 *)(r1 +2) = 0xff", StoreImm(R1, 2, 255, Byte)},
		{"r1 = map[fd:4]", LoadMapFD(R1, 4)},
		{"r1 = map[idx:2][0]+16", LoadMapIdxValue(R1, 2, 16)},
		{"r1 = btf[id:7,fd:3]", LoadBTFID(R1, 7).withConstant(7 | 3<<32)},
		{"r1 = func[pc-4]", LoadFunc(R1, "").withConstant(0xfffffffc)},
		{"call kernel-function#5 off:1", CallKfunc(5).WithOffset(1)},
		{"gotol pc-70000", GotoL("").withConstant(-70000)},
	} {
		got, err := Parse(tc.src)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.src, err)
			continue
		}
		if len(got) != 1 || got[0] != tc.want {
			t.Errorf("Parse(%q) = %#v, want %#v", tc.src, got, tc.want)
		}
	}
}

func TestParseProgram(t *testing.T) {
	src := `
; accept IPv4 frames only
	r6 = r1
	r0 = *(u16 *)skb[12]
	if r0 != 0x800 goto drop
accept: r0 = -1
	exit
drop:
	r0 = 0 // drop
	exit
`
	insns, err := Parse(src)
	if err != nil {
		t.Fatal(err)
	}
	want := Instructions{
		Mov.Reg(R6, R1),
		LoadAbs(12, Half),
		JNE.Imm(R0, 0x800, "drop"),
		Mov.Imm(R0, -1).WithLabel("accept"),
		Exit(),
		Mov.Imm(R0, 0).WithLabel("drop"),
		Exit(),
	}
	if len(insns) != len(want) {
		t.Fatalf("Parse = %v, want %v", insns, want)
	}
	for i := range want {
		if insns[i] != want[i] {
			t.Errorf("instruction %d = %#v, want %#v", i, insns[i], want[i])
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		src       string
		line, col int
		msg       string
	}{
		{"r0 = 0\n  frob r1", 2, 3, "expected an instruction"},
		{"r11 = 0", 1, 1, "expected an instruction"},
		{"r01 = 0", 1, 1, "expected an instruction"},
		{"r0 ? 1", 1, 4, "expected an assignment"},
		{"*(u8 *)(r1 +0) = 1 2", 1, 20, "unexpected"},
		{"r1 += w2", 1, 9, "differ in width"},
		{"w1 = *(u8 *)(r1 +0)", 1, 1, "64-bit register"},
		{"r1 = -r2", 1, 7, "expected r1, found r2"},
		{"r1 = (s4)r2", 1, 8, "sign extension from 4 bits"},
		{"r1 = (s8 r2", 1, 10, `expected ")"`},
		{"r1 = foo", 1, 6, "unknown operand"},
		{"r1 = 0x", 1, 6, "expected a number"},
		{"r1 = 18446744073709551616", 1, 6, "out of range"},
		{"w1 = 4294967296", 1, 6, "out of range"},
		{"r1 = be8 r1", 1, 6, "expected be16"},
		{"w1 = be16 w1", 1, 1, "r registers"},
		{"r1 = le16 r2", 1, 11, "expected r1, found r2"},
		{"r1 = *(u128 *)(r1 +0)", 1, 8, "access size"},
		{"r1 = *(s64 *)(r1 +0)", 1, 8, "access size"},
		{"r1 = *(u8 *)(r1 8)", 1, 17, "expected an offset"},
		{"r1 = *(u8 *)(w1 +0)", 1, 14, "64-bit register"},
		{"r1 = *(u8 *)(r1 +40000)", 1, 17, "out of range"},
		{"r1 = *(u8 *)r1", 1, 13, `expected "("`},
		{"r1 = *(u8 *)(r1 +0", 1, 19, `expected ")"`},
		{"r1 = *(u8 *)skb[12]", 1, 1, "write r0"},
		{"r0 = *(u64 *)skb[12]", 1, 18, "u8, u16 or u32"},
		{"r0 = *(u8 *)skb[r1 - 2]", 1, 20, `expected "+"`},
		{"r0 = *(u8 *)skb[12", 1, 19, `expected "]"`},
		{"r0 = *(u8 *)skb[x]", 1, 17, "expected a number"},
		{"*(u8 *)(r1 +0) = w2", 1, 18, "64-bit register"},
		{"*(u8 *)(r1 +0) 1", 1, 16, `expected "="`},
		{"*u8", 1, 2, `expected "("`},
		{"lock *(u64 *)(r1 +0) -= r2", 1, 22, "expected +=, |=, &= or ^="},
		{"lock (u64 *)(r1 +0) += r2", 1, 6, `expected "*"`},
		{"r1 = atomic64_fetch_sub((u64 *)(r1 +0), r1)", 1, 6, "unknown atomic operation"},
		{"w1 = atomic_fetch_add((u32 *)(r1 +0), r1)", 1, 1, "64-bit register"},
		{"r1 = atomic_fetch_add((u64 *)(r1 +0), r1)", 1, 23, "atomic64_ goes with u64"},
		{"r1 = atomic64_fetch_add((u64 *)(r2 +0), r3)", 1, 41, "returns in its operand register"},
		{"r1 = atomic64_cmpxchg((u64 *)(r2 +0), r0, r3)", 1, 1, "returns in r0"},
		{"r0 = atomic64_cmpxchg((u64 *)(r2 +0), r1, r3)", 1, 39, "expected r0, found r1"},
		{"r0 = atomic64_cmpxchg((u64 *)(r2 +0) r0, r3)", 1, 38, `expected ","`},
		{"r0 = atomic64_xchg((u64 *)(r2 +0), r0", 1, 38, `expected ")"`},
		{"r0 = atomic64_xchg(u64 *)(r2 +0), r0)", 1, 20, `expected "("`},
		{"w1 = load_acquire((u64 *)(r2 +0))", 1, 1, "64-bit register"},
		{"r1 = load_acquire(u64 *)(r2 +0))", 1, 19, `expected "("`},
		{"r1 = load_acquire((u64 *)(r2 +0)", 1, 33, `expected ")"`},
		{"store_release((u64 *)(r1 +0) r2)", 1, 30, `expected ","`},
		{"store_release(u64 *)(r1 +0), r2)", 1, 15, `expected "("`},
		{"store_release((u64 *)(r1 +0), w2)", 1, 31, "64-bit register"},
		{"w1 = map[fd:1]", 1, 1, "64-bit register"},
		{"r1 = map(fd:1)", 1, 9, `expected "["`},
		{"r1 = map[id:1]", 1, 10, `expected "fd:"`},
		{"r1 = map[fd:-1]", 1, 13, "out of range"},
		{"r1 = map[fd:1", 1, 14, `expected "]"`},
		{"r1 = map[fd:1][0]-8", 1, 18, `expected "+"`},
		{"r1 = map[fd:1][0]+x", 1, 19, "expected a number"},
		{"r1 = btf[id:1,id:2]", 1, 15, `expected "fd:"`},
		{"r1 = btf[id:1,fd:x]", 1, 18, "expected a number"},
		{"r1 = func[3]", 1, 11, "expected a label or pc+N"},
		{"r1 = func[pc+1", 1, 15, `expected "]"`},
		{"if r1 =~ r2 goto x", 1, 7, "expected a comparison"},
		{"if r1 == w2 goto x", 1, 12, "differ in width"},
		{"if r1 == 1 goto pc+40000", 1, 19, "out of range"},
		{"if r1 == 1 goto", 1, 16, "expected a label"},
		{"if r1 == 1 jump x", 1, 12, `expected "goto"`},
		{"if x == 1 goto y", 1, 4, "expected a register"},
		{"if r1 == x goto y", 1, 10, "expected a number"},
		{"goto pc+40000", 1, 14, "use gotol"},
		{"goto 3", 1, 6, "expected a label"},
		{"call bpf_get_prandom_u32#8", 1, 6, "is number 7, not 8"},
		{"call bpf_nosuch#8", 1, 17, "helper 8 is bpf_get_smp_processor_id"},
		{"call bpf_get_prandom_u32#x", 1, 26, "expected a number"},
		{"call kernel-function#x", 1, 22, "expected a number"},
		{"call kernel-function#1 off:x", 1, 28, "expected a number"},
		{"call 7", 1, 6, "expected a label"},
		{"r1 = (s8)5", 1, 1, "invalid instruction"},
		{"a:\nb:\nexit", 2, 1, `label "b" follows label "a"`},
		{"exit\nend:\n// nothing", 2, 1, `label "end" has no instruction`},
	} {
		t.Run(tc.src, func(t *testing.T) {
			_, err := Parse(tc.src)
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("Parse error %v, want a *ParseError", err)
			}
			if pe.Line != tc.line || pe.Column != tc.col || !strings.Contains(pe.Msg, tc.msg) {
				t.Errorf("Parse error %q at %d:%d, want %q at %d:%d", pe.Msg, pe.Line, pe.Column, tc.msg, tc.line, tc.col)
			}
			if !strings.HasPrefix(err.Error(), "line ") {
				t.Errorf("Error() = %q, want it to start with the line", err)
			}
		})
	}
}
