package kconv

import (
	"encoding/binary"
	"errors"
	"testing"

	"golang.org/x/net/bpf"
)

// maxPerInsn bounds the eBPF instructions of one classic instruction:
// `ldxb 4*([k]&0xf)` with k above 32767 is the 5 around a byte load of
// 8 (the fast path with its address computed) and 8 (the slow path).
const maxPerInsn = 1 + 16 + 5

// FuzzConvert converts programs made of the fuzzer's bytes, 8 to an
// instruction (the opcode, jt, jf, k), the last made a return so that
// more of them pass the checks: the conversion never panics, refuses
// only with ErrInvalid, and a program it converts is at most 7 +
// 22 instructions per classic one, with every jump inside it. Loadable's form obeys the same bounds.
func FuzzConvert(f *testing.F) {
	for _, tc := range testBPFPrograms {
		f.Add(encodeRaw(tc.prog))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var prog []bpf.RawInstruction
		for i := 0; i+8 <= len(b) && len(prog) < maxInsns; i += 8 {
			prog = append(prog, bpf.RawInstruction{Op: binary.LittleEndian.Uint16(b[i:]), Jt: b[i+2], Jf: b[i+3], K: binary.LittleEndian.Uint32(b[i+4:])})
		}
		if len(prog) > 0 {
			prog[len(prog)-1].Op = clsRET | prog[len(prog)-1].Op&retA
		}
		for name, conv := range map[string]func([]bpf.RawInstruction) (*Program, error){
			"Convert":  func(p []bpf.RawInstruction) (*Program, error) { return ConvertRaw(p, nil) },
			"Loadable": LoadableRaw,
		} {
			p, err := conv(prog)
			if err != nil {
				if !errors.Is(err, ErrInvalid) && name == "Convert" {
					t.Fatalf("%s: error not ErrInvalid: %v", name, err)
				}
				continue
			}
			if len(p.Insns) > 7+maxPerInsn*len(prog) {
				t.Fatalf("%s: %d instructions for %d", name, len(p.Insns), len(prog))
			}
			for pc, ins := range p.Insns {
				if ins.Code&0x07 == ebpfJMP && ins.Code != ebpfCALL && ins.Code != ebpfEXIT {
					if to := pc + 1 + int(ins.Off); to < 0 || to >= len(p.Insns) {
						t.Fatalf("%s: instruction %d jumps to %d of %d", name, pc, to, len(p.Insns))
					}
				}
			}
		}
	})
}

func encodeRaw(prog []bpf.RawInstruction) []byte {
	var b []byte
	for _, r := range prog {
		b = binary.LittleEndian.AppendUint16(b, r.Op)
		b = append(b, r.Jt, r.Jf)
		b = binary.LittleEndian.AppendUint32(b, r.K)
	}
	return b
}
