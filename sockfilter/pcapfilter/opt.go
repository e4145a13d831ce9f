package pcapfilter

import "strconv"

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

// facts are what is known on an edge of the graph.
type facts struct {
	sets  map[string][]uint32 // value key → the values it may have
	neq   map[string][]uint32 // value key → values it does not have
	tests map[string]bool     // test key → its outcome
}

// maxSet bounds the sets of possible values kept.
const maxSet = 16

func newFacts() facts {
	return facts{sets: map[string][]uint32{}, neq: map[string][]uint32{}, tests: map[string]bool{}}
}

func (f facts) clone() facts {
	c := facts{
		sets:  make(map[string][]uint32, len(f.sets)+1),
		neq:   make(map[string][]uint32, len(f.neq)+1),
		tests: make(map[string]bool, len(f.tests)+1),
	}
	for k, v := range f.sets {
		c.sets[k] = v
	}
	for k, v := range f.neq {
		c.neq[k] = v
	}
	for k, v := range f.tests {
		c.tests[k] = v
	}
	return c
}

func contains(s []uint32, x uint32) bool {
	for _, y := range s {
		if y == x {
			return true
		}
	}
	return false
}

// intersect keeps in f only what holds on f's paths and on g's.
func (f facts) intersect(g facts) {
	for k, s := range f.sets {
		t, ok := g.sets[k]
		if !ok {
			delete(f.sets, k)
			continue
		}
		u := append([]uint32(nil), s...)
		for _, x := range t {
			if !contains(u, x) {
				u = append(u, x)
			}
		}
		if len(u) > maxSet {
			delete(f.sets, k)
		} else {
			f.sets[k] = u
		}
	}
	for k, s := range f.neq {
		var u []uint32
		for _, x := range g.neq[k] {
			if contains(s, x) {
				u = append(u, x)
			}
		}
		if len(u) == 0 {
			delete(f.neq, k)
		} else {
			f.neq[k] = u
		}
	}
	for k, v := range f.tests {
		if w, ok := g.tests[k]; !ok || w != v {
			delete(f.tests, k)
		}
	}
}

// add records the outcome of n's test in f.
func (f facts) add(n *node, outcome bool) {
	f.tests[n.key] = outcome
	t := n.t
	if t.r != nil {
		return
	}
	switch {
	case t.op == cmpEq && outcome:
		f.sets[n.vkey] = []uint32{t.k}
		delete(f.neq, n.vkey)
	case t.op == cmpEq:
		if s, ok := f.sets[n.vkey]; ok {
			var u []uint32
			for _, x := range s {
				if x != t.k {
					u = append(u, x)
				}
			}
			f.sets[n.vkey] = u
		} else if !contains(f.neq[n.vkey], t.k) {
			f.neq[n.vkey] = append(append([]uint32(nil), f.neq[n.vkey]...), t.k)
		}
	case t.op == cmpSet && !outcome && n.lkey != "":
		f.sets[maskKey(n.lkey, n.mask&t.k)] = []uint32{0}
	}
}

// maskKey returns the key of the load whose key is lkey ANDed with m.
func maskKey(lkey string, m uint32) string {
	if m == 0xffffffff {
		return lkey
	}
	return "(" + lkey + "&" + constVal(m).key() + ")"
}

// decide returns the outcome of n's test if f determines it.
func (f facts) decide(n *node) (outcome, ok bool) {
	if o, ok := f.tests[n.key]; ok {
		return o, true
	}
	t := n.t
	if t.r != nil {
		return false, false
	}
	all := func(s []uint32, m uint32) (bool, bool) {
		if len(s) == 0 {
			return false, false
		}
		first := t.op.eval(s[0]&m, t.k)
		for _, x := range s[1:] {
			if t.op.eval(x&m, t.k) != first {
				return false, false
			}
		}
		return first, true
	}
	if s, ok := f.sets[n.vkey]; ok {
		return all(s, 0xffffffff)
	}
	if t.op == cmpEq && contains(f.neq[n.vkey], t.k) {
		return false, true
	}
	if n.lkey != "" {
		if s, ok := f.sets[n.lkey]; ok {
			return all(s, n.mask)
		}
		if t.op == cmpSet {
			if s, ok := f.sets[maskKey(n.lkey, n.mask&t.k)]; ok {
				return all(s, 0xffffffff)
			}
		}
	}
	return false, false
}

