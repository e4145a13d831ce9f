package packet

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"strconv"

	"github.com/purebpf/purebpf/internal/wire"
)

// Bounds on the headers Parse walks, so that a crafted frame cannot make
// it loop: more is a *ParseError.
const (
	maxVLANTags   = 8
	maxIPv6ExtHdr = 8
)

// Errors a *ParseError wraps, to tell a frame cut short from one that is
// wrong. A link type Parse does not know wraps errors.ErrUnsupported.
var (
	// ErrTruncated: a header Parse needs runs past the captured bytes.
	ErrTruncated = errors.New("truncated")
	// ErrMalformed: a header field is impossible or inconsistent.
	ErrMalformed = errors.New("malformed")
)

// ParseError is the error Parse returns for a frame it cannot decode
// wholly. It names the header at fault and where it starts in the frame.
type ParseError struct {
	// Layer is the header: LayerFrame, LayerEthernet, LayerSLL,
	// LayerSLL2, LayerVLAN, LayerIP (a LinkRawIP frame's first byte),
	// LayerIPv4, LayerIPv6, LayerIPv6Ext, LayerTCP, LayerUDP, LayerICMP,
	// LayerICMPv6 or LayerARP.
	Layer Layer
	// Offset is the byte offset of that header in the frame.
	Offset int
	// Reason says what is wrong, e.g. "IHL 4 is less than 5", or
	// "truncated" for a header cut short, whose Error also says how many
	// bytes it needs and how many were captured.
	Reason string
	// Err is ErrTruncated, ErrMalformed or errors.ErrUnsupported.
	Err error

	need, have int // of a truncated header, for Error
}

func (e *ParseError) Error() string {
	msg := "parse frame: " + e.Layer.String() + " header at offset " + strconv.Itoa(e.Offset) + ": " + e.Reason
	if e.Err == ErrTruncated && e.need > 0 {
		msg += ": need " + strconv.Itoa(e.need) + " bytes, have " + strconv.Itoa(e.have)
	}
	return msg
}

// Unwrap returns e.Err, so errors.Is(err, ErrTruncated) works.
func (e *ParseError) Unwrap() error { return e.Err }

// truncated returns the error for a header of need bytes at off in a frame
// of which only have bytes remain from off. It costs one allocation, the
// error's: the message is made only if Error is called.
func truncated(layer Layer, off, need, have int) error {
	return &ParseError{Layer: layer, Offset: off, Reason: "truncated", Err: ErrTruncated, need: need, have: have}
}

func malformed(layer Layer, off int, reason string) error {
	return &ParseError{Layer: layer, Offset: off, Reason: reason, Err: ErrMalformed}
}

