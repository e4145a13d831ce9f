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

// closedStdio reports which of the descriptors 0, 1 and 2 were closed
// when lo-capture started (as with >&-). Go's runtime opens /dev/null,
// read-write, on each of them that it finds closed, before main runs (so
// that no file opened later takes their numbers): a descriptor that is
// /dev/null opened O_RDWR is taken to be one of those. A shell's >/dev/null
// opens it write-only, and <</dev/null read-only, so these are not.
func closedStdio() (closed [3]bool) {
	var null unix.Stat_t
	if unix.Stat(os.DevNull, &null) != nil {
		return closed
	}
	for fd := range 3 {
		fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
		if err != nil || fl&unix.O_ACCMODE != unix.O_RDWR {
			continue
		}
		var st unix.Stat_t
		closed[fd] = unix.Fstat(fd, &st) == nil && st.Dev == null.Dev && st.Ino == null.Ino
	}
	return closed
}
