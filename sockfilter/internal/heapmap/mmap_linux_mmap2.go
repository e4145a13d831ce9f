//go:build linux && (386 || arm || mips || mipsle || ppc)

package heapmap

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// rawMmap makes mmap2(2), mmap with the offset in units of 4096 bytes
// whatever the page size.
func rawMmap(addr, length uintptr, prot, flags, fd int, offset int64) (uintptr, syscall.Errno) {
	if offset%4096 != 0 {
		return 0, syscall.EINVAL
	}
	r, _, errno := unix.Syscall6(unix.SYS_MMAP2, addr, length, uintptr(prot), uintptr(flags), uintptr(fd), uintptr(offset/4096))
	return r, errno
}
