package sockfilter

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"strconv"
)

// EtherTypes and IP protocol numbers ParseFrame knows.
const (
	etherTypeIPv4   = 0x0800
	etherTypeARP    = 0x0806
	etherTypeVLAN   = 0x8100 // IEEE 802.1Q customer tag
	etherTypeQinQ   = 0x88a8 // IEEE 802.1ad service tag
	etherTypeQinQv1 = 0x9100 // pre-standard Q-in-Q tag, still in use
	etherTypeIPv6   = 0x86dd

	ipProtoHopOpts  = 0
	ipProtoICMP     = 1
	ipProtoTCP      = 6
	ipProtoUDP      = 17
	ipProtoRouting  = 43
	ipProtoFragment = 44
	ipProtoAH       = 51
	ipProtoICMPv6   = 58
	ipProtoDstOpts  = 60
)

// Bounds on the headers ParseFrame walks, so that a crafted frame cannot
// make it loop: more is a *ParseError.
const (
	maxVLANTags   = 8
	maxIPv6ExtHdr = 8
)

// Errors a *ParseError wraps, to tell a frame cut short from one that is
// wrong. A link type ParseFrame does not know wraps errors.ErrUnsupported.
var (
	// ErrTruncated: a header ParseFrame needs runs past the captured bytes.
	ErrTruncated = errors.New("truncated")
	// ErrMalformed: a header field is impossible or inconsistent.
	ErrMalformed = errors.New("malformed")
)

// ParseError is the error ParseFrame returns for a frame it cannot decode.
// It names the header at fault and where it starts in the frame.
type ParseError struct {
	// Layer is the header: "frame", "ethernet", "vlan", "ip" (a LinkRawIP
	// frame's first byte), "ipv4", "ipv6",
	// "ipv6 extension", "tcp", "udp", "icmp", "icmpv6" or "arp".
	Layer string
	// Offset is the byte offset of that header in the frame.
	Offset int
	// Reason says what is wrong, e.g. "IHL 4 is less than 5".
	Reason string
	// Err is ErrTruncated, ErrMalformed or errors.ErrUnsupported.
	Err error
}

func (e *ParseError) Error() string {
	return "parse frame: " + e.Layer + " header at offset " + strconv.Itoa(e.Offset) + ": " + e.Reason
}

// Unwrap returns e.Err, so errors.Is(err, ErrTruncated) works.
func (e *ParseError) Unwrap() error { return e.Err }

// truncated returns the error for a header of need bytes at off in a frame
// of which only have bytes remain from off.
func truncated(layer string, off, need, have int) error {
	return &ParseError{Layer: layer, Offset: off, Err: ErrTruncated,
		Reason: "truncated: need " + strconv.Itoa(need) + " bytes, have " + strconv.Itoa(have)}
}

func malformed(layer string, off int, reason string) error {
	return &ParseError{Layer: layer, Offset: off, Reason: reason, Err: ErrMalformed}
}

// ParseFrame decodes the link-layer, network and transport headers of
// frame, a frame of the given link type whose captured bytes are all of
// frame, and fills r. It returns a *ParseError, and leaves r zero, when a
// header it needs is cut short or wrong; it does not panic and does not
// allocate on success.
//
// It walks Ethernet II with any number (up to 8) of IEEE 802.1Q and
// 802.1ad VLAN tags; IPv4 with options; IPv6 with up to 8 extension
// headers (hop-by-hop options, routing, fragment, destination options,
// AH); then TCP, UDP, ICMP and ICMPv6 headers, and ARP. Other protocols
// are named in r.Proto without error.
//
// Capture truncation is normal: a frame cut by a snap length decodes as
// long as the headers ParseFrame needs are complete, and the lengths in r
// come from the headers' length fields, not from what was captured. As
// ParseFrame takes len(frame) to be the length on the wire, an IP length
// field claiming more bytes than the frame holds is an error; to decode a
// truncated capture, use ParseFrameInfo with the wire length.
//
// An IPv4 total length or IPv6 payload length of 0 is taken to mean the
// rest of the frame: Linux captures BIG TCP packets over 64 KiB that way
// (Linux 6.3), and IPv6 jumbograms carry it (RFC 2675).
//
// ParseFrame leaves r.Time, r.Ifindex and r.Direction zero; ParseFrameInfo
// sets them.
func ParseFrame(frame []byte, link LinkType, r *Record) error {
	err := parseFrame(frame, link, len(frame), r)
	if err != nil {
		*r = Record{}
	}
	return err
}