// optimize threads jumps, removes useless tests and merges equal ones
// until nothing changes.
func (g *graph) optimize() {
	for round := 0; round < 100; round++ {
		changed := g.thread()
		if g.merge() {
			changed = true
		}
		if !changed && g.pullup() {
			changed = true
		}
		if !changed {
			return
		}
	}
}

// thread retargets every edge that passes a test decided on it.
func (g *graph) thread() bool {
	order := g.order()
	in := make(map[*node]facts, len(order))
	changed := false
	follow := func(f facts, n *node) *node {
		var c facts
		cloned := false
		for !n.terminal() {
			if n.jt == n.jf {
				n = n.jt
				continue
			}
			o, ok := f.decide(n)
			if !ok {
				break
			}
			if !cloned {
				c, cloned = f.clone(), true
				f = c
			}
			f.add(n, o)
			if o {
				n = n.jt
			} else {
				n = n.jf
			}
		}
		return n
	}
	if r := follow(newFacts(), g.root); r != g.root {
		g.root = r
		return true
	}
	for _, n := range order {
		if n.terminal() {
			continue
		}
		f, ok := in[n]
		if !ok {
			f = newFacts()
		}
		for _, outcome := range []bool{true, false} {
			ef := f.clone()
			ef.add(n, outcome)
			succ := &n.jf
			if outcome {
				succ = &n.jt
			}
			if s := follow(ef, *succ); s != *succ {
				*succ = s
				changed = true
			}
			if old, ok := in[*succ]; ok {
				old.intersect(ef)
			} else {
				in[*succ] = ef
			}
		}
	}
	return changed
}

// merge makes equal tests with equal successors one node.
func (g *graph) merge() bool {
	order := g.order()
	canon := make(map[*node]*node)
	byKey := make(map[string]*node)
	changed := false
	for i := len(order) - 1; i >= 0; i-- {
		n := order[i]
		if n.terminal() {
			continue
		}
		if c, ok := canon[n.jt]; ok {
			n.jt, changed = c, true
		}
		if c, ok := canon[n.jf]; ok {
			n.jf, changed = c, true
		}
		k := n.key + "→" + label(n.jt) + "," + label(n.jf)
		if m, ok := byKey[k]; ok {
			canon[n] = m
			continue
		}
		byKey[k] = n
	}
	if c, ok := canon[g.root]; ok {
		g.root, changed = c, true
	}
	return changed
}

// preds returns the predecessors of every node reachable from the root,
// and the nodes in topological order.
func (g *graph) preds() (map[*node][]*node, []*node) {
	order := g.order()
	in := make(map[*node][]*node, len(order))
	for _, n := range order {
		if n.terminal() {
			continue
		}
		in[n.jt] = append(in[n.jt], n)
		if n.jf != n.jt {
			in[n.jf] = append(in[n.jf], n)
		}
	}
	return in, order
}

