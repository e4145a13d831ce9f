package vm

// lru is the eviction state of an LRU hash map, after the kernel's
// (kernel/bpf/bpf_lru_list.c), so that a program and a test see the same
// elements evicted as in the kernel on the same CPU:
//
//   - with a common LRU, an active, an inactive and a free list, and on
//     each CPU a local free list and a list of elements added since the
//     last flush (pending). A CPU takes free elements from its local list,
//     refilled, when empty, with up to target free elements (MaxEntries /
//     CPUs / 2, from 1 to 128) at once: the pending ones are flushed to
//     the active list (those referenced) or the inactive one, both lists
//     rotated (referenced elements move to the head of the active list, an
//     active list longer than the inactive one loses its unreferenced tail
//     to it), free elements taken, and then as many as are missing evicted
//     from the tail of the inactive list, skipping referenced elements,
//     or, if none is, the tail of the inactive list (or of the active
//     one) whatever its reference; last, a CPU steals from the local lists
//     of the others, round robin.
//   - with MapNoCommonLRU, the three lists on each CPU, each with its
//     share of the elements, which evicts 4 at a time.
//
// A lookup by a program marks an element referenced; one from user space
// does not. What the VM does not reproduce: which free element takes a new
// key (a stale value pointer sees other bytes than in the kernel), and the
// effects of CPUs running at once, for a VM runs on one CPU at a time.
type lru struct {
	// The lists are rings of element indexes through prev and next, whose
	// heads are the indexes from len(elements) up.
	prev, next []int32
	typ        []uint8
	ref        []bool
	cpu        []uint16
	lists      []lruList // the common one, or one for each CPU
	local      []localList
	percpu     bool
	nrScans    int
	targetFree int
}

// The lists an element may be on.
const (
	lruActive uint8 = iota
	lruInactive
	lruFree
	lruLocalFree
	lruLocalPending
)

// lruList is struct bpf_lru_list: the active, inactive and free lists.
type lruList struct {
	head  [3]int32
	count [2]int // active, inactive
	nir   int32  // next_inactive_rotation
}

// localList is a CPU's struct bpf_lru_locallist.
type localList struct {
	free, pending int32
	nextSteal     int
}

// LRU tuning of the kernel.
const (
	localFreeTarget  = 128 // LOCAL_FREE_TARGET, LOCAL_NR_SCANS
	percpuFreeTarget = 4   // PERCPU_FREE_TARGET, PERCPU_NR_SCANS
)

// newLRU returns the LRU state of n elements, all free, for cpus CPUs.
func newLRU(n, cpus int, percpu bool) *lru {
	l := &lru{typ: make([]uint8, n), ref: make([]bool, n), cpu: make([]uint16, n), percpu: percpu}
	heads := n
	newHead := func() int32 {
		heads++
		return int32(heads - 1)
	}
	lists, locals := 1, cpus
	if percpu {
		lists, locals = cpus, 0
	}
	for range lists {
		ll := lruList{head: [3]int32{newHead(), newHead(), newHead()}}
		ll.nir = ll.head[lruInactive]
		l.lists = append(l.lists, ll)
	}
	for c := range locals {
		l.local = append(l.local, localList{free: newHead(), pending: newHead(), nextSteal: c})
	}
	l.prev, l.next = make([]int32, heads), make([]int32, heads)
	for h := n; h < heads; h++ {
		l.prev[h], l.next[h] = int32(h), int32(h)
	}
	if percpu {
		// Each CPU's list gets its share, in order.
		l.nrScans = percpuFreeTarget
		share, e := n/cpus, 0
		for c := 0; c < cpus && e < n; c++ {
			for range share {
				l.typ[e], l.cpu[e] = lruFree, uint16(c)
				l.add(int32(e), l.lists[c].head[lruFree])
				e++
			}
		}
		return l
	}
	l.nrScans = localFreeTarget
	for e := range n {
		l.typ[e] = lruFree
		l.add(int32(e), l.lists[0].head[lruFree])
	}
	l.targetFree = min(max(n/cpus/2, 1), localFreeTarget)
	return l
}

