package pcapfilter

import "slices"

// The optimiser does what libpcap's optimizer.c does to the same graphs,
// so that the programs are as short and read the frame as libpcap's
// (optimize, in rounds):
//
//   - jump threading (thread): an edge into a test whose outcome is known
//     on that edge (the same test, or an equality of a value known from
//     an equality, was passed on every path to it: only what libpcap
//     decides, see threader.decide) goes straight to the successor of
//     that outcome. The skipped test's loads were all done before, so no
//     load past the end of a frame is added or removed. The facts on each
//     edge are persistent lists (facts.go).
//   - tests whose two successors are the same are removed (thread skips
//     them, as libpcap's opt_j).
//   - when threading changes nothing: libpcap's or_pullup and and_pullup
//     (pullup.go), which move the tests of the value already in r0 ahead
//     in a chain.
//   - when neither changes anything, once: equal tests with equal
//     successors are merged (merge), as libpcap's intern_blocks runs once
//     after opt_loop. A test whose two ways become the same node only
//     then is kept, with its load, as libpcap keeps the block.
//
// Then, once each, passes that do what classic BPF cannot (compilePred
// runs them in this order): dropImplied (a test the next test of the same
// load implies), fuseFragment (protocol and fragment offset in one masked
// word), shareTails (IPv6 jumps into the IPv4 transport tests with r7 =
// 40), mergeTails (tests of whatever r0 holds), widenLoads (one wider load
// for two adjacent equality tests), markIndexR0 (the last transport load
// takes 4*IHL from r0).
//
// Every pass takes time linear, or n log n, in the size of the graph:
// each is one pass in topological order that looks again only at what a
// change touched, and the rounds of optimize have a budget (roundBudget)
// that no expression of the test list comes near.

