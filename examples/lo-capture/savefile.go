package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// recordSink is where a pcap Writer's bytes go: a buffer that is written
// out a chunk of whole records at a time. The pcapfile.Writer writes a
// record with several Write calls into the buffer (which never fails);
// endRecord then marks the end of a whole record, so that output is only
// ever handed on, and on a failure cut back, at record boundaries.
type recordSink interface {
	Write(p []byte) (int, error)
	// endRecord marks the end of a whole record (or of the file header)
	// and writes the buffer out when it is full, or at once when
	// immediate (-U).
	endRecord(immediate bool) error
	// flush writes out what is buffered.
	flush() error
	// size is the file's length with what is buffered: tcpdump's ftell.
	size() int64
	// close flushes and closes; the first error wins.
	close() error
}

// maxRecordLen is the longest pcap record: its header and a frame of the
// largest snap length.
const maxRecordLen = 16 + 4 + 262144

// fileSink is a recordSink writing to a regular file. When a write fails,
// the file is cut back to the end of the last record written whole — by
// ftruncate(2) to that offset — so that it stays a valid pcap file with
// every record it has whole; every later call returns the error.
type fileSink struct {
	f    *os.File
	name string
	buf  []byte
	ends []int // where in buf whole records (and the file header) end
	// off is the file offset of buf[0]: all before it is on disk, whole.
	off int64
	// records counts the packet records on disk; header says the file
	// header is still in buf, as its first "record".
	records int
	header  bool
	err     error
}

func newFileSink(f *os.File, name string) *fileSink {
	return &fileSink{f: f, name: name, buf: make([]byte, 0, pcapChunk), header: true}
}

func (s *fileSink) Write(p []byte) (int, error) {
	s.buf = append(s.buf, p...)
	return len(p), nil
}

func (s *fileSink) endRecord(immediate bool) error {
	if s.err != nil {
		return s.err
	}
	s.ends = append(s.ends, len(s.buf))
	if immediate || cap(s.buf)-len(s.buf) < maxRecordLen {
		return s.flush()
	}
	return nil
}

func (s *fileSink) size() int64 { return s.off + int64(len(s.buf)) }

func (s *fileSink) flush() error {
	if s.err != nil || len(s.buf) == 0 {
		return s.err
	}
	n, err := s.f.Write(s.buf)
	if err == nil {
		s.records += len(s.ends)
		if s.header {
			s.records--
			s.header = false
		}
		s.off += int64(n)
		s.buf, s.ends = s.buf[:0], s.ends[:0]
		return nil
	}
	// Keep the records that reached the file whole; cut off the rest.
	keep := 0
	for _, end := range s.ends {
		if end > n {
			break
		}
		keep = end
		if s.header {
			s.header = false
		} else {
			s.records++
		}
	}
	if n > keep {
		if terr := s.f.Truncate(s.off + int64(keep)); terr != nil {
			err = fmt.Errorf("%w; cutting it back to its last whole record failed too: %v", err, terr)
		}
	}
	s.off += int64(keep)
	s.buf, s.ends = s.buf[:0], s.ends[:0]
	s.err = fmt.Errorf("write %s: %w (it keeps its first %d records, up to the last one written whole)", s.name, err, s.records)
	return s.err
}

func (s *fileSink) close() error {
	err := s.flush()
	if cerr := s.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close %s: %w", s.name, cerr)
	}
	return err
}

// streamSink is a recordSink writing to a stream (standard output for
// -w -, a pipe, a device) through a streamWriter, a chunk of whole
// records at a time. A stream cannot be cut back: a reader that stops
// mid-chunk sees the records before it.
type streamSink struct {
	ctx     context.Context
	s       *streamWriter
	name    string
	buf     []byte
	written int64
}

func newStreamSink(ctx context.Context, s *streamWriter, name string) (*streamSink, error) {
	buf, err := s.get(ctx)
	if err != nil {
		return nil, err
	}
	return &streamSink{ctx: ctx, s: s, name: name, buf: buf}, nil
}

func (s *streamSink) Write(p []byte) (int, error) {
	s.buf = append(s.buf, p...)
	return len(p), nil
}

func (s *streamSink) endRecord(immediate bool) error {
	if immediate || cap(s.buf)-len(s.buf) < maxRecordLen {
		return s.flush()
	}
	return nil
}

func (s *streamSink) size() int64 { return s.written + int64(len(s.buf)) }

func (s *streamSink) flush() error {
	if len(s.buf) == 0 {
		return s.wrap(s.s.Err())
	}
	s.written += int64(len(s.buf))
	s.s.put(s.buf)
	s.buf = nil
	buf, err := s.s.get(s.ctx)
	if err != nil {
		return s.wrap(err)
	}
	s.buf = buf
	return nil
}

// wrap names the stream in its errors, unless it is standard output,
// whose errors outputs reports as such.
func (s *streamSink) wrap(err error) error {
	if err == nil || s.name == "" || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("write %s: %w", s.name, err)
}

// close hands over what is buffered; the caller waits for the
// streamWriter to write it (see outputs.close).
func (s *streamSink) close() error {
	if len(s.buf) > 0 {
		s.written += int64(len(s.buf))
		s.s.put(s.buf)
		s.buf = nil
	}
	return s.wrap(s.s.Err())
}

// openOutputFile opens name for -w: created if missing, emptied if not.
// Unless follow, a symbolic link is refused (O_NOFOLLOW), not written
// through; and a file that is input — the same file as -r reads, by any
// path — is refused before anything is written to it. It reports whether
// it created the file, and whether it is a regular file (which can be cut
// back on a failure) rather than a pipe or a device.
func openOutputFile(name string, follow bool, input os.FileInfo) (f *os.File, created, regular bool, err error) {
	flags := os.O_WRONLY
	if !follow {
		flags |= oNoFollow
	}
	f, err = os.OpenFile(name, flags|os.O_CREATE|os.O_EXCL, 0o644)
	created = err == nil
	if errors.Is(err, fs.ErrExist) {
		f, err = os.OpenFile(name, flags, 0o644)
	}
	if err != nil {
		if !follow && isSymlink(name) {
			return nil, false, false, fmt.Errorf("-w %s: a symbolic link: refusing to write through it (give --follow-symlink to)", name)
		}
		return nil, false, false, fmt.Errorf("-w: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, false, false, fmt.Errorf("-w: %w", err)
	}
	if input != nil && os.SameFile(fi, input) {
		f.Close()
		return nil, false, false, fmt.Errorf("-w %s: the file -r reads: refusing to overwrite the input", name)
	}
	if fi.IsDir() {
		f.Close()
		return nil, false, false, fmt.Errorf("-w %s: a directory", name)
	}
	regular = fi.Mode().IsRegular()
	if regular && !created {
		if err := f.Truncate(0); err != nil {
			f.Close()
			return nil, false, false, fmt.Errorf("-w: %w", err)
		}
	}
	return f, created, regular, nil
}

// isSymlink reports whether name is a symbolic link.
func isSymlink(name string) bool {
	fi, err := os.Lstat(name)
	return err == nil && fi.Mode()&fs.ModeSymlink != 0
}
