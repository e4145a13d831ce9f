package vm_test

import (
	"encoding/binary"
	"errors"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/sockfilter"
	"github.com/purebpf/purebpf/sockfilter/vm"
)

// newMap makes a map or fails t.
func newMap(t testing.TB, spec vm.MapSpec) *vm.Map {
	t.Helper()
	m, err := vm.NewMap(&spec)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func u32(x uint32) []byte { return binary.LittleEndian.AppendUint32(nil, x) }
func u64(x uint64) []byte { return binary.LittleEndian.AppendUint64(nil, x) }

// errno is what a helper returns for an errno.
func errno(e syscall.Errno) uint64 { return uint64(-int64(e)) }

// runMaps runs src, with maps, on no input and returns r0.
func runMaps(t *testing.T, src string, opts *vm.Options) uint64 {
	t.Helper()
	got, err := newVM(t, src, opts).RunMemory(nil)
	if err != nil {
		t.Fatalf("%v\n%s", err, src)
	}
	return got
}

func TestMapSpecErrors(t *testing.T) {
	for _, tc := range []struct {
		spec vm.MapSpec
		want string
	}{
		{vm.MapSpec{Type: 3, KeySize: 4, ValueSize: 4, MaxEntries: 1}, "unsupported map type MapType(3)"},
		{vm.MapSpec{Type: vm.Array, KeySize: 8, ValueSize: 4, MaxEntries: 1}, "4-byte indexes"},
		{vm.MapSpec{Type: vm.Hash, KeySize: 0, ValueSize: 4, MaxEntries: 1}, "keys are 1 to 512 bytes"},
		{vm.MapSpec{Type: vm.Hash, KeySize: 513, ValueSize: 4, MaxEntries: 1}, "keys are 1 to 512 bytes"},
		{vm.MapSpec{Type: vm.Hash, KeySize: 4, ValueSize: 0, MaxEntries: 1}, "value size 0"},
		{vm.MapSpec{Type: vm.Hash, KeySize: 4, ValueSize: 4}, "max entries 0"},
		{vm.MapSpec{Type: vm.PerCPUArray, ValueSize: 40000, MaxEntries: 1}, "at most 32768 bytes"},
		{vm.MapSpec{Type: vm.RingBuf, MaxEntries: 5000}, "power-of-two multiple of the page size (4096 bytes), such as 8192"},
		{vm.MapSpec{Type: vm.RingBuf, KeySize: 4, MaxEntries: 4096}, "a ring buffer has neither"},
		{vm.MapSpec{Type: vm.Array, ValueSize: 4, MaxEntries: 1, Flags: vm.MapNoCommonLRU}, "flags 0x2 are not for a array map"},
		{vm.MapSpec{Type: vm.Array, Name: "a-b", ValueSize: 4, MaxEntries: 1}, `has the character '-'`},
		{vm.MapSpec{Type: vm.Array, ValueSize: 1 << 20, MaxEntries: 1 << 12}, "more than the VM keeps in a map"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			_, err := vm.NewMap(&tc.spec)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("NewMap(%+v): %v, want an error with %q", tc.spec, err, tc.want)
			}
		})
	}
}

