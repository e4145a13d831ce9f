package testutil

import (
	"encoding/binary"
	"testing"

	"golang.org/x/net/bpf"
)

// libpcap's `protochain` programs walk the IP extension headers with a
// backward jump (a `ja` whose offset is negative as a 32-bit signed
// number), which its user-space filter runs (bpf_filter.c sign-extends
// the offset) and golang.org/x/net/bpf's VM, like the kernel, refuses.
// ClassicVM runs such a program in loopVM, a classic BPF interpreter with
// libpcap's user-space semantics.

// NoVerdict is what ClassicVM's function returns for a frame on which
// libpcap's program would not end: a walk that comes back to a header it
// has read (libpcap's AH step can). Tests skip such frames.
const NoVerdict = -1

// maxLoopSteps bounds the instructions loopVM runs on one frame.
const maxLoopSteps = 1 << 20

// hasBackwardJump reports whether insns has a `ja` with a negative offset.
func hasBackwardJump(insns []bpf.Instruction) bool {
	for _, ins := range insns {
		if j, ok := ins.(bpf.Jump); ok && int32(j.Skip) < 0 {
			return true
		}
	}
	return false
}

// loopVM returns a function running insns on a frame as libpcap's
// bpf_filter does, with backward jumps; it fails t on an instruction it
// does not know.
func loopVM(t testing.TB, insns []bpf.Instruction) func([]byte) int {
	t.Helper()
	raw := make([]bpf.RawInstruction, len(insns))
	for i, ins := range insns {
		r, err := ins.Assemble()
		if err != nil {
			t.Fatalf("loopVM: instruction %d: %v", i, err)
		}
		raw[i] = r
	}
	return func(p []byte) int {
		var a, x uint32
		var mem [16]uint32
		load := func(off uint32, size uint32) (uint32, bool) {
			end := uint64(off) + uint64(size)
			if end > uint64(len(p)) {
				return 0, false
			}
			switch size {
			case 1:
				return uint32(p[off]), true
			case 2:
				return uint32(binary.BigEndian.Uint16(p[off:])), true
			}
			return binary.BigEndian.Uint32(p[off:]), true
		}
		sizes := [4]uint32{4, 2, 1, 0}
		pc := 0
		for steps := 0; ; steps++ {
			if steps > maxLoopSteps {
				return NoVerdict
			}
			if pc < 0 || pc >= len(raw) {
				t.Fatalf("loopVM: pc %d out of the program", pc)
			}
			r := raw[pc]
			pc++
			op := r.Op
			switch op & 0x07 {
			case 0x00, 0x01: // BPF_LD, BPF_LDX
				var v uint32
				ok := true
				switch op & 0xe0 {
				case 0x00: // IMM
					v = r.K
				case 0x20: // ABS
					v, ok = load(r.K, sizes[(op>>3)&3])
				case 0x40: // IND
					v, ok = load(x+r.K, sizes[(op>>3)&3])
				case 0x60: // MEM
					v = mem[r.K&15]
				case 0x80: // LEN
					v = uint32(len(p))
				case 0xa0: // MSH
					v, ok = load(r.K, 1)
					v = 4 * (v & 0xf)
				}
				if !ok {
					return 0
				}
				if op&0x07 == 0 {
					a = v
				} else {
					x = v
				}
			case 0x02: // ST
				mem[r.K&15] = a
			case 0x03: // STX
				mem[r.K&15] = x
			case 0x04: // ALU
				b := r.K
				if op&0x08 != 0 {
					b = x
				}
				switch op & 0xf0 {
				case 0x00:
					a += b
				case 0x10:
					a -= b
				case 0x20:
					a *= b
				case 0x30:
					if b == 0 {
						return 0
					}
					a /= b
				case 0x40:
					a |= b
				case 0x50:
					a &= b
				case 0x60:
					if b >= 32 {
						a = 0
					} else {
						a <<= b
					}
				case 0x70:
					if b >= 32 {
						a = 0
					} else {
						a >>= b
					}
				case 0x80:
					a = -a
				case 0x90:
					if b == 0 {
						return 0
					}
					a %= b
				case 0xa0:
					a ^= b
				}
			case 0x05: // JMP
				b := r.K
				if op&0x08 != 0 {
					b = x
				}
				var cond bool
				switch op & 0xf0 {
				case 0x00: // JA, offset sign-extended as libpcap does
					pc += int(int32(r.K))
					continue
				case 0x10:
					cond = a == b
				case 0x20:
					cond = a > b
				case 0x30:
					cond = a >= b
				case 0x40:
					cond = a&b != 0
				}
				if cond {
					pc += int(r.Jt)
				} else {
					pc += int(r.Jf)
				}
			case 0x06: // RET
				if op&0x18 == 0x10 {
					return int(a)
				}
				return int(r.K)
			case 0x07: // MISC
				if op&0xf8 == 0 {
					x = a
				} else {
					a = x
				}
			}
		}
	}
}
