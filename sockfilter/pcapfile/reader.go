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

// Reader reads packets from a capture file: a pcap file with microsecond
// (magic 0xa1b2c3d4) or nanosecond (0xa1b23c4d) time stamps, or a pcapng
// file, in either byte order.
//
// Of a pcapng file it reads every section (each Section Header Block, in
// its own byte order), the Interface Description Blocks with their name,
// link type, snap length and time stamp resolution and offset (if_tsresol,
// if_tsoffset), and the packets of Enhanced, Simple and (obsolete) Packet
// Blocks, with an Enhanced Packet Block's direction flag; it skips every
// other block, and options it does not use. Each packet has an interface,
// whose link type may differ from another's: see Interface.
type Reader struct {
	r       io.Reader
	format  Format
	order   binary.ByteOrder
	nano    bool  // pcap: nanosecond time stamps
	n       int   // packets read
	off     int64 // file offset of the next record or block
	ifaces  []Interface
	cur     int      // interface of the last packet read
	hdr     [24]byte // a record or block header being read: a field, so that it does not escape to the heap each time
	scratch []byte   // for discard
	ng      ngReader
	pending error // pcapng: an error found looking for the first interface, for ReadPacket
}

// NewReader reads the file header of a pcap file, or the Section Header
// Block of a pcapng file and the blocks up to its first packet, from r
// and returns a Reader for its packets. The first four bytes tell the
// formats apart, so a caller need not know which it has.
func NewReader(r io.Reader) (*Reader, error) {
	var magic [4]byte
	if _, err := io.ReadFull(r, magic[:]); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("pcap reader: empty file, not a pcap or pcapng file")
		}
		return nil, fmt.Errorf("pcap reader: read file header: %w", err)
	}
	pr := &Reader{r: r}
	if binary.BigEndian.Uint32(magic[:]) == blockSHB {
		return pr, pr.ngStart()
	}
	return pr, pr.pcapStart(magic)
}

// pcapStart reads the rest of a pcap file header, after its magic.
func (pr *Reader) pcapStart(magic [4]byte) error {
	var h [fileHdrLen]byte
	copy(h[:], magic[:])
	if _, err := io.ReadFull(pr.r, h[4:]); err != nil {
		return fmt.Errorf("pcap reader: read file header: %w", unexpected(err))
	}
	pr.off = fileHdrLen
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
		default:
			return fmt.Errorf("pcap reader: bad magic number %#08x, not a pcap or pcapng file", binary.BigEndian.Uint32(h[0:4]))
		}
	}
	if major := pr.order.Uint16(h[4:6]); major != 2 {
		return fmt.Errorf("pcap reader: unsupported file format version %d.%d", major, pr.order.Uint16(h[6:8]))
	}
	// The link type is the low 16 bits; the upper ones may describe an
	// FCS (pcap-savefile(5)).
	pr.ifaces = []Interface{{
		LinkType: linkTypeFromPcap(uint16(pr.order.Uint32(h[20:24]))),
		Snaplen:  int(min(pr.order.Uint32(h[16:20]), math.MaxInt32)),
	}}
	return nil
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
	case 113: // LINKTYPE_LINUX_SLL
		return packet.LinkLinuxSLL
	case 276: // LINKTYPE_LINUX_SLL2
		return packet.LinkLinuxSLL2
	}
	return packet.LinkType(l)
}

// Format returns the file's format: FormatPcap or FormatPcapng.
func (pr *Reader) Format() Format { return pr.format }

// LinkType returns the link type of the file's packets: LinkEthernet,
// LinkRawIP (for LINKTYPE_RAW, DLT_RAW 12 and 14, LINKTYPE_IPV4 and
// LINKTYPE_IPV6), LinkLinuxSLL, LinkLinuxSLL2, or else the LINKTYPE_
// number, which packet.Parse rejects. For a pcapng file it is the first
// interface's (0 if the file describes none before its first packet):
// when interfaces differ, ask Interface for each packet's.
func (pr *Reader) LinkType() packet.LinkType {
	if len(pr.ifaces) == 0 {
		return pr.ng.firstLink
	}
	return pr.ifaces[0].LinkType
}

// Snaplen returns the snap length the file header gives, or the first
// interface's of a pcapng file (0 there means no limit).
func (pr *Reader) Snaplen() int {
	if len(pr.ifaces) == 0 {
		return 0
	}
	return pr.ifaces[0].Snaplen
}

// Nanosecond reports whether the file's time stamps have nanosecond
// resolution (pcap magic 0xa1b23c4d) rather than microsecond; for a
// pcapng file, whether the first interface's if_tsresol is finer than
// microseconds.
func (pr *Reader) Nanosecond() bool {
	if pr.format == FormatPcapng {
		return len(pr.ng.times) > 0 && pr.ng.times[0].unitsPerSec > 1e6
	}
	return pr.nano
}

