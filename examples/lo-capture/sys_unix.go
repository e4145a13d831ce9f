//go:build unix

package main

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// oNoFollow makes an open fail on a symbolic link (open(2) O_NOFOLLOW).
const oNoFollow = syscall.O_NOFOLLOW

// infoSignal is the signal that prints the counts without stopping, as
// SIGUSR1 does for tcpdump.
var infoSignal os.Signal = syscall.SIGUSR1

// stopSignals end a capture cleanly: the -w file flushed, the counts
// printed. SIGPIPE is caught too, so that a write to a closed pipe
// returns EPIPE (and lo-capture says so) instead of killing the process
// with the file unflushed.
var stopSignals = []os.Signal{os.Interrupt, syscall.SIGTERM, syscall.SIGHUP}

var pipeSignal os.Signal = syscall.SIGPIPE

// fillClosedStdio opens /dev/null on each of the descriptors 0, 1 and 2
// that is closed — as when run with >&- — so that no file or socket
// opened later gets one of those numbers (and records written to
// "standard output" land in the -w file or the capture socket). It
// reports which were closed.
func fillClosedStdio() (closed [3]bool) {
	for fd := range 3 {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != unix.EBADF {
			continue
		}
		closed[fd] = true
		nfd, err := unix.Open(os.DevNull, unix.O_RDWR, 0)
		if err != nil {
			continue
		}
		if nfd != fd {
			unix.Dup2(nfd, fd)
			unix.Close(nfd)
		}
	}
	return closed
}
