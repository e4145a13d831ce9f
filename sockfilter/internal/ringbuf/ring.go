// Package ringbuf reads the records of a BPF ring buffer
// (BPF_MAP_TYPE_RINGBUF, Linux 5.8) where the kernel writes them: the
// consumer half of the protocol in kernel/bpf/ringbuf.c and
// Documentation/bpf/ringbuf.rst, and the mapping of the ring into the
// process (mmap_linux.go).
//
// # Layout
//
// The kernel shares three areas with the reader, mapped from the map's
// file descriptor: the consumer page (offset 0, read-write), which holds
// consumer_pos, the position up to which the reader has consumed; the
// producer page (offset one page, read-only), which holds producer_pos,
// the position up to which producers have reserved space; and the data
// pages after it, size bytes mapped twice in a row, so that a record that
// wraps past the end of the ring reads as one piece. Positions only grow;
// a position's byte in the data is at position & (size-1).
//
// Each record starts with an 8-byte header at an 8-byte aligned position:
// a u32 length whose top bits are flags — BPF_RINGBUF_BUSY_BIT (1<<31)
// while a producer is still writing the record, BPF_RINGBUF_DISCARD_BIT
// (1<<30) if it gave it up (bpf_ringbuf_discard) — and a u32 the kernel
// uses to find the ring from a record. The record's data follows; the next
// header is at the position after the data rounded up to 8.
//
// # Ordering
//
// Records are read in position order, which is the order producers
// reserved them in. A busy record stops the reader even if later ones are
// committed: consumer_pos cannot pass it. The producer writes the header
// with the busy bit and then publishes producer_pos with a release store;
// it commits a record by clearing the bit with xchg, a full barrier, and
// then loads consumer_pos to decide whether to wake the reader: only if
// the reader has consumed everything before the record (consumer_pos ==
// the record's position). The reader therefore loads producer_pos and
// each header with acquire loads (the record's bytes are then visible),
// and stores consumer_pos with a sequentially consistent store before it
// looks at producer_pos again and decides to sleep. With only a release
// store, the reader's store and the producer's store may each be missed
// by the other's following load, and both conclude that the other will
// act: the reader sleeps and the producer does not wake it. libbpf had
// that lost wake-up until 2023. Go's atomic stores are sequentially
// consistent, and so are its loads, which covers the acquire loads.
package ringbuf

import (
	"errors"
	"fmt"
	"sync/atomic"
	"unsafe"
)

// The record header (include/uapi/linux/bpf.h).
const (
	HeaderSize = 8       // BPF_RINGBUF_HDR_SZ
	BusyBit    = 1 << 31 // BPF_RINGBUF_BUSY_BIT
	DiscardBit = 1 << 30 // BPF_RINGBUF_DISCARD_BIT
)

// maxLazy bounds how many bytes of records ReleaseLazy keeps from the
// producers.
const maxLazy = 64 << 10

// ErrCorrupt is wrapped by the error of a ring whose positions or headers
// are impossible: the kernel never writes them, so the ring is not what
// the reader thinks it is.
var ErrCorrupt = errors.New("corrupt ring buffer")

// Ring is the reader's side of a ring buffer. It is not safe for
// concurrent use.
type Ring struct {
	cons *uintptr // consumer_pos: the kernel's unsigned long
	prod *uintptr // producer_pos
	data []byte   // the data pages, twice: 2*size bytes
	mask uintptr  // size-1
	lazy uintptr  // how far ReleaseLazy lets the reader run ahead of consumer_pos

	pos      uintptr // position of the next header to read
	prodSeen uintptr // producer_pos as last loaded
	stored   uintptr // the last position stored to consumer_pos
	// lent tells whether Next has returned records since Release, and
	// lentHi and lentLo where their bytes are in data: [lentFrom, lentHi)
	// from the first record's header, and [0, lentLo) for those read after
	// the ring wrapped, at the start of the first copy of the data.
	lent     bool
	lentFrom uintptr
	lentHi   uintptr
	lentLo   uintptr
	err      error // sticky corruption
}

// New returns the reader of the ring whose consumer_pos and producer_pos
// are at cons and prod and whose data pages, mapped twice, are data. It
// starts where the last reader stopped, at consumer_pos.
func New(cons, prod *uintptr, data []byte) (*Ring, error) {
	size := uintptr(len(data) / 2)
	if size == 0 || size&(size-1) != 0 || uintptr(len(data)) != 2*size {
		return nil, fmt.Errorf("%w: data of %d bytes is not a power of two mapped twice", ErrCorrupt, len(data))
	}
	if uintptr(unsafe.Pointer(unsafe.SliceData(data)))%HeaderSize != 0 {
		return nil, fmt.Errorf("%w: data not 8-byte aligned", ErrCorrupt)
	}
	r := &Ring{cons: cons, prod: prod, data: data, mask: size - 1, lazy: min(size/16, maxLazy)}
	r.pos = atomic.LoadUintptr(cons)
	r.stored, r.prodSeen = r.pos, r.pos
	if r.pos%HeaderSize != 0 {
		return nil, fmt.Errorf("%w: consumer position %d is not 8-byte aligned", ErrCorrupt, r.pos)
	}
	return r, nil
}

