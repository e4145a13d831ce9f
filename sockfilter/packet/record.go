package packet

import (
	"net/netip"
	"strconv"
	"time"
)

// Record is what one frame says, decoded: who talked to whom over which
// protocol, and how much. Parse fills it from a frame's bytes; it is a
// value with no references into the frame, so it may be kept after the
// frame's buffer is reused.
//
// A frame Parse could not decode wholly still has its Record: Status says
// why not, ErrLayer names the header at fault, and the fields of the
// headers before it are filled in (see Parse). The zero Record is
// invalid: its Proto is ProtoUnknown.
type Record struct {
	// Time is when the kernel saw the frame (Info.Time), or zero when
	// Parse was given no Info.
	Time time.Time
	// Ifindex is the index of the interface the frame was seen on, or 0
	// when not known (no Info, pcap files).
	Ifindex int
	// Direction says where the frame was going (Info.Direction, or the
	// packet type of a cooked capture header).
	Direction Direction
	// Status is StatusOK for a frame Parse decoded wholly, and otherwise
	// says why it could not: StatusTruncated for a frame cut inside a
	// header by the capture's snap length, StatusMalformed for a header
	// that is wrong.
	Status Status
	// ErrLayer names the header Status is about when it is not StatusOK:
	// the one cut short or wrong, as the *ParseError Parse returned names
	// it. It is LayerNone for a frame decoded wholly, even one cut by the
	// snap length after its headers.
	ErrLayer Layer

	// Proto names the traffic: TCP, UDP, ICMP, ICMPv6, ARP, another IP
	// protocol (ProtoIPv4, ProtoIPv6; IPProto holds its number) or another
	// EtherType (ProtoOther; EtherType holds it).
	Proto Proto
	// EtherType is the protocol of the Ethernet payload after any VLAN
	// tags: 0x0800 IPv4, 0x86dd IPv6, 0x0806 ARP, ... For LinkRawIP frames
	// it is 0x0800 or 0x86dd, from the IP version; for the cooked capture
	// link types, the header's protocol (SLLHeader.Protocol). Values below
	// 0x0600 are not EtherTypes: in an Ethernet header they are IEEE
	// 802.3 length fields, in a cooked capture header Linux's ETH_P_
	// values for frames that are not Ethernet II (0x0001 ETH_P_802_3,
	// 0x0004 ETH_P_802_2, 0x000c ETH_P_CAN, ...). Such frames are
	// ProtoOther.
	EtherType uint16
	// IPVersion is 4 or 6 for IP packets, 0 otherwise.
	IPVersion uint8
	// IPProto is the IP protocol number of the payload: the IPv4 Protocol
	// field, or the IPv6 Next Header after the last extension header
	// Parse walked (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6, 50 ESP, 59 No
	// Next Header, ...). It is meaningful only when IPVersion is not 0.
	IPProto uint8
	// TTL is the IPv4 Time To Live or the IPv6 Hop Limit.
	TTL uint8

	// Src and Dst are the source and destination addresses, with the
	// TCP or UDP ports when HasPorts reports true and port 0 otherwise.
	// For ARP they are the sender and target protocol (IPv4) addresses.
	// They are the zero AddrPort when the frame carries no IP addresses.
	Src, Dst netip.AddrPort
	// PortsOnly reports a TCP or UDP header that the capture cut after
	// its ports: Src and Dst carry them (HasPorts), though Transport is
	// false and the header's other fields are zero. Status is then
	// StatusTruncated and ErrLayer LayerTCP or LayerUDP.
	PortsOnly bool

	// VLANs is the number of IEEE 802.1Q/802.1ad VLAN tags on the frame,
	// counting one the device removed (Info.HasVLAN).
	VLANs uint8
	// VLAN is the 12-bit VLAN ID of the outer tag, when VLANs > 0.
	VLAN uint16
	// InnerVLAN is the VLAN ID of the second tag (802.1ad Q-in-Q), when
	// VLANs > 1.
	InnerVLAN uint16

	// Fragment reports that the packet is a fragment of a larger IP
	// packet: an IPv4 packet with More Fragments set or a non-zero
	// fragment offset, or an IPv6 packet with a Fragment header.
	Fragment bool
	// MoreFragments is the More Fragments flag (IPv4 MF, IPv6 M).
	MoreFragments bool
	// DontFragment is the IPv4 Don't Fragment flag.
	DontFragment bool
	// FragOffset is the fragment's offset in the original packet, in
	// bytes. A fragment with a non-zero offset carries no transport header:
	// Transport is false and there are no ports.
	FragOffset uint16
	// FragID is the fragment identification: the IPv4 Identification field
	// (for every IPv4 packet, fragment or not) or the IPv6 Fragment
	// header's Identification.
	FragID uint32

	// Transport reports that the TCP, UDP or ICMP header was present and
	// decoded. It is false for a non-first fragment, for a first fragment
	// too short to hold the header, and for other protocols.
	Transport bool

	// Length is the frame's length on the wire (Info.Length); it is
	// CapLen for Parse.
	Length int
	// CapLen is the number of bytes captured: len(frame). It is less than
	// Length when the capture was truncated (snap length).
	CapLen int
	// IPPayloadLen is the length of what follows the IP header — after the
	// IPv4 options, or after the IPv6 extension headers Parse walked —
	// as the IP length fields give it, whether or not all of it was
	// captured. It is 0 for frames that are not IP.
	IPPayloadLen int
	// PayloadLen is the length of the data after the TCP header (with its
	// options), the UDP header or the 8-byte ICMP header, from the IP and
	// UDP length fields, whether or not all of it was captured. It is 0
	// when Transport is false. (The length tcpdump prints is PayloadLen
	// for TCP and UDP, and IPPayloadLen, the whole message, for ICMP.)
	PayloadLen int

	// TCPFlags, Seq, Ack and Window are the TCP header's flags, sequence
	// number, acknowledgment number and (unscaled) window, for TCP when
	// Transport is true.
	TCPFlags TCPFlags
	Seq      uint32
	Ack      uint32
	Window   uint16

	// ICMPType and ICMPCode are the ICMP or ICMPv6 message type and code,
	// when Transport is true.
	ICMPType uint8
	ICMPCode uint8

	// ARPOp is the ARP operation: 1 request, 2 reply.
	ARPOp uint16
}

