package sockfilter

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/purebpf/purebpf/internal/sys"
	"github.com/purebpf/purebpf/sockfilter/internal/perfbuf"
	"github.com/purebpf/purebpf/sockfilter/internal/poller"
)

// PerfReader reads the records programs write into a PerfEventArray map
// with bpf_perf_event_output (Linux 4.4): the way to send records to user
// space on kernels without RingBuf. Each CPU has its own buffer, so
// records of different CPUs come in no particular order; those of one CPU
// come in the order they were written. Records that find a CPU's buffer
// full are dropped and counted by the kernel; Lost adds them up.
//
// NewPerfReader opens a perf event for each online CPU and puts it in the
// map under the CPU's number; Close takes them out. Next copies each
// record into a buffer of the reader's, so a record never refers to the
// kernel's memory. Next and NextContext may be called from several
// goroutines; they take turns. Any method may be called concurrently with
// Close.
type PerfReader struct {
	mu     sync.Mutex // serialises reads; Close takes it to wait for them
	bufs   []*perfbuf.Buffer
	cur    int // the buffer the next read looks at first
	poll   *poller.Poller
	mapFD  int // a duplicate of the map's fd, for Close to take the events out
	lost   atomic.Uint64
	closed atomic.Bool
}

// NewPerfReader opens a perf event buffer for each online CPU
// (perf_event_open(2), PERF_COUNT_SW_BPF_OUTPUT), maps it, and stores its
// fd in m under the CPU's number, so that bpf_perf_event_output with
// BPF_F_CURRENT_CPU writes into it. A nil opts gives the defaults. It
// needs CAP_PERFMON (or CAP_SYS_ADMIN, or root) unless
// kernel.perf_event_paranoid allows otherwise. m may be closed
// afterwards: the reader holds its own descriptor of it.
func NewPerfReader(m *Map, opts *PerfReaderOptions) (*PerfReader, error) {
	r, err := newPerfReader(m, opts)
	if err != nil {
		return nil, fmt.Errorf("new perf reader: %w", err)
	}
	return r, nil
}

func newPerfReader(m *Map, opts *PerfReaderOptions) (*PerfReader, error) {
	if opts == nil {
		opts = &PerfReaderOptions{}
	}
	switch {
	case m == nil:
		return nil, errors.New("map is nil")
	case m.Type() != PerfEventArray:
		return nil, fmt.Errorf("map %s is a %v, not a perf_event_array", m.describe(), m.Type())
	case opts.BufferSize < 0 || opts.Watermark < 0:
		return nil, fmt.Errorf("buffer size %d, watermark %d: negative", opts.BufferSize, opts.Watermark)
	}
	pages := perfPages(opts.BufferSize)
	if opts.Watermark >= pages*os.Getpagesize() {
		return nil, fmt.Errorf("watermark %d is not below the buffer size %d", opts.Watermark, pages*os.Getpagesize())
	}
	cpus, err := readCPUList("/sys/devices/system/cpu/online")
	if err != nil {
		return nil, err
	}
	if last := cpus[len(cpus)-1]; last >= m.MaxEntries() {
		return nil, fmt.Errorf("map %s has %d entries, but CPU %d is online: create it with MaxEntries 0 for one per possible CPU", m.describe(), m.MaxEntries(), last)
	}
	r := &PerfReader{mapFD: -1}
	ok := false
	defer func() {
		if !ok {
			r.release()
		}
	}()
	err = m.use("dup map fd", func(fd int) error {
		var err error
		r.mapFD, err = unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
		return os.NewSyscallError("fcntl F_DUPFD_CLOEXEC", err)
	})
	if err != nil {
		return nil, err
	}
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	if r.poll, err = poller.New(epfd, "perf:"+m.Name(), r.ready); err != nil {
		return nil, err
	}
	for _, cpu := range cpus {
		b, err := perfbuf.Open(cpu, pages, opts.Watermark)
		if err != nil {
			return nil, err
		}
		r.bufs = append(r.bufs, b)
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(b.FD)}
		if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, b.FD, &ev); err != nil {
			return nil, os.NewSyscallError("epoll_ctl", err)
		}
		if err := m.Update(perfKey(cpu), binary.NativeEndian.AppendUint32(nil, uint32(b.FD)), UpdateAny); err != nil {
			return nil, err
		}
	}
	ok = true
	return r, nil
}

// perfPages returns the pages of a buffer of size bytes: a power of two.
func perfPages(size int) int {
	if size == 0 {
		size = DefaultPerfBufferSize
	}
	page := os.Getpagesize()
	pages := 1
	for pages*page < size {
		pages *= 2
	}
	return pages
}

