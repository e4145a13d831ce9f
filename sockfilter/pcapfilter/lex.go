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
	tokWord          // keyword, name, number or address
	tokOp            // operator or punctuation
	tokQuote         // a word escaped with a backslash: \tcp
)

// token is one lexical token: its kind, its text and its byte position.
type token struct {
	kind tokKind
	text string
	pos  int // 0-based byte offset
}

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

// lex splits expr into tokens. A word containing ':' that is neither an
// IPv6 address (with an optional /prefix) nor a MAC address ends before its
// first ':', so that `tcp[2:2]` lexes as `2`, `:`, `2`.
func lex(expr string) ([]token, *Error) {
	var toks []token
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '\\':
			j := i + 1
			for j < len(expr) && isWordByte(expr[j]) && expr[j] != ':' {
				j++
			}
			if j == i+1 {
				return nil, &Error{Column: i + 1, Msg: `expected a protocol name after "\"`}
			}
			toks = append(toks, token{tokQuote, expr[i+1 : j], i})
			i = j
		case isWordByte(c) && c != '-' && c != ':' || c == ':' && i+1 < len(expr) && expr[i+1] == ':':
			j := i
			for j < len(expr) && (isWordByte(expr[j]) || expr[j] == '/' && strings.Contains(expr[i:j], ":")) {
				j++
			}
			w := expr[i:j]
			if k := strings.IndexByte(w, ':'); k >= 0 && !isColonWord(w) {
				w = w[:k]
				j = i + k
				if k == 0 {
					toks = append(toks, token{tokOp, ":", i})
					i++
					continue
				}
			}
			toks = append(toks, token{tokWord, w, i})
			i = j
		default:
			op := ""
			for _, o := range [...]string{"&&", "||", "==", "!=", "<=", ">=", "<<", ">>"} {
				if strings.HasPrefix(expr[i:], o) {
					op = o
					break
				}
			}
			if op == "" {
				if !strings.ContainsRune("()[]:+-*/%&|^=<>!", rune(c)) {
					return nil, &Error{Column: i + 1, Msg: unexpected(expr[i:])}
				}
				op = expr[i : i+1]
			}
			toks = append(toks, token{tokOp, op, i})
			i += len(op)
		}
	}
	return append(toks, token{tokEOF, "", len(expr)}), nil
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

// parseMAC parses a MAC address written as six hexadecimal bytes separated
// by ':', '-' or '.' (libpcap also takes 0011.2233.4455).
func parseMAC(w string) ([6]byte, bool) {
	var mac [6]byte
	var parts []string
	switch {
	case strings.Count(w, ":") == 5:
		parts = strings.Split(w, ":")
	case strings.Count(w, "-") == 5:
		parts = strings.Split(w, "-")
	case strings.Count(w, ".") == 2 && len(w) == 14:
		for _, g := range strings.Split(w, ".") {
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
