package packet

import (
	"net/netip"
	"slices"
)

// TextHeader is the header line for records written with AppendLine: the
// tab-separated column names, with a newline.
//
// The columns are the source address and port, the destination address
// and port, the protocol, the time (RFC 3339, UTC, nanoseconds), the
// length on the wire, the captured length, and a free-form Info column:
// TCP flags, sequence and acknowledgment numbers and window as tcpdump
// prints them; ICMP type and code; the length tcpdump prints ("length
// N": the TCP or UDP payload, the whole ICMP message; none for a UDP
// fragment, of which tcpdump gives the whole datagram's); ARP operation;
// VLAN IDs; fragment identification, offset and "+" for more fragments;
// and last, for a frame Parse could not decode wholly, tcpdump's mark for
// a frame cut short, "[|tcp]", or "[malformed tcp]".
const TextHeader = "S-Address\tS-Port\tD-Address\tD-Port\tProtocol\tTime\tLength\tCapLen\tInfo\n"

// timeLayout is the layout of the time column and field: RFC 3339 in UTC
// with nanoseconds, as AppendLine and AppendJSON write it.
const timeLayout = "2006-01-02T15:04:05.000000000Z"

// AppendLine appends r as one line of text under TextHeader, with a
// newline, and returns the extended buffer. A column without a value —
// the ports of a packet without them, the addresses of a frame that is not
// IP or ARP — is "-"; so is an empty Info column. The protocol column is
// Proto's name — or, for a frame Parse could not decode far enough to name
// its protocol, its Status, "truncated" or "malformed" — followed for
// ProtoIPv4 and ProtoIPv6 by the IP protocol number in parentheses, and
// for ProtoOther by the EtherType in hex: "IPv4(47)", "Other(0x88cc)".
//
// A record whose Status is not StatusOK has the columns Parse could fill
// and ends its Info column as tcpdump ends the line of a frame cut short:
// "[|" and the name tcpdump's printer has for the header cut (ErrLayer:
// ether, sll, sll2, vlan, ip, ip6, hbhopt, dstopt, rt6, frag6, ah, tcp,
// udp, icmp, icmp6, arp), then "]". A header that is wrong gets
// "[malformed " and the same name, then "]". It does not allocate when b
// has room.
func (r *Record) AppendLine(b []byte) []byte {
	b = r.appendFlow(b)
	b = appendTime(b, r.Time)
	return r.appendTextTail(b)
}

// appendFlow appends the first five columns of r's text line, with the tab
// after them: the addresses, the ports and the protocol.
func (r *Record) appendFlow(b []byte) []byte {
	b = appendAddr(b, r.Src)
	b = append(b, '\t')
	b = r.appendPort(b, r.Src.Port())
	b = append(b, '\t')
	b = appendAddr(b, r.Dst)
	b = append(b, '\t')
	b = r.appendPort(b, r.Dst.Port())
	b = append(b, '\t')
	b = r.appendProto(b)
	switch r.Proto {
	case ProtoIPv4, ProtoIPv6:
		b = append(b, '(')
		b = appendUint(b, uint64(r.IPProto))
		b = append(b, ')')
	case ProtoOther:
		b = append(b, "(0x"...)
		b = appendHex16(b, r.EtherType)
		b = append(b, ')')
	}
	return append(b, '\t')
}

// appendTextTail appends what follows the time column of r's text line:
// the lengths and Info, and the newline.
func (r *Record) appendTextTail(b []byte) []byte {
	return r.appendInfo(r.appendLengths(b))
}

// appendLengths appends the two length columns of r's text line, between
// tabs.
func (r *Record) appendLengths(b []byte) []byte {
	b = append(b, '\t')
	b = appendUint(b, uint64(max(r.Length, 0)))
	b = append(b, '\t')
	b = appendUint(b, uint64(max(r.CapLen, 0)))
	return append(b, '\t')
}

