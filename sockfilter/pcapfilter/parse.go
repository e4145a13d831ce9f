package pcapfilter

import (
	"fmt"
	"slices"
	"strings"

	"github.com/purebpf/purebpf/internal/wire"
	"github.com/purebpf/purebpf/sockfilter/packet"
)

// parser is a recursive-descent parser of pcap-filter expressions
// (pcap-filter(7), libpcap 1.10's grammar.y). It builds predicates as it
// goes, as libpcap's parser calls gencode: the `vlan` keyword shifts the
// offsets of everything parsed after it, in textual order.
type parser struct {
	lex   *lexer
	i     int
	link  packet.LinkType
	opts  *CompileOptions // never nil
	shift int32           // bytes added to the link-layer payload offset by `vlan`
	err   *Error          // the error that got furthest, kept while backtracking
	depth int             // nesting depth, bounded to keep the stack small

	checks      []pred // protocol checks of the packet accesses of a relation
	relStart    int    // the first token of the relation being parsed
	fatal       bool   // the arithmetic error is not a syntax error: no backtracking
	arithFailed bool   // the relation failed inside its arithmetic

	arith  int            // arithmetic operations and accesses so far (see maxArith)
	failed []arithFailure // see parseOperand
	limit  *Error         // a limit was hit: the parse stops with this error
}

// qual is the qualifiers of a primitive (proto, dir, type), which a bare
// value after `and` or `or` repeats: `port 80 or 443`.
type qual struct {
	proto string // "", "ether" (and its aliases), "ip", "ip6", "arp", "rarp", "tcp", "udp", "sctp", or llc.go's linkProtos
	dir   string // "", "src", "dst", "src or dst", "src and dst"
	typ   string // "", "host", "net", "port", "portrange"
	ok    bool   // false when the last term cannot be repeated
}

const maxDepth = 200

// fail records an error at token t and returns it.
func (p *parser) fail(t token, format string, args ...any) *Error {
	e := &Error{Column: t.column(), Msg: fmt.Sprintf(format, args...)}
	if p.err == nil || e.Column >= p.err.Column {
		p.err = e
	}
	return e
}

func (p *parser) peek() token { return p.lex.at(p.i) }

func (p *parser) next() token {
	t := p.lex.at(p.i)
	if t.kind != tokEOF {
		p.i++
	}
	return t
}

// isOp reports whether t is the operator op.
func (t token) isOp(ops ...string) bool {
	if t.kind != tokOp {
		return false
	}
	return slices.Contains(ops, t.text)
}

// isWord reports whether t is one of the keywords ws.
func (t token) isWord(ws ...string) bool {
	if t.kind != tokWord {
		return false
	}
	return slices.Contains(ws, t.text)
}

func (t token) isAnd() bool { return t.isOp("&&") || t.isWord("and") }
func (t token) isOr() bool  { return t.isOp("||") || t.isWord("or") }
func (t token) isNot() bool { return t.isOp("!") || t.isWord("not") }

// parse parses a whole expression. The empty expression matches every
// frame, as in libpcap.
func (p *parser) parse() (pred, *Error) {
	if p.peek().kind == tokEOF {
		return predConst(true), nil
	}
	e, _, err := p.parseExpr()
	if p.limit != nil {
		return nil, p.limit
	}
	if err != nil {
		return nil, p.bestErr(err)
	}
	if t := p.peek(); t.kind != tokEOF {
		return nil, p.bestErr(p.fail(t, `expected "and", "or" or the end of the expression, found %s`, t))
	}
	return e, nil
}

// bestErr returns the error that got furthest into the expression.
func (p *parser) bestErr(err *Error) *Error {
	if p.err != nil && p.err.Column > err.Column {
		return p.err
	}
	return err
}

// parseExpr parses terms joined by `and` and `or`, which have equal
// precedence and associate to the left (pcap-filter(7)).
func (p *parser) parseExpr() (pred, qual, *Error) {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > maxDepth {
		return nil, qual{}, p.nestLimit(p.peek())
	}
	left, q, err := p.parseTerm(qual{})
	if err != nil {
		return nil, q, err
	}
	for {
		t := p.peek()
		isAnd := t.isAnd()
		if !isAnd && !t.isOr() {
			return left, q, nil
		}
		p.next()
		right, rq, err := p.parseTerm(q)
		if err != nil {
			return nil, q, err
		}
		if isAnd {
			left = and(left, right)
		} else {
			left = or(left, right)
		}
		q = rq
		if size(left) > maxTests {
			p.limit = tooComplex(t.column(), hintTests, "more than %d tests", maxTests)
			return nil, q, p.limit
		}
	}
}

