package main

import (
	"encoding/binary"
	"strconv"

	"github.com/purebpf/purebpf/sockfilter/packet"
)

// EtherTypes of VLAN tags, which tcpdump walks past: 802.1Q, 802.1ad and
// the two pre-standard Q-in-Q types.
func isVLANType(t uint16) bool {
	return t == 0x8100 || t == 0x88a8 || t == 0x9100 || t == 0x9200
}

// linkHeaderLen returns the length of frame's link-level header as
// tcpdump counts it for -A, -x and -X: for Ethernet 14 bytes, for the
// Linux cooked headers 16 (SLL) or 20 (SLL2), and 4 more for each VLAN
// tag after them; for raw IP none.
func linkHeaderLen(frame []byte, link packet.LinkType) int {
	n, et := 0, 0
	switch link {
	case packet.LinkEthernet:
		n = 14
		et = 12
	case packet.LinkLinuxSLL:
		n, et = packet.SLLHeaderLen, 14
	case packet.LinkLinuxSLL2:
		n, et = packet.SLL2HeaderLen, 0
	default:
		return 0
	}
	if len(frame) < n || !isVLANType(binary.BigEndian.Uint16(frame[et:et+2])) {
		return n
	}
	// A tag's TCI, then the next EtherType, which may be a tag again.
	for n += 4; len(frame) >= n && isVLANType(binary.BigEndian.Uint16(frame[n-2:n])); n += 4 {
	}
	return n
}

// etherType returns the EtherType of what follows frame's link-level
// header and its VLAN tags (linkHeaderLen), or 0 if it was not captured.
func etherType(frame []byte, link packet.LinkType) uint16 {
	n := linkHeaderLen(frame, link)
	switch {
	case link == packet.LinkLinuxSLL2 && n == packet.SLL2HeaderLen:
		if len(frame) >= 2 {
			return binary.BigEndian.Uint16(frame[0:2])
		}
	case n >= 2 && len(frame) >= n:
		return binary.BigEndian.Uint16(frame[n-2 : n])
	}
	return 0
}

// ipHeader returns the offset of frame's IP header, and its version, or
// -1 when frame holds no IP packet.
func ipHeader(frame []byte, link packet.LinkType) (int, int) {
	off := 0
	if link != packet.LinkRawIP {
		off = linkHeaderLen(frame, link)
		if off == 0 || len(frame) < off {
			return -1, 0
		}
		switch etherType(frame, link) {
		case 0x0800, 0x86dd:
		default:
			return -1, 0
		}
	}
	if len(frame) <= off {
		return -1, 0
	}
	return off, int(frame[off] >> 4)
}

// appendLinkColumns appends -e's three columns for frame: the source and
// destination MAC addresses and the EtherType, "IPv4 (0x0800)", as tcpdump
// -e names them; "-" where the link has none — a Linux cooked header has
// the source's address alone. A VLAN tag the device took off the frame
// (info.HasVLAN) is the EtherType, as in the pcap file, where it is put
// back.
func appendLinkColumns(b []byte, frame []byte, link packet.LinkType, info *packet.Info) []byte {
	if link == packet.LinkLinuxSLL || link == packet.LinkLinuxSLL2 {
		return appendSLLColumns(b, frame, link, info)
	}
	if link != packet.LinkEthernet || len(frame) < 14 {
		return append(b, "-\t-\t-"...)
	}
	b = appendMAC(b, frame[6:12])
	b = append(b, '\t')
	b = appendMAC(b, frame[0:6])
	b = append(b, '\t')
	et := binary.BigEndian.Uint16(frame[12:14])
	if info != nil && info.HasVLAN {
		et = info.VLANTPID
		if et == 0 {
			et = 0x8100
		}
	}
	return appendEtherType(b, et)
}

// appendSLLColumns appends -e's columns for a Linux cooked header: its
// address, "-" and its protocol.
func appendSLLColumns(b []byte, frame []byte, link packet.LinkType, info *packet.Info) []byte {
	h, err := packet.ParseSLL(frame, link)
	if err != nil {
		return append(b, "-\t-\t-"...)
	}
	if h.AddrLen == 0 {
		b = append(b, '-')
	} else {
		b = appendMAC(b, h.Addr[:min(int(h.AddrLen), len(h.Addr))])
	}
	b = append(b, "\t-\t"...)
	et := h.Protocol
	if info != nil && info.HasVLAN {
		et = info.VLANTPID
		if et == 0 {
			et = 0x8100
		}
	}
	switch et {
	case 0x0001:
		return append(b, "802.3"...)
	case 0x0004:
		return append(b, "802.2"...)
	}
	return appendEtherType(b, et)
}

