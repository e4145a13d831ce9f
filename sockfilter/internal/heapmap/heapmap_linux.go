//go:build linux

// Package heapmap maps memory the kernel shares with the process — a
// packet socket's receive ring, a BPF ring buffer — over Go heap objects,
// and gives the heap ordinary memory back when the kernel's must go, so
// that slices of the kernel's memory handed out to callers keep it alive
// and never fault. sockfilter/internal/tpacket and
// sockfilter/internal/ringbuf map their rings with it.
//
// A slice of memory that Go did not allocate keeps nothing alive. So the
// kernel's pages are mapped (mmap(2) MAP_FIXED) over memory Go did
// allocate: a []byte from the heap, page-aligned and holding no pointers
// (Pages). Every slice of it then keeps the object alive, and the garbage
// collector frees the object only once nothing refers to it. Before that
// can happen, its owner calls Replace, which puts private anonymous
// memory, readable and writable, back under the object — what the heap
// had there — with the bytes still in use copied across; the kernel's
// mapping is gone from then on. Nothing ever unmaps the object's address
// range: a slice of it never faults, and never shows another ring's
// bytes, since nothing else can be mapped there while a slice lives.
// Where Replace fails, the object is quarantined: kept from the heap for
// good, so that the heap never reuses memory that is not ordinary memory.
//
// The Go heap does not read or write the memory of an object it has
// handed out and still holds as live (it scavenges only free pages), and
// the object holds no pointers, so the garbage collector never scans it:
// the kernel's pages may even be read-only while they are mapped there.
// Once the object is free, the heap may write to it at any time (zeroing
// it for reuse), which is why Replace's memory is read-write. The object
// counts in the Go heap's size (runtime.MemStats.HeapAlloc, GOGC,
// GOMEMLIMIT).
package heapmap

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Object is a heap allocation that the kernel's pages may be mapped over:
// Mem, page-aligned, and the start of the allocation.
type Object struct {
	Mem  []byte
	base *byte
}

// Pages returns an object of size bytes of heap memory, page-aligned,
// holding no pointers. size is a multiple of the page size.
//
// The memory is not zeroed: the kernel's pages replace its pages anyway,
// and zeroing 32 MiB, whose pages a retired ring left untouched, would
// fault every one of them in only for mmap to throw them away (it cost
// sockfilter.Listen 28 ms, twice the system calls'). make zeroes;
// strings.Builder.Grow allocates without (bytealg.MakeNoZero), and String
// gives its buffer's address, the start of the allocation. Were Grow to
// zero one day, mapping would be slower, not wrong.
func Pages(size int) Object {
	page := os.Getpagesize()
	var b strings.Builder
	b.Grow(size + page)
	b.WriteByte(0)
	base := unsafe.StringData(b.String())
	buf := unsafe.Slice(base, size+page) // within the buffer Grow allocated
	skip := (page - int(uintptr(unsafe.Pointer(base))%uintptr(page))) % page
	return Object{Mem: buf[skip : skip+size : skip+size], base: base}
}

// MapFile maps len(mem) bytes of the file fd from offset over mem: mmap(2)
// with MAP_FIXED added to flags. unix.MmapPtr would turn the address the
// kernel returns into an unsafe.Pointer, which checkptr (-race) rejects
// for an address in the Go heap; so the system call is made here and its
// result compared, never converted. The error is the errno.
func MapFile(mem []byte, prot, flags, fd int, offset int64) error {
	addr := uintptr(unsafe.Pointer(unsafe.SliceData(mem)))
	r, errno := rawMmap(addr, uintptr(len(mem)), prot, flags|unix.MAP_FIXED, fd, offset)
	runtime.KeepAlive(mem)
	if errno != 0 {
		return errno
	}
	if r != addr {
		return syscall.EINVAL // MAP_FIXED maps at addr or fails
	}
	return nil
}

// MapAnonymous replaces the pages of mem with fresh private anonymous
// ones, read-write and zero, as the heap's are. The kernel merges such a
// mapping with the heap's mapping beside it: it has no anon_vma of its
// own yet, and its page offset follows on from its neighbour's. The error
// is the errno.
func MapAnonymous(mem []byte) error {
	return MapFile(mem, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS, -1, 0)
}

// Mremap moves the mapping of len(dst) bytes at src over dst (mremap(2)
// MREMAP_MAYMOVE|MREMAP_FIXED), which first unmaps what was at dst; it
// returns the errno. It is a variable so that a test can make it fail.
var Mremap = mremapOnto

func mremapOnto(src unsafe.Pointer, dst []byte) error {
	addr := uintptr(unsafe.Pointer(unsafe.SliceData(dst)))
	size := uintptr(len(dst))
	r, _, errno := unix.Syscall6(unix.SYS_MREMAP, uintptr(src), size, size, unix.MREMAP_MAYMOVE|unix.MREMAP_FIXED, addr, 0)
	runtime.KeepAlive(dst)
	if errno != 0 {
		return errno
	}
	if r != addr {
		return syscall.EINVAL
	}
	return nil
}

// quarantined holds heap objects whose pages could not be made ordinary
// memory again, so that the heap never reuses them.
var quarantined struct {
	sync.Mutex
	mem [][]byte
}

