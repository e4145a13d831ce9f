package pcapfilter

import (
	"fmt"
	"strconv"

	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/sockfilter/packet"
	"github.com/purebpf/purebpf/sockfilter/skb"
)

// The splice rewrites Compile's program instruction by instruction, by
// what each does rather than by the sequences the compiler happens to
// emit, into code on virtual registers, which allocate (splice_regs.go)
// then maps to the registers the options allow:
//
//   - the context: r1 at the start and whatever register is copied from
//     it (r6): copies are dropped, reads of skb->len become the frame
//     length in the target's terms, reads of other fields of struct
//     __sk_buff are kept where the target has one (ctxLoad);
//   - the frame-length probe that follows a read of skb->len in Compile's
//     Ethernet programs (a bpf_skb_load_bytes_relative of one byte and
//     the 14 it adds; see frameLenInsns) is dropped with it;
//   - legacy packet loads (LD_ABS, LD_IND) become loads in the target's
//     access mode (splice_access.go); one past any frame (a load of
//     libpcap's that fails) becomes a jump to no match;
//   - `r0 = K; exit` becomes a jump to match (K != 0) or no match, any
//     other exit a test of r0;
//   - stack accesses move into the stack area;
//   - everything else keeps its operation, on virtual registers.

// Virtual registers: Compile's rN is vReg0+N; the others are the
// splice's own.
const (
	vReg0  asm.Register = 16
	vCtx   asm.Register = vReg0 + 10 // the context or sk_buff pointer: Context
	vStart asm.Register = vReg0 + 11 // PacketStart
	vEnd   asm.Register = vReg0 + 12 // PacketEnd
	vTmp   asm.Register = vReg0 + 13 // a temporary of DirectAccess loads
	vLast  asm.Register = vTmp
)

// isVirtual reports whether r is a virtual register.
func isVirtual(r asm.Register) bool { return r >= vReg0 && r <= vLast }

// splicer is the state of one Splice.
type splicer struct {
	opts SpliceOptions
	link packet.LinkType

	in      asm.Instructions
	skip    []bool // instructions of a frame-length probe, dropped
	out     asm.Instructions
	pending []string          // labels of dropped instructions, for the next emitted one
	alias   map[string]string // a label that met another on one instruction → that one

	depth  int             // bytes of stack Compile's program uses, once compacted
	blocks map[int16]int16 // its 8-byte blocks of stack → theirs in the area
	nslots int             // 8-byte slots of the splice's own below them
	slot   map[string]int16

	calls              bool // helper calls emitted
	ctxOnStack         bool // Context is kept in a stack slot, as calls clobber its register
	usedMatch, usedNot bool
	usedEnd            bool
}

// label returns the label of the splice's own name in the output.
func (s *splicer) label(name string) string { return s.opts.LabelPrefix + "_" + name }

// target returns the label the filter goes to on match (or no match),
// and records that it is used.
func (s *splicer) target(match bool) string {
	if s.opts.Match == "" && s.opts.NoMatch == "" {
		if match {
			s.usedMatch = true
			return s.label("match")
		}
		s.usedNot = true
		return s.label("nomatch")
	}
	l := s.opts.NoMatch
	if match {
		l = s.opts.Match
	}
	if l == "" {
		s.usedEnd = true
		return s.label("end")
	}
	return l
}

// emit appends ins, giving the pending labels to the first.
func (s *splicer) emit(ins ...asm.Instruction) {
	if len(ins) == 0 {
		return
	}
	if len(s.pending) > 0 {
		ins[0] = ins[0].WithLabel(s.pending[0])
		for _, l := range s.pending[1:] {
			s.alias[l] = s.pending[0]
		}
		s.pending = s.pending[:0]
	}
	s.out = append(s.out, ins...)
}

