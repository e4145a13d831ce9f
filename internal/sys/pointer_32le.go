//go:build linux && (386 || arm || mipsle)

package sys

import (
	"structs"
	"unsafe"
)

// Pointer is a user-space address as the kernel's __aligned_u64 holds it:
// on little-endian 32-bit machines the address fills the low half. Unlike a
// uint64 it keeps what it points to alive and visible to the garbage
// collector while it sits in an attribute struct.
type Pointer struct {
	_   structs.HostLayout
	ptr unsafe.Pointer
	_   uint32
}
