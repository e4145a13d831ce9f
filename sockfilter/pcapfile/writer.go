package pcapfile

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"

	"github.com/purebpf/purebpf/internal/wire"
	"github.com/purebpf/purebpf/sockfilter/packet"
)

// The pcap format's numbers.
const (
	magicMicro   = 0xa1b2c3d4 // timestamps in microseconds
	magicNano    = 0xa1b23c4d // timestamps in nanoseconds
	fileHdrLen   = 24
	recordHdrLen = 16
)

// DefaultSnaplen is the snap length NewWriter writes when given 0, and the
// largest it takes: tcpdump's default, 262144 bytes.
const DefaultSnaplen = wire.MaxSnapLen

// Writer writes packets to a capture file: a pcap file (NewWriter) with
// nanosecond time stamps (magic 0xa1b23c4d, version 2.4), or a pcapng file
// (NewNgWriter), both little-endian, which tcpdump -r, tshark, capinfos,
// editcap and libpcap read.
//
// It puts each record together in a buffer of its own and hands the
// underlying io.Writer whole records only, with one Write call: one per
// WritePacket by default, or, after SetBufferSize, many at a time. So the
// file is a valid capture up to its last whole record whenever the Writer
// has written out what it holds (Flush), and Written says how long that
// is. Give it the *os.File itself rather than a *bufio.Writer, which
// would write out parts of records.
//
// Once a Write fails, or writes less than it was given, that error is
// sticky: WritePacket and Flush return it again, writing nothing more. If
// the Write took part of a record — a disk that filled up takes what it
// has room for — and the io.Writer can be cut back (an *os.File on a
// regular file, or anything with Truncate(int64) error and Seek, that is
// as long as the Writer made it), the Writer cuts the file back to its
// last whole record, Written bytes from where it started, and the error
// says so; otherwise the part of a record stays at the end, past Written. Either way a capture program can stop on any signal or error
// with a file tcpdump -r reads to its last whole record: Flush, then
// Close the file.
type Writer struct {
	w       io.Writer
	format  Format
	ifaces  []Interface // for pcap, the one of the file header
	buf     []byte      // whole records not yet written out
	ends    []int       // where each record in buf ends
	size    int         // write out when buf holds this many bytes; 0: at once
	err     error       // the first write error, sticky
	written int64       // bytes of whole records written out
	file    truncater   // w, if it can be cut back; nil otherwise
	start   int64       // file's offset when the Writer began
}

// truncater is an io.Writer that a Writer can cut back to its last whole
// record: an *os.File on a regular file.
type truncater interface {
	Truncate(size int64) error
	Seek(offset int64, whence int) (int64, error)
}

// NewWriter writes a pcap file header for packets of the given link type
// cut to snaplen bytes (DefaultSnaplen if snaplen is 0), and returns a
// Writer for the packets.
func NewWriter(w io.Writer, link packet.LinkType, snaplen int) (*Writer, error) {
	snaplen, err := checkSnaplen(snaplen, "pcap writer")
	if err != nil {
		return nil, err
	}
	pw := newWriter(w, FormatPcap, []Interface{{LinkType: link, Snaplen: snaplen}})
	h := pw.buf[:0]
	h = binary.LittleEndian.AppendUint32(h, magicNano)
	h = binary.LittleEndian.AppendUint16(h, 2) // version 2.4
	h = binary.LittleEndian.AppendUint16(h, 4)
	h = append(h, make([]byte, 8)...) // thiszone and sigfigs, both 0
	h = binary.LittleEndian.AppendUint32(h, uint32(snaplen))
	h = binary.LittleEndian.AppendUint32(h, uint32(link))
	if err := pw.writeHeader(h); err != nil {
		return nil, fmt.Errorf("pcap writer: write file header: %w", err)
	}
	return pw, nil
}

// checkSnaplen returns the snap length to write for snaplen: itself,
// or DefaultSnaplen for 0.
func checkSnaplen(snaplen int, who string) (int, error) {
	if snaplen == 0 {
		return DefaultSnaplen, nil
	}
	if snaplen < 0 || snaplen > wire.MaxSnapLen {
		return 0, fmt.Errorf("%s: snap length %d out of range: 1 to %d, or 0 for the default of %d", who, snaplen, wire.MaxSnapLen, DefaultSnaplen)
	}
	return snaplen, nil
}

// newWriter returns a Writer of format to w, and finds out whether w can
// be cut back.
func newWriter(w io.Writer, format Format, ifaces []Interface) *Writer {
	pw := &Writer{w: w, format: format, ifaces: ifaces, buf: make([]byte, 0, 4096)}
	if f, ok := w.(truncater); ok {
		if off, err := f.Seek(0, io.SeekCurrent); err == nil {
			pw.file, pw.start = f, off // not a pipe or a terminal
		}
	}
	return pw
}

