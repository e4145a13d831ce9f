//go:build linux

package sys

import (
	"runtime"
	"structs"
	"unsafe"
)

// The map and object commands this package wraps (enum bpf_cmd).
const (
	BPF_MAP_CREATE                  Cmd = 0
	BPF_MAP_LOOKUP_ELEM             Cmd = 1
	BPF_MAP_UPDATE_ELEM             Cmd = 2
	BPF_MAP_DELETE_ELEM             Cmd = 3
	BPF_MAP_GET_NEXT_KEY            Cmd = 4
	BPF_OBJ_PIN                     Cmd = 6
	BPF_OBJ_GET                     Cmd = 7
	BPF_MAP_LOOKUP_BATCH            Cmd = 24
	BPF_MAP_LOOKUP_AND_DELETE_BATCH Cmd = 25
	BPF_MAP_UPDATE_BATCH            Cmd = 26
	BPF_MAP_DELETE_BATCH            Cmd = 27
)

// Map types (enum bpf_map_type) purebpf creates.
const (
	BPF_MAP_TYPE_HASH             uint32 = 1
	BPF_MAP_TYPE_ARRAY            uint32 = 2
	BPF_MAP_TYPE_PERF_EVENT_ARRAY uint32 = 4
	BPF_MAP_TYPE_PERCPU_HASH      uint32 = 5
	BPF_MAP_TYPE_PERCPU_ARRAY     uint32 = 6
	BPF_MAP_TYPE_LRU_HASH         uint32 = 9
	BPF_MAP_TYPE_LRU_PERCPU_HASH  uint32 = 10
	BPF_MAP_TYPE_RINGBUF          uint32 = 27
)

// Flags of BPF_MAP_CREATE (map_flags).
const (
	BPF_F_NO_PREALLOC   uint32 = 1 << 0  // hash maps: allocate elements on update
	BPF_F_NO_COMMON_LRU uint32 = 1 << 1  // LRU maps: one LRU list per CPU
	BPF_F_NUMA_NODE     uint32 = 1 << 2  // numa_node is valid
	BPF_F_RDONLY        uint32 = 1 << 3  // the fd is read-only for user space
	BPF_F_WRONLY        uint32 = 1 << 4  // the fd is write-only for user space
	BPF_F_ZERO_SEED     uint32 = 1 << 6  // hash maps: hash seed 0 (tests)
	BPF_F_RDONLY_PROG   uint32 = 1 << 7  // programs may only read
	BPF_F_WRONLY_PROG   uint32 = 1 << 8  // programs may only write
	BPF_F_MMAPABLE      uint32 = 1 << 10 // arrays: mmap(2)-able
)

// Flags of BPF_MAP_UPDATE_ELEM and the batch commands (flags, elem_flags).
const (
	BPF_ANY     uint64 = 0 // create a new element or update an existing one
	BPF_NOEXIST uint64 = 1 // create a new element only if it did not exist
	BPF_EXIST   uint64 = 2 // update an existing element only
)

// MapCreateAttr is the part of union bpf_attr that BPF_MAP_CREATE reads.
type MapCreateAttr struct {
	_                     structs.HostLayout
	MapType               uint32
	KeySize               uint32
	ValueSize             uint32
	MaxEntries            uint32
	MapFlags              uint32
	InnerMapFD            uint32 // fd of a map-in-map's inner map
	NumaNode              uint32 // with BPF_F_NUMA_NODE
	MapName               ObjName
	MapIfindex            uint32 // ifindex of the netdev to create on (offload)
	BTFFD                 uint32
	BTFKeyTypeID          uint32
	BTFValueTypeID        uint32
	BTFVmlinuxValueTypeID uint32
	MapExtra              uint64 // bloom filter: number of hash functions
	ValueTypeBTFObjFD     int32
	MapTokenFD            int32
	ExclProgHash          Pointer // SHA-256 of the only program that may use the map (Linux 6.18)
	ExclProgHashSize      uint32
	_                     uint32
}

