package sockfilter

import (
	"fmt"
	"strings"
	"testing"

	"github.com/purebpf/purebpf/asm"
)

// exprSizeBudget returns how many instructions more than libpcap's
// classic program the compiled program insns may take, each for a
// difference between the instruction sets: eBPF needs `r6 = r1` before
// packet loads (LD_ABS takes the context from r6); two instructions (`r0 =
// K; exit`) where classic BPF returns with one (`ret #K`), on the accept
// and the reject path; four instructions where classic BPF loads 4*IHL
// into X with one (`ldxb 4*([14]&0xf)`); eleven where it loads the frame
// length with one (`ld #pktlen`; see frameLenInsns); a `goto` where a
// classic conditional jump goes to two places, neither next; and the test
// for a zero divisor that classic BPF's `div x` does implicitly.
func exprSizeBudget(insns asm.Instructions) int {
	budget := 3
	for i, ins := range insns {
		switch {
		case ins.OpCode.Class() == asm.JumpClass && ins.OpCode.JumpOp() == asm.Ja:
			budget++
		case ins == asm.Call(asm.FnSkbLoadBytesRel):
			budget += 10
		case ins.OpCode.Class() == asm.Jump32Class && ins.Target == "reject" && ins.Constant == 0 && ins.Dst == asm.R1:
			budget++ // if w1 == 0 goto reject, before a division
		case ins == asm.Mov.Reg(asm.R7, asm.R0) && i > 0 && insns[i-1].OpCode.Mode() == asm.AbsMode:
			budget += 3
		}
	}
	return budget
}

// TestCompileSize prints, for every expression of the list, the number of
// instructions of Compile's program beside libpcap's optimised classic
// program (tcpdump -d), and checks Compile's is no longer than libpcap's
// plus exprSizeBudget: every instruction more than libpcap's is accounted
// for by a difference between classic BPF and eBPF, so the optimiser
// leaves nothing libpcap's would remove.
func TestCompileSize(t *testing.T) {
	lp := newLibpcap(t, LinkEthernet)
	var b strings.Builder
	fmt.Fprintf(&b, "%-70s %7s %5s %5s\n", "expression", "libpcap", "eBPF", "diff")
	var sumPcap, sumOurs, fewer, equal, more int
	for _, expr := range readExpressions(t) {
		classic, err := lp.compile(expr)
		if err != nil {
			t.Fatal(err)
		}
		insns, err := Compile(expr, LinkEthernet)
		if err != nil {
			t.Fatal(err)
		}
		n, m := len(insns), len(classic)
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
		fmt.Fprintf(&b, "%-70s %7d %5d %+5d\n", expr, m, n, n-m)
		if n > m+exprSizeBudget(insns) {
			t.Errorf("%q: %d instructions, libpcap %d:\n%v", expr, n, m, insns)
		}
	}
	fmt.Fprintf(&b, "%-70s %7d %5d %+5d\n", "total", sumPcap, sumOurs, sumOurs-sumPcap)
	fmt.Fprintf(&b, "fewer than libpcap: %d, as many: %d, more: %d\n", fewer, equal, more)
	t.Log("\n" + b.String())
}