// TestArrayMap runs bpf_map_lookup_elem, _update_elem and _delete_elem
// on an array, with their errors, and checks the map afterwards.
func TestArrayMap(t *testing.T) {
	m := newMap(t, vm.MapSpec{Type: vm.Array, KeySize: 4, ValueSize: 8, MaxEntries: 4})
	opts := &vm.Options{Maps: map[string]*vm.Map{"a": m}}
	// r9 collects the helpers' results, one a byte.
	src := `
		*(u32 *)(r10 -4) = 1
		*(u64 *)(r10 -16) = 7
		r1 = map[a]
		r2 = r10
		r2 += -4
		call bpf_map_lookup_elem
		if r0 == 0x0 goto out
		r1 = 5
		lock *(u64 *)(r0 +0) += r1
		r1 = *(u64 *)(r0 +0)
		*(u64 *)(r0 +0) = r1
		*(u32 *)(r10 -4) = 2
		r1 = map[a]
		r2 = r10
		r2 += -4
		r3 = r10
		r3 += -16
		r4 = 0
		call bpf_map_update_elem
		r9 = r0
		r1 = map[a]
		r2 = r10
		r2 += -4
		r3 = r10
		r3 += -16
		r4 = 1
		call bpf_map_update_elem
		if r0 != -17 goto out
		*(u32 *)(r10 -4) = 4
		r1 = map[a]
		r2 = r10
		r2 += -4
		r3 = r10
		r3 += -16
		r4 = 0
		call bpf_map_update_elem
		if r0 != -7 goto out
		r1 = map[a]
		r2 = r10
		r2 += -4
		call bpf_map_lookup_elem
		if r0 != 0x0 goto out
		r1 = map[a]
		r2 = r10
		r2 += -4
		call bpf_map_delete_elem
		if r0 != -22 goto out
		*(u32 *)(r10 -4) = 0
		r1 = map[a]
		r2 = r10
		r2 += -4
		r3 = r10
		r3 += -16
		r4 = 4
		call bpf_map_update_elem
		if r0 != -22 goto out
		r0 = 1
	out:
		exit
	`
	for run := 1; run <= 2; run++ {
		if got := runMaps(t, src, opts); got != 1 {
			t.Fatalf("run %d: r0 = %#x", run, got)
		}
		v1, err := m.Lookup(u32(1))
		if err != nil || binary.LittleEndian.Uint64(v1) != uint64(5*run) {
			t.Errorf("run %d: element 1 = % x, %v", run, v1, err)
		}
	}
	if v2, err := m.Lookup(u32(2)); err != nil || binary.LittleEndian.Uint64(v2) != 7 {
		t.Errorf("element 2 = % x, %v", v2, err)
	}
	if _, err := m.Lookup(u32(4)); !errors.Is(err, vm.ErrKeyNotExist) || !errors.Is(err, syscall.ENOENT) {
		t.Errorf("lookup past the end: %v", err)
	}
	if err := m.Update(u32(0), u64(1), vm.UpdateNoExist); !errors.Is(err, vm.ErrKeyExist) {
		t.Errorf("UpdateNoExist on an array: %v", err)
	}
	if err := m.Delete(u32(0)); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("delete from an array: %v", err)
	}
	if k, err := m.NextKey(u32(3)); !errors.Is(err, vm.ErrKeyNotExist) {
		t.Errorf("NextKey after the last: % x, %v", k, err)
	}
}

// TestHashMap runs the update flags and the full map of a hash map.
func TestHashMap(t *testing.T) {
	m := newMap(t, vm.MapSpec{Type: vm.Hash, KeySize: 4, ValueSize: 4, MaxEntries: 2})
	opts := &vm.Options{Maps: map[string]*vm.Map{"h": m}}
	update := func(key, value uint32, flags int) string {
		return `
		*(u32 *)(r10 -4) = ` + itoa(int(key)) + `
		*(u32 *)(r10 -8) = ` + itoa(int(value)) + `
		r1 = map[h]
		r2 = r10
		r2 += -4
		r3 = r10
		r3 += -8
		r4 = ` + itoa(flags) + `
		call bpf_map_update_elem
		exit
		`
	}
	for _, tc := range []struct {
		name string
		src  string
		want uint64
	}{
		{"create", update(1, 10, 1), 0},
		{"noexist on an element", update(1, 11, 1), errno(syscall.EEXIST)},
		{"exist on none", update(2, 20, 2), errno(syscall.ENOENT)},
		{"exist", update(1, 12, 2), 0},
		{"bad flags", update(1, 12, 3), errno(syscall.EINVAL)},
		{"BPF_F_LOCK without a spin lock", update(1, 12, 4), errno(syscall.EINVAL)},
		{"second", update(2, 20, 0), 0},
		{"full", update(3, 30, 0), errno(syscall.E2BIG)},
		{"replace when full", update(2, 21, 0), 0},
		{"delete", `
		*(u32 *)(r10 -4) = 1
		r1 = map[h]
		r2 = r10
		r2 += -4
		call bpf_map_delete_elem
		exit`, 0},
		{"delete again", `
		*(u32 *)(r10 -4) = 1
		r1 = map[h]
		r2 = r10
		r2 += -4
		call bpf_map_delete_elem
		exit`, errno(syscall.ENOENT)},
		{"room again", update(3, 30, 0), 0},
	} {
		if got := runMaps(t, tc.src, opts); got != tc.want {
			t.Errorf("%s: r0 = %#x, want %#x", tc.name, got, tc.want)
		}
	}
	got := map[uint32]uint32{}
	for k, v := range m.All() {
		got[binary.LittleEndian.Uint32(k)] = binary.LittleEndian.Uint32(v)
	}
	if len(got) != 2 || got[2] != 21 || got[3] != 30 || m.Len() != 2 {
		t.Errorf("map holds %v, want map[2:21 3:30]", got)
	}
}

