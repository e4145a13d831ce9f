package main

import (
	"bytes"
	"strings"
	"time"

	"github.com/purebpf/purebpf/sockfilter/packet"
)

// textFormat shapes the table as tcpdump's output flags ask: the time
// format (-t...), the link-level columns (-e), the IP header's fields in
// Info (-v), no Info (-q), and the frame's bytes under each line (-A, -x,
// -X). Without any of them the lines are packet.TextEncoder's, made on
// its fast path; with them, AppendLine's line is taken apart at its tabs
// and put together again, so that the columns stay those packet.TextHeader
// names, in its order.
type textFormat struct {
	tflag    int
	link     bool
	quiet    bool
	verbose  int
	dump     dumpMode
	dumpLink bool // -AA, -xx, -XX: dump the link-level header too
	loc      *time.Location

	timeCol int // the index of the Time column in packet.TextHeader
	enc     packet.TextEncoder
	// Scratch buffers for the line taken apart and the columns made.
	line, linkBuf, timeBuf, ipBuf []byte
	first                         time.Time // for -ttttt
	prev                          time.Time // for -ttt
	started                       bool
}

// dumpMode is what -A, -x and -X print under each record.
type dumpMode uint8

const (
	dumpNone     dumpMode = iota
	dumpASCII             // -A
	dumpHex               // -x
	dumpHexASCII          // -X
)

func newTextFormat(o *options) *textFormat {
	tf := &textFormat{tflag: o.tflag, link: o.linkHeader, quiet: o.quiet, verbose: o.verbose, loc: time.Local}
	switch {
	case o.ascii > 0:
		tf.dump, tf.dumpLink = dumpASCII, o.ascii > 1
	case o.hex > 0:
		tf.dump, tf.dumpLink = dumpHex, o.hex > 1
	case o.hexASCII > 0:
		tf.dump, tf.dumpLink = dumpHexASCII, o.hexASCII > 1
	}
	tf.timeCol = columnIndex(packet.TextHeader, "Time")
	return tf
}

// columnIndex returns the index of the column name in the header line.
func columnIndex(header, name string) int {
	for i, col := range strings.Split(strings.TrimSuffix(header, "\n"), "\t") {
		if col == name {
			return i
		}
	}
	return -1
}

// plain reports whether lines are packet's own, unchanged.
func (tf *textFormat) plain() bool {
	return tf.tflag == 0 && !tf.link && !tf.quiet && tf.verbose == 0
}

// linkColumns are the names of -e's columns, which come first as
// tcpdump -e prints the link-level header first.
const linkColumns = "S-MAC\tD-MAC\tEtherType"

// header appends the table's header line.
func (tf *textFormat) header(b []byte) []byte {
	if tf.plain() {
		return append(b, packet.TextHeader...)
	}
	return tf.reshape(b, []byte(packet.TextHeader), []byte(linkColumns), nil, nil, true)
}

// appendRecord appends the line of one record, and under it the frame's
// bytes when -A, -x or -X asks for them.
func (tf *textFormat) appendRecord(b []byte, r *packet.Record, frame []byte, link packet.LinkType, info *packet.Info) []byte {
	if tf.plain() {
		b = tf.enc.Append(b, r)
	} else {
		tf.line = r.AppendLine(tf.line[:0])
		tf.linkBuf, tf.ipBuf = tf.linkBuf[:0], tf.ipBuf[:0]
		if tf.link {
			tf.linkBuf = appendLinkColumns(tf.linkBuf, frame, link, info)
		}
		tf.timeBuf = tf.appendTime(tf.timeBuf[:0], r.Time)
		if tf.verbose > 0 {
			tf.ipBuf = appendIPVerbose(tf.ipBuf, frame, link)
		}
		b = tf.reshape(b, tf.line, tf.linkBuf, tf.timeBuf, tf.ipBuf, false)
	}
	if tf.dump == dumpNone {
		return b
	}
	return tf.appendDump(b, tf.dumpBytes(frame, link))
}

// appendDump appends data as -A, -x or -X prints it.
func (tf *textFormat) appendDump(b, data []byte) []byte {
	switch tf.dump {
	case dumpASCII:
		return appendASCIIDump(b, data)
	case dumpHex:
		return appendHexDump(b, data)
	case dumpHexASCII:
		return appendHexASCIIDump(b, data)
	}
	return b
}