// List primitives: add puts x after h (at the head of h's list).
func (l *lru) add(x, h int32) {
	n := l.next[h]
	l.prev[x], l.next[x], l.prev[n], l.next[h] = h, n, x, x
}

func (l *lru) del(x int32) {
	p, n := l.prev[x], l.next[x]
	l.next[p], l.prev[n] = n, p
}

func (l *lru) moveTo(x, h int32) {
	l.del(x)
	l.add(x, h)
}

func (l *lru) empty(h int32) bool { return l.next[h] == h }

func (l *lru) setRef(e int) { l.ref[e] = true }

func (ll *lruList) countAdd(t uint8, d int) {
	if t < lruFree {
		ll.count[t] += d
	}
}

// moveToFree moves x from one of ll's lists to the free list at h, of
// type t (__bpf_lru_node_move_to_free).
func (l *lru) moveToFree(ll *lruList, x, h int32, t uint8) {
	if x == ll.nir {
		ll.nir = l.prev[x]
	}
	ll.countAdd(l.typ[x], -1)
	l.typ[x] = t
	l.moveTo(x, h)
}

// moveIn moves x from a local list to ll's list t (__bpf_lru_node_move_in).
func (l *lru) moveIn(ll *lruList, x int32, t uint8) {
	ll.countAdd(t, 1)
	l.typ[x], l.ref[x] = t, false
	l.moveTo(x, ll.head[t])
}

// move moves x between or within ll's lists (__bpf_lru_node_move).
func (l *lru) move(ll *lruList, x int32, t uint8) {
	if l.typ[x] != t {
		ll.countAdd(l.typ[x], -1)
		ll.countAdd(t, 1)
		l.typ[x] = t
	}
	l.ref[x] = false
	if x == ll.nir {
		ll.nir = l.prev[x]
	}
	l.moveTo(x, ll.head[t])
}

// rotate rotates the active list when it is longer than the inactive one,
// and the inactive list always.
func (l *lru) rotate(ll *lruList) {
	if ll.count[lruInactive] < ll.count[lruActive] {
		active := ll.head[lruActive]
		first := l.next[active]
		for x, i := l.prev[active], 0; x != active; {
			p := l.prev[x]
			if l.ref[x] {
				l.move(ll, x, lruActive)
			} else {
				l.move(ll, x, lruInactive)
			}
			if i++; i == l.nrScans || x == first {
				break
			}
			x = p
		}
	}
	inactive := ll.head[lruInactive]
	if l.empty(inactive) {
		return
	}
	last := l.next[ll.nir]
	if last == inactive {
		last = l.next[last]
	}
	cur, next := ll.nir, inactive
	for i := 0; i < l.nrScans; {
		if cur == inactive {
			cur = l.prev[cur]
			continue
		}
		next = l.prev[cur]
		if l.ref[cur] {
			l.move(ll, cur, lruActive)
		}
		if cur == last {
			break
		}
		cur = next
		i++
	}
	ll.nir = next
}

// shrink evicts up to want elements from the tail of ll's inactive list to
// the free list at h, as type t, through evict (which takes an element out
// of the hash table and reports whether it was there); if none can go, it
// evicts one whatever its reference. It returns how many it freed.
func (l *lru) shrink(ll *lruList, want int, h int32, t uint8, evict func(int) bool) int {
	inactive := ll.head[lruInactive]
	freed := 0
	for x, i := l.prev[inactive], 0; x != inactive; {
		p := l.prev[x]
		if l.ref[x] {
			l.move(ll, x, lruActive)
		} else if evict(int(x)) {
			l.moveToFree(ll, x, h, t)
			if freed++; freed == want {
				break
			}
		}
		if i++; i == l.nrScans {
			break
		}
		x = p
	}
	if freed > 0 {
		return freed
	}
	force := inactive
	if l.empty(inactive) {
		force = ll.head[lruActive]
	}
	for x := l.prev[force]; x != force; x = l.prev[x] {
		if evict(int(x)) {
			l.moveToFree(ll, x, h, t)
			return 1
		}
	}
	return 0
}

