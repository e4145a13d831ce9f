package vm_test

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
)

// assembleConformance assembles the assembly language of the public
// bpf_conformance suite (github.com/Alan-Jowett/bpf_conformance, the
// syntax of uBPF's assembler: `mov %r0, 1`, `ldxw %r1, [%r2+4]`, `lock
// fetch add [%r10-8], %r1`, `jne %r0, 15, fail`, `call local f`) into
// little-endian bytes, written from the suite's test files: each mnemonic
// names an opcode, a 32 or 64 suffix selects the width, a first exit
// defines the label "exit". It knows what the suite's tests use.
func assembleConformance(src string) ([]byte, error) {
	a := &confAsm{labels: map[string]int{}}
	for n, line := range strings.Split(src, "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(strings.ReplaceAll(line, ",", " "))
		if len(f) == 0 {
			continue
		}
		if name, ok := strings.CutSuffix(f[0], ":"); ok && len(f) == 1 {
			if _, dup := a.labels[name]; dup {
				return nil, fmt.Errorf("line %d: duplicate label %q", n+1, name)
			}
			a.labels[name] = len(a.out)
			continue
		}
		if f[0] == "exit" {
			if _, ok := a.labels["exit"]; !ok {
				a.labels["exit"] = len(a.out)
			}
		}
		if err := a.insn(f[0], f[1:]); err != nil {
			return nil, fmt.Errorf("line %d: %q: %v", n+1, strings.TrimSpace(line), err)
		}
	}
	for i, ref := range a.refs {
		if ref.label == "" {
			continue
		}
		at, ok := a.labels[ref.label]
		if !ok {
			return nil, fmt.Errorf("invalid label %q", ref.label)
		}
		rel := at - i - 1
		if ref.imm {
			a.out[i].imm = int32(rel)
		} else {
			a.out[i].off = int16(rel)
		}
	}
	var b []byte
	for _, s := range a.out {
		b = append(b, s.op, s.dst|s.src<<4)
		b = binary.LittleEndian.AppendUint16(b, uint16(s.off))
		b = binary.LittleEndian.AppendUint32(b, uint32(s.imm))
	}
	return b, nil
}

type confSlot struct {
	op, dst, src uint8
	off          int16
	imm          int32
}

type confRef struct {
	label string
	imm   bool // the offset goes in imm (ja32, call local)
}

type confAsm struct {
	out    []confSlot
	refs   []confRef
	labels map[string]int
}

func (a *confAsm) emit(s confSlot, ref confRef) {
	a.out = append(a.out, s)
	a.refs = append(a.refs, ref)
}

var confALU = map[string]uint8{
	"add": 0x0, "sub": 0x1, "mul": 0x2, "div": 0x3, "sdiv": 0x3, "or": 0x4, "and": 0x5, "lsh": 0x6,
	"rsh": 0x7, "neg": 0x8, "mod": 0x9, "smod": 0x9, "xor": 0xa, "mov": 0xb, "arsh": 0xc,
}

var confJmp = map[string]uint8{
	"jeq": 0x1, "jgt": 0x2, "jge": 0x3, "jset": 0x4, "jne": 0x5, "jsgt": 0x6, "jsge": 0x7,
	"jlt": 0xa, "jle": 0xb, "jslt": 0xc, "jsle": 0xd,
}

var confSizes = map[string]uint8{"w": 0x00, "h": 0x08, "b": 0x10, "dw": 0x18}

var confAtomic = map[string]int32{"add": 0x00, "or": 0x40, "and": 0x50, "xor": 0xa0, "xchg": 0xe1, "cmpxchg": 0xf1}

