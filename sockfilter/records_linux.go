package sockfilter

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/sockfilter/internal/kparse"
	"github.com/purebpf/purebpf/sockfilter/internal/poller"
	"github.com/purebpf/purebpf/sockfilter/packet"
)

// RecordConn is a capture in records: an AF_PACKET socket whose socket
// filter parses each frame it accepts in the kernel and writes what
// packet.Parse would decode from it — a fixed record of 104 bytes — to a
// BPF ring buffer, and returns 0, so that the kernel queues nothing on
// the socket and copies no frame. NextRecords decodes the records into
// packet.Record and packet.Info values. See ListenRecords.
//
// NextRecords and NextRecordsContext may be called from several
// goroutines; they take turns. Every method may be called concurrently
// with Close; once the RecordConn is closed, the reads return an error
// matching ErrClosed.
type RecordConn struct {
	sock     *ksocket
	records  *Map // the ring buffer or perf event array
	counters *Map
	clock    KernelClock
	perf     bool

	src   recordSource
	poll  *poller.Poller
	timer int // the timerfd that wakes the reader every Timeout
	ticks [8]byte

	readMu sync.Mutex // serialises reads; Close takes it to wait for them
	clk    kparse.Clock
	closed atomic.Bool
	read   atomic.Uint64

	statsMu sync.Mutex
	sockSt  Stats
}

// ListenRecords opens an AF_PACKET socket on the interface named ifname
// and attaches a program made of filter, a socket filter, followed by a
// parser: each frame filter accepts (returns other than 0 for) is parsed
// in the kernel and its record written to a ring buffer; no frame is
// queued on the socket. A nil cfg gives the defaults.
//
// filter is a socket filter as Load takes it — pcapfilter.Compile's
// output, FromClassic's, or hand-written — that keeps the socket buffer
// in r6 (start it with skb.Prologue); its verdict is taken where it
// exits. A nil filter accepts every frame.
//
// The record of a frame holds what packet.Parse decodes from the frame
// with the packet.Info a Conn would give: the same fields, the same
// Status and ErrLayer for frames it cannot decode wholly (VLAN tags up to
// 8, IPv6 extension headers up to 8, as Parse), and the time the program
// ran, from the best clock the kernel has (see KernelClock). The frame is
// whole: a record's CapLen is its Length.
//
// It needs Linux 5.8 for the ring buffer, or Linux 5.1 (the program's
// 32-bit jumps) with perf buffers: see RecordConfig.Perf, which it uses
// itself where ring buffers are missing; and CAP_BPF and CAP_NET_RAW.
// Interfaces are those Listen takes, Ethernet-like and raw IP, but not
// AnyInterface: the parser reads each frame's link-layer header, which a
// capture on every interface at once does not have.
func ListenRecords(ifname string, filter asm.Instructions, cfg *RecordConfig) (*RecordConn, error) {
	c, err := listenRecords(ifname, filter, cfg)
	if err != nil {
		return nil, fmt.Errorf("listen for records on interface %q: %w", ifname, err)
	}
	return c, nil
}

// acceptEvery is the filter of a nil filter: skb.Prologue and return -1.
var acceptEvery = asm.Instructions{asm.Mov.Reg(asm.R6, asm.R1), asm.Mov.Imm(asm.R0, -1), asm.Exit()}

// recordDefaults returns cfg with its defaults filled in, or an error.
func recordDefaults(cfg *RecordConfig) (RecordConfig, error) {
	var c RecordConfig
	if cfg != nil {
		c = *cfg
	}
	if c.RingSize == 0 {
		c.RingSize = DefaultRecordRingSize
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultRecordTimeout
	}
	if c.PerfBufferSize == 0 {
		c.PerfBufferSize = DefaultPerfBufferSize
	}
	size := c.RingSize
	if c.Perf {
		size = perfPages(c.PerfBufferSize) * os.Getpagesize()
	}
	if c.Watermark == 0 {
		c.Watermark = size / 4
	}
	switch {
	case c.RingSize < 0 || c.RingSize > 1<<30:
		return c, fmt.Errorf("ring size %d: from one page to 1 GiB", c.RingSize)
	case c.PerfBufferSize < 0 || c.PerfBufferSize > 1<<30:
		return c, fmt.Errorf("perf buffer size %d: from one page to 1 GiB", c.PerfBufferSize)
	case c.Timeout < 0:
		return c, fmt.Errorf("timeout %v is negative", c.Timeout)
	case c.Watermark < -1 || c.Watermark >= size:
		return c, fmt.Errorf("watermark %d: -1, or 0 up to the buffer's %d bytes", c.Watermark, size)
	}
	if !c.Perf {
		if err := checkRingBufSize(uint32(c.RingSize)); err != nil {
			return c, err
		}
	}
	return c, nil
}

