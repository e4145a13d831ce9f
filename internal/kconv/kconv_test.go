package kconv

import (
	"encoding/binary"
	"errors"
	"testing"

	"golang.org/x/net/bpf"
)

// Classic programs of the kernel's own tests (lib/test_bpf.c), with the
// length of their conversion worked out from bpf_convert_filter's rules:
// a prologue of 3, 7 with a packet load; `ret #k` 2, `ret a` 1; a load at
// a constant offset k ≥ 0 its fast path (mov, sub unless k is 0, jslt,
// ldx, a byte swap for 2 and 4 bytes, ja) and the 8 of the slow path
// (mov, mov, mov, mov, call, jsge, xor, exit), an indirect or negative
// one only the slow path, 9 when an indirect one adds a nonzero k;
// division by X 4 more; a jump whose false branch is the next one
// instruction, a negative constant one more.
var testBPFPrograms = []struct {
	name string
	prog []bpf.RawInstruction
	want int
}{
	{"TAX", []bpf.RawInstruction{
		{Op: clsLD | modeIMM, K: 1}, {Op: clsMISC | miscTAX}, {Op: clsLD | modeIMM, K: 2},
		{Op: clsALU | opADD | srcX}, {Op: clsALU | opNEG}, {Op: clsMISC | miscTAX},
		{Op: clsLD | modeLEN | szW}, {Op: clsALU | opADD | srcX}, {Op: clsMISC | miscTAX},
		{Op: clsLD | modeIND | szB, K: 1}, {Op: clsRET | retA},
	}, 7 + 9 + 9 + 1},
	{"TXA", []bpf.RawInstruction{
		{Op: clsLDX | modeLEN | szW}, {Op: clsMISC | miscTXA}, {Op: clsALU | opADD | srcX}, {Op: clsRET | retA},
	}, 3 + 3 + 1},
	{"DIV_MOD_KX", []bpf.RawInstruction{
		{Op: clsLD | modeIMM, K: 8}, {Op: clsALU | opDIV | srcK, K: 2}, {Op: clsMISC | miscTAX},
		{Op: clsLD | modeIMM, K: 0xffffffff}, {Op: clsALU | opDIV | srcX}, {Op: clsMISC | miscTAX},
		{Op: clsLD | modeIMM, K: 0xffffffff}, {Op: clsALU | opDIV | srcK, K: 0x70000000}, {Op: clsMISC | miscTAX},
		{Op: clsLD | modeIMM, K: 0xffffffff}, {Op: clsALU | opMOD | srcX}, {Op: clsMISC | miscTAX},
		{Op: clsLD | modeIMM, K: 0xffffffff}, {Op: clsALU | opMOD | srcK, K: 0x70000000},
		{Op: clsALU | opADD | srcX}, {Op: clsRET | retA},
	}, 3 + 15 + 2*4 + 1},
	{"LD_IMM_0", []bpf.RawInstruction{
		{Op: clsLD | modeIMM}, {Op: clsJMP | opJEQ | srcK, Jt: 1}, {Op: clsRET | retK}, {Op: clsRET | retK, K: 1},
	}, 3 + 1 + 1 + 2 + 2},
	{"LD_IND", []bpf.RawInstruction{
		{Op: clsLDX | modeLEN | szW}, {Op: clsLD | modeIND | szH, K: 0xffffffff}, {Op: clsRET | retK, K: 1},
	}, 7 + 1 + 9 + 2},
	{"LD_ABS", []bpf.RawInstruction{{Op: clsLD | modeABS | szW, K: 1000}, {Op: clsRET | retK, K: 1}}, 7 + 6 + 8 + 2},
	{"LD_ABS_LL", []bpf.RawInstruction{
		{Op: clsLD | modeABS | szB, K: 0xffe00000}, {Op: clsMISC | miscTAX},
		{Op: clsLD | modeABS | szB, K: 0xffe00001}, {Op: clsALU | opADD | srcX}, {Op: clsRET | retA},
	}, 7 + 8 + 1 + 8 + 1 + 1},
	{"LD_PKTTYPE", []bpf.RawInstruction{
		{Op: clsLD | modeABS | szW, K: skfADOff + adPktType}, {Op: clsJMP | opJEQ | srcK, K: 3, Jt: 1},
		{Op: clsRET | retK, K: 1}, {Op: clsRET | retK},
	}, 3 + 2 + 1 + 2 + 2},
	{"LD_IFINDEX", []bpf.RawInstruction{{Op: clsLD | modeABS | szW, K: skfADOff + adIfindex}, {Op: clsRET | retA}}, 3 + 4 + 1},
	{"LD_CPU", []bpf.RawInstruction{
		{Op: clsLD | modeABS | szW, K: skfADOff + adCPU}, {Op: clsMISC | miscTAX},
		{Op: clsLD | modeABS | szW, K: skfADOff + adCPU}, {Op: clsALU | opSUB | srcX}, {Op: clsRET | retA},
	}, 3 + 4 + 1 + 4 + 1 + 1},
	{"JSET", []bpf.RawInstruction{ // both branches elsewhere: the jump and a goto
		{Op: clsLD | modeIMM, K: 3}, {Op: clsJMP | opJSET | srcK, K: 1, Jt: 1, Jf: 2},
		{Op: clsRET | retK}, {Op: clsRET | retK, K: 1}, {Op: clsRET | retK, K: 2},
	}, 3 + 1 + 2 + 2 + 2 + 2},
}