// Interface returns the interface of the packet ReadPacket last returned:
// its ID, the index of its description among the section's interfaces
// (0 in a pcap file), and the description, with its link type — the
// packet's — and its name. A pcapng interface ID is not an interface
// index (packet.Info.Ifindex): a file does not record that.
func (pr *Reader) Interface() (id int, iface Interface) {
	if pr.cur >= len(pr.ifaces) {
		return pr.cur, Interface{}
	}
	return pr.cur, pr.ifaces[pr.cur]
}

// Interfaces returns the interfaces described so far in the current
// section: the one of a pcap file; those of the pcapng Interface
// Description Blocks read, by ID. The caller must not modify it.
func (pr *Reader) Interfaces() []Interface { return pr.ifaces }

// ReadPacket reads the next packet's bytes into buf and returns them —
// buf[:n] when buf's capacity holds them, a new, larger slice otherwise —
// and sets info to what the file says of the packet: its Time (zero for
// a pcapng Simple Packet Block, which has none) and Length (on the wire),
// and for a pcapng packet with the epb_flags option its Direction; the
// other fields zero. Pass the returned slice back in to
// read a file without allocating:
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
//		_, iface := r.Interface() // a pcapng file's interfaces may differ
//		err = packet.Parse(buf, iface.LinkType, &info, &rec)
//	}
//
// At the end of the file it returns io.EOF. A record or block cut short
// returns an error wrapping io.ErrUnexpectedEOF, and one with an
// impossible length an error saying which packet or block and where; a
// block longer than 16 MiB is refused, so a corrupt file cannot make the
// Reader allocate much. A packet longer than its interface's snap length
// is cut to it, and the rest skipped, as libpcap does for files some old
// capture tools wrote that way.
func (pr *Reader) ReadPacket(buf []byte, info *packet.Info) ([]byte, error) {
	*info = packet.Info{}
	if pr.format == FormatPcapng {
		return pr.ngReadPacket(buf, info)
	}
	h := pr.hdr[:recordHdrLen]
	if _, err := io.ReadFull(pr.r, h); err != nil {
		if err == io.EOF {
			return buf[:0], io.EOF
		}
		return buf[:0], pr.errorf("read record header: %w", err)
	}
	sec := pr.order.Uint32(h[0:4])
	frac := pr.order.Uint32(h[4:8])
	capLen := pr.order.Uint32(h[8:12])
	wireLen := pr.order.Uint32(h[12:16])
	buf, skip, err := pr.readData(buf, int64(capLen), pr.ifaces[0].Snaplen)
	if err != nil {
		return buf[:0], err
	}
	ns := int64(frac)
	if !pr.nano {
		ns *= 1000
	}
	pr.n++
	pr.off += recordHdrLen + int64(capLen)
	info.Time = time.Unix(int64(sec), ns)
	info.Length = max(int(wireLen), len(buf)+skip)
	return buf, nil
}

// readData reads a packet's capLen bytes into buf, the first snaplen of
// them if snaplen is not 0 and less, and skips the rest, which it counts.
func (pr *Reader) readData(buf []byte, capLen int64, snaplen int) ([]byte, int, error) {
	if capLen > wire.MaxSnapLen {
		return buf, 0, pr.errorf("captured length %d exceeds the maximum of %d: corrupt file", capLen, wire.MaxSnapLen)
	}
	keep := int(capLen)
	if snaplen > 0 && keep > snaplen {
		keep = snaplen
	}
	if cap(buf) < keep {
		buf = make([]byte, keep, max(keep, 2048))
	}
	buf = buf[:keep]
	if _, err := io.ReadFull(pr.r, buf); err != nil {
		return buf, 0, pr.errorf("read %d bytes of packet data: %w", capLen, unexpected(err))
	}
	skip := int(capLen) - keep
	if err := pr.discard(int64(skip)); err != nil {
		return buf, 0, pr.errorf("read %d bytes of packet data: %w", capLen, err)
	}
	return buf, skip, nil
}

// discard reads and drops n bytes into a buffer it allocates once (where
// io.CopyN would allocate its LimitedReader every time). An end of file
// before them is io.ErrUnexpectedEOF.
func (pr *Reader) discard(n int64) error {
	if n > 0 && pr.scratch == nil {
		pr.scratch = make([]byte, 4096)
	}
	for n > 0 {
		m, err := io.ReadFull(pr.r, pr.scratch[:min(n, int64(len(pr.scratch)))])
		n -= int64(m)
		if err != nil {
			return unexpected(err)
		}
	}
	return nil
}

// unexpected turns io.EOF in the middle of a record into
// io.ErrUnexpectedEOF.
func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// errorf returns an error about the record or block being read, naming
// it by number (from 1) and file offset.
func (pr *Reader) errorf(format string, args ...any) error {
	if pr.format == FormatPcapng {
		return fmt.Errorf("pcapng reader: block "+strconv.Itoa(pr.ng.blocks+1)+" at offset "+strconv.FormatInt(pr.off, 10)+": "+format, args...)
	}
	return fmt.Errorf("pcap reader: packet "+strconv.Itoa(pr.n+1)+" at offset "+strconv.FormatInt(pr.off, 10)+": "+format, args...)
}
