package sockfilter

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/purebpf/purebpf/sockfilter/internal/poller"
	"github.com/purebpf/purebpf/sockfilter/internal/ringbuf"
)

// RingBufReader reads the records programs write into a RingBuf map
// (bpf_ringbuf_output, bpf_ringbuf_reserve and bpf_ringbuf_submit; Linux
// 5.8) where the kernel wrote them, in the order producers reserved them.
// See Documentation/bpf/ringbuf.rst. The ring is mapped into the process:
// reading a record that is there makes no system call, and a reader that
// has caught up sleeps in Go's runtime poller until a producer wakes it.
//
// Next, NextBatch and NextContext may be called from several goroutines;
// they take turns. Any method may be called concurrently with Close. Only
// one reader should read a ring at a time: readers of one map share its
// consumer position.
type RingBufReader struct {
	mu      sync.Mutex // serialises reads; Close takes it to wait for them
	ring    *ringbuf.Ring
	mapping *ringbuf.Mapping
	poll    *poller.Poller
	closed  atomic.Bool
	pending error // an error NextBatch met after its first record
	cleanup runtime.Cleanup
}

// NewRingBufReader maps the ring buffer m into the process and returns a
// reader of its records, from where the last reader of m stopped. m may be
// closed afterwards: the reader holds the ring through a duplicate of its
// file descriptor.
//
// The ring is mapped over memory from the Go heap, so that the records,
// slices of it, keep it alive: a page and twice the ring's size (the data
// is mapped twice in a row), which counts in the heap's size
// (runtime.MemStats.HeapAlloc, GOGC, GOMEMLIMIT) but takes no memory of
// its own while the ring is mapped there. A reader dropped without Close
// is closed as Close does once the garbage collector finds it
// unreachable: the records it read count as consumed, and those it lent
// keep their bytes.
func NewRingBufReader(m *Map) (*RingBufReader, error) {
	if m == nil {
		return nil, errors.New("new ring buffer reader: map is nil")
	}
	if m.Type() != RingBuf {
		return nil, fmt.Errorf("new ring buffer reader: map %s is a %v, not a ringbuf", m.describe(), m.Type())
	}
	var fd int
	err := m.use("new ring buffer reader", func(mfd int) error {
		var err error
		fd, err = unix.FcntlInt(uintptr(mfd), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			return os.NewSyscallError("fcntl F_DUPFD_CLOEXEC", err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("new ring buffer reader: %w", err)
	}
	mapping, ring, err := ringbuf.Map(fd, m.MaxEntries())
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("new ring buffer reader for map %s: %w", m.describe(), err)
	}
	// The map's fd polls readable while the ring holds data
	// (ringbuf_map_poll_kern); producers wake it when they commit a record
	// the reader is waiting for.
	poll, err := poller.New(fd, "ringbuf:"+m.Name(), ring.Ready)
	if err != nil {
		mapping.Close()
		return nil, fmt.Errorf("new ring buffer reader for map %s: %w", m.describe(), err)
	}
	r := &RingBufReader{ring: ring, mapping: mapping, poll: poll}
	// The cleanup does what Close does to the ring, without the reader:
	// it keeps the bytes of the records lent and stores consumer_pos.
	// (The poller's os.File closes the descriptor on its own.)
	r.cleanup = runtime.AddCleanup(r, closeMapping, mapping)
	return r, nil
}

// closeMapping is the cleanup of an unreachable reader: mapping.Close.
// An error leaves the ring's memory quarantined; there is no one to tell.
func closeMapping(mapping *ringbuf.Mapping) { mapping.Close() }

// Size returns the size of the ring buffer in bytes.
func (r *RingBufReader) Size() int { return r.ring.Size() }

// Next returns the next record, in place in the ring buffer: its data, as
// the program wrote it, without the 8-byte header; records a program
// discarded (bpf_ringbuf_discard) are skipped. It blocks until a record is
// committed, the read deadline passes (the error then matches
// os.ErrDeadlineExceeded, even if records are waiting), or the reader is
// closed (ErrClosed).
//
// The record is valid until the next read by any goroutine (Next,
// NextBatch, NextContext): the read hands the record's space back to the
// producers, which may overwrite it at once. Copy what must outlive it.
// Do not write to it. Next does not allocate.
func (r *RingBufReader) Next() ([]byte, error) {
	r.mu.Lock()
	rec, err := r.nextLocked()
	r.mu.Unlock()
	return rec, err
}

// NextBatch is Next for many records: it fills recs with records in place
// and returns how many. It waits, as Next does, for the first; then it
// adds the records already committed, without waiting for more. All of
// them stay valid until the next read. A batch hands the space of the
// records before it back to the producers with one store, and takes the
// lock and looks at the deadline once. An error met after the first
// record is returned by the next read. With empty recs it reads nothing
// and returns 0 and nil, or ErrClosed once the reader is closed.
func (r *RingBufReader) NextBatch(recs [][]byte) (int, error) {
	if len(recs) == 0 {
		if r.closed.Load() {
			return 0, errRingBufClosed
		}
		return 0, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	rec, err := r.nextLocked()
	if err != nil {
		return 0, err
	}
	recs[0] = rec
	n := 1
	for n < len(recs) {
		rec, ok, err := r.ring.Next()
		if err != nil {
			r.pending = err
			break
		}
		if !ok {
			break
		}
		recs[n] = rec
		n++
	}
	return n, nil
}

// errRingBufClosed is what a read of a closed reader returns.
var errRingBufClosed = fmt.Errorf("read ring buffer: %w", ErrClosed)

// nextLocked returns the next record. The caller holds mu.
func (r *RingBufReader) nextLocked() ([]byte, error) {
	if r.closed.Load() {
		return nil, errRingBufClosed
	}
	if err := r.pending; err != nil {
		r.pending = nil
		return nil, r.readError(err)
	}
	if r.poll.DeadlineArmed() {
		if err := r.poll.CheckDeadline(); err != nil {
			return nil, r.readError(err)
		}
	}
	// The records the last read returned are the caller's no longer; their
	// space goes back to the producers with this store or a later one.
	r.ring.ReleaseLazy()
	for {
		rec, ok, err := r.ring.Next()
		if err != nil {
			return nil, r.readError(err)
		}
		if ok {
			return rec, nil
		}
		// Caught up: publish how far, so that the next commit wakes us,
		// and sleep until the ring is ready.
		r.ring.Release()
		if err := r.poll.Wait(); err != nil {
			return nil, r.readError(err)
		}
	}
}

// readError wraps an error of a read.
func (r *RingBufReader) readError(err error) error {
	if r.closed.Load() {
		return errRingBufClosed
	}
	return fmt.Errorf("read ring buffer: %w", err)
}

// NextContext is Next that also returns when ctx is done, with an error
// matching ctx.Err(). The read deadline still applies. A context that can
// be done costs the call a few small allocations; Next has none.
func (r *RingBufReader) NextContext(ctx context.Context) ([]byte, error) {
	if ctx.Done() == nil {
		return r.Next()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var rec []byte
	err := r.poll.WithContext(ctx, func() error {
		var err error
		rec, err = r.nextLocked()
		return err
	})
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return nil, fmt.Errorf("read ring buffer: %w", err)
		}
		return nil, err
	}
	return rec, nil
}

// SetReadDeadline sets the time after which Next, NextBatch and
// NextContext fail with an error matching os.ErrDeadlineExceeded, as
// net.Conn.SetReadDeadline does; a blocked read is woken. The zero time
// means no deadline. A program that commits with BPF_RB_NO_WAKEUP never
// wakes a sleeping reader: read such a ring with a deadline.
func (r *RingBufReader) SetReadDeadline(t time.Time) error {
	if err := r.poll.SetReadDeadline(t); err != nil {
		return fmt.Errorf("set read deadline: %w", err)
	}
	return nil
}

// Close stops the reader. A read blocked in Next returns an error matching
// ErrClosed, and so do later reads; Close waits for reads in progress to
// return. Close is idempotent: later calls return nil.
//
// Close never pulls memory from under a record a read returned, and no
// record ever faults, after Close or after the reader is garbage
// collected. Close lets go of the kernel's ring at once: the pages that
// hold the records of the last read, and of earlier reads whose space the
// reader had not yet handed back to the producers, are replaced by
// private copies (mremap(2)), and the rest of the ring by zero pages
// (mmap(2)). So a record of the last read used after Close still holds
// its bytes, for as long as it is used; one of an earlier read, no longer
// valid, may hold its bytes or read as zeros. The records read then count
// as consumed: the next reader of the map starts after them. If a page
// cannot be replaced, it stays the kernel's, the ring's memory is kept
// from the Go heap for good, and Close returns the error; the records
// whose space the reader had not handed back are then not consumed: the
// next reader of the map reads them again.
func (r *RingBufReader) Close() error {
	if r.closed.Swap(true) {
		return nil
	}
	perr := r.poll.Close() // wakes a blocked read
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cleanup.Stop()
	merr := r.mapping.Close()
	if perr != nil {
		return fmt.Errorf("close ring buffer reader: %w", perr)
	}
	if merr != nil {
		return fmt.Errorf("close ring buffer reader: %w (the records read are not consumed)", merr)
	}
	return nil
}
