package asm

// The readers of each instruction form, after statement has told them
// apart.

import (
	"math"
	"strconv"
	"strings"
)

// aluOps are the compound assignments, longest first where one is a
// prefix of another.
var aluOps = []struct {
	text string
	op   ALUOp
}{
	{"s>>=", ArSh}, {"s/=", SDiv}, {"s%=", SMod},
	{"+=", Add}, {"-=", Sub}, {"*=", Mul}, {"/=", Div}, {"|=", Or}, {"&=", And},
	{"<<=", LSh}, {">>=", RSh}, {"%=", Mod}, {"^=", Xor},
}

// regOfWidth reads a source register, which must be as wide as dst: r for
// 64 bits, w for 32.
func (p *parser) regOfWidth(dst Register, w bool) (Register, error) {
	src, sw, err := p.reg()
	if err != nil {
		return 0, err
	}
	if sw != w {
		return 0, p.errorf("%s and %s differ in width", regName(dst, w), regName(src, sw))
	}
	return src, nil
}

// alu reads the operand of `dst op= operand`.
func (p *parser) alu(op ALUOp, dst Register, w bool) (Instruction, error) {
	if p.isRegNext() {
		src, err := p.regOfWidth(dst, w)
		if err != nil {
			return Instruction{}, err
		}
		if w {
			return op.Reg32(dst, src), nil
		}
		return op.Reg(dst, src), nil
	}
	v, err := p.imm32()
	if err != nil {
		return Instruction{}, err
	}
	if w {
		return op.Imm32(dst, int32(v)), nil
	}
	return op.Imm(dst, int32(v)), nil
}

// assign reads what follows `dst =`.
func (p *parser) assign(dst Register, w bool) (Instruction, error) {
	p.space()
	r := p.rest()
	switch {
	case strings.HasPrefix(r, "*("):
		if w {
			return Instruction{}, p.errorAt(p.stmt, "loads write a 64-bit register: use r%d", dst)
		}
		return p.load(dst)
	case strings.HasPrefix(r, "-") && len(r) > 1 && !isDigitOrSpace(r[1]):
		p.pos++
		return negate(dst, w), p.sameReg(dst, w)
	case strings.HasPrefix(r, "(s"):
		p.pos += 2
		at := p.pos
		bits, err := p.number(0, 32)
		if err != nil {
			return Instruction{}, err
		}
		var op ALUOp
		switch bits {
		case 8:
			op = MovSX8
		case 16:
			op = MovSX16
		case 32:
			op = MovSX32
		default:
			return Instruction{}, p.errorAt(at, "sign extension from %d bits: expected 8, 16 or 32", bits)
		}
		if err := p.expect(")"); err != nil {
			return Instruction{}, err
		}
		return p.alu(op, dst, w)
	}
	if p.isRegNext() {
		return p.alu(Mov, dst, w)
	}
	start := p.pos
	switch word := p.ident(); {
	case word == "":
	case strings.HasPrefix(word, "be") || strings.HasPrefix(word, "le") || strings.HasPrefix(word, "bswap"):
		return p.endian(dst, w, word, start)
	case word == "map", word == "btf", word == "func":
		if w {
			return Instruction{}, p.errorAt(p.stmt, "ld_imm64 writes a 64-bit register: use r%d", dst)
		}
		return p.pseudo(dst, word)
	case word == "load_acquire":
		return p.loadAcquire(dst, w)
	case strings.HasPrefix(word, "atomic"):
		return p.atomic(dst, w, word, start)
	default:
		p.pos = start
		return Instruction{}, p.errorf("unknown operand %s", p.found())
	}
	if w {
		return p.alu(Mov, dst, w)
	}
	hex := strings.HasPrefix(strings.TrimLeft(p.rest(), "+- \t"), "0x")
	v, err := p.number(math.MinInt64, math.MaxUint64)
	if err != nil {
		return Instruction{}, err
	}
	if p.accept("ll") || hex || v < math.MinInt32 || v > math.MaxInt32 {
		return LoadImm64(dst, v), nil
	}
	return Mov.Imm(dst, int32(v)), nil
}

