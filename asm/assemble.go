package asm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Errors of label resolution, wrapped with the label's name and the index
// of the instruction concerned.
var (
	// ErrMissingLabel: a Target names a label no instruction defines.
	ErrMissingLabel = errors.New("missing label")
	// ErrDuplicateLabel: two instructions define the same label.
	ErrDuplicateLabel = errors.New("duplicate label")
	// ErrOffsetOverflow: the distance to a label does not fit the field
	// that holds it (16 bits for a conditional jump).
	ErrOffsetOverflow = errors.New("offset out of range")
	// ErrUnresolvedMap: an instruction names a map (Instruction.Map) that
	// no loader has replaced with a file descriptor.
	ErrUnresolvedMap = errors.New("unresolved map reference")
)

// Offsets returns the slot of each instruction: its index in 8-byte units,
// as the kernel and its verifier log number instructions. LD_IMM64 takes
// two slots.
func (insns Instructions) Offsets() []int {
	offs := make([]int, len(insns))
	slot := 0
	for i, ins := range insns {
		offs[i] = slot
		slot += ins.Slots()
	}
	return offs
}

// Slots returns the number of 8-byte slots insns take: the instruction
// count the kernel, its verifier log and tcpdump -d give, where LD_IMM64
// counts twice.
func (insns Instructions) Slots() int {
	n := 0
	for _, ins := range insns {
		n += ins.Slots()
	}
	return n
}

// Assemble encodes insns in little-endian byte order, the order of the
// machines purebpf runs on, resolving labels as Resolve does. It returns an
// error, and no bytes, if a label cannot be resolved or an instruction is
// invalid under the kernel's rules (Instruction.Validate) and under RFC
// 9669's (Instruction.ValidateRFC): what the kernel loads assembles, and so
// do the RFC's forms it refuses (callx, a shift by an immediate out of
// range, a division by an immediate 0).
func (insns Instructions) Assemble() ([]byte, error) {
	b, err := insns.AppendAssembled(make([]byte, 0, insns.Slots()*8), binary.LittleEndian)
	if err != nil {
		return nil, err
	}
	return b, nil
}

// AppendAssembled appends insns encoded in order (binary.LittleEndian or
// binary.BigEndian: the kernel's struct bpf_insn in the byte order of the
// machine that loads it) to b; a nil order is little-endian. On error it
// returns b unchanged.
func (insns Instructions) AppendAssembled(b []byte, order binary.ByteOrder) ([]byte, error) {
	return insns.appendEncoded(b, order, false)
}

// AppendEncoded is AppendAssembled without its checks of the
// instructions: every field is encoded as it is, as long as the encoding
// has room for it (registers below 16, an immediate of 32 bits but for
// LD_IMM64, a valid access size). It is the inverse of Disassemble for
// every program that decodes, and builds programs the kernel and the RFC
// refuse, for tests of decoders and verifiers. Labels are resolved as
// Assemble resolves them.
func (insns Instructions) AppendEncoded(b []byte, order binary.ByteOrder) ([]byte, error) {
	return insns.appendEncoded(b, order, true)
}

// encodable checks that the encoding has room for the fields of ins.
func (ins *Instruction) encodable() error {
	switch {
	case ins.badSize != 0:
		return invalid("access size %d is not 1, 2, 4 or 8", ins.badSize&0xff)
	case ins.Dst > 15 || ins.Src > 15:
		return invalid("register %d does not fit 4 bits", max(ins.Dst, ins.Src))
	case !ins.IsLoadImm64() && (ins.Constant < math.MinInt32 || ins.Constant > math.MaxInt32):
		return invalid("immediate %d does not fit 32 bits", ins.Constant)
	}
	return nil
}

// appendEncoded appends insns to b, each checked by validateAny, or only
// by encodable if raw.
func (insns Instructions) appendEncoded(b []byte, order binary.ByteOrder, raw bool) ([]byte, error) {
	if order == nil {
		order = binary.LittleEndian
	}
	r, err := newResolver(insns)
	if err != nil {
		return b, err
	}
	start := len(b)
	big := isBigEndian(order)
	for i := range insns {
		ins := &insns[i]
		if ins.Map != "" {
			return b[:start], fmt.Errorf("instruction %d (%s): %w %q: load the program with the map (sockfilter.LoadOptions.Maps)", i, ins.String(), ErrUnresolvedMap, ins.Map)
		}
		var resolved Instruction
		if ins.Target != "" {
			if resolved, err = r.resolve(i, *ins); err != nil {
				return b[:start], err
			}
			ins = &resolved
		}
		check := ins.validateAny
		if raw {
			check = ins.encodable
		}
		if err := check(); err != nil {
			return b[:start], &InstructionError{Index: i, Instruction: *ins, Err: err}
		}
		b = ins.appendEncoded(b, order, big)
	}
	return b, nil
}

