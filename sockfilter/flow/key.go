package flow

import (
	"net/netip"
	"strconv"

	"github.com/purebpf/purebpf/internal/wire"
	"github.com/purebpf/purebpf/sockfilter/packet"
)

// Key says which flow a packet belongs to: the packets that share a Key
// are one flow. It is the key of the kernel's flow table and of the
// meter's, and it is comparable, so it can key a Go map.
//
// A flow is one-way, as in IPFIX (RFC 7011 §2, "Flow"): the two directions
// of a conversation are two flows, and on lo, where the kernel shows every
// packet twice (sent, then received), so are the two sightings.
//
// The zero Key is a flow of frames that are not IP, of EtherType 0, seen
// on no interface.
type Key struct {
	// Ifindex is the index of the interface the packets were seen on, or
	// 0 when not known.
	Ifindex int
	// Direction is where the packets were going (packet.Info.Direction).
	Direction packet.Direction
	// EtherType is the protocol of the Ethernet payload after any VLAN
	// tags: 0x0800 IPv4, 0x86dd IPv6, 0x0806 ARP, ...
	EtherType uint16
	// IPProto is the IP protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6,
	// ...). It is 0 for flows that are not IP.
	IPProto uint8
	// Src and Dst are the source and destination IP addresses. They are
	// the zero Addr for flows that are not IP (ARP included: its sender
	// and target addresses are not part of a Key).
	Src, Dst netip.Addr
	// SrcPort and DstPort are the TCP, UDP or SCTP ports. For ICMP and
	// ICMPv6, SrcPort is 0 and DstPort holds the message type and code
	// as type*256 + code: the value of the IPFIX elements
	// icmpTypeCodeIPv4 and icmpTypeCodeIPv6 (and of NetFlow's
	// destination port for ICMP). Both are 0 for other protocols and for
	// IP fragments that carry no transport header.
	SrcPort, DstPort uint16
	// VLAN is the 12-bit ID of the outer VLAN tag, or 0 for untagged
	// frames.
	VLAN uint16
}

// KeyOf returns the Key of the flow the frame r describes belongs to, by
// the rules the kernel flow table follows:
//
//   - Ifindex, Direction, EtherType and VLAN (the outer tag's ID, or 0)
//     come from r;
//   - IP packets add IPProto and the addresses, and the ports when r has
//     them (HasPorts), or ICMP's type and code, as Key's fields say;
//   - fragments without a transport header (FragOffset > 0, or a first
//     fragment too short to hold one) have ports 0, so all the non-first
//     fragments of a datagram make one flow apart from its first;
//   - frames that are not IP, and IP frames Parse could not decode, have
//     no addresses and IPProto 0.
func KeyOf(r *packet.Record) Key {
	k := Key{Ifindex: r.Ifindex, Direction: r.Direction, EtherType: r.EtherType}
	if r.VLANs > 0 {
		k.VLAN = r.VLAN & 0x0fff
	}
	if r.IPVersion == 0 || r.Status != packet.StatusOK {
		return k
	}
	k.IPProto = r.IPProto
	k.Src, k.Dst = r.Src.Addr(), r.Dst.Addr()
	switch {
	case r.HasPorts():
		k.SrcPort, k.DstPort = r.Src.Port(), r.Dst.Port()
	case r.Transport && (r.Proto == packet.ProtoICMP || r.Proto == packet.ProtoICMPv6):
		k.DstPort = uint16(r.ICMPType)<<8 | uint16(r.ICMPCode)
	}
	return k
}

// IsIP reports whether k is a flow of IPv4 or IPv6 packets: its EtherType
// is 0x0800 or 0x86dd.
func (k Key) IsIP() bool {
	return k.EtherType == wire.EtherTypeIPv4 || k.EtherType == wire.EtherTypeIPv6
}

