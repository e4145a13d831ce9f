package vm

import (
	"errors"
	"fmt"
	"math/bits"
	"strconv"
	"sync"
	"syscall"
	"unsafe"
)

// MapType is the kind of a map the VM keeps, by the numbers of enum
// bpf_map_type (linux/bpf.h), which sockfilter.MapType has too:
// vm.MapType(sockfilter.Hash) is vm.Hash. See Documentation/bpf/maps.rst.
type MapType uint32

// The map types the VM runs. The kernel version is the first that has the
// type.
const (
	// Hash is BPF_MAP_TYPE_HASH (Linux 3.19): up to MaxEntries elements
	// under keys of KeySize bytes.
	Hash MapType = 1
	// Array is BPF_MAP_TYPE_ARRAY (Linux 3.19): MaxEntries values indexed
	// by a 4-byte key from 0, all present and zero from the start.
	Array MapType = 2
	// PerCPUHash is BPF_MAP_TYPE_PERCPU_HASH (Linux 4.6): a Hash with a
	// value for each possible CPU in each element.
	PerCPUHash MapType = 5
	// PerCPUArray is BPF_MAP_TYPE_PERCPU_ARRAY (Linux 4.6): an Array with
	// a value for each possible CPU.
	PerCPUArray MapType = 6
	// LRUHash is BPF_MAP_TYPE_LRU_HASH (Linux 4.10): a Hash that makes
	// room for a new element by evicting the least recently used ones.
	LRUHash MapType = 9
	// LRUPerCPUHash is BPF_MAP_TYPE_LRU_PERCPU_HASH (Linux 4.10).
	LRUPerCPUHash MapType = 10
	// RingBuf is BPF_MAP_TYPE_RINGBUF (Linux 5.8): a buffer of MaxEntries
	// bytes programs write records into and user space reads in order
	// (Map.NextRecord). See Documentation/bpf/ringbuf.rst.
	RingBuf MapType = 27
)

var mapTypeNames = map[MapType]string{
	Hash: "hash", Array: "array", PerCPUHash: "percpu_hash", PerCPUArray: "percpu_array",
	LRUHash: "lru_hash", LRUPerCPUHash: "lru_percpu_hash", RingBuf: "ringbuf",
}

// String returns the type's name as bpftool prints it, such as "hash".
func (t MapType) String() string {
	if s, ok := mapTypeNames[t]; ok {
		return s
	}
	return "MapType(" + strconv.FormatUint(uint64(t), 10) + ")"
}

// PerCPU reports whether a map of type t holds a value per possible CPU.
func (t MapType) PerCPU() bool { return t == PerCPUHash || t == PerCPUArray || t == LRUPerCPUHash }

func (t MapType) isHash() bool {
	return t == Hash || t == PerCPUHash || t == LRUHash || t == LRUPerCPUHash
}

func (t MapType) isLRU() bool { return t == LRUHash || t == LRUPerCPUHash }

// MapFlags are the map_flags of BPF_MAP_CREATE the VM takes, with the
// values of sockfilter.MapFlags.
type MapFlags uint32

const (
	// MapNoPrealloc (BPF_F_NO_PREALLOC): a Hash or PerCPUHash allocates
	// its elements as they come. The VM allocates them up front anyway;
	// what a program sees is the same.
	MapNoPrealloc MapFlags = 1 << 0
	// MapNoCommonLRU (BPF_F_NO_COMMON_LRU): an LRU map keeps a list per
	// CPU, each with MaxEntries/CPUs elements (MaxEntries rounded to a
	// multiple of the CPUs, as the kernel does).
	MapNoCommonLRU MapFlags = 1 << 1
	// MapZeroSeed (BPF_F_ZERO_SEED): a hash map hashes with seed 0. The
	// VM's hash maps always do; their order is their own.
	MapZeroSeed MapFlags = 1 << 6
)

// MapSpec describes a map for NewMap, as sockfilter.MapSpec does one for
// the kernel, with the same rules (NewMap checks them), and the CPUs the
// map is made for.
type MapSpec struct {
	Type MapType
	// Name is the map's name: at most 15 of [A-Za-z0-9_.], or "".
	Name       string
	KeySize    uint32 // 4 for arrays (0 means 4); 1 to 512 for hash maps; 0 for a RingBuf
	ValueSize  uint32 // above 0; 0 for a RingBuf
	MaxEntries uint32 // the elements; a RingBuf's size in bytes, a power of two from 4096
	Flags      MapFlags
	// CPUs is the number of possible CPUs (num_possible_cpus), 0 meaning
	// 1: how many values a per-CPU map holds under each key, and what an
	// LRU map sizes its lists by. A VM runs on one of them
	// (Options.CPU). For a map that must behave as the kernel's on this
	// machine, give sockfilter.PossibleCPUs().
	CPUs int
}

// Limits of map sizes (include/linux/bpf.h, mm/percpu).
const (
	maxMapKeySize  = 512      // MAX_BPF_STACK
	maxPerCPUValue = 32 << 10 // PCPU_MIN_UNIT_SIZE
	ringPage       = 4096     // the VM's page size, for ring buffer sizes
	maxMapMemory   = 1 << 30  // what the VM allocates for one map at most
)