func itoa(x int) string {
	if x < 0 {
		return "-" + itoa(-x)
	}
	if x < 10 {
		return string(rune('0' + x))
	}
	return itoa(x/10) + string(rune('0'+x%10))
}

// TestPerCPUMaps runs programs on CPU 2 of 4: they see their CPU's
// values only, and bpf_get_smp_processor_id says 2.
func TestPerCPUMaps(t *testing.T) {
	arr := newMap(t, vm.MapSpec{Type: vm.PerCPUArray, ValueSize: 4, MaxEntries: 1, CPUs: 4})
	hash := newMap(t, vm.MapSpec{Type: vm.PerCPUHash, KeySize: 4, ValueSize: 4, MaxEntries: 4, CPUs: 4})
	opts := &vm.Options{CPU: 2, Maps: map[string]*vm.Map{"a": arr, "h": hash}}
	src := `
		*(u32 *)(r10 -4) = 0
		r1 = map[a]
		r2 = r10
		r2 += -4
		call bpf_map_lookup_elem
		if r0 == 0x0 goto out
		r6 = r0
		call bpf_get_smp_processor_id
		*(u32 *)(r6 +0) = r0
		*(u32 *)(r10 -8) = r0
		r1 = map[h]
		r2 = r10
		r2 += -4
		r3 = r10
		r3 += -8
		r4 = 0
		call bpf_map_update_elem
	out:
		exit
	`
	if err := hash.UpdatePerCPU(u32(0), [][]byte{u32(9), u32(9), u32(9), u32(9)}, vm.UpdateAny); err != nil {
		t.Fatal(err)
	}
	if got := runMaps(t, src, opts); got != 0 {
		t.Fatalf("r0 = %#x", got)
	}
	for name, m := range map[string]*vm.Map{"array": arr, "hash": hash} {
		values, err := m.LookupPerCPU(u32(0))
		if err != nil {
			t.Fatal(err)
		}
		for c, v := range values {
			want := uint32(0)
			switch {
			case c == 2:
				want = 2
			case name == "hash":
				want = 9 // updated in place: the other CPUs' stay
			}
			if binary.LittleEndian.Uint32(v) != want {
				t.Errorf("%s: CPU %d's value % x, want %d", name, c, v, want)
			}
		}
	}
	if _, err := vm.New(mustParse(t, "r1 = map[a]\nr0 = 0\nexit\n"), &vm.Options{CPU: 4, Maps: opts.Maps}); !errors.Is(err, vm.ErrUnsupported) {
		t.Errorf("New on CPU 4 of a map of 4: %v", err)
	}
}

