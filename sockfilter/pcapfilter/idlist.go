package pcapfilter

// Values in parentheses: a list of values joined by `and` and `or`, with
// `not` and nested parentheses, that all take the qualifiers before the
// parentheses (grammar.y's `id` and `pid`): `tcp port (80 or 443)`,
// `src host (10.0.0.1 or 10.0.0.2)`, and after `and` or `or` the
// qualifiers of the term before, as a bare value does: `host 10.0.0.2 and
// (192.168.1.1 or 192.168.1.100)`.

// isValueList reports whether the "(" at token i starts a list of values
// rather than an expression: after any "(", `not` and "!", a value (a
// word that is not a keyword) followed by `and`, `or`, ")", or, for an
// address, "/" or `mask`. It decides as libpcap's parser does on the
// token after the first value.
func (p *parser) isValueList(i int) bool {
	t := p.lex.at(i)
	for t.isOp("(") || t.isNot() {
		i++
		t = p.lex.at(i)
	}
	if t.kind != tokWord || keywords[t.text] {
		return false
	}
	n := p.lex.at(i + 1)
	if n.isOp("/") {
		_, isNum := parseNumber(t.text)
		return !isNum
	}
	return n.isAnd() || n.isOr() || n.isOp(")") || n.isWord("mask")
}

// parseID parses a value, `not` and a value, or a parenthesised list of
// them, with the qualifiers q; t, already consumed, is its first token.
func (p *parser) parseID(q qual, t token) (pred, *Error) {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > maxDepth {
		return nil, p.nestLimit(t)
	}
	switch {
	case t.isNot():
		x, err := p.parseID(q, p.next())
		if err != nil {
			return nil, err
		}
		return not(x), nil
	case t.isOp("("):
		x, err := p.parseID(q, p.next())
		if err != nil {
			return nil, err
		}
		for {
			op := p.peek()
			if !op.isAnd() && !op.isOr() {
				break
			}
			p.next()
			y, err := p.parseID(q, p.next())
			if err != nil {
				return nil, err
			}
			if op.isAnd() {
				x = and(x, y)
			} else {
				x = or(x, y)
			}
			if size(x) > maxTests {
				p.limit = tooComplex(op.column(), hintTests, "more than %d tests", maxTests)
				return nil, p.limit
			}
		}
		if c := p.peek(); !c.isOp(")") {
			return nil, p.fail(c, `expected ")" to close "(" at column %d, found %s`, t.column(), c)
		}
		p.next()
		return x, nil
	case t.kind == tokWord && !keywords[t.text]:
		return p.parseValue(q, t)
	}
	return nil, p.fail(t, "expected %s in the parentheses, found %s", valueWhat(q), t)
}

// valueWhat names what a value with the qualifiers q is, for messages.
func valueWhat(q qual) string {
	switch q.typ {
	case "port":
		return "a port number"
	case "portrange":
		return "a port range such as 1-1024"
	case "net":
		return "a network"
	case "host":
		return "an address"
	}
	return "a host, network or port"
}
