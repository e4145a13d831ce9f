package asm

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ParseError is the error of Parse: what is wrong at a line and column of
// its input, both counted from 1 (the column in bytes).
type ParseError struct {
	Line, Column int
	Msg          string
}

// Error says where and what: "line 2, column 20: ...".
func (e *ParseError) Error() string {
	return fmt.Sprintf("line %d, column %d: %s", e.Line, e.Column, e.Msg)
}

// Parse reads a program in the syntax of Instruction.String, the kernel's
// verifier log: one instruction per line, such as `r0 = *(u16 *)skb[12]`,
// `if r0 != 0x800 goto drop` or `exit`. A line `name:` defines a label at
// the next instruction (an instruction may also follow the colon on the
// same line); jumps and calls name labels, or give offsets as the kernel
// prints them, `goto pc+3`. Immediates are decimal or hexadecimal (0x),
// with an optional sign. `rN = 0x...`, and a decimal that does not fit 32
// bits, load a 64-bit constant (LD_IMM64, as the kernel prints it); a
// decimal that fits is a mov; `rN = imm ll` forces LD_IMM64. Text after
// `//` or `;` is a comment; blank lines are ignored. A helper call may omit
// its number: `call bpf_get_prandom_u32`. Every instruction must pass
// Instruction.Validate or Instruction.ValidateRFC, as for Assemble. Parse
// does not resolve labels: Assemble does.
//
// Errors are *ParseError.
func Parse(src string) (Instructions, error) {
	var insns Instructions
	label, labelLine := "", 0
	for n, line := range strings.Split(src, "\n") {
		p := parser{s: line, line: n + 1}
		if before, _, ok := strings.Cut(line, "//"); ok {
			p.s = before
		}
		if i := strings.IndexByte(p.s, ';'); i >= 0 {
			p.s = p.s[:i]
		}
		p.s = strings.TrimRight(p.s, " \t\r")
		p.space()
		if p.eof() {
			continue
		}
		if name, ok := p.labelDef(); ok {
			if label != "" {
				return nil, p.errorAt(0, "label %q follows label %q: an instruction has one label", name, label)
			}
			label, labelLine = name, p.line
			p.space()
			if p.eof() {
				continue
			}
		}
		ins, err := p.instruction()
		if err != nil {
			return nil, err
		}
		if err := ins.validateAny(); err != nil {
			return nil, p.errorAt(p.stmt, "%v", err)
		}
		ins.Label, label = label, ""
		insns = append(insns, ins)
	}
	if label != "" {
		return nil, &ParseError{Line: labelLine, Column: 1, Msg: fmt.Sprintf("label %q has no instruction after it", label)}
	}
	return insns, nil
}

// parser reads one line.
type parser struct {
	s    string
	pos  int
	line int
	stmt int // where the instruction starts
}

func (p *parser) errorf(format string, args ...any) *ParseError {
	return p.errorAt(p.pos, format, args...)
}

