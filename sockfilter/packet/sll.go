package packet

import (
	"encoding/binary"
	"errors"
)

// The lengths of the Linux cooked capture headers.
const (
	SLLHeaderLen  = 16 // LINKTYPE_LINUX_SLL
	SLL2HeaderLen = 20 // LINKTYPE_LINUX_SLL2
)

// SLLHeader is a Linux cooked capture header: what a packet socket's
// sockaddr_ll (packet(7)) says of a frame whose link-layer header the
// kernel removed, as libpcap writes it in front of each frame of a capture
// on the "any" device (pcap-linktype(7): LINKTYPE_LINUX_SLL, 16 bytes,
// and LINKTYPE_LINUX_SLL2, 20 bytes, both big-endian).
//
//	SLL  (v1): pkttype(2) hatype(2) halen(2) addr(8) protocol(2)
//	SLL2 (v2): protocol(2) reserved(2) ifindex(4) hatype(2) pkttype(1) halen(1) addr(8)
//
// A capture on "any" opens a SOCK_DGRAM packet socket bound to ifindex 0
// and synthesises the header from the sockaddr_ll recvfrom(2) or the
// packet ring gives with each frame:
//
//	h := packet.SLLHeader{Protocol: 0x0800, Ifindex: 2, HAType: 1,
//		PacketType: 0, AddrLen: 6, Addr: [8]byte{2, 0, 0, 0, 0, 1}}
//	frame = h.AppendSLL2(frame[:0]) // then the packet after it
//
// AppendSLL2 and AppendSLL do not allocate when b has room, so a header
// can be written in place in front of a packet in a buffer.
type SLLHeader struct {
	// Protocol is sll_protocol, as a number (0x0800), not in the network
	// byte order of struct sockaddr_ll: the EtherType of the packet after
	// the header, or for packets that are not Ethernet II one of Linux's
	// ETH_P_ values below 0x0600 (linux/if_ether.h): 0x0001 ETH_P_802_3
	// (Novell 802.3 without an LLC header), 0x0004 ETH_P_802_2 (an 802.2
	// LLC header follows), 0x000c ETH_P_CAN, 0x000d ETH_P_CANFD, ... An
	// EtherType of 0x8100 says that an 802.1Q tag's TCI and the inner
	// EtherType start the packet.
	Protocol uint16
	// Ifindex is the index of the interface the packet was seen on. Only
	// SLL2 carries it: AppendSLL drops it and ParseSLL leaves it 0 for
	// LinkLinuxSLL.
	Ifindex int
	// HAType is the interface's ARPHRD_ type (linux/if_arp.h): 1
	// Ethernet, 772 loopback, 776 SIT, 778 IP-over-GRE, 65534 none, ...
	HAType uint16
	// PacketType is sll_pkttype: PACKET_HOST (0), PACKET_BROADCAST (1),
	// PACKET_MULTICAST (2), PACKET_OTHERHOST (3) or PACKET_OUTGOING (4).
	PacketType uint8
	// AddrLen is the length of the link-layer source address (sll_halen);
	// Addr holds its first 8 bytes. SLL2 has a single byte for it, so
	// AppendSLL2 writes at most 255.
	AddrLen uint16
	Addr    [8]byte
}

// Direction returns the Direction that PacketType stands for:
// DirectionHost for PACKET_HOST, ..., DirectionOutgoing for
// PACKET_OUTGOING, and DirectionUnknown for another value.
func (h *SLLHeader) Direction() Direction {
	if h.PacketType <= 4 {
		return Direction(h.PacketType + 1)
	}
	return DirectionUnknown
}

// AppendSLL appends h as a 16-byte LINKTYPE_LINUX_SLL header and returns
// the extended buffer. Ifindex is not in it.
func (h *SLLHeader) AppendSLL(b []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(h.PacketType))
	b = binary.BigEndian.AppendUint16(b, h.HAType)
	b = binary.BigEndian.AppendUint16(b, h.AddrLen)
	b = append(b, h.Addr[:]...)
	return binary.BigEndian.AppendUint16(b, h.Protocol)
}

// AppendSLL2 appends h as a 20-byte LINKTYPE_LINUX_SLL2 header and
// returns the extended buffer. An Ifindex outside 0 to 2^32-1 is written
// as 0, unknown.
func (h *SLLHeader) AppendSLL2(b []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, h.Protocol)
	b = append(b, 0, 0) // reserved, must be zero
	ifindex := uint32(0)
	if h.Ifindex > 0 && uint64(h.Ifindex) <= 1<<32-1 {
		ifindex = uint32(h.Ifindex)
	}
	b = binary.BigEndian.AppendUint32(b, ifindex)
	b = binary.BigEndian.AppendUint16(b, h.HAType)
	b = append(b, h.PacketType, byte(min(h.AddrLen, 255)))
	return append(b, h.Addr[:]...)
}

// ParseSLL decodes the cooked capture header that starts frame, of link
// type LinkLinuxSLL or LinkLinuxSLL2; the packet starts SLLHeaderLen or
// SLL2HeaderLen bytes into frame. It returns a *ParseError wrapping
// ErrTruncated for a frame shorter than the header, and one wrapping
// errors.ErrUnsupported for another link type. It does not allocate on
// success.
func ParseSLL(frame []byte, link LinkType) (SLLHeader, error) {
	var h SLLHeader
	switch link {
	case LinkLinuxSLL:
		if len(frame) < SLLHeaderLen {
			return h, truncated(LayerSLL, 0, SLLHeaderLen, len(frame))
		}
		h.PacketType = uint8(min(binary.BigEndian.Uint16(frame[0:2]), 255))
		h.HAType = binary.BigEndian.Uint16(frame[2:4])
		h.AddrLen = binary.BigEndian.Uint16(frame[4:6])
		copy(h.Addr[:], frame[6:14])
		h.Protocol = binary.BigEndian.Uint16(frame[14:16])
	case LinkLinuxSLL2:
		if len(frame) < SLL2HeaderLen {
			return h, truncated(LayerSLL2, 0, SLL2HeaderLen, len(frame))
		}
		h.Protocol = binary.BigEndian.Uint16(frame[0:2])
		h.Ifindex = int(binary.BigEndian.Uint32(frame[4:8]))
		h.HAType = binary.BigEndian.Uint16(frame[8:10])
		h.PacketType = frame[10]
		h.AddrLen = uint16(frame[11])
		copy(h.Addr[:], frame[12:20])
	default:
		return h, &ParseError{Layer: LayerFrame, Reason: "link type " + link.String() + " has no cooked capture header", Err: errors.ErrUnsupported}
	}
	return h, nil
}

// parseSLL decodes a cooked capture header into r, and the VLAN tags after
// it, and returns the offset of the packet and its EtherType (Protocol).
func parseSLL(frame []byte, link LinkType, r *Record) (off int, et uint16, err error) {
	h, err := ParseSLL(frame, link)
	if err != nil {
		return 0, 0, err
	}
	r.Direction = h.Direction()
	r.Ifindex = h.Ifindex
	off = SLLHeaderLen
	if link == LinkLinuxSLL2 {
		off = SLL2HeaderLen
	}
	return parseVLANs(frame, off, h.Protocol, r)
}
