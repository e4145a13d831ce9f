package vm_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/sockfilter/vm"
)

// The table tests of each instruction family write programs in the
// kernel's syntax (asm.Parse) and give the value r0 must end with, worked
// out from RFC 9669 and the kernel's semantics by hand.

type isaCase struct {
	name string
	src  string
	want uint64
}

// newVM parses src and makes a VM of it with opts.
func newVM(t testing.TB, src string, opts *vm.Options) *vm.VM {
	t.Helper()
	insns, err := asm.Parse(src)
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, src)
	}
	v, err := vm.New(insns, opts)
	if err != nil {
		t.Fatalf("vm.New: %v\n%s", err, src)
	}
	return v
}

func runISA(t *testing.T, cases []isaCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := newVM(t, tc.src, nil).RunMemory(nil)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("r0 = %#x, want %#x\n%s", got, tc.want, tc.src)
			}
		})
	}
}

// prog joins lines into a program ending with exit.
func prog(lines ...string) string { return strings.Join(lines, "\n") + "\nexit\n" }

func TestALU64(t *testing.T) {
	runISA(t, []isaCase{
		{"mov imm sign-extends", prog("r0 = -2"), 0xfffffffffffffffe},
		{"ld_imm64", prog("r0 = 0x123456789abcdef0"), 0x123456789abcdef0},
		{"add wraps", prog("r0 = -1", "r0 += 2"), 1},
		{"add reg", prog("r0 = 40", "r1 = 2", "r0 += r1"), 42},
		{"sub below zero", prog("r0 = 3", "r0 -= 5"), 0xfffffffffffffffe},
		{"mul wraps", prog("r0 = 0x100000000", "r0 *= r0"), 0},
		{"mul by negative imm", prog("r0 = 3", "r0 *= -2"), 0xfffffffffffffffa},
		{"div imm is sign-extended then unsigned", prog("r0 = 10", "r0 /= -1"), 0},
		{"div", prog("r0 = 100", "r1 = 7", "r0 /= r1"), 14},
		{"div by zero reg is 0", prog("r0 = 7", "r1 = 0", "r0 /= r1"), 0},
		{"div by zero imm is 0 (RFC)", prog("r0 = 7", "r0 /= 0"), 0},
		{"mod", prog("r0 = 17", "r0 %= 5"), 2},
		{"mod by zero reg keeps dst", prog("r0 = -5", "r1 = 0", "r0 %= r1"), 0xfffffffffffffffb},
		{"mod by zero imm keeps dst (RFC)", prog("r0 = -5", "r0 %= 0"), 0xfffffffffffffffb},
		{"sdiv truncates toward zero", prog("r0 = -7", "r0 s/= 2"), 0xfffffffffffffffd},
		{"sdiv INT64_MIN by -1", prog("r0 = 0x8000000000000000", "r0 s/= -1"), 0x8000000000000000},
		{"sdiv by zero reg is 0", prog("r0 = -7", "r1 = 0", "r0 s/= r1"), 0},
		{"smod truncated", prog("r0 = -13", "r0 s%= 3"), 0xffffffffffffffff},
		{"smod by negative", prog("r0 = 13", "r0 s%= -3"), 1},
		{"smod INT64_MIN by -1", prog("r0 = 0x8000000000000000", "r1 = -1", "r0 s%= r1"), 0},
		{"smod by zero keeps dst", prog("r0 = -13", "r1 = 0", "r0 s%= r1"), 0xfffffffffffffff3},
		{"or", prog("r0 = 0xf0f0", "r0 |= 3855"), 0xffff},
		{"and imm sign-extends", prog("r0 = 0x123456789", "r0 &= -16"), 0x123456780},
		{"xor", prog("r0 = -1", "r0 ^= 1"), 0xfffffffffffffffe},
		{"lsh 63", prog("r0 = 1", "r0 <<= 63"), 0x8000000000000000},
		{"lsh reg masked to 6 bits", prog("r0 = 1", "r1 = 65", "r0 <<= r1"), 2},
		{"lsh imm out of range masked (RFC)", prog("r0 = 1", "r0 <<= 65"), 2},
		{"rsh logical", prog("r0 = -1", "r0 >>= 60"), 0xf},
		{"rsh reg masked", prog("r0 = 0x100", "r1 = 68", "r0 >>= r1"), 0x10},
		{"arsh sign-extends", prog("r0 = 0x8000000000000000", "r0 s>>= 63"), 0xffffffffffffffff},
		{"arsh reg masked", prog("r0 = -256", "r1 = 64", "r0 s>>= r1"), 0xffffffffffffff00},
		{"neg", prog("r0 = 1", "r0 = -r0"), 0xffffffffffffffff},
		{"neg INT64_MIN", prog("r0 = 0x8000000000000000", "r0 = -r0"), 0x8000000000000000},
		{"movsx8", prog("r1 = 0x180", "r0 = (s8)r1"), 0xffffffffffffff80},
		{"movsx16", prog("r1 = 0x8000", "r0 = (s16)r1"), 0xffffffffffff8000},
		{"movsx32", prog("w1 = -2147483648", "r0 = (s32)r1"), 0xffffffff80000000},
		{"movsx8 positive", prog("r1 = 0x17f", "r0 = (s8)r1"), 0x7f},
		{"be16", prog("r0 = 0x0102030405060708", "r0 = be16 r0"), 0x0807},
		{"be32", prog("r0 = 0x0102030405060708", "r0 = be32 r0"), 0x08070605},
		{"be64", prog("r0 = 0x0102030405060708", "r0 = be64 r0"), 0x0807060504030201},
		{"le16 truncates", prog("r0 = 0x0102030405060708", "r0 = le16 r0"), 0x0708},
		{"le32 truncates", prog("r0 = 0x0102030405060708", "r0 = le32 r0"), 0x05060708},
		{"le64", prog("r0 = 0x0102030405060708", "r0 = le64 r0"), 0x0102030405060708},
		{"bswap16", prog("r0 = 0x0102030405060708", "r0 = bswap16 r0"), 0x0807},
		{"bswap32", prog("r0 = 0x0102030405060708", "r0 = bswap32 r0"), 0x08070605},
		{"bswap64", prog("r0 = 0x0102030405060708", "r0 = bswap64 r0"), 0x0807060504030201},
	})
}