// dumpBytes returns what -A, -x and -X print of frame: everything after
// the link-level header, or all of it when doubled (-XX). tcpdump also
// dumps a frame whole when one of its protocol printers runs out of
// captured data (it then ends the line with "[|proto]"; tcpdump(8): "-X
// ... may have the same effect as -XX if the packet is truncated");
// lo-capture has no such printers, and keeps to the rule.
func (tf *textFormat) dumpBytes(frame []byte, link packet.LinkType) []byte {
	if tf.dumpLink {
		return frame
	}
	n := linkHeaderLen(frame, link)
	if len(frame) <= n {
		return nil
	}
	return frame[n:]
}

// reshape appends line (the header line, or a record's, with its
// newline) with the columns the flags ask for: linkCols first (-e), the
// Time column replaced by timeCol (the header keeps its name; -t drops the
// column), ipCol at the start of Info (-v), and Info dropped (-q).
func (tf *textFormat) reshape(b, line, linkCols, timeCol, ipCol []byte, header bool) []byte {
	line = bytes.TrimSuffix(line, []byte{'\n'})
	var cols [16][]byte
	n := 0
	for rest := line; n < len(cols); n++ {
		i := bytes.IndexByte(rest, '\t')
		if i < 0 || n == len(cols)-1 {
			cols[n] = rest
			n++
			break
		}
		cols[n], rest = rest[:i], rest[i+1:]
	}
	start := len(b)
	col := func(c []byte) {
		if len(b) > start {
			b = append(b, '\t')
		}
		b = append(b, c...)
	}
	if tf.link {
		col(linkCols)
	}
	for i := range n {
		c := cols[i]
		switch {
		case i == tf.timeCol:
			if tf.tflag == 1 {
				continue
			}
			if !header {
				c = timeCol
			}
		case i == n-1: // Info
			if tf.quiet {
				continue
			}
			if len(ipCol) > 0 {
				col(ipCol)
				if len(c) == 1 && c[0] == '-' {
					continue
				}
				b = append(b, ' ')
				b = append(b, c...)
				continue
			}
		}
		col(c)
	}
	return append(b, '\n')
}

// appendTime appends t in -t's format: RFC 3339 in UTC with nanoseconds by
// default (lo-capture's own), Unix seconds (-tt), the time since the
// previous record (-ttt) or the first (-ttttt) as tcpdump prints a delta,
// or the local date and time (-tttt), with nanoseconds, as tcpdump
// --nano prints them. For -t it appends nothing.
func (tf *textFormat) appendTime(b []byte, t time.Time) []byte {
	if !tf.started {
		tf.first, tf.prev, tf.started = t, t, true
	}
	switch tf.tflag {
	case 1:
		return b
	case 2:
		b = appendInt(b, t.Unix(), 1)
		b = append(b, '.')
		return appendInt(b, int64(t.Nanosecond()), 9)
	case 3, 5:
		ref := tf.first
		if tf.tflag == 3 {
			ref = tf.prev
			tf.prev = t
		}
		return appendDelta(b, t.Sub(ref))
	case 4:
		return t.In(tf.loc).AppendFormat(b, "2006-01-02 15:04:05.000000000")
	}
	return t.UTC().AppendFormat(b, "2006-01-02T15:04:05.000000000Z")
}

// appendDelta appends d as tcpdump prints a delta: hours, minutes,
// seconds and nanoseconds, "-" first when negative.
func appendDelta(b []byte, d time.Duration) []byte {
	if d < 0 {
		b = append(b, '-')
		d = -d
	}
	sec := int64(d / time.Second)
	b = appendInt(b, sec/3600, 2)
	b = append(b, ':')
	b = appendInt(b, sec/60%60, 2)
	b = append(b, ':')
	b = appendInt(b, sec%60, 2)
	b = append(b, '.')
	return appendInt(b, int64(d%time.Second), 9)
}

// appendInt appends v, zero-padded to width digits.
func appendInt(b []byte, v int64, width int) []byte {
	var d [20]byte
	i := len(d)
	for v >= 10 {
		i--
		d[i] = byte('0' + v%10)
		v /= 10
	}
	i--
	d[i] = byte('0' + v)
	for n := len(d) - i; n < width; n++ {
		b = append(b, '0')
	}
	return append(b, d[i:]...)
}