// Resolve returns a copy of insns in which every instruction with a Target
// has its Offset, or its immediate for gotol, BPF-to-BPF calls and
// LoadFunc, set from the distance to the label, counted in slots from the
// next instruction. Target is kept. A Goto whose label is farther than a
// 16-bit offset reaches becomes a gotol (BPF_JMP32 | BPF_JA), which takes
// the same 8 bytes. It returns the errors of Assemble about labels:
// ErrMissingLabel, ErrDuplicateLabel and ErrOffsetOverflow.
func (insns Instructions) Resolve() (Instructions, error) {
	r, err := newResolver(insns)
	if err != nil {
		return nil, err
	}
	out := make(Instructions, len(insns))
	for i, ins := range insns {
		if out[i], err = r.resolve(i, ins); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// resolver holds the slot of every label of a program.
type resolver struct {
	labels map[string]int // label → slot; nil when no instruction has a label
	slots  []int          // instruction index → slot; nil when labels is
}

func newResolver(insns Instructions) (resolver, error) {
	var r resolver
	labels := 0
	for i := range insns {
		if insns[i].Label != "" {
			labels++
		}
	}
	if labels == 0 {
		return r, nil
	}
	r.slots = insns.Offsets()
	r.labels = make(map[string]int, labels)
	for i := range insns {
		ins := &insns[i]
		if ins.Label == "" {
			continue
		}
		if _, ok := r.labels[ins.Label]; ok {
			j := 0
			for insns[j].Label != ins.Label {
				j++
			}
			return r, fmt.Errorf("instruction %d: %w %q (also at instruction %d)", i, ErrDuplicateLabel, ins.Label, j)
		}
		r.labels[ins.Label] = r.slots[i]
	}
	return r, nil
}

// resolve returns the i-th instruction with its Target resolved.
func (r *resolver) resolve(i int, ins Instruction) (Instruction, error) {
	if ins.Target == "" {
		return ins, nil
	}
	slot, ok := r.labels[ins.Target]
	if !ok {
		return ins, fmt.Errorf("instruction %d: %w %q", i, ErrMissingLabel, ins.Target)
	}
	rel := int64(slot) - int64(r.slots[i]) - 1
	op := ins.OpCode
	switch {
	case op.Class() == JumpClass && op.JumpOp() == Ja && op.Source() == ImmSource:
		if rel < math.MinInt16 || rel > math.MaxInt16 {
			ins.OpCode = OpCode(Jump32Class) | OpCode(Ja)
			ins.Offset, ins.Constant = 0, rel
		} else {
			ins.Offset = int16(rel)
		}
	case op.Class().IsJump() && op.JumpOp() != CallOp && op.JumpOp() != ExitOp && op.JumpOp() != Ja:
		if rel < math.MinInt16 || rel > math.MaxInt16 {
			return ins, fmt.Errorf("instruction %d: jump to %q: %w: %d instructions do not fit a 16-bit offset", i, ins.Target, ErrOffsetOverflow, rel)
		}
		ins.Offset = int16(rel)
	case op == OpCode(Jump32Class)|OpCode(Ja):
		ins.Constant = rel
	case op == OpCode(JumpClass)|OpCode(CallOp) && ins.Src == PseudoCall:
		ins.Constant = rel
	case op == ldImm64 && ins.Src == PseudoFunc:
		ins.Constant = int64(uint32(int32(rel)))
	default:
		return ins, fmt.Errorf("instruction %d (%s): %w: it cannot refer to label %q", i, ins, ErrInvalidInstruction, ins.Target)
	}
	if rel < math.MinInt32 || rel > math.MaxInt32 {
		return ins, fmt.Errorf("instruction %d: reference to %q: %w: %d instructions do not fit a 32-bit offset", i, ins.Target, ErrOffsetOverflow, rel)
	}
	return ins, nil
}

// appendEncoded appends the 8 or 16 bytes of a valid instruction; big
// tells whether order is big-endian, where the register nibbles swap.
func (ins *Instruction) appendEncoded(b []byte, order binary.ByteOrder, big bool) []byte {
	regs := uint8(ins.Dst&0xf) | uint8(ins.Src&0xf)<<4
	if big {
		regs = uint8(ins.Dst&0xf)<<4 | uint8(ins.Src&0xf)
	}
	b = append(b, uint8(ins.OpCode), regs)
	lo, hi := uint32(ins.Constant), uint32(uint64(ins.Constant)>>32)
	wide := ins.IsLoadImm64()
	if ao, ok := order.(binary.AppendByteOrder); ok {
		// LittleEndian and BigEndian: append in place, no allocation.
		b = ao.AppendUint16(b, uint16(ins.Offset))
		b = ao.AppendUint32(b, lo)
		if wide {
			b = append(b, 0, 0, 0, 0)
			b = ao.AppendUint32(b, hi)
		}
		return b
	}
	tmp := make([]byte, 14)
	order.PutUint16(tmp[0:2], uint16(ins.Offset))
	order.PutUint32(tmp[2:6], lo)
	order.PutUint32(tmp[10:14], hi)
	if !wide {
		tmp = tmp[:6]
	}
	return append(b, tmp...)
}

// isBigEndian reports whether order puts the most significant byte first.
func isBigEndian(order binary.ByteOrder) bool {
	switch order {
	case binary.LittleEndian:
		return false
	case binary.BigEndian:
		return true
	}
	return order.Uint16([]byte{0, 1}) == 1
}
