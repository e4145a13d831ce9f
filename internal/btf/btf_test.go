package btf

import (
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// skbTypes is a small struct sk_buff as the kernel's BTF spells it: its
// headers inside an anonymous struct inside an anonymous union
// (struct_group), a bitfield, a typedef'd u16.
var skbTypes = []Type{
	1:  {Kind: KindInt, Name: "unsigned int", Size: 4, Bits: 32},
	2:  {Kind: KindInt, Name: "long unsigned int", Size: 8, Bits: 64},
	3:  {Kind: KindTypedef, Name: "__u16", Ref: 4},
	4:  {Kind: KindInt, Name: "short unsigned int", Size: 2, Bits: 16},
	5:  {Kind: KindPtr, Ref: 6},
	6:  {Kind: KindInt, Name: "unsigned char", Size: 1, Bits: 8, Encoding: IntChar},
	7:  {Kind: KindStruct, Size: 4, Vlen: 2, Members: []Member{{Name: "mac_header", Type: 3}, {Name: "network_header", Type: 3, BitOffset: 16}}},
	8:  {Kind: KindStruct, Name: "headers", Size: 4, Vlen: 2, Members: []Member{{Name: "mac_header", Type: 3}, {Name: "network_header", Type: 3, BitOffset: 16}}},
	9:  {Kind: KindUnion, Size: 4, Vlen: 2, Members: []Member{{Type: 7}, {Name: "headers", Type: 8}}},
	10: {Kind: KindConst, Ref: 9},
	11: {Kind: KindStruct, Name: "sk_buff", Size: 40, Vlen: 7, KindFlag: true, Members: []Member{
		{Name: "len", Type: 1},
		{Name: "data_len", Type: 1, BitOffset: 32},
		{Name: "pkt_type", Type: 6, BitOffset: 64, BitfieldSize: 3},
		{Type: 1, BitOffset: 67, BitfieldSize: 5}, // anonymous padding
		{Type: 10, BitOffset: 96},
		{Name: "head", Type: 5, BitOffset: 192},
		{Name: "data", Type: 5, BitOffset: 256},
	}},
	12: {Kind: KindArray, Array: Array{Elem: 5, Index: 1, Nelems: 3}},
	13: {Kind: KindEnum, Name: "sign", Size: 4, Vlen: 2, KindFlag: true, Enums: []Enum{{"NEG", ^uint64(0)}, {"POS", 1}}},
	14: {Kind: KindEnum64, Name: "big", Size: 8, Vlen: 1, Enums: []Enum{{"HUGE", 1 << 40}}},
	15: {Kind: KindFuncProto, Ref: 1, Vlen: 1, Params: []Param{{Name: "skb", Type: 5}}},
	16: {Kind: KindFunc, Name: "bpf_cast_to_kern_ctx", Ref: 15, Vlen: 1},
	17: {Kind: KindVar, Name: "v", Ref: 1, Linkage: 1},
	18: {Kind: KindDatasec, Name: ".data", Size: 4, Vlen: 1, Vars: []VarSecinfo{{Type: 17, Size: 4}}},
	19: {Kind: KindDeclTag, Name: "bpf_kfunc", Ref: 16, ComponentIdx: -1},
	20: {Kind: KindFwd, Name: "later", KindFlag: true},
	21: {Kind: KindFloat, Name: "double", Size: 8},
	22: {Kind: KindTypeTag, Name: "rcu", Ref: 11},
	23: {Kind: KindVolatile, Ref: 22},
	24: {Kind: KindRestrict, Ref: 5},
}

func skbBTF(order byteOrder) []byte { return encode(order, skbTypes[1:]) }

func TestParseRoundTrip(t *testing.T) {
	for _, order := range []byteOrder{binary.LittleEndian, binary.BigEndian} {
		t.Run(order.String(), func(t *testing.T) {
			s, err := Parse(skbBTF(order))
			if err != nil {
				t.Fatal(err)
			}
			if s.NumTypes() != len(skbTypes)-1 || s.ByteOrder() != order {
				t.Fatalf("%d types in %v, want %d in %v", s.NumTypes(), s.ByteOrder(), len(skbTypes)-1, order)
			}
			for id := 1; id < len(skbTypes); id++ {
				got, err := s.Type(TypeID(id))
				if err != nil {
					t.Fatal(err)
				}
				want := skbTypes[id]
				if want.Members == nil && got.Members != nil && len(got.Members) == 0 {
					want.Members = []Member{}
				}
				if !reflect.DeepEqual(*got, want) {
					t.Errorf("type %d:\n got %+v\nwant %+v", id, *got, want)
				}
			}
		})
	}
}

func TestField(t *testing.T) {
	s, err := Parse(skbBTF(binary.LittleEndian))
	if err != nil {
		t.Fatal(err)
	}
	skb, err := s.Find(KindStruct, "sk_buff")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name     string
		off      uint32 // bits
		bitfield uint8
		size     uint64
	}{
		{"len", 0, 0, 4}, {"data_len", 32, 0, 4}, {"pkt_type", 64, 3, 1},
		{"mac_header", 96, 0, 2}, {"network_header", 112, 0, 2}, {"headers", 96, 0, 4},
		{"head", 192, 0, 8}, {"data", 256, 0, 8},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f, err := s.Field(skb, tt.name)
			if err != nil {
				t.Fatal(err)
			}
			size, err := s.Sizeof(f.Type)
			if err != nil {
				t.Fatal(err)
			}
			if f.Offset != tt.off || f.BitfieldSize != tt.bitfield || size != tt.size {
				t.Errorf("offset %d bits, bitfield %d, size %d; want %d, %d, %d", f.Offset, f.BitfieldSize, size, tt.off, tt.bitfield, tt.size)
			}
		})
	}
	if _, err := s.Field(skb, "tail"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Field(tail) = %v, want ErrNotFound", err)
	}
	if _, err := s.Field(1, "x"); err == nil {
		t.Error("Field of an INT: no error")
	}
	if n, err := s.Sizeof(12); err != nil || n != 24 {
		t.Errorf("Sizeof(array of 3 pointers) = %d, %v; want 24", n, err)
	}
	if n, err := s.Sizeof(23); err != nil || n != 40 {
		t.Errorf("Sizeof(volatile type-tagged sk_buff) = %d, %v; want 40", n, err)
	}
	if _, err := s.Sizeof(15); err == nil {
		t.Error("Sizeof(FUNC_PROTO): no error")
	}
	if id, err := s.Find(KindFunc, "bpf_cast_to_kern_ctx"); err != nil || id != 16 {
		t.Errorf("Find(FUNC bpf_cast_to_kern_ctx) = %d, %v; want 16", id, err)
	}
	if _, err := s.Find(KindStruct, "bpf_cast_to_kern_ctx"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Find(STRUCT bpf_cast_to_kern_ctx) = %v, want ErrNotFound", err)
	}
}

