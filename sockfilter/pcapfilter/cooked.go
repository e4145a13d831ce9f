package pcapfilter

import (
	"strconv"

	"github.com/purebpf/purebpf/sockfilter/packet"
	"github.com/purebpf/purebpf/sockfilter/skb"
)

// Linux cooked links (packet.LinkLinuxSLL, packet.LinkLinuxSLL2): what
// libpcap 1.10's gencode.c generates for DLT_LINUX_SLL and DLT_LINUX_SLL2,
// in two forms.
//
// Offline (CompileOptions.Offline), the frame starts with the cooked
// header, as in a capture file: the program is libpcap's, reading the
// header's fields in the frame's bytes and the packet at offset 16 (SLL)
// or 20 (SLL2), for sockfilter/vm's RunFrame on the file's frames.
//
// Live (the default), the program is for the "any" device's SOCK_DGRAM
// packet socket (sockfilter.AnyInterface), where no cooked header exists:
// skb->data is the network header. As libpcap's pcap-linux.c does for its
// cooked socket (fix_offset), the loads past the header read the packet
// relative to the network header (SKF_NET_OFF), and the header's fields
// come from the socket buffer: the protocol from skb->protocol, the packet
// type from skb->pkt_type, SLL2's interface index from skb->ifindex (eBPF
// has no SKF_AD_ loads; the program reads struct __sk_buff). A load of any
// other part of the header (its hardware type or address, `link[2:2]`),
// which libpcap runs in user space instead, is refused. `len` is the
// length of the frame libpcap delivers, header included: skb->len plus
// the header's length, as a file written from the capture has it (libpcap's
// kernel filter compares skb->len alone, its user-space filter the length
// with the header).

// cooked reports whether the parser compiles for a Linux cooked link.
func (p *parser) cooked() bool {
	return p.link == packet.LinkLinuxSLL || p.link == packet.LinkLinuxSLL2
}

// liveCooked reports whether it compiles the live form for the "any"
// device's socket.
func (p *parser) liveCooked() bool { return p.cooked() && !p.opts.Offline }

// cookedHeaderLen returns the length of link's cooked header, 0 for a
// link that is not cooked.
func cookedHeaderLen(link packet.LinkType) int32 {
	switch link {
	case packet.LinkLinuxSLL:
		return packet.SLLHeaderLen
	case packet.LinkLinuxSLL2:
		return packet.SLL2HeaderLen
	}
	return 0
}

// The fields of the cooked headers (see packet.SLLHeader) that a live
// program reads from the socket buffer: offset, size and field.
type cookedField struct {
	off   int32
	size  uint8
	field skb.Field
	name  string
}

var (
	sllFields = []cookedField{
		{0, 2, skb.PktType, "packet type"},
		{14, 2, skb.Protocol, "protocol"},
	}
	sll2Fields = []cookedField{
		{0, 2, skb.Protocol, "protocol"},
		{4, 4, skb.Ifindex, "interface index"},
		{10, 1, skb.PktType, "packet type"},
	}
)

// LINUX_SLL_P_ protocols of 802.3 frames, and LLC SAPs (llc.h).
const (
	sllP8023 = 0x0001 // LINUX_SLL_P_802_3: Novell 802.3 frames, no LLC header
	sllP8022 = 0x0004 // LINUX_SLL_P_802_2: 802.2 LLC frames

	sllSAPIP      = 0x06
	sllSAPIPX     = 0xe0
	sllSAPNetBEUI = 0xf0
	sllSAPISONS   = 0xfe
	sllSAPSNAP    = 0xaa

	sllEtherTypeIPX   = 0x8137
	sllEtherTypeATalk = 0x809b
	sllEtherTypeAARP  = 0x80f3
	sllEtherMTU       = 1500

	sllOutgoing = 4 // PACKET_OUTGOING, LINUX_SLL_OUTGOING
)

func init() {
	// libpcap's keywords, so that `host 10.0.0.1 and inbound` is not a
	// bare value of host.
	for _, w := range []string{"inbound", "outbound", "ifindex"} {
		keywords[w] = true
	}
}

