// Package kconv reproduces the Linux kernel's conversion of a classic BPF
// socket filter to eBPF (bpf_convert_filter in net/core/filter.c, as of
// Linux 6.18): the program the kernel runs, and JIT-compiles, for a filter
// attached with SO_ATTACH_FILTER. It exists to measure what a classic
// program costs once the kernel has converted it: its instruction count
// (Convert) and, loaded in a form the verifier accepts (Loadable), its run
// time.
//
// The conversion, instruction by instruction:
//
//   - a prologue: `w0 ^= w0; w7 ^= w7` (A is r0, X is r7), `r6 = r1` (the
//     struct sk_buff), and, if the program reads the packet, r8 =
//     skb->data and r9 = skb->len - skb->data_len (the linear length);
//   - `ret #k` is `w0 = k; exit`, `ret a` is `exit`;
//   - a packet load at a constant offset k ≥ 0 is an inline fast path
//     (r2 = r9 - k; if r2 s< size, the slow path; else a load from r8+k and
//     a byte swap) then `goto +8` over the slow path: a call of
//     bpf_skb_load_helper_8/16/32(skb, data, headlen, offset), and `w0 = 0;
//     exit` if it fails. Indirect loads, and loads at negative offsets
//     (SKF_NET_OFF, SKF_LL_OFF), are only the slow path;
//   - `ldxb 4*([k]&0xf)` is the byte load between `r7 = r0` and `w0 &= 15;
//     w0 <<= 2; r2 = r7; r7 = r0; r0 = r2`;
//   - a conditional jump whose false branch is the next instruction is one
//     jump; one whose true branch is the next is the inverted jump (JEQ,
//     JGT and JGE; not JSET); any other is the jump and a `goto`. A
//     negative constant is first moved to w2, as eBPF sign-extends it;
//   - division and modulo by X are preceded by `w7 = w7; if r7 != 0 goto
//     +2; w0 ^= w0; exit`;
//   - the ancillary loads (SKF_AD_*) read struct sk_buff and struct
//     net_device fields, or call kernel functions.
//
// Offsets of kernel structures vary with the build: Layout holds them,
// Linux618AMD64 those of Linux 6.18 on x86-64, KernelLayout the running
// kernel's, from its BTF. Calls of kernel functions (Func) carry an immediate
// relative to __bpf_call_base that only the running kernel knows; Convert
// leaves it 0 and records which function each call is.
package kconv

import (
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/net/bpf"
)

// Insn is an eBPF instruction as the kernel stores it (struct bpf_insn),
// and for a call of a kernel function, which one.
type Insn struct {
	Code     uint8
	Dst, Src uint8
	Off      int16
	Imm      int32
	Call     Func // the kernel function a call (Code 0x85) calls, if any
}

// Marshal returns the instruction's 8 bytes in the byte order order.
func (i Insn) Marshal(order binary.ByteOrder) [8]byte {
	var b [8]byte
	b[0] = i.Code
	if order.Uint16([]byte{1, 0}) == 1 { // little-endian, binary.NativeEndian included
		b[1] = i.Dst&0xf | i.Src<<4
	} else {
		b[1] = i.Dst<<4 | i.Src&0xf
	}
	order.PutUint16(b[2:], uint16(i.Off))
	order.PutUint32(b[4:], uint32(i.Imm))
	return b
}

// Func is a kernel function a converted program calls.
type Func uint8

// The functions calls go to.
const (
	NoFunc Func = iota
	LoadHelper8
	LoadHelper16
	LoadHelper32
	GetPayOffset
	GetNlattr
	GetNlattrNest
	GetRawCPUID
	UserRndU32
)

var funcNames = [...]string{"", "bpf_skb_load_helper_8", "bpf_skb_load_helper_16", "bpf_skb_load_helper_32",
	"bpf_skb_get_pay_offset", "bpf_skb_get_nlattr", "bpf_skb_get_nlattr_nest", "bpf_get_raw_cpu_id", "bpf_user_rnd_u32"}

// Symbol returns the function's name in the kernel (/proc/kallsyms).
func (f Func) Symbol() string {
	if int(f) < len(funcNames) {
		return funcNames[f]
	}
	return fmt.Sprintf("Func(%d)", uint8(f))
}

