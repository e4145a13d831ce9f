package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"time"

	"github.com/purebpf/purebpf/sockfilter/packet"
	"github.com/purebpf/purebpf/sockfilter/pcapfile"
)

// errFileLimit ends a capture when -G has made the -W files asked for,
// which tcpdump reports as "Maximum file limit reached" and exits 0.
var errFileLimit = errors.New("maximum file limit reached")

// saveBuffer is how many bytes of whole records a -w file's
// pcapfile.Writer keeps before it writes them out; with -U, or -C (whose
// size check needs what is written), it writes each record at once.
const saveBuffer = 1 << 20

// savefile is -w's output: one pcap file, standard output, or — with -C,
// -G and -W — a sequence of files that tcpdump would name the same way.
// Its pcapfile.Writer hands the file whole records only, and cuts a
// regular file back to its last whole record if a write fails (a full
// disk); a stream (standard output, a pipe) goes through a streamWriter,
// so that a reader that stops reading does not block the capture.
type savefile struct {
	template string // -w's name
	link     packet.LinkType
	snaplen  int
	follow   bool        // --follow-symlink
	input    os.FileInfo // what -r reads, never to be written
	bufSize  int

	rotateSeconds int64 // -G
	fileSize      int64 // -C
	fileCount     int   // -W
	countDigits   int   // the digits -W's count needs, for -C's names
	gTime         int64 // when the current -G period began, in Unix seconds
	gCount        int   // the files -G has closed
	cCount        int   // the number in the current -C name
	now           func() time.Time

	ctx    context.Context // ends the streams' waits while capturing
	stop   <-chan struct{} // closed at a signal: see streamWriter.closeWait
	hard   <-chan struct{} // closed at a second signal
	stdout *streamWriter   // for -w -

	name    string
	f       *os.File      // the current file; nil for standard output
	created bool          // this run created it
	stream  *streamWriter // the current file's stream, when not a regular file
	cw      *chunkWriter  // the Writer's way into stream or stdout
	pw      *pcapfile.Writer
}

// newSavefile opens the first file of -w.
func newSavefile(ctx context.Context, stop, hard <-chan struct{}, opts *options, link packet.LinkType, input os.FileInfo, stdout *streamWriter) (*savefile, error) {
	sf := &savefile{
		template:      opts.write,
		link:          link,
		snaplen:       opts.snaplen,
		follow:        opts.followSymlink,
		input:         input,
		bufSize:       saveBuffer,
		rotateSeconds: int64(opts.rotateSeconds),
		fileSize:      opts.fileSize,
		fileCount:     opts.fileCount,
		countDigits:   digitsFor(opts.fileCount),
		now:           time.Now,
		ctx:           ctx,
		stop:          stop,
		hard:          hard,
		stdout:        stdout,
	}
	if opts.packetBuffered || opts.fileSize > 0 {
		sf.bufSize = 0
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
	sf.name = "standard output"
	sf.cw = &chunkWriter{ctx: sf.ctx, s: sf.stdout, hard: sf.hard}
	return sf.start(sf.cw)
}

// open opens the file name and writes its header.
func (sf *savefile) open(name string) error {
	f, created, regular, err := openOutputFile(name, sf.follow, sf.input)
	if err != nil {
		return err
	}
	sf.name, sf.f, sf.created, sf.stream, sf.cw = name, f, created, nil, nil
	if regular {
		return sf.start(f)
	}
	sf.stream = newStreamWriter(f, pcapChunks, pcapChunk)
	sf.cw = &chunkWriter{ctx: sf.ctx, s: sf.stream, hard: sf.hard}
	return sf.start(sf.cw)
}

// start writes the header of a file whose writes go to w.
func (sf *savefile) start(w interface{ Write([]byte) (int, error) }) error {
	pw, err := pcapfile.NewWriter(w, sf.link, sf.snaplen)
	if err != nil {
		return sf.wrap(err)
	}
	sf.pw = pw
	return sf.wrap(pw.SetBufferSize(sf.bufSize))
}

// wrap names the file in an error, unless the error is the file's own,
// which does.
func (sf *savefile) wrap(err error) error {
	var pe *fs.PathError
	if err == nil || errors.Is(err, context.Canceled) || errors.As(err, &pe) {
		return err
	}
	return fmt.Errorf("write %s: %w", sf.name, err)
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
			if err := sf.closeFile(); err != nil {
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
	// With -C the Writer writes each record out, so Written is the size.
	if sf.fileSize > 0 && sf.pw.Written() > sf.fileSize {
		if err := sf.closeFile(); err != nil {
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
	return sf.wrap(sf.pw.WritePacket(frame, info))
}

// flush writes out what is buffered.
func (sf *savefile) flush() error {
	if sf.pw == nil {
		return nil
	}
	return sf.wrap(sf.pw.Flush())
}

// chown gives the file this run created to uid and gid, for -Z: tcpdump
// creates its first file as the user it then runs as.
func (sf *savefile) chown(uid, gid int) error {
	if !sf.created || sf.f == nil {
		return nil
	}
	if err := sf.f.Chown(uid, gid); err != nil {
		return fmt.Errorf("-Z: give %s to the user: %w", sf.name, err)
	}
	return nil
}

// closeFile writes out what is buffered and closes the current file,
// waiting for its stream, if it has one, as closeWait does. A closed
// savefile stays closed.
func (sf *savefile) closeFile() error {
	if sf.pw == nil {
		return nil
	}
	defer func() { sf.pw, sf.f, sf.stream, sf.cw = nil, nil, nil, nil }()
	if sf.cw != nil {
		sf.cw.closing = true
	}
	err := sf.wrap(sf.pw.Flush())
	if sf.stream != nil {
		if serr := sf.stream.closeWait(sf.stop, sf.hard); err == nil && serr != nil {
			err = sf.wrap(serr)
		}
	}
	if sf.f != nil {
		if cerr := sf.f.Close(); err == nil && cerr != nil {
			err = sf.wrap(cerr)
		}
	}
	return err
}

// close writes out what is buffered and closes the current file.
// Standard output is left to outputs.Close.
func (sf *savefile) close() error { return sf.closeFile() }