// cookedFieldLoad returns the load of the field of the cooked header at
// off of size bytes: from the frame offline, from the socket buffer live.
func (p *parser) cookedFieldLoad(off int32, size uint8) *val {
	if !p.liveCooked() {
		return linkLoad(off, size)
	}
	fields := sllFields
	if p.link == packet.LinkLinuxSLL2 {
		fields = sll2Fields
	}
	for _, f := range fields {
		if f.off == off && f.size == size {
			return skbLoad(f.field)
		}
	}
	panic("pcapfilter: no such cooked header field")
}

// skbLoad returns the value of a field of struct __sk_buff; the protocol
// is converted to host order, as SKF_AD_PROTOCOL gives it.
func skbLoad(f skb.Field) *val {
	size := uint8(4)
	if f == skb.Protocol {
		size = 2
	}
	return &val{kind: valLoad, base: baseSkb, off: int32(f), size: size}
}

// cookedProtocol returns the header's protocol field: an EtherType, or a
// LINUX_SLL_P_ value for 802.3 frames.
func (p *parser) cookedProtocol() *val {
	if p.link == packet.LinkLinuxSLL2 {
		return p.cookedFieldLoad(0, 2)
	}
	return p.cookedFieldLoad(14, 2)
}

// cookedLinkType returns the test that the packet after the cooked header
// is of type t, an EtherType above 1500 or an LLC SAP: for SLL
// gen_linux_sll_linktype, which looks into the LLC header of 802.2
// frames; for SLL2 gen_linktype's default, a comparison of the protocol
// field whatever t is.
func (p *parser) cookedLinkType(t uint16) pred {
	proto := func(v uint32) pred { return test(p.cookedProtocol(), cmpEq, v) }
	if p.link == packet.LinkLinuxSLL2 {
		return proto(uint32(t))
	}
	llc := cookedHeaderLen(p.link) + p.shift
	switch t {
	case sllSAPISONS, sllSAPIP, sllSAPNetBEUI:
		return and(proto(sllP8022), test(linkLoad(llc, 2), cmpEq, uint32(t)<<8|uint32(t)))
	case sllSAPIPX:
		return or(proto(sllEtherTypeIPX), proto(sllP8023),
			and(proto(sllP8022), or(test(linkLoad(llc, 1), cmpEq, sllSAPIPX), p.sllSnap(llc, 0x000000, sllEtherTypeIPX))))
	case sllEtherTypeATalk:
		return or(proto(sllEtherTypeATalk), and(proto(sllP8022), p.sllSnap(llc, 0x080007, sllEtherTypeATalk)))
	case sllEtherTypeAARP:
		return or(proto(sllEtherTypeAARP), and(proto(sllP8022), p.sllSnap(llc, 0x000000, sllEtherTypeAARP)))
	}
	if t <= sllEtherMTU {
		return and(proto(sllP8022), test(linkLoad(cookedHeaderLen(p.link), 1), cmpEq, uint32(t)))
	}
	return proto(uint32(t))
}

// sllSnap returns gen_snap's test of the LLC and SNAP headers at off: DSAP
// and SSAP SNAP, control UI (3), the organisation code and the protocol,
// as two words compared last first (gen_bcmp).
func (p *parser) sllSnap(off int32, org uint32, ptype uint16) pred {
	first := uint32(sllSAPSNAP)<<24 | uint32(sllSAPSNAP)<<16 | 3<<8 | org>>16
	second := (org&0xffff)<<16 | uint32(ptype)
	return and(test(linkLoad(off+4, 4), cmpEq, second), test(linkLoad(off, 4), cmpEq, first))
}

