package btf

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// parser reads the type section b, with names from the string section.
type parser struct {
	order binary.ByteOrder
	b     []byte
	off   int
	strs  []byte
	names map[uint32]string // the strings read so far, so that equal names share memory
}

// btfTypeLen is the size of struct btf_type: name_off, info, size or type.
const btfTypeLen = 12

// extraLen is the size of the data after struct btf_type for each kind:
// fixed bytes, and bytes per vlen item.
var extraLen = [...]struct{ fixed, item int }{
	KindInt: {4, 0}, KindPtr: {0, 0}, KindArray: {12, 0}, KindStruct: {0, 12}, KindUnion: {0, 12},
	KindEnum: {0, 8}, KindFwd: {0, 0}, KindTypedef: {0, 0}, KindVolatile: {0, 0}, KindConst: {0, 0},
	KindRestrict: {0, 0}, KindFunc: {0, 0}, KindFuncProto: {0, 8}, KindVar: {4, 0},
	KindDatasec: {0, 12}, KindFloat: {0, 0}, KindDeclTag: {4, 0}, KindTypeTag: {0, 0}, KindEnum64: {0, 12},
}

// types reads the whole type section.
func (p *parser) types() ([]Type, error) {
	p.names = make(map[uint32]string)
	// The smallest type takes 12 bytes: this bounds the allocation.
	types := make([]Type, 0, len(p.b)/btfTypeLen)
	for p.off < len(p.b) {
		t, err := p.typ()
		if err != nil {
			return nil, fmt.Errorf("btf: type %d at byte %d of the type section: %w", len(types)+1, p.off, err)
		}
		types = append(types, t)
	}
	return types, nil
}

// u32 reads the word at byte i of the type section, which the caller has
// checked is in range.
func (p *parser) u32(i int) uint32 { return p.order.Uint32(p.b[i:]) }

// typ reads one type and the data after it, and advances p.off past them.
func (p *parser) typ() (Type, error) {
	if len(p.b)-p.off < btfTypeLen {
		return Type{}, fmt.Errorf("truncated: %d bytes left of %d", len(p.b)-p.off, btfTypeLen)
	}
	info := p.u32(p.off + 4)
	t := Type{Kind: Kind(info >> 24 & 0x1f), KindFlag: info>>31 != 0, Vlen: uint16(info)}
	if t.Kind == 0 || int(t.Kind) >= len(extraLen) {
		return Type{}, fmt.Errorf("unknown kind %d", t.Kind)
	}
	name, err := p.name(p.u32(p.off))
	if err != nil {
		return Type{}, err
	}
	t.Name = name
	if hasSize(t.Kind) {
		t.Size = p.u32(p.off + 8)
	} else {
		t.Ref = TypeID(p.u32(p.off + 8))
	}
	x := extraLen[t.Kind]
	if x.item == 0 && t.Vlen != 0 && t.Kind != KindFunc {
		return Type{}, fmt.Errorf("%s %q: vlen %d, but the kind has no members", t.Kind, t.Name, t.Vlen)
	}
	need := x.fixed + x.item*int(t.Vlen)
	start := p.off + btfTypeLen
	if len(p.b)-start < need {
		return Type{}, fmt.Errorf("%s %q: truncated: %d bytes left of %d", t.Kind, t.Name, len(p.b)-start, need)
	}
	p.off = start + need
	if err := p.extra(&t, start); err != nil {
		return Type{}, fmt.Errorf("%s %q: %w", t.Kind, t.Name, err)
	}
	return t, nil
}

// extra reads the data of t that starts at byte i of the type section.
func (p *parser) extra(t *Type, i int) error {
	switch t.Kind {
	case KindInt:
		v := p.u32(i)
		t.Encoding, t.BitOffset, t.Bits = uint8(v>>24&0xf), uint8(v>>16), uint8(v)
	case KindArray:
		t.Array = Array{Elem: TypeID(p.u32(i)), Index: TypeID(p.u32(i + 4)), Nelems: p.u32(i + 8)}
	case KindVar:
		t.Linkage = p.u32(i)
	case KindDeclTag:
		t.ComponentIdx = int32(p.u32(i))
	case KindStruct, KindUnion:
		return p.members(t, i)
	case KindEnum, KindEnum64:
		return p.enums(t, i)
	case KindFuncProto:
		t.Params = make([]Param, t.Vlen)
		for j := range t.Params {
			name, err := p.name(p.u32(i + 8*j))
			if err != nil {
				return err
			}
			t.Params[j] = Param{Name: name, Type: TypeID(p.u32(i + 8*j + 4))}
		}
	case KindDatasec:
		t.Vars = make([]VarSecinfo, t.Vlen)
		for j := range t.Vars {
			k := i + 12*j
			t.Vars[j] = VarSecinfo{Type: TypeID(p.u32(k)), Offset: p.u32(k + 4), Size: p.u32(k + 8)}
		}
	}
	return nil
}

// members reads the members of a STRUCT or UNION t.
func (p *parser) members(t *Type, i int) error {
	t.Members = make([]Member, t.Vlen)
	for j := range t.Members {
		k := i + 12*j
		name, err := p.name(p.u32(k))
		if err != nil {
			return err
		}
		m := Member{Name: name, Type: TypeID(p.u32(k + 4)), BitOffset: p.u32(k + 8)}
		if t.KindFlag {
			m.BitfieldSize, m.BitOffset = uint8(m.BitOffset>>24), m.BitOffset&0xffffff
		}
		t.Members[j] = m
	}
	return nil
}

// enums reads the values of an ENUM or ENUM64 t.
func (p *parser) enums(t *Type, i int) error {
	item := extraLen[t.Kind].item
	t.Enums = make([]Enum, t.Vlen)
	for j := range t.Enums {
		k := i + item*j
		name, err := p.name(p.u32(k))
		if err != nil {
			return err
		}
		v := uint64(p.u32(k + 4))
		switch {
		case t.Kind == KindEnum64:
			v |= uint64(p.u32(k+8)) << 32
		case t.KindFlag: // signed: sign-extend
			v = uint64(int64(int32(v)))
		}
		t.Enums[j] = Enum{Name: name, Value: v}
	}
	return nil
}

// name returns the NUL-terminated string at off in the string section.
func (p *parser) name(off uint32) (string, error) {
	if off == 0 {
		return "", nil
	}
	if s, ok := p.names[off]; ok {
		return s, nil
	}
	if uint64(off) >= uint64(len(p.strs)) {
		return "", fmt.Errorf("name offset %d is beyond the string section's %d bytes", off, len(p.strs))
	}
	n := bytes.IndexByte(p.strs[off:], 0)
	if n < 0 { // Parse checked the last byte is NUL
		return "", fmt.Errorf("name at offset %d is not NUL-terminated", off)
	}
	s := string(p.strs[off : int(off)+n])
	p.names[off] = s
	return s, nil
}