// ParseFrameInfo is ParseFrame for a frame a Conn read or a pcap file
// held, with what the kernel said about it: it also sets r.Time,
// r.Ifindex and r.Direction from info, takes the wire length from
// info.Length (len(frame) if that is less), and counts a VLAN tag the
// device removed (info.HasVLAN) as the outer tag, ahead of any left in the
// frame. A capture loop is one call a frame, and allocates nothing:
//
//	for {
//		n, info, err := c.ReadFrame(buf)
//		if err != nil {
//			return err
//		}
//		if err := ParseFrameInfo(buf[:n], c.LinkType(), info, &rec); err != nil {
//			continue // not a frame ParseFrame can decode
//		}
//		out = rec.AppendText(out[:0])
//		...
//	}
func ParseFrameInfo(frame []byte, link LinkType, info FrameInfo, r *Record) error {
	return parseFrameInfo(frame, link, &info, r) // small enough to inline: no copy of info
}

func parseFrameInfo(frame []byte, link LinkType, info *FrameInfo, r *Record) error {
	wire := info.Length
	if wire < len(frame) {
		wire = len(frame)
	}
	if err := parseFrame(frame, link, wire, r); err != nil {
		*r = Record{}
		return err
	}
	r.Time = info.Time
	r.Ifindex = info.Ifindex
	r.Direction = info.Direction
	if info.HasVLAN {
		r.InnerVLAN = r.VLAN
		r.VLAN = info.VLANID()
		if r.VLANs < 255 {
			r.VLANs++
		}
	}
	return nil
}

// UnparsedRecord returns the Record of a frame that ParseFrame or
// ParseFrameInfo could not decode, with err the error they returned, so
// that a capture can still show it: Time, Ifindex, Direction and Length
// from info, CapLen from frame, and Proto ProtoTruncated when err matches
// ErrTruncated, else ProtoMalformed.
func UnparsedRecord(frame []byte, info FrameInfo, err error) Record {
	r := Record{
		Time:      info.Time,
		Ifindex:   info.Ifindex,
		Direction: info.Direction,
		Proto:     ProtoMalformed,
		Length:    max(info.Length, len(frame)),
		CapLen:    len(frame),
	}
	if errors.Is(err, ErrTruncated) {
		r.Proto = ProtoTruncated
	}
	return r
}