// nestLimit returns the error of nesting deeper than maxDepth at t.
func (p *parser) nestLimit(t token) *Error {
	if p.limit == nil {
		p.fatal = true
		p.limit = tooComplex(t.column(), hintNest, "nested more than %d deep", maxDepth)
	}
	return p.limit
}

// count counts an arithmetic operation or packet access at t, and returns
// the error of the limit when there are more than maxArith.
func (p *parser) count(t token) *Error {
	p.arith++
	if p.arith > maxArith && p.limit == nil {
		p.fatal = true
		p.limit = tooComplex(t.column(), hintArith, "more than %d arithmetic operations", maxArith)
	}
	return p.limit
}

// parseTerm parses a negation, a parenthesised expression, a relation or a
// primitive. A bare value (`443` in `port 80 or 443`) takes the qualifiers
// of the previous term, prev.
func (p *parser) parseTerm(prev qual) (pred, qual, *Error) {
	t := p.peek()
	if t.kind == tokEOF {
		return nil, prev, p.fail(t, "expected a filter primitive, found end of expression")
	}
	if t.isNot() {
		p.next()
		p.depth++
		defer func() { p.depth-- }()
		if p.depth > maxDepth {
			return nil, qual{}, p.nestLimit(t)
		}
		x, q, err := p.parseTerm(prev)
		if err != nil {
			return nil, q, err
		}
		return not(x), q, nil
	}
	if p.mayStartArith(t) {
		start, savedErr, savedArith := p.i, p.err, p.arith
		r, committed, err := p.parseRelation()
		if err == nil {
			return r, qual{}, nil
		}
		if committed || p.limit != nil {
			return nil, qual{}, err
		}
		p.i, p.arith = start, savedArith
		if !p.arithFailed {
			p.err = savedErr
		} else {
			// Report the arithmetic's error if the other reading
			// fails sooner.
			x, q, altErr := p.parseTermNoArith(t, prev)
			if altErr != nil && err.Column > altErr.Column {
				return nil, q, err
			}
			return x, q, altErr
		}
	}
	return p.parseTermNoArith(t, prev)
}

// parseTermNoArith parses a term that is not a relation.
func (p *parser) parseTermNoArith(t token, prev qual) (pred, qual, *Error) {
	if t.isOp("(") {
		p.next()
		e, q, err := p.parseExpr()
		if err != nil {
			return nil, q, err
		}
		if c := p.peek(); !c.isOp(")") {
			return nil, q, p.fail(c, `expected ")" to close "(" at column %d, found %s`, t.column(), c)
		}
		p.next()
		return e, q, nil
	}
	if t.kind == tokWord && !keywords[t.text] && prev.ok {
		p.next()
		x, err := p.parseValue(prev, t)
		return x, prev, err
	}
	return p.parsePrimitive()
}

// keywords are the words that are not values.
var keywords = map[string]bool{}

func init() {
	for w := range strings.FieldsSeq(`and or not ether ip ip6 arp rarp tcp udp icmp icmp6 sctp igmp
		src dst host net port portrange proto mask vlan less greater len link gateway broadcast multicast
		ah esp pim vrrp carp decnet lat moprc mopdl iso stp ipx netbeui atalk aarp sca llc mpls pppoed pppoes geneve`) {
		keywords[w] = true
	}
}

// protoQuals are the protocol qualifiers of primitives.
var protoQuals = map[string]bool{
	"ether": true, "ip": true, "ip6": true, "arp": true, "rarp": true,
	"tcp": true, "udp": true, "sctp": true, "icmp": true, "icmp6": true, "igmp": true,
	"link": true,
}