// TestLRUEvicts fills an LRU map past its size: the VM evicts as the
// kernel does on one CPU, target free elements (MaxEntries / 2 on one CPU)
// at once, oldest first, sparing those a program looked up since.
func TestLRUEvicts(t *testing.T) {
	m := newMap(t, vm.MapSpec{Type: vm.LRUHash, KeySize: 4, ValueSize: 4, MaxEntries: 8})
	opts := &vm.Options{Maps: map[string]*vm.Map{"l": m}}
	for k := range uint32(8) {
		if err := m.Update(u32(k), u32(k), vm.UpdateAny); err != nil {
			t.Fatal(err)
		}
	}
	// A program looks up key 0, the oldest.
	lookup := `
		*(u32 *)(r10 -4) = 0
		r1 = map[l]
		r2 = r10
		r2 += -4
		call bpf_map_lookup_elem
		exit
	`
	if got := runMaps(t, lookup, opts); got == 0 {
		t.Fatal("key 0 is not in the map")
	}
	if err := m.Update(u32(8), u32(8), vm.UpdateAny); err != nil {
		t.Fatal(err)
	}
	var keys []uint32
	for k := range m.All() {
		keys = append(keys, binary.LittleEndian.Uint32(k))
	}
	has := map[uint32]bool{}
	for _, k := range keys {
		has[k] = true
	}
	// The first refill took the 4 free elements of the 8 a CPU's local list
	// holds at most: the second finds none free and evicts 4, the oldest
	// unreferenced: 1, 2, 3, 4.
	for k, want := range map[uint32]bool{0: true, 1: false, 2: false, 3: false, 4: false, 5: true, 7: true, 8: true} {
		if has[k] != want {
			t.Errorf("key %d in the map: %v, want %v (keys %v)", k, has[k], want, keys)
		}
	}
}

// TestRingBuf writes records with bpf_ringbuf_reserve and _submit, _discard
// and _output, reads them back, and runs the ring full.
func TestRingBuf(t *testing.T) {
	rb := newMap(t, vm.MapSpec{Type: vm.RingBuf, MaxEntries: 4096})
	opts := &vm.Options{Maps: map[string]*vm.Map{"rb": rb}}
	src := `
		r1 = map[rb]
		r2 = 12
		r3 = 0
		call bpf_ringbuf_reserve
		if r0 == 0x0 goto out
		r1 = 0x1122334455667788 ll
		*(u64 *)(r0 +0) = r1
		*(u32 *)(r0 +8) = 0xaabbccdd
		r1 = r0
		r2 = 0
		call bpf_ringbuf_submit
		r1 = map[rb]
		r2 = 8
		r3 = 0
		call bpf_ringbuf_reserve
		if r0 == 0x0 goto out
		r1 = r0
		r2 = 0
		call bpf_ringbuf_discard
		*(u32 *)(r10 -4) = 0x01020304
		r1 = map[rb]
		r2 = r10
		r2 += -4
		r3 = 4
		r4 = 0
		call bpf_ringbuf_output
		if r0 != 0x0 goto out
		r1 = map[rb]
		r2 = 0
		call bpf_ringbuf_query
	out:
		exit
	`
	// 24 + 16 + 16 bytes: the records with their 8-byte headers, each
	// rounded up to 8 bytes.
	if got := runMaps(t, src, opts); got != 56 {
		t.Fatalf("bpf_ringbuf_query(BPF_RB_AVAIL_DATA) = %d, want 56", got)
	}
	var recs [][]byte
	for rec := range rb.Records() {
		recs = append(recs, append([]byte(nil), rec...))
	}
	want := [][]byte{append(u64(0x1122334455667788), u32(0xaabbccdd)...), u32(0x01020304)}
	if len(recs) != 2 || string(recs[0]) != string(want[0]) || string(recs[1]) != string(want[1]) {
		t.Errorf("records % x, want % x", recs, want)
	}
	// A full ring: output gives -EAGAIN, reserve NULL.
	fill := `
		r1 = map[rb]
		r2 = 4000
		r3 = 0
		call bpf_ringbuf_reserve
		if r0 == 0x0 goto out
		r1 = r0
		r2 = 0
		call bpf_ringbuf_submit
		r1 = map[rb]
		r2 = r10
		r2 += -104
		r3 = 100
		r4 = 0
		call bpf_ringbuf_output
		r6 = r0
		r1 = map[rb]
		r2 = 100
		r3 = 0
		call bpf_ringbuf_reserve
		if r0 != 0x0 goto out
		r0 = r6
	out:
		exit
	`
	if got := runMaps(t, fill, opts); got != errno(syscall.EAGAIN) {
		t.Errorf("output into a full ring: %#x, want -EAGAIN", got)
	}
	if rec, ok := rb.NextRecord(); !ok || len(rec) != 4000 {
		t.Errorf("the record of 4000 bytes: %d bytes, %v", len(rec), ok)
	}
}