func isDigitOrSpace(c byte) bool { return c == ' ' || c == '\t' || '0' <= c && c <= '9' }

func negate(dst Register, w bool) Instruction {
	if w {
		return Negate32(dst)
	}
	return Negate(dst)
}

// endian reads `dst = be16 dst`, `le32`, `bswap64`, ...; word is what was
// read after `=`.
func (p *parser) endian(dst Register, w bool, word string, start int) (Instruction, error) {
	var kind string
	for _, k := range []string{"bswap", "be", "le"} {
		if strings.HasPrefix(word, k) {
			kind = k
			break
		}
	}
	bits, err := strconv.Atoi(word[len(kind):])
	if err != nil || bits != 16 && bits != 32 && bits != 64 {
		p.pos = start
		return Instruction{}, p.errorf("expected %s16, %s32 or %s64, found %s", kind, kind, kind, p.found())
	}
	if w {
		return Instruction{}, p.errorAt(p.stmt, "the kernel writes byte swaps with r registers: r%d = %s r%d", dst, word, dst)
	}
	if err := p.sameReg(dst, false); err != nil {
		return Instruction{}, err
	}
	switch kind {
	case "be":
		return ToBE(dst, int32(bits)), nil
	case "le":
		return ToLE(dst, int32(bits)), nil
	}
	return BSwap(dst, int32(bits)), nil
}

// size reads u8 to u64 (or s8 to s32, if prefix is "s"), then ` *)`.
func (p *parser) size(prefix string) (Size, error) {
	p.space()
	start := p.pos
	word := p.ident()
	var size Size
	if strings.HasPrefix(word, prefix) {
		switch word[len(prefix):] {
		case "8":
			size = Byte
		case "16":
			size = Half
		case "32":
			size = Word
		case "64":
			if prefix == "u" {
				size = DWord
			}
		}
	}
	if size == 0 {
		p.pos = start
		return 0, p.errorf("expected an access size, %s8 to %s, found %s", prefix, map[string]string{"u": "u64", "s": "s32"}[prefix], p.found())
	}
	return size, p.expect("*)")
}

// memRef reads `(size *)(reg +off)`; prefix is "u", or "s" for the
// sign-extending loads.
func (p *parser) memRef(prefix string) (Size, Register, int16, error) {
	if err := p.expect("("); err != nil {
		return 0, 0, 0, err
	}
	size, err := p.size(prefix)
	if err != nil {
		return 0, 0, 0, err
	}
	reg, off, err := p.addr()
	return size, reg, off, err
}

// addr reads `(reg +off)`; the offset may be left out.
func (p *parser) addr() (Register, int16, error) {
	if err := p.expect("("); err != nil {
		return 0, 0, err
	}
	reg, err := p.reg64()
	if err != nil {
		return 0, 0, err
	}
	var off int16
	if !p.accept(")") {
		if off, err = p.offset16(); err != nil {
			return 0, 0, err
		}
		if err := p.expect(")"); err != nil {
			return 0, 0, err
		}
	}
	return reg, off, nil
}

