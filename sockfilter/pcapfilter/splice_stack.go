package pcapfilter

import (
	"fmt"
	"slices"

	"github.com/purebpf/purebpf/asm"
)

// The filter's stack area: Compile's stack, compacted, nearest r10, then
// the slots of the splice's own.

// stackSlot returns the offset from r10 of the splice's own 8-byte slot
// name, allocating it below Compile's stack.
func (s *splicer) stackSlot(name string) int16 { return s.stackArea(name, 8) }

// stackArea returns the offset from r10 of the splice's own area name of
// n bytes, allocating it in 8-byte slots below Compile's stack.
func (s *splicer) stackArea(name string, n int) int16 {
	if off, ok := s.slot[name]; ok {
		return off
	}
	s.nslots += (n + 7) / 8
	off := int16(-s.opts.StackOffset - (s.depth+7)&^7 - 8*s.nslots)
	s.slot[name] = off
	return off
}

// stackUsed returns the bytes of the stack area the filter uses.
func (s *splicer) stackUsed() int { return (s.depth+7)&^7 + 8*s.nslots }

// compactStack lays out the stack Compile's program uses in the filter's
// area: each 8-byte block it touches gets one of its own, nearest r10
// first, so that sparse slots (the compiler keeps some far down the
// stack) take only the bytes they need, with their alignment kept.
func (s *splicer) compactStack(in asm.Instructions) error {
	s.blocks = make(map[int16]int16)
	var used []int16
	for i, ins := range in {
		off, ok := stackOffset(ins)
		if !ok || s.skip[i] {
			continue
		}
		if off >= 0 || int(off) < -maxStack {
			return fmt.Errorf("instruction %d (%v): stack offset %d is outside the stack", i, ins, off)
		}
		b := off &^ 7 // rounds down: -388 is in the block at -392
		if off+int16(ins.OpCode.Size()) > b+8 {
			return fmt.Errorf("instruction %d (%v): a stack access across 8-byte blocks", i, ins)
		}
		if _, ok := s.blocks[b]; !ok {
			s.blocks[b] = 0
			used = append(used, b)
		}
	}
	slices.Sort(used)
	slices.Reverse(used)
	for k, b := range used {
		s.blocks[b] = int16(-8 * (k + 1))
	}
	s.depth = 8 * len(used)
	return nil
}

// stackMap returns where the filter keeps the stack at off of Compile's
// program.
func (s *splicer) stackMap(off int16) int16 {
	b := off &^ 7
	return s.blocks[b] + (off - b) - int16(s.opts.StackOffset)
}

// stackOffset returns the offset of ins from r10 if it is a load from or
// a store to the stack.
func stackOffset(ins asm.Instruction) (int16, bool) {
	c := ins.OpCode.Class()
	switch {
	case c == asm.LdXClass && ins.Src == asm.R10, isStore(c) && ins.Dst == asm.R10:
		return ins.Offset, true
	}
	return 0, false
}

// stackAccess rewrites a load from or store to the stack of Compile's
// program into the filter's stack area.
func (s *splicer) stackAccess(ins asm.Instruction) error {
	c := ins.OpCode.Class()
	base := ins.Src
	if isStore(c) {
		base = ins.Dst
	}
	if base != asm.R10 || !(c == asm.LdXClass || isStore(c)) || ins.OpCode.Mode() != asm.MemMode {
		return fmt.Errorf("uses r10 other than as the base of a stack access")
	}
	if ins.Offset >= 0 || -int(ins.Offset) > maxStack {
		return fmt.Errorf("stack offset %d is outside the stack", ins.Offset)
	}
	v := ins
	v.Offset = s.stackMap(ins.Offset)
	if c == asm.LdXClass {
		v.Dst += vReg0
	} else if c == asm.StXClass {
		v.Src += vReg0
	}
	if v.Dst == asm.R6+vReg0 || v.Src == asm.R6+vReg0 {
		return fmt.Errorf("uses r6, which Compile's programs keep the context in")
	}
	s.emit(v)
	return nil
}
