package sockfilter

import (
	"encoding/binary"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/purebpf/purebpf/internal/sys"
	"github.com/purebpf/purebpf/internal/testutil"
)

// newTestMap creates a map or fails t, and closes it at cleanup.
func newTestMap(t testing.TB, spec MapSpec) *Map {
	t.Helper()
	m, err := NewMap(&spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func ne32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }
func ne64(v uint64) []byte { return binary.NativeEndian.AppendUint64(nil, v) }

func TestMapSpecErrors(t *testing.T) {
	page := os.Getpagesize()
	for _, tt := range []struct {
		name string
		spec MapSpec
		want string
	}{
		{"bad name", MapSpec{Type: Hash, Name: "flow-table", KeySize: 4, ValueSize: 4, MaxEntries: 1}, `has the character '-': the kernel takes only [A-Za-z0-9_.]`},
		{"long name", MapSpec{Type: Hash, Name: "a_name_of_16_chr", KeySize: 4, ValueSize: 4, MaxEntries: 1}, "longer than 15 bytes"},
		{"unknown type", MapSpec{Type: 11, KeySize: 4, ValueSize: 4, MaxEntries: 1}, "unsupported map type MapType(11)"},
		{"array key size", MapSpec{Type: Array, KeySize: 8, ValueSize: 4, MaxEntries: 1}, "an array's keys are 4-byte indexes"},
		{"hash key size 0", MapSpec{Type: Hash, ValueSize: 4, MaxEntries: 1}, "keys are 1 to 512 bytes"},
		{"hash key size 513", MapSpec{Type: LRUHash, KeySize: 513, ValueSize: 4, MaxEntries: 1}, "keys are 1 to 512 bytes"},
		{"value size 0", MapSpec{Type: Hash, KeySize: 4, MaxEntries: 1}, "values must have at least 1 byte"},
		{"per-CPU value too big", MapSpec{Type: PerCPUArray, ValueSize: 32<<10 + 1, MaxEntries: 1}, "at most 32768 bytes"},
		{"max entries 0", MapSpec{Type: Array, ValueSize: 4}, "max entries 0"},
		{"ring buffer not a power of two", MapSpec{Type: RingBuf, MaxEntries: 3 * uint32(page)}, "power-of-two multiple of the page size"},
		{"ring buffer below a page", MapSpec{Type: RingBuf, MaxEntries: 1024}, "power-of-two multiple of the page size"},
		{"ring buffer 0", MapSpec{Type: RingBuf}, "ring buffer size 0 bytes"},
		{"ring buffer key", MapSpec{Type: RingBuf, KeySize: 4, MaxEntries: uint32(page)}, "a ring buffer has neither"},
		{"perf value size", MapSpec{Type: PerfEventArray, ValueSize: 8}, "4-byte perf event fds"},
		{"no prealloc array", MapSpec{Type: Array, ValueSize: 4, MaxEntries: 1, Flags: MapNoPrealloc}, "flags 0x1 are not for a array map"},
		{"no common lru hash", MapSpec{Type: Hash, KeySize: 4, ValueSize: 4, MaxEntries: 1, Flags: MapNoCommonLRU}, "flags 0x2 are not for a hash map"},
		{"ring buffer flags", MapSpec{Type: RingBuf, MaxEntries: uint32(page), Flags: MapReadOnly}, "are not for a ringbuf map (it takes 0x0)"},
		{"read-only and write-only", MapSpec{Type: Hash, KeySize: 4, ValueSize: 4, MaxEntries: 1, Flags: MapReadOnlyProg | MapWriteOnlyProg}, "exclude each other"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m, err := NewMap(&tt.spec)
			if err == nil {
				m.Close()
				t.Fatal("NewMap succeeded")
			}
			if !strings.HasPrefix(err.Error(), "create map ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want one containing %q", err, tt.want)
			}
		})
	}
	if _, err := NewMap(nil); err == nil {
		t.Error("NewMap(nil) succeeded")
	}
	// The size a ring buffer error suggests is the next power of two.
	err := checkRingBufSize(3 * uint32(page))
	if want := "such as " + strconv.Itoa(4*page); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("checkRingBufSize(3 pages) = %v, want it to suggest %s", err, want)
	}
}