// Layout is what the conversion needs of the kernel's build: offsets in
// struct sk_buff and struct net_device, and properties of the machine.
type Layout struct {
	Data, Len, DataLen    int16 // sk_buff: data (a pointer), len, data_len
	Protocol, Mark, Hash  int16 // protocol (2 bytes), mark, hash (4)
	QueueMapping, VLANTCI int16 // queue_mapping, vlan_tci (2)
	VLANAll, VLANProto    int16 // vlan_all (4), vlan_proto (2)
	Dev                   int16 // dev (a pointer)
	PktTypeOffset         int16 // offsetof(__pkt_type_offset)
	DevIfindex, DevType   int16 // net_device: ifindex (4), type (2)
	PointerSize           int   // 8 or 4
	BigEndianBitfield     bool  // __BIG_ENDIAN_BITFIELD: pkt_type is the top 3 bits
	UnalignedOK           bool  // CONFIG_HAVE_EFFICIENT_UNALIGNED_ACCESS
	NetIPAlign            int   // NET_IP_ALIGN, used when !UnalignedOK
	ByteOrder             binary.ByteOrder
}

// Linux618AMD64 is the layout of Linux 6.18 on x86-64 (the test machine's
// 6.18 build; TestLayoutMatchesBTF checks it against the running kernel's
// BTF).
var Linux618AMD64 = Layout{
	Data: 200, Len: 112, DataLen: 116,
	Protocol: 176, Mark: 164, Hash: 148,
	QueueMapping: 124, VLANTCI: 154,
	VLANAll: 152, VLANProto: 152,
	Dev: 16, PktTypeOffset: 128,
	DevIfindex: 224, DevType: 536,
	PointerSize: 8, UnalignedOK: true, ByteOrder: binary.LittleEndian,
}

// Registers of the conversion (include/linux/filter.h).
const (
	regA    = 0 // BPF_REG_A
	regArg1 = 1
	regTmp  = 2 // BPF_REG_TMP, also ARG2
	regArg3 = 3
	regArg4 = 4
	regCtx  = 6 // BPF_REG_CTX
	regX    = 7 // BPF_REG_X
	regD    = 8 // BPF_REG_D: skb->data
	regH    = 9 // BPF_REG_H: headlen
	regFP   = 10
)

// Classic BPF fields.
const (
	clsLD, clsLDX, clsST, clsSTX, clsALU, clsJMP, clsRET, clsMISC = 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07

	szW, szH, szB                                        = 0x00, 0x08, 0x10
	modeIMM, modeABS, modeIND, modeMEM, modeLEN, modeMSH = 0x00, 0x20, 0x40, 0x60, 0x80, 0xa0

	opADD, opSUB, opMUL, opDIV, opOR, opAND, opLSH, opRSH, opNEG, opMOD, opXOR = 0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80, 0x90, 0xa0
	opJA, opJEQ, opJGT, opJGE, opJSET                                          = 0x00, 0x10, 0x20, 0x30, 0x40
	srcK, srcX                                                                 = 0x00, 0x08
	retK, retA                                                                 = 0x00, 0x10
	miscTAX, miscTXA                                                           = 0x00, 0x80
)

// eBPF encodings the conversion emits.
const (
	ebpfALU64 = 0x07
	ebpfJMP   = 0x05
	ebpfLDX   = 0x61 & 0xe7 // BPF_LDX | BPF_MEM, size added
	ebpfSTX   = 0x63 & 0xe7
	ebpfMOV   = 0xb0
	ebpfEND   = 0xd0
	ebpfCALL  = 0x85
	ebpfEXIT  = 0x95
	jmpJNE    = 0x50
	jmpJSGE   = 0x70
	jmpJLT    = 0xa0
	jmpJLE    = 0xb0
	jmpJSLT   = 0xc0
	sizeDW    = 0x18
)

// The ancillary loads (SKF_AD_OFF + n, include/uapi/linux/filter.h).
const (
	skfADOff      = 0xfffff000 // SKF_AD_OFF, -0x1000
	adProtocol    = 0
	adPktType     = 4
	adIfindex     = 8
	adNlattr      = 12
	adNlattrNest  = 16
	adMark        = 20
	adQueue       = 24
	adHatype      = 28
	adRxhash      = 32
	adCPU         = 36
	adALUXorX     = 40
	adVLANTag     = 44
	adVLANPresent = 48
	adPayOffset   = 52
	adRandom      = 56
	adVLANTPID    = 60
	adMax         = 64
	maxInsns      = 4096 // BPF_MAXINSNS
	memWords      = 16   // BPF_MEMWORDS
)

