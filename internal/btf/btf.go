package btf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
)

// KernelPath is where the kernel publishes its BTF (Linux 5.4,
// CONFIG_DEBUG_INFO_BTF).
const KernelPath = "/sys/kernel/btf/vmlinux"

// Magic is the first field of a BTF header (BTF_MAGIC), 0xeb9f in the byte
// order of the data.
const Magic = 0xeb9f

// headerLen is the size of struct btf_header, the header this package
// reads; a longer header (a newer kernel's) is skipped by its hdr_len.
const headerLen = 24

// ErrNotFound is wrapped by the errors of lookups that find nothing.
var ErrNotFound = errors.New("not found")

// Spec is parsed BTF: the types, numbered from 1 in the order of the type
// section (TypeID 0 is void), and their names.
type Spec struct {
	order  binary.ByteOrder
	types  []Type // types[i] has TypeID i+1
	byName map[string][]TypeID
}

// LoadKernel reads and parses the running kernel's BTF from KernelPath.
func LoadKernel() (*Spec, error) {
	b, err := os.ReadFile(KernelPath)
	if err != nil {
		return nil, fmt.Errorf("read kernel BTF: %w (the kernel needs CONFIG_DEBUG_INFO_BTF, Linux 5.4)", err)
	}
	s, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", KernelPath, err)
	}
	return s, nil
}

// header is struct btf_header (include/uapi/linux/btf.h).
type header struct {
	version, flags   uint8
	hdrLen           uint32
	typeOff, typeLen uint32 // relative to the end of the header
	strOff, strLen   uint32
}

// Parse parses BTF data: a header, a type section and a string section,
// in the byte order its magic number gives. It returns an error for data
// that is truncated, has sections out of bounds, an unknown kind, a name
// or member that is not a string of the string section, or a reference
// to a type that does not exist.
func Parse(b []byte) (*Spec, error) {
	h, order, err := parseHeader(b)
	if err != nil {
		return nil, err
	}
	body := b[h.hdrLen:]
	typ, err := section(body, h.typeOff, h.typeLen, "type")
	if err != nil {
		return nil, err
	}
	str, err := section(body, h.strOff, h.strLen, "string")
	if err != nil {
		return nil, err
	}
	if len(str) > 0 && str[len(str)-1] != 0 || len(str) > 0 && str[0] != 0 {
		return nil, errors.New("btf: string section does not start and end with a NUL byte")
	}
	p := &parser{order: order, b: typ, strs: str}
	types, err := p.types()
	if err != nil {
		return nil, err
	}
	s := &Spec{order: order, types: types}
	if err := s.checkRefs(); err != nil {
		return nil, err
	}
	return s, nil
}

// parseHeader reads and checks the header of b.
func parseHeader(b []byte) (header, binary.ByteOrder, error) {
	var h header
	if len(b) < headerLen {
		return h, nil, fmt.Errorf("btf: %d bytes are too short for a header of %d", len(b), headerLen)
	}
	var order binary.ByteOrder
	switch {
	case binary.LittleEndian.Uint16(b) == Magic:
		order = binary.LittleEndian
	case binary.BigEndian.Uint16(b) == Magic:
		order = binary.BigEndian
	default:
		return h, nil, fmt.Errorf("btf: bad magic %#04x, want %#04x", binary.LittleEndian.Uint16(b), Magic)
	}
	h = header{
		version: b[2], flags: b[3], hdrLen: order.Uint32(b[4:]),
		typeOff: order.Uint32(b[8:]), typeLen: order.Uint32(b[12:]),
		strOff: order.Uint32(b[16:]), strLen: order.Uint32(b[20:]),
	}
	if h.version != 1 {
		return h, nil, fmt.Errorf("btf: version %d, want 1", h.version)
	}
	if h.hdrLen < headerLen || uint64(h.hdrLen) > uint64(len(b)) {
		return h, nil, fmt.Errorf("btf: header length %d out of range [%d, %d]", h.hdrLen, headerLen, len(b))
	}
	return h, order, nil
}

// section returns the bytes of the section at off of length n in body.
func section(body []byte, off, n uint32, name string) ([]byte, error) {
	if uint64(off)+uint64(n) > uint64(len(body)) {
		return nil, fmt.Errorf("btf: %s section [%d, %d) is beyond the %d bytes after the header", name, off, uint64(off)+uint64(n), len(body))
	}
	return body[off : off+n], nil
}

// NumTypes returns the number of types, the greatest TypeID.
func (s *Spec) NumTypes() int { return len(s.types) }

// ByteOrder returns the byte order of the data s was parsed from.
func (s *Spec) ByteOrder() binary.ByteOrder { return s.order }

// Type returns the type id; id 0 (void) and ids past NumTypes are errors.
func (s *Spec) Type(id TypeID) (*Type, error) {
	if id == 0 || int(id) > len(s.types) {
		return nil, fmt.Errorf("btf: type id %d: %w (the spec has types 1 to %d)", id, ErrNotFound, len(s.types))
	}
	return &s.types[id-1], nil
}

// Find returns the id of the first type of kind kind named name.
func (s *Spec) Find(kind Kind, name string) (TypeID, error) {
	if s.byName == nil {
		s.byName = make(map[string][]TypeID)
		for i := range s.types {
			if n := s.types[i].Name; n != "" {
				s.byName[n] = append(s.byName[n], TypeID(i+1))
			}
		}
	}
	for _, id := range s.byName[name] {
		if s.types[id-1].Kind == kind {
			return id, nil
		}
	}
	return 0, fmt.Errorf("btf: %s %q: %w", kind, name, ErrNotFound)
}

// checkRefs checks that every type a type refers to exists.
func (s *Spec) checkRefs() error {
	n := TypeID(len(s.types))
	for i := range s.types {
		t := &s.types[i]
		for _, r := range t.refs() {
			if r > n {
				return fmt.Errorf("btf: type %d (%s) refers to type %d, beyond the last, %d", i+1, t.Kind, r, n)
			}
		}
	}
	return nil
}