// Parse decodes the link-layer, network and transport headers of frame, a
// frame of the given link type, and fills r. info says what the kernel or
// the capture file said about the frame; a nil info means the frame is
// whole, as captured, and nothing else is known of it. It does not panic,
// and does not allocate on success.
//
// It walks Ethernet II and the Linux cooked capture headers (SLL, SLL2)
// with any number (up to 8) of IEEE 802.1Q and 802.1ad VLAN tags; IPv4
// with options; IPv6 with up to 8 extension headers (hop-by-hop options,
// routing, fragment, destination options, AH); then TCP, UDP, ICMP and
// ICMPv6 headers, and ARP. Other protocols are named in r.Proto without
// error.
//
// With an info, Parse also sets r.Time from it, takes the wire length
// from info.Length (len(frame) if that is less), and counts a VLAN tag the
// device removed (info.HasVLAN) as the outer tag, ahead of any left in the
// frame. r.Ifindex and r.Direction come from info when it gives them (not
// 0, not DirectionUnknown), and otherwise from the frame's cooked capture
// header: an SLL header has the direction, an SLL2 header the interface
// index too.
//
// Capture truncation is normal: a frame cut by a snap length decodes as
// long as the headers Parse needs are complete, and the lengths in r come
// from the headers' length fields, not from what was captured. An IP
// length field claiming more bytes than the wire length is an error: pass
// the Info of a truncated capture, so that Parse knows the wire length.
//
// A frame cut inside a header Parse needs, or with a header that is wrong,
// gives a *ParseError naming the header. r then keeps every field of the
// headers decoded before it, and of the captured part of a header cut
// short, as tcpdump prints them: the IPv4 addresses and protocol of a
// packet cut in its options, the ports of a TCP or UDP header cut after
// them (PortsOnly), all of a TCP header's fixed fields when its options
// were cut. r.Status says StatusTruncated or StatusMalformed (for a link
// type Parse does not know too), and r.ErrLayer names the header. So a
// capture loop can print every frame's record and ignore the error, or
// check the error to skip such frames.
//
// An IPv4 total length or IPv6 payload length of 0 is taken to mean the
// rest of the frame: Linux captures BIG TCP packets over 64 KiB that way
// (Linux 6.3), and IPv6 jumbograms carry it (RFC 2675).
//
// A capture loop is one call a frame, and allocates nothing for the frames
// it decodes wholly (a *ParseError is one allocation):
//
//	for {
//		frame, info, err := conn.NextFrame()
//		if err != nil {
//			return err
//		}
//		packet.Parse(frame, conn.LinkType(), &info, &rec) // rec.Status says if it is whole
//		out = enc.Append(out[:0], &rec)
//		...
//	}
func Parse(frame []byte, link LinkType, info *Info, r *Record) error {
	wireLen := len(frame)
	if info != nil && info.Length > wireLen {
		wireLen = info.Length
	}
	err := parseFrame(frame, link, wireLen, r)
	if info != nil {
		r.Time = info.Time
		if info.Ifindex != 0 {
			r.Ifindex = info.Ifindex
		}
		if info.Direction != DirectionUnknown {
			r.Direction = info.Direction
		}
		if info.HasVLAN {
			r.InnerVLAN = r.VLAN
			r.VLAN = info.VLANID()
			if r.VLANs < 255 {
				r.VLANs++
			}
		}
	}
	if err != nil {
		pe := err.(*ParseError)
		r.ErrLayer = pe.Layer
		r.Status = StatusMalformed
		if pe.Err == ErrTruncated {
			r.Status = StatusTruncated
		}
	}
	return err
}

// parseFrame fills r from frame, wireLen bytes long on the wire. On error
// r holds what was decoded before the header at fault.
func parseFrame(frame []byte, link LinkType, wireLen int, r *Record) error {
	*r = Record{CapLen: len(frame), Length: wireLen}
	off, et, err := parseLink(frame, link, r)
	if err != nil {
		return err
	}
	r.EtherType = et
	var l3 network
	switch et {
	case wire.EtherTypeIPv4:
		l3, err = parseIPv4(frame, off, wireLen, r)
	case wire.EtherTypeIPv6:
		l3, err = parseIPv6(frame, off, wireLen, r)
	case wire.EtherTypeARP:
		r.Proto = ProtoARP
		return parseARP(frame, off, r)
	default:
		r.Proto = ProtoOther
		return nil
	}
	if err != nil {
		return err
	}
	return parseTransport(frame, l3, r)
}

// parseLink decodes the link-layer header and returns the offset of what
// follows it and its EtherType.
func parseLink(frame []byte, link LinkType, r *Record) (off int, et uint16, err error) {
	if len(frame) == 0 {
		return 0, 0, &ParseError{Layer: LayerFrame, Reason: "empty frame", Err: ErrTruncated}
	}
	switch link {
	case LinkEthernet:
		return parseEthernet(frame, r)
	case LinkLinuxSLL, LinkLinuxSLL2:
		return parseSLL(frame, link, r)
	case LinkRawIP:
		switch v := frame[0] >> 4; v {
		case 4:
			return 0, wire.EtherTypeIPv4, nil
		case 6:
			return 0, wire.EtherTypeIPv6, nil
		default:
			return 0, 0, malformed(LayerIP, 0, "IP version "+strconv.Itoa(int(v))+" is neither 4 nor 6")
		}
	}
	return 0, 0, &ParseError{Layer: LayerFrame, Reason: "unsupported link type " + link.String(), Err: errors.ErrUnsupported}
}

