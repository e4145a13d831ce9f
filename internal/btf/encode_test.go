package btf

import "encoding/binary"

// byteOrder is binary.LittleEndian or binary.BigEndian.
type byteOrder interface {
	binary.ByteOrder
	binary.AppendByteOrder
}

// encode returns BTF data holding types, in byte order order: the
// inverse of Parse, for the tests and the fuzzer's seeds and round trips.
func encode(order byteOrder, types []Type) []byte {
	strs := []byte{0}
	offs := map[string]uint32{"": 0}
	str := func(s string) uint32 {
		if o, ok := offs[s]; ok {
			return o
		}
		o := uint32(len(strs))
		strs = append(append(strs, s...), 0)
		offs[s] = o
		return o
	}
	var tb []byte
	u32 := func(v uint32) { tb = order.AppendUint32(tb, v) }
	for _, t := range types {
		info := uint32(t.Kind)<<24 | uint32(t.Vlen)
		if t.KindFlag {
			info |= 1 << 31
		}
		u32(str(t.Name))
		u32(info)
		if hasSize(t.Kind) {
			u32(t.Size)
		} else {
			u32(uint32(t.Ref))
		}
		switch t.Kind {
		case KindInt:
			u32(uint32(t.Encoding)<<24 | uint32(t.BitOffset)<<16 | uint32(t.Bits))
		case KindArray:
			u32(uint32(t.Array.Elem))
			u32(uint32(t.Array.Index))
			u32(t.Array.Nelems)
		case KindVar:
			u32(t.Linkage)
		case KindDeclTag:
			u32(uint32(t.ComponentIdx))
		case KindStruct, KindUnion:
			for _, m := range t.Members {
				u32(str(m.Name))
				u32(uint32(m.Type))
				off := m.BitOffset
				if t.KindFlag {
					off = uint32(m.BitfieldSize)<<24 | off&0xffffff
				}
				u32(off)
			}
		case KindEnum, KindEnum64:
			for _, e := range t.Enums {
				u32(str(e.Name))
				u32(uint32(e.Value))
				if t.Kind == KindEnum64 {
					u32(uint32(e.Value >> 32))
				}
			}
		case KindFuncProto:
			for _, p := range t.Params {
				u32(str(p.Name))
				u32(uint32(p.Type))
			}
		case KindDatasec:
			for _, v := range t.Vars {
				u32(uint32(v.Type))
				u32(v.Offset)
				u32(v.Size)
			}
		}
	}
	var b []byte
	b = order.AppendUint16(b, Magic)
	b = append(b, 1, 0)
	b = order.AppendUint32(b, headerLen)
	b = order.AppendUint32(b, 0)
	b = order.AppendUint32(b, uint32(len(tb)))
	b = order.AppendUint32(b, uint32(len(tb)))
	b = order.AppendUint32(b, uint32(len(strs)))
	return append(append(b, tb...), strs...)
}
