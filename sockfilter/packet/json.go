package packet

import (
	"net/netip"
	"strconv"
)

// AppendJSON appends r as one JSON object on a line of its own (JSON
// Lines) and returns the extended buffer. It does not allocate when b has
// room. The field names are stable:
//
//	time       string  Time, RFC 3339 in UTC with nanoseconds: "2006-01-02T15:04:05.000000000Z"
//	ifindex    number  Ifindex (0: unknown)
//	dir        string  Direction: "host", "outgoing", ..., "unknown"
//	proto      string  Proto: "TCP", "UDP", "ICMP", "ICMPv6", "ARP", "IPv4", "IPv6", "Other";
//	                   for a frame Parse could not decode far enough to name it (ProtoUnknown),
//	                   its Status: "truncated", "malformed"
//	ethertype  number  EtherType
//	src, dst   string  Src and Dst addresses, or null when the frame has none
//	sport      number  source port, or null when HasPorts is false
//	dport      number  destination port, or null when HasPorts is false
//	len        number  Length, on the wire
//	caplen     number  CapLen, captured
//
// IP packets add
//
//	ipver      number  IPVersion: 4 or 6
//	ipproto    number  IPProto
//	ttl        number  TTL or hop limit
//	iplen      number  IPPayloadLen
//	paylen     number  PayloadLen
//
// and, by protocol and when Transport is true,
//
//	flags      string  TCP: TCPFlags as tcpdump's letters without brackets: "S.", "P.", "none"
//	seq, ack   number  TCP: Seq, Ack
//	win        number  TCP: Window
//	icmp_type  number  ICMP, ICMPv6: ICMPType
//	icmp_code  number  ICMP, ICMPv6: ICMPCode
//
// while ARP adds arp_op (ARPOp), VLAN-tagged frames add vlan, an array of
// the outer and, for Q-in-Q, inner VLAN IDs, and fragments add frag_id
// (FragID), frag_off (FragOffset) and frag_more (MoreFragments). A frame
// Parse could not decode wholly ends with the header at fault, ErrLayer,
// under the name of its Status:
//
//	truncated  string  the header the capture cut short: "ipv4", "tcp", ... (Layer.String)
//	malformed  string  the header that is wrong
//
// and has the fields of the headers Parse decoded before it: the
// addresses, and the ports of a TCP or UDP header cut after them
// (PortsOnly), say.
func (r *Record) AppendJSON(b []byte) []byte {
	b = append(b, `{"time":"`...)
	b = appendTime(b, r.Time)
	b = append(b, `","ifindex":`...)
	b = appendUint(b, uint64(max(r.Ifindex, 0)))
	b = append(b, `,"dir":"`...)
	b = append(b, r.Direction.String()...)
	b = append(b, `","proto":"`...)
	b = r.appendProto(b)
	b = append(b, `","ethertype":`...)
	b = appendUint(b, uint64(r.EtherType))
	b = append(b, `,"src":`...)
	b = appendJSONAddr(b, r.Src)
	b = append(b, `,"sport":`...)
	b = r.appendJSONPort(b, r.Src.Port())
	b = append(b, `,"dst":`...)
	b = appendJSONAddr(b, r.Dst)
	b = append(b, `,"dport":`...)
	b = r.appendJSONPort(b, r.Dst.Port())
	b = append(b, `,"len":`...)
	b = appendUint(b, uint64(max(r.Length, 0)))
	b = append(b, `,"caplen":`...)
	b = appendUint(b, uint64(max(r.CapLen, 0)))
	if r.IPVersion != 0 {
		b = append(b, `,"ipver":`...)
		b = appendUint(b, uint64(r.IPVersion))
		b = append(b, `,"ipproto":`...)
		b = appendUint(b, uint64(r.IPProto))
		b = append(b, `,"ttl":`...)
		b = appendUint(b, uint64(r.TTL))
		b = append(b, `,"iplen":`...)
		b = appendUint(b, uint64(max(r.IPPayloadLen, 0)))
		b = append(b, `,"paylen":`...)
		b = appendUint(b, uint64(max(r.PayloadLen, 0)))
	}
	if r.Transport {
		switch r.Proto {
		case ProtoTCP:
			b = append(b, `,"flags":"`...)
			b = r.TCPFlags.appendLetters(b)
			b = append(b, `","seq":`...)
			b = appendUint(b, uint64(r.Seq))
			b = append(b, `,"ack":`...)
			b = appendUint(b, uint64(r.Ack))
			b = append(b, `,"win":`...)
			b = appendUint(b, uint64(r.Window))
		case ProtoICMP, ProtoICMPv6:
			b = append(b, `,"icmp_type":`...)
			b = appendUint(b, uint64(r.ICMPType))
			b = append(b, `,"icmp_code":`...)
			b = appendUint(b, uint64(r.ICMPCode))
		}
	}
	if r.Proto == ProtoARP {
		b = append(b, `,"arp_op":`...)
		b = appendUint(b, uint64(r.ARPOp))
	}
	if r.VLANs > 0 {
		b = append(b, `,"vlan":[`...)
		b = appendUint(b, uint64(r.VLAN))
		if r.VLANs > 1 {
			b = append(b, ',')
			b = appendUint(b, uint64(r.InnerVLAN))
		}
		b = append(b, ']')
	}
	if r.Fragment {
		b = append(b, `,"frag_id":`...)
		b = appendUint(b, uint64(r.FragID))
		b = append(b, `,"frag_off":`...)
		b = appendUint(b, uint64(r.FragOffset))
		b = append(b, `,"frag_more":`...)
		b = strconv.AppendBool(b, r.MoreFragments)
	}
	if r.Status != StatusOK {
		b = append(b, `,"`...)
		b = append(b, r.Status.String()...)
		b = append(b, `":"`...)
		b = append(b, r.ErrLayer.String()...)
		b = append(b, '"')
	}
	return append(b, "}\n"...)
}

// appendProto appends the name of r's protocol, or its Status when Parse
// stopped before it could name it.
func (r *Record) appendProto(b []byte) []byte {
	if r.Proto == ProtoUnknown && r.Status != StatusOK {
		return append(b, r.Status.String()...)
	}
	return append(b, r.Proto.String()...)
}

func appendJSONAddr(b []byte, ap netip.AddrPort) []byte {
	if !ap.Addr().IsValid() {
		return append(b, "null"...)
	}
	b = append(b, '"')
	b = ap.Addr().AppendTo(b)
	return append(b, '"')
}

func (r *Record) appendJSONPort(b []byte, port uint16) []byte {
	if !r.HasPorts() {
		return append(b, "null"...)
	}
	return appendUint(b, uint64(port))
}