// load reads `*(u32 *)(src +off)`, `*(s16 *)(src +off)`, `*(u16 *)skb[k]`
// or `*(u8 *)skb[src + k]`.
func (p *parser) load(dst Register) (Instruction, error) {
	p.pos += 2
	p.space()
	sx := strings.HasPrefix(p.rest(), "s")
	prefix := "u"
	if sx {
		prefix = "s"
	}
	size, err := p.size(prefix)
	if err != nil {
		return Instruction{}, err
	}
	if !sx && p.accept("skb[") {
		if dst != R0 {
			return Instruction{}, p.errorAt(p.stmt, "legacy packet loads write r0, not r%d", dst)
		}
		if size == DWord {
			return Instruction{}, p.errorf("legacy packet loads read u8, u16 or u32")
		}
		var ins Instruction
		if p.isRegNext() {
			src, err := p.reg64()
			if err != nil {
				return Instruction{}, err
			}
			if err := p.expect("+"); err != nil {
				return Instruction{}, err
			}
			k, err := p.number(math.MinInt32, math.MaxInt32)
			if err != nil {
				return Instruction{}, err
			}
			ins = LoadInd(src, int32(k), size)
		} else {
			k, err := p.number(math.MinInt32, math.MaxInt32)
			if err != nil {
				return Instruction{}, err
			}
			ins = LoadAbs(int32(k), size)
		}
		return ins, p.expect("]")
	}
	src, off, err := p.addr()
	if err != nil {
		return Instruction{}, err
	}
	if sx {
		return LoadMemSX(dst, src, off, size), nil
	}
	return LoadMem(dst, src, off, size), nil
}

// store reads what follows `*` in `*(u32 *)(dst +off) = src` or `= imm`.
func (p *parser) store() (Instruction, error) {
	if err := p.expect("("); err != nil {
		return Instruction{}, err
	}
	size, err := p.size("u")
	if err != nil {
		return Instruction{}, err
	}
	dst, off, err := p.addr()
	if err != nil {
		return Instruction{}, err
	}
	if err := p.expect("="); err != nil {
		return Instruction{}, err
	}
	if p.isRegNext() {
		src, err := p.reg64()
		return StoreMem(dst, off, src, size), err
	}
	v, err := p.imm32()
	return StoreImm(dst, off, int32(v), size), err
}

// lock reads what follows `lock` in `lock *(u64 *)(dst +off) += src`.
func (p *parser) lock() (Instruction, error) {
	if err := p.expect("*"); err != nil {
		return Instruction{}, err
	}
	size, dst, off, err := p.memRef("u")
	if err != nil {
		return Instruction{}, err
	}
	p.space()
	var op AtomicOp
	switch {
	case p.accept("+="):
		op = AtomicAdd
	case p.accept("|="):
		op = AtomicOr
	case p.accept("&="):
		op = AtomicAnd
	case p.accept("^="):
		op = AtomicXor
	default:
		return Instruction{}, p.errorf("expected +=, |=, &= or ^=, found %s", p.found())
	}
	src, err := p.reg64()
	return op.Mem(dst, off, src, size), err
}

// atomic reads `atomic64_fetch_add((u64 *)(dst +off), src)`, `_xchg` and
// `_cmpxchg((u64 *)(dst +off), r0, src)` after `res =`.
func (p *parser) atomic(res Register, w bool, word string, start int) (Instruction, error) {
	name, is64 := strings.CutPrefix(word, "atomic64")
	if !is64 {
		name = strings.TrimPrefix(word, "atomic")
	}
	var op AtomicOp
	switch name {
	case "_fetch_add":
		op = FetchAdd
	case "_fetch_or":
		op = FetchOr
	case "_fetch_and":
		op = FetchAnd
	case "_fetch_xor":
		op = FetchXor
	case "_xchg":
		op = Xchg
	case "_cmpxchg":
		op = CmpXchg
	default:
		p.pos = start
		return Instruction{}, p.errorf("unknown atomic operation %s", p.found())
	}
	if w {
		return Instruction{}, p.errorAt(p.stmt, "atomic operations write a 64-bit register: use r%d", res)
	}
	if err := p.expect("("); err != nil {
		return Instruction{}, err
	}
	at := p.pos
	size, dst, off, err := p.memRef("u")
	if err != nil {
		return Instruction{}, err
	}
	if (size == DWord) != is64 {
		p.pos = at
		return Instruction{}, p.errorf("%s does not match access size %s: atomic64_ goes with u64", word, size)
	}
	if err := p.expect(","); err != nil {
		return Instruction{}, err
	}
	if op == CmpXchg {
		if res != R0 {
			return Instruction{}, p.errorAt(p.stmt, "cmpxchg returns in r0, not r%d", res)
		}
		if err := p.sameReg(R0, false); err != nil {
			return Instruction{}, err
		}
		if err := p.expect(","); err != nil {
			return Instruction{}, err
		}
	}
	p.space()
	at = p.pos
	src, err := p.reg64()
	if err != nil {
		return Instruction{}, err
	}
	if op != CmpXchg && src != res {
		return Instruction{}, p.errorAt(at, "%s returns in its operand register: r%d = ...(..., r%d)", word, src, src)
	}
	return op.Mem(dst, off, src, size), p.expect(")")
}

