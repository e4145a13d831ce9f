package pcapfilter

import (
	"github.com/purebpf/purebpf/internal/wire"
	"github.com/purebpf/purebpf/sockfilter/packet"
)

// The encapsulations: `mpls [label]`, `pppoed` and `pppoes [id]`, which,
// like `vlan`, move the headers everything parsed after them reads
// (gencode.c's gen_mpls, gen_pppoed, gen_pppoes), and the IP protocols of
// `ah`, `esp`, `pim`, `vrrp` and `carp` (gen_proto_abbrev).

// EtherTypes and PPP protocols of the encapsulations.
const (
	etherTypeMPLS   = 0x8847 // ETHERTYPE_MPLS: MPLS unicast
	etherTypePPPoED = 0x8863 // ETHERTYPE_PPPOED: PPPoE discovery
	etherTypePPPoES = 0x8864 // ETHERTYPE_PPPOES: PPPoE session
	pppProtoMPLS    = 0x0281 // PPP_MPLS_UCAST
	mplsLabelMax    = 0xfffff
	pppoeSessionMax = 0xffff
	pppoeHeaderLen  = 6
	mplsLabelLen    = 4
)

// encapState is the parser's state of the encapsulations.
type encapState struct {
	mpls        int   // MPLS labels parsed so far
	linkHdr     int32 // the offset `ether[...]` and `ether host` read from: the PPP header after `pppoes`
	geneve      bool  // after `geneve` (geneve.go)
	geneves     int   // the `geneve` keywords so far: 1, or 2 inside another
	geneveShift int32 // the parser's shift when `geneve` was parsed
}

// linkPPP is the link type of what follows `pppoes`: a PPP frame whose
// 2-byte protocol field is where the EtherType was (LINKTYPE_PPP). It is
// the parser's state only, never a link Compile is given: the checks of
// an Ethernet link (`vlan`, `ether host`) refuse it, as libpcap refuses
// them on DLT_PPP.
const linkPPP packet.LinkType = 9

// pppTypes maps the EtherTypes (and LLC SAPs) that PPP numbers differently
// to PPP protocols (ethertype_to_ppptype); others are the same number.
var pppTypes = map[uint16]uint16{
	wire.EtherTypeIPv4: 0x0021, // PPP_IP
	wire.EtherTypeIPv6: 0x0057, // PPP_IPV6
	0x6003:             0x0027, // ETHERTYPE_DN → PPP_DECNET
	0x809b:             0x0029, // ETHERTYPE_ATALK → PPP_APPLE
	0x0600:             0x003f, // ETHERTYPE_NS → PPP_NS
	0xfe:               0x0023, // LLCSAP_ISONS → PPP_OSI
	0x42:               0x0031, // LLCSAP_8021D → PPP_BRPDU
	0xe0:               0x002b, // LLCSAP_IPX → PPP_IPX
}

// encapLinkType returns the link-type test of t inside an encapsulation,
// and false outside one (then linkType tests the EtherType). Inside MPLS
// it is the bottom-of-stack bit of the last label and the IP version
// (gen_mpls_linktype): any type but IPv4 and IPv6 is an error there,
// recorded to end the parse.
func (p *parser) encapLinkType(t uint16) (pred, bool) {
	switch {
	case p.mpls > 0:
		nl := p.nl()
		var version uint32
		switch t {
		case wire.EtherTypeIPv4:
			version = 0x40
		case wire.EtherTypeIPv6:
			version = 0x60
		default:
			p.encapFail("only ip and ip6 can follow mpls (libpcap: unsupported protocol over mpls)")
			return predConst(false), true
		}
		return and(test(linkLoad(nl-2, 1), cmpSet, 0x01),
			test(aluVal(aluAnd, linkLoad(nl, 1), constVal(0xf0)), cmpEq, version)), true
	case p.link == linkPPP:
		pt, ok := pppTypes[t]
		if !ok {
			pt = t
		}
		return test(linkLoad(p.linkTypeOff(), 2), cmpEq, uint32(pt)), true
	}
	return nil, false
}

// encapFail ends the parse with the error msg at the current token, an
// error of meaning rather than syntax, which no other reading of the
// expression can avoid.
func (p *parser) encapFail(msg string) {
	if p.limit == nil {
		p.fatal = true
		p.limit = &Error{Column: p.lex.at(max(p.i-1, 0)).column(), Msg: msg}
	}
}

