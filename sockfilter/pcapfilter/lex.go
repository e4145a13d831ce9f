package pcapfilter

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"
)

// tokKind is the kind of a lexical token of a filter expression.
type tokKind uint8

const (
	tokEOF   tokKind = iota
	tokNone          // white space, which scanToken skips
	tokWord          // keyword, name, number or address
	tokOp            // operator or punctuation
	tokQuote         // a word escaped with a backslash: \tcp
)

// token is one lexical token: its kind, its text and its byte position.
type token struct {
	text string
	pos  int32 // 0-based byte offset
	kind tokKind
}

// column returns the 1-based column of t, as errors give it.
func (t token) column() int { return int(t.pos) + 1 }

// String returns the token as error messages quote it.
func (t token) String() string {
	if t.kind == tokEOF {
		return "end of expression"
	}
	return quote(t.text)
}

// isWordByte reports whether c may appear in a word. Words take '-', '.',
// '_' and ':' as libpcap's scanner does, so that `tcp-syn`, `icmp-echo`,
// `1-1024`, addresses and `len-1` (an unknown name, as in libpcap) are
// single tokens.
func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == ':'
}

// lexer splits an expression into tokens, on demand: the parser reads
// the tokens it needs (looking ahead and backtracking within them), and a
// parse that stops early, at an error or a limit, has not made the tokens
// of the rest. A word containing ':' that is neither an IPv6 address (with
// an optional /prefix) nor a MAC address ends before its first ':', so
// that `tcp[2:2]` lexes as `2`, `:`, `2`.
type lexer struct {
	expr   string
	next   int          // where the next token not yet made starts
	chunks [][]lexToken // the tokens made, in chunks of chunkLen that never move
	n      int          // the number of tokens made
}

// chunkLen is the number of tokens in a chunk of lexer.chunks.
const chunkLen = 1024

// lexToken is a token and what the parser remembers about where it is.
type lexToken struct {
	token
	failed int32 // 1 + the index of how parseOperand failed here, or 0
}

// newLexer returns the lexer of expr, or the error of its first character
// no token can hold: the whole expression is checked first, so that such
// an error is the one reported, wherever it is.
func newLexer(expr string) (*lexer, *Error) {
	for i := 0; i < len(expr); {
		_, j, err := scanToken(expr, i)
		if err != nil {
			return nil, err
		}
		i = j
	}
	return &lexer{expr: expr}, nil
}

// at returns the i-th token; past the last, the end of the expression.
func (l *lexer) at(i int) token {
	if t := l.slot(i); t != nil {
		return t.token
	}
	return token{kind: tokEOF, pos: int32(len(l.expr))}
}

// slot returns the i-th token and what is remembered about it, or nil
// past the last token.
func (l *lexer) slot(i int) *lexToken {
	for l.n <= i {
		if l.next >= len(l.expr) {
			return nil
		}
		t, j, _ := scanToken(l.expr, l.next)
		l.next = j
		if t.kind == tokNone {
			continue
		}
		if l.n%chunkLen == 0 {
			l.chunks = append(l.chunks, make([]lexToken, chunkLen))
		}
		l.chunks[l.n/chunkLen][l.n%chunkLen].token = t
		l.n++
	}
	return &l.chunks[i/chunkLen][i%chunkLen]
}

// scanToken returns the token that starts at byte i of expr, or tokNone
// for white space, and where the next one starts.
func scanToken(expr string, i int) (token, int, *Error) {
	c := expr[i]
	switch {
	case c == ' ' || c == '\t' || c == '\n' || c == '\r':
		j := i + 1
		for j < len(expr) && (expr[j] == ' ' || expr[j] == '\t' || expr[j] == '\n' || expr[j] == '\r') {
			j++
		}
		return token{kind: tokNone}, j, nil
	case c == '\\':
		j := i + 1
		for j < len(expr) && isWordByte(expr[j]) && expr[j] != ':' {
			j++
		}
		if j == i+1 {
			return token{}, 0, &Error{Column: i + 1, Msg: `expected a protocol name after "\\"`}
		}
		return token{kind: tokQuote, text: expr[i+1 : j], pos: int32(i)}, j, nil
	case isWordByte(c) && c != '-' && c != ':' || c == ':' && i+1 < len(expr) && expr[i+1] == ':':
		j, colon := i, false
		for j < len(expr) && (isWordByte(expr[j]) || expr[j] == '/' && colon) {
			colon = colon || expr[j] == ':'
			j++
		}
		w := expr[i:j]
		if k := strings.IndexByte(w, ':'); k >= 0 && !isColonWord(w) {
			if k == 0 {
				return token{kind: tokOp, text: ":", pos: int32(i)}, i + 1, nil
			}
			w, j = w[:k], i+k
		}
		return token{kind: tokWord, text: w, pos: int32(i)}, j, nil
	}
	if i+1 < len(expr) {
		switch o := expr[i : i+2]; o {
		case "&&", "||", "==", "!=", "<=", ">=", "<<", ">>":
			return token{kind: tokOp, text: o, pos: int32(i)}, i + 2, nil
		}
	}
	if strings.IndexByte("()[]:+-*/%&|^=<>!", c) < 0 {
		return token{}, 0, &Error{Column: i + 1, Msg: unexpected(expr[i:])}
	}
	return token{kind: tokOp, text: expr[i : i+1], pos: int32(i)}, i + 1, nil
}

