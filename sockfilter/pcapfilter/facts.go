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
// recorded (see newThreader), so the lists stay short.
type fact struct {
	older *fact
	depth int32 // the number of facts in the list from here
	key   int32 // what the fact is about: a test, or a value (threader.keys)
	// none says nothing is known of key: it hides older facts about it,
	// which a join of two edges that disagree on them leaves unknown.
	none bool
	// A test's outcome.
	outcome bool
	// A value's facts (value): if hasSet, it is one of vals[:nset]; it is
	// none of vals[nset:].
	value  bool
	hasSet bool
	nset   uint8
	vals   []uint32
	// joined says the set is the union of sets met at a join (or what a
	// false equality left of one): libpcap knows a value's value only
	// from one true equality on an edge that dominates, so with
	// threader.libpcap such a set decides nothing, not even once false
	// equalities have left one value in it.
	joined bool
	// cid identifies what the fact says (threader.content), 0 until
	// asked for.
	cid int32
}

func (f *fact) set() []uint32 { return f.vals[:f.nset] }
func (f *fact) neq() []uint32 { return f.vals[f.nset:] }

// valueFact returns the fact about the value key: one of set if hasSet,
// none of neq.
func valueFact(key int32, hasSet bool, set, neq []uint32) fact {
	vals := make([]uint32, 0, len(set)+len(neq))
	vals = append(append(vals, set...), neq...)
	return fact{key: key, value: true, hasSet: hasSet, nset: uint8(len(set)), vals: vals}
}