// parseFrame fills r from frame, wire bytes long on the wire. On error r
// holds garbage; the callers zero it.
func parseFrame(frame []byte, link LinkType, wire int, r *Record) error {
	*r = Record{CapLen: len(frame), Length: wire}
	if len(frame) == 0 {
		return &ParseError{Layer: "frame", Reason: "empty frame", Err: ErrTruncated}
	}
	var (
		off int
		et  uint16
	)
	switch link {
	case LinkEthernet:
		if len(frame) < 14 {
			return truncated("ethernet", 0, 14, len(frame))
		}
		et = binary.BigEndian.Uint16(frame[12:14])
		off = 14
		for et == etherTypeVLAN || et == etherTypeQinQ || et == etherTypeQinQv1 {
			if r.VLANs == maxVLANTags {
				return malformed("vlan", off, "more than "+strconv.Itoa(maxVLANTags)+" VLAN tags")
			}
			if len(frame) < off+4 {
				return truncated("vlan", off, 4, len(frame)-off)
			}
			tag := frame[off : off+4]
			switch r.VLANs {
			case 0:
				r.VLAN = binary.BigEndian.Uint16(tag[0:2]) & 0x0fff
			case 1:
				r.InnerVLAN = binary.BigEndian.Uint16(tag[0:2]) & 0x0fff
			}
			r.VLANs++
			et = binary.BigEndian.Uint16(tag[2:4])
			off += 4
		}
	case LinkRawIP:
		switch frame[0] >> 4 {
		case 4:
			et = etherTypeIPv4
		case 6:
			et = etherTypeIPv6
		default:
			return malformed("ip", 0, "IP version "+strconv.Itoa(int(frame[0]>>4))+" is neither 4 nor 6")
		}
	default:
		return &ParseError{Layer: "frame", Reason: "unsupported link type " + link.String(), Err: errors.ErrUnsupported}
	}
	r.EtherType = et

	var (
		l4off        int // offset of the transport header
		ipPayload    int // IP payload length from the IP header
		proto        uint8
		src, dst     netip.Addr
		sport, dport uint16
	)
	switch et {
	case etherTypeIPv4:
		if len(frame)-off < 20 {
			return truncated("ipv4", off, 20, len(frame)-off)
		}
		h := frame[off : off+20]
		if v := h[0] >> 4; v != 4 {
			return malformed("ipv4", off, "IP version "+strconv.Itoa(int(v))+" in an IPv4 header")
		}
		ihl := int(h[0]&0x0f) * 4
		if ihl < 20 {
			return malformed("ipv4", off, "IHL "+strconv.Itoa(ihl/4)+" is less than 5")
		}
		if len(frame)-off < ihl {
			return truncated("ipv4", off, ihl, len(frame)-off)
		}
		total := int(binary.BigEndian.Uint16(h[2:4]))
		if total == 0 {
			total = wire - off
		}
		if total < ihl {
			return malformed("ipv4", off, "total length "+strconv.Itoa(total)+" is less than the header length "+strconv.Itoa(ihl))
		}
		if total > wire-off {
			return malformed("ipv4", off, "total length "+strconv.Itoa(total)+" exceeds the "+strconv.Itoa(wire-off)+" bytes left in the frame")
		}
		frag := binary.BigEndian.Uint16(h[6:8])
		r.IPVersion = 4
		r.FragID = uint32(binary.BigEndian.Uint16(h[4:6]))
		r.DontFragment = frag&0x4000 != 0
		r.MoreFragments = frag&0x2000 != 0
		r.FragOffset = (frag & 0x1fff) << 3
		r.Fragment = r.MoreFragments || r.FragOffset != 0
		r.TTL = h[8]
		proto = h[9]
		src = netip.AddrFrom4([4]byte(h[12:16]))
		dst = netip.AddrFrom4([4]byte(h[16:20]))
		l4off = off + ihl
		ipPayload = total - ihl

	case etherTypeIPv6:
		if len(frame)-off < 40 {
			return truncated("ipv6", off, 40, len(frame)-off)
		}
		h := frame[off : off+40]
		if v := h[0] >> 4; v != 6 {
			return malformed("ipv6", off, "IP version "+strconv.Itoa(int(v))+" in an IPv6 header")
		}
		plen := int(binary.BigEndian.Uint16(h[4:6]))
		if plen == 0 {
			plen = wire - off - 40
		}
		if plen > wire-off-40 {
			return malformed("ipv6", off, "payload length "+strconv.Itoa(plen)+" exceeds the "+strconv.Itoa(wire-off-40)+" bytes left in the frame")
		}
		r.IPVersion = 6
		r.TTL = h[7]
		src = netip.AddrFrom16([16]byte(h[8:24]))
		dst = netip.AddrFrom16([16]byte(h[24:40]))
		proto = h[6]
		pos, end := off+40, off+40+plen
		for n := 0; ; n++ {
			if proto != ipProtoHopOpts && proto != ipProtoRouting && proto != ipProtoFragment &&
				proto != ipProtoDstOpts && proto != ipProtoAH {
				break
			}
			if n == maxIPv6ExtHdr {
				return malformed("ipv6 extension", pos, "more than "+strconv.Itoa(maxIPv6ExtHdr)+" extension headers")
			}
			if end-pos < 8 {
				return malformed("ipv6 extension", pos, "header runs past the IPv6 payload length")
			}
			if len(frame)-pos < 8 {
				return truncated("ipv6 extension", pos, 8, len(frame)-pos)
			}
			x := frame[pos : pos+8]
			var hlen int
			switch proto {
			case ipProtoFragment:
				hlen = 8
				fo := binary.BigEndian.Uint16(x[2:4])
				r.Fragment = true
				r.FragOffset = fo & 0xfff8
				r.MoreFragments = fo&1 != 0
				r.FragID = binary.BigEndian.Uint32(x[4:8])
			case ipProtoAH:
				hlen = (int(x[1]) + 2) * 4
			default:
				hlen = (int(x[1]) + 1) * 8
			}
			if end-pos < hlen {
				return malformed("ipv6 extension", pos, "header of "+strconv.Itoa(hlen)+" bytes runs past the IPv6 payload length")
			}
			if len(frame)-pos < hlen {
				return truncated("ipv6 extension", pos, hlen, len(frame)-pos)
			}
			proto = x[0]
			pos += hlen
			if r.FragOffset != 0 {
				// What follows a non-first fragment's Fragment header is
				// the middle of the original packet, not headers.
				break
			}
		}
		l4off = pos
		ipPayload = end - pos

	case etherTypeARP:
		r.Proto = ProtoARP
		return parseARP(frame, off, r)

	default:
		r.Proto = ProtoOther
		return nil
	}
	r.IPProto = proto
	r.IPPayloadLen = ipPayload

	// The transport header: absent from a non-first fragment, and perhaps
	// from a first fragment too short to hold it (RFC 1858's tiny
	// fragments); otherwise required, and required to fit the IP payload.
	hasL4 := r.FragOffset == 0
	switch proto {
	case ipProtoTCP:
		r.Proto = ProtoTCP
		if !hasL4 || (r.Fragment && ipPayload < 20) {
			break
		}
		if ipPayload < 20 {
			return malformed("tcp", l4off, "IP payload of "+strconv.Itoa(ipPayload)+" bytes cannot hold a TCP header")
		}
		if len(frame)-l4off < 20 {
			return truncated("tcp", l4off, 20, len(frame)-l4off)
		}
		h := frame[l4off : l4off+20]
		doff := int(h[12]>>4) * 4
		if doff < 20 {
			return malformed("tcp", l4off, "data offset "+strconv.Itoa(doff/4)+" is less than 5")
		}
		if doff > ipPayload {
			if r.Fragment {
				break
			}
			return malformed("tcp", l4off, "data offset "+strconv.Itoa(doff/4)+" runs past the IP payload of "+strconv.Itoa(ipPayload)+" bytes")
		}
		if len(frame)-l4off < doff {
			return truncated("tcp", l4off, doff, len(frame)-l4off)
		}
		sport = binary.BigEndian.Uint16(h[0:2])
		dport = binary.BigEndian.Uint16(h[2:4])
		r.Seq = binary.BigEndian.Uint32(h[4:8])
		r.Ack = binary.BigEndian.Uint32(h[8:12])
		r.TCPFlags = TCPFlags(h[12]&1)<<8 | TCPFlags(h[13])
		r.Window = binary.BigEndian.Uint16(h[14:16])
		r.PayloadLen = ipPayload - doff
		r.Transport = true

	case ipProtoUDP:
		r.Proto = ProtoUDP
		if !hasL4 || (r.Fragment && ipPayload < 8) {
			break
		}
		if ipPayload < 8 {
			return malformed("udp", l4off, "IP payload of "+strconv.Itoa(ipPayload)+" bytes cannot hold a UDP header")
		}
		if len(frame)-l4off < 8 {
			return truncated("udp", l4off, 8, len(frame)-l4off)
		}
		h := frame[l4off : l4off+8]
		ulen := int(binary.BigEndian.Uint16(h[4:6]))
		switch {
		case ulen == 0 && r.IPVersion == 6:
			ulen = ipPayload // RFC 2675 jumbogram
		case ulen < 8:
			return malformed("udp", l4off, "length "+strconv.Itoa(ulen)+" is less than 8")
		case ulen > ipPayload && !r.Fragment:
			return malformed("udp", l4off, "length "+strconv.Itoa(ulen)+" exceeds the IP payload of "+strconv.Itoa(ipPayload)+" bytes")
		}
		if ulen > ipPayload {
			ulen = ipPayload // a first fragment: the datagram goes on
		}
		sport = binary.BigEndian.Uint16(h[0:2])
		dport = binary.BigEndian.Uint16(h[2:4])
		r.PayloadLen = ulen - 8
		r.Transport = true

	case ipProtoICMP, ipProtoICMPv6:
		layer := "icmp"
		r.Proto = ProtoICMP
		if proto == ipProtoICMPv6 {
			layer = "icmpv6"
			r.Proto = ProtoICMPv6
		}
		if !hasL4 || (r.Fragment && ipPayload < 8) {
			break
		}
		if ipPayload < 8 {
			return malformed(layer, l4off, "IP payload of "+strconv.Itoa(ipPayload)+" bytes cannot hold an 8-byte header")
		}
		if len(frame)-l4off < 8 {
			return truncated(layer, l4off, 8, len(frame)-l4off)
		}
		r.ICMPType = frame[l4off]
		r.ICMPCode = frame[l4off+1]
		r.PayloadLen = ipPayload - 8
		r.Transport = true

	default:
		if r.IPVersion == 4 {
			r.Proto = ProtoIPv4
		} else {
			r.Proto = ProtoIPv6
		}
	}
	r.Src = netip.AddrPortFrom(src, sport)
	r.Dst = netip.AddrPortFrom(dst, dport)
	return nil
}

// parseARP decodes the ARP packet (RFC 826) at off. Src and Dst get the
// sender and target protocol addresses when they are IPv4.
func parseARP(frame []byte, off int, r *Record) error {
	if len(frame)-off < 8 {
		return truncated("arp", off, 8, len(frame)-off)
	}
	h := frame[off:]
	r.ARPOp = binary.BigEndian.Uint16(h[6:8])
	hlen, plen := int(h[4]), int(h[5])
	if n := 8 + 2*hlen + 2*plen; len(h) < n {
		return truncated("arp", off, n, len(h))
	}
	if binary.BigEndian.Uint16(h[2:4]) == etherTypeIPv4 && plen == 4 {
		spa := 8 + hlen
		tpa := spa + 4 + hlen
		r.Src = netip.AddrPortFrom(netip.AddrFrom4([4]byte(h[spa:spa+4])), 0)
		r.Dst = netip.AddrPortFrom(netip.AddrFrom4([4]byte(h[tpa:tpa+4])), 0)
	}
	return nil
}