// parsePrimitive parses a primitive: [proto] [dir] [type] value, a protocol
// alone, `proto N`, `vlan [N]`, `less N` or `greater N`.
func (p *parser) parsePrimitive() (pred, qual, *Error) {
	t := p.next()
	if t.kind != tokWord {
		return nil, qual{}, p.fail(t, "expected a filter primitive, found %s", t)
	}
	if x, ok, err := p.cookedPrimitive(t); ok {
		return x, qual{}, err
	}
	switch t.text {
	case "vlan":
		x, err := p.parseVLAN(t)
		return x, qual{}, err
	case "less", "greater":
		n := p.peek()
		v, ok := parseNumber(n.text)
		if n.kind == tokWord && isBigNumber(n.text) {
			return nil, qual{}, p.fail(n, "length %s is out of range (max 4294967295)", trunc(n.text))
		}
		if n.kind != tokWord || !ok {
			return nil, qual{}, p.fail(n, "expected a length after %s, found %s", quote(t.text), n)
		}
		p.next()
		if t.text == "less" {
			return not(test(&val{kind: valLen}, cmpGt, v)), qual{}, nil
		}
		return test(&val{kind: valLen}, cmpGe, v), qual{}, nil
	case "proto":
		x, err := p.parseProtoNumber(t, "")
		return x, qual{}, err
	case "len":
		return nil, qual{}, p.fail(p.peek(), `expected a comparison operator after "len", found %s`, p.peek())
	case "llc":
		x, err := p.parseLLC(t)
		return x, qual{}, err
	case "broadcast", "multicast":
		x, err := p.castPrimitive(nil, t)
		return x, qual{}, err
	case "gateway", "mpls", "pppoed", "pppoes", "geneve",
		"ah", "esp", "pim", "vrrp", "carp", "mask":
		return nil, qual{}, p.fail(t, "%s is not supported by this compiler", quote(t.text))
	}
	var q qual
	last := t // the last qualifier, for messages
	if protoQuals[t.text] {
		q.proto = t.text
		if linkAliases[q.proto] {
			q.proto = "ether"
		}
		n := p.peek()
		switch {
		case n.isWord("proto"):
			p.next()
			x, err := p.parseProtoNumber(n, q.proto)
			return x, qual{}, err
		case n.isWord("src", "dst", "host", "net", "port", "portrange"):
		case n.isWord("broadcast", "multicast"):
			p.next()
			x, err := p.castPrimitive(&t, n)
			return x, qual{}, err
		default:
			x, err := p.protoAbbrev(t)
			return x, qual{}, err
		}
		last, t = t, p.next()
	}
	if t.isWord("src", "dst") {
		q.dir = t.text
		if n := p.peek(); n.isAnd() || n.isOr() {
			if nn := p.lex.at(p.i + 1); nn.isWord("src", "dst") && nn.text != t.text {
				p.next()
				t = p.next()
				q.dir = "src or dst"
				if n.isAnd() {
					q.dir = "src and dst"
				}
			}
		}
		last, t = t, p.next()
	}
	if t.isWord("host", "net", "port", "portrange") {
		q.typ = t.text
		last, t = t, p.next()
	}
	q.ok = true
	if t.kind != tokWord || keywords[t.text] {
		what := "a host, network or port"
		switch {
		case q.typ == "port":
			what = "a port number"
		case q.typ == "portrange":
			what = "a port range such as 1-1024"
		case q.typ == "host" || q.typ == "net" || q.dir != "" || q.proto != "":
			if q.typ == "net" {
				what = "a network"
			} else {
				what = "an address"
			}
		}
		if q.typ == "" && q.dir == "" && q.proto == "" {
			return nil, q, p.fail(t, "unknown keyword %s", t)
		}
		return nil, q, p.fail(t, "expected %s after %s, found %s", what, quote(last.text), t)
	}
	if q.typ == "" && q.dir == "" && q.proto == "" && isBigNumber(t.text) {
		return nil, q, p.fail(t, "%s", errBigNumber(t.text))
	}
	if q.typ == "" && q.dir == "" && q.proto == "" && !isName(t.text) {
		return nil, q, p.fail(t, `expected a qualifier such as "host", "net" or "port" before %s`, t)
	}
	x, err := p.parseValue(q, t)
	return x, q, err
}

// parseVLAN parses `vlan [ID]` after the keyword at t.
func (p *parser) parseVLAN(t token) (pred, *Error) {
	if p.link != packet.LinkEthernet {
		return nil, p.fail(t, "%s needs an Ethernet link", quote(t.text))
	}
	nl := p.nl()
	tpid := linkLoad(12+p.shift, 2)
	x := or(test(tpid, cmpEq, wire.EtherTypeVLAN), test(tpid, cmpEq, wire.EtherTypeQinQ), test(tpid, cmpEq, wire.EtherTypeQinQv1))
	if n := p.peek(); n.kind == tokWord && !keywords[n.text] {
		id, ok := parseNumber(n.text)
		if isBigNumber(n.text) {
			return nil, p.fail(n, "VLAN ID %s is greater than 4095", trunc(n.text))
		}
		if !ok {
			return nil, p.fail(n, "expected a VLAN ID after %s, found %s", quote(t.text), n)
		}
		if id > 4095 {
			return nil, p.fail(n, "VLAN ID %d is greater than 4095", id)
		}
		p.next()
		x = and(x, test(aluVal(aluAnd, linkLoad(nl, 2), constVal(0x0fff)), cmpEq, id))
	}
	p.shift += 4
	return x, nil
}

