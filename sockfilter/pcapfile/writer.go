package pcapfile

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"

	"github.com/purebpf/purebpf/internal/wire"
	"github.com/purebpf/purebpf/sockfilter/packet"
)

// The pcap format's numbers.
const (
	magicMicro   = 0xa1b2c3d4 // timestamps in microseconds
	magicNano    = 0xa1b23c4d // timestamps in nanoseconds
	magicPcapng  = 0x0a0d0d0a // a pcapng Section Header Block
	fileHdrLen   = 24
	recordHdrLen = 16
)

// DefaultSnaplen is the snap length NewWriter writes when given 0, and the
// largest it takes: tcpdump's default, 262144 bytes.
const DefaultSnaplen = wire.MaxSnapLen

// Writer writes packets to a pcap file with nanosecond time stamps (magic
// 0xa1b23c4d, version 2.4) in little-endian byte order, which tcpdump -r,
// tshark and libpcap read.
//
// It writes straight to the io.Writer it was given, two or three Write
// calls a packet: give it a *bufio.Writer, and flush that when done, to
// write a file efficiently. Once a Write fails, or writes less than it was
// given, WritePacket returns that error, and every later WritePacket
// returns it again without writing anything: the file then holds the
// records written before the failure, and perhaps part of the one that
// failed, which readers report as a truncated record at the end.
type Writer struct {
	w       io.Writer
	snaplen int
	link    packet.LinkType
	err     error                   // the first write error, sticky
	hdr     [recordHdrLen + 4]byte // record header, then a VLAN tag
}

// NewWriter writes a pcap file header for packets of the given link type
// cut to snaplen bytes (DefaultSnaplen if snaplen is 0), and returns a
// Writer for the packets.
func NewWriter(w io.Writer, link packet.LinkType, snaplen int) (*Writer, error) {
	if snaplen == 0 {
		snaplen = DefaultSnaplen
	}
	if snaplen < 0 || snaplen > wire.MaxSnapLen {
		return nil, fmt.Errorf("pcap writer: snap length %d out of range: 1 to %d, or 0 for the default of %d", snaplen, wire.MaxSnapLen, DefaultSnaplen)
	}
	var h [fileHdrLen]byte
	binary.LittleEndian.PutUint32(h[0:4], magicNano)
	binary.LittleEndian.PutUint16(h[4:6], 2) // version 2.4
	binary.LittleEndian.PutUint16(h[6:8], 4)
	// h[8:16]: thiszone and sigfigs, both 0.
	binary.LittleEndian.PutUint32(h[16:20], uint32(snaplen))
	binary.LittleEndian.PutUint32(h[20:24], uint32(link))
	if err := writeAll(w, h[:]); err != nil {
		return nil, fmt.Errorf("pcap writer: write file header: %w", err)
	}
	return &Writer{w: w, snaplen: snaplen, link: link}, nil
}

// LinkType returns the link type the file header gives.
func (pw *Writer) LinkType() packet.LinkType { return pw.link }

// Snaplen returns the snap length the file header gives.
func (pw *Writer) Snaplen() int { return pw.snaplen }

// WritePacket writes one packet, data, with what the kernel said about it:
// its time and its length on the wire (len(data) if info.Length is less).
// Like libpcap, for LinkEthernet packets it puts a VLAN tag the device
// removed (info.HasVLAN) back after the MAC addresses, so that the file
// holds the frame as it was on the wire. A nil info writes a zero time
// stamp and len(data). A packet longer than the snap length is cut to it.
// It does not allocate.
func (pw *Writer) WritePacket(data []byte, info *packet.Info) error {
	if pw.err != nil {
		return pw.err
	}
	if info == nil {
		info = &packet.Info{}
	}
	if info.HasVLAN && pw.link == packet.LinkEthernet && len(data) >= 2*6 {
		tpid := info.VLANTPID
		if tpid == 0 {
			tpid = wire.EtherTypeVLAN
		}
		var tag [wire.VLANTagLen]byte
		binary.BigEndian.PutUint16(tag[0:2], tpid)
		binary.BigEndian.PutUint16(tag[2:4], info.VLANTCI)
		return pw.write(info, data, info.Length+wire.VLANTagLen, tag[:])
	}
	return pw.write(info, data, info.Length, nil)
}

// write writes a record for data, with tag (4 bytes or none) inserted
// after its first 12 bytes.
func (pw *Writer) write(info *packet.Info, data []byte, wireLen int, tag []byte) error {
	sec, nsec := int64(0), 0
	if !info.Time.IsZero() {
		sec, nsec = info.Time.Unix(), info.Time.Nanosecond()
	}
	if sec < 0 || sec > math.MaxUint32 {
		return fmt.Errorf("pcap writer: time %v outside the range of pcap timestamps (1970 to 2106)", info.Time)
	}
	total := len(data) + len(tag)
	if wireLen < total {
		wireLen = total
	}
	capLen := min(total, pw.snaplen)
	binary.LittleEndian.PutUint32(pw.hdr[0:4], uint32(sec))
	binary.LittleEndian.PutUint32(pw.hdr[4:8], uint32(nsec))
	binary.LittleEndian.PutUint32(pw.hdr[8:12], uint32(capLen))
	binary.LittleEndian.PutUint32(pw.hdr[12:16], uint32(min(uint64(wireLen), math.MaxUint32)))
	hdr := pw.hdr[:recordHdrLen]
	if tag != nil {
		// Header, then the MAC addresses, then the tag and the rest.
		n := min(2*6, capLen)
		if err := pw.writeAll(hdr, data[:n]); err != nil {
			return err
		}
		capLen -= n
		hdr = pw.hdr[recordHdrLen : recordHdrLen+min(wire.VLANTagLen, capLen)]
		copy(hdr, tag)
		capLen -= len(hdr)
		data = data[n:]
	}
	return pw.writeAll(hdr, data[:capLen])
}

// writeAll writes a and b, and makes a failure sticky.
func (pw *Writer) writeAll(a, b []byte) error {
	err := writeAll(pw.w, a)
	if err == nil {
		err = writeAll(pw.w, b)
	}
	if err != nil {
		pw.err = fmt.Errorf("pcap writer: %w", err)
		return pw.err
	}
	return nil
}

// writeAll writes b to w, turning a short write that reports no error into
// io.ErrShortWrite.
func writeAll(w io.Writer, b []byte) error {
	n, err := w.Write(b)
	if err == nil && n < len(b) {
		err = io.ErrShortWrite
	}
	return err
}
