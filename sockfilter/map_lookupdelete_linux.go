package sockfilter

import "github.com/purebpf/purebpf/internal/sys"

// bpfMapLookupAndDeleteElem is BPF_MAP_LOOKUP_AND_DELETE_ELEM
// (include/uapi/linux/bpf.h).
const bpfMapLookupAndDeleteElem sys.Cmd = 21

// LookupAndDelete copies the value under key into value, which must have
// ValueBufSize bytes, and deletes the element, in one step (bpf(2)
// BPF_MAP_LOOKUP_AND_DELETE_ELEM; Linux 5.14 for hash maps, their LRU and
// per-CPU variants included): a program that updates the element
// meanwhile either does so before, and its update is in value, or after,
// on an element of its own. A missing key gives an error matching
// ErrKeyNotExist; a kernel or map type without the command, one matching
// unix.EINVAL or unix.ENOTSUPP. It does not allocate.
func (m *Map) LookupAndDelete(key, value []byte) error {
	const op = "lookup and delete in map"
	if err := m.checkElem(op, key, value, true); err != nil {
		return err
	}
	return m.elem(op, bpfMapLookupAndDeleteElem, key, value, 0)
}