// unexpected returns the message for the character s starts with, which
// no token can start with.
func unexpected(s string) string {
	r, size := utf8.DecodeRuneInString(s)
	if r == utf8.RuneError && size == 1 {
		return fmt.Sprintf("unexpected byte %#02x: the expression is not valid UTF-8", s[0])
	}
	return "unexpected character " + strconv.QuoteRune(r)
}

// isColonWord reports whether w is a word in which ':' belongs: an IPv6
// address, an IPv6 prefix, or a MAC address.
func isColonWord(w string) bool {
	if _, err := netip.ParseAddr(w); err == nil {
		return true
	}
	if a, _, ok := strings.Cut(w, "/"); ok {
		if _, err := netip.ParseAddr(a); err == nil {
			return true
		}
	}
	_, ok := parseMAC(w)
	return ok
}

// parseMAC parses a MAC address in libpcap's forms: six hexadecimal bytes
// separated by ':', '-' or '.', three groups of four digits separated by
// '.' (0011.2233.4455), or twelve digits (001122334455).
func parseMAC(w string) ([6]byte, bool) {
	var mac [6]byte
	var parts []string
	switch {
	case strings.Count(w, ":") == 5:
		parts = strings.Split(w, ":")
	case strings.Count(w, "-") == 5:
		parts = strings.Split(w, "-")
	case strings.Count(w, ".") == 5:
		parts = strings.Split(w, ".")
	case len(w) == 12 && strings.Count(w, ".") == 0:
		for i := 0; i < 12; i += 2 {
			parts = append(parts, w[i:i+2])
		}
	case strings.Count(w, ".") == 2 && len(w) == 14:
		for g := range strings.SplitSeq(w, ".") {
			if len(g) != 4 {
				return mac, false
			}
			parts = append(parts, g[:2], g[2:])
		}
	default:
		return mac, false
	}
	for i, p := range parts {
		if len(p) < 1 || len(p) > 2 {
			return mac, false
		}
		var v byte
		for _, c := range []byte(p) {
			d, ok := hexDigit(c)
			if !ok {
				return mac, false
			}
			v = v<<4 | d
		}
		mac[i] = v
	}
	return mac, true
}

func hexDigit(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// parseNumber parses an unsigned 32-bit number as libpcap does: 0x for
// hexadecimal, a leading 0 for octal, decimal otherwise.
func parseNumber(w string) (uint32, bool) {
	v, ok, big := scanNumber(w)
	return v, ok && !big
}

// isBigNumber reports whether w is a number that does not fit 32 bits.
func isBigNumber(w string) bool {
	_, ok, big := scanNumber(w)
	return ok && big
}

// scanNumber parses w as parseNumber does; ok reports whether w is a
// number, big whether it does not fit 32 bits (v is then 0).
func scanNumber(w string) (v uint32, ok, big bool) {
	base := uint64(10)
	s := w
	switch {
	case len(s) > 2 && (s[:2] == "0x" || s[:2] == "0X"):
		base, s = 16, s[2:]
	case len(s) > 1 && s[0] == '0':
		base, s = 8, s[1:]
	}
	if s == "" {
		return 0, false, false
	}
	var x uint64
	for _, c := range []byte(s) {
		d, ok := hexDigit(c)
		if !ok || uint64(d) >= base {
			return 0, false, false
		}
		if !big {
			x = x*base + uint64(d)
			big = x > 0xffffffff
		}
	}
	if big {
		return 0, true, true
	}
	return uint32(x), true, false
}

// errBigNumber is the message for a number that does not fit 32 bits.
func errBigNumber(w string) string {
	return "number " + trunc(w) + " is out of range (max 4294967295)"
}