// maxinsns returns the kernel's bpf_fill_maxinsns programs: 4096 returns
// (maxinsns1), 4094 jumps on a negative constant (maxinsns8), 4095
// SKF_AD_VLAN_TAG_PRESENT loads (maxinsns6), and bpf_fill_ld_abs_get_processor_id.
func maxinsns() []struct {
	name string
	prog []bpf.RawInstruction
	want int
} {
	var r1, r8, r6, cpu []bpf.RawInstruction
	for i := range maxInsns {
		r1 = append(r1, bpf.RawInstruction{Op: clsRET | retK, K: ^uint32(i)})
	}
	r8 = append(r8, bpf.RawInstruction{Op: clsLD | modeIMM, K: 0xffffffff})
	for i := 1; i < maxInsns-1; i++ {
		r8 = append(r8, bpf.RawInstruction{Op: clsJMP | opJGT | srcK, K: 0xffffffff, Jt: uint8(maxInsns - 2 - i)})
	}
	r8 = append(r8, bpf.RawInstruction{Op: clsRET | retA})
	for range maxInsns - 1 {
		r6 = append(r6, bpf.RawInstruction{Op: clsLD | modeABS | szW, K: skfADOff + adVLANPresent})
	}
	r6 = append(r6, bpf.RawInstruction{Op: clsRET | retA})
	for i := 0; i < maxInsns-1; i += 2 {
		cpu = append(cpu, bpf.RawInstruction{Op: clsLD | modeABS | szB}, bpf.RawInstruction{Op: clsLD | modeABS | szW, K: skfADOff + adCPU})
	}
	cpu[maxInsns-1] = bpf.RawInstruction{Op: clsRET | retK, K: 0xbee}
	return []struct {
		name string
		prog []bpf.RawInstruction
		want int
	}{
		{"maxinsns1", r1, 3 + 2*maxInsns},
		{"maxinsns8", r8, 3 + 1 + 2*(maxInsns-2) + 1},
		{"maxinsns6", r6, 3 + 3*(maxInsns-1) + 1},
		{"ld_abs_get_processor_id", cpu, 7 + 2047*(4+8+4) + 4 + 8 + 2},
	}
}

func TestConvertCounts(t *testing.T) {
	for _, tc := range append(testBPFPrograms, maxinsns()...) {
		p, err := ConvertRaw(tc.prog, nil)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if len(p.Insns) != tc.want {
			t.Errorf("%s: %d instructions, want %d", tc.name, len(p.Insns), tc.want)
		}
		if _, err := LoadableRaw(tc.prog); err != nil {
			t.Errorf("%s: Loadable: %v", tc.name, err)
		}
	}
}

// TestConvertInsns checks two conversions instruction by instruction.
func TestConvertInsns(t *testing.T) {
	l := &Linux618AMD64
	for _, tc := range []struct {
		name string
		prog []bpf.RawInstruction
		want []Insn
	}{
		{"LD_IMM_0", testBPFPrograms[3].prog, []Insn{
			alu32Reg(opXOR, 0, 0), alu32Reg(opXOR, 7, 7), mov64Reg(6, 1),
			mov32Imm(0, 0),
			{Code: 0x15, Dst: 0, Off: 2}, // jeq r0, 0 → the second ret
			mov32Imm(0, 0), exit(),
			mov32Imm(0, 1), exit(),
		}},
		{"ldh [12]; jeq #0x800, then both elsewhere", []bpf.RawInstruction{
			{Op: clsLD | modeABS | szH, K: 12},
			{Op: clsJMP | opJEQ | srcK, K: 0x800, Jt: 1, Jf: 2},
			{Op: clsRET | retK}, {Op: clsRET | retK, K: 1}, {Op: clsRET | retA},
		}, []Insn{
			alu32Reg(opXOR, 0, 0), alu32Reg(opXOR, 7, 7), mov64Reg(6, 1),
			ldx(sizeDW, 8, 6, l.Data), ldx(szW, 9, 6, l.Len), ldx(szW, 2, 6, l.DataLen), alu32Reg(opSUB, 9, 2),
			mov64Reg(2, 9), alu64Imm(opSUB, 2, 12), jmpImm(jmpJSLT, 2, 2, 3), ldx(szH, 0, 8, 12), fromBE(0, 16), ja(8),
			mov64Reg(1, 6), mov64Reg(2, 8), mov64Reg(3, 9), mov64Imm(4, 12), call(LoadHelper16),
			jmpImm(jmpJSGE, 0, 0, 2), alu32Reg(opXOR, 0, 0), exit(),
			{Code: 0x15, Off: 3, Imm: 0x800}, ja(4),
			mov32Imm(0, 0), exit(),
			mov32Imm(0, 1), exit(),
			exit(),
		}},
	} {
		p, err := ConvertRaw(tc.prog, nil)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if len(p.Insns) != len(tc.want) {
			t.Fatalf("%s: %d instructions, want %d:\n%v", tc.name, len(p.Insns), len(tc.want), p.Insns)
		}
		for i := range p.Insns {
			if p.Insns[i] != tc.want[i] {
				t.Errorf("%s: instruction %d is %+v, want %+v", tc.name, i, p.Insns[i], tc.want[i])
			}
		}
	}
}

