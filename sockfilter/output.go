package sockfilter

import (
	"math"
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

// TextEncoder writes a stream of records as AppendText does, and faster:
// it keeps the text of the previous record's first five columns (the
// addresses, ports and protocol), of its time stamp up to the second, and
// of its lengths, and copies them when the next record has the same, as
// the packets of a flow arriving in the same second do. Its lines are
// AppendText's, byte for byte.
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
	ipProto   uint8
	etherType uint16
	ports     bool
}

// Append appends r as one line of text, as r.AppendText(b) does, and
// returns the extended buffer.
func (e *TextEncoder) Append(b []byte, r *Record) []byte {
	f := textFlow{src: r.Src, dst: r.Dst, proto: r.Proto, ports: r.HasPorts()}
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
	var s [len(timeLayout)]byte // 2006-01-02T15:04:05.000000000Z
	if !putSecond(s[:secondLen], t) {
		return t.UTC().AppendFormat(b, timeLayout)
	}
	putNanos(s[secondLen:], t.Nanosecond())
	return append(b, s[:]...)
}

// secondLen is the length of the part of a time stamp up to the second,
// with the decimal point: "2006-01-02T15:04:05.".
const secondLen = len("2006-01-02T15:04:05.")

// putSecond writes t's date and time to the second, in UTC, as the first
// secondLen bytes of timeLayout, to s. It reports false, writing nothing,
// for a year outside 0000–9999.
func putSecond(s []byte, t time.Time) bool {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return false
	}
	hour, minute, sec := t.Clock()
	_ = s[secondLen-1]
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
	return true
}

// putNanos writes ns, below 1e9, as nine digits and the closing "Z" of a
// time stamp to s.
func putNanos(s []byte, ns int) {
	_ = s[9]
	n := uint32(ns) // unsigned: the divisions by constants are cheaper
	hi, lo := n/10000, n%10000
	s[0] = byte('0' + hi/10000)
	hi %= 10000
	put2(s[1:3], int(hi/100))
	put2(s[3:5], int(hi%100))
	put2(s[5:7], int(lo/100))
	put2(s[7:9], int(lo%100))
	s[9] = 'Z'
}

// appendUint appends v in decimal. It writes the digits two at a time
// into a buffer on the stack, dividing in 32 bits when v fits them, and
// appends them once: the numbers of a record line are most of its cost.
func appendUint(b []byte, v uint64) []byte {
	if v < 10 {
		return append(b, byte('0'+v))
	}
	var d [20]byte
	i := len(d)
	for v > math.MaxUint32 {
		q := v / 100
		r := v - q*100
		i -= 2
		d[i], d[i+1] = digitPairs[2*r], digitPairs[2*r+1]
		v = q
	}
	w := uint32(v)
	for w >= 100 {
		q := w / 100
		r := w - q*100
		i -= 2
		d[i], d[i+1] = digitPairs[2*r], digitPairs[2*r+1]
		w = q
	}
	if w >= 10 {
		i -= 2
		d[i], d[i+1] = digitPairs[2*w], digitPairs[2*w+1]
	} else {
		i--
		d[i] = byte('0' + w)
	}
	return append(b, d[i:]...)
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