func TestALU32(t *testing.T) {
	runISA(t, []isaCase{
		{"mov zero-extends", prog("w0 = -1"), 0xffffffff},
		{"mov reg zero-extends", prog("r1 = -1", "w0 = w1"), 0xffffffff},
		{"add zero-extends", prog("r0 = -1", "w0 += 2"), 1},
		{"sub wraps in 32 bits", prog("w0 = 3", "w0 -= 5"), 0xfffffffe},
		{"mul", prog("r0 = 0x10001", "w0 *= 65537"), 0x00020001},
		{"div imm is unsigned 32 bits", prog("w0 = -1", "w0 /= -1"), 1},
		{"div by zero reg is 0", prog("w0 = 7", "w1 = 0", "w0 /= w1"), 0},
		{"div ignores the divisor's upper half", prog("r0 = 7", "r1 = 0x100000000", "w0 /= w1"), 0},
		{"mod by zero zero-extends dst", prog("r0 = -5", "w1 = 0", "w0 %= w1"), 0xfffffffb},
		{"mod by zero imm zero-extends dst (RFC)", prog("r0 = -5", "w0 %= 0"), 0xfffffffb},
		{"mod", prog("w0 = 17", "w0 %= 5"), 2},
		{"sdiv", prog("w0 = -7", "w0 s/= 2"), 0xfffffffd},
		{"sdiv INT32_MIN by -1", prog("w0 = -2147483648", "w0 s/= -1"), 0x80000000},
		{"sdiv by zero", prog("w0 = -7", "w1 = 0", "w0 s/= w1"), 0},
		{"smod truncated", prog("w0 = -13", "w0 s%= 3"), 0xffffffff},
		{"smod by zero zero-extends dst", prog("r0 = -5", "w1 = 0", "w0 s%= w1"), 0xfffffffb},
		{"smod INT32_MIN by -1", prog("w0 = -2147483648", "w0 s%= -1"), 0},
		{"or", prog("r0 = -1", "w0 |= 0"), 0xffffffff},
		{"and", prog("r0 = -1", "w0 &= 255"), 0xff},
		{"xor self", prog("r0 = -1", "w0 ^= w0"), 0},
		{"lsh 31", prog("w0 = 1", "w0 <<= 31"), 0x80000000},
		{"lsh reg masked to 5 bits", prog("w0 = 1", "w1 = 33", "w0 <<= w1"), 2},
		{"lsh imm out of range masked (RFC)", prog("w0 = 0x11", "w0 <<= 60"), 0x10000000},
		{"rsh", prog("r0 = -1", "w0 >>= 28"), 0xf},
		{"arsh", prog("w0 = -2147483648", "w0 s>>= 31"), 0xffffffff},
		{"arsh reg masked", prog("w0 = -2147483648", "w1 = 32", "w0 s>>= w1"), 0x80000000},
		{"neg", prog("w0 = 1", "w0 = -w0"), 0xffffffff},
		{"movsx8", prog("w1 = 128", "w0 = (s8)w1"), 0xffffff80},
		{"movsx16", prog("w1 = 32769", "w0 = (s16)w1"), 0xffff8001},
	})
}

