package pcapfilter

import (
	"strconv"

	"github.com/purebpf/purebpf/asm"
)

// emitGraph lays out and emits g, in four steps:
//
//   - layout: the tests in g.order(), each falling through to a successor
//     where it can, then the reject block, then the accept block, so that
//     the last test falls through to one of them;
//   - node emission: each node's code, with what the registers hold on
//     every way into it (layout.node);
//   - terminals: the reject and accept blocks (layout.terminals);
//   - cross-jumping and clean-up: crossJump, the `r6 = r1` the packet
//     loads need, and the labels nothing jumps to dropped (finish).
func emitGraph(g *graph, form frameForm) (asm.Instructions, *Error) {
	e := &emitter{base: form.base, lenAdd: form.lenAdd, liveHdr: form.liveHdr, in: g.in}
	l := newLayout(g)
	e.emit(slotPrologue(g.slots)...)
	for i, n := range l.order {
		if err := l.node(e, i, n); err != nil {
			return nil, err
		}
	}
	for i := range e.insns {
		e.insns[i].Target = l.resolve(e.insns[i].Target)
	}
	l.terminals(e)
	return finish(e.insns, e.usesR6), nil
}

// layout is the state of emitGraph: the tests in their order, and what
// the registers hold on the ways into each.
type layout struct {
	g                    *graph
	order                []*node // the tests, in the order they are laid out
	hasAccept, hasReject bool    // a test goes to the accept, the reject block
	fallAccept           bool    // the last test falls through to the accept block

	// in[n] is what the registers hold on every edge into n from a test
	// laid out so far, inV6[n] on every edge from a v6 node.
	in, inV6   map[*node]regState
	has, hasV6 map[*node]bool
	alias      map[string]string // labels of tails with no r7 prologue
	indeg      map[*node]int     // the edges into a node from tests
	folded     map[*node]bool    // v6 nodes emitted with the tests into them
	inChain    map[*node]bool    // those tests
}

func newLayout(g *graph) *layout {
	l := &layout{
		g:  g,
		in: make(map[*node]regState), inV6: make(map[*node]regState),
		has: make(map[*node]bool), hasV6: make(map[*node]bool),
		alias: make(map[string]string), indeg: make(map[*node]int),
		folded: make(map[*node]bool), inChain: make(map[*node]bool),
	}
	for _, n := range g.order() {
		switch {
		case !n.terminal():
			l.order = append(l.order, n)
		case n.accept:
			l.hasAccept = true
		default:
			l.hasReject = true
		}
	}
	for _, n := range l.order {
		l.indeg[n.jt]++
		if n.jf != n.jt {
			l.indeg[n.jf]++
		}
	}
	return l
}

// node emits n, the i-th test of the order: what the ways into it need
// set up (entry), its test, the label of its tail if v6 nodes jump into
// it, and what the registers hold on its edges out.
func (l *layout) node(e *emitter, i int, n *node) *Error {
	start := len(e.insns)
	next := l.g.reject
	switch {
	case i+1 < len(l.order):
		next = l.order[i+1]
	case !l.hasReject && !e.reject:
		next = l.g.accept
		l.fallAccept = true
	}
	e.st = regState{ihl: -1, ctxR1: n == l.g.root}
	if l.has[n] {
		e.st = l.in[n]
	}
	tail := l.entry(e, i, n, next, start)
	if !n.v6 && !l.inChain[n] {
		e.cur = n
		e.test(n, next)
		e.offsetR0 = false
	}
	if e.err != nil {
		return e.err
	}
	if l.hasV6[n] {
		switch {
		case tail < 0:
			l.alias[tailLabel(n)] = label(n)
		case tail == len(e.insns):
			return &Error{Msg: "internal error: a shared tail emits no code; please report the expression"}
		default:
			e.insns[tail] = e.insns[tail].WithLabel(tailLabel(n))
		}
	}
	switch {
	case len(e.insns) > start:
		e.insns[start] = e.insns[start].WithLabel(label(n))
	case n.t != nil && n.jt == n.jf:
		// A test whose value is in r0 (mergeTails) and whose two
		// edges go to the node laid out next (dropImplied can leave
		// one) has no code: the ways into it go to next.
		l.alias[label(n)] = label(next)
	}
	l.out(e, n)
	return nil
}

