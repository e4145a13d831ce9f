package pcapfilter

import (
	"slices"
	"strconv"

	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/sockfilter/packet"
	"github.com/purebpf/purebpf/sockfilter/skb"
)

// The code generator turns the predicate tree into a control-flow graph of
// tests (as libpcap's blocks), optimises it (opt.go), lays it out and
// emits eBPF:
//
//	r6       the context (struct __sk_buff *), as the packet loads need
//	r0       the value being tested; it is kept across tests that load the
//	         same bytes; for the one transport load of a test after which
//	         none follows, the offset of the transport header (node.idxR0)
//	r7       the offset of the transport header from the network header
//	         the transport loads are relative to: 4 * IHL on the IPv4
//	         path, 40 on the IPv6 path into shared tests (shareTails)
//	r8       the frame length from the link-layer header, for `len`
//	r1, r9   temporaries of arithmetic
//	fp-8     the byte the length probe copies
//	fp-16... spilled operands of arithmetic
//
// Packet loads are LD_ABS/LD_IND relative to the link-layer header
// (SKF_LL_OFF), so the program reads the same bytes on a packet socket,
// where skb->data is the link-layer header, and under BPF_PROG_TEST_RUN,
// where it is the network header. A load past the end of the frame ends
// the program returning 0, as classic BPF does; the reject block is such
// a load (rejectInsn).
//
// The layout: the tests in the order of graph.order, each falling through
// to a successor where it can, then the reject block, then the accept
// block (`r0 = -1; exit`). crossJump then replaces instructions that
// repeat those before a jump target with a jump to it.

// maxSpill is the deepest nesting of arithmetic operands kept on the stack.
const maxSpill = 60

// node is a block of the graph: a test with a successor for each outcome,
// or a terminal (t == nil) that accepts or rejects.
type node struct {
	id     int
	t      *predTest
	accept bool
	jt, jf *node

	// The test's keys, with canonical values (see interner): key is the
	// whole test, vkey its value, lkey the plain load under a mask (nil if
	// the value is not a plain or masked load), setKey the load ANDed with
	// mask & k, which a false `&` test knows is 0.
	key    testKey
	vkey   *val
	lkey   *val
	setKey *val
	mask   uint32
	inR0   bool // the value is in r0 on every path in: merged by mergeTails

	// v6 marks a node with no test that sets r7 to 40, the length of the
	// fixed IPv6 header at nl6, and goes on to jt, tests of the IPv4
	// transport header at nl6 (see graph.shareTails).
	v6  bool
	nl6 int32

	// idxR0 is the one load of the test relative to the IPv4 header at
	// some nl, if no path loads relative to it after the test: where r7
	// does not hold 4*IHL yet, the load takes it from r0, which saves
	// keeping it.
	idxR0 *val
}

func (n *node) terminal() bool { return n.t == nil && !n.v6 }

// graph is the control-flow graph of an expression.
type graph struct {
	root, accept, reject *node
	nodes                []*node
	in                   *interner
	byKey                map[mergeKey]*node // merge's table, kept across rounds
}

// newGraph builds the graph of p, with short-circuit evaluation: each test
// of the tree becomes exactly one node.
func newGraph(p pred) (*graph, *Error) {
	g := &graph{in: newInterner()}
	g.accept = g.newNode(nil, nil, nil)
	g.accept.accept = true
	g.reject = g.newNode(nil, nil, nil)
	root, err := g.build(p, g.accept, g.reject)
	if err != nil {
		return nil, err
	}
	g.root = root
	return g, nil
}

func (g *graph) newNode(t *predTest, jt, jf *node) *node {
	n := &node{id: len(g.nodes), jt: jt, jf: jf}
	if t != nil {
		g.setTest(n, t)
	}
	g.nodes = append(g.nodes, n)
	return n
}