var allowedMapFlags = map[MapType]MapFlags{
	Hash: MapNoPrealloc | MapZeroSeed, PerCPUHash: MapNoPrealloc | MapZeroSeed,
	LRUHash: MapNoCommonLRU | MapZeroSeed, LRUPerCPUHash: MapNoCommonLRU | MapZeroSeed,
	Array: 0, PerCPUArray: 0, RingBuf: 0,
}

// Errors of the map operations, wrapped with the operation and the map.
// Each also matches the errno the kernel returns for it, so that
// errors.Is(err, syscall.ENOENT) works as with sockfilter's maps.
var (
	// ErrKeyNotExist: the key is not in the map (ENOENT); also what
	// NextKey returns past the last key.
	ErrKeyNotExist error = &errnoError{"key does not exist", syscall.ENOENT}
	// ErrKeyExist: an update with UpdateNoExist found the key (EEXIST).
	ErrKeyExist error = &errnoError{"key already exists", syscall.EEXIST}
)

type errnoError struct {
	msg   string
	errno syscall.Errno
}

func (e *errnoError) Error() string { return e.msg }

// Is reports whether target is the errno e stands for.
func (e *errnoError) Is(target error) bool { return target == e.errno }

// UpdateFlags say when an update may write an element (the flags of
// BPF_MAP_UPDATE_ELEM and of bpf_map_update_elem).
type UpdateFlags uint64

const (
	UpdateAny     UpdateFlags = 0 // BPF_ANY: create the element or overwrite it
	UpdateNoExist UpdateFlags = 1 // BPF_NOEXIST: create it only if the key is not in the map
	UpdateExist   UpdateFlags = 2 // BPF_EXIST: overwrite it only if the key is in the map
)

// Map is a map that programs run by VMs and the caller share, in the
// caller's memory: what a program in the kernel reaches through a map's
// file descriptor. Programs refer to it by a name (asm.LoadMapPtr) that
// Options.Maps resolves. Its methods are what user space does through
// bpf(2); they act as if on CPU 0, and are safe for concurrent use with
// each other and with runs.
//
// A program's values are the map's memory itself: a run writes them in
// place, as a program in the kernel does, and concurrent runs (or a
// caller reading the value meanwhile) race on them unless the program uses
// atomic instructions, which the VM runs atomically on map memory.
type Map struct {
	spec      MapSpec
	cpus      int
	stride    int // a value's size rounded up to 8, the step between per-CPU values
	keyStride int // a hash element's key rounded up to 8
	elem      int // the bytes of an element: key, then the values of every CPU
	shift     uint
	mem       []byte // the elements, 8-byte aligned

	mu   sync.Mutex // guards what follows, and the values Lookup and Update copy
	hash *hashIndex
	lru  *lru
	ring *ring
}

// NewMap makes a map as spec says, with every value zero. It refuses, with
// an error saying why, what the kernel would refuse (see MapSpec) and maps
// beyond the VM's limits (a GiB of elements).
func NewMap(spec *MapSpec) (*Map, error) {
	s, err := spec.checked()
	if err != nil {
		return nil, fmt.Errorf("new map %s: %w", spec.describe(), err)
	}
	m := &Map{spec: s, cpus: max(s.CPUs, 1)}
	if s.Type == RingBuf {
		m.ring = newRing(int(s.MaxEntries))
		return m, nil
	}
	m.stride = (int(s.ValueSize) + 7) &^ 7
	values := 1
	if s.Type.PerCPU() {
		values = m.cpus
	}
	n := int(s.MaxEntries)
	if s.Type.isHash() {
		m.keyStride = (int(s.KeySize) + 7) &^ 7
		if s.Type == Hash {
			n++ // the extra element an update of an existing key takes
		}
	}
	m.elem = m.keyStride + values*m.stride
	// A value pointer is the element's index above shift bits that hold
	// the offset in the value, with room to spare: a program's access
	// past its value's end lands in no value.
	m.shift = uint(bits.Len32(s.ValueSize))
	if uint64(n)<<m.shift > 1<<32 || uint64(n)*uint64(m.elem) > maxMapMemory {
		return nil, fmt.Errorf("new map %s: %d elements of %d bytes: more than the VM keeps in a map", spec.describe(), n, m.elem)
	}
	m.mem = alignedBytes(n * m.elem)
	if s.Type.isHash() {
		m.hash = newHashIndex(n, int(s.MaxEntries), s.Type == Hash)
		if s.Type.isLRU() {
			m.lru = newLRU(int(s.MaxEntries), m.cpus, s.Flags&MapNoCommonLRU != 0)
		}
	}
	return m, nil
}

// alignedBytes returns n zero bytes at an 8-byte aligned address, so that
// the atomic instructions can work on map values.
func alignedBytes(n int) []byte {
	if n == 0 {
		return nil
	}
	words := make([]uint64, (n+7)/8)
	return unsafe.Slice((*byte)(unsafe.Pointer(&words[0])), n)
}

