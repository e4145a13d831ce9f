package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/purebpf/purebpf/sockfilter/packet"
)

// recordWriter prints one record per frame, as a table or as JSON lines,
// into chunks of a streamWriter: each line is formatted once, straight
// into the chunk, which is handed to the stream's goroutine when it is
// nearly full, at each Flush, or, with -l or -U, after every record.
type recordWriter struct {
	ctx       context.Context
	s         *streamWriter
	json      bool
	link      packet.LinkType
	format    *textFormat
	immediate bool // -l, -U
	header    bool // the table's header line is still to be written
	buf       []byte
	rec       packet.Record
}

// maxRecordLine is the room a record's line needs; a chunk with less room
// left is handed over. A line with a dump under it may be longer: the
// chunk then grows.
const maxRecordLine = 1 << 10

func newRecordWriter(ctx context.Context, s *streamWriter, opts *options, link packet.LinkType) (*recordWriter, error) {
	buf, err := s.get(ctx)
	if err != nil {
		return nil, err
	}
	return &recordWriter{
		ctx:       ctx,
		s:         s,
		json:      opts.json,
		link:      link,
		format:    newTextFormat(opts),
		immediate: opts.lineBuffered || opts.packetBuffered,
		header:    !opts.json,
		buf:       buf,
	}, nil
}

// Write prints the record of one frame. A frame that does not parse still
// gets its line: its protocol says that it is truncated or malformed.
func (rw *recordWriter) Write(frame []byte, info *packet.Info) error {
	if rw.header {
		rw.header = false
		rw.buf = rw.format.header(rw.buf)
	}
	// A frame Parse cannot decode wholly keeps what it could, with its
	// Status and the layer at fault: the line still shows it.
	packet.Parse(frame, rw.link, info, &rw.rec)
	return rw.write(&rw.rec, frame, info)
}

// WriteRecord prints a record built in the kernel (-k), which comes
// without its frame: the flags that need the frame's bytes are refused
// with -k (checkKernelOptions).
func (rw *recordWriter) WriteRecord(rec *packet.Record) error {
	if rw.header {
		rw.header = false
		rw.buf = rw.format.header(rw.buf)
	}
	return rw.write(rec, nil, nil)
}

func (rw *recordWriter) write(rec *packet.Record, frame []byte, info *packet.Info) error {
	if rw.json {
		rw.buf = rec.AppendJSON(rw.buf)
	} else {
		rw.buf = rw.format.appendRecord(rw.buf, rec, frame, rw.link, info)
	}
	if rw.immediate || cap(rw.buf)-len(rw.buf) < maxRecordLine {
		return rw.Flush()
	}
	return nil
}

// Flush hands over the buffered records.
func (rw *recordWriter) Flush() error {
	if len(rw.buf) == 0 {
		return rw.s.Err()
	}
	rw.s.put(rw.buf)
	rw.buf = nil
	buf, err := rw.s.get(rw.ctx)
	if err != nil {
		return err
	}
	rw.buf = buf
	return nil
}

// finish hands over what is left, with the header line when no record
// came, so that an empty capture still shows it.
func (rw *recordWriter) finish() {
	if rw.header && rw.buf != nil {
		rw.header = false
		rw.buf = rw.format.header(rw.buf)
	}
	if len(rw.buf) > 0 {
		rw.s.put(rw.buf)
	}
	rw.buf = nil
}

// outputs are where a capture's frames go: the records printed to
// standard output, and the -w file.
type outputs struct {
	records *recordWriter // nil when records are not printed
	save    *savefile     // nil without -w
	stdout  *streamWriter // nil when nothing goes to standard output
	closed  bool          // Close was called
}

// errOutput marks a failure to write standard output, which run reports
// as tcpdump does: "unable to write output".
type errOutput struct{ err error }

func (e *errOutput) Error() string { return "unable to write output: " + e.err.Error() }
func (e *errOutput) Unwrap() error { return e.err }

// openOutputs opens what opts asks for, for frames of link. It is called
// before anything is printed, so that a -w that cannot be opened is the
// only thing said. ctx ends the waits for a slow standard output or -w
// stream while capturing; stop and hard are the signals closeWait heeds.
func openOutputs(ctx context.Context, stop, hard <-chan struct{}, opts *options, link packet.LinkType, input os.FileInfo, stdio stdio) (*outputs, error) {
	out := &outputs{}
	if opts.printRecords() || opts.write == "-" {
		if stdio.stdoutClosed {
			return nil, &errOutput{errors.New("standard output is closed")}
		}
		size, n := textChunk, textChunks
		if !opts.printRecords() {
			size, n = pcapChunk, pcapChunks
		}
		out.stdout = newStreamWriter(stdio.stdout, n, size)
	}
	if opts.printRecords() {
		var err error
		if out.records, err = newRecordWriter(ctx, out.stdout, opts, link); err != nil {
			return nil, err
		}
	}
	if opts.write != "" {
		var err error
		if out.save, err = newSavefile(ctx, stop, hard, opts, link, input, out.stdout); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Write writes one frame to the -w file, then prints its record.
func (o *outputs) Write(frame []byte, info *packet.Info) error {
	if o.save != nil {
		if err := o.save.WritePacket(frame, info); err != nil {
			return o.wrap(err)
		}
	}
	if o.records != nil {
		return o.wrap(o.records.Write(frame, info))
	}
	return nil
}

// Flush writes out what is buffered.
func (o *outputs) Flush() error {
	if o.records != nil {
		if err := o.records.Flush(); err != nil {
			return o.wrap(err)
		}
	}
	if o.save != nil {
		return o.wrap(o.save.flush())
	}
	return nil
}

// wrap marks standard output's errors as such.
func (o *outputs) wrap(err error) error {
	if err == nil || o.stdout == nil || o.stdout.Err() == nil || !errors.Is(err, o.stdout.Err()) {
		return err
	}
	return &errOutput{err}
}

// Close flushes the -w file first — whatever standard output does, the
// file is complete when Close returns — and then waits for standard
// output to take the records still queued (see streamWriter.closeWait for
// stop and hard). Standard output that a signal gave up on is not an
// error: Close returns warn for it. Later calls do nothing.
func (o *outputs) Close(stop, hard <-chan struct{}) (warn string, err error) {
	if o.closed {
		return "", nil
	}
	o.closed = true
	const stalled = "standard output stopped taking data; what was still queued for it is dropped"
	if o.save != nil {
		// A Write that a signal interrupted while standard output or a
		// stream was stuck left the Writer its error: the capture was
		// stopping anyway.
		err = stopped(o.wrap(o.save.close()))
		if errors.Is(err, errStalled) {
			warn, err = stalled, nil
		}
	}
	if o.records != nil {
		o.records.finish()
	}
	if o.stdout != nil {
		serr := o.stdout.closeWait(stop, hard)
		switch {
		case errors.Is(serr, errStalled):
			warn = stalled
		case err == nil && serr != nil:
			err = &errOutput{serr}
		}
	}
	return warn, err
}

// errorLine returns the one line lo-capture prints for an error.
func errorLine(err error) string {
	return fmt.Sprintf("lo-capture: %v", err)
}