// parseEthernet decodes an Ethernet II header and the VLAN tags after it.
func parseEthernet(frame []byte, r *Record) (off int, et uint16, err error) {
	if len(frame) < wire.EthernetHeaderLen {
		return 0, 0, truncated(LayerEthernet, 0, wire.EthernetHeaderLen, len(frame))
	}
	return parseVLANs(frame, wire.EthernetHeaderLen, binary.BigEndian.Uint16(frame[wire.EtherTypeOff:]), r)
}

// parseVLANs walks the VLAN tags at off, if et, the EtherType before
// them, says there are any, and returns the offset and EtherType of what
// follows them. A tag is its TCI and the next EtherType: the TPID is the
// EtherType before it.
func parseVLANs(frame []byte, off int, et uint16, r *Record) (int, uint16, error) {
	for et == wire.EtherTypeVLAN || et == wire.EtherTypeQinQ || et == wire.EtherTypeQinQv1 {
		if r.VLANs == maxVLANTags {
			return 0, 0, malformed(LayerVLAN, off, "more than "+strconv.Itoa(maxVLANTags)+" VLAN tags")
		}
		if len(frame) < off+wire.VLANTagLen {
			return 0, 0, truncated(LayerVLAN, off, wire.VLANTagLen, len(frame)-off)
		}
		tag := frame[off : off+wire.VLANTagLen]
		switch r.VLANs {
		case 0:
			r.VLAN = binary.BigEndian.Uint16(tag[0:2]) & 0x0fff
		case 1:
			r.InnerVLAN = binary.BigEndian.Uint16(tag[0:2]) & 0x0fff
		}
		r.VLANs++
		et = binary.BigEndian.Uint16(tag[2:4])
		off += wire.VLANTagLen
	}
	return off, et, nil
}

// network is what the IP header says of the transport header after it.
type network struct {
	off     int   // offset of the transport header
	payload int   // IP payload length, from the IP header
	proto   uint8 // IP protocol of the payload
}

// parseIPv4 decodes the IPv4 header at off, with its options. A header
// cut in its options keeps its fixed fields.
func parseIPv4(frame []byte, off, wireLen int, r *Record) (network, error) {
	if len(frame)-off < wire.IPv4HeaderLen {
		return network{}, truncated(LayerIPv4, off, wire.IPv4HeaderLen, len(frame)-off)
	}
	h := frame[off : off+wire.IPv4HeaderLen]
	if v := h[0] >> 4; v != 4 {
		return network{}, malformed(LayerIPv4, off, "IP version "+strconv.Itoa(int(v))+" in an IPv4 header")
	}
	ihl := int(h[0]&0x0f) * 4
	if ihl < wire.IPv4HeaderLen {
		return network{}, malformed(LayerIPv4, off, "IHL "+strconv.Itoa(ihl/4)+" is less than 5")
	}
	total := int(binary.BigEndian.Uint16(h[2:4]))
	if total == 0 {
		total = wireLen - off
	}
	if total < ihl {
		return network{}, malformed(LayerIPv4, off, "total length "+strconv.Itoa(total)+" is less than the header length "+strconv.Itoa(ihl))
	}
	if total > wireLen-off {
		return network{}, malformed(LayerIPv4, off, "total length "+strconv.Itoa(total)+" exceeds the "+strconv.Itoa(wireLen-off)+" bytes left in the frame")
	}
	frag := binary.BigEndian.Uint16(h[6:8])
	r.IPVersion = 4
	r.FragID = uint32(binary.BigEndian.Uint16(h[4:6]))
	r.DontFragment = frag&0x4000 != 0
	r.MoreFragments = frag&0x2000 != 0
	r.FragOffset = (frag & 0x1fff) << 3
	r.Fragment = r.MoreFragments || r.FragOffset != 0
	r.TTL = h[8]
	r.Src = netip.AddrPortFrom(netip.AddrFrom4([4]byte(h[12:16])), 0)
	r.Dst = netip.AddrPortFrom(netip.AddrFrom4([4]byte(h[16:20])), 0)
	r.setIPProto(h[9], total-ihl)
	if len(frame)-off < ihl {
		return network{}, truncated(LayerIPv4, off, ihl, len(frame)-off)
	}
	return network{off: off + ihl, payload: total - ihl, proto: h[9]}, nil
}