// jump returns a program that returns 1 when cond, an if statement's
// condition, holds after the setup.
func jump(setup []string, cond string) string {
	return strings.Join(setup, "\n") + "\nr0 = 0\nif " + cond + " goto yes\nexit\nyes:\nr0 = 1\nexit\n"
}

func TestJumps(t *testing.T) {
	neg := []string{"r1 = -1", "r2 = 1"}         // r1 is -1 signed, the largest unsigned
	hi := []string{"r1 = 0x100000005", "r2 = 5"} // equal in their low 32 bits only
	w := []string{"w1 = -2147483648", "w2 = 1"}  // r1 is 0x80000000: negative in 32 bits only
	u := []string{"w1 = -1"}                     // r1 is 0xffffffff
	runISA(t, []isaCase{
		{"jeq", jump(hi, "r1 == r2"), 0},
		{"jeq32", jump(hi, "w1 == w2"), 1},
		{"jne", jump(hi, "r1 != r2"), 1},
		{"jne32", jump(hi, "w1 != w2"), 0},
		{"jgt unsigned", jump(neg, "r1 > r2"), 1},
		{"jsgt signed", jump(neg, "r1 s> r2"), 0},
		{"jlt unsigned", jump(neg, "r1 < r2"), 0},
		{"jslt signed", jump(neg, "r1 s< r2"), 1},
		{"jge equal", jump([]string{"r1 = 3", "r2 = 3"}, "r1 >= r2"), 1},
		{"jle equal", jump([]string{"r1 = 3", "r2 = 3"}, "r1 <= r2"), 1},
		{"jsge", jump(neg, "r1 s>= r2"), 0},
		{"jsle", jump(neg, "r1 s<= r2"), 1},
		{"jset", jump([]string{"r1 = 6"}, "r1 & 0x2"), 1},
		{"jset none", jump([]string{"r1 = 4"}, "r1 & 0x2"), 0},
		{"jset32 ignores the upper half", jump([]string{"r1 = 0x100000000", "r2 = -1"}, "w1 & w2"), 0},
		{"jsgt32 signed in 32 bits", jump(w, "w1 s> w2"), 0},
		{"jsgt 64 bits of a 32-bit value", jump(w, "r1 s> r2"), 1},
		{"jgt32", jump(w, "w1 > w2"), 1},
		{"jslt32", jump(w, "w1 s< 0x0"), 1},
		{"jsle32 imm", jump(w, "w1 s<= -1"), 1},
		{"imm sign-extends to 64 bits", jump(u, "r1 == -1"), 0},
		{"jmp32 imm", jump(u, "w1 == -1"), 1},
		{"jlt imm sign-extended", jump([]string{"r1 = 0xffffffff80000000"}, "r1 < -2147483647"), 1},
		{"goto", "r0 = 1\ngoto out\nr0 = 2\nout:\nexit\n", 1},
		{"gotol", "r0 = 1\ngotol out\nr0 = 2\nout:\nexit\n", 1},
		{"backward loop", "r0 = 0\nr1 = 10\nloop:\nr0 += r1\nr1 -= 1\nif r1 != 0x0 goto loop\nexit\n", 55},
		{"exit not last", "r0 = 3\ngoto l2\nl1:\nexit\nl2:\nr0 += 1\ngoto l1\n", 4},
	})
}

