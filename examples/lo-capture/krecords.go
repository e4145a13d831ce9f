package main

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/purebpf/purebpf/sockfilter"
	"github.com/purebpf/purebpf/sockfilter/packet"
)

// kernelConfig returns the RecordConfig of -k for the flags: -Q, -both,
// -p as for a Conn (listenConfig), and -B as the BPF ring buffer's size,
// rounded up to a power of two.
func kernelConfig(opts *options, ifname string, warn func(string)) (*sockfilter.RecordConfig, error) {
	cfg, err := listenConfig(opts, ifname, warn)
	if err != nil {
		return nil, err
	}
	rc := &sockfilter.RecordConfig{Direction: cfg.Direction, LoopbackOutgoing: cfg.LoopbackOutgoing, Promiscuous: cfg.Promiscuous}
	if opts.bufferKiB > 0 {
		rc.RingSize = ringBufferSize(opts.bufferKiB, os.Getpagesize())
	}
	return rc, nil
}

// ringBufferSize returns the size of a BPF ring buffer of at least kib
// KiB: a power-of-two multiple of the page size, as the kernel requires.
func ringBufferSize(kib, page int) int {
	size := page
	for size < kib<<10 && size < 1<<30 {
		size <<= 1
	}
	return size
}

// captureRecords runs a live capture in records built in the kernel (-k)
// until -c's count, a signal, -timeout or an error: the socket filter
// parses each frame the filter accepts and writes its record to a BPF ring
// buffer; no frame is copied. The lines are those of a capture of frames.
func (s *session) captureRecords() (err error) {
	opts := s.opts
	demo, err := s.startDemo()
	if err != nil {
		return err
	}
	if demo != nil {
		defer demo.Close()
	}
	ifname, link, warn, err := s.kernelInterface()
	if err != nil {
		return err
	}
	cfg, err := kernelConfig(opts, ifname, warn)
	if err != nil {
		return err
	}
	insns, err := compileFilter(opts, link)
	if err != nil {
		return err
	}
	rc, err := sockfilter.ListenRecords(ifname, insns, cfg)
	if err != nil {
		return err
	}
	defer rc.Close()

	out, done, err := s.startOutputs(rc.LinkType(), nil)
	if err != nil {
		return err
	}
	defer done(&err)
	backing := "a BPF ring buffer"
	if rc.PerfBuffers() {
		backing = "perf event buffers"
	}
	fmt.Fprintf(s.stderr, "listening on %s, link-type %s (%s), records built in the kernel into %s, filter %q, %d instructions\n",
		ifname, rc.LinkType(), rc.LinkType().Description(), backing, opts.expr, insns.Slots())
	ctx := s.ctx
	if demo != nil {
		var cancel context.CancelFunc
		ctx, cancel = s.runDemo(ctx, demo)
		defer cancel()
	}
	stopWake := context.AfterFunc(ctx, func() { rc.SetReadDeadline(time.Unix(1, 0)) })
	defer stopWake()

	var records atomic.Int64
	s.sig.onInfo(func() { s.printRecordCounts(rc, int(records.Load()), false) })
	defer s.sig.onInfo(nil)
	if err := s.recordLoop(ctx, rc, out, &records); err != nil {
		return err
	}
	if err := s.closeOutputs(out); err != nil {
		return err
	}
	return s.printRecordCounts(rc, int(records.Load()), true)
}

// recordLoop reads and prints records until -c's count, the context's
// end, or an error, counting them in written.
func (s *session) recordLoop(ctx context.Context, rc *sockfilter.RecordConn, out *outputs, written *atomic.Int64) error {
	count := s.opts.count
	n := 0
	defer func() { written.Store(int64(n)) }()
	var recs [readBatch]packet.Record
	// The deadline is flushEvery away, as readLoop's: the records are
	// flushed when it passes, and it is set again.
	if err := rc.SetReadDeadline(time.Now().Add(flushEvery)); err != nil {
		return err
	}
	for count == 0 || n < count {
		got, err := rc.NextRecords(recs[:], nil)
		if err != nil {
			if end, err := idleRead(ctx, err, out, rc.SetReadDeadline); end {
				return err
			}
			continue
		}
		if count > 0 {
			got = min(got, count-n)
		}
		for i := range got {
			if out.records != nil {
				if err := out.records.WriteRecord(&recs[i]); err != nil {
					if err = stopped(out.wrap(err)); err == nil {
						n++
					}
					return err
				}
			}
			n++
		}
		written.Store(int64(n))
	}
	return nil
}

// printRecordCounts prints -k's counts to standard error, as printCounts
// prints a capture's: "dropped by kernel" counts the records the kernel
// could not write because the ring buffer was full.
func (s *session) printRecordCounts(rc *sockfilter.RecordConn, records int, final bool) error {
	st, err := rc.Stats()
	if err != nil {
		return err
	}
	received := st.Records + st.Lost
	if final {
		fmt.Fprintf(s.stderr, "%d %s captured\n%d %s received by filter\n%d %s dropped by kernel (ring buffer full)\n",
			records, plural(uint64(records)), received, plural(received), st.Lost, plural(st.Lost))
	} else {
		fmt.Fprintf(s.stderr, "lo-capture: %d %s captured, %d %s received by filter, %d %s dropped by kernel (ring buffer full)\n",
			records, plural(uint64(records)), received, plural(received), st.Lost, plural(st.Lost))
	}
	fmt.Fprintf(s.stderr, "%d records, %d frames received by filter, %d dropped by kernel\n", records, received, st.Lost)
	return nil
}

// kernelInterface returns the interface of a capture in the kernel (-k,
// -flows, -ipfix), its link type, and the function that prints a warning.
func (s *session) kernelInterface() (ifname string, link packet.LinkType, warn func(string), err error) {
	ifname = resolveInterface(s.opts.iface)
	link, err = sockfilter.InterfaceLinkType(ifname)
	if err != nil {
		return "", 0, nil, err
	}
	warn = func(msg string) { fmt.Fprintf(s.stderr, "lo-capture: warning: %s\n", msg) }
	return ifname, link, warn, nil
}
