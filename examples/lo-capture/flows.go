package main

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/purebpf/purebpf/sockfilter"
	"github.com/purebpf/purebpf/sockfilter/flow"
	"github.com/purebpf/purebpf/sockfilter/ipfix"
)

// readFlowsEvery is how often the flow table is read for expiry: the
// FlowConn asks for about every second, so that a flow the LRU evicts
// loses little.
const readFlowsEvery = time.Second

// flowConfig returns the FlowConfig of -flows and -ipfix.
func flowConfig(opts *options, ifname string, warn func(string)) (*sockfilter.FlowConfig, error) {
	cfg, err := listenConfig(opts, ifname, warn)
	if err != nil {
		return nil, err
	}
	if opts.bufferKiB > 0 {
		warn("-B sizes the packet ring, which -flows and -ipfix do not use; ignored")
	}
	return &sockfilter.FlowConfig{
		Direction:        cfg.Direction,
		LoopbackOutgoing: cfg.LoopbackOutgoing,
		Promiscuous:      cfg.Promiscuous,
		PerCPU:           opts.perCPU,
		ActiveTimeout:    opts.flowActive,
		IdleTimeout:      opts.flowIdle,
	}, nil
}

// flowSession is a -flows or -ipfix capture in progress.
type flowSession struct {
	*session
	fc      *sockfilter.FlowConn
	acc     *flowAccount    // nil without -flows
	view    *flowView       // nil without -flows
	exp     *ipfix.Exporter // nil without -ipfix
	udp     net.Conn
	buf     []flow.Flow
	entries []sockfilter.FlowEntry
	warned  bool       // of an export error
	mu      sync.Mutex // SIGUSR1's counts against the loop's readings
}

// captureFlows counts flows in the kernel (-flows, -ipfix) until a signal,
// -timeout, -c's number of intervals, or an error: the socket filter
// counts each frame the filter accepts in its flow's entry of a BPF hash
// map, and copies no frame. The table is read every second; expired
// flows go to -ipfix's collector, and every -flows interval the flows of
// the interval are printed. At the end every flow is flushed, exported,
// and the totals printed.
func (s *session) captureFlows() (err error) {
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
	cfg, err := flowConfig(opts, ifname, warn)
	if err != nil {
		return err
	}
	insns, err := compileFilter(opts, link)
	if err != nil {
		return err
	}
	fs := &flowSession{session: s}
	if opts.ipfix != "" {
		// Before the socket, so that a bad address is the only thing said.
		if fs.udp, err = net.Dial("udp", opts.ipfix); err != nil {
			return fmt.Errorf("-ipfix: %w", err)
		}
		defer fs.udp.Close()
	}
	if fs.fc, err = sockfilter.ListenFlows(ifname, insns, cfg); err != nil {
		return err
	}
	defer fs.fc.Close()
	if fs.udp != nil {
		// RFC 7011 §3.1: the Observation Domain tells this exporter's
		// interfaces apart at the collector; the interface's index does.
		fs.exp, err = ipfix.NewExporter(fs.udp, &ipfix.Config{ObservationDomain: uint32(fs.fc.Ifindex()), Datagram: true})
		if err != nil {
			return err
		}
	}
	if opts.flows > 0 {
		fs.acc = newFlowAccount(fs.fc.Now())
		fs.view = &flowView{w: s.std.out(), json: opts.json, iface: ifname}
		fs.view.tty, fs.view.size = terminal(s.std.stdout)
		if fs.view.tty && opts.json {
			fs.view.tty = false
		}
	}
	what := "flows counted in the kernel"
	if opts.flows > 0 {
		what += fmt.Sprintf(", reported every %v", opts.flows)
	}
	if opts.ipfix != "" {
		what += ", exported as IPFIX to " + opts.ipfix
	}
	fmt.Fprintf(s.stderr, "listening on %s, link-type %s (%s), %s, filter %q, %d instructions\n",
		ifname, link, link.Description(), what, opts.expr, insns.Slots())

	ctx := s.ctx
	if demo != nil {
		var cancel context.CancelFunc
		ctx, cancel = s.runDemo(ctx, demo)
		defer cancel()
	}
	s.sig.onInfo(func() {
		fs.mu.Lock()
		defer fs.mu.Unlock()
		fs.printCounts(false)
	})
	defer s.sig.onInfo(nil)
	if err := fs.loop(ctx); err != nil {
		return err
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.printCounts(true)
}

// loop reads the table until the context ends or -c's intervals are
// reported, then flushes it.
func (fs *flowSession) loop(ctx context.Context) error {
	read := time.NewTicker(min(readFlowsEvery, max(fs.opts.flows, readFlowsEvery/10)))
	defer read.Stop()
	var report <-chan time.Time
	if fs.opts.flows > 0 {
		t := time.NewTicker(fs.opts.flows)
		defer t.Stop()
		report = t.C
	}
	intervals := 0
	for {
		select {
		case <-ctx.Done():
			return fs.finish()
		case <-read.C:
			if err := fs.read(); err != nil {
				return err
			}
		case <-report:
			if err := fs.read(); err != nil {
				return err
			}
			if err := fs.report(); err != nil {
				return err
			}
			if intervals++; fs.opts.count > 0 && intervals >= fs.opts.count {
				return fs.finish()
			}
		}
	}
}

// read reads the table once, exporting the records that are due.
func (fs *flowSession) read() error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	var err error
	if fs.buf, err = fs.fc.ReadFlows(fs.buf[:0]); err != nil {
		return err
	}
	return fs.take(fs.buf)
}

