package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/purebpf/purebpf/sockfilter"
	"github.com/purebpf/purebpf/sockfilter/packet"
	"github.com/purebpf/purebpf/sockfilter/pcapfile"
	"github.com/purebpf/purebpf/sockfilter/pcapfilter"
)

// readFile prints the records of the frames in the pcap file opts.read that
// pass the filter. Each frame goes through the same eBPF program a live
// capture would attach, run by the kernel (Program.Test), so the offline
// verdicts are the live ones; records carry the file's timestamps.
func readFile(ctx context.Context, opts options, stdout, stderr io.Writer) (err error) {
	f, err := os.Open(opts.read)
	if err != nil {
		return err
	}
	defer f.Close()
	pr, err := pcapfile.NewReader(bufio.NewReaderSize(f, 1<<20))
	if err != nil {
		return fmt.Errorf("read %s: %w", opts.read, err)
	}
	link := pr.LinkType()
	insns, prog, err := compile(opts, link, stderr)
	if err != nil {
		return err
	}
	defer prog.Close()

	out, err := openOutputs(opts, stdout, link)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}()

	fmt.Fprintf(stderr, "reading from file %s, link-type %s (%s), filter %q, %d instructions\n",
		opts.read, link, link.Description(), opts.expr, insns.Slots())

	var (
		buf  []byte
		info packet.Info
	)
	frames, records, untested := 0, 0, 0
	for opts.count == 0 || records < opts.count {
		if ctx.Err() != nil {
			break
		}
		buf, err = pr.ReadPacket(buf, &info)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", opts.read, err)
		}
		frames++
		verdict, err := prog.Test(buf, link)
		if err != nil {
			// The kernel's test run refuses frames too short to hold
			// their network header; a live socket would see them, so
			// they are counted, not fatal.
			untested++
			continue
		}
		if verdict == 0 {
			continue
		}
		frame := buf
		if uint64(len(frame)) > uint64(verdict) {
			frame = frame[:verdict]
		}
		if err := out.Write(frame, &info); err != nil {
			return err
		}
		records++
	}
	if err := out.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "%d records, %d frames read from file", records, frames)
	if untested > 0 {
		fmt.Fprintf(stderr, ", %d too short for the kernel's test run (skipped)", untested)
	}
	fmt.Fprintln(stderr)
	return nil
}

// dumpProgram prints the program opts.expr compiles to, one instruction
// per line in the kernel's syntax, numbered like tcpdump -d.
func dumpProgram(opts options, stdout io.Writer) error {
	link := packet.LinkEthernet
	if opts.read != "" {
		f, err := os.Open(opts.read)
		if err != nil {
			return err
		}
		pr, err := pcapfile.NewReader(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("read %s: %w", opts.read, err)
		}
		link = pr.LinkType()
	} else {
		var err error
		if link, err = sockfilter.InterfaceLinkType(opts.iface); err != nil {
			return err
		}
	}
	insns, err := pcapfilter.Compile(opts.expr, link)
	if err != nil {
		return fmt.Errorf("filter %q: %w", opts.expr, err)
	}
	resolved, err := insns.Resolve()
	if err != nil {
		return err
	}
	w := bufio.NewWriter(stdout)
	slot := 0
	for _, ins := range resolved {
		ins.Target = "" // print the kernel's pc-relative offsets
		fmt.Fprintf(w, "(%03d) %v\n", slot, ins)
		slot += ins.Slots()
	}
	return w.Flush()
}