func alu32Reg(op uint8, dst, src uint8) Insn {
	return Insn{Code: clsALU | op | srcX, Dst: dst, Src: src}
}
func alu32Imm(op uint8, dst uint8, k int32) Insn {
	return Insn{Code: clsALU | op | srcK, Dst: dst, Imm: k}
}
func alu64Imm(op uint8, dst uint8, k int32) Insn {
	return Insn{Code: ebpfALU64 | op | srcK, Dst: dst, Imm: k}
}
func mov64Reg(dst, src uint8) Insn { return Insn{Code: ebpfALU64 | ebpfMOV | srcX, Dst: dst, Src: src} }
func mov32Reg(dst, src uint8) Insn { return Insn{Code: clsALU | ebpfMOV | srcX, Dst: dst, Src: src} }
func mov64Imm(dst uint8, k int32) Insn {
	return Insn{Code: ebpfALU64 | ebpfMOV | srcK, Dst: dst, Imm: k}
}
func mov32Imm(dst uint8, k int32) Insn { return Insn{Code: clsALU | ebpfMOV | srcK, Dst: dst, Imm: k} }
func ldx(size uint8, dst, src uint8, off int16) Insn {
	return Insn{Code: ebpfLDX | size, Dst: dst, Src: src, Off: off}
}
func stx(size uint8, dst, src uint8, off int16) Insn {
	return Insn{Code: ebpfSTX | size, Dst: dst, Src: src, Off: off}
}
func jmpImm(op uint8, dst uint8, k int32, off int16) Insn {
	return Insn{Code: ebpfJMP | op | srcK, Dst: dst, Imm: k, Off: off}
}
func ja(off int16) Insn { return Insn{Code: ebpfJMP | opJA, Off: off} }
func exit() Insn        { return Insn{Code: ebpfEXIT} }
func call(f Func) Insn  { return Insn{Code: ebpfCALL, Call: f} }
func fromBE(dst uint8, bits int32) Insn {
	return Insn{Code: clsALU | ebpfEND | srcX, Dst: dst, Imm: bits}
}

// ErrInvalid is wrapped by the errors of programs the kernel refuses to
// attach (bpf_check_classic) or convert.
var ErrInvalid = errors.New("invalid classic BPF program")

// Program is a converted program.
type Program struct {
	Insns []Insn
	// SeenLdAbs reports whether the program reads the packet, and so
	// has the prologue's r8 and r9.
	SeenLdAbs bool
	// StackDepth is the stack the scratch memory stores use, in bytes.
	StackDepth int
}

// Bytes returns the program's instructions as the kernel stores them, in
// the byte order of order.
func (p *Program) Bytes(order binary.ByteOrder) []byte {
	b := make([]byte, 0, 8*len(p.Insns))
	for _, ins := range p.Insns {
		e := ins.Marshal(order)
		b = append(b, e[:]...)
	}
	return b
}

// Convert converts prog, which it first checks as the kernel does when it
// is attached (bpf_check_classic), to the eBPF the kernel runs for it,
// with the offsets of layout (Linux618AMD64 if nil).
func Convert(prog []bpf.Instruction, layout *Layout) (*Program, error) {
	raw, err := bpf.Assemble(prog)
	if err != nil {
		return nil, fmt.Errorf("kconv: %w: %w", ErrInvalid, err)
	}
	return ConvertRaw(raw, layout)
}

// ConvertRaw is Convert for a program in its raw form.
func ConvertRaw(prog []bpf.RawInstruction, layout *Layout) (*Program, error) {
	if layout == nil {
		layout = &Linux618AMD64
	}
	if err := Check(prog); err != nil {
		return nil, err
	}
	c := &converter{prog: prog, l: layout, loadable: false}
	return c.run()
}