// loadAcquire reads `load_acquire((u64 *)(src +off))` after `dst =`.
func (p *parser) loadAcquire(dst Register, w bool) (Instruction, error) {
	if w {
		return Instruction{}, p.errorAt(p.stmt, "load_acquire writes a 64-bit register: use r%d", dst)
	}
	if err := p.expect("("); err != nil {
		return Instruction{}, err
	}
	size, src, off, err := p.memRef("u")
	if err != nil {
		return Instruction{}, err
	}
	return LoadAcq.Mem(dst, off, src, size), p.expect(")")
}

// pseudo reads the LD_IMM64 pseudo forms after `dst = map`, `btf` or
// `func`: `[fd:N]`, `[fd:N][0]+off`, `[idx:N]`, `[idx:N][0]+off`,
// `[name]`, `[name][0]+off`,
// `[id:N]`, `[id:N,fd:M]`, `[pc+N]`, `[label]`.
func (p *parser) pseudo(dst Register, word string) (Instruction, error) {
	if err := p.expect("["); err != nil {
		return Instruction{}, err
	}
	if word == "func" {
		label, off, err := p.target(math.MinInt32, math.MaxInt32)
		if err != nil {
			return Instruction{}, err
		}
		ins := LoadFunc(dst, label)
		if label == "" {
			ins.Constant = int64(uint32(int32(off)))
		}
		return ins, p.expect("]")
	}
	key := "id:"
	if word == "map" {
		key = "fd:"
		if p.accept("idx:") {
			key = "idx:"
		} else if p.space(); !strings.HasPrefix(p.rest(), "fd:") {
			return p.mapName(dst)
		}
	}
	if key != "idx:" {
		if err := p.expect(key); err != nil {
			return Instruction{}, err
		}
	}
	v, err := p.number(0, math.MaxUint32)
	if err != nil {
		return Instruction{}, err
	}
	var hi int64
	if key == "id:" && p.accept(",") {
		if err := p.expect("fd:"); err != nil {
			return Instruction{}, err
		}
		if hi, err = p.number(0, math.MaxUint32); err != nil {
			return Instruction{}, err
		}
	}
	if err := p.expect("]"); err != nil {
		return Instruction{}, err
	}
	ins := LoadImm64(dst, v|hi<<32)
	switch key {
	case "id:":
		ins.Src = PseudoBTFID
		return ins, nil
	case "fd:":
		ins.Src = PseudoMapFD
	default:
		ins.Src = PseudoMapIdx
	}
	if p.accept("[0]") {
		if err := p.expect("+"); err != nil {
			return Instruction{}, err
		}
		off, err := p.number(0, math.MaxUint32)
		if err != nil {
			return Instruction{}, err
		}
		ins.Src++ // PseudoMapValue, PseudoMapIdxValue
		ins.Constant |= off << 32
	}
	return ins, nil
}

