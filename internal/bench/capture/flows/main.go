// Command flows is the least a flow meter in the kernel does: compile the
// filter, listen with sockfilter.ListenFlows — the kernel parses each
// frame the filter accepts and counts it in its flow's entry of a BPF LRU
// hash map, and copies no frame — read the table every second with
// ReadFlows, and at the end Flush it. The capture benchmark (../capture.sh)
// runs it as the flow mode, beside lo-capture -flows (lo-capture-flows):
// the floor of a flow meter on purebpf. It takes
// lo-capture's -i and -f and prints lo-capture's start and exit lines, so
// the script can drive either: the exit line counts the packets in the
// flow records, the packets the filter accepted (the kernel's total) and
// those lost with flows the LRU evicted. With -o it writes each record's
// key and counts to FILE.
//
//	flows -i lo -f 'udp dst port 40000' [-percpu] [-o FILE]
//
// SIGINT or SIGTERM ends the capture. It exits 1 on errors and 2 on usage
// errors.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/purebpf/purebpf/sockfilter"
	"github.com/purebpf/purebpf/sockfilter/flow"
	"github.com/purebpf/purebpf/sockfilter/pcapfilter"
)

func main() {
	iface := flag.String("i", "lo", "interface to capture on")
	expr := flag.String("f", "", "pcap-filter expression (required)")
	perCPU := flag.Bool("percpu", false, "keep the table per CPU (BPF_MAP_TYPE_LRU_PERCPU_HASH)")
	out := flag.String("o", "", "write each flow record to `FILE`")
	flag.Parse()
	if flag.NArg() != 0 || *expr == "" {
		fmt.Fprintln(os.Stderr, "usage: flows [-i IFACE] -f EXPR [-percpu] [-o FILE]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := meter(ctx, *iface, *expr, *perCPU, *out); err != nil {
		fmt.Fprintf(os.Stderr, "flows: %v\n", err)
		os.Exit(1)
	}
}

func meter(ctx context.Context, iface, expr string, perCPU bool, out string) (err error) {
	link, err := sockfilter.InterfaceLinkType(iface)
	if err != nil {
		return err
	}
	insns, err := pcapfilter.Compile(expr, link)
	if err != nil {
		return fmt.Errorf("filter %q: %w", expr, err)
	}
	fc, err := sockfilter.ListenFlows(iface, insns, &sockfilter.FlowConfig{PerCPU: perCPU})
	if err != nil {
		return err
	}
	defer fc.Close()
	w := bufio.NewWriter(discard{})
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
		w = bufio.NewWriter(f)
	}
	fmt.Fprintf(os.Stderr, "listening on %s, link-type %s, filter %q, flows in the kernel (per-CPU table: %v), clock %v\n", iface, link, expr, perCPU, fc.Clock())

	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var flows []flow.Flow
	for done := false; !done; {
		select {
		case <-ctx.Done():
			flows, err = fc.Flush(flows[:0])
			done = true
		case <-tick.C:
			flows, err = fc.ReadFlows(flows[:0])
		}
		if err != nil {
			return err
		}
		write(w, flows)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	st, err := fc.Stats()
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "%d records, %d frames received by filter, %d dropped by kernel\n",
		st.ExportedPackets, st.Packets, st.EvictedPackets+st.Failed)
	return nil
}

func write(w *bufio.Writer, flows []flow.Flow) {
	var b []byte
	for i := range flows {
		f := &flows[i]
		b = f.Key.AppendTo(b[:0])
		b = append(b, ' ')
		b = strconv.AppendUint(b, f.Packets, 10)
		b = append(b, ' ')
		b = strconv.AppendUint(b, f.Bytes, 10)
		b = append(b, ' ')
		b = append(b, f.EndReason.String()...)
		b = append(b, '\n')
		w.Write(b)
	}
}

type discard struct{}

func (discard) Write(b []byte) (int, error) { return len(b), nil }
