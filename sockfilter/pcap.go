package sockfilter

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"
)

// The pcap file format is described in draft-ietf-opsawg-pcap and in
// pcap-savefile(5): a 24-byte file header, then for each packet a 16-byte
// record header and the captured bytes.
const (
	pcapMagicMicro   = 0xa1b2c3d4 // timestamps in microseconds
	pcapMagicNano    = 0xa1b23c4d // timestamps in nanoseconds
	pcapngMagic      = 0x0a0d0d0a // a pcapng Section Header Block
	pcapFileHdrLen   = 24
	pcapRecordHdrLen = 16

	// DefaultSnaplen is the snap length NewPcapWriter writes when given
	// 0: tcpdump's default, 262144 bytes.
	DefaultSnaplen = 262144

	// pcapMaxCapLen bounds a record's captured length, whatever the file
	// header's snap length says, so that a corrupt length cannot make the
	// reader allocate gigabytes. libpcap's largest per-link-type maximum
	// is the same 256 KiB.
	pcapMaxCapLen = 262144
)

// PcapWriter writes frames to a pcap capture file with nanosecond
// timestamps (magic 0xa1b23c4d, version 2.4), in little-endian byte order,
// that tcpdump -r, tshark and libpcap read. It writes straight to the
// io.Writer it was given, two or three Write calls a frame: give it a
// *bufio.Writer, and flush that when done, to write a file efficiently.
type PcapWriter struct {
	w       io.Writer
	snaplen int
	link    LinkType
	hdr     [pcapRecordHdrLen + 4]byte // record header, then a VLAN tag
}

// NewPcapWriter writes a pcap file header for frames of the given link
// type cut to snaplen bytes (DefaultSnaplen if snaplen is 0), and returns
// a PcapWriter for the frames.
func NewPcapWriter(w io.Writer, link LinkType, snaplen int) (*PcapWriter, error) {
	if snaplen == 0 {
		snaplen = DefaultSnaplen
	}
	if snaplen < 0 || snaplen > pcapMaxCapLen {
		return nil, fmt.Errorf("pcap writer: snap length %d out of range: 1 to %d, or 0 for the default of %d", snaplen, pcapMaxCapLen, DefaultSnaplen)
	}
	var h [pcapFileHdrLen]byte
	binary.LittleEndian.PutUint32(h[0:4], pcapMagicNano)
	binary.LittleEndian.PutUint16(h[4:6], 2) // version 2.4
	binary.LittleEndian.PutUint16(h[6:8], 4)
	// h[8:16]: thiszone and sigfigs, both 0.
	binary.LittleEndian.PutUint32(h[16:20], uint32(snaplen))
	binary.LittleEndian.PutUint32(h[20:24], uint32(link))
	if _, err := w.Write(h[:]); err != nil {
		return nil, fmt.Errorf("pcap writer: write file header: %w", err)
	}
	return &PcapWriter{w: w, snaplen: snaplen, link: link}, nil
}

// WritePacket writes one frame captured at t that was wireLen bytes long
// on the wire (len(frame) if wireLen is less). A frame longer than the
// snap length is cut to it. It does not allocate.
func (pw *PcapWriter) WritePacket(t time.Time, frame []byte, wireLen int) error {
	return pw.write(t, frame, wireLen, nil)
}

// WriteFrame writes a frame with what the kernel said about it, as a Conn
// reads it: its time and wire length, and, like libpcap, for LinkEthernet
// frames it puts back a VLAN tag the device removed (info.HasVLAN) after
// the MAC addresses, so the file holds the frame as it was on the wire.
func (pw *PcapWriter) WriteFrame(info FrameInfo, frame []byte) error {
	return pw.writeFrame(&info, frame) // small enough to inline: no copy of info
}

func (pw *PcapWriter) writeFrame(info *FrameInfo, frame []byte) error {
	if info.HasVLAN && pw.link == LinkEthernet && len(frame) >= 12 {
		tpid := info.VLANTPID
		if tpid == 0 {
			tpid = etherTypeVLAN
		}
		var tag [4]byte
		binary.BigEndian.PutUint16(tag[0:2], tpid)
		binary.BigEndian.PutUint16(tag[2:4], info.VLANTCI)
		return pw.write(info.Time, frame, info.Length+4, tag[:])
	}
	return pw.write(info.Time, frame, info.Length, nil)
}