// popFree takes a free element for a new key on cpu, evicting others
// through evict if it must, or returns -1 (bpf_lru_pop_free).
func (l *lru) popFree(cpu int, evict func(int) bool) int {
	if l.percpu {
		ll := &l.lists[cpu]
		l.rotate(ll)
		free := ll.head[lruFree]
		if l.empty(free) {
			l.shrink(ll, percpuFreeTarget, free, lruFree, evict)
		}
		if l.empty(free) {
			return -1
		}
		x := l.next[free]
		l.move(ll, x, lruInactive)
		return int(x)
	}
	loc := &l.local[cpu]
	x := l.popLocalFree(loc)
	if x < 0 {
		l.refill(loc, evict)
		x = l.popLocalFree(loc)
	}
	if x < 0 {
		// Steal from the CPUs' local lists, round robin.
		first := loc.nextSteal
		s := first
		for {
			v := &l.local[s]
			if x = l.popLocalFree(v); x < 0 {
				x = l.popPending(v, evict)
			}
			s = (s + 1) % len(l.local)
			if x >= 0 || s == first {
				break
			}
		}
		loc.nextSteal = s
		if x < 0 {
			return -1
		}
	}
	l.cpu[x], l.typ[x], l.ref[x] = uint16(cpu), lruLocalPending, false
	l.add(x, loc.pending)
	return int(x)
}

// refill flushes loc's pending elements to the common lists, rotates them
// and moves up to targetFree free elements to loc, evicting those missing
// (bpf_lru_list_pop_free_to_local).
func (l *lru) refill(loc *localList, evict func(int) bool) {
	ll := &l.lists[0]
	for x := l.prev[loc.pending]; x != loc.pending; {
		p := l.prev[x]
		if l.ref[x] {
			l.moveIn(ll, x, lruActive)
		} else {
			l.moveIn(ll, x, lruInactive)
		}
		x = p
	}
	l.rotate(ll)
	free, n := ll.head[lruFree], 0
	for x := l.next[free]; x != free && n < l.targetFree; {
		nx := l.next[x]
		l.moveToFree(ll, x, loc.free, lruLocalFree)
		n++
		x = nx
	}
	if n < l.targetFree {
		l.shrink(ll, l.targetFree-n, loc.free, lruLocalFree, evict)
	}
}

func (l *lru) popLocalFree(loc *localList) int32 {
	x := l.next[loc.free]
	if x == loc.free {
		return -1
	}
	l.del(x)
	return x
}

// popPending takes the oldest unreferenced element of loc's pending list
// that evict takes out of the table, or, failing that, the oldest it
// takes out.
func (l *lru) popPending(loc *localList, evict func(int) bool) int32 {
	for _, force := range []bool{false, true} {
		for x := l.prev[loc.pending]; x != loc.pending; x = l.prev[x] {
			if (!l.ref[x] || force) && evict(int(x)) {
				l.del(x)
				return x
			}
		}
	}
	return -1
}

// pushFree returns element e, out of the hash table, to the free
// elements (bpf_lru_push_free).
func (l *lru) pushFree(e int) {
	x := int32(e)
	switch {
	case l.percpu:
		l.move(&l.lists[l.cpu[x]], x, lruFree)
	case l.typ[x] == lruLocalPending:
		loc := &l.local[l.cpu[x]]
		l.typ[x], l.ref[x] = lruLocalFree, false
		l.moveTo(x, loc.free)
	case l.typ[x] != lruFree && l.typ[x] != lruLocalFree:
		l.move(&l.lists[0], x, lruFree)
	}
}
