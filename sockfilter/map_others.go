//go:build !linux

package sockfilter

import (
	"context"
	"fmt"
	"time"
)

// This file is map_linux.go's counterpart on other systems: maps need the
// kernel, so every operation returns errNotLinux, which matches
// errors.ErrUnsupported.

// Map is a BPF map; on this system there is none.
type Map struct{}

// NewMap returns an error: maps are Linux's.
func NewMap(spec *MapSpec) (*Map, error) { return nil, fmt.Errorf("create map: %w", errNotLinux) }

// LoadPinnedMap returns an error.
func LoadPinnedMap(path string) (*Map, error) {
	return nil, fmt.Errorf("load pinned map %s: %w", path, errNotLinux)
}

// LoadPinnedProgram returns an error.
func LoadPinnedProgram(path string) (*Program, error) {
	return nil, fmt.Errorf("load pinned program %s: %w", path, errNotLinux)
}

// FD returns -1.
func (m *Map) FD() int { return -1 }

// Close returns nil.
func (m *Map) Close() error { return nil }

// Type returns 0.
func (m *Map) Type() MapType { return 0 }

// Name returns "".
func (m *Map) Name() string { return "" }

// KeySize returns 0.
func (m *Map) KeySize() int { return 0 }

// ValueSize returns 0.
func (m *Map) ValueSize() int { return 0 }

// MaxEntries returns 0.
func (m *Map) MaxEntries() int { return 0 }

// Flags returns 0.
func (m *Map) Flags() MapFlags { return 0 }

// ValueBufSize returns 0.
func (m *Map) ValueBufSize() int { return 0 }

// Info returns an error.
func (m *Map) Info() (MapInfo, error) { return MapInfo{}, fmt.Errorf("map info: %w", errNotLinux) }

// Lookup returns an error.
func (m *Map) Lookup(key []byte) ([]byte, error) { return nil, m.err("lookup in map") }

// LookupInto returns an error.
func (m *Map) LookupInto(key, value []byte) error { return m.err("lookup in map") }

// LookupPerCPU returns an error.
func (m *Map) LookupPerCPU(key []byte) ([][]byte, error) { return nil, m.err("lookup in map") }

// Update returns an error.
func (m *Map) Update(key, value []byte, flags UpdateFlags) error { return m.err("update map") }

// UpdatePerCPU returns an error.
func (m *Map) UpdatePerCPU(key []byte, values [][]byte, flags UpdateFlags) error {
	return m.err("update map")
}

// Delete returns an error.
func (m *Map) Delete(key []byte) error { return m.err("delete from map") }

// NextKey returns an error.
func (m *Map) NextKey(key []byte) ([]byte, error) { return nil, m.err("next key of map") }

// NextKeyInto returns an error.
func (m *Map) NextKeyInto(key, next []byte) error { return m.err("next key of map") }

// LookupBatch returns an error.
func (m *Map) LookupBatch(c *MapCursor, keys, values []byte) (n int, err error) {
	return 0, m.err("lookup batch in map")
}

// LookupAndDeleteBatch returns an error.
func (m *Map) LookupAndDeleteBatch(c *MapCursor, keys, values []byte) (n int, err error) {
	return 0, m.err("lookup and delete batch in map")
}

// UpdateBatch returns an error.
func (m *Map) UpdateBatch(keys, values []byte) (n int, err error) {
	return 0, m.err("update batch in map")
}

// DeleteBatch returns an error.
func (m *Map) DeleteBatch(keys []byte) (n int, err error) { return 0, m.err("delete batch in map") }

// Pin returns an error.
func (m *Map) Pin(path string) error { return m.err("pin map") }

// Unpin returns nil: nothing is pinned.
func (m *Map) Unpin() error { return nil }

// Iterate returns an iterator that fails at once.
func (m *Map) Iterate() *MapIterator { return &MapIterator{err: m.err("iterate map")} }

func (m *Map) err(op string) error { return fmt.Errorf("%s: %w", op, errNotLinux) }

// Pin returns an error.
func (p *Program) Pin(path string) error { return fmt.Errorf("pin program: %w", errNotLinux) }

// Unpin returns nil: nothing is pinned.
func (p *Program) Unpin() error { return nil }

// MapIterator walks a map's elements; on this system there are none.
type MapIterator struct{ err error }

// Next returns false.
func (it *MapIterator) Next() bool { return false }

// Key returns nil.
func (it *MapIterator) Key() []byte { return nil }

// Value returns nil.
func (it *MapIterator) Value() []byte { return nil }

// PerCPUValues returns nil.
func (it *MapIterator) PerCPUValues() [][]byte { return nil }

// Err returns the error that keeps the walk from starting.
func (it *MapIterator) Err() error { return it.err }

// RingBufReader reads a ring buffer; on this system there is none.
type RingBufReader struct{}

// NewRingBufReader returns an error.
func NewRingBufReader(m *Map) (*RingBufReader, error) {
	return nil, fmt.Errorf("new ring buffer reader: %w", errNotLinux)
}

// Size returns 0.
func (r *RingBufReader) Size() int { return 0 }

// Next returns an error.
func (r *RingBufReader) Next() ([]byte, error) {
	return nil, fmt.Errorf("read ring buffer: %w", errNotLinux)
}

// NextBatch returns an error.
func (r *RingBufReader) NextBatch(recs [][]byte) (int, error) {
	return 0, fmt.Errorf("read ring buffer: %w", errNotLinux)
}

// NextContext returns an error.
func (r *RingBufReader) NextContext(ctx context.Context) ([]byte, error) { return r.Next() }

// SetReadDeadline returns an error.
func (r *RingBufReader) SetReadDeadline(t time.Time) error {
	return fmt.Errorf("set read deadline: %w", errNotLinux)
}

// Close returns nil.
func (r *RingBufReader) Close() error { return nil }

// PerfReader reads a perf event array; on this system there is none.
type PerfReader struct{}

// NewPerfReader returns an error.
func NewPerfReader(m *Map, opts *PerfReaderOptions) (*PerfReader, error) {
	return nil, fmt.Errorf("new perf reader: %w", errNotLinux)
}

// Next returns an error.
func (r *PerfReader) Next() (PerfRecord, error) {
	return PerfRecord{}, fmt.Errorf("read perf buffer: %w", errNotLinux)
}

// NextContext returns an error.
func (r *PerfReader) NextContext(ctx context.Context) (PerfRecord, error) { return r.Next() }

// SetReadDeadline returns an error.
func (r *PerfReader) SetReadDeadline(t time.Time) error {
	return fmt.Errorf("set read deadline: %w", errNotLinux)
}

// Lost returns 0.
func (r *PerfReader) Lost() uint64 { return 0 }

// CPUs returns nil.
func (r *PerfReader) CPUs() []int { return nil }

// Close returns nil.
func (r *PerfReader) Close() error { return nil }
