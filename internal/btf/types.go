package btf

import "strconv"

// TypeID is the number of a type: its position in the type section,
// counting from 1. TypeID 0 is void.
type TypeID uint32

// Kind is the kind of a type, bits 24 to 28 of struct btf_type's info
// (BTF_KIND_* in include/uapi/linux/btf.h).
type Kind uint8

// The kinds.
const (
	KindInt       Kind = 1  // an integer: Size bytes, Encoding, Bits, BitOffset
	KindPtr       Kind = 2  // a pointer to Ref
	KindArray     Kind = 3  // Array: Nelems of Elem, indexed by Index
	KindStruct    Kind = 4  // Size bytes of Members
	KindUnion     Kind = 5  // Size bytes of overlapping Members
	KindEnum      Kind = 6  // Size bytes, Enums (values fit in 32 bits)
	KindFwd       Kind = 7  // a forward declaration of a struct (or union if KindFlag)
	KindTypedef   Kind = 8  // Name for Ref
	KindVolatile  Kind = 9  // volatile Ref
	KindConst     Kind = 10 // const Ref
	KindRestrict  Kind = 11 // restrict Ref
	KindFunc      Kind = 12 // a function named Name of prototype Ref, Linkage in Vlen
	KindFuncProto Kind = 13 // returning Ref, taking Params
	KindVar       Kind = 14 // a variable of type Ref, Linkage
	KindDatasec   Kind = 15 // a section of Size bytes holding Vars
	KindFloat     Kind = 16 // a floating-point number of Size bytes (Linux 5.13)
	KindDeclTag   Kind = 17 // a tag Name on Ref, or its member or parameter ComponentIdx (Linux 5.16)
	KindTypeTag   Kind = 18 // a tag Name on the type Ref (Linux 5.17)
	KindEnum64    Kind = 19 // Size bytes, Enums with 64-bit values (Linux 6.0)
)

var kindNames = [...]string{
	KindInt: "INT", KindPtr: "PTR", KindArray: "ARRAY", KindStruct: "STRUCT", KindUnion: "UNION",
	KindEnum: "ENUM", KindFwd: "FWD", KindTypedef: "TYPEDEF", KindVolatile: "VOLATILE",
	KindConst: "CONST", KindRestrict: "RESTRICT", KindFunc: "FUNC", KindFuncProto: "FUNC_PROTO",
	KindVar: "VAR", KindDatasec: "DATASEC", KindFloat: "FLOAT", KindDeclTag: "DECL_TAG",
	KindTypeTag: "TYPE_TAG", KindEnum64: "ENUM64",
}

// String returns the kernel's name of the kind without its BTF_KIND_
// prefix, as bpftool prints it: "STRUCT".
func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Type is one type of the type section. Which fields are set depends on
// its kind (see the Kind constants).
type Type struct {
	Kind     Kind
	Name     string // "" for an anonymous type
	KindFlag bool   // bit 31 of info: bitfield offsets in members, a union FWD, a signed enum
	Vlen     uint16 // the number of members, values, parameters or variables; a FUNC's linkage
	// Size is the size in bytes of an INT, ENUM, STRUCT, UNION, DATASEC,
	// FLOAT or ENUM64; Ref is the type the other kinds refer to (0 is void).
	Size uint32
	Ref  TypeID

	Encoding  uint8 // INT: BTF_INT_SIGNED 1, BTF_INT_CHAR 2, BTF_INT_BOOL 4
	BitOffset uint8 // INT
	Bits      uint8 // INT

	Array   Array        // ARRAY
	Members []Member     // STRUCT, UNION
	Enums   []Enum       // ENUM, ENUM64
	Params  []Param      // FUNC_PROTO
	Vars    []VarSecinfo // DATASEC
	Linkage uint32       // VAR: 0 static, 1 global, 2 extern
	// ComponentIdx is a DECL_TAG's member or parameter index, -1 for the
	// type itself.
	ComponentIdx int32
}

// The encodings of an INT.
const (
	IntSigned = 1 << 0 // BTF_INT_SIGNED
	IntChar   = 1 << 1 // BTF_INT_CHAR
	IntBool   = 1 << 2 // BTF_INT_BOOL
)

// Array is the element type, index type and length of an ARRAY.
type Array struct {
	Elem, Index TypeID
	Nelems      uint32
}

// Member is a member of a STRUCT or UNION.
type Member struct {
	Name string // "" for an anonymous struct or union
	Type TypeID
	// BitOffset is the member's offset in bits from the start of the
	// struct; BitfieldSize its width in bits if it is a bitfield, else 0
	// (the two share a word when the struct's KindFlag is set).
	BitOffset    uint32
	BitfieldSize uint8
}

// Enum is one value of an ENUM or ENUM64: Value holds its bits, to be
// read as int64 when the enum's KindFlag says it is signed.
type Enum struct {
	Name  string
	Value uint64
}

// Param is a parameter of a FUNC_PROTO; a last one with Type 0 marks a
// variadic function.
type Param struct {
	Name string
	Type TypeID
}

// VarSecinfo is a variable of a DATASEC: its VAR type and where it is.
type VarSecinfo struct {
	Type         TypeID
	Offset, Size uint32
}

// refs returns the ids t refers to.
func (t *Type) refs() []TypeID {
	var r []TypeID
	switch t.Kind {
	case KindPtr, KindTypedef, KindVolatile, KindConst, KindRestrict, KindFunc,
		KindFuncProto, KindVar, KindDeclTag, KindTypeTag:
		r = append(r, t.Ref)
	case KindArray:
		r = append(r, t.Array.Elem, t.Array.Index)
	}
	for _, m := range t.Members {
		r = append(r, m.Type)
	}
	for _, p := range t.Params {
		r = append(r, p.Type)
	}
	for _, v := range t.Vars {
		r = append(r, v.Type)
	}
	return r
}

// hasSize reports whether kind k holds a size rather than a type.
func hasSize(k Kind) bool {
	switch k {
	case KindInt, KindStruct, KindUnion, KindEnum, KindDatasec, KindFloat, KindEnum64:
		return true
	}
	return false
}