// setTest makes t, with its values made canonical, n's test, and sets the
// keys the optimiser and the emitter look n up by.
func (g *graph) setTest(n *node, t *predTest) {
	c := &predTest{v: g.in.canon(t.v), op: t.op, k: t.k, r: g.in.canon(t.r)}
	n.t = c
	n.key = testKey{v: c.v, op: c.op, k: c.k, r: c.r}
	n.vkey, n.lkey, n.setKey, n.mask = c.v, nil, nil, 0xffffffff
	if l, m, ok := c.v.maskedLoad(); ok && c.r == nil {
		n.lkey, n.mask = l, m
		if c.op == cmpSet {
			n.setKey = g.maskKey(l, m&c.k)
		}
	}
}

// maskKey returns the canonical value of the load l ANDed with m.
func (g *graph) maskKey(l *val, m uint32) *val {
	if m == 0xffffffff {
		return l
	}
	return g.in.canon(aluVal(aluAnd, l, constVal(m)))
}

func (g *graph) build(p pred, t, f *node) (*node, *Error) {
	if len(g.nodes) > maxTests {
		// The parser counts the tests: this is its backstop.
		return nil, tooComplex(0, hintTests, "more than %d tests", maxTests)
	}
	switch p := p.(type) {
	case predConst:
		if p {
			return t, nil
		}
		return f, nil
	case *predNot:
		return g.build(p.x, f, t)
	case *predAnd:
		b, err := g.build(p.b, t, f)
		if err != nil {
			return nil, err
		}
		return g.build(p.a, b, f)
	case *predOr:
		b, err := g.build(p.b, t, f)
		if err != nil {
			return nil, err
		}
		return g.build(p.a, t, b)
	case *predTest:
		return g.newNode(p, t, f), nil
	}
	panic("sockfilter: unknown predicate")
}

// order returns the nodes reachable from the root in an order in which
// every node comes before its successors, and each node's preferred
// fall-through successor follows it where it can.
func (g *graph) order() []*node {
	// A v6 node jumps into its tail, which falls through from one of its
	// other predecessors at best: visit the paths to v6 nodes last, so
	// that the tail is laid out after another way into it.
	const (
		unknown = iota
		no
		yes
	)
	toV6 := make([]uint8, len(g.nodes))
	var reach func(n *node) bool
	reach = func(n *node) bool {
		if n.terminal() {
			return false
		}
		if toV6[n.id] == unknown {
			toV6[n.id] = no
			if n.v6 || reach(n.jt) || reach(n.jf) {
				toV6[n.id] = yes
			}
		}
		return toV6[n.id] == yes
	}
	seen := make([]bool, len(g.nodes))
	post := make([]*node, 0, len(g.nodes))
	var visit func(n *node)
	visit = func(n *node) {
		seen[n.id] = true
		if !n.terminal() {
			first, last := n.jt, n.jf
			switch {
			case n.t != nil && n.t.op != cmpSet && n.jf.terminal() && !n.jt.terminal():
				first, last = n.jf, n.jt
			case !n.jt.terminal() && !n.jf.terminal() && reach(n.jt) && !reach(n.jf):
				// n.jt is laid out next: the paths from n.jf
				// are visited first.
				first, last = n.jf, n.jt
			}
			for _, c := range [2]*node{first, last} {
				if !seen[c.id] {
					visit(c)
				}
			}
		}
		post = append(post, n)
	}
	visit(g.root)
	slices.Reverse(post)
	return post
}

// regState is what the registers are known to hold.
type regState struct {
	r0    *val  // the canonical value in r0, or nil
	ihl   int32 // the nl whose 4*IHL is in r7, or -1
	len   bool  // r8 holds the frame length
	ctxR1 bool  // r1 still holds the context, as at the start
}

func meet(a, b regState) regState {
	if a.r0 != b.r0 {
		a.r0 = nil
	}
	if a.ihl != b.ihl {
		a.ihl = -1
	}
	a.len = a.len && b.len
	a.ctxR1 = a.ctxR1 && b.ctxR1
	return a
}

