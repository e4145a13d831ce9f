package sockfilter

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/purebpf/purebpf/internal/sys"
)

// Lookup returns a copy of the value under key (bpf(2)
// BPF_MAP_LOOKUP_ELEM). A missing key gives an error matching
// ErrKeyNotExist. A per-CPU map has a value for each CPU: use LookupPerCPU,
// or LookupInto with ValueBufSize bytes.
func (m *Map) Lookup(key []byte) ([]byte, error) {
	if m.cpus != 0 {
		return nil, fmt.Errorf("lookup in map %s: a %v has a value per CPU: use LookupPerCPU", m.describe(), m.typ)
	}
	value := make([]byte, m.valueSize)
	if err := m.LookupInto(key, value); err != nil {
		return nil, err
	}
	return value, nil
}

// LookupInto copies the value under key into value, which must have
// ValueBufSize bytes (bpf(2) BPF_MAP_LOOKUP_ELEM). For a per-CPU map value
// receives each possible CPU's value in turn, each rounded up to 8 bytes.
// It does not allocate.
func (m *Map) LookupInto(key, value []byte) error {
	const op = "lookup in map"
	if err := m.checkElem(op, key, value, true); err != nil {
		return err
	}
	return m.elem(op, sys.BPF_MAP_LOOKUP_ELEM, key, value, 0)
}

// LookupPerCPU returns the values under key of a per-CPU map, one for each
// possible CPU (see PossibleCPUs), each ValueSize bytes: values[i] is the
// i-th possible CPU's.
func (m *Map) LookupPerCPU(key []byte) ([][]byte, error) {
	if m.cpus == 0 {
		return nil, fmt.Errorf("lookup in map %s: a %v has one value per key: use Lookup", m.describe(), m.typ)
	}
	buf := make([]byte, m.ValueBufSize())
	if err := m.LookupInto(key, buf); err != nil {
		return nil, err
	}
	return m.splitPerCPU(buf), nil
}

// splitPerCPU cuts a per-CPU value buffer into the CPUs' values.
func (m *Map) splitPerCPU(buf []byte) [][]byte {
	stride, n := perCPUStride(m.valueSize), int(m.valueSize)
	values := make([][]byte, m.cpus)
	for i := range values {
		values[i] = buf[i*stride : i*stride+n : i*stride+n]
	}
	return values
}

// Update writes value under key, as flags allows (bpf(2)
// BPF_MAP_UPDATE_ELEM). Value must have ValueBufSize bytes; for a per-CPU
// map see UpdatePerCPU. UpdateNoExist on a key in the map gives an error
// matching ErrKeyExist, UpdateExist on one that is not ErrKeyNotExist; a
// full Hash fails with E2BIG. It does not allocate.
func (m *Map) Update(key, value []byte, flags UpdateFlags) error {
	const op = "update map"
	if err := m.checkElem(op, key, value, true); err != nil {
		return err
	}
	if flags > UpdateExist {
		return fmt.Errorf("%s %s: unknown update flags %d", op, m.describe(), uint64(flags))
	}
	return m.elem(op, sys.BPF_MAP_UPDATE_ELEM, key, value, uint64(flags))
}

// UpdatePerCPU writes the values of a per-CPU map under key: one value of
// ValueSize bytes for each possible CPU, in order.
func (m *Map) UpdatePerCPU(key []byte, values [][]byte, flags UpdateFlags) error {
	if m.cpus == 0 {
		return fmt.Errorf("update map %s: a %v has one value per key: use Update", m.describe(), m.typ)
	}
	if len(values) != m.cpus {
		return fmt.Errorf("update map %s: %d values for %d possible CPUs", m.describe(), len(values), m.cpus)
	}
	stride := perCPUStride(m.valueSize)
	buf := make([]byte, m.ValueBufSize())
	for i, v := range values {
		if len(v) != int(m.valueSize) {
			return fmt.Errorf("update map %s: value for CPU %d has %d bytes, the map's have %d", m.describe(), i, len(v), m.valueSize)
		}
		copy(buf[i*stride:], v)
	}
	return m.Update(key, buf, flags)
}