// parseProtoNumber parses the number or escaped name after `proto` (at t)
// qualified by proto: "", "ip", "ip6" or "ether", or one of llc.go's
// protocols (`iso proto N`; see linkProtoNumber).
func (p *parser) parseProtoNumber(t token, proto string) (pred, *Error) {
	n := p.next()
	if x, ok, err := p.linkProtoNumber(t, n, proto); ok {
		return x, err
	}
	var v uint32
	var ok bool
	switch n.kind {
	case tokWord:
		v, ok = parseNumber(n.text)
		if !ok && proto != "ether" {
			v, ok = ipProtoNames[n.text]
		}
		if !ok && proto == "ether" && !keywords[n.text] {
			v, ok = etherProtoNames[n.text]
		}
	case tokQuote:
		if proto == "ether" {
			v, ok = etherProtoNames[n.text]
		} else {
			v, ok = ipProtoNames[n.text]
		}
		if !ok {
			return nil, p.fail(n, "unknown protocol %s", quote(n.text))
		}
	}
	big := n.kind == tokWord && isBigNumber(n.text)
	switch {
	case big && proto == "ether":
		return nil, p.fail(n, "ether proto %s is greater than 65535", trunc(n.text))
	case big:
		return nil, p.fail(n, "IP protocol %s is greater than 255", trunc(n.text))
	case !ok:
		return nil, p.fail(n, "expected a protocol number after %s, found %s", quote(t.text), n)
	}
	switch proto {
	case "ether":
		if v > 0xffff {
			return nil, p.fail(n, "ether proto %d is greater than 65535", v)
		}
		return p.etherProto(v), nil
	case "", "ip", "ip6":
		if v > 255 {
			return nil, p.fail(n, "IP protocol %d is greater than 255", v)
		}
		switch proto {
		case "ip":
			return p.ipProto(uint8(v)), nil
		case "ip6":
			return p.ip6Proto(uint8(v)), nil
		}
		return or(p.ipProto(uint8(v)), p.ip6Proto(uint8(v))), nil
	}
	return nil, p.fail(t, "%s cannot qualify %s", quote(proto), quote(t.text))
}

// IP protocol numbers by name, for `proto \tcp`.
var ipProtoNames = map[string]uint32{"icmp": 1, "igmp": 2, "tcp": 6, "udp": 17, "icmp6": 58, "sctp": 132}

// Ethertypes by name, for `ether proto \ip`.
var etherProtoNames = map[string]uint32{"ip": wire.EtherTypeIPv4, "ip6": wire.EtherTypeIPv6, "arp": wire.EtherTypeARP, "rarp": wire.EtherTypeRARP}

// protoAbbrev returns the predicate of a protocol keyword alone (`tcp`).
func (p *parser) protoAbbrev(t token) (pred, *Error) {
	switch t.text {
	case "ip":
		return p.linkType(wire.EtherTypeIPv4), nil
	case "ip6":
		return p.linkType(wire.EtherTypeIPv6), nil
	case "arp":
		return p.linkType(wire.EtherTypeARP), nil
	case "rarp":
		return p.linkType(wire.EtherTypeRARP), nil
	case "tcp", "udp", "sctp":
		v := uint8(ipProtoNames[t.text])
		return or(p.ipProto(v), p.ip6Proto(v)), nil
	case "icmp", "igmp":
		return p.ipProto(uint8(ipProtoNames[t.text])), nil
	case "icmp6":
		return p.ip6Proto(58), nil
	}
	if x, ok, err := p.linkAbbrev(t); ok {
		return x, err
	}
	return nil, p.fail(t, "expected a qualifier after %s", quote(t.text))
}

// isName reports whether w is a word that starts with a letter and is not
// an address.
func isName(w string) bool {
	return w != "" && (w[0] >= 'a' && w[0] <= 'z' || w[0] >= 'A' && w[0] <= 'Z') && !strings.Contains(w, ":")
}
