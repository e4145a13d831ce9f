package pcapfilter

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/purebpf/purebpf/internal/wire"
	"github.com/purebpf/purebpf/sockfilter/packet"
)

// The link-level protocols beyond IP, as libpcap 1.10's gencode.c spells
// them for Ethernet (DLT_EN10MB): 802.3 frames with an 802.2 LLC header
// (`llc`, its I, S and U formats and their commands), the protocols named
// by an LLC SAP (`stp`, `ipx`, `netbeui`, `iso` and the OSI protocols over
// it), the ethertypes of DECnet, LAT, MOP, SCA and AppleTalk (with the
// SNAP encapsulations gen_ether_linktype adds), `decnet host AREA.NODE`,
// the link-layer aliases of `ether`, and `broadcast` and `multicast`.

// 802.2 LLC SAPs (libpcap's llc.h).
const (
	sapIP      = 0x06
	sapSTP     = 0x42 // LLCSAP_8021D
	sapSNAP    = 0xaa
	sapIPX     = 0xe0
	sapNetBEUI = 0xf0
	sapISONS   = 0xfe
)

// Ethertypes of the protocols beyond IP.
const (
	etherTypeMOPDL    = 0x6001
	etherTypeMOPRC    = 0x6002
	etherTypeDECnet   = 0x6003
	etherTypeLAT      = 0x6004
	etherTypeSCA      = 0x6007
	etherTypeAtalk    = 0x809b
	etherTypeAARP     = 0x80f3
	etherTypeIPX      = 0x8137
	etherTypeLoopback = 0x9000
)

// maxLength8023 is the largest value of the type/length field that is an
// 802.3 length (ETHERMTU): larger values are ethertypes.
const maxLength8023 = 1500

// OSI network-layer protocol identifiers, the first byte after the LLC
// header of an ISO frame, and the IS-IS PDU types.
const (
	nlpidCLNP = 0x81
	nlpidESIS = 0x82
	nlpidISIS = 0x83

	isisL1LANIIH = 15
	isisL2LANIIH = 16
	isisPTPIIH   = 17
	isisL1LSP    = 18
	isisL2LSP    = 20
	isisL1CSNP   = 24
	isisL2CSNP   = 25
	isisL1PSNP   = 26
	isisL2PSNP   = 27
)

// linkAliases are the words libpcap's scanner reads as `link`, which is
// `ether` on an Ethernet link.
var linkAliases = map[string]bool{"link": true, "fddi": true, "tr": true, "wlan": true, "ppp": true, "slip": true}

// linkProtos are the protocol keywords of this file, each a test of the
// link layer (decnet, lat, ...) or of the OSI protocols (iso, isis, l1,
// ...); es-is and is-is are libpcap's spellings of esis and isis.
var linkProtos = map[string]bool{
	"atalk": true, "aarp": true, "decnet": true, "lat": true, "sca": true, "moprc": true, "mopdl": true,
	"iso": true, "esis": true, "es-is": true, "isis": true, "is-is": true, "clnp": true,
	"l1": true, "l2": true, "iih": true, "lsp": true, "snp": true, "csnp": true, "psnp": true,
	"stp": true, "ipx": true, "netbeui": true,
}

// The parser's tables are shared with the other files of the grammar;
// this file adds its words here rather than in their literals.
func init() {
	for w := range linkProtos {
		keywords[w] = true
		protoQuals[w] = true
	}
	for w := range linkAliases {
		keywords[w] = true
		protoQuals[w] = true
	}
	keywords["llc"] = true
	for w := range linkAliases {
		accessProtos[w] = true
	}
	for w := range linkAccessTypes {
		accessProtos[w] = true
	}
	// pcap_nametoeproto's and pcap_nametollc's names, for `ether proto \name`.
	for name, v := range map[string]uint32{
		"aarp": etherTypeAARP, "atalk": etherTypeAtalk, "decnet": etherTypeDECnet, "lat": etherTypeLAT,
		"loopback": etherTypeLoopback, "mopdl": etherTypeMOPDL, "moprc": etherTypeMOPRC, "sca": etherTypeSCA,
		"iso": sapISONS, "stp": sapSTP, "ipx": sapIPX, "netbeui": sapNetBEUI,
	} {
		etherProtoNames[name] = v
	}
}

