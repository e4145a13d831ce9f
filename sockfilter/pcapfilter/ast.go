package pcapfilter

// The parser turns an expression into a tree of predicates (pred) over
// values (val), with libpcap's meaning already spelled out: `tcp port 80`
// becomes the ethertype, protocol, fragment and port tests libpcap's
// gencode.c would generate, in the same order, so that loads past the end
// of a truncated frame happen on the same paths.

// pred is a boolean predicate: *predTest, *predAnd, *predOr, *predNot or
// predConst.
type pred interface{ isPred() }

type (
	predAnd struct {
		a, b pred
		n    int // tests in the tree
	}
	predOr struct {
		a, b pred
		n    int
	}
	predNot struct {
		x pred
		n int
	}
	predConst bool
	// predTest compares a value with a constant (r == nil) or another
	// value, unsigned on 32 bits, as classic BPF's jumps do.
	predTest struct {
		v  *val
		op cmpOp
		k  uint32
		r  *val
		// rel marks the comparison of a relation that reads the packet
		// (`ether[12:2] > 1500`): libpcap's jump threading tells its
		// loads from those of the primitives (see newThreader).
		rel bool
	}
)

func (*predAnd) isPred()  {}
func (*predOr) isPred()   {}
func (*predNot) isPred()  {}
func (predConst) isPred() {}
func (*predTest) isPred() {}

// cmpOp is a comparison of classic BPF's jump instructions.
type cmpOp uint8

const (
	cmpEq  cmpOp = iota // v == k
	cmpGt               // v > k
	cmpGe               // v >= k
	cmpSet              // v & k != 0
)

// and returns the conjunction of ps, evaluated left to right; nil entries
// are skipped.
func and(ps ...pred) pred {
	var r pred
	for _, p := range ps {
		switch {
		case p == nil:
		case r == nil:
			r = p
		default:
			r = &predAnd{r, p, size(r) + size(p)}
		}
	}
	if r == nil {
		return predConst(true)
	}
	return r
}

// or returns the disjunction of ps, evaluated left to right.
func or(ps ...pred) pred {
	var r pred
	for _, p := range ps {
		if r == nil {
			r = p
		} else {
			r = &predOr{r, p, size(r) + size(p)}
		}
	}
	if r == nil {
		return predConst(false)
	}
	return r
}

func not(p pred) pred { return &predNot{p, size(p)} }

// size returns the number of tests in the tree p, each of which the graph
// builder makes a node.
func size(p pred) int {
	switch p := p.(type) {
	case *predAnd:
		return p.n
	case *predOr:
		return p.n
	case *predNot:
		return p.n
	case *predTest:
		return 1
	}
	return 0
}

// test returns the predicate v op k.
func test(v *val, op cmpOp, k uint32) pred { return &predTest{v: v, op: op, k: k} }

// valKind is the kind of a val.
type valKind uint8

const (
	valConst  valKind = iota // k
	valLoad                  // the size bytes at base + off (+ idx)
	valLen                   // the frame length from the link-layer header
	valALU                   // a alu b
	valNeg                   // -a
	valGeneve                // always 0: computes the offsets inside Geneve into the stack slots (geneve.go)
	valSlot                  // the Geneve stack slot k (geneve.go)
	valChain                 // the protocol where protochain's walk of the IP (size 4 or 6) header at nl looking for k stops (protochain.go)
	valCtx                   // the 32-bit field of struct __sk_buff at off (inbound, ifindex)
)

// loadBase says what the offset of a load is relative to.
type loadBase uint8

const (
	baseLink loadBase = iota // the first byte of the link-layer header
	baseIPv4                 // the IPv4 payload: the IPv4 header at nl plus 4*IHL
	baseSkb                  // a field of struct __sk_buff at off (see skbLoad)
)

// aluOp is an arithmetic operator of the expression grammar.
type aluOp uint8

const (
	aluAdd aluOp = iota
	aluSub
	aluMul
	aluDiv
	aluMod
	aluAnd
	aluOr
	aluXor
	aluLsh
	aluRsh
)

// val is a 32-bit unsigned value computed from the frame.
type val struct {
	kind valKind
	k    uint32 // valConst

	base loadBase // valLoad
	nl   int32    // valLoad from baseIPv4: offset of the IPv4 header
	off  int32    // valLoad: constant offset
	idx  *val     // valLoad: variable index, or nil
	size uint8    // valLoad: 1, 2 or 4

	op   aluOp // valALU
	a, b *val  // valALU, valNeg (a)
}

func constVal(k uint32) *val { return &val{kind: valConst, k: k} }

// linkLoad returns the size bytes at off from the link-layer header.
func linkLoad(off int32, size uint8) *val {
	return &val{kind: valLoad, base: baseLink, off: off, size: size}
}

// ipv4PayloadLoad returns the size bytes at off in the payload of the IPv4
// header at nl.
func ipv4PayloadLoad(nl, off int32, size uint8) *val {
	return &val{kind: valLoad, base: baseIPv4, nl: nl, off: off, size: size}
}

func aluVal(op aluOp, a, b *val) *val { return &val{kind: valALU, op: op, a: a, b: b} }

// isSimpleLoad reports whether v is a load at a constant offset.
func (v *val) isSimpleLoad() bool { return v.kind == valLoad && v.idx == nil }

// maskedLoad splits v into a simple load and a mask when v is one, or a
// simple load ANDed with a constant.
func (v *val) maskedLoad() (load *val, mask uint32, ok bool) {
	if v.isSimpleLoad() {
		return v, 0xffffffff, true
	}
	if v.kind == valALU && v.op == aluAnd && v.a.isSimpleLoad() && v.b.kind == valConst {
		return v.a, v.b.k, true
	}
	return nil, 0, false
}

// interner gives each distinct value one *val, so that values compare by
// pointer: two canonical values are equal exactly when their pointers are.
// The graph builder makes every value it meets canonical (canon), in time
// linear in the size of the predicate tree, and the optimiser and the
// emitter then key their tables by pointer, not by a text of the value.
type interner struct {
	shapes map[val]*val  // a value with canonical operands → its canonical value
	memo   map[*val]*val // a value already seen → its canonical value
}

func newInterner() *interner {
	return &interner{shapes: make(map[val]*val), memo: make(map[*val]*val)}
}

// canon returns the canonical value equal to v (nil for nil).
func (in *interner) canon(v *val) *val {
	if v == nil {
		return nil
	}
	if c, ok := in.memo[v]; ok {
		return c
	}
	s := *v
	s.idx, s.a, s.b = in.canon(v.idx), in.canon(v.a), in.canon(v.b)
	c, ok := in.shapes[s]
	if !ok {
		c = &s
		in.shapes[s] = c
		in.memo[c] = c
	}
	in.memo[v] = c
	return c
}

// testKey identifies a test with canonical values: equal keys mean equal
// outcomes.
type testKey struct {
	v  *val
	op cmpOp
	k  uint32
	r  *val
}

// eval returns the outcome of op on x and k.
func (op cmpOp) eval(x, k uint32) bool {
	switch op {
	case cmpEq:
		return x == k
	case cmpGt:
		return x > k
	case cmpGe:
		return x >= k
	default:
		return x&k != 0
	}
}
