package pcapfilter

import (
	"math/rand/v2"
	"testing"

	"golang.org/x/net/bpf"

	"github.com/purebpf/purebpf/asm"
)

// classicGen makes random classic BPF programs in the kernel's encoding:
// mostly ones the kernel's checker takes (jumps within the program, a
// return last, scratch words often stored before they are read), and now
// and then an instruction it refuses, so that both sides of the checker
// are tried. Packet offsets fall in the frames, past their end, and at
// SKF_NET_OFF and SKF_LL_OFF; ancillary loads are those that give the same
// value to a packet socket's outgoing frame and under Program.Test (not
// the packet type, the CPU or a random number), now and then one with no
// eBPF equivalent or one the kernel does not know.
type classicGen struct{ r *rand.Rand }

// program returns a program of 1 to 20 instructions.
func (g *classicGen) program() []bpf.RawInstruction {
	n := 1 + g.r.IntN(20)
	prog := make([]bpf.RawInstruction, n)
	for pc := range prog {
		prog[pc] = g.insn(pc, n)
	}
	if g.r.IntN(50) != 0 {
		prog[n-1] = g.ret()
	}
	return prog
}

func (g *classicGen) chance(n int) bool { return g.r.IntN(n) == 0 }

// insn returns an instruction for pc in a program of n.
func (g *classicGen) insn(pc, n int) bpf.RawInstruction {
	if g.chance(80) {
		return bpf.RawInstruction{Op: uint16(g.r.IntN(256)), Jt: uint8(g.r.IntN(4)), Jf: uint8(g.r.IntN(4)), K: g.r.Uint32()}
	}
	sizes := [...]uint16{szW, szH, szB}
	ld := [...]uint16{clsLD, clsLDX}[g.r.IntN(2)]
	switch g.r.IntN(16) {
	case 0, 1:
		return bpf.RawInstruction{Op: clsLD | modeABS | sizes[g.r.IntN(3)], K: g.offset()}
	case 2:
		return bpf.RawInstruction{Op: clsLD | modeIND | sizes[g.r.IntN(3)], K: g.offset()}
	case 3:
		return bpf.RawInstruction{Op: clsLDX | modeMSH | szB, K: uint32(g.r.IntN(40))}
	case 4:
		return bpf.RawInstruction{Op: ld | modeIMM, K: g.value()}
	case 5:
		return bpf.RawInstruction{Op: ld | modeLEN | szW}
	case 6:
		return bpf.RawInstruction{Op: ld | modeMEM, K: g.scratch()}
	case 7, 8:
		return bpf.RawInstruction{Op: [...]uint16{clsST, clsSTX}[g.r.IntN(2)], K: g.scratch()}
	case 9, 10:
		op := [...]uint16{0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x90, 0xa0}[g.r.IntN(10)]
		if g.chance(2) {
			return bpf.RawInstruction{Op: clsALU | op | srcX}
		}
		k := g.value()
		switch {
		case op == 0x60 || op == 0x70:
			k = uint32(g.r.IntN(33))
		case (op == 0x30 || op == 0x90) && g.chance(20):
			k = 0
		}
		return bpf.RawInstruction{Op: clsALU | op, K: k}
	case 11:
		return bpf.RawInstruction{Op: [...]uint16{clsALU | opNEG, clsMISC | opTAX, clsMISC | opTXA}[g.r.IntN(3)]}
	case 12, 13:
		op := [...]uint16{0x10, 0x20, 0x30, 0x40}[g.r.IntN(4)]
		if g.chance(2) {
			op |= srcX
		}
		return bpf.RawInstruction{Op: clsJMP | op, Jt: g.skip(pc, n), Jf: g.skip(pc, n), K: g.value()}
	case 14:
		return bpf.RawInstruction{Op: clsJMP | opJA, K: uint32(g.skip(pc, n))}
	}
	return g.ret()
}

// skip returns a jump offset from pc, within the program but now and then.
func (g *classicGen) skip(pc, n int) uint8 {
	if g.chance(40) {
		return uint8(g.r.IntN(256))
	}
	return uint8(g.r.IntN(max(1, n-pc-1)))
}

// offset returns the k of a packet load: mostly within a frame, now and
// then past it, relative to a header, or an ancillary load.
func (g *classicGen) offset() uint32 {
	switch g.r.IntN(20) {
	case 0, 1:
		return 0xfff00000 + uint32(g.r.IntN(60)) // SKF_NET_OFF
	case 2, 3:
		return 0xffe00000 + uint32(g.r.IntN(80)) // SKF_LL_OFF
	case 4:
		return g.r.Uint32()
	case 5, 6:
		ad := [...]uint32{0, 8, 20, 24, 32, 40, 44, 48, 60}[g.r.IntN(9)]
		if g.chance(10) {
			ad = [...]uint32{12, 16, 28, 52, 1, 64}[g.r.IntN(6)] // no eBPF equivalent, unknown
		}
		return skfADOff + ad
	}
	return uint32(g.r.IntN(90))
}

// value returns a constant: small, at a boundary, or any.
func (g *classicGen) value() uint32 {
	switch g.r.IntN(4) {
	case 0:
		return [...]uint32{0, 1, 0x800, 0x86dd, 6, 17, 0xffffffff, 0x80000000, 0xffff}[g.r.IntN(9)]
	case 1:
		return g.r.Uint32()
	}
	return uint32(g.r.IntN(300))
}

// scratch returns a scratch index, now and then out of range.
func (g *classicGen) scratch() uint32 {
	if g.chance(50) {
		return memWords + uint32(g.r.IntN(10))
	}
	return uint32(g.r.IntN(4))
}

// ret returns a return: of A, of 0, of all the frame, or of a length
// that cuts it.
func (g *classicGen) ret() bpf.RawInstruction {
	if g.chance(3) {
		return bpf.RawInstruction{Op: clsRET | retA}
	}
	return bpf.RawInstruction{Op: clsRET, K: [...]uint32{0, 0xffffffff, 0x40000, uint32(g.r.IntN(120))}[g.r.IntN(4)]}
}

// FuzzFromClassic checks that FromClassic never panics on any encoding,
// refuses what checkClassic refuses, and that what it returns assembles
// and keeps its jumps within reach. TestFromClassicKernel checks it
// against the kernel. The input is the kernel's struct sock_filter array:
// 8 bytes an instruction, little-endian.
func FuzzFromClassic(f *testing.F) {
	gen := &classicGen{r: rand.New(rand.NewPCG(1, 2))}
	for range 64 {
		var b []byte
		for _, ins := range gen.program() {
			b = append(b, byte(ins.Op), byte(ins.Op>>8), ins.Jt, ins.Jf, byte(ins.K), byte(ins.K>>8), byte(ins.K>>16), byte(ins.K>>24))
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var prog []bpf.Instruction
		for ; len(b) >= 8; b = b[8:] {
			prog = append(prog, bpf.RawInstruction{
				Op: uint16(b[0]) | uint16(b[1])<<8, Jt: b[2], Jf: b[3],
				K: uint32(b[4]) | uint32(b[5])<<8 | uint32(b[6])<<16 | uint32(b[7])<<24,
			})
		}
		for _, conv := range []func([]bpf.Instruction) (asm.Instructions, error){FromClassic, FromClassicLinkRelative} {
			insns, err := conv(prog)
			if err != nil {
				continue
			}
			if _, err := insns.Assemble(); err != nil {
				t.Fatalf("the program does not assemble: %v\n%v", err, insns)
			}
			if i, d := farJump(insns); i >= 0 {
				t.Fatalf("instruction %d jumps across %d expanded instructions", i, d)
			}
		}
	})
}
