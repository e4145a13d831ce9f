package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"

	"github.com/purebpf/purebpf/sockfilter/packet"
	"github.com/purebpf/purebpf/sockfilter/pcapfile"
	"github.com/purebpf/purebpf/sockfilter/vm"
)

// input is the pcap file -r reads: a file, or standard input for "-".
type input struct {
	name string
	f    *os.File // nil for standard input
	fi   os.FileInfo
	pr   *pcapfile.Reader
}

// openInput opens the pcap file name ("-": standard input) and reads its
// header.
func openInput(name string) (*input, error) {
	return openInputFrom(name, os.Stdin)
}

func openInputFrom(name string, stdin io.Reader) (*input, error) {
	in := &input{name: name}
	r := stdin
	if name == "-" {
		in.name = "standard input"
		if f, ok := stdin.(*os.File); ok {
			in.fi, _ = f.Stat()
		}
	} else {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		in.f, r = f, f
		if in.fi, err = f.Stat(); err != nil {
			f.Close()
			return nil, err
		}
	}
	pr, err := pcapfile.NewReader(bufio.NewReaderSize(r, 1<<20))
	if err != nil {
		in.Close()
		return nil, fmt.Errorf("read %s: %w", in.name, err)
	}
	in.pr = pr
	return in, nil
}

// Close closes the file.
func (in *input) Close() error {
	if in.f == nil {
		return nil
	}
	return in.f.Close()
}

// readFile prints the records of the frames in -r's capture file (pcap
// or pcapng) that pass the filter, and writes them to -w's file. Each
// frame goes through the eBPF program a live capture would attach, run in
// pure Go by sockfilter/vm as a live packet socket runs it (RunFrameInfo,
// with what the file says of the frame: its length on the wire and, in
// pcapng, its direction), so reading needs no privileges, and a frame of
// any length is filtered; it is cut to the program's return value, as -s
// cuts it live. Records carry the file's time stamps. With
// --verifier-log the program is also loaded into the kernel, for its log.
func (s *session) readFile() (err error) {
	opts := s.opts
	in, err := openInputFrom(opts.read, s.std.stdin)
	if err != nil {
		return err
	}
	defer in.Close()
	link := in.pr.LinkType()
	insns, err := compileFileFilter(opts, link)
	if err != nil {
		return err
	}
	if opts.verifierLog {
		prog, err := loadFilter(opts, insns, s.stderr)
		if err != nil {
			return err
		}
		prog.Close()
	}
	filter, err := vm.New(insns, nil)
	if err != nil {
		return fmt.Errorf("filter %q: %w", opts.expr, err)
	}

	out, done, err := s.startOutputs(link, in.fi)
	if err != nil {
		return err
	}
	defer done(&err)

	fmt.Fprintf(s.stderr, "reading from file %s, link-type %s (%s), snapshot length %d, filter %q, %d instructions\n",
		in.name, link, link.Description(), in.pr.Snaplen(), opts.expr, insns.Slots())

	records, frames, err := s.filterFile(in, filter, out)
	if err != nil {
		return err
	}
	if err := s.closeOutputs(out); err != nil {
		return err
	}
	if opts.countOnly {
		// tcpdump --count's line, on standard output.
		if _, err := fmt.Fprintf(s.std.out(), "%d packets\n", records); err != nil {
			return &errOutput{err}
		}
	}
	fmt.Fprintf(s.stderr, "%d records, %d frames read from file\n", records, frames)
	return nil
}

// filterFile runs the filter over the frames of in and writes those it
// passes to out, until the end of the file, -c's count or a signal; it
// returns the records written and the frames read.
func (s *session) filterFile(in *input, filter *vm.VM, out *outputs) (records, frames int, err error) {
	opts, link := s.opts, in.pr.LinkType()
	var (
		buf  []byte
		info packet.Info
	)
	var progress atomic.Int64 // records<<32 | frames, for SIGUSR1
	s.sig.onInfo(func() {
		p := progress.Load()
		fmt.Fprintf(s.stderr, "%d records, %d frames read from file so far\n", p>>32, p&0xffffffff)
	})
	defer s.sig.onInfo(nil)
	for opts.count == 0 || records < opts.count {
		progress.Store(int64(records)<<32 | int64(frames)&0xffffffff)
		if s.ctx.Err() != nil {
			break
		}
		buf, err = in.pr.ReadPacket(buf, &info)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return records, frames, fmt.Errorf("read %s: %w", in.name, err)
		}
		frames++
		frame, err := runFilter(filter, buf, link, &info)
		if err != nil {
			return records, frames, fmt.Errorf("filter on frame %d of %s: %w", frames, in.name, err)
		}
		if frame == nil {
			continue
		}
		if err := out.Write(frame, &info); err != nil {
			err = stopped(err)
			switch {
			case err == nil: // a signal ended a wait for standard output
				records++
			case errors.Is(err, errFileLimit):
				fmt.Fprintf(s.stderr, "Maximum file limit reached: %d\n", opts.fileCount)
			default:
				return records, frames, err
			}
			break
		}
		records++
	}
	return records, frames, nil
}

// runFilter runs the filter on a frame of link from a file and returns
// what the filter keeps of it, nil for nothing: the frame cut to the
// program's return value. A frame with a Linux cooked header is filtered
// with its header, whose protocol, direction and interface index the
// program reads, as libpcap filters the file (pcapfilter's Offline form,
// run by vm.RunFrameInfo); the return value counts from the packet after
// the header, as -s cuts a live capture on "any".
func runFilter(filter *vm.VM, frame []byte, link packet.LinkType, info *packet.Info) ([]byte, error) {
	verdict, err := filter.RunFrameInfo(frame, link, info)
	if err != nil || verdict == 0 {
		return nil, err
	}
	hdr := 0
	switch link {
	case packet.LinkLinuxSLL:
		hdr = packet.SLLHeaderLen
	case packet.LinkLinuxSLL2:
		hdr = packet.SLL2HeaderLen
	}
	if uint64(len(frame)) > uint64(hdr)+uint64(verdict) {
		frame = frame[:hdr+int(verdict)]
	}
	return frame, nil
}

// dumpProgram prints the program the filter compiles to (with -s's snap
// length), one instruction per line in the kernel's syntax, numbered like
// tcpdump -d. The link type is the -r file's, or the interface's.
func dumpProgram(opts *options, stdout io.Writer) error {
	link := packet.LinkEthernet
	if opts.read != "" || opts.ifaceSet {
		var err error
		if link, err = linkTypeFor(opts); err != nil {
			return err
		}
	}
	compileFor := compileFilter
	if opts.read != "" {
		compileFor = compileFileFilter
	}
	insns, err := compileFor(opts, link)
	if err != nil {
		return err
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