const (
	// factDepth is the number of facts a lookup reads.
	factDepth = 128
	// maxSet bounds the sets of values a value may have.
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
// nil if there is none (or k is noKey).
func (f *fact) find(k int32) *fact {
	if k == noKey {
		return nil
	}
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

// noKey is the key of what no fact is recorded about.
const noKey = -1

// threader holds what the facts of a graph are about: a key for each test
// and each value that more than one node reads, and scratch space for
// joins.
type threader struct {
	keys  []nodeKeys // by node id
	nkey  int32
	meets []keyMeet // by key (see meet)
	join  uint32
	buf   []int32

	contents map[string]int32 // what facts say → an id (see content)
	cbuf     []byte
	sigs     map[string]int32 // what lists of facts say → an id (see signature)
	sbuf     []int32

	// libpcap limits decide to what libpcap's optimiser infers, so that
	// the tests removed, and their loads, are libpcap's (see decide).
	libpcap bool
}

// nodeKeys are the keys of the facts about a node's test (noKey for those
// no other node reads): its outcome, its value, the plain load under its
// mask, and the load ANDed with mask & k (see node).
type nodeKeys struct{ test, val, load, set int32 }

// newThreader gives a key to each test and value of g's nodes that the
// tests of more than one node read: a fact about what only one node reads
// cannot decide another node, as no path passes a node twice.
func newThreader(g *graph) *threader {
	// A relation's tests and values have keys of their own, as in
	// libpcap's jump threading, whose value numbers tell a relation's
	// indexed loads (`ld #12; tax; ldh [x + 0]`) from the primitives'.
	type relKey struct {
		testKey
		rel bool
	}
	uses := make(map[relKey]int32)
	var rel bool
	tk := func(k testKey) relKey { return relKey{k, rel} }
	vk := func(v *val) relKey { return relKey{testKey{v: v, op: cmpValue}, rel} }
	for _, n := range g.nodes {
		if n.t == nil {
			continue
		}
		rel = n.t.rel
		uses[tk(n.key)]++
		uses[vk(n.vkey)]++
		if n.lkey != nil && n.lkey != n.vkey {
			uses[vk(n.lkey)]++
		}
		if n.setKey != nil && n.setKey != n.vkey && n.setKey != n.lkey {
			uses[vk(n.setKey)]++
		}
	}
	t := &threader{keys: make([]nodeKeys, len(g.nodes)), contents: make(map[string]int32), sigs: make(map[string]int32)}
	ids := make(map[relKey]int32)
	id := func(k relKey, ok bool) int32 {
		if !ok || uses[k] < 2 {
			return noKey
		}
		i, found := ids[k]
		if !found {
			i = t.nkey
			ids[k] = i
			t.nkey++
		}
		return i
	}
	for _, n := range g.nodes {
		if n.t == nil {
			continue
		}
		rel = n.t.rel
		t.keys[n.id] = nodeKeys{
			test: id(tk(n.key), true),
			val:  id(vk(n.vkey), true),
			load: id(vk(n.lkey), n.lkey != nil),
			set:  id(vk(n.setKey), n.setKey != nil),
		}
	}
	t.meets = make([]keyMeet, t.nkey)
	return t
}

// cmpValue is the op of the key of a fact about a value.
const cmpValue cmpOp = 0xff

// add returns f with the outcome of n's test.
func (t *threader) add(f *fact, n *node, outcome bool) *fact {
	k := t.keys[n.id]
	if k.test != noKey {
		f = f.push(fact{key: k.test, outcome: outcome})
	}
	tt := n.t
	switch {
	case tt.r != nil:
	case tt.op == cmpEq && outcome && k.val != noKey:
		f = f.push(valueFact(k.val, true, []uint32{tt.k}, nil))
	case tt.op == cmpEq && !outcome && k.val != noKey:
		var hasSet, joined bool
		var set, neq []uint32
		if old := f.find(k.val); old != nil {
			hasSet, set, neq, joined = old.hasSet, old.set(), old.neq(), old.joined
		}
		switch {
		case hasSet:
			set = slices.DeleteFunc(slices.Clone(set), func(x uint32) bool { return x == tt.k })
		case len(neq) >= maxNeq || slices.Contains(neq, tt.k):
			return f
		default:
			neq = append(slices.Clip(neq), tt.k)
		}
		c := valueFact(k.val, hasSet, set, neq)
		c.joined = joined
		f = f.push(c)
	case n.setKey != nil && !outcome && k.set != noKey:
		var neq []uint32
		if old := f.find(k.set); old != nil {
			neq = old.neq()
		}
		f = f.push(valueFact(k.set, true, []uint32{0}, neq))
	}
	return f
}

// decide returns the outcome of n's test if f determines it, and the
// fact that does.
//
// With t.libpcap, it decides only what libpcap's optimiser decides
// (optimize.c's fold_edge, in its jump threading): a test passed before,
// and an equality of a value with a constant where a true equality gave
// the value one value (a true `jeq #k` decides a `jeq` of the same value,
// no other jump). A set of values, met at a join, decides nothing:
// libpcap knows only what the edges that dominate an edge say. It does
// not decide an order or `&` test from the value (a true `ether[12:2] ==
// 0x6003` decides `ether[12:2] > 1500` for us, not for libpcap), nor a
// test of the load under a mask from the load's value: libpcap's value
// numbers tell a masked value from the load. Deciding more is right on
// every frame long enough for every load, but a decided test can make
// another one's two ways the same, which removes it and its load (thread
// skips it, merge makes its successors one): where libpcap's program
// keeps that load, it rejects a frame too short for it, which ours,
// without the load, would accept. Jump threading (optimize) decides as
// libpcap does; dropImplied, which removes a test whose load the next
// test repeats, decides all it can.
func (t *threader) decide(f *fact, n *node) (outcome, ok bool, by *fact) {
	k := t.keys[n.id]
	if c := f.find(k.test); c != nil {
		return c.outcome, true, c
	}
	tt := n.t
	if tt.r != nil {
		return false, false, nil
	}
	all := func(c *fact, m uint32) (bool, bool, *fact) {
		s := c.set()
		if len(s) == 0 {
			return false, false, nil
		}
		first := tt.op.eval(s[0]&m, tt.k)
		for _, x := range s[1:] {
			if tt.op.eval(x&m, tt.k) != first {
				return false, false, nil
			}
		}
		return first, true, c
	}
	c := f.find(k.val)
	if c != nil && c.hasSet && (tt.op == cmpEq && len(c.set()) == 1 && !c.joined || !t.libpcap) {
		return all(c, 0xffffffff)
	}
	if tt.op == cmpEq && c != nil && slices.Contains(c.neq(), tt.k) {
		return false, true, c
	}
	if n.lkey != nil && !t.libpcap {
		if c := f.find(k.load); c != nil && c.hasSet {
			return all(c, n.mask)
		}
		if n.setKey != nil {
			if c := f.find(k.set); c != nil && c.hasSet {
				return all(c, 0xffffffff)
			}
		}
	}
	return false, false, nil
}

// signature returns an id of what f says: the same for lists whose facts
// decide every test the same way (the newest fact about each key among
// the factDepth that find reads, whatever their order).
func (t *threader) signature(f *fact) int32 {
	t.join++
	t.sbuf = t.sbuf[:0]
	for i := 0; f != nil && i < factDepth; i++ {
		m := &t.meets[f.key]
		if m.join != t.join {
			*m = keyMeet{join: t.join}
			if !f.none {
				t.sbuf = append(t.sbuf, f.key, t.content(f))
			}
		}
		f = f.older
	}
	pairs := t.sbuf
	// Sort the (key, content) pairs by key: insertion sort, as they are few.
	for i := 2; i < len(pairs); i += 2 {
		for j := i; j > 0 && pairs[j-2] > pairs[j]; j -= 2 {
			pairs[j-2], pairs[j-1], pairs[j], pairs[j+1] = pairs[j], pairs[j+1], pairs[j-2], pairs[j-1]
		}
	}
	b := t.cbuf[:0]
	for _, x := range pairs {
		b = append(b, byte(x>>24), byte(x>>16), byte(x>>8), byte(x))
	}
	t.cbuf = b
	id, ok := t.sigs[string(b)]
	if !ok {
		id = int32(len(t.sigs))
		t.sigs[string(b)] = id
	}
	return id
}

// content returns an id of what c says, the same for facts about one key
// that say the same.
func (t *threader) content(c *fact) int32 {
	if c.cid != 0 {
		return c.cid
	}
	b := append(t.cbuf[:0], byte(c.nset), 0)
	if c.outcome {
		b[1] |= 1
	}
	if c.hasSet {
		b[1] |= 2
	}
	if c.joined {
		b[1] |= 4
	}
	for _, v := range c.vals {
		b = append(b, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
	}
	t.cbuf = b
	id, ok := t.contents[string(b)]
	if !ok {
		id = int32(len(t.contents) + 1)
		t.contents[string(b)] = id
	}
	c.cid = id
	return id
}

// meet returns what holds on the paths of a and on those of b: what their
// common older facts say, with each key the newer facts of either speak
// of replaced by what both say of it (the union of the values it may
// have, the values both say it does not have, an outcome both give). It
// reads at most factDepth facts of each list, once.
func (t *threader) meet(a, b *fact) *fact {
	if a == b {
		return a
	}
	common := commonFacts(a, b)
	t.join++
	t.buf = t.buf[:0]
	for side, l := range [2]*fact{a, b} {
		newer := true // l is not yet in the common list
		for i := 0; l != nil && i < factDepth; i++ {
			if l == common {
				newer = false
			}
			m := &t.meets[l.key]
			if m.join != t.join {
				*m = keyMeet{join: t.join}
			}
			if !m.found[side] {
				m.found[side] = true
				if !l.none {
					m.facts[side] = l
				}
			}
			switch {
			case newer && !m.newer:
				m.newer = true
				t.buf = append(t.buf, l.key)
			case !newer && !l.none:
				m.older = true
			}
			l = l.older
		}
	}
	r := common
	for _, k := range t.buf {
		m := &t.meets[k]
		c := meetFact(k, m.facts[0], m.facts[1])
		if c.none && !m.older {
			continue // nothing older to hide
		}
		r = r.push(c)
	}
	return r
}

// keyMeet is what meet has read about a key in a join.
type keyMeet struct {
	join  uint32   // the join this is about
	found [2]bool  // a fact about the key was read in each list
	facts [2]*fact // the newest, nil if nothing is known
	newer bool     // a list has a fact about it newer than the common list
	older bool     // the common list has one
}

// meetFact returns the fact about k that holds where x and y hold (either
// nil if nothing is known).
func meetFact(k int32, x, y *fact) fact {
	c := fact{key: k, none: true}
	switch {
	case x == nil || y == nil:
		return c
	case !x.value:
		if x.outcome == y.outcome {
			c.none, c.outcome = false, x.outcome
		}
		return c
	}
	var set, neq []uint32
	hasSet := false
	if x.hasSet && y.hasSet {
		u := slices.Clone(x.set())
		for _, v := range y.set() {
			if !slices.Contains(u, v) {
				u = append(u, v)
			}
		}
		if len(u) <= maxSet {
			hasSet, set = true, u
		}
	}
	for _, v := range y.neq() {
		if slices.Contains(x.neq(), v) {
			neq = append(neq, v)
		}
	}
	if !hasSet && len(neq) == 0 {
		return c
	}
	r := valueFact(k, hasSet, set, neq)
	r.joined = hasSet && (x.joined || y.joined || len(set) > 1)
	return r
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