// errorAt is errorf for an error at byte pos of the line.
func (p *parser) errorAt(pos int, format string, args ...any) *ParseError {
	return &ParseError{Line: p.line, Column: pos + 1, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) eof() bool { return p.pos >= len(p.s) }

func (p *parser) rest() string { return p.s[p.pos:] }

// space skips blanks.
func (p *parser) space() {
	for p.pos < len(p.s) && (p.s[p.pos] == ' ' || p.s[p.pos] == '\t') {
		p.pos++
	}
}

// accept skips blanks, then lit if it comes next, and reports whether it
// did.
func (p *parser) accept(lit string) bool {
	p.space()
	if strings.HasPrefix(p.rest(), lit) {
		p.pos += len(lit)
		return true
	}
	return false
}

// expect is accept that fails when lit does not come next.
func (p *parser) expect(lit string) error {
	if !p.accept(lit) {
		return p.errorf("expected %q, found %s", lit, p.found())
	}
	return nil
}

// found describes what comes next, for errors.
func (p *parser) found() string {
	if p.eof() {
		return "end of line"
	}
	r := p.rest()
	if len(r) > 16 {
		r = r[:16] + "..."
	}
	return strconv.Quote(r)
}

func isIdentStart(c byte) bool {
	return c == '_' || c == '.' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

func isIdent(c byte) bool { return isIdentStart(c) || '0' <= c && c <= '9' }

// ident reads an identifier: a letter, '_' or '.', then also digits.
func (p *parser) ident() string {
	p.space()
	start := p.pos
	if p.eof() || !isIdentStart(p.s[p.pos]) {
		return ""
	}
	for p.pos < len(p.s) && isIdent(p.s[p.pos]) {
		p.pos++
	}
	return p.s[start:p.pos]
}

// labelDef reads `name:` at the start of a line.
func (p *parser) labelDef() (string, bool) {
	save := p.pos
	name := p.ident()
	if name != "" && p.pos < len(p.s) && p.s[p.pos] == ':' {
		p.pos++
		return name, true
	}
	p.pos = save
	return "", false
}

// reg reads a register, r0 to r10 or w0 to w10, and reports whether it is
// a 32-bit (w) name.
func (p *parser) reg() (Register, bool, error) {
	p.space()
	start := p.pos
	name := p.ident()
	if len(name) >= 2 && (name[0] == 'r' || name[0] == 'w') {
		if n, err := strconv.ParseUint(name[1:], 10, 8); err == nil && n <= 10 && (n == 0 || name[1] != '0') {
			return Register(n), name[0] == 'w', nil
		}
	}
	p.pos = start
	return 0, false, p.errorf("expected a register, r0 to r10 or w0 to w10, found %s", p.found())
}

// sameReg reads a register that must be r (or w, if w) and equal to want.
func (p *parser) sameReg(want Register, w bool) error {
	start := p.pos
	r, rw, err := p.reg()
	if err != nil {
		return err
	}
	if r != want || rw != w {
		p.pos = start
		p.space()
		return p.errorf("expected %s, found %s", regName(want, w), regName(r, rw))
	}
	return nil
}

// reg64 reads a register that must be a 64-bit (r) name.
func (p *parser) reg64() (Register, error) {
	start := p.pos
	r, w, err := p.reg()
	if err == nil && w {
		p.pos = start
		p.space()
		return 0, p.errorf("expected a 64-bit register, r%d, found w%d", r, r)
	}
	return r, err
}

func regName(r Register, w bool) string {
	return string(appendReg(nil, w, r))
}

// isRegNext reports whether a register name comes next.
func (p *parser) isRegNext() bool {
	save := p.pos
	_, _, err := p.reg()
	p.pos = save
	return err == nil
}

// number reads an integer: an optional sign, then decimal digits or 0x and
// hexadecimal digits. It accepts values from min to max.
func (p *parser) number(min int64, max uint64) (int64, error) {
	p.space()
	start := p.pos
	neg := false
	if !p.eof() && (p.s[p.pos] == '-' || p.s[p.pos] == '+') {
		neg = p.s[p.pos] == '-'
		p.pos++
		p.space()
	}
	base := 10
	if strings.HasPrefix(p.rest(), "0x") || strings.HasPrefix(p.rest(), "0X") {
		base = 16
		p.pos += 2
	}
	digits := p.pos
	for p.pos < len(p.s) && isIdent(p.s[p.pos]) {
		p.pos++
	}
	text := p.s[digits:p.pos]
	v, err := strconv.ParseUint(text, base, 64)
	if errors.Is(err, strconv.ErrRange) {
		p.pos = start
		return 0, p.errorf("%s is out of range: %d to %d", p.s[start:digits]+text, min, max)
	}
	if err != nil || text == "" {
		p.pos = start
		return 0, p.errorf("expected a number, found %s", p.found())
	}
	var out int64
	switch {
	case neg && v <= uint64(-(min+1))+1 && (min < 0 || v == 0):
		out = -int64(v-1) - 1
		if v == 0 {
			out = 0
		}
	case !neg && v <= max:
		out = int64(v)
	default:
		text := p.s[start:p.pos]
		p.pos = start
		return 0, p.errorf("%s is out of range: %d to %d", text, min, max)
	}
	return out, nil
}

// imm32 reads a 32-bit immediate, accepting -2^31 to 2^32-1 and wrapping
// the upper half of that range, as printf's 0x%x of the kernel prints it.
func (p *parser) imm32() (int64, error) {
	v, err := p.number(math.MinInt32, math.MaxUint32)
	return int64(int32(v)), err
}

// offset16 reads a signed 16-bit offset such as +8 or -16.
func (p *parser) offset16() (int16, error) {
	p.space()
	if p.eof() || (p.s[p.pos] != '+' && p.s[p.pos] != '-') {
		return 0, p.errorf("expected an offset, +N or -N, found %s", p.found())
	}
	v, err := p.number(math.MinInt16, math.MaxInt16)
	return int16(v), err
}

// end checks that nothing follows.
func (p *parser) end() error {
	p.space()
	if !p.eof() {
		return p.errorf("unexpected %s after the instruction", p.found())
	}
	return nil
}

// target reads `pc+N`, `pc-N` or a label. It returns the label, or the
// offset when there is none.
func (p *parser) target(min, max int64) (string, int64, error) {
	p.space()
	r := p.rest()
	if strings.HasPrefix(r, "pc+") || strings.HasPrefix(r, "pc-") {
		p.pos += 2
		v, err := p.number(min, uint64(max))
		return "", v, err
	}
	if name := p.ident(); name != "" {
		return name, 0, nil
	}
	return "", 0, p.errorf("expected a label or pc+N, found %s", p.found())
}

// instruction reads one instruction and what may follow it on the line.
func (p *parser) instruction() (Instruction, error) {
	ins, err := p.statement()
	if err != nil {
		return Instruction{}, err
	}
	if err := p.end(); err != nil {
		return Instruction{}, err
	}
	return ins, nil
}

func (p *parser) statement() (Instruction, error) {
	p.space()
	start := p.pos
	p.stmt = start
	switch word := p.ident(); word {
	case "if":
		return p.condJump()
	case "goto", "gotol":
		label, off, err := p.target(math.MinInt32, math.MaxInt32)
		if err != nil {
			return Instruction{}, err
		}
		if word == "goto" {
			if label == "" && (off < math.MinInt16 || off > math.MaxInt16) {
				return Instruction{}, p.errorf("goto offset %d does not fit 16 bits: use gotol", off)
			}
			return Goto(label).WithOffset(int16(off)).withTarget(label), nil
		}
		return GotoL(label).withConstant(off).withTarget(label), nil
	case "call":
		return p.call()
	case "exit":
		ins := Exit()
		if p.accept("off:") {
			off, err := p.number(math.MinInt16, math.MaxInt16)
			if err != nil {
				return Instruction{}, err
			}
			ins.Offset = int16(off)
		}
		return ins, nil
	case "may_goto":
		label, off, err := p.target(math.MinInt16, math.MaxInt16)
		if err != nil {
			return Instruction{}, err
		}
		return MayGoto(label).WithOffset(int16(off)).withTarget(label), nil
	case "callx":
		dst, err := p.reg64()
		return CallX(dst), err
	case "lock":
		return p.lock()
	case "store_release":
		if err := p.expect("("); err != nil {
			return Instruction{}, err
		}
		size, dst, off, err := p.memRef("u")
		if err != nil {
			return Instruction{}, err
		}
		if err := p.expect(","); err != nil {
			return Instruction{}, err
		}
		src, err := p.reg64()
		if err != nil {
			return Instruction{}, err
		}
		return StoreRel.Mem(dst, off, src, size), p.expect(")")
	case "":
		if p.accept("*") {
			return p.store()
		}
		return Instruction{}, p.errorf("expected an instruction, found %s", p.found())
	}
	p.pos = start
	dst, w, err := p.reg()
	if err != nil {
		return Instruction{}, p.errorf("expected an instruction, found %s", p.found())
	}
	p.space()
	for _, op := range aluOps {
		if strings.HasPrefix(p.rest(), op.text) {
			p.pos += len(op.text)
			return p.alu(op.op, dst, w)
		}
	}
	if !p.accept("=") {
		return Instruction{}, p.errorf("expected an assignment after %s, found %s", regName(dst, w), p.found())
	}
	return p.assign(dst, w)
}

func (ins Instruction) withTarget(label string) Instruction {
	ins.Target = label
	return ins
}

func (ins Instruction) withConstant(c int64) Instruction {
	ins.Constant = c
	return ins
}