// corrupt returns skbBTF with fn applied to a copy.
func corrupt(fn func(b []byte) []byte) []byte {
	return fn(skbBTF(binary.LittleEndian))
}

func TestParseErrors(t *testing.T) {
	le := binary.LittleEndian
	typeSec := func(b []byte) []byte { return b[headerLen:] }
	for _, tt := range []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "too short"},
		{"magic", corrupt(func(b []byte) []byte { b[0] = 0; return b }), "bad magic"},
		{"version", corrupt(func(b []byte) []byte { b[2] = 2; return b }), "version 2"},
		{"header length", corrupt(func(b []byte) []byte { le.PutUint32(b[4:], 8); return b }), "header length"},
		{"type section", corrupt(func(b []byte) []byte { le.PutUint32(b[12:], 1<<30); return b }), "type section"},
		{"string section", corrupt(func(b []byte) []byte { le.PutUint32(b[20:], 1<<30); return b }), "string section"},
		{"unterminated strings", corrupt(func(b []byte) []byte { b[len(b)-1] = 'x'; return b }), "NUL"},
		{"kind", corrupt(func(b []byte) []byte { typeSec(b)[7] = 20; return b }), "unknown kind 20"},
		{"name", corrupt(func(b []byte) []byte { le.PutUint32(typeSec(b), 1<<20); return b }), "name offset"},
		{"truncated type", corrupt(func(b []byte) []byte {
			le.PutUint32(b[12:], le.Uint32(b[12:])-2)
			return b
		}), "truncated"},
		{"vlen", corrupt(func(b []byte) []byte { typeSec(b)[4] = 0xff; return b }), "vlen 255"},
		{"reference", encode(le, []Type{{Kind: KindPtr, Ref: 9}}), "refers to type 9"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.b)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "btf: ") {
				t.Errorf("Parse: %v, want an error with %q", err, tt.want)
			}
		})
	}
}

func TestResolveCycle(t *testing.T) {
	s, err := Parse(encode(binary.LittleEndian, []Type{{Kind: KindTypedef, Name: "a", Ref: 2}, {Kind: KindConst, Ref: 1}}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Resolve(1); err == nil || !strings.Contains(err.Error(), "cycle") {
		t.Errorf("Resolve of a cycle: %v", err)
	}
	if _, err := s.Sizeof(1); err == nil {
		t.Error("Sizeof of a cycle: no error")
	}
	self, err := Parse(encode(binary.LittleEndian, []Type{{Kind: KindStruct, Size: 4, Vlen: 1, Members: []Member{{Type: 2}}}, {Kind: KindTypedef, Name: "t", Ref: 1}}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := self.Field(1, "x"); err == nil || !strings.Contains(err.Error(), "nested") {
		t.Errorf("Field of a struct that holds itself anonymously: %v", err)
	}
	if _, err := s.Type(0); !errors.Is(err, ErrNotFound) {
		t.Errorf("Type(0) = %v, want ErrNotFound", err)
	}
	if _, err := s.PointerSize(); !errors.Is(err, ErrNotFound) {
		t.Errorf("PointerSize without a long: %v, want ErrNotFound", err)
	}
}