// emitter emits the instructions of a laid-out graph.
type emitter struct {
	// base is the offset that makes a legacy packet load relative to the
	// start of the frame: SKF_LL_OFF, or SKF_NET_OFF on raw IP links,
	// whose frames start with the network header (on a live raw IP
	// device both headers are there; under TestLink only the network
	// header is where the frame starts).
	base   int32
	raw    bool
	in     *interner // makes the values the emitter builds canonical
	insns  asm.Instructions
	st     regState
	usesR6 bool
	reject bool // something jumps to "reject" outside the graph's edges
	depth  int  // stack slots in use by arithmetic
	err    *Error

	cur      *node // the node being emitted
	offsetR0 bool  // r0 holds the offset of the transport header for cur's load
}

func label(n *node) string {
	switch {
	case n.terminal() && n.accept:
		return "accept"
	case n.terminal():
		return "reject"
	}
	return "n" + strconv.Itoa(n.id)
}

// emit appends ins; r1 no longer holds the context after them (they
// clobber it, or the next test may).
func (e *emitter) emit(ins ...asm.Instruction) {
	e.insns = append(e.insns, ins...)
	e.st.ctxR1 = false
	if len(e.insns) > maxInsns && e.err == nil {
		e.err = tooComplex(0, hintTests, "its program would have more than %d instructions", maxInsns)
	}
}

