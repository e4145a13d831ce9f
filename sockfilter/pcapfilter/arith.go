package pcapfilter

import "github.com/purebpf/purebpf/internal/wire"

// Arithmetic and relations: `tcp[13] & 2 != 0`, `ip[8] < 64`, `len > 100`.
// As in libpcap, a relation is true when the protocol checks of every
// packet access in it hold (evaluated first, left to right) and then the
// comparison holds; `!=`, `<` and `<=` negate only the comparison.

// Named constants of the arithmetic grammar (pcap-filter(7)).
var exprConstants = map[string]uint32{
	"tcpflags": 13, "icmptype": 0, "icmpcode": 1, "icmp6type": 0, "icmp6code": 1,
	"tcp-fin": 0x01, "tcp-syn": 0x02, "tcp-rst": 0x04, "tcp-push": 0x08,
	"tcp-ack": 0x10, "tcp-urg": 0x20, "tcp-ece": 0x40, "tcp-cwr": 0x80,

	"icmp-echoreply": 0, "icmp-unreach": 3, "icmp-sourcequench": 4, "icmp-redirect": 5,
	"icmp-echo": 8, "icmp-routeradvert": 9, "icmp-routersolicit": 10, "icmp-timxceed": 11,
	"icmp-paramprob": 12, "icmp-tstamp": 13, "icmp-tstampreply": 14, "icmp-ireq": 15,
	"icmp-ireqreply": 16, "icmp-maskreq": 17, "icmp-maskreply": 18,

	"icmp6-destinationunreach": 1, "icmp6-packettoobig": 2, "icmp6-timeexceeded": 3,
	"icmp6-parameterproblem": 4, "icmp6-echo": 128, "icmp6-echoreply": 129,
	"icmp6-multicastlistenerquery": 130, "icmp6-multicastlistenerreportv1": 131,
	"icmp6-multicastlistenerdone": 132, "icmp6-routersolicit": 133, "icmp6-routeradvert": 134,
	"icmp6-neighborsolicit": 135, "icmp6-neighboradvert": 136, "icmp6-redirect": 137,
	"icmp6-routerrenum": 138, "icmp6-nodeinformationquery": 139,
	"icmp6-nodeinformationresponse": 140, "icmp6-ineighbordiscoverysolicit": 141,
	"icmp6-ineighbordiscoveryadvert": 142, "icmp6-multicastlistenerreportv2": 143,
	"icmp6-homeagentdiscoveryrequest": 144, "icmp6-homeagentdiscoveryreply": 145,
	"icmp6-mobileprefixsolicit": 146, "icmp6-mobileprefixadvert": 147,
	"icmp6-certpathsolicit": 148, "icmp6-certpathadvert": 149,
	"icmp6-multicastrouteradvert": 151, "icmp6-multicastroutersolicit": 152,
	"icmp6-multicastrouterterm": 153,
}

// accessProtos are the protocols that can be indexed: `tcp[13]`.
var accessProtos = map[string]bool{
	"ether": true, "link": true, "ip": true, "ip6": true, "arp": true, "rarp": true,
	"tcp": true, "udp": true, "sctp": true, "icmp": true, "igmp": true, "icmp6": true,
}

// mayStartArith reports whether t can begin an arithmetic expression.
func (p *parser) mayStartArith(t token) bool {
	switch {
	case t.isOp("(", "-"):
		return true
	case t.kind != tokWord:
		return false
	case t.text == "len" || t.text == "length":
		return true
	case accessProtos[t.text]:
		return p.lex.at(p.i + 1).isOp("[")
	}
	_, isConst := exprConstants[t.text]
	_, isNum, _ := scanNumber(t.text)
	return isConst || isNum
}

// parseRelation parses `arith relop arith`. It reports committed when the
// input cannot be anything else, so that its error stands; otherwise the
// caller backtracks and tries a primitive.
func (p *parser) parseRelation() (x pred, committed bool, err *Error) {
	saved := p.checks
	p.checks = nil
	defer func() { p.checks = saved }()
	start := p.i
	p.relStart = start
	p.arithFailed = false
	l, err := p.parseArith()
	if err != nil {
		p.arithFailed = true
		return nil, p.fatal, err
	}
	op := p.peek()
	if !op.isOp(">", ">=", "<", "<=", "=", "==", "!=") {
		return nil, p.i-start > 1, p.fail(op, "expected a comparison operator (=, !=, <, <=, >, >=) after the arithmetic expression at column %d, found %s", p.lex.at(start).column(), op)
	}
	p.next()
	if p.peek().kind == tokEOF || !p.mayStartArith(p.peek()) {
		return nil, true, p.fail(p.peek(), "expected an arithmetic expression after %s, found %s", quote(op.text), p.peek())
	}
	r, err := p.parseArith()
	if err != nil {
		return nil, true, err
	}
	var t pred
	switch op.text {
	case "=", "==":
		t = relTest(l, cmpEq, r)
	case "!=":
		t = not(relTest(l, cmpEq, r))
	case ">":
		t = relTest(l, cmpGt, r)
	case ">=":
		t = relTest(l, cmpGe, r)
	case "<":
		t = not(relTest(l, cmpGe, r))
	case "<=":
		t = not(relTest(l, cmpGt, r))
	}
	return and(append(p.checks, t)...), true, nil
}