func TestMapTypes(t *testing.T) {
	testutil.RequirePrivileged(t)
	cpus, err := PossibleCPUs()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		spec MapSpec
		want MapInfo // ID is not compared
	}{
		{MapSpec{Type: Array, Name: "arr", ValueSize: 8, MaxEntries: 4}, MapInfo{Type: Array, Name: "arr", KeySize: 4, ValueSize: 8, MaxEntries: 4}},
		{MapSpec{Type: Hash, Name: "h", KeySize: 16, ValueSize: 8, MaxEntries: 4, Flags: MapNoPrealloc}, MapInfo{Type: Hash, Name: "h", KeySize: 16, ValueSize: 8, MaxEntries: 4, Flags: MapNoPrealloc}},
		{MapSpec{Type: LRUHash, Name: "lru", KeySize: 4, ValueSize: 4, MaxEntries: 8}, MapInfo{Type: LRUHash, Name: "lru", KeySize: 4, ValueSize: 4, MaxEntries: 8}},
		{MapSpec{Type: PerCPUArray, Name: "pca", ValueSize: 4, MaxEntries: 2}, MapInfo{Type: PerCPUArray, Name: "pca", KeySize: 4, ValueSize: 4, MaxEntries: 2}},
		{MapSpec{Type: PerCPUHash, Name: "pch", KeySize: 4, ValueSize: 12, MaxEntries: 2}, MapInfo{Type: PerCPUHash, Name: "pch", KeySize: 4, ValueSize: 12, MaxEntries: 2}},
		{MapSpec{Type: LRUPerCPUHash, Name: "lpch", KeySize: 4, ValueSize: 4, MaxEntries: 4}, MapInfo{Type: LRUPerCPUHash, Name: "lpch", KeySize: 4, ValueSize: 4, MaxEntries: 4}},
		{MapSpec{Type: RingBuf, Name: "rb", MaxEntries: uint32(os.Getpagesize())}, MapInfo{Type: RingBuf, Name: "rb", MaxEntries: uint32(os.Getpagesize())}},
		{MapSpec{Type: PerfEventArray, Name: "perf"}, MapInfo{Type: PerfEventArray, Name: "perf", KeySize: 4, ValueSize: 4, MaxEntries: uint32(cpus)}},
	} {
		t.Run(tt.spec.Type.String(), func(t *testing.T) {
			m := newTestMap(t, tt.spec)
			if m.FD() < 0 || m.Type() != tt.spec.Type || m.Name() != tt.spec.Name {
				t.Errorf("FD %d, Type %v, Name %q", m.FD(), m.Type(), m.Name())
			}
			info, err := m.Info()
			if err != nil {
				t.Fatal(err)
			}
			if info.ID == 0 {
				t.Error("info has no id")
			}
			info.ID = 0
			if info != tt.want {
				t.Errorf("Info = %+v, want %+v", info, tt.want)
			}
			if got := m.KeySize(); got != int(tt.want.KeySize) {
				t.Errorf("KeySize = %d, want %d", got, tt.want.KeySize)
			}
			wantBuf := int(tt.want.ValueSize)
			if tt.spec.Type.PerCPU() {
				wantBuf = cpus * ((wantBuf + 7) &^ 7)
			}
			if got := m.ValueBufSize(); got != wantBuf {
				t.Errorf("ValueBufSize = %d, want %d", got, wantBuf)
			}
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
			if err := m.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
			if m.FD() != -1 {
				t.Errorf("FD after Close = %d", m.FD())
			}
			if _, err := m.Info(); !errors.Is(err, ErrClosed) {
				t.Errorf("Info after Close: %v, want ErrClosed", err)
			}
		})
	}
}

