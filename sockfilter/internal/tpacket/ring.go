//go:build linux

// Package tpacket is the mechanics of reading frames from an AF_PACKET
// socket: the TPACKET_V3 receive ring (packet(7),
// Documentation/networking/packet_mmap.rst) — its geometry, its memory, its
// setup and the reader that walks its blocks — and the recvmsg(2) reader
// with its control messages, for a socket without a ring. The sockfilter
// package's Conn drives them; nothing here is part of purebpf's API.
package tpacket

import (
	"errors"
	"fmt"
	mathbits "math/bits"
	"os"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/purebpf/purebpf/sockfilter/internal/heapmap"
)

// SetRing and MmapRing make the ring and map it at addr; variables so that a
// test can make them fail. (No geometry that Config allows makes the kernel
// refuse the ring at once: it tries to allocate even an absurd one.)
var (
	SetRing  = unix.SetsockoptTpacketReq3
	MmapRing = func(fd int, mem []byte) error {
		return heapmap.MapFile(mem, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE, fd, 0)
	}
)

// Setup gives the unbound socket fd a TPACKET_V3 receive ring of shape g
// and maps it (packet(7), Documentation/networking/packet_mmap.rst). If it
// fails, the socket is left as it was, ready for recvmsg(2), unless the
// error matches ErrTeardown.
func Setup(fd int, g Geometry) (*Mapping, error) {
	if err := setsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V3, "PACKET_VERSION"); err != nil {
		return nil, err
	}
	req := unix.TpacketReq3{
		Block_size:     uint32(g.blockSize),
		Block_nr:       uint32(g.blockCount),
		Frame_size:     frameSize,
		Frame_nr:       uint32(g.blockSize / frameSize * g.blockCount),
		Retire_blk_tov: g.timeoutMS,
	}
	if err := SetRing(fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req); err != nil {
		err = os.NewSyscallError("setsockopt PACKET_RX_RING", err)
		return nil, errors.Join(err, resetVersion(fd))
	}
	m, err := mapRing(fd, g.Size())
	if err != nil {
		// A ring of no blocks frees the one just made.
		var none unix.TpacketReq3
		if terr := unix.SetsockoptTpacketReq3(fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &none); terr != nil {
			return nil, errors.Join(err, fmt.Errorf("%w: %w", ErrTeardown, os.NewSyscallError("setsockopt PACKET_RX_RING", terr)))
		}
		return nil, errors.Join(err, resetVersion(fd))
	}
	return m, nil
}

// ErrTeardown marks a ring setup failure that left the socket unfit
// for recvmsg(2).
var ErrTeardown = errors.New("cannot free the ring")

// resetVersion puts the socket back to TPACKET_V1, the version recvmsg(2)
// and PACKET_STATISTICS assume.
func resetVersion(fd int) error {
	if err := setsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V1, "PACKET_VERSION"); err != nil {
		return fmt.Errorf("%w: %w", ErrTeardown, err)
	}
	return nil
}

// Mapping is the ring's memory.
//
// Frames are handed out in place, as slices of the ring, and a caller may
// keep one for as long as it likes: after the next read, after Close,
// after dropping the Conn. A slice of memory that Go did not allocate keeps
// nothing alive, so the ring is mapped over memory Go did allocate: a
// []byte from the heap, page-aligned, whose pages mmap(2) MAP_FIXED
// replaces with the socket's (package heapmap). Every frame is then a
// slice of that heap object and keeps it alive, and the garbage collector
// frees it only once neither the Conn nor any frame refers to it. Before
// that can happen, Retire puts private anonymous memory back under the
// object — what the heap had there — with the bytes of the blocks frames
// were lent from copied across, so that the heap gets back ordinary memory
// and the socket loses its last mapping, which frees the kernel's ring
// when the socket is closed. Nothing ever unmaps the object's address
// range: a frame never faults, and never shows another ring's bytes, since
// no other ring can be mapped there while a frame of this one lives.
//
// The ring's size counts in the Go heap's size (runtime.MemStats.HeapAlloc,
// GOGC, GOMEMLIMIT).
type Mapping struct {
	mu     sync.Mutex
	obj    heapmap.Object // the heap object mem is
	mem    []byte         // the ring, obj.Mem; nil once retired
	mapped bool           // the socket's ring is mapped over mem
}

// mapRing maps the ring of size bytes of the socket fd over a heap object.
func mapRing(fd, size int) (*Mapping, error) {
	obj := heapmap.Pages(size)
	if err := MmapRing(fd, obj.Mem); err != nil {
		// A failed MAP_FIXED may have unmapped the range, or (before
		// Linux 6.12) mapped part of the ring: put ordinary memory back,
		// or keep the object from the heap for good.
		obj.Replace(nil)
		return nil, os.NewSyscallError("mmap", err)
	}
	return &Mapping{obj: obj, mem: obj.Mem, mapped: true}, nil
}

// Retire replaces the ring's pages with private anonymous memory, as a
// heap object's are, keeping the bytes of the blocks of blockSize bytes
// whose bits are set in keep (those whose frames were lent): each run of
// such blocks is copied into a new mapping that mremap(2) moves over it in
// one step, so that a goroutine still reading a lent frame sees its bytes
// throughout; the other blocks get fresh zero pages, which merge with the
// heap's mapping around them (heapmap.Object.Replace). The socket then
// has no mapping of its ring, and the kernel frees the ring when the
// socket is closed. The kernel may still be writing frames into the ring meanwhile,
// but into pages no longer mapped here. If a step fails, the object is
// kept from the heap for good, and the blocks whose copy failed keep the
// socket's pages. Retire is idempotent; after it, m no longer refers to
// the memory, which lives on only in the frames that refer to it.
func (m *Mapping) Retire(blockSize int, keep []uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.mapped {
		return nil
	}
	obj := m.obj
	m.obj, m.mem, m.mapped = heapmap.Object{}, nil, false
	var runs []heapmap.Span
	for b := range bits(keep) {
		if n := len(runs); n > 0 && runs[n-1].To == b*blockSize {
			runs[n-1].To += blockSize
			continue
		}
		runs = append(runs, heapmap.Span{From: b * blockSize, To: (b + 1) * blockSize})
	}
	if err := obj.Replace(runs); err != nil {
		return fmt.Errorf("replace the ring's memory: %w", err)
	}
	return nil
}

// bits yields the numbers of the bits set in set, in order.
func bits(set []uint64) func(yield func(int) bool) {
	return func(yield func(int) bool) {
		for i, w := range set {
			for ; w != 0; w &= w - 1 {
				if !yield(i*64 + mathbits.TrailingZeros64(w)) {
					return
				}
			}
		}
	}
}

// setsockoptInt wraps setsockopt(2) for an int option named name.
func setsockoptInt(fd, level, opt, value int, name string) error {
	if err := unix.SetsockoptInt(fd, level, opt, value); err != nil {
		return os.NewSyscallError("setsockopt "+name, err)
	}
	return nil
}
