package sockfilter

import (
	"fmt"
	"math/bits"
	"os"
	"strconv"
)

// MapSpec describes a map for NewMap.
//
// The kernel's rules for each type, which NewMap checks before it asks:
//   - Array, PerCPUArray: 4-byte keys (KeySize 0 means 4), ValueSize and
//     MaxEntries above 0.
//   - Hash, LRUHash, PerCPUHash, LRUPerCPUHash: KeySize from 1 to 512 (a
//     program builds its keys on its 512-byte stack), ValueSize and
//     MaxEntries above 0.
//   - per-CPU types: ValueSize rounded up to 8 at most 32 KiB
//     (PCPU_MIN_UNIT_SIZE).
//   - RingBuf: KeySize and ValueSize 0; MaxEntries is the size of the
//     buffer in bytes and must be a power-of-two multiple of the page size
//     (4096 bytes on most machines: 4096, 8192, 16384, ...).
//   - PerfEventArray: 4-byte keys and values (0 means 4); MaxEntries 0
//     means one entry for each possible CPU.
//
// Flags must suit the type: MapNoPrealloc for Hash and PerCPUHash,
// MapNoCommonLRU for the LRU types, MapZeroSeed for the hash types, the
// access flags (MapReadOnly, MapWriteOnly, MapReadOnlyProg,
// MapWriteOnlyProg) for arrays and hash maps, MapReadOnly and MapWriteOnly
// also for a PerfEventArray; a RingBuf takes none.
type MapSpec struct {
	Type MapType
	// Name is the map's name, as bpftool and Map.Info show it: at most 15
	// of the characters [A-Za-z0-9_.] (bpf_obj_name_cpy), or "".
	Name       string
	KeySize    uint32
	ValueSize  uint32
	MaxEntries uint32
	Flags      MapFlags
}

// objNameLen is BPF_OBJ_NAME_LEN, the size of an object name with its NUL.
const objNameLen = 16

// Limits of map sizes (include/linux/bpf.h, mm/percpu).
const (
	maxHashKeySize  = 512      // MAX_BPF_STACK
	maxPerCPUValue  = 32 << 10 // PCPU_MIN_UNIT_SIZE
	accessMapFlags  = MapReadOnly | MapWriteOnly | MapReadOnlyProg | MapWriteOnlyProg
	hashMapFlags    = accessMapFlags | MapNoPrealloc | MapZeroSeed
	lruMapFlags     = accessMapFlags | MapNoCommonLRU | MapZeroSeed
	perfMapFlags    = MapReadOnly | MapWriteOnly
	fdArrayKeyValue = 4 // the key (index) and value (fd) of a perf event array
)

// allowedMapFlags gives the flags each type takes.
var allowedMapFlags = map[MapType]MapFlags{
	Array:          accessMapFlags,
	PerCPUArray:    accessMapFlags,
	Hash:           hashMapFlags,
	PerCPUHash:     hashMapFlags,
	LRUHash:        lruMapFlags,
	LRUPerCPUHash:  lruMapFlags,
	PerfEventArray: perfMapFlags,
	RingBuf:        0,
}

// checked returns the spec with its defaults filled in, or an error saying
// what the kernel would refuse.
func (s *MapSpec) checked() (MapSpec, error) {
	c := *s
	if err := checkObjName(c.Name); err != nil {
		return c, err
	}
	allowed, known := allowedMapFlags[c.Type]
	if !known {
		return c, fmt.Errorf("unsupported map type %v: purebpf creates %s", c.Type, supportedMapTypes())
	}
	switch c.Type {
	case Array, PerCPUArray:
		if c.KeySize == 0 {
			c.KeySize = 4
		}
		if c.KeySize != 4 {
			return c, fmt.Errorf("key size %d: an %v's keys are 4-byte indexes", c.KeySize, c.Type)
		}
	case Hash, LRUHash, PerCPUHash, LRUPerCPUHash:
		if c.KeySize == 0 || c.KeySize > maxHashKeySize {
			return c, fmt.Errorf("key size %d: a %v's keys are 1 to %d bytes", c.KeySize, c.Type, maxHashKeySize)
		}
	case RingBuf:
		if c.KeySize != 0 || c.ValueSize != 0 {
			return c, fmt.Errorf("key size %d, value size %d: a ring buffer has neither; set both to 0", c.KeySize, c.ValueSize)
		}
		if err := checkRingBufSize(c.MaxEntries); err != nil {
			return c, err
		}
	case PerfEventArray:
		if c.KeySize == 0 {
			c.KeySize = fdArrayKeyValue
		}
		if c.ValueSize == 0 {
			c.ValueSize = fdArrayKeyValue
		}
		if c.KeySize != fdArrayKeyValue || c.ValueSize != fdArrayKeyValue {
			return c, fmt.Errorf("key size %d, value size %d: a perf event array's keys are 4-byte CPU numbers and its values 4-byte perf event fds", c.KeySize, c.ValueSize)
		}
		if c.MaxEntries == 0 {
			n, err := PossibleCPUs()
			if err != nil {
				return c, err
			}
			c.MaxEntries = uint32(n)
		}
	}
	if c.Type != RingBuf && c.Type != PerfEventArray && c.ValueSize == 0 {
		return c, fmt.Errorf("value size 0: a %v's values must have at least 1 byte", c.Type)
	}
	if c.Type.PerCPU() && perCPUStride(c.ValueSize) > maxPerCPUValue {
		return c, fmt.Errorf("value size %d: a per-CPU value may have at most %d bytes", c.ValueSize, maxPerCPUValue)
	}
	if c.MaxEntries == 0 {
		return c, fmt.Errorf("max entries 0: a %v needs room for at least one element", c.Type)
	}
	if bad := c.Flags &^ allowed; bad != 0 {
		return c, fmt.Errorf("flags %#x are not for a %v map (it takes %#x)", uint32(bad), c.Type, uint32(allowed))
	}
	if c.Flags&(MapReadOnly|MapWriteOnly) == MapReadOnly|MapWriteOnly ||
		c.Flags&(MapReadOnlyProg|MapWriteOnlyProg) == MapReadOnlyProg|MapWriteOnlyProg {
		return c, fmt.Errorf("flags %#x: read-only and write-only exclude each other", uint32(c.Flags))
	}
	return c, nil
}

// checkRingBufSize checks the size of a ring buffer: a power of two, and a
// multiple of the page size (ringbuf_map_alloc).
func checkRingBufSize(n uint32) error {
	page := os.Getpagesize()
	if n >= uint32(page) && n&(n-1) == 0 {
		return nil
	}
	next := uint64(page)
	if uint64(n) > next {
		next = 1 << bits.Len64(uint64(n)-1)
	}
	return fmt.Errorf("ring buffer size %d bytes: it must be a power-of-two multiple of the page size (%d bytes), such as %d", n, page, next)
}

// checkObjName checks a map name as bpf_obj_name_cpy does.
func checkObjName(name string) error {
	if len(name) > objNameLen-1 {
		return fmt.Errorf("name %q is longer than %d bytes", name, objNameLen-1)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.') {
			return fmt.Errorf("name %q has the character %q: the kernel takes only [A-Za-z0-9_.]", name, c)
		}
	}
	return nil
}

func supportedMapTypes() string {
	return "array, hash, lru_hash, percpu_array, percpu_hash, lru_percpu_hash, ringbuf and perf_event_array"
}

// describe names the spec's map in errors.
func (s *MapSpec) describe() string {
	if s.Name != "" {
		return strconv.Quote(s.Name)
	}
	return "(" + s.Type.String() + ")"
}