func TestMapCRUD(t *testing.T) {
	testutil.RequirePrivileged(t)
	for _, typ := range []MapType{Hash, LRUHash, Array} {
		t.Run(typ.String(), func(t *testing.T) {
			m := newTestMap(t, MapSpec{Type: typ, KeySize: 4, ValueSize: 8, MaxEntries: 2})
			k0, k1, k2 := ne32(0), ne32(1), ne32(2)
			v := ne64(42)

			if typ == Array {
				// Every element of an array exists, zero.
				got, err := m.Lookup(k1)
				if err != nil || string(got) != string(make([]byte, 8)) {
					t.Errorf("Lookup of an untouched element = %x, %v; want zeros", got, err)
				}
				if err := m.Update(k1, v, UpdateNoExist); !errors.Is(err, ErrKeyExist) && !errors.Is(err, unix.EEXIST) {
					t.Errorf("UpdateNoExist on an array: %v, want EEXIST", err)
				}
				if err := m.Delete(k1); !errors.Is(err, unix.EINVAL) {
					t.Errorf("Delete from an array: %v, want EINVAL", err)
				}
				if _, err := m.Lookup(k2); !errors.Is(err, ErrKeyNotExist) {
					t.Errorf("Lookup past the end: %v, want ErrKeyNotExist", err)
				}
				if err := m.Update(k0, v, UpdateExist); err != nil {
					t.Errorf("UpdateExist on an array: %v", err)
				}
				return
			}

			_, err := m.Lookup(k0)
			if !errors.Is(err, ErrKeyNotExist) || !errors.Is(err, unix.ENOENT) || !strings.Contains(err.Error(), "key does not exist") {
				t.Errorf("Lookup of a missing key: %v, want ErrKeyNotExist and ENOENT", err)
			}
			if err := m.Update(k0, v, UpdateExist); !errors.Is(err, ErrKeyNotExist) {
				t.Errorf("UpdateExist of a missing key: %v, want ErrKeyNotExist", err)
			}
			if err := m.Update(k0, v, UpdateNoExist); err != nil {
				t.Fatal(err)
			}
			err = m.Update(k0, v, UpdateNoExist)
			if !errors.Is(err, ErrKeyExist) || !errors.Is(err, unix.EEXIST) {
				t.Errorf("UpdateNoExist of an existing key: %v, want ErrKeyExist and EEXIST", err)
			}
			if err := m.Update(k0, ne64(43), UpdateExist); err != nil {
				t.Fatal(err)
			}
			got, err := m.Lookup(k0)
			if err != nil || binary.NativeEndian.Uint64(got) != 43 {
				t.Errorf("Lookup = %x, %v; want 43", got, err)
			}
			if err := m.Update(k1, v, UpdateAny); err != nil {
				t.Fatal(err)
			}
			// The map holds 2 elements: a Hash is full, an LRU hash evicts.
			err = m.Update(k2, v, UpdateAny)
			if typ == Hash && (!errors.Is(err, unix.E2BIG) || !strings.Contains(err.Error(), "full")) {
				t.Errorf("update of a full hash: %v, want E2BIG saying it is full", err)
			}
			if typ == LRUHash && err != nil {
				t.Errorf("update of a full LRU hash: %v", err)
			}
			if err := m.Delete(k1); err != nil && typ == Hash {
				t.Fatal(err)
			}
			if err := m.Delete(k1); !errors.Is(err, ErrKeyNotExist) {
				t.Errorf("second Delete: %v, want ErrKeyNotExist", err)
			}
			if err := m.Update(k0, v, 7); err == nil {
				t.Error("Update with unknown flags succeeded")
			}
		})
	}
}