// llcSubtypes are the commands `llc NAME` tests (llc_s_subtypes and
// llc_u_subtypes of libpcap's grammar), with the mask of the control
// byte they are compared under (LLC_S_CMD_MASK, LLC_U_CMD_MASK).
var llcSubtypes = map[string][2]uint32{
	"rr": {0x01, 0x0f}, "rnr": {0x05, 0x0f}, "rej": {0x09, 0x0f},
	"ui": {0x03, 0xef}, "ua": {0x63, 0xef}, "disc": {0x43, 0xef}, "dm": {0x0f, 0xef},
	"sabme": {0x6f, 0xef}, "test": {0xe3, 0xef}, "xid": {0xaf, 0xef}, "frmr": {0x87, 0xef},
}

// osiProtoNames are the names after `iso proto \`, as lookup_proto has them.
var osiProtoNames = map[string]uint32{"clnp": nlpidCLNP, "esis": nlpidESIS, "isis": nlpidISIS}

// typeField returns the Ethernet type/length field, after the `vlan`
// keywords parsed so far.
func (p *parser) typeField() *val { return linkLoad(wire.EtherTypeOff+p.shift, 2) }

// is8023 returns the test that the type/length field is an 802.3 length.
func (p *parser) is8023() pred { return not(test(p.typeField(), cmpGt, maxLength8023)) }

// etherProto returns `ether proto v` (gen_linktype): on Ethernet, an
// ethertype above 1500 or an LLC SAP, with the encapsulations
// gen_ether_linktype tests for the SAPs and ethertypes that have several;
// on a raw-IP link, the IP version for IPv4 and IPv6 and false otherwise.
func (p *parser) etherProto(v uint32) pred {
	if p.link != packet.LinkEthernet {
		return p.linkType(uint16(v))
	}
	typ, llc := p.typeField(), p.nl()
	switch v {
	case sapISONS, sapIP, sapNetBEUI:
		// DSAP and SSAP both v.
		return and(p.is8023(), test(linkLoad(llc, 2), cmpEq, v<<8|v))
	case sapIPX:
		// Ethernet_II, then Ethernet_SNAP, Ethernet_802.2 and
		// Ethernet_802.3 (raw 802.3, whose first bytes are 0xffff).
		return or(test(typ, cmpEq, etherTypeIPX), and(p.is8023(),
			or(p.snap(0x000000, etherTypeIPX), test(linkLoad(llc, 1), cmpEq, sapIPX), test(linkLoad(llc, 2), cmpEq, 0xffff))))
	case etherTypeAtalk:
		return or(test(typ, cmpEq, v), and(p.is8023(), p.snap(0x080007, etherTypeAtalk)))
	case etherTypeAARP:
		return or(test(typ, cmpEq, v), and(p.is8023(), p.snap(0x000000, etherTypeAARP)))
	}
	if v <= maxLength8023 {
		// An LLC SAP: the DSAP of an 802.2 frame.
		return and(p.is8023(), test(linkLoad(llc, 1), cmpEq, v))
	}
	return test(typ, cmpEq, v)
}

// snap returns the test of an LLC SNAP header (DSAP and SSAP 0xaa,
// control UI) with organisation code oui and protocol ptype: its last
// four bytes, then its first four (gen_snap, gen_bcmp).
func (p *parser) snap(oui uint32, ptype uint16) pred {
	llc := p.nl()
	return and(test(linkLoad(llc+4, 4), cmpEq, (oui&0xffff)<<16|uint32(ptype)),
		test(linkLoad(llc, 4), cmpEq, sapSNAP<<24|sapSNAP<<16|0x03<<8|oui>>16))
}

// llc returns `llc` (gen_llc): an 802.3 frame that is not raw 802.3
// (Novell's 0xffff).
func (p *parser) llc(t token) (pred, *Error) {
	if p.link != packet.LinkEthernet {
		return nil, p.fail(t, "%s is not supported on a raw IP link: it has no LLC header", quote(t.text))
	}
	return and(p.is8023(), not(test(linkLoad(p.nl(), 2), cmpEq, 0xffff))), nil
}