// parseIPv6 decodes the IPv6 header at off and the extension headers after
// it.
func parseIPv6(frame []byte, off, wireLen int, r *Record) (network, error) {
	if len(frame)-off < wire.IPv6HeaderLen {
		return network{}, truncated(LayerIPv6, off, wire.IPv6HeaderLen, len(frame)-off)
	}
	h := frame[off : off+wire.IPv6HeaderLen]
	if v := h[0] >> 4; v != 6 {
		return network{}, malformed(LayerIPv6, off, "IP version "+strconv.Itoa(int(v))+" in an IPv6 header")
	}
	left := wireLen - off - wire.IPv6HeaderLen
	plen := int(binary.BigEndian.Uint16(h[4:6]))
	if plen == 0 {
		plen = left
	}
	if plen > left {
		return network{}, malformed(LayerIPv6, off, "payload length "+strconv.Itoa(plen)+" exceeds the "+strconv.Itoa(left)+" bytes left in the frame")
	}
	r.IPVersion = 6
	r.TTL = h[7]
	r.Src = netip.AddrPortFrom(netip.AddrFrom16([16]byte(h[8:24])), 0)
	r.Dst = netip.AddrPortFrom(netip.AddrFrom16([16]byte(h[24:40])), 0)
	pos := off + wire.IPv6HeaderLen
	return parseIPv6Ext(frame, pos, pos+plen, h[6], r)
}

// isIPv6Ext reports whether proto is an extension header parseIPv6Ext
// walks.
func isIPv6Ext(proto uint8) bool {
	switch proto {
	case wire.IPProtoHopOpts, wire.IPProtoRouting, wire.IPProtoFragment, wire.IPProtoDstOpts, wire.IPProtoAH:
		return true
	}
	return false
}

// parseIPv6Ext walks the IPv6 extension headers from pos, the first of
// protocol proto, up to end, the end of the IPv6 payload. Where it stops,
// at the transport header or at one it cannot walk, the Next Header it
// has is r.IPProto.
func parseIPv6Ext(frame []byte, pos, end int, proto uint8, r *Record) (network, error) {
	for n := 0; isIPv6Ext(proto); n++ {
		r.setIPProto(proto, end-pos)
		if n == maxIPv6ExtHdr {
			return network{}, malformed(LayerIPv6Ext, pos, "more than "+strconv.Itoa(maxIPv6ExtHdr)+" extension headers")
		}
		if end-pos < 8 {
			return network{}, malformed(LayerIPv6Ext, pos, "header runs past the IPv6 payload length")
		}
		if len(frame)-pos < 8 {
			return network{}, truncated(LayerIPv6Ext, pos, 8, len(frame)-pos)
		}
		x := frame[pos : pos+8]
		var hlen int
		switch proto {
		case wire.IPProtoFragment:
			hlen = 8
			fo := binary.BigEndian.Uint16(x[2:4])
			r.Fragment = true
			r.FragOffset = fo & 0xfff8
			r.MoreFragments = fo&1 != 0
			r.FragID = binary.BigEndian.Uint32(x[4:8])
		case wire.IPProtoAH:
			hlen = (int(x[1]) + 2) * 4
		default:
			hlen = (int(x[1]) + 1) * 8
		}
		if end-pos < hlen {
			return network{}, malformed(LayerIPv6Ext, pos, "header of "+strconv.Itoa(hlen)+" bytes runs past the IPv6 payload length")
		}
		if len(frame)-pos < hlen {
			return network{}, truncated(LayerIPv6Ext, pos, hlen, len(frame)-pos)
		}
		proto = x[0]
		pos += hlen
		if r.FragOffset != 0 {
			// What follows a non-first fragment's Fragment header is the
			// middle of the original packet, not headers.
			break
		}
	}
	r.setIPProto(proto, end-pos)
	return network{off: pos, payload: end - pos, proto: proto}, nil
}

