package packet

import (
	"strconv"
	"time"
)

// LinkType is the kind of link-layer header that starts a frame: what a
// packet socket reads from an interface, and the pcap link type of a
// capture file.
type LinkType uint16

// The link types purebpf handles. Their values are the pcap LINKTYPE_
// numbers, as written in pcap file headers.
const (
	// LinkEthernet frames start with a 14-byte Ethernet II header
	// (LINKTYPE_ETHERNET, DLT_EN10MB). Loopback and Ethernet devices give it.
	LinkEthernet LinkType = 1
	// LinkRawIP frames start directly with an IPv4 or IPv6 header
	// (LINKTYPE_RAW). Tun-like devices with no link-layer header give it.
	LinkRawIP LinkType = 101
	// LinkLinuxSLL frames start with the 16-byte Linux cooked capture
	// header, version 1 (LINKTYPE_LINUX_SLL, DLT_LINUX_SLL): what libpcap
	// wrote for captures on the "any" device before 1.10, and writes
	// with tcpdump -i any -y LINUX_SLL. See SLLHeader.
	LinkLinuxSLL LinkType = 113
	// LinkLinuxSLL2 frames start with the 20-byte Linux cooked capture
	// header, version 2 (LINKTYPE_LINUX_SLL2), which adds the interface
	// index: what tcpdump -i any writes since libpcap 1.10. See SLLHeader.
	LinkLinuxSLL2 LinkType = 276
)

// String returns the name tcpdump gives the link type: "EN10MB", "RAW",
// "LINUX_SLL" or "LINUX_SLL2".
func (l LinkType) String() string {
	switch l {
	case LinkEthernet:
		return "EN10MB"
	case LinkRawIP:
		return "RAW"
	case LinkLinuxSLL:
		return "LINUX_SLL"
	case LinkLinuxSLL2:
		return "LINUX_SLL2"
	}
	return "LinkType(" + strconv.Itoa(int(l)) + ")"
}

// Description returns a longer name, as tcpdump prints after the link
// type ("link-type LINUX_SLL2 (Linux cooked v2)"): "Ethernet", "Raw IP",
// "Linux cooked v1" or "Linux cooked v2".
func (l LinkType) Description() string {
	switch l {
	case LinkEthernet:
		return "Ethernet"
	case LinkRawIP:
		return "Raw IP"
	case LinkLinuxSLL:
		return "Linux cooked v1"
	case LinkLinuxSLL2:
		return "Linux cooked v2"
	}
	return "unknown"
}

// Direction says where a frame was going, from the packet type the kernel
// reports for it (sll_pkttype, PACKET_* in linux/if_packet.h). The zero
// Direction is unknown, as for frames read from a pcap file.
type Direction uint8

// The directions, each the kernel's PACKET_* value plus one.
const (
	DirectionUnknown   Direction = iota
	DirectionHost                // PACKET_HOST: addressed to this host
	DirectionBroadcast           // PACKET_BROADCAST: link-layer broadcast
	DirectionMulticast           // PACKET_MULTICAST: link-layer multicast
	DirectionOtherHost           // PACKET_OTHERHOST: to another host, seen in promiscuous mode
	DirectionOutgoing            // PACKET_OUTGOING: sent by this host
)

// String returns "host", "broadcast", "multicast", "otherhost", "outgoing"
// or "unknown".
func (d Direction) String() string {
	switch d {
	case DirectionHost:
		return "host"
	case DirectionBroadcast:
		return "broadcast"
	case DirectionMulticast:
		return "multicast"
	case DirectionOtherHost:
		return "otherhost"
	case DirectionOutgoing:
		return "outgoing"
	}
	return "unknown"
}

// Incoming reports whether d is a direction of received frames.
func (d Direction) Incoming() bool {
	return d >= DirectionHost && d <= DirectionOtherHost
}

// Info is what the kernel, or a capture file, says about a frame besides
// its bytes. The zero Info is valid: it says nothing, and Parse then takes
// the frame to be whole.
type Info struct {
	// Time is the kernel's receive timestamp, with nanosecond resolution.
	Time time.Time
	// Ifindex is the index of the interface the frame was seen on.
	Ifindex int
	// Direction says where the frame was going.
	Direction Direction
	// Length is the frame's original length on the wire. It exceeds the
	// number of bytes read when the filter's return value or the caller's
	// buffer truncated the frame.
	Length int
	// VLANTCI and VLANTPID are the VLAN tag the device removed from the
	// frame (PACKET_AUXDATA); HasVLAN says whether there was one.
	VLANTCI  uint16
	VLANTPID uint16
	HasVLAN  bool
}

// VLANID returns the 12-bit VLAN identifier of the removed tag.
func (i Info) VLANID() uint16 { return i.VLANTCI & 0x0fff }
