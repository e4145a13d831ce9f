package pcapfilter

import (
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strings"

	"github.com/purebpf/purebpf/asm"
)

// allocate maps the virtual registers of the splice's code to the
// registers opts allows, and returns the code on those. Two virtual
// registers share a register unless one is written while the other holds
// a value something still reads (liveness over the code, whose jumps all
// go forward); one that holds a value across a helper call cannot be in
// r0 to r5, which the call clobbers; Context, PacketStart and PacketEnd
// stay in their own registers. The code is small and has at most 14
// virtual registers, so the colouring is exact: greedy, most constrained
// first, and a bounded search where that fails.
func allocate(code asm.Instructions, opts *SpliceOptions, calls bool) (asm.Instructions, error) {
	live, err := liveness(code)
	if err != nil {
		return nil, err
	}
	g := newInterference(code, live)
	fixed := map[asm.Register]asm.Register{}
	switch opts.Access {
	case DirectAccess:
		fixed[vStart], fixed[vEnd] = opts.PacketStart, opts.PacketEnd
		if opts.SkbContext {
			fixed[vCtx] = opts.Context
		}
	default:
		fixed[vCtx] = opts.Context
	}
	colors := slices.Clone(opts.Working)
	if calls {
		for r := asm.R0; r <= asm.R5; r++ {
			if !slices.Contains(colors, r) {
				colors = append(colors, r)
			}
		}
	}
	for v, p := range fixed {
		if g.used&(1<<v) != 0 && g.edges[v]&(1<<p) != 0 {
			return nil, fmt.Errorf("internal error: the code writes %v while it holds an input; please report the expression", p)
		}
	}
	assign, err := g.color(fixed, colors)
	if err != nil {
		return nil, err
	}
	out := make(asm.Instructions, len(code))
	for i, ins := range code {
		if isVirtual(ins.Dst) {
			ins.Dst = assign[ins.Dst]
		}
		if isVirtual(ins.Src) {
			ins.Src = assign[ins.Src]
		}
		out[i] = ins
	}
	return out, nil
}

// regSet is a set of registers, physical (0 to 10) and virtual (16 on).
type regSet uint32

// usesDefs returns the registers ins reads and writes.
func usesDefs(ins asm.Instruction) (use, def regSet) {
	bit := func(r asm.Register) regSet { return 1 << r }
	op := ins.OpCode
	c := op.Class()
	switch {
	case c.IsALU():
		def = bit(ins.Dst)
		if op.ALUOp() != asm.Mov {
			use = bit(ins.Dst)
		}
		if op.Source() == asm.RegSource && op.ALUOp() != asm.End && op.ALUOp() != asm.Neg {
			use |= bit(ins.Src)
		}
	case c.IsJump():
		switch op.JumpOp() {
		case asm.Ja:
		case asm.CallOp:
			for r := asm.R1; r <= asm.Register(helperArgs(asm.HelperFunc(ins.Constant))); r++ {
				use |= bit(r)
			}
			def = 0x3f // r0 to r5
		case asm.ExitOp:
			use = bit(asm.R0)
		default:
			use = bit(ins.Dst)
			if op.Source() == asm.RegSource {
				use |= bit(ins.Src)
			}
		}
	case c == asm.LdXClass:
		use, def = bit(ins.Src), bit(ins.Dst)
	case c == asm.StXClass:
		use = bit(ins.Dst) | bit(ins.Src)
	case c == asm.StClass:
		use = bit(ins.Dst)
	case c == asm.LdClass && ins.IsLoadImm64():
		def = bit(ins.Dst)
	}
	return use &^ (1 << asm.R10), def
}

// helperArgs returns the number of arguments of the helpers the splice
// calls, 5 for another.
func helperArgs(fn asm.HelperFunc) int {
	switch fn {
	case asm.FnProbeReadKernel:
		return 3
	case asm.FnSkbLoadBytes:
		return 4
	}
	return 5
}

// liveness returns, for each instruction of code, the registers whose
// values are read after it before being written. Jumps to labels the
// code does not define leave it: nothing is live there.
func liveness(code asm.Instructions) ([]regSet, error) {
	at := make(map[string]int, len(code))
	for i, ins := range code {
		if ins.Label != "" {
			at[ins.Label] = i
		}
	}
	in := make([]regSet, len(code)+1)
	out := make([]regSet, len(code))
	for i := len(code) - 1; i >= 0; i-- {
		ins := code[i]
		var o regSet
		if falls(ins) {
			o |= in[i+1]
		}
		if c := ins.OpCode.Class(); c.IsJump() && ins.OpCode.JumpOp() != asm.CallOp && ins.OpCode.JumpOp() != asm.ExitOp {
			j, ok := at[ins.Target]
			if ins.Target == "" {
				j, ok = i+1+int(ins.Offset), true
			}
			if ok {
				if j <= i || j > len(code) {
					return nil, fmt.Errorf("internal error: instruction %d jumps back or out; please report the expression", i)
				}
				o |= in[j]
			}
		}
		use, def := usesDefs(ins)
		out[i] = o
		in[i] = use | o&^def
	}
	return out, nil
}

// interference is the graph of the virtual registers: edges[v] holds the
// registers, virtual and physical, that v cannot share a register with.
type interference struct {
	edges  map[asm.Register]regSet
	used   regSet // the virtual registers the code uses
	across regSet // the virtual registers live across a helper call
}

