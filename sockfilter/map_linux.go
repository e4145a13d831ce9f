package sockfilter

import (
	"errors"
	"fmt"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/purebpf/purebpf/internal/sys"
)

// Map is a BPF map: kernel memory that programs and user space share. It
// holds a file descriptor until Close. Programs refer to a map by a name
// (asm.LoadMapPtr) that Load resolves from LoadOptions.Maps; the kernel
// keeps a map alive as long as a program, a pin or a descriptor holds it.
//
// A Map is safe for concurrent use; Close waits for calls in progress.
// Only NewMap and LoadPinnedMap make a Map: the zero Map holds no map, and
// its methods fail with ErrClosed.
type Map struct {
	mu   sync.RWMutex // held for reading while fd is used, for writing by Close and Pin
	fd   int
	open bool

	typ        MapType
	name       string
	keySize    uint32
	valueSize  uint32
	maxEntries uint32
	flags      MapFlags
	// cpus is the number of possible CPUs for a per-CPU map, else 0.
	cpus int

	pinned string // where Pin or LoadPinnedMap found the map, for Unpin
}

// NewMap creates a map as spec says (bpf(2) BPF_MAP_CREATE). The spec is
// checked first, so that a mistake gets an error saying what is wrong
// rather than the kernel's EINVAL; see MapSpec for the rules.
//
// Creating a map needs CAP_BPF (or CAP_SYS_ADMIN, or root); without it the
// error says so and matches unix.EPERM. Before Linux 5.11 a map's memory
// counts against RLIMIT_MEMLOCK, and a map beyond it fails with EPERM too.
func NewMap(spec *MapSpec) (*Map, error) {
	if spec == nil {
		return nil, errors.New("create map: spec is nil")
	}
	s, err := spec.checked()
	if err != nil {
		return nil, fmt.Errorf("create map %s: %w", spec.describe(), err)
	}
	cpus := 0
	if s.Type.PerCPU() {
		if cpus, err = PossibleCPUs(); err != nil {
			return nil, fmt.Errorf("create map %s: %w", spec.describe(), err)
		}
	}
	attr := sys.MapCreateAttr{
		MapType:    uint32(s.Type),
		KeySize:    s.KeySize,
		ValueSize:  s.ValueSize,
		MaxEntries: s.MaxEntries,
		MapFlags:   uint32(s.Flags),
		MapName:    sys.NewObjName(s.Name),
	}
	fd, err := sys.MapCreate(&attr)
	if err != nil {
		return nil, fmt.Errorf("create map %s: %w", spec.describe(), createError(s, err))
	}
	return &Map{
		fd: fd, open: true,
		typ: s.Type, name: s.Name,
		keySize: s.KeySize, valueSize: s.ValueSize, maxEntries: s.MaxEntries, flags: s.Flags,
		cpus: cpus,
	}, nil
}

// createError adds to an error of BPF_MAP_CREATE what the caller needs.
func createError(s MapSpec, err error) error {
	switch {
	case errors.Is(err, unix.EPERM):
		return fmt.Errorf("needs CAP_BPF (or CAP_SYS_ADMIN, or root), and before Linux 5.11 a RLIMIT_MEMLOCK that holds the map: %w", err)
	case errors.Is(err, unix.EINVAL) && s.Type == RingBuf:
		return fmt.Errorf("ring buffers need Linux 5.8: %w", err)
	case errors.Is(err, unix.EINVAL):
		return fmt.Errorf("the kernel refused the spec (an older kernel may lack the map type or a flag): %w", err)
	case errors.Is(err, unix.E2BIG):
		return fmt.Errorf("the key, the value or the whole map is larger than the kernel allows: %w", err)
	case errors.Is(err, unix.ENOMEM):
		return fmt.Errorf("out of kernel memory for %d entries: %w", s.MaxEntries, err)
	}
	return err
}

// FD returns the map's file descriptor, or -1 after Close and for the zero
// Map. The fd stays owned by m: do not close it.
func (m *Map) FD() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if !m.open {
		return -1
	}
	return m.fd
}

// Close releases the map's file descriptor. The kernel frees the map when
// nothing else holds it: programs that use it and pins keep it. Close is
// idempotent: later calls return nil.
func (m *Map) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.open {
		return nil
	}
	err := unix.Close(m.fd)
	m.fd, m.open = -1, false
	if err != nil {
		return fmt.Errorf("close map %s: %w", m.describe(), err)
	}
	return nil
}

// Type returns the map's type.
func (m *Map) Type() MapType { return m.typ }

// Name returns the name the map was created with, possibly "".
func (m *Map) Name() string { return m.name }

// KeySize returns the size of the map's keys in bytes.
func (m *Map) KeySize() int { return int(m.keySize) }

// ValueSize returns the size of the map's values in bytes; for a per-CPU
// map, of each CPU's value.
func (m *Map) ValueSize() int { return int(m.valueSize) }

// MaxEntries returns the map's capacity: elements for arrays and hash
// maps, bytes for a ring buffer, CPUs for a perf event array.
func (m *Map) MaxEntries() int { return int(m.maxEntries) }

// Flags returns the flags the map was created with.
func (m *Map) Flags() MapFlags { return m.flags }

// ValueBufSize returns the size of a value as the kernel copies it to and
// from user space, the size LookupInto, Update and the batch operations
// take: ValueSize, or for a per-CPU map one ValueSize rounded up to a
// multiple of 8 for each possible CPU (bpf_map_value_size).
func (m *Map) ValueBufSize() int {
	if m.cpus == 0 {
		return int(m.valueSize)
	}
	return m.cpus * perCPUStride(m.valueSize)
}

// describe names the map in errors: by its name, else by its type.
func (m *Map) describe() string {
	if m.name != "" {
		return strconv.Quote(m.name)
	}
	return "(" + m.typ.String() + ")"
}

// use runs f with the map's fd, held open meanwhile; an error of f is
// returned as it is.
func (m *Map) use(op string, f func(fd int) error) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if !m.open {
		return fmt.Errorf("%s: map closed or never created: %w", op, ErrClosed)
	}
	return f(m.fd)
}