// MapCreate wraps bpf(2) BPF_MAP_CREATE: it creates a map and returns a new
// file descriptor (close-on-exec) that refers to it.
func MapCreate(attr *MapCreateAttr) (int, error) {
	fd, err := BPF(BPF_MAP_CREATE, unsafe.Pointer(attr), unsafe.Sizeof(*attr))
	keepAlive(attr.ExclProgHash)
	runtime.KeepAlive(attr)
	if err != nil {
		return -1, err
	}
	return int(fd), nil
}

// MapElemAttr is the part of union bpf_attr that the element commands
// read: BPF_MAP_LOOKUP_ELEM, BPF_MAP_UPDATE_ELEM, BPF_MAP_DELETE_ELEM and
// BPF_MAP_GET_NEXT_KEY.
type MapElemAttr struct {
	_     structs.HostLayout
	MapFD uint32
	_     uint32
	Key   Pointer
	// Value is the value (lookup, update) or, for BPF_MAP_GET_NEXT_KEY,
	// next_key: the two share a union.
	Value Pointer
	Flags uint64 // BPF_ANY, BPF_NOEXIST, BPF_EXIST, BPF_F_LOCK
}

// MapLookupElem wraps bpf(2) BPF_MAP_LOOKUP_ELEM: it copies the value of
// the element whose key is at attr.Key to attr.Value. A missing key fails
// with ENOENT.
func MapLookupElem(attr *MapElemAttr) error { return MapElem(BPF_MAP_LOOKUP_ELEM, attr) }

// MapUpdateElem wraps bpf(2) BPF_MAP_UPDATE_ELEM: it creates or updates the
// element whose key is at attr.Key, as attr.Flags allows. BPF_NOEXIST on an
// existing key fails with EEXIST, BPF_EXIST on a missing one with ENOENT,
// and a full hash map with E2BIG.
func MapUpdateElem(attr *MapElemAttr) error { return MapElem(BPF_MAP_UPDATE_ELEM, attr) }

// MapDeleteElem wraps bpf(2) BPF_MAP_DELETE_ELEM: it deletes the element
// whose key is at attr.Key. A missing key fails with ENOENT; arrays cannot
// delete and fail with EINVAL.
func MapDeleteElem(attr *MapElemAttr) error { return MapElem(BPF_MAP_DELETE_ELEM, attr) }

// MapGetNextKey wraps bpf(2) BPF_MAP_GET_NEXT_KEY: it writes the key that
// follows the one at attr.Key to attr.Value (next_key), or the first key
// if attr.Key is nil or not in the map. After the last key it fails with
// ENOENT.
func MapGetNextKey(attr *MapElemAttr) error { return MapElem(BPF_MAP_GET_NEXT_KEY, attr) }

// MapElem makes the element command cmd, one of the four above.
func MapElem(cmd Cmd, attr *MapElemAttr) error {
	_, err := BPF(cmd, unsafe.Pointer(attr), unsafe.Sizeof(*attr))
	keepAlive(attr.Key, attr.Value)
	runtime.KeepAlive(attr)
	return err
}

// MapBatchAttr is the part of union bpf_attr that the batch commands read
// and write (the "batch" struct, Linux 5.6).
type MapBatchAttr struct {
	_ structs.HostLayout
	// InBatch is where to start, nil for the start of the map; OutBatch
	// receives where the next call starts. Both are opaque tokens the
	// size of a key, or of a u32 bucket index for hash maps.
	InBatch  Pointer
	OutBatch Pointer
	Keys     Pointer // Count keys, each KeySize bytes
	Values   Pointer // Count values, each the value size (per-CPU: times the CPUs)
	// Count is in: the number of elements Keys and Values have room for;
	// out: the number of elements processed, also on error.
	Count     uint32
	MapFD     uint32
	ElemFlags uint64 // BPF_ANY, BPF_NOEXIST, BPF_EXIST, BPF_F_LOCK for each element
	Flags     uint64
}