// dominators returns, for each node, the set of nodes that dominate it
// (every path from the root to it passes them), as a map from node to
// its immediate dominator chain membership test.
func dominators(order []*node, in map[*node][]*node) func(d, n *node) bool {
	idx := make(map[*node]int, len(order))
	for i, n := range order {
		idx[n] = i
	}
	idom := make([]int, len(order))
	for i := range idom {
		idom[i] = -1
	}
	idom[0] = 0
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
	// The graph is acyclic and order is topological: one pass suffices.
	for i := 1; i < len(order); i++ {
		d := -1
		for _, p := range in[order[i]] {
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
	return func(d, n *node) bool {
		i, ok := idx[n]
		j, ok2 := idx[d]
		if !ok || !ok2 {
			return false
		}
		for {
			if i == j {
				return true
			}
			if i == 0 {
				return false
			}
			i = idom[i]
		}
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

// pullup does libpcap's or_pullup and and_pullup: in a chain of tests
// that share their true successor (or_pullup) and are entered with r0
// holding some value, a later test of that same value is moved ahead of
// the first test of another value, so that it needs no new load. Like
// libpcap, this lets a frame be accepted by the pulled test before a load
// past its end would have rejected it.
func (g *graph) pullup() bool {
	in, order := g.preds()
	dom := dominators(order, in)
	for _, b := range order {
		if b.terminal() || len(in[b]) == 0 {
			continue
		}
		for _, isOr := range []bool{true, false} {
			if g.pullupAt(b, in[b], dom, isOr) {
				return true
			}
		}
	}
	return false
}

func (g *graph) pullupAt(b *node, preds []*node, dom func(d, n *node) bool, isOr bool) bool {
	val := preds[0].vkey
	for _, p := range preds[1:] {
		if p.vkey != val {
			return false
		}
	}
	// along returns the successor the chain follows, and the one all its
	// tests must share.
	along := func(n *node) **node {
		if isOr {
			return &n.jf
		}
		return &n.jt
	}
	shared := func(n *node) *node {
		if isOr {
			return n.jt
		}
		return n.jf
	}
	var diffp **node
	atTop := true
	d := b
	for {
		if d.terminal() || shared(d) != shared(b) || !dom(b, d) {
			return false
		}
		if d.vkey != val {
			break
		}
		diffp = along(d)
		d = *diffp
		atTop = false
	}
	samep := along(d)
	for {
		s := *samep
		if s.terminal() || shared(s) != shared(b) || !dom(b, s) {
			return false
		}
		if s.vkey == val {
			break
		}
		samep = along(s)
	}
	pull := *samep
	*samep = *along(pull)
	*along(pull) = d
	if atTop {
		g.redirect(preds, b, pull)
	} else {
		*diffp = pull
	}
	return true
}

// r0After returns the key of what r0 holds after n's code (see
// emitter.test), or "" if that is not a plain or masked load.
func (n *node) r0After() string {
	switch {
	case n.inR0 || n.lkey == "":
		return ""
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
	byKey := make(map[string]*node)
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
		if n.lkey == "" || len(in[n]) == 0 {
			continue
		}
		regOnly := true
		for _, p := range in[n] {
			if p.r0After() != n.lkey {
				regOnly = false
			}
		}
		if !regOnly {
			continue
		}
		k := cmpNames[n.t.op] + "#" + strconv.FormatUint(uint64(n.t.k), 10) + "&" +
			strconv.FormatUint(uint64(n.mask), 10) + "→" + label(n.jt) + "," + label(n.jf)
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
		if b.terminal() || b.t.r != nil || b.t.op != cmpSet || b.lkey == "" ||
			b.mask&b.t.k != 0x1fff || len(in[b]) == 0 {
			continue
		}
		frag := b.t.v.a0()
		if frag.base != baseLink || frag.size != 2 || frag.idx != nil {
			continue
		}
		proto := linkLoad(frag.off+3, 1).key()
		word := linkLoad(frag.off, 4)
		chain := make(map[*node]bool)
		ok := true
		for _, a := range in[b] {
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
		fused := maskKey(word.key(), 0x1fff00ff)
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
			t := &predTest{v: aluVal(aluAnd, word, constVal(0x1fff00ff)), op: cmpEq, k: a.t.k}
			a.t, a.key, a.vkey = t, t.key(), t.v.key()
			a.lkey, a.mask = word.key(), 0x1fff00ff
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
			if a.terminal() || a.v6 || len(in[a]) == 0 || !a.transportCandidate(baseLink) {
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
				g.redirect(in[a], a, t)
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
	if n.t == nil || n.t.r != nil || n.lkey == "" {
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
		a.lkey == "" || b.lkey == "" || a.mask != b.mask {
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
				len(in[b]) != 1 || b.jt.inR0 {
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
			t := &predTest{v: &w, op: cmpEq, k: lo.t.k<<(8*uint32(la.size)) | hi.t.k}
			a.t, a.key, a.vkey, a.lkey = t, t.key(), w.key(), w.key()
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
				a.t.op != cmpEq || a.lkey == "" || a.lkey != b.lkey {
				continue
			}
			f := newFacts()
			f.add(a, true)
			o, ok := f.decide(b)
			if !ok || o && b.jt != a.jt || !o && b.jf != a.jt {
				continue
			}
			g.redirect(in[a], a, b)
			changed = true
			break
		}
	}
}