// resolve returns the label that code jumps to for target: target's
// alias, its alias's, and so on (a chain of tests with no code ends at a
// node with some, or a terminal, laid out after them).
func (l *layout) resolve(target string) string {
	for range len(l.alias) + 1 {
		t, ok := l.alias[target]
		if !ok {
			break
		}
		target = t
	}
	return target
}

// entry emits what comes before n's test, which starts at start: r7 for
// a chain of tests folded into a v6 node's tail (foldV6), the test itself
// if n is in such a chain, the code of a v6 node, and where v6 nodes jump
// into n, the r7 (or r0) the ways in from tests need. It returns where the
// v6 nodes' way in starts, or -1 if at n's start.
func (l *layout) entry(e *emitter, i int, n, next *node, start int) (tail int) {
	tail = -1
	if k := foldV6(l.order[i:], l.g.reject, l.indeg, l.in, l.has, l.hasV6); k > 0 {
		// The k tests from n on go into the tail of the v6 node after
		// them with r7 set before the first; the last's false edge
		// falls into the node after the v6 node, which rejects whatever
		// it loaded (see foldV6).
		e.emit(asm.Mov.Imm(asm.R7, 40))
		e.st.ihl = n.jt.nl6
		for _, p := range l.order[i : i+k] {
			l.inChain[p] = true
		}
		l.folded[n.jt] = true
	}
	in, has, inV6, hasV6 := l.in, l.has, l.inV6, l.hasV6
	switch {
	case l.inChain[n]:
		e.cur = n
		if n.jf == l.g.reject {
			next = l.g.reject
		}
		e.test(n, next)
		for j := start; j < len(e.insns); j++ {
			if e.insns[j].Target == label(n.jt) {
				e.insns[j].Target = tailLabel(n.jt.jt)
			}
		}
	case l.folded[n]:
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
		// The tests get here with r7 unset: set it, where the v6 nodes,
		// which have set it, do not go.
		e.ihl(inV6[n].ihl)
		e.st = meet(e.st, inV6[n])
		tail = len(e.insns)
	}
	return tail
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

// out records what the registers hold on n's edges out.
func (l *layout) out(e *emitter, n *node) {
	for _, s := range [2]*node{n.jt, n.jf} {
		switch {
		case n.v6 && l.hasV6[s]:
			l.inV6[s] = meet(l.inV6[s], e.st)
		case n.v6:
			l.inV6[s], l.hasV6[s] = e.st, true
		case l.has[s]:
			l.in[s] = meet(l.in[s], e.st)
		default:
			l.in[s], l.has[s] = e.st, true
		}
	}
}

// terminals emits the reject and accept blocks the tests go to, each
// `r0 = K; exit`: the accept block last, after the reject block, unless
// the last test falls through to the accept block.
func (l *layout) terminals(e *emitter) {
	switch {
	case l.fallAccept:
		e.emit(asm.Mov.Imm(asm.R0, -1).WithLabel("accept"), asm.Exit())
		if e.reject {
			e.emit(asm.Mov.Imm(asm.R0, 0).WithLabel("reject"), asm.Exit())
		}
	default:
		if l.hasReject || e.reject {
			// Not a failing load, one instruction in place of two: the
			// kernel makes that a call of a load helper, about as dear
			// as the rest of a short filter, on every frame rejected.
			e.emit(asm.Mov.Imm(asm.R0, 0).WithLabel("reject"), asm.Exit())
		}
		if l.hasAccept {
			e.emit(asm.Mov.Imm(asm.R0, -1).WithLabel("accept"), asm.Exit())
		}
	}
}

// finish cross-jumps insns, puts the context in r6 first if the program
// has packet loads, and drops the labels nothing refers to.
func finish(insns asm.Instructions, usesR6 bool) asm.Instructions {
	insns = crossJump(insns)
	if usesR6 {
		insns = append(asm.Instructions{asm.Mov.Reg(asm.R6, asm.R1)}, insns...)
	}
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
	return insns
}

// tailLabel returns the label where v6 nodes jump into n.
func tailLabel(n *node) string { return label(n) + ".tail" }

// label returns the label of n's code.
func label(n *node) string {
	switch {
	case n.terminal() && n.accept:
		return "accept"
	case n.terminal():
		return "reject"
	}
	return "n" + strconv.Itoa(n.id)
}