// TestMayGoto checks that may_goto falls through BPF_MAX_LOOPS times in a
// frame and then jumps.
func TestMayGoto(t *testing.T) {
	runISA(t, []isaCase{
		{"loop ends", "r0 = 0\nloop:\nmay_goto out\nr0 += 1\ngoto loop\nout:\nexit\n", 8 << 20},
	})
}

func TestLoadStore(t *testing.T) {
	runISA(t, []isaCase{
		{"u64", prog("r1 = 0x1122334455667788", "*(u64 *)(r10 -8) = r1", "r0 = *(u64 *)(r10 -8)"), 0x1122334455667788},
		{"u32 zero-extends", prog("r1 = -1", "*(u64 *)(r10 -8) = r1", "r0 = *(u32 *)(r10 -8)"), 0xffffffff},
		{"u16", prog("r1 = -1", "*(u64 *)(r10 -8) = r1", "r0 = *(u16 *)(r10 -6)"), 0xffff},
		{"u8", prog("r1 = 0x1ff", "*(u8 *)(r10 -1) = r1", "r0 = *(u8 *)(r10 -1)"), 0xff},
		{"little-endian", prog("r1 = 0x0102030405060708", "*(u64 *)(r10 -8) = r1", "r0 = *(u16 *)(r10 -8)"), 0x0708},
		{"s8", prog("*(u8 *)(r10 -1) = 128", "r0 = *(s8 *)(r10 -1)"), 0xffffffffffffff80},
		{"s16", prog("*(u16 *)(r10 -2) = -2", "r0 = *(s16 *)(r10 -2)"), 0xfffffffffffffffe},
		{"s32", prog("*(u32 *)(r10 -4) = -2147483648", "r0 = *(s32 *)(r10 -4)"), 0xffffffff80000000},
		{"st u64 imm sign-extends", prog("*(u64 *)(r10 -8) = -1", "r0 = *(u64 *)(r10 -8)"), 0xffffffffffffffff},
		{"st u32 keeps the rest", prog("*(u64 *)(r10 -8) = 0", "*(u32 *)(r10 -4) = 1", "r0 = *(u64 *)(r10 -8)"), 0x100000000},
		{"stack starts zeroed", prog("r0 = *(u64 *)(r10 -512)"), 0},
		{"pointer arithmetic", prog("*(u64 *)(r10 -16) = 7", "r1 = r10", "r1 += -16", "r0 = *(u64 *)(r1 +0)"), 7},
		{"load-acquire", prog("*(u32 *)(r10 -4) = 9", "r0 = load_acquire((u32 *)(r10 -4))"), 9},
		{"store-release", prog("r1 = 0x1ff", "store_release((u8 *)(r10 -1), r1)", "r0 = *(u8 *)(r10 -1)"), 0xff},
	})
}

