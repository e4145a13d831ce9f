package pcapfilter

import (
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Error is the error Compile returns for an expression it cannot
// compile: a syntax error, an unknown keyword, a value out of range, or an
// expression beyond the compiler's limits (then it wraps ErrTooComplex).
//
// Its Error method is one line that stands on its own: it quotes the
// expression, or for a long one the part around the column at fault, so a
// caller prints it as it is, without quoting the expression again.
type Error struct {
	// Expr is the expression.
	Expr string
	// Column is the 1-based column, in bytes, of the token at fault, or 0
	// when the error is about the whole expression.
	Column int
	// Msg says what is wrong and, for syntax errors, what was expected.
	Msg string
	// Err is ErrTooComplex for an expression beyond the compiler's
	// limits, else nil.
	Err error
}

// ErrTooComplex is wrapped by the Error of an expression whose program
// would be bigger than the compiler or the kernel can take: more tests or
// arithmetic than Compile works on, or a jump farther than the verifier
// can patch once it has expanded the packet loads.
var ErrTooComplex = errors.New("expression too complex")

// Error returns the excerpt, the message and the column:
//
//	compile "tcp port 70000": port 70000 is greater than 65535 at column 10
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("compile ")
	b.WriteString(excerpt(e.Expr, e.Column-1))
	b.WriteString(": ")
	b.WriteString(e.Msg)
	if e.Column > 0 {
		b.WriteString(" at column ")
		b.WriteString(strconv.Itoa(e.Column))
	}
	return b.String()
}

// Unwrap returns Err.
func (e *Error) Unwrap() error { return e.Err }

// Bounds of the text an Error quotes, in bytes.
const (
	// maxExcerpt is the longest expression quoted whole; a longer one is
	// quoted from excerptBefore bytes before the column at fault to
	// excerptAfter bytes after it.
	maxExcerpt    = 64
	excerptBefore = 24
	excerptAfter  = 24
	// maxQuoted is the longest token a message quotes whole.
	maxQuoted = 32
)

// excerpt returns expr quoted, or, if it is long, the part of it around
// the byte offset at (from the start when at < 0), with "…" where it is
// cut. It cuts at character boundaries, and strconv.Quote escapes what is
// not valid UTF-8, so the result is valid UTF-8.
func excerpt(expr string, at int) string {
	if len(expr) <= maxExcerpt {
		return strconv.Quote(expr)
	}
	at = max(0, min(at, len(expr)))
	lo, hi := runeStart(expr, max(0, at-excerptBefore)), runeStart(expr, min(len(expr), at+excerptAfter))
	if lo == 0 {
		hi = runeStart(expr, min(len(expr), excerptBefore+excerptAfter))
	}
	s := expr[lo:hi]
	if lo > 0 {
		s = "…" + s
	}
	if hi < len(expr) {
		s += "…"
	}
	return strconv.Quote(s)
}

// quote returns s quoted for a message, cut after maxQuoted bytes.
func quote(s string) string {
	if len(s) <= maxQuoted {
		return strconv.Quote(s)
	}
	return strconv.Quote(s[:runeStart(s, maxQuoted)] + "…")
}

// trunc returns s, a word of the expression (which the lexer keeps to
// ASCII), cut after maxQuoted bytes, for a message to show unquoted.
func trunc(s string) string {
	if len(s) <= maxQuoted {
		return s
	}
	return s[:maxQuoted] + "…"
}

// runeStart returns the start of the character of s at byte offset i: i
// itself, or the offset of the first byte of the UTF-8 sequence i is
// inside of (i where s is not valid UTF-8).
func runeStart(s string, i int) int {
	if i >= len(s) {
		return len(s)
	}
	for j := i; j > 0 && i-j < utf8.UTFMax; j-- {
		if utf8.RuneStart(s[j]) {
			return j
		}
	}
	return i
}
