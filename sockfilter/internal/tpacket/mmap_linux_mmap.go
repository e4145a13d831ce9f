//go:build linux && !(386 || arm || mips || mipsle || ppc || s390x)

package tpacket

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// rawMmap makes mmap(2) with offset 0.
func rawMmap(addr, length uintptr, prot, flags, fd int) (uintptr, syscall.Errno) {
	r, _, errno := unix.Syscall6(unix.SYS_MMAP, addr, length, uintptr(prot), uintptr(flags), uintptr(fd), 0)
	return r, errno
}