// mapName reads `name]` or `name][0]+off` after `dst = map[`: a map load
// that names its map.
func (p *parser) mapName(dst Register) (Instruction, error) {
	start := p.pos
	name := p.ident()
	if name == "" || strings.HasPrefix(p.rest(), ":") {
		// Neither a name nor fd: or idx:; say what the kernel's form wants.
		p.pos = start
		return Instruction{}, p.errorf("expected %q, found %s", "fd:", p.found())
	}
	if err := p.expect("]"); err != nil {
		return Instruction{}, err
	}
	if !p.accept("[0]") {
		return LoadMapPtr(dst, name), nil
	}
	if err := p.expect("+"); err != nil {
		return Instruction{}, err
	}
	off, err := p.number(0, math.MaxUint32)
	if err != nil {
		return Instruction{}, err
	}
	return LoadMapValuePtr(dst, name, uint32(off)), nil
}

// condJump reads what follows `if`: `dst op src goto target`.
func (p *parser) condJump() (Instruction, error) {
	dst, w, err := p.reg()
	if err != nil {
		return Instruction{}, err
	}
	p.space()
	var op JumpOp
	found := false
	for _, j := range jumpOps {
		if strings.HasPrefix(p.rest(), j.text) {
			p.pos += len(j.text)
			op, found = j.op, true
			break
		}
	}
	if !found {
		return Instruction{}, p.errorf("expected a comparison, found %s", p.found())
	}
	var ins Instruction
	if p.isRegNext() {
		src, err := p.regOfWidth(dst, w)
		if err != nil {
			return Instruction{}, err
		}
		ins = op.Reg(dst, src, "")
	} else {
		v, err := p.imm32()
		if err != nil {
			return Instruction{}, err
		}
		ins = op.Imm(dst, int32(v), "")
	}
	if w {
		ins.OpCode = ins.OpCode&^0x07 | OpCode(Jump32Class)
	}
	if err := p.expect("goto"); err != nil {
		return Instruction{}, err
	}
	label, off, err := p.target(math.MinInt16, math.MaxInt16)
	if err != nil {
		return Instruction{}, err
	}
	ins.Target, ins.Offset = label, int16(off)
	return ins, nil
}

// jumpOps are the comparisons, longest first where one is a prefix of
// another.
var jumpOps = []struct {
	text string
	op   JumpOp
}{
	{"s>=", JSGE}, {"s<=", JSLE}, {"s>", JSGT}, {"s<", JSLT},
	{"==", JEq}, {"!=", JNE}, {">=", JGE}, {"<=", JLE}, {">", JGT}, {"<", JLT}, {"&", JSet},
}

// call reads what follows `call`: `bpf_name#N`, `bpf_name`, `unknown#N`,
// `kernel-function#N [off:M]`, `pc+N` or a label.
func (p *parser) call() (Instruction, error) {
	p.space()
	if p.accept("kernel-function#") {
		id, err := p.number(math.MinInt32, math.MaxInt32)
		if err != nil {
			return Instruction{}, err
		}
		ins := CallKfunc(int32(id))
		if p.accept("off:") {
			off, err := p.number(math.MinInt16, math.MaxInt16)
			if err != nil {
				return Instruction{}, err
			}
			ins.Offset = int16(off)
		}
		return ins, nil
	}
	start := p.pos
	label, off, err := p.target(math.MinInt32, math.MaxInt32)
	if err != nil {
		return Instruction{}, err
	}
	if label == "" {
		ins := CallLabel("")
		ins.Constant = off
		return ins, nil
	}
	fn, known := helperByName[label]
	if !p.accept("#") {
		if known {
			return Call(fn), nil
		}
		return CallLabel(label), nil
	}
	at := p.pos
	n, err := p.number(math.MinInt32, math.MaxInt32)
	if err != nil {
		return Instruction{}, err
	}
	if HelperFunc(n).String() != label {
		p.pos = start
		if known {
			return Instruction{}, p.errorf("helper %s is number %d, not %d", label, fn, n)
		}
		p.pos = at
		return Instruction{}, p.errorf("helper %d is %s, not %s", n, HelperFunc(n), label)
	}
	return Call(HelperFunc(n)), nil
}
