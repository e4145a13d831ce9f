package sockfilter

import (
	"net/netip"
	"strconv"
	"time"
)

// TextHeader is the header line for records written with AppendText: the
// tab-separated column names, with a newline.
//
// The columns are the source address and port, the destination address
// and port, the protocol, the time (RFC 3339, UTC, nanoseconds), the
// length on the wire, the captured length, and a free-form Info column:
// TCP flags, sequence and acknowledgment numbers and window as tcpdump
// prints them; ICMP type and code; ARP operation; VLAN IDs; fragment
// identification, offset and "+" for more fragments.
const TextHeader = "S-Address\tS-Port\tD-Address\tD-Port\tProtocol\tTime\tLength\tCapLen\tInfo\n"

// timeLayout is the layout of the time column and field: RFC 3339 in UTC
// with nanoseconds, as AppendText and AppendJSON write it.
const timeLayout = "2006-01-02T15:04:05.000000000Z"

// AppendText appends r as one line of text under TextHeader, with a
// newline, and returns the extended buffer. A column without a value —
// the ports of a packet without them, the addresses of a frame that is not
// IP or ARP — is "-"; so is an empty Info column. The protocol column is
// Proto's name, followed for ProtoIPv4 and ProtoIPv6 by the IP protocol
// number in parentheses, and for ProtoOther by the EtherType in hex:
// "IPv4(47)", "Other(0x88cc)". It does not allocate when b has room.
func (r *Record) AppendText(b []byte) []byte {
	b = appendAddr(b, r.Src)
	b = append(b, '\t')
	b = r.appendPort(b, r.Src.Port())
	b = append(b, '\t')
	b = appendAddr(b, r.Dst)
	b = append(b, '\t')
	b = r.appendPort(b, r.Dst.Port())
	b = append(b, '\t')
	b = append(b, r.Proto.String()...)
	switch r.Proto {
	case ProtoIPv4, ProtoIPv6:
		b = append(b, '(')
		b = strconv.AppendUint(b, uint64(r.IPProto), 10)
		b = append(b, ')')
	case ProtoOther:
		b = append(b, "(0x"...)
		b = appendHex16(b, r.EtherType)
		b = append(b, ')')
	}
	b = append(b, '\t')
	b = appendTime(b, r.Time)
	b = append(b, '\t')
	b = strconv.AppendInt(b, int64(r.Length), 10)
	b = append(b, '\t')
	b = strconv.AppendInt(b, int64(r.CapLen), 10)
	b = append(b, '\t')
	start := len(b)
	if r.Transport {
		switch r.Proto {
		case ProtoTCP:
			b = append(b, "Flags ["...)
			b = r.TCPFlags.appendLetters(b)
			b = append(b, "] seq "...)
			b = strconv.AppendUint(b, uint64(r.Seq), 10)
			b = append(b, " ack "...)
			b = strconv.AppendUint(b, uint64(r.Ack), 10)
			b = append(b, " win "...)
			b = strconv.AppendUint(b, uint64(r.Window), 10)
		case ProtoICMP, ProtoICMPv6:
			b = append(b, "type "...)
			b = strconv.AppendUint(b, uint64(r.ICMPType), 10)
			b = append(b, " code "...)
			b = strconv.AppendUint(b, uint64(r.ICMPCode), 10)
		}
	}
	if r.Proto == ProtoARP {
		b = sep(b, start)
		switch r.ARPOp {
		case 1:
			b = append(b, "request"...)
		case 2:
			b = append(b, "reply"...)
		default:
			b = append(b, "op "...)
			b = strconv.AppendUint(b, uint64(r.ARPOp), 10)
		}
	}
	if r.VLANs > 0 {
		b = sep(b, start)
		b = append(b, "vlan "...)
		b = strconv.AppendUint(b, uint64(r.VLAN), 10)
		if r.VLANs > 1 {
			b = append(b, '.')
			b = strconv.AppendUint(b, uint64(r.InnerVLAN), 10)
		}
	}
	if r.Fragment {
		b = sep(b, start)
		b = append(b, "frag "...)
		b = strconv.AppendUint(b, uint64(r.FragID), 10)
		b = append(b, '@')
		b = strconv.AppendUint(b, uint64(r.FragOffset), 10)
		if r.MoreFragments {
			b = append(b, '+')
		}
	}
	if len(b) == start {
		b = append(b, '-')
	}
	return append(b, '\n')
}