func TestAtomics(t *testing.T) {
	const init = "r1 = 0x1122334455667788\n*(u64 *)(r10 -8) = r1\n"
	runISA(t, []isaCase{
		{"add64", prog(init, "r2 = 1", "lock *(u64 *)(r10 -8) += r2", "r0 = *(u64 *)(r10 -8)"), 0x1122334455667789},
		{"add64 keeps src", prog(init, "r2 = 1", "lock *(u64 *)(r10 -8) += r2", "r0 = r2"), 1},
		{"add32 on the low half", prog("r1 = 0x1ffffffff", "*(u64 *)(r10 -8) = r1", "r2 = 1", "lock *(u32 *)(r10 -8) += r2", "r0 = *(u64 *)(r10 -8)"), 0x100000000},
		{"or", prog(init, "r2 = 0xff", "lock *(u64 *)(r10 -8) |= r2", "r0 = *(u64 *)(r10 -8)"), 0x11223344556677ff},
		{"and32", prog(init, "r2 = 0xff", "lock *(u32 *)(r10 -8) &= r2", "r0 = *(u64 *)(r10 -8)"), 0x1122334400000088},
		{"xor", prog(init, "r2 = -1", "lock *(u64 *)(r10 -8) ^= r2", "r0 = *(u64 *)(r10 -8)"), 0xeeddccbbaa998877},
		{"fetch_add returns the old value", prog(init, "r2 = 1", "r2 = atomic64_fetch_add((u64 *)(r10 -8), r2)", "r0 = r2"), 0x1122334455667788},
		{"fetch_add32 zero-extends", prog(init, "r2 = -1", "r2 = atomic_fetch_add((u32 *)(r10 -4), r2)", "r0 = r2"), 0x11223344},
		{"fetch_or", prog(init, "r2 = 1", "r2 = atomic64_fetch_or((u64 *)(r10 -8), r2)", "r0 = *(u64 *)(r10 -8)", "r0 -= r2"), 1},
		{"fetch_and32", prog(init, "r2 = 0", "r2 = atomic_fetch_and((u32 *)(r10 -8), r2)", "r0 = r2"), 0x55667788},
		{"fetch_xor", prog(init, "r2 = 0xf", "r2 = atomic64_fetch_xor((u64 *)(r10 -8), r2)", "r0 = *(u64 *)(r10 -8)"), 0x1122334455667787},
		{"xchg", prog(init, "r2 = 5", "r2 = atomic64_xchg((u64 *)(r10 -8), r2)", "r0 = *(u64 *)(r10 -8)", "r0 += r2"), 5 + 0x1122334455667788},
		{"xchg32", prog(init, "r2 = -1", "r2 = atomic_xchg((u32 *)(r10 -8), r2)", "r0 = *(u64 *)(r10 -8)", "r0 ^= r2"), 0x11223344ffffffff ^ 0x55667788},
		{"cmpxchg stores when r0 matches", prog(init, "r0 = 0x1122334455667788", "r2 = 3", "r0 = atomic64_cmpxchg((u64 *)(r10 -8), r0, r2)", "r1 = *(u64 *)(r10 -8)", "r0 += r1"), 0x1122334455667788 + 3},
		{"cmpxchg keeps memory otherwise", prog(init, "r0 = 0", "r2 = 3", "r0 = atomic64_cmpxchg((u64 *)(r10 -8), r0, r2)", "r1 = *(u64 *)(r10 -8)", "r0 -= r1"), 0},
		{"cmpxchg32 compares the low half of r0", prog(init, "r0 = 0x7755667788", "r2 = 3", "r0 = atomic_cmpxchg((u32 *)(r10 -8), r0, r2)", "r1 = *(u64 *)(r10 -8)", "r1 <<= 32", "r0 |= r1"), 0x0000000355667788},
	})
}

