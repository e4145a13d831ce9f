package asm

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// FuzzDisassemble checks that Disassemble never panics; that whatever it
// decodes encodes back to the same bytes with AppendEncoded, in either
// byte order; and that a program whose instructions the kernel or RFC
// 9669 accepts also assembles to the same bytes and prints as text that
// parses back to them.
func FuzzDisassemble(f *testing.F) {
	for _, fm := range allForms() {
		f.Add(fm.bytes(f))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		insns, err := Disassemble(b)
		if err != nil {
			if insns != nil {
				t.Fatalf("Disassemble returned instructions with error %v", err)
			}
			return
		}
		out, err := insns.AppendEncoded(nil, binary.LittleEndian)
		if err != nil {
			t.Fatalf("decoded program does not encode: %v\n%s", err, insns)
		}
		if !bytes.Equal(out, b) && len(b) > 0 {
			t.Fatalf("re-encoded\n% x\nwant\n% x", out, b)
		}
		be, err := insns.AppendEncoded(nil, binary.BigEndian)
		if err != nil {
			t.Fatal(err)
		}
		back, err := DisassembleOrder(be, binary.BigEndian)
		if err != nil || len(back) != len(insns) {
			t.Fatalf("big-endian round trip: %v", err)
		}
		for i := range back {
			if back[i] != insns[i] {
				t.Fatalf("big-endian round trip: instruction %d = %v, want %v", i, back[i], insns[i])
			}
		}
		// Neither may panic, whatever the program's shape.
		_, _ = insns.Validate(), insns.ValidateRFC()
		for i := range insns {
			if insns[i].Validate() != nil && insns[i].ValidateRFC() != nil {
				return // no text says what its reserved fields hold
			}
		}
		asm, err := insns.Assemble()
		if err != nil || !bytes.Equal(asm, out) {
			t.Fatalf("Assemble = % x, %v; want % x", asm, err, out)
		}
		text := insns.String()
		parsed, err := Parse(text)
		if err != nil {
			t.Fatalf("Parse(String()): %v\n%s", err, text)
		}
		if pb, err := parsed.Assemble(); err != nil || !bytes.Equal(pb, out) {
			t.Fatalf("Parse(String()).Assemble() = % x, %v; want % x\n%s", pb, err, out, text)
		}
	})
}

// FuzzParse checks that Parse never panics and that whatever it parses
// prints as text that parses back to the same instructions; and that a
// program that assembles decodes back to bytes that assemble the same.
func FuzzParse(f *testing.F) {
	for _, fm := range allForms() {
		f.Add(fm.text)
	}
	f.Add(labelsProgram().String())
	f.Fuzz(func(t *testing.T, src string) {
		insns, err := Parse(src)
		if err != nil {
			return
		}
		text := insns.String()
		again, err := Parse(text)
		if err != nil {
			t.Fatalf("Parse(String()): %v\n%s", err, text)
		}
		if len(again) != len(insns) {
			t.Fatalf("Parse(String()) has %d instructions, want %d", len(again), len(insns))
		}
		for i := range again {
			if again[i] != insns[i] {
				t.Fatalf("Parse(String())[%d] = %#v, want %#v", i, again[i], insns[i])
			}
		}
		b, err := insns.Assemble()
		if err != nil {
			return // labels may be missing or duplicate
		}
		dec, err := Disassemble(b)
		if err != nil {
			t.Fatalf("Disassemble(Assemble()): %v", err)
		}
		if b2, err := dec.Assemble(); err != nil || !bytes.Equal(b2, b) {
			t.Fatalf("Disassemble(Assemble()).Assemble() = % x, %v; want % x", b2, err, b)
		}
	})
}
