package vm

import (
	"encoding/binary"
	"fmt"
	"iter"
	"syscall"
)

// errnoOf returns the error of an errno a map operation gave.
func (m *Map) errnoOf(op string, errno int) error {
	switch errno {
	case 0:
		return nil
	case errENOENT:
		return fmt.Errorf("%s %s: %w", op, m.describe(), ErrKeyNotExist)
	case errEEXIST:
		return fmt.Errorf("%s %s: %w", op, m.describe(), ErrKeyExist)
	}
	return fmt.Errorf("%s %s: %w", op, m.describe(), syscall.Errno(errno))
}

// checkKey checks a key given to a map operation.
func (m *Map) checkKey(op string, key []byte) error {
	switch {
	case m.ring != nil:
		return fmt.Errorf("%s %s: %w", op, m.describe(), errNoRing)
	case len(key) != int(m.spec.KeySize):
		return fmt.Errorf("%s %s: key of %d bytes, the map's have %d", op, m.describe(), len(key), m.spec.KeySize)
	}
	return nil
}

// element returns the element under key, or -1: the index of an array.
func (m *Map) element(key []byte) int {
	if m.isArray() {
		if i := binary.LittleEndian.Uint32(key); i < m.spec.MaxEntries {
			return int(i)
		}
		return -1
	}
	return m.find(key)
}

// Lookup returns a copy of the value under key, as BPF_MAP_LOOKUP_ELEM
// does; a missing key gives an error matching ErrKeyNotExist. A per-CPU
// map has a value for each CPU: use LookupPerCPU. Unlike a program's
// lookup, it does not mark an LRU map's element used.
func (m *Map) Lookup(key []byte) ([]byte, error) {
	const op = "lookup in map"
	if m.perCPU() {
		return nil, fmt.Errorf("%s %s: a %v has a value per CPU: use LookupPerCPU", op, m.describe(), m.spec.Type)
	}
	if err := m.checkKey(op, key); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.element(key)
	if e < 0 {
		return nil, m.errnoOf(op, errENOENT)
	}
	return append([]byte(nil), m.valueAt(e, 0)...), nil
}

// LookupPerCPU returns copies of the values under key of a per-CPU map,
// values[c] being CPU c's.
func (m *Map) LookupPerCPU(key []byte) ([][]byte, error) {
	const op = "lookup in map"
	if !m.perCPU() {
		return nil, fmt.Errorf("%s %s: a %v has one value per key: use Lookup", op, m.describe(), m.spec.Type)
	}
	if err := m.checkKey(op, key); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.element(key)
	if e < 0 {
		return nil, m.errnoOf(op, errENOENT)
	}
	values := make([][]byte, m.cpus)
	for c := range values {
		values[c] = append([]byte(nil), m.valueAt(e, c)...)
	}
	return values, nil
}

// Update writes value under key as flags allow, as BPF_MAP_UPDATE_ELEM
// does: UpdateNoExist on a key in the map gives an error matching
// ErrKeyExist, UpdateExist on one that is not ErrKeyNotExist; a full Hash
// fails with syscall.E2BIG, an array's index out of range too. An LRU map
// evicts as it must. For a per-CPU map see UpdatePerCPU.
func (m *Map) Update(key, value []byte, flags UpdateFlags) error {
	const op = "update map"
	if m.perCPU() {
		return fmt.Errorf("%s %s: a %v has a value per CPU: use UpdatePerCPU", op, m.describe(), m.spec.Type)
	}
	if err := m.checkValue(op, key, value); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.errnoOf(op, m.update(key, value, uint64(flags), 0, true))
}