func listenRecords(ifname string, filter asm.Instructions, cfg *RecordConfig) (*RecordConn, error) {
	conf, err := recordDefaults(cfg)
	if err != nil {
		return nil, err
	}
	if filter == nil {
		filter = acceptEvery
	}
	clock, err := kernelClock(conf.Clock, preciseClocks...)
	if err != nil {
		return nil, fmt.Errorf("find the kernel's clock: %w", err)
	}
	clk, err := clockOffset(clock)
	if err != nil {
		return nil, err
	}
	s, fd, err := openKSocket(ifname)
	if err != nil {
		return nil, err
	}
	c := &RecordConn{sock: s, clock: clock, clk: clk, timer: -1}
	ok, fdOwned := false, true
	defer func() {
		if !ok {
			if fdOwned {
				unix.Close(fd)
			}
			c.release()
		}
	}()
	skip, err := s.configureDirection(fd, conf.Direction, conf.LoopbackOutgoing)
	if err != nil {
		return nil, err
	}
	if err := c.makeMaps(&conf); err != nil {
		return nil, err
	}
	prog, err := loadRecordProgram(filter, s.link, 0, skip, c.records, c.counters, c.perf, conf.Watermark, clock)
	if err != nil {
		return nil, err
	}
	defer prog.Close()
	if err := c.startReader(&conf); err != nil {
		return nil, err
	}
	fdOwned = false // start closes it if it fails
	if err := s.start(fd, prog, conf.Promiscuous); err != nil {
		return nil, err
	}
	ok = true
	return c, nil
}

// makeMaps creates the record buffer and the counters: a ring buffer, or
// where the kernel has none, or cfg asks, a perf event array.
func (c *RecordConn) makeMaps(cfg *RecordConfig) error {
	var err error
	c.counters, err = NewMap(&MapSpec{Type: PerCPUArray, Name: "krec_counters", ValueSize: kparse.RecordCountersSize, MaxEntries: 1})
	if err != nil {
		return err
	}
	if !cfg.Perf {
		c.records, err = NewMap(&MapSpec{Type: RingBuf, Name: "krec_records", MaxEntries: uint32(cfg.RingSize)})
		if err == nil || !errors.Is(err, unix.EINVAL) {
			return err
		}
		// No ring buffers before Linux 5.8: perf buffers then.
		cfg.Perf = true
		if cfg.Watermark >= cfg.PerfBufferSize {
			cfg.Watermark = perfPages(cfg.PerfBufferSize) * os.Getpagesize() / 4
		}
	}
	c.perf = true
	c.records, err = NewMap(&MapSpec{Type: PerfEventArray, Name: "krec_records"})
	return err
}

// loadRecordProgram loads filter spliced in front of the record builder
// for link, reading frames base bytes before skb->data (see
// kparse.Options.Base: 0 for a live socket).
func loadRecordProgram(filter asm.Instructions, link packet.LinkType, base int, skip kparse.Skip, records, counters *Map, perf bool, watermark int, clock KernelClock) (*Program, error) {
	o := kparse.RecordOptions{Options: kparse.Options{Link: link, Base: base, Clock: clock.helper(), Skip: skip}, Perf: perf}
	if !perf && watermark > 0 {
		o.Watermark = watermark
	}
	insns, err := kparse.Records(filter, &o)
	if err != nil {
		return nil, fmt.Errorf("make the record program: %w", err)
	}
	p, err := Load(insns, &LoadOptions{
		Name: "krecords",
		Maps: map[string]*Map{kparse.MapRecords: records, kparse.MapCounters: counters},
	})
	return p, filterError(filter, err)
}