// relTest returns the comparison l op r, folded when both are constants.
func relTest(l *val, op cmpOp, r *val) pred {
	if l.kind == valConst && r.kind == valConst {
		return predConst(op.eval(l.k, r.k))
	}
	rel := l.readsPacket() || r.readsPacket()
	if r.kind == valConst {
		return &predTest{v: l, op: op, k: r.k, rel: rel}
	}
	return &predTest{v: l, op: op, r: r, rel: rel}
}

// readsPacket reports whether v loads from the packet.
func (v *val) readsPacket() bool {
	return v != nil && (v.kind == valLoad || v.idx.readsPacket() || v.a.readsPacket() || v.b.readsPacket())
}

// Binary operators by precedence level, lowest first, as in grammar.y:
// | below ^ below & below << >> below + - below * / %.
var arithLevels = [][]string{{"|"}, {"^"}, {"&"}, {"<<", ">>"}, {"+", "-"}, {"*", "/", "%"}}

var arithOps = map[string]aluOp{
	"+": aluAdd, "-": aluSub, "*": aluMul, "/": aluDiv, "%": aluMod,
	"&": aluAnd, "|": aluOr, "^": aluXor, "<<": aluLsh, ">>": aluRsh,
}

func (p *parser) parseArith() (*val, *Error) {
	p.fatal = false
	return p.parseOperand()
}

// parseOperand parses a whole arithmetic expression from the current
// token. A failure depends only on where it starts, so parseOperand
// remembers it: the parser tries to read a parenthesised term as
// arithmetic at each of its opening parentheses, and without the memo
// `((((tcp))))` would be read once for each.
func (p *parser) parseOperand() (*val, *Error) {
	slot := p.lex.slot(p.i)
	if slot != nil && slot.failed > 0 {
		f := p.failed[slot.failed-1]
		p.fatal = f.fatal
		if f.far != nil && (p.err == nil || f.far.Column >= p.err.Column) {
			p.err = f.far
		}
		return nil, f.err
	}
	v, err := p.parseLevel(0)
	if err != nil && p.limit == nil && slot != nil {
		f := arithFailure{err: err, fatal: p.fatal, far: p.err}
		if n := len(p.failed); n == 0 || p.failed[n-1] != f {
			p.failed = append(p.failed, f)
		}
		slot.failed = int32(len(p.failed))
	}
	return v, err
}

// arithFailure is how parseOperand failed from a token.
type arithFailure struct {
	err   *Error
	fatal bool
	far   *Error // the error that got furthest
}

func (p *parser) parseLevel(level int) (*val, *Error) {
	if level == len(arithLevels) {
		return p.parseUnary()
	}
	a, err := p.parseLevel(level + 1)
	if err != nil {
		return nil, err
	}
	for {
		t := p.peek()
		if !t.isOp(arithLevels[level]...) {
			return a, nil
		}
		p.next()
		b, err := p.parseLevel(level + 1)
		if err != nil {
			return nil, err
		}
		if a, err = p.arithOp(t, arithOps[t.text], a, b); err != nil {
			return nil, err
		}
	}
}

// arithOp returns a op b, folding constants, and rejects what libpcap
// rejects: division by a constant zero and shifts by more than 31.
func (p *parser) arithOp(t token, op aluOp, a, b *val) (*val, *Error) {
	if b.kind == valConst {
		switch {
		case (op == aluDiv || op == aluMod) && b.k == 0:
			p.fatal = true
			return nil, p.fail(t, "division by zero")
		case (op == aluLsh || op == aluRsh) && b.k > 31:
			p.fatal = true
			return nil, p.fail(t, "shift by more than 31 bits")
		}
	}
	if a.kind == valConst && b.kind == valConst {
		x, y := a.k, b.k
		var r uint32
		switch op {
		case aluAdd:
			r = x + y
		case aluSub:
			r = x - y
		case aluMul:
			r = x * y
		case aluDiv:
			r = x / y
		case aluMod:
			r = x % y
		case aluAnd:
			r = x & y
		case aluOr:
			r = x | y
		case aluXor:
			r = x ^ y
		case aluLsh:
			r = x << y
		case aluRsh:
			r = x >> y
		}
		return constVal(r), nil
	}
	if err := p.count(t); err != nil {
		return nil, err
	}
	return aluVal(op, a, b), nil
}

