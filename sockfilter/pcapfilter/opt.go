package pcapfilter

// The optimiser does what libpcap's optimizer.c does to the same graphs,
// so that the programs are as short and read the frame as libpcap's:
//
//   - jump threading: an edge into a test whose outcome is known on that
//     edge (the same test, or a test of a value known from an equality,
//     was passed on every path to it) goes straight to the successor of
//     that outcome. The skipped test's loads were all done before, so no
//     load past the end of a frame is added or removed.
//   - tests whose two successors are the same are removed.
//   - equal tests with equal successors are merged.
//
// After it, passes that do what classic BPF cannot (compile runs them in
// this order): dropImplied, fuseFragment (protocol and fragment offset in
// one masked word), shareTails (IPv6 jumps into the IPv4 transport tests
// with r7 = 40), mergeTails, widenLoads (one wider load for two adjacent
// equality tests), markIndexR0.

// optimize threads jumps, removes useless tests and merges equal ones
// until nothing changes, and then pulls tests up (pullup) and starts over,
// until nothing changes. A round costs time linear in the size of the
// graph; rounds stop after maxRounds, or once they have visited
// roundBudget(n) nodes for a graph of n nodes, which keeps a huge graph's
// optimisation linear in its size: its program is then correct, but
// perhaps longer than it could be.
func (g *graph) optimize() {
	t := newThreader(g)
	budget := roundBudget(len(g.nodes))
	for round := 0; round < maxRounds && budget > 0; round++ {
		budget -= len(g.nodes)
		changed := g.thread(t)
		if g.merge() {
			changed = true
		}
		if !changed && !g.pullup() {
			return
		}
	}
}

// maxRounds bounds the rounds of optimize. No expression of the test list
// takes more than 8.
const maxRounds = 100

// roundBudget returns the number of node visits optimize spends on a
// graph of n nodes: a graph of up to about 1,000 nodes gets its maxRounds.
func roundBudget(n int) int { return 64*n + 1<<16 }

// thread retargets every edge that passes a test decided on it.
//
// An edge is threaded past every test its facts decide, however far:
// that is what makes the `not IP` edge of a long chain of `port N` skip
// every later test of the ethertype, and it costs a walk per edge. The
// walks of a round take at most roundBudget(n) steps in all; past that,
// the round's remaining edges stop at the first test they reach.
func (g *graph) thread(t *threader) bool {
	order := g.order()
	steps := roundBudget(len(g.nodes))
	in := make([]*fact, len(g.nodes)) // the facts on every edge into a node so far
	has := make([]bool, len(g.nodes))
	changed := false
	follow := func(f *fact, n *node) *node {
		for ; !n.terminal() && steps > 0; steps-- {
			if n.jt == n.jf {
				n = n.jt
				continue
			}
			o, ok := decide(f, n)
			if !ok {
				break
			}
			if o {
				n = n.jt
			} else {
				n = n.jf
			}
		}
		return n
	}
	if r := follow(nil, g.root); r != g.root {
		g.root = r
		return true
	}
	for _, n := range order {
		if n.terminal() {
			continue
		}
		f := in[n.id]
		for _, outcome := range []bool{true, false} {
			ef := t.add(f, n, outcome)
			succ := &n.jf
			if outcome {
				succ = &n.jt
			}
			if s := follow(ef, *succ); s != *succ {
				*succ = s
				changed = true
			}
			if s := *succ; has[s.id] {
				in[s.id] = t.meet(in[s.id], ef)
			} else {
				in[s.id], has[s.id] = ef, true
			}
		}
	}
	return changed
}

// merge makes equal tests with equal successors one node.
func (g *graph) merge() bool {
	order := g.order()
	canon := make([]*node, len(g.nodes))
	type mergeKey struct {
		t      testKey
		jt, jf *node
	}
	byKey := make(map[mergeKey]*node)
	changed := false
	for i := len(order) - 1; i >= 0; i-- {
		n := order[i]
		if n.terminal() {
			continue
		}
		if c := canon[n.jt.id]; c != nil {
			n.jt, changed = c, true
		}
		if c := canon[n.jf.id]; c != nil {
			n.jf, changed = c, true
		}
		k := mergeKey{n.key, n.jt, n.jf}
		if m, ok := byKey[k]; ok {
			canon[n.id] = m
			continue
		}
		byKey[k] = n
	}
	if c := canon[g.root.id]; c != nil {
		g.root, changed = c, true
	}
	return changed
}

// preds returns the predecessors of every node reachable from the root,
// by node id, and the nodes in topological order.
func (g *graph) preds() ([][]*node, []*node) {
	order := g.order()
	in := make([][]*node, len(g.nodes))
	for _, n := range order {
		if n.terminal() {
			continue
		}
		in[n.jt.id] = append(in[n.jt.id], n)
		if n.jf != n.jt {
			in[n.jf.id] = append(in[n.jf.id], n)
		}
	}
	return in, order
}