// UpdatePerCPU writes the values of a per-CPU map under key, values[c]
// being CPU c's, as flags allow (see Update).
func (m *Map) UpdatePerCPU(key []byte, values [][]byte, flags UpdateFlags) error {
	const op = "update map"
	if !m.perCPU() {
		return fmt.Errorf("%s %s: a %v has one value per key: use Update", op, m.describe(), m.spec.Type)
	}
	if len(values) != m.cpus {
		return fmt.Errorf("%s %s: %d values for %d CPUs", op, m.describe(), len(values), m.cpus)
	}
	buf := make([]byte, m.cpus*m.stride)
	for c, v := range values {
		if err := m.checkValue(op, key, v); err != nil {
			return fmt.Errorf("%w (CPU %d)", err, c)
		}
		copy(buf[c*m.stride:], v)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.errnoOf(op, m.update(key, buf, uint64(flags), 0, true))
}

func (m *Map) checkValue(op string, key, value []byte) error {
	if err := m.checkKey(op, key); err != nil {
		return err
	}
	if len(value) != int(m.spec.ValueSize) {
		return fmt.Errorf("%s %s: value of %d bytes, the map's have %d", op, m.describe(), len(value), m.spec.ValueSize)
	}
	return nil
}

// update is the update of user space (all: value holds every CPU's) and
// of programs on cpu, with m.mu held. It returns an errno or 0.
func (m *Map) update(key, value []byte, flags uint64, cpu int, all bool) int {
	if !m.isArray() {
		return m.hashUpdate(key, value, flags, cpu, all)
	}
	// array_map_update_elem
	switch i := binary.LittleEndian.Uint32(key); {
	case flags&^fLock > uint64(UpdateExist):
		return errEINVAL
	case i >= m.spec.MaxEntries:
		return errE2BIG
	case flags&uint64(UpdateNoExist) != 0:
		return errEEXIST
	case flags&fLock != 0:
		return errEINVAL
	default:
		m.copyValues(int(i), value, cpu, all)
	}
	return 0
}

// Delete deletes the element under key, as BPF_MAP_DELETE_ELEM does. A
// missing key gives an error matching ErrKeyNotExist; an array's elements
// cannot go, which is syscall.EINVAL.
func (m *Map) Delete(key []byte) error {
	const op = "delete from map"
	if err := m.checkKey(op, key); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.errnoOf(op, m.delete(key))
}

func (m *Map) delete(key []byte) int {
	if m.isArray() {
		return errEINVAL
	}
	return m.hashDelete(key)
}

// NextKey returns the key after key in the map's order, as
// BPF_MAP_GET_NEXT_KEY does; a nil key, or one not in the map, gives the
// first. After the last key the error matches ErrKeyNotExist. An array's
// keys are its indexes; a hash map's order is its own.
func (m *Map) NextKey(key []byte) ([]byte, error) {
	const op = "next key of map"
	if key != nil {
		if err := m.checkKey(op, key); err != nil {
			return nil, err
		}
	} else if m.ring != nil {
		return nil, fmt.Errorf("%s %s: %w", op, m.describe(), errNoRing)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.isArray() {
		next := uint32(0)
		if key != nil {
			if i := binary.LittleEndian.Uint32(key); i < m.spec.MaxEntries {
				if i == m.spec.MaxEntries-1 {
					return nil, m.errnoOf(op, errENOENT)
				}
				next = i + 1
			}
		}
		return binary.LittleEndian.AppendUint32(nil, next), nil
	}
	e := m.nextKey(key)
	if e < 0 {
		return nil, m.errnoOf(op, errENOENT)
	}
	return append([]byte(nil), m.keyAt(e)...), nil
}

// All returns the keys and values of the map, in NextKey's order, as
// copies; a per-CPU map's values are its CPUs' one after the other, each
// rounded up to 8 bytes. A ring buffer has none.
func (m *Map) All() iter.Seq2[[]byte, []byte] {
	return func(yield func(key, value []byte) bool) {
		if m.ring != nil {
			return
		}
		var key []byte
		for {
			next, err := m.NextKey(key)
			if err != nil {
				return
			}
			m.mu.Lock()
			e := m.element(next)
			var value []byte
			if e >= 0 {
				for c := range m.values() {
					value = append(value, m.valueAt(e, c)...)
					value = append(value, make([]byte, m.stride-int(m.spec.ValueSize))...)
				}
				if !m.perCPU() {
					value = value[:m.spec.ValueSize]
				}
			}
			m.mu.Unlock()
			if e >= 0 && !yield(next, value) {
				return
			}
			key = next
		}
	}
}

// values returns how many values an element holds.
func (m *Map) values() int {
	if m.perCPU() {
		return m.cpus
	}
	return 1
}

// Len returns the number of elements in the map: MaxEntries for an
// array, 0 for a ring buffer.
func (m *Map) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.ring != nil:
		return 0
	case m.isArray():
		return int(m.spec.MaxEntries)
	}
	n := 0
	for _, in := range m.hash.in {
		if in {
			n++
		}
	}
	return n
}

// NextRecord returns the next record programs submitted to a ring buffer,
// in the order they reserved them, skipping those they discarded, or
// false when there is none (yet: one still reserved holds those after
// it). The record is the ring's memory, valid until the next call, which
// gives its room back to the programs; it allocates nothing.
func (m *Map) NextRecord() ([]byte, bool) {
	if m.ring == nil {
		return nil, false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ring.next()
}

// Records returns the records NextRecord would, until there is none. A
// record is valid until the loop goes on.
func (m *Map) Records() iter.Seq[[]byte] {
	return func(yield func([]byte) bool) {
		for {
			rec, ok := m.NextRecord()
			if !ok || !yield(rec) {
				return
			}
		}
	}
}
