package kconv

import (
	"fmt"

	"golang.org/x/net/bpf"
)

// Offsets in struct __sk_buff (include/uapi/linux/bpf.h).
const (
	ctxLen          = 0
	ctxPktType      = 4
	ctxMark         = 8
	ctxQueueMapping = 12
	ctxProtocol     = 16
	ctxVLANPresent  = 20
	ctxVLANTCI      = 24
	ctxVLANProto    = 28
	ctxIfindex      = 40
	ctxHash         = 68
	ctxData         = 76
	ctxDataEnd      = 80

	fnGetPrandomU32     = 7
	fnGetSmpProcessorID = 8
	maxPacketOff        = 0xffff // the verifier's MAX_PACKET_OFF
	jmpJGT              = 0x20
)

// Loadable converts prog as Convert does into a program that BPF_PROG_LOAD
// accepts as a BPF_PROG_TYPE_SCHED_CLS program, whose BPF_PROG_TEST_RUN
// starts the packet at the link-layer header, as a packet socket's
// skb->data is: the kernel's conversion itself cannot be loaded, as it
// reads struct sk_buff directly and calls kernel functions by address.
// It is the same program, jumps and all, except where the kernel's code
// uses what a loaded program may not:
//
//   - the prologue sets A and X with `w0 = 0; w7 = 0` (the verifier
//     refuses the kernel's `w0 ^= w0` of a register not yet written),
//     and reads __sk_buff's data and data_end into r8 and r9 (2
//     instructions where the kernel's 4 compute the linear length);
//   - a load's fast path compares r8+k+size with data_end instead of
//     r9-k with size (`r2 = r8; r2 += k+size; if r2 > r9`, one
//     instruction more at k = 0, the same count otherwise), for offsets
//     up to 65535-size;
//   - the slow path is eBPF's own legacy load (LD_ABS, LD_IND), which the
//     verifier expands into a call of bpf_skb_load_helper_N_no_cache, a
//     `w0 = 0; exit` on failure included: the kernel's calls
//     bpf_skb_load_helper_N with data and the linear length it caches,
//     the same function;
//   - ancillary loads read __sk_buff's fields, which the verifier
//     rewrites into the kernel's loads of struct sk_buff; SKF_AD_CPU and
//     SKF_AD_RANDOM call the helpers of the same work; SKF_AD_HATYPE,
//     SKF_AD_NLATTR, SKF_AD_NLATTR_NEST and SKF_AD_PAY_OFFSET have no
//     loadable form and are refused.
func Loadable(prog []bpf.Instruction) (*Program, error) {
	raw, err := bpf.Assemble(prog)
	if err != nil {
		return nil, fmt.Errorf("kconv: %w: %w", ErrInvalid, err)
	}
	return LoadableRaw(raw)
}

// LoadableRaw is Loadable for a program in its raw form.
func LoadableRaw(prog []bpf.RawInstruction) (*Program, error) {
	if err := Check(prog); err != nil {
		return nil, err
	}
	c := &converter{prog: prog, l: &Linux618AMD64, loadable: true}
	return c.run()
}

func (c *converter) loadablePrologue() []Insn {
	return []Insn{ldx(szW, regD, regCtx, ctxData), ldx(szW, regH, regCtx, ctxDataEnd)}
}

func (c *converter) loadableLdAbs(fp bpf.RawInstruction) []Insn {
	sz, size := loadSize(fp.Op)
	indirect := fp.Op&0xe0 == modeIND
	offset := int64(int32(fp.K))
	var out []Insn
	if !indirect && offset >= 0 && offset+int64(size) <= maxPacketOff {
		skip := int16(2)
		if sz != szB {
			skip++
		}
		out = append(out, mov64Reg(regTmp, regD), alu64Imm(opADD, regTmp, int32(offset)+int32(size)),
			Insn{Code: ebpfJMP | jmpJGT | srcX, Dst: regTmp, Src: regH, Off: skip},
			ldx(sz, regA, regD, int16(offset)))
		if sz != szB {
			out = append(out, fromBE(regA, int32(size*8)))
		}
		out = append(out, ja(1))
	}
	ins := Insn{Code: uint8(fp.Op), Imm: int32(fp.K)}
	if indirect {
		ins.Src = regX
	}
	return append(out, ins)
}

func (c *converter) loadableExtension(n uint32) ([]Insn, bool, error) {
	field := map[uint32]int16{adPktType: ctxPktType, adMark: ctxMark, adQueue: ctxQueueMapping,
		adVLANPresent: ctxVLANPresent, adVLANTag: ctxVLANTCI, adIfindex: ctxIfindex, adRxhash: ctxHash}
	if off, ok := field[n]; ok {
		return []Insn{ldx(szW, regA, regCtx, off)}, true, nil
	}
	switch n {
	case adProtocol:
		return []Insn{ldx(szW, regA, regCtx, ctxProtocol), fromBE(regA, 16)}, true, nil
	case adVLANTPID:
		return []Insn{ldx(szW, regA, regCtx, ctxVLANProto), fromBE(regA, 16)}, true, nil
	case adCPU, adRandom:
		fn := int32(fnGetSmpProcessorID)
		if n == adRandom {
			fn = fnGetPrandomU32
		}
		return []Insn{mov64Reg(regArg1, regCtx), mov64Reg(regTmp, regA), mov64Reg(regArg3, regX), {Code: ebpfCALL, Imm: fn}}, true, nil
	case adALUXorX:
		return []Insn{alu32Reg(opXOR, regA, regX)}, true, nil
	}
	return nil, false, fmt.Errorf("kconv: ancillary load SKF_AD_OFF+%d has no loadable form", n)
}