func appendMAC(b, mac []byte) []byte {
	const digits = "0123456789abcdef"
	for i, c := range mac {
		if i > 0 {
			b = append(b, ':')
		}
		b = append(b, digits[c>>4], digits[c&0xf])
	}
	return b
}

// appendEtherType appends an EtherType as tcpdump -e prints it: its name
// and its value, "IPv4 (0x0800)"; a length field (IEEE 802.3) as
// "802.3"; 0x8870, which tcpdump prints as the LLC header that follows
// it, as "LLC (0x8870)".
func appendEtherType(b []byte, et uint16) []byte {
	if et <= 1500 {
		return append(b, "802.3"...)
	}
	name := etherTypeNames[et]
	if et == 0x8870 { // jumbo frames: an LLC header follows, as with a length
		name = "LLC"
	}
	if name == "" {
		name = "Unknown"
	}
	b = append(b, name...)
	b = append(b, " (0x"...)
	const digits = "0123456789abcdef"
	b = append(b, digits[et>>12], digits[et>>8&0xf], digits[et>>4&0xf], digits[et&0xf])
	return append(b, ')')
}

// etherTypeNames are the names tcpdump 4.99 -e prints for EtherTypes;
// others are "Unknown" (TestLinkColumnsTcpdump checks every EtherType
// against tcpdump -e).
var etherTypeNames = map[uint16]string{
	0x0600: "NS",
	0x0707: "GeoNet (old)",
	0x0800: "IPv4",
	0x0806: "ARP",
	0x1000: "Trail",
	0x1111: "CALM FAST",
	0x6001: "MOP DL",
	0x6002: "MOP RC",
	0x6003: "DN",
	0x6004: "LAT",
	0x6007: "SCA",
	0x6558: "TEB",
	0x8035: "Reverse ARP",
	0x8038: "Lanbridge",
	0x803c: "DEC DNS",
	0x803e: "DEC DTS",
	0x805b: "VEXP",
	0x805c: "VPROD",
	0x809b: "Appletalk",
	0x80f3: "Appletalk ARP",
	0x8100: "802.1Q",
	0x8137: "IPX",
	0x86dd: "IPv6",
	0x8808: "MPCP",
	0x8809: "Slow Protocols",
	0x880b: "PPP",
	0x8847: "MPLS unicast",
	0x8848: "MPLS multicast",
	0x8863: "PPPoE D",
	0x8864: "PPPoE S",
	0x886f: "MS NLB heartbeat",
	0x888e: "EAPOL",
	0x8899: "Realtek protocols",
	0x88a2: "AoE",
	0x88a8: "802.1Q-QinQ",
	0x88ca: "TIPC",
	0x88cc: "LLDP",
	0x88e5: "802.1AE MACsec",
	0x88f7: "PTP",
	0x8902: "CFM",
	0x893a: "IEEE1905.1",
	0x8947: "GeoNet",
	0x894f: "NSH",
	0x9000: "Loopback",
	0x9100: "802.1Q-9100",
	0x9200: "802.1Q-9200",
	0xabcd: "CFM (old)",
	0xd28b: "Arista Vendor Specific Protocol",
	0xfefe: "OSI",
}

