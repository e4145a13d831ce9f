//go:build linux && s390x

package tpacket

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// rawMmap makes mmap(2) with offset 0; on s390x it takes its arguments
// in memory (old_mmap).
func rawMmap(addr, length uintptr, prot, flags, fd int) (uintptr, syscall.Errno) {
	args := [6]uintptr{addr, length, uintptr(prot), uintptr(flags), uintptr(fd), 0}
	r, _, errno := unix.Syscall(unix.SYS_MMAP, uintptr(unsafe.Pointer(&args[0])), 0, 0)
	return r, errno
}