// parseLLC parses `llc [i|s|u|NAME]` after the keyword at t.
func (p *parser) parseLLC(t token) (pred, *Error) {
	x, err := p.llc(t)
	if err != nil {
		return nil, err
	}
	n := p.peek()
	if n.kind != tokWord || keywords[n.text] || !isName(n.text) {
		return x, nil
	}
	p.next()
	control := linkLoad(p.nl()+2, 1)
	name := strings.ToLower(n.text)
	switch name {
	case "i":
		return and(x, not(test(control, cmpSet, 0x01))), nil
	case "s":
		return and(x, test(aluVal(aluAnd, control, constVal(0x03)), cmpEq, 0x01)), nil
	case "u":
		return and(x, test(aluVal(aluAnd, control, constVal(0x03)), cmpEq, 0x03)), nil
	}
	st, ok := llcSubtypes[name]
	if !ok {
		return nil, p.fail(n, "unknown LLC type name %s: use i, s, u, rr, rnr, rej, ui, ua, disc, dm, sabme, test, xid or frmr", n)
	}
	return and(x, test(aluVal(aluAnd, control, constVal(st[1])), cmpEq, st[0])), nil
}

// osiProto returns the test that an ISO frame carries the OSI protocol v:
// the byte after the 3-byte LLC header (gen_proto for Q_ISO).
func (p *parser) osiProto(v uint32) pred {
	return and(p.etherProto(sapISONS), test(linkLoad(p.nl()+p.nlNoSNAP(), 1), cmpEq, v))
}

// isisPDU returns the test that an IS-IS frame's PDU type is one of vs.
func (p *parser) isisPDU(vs ...uint32) pred {
	ts := make([]pred, len(vs))
	for i, v := range vs {
		ts[i] = test(linkLoad(p.nl()+p.nlNoSNAP()+4, 1), cmpEq, v)
	}
	return and(p.osiProto(nlpidISIS), or(ts...))
}

// linkAbbrev returns the predicate of one of this file's protocol
// keywords alone (gen_proto_abbrev), and reports whether t is one.
func (p *parser) linkAbbrev(t token) (pred, bool, *Error) {
	if linkAliases[t.text] {
		return nil, true, p.fail(t, "%s needs host, src, dst, proto, broadcast or multicast after it: link layer applied in wrong context", quote(t.text))
	}
	var x pred
	switch t.text {
	case "atalk":
		x = p.etherProto(etherTypeAtalk)
	case "aarp":
		x = p.etherProto(etherTypeAARP)
	case "decnet":
		x = p.etherProto(etherTypeDECnet)
	case "lat":
		x = p.etherProto(etherTypeLAT)
	case "sca":
		x = p.etherProto(etherTypeSCA)
	case "moprc":
		x = p.etherProto(etherTypeMOPRC)
	case "mopdl":
		x = p.etherProto(etherTypeMOPDL)
	case "stp":
		x = p.etherProto(sapSTP)
	case "ipx":
		x = p.etherProto(sapIPX)
	case "netbeui":
		x = p.etherProto(sapNetBEUI)
	case "iso":
		x = p.etherProto(sapISONS)
	case "esis", "es-is":
		x = p.osiProto(nlpidESIS)
	case "isis", "is-is":
		x = p.osiProto(nlpidISIS)
	case "clnp":
		x = p.osiProto(nlpidCLNP)
	// The PDU types in the order libpcap tests them.
	case "l1":
		x = p.isisPDU(isisL1PSNP, isisL1CSNP, isisL1LSP, isisL1LANIIH, isisPTPIIH)
	case "l2":
		x = p.isisPDU(isisL2PSNP, isisL2CSNP, isisL2LSP, isisL2LANIIH, isisPTPIIH)
	case "iih":
		x = p.isisPDU(isisPTPIIH, isisL1LANIIH, isisL2LANIIH)
	case "lsp":
		x = p.isisPDU(isisL1LSP, isisL2LSP)
	case "snp":
		x = p.isisPDU(isisL2PSNP, isisL1PSNP, isisL1CSNP, isisL2CSNP)
	case "csnp":
		x = p.isisPDU(isisL1CSNP, isisL2CSNP)
	case "psnp":
		x = p.isisPDU(isisL1PSNP, isisL2PSNP)
	default:
		return nil, false, nil
	}
	return x, true, nil
}