// cookedPrimitive parses the primitives of the cooked header after t:
// `inbound` and `outbound` (the packet type, gen_inbound) and `ifindex N`
// (gen_ifindex). ok is false for another t, or a link that is not cooked.
func (p *parser) cookedPrimitive(t token) (x pred, ok bool, err *Error) {
	if !p.cooked() {
		return nil, false, nil
	}
	switch t.text {
	case "inbound", "outbound":
		var out pred
		if p.link == packet.LinkLinuxSLL2 {
			out = test(p.cookedFieldLoad(10, 1), cmpEq, sllOutgoing)
		} else {
			out = test(p.cookedFieldLoad(0, 2), cmpEq, sllOutgoing)
		}
		if t.text == "inbound" {
			out = not(out)
		}
		return out, true, nil
	case "ifindex":
		n := p.peek()
		v, numOK := parseNumber(n.text)
		if n.kind == tokWord && isBigNumber(n.text) {
			return nil, true, p.fail(n, "interface index %s is out of range (max 4294967295)", trunc(n.text))
		}
		if n.kind != tokWord || !numOK {
			return nil, true, p.fail(n, "expected an interface index after %s, found %s", quote(t.text), n)
		}
		switch {
		case p.link == packet.LinkLinuxSLL2:
			p.next()
			return test(p.cookedFieldLoad(4, 4), cmpEq, v), true, nil
		case p.opts.Offline:
			// SLL has no interface index: libpcap takes it from the
			// socket buffer, which a file does not have.
			return nil, true, p.fail(t, "ifindex not supported on %s when reading savefiles", p.link.Description())
		}
		p.next()
		return test(skbLoad(skb.Ifindex), cmpEq, v), true, nil
	}
	return nil, false, nil
}

// cookedAccess returns the load v of `link[...]` or `ether[...]` for a
// live program: the packet after the header as it is, the header's
// protocol, packet type and (SLL2) interface index from the socket
// buffer; any other part of the header, which the "any" device's socket
// does not have, is refused.
func (p *parser) cookedAccess(t token, v *val) (*val, *Error) {
	hdr := cookedHeaderLen(p.link)
	if !p.liveCooked() || v.off >= hdr {
		return v, nil
	}
	if v.idx != nil {
		return nil, p.fail(t, "%s[...] at a variable offset may read the %s header, which the \"any\" device's live socket does not have: use a constant offset", t.text, p.link.Description())
	}
	fields := sllFields
	if p.link == packet.LinkLinuxSLL2 {
		fields = sll2Fields
	}
	for _, f := range fields {
		if f.off == v.off && f.size == v.size {
			return skbLoad(f.field), nil
		}
	}
	what := ""
	for i, f := range fields {
		switch {
		case i == len(fields)-1 && i > 0:
			what += " and "
		case i > 0:
			what += ", "
		}
		what += quote(t.text+"["+strconv.Itoa(int(f.off))+":"+strconv.Itoa(int(f.size))+"]") + " (" + f.name + ")"
	}
	return nil, p.fail(t, "%s[%d:%d] reads a part of the %s header that the \"any\" device's live socket does not have: only %s can be read live", t.text, v.off, v.size, p.link.Description(), what)
}

// frameForm is where a program's frame starts, for the emitter.
type frameForm struct {
	// base makes a legacy packet load at an offset from the start of
	// the frame relative to the header the program reads from:
	// SKF_LL_OFF, or for the packet after a live cooked header, absent
	// from the socket buffer, SKF_NET_OFF less the header's length.
	base int32
	// lenAdd is what the frame has beyond skb->len, `len`'s value on
	// a packet socket: a live cooked header's bytes.
	lenAdd int32
	// liveHdr is the length of a live cooked header: no load below it
	// may reach the packet loads (cookedFieldLoad reads its fields).
	liveHdr int32
}

// frameFormFor returns the frame form of the programs for link.
func frameFormFor(link packet.LinkType, offline bool) frameForm {
	switch link {
	case packet.LinkRawIP:
		return frameForm{base: skb.NetOff}
	case packet.LinkLinuxSLL, packet.LinkLinuxSLL2:
		hdr := cookedHeaderLen(link)
		if offline {
			// The frame from a file, header and all, as the VM runs
			// it: skb->data and the link-layer header are its start.
			return frameForm{base: skb.LLOff}
		}
		return frameForm{base: skb.NetOff - hdr, lenAdd: hdr, liveHdr: hdr}
	}
	return frameForm{base: skb.LLOff}
}
