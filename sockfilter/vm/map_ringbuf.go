package vm

import "encoding/binary"

// ring is a BPF ring buffer (kernel/bpf/ringbuf.c): records of an 8-byte
// header (the length, with the busy and discard bits, and a page offset)
// and their data, each rounded up to 8 bytes, between the consumer and the
// producer positions, which only grow. The kernel maps the data pages
// twice so that a record is contiguous across the end of the ring; here
// the data is twice the ring's size, and a record that would wrap runs
// into the second half, which is the same to whoever reads it whole.
type ring struct {
	size       uint64
	data       []byte // 2*size
	cons, prod uint64
	pend       uint64 // the oldest record not committed, or prod
	held       uint64 // the bytes of the record NextRecord returned, released at the next call
}

// Ring buffer constants (include/uapi/linux/bpf.h, kernel/bpf/ringbuf.c).
const (
	ringBusy    = 1 << 31 // BPF_RINGBUF_BUSY_BIT
	ringDiscard = 1 << 30 // BPF_RINGBUF_DISCARD_BIT
	ringHdr     = 8       // BPF_RINGBUF_HDR_SZ
	ringMaxRec  = 1<<30 - 1
	// ringDataPage is the page of struct bpf_ringbuf where the data
	// starts, after the consumer and producer pages: a header's page
	// offset counts from there.
	ringDataPage = 3

	rbNoWakeup    = 1 // BPF_RB_NO_WAKEUP
	rbForceWakeup = 2 // BPF_RB_FORCE_WAKEUP
)

func newRing(size int) *ring {
	return &ring{size: uint64(size), data: alignedBytes(2 * size)}
}

func (r *ring) mask() uint64 { return r.size - 1 }

func (r *ring) hdr(pos uint64) []byte {
	o := pos & r.mask()
	return r.data[o : o+ringHdr]
}

// recordLen is the room a record of n bytes takes.
func recordLen(n uint32) uint64 { return (uint64(n) + ringHdr + 7) &^ 7 }

// reserve reserves a record of n bytes (__bpf_ringbuf_reserve) and
// returns the offset of its data in r.data, or false when the ring has no
// room: the producer may not get a whole ring ahead of the consumer, nor
// of the oldest record not yet committed.
func (r *ring) reserve(n uint64) (uint64, bool) {
	if n > ringMaxRec {
		return 0, false
	}
	l := recordLen(uint32(n))
	if l > r.size {
		return 0, false
	}
	for r.pend < r.prod {
		h := binary.LittleEndian.Uint32(r.hdr(r.pend))
		if h&ringBusy != 0 {
			break
		}
		r.pend += recordLen(h &^ ringDiscard)
	}
	end := r.prod + l
	if end-r.cons > r.mask() || end-r.pend > r.mask() {
		return 0, false
	}
	h := r.hdr(r.prod)
	binary.LittleEndian.PutUint32(h, uint32(n)|ringBusy)
	binary.LittleEndian.PutUint32(h[4:], uint32(ringDataPage+(r.prod&r.mask())/ringPage))
	off := r.prod&r.mask() + ringHdr
	r.prod = end
	return off, true
}

// commit submits, or discards, the record whose data is at off.
func (r *ring) commit(off uint64, discard bool) {
	h := r.data[off-ringHdr : off]
	n := binary.LittleEndian.Uint32(h) &^ ringBusy
	if discard {
		n |= ringDiscard
	}
	binary.LittleEndian.PutUint32(h, n)
}

// next returns the next submitted record, skipping the discarded ones,
// after releasing the one it returned before; false when there is none
// yet, or the next is still reserved.
func (r *ring) next() ([]byte, bool) {
	r.cons += r.held
	r.held = 0
	for r.cons < r.prod {
		h := binary.LittleEndian.Uint32(r.hdr(r.cons))
		if h&ringBusy != 0 {
			return nil, false
		}
		l := recordLen(h &^ ringDiscard)
		if h&ringDiscard != 0 {
			r.cons += l
			continue
		}
		o := r.cons&r.mask() + ringHdr
		r.held = l
		return r.data[o : o+uint64(h) : o+uint64(h)], true
	}
	return nil, false
}

// query is bpf_ringbuf_query: BPF_RB_AVAIL_DATA, BPF_RB_RING_SIZE,
// BPF_RB_CONS_POS, BPF_RB_PROD_POS; 0 for other flags.
func (r *ring) query(flags uint64) uint64 {
	switch flags {
	case 0:
		return r.prod - r.cons
	case 1:
		return r.size
	case 2:
		return r.cons
	case 3:
		return r.prod
	}
	return 0
}