func TestMarshal(t *testing.T) {
	ins := Insn{Code: 0x61, Dst: 9, Src: 6, Off: 0x70, Imm: -2}
	le, be := ins.Marshal(binary.LittleEndian), ins.Marshal(binary.BigEndian)
	if le != [8]byte{0x61, 0x69, 0x70, 0, 0xfe, 0xff, 0xff, 0xff} {
		t.Errorf("little-endian: % x", le)
	}
	if be != [8]byte{0x61, 0x96, 0, 0x70, 0xff, 0xff, 0xff, 0xfe} {
		t.Errorf("big-endian: % x", be)
	}
}

func TestCheck(t *testing.T) {
	ret := bpf.RawInstruction{Op: clsRET | retK}
	for _, tc := range []struct {
		name string
		prog []bpf.RawInstruction
	}{
		{"empty", nil},
		{"too long", make([]bpf.RawInstruction, maxInsns+1)},
		{"no return last", []bpf.RawInstruction{ret, {Op: clsLD | modeIMM}}},
		{"unknown opcode", []bpf.RawInstruction{{Op: 0xff}, ret}},
		{"division by 0", []bpf.RawInstruction{{Op: clsALU | opDIV | srcK}, ret}},
		{"modulo by 0", []bpf.RawInstruction{{Op: clsALU | opMOD | srcK}, ret}},
		{"shift by 32", []bpf.RawInstruction{{Op: clsALU | opLSH | srcK, K: 32}, ret}},
		{"scratch word 16", []bpf.RawInstruction{{Op: clsST, K: 16}, ret}},
		{"read before write", []bpf.RawInstruction{{Op: clsLD | modeMEM, K: 1}, ret}},
		{"write on one path only", []bpf.RawInstruction{
			{Op: clsJMP | opJEQ | srcK, Jt: 1}, {Op: clsST, K: 2}, {Op: clsLDX | modeMEM, K: 2}, ret}},
		{"ja out", []bpf.RawInstruction{{Op: clsJMP | opJA, K: 1}, ret}},
		{"jeq out", []bpf.RawInstruction{{Op: clsJMP | opJEQ | srcK, Jf: 1}, ret}},
		{"unknown ancillary", []bpf.RawInstruction{{Op: clsLD | modeABS | szW, K: skfADOff + adMax}, ret}},
		{"seccomp load", []bpf.RawInstruction{{Op: clsLDX | modeABS | szW}, ret}},
	} {
		if _, err := ConvertRaw(tc.prog, nil); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", tc.name, err)
		}
	}
}

// TestJumpTooFar checks the conversion's refusal of a jump that does not
// fit in 16 bits once converted, as the kernel refuses it.
func TestJumpTooFar(t *testing.T) {
	prog := []bpf.RawInstruction{{Op: clsJMP | opJA, K: maxInsns - 2}}
	for len(prog) < maxInsns-1 {
		prog = append(prog, bpf.RawInstruction{Op: clsLDX | modeMSH | szB, K: 0x10000})
	}
	prog = append(prog, bpf.RawInstruction{Op: clsRET | retA})
	if _, err := ConvertRaw(prog, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("err = %v, want ErrInvalid", err)
	}
}

// TestLoadableRefuses checks the ancillary loads with no loadable form.
func TestLoadableRefuses(t *testing.T) {
	for _, n := range []uint32{adHatype, adNlattr, adNlattrNest, adPayOffset} {
		prog := []bpf.RawInstruction{{Op: clsLD | modeABS | szW, K: skfADOff + n}, {Op: clsRET | retA}}
		if _, err := LoadableRaw(prog); err == nil {
			t.Errorf("SKF_AD_OFF+%d: no error", n)
		}
		if _, err := ConvertRaw(prog, nil); err != nil {
			t.Errorf("SKF_AD_OFF+%d: Convert: %v", n, err)
		}
	}
}