func perfKey(cpu int) []byte { return binary.NativeEndian.AppendUint32(nil, uint32(cpu)) }

// ready reports whether a buffer holds a record.
func (r *PerfReader) ready() bool {
	for _, b := range r.bufs {
		if b.Ring.Ready() {
			return true
		}
	}
	return false
}

// Next returns the next record of any CPU's buffer, copied out of it. It
// blocks until there is one, the read deadline passes (the error then
// matches os.ErrDeadlineExceeded, even if records are waiting), or the
// reader is closed (ErrClosed). The record's Data is valid until the next
// read. Next does not allocate, but for a record larger than any before.
func (r *PerfReader) Next() (PerfRecord, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.nextLocked()
}

var errPerfClosed = fmt.Errorf("read perf buffer: %w", ErrClosed)

func (r *PerfReader) nextLocked() (PerfRecord, error) {
	if r.closed.Load() {
		return PerfRecord{}, errPerfClosed
	}
	if r.poll.DeadlineArmed() {
		if err := r.poll.CheckDeadline(); err != nil {
			return PerfRecord{}, r.readError(err)
		}
	}
	for {
		for i := range r.bufs {
			b := r.bufs[(r.cur+i)%len(r.bufs)]
			for {
				rec, ok, err := b.Ring.Next()
				if err != nil {
					return PerfRecord{}, r.readError(fmt.Errorf("CPU %d: %w", b.CPU, err))
				}
				if !ok {
					break
				}
				if rec.Type == perfbuf.RecordLost {
					r.lost.Add(rec.Lost)
					continue
				}
				if rec.Type != perfbuf.RecordSample {
					continue
				}
				// Read this CPU's buffer on next time: its records are
				// likely in the cache.
				r.cur = (r.cur + i) % len(r.bufs)
				return PerfRecord{CPU: b.CPU, Data: rec.Data}, nil
			}
		}
		if err := r.poll.Wait(); err != nil {
			return PerfRecord{}, r.readError(err)
		}
	}
}

func (r *PerfReader) readError(err error) error {
	if r.closed.Load() {
		return errPerfClosed
	}
	return fmt.Errorf("read perf buffer: %w", err)
}

// NextContext is Next that also returns when ctx is done, with an error
// matching ctx.Err(). The read deadline still applies.
func (r *PerfReader) NextContext(ctx context.Context) (PerfRecord, error) {
	if ctx.Done() == nil {
		return r.Next()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var rec PerfRecord
	err := r.poll.WithContext(ctx, func() error {
		var err error
		rec, err = r.nextLocked()
		return err
	})
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return PerfRecord{}, fmt.Errorf("read perf buffer: %w", err)
		}
		return PerfRecord{}, err
	}
	return rec, nil
}

// SetReadDeadline sets the time after which Next and NextContext fail
// with an error matching os.ErrDeadlineExceeded; a blocked read is woken.
// The zero time means no deadline.
func (r *PerfReader) SetReadDeadline(t time.Time) error {
	if err := r.poll.SetReadDeadline(t); err != nil {
		return fmt.Errorf("set read deadline: %w", err)
	}
	return nil
}

// Lost returns how many records the kernel has dropped so far because a
// CPU's buffer was full, as far as the reader has read: the kernel
// reports the drops in the buffer once there is room again.
func (r *PerfReader) Lost() uint64 { return r.lost.Load() }

// CPUs returns the CPUs whose buffers the reader reads.
func (r *PerfReader) CPUs() []int {
	cpus := make([]int, len(r.bufs))
	for i, b := range r.bufs {
		cpus[i] = b.CPU
	}
	return cpus
}

// Close takes the reader's events out of the map, unmaps their buffers and
// closes them. A read blocked in Next returns an error matching
// ErrClosed, and so do later reads; Close waits for reads in progress to
// return. Close is idempotent.
func (r *PerfReader) Close() error {
	if r.closed.Swap(true) {
		return nil
	}
	err := r.poll.Close()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.release()
	if err != nil {
		return fmt.Errorf("close perf reader: %w", err)
	}
	return nil
}

// release undoes what newPerfReader did.
func (r *PerfReader) release() {
	for _, b := range r.bufs {
		if r.mapFD >= 0 {
			// ENOENT if newPerfReader failed before the update.
			key := perfKey(b.CPU)
			sys.MapDeleteElem(&sys.MapElemAttr{MapFD: uint32(r.mapFD), Key: sys.SlicePointer(key)})
		}
		b.Close()
	}
	r.bufs = nil
	if r.poll != nil {
		r.poll.Close()
	}
	if r.mapFD >= 0 {
		unix.Close(r.mapFD)
		r.mapFD = -1
	}
}