// filterError returns err, the error of loading a program made of filter,
// or if the verifier refuses filter alone too, that error: it points into
// the caller's program, not into the one made of it.
func filterError(filter asm.Instructions, err error) error {
	var verr *VerifierError
	if err == nil || !errors.As(err, &verr) {
		return err
	}
	p, ferr := Load(filter, nil)
	if ferr != nil {
		return fmt.Errorf("the filter: %w", ferr)
	}
	p.Close()
	return err
}

// Interface returns the name of the interface the RecordConn is bound to.
func (c *RecordConn) Interface() string { return c.sock.ifname }

// Ifindex returns the index of the interface the RecordConn is bound to.
func (c *RecordConn) Ifindex() int { return c.sock.ifindex }

// LinkType returns the link type of the interface's frames, which the
// program parses.
func (c *RecordConn) LinkType() packet.LinkType { return c.sock.link }

// Clock returns the clock the kernel stamps the records with.
func (c *RecordConn) Clock() KernelClock { return c.clock }

// PerfBuffers reports whether the records come through per-CPU perf event
// buffers rather than a ring buffer (RecordConfig.Perf, or a kernel
// without ring buffers).
func (c *RecordConn) PerfBuffers() bool { return c.perf }

// Stats returns the RecordConn's counters: totals since ListenRecords.
// Lost is the sum of the program's per-CPU counts (bpf(2)
// BPF_MAP_LOOKUP_ELEM); Socket is the socket's PACKET_STATISTICS, which
// the kernel resets on each read, added up.
func (c *RecordConn) Stats() (RecordStats, error) {
	c.statsMu.Lock()
	defer c.statsMu.Unlock()
	if c.closed.Load() {
		return RecordStats{}, fmt.Errorf("read statistics: %w", ErrClosed)
	}
	st := RecordStats{Records: c.read.Load()}
	vals := make([]byte, c.counters.ValueBufSize())
	if err := c.counters.LookupInto(make([]byte, 4), vals); err != nil {
		return RecordStats{}, fmt.Errorf("read statistics: %w", err)
	}
	stride := perCPUStride(kparse.RecordCountersSize)
	for off := 0; off < len(vals); off += stride {
		st.Lost += binary.NativeEndian.Uint64(vals[off+kparse.CounterLost:])
		st.Unreadable += binary.NativeEndian.Uint64(vals[off+kparse.CounterUnreadable:])
	}
	if err := c.sock.stats(&c.sockSt); err != nil {
		return RecordStats{}, fmt.Errorf("read statistics: %w", err)
	}
	st.Socket = c.sockSt
	return st, nil
}

// Close closes the socket and the maps. A read blocked in NextRecords
// returns an error matching ErrClosed; Close waits for reads in progress
// to return. Records NextRecords returned are the caller's values and stay
// valid. Close is idempotent: later calls return nil.
func (c *RecordConn) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	var perr error
	if c.poll != nil {
		perr = c.poll.Close() // wakes a blocked read
	}
	c.readMu.Lock()
	defer c.readMu.Unlock()
	c.statsMu.Lock()
	defer c.statsMu.Unlock()
	err := c.release()
	if err == nil {
		err = perr
	}
	if err != nil {
		return fmt.Errorf("close: %w", err)
	}
	return nil
}

// release closes what the RecordConn holds.
func (c *RecordConn) release() error {
	var err error
	if c.sock != nil {
		err = c.sock.close()
	}
	if c.poll != nil {
		c.poll.Close()
	}
	if c.timer >= 0 {
		unix.Close(c.timer)
		c.timer = -1
	}
	if c.src != nil {
		c.src.close()
		c.src = nil
	}
	for _, m := range []*Map{c.records, c.counters} {
		if m != nil {
			m.Close()
		}
	}
	return err
}

// refreshClock follows a change of the TAI offset.
func (c *RecordConn) refreshClock() {
	if c.clock != ClockTAI {
		return
	}
	if clk, err := clockOffset(ClockTAI); err == nil {
		c.clk = clk
	}
}

// timerSpec returns the timerfd setting for a period of d.
func timerSpec(d time.Duration) unix.ItimerSpec {
	ts := unix.NsecToTimespec(d.Nanoseconds())
	return unix.ItimerSpec{Interval: ts, Value: ts}
}
