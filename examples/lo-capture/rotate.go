package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/purebpf/purebpf/sockfilter/packet"
	"github.com/purebpf/purebpf/sockfilter/pcapfile"
)

// errFileLimit ends a capture when -G has made the -W files asked for,
// which tcpdump reports as "Maximum file limit reached" and exits 0.
var errFileLimit = errors.New("maximum file limit reached")

// savefile is -w's output: one pcap file, standard output, or — with -C,
// -G and -W — a sequence of files that tcpdump would name the same way.
type savefile struct {
	template  string // -w's name
	link      packet.LinkType
	snaplen   int
	follow    bool        // --follow-symlink
	input     os.FileInfo // what -r reads, never to be written
	immediate bool        // -U

	rotateSeconds int64 // -G
	fileSize      int64 // -C
	fileCount     int   // -W
	countDigits   int   // the digits -W's count needs, for -C's names
	gTime         int64 // when the current -G period began, in Unix seconds
	gCount        int   // the files -G has closed
	cCount        int   // the number in the current -C name
	now           func() time.Time

	ctx     context.Context // for the streams' waits
	stdout  *streamWriter   // for -w -
	streams []*streamWriter // the streams of -w files that are not regular files
	files   []*os.File      // their files, to close once drained

	name    string
	created *os.File // the current file, when this run created it
	sink    recordSink
	pw      *pcapfile.Writer
}

// newSavefile opens the first file of -w.
func newSavefile(ctx context.Context, opts *options, link packet.LinkType, input os.FileInfo, stdout *streamWriter) (*savefile, error) {
	sf := &savefile{
		template:      opts.write,
		link:          link,
		snaplen:       opts.snaplen,
		follow:        opts.followSymlink,
		input:         input,
		immediate:     opts.packetBuffered,
		rotateSeconds: int64(opts.rotateSeconds),
		fileSize:      opts.fileSize,
		fileCount:     opts.fileCount,
		countDigits:   digitsFor(opts.fileCount),
		now:           time.Now,
		ctx:           ctx,
		stdout:        stdout,
	}
	sf.gTime = sf.now().Unix()
	if opts.write == "-" {
		return sf, sf.openStdout()
	}
	digits := 0
	if sf.fileSize > 0 {
		digits = sf.countDigits
	}
	return sf, sf.open(sf.fileName(0, digits))
}

// digitsFor returns the digits the file numbers 0 to n-1 need, as
// tcpdump's getWflagChars counts them: none for n = 1.
func digitsFor(n int) int {
	d := 0
	for n--; n > 0; n /= 10 {
		d++
	}
	return d
}

// fileName returns the name of a file as tcpdump's MakeFilename makes
// it: -w's name, through strftime(3) with the local time of the -G period
// when -G is given, then the count, zero-padded to digits, unless both
// are 0.
func (sf *savefile) fileName(count, digits int) string {
	name := sf.template
	if sf.rotateSeconds > 0 {
		name = strftime(name, time.Unix(sf.gTime, 0))
	}
	if count == 0 && digits == 0 {
		return name
	}
	n := strconv.Itoa(count)
	for len(n) < digits {
		n = "0" + n
	}
	return name + n
}

func (sf *savefile) openStdout() error {
	if sf.input != nil {
		if fi, err := os.Stdout.Stat(); err == nil && fi.Mode().IsRegular() && os.SameFile(fi, sf.input) {
			return errors.New("-w -: standard output is the file -r reads: refusing to overwrite the input")
		}
	}
	sink, err := newStreamSink(sf.ctx, sf.stdout, "")
	if err != nil {
		return err
	}
	sf.name = "-"
	return sf.start(sink)
}

// open opens the file name and writes its header.
func (sf *savefile) open(name string) error {
	f, created, regular, err := openOutputFile(name, sf.follow, sf.input)
	if err != nil {
		return err
	}
	sf.name, sf.created = name, nil
	if created {
		sf.created = f
	}
	if regular {
		return sf.start(newFileSink(f, name))
	}
	s := newStreamWriter(f, pcapChunks, pcapChunk)
	sf.streams = append(sf.streams, s)
	sf.files = append(sf.files, f)
	sink, err := newStreamSink(sf.ctx, s, name)
	if err != nil {
		return err
	}
	return sf.start(sink)
}

func (sf *savefile) start(sink recordSink) error {
	sf.sink = sink
	pw, err := pcapfile.NewWriter(sink, sf.link, sf.snaplen)
	if err != nil {
		return err
	}
	sf.pw = pw
	return sink.endRecord(sf.immediate)
}

// WritePacket writes one frame, first moving on to the next file when -G's
// time or -C's size says so, as tcpdump does before each packet: -G when
// rotateSeconds have passed since the period began (on the wall clock,
// not the packets' time), -C when the file has grown past fileSize.
func (sf *savefile) WritePacket(frame []byte, info *packet.Info) error {
	if sf.rotateSeconds > 0 {
		if t := sf.now().Unix(); t-sf.gTime >= sf.rotateSeconds {
			sf.gTime = t
			sf.gCount++
			if err := sf.sink.close(); err != nil {
				return err
			}
			if sf.fileSize == 0 && sf.fileCount > 0 && sf.gCount >= sf.fileCount {
				return fmt.Errorf("%w: %d", errFileLimit, sf.fileCount)
			}
			sf.cCount = 0
			digits := 0
			if sf.fileSize > 0 {
				digits = sf.countDigits
			}
			if err := sf.open(sf.fileName(0, digits)); err != nil {
				return err
			}
		}
	}
	if sf.fileSize > 0 && sf.sink.size() > sf.fileSize {
		if err := sf.sink.close(); err != nil {
			return err
		}
		sf.cCount++
		if sf.fileCount > 0 && sf.cCount >= sf.fileCount {
			sf.cCount = 0
		}
		if err := sf.open(sf.fileName(sf.cCount, sf.countDigits)); err != nil {
			return err
		}
	}
	if err := sf.pw.WritePacket(frame, info); err != nil {
		return err
	}
	return sf.sink.endRecord(sf.immediate)
}

// flush writes out what is buffered.
func (sf *savefile) flush() error { return sf.sink.flush() }

// chown gives the file this run created to uid and gid, for -Z: tcpdump
// creates its first file as the user it then runs as.
func (sf *savefile) chown(uid, gid int) error {
	if sf.created == nil {
		return nil
	}
	if err := sf.created.Chown(uid, gid); err != nil {
		return fmt.Errorf("-Z: give %s to the user: %w", sf.name, err)
	}
	return nil
}

// close flushes and closes the current file; the streams of files that
// are not regular are waited for (see streamWriter.closeWait).
func (sf *savefile) close(stop, hard <-chan struct{}) error {
	err := sf.sink.close()
	for i, s := range sf.streams {
		if serr := s.closeWait(stop, hard); err == nil && serr != nil {
			err = fmt.Errorf("write %s: %w", sf.files[i].Name(), serr)
		}
		sf.files[i].Close()
	}
	return err
}
