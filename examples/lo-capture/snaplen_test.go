package main

import (
	"testing"

	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/internal/testutil"
	"github.com/purebpf/purebpf/sockfilter/packet"
	"github.com/purebpf/purebpf/sockfilter/pcapfilter"
)

// TestWithSnaplen checks the rewrite on every expression of the test
// list: each `r0 = -1; exit` becomes `r0 = snaplen; exit`, nothing else
// changes, and no -1 is left in r0 before an exit.
func TestWithSnaplen(t *testing.T) {
	exprs := append(testutil.Expressions(t), "", "ip and arp", "not ip")
	for _, expr := range exprs {
		for _, link := range []packet.LinkType{packet.LinkEthernet, packet.LinkRawIP} {
			insns, err := pcapfilter.Compile(expr, link)
			if err != nil {
				continue // an expression for the other link type
			}
			got, err := withSnaplen(insns, 96)
			if err != nil {
				t.Errorf("%q: %v", expr, err)
				continue
			}
			if len(got) != len(insns) {
				t.Fatalf("%q: %d instructions, want %d", expr, len(got), len(insns))
			}
			changed := 0
			for i := range got {
				if got[i] == insns[i] {
					continue
				}
				changed++
				want := insns[i]
				want.Constant = 96
				if got[i] != want || insns[i].Constant != -1 || insns[i+1].OpCode != asm.Exit().OpCode {
					t.Errorf("%q: instruction %d %v became %v", expr, i, insns[i], got[i])
				}
			}
			if changed == 0 && acceptsSome(insns) {
				t.Errorf("%q: nothing rewritten", expr)
			}
		}
	}
	if _, err := withSnaplen(asm.Instructions{asm.Mov.Reg(asm.R0, asm.R1), asm.Exit()}, 96); err == nil {
		t.Error("a program without an accepting terminal was rewritten")
	}
	if _, err := withSnaplen(asm.Instructions{asm.Mov.Imm(asm.R0, -1), asm.Exit()}, 0); err == nil {
		t.Error("snap length 0 was taken")
	}
}
