package main

import (
	"bufio"
	"fmt"
	"io"
	"os"

	"github.com/purebpf/purebpf/sockfilter/packet"
	"github.com/purebpf/purebpf/sockfilter/pcapfile"
)

// recordWriter prints one record per frame, as a table or as JSON lines.
// Records are formatted straight into its buffer, which Flush writes out
// (and Write, when it is nearly full): one copy of each line, none per
// frame on the way.
type recordWriter struct {
	w      io.Writer
	json   bool
	link   packet.LinkType
	header bool // the table's header line is still to be written
	buf    []byte
	rec    packet.Record
	text   packet.TextEncoder // the table's lines, cached per flow and second
}

// recordBufferSize is the size of a recordWriter's buffer; it is written
// out when less than a long record line's room is left.
const (
	recordBufferSize = 64 << 10
	maxRecordLine    = 1 << 10
)

func newRecordWriter(w io.Writer, json bool, link packet.LinkType) *recordWriter {
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
func (rw *recordWriter) Write(frame []byte, info *packet.Info) error {
	if rw.header {
		rw.header = false
		rw.buf = append(rw.buf, packet.TextHeader...)
	}
	// A frame Parse cannot decode wholly keeps what it could, with its
	// Status and the layer at fault: the line still shows it.
	packet.Parse(frame, rw.link, info, &rw.rec)
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
		rw.buf = append(rw.buf, packet.TextHeader...)
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

// outputs are where lo-capture's records go: the table or JSON lines, and
// the pcap file of -w.
type outputs struct {
	records *recordWriter
	pcap    *pcapOutput // nil without -w
}

// openOutputs opens the outputs opts asks for, for frames of link.
func openOutputs(opts options, stdout io.Writer, link packet.LinkType) (*outputs, error) {
	out := &outputs{records: newRecordWriter(stdout, opts.json, link)}
	if opts.write != "" {
		var err error
		if out.pcap, err = createPcap(opts.write, link); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Write writes one frame to every output.
func (o *outputs) Write(frame []byte, info *packet.Info) error {
	if o.pcap != nil {
		if err := o.pcap.pw.WritePacket(frame, info); err != nil {
			return err
		}
	}
	return o.records.Write(frame, info)
}

// Flush writes out what is buffered.
func (o *outputs) Flush() error {
	if err := o.records.Flush(); err != nil {
		return err
	}
	if o.pcap != nil {
		return o.pcap.bw.Flush()
	}
	return nil
}

// Close flushes the outputs and closes the pcap file.
func (o *outputs) Close() error {
	err := o.records.Flush()
	if o.pcap != nil {
		if cerr := o.pcap.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

// pcapOutput is a pcap file being written through a buffer.
type pcapOutput struct {
	f  *os.File
	bw *bufio.Writer
	pw *pcapfile.Writer
}

// createPcap creates the pcap file name for frames of link.
func createPcap(name string, link packet.LinkType) (*pcapOutput, error) {
	f, err := os.Create(name)
	if err != nil {
		return nil, err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	pw, err := pcapfile.NewWriter(bw, link, pcapfile.DefaultSnaplen)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &pcapOutput{f: f, bw: bw, pw: pw}, nil
}

// Close flushes and closes the file.
func (p *pcapOutput) Close() error {
	ferr := p.bw.Flush()
	cerr := p.f.Close()
	if ferr != nil {
		return fmt.Errorf("write %s: %w", p.f.Name(), ferr)
	}
	return cerr
}