// emitGraph lays out and emits g: the tests in g.order(), then the
// reject block, then the accept block, so that the last test falls through
// to one of them and the reject block falls through to the accept block's
// exit (see rejectInsn).
func emitGraph(g *graph, link packet.LinkType) (asm.Instructions, *Error) {
	var order []*node
	hasAccept, hasReject := false, false
	for _, n := range g.order() {
		switch {
		case !n.terminal():
			order = append(order, n)
		case n.accept:
			hasAccept = true
		default:
			hasReject = true
		}
	}
	// in[n] is what the registers hold on every edge into n from a test,
	// inV6[n] on every edge from a v6 node.
	in := make(map[*node]regState)
	has := make(map[*node]bool)
	inV6 := make(map[*node]regState)
	hasV6 := make(map[*node]bool)
	alias := make(map[string]string) // labels of tails with no r7 prologue
	e := &emitter{base: skb.LLOff, in: g.in}
	if link == packet.LinkRawIP {
		e.base, e.raw = skb.NetOff, true
	}
	fallAccept := false // the last test falls through to the accept block
	indeg := make(map[*node]int)
	for _, n := range order {
		indeg[n.jt]++
		if n.jf != n.jt {
			indeg[n.jf]++
		}
	}
	folded := make(map[*node]bool)  // v6 nodes emitted with the tests into them
	inChain := make(map[*node]bool) // those tests
	for i, n := range order {
		start := len(e.insns)
		next := g.reject
		switch {
		case i+1 < len(order):
			next = order[i+1]
		case !hasReject && !e.reject:
			next = g.accept
			fallAccept = true
		}
		e.st = regState{ihl: -1, ctxR1: n == g.root}
		if has[n] {
			e.st = in[n]
		}
		tail := -1 // where the v6 nodes jump into n, if not at its start
		if k := foldV6(order[i:], g.reject, indeg, in, has, hasV6); k > 0 {
			// The k tests from n on go into the tail of the v6 node
			// after them with r7 set before the first; the last's
			// false edge falls into the node after the v6 node,
			// which rejects whatever it loaded (see foldV6).
			e.emit(asm.Mov.Imm(asm.R7, 40))
			e.st.ihl = n.jt.nl6
			for _, p := range order[i : i+k] {
				inChain[p] = true
			}
			folded[n.jt] = true
		}
		fold := inChain[n]
		switch {
		case fold:
			e.cur = n
			if n.jf == g.reject {
				next = g.reject
			}
			e.test(n, next)
			for j := start; j < len(e.insns); j++ {
				if e.insns[j].Target == label(n.jt) {
					e.insns[j].Target = tailLabel(n.jt.jt)
				}
			}
		case folded[n]:
			e.st.ihl = n.nl6
		case n.v6 && n.jt.idxR0 != nil:
			e.usesR6 = true // the tail loads
			e.emit(asm.Mov.Imm(asm.R0, 40), asm.Goto(tailLabel(n.jt)))
			e.st.r0 = nil
		case n.v6:
			e.usesR6 = true // the tail loads
			e.emit(asm.Mov.Imm(asm.R7, 40))
			e.st.ihl = n.nl6
			if s := n.jt; s != next || has[s] && in[s].ihl != n.nl6 {
				e.emit(asm.Goto(tailLabel(s)))
			}
		case hasV6[n] && !has[n]:
			e.st = inV6[n]
			e.offsetR0 = n.idxR0 != nil
		case hasV6[n] && n.idxR0 != nil:
			// The v6 nodes have put 40 in r0: put 4*IHL there.
			nl := n.idxR0.nl
			if e.st.ihl == nl {
				e.emit(asm.Mov.Reg(asm.R0, asm.R7))
			} else {
				e.ihlR0(nl)
			}
			e.st = meet(e.st, inV6[n])
			e.st.r0 = nil
			e.offsetR0 = true
			tail = len(e.insns)
		case hasV6[n] && e.st.ihl == inV6[n].ihl:
			e.st = meet(e.st, inV6[n])
		case hasV6[n]:
			// The tests get here with r7 unset: set it, where the v6
			// nodes, which have set it, do not go.
			e.ihl(inV6[n].ihl)
			e.st = meet(e.st, inV6[n])
			tail = len(e.insns)
		}
		if !n.v6 && !fold {
			e.cur = n
			e.test(n, next)
			e.offsetR0 = false
		}
		if e.err != nil {
			return nil, e.err
		}
		if hasV6[n] {
			switch {
			case tail < 0:
				alias[tailLabel(n)] = label(n)
			case tail == len(e.insns):
				return nil, &Error{Msg: "internal error: a shared tail emits no code; please report the expression"}
			default:
				e.insns[tail] = e.insns[tail].WithLabel(tailLabel(n))
			}
		}
		if len(e.insns) > start {
			e.insns[start] = e.insns[start].WithLabel(label(n))
		}
		for _, s := range []*node{n.jt, n.jf} {
			switch {
			case n.v6 && hasV6[s]:
				inV6[s] = meet(inV6[s], e.st)
			case n.v6:
				inV6[s], hasV6[s] = e.st, true
			case has[s]:
				in[s] = meet(in[s], e.st)
			default:
				in[s], has[s] = e.st, true
			}
		}
	}
	for i := range e.insns {
		if l, ok := alias[e.insns[i].Target]; ok {
			e.insns[i].Target = l
		}
	}
	switch {
	case fallAccept:
		e.emit(asm.Mov.Imm(asm.R0, -1).WithLabel("accept"), asm.Exit())
		if e.reject {
			e.emit(asm.Mov.Imm(asm.R0, 0).WithLabel("reject"), asm.Exit())
		}
	default:
		if hasReject || e.reject {
			if e.usesR6 && hasAccept {
				e.emit(rejectInsn().WithLabel("reject"))
			} else {
				e.emit(asm.Mov.Imm(asm.R0, 0).WithLabel("reject"), asm.Exit())
			}
		}
		if hasAccept {
			e.emit(asm.Mov.Imm(asm.R0, -1).WithLabel("accept"), asm.Exit())
		}
	}
	insns := crossJump(e.insns)
	if e.usesR6 {
		insns = append(asm.Instructions{asm.Mov.Reg(asm.R6, asm.R1)}, insns...)
	}
	// Keep only the labels something refers to.
	used := make(map[string]bool)
	for _, ins := range insns {
		if ins.Target != "" {
			used[ins.Target] = true
		}
	}
	for i := range insns {
		if insns[i].Label != "" && !used[insns[i].Label] {
			insns[i].Label = ""
		}
	}
	return insns, nil
}