func (a *confAsm) insn(m string, ops []string) error {
	need := func(n int) error {
		if len(ops) != n {
			return fmt.Errorf("%d operands, want %d", len(ops), n)
		}
		return nil
	}
	switch {
	case m == "exit":
		a.emit(confSlot{op: 0x95}, confRef{})
		return need(0)
	case m == "lddw":
		if err := need(2); err != nil {
			return err
		}
		dst, err := confReg(ops[0])
		if err != nil {
			return err
		}
		v, err := confImm64(ops[1])
		a.emit(confSlot{op: 0x18, dst: dst, imm: int32(uint32(v))}, confRef{})
		a.emit(confSlot{imm: int32(uint32(v >> 32))}, confRef{})
		return err
	case m == "call":
		return a.call(ops)
	case m == "lock":
		return a.lock(ops)
	case m == "ja" || m == "ja32":
		if err := need(1); err != nil {
			return err
		}
		s, ref := confSlot{op: 0x05}, confRef{}
		if m == "ja32" {
			s.op, ref.imm = 0x06, true
		}
		return a.target(s, ref, ops[0])
	case strings.HasPrefix(m, "ldx"):
		return a.mem(m, "ldx", 0x61, 0x81, ops, true)
	case strings.HasPrefix(m, "stx"):
		return a.mem(m, "stx", 0x63, 0, ops, false)
	case strings.HasPrefix(m, "st"):
		return a.mem(m, "st", 0x62, 0, ops, false)
	}
	if s, ok := confEnd(m); ok {
		if err := need(1); err != nil {
			return err
		}
		dst, err := confReg(ops[0])
		s.dst = dst
		a.emit(s, confRef{})
		return err
	}
	base, cls := strings.TrimSuffix(m, "32"), uint8(0x07)
	if base != m {
		cls = 0x04
	} else {
		base = strings.TrimSuffix(m, "64")
	}
	if j, ok := confJmp[base]; ok {
		if err := need(3); err != nil {
			return err
		}
		cls = map[uint8]uint8{0x07: 0x05, 0x04: 0x06}[cls]
		s, err := confOperands(j<<4|cls, ops[0], ops[1])
		if err != nil {
			return err
		}
		return a.target(s, confRef{}, ops[2])
	}
	var off int16
	if b, ok := strings.CutPrefix(base, "movsx"); ok {
		n, err := strconv.Atoi(b)
		if err != nil {
			return fmt.Errorf("invalid mnemonic %q", m)
		}
		base, off = "mov", int16(n)
	}
	op, ok := confALU[base]
	if !ok {
		return fmt.Errorf("invalid mnemonic %q", m)
	}
	if base == "sdiv" || base == "smod" {
		off = 1
	}
	if base == "neg" {
		if err := need(1); err != nil {
			return err
		}
		dst, err := confReg(ops[0])
		a.emit(confSlot{op: op<<4 | cls, dst: dst}, confRef{})
		return err
	}
	if err := need(2); err != nil {
		return err
	}
	s, err := confOperands(op<<4|cls, ops[0], ops[1])
	s.off = off
	a.emit(s, confRef{})
	return err
}

// confEnd returns the byte swaps: be16 ... le64, swap16 and bswap16 ....
func confEnd(m string) (confSlot, bool) {
	for _, p := range []struct {
		prefix string
		op     uint8
	}{{"bswap", 0xd7}, {"swap", 0xd7}, {"be", 0xdc}, {"le", 0xd4}} {
		if bits, ok := strings.CutPrefix(m, p.prefix); ok {
			if n, err := strconv.Atoi(bits); err == nil && (n == 16 || n == 32 || n == 64) {
				return confSlot{op: p.op, imm: int32(n)}, true
			}
		}
	}
	return confSlot{}, false
}

// confOperands encodes `dst, src` or `dst, imm` for opcode op.
func confOperands(op uint8, dst, src string) (confSlot, error) {
	d, err := confReg(dst)
	if err != nil {
		return confSlot{}, err
	}
	s := confSlot{op: op, dst: d}
	if strings.HasPrefix(src, "%") {
		s.op |= 0x08
		s.src, err = confReg(src)
		return s, err
	}
	s.imm, err = confImm32(src)
	return s, err
}

func (a *confAsm) target(s confSlot, ref confRef, t string) error {
	if t[0] == '+' || t[0] == '-' {
		n, err := strconv.ParseInt(t, 0, 16)
		if ref.imm {
			s.imm = int32(n)
		} else {
			s.off = int16(n)
		}
		a.emit(s, confRef{})
		return err
	}
	ref.label = t
	a.emit(s, ref)
	return nil
}

func (a *confAsm) call(ops []string) error {
	switch {
	case len(ops) == 2 && ops[0] == "local":
		return a.target(confSlot{op: 0x85, src: 1}, confRef{imm: true}, ops[1])
	case len(ops) == 2 && ops[0] == "runtime":
		imm, err := confImm32(ops[1])
		a.emit(confSlot{op: 0x85, src: 2, imm: imm}, confRef{})
		return err
	case len(ops) == 1 && strings.HasPrefix(ops[0], "%"):
		r, err := confReg(ops[0])
		a.emit(confSlot{op: 0x8d, dst: r}, confRef{})
		return err
	case len(ops) == 1:
		imm, err := confImm32(ops[0])
		a.emit(confSlot{op: 0x85, imm: imm}, confRef{})
		return err
	}
	return fmt.Errorf("invalid call")
}