// rewrite returns the virtual code of insns.
func (s *splicer) rewrite(insns asm.Instructions) (asm.Instructions, error) {
	s.alias, s.slot = make(map[string]string), make(map[string]int16)
	in, err := s.prepare(insns)
	if err != nil {
		return nil, err
	}
	s.in = in
	s.prologue()
	ctx := make([]uint16, len(in)+1) // canonical registers holding the context, on the way into i
	has := make([]bool, len(in)+1)
	at := make(map[string]int, len(in))
	for i, ins := range in {
		if ins.Label != "" {
			at[ins.Label] = i
		}
	}
	ctx[0], has[0] = 1<<asm.R1, true
	for i := 0; i < len(in); i++ {
		ins := in[i]
		if ins.Label != "" {
			s.pending = append(s.pending, s.opts.LabelPrefix+ins.Label)
		}
		if !has[i] {
			continue // nothing reaches it: the verifier refuses dead code
		}
		if s.skip[i] {
			// A frame-length probe: dropped, but the context flows
			// through it (its call clobbers r0 to r5).
			if i+1 < len(in) {
				ctx[i+1], has[i+1] = ctx[i]&^0x3f, true
			}
			continue
		}
		n, next, err := s.insn(i, ctx[i])
		if err != nil {
			return nil, fmt.Errorf("instruction %d (%v): %w", i, ins, err)
		}
		// The ways out: the jump target, and the next instruction.
		flow := func(j int, v uint16) {
			if has[j] {
				ctx[j] &= v
			} else {
				ctx[j], has[j] = v, true
			}
		}
		last := in[i+n-1]
		if last.OpCode.Class().IsJump() && last.Target != "" && last.OpCode.JumpOp() != asm.CallOp {
			j, ok := at[last.Target]
			if !ok {
				return nil, fmt.Errorf("instruction %d: jump to %q, which the program does not define", i+n-1, last.Target)
			}
			if j <= i+n-1 {
				return nil, fmt.Errorf("instruction %d: jump back to %q: a filter has no loops", i+n-1, last.Target)
			}
			flow(j, next)
		}
		if falls(last) {
			if i+n >= len(in) {
				return nil, fmt.Errorf("instruction %d (%v) is the last and does not end the program: it would run on into the code after the filter", i+n-1, last)
			}
			flow(i+n, next)
		}
		i += n - 1
	}
	// Labels left belong to code nothing reaches.
	s.pending = s.pending[:0]
	s.terminals()
	if n := s.stackUsed(); n > s.opts.StackSize {
		return nil, fmt.Errorf("the filter needs %d bytes of stack, StackSize gives %d", n, s.opts.StackSize)
	}
	for i := range s.out {
		if t, ok := s.alias[s.out[i].Target]; ok {
			s.out[i].Target = t
		}
	}
	code := tidy(s.out)
	if s.opts.Access == DirectAccess {
		code = dropGuards(code)
	}
	return dropUnusedLabels(s.keepOutcomes(code)), nil
}

// falls reports whether execution can go on from ins to the next
// instruction.
func falls(ins asm.Instruction) bool {
	if !ins.OpCode.Class().IsJump() {
		return true
	}
	switch ins.OpCode.JumpOp() {
	case asm.ExitOp:
		return false
	case asm.Ja:
		return false
	}
	return true
}

// prepare returns a copy of insns whose jumps all have labels (Compile's
// frame-length probe jumps by offset), and marks the instructions of the
// probes in s.skip.
func (s *splicer) prepare(insns asm.Instructions) (asm.Instructions, error) {
	in := make(asm.Instructions, len(insns))
	copy(in, insns)
	s.skip = make([]bool, len(in))
	for i := range in {
		if err := in[i].Validate(); err != nil {
			return nil, fmt.Errorf("instruction %d (%v): %w", i, in[i], err)
		}
		if ins := in[i]; ins.OpCode.Class().IsJump() && ins.OpCode.JumpOp() == asm.CallOp && ins.Src == 0 &&
			asm.HelperFunc(ins.Constant) == asm.FnSkbLoadBytesRelative {
			s.markProbe(in, i)
		}
		if ins := in[i]; ins.OpCode.Class() == asm.LdClass && ins.IsLoadImm64() {
			return nil, fmt.Errorf("instruction %d (%v): a 64-bit immediate load, which Compile's programs do not have", i, ins)
		}
		if ins := in[i]; ins.OpCode.Class() == asm.StXClass && ins.OpCode.Mode() == asm.AtomicMode {
			return nil, fmt.Errorf("instruction %d (%v): an atomic operation, which Compile's programs do not have", i, ins)
		}
	}
	if err := s.compactStack(in); err != nil {
		return nil, err
	}
	fresh := 0
	for i := range in {
		ins := &in[i]
		if !ins.OpCode.Class().IsJump() || ins.Target != "" || s.skip[i] {
			continue
		}
		switch ins.OpCode.JumpOp() {
		case asm.CallOp, asm.ExitOp:
			continue
		}
		off := int(ins.Offset)
		if ins.OpCode == asm.GotoL("").OpCode {
			off = int(ins.Constant)
		}
		j := i + 1 + off
		if j <= i || j >= len(in) {
			return nil, fmt.Errorf("instruction %d (%v): jumps to instruction %d, outside the program or back", i, *ins, j)
		}
		if in[j].Label == "" {
			fresh++
			in[j].Label = "_o" + strconv.Itoa(fresh)
		}
		ins.Target = in[j].Label
	}
	for i := range in {
		if s.skip[i] && in[i].Label != "" {
			return nil, fmt.Errorf("instruction %d (%v): a jump into the middle of the frame-length probe", i, in[i])
		}
	}
	return in, nil
}