// dominators returns a test of whether d dominates n (every path from
// the root to n passes d), for the nodes of order, which is topological
// with the root first, and whose predecessors are in. It computes the
// immediate dominators in one pass (Cooper, Harvey and Kennedy's
// algorithm; the graph is acyclic), then numbers the dominator tree in
// depth-first order, so that each test takes constant time.
func dominators(order []*node, in [][]*node) func(d, n *node) bool {
	idx := make(map[*node]int, len(order))
	for i, n := range order {
		idx[n] = i
	}
	idom := make([]int, len(order))
	intersect := func(a, b int) int {
		for a != b {
			for a > b {
				a = idom[a]
			}
			for b > a {
				b = idom[b]
			}
		}
		return a
	}
	for i := 1; i < len(order); i++ {
		d := -1
		for _, p := range in[order[i].id] {
			j := idx[p]
			if d < 0 {
				d = j
			} else {
				d = intersect(d, j)
			}
		}
		if d < 0 {
			d = 0
		}
		idom[i] = d
	}
	// Number the tree: n's descendants are numbered from pre[n] to
	// post[n].
	children := make([][]int, len(order))
	for i := 1; i < len(order); i++ {
		children[idom[i]] = append(children[idom[i]], i)
	}
	pre, post := make([]int, len(order)), make([]int, len(order))
	count := 0
	stack := []int{0}
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if i < 0 {
			post[^i] = count - 1
			continue
		}
		pre[i] = count
		count++
		stack = append(stack, ^i)
		stack = append(stack, children[i]...)
	}
	return func(d, n *node) bool {
		i, ok := idx[n]
		j, ok2 := idx[d]
		return ok && ok2 && pre[j] <= pre[i] && pre[i] <= post[j]
	}
}

// redirect makes every edge from preds into from, and the root if it is
// from, lead to to instead.
func (g *graph) redirect(preds []*node, from, to *node) {
	for _, p := range preds {
		if p.jt == from {
			p.jt = to
		}
		if p.jf == from {
			p.jf = to
		}
	}
	if g.root == from {
		g.root = to
	}
}

// r0After returns what r0 holds after n's code (see emitter.test), or nil
// if that is not a plain or masked load.
func (n *node) r0After() *val {
	switch {
	case n.inR0 || n.lkey == nil:
		return nil
	case n.mask == 0xffffffff || n.t.op == cmpSet || n.t.op == cmpEq && n.t.k == 0:
		return n.lkey
	}
	return n.vkey
}

// mergeTails merges tests that compare whatever r0 already holds in the
// same way, with the same successors, although they test different loads:
// libpcap's optimizer merges such blocks, whose code is the same jump.
// It runs last: the merged nodes' values differ by path, which the facts
// of threading cannot describe.
func (g *graph) mergeTails() {
	in, order := g.preds()
	canon := make(map[*node]*node)
	type tailKey struct {
		op      cmpOp
		k, mask uint32
		jt, jf  *node
	}
	byKey := make(map[tailKey]*node)
	for i := len(order) - 1; i >= 0; i-- {
		n := order[i]
		if n.terminal() {
			continue
		}
		if c, ok := canon[n.jt]; ok {
			n.jt = c
		}
		if c, ok := canon[n.jf]; ok {
			n.jf = c
		}
		if n.lkey == nil || len(in[n.id]) == 0 {
			continue
		}
		regOnly := true
		for _, p := range in[n.id] {
			if p.r0After() != n.lkey {
				regOnly = false
			}
		}
		if !regOnly {
			continue
		}
		k := tailKey{n.t.op, n.t.k, n.mask, n.jt, n.jf}
		if m, ok := byKey[k]; ok {
			canon[n] = m
			m.inR0 = true
			continue
		}
		byKey[k] = n
	}
}

