//go:build linux

package ringbuf

import (
	"fmt"
	"math"
	"os"
	"slices"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Mapping is a ring buffer mapped into the process (ringbuf_map_mmap_kern):
// the consumer page read-write at offset 0 of the map's fd, and from
// offset one page, read-only, the producer page and the data twice.
type Mapping struct {
	page    uintptr
	cons    unsafe.Pointer // the consumer page
	area    unsafe.Pointer // the producer page, then the data twice
	areaLen uintptr
	// detached is set once Detach has replaced the kernel's pages.
	detached bool
}

// Map maps the ring buffer of size bytes whose map fd is fd, and returns
// the mapping and a Ring reading it.
func Map(fd, size int) (*Mapping, *Ring, error) {
	page := uintptr(os.Getpagesize())
	if size <= 0 || size&(size-1) != 0 || uintptr(size)%page != 0 {
		return nil, nil, fmt.Errorf("ring buffer size %d is not a power-of-two multiple of the page size", size)
	}
	if uint64(size) > (math.MaxUint-uint64(page))/2 {
		return nil, nil, fmt.Errorf("ring buffer of %d bytes: twice that does not fit the address space", size)
	}
	cons, err := unix.MmapPtr(fd, 0, nil, page, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, nil, fmt.Errorf("map consumer page: %w", os.NewSyscallError("mmap", err))
	}
	m := &Mapping{page: page, cons: cons, areaLen: page + 2*uintptr(size)}
	m.area, err = unix.MmapPtr(fd, int64(page), nil, m.areaLen, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		unix.MunmapPtr(cons, page)
		return nil, nil, fmt.Errorf("map producer page and data: %w", os.NewSyscallError("mmap", err))
	}
	data := unsafe.Slice((*byte)(unsafe.Add(m.area, page)), 2*size)
	r, err := New((*uintptr)(cons), (*uintptr)(m.area), data)
	if err != nil {
		m.Unmap()
		return nil, nil, err
	}
	return m, r, nil
}

// UnmapConsumer unmaps the consumer page: the Ring may no longer Release.
func (m *Mapping) UnmapConsumer() {
	if m.cons != nil {
		unix.MunmapPtr(m.cons, m.page)
		m.cons = nil
	}
}

// Unmap unmaps what is left of the ring. Nothing may read it afterwards.
func (m *Mapping) Unmap() {
	m.UnmapConsumer()
	if m.area == nil {
		return
	}
	unix.MunmapPtr(m.area, m.areaLen)
	m.area = nil
}

// Detach lets go of the kernel's ring without unmapping a byte a reader
// may still look at: the pages of data that hold the offsets [from, hi)
// and [0, lo) (see Ring.Lent; empty ranges for none) are replaced by
// private read-only copies, each range at once (mremap(2) with
// MREMAP_FIXED moves an anonymous copy over them), and every other page
// of the producer page and the data by anonymous zero pages (mmap(2) with
// MAP_FIXED), which take no memory until read. Unmap frees it all. If a
// copy cannot be made, the kernel's pages stay mapped there instead,
// until Unmap, and Detach returns an error. The consumer page stays
// mapped: UnmapConsumer unmaps it.
func (m *Mapping) Detach(from, hi, lo int) error {
	if m.area == nil || m.detached {
		return nil
	}
	m.detached = true
	// Offsets into area, which starts one page before the data.
	var ranges [][2]uintptr
	add := func(a, b uintptr) {
		if b > a {
			ranges = append(ranges, [2]uintptr{(m.page + a) &^ (m.page - 1), (m.page + b + m.page - 1) &^ (m.page - 1)})
		}
	}
	add(0, uintptr(lo))
	add(uintptr(from), uintptr(hi))
	ranges = mergeRanges(ranges)
	var err error
	for _, r := range ranges {
		if e := m.replace(r[0], r[1]); e != nil && err == nil {
			err = e
		}
	}
	prev := uintptr(0)
	for _, r := range append(ranges, [2]uintptr{m.areaLen, m.areaLen}) {
		if r[0] > prev {
			if e := m.zero(prev, r[0]); e != nil && err == nil {
				err = e
			}
		}
		prev = r[1]
	}
	return err
}

// zero maps anonymous zero pages over area[a:b].
func (m *Mapping) zero(a, b uintptr) error {
	_, err := unix.MmapPtr(-1, 0, unsafe.Add(m.area, a), b-a, unix.PROT_READ, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_FIXED)
	if err != nil {
		return fmt.Errorf("replace ring pages: %w", os.NewSyscallError("mmap", err))
	}
	return nil
}

// replace puts a private copy of area[a:b] in its place.
func (m *Mapping) replace(a, b uintptr) error {
	n := b - a
	cp, err := unix.MmapPtr(-1, 0, nil, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return fmt.Errorf("copy lent records: %w", os.NewSyscallError("mmap", err))
	}
	copy(unsafe.Slice((*byte)(cp), n), unsafe.Slice((*byte)(unsafe.Add(m.area, a)), n))
	if err := unix.Mprotect(unsafe.Slice((*byte)(cp), n), unix.PROT_READ); err != nil {
		unix.MunmapPtr(cp, n)
		return fmt.Errorf("copy lent records: %w", os.NewSyscallError("mprotect", err))
	}
	if _, err := unix.MremapPtr(cp, n, unsafe.Add(m.area, a), n, unix.MREMAP_MAYMOVE|unix.MREMAP_FIXED); err != nil {
		unix.MunmapPtr(cp, n)
		return fmt.Errorf("copy lent records: %w", os.NewSyscallError("mremap", err))
	}
	return nil
}

// mergeRanges sorts ranges and merges those that overlap or touch.
func mergeRanges(ranges [][2]uintptr) [][2]uintptr {
	slices.SortFunc(ranges, func(x, y [2]uintptr) int {
		switch {
		case x[0] < y[0]:
			return -1
		case x[0] > y[0]:
			return 1
		}
		return 0
	})
	var out [][2]uintptr
	for _, r := range ranges {
		if n := len(out); n > 0 && r[0] <= out[n-1][1] {
			out[n-1][1] = max(out[n-1][1], r[1])
			continue
		}
		out = append(out, r)
	}
	return out
}