func TestCalls(t *testing.T) {
	runISA(t, []isaCase{
		{"arguments, r0 and r6 to r9", `
			r1 = 1
			r2 = 2
			r3 = 3
			r4 = 4
			r5 = 5
			r6 = 6
			r7 = 7
			r8 = 8
			r9 = 9
			call sum
			r0 *= 1000
			r0 += r6
			r0 += r7
			r0 += r8
			r0 += r9
			exit
		sum:
			r0 = r1
			r0 += r2
			r0 += r3
			r0 += r4
			r0 += r5
			r6 = 0
			r7 = 0
			r8 = 0
			r9 = 0
			exit
		`, 15*1000 + 30},
		{"each frame has its own stack", `
			*(u64 *)(r10 -8) = 1
			call f
			r1 = *(u64 *)(r10 -8)
			r0 <<= 8
			r0 |= r1
			exit
		f:
			r0 = *(u64 *)(r10 -8)
			*(u64 *)(r10 -8) = 2
			r0 += 0x10
			exit
		`, 0x1001},
		{"the callee writes the caller's stack", `
			*(u64 *)(r10 -8) = 1
			r1 = r10
			r1 += -8
			call f
			r0 = *(u64 *)(r10 -8)
			exit
		f:
			*(u64 *)(r1 +0) = 42
			exit
		`, 42},
		{"nested calls", `
			r1 = 1
			call f
			exit
		f:
			r1 += 1
			call g
			r0 += 10
			exit
		g:
			r0 = r1
			exit
		`, 12},
	})
}

// runErr runs src with RunMemory and returns the error, which must be an
// *vm.Error at instruction index wrapping want.
func runErr(t *testing.T, src string, opts *vm.Options, index int, want error) *vm.Error {
	t.Helper()
	r0, err := newVM(t, src, opts).RunMemory(nil)
	var e *vm.Error
	if !errors.As(err, &e) {
		t.Fatalf("RunMemory = %#x, %v; want an *vm.Error\n%s", r0, err, src)
	}
	if e.Index != index || !errors.Is(err, want) {
		t.Errorf("error %q: index %d, want %d wrapping %v", err, e.Index, index, want)
	}
	if !strings.Contains(err.Error(), "instruction ") {
		t.Errorf("error %q does not name the instruction", err)
	}
	return e
}

func TestRunErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		src   string
		index int
		want  error
		msg   string
	}{
		{"NULL", prog("r1 = 0", "r0 = *(u64 *)(r1 +0)"), 1, vm.ErrMemory, "NULL"},
		{"past the input", prog("r0 = *(u8 *)(r1 +0)"), 0, vm.ErrMemory, "region of 0 bytes"},
		{"below the stack", prog("r1 = r10", "r1 += -520", "r0 = *(u64 *)(r1 +0)"), 2, vm.ErrMemory, "outside the stack"},
		{"above the stack", prog("r1 = r10", "r0 = *(u8 *)(r1 +0)"), 1, vm.ErrMemory, "stack"},
		{"store to nothing", prog("r1 = 0x7fffffff", "*(u32 *)(r1 +0) = 1", "r0 = 0"), 1, vm.ErrMemory, "no memory"},
		{"atomic on nothing", prog("r1 = 8", "r2 = 1", "lock *(u64 *)(r1 +0) += r2", "r0 = 0"), 2, vm.ErrMemory, "atomic"},
		{"budget", "r0 = 0\nloop:\nr0 += 1\ngoto loop\n", 2, vm.ErrBudget, "1000 instructions"},
		{"callx of an unknown helper", prog("r1 = 9999", "callx r1"), 1, vm.ErrCall, "9999"},
		{"callx of a helper socket filters may not call", prog("r1 = 9", "callx r1"), 1, vm.ErrCall, "bpf_skb_store_bytes"},
		{"call depth", "call f\nexit\nf:\ncall f\nexit\n", 2, vm.ErrCall, "more than 8"},
		{"legacy load without a socket buffer", prog("r6 = r1", "r0 = *(u8 *)skb[0]"), 1, vm.ErrCall, "RunMemory"},
		{"skb helper without a socket buffer", prog("call bpf_get_socket_uid"), 0, vm.ErrCall, "socket buffer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := runErr(t, tc.src, &vm.Options{Budget: 1000}, tc.index, tc.want)
			if !strings.Contains(e.Error(), tc.msg) {
				t.Errorf("error %q does not say %q", e, tc.msg)
			}
		})
	}
}

