package btf

import "fmt"

// maxDepth bounds the chains of typedefs and qualifiers, and the nesting
// of anonymous members, that Resolve, Sizeof and Field follow: a type that
// refers to itself through them is an error, not a loop.
const maxDepth = 64

// Resolve returns the type id refers to once its typedefs and qualifiers
// (TYPEDEF, VOLATILE, CONST, RESTRICT, TYPE_TAG) are skipped.
func (s *Spec) Resolve(id TypeID) (TypeID, error) {
	for range maxDepth {
		if id == 0 {
			return 0, nil
		}
		t, err := s.Type(id)
		if err != nil {
			return 0, err
		}
		switch t.Kind {
		case KindTypedef, KindVolatile, KindConst, KindRestrict, KindTypeTag:
			id = t.Ref
		default:
			return id, nil
		}
	}
	return 0, fmt.Errorf("btf: type %d: more than %d typedefs and qualifiers (a cycle?)", id, maxDepth)
}

// Sizeof returns the size in bytes of the type id: 8 for a pointer on a
// 64-bit kernel (see PointerSize), the product for an array.
func (s *Spec) Sizeof(id TypeID) (uint64, error) {
	n := uint64(1)
	for range maxDepth {
		r, err := s.Resolve(id)
		if err != nil {
			return 0, err
		}
		if r == 0 {
			return 0, fmt.Errorf("btf: type %d: void has no size", id)
		}
		t, _ := s.Type(r)
		switch {
		case t.Kind == KindPtr:
			p, err := s.PointerSize()
			return n * uint64(p), err
		case t.Kind == KindArray:
			n *= uint64(t.Array.Nelems)
			id = t.Array.Elem
		case hasSize(t.Kind):
			return n * uint64(t.Size), nil
		default:
			return 0, fmt.Errorf("btf: type %d (%s) has no size", r, t.Kind)
		}
	}
	return 0, fmt.Errorf("btf: type %d: arrays nested more than %d deep", id, maxDepth)
}

// PointerSize returns the size of a pointer on the kernel the BTF
// describes: BTF does not record it, so it is the size of its `long
// unsigned int` or `long int` (as libbpf determines it).
func (s *Spec) PointerSize() (uint32, error) {
	for _, name := range []string{"long unsigned int", "long int", "unsigned long"} {
		if id, err := s.Find(KindInt, name); err == nil {
			return s.types[id-1].Size, nil
		}
	}
	return 0, fmt.Errorf("btf: no long int type to tell the pointer size by: %w", ErrNotFound)
}

// Field is a member found by Spec.Field: the member and its offset in
// bits from the start of the outermost struct.
type Field struct {
	Member
	Offset uint32 // in bits
}

// Field returns the member name of the STRUCT or UNION id (typedefs
// resolved), looking into its anonymous struct and union members as C
// does: `skb->mac_header` is a member of an anonymous struct inside an
// anonymous union inside struct sk_buff.
func (s *Spec) Field(id TypeID, name string) (Field, error) {
	f, ok, err := s.field(id, name, 0)
	if err != nil {
		return Field{}, err
	}
	if !ok {
		t, _ := s.Type(id)
		return Field{}, fmt.Errorf("btf: %s %q has no member %q: %w", t.Kind, t.Name, name, ErrNotFound)
	}
	return f, nil
}

func (s *Spec) field(id TypeID, name string, depth int) (Field, bool, error) {
	if depth > maxDepth {
		return Field{}, false, fmt.Errorf("btf: anonymous members nested more than %d deep", maxDepth)
	}
	r, err := s.Resolve(id)
	if err != nil {
		return Field{}, false, err
	}
	t, err := s.Type(r)
	if err != nil {
		return Field{}, false, err
	}
	if t.Kind != KindStruct && t.Kind != KindUnion {
		return Field{}, false, fmt.Errorf("btf: type %d is a %s, not a STRUCT or UNION", r, t.Kind)
	}
	for _, m := range t.Members {
		if m.Name == name {
			return Field{Member: m, Offset: m.BitOffset}, true, nil
		}
	}
	for _, m := range t.Members {
		if m.Name != "" || !s.isAggregate(m.Type) {
			continue // a named member, or anonymous padding (`int :3`)
		}
		f, ok, err := s.field(m.Type, name, depth+1)
		if err != nil || ok {
			f.Offset += m.BitOffset
			return f, ok, err
		}
	}
	return Field{}, false, nil
}

// isAggregate reports whether id is a STRUCT or UNION, typedefs resolved.
func (s *Spec) isAggregate(id TypeID) bool {
	r, err := s.Resolve(id)
	if err != nil || r == 0 {
		return false
	}
	k := s.types[r-1].Kind
	return k == KindStruct || k == KindUnion
}