// String returns r as AppendText writes it, without the newline.
func (r *Record) String() string {
	b := r.AppendText(make([]byte, 0, 160))
	return string(b[:len(b)-1])
}

// AppendJSON appends r as one JSON object on a line of its own (JSON
// Lines) and returns the extended buffer. It does not allocate when b has
// room. The field names are stable:
//
//	time       string  Time, RFC 3339 in UTC with nanoseconds: "2006-01-02T15:04:05.000000000Z"
//	ifindex    number  Ifindex (0: unknown)
//	dir        string  Direction: "host", "outgoing", ..., "unknown"
//	proto      string  Proto: "TCP", "UDP", "ICMP", "ICMPv6", "ARP", "IPv4", "IPv6", "Other"
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
// (FragID), frag_off (FragOffset) and frag_more (MoreFragments).
func (r *Record) AppendJSON(b []byte) []byte {
	b = append(b, `{"time":"`...)
	b = appendTime(b, r.Time)
	b = append(b, `","ifindex":`...)
	b = strconv.AppendInt(b, int64(r.Ifindex), 10)
	b = append(b, `,"dir":"`...)
	b = append(b, r.Direction.String()...)
	b = append(b, `","proto":"`...)
	b = append(b, r.Proto.String()...)
	b = append(b, `","ethertype":`...)
	b = strconv.AppendUint(b, uint64(r.EtherType), 10)
	b = append(b, `,"src":`...)
	b = appendJSONAddr(b, r.Src)
	b = append(b, `,"sport":`...)
	b = r.appendJSONPort(b, r.Src.Port())
	b = append(b, `,"dst":`...)
	b = appendJSONAddr(b, r.Dst)
	b = append(b, `,"dport":`...)
	b = r.appendJSONPort(b, r.Dst.Port())
	b = append(b, `,"len":`...)
	b = strconv.AppendInt(b, int64(r.Length), 10)
	b = append(b, `,"caplen":`...)
	b = strconv.AppendInt(b, int64(r.CapLen), 10)
	if r.IPVersion != 0 {
		b = append(b, `,"ipver":`...)
		b = strconv.AppendUint(b, uint64(r.IPVersion), 10)
		b = append(b, `,"ipproto":`...)
		b = strconv.AppendUint(b, uint64(r.IPProto), 10)
		b = append(b, `,"ttl":`...)
		b = strconv.AppendUint(b, uint64(r.TTL), 10)
		b = append(b, `,"iplen":`...)
		b = strconv.AppendInt(b, int64(r.IPPayloadLen), 10)
		b = append(b, `,"paylen":`...)
		b = strconv.AppendInt(b, int64(r.PayloadLen), 10)
	}
	if r.Transport {
		switch r.Proto {
		case ProtoTCP:
			b = append(b, `,"flags":"`...)
			b = r.TCPFlags.appendLetters(b)
			b = append(b, `","seq":`...)
			b = strconv.AppendUint(b, uint64(r.Seq), 10)
			b = append(b, `,"ack":`...)
			b = strconv.AppendUint(b, uint64(r.Ack), 10)
			b = append(b, `,"win":`...)
			b = strconv.AppendUint(b, uint64(r.Window), 10)
		case ProtoICMP, ProtoICMPv6:
			b = append(b, `,"icmp_type":`...)
			b = strconv.AppendUint(b, uint64(r.ICMPType), 10)
			b = append(b, `,"icmp_code":`...)
			b = strconv.AppendUint(b, uint64(r.ICMPCode), 10)
		}
	}
	if r.Proto == ProtoARP {
		b = append(b, `,"arp_op":`...)
		b = strconv.AppendUint(b, uint64(r.ARPOp), 10)
	}
	if r.VLANs > 0 {
		b = append(b, `,"vlan":[`...)
		b = strconv.AppendUint(b, uint64(r.VLAN), 10)
		if r.VLANs > 1 {
			b = append(b, ',')
			b = strconv.AppendUint(b, uint64(r.InnerVLAN), 10)
		}
		b = append(b, ']')
	}
	if r.Fragment {
		b = append(b, `,"frag_id":`...)
		b = strconv.AppendUint(b, uint64(r.FragID), 10)
		b = append(b, `,"frag_off":`...)
		b = strconv.AppendUint(b, uint64(r.FragOffset), 10)
		b = append(b, `,"frag_more":`...)
		b = strconv.AppendBool(b, r.MoreFragments)
	}
	return append(b, "}\n"...)
}

