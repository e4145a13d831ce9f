package sockfilter

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/purebpf/purebpf/internal/sys"
	"github.com/purebpf/purebpf/sockfilter/internal/kparse"
	"github.com/purebpf/purebpf/sockfilter/internal/perfbuf"
	"github.com/purebpf/purebpf/sockfilter/internal/poller"
	"github.com/purebpf/purebpf/sockfilter/internal/ringbuf"
	"github.com/purebpf/purebpf/sockfilter/packet"
)

// recordSource is where a RecordConn reads raw records: a ring buffer or
// perf buffers.
type recordSource interface {
	// next returns the next record, valid until release (ring buffer) or
	// the next call (perf buffers); ok is false when there is none.
	next() (rec []byte, ok bool, err error)
	// release hands the space of the records read back to the kernel.
	release()
	// ready reports whether next has a record, after release.
	ready() bool
	// fds returns the descriptors to wait on.
	fds() []int
	close()
}

// ringSource reads a ring buffer mapped into the process.
type ringSource struct {
	fd      int // a duplicate of the map's fd, owned
	mapping *ringbuf.Mapping
	ring    *ringbuf.Ring
}

func (s *ringSource) next() ([]byte, bool, error) { return s.ring.Next() }
func (s *ringSource) release()                    { s.ring.Release() }
func (s *ringSource) ready() bool                 { return s.ring.Ready() }
func (s *ringSource) fds() []int                  { return []int{s.fd} }
func (s *ringSource) close() {
	s.mapping.Close()
	unix.Close(s.fd)
}

// perfSource reads the perf buffers of the online CPUs, which copy each
// record out.
type perfSource struct {
	mapFD int // a duplicate of the perf event array's fd, owned
	bufs  []*perfbuf.Buffer
	cur   int // the buffer read first: the last one that had a record
}

func (s *perfSource) next() ([]byte, bool, error) {
	for i := range s.bufs {
		b := s.bufs[(s.cur+i)%len(s.bufs)]
		for {
			rec, ok, err := b.Ring.Next()
			if err != nil {
				return nil, false, fmt.Errorf("CPU %d: %w", b.CPU, err)
			}
			if !ok {
				break
			}
			// The program counts what the kernel reports lost
			// (PERF_RECORD_LOST) itself, as the failures of
			// bpf_perf_event_output.
			if rec.Type == perfbuf.RecordSample {
				s.cur = (s.cur + i) % len(s.bufs)
				return rec.Data, true, nil
			}
		}
	}
	return nil, false, nil
}

func (s *perfSource) release() {}

func (s *perfSource) ready() bool {
	for _, b := range s.bufs {
		if b.Ring.Ready() {
			return true
		}
	}
	return false
}

func (s *perfSource) fds() []int {
	fds := make([]int, len(s.bufs))
	for i, b := range s.bufs {
		fds[i] = b.FD
	}
	return fds
}

func (s *perfSource) close() {
	for _, b := range s.bufs {
		key := perfKey(b.CPU)
		sys.MapDeleteElem(&sys.MapElemAttr{MapFD: uint32(s.mapFD), Key: sys.SlicePointer(key)})
		b.Close()
	}
	s.bufs = nil
	unix.Close(s.mapFD)
}

// dupFD returns a duplicate of m's fd, close-on-exec.
func dupFD(m *Map) (int, error) {
	fd := -1
	err := m.use("duplicate map fd", func(mfd int) error {
		var err error
		fd, err = unix.FcntlInt(uintptr(mfd), unix.F_DUPFD_CLOEXEC, 0)
		return os.NewSyscallError("fcntl F_DUPFD_CLOEXEC", err)
	})
	return fd, err
}

// startReader maps the record buffer and makes the poller the reader
// waits on: an epoll set of the buffer's fds and a timerfd that ticks
// every cfg.Timeout, so that records below the watermark, which wake
// nobody, are read at that pace. Perf buffers are put in the map here,
// before the socket is bound, so that no record finds its CPU without one.
func (c *RecordConn) startReader(cfg *RecordConfig) error {
	fd, err := dupFD(c.records)
	if err != nil {
		return err
	}
	if c.perf {
		ps := &perfSource{mapFD: fd}
		c.src = ps
		if err := ps.open(c.records, cfg); err != nil {
			return err
		}
	} else {
		mapping, ring, err := ringbuf.Map(fd, cfg.RingSize)
		if err != nil {
			unix.Close(fd)
			return fmt.Errorf("map the ring buffer: %w", err)
		}
		c.src = &ringSource{fd: fd, mapping: mapping, ring: ring}
	}
	c.timer, err = unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return os.NewSyscallError("timerfd_create", err)
	}
	spec := timerSpec(cfg.Timeout)
	if err := unix.TimerfdSettime(c.timer, 0, &spec, nil); err != nil {
		return os.NewSyscallError("timerfd_settime", err)
	}
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return os.NewSyscallError("epoll_create1", err)
	}
	// Level-triggered in the set: the set is readable while any is. The
	// runtime poller is woken by each wake-up of one of them.
	for _, fd := range append(c.src.fds(), c.timer) {
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}
		if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
			unix.Close(epfd)
			return os.NewSyscallError("epoll_ctl", err)
		}
	}
	c.poll, err = poller.New(epfd, "records:"+c.sock.ifname, c.ready)
	return err
}

// ready reports whether there are records to read. It first reads the
// timerfd's count of expirations: a timerfd left readable in the epoll
// set wakes the runtime poller once, not at every later expiry.
func (c *RecordConn) ready() bool {
	unix.Read(c.timer, c.ticks[:])
	return c.src.ready()
}