// lock encodes `lock [fetch] op[32] [dst+off], src`.
func (a *confAsm) lock(ops []string) error {
	fetch := len(ops) > 0 && ops[0] == "fetch"
	if fetch {
		ops = ops[1:]
	}
	if len(ops) != 3 {
		return fmt.Errorf("invalid number of operands for lock")
	}
	name, op := strings.TrimSuffix(ops[0], "32"), uint8(0xdb)
	if name != ops[0] {
		op = 0xc3
	}
	imm, ok := confAtomic[name]
	if !ok {
		return fmt.Errorf("invalid atomic operation %q", ops[0])
	}
	if fetch {
		imm |= 1
	}
	dst, off, err := confAddr(ops[1])
	if err != nil {
		return err
	}
	src, err := confReg(ops[2])
	a.emit(confSlot{op: op, dst: dst, src: src, off: off, imm: imm}, confRef{})
	return err
}

// mem encodes a load or store: ldxw dst, [src+off]; stw [dst+off], imm;
// stxw [dst+off], src.
func (a *confAsm) mem(m, prefix string, op, sxOp uint8, ops []string, load bool) error {
	if len(ops) != 2 {
		return fmt.Errorf("%d operands, want 2", len(ops))
	}
	size := strings.TrimPrefix(m, prefix)
	if s, ok := strings.CutPrefix(size, "s"); ok && sxOp != 0 {
		size, op = s, sxOp
	}
	bits, ok := confSizes[size]
	if !ok {
		return fmt.Errorf("invalid mnemonic %q", m)
	}
	s := confSlot{op: op | bits}
	var err error
	if load {
		if s.dst, err = confReg(ops[0]); err != nil {
			return err
		}
		s.src, s.off, err = confAddr(ops[1])
	} else {
		if s.dst, s.off, err = confAddr(ops[0]); err != nil {
			return err
		}
		if prefix == "stx" {
			s.src, err = confReg(ops[1])
		} else {
			s.imm, err = confImm32(ops[1])
		}
	}
	a.emit(s, confRef{})
	return err
}

func confReg(s string) (uint8, error) {
	n, err := strconv.ParseUint(strings.TrimPrefix(s, "%r"), 10, 8)
	if !strings.HasPrefix(s, "%r") || err != nil || n > 15 {
		return 0, fmt.Errorf("invalid register %q", s)
	}
	return uint8(n), nil
}

// confAddr reads [%rN], [%rN+off] or [%rN-off].
func confAddr(s string) (uint8, int16, error) {
	inner, ok1 := strings.CutPrefix(s, "[")
	inner, ok2 := strings.CutSuffix(inner, "]")
	if !ok1 || !ok2 {
		return 0, 0, fmt.Errorf("invalid memory operand %q", s)
	}
	i := strings.IndexAny(inner, "+-")
	if i < 0 {
		r, err := confReg(inner)
		return r, 0, err
	}
	r, err := confReg(inner[:i])
	if err != nil {
		return 0, 0, err
	}
	off, err := strconv.ParseInt(inner[i:], 0, 32)
	if err != nil || off < -1<<15 || off > 1<<16-1 {
		return 0, 0, fmt.Errorf("offset out of 16-bit range: %q", s)
	}
	return r, int16(off), nil
}

// confImm32 reads a signed decimal or a hexadecimal of up to 32 bits.
func confImm32(s string) (int32, error) {
	if h, ok := strings.CutPrefix(s, "0x"); ok {
		v, err := strconv.ParseUint(h, 16, 32)
		return int32(uint32(v)), err
	}
	v, err := strconv.ParseInt(s, 10, 32)
	return int32(v), err
}

// confImm64 reads a decimal or a hexadecimal of up to 64 bits.
func confImm64(s string) (uint64, error) {
	if h, ok := strings.CutPrefix(s, "0x"); ok {
		return strconv.ParseUint(h, 16, 64)
	}
	if strings.HasPrefix(s, "-") {
		v, err := strconv.ParseInt(s, 10, 64)
		return uint64(v), err
	}
	return strconv.ParseUint(s, 10, 64)
}
