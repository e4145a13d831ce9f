package sockfilter

import (
	"errors"
	"fmt"
)

// MapIterator walks a map's elements with NextKey and LookupInto. Use it
// as
//
//	it := m.Iterate()
//	for it.Next() {
//		use(it.Key(), it.Value())
//	}
//	if err := it.Err(); err != nil { ... }
//
// It reuses its key and value buffers, so Key and Value are valid until
// the next call of Next. A hash map changed during the walk may yield an
// element twice or not at all; keys deleted between NextKey and the lookup
// are skipped. A walk that visits more keys than the map can hold stops
// with an error rather than run forever under churn.
type MapIterator struct {
	m           *Map
	key, next   []byte
	value       []byte
	done        bool
	visited     int
	limit       int
	err         error
	onKeyPassed bool // key holds the last key returned
}

// Iterate returns an iterator over m's elements. A RingBuf has none: its
// iterator stops at once with an error.
func (m *Map) Iterate() *MapIterator {
	return &MapIterator{
		m:     m,
		key:   make([]byte, m.keySize),
		next:  make([]byte, m.keySize),
		value: make([]byte, m.ValueBufSize()),
		limit: int(m.maxEntries) + m.cpus + 1,
	}
}

// Next moves to the next element and reports whether there is one. At the
// end of the map, or on an error, it returns false; Err tells which.
func (it *MapIterator) Next() bool {
	if it.done {
		return false
	}
	for {
		var prev []byte
		if it.onKeyPassed {
			prev = it.key
		}
		err := it.m.NextKeyInto(prev, it.next)
		if isKeyNotExist(err) {
			it.done = true
			return false
		}
		if err != nil {
			return it.fail(err)
		}
		if it.visited++; it.visited > it.limit {
			return it.fail(fmt.Errorf("iterate map %s: more than %d keys: the map changed too much during the walk", it.m.describe(), it.limit-1))
		}
		it.key, it.next = it.next, it.key
		it.onKeyPassed = true
		err = it.m.LookupInto(it.key, it.value)
		if isKeyNotExist(err) {
			continue // deleted since NextKey: move on from it
		}
		if err != nil {
			return it.fail(err)
		}
		return true
	}
}

func (it *MapIterator) fail(err error) bool {
	it.err, it.done = err, true
	return false
}

// Key returns the current element's key.
func (it *MapIterator) Key() []byte { return it.key }

// Value returns the current element's value, ValueBufSize bytes: for a
// per-CPU map each possible CPU's value in turn, rounded up to 8 bytes
// (PerCPUValues splits them).
func (it *MapIterator) Value() []byte { return it.value }

// PerCPUValues returns the current element's values of a per-CPU map, one
// for each possible CPU. They share memory with Value.
func (it *MapIterator) PerCPUValues() [][]byte {
	if it.m.cpus == 0 {
		return [][]byte{it.value}
	}
	return it.m.splitPerCPU(it.value)
}

// Err returns the error that ended the walk, or nil if it reached the end.
func (it *MapIterator) Err() error { return it.err }

func isKeyNotExist(err error) bool { return err != nil && errors.Is(err, ErrKeyNotExist) }