// TestMapErrors checks what the VM refuses, at New and in a run.
func TestMapErrors(t *testing.T) {
	arr := newMap(t, vm.MapSpec{Type: vm.Array, ValueSize: 8, MaxEntries: 2})
	one := newMap(t, vm.MapSpec{Type: vm.Array, ValueSize: 8, MaxEntries: 1})
	rb := newMap(t, vm.MapSpec{Type: vm.RingBuf, MaxEntries: 4096})
	maps := map[string]*vm.Map{"a": arr, "one": one, "rb": rb}
	if _, err := vm.New(mustParse(t, "r1 = map[missing]\nr0 = 0\nexit\n"), &vm.Options{Maps: maps}); err == nil ||
		!strings.Contains(err.Error(), `map "missing", which Options.Maps does not give (it gives "a", "one", "rb")`) {
		t.Errorf("a missing map: %v", err)
	}
	if _, err := vm.New(mustParse(t, "r1 = map[a][0]+0\nr0 = 0\nexit\n"), &vm.Options{Maps: maps}); err == nil {
		t.Error("a value address in an array of two elements: no error")
	}
	for _, tc := range []struct {
		name, src string
		want      error
	}{
		// The value is 8 bytes: the 9th is no memory of the program.
		{"past a value", "r1 = map[one][0]+4\nr0 = *(u32 *)(r1 +4)\nexit\n", vm.ErrMemory},
		{"a value address", "r1 = map[one][0]+4\nr0 = *(u32 *)(r1 +0)\nexit\n", nil},
		{"a record after submit", `
			r1 = map[rb]
			r2 = 8
			r3 = 0
			call bpf_ringbuf_reserve
			if r0 == 0x0 goto out
			r6 = r0
			r1 = r0
			r2 = 0
			call bpf_ringbuf_submit
			*(u64 *)(r6 +0) = 1
		out:
			exit`, vm.ErrMemory},
		{"past a record", `
			r1 = map[rb]
			r2 = 8
			r3 = 0
			call bpf_ringbuf_reserve
			if r0 == 0x0 goto out
			r6 = r0
			*(u64 *)(r0 +8) = 1
			r1 = r6
			r2 = 0
			call bpf_ringbuf_submit
		out:
			exit`, vm.ErrMemory},
		{"exit holding a record", `
			r1 = map[rb]
			r2 = 8
			r3 = 0
			call bpf_ringbuf_reserve
			r0 = 0
			exit`, vm.ErrCall},
		{"submit of no record", "r1 = r10\nr2 = 0\ncall bpf_ringbuf_submit\nexit\n", vm.ErrCall},
		{"lookup in a ring buffer", "*(u32 *)(r10 -4) = 0\nr1 = map[rb]\nr2 = r10\nr2 += -4\ncall bpf_map_lookup_elem\nexit\n", vm.ErrCall},
		{"lookup in no map", "r1 = 5\nr2 = r10\ncall bpf_map_lookup_elem\nexit\n", vm.ErrCall},
		{"a key outside memory", "r1 = map[a]\nr2 = 0\ncall bpf_map_lookup_elem\nexit\n", vm.ErrMemory},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := newVM(t, tc.src, &vm.Options{Maps: maps}).RunMemory(nil)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("%v, want %v", err, tc.want)
			}
		})
	}
	// The ring holds the record submitted before the failed write to it;
	// those the failed runs held went back, discarded.
	if rec, ok := rb.NextRecord(); !ok || string(rec) != string(make([]byte, 8)) {
		t.Errorf("the submitted record: % x, %v", rec, ok)
	}
	if rec, ok := rb.NextRecord(); ok {
		t.Errorf("a record % x left in the ring", rec)
	}
}