// fuseFragment folds the IPv4 fragment test into the protocol tests before
// it: where every way into a test `half[o] & 0x1fff != 0` (a fragment
// other than the first) is the true outcome of a test `byte[o+3] == P`
// (the protocol), and a fragment goes where a frame of another protocol
// goes, the two tests are one, `(word[o] & 0x1fff00ff) == P`: the word
// holds the flags and fragment offset, the TTL and the protocol. It reads
// the same last byte as the protocol test, so it fails on the same
// truncated frames. libpcap cannot do this: its jumps test the
// accumulator, which a classic `ldw` fills just the same, but its
// optimiser does not merge the two.
func (g *graph) fuseFragment() {
	in, order := g.preds()
	for _, b := range order {
		if b.terminal() || b.t.r != nil || b.t.op != cmpSet || b.lkey == nil ||
			b.mask&b.t.k != 0x1fff || len(in[b.id]) == 0 {
			continue
		}
		frag := b.t.v.a0()
		if frag.base != baseLink || frag.size != 2 || frag.idx != nil {
			continue
		}
		proto := g.in.canon(linkLoad(frag.off+3, 1))
		word := g.in.canon(linkLoad(frag.off, 4))
		chain := make(map[*node]bool)
		ok := true
		for _, a := range in[b.id] {
			if a.terminal() || a.t.r != nil || a.t.op != cmpEq || a.lkey != proto ||
				a.mask != 0xffffffff || a.jt != b || a.jf == b || a.t.k > 0xff {
				ok = false
				break
			}
			chain[a] = true
		}
		if !ok {
			continue
		}
		// A fragment of protocol P leaves the chain by its false edges,
		// past tests of other protocols, to where b sends fragments.
		fused := g.maskKey(word, 0x1fff00ff)
		for a := range chain {
			n := a.jf
			for !n.terminal() && n.t != nil && n.t.r == nil && n.t.op == cmpEq &&
				(n.key != a.key && n.lkey == proto && n.mask == 0xffffffff ||
					n.vkey == fused && n.t.k&0xff != a.t.k) {
				n = n.jf
			}
			if n != b.jt {
				ok = false
			}
		}
		if !ok {
			continue
		}
		for a := range chain {
			g.setTest(a, &predTest{v: fused, op: cmpEq, k: a.t.k})
			a.jt = b.jf
		}
	}
}

// shareTails makes the IPv6 path share the IPv4 path's transport-header
// tests where the two are the same tests of the same transport fields (as
// the port tests of `tcp port 80` are): the IPv6 path goes through a node
// that sets r7, which holds 4*IHL on the IPv4 path, to 40, the length of
// the fixed IPv6 header, and jumps into the IPv4 tests, whose loads
// `skb[r7 + nl + off]` then read the bytes the IPv6 tests read at
// `skb[nl + 40 + off]`: the same bytes, so the same truncated frames fail.
// libpcap cannot do this: classic BPF jumps only forward by constants,
// and its X register is not kept across the IPv6 tests.
func (g *graph) shareTails() {
	for {
		in, order := g.preds()
		shared := false
		for _, a := range order {
			if a.terminal() || a.v6 || len(in[a.id]) == 0 || !a.transportCandidate(baseLink) {
				continue
			}
			for _, b := range order {
				if b == a || b.terminal() || b.v6 || !b.transportCandidate(baseIPv4) {
					continue
				}
				nl := int32(-1)
				mapped := 0
				if !sameTail(a, b, &nl, &mapped, make(map[[2]*node]bool)) || mapped < 1 {
					continue
				}
				t := &node{id: len(g.nodes), v6: true, nl6: nl, jt: b, jf: b}
				g.nodes = append(g.nodes, t)
				g.redirect(in[a.id], a, t)
				shared = true
				break
			}
			if shared {
				break
			}
		}
		if !shared {
			return
		}
	}
}

// transportCandidate reports whether n tests a simple, possibly masked,
// load relative to base against a constant.
func (n *node) transportCandidate(base loadBase) bool {
	if n.t == nil || n.t.r != nil || n.lkey == nil {
		return false
	}
	l := n.t.v.a0()
	return l.base == base && l.idx == nil
}

// sameTail reports whether the tests from a on and those from b on give
// the same outcomes when r7 is 40 on the way into b: where a loads
// `skb[nl + 40 + off]`, b loads `skb[r7 + nl + off]`, with one nl, which
// it sets; every other test is the same, or the two paths join. It
// counts the pairs of transport loads in mapped.
func sameTail(a, b *node, nl *int32, mapped *int, seen map[[2]*node]bool) bool {
	if a == b {
		return true
	}
	if a.terminal() || b.terminal() || a.v6 || b.v6 {
		return false
	}
	if seen[[2]*node{a, b}] {
		return true
	}
	ta, tb := a.t, b.t
	if ta.r != nil || tb.r != nil || ta.op != tb.op || ta.k != tb.k ||
		a.lkey == nil || b.lkey == nil || a.mask != b.mask {
		return false
	}
	la, lb := ta.v.a0(), tb.v.a0()
	if la.size != lb.size || la.idx != nil || lb.idx != nil || la.base != baseLink {
		return false
	}
	switch lb.base {
	case baseLink:
		if la.off != lb.off {
			return false
		}
	default:
		if *nl < 0 {
			*nl = lb.nl
		}
		if lb.nl != *nl || la.off != lb.nl+40+lb.off {
			return false
		}
		*mapped++
	}
	seen[[2]*node{a, b}] = true
	return sameTail(a.jt, b.jt, nl, mapped, seen) && sameTail(a.jf, b.jf, nl, mapped, seen)
}