// writeHeader writes out the file's header, h, which starts pw.buf.
func (pw *Writer) writeHeader(h []byte) error {
	pw.buf = h
	pw.ends = append(pw.ends[:0], len(h))
	if err := pw.Flush(); err != nil {
		return pw.err
	}
	return nil
}

// Format returns the format the Writer writes: FormatPcap or
// FormatPcapng.
func (pw *Writer) Format() Format { return pw.format }

// LinkType returns the link type of the file header or, for pcapng, of
// the first interface.
func (pw *Writer) LinkType() packet.LinkType { return pw.ifaces[0].LinkType }

// Snaplen returns the snap length of the file header or, for pcapng, of
// the first interface.
func (pw *Writer) Snaplen() int { return pw.ifaces[0].Snaplen }

// Interfaces returns the interfaces the file describes: the one of a pcap
// file header, or those NewNgWriter wrote, with their snap lengths. The
// caller must not modify it.
func (pw *Writer) Interfaces() []Interface { return pw.ifaces }

// SetBufferSize makes the Writer keep whole records until they make up
// n bytes, and then write them out with one Write; n = 0, the default,
// writes each record out as WritePacket is given it. It first writes out
// what the Writer holds. Flush writes out what is held at any time.
func (pw *Writer) SetBufferSize(n int) error {
	err := pw.Flush()
	pw.size = max(n, 0)
	return err
}

// Written returns how many bytes of whole records, file header included,
// the Writer has written out: the file is a valid capture up to there,
// counted from where the Writer began. It does not count what the Writer
// holds, nor the part of a record a failed Write took.
func (pw *Writer) Written() int64 { return pw.written }

// Flush writes out the records the Writer holds, with one Write, and
// returns the Writer's first write error if it ever had one.
func (pw *Writer) Flush() error {
	if pw.err != nil {
		return pw.err
	}
	if len(pw.buf) == 0 {
		return nil
	}
	n, err := pw.w.Write(pw.buf)
	if err == nil && n < len(pw.buf) {
		err = io.ErrShortWrite
	}
	if err != nil {
		return pw.fail(n, err)
	}
	pw.written += int64(n)
	pw.buf, pw.ends = pw.buf[:0], pw.ends[:0]
	return nil
}

// fail records the error of a Write that took n bytes of pw.buf, and cuts
// the file back to the last whole record it took, if it can.
func (pw *Writer) fail(n int, err error) error {
	whole := 0
	for _, end := range pw.ends {
		if end <= n {
			whole = end
		}
	}
	pw.written += int64(whole)
	pw.buf, pw.ends = pw.buf[:0], pw.ends[:0]
	what := pw.format.String() + " writer: "
	switch {
	case n == whole:
		pw.err = fmt.Errorf("%s%w (the file holds %d bytes of whole records)", what, err, pw.written)
	case pw.file == nil:
		pw.err = fmt.Errorf("%s%w (the file holds %d bytes of whole records and %d of a record cut short)", what, err, pw.written, n-whole)
	default:
		pw.err = pw.cutBack(what, n-whole, err)
	}
	return pw.err
}

// cutBack cuts the part of a record, part bytes, that a failed Write left
// at the end of pw.file, and returns the error to report for err. It cuts
// only a file as long as the Writer made it — not one opened to append to
// what it held, nor one someone else wrote to.
func (pw *Writer) cutBack(what string, part int, err error) error {
	end := pw.start + pw.written
	size, terr := pw.file.Seek(0, io.SeekEnd)
	if terr == nil && size != end+int64(part) {
		terr = fmt.Errorf("the file is %d bytes long, not the %d the Writer made it", size, end+int64(part))
	}
	if terr == nil {
		terr = pw.file.Truncate(end)
	}
	if terr == nil {
		_, terr = pw.file.Seek(end, io.SeekStart)
	}
	if terr != nil {
		return fmt.Errorf("%s%w (and cutting the %d bytes of a record cut short off the end failed: %v)", what, err, part, terr)
	}
	return fmt.Errorf("%s%w (the file was cut back to its last whole record, %d bytes)", what, err, pw.written)
}

// WritePacket writes one packet, data, of the first (for pcap, the only)
// interface, with what the kernel said about it: its time and its length
// on the wire (len(data) if info.Length is less), and for pcapng its
// direction. Like libpcap, it puts a VLAN tag the device removed
// (info.HasVLAN) back into the frame, so that the file holds the frame as
// it was on the wire: for LinkEthernet after the MAC addresses, for
// LinkLinuxSLL as the header's protocol, and for LinkLinuxSLL2, where
// libpcap drops it, as the header's protocol with the TCI and the
// original protocol after the header, which tcpdump and tshark decode as
// a tag. A nil info writes a zero time stamp and len(data). A packet
// longer than the snap length is cut to it. It does not allocate once its
// buffer has grown to the largest record.
//
// A time before 1970, or after 2106 in a pcap file (2554 in pcapng), is
// an error for that packet only; a write error is sticky (see Writer).
func (pw *Writer) WritePacket(data []byte, info *packet.Info) error {
	return pw.WriteInterfacePacket(0, data, info)
}

