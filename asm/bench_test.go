package asm

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"

	casm "github.com/cilium/ebpf/asm"
)

// benchPrograms returns the same program of n instructions (a little more
// for the LD_IMM64 second halves) for purebpf and for cilium/ebpf/asm:
// every form of ciliumForms in turn, with a conditional jump to a label 32
// instructions ahead every 32 instructions, ending with exit.
func benchPrograms(n int) (Instructions, casm.Instructions) {
	var ours Instructions
	var theirs casm.Instructions
	for i := 0; len(ours) < n-1; i++ {
		if i%32 == 0 {
			label := fmt.Sprintf("l%d", i/32+1)
			ours = append(ours, JEq.Imm(R1, int32(i), label))
			theirs = append(theirs, casm.JEq.Imm(casm.R1, int32(i), label))
		}
		c := ciliumForms[i%len(ciliumForms)]
		ins, cins := c.ins, c.cilium
		if i%32 == 31 {
			label := fmt.Sprintf("l%d", i/32+1)
			ins.Label, cins = label, cins.WithSymbol(label)
		}
		ours, theirs = append(ours, ins), append(theirs, cins)
	}
	last := fmt.Sprintf("l%d", (len(ours)+31)/32+1)
	ours = append(ours, Exit().WithLabel(last))
	theirs = append(theirs, casm.Return().WithSymbol(last))
	for i := range ours {
		// Point jumps whose label was not reached at the final exit.
		if t := ours[i].Target; t != "" && !hasLabel(ours, t) {
			ours[i].Target = last
			theirs[i] = theirs[i].WithReference(last)
		}
	}
	return ours, theirs
}

func hasLabel(insns Instructions, label string) bool {
	for _, ins := range insns {
		if ins.Label == label {
			return true
		}
	}
	return false
}

const benchSize = 4096

// BenchmarkAssemble assembles a 4096-instruction program with labels.
func BenchmarkAssemble(b *testing.B) {
	prog, _ := benchPrograms(benchSize)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := prog.Assemble(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(prog)), "ns/insn")
}

// BenchmarkAppendAssembled is BenchmarkAssemble into a reused buffer.
func BenchmarkAppendAssembled(b *testing.B) {
	prog, _ := benchPrograms(benchSize)
	buf := make([]byte, 0, 16*len(prog))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = prog.AppendAssembled(buf[:0], binary.LittleEndian); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(prog)), "ns/insn")
}

// BenchmarkAssembleCilium marshals the same program with
// cilium/ebpf/asm's Instructions.Marshal into a reused buffer.
func BenchmarkAssembleCilium(b *testing.B) {
	_, prog := benchPrograms(benchSize)
	var buf bytes.Buffer
	buf.Grow(16 * len(prog))
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		if err := prog.Marshal(&buf, binary.LittleEndian); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(prog)), "ns/insn")
}

// BenchmarkDisassemble decodes the program of BenchmarkAssemble.
func BenchmarkDisassemble(b *testing.B) {
	prog, _ := benchPrograms(benchSize)
	code, err := prog.Assemble()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Disassemble(code); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(prog)), "ns/insn")
}

// TestBenchProgramsAgree checks that the two benchmark programs encode the
// same, but for cilium's atomic immediates (see TestCiliumInterop).
func TestBenchProgramsAgree(t *testing.T) {
	ours, theirs := benchPrograms(benchSize)
	if len(ours) != benchSize {
		t.Fatalf("%d instructions, want %d", len(ours), benchSize)
	}
	a, err := ours.Assemble()
	if err != nil {
		t.Fatal(err)
	}
	c := marshalCilium(t, theirs, binary.LittleEndian)
	if len(a) != len(c) {
		t.Fatalf("purebpf %d bytes, cilium %d", len(a), len(c))
	}
	for off := 0; off < len(a); off += 8 {
		if !bytes.Equal(a[off:off+8], c[off:off+8]) && !bytes.Equal(a[off:off+4], c[off:off+4]) {
			t.Fatalf("byte %d: purebpf % x, cilium % x", off, a[off:off+8], c[off:off+8])
		}
	}
}

// TestAssembleAllocs pins the allocations of Assemble: the output, and for
// a program with labels their map.
func TestAssembleAllocs(t *testing.T) {
	noLabels := Instructions{Mov.Reg(R6, R1), LoadAbs(12, Half), JNE.Imm(R0, 0x800, "").WithOffset(1), Mov.Imm(R0, -1), Exit()}
	if n := testing.AllocsPerRun(100, func() { noLabels.Assemble() }); n != 1 {
		t.Errorf("Assemble without labels: %v allocations, want 1", n)
	}
	buf := make([]byte, 0, 64)
	if n := testing.AllocsPerRun(100, func() { noLabels.AppendAssembled(buf[:0], binary.LittleEndian) }); n != 0 {
		t.Errorf("AppendAssembled without labels: %v allocations, want 0", n)
	}
	ins := JNE.Imm(R0, 0x800, "drop")
	if n := testing.AllocsPerRun(100, func() { ins.AppendTo(buf[:0]) }); n != 0 {
		t.Errorf("AppendTo: %v allocations, want 0", n)
	}
}
