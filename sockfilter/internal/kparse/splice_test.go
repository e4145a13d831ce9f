package kparse

import (
	"errors"
	"strings"
	"testing"

	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/sockfilter/packet"
	"github.com/purebpf/purebpf/sockfilter/skb"
)

const testAccept, testDrop = LabelPrefix + "accept", LabelPrefix + "drop"

// find returns the index of the first instruction of insns equal to ins,
// labels and the offsets the assembler computes from targets aside, or -1.
func find(insns asm.Instructions, ins asm.Instruction) int {
	for i, x := range insns {
		x.Label = ""
		if x.Target != "" {
			x.Offset = 0
		}
		if x == ins {
			return i
		}
	}
	return -1
}

func TestSpliceExits(t *testing.T) {
	t.Parallel()
	// if r0 == 1 goto +1: a jump by offset, past the first exit.
	filter := asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		skb.LoadLink(12, asm.Half),
		asm.JEq.Imm(asm.R0, 0x0800, "").WithOffset(2),
		asm.Mov.Imm(asm.R0, 0),
		asm.Exit(),
		asm.Mov.Imm(asm.R0, -1).WithLabel("keep"),
		asm.Exit(),
	}
	sp, err := splice(filter, testAccept, testDrop)
	if err != nil {
		t.Fatal(err)
	}
	if len(sp.subprogs) != 0 {
		t.Errorf("subprograms %v of a program without calls", sp.subprogs)
	}
	exits, verdicts := 0, 0
	for i, ins := range sp.main {
		if ins.OpCode.JumpOp() == asm.ExitOp && ins.OpCode.Class() == asm.JumpClass {
			exits++
		}
		if ins.Target == testDrop {
			verdicts++
			if i+1 >= len(sp.main) || sp.main[i+1].Target != testAccept || ins.OpCode.Class() != asm.Jump32Class {
				t.Errorf("instruction %d (%v) is not followed by the goto accept, or compares 64 bits", i, ins)
			}
		}
	}
	if exits != 0 || verdicts != 2 {
		t.Errorf("%d exits left, %d verdicts; want 0 and 2:\n%v", exits, verdicts, sp.main)
	}
	// The jump by offset now names the instruction it jumped to.
	j := find(sp.main, asm.JEq.Imm(asm.R0, 0x0800, "keep"))
	keep := find(sp.main, asm.Mov.Imm(asm.R0, -1))
	if j < 0 || keep < 0 || sp.main[j].Target != "keep" || sp.main[keep].Label != "keep" {
		t.Errorf("the jump by offset lost its target:\n%v", sp.main)
	}
	if sp.main[0] != asm.Mov.Reg(asm.R6, asm.R1) {
		t.Errorf("the spliced program starts with %v, not r6 = r1", sp.main[0])
	}
}

func TestSpliceRawOffsetLabels(t *testing.T) {
	t.Parallel()
	// A jump by offset to an instruction without a label gets one.
	filter := asm.Instructions{
		asm.Mov.Imm(asm.R0, 0),
		asm.JEq.Imm(asm.R1, 0, "").WithOffset(1),
		asm.Exit(),
		asm.Mov.Imm(asm.R0, -1),
		asm.Exit(),
	}
	sp, err := splice(filter, testAccept, testDrop)
	if err != nil {
		t.Fatal(err)
	}
	j := find(sp.main, asm.JEq.Imm(asm.R1, 0, LabelPrefix+"insn.3"))
	k := find(sp.main, asm.Mov.Imm(asm.R0, -1))
	if j < 0 || k < 0 || sp.main[k].Label != LabelPrefix+"insn.3" {
		t.Errorf("jump and target: %d, %d in\n%v", j, k, sp.main)
	}
}

func TestSpliceSubprograms(t *testing.T) {
	t.Parallel()
	filter := asm.Instructions{
		asm.CallLabel("sub"),
		asm.Exit(),
		asm.Mov.Imm(asm.R0, -1).WithLabel("sub"),
		asm.Exit(),
	}
	sp, err := splice(filter, testAccept, testDrop)
	if err != nil {
		t.Fatal(err)
	}
	if len(sp.subprogs) != 2 || sp.subprogs[0].Label != "sub" || sp.subprogs[1] != asm.Exit() {
		t.Errorf("subprograms %v; want the subprogram with its exit", sp.subprogs)
	}
	prog, err := Records(filter, &RecordOptions{Options: Options{Link: packet.LinkEthernet, Clock: asm.FnKtimeGetNs}})
	if err != nil {
		t.Fatal(err)
	}
	// The subprogram stays last, the parser before it.
	if n := len(prog); prog[n-2].Label != "sub" || prog[n-1] != asm.Exit() {
		t.Errorf("the program ends with %v, %v; want the subprogram", prog[n-2], prog[n-1])
	}
	if _, err := prog.Resolve(); err != nil {
		t.Error(err)
	}
}

func TestSpliceRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		filter asm.Instructions
		want   string
	}{
		{"empty", nil, "no instructions"},
		{"r6 written", asm.Instructions{asm.Mov.Reg(asm.R6, asm.R1), asm.Mov.Imm(asm.R6, 0), asm.Exit()}, "writes r6"},
		{"r6 = r1 later", asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Mov.Reg(asm.R6, asm.R1), asm.Exit()}, "writes r6"},
		{"r6 loaded", asm.Instructions{asm.LoadMem(asm.R6, asm.R10, -8, asm.DWord), asm.Exit()}, "writes r6"},
		{"r6 fetched", asm.Instructions{asm.FetchAdd.Mem(asm.R10, -8, asm.R6, asm.DWord), asm.Exit()}, "writes r6"},
		{"our label", asm.Instructions{asm.Mov.Imm(asm.R0, 0).WithLabel(LabelPrefix + "x"), asm.Exit()}, "label"},
		{"our target", asm.Instructions{asm.Goto(LabelPrefix + "accept"), asm.Exit()}, "label"},
		{"mid-instruction", asm.Instructions{asm.Goto("").WithOffset(0), asm.LoadImm64(asm.R0, 1), asm.Exit()}, ""},
		{"into LD_IMM64", asm.Instructions{asm.JEq.Imm(asm.R1, 0, "").WithOffset(1), asm.LoadImm64(asm.R0, 1), asm.Exit()}, "does not start an instruction"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := splice(tt.filter, testAccept, testDrop)
			if tt.want == "" {
				if err != nil {
					t.Errorf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrFilter) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("splice: %v; want ErrFilter saying %q", err, tt.want)
			}
		})
	}
}

func TestOptionsRefused(t *testing.T) {
	t.Parallel()
	filter := asm.Instructions{asm.Mov.Imm(asm.R0, -1), asm.Exit()}
	for _, o := range []Options{
		{Link: packet.LinkLinuxSLL2, Clock: asm.FnKtimeGetNs},
		{Link: packet.LinkEthernet, Base: 3, Clock: asm.FnKtimeGetNs},
		{Link: packet.LinkRawIP, Base: 14, Clock: asm.FnKtimeGetNs},
		{Link: packet.LinkEthernet, Clock: asm.FnMapLookupElem},
	} {
		if _, err := Records(filter, &RecordOptions{Options: o}); err == nil {
			t.Errorf("Records with %+v: no error", o)
		}
		if _, err := Flows(filter, &FlowOptions{Options: o}); err == nil {
			t.Errorf("Flows with %+v: no error", o)
		}
	}
	if _, err := Records(filter, &RecordOptions{Options: Options{Link: packet.LinkEthernet, Clock: asm.FnKtimeGetNs}, Watermark: -1}); err == nil {
		t.Error("Records with watermark -1: no error")
	}
}

// TestProgramsResolve checks that every variant of the generated programs
// has its labels and jumps in order: Resolve fails on a missing or
// duplicate label and on a jump too far for its offset.
func TestProgramsResolve(t *testing.T) {
	t.Parallel()
	filter := append(skb.Prologue(), asm.Mov.Imm(asm.R0, -1), asm.Exit())
	for _, link := range []packet.LinkType{packet.LinkEthernet, packet.LinkRawIP} {
		for _, base := range []int{0, 14} {
			if link == packet.LinkRawIP && base != 0 {
				continue
			}
			o := Options{Link: link, Base: base, Clock: asm.FnKtimeGetTaiNs}
			for _, ro := range []RecordOptions{{Options: o}, {Options: o, Watermark: 1 << 20}, {Options: o, Perf: true}} {
				p, err := Records(filter, &ro)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := p.Resolve(); err != nil {
					t.Errorf("records %+v: %v", ro, err)
				}
			}
			for _, perCPU := range []bool{false, true} {
				p, err := Flows(filter, &FlowOptions{Options: o, PerCPU: perCPU})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := p.Resolve(); err != nil {
					t.Errorf("flows %+v per CPU %v: %v", o, perCPU, err)
				}
			}
		}
	}
}

// FuzzSplice generates programs from arbitrary filters: no panic, and a
// program whenever the filter is accepted whose labels resolve.
func FuzzSplice(f *testing.F) {
	seed := append(skb.Prologue(), skb.LoadLink(12, asm.Half), asm.JNE.Imm(asm.R0, 0x800, "").WithOffset(1), asm.Exit(), asm.Mov.Imm(asm.R0, -1), asm.Exit())
	b, err := seed.Assemble()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte{0xb7, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x95, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		filter, err := asm.Disassemble(b)
		if err != nil || len(filter) == 0 {
			return
		}
		p, err := Records(filter, &RecordOptions{Options: Options{Link: packet.LinkEthernet, Clock: asm.FnKtimeGetNs}})
		if err != nil {
			if !errors.Is(err, ErrFilter) {
				t.Fatalf("error not ErrFilter: %v", err)
			}
			return
		}
		if _, err := p.Resolve(); err != nil && !errors.Is(err, asm.ErrOffsetOverflow) {
			t.Fatalf("generated program of %v does not resolve: %v", filter, err)
		}
	})
}
