package pcapfilter

import "slices"

// Facts are what jump threading knows on an edge of the graph: the
// outcomes of the tests passed, and for the values tested, the values they
// may have or do not have. They are kept as an immutable list, newest
// first, that shares its older facts with the lists it was built from, so
// that recording an outcome, or meeting the facts of two edges at a join,
// copies nothing: the optimiser's memory and time grow with the number of
// edges, not with edges times facts (see thread).
//
// A lookup reads at most factDepth facts: on a path longer than that, the
// oldest facts are forgotten, which can leave a test undecided but never
// decides one wrongly. Only facts that can decide another node are
// recorded (threader.useful), so the lists stay short.
type fact struct {
	older *fact
	depth int32 // the number of facts in the list from here
	// key is the test, or for a value v, testKey{v: v, op: cmpValue}.
	key testKey
	// none says nothing is known of key: it hides older facts about it,
	// which a join of two edges that disagree on them leaves unknown.
	none bool
	// A test's outcome.
	outcome bool
	// A value's facts: if hasSet, it is one of set; it is none of neq.
	hasSet bool
	set    []uint32
	neq    []uint32
}

// cmpValue is the op of the key of a fact about a value.
const cmpValue cmpOp = 0xff

// valueKey returns the key of the facts about v.
func valueKey(v *val) testKey { return testKey{v: v, op: cmpValue} }

const (
	// factDepth is the number of facts a lookup reads.
	factDepth = 128
	// maxSet bounds the sets of values a value may have or not have.
	maxSet = 16
	// maxNeq bounds the values a value is known not to have.
	maxNeq = 64
)

// push returns f with c in front of it.
func (f *fact) push(c fact) *fact {
	c.older = f
	c.depth = 1
	if f != nil {
		c.depth = f.depth + 1
	}
	return &c
}

// find returns the newest fact about k among the first factDepth of f, or
// nil if there is none.
func (f *fact) find(k testKey) *fact {
	for i := 0; f != nil && i < factDepth; i++ {
		if f.key == k {
			if f.none {
				return nil
			}
			return f
		}
		f = f.older
	}
	return nil
}

// threader holds what thread needs across a round: which keys are worth
// recording, and scratch space for joins.
type threader struct {
	uses map[testKey]int32 // key → the number of nodes whose tests read it
	seen map[testKey]bool
	keys []testKey
}

// newThreader counts, for each key, the nodes of g whose tests can be
// decided by a fact about it.
func newThreader(g *graph) *threader {
	t := &threader{uses: make(map[testKey]int32), seen: make(map[testKey]bool)}
	for _, n := range g.nodes {
		if n.t == nil {
			continue
		}
		t.uses[n.key]++
		t.uses[valueKey(n.vkey)]++
		if n.lkey != nil && n.lkey != n.vkey {
			t.uses[valueKey(n.lkey)]++
		}
		if n.setKey != nil && n.setKey != n.vkey && n.setKey != n.lkey {
			t.uses[valueKey(n.setKey)]++
		}
	}
	return t
}

// useful reports whether a fact about k can decide a node other than the
// one that records it. A nil threader records every fact.
func (t *threader) useful(k testKey) bool { return t == nil || t.uses[k] > 1 }

// add returns f with the outcome of n's test.
func (t *threader) add(f *fact, n *node, outcome bool) *fact {
	if t.useful(n.key) {
		f = f.push(fact{key: n.key, outcome: outcome})
	}
	tt := n.t
	if tt.r != nil {
		return f
	}
	switch {
	case tt.op == cmpEq && outcome:
		if k := valueKey(n.vkey); t.useful(k) {
			f = f.push(fact{key: k, hasSet: true, set: []uint32{tt.k}})
		}
	case tt.op == cmpEq:
		k := valueKey(n.vkey)
		if !t.useful(k) {
			break
		}
		c := fact{key: k}
		if old := f.find(k); old != nil {
			c.hasSet, c.set, c.neq = old.hasSet, old.set, old.neq
		}
		switch {
		case c.hasSet:
			c.set = slices.DeleteFunc(slices.Clone(c.set), func(x uint32) bool { return x == tt.k })
		case len(c.neq) >= maxNeq || slices.Contains(c.neq, tt.k):
			return f
		default:
			c.neq = append(slices.Clip(c.neq), tt.k)
		}
		f = f.push(c)
	case n.setKey != nil && !outcome:
		k := valueKey(n.setKey)
		if !t.useful(k) {
			break
		}
		c := fact{key: k, hasSet: true, set: []uint32{0}}
		if old := f.find(k); old != nil {
			c.neq = old.neq
		}
		f = f.push(c)
	}
	return f
}

// decide returns the outcome of n's test if f determines it.
func decide(f *fact, n *node) (outcome, ok bool) {
	if c := f.find(n.key); c != nil {
		return c.outcome, true
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
	c := f.find(valueKey(n.vkey))
	if c != nil && c.hasSet {
		return all(c.set, 0xffffffff)
	}
	if t.op == cmpEq && c != nil && slices.Contains(c.neq, t.k) {
		return false, true
	}
	if n.lkey != nil {
		if c := f.find(valueKey(n.lkey)); c != nil && c.hasSet {
			return all(c.set, n.mask)
		}
		if n.setKey != nil {
			if c := f.find(valueKey(n.setKey)); c != nil && c.hasSet {
				return all(c.set, 0xffffffff)
			}
		}
	}
	return false, false
}

// meet returns what holds on the paths of a and on those of b: what their
// common older facts say, with each key the newer facts of either speak
// of replaced by what both say of it (the union of the values it may
// have, the values neither says it has, an outcome both give).
func (t *threader) meet(a, b *fact) *fact {
	if a == b {
		return a
	}
	common := commonFacts(a, b)
	clear(t.seen)
	t.keys = t.keys[:0]
	for _, l := range [2]*fact{a, b} {
		for i := 0; l != common && l != nil && i < factDepth; i++ {
			if !t.seen[l.key] {
				t.seen[l.key] = true
				t.keys = append(t.keys, l.key)
			}
			l = l.older
		}
	}
	r := common
	for _, k := range t.keys {
		c := meetFact(k, a.find(k), b.find(k))
		if c.none && common.find(k) == nil {
			continue // nothing older to hide
		}
		r = r.push(c)
	}
	return r
}

// meetFact returns the fact about k that holds where x and y hold (either
// nil if nothing is known).
func meetFact(k testKey, x, y *fact) fact {
	c := fact{key: k, none: true}
	if x == nil || y == nil {
		return c
	}
	if k.op != cmpValue {
		if x.outcome == y.outcome {
			c.none, c.outcome = false, x.outcome
		}
		return c
	}
	if x.hasSet && y.hasSet {
		u := slices.Clone(x.set)
		for _, v := range y.set {
			if !slices.Contains(u, v) {
				u = append(u, v)
			}
		}
		if len(u) <= maxSet {
			c.none, c.hasSet, c.set = false, true, u
		}
	}
	for _, v := range y.neq {
		if slices.Contains(x.neq, v) {
			c.none, c.neq = false, append(c.neq, v)
		}
	}
	return c
}

// commonFacts returns the longest list a and b both end in, if it starts
// within factDepth facts of both, or nil.
func commonFacts(a, b *fact) *fact {
	depth := func(f *fact) int32 {
		if f == nil {
			return 0
		}
		return f.depth
	}
	for steps := 0; a != b; steps++ {
		if steps > 2*factDepth {
			return nil
		}
		switch da, db := depth(a), depth(b); {
		case da > db:
			a = a.older
		case db > da:
			b = b.older
		default:
			a, b = a.older, b.older
		}
	}
	return a
}
