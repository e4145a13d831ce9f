//go:build linux

package sys

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/purebpf/purebpf/internal/testutil"
	"golang.org/x/sys/unix"
)

func createMap(t *testing.T, attr MapCreateAttr) int {
	t.Helper()
	fd, err := MapCreate(&attr)
	if err != nil {
		t.Fatalf("create map: %v", err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

func u32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }

func TestMapElem(t *testing.T) {
	testutil.RequirePrivileged(t)
	fd := createMap(t, MapCreateAttr{MapType: BPF_MAP_TYPE_HASH, KeySize: 4, ValueSize: 8, MaxEntries: 4, MapName: NewObjName("sys_hash")})

	key, val := u32(7), binary.NativeEndian.AppendUint64(nil, 0x1122334455667788)
	elem := func(k, v []byte, flags uint64) *MapElemAttr {
		return &MapElemAttr{MapFD: uint32(fd), Key: SlicePointer(k), Value: SlicePointer(v), Flags: flags}
	}
	if err := MapUpdateElem(elem(key, val, BPF_NOEXIST)); err != nil {
		t.Fatal(err)
	}
	if err := MapUpdateElem(elem(key, val, BPF_NOEXIST)); !errors.Is(err, unix.EEXIST) {
		t.Errorf("second BPF_NOEXIST update: %v, want EEXIST", err)
	}
	if err := MapUpdateElem(elem(u32(8), val, BPF_EXIST)); !errors.Is(err, unix.ENOENT) {
		t.Errorf("BPF_EXIST update of a missing key: %v, want ENOENT", err)
	}
	got := make([]byte, 8)
	if err := MapLookupElem(elem(key, got, 0)); err != nil {
		t.Fatal(err)
	}
	if string(got) != string(val) {
		t.Errorf("lookup: %x, want %x", got, val)
	}
	next := make([]byte, 4)
	if err := MapGetNextKey(elem(nil, next, 0)); err != nil || string(next) != string(key) {
		t.Errorf("first key: %x, %v; want %x", next, err, key)
	}
	if err := MapGetNextKey(elem(key, next, 0)); !errors.Is(err, unix.ENOENT) {
		t.Errorf("key after the last: %v, want ENOENT", err)
	}

	// Batch lookup: the hash map's token is a u32 bucket index.
	var out [4]byte
	keys, vals := make([]byte, 4*4), make([]byte, 4*8)
	batch := MapBatchAttr{MapFD: uint32(fd), OutBatch: SlicePointer(out[:]), Keys: SlicePointer(keys), Values: SlicePointer(vals), Count: 4}
	if err := MapBatch(BPF_MAP_LOOKUP_BATCH, &batch); err != nil && !errors.Is(err, unix.ENOENT) {
		t.Fatal(err)
	}
	if batch.Count != 1 || string(keys[:4]) != string(key) || string(vals[:8]) != string(val) {
		t.Errorf("batch lookup: count %d, keys %x, values %x", batch.Count, keys, vals)
	}

	if err := MapDeleteElem(elem(key, nil, 0)); err != nil {
		t.Fatal(err)
	}
	if err := MapDeleteElem(elem(key, nil, 0)); !errors.Is(err, unix.ENOENT) {
		t.Errorf("second delete: %v, want ENOENT", err)
	}

	var info MapInfo
	if err := MapGetInfoByFD(fd, &info); err != nil {
		t.Fatal(err)
	}
	if info.Type != BPF_MAP_TYPE_HASH || info.KeySize != 4 || info.ValueSize != 8 || info.MaxEntries != 4 || info.Name.String() != "sys_hash" || info.ID == 0 {
		t.Errorf("info: %+v", info)
	}
}

func TestObjPinGet(t *testing.T) {
	testutil.RequirePrivileged(t)
	dir := t.TempDir()
	if err := unix.Mount("bpf", dir, "bpf", 0, ""); err != nil {
		t.Fatalf("mount bpffs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })

	fd := createMap(t, MapCreateAttr{MapType: BPF_MAP_TYPE_ARRAY, KeySize: 4, ValueSize: 4, MaxEntries: 1})
	path := filepath.Join(dir, "m")
	if err := ObjPin(&ObjPinAttr{Pathname: StringPointer(path), BPFFD: uint32(fd)}); err != nil {
		t.Fatal(err)
	}
	if err := ObjPin(&ObjPinAttr{Pathname: StringPointer(path), BPFFD: uint32(fd)}); !errors.Is(err, unix.EEXIST) {
		t.Errorf("pin twice: %v, want EEXIST", err)
	}
	fd2, err := ObjGet(&ObjPinAttr{Pathname: StringPointer(path)})
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd2)
	var a, b MapInfo
	if err := MapGetInfoByFD(fd, &a); err != nil {
		t.Fatal(err)
	}
	if err := MapGetInfoByFD(fd2, &b); err != nil {
		t.Fatal(err)
	}
	if a.ID != b.ID {
		t.Errorf("pinned map has id %d, original %d", b.ID, a.ID)
	}
	// Outside bpffs the kernel refuses to pin.
	err = ObjPin(&ObjPinAttr{Pathname: StringPointer(filepath.Join(t.TempDir(), "m")), BPFFD: uint32(fd)})
	if err == nil {
		t.Error("pin outside bpffs succeeded")
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}