// markProbe marks, around the bpf_skb_load_bytes_relative call at c, the
// frame-length probe of frameLenInsns: after a load of skb->len into a
// register D, the instructions that set up the call's arguments (they
// write only r1 to r5), the call, `if r0 != 0 goto +1` and `wD += 14`.
// It marks nothing if the instructions around c are not that.
func (s *splicer) markProbe(in asm.Instructions, c int) {
	start := c
	for start > 0 && in[start-1].Label == "" && writesOnly(in[start-1], asm.R1, asm.R5) {
		start--
	}
	if start == 0 || in[start].Label != "" || c+2 >= len(in) {
		return
	}
	ld := in[start-1]
	if ld.OpCode != skb.Len.Load(0, 0).OpCode || ld.Offset != int16(skb.Len) || ld.Src != asm.R1 && ld.Src != asm.R6 {
		return
	}
	jne, add := in[c+1], in[c+2]
	if jne != asm.JNE.Imm(asm.R0, 0, "").WithOffset(1) || add.Label != "" ||
		add != asm.Add.Imm32(ld.Dst, 14) {
		return
	}
	for i := start; i <= c+2; i++ {
		s.skip[i] = true
	}
}

// writesOnly reports whether ins is an ALU instruction whose destination
// is one of lo to hi.
func writesOnly(ins asm.Instruction, lo, hi asm.Register) bool {
	return ins.OpCode.Class().IsALU() && ins.Dst >= lo && ins.Dst <= hi
}

// writes reports whether ins writes its Dst register.
func writes(ins asm.Instruction) bool {
	switch c := ins.OpCode.Class(); {
	case c.IsALU(), c == asm.LdXClass:
		return true
	case c == asm.LdClass:
		return ins.IsLoadImm64()
	}
	return false
}

// insn rewrites in[i], with the canonical registers in ctx holding the
// context, and returns how many instructions of in it took and the
// registers that hold the context after them.
func (s *splicer) insn(i int, ctx uint16) (n int, out uint16, err error) {
	ins := s.in[i]
	c := ins.OpCode.Class()
	n, out = 1, ctx
	if r := ins.Dst; writes(ins) && r <= asm.R9 {
		out &^= 1 << r
	}
	isCtx := func(r asm.Register) bool { return r <= asm.R9 && ctx&(1<<r) != 0 }
	switch {
	case c.IsALU() && ins.OpCode.ALUOp() == asm.Mov && ins.OpCode.Source() == asm.RegSource &&
		c == asm.ALU64Class && isCtx(ins.Src):
		return n, out | 1<<ins.Dst, nil // a copy of the context: dropped
	case c == asm.LdXClass && isCtx(ins.Src):
		return n, out, s.ctxLoad(ins)
	case usesReg(ins, isCtx):
		return 0, 0, fmt.Errorf("uses the context other than to read a field of it")
	case c == asm.LdClass:
		if !isCtx(asm.R6) {
			return 0, 0, fmt.Errorf("a legacy packet load without the context in r6")
		}
		out &^= 0x3f // r0 to r5: a legacy load clobbers them
		return n, out, s.packetLoad(ins)
	case c.IsJump() && ins.OpCode.JumpOp() == asm.CallOp:
		return 0, 0, fmt.Errorf("calls %v, which a spliced filter cannot", asm.HelperFunc(ins.Constant))
	case c.IsJump() && ins.OpCode.JumpOp() == asm.ExitOp:
		s.emit(asm.JNE.Imm32(vReg0, 0, s.target(true)), asm.Goto(s.target(false)))
		return n, out, nil
	case isRetConst(s.in, i):
		s.emit(asm.Goto(s.target(ins.Constant != 0)))
		return 2, out, nil
	case usesReg(ins, func(r asm.Register) bool { return r == asm.R10 }):
		return n, out, s.stackAccess(ins)
	}
	v, err := virtualize(ins)
	if err != nil {
		return 0, 0, err
	}
	if v.Target != "" {
		v.Target = s.opts.LabelPrefix + v.Target
	}
	s.emit(v)
	return n, out, nil
}

