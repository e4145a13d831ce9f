package pcapfile

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/purebpf/purebpf/sockfilter/packet"
)

// NewNgWriter writes the start of a pcapng file — a Section Header Block
// (little-endian, version 1.0, shb_userappl "purebpf") and an Interface
// Description Block for each of ifaces, with its name, description, link
// type, snap length (DefaultSnaplen for 0) and if_tsresol 9, nanoseconds
// — and returns a Writer for their packets, each in an Enhanced Packet
// Block with the packet's direction in an epb_flags option when
// info.Direction is known. WritePacket writes packets of the first
// interface, WriteInterfacePacket of any.
//
// A capture on one interface describes that one, as dumpcap does; a
// capture on "any" describes one interface named "any" of link type
// LinkLinuxSLL2, whose header gives each packet's interface index.
func NewNgWriter(w io.Writer, ifaces ...Interface) (*Writer, error) {
	if len(ifaces) == 0 {
		return nil, errNoInterfaces
	}
	described := make([]Interface, len(ifaces))
	for i, iface := range ifaces {
		snaplen, err := checkSnaplen(iface.Snaplen, "pcapng writer")
		if err != nil {
			return nil, fmt.Errorf("%w (interface %d, %q)", err, i, iface.Name)
		}
		if len(iface.Name) > 0xffff-3 || len(iface.Description) > 0xffff-3 {
			return nil, fmt.Errorf("pcapng writer: interface %d: a name or description of 64 KiB or more", i)
		}
		iface.Snaplen = snaplen
		described[i] = iface
	}
	pw := newWriter(w, FormatPcapng, described)
	b := appendSHB(pw.buf[:0])
	for _, iface := range described {
		b = appendIDB(b, iface)
	}
	if err := pw.writeHeader(b); err != nil {
		return nil, fmt.Errorf("pcapng writer: write section header and interface descriptions: %w", err)
	}
	return pw, nil
}

// beginBlock appends a block header of type typ to b, with room for its
// length, and returns where the block starts.
func beginBlock(b []byte, typ uint32) ([]byte, int) {
	start := len(b)
	b = binary.LittleEndian.AppendUint32(b, typ)
	return binary.LittleEndian.AppendUint32(b, 0), start
}

// endBlock ends the block at start: it pads the body to 4 bytes and
// writes its length at both ends.
func endBlock(b []byte, start int) []byte {
	for len(b)%4 != start%4 {
		b = append(b, 0)
	}
	n := uint32(len(b) - start + 4)
	binary.LittleEndian.PutUint32(b[start+4:], n)
	return binary.LittleEndian.AppendUint32(b, n)
}

// appendOption appends an option with its value, padded to 4 bytes.
func appendOption(b []byte, code uint16, v []byte) []byte {
	b = binary.LittleEndian.AppendUint16(b, code)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(v)))
	b = append(b, v...)
	return append(b, make([]byte, (4-len(v)%4)%4)...)
}

// appendEndOfOpt appends opt_endofopt.
func appendEndOfOpt(b []byte) []byte { return append(b, 0, 0, 0, 0) }

// appendSHB appends a Section Header Block of unknown section length.
func appendSHB(b []byte) []byte {
	b, start := beginBlock(b, blockSHB)
	b = binary.LittleEndian.AppendUint32(b, byteOrderMagic)
	b = binary.LittleEndian.AppendUint16(b, 1) // version 1.0
	b = binary.LittleEndian.AppendUint16(b, 0)
	b = binary.LittleEndian.AppendUint64(b, 1<<64-1) // section length: -1, not given
	b = appendOption(b, optSHBUserApp, []byte("purebpf"))
	b = appendEndOfOpt(b)
	return endBlock(b, start)
}

// appendIDB appends an Interface Description Block for iface, with
// nanosecond time stamps.
func appendIDB(b []byte, iface Interface) []byte {
	b, start := beginBlock(b, blockIDB)
	b = binary.LittleEndian.AppendUint16(b, uint16(iface.LinkType))
	b = binary.LittleEndian.AppendUint16(b, 0) // reserved
	b = binary.LittleEndian.AppendUint32(b, uint32(iface.Snaplen))
	if iface.Name != "" {
		b = appendOption(b, optIfName, []byte(iface.Name))
	}
	if iface.Description != "" {
		b = appendOption(b, optIfDesc, []byte(iface.Description))
	}
	b = appendOption(b, optIfTSResol, []byte{9})
	b = appendEndOfOpt(b)
	return endBlock(b, start)
}

// appendEPB appends an Enhanced Packet Block for data, of interface iface,
// at sec and nsec since 1970.
func (pw *Writer) appendEPB(b []byte, iface int, data []byte, info *packet.Info, sec int64, nsec int) []byte {
	b, start := beginBlock(b, blockEPB)
	ts := uint64(sec)*1e9 + uint64(nsec)
	b = binary.LittleEndian.AppendUint32(b, uint32(iface))
	b = binary.LittleEndian.AppendUint32(b, uint32(ts>>32))
	b = binary.LittleEndian.AppendUint32(b, uint32(ts))
	lens := len(b)
	b = append(b, make([]byte, 8)...) // captured and original lengths
	b, capLen, wireLen := appendFrame(b, data, info, pw.ifaces[iface])
	binary.LittleEndian.PutUint32(b[lens:], uint32(capLen))
	binary.LittleEndian.PutUint32(b[lens+4:], uint32(min(uint64(wireLen), 1<<32-1)))
	for len(b)%4 != start%4 {
		b = append(b, 0)
	}
	if flags, ok := flagsFromDirection(info.Direction); ok {
		b = binary.LittleEndian.AppendUint16(b, optEPBFlags)
		b = binary.LittleEndian.AppendUint16(b, 4)
		b = binary.LittleEndian.AppendUint32(b, flags)
		b = appendEndOfOpt(b)
	}
	return endBlock(b, start)
}