// setIPProto sets the IP protocol of the payload, and its length, and
// names the traffic by it.
func (r *Record) setIPProto(proto uint8, payload int) {
	r.IPProto = proto
	r.IPPayloadLen = payload
	switch proto {
	case wire.IPProtoTCP:
		r.Proto = ProtoTCP
	case wire.IPProtoUDP:
		r.Proto = ProtoUDP
	case wire.IPProtoICMP:
		r.Proto = ProtoICMP
	case wire.IPProtoICMPv6:
		r.Proto = ProtoICMPv6
	default:
		r.Proto = ProtoIPv6
		if r.IPVersion == 4 {
			r.Proto = ProtoIPv4
		}
	}
}

// parseTransport decodes the transport header l3 describes. It is absent
// from a non-first fragment, and perhaps from a first fragment too short
// to hold it (RFC 1858's tiny fragments); otherwise it is required, and
// required to fit the IP payload.
func parseTransport(frame []byte, l3 network, r *Record) error {
	switch r.Proto {
	case ProtoTCP:
		return parseTCP(frame, l3, r)
	case ProtoUDP:
		return parseUDP(frame, l3, r)
	case ProtoICMP:
		return parseICMP(frame, l3, LayerICMP, r)
	case ProtoICMPv6:
		return parseICMP(frame, l3, LayerICMPv6, r)
	}
	return nil
}

// hasTransport reports whether the transport header of a protocol whose
// header is min bytes long should be there: not in a non-first fragment,
// nor in a first fragment too short to hold it.
func hasTransport(l3 network, min int, r *Record) bool {
	return r.FragOffset == 0 && !(r.Fragment && l3.payload < min)
}

// portsOnly records the ports of a TCP or UDP header cut short after them
// (if it was), and returns the error for the cut.
func portsOnly(frame []byte, off, need int, layer Layer, r *Record) error {
	if h := frame[off:]; len(h) >= 4 {
		r.setPorts(binary.BigEndian.Uint16(h[0:2]), binary.BigEndian.Uint16(h[2:4]))
		r.PortsOnly = true
	}
	return truncated(layer, off, need, len(frame)-off)
}

// parseTCP decodes a TCP header with its options. A header cut in its
// options keeps its fixed fields; one cut before them, its ports.
func parseTCP(frame []byte, l3 network, r *Record) error {
	off, payload := l3.off, l3.payload
	if !hasTransport(l3, wire.TCPHeaderLen, r) {
		return nil
	}
	if payload < wire.TCPHeaderLen {
		return malformed(LayerTCP, off, "IP payload of "+strconv.Itoa(payload)+" bytes cannot hold a TCP header")
	}
	if len(frame)-off < wire.TCPHeaderLen {
		return portsOnly(frame, off, wire.TCPHeaderLen, LayerTCP, r)
	}
	h := frame[off : off+wire.TCPHeaderLen]
	doff := int(h[12]>>4) * 4
	if doff < wire.TCPHeaderLen {
		return malformed(LayerTCP, off, "data offset "+strconv.Itoa(doff/4)+" is less than 5")
	}
	if doff > payload {
		if r.Fragment {
			return nil
		}
		return malformed(LayerTCP, off, "data offset "+strconv.Itoa(doff/4)+" runs past the IP payload of "+strconv.Itoa(payload)+" bytes")
	}
	r.setPorts(binary.BigEndian.Uint16(h[0:2]), binary.BigEndian.Uint16(h[2:4]))
	r.Seq = binary.BigEndian.Uint32(h[4:8])
	r.Ack = binary.BigEndian.Uint32(h[8:12])
	r.TCPFlags = TCPFlags(h[12]&1)<<8 | TCPFlags(h[13])
	r.Window = binary.BigEndian.Uint16(h[14:16])
	r.PayloadLen = payload - doff
	r.Transport = true
	if len(frame)-off < doff {
		return truncated(LayerTCP, off, doff, len(frame)-off)
	}
	return nil
}

