package pcapfile

import (
	"strconv"

	"github.com/purebpf/purebpf/sockfilter/packet"
)

// Format is a capture file format.
type Format uint8

// The formats a Reader reads and a Writer writes.
const (
	// FormatPcap is libpcap's savefile format (pcap-savefile(5)): a
	// file header, then a record header and the bytes of each packet.
	FormatPcap Format = iota
	// FormatPcapng is the pcap next generation format
	// (draft-ietf-opsawg-pcapng), what Wireshark, dumpcap and tshark -w
	// write: blocks, among them a section header, a description of each
	// interface and an enhanced packet block for each packet.
	FormatPcapng
)

// String returns "pcap" or "pcapng".
func (f Format) String() string {
	switch f {
	case FormatPcap:
		return "pcap"
	case FormatPcapng:
		return "pcapng"
	}
	return "Format(" + strconv.Itoa(int(f)) + ")"
}

// Interface describes an interface packets were captured on: a pcapng
// Interface Description Block, or what the file header of a pcap file
// says of its one interface.
type Interface struct {
	// Name is the interface's name (the if_name option), "" when the
	// file does not say: "lo", "eth0", "any".
	Name string
	// Description is the if_description option, "" when there is none.
	Description string
	// LinkType is the link type of the packets captured on it.
	LinkType packet.LinkType
	// Snaplen is the snap length: no packet is longer. In a pcapng file 0
	// means no limit; a Writer writes DefaultSnaplen for it.
	Snaplen int
}