func TestMapBadBuffers(t *testing.T) {
	testutil.RequirePrivileged(t)
	m := newTestMap(t, MapSpec{Type: Hash, KeySize: 4, ValueSize: 8, MaxEntries: 2})
	for _, tt := range []struct {
		name string
		err  error
		want string
	}{
		{"short key", m.Update([]byte{1}, ne64(1), UpdateAny), "key of 1 bytes, the map's keys have 4"},
		{"long value", m.Update(ne32(1), make([]byte, 9), UpdateAny), "value of 9 bytes, the map's values have 8"},
		{"lookup into short", m.LookupInto(ne32(1), make([]byte, 4)), "value of 4 bytes"},
		{"next key buffer", m.NextKeyInto(nil, make([]byte, 2)), "next key buffer of 2 bytes"},
		{"per-CPU on a hash", m.UpdatePerCPU(ne32(1), nil, UpdateAny), "use Update"},
	} {
		if tt.err == nil || !strings.Contains(tt.err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error containing %q", tt.name, tt.err, tt.want)
		}
	}
	rb := newTestMap(t, MapSpec{Type: RingBuf, MaxEntries: uint32(os.Getpagesize())})
	if _, err := rb.Lookup(nil); err == nil || !strings.Contains(err.Error(), "NewRingBufReader") {
		t.Errorf("Lookup in a ring buffer: %v, want a hint to NewRingBufReader", err)
	}
	perf := newTestMap(t, MapSpec{Type: PerfEventArray})
	if _, err := perf.Lookup(ne32(0)); err == nil || !strings.Contains(err.Error(), "does not do this from user space") {
		t.Errorf("Lookup in a perf event array: %v", err)
	}
	var zero Map
	if err := zero.Update(nil, nil, UpdateAny); err == nil {
		t.Error("Update on the zero Map succeeded")
	}
	if _, err := zero.Info(); !errors.Is(err, ErrClosed) {
		t.Errorf("Info of the zero Map: %v, want ErrClosed", err)
	}
}

func TestMapPerCPU(t *testing.T) {
	testutil.RequirePrivileged(t)
	cpus, err := PossibleCPUs()
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []MapType{PerCPUArray, PerCPUHash, LRUPerCPUHash} {
		t.Run(typ.String(), func(t *testing.T) {
			// 4-byte values: each CPU's takes 8 bytes in the kernel's layout.
			m := newTestMap(t, MapSpec{Type: typ, KeySize: 4, ValueSize: 4, MaxEntries: 4})
			key := ne32(1)
			values := make([][]byte, cpus)
			for i := range values {
				values[i] = ne32(uint32(100 + i))
			}
			if err := m.UpdatePerCPU(key, values, UpdateAny); err != nil {
				t.Fatal(err)
			}
			got, err := m.LookupPerCPU(key)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != cpus {
				t.Fatalf("%d values, want %d", len(got), cpus)
			}
			for i := range got {
				if string(got[i]) != string(values[i]) {
					t.Errorf("CPU %d: %x, want %x", i, got[i], values[i])
				}
			}
			raw := make([]byte, m.ValueBufSize())
			if err := m.LookupInto(key, raw); err != nil {
				t.Fatal(err)
			}
			for i := range cpus {
				if v := binary.NativeEndian.Uint32(raw[8*i:]); v != uint32(100+i) {
					t.Errorf("raw value of CPU %d = %d, want %d", i, v, 100+i)
				}
			}
			if _, err := m.Lookup(key); err == nil || !strings.Contains(err.Error(), "LookupPerCPU") {
				t.Errorf("Lookup on a per-CPU map: %v, want a hint to LookupPerCPU", err)
			}
			if err := m.UpdatePerCPU(key, values[:cpus-1], UpdateAny); err == nil {
				t.Error("UpdatePerCPU with a value missing succeeded")
			}
		})
	}
}

