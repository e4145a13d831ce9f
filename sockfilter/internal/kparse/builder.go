package kparse

import (
	"strconv"

	"github.com/purebpf/purebpf/asm"
)

// LabelPrefix starts every label the generator makes. A filter whose
// labels start with it is refused, so that they cannot clash.
const LabelPrefix = "kparse."

// builder accumulates a program. Labels are set on the next instruction
// emitted; several labels for one instruction become aliases of the first,
// resolved when the program is done.
type builder struct {
	insns   asm.Instructions
	pending []string
	alias   map[string]string
	seq     int
}

// emit appends instructions, the first carrying the pending labels.
func (b *builder) emit(insns ...asm.Instruction) {
	for _, ins := range insns {
		if len(b.pending) > 0 {
			if ins.Label != "" {
				b.pending = append(b.pending, ins.Label)
			}
			ins.Label = b.pending[0]
			for _, l := range b.pending[1:] {
				if b.alias == nil {
					b.alias = map[string]string{}
				}
				b.alias[l] = ins.Label
			}
			b.pending = b.pending[:0]
		}
		b.insns = append(b.insns, ins)
	}
}

// mark makes label name the next instruction emitted.
func (b *builder) mark(label string) { b.pending = append(b.pending, label) }

// label returns a new label, unique in the program, that says what it is
// for.
func (b *builder) label(what string) string {
	b.seq++
	return LabelPrefix + what + "." + strconv.Itoa(b.seq)
}

// done returns the program with the aliases resolved. A label pending at
// the end is an error of the generator: it panics.
func (b *builder) done() asm.Instructions {
	if len(b.pending) > 0 {
		panic("kparse: labels " + b.pending[0] + " at the end of the program")
	}
	for i := range b.insns {
		if t, ok := b.alias[b.insns[i].Target]; ok {
			b.insns[i].Target = t
		}
	}
	return b.insns
}

// Short forms of the instructions the generator uses most.

func ldx(dst asm.Register, off int16, size asm.Size) asm.Instruction {
	return asm.LoadMem(dst, asm.R10, off, size)
}

func stx(off int16, src asm.Register, size asm.Size) asm.Instruction {
	return asm.StoreMem(asm.R10, off, src, size)
}

func sti(off int16, imm int32, size asm.Size) asm.Instruction {
	return asm.StoreImm(asm.R10, off, imm, size)
}

// loadBE emits dst = the big-endian number of size at stack offset off.
func loadBE(dst asm.Register, off int16, size asm.Size) asm.Instructions {
	ins := asm.Instructions{ldx(dst, off, size)}
	if size != asm.Byte {
		ins = append(ins, asm.ToBE(dst, int32(int(size)*8)))
	}
	return ins
}

// orFlag emits REC.flags |= f.
func orFlag(rec int16, f int32) asm.Instructions {
	return asm.Instructions{
		ldx(asm.R0, rec+OffFlags, asm.Byte),
		asm.Or.Imm(asm.R0, f),
		stx(rec+OffFlags, asm.R0, asm.Byte),
	}
}