// Check checks prog as the kernel's bpf_check_classic does: a length of 1
// to 4096, known instructions, constant divisors and shifts in range,
// scratch memory indexes below 16 and read only after a store on every
// path, jumps inside the program, known ancillary loads, and a return
// last.
func Check(prog []bpf.RawInstruction) error {
	n := len(prog)
	if n == 0 || n > maxInsns {
		return fmt.Errorf("kconv: %w: %d instructions (1 to %d)", ErrInvalid, n, maxInsns)
	}
	for pc, ins := range prog {
		if !allowed(ins.Op) {
			return fmt.Errorf("kconv: %w: instruction %d: unknown opcode %#04x", ErrInvalid, pc, ins.Op)
		}
		switch ins.Op {
		case clsALU | opDIV | srcK, clsALU | opMOD | srcK:
			if ins.K == 0 {
				return fmt.Errorf("kconv: %w: instruction %d: division by the constant 0", ErrInvalid, pc)
			}
		case clsALU | opLSH | srcK, clsALU | opRSH | srcK:
			if ins.K >= 32 {
				return fmt.Errorf("kconv: %w: instruction %d: shift by %d", ErrInvalid, pc, ins.K)
			}
		case clsLD | modeMEM, clsLDX | modeMEM, clsST, clsSTX:
			if ins.K >= memWords {
				return fmt.Errorf("kconv: %w: instruction %d: scratch memory word %d", ErrInvalid, pc, ins.K)
			}
		case clsJMP | opJA:
			if ins.K >= uint32(n-pc-1) {
				return fmt.Errorf("kconv: %w: instruction %d: jump out of the program", ErrInvalid, pc)
			}
		case clsJMP | opJEQ | srcK, clsJMP | opJEQ | srcX, clsJMP | opJGE | srcK, clsJMP | opJGE | srcX,
			clsJMP | opJGT | srcK, clsJMP | opJGT | srcX, clsJMP | opJSET | srcK, clsJMP | opJSET | srcX:
			if pc+int(ins.Jt)+1 >= n || pc+int(ins.Jf)+1 >= n {
				return fmt.Errorf("kconv: %w: instruction %d: jump out of the program", ErrInvalid, pc)
			}
		case clsLD | modeABS | szW, clsLD | modeABS | szH, clsLD | modeABS | szB:
			if ins.K >= skfADOff && !ancillary(ins.K-skfADOff) {
				return fmt.Errorf("kconv: %w: instruction %d: unknown ancillary load SKF_AD_OFF+%d", ErrInvalid, pc, ins.K-skfADOff)
			}
		}
	}
	if prog[n-1].Op&0x07 != clsRET {
		return fmt.Errorf("kconv: %w: the last instruction is not a return", ErrInvalid)
	}
	return checkMemory(prog)
}

// allowed reports whether op is an instruction of a socket filter.
func allowed(op uint16) bool {
	switch op {
	case clsALU | opADD | srcK, clsALU | opADD | srcX, clsALU | opSUB | srcK, clsALU | opSUB | srcX,
		clsALU | opMUL | srcK, clsALU | opMUL | srcX, clsALU | opDIV | srcK, clsALU | opDIV | srcX,
		clsALU | opMOD | srcK, clsALU | opMOD | srcX, clsALU | opAND | srcK, clsALU | opAND | srcX,
		clsALU | opOR | srcK, clsALU | opOR | srcX, clsALU | opXOR | srcK, clsALU | opXOR | srcX,
		clsALU | opLSH | srcK, clsALU | opLSH | srcX, clsALU | opRSH | srcK, clsALU | opRSH | srcX,
		clsALU | opNEG,
		clsLD | modeABS | szW, clsLD | modeABS | szH, clsLD | modeABS | szB,
		clsLD | modeIND | szW, clsLD | modeIND | szH, clsLD | modeIND | szB,
		clsLD | modeLEN | szW, clsLD | modeMEM, clsLD | modeIMM,
		clsLDX | modeLEN | szW, clsLDX | modeMSH | szB, clsLDX | modeIMM, clsLDX | modeMEM,
		clsST, clsSTX, clsMISC | miscTAX, clsMISC | miscTXA, clsRET | retK, clsRET | retA,
		clsJMP | opJA,
		clsJMP | opJEQ | srcK, clsJMP | opJEQ | srcX, clsJMP | opJGE | srcK, clsJMP | opJGE | srcX,
		clsJMP | opJGT | srcK, clsJMP | opJGT | srcX, clsJMP | opJSET | srcK, clsJMP | opJSET | srcX:
		return true
	}
	return false
}

// ancillary reports whether SKF_AD_OFF+n is an ancillary load the kernel
// knows.
func ancillary(n uint32) bool { return n < adMax && n%4 == 0 }

// checkMemory checks that every load of a scratch memory word follows a
// store to it on every path (check_load_and_stores).
func checkMemory(prog []bpf.RawInstruction) error {
	masks := make([]uint16, len(prog))
	for i := range masks {
		masks[i] = 0xffff
	}
	valid := uint16(0)
	for pc, ins := range prog {
		valid &= masks[pc]
		switch {
		case ins.Op == clsST || ins.Op == clsSTX:
			valid |= 1 << ins.K
		case ins.Op == clsLD|modeMEM || ins.Op == clsLDX|modeMEM:
			if valid&(1<<ins.K) == 0 {
				return fmt.Errorf("kconv: %w: instruction %d: scratch memory word %d read before it is written", ErrInvalid, pc, ins.K)
			}
		case ins.Op == clsJMP|opJA:
			masks[pc+1+int(ins.K)] &= valid
			valid = 0xffff
		case ins.Op&0x07 == clsJMP:
			masks[pc+1+int(ins.Jt)] &= valid
			masks[pc+1+int(ins.Jf)] &= valid
			valid = 0xffff
		case ins.Op&0x07 == clsRET:
			valid = 0xffff
		}
	}
	return nil
}
