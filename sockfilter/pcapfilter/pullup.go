package pcapfilter

import "slices"

// pullup does libpcap's or_pullup and and_pullup: in a chain of tests
// that share their true successor (or_pullup; their false successor for
// and_pullup), entered with r0 holding the value all the chain's
// predecessors test, the later tests of that value are moved ahead of the
// first test of another value, so that they need no new load. Like
// libpcap, this lets a frame be accepted by a pulled test before a load
// past its end would have rejected it.
//
// libpcap moves one test a pass; moving all of a chain's tests of the
// value at once, keeping their order and that of the others, gives the
// graph those passes end with. A round rearranges every chain it can
// that no other rearrangement of the round has touched, in time linear
// in the size of the graph (see pullupScan).
func (g *graph) pullup() bool {
	in, order := g.preds()
	dom := dominators(order, in)
	dirty := make(map[*node]bool)
	changed := false
	scans := [2]*pullupScan{newPullupScan(order, in, true), newPullupScan(order, in, false)}
	for _, b := range order {
		if b.terminal() || len(in[b.id]) == 0 {
			continue
		}
		for _, sc := range scans {
			if g.pullupAt(b, in, dom, sc, dirty) {
				changed = true
				break
			}
		}
	}
	return changed
}

// pullupAt rearranges the chain that starts at b, if the tests of the
// value r0 holds on the way into b (the value b's predecessors preds test)
// do not all come first in it. dirty holds the nodes earlier
// rearrangements of the round have changed: the round's facts about them
// are stale, so a chain that touches one is left for the next round; the
// nodes this one changes are added to it.
func (g *graph) pullupAt(b *node, in [][]*node, dom func(d, n *node) bool, sc *pullupScan, dirty map[*node]bool) bool {
	preds := in[b.id]
	val := preds[0].pkey
	for _, p := range preds[1:] {
		if p.pkey != val {
			return false
		}
	}
	if sc.next[b] == nil && b.pkey == val {
		return false
	}
	// d is the first test of another value, s the first test of val
	// after it.
	d := b
	if b.pkey == val {
		d = sc.runEnd[b]
	}
	if d == nil {
		return false
	}
	s := sc.after(d, val)
	if s == nil {
		return false
	}
	// The chain: b and the tests after it that continue it and that b
	// dominates, up to s at least.
	var chain []*node
	for _, p := range preds {
		if dirty[p] {
			return false
		}
	}
	reached := false
	for c := b; c != nil && (c == b || dom(b, c)); c = sc.next[c] {
		if dirty[c] {
			return false
		}
		chain = append(chain, c)
		reached = reached || c == s
	}
	if !reached {
		return false
	}
	last := chain[len(chain)-1]
	after := *sc.along(last)
	if !after.terminal() && dirty[after] {
		return false
	}
	moved := group(chain, val, in)
	for i, c := range moved {
		if i+1 < len(moved) {
			*sc.along(c) = moved[i+1]
		} else {
			*sc.along(c) = after
		}
		dirty[c] = true
	}
	if moved[0] != b {
		g.redirect(preds, b, moved[0])
	}
	for _, p := range preds {
		dirty[p] = true
	}
	if !after.terminal() {
		dirty[after] = true
	}
	return true
}

// group returns the tests of chain with those of v first, in their
// order, then the others in theirs. Where every test after the first has
// only the one before it as predecessor, it does what the pullups of the
// rounds after would do to the chain: each test is followed by the later
// tests of its value, so the chain is grouped by value in the order each
// value first comes.
func group(chain []*node, v *val, in [][]*node) []*node {
	straight := true
	for _, c := range chain[1:] {
		straight = straight && len(in[c.id]) == 1
	}
	index := map[*val]int{v: 0}
	groups := [][]*node{nil}
	for _, c := range chain {
		i, ok := index[c.pkey]
		if !ok {
			i = 1
			if straight {
				i = len(groups)
				index[c.pkey] = i
			}
		}
		if i == len(groups) {
			groups = append(groups, nil)
		}
		groups[i] = append(groups[i], c)
	}
	var moved []*node
	for _, g := range groups {
		moved = append(moved, g...)
	}
	return moved
}