// linkProtoNumber returns `iso proto N` and `isis proto N` (the OSI
// protocol, the IS-IS PDU type), and the error of `proto` after the other
// keywords of this file; it reports whether proto is one of them.
func (p *parser) linkProtoNumber(t, n token, proto string) (pred, bool, *Error) {
	if !linkProtos[proto] {
		return nil, false, nil
	}
	switch proto {
	case "es-is":
		proto = "esis"
	case "is-is":
		proto = "isis"
	}
	var v uint32
	var ok bool
	switch n.kind {
	case tokWord:
		v, ok = parseNumber(n.text)
	case tokQuote:
		// lookup_proto has names for `iso proto` only.
		v, ok = osiProtoNames[n.text]
		switch {
		case proto == "iso" && !ok:
			return nil, true, p.fail(n, "unknown OSI protocol %s: use \\clnp, \\esis or \\isis", quote(n.text))
		case proto == "isis":
			return nil, true, p.fail(n, "unknown protocol %s: isis proto takes a PDU type number", quote(n.text))
		}
	}
	switch proto {
	case "iso", "isis":
		if !ok {
			return nil, true, p.fail(n, "expected a protocol number after %s, found %s", quote(t.text), n)
		}
		if proto == "iso" {
			return p.osiProto(v), true, nil
		}
		return p.isisPDU(v), true, nil
	case "decnet", "atalk":
		return nil, true, p.fail(t, "%s encapsulation is not specifiable: %s proto is not valid", quote(proto), proto)
	}
	return nil, true, p.fail(t, "%s does not encapsulate another protocol: %s proto is not valid", quote(proto), proto)
}

// linkValue parses the value of a primitive whose protocol qualifier is
// one of this file's keywords: a DECnet address for decnet, an error for
// the others; it reports whether q's protocol is one of them.
func (p *parser) linkValue(q qual, t token) (pred, bool, *Error) {
	if !linkProtos[q.proto] {
		return nil, false, nil
	}
	if q.proto != "decnet" {
		return nil, true, p.fail(t, "%s has no addresses: of the link-level protocols, only decnet takes host, src or dst", quote(q.proto))
	}
	if q.typ == "port" || q.typ == "portrange" {
		return nil, true, p.fail(t, "%q qualifier applied to %q: DECnet has no ports", q.proto, q.typ)
	}
	addr, ok := parseDECnetAddr(t.text)
	if !ok {
		return nil, true, p.fail(t, "expected a DECnet address such as 1.2 (area.node), found %s: DECnet names are not resolved", t)
	}
	if n := p.peek(); n.isOp("/") || n.isWord("mask") {
		return nil, true, p.fail(n, "a DECnet address takes no mask")
	}
	return and(p.etherProto(etherTypeDECnet), dirOp(q.dir,
		func() pred { return p.decnetAddr(addr, 15, 3) },
		func() pred { return p.decnetAddr(addr, 7, 1) })), true, nil
}

// parseDECnetAddr parses a DECnet address: AREA.NODE, the area in its 6
// high bits and the node in its 10 low ones, as libpcap's __pcap_atodn
// (which reads the first two numbers of a longer dotted word), or a
// number, of which libpcap keeps the low 16 bits.
func parseDECnetAddr(w string) (uint16, bool) {
	if v, ok := parseNumber(w); ok {
		return uint16(v), true
	}
	parts := strings.Split(w, ".")
	if len(parts) < 2 || len(parts) > 4 {
		return 0, false
	}
	var n [2]uint64
	for i, s := range parts {
		v, err := strconv.ParseUint(s, 10, 31)
		if err != nil {
			return 0, false
		}
		if i < 2 {
			n[i] = v
		}
	}
	return uint16(n[0]<<10&0xfc00 | n[1]&0x3ff), true
}

// decnetAddr returns the test that the DECnet routing header's address at
// lh (long header) or sh (short header) bytes after its flags is addr, for
// the four forms of the header: one byte of padding or none (the flags'
// 0x80 bit with a padding length of 1), a short or a long header
// (gen_dnhostop). The header starts after the 2-byte length; its 16-bit
// addresses are little-endian. The masks and constants are libpcap's as it
// computes them on a little-endian host, where ntohs swaps the bytes.
func (p *parser) decnetAddr(addr uint16, lh, sh int32) pred {
	nl := p.nl()
	k := uint32(addr>>8 | addr<<8)
	flags1 := aluVal(aluAnd, linkLoad(nl+2, 1), constVal(0x07))
	flags2 := aluVal(aluAnd, linkLoad(nl+2, 2), constVal(0xff07))
	return or(
		and(test(flags1, cmpEq, 0x02), test(linkLoad(nl+2+sh, 2), cmpEq, k)),
		and(test(flags2, cmpEq, 0x8102), test(linkLoad(nl+2+1+sh, 2), cmpEq, k)),
		and(test(flags1, cmpEq, 0x06), test(linkLoad(nl+2+lh, 2), cmpEq, k)),
		and(test(flags2, cmpEq, 0x8106), test(linkLoad(nl+2+1+lh, 2), cmpEq, k)))
}

