package main

import (
	"io"

	"github.com/purebpf/purebpf/sockfilter"
)

// recordWriter prints one record per frame, as a table or as JSON lines.
// Records are formatted straight into its buffer, which Flush writes out
// (and Write, when it is nearly full): one copy of each line, none per
// frame on the way.
type recordWriter struct {
	w      io.Writer
	json   bool
	link   sockfilter.LinkType
	header bool // the table's header line is still to be written
	buf    []byte
	rec    sockfilter.Record
	text   sockfilter.TextEncoder // the table's lines, cached per flow and second
}

// recordBufferSize is the size of a recordWriter's buffer; it is written
// out when less than a long record line's room is left.
const (
	recordBufferSize = 64 << 10
	maxRecordLine    = 1 << 10
)

func newRecordWriter(w io.Writer, json bool, link sockfilter.LinkType) *recordWriter {
	return &recordWriter{
		w:      w,
		json:   json,
		link:   link,
		header: !json,
		buf:    make([]byte, 0, recordBufferSize),
	}
}

// Write prints the record of one frame. A frame that does not parse still
// gets its line: its protocol says that it is truncated or malformed.
func (rw *recordWriter) Write(frame []byte, info *sockfilter.FrameInfo) error {
	if rw.header {
		rw.header = false
		rw.buf = append(rw.buf, sockfilter.TextHeader...)
	}
	if err := sockfilter.ParseFrameInfo(frame, rw.link, *info, &rw.rec); err != nil {
		rw.rec = sockfilter.UnparsedRecord(frame, *info, err)
	}
	if rw.json {
		rw.buf = rw.rec.AppendJSON(rw.buf)
	} else {
		rw.buf = rw.text.Append(rw.buf, &rw.rec)
	}
	if cap(rw.buf)-len(rw.buf) < maxRecordLine {
		return rw.writeOut()
	}
	return nil
}

// Flush writes out the buffered records (and the table's header line, so
// that an empty capture still shows it).
func (rw *recordWriter) Flush() error {
	if rw.header {
		rw.header = false
		rw.buf = append(rw.buf, sockfilter.TextHeader...)
	}
	return rw.writeOut()
}

func (rw *recordWriter) writeOut() error {
	if len(rw.buf) == 0 {
		return nil
	}
	_, err := rw.w.Write(rw.buf)
	rw.buf = rw.buf[:0]
	return err
}
