package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/sockfilter"
	"github.com/purebpf/purebpf/sockfilter/packet"
	"github.com/purebpf/purebpf/sockfilter/pcapfile"
	"github.com/purebpf/purebpf/sockfilter/pcapfilter"
)

// flushEvery bounds how long a record may wait in the output buffers
// while the capture is idle.
const flushEvery = 100 * time.Millisecond

// compileFilter compiles opts.expr for a live socket on link (for "any",
// LINUX_SLL2: the program for its socket, which reads the cooked header's
// fields from the socket buffer), with -s's snap length as the program's
// accepting return value.
func compileFilter(opts *options, link packet.LinkType) (asm.Instructions, error) {
	return compileFilterWith(opts, link, nil)
}

// compileFileFilter is compileFilter for the frames of a capture file of
// link (pcapfilter's Offline form): a Linux cooked file's have their
// header, which the program reads, and what only a live socket can tell
// (inbound, outbound, ifindex) is refused, as tcpdump -r refuses it.
func compileFileFilter(opts *options, link packet.LinkType) (asm.Instructions, error) {
	return compileFilterWith(opts, link, &pcapfilter.CompileOptions{Offline: true})
}

// compileFilterWith compiles opts.expr with po (nil for Compile's
// defaults), tcpdump's netmask for `ip broadcast` (netmaskFor) and -s's
// snap length.
func compileFilterWith(opts *options, link packet.LinkType, po *pcapfilter.CompileOptions) (asm.Instructions, error) {
	if po == nil {
		po = &pcapfilter.CompileOptions{}
	}
	po.Netmask = netmaskFor(opts)
	insns, err := pcapfilter.CompileWith(opts.expr, link, po)
	if err != nil {
		return nil, err // a *pcapfilter.Error quotes the expression and gives the column
	}
	if opts.snaplen > 0 {
		return withSnaplen(insns, opts.snaplen)
	}
	return insns, nil
}

// compile compiles the filter for link and loads it, printing the
// verifier's log for --verifier-log.
func compile(opts *options, link packet.LinkType, stderr io.Writer) (asm.Instructions, *sockfilter.Program, error) {
	insns, err := compileFilter(opts, link)
	if err != nil {
		return nil, nil, err
	}
	prog, err := loadFilter(opts, insns, stderr)
	return insns, prog, err
}

// loadFilter loads insns, printing the verifier's log for --verifier-log.
func loadFilter(opts *options, insns asm.Instructions, stderr io.Writer) (*sockfilter.Program, error) {
	lo := &sockfilter.LoadOptions{Name: "lo_capture"}
	if opts.verifierLog {
		lo.LogLevel = sockfilter.LogLevelBranch | sockfilter.LogLevelStats
	}
	prog, err := sockfilter.Load(insns, lo)
	if err != nil {
		return nil, err
	}
	if opts.verifierLog {
		log, truncated := prog.VerifierLog()
		fmt.Fprintf(stderr, "verifier log:\n%s", log)
		if truncated {
			fmt.Fprintln(stderr, "(verifier log truncated)")
		}
	}
	return prog, nil
}

// snaplenOf returns the snap length a capture keeps: -s's, or tcpdump's
// default.
func snaplenOf(opts *options) int {
	if opts.snaplen > 0 {
		return opts.snaplen
	}
	return pcapfile.DefaultSnaplen
}

// listenConfig returns the socket's configuration for the flags: -Q and
// -both, -p, -B. Like tcpdump, lo-capture sees both directions by default
// (each packet on lo once, its outgoing copy dropped in the kernel) and
// puts the interface in promiscuous mode, which the "any" device cannot
// be: there it warns, as tcpdump does, and goes on without.
func listenConfig(opts *options, ifname string, warn func(string)) (*sockfilter.Config, error) {
	cfg := &sockfilter.Config{Promiscuous: !opts.noPromisc, LoopbackOutgoing: opts.both}
	if ifname == sockfilter.AnyInterface && cfg.Promiscuous {
		warn("any: that device does not support promiscuous mode")
		cfg.Promiscuous = false
	}
	switch opts.direction {
	case "in":
		cfg.Direction = sockfilter.DirectionIn
	case "out":
		cfg.Direction = sockfilter.DirectionOut
	default:
		cfg.Direction = sockfilter.DirectionInOut
	}
	if opts.bufferKiB > 0 {
		cfg.RingBlockSize, cfg.RingBlockCount = ringGeometry(opts.bufferKiB, os.Getpagesize())
	}
	return cfg, nil
}

// Ring blocks for -B: at least minRingBlock, so that the largest frame
// of lo (64 KiB) fits one, and at most sockfilter's default block.
const minRingBlock = 128 << 10

