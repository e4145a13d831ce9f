package sockfilter

import (
	"encoding/binary"
	"errors"
	"maps"
	"os"
	"testing"

	"github.com/purebpf/purebpf/internal/testutil"
)

// fillHash puts n elements key i → value 1000+i (8 bytes) into m.
func fillHash(t *testing.T, m *Map, n int) map[uint32]uint64 {
	t.Helper()
	want := map[uint32]uint64{}
	for i := range uint32(n) {
		if err := m.Update(ne32(i), ne64(uint64(1000+i)), UpdateNoExist); err != nil {
			t.Fatal(err)
		}
		want[i] = uint64(1000 + i)
	}
	return want
}

// readAllSingle reads m with the iterator and single lookups.
func readAllSingle(t *testing.T, m *Map) map[uint32]uint64 {
	t.Helper()
	got := map[uint32]uint64{}
	it := m.Iterate()
	for it.Next() {
		k := binary.NativeEndian.Uint32(it.Key())
		if _, dup := got[k]; dup {
			t.Errorf("key %d twice", k)
		}
		got[k] = binary.NativeEndian.Uint64(it.Value())
		v, err := m.Lookup(it.Key())
		if err != nil || binary.NativeEndian.Uint64(v) != got[k] {
			t.Errorf("Lookup(%d) = %x, %v; iterator says %d", k, v, err, got[k])
		}
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return got
}

// readAllBatch reads m with LookupBatch, batch elements at a time.
func readAllBatch(t *testing.T, m *Map, batch int, andDelete bool) map[uint32]uint64 {
	t.Helper()
	got := map[uint32]uint64{}
	keys, values := make([]byte, 4*batch), make([]byte, 8*batch)
	var c MapCursor
	for calls := 0; ; calls++ {
		var n int
		var err error
		if andDelete {
			n, err = m.LookupAndDeleteBatch(&c, keys, values)
		} else {
			n, err = m.LookupBatch(&c, keys, values)
		}
		for i := range n {
			k := binary.NativeEndian.Uint32(keys[4*i:])
			if _, dup := got[k]; dup {
				t.Errorf("key %d twice", k)
			}
			got[k] = binary.NativeEndian.Uint64(values[8*i:])
		}
		if errors.Is(err, ErrKeyNotExist) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if calls > 1000 {
			t.Fatal("batch lookup does not end")
		}
	}
	// A finished cursor stays finished.
	if n, err := m.LookupBatch(&c, keys, values); n != 0 || !errors.Is(err, ErrKeyNotExist) {
		t.Errorf("LookupBatch after the end = %d, %v", n, err)
	}
	return got
}

func TestMapIterateAndBatches(t *testing.T) {
	testutil.RequirePrivileged(t)
	const n = 100
	m := newTestMap(t, MapSpec{Type: Hash, Name: "batch", KeySize: 4, ValueSize: 8, MaxEntries: n})
	want := fillHash(t, m, n)

	if got := readAllSingle(t, m); !maps.Equal(got, want) {
		t.Errorf("iterator read %d elements, want %d: %v", len(got), len(want), got)
	}
	// Batches of 16 hold any bucket of a 100-element map.
	if got := readAllBatch(t, m, 16, false); !maps.Equal(got, want) {
		t.Errorf("LookupBatch read %d elements, want %d", len(got), len(want))
	}

	// UpdateBatch overwrites them all.
	keys, values := make([]byte, 0, 4*n), make([]byte, 0, 8*n)
	for i := range uint32(n) {
		keys = binary.NativeEndian.AppendUint32(keys, i)
		values = binary.NativeEndian.AppendUint64(values, uint64(2000+i))
		want[i] = uint64(2000 + i)
	}
	if k, err := m.UpdateBatch(keys, values); k != n || err != nil {
		t.Fatalf("UpdateBatch = %d, %v", k, err)
	}
	if got := readAllSingle(t, m); !maps.Equal(got, want) {
		t.Errorf("after UpdateBatch the iterator reads %v", got)
	}

	// DeleteBatch the first half; LookupAndDeleteBatch takes the rest.
	if k, err := m.DeleteBatch(keys[:4*n/2]); k != n/2 || err != nil {
		t.Fatalf("DeleteBatch = %d, %v", k, err)
	}
	if k, err := m.DeleteBatch(keys[:4]); k != 0 || !errors.Is(err, ErrKeyNotExist) {
		t.Errorf("DeleteBatch of a deleted key = %d, %v; want 0, ErrKeyNotExist", k, err)
	}
	for i := range uint32(n / 2) {
		delete(want, i)
	}
	if got := readAllBatch(t, m, 16, true); !maps.Equal(got, want) {
		t.Errorf("LookupAndDeleteBatch read %d elements, want %d", len(got), len(want))
	}
	if got := readAllSingle(t, m); len(got) != 0 {
		t.Errorf("%d elements left after LookupAndDeleteBatch", len(got))
	}

	// Bad buffers are refused before the kernel sees them.
	var c MapCursor
	if _, err := m.LookupBatch(&c, make([]byte, 6), make([]byte, 8)); err == nil {
		t.Error("LookupBatch with 6 key bytes succeeded")
	}
	if _, err := m.LookupBatch(&c, make([]byte, 8), make([]byte, 8)); err == nil {
		t.Error("LookupBatch with room for 1 value and 2 keys succeeded")
	}
	other := newTestMap(t, MapSpec{Type: Hash, KeySize: 4, ValueSize: 8, MaxEntries: 1})
	m.LookupBatch(&c, make([]byte, 4), make([]byte, 8))
	if _, err := other.LookupBatch(&c, make([]byte, 4), make([]byte, 8)); err == nil {
		t.Error("a cursor of one map was accepted by another")
	}
}

func TestMapArrayIterateAndBatch(t *testing.T) {
	testutil.RequirePrivileged(t)
	const n = 10
	m := newTestMap(t, MapSpec{Type: Array, ValueSize: 8, MaxEntries: n})
	want := map[uint32]uint64{}
	for i := range uint32(n) {
		if err := m.Update(ne32(i), ne64(uint64(i*i)), UpdateAny); err != nil {
			t.Fatal(err)
		}
		want[i] = uint64(i * i)
	}
	if got := readAllSingle(t, m); !maps.Equal(got, want) {
		t.Errorf("iterator read %v, want %v", got, want)
	}
	// Batches of 3 over 10 elements: 3 + 3 + 3 + 1.
	if got := readAllBatch(t, m, 3, false); !maps.Equal(got, want) {
		t.Errorf("LookupBatch read %v, want %v", got, want)
	}
	if _, err := m.DeleteBatch(ne32(0)); err == nil {
		t.Error("DeleteBatch on an array succeeded")
	}
}

func TestMapPerCPUBatch(t *testing.T) {
	testutil.RequirePrivileged(t)
	cpus, err := PossibleCPUs()
	if err != nil {
		t.Fatal(err)
	}
	m := newTestMap(t, MapSpec{Type: PerCPUHash, KeySize: 4, ValueSize: 4, MaxEntries: 4})
	for k := range uint32(3) {
		values := make([][]byte, cpus)
		for c := range values {
			values[c] = ne32(k*100 + uint32(c))
		}
		if err := m.UpdatePerCPU(ne32(k), values, UpdateAny); err != nil {
			t.Fatal(err)
		}
	}
	keys, values := make([]byte, 4*4), make([]byte, 4*m.ValueBufSize())
	var c MapCursor
	n, err := m.LookupBatch(&c, keys, values)
	if !errors.Is(err, ErrKeyNotExist) || n != 3 {
		t.Fatalf("LookupBatch = %d, %v; want 3 and the end", n, err)
	}
	for i := range n {
		k := binary.NativeEndian.Uint32(keys[4*i:])
		for cpu := range cpus {
			off := i*m.ValueBufSize() + 8*cpu
			if v := binary.NativeEndian.Uint32(values[off:]); v != k*100+uint32(cpu) {
				t.Errorf("key %d CPU %d: %d, want %d", k, cpu, v, k*100+uint32(cpu))
			}
		}
	}
	it := m.Iterate()
	count := 0
	for it.Next() {
		k := binary.NativeEndian.Uint32(it.Key())
		for cpu, v := range it.PerCPUValues() {
			if got := binary.NativeEndian.Uint32(v); got != k*100+uint32(cpu) {
				t.Errorf("iterator: key %d CPU %d: %d", k, cpu, got)
			}
		}
		count++
	}
	if it.Err() != nil || count != 3 {
		t.Errorf("iterator: %d elements, %v", count, it.Err())
	}
}

func TestMapRingBufHasNoElements(t *testing.T) {
	testutil.RequirePrivileged(t)
	m := newTestMap(t, MapSpec{Type: RingBuf, MaxEntries: uint32(os.Getpagesize())})
	it := m.Iterate()
	if it.Next() || it.Err() == nil {
		t.Errorf("iterating a ring buffer: Next true or no error (%v)", it.Err())
	}
	var c MapCursor
	if _, err := m.LookupBatch(&c, nil, nil); err == nil {
		t.Error("LookupBatch on a ring buffer succeeded")
	}
}