// MapBatch wraps bpf(2) with one of the batch commands,
// BPF_MAP_LOOKUP_BATCH, BPF_MAP_LOOKUP_AND_DELETE_BATCH,
// BPF_MAP_UPDATE_BATCH or BPF_MAP_DELETE_BATCH. The kernel writes
// attr.Count, and for lookups attr.OutBatch, even when it fails; a lookup
// past the last element fails with ENOENT.
func MapBatch(cmd Cmd, attr *MapBatchAttr) error {
	_, err := BPF(cmd, unsafe.Pointer(attr), unsafe.Sizeof(*attr))
	keepAlive(attr.InBatch, attr.OutBatch, attr.Keys, attr.Values)
	runtime.KeepAlive(attr)
	return err
}

// ObjPinAttr is the part of union bpf_attr that BPF_OBJ_PIN and BPF_OBJ_GET
// read.
type ObjPinAttr struct {
	_         structs.HostLayout
	Pathname  Pointer // NUL-terminated path on a bpf file system
	BPFFD     uint32  // BPF_OBJ_PIN: the fd to pin; BPF_OBJ_GET: 0
	FileFlags uint32  // BPF_OBJ_GET: BPF_F_RDONLY or BPF_F_WRONLY, or 0
	PathFD    int32   // with BPF_F_PATH_FD in FileFlags, the directory Pathname is relative to
	_         uint32
}

// ObjPin wraps bpf(2) BPF_OBJ_PIN: it pins the object attr.BPFFD refers to
// at attr.Pathname, a path on a bpf file system (bpffs) that does not
// exist yet. A path elsewhere fails with EPERM, an existing one with
// EEXIST.
func ObjPin(attr *ObjPinAttr) error {
	_, err := BPF(BPF_OBJ_PIN, unsafe.Pointer(attr), unsafe.Sizeof(*attr))
	keepAlive(attr.Pathname)
	runtime.KeepAlive(attr)
	return err
}

// ObjGet wraps bpf(2) BPF_OBJ_GET: it returns a new file descriptor
// (close-on-exec) for the object pinned at attr.Pathname.
func ObjGet(attr *ObjPinAttr) (int, error) {
	fd, err := BPF(BPF_OBJ_GET, unsafe.Pointer(attr), unsafe.Sizeof(*attr))
	keepAlive(attr.Pathname)
	runtime.KeepAlive(attr)
	if err != nil {
		return -1, err
	}
	return int(fd), nil
}

// MapInfo is struct bpf_map_info.
type MapInfo struct {
	_                     structs.HostLayout
	Type                  uint32
	ID                    uint32
	KeySize               uint32
	ValueSize             uint32
	MaxEntries            uint32
	MapFlags              uint32
	Name                  ObjName
	Ifindex               uint32
	BTFVmlinuxValueTypeID uint32
	NetnsDev              uint64
	NetnsIno              uint64
	BTFID                 uint32
	BTFKeyTypeID          uint32
	BTFValueTypeID        uint32
	BTFVmlinuxID          uint32
	MapExtra              uint64
	Hash                  Pointer // buffer for the SHA-256 of an exclusive map's program
	HashSize              uint32
	_                     uint32
}

// MapGetInfoByFD wraps bpf(2) BPF_OBJ_GET_INFO_BY_FD for a map: it fills
// info with what the kernel reports about the map fd refers to. Fields the
// running kernel does not know stay zero. The fd must refer to a map: the
// kernel fills the info of whatever object it refers to.
func MapGetInfoByFD(fd int, info *MapInfo) error {
	attr := ObjGetInfoByFDAttr{
		BPFFD:   uint32(fd),
		InfoLen: uint32(unsafe.Sizeof(*info)),
		Info:    NewPointer(unsafe.Pointer(info)),
	}
	_, err := BPF(BPF_OBJ_GET_INFO_BY_FD, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	keepAlive(info.Hash)
	runtime.KeepAlive(info)
	return err
}