func TestMapUnprivileged(t *testing.T) {
	testutil.RequirePrivileged(t)
	cmd := testutil.NobodyCommand(t, os.Args[0], "-test.run=^TestMapUnprivilegedChild$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), mapUnprivChild+"=1", testutil.PrivilegedEnv+"=")
	out, err := cmd.CombinedOutput()
	t.Logf("unprivileged run:\n%s", out)
	if err != nil {
		t.Fatalf("unprivileged run failed: %v", err)
	}
	if !strings.Contains(string(out), "--- PASS: TestMapUnprivilegedChild") {
		t.Fatal("the unprivileged run did not pass TestMapUnprivilegedChild")
	}
}

const mapUnprivChild = "PUREBPF_MAP_UNPRIVILEGED_CHILD"

// TestMapUnprivilegedChild is the unprivileged half of TestMapUnprivileged;
// run directly, it skips.
func TestMapUnprivilegedChild(t *testing.T) {
	if os.Getenv(mapUnprivChild) != "1" {
		t.Skip("run by TestMapUnprivileged")
	}
	m, err := NewMap(&MapSpec{Type: Hash, KeySize: 4, ValueSize: 4, MaxEntries: 1})
	if err == nil {
		// kernel.unprivileged_bpf_disabled=0 lets anyone create maps.
		m.Close()
		t.Skip("NewMap succeeded: unprivileged BPF is enabled on this machine")
	}
	t.Logf("NewMap: %v", err)
	if !errors.Is(err, unix.EPERM) || !strings.Contains(err.Error(), "needs CAP_BPF") {
		t.Errorf("NewMap error %q; want EPERM saying it needs CAP_BPF", err)
	}
}

// TestMapConstants checks the numbers map.go spells out, for it builds on
// every system, against internal/sys's.
func TestMapConstants(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want uint64
	}{
		{"Array", uint64(Array), uint64(sys.BPF_MAP_TYPE_ARRAY)},
		{"Hash", uint64(Hash), uint64(sys.BPF_MAP_TYPE_HASH)},
		{"LRUHash", uint64(LRUHash), uint64(sys.BPF_MAP_TYPE_LRU_HASH)},
		{"PerCPUArray", uint64(PerCPUArray), uint64(sys.BPF_MAP_TYPE_PERCPU_ARRAY)},
		{"PerCPUHash", uint64(PerCPUHash), uint64(sys.BPF_MAP_TYPE_PERCPU_HASH)},
		{"LRUPerCPUHash", uint64(LRUPerCPUHash), uint64(sys.BPF_MAP_TYPE_LRU_PERCPU_HASH)},
		{"RingBuf", uint64(RingBuf), uint64(sys.BPF_MAP_TYPE_RINGBUF)},
		{"PerfEventArray", uint64(PerfEventArray), uint64(sys.BPF_MAP_TYPE_PERF_EVENT_ARRAY)},
		{"MapNoPrealloc", uint64(MapNoPrealloc), uint64(sys.BPF_F_NO_PREALLOC)},
		{"MapNoCommonLRU", uint64(MapNoCommonLRU), uint64(sys.BPF_F_NO_COMMON_LRU)},
		{"MapReadOnly", uint64(MapReadOnly), uint64(sys.BPF_F_RDONLY)},
		{"MapWriteOnly", uint64(MapWriteOnly), uint64(sys.BPF_F_WRONLY)},
		{"MapZeroSeed", uint64(MapZeroSeed), uint64(sys.BPF_F_ZERO_SEED)},
		{"MapReadOnlyProg", uint64(MapReadOnlyProg), uint64(sys.BPF_F_RDONLY_PROG)},
		{"MapWriteOnlyProg", uint64(MapWriteOnlyProg), uint64(sys.BPF_F_WRONLY_PROG)},
		{"UpdateAny", uint64(UpdateAny), sys.BPF_ANY},
		{"UpdateNoExist", uint64(UpdateNoExist), sys.BPF_NOEXIST},
		{"UpdateExist", uint64(UpdateExist), sys.BPF_EXIST},
		{"objNameLen", objNameLen, sys.BPF_OBJ_NAME_LEN},
	} {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
	for typ, name := range map[MapType]string{Hash: "hash", RingBuf: "ringbuf", 99: "MapType(99)"} {
		if typ.String() != name {
			t.Errorf("MapType(%d).String() = %q, want %q", typ, typ.String(), name)
		}
	}
}

func TestMapLookupIntoNoAllocs(t *testing.T) {
	testutil.RequirePrivileged(t)
	m := newTestMap(t, MapSpec{Type: Hash, KeySize: 4, ValueSize: 8, MaxEntries: 4})
	key, value := ne32(1), ne64(7)
	if err := m.Update(key, value, UpdateAny); err != nil {
		t.Fatal(err)
	}
	next := make([]byte, 4)
	if a := testing.AllocsPerRun(100, func() {
		if err := m.LookupInto(key, value); err != nil {
			t.Fatal(err)
		}
		if err := m.Update(key, value, UpdateExist); err != nil {
			t.Fatal(err)
		}
		if err := m.NextKeyInto(nil, next); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Errorf("LookupInto, Update and NextKeyInto allocate %v times", a)
	}
}