// Delete deletes the element under key (bpf(2) BPF_MAP_DELETE_ELEM). A
// missing key gives an error matching ErrKeyNotExist. Arrays cannot
// delete: the error matches unix.EINVAL.
func (m *Map) Delete(key []byte) error {
	const op = "delete from map"
	if err := m.checkElem(op, key, nil, false); err != nil {
		return err
	}
	return m.elem(op, sys.BPF_MAP_DELETE_ELEM, key, nil, 0)
}

// NextKey returns the key that follows key in the map's order (bpf(2)
// BPF_MAP_GET_NEXT_KEY); a nil key, or one no longer in the map, gives the
// first key. After the last key the error matches ErrKeyNotExist. An
// Array's keys are its indexes in order; a hash map's order is its own,
// and elements added or deleted meanwhile may be seen twice or not at all.
func (m *Map) NextKey(key []byte) ([]byte, error) {
	next := make([]byte, m.keySize)
	if err := m.NextKeyInto(key, next); err != nil {
		return nil, err
	}
	return next, nil
}

// NextKeyInto is NextKey writing into next, which must have KeySize bytes.
// It does not allocate.
func (m *Map) NextKeyInto(key, next []byte) error {
	const op = "next key of map"
	if key != nil {
		if err := m.checkElem(op, key, nil, false); err != nil {
			return err
		}
	}
	if len(next) != int(m.keySize) {
		return fmt.Errorf("%s %s: next key buffer of %d bytes, the map's keys have %d", op, m.describe(), len(next), m.keySize)
	}
	if m.typ == RingBuf {
		return m.noElements(op)
	}
	return m.elem(op, sys.BPF_MAP_GET_NEXT_KEY, key, next, 0)
}

// checkElem checks the sizes of a key and, if withValue, a value.
func (m *Map) checkElem(op string, key, value []byte, withValue bool) error {
	if m.typ == RingBuf {
		return m.noElements(op)
	}
	if len(key) != int(m.keySize) {
		return fmt.Errorf("%s %s: key of %d bytes, the map's keys have %d", op, m.describe(), len(key), m.keySize)
	}
	if withValue && len(value) != m.ValueBufSize() {
		what := "values"
		if m.cpus != 0 {
			what = fmt.Sprintf("values for %d CPUs", m.cpus)
		}
		return fmt.Errorf("%s %s: value of %d bytes, the map's %s have %d", op, m.describe(), len(value), what, m.ValueBufSize())
	}
	return nil
}

func (m *Map) noElements(op string) error {
	return fmt.Errorf("%s %s: a ring buffer has no elements: read its records with NewRingBufReader", op, m.describe())
}

// elem makes one of the element commands on the map.
func (m *Map) elem(op string, cmd sys.Cmd, key, value []byte, flags uint64) error {
	return m.use(op, func(fd int) error {
		attr := sys.MapElemAttr{MapFD: uint32(fd), Key: sys.SlicePointer(key), Value: sys.SlicePointer(value), Flags: flags}
		if err := sys.MapElem(cmd, &attr); err != nil {
			return m.opError(op, err)
		}
		return nil
	})
}

// opError wraps an error of a map command with op and the map, mapping
// ENOENT and EEXIST to their sentinels.
func (m *Map) opError(op string, err error) error {
	switch {
	case errors.Is(err, unix.ENOENT):
		return fmt.Errorf("%s %s: %w", op, m.describe(), ErrKeyNotExist)
	case errors.Is(err, unix.EEXIST):
		return fmt.Errorf("%s %s: %w", op, m.describe(), ErrKeyExist)
	case errors.Is(err, unix.E2BIG) && m.typ != Array && m.typ != PerCPUArray:
		return fmt.Errorf("%s %s: the map is full (%d entries): %w", op, m.describe(), m.maxEntries, err)
	case errors.Is(err, unix.EPERM):
		return fmt.Errorf("%s %s: needs CAP_BPF, or the map's fd does not allow it (MapReadOnly, MapWriteOnly): %w", op, m.describe(), err)
	case errors.Is(err, errNotSupported):
		return fmt.Errorf("%s %s: a %v does not do this from user space (ENOTSUPP): %w", op, m.describe(), m.typ, err)
	}
	return fmt.Errorf("%s %s: %w", op, m.describe(), err)
}