func newInterference(code asm.Instructions, live []regSet) *interference {
	g := &interference{edges: make(map[asm.Register]regSet)}
	add := func(a, b asm.Register) {
		g.edges[a] |= 1 << b
		g.edges[b] |= 1 << a
	}
	for i, ins := range code {
		use, def := usesDefs(ins)
		g.used |= (use | def) &^ 0x7ff
		o := live[i]
		if ins.OpCode.Class().IsALU() && ins.OpCode.ALUOp() == asm.Mov && ins.OpCode.Source() == asm.RegSource {
			o &^= 1 << ins.Src // a copy may share its source's register
		}
		if ins.OpCode.Class().IsJump() && ins.OpCode.JumpOp() == asm.CallOp {
			g.across |= live[i] &^ 0x7ff
		}
		for d := range regs(def) {
			for r := range regs(o &^ (1 << d)) {
				add(d, r)
			}
		}
	}
	return g
}

// regs yields the registers of s.
func regs(s regSet) func(func(asm.Register) bool) {
	return func(yield func(asm.Register) bool) {
		for s != 0 {
			r := asm.Register(bits.TrailingZeros32(uint32(s)))
			s &^= 1 << r
			if !yield(r) {
				return
			}
		}
	}
}

// maxColorSteps bounds the search color makes once the greedy colouring
// has failed.
const maxColorSteps = 1 << 16

// color returns a register from colors for each used virtual register
// not in fixed, none shared with a neighbour in the graph.
func (g *interference) color(fixed map[asm.Register]asm.Register, colors []asm.Register) (map[asm.Register]asm.Register, error) {
	assign := make(map[asm.Register]asm.Register, 16)
	var todo []asm.Register
	for v := range regs(g.used) {
		if p, ok := fixed[v]; ok {
			assign[v] = p
		} else {
			todo = append(todo, v)
		}
	}
	allowed := func(v, c asm.Register) bool {
		if g.edges[v]&(1<<c) != 0 {
			return false
		}
		for u := range regs(g.edges[v] &^ 0x7ff) {
			if p, ok := assign[u]; ok && p == c {
				return false
			}
		}
		return true
	}
	// Most constrained first: the most neighbours, then the lowest number
	// (Compile's r0 first); each prefers its own number, so that the code
	// reads like Compile's where the options allow it.
	slices.SortStableFunc(todo, func(a, b asm.Register) int {
		return bits.OnesCount32(uint32(g.edges[b])) - bits.OnesCount32(uint32(g.edges[a]))
	})
	steps := 0
	var try func(k int) bool
	try = func(k int) bool {
		if k == len(todo) {
			return true
		}
		if steps++; steps > maxColorSteps {
			return false
		}
		v := todo[k]
		order := colors
		if own := v - vReg0; v < vCtx && slices.Contains(colors, own) {
			order = append([]asm.Register{own}, colors...)
		}
		for _, c := range order {
			if allowed(v, c) {
				assign[v] = c
				if try(k + 1) {
					return true
				}
				delete(assign, v)
			}
		}
		return false
	}
	if !try(0) {
		return nil, g.colorError(todo, colors)
	}
	return assign, nil
}

// colorError says why the virtual registers todo found no registers in
// colors.
func (g *interference) colorError(todo []asm.Register, colors []asm.Register) error {
	var names []string
	for _, v := range todo {
		names = append(names, vName(v))
	}
	saved, n := 0, 0
	for _, c := range colors {
		if c >= asm.R6 {
			saved++
		}
	}
	for _, v := range todo {
		if g.across&(1<<v) != 0 {
			n++
		}
	}
	msg := fmt.Sprintf("too few working registers: the filter holds %s, and Working gives %v", strings.Join(names, ", "), colors)
	if n > saved {
		msg += fmt.Sprintf("; %d of them hold values across helper calls, which need registers r6 to r9 (Working has %d)", n, saved)
	}
	return fmt.Errorf("%s: add registers to Working", msg)
}

// vName names a virtual register in an error.
func vName(v asm.Register) string {
	switch v {
	case vTmp:
		return "a load's temporary"
	case vCtx:
		return "the context"
	case vStart:
		return "PacketStart"
	case vEnd:
		return "PacketEnd"
	}
	return fmt.Sprintf("Compile's %v", v-vReg0)
}

// checkReach checks that each conditional jump of code to a label it
// defines fits the instruction's 16-bit offset.
func checkReach(code asm.Instructions) error {
	slot := code.Offsets()
	at := make(map[string]int, len(code))
	for i, ins := range code {
		if ins.Label != "" {
			if _, dup := at[ins.Label]; dup {
				return fmt.Errorf("internal error: label %q twice; please report the expression", ins.Label)
			}
			at[ins.Label] = slot[i]
		}
	}
	for i, ins := range code {
		j, ok := at[ins.Target]
		if !ok || !ins.OpCode.Class().IsJump() || ins.OpCode.JumpOp() == asm.Ja {
			continue
		}
		if d := j - slot[i] - 1; d > math.MaxInt16 {
			return fmt.Errorf("%w: a jump across %d instructions, farther than the 32767 a conditional jump reaches", ErrTooComplex, d)
		}
	}
	return nil
}
