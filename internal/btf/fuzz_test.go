package btf

import (
	"encoding/binary"
	"reflect"
	"testing"
)

// FuzzParse checks that Parse never panics and that what it parses
// encodes back to data that parses to the same types, in both byte
// orders; and that Resolve, Sizeof and Field, run on every type, return
// rather than loop or panic. The seeds are the test's sk_buff in both byte
// orders and truncations of it; testdata/fuzz/FuzzParse has more.
func FuzzParse(f *testing.F) {
	for _, order := range []byteOrder{binary.LittleEndian, binary.BigEndian} {
		b := skbBTF(order)
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Parse(b)
		if err != nil {
			return
		}
		types := make([]Type, s.NumTypes())
		for i := range types {
			typ, err := s.Type(TypeID(i + 1))
			if err != nil {
				t.Fatal(err)
			}
			types[i] = *typ
			s.Resolve(TypeID(i + 1))
			s.Sizeof(TypeID(i + 1))
			s.Field(TypeID(i+1), "len")
		}
		for _, order := range []byteOrder{binary.LittleEndian, binary.BigEndian} {
			s2, err := Parse(encode(order, types))
			if err != nil {
				t.Fatalf("re-encoded data does not parse: %v", err)
			}
			for i := range types {
				got, _ := s2.Type(TypeID(i + 1))
				if !reflect.DeepEqual(*got, types[i]) {
					t.Fatalf("type %d: %+v after a round trip, was %+v", i+1, *got, types[i])
				}
			}
		}
	})
}
