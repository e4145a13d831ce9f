package sockfilter

import (
	"errors"
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/purebpf/purebpf/internal/sys"
)

// errNotSupported is ENOTSUPP, the kernel-internal errno 524 that map
// types without batch operations return.
const errNotSupported = syscall.Errno(524)

// LookupBatch copies the next elements of the map after cursor c into keys
// and values (bpf(2) BPF_MAP_LOOKUP_BATCH, Linux 5.6): keys holds a whole
// number of keys, KeySize bytes each, and values as many values,
// ValueBufSize bytes each. It returns how many elements it copied. Past
// the map's last element the error matches ErrKeyNotExist, and n counts
// the last elements copied, possibly 0. A hash map is read a bucket at a
// time: when keys has no room for a whole bucket the error matches
// unix.ENOSPC; give it room for more.
//
// Batches read many elements with one system call where NextKey and
// LookupInto make two per element; like them, they see a map that
// programs change meanwhile as it is at each moment.
func (m *Map) LookupBatch(c *MapCursor, keys, values []byte) (n int, err error) {
	return m.lookupBatch("lookup batch in map", sys.BPF_MAP_LOOKUP_BATCH, c, keys, values)
}

// LookupAndDeleteBatch is LookupBatch that also deletes the elements it
// copies (BPF_MAP_LOOKUP_AND_DELETE_BATCH, Linux 5.6): hash maps only.
func (m *Map) LookupAndDeleteBatch(c *MapCursor, keys, values []byte) (n int, err error) {
	return m.lookupBatch("lookup and delete batch in map", sys.BPF_MAP_LOOKUP_AND_DELETE_BATCH, c, keys, values)
}

func (m *Map) lookupBatch(op string, cmd sys.Cmd, c *MapCursor, keys, values []byte) (int, error) {
	if c == nil {
		return 0, fmt.Errorf("%s %s: cursor is nil", op, m.describe())
	}
	if c.m != nil && c.m != m {
		return 0, fmt.Errorf("%s %s: the cursor is another map's", op, m.describe())
	}
	count, err := m.checkBatch(op, keys, values, true)
	if err != nil {
		return 0, err
	}
	if c.done {
		return 0, fmt.Errorf("%s %s: %w", op, m.describe(), ErrKeyNotExist)
	}
	if c.m == nil {
		// Hash maps' tokens are u32 bucket indexes, arrays' are keys.
		size := max(int(m.keySize), 4)
		c.m, c.in, c.out = m, make([]byte, size), make([]byte, size)
	}
	attr := sys.MapBatchAttr{
		OutBatch: sys.SlicePointer(c.out),
		Keys:     sys.SlicePointer(keys),
		Values:   sys.SlicePointer(values),
		Count:    uint32(count),
	}
	if c.started {
		attr.InBatch = sys.SlicePointer(c.in)
	}
	err = m.batch(op, cmd, &attr)
	n := int(attr.Count)
	switch {
	case err == nil:
		c.started = true
		c.in, c.out = c.out, c.in
		return n, nil
	case errors.Is(err, ErrKeyNotExist):
		c.done = true
		return n, err
	case errors.Is(err, unix.ENOSPC):
		return n, fmt.Errorf("%w: a bucket of the hash map holds more than the %d elements the buffers have room for", err, count)
	}
	return n, err
}

// UpdateBatch writes the elements whose keys and values are in keys and
// values, laid out as for LookupBatch, creating them or overwriting them
// (bpf(2) BPF_MAP_UPDATE_BATCH, Linux 5.6; the kernel's batch update has
// no UpdateNoExist or UpdateExist). It returns how many it wrote, also on
// error: the elements before the one that failed.
func (m *Map) UpdateBatch(keys, values []byte) (n int, err error) {
	const op = "update batch in map"
	count, err := m.checkBatch(op, keys, values, true)
	if err != nil {
		return 0, err
	}
	attr := sys.MapBatchAttr{Keys: sys.SlicePointer(keys), Values: sys.SlicePointer(values), Count: uint32(count)}
	err = m.batch(op, sys.BPF_MAP_UPDATE_BATCH, &attr)
	return int(attr.Count), err
}

// DeleteBatch deletes the elements whose keys are in keys, KeySize bytes
// each (bpf(2) BPF_MAP_DELETE_BATCH, Linux 5.6): hash maps only. It
// returns how many it deleted, also on error; a missing key stops it with
// an error matching ErrKeyNotExist.
func (m *Map) DeleteBatch(keys []byte) (n int, err error) {
	const op = "delete batch in map"
	count, err := m.checkBatch(op, keys, nil, false)
	if err != nil {
		return 0, err
	}
	attr := sys.MapBatchAttr{Keys: sys.SlicePointer(keys), Count: uint32(count)}
	err = m.batch(op, sys.BPF_MAP_DELETE_BATCH, &attr)
	return int(attr.Count), err
}

// checkBatch checks the buffers of a batch and returns how many elements
// they hold.
func (m *Map) checkBatch(op string, keys, values []byte, withValues bool) (int, error) {
	if m.typ == RingBuf {
		return 0, m.noElements(op)
	}
	if m.keySize == 0 || len(keys)%int(m.keySize) != 0 || len(keys) == 0 {
		return 0, fmt.Errorf("%s %s: keys buffer of %d bytes is not a positive multiple of the key size %d", op, m.describe(), len(keys), m.keySize)
	}
	n := len(keys) / int(m.keySize)
	if withValues && len(values) != n*m.ValueBufSize() {
		return 0, fmt.Errorf("%s %s: values buffer of %d bytes for %d keys: want %d (%d bytes a value)", op, m.describe(), len(values), n, n*m.ValueBufSize(), m.ValueBufSize())
	}
	return n, nil
}

// batch makes a batch command on the map.
func (m *Map) batch(op string, cmd sys.Cmd, attr *sys.MapBatchAttr) error {
	return m.use(op, func(fd int) error {
		attr.MapFD = uint32(fd)
		requested := attr.Count
		err := sys.MapBatch(cmd, attr)
		if err != nil && !errors.Is(err, unix.ENOENT) && attr.Count == requested {
			// The kernel writes the count only once it has gone through
			// elements; an element that fails stops it short of requested.
			attr.Count = 0
		}
		switch {
		case err == nil:
			return nil
		case errors.Is(err, errNotSupported), errors.Is(err, unix.EINVAL) && cmd != sys.BPF_MAP_UPDATE_BATCH:
			return fmt.Errorf("%s %s: a %v has no such batch operation (arrays and hash maps have them from Linux 5.6; only hash maps delete): %w", op, m.describe(), m.typ, err)
		}
		return m.opError(op, err)
	})
}