// ringGeometry returns the block size and count of a ring of about kib
// KiB, as -B asks: blocks of DefaultRingBlockSize for a ring of 8 or more
// of them, and otherwise 8 smaller blocks (each a whole number of pages,
// and at least minRingBlock), so that a small ring still hands blocks to
// the reader often. The ring is never smaller than asked, but may be
// larger: at least one block of minRingBlock.
func ringGeometry(kib, page int) (size, count int) {
	total := kib << 10
	size = sockfilter.DefaultRingBlockSize
	if total < 8*size {
		size = max(minRingBlock, (total/8+page-1)/page*page)
	}
	count = max(1, (total+size-1)/size)
	return size, count
}

// capture runs a live capture until -c's count, a signal, -timeout, or an
// error.
func (s *session) capture() (err error) {
	opts := s.opts
	demo, err := s.startDemo()
	if err != nil {
		return err
	}
	if demo != nil {
		defer demo.Close()
	}

	ifname := resolveInterface(opts.iface)
	link, err := sockfilter.InterfaceLinkType(ifname)
	if err != nil {
		return err
	}
	warn := func(msg string) { fmt.Fprintf(s.stderr, "lo-capture: warning: %s\n", msg) }
	cfg, err := listenConfig(opts, ifname, warn)
	if err != nil {
		return err
	}
	insns, prog, err := compile(opts, link, s.stderr)
	if err != nil {
		return err
	}
	conn, err := sockfilter.Listen(ifname, prog, cfg)
	prog.Close() // the socket holds its own reference
	if err != nil {
		return err
	}
	defer conn.Close()

	out, done, err := s.startOutputs(conn.LinkType(), nil)
	if err != nil {
		return err
	}
	defer done(&err)

	fmt.Fprintf(s.stderr, "listening on %s, link-type %s (%s), snapshot length %d bytes, filter %q, %d instructions\n",
		ifname, conn.LinkType(), conn.LinkType().Description(), snaplenOf(opts), opts.expr, insns.Slots())

	ctx := s.ctx
	if demo != nil {
		var cancel context.CancelFunc
		ctx, cancel = s.runDemo(ctx, demo)
		defer cancel()
	}
	// Wake the reader as soon as the context ends.
	stopWake := context.AfterFunc(ctx, func() { conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stopWake()

	var records atomic.Int64
	s.sig.onInfo(func() { s.printCounts(conn, int(records.Load()), false) })
	defer s.sig.onInfo(nil)
	stopGot := s.reportGot(&records)
	err = s.readLoop(ctx, conn, out, &records)
	stopGot()
	if errors.Is(err, errFileLimit) {
		fmt.Fprintf(s.stderr, "Maximum file limit reached: %d\n", opts.fileCount)
		err = nil
	}
	if err != nil {
		return err
	}
	// The file and the records first, the counts after them.
	if err := s.closeOutputs(out); err != nil {
		return err
	}
	return s.printCounts(conn, int(records.Load()), true)
}

// startDemo makes -demo's traffic, not started yet, and makes its filter
// the capture's unless one was given; it returns nil without -demo.
func (s *session) startDemo() (*demoTraffic, error) {
	if !s.opts.demo {
		return nil, nil
	}
	demo, err := newDemoTraffic()
	if err != nil {
		return nil, err
	}
	if !s.opts.exprFlag && !s.opts.exprArgsSet && s.opts.filterFile == "" {
		s.opts.expr = demo.filter()
	}
	return demo, nil
}

// runDemo starts the demo's traffic and returns a context that ends with
// ctx or a moment after the traffic is sent.
func (s *session) runDemo(ctx context.Context, demo *demoTraffic) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	demo.Start(ctx, s.stderr)
	go func() {
		select {
		case <-demo.Done():
			time.Sleep(demoGrace)
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// reportGot prints, for -v with -w and without --print, the records
// written so far every second, as tcpdump -v -w does: "Got N" and a
// carriage return, so that on a terminal each report, and then the
// counts, overwrite the one before. The function it returns stops the
// reports.
func (s *session) reportGot(records *atomic.Int64) (stop func()) {
	if s.opts.verbose == 0 || s.opts.write == "" || s.opts.print {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				fmt.Fprintf(s.stderr, "Got %d\r", records.Load())
			case <-done:
				return
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

// startOutputs opens the outputs for frames of link (in is the file -r
// reads, which -w must not overwrite, or nil) and then drops privileges
// for -Z. done, deferred with the run's error, closes them if the run did
// not (closeOutputs), keeping the run's error first.
func (s *session) startOutputs(link packet.LinkType, in os.FileInfo) (out *outputs, done func(*error), err error) {
	out, err = openOutputs(s.ctx, s.sig.ctx.Done(), s.sig.hard, s.opts, link, in, s.std)
	if err != nil {
		return nil, nil, err
	}
	done = func(errp *error) {
		if out.closed {
			return
		}
		if _, cerr := out.Close(s.sig.ctx.Done(), s.sig.hard); *errp == nil {
			*errp = cerr
		}
	}
	if err := s.relinquish(out); err != nil {
		done(&err)
		return nil, nil, err
	}
	return out, done, nil
}

// closeOutputs closes the outputs at the end of a run, saying so when
// standard output was given up on.
func (s *session) closeOutputs(out *outputs) error {
	warn, err := out.Close(s.sig.ctx.Done(), s.sig.hard)
	if warn != "" {
		fmt.Fprintf(s.stderr, "lo-capture: warning: %s\n", warn)
	}
	return err
}

// relinquish drops root for -Z, once the socket and the first -w file are
// open: the file is given to the user first, as tcpdump creates it as the
// user it runs as.
func (s *session) relinquish(out *outputs) error {
	if s.opts.user == "" {
		return nil
	}
	uid, gid, groups, err := lookupUser(s.opts.user)
	if err != nil {
		return err
	}
	if out.save != nil && os.Geteuid() == 0 && uid != 0 {
		if err := out.save.chown(uid, gid); err != nil {
			return err
		}
	}
	return dropPrivileges(s.opts.user, uid, gid, groups)
}

// printCounts prints the counts to standard error: at the end (final),
// tcpdump's three lines and lo-capture's own line; for SIGUSR1, tcpdump's
// one-line form and lo-capture's line. "Captured" counts the records
// written; "received by filter" the frames the filter accepted, dropped
// ones included, as libpcap counts them from the kernel's tp_packets.
func (s *session) printCounts(conn *sockfilter.Conn, records int, final bool) error {
	stats, err := conn.Stats()
	if err != nil {
		return err
	}
	received := stats.Received + stats.Drops
	if final {
		fmt.Fprintf(s.stderr, "%d %s captured\n%d %s received by filter\n%d %s dropped by kernel\n",
			records, plural(uint64(records)), received, plural(received), stats.Drops, plural(stats.Drops))
	} else {
		fmt.Fprintf(s.stderr, "lo-capture: %d %s captured, %d %s received by filter, %d %s dropped by kernel\n",
			records, plural(uint64(records)), received, plural(received), stats.Drops, plural(stats.Drops))
	}
	fmt.Fprintf(s.stderr, "%d records, %d frames received by filter, %d dropped by kernel\n",
		records, received, stats.Drops)
	return nil
}

func plural(n uint64) string {
	if n == 1 {
		return "packet"
	}
	return "packets"
}

// readBatch is how many frames readLoop takes from the ring at a time.
const readBatch = 64

// readLoop reads and writes records until -c's count, the context's end,
// or an error, counting them in written.
func (s *session) readLoop(ctx context.Context, conn *sockfilter.Conn, out *outputs, written *atomic.Int64) error {
	count := s.opts.count
	records := 0
	defer func() { written.Store(int64(records)) }()
	if err := conn.SetReadDeadline(time.Now().Add(flushEvery)); err != nil {
		return err
	}
	var (
		frames [readBatch][]byte
		infos  [readBatch]packet.Info
	)
	for count == 0 || records < count {
		// The frames are read in place, in the Conn's ring: they stay
		// valid until the next read, by which time they have been written
		// out.
		n, err := conn.NextFrames(frames[:], infos[:])
		if err != nil {
			if end, err := idleRead(ctx, err, out, conn.SetReadDeadline); end {
				return err
			}
			continue
		}
		if count > 0 {
			n = min(n, count-records)
		}
		for i := range n {
			if err := out.Write(frames[i], &infos[i]); err != nil {
				if err = stopped(err); err == nil {
					// A signal ended the wait for standard output to
					// take the record; the frame is in the -w file, and
					// its record queued.
					records++
				}
				return err
			}
			records++
		}
		written.Store(int64(records))
	}
	return nil
}

// stopped turns the error of a write that a signal or the timeout
// interrupted, while it waited for a stuck standard output, into a clean
// stop.
func stopped(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return nil
	}
	return err
}

// idleRead handles the error err of a read: a read deadline that passed
// (the capture is idle) is the time to flush out and set the next one,
// flushEvery on; anything else, or ctx done, ends the capture, with the
// error to return (nil for ctx), reported as end.
func idleRead(ctx context.Context, err error, out interface{ Flush() error }, setDeadline func(time.Time) error) (end bool, _ error) {
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		return true, err
	}
	if ctx.Err() != nil {
		return true, nil
	}
	if err := out.Flush(); err != nil {
		return true, stopped(err)
	}
	if err := setDeadline(time.Now().Add(flushEvery)); err != nil {
		return true, err
	}
	if ctx.Err() != nil { // it ended after the check above: its wake-up was overwritten
		return true, nil
	}
	return false, nil
}
