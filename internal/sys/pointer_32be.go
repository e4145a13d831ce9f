//go:build linux && mips

package sys

import (
	"structs"
	"unsafe"
)

// Pointer is a user-space address as the kernel's __aligned_u64 holds it:
// on big-endian 32-bit machines the address fills the high-addressed half.
// Unlike a uint64 it keeps what it points to alive and visible to the
// garbage collector while it sits in an attribute struct.
type Pointer struct {
	_   structs.HostLayout
	_   uint32
	ptr unsafe.Pointer
}