// write writes a record for frame, with tag (4 bytes or none) inserted
// after its first 12 bytes.
func (pw *PcapWriter) write(t time.Time, frame []byte, wireLen int, tag []byte) error {
	sec := t.Unix()
	if sec < 0 || sec > 1<<32-1 {
		return fmt.Errorf("pcap writer: time %v outside the range of pcap timestamps (1970 to 2106)", t)
	}
	total := len(frame) + len(tag)
	if wireLen < total {
		wireLen = total
	}
	capLen := min(total, pw.snaplen)
	binary.LittleEndian.PutUint32(pw.hdr[0:4], uint32(sec))
	binary.LittleEndian.PutUint32(pw.hdr[4:8], uint32(t.Nanosecond()))
	binary.LittleEndian.PutUint32(pw.hdr[8:12], uint32(capLen))
	binary.LittleEndian.PutUint32(pw.hdr[12:16], uint32(min(uint64(wireLen), math.MaxUint32)))
	hdr := pw.hdr[:pcapRecordHdrLen]
	if tag != nil {
		// Header, then the MAC addresses, then the tag and the rest.
		if _, err := pw.w.Write(hdr); err != nil {
			return fmt.Errorf("pcap writer: %w", err)
		}
		n := min(12, capLen)
		if _, err := pw.w.Write(frame[:n]); err != nil {
			return fmt.Errorf("pcap writer: %w", err)
		}
		capLen -= n
		hdr = pw.hdr[pcapRecordHdrLen : pcapRecordHdrLen+min(4, capLen)]
		copy(hdr, tag)
		capLen -= len(hdr)
		frame = frame[n:]
	}
	if _, err := pw.w.Write(hdr); err != nil {
		return fmt.Errorf("pcap writer: %w", err)
	}
	if _, err := pw.w.Write(frame[:capLen]); err != nil {
		return fmt.Errorf("pcap writer: %w", err)
	}
	return nil
}

// PcapReader reads frames from a pcap capture file: microsecond (magic
// 0xa1b2c3d4) or nanosecond (0xa1b23c4d) timestamps, in either byte
// order. It does not read pcapng files; convert those with
// `editcap -F pcap in.pcapng out.pcap`.
type PcapReader struct {
	r       io.Reader
	order   binary.ByteOrder
	nano    bool
	snaplen int
	link    LinkType
	rawLink uint32
	n       int   // packets read
	off     int64 // file offset of the next record
	hdr     [pcapRecordHdrLen]byte
}

// NewPcapReader reads the pcap file header from r and returns a
// PcapReader for its packets.
func NewPcapReader(r io.Reader) (*PcapReader, error) {
	var h [pcapFileHdrLen]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("pcap reader: empty file, not a pcap file")
		}
		return nil, fmt.Errorf("pcap reader: read file header: %w", err)
	}
	pr := &PcapReader{r: r, off: pcapFileHdrLen}
	switch binary.LittleEndian.Uint32(h[0:4]) {
	case pcapMagicMicro:
		pr.order = binary.LittleEndian
	case pcapMagicNano:
		pr.order, pr.nano = binary.LittleEndian, true
	default:
		switch binary.BigEndian.Uint32(h[0:4]) {
		case pcapMagicMicro:
			pr.order = binary.BigEndian
		case pcapMagicNano:
			pr.order, pr.nano = binary.BigEndian, true
		case pcapngMagic:
			return nil, errors.New("pcap reader: a pcapng file, which is not supported: convert it with `editcap -F pcap in.pcapng out.pcap`")
		default:
			return nil, fmt.Errorf("pcap reader: bad magic number %#08x, not a pcap file", binary.BigEndian.Uint32(h[0:4]))
		}
	}
	if major := pr.order.Uint16(h[4:6]); major != 2 {
		return nil, fmt.Errorf("pcap reader: unsupported file format version %d.%d", major, pr.order.Uint16(h[6:8]))
	}
	pr.snaplen = int(pr.order.Uint32(h[16:20]))
	// The link type is the low 16 bits; the upper ones may describe an
	// FCS (pcap-savefile(5)).
	pr.rawLink = pr.order.Uint32(h[20:24])
	pr.link = linkTypeFromPcap(uint16(pr.rawLink))
	return pr, nil
}

