package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/purebpf/purebpf/asm"
	"github.com/purebpf/purebpf/sockfilter"
	"github.com/purebpf/purebpf/sockfilter/packet"
	"github.com/purebpf/purebpf/sockfilter/pcapfilter"
)

// flushEvery bounds how long a record may wait in the output buffer while
// the capture is idle.
const flushEvery = 100 * time.Millisecond

// compile compiles opts.expr for link and loads it.
func compile(opts options, link packet.LinkType, stderr io.Writer) (asm.Instructions, *sockfilter.Program, error) {
	insns, err := pcapfilter.Compile(opts.expr, link)
	if err != nil {
		return nil, nil, err // a *pcapfilter.Error quotes the expression and gives the column
	}
	lo := &sockfilter.LoadOptions{Name: "lo_capture"}
	if opts.verbose {
		lo.LogLevel = sockfilter.LogLevelBranch | sockfilter.LogLevelStats
	}
	prog, err := sockfilter.Load(insns, lo)
	if err != nil {
		return nil, nil, err
	}
	if opts.verbose {
		log, truncated := prog.VerifierLog()
		fmt.Fprintf(stderr, "verifier log:\n%s", log)
		if truncated {
			fmt.Fprintln(stderr, "(verifier log truncated)")
		}
	}
	return insns, prog, nil
}

// capture runs a live capture until opts.count records, the context ends,
// or an error.
func capture(ctx context.Context, opts options, stdout, stderr io.Writer) (err error) {
	var demo *demoTraffic
	if opts.demo {
		if demo, err = newDemoTraffic(); err != nil {
			return err
		}
		defer demo.Close()
		if !opts.exprSet {
			opts.expr = demo.filter()
		}
	}

	link, err := sockfilter.InterfaceLinkType(opts.iface)
	if err != nil {
		return err
	}
	insns, prog, err := compile(opts, link, stderr)
	if err != nil {
		return err
	}
	conn, err := sockfilter.Listen(opts.iface, prog, &sockfilter.Config{LoopbackOutgoing: opts.both})
	prog.Close() // the socket holds its own reference
	if err != nil {
		return err
	}
	defer conn.Close()

	out, err := openOutputs(opts, stdout, conn.LinkType())
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}()

	fmt.Fprintf(stderr, "listening on %s, link-type %s (%s), filter %q, %d instructions\n",
		opts.iface, conn.LinkType(), conn.LinkType().Description(), opts.expr, insns.Slots())

	if demo != nil {
		// The demo's capture ends a moment after its traffic is sent.
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		demo.Start(ctx, stderr)
		go func() {
			select {
			case <-demo.Done():
				time.Sleep(demoGrace)
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	// Wake the reader as soon as the context ends.
	stopWake := context.AfterFunc(ctx, func() { conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stopWake()

	records, err := readLoop(ctx, conn, opts, out)
	if err != nil {
		return err
	}
	if err := out.Flush(); err != nil {
		return err
	}
	stats, err := conn.Stats()
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "%d records, %d frames received by filter, %d dropped by kernel\n",
		records, stats.Received+stats.Drops, stats.Drops)
	return nil
}

// readBatch is how many frames readLoop takes from the ring at a time.
const readBatch = 64

// readLoop reads and prints records until opts.count, the context's end,
// or an error; it returns the number of records printed.
func readLoop(ctx context.Context, conn *sockfilter.Conn, opts options, out *outputs) (int, error) {
	records := 0
	if err := conn.SetReadDeadline(time.Now().Add(flushEvery)); err != nil {
		return 0, err
	}
	var (
		frames [readBatch][]byte
		infos  [readBatch]packet.Info
	)
	for opts.count == 0 || records < opts.count {
		// The frames are read in place, in the Conn's ring: they stay
		// valid until the next read, by which time they have been written
		// out.
		n, err := conn.NextFrames(frames[:], infos[:])
		if err != nil {
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				return records, err
			}
			if ctx.Err() != nil {
				return records, nil
			}
			if err := out.records.Flush(); err != nil {
				return records, err
			}
			if err := conn.SetReadDeadline(time.Now().Add(flushEvery)); err != nil {
				return records, err
			}
			if ctx.Err() != nil { // it ended after the check above: its wake-up was overwritten
				return records, nil
			}
			continue
		}
		if opts.count > 0 {
			n = min(n, opts.count-records)
		}
		for i := range n {
			if err := out.Write(frames[i], &infos[i]); err != nil {
				return records, err
			}
			records++
		}
	}
	return records, nil
}
