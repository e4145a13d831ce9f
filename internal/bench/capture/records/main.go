// Command records is the least a capturer in records does: compile the
// filter, listen with sockfilter.ListenRecords — the kernel parses each
// frame the filter accepts and writes its record to a BPF ring buffer, and
// copies no frame — and read the records with NextRecords in batches. With
// -o it writes each record's line of lo-capture's table to FILE, through a
// packet.TextEncoder and a buffered writer; without, it only reads them.
// The capture benchmark (../capture.sh) runs it as the record mode, beside
// lo-capture -k (lo-capture-k): the floor of a capture in records. It takes lo-capture's flags and prints lo-capture's
// start and exit lines, so the script can drive either: the exit line
// counts the records read, the frames the filter accepted (records read
// and lost) and the records lost because the ring buffer was full.
//
//	records -i lo -f 'udp dst port 40000' [-o FILE] [-perf] [-ring BYTES] [-watermark BYTES] [-timeout D]
//
// SIGINT or SIGTERM ends the capture. It exits 1 on errors and 2 on usage
// errors.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/purebpf/purebpf/sockfilter"
	"github.com/purebpf/purebpf/sockfilter/packet"
	"github.com/purebpf/purebpf/sockfilter/pcapfilter"
)

func main() {
	iface := flag.String("i", "lo", "interface to capture on")
	expr := flag.String("f", "", "pcap-filter expression (required)")
	out := flag.String("o", "", "write each record's line to `FILE`")
	perf := flag.Bool("perf", false, "use perf event buffers instead of a ring buffer")
	var cfg sockfilter.RecordConfig
	flag.IntVar(&cfg.RingSize, "ring", 0, "ring buffer size in `bytes` (0: the default)")
	flag.IntVar(&cfg.Watermark, "watermark", 0, "`bytes` waiting that wake the reader (0: a quarter of the ring; -1: every record)")
	flag.DurationVar(&cfg.Timeout, "timeout", 0, "the longest a record waits to be read (0: the default)")
	flag.Parse()
	cfg.Perf = *perf
	if flag.NArg() != 0 || *expr == "" {
		fmt.Fprintln(os.Stderr, "usage: records [-i IFACE] -f EXPR [-o FILE] [-perf] [-ring BYTES] [-watermark BYTES] [-timeout D]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := capture(ctx, *iface, *expr, *out, &cfg); err != nil {
		fmt.Fprintf(os.Stderr, "records: %v\n", err)
		os.Exit(1)
	}
}

func capture(ctx context.Context, iface, expr, out string, cfg *sockfilter.RecordConfig) (err error) {
	link, err := sockfilter.InterfaceLinkType(iface)
	if err != nil {
		return err
	}
	insns, err := pcapfilter.Compile(expr, link)
	if err != nil {
		return fmt.Errorf("filter %q: %w", expr, err)
	}
	rc, err := sockfilter.ListenRecords(iface, insns, cfg)
	if err != nil {
		return err
	}
	defer rc.Close()
	var w *bufio.Writer
	if out != "" {
		f, err := os.Create(out)
		if err != nil {
			return err
		}
		defer func() {
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}()
		w = bufio.NewWriterSize(f, 1<<20)
	}
	backing := "ring buffer"
	if rc.PerfBuffers() {
		backing = "perf buffers"
	}
	fmt.Fprintf(os.Stderr, "listening on %s, link-type %s, filter %q, records in the kernel through a %s, clock %v\n", iface, link, expr, backing, rc.Clock())

	stopWake := context.AfterFunc(ctx, func() { rc.SetReadDeadline(time.Unix(1, 0)) })
	defer stopWake()
	if err := read(ctx, rc, w); err != nil {
		return err
	}
	st, err := rc.Stats()
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "%d records, %d frames received by filter, %d dropped by kernel\n",
		st.Records, st.Records+st.Lost, st.Lost)
	return nil
}

// read reads records until ctx ends, writing their lines to w if not nil.
func read(ctx context.Context, rc *sockfilter.RecordConn, w *bufio.Writer) error {
	var (
		recs [64]packet.Record
		enc  packet.TextEncoder
		line []byte
		sum  int
	)
	for {
		n, err := rc.NextRecords(recs[:], nil)
		if errors.Is(err, os.ErrDeadlineExceeded) && ctx.Err() != nil {
			break
		}
		if err != nil {
			return err
		}
		for i := range recs[:n] {
			if w == nil {
				sum += recs[i].Length // touch each record
				continue
			}
			line = enc.Append(line[:0], &recs[i])
			w.Write(line)
		}
	}
	if w != nil {
		return w.Flush()
	}
	fmt.Fprintln(io.Discard, sum)
	return nil
}
