//go:build linux

package ringbuf

import (
	"errors"
	"fmt"
	"math"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/purebpf/purebpf/sockfilter/internal/heapmap"
)

// Mapping is a ring buffer mapped into the process (ringbuf_map_mmap_kern):
// the consumer page read-write at offset 0 of the map's fd, and from
// offset one page, read-only, the producer page and the data twice.
//
// Records are handed out in place, as slices of the data, and a caller may
// keep one after the next read, after Close, after dropping the reader:
// it must never fault. So the producer page and the data are mapped over
// a heap object (package heapmap), which every record then keeps alive,
// and Close puts private memory back under the object, with the bytes of
// the records still lent, before the garbage collector can free it.
// Nothing unmaps the object. The consumer page, which no record points
// into, is mapped on its own and unmapped by Close. The object is a page
// and twice the ring's size, and counts in the Go heap's size
// (runtime.MemStats.HeapAlloc, GOGC, GOMEMLIMIT).
//
// A Mapping is not safe for concurrent use.
type Mapping struct {
	page int
	cons unsafe.Pointer // the consumer page; nil once Close unmapped it
	obj  heapmap.Object // the producer page, then the data twice; zero after Close
	ring *Ring
}

// errUnmapped is what a Ring returns once its Mapping is closed.
var errUnmapped = errors.New("ring buffer unmapped")

// Map maps the ring buffer of size bytes whose map fd is fd, and returns
// the mapping and a Ring reading it.
func Map(fd, size int) (*Mapping, *Ring, error) {
	page := os.Getpagesize()
	if size <= 0 || size&(size-1) != 0 || size%page != 0 {
		return nil, nil, fmt.Errorf("ring buffer size %d is not a power-of-two multiple of the page size", size)
	}
	if uint64(size) > (math.MaxInt-uint64(2*page))/2 {
		return nil, nil, fmt.Errorf("ring buffer of %d bytes: twice that does not fit the address space", size)
	}
	cons, err := unix.MmapPtr(fd, 0, nil, uintptr(page), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, nil, fmt.Errorf("map consumer page: %w", os.NewSyscallError("mmap", err))
	}
	obj := heapmap.Pages(page + 2*size)
	mem := obj.Mem
	if err := heapmap.MapFile(mem, unix.PROT_READ, unix.MAP_SHARED, fd, int64(page)); err != nil {
		// A failed MAP_FIXED may have unmapped the range, or (before
		// Linux 6.12) mapped part of the ring: put ordinary memory back,
		// or keep the object from the heap for good.
		obj.Replace(nil)
		unix.MunmapPtr(cons, uintptr(page))
		return nil, nil, fmt.Errorf("map producer page and data: %w", os.NewSyscallError("mmap", err))
	}
	r, err := New((*uintptr)(cons), (*uintptr)(unsafe.Pointer(&mem[0])), mem[page:])
	if err != nil {
		obj.Replace(nil)
		unix.MunmapPtr(cons, uintptr(page))
		return nil, nil, err
	}
	m := &Mapping{page: page, cons: cons, obj: obj, ring: r}
	return m, r, nil
}

// Close lets go of the kernel's ring for good. It puts private anonymous
// memory under the producer page and the data (heapmap.Object.Replace), with
// the bytes of the pages that hold the records the Ring has returned
// since it last stored consumer_pos (Ring.Lent) — copied in, each run of
// pages at once, so that a goroutine reading such a record meanwhile sees
// its bytes throughout — and fresh zero pages everywhere else. Then, if
// that worked, it hands those records' space back to the producers
// (Ring.Release), and it unmaps the consumer page. The Ring returns an
// error from then on, and refers to the memory no longer: the records
// lent keep it alive for as long as they are used.
//
// If a page cannot be replaced, it stays the kernel's, the memory is kept
// from the heap for good, the records are not handed back (the producers
// must not overwrite bytes a record may still show: the next reader of
// the map reads them again), and Close returns the error. Close is
// idempotent.
func (m *Mapping) Close() error {
	if m.cons == nil {
		return nil
	}
	r := m.ring
	var keep []heapmap.Span
	if from, hi, lo, ok := r.Lent(); ok {
		// Offsets into mem, which starts one page before the data.
		keep = append(keep, heapmap.Span{From: m.page + from, To: m.page + hi})
		if lo > 0 {
			keep = append(keep, heapmap.Span{From: m.page, To: m.page + lo})
		}
	}
	err := m.obj.Replace(keep)
	if err == nil {
		r.Release()
	}
	unix.MunmapPtr(m.cons, uintptr(m.page))
	m.cons, m.obj = nil, heapmap.Object{}
	r.cons, r.prod, r.data = nil, nil, nil
	r.err = errUnmapped
	if err != nil {
		return fmt.Errorf("unmap ring buffer: %w", err)
	}
	return nil
}
