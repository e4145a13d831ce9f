package pcapfilter

import (
	"slices"
	"strconv"

	"github.com/purebpf/purebpf/asm"
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
//	r8       the frame length from the link-layer header (skb->len), for `len`
//	r1, r9   temporaries of arithmetic; r9 is protochain's offset X
//	         (protochain.go) and the Geneve header's (geneve.go)
//	fp-16... spilled operands of arithmetic, and protochain's saved byte
//	fp-512.. the Geneve slots, six words up to fp-472 (geneveSlot)
//
// Packet loads are LD_ABS/LD_IND relative to the link-layer header
// (SKF_LL_OFF), so the program reads the same bytes on a packet socket,
// where skb->data is the link-layer header, and under BPF_PROG_TEST_RUN,
// where it is the network header. A load past the end of the frame ends
// the program returning 0, as classic BPF does; the reject block is
// `r0 = 0; exit`, not such a load, which would cost a helper call on
// every frame rejected.
//
// emit.go lays the graph out and emits it (emitGraph): the tests in the
// order of graph.order, each falling through to a successor where it can,
// then the reject block, then the accept block (`r0 = -1; exit`);
// crossJump (crossjump.go) then replaces instructions that repeat those
// before a jump target with a jump to it. This file has the graph and the
// emission of one test (emitter.test) and of its value (emitter.value).

// maxSpill is the deepest nesting of arithmetic operands kept on the stack
// (the Geneve slots are below them: geneveSlot).
const maxSpill = 56

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
	// pkey is the value as pullup tells values apart: vkey, or for a
	// relation's test (predTest.rel) a key of its own, as libpcap's value
	// numbers tell a relation's loads from the primitives' loads of the
	// same bytes, so that its and_pullup and or_pullup do not move the
	// one's tests ahead of the other's (`ip[9] = 47 and not (src
	// 192.168.1.1 and tcp)` keeps the TCP test after the address's).
	pkey *val

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
	relKeys              map[*val]*val      // the pullup keys of relations' values (node.pkey)
	// noPullup is set by a protochain test: libpcap does not optimise
	// an expression with protochain, and pullup is the pass that changes
	// which truncated frames are accepted, as libpcap's optimiser does.
	noPullup bool
	// slots is the number of Geneve slots the tests read, from the
	// first: the program zeroes them first.
	slots int
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
	c := &predTest{v: g.in.canon(t.v), op: t.op, k: t.k, r: g.in.canon(t.r), rel: t.rel}
	n.t = c
	if c.v.kind == valChain {
		g.noPullup = true
	}
	g.slots = max(g.slots, c.v.slotsRead(), c.r.slotsRead())
	n.key = testKey{v: c.v, op: c.op, k: c.k, r: c.r}
	n.vkey, n.lkey, n.setKey, n.mask = c.v, nil, nil, 0xffffffff
	n.pkey = c.v
	if c.rel {
		if g.relKeys == nil {
			g.relKeys = make(map[*val]*val)
		}
		k, ok := g.relKeys[c.v]
		if !ok {
			k = &val{kind: c.v.kind} // a distinct pointer, never a value of a test
			g.relKeys[c.v] = k
		}
		n.pkey = k
	}
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
		if p.v.kind == valGeneve {
			// Always true, and its offsets must be computed: no edge
			// goes from it to where its true edge goes (thread would
			// skip it).
			return g.newNode(p, t, g.reject), nil
		}
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
	base    int32
	lenAdd  int32     // bytes of the frame before skb->data not in skb->len (frameForm)
	liveHdr int32     // a live cooked header's length: no packet load below it
	in      *interner // makes the values the emitter builds canonical
	insns   asm.Instructions
	st      regState
	usesR6  bool
	reject  bool // something jumps to "reject" outside the graph's edges
	depth   int  // stack slots in use by arithmetic
	err     *Error

	chains   int   // protochain walks emitted, for their labels
	cur      *node // the node being emitted
	offsetR0 bool  // r0 holds the offset of the transport header for cur's load
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

// test emits node n: the value, then the branches, falling through to next
// where it can.
func (e *emitter) test(n *node, next *node) {
	t := n.t
	op, jt, jf := t.op, n.jt, n.jf
	var reg bool
	k := t.k
	switch {
	case t.r != nil && t.r.kind == valSlot:
		e.value(t.v)
		e.emit(asm.LoadMem(asm.R1, asm.RFP, geneveSlot(t.r.k), asm.Word))
		e.st.r0 = n.vkey
		reg = true
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
	case t.v.kind == valChain:
		e.protochainTest(n, next)
		return
	case t.v.kind == valGeneve:
		e.geneveTest(n, next)
		return
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
	if v.base == baseSkb {
		// A field of the socket buffer: the live cooked header's.
		e.emit(asm.LoadMem(asm.R0, asm.R6, int16(v.off), asm.Word))
		if v.off == int32(skb.Protocol) {
			e.emit(asm.ToBE(asm.R0, 16))
		}
		e.st.r0 = v
		return
	}
	if off < int64(e.liveHdr) && e.err == nil {
		e.err = &Error{Msg: "internal error: a load in the cooked header at offset " + strconv.FormatInt(off, 10) + " for the live socket, which does not have it"}
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

// frameLen makes r8 hold the frame length from the link-layer header:
// skb->len, which on a packet socket counts from the link-layer header
// (see Compile's documentation on `len`). It reads the context from r1
// where nothing has clobbered it yet (then the program needs no `r6 = r1`
// for it), else from r6. r8 survives the legacy packet loads' calls.
func (e *emitter) frameLen() {
	if e.st.len {
		return
	}
	ctx, usesR6 := asm.R6, true
	if e.st.ctxR1 {
		ctx, usesR6 = asm.R1, false
	}
	e.usesR6 = e.usesR6 || usesR6
	r0 := e.st.r0
	e.emit(skb.Len.Load(asm.R8, ctx))
	if e.lenAdd != 0 {
		e.emit(asm.Add.Imm32(asm.R8, e.lenAdd))
	}
	e.st.len = true
	e.st.r0 = r0 // the load leaves r0 alone
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
	case valCtx:
		ctx := asm.R6
		if e.st.ctxR1 {
			ctx = asm.R1
		} else {
			e.usesR6 = true
		}
		e.emit(skb.Field(v.off).Load(asm.R0, ctx))
	case valLoad:
		if v.idx == nil {
			e.load(v)
			return
		}
		e.indexed(v)
	case valSlot:
		e.emit(asm.LoadMem(asm.R0, asm.RFP, geneveSlot(v.k), asm.Word))
	case valChain, valGeneve:
		if e.err == nil {
			e.err = &Error{Msg: "internal error: protochain inside arithmetic; please report the expression"}
		}
	case valNeg:
		e.value(v.a)
		e.emit(asm.Negate32(asm.R0))
	case valALU:
		e.value(v.a)
		if v.b.kind == valConst {
			e.emit(aluOps[v.op].Imm32(asm.R0, int32(v.b.k)))
			break
		}
		if v.b.kind == valSlot {
			e.emit(asm.LoadMem(asm.R1, asm.RFP, geneveSlot(v.b.k), asm.Word),
				aluOps[v.op].Reg32(asm.R0, asm.R1))
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
	if !v.idx.slotBounded() || off < 0 || off >= 1<<16 {
		// (A Geneve offset needs no check: it is less than the frame's
		// length plus 300.)
		e.reject = true
		if limit < 0 {
			e.emit(asm.Goto("reject"))
			limit = 0
		}
		// An index that would reach past 1 MiB is past the end of the
		// frame.
		e.emit(asm.JGT.Imm32(asm.R0, int32(limit), "reject"))
	}
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