// appendInfo appends the Info column of r's text line and the newline.
func (r *Record) appendInfo(b []byte) []byte {
	start := len(b)
	if r.Transport {
		switch r.Proto {
		case ProtoTCP:
			b = append(b, "Flags ["...)
			b = r.TCPFlags.appendLetters(b)
			b = append(b, "] seq "...)
			b = appendUint(b, uint64(r.Seq))
			b = append(b, " ack "...)
			b = appendUint(b, uint64(r.Ack))
			b = append(b, " win "...)
			b = appendUint(b, uint64(r.Window))
			b = append(b, " length "...)
			b = appendUint(b, uint64(max(r.PayloadLen, 0)))
		case ProtoUDP:
			if !r.Fragment {
				// (tcpdump gives a first fragment the datagram's length,
				// from the UDP header; PayloadLen is the fragment's.)
				b = append(b, "length "...)
				b = appendUint(b, uint64(max(r.PayloadLen, 0)))
			}
		case ProtoICMP, ProtoICMPv6:
			b = append(b, "type "...)
			b = appendUint(b, uint64(r.ICMPType))
			b = append(b, " code "...)
			b = appendUint(b, uint64(r.ICMPCode))
			b = append(b, " length "...)
			b = appendUint(b, uint64(max(r.IPPayloadLen, 0)))
		}
	}
	if r.Proto == ProtoARP && (r.ARPOp != 0 || r.ErrLayer != LayerARP) {
		b = sep(b, start)
		switch r.ARPOp {
		case 1:
			b = append(b, "request"...)
		case 2:
			b = append(b, "reply"...)
		default:
			b = append(b, "op "...)
			b = appendUint(b, uint64(r.ARPOp))
		}
	}
	if r.VLANs > 0 {
		b = sep(b, start)
		b = append(b, "vlan "...)
		b = appendUint(b, uint64(r.VLAN))
		if r.VLANs > 1 {
			b = append(b, '.')
			b = appendUint(b, uint64(r.InnerVLAN))
		}
	}
	if r.Fragment {
		b = sep(b, start)
		b = append(b, "frag "...)
		b = appendUint(b, uint64(r.FragID))
		b = append(b, '@')
		b = appendUint(b, uint64(r.FragOffset))
		if r.MoreFragments {
			b = append(b, '+')
		}
	}
	switch r.Status {
	case StatusOK:
	case StatusTruncated:
		b = sep(b, start)
		b = append(b, "[|"...)
		b = append(b, r.ErrLayer.tcpdumpName(r.IPProto)...)
		b = append(b, ']')
	default:
		b = sep(b, start)
		b = append(b, "[malformed "...)
		b = append(b, r.ErrLayer.tcpdumpName(r.IPProto)...)
		b = append(b, ']')
	}
	if len(b) == start {
		b = append(b, '-')
	}
	return append(b, '\n')
}

// String returns r as AppendLine writes it, without the newline.
func (r *Record) String() string {
	b := r.AppendLine(make([]byte, 0, 160))
	return string(b[:len(b)-1])
}

// TextEncoder writes a stream of records as AppendLine does, and faster:
// it keeps the text of the previous record's first five columns (the
// addresses, ports and protocol), of its time stamp up to the second, and
// of its lengths, and copies them when the next record has the same, as
// the packets of a flow arriving in the same second do. Its lines are
// AppendLine's, byte for byte.
//
// The zero TextEncoder is ready to use. It is not safe for concurrent
// use. Append allocates only when b has no room, and the first time it
// meets a long pair of addresses.
type TextEncoder struct {
	// head holds the text of the first five columns, of flow, and of the
	// time stamp of the Unix second sec up to its decimal point; lens the
	// length columns of length and capLen. Neither is empty once written
	// (their columns end in tabs), so empty means not yet.
	head           []byte
	flow           textFlow
	sec            int64
	lens           []byte
	length, capLen int
}

// textFlow is what the first five columns of a text line show.
type textFlow struct {
	src, dst  netip.AddrPort
	proto     Proto
	status    Status
	ipProto   uint8
	etherType uint16
	ports     bool
}

// Append appends r as one line of text, as r.AppendLine(b) does, and
// returns the extended buffer.
func (e *TextEncoder) Append(b []byte, r *Record) []byte {
	f := textFlow{src: r.Src, dst: r.Dst, proto: r.Proto, status: r.Status, ports: r.HasPorts()}
	switch r.Proto {
	case ProtoIPv4, ProtoIPv6:
		f.ipProto = r.IPProto
	case ProtoOther:
		f.etherType = r.EtherType
	}
	if sec := r.Time.Unix(); len(e.head) == 0 || f != e.flow || sec != e.sec {
		e.head = r.appendFlow(e.head[:0])
		n := len(e.head)
		e.head = append(e.head, make([]byte, secondLen)...)
		if !putSecond(e.head[n:], r.Time) { // a year outside 0000–9999
			b = append(b, e.head[:n]...)
			e.head = e.head[:0]
			return r.appendTextTail(appendTime(b, r.Time))
		}
		e.flow, e.sec = f, sec
	}
	if len(e.lens) == 0 || r.Length != e.length || r.CapLen != e.capLen {
		e.lens = r.appendLengths(e.lens[:0])
		e.length, e.capLen = r.Length, r.CapLen
	}

	const nanosLen = len(timeLayout) - secondLen
	b = append(b, e.head...)
	b = slices.Grow(b, nanosLen)
	n := len(b)
	b = b[:n+nanosLen]
	putNanos(b[n:], r.Time.Nanosecond())
	b = append(b, e.lens...)
	return r.appendInfo(b)
}

// sep appends a space unless b has nothing after start.
func sep(b []byte, start int) []byte {
	if len(b) > start {
		b = append(b, ' ')
	}
	return b
}

func appendAddr(b []byte, ap netip.AddrPort) []byte {
	a := ap.Addr()
	if !a.IsValid() {
		return append(b, '-')
	}
	if a.Is4() {
		v4 := a.As4()
		b = appendUint(b, uint64(v4[0]))
		for _, o := range v4[1:] {
			b = append(b, '.')
			b = appendUint(b, uint64(o))
		}
		return b
	}
	return a.AppendTo(b)
}

func (r *Record) appendPort(b []byte, port uint16) []byte {
	if !r.HasPorts() {
		return append(b, '-')
	}
	return appendUint(b, uint64(port))
}

func appendHex16(b []byte, v uint16) []byte {
	const digits = "0123456789abcdef"
	return append(b, digits[v>>12], digits[v>>8&0xf], digits[v>>4&0xf], digits[v&0xf])
}