// take gives records to the account and the exporter.
func (fs *flowSession) take(flows []flow.Flow) error {
	if fs.acc != nil {
		fs.acc.records(flows)
	}
	if fs.exp == nil || len(flows) == 0 {
		return nil
	}
	for i := range flows {
		if err := fs.exp.Add(&flows[i]); err != nil {
			fs.exportError(err)
		}
	}
	if err := fs.exp.Flush(); err != nil {
		fs.exportError(err)
	}
	return nil
}

// exportError warns of the first failed export: over UDP a lost message
// loses its records, not the export (the collector sees the gap in the
// sequence numbers), so the capture goes on. The end counts them all.
func (fs *flowSession) exportError(err error) {
	if fs.warned {
		return
	}
	fs.warned = true
	fmt.Fprintf(fs.stderr, "lo-capture: warning: IPFIX export to %s: %v (going on; the counts at the end say how many messages were lost)\n", fs.opts.ipfix, err)
}

// report ends the interval and prints its flows.
func (fs *flowSession) report() error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	var err error
	if fs.entries, err = fs.fc.Table(fs.entries[:0]); err != nil {
		return err
	}
	fs.acc.live(fs.entries)
	return fs.show(fs.acc.endInterval(fs.fc.Now()))
}

func (fs *flowSession) show(rep *flowReport) error {
	if err := fs.view.show(rep); err != nil {
		return stopped(&errOutput{err})
	}
	return nil
}

// finish flushes the table — every flow ends, and is exported — and
// prints the last interval, if it saw packets, and the totals.
func (fs *flowSession) finish() error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	var err error
	if fs.buf, err = fs.fc.Flush(fs.buf[:0]); err != nil {
		return err
	}
	if err := fs.take(fs.buf); err != nil {
		return err
	}
	if fs.acc == nil {
		return nil
	}
	fs.acc.flushed()
	now := fs.fc.Now()
	if rep := fs.acc.endInterval(now); len(rep.Rows) > 0 {
		if err := fs.show(rep); err != nil {
			return err
		}
	}
	return fs.show(fs.acc.totals(now))
}

// printCounts prints the flow table's counts to standard error, and the
// exporter's: every packet the filter accepted is in exactly one of the
// flow records, the flows the LRU evicted, or the packets the table had
// no room for. The last line is a capture's, for scripts that read it
// (internal/bench/capture): "records" are the packets in flow records.
func (fs *flowSession) printCounts(final bool) error {
	st, err := fs.fc.Stats()
	if err != nil {
		return err
	}
	prefix := ""
	if !final {
		prefix = "lo-capture: "
	}
	fmt.Fprintf(fs.stderr, "%s%d %s counted in %d flow records, %d %s received by filter, %d lost with %d evicted flows, %d not counted (table full)\n",
		prefix, st.ExportedPackets, plural(st.ExportedPackets), st.Flows, st.Packets, plural(st.Packets),
		st.EvictedPackets, st.Evicted, st.Failed)
	if fs.exp != nil {
		es := fs.exp.Stats()
		fmt.Fprintf(fs.stderr, "%s%d IPFIX %s (%d with templates) holding %d flow records sent to %s, %d failed\n",
			prefix, es.Messages, pluralWord(int(min(es.Messages, 2)), "message", "messages"), es.TemplateSets, es.Records, fs.opts.ipfix, es.Errors)
	}
	fmt.Fprintf(fs.stderr, "%d records, %d frames received by filter, %d dropped by kernel\n",
		st.ExportedPackets, st.Packets, st.EvictedPackets+st.Failed)
	return nil
}
