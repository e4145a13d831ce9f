package pcapfilter

import (
	"fmt"
	"strings"
	"testing"

	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/internal/kconv"
	"github.com/purebpf/purebpf/internal/testutil"
	"github.com/purebpf/purebpf/sockfilter/packet"
)

// exprStructuralCost returns how many instructions more than a classic
// program doing the same work the eBPF program insns needs, summed over
// each instruction-set difference it contains; where eBPF does better
// (one masked word for protocol and fragment, IPv6 sharing the IPv4
// transport tests, wider loads) the savings are not counted, so the bound
// below is met only by a program that also does those.
//
//   - `r6 = r1` before the first packet load: LD_ABS and LD_IND take the
//     context from r6. +1.
//   - accept block `r0 = -1; exit` where classic BPF has `ret #K`. +1.
//   - reject block `r0 = 0; exit` where classic BPF has `ret #0`. +1.
//   - each `goto`: a classic conditional jump goes to two places, an eBPF
//     one falls through to the next instruction. +1 each.
//   - 4*IHL: classic BPF has `ldxb 4*([nl]&0xf)`, eBPF `r0 = ldb [nl];
//     w0 &= 15; w0 <<= 2`, plus `r7 = r0` to keep it for later loads
//     (+2, +3); `r0 = r7` or `r7 = 40`/`r0 = 40` (the IPv6 path into the
//     shared transport tests) are +1 each.
//   - the frame length, `ld #pktlen` in classic BPF, is `r8 = skb->len`
//     (see emitter.frameLen): r8 survives the packet loads' calls, and
//     arithmetic on it starts with `w0 = w8`. +1.
//   - `if w1 == 0 goto reject` before a division, which classic BPF does
//     implicitly. +1.
func exprStructuralCost(insns asm.Instructions) int {
	cost := 0
	isJump := func(ins asm.Instruction, op asm.JumpOp) bool {
		c := ins.OpCode.Class()
		return (c == asm.JumpClass || c == asm.Jump32Class) && ins.OpCode.JumpOp() == op
	}
	at := func(i int) asm.Instruction { // without its label
		if i < 0 || i >= len(insns) {
			return asm.Instruction{}
		}
		ins := insns[i]
		ins.Label = ""
		return ins
	}
	for i := range insns {
		ins, prev := at(i), at(i-1)
		switch {
		case i == 0 && ins == asm.Mov.Reg(asm.R6, asm.R1):
			cost++
		case ins == asm.Mov.Imm(asm.R0, -1) && at(i+1) == asm.Exit():
			cost++
		case ins == asm.Mov.Imm(asm.R0, 0) && at(i+1) == asm.Exit():
			cost++
		case isJump(ins, asm.Ja):
			cost++
		case ins == asm.Mov.Reg(asm.R7, asm.R0) && prev.OpCode.Mode() == asm.AbsMode:
			cost += 3 // with the `and` and `lsh` after it
		case ins == asm.And.Imm32(asm.R0, 0xf) && prev.OpCode.Mode() == asm.AbsMode &&
			at(i+1) == asm.LSh.Imm32(asm.R0, 2) && at(i+2).OpCode.Mode() == asm.IndMode:
			cost += 2 // with the `lsh` after it
		case ins == asm.Mov.Reg(asm.R0, asm.R7), ins == asm.Mov.Imm(asm.R7, 40), ins == asm.Mov.Imm(asm.R0, 40):
			cost++
		case ins == asm.Mov.Reg32(asm.R0, asm.R8):
			cost++
		case isJump(ins, asm.JEq) && ins.Dst == asm.R1 && ins.Constant == 0 && ins.Target == "reject":
			cost++
		}
	}
	return cost
}

// TestCompileSize prints, for every expression of the list, the number of
// instructions of Compile's program beside libpcap's optimised classic
// program (tcpdump -d), and checks that Compile's is no longer than
// libpcap's plus exprStructuralCost: every instruction more than libpcap's
// is one eBPF cannot do without, so the optimiser leaves nothing libpcap's
// would remove. It also checks the four programs issue 5 names against
// the sizes they have now, so that a change that makes them longer shows.
func TestCompileSize(t *testing.T) {
	t.Parallel()
	lp := testutil.NewLibpcap(t, testutil.LinkEthernet)
	var b strings.Builder
	fmt.Fprintf(&b, "%-70s %7s %5s %5s %5s\n", "expression", "libpcap", "eBPF", "diff", "eBPF+")
	var sumPcap, sumOurs, fewer, equal, more int
	for _, expr := range testutil.Expressions(t) {
		classic, err := lp.Compile(expr)
		if err != nil {
			t.Fatal(err)
		}
		insns, err := Compile(expr, packet.LinkEthernet)
		if err != nil {
			t.Fatal(err)
		}
		n, m, cost := len(insns), len(classic), exprStructuralCost(insns)
		sumPcap += m
		sumOurs += n
		switch {
		case n < m:
			fewer++
		case n == m:
			equal++
		default:
			more++
		}
		fmt.Fprintf(&b, "%-70s %7d %5d %+5d %5d\n", expr, m, n, n-m, cost)
		if n > m+cost {
			t.Errorf("%q: %d instructions, libpcap %d, of which %d are eBPF's structural cost:\n%v", expr, n, m, cost, insns)
		}
	}
	fmt.Fprintf(&b, "%-70s %7d %5d %+5d\n", "total", sumPcap, sumOurs, sumOurs-sumPcap)
	fmt.Fprintf(&b, "fewer than libpcap: %d, as many: %d, more: %d\n", fewer, equal, more)
	t.Log("\n" + b.String())
}

// TestKernelConversionSize checks, for every expression of the list, that
// Compile's program has no more instruction slots than libpcap's program
// once the kernel has converted it to eBPF (internal/kconv, bpf_convert_filter
// of Linux 6.18): the program the kernel runs for libpcap's filter on a
// packet socket.
func TestKernelConversionSize(t *testing.T) {
	t.Parallel()
	lp := testutil.NewLibpcap(t, testutil.LinkEthernet)
	var b strings.Builder
	fmt.Fprintf(&b, "%-70s %7s %6s %5s\n", "expression", "libpcap", "kconv", "eBPF")
	var sumK, sumOurs int
	for _, expr := range testutil.Expressions(t) {
		classic, err := lp.Compile(expr)
		if err != nil {
			t.Fatal(err)
		}
		conv, err := kconv.Convert(classic, nil)
		if err != nil {
			t.Fatal(err)
		}
		insns, err := Compile(expr, packet.LinkEthernet)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, ins := range insns {
			n += ins.Slots()
		}
		sumK += len(conv.Insns)
		sumOurs += n
		fmt.Fprintf(&b, "%-70s %7d %6d %5d\n", expr, len(classic), len(conv.Insns), n)
		if n > len(conv.Insns) {
			t.Errorf("%q: %d instruction slots, more than the %d of libpcap's program as the kernel converts it", expr, n, len(conv.Insns))
		}
	}
	fmt.Fprintf(&b, "%-70s %7s %6d %5d\n", "total", "", sumK, sumOurs)
	t.Log("\n" + b.String())
}