// checked returns the spec with its defaults filled in, or what is wrong.
func (s *MapSpec) checked() (MapSpec, error) {
	c := *s
	if err := checkName(c.Name); err != nil {
		return c, err
	}
	allowed, known := allowedMapFlags[c.Type]
	switch {
	case !known:
		return c, fmt.Errorf("unsupported map type %v: the VM runs array, hash, lru_hash, percpu_array, percpu_hash, lru_percpu_hash and ringbuf", c.Type)
	case c.CPUs < 0 || c.CPUs > 1<<13:
		return c, fmt.Errorf("%d CPUs: a map is made for 1 to %d", c.CPUs, 1<<13)
	case c.Flags&^allowed != 0:
		return c, fmt.Errorf("flags %#x are not for a %v map (it takes %#x)", uint32(c.Flags), c.Type, uint32(allowed))
	}
	switch c.Type {
	case Array, PerCPUArray:
		if c.KeySize == 0 {
			c.KeySize = 4
		}
		if c.KeySize != 4 {
			return c, fmt.Errorf("key size %d: an %v's keys are 4-byte indexes", c.KeySize, c.Type)
		}
	case RingBuf:
		if c.KeySize != 0 || c.ValueSize != 0 {
			return c, fmt.Errorf("key size %d, value size %d: a ring buffer has neither; set both to 0", c.KeySize, c.ValueSize)
		}
		if n := c.MaxEntries; n < ringPage || n&(n-1) != 0 || n > maxMapMemory/2 {
			return c, fmt.Errorf("ring buffer size %d bytes: it must be a power-of-two multiple of the page size (%d bytes), such as %d", n, ringPage, max(ringPage, 1<<bits.Len32(n-1)))
		}
		return c, nil
	default:
		if c.KeySize == 0 || c.KeySize > maxMapKeySize {
			return c, fmt.Errorf("key size %d: a %v's keys are 1 to %d bytes", c.KeySize, c.Type, maxMapKeySize)
		}
	}
	switch {
	case c.ValueSize == 0:
		return c, fmt.Errorf("value size 0: a %v's values must have at least 1 byte", c.Type)
	case c.Type.PerCPU() && (c.ValueSize+7)&^7 > maxPerCPUValue:
		return c, fmt.Errorf("value size %d: a per-CPU value may have at most %d bytes", c.ValueSize, maxPerCPUValue)
	case c.MaxEntries == 0:
		return c, fmt.Errorf("max entries 0: a %v needs room for at least one element", c.Type)
	}
	if cpus := uint32(max(c.CPUs, 1)); c.Type.isLRU() && c.Flags&MapNoCommonLRU != 0 {
		// Each CPU's list gets as many elements (htab_map_alloc).
		n := (c.MaxEntries + cpus - 1) / cpus * cpus
		if n < c.MaxEntries {
			n = c.MaxEntries / cpus * cpus
		}
		c.MaxEntries = n
	}
	return c, nil
}

func checkName(name string) error {
	if len(name) > 15 {
		return fmt.Errorf("name %q is longer than 15 bytes", name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.') {
			return fmt.Errorf("name %q has the character %q: the kernel takes only [A-Za-z0-9_.]", name, c)
		}
	}
	return nil
}

func (s *MapSpec) describe() string {
	if s.Name != "" {
		return strconv.Quote(s.Name)
	}
	return "(" + s.Type.String() + ")"
}

// Type returns the map's type.
func (m *Map) Type() MapType { return m.spec.Type }

// Name returns the map's name.
func (m *Map) Name() string { return m.spec.Name }

// KeySize returns the size of the map's keys: 4 for an array.
func (m *Map) KeySize() int { return int(m.spec.KeySize) }

// ValueSize returns the size of the map's values.
func (m *Map) ValueSize() int { return int(m.spec.ValueSize) }

// MaxEntries returns the map's size: with MapNoCommonLRU, MaxEntries
// rounded to a multiple of the CPUs, as the kernel has it.
func (m *Map) MaxEntries() int { return int(m.spec.MaxEntries) }

// Flags returns the flags the map was made with.
func (m *Map) Flags() MapFlags { return m.spec.Flags }

// CPUs returns the number of CPUs the map is made for, at least 1.
func (m *Map) CPUs() int { return m.cpus }

func (m *Map) describe() string { return m.spec.describe() }
func (m *Map) perCPU() bool     { return m.spec.Type.PerCPU() }
func (m *Map) isArray() bool    { return m.spec.Type == Array || m.spec.Type == PerCPUArray }
func (m *Map) valueAt(e, cpu int) []byte {
	o := e*m.elem + m.keyStride + cpu*m.stride
	return m.mem[o : o+int(m.spec.ValueSize) : o+int(m.spec.ValueSize)]
}
func (m *Map) keyAt(e int) []byte {
	o := e * m.elem
	return m.mem[o : o+int(m.spec.KeySize) : o+int(m.spec.KeySize)]
}

var errNoRing = errors.New("a ring buffer has no keys: read it with NextRecord")