// open opens a perf buffer on each online CPU and puts it in m.
func (s *perfSource) open(m *Map, cfg *RecordConfig) error {
	cpus, err := readCPUList("/sys/devices/system/cpu/online")
	if err != nil {
		return err
	}
	watermark := max(cfg.Watermark, 0)
	for _, cpu := range cpus {
		b, err := perfbuf.Open(cpu, perfPages(cfg.PerfBufferSize), watermark)
		if err != nil {
			return err
		}
		s.bufs = append(s.bufs, b)
		if err := m.Update(perfKey(cpu), binary.NativeEndian.AppendUint32(nil, uint32(b.FD)), UpdateAny); err != nil {
			return err
		}
	}
	return nil
}

// errRecordsClosed is what a read of a closed RecordConn returns.
var errRecordsClosed = fmt.Errorf("read records: %w", ErrClosed)

// NextRecords decodes the next records the kernel wrote into recs and
// infos, up to the shorter of the two (infos may be nil, when the caller
// needs only the records), and returns how many. It waits for the first
// record; then it adds those already written, without waiting for more.
// Each record is what packet.Parse would decode from its frame with the
// frame's packet.Info, and the Info is what a Conn would report, the
// frame's length included (the frame is whole: no snap length applies).
//
// It blocks until a record arrives, the read deadline passes (the error
// then matches os.ErrDeadlineExceeded, even if records are waiting), or
// the RecordConn is closed (ErrClosed). A sleeping reader is woken when
// the kernel's records cross RecordConfig.Watermark, and otherwise every
// RecordConfig.Timeout. It reads the ring buffer where the kernel wrote
// it, mapped into the process, with no system call while records are
// there, and hands their space back to the kernel before it returns. It
// does not allocate. With an empty recs it reads nothing and returns 0
// and nil, or ErrClosed once the RecordConn is closed.
func (c *RecordConn) NextRecords(recs []packet.Record, infos []packet.Info) (int, error) {
	if infos != nil {
		recs = recs[:min(len(recs), len(infos))]
	}
	if len(recs) == 0 {
		if c.closed.Load() {
			return 0, errRecordsClosed
		}
		return 0, nil
	}
	c.readMu.Lock()
	n, err := c.readLocked(recs, infos)
	c.readMu.Unlock()
	return n, err
}

// readLocked is NextRecords. The caller holds readMu.
func (c *RecordConn) readLocked(recs []packet.Record, infos []packet.Info) (int, error) {
	if c.closed.Load() {
		return 0, errRecordsClosed
	}
	if c.poll.DeadlineArmed() {
		if err := c.poll.CheckDeadline(); err != nil {
			return 0, c.readError(err)
		}
	}
	for {
		n, err := c.drain(recs, infos)
		if n > 0 || err != nil {
			return n, err
		}
		if err := c.poll.Wait(); err != nil {
			return 0, c.readError(err)
		}
		c.refreshClock()
	}
}

// drain decodes the records there are, up to len(recs), and hands their
// space back.
func (c *RecordConn) drain(recs []packet.Record, infos []packet.Info) (int, error) {
	n := 0
	defer c.src.release()
	for n < len(recs) {
		raw, ok, err := c.src.next()
		if err != nil {
			return n, c.readError(err)
		}
		if !ok {
			break
		}
		var info *packet.Info
		if infos != nil {
			info = &infos[n]
		}
		if err := kparse.Decode(raw, c.clk, &recs[n], info); err != nil {
			return n, c.readError(err)
		}
		n++
	}
	c.read.Add(uint64(n))
	return n, nil
}

// readError wraps an error of a read.
func (c *RecordConn) readError(err error) error {
	if c.closed.Load() {
		return errRecordsClosed
	}
	return fmt.Errorf("read records: %w", err)
}

// NextRecordsContext is NextRecords that also returns when ctx is done,
// with an error matching ctx.Err(). The read deadline still applies. A
// context that can be done costs the call a few small allocations;
// NextRecords has none.
func (c *RecordConn) NextRecordsContext(ctx context.Context, recs []packet.Record, infos []packet.Info) (int, error) {
	if ctx.Done() == nil {
		return c.NextRecords(recs, infos)
	}
	if infos != nil {
		recs = recs[:min(len(recs), len(infos))]
	}
	if len(recs) == 0 {
		return c.NextRecords(recs, infos)
	}
	c.readMu.Lock()
	defer c.readMu.Unlock()
	var n int
	err := c.poll.WithContext(ctx, func() error {
		var err error
		n, err = c.readLocked(recs, infos)
		return err
	})
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return 0, fmt.Errorf("read records: %w", err)
		}
		return n, err
	}
	return n, nil
}

// SetReadDeadline sets the time after which NextRecords and
// NextRecordsContext fail with an error matching os.ErrDeadlineExceeded,
// as net.Conn.SetReadDeadline does; a blocked read is woken. The zero time
// means no deadline.
func (c *RecordConn) SetReadDeadline(t time.Time) error {
	if c.closed.Load() {
		return fmt.Errorf("set read deadline: %w", ErrClosed)
	}
	if err := c.poll.SetReadDeadline(t); err != nil {
		if errors.Is(err, poller.ErrClosed) {
			return fmt.Errorf("set read deadline: %w", ErrClosed)
		}
		return fmt.Errorf("set read deadline: %w", err)
	}
	return nil
}