// sep appends a space unless b has nothing after start.
func sep(b []byte, start int) []byte {
	if len(b) > start {
		b = append(b, ' ')
	}
	return b
}

func appendAddr(b []byte, ap netip.AddrPort) []byte {
	if !ap.Addr().IsValid() {
		return append(b, '-')
	}
	return ap.Addr().AppendTo(b)
}

func (r *Record) appendPort(b []byte, port uint16) []byte {
	if !r.HasPorts() {
		return append(b, '-')
	}
	return strconv.AppendUint(b, uint64(port), 10)
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
	return strconv.AppendUint(b, uint64(port), 10)
}

func appendHex16(b []byte, v uint16) []byte {
	const digits = "0123456789abcdef"
	return append(b, digits[v>>12], digits[v>>8&0xf], digits[v>>4&0xf], digits[v&0xf])
}

// appendTime appends t in timeLayout. Years outside 0000–9999, which RFC
// 3339 cannot express, fall back to time.Time.AppendFormat.
func appendTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.AppendFormat(b, timeLayout)
	}
	hour, minute, sec := t.Clock()
	b = appendDigits(b, year, 4)
	b = append(b, '-')
	b = appendDigits(b, int(month), 2)
	b = append(b, '-')
	b = appendDigits(b, day, 2)
	b = append(b, 'T')
	b = appendDigits(b, hour, 2)
	b = append(b, ':')
	b = appendDigits(b, minute, 2)
	b = append(b, ':')
	b = appendDigits(b, sec, 2)
	b = append(b, '.')
	b = appendDigits(b, t.Nanosecond(), 9)
	return append(b, 'Z')
}

// appendDigits appends v, which is not negative, zero-padded to width
// digits (at most 9), two digits at a time: the per-record time stamp is
// the hot part of AppendText.
func appendDigits(b []byte, v, width int) []byte {
	var buf [10]byte
	i := len(buf)
	for v >= 100 {
		q := v / 100
		d := (v - q*100) * 2
		i -= 2
		buf[i], buf[i+1] = digitPairs[d], digitPairs[d+1]
		v = q
	}
	if v >= 10 {
		i -= 2
		buf[i], buf[i+1] = digitPairs[v*2], digitPairs[v*2+1]
	} else {
		i--
		buf[i] = byte('0' + v)
	}
	for len(buf)-i < width {
		i--
		buf[i] = '0'
	}
	return append(b, buf[i:]...)
}

// digitPairs holds "00" to "99".
const digitPairs = "00010203040506070809" +
	"10111213141516171819" +
	"20212223242526272829" +
	"30313233343536373839" +
	"40414243444546474849" +
	"50515253545556575859" +
	"60616263646566676869" +
	"70717273747576777879" +
	"80818283848586878889" +
	"90919293949596979899"