// isRetConst reports whether in[i] is `r0 = K` followed by an exit that
// nothing jumps to: a return of a constant.
func isRetConst(in asm.Instructions, i int) bool {
	ins := in[i]
	if i+1 >= len(in) || in[i+1].OpCode != asm.Exit().OpCode || in[i+1].Label != "" {
		return false
	}
	return ins.OpCode.Class().IsALU() && ins.OpCode.ALUOp() == asm.Mov &&
		ins.OpCode.Source() == asm.ImmSource && ins.Dst == asm.R0 && ins.Offset == 0
}

// usesReg reports whether ins reads or writes a register for which is
// holds.
func usesReg(ins asm.Instruction, is func(asm.Register) bool) bool {
	c := ins.OpCode.Class()
	switch {
	case c == asm.LdClass && ins.OpCode.Mode() == asm.IndMode:
		return is(ins.Src)
	case c == asm.LdClass:
		return false
	case c.IsJump() && (ins.OpCode.JumpOp() == asm.CallOp || ins.OpCode.JumpOp() == asm.ExitOp || ins.OpCode.JumpOp() == asm.Ja):
		return false
	case c.IsALU() && ins.OpCode.Source() == asm.ImmSource, c.IsJump() && ins.OpCode.Source() == asm.ImmSource,
		c == asm.StClass:
		return is(ins.Dst)
	}
	return is(ins.Dst) || is(ins.Src)
}

// virtualize returns ins on virtual registers.
func virtualize(ins asm.Instruction) (asm.Instruction, error) {
	for _, r := range []*asm.Register{&ins.Dst, &ins.Src} {
		if *r == asm.R10 {
			return ins, fmt.Errorf("uses r10 other than as the base of a stack access")
		}
	}
	c := ins.OpCode.Class()
	if c.IsJump() && ins.OpCode.JumpOp() == asm.Ja {
		return ins, nil
	}
	if r := ins.Dst; r == asm.R6 {
		return ins, fmt.Errorf("uses r6, which Compile's programs keep the context in")
	}
	ins.Dst += vReg0
	if c.IsALU() && ins.OpCode.Source() == asm.RegSource || c.IsJump() && ins.OpCode.Source() == asm.RegSource ||
		c == asm.LdXClass || c == asm.StXClass {
		if ins.Src == asm.R6 {
			return ins, fmt.Errorf("uses r6, which Compile's programs keep the context in")
		}
		ins.Src += vReg0
	}
	return ins, nil
}

// terminals appends the blocks the filter ends in: in result mode, the
// setting of Result; with a label that falls through, a no-op to jump to.
func (s *splicer) terminals() {
	r := s.opts.Result
	switch {
	case s.usedMatch && s.usedNot:
		s.pending = append(s.pending, s.label("match"))
		s.emit(asm.Mov.Imm(r, 1), asm.Goto("").WithOffset(1))
		s.pending = append(s.pending, s.label("nomatch"))
		s.emit(asm.Mov.Imm(r, 0))
	case s.usedMatch:
		s.pending = append(s.pending, s.label("match"))
		s.emit(asm.Mov.Imm(r, 1))
	case s.usedNot:
		s.pending = append(s.pending, s.label("nomatch"))
		s.emit(asm.Mov.Imm(r, 0))
	case s.usedEnd:
		s.pending = append(s.pending, s.label("end"))
		s.emit(asm.Goto("").WithOffset(0))
	}
}

// isStore reports whether c is BPF_ST or BPF_STX.
func isStore(c asm.Class) bool { return c == asm.StClass || c == asm.StXClass }