// appendIPVerbose appends what tcpdump -v prints of the IP header, in its
// words: "(tos 0x0, ttl 64, id 4660, offset 0, flags [DF], proto UDP (17),
// length 92)" for IPv4 (without the options, which tcpdump lists after the
// length), "(hlim 64, next-header UDP (17) payload length: 40)" for IPv6,
// with its class and flow label first when they are not zero. It appends
// nothing for a frame that is not IP or whose IP header was not captured.
func appendIPVerbose(b []byte, frame []byte, link packet.LinkType) []byte {
	off, version := ipHeader(frame, link)
	switch {
	case off < 0:
		return b
	case version == 4 && len(frame)-off >= 20:
		h := frame[off:]
		tos := h[1]
		b = append(b, "(tos 0x"...)
		b = strconv.AppendUint(b, uint64(tos), 16)
		switch tos & 3 {
		case 1:
			b = append(b, ",ECT(1)"...)
		case 2:
			b = append(b, ",ECT(0)"...)
		case 3:
			b = append(b, ",CE"...)
		}
		b = append(b, ", ttl "...)
		b = strconv.AppendUint(b, uint64(h[8]), 10)
		b = append(b, ", id "...)
		b = strconv.AppendUint(b, uint64(binary.BigEndian.Uint16(h[4:6])), 10)
		frag := binary.BigEndian.Uint16(h[6:8])
		b = append(b, ", offset "...)
		b = strconv.AppendUint(b, uint64(frag&0x1fff)*8, 10)
		b = append(b, ", flags ["...)
		b = appendFragFlags(b, frag)
		b = append(b, "], proto "...)
		b = appendIPProto(b, h[9])
		b = append(b, ", length "...)
		b = strconv.AppendUint(b, uint64(binary.BigEndian.Uint16(h[2:4])), 10)
		return append(b, ')')
	case version == 6 && len(frame)-off >= 40:
		h := frame[off:]
		flow := binary.BigEndian.Uint32(h[0:4])
		b = append(b, '(')
		if class := flow >> 20 & 0xff; class != 0 {
			b = append(b, "class 0x"...)
			b = appendHex(b, uint64(class), 2)
			b = append(b, ", "...)
		}
		if label := flow & 0xfffff; label != 0 {
			b = append(b, "flowlabel 0x"...)
			b = appendHex(b, uint64(label), 5)
			b = append(b, ", "...)
		}
		b = append(b, "hlim "...)
		b = strconv.AppendUint(b, uint64(h[7]), 10)
		b = append(b, ", next-header "...)
		b = appendIPProto(b, h[6])
		b = append(b, " payload length: "...)
		b = strconv.AppendUint(b, uint64(binary.BigEndian.Uint16(h[4:6])), 10)
		return append(b, ')')
	}
	return b
}

// appendFragFlags appends the IPv4 flags as tcpdump does: "+" for More
// Fragments, "DF", "rsvd", separated by ", ", or "none".
func appendFragFlags(b []byte, frag uint16) []byte {
	start := len(b)
	for _, f := range [...]struct {
		bit  uint16
		name string
	}{{0x2000, "+"}, {0x4000, "DF"}, {0x8000, "rsvd"}} {
		if frag&f.bit == 0 {
			continue
		}
		if len(b) > start {
			b = append(b, ", "...)
		}
		b = append(b, f.name...)
	}
	if len(b) == start {
		b = append(b, "none"...)
	}
	return b
}

// appendIPProto appends an IP protocol as tcpdump -v does: its name, then
// its number in parentheses, "UDP (17)".
func appendIPProto(b []byte, p uint8) []byte {
	name := ipProtoNames[p]
	if name == "" {
		name = "unknown"
	}
	b = append(b, name...)
	b = append(b, " ("...)
	b = strconv.AppendUint(b, uint64(p), 10)
	return append(b, ')')
}

// appendHex appends v in lower-case hex, zero-padded to width digits.
func appendHex(b []byte, v uint64, width int) []byte {
	s := strconv.FormatUint(v, 16)
	for n := len(s); n < width; n++ {
		b = append(b, '0')
	}
	return append(b, s...)
}

// ipProtoNames are the names tcpdump 4.99 -v prints for IP protocols;
// others are "unknown" (TestIPVerboseTcpdump checks every number against
// tcpdump -v).
var ipProtoNames = [256]string{
	0:   "Options",
	1:   "ICMP",
	2:   "IGMP",
	4:   "IPIP",
	6:   "TCP",
	8:   "EGP",
	9:   "IGRP",
	17:  "UDP",
	33:  "DCCP",
	41:  "IPv6",
	43:  "Routing",
	44:  "Fragment",
	46:  "RSVP",
	47:  "GRE",
	50:  "ESP",
	51:  "AH",
	55:  "Mobile IP",
	58:  "ICMPv6",
	62:  "Mobile IP (old)",
	88:  "EIGRP",
	89:  "OSPF",
	103: "PIM",
	108: "Compressed IP",
	112: "VRRP",
	113: "PGM",
	132: "SCTP",
	135: "Mobility",
	143: "Ethernet",
}
