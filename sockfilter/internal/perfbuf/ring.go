// Package perfbuf reads one CPU's perf event buffer, the ring a
// BPF_MAP_TYPE_PERF_EVENT_ARRAY's entry points to: the records
// bpf_perf_event_output writes on that CPU (a PERF_COUNT_SW_BPF_OUTPUT
// event, Linux 4.4), as perf_event_open(2) describes the mapping.
//
// # Layout
//
// The first page of the mapping is struct perf_event_mmap_page; data_head
// in it is where the kernel will write next, data_tail where the reader
// has read up to, both growing byte counts. The data pages follow: a ring
// of data_size bytes, a power-of-two number of pages, where a record may
// wrap around the end. Each record starts with struct perf_event_header
// (u32 type, u16 misc, u16 size, the size including the header, a
// multiple of 8). A PERF_RECORD_SAMPLE of an event with sample_type
// PERF_SAMPLE_RAW holds a u32 size and that many bytes: the program's
// data and the zeros that pad the record to 8 bytes. A PERF_RECORD_LOST
// holds a u64 id and a u64 count of samples the kernel dropped because
// the ring was full; the kernel writes it once there is room again.
//
// The reader loads data_head with an acquire load (the kernel writes the
// records, then data_head with a barrier), copies each record out, and
// stores data_tail (sequentially consistent, covering the release the
// kernel's side needs) so that the kernel may overwrite the space.
package perfbuf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
)

// Record types (enum perf_event_type).
const (
	RecordLost   = 2 // PERF_RECORD_LOST
	RecordSample = 9 // PERF_RECORD_SAMPLE
)

const headerSize = 8 // struct perf_event_header

// ErrCorrupt is wrapped by the error of a ring whose positions or records
// are impossible.
var ErrCorrupt = errors.New("corrupt perf buffer")

// Ring is the reader's side of one perf buffer. It is not safe for
// concurrent use.
type Ring struct {
	head *uint64 // data_head
	tail *uint64 // data_tail
	data []byte
	mask uint64

	pos      uint64 // data_tail as the reader has it
	headSeen uint64
	buf      []byte // the last record, copied out
	err      error
}

// New returns the reader of the ring whose data_head and data_tail are at
// head and tail and whose data pages are data, from data_tail on.
func New(head, tail *uint64, data []byte) (*Ring, error) {
	n := uint64(len(data))
	if n == 0 || n&(n-1) != 0 {
		return nil, fmt.Errorf("%w: data of %d bytes is not a power of two", ErrCorrupt, n)
	}
	r := &Ring{head: head, tail: tail, data: data, mask: n - 1}
	r.pos = atomic.LoadUint64(tail)
	r.headSeen = r.pos
	return r, nil
}

// Record is a record read from the ring.
type Record struct {
	Type uint32 // RecordSample, RecordLost, or another perf record type
	// Data is a sample's raw data, padding included, in a buffer the Ring
	// owns until its next Next.
	Data []byte
	// Lost is the number of samples a RecordLost says were dropped.
	Lost uint64
}

// Ready reports whether the ring holds a record, or is corrupt.
func (r *Ring) Ready() bool {
	return r.err != nil || atomic.LoadUint64(r.head) != r.pos
}

// Next copies out the next record and gives its space back to the kernel.
// ok is false when the ring is empty.
func (r *Ring) Next() (rec Record, ok bool, err error) {
	if r.err != nil {
		return Record{}, false, r.err
	}
	if r.pos == r.headSeen {
		r.headSeen = atomic.LoadUint64(r.head)
		if r.pos == r.headSeen {
			return Record{}, false, nil
		}
	}
	avail := r.headSeen - r.pos
	if avail > r.mask+1 || avail < headerSize {
		return Record{}, false, r.corrupt("data_head %d is %d bytes past data_tail %d, in a ring of %d", r.headSeen, avail, r.pos, r.mask+1)
	}
	var hdr [headerSize]byte
	r.copyOut(hdr[:], r.pos)
	typ := binary.NativeEndian.Uint32(hdr[0:4])
	size := uint64(binary.NativeEndian.Uint16(hdr[6:8]))
	if size < headerSize || size%8 != 0 || size > avail {
		return Record{}, false, r.corrupt("record at %d of %d bytes, with %d written", r.pos, size, avail)
	}
	body := size - headerSize
	if cap(r.buf) < int(body) {
		r.buf = make([]byte, body, max(body, 256))
	}
	b := r.buf[:body]
	r.copyOut(b, r.pos+headerSize)
	r.pos += size
	atomic.StoreUint64(r.tail, r.pos)

	rec.Type = typ
	switch typ {
	case RecordSample:
		if len(b) < 4 {
			return Record{}, false, r.corrupt("sample of %d bytes", len(b))
		}
		n := uint64(binary.NativeEndian.Uint32(b[0:4]))
		if n > uint64(len(b)-4) {
			return Record{}, false, r.corrupt("sample claims %d bytes of %d", n, len(b)-4)
		}
		rec.Data = b[4 : 4+n : 4+n]
	case RecordLost:
		if len(b) < 16 {
			return Record{}, false, r.corrupt("lost record of %d bytes", len(b))
		}
		rec.Lost = binary.NativeEndian.Uint64(b[8:16])
	default:
		rec.Data = b
	}
	return rec, true, nil
}

// copyOut copies len(dst) bytes from position pos of the ring.
func (r *Ring) copyOut(dst []byte, pos uint64) {
	off := pos & r.mask
	n := copy(dst, r.data[off:])
	copy(dst[n:], r.data)
}

func (r *Ring) corrupt(format string, args ...any) error {
	r.err = fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...)
	return r.err
}