// linkTypeFromPcap maps a pcap LINKTYPE_ value to a LinkType: raw IP has
// several numbers in the wild.
func linkTypeFromPcap(l uint16) LinkType {
	switch l {
	case 1: // LINKTYPE_ETHERNET
		return LinkEthernet
	case 101, // LINKTYPE_RAW
		12,       // DLT_RAW on most platforms, found in old files
		14,       // DLT_RAW on OpenBSD
		228, 229: // LINKTYPE_IPV4, LINKTYPE_IPV6
		return LinkRawIP
	}
	return LinkType(l)
}

// LinkType returns the file's link type: LinkEthernet, LinkRawIP (for
// LINKTYPE_RAW, DLT_RAW 12 and 14, LINKTYPE_IPV4 and LINKTYPE_IPV6), or
// else the header's LINKTYPE_ number, which ParseFrame rejects.
func (pr *PcapReader) LinkType() LinkType { return pr.link }

// Snaplen returns the snap length the file header gives.
func (pr *PcapReader) Snaplen() int { return pr.snaplen }

// Nanosecond reports whether the file's timestamps have nanosecond
// resolution (magic 0xa1b23c4d) rather than microsecond.
func (pr *PcapReader) Nanosecond() bool { return pr.nano }

// ReadPacket reads the next packet's bytes into buf and returns them —
// buf[:n] when buf's capacity holds them, a new, larger slice otherwise —
// with info's Time and Length (the length on the wire) set; the other
// fields of info are zero. Pass the returned slice back in to read a
// file without allocating:
//
//	var buf []byte
//	for {
//		var info FrameInfo
//		buf, info, err = pr.ReadPacket(buf)
//		if err == io.EOF { break }
//		...
//		err = ParseFrameInfo(buf, pr.LinkType(), info, &rec)
//	}
//
// At the end of the file it returns io.EOF. A record cut short returns an
// error wrapping io.ErrUnexpectedEOF, and one with an impossible length
// an error saying which packet and where.
func (pr *PcapReader) ReadPacket(buf []byte) ([]byte, FrameInfo, error) {
	if _, err := io.ReadFull(pr.r, pr.hdr[:]); err != nil {
		if err == io.EOF {
			return buf[:0], FrameInfo{}, io.EOF
		}
		return buf[:0], FrameInfo{}, pr.errorf("read record header: %w", err)
	}
	h := &pr.hdr
	sec := pr.order.Uint32(h[0:4])
	frac := pr.order.Uint32(h[4:8])
	capLen := pr.order.Uint32(h[8:12])
	wireLen := pr.order.Uint32(h[12:16])
	if capLen > pcapMaxCapLen {
		return buf[:0], FrameInfo{}, pr.errorf("captured length %d exceeds the maximum of %d: corrupt file", capLen, pcapMaxCapLen)
	}
	// A record longer than the file's snap length is cut to it and the
	// rest skipped, as libpcap does for files some old capture tools
	// wrote that way.
	skip := 0
	if pr.snaplen > 0 && int(capLen) > pr.snaplen {
		skip = int(capLen) - pr.snaplen
		capLen = uint32(pr.snaplen)
	}
	if wireLen < capLen {
		wireLen = capLen
	}
	if cap(buf) < int(capLen) {
		buf = make([]byte, capLen, max(int(capLen), 2048))
	}
	buf = buf[:capLen]
	if _, err := io.ReadFull(pr.r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return buf[:0], FrameInfo{}, pr.errorf("read %d bytes of packet data: %w", int(capLen)+skip, err)
	}
	if skip > 0 {
		if _, err := io.CopyN(io.Discard, pr.r, int64(skip)); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return buf[:0], FrameInfo{}, pr.errorf("read %d bytes of packet data: %w", int(capLen)+skip, err)
		}
	}
	ns := int64(frac)
	if !pr.nano {
		ns *= 1000
	}
	pr.n++
	pr.off += pcapRecordHdrLen + int64(capLen) + int64(skip)
	return buf, FrameInfo{Time: time.Unix(int64(sec), ns), Length: int(wireLen)}, nil
}

// errorf returns an error about the record being read, naming it by number
// (from 1) and file offset.
func (pr *PcapReader) errorf(format string, args ...any) error {
	return fmt.Errorf("pcap reader: packet "+strconv.Itoa(pr.n+1)+" at offset "+strconv.FormatInt(pr.off, 10)+": "+format, args...)
}