// Quarantine keeps the object from the heap for good.
func (o Object) Quarantine() {
	quarantined.Lock()
	quarantined.mem = append(quarantined.mem, o.Mem)
	quarantined.Unlock()
}

// Quarantined returns how many objects Quarantine holds.
func Quarantined() int {
	quarantined.Lock()
	defer quarantined.Unlock()
	return len(quarantined.mem)
}

// Span is the range [From, To) of byte offsets into an object's Mem.
type Span struct{ From, To int }

// Replace puts private anonymous memory under o.Mem, readable and
// writable as the heap's own, keeping the bytes of the pages that the
// spans keep touch. Each run of kept pages is copied into a new mapping
// that mremap(2) then moves over it in one step, so that a goroutine
// reading it meanwhile sees its bytes throughout; every other page gets a
// fresh zero page (MapAnonymous), which takes no memory until touched and
// merges with the heap's mapping around it. Call it once an object.
//
// A run of kept pages stays a mapping of its own while it is kept: the
// mapping moved in has its own anon_vma and page offset, so the kernel
// cannot merge it with the heap's. Once nothing refers to the object, a
// finalizer, which runs before the heap can reuse the memory, maps fresh
// pages over all of it (MapAnonymous); they merge with the heap's mapping
// again, and the copies' memory goes back to the system at once. The heap
// frees such an object one collection later than it would otherwise.
//
// mremap may fail after unmapping its destination (mm/mremap.c: mremap_to
// unmaps it first). Replace then maps fresh pages there, copies the bytes
// back from the copy and unmaps the copy: a goroutine reading those pages
// at that moment may fault, but the bytes come back, and nothing is
// allocated on the heap when memory is short. If anything else fails —
// the copy cannot be mapped, or a fresh mapping cannot be made — the
// pages in question keep what they had (a failed mmap(2) MAP_FIXED
// leaves the old mapping since Linux 6.12; it may leave a hole before),
// the object is quarantined, and Replace returns the first error.
//
// Replace sorts keep.
func (o Object) Replace(keep []Span) error {
	mem := o.Mem
	var err error
	note := func(e error) {
		if err == nil {
			err = e
		}
	}
	prev := 0
	runs := pageRuns(keep, len(mem))
	for _, s := range runs {
		if s.From > prev {
			note(mapFresh(mem[prev:s.From]))
		}
		note(keepPages(mem[s.From:s.To]))
		prev = s.To
	}
	if prev < len(mem) {
		note(mapFresh(mem[prev:]))
	}
	switch {
	case err != nil:
		o.Quarantine()
	case len(runs) > 0:
		// A finalizer, not a cleanup: a cleanup runs once the heap has
		// freed the object, and may have reused it. SetFinalizer needs
		// the start of the allocation, hence base.
		skip := uintptr(unsafe.Pointer(unsafe.SliceData(mem))) - uintptr(unsafe.Pointer(o.base))
		size := len(mem)
		runtime.SetFinalizer(o.base, func(base *byte) {
			// Nothing refers to the object: the pages are ours to
			// replace. An error leaves the copies, ordinary memory.
			MapAnonymous(unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(base), skip)), size))
		})
	}
	return err
}

// mapFresh is MapAnonymous with Replace's error.
func mapFresh(mem []byte) error {
	if err := MapAnonymous(mem); err != nil {
		return fmt.Errorf("replace pages: %w", os.NewSyscallError("mmap", err))
	}
	return nil
}

// keepPages replaces the pages of mem with a private copy of them.
func keepPages(mem []byte) error {
	n := uintptr(len(mem))
	tmp, err := unix.MmapPtr(-1, 0, nil, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return fmt.Errorf("copy pages in use: %w", os.NewSyscallError("mmap", err))
	}
	cp := unsafe.Slice((*byte)(tmp), n)
	copy(cp, mem)
	merr := Mremap(tmp, mem)
	if merr == nil {
		return nil
	}
	// mem may be unmapped now, or still the kernel's: either way fresh
	// pages go there, and the bytes come from the copy.
	if err := MapAnonymous(mem); err != nil {
		unix.MunmapPtr(tmp, n)
		return fmt.Errorf("copy pages in use: %w, then %w", os.NewSyscallError("mremap", merr), os.NewSyscallError("mmap", err))
	}
	copy(mem, cp)
	unix.MunmapPtr(tmp, n)
	return nil
}

// pageRuns rounds the spans that are not empty out to whole pages within
// [0, size), sorts them and merges those that overlap or touch. It
// reuses the memory of spans.
func pageRuns(spans []Span, size int) []Span {
	page := os.Getpagesize()
	out := spans[:0]
	for _, s := range spans {
		if s.To <= s.From {
			continue // empty: nothing to round out
		}
		s.From = max(s.From, 0) &^ (page - 1)
		s.To = min((s.To+page-1)&^(page-1), size)
		if s.To > s.From {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(x, y Span) int { return x.From - y.From })
	merged := out[:0]
	for _, s := range out {
		if n := len(merged); n > 0 && s.From <= merged[n-1].To {
			merged[n-1].To = max(merged[n-1].To, s.To)
			continue
		}
		merged = append(merged, s)
	}
	return merged
}