func (p *parser) parseUnary() (*val, *Error) {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > maxDepth {
		return nil, p.nestLimit(p.peek())
	}
	t := p.next()
	switch {
	case t.isOp("-"):
		a, err := p.parseUnary()
		if err != nil {
			return nil, err
		}
		if a.kind == valConst {
			return constVal(-a.k), nil
		}
		if err := p.count(t); err != nil {
			return nil, err
		}
		return &val{kind: valNeg, a: a}, nil
	case t.isOp("("):
		a, err := p.parseOperand()
		if err != nil {
			return nil, err
		}
		if c := p.next(); !c.isOp(")") {
			return nil, p.fail(c, `expected ")" to close "(" at column %d, found %s`, t.column(), c)
		}
		return a, nil
	case t.kind != tokWord:
	case t.text == "len" || t.text == "length":
		if err := p.count(t); err != nil {
			return nil, err
		}
		return &val{kind: valLen}, nil
	case accessProtos[t.text] && p.peek().isOp("["):
		return p.parseAccess(t)
	default:
		if k, ok := exprConstants[t.text]; ok {
			return constVal(k), nil
		}
		if k, ok := parseNumber(t.text); ok {
			return constVal(k), nil
		}
		if isBigNumber(t.text) {
			// The relation's first word may yet be a bare value:
			// `port 80 or 4294967296` (see parseTerm).
			p.fatal = p.i-1 != p.relStart
			return nil, p.fail(t, "%s", errBigNumber(t.text))
		}
	}
	return nil, p.fail(t, "expected a number, \"len\" or a packet access such as tcp[13], found %s", t)
}

// parseAccess parses `proto[expr]` or `proto[expr:size]` after proto at t.
func (p *parser) parseAccess(t token) (*val, *Error) {
	open := p.next()
	idx, err := p.parseOperand()
	if err != nil {
		return nil, err
	}
	size := uint8(1)
	if c := p.peek(); c.isOp(":") {
		p.next()
		n := p.next()
		v, ok := parseNumber(n.text)
		if n.kind == tokWord && isBigNumber(n.text) {
			p.fatal = true
			return nil, p.fail(n, "data size must be 1, 2, or 4, not %s", trunc(n.text))
		}
		if n.kind != tokWord || !ok {
			return nil, p.fail(n, `expected a size (1, 2 or 4) after ":", found %s`, n)
		}
		if v != 1 && v != 2 && v != 4 {
			p.fatal = true
			return nil, p.fail(n, "data size must be 1, 2, or 4, not %d", v)
		}
		size = uint8(v)
	}
	if c := p.next(); !c.isOp("]") {
		return nil, p.fail(c, `expected "]" to close "[" at column %d, found %s`, open.column(), c)
	}
	v, check, err := p.access(t, idx, size)
	if err != nil {
		p.fatal = true
		return nil, err
	}
	if err := p.count(t); err != nil {
		return nil, err
	}
	if check != nil {
		p.checks = append(p.checks, check)
	}
	return v, nil
}

// access returns the load of size bytes at idx in the header of proto, and
// the protocol check that must hold before it, as libpcap's gen_load.
func (p *parser) access(t token, idx *val, size uint8) (*val, pred, *Error) {
	nl := p.nl()
	load := func(base loadBase, off int32) *val {
		v := &val{kind: valLoad, base: base, size: size}
		if base == baseIPv4 {
			v.nl = nl
		}
		if idx.kind == valConst {
			v.off = off + int32(min(idx.k, 1<<24))
		} else {
			v.off, v.idx = off, idx
		}
		return v
	}
	switch t.text {
	case "ether", "link":
		v, err := p.cookedAccess(t, load(baseLink, p.linkHdr))
		return v, nil, err
	case "ip":
		return load(baseLink, nl), p.linkType(wire.EtherTypeIPv4), nil
	case "ip6":
		return load(baseLink, nl), p.linkType(wire.EtherTypeIPv6), nil
	case "arp":
		return load(baseLink, nl), p.linkType(wire.EtherTypeARP), nil
	case "rarp":
		return load(baseLink, nl), p.linkType(wire.EtherTypeRARP), nil
	case "tcp", "udp", "sctp", "icmp", "igmp":
		check := and(p.linkType(wire.EtherTypeIPv4), test(linkLoad(nl+9, 1), cmpEq, ipProtoNames[t.text]), p.noFrag())
		return load(baseIPv4, 0), check, nil
	case "icmp6":
		check := and(p.linkType(wire.EtherTypeIPv6), test(linkLoad(nl+6, 1), cmpEq, 58))
		return load(baseLink, nl+40), check, nil
	}
	if off, check, ok := p.linkAccess(t.text); ok {
		v, err := p.cookedAccess(t, load(baseLink, off))
		return v, check, err
	}
	return nil, nil, p.fail(t, "%s cannot be indexed", quote(t.text))
}