// HasPorts reports whether r.Src and r.Dst carry ports: it is a TCP or UDP
// packet whose header was decoded (Transport), or at least its ports
// (PortsOnly).
func (r *Record) HasPorts() bool {
	return (r.Transport || r.PortsOnly) && (r.Proto == ProtoTCP || r.Proto == ProtoUDP)
}

// Status says whether Parse decoded a frame, and if not, why not.
type Status uint8

// The parse statuses.
const (
	// StatusOK: Parse decoded every header it needs.
	StatusOK Status = iota
	// StatusTruncated: a header runs past the captured bytes (the snap
	// length cut it).
	StatusTruncated
	// StatusMalformed: a header field is impossible or inconsistent, or
	// the link type is one Parse does not know.
	StatusMalformed
)

// String returns "ok", "truncated" or "malformed".
func (s Status) String() string {
	switch s {
	case StatusOK:
		return "ok"
	case StatusTruncated:
		return "truncated"
	case StatusMalformed:
		return "malformed"
	}
	return "Status(" + strconv.Itoa(int(s)) + ")"
}

// Proto names the kind of traffic a Record describes.
type Proto uint8

// The protocols a Record can name. Traffic that is none of TCP, UDP, ICMP,
// ICMPv6 or ARP is still named: by IP version, or as ProtoOther.
const (
	// ProtoUnknown is the zero Proto: Parse stopped before it could name
	// the traffic (Status says why).
	ProtoUnknown Proto = iota
	ProtoTCP           // TCP, IP protocol 6
	ProtoUDP           // UDP, IP protocol 17
	ProtoICMP          // ICMP for IPv4, IP protocol 1
	ProtoICMPv6        // ICMPv6, IP protocol 58
	ProtoARP           // ARP, EtherType 0x0806
	ProtoIPv4          // another protocol over IPv4: Record.IPProto holds its number
	ProtoIPv6          // another protocol over IPv6: Record.IPProto holds its number
	ProtoOther         // a frame that is not IP or ARP: Record.EtherType holds its type
)

var protoNames = [...]string{
	ProtoUnknown: "unknown",
	ProtoTCP:     "TCP",
	ProtoUDP:     "UDP",
	ProtoICMP:    "ICMP",
	ProtoICMPv6:  "ICMPv6",
	ProtoARP:     "ARP",
	ProtoIPv4:    "IPv4",
	ProtoIPv6:    "IPv6",
	ProtoOther:   "Other",
}

// String returns "TCP", "UDP", "ICMP", "ICMPv6", "ARP", "IPv4", "IPv6",
// "Other" or "unknown".
func (p Proto) String() string {
	if int(p) < len(protoNames) {
		return protoNames[p]
	}
	return "Proto(" + strconv.Itoa(int(p)) + ")"
}

// TCPFlags holds the TCP header's control bits: the eight of RFC 9293
// (byte 13 of the header) and, above them, AE (RFC 3540's NS, the low bit
// of byte 12).
type TCPFlags uint16

// The TCP flags.
const (
	TCPFin TCPFlags = 1 << iota
	TCPSyn
	TCPRst
	TCPPsh
	TCPAck
	TCPUrg
	TCPEce
	TCPCwr
	TCPAe
)

// tcpFlagChars are tcpdump's letters for the flags, in its order, which is
// also bit order: FIN, SYN, RST, PSH, ACK, URG, ECE, CWR, AE.
const tcpFlagChars = "FSRP.UEWe"

// Has reports whether all of the flags in f2 are set in f.
func (f TCPFlags) Has(f2 TCPFlags) bool { return f&f2 == f2 }

// String returns the flags as tcpdump prints them: "[S]", "[S.]", "[P.]",
// "[F.]", "[R]", and "[none]" when none is set.
func (f TCPFlags) String() string {
	var buf [16]byte
	b := append(buf[:0], '[')
	b = f.appendLetters(b)
	return string(append(b, ']'))
}

// appendLetters appends tcpdump's letters for f, or "none".
func (f TCPFlags) appendLetters(b []byte) []byte {
	if f == 0 {
		return append(b, "none"...)
	}
	for i := range len(tcpFlagChars) {
		if f&(1<<i) != 0 {
			b = append(b, tcpFlagChars[i])
		}
	}
	return b
}