// parseEncap parses the encapsulation keyword at t (consumed) and what it
// takes.
func (p *parser) parseEncap(t token) (pred, *Error) {
	switch t.text {
	case "ah", "esp", "pim":
		v := map[string]uint32{"ah": 51, "esp": 50, "pim": 103}[t.text]
		return or(p.ipProto(v), p.ip6Proto(v)), nil
	case "vrrp", "carp":
		// libpcap tests IPv4 only for these (gen_proto_abbrev Q_VRRP,
		// Q_CARP): both are protocol 112.
		return p.ipProto(112), nil
	case "mpls":
		return p.parseMPLS(t)
	case "pppoed":
		if err := p.needEncapLink(t, true); err != nil {
			return nil, err
		}
		return p.linkType(etherTypePPPoED), nil
	case "pppoes":
		return p.parsePPPoES(t)
	case "geneve":
		return p.parseGeneve(t)
	}
	return nil, p.fail(t, "%s is not supported by this compiler", quote(t.text))
}

// needEncapLink refuses the encapsulation at t where libpcap has none: mpls
// on a raw-IP link, anything inside MPLS (but for mpls), and inside PPPoE's PPP
// unless pppOK.
func (p *parser) needEncapLink(t token, pppOK bool) *Error {
	switch {
	case p.cooked() && t.text == "mpls":
		return p.fail(t, "%s is not supported on a %s link (libpcap: no MPLS support for it)", quote(t.text), p.link.Description())
	case p.link == packet.LinkRawIP && t.text == "mpls":
		// pppoed and pppoes test an EtherType, which a raw-IP link
		// never has: libpcap compiles them to reject everything.
		return p.fail(t, "%s needs an Ethernet link", quote(t.text))
	case p.mpls > 0 && t.text != "mpls":
		return p.fail(t, "%s cannot follow mpls (libpcap: unsupported protocol over mpls)", quote(t.text))
	case p.link == linkPPP && !pppOK:
		return p.fail(t, "%s cannot follow pppoes", quote(t.text))
	}
	return nil
}

// optNumber parses the optional number after the keyword at t, at most
// max; what names it in messages. It returns false if there is none.
func (p *parser) optNumber(t token, what string, max uint32) (uint32, bool, *Error) {
	n := p.peek()
	if n.kind != tokWord || keywords[n.text] {
		return 0, false, nil
	}
	v, ok := parseNumber(n.text)
	if isBigNumber(n.text) {
		return 0, false, p.fail(n, "%s %s is greater than %d", what, trunc(n.text), max)
	}
	if !ok {
		return 0, false, p.fail(n, "expected %s after %s, found %s", what, quote(t.text), n)
	}
	if v > max {
		return 0, false, p.fail(n, "%s %d is greater than %d", what, v, max)
	}
	p.next()
	return v, true, nil
}

// parseMPLS parses `mpls [label]` after the keyword at t. The first label
// is the EtherType (on PPP the protocol) of MPLS, each further one the
// previous label's bottom-of-stack bit clear; a label number tests the
// 20 bits of the label; then everything after reads 4 bytes further on.
func (p *parser) parseMPLS(t token) (pred, *Error) {
	if err := p.needEncapLink(t, true); err != nil {
		return nil, err
	}
	nl := p.nl()
	var x pred
	switch {
	case p.mpls > 0:
		x = not(test(linkLoad(nl-2, 1), cmpSet, 0x01))
	case p.link == linkPPP:
		x = test(linkLoad(p.linkTypeOff(), 2), cmpEq, pppProtoMPLS)
	default:
		x = p.linkType(etherTypeMPLS)
	}
	label, has, err := p.optNumber(t, "MPLS label", mplsLabelMax)
	if err != nil {
		return nil, err
	}
	if has {
		x = and(x, test(aluVal(aluAnd, linkLoad(nl, 4), constVal(0xfffff000)), cmpEq, label<<12))
	}
	p.shift += mplsLabelLen
	p.mpls++
	return x, nil
}

// parsePPPoES parses `pppoes [id]` after the keyword at t: the PPPoE
// session EtherType, the 16-bit session ID if given, and then a PPP frame
// after the 6-byte PPPoE header, whose protocol field later link-type
// tests read (gen_pppoes).
func (p *parser) parsePPPoES(t token) (pred, *Error) {
	if err := p.needEncapLink(t, true); err != nil {
		return nil, err
	}
	x := p.linkType(etherTypePPPoES)
	id, has, err := p.optNumber(t, "PPPoE session ID", pppoeSessionMax)
	if err != nil {
		return nil, err
	}
	nl := p.nl()
	if has {
		x = and(x, test(aluVal(aluAnd, linkLoad(nl, 4), constVal(0xffff)), cmpEq, id))
	}
	// The PPP header starts after the PPPoE header: its protocol field is
	// the link type, and the network layer follows it.
	// (On a raw-IP link the PPPoE header would be at 0: libpcap moves the
	// headers there, though its test of the EtherType never holds.)
	p.linkHdr = nl + pppoeHeaderLen
	p.shift = p.linkHdr + 2 - wire.EthernetHeaderLen
	p.link = linkPPP
	return x, nil
}