// foldV6 returns k > 0 if the first k nodes of order, a chain of tests
// (each the only way into the next by its false edge, the last's false
// edge rejecting) that are the only ways into the v6 node t after them,
// can be emitted with t: `r7 = 40`, then the tests, whose true edges go
// straight into t's tail. That saves t's `goto`, when the last test's
// false edge can fall into n, the node after t: n compares r0, which
// already holds what it tests on every other way in, for equality with a
// constant greater than any value of the last test's load, and rejects
// otherwise.
func foldV6(order []*node, reject *node, indeg map[*node]int, in map[*node]regState, has, hasV6 map[*node]bool) int {
	t := order[0].jt
	if !t.v6 || t.jt.idxR0 != nil {
		return 0
	}
	k := 0
	for k < len(order) && order[k] != t {
		p := order[k]
		if p.jt != t || k > 0 && (order[k-1].jf != p || indeg[p] != 1) ||
			p.t == nil || p.t.r != nil || p.lkey == nil {
			return 0
		}
		if l := p.t.v.a0(); l.base != baseLink || l.idx != nil {
			return 0
		}
		k++
	}
	if k == 0 || k+1 >= len(order) || indeg[t] != k || order[k-1].jf != reject {
		return 0
	}
	p, n := order[k-1], order[k+1]
	if n.t == nil || n.t.r != nil || n.lkey == nil {
		return 0
	}
	l := p.t.v.a0()
	maxv := uint32(0xffffffff)
	if l.size < 4 {
		maxv = uint32(1)<<(8*uint32(l.size)) - 1
	}
	maxv &= p.mask
	if n.t.op != cmpEq || n.jf != reject || n.t.k <= maxv || hasV6[n] ||
		!has[n] || in[n].r0 != n.lkey && in[n].r0 != n.vkey {
		return 0
	}
	return k
}

// crossJump shortens insns by cross-jumping: where the k instructions
// before a `goto L` are the same as the k instructions that fall through
// into L, they are replaced by a goto to the first of those (k+1
// instructions become 1). The same instructions from the same place on
// do the same thing, whatever the path into them.
func crossJump(insns asm.Instructions) asm.Instructions {
	// bare returns ins without its label; ok is false for an
	// instruction whose meaning depends on where it is (a jump by
	// offset).
	bare := func(ins asm.Instruction) (asm.Instruction, bool) {
		ins.Label = ""
		c := ins.OpCode.Class()
		if (c == asm.JumpClass || c == asm.Jump32Class) && ins.Target == "" &&
			ins.OpCode.JumpOp() != asm.ExitOp && ins.OpCode.JumpOp() != asm.CallOp {
			return ins, false
		}
		return ins, true
	}
	fresh := 0
	// Each round finds the first goto it can shorten and starts over, in
	// time linear in the program: maxCrossJumps rounds keep the whole
	// linear. (No test program has more than a few.)
	for changed, rounds := true, 0; changed && rounds < maxCrossJumps; rounds++ {
		changed = false
		at := make(map[string]int)
		for i, ins := range insns {
			if ins.Label != "" {
				at[ins.Label] = i
			}
		}
		for j, g := range insns {
			if g.OpCode.Class() != asm.JumpClass || g.OpCode.JumpOp() != asm.Ja || g.Target == "" {
				continue
			}
			p, ok := at[g.Target]
			if !ok {
				continue
			}
			k := 0
			for {
				a, b := j-k-1, p-k-1
				if a < 0 || b < 0 || a == p-1 || b == j || b >= a && b <= j || a >= b && a < p {
					break
				}
				x, okx := bare(insns[a])
				y, oky := bare(insns[b])
				if !okx || !oky || x != y || k > 0 && insns[a+1].Label != "" {
					break
				}
				k++
			}
			for k > 0 && insns[j-k+1].Label != "" {
				k-- // something jumps into the middle: keep from there
			}
			if k == 0 {
				continue
			}
			target := insns[p-k].Label
			if target == "" {
				fresh++
				target = "x" + strconv.Itoa(fresh)
				insns[p-k] = insns[p-k].WithLabel(target)
			}
			jump := asm.Goto(target)
			jump.Label = insns[j-k].Label
			out := append(asm.Instructions{}, insns[:j-k]...)
			out = append(out, jump)
			insns = append(out, insns[j+1:]...)
			changed = true
			break
		}
	}
	return insns
}

