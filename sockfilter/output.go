package sockfilter

import (
	"net/netip"
	"slices"
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
		b = appendUint(b, uint64(r.IPProto))
		b = append(b, ')')
	case ProtoOther:
		b = append(b, "(0x"...)
		b = appendHex16(b, r.EtherType)
		b = append(b, ')')
	}
	b = append(b, '\t')
	b = appendTime(b, r.Time)
	b = append(b, '\t')
	b = appendUint(b, uint64(max(r.Length, 0)))
	b = append(b, '\t')
	b = appendUint(b, uint64(max(r.CapLen, 0)))
	b = append(b, '\t')
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
		case ProtoICMP, ProtoICMPv6:
			b = append(b, "type "...)
			b = appendUint(b, uint64(r.ICMPType))
			b = append(b, " code "...)
			b = appendUint(b, uint64(r.ICMPCode))
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
	b = appendUint(b, uint64(max(r.Ifindex, 0)))
	b = append(b, `,"dir":"`...)
	b = append(b, r.Direction.String()...)
	b = append(b, `","proto":"`...)
	b = append(b, r.Proto.String()...)
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

func appendHex16(b []byte, v uint16) []byte {
	const digits = "0123456789abcdef"
	return append(b, digits[v>>12], digits[v>>8&0xf], digits[v>>4&0xf], digits[v&0xf])
}

// appendTime appends t in timeLayout. Years outside 0000–9999, which RFC
// 3339 cannot express, fall back to time.Time.AppendFormat. The stamp is
// built in place and appended once: it is the costliest column of a
// record.
func appendTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.AppendFormat(b, timeLayout)
	}
	hour, minute, sec := t.Clock()
	ns := t.Nanosecond()
	var s [len(timeLayout)]byte // 2006-01-02T15:04:05.000000000Z
	put2(s[0:2], year/100)
	put2(s[2:4], year%100)
	s[4] = '-'
	put2(s[5:7], int(month))
	s[7] = '-'
	put2(s[8:10], day)
	s[10] = 'T'
	put2(s[11:13], hour)
	s[13] = ':'
	put2(s[14:16], minute)
	s[16] = ':'
	put2(s[17:19], sec)
	s[19] = '.'
	s[20] = byte('0' + ns/100000000)
	ns %= 100000000
	put2(s[21:23], ns/1000000)
	put2(s[23:25], ns/10000%100)
	put2(s[25:27], ns/100%100)
	put2(s[27:29], ns%100)
	s[29] = 'Z'
	return append(b, s[:]...)
}

// appendUint appends v in decimal. It writes the digits in place, two at a
// time, where strconv.AppendUint formats into a buffer and copies it: the
// numbers of a record line are most of its cost.
func appendUint(b []byte, v uint64) []byte {
	n := 1
	for x := v; x >= 10; x /= 10 {
		n++
	}
	b = slices.Grow(b, n)
	b = b[:len(b)+n]
	i := len(b)
	for v >= 100 {
		d := v % 100 * 2
		v /= 100
		i -= 2
		b[i], b[i+1] = digitPairs[d], digitPairs[d+1]
	}
	if v >= 10 {
		b[i-2], b[i-1] = digitPairs[2*v], digitPairs[2*v+1]
	} else {
		b[i-1] = byte('0' + v)
	}
	return b
}

// put2 writes v, below 100, as two decimal digits.
func put2(b []byte, v int) {
	b[0], b[1] = digitPairs[2*v], digitPairs[2*v+1]
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
