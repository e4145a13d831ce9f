package vm

import (
	"bytes"
	"hash/maphash"
)

// hashIndex finds the elements of a hash map by key: chains of element
// indexes from the buckets of a power-of-two table, newest first, as the
// kernel's hlists are; and, but for the LRU maps, which keep their own
// lists, the free elements.
type hashIndex struct {
	seed    maphash.Seed
	buckets []int32 // the first element of each bucket's chain, -1 for none
	next    []int32 // the element after each in its chain
	in      []bool  // in the table
	free    []int32 // a stack of free elements
	extra   int32   // Hash: the element the next update of an existing key takes
}

func newHashIndex(elems, maxEntries int, extra bool) *hashIndex {
	n := 1
	for n < maxEntries {
		n <<= 1
	}
	h := &hashIndex{seed: maphash.MakeSeed(), buckets: make([]int32, n), next: make([]int32, elems),
		in: make([]bool, elems), extra: -1}
	for i := range h.buckets {
		h.buckets[i] = -1
	}
	for e := maxEntries - 1; e >= 0; e-- {
		h.free = append(h.free, int32(e))
	}
	if extra {
		h.extra = int32(maxEntries)
	}
	return h
}

func (h *hashIndex) bucket(key []byte) int {
	return int(maphash.Bytes(h.seed, key) & uint64(len(h.buckets)-1))
}

// find returns the element under key, or -1.
func (m *Map) find(key []byte) int {
	h := m.hash
	for e := h.buckets[h.bucket(key)]; e >= 0; e = h.next[e] {
		if bytes.Equal(m.keyAt(int(e)), key) {
			return int(e)
		}
	}
	return -1
}

// link puts element e, whose key is written, at the head of its chain.
func (m *Map) link(e int) {
	h := m.hash
	b := h.bucket(m.keyAt(e))
	h.next[e], h.buckets[b], h.in[e] = h.buckets[b], int32(e), true
}

// unlink takes element e out of the table, and reports whether it was in
// it.
func (m *Map) unlink(e int) bool {
	h := m.hash
	if !h.in[e] {
		return false
	}
	for p := &h.buckets[h.bucket(m.keyAt(e))]; *p >= 0; p = &h.next[*p] {
		if int(*p) == e {
			*p, h.in[e] = h.next[e], false
			return true
		}
	}
	return false
}

// The errnos map operations return, as a helper returns them: negated in
// r0.
const (
	errENOENT = 2
	errE2BIG  = 7
	errENOMEM = 12
	errEEXIST = 17
	errEINVAL = 22
	errEAGAIN = 11
)

// fLock is BPF_F_LOCK, which the VM's maps, without spin locks, refuse as
// the kernel refuses it for them.
const fLock = 4

// hashUpdate writes an element of a hash map, as bpf_map_update_elem
// does from a program on cpu, or BPF_MAP_UPDATE_ELEM from user space with
// values a value for each CPU (all). It returns an errno or 0.
func (m *Map) hashUpdate(key, value []byte, flags uint64, cpu int, all bool) int {
	switch m.spec.Type {
	case LRUHash:
		return m.lruUpdate(key, value, flags, cpu)
	case LRUPerCPUHash:
		return m.lruPerCPUUpdate(key, value, flags, cpu, all)
	case Hash:
		if flags&^fLock > uint64(UpdateExist) || flags&fLock != 0 {
			return errEINVAL
		}
	default: // PerCPUHash
		if flags > uint64(UpdateExist) {
			return errEINVAL
		}
	}
	old := m.find(key)
	if errno := checkUpdate(old >= 0, flags); errno != 0 {
		return errno
	}
	h := m.hash
	if m.spec.Type == PerCPUHash && old >= 0 {
		m.copyValues(old, value, cpu, all) // in place
		return 0
	}
	var e int
	switch {
	case old >= 0: // Hash: the extra element takes the value, the old one is the next extra
		e, h.extra = int(h.extra), int32(old)
	case len(h.free) == 0:
		return errE2BIG
	default:
		e = int(h.free[len(h.free)-1])
		h.free = h.free[:len(h.free)-1]
	}
	copy(m.keyAt(e), key)
	m.initValues(e, value, cpu, all)
	m.link(e)
	if old >= 0 {
		m.unlink(old)
	}
	return 0
}

