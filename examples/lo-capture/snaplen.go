package main

import (
	"fmt"

	"github.com/purebpf/purebpf/asm"
)

// withSnaplen returns a copy of a compiled filter that keeps the first
// snaplen bytes of the frames it accepts, for -s: a socket filter's return
// value is how many bytes of the frame the kernel keeps (socket(7),
// SO_ATTACH_FILTER; sk_filter_trim_cap), so the frames are cut in the
// kernel, as libpcap's `ret #snaplen` cuts them, and never copied whole.
//
// pcapfilter.Compile accepts with one terminal, `r0 = -1; exit`
// (skb.AcceptAll); withSnaplen makes each such pair `r0 = snaplen; exit`.
// Paths that reject return 0 from elsewhere and are left as they are. It
// reports an error if the program has no accepting terminal where one is
// expected, so that a change in the compiler's output cannot silently
// leave -s without effect.
func withSnaplen(insns asm.Instructions, snaplen int) (asm.Instructions, error) {
	if snaplen <= 0 || snaplen > 1<<31-1 {
		return nil, fmt.Errorf("snap length %d out of range", snaplen)
	}
	accept := asm.Mov.Imm(asm.R0, -1)
	exit := asm.Exit()
	out := append(asm.Instructions(nil), insns...)
	n := 0
	for i := 0; i+1 < len(out); i++ {
		ins, next := out[i], out[i+1]
		if ins.OpCode == accept.OpCode && ins.Dst == asm.R0 && ins.Src == accept.Src &&
			ins.Offset == 0 && ins.Constant == -1 && next.OpCode == exit.OpCode {
			out[i].Constant = int64(snaplen)
			n++
		}
	}
	if n == 0 && acceptsSome(insns) {
		return nil, fmt.Errorf("-s: the compiled filter has no `r0 = -1; exit` to return the snap length from")
	}
	return out, nil
}

// acceptsSome reports whether a program might accept: whether any exit is
// reached with anything but a constant 0 in r0 as far as a look at the
// instruction before each exit tells. A program that rejects everything
// (`ip and arp`) has no accepting terminal, rightly.
func acceptsSome(insns asm.Instructions) bool {
	reject := asm.Mov.Imm(asm.R0, 0)
	exit := asm.Exit()
	for i, ins := range insns {
		if ins.OpCode != exit.OpCode {
			continue
		}
		if i == 0 {
			return true
		}
		prev := insns[i-1]
		if prev.OpCode != reject.OpCode || prev.Dst != asm.R0 || prev.Constant != 0 {
			return true
		}
	}
	return false
}
