package pcapfile

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/purebpf/purebpf/internal/wire"
	"github.com/purebpf/purebpf/sockfilter/packet"
)

// Reader reads packets from a pcap capture file: microsecond (magic
// 0xa1b2c3d4) or nanosecond (0xa1b23c4d) time stamps, in either byte
// order. It does not read pcapng files; convert those with
// `editcap -F pcap in.pcapng out.pcap`.
type Reader struct {
	r       io.Reader
	order   binary.ByteOrder
	nano    bool
	snaplen int
	link    packet.LinkType
	n       int   // packets read
	off     int64 // file offset of the next record
	hdr     [recordHdrLen]byte
}

// NewReader reads the pcap file header from r and returns a Reader for
// its packets.
func NewReader(r io.Reader) (*Reader, error) {
	var h [fileHdrLen]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("pcap reader: empty file, not a pcap file")
		}
		return nil, fmt.Errorf("pcap reader: read file header: %w", err)
	}
	pr := &Reader{r: r, off: fileHdrLen}
	switch binary.LittleEndian.Uint32(h[0:4]) {
	case magicMicro:
		pr.order = binary.LittleEndian
	case magicNano:
		pr.order, pr.nano = binary.LittleEndian, true
	default:
		switch binary.BigEndian.Uint32(h[0:4]) {
		case magicMicro:
			pr.order = binary.BigEndian
		case magicNano:
			pr.order, pr.nano = binary.BigEndian, true
		case magicPcapng:
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
	pr.link = linkTypeFromPcap(uint16(pr.order.Uint32(h[20:24])))
	return pr, nil
}

// linkTypeFromPcap maps a pcap LINKTYPE_ value to a LinkType: raw IP has
// several numbers in the wild.
func linkTypeFromPcap(l uint16) packet.LinkType {
	switch l {
	case 1: // LINKTYPE_ETHERNET
		return packet.LinkEthernet
	case 101, // LINKTYPE_RAW
		12,       // DLT_RAW on most platforms, found in old files
		14,       // DLT_RAW on OpenBSD
		228, 229: // LINKTYPE_IPV4, LINKTYPE_IPV6
		return packet.LinkRawIP
	}
	return packet.LinkType(l)
}

// LinkType returns the file's link type: LinkEthernet, LinkRawIP (for
// LINKTYPE_RAW, DLT_RAW 12 and 14, LINKTYPE_IPV4 and LINKTYPE_IPV6), or
// else the header's LINKTYPE_ number, which packet.Parse rejects.
func (pr *Reader) LinkType() packet.LinkType { return pr.link }

// Snaplen returns the snap length the file header gives.
func (pr *Reader) Snaplen() int { return pr.snaplen }

// Nanosecond reports whether the file's timestamps have nanosecond
// resolution (magic 0xa1b23c4d) rather than microsecond.
func (pr *Reader) Nanosecond() bool { return pr.nano }

// ReadPacket reads the next packet's bytes into buf and returns them —
// buf[:n] when buf's capacity holds them, a new, larger slice otherwise —
// and sets info to what the file says of the packet: its Time and Length
// (on the wire), the other fields zero. Pass the returned slice back in
// to read a file without allocating:
//
//	var (
//		buf  []byte
//		info packet.Info
//	)
//	for {
//		buf, err = r.ReadPacket(buf, &info)
//		if err == io.EOF {
//			break
//		}
//		...
//		err = packet.Parse(buf, r.LinkType(), &info, &rec)
//	}
//
// At the end of the file it returns io.EOF. A record cut short returns an
// error wrapping io.ErrUnexpectedEOF, and one with an impossible length an
// error saying which packet and where. A record longer than the file's
// snap length is cut to it, and the rest skipped, as libpcap does for
// files some old capture tools wrote that way.
func (pr *Reader) ReadPacket(buf []byte, info *packet.Info) ([]byte, error) {
	*info = packet.Info{}
	if _, err := io.ReadFull(pr.r, pr.hdr[:]); err != nil {
		if err == io.EOF {
			return buf[:0], io.EOF
		}
		return buf[:0], pr.errorf("read record header: %w", err)
	}
	h := &pr.hdr
	sec := pr.order.Uint32(h[0:4])
	frac := pr.order.Uint32(h[4:8])
	capLen := pr.order.Uint32(h[8:12])
	wireLen := pr.order.Uint32(h[12:16])
	if capLen > wire.MaxSnapLen {
		return buf[:0], pr.errorf("captured length %d exceeds the maximum of %d: corrupt file", capLen, wire.MaxSnapLen)
	}
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
		return buf[:0], pr.errorf("read %d bytes of packet data: %w", int(capLen)+skip, unexpected(err))
	}
	if skip > 0 {
		if _, err := io.CopyN(io.Discard, pr.r, int64(skip)); err != nil {
			return buf[:0], pr.errorf("read %d bytes of packet data: %w", int(capLen)+skip, unexpected(err))
		}
	}
	ns := int64(frac)
	if !pr.nano {
		ns *= 1000
	}
	pr.n++
	pr.off += recordHdrLen + int64(capLen) + int64(skip)
	info.Time = time.Unix(int64(sec), ns)
	info.Length = int(wireLen)
	return buf, nil
}

// unexpected turns io.EOF in the middle of a record into
// io.ErrUnexpectedEOF.
func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// errorf returns an error about the record being read, naming it by number
// (from 1) and file offset.
func (pr *Reader) errorf(format string, args ...any) error {
	return fmt.Errorf("pcap reader: packet "+strconv.Itoa(pr.n+1)+" at offset "+strconv.FormatInt(pr.off, 10)+": "+format, args...)
}