// optimize threads jumps and removes useless tests until nothing changes,
// then pulls tests up (pullup) and starts over, until nothing changes;
// then it merges equal tests. A round costs time linear in the size of the
// graph; rounds stop after maxRounds, or once they have visited
// roundBudget(n) nodes for a graph of n nodes, which keeps a huge graph's
// optimisation linear in its size: its program is then correct, but
// perhaps longer than it could be.
func (g *graph) optimize() {
	t := newThreader(g)
	t.libpcap = true
	budget := roundBudget(len(g.nodes))
	for round := 0; round < maxRounds && budget > 0; round++ {
		budget -= len(g.nodes)
		if !g.thread(t) && (g.noPullup || !g.pullup()) {
			break
		}
	}
	// As libpcap's optimiser, which merges equal blocks only once it has
	// threaded and pulled up all it can (intern_blocks after opt_loop),
	// and threads no more: a pullup can still take one copy of a test
	// into another chain before (`tcp port 80 or port 443` tests TCP's
	// source port 443 before it loads the destination port), and a test
	// whose two ways are the same only after merging keeps its load,
	// which a frame too short for it fails (`((decnet dst 3.4) or not
	// (llc sabme)) and not llc` reads [16] of a 14-byte frame, as
	// libpcap's program does). merge's pass, from the last test to the
	// first, makes its merges whole; it runs until it changes nothing, as
	// intern_blocks (within the budget).
	for budget > 0 && g.merge() {
		budget -= len(g.nodes)
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
	// runs[{n, facts}] is where a walk from n with the facts of content
	// facts (threader.signature) ends: the walks from the many edges of a
	// long chain of terms that know the same (every `not IP` edge of a
	// chain of `port N`) take the way to its end once.
	type runKey struct {
		n     *node
		facts int32
	}
	runs := make(map[runKey]*node)
	var walked []*node
	follow := func(f *fact, n *node) *node {
		sig := int32(-1)
		walked = walked[:0]
		for ; !n.terminal() && steps > 0; steps-- {
			if n.jt == n.jf {
				n = n.jt
				continue
			}
			o, ok, _ := t.decide(f, n)
			if !ok {
				break
			}
			if sig < 0 {
				sig = t.signature(f)
			}
			if to, ok := runs[runKey{n, sig}]; ok {
				n = to
				break
			}
			walked = append(walked, n)
			if o {
				n = n.jt
			} else {
				n = n.jf
			}
		}
		if len(runs) < 4*len(g.nodes) {
			for _, w := range walked {
				runs[runKey{w, sig}] = n
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
	if g.byKey == nil {
		g.byKey = make(map[mergeKey]*node, len(order))
	}
	byKey := g.byKey
	clear(byKey)
	changed := false
	for _, n := range slices.Backward(order) {
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

// mergeKey identifies the nodes merge makes one.
type mergeKey struct {
	t      testKey
	jt, jf *node
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
	for _, n := range slices.Backward(order) {
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
//
// It looks at the IPv6 tests a in topological order, and for each at the
// IPv4 tests b that test the same field the same way (found by their
// signature), first in order first. A test whose every way in has gone
// to an earlier shared tail is unreachable and skipped (live counts the
// edges into each node from reachable ones).
func (g *graph) shareTails() {
	in, order := g.preds()
	type signature struct {
		op      cmpOp
		k, mask uint32
		size    uint8
		off     int32 // from the link-layer header, with 40 for the IPv6 header
	}
	sig := func(n *node, base loadBase) (signature, bool) {
		if n.terminal() || n.v6 || !n.transportCandidate(base) {
			return signature{}, false
		}
		l := n.t.v.a0()
		off := l.off
		if base == baseIPv4 {
			off += l.nl + 40
		}
		return signature{n.t.op, n.t.k, n.mask, l.size, off}, true
	}
	byField := make(map[signature][]*node)
	live := make([]int, len(g.nodes))
	live[g.root.id]++
	for _, n := range order {
		if s, ok := sig(n, baseIPv4); ok {
			byField[s] = append(byField[s], n)
		}
		if !n.terminal() {
			live[n.jt.id]++
			live[n.jf.id]++
		}
	}
	var kill func(n *node)
	kill = func(n *node) {
		if n.terminal() {
			return
		}
		for _, s := range [2]*node{n.jt, n.jf} {
			if live[s.id]--; live[s.id] == 0 {
				kill(s)
			}
		}
	}
	st := &tailMatch{failed: make(map[tailPair]bool)}
	for _, a := range order {
		s, ok := sig(a, baseLink)
		if !ok || len(in[a.id]) == 0 || live[a.id] == 0 {
			continue
		}
		for _, b := range byField[s] {
			if b == a || live[b.id] == 0 {
				continue
			}
			nl := int32(-1)
			clear(st.seen)
			if !st.same(a, b, &nl) || !st.closed(b, in, live) {
				continue
			}
			t := &node{id: len(g.nodes), v6: true, nl6: nl, jt: b, jf: b}
			g.nodes = append(g.nodes, t)
			live = append(live, live[a.id])
			live[a.id] = 0
			live[b.id] += 2
			g.redirect(in[a.id], a, t)
			kill(a)
			break
		}
	}
}

// closed reports whether the IPv4 tests the last comparison matched,
// from b on, are reached only from each other (b aside): the emitter
// keeps r7 from one to the next only where no other way comes in, and
// otherwise sets it again from the IPv4 header, which would undo the 40
// the IPv6 path set (`tcp port 22 or port 80`: the IPv4 path reaches the
// port 80 tests from the port 22 tests and from the protocol test).
func (st *tailMatch) closed(b *node, in [][]*node, live []int) bool {
	region := make(map[*node]bool, len(st.seen))
	for p := range st.seen {
		region[p[1]] = true
	}
	for n := range region {
		if n == b {
			continue
		}
		for _, p := range in[n.id] {
			if live[p.id] > 0 && !region[p] {
				return false
			}
		}
	}
	return true
}

// tailPair is a pair sameTail compares, with the nl it was given.
type tailPair struct {
	a, b *node
	nl   int32
}

// tailMatch holds what shareTails knows of the tails it has compared:
// the pairs that were not the same (a shared tail only ever turns a pair
// that was the same into one that is not, so these stay so) and the pairs
// of the current comparison.
type tailMatch struct {
	failed map[tailPair]bool
	seen   map[[2]*node]bool
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

// same reports whether the tests from a on and those from b on give the
// same outcomes when r7 is 40 on the way into b: where a loads
// `skb[nl + 40 + off]`, b loads `skb[r7 + nl + off]`, with one nl, which
// it sets; every other test is the same, or the two paths join.
func (st *tailMatch) same(a, b *node, nl *int32) bool {
	if a == b {
		return true
	}
	if a.terminal() || b.terminal() || a.v6 || b.v6 {
		return false
	}
	if st.seen == nil {
		st.seen = make(map[[2]*node]bool)
	}
	if st.seen[[2]*node{a, b}] {
		return true
	}
	key := tailPair{a, b, *nl}
	if st.failed[key] {
		return false
	}
	if !st.sameTest(a, b, nl) {
		st.failed[key] = true
		return false
	}
	st.seen[[2]*node{a, b}] = true
	if !st.same(a.jt, b.jt, nl) || !st.same(a.jf, b.jf, nl) {
		st.failed[key] = true
		return false
	}
	return true
}

// sameTest reports whether a and b test the same bytes the same way, b's
// relative to the IPv4 header at nl (which it sets if it is -1).
func (st *tailMatch) sameTest(a, b *node, nl *int32) bool {
	ta, tb := a.t, b.t
	if ta.r != nil || tb.r != nil || ta.op != tb.op || ta.k != tb.k ||
		a.lkey == nil || b.lkey == nil || a.mask != b.mask {
		return false
	}
	la, lb := ta.v.a0(), tb.v.a0()
	if la.size != lb.size || la.idx != nil || lb.idx != nil || la.base != baseLink {
		return false
	}
	if lb.base == baseLink {
		return la.off == lb.off
	}
	if *nl < 0 {
		*nl = lb.nl
	}
	return lb.nl == *nl && la.off == lb.nl+40+lb.off
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
//
// It looks at the tests in topological order; when it widens one, it looks
// again at the tests that lead to it, then at it.
func (g *graph) widenLoads() {
	in, order := g.preds()
	widen := func(a *node) bool {
		b := a.jt
		if !a.plainEq() || !b.plainEq() || a.jf != g.reject || b.jf != g.reject ||
			len(in[b.id]) != 1 || b.jt.inR0 {
			return false
		}
		la, lb := a.t.v, b.t.v
		if la.base != lb.base || la.nl != lb.nl || la.size != lb.size || la.size > 2 ||
			a.t.k>>(8*uint32(la.size)) != 0 || b.t.k>>(8*uint32(la.size)) != 0 {
			return false // a test no value of the load passes stays as it is
		}
		lo, hi := a, b // lo reads the lower offset
		if lb.off+int32(lb.size) == la.off {
			lo, hi = b, a
		} else if la.off+int32(la.size) != lb.off {
			return false
		}
		w := *lo.t.v
		w.size *= 2
		g.setTest(a, &predTest{v: &w, op: cmpEq, k: lo.t.k<<(8*uint32(la.size)) | hi.t.k})
		a.jt = b.jt
		if s := b.jt; !s.terminal() {
			in[s.id] = slices.DeleteFunc(in[s.id], func(p *node) bool { return p == b })
			if !slices.Contains(in[s.id], a) {
				in[s.id] = append(in[s.id], a)
			}
		}
		return true
	}
	var stack []*node
	for _, n := range order {
		stack = append(stack[:0], n)
		for len(stack) > 0 {
			a := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if a.terminal() || !widen(a) {
				continue
			}
			stack = append(stack, a)
			for _, p := range slices.Backward(in[a.id]) {
				stack = append(stack, p)
			}
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
//
// It looks at the tests in topological order; when it drops one, the
// tests that led to it have a new successor, so it looks at them again
// (before going on: they come first in the order).
func (g *graph) dropImplied() {
	in, order := g.preds()
	t := newThreader(g)
	implied := func(a *node) bool {
		b := a.jf
		if a.terminal() || a.v6 || b.terminal() || b.v6 || a.t.r != nil || b.t.r != nil ||
			a.t.op != cmpEq || a.lkey == nil || a.lkey != b.lkey {
			return false
		}
		o, ok, _ := t.decide(t.add(nil, a, true), b)
		return ok && (o && b.jt == a.jt || !o && b.jf == a.jt)
	}
	dropped := make([]bool, len(g.nodes))
	var stack []*node
	for _, n := range order {
		stack = append(stack[:0], n)
		for len(stack) > 0 {
			a := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if dropped[a.id] || !implied(a) {
				continue
			}
			b := a.jf
			preds := in[a.id]
			g.redirect(preds, a, b)
			dropped[a.id] = true
			in[b.id] = slices.DeleteFunc(in[b.id], func(p *node) bool { return p == a })
			for _, p := range preds {
				if !slices.Contains(in[b.id], p) {
					in[b.id] = append(in[b.id], p)
				}
			}
			// Look again at the tests that led to a, first in order
			// first.
			for _, p := range slices.Backward(preds) {
				stack = append(stack, p)
			}
		}
	}
}