// parseUDP decodes a UDP header. A header cut short keeps its ports, if
// they were captured.
func parseUDP(frame []byte, l3 network, r *Record) error {
	off, payload := l3.off, l3.payload
	if !hasTransport(l3, wire.UDPHeaderLen, r) {
		return nil
	}
	if payload < wire.UDPHeaderLen {
		return malformed(LayerUDP, off, "IP payload of "+strconv.Itoa(payload)+" bytes cannot hold a UDP header")
	}
	if len(frame)-off < wire.UDPHeaderLen {
		return portsOnly(frame, off, wire.UDPHeaderLen, LayerUDP, r)
	}
	h := frame[off : off+wire.UDPHeaderLen]
	ulen := int(binary.BigEndian.Uint16(h[4:6]))
	switch {
	case ulen == 0 && r.IPVersion == 6:
		ulen = payload // RFC 2675 jumbogram
	case ulen < wire.UDPHeaderLen:
		return malformed(LayerUDP, off, "length "+strconv.Itoa(ulen)+" is less than 8")
	case ulen > payload && !r.Fragment:
		return malformed(LayerUDP, off, "length "+strconv.Itoa(ulen)+" exceeds the IP payload of "+strconv.Itoa(payload)+" bytes")
	}
	if ulen > payload {
		ulen = payload // a first fragment: the datagram goes on
	}
	r.setPorts(binary.BigEndian.Uint16(h[0:2]), binary.BigEndian.Uint16(h[2:4]))
	r.PayloadLen = ulen - wire.UDPHeaderLen
	r.Transport = true
	return nil
}

// parseICMP decodes the 8-byte header of an ICMP or ICMPv6 message, layer
// naming which.
func parseICMP(frame []byte, l3 network, layer Layer, r *Record) error {
	off, payload := l3.off, l3.payload
	if !hasTransport(l3, 8, r) {
		return nil
	}
	if payload < 8 {
		return malformed(layer, off, "IP payload of "+strconv.Itoa(payload)+" bytes cannot hold an 8-byte header")
	}
	if len(frame)-off < 8 {
		return truncated(layer, off, 8, len(frame)-off)
	}
	r.ICMPType = frame[off]
	r.ICMPCode = frame[off+1]
	r.PayloadLen = payload - 8
	r.Transport = true
	return nil
}

// setPorts puts the transport ports into r.Src and r.Dst.
func (r *Record) setPorts(sport, dport uint16) {
	r.Src = netip.AddrPortFrom(r.Src.Addr(), sport)
	r.Dst = netip.AddrPortFrom(r.Dst.Addr(), dport)
}

// parseARP decodes the ARP packet (RFC 826) at off. Src and Dst get the
// sender and target protocol addresses when they are IPv4. A packet cut
// after its fixed part keeps its operation.
func parseARP(frame []byte, off int, r *Record) error {
	if len(frame)-off < 8 {
		return truncated(LayerARP, off, 8, len(frame)-off)
	}
	h := frame[off:]
	r.ARPOp = binary.BigEndian.Uint16(h[6:8])
	hlen, plen := int(h[4]), int(h[5])
	if n := 8 + 2*hlen + 2*plen; len(h) < n {
		return truncated(LayerARP, off, n, len(h))
	}
	if binary.BigEndian.Uint16(h[2:4]) == wire.EtherTypeIPv4 && plen == 4 {
		spa := 8 + hlen
		tpa := spa + 4 + hlen
		r.Src = netip.AddrPortFrom(netip.AddrFrom4([4]byte(h[spa:spa+4])), 0)
		r.Dst = netip.AddrPortFrom(netip.AddrFrom4([4]byte(h[tpa:tpa+4])), 0)
	}
	return nil
}
