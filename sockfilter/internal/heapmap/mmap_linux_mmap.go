//go:build linux && !(386 || arm || mips || mipsle || ppc || s390x)

package heapmap

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// rawMmap makes mmap(2).
func rawMmap(addr, length uintptr, prot, flags, fd int, offset int64) (uintptr, syscall.Errno) {
	r, _, errno := unix.Syscall6(unix.SYS_MMAP, addr, length, uintptr(prot), uintptr(flags), uintptr(fd), uintptr(offset))
	return r, errno
}
