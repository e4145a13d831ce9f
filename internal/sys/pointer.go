//go:build linux

package sys

import (
	"unsafe"
)

// NewPointer returns a Pointer to p.
func NewPointer(p unsafe.Pointer) Pointer { return Pointer{ptr: p} }

// SlicePointer returns a Pointer to the first element of s, or the null
// Pointer if s is empty.
func SlicePointer[T any](s []T) Pointer {
	if len(s) == 0 {
		return Pointer{}
	}
	return Pointer{ptr: unsafe.Pointer(&s[0])}
}

// StringPointer returns a Pointer to a NUL-terminated copy of s, as the
// kernel reads C strings such as the license. It is the null Pointer if s
// is empty.
func StringPointer(s string) Pointer {
	if s == "" {
		return Pointer{}
	}
	b := make([]byte, len(s)+1)
	copy(b, s)
	return Pointer{ptr: unsafe.Pointer(&b[0])}
}