// maxCrossJumps bounds the gotos crossJump shortens.
const maxCrossJumps = 256

// tailLabel returns the label where v6 nodes jump into n.
func tailLabel(n *node) string { return label(n) + ".tail" }

// rejectInsn returns the reject block of a program that has legacy packet
// loads and an accept block after its reject block: one load at pastEnd,
// past the end of any frame. A legacy load (BPF_LD_ABS) that fails ends
// the program returning 0 (the kernel rewrites it into a call of
// bpf_skb_load_helper_8_no_cache and, on its error, `w0 ^= w0; exit`; see
// bpf_gen_ld_abs in net/core/filter.c and "Legacy BPF Packet access
// instructions" in Documentation/bpf/standardization/instruction-set.rst),
// so it is `r0 = 0; exit` in one instruction. The verifier does not know
// the load fails: it goes on into the accept block, which ends in the exit
// every program needs last.
func rejectInsn() asm.Instruction { return asm.LoadAbs(pastEnd, asm.Byte) }

// test emits node n: the value, then the branches, falling through to next
// where it can.
func (e *emitter) test(n *node, next *node) {
	t := n.t
	op, jt, jf := t.op, n.jt, n.jf
	var reg bool
	k := t.k
	switch {
	case t.r != nil:
		e.value(t.v)
		e.spill()
		e.value(t.r)
		e.emit(asm.Mov.Reg(asm.R1, asm.R0))
		e.unspill(asm.R0)
		e.st.r0 = n.vkey
		reg = true
	case n.lkey != nil:
		if n.inR0 {
			e.st.r0 = n.lkey
		}
		if e.st.r0 != n.lkey && e.st.r0 != n.vkey {
			e.load(t.v.a0())
			e.st.r0 = n.lkey
		}
		if e.st.r0 == n.lkey && n.mask != 0xffffffff {
			switch {
			case op == cmpSet:
				k &= n.mask
			case op == cmpEq && k == 0:
				op, k, jt, jf = cmpSet, n.mask, jf, jt
			default:
				e.emit(asm.And.Imm32(asm.R0, int32(n.mask)))
				e.st.r0 = n.vkey
			}
		}
	case t.v.kind == valLen:
		e.frameLen()
		e.branchOn(asm.R8, op, false, k, jt, jf, next)
		return
	default:
		e.value(t.v)
	}
	e.branch(op, reg, k, jt, jf, next)
}

// a0 returns the load of a masked load.
func (v *val) a0() *val {
	if v.kind == valALU {
		return v.a
	}
	return v
}

var jumpOps = [...]asm.JumpOp{cmpEq: asm.JEq, cmpGt: asm.JGT, cmpGe: asm.JGE, cmpSet: asm.JSet}
var invJumpOps = [...]asm.JumpOp{cmpEq: asm.JNE, cmpGt: asm.JLE, cmpGe: asm.JLT}

// branch emits `if r0 op k (or r1) goto jt else goto jf`, on 32 bits.
func (e *emitter) branch(op cmpOp, reg bool, k uint32, jt, jf, next *node) {
	e.branchOn(asm.R0, op, reg, k, jt, jf, next)
}

