package main

import (
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// terminal reports whether w is a terminal (TCGETS succeeds on it), and
// a function that returns its height in rows (TIOCGWINSZ), 0 if unknown.
func terminal(w io.Writer) (bool, func() int) {
	f, ok := w.(*os.File)
	if !ok {
		return false, nil
	}
	fd := int(f.Fd())
	if _, err := unix.IoctlGetTermios(fd, unix.TCGETS); err != nil {
		return false, nil
	}
	return true, func() int {
		ws, err := unix.IoctlGetWinsize(fd, unix.TIOCGWINSZ)
		if err != nil {
			return 0
		}
		return int(ws.Row)
	}
}
