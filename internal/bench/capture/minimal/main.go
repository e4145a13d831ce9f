// Command minimal is the least a capturer built on purebpf does to save
// frames to a pcap file: compile the filter, listen with the default
// TPACKET_V3 ring, and write each frame NextFrames returns, in place,
// through a buffered PcapWriter. The capture benchmark (../capture.sh) runs
// it next to lo-capture and tcpdump as the floor a ring-backed capturer can
// reach. It takes lo-capture's flags and prints lo-capture's start and exit
// lines, so the script can drive either.
//
//	minimal -i lo -f 'udp dst port 40000' -w /dev/null
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
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/purebpf/purebpf/sockfilter"
	"github.com/purebpf/purebpf/sockfilter/packet"
	"github.com/purebpf/purebpf/sockfilter/pcapfile"
	"github.com/purebpf/purebpf/sockfilter/pcapfilter"
)

func main() {
	iface := flag.String("i", "lo", "interface to capture on")
	expr := flag.String("f", "", "pcap-filter expression (required)")
	write := flag.String("w", "", "pcap file to write (required)")
	flag.Parse()
	if flag.NArg() != 0 || *expr == "" || *write == "" {
		fmt.Fprintln(os.Stderr, "usage: minimal [-i IFACE] -f EXPR -w FILE")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := capture(ctx, *iface, *expr, *write); err != nil {
		fmt.Fprintf(os.Stderr, "minimal: %v\n", err)
		os.Exit(1)
	}
}

func capture(ctx context.Context, iface, expr, write string) (err error) {
	link, err := sockfilter.InterfaceLinkType(iface)
	if err != nil {
		return err
	}
	insns, err := pcapfilter.Compile(expr, link)
	if err != nil {
		return fmt.Errorf("filter %q: %w", expr, err)
	}
	prog, err := sockfilter.Load(insns, nil)
	if err != nil {
		return err
	}
	conn, err := sockfilter.Listen(iface, prog, nil)
	prog.Close()
	if err != nil {
		return err
	}
	defer conn.Close()

	f, err := os.Create(write)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<20)
	pw, err := pcapfile.NewWriter(bw, link, pcapfile.DefaultSnaplen)
	if err != nil {
		return err
	}
	ring, why := conn.Ring()
	backing := "TPACKET_V3 ring"
	if !ring {
		backing = fmt.Sprintf("recvmsg (no ring: %v)", why)
	}
	fmt.Fprintf(os.Stderr, "listening on %s, link-type %s, filter %q, %s\n", iface, link, expr, backing)

	// The context's end wakes the reader through the read deadline.
	stopWake := context.AfterFunc(ctx, func() { conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stopWake()
	records := 0
	var (
		frames [64][]byte
		infos  [64]packet.Info
	)
	for {
		n, err := conn.NextFrames(frames[:], infos[:])
		if errors.Is(err, os.ErrDeadlineExceeded) && ctx.Err() != nil {
			break
		}
		if err != nil {
			return err
		}
		for i, frame := range frames[:n] {
			if err := pw.WritePacket(frame, &infos[i]); err != nil {
				return err
			}
		}
		records += n
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	st, err := conn.Stats()
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "%d records, %d frames received by filter, %d dropped by kernel\n",
		records, st.Received+st.Drops, st.Drops)
	return nil
}
