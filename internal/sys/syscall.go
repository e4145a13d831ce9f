//go:build linux

// Package sys is purebpf's raw bpf(2) layer: the attribute structs of the
// commands purebpf uses, laid out as the kernel's union bpf_attr
// (include/uapi/linux/bpf.h, Linux 6.18) with Go-cased field names, and
// thin wrappers that make the system call.
//
// Pointers in attribute structs are of type Pointer, never integers, so the
// garbage collector sees them; every wrapper keeps what it passes alive
// until the call returns. Errors are *os.SyscallError values wrapping the
// errno, so errors.Is(err, unix.EPERM) works.
package sys

import (
	"os"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Cmd is a bpf(2) command (enum bpf_cmd).
type Cmd uintptr

// The commands this package wraps.
const (
	BPF_PROG_LOAD          Cmd = 5
	BPF_PROG_TEST_RUN      Cmd = 10
	BPF_OBJ_GET_INFO_BY_FD Cmd = 15
)

// BPF_OBJ_NAME_LEN is the size of an object name, NUL included.
const BPF_OBJ_NAME_LEN = 16

// ObjName is an object name (prog_name, map_name, name) as the kernel
// stores it: up to 15 bytes, NUL-terminated. The kernel accepts only
// [A-Za-z0-9_.] (bpf_obj_name_cpy).
type ObjName [BPF_OBJ_NAME_LEN]byte

// NewObjName returns s as an ObjName, cut to 15 bytes. It does not check
// the characters; the kernel refuses others with EINVAL.
func NewObjName(s string) ObjName {
	var n ObjName
	copy(n[:BPF_OBJ_NAME_LEN-1], s)
	return n
}

// String returns the name up to its NUL.
func (n ObjName) String() string {
	for i, c := range n {
		if c == 0 {
			return string(n[:i])
		}
	}
	return string(n[:])
}

// MaxRetries bounds how many times a call is made when the kernel
// interrupts it. The verifier returns EAGAIN when a signal is pending (Go's
// runtime preempts goroutines with SIGURG), and any command may return
// EINTR; both mean "try again" and say nothing about the program.
const MaxRetries = 20

// BPF makes the bpf(2) system call cmd with the attribute struct at attr
// of size bytes, retrying up to MaxRetries times on EINTR, and for
// BPF_PROG_LOAD also on EAGAIN. (ProgTestRun decides for itself: a test
// run interrupted after some of its repeats must not run them again.) It returns the call's result, an fd for
// commands that create one. The error is an *os.SyscallError wrapping the
// errno.
func BPF(cmd Cmd, attr unsafe.Pointer, size uintptr) (uintptr, error) {
	var (
		r     uintptr
		errno unix.Errno
	)
	for range MaxRetries {
		r, errno = bpfOnce(cmd, attr, size)
		if errno == unix.EINTR || (errno == unix.EAGAIN && cmd == BPF_PROG_LOAD) {
			continue
		}
		break
	}
	runtime.KeepAlive(attr)
	if errno != 0 {
		return r, os.NewSyscallError("bpf", errno)
	}
	return r, nil
}

// bpfOnce makes the system call once.
func bpfOnce(cmd Cmd, attr unsafe.Pointer, size uintptr) (uintptr, unix.Errno) {
	r, _, errno := unix.Syscall(unix.SYS_BPF, uintptr(cmd), uintptr(attr), size)
	return r, errno
}