// TestNewErrors checks what New refuses, naming the instruction.
func TestNewErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		insns  asm.Instructions
		kernel bool
		index  int
		msg    string
	}{
		{"falls off the end", asm.Instructions{asm.Mov.Imm(asm.R0, 0)}, false, 0, "run off its end"},
		{"jump outside", asm.Instructions{asm.Goto("").WithOffset(5), asm.Exit()}, false, 0, "outside the program"},
		{"writes r10", asm.Instructions{asm.Mov.Imm(asm.R10, 0), asm.Exit()}, false, 0, "r10"},
		{"reserved field", asm.Instructions{asm.Exit().WithOffset(1)}, false, 0, "reserved field off"},
		{"undefined by the kernel's rules", asm.Instructions{asm.LSh.Imm(asm.R0, 64), asm.Exit()}, true, 0, "shift by 64"},
		{"callx by the kernel's rules", asm.Instructions{asm.CallX(asm.R1), asm.Exit()}, true, 0, "unknown call opcode"},
		{"division by 0 by the kernel's rules", asm.Instructions{asm.Div.Imm(asm.R0, 0), asm.Exit()}, true, 0, "division by an immediate 0"},
		{"stack beyond 512 bytes", asm.Instructions{asm.StoreImm(asm.R10, -520, 0, asm.DWord), asm.Exit()}, false, 0, "outside the 512-byte stack"},
		{"stack above r10", asm.Instructions{asm.LoadMem(asm.R0, asm.R10, -4, asm.DWord), asm.Exit()}, false, 0, "outside the 512-byte stack"},
		{"unknown helper", asm.Instructions{asm.Call(9999), asm.Exit()}, false, 0, "helper 9999, which the kernel does not have"},
		{"helper not for socket filters", asm.Instructions{asm.Call(asm.FnSkbStoreBytes), asm.Exit()}, false, 0, "socket filters may not call"},
		{"helper the VM lacks", asm.Instructions{asm.Call(asm.FnSpinLock), asm.Exit()}, false, 0, "does not implement"},
		{"kfunc", asm.Instructions{asm.CallKfunc(7), asm.Exit()}, false, 0, "kfunc"},
		{"map value", asm.Instructions{asm.LoadMapValue(asm.R1, 3, 0), asm.Exit()}, false, 0, "map value"},
		{"kernel variable", asm.Instructions{asm.LoadBTFID(asm.R1, 3), asm.Exit()}, false, 0, "kernel variable"},
		{"no instructions", nil, false, -1, "no instructions"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := vm.New(tc.insns, &vm.Options{Kernel: tc.kernel})
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("New = %v, want an error saying %q", err, tc.msg)
			}
			var ie *asm.InstructionError
			if tc.index >= 0 && (!errors.As(err, &ie) || ie.Index != tc.index) {
				t.Errorf("New = %v, want an *asm.InstructionError at instruction %d", err, tc.index)
			}
		})
	}
}

// TestKernelRules checks what Options.Kernel changes: exit with an offset
// runs, and the RFC's forms the kernel refuses run without it.
func TestKernelRules(t *testing.T) {
	exitOff := asm.Instructions{asm.Mov.Imm(asm.R0, 3), asm.Exit().WithOffset(7)}
	v, err := vm.New(exitOff, &vm.Options{Kernel: true})
	if err != nil {
		t.Fatal(err)
	}
	if r0, err := v.RunMemory(nil); r0 != 3 || err != nil {
		t.Errorf("exit with an offset: %#x, %v; want 3", r0, err)
	}
	if _, err := vm.New(exitOff, nil); err == nil {
		t.Error("RFC rules accept exit with an offset")
	}
	callx := asm.Instructions{asm.Mov.Imm(asm.R1, int32(asm.FnGetSmpProcessorID)), asm.Mov.Imm(asm.R0, 9), asm.CallX(asm.R1), asm.Exit()}
	v, err = vm.New(callx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r0, err := v.RunMemory(nil); r0 != 0 || err != nil {
		t.Errorf("callx bpf_get_smp_processor_id: %#x, %v; want 0", r0, err)
	}
}