// branchOn emits `if dst op k (or r1) goto jt else goto jf`, on 32 bits.
func (e *emitter) branchOn(dst asm.Register, op cmpOp, reg bool, k uint32, jt, jf, next *node) {
	jump := func(jop asm.JumpOp, target *node) asm.Instruction {
		if reg {
			return jop.Reg32(dst, asm.R1, label(target))
		}
		return jop.Imm32(dst, int32(k), label(target))
	}
	switch {
	case jt == jf:
		if jt != next {
			e.emit(asm.Goto(label(jt)))
		}
	case jf == next:
		e.emit(jump(jumpOps[op], jt))
	case jt == next && op != cmpSet:
		e.emit(jump(invJumpOps[op], jf))
	default:
		e.emit(jump(jumpOps[op], jt))
		e.emit(asm.Goto(label(jf)))
	}
}

// load emits the load of the simple load v into r0.
func (e *emitter) load(v *val) {
	e.usesR6 = true
	off := int64(v.off)
	if v.base == baseIPv4 {
		off += int64(v.nl)
	}
	if off >= maxFrameOffset {
		// Past the end of any frame: the load fails, as in libpcap.
		e.emit(asm.LoadAbs(pastEnd, asm.Size(v.size)))
		e.st.r0 = nil
		return
	}
	switch {
	case v.base == baseIPv4 && e.offsetR0:
		e.emit(asm.LoadInd(asm.R0, e.base+int32(off), asm.Size(v.size)))
	case v.base == baseIPv4 && e.st.ihl != v.nl && e.cur != nil && e.cur.idxR0 == v:
		e.ihlR0(v.nl)
		e.emit(asm.LoadInd(asm.R0, e.base+int32(off), asm.Size(v.size)))
	case v.base == baseIPv4:
		e.ihl(v.nl)
		e.emit(asm.LoadInd(asm.R7, e.base+int32(off), asm.Size(v.size)))
	default:
		e.emit(asm.LoadAbs(e.base+int32(off), asm.Size(v.size)))
	}
	e.st.r0 = v
}

// maxFrameOffset bounds the link-layer offsets the program reads: the
// kernel takes SKF_LL_OFF + k for k below 1 MiB as link-layer relative,
// and no frame is that long, so farther loads fail as libpcap's would.
const maxFrameOffset = 1 << 20

// pastEnd is a positive offset past the end of any frame: a load there
// fails and the program returns 0.
const pastEnd = 0x7fff0000

// ihl makes r7 hold 4 * IHL of the IPv4 header at nl (libpcap's
// `ldxb 4*([nl]&0xf)`), leaving that byte in r0.
func (e *emitter) ihl(nl int32) {
	if e.st.ihl == nl {
		return
	}
	e.usesR6 = true
	e.emit(asm.LoadAbs(e.base+nl, asm.Byte),
		asm.Mov.Reg(asm.R7, asm.R0),
		asm.And.Imm32(asm.R7, 0xf),
		asm.LSh.Imm32(asm.R7, 2))
	e.st.ihl = nl
	e.st.r0 = e.in.canon(linkLoad(nl, 1))
}

// ihlR0 puts 4 * IHL of the IPv4 header at nl in r0 (3 instructions where
// ihl takes 4), for the one load relative to it that follows.
func (e *emitter) ihlR0(nl int32) {
	e.usesR6 = true
	e.emit(asm.LoadAbs(e.base+nl, asm.Byte),
		asm.And.Imm32(asm.R0, 0xf),
		asm.LSh.Imm32(asm.R0, 2))
	e.st.r0 = nil
}