// Size returns the size of the ring's data in bytes.
func (r *Ring) Size() int { return int(r.mask + 1) }

// Next returns the next committed record's data, in place in the ring,
// skipping discarded records. ok is false when there is none yet: the
// ring is empty up to producer_pos, or the next record is busy. The
// record stays valid, and its space the reader's, until Release.
func (r *Ring) Next() (rec []byte, ok bool, err error) {
	if r.err != nil {
		return nil, false, r.err
	}
	for {
		if r.pos == r.prodSeen {
			r.prodSeen = atomic.LoadUintptr(r.prod)
			if r.pos == r.prodSeen {
				return nil, false, nil
			}
		}
		avail := r.prodSeen - r.pos
		if avail > r.mask+1 || avail%HeaderSize != 0 {
			return nil, false, r.corrupt(fmt.Errorf("%w: producer position %d is %d bytes past the consumer's %d, in a ring of %d", ErrCorrupt, r.prodSeen, avail, r.pos, r.mask+1))
		}
		off := r.pos & r.mask
		hdr := atomic.LoadUint32((*uint32)(unsafe.Pointer(&r.data[off])))
		if hdr&BusyBit != 0 {
			return nil, false, nil
		}
		n := uintptr(hdr &^ (BusyBit | DiscardBit))
		total := (n + HeaderSize + 7) &^ 7
		if total > avail {
			return nil, false, r.corrupt(fmt.Errorf("%w: record at position %d claims %d bytes, but the producer has written only %d past it", ErrCorrupt, r.pos, n, avail-HeaderSize))
		}
		r.pos += total
		if hdr&DiscardBit != 0 {
			continue
		}
		start := off + HeaderSize
		switch {
		case !r.lent:
			r.lent, r.lentFrom, r.lentHi, r.lentLo = true, off, start+n, 0
		case off > r.lentFrom && r.lentLo == 0:
			r.lentHi = start + n
		default: // wrapped: off < lentFrom, as the lent span is below size
			r.lentLo = start + n
		}
		return r.data[start : start+n : start+n], true, nil
	}
}

func (r *Ring) corrupt(err error) error {
	r.err = err
	return err
}

// Release gives the space of the records Next returned, and of discarded
// ones it passed, back to the producers: a sequentially consistent store
// of consumer_pos. Their bytes may then be overwritten at any time.
//
// Release never moves consumer_pos back: if another reader of the ring
// has taken it further, which the one reader a ring should have never
// does, Release leaves it there.
//
// Once the Mapping is closed, Release does nothing.
func (r *Ring) Release() {
	r.lent = false
	if r.pos == r.stored || r.cons == nil {
		return
	}
	if cur := atomic.LoadUintptr(r.cons); cur != r.stored && intptr(r.pos-cur) < 0 {
		r.stored = cur
		return
	}
	atomic.StoreUintptr(r.cons, r.pos)
	r.stored = r.pos
}

// intptr is the signed difference of two positions.
type intptr = int

// ReleaseLazy is Release when the reader has read at least a sixteenth of
// the ring (at most 64 KiB) since consumer_pos: a reader that reads many
// records in a row stores consumer_pos, a sequentially consistent store
// that costs as much as reading a record, once for many of them. The
// records stay valid until the store. A reader about to sleep must
// Release: the producers wake it only once they see it caught up.
func (r *Ring) ReleaseLazy() {
	if r.pos-r.stored >= r.lazy {
		r.Release()
	}
}

// Ready reports whether Next has something to say: a committed or
// discarded record at the reader's position, or corruption. Call it after
// Release and before sleeping: it loads producer_pos after the store, so
// that a producer that commits after it sees the reader caught up and
// wakes it.
func (r *Ring) Ready() bool {
	if r.err != nil {
		return true
	}
	r.prodSeen = atomic.LoadUintptr(r.prod)
	avail := r.prodSeen - r.pos
	if avail == 0 {
		return false
	}
	if avail > r.mask+1 || avail%HeaderSize != 0 {
		return true // Next reports it
	}
	hdr := atomic.LoadUint32((*uint32)(unsafe.Pointer(&r.data[r.pos&r.mask])))
	return hdr&BusyBit == 0
}

// Lent returns where in data the records Next returned since the last
// store of consumer_pos are: the offsets [from, hi), and [0, lo) if the ring wrapped
// (lo is 0 if not); ok is false if there are none.
func (r *Ring) Lent() (from, hi, lo int, ok bool) {
	return int(r.lentFrom), int(r.lentHi), int(r.lentLo), r.lent
}

// Pending returns the bytes between the reader's position and
// producer_pos as last loaded: records not yet read, busy ones included.
func (r *Ring) Pending() int { return int(r.prodSeen - r.pos) }