// IsICMP reports whether k is a flow of ICMP over IPv4 or ICMPv6 over IPv6,
// whose DstPort holds the message type and code.
func (k Key) IsICMP() bool {
	return k.EtherType == wire.EtherTypeIPv4 && k.IPProto == wire.IPProtoICMP ||
		k.EtherType == wire.EtherTypeIPv6 && k.IPProto == wire.IPProtoICMPv6
}

// ICMPType and ICMPCode return the ICMP message type and code of an ICMP
// or ICMPv6 flow (IsICMP), from DstPort.
func (k Key) ICMPType() uint8 { return uint8(k.DstPort >> 8) }

// ICMPCode returns the ICMP message code of an ICMP or ICMPv6 flow.
func (k Key) ICMPCode() uint8 { return uint8(k.DstPort) }

// String returns k as one line, interface and direction first:
//
//	if 1 outgoing TCP 192.0.2.1:40000 > 192.0.2.2:80
//	if 2 host vlan 5 UDP [2001:db8::1]:5353 > [ff02::fb]:5353
//	if 1 host ICMP 192.0.2.2 > 192.0.2.1 type 0 code 0
//	if 1 host proto 47 192.0.2.1 > 192.0.2.2
//	if 3 broadcast ethertype 0x0806
func (k Key) String() string {
	var buf [128]byte
	return string(k.AppendTo(buf[:0]))
}

// AppendTo appends k's String form to b and returns the extended buffer.
// It does not allocate when b has room.
func (k Key) AppendTo(b []byte) []byte {
	b = append(b, "if "...)
	b = strconv.AppendInt(b, int64(k.Ifindex), 10)
	b = append(b, ' ')
	b = append(b, k.Direction.String()...)
	if k.VLAN != 0 {
		b = append(b, " vlan "...)
		b = strconv.AppendUint(b, uint64(k.VLAN), 10)
	}
	if !k.IsIP() {
		b = append(b, " ethertype 0x"...)
		return appendHex4(b, k.EtherType)
	}
	b = append(b, ' ')
	b = appendProto(b, k.IPProto)
	b = append(b, ' ')
	ports := !k.IsICMP() && (k.SrcPort != 0 || k.DstPort != 0)
	b = appendEndpoint(b, k.Src, k.SrcPort, ports)
	b = append(b, " > "...)
	b = appendEndpoint(b, k.Dst, k.DstPort, ports)
	if k.IsICMP() {
		b = append(b, " type "...)
		b = strconv.AppendUint(b, uint64(k.ICMPType()), 10)
		b = append(b, " code "...)
		b = strconv.AppendUint(b, uint64(k.ICMPCode()), 10)
	}
	return b
}

// appendProto appends the name of an IP protocol, or "proto N".
func appendProto(b []byte, p uint8) []byte {
	switch p {
	case wire.IPProtoTCP:
		return append(b, "TCP"...)
	case wire.IPProtoUDP:
		return append(b, "UDP"...)
	case wire.IPProtoICMP:
		return append(b, "ICMP"...)
	case wire.IPProtoICMPv6:
		return append(b, "ICMPv6"...)
	case wire.IPProtoSCTP:
		return append(b, "SCTP"...)
	}
	b = append(b, "proto "...)
	return strconv.AppendUint(b, uint64(p), 10)
}

// appendEndpoint appends an address, with its port as netip.AddrPort
// writes it when ports is true. The zero Addr is written as "-".
func appendEndpoint(b []byte, a netip.Addr, port uint16, ports bool) []byte {
	if !a.IsValid() {
		b = append(b, '-')
		if ports {
			b = append(b, ':')
			b = strconv.AppendUint(b, uint64(port), 10)
		}
		return b
	}
	if ports {
		return netip.AddrPortFrom(a, port).AppendTo(b)
	}
	return a.AppendTo(b)
}

// appendHex4 appends v as four lower-case hexadecimal digits.
func appendHex4(b []byte, v uint16) []byte {
	const digits = "0123456789abcdef"
	return append(b, digits[v>>12], digits[v>>8&0xf], digits[v>>4&0xf], digits[v&0xf])
}
