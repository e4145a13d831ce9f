package main

import (
	"bufio"
	"io"

	"github.com/purebpf/purebpf/sockfilter"
)

// recordWriter prints one record per frame, as a table or as JSON lines,
// through a buffer; Flush writes the buffer out.
type recordWriter struct {
	w      *bufio.Writer
	json   bool
	link   sockfilter.LinkType
	header bool // the table's header line is still to be written
	line   []byte
	rec    sockfilter.Record
}

func newRecordWriter(w io.Writer, json bool, link sockfilter.LinkType) *recordWriter {
	return &recordWriter{
		w:      bufio.NewWriterSize(w, 64<<10),
		json:   json,
		link:   link,
		header: !json,
		line:   make([]byte, 0, 512),
	}
}

// Write prints the record of one frame. A frame that does not parse still
// gets its line: its protocol says that it is truncated or malformed.
func (rw *recordWriter) Write(frame []byte, info sockfilter.FrameInfo) error {
	if rw.header {
		rw.header = false
		if _, err := rw.w.WriteString(sockfilter.TextHeader); err != nil {
			return err
		}
	}
	if err := sockfilter.ParseFrameInfo(frame, rw.link, info, &rw.rec); err != nil {
		rw.rec = sockfilter.UnparsedRecord(frame, info, err)
	}
	if rw.json {
		rw.line = rw.rec.AppendJSON(rw.line[:0])
	} else {
		rw.line = rw.rec.AppendText(rw.line[:0])
	}
	_, err := rw.w.Write(rw.line)
	return err
}

// Flush writes out the buffered records (and the table's header line, so
// that an empty capture still shows it).
func (rw *recordWriter) Flush() error {
	if rw.header {
		rw.header = false
		if _, err := rw.w.WriteString(sockfilter.TextHeader); err != nil {
			return err
		}
	}
	return rw.w.Flush()
}
