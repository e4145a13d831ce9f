//go:build linux && s390x

package heapmap

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// rawMmap makes mmap(2); on s390x it takes its arguments in memory
// (old_mmap).
func rawMmap(addr, length uintptr, prot, flags, fd int, offset int64) (uintptr, syscall.Errno) {
	args := [6]uintptr{addr, length, uintptr(prot), uintptr(flags), uintptr(fd), uintptr(offset)}
	r, _, errno := unix.Syscall(unix.SYS_MMAP, uintptr(unsafe.Pointer(&args[0])), 0, 0)
	return r, errno
}