// TestMapConcurrentRuns runs a counter's atomic add from many goroutines:
// none is lost.
func TestMapConcurrentRuns(t *testing.T) {
	m := newMap(t, vm.MapSpec{Type: vm.Array, ValueSize: 8, MaxEntries: 1})
	v := newVM(t, `
		r1 = map[c][0]+0
		r2 = 1
		lock *(u64 *)(r1 +0) += r2
		r0 = 0
		exit`, &vm.Options{Maps: map[string]*vm.Map{"c": m}})
	const goroutines, runs = 8, 500
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range runs {
				if _, err := v.RunMemory(nil); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if got, _ := m.Lookup(u32(0)); binary.LittleEndian.Uint64(got) != goroutines*runs {
		t.Errorf("counter %d, want %d", binary.LittleEndian.Uint64(got), goroutines*runs)
	}
}

// mustParse parses asm text or fails t.
func mustParse(t testing.TB, src string) asm.Instructions {
	t.Helper()
	insns, err := asm.Parse(src)
	if err != nil {
		t.Fatal(err)
	}
	return insns
}

// TestMapTypesMatchSockfilter pins that the VM's map types and flags have
// sockfilter's numbers, which are the kernel's, so that a spec converts.
func TestMapTypesMatchSockfilter(t *testing.T) {
	for _, tc := range []struct {
		vm vm.MapType
		sf sockfilter.MapType
	}{
		{vm.Hash, sockfilter.Hash}, {vm.Array, sockfilter.Array}, {vm.PerCPUHash, sockfilter.PerCPUHash},
		{vm.PerCPUArray, sockfilter.PerCPUArray}, {vm.LRUHash, sockfilter.LRUHash},
		{vm.LRUPerCPUHash, sockfilter.LRUPerCPUHash}, {vm.RingBuf, sockfilter.RingBuf},
	} {
		if uint32(tc.vm) != uint32(tc.sf) || tc.vm.String() != tc.sf.String() {
			t.Errorf("vm %v (%d), sockfilter %v (%d)", tc.vm, tc.vm, tc.sf, tc.sf)
		}
	}
	for _, tc := range []struct {
		vm vm.MapFlags
		sf sockfilter.MapFlags
	}{
		{vm.MapNoPrealloc, sockfilter.MapNoPrealloc}, {vm.MapNoCommonLRU, sockfilter.MapNoCommonLRU}, {vm.MapZeroSeed, sockfilter.MapZeroSeed},
	} {
		if uint32(tc.vm) != uint32(tc.sf) {
			t.Errorf("flag vm %#x, sockfilter %#x", tc.vm, tc.sf)
		}
	}
}

// TestEnvMap checks that a Helper of Options.Helpers gets the map a
// program passes it, from Env.Map, and that Env.Object does not take it
// for a map fd.
func TestEnvMap(t *testing.T) {
	m := newMap(t, vm.MapSpec{Type: vm.Hash, KeySize: 4, ValueSize: 4, MaxEntries: 2})
	var got *vm.Map
	helper := func(e *vm.Env, r1, r2, r3, r4, r5 uint64) (uint64, error) {
		got = e.Map(r1)
		if _, _, ok := e.Object(r1); ok {
			return 0, errors.New("Object takes a map of Options.Maps")
		}
		return 7, nil
	}
	v := newVM(t, "r1 = map[h]\ncall bpf_map_peek_elem\nexit\n", &vm.Options{Maps: map[string]*vm.Map{"h": m},
		Helpers: map[asm.HelperFunc]vm.Helper{asm.FnMapPeekElem: helper}})
	if r0, err := v.RunMemory(nil); r0 != 7 || err != nil || got != m {
		t.Errorf("r0 %d, %v; the helper got map %p, want %p", r0, err, got, m)
	}
}