// WriteInterfacePacket writes a packet, as WritePacket does, of the
// interface iface, an index into the interfaces NewNgWriter was given. A
// pcap file has only interface 0.
func (pw *Writer) WriteInterfacePacket(iface int, data []byte, info *packet.Info) error {
	if pw.err != nil {
		return pw.err
	}
	if iface < 0 || iface >= len(pw.ifaces) {
		return fmt.Errorf("%s writer: interface %d out of range: the file describes %d", pw.format, iface, len(pw.ifaces))
	}
	if info == nil {
		info = &packet.Info{}
	}
	sec, nsec, err := pw.timeOf(info.Time)
	if err != nil {
		return err
	}
	if pw.format == FormatPcapng {
		pw.buf = pw.appendEPB(pw.buf, iface, data, info, sec, nsec)
	} else {
		pw.buf = pw.appendRecord(pw.buf, data, info, sec, nsec)
	}
	pw.ends = append(pw.ends, len(pw.buf))
	if len(pw.buf) >= pw.size {
		return pw.Flush()
	}
	return nil
}

// timeOf returns t's seconds and nanoseconds since 1970, if the format can
// hold them.
func (pw *Writer) timeOf(t time.Time) (sec int64, nsec int, err error) {
	if t.IsZero() {
		return 0, 0, nil
	}
	sec, nsec = t.Unix(), t.Nanosecond()
	limit := int64(math.MaxUint32) // pcap: 32-bit seconds
	if pw.format == FormatPcapng {
		limit = int64(uint64(math.MaxUint64)/1e9 - 1) // 64-bit nanoseconds
	}
	if sec < 0 || sec > limit {
		return 0, 0, errors.New(pw.format.String() + " writer: time " + t.String() + " outside the range of " + pw.format.String() + " time stamps (1970 to " + strconv.Itoa(time.Unix(limit, 0).UTC().Year()) + ")")
	}
	return sec, nsec, nil
}

// appendRecord appends a pcap record of data to b.
func (pw *Writer) appendRecord(b, data []byte, info *packet.Info, sec int64, nsec int) []byte {
	start := len(b)
	b = append(b, make([]byte, recordHdrLen)...)
	b, capLen, wireLen := appendFrame(b, data, info, pw.ifaces[0])
	h := b[start : start+recordHdrLen]
	binary.LittleEndian.PutUint32(h[0:4], uint32(sec))
	binary.LittleEndian.PutUint32(h[4:8], uint32(nsec))
	binary.LittleEndian.PutUint32(h[8:12], uint32(capLen))
	binary.LittleEndian.PutUint32(h[12:16], uint32(min(uint64(wireLen), math.MaxUint32)))
	return b
}

// appendFrame appends data to b as the file is to hold it, with a VLAN tag
// the device removed put back and cut to the interface's snap length, and
// returns the bytes appended and the length on the wire.
func appendFrame(b, data []byte, info *packet.Info, iface Interface) (_ []byte, capLen, wireLen int) {
	start := len(b)
	wireLen = max(info.Length, len(data))
	tpid := info.VLANTPID
	if tpid == 0 {
		tpid = wire.EtherTypeVLAN
	}
	switch {
	case !info.HasVLAN:
		b = append(b, data...)
	case iface.LinkType == packet.LinkEthernet && len(data) >= 2*6,
		iface.LinkType == packet.LinkLinuxSLL && len(data) >= packet.SLLHeaderLen:
		// The tag goes where the EtherType was, which follows it.
		at := 2 * 6
		if iface.LinkType == packet.LinkLinuxSLL {
			at = packet.SLLHeaderLen - 2
		}
		b = append(b, data[:at]...)
		b = binary.BigEndian.AppendUint16(b, tpid)
		b = binary.BigEndian.AppendUint16(b, info.VLANTCI)
		b = append(b, data[at:]...)
		wireLen += wire.VLANTagLen
	case iface.LinkType == packet.LinkLinuxSLL2 && len(data) >= packet.SLL2HeaderLen:
		// The protocol leads the header: the TPID takes its place, and
		// the TCI and the protocol follow the header.
		b = binary.BigEndian.AppendUint16(b, tpid)
		b = append(b, data[2:packet.SLL2HeaderLen]...)
		b = binary.BigEndian.AppendUint16(b, info.VLANTCI)
		b = append(b, data[0:2]...)
		b = append(b, data[packet.SLL2HeaderLen:]...)
		wireLen += wire.VLANTagLen
	default:
		b = append(b, data...)
	}
	capLen = min(len(b)-start, iface.Snaplen)
	return b[:start+capLen], capLen, wireLen
}
