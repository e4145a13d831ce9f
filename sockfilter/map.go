package sockfilter

import (
	"strconv"
	"syscall"
)

// MapType is the kind of a BPF map (enum bpf_map_type in linux/bpf.h).
// See Documentation/bpf/maps.rst and bpf(2).
type MapType uint32

// The map types purebpf creates. The kernel version is the first that has
// the type.
const (
	// Array is BPF_MAP_TYPE_ARRAY (Linux 3.19): MaxEntries values indexed
	// by a 4-byte key from 0, all present and zero from the start; they
	// cannot be deleted.
	Array MapType = 2
	// Hash is BPF_MAP_TYPE_HASH (Linux 3.19): up to MaxEntries elements
	// under keys of KeySize bytes.
	Hash MapType = 1
	// LRUHash is BPF_MAP_TYPE_LRU_HASH (Linux 4.10): a Hash that, when
	// full, makes room for a new element by evicting the least recently
	// used one instead of failing.
	LRUHash MapType = 9
	// PerCPUArray is BPF_MAP_TYPE_PERCPU_ARRAY (Linux 4.6): an Array with
	// one value per possible CPU, which programs update without atomics.
	PerCPUArray MapType = 6
	// PerCPUHash is BPF_MAP_TYPE_PERCPU_HASH (Linux 4.6): a Hash with one
	// value per possible CPU in each element.
	PerCPUHash MapType = 5
	// LRUPerCPUHash is BPF_MAP_TYPE_LRU_PERCPU_HASH (Linux 4.10).
	LRUPerCPUHash MapType = 10
	// RingBuf is BPF_MAP_TYPE_RINGBUF (Linux 5.8): a buffer of MaxEntries
	// bytes that programs on every CPU write records into
	// (bpf_ringbuf_output, bpf_ringbuf_reserve and _submit) and user space
	// reads in order with a RingBufReader. See Documentation/bpf/ringbuf.rst.
	RingBuf MapType = 27
	// PerfEventArray is BPF_MAP_TYPE_PERF_EVENT_ARRAY (Linux 4.4): per-CPU
	// perf event buffers that programs write records into with
	// bpf_perf_event_output, read with a PerfReader; the way to send
	// records on kernels without RingBuf.
	PerfEventArray MapType = 4
)

var mapTypeNames = map[MapType]string{
	Array:          "array",
	Hash:           "hash",
	LRUHash:        "lru_hash",
	PerCPUArray:    "percpu_array",
	PerCPUHash:     "percpu_hash",
	LRUPerCPUHash:  "lru_percpu_hash",
	RingBuf:        "ringbuf",
	PerfEventArray: "perf_event_array",
}

// String returns the type's name as bpftool prints it, such as "hash" or
// "ringbuf", or MapType(N) for another type.
func (t MapType) String() string {
	if s, ok := mapTypeNames[t]; ok {
		return s
	}
	return "MapType(" + strconv.FormatUint(uint64(t), 10) + ")"
}

// PerCPU reports whether a map of type t holds one value per possible CPU.
func (t MapType) PerCPU() bool {
	return t == PerCPUArray || t == PerCPUHash || t == LRUPerCPUHash
}

// MapFlags are the flags a map is created with (map_flags of
// BPF_MAP_CREATE). Flags combine with |.
type MapFlags uint32

// The map flags MapSpec accepts.
const (
	// MapNoPrealloc (BPF_F_NO_PREALLOC): a Hash or PerCPUHash allocates
	// each element when it is added rather than all of them up front.
	MapNoPrealloc MapFlags = 1 << 0
	// MapNoCommonLRU (BPF_F_NO_COMMON_LRU): an LRU map keeps one LRU list
	// per CPU instead of one shared list.
	MapNoCommonLRU MapFlags = 1 << 1
	// MapReadOnly (BPF_F_RDONLY, Linux 4.15): user space may only read the
	// map through its fd.
	MapReadOnly MapFlags = 1 << 3
	// MapWriteOnly (BPF_F_WRONLY, Linux 4.15): user space may only write.
	MapWriteOnly MapFlags = 1 << 4
	// MapZeroSeed (BPF_F_ZERO_SEED, Linux 5.0): a hash map hashes with seed
	// 0, so that the order of its elements is the same from run to run.
	MapZeroSeed MapFlags = 1 << 6
	// MapReadOnlyProg (BPF_F_RDONLY_PROG, Linux 5.2): programs may only
	// read the map.
	MapReadOnlyProg MapFlags = 1 << 7
	// MapWriteOnlyProg (BPF_F_WRONLY_PROG, Linux 5.2): programs may only
	// write the map.
	MapWriteOnlyProg MapFlags = 1 << 8
)

// Errors of the map operations, wrapped with the operation and the map.
// Each also matches the errno the kernel returns for it, so that
// errors.Is(err, syscall.ENOENT) works as well.
var (
	// ErrKeyNotExist: the key is not in the map (ENOENT); also what
	// NextKey and the batch lookups return past the last key.
	ErrKeyNotExist error = &errnoError{"key does not exist", syscall.ENOENT}
	// ErrKeyExist: UpdateNoExist found the key in the map (EEXIST).
	ErrKeyExist error = &errnoError{"key already exists", syscall.EEXIST}
)

// errnoError is a sentinel error that also matches an errno.
type errnoError struct {
	msg   string
	errno syscall.Errno
}

func (e *errnoError) Error() string { return e.msg }

// Is reports whether target is the errno e stands for.
func (e *errnoError) Is(target error) bool { return target == e.errno }

// UpdateFlags says when Update may write an element (the flags of
// BPF_MAP_UPDATE_ELEM).
type UpdateFlags uint64

// The update flags.
const (
	// UpdateAny (BPF_ANY) creates the element or overwrites it.
	UpdateAny UpdateFlags = 0
	// UpdateNoExist (BPF_NOEXIST) creates the element only if the key is
	// not in the map; otherwise the update fails with ErrKeyExist. Arrays,
	// whose elements always exist, refuse it.
	UpdateNoExist UpdateFlags = 1
	// UpdateExist (BPF_EXIST) overwrites the element only if the key is in
	// the map; otherwise the update fails with ErrKeyNotExist.
	UpdateExist UpdateFlags = 2
)

// String returns "any", "noexist" or "exist".
func (f UpdateFlags) String() string {
	switch f {
	case UpdateAny:
		return "any"
	case UpdateNoExist:
		return "noexist"
	case UpdateExist:
		return "exist"
	}
	return "UpdateFlags(" + strconv.FormatUint(uint64(f), 10) + ")"
}

// MapInfo is what the kernel reports about a map.
type MapInfo struct {
	// ID is the kernel's id for the map, as `bpftool map show id` takes it.
	ID         uint32
	Type       MapType
	Name       string
	KeySize    uint32
	ValueSize  uint32
	MaxEntries uint32
	Flags      MapFlags
}

// MapCursor is where a walk of a map by batches has got to: pass the same
// cursor to successive LookupBatch or LookupAndDeleteBatch calls on one
// map. The zero MapCursor starts at the beginning of the map.
type MapCursor struct {
	m       *Map
	in, out []byte // the kernel's opaque position tokens
	started bool
	done    bool
}

// perCPUStride returns the space a per-CPU value takes in a buffer.
func perCPUStride(valueSize uint32) int { return (int(valueSize) + 7) &^ 7 }