// markIndexR0 marks the tests with one load relative to an IPv4 header,
// the last relative to it on every path through them (see node.idxR0).
func (g *graph) markIndexR0() {
	after := make(map[*node]map[int32]bool) // nl of IPv4 payload loads at or after n
	var visit func(n *node) map[int32]bool
	visit = func(n *node) map[int32]bool {
		if s, ok := after[n]; ok || n.terminal() {
			return s
		}
		after[n] = nil
		below := make(map[int32]bool)
		for nl := range visit(n.jt) {
			below[nl] = true
		}
		for nl := range visit(n.jf) {
			below[nl] = true
		}
		s := make(map[int32]bool, len(below)+1)
		for nl := range below {
			s[nl] = true
		}
		if n.t != nil {
			n.t.v.ipv4Bases(s)
			if n.t.r != nil {
				n.t.r.ipv4Bases(s)
			}
			var loads []*val
			n.t.v.ipv4Loads(&loads)
			n.t.r.ipv4Loads(&loads)
			if len(loads) == 1 && loads[0].idx == nil && !below[loads[0].nl] {
				n.idxR0 = loads[0]
			}
		}
		after[n] = s
		return s
	}
	visit(g.root)
}

// ipv4Loads appends to loads every load relative to an IPv4 payload in v.
func (v *val) ipv4Loads(loads *[]*val) {
	if v == nil {
		return
	}
	if v.kind == valLoad && v.base == baseIPv4 {
		*loads = append(*loads, v)
	}
	v.idx.ipv4Loads(loads)
	v.a.ipv4Loads(loads)
	v.b.ipv4Loads(loads)
}

// ipv4Bases adds to s the nl of every load relative to an IPv4 payload in v.
func (v *val) ipv4Bases(s map[int32]bool) {
	if v == nil {
		return
	}
	if v.kind == valLoad && v.base == baseIPv4 {
		s[v.nl] = true
	}
	v.idx.ipv4Bases(s)
	v.a.ipv4Bases(s)
	v.b.ipv4Bases(s)
}

// widenLoads makes one test of two that must both hold, of adjacent
// bytes, where a frame that fails either is rejected: `half[o] == a` then
// `half[o+2] == b` is `word[o] == a<<16 | b` (`tcp src and dst port 80`).
// The wider load fails where either narrower one fails, and every such
// frame is rejected either way. Legacy loads are at most 4 bytes wide.
func (g *graph) widenLoads() {
	for changed := true; changed; {
		changed = false
		in, order := g.preds()
		for _, a := range order {
			b := a.jt
			if !a.plainEq() || !b.plainEq() || a.jf != g.reject || b.jf != g.reject ||
				len(in[b.id]) != 1 || b.jt.inR0 {
				continue
			}
			la, lb := a.t.v, b.t.v
			if la.base != lb.base || la.nl != lb.nl || la.size != lb.size || la.size > 2 {
				continue
			}
			lo, hi := a, b // lo reads the lower offset
			if lb.off+int32(lb.size) == la.off {
				lo, hi = b, a
			} else if la.off+int32(la.size) != lb.off {
				continue
			}
			w := *lo.t.v
			w.size *= 2
			g.setTest(a, &predTest{v: &w, op: cmpEq, k: lo.t.k<<(8*uint32(la.size)) | hi.t.k})
			a.jt = b.jt
			changed = true
			break
		}
	}
}

// plainEq reports whether n tests a load at a constant offset, unmasked,
// for equality with a constant, loading it itself.
func (n *node) plainEq() bool {
	return n.t != nil && n.t.r == nil && n.t.op == cmpEq && n.t.v.isSimpleLoad() && !n.inR0
}

// dropImplied removes a test whose true edge goes where the test after it
// on its false edge, of the same load, goes for every value that makes it
// true: `if w0 == 0x86dd goto reject; if w0 != 0x800 goto reject` is the
// second test alone. The second test loads what the first did, so the
// same truncated frames fail.
func (g *graph) dropImplied() {
	for changed := true; changed; {
		changed = false
		in, order := g.preds()
		for _, a := range order {
			b := a.jf
			if a.terminal() || a.v6 || b.terminal() || b.v6 || a.t.r != nil || b.t.r != nil ||
				a.t.op != cmpEq || a.lkey == nil || a.lkey != b.lkey {
				continue
			}
			var t *threader // records every fact
			o, ok := decide(t.add(nil, a, true), b)
			if !ok || o && b.jt != a.jt || !o && b.jf != a.jt {
				continue
			}
			g.redirect(in[a.id], a, b)
			changed = true
			break
		}
	}
}