// linkAccessTypes are the protocols of this file that libpcap's gen_load
// indexes, from the link-layer payload, and their ethertypes.
var linkAccessTypes = map[string]uint32{
	"atalk": etherTypeAtalk, "decnet": etherTypeDECnet, "sca": etherTypeSCA, "lat": etherTypeLAT,
	"moprc": etherTypeMOPRC, "mopdl": etherTypeMOPDL,
}

// linkAccess returns where `proto[i]` indexes from, for the aliases of
// `link` and the protocols of linkAccessTypes, and the protocol check
// that must hold before the load (gen_load); it reports whether proto is
// one of them.
func (p *parser) linkAccess(proto string) (int32, pred, bool) {
	if linkAliases[proto] {
		return 0, nil, true
	}
	if v, ok := linkAccessTypes[proto]; ok {
		return p.nl(), p.etherProto(v), true
	}
	return 0, nil, false
}

// castPrimitive returns `[proto] broadcast` or `[proto] multicast`, the
// word at t, after the protocol qualifier at pt (nil for none)
// (gen_broadcast, gen_multicast).
func (p *parser) castPrimitive(pt *token, t token) (pred, *Error) {
	proto := ""
	if pt != nil {
		proto = pt.text
		if linkAliases[proto] {
			proto = "ether"
		}
	}
	nl := p.nl()
	switch proto {
	case "", "ether":
		if p.link != packet.LinkEthernet {
			return nil, p.fail(t, "%s needs an Ethernet link: a raw IP link has no link-layer addresses (use ip %s)", quote(t.text), t.text)
		}
		if t.text == "broadcast" {
			return p.etherHost("dst", [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}), nil
		}
		// The group bit of the destination address.
		return test(linkLoad(0, 1), cmpSet, 0x01), nil
	case "ip":
		if t.text == "multicast" {
			return and(p.linkType(wire.EtherTypeIPv4), test(linkLoad(nl+16, 1), cmpGe, 224)), nil
		}
		netmask := p.opts.Netmask
		if !netmask.IsValid() && p.opts.Offline {
			netmask = netip.IPv4Unspecified() // tcpdump's for a capture file
		}
		if !netmask.Is4() {
			return nil, p.fail(t, "netmask not known, so 'ip broadcast' not supported: set CompileOptions.Netmask to an IPv4 netmask")
		}
		b := netmask.As4()
		hostmask := ^(uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]))
		if hostmask == 0 {
			// Every address is all zeros and all ones in no bits:
			// libpcap's optimiser drops the load of `& 0`.
			return p.linkType(wire.EtherTypeIPv4), nil
		}
		dst := linkLoad(nl+16, 4)
		if hostmask != 0xffffffff {
			dst = aluVal(aluAnd, dst, constVal(hostmask))
		}
		return and(p.linkType(wire.EtherTypeIPv4), or(test(dst, cmpEq, 0), test(dst, cmpEq, hostmask))), nil
	case "ip6":
		if t.text == "multicast" {
			return and(p.linkType(wire.EtherTypeIPv6), test(linkLoad(nl+24, 1), cmpEq, 0xff)), nil
		}
		return nil, p.fail(t, "%s is not valid: IPv6 has no broadcast (use ip6 multicast); only link-layer/IP broadcast filters supported", quote("ip6 broadcast"))
	}
	return nil, p.fail(t, "%s is not valid: %s takes ether, ip or ip6 as its qualifier", quote(proto+" "+t.text), t.text)
}

// nlNoSNAP returns the offset of the network-layer header of an LLC frame
// without SNAP from the link-layer payload (libpcap's off_nl_nosnap): 3,
// the LLC header, on Ethernet; 0 on the Linux cooked links, whose
// payload libpcap takes as starting there.
func (p *parser) nlNoSNAP() int32 {
	if p.cooked() {
		return 0
	}
	return 3
}