// frameLen makes r8 hold the frame length from the link-layer header (see
// frameLenInsns). It reads the context from r1 where nothing has
// clobbered it yet (then the program needs no `r6 = r1` for it), else
// from r6.
func (e *emitter) frameLen() {
	if e.st.len {
		return
	}
	ctx, usesR6 := asm.R6, true
	if e.st.ctxR1 {
		ctx, usesR6 = asm.R1, false
	}
	e.usesR6 = e.usesR6 || usesR6
	e.emit(frameLenInsns(asm.R8, ctx, e.raw)...)
	e.st.len = true
	e.st.r0 = nil
}

// value emits the computation of v into r0, on 32 bits.
func (e *emitter) value(v *val) {
	if e.st.r0 == v {
		return
	}
	switch v.kind {
	case valConst:
		e.emit(asm.Mov.Imm32(asm.R0, int32(v.k)))
	case valLen:
		e.frameLen()
		e.emit(asm.Mov.Reg32(asm.R0, asm.R8))
	case valLoad:
		if v.idx == nil {
			e.load(v)
			return
		}
		e.indexed(v)
	case valNeg:
		e.value(v.a)
		e.emit(asm.Negate32(asm.R0))
	case valALU:
		e.value(v.a)
		if v.b.kind == valConst {
			e.emit(aluOps[v.op].Imm32(asm.R0, int32(v.b.k)))
			break
		}
		e.spill()
		e.value(v.b)
		e.emit(asm.Mov.Reg(asm.R1, asm.R0))
		e.unspill(asm.R0)
		if v.op == aluDiv || v.op == aluMod {
			// Classic BPF ends the program returning 0 on division
			// by zero; eBPF would go on with 0 or the dividend.
			e.reject = true
			e.emit(asm.JEq.Imm32(asm.R1, 0, "reject"))
		}
		e.emit(aluOps[v.op].Reg32(asm.R0, asm.R1))
	}
	e.st.r0 = v
}

var aluOps = [...]asm.ALUOp{
	aluAdd: asm.Add, aluSub: asm.Sub, aluMul: asm.Mul, aluDiv: asm.Div, aluMod: asm.Mod,
	aluAnd: asm.And, aluOr: asm.Or, aluXor: asm.Xor, aluLsh: asm.LSh, aluRsh: asm.RSh,
}

// indexed emits a load at a variable index.
func (e *emitter) indexed(v *val) {
	e.value(v.idx)
	off := int64(v.off)
	limit := int64(maxFrameOffset-1) - off
	if v.base == baseIPv4 {
		off += int64(v.nl)
		limit -= int64(v.nl) + 60
		if e.st.ihl != v.nl {
			e.emit(asm.Mov.Reg(asm.R9, asm.R0))
			e.ihl(v.nl)
			e.emit(asm.Mov.Reg(asm.R0, asm.R9))
		}
	}
	e.reject = true
	if limit < 0 {
		e.emit(asm.Goto("reject"))
		limit = 0
	}
	// An index that would reach past 1 MiB is past the end of the frame.
	e.emit(asm.JGT.Imm32(asm.R0, int32(limit), "reject"))
	if v.base == baseIPv4 {
		e.emit(asm.Add.Reg(asm.R0, asm.R7))
	}
	e.usesR6 = true
	e.emit(asm.LoadInd(asm.R0, e.base+int32(off), asm.Size(v.size)))
}

// spill saves r0 in the next stack slot.
func (e *emitter) spill() {
	e.depth++
	if e.depth > maxSpill {
		if e.err == nil {
			e.err = tooComplex(0, hintArith, "arithmetic nested more than %d deep", maxSpill)
		}
		e.depth = maxSpill
	}
	e.emit(asm.StoreMem(asm.RFP, int16(-8-8*e.depth), asm.R0, asm.Word))
}

// unspill loads the last spilled value into dst and frees its slot.
func (e *emitter) unspill(dst asm.Register) {
	e.emit(asm.LoadMem(dst, asm.RFP, int16(-8-8*e.depth), asm.Word))
	e.depth--
}