// checkUpdate is check_flags: the errno an update with flags gives when
// the key is in the map or not.
func checkUpdate(exists bool, flags uint64) int {
	switch f := flags &^ fLock; {
	case exists && f == uint64(UpdateNoExist):
		return errEEXIST
	case !exists && f == uint64(UpdateExist):
		return errENOENT
	}
	return 0
}

// initValues writes the values of a new element e: value for cpu and
// zeros for the others from a program (pcpu_init_value), every CPU's from
// values when all.
func (m *Map) initValues(e int, value []byte, cpu int, all bool) {
	if !m.perCPU() || all {
		m.copyValues(e, value, cpu, all)
		return
	}
	for c := range m.cpus {
		if c == cpu {
			copy(m.valueAt(e, c), value)
		} else {
			clear(m.valueAt(e, c))
		}
	}
}

// copyValues writes the value of element e for cpu, or every CPU's from
// values (each rounded up to 8 bytes) when all.
func (m *Map) copyValues(e int, value []byte, cpu int, all bool) {
	if !m.perCPU() {
		copy(m.valueAt(e, 0), value)
		return
	}
	if !all {
		copy(m.valueAt(e, cpu), value)
		return
	}
	for c := range m.cpus {
		copy(m.valueAt(e, c), value[c*m.stride:])
	}
}

// hashDelete deletes the element under key, and returns an errno or 0.
func (m *Map) hashDelete(key []byte) int {
	e := m.find(key)
	if e < 0 {
		return errENOENT
	}
	m.unlink(e)
	if m.lru != nil {
		m.lru.pushFree(e)
	} else {
		m.hash.free = append(m.hash.free, int32(e))
	}
	return 0
}

// lruUpdate is the LRU hash map's update (htab_lru_map_update_elem): it
// takes a free element first, evicting others if it must, whether the
// update then succeeds or not.
func (m *Map) lruUpdate(key, value []byte, flags uint64, cpu int) int {
	if flags > uint64(UpdateExist) {
		return errEINVAL
	}
	e := m.lru.popFree(cpu, m.unlink)
	if e < 0 {
		return errENOMEM
	}
	copy(m.keyAt(e), key)
	copy(m.valueAt(e, 0), value)
	old := m.find(key)
	if errno := checkUpdate(old >= 0, flags); errno != 0 {
		m.lru.pushFree(e)
		return errno
	}
	m.link(e)
	if old >= 0 {
		m.lru.setRef(e)
		m.unlink(old)
		m.lru.pushFree(old)
	}
	return 0
}

// lruPerCPUUpdate is the LRU per-CPU hash map's update
// (__htab_lru_percpu_map_update_elem): an existing element's values change
// in place; an update that may create one takes a free element first.
func (m *Map) lruPerCPUUpdate(key, value []byte, flags uint64, cpu int, all bool) int {
	if flags > uint64(UpdateExist) {
		return errEINVAL
	}
	e := -1
	if flags != uint64(UpdateExist) {
		if e = m.lru.popFree(cpu, m.unlink); e < 0 {
			return errENOMEM
		}
		copy(m.keyAt(e), key)
	}
	old := m.find(key)
	errno := checkUpdate(old >= 0, flags)
	switch {
	case errno != 0:
	case old >= 0:
		m.lru.setRef(old)
		m.copyValues(old, value, cpu, all)
	default:
		m.initValues(e, value, cpu, all)
		m.link(e)
		e = -1
	}
	if e >= 0 {
		m.lru.pushFree(e)
	}
	return errno
}

// nextKey returns the element after the one under key in the map's order
// (htab_map_get_next_key): the rest of its chain, then the buckets after
// its own; a key not in the map starts from the first bucket. It returns
// -1 after the last.
func (m *Map) nextKey(key []byte) int {
	h := m.hash
	b := 0
	if key != nil {
		if e := m.find(key); e >= 0 {
			if n := h.next[e]; n >= 0 {
				return int(n)
			}
			b = h.bucket(key) + 1
		}
	}
	for ; b < len(h.buckets); b++ {
		if e := h.buckets[b]; e >= 0 {
			return int(e)
		}
	}
	return -1
}