// pullupScan holds what pullup needs to find, in time linear in the size
// of the graph, the chains it can rearrange in one direction (isOr: along
// false edges, sharing the true successor). A chain continues from a
// test c to next[c], the successor it follows, when that is a test with
// the same shared successor; the links form a forest, which a walk from
// its roots (the ends of chains) answers each query after(d, v) of: the
// first test of v the chain goes through after d.
type pullupScan struct {
	isOr   bool
	next   map[*node]*node // the test a chain goes on to from a test, if any
	runEnd map[*node]*node // the first test after n of another value than n's, if any
	first  map[pullupQuery]*node
}

type pullupQuery struct {
	d *node
	v *val
}

func (sc *pullupScan) along(n *node) **node {
	if sc.isOr {
		return &n.jf
	}
	return &n.jt
}

func (sc *pullupScan) shared(n *node) *node {
	if sc.isOr {
		return n.jt
	}
	return n.jf
}

// newPullupScan links the chains of order and answers the query of every
// test that may start one: preds gives each test's predecessors.
func newPullupScan(order []*node, preds [][]*node, isOr bool) *pullupScan {
	sc := &pullupScan{isOr: isOr, next: make(map[*node]*node), runEnd: make(map[*node]*node), first: make(map[pullupQuery]*node)}
	for _, c := range order {
		if c.terminal() || c.v6 {
			continue
		}
		if n := *sc.along(c); !n.terminal() && !n.v6 && sc.shared(n) == sc.shared(c) {
			sc.next[c] = n
		}
	}
	// Runs of one value, from the end of the order: a test's next comes
	// after it.
	for _, c := range slices.Backward(order) {
		n, ok := sc.next[c]
		switch {
		case !ok:
		case n.pkey != c.pkey:
			sc.runEnd[c] = n
		default:
			sc.runEnd[c] = sc.runEnd[n]
		}
	}
	// The queries: for each test b whose predecessors all test one value
	// v, the first test of v after d, the first test of another value
	// from b on.
	queries := make(map[*node][]*val)
	for _, b := range order {
		ps := preds[b.id]
		if b.terminal() || b.v6 || len(ps) == 0 {
			continue
		}
		v := ps[0].pkey
		for _, p := range ps[1:] {
			if p.pkey != v {
				v = nil
			}
		}
		d := b
		if b.pkey == v {
			d = sc.runEnd[b]
		}
		if v != nil && d != nil {
			queries[d] = append(queries[d], v)
		}
	}
	// Walk the forest from its roots, keeping for each value the tests of
	// it on the way from the root: the last of them is the first a chain
	// from the current test meets.
	children := make(map[*node][]*node)
	var roots []*node
	for _, c := range order {
		if c.terminal() || c.v6 {
			continue
		}
		if n, ok := sc.next[c]; ok {
			children[n] = append(children[n], c)
		} else {
			roots = append(roots, c)
		}
	}
	onPath := make(map[*val][]*node)
	type step struct {
		n    *node
		exit bool
	}
	for _, r := range roots {
		stack := []step{{n: r}}
		for len(stack) > 0 {
			st := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if st.exit {
				onPath[st.n.pkey] = onPath[st.n.pkey][:len(onPath[st.n.pkey])-1]
				continue
			}
			for _, v := range queries[st.n] {
				if p := onPath[v]; len(p) > 0 {
					sc.first[pullupQuery{st.n, v}] = p[len(p)-1]
				}
			}
			onPath[st.n.pkey] = append(onPath[st.n.pkey], st.n)
			stack = append(stack, step{n: st.n, exit: true})
			for _, c := range children[st.n] {
				stack = append(stack, step{n: c})
			}
		}
	}
	return sc
}

// after returns the first test of v a chain goes through after d, or nil.
func (sc *pullupScan) after(d *node, v *val) *node { return sc.first[pullupQuery{d, v}] }
