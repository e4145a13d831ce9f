//go:build linux

package tpacket

import (
	"runtime"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mmapAt maps length bytes of fd (or anonymous memory, for fd -1) at addr
// (mmap(2) with MAP_FIXED in flags). unix.MmapPtr would turn the address
// the kernel returns into an unsafe.Pointer, which checkptr (-race) rejects
// for an address in the Go heap, as the ring's is; so the system call is
// made here and its result compared, never converted.
func mmapAt(mem []byte, prot, flags, fd int) error {
	addr := uintptr(unsafe.Pointer(unsafe.SliceData(mem)))
	r, errno := rawMmap(addr, uintptr(len(mem)), prot, flags|unix.MAP_FIXED, fd)
	runtime.KeepAlive(mem)
	if errno != 0 {
		return errno
	}
	if r != addr {
		return syscall.EINVAL // MAP_FIXED maps at addr or fails
	}
	return nil
}

// mremapOnto moves the mapping of len(mem) bytes at src over mem
// (mremap(2) MREMAP_MAYMOVE|MREMAP_FIXED), replacing what was there.
func mremapOnto(src unsafe.Pointer, mem []byte) error {
	addr := uintptr(unsafe.Pointer(unsafe.SliceData(mem)))
	size := uintptr(len(mem))
	r, _, errno := unix.Syscall6(unix.SYS_MREMAP, uintptr(src), size, size, unix.MREMAP_MAYMOVE|unix.MREMAP_FIXED, addr, 0)
	runtime.KeepAlive(mem)
	if errno != 0 {
		return errno
	}
	if r != addr {
		return syscall.EINVAL
	}
	return nil
}
